//! # aliyun-guard
//!
//! An Alibaba Cloud RPC ("POP") API client that signs exactly and protects its users when their
//! AccessKey leaks.
//!
//! * [`signing`]: the RPC signature (HMAC-SHA1, `SignatureVersion=1.0`), pure and exact.
//! * [`Client`]: async transport on reqwest and tokio, bounded retries with fresh signatures,
//!   typed errors, body size caps, timeouts.
//! * Signature V3 (`ACS3-HMAC-SHA256`) for RPC calls ([`SignatureVersion`]) and ROA-style APIs
//!   ([`RoaRequest`], [`Client::call_roa`]), guarded alike.
//! * [`guard`]: recognises Alibaba's leak-protection answer, raises [`guard::CompromisedKey`] with
//!   remediation, remembers the key and refuses blocked calls before sending.
//! * [`credentials`]: static, environment, CLI profile and the default chain; secrets redacted
//!   and zeroed on drop.
//!
//! ```no_run
//! use aliyun_guard::{Client, Error, RpcRequest};
//!
//! # async fn run() -> Result<(), Error> {
//! let client = Client::builder().region("cn-hangzhou").build()?;
//! let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").param("PageSize", "50");
//! match client.call(&request).await {
//!     Ok(json) => println!("{json}"),
//!     Err(Error::CompromisedKey(leak)) => eprintln!("{leak}"), // rotate the key: guidance inside
//!     Err(other) => eprintln!("{other} (request id {:?})", other.request_id()),
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod credentials;
pub mod endpoint;
pub mod error;
#[allow(dead_code)] // used by the guard's store and the credential providers
mod fs_safe;
pub mod guard;
mod redact;
pub mod request;
pub mod response;
mod roa_request;
pub mod signing;
mod transport;

pub use credentials::Credentials;
pub use error::{
    ApiError, Error, ResponseFault, SignatureDiagnosis, TimeoutPhase, UnexpectedResponse,
};
pub use guard::{CompromisedKey, Guard, Policy};
pub use request::RpcRequest;
pub use roa_request::RoaRequest;
pub use signing::{Method, SignatureVersion};
pub use transport::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT, ProbeOutcome, RetryPolicy, USER_AGENT_VALUE,
};

/// The probe's call (product, version, action).
pub use transport::PROBE_CALL;

/// The README's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
