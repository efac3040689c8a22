//! The client under signature V3 (RPC) and for ROA calls, against wiremock, with an independent
//! V3 verifier: the canonical request is rebuilt from what arrives (method, path, query as
//! received, the headers `SignedHeaders` lists, the SHA-256 of the body) and the HMAC-SHA256
//! recomputed with the secret.

use crate::common;

use std::sync::Arc;

use aliyun_guard::{
    Client, Credentials, Error, Guard, LeakPolicy, RoaRequest, RpcRequest, SignatureDiagnosis,
    SignatureVersion,
};
use common::{KEY_ID, LEAK_MESSAGE, SECRET, client_builder, credentials};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::method;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 percent-encoding: unreserved bytes kept, every other byte `%XX` upper case.
fn enc(raw: &[u8]) -> String {
    let mut out = String::new();
    for &b in raw {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn dec(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(h, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Rebuilds the canonical request from what arrived and checks the signature; `Err` says why.
fn verify_v3(request: &Request, key_id: &str, secret: &str) -> Result<String, String> {
    let auth = header(request, "authorization").ok_or("no authorization")?;
    let rest = auth
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .ok_or("not ACS3-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.split_once('=').ok_or("bad authorization")?;
        match k.trim() {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            other => return Err(format!("unknown field {other}")),
        }
    }
    if credential != Some(key_id) {
        return Err(format!("credential {credential:?}"));
    }
    let signed_headers = signed_headers.ok_or("no SignedHeaders")?;
    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    for name in request.headers.keys() {
        if name.as_str().starts_with("x-acs-") && !names.contains(&name.as_str()) {
            return Err(format!("{name} is sent but not signed"));
        }
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    if sorted != names {
        return Err("SignedHeaders not sorted".into());
    }
    // The query as received, decoded, sorted by raw name, encoded again.
    let mut query: Vec<(Vec<u8>, Vec<u8>)> = request
        .url
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect();
    query.sort();
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let payload = hex(&Sha256::digest(&request.body));
    if header(request, "x-acs-content-sha256") != Some(payload.as_str()) {
        return Err("x-acs-content-sha256 is not the body's hash".into());
    }
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        request.method.as_str(),
        request.url.path(),
        query.join("&")
    );
    for name in &names {
        let mut values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect();
        if *name == "host" && values.is_empty() {
            values.push(format!(
                "{}:{}",
                request.url.host_str().unwrap(),
                request.url.port().unwrap()
            ));
        }
        values.sort();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    canonical.push_str(&format!("\n{signed_headers}\n{payload}"));
    let string_to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if signature != Some(expected.as_str()) {
        return Err(format!("signature mismatch; canonical:\n{canonical}"));
    }
    Ok(canonical)
}

/// Matches requests whose V3 signature verifies.
struct ValidV3;

impl Match for ValidV3 {
    fn matches(&self, request: &Request) -> bool {
        verify_v3(request, KEY_ID, SECRET).is_ok()
    }
}

/// A server that gives `answer` to every request whose V3 signature verifies (others get 404).
async fn v3_server(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(ValidV3)
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn json_answer(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn client(server: &MockServer) -> Client {
    client_builder(server).build().unwrap()
}

fn v3_client(server: &MockServer) -> Client {
    client_builder(server)
        .signature(SignatureVersion::V3)
        .build()
        .unwrap()
}

/// A Container Service (ACK) call.
fn cs(action: &str, method: &str, path: &str) -> RoaRequest {
    RoaRequest::new("CS", "2015-12-15", action, method, path)
}

fn list_clusters() -> RoaRequest {
    cs("DescribeClustersV1", "GET", "/api/v1/clusters")
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// The only request the server received, whose signature must verify; its canonical request.
async fn only_request(server: &MockServer) -> (Request, String) {
    let mut got = requests(server).await;
    assert_eq!(got.len(), 1);
    let request = got.remove(0);
    let canonical = verify_v3(&request, KEY_ID, SECRET)
        .unwrap_or_else(|why| panic!("the V3 signature does not verify: {why}"));
    (request, canonical)
}

fn api_error(err: &Error) -> &aliyun_guard::ApiError {
    match err {
        Error::Api(api) => api,
        other => panic!("not an API error: {other:?}"),
    }
}

fn assert_compromised(result: Result<serde_json::Value, Error>, what: &str) {
    let err = result.unwrap_err();
    assert!(matches!(err, Error::CompromisedKey(_)), "{what}: {err:?}");
}

#[tokio::test]
async fn v3_rpc_is_a_post_with_the_parameters_in_the_query() {
    let server = v3_server(json_answer(200, json!({"RequestId": "R1"}))).await;
    let client = client_builder(&server)
        .signature(SignatureVersion::V3)
        .region("cn-hangzhou")
        .build()
        .unwrap();
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
        .param("PageSize", "50")
        .param("Tag.1.Value", "a b*~/é");
    let answer = client.call(&request).await.unwrap();
    assert_eq!(answer["RequestId"], "R1");
    let (got, _) = only_request(&server).await;
    // The verifier is no rubber stamp.
    assert!(verify_v3(&got, KEY_ID, "another secret").is_err());
    assert!(verify_v3(&got, "LTAI5tOtherKey", SECRET).is_err());
    assert_eq!((got.method.as_str(), got.url.path()), ("POST", "/"));
    assert!(got.body.is_empty());
    assert_eq!(header(&got, "x-acs-action"), Some("DescribeInstances"));
    assert_eq!(header(&got, "x-acs-version"), Some("2014-05-26"));
    assert_eq!(header(&got, "accept"), Some("application/json"));
    let query = got.url.query().unwrap();
    assert!(query.contains("RegionId=cn-hangzhou"), "{query}");
    assert!(query.contains("Tag.1.Value=a%20b%2A~%2F%C3%A9"), "{query}");
    for v1 in [
        "Signature",
        "AccessKeyId",
        "Timestamp",
        "SignatureNonce",
        "Format",
    ] {
        assert!(!query.contains(&format!("{v1}=")), "{v1} in {query}");
    }
}

#[tokio::test]
async fn v1_stays_the_default_and_a_request_can_choose_v3() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json_answer(200, json!({"RequestId": "R"})))
        .mount(&server)
        .await;
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
    client(&server).call(&request).await.unwrap();
    let v3 = request.clone().signature(SignatureVersion::V3);
    client(&server).call(&v3).await.unwrap();
    let got = requests(&server).await;
    assert!(header(&got[0], "authorization").is_none());
    assert!(common::ValidSignature::new(SECRET).matches(&got[0]));
    assert!(verify_v3(&got[1], KEY_ID, SECRET).is_ok());
}

#[tokio::test]
async fn v3_with_sts_credentials_sends_and_signs_the_token() {
    let server = v3_server(json_answer(200, json!({"RequestId": "R"}))).await;
    let sts = Credentials::new(KEY_ID, SECRET).with_security_token("STS.tok/en+==");
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
    let client = client_builder(&server)
        .credentials(sts)
        .signature(SignatureVersion::V3);
    client.build().unwrap().call(&request).await.unwrap();
    let (got, canonical) = only_request(&server).await;
    assert_eq!(header(&got, "x-acs-security-token"), Some("STS.tok/en+=="));
    assert_eq!(header(&got, "x-acs-accesskey-id"), Some(KEY_ID));
    assert!(canonical.contains("x-acs-security-token:STS.tok/en+==\n"));
}

#[tokio::test]
async fn v3_form_body_carries_the_parameters_and_its_hash_is_signed() {
    let server = v3_server(json_answer(200, json!({"RequestId": "R"}))).await;
    let request = RpcRequest::new("Dysmsapi", "2017-05-25", "SendSms")
        .param("PhoneNumbers", "1380000")
        .param("TemplateParam", r#"{"code":"12 34"}"#)
        .signature(SignatureVersion::V3)
        .form_body(true);
    client(&server).call(&request).await.unwrap();
    let (got, canonical) = only_request(&server).await;
    assert_eq!(got.url.query(), None);
    assert_eq!(
        header(&got, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(canonical.contains("content-type:application/x-www-form-urlencoded\n"));
    assert_eq!(
        String::from_utf8(got.body.clone()).unwrap(),
        "PhoneNumbers=1380000&TemplateParam=%7B%22code%22%3A%2212%2034%22%7D"
    );
}

#[tokio::test]
async fn roa_get_with_a_path_parameter_holding_a_slash_and_unicode() {
    let server = v3_server(json_answer(200, json!({"cluster_id": "c/1"}))).await;
    let request = cs("DescribeClusterDetail", "GET", "/clusters/{ClusterId}")
        .path_param("ClusterId", "c/1 集群")
        .query("detail", "true");
    let answer = client(&server).call_roa(&request).await.unwrap();
    assert_eq!(answer["cluster_id"], "c/1");
    let (got, _) = only_request(&server).await;
    assert_eq!(got.method.as_str(), "GET");
    assert_eq!(
        got.url.path(),
        "/clusters/c%2F1%20%E9%9B%86%E7%BE%A4",
        "the slash stays inside the segment"
    );
    assert_eq!(got.url.query(), Some("detail=true"));
    assert_eq!(header(&got, "x-acs-action"), Some("DescribeClusterDetail"));
}

#[tokio::test]
async fn roa_post_json_body_is_signed_and_typed() {
    let server = v3_server(json_answer(202, json!({"cluster_id": "c1"}))).await;
    let body = json!({"name": "k8s ✓", "region_id": "cn-beijing", "worker_instance_types": ["a"]});
    let request = cs("CreateCluster", "POST", "/clusters").json(body.clone());
    #[derive(serde::Deserialize)]
    struct Created {
        cluster_id: String,
    }
    let created: Created = client(&server).call_roa_as(&request).await.unwrap();
    assert_eq!(created.cluster_id, "c1");
    let (got, canonical) = only_request(&server).await;
    assert_eq!((got.method.as_str(), got.url.path()), ("POST", "/clusters"));
    assert_eq!(
        header(&got, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(canonical.contains("content-type:application/json; charset=utf-8\n"));
    let sent: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(sent, body);
}

#[tokio::test]
async fn roa_delete_with_an_empty_answer_gives_null() {
    let server = v3_server(ResponseTemplate::new(204)).await;
    let request = cs("DeleteCluster", "DELETE", "/clusters/{ClusterId}")
        .path_param("ClusterId", "c1")
        .query("retain_all_resources", "false");
    let answer = client(&server).call_roa(&request).await.unwrap();
    assert_eq!(answer, serde_json::Value::Null);
    let (got, _) = only_request(&server).await;
    assert_eq!(
        (got.method.as_str(), got.url.path()),
        ("DELETE", "/clusters/c1")
    );
}

/// A server whose first answer is `first`, then `{}` with 200.
async fn failing_once(first: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(ValidV3)
        .respond_with(first)
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(ValidV3)
        .respond_with(json_answer(200, json!({"RequestId": "R2"})))
        .mount(&server)
        .await;
    server
}

/// Two requests, both verified, with different nonces.
async fn two_distinct_attempts(server: &MockServer) -> Vec<Request> {
    let got = requests(server).await;
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(verify_v3(r, KEY_ID, SECRET).is_ok());
    }
    assert_ne!(
        header(&got[0], "x-acs-signature-nonce"),
        header(&got[1], "x-acs-signature-nonce")
    );
    got
}

#[tokio::test]
async fn retries_are_signed_again_with_a_fresh_nonce_and_date() {
    let server = failing_once(json_answer(
        500,
        json!({"Code": "InternalError", "Message": "try again", "RequestId": "R1"}),
    ))
    .await;
    // A clock that moves a second per signature, so that the dates differ too.
    let tick = Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000));
    let signer = aliyun_guard::signing::Signer::new().with_clock(move || {
        let t = tick.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        time::OffsetDateTime::from_unix_timestamp(t).unwrap()
    });
    let clocked = client_builder(&server)
        .signer(signer)
        .signature(SignatureVersion::V3)
        .build()
        .unwrap();
    clocked
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap();
    let got = two_distinct_attempts(&server).await;
    assert_ne!(header(&got[0], "x-acs-date"), header(&got[1], "x-acs-date"));
    assert_ne!(
        header(&got[0], "authorization"),
        header(&got[1], "authorization")
    );

    // A ROA GET is retried the same way.
    let server = failing_once(ResponseTemplate::new(503).set_body_string("busy")).await;
    client(&server).call_roa(&list_clusters()).await.unwrap();
    two_distinct_attempts(&server).await;

    // A ROA POST is not retried after an ambiguous failure.
    let server = v3_server(ResponseTemplate::new(500).set_body_string("oops")).await;
    let create = cs("CreateCluster", "POST", "/clusters");
    assert!(client(&server).call_roa(&create).await.is_err());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_leak_answer_under_v3_marks_the_key_and_blocks_the_next_call_before_sending() {
    let server = v3_server(json_answer(403, common::leak_json())).await;
    let guard = Arc::new(Guard::new());
    let client = client_builder(&server)
        .guard(guard.clone())
        .signature(SignatureVersion::V3)
        .build()
        .unwrap();
    let run = RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
    assert_compromised(client.call(&run).await, "the answer");
    assert!(guard.is_compromised(KEY_ID));
    assert_eq!(requests(&server).await.len(), 1);
    assert_compromised(client.call(&run).await, "the next call");
    assert_eq!(requests(&server).await.len(), 1, "refused before sending");
}

#[tokio::test]
async fn a_lower_case_leak_answer_to_a_roa_call_is_recognised() {
    let lower = json!({
        "requestId": "LEAK-ROA-1",
        "code": "Forbidden",
        "message": LEAK_MESSAGE,
    });
    for (answer, what) in [
        (json_answer(403, lower), "json lower case"),
        (
            ResponseTemplate::new(403).set_body_string(common::leak_xml()),
            "xml",
        ),
    ] {
        let server = v3_server(answer).await;
        let guard = common::guard_with(LeakPolicy::BlockAll);
        let client = client_builder(&server)
            .guard(guard.clone())
            .build()
            .unwrap();
        let err = client.call_roa(&list_clusters()).await.unwrap_err();
        let Error::CompromisedKey(leak) = &err else {
            panic!("{what}: {err:?}");
        };
        assert!(
            format!("{leak}").contains("DescribeClustersV1"),
            "{what}: {leak}"
        );
        assert!(guard.is_compromised(KEY_ID), "{what}");
        // The next call of the key is refused before sending (the guard blocks every call).
        assert_compromised(client.call_roa(&list_clusters()).await, what);
        assert_eq!(
            requests(&server).await.len(),
            1,
            "{what}: refused before sending"
        );
    }
}

#[tokio::test]
async fn a_compromised_key_is_refused_before_sending_a_roa_call_on_the_table() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json_answer(200, json!({})))
        .mount(&server)
        .await;
    let guard = Arc::new(Guard::new());
    guard.mark_compromised(KEY_ID, "test").unwrap();
    let client = client_builder(&server).guard(guard).build().unwrap();
    // Ecs RunInstances is on the restriction table: refused by product and action, whatever
    // the style of the call.
    let blocked = RoaRequest::new("Ecs", "2014-05-26", "RunInstances", "POST", "/");
    assert_compromised(client.call_roa(&blocked).await, "ROA");
    let v3 = RpcRequest::new("Ecs", "2014-05-26", "RunInstances").signature(SignatureVersion::V3);
    assert_compromised(client.call(&v3).await, "V3 RPC");
    assert_eq!(requests(&server).await.len(), 0);
    // An action off the table still goes out under the default policy.
    client.call_roa(&list_clusters()).await.unwrap();
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_roa_error_body_in_lower_case_becomes_an_api_error() {
    let server = v3_server(json_answer(
        400,
        json!({
            "code": "ErrorClusterNotFound",
            "message": "cluster c1 not found",
            "requestId": "ROA-REQ-9",
            "status": 400
        }),
    ))
    .await;
    let request =
        cs("DescribeClusterDetail", "GET", "/clusters/{ClusterId}").path_param("ClusterId", "c1");
    let err = client(&server).call_roa(&request).await.unwrap_err();
    let api = api_error(&err);
    assert_eq!(api.status, 400);
    assert_eq!(api.code, "ErrorClusterNotFound");
    assert_eq!(api.message, "cluster c1 not found");
    assert_eq!(api.request_id.as_deref(), Some("ROA-REQ-9"));
    assert_eq!(api.action, "DescribeClusterDetail");
    assert_eq!(api.attempts, 1, "a 4xx is not retried");
}

/// Answers `SignatureDoesNotMatch` quoting what `quote` makes of the canonical request.
struct Mismatch(fn(&str) -> String);

impl wiremock::Respond for Mismatch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let ours = verify_v3(request, KEY_ID, SECRET).unwrap();
        json_answer(
            400,
            json!({"Code": "SignatureDoesNotMatch", "Message": (self.0)(&ours), "RequestId": "SIG-1"}),
        )
    }
}

#[tokio::test]
async fn a_v3_signature_mismatch_names_the_differing_line() {
    // The server quotes its canonical request, which encoded a query value differently.
    let server = MockServer::start().await;
    Mock::given(ValidV3)
        .respond_with(Mismatch(|ours| {
            format!(
                "The request signature does not conform to Aliyun standards. server canonical \
                 request is:{}",
                ours.replace("a%20b", "a+b")
            )
        }))
        .mount(&server)
        .await;
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances").param("Name", "a b");
    let err = v3_client(&server).call(&request).await.unwrap_err();
    assert_eq!(
        api_error(&err).signature_diagnosis,
        Some(SignatureDiagnosis::EncodingDifference {
            parameter: "query parameter Name".into(),
            ours: "a%20b".into(),
            theirs: "a+b".into(),
        })
    );

    // What the server quotes is neutralised like all server text.
    server.reset().await;
    Mock::given(ValidV3)
        .respond_with(Mismatch(|ours| {
            format!(
                "canonical request is:{}",
                ours.replace("a%20b", "a\u{1b}[2Jb")
            )
        }))
        .mount(&server)
        .await;
    let err = v3_client(&server).call(&request).await.unwrap_err();
    match &api_error(&err).signature_diagnosis {
        Some(SignatureDiagnosis::EncodingDifference { theirs, .. }) => {
            assert!(!theirs.contains('\u{1b}'), "{theirs:?}");
            assert!(theirs.ends_with("[2Jb"), "{theirs:?}");
        }
        other => panic!("{other:?}"),
    }

    // Quoting the same string to sign: the secret is wrong.
    server.reset().await;
    Mock::given(ValidV3)
        .respond_with(Mismatch(|ours| {
            format!(
                "Specified signature is not matched with our calculation. server string to sign \
                 is:ACS3-HMAC-SHA256\n{}",
                hex(&Sha256::digest(ours.as_bytes()))
            )
        }))
        .mount(&server)
        .await;
    let err = client(&server)
        .call_roa(&list_clusters())
        .await
        .unwrap_err();
    assert_eq!(
        api_error(&err).signature_diagnosis,
        Some(SignatureDiagnosis::WrongSecret)
    );
}

#[tokio::test]
async fn roa_endpoints_and_reserved_headers_are_checked_before_sending() {
    let server = MockServer::start().await;
    let client = client(&server);
    let with_path = list_clusters().endpoint(format!("{}/api", server.uri()));
    assert!(matches!(
        client.call_roa(&with_path).await,
        Err(Error::InvalidEndpoint { .. })
    ));
    let reserved = list_clusters().header("x-acs-date", "2020-01-01T00:00:00Z");
    assert!(matches!(
        client.call_roa(&reserved).await,
        Err(Error::InvalidRequest(_))
    ));
    let reserved_param = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
        .param("Signature", "x")
        .signature(SignatureVersion::V3);
    assert!(matches!(
        client.call(&reserved_param).await,
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(requests(&server).await.len(), 0);
    assert_eq!(credentials().access_key_id(), KEY_ID);
}

#[tokio::test]
async fn roa_put_binary_body_is_sent_unchanged_and_its_hash_signed() {
    let server = v3_server(json_answer(200, json!({"ok": true}))).await;
    let bytes = vec![0u8, 255, 10, 13, b'%', 0x80];
    let request = cs("PutObject", "PUT", "/objects/{Name}")
        .path_param("Name", "a.bin")
        .binary(bytes.clone(), "application/octet-stream");
    client(&server).call_roa(&request).await.unwrap();
    let (got, canonical) = only_request(&server).await;
    assert_eq!(got.body, bytes);
    assert!(canonical.contains("content-type:application/octet-stream\n"));
    assert!(canonical.ends_with(&hex(&Sha256::digest(&bytes))));
}
