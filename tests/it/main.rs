//! The integration tests, as one binary: one link instead of one per file.
//!
//! Kept apart, in their own binaries: the allocation-counting tests (`alloc_free`: a global
//! allocator), the tests that install a global or scoped tracing subscriber, and the
//! multi-process test that runs its own binary as children (`state_concurrency`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod cli_redis;
mod client;
mod credential_chain;
mod credential_refresh;
mod credential_services;
mod credential_wiring;
mod credentials;
mod examples;
mod faults;
mod golden_vectors;
mod guard;
mod hygiene;
mod layering;
mod leak_feed;
mod properties;
mod requests;
mod security;
mod state_store;
mod testkit;
mod tls;
mod v3_client;
mod v3_properties;
mod v3_vectors;
