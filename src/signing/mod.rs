//! Alibaba Cloud RPC signatures (`SignatureVersion=1.0`, HMAC-SHA1): pure, no I/O.
//!
//! # The canonical request
//!
//! For a request with method `M` and parameters `P` (the query for GET, the form body for POST;
//! every parameter except `Signature` is signed):
//!
//! 1. `pct(s)` percent-encodes the UTF-8 bytes of `s`: `A-Z a-z 0-9 - _ . ~` stay, every other
//!    byte becomes `%XX` with upper-case hex (space is `%20`, `*` is `%2A`).
//! 2. The **canonical query** sorts `P` by parameter name (byte order of the raw name) and joins
//!    `pct(name)=pct(value)` with `&`.
//! 3. The **string to sign** is `M & pct("/") & pct(canonical query)`, for example
//!    `GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions...`.
//! 4. The **signature** is `base64(HMAC-SHA1(key = secret + "&", string to sign))`.
//!
//! [`Signer`] adds the common parameters (key id, nonce, timestamp, ...) to an [`RpcRequest`]
//! and signs it, for the client or for your own HTTP stack; its clock and nonce source are
//! injectable so that tests can reproduce published vectors (the steps above are
//! crate-internal functions, checked against Alibaba's published example and 240 vectors of
//! the official SDK).
//!
//! ```
//! use aliyun_guard::signing::Signer;
//! use aliyun_guard::{Credentials, Method, RpcRequest};
//! use time::macros::datetime;
//!
//! let signer = Signer::new()
//!     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
//!     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
//! let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
//! let signed = signer.sign(&request, &Credentials::new("testid", "testsecret"));
//! assert!(signed.string_to_sign().starts_with("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions"));
//! assert!(signed.encoded_params().contains("&Signature="));
//! ```

pub(crate) mod diagnose;
mod instructions;
pub mod roa;
pub(crate) mod v3;

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use time::OffsetDateTime;

use crate::encode::{Sink, percent_encode_twice};
pub(crate) use crate::encode::{format_timestamp, percent_decode, percent_encode_into};
pub(crate) use crate::request::common::is_reserved;
pub use crate::request::common::{Method, RESERVED_PARAMS, SignatureVersion};
use crate::secret::HmacSha1Writer;
pub(crate) use diagnose::{diagnose, server_string_to_sign};
pub(crate) use instructions::{Evidence, Instructions, server_quote_v3};

use crate::request::RpcRequest;
use crate::secret::{Credentials, HmacSha1Key};

/// The intermediate values and result of signing a parameter set.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SignatureParts {
    /// The sorted, encoded `name=value&...` query (without `Signature`).
    pub canonical_query: String,
    /// `METHOD&%2F&pct(canonical_query)`.
    pub string_to_sign: String,
    /// `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
    pub signature: String,
}

impl fmt::Debug for SignatureParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The canonical query can hold a security token; the signature is a bearer value.
        f.debug_struct("SignatureParts")
            .field("canonical_query_len", &self.canonical_query.len())
            .field("signature", &"<redacted>")
            .finish()
    }
}

/// Builds the canonical query of `params`: sorted by raw name, `pct(name)=pct(value)` joined by `&`.
///
/// ```
/// use aliyun_guard::__internal::canonical_query;
/// assert_eq!(canonical_query(&[("b", "x y"), ("a", "*")]), "a=%2A&b=x%20y");
/// ```
pub(crate) fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    canonical_query_sorted(&mut sorted)
}

/// Sorts `params` in place (stable, by raw name bytes) and encodes them.
fn canonical_query_sorted(params: &mut [(&str, &str)]) -> String {
    params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let estimate: usize = params.iter().map(|(k, v)| k.len() + v.len() * 3 + 2).sum();
    let mut out = String::with_capacity(estimate);
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, name);
        out.push('=');
        percent_encode_into(&mut out, value);
    }
    out
}

/// Builds `METHOD&%2F&pct(canonical_query)`.
///
/// ```
/// use aliyun_guard::__internal::string_to_sign;
/// use aliyun_guard::Method;
/// assert_eq!(string_to_sign(Method::Post, "a=%2A&b=1"), "POST&%2F&a%3D%252A%26b%3D1");
/// ```
pub(crate) fn string_to_sign(method: Method, canonical_query: &str) -> String {
    let mut out = String::with_capacity(canonical_query.len() + canonical_query.len() / 4 + 16);
    out.push_str(method.as_str());
    out.push_str("&%2F&");
    percent_encode_into(&mut out, canonical_query);
    out
}

/// Computes `base64(HMAC-SHA1(key = secret + "&", string_to_sign))`.
pub(crate) fn signature(secret: &str, string_to_sign: &str) -> String {
    // The same key schedule the credentials keep (zeroed on drop), built for this one use.
    let key = HmacSha1Key::new(&[secret.as_bytes(), b"&"]);
    base64::engine::general_purpose::STANDARD.encode(key.sign(string_to_sign.as_bytes()))
}

/// Signs a complete parameter set (common parameters included) as given.
pub(crate) fn sign_params(method: Method, params: &[(&str, &str)], secret: &str) -> SignatureParts {
    let canonical_query = canonical_query(params);
    let string_to_sign = string_to_sign(method, &canonical_query);
    let signature = signature(secret, &string_to_sign);
    SignatureParts {
        canonical_query,
        string_to_sign,
        signature,
    }
}

/// The string to sign goes straight into the HMAC.
impl Sink for HmacSha1Writer<'_> {
    #[inline]
    fn push(&mut self, text: &str) {
        self.write(text.as_bytes());
    }
}

/// What explains a signature 1.0 `SignatureDoesNotMatch`: the server's string to sign (quoted
/// in `raw_message`) against ours, rebuilt from what was sent (`encoded`, with `method`).
pub(crate) fn diagnose_v1(
    method: Method,
    encoded: &[u8],
    raw_message: &str,
    credentials: &Credentials,
    params: &std::collections::BTreeMap<String, String>,
) -> crate::error::SignatureDiagnosis {
    match server_string_to_sign(raw_message) {
        Some(theirs) => {
            let ours =
                string_to_sign_of_encoded(method, std::str::from_utf8(encoded).unwrap_or_default());
            diagnose(&ours, theirs, credentials, params)
        }
        None => crate::error::SignatureDiagnosis::Unavailable,
    }
}

/// Rebuilds the string to sign from encoded parameters as [`Signer::sign`] produces them (the
/// canonical query followed by `&Signature=...`).
pub(crate) fn string_to_sign_of_encoded(method: Method, encoded: &str) -> String {
    let canonical = match encoded.rfind("&Signature=") {
        Some(at) => &encoded[..at],
        None => encoded.strip_prefix("Signature=").map_or(encoded, |_| ""),
    };
    string_to_sign(method, canonical)
}

/// A common parameter the signer adds: its name, and `&Name=` as it appears in the canonical
/// query and in the string to sign (names are unreserved).
struct CommonName {
    name: &'static str,
    once: &'static str,
    twice: &'static str,
}

macro_rules! common_names {
    ($($name:literal),* $(,)?) => {
        [$(CommonName {
            name: $name,
            once: concat!("&", $name, "="),
            twice: concat!("%26", $name, "%3D"),
        }),*]
    };
}

/// The common parameters, in byte order of their names, so that they merge with the request's
/// parameters (a BTreeMap: also in byte order) without a sort. [`COMMON_VALUES`] entries follow
/// this order.
const COMMON: [CommonName; 10] = common_names![
    "AccessKeyId",
    "Action",
    "Format",
    "RegionId",
    "SecurityToken",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
];

/// How many common parameters there are (the length of [`COMMON`]).
const COMMON_VALUES: usize = COMMON.len();

/// A common parameter's value and how it goes into the query.
#[derive(Clone, Copy)]
enum CommonValue<'a> {
    /// Known to need no escaping.
    Plain(&'a str),
    /// Escaped as it is written.
    Escaped(&'a str),
    /// Already escaped once and twice (the credentials' security token, encoded once per
    /// credentials value and kept with them), and its raw length.
    Encoded(&'a str, &'a str, usize),
}

impl CommonValue<'_> {
    /// The length of the raw value.
    fn raw_len(self) -> usize {
        match self {
            CommonValue::Plain(v) | CommonValue::Escaped(v) => v.len(),
            CommonValue::Encoded(_, _, len) => len,
        }
    }
}

type ClockFn = dyn Fn() -> OffsetDateTime + Send + Sync;
type NonceFn = dyn Fn() -> String + Send + Sync;

/// Adds the common parameters to a request and signs it.
///
/// By default every call to [`Signer::sign`] takes the current UTC time and a fresh random UUID
/// nonce, so each request, and each retry of it, is signed anew. Tests inject both:
///
/// ```
/// use aliyun_guard::{Credentials, RpcRequest, signing::{Method, Signer}};
/// use time::macros::datetime;
///
/// let signer = Signer::new()
///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
/// let creds = Credentials::new("testid", "testsecret");
/// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
/// let signed = signer.sign(&request, &creds);
/// assert!(signed.string_to_sign().starts_with("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions"));
/// ```
#[derive(Clone)]
pub struct Signer {
    clock: Option<Arc<ClockFn>>,
    nonce: Option<Arc<NonceFn>>,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field(
                "clock",
                &if self.clock.is_some() {
                    "injected"
                } else {
                    "system"
                },
            )
            .field(
                "nonce",
                &if self.nonce.is_some() {
                    "injected"
                } else {
                    "uuid-v4"
                },
            )
            .finish()
    }
}

impl Signer {
    /// A signer using the system clock (UTC) and random UUID v4 nonces.
    ///
    /// ```
    /// use aliyun_guard::{Client, Credentials};
    /// use aliyun_guard::signing::Signer;
    ///
    /// // The client's default; inject one built with `with_clock`/`with_nonce` in tests.
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .signer(Signer::new())
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn new() -> Self {
        Self {
            clock: None,
            nonce: None,
        }
    }

    /// Replaces the clock (for tests and reproducible vectors).
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(signer.sign(&request, &creds).timestamp(), "2016-02-23T12:46:24Z");
    /// ```
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Replaces the nonce source (for tests and reproducible vectors).
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(signer.sign(&request, &creds).nonce(), "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf");
    /// ```
    pub fn with_nonce(mut self, nonce: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.nonce = Some(Arc::new(nonce));
        self
    }

    fn now(&self) -> OffsetDateTime {
        match &self.clock {
            Some(clock) => clock(),
            None => OffsetDateTime::now_utc(),
        }
    }

    /// A nonce, and whether it is known to need no percent-encoding (a generated UUID is
    /// lower-case hex and hyphens; an injected one is encoded as any value).
    fn next_nonce(&self) -> (Nonce, bool) {
        match &self.nonce {
            Some(nonce) => (Nonce::Given(nonce()), false),
            None => {
                // Random (uuid's thread-local CSPRNG), formatted in place: no allocation.
                let mut text = [0u8; 36];
                uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
                (Nonce::Uuid(text), true)
            }
        }
    }

    /// Signs `request` with `credentials`: adds `AccessKeyId`, `Action`, `Version`,
    /// `Format=JSON`, `SignatureMethod`, `SignatureVersion`, `SignatureNonce`, `Timestamp`,
    /// `SecurityToken` (STS credentials) and `RegionId` (when the request names a region and
    /// does not set it), and computes the signature.
    ///
    /// Reserved parameter names set by the request are ignored here; [`RpcRequest::validate`]
    /// rejects them before a call is made.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// let signed = signer.sign(&request, &creds);
    /// // Send `encoded_params` as the query of `GET https://ecs.aliyuncs.com/?...` with any HTTP client.
    /// assert!(signed.encoded_params().contains("&Signature="));
    /// assert!(signed.encoded_params().contains("Action=DescribeRegions"));
    /// ```
    pub fn sign(&self, request: &RpcRequest, credentials: &Credentials) -> SignedRequest {
        self.sign_with_default_region(request, credentials, None)
    }

    /// As [`Signer::sign`], with the region to send as `RegionId` when the request names none
    /// (a client's default region).
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// let signed = signer.sign_with_default_region(&request, &creds, Some("cn-hangzhou"));
    /// assert!(signed.encoded_params().contains("RegionId=cn-hangzhou"));
    /// ```
    pub fn sign_with_default_region(
        &self,
        request: &RpcRequest,
        credentials: &Credentials,
        default_region: Option<&str>,
    ) -> SignedRequest {
        let timestamp = match &self.clock {
            Some(clock) => crate::encode::timestamp_at(clock()),
            None => crate::encode::timestamp_now(),
        };
        let (nonce, nonce_is_plain) = self.next_nonce();
        let region = request
            .get_region()
            .or(default_region)
            .filter(|_| !request.parameters().contains_key("RegionId"));
        let plain_or_escaped = |value, plain| {
            if plain {
                CommonValue::Plain(value)
            } else {
                CommonValue::Escaped(value)
            }
        };
        // In the order of `COMMON`; `None`: not sent (no region, no token).
        let values: [Option<CommonValue<'_>>; COMMON_VALUES] = [
            Some(CommonValue::Escaped(credentials.access_key_id())),
            Some(CommonValue::Escaped(request.action())),
            Some(CommonValue::Plain("JSON")),
            region.map(CommonValue::Escaped),
            credentials
                .security_token()
                .map(|token| match credentials.v1_encoded_token() {
                    Some((once, twice)) => CommonValue::Encoded(once, twice, token.len()),
                    None => CommonValue::Escaped(token),
                }),
            Some(CommonValue::Plain("HMAC-SHA1")),
            Some(plain_or_escaped(nonce.as_str(), nonce_is_plain)),
            Some(CommonValue::Plain("1.0")),
            Some(CommonValue::Escaped(timestamp.as_str())),
            Some(CommonValue::Escaped(request.version())),
        ];
        debug_assert!(COMMON.windows(2).all(|w| w[0].name < w[1].name));
        let raw_len: usize = COMMON
            .iter()
            .zip(&values)
            .filter_map(|(name, value)| value.map(|v| name.once.len() + v.raw_len()))
            .sum::<usize>()
            + request
                .parameters()
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        // The next common parameter to merge (an index into `COMMON` and `values`).
        let next_common = |from: usize| (from..COMMON_VALUES).find(|&i| values[i].is_some());
        let mut common = next_common(0);
        let mut user = request
            .parameters()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !is_reserved(k))
            .peekable();
        let method = request.get_method();
        // Every escaped byte takes three in the canonical query, and five in the string to sign.
        let mut encoded = String::with_capacity(raw_len + raw_len / 2 + 64);
        // The string to sign is only needed for the HMAC (and rebuilt from `encoded` for a rare
        // `SignatureDoesNotMatch`): it is hashed as it is encoded and never exists whole (it can
        // hold a security token). The writer starts from the key schedule kept with the
        // credentials (no re-keying per call) and zeroes its state and block when dropped.
        let mut string_to_sign = credentials.v1_signing_key().writer();
        string_to_sign.push(method.as_str());
        string_to_sign.push("&%2F&");
        // Merge the two sorted sequences by raw name bytes; the canonical query and the string
        // to sign (its encoding) are built in one pass.
        loop {
            let first = encoded.is_empty();
            let take_user = match (common, user.peek()) {
                (Some(c), Some(u)) => u.0.as_bytes() < COMMON[c].name.as_bytes(),
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (None, None) => break,
            };
            if take_user {
                let Some((name, value)) = user.next() else {
                    break;
                };
                if !first {
                    encoded.push('&');
                    string_to_sign.push("%26");
                }
                percent_encode_twice(&mut encoded, &mut string_to_sign, name);
                encoded.push('=');
                string_to_sign.push("%3D");
                percent_encode_twice(&mut encoded, &mut string_to_sign, value);
            } else {
                let Some((c, Some(value))) = common.map(|c| (c, values[c])) else {
                    break;
                };
                common = next_common(c + 1);
                let name = &COMMON[c];
                let (once, twice) = if first {
                    (&name.once[1..], &name.twice[3..])
                } else {
                    (name.once, name.twice)
                };
                encoded.push_str(once);
                string_to_sign.push(twice);
                match value {
                    CommonValue::Encoded(once, twice, _) => {
                        encoded.push_str(once);
                        string_to_sign.push(twice);
                    }
                    CommonValue::Plain(value) => {
                        encoded.push_str(value);
                        string_to_sign.push(value);
                    }
                    CommonValue::Escaped(value) => {
                        percent_encode_twice(&mut encoded, &mut string_to_sign, value);
                    }
                }
            }
        }
        let signature = string_to_sign.finish();
        drop(user);
        encoded.push_str("&Signature=");
        // base64 of the 20-byte MAC on the stack (28 characters), percent-encoded in place.
        let mut base64 = [0u8; 28];
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(signature, &mut base64)
            .unwrap_or(0);
        percent_encode_into(
            &mut encoded,
            std::str::from_utf8(&base64[..written]).unwrap_or_default(),
        );
        SignedRequest {
            method,
            encoded,
            nonce,
            timestamp,
        }
    }
}

/// A signed request: the encoded parameters (query or form body) including `Signature`.
///
/// Its `Debug` shows only the nonce and timestamp: the parameters hold the signature and, with STS
/// credentials, the security token.
///
/// ```
/// use aliyun_guard::signing::Signer;
/// use aliyun_guard::{Credentials, Method, RpcRequest};
/// use time::macros::datetime;
///
/// let signer = Signer::new()
///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
/// let creds = Credentials::new("testid", "testsecret");
/// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
/// let signed = signer.sign(&request, &creds);
/// assert_eq!(signed.method(), Method::Get);
/// // Its Debug output never shows the signature or a token.
/// assert!(!format!("{signed:?}").contains("Signature="));
/// ```
#[derive(Clone)]
pub struct SignedRequest {
    method: Method,
    encoded: String,
    nonce: Nonce,
    timestamp: crate::encode::Timestamp,
}

/// A `SignatureNonce`: a generated UUID kept inline, or an injected string.
#[derive(Clone)]
pub(crate) enum Nonce {
    /// A hyphenated lower-case UUID v4 (ASCII).
    Uuid([u8; 36]),
    Given(String),
}

impl Nonce {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Always ASCII; the check is a formality that cannot fail.
            Nonce::Uuid(text) => std::str::from_utf8(text).unwrap_or_default(),
            Nonce::Given(text) => text,
        }
    }
}

impl SignedRequest {
    /// The method the request was signed for.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(signer.sign(&request, &creds).method(), Method::Get);
    /// ```
    pub fn method(&self) -> Method {
        self.method
    }
    /// The URL query (GET) or form body (POST): canonical query plus `&Signature=...`.
    /// Contains the signature and any security token: never log it.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// let signed = signer.sign(&request, &creds);
    /// let url = format!("https://ecs.aliyuncs.com/?{}", signed.encoded_params());
    /// assert!(url.contains("SignatureMethod=HMAC-SHA1"));
    /// ```
    pub fn encoded_params(&self) -> &str {
        &self.encoded
    }
    /// Consumes the request, giving the encoded parameters.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// let body: String = signer.sign(&request, &creds).into_encoded_params();
    /// assert!(body.starts_with("AccessKeyId=testid&"));
    /// ```
    pub fn into_encoded_params(self) -> String {
        self.encoded
    }
    /// Consumes the request: its method, encoded parameters and nonce, without copies.
    pub(crate) fn into_parts(self) -> (Method, String, Nonce) {
        (self.method, self.encoded, self.nonce)
    }
    /// The string that was signed, rebuilt from the encoded parameters. Contains the security
    /// token of STS credentials.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// let signed = signer.sign(&request, &creds);
    /// assert!(signed.string_to_sign().starts_with("GET&%2F&AccessKeyId%3Dtestid"));
    /// ```
    pub fn string_to_sign(&self) -> String {
        string_to_sign_of_encoded(self.method, &self.encoded)
    }
    /// The `SignatureNonce` used.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(signer.sign(&request, &creds).nonce(), "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf");
    /// ```
    pub fn nonce(&self) -> &str {
        self.nonce.as_str()
    }
    /// The `Timestamp` used.
    ///
    /// ```
    /// use aliyun_guard::signing::Signer;
    /// use aliyun_guard::{Credentials, Method, RpcRequest};
    /// use time::macros::datetime;
    ///
    /// let signer = Signer::new()
    ///     .with_clock(|| datetime!(2016-02-23 12:46:24 UTC))
    ///     .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    /// let creds = Credentials::new("testid", "testsecret");
    /// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
    /// assert_eq!(signer.sign(&request, &creds).timestamp(), "2016-02-23T12:46:24Z");
    /// ```
    pub fn timestamp(&self) -> &str {
        self.timestamp.as_str()
    }
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("nonce", &self.nonce.as_str())
            .field("timestamp", &self.timestamp.as_str())
            .field("params", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::percent_encode;
    use hmac::{Hmac, Mac};
    use sha1::Sha1;

    /// The former doc example (the item is crate-private now).
    #[test]
    fn string_to_sign_of_encoded_drops_the_signature() {
        assert_eq!(
            string_to_sign_of_encoded(Method::Get, "A=1&B=x%20y&Signature=abc%3D"),
            "GET&%2F&A%3D1%26B%3Dx%2520y"
        );
    }

    fn doc_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Version", "2014-05-26"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
        ]
    }

    #[test]
    fn published_doc_vector() {
        let parts = sign_params(Method::Get, &doc_params(), "testsecret");
        assert_eq!(
            parts.canonical_query,
            "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1\
             &SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0\
             &Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
        );
        assert_eq!(
            parts.string_to_sign,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(parts.signature, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn go_sdk_vectors() {
        let mut params = vec![
            ("Version", ""),
            ("Action", ""),
            ("Format", "JSON"),
            ("Timestamp", "mock date"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureType", ""),
            ("SignatureNonce", "MOCK_UUID"),
            ("AccessKeyId", "accessKeyId"),
            ("RegionId", "regionId"),
        ];
        let parts = sign_params(Method::Get, &params, "accessKeySecret");
        assert_eq!(parts.signature, "7loPmFjvDnzOVnQeQNj85S6nFGY=");
        params.push(("SecurityToken", "accessKeyStsToken"));
        let parts = sign_params(Method::Get, &params, "accessKeySecret");
        assert_eq!(parts.signature, "5Nxdcler+ihqWqv0Hr2On4PsBf4=");
    }

    #[test]
    fn sorting_is_by_raw_bytes_not_encoded_form() {
        // Upper case sorts before lower case; '.' (0x2E) before digits; raw UTF-8 after ASCII.
        let q = canonical_query(&[
            ("b", "1"),
            ("B", "2"),
            ("a.1", "3"),
            ("a1", "4"),
            ("é", "5"),
        ]);
        assert_eq!(q, "B=2&a.1=3&a1=4&b=1&%C3%A9=5");
    }

    #[test]
    fn empty_values_and_empty_set() {
        assert_eq!(canonical_query(&[("a", ""), ("b", "")]), "a=&b=");
        assert_eq!(canonical_query(&[]), "");
        assert_eq!(string_to_sign(Method::Get, ""), "GET&%2F&");
    }

    #[test]
    fn the_string_to_sign_double_encodes() {
        let sts = string_to_sign(Method::Get, &canonical_query(&[("k", "a b%")]));
        assert_eq!(sts, "GET&%2F&k%3Da%2520b%2525");
    }

    #[test]
    fn signer_adds_common_parameters_and_fresh_nonces() {
        let creds =
            Credentials::new("LTAI5tExampleExample1234", "secret").with_security_token("tok");
        let req = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
            .region("cn-hangzhou")
            .param("PageSize", "10");
        let signer = Signer::new();
        let a = signer.sign(&req, &creds);
        let b = signer.sign(&req, &creds);
        assert_ne!(a.nonce(), b.nonce());
        for needle in [
            "AccessKeyId=LTAI5tExampleExample1234",
            "Action=DescribeRegions",
            "Format=JSON",
            "SignatureMethod=HMAC-SHA1",
            "SignatureVersion=1.0",
            "SecurityToken=tok",
            "RegionId=cn-hangzhou",
            "PageSize=10",
            "&Signature=",
        ] {
            assert!(a.encoded_params().contains(needle), "missing {needle}");
        }
        assert_eq!(a.timestamp().len(), 20);
        assert!(a.timestamp().ends_with('Z'));
    }

    #[test]
    fn a_pre_encoded_security_token_signs_as_encoding_it_per_call() {
        // An STS-like token: base64 with `+`, `/`, `=`, and bytes outside ASCII.
        let token = "CAIS+gF1q6Ft5B2yfSjIr5bSEs/Hm+lK0a==中 ~*".repeat(20);
        let creds = Credentials::new("STS.NExample0000", "secret").with_security_token(&token);
        let req = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Post);
        let signer = Signer::new()
            .with_clock(|| time::macros::datetime!(2026-01-02 03:04:05 UTC))
            .with_nonce(|| "nonce".into());
        let signed = signer.sign(&req, &creds);
        let params = [
            ("AccessKeyId", "STS.NExample0000"),
            ("Action", "DescribeRegions"),
            ("Format", "JSON"),
            ("SecurityToken", token.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "nonce"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2026-01-02T03:04:05Z"),
            ("Version", "2014-05-26"),
        ];
        let expected = sign_params(Method::Post, &params, "secret");
        assert_eq!(signed.string_to_sign(), expected.string_to_sign);
        assert_eq!(
            signed.encoded_params(),
            format!(
                "{}&Signature={}",
                expected.canonical_query,
                percent_encode(&expected.signature)
            )
        );
    }

    #[test]
    fn the_signer_agrees_with_sign_params() {
        let creds =
            Credentials::new("LTAI5tExampleExample1234", "secret").with_security_token("t/k");
        let req = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
            .region("cn-hangzhou")
            .params([
                ("a", "1"),
                ("Z", "2"),
                ("Tag.1.Key", "x y"),
                ("Signaturf", "s"),
                ("名", "v"),
            ])
            .method(Method::Get);
        let signer = Signer::new()
            .with_clock(|| time::macros::datetime!(2026-01-02 03:04:05 UTC))
            .with_nonce(|| "nonce".into());
        let signed = signer.sign(&req, &creds);
        let mut params: Vec<(&str, &str)> = vec![
            ("AccessKeyId", "LTAI5tExampleExample1234"),
            ("Action", "DescribeRegions"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "nonce"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2026-01-02T03:04:05Z"),
            ("Version", "2014-05-26"),
            ("SecurityToken", "t/k"),
            ("RegionId", "cn-hangzhou"),
        ];
        params.extend(
            req.parameters()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let parts = sign_params(Method::Get, &params, "secret");
        assert_eq!(signed.string_to_sign(), parts.string_to_sign);
        assert_eq!(
            signed.encoded_params(),
            format!(
                "{}&Signature={}",
                parts.canonical_query,
                percent_encode(&parts.signature)
            )
        );
    }

    #[test]
    fn explicit_region_id_parameter_wins() {
        let creds = Credentials::new("id", "secret");
        let req = RpcRequest::new("Ecs", "2014-05-26", "X")
            .region("cn-hangzhou")
            .param("RegionId", "cn-beijing");
        let s = Signer::new().sign(&req, &creds);
        assert!(s.encoded_params().contains("RegionId=cn-beijing"));
        assert!(!s.encoded_params().contains("cn-hangzhou"));
    }

    #[test]
    fn timestamp_has_no_fraction_and_is_utc() {
        let t = time::macros::datetime!(2024-04-18 09:00:00.123456 +08:00);
        assert_eq!(format_timestamp(t), "2024-04-18T01:00:00Z");
        // The per-second cache gives the next second its own string.
        let next = time::macros::datetime!(2024-04-18 01:00:01 UTC);
        assert_eq!(format_timestamp(next), "2024-04-18T01:00:01Z");
        assert_eq!(format_timestamp(t), "2024-04-18T01:00:00Z");
    }

    #[test]
    fn long_secrets_sign_like_short_ones() {
        // A 64-byte-or-longer key takes the other path: check against the published HMAC rule.
        let long = "k".repeat(80);
        let sts = "GET&%2F&A%3D1";
        let mut mac = Hmac::<Sha1>::new_from_slice(format!("{long}&").as_bytes()).unwrap();
        mac.update(sts.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(signature(&long, sts), expected);
        for n in [0, 1, 62, 63, 64, 65] {
            let secret = "s".repeat(n);
            let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
            mac.update(sts.as_bytes());
            let expected =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            assert_eq!(signature(&secret, sts), expected, "secret of {n} bytes");
        }
        assert!(RESERVED_PARAMS.iter().all(|p| is_reserved(p)));
        assert!(!is_reserved("RegionId"));
    }

    #[test]
    fn generated_nonces_are_distinct_uuid_v4s() {
        let signer = Signer::new();
        let creds = Credentials::new("id", "secret");
        let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let signed = signer.sign(&request, &creds);
            let nonce = signed.nonce();
            let parsed = uuid::Uuid::parse_str(nonce).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            // Lower-case hyphenated, exactly as sent unescaped.
            assert_eq!(nonce, parsed.hyphenated().to_string());
            assert!(
                signed
                    .encoded_params()
                    .contains(&format!("&SignatureNonce={nonce}&"))
            );
            assert!(seen.insert(nonce.to_string()), "nonce repeated");
        }
    }

    #[test]
    fn the_signer_signs_with_the_credentials_key_schedule() {
        // The signature the signer sends is the published HMAC rule over its string to sign,
        // for short, block-sized and long secrets.
        for n in [0, 1, 62, 63, 64, 65, 80] {
            let secret = "s".repeat(n);
            let creds = Credentials::new("id", secret.as_str());
            let signed = Signer::new().sign(&RpcRequest::new("Ecs", "v", "A"), &creds);
            let sts = signed.string_to_sign();
            let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
            mac.update(sts.as_bytes());
            let expected =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            assert!(
                signed
                    .encoded_params()
                    .ends_with(&format!("&Signature={}", percent_encode(&expected))),
                "secret of {n} bytes"
            );
        }
    }

    #[test]
    fn debug_hides_parameters() {
        let creds = Credentials::new("id", "secret").with_security_token("TOKENVALUE");
        let s = Signer::new().sign(&RpcRequest::new("Ecs", "v", "A"), &creds);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("TOKENVALUE"));
        assert!(!dbg.contains("Signature="));
    }
}
