//! Alibaba's percent-encoding for RPC signatures.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Every byte except the RFC 3986 unreserved set (`A-Z a-z 0-9 - _ . ~`) is escaped.
///
/// This matches the POP rule: space becomes `%20` (never `+`), `*` becomes `%2A`, `~` stays.
const POP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Appends the POP percent-encoding of `input` to `out`.
///
/// The input is taken as UTF-8; every byte outside `A-Z a-z 0-9 - _ . ~` becomes `%XX` with
/// upper-case hex digits.
pub fn percent_encode_into(out: &mut String, input: &str) {
    for chunk in utf8_percent_encode(input, POP) {
        out.push_str(chunk);
    }
}

/// Returns the POP percent-encoding of `input`.
///
/// ```
/// use aliyun_guard::signing::percent_encode;
/// assert_eq!(percent_encode("a b*c~d+é"), "a%20b%2Ac~d%2B%C3%A9");
/// ```
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    percent_encode_into(&mut out, input);
    out
}

/// Decodes `%XX` escapes (the inverse of [`percent_encode`]); `None` if the result is not UTF-8.
///
/// Malformed escapes are kept as they are, as `percent-encoding` does.
pub fn percent_decode(input: &str) -> Option<String> {
    percent_encoding::percent_decode_str(input)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_bytes_stay() {
        let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
        assert_eq!(percent_encode(unreserved), unreserved);
    }

    #[test]
    fn reserved_ascii_is_escaped_upper_case() {
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("="), "%3D");
        assert_eq!(percent_encode("&"), "%26");
        assert_eq!(percent_encode("%"), "%25");
        assert_eq!(percent_encode(":"), "%3A");
        assert_eq!(percent_encode("\n"), "%0A");
        assert_eq!(percent_encode("\u{7f}"), "%7F");
    }

    #[test]
    fn multibyte_utf8_is_escaped_per_byte() {
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
        assert_eq!(percent_encode("😀"), "%F0%9F%98%80");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn empty_stays_empty() {
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn decode_inverts_encode() {
        for s in ["a b", "~*+/=&%", "中文😀", ""] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
    }
}
