//! Alibaba's percent-encoding for RPC signatures.
//!
//! A table-driven encoder: runs of unreserved bytes (a 256-entry flag table says which) are
//! copied as slices and every other byte is replaced by its `%XX`, sliced from one 768-byte
//! string. It is the hot loop of signing (every parameter is encoded twice), several times
//! faster than a general-purpose iterator; a property test holds it byte for byte to the
//! `percent-encoding` crate with the same character set.
//!
//! Also the timestamp format of the signatures ([`format_timestamp`]). A leaf of the module
//! layering (no crate imports); `signing` re-exports what is public.

use std::fmt::Write as _;

use time::OffsetDateTime;

/// Whether a byte is unreserved (`A-Z a-z 0-9 - _ . ~`): kept as it is.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

/// `%00%01…%FF`: the escape of byte `b` is `ESCAPES[3 * b..3 * b + 3]` (768 bytes, where a table
/// of 256 `&str` would take 4 KiB of cache).
const ESCAPES: &str = {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    const BYTES: [u8; 768] = {
        let mut out = [0u8; 768];
        let mut b = 0;
        while b < 256 {
            out[3 * b] = b'%';
            out[3 * b + 1] = HEX[b >> 4];
            out[3 * b + 2] = HEX[b & 15];
            b += 1;
        }
        out
    };
    match std::str::from_utf8(&BYTES) {
        Ok(text) => text,
        Err(_) => panic!("ASCII"),
    }
};

/// `%XX` for a byte.
#[inline]
fn escape(byte: u8) -> &'static str {
    let at = 3 * byte as usize;
    &ESCAPES[at..at + 3]
}

/// Where encoded text goes: a `String`, or a hash that consumes it as it comes.
pub(crate) trait Sink {
    /// Appends `text`.
    fn push(&mut self, text: &str);
}

impl Sink for String {
    #[inline]
    fn push(&mut self, text: &str) {
        self.push_str(text);
    }
}

/// Appends the POP percent-encoding of `input` to `out`.
///
/// The input is taken as UTF-8; every byte outside `A-Z a-z 0-9 - _ . ~` becomes `%XX` with
/// upper-case hex digits (space is `%20`, never `+`; `*` is `%2A`; `~` stays).
pub fn percent_encode_into(out: &mut String, input: &str) {
    let bytes = input.as_bytes();
    out.reserve(bytes.len());
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if !UNRESERVED[byte as usize] {
            // Bytes in a run are unreserved ASCII, so both ends are char boundaries.
            if run_start < i {
                out.push_str(&input[run_start..i]);
            }
            out.push_str(escape(byte));
            run_start = i + 1;
        }
    }
    if run_start < bytes.len() {
        out.push_str(&input[run_start..]);
    }
}

/// Appends `pct(input)` to `once` and `pct(pct(input))` to `twice` in one pass.
///
/// The signer builds the canonical query and the string to sign (the canonical query encoded
/// again) together this way: an escaped byte is `%XX` in the first and `%25XX` in the second,
/// unreserved bytes are the same in both.
pub(crate) fn percent_encode_twice(once: &mut String, twice: &mut impl Sink, input: &str) {
    let bytes = input.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if !UNRESERVED[byte as usize] {
            // Bytes in a run are unreserved ASCII, so both ends are char boundaries.
            if run_start < i {
                once.push_str(&input[run_start..i]);
                twice.push(&input[run_start..i]);
            }
            let escaped = escape(byte);
            once.push_str(escaped);
            twice.push("%25");
            twice.push(&escaped[1..]);
            run_start = i + 1;
        }
    }
    if run_start < bytes.len() {
        once.push_str(&input[run_start..]);
        twice.push(&input[run_start..]);
    }
}

/// Returns the POP percent-encoding of `input`.
///
/// ```
/// use aliyun_guard::__internal::percent_encode;
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

/// Formats `YYYY-MM-DDThh:mm:ssZ` in UTC, without fractions.
///
/// Each thread keeps the last second it formatted: calls within the same second copy it.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    timestamp_at(at).as_str().to_owned()
}

/// A formatted timestamp kept inline (`YYYY-MM-DDThh:mm:ssZ`: 20 bytes for years 0 to 9999,
/// room for more).
#[derive(Clone, Copy)]
pub(crate) struct Timestamp {
    text: [u8; 32],
    len: u8,
}

impl Timestamp {
    const EMPTY: Timestamp = Timestamp {
        text: [0; 32],
        len: 0,
    };

    /// The timestamp's text.
    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII; the check cannot fail.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }

    fn format(at: OffsetDateTime) -> Timestamp {
        let text = format_timestamp_uncached(at);
        let mut out = Timestamp::EMPTY;
        let len = text.len().min(out.text.len());
        out.text[..len].copy_from_slice(&text.as_bytes()[..len]);
        out.len = len as u8;
        out
    }
}

thread_local! {
    /// The last second this thread formatted (Unix seconds) and its text.
    static LAST_TIMESTAMP: std::cell::Cell<(i64, Timestamp)> =
        const { std::cell::Cell::new((i64::MIN, Timestamp::EMPTY)) };
}

/// The timestamp of `at` (UTC, whole seconds), from the thread's cache when it is the second
/// last formatted.
pub(crate) fn timestamp_at(at: OffsetDateTime) -> Timestamp {
    cached_timestamp(at.unix_timestamp(), || at)
}

/// The timestamp of the current UTC second, read from the system clock without building an
/// `OffsetDateTime` unless the second changed since this thread last formatted one.
pub(crate) fn timestamp_now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => match i64::try_from(since.as_secs()) {
            Ok(second) => cached_timestamp(second, || {
                OffsetDateTime::from_unix_timestamp(second)
                    .unwrap_or_else(|_| OffsetDateTime::now_utc())
            }),
            Err(_) => timestamp_at(OffsetDateTime::now_utc()),
        },
        // A clock before 1970: not worth a cache.
        Err(_) => timestamp_at(OffsetDateTime::now_utc()),
    }
}

fn cached_timestamp(second: i64, at: impl FnOnce() -> OffsetDateTime) -> Timestamp {
    LAST_TIMESTAMP.with(|last| {
        let (cached_second, cached) = last.get();
        if cached_second == second {
            return cached;
        }
        let fresh = Timestamp::format(at());
        last.set((second, fresh));
        fresh
    })
}

fn format_timestamp_uncached(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let mut out = String::with_capacity(20);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    out
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
    fn every_byte_matches_the_percent_encoding_crate() {
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
        const POP: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        assert_eq!(
            percent_encode(&all),
            utf8_percent_encode(&all, POP).to_string()
        );
    }

    #[test]
    fn encoding_twice_in_one_pass_equals_encoding_twice() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        for input in [all.as_str(), "", "a", "%", "中😀 ~*", "a=b&c"] {
            let (mut once, mut twice) = (String::from("x&"), String::from("y%26"));
            percent_encode_twice(&mut once, &mut twice, input);
            assert_eq!(once, format!("x&{}", percent_encode(input)));
            assert_eq!(
                twice,
                format!("y%26{}", percent_encode(&percent_encode(input)))
            );
        }
    }

    #[test]
    fn the_current_timestamp_is_the_current_utc_second() {
        // Formatted anew, then from the cache: both times one of the seconds around the call.
        for _ in 0..3 {
            let before = OffsetDateTime::now_utc().unix_timestamp();
            let now = timestamp_now();
            let after = OffsetDateTime::now_utc().unix_timestamp();
            let around: Vec<String> = (before..=after)
                .map(|s| format_timestamp_uncached(OffsetDateTime::from_unix_timestamp(s).unwrap()))
                .collect();
            assert!(
                around.iter().any(|t| t == now.as_str()),
                "{} not in {around:?}",
                now.as_str()
            );
        }
    }

    #[test]
    fn the_timestamp_cache_follows_the_second() {
        use time::macros::datetime;
        let t = datetime!(2024-04-18 09:00:00.9 +08:00);
        assert_eq!(timestamp_at(t).as_str(), "2024-04-18T01:00:00Z");
        assert_eq!(
            timestamp_at(datetime!(2024-04-18 01:00:01 UTC)).as_str(),
            "2024-04-18T01:00:01Z"
        );
        // A second already cached, and one long before.
        assert_eq!(
            timestamp_at(datetime!(2024-04-18 01:00:01.5 UTC)).as_str(),
            "2024-04-18T01:00:01Z"
        );
        assert_eq!(
            timestamp_at(datetime!(1999-12-31 23:59:59 UTC)).as_str(),
            "1999-12-31T23:59:59Z"
        );
        // The system clock's second replaces an injected one in the cache.
        let now = timestamp_now();
        assert_ne!(now.as_str(), "1999-12-31T23:59:59Z");
        assert_eq!(now.as_str().len(), 20);
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
