//! The fault matrix: each case asserts the typed error (or the recovery) and how many attempts
//! reached the server. A panic anywhere fails the test.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aliyun_guard::{Client, Error, ResponseFault, RetryPolicy, RpcRequest, TimeoutPhase};
use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn request() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").region("cn-hangzhou")
}

async fn serve(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

/// A server whose success answer comes after `delay`.
async fn late_server(delay: Duration) -> MockServer {
    serve(
        ResponseTemplate::new(200)
            .set_body_json(ok_json("late"))
            .set_delay(delay),
    )
    .await
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn client(url: &str) -> Client {
    Client::builder()
        .credentials(credentials())
        .endpoint(url)
        .retry(RetryPolicy::new(3, Duration::from_millis(5)))
        // Long enough for a loaded machine to answer (the stalls tested last seconds longer).
        .read_timeout(Duration::from_millis(1_500))
        .connect_timeout(Duration::from_secs(5))
        .max_body_bytes(32 * 1024)
        .build()
        .unwrap()
}

/// Calls once against `template`; returns the error and the number of requests that arrived.
async fn fail_with(template: ResponseTemplate) -> (Error, usize) {
    let server = serve(template).await;
    let err = client(&server.uri()).call(&request()).await.unwrap_err();
    (err, hits(&server).await)
}

fn fault(err: &Error) -> ResponseFault {
    match err {
        Error::UnexpectedResponse(u) => u.fault.clone(),
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_retried_then_a_connect_error() {
    let err = client(&closed_port_url())
        .call(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { attempts: 3, .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_connection_reset_mid_response_is_a_transport_error_after_retries() {
    let (url, connections) = raw_server(Raw::ResetMidBody).await;
    let err = client(&url).call(&request()).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    // A read timeout is ambiguous (the action may have run): retried for a read-only action,
    // not for a write.
    for (action, attempts) in [("DescribeRegions", 3), ("RunInstances", 1)] {
        let (url, connections) = raw_server(Raw::StallAfterHeaders).await;
        let err = client(&url)
            .call(&RpcRequest::new("Ecs", "2014-05-26", action))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    phase: TimeoutPhase::Response,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.attempts(), Some(attempts), "{action}");
        assert_eq!(
            connections.load(Ordering::SeqCst),
            attempts as usize,
            "{action}"
        );
    }
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_times_out_once_for_a_write() {
    let server = late_server(Duration::from_secs(3)).await;
    let err = client(&server.uri())
        .call(&RpcRequest::new("Ecs", "2014-05-26", "RunInstances"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hits(&server).await, 1);
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_boundedly_then_reported() {
    for (status, code) in [
        (500, "InternalError"),
        (502, "BadGateway"),
        (503, "ServiceUnavailable"),
        (400, "Throttling.User"),
        (429, "Throttling"),
    ] {
        let (err, n) = fail_with(
            ResponseTemplate::new(status).set_body_json(serde_json::json!({
            "Code": code, "Message": "try later", "RequestId": format!("R-{status}")})),
        )
        .await;
        let Error::Api(api) = &err else {
            panic!("{status}: {err:?}")
        };
        assert_eq!(
            (api.status, api.code.as_str(), api.attempts),
            (status, code, 3)
        );
        assert_eq!(n, 3, "{status} {code}: three attempts in all");
    }
    // A 502 HTML page from a gateway: retried too, then reported as HTML.
    let (err, n) =
        fail_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>")).await;
    assert_eq!(fault(&err), ResponseFault::Html);
    assert_eq!(n, 3);
}

#[tokio::test]
async fn throttling_then_success_recovers() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({
            "Code": "ServiceUnavailable", "Message": "busy", "RequestId": "R1"})))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R3")))
        .mount(&server)
        .await;
    let value = client(&server.uri()).call(&request()).await.unwrap();
    assert_eq!(value["RequestId"], "R3");
    assert_eq!(hits(&server).await, 3);
}

#[tokio::test]
async fn bad_bodies_are_typed_and_not_retried() {
    let cases: Vec<(ResponseTemplate, ResponseFault)> = vec![
        (
            ResponseTemplate::new(200).set_body_string("{not json}"),
            ResponseFault::InvalidJson,
        ),
        (
            ResponseTemplate::new(200).set_body_string(""),
            ResponseFault::Empty,
        ),
        (
            ResponseTemplate::new(200).set_body_string("{\"RequestId\": \"R\", \"Regions\": {"),
            ResponseFault::Truncated,
        ),
        (
            ResponseTemplate::new(200)
                .set_body_raw(b"{\"a\": \"\xff\xfe\"}".to_vec(), "application/json"),
            ResponseFault::InvalidUtf8,
        ),
        (
            ResponseTemplate::new(200).set_body_string("x".repeat(40 * 1024)),
            ResponseFault::TooLarge { limit: 32 * 1024 },
        ),
        (
            ResponseTemplate::new(403).set_body_raw(
                b"<!DOCTYPE html><html><body><h1>403 Forbidden</h1>nginx</body></html>".to_vec(),
                "text/html",
            ),
            ResponseFault::Html,
        ),
        (
            ResponseTemplate::new(404).set_body_string(""),
            ResponseFault::Empty,
        ),
    ];
    for (template, expected) in cases {
        let (err, n) = fail_with(template).await;
        assert_eq!(fault(&err), expected);
        assert_eq!(n, 1, "{expected:?} is not retried");
        let Error::UnexpectedResponse(u) = &err else {
            unreachable!()
        };
        assert!(u.snippet.chars().count() <= 201);
    }
}

/// Serves one response: `head`, then each part of the body written and flushed apart, with a
/// pause between them so that the client reads them as separate chunks.
async fn serve_in_parts(head: String, parts: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
            let _ = s.write_all(head.as_bytes()).await;
            for part in parts {
                let _ = s.write_all(&part).await;
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_refused_while_reading() {
    // No Content-Length: the cap applies while the body streams in.
    let chunk = format!("{:x}\r\n{}\r\n", 8192, "y".repeat(8192)).into_bytes();
    let mut parts = vec![chunk; 16];
    parts.push(b"0\r\n\r\n".to_vec());
    let url = serve_in_parts(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string(),
        parts,
    )
    .await;
    let err = client(&url).call(&request()).await.unwrap_err();
    assert_eq!(fault(&err), ResponseFault::TooLarge { limit: 32 * 1024 });
}

#[tokio::test]
async fn a_body_that_arrives_in_several_chunks_is_read_whole() {
    // The body, in three pieces; the second one splits a JSON string.
    let body = r#"{"RequestId":"R-parts","Regions":{"Region":[{"RegionId":"cn-hangzhou"},{"RegionId":"cn-beijing"}]}}"#;
    let pieces = [&body[..20], &body[20..60], &body[60..]];
    // With a Content-Length, written piece by piece.
    let url = serve_in_parts(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        ),
        pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
    )
    .await;
    let value = client(&url).call(&request()).await.unwrap();
    assert_eq!(value["RequestId"], "R-parts");
    assert_eq!(value["Regions"]["Region"][1]["RegionId"], "cn-beijing");
    // Chunked, one HTTP chunk per piece, and the body exactly at the cap.
    let mut parts: Vec<Vec<u8>> = pieces
        .iter()
        .map(|p| format!("{:x}\r\n{p}\r\n", p.len()).into_bytes())
        .collect();
    parts.push(b"0\r\n\r\n".to_vec());
    let url = serve_in_parts(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_string(),
        parts,
    )
    .await;
    let at_cap = Client::builder()
        .credentials(credentials())
        .endpoint(&url)
        .max_body_bytes(body.len())
        .build()
        .unwrap();
    let value = at_cap.call(&request()).await.unwrap();
    assert_eq!(value["RequestId"], "R-parts");
    assert_eq!(value["Regions"]["Region"][0]["RegionId"], "cn-hangzhou");
}

#[tokio::test]
async fn error_bodies_in_2xx_and_xml_are_api_errors() {
    let (err, n) = fail_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "Code": "InvalidParameter", "Message": "bad", "RequestId": "R-2xx"})))
    .await;
    assert!(
        matches!(&err, Error::Api(a) if a.status == 200 && a.code == "InvalidParameter"),
        "{err:?}"
    );
    assert_eq!(n, 1);
    let (err, _) = fail_with(ResponseTemplate::new(400).set_body_string(
        "<?xml version=\"1.0\"?><Error><RequestId>R-x</RequestId><Code>InvalidRegionId</Code><Message>bad region</Message></Error>",
    ))
    .await;
    assert!(
        matches!(&err, Error::Api(a) if a.code == "InvalidRegionId" && a.request_id.as_deref() == Some("R-x")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_leak_answer_under_any_status_is_never_retried() {
    for status in [400u16, 403, 404, 200, 500, 503] {
        let (err, n) = fail_with(ResponseTemplate::new(status).set_body_json(leak_json())).await;
        assert!(err.is_compromised_key(), "{status}: {err:?}");
        assert!(!err.is_retryable());
        assert_eq!(n, 1, "{status}: a leak answer is never retried");
    }
}

#[tokio::test]
async fn the_total_budget_bounds_a_slow_call() {
    let server = late_server(Duration::from_secs(5)).await;
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(server.uri())
        .total_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.call(&request()).await.unwrap_err();
    ends_on_the_budget(&err, started.elapsed());
    // Generous bound: the budget is 0.3 s, the server would take 5 s.
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// The call ended on its total budget (`took` says when, for the message).
fn ends_on_the_budget(err: &Error, took: Duration) {
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: TimeoutPhase::Total,
                ..
            }
        ),
        "{err:?} after {took:?}"
    );
}

/// A server that answers every connection with the head of a chunked 200, one byte of body
/// `byte_after` later, and then nothing for 20 s (all on tokio's clock).
async fn one_byte_then_silence(byte_after: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Transfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(byte_after).await;
                if socket.write_all(b"1\r\n \r\n").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(20)).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn the_budget_ends_a_call_that_the_read_timeout_would_end_later() {
    // Budget 1.3 s, read timeout 1 s. At first the deadline is further than the read timeout:
    // reqwest will wake the call in time, and the client sets no timer. The byte at 0.7 s
    // restarts reqwest's read timeout (to 1.7 s, past the deadline) and wakes the call, which
    // must then time its own deadline: the call ends at 1.3 s on the budget, not at 1.7 s on
    // the read timeout.
    let url = one_byte_then_silence(Duration::from_millis(700)).await;
    let clients = [
        Client::builder()
            .credentials(credentials())
            .endpoint(&url)
            .read_timeout(Duration::from_secs(1))
            .total_timeout(Duration::from_millis(1300))
            .build()
            .unwrap(),
        // A caller's HTTP client: its timeouts are unknown, so the budget is timed from the
        // start.
        Client::builder()
            .credentials(credentials())
            .endpoint(&url)
            .http_client(aliyun_guard::reqwest::Client::builder())
            .total_timeout(Duration::from_millis(1300))
            .build()
            .unwrap(),
    ];
    for client in clients {
        let started = Instant::now();
        let err = client.call(&request()).await.unwrap_err();
        let took = started.elapsed();
        ends_on_the_budget(&err, took);
        assert!(took >= Duration::from_millis(1250), "ended early: {took:?}");
        // Generous: the answer would hang for 20 s.
        assert!(took < Duration::from_secs(10), "ended late: {took:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_kept_on_tokios_clock_when_a_test_pauses_it() {
    // The same shape as above on tokio's paused clock (as a caller's tests may run): the head at
    // once, one byte at 8 s, then silence; read timeout 10 s, budget 15 s. The budget must end
    // the call at 15 s of tokio's time, before the read timeout restarted by the byte (18 s).
    let url = one_byte_then_silence(Duration::from_secs(8)).await;
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(&url)
        .read_timeout(Duration::from_secs(10))
        .total_timeout(Duration::from_secs(15))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = client.call(&request()).await.unwrap_err();
    let took = started.elapsed();
    ends_on_the_budget(&err, took);
    assert!(
        took < Duration::from_secs(17),
        "ended after {took:?} of tokio's time"
    );
}

#[tokio::test]
async fn a_stalled_answer_under_a_longer_budget_ends_with_the_read_timeout() {
    // No timer of the client's own is needed here: reqwest's read timeout (0.3 s) ends the
    // exchange long before the budget (30 s).
    let server = late_server(Duration::from_secs(10)).await;
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(server.uri())
        .read_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_secs(30))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.call(&request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn backoff_never_waits_past_the_budget() {
    let server = serve(ResponseTemplate::new(400).set_body_json(serde_json::json!({
        "Code": "Throttling", "Message": "slow down", "RequestId": "R"})))
    .await;
    let mut policy = RetryPolicy::new(5, Duration::from_secs(30));
    policy.max_delay = Duration::from_secs(60);
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(server.uri())
        .retry(policy)
        .total_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = client.call(&request()).await.unwrap_err();
    // Gave up at once with the server's answer: after sleeping into the budget it would have
    // tried again or ended with the budget's timeout. The timing itself (no wait started that
    // would end past the deadline) is checked on tokio's paused clock, in the retry module's
    // tests, without a wall-clock bound.
    assert_eq!(err.code(), Some("Throttling"));
    assert_eq!(
        err.attempts(),
        Some(1),
        "a 15-30 s wait does not fit a 10 s budget"
    );
    assert_eq!(hits(&server).await, 1);
}

#[tokio::test]
async fn a_caller_timeout_cancels_cleanly() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("DescribeZones"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R-after")))
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({
            "Code": "ServiceUnavailable", "Message": "busy", "RequestId": "R"})))
        .mount(&server)
        .await;
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(server.uri())
        .retry(RetryPolicy::new(10, Duration::from_secs(1)))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_millis(300), client.call(&request())).await;
    assert!(outcome.is_err(), "the caller's timeout fires first");
    assert_eq!(
        hits(&server).await,
        1,
        "dropping the call stops its retries"
    );
    // The client still works afterwards.
    let zones = RpcRequest::new("Ecs", "2014-05-26", "DescribeZones");
    assert_eq!(client.call(&zones).await.unwrap()["RequestId"], "R-after");
}

#[tokio::test]
async fn https_endpoints_do_not_fall_back_to_plain_http() {
    // A plain-HTTP server behind an https:// URL: the TLS handshake fails; nothing is sent in clear.
    let server = serve(ResponseTemplate::new(200).set_body_json(ok_json("clear"))).await;
    let https = server.uri().replace("http://", "https://");
    let err = client(&https).call(&request()).await.unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. } | Error::Transport { .. }),
        "{err:?}"
    );
    assert_eq!(
        hits(&server).await,
        0,
        "no request was understood in clear text"
    );
}
