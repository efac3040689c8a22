//! Decoding answers: JSON data, JSON or XML error bodies, and everything that is neither.
//!
//! Pure functions over a status and a body; the client reads the body (with a size cap) and
//! turns the outcome into [`crate::Error`].

use quick_xml::events::Event;
use serde_json::Value;

use crate::error::{AccessDeniedDetail, ApiError, ResponseFault, SignatureDiagnosis};

/// The fields of an error answer, from JSON (either key case) or XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorFields {
    /// `Code` / `code`.
    pub code: Option<String>,
    /// `Message` / `message`.
    pub message: Option<String>,
    /// `RequestId` / `requestId`.
    pub request_id: Option<String>,
    /// `HostId` / `hostId`.
    pub host_id: Option<String>,
    /// `Recommend` / `recommend`.
    pub recommend: Option<String>,
    /// `AccessDeniedDetail` / `accessDeniedDetail` (JSON answers only), as sent: not yet
    /// redacted.
    pub access_denied_detail: Option<Box<AccessDeniedDetail>>,
}

impl ErrorFields {
    /// The typed error of this answer to `action`: every server text made fit for an error by
    /// `text` (the call's secrets removed, key ids masked, control characters neutralised);
    /// `diagnose` is given the code and the raw message, to explain a disputed signature.
    pub(crate) fn into_api_error(
        self,
        status: u16,
        action: &str,
        attempts: u32,
        header_request_id: Option<String>,
        text: impl Fn(&str) -> String,
        diagnose: impl FnOnce(&str, &str) -> Option<SignatureDiagnosis>,
    ) -> ApiError {
        let code = self.code.unwrap_or_else(|| "Unknown".to_string());
        let raw_message = self.message.unwrap_or_default();
        let signature_diagnosis = diagnose(&code, &raw_message);
        ApiError {
            status,
            code: text(code.trim()),
            message: text(&raw_message),
            request_id: self.request_id.map(|t| text(&t)).or(header_request_id),
            host_id: self.host_id.map(|t| text(&t)),
            recommend: self.recommend.map(|t| text(&t)),
            action: action.to_string(),
            attempts,
            signature_diagnosis,
            access_denied_detail: self.access_denied_detail.map(|d| d.map_text(&text)),
        }
    }
}

const CODE_KEYS: &[&str] = &["Code", "code", "ErrorCode", "errorCode"];
const MESSAGE_KEYS: &[&str] = &[
    "Message",
    "message",
    "ErrorMessage",
    "errorMessage",
    "Msg",
    "msg",
];
const REQUEST_ID_KEYS: &[&str] = &["RequestId", "requestId", "request_id", "RequestID"];
const HOST_ID_KEYS: &[&str] = &["HostId", "hostId", "host_id"];
const RECOMMEND_KEYS: &[&str] = &["Recommend", "recommend"];
const ACCESS_DENIED_KEYS: &[&str] = &["AccessDeniedDetail", "accessDeniedDetail"];
/// Most fields of an `AccessDeniedDetail` kept besides the named ones.
const MAX_OTHER_DETAIL_FIELDS: usize = 32;
/// Longest value kept from an `AccessDeniedDetail` (an encoded diagnostic message is a few
/// hundred characters).
const MAX_DETAIL_CHARS: usize = 4096;
/// Keys an error body may hold besides code and message.
const ERROR_ONLY_KEYS: &[&str] = &[
    "Code",
    "code",
    "Message",
    "message",
    "RequestId",
    "requestId",
    "HostId",
    "hostId",
    "Recommend",
    "recommend",
    "AccessDeniedDetail",
    "accessDeniedDetail",
];
/// Codes that successful answers carry (SMS answers `"Code": "OK"`).
const SUCCESS_CODES: &[&str] = &["OK", "Ok", "ok", "Success", "success", "200"];

fn field(map: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

impl ErrorFields {
    /// Reads error fields from a JSON value: a top-level object, or one nested under
    /// `Error`/`error`. `None` when there is neither a code nor a message.
    pub fn from_json(value: &Value) -> Option<Self> {
        let map = value.as_object()?;
        let map = match map.get("Error").or_else(|| map.get("error")) {
            Some(Value::Object(inner)) => inner,
            _ => map,
        };
        let fields = ErrorFields {
            code: field(map, CODE_KEYS),
            message: field(map, MESSAGE_KEYS),
            request_id: field(map, REQUEST_ID_KEYS)
                .or_else(|| field(value.as_object()?, REQUEST_ID_KEYS)),
            host_id: field(map, HOST_ID_KEYS),
            recommend: field(map, RECOMMEND_KEYS),
            access_denied_detail: ACCESS_DENIED_KEYS
                .iter()
                .find_map(|k| map.get(*k).or_else(|| value.get(*k)))
                .and_then(access_denied_detail),
        };
        (fields.code.is_some() || fields.message.is_some()).then_some(fields)
    }

    /// Reads error fields from an XML document (`<Error><Code>..</Code>...</Error>`, any root,
    /// either key case). `None` when the XML is malformed or holds neither code nor message.
    pub fn from_xml(text: &str) -> Option<Self> {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut fields = ErrorFields::default();
        let mut current: Option<&'static str> = None;
        let mut depth = 0usize;
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) => {
                    depth += 1;
                    if depth > 64 {
                        return None;
                    }
                    let name = e.local_name();
                    let name = name.as_ref();
                    current = [
                        ("code", "code"),
                        ("message", "message"),
                        ("requestid", "request_id"),
                        ("hostid", "host_id"),
                        ("recommend", "recommend"),
                    ]
                    .iter()
                    .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
                    .map(|(_, f)| *f);
                }
                Ok(Event::End(_)) => {
                    depth = depth.saturating_sub(1);
                    current = None;
                }
                Ok(Event::Text(t)) => {
                    if let Some(which) = current {
                        // Entity and character references arrive as `GeneralRef` events: the
                        // text between them holds none.
                        let text = t.decode().ok()?;
                        append(&mut fields, which, &text);
                    }
                }
                Ok(Event::CData(t)) => {
                    if let Some(which) = current {
                        let text = String::from_utf8_lossy(&t).into_owned();
                        append(&mut fields, which, &text);
                    }
                }
                Ok(Event::GeneralRef(r)) => {
                    if let Some(which) = current {
                        // `&#233;` / `&#xE9;` are characters; `&amp;` and the other predefined
                        // entities are resolved; an unknown entity is kept as written.
                        let resolved = match r.resolve_char_ref() {
                            Ok(Some(c)) => c.to_string(),
                            Ok(None) => {
                                let name = r.decode().ok()?;
                                match quick_xml::escape::resolve_predefined_entity(&name) {
                                    Some(s) => s.to_string(),
                                    None => format!("&{name};"),
                                }
                            }
                            Err(_) => "\u{fffd}".to_string(),
                        };
                        append(&mut fields, which, &resolved);
                    }
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        (fields.code.is_some() || fields.message.is_some()).then_some(fields)
    }

    /// Whether a JSON object has any key [`ErrorFields::from_json`] reads a code or message
    /// from: one pass over its (few) keys, no allocation.
    pub fn may_be_in(map: &serde_json::Map<String, Value>) -> bool {
        map.keys().any(|k| {
            let k = k.as_str();
            CODE_KEYS.contains(&k) || MESSAGE_KEYS.contains(&k) || k == "Error" || k == "error"
        })
    }

    /// Whether this is the code/message pair of a successful answer (SMS's `"Code": "OK"`).
    fn is_success_code(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| SUCCESS_CODES.contains(&c.trim()))
    }
}

/// Reads an `AccessDeniedDetail`: an object, or a string holding one (either key case).
fn access_denied_detail(value: &Value) -> Option<Box<AccessDeniedDetail>> {
    let parsed;
    let map = match value {
        Value::Object(map) => map,
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).ok()?;
            parsed.as_object()?
        }
        _ => return None,
    };
    let mut detail = AccessDeniedDetail::default();
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s.chars().take(MAX_DETAIL_CHARS).collect(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "authaction" => &mut detail.auth_action,
            "authresource" => &mut detail.auth_resource,
            "authprincipaltype" => &mut detail.auth_principal_type,
            "authprincipalownerid" => &mut detail.auth_principal_owner_id,
            "authprincipaldisplayname" => &mut detail.auth_principal_display_name,
            "nopermissiontype" => &mut detail.no_permission_type,
            "policytype" => &mut detail.policy_type,
            "encodeddiagnosticmessage" | "encodeddiagnosticinfo" => {
                &mut detail.encoded_diagnostic_message
            }
            _ => {
                if detail.other.len() < MAX_OTHER_DETAIL_FIELDS {
                    let name = name.chars().take(128).collect();
                    detail.other.insert(name, text);
                }
                continue;
            }
        };
        slot.get_or_insert(text);
    }
    Some(Box::new(detail))
}

fn append(fields: &mut ErrorFields, which: &str, text: &str) {
    let slot = match which {
        "code" => &mut fields.code,
        "message" => &mut fields.message,
        "request_id" => &mut fields.request_id,
        "host_id" => &mut fields.host_id,
        _ => &mut fields.recommend,
    };
    slot.get_or_insert_with(String::new).push_str(text);
}

/// What a body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Successful JSON data.
    Data(Value),
    /// An error answer.
    Error(ErrorFields),
    /// Something that could not be understood.
    Fault(ResponseFault),
}

/// Decodes a body by its content, not its `Content-Type` (proxies lie).
///
/// A 2xx JSON object is an error only when it holds nothing but error keys and a code that is not
/// a success code; any other 2xx JSON is data. A non-2xx answer is an error when it carries a code
/// or message, and a fault otherwise.
pub fn decode(status: u16, body: &[u8]) -> Decoded {
    let success = (200..300).contains(&status);
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => return Decoded::Fault(ResponseFault::InvalidUtf8),
    };
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if trimmed.trim_end().is_empty() {
        return Decoded::Fault(ResponseFault::Empty);
    }
    if trimmed.starts_with('<') {
        if looks_like_html(trimmed) {
            return Decoded::Fault(ResponseFault::Html);
        }
        return match ErrorFields::from_xml(trimmed) {
            Some(fields) if !(success && fields.is_success_code()) => Decoded::Error(fields),
            _ if success => Decoded::Fault(ResponseFault::UnsupportedFormat),
            _ => Decoded::Fault(ResponseFault::UnrecognizedError),
        };
    }
    let value: Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Decoded::Fault(ResponseFault::Truncated),
        Err(_) => return Decoded::Fault(ResponseFault::InvalidJson),
    };
    if success {
        if let Some(fields) = error_only_body(&value) {
            return Decoded::Error(fields);
        }
        return Decoded::Data(value);
    }
    match ErrorFields::from_json(&value) {
        Some(fields) => Decoded::Error(fields),
        None => Decoded::Fault(ResponseFault::UnrecognizedError),
    }
}

/// A 2xx object made only of error keys, with a code that is not a success code.
fn error_only_body(value: &Value) -> Option<ErrorFields> {
    let map = value.as_object()?;
    if !map.keys().all(|k| ERROR_ONLY_KEYS.contains(&k.as_str())) {
        return None;
    }
    let fields = ErrorFields::from_json(value)?;
    (fields.code.is_some() && !fields.is_success_code()).then_some(fields)
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<head")
        || head.starts_with("<body")
        || head.starts_with("<!--")
}

/// How many characters of a body an error quotes.
pub(crate) const SNIPPET_CHARS: usize = 200;

/// The first `max` characters of a body as lossy UTF-8, control characters made visible.
pub fn snippet(body: &[u8], max: usize) -> String {
    let lossy = String::from_utf8_lossy(&body[..body.len().min(max * 4)]);
    let mut out: String = lossy
        .chars()
        .take(max)
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if lossy.chars().count() > max || body.len() > max * 4 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_either_key_case() {
        for body in [
            r#"{"RequestId":"R1","HostId":"h","Code":"InvalidParameter","Message":"bad","Recommend":"https://r"}"#,
            r#"{"requestId":"R1","hostId":"h","code":"InvalidParameter","message":"bad","recommend":"https://r"}"#,
        ] {
            let Decoded::Error(f) = decode(400, body.as_bytes()) else {
                panic!("not an error: {body}")
            };
            assert_eq!(f.code.as_deref(), Some("InvalidParameter"));
            assert_eq!(f.message.as_deref(), Some("bad"));
            assert_eq!(f.request_id.as_deref(), Some("R1"));
            assert_eq!(f.host_id.as_deref(), Some("h"));
            assert_eq!(f.recommend.as_deref(), Some("https://r"));
        }
    }

    #[test]
    fn access_denied_detail_in_either_case_and_shape() {
        let body = r#"{"RequestId":"R","Code":"Forbidden.RAM","Message":"denied",
            "AccessDeniedDetail":{"AuthAction":"ecs:RunInstances","AuthPrincipalType":"SubUser",
            "AuthPrincipalOwnerId":"1234567890","AuthPrincipalDisplayName":"dev",
            "NoPermissionType":"ImplicitDeny","PolicyType":"AccountLevelIdentityBasedPolicy",
            "EncodedDiagnosticMessage":"AQEAAAAAZBgx","AuthResource":"*","Extra":7,"Nested":{}}}"#;
        let Decoded::Error(f) = decode(403, body.as_bytes()) else {
            panic!()
        };
        let d = f.access_denied_detail.expect("detail kept");
        assert_eq!(d.auth_action.as_deref(), Some("ecs:RunInstances"));
        assert_eq!(d.auth_principal_type.as_deref(), Some("SubUser"));
        assert_eq!(d.auth_principal_owner_id.as_deref(), Some("1234567890"));
        assert_eq!(d.auth_principal_display_name.as_deref(), Some("dev"));
        assert_eq!(d.no_permission_type.as_deref(), Some("ImplicitDeny"));
        assert_eq!(
            d.policy_type.as_deref(),
            Some("AccountLevelIdentityBasedPolicy")
        );
        assert_eq!(
            d.encoded_diagnostic_message.as_deref(),
            Some("AQEAAAAAZBgx")
        );
        assert_eq!(d.auth_resource.as_deref(), Some("*"));
        assert_eq!(d.other.get("Extra").map(String::as_str), Some("7"));
        assert!(!d.other.contains_key("Nested"));
        let lower = r#"{"requestId":"R","code":"NoPermission","message":"m",
            "accessDeniedDetail":"{\"authAction\":\"ram:ListUsers\",\"encodedDiagnosticInfo\":\"Zm9v\"}"}"#;
        let Decoded::Error(f) = decode(403, lower.as_bytes()) else {
            panic!()
        };
        let d = f.access_denied_detail.expect("detail in a string kept");
        assert_eq!(d.auth_action.as_deref(), Some("ram:ListUsers"));
        assert_eq!(d.encoded_diagnostic_message.as_deref(), Some("Zm9v"));
        // A 2xx body made of error keys and a detail is still an error answer.
        let Decoded::Error(f) = decode(
            200,
            br#"{"Code":"NoPermission","AccessDeniedDetail":{"AuthAction":"a"}}"#,
        ) else {
            panic!()
        };
        assert!(f.access_denied_detail.is_some());
        // Too many other fields: bounded.
        let many: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("F{i}"), Value::from(i)))
            .collect();
        let body = serde_json::json!({"Code": "X", "AccessDeniedDetail": many}).to_string();
        let Decoded::Error(f) = decode(403, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(
            f.access_denied_detail.unwrap().other.len(),
            MAX_OTHER_DETAIL_FIELDS
        );
    }

    #[test]
    fn xml_error() {
        let body = "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R2</RequestId>\
                    <HostId>ecs.aliyuncs.com</HostId><Code>Forbidden</Code>\
                    <Message>There is a risk of leakage of this AccessKey &amp; more.</Message></Error>";
        let Decoded::Error(f) = decode(403, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(f.code.as_deref(), Some("Forbidden"));
        assert_eq!(
            f.message.as_deref(),
            Some("There is a risk of leakage of this AccessKey & more.")
        );
        assert_eq!(f.request_id.as_deref(), Some("R2"));
    }

    #[test]
    fn xml_character_references_are_decoded() {
        let body = "<Error><Code>Caf&#233;&#x2E;Error</Code><Message>caf&#233; &amp; th&#xE9; \
                    &lt;ok&gt; &unknown; &#0; &#xD800;</Message><RequestId>R&#45;1</RequestId>\
                    <HostId>h&#46;example</HostId><Recommend>&quot;r&apos;</Recommend></Error>";
        let Decoded::Error(f) = decode(400, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(f.code.as_deref(), Some("Café.Error"));
        assert_eq!(
            f.message.as_deref(),
            Some("café & thé <ok> &unknown; \u{fffd} \u{fffd}")
        );
        assert_eq!(f.request_id.as_deref(), Some("R-1"));
        assert_eq!(f.host_id.as_deref(), Some("h.example"));
        assert_eq!(f.recommend.as_deref(), Some("\"r'"));
    }

    #[test]
    fn faults() {
        assert_eq!(decode(200, b""), Decoded::Fault(ResponseFault::Empty));
        assert_eq!(decode(200, b"  \n"), Decoded::Fault(ResponseFault::Empty));
        assert_eq!(
            decode(200, b"{\"a\":"),
            Decoded::Fault(ResponseFault::Truncated)
        );
        assert_eq!(
            decode(200, b"{nope}"),
            Decoded::Fault(ResponseFault::InvalidJson)
        );
        assert_eq!(
            decode(200, b"\xff\xfe"),
            Decoded::Fault(ResponseFault::InvalidUtf8)
        );
        assert_eq!(
            decode(403, b"<!DOCTYPE html><html>denied</html>"),
            Decoded::Fault(ResponseFault::Html)
        );
        assert_eq!(
            decode(502, b"{\"foo\":1}"),
            Decoded::Fault(ResponseFault::UnrecognizedError)
        );
        assert_eq!(
            decode(200, b"<a/>"),
            Decoded::Fault(ResponseFault::UnsupportedFormat)
        );
    }

    #[test]
    fn success_bodies_with_codes() {
        let ok = br#"{"Code":"OK","Message":"OK","RequestId":"R","BizId":"1"}"#;
        assert!(matches!(decode(200, ok), Decoded::Data(_)));
        let ok_only = br#"{"Code":"OK","Message":"OK","RequestId":"R"}"#;
        assert!(matches!(decode(200, ok_only), Decoded::Data(_)));
        let err = br#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"bad number","RequestId":"R"}"#;
        assert!(matches!(decode(200, err), Decoded::Error(_)));
        let data = br#"{"Regions":{"Region":[]},"RequestId":"R"}"#;
        assert!(matches!(decode(200, data), Decoded::Data(_)));
    }

    #[test]
    fn snippet_is_bounded_and_visible() {
        assert_eq!(snippet(b"abc", 10), "abc");
        assert_eq!(snippet(b"abcdef", 3), "abc…");
        assert_eq!(snippet(b"a\x00b", 10), "a\u{fffd}b");
    }
}
