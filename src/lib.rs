//! # aliyun-guard
//!
//! An Alibaba Cloud RPC ("POP") API client that signs exactly and protects its users when their
//! AccessKey leaks.
//!
//! ## Quick start
//!
//! ```no_run
//! use aliyun_guard::{Client, Error, RpcRequest};
//!
//! # async fn run() -> Result<(), Error> {
//! // Credentials from the default chain (environment, OIDC, CLI profile, INI file, ECS role...).
//! let client = Client::builder().region("cn-hangzhou").build()?;
//! let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
//!     .param("PageSize", 50)
//!     .tags([("env", "prod")]);
//! match client.call(&request).await {
//!     Ok(json) => println!("{json}"),
//!     Err(Error::CompromisedKey(leak)) => eprintln!("{leak}"), // rotate the key: guidance inside
//!     Err(other) => eprintln!("{other} (request id {:?})", other.request_id()),
//! }
//! # Ok(()) }
//! ```
//!
//! ## What is supported
//!
//! * **RPC APIs, signature 1.0** ([`signing`]: HMAC-SHA1, `SignatureVersion=1.0`), pure and
//!   checked against the official SDK's vectors; GET or POST (default).
//! * **Signature V3** (`ACS3-HMAC-SHA256`) for RPC calls ([`SignatureVersion`], per client or
//!   per request) and **ROA (RESTful) APIs** such as ACK ([`RoaRequest`],
//!   [`Client::call_roa`]), guarded alike; checked against the official package's vectors.
//! * **[`Client`]**: async (tokio, reqwest with rustls), bounded retries re-signed with a fresh
//!   nonce and only where a request cannot run twice by accident, timeouts and a total budget
//!   per call, body size caps, typed [`Error`]s that never hold a secret. Per request:
//!   [`RpcRequest::retry`], [`RpcRequest::timeout`], [`RpcRequest::idempotent`].
//! * **Requests** ([`request`]): parameters of any string, integer or boolean type, repeat lists
//!   (`InstanceId.N`, `Tag.N.Key`), JSON parameters; [`paginate`]: `PageNumber` and `NextToken`
//!   listings as a `Stream`; [`Client::call_as`] into your own types, with the failing path
//!   named.
//! * **[`guard`]**: recognises Alibaba's leak-protection answer, raises
//!   [`guard::CompromisedKey`] with remediation, remembers the key (across processes with a
//!   state directory) and refuses blocked calls before sending.
//! * **[`credentials`]**: static keys, environment, OIDC (RRSA), the CLI's `config.json`, the
//!   INI file, ECS instance roles, a credentials URI, AssumeRole, in the official order
//!   ([`credentials::DefaultChain`]), refreshed before they expire; secrets redacted and zeroed
//!   on drop.
//! * **Testing your code**: the `test-util` feature adds `testkit`, a mock Alibaba endpoint
//!   that verifies signatures and answers the leak error on demand, and builders of every error
//!   type.
//!
//! ## What is not (yet)
//!
//! * OSS, whose own signature scheme is neither RPC nor V3.
//! * Typed request and response structs per API: build [`RpcRequest`]s by name and
//!   deserialise answers with [`Client::call_as`].
//! * Browser sign-in profiles (CloudSSO, OAuth) in the CLI configuration.
//! * A blocking (non-async) client.
//!
//! ## Cargo features
//!
//! * `rustls` (default): TLS with rustls (aws-lc-rs) and the platform's certificate verifier,
//!   as reqwest's default.
//! * `native-tls`: TLS with the platform's library instead (OpenSSL on Linux, which needs
//!   `libssl-dev` and `pkg-config` to build; Secure Transport on macOS; SChannel on Windows):
//!   `default-features = false, features = ["native-tls"]`. With both features on, native TLS
//!   is used (reqwest's rule). With neither, only plain `http://` endpoints can be reached: an
//!   `https://` call fails, it never falls back to plain text.
//! * `test-util`: the test kit (a loopback mock endpoint on hyper, error builders). Meant for
//!   `[dev-dependencies]`.
//! * `redis`: the guard's shared state on Redis (`rediss://` always over rustls).
//! * `cli`: the `aliyun-guard` command line.
//!
//! Two dependencies appear in the public API and are re-exported so that you name the
//! versions this crate was built with: [`reqwest`] (0.13, for
//! [`ClientBuilder::http_client`] and the sources of transport errors) and [`time`] (0.3, for
//! expiry and detection times such as [`Credentials::expiry`]).
//!
//! The minimum supported Rust version is 1.89 (`package.rust-version`; CI runs clippy's
//! `incompatible_msrv` check).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod client;
pub mod credentials;
mod encode;
pub mod endpoint;
pub mod error;
pub mod feed;
#[allow(dead_code)] // used by the guard's store and the credential providers
mod fs_safe;
pub mod guard;
pub mod paginate;
mod redact;
pub mod request;
pub(crate) mod response;
mod retry;
mod secret;
pub mod signing;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testkit;

pub use client::{Client, ClientBuilder, ProbeOutcome};
pub use error::compromised::CompromisedKey;
pub use error::{
    AccessDeniedDetail, ApiError, Error, ResponseFault, SignatureDiagnosis, TimeoutPhase,
    UnexpectedResponse,
};
#[allow(deprecated)]
pub use guard::{Guard, LeakPolicy, Policy};
pub use paginate::Pagination;
pub use request::common::{Method, SignatureVersion};
pub use request::roa::RoaRequest;
pub use request::{ParamValue, RpcRequest};
/// The reqwest this crate sends with (0.13): build the builder given to
/// [`ClientBuilder::http_client`] from this path, so that its version always matches, whatever
/// reqwest your own crate depends on. Transport errors carry its `reqwest::Error` as source.
pub use reqwest;
pub use retry::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_READ_TIMEOUT, DEFAULT_TOTAL_TIMEOUT,
    RetryPolicy, UNLIMITED, USER_AGENT_VALUE,
};
pub use secret::Credentials;
/// The time crate (0.3) of the public API: [`Credentials::with_expiry`] and
/// [`Credentials::expiry`], the guard's records ([`CompromisedKey::first_seen`], ...), injected
/// clocks ([`signing::Signer::with_clock`]). Use this path to name its types with the same
/// version.
pub use time;

/// The probe's call (product, version, action).
pub use client::PROBE_CALL;

/// Internals for this crate's own fuzz targets, benchmarks and tests.
///
/// **Not public API**: hidden from the documentation, outside semantic versioning, and free to
/// change or vanish in any release. Applications use the documented items instead.
#[doc(hidden)]
pub mod __internal {
    use crate::signing::Method;

    pub use crate::encode::{format_timestamp, percent_decode, percent_encode};
    pub use crate::guard::detect::{detect_body, fields_are_leak, is_leak_answer};
    pub use crate::guard::store::{MAX_STATE_BYTES, StateSummary, check_state_file};
    pub use crate::guard::table::MAX_TABLE_BYTES;
    pub use crate::request::common::is_reserved;
    pub use crate::request::path::{check_encoded_path, encode_path_segments};
    pub use crate::response::{Decoded, ErrorFields, decode, snippet};
    pub use crate::signing::diagnose::server_string_to_sign;
    pub use crate::signing::v3::{SignedV3, V3Request, sign_v3};

    /// The intermediate values of an RPC 1.0 signature (see [`sign_params`]).
    #[derive(Clone, PartialEq, Eq)]
    pub struct SignatureParts {
        /// The sorted, encoded `name=value&...` query (without `Signature`).
        pub canonical_query: String,
        /// `METHOD&%2F&pct(canonical_query)`.
        pub string_to_sign: String,
        /// `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
        pub signature: String,
    }

    impl std::fmt::Debug for SignatureParts {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SignatureParts")
                .field("canonical_query_len", &self.canonical_query.len())
                .field("signature", &"<redacted>")
                .finish()
        }
    }

    /// Signs a parameter set with RPC signature 1.0 (HMAC-SHA1).
    pub fn sign_params(method: Method, params: &[(&str, &str)], secret: &str) -> SignatureParts {
        let parts = crate::signing::sign_params(method, params, secret);
        SignatureParts {
            canonical_query: parts.canonical_query.clone(),
            string_to_sign: parts.string_to_sign.clone(),
            signature: parts.signature.clone(),
        }
    }

    /// The RPC canonical query: sorted by raw name, `pct(name)=pct(value)` joined by `&`.
    pub fn canonical_query(params: &[(&str, &str)]) -> String {
        crate::signing::canonical_query(params)
    }

    /// The RPC string to sign: `METHOD&%2F&pct(canonical_query)`.
    pub fn string_to_sign(method: Method, canonical_query: &str) -> String {
        crate::signing::string_to_sign(method, canonical_query)
    }

    /// The RPC signature: `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
    pub fn signature(secret: &str, string_to_sign: &str) -> String {
        crate::signing::signature(secret, string_to_sign)
    }

    /// The ROA (signature 1.0) string to sign.
    pub fn roa_string_to_sign(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> String {
        crate::signing::roa::roa_string_to_sign(method, path, query, headers)
    }

    /// The ROA signature: `base64(HMAC-SHA1(secret, string_to_sign))`.
    pub fn roa_signature(secret: &str, string_to_sign: &str) -> String {
        crate::signing::roa::roa_signature(secret, string_to_sign)
    }

    /// Whether the V3 signer sets header `name` itself.
    pub fn is_reserved_header(name: &str) -> bool {
        crate::signing::v3::is_reserved_header(name)
    }
}

/// The README's code blocks, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
