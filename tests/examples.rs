//! The `call` example's exit codes, run as a real process (plain `cargo test` builds examples
//! before it runs tests; run it that way rather than with `--test examples` alone).

mod common;

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
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no credentials found"));
    let help = run_call(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("usage"));
}

#[test]
fn the_demo_runs_offline_and_tells_the_story() {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(example("guard_demo"))
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
    let again = Command::new(example("guard_demo"))
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
            "--rounds",
            "2",
            "--seconds",
            "1",
            "--concurrency",
            "2",
        ])
        .output()
        .unwrap();
    assert!(compared.status.success(), "{}", text(&compared.stderr));
    let stdout = text(&compared.stdout);
    for needle in [
        "guarded calls/s",
        "plain reqwest calls/s",
        "CPU µs/call",
        "median ",
        "ratio of each round's pair: median",
        "interquartile",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    let bad = Command::new(example("load"))
        .args(["--concurrency", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
