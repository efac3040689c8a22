//! Redaction and neutralisation of server text before it reaches an error, a log line or a
//! terminal.
//!
//! Every string a server supplies (code, message, request id, host id, recommend link, the
//! `x-acs-request-id` header, body snippets) enters through [`server_text`]: secrets are removed,
//! key ids masked, and control characters neutralised, once, where the text enters.

use std::collections::BTreeMap;

use crate::encode::percent_encode;
use crate::secret::{Credentials, mask_key_id};

const REDACTED: &str = "<redacted>";

/// Shortest value redacted by value (shorter ones would blank out ordinary words); secret values
/// quoted as `Name=value` are redacted whatever their length.
const MIN_VALUE: usize = 4;

/// Whether a parameter name holds a secret: `*Password*`, `*Secret*`, `*Token*`, `*PrivateKey*`
/// (any case), or a `Signature`.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "secret", "token", "privatekey"]
        .iter()
        .any(|s| lower.contains(s))
        || lower.ends_with("signature")
}

/// Server text made fit to show: the security token, the AccessKey secret and the values of
/// secret parameters of `params` removed, key ids masked, quoted secret parameters removed, then
/// control characters neutralised ([`sanitize`]).
pub(crate) fn server_text(
    text: &str,
    credentials: Option<&Credentials>,
    params: Option<&BTreeMap<String, String>>,
) -> String {
    sanitize(&redact_all(text, credentials, params))
}

/// Replaces the security token (raw and percent-encoded once or twice) with `<redacted>`, the
/// key id with its masked form, and the value of any secret parameter quoted in the text.
#[cfg(test)]
pub(crate) fn redact(text: &str, credentials: &Credentials) -> String {
    redact_all(text, Some(credentials), None)
}

fn redact_all(
    text: &str,
    credentials: Option<&Credentials>,
    params: Option<&BTreeMap<String, String>>,
) -> String {
    let mut out = text.to_string();
    let mut secrets: Vec<&str> = Vec::new();
    if let Some(c) = credentials {
        secrets.extend(c.security_token());
        secrets.push(c.access_key_secret());
    }
    if let Some(params) = params {
        secrets.extend(
            params
                .iter()
                .filter(|(name, _)| is_secret_name(name))
                .map(|(_, value)| value.as_str()),
        );
    }
    // Longest first, so that a secret containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets.into_iter().filter(|s| s.len() >= MIN_VALUE) {
        let once = percent_encode(secret);
        let twice = percent_encode(&once);
        for form in [twice.as_str(), once.as_str(), secret] {
            if out.contains(form) {
                out = out.replace(form, REDACTED);
            }
        }
    }
    if let Some(c) = credentials {
        for id in std::iter::once(c.access_key_id()).chain(c.parent_key_id()) {
            if id.len() >= MIN_VALUE && out.contains(id) {
                out = out.replace(id, &mask_key_id(id));
            }
        }
    }
    redact_named_values(&out)
}

/// Separators between a name and its value: plain, percent-encoded once and twice, JSON.
const SEPARATORS: &[&str] = &["=", "%3D", "%3d", "%253D", "%253d", "\":\"", "\": \"", ">"];

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Redacts the value after `Name=` (or `Name%3D`, `Name%253D`, `"Name":"`, `<Name>`) for every
/// secret name ([`is_secret_name`]), and masks the value of an `AccessKeyId`.
fn redact_named_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(sep) = SEPARATORS
            .iter()
            .find(|s| bytes[i..].starts_with(s.as_bytes()))
        else {
            i += 1;
            continue;
        };
        let mut start = i;
        while start > 0 && is_name_byte(bytes[start - 1]) {
            start -= 1;
        }
        let value_start = i + sep.len();
        // `>` separates only an XML start tag from its text.
        if *sep == ">" && (start == 0 || bytes[start - 1] != b'<') {
            i = value_start;
            continue;
        }
        let name = &text[start..i];
        let quoted = sep.ends_with('"');
        let rest = &text[value_start..];
        let end = if quoted {
            rest.find('"')
        } else if *sep == ">" {
            rest.find('<')
        } else {
            [
                rest.find([
                    '&', '"', '\'', '<', ' ', '\n', '\r', '\t', ',', ';', ')', '}', ']',
                ]),
                rest.find("%26"),
            ]
            .into_iter()
            .flatten()
            .min()
        }
        .unwrap_or(rest.len());
        let value = &rest[..end];
        let replacement = if name.is_empty() || value.is_empty() {
            None
        } else if is_secret_name(name) {
            Some(REDACTED.to_string())
        } else if name.to_ascii_lowercase().ends_with("accesskeyid") && !value.contains("****") {
            Some(mask_key_id(value))
        } else {
            None
        };
        match replacement {
            Some(replacement) if replacement != value => {
                out.push_str(&text[copied..value_start]);
                out.push_str(&replacement);
                copied = value_start + end;
                i = copied;
            }
            _ => i = value_start,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether a character must not reach a terminal as it is: C0 controls (ESC, BEL, CR, ...), DEL,
/// C1 controls, Unicode bidirectional overrides, embeddings, isolates and marks, and line or
/// paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Neutralises control characters: tab and line feed become a space, every other unsafe
/// character U+FFFD, so that server text can neither move the cursor, ring, recolour, rewrite a
/// line nor reorder what a terminal shows.
pub(crate) fn sanitize(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            '\t' | '\n' => ' ',
            c if is_unsafe(c) => '\u{fffd}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_key_and_quoted_params_are_redacted() {
        let creds =
            Credentials::new("STS.NTx9YourTemporaryKeyId", "s").with_security_token("tok/en+=");
        let text = "server string to sign is:POST&%2F&AccessKeyId%3DSTS.NTx9YourTemporaryKeyId\
                    %26SecurityToken%3Dtok%252Fen%252B%253D%26SignatureMethod%3DHMAC-SHA1";
        let out = redact(text, &creds);
        assert!(!out.contains("tok"), "{out}");
        assert!(!out.contains("NTx9YourTemporaryKeyId"), "{out}");
        assert!(out.contains("STS.****eyId"));
        assert!(out.contains("SignatureMethod%3DHMAC-SHA1"));
    }

    #[test]
    fn unknown_tokens_in_quoted_queries_are_redacted() {
        let creds = Credentials::new("id", "s");
        let out = redact(
            "GET /?SecurityToken=abc%2Fdef&Signature=xyz%3D&SignatureNonce=n HTTP/1.1",
            &creds,
        );
        assert_eq!(
            out,
            "GET /?SecurityToken=<redacted>&Signature=<redacted>&SignatureNonce=n HTTP/1.1"
        );
    }

    #[test]
    fn secret_parameters_are_redacted_by_name_and_by_value() {
        let params: BTreeMap<String, String> = [
            ("Password".to_string(), "hunter2-pw".to_string()),
            ("KeyPairName".to_string(), "kp".to_string()),
        ]
        .into();
        let creds = Credentials::new("LTAI5tSomeKeyId0000abcd", "the-secret-value");
        for text in [
            "Password=hunter2-pw&KeyPairName=kp",
            "x%26Password%3Dhunter2-pw%26y",
            "{\"password\":\"hunter2-pw\"}",
            "<Password>hunter2-pw</Password>",
            "bad value hunter2-pw",
            "bad value hunter2-pw%21",
        ] {
            let out = server_text(text, Some(&creds), Some(&params));
            assert!(!out.contains("hunter2"), "{text} -> {out}");
        }
        let out = server_text(
            "AccessKeySecret=abc&dbPrivateKey=pk&NewToken=nt&AccessKeyId=LTAIotherkey1234",
            None,
            None,
        );
        assert_eq!(
            out,
            "AccessKeySecret=<redacted>&dbPrivateKey=<redacted>&NewToken=<redacted>&AccessKeyId=LTAI****1234"
        );
        let out = server_text("secret: the-secret-value", Some(&creds), None);
        assert!(!out.contains("the-secret-value"), "{out}");
        assert_eq!(
            server_text("no secrets > here = fine", None, None),
            "no secrets > here = fine"
        );
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(sanitize("plain"), "plain");
        assert_eq!(
            sanitize("a\u{1b}[31mb\u{7}c\rd"),
            "a\u{fffd}[31mb\u{fffd}c\u{fffd}d"
        );
        assert_eq!(sanitize("line\nnext\ttab"), "line next tab");
        assert_eq!(
            sanitize("\u{7f}\u{9b}\u{202e}x\u{2066}"),
            "\u{fffd}\u{fffd}\u{fffd}x\u{fffd}"
        );
        assert_eq!(sanitize("café 漢字"), "café 漢字");
    }
}
