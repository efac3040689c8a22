//! Property tests of the V3 canonicalisation: query order does not matter, the query sent decodes
//! back to the parameters, header names' case and values' padding do not matter, every signed
//! input changes the signature (and an unsigned header does not), arbitrary unicode never panics.

use std::collections::BTreeMap;

use aliyun_guard::__internal::{SignedV3, V3Request, sign_v3};
use aliyun_guard::__internal::{check_encoded_path, encode_path_segments, percent_decode};
use aliyun_guard::Credentials;
use aliyun_guard::signing::roa::PathTemplate;
use proptest::prelude::*;
use time::OffsetDateTime;

fn at() -> OffsetDateTime {
    time::macros::datetime!(2026-01-02 03:04:05 UTC)
}

fn creds() -> Credentials {
    Credentials::new("LTAI5tPropKeyId0000wxyz", "PropSecret").with_security_token("tok+/=")
}

/// Unique query parameters with arbitrary unicode names and values.
fn query_params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("\\PC{1,12}", "\\PC{0,20}", 0..8)
        .prop_map(|m: BTreeMap<String, String>| m.into_iter().collect())
}

/// Header values HTTP can carry: printable, unicode, no control characters.
fn header_value() -> impl Strategy<Value = String> {
    "[ -~\u{a1}-\u{2fff}]{0,24}"
}

fn base(query: &[(String, String)]) -> V3Request {
    V3Request::rpc(
        "ecs.cn-hangzhou.aliyuncs.com",
        "DescribeInstances",
        "2014-05-26",
    )
    .queries(query.iter().cloned())
}

fn sign(request: &V3Request) -> SignedV3 {
    sign_v3(request, &creds(), at(), "nonce-1").expect("valid request")
}

fn authorization(signed: &SignedV3) -> String {
    signed
        .header("authorization")
        .unwrap_or_default()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn query_order_does_not_matter(
        (params, shuffled) in query_params().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle()))
    ) {
        let a = sign(&base(&params));
        let b = sign(&base(&shuffled));
        prop_assert_eq!(a.canonical_request(), b.canonical_request());
        prop_assert_eq!(authorization(&a), authorization(&b));
    }

    #[test]
    fn the_query_sent_decodes_to_the_parameters_sorted(params in query_params()) {
        let signed = sign(&base(&params));
        let query = signed.query();
        prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%&=".contains(&b)));
        let decoded: Vec<(String, String)> = if query.is_empty() {
            Vec::new()
        } else {
            query
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("name=value");
                    (percent_decode(k).expect("utf-8"), percent_decode(v).expect("utf-8"))
                })
                .collect()
        };
        let mut expected = params.clone();
        expected.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        prop_assert_eq!(decoded, expected);
        // The canonical query line is the query sent.
        prop_assert_eq!(signed.canonical_request().split('\n').nth(2), Some(query));
    }

    #[test]
    fn header_case_and_padding_do_not_matter(
        suffix in "[a-z0-9-]{1,10}",
        value in header_value(),
        upper in prop::collection::vec(any::<bool>(), 16),
        left in "[ \t]{0,3}",
        right in "[ \t]{0,3}",
    ) {
        let name = format!("x-acs-p-{suffix}");
        prop_assume!(!aliyun_guard::__internal::is_reserved_header(&name));
        let cased: String = name
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        let trimmed = value.trim_matches([' ', '\t']).to_string();
        let a = sign(&base(&[]).header(name.clone(), trimmed));
        let b = sign(&base(&[]).header(cased, format!("{left}{value}{right}")));
        prop_assert_eq!(a.canonical_request(), b.canonical_request());
        prop_assert_eq!(authorization(&a), authorization(&b));
    }

    #[test]
    fn every_signed_input_changes_the_signature(
        params in query_params(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        value in header_value(),
    ) {
        let request = base(&params).header("x-acs-extra", value.clone()).body(body.clone());
        let reference = authorization(&sign(&request));
        let mut changed: Vec<(&str, String)> = vec![
            ("query", authorization(&sign(&request.clone().query("zz-added\u{e9}", "1")))),
            ("method", authorization(&sign(&request.clone().method("GET")))),
            ("path", authorization(&sign(&request.clone().path_segments(["x"])))),
            ("header", authorization(&sign(&request.clone().header("x-acs-other", "v")))),
            ("content-type", authorization(&sign(&request.clone().header("content-type", "text/plain")))),
            ("body", authorization(&sign(&request.clone().body([body.as_slice(), b"!"].concat())))),
            ("host", authorization(&sign(&V3Request::rpc("ecs.cn-beijing.aliyuncs.com", "DescribeInstances", "2014-05-26").queries(params.iter().cloned()).header("x-acs-extra", value.clone()).body(body.clone())))),
            ("action", authorization(&sign(&V3Request::rpc("ecs.cn-hangzhou.aliyuncs.com", "DescribeInstance", "2014-05-26").queries(params.iter().cloned()).header("x-acs-extra", value.clone()).body(body.clone())))),
            ("date", authorization(&sign_v3(&request, &creds(), at() + time::Duration::seconds(1), "nonce-1").unwrap())),
            ("nonce", authorization(&sign_v3(&request, &creds(), at(), "nonce-2").unwrap())),
            ("token", authorization(&sign_v3(&request, &Credentials::new("LTAI5tPropKeyId0000wxyz", "PropSecret").with_security_token("tok+/!"), at(), "nonce-1").unwrap())),
            ("secret", authorization(&sign_v3(&request, &Credentials::new("LTAI5tPropKeyId0000wxyz", "PropSecreT").with_security_token("tok+/="), at(), "nonce-1").unwrap())),
        ];
        if let Some((name, v)) = params.first() {
            let mut other = params.clone();
            other[0] = (name.clone(), format!("{v}x"));
            changed.push(("query value", authorization(&sign(&base(&other).header("x-acs-extra", value.clone()).body(body.clone())))));
        }
        let trimmed = value.trim_matches([' ', '\t']);
        changed.push(("header value", authorization(&sign(&base(&params).header("x-acs-extra", format!("{trimmed}y")).body(body.clone())))));
        for (what, auth) in &changed {
            prop_assert_ne!(auth, &reference, "{} did not change the signature", what);
        }
        // An unsigned header does not.
        let unsigned = authorization(&sign(&request.clone().header("user-agent", "x")));
        prop_assert_eq!(unsigned, reference);
    }

    #[test]
    fn arbitrary_unicode_never_panics(
        method in "\\PC{0,8}",
        host in "\\PC{0,20}",
        path in "\\PC{0,30}",
        query in prop::collection::vec(("\\PC{0,10}", "\\PC{0,10}"), 0..5),
        headers in prop::collection::vec(("\\PC{0,10}", "\\PC{0,10}"), 0..5),
        nonce in "\\PC{0,10}",
        token in proptest::option::of("\\PC{0,10}"),
    ) {
        let mut request = V3Request::new(method, host, "Action", "2020-01-01")
            .encoded_path(path.clone())
            .queries(query.iter().cloned());
        for (n, v) in &headers {
            request = request.header(n.clone(), v.clone());
        }
        let mut credentials = Credentials::new("id", "secret");
        if let Some(token) = token {
            credentials = credentials.with_security_token(token);
        }
        if let Ok(signed) = sign_v3(&request, &credentials, at(), &nonce) {
            prop_assert!(check_encoded_path(signed.path()).is_ok());
        }
        let _ = check_encoded_path(&path);
        if let Ok(template) = PathTemplate::parse(&path) {
            let values: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if let Ok(filled) = template.fill(&values) {
                prop_assert!(check_encoded_path(&filled).is_ok());
            }
        }
    }

    #[test]
    fn path_segments_round_trip(segments in prop::collection::vec("\\PC{1,12}", 0..5)) {
        let path = encode_path_segments(&segments);
        let decoded: Vec<String> = if segments.is_empty() {
            prop_assert_eq!(&path, "/");
            Vec::new()
        } else {
            path[1..].split('/').map(|s| percent_decode(s).expect("utf-8")).collect()
        };
        prop_assert_eq!(decoded, segments);
    }
}
