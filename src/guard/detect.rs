//! Recognising Alibaba's leak-protection answer, `Forbidden : There is a risk of leakage of this
//! AccessKey.`, in every form it takes.
//!
//! The rule, applied to the code and message of any answer (JSON in either key case, XML, under
//! any HTTP status, 2xx included) and to plain-text bodies:
//!
//! * code `Forbidden` (any case, surrounding spaces) and a message containing "risk of leakage"
//!   (case and whitespace insensitive): a leak answer;
//! * no code, and a message (or a plain-text body) that is the sentence "There is a risk of
//!   leakage of this AccessKey", optionally preceded by `Forbidden:` or `Forbidden :`: a leak
//!   answer;
//! * a message that negates the sentence ("There is no risk of leakage of this AccessKey", "not a
//!   risk of leakage", "without any risk of leakage"): not a leak answer;
//! * any other code (`Forbidden.RAM`, `Forbidden.RiskControl`, `Forbidden.AccessKeyDisabled`,
//!   `Forbidden.AccessKey`, `InvalidAccessKeyId.Inactive`, `NoPermission`, ...), or `Forbidden`
//!   with another message: not a leak answer.

use serde_json::Value;

use crate::response::ErrorFields;

const SENTENCE: &str = "there is a risk of leakage of this accesskey";
const MARKER: &str = "risk of leakage";

/// Lower-cases and folds runs of white space into one space, trimming the ends.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Words that negate a following "risk of leakage" within the same clause.
const NEGATIONS: &[&str] = &[
    "no", "not", "never", "without", "none", "nor", "neither", "zero", "cannot", "nothing",
];

/// Whether a normalized message mentions the risk of leakage without negating it: some
/// occurrence of the marker has no negation among the few words before it in its clause.
fn affirms_risk(normalized: &str) -> bool {
    let mut from = 0;
    while let Some(at) = normalized[from..].find(MARKER) {
        let at = from + at;
        let clause = normalized[..at]
            .rsplit(['.', '!', '?', ';', ':', ',', '。'])
            .next()
            .unwrap_or_default();
        let negated = clause.split_whitespace().rev().take(5).any(|word| {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            NEGATIONS.contains(&word) || word.ends_with("n't") || word.ends_with("n’t")
        });
        if !negated {
            return true;
        }
        from = at + MARKER.len();
    }
    false
}

/// Whether a normalized message is the bare sentence, optionally behind `forbidden:` and with
/// trailing punctuation.
fn is_bare_sentence(normalized: &str) -> bool {
    let mut rest = normalized;
    if let Some(after) = rest.strip_prefix("forbidden") {
        let after = after.trim_start();
        match after.strip_prefix(':') {
            Some(after) => rest = after.trim_start(),
            None => return false,
        }
    }
    let rest = rest.trim_end_matches(['.', '!', ' ', '。']);
    rest == SENTENCE
}

/// Classifies a code and message pair.
///
/// ```
/// use aliyun_guard::__internal::is_leak_answer;
/// assert!(is_leak_answer(Some("Forbidden"), Some("There is a risk of leakage of this AccessKey.")));
/// assert!(is_leak_answer(Some(" forbidden "), Some("there is a   RISK OF LEAKAGE")));
/// assert!(is_leak_answer(None, Some("Forbidden:There is a risk of leakage of this AccessKey")));
/// assert!(!is_leak_answer(Some("Forbidden.RAM"), Some("There is a risk of leakage of this AccessKey.")));
/// assert!(!is_leak_answer(Some("Forbidden"), Some("User not authorized to operate on the specified resource.")));
/// ```
pub fn is_leak_answer(code: Option<&str>, message: Option<&str>) -> bool {
    let message = match message {
        Some(m) => normalize(m),
        None => String::new(),
    };
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) if code.eq_ignore_ascii_case("forbidden") => affirms_risk(&message),
        Some(code) => {
            // A code that holds the whole documented rendering, "Forbidden : There is ...".
            let code = normalize(code);
            is_bare_sentence(&code) && message.is_empty()
        }
        None => is_bare_sentence(&message),
    }
}

/// Classifies parsed error fields.
pub fn fields_are_leak(fields: &ErrorFields) -> bool {
    is_leak_answer(fields.code.as_deref(), fields.message.as_deref())
}

/// Classifies a successful (2xx) JSON answer: cheap, it reads only the top-level code and message,
/// and allocates nothing for the usual answer that has neither.
pub fn value_is_leak(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    ErrorFields::may_be_in(map)
        && ErrorFields::from_json(value).is_some_and(|f| fields_are_leak(&f))
}

/// Classifies a raw body of any kind; returns the fields that matched.
///
/// Never panics, whatever the bytes.
pub fn detect_body(body: &[u8]) -> Option<ErrorFields> {
    let text = std::str::from_utf8(body).ok()?;
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.is_empty() {
        return None;
    }
    let fields = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str::<Value>(trimmed)
            .ok()
            .and_then(|v| ErrorFields::from_json(&v))
    } else if trimmed.starts_with('<') {
        ErrorFields::from_xml(trimmed)
    } else if trimmed.starts_with('"') {
        // A JSON string holding the sentence.
        serde_json::from_str::<String>(trimmed)
            .ok()
            .map(|message| ErrorFields {
                message: Some(message),
                ..ErrorFields::default()
            })
    } else if trimmed.len() <= 512 {
        // A plain-text body: "Forbidden : There is a risk ...", or the sentence alone.
        Some(ErrorFields {
            message: Some(trimmed.to_string()),
            ..ErrorFields::default()
        })
    } else {
        None
    };
    fields.filter(fields_are_leak)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, message, expected)
    const CASES: &[(Option<&str>, Option<&str>, bool)] = &[
        (
            Some("Forbidden"),
            Some("There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            Some("forbidden"),
            Some("There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            Some("FORBIDDEN"),
            Some("there is a risk of leakage of this accesskey"),
            true,
        ),
        (
            Some("  Forbidden\t"),
            Some("There is a  risk\nof   leakage of this AccessKey."),
            true,
        ),
        (Some("Forbidden"), Some("RISK OF LEAKAGE detected"), true),
        (
            Some("Forbidden"),
            Some("Forbidden : There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            None,
            Some("There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            None,
            Some("There is a risk of leakage of this AccessKey"),
            true,
        ),
        (
            None,
            Some("Forbidden : There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            None,
            Some("Forbidden:There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            None,
            Some("forbidden:there is a risk of leakage of this accesskey"),
            true,
        ),
        (
            Some(""),
            Some("There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            Some("Forbidden : There is a risk of leakage of this AccessKey."),
            None,
            true,
        ),
        (
            Some("Forbidden.RAM"),
            Some("There is a risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("Forbidden.RAM"),
            Some("User not authorized to operate on the specified resource."),
            false,
        ),
        (
            Some("Forbidden.RiskControl"),
            Some("This operation is forbidden by Aliyun RiskControl system."),
            false,
        ),
        (
            Some("Forbidden.RiskControl"),
            Some("There is a risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("Forbidden.AccessKeyDisabled"),
            Some("The specified AccessKey is disabled."),
            false,
        ),
        (
            Some("Forbidden.AccessKey"),
            Some("There is a risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("InvalidAccessKeyId.Inactive"),
            Some("Specified access key is disabled."),
            false,
        ),
        (
            Some("NoPermission"),
            Some("There is a risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("Forbidden"),
            Some("User not authorized to operate on the specified resource."),
            false,
        ),
        (Some("Forbidden"), None, false),
        (Some("Forbidden"), Some(""), false),
        (None, Some("There is a risk"), false),
        (
            None,
            Some("Warning: there is a risk of leakage of this AccessKey, rotate it"),
            false,
        ),
        (None, None, false),
        // Negations of the sentence are not leak answers.
        (
            Some("Forbidden"),
            Some("There is no risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("Forbidden"),
            Some("This is not a risk of leakage of this AccessKey."),
            false,
        ),
        (
            Some("Forbidden"),
            Some("There isn't any risk of leakage of this AccessKey"),
            false,
        ),
        (
            Some("Forbidden"),
            Some("Forbidden: without risk of leakage"),
            false,
        ),
        (
            Some("Forbidden"),
            Some("There is NO   risk of leakage"),
            false,
        ),
        (
            None,
            Some("There is no risk of leakage of this AccessKey."),
            false,
        ),
        (
            None,
            Some("Forbidden: There is no risk of leakage of this AccessKey."),
            false,
        ),
        // A negation elsewhere does not hide an affirmed risk.
        (
            Some("Forbidden"),
            Some("Request not allowed. There is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            Some("Forbidden"),
            Some("No: there is a risk of leakage of this AccessKey."),
            true,
        ),
        (
            Some("Forbidden"),
            Some(
                "There is no risk of leakage of the old key; there is a risk of leakage of this AccessKey.",
            ),
            true,
        ),
    ];

    #[test]
    fn table_of_codes_and_messages() {
        for (code, message, expected) in CASES {
            assert_eq!(
                is_leak_answer(*code, *message),
                *expected,
                "code {code:?} message {message:?}"
            );
        }
    }

    #[test]
    fn bodies_in_every_form() {
        let leak = [
            r#"{"RequestId":"R","HostId":"ecs.aliyuncs.com","Code":"Forbidden","Message":"There is a risk of leakage of this AccessKey."}"#,
            r#"{"requestId":"R","code":"Forbidden","message":"There is a risk of leakage of this AccessKey."}"#,
            r#"{"Error":{"Code":"Forbidden","Message":"There is a risk of leakage of this AccessKey."}}"#,
            r#"{"Message":"There is a risk of leakage of this AccessKey.","RequestId":"R"}"#,
            "<?xml version=\"1.0\"?><Error><Code>Forbidden</Code><Message>There is a risk of leakage of this AccessKey.</Message></Error>",
            "<Error><code> forbidden </code><message>There is a RISK OF LEAKAGE of this AccessKey.</message></Error>",
            "Forbidden : There is a risk of leakage of this AccessKey.",
            "There is a risk of leakage of this AccessKey.",
            "\"There is a risk of leakage of this AccessKey.\"",
        ];
        for body in leak {
            assert!(detect_body(body.as_bytes()).is_some(), "{body}");
        }
        let not_leak = [
            r#"{"Code":"Forbidden.RAM","Message":"There is a risk of leakage of this AccessKey."}"#,
            r#"{"Code":"Forbidden","Message":"User not authorized"}"#,
            "<Error><Code>NoPermission</Code><Message>There is a risk of leakage of this AccessKey.</Message></Error>",
            "<html><body>There is a risk of leakage of this AccessKey.</body></html>",
            "",
            "{",
            "\u{0}\u{1}",
        ];
        for body in not_leak {
            assert!(detect_body(body.as_bytes()).is_none(), "{body}");
        }
        assert!(detect_body(b"\xff\xfe").is_none());
    }

    #[test]
    fn success_values() {
        let v: Value = serde_json::from_str(
            r#"{"Code":"Forbidden","Message":"There is a risk of leakage of this AccessKey.","RequestId":"R"}"#,
        )
        .unwrap();
        assert!(value_is_leak(&v));
        let v: Value = serde_json::from_str(r#"{"Regions":{},"RequestId":"R"}"#).unwrap();
        assert!(!value_is_leak(&v));
    }
}
