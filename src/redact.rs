//! Redaction of server text before it reaches an error, a log line or a terminal.

use crate::credentials::Credentials;
use crate::signing::percent_encode;

const REDACTED: &str = "<redacted>";

/// Replaces the security token (raw and percent-encoded once or twice) with `<redacted>`, the
/// key id with its masked form, and the value of any `SecurityToken` or `Signature` parameter
/// quoted in the text.
pub(crate) fn redact(text: &str, credentials: &Credentials) -> String {
    let mut out = text.to_string();
    if let Some(token) = credentials.security_token().filter(|t| t.len() >= 4) {
        let once = percent_encode(token);
        let twice = percent_encode(&once);
        for form in [twice.as_str(), once.as_str(), token] {
            if out.contains(form) {
                out = out.replace(form, REDACTED);
            }
        }
    }
    let id = credentials.access_key_id();
    if id.len() >= 4 && out.contains(id) {
        out = out.replace(id, &credentials.masked_key_id());
    }
    for name in ["SecurityToken", "Signature"] {
        out = redact_param(&out, name);
    }
    out
}

/// Redacts the value after `name=` (or its encoded forms `%3D`, `%253D`) up to the next separator.
fn redact_param(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(name) {
        let (before, after_start) = rest.split_at(pos);
        out.push_str(before);
        out.push_str(name);
        let after = &after_start[name.len()..];
        let sep = ["=", "%3D", "%253D", "%3d", "%253d", "\":\""]
            .iter()
            .find(|s| after.starts_with(**s));
        match sep {
            Some(sep) => {
                out.push_str(sep);
                let value = &after[sep.len()..];
                let end = value
                    .find(['&', '"', '\'', '<', ' ', '\n', '\t', ','])
                    .into_iter()
                    .chain(value.find("%26"))
                    .chain(value.find("%2526"))
                    .min()
                    .unwrap_or(value.len());
                if end > 0 {
                    out.push_str(REDACTED);
                }
                rest = &value[end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
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
}
