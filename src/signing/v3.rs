//! Signature V3 (`ACS3-HMAC-SHA256`) for RPC and ROA calls: pure, no clock, no randomness.
//!
//! [`sign_v3`] takes a [`V3Request`] (method, encoded path, query parameters, headers, body,
//! host, action, version), the credentials, the time and a nonce, and returns [`SignedV3`]: the
//! instructions to send the request (the headers to set, the encoded query, the body unchanged)
//! and, for diagnosis, the canonical request and the string to sign.
//!
//! # The algorithm
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
//! StringToSign     = "ACS3-HMAC-SHA256\n" + hex(SHA256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(key = AccessKeySecret, StringToSign))
//! Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2;...>,Signature=<hex>
//! ```
//!
//! * Encoding (path segments, query names and values): RFC 3986 unreserved bytes
//!   `A-Z a-z 0-9 - _ . ~` stay, every other UTF-8 byte becomes `%XX` (upper-case hex): space is
//!   `%20`, `*` is `%2A`, `~` stays.
//! * The canonical query sorts the parameters by raw name (bytes) and joins
//!   `enc(name)=enc(value)` with `&`; the query sent is the same string.
//! * Signed headers: `host`, `content-type` when the request has one, and every `x-acs-*`
//!   header. Names are lower-cased, values trimmed of spaces and tabs, lines sorted by name; a
//!   repeated name joins its sorted values with `,`.
//! * The signer sets `host`, `x-acs-action`, `x-acs-version`, `x-acs-date`,
//!   `x-acs-signature-nonce`, `x-acs-content-sha256`, with STS credentials
//!   `x-acs-security-token` and `x-acs-accesskey-id`, and `authorization`; a request that sets
//!   one of them itself is refused.
//!
//! ```
//! use aliyun_guard::Credentials;
//! use aliyun_guard::__internal::{V3Request, sign_v3};
//! use time::macros::datetime;
//!
//! // The worked example of Alibaba's V3 documentation.
//! let request = V3Request::rpc("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26")
//!     .query("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd")
//!     .query("RegionId", "cn-shanghai");
//! let credentials = Credentials::new("YourAccessKeyId", "YourAccessKeySecret");
//! let signed = sign_v3(
//!     &request,
//!     &credentials,
//!     datetime!(2023-10-26 10:22:32 UTC),
//!     "3156853299f313e23d1673dc12e1703d",
//! )?;
//! assert_eq!(
//!     signed.header("authorization"),
//!     Some("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
//!           x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
//!           Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
//! );
//! assert_eq!(signed.method(), "POST");
//! assert_eq!(signed.path(), "/");
//! assert_eq!(signed.query(), "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai");
//! # Ok::<(), aliyun_guard::Error>(())
//! ```
//!
//! A ROA call fills its path template (see [`super::roa`]):
//!
//! ```
//! use aliyun_guard::Credentials;
//! use aliyun_guard::signing::roa::PathTemplate;
//! use aliyun_guard::__internal::{V3Request, sign_v3};
//!
//! let path = PathTemplate::parse("/clusters/{ClusterId}")?.fill(&[("ClusterId", "c82e6987e2961451182edacd74faf****")])?;
//! let request = V3Request::new("GET", "cs.cn-beijing.aliyuncs.com", "DescribeClusterDetail", "2015-12-15")
//!     .encoded_path(path);
//! let signed = sign_v3(&request, &Credentials::new("id", "secret"), time::OffsetDateTime::UNIX_EPOCH, "n1")?;
//! assert_eq!(signed.path(), "/clusters/c82e6987e2961451182edacd74faf%2A%2A%2A%2A");
//! assert!(signed.canonical_request().starts_with("GET\n/clusters/c82e6987e2961451182edacd74faf%2A%2A%2A%2A\n\n"));
//! # Ok::<(), aliyun_guard::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::encode::{format_timestamp, percent_encode_into};
use crate::error::{Error, SignatureDiagnosis};
use crate::request::path::check_encoded_path;
use crate::secret::{Credentials, mask_key_id};

/// The algorithm name: first line of the string to sign and first word of `Authorization`.
pub(crate) const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Lower-case hex SHA-256 of the empty body.
pub(crate) const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Headers the V3 signer sets itself; a request may not set them (compared case-insensitively).
pub(crate) const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "x-acs-accesskey-id",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-security-token",
    "x-acs-signature-method",
    "x-acs-signature-nonce",
    "x-acs-signature-version",
    "x-acs-version",
];

/// Longest nonce accepted, in bytes.
const MAX_NONCE_LEN: usize = 128;

/// Whether the V3 signer sets header `name` itself (see [`RESERVED_HEADERS`]).
pub(crate) fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// The body of a V3 request: bytes, or the SHA-256 of a body sent by other means.
#[derive(Clone, PartialEq, Eq)]
enum Payload {
    Bytes(Bytes),
    Hashed(String),
}

/// A request to sign with V3. Built with [`V3Request::rpc`] or [`V3Request::new`] and the
/// builder methods; checked by [`sign_v3`].
///
/// Its `Debug` shows the method, host, action, version and path, and only the names of the
/// query parameters and headers.
#[derive(Clone)]
pub struct V3Request {
    method: Cow<'static, str>,
    host: String,
    action: String,
    version: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    payload: Payload,
}

impl fmt::Debug for V3Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("action", &self.action)
            .field("version", &self.version)
            .field("path", &self.path)
            .field(
                "query",
                &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "body_len",
                &match &self.payload {
                    Payload::Bytes(b) => Some(b.len()),
                    Payload::Hashed(_) => None,
                },
            )
            .finish()
    }
}

impl V3Request {
    /// A request with `method` (such as `GET`, `POST`, `PUT`, `DELETE`) to `host` for `action`
    /// of API `version`, path `/`, no query, no headers, empty body.
    pub fn new(
        method: impl Into<Cow<'static, str>>,
        host: impl Into<String>,
        action: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            method: method.into(),
            host: host.into(),
            action: action.into(),
            version: version.into(),
            path: "/".to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            payload: Payload::Bytes(Bytes::new()),
        }
    }

    /// An RPC call under V3: `POST /`, parameters in the query (add them with
    /// [`V3Request::query`]).
    pub fn rpc(
        host: impl Into<String>,
        action: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self::new("POST", host, action, version)
    }

    /// Replaces the HTTP method.
    pub fn method(mut self, method: impl Into<Cow<'static, str>>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the path, already percent-encoded (for example the result of
    /// [`super::roa::PathTemplate::fill`]). [`sign_v3`] refuses a path with bytes that need
    /// encoding, bad escapes, or an empty, `.` or `..` segment.
    pub fn encoded_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the path from raw segments: each is encoded (a `/` inside one becomes `%2F`).
    pub fn path_segments<I, S>(mut self, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.path = crate::request::path::encode_path_segments(segments);
        self
    }

    /// Adds a query parameter (raw name and value; lists flattened by the caller, such as
    /// `Tag.1.Key`). A name given twice is refused by [`sign_v3`].
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds several query parameters.
    pub fn queries<I, K, V>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.query
            .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a header. `content-type` and `x-acs-*` headers are signed; the headers of
    /// `RESERVED_HEADERS` are refused by `sign_v3`, as are names that are not HTTP tokens
    /// and values with control characters (tab aside).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (sent unchanged; its SHA-256 is signed). Set its `content-type` with
    /// [`V3Request::header`], or use [`V3Request::json_body`].
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.payload = Payload::Bytes(body.into());
        self
    }

    /// Sets a JSON body and `content-type: application/json; charset=utf-8`.
    pub fn json_body(self, json: impl Into<Bytes>) -> Self {
        self.header("content-type", "application/json; charset=utf-8")
            .body(json)
    }

    /// Sets an `application/x-www-form-urlencoded` body from parameters (encoded as the
    /// query, in the given order) and its `content-type`.
    pub fn form_body<'a>(self, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut form = String::new();
        for (i, (name, value)) in params.into_iter().enumerate() {
            if i > 0 {
                form.push('&');
            }
            percent_encode_into(&mut form, name);
            form.push('=');
            percent_encode_into(&mut form, value);
        }
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(form)
    }

    /// Signs a body sent by other means (a stream) by its lower-case hex SHA-256;
    /// [`SignedV3::body`] is then empty.
    pub fn body_sha256(mut self, hex: impl Into<String>) -> Self {
        self.payload = Payload::Hashed(hex.into());
        self
    }

    /// The action (`x-acs-action`).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The API version (`x-acs-version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The host (`host`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The encoded path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Checks everything [`sign_v3`] checks about the request itself.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_but_repeated_names()?;
        let mut names: Vec<&str> = self.query.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        check_repeated(names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]))
    }

    /// [`V3Request::validate`] but the check for a query name given twice, which [`sign_v3`]
    /// makes on its sorted copy of the query.
    fn validate_but_repeated_names(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidRequest(m));
        if self.method.is_empty() || !self.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad(format!(
                "the HTTP method {:?} must be upper-case letters (GET, POST, PUT, DELETE, ...)",
                short(&self.method)
            ));
        }
        if self.host.is_empty()
            || self.host.len() > 255
            || !self
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return bad(format!(
                "the host {:?} must be a host name or address, with an optional port",
                short(&self.host)
            ));
        }
        for (what, value) in [("action", &self.action), ("version", &self.version)] {
            if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return bad(format!(
                    "the {what} {:?} must be visible ASCII without spaces",
                    short(value)
                ));
            }
        }
        check_encoded_path(&self.path)?;
        if self.query.iter().any(|(name, _)| name.is_empty()) {
            return bad("a query parameter has an empty name".into());
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return bad(format!(
                    "header name {:?} is not an HTTP token",
                    short(name)
                ));
            }
            if is_reserved_header(name) {
                return bad(format!(
                    "header {name:?} is set by the signer itself; remove it from the request"
                ));
            }
            if !is_header_value(value) {
                return bad(format!(
                    "the value of header {name:?} has a control character"
                ));
            }
        }
        if let Payload::Hashed(hex) = &self.payload
            && !(hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            return bad("the body hash must be 64 lower-case hex digits".into());
        }
        Ok(())
    }
}

fn check_repeated(name: Option<&str>) -> Result<(), Error> {
    match name {
        Some(name) => Err(Error::InvalidRequest(format!(
            "query parameter {:?} is given twice; flatten lists as Name.1, Name.2",
            short(name)
        ))),
        None => Ok(()),
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// RFC 9110 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A header value HTTP can carry: no control character but tab (UTF-8 allowed).
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Trims spaces and tabs (HTTP's optional whitespace), as a server sees the value.
fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// Whether a header (lower-case name) is signed: `host`, `content-type`, every `x-acs-*`.
fn is_signed(lower: &str) -> bool {
    lower == "host" || lower == "content-type" || lower.starts_with("x-acs-")
}

/// Appends lower-case hex of `bytes`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_hex(&mut out, &Sha256::digest(bytes));
    out
}

/// `ACS3-HMAC-SHA256\n` + hex(SHA-256(canonical request)).
pub(crate) fn string_to_sign_v3(canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + 65);
    out.push_str(ALGORITHM);
    out.push('\n');
    push_hex(&mut out, &Sha256::digest(canonical_request.as_bytes()));
    out
}

/// Lower-case hex HMAC-SHA256 of `string_to_sign` with the secret as key.
fn signature_hex(secret: &str, string_to_sign: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(string_to_sign.as_bytes());
    let mut digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    push_hex(&mut out, &digest);
    digest.as_mut_slice().zeroize();
    out
}

/// A header the signer sends: a lower-case name and its value.
type Header = (Cow<'static, str>, String);

/// The instructions to send a V3-signed request: method, path, query, headers and body.
///
/// It holds the signature (in `authorization`) and, with STS credentials, the security token:
/// its `Debug` shows neither, and its header values and canonical request are zeroed on drop.
#[non_exhaustive]
pub struct SignedV3 {
    method: Cow<'static, str>,
    path: String,
    query: String,
    headers: Vec<Header>,
    body: Bytes,
    canonical_request: String,
    string_to_sign: String,
}

impl Drop for SignedV3 {
    fn drop(&mut self) {
        for (_, value) in &mut self.headers {
            value.zeroize();
        }
        self.canonical_request.zeroize();
    }
}

impl fmt::Debug for SignedV3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedV3")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .field("signature", &"<redacted>")
            .finish()
    }
}

impl SignedV3 {
    /// The HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }
    /// The encoded path.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The encoded query to send (without `?`; empty when there is none): the canonical query.
    pub fn query(&self) -> &str {
        &self.query
    }
    /// The path and, when there is a query, `?` and the query.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
    /// Every header to send, the signer's and the request's: lower-case names of the
    /// signer's headers, the request's names as given. Contains the signature and any security
    /// token: never log the values.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str()))
    }
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    /// The body, unchanged (empty for [`V3Request::body_sha256`]).
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// The canonical request that was hashed (for `SignatureDoesNotMatch` diagnosis with
    /// `diagnose_v3`). Contains the security token of STS credentials.
    pub fn canonical_request(&self) -> &str {
        &self.canonical_request
    }
    /// The string that was signed: `ACS3-HMAC-SHA256\n<hex hash of the canonical request>`.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }
    /// The `x-acs-signature-nonce` used.
    pub fn nonce(&self) -> &str {
        self.header("x-acs-signature-nonce").unwrap_or_default()
    }
    /// The `x-acs-date` used.
    pub fn date(&self) -> &str {
        self.header("x-acs-date").unwrap_or_default()
    }
}

/// Signs `request` with V3 at time `at` with `nonce` (unique per request and per retry:
/// `A-Z a-z 0-9 - _ .`, at most 128 bytes).
///
/// Refuses (with [`Error::InvalidRequest`]) a request that [`V3Request::validate`] refuses, a
/// bad nonce, and credentials whose key id or token cannot travel in a header. See the
/// module docs for an example.
pub fn sign_v3(
    request: &V3Request,
    credentials: &Credentials,
    at: OffsetDateTime,
    nonce: &str,
) -> Result<SignedV3, Error> {
    request.validate_but_repeated_names()?;
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE_LEN
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::InvalidRequest(
            "the signature nonce must be 1 to 128 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    let key_id = credentials.access_key_id();
    if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(Error::credentials_invalid(format!(
            "the AccessKey ID {} must be visible ASCII without spaces or commas",
            mask_key_id(key_id)
        )));
    }
    if credentials
        .security_token()
        .is_some_and(|t| !is_header_value(t))
    {
        return Err(Error::credentials_invalid(format!(
            "the security token of {} has a control character",
            mask_key_id(key_id)
        )));
    }

    // The query: sorted by raw name bytes, encoded; sent as is.
    let mut sorted: Vec<(&str, &str)> = request
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    check_repeated(sorted.windows(2).find(|w| w[0].0 == w[1].0).map(|w| w[0].0))?;
    let mut query = String::with_capacity(
        sorted
            .iter()
            .map(|(k, v)| k.len() + v.len() + v.len() / 2 + 2)
            .sum(),
    );
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            query.push('&');
        }
        percent_encode_into(&mut query, name);
        query.push('=');
        percent_encode_into(&mut query, value);
    }

    let (body, content_sha256) = match &request.payload {
        Payload::Bytes(b) if b.is_empty() => (b.clone(), EMPTY_BODY_SHA256.to_string()),
        Payload::Bytes(b) => (b.clone(), sha256_hex(b)),
        Payload::Hashed(hex) => (Bytes::new(), hex.clone()),
    };

    // The signer's headers, then the request's.
    let mut headers: Vec<Header> = Vec::with_capacity(10 + request.headers.len());
    headers.push((Cow::Borrowed("host"), request.host.clone()));
    headers.push((Cow::Borrowed("x-acs-action"), request.action.clone()));
    headers.push((Cow::Borrowed("x-acs-version"), request.version.clone()));
    headers.push((Cow::Borrowed("x-acs-date"), format_timestamp(at)));
    headers.push((Cow::Borrowed("x-acs-signature-nonce"), nonce.to_string()));
    let payload_at = headers.len();
    headers.push((Cow::Borrowed("x-acs-content-sha256"), content_sha256));
    if let Some(token) = credentials.security_token() {
        headers.push((Cow::Borrowed("x-acs-security-token"), token.to_string()));
        headers.push((Cow::Borrowed("x-acs-accesskey-id"), key_id.to_string()));
    }
    let own = headers.len();
    headers.extend(
        request
            .headers
            .iter()
            .map(|(n, v)| (Cow::Owned(n.clone()), v.clone())),
    );

    // The signed headers: (lower-case name, trimmed value), sorted by name then value, so that
    // the values of a repeated name come out sorted.
    let mut signed: Vec<(Cow<'_, str>, &str)> = Vec::with_capacity(headers.len());
    for (i, (name, value)) in headers.iter().enumerate() {
        let lower: Cow<'_, str> = if i < own {
            Cow::Borrowed(name.as_ref())
        } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name.as_ref())
        };
        if is_signed(&lower) {
            signed.push((lower, trim_ows(value)));
        }
    }
    signed.sort_unstable();

    let hashed_payload_len = 64;
    let estimate = request.method.len()
        + request.path.len()
        + query.len()
        + signed
            .iter()
            .map(|(n, v)| 2 * n.len() + v.len() + 3)
            .sum::<usize>()
        + hashed_payload_len
        + 8;
    let mut canonical = String::with_capacity(estimate);
    canonical.push_str(&request.method);
    canonical.push('\n');
    canonical.push_str(&request.path);
    canonical.push('\n');
    canonical.push_str(&query);
    canonical.push('\n');
    for (i, (name, value)) in signed.iter().enumerate() {
        let repeated = i > 0 && signed[i - 1].0 == *name;
        if repeated {
            canonical.push(',');
        } else {
            if i > 0 {
                canonical.push('\n');
            }
            canonical.push_str(name);
            canonical.push(':');
        }
        canonical.push_str(value);
    }
    if !signed.is_empty() {
        canonical.push('\n');
    }
    canonical.push('\n');
    let signed_start = canonical.len();
    for (i, (name, _)) in signed.iter().enumerate() {
        if i > 0 && signed[i - 1].0 == *name {
            continue;
        }
        if i > 0 {
            canonical.push(';');
        }
        canonical.push_str(name);
    }
    let signed_headers = canonical[signed_start..].to_string();
    canonical.push('\n');
    canonical.push_str(&headers[payload_at].1);
    // Built within its first allocation: no copy of the token left behind by a reallocation.
    debug_assert!(canonical.len() <= estimate);
    drop(signed);

    let string_to_sign = string_to_sign_v3(&canonical);
    let mut signature = signature_hex(credentials.access_key_secret(), &string_to_sign);
    let mut authorization = String::with_capacity(
        ALGORITHM.len() + key_id.len() + signed_headers.len() + signature.len() + 40,
    );
    authorization.push_str(ALGORITHM);
    authorization.push_str(" Credential=");
    authorization.push_str(key_id);
    authorization.push_str(",SignedHeaders=");
    authorization.push_str(&signed_headers);
    authorization.push_str(",Signature=");
    authorization.push_str(&signature);
    signature.zeroize();
    headers.insert(own, (Cow::Borrowed("authorization"), authorization));

    Ok(SignedV3 {
        method: request.method.clone(),
        path: request.path.clone(),
        query,
        headers,
        body,
        canonical_request: canonical,
        string_to_sign,
    })
}

/// The parts of a canonical request, split on its lines.
struct Parsed<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<&'a str>,
    signed_headers: &'a str,
    payload: &'a str,
}

fn parse_canonical(text: &str) -> Option<Parsed<'_>> {
    let mut lines = text.split('\n');
    let method = lines.next()?;
    let path = lines.next()?;
    let query = lines.next()?;
    let mut headers = Vec::new();
    loop {
        let line = lines.next()?;
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let signed_headers = lines.next()?;
    let payload = lines.next()?;
    lines.next().is_none().then_some(Parsed {
        method,
        path,
        query,
        headers,
        signed_headers,
        payload,
    })
}

/// A value as a diagnosis may show it: tokens redacted, key ids masked, at most 120 characters.
fn shown_value(name: &str, value: &str, token: Option<&str>) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.contains("security-token")
        || lower == "securitytoken"
        || lower == "authorization"
        || token.is_some_and(|t| !t.is_empty() && value.contains(t))
    {
        "<redacted>".to_string()
    } else if lower.contains("accesskey") || lower == "accesskeyid" {
        mask_key_id(value)
    } else {
        value.chars().take(120).collect()
    }
}

fn split_header<'a>(line: Option<&&'a str>) -> Option<(&'a str, &'a str)> {
    line.map(|l| l.split_once(':').unwrap_or((l, "")))
}

fn differs(parameter: String, ours: String, theirs: String) -> SignatureDiagnosis {
    SignatureDiagnosis::EncodingDifference {
        parameter,
        ours,
        theirs,
    }
}

/// Compares our canonical request ([`SignedV3::canonical_request`]) with what the server quoted
/// in its `SignatureDoesNotMatch` answer: its canonical request, or its string to sign.
///
/// * The same canonical request (or the same string to sign): the secret is wrong
///   ([`SignatureDiagnosis::WrongSecret`]).
/// * Otherwise the first difference, named: `method`, `path`, `query parameter NAME` (or the
///   parameters' names or order), `header NAME` (or the headers' names or order),
///   `signed headers`, `payload hash`; when the server quoted only its string to sign,
///   `canonical request`.
///
/// Values shown are cut to 120 characters; security tokens are redacted and AccessKey IDs
/// masked, so the diagnosis can be logged.
pub(crate) fn diagnose_v3(ours: &str, theirs: &str) -> SignatureDiagnosis {
    let theirs = theirs.trim_matches(['\r', ' ', '"', '\'']);
    if ours == theirs {
        return SignatureDiagnosis::WrongSecret;
    }
    let Some(a) = parse_canonical(ours) else {
        return SignatureDiagnosis::Unavailable;
    };
    let token = a
        .headers
        .iter()
        .find_map(|l| l.strip_prefix("x-acs-security-token:"));
    if let Some(hash) = theirs
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix('\n'))
    {
        let ours_sts = string_to_sign_v3(ours);
        if ours_sts == theirs {
            return SignatureDiagnosis::WrongSecret;
        }
        return differs(
            "canonical request (the server quoted only its hash)".into(),
            ours_sts[ALGORITHM.len() + 1..].to_string(),
            hash.chars().take(64).collect(),
        );
    }
    let Some(b) = parse_canonical(theirs) else {
        return differs(
            "canonical request (the server's is not in the V3 form)".into(),
            String::new(),
            String::new(),
        );
    };
    let plain = |s: &str| s.chars().take(120).collect::<String>();
    if a.method != b.method {
        return differs("method".into(), plain(a.method), plain(b.method));
    }
    if a.path != b.path {
        return differs("path".into(), plain(a.path), plain(b.path));
    }
    if a.query != b.query {
        let pairs = |q: &'_ str| -> Vec<(String, String)> {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let name = super::percent_decode(k).unwrap_or_else(|| k.to_string());
                    (name, v.to_string())
                })
                .collect()
        };
        let (qa, qb) = (pairs(a.query), pairs(b.query));
        for i in 0..qa.len().max(qb.len()) {
            match (qa.get(i), qb.get(i)) {
                (Some(x), Some(y)) if x == y => continue,
                (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                    return differs(
                        format!("query parameter {}", plain(ka)),
                        shown_value(ka, va, token),
                        shown_value(kb, vb, token),
                    );
                }
                (x, y) => {
                    let name = |p: Option<&(String, String)>| {
                        p.map_or_else(|| "(nothing)".to_string(), |(k, _)| plain(k))
                    };
                    return differs(
                        format!("query parameter #{} (name or order)", i + 1),
                        name(x),
                        name(y),
                    );
                }
            }
        }
        return differs("query encoding".into(), String::new(), String::new());
    }
    for i in 0..a.headers.len().max(b.headers.len()) {
        match (
            split_header(a.headers.get(i)),
            split_header(b.headers.get(i)),
        ) {
            (Some(x), Some(y)) if x == y => continue,
            (Some((na, va)), Some((nb, vb))) if na == nb => {
                return differs(
                    format!("header {}", plain(na)),
                    shown_value(na, va, token),
                    shown_value(nb, vb, token),
                );
            }
            (x, y) => {
                let name =
                    |p: Option<(&str, &str)>| p.map_or("(nothing)".into(), |(n, _)| plain(n));
                return differs(
                    format!("header #{} (name or order)", i + 1),
                    name(x),
                    name(y),
                );
            }
        }
    }
    if a.signed_headers != b.signed_headers {
        return differs(
            "signed headers".into(),
            plain(a.signed_headers),
            plain(b.signed_headers),
        );
    }
    if a.payload != b.payload {
        return differs("payload hash".into(), plain(a.payload), plain(b.payload));
    }
    differs("canonical request".into(), String::new(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The former doc example (the item is crate-private now).
    #[test]
    fn diagnose_v3_names_the_parameter() {
        use crate::SignatureDiagnosis;

        let ours = "GET\n/\na=1%2A\nhost:h\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let theirs = ours.replace("%2A", "*");
        assert!(matches!(
            diagnose_v3(ours, &theirs),
            SignatureDiagnosis::EncodingDifference { parameter, .. } if parameter == "query parameter a"
        ));
        assert_eq!(diagnose_v3(ours, ours), SignatureDiagnosis::WrongSecret);
    }

    /// The former doc example (the item is crate-private now).
    #[test]
    fn string_to_sign_v3_of_empty_request() {
        assert_eq!(
            string_to_sign_v3(""),
            "ACS3-HMAC-SHA256\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn doc_request() -> V3Request {
        V3Request::rpc("ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26")
            .query("RegionId", "cn-shanghai")
            .query(
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            )
    }

    fn doc_credentials() -> Credentials {
        Credentials::new("YourAccessKeyId", "YourAccessKeySecret")
    }

    #[test]
    fn published_vector_1_doc_worked_example() {
        let signed = sign_v3(
            &doc_request(),
            &doc_credentials(),
            datetime!(2023-10-26 10:22:32 UTC),
            "3156853299f313e23d1673dc12e1703d",
        )
        .unwrap();
        assert_eq!(
            signed.canonical_request(),
            "POST\n/\n\
             ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
             host:ecs.cn-shanghai.aliyuncs.com\n\
             x-acs-action:RunInstances\n\
             x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-acs-date:2023-10-26T10:22:32Z\n\
             x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
             x-acs-version:2014-05-26\n\n\
             host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signed.string_to_sign(),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert!(signed.header("authorization").unwrap().ends_with(
            ",Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        ));
        assert_eq!(signed.date(), "2023-10-26T10:22:32Z");
        assert_eq!(signed.nonce(), "3156853299f313e23d1673dc12e1703d");
        assert_eq!(
            signed.header("x-acs-content-sha256"),
            Some(EMPTY_BODY_SHA256)
        );
        assert!(signed.body().is_empty());
    }

    #[test]
    fn published_vector_2_other_date_and_nonce() {
        let signed = sign_v3(
            &doc_request(),
            &doc_credentials(),
            datetime!(2023-10-26 09:01:01 UTC),
            "d410180a5abf7fe235dd9b74aca91fc0",
        )
        .unwrap();
        assert_eq!(
            signed.string_to_sign(),
            "ACS3-HMAC-SHA256\n29622f5feb1e9fcaaa2e276a72889c975f7b16f00e02be1ca34965b18cd85015"
        );
        assert!(signed.header("authorization").unwrap().ends_with(
            ",Signature=e521358f7776c97df52e6b2891a8bc73026794a071b50c3323388c4e0df64804"
        ));
    }

    /// The Python utility's unit test signs only the headers it is given, and this one has no
    /// host: rebuild its canonical request from our canonicalisation pieces.
    #[test]
    fn published_vector_3_python_unit_test() {
        let canonical = "GET\n/\nempty=&test=ok\nx-acs-test:http,https\n\nx-acs-test\n\
                         55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23";
        let signature = signature_hex("secret", &string_to_sign_v3(canonical));
        assert_eq!(
            signature,
            "d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
        );
        // The same lines come out of the signer: query with an empty value, a repeated header
        // in two cases joined in sorted order.
        let signed = sign_v3(
            &V3Request::new("GET", "h", "A", "V")
                .query("test", "ok")
                .query("empty", "")
                .header("x-acs-TEST", "https")
                .header("x-acs-test", " http ")
                .body_sha256("55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23"),
            &Credentials::new("acesskey", "secret"),
            datetime!(2020-01-01 00:00:00 UTC),
            "n",
        )
        .unwrap();
        let c = signed.canonical_request();
        assert!(c.starts_with("GET\n/\nempty=&test=ok\n"));
        assert!(c.contains("\nx-acs-test:http,https\nx-acs-version:V\n\n"));
        assert!(c.ends_with(
            ";x-acs-test;x-acs-version\n55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23"
        ));
    }

    #[test]
    fn sts_adds_token_and_key_id_headers_signed() {
        let creds = Credentials::new("STS.id", "s").with_security_token("tok/en+");
        let signed = sign_v3(&doc_request(), &creds, OffsetDateTime::UNIX_EPOCH, "n").unwrap();
        assert_eq!(signed.header("x-acs-security-token"), Some("tok/en+"));
        assert_eq!(signed.header("x-acs-accesskey-id"), Some("STS.id"));
        assert!(signed.header("authorization").unwrap().contains(
            "SignedHeaders=host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;\
             x-acs-security-token;x-acs-signature-nonce;x-acs-version,"
        ));
        let dbg = format!("{signed:?}");
        assert!(!dbg.contains("tok/en+") && !dbg.contains("Signature="));
    }

    #[test]
    fn reserved_and_malformed_inputs_are_refused() {
        let creds = doc_credentials();
        let at = OffsetDateTime::UNIX_EPOCH;
        for name in RESERVED_HEADERS {
            let upper = name.to_ascii_uppercase();
            let r = doc_request().header(upper, "x");
            assert!(sign_v3(&r, &creds, at, "n").is_err(), "{name}");
        }
        let bad = [
            doc_request().header("bad name", "x"),
            doc_request().header("x-acs-a", "line\nbreak"),
            doc_request().query("A", "1").query("A", "2"),
            doc_request().query("", "1"),
            doc_request().encoded_path("/a b"),
            doc_request().encoded_path("/a/../b"),
            doc_request().method("get"),
            V3Request::rpc("evil.com/x", "A", "V"),
            V3Request::rpc("h", "", "V"),
            doc_request().body_sha256("ABC"),
        ];
        for r in bad {
            assert!(sign_v3(&r, &creds, at, "n").is_err(), "{r:?}");
        }
        for nonce in ["", "a b", "a\nb", &"n".repeat(129)] {
            assert!(sign_v3(&doc_request(), &creds, at, nonce).is_err());
        }
        let token = Credentials::new("id", "s").with_security_token("a\r\nb");
        assert!(sign_v3(&doc_request(), &token, at, "n").is_err());
    }

    #[test]
    fn bodies_and_unsigned_headers() {
        let r = V3Request::new(
            "PUT",
            "cs.cn-beijing.aliyuncs.com",
            "ModifyCluster",
            "2015-12-15",
        )
        .path_segments(["clusters", "c/1"])
        .json_body(r#"{"a":1}"#)
        .header("Accept", "application/json")
        .header("X-Acs-Extra", "  v  ");
        let signed = sign_v3(&r, &doc_credentials(), OffsetDateTime::UNIX_EPOCH, "n").unwrap();
        assert_eq!(signed.path(), "/clusters/c%2F1");
        assert_eq!(signed.body().as_ref(), br#"{"a":1}"#);
        assert_eq!(
            signed.header("x-acs-content-sha256").unwrap(),
            sha256_hex(br#"{"a":1}"#)
        );
        let c = signed.canonical_request();
        assert!(c.contains("content-type:application/json; charset=utf-8\nhost:"));
        assert!(c.contains("x-acs-extra:v\n"));
        assert!(!c.contains("accept"));
        assert_eq!(signed.header("accept"), Some("application/json"));
        let form = V3Request::rpc("h", "A", "V").form_body([("b c", "*")]);
        let signed = sign_v3(&form, &doc_credentials(), OffsetDateTime::UNIX_EPOCH, "n").unwrap();
        assert_eq!(signed.body().as_ref(), b"b%20c=%2A");
    }

    #[test]
    fn diagnosis_names_the_line_and_hides_tokens() {
        let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "s").with_security_token("T0KEN");
        let signed = sign_v3(&doc_request(), &creds, OffsetDateTime::UNIX_EPOCH, "n").unwrap();
        let ours = signed.canonical_request();
        assert_eq!(diagnose_v3(ours, ours), SignatureDiagnosis::WrongSecret);
        assert_eq!(
            diagnose_v3(ours, signed.string_to_sign()),
            SignatureDiagnosis::WrongSecret
        );
        let name = |d: SignatureDiagnosis| match d {
            SignatureDiagnosis::EncodingDifference { parameter, .. } => parameter,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            name(diagnose_v3(ours, &ours.replacen("POST", "GET", 1))),
            "method"
        );
        assert_eq!(
            name(diagnose_v3(
                ours,
                &ours.replace("RegionId=cn-shanghai", "RegionId=x")
            )),
            "query parameter RegionId"
        );
        let theirs = ours.replace("T0KEN", "OTHER");
        let d = diagnose_v3(ours, &theirs);
        assert!(!format!("{d:?}").contains("T0KEN"));
        assert_eq!(name(d), "header x-acs-security-token");
        let d = diagnose_v3(
            ours,
            &ours.replace("LTAI5tExampleKeyIdwxyz", "LTAI5tOtherKeyIdabcd"),
        );
        assert!(!format!("{d:?}").contains("LTAI5tExampleKeyIdwxyz"));
        assert_eq!(
            name(diagnose_v3(ours, "ACS3-HMAC-SHA256\n00")),
            "canonical request (the server quoted only its hash)"
        );
        assert_eq!(
            name(diagnose_v3(ours, &ours.replace(";x-acs-version\n", "\n"))),
            "signed headers"
        );
    }
}
