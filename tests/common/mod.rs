//! Shared test helpers: a wiremock matcher that re-verifies RPC signatures with its own
//! implementation (not the crate's), and canned Alibaba answers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use wiremock::{Match, Request};

pub const KEY_ID: &str = "LTAI5tTestKeyId0000wxyz";
pub const SECRET: &str = "TestSecretValue-0123456789abcd";
pub const LEAK_MESSAGE: &str = "There is a risk of leakage of this AccessKey.";

pub fn credentials() -> aliyun_guard::Credentials {
    aliyun_guard::Credentials::new(KEY_ID, SECRET)
}

/// Parameters of a received RPC request: the query for GET, the form body for POST.
pub fn params_of(request: &Request) -> Vec<(String, String)> {
    let raw: Vec<u8> = if request.method.as_str() == "GET" {
        request.url.query().unwrap_or_default().as_bytes().to_vec()
    } else {
        request.body.clone()
    };
    url::form_urlencoded::parse(&raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(request: &Request, name: &str) -> Option<String> {
    params_of(request)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Independent POP encoding: byte by byte, unreserved bytes kept.
fn pop_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Recomputes the signature of a received request (independently of the crate).
pub fn expected_signature(request: &Request, secret: &str) -> Option<String> {
    // BTreeMap<String> orders by bytes, as the signature requires.
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in params_of(request) {
        if k != "Signature" {
            params.insert(k, v);
        }
    }
    let canonical = params
        .iter()
        .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sts = format!(
        "{}&{}&{}",
        request.method.as_str(),
        pop_encode("/"),
        pop_encode(&canonical)
    );
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).ok()?;
    mac.update(sts.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Matches only requests whose signature verifies with `secret` and whose common parameters are
/// all present; records every nonce it sees.
#[derive(Clone)]
pub struct ValidSignature {
    pub secret: String,
    pub nonces: Arc<Mutex<Vec<String>>>,
}

impl ValidSignature {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_string(),
            nonces: Arc::default(),
        }
    }
}

impl Match for ValidSignature {
    fn matches(&self, request: &Request) -> bool {
        let Some(got) = param(request, "Signature") else {
            return false;
        };
        for required in [
            "AccessKeyId",
            "Action",
            "Version",
            "Format",
            "SignatureMethod",
            "SignatureVersion",
            "SignatureNonce",
            "Timestamp",
        ] {
            if param(request, required).is_none() {
                return false;
            }
        }
        if param(request, "Format").as_deref() != Some("JSON")
            || param(request, "SignatureMethod").as_deref() != Some("HMAC-SHA1")
            || param(request, "SignatureVersion").as_deref() != Some("1.0")
        {
            return false;
        }
        let ok = expected_signature(request, &self.secret).as_deref() == Some(got.as_str());
        if ok {
            self.nonces
                .lock()
                .unwrap()
                .push(param(request, "SignatureNonce").unwrap_or_default());
        }
        ok
    }
}

/// Matches requests whose `Action` parameter is `action`.
pub struct ActionIs(pub &'static str);

impl Match for ActionIs {
    fn matches(&self, request: &Request) -> bool {
        param(request, "Action").as_deref() == Some(self.0)
    }
}

pub fn leak_json() -> serde_json::Value {
    serde_json::json!({
        "RequestId": "LEAK-REQ-1",
        "HostId": "ecs.aliyuncs.com",
        "Code": "Forbidden",
        "Message": LEAK_MESSAGE,
        "Recommend": "https://api.aliyun.com/troubleshoot?q=Forbidden"
    })
}

pub fn leak_xml() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>LEAK-REQ-X</RequestId>\
         <HostId>ecs.aliyuncs.com</HostId><Code>Forbidden</Code><Message>{LEAK_MESSAGE}</Message></Error>"
    )
}

/// A mock endpoint where `RunInstances` answers with the leak error and everything else succeeds.
pub async fn leak_server() -> wiremock::MockServer {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(ActionIs("RunInstances"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R-OK")))
        .mount(&server)
        .await;
    server
}

/// A guard with `policy` (no state directory), shared as clients take it.
pub fn guard_with(policy: aliyun_guard::LeakPolicy) -> Arc<aliyun_guard::Guard> {
    Arc::new(
        aliyun_guard::Guard::builder()
            .policy(policy)
            .build()
            .expect("a guard without a state directory"),
    )
}

pub fn ok_json(request_id: &str) -> serde_json::Value {
    serde_json::json!({"RequestId": request_id, "Regions": {"Region": [{"RegionId": "cn-hangzhou"}]}})
}

/// A client for `server` with short timeouts and fast retries.
pub fn client_builder(server: &wiremock::MockServer) -> aliyun_guard::ClientBuilder {
    aliyun_guard::Client::builder()
        .credentials(credentials())
        .endpoint(server.uri())
        .retry(aliyun_guard::RetryPolicy::new(
            3,
            std::time::Duration::from_millis(5),
        ))
        .read_timeout(std::time::Duration::from_secs(5))
}

/// How a [`raw_server`] misbehaves on every connection.
#[derive(Clone, Copy, Debug)]
pub enum Raw {
    /// Sends headers and half the body, then closes the connection abruptly.
    ResetMidBody,
    /// Sends headers and a few body bytes, then stalls (for at most 10 s).
    StallAfterHeaders,
}

/// A raw TCP server on loopback; returns its URL and a connection counter. Bounded: each
/// connection lives at most 10 s, and the server stops when the test's runtime ends.
pub async fn raw_server(behaviour: Raw) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(
                    std::time::Duration::from_millis(500),
                    stream.read(&mut buf),
                )
                .await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"RequestId\":\"R\",\"Regions\":";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.flush().await;
                match behaviour {
                    Raw::ResetMidBody => {
                        let _ = stream.set_zero_linger();
                        drop(stream);
                    }
                    Raw::StallAfterHeaders => {
                        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

/// A loopback port with nothing listening.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// An in-memory writer for a tracing subscriber.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// A plain-text `tracing` subscriber that writes into this capture, up to `level`.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish()
    }

    /// Everything written so far, emptying the buffer.
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

/// An error's Display, followed by every source's Display, joined by " | ".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(" | ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
