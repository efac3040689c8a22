//! ROA-style paths and queries: `GET /clusters/{ClusterId}` templates filled with encoded
//! parameters, and the older ROA signature (HMAC-SHA1).
//!
//! # Paths
//!
//! A [`PathTemplate`] is the path of an API as its documentation writes it, such as
//! `/clusters/{ClusterId}/nodepools/{NodepoolId}`. [`PathTemplate::fill`] replaces every
//! `{Name}` by the percent-encoded value of the parameter `Name`:
//!
//! * RFC 3986 unreserved bytes (`A-Z a-z 0-9 - _ . ~`) stay, every other UTF-8 byte becomes `%XX`
//!   (space `%20`, `*` `%2A`), and a `/` inside a value becomes `%2F`: a value never adds a
//!   segment to the path;
//! * a parameter the template names but the call does not give, a parameter the template does
//!   not name, and a parameter given twice are refused;
//! * a segment that a parameter leaves empty, `.` or `..` is refused (a proxy or server that
//!   normalises paths would otherwise move the call to another resource).
//!
//! The literal text of the template is encoded the same way, `/` kept between segments.
//!
//! ```
//! use aliyun_guard::signing::roa::PathTemplate;
//!
//! let template = PathTemplate::parse("/clusters/{ClusterId}/nodepools")?;
//! assert_eq!(template.fill(&[("ClusterId", "c 1/2")])?, "/clusters/c%201%2F2/nodepools");
//! assert!(template.fill(&[("ClusterId", "..")]).is_err());
//! assert!(template.fill(&[]).is_err());
//! # Ok::<(), aliyun_guard::Error>(())
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

pub use crate::request::path::PathTemplate;

/// The ROA string to sign of the older ROA signature (HMAC-SHA1), from its parts:
/// `METHOD\nAccept\nContent-MD5\nContent-Type\nDate\n`, every `x-acs-*` header (names
/// lower-cased, sorted, `name:value\n`, values as given), then the path and, when there are
/// query parameters, `?` and the parameters sorted by name, `name=value` with raw values (an
/// empty value gives `name` alone), joined by `&`.
///
/// `headers` are all the request's headers (any case); `accept`, `content-md5`, `content-type`
/// and `date` are read from them.
///
/// ```
/// use aliyun_guard::__internal::roa_string_to_sign;
/// assert_eq!(roa_string_to_sign("GET", "/", &[], &[]), "GET\n\n\n\n\n/");
/// ```
pub(crate) fn roa_string_to_sign(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| *v)
    };
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    for name in ["accept", "content-md5", "content-type", "date"] {
        out.push_str(header(name));
        out.push('\n');
    }
    let mut acs: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), *v))
        .filter(|(n, _)| n.starts_with("x-acs-"))
        .collect();
    acs.sort();
    for (name, value) in &acs {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(path);
    if !query.is_empty() {
        let mut sorted: Vec<(&str, &str)> = query.to_vec();
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push('?');
        for (i, (name, value)) in sorted.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(name);
            if !value.is_empty() {
                out.push('=');
                out.push_str(value);
            }
        }
    }
    out
}

/// `base64(HMAC-SHA1(key = secret, string_to_sign))`, the older ROA signature (no `&` is
/// appended to the secret, unlike RPC 1.0).
///
/// ```
/// use aliyun_guard::__internal::roa_signature;
/// assert_eq!(roa_signature("secret", "GET\n\n\n\n\n"), "XGXDWA78AEvx/wmfxKoVCq/afWw=");
/// ```
pub(crate) fn roa_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_roa_vector() {
        assert_eq!(
            roa_signature("secret", "GET\n\n\n\n\n"),
            "XGXDWA78AEvx/wmfxKoVCq/afWw="
        );
        let sts = roa_string_to_sign(
            "POST",
            "/clusters",
            &[("b", ""), ("a", "x y")],
            &[
                ("Accept", "application/json"),
                ("X-Acs-Version", "2015-12-15"),
                ("x-acs-action", "CreateCluster"),
                ("Date", "Thu, 06 Feb 2020 07:32:54 GMT"),
            ],
        );
        assert_eq!(
            sts,
            "POST\napplication/json\n\n\nThu, 06 Feb 2020 07:32:54 GMT\nx-acs-action:CreateCluster\n\
             x-acs-version:2015-12-15\n/clusters?a=x y&b"
        );
    }
}
