//! ROA path templates and encoded paths (re-exported by [`crate::signing::roa`], whose docs
//! describe them): part of the request, below `signing` in the module layering.

use std::fmt;

use crate::encode::percent_encode_into;
use crate::error::Error;

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 2048;
/// Longest parameter name accepted in a template, in bytes.
const MAX_NAME_LEN: usize = 128;

/// One piece of a template: encoded literal text (slashes kept) or a parameter.
#[derive(Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param(String),
}

/// A ROA path template such as `/clusters/{ClusterId}`. See the [module docs](crate::signing::roa).
///
/// ```
/// use aliyun_guard::signing::roa::PathTemplate;
///
/// let template = PathTemplate::parse("/clusters/{ClusterId}/nodepools/{NodepoolId}")?;
/// assert_eq!(template.params().collect::<Vec<_>>(), ["ClusterId", "NodepoolId"]);
/// assert_eq!(
///     template.fill(&[("ClusterId", "c 1"), ("NodepoolId", "np/2")])?,
///     "/clusters/c%201/nodepools/np%2F2"
/// );
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
}

impl fmt::Debug for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => shown.push_str(s),
                Part::Param(name) => {
                    shown.push('{');
                    shown.push_str(name);
                    shown.push('}');
                }
            }
        }
        f.debug_tuple("PathTemplate").field(&shown).finish()
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidRequest(message)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

impl PathTemplate {
    /// Parses a template: it starts with `/`; `{Name}` marks a parameter (`Name` made of
    /// `A-Z a-z 0-9 _ - .`); `?`, `#`, `%`, control characters, stray braces, and empty, `.` or
    /// `..` segments (other than a final `/`) are refused.
    ///
    /// ```
    /// use aliyun_guard::signing::roa::PathTemplate;
    ///
    /// assert!(PathTemplate::parse("/api/v1/clusters").is_ok());
    /// assert!(PathTemplate::parse("clusters").is_err()); // no leading '/'
    /// assert!(PathTemplate::parse("/clusters?all=1").is_err()); // query given separately
    /// assert!(PathTemplate::parse("/a/../b").is_err());
    /// ```
    pub fn parse(template: &str) -> Result<Self, Error> {
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(invalid(format!(
                "the path template is {} bytes long (at most {MAX_TEMPLATE_LEN})",
                template.len()
            )));
        }
        if !template.starts_with('/') {
            return Err(invalid(format!(
                "the path template {:?} must start with '/'",
                shorten(template)
            )));
        }
        if let Some(c) = template
            .chars()
            .find(|c| matches!(c, '?' | '#' | '%') || c.is_control())
        {
            return Err(invalid(format!(
                "the path template {:?} contains {c:?}: give query parameters separately and \
                 raw (not percent-encoded) text",
                shorten(template)
            )));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(at) if rest.as_bytes()[at] == b'}' => {
                    return Err(invalid(format!(
                        "the path template {:?} has a '}}' without '{{'",
                        shorten(template)
                    )));
                }
                Some(at) => {
                    if at > 0 {
                        parts.push(Part::Literal(encode_literal(&rest[..at])));
                    }
                    let after = &rest[at + 1..];
                    let Some(end) = after.find('}') else {
                        return Err(invalid(format!(
                            "the path template {:?} has a '{{' without '}}'",
                            shorten(template)
                        )));
                    };
                    let name = &after[..end];
                    if name.is_empty()
                        || name.len() > MAX_NAME_LEN
                        || !name.bytes().all(is_name_byte)
                    {
                        return Err(invalid(format!(
                            "the path template {:?} has a bad parameter name {:?} (use A-Z a-z \
                             0-9 _ - .)",
                            shorten(template),
                            shorten(name)
                        )));
                    }
                    parts.push(Part::Param(name.to_string()));
                    rest = &after[end + 1..];
                }
                None => {
                    parts.push(Part::Literal(encode_literal(rest)));
                    rest = "";
                }
            }
        }
        let parsed = Self { parts };
        parsed.check_literal_segments(template)?;
        Ok(parsed)
    }

    /// Refuses empty, `.` and `..` segments made of literal text only.
    fn check_literal_segments(&self, template: &str) -> Result<(), Error> {
        let segments = self.segments();
        let last = segments.len().saturating_sub(1);
        for (i, segment) in segments.iter().enumerate() {
            if segment.iter().any(|p| matches!(p, Part::Param(_))) {
                continue;
            }
            let text: String = segment
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.as_str(),
                    Part::Param(_) => "",
                })
                .collect();
            // The root "/" and a final "/" leave one empty last segment.
            let bad = match text.as_str() {
                "" => i != last,
                "." | ".." => true,
                _ => false,
            };
            if bad {
                return Err(invalid(format!(
                    "the path template {:?} has an empty, '.' or '..' segment",
                    shorten(template)
                )));
            }
        }
        Ok(())
    }

    /// The parts between slashes (the first, before the leading `/`, is dropped).
    fn segments(&self) -> Vec<Vec<Part>> {
        let mut segments: Vec<Vec<Part>> = vec![Vec::new()];
        for part in &self.parts {
            match part {
                Part::Param(_) => segments.last_mut().into_iter().for_each(|s| {
                    s.push(part.clone());
                }),
                Part::Literal(text) => {
                    for (i, piece) in text.split('/').enumerate() {
                        if i > 0 {
                            segments.push(Vec::new());
                        }
                        if !piece.is_empty()
                            && let Some(s) = segments.last_mut()
                        {
                            s.push(Part::Literal(piece.to_string()));
                        }
                    }
                }
            }
        }
        segments.remove(0);
        segments
    }

    /// The parameter names of the template, in order of appearance (a repeated one repeats).
    ///
    /// ```
    /// use aliyun_guard::signing::roa::PathTemplate;
    ///
    /// let template = PathTemplate::parse("/clusters/{ClusterId}/triggers")?;
    /// assert_eq!(template.params().collect::<Vec<_>>(), ["ClusterId"]);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Param(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills the template with `values` (raw, not encoded) and returns the encoded path.
    ///
    /// Refuses a missing, unknown or repeated parameter, and a segment left empty, `.` or `..`
    /// by a parameter.
    ///
    /// ```
    /// use aliyun_guard::signing::roa::PathTemplate;
    ///
    /// let template = PathTemplate::parse("/clusters/{ClusterId}")?;
    /// assert_eq!(template.fill(&[("ClusterId", "c-123")])?, "/clusters/c-123");
    /// assert!(template.fill(&[]).is_err()); // missing
    /// assert!(template.fill(&[("ClusterId", "..")]).is_err()); // would climb out
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn fill(&self, values: &[(&str, &str)]) -> Result<String, Error> {
        // More values than parameters: one is unknown or repeated (checked below); the bound
        // keeps the checks below small whatever the caller passes.
        let expected = self.params().count();
        if values.len() > expected {
            return Err(invalid(format!(
                "{} path parameters given, the path template {self:?} has {expected}",
                values.len()
            )));
        }
        for (i, (name, _)) in values.iter().enumerate() {
            if values[..i].iter().any(|(n, _)| n == name) {
                return Err(invalid(format!(
                    "path parameter {:?} is given twice",
                    shorten(name)
                )));
            }
            if !self.params().any(|p| p == *name) {
                return Err(invalid(format!(
                    "path parameter {:?} is not in the path template {self:?}",
                    shorten(name)
                )));
            }
        }
        let value_of = |name: &str| -> Result<&str, Error> {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    invalid(format!(
                        "path parameter {name:?} of the path template {self:?} is missing"
                    ))
                })
        };
        let mut out = String::with_capacity(
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.len(),
                    Part::Param(_) => 16,
                })
                .sum(),
        );
        // The raw bytes of the current segment that came from parameters, to check the whole
        // segment once it is complete.
        let mut segment_start = 0;
        let mut segment_has_param = false;
        let check = |out: &str, start: usize, has_param: bool| -> Result<(), Error> {
            if has_param && matches!(&out[start..], "" | "." | "..") {
                return Err(invalid(format!(
                    "the path parameters of {self:?} leave an empty, '.' or '..' segment"
                )));
            }
            Ok(())
        };
        for part in &self.parts {
            match part {
                Part::Param(name) => {
                    percent_encode_into(&mut out, value_of(name)?);
                    segment_has_param = true;
                }
                Part::Literal(text) => {
                    for (i, piece) in text.split('/').enumerate() {
                        if i > 0 {
                            check(&out, segment_start, segment_has_param)?;
                            out.push('/');
                            segment_start = out.len();
                            segment_has_param = false;
                        }
                        out.push_str(piece);
                    }
                }
            }
        }
        check(&out, segment_start, segment_has_param)?;
        Ok(out)
    }
}

/// Encodes literal template text: every byte but the unreserved ones and `/` as `%XX`.
fn encode_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        percent_encode_into(&mut out, piece);
    }
    out
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Encodes raw path segments: each percent-encoded (a `/` inside one becomes `%2F`), joined
/// with `/` after a leading `/`. No segment gives `/`.
///
/// ```
/// use aliyun_guard::__internal::encode_path_segments;
/// assert_eq!(encode_path_segments(["repos", "a b/c", "中"]), "/repos/a%20b%2Fc/%E4%B8%AD");
/// assert_eq!(encode_path_segments::<[&str; 0], _>([]), "/");
/// ```
pub fn encode_path_segments<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        percent_encode_into(&mut out, segment.as_ref());
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Checks an already-encoded path: starts with `/`; only unreserved bytes, `/` and `%XX`
/// escapes with upper-case hex; no `.` or `..` segment, no empty segment but a final one.
pub fn check_encoded_path(path: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(invalid(format!(
            "the encoded path {:?} {why}",
            shorten(path)
        )))
    };
    if !path.starts_with('/') {
        return bad("must start with '/'");
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
            if i + 2 >= bytes.len() {
                return bad("ends in an incomplete escape");
            }
            if !(hex(bytes[i + 1]) && hex(bytes[i + 2])) {
                return bad("has an escape that is not %XX with upper-case hex");
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/')) {
            return bad("has a byte that must be percent-encoded");
        }
        i += 1;
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if matches!(*segment, "." | "..") || (segment.is_empty() && i != last) {
            return bad("has an empty, '.' or '..' segment");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_encodes() {
        let t = PathTemplate::parse("/clusters/{ClusterId}/nodepools/{NodepoolId}").unwrap();
        assert_eq!(t.params().collect::<Vec<_>>(), ["ClusterId", "NodepoolId"]);
        assert_eq!(
            t.fill(&[("NodepoolId", "np*1~"), ("ClusterId", "c/中 x")])
                .unwrap(),
            "/clusters/c%2F%E4%B8%AD%20x/nodepools/np%2A1~"
        );
        let root = PathTemplate::parse("/").unwrap();
        assert_eq!(root.fill(&[]).unwrap(), "/");
        let literal = PathTemplate::parse("/api v1/é/").unwrap();
        assert_eq!(literal.fill(&[]).unwrap(), "/api%20v1/%C3%A9/");
        let partial = PathTemplate::parse("/files/{Name}.json").unwrap();
        assert_eq!(partial.fill(&[("Name", "")]).unwrap(), "/files/.json");
    }

    #[test]
    fn refuses_missing_unknown_repeated_and_traversal() {
        let t = PathTemplate::parse("/clusters/{ClusterId}").unwrap();
        for bad in [
            vec![],
            vec![("ClusterId", "a"), ("Other", "b")],
            vec![("ClusterId", "a"), ("ClusterId", "a")],
            vec![("ClusterId", "")],
            vec![("ClusterId", ".")],
            vec![("ClusterId", "..")],
        ] {
            assert!(t.fill(&bad).is_err(), "{bad:?}");
        }
        // A slash cannot add a segment, so "../x" is one harmless segment.
        assert_eq!(
            t.fill(&[("ClusterId", "../x")]).unwrap(),
            "/clusters/..%2Fx"
        );
        let two = PathTemplate::parse("/a/{X}{Y}").unwrap();
        assert!(two.fill(&[("X", "."), ("Y", ".")]).is_err());
        assert!(two.fill(&[("X", "."), ("Y", "..")]).is_ok());
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "",
            "clusters",
            "/a//b",
            "/a/../b",
            "/./b",
            "/a/{",
            "/a/}",
            "/a/{}",
            "/a/{B C}",
            "/a/{B{C}}",
            "/a?x=1",
            "/a#f",
            "/a%20b",
            "/a\nb",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PathTemplate::parse(&format!("/{}", "a".repeat(MAX_TEMPLATE_LEN))).is_err());
    }

    #[test]
    fn checks_encoded_paths() {
        for good in ["/", "/a/b", "/a/b/", "/a%2Fb", "/~x/-_."] {
            assert!(check_encoded_path(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", "a", "/a b", "/a//b", "/..", "/a/./b", "/%2", "/%", "/%zz", "/%2f", "/a?b",
        ] {
            assert!(check_encoded_path(bad).is_err(), "{bad:?}");
        }
    }
}
