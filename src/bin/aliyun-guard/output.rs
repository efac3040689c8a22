//! Output: text or JSON, and server strings made safe to print.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A report for people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Prints `json` or `text`, as chosen.
pub fn emit(output: Output, json: &Value, text: &str) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(json).unwrap_or_else(|_| "null".into())
        ),
        Output::Text => {
            if text.ends_with('\n') {
                print!("{text}");
            } else {
                println!("{text}");
            }
        }
    }
}

/// A string from a server or file made fit for a terminal: control characters replaced, at
/// most 300 characters.
pub fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(300).is_some() {
        out.push('…');
    }
    out
}

/// A string field of a JSON object (numbers are turned into text), cleaned.
pub fn field(value: &Value, name: &str) -> Option<String> {
    match value.get(name)? {
        Value::String(s) => Some(clean(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string field, or "-".
pub fn field_or_dash(value: &Value, name: &str) -> String {
    field(value, name).unwrap_or_else(|| "-".into())
}

/// An array under `path` (`["AccessKeys", "AccessKey"]`), empty when absent.
pub fn array<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    let mut v = value;
    for name in path {
        match v.get(name) {
            Some(next) => v = next,
            None => return &[],
        }
    }
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Milliseconds since the epoch (a number or a numeric string) as RFC 3339.
pub fn millis(value: &Value, name: &str) -> Option<String> {
    let ms = match value.get(name)? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(&Rfc3339).ok()
}

/// Now, as RFC 3339 without fractions.
pub fn now() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A time as RFC 3339 without fractions.
pub fn time(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}
