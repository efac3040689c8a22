//! Logs at TRACE level (this crate's, hyper's and reqwest's) hold no secret, token or signature.
//! Alone in its test binary: tracing caches per-callsite interest, and tests without a subscriber
//! running in parallel threads would hide events from this one's scoped subscriber.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aliyun_guard::guard::Guard;
use aliyun_guard::signing::Method;
use aliyun_guard::{Client, Credentials, RetryPolicy, RpcRequest};
use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "CAIS-STS-TOKEN-SECRET-VALUE/abc+def==";

fn sts() -> Credentials {
    Credentials::new(KEY_ID, SECRET).with_security_token(TOKEN)
}

fn assert_clean(label: &str, text: &str, extra: &[String]) {
    let mut forbidden = vec![
        SECRET.to_string(),
        TOKEN.to_string(),
        aliyun_guard::__internal::percent_encode(TOKEN),
        "CAIS-STS-TOKEN".to_string(),
    ];
    forbidden.extend(extra.iter().cloned());
    for needle in forbidden {
        assert!(!text.contains(&needle), "{label} shows {needle:?}:\n{text}");
    }
}

#[test]
fn tracing_at_trace_level_shows_no_secret() {
    let capture = Capture::default();
    let subscriber = capture.subscriber(tracing::Level::TRACE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let signatures = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(ActionIs("Throttled"))
                .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                    "Code": "Throttling", "Message": format!("echo SecurityToken={TOKEN}"), "RequestId": "R"})))
                .mount(&server)
                .await;
            Mock::given(path("/"))
                .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
                .mount(&server)
                .await;
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("state.json"), "{ corrupt").unwrap();
            let guard = Arc::new(Guard::builder().state_dir(dir.path()).policy(aliyun_guard::LeakPolicy::BlockRestricted).build().unwrap());
            let client = Client::builder()
                .credentials(sts())
                .endpoint(server.uri())
                .guard(guard)
                .retry(RetryPolicy::new(2, Duration::from_millis(1)))
                .build()
                .unwrap();
            for method in [Method::Get, Method::Post] {
                let _ = client.call(&RpcRequest::new("Ecs", "2014-05-26", "Throttled").method(method)).await;
                let _ = client.call(&RpcRequest::new("Ecs", "2014-05-26", "RunInstances").method(method)).await;
                let _ = client.call(&RpcRequest::new("Ecs", "2014-05-26", "RunInstances").method(method)).await;
                let _ = client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").method(method)).await;
            }
            server
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter_map(|r| param(r, "Signature"))
                .collect::<Vec<_>>()
        })
    });
    let logs = capture.take();
    assert!(logs.contains("TRACE"), "nothing was captured at TRACE");
    assert!(
        logs.contains("LTAI****wxyz"),
        "the guard's warnings name the masked key"
    );
    assert!(
        logs.contains("set it aside"),
        "the corrupt state file is reported"
    );
    assert!(signatures.len() >= 6);
    assert_clean("logs", &logs, &signatures);
    assert!(
        !logs.contains(KEY_ID),
        "the full key id appears in the logs"
    );
}
