//! The `call` example's exit codes, run as a real process (plain `cargo test` builds examples
//! before it runs tests; run it that way rather than with `--test examples` alone).

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn example(name: &str) -> PathBuf {
    // target/debug/deps/examples-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the whole suite with `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// The demo: a binary of this package (feature `test-util`, which the dev-dependency on the
/// crate itself turns on), so that `cargo run --features test-util --bin guard_demo` does not
/// build the dev-dependencies.
fn guard_demo() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_guard_demo"))
}

fn run_call(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(example("call"));
    cmd.args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn call_prints_json_and_exits_0() {
    let server = MockServer::start().await;
    Mock::given(ValidSignature::new(SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R-CLI")))
        .expect(1)
        .mount(&server)
        .await;
    let out = run_call(
        &[
            "--endpoint",
            &server.uri(),
            "--method",
            "GET",
            "Ecs",
            "2014-05-26",
            "DescribeRegions",
            "Filter=a=b",
            "Empty=",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["RequestId"], "R-CLI");
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        param(req, "Filter").as_deref(),
        Some("a=b"),
        "split at the first '='"
    );
    assert_eq!(param(req, "Empty").as_deref(), Some(""));
}

#[tokio::test]
async fn call_exits_1_on_api_and_transport_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "Code": "InvalidParameter", "Message": "bad value", "RequestId": "R-BAD"})))
        .mount(&server)
        .await;
    let out = run_call(
        &[
            "--endpoint",
            &server.uri(),
            "Ecs",
            "2014-05-26",
            "DescribeRegions",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("InvalidParameter") && err.contains("bad value") && err.contains("R-BAD"),
        "{err}"
    );
    let out = run_call(
        &[
            "--endpoint",
            "http://127.0.0.1:9",
            "Ecs",
            "2014-05-26",
            "DescribeRegions",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("could not connect"));
}

#[tokio::test]
async fn call_exits_3_on_a_compromised_key_and_remembers_it() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let args = [
        "--endpoint",
        &server.uri(),
        "--region",
        "cn-hangzhou",
        "Ecs",
        "2014-05-26",
        "RunInstances",
    ];
    let out = run_call(&args, &[("ALIYUN_GUARD_STATE_DIR", state_dir)]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("LTAI****wxyz") && err.contains("What to do"),
        "{err}"
    );
    assert!(!err.contains(SECRET) && !err.contains(KEY_ID));
    // Another process with the same state directory refuses without a request.
    let out = run_call(&args, &[("ALIYUN_GUARD_STATE_DIR", state_dir)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("before sending"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn call_exits_2_on_bad_usage_or_configuration() {
    for args in [
        vec![],
        vec!["Ecs", "2014-05-26"],
        vec!["--method", "PUT", "Ecs", "v", "A"],
        vec!["--bogus", "Ecs", "v", "A"],
        vec!["Ecs", "v", "A", "NoEquals"],
        vec!["--endpoint", "ftp://x", "Ecs", "v", "A"],
        vec!["--signature", "v2", "Ecs", "v", "A"],
        vec!["--body", "{}", "Ecs", "v", "A"],
        vec!["--roa", "GET", "/x", "--body", "{not json", "CS", "v", "A"],
        vec!["--roa", "GET"],
        vec!["--roa", "GET", "no-slash", "CS", "v", "A"],
        vec!["--roa", "GET", "/x/%2F", "CS", "v", "A"],
    ] {
        let out = run_call(&args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // No credentials at all.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(example("call"))
        .args(["Ecs", "2014-05-26", "DescribeRegions"])
        .env_clear()
        .env("HOME", home.path())
        .env("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no credentials found"));
    let help = run_call(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("usage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_exits_2_on_a_product_that_names_a_host() {
    // A listener the hostile product points at: it must see no connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let ours = format!("{addr}/");
    for product in [
        ours.as_str(),
        "ecs.evil.com#",
        "x@host/",
        "a/b",
        "ecs.cn-hangzhou.aliyuncs.com.evil.com",
    ] {
        let out = run_call(
            &[
                "--region",
                "cn-hangzhou",
                product,
                "2014-05-26",
                "DescribeRegions",
            ],
            &[],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{product}: {err}");
        assert!(
            err.contains("is not a product code") && err.contains(product),
            "{product}: {err}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn call_shows_no_terminal_escapes_from_the_server() {
    let nasty = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}\u{9b}";
    let server = MockServer::start().await;
    Mock::given(ActionIs("DescribeRegions"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "Code": format!("Bad{nasty}"), "Message": format!("m{nasty}"),
            "RequestId": format!("R{nasty}"), "HostId": format!("h{nasty}")})))
        .mount(&server)
        .await;
    Mock::given(ActionIs("RunInstances"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "Code": "Forbidden", "Message": format!("{LEAK_MESSAGE}{nasty}"),
            "RequestId": format!("R{nasty}"), "HostId": format!("h{nasty}")})))
        .mount(&server)
        .await;
    for (action, code) in [("DescribeRegions", 1), ("RunInstances", 3)] {
        let out = run_call(
            &["--endpoint", &server.uri(), "Ecs", "2014-05-26", action],
            &[],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains("R\u{fffd}"), "{err}");
        assert!(
            !err.chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{action}: {err:?}"
        );
    }
}

#[test]
fn the_demo_runs_offline_and_tells_the_story() {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(guard_demo())
        .env("ALIYUN_GUARD_STATE_DIR", state.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("refused before sending"), "{stdout}");
    assert!(stdout.contains("(new: 0)"), "{stdout}");
    assert!(
        stdout.contains("3 requests reached the server for 4 calls"),
        "{stdout}"
    );
    // A second run over the same state directory tells the same story.
    let again = Command::new(guard_demo())
        .env("ALIYUN_GUARD_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("3 requests reached the server for 4 calls"));
}

#[test]
fn the_load_example_reports_throughput_latency_and_memory() {
    let out = Command::new(example("load"))
        .args(["--concurrency", "4", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in ["calls/s", "p50", "p99", "peak memory", "0 errors"] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    let compared = Command::new(example("load"))
        .args([
            "--compare",
            "--pairs",
            "2",
            "--slice",
            "0.1",
            "--concurrency",
            "2",
        ])
        .output()
        .unwrap();
    assert!(compared.status.success(), "{}", text(&compared.stderr));
    let stdout = text(&compared.stdout);
    for needle in [
        "ABBA order",
        "in-process hyper mock",
        "throughput A/B per pair:   median ",
        "A/A control A'/B':         median ",
        "IQR",
        "client CPU per call:",
        "load average before",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    let sequential = Command::new(example("load"))
        .args(["--calls", "3", "--side", "guarded"])
        .output()
        .unwrap();
    assert!(sequential.status.success(), "{}", text(&sequential.stderr));
    assert!(text(&sequential.stdout).contains("3 sequential guarded calls"));
    let bad = Command::new(example("load"))
        .args(["--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// A server answering `answer` once to `method` on `at`.
async fn answering_once(server: &MockServer, method: &str, at: &str, answer: ResponseTemplate) {
    let matcher = wiremock::matchers::method(method);
    let mock = Mock::given(matcher).and(path(at)).respond_with(answer);
    mock.expect(1).mount(server).await;
}

/// Runs `call` with `args` (the endpoint first), expects exit code 0 and returns its JSON.
fn call_ok(endpoint: &str, args: &str) -> serde_json::Value {
    let mut all = vec!["--endpoint", endpoint];
    all.extend(args.split(' '));
    let out = run_call(&all, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn call_signs_with_v3_when_asked() {
    let server = MockServer::start().await;
    let answer = ResponseTemplate::new(200).set_body_json(ok_json("R-V3"));
    answering_once(&server, "POST", "/", answer).await;
    let json = call_ok(
        &server.uri(),
        "--signature v3 Ecs 2014-05-26 DescribeRegions PageSize=10",
    );
    assert_eq!(json["RequestId"], "R-V3");
    let req = &server.received_requests().await.unwrap()[0];
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").unwrap_or_default();
    assert!(
        authorization.starts_with("ACS3-HMAC-SHA256 Credential="),
        "{authorization}"
    );
    assert_eq!(header("x-acs-action"), Some("DescribeRegions"));
    assert_eq!(req.url.query(), Some("PageSize=10"));
    assert!(param(req, "Signature").is_none());
}

#[tokio::test]
async fn call_roa_sends_method_path_query_and_json_body() {
    let server = MockServer::start().await;
    let list = ResponseTemplate::new(200).set_body_json(serde_json::json!({"clusters": []}));
    answering_once(&server, "GET", "/clusters", list).await;
    let created = ResponseTemplate::new(204);
    answering_once(&server, "POST", "/clusters/c1/triggers", created).await;
    let uri = server.uri();
    let json = call_ok(
        &uri,
        "--roa get /clusters CS 2015-12-15 DescribeClustersV1 page_size=5",
    );
    assert_eq!(json["clusters"], serde_json::json!([]));
    let json = call_ok(
        &uri,
        r#"--roa POST /clusters/c1/triggers --body {"action":"deployment_update"} CS 2015-12-15 CreateTrigger"#,
    );
    assert_eq!(json, serde_json::Value::Null, "204: null");
    let got = server.received_requests().await.unwrap();
    assert_eq!(got[0].url.query(), Some("page_size=5"));
    assert_eq!(
        got[0].headers.get("x-acs-action").unwrap(),
        "DescribeClustersV1"
    );
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["action"], "deployment_update");
    assert_eq!(
        got[1].headers.get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
}
