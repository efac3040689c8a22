//! The signing seam: what the client sends, produced by the signer of either version and applied
//! by the client without knowing which signed it.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use super::v3::{V3Request, sign_v3};
use super::{Method, Nonce, SignatureVersion, Signer};
use crate::error::Error;
use crate::request::RpcRequest;
use crate::request::roa::{RoaBody, RoaRequest};
use crate::secret::Credentials;

/// What was signed, kept to explain a `SignatureDoesNotMatch` answer.
pub(crate) enum Evidence {
    /// Signature 1.0: the method and the encoded parameters (with `Signature`).
    V1 { method: Method, encoded: Bytes },
    /// Signature V3: our canonical request (it may hold a security token: zeroed on drop).
    V3(Zeroizing<String>),
}

impl Evidence {
    /// The path that was sent: the second line of a V3 canonical request; `None` for
    /// signature 1.0, sent to the endpoint's `/`.
    pub(crate) fn sent_path(&self) -> Option<&str> {
        match self {
            Evidence::V1 { .. } => None,
            Evidence::V3(canonical) => canonical.split('\n').nth(1),
        }
    }
}

/// The instructions to send one signed attempt.
pub(crate) struct Instructions {
    pub(crate) method: reqwest::Method,
    /// The encoded path; `None`: the endpoint's `/`.
    pub(crate) path: Option<String>,
    /// The encoded query (without `?`); `None`: no query.
    pub(crate) query: Option<String>,
    /// Headers to set (the signature and any token marked sensitive); empty for signature 1.0.
    pub(crate) headers: HeaderMap,
    /// The body's content type when it is not among `headers` (signature 1.0's form body).
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) body: Option<Bytes>,
    /// The nonce, for tracing.
    pub(crate) nonce: Nonce,
    pub(crate) evidence: Evidence,
}

const FORM: &str = "application/x-www-form-urlencoded";

fn header_error(name: &str) -> Error {
    Error::InvalidRequest(format!("header {name:?} cannot be sent over HTTP"))
}

/// The V3 signer's output as instructions; `accept: application/json` added.
fn from_v3(signed: super::v3::SignedV3, path: Option<String>) -> Result<Instructions, Error> {
    let mut headers = HeaderMap::with_capacity(12);
    for (name, value) in signed.headers() {
        // `host` is set by the HTTP client from the URL, as signed.
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header_error(name))?;
        let mut value =
            HeaderValue::from_bytes(value.as_bytes()).map_err(|_| header_error(name))?;
        if name == "authorization" || name == "x-acs-security-token" {
            value.set_sensitive(true);
        }
        headers.append(header, value);
    }
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    let method = reqwest::Method::from_bytes(signed.method().as_bytes())
        .map_err(|_| Error::InvalidRequest("bad HTTP method".into()))?;
    let query = (!signed.query().is_empty()).then(|| signed.query().to_string());
    let body = (!signed.body().is_empty()).then(|| signed.body().clone());
    Ok(Instructions {
        method,
        path,
        query,
        headers,
        content_type: None,
        body,
        nonce: Nonce::Given(signed.nonce().to_string()),
        evidence: Evidence::V3(Zeroizing::new(signed.canonical_request().to_string())),
    })
}

/// `host[:port]` as the HTTP client sends it for `url`.
pub(crate) fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

impl Signer {
    /// Signs one attempt of an RPC call with `version`: signature 1.0 (the query for GET, a form
    /// body for POST, byte-exact as [`Signer::sign`]) or V3.
    ///
    /// The request must have passed [`RpcRequest::validate`] (the client validates once per
    /// call, not per attempt: the request cannot change between attempts). The signature 1.0
    /// signer drops reserved names in any case, so that they can never replace its own.
    pub(crate) fn rpc_instructions(
        &self,
        request: &RpcRequest,
        credentials: &Credentials,
        default_region: Option<&str>,
        version: SignatureVersion,
        url: &url::Url,
    ) -> Result<Instructions, Error> {
        debug_assert!(request.validate().is_ok(), "sign only validated requests");
        match version {
            SignatureVersion::V1 => {
                let signed = self.sign_with_default_region(request, credentials, default_region);
                let (method, encoded, nonce) = signed.into_parts();
                let (query, body, encoded) = match method {
                    Method::Get => {
                        let bytes = Bytes::from(encoded.clone());
                        (Some(encoded), None, bytes)
                    }
                    Method::Post => {
                        let bytes = Bytes::from(encoded);
                        (None, Some(bytes.clone()), bytes)
                    }
                };
                let content_type = body.is_some().then(|| HeaderValue::from_static(FORM));
                Ok(Instructions {
                    method: match method {
                        Method::Get => reqwest::Method::GET,
                        Method::Post => reqwest::Method::POST,
                    },
                    path: None,
                    query,
                    headers: HeaderMap::new(),
                    content_type,
                    body,
                    nonce,
                    evidence: Evidence::V1 { method, encoded },
                })
            }
            SignatureVersion::V3 => {
                let region = request
                    .get_region()
                    .or(default_region)
                    .filter(|_| !request.parameters().contains_key("RegionId"));
                let params = request
                    .parameters()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain(region.map(|r| ("RegionId", r)));
                let v3 = V3Request::rpc(host_header(url), request.action(), request.version())
                    .method(request.get_method().as_str());
                let v3 = if request.is_form_body() {
                    let mut sorted: Vec<(&str, &str)> = params.collect();
                    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    v3.form_body(sorted)
                } else {
                    v3.queries(params)
                };
                let (nonce, _) = self.next_nonce();
                let signed = sign_v3(&v3, credentials, self.now(), nonce.as_str())?;
                from_v3(signed, None)
            }
        }
    }

    /// Signs one attempt of a ROA call with V3.
    pub(crate) fn roa_instructions(
        &self,
        request: &RoaRequest,
        credentials: &Credentials,
        url: &url::Url,
    ) -> Result<Instructions, Error> {
        let path = request.encoded_path()?;
        let mut v3 = V3Request::new(
            request.method().to_string(),
            host_header(url),
            request.action(),
            request.version(),
        )
        .encoded_path(path.clone())
        .queries(request.query_parameters().clone());
        for (name, value) in request.headers() {
            v3 = v3.header(name.clone(), value.clone());
        }
        // A content type the caller set wins over the body's default.
        let typed = request
            .headers()
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        v3 = match request.body() {
            RoaBody::None => v3,
            RoaBody::Json(json) => {
                let json = serde_json::to_vec(json).map_err(|e| {
                    Error::InvalidRequest(format!("the JSON body cannot be serialised: {e}"))
                })?;
                if typed {
                    v3.body(json)
                } else {
                    v3.json_body(json)
                }
            }
            RoaBody::Binary {
                bytes,
                content_type,
            } if !typed => v3
                .header("content-type", content_type.clone())
                .body(bytes.clone()),
            RoaBody::Binary { bytes, .. } => v3.body(bytes.clone()),
        };
        let (nonce, _) = self.next_nonce();
        let signed = sign_v3(&v3, credentials, self.now(), nonce.as_str())?;
        from_v3(signed, Some(path))
    }
}

/// Markers before the text a server quotes in a V3 `SignatureDoesNotMatch` message (compared
/// in lower case).
const V3_MARKERS: &[&str] = &[
    "canonical request is:",
    "canonicalrequest is:",
    "canonical request:",
    "canonicalrequest:",
    "string to sign is:",
    "stringtosign is:",
    "string to sign:",
    "stringtosign:",
];

/// The canonical request or the string to sign a server quotes in a V3 `SignatureDoesNotMatch`
/// message, for [`super::v3::diagnose_v3`].
///
/// Alibaba's exact wording is not published: after a known marker (`... string to sign is:`,
/// `canonical request is:`, ...), else wherever a V3 string to sign
/// (`ACS3-HMAC-SHA256\n<64 hex>`) or a canonical request (`METHOD\n/...`) appears. Trailing
/// prose and quotes are cut off.
pub(crate) fn server_quote_v3(message: &str) -> Option<&str> {
    let lower = message.to_ascii_lowercase();
    let start = V3_MARKERS
        .iter()
        .find_map(|m| lower.find(m).map(|at| at + m.len()))
        .map(|at| {
            let rest = &message[at..];
            at + (rest.len() - rest.trim_start_matches([' ', '"', '\'', '\n', '\r']).len())
        })
        .or_else(|| message.find("ACS3-HMAC-SHA256\n"))
        .or_else(|| {
            [
                "GET\n/",
                "POST\n/",
                "PUT\n/",
                "DELETE\n/",
                "HEAD\n/",
                "PATCH\n/",
            ]
            .iter()
            .filter_map(|m| message.find(m))
            .min()
        })?;
    let quoted = message.get(start..)?;
    let end = if let Some(rest) = quoted.strip_prefix("ACS3-HMAC-SHA256\n") {
        "ACS3-HMAC-SHA256\n".len() + hex_prefix(rest)
    } else {
        // A canonical request ends with the payload hash, two lines after its blank line.
        match quoted.find("\n\n") {
            Some(blank) => {
                let after = &quoted[blank + 2..];
                match after.find('\n') {
                    Some(nl) => blank + 2 + nl + 1 + hex_prefix(&after[nl + 1..]),
                    None => quoted.len(),
                }
            }
            None => quoted.len(),
        }
    };
    let quoted = quoted.get(..end)?.trim_end_matches(['.', '"', '\'', ' ']);
    (!quoted.is_empty()).then_some(quoted)
}

/// The length of the run of (at most 64) hex digits `text` starts with.
fn hex_prefix(text: &str) -> usize {
    text.bytes()
        .take(64)
        .take_while(u8::is_ascii_hexdigit)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "POST\n/\nA=1\nhost:h\nx-acs-action:X\n\nhost;x-acs-action\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn quotes_are_found_with_or_without_markers() {
        let sts =
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259";
        for (message, expected) in [
            (
                format!(
                    "The request signature does not conform to Aliyun standards. server string to sign is:{sts}"
                ),
                sts,
            ),
            (
                format!("Specified signature is not matched. StringToSign: '{sts}'. Retry."),
                sts,
            ),
            (
                format!("canonical request is: \"{CANONICAL}\" please check"),
                CANONICAL,
            ),
            (format!("mismatch; ours was\n{CANONICAL}\nend"), CANONICAL),
            (format!("no marker {sts}"), sts),
        ] {
            assert_eq!(server_quote_v3(&message), Some(expected), "{message}");
        }
        assert_eq!(server_quote_v3("Specified signature is not matched."), None);
    }

    #[test]
    fn the_v3_diagnosis_names_the_differing_line() {
        let theirs = CANONICAL.replace("A=1", "A=2");
        let message = format!("server canonical request is:{theirs}");
        let quoted = server_quote_v3(&message).unwrap();
        assert!(matches!(
            super::super::v3::diagnose_v3(CANONICAL, quoted),
            crate::SignatureDiagnosis::EncodingDifference { parameter, .. } if parameter == "query parameter A"
        ));
    }
}
