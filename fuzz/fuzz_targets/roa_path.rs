//! The ROA path/query encoder never panics; what it accepts is a well-formed encoded path with
//! one segment per template segment (a parameter never adds one, nor leaves `.`/`..`), and the V3
//! signer accepts it.
//!
//! Input: the first line is the path template, each further line `name=value` (a path parameter
//! and, the same pair, a query parameter and an `x-acs-` header).
#![no_main]

use aliyun_guard::Credentials;
use aliyun_guard::__internal::check_encoded_path;
use aliyun_guard::signing::roa::PathTemplate;
use aliyun_guard::__internal::{V3Request, sign_v3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let template = lines.next().unwrap_or_default();
    let params: Vec<(&str, &str)> = lines
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .collect();
    let Ok(parsed) = PathTemplate::parse(template) else {
        return;
    };
    let Ok(path) = parsed.fill(&params) else {
        return;
    };
    check_encoded_path(&path).expect("a filled path is a valid encoded path");
    assert_eq!(
        path.matches('/').count(),
        template.matches('/').count(),
        "a parameter added a segment"
    );
    let mut request = V3Request::new("GET", "example.aliyuncs.com", "Fuzz", "2020-01-01")
        .encoded_path(path.clone())
        .queries(params.iter().copied());
    for (name, value) in &params {
        request = request.header(format!("x-acs-{name}"), *value);
    }
    let credentials = Credentials::new("id", "secret").with_security_token("token");
    if let Ok(signed) = sign_v3(
        &request,
        &credentials,
        time::OffsetDateTime::UNIX_EPOCH,
        "n",
    ) {
        assert_eq!(signed.path(), path);
        assert!(
            signed
                .canonical_request()
                .starts_with(&format!("GET\n{path}\n"))
        );
    }
});
