//! Explaining `SignatureDoesNotMatch`: the server quotes the string it signed; comparing it with
//! ours tells a wrong secret (the strings agree) from an encoding difference (they do not).

use std::collections::BTreeMap;

use super::percent_decode;
use crate::error::SignatureDiagnosis;
use crate::redact::{is_secret_name, server_text};
use crate::secret::{Credentials, mask_key_id};

/// The marker before the server's string to sign in a `SignatureDoesNotMatch` message.
const MARKER: &str = "string to sign is:";

/// Extracts the server's string to sign from a `SignatureDoesNotMatch` message.
pub fn server_string_to_sign(message: &str) -> Option<&str> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find(MARKER)? + MARKER.len();
    let quoted = message.get(at..)?.trim();
    let quoted = quoted.trim_end_matches(['.', '"', '\'']).trim();
    (!quoted.is_empty()).then_some(quoted)
}

/// A value as shown in a diagnosis: secret parameters (`SecurityToken`, `*Password*`,
/// `*Secret*`, `*Token*`, `*PrivateKey*`, `Signature`) never, key ids masked, and anything else
/// redacted and neutralised like all server text.
fn shown(
    name: &str,
    value: &str,
    credentials: &Credentials,
    params: &BTreeMap<String, String>,
) -> String {
    if is_secret_name(name) {
        return "<redacted>".to_string();
    }
    if name == "AccessKeyId" {
        return server_text(&mask_key_id(value), None, None);
    }
    let value: String = value.chars().take(120).collect();
    server_text(&value, Some(credentials), Some(params))
}

/// Compares our string to sign with the server's. `params` are the request's parameters, whose
/// secret values are never shown.
pub fn diagnose(
    ours: &str,
    theirs: &str,
    credentials: &Credentials,
    params: &BTreeMap<String, String>,
) -> SignatureDiagnosis {
    let clean = |text: &str| -> String {
        let text: String = text.chars().take(120).collect();
        server_text(&text, Some(credentials), Some(params))
    };
    if ours == theirs {
        return SignatureDiagnosis::WrongSecret;
    }
    let mut ours_parts = ours.splitn(3, '&');
    let mut theirs_parts = theirs.splitn(3, '&');
    for what in ["method", "path"] {
        let (a, b) = (ours_parts.next(), theirs_parts.next());
        if a != b {
            return SignatureDiagnosis::EncodingDifference {
                parameter: what.to_string(),
                ours: clean(a.unwrap_or_default()),
                theirs: clean(b.unwrap_or_default()),
            };
        }
    }
    let decode = |s: Option<&str>| percent_decode(s.unwrap_or_default()).unwrap_or_default();
    let (ours_query, theirs_query) = (decode(ours_parts.next()), decode(theirs_parts.next()));
    let pairs = |q: &str| -> Vec<(String, String)> {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect()
    };
    let (a, b) = (pairs(&ours_query), pairs(&theirs_query));
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some((ka, va)), Some((kb, vb))) if ka == kb && va == vb => continue,
            (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                return SignatureDiagnosis::EncodingDifference {
                    parameter: clean(ka),
                    ours: shown(ka, va, credentials, params),
                    theirs: shown(kb, vb, credentials, params),
                };
            }
            (ours_pair, theirs_pair) => {
                let name = |p: Option<&(String, String)>| {
                    p.map_or_else(|| "(nothing)".to_string(), |(k, _)| clean(k))
                };
                return SignatureDiagnosis::EncodingDifference {
                    parameter: format!("parameter #{} (name or order)", i + 1),
                    ours: name(ours_pair),
                    theirs: name(theirs_pair),
                };
            }
        }
    }
    // Same pairs but different bytes: the encoding of the query itself differs.
    SignatureDiagnosis::EncodingDifference {
        parameter: "query encoding".into(),
        ours: String::new(),
        theirs: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_quoted_string() {
        let msg = "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&A%3D1";
        assert_eq!(server_string_to_sign(msg), Some("GET&%2F&A%3D1"));
        assert_eq!(server_string_to_sign("no marker"), None);
    }

    #[test]
    fn same_strings_mean_a_wrong_secret() {
        let c = Credentials::new("id", "s");
        assert_eq!(
            diagnose("GET&%2F&A%3D1", "GET&%2F&A%3D1", &c, &BTreeMap::new()),
            SignatureDiagnosis::WrongSecret
        );
    }

    #[test]
    fn names_the_first_differing_parameter() {
        let c = Credentials::new("id", "s").with_security_token("T0KEN");
        let ours = "POST&%2F&A%3D1%26Name%3Da%2520b%26SecurityToken%3DT0KEN";
        let theirs = "POST&%2F&A%3D1%26Name%3Da%252Bb%26SecurityToken%3DT0KEN";
        match diagnose(ours, theirs, &c, &BTreeMap::new()) {
            SignatureDiagnosis::EncodingDifference {
                parameter,
                ours,
                theirs,
            } => {
                assert_eq!(parameter, "Name");
                assert_eq!(ours, "a%20b");
                assert_eq!(theirs, "a%2Bb");
            }
            other => panic!("{other:?}"),
        }
        // Secret parameters are never shown, whatever their name's case; server text is
        // neutralised.
        let params: BTreeMap<String, String> =
            [("DbPassword".to_string(), "hunter2-pw".to_string())].into();
        for (name, ours, theirs) in [
            ("DbPassword", "hunter2-pw", "hunter2-pX"),
            ("NewAccessKeySecret", "s3cr3t-a", "s3cr3t-b"),
            ("privatekeybody", "pk-a", "pk-b"),
            ("X", "hunter2-pw", "v\u{1b}[2J"),
        ] {
            let d = diagnose(
                &format!("POST&%2F&{name}%3D{ours}"),
                &format!("POST&%2F&{name}%3D{theirs}"),
                &c,
                &params,
            );
            let shown = format!("{d:?} {d}");
            for secret in [ours, theirs] {
                assert!(!shown.contains(secret), "{name}: {shown}");
            }
            assert!(!shown.contains('\u{1b}'), "{shown}");
        }
        let d = diagnose(
            "POST&%2F&SecurityToken%3DT0KEN",
            "POST&%2F&SecurityToken%3DOTHER",
            &c,
            &BTreeMap::new(),
        );
        assert!(!format!("{d:?}").contains("T0KEN"));
        assert!(matches!(
            diagnose("GET&%2F&A%3D1", "POST&%2F&A%3D1", &c, &BTreeMap::new()),
            SignatureDiagnosis::EncodingDifference { parameter, .. } if parameter == "method"
        ));
    }
}
