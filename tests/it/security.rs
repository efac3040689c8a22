//! Issue 9, network half: each test names the defect it pins. Every hostile server runs on
//! loopback; nothing reaches the internet (Alibaba host names are resolved to loopback).

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aliyun_guard::guard::Guard;
use aliyun_guard::{Client, Error, ResponseFault, RetryPolicy, RpcRequest, TimeoutPhase};
use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A loopback listener that counts the connections it accepts and drops them.
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, count)
}

async fn serve(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn fast_retries(url: &str) -> aliyun_guard::ClientBuilder {
    Client::builder()
        .credentials(credentials())
        .endpoint(url)
        .retry(RetryPolicy::new(3, Duration::from_millis(5)))
        // Below the stalls tested (5 s), above what a loaded machine needs to answer.
        .read_timeout(Duration::from_millis(2_000))
        .connect_timeout(Duration::from_secs(5))
}

// ---- Defect 1: the product string chooses the host ----

#[tokio::test]
async fn a_hostile_product_never_chooses_the_host() {
    let (addr, connections) = counting_listener().await;
    let client = Client::builder()
        .credentials(credentials())
        .region("cn-hangzhou")
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let pointed_at_us = format!("{addr}/");
    for product in [
        pointed_at_us.as_str(),
        "127.0.0.1:8443/",
        "ecs.evil.com#",
        "x@host/",
        "a/b",
        "ecs.cn-hangzhou.aliyuncs.com.evil.com",
        "evil.com?",
    ] {
        let request = RpcRequest::new(product, "2014-05-26", "DescribeRegions");
        let err = client.call(&request).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidRequest(_) | Error::InvalidEndpoint { .. }
            ),
            "{product}: {err:?}"
        );
        assert!(err.to_string().contains("product"), "{err}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no connection to the host the product named"
    );
    // A hostile region is refused too.
    let err = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").region(format!("{addr}/")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEndpoint { .. }), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

// ---- Defect 7: a caller's reqwest client could follow redirects ----

#[tokio::test]
async fn redirects_are_never_followed_whatever_client_is_given() {
    for status in [307u16, 308, 302, 301] {
        let third = serve(ResponseTemplate::new(200).set_body_json(ok_json("THIRD"))).await;
        let first = serve(
            ResponseTemplate::new(status).insert_header("location", format!("{}/", third.uri())),
        )
        .await;
        // A plain reqwest builder follows up to 10 redirects by default.
        for custom in [true, false] {
            let mut builder = fast_retries(&first.uri());
            if custom {
                builder = builder.http_client(reqwest::Client::builder());
            }
            let err = builder
                .build()
                .unwrap()
                .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
                .await
                .unwrap_err();
            assert_eq!(
                hits(&third).await,
                0,
                "{status}: the third host got nothing"
            );
            let Error::UnexpectedResponse(u) = &err else {
                panic!("{status}: {err:?}")
            };
            assert_eq!(u.fault, ResponseFault::Redirect, "{status}");
            assert_eq!(u.status, status);
            assert!(err.to_string().contains("redirect"), "{err}");
        }
        assert_eq!(hits(&first).await, 2, "{status}: a redirect is not retried");
    }
}

// ---- Defect 8: allocation sized from a declared Content-Length ----

#[tokio::test]
async fn a_huge_declared_length_allocates_nothing_up_front() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 100000000000000\r\n\r\n";
                let _ = s.write_all(head.as_bytes()).await;
                // Two separate chunks, then the connection closes.
                for part in [&b"{\"RequestId\":"[..], &b"\"R\","[..]] {
                    let _ = s.write_all(part).await;
                    let _ = s.flush().await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            });
        }
    });
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(format!("http://{addr}"))
        .max_body_bytes(usize::MAX)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

// ---- Defect 9: Duration::MAX timeouts panicked ----

#[tokio::test]
async fn unlimited_timeouts_never_panic() {
    let server = serve(ResponseTemplate::new(200).set_body_json(ok_json("R-max"))).await;
    let request = || RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions");
    let builders: Vec<(&str, aliyun_guard::ClientBuilder)> = vec![
        (
            "total",
            fast_retries(&server.uri()).total_timeout(Duration::MAX),
        ),
        (
            "read",
            fast_retries(&server.uri()).read_timeout(Duration::MAX),
        ),
        (
            "connect",
            fast_retries(&server.uri()).connect_timeout(Duration::MAX),
        ),
        (
            "all, custom http",
            fast_retries(&server.uri())
                .http_client(reqwest::Client::builder())
                .total_timeout(Duration::MAX)
                .read_timeout(Duration::MAX)
                .connect_timeout(Duration::MAX),
        ),
    ];
    for (label, builder) in builders {
        let client = builder.build().unwrap();
        let value = client.call(&request()).await.unwrap();
        assert_eq!(value["RequestId"], "R-max", "{label}");
    }
    let client = fast_retries(&server.uri()).build().unwrap();
    let value = client
        .call(&request().timeout(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(value["RequestId"], "R-max");
    // An unbounded wait between attempts ends the retries instead of overflowing the clock.
    let busy = serve(ResponseTemplate::new(503).set_body_json(serde_json::json!({
        "Code": "ServiceUnavailable", "Message": "busy", "RequestId": "R"})))
    .await;
    let mut policy = RetryPolicy::new(3, Duration::MAX);
    policy.max_delay = Duration::MAX;
    let client = fast_retries(&busy.uri())
        .total_timeout(Duration::MAX)
        .build()
        .unwrap();
    let err = client
        .call(&request().retry(policy).timeout(Duration::MAX))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    assert_eq!(hits(&busy).await, 1);
}

// ---- Defect 10: XML numeric character references ----

#[tokio::test]
async fn xml_character_references_reach_the_error() {
    let server = serve(ResponseTemplate::new(400).set_body_string(
        "<?xml version=\"1.0\"?><Error><RequestId>R&#45;x</RequestId><HostId>h&#x2E;com</HostId>\
         <Code>Caf&#233;</Code><Message>caf&#233; &amp; th&#xE9;</Message></Error>",
    ))
    .await;
    let err = fast_retries(&server.uri())
        .build()
        .unwrap()
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.code, "Café");
    assert_eq!(api.message, "café & thé");
    assert_eq!(api.request_id.as_deref(), Some("R-x"));
    assert_eq!(api.host_id.as_deref(), Some("h.com"));
    assert!(err.to_string().contains("café & thé"), "{err}");
}

// ---- Defect 11: terminal escapes ----

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn assert_printable(label: &str, text: &str) {
    assert!(
        !text.chars().any(unsafe_char),
        "{label} lets a control character through: {text:?}"
    );
}

const NASTY: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}\u{9b}31m\u{7f}";

/// A raw server: one answer with the request id header `header_id` and `body`.
async fn raw_answer(status: &str, header_id: &[u8], body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let header_id = header_id.to_vec();
    let status = status.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let header_id = header_id.clone();
            let body = body.clone();
            let status = status.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
                let mut answer = format!("HTTP/1.1 {status}\r\nx-acs-request-id: ").into_bytes();
                answer.extend_from_slice(&header_id);
                answer.extend_from_slice(
                    format!("\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes(),
                );
                let _ = s.write_all(&answer).await;
                let _ = s.flush().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn terminal_escapes_in_server_text_are_neutralised() {
    let nasty = |s: &str| format!("{s}{NASTY}");
    // The header cannot carry C0 controls (HTTP forbids them) but can carry a bidi override.
    let header_id = "H\u{202e}-1".as_bytes();
    let api_body = serde_json::json!({
        "Code": nasty("InvalidParameter"), "Message": nasty("bad"), "RequestId": nasty("R"),
        "HostId": nasty("host"), "Recommend": nasty("https://r")
    })
    .to_string();
    let leak_body = serde_json::json!({
        "Code": "Forbidden", "Message": nasty(LEAK_MESSAGE), "RequestId": nasty("LR"),
        "HostId": nasty("lh")
    })
    .to_string();
    let no_id_body = serde_json::json!({"Code": nasty("Bad"), "Message": nasty("m")}).to_string();
    let html_body = format!("<html>{NASTY}</html>");
    let cases = [
        ("400 Bad Request", api_body),
        ("403 Forbidden", leak_body),
        ("400 Bad Request", no_id_body),
        ("403 Forbidden", html_body),
    ];
    for (status, body) in cases {
        let url = raw_answer(status, header_id, body).await;
        let client = fast_retries(&url)
            .guard(Arc::new(Guard::new()))
            .build()
            .unwrap();
        let err = client
            .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
            .await
            .unwrap_err();
        // The guidance of a compromised key is several lines long: its own line feeds are fine.
        let display = err.to_string().replace('\n', " ");
        assert_printable(&format!("Display of {err:?}"), &display);
        let fields: Vec<Option<String>> = match &err {
            Error::Api(a) => vec![
                Some(a.code.clone()),
                Some(a.message.clone()),
                a.request_id.clone(),
                a.host_id.clone(),
                a.recommend.clone(),
            ],
            Error::UnexpectedResponse(u) => vec![Some(u.snippet.clone()), u.request_id.clone()],
            Error::CompromisedKey(k) => vec![
                k.server_code.clone(),
                k.server_message.clone(),
                k.request_id.clone(),
                k.host_id.clone(),
            ],
            other => panic!("{other:?}"),
        };
        assert!(fields.iter().flatten().count() >= 2, "{err:?}");
        for field in fields.iter().flatten() {
            assert_printable(&format!("a field of {err:?}"), field);
        }
        if let Some(id) = err.request_id()
            && id.starts_with('H')
        {
            assert_eq!(
                id, "H\u{fffd}-1",
                "the header's bidi override is neutralised"
            );
        }
    }
}

// ---- Retries must not duplicate writes ----

fn busy_500() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(serde_json::json!({
        "Code": "InternalError", "Message": "oops", "RequestId": "R-500"}))
}

async fn attempts_for(template: ResponseTemplate, request: RpcRequest) -> (Error, usize) {
    let server = serve(template).await;
    let err = fast_retries(&server.uri())
        .build()
        .unwrap()
        .call(&request)
        .await
        .unwrap_err();
    (err, hits(&server).await)
}

#[tokio::test]
async fn ambiguous_failures_are_retried_only_for_idempotent_requests() {
    let run = || RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
    let describe = || RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
    let cases = [
        ("RunInstances", run(), 1),
        ("DescribeInstances", describe(), 3),
        (
            "RunInstances + ClientToken",
            run().param("ClientToken", "0c593ea1-3bea"),
            3,
        ),
        ("RunInstances idempotent", run().idempotent(true), 3),
        (
            "DescribeInstances not idempotent",
            describe().idempotent(false),
            1,
        ),
        (
            "DescribeInstances, 5 attempts",
            describe().retry(RetryPolicy::new(5, Duration::from_millis(1))),
            5,
        ),
        (
            "DescribeInstances, no retries",
            describe().retry(RetryPolicy::none()),
            1,
        ),
    ];
    for (label, request, expected) in cases {
        let (err, n) = attempts_for(busy_500(), request).await;
        assert_eq!(err.code(), Some("InternalError"), "{label}");
        assert_eq!(n, expected, "{label}");
        assert_eq!(err.attempts(), Some(expected as u32), "{label}");
    }
    // An HTML 502 from a gateway is ambiguous too.
    let (_, n) = attempts_for(
        ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
        run(),
    )
    .await;
    assert_eq!(n, 1);
    // A reset mid-response: the write may have run.
    let (url, connections) = raw_server(Raw::ResetMidBody).await;
    let err = fast_retries(&url)
        .build()
        .unwrap()
        .call(&run())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failures_that_show_nothing_ran_are_retried_even_for_writes() {
    let run = || RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
    for (status, code) in [
        (400u16, "Throttling.User"),
        (429, "Throttling"),
        (503, "ServiceUnavailable"),
    ] {
        let (err, n) = attempts_for(
            ResponseTemplate::new(status).set_body_json(serde_json::json!({
                "Code": code, "Message": "slow down", "RequestId": "R"})),
            run(),
        )
        .await;
        assert_eq!(err.code(), Some(code));
        assert_eq!(n, 3, "{code}");
    }
    let err = fast_retries(&closed_port_url())
        .build()
        .unwrap()
        .call(&run())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { attempts: 3, .. }), "{err:?}");
}

#[tokio::test]
async fn a_per_request_timeout_bounds_the_call() {
    let server = serve(
        ResponseTemplate::new(200)
            .set_body_json(ok_json("late"))
            .set_delay(Duration::from_secs(5)),
    )
    .await;
    let client = fast_retries(&server.uri())
        .read_timeout(Duration::from_secs(30))
        .total_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .call(
            &RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
                .timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: TimeoutPhase::Total,
                ..
            }
        ),
        "{err:?}"
    );
    // Generous: the budget is 0.3 s, the server would take 5 s.
    assert!(started.elapsed() < Duration::from_secs(4));
}

// ---- Leak answer negations ----

#[tokio::test]
async fn a_negated_leak_sentence_is_a_plain_api_error() {
    for message in [
        "There is no risk of leakage of this AccessKey.",
        "This is not a risk of leakage.",
    ] {
        let server = serve(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "Code": "Forbidden", "Message": message, "RequestId": "R-neg"})))
        .await;
        let guard = Arc::new(Guard::new());
        let err = fast_retries(&server.uri())
            .guard(guard.clone())
            .build()
            .unwrap()
            .call(&RpcRequest::new("Ecs", "2014-05-26", "RunInstances"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Api(a) if a.code == "Forbidden"),
            "{message}: {err:?}"
        );
        assert!(!guard.is_compromised(KEY_ID), "{message}");
    }
}

// ---- The guard checks the product the request really goes to ----

#[tokio::test]
async fn a_mislabelled_product_does_not_slip_past_the_guard() {
    // Alibaba's host names resolve to a loopback listener: if anything were sent, it would be
    // counted here, never reach the internet.
    let (addr, connections) = counting_listener().await;
    let host = "ecs.cn-hangzhou.aliyuncs.com";
    let http = || reqwest::Client::builder().resolve(host, addr);
    let guard = Arc::new(Guard::new());
    guard.mark_compromised(KEY_ID, "test").unwrap();
    let mislabelled = || RpcRequest::new("Ecs2", "2014-05-26", "RunInstances");
    // Per-request endpoint.
    let client = Client::builder()
        .credentials(credentials())
        .guard(guard.clone())
        .http_client(http())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .call(&mislabelled().endpoint(format!("https://{host}")))
        .await
        .unwrap_err();
    let Error::CompromisedKey(refusal) = &err else {
        panic!("{err:?}")
    };
    assert!(err.to_string().contains("before sending"), "{err}");
    assert_eq!(refusal.product, "ecs");
    // Client-level endpoint, any case and a trailing dot.
    let client = Client::builder()
        .credentials(credentials())
        .guard(guard.clone())
        .http_client(http())
        .endpoint("ECS.cn-hangzhou.aliyuncs.com")
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.call(&mislabelled()).await.unwrap_err();
    assert!(err.is_compromised_key(), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing was sent");
    // The control: a harmless action goes out (to the loopback listener), so the refusals above
    // are the guard's.
    let err = client
        .call(&RpcRequest::new("Ecs2", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap_err();
    assert!(!err.is_compromised_key(), "{err:?}");
    assert!(connections.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_leak_answer_is_recorded_under_the_product_of_the_host() {
    let server = serve(ResponseTemplate::new(403).set_body_json(leak_json())).await;
    let addr = *server.address();
    let host = "pts.aliyuncs.com";
    let guard = Arc::new(Guard::new());
    let client = Client::builder()
        .credentials(credentials())
        .guard(guard.clone())
        .http_client(reqwest::Client::builder().resolve(host, addr))
        .endpoint(format!("http://{host}:{}", addr.port()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .call(&RpcRequest::new("NotPts", "2019-08-10", "CreatePtsScene"))
        .await
        .unwrap_err();
    let Error::CompromisedKey(leak) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(leak.product, "pts", "recorded under the host's product");
    assert!(guard.is_compromised(KEY_ID));
    assert_eq!(hits(&server).await, 1);
}
