//! Response decoding and leak classification never panic, whatever the status and body.
#![no_main]

use aliyun_guard::__internal::{
    ErrorFields, decode, detect_body, is_leak_answer, server_string_to_sign, snippet,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 1000;
    let body = &data[2..];
    let _ = decode(status, body);
    let _ = detect_body(body);
    let shown = snippet(body, 200);
    assert!(shown.chars().count() <= 201);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = ErrorFields::from_xml(text);
        let _ = server_string_to_sign(text);
        let middle = text
            .char_indices()
            .nth(text.chars().count() / 2)
            .map_or(text.len(), |(i, _)| i);
        let (code, message) = text.split_at(middle);
        let _ = is_leak_answer(Some(code), Some(message));
        let _ = is_leak_answer(None, Some(text));
    }
});
