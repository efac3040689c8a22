//! Explaining `SignatureDoesNotMatch`: the server quotes the string it signed; comparing it with
//! ours tells a wrong secret (the strings agree) from an encoding difference (they do not).

use super::percent_decode;
use crate::credentials::{Credentials, mask_key_id};
use crate::error::SignatureDiagnosis;

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

fn shown(name: &str, value: &str, credentials: &Credentials) -> String {
    match name {
        "SecurityToken" => "<redacted>".to_string(),
        "AccessKeyId" => mask_key_id(value),
        _ if credentials
            .security_token()
            .is_some_and(|t| value.contains(t)) =>
        {
            "<redacted>".to_string()
        }
        _ => value.chars().take(120).collect(),
    }
}

/// Compares our string to sign with the server's.
pub fn diagnose(ours: &str, theirs: &str, credentials: &Credentials) -> SignatureDiagnosis {
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
                ours: a.unwrap_or_default().to_string(),
                theirs: b.unwrap_or_default().to_string(),
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
                    parameter: ka.clone(),
                    ours: shown(ka, va, credentials),
                    theirs: shown(kb, vb, credentials),
                };
            }
            (ours_pair, theirs_pair) => {
                let name = |p: Option<&(String, String)>| {
                    p.map_or_else(|| "(nothing)".to_string(), |(k, _)| k.clone())
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
            diagnose("GET&%2F&A%3D1", "GET&%2F&A%3D1", &c),
            SignatureDiagnosis::WrongSecret
        );
    }

    #[test]
    fn names_the_first_differing_parameter() {
        let c = Credentials::new("id", "s").with_security_token("T0KEN");
        let ours = "POST&%2F&A%3D1%26Name%3Da%2520b%26SecurityToken%3DT0KEN";
        let theirs = "POST&%2F&A%3D1%26Name%3Da%252Bb%26SecurityToken%3DT0KEN";
        match diagnose(ours, theirs, &c) {
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
        let d = diagnose(
            "POST&%2F&SecurityToken%3DT0KEN",
            "POST&%2F&SecurityToken%3DOTHER",
            &c,
        );
        assert!(!format!("{d:?}").contains("T0KEN"));
        assert!(matches!(
            diagnose("GET&%2F&A%3D1", "POST&%2F&A%3D1", &c),
            SignatureDiagnosis::EncodingDifference { parameter, .. } if parameter == "method"
        ));
    }
}
