//! A test kit for code that uses this crate (cargo feature `test-util`).
//!
//! [`MockAlibaba`] is an Alibaba Cloud RPC endpoint on `127.0.0.1` for your tests: it checks
//! every request's signature (with its own implementation of the published algorithm, not this
//! crate's signer), answers what you script per action, answers the leak-protection error for
//! the keys and actions you choose, and records what it received. It stops when dropped.
//! [`errors`] builds this crate's error types, so that your own error handling can be tested
//! without a server.
//!
//! ```toml
//! [dev-dependencies]
//! aliyun-guard = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use aliyun_guard::testkit::{self, MockAlibaba};
//! use aliyun_guard::{Client, Error, RpcRequest};
//!
//! let mock = MockAlibaba::start().await?;
//! mock.answer("DescribeRegions", serde_json::json!({"Regions": {"Region": []}}));
//! mock.leak(testkit::KEY_ID, ["RunInstances"]);
//! let client = Client::builder()
//!     .credentials(testkit::credentials())
//!     .endpoint(mock.url())
//!     .build()?;
//!
//! client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
//! let run = RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
//! assert!(matches!(client.call(&run).await, Err(Error::CompromisedKey(_))));
//! assert_eq!(mock.requests().len(), 2);
//! assert_eq!(mock.requests()[1].action.as_deref(), Some("RunInstances"));
//! # Ok(()) }
//! ```
//!
//! What the endpoint answers, in this order:
//!
//! | request | answer |
//! |---|---|
//! | a common parameter missing (`AccessKeyId`, `Action`, `Version`, `Signature`, `SignatureMethod`, `SignatureVersion`, `SignatureNonce`, `Timestamp`) | 400 `MissingParameter` |
//! | a key id it does not know ([`MockAlibaba::add_key`]; the kit's [`KEY_ID`] is known) | 404 `InvalidAccessKeyId.NotFound` |
//! | a wrong signature | 400 `SignatureDoesNotMatch`, quoting its string to sign as Alibaba does |
//! | a nonce used before | 400 `SignatureNonceUsed` |
//! | a key and action chosen with [`MockAlibaba::leak`] / [`MockAlibaba::leak_all`] | 403 `Forbidden`, `There is a risk of leakage of this AccessKey.` |
//! | an action scripted with [`MockAlibaba::answer`] and friends | the script |
//! | anything else | 404 `InvalidAction.NotFound` |
//!
//! Every answer is JSON with a `RequestId` (added when a script has none) and an
//! `x-acs-request-id` header.

pub mod errors;
mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::credentials::Credentials;

/// The key id the mock knows from the start (a made-up key, never valid at Alibaba).
pub const KEY_ID: &str = "LTAI5tTestKitKeyId00wxyz";
/// The secret of [`KEY_ID`].
pub const SECRET: &str = "TestKitSecretValue-0123456789ab";
/// The leak-protection message Alibaba answers (with code `Forbidden`).
pub const LEAK_MESSAGE: &str = "There is a risk of leakage of this AccessKey.";

/// Largest request body the mock reads.
const MAX_BODY: usize = 1024 * 1024;
/// Requests recorded at most (later ones are answered but not recorded).
const MAX_RECORDED: usize = 100_000;

/// [`KEY_ID`] and [`SECRET`] as credentials.
///
/// ```
/// use aliyun_guard::testkit;
/// let creds = testkit::credentials();
/// assert_eq!(creds.access_key_id(), testkit::KEY_ID);
/// ```
pub fn credentials() -> Credentials {
    Credentials::new(KEY_ID, SECRET)
}

/// One scripted answer: an HTTP status and a JSON body.
///
/// ```
/// use aliyun_guard::testkit::MockResponse;
/// let busy = MockResponse::with_status(503, serde_json::json!({"Code": "ServiceUnavailable"}));
/// assert_eq!(busy.status, 503);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MockResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body; an object gets a `RequestId` if it has none.
    pub body: Value,
}

impl MockResponse {
    /// A 200 answer with `body`.
    ///
    /// ```
    /// use aliyun_guard::testkit::MockResponse;
    /// let page = MockResponse::ok(serde_json::json!({"TotalCount": 0}));
    /// assert_eq!(page.status, 200);
    /// ```
    pub fn ok(body: Value) -> Self {
        MockResponse { status: 200, body }
    }

    /// An answer with any status and body.
    ///
    /// ```
    /// use aliyun_guard::testkit::MockResponse;
    /// let html = MockResponse::with_status(502, serde_json::json!("<html>bad gateway</html>"));
    /// assert_eq!(html.status, 502);
    /// ```
    pub fn with_status(status: u16, body: Value) -> Self {
        MockResponse { status, body }
    }

    /// An error answer in Alibaba's JSON shape (`Code`, `Message`, `HostId`, `Recommend`).
    ///
    /// ```
    /// use aliyun_guard::testkit::MockResponse;
    /// let throttled = MockResponse::error(400, "Throttling.User", "Request was denied due to user flow control.");
    /// assert_eq!(throttled.body["Code"], "Throttling.User");
    /// ```
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        MockResponse {
            status,
            body: serde_json::json!({
                "Code": code,
                "Message": message,
                "HostId": "mock.aliyuncs.com",
                "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
            }),
        }
    }

    /// The leak-protection answer: 403, `Forbidden`, [`LEAK_MESSAGE`].
    ///
    /// ```
    /// use aliyun_guard::testkit::{LEAK_MESSAGE, MockResponse};
    /// let leak = MockResponse::leak();
    /// assert_eq!((leak.status, &leak.body["Message"]), (403, &serde_json::json!(LEAK_MESSAGE)));
    /// ```
    pub fn leak() -> Self {
        Self::error(403, "Forbidden", LEAK_MESSAGE)
    }
}

/// A request the mock received.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
/// use aliyun_guard::{Client, Error, RpcRequest};
///
/// let mock = MockAlibaba::start().await?;
/// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
/// mock.answer("DescribeRegions", serde_json::json!({}));
/// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").param("AcceptLanguage", "en-US")).await?;
/// let seen = &mock.requests()[0];
/// assert!(seen.verified);
/// assert_eq!((seen.method.as_str(), seen.status), ("POST", 200));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The `Action` parameter.
    pub action: Option<String>,
    /// The `AccessKeyId` parameter.
    pub access_key_id: Option<String>,
    /// Every parameter (query and form body) but `Signature`.
    pub params: BTreeMap<String, String>,
    /// Whether it carried every common parameter, a known key and a valid, fresh signature.
    pub verified: bool,
    /// The status the mock answered.
    pub status: u16,
}

impl ReceivedRequest {
    /// One parameter's value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer("DescribeRegions", serde_json::json!({}));
    /// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").region("cn-beijing")).await?;
    /// assert_eq!(mock.requests()[0].param("RegionId"), Some("cn-beijing"));
    /// # Ok(()) }
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

type AnswerFn = dyn Fn(&ReceivedRequest) -> MockResponse + Send + Sync;

#[derive(Clone)]
enum Answer {
    Fixed(MockResponse),
    Sequence(Vec<MockResponse>, usize),
    Computed(Arc<AnswerFn>),
}

enum LeakScope {
    All,
    Actions(HashSet<String>),
}

#[derive(Default)]
struct State {
    keys: HashMap<String, String>,
    answers: HashMap<String, Answer>,
    leaks: HashMap<String, LeakScope>,
    nonces: HashSet<String>,
    requests: Vec<ReceivedRequest>,
    received: u64,
}

/// A mock Alibaba Cloud RPC endpoint on `127.0.0.1` (see [the module](self)).
///
/// It runs as a task of the tokio runtime that started it and stops when dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
/// use aliyun_guard::{Client, Error, RpcRequest};
///
/// let mock = MockAlibaba::start().await?;
/// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
/// mock.answer("DescribeRegions", serde_json::json!({"Regions": {"Region": []}}));
/// let answer = client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
/// assert!(answer["Regions"]["Region"].is_array());
/// # Ok(()) }
/// ```
pub struct MockAlibaba {
    url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for MockAlibaba {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAlibaba")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for MockAlibaba {
    fn drop(&mut self) {
        // The accept loop owns every connection's task: aborting it ends them all.
        self.task.abort();
    }
}

impl MockAlibaba {
    /// Starts an endpoint on a free port of `127.0.0.1`, knowing the key [`KEY_ID`].
    ///
    /// It runs on the current tokio runtime (this panics outside one, as `tokio::spawn` does).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let mock = aliyun_guard::testkit::MockAlibaba::start().await?;
    /// assert!(mock.url().starts_with("http://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        lock(&state).keys.insert(KEY_ID.into(), SECRET.into());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Reap finished connections so that the set does not grow.
                while connections.try_join_next().is_some() {}
                let state = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(MockAlibaba {
            url: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// The endpoint's URL, `http://127.0.0.1:PORT`, for [`crate::ClientBuilder::endpoint`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder()
    ///     .credentials(testkit::credentials())
    ///     .endpoint(mock.url())
    ///     .build()?;
    /// # let _ = (client, Error::Config(String::new()), RpcRequest::new("a", "b", "c"), MockResponse::leak());
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Accepts requests signed with this key (id and secret).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::MockAlibaba;
    /// use aliyun_guard::{Client, Credentials, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// mock.add_key("LTAI5tMyAppTestKey00abcd", "my-test-secret");
    /// mock.answer("DescribeRegions", serde_json::json!({}));
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tMyAppTestKey00abcd", "my-test-secret"))
    ///     .endpoint(mock.url())
    ///     .build()?;
    /// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// # Ok(()) }
    /// ```
    pub fn add_key(&self, access_key_id: impl Into<String>, secret: impl Into<String>) -> &Self {
        lock(&self.state)
            .keys
            .insert(access_key_id.into(), secret.into());
        self
    }

    /// Answers `action` with 200 and `body`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer("GetCallerIdentity", serde_json::json!({"AccountId": "1234567890"}));
    /// let me = client.call(&RpcRequest::new("Sts", "2015-04-01", "GetCallerIdentity")).await?;
    /// assert_eq!(me["AccountId"], "1234567890");
    /// # Ok(()) }
    /// ```
    pub fn answer(&self, action: &str, body: Value) -> &Self {
        self.answer_with(action, MockResponse::ok(body))
    }

    /// Answers `action` with `response`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer_with("RunInstances", MockResponse::error(400, "InvalidParameter", "bad ImageId"));
    /// let run = RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
    /// assert_eq!(client.call(&run).await.unwrap_err().code(), Some("InvalidParameter"));
    /// # Ok(()) }
    /// ```
    pub fn answer_with(&self, action: &str, response: MockResponse) -> &Self {
        lock(&self.state)
            .answers
            .insert(action.into(), Answer::Fixed(response));
        self
    }

    /// Answers `action` with these responses in turn, then the last one again (an empty list
    /// changes nothing).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer_sequence("DescribeRegions", [
    ///     MockResponse::error(400, "Throttling.User", "Request was denied due to user flow control."),
    ///     MockResponse::ok(serde_json::json!({"Regions": {}})),
    /// ]);
    /// // The client retries the throttled answer and gets the second one.
    /// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// assert_eq!(mock.requests_for("DescribeRegions").len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn answer_sequence(
        &self,
        action: &str,
        responses: impl IntoIterator<Item = MockResponse>,
    ) -> &Self {
        let responses: Vec<_> = responses.into_iter().collect();
        let answer = match responses.len() {
            0 => return self,
            _ => Answer::Sequence(responses, 0),
        };
        lock(&self.state).answers.insert(action.into(), answer);
        self
    }

    /// Answers `action` with what `f` computes from the request (a page by its `PageNumber`...).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{MockAlibaba, MockResponse};
    /// let mock = MockAlibaba::start().await?;
    /// mock.answer_fn("DescribeInstances", |request| {
    ///     let page = request.param("PageNumber").unwrap_or("1").to_string();
    ///     MockResponse::ok(serde_json::json!({"PageNumber": page, "Instances": {"Instance": []}}))
    /// });
    /// # Ok(()) }
    /// ```
    pub fn answer_fn(
        &self,
        action: &str,
        f: impl Fn(&ReceivedRequest) -> MockResponse + Send + Sync + 'static,
    ) -> &Self {
        lock(&self.state)
            .answers
            .insert(action.into(), Answer::Computed(Arc::new(f)));
        self
    }

    /// Answers the leak-protection error to requests signed with `access_key_id` for these
    /// actions (adding to earlier ones), as Alibaba does for the operations it blocks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.leak(testkit::KEY_ID, ["DeleteInstance"]);
    /// let delete = RpcRequest::new("Ecs", "2014-05-26", "DeleteInstance");
    /// assert!(matches!(client.call(&delete).await, Err(Error::CompromisedKey(_))));
    /// # Ok(()) }
    /// ```
    pub fn leak<A: Into<String>>(
        &self,
        access_key_id: &str,
        actions: impl IntoIterator<Item = A>,
    ) -> &Self {
        let mut state = lock(&self.state);
        let scope = state
            .leaks
            .entry(access_key_id.into())
            .or_insert_with(|| LeakScope::Actions(HashSet::new()));
        if let LeakScope::Actions(set) = scope {
            set.extend(actions.into_iter().map(Into::into));
        }
        self
    }

    /// Answers the leak-protection error to every request signed with `access_key_id`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.leak_all(testkit::KEY_ID);
    /// assert!(client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await.unwrap_err().is_compromised_key());
    /// # Ok(()) }
    /// ```
    pub fn leak_all(&self, access_key_id: &str) -> &Self {
        lock(&self.state)
            .leaks
            .insert(access_key_id.into(), LeakScope::All);
        self
    }

    /// Stops answering the leak error for `access_key_id`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.leak_all(testkit::KEY_ID).clear_leak(testkit::KEY_ID);
    /// mock.answer("DescribeRegions", serde_json::json!({}));
    /// assert!(client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await.is_ok());
    /// # Ok(()) }
    /// ```
    pub fn clear_leak(&self, access_key_id: &str) -> &Self {
        lock(&self.state).leaks.remove(access_key_id);
        self
    }

    /// The requests received so far, oldest first (the first 100,000).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer("DescribeRegions", serde_json::json!({}));
    /// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// assert!(mock.requests().iter().all(|r| r.verified && r.access_key_id.as_deref() == Some(testkit::KEY_ID)));
    /// # Ok(()) }
    /// ```
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The requests received so far for `action`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// mock.answer("DescribeRegions", serde_json::json!({}));
    /// client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")).await?;
    /// assert_eq!(mock.requests_for("DescribeRegions").len(), 1);
    /// assert!(mock.requests_for("RunInstances").is_empty());
    /// # Ok(()) }
    /// ```
    pub fn requests_for(&self, action: &str) -> Vec<ReceivedRequest> {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .cloned()
            .collect()
    }

    /// How many requests arrived (recorded or not).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use aliyun_guard::testkit::{self, MockAlibaba, MockResponse};
    /// use aliyun_guard::{Client, Error, RpcRequest};
    ///
    /// let mock = MockAlibaba::start().await?;
    /// let client = Client::builder().credentials(testkit::credentials()).endpoint(mock.url()).build()?;
    /// assert_eq!(mock.request_count(), 0);
    /// let _ = client.call(&RpcRequest::new("Ecs", "2014-05-26", "NoSuchAction")).await;
    /// assert_eq!(mock.request_count(), 1);
    /// # Ok(()) }
    /// ```
    pub fn request_count(&self) -> u64 {
        lock(&self.state).received
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking answer function must not take the mock down with it.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const COMMON: &[&str] = &[
    "AccessKeyId",
    "Action",
    "Version",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
];

async fn handle(
    state: &Mutex<State>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return respond(
                0,
                MockResponse::error(413, "RequestTooLarge", "the mock reads at most 1 MiB"),
            );
        }
    };
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if method == "POST" {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut received = ReceivedRequest {
        method: method.clone(),
        action: get("Action"),
        access_key_id: get("AccessKeyId"),
        params: params
            .iter()
            .filter(|(k, _)| k != "Signature")
            .cloned()
            .collect(),
        verified: false,
        status: 0,
    };
    let mut state = lock(state);
    state.received += 1;
    let number = state.received;
    let response = decide(&mut state, &method, &params, &mut received);
    received.status = response.status;
    if state.requests.len() < MAX_RECORDED {
        state.requests.push(received);
    }
    drop(state);
    respond(number, response)
}

/// What to answer, and whether the request verified.
fn decide(
    state: &mut State,
    method: &str,
    params: &[(String, String)],
    received: &mut ReceivedRequest,
) -> MockResponse {
    if let Some(missing) = COMMON
        .iter()
        .find(|name| !params.iter().any(|(k, _)| k == *name))
    {
        return MockResponse::error(
            400,
            "MissingParameter",
            &format!(
                "The input parameter \"{missing}\" that is mandatory for processing this request is not supplied."
            ),
        );
    }
    let value = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    if value("SignatureMethod") != "HMAC-SHA1" || value("SignatureVersion") != "1.0" {
        return MockResponse::error(
            400,
            "InvalidParameter",
            "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0",
        );
    }
    let key_id = value("AccessKeyId");
    let Some(secret) = state.keys.get(key_id) else {
        return MockResponse::error(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        );
    };
    let string_to_sign = verify::string_to_sign(method, params);
    if !verify::same(
        &verify::signature(secret, &string_to_sign),
        value("Signature"),
    ) {
        return MockResponse::error(
            400,
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        );
    }
    if !state.nonces.insert(value("SignatureNonce").to_string()) {
        return MockResponse::error(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        );
    }
    received.verified = true;
    let action = value("Action");
    let leaked = match state.leaks.get(key_id) {
        Some(LeakScope::All) => true,
        Some(LeakScope::Actions(actions)) => actions.contains(action),
        None => false,
    };
    if leaked {
        return MockResponse::leak();
    }
    match state.answers.get_mut(action) {
        Some(Answer::Fixed(response)) => response.clone(),
        Some(Answer::Sequence(responses, next)) => {
            let at = (*next).min(responses.len() - 1);
            *next = next.saturating_add(1);
            responses[at].clone()
        }
        Some(Answer::Computed(f)) => {
            let f = f.clone();
            f(received)
        }
        None => MockResponse::error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ),
    }
}

fn respond(number: u64, response: MockResponse) -> hyper::Response<Full<Bytes>> {
    let request_id = format!("MOCK-{number:08}-0000-4000-8000-000000000000");
    let mut body = response.body;
    if let Value::Object(map) = &mut body
        && !map.contains_key("RequestId")
    {
        map.insert("RequestId".into(), Value::String(request_id.clone()));
    }
    let status = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .header("x-acs-request-id", request_id)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}
