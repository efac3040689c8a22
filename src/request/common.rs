//! How a request goes on the wire: its HTTP [`Method`], its [`SignatureVersion`], and the common
//! parameters the signer sets itself ([`RESERVED_PARAMS`]). Part of the request, below `signing`
//! in the module layering; re-exported as `aliyun_guard::signing::{Method, SignatureVersion,
//! RESERVED_PARAMS, is_reserved}` and `aliyun_guard::{Method, SignatureVersion}`.

use std::fmt;

/// The HTTP method of an RPC call.
///
/// ```
/// use aliyun_guard::{Method, RpcRequest};
///
/// assert_eq!(Method::default(), Method::Post);
/// assert_eq!("get".parse::<Method>(), Ok(Method::Get));
/// let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(Method::Get);
/// assert_eq!(request.get_method().to_string(), "GET");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// Parameters and signature in the URL query. Visible to proxies and access logs.
    Get,
    /// Parameters and signature in an `application/x-www-form-urlencoded` body (the default).
    #[default]
    Post,
}

impl Method {
    /// The method's name as it appears in the string to sign.
    ///
    /// ```
    /// use aliyun_guard::Method;
    /// assert_eq!(Method::Post.as_str(), "POST");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("GET") {
            Ok(Method::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Ok(Method::Post)
        } else {
            Err(format!("unsupported HTTP method {s:?}: use GET or POST"))
        }
    }
}

/// Which signature a call is signed with.
///
/// ```
/// use aliyun_guard::signing::SignatureVersion;
/// assert_eq!("v3".parse::<SignatureVersion>(), Ok(SignatureVersion::V3));
/// assert_eq!(SignatureVersion::default(), SignatureVersion::V1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SignatureVersion {
    /// RPC signature 1.0 (HMAC-SHA1): the common parameters and the signature in the query or
    /// form body. The default for RPC calls.
    #[default]
    V1,
    /// Signature V3 (`ACS3-HMAC-SHA256`): `x-acs-*` headers and `authorization`. Always used
    /// for ROA calls.
    V3,
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureVersion::V1 => "v1",
            SignatureVersion::V3 => "v3",
        })
    }
}

impl std::str::FromStr for SignatureVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" | "1.0" => Ok(SignatureVersion::V1),
            "v3" | "3" | "acs3-hmac-sha256" => Ok(SignatureVersion::V3),
            _ => Err(format!("unknown signature version {s:?}: use v1 or v3")),
        }
    }
}

/// Parameters the signer sets itself; a request may not set them.
pub const RESERVED_PARAMS: &[&str] = &[
    "AccessKeyId",
    "Action",
    "Format",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "Timestamp",
    "Version",
];

/// Whether the signer sets `name` itself (see [`RESERVED_PARAMS`]).
pub fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "AccessKeyId"
            | "Action"
            | "Format"
            | "SecurityToken"
            | "Signature"
            | "SignatureMethod"
            | "SignatureNonce"
            | "SignatureType"
            | "SignatureVersion"
            | "Timestamp"
            | "Version"
    )
}
