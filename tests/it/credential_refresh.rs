//! The credentials cache: freshness, single flight under a storm, failures and backoff, serving
//! stale values for providers that opt in; the client asking the
//! cache on every attempt against a mock service that rejects expired tokens; and the guard
//! knowing the long-lived parent key of temporary credentials.
//!
//! Time: a manual clock drives the cache and the mock services; tokio's paused clock drives the
//! providers' sleeps. Nothing reaches the internet.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliyun_guard::credentials::{
    Clock, CredentialsCache, CredentialsErrorKind, CredentialsFuture, CredentialsProvider,
};
use aliyun_guard::guard::{Detection, Guard, LeakPolicy};
use aliyun_guard::{Client, CompromisedKey, Credentials, Error, RetryPolicy, RpcRequest};
use common::*;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// A manual clock and a counting STS-like provider.

const PARENT_ID: &str = "LTAI5tParentKeyId000wxyz";
const T0: i64 = 1_800_000_000;

#[derive(Debug)]
struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            OffsetDateTime::from_unix_timestamp(T0).unwrap(),
        )))
    }
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Mints STS-like credentials that expire `lifetime` after the clock's now; counts fetches.
#[derive(Debug)]
struct MockSts {
    clock: Arc<ManualClock>,
    lifetime: Mutex<time::Duration>,
    fetches: AtomicUsize,
    /// How long each fetch takes (tokio time).
    delay: Duration,
    /// Fetches after the first wait for a permit here.
    gate: Option<Arc<Semaphore>>,
    fail: AtomicBool,
    serve_stale: bool,
    /// token -> (secret, expiry), for the mock service.
    issued: Arc<Mutex<HashMap<String, (String, OffsetDateTime)>>>,
}

impl MockSts {
    fn new(clock: &Arc<ManualClock>, lifetime: time::Duration) -> Self {
        Self {
            clock: Arc::clone(clock),
            lifetime: Mutex::new(lifetime),
            fetches: AtomicUsize::new(0),
            delay: Duration::ZERO,
            gate: None,
            fail: AtomicBool::new(false),
            serve_stale: false,
            issued: Arc::default(),
        }
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn key_id(n: usize) -> String {
    format!("STS.TemporaryKey{n:06}")
}

impl CredentialsProvider for MockSts {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if n > 1
                && let Some(gate) = &self.gate
            {
                gate.acquire().await.unwrap().forget();
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::credentials_kind(
                    CredentialsErrorKind::Unavailable,
                    format!("mock STS is down (fetch {n})"),
                    None,
                ));
            }
            let expiry = self.clock.now() + *self.lifetime.lock().unwrap();
            let token = format!("token-{n}");
            let secret = format!("secret-{n}");
            self.issued
                .lock()
                .unwrap()
                .insert(token.clone(), (secret.clone(), expiry));
            Ok(Credentials::new(key_id(n), secret)
                .with_security_token(token)
                .with_expiry(expiry)
                .with_parent_key_id(PARENT_ID)
                .with_provider_name("mock_sts"))
        })
    }

    fn serve_stale_on_failure(&self) -> bool {
        self.serve_stale
    }
}

fn cache_of(sts: &Arc<MockSts>) -> CredentialsCache {
    CredentialsCache::builder_shared(Arc::clone(sts) as Arc<dyn CredentialsProvider>)
        .clock(Arc::clone(&sts.clock) as Arc<dyn Clock>)
        .build()
}

async fn key_now(cache: &CredentialsCache) -> String {
    cache
        .credentials()
        .await
        .unwrap()
        .access_key_id()
        .to_string()
}

/// Lets spawned tasks (a background refresh) run on this current-thread runtime.
async fn let_run() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

fn secs(s: f64) -> time::Duration {
    time::Duration::seconds_f64(s)
}

// ---------------------------------------------------------------------------------------------
// Freshness.

#[tokio::test(flavor = "current_thread")]
async fn an_hourly_token_is_served_from_the_cache_and_refreshed_15_minutes_before_expiry() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::hours(1)));
    let cache = cache_of(&sts);
    for _ in 0..45 {
        assert_eq!(key_now(&cache).await, key_id(1));
        clock.advance(secs(59.0));
    }
    assert_eq!(sts.fetches(), 1, "fresh values are not fetched again");
    clock.advance(secs(60.0)); // 45 min 15 s: stale, still valid
    assert_eq!(
        key_now(&cache).await,
        key_id(1),
        "the caller that finds the value stale keeps using it while the refresh runs"
    );
    let_run().await;
    assert_eq!(sts.fetches(), 2);
    assert_eq!(key_now(&cache).await, key_id(2));
    assert_eq!(sts.fetches(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn short_lived_tokens_are_refreshed_when_a_quarter_of_their_lifetime_is_left() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::minutes(15)));
    let cache = cache_of(&sts);
    assert_eq!(key_now(&cache).await, key_id(1));
    // A fixed 15-minute margin would refresh a 15-minute token on every call.
    clock.advance(secs(11.0 * 60.0 + 14.0));
    assert_eq!(key_now(&cache).await, key_id(1));
    assert_eq!(sts.fetches(), 1);
    clock.advance(secs(1.0)); // 11 min 15 s: 3 min 45 s left
    key_now(&cache).await;
    let_run().await;
    assert_eq!(sts.fetches(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn refresh_before_is_configurable() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::hours(1)));
    let cache = CredentialsCache::builder_shared(sts.clone())
        .clock(clock.clone())
        .refresh_before(Duration::from_secs(60))
        .build();
    key_now(&cache).await;
    clock.advance(secs(58.0 * 60.0 + 59.0));
    key_now(&cache).await;
    assert_eq!(sts.fetches(), 1);
    clock.advance(secs(1.0));
    key_now(&cache).await;
    let_run().await;
    assert_eq!(sts.fetches(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn values_without_expiry_are_never_refreshed() {
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);
    impl CredentialsProvider for Counting {
        fn provide_credentials(&self) -> CredentialsFuture<'_> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(credentials()) })
        }
    }
    let clock = ManualClock::new();
    let provider = Arc::new(Counting::default());
    let cache = CredentialsCache::builder_shared(provider.clone())
        .clock(clock.clone())
        .build();
    for _ in 0..100 {
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), KEY_ID);
        clock.advance(time::Duration::days(400));
    }
    assert_eq!(provider.0.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Single flight.

async fn storm(cache: &CredentialsCache, calls: usize) -> Vec<Result<String, Error>> {
    let tasks: Vec<_> = (0..calls)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .credentials()
                    .await
                    .map(|c| c.access_key_id().to_string())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(calls);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn ten_thousand_calls_on_an_empty_cache_make_one_request() {
    let clock = ManualClock::new();
    let mut sts = MockSts::new(&clock, time::Duration::hours(1));
    sts.delay = Duration::from_secs(2); // a slow STS
    let sts = Arc::new(sts);
    let cache = cache_of(&sts);
    let keys = storm(&cache, 10_000).await;
    assert_eq!(sts.fetches(), 1, "exactly one STS request for 10,000 calls");
    assert!(
        keys.iter()
            .all(|k| k.as_deref().ok() == Some(key_id(1).as_str()))
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn ten_thousand_calls_during_a_refresh_keep_the_valid_value_and_make_one_request() {
    let clock = ManualClock::new();
    let gate = Arc::new(Semaphore::new(0));
    let mut sts = MockSts::new(&clock, time::Duration::hours(1));
    sts.gate = Some(gate.clone());
    let sts = Arc::new(sts);
    let cache = cache_of(&sts);
    assert_eq!(key_now(&cache).await, key_id(1));
    clock.advance(time::Duration::minutes(50)); // stale, valid for 10 more minutes
    // The refresh is held at the gate: nobody waits for it.
    let keys = storm(&cache, 10_000).await;
    assert!(
        keys.iter()
            .all(|k| k.as_deref().ok() == Some(key_id(1).as_str()))
    );
    assert_eq!(sts.fetches(), 2, "one refresh for 10,000 calls");
    gate.add_permits(1);
    let_run().await;
    assert_eq!(sts.fetches(), 2);
    let keys = storm(&cache, 10_000).await;
    assert!(
        keys.iter()
            .all(|k| k.as_deref().ok() == Some(key_id(2).as_str()))
    );
    assert_eq!(sts.fetches(), 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn ten_thousand_calls_with_an_expired_value_wait_for_one_refresh() {
    let clock = ManualClock::new();
    let mut sts = MockSts::new(&clock, time::Duration::hours(1));
    sts.delay = Duration::from_secs(1);
    let sts = Arc::new(sts);
    let cache = cache_of(&sts);
    key_now(&cache).await;
    clock.advance(time::Duration::hours(2));
    let keys = storm(&cache, 10_000).await;
    assert_eq!(sts.fetches(), 2);
    assert!(
        keys.iter()
            .all(|k| k.as_deref().ok() == Some(key_id(2).as_str()))
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_value_that_arrives_stale_is_used_and_refreshed_on_the_next_call() {
    let clock = ManualClock::new();
    let mut sts = MockSts::new(&clock, time::Duration::seconds(-5)); // skewed: already expired
    sts.delay = Duration::from_millis(300);
    let sts = Arc::new(sts);
    let cache = cache_of(&sts);
    let keys = storm(&cache, 1_000).await;
    assert_eq!(
        sts.fetches(),
        1,
        "the waiters take the outcome of the refresh they waited for"
    );
    assert!(
        keys.iter()
            .all(|k| k.as_deref().ok() == Some(key_id(1).as_str()))
    );
    assert_eq!(
        key_now(&cache).await,
        key_id(2),
        "refreshed again on the next call"
    );
    *sts.lifetime.lock().unwrap() = time::Duration::hours(1);
    assert_eq!(key_now(&cache).await, key_id(3));
    assert_eq!(key_now(&cache).await, key_id(3));
    assert_eq!(sts.fetches(), 3);
}

// ---------------------------------------------------------------------------------------------
// Failures.

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_refresh_is_retried_with_backoff_and_its_error_reaches_callers() {
    let capture = Capture::default();
    let _log = tracing::subscriber::set_default(capture.subscriber(tracing::Level::WARN));
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::hours(1)));
    let cache = cache_of(&sts);
    key_now(&cache).await;
    sts.fail.store(true, Ordering::SeqCst);
    clock.advance(time::Duration::minutes(50));
    // The call that finds the value stale still gets it; its background refresh fails.
    assert_eq!(key_now(&cache).await, key_id(1));
    let_run().await;
    assert_eq!(sts.fetches(), 2);
    // Not an opted-in provider: once the refresh failed, the stale value is not served.
    let results = storm(&cache, 10_000).await;
    assert!(results.iter().all(|r| matches!(
        r,
        Err(Error::Credentials { kind: CredentialsErrorKind::Unavailable, message, .. })
            if message.contains("mock STS is down (fetch 2)")
    )));
    assert_eq!(sts.fetches(), 2, "no request within the backoff");
    clock.advance(secs(0.49));
    assert!(cache.credentials().await.is_err());
    assert_eq!(
        sts.fetches(),
        2,
        "the first backoff is at least half a second"
    );
    clock.advance(secs(0.52));
    let results = storm(&cache, 10_000).await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(
        sts.fetches(),
        3,
        "one retry once the backoff passed, for 10,000 calls"
    );
    // Recovery.
    sts.fail.store(false, Ordering::SeqCst);
    clock.advance(secs(2.01)); // the second backoff is at most 2 s
    assert_eq!(key_now(&cache).await, key_id(4));
    assert_eq!(
        capture
            .take()
            .matches("refreshing credentials failed")
            .count(),
        1,
        "one warning per failure streak"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_opted_in_provider_keeps_serving_the_old_value_until_it_really_expires() {
    let capture = Capture::default();
    let _log = tracing::subscriber::set_default(capture.subscriber(tracing::Level::WARN));
    let clock = ManualClock::new();
    let mut sts = MockSts::new(&clock, time::Duration::hours(1));
    sts.serve_stale = true;
    let sts = Arc::new(sts);
    let cache = cache_of(&sts);
    key_now(&cache).await;
    sts.fail.store(true, Ordering::SeqCst);
    clock.advance(time::Duration::minutes(46));
    // Ten minutes of calls, one every second, during an STS outage.
    for _ in 0..600 {
        assert_eq!(key_now(&cache).await, key_id(1));
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        clock.advance(secs(1.0));
    }
    let attempts = sts.fetches() - 1;
    assert!(
        (40..=200).contains(&attempts),
        "retried with backoff (1 s doubling to 10 s), not on every call: {attempts}"
    );
    let log = capture.take();
    assert_eq!(
        log.matches("refreshing credentials failed").count(),
        1,
        "{log}"
    );
    assert!(log.contains("serving the previous credentials until they expire"));
    assert!(!log.contains("secret-1") && !log.contains("token-1"));
    // Past the real expiry the error surfaces.
    clock.advance(time::Duration::minutes(5));
    let mut saw_error = false;
    for _ in 0..30 {
        match cache.credentials().await {
            Err(Error::Credentials { .. }) => saw_error = true,
            Ok(c) => panic!("served {} after it expired", c.masked_key_id()),
            Err(other) => panic!("unexpected {other:?}"),
        }
        clock.advance(secs(1.0));
    }
    assert!(saw_error);
    sts.fail.store(false, Ordering::SeqCst);
    clock.advance(secs(10.1));
    let key = key_now(&cache).await;
    assert_ne!(key, key_id(1));
}

// ---------------------------------------------------------------------------------------------
// Background refresh.

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_optional_background_refresh_refreshes_between_calls() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::hours(1)));
    let cache = cache_of(&sts);
    key_now(&cache).await;
    let task = cache
        .spawn_background_refresh(Duration::from_secs(60))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(121)).await;
    assert_eq!(sts.fetches(), 1, "nothing to do while fresh");
    clock.advance(time::Duration::minutes(46));
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(sts.fetches(), 2, "refreshed without a call");
    assert_eq!(key_now(&cache).await, key_id(2));
    drop(cache);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(task.is_finished(), "the task ends with the cache");
}

// ---------------------------------------------------------------------------------------------
// The client asks the cache on every attempt.

/// An RPC service that accepts only tokens it issued, unexpired by the shared clock, and
/// correctly signed with their secret; it answers `InvalidSecurityToken.Expired` otherwise.
struct TokenChecking {
    clock: Arc<ManualClock>,
    issued: Arc<Mutex<HashMap<String, (String, OffsetDateTime)>>>,
    expired_seen: Arc<AtomicUsize>,
    /// Answers the first request with a 503 after `stall` of (manual) time.
    first_stalls: Option<time::Duration>,
    seen: AtomicUsize,
}

impl Respond for TokenChecking {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if n == 0
            && let Some(stall) = self.first_stalls
        {
            self.clock.advance(stall);
            return ResponseTemplate::new(503).set_body_json(serde_json::json!({
                "RequestId": "R-503", "Code": "ServiceUnavailable", "Message": "try again"
            }));
        }
        let token = param(request, "SecurityToken").unwrap_or_default();
        let issued = self.issued.lock().unwrap().get(&token).cloned();
        let Some((secret, expiry)) = issued else {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "RequestId": "R-400", "Code": "InvalidSecurityToken.Malformed", "Message": "?"
            }));
        };
        if expiry <= self.clock.now() {
            self.expired_seen.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "RequestId": "R-EXP", "Code": "InvalidSecurityToken.Expired",
                "Message": "The security token you provided has expired."
            }));
        }
        if param(request, "Signature") != expected_signature(request, &secret) {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "RequestId": "R-SIG", "Code": "SignatureDoesNotMatch", "Message": "bad"
            }));
        }
        ResponseTemplate::new(200).set_body_json(ok_json("R-OK"))
    }
}

async fn token_service(
    sts: &MockSts,
    first_stalls: Option<time::Duration>,
) -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let expired_seen = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/"))
        .respond_with(TokenChecking {
            clock: Arc::clone(&sts.clock),
            issued: Arc::clone(&sts.issued),
            expired_seen: Arc::clone(&expired_seen),
            first_stalls,
            seen: AtomicUsize::new(0),
        })
        .mount(&server)
        .await;
    (server, expired_seen)
}

fn describe_regions() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
}

#[tokio::test(flavor = "current_thread")]
async fn two_hundred_calls_across_expiries_all_succeed_with_one_fetch_per_expiry() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::seconds(2)));
    let (server, expired_seen) = token_service(&sts, None).await;
    let client = Client::builder()
        .credentials_cache(cache_of(&sts))
        .endpoint(server.uri())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for i in 0..200 {
        if let Err(e) = client.call(&describe_regions()).await {
            panic!("call {i} failed: {e}");
        }
        clock.advance(secs(0.1));
    }
    assert_eq!(expired_seen.load(Ordering::SeqCst), 0);
    // 20 s of calls with 2 s tokens: 10 lifetimes; refreshed 0.5 s before expiry, every 1.5 s
    // (plus the drift of background refreshes finishing a call later): 10 to 15 fetches, not 200.
    let fetches = sts.fetches();
    assert!((10..=15).contains(&fetches), "{fetches} fetches");
    let current = client.current_credentials().await.unwrap();
    assert_eq!(current.provider_name(), "mock_sts");
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_after_expiry_uses_new_credentials() {
    let clock = ManualClock::new();
    let sts = Arc::new(MockSts::new(&clock, time::Duration::seconds(2)));
    // The first attempt takes 3 s (of manual time) and fails with a 503: by the retry, the
    // credentials it used have expired.
    let (server, expired_seen) = token_service(&sts, Some(time::Duration::seconds(3))).await;
    let client = Client::builder()
        .credentials_cache(cache_of(&sts))
        .endpoint(server.uri())
        .retry(RetryPolicy::new(3, Duration::from_millis(1)))
        .build()
        .unwrap();
    client.call(&describe_regions()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(param(&requests[0], "AccessKeyId"), Some(key_id(1)));
    assert_eq!(param(&requests[1], "AccessKeyId"), Some(key_id(2)));
    assert_eq!(expired_seen.load(Ordering::SeqCst), 0);
    assert_eq!(sts.fetches(), 2);
}

// ---------------------------------------------------------------------------------------------
// The guard knows the parent key.

const TEMP_A: &str = "STS.NTemporaryKeyAAAA1111";
const TEMP_B: &str = "STS.NTemporaryKeyBBBB2222";

fn temporary(id: &str) -> Credentials {
    Credentials::new(id, "temporary-secret")
        .with_security_token("temporary-token")
        .with_parent_key_id(PARENT_ID)
}

fn run_instances() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances").region("cn-hangzhou")
}

fn compromised(err: Error) -> CompromisedKey {
    match err {
        Error::CompromisedKey(c) => *c,
        other => panic!("expected CompromisedKey, got {other:?}"),
    }
}

fn client_for(server: &MockServer, guard: &Arc<Guard>, credentials: Credentials) -> Client {
    Client::builder()
        .credentials(credentials)
        .endpoint(server.uri())
        .retry(RetryPolicy::none())
        .guard(Arc::clone(guard))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_leak_answer_to_temporary_credentials_marks_the_parent_and_refuses_its_other_tokens() {
    let server = leak_server().await;
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let seen = hooked.clone();
    let guard = Arc::new(
        Guard::builder()
            .on_compromised(move |key| seen.lock().unwrap().push(key.clone()))
            .build()
            .unwrap(),
    );
    let client = client_for(&server, &guard, temporary(TEMP_A));
    let leak = compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(leak.detection, Detection::ServerAnswer);
    assert_eq!(leak.masked_key_id, "STS.****1111");
    assert_eq!(leak.parent_masked_key_id.as_deref(), Some("LTAI****wxyz"));
    assert_eq!(leak.key_to_rotate(), "LTAI****wxyz");
    let text = leak.to_string();
    assert!(
        text.contains("minted from the long-lived AccessKey LTAI****wxyz")
            && text.contains("Rotate the long-lived AccessKey LTAI****wxyz"),
        "{text}"
    );
    assert!(!text.contains(PARENT_ID) && !text.contains("temporary-secret"));
    assert!(guard.is_compromised(TEMP_A));
    assert!(
        guard.is_compromised(PARENT_ID),
        "the parent key is marked too"
    );
    {
        let hooked = hooked.lock().unwrap();
        assert_eq!(hooked.len(), 1);
        assert_eq!(hooked[0].key_to_rotate(), "LTAI****wxyz");
    }

    // New temporary credentials minted from the same parent: refused before sending.
    let before = server.received_requests().await.unwrap().len();
    let other = client_for(&server, &guard, temporary(TEMP_B));
    let refused = compromised(other.call(&run_instances()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(refused.masked_key_id, "STS.****2222");
    assert_eq!(
        refused.parent_masked_key_id.as_deref(),
        Some("LTAI****wxyz")
    );
    assert!(
        refused
            .to_string()
            .contains("Rotate the long-lived AccessKey LTAI****wxyz")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), before);
    assert!(!guard.is_compromised(TEMP_B));
    // The default policy still lets unrestricted calls out.
    other.call(&describe_regions()).await.unwrap();
}

#[tokio::test]
async fn a_parent_marked_by_hand_blocks_every_call_under_block_all() {
    let server = leak_server().await;
    let guard = common::guard_with(LeakPolicy::BlockAll);
    guard
        .mark_compromised(PARENT_ID, "Alibaba's notice")
        .unwrap();
    let client = client_for(&server, &guard, temporary(TEMP_A));
    let refused = compromised(client.call(&describe_regions()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(refused.key_to_rotate(), "LTAI****wxyz");
    assert!(server.received_requests().await.unwrap().is_empty());
    // Credentials without a parent are not affected.
    let unrelated = client_for(&server, &guard, credentials());
    unrelated.call(&describe_regions()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The `call` example says where its credentials came from (built by a plain `cargo test`).

#[tokio::test]
async fn the_call_example_prints_the_provider_and_the_masked_key_with_v() {
    let exe = std::env::current_exe().unwrap();
    let call = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("call{}", std::env::consts::EXE_SUFFIX));
    assert!(
        call.exists(),
        "{} is missing: run `cargo test`",
        call.display()
    );
    let server = MockServer::start().await;
    Mock::given(ValidSignature::new(SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R-CLI")))
        .expect(1)
        .mount(&server)
        .await;
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(call)
        .args([
            "-v",
            "--endpoint",
            &server.uri(),
            "Ecs",
            "2014-05-26",
            "DescribeRegions",
        ])
        .env_clear()
        .env("HOME", home.path())
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("credentials: LTAI****wxyz from provider env"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY_ID) && !stderr.contains(SECRET));
}

/// Stands for an AssumeRole provider: asks STS through a client holding the long-lived key.
#[derive(Debug)]
struct AssumeRoleLike {
    sts: Client,
}

impl CredentialsProvider for AssumeRoleLike {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            self.sts
                .call(&RpcRequest::new("Sts", "2015-04-01", "AssumeRole"))
                .await?;
            Err(Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                "the mock STS never mints credentials",
                None,
            ))
        })
    }
}

#[tokio::test]
async fn a_leak_answer_to_the_providers_sts_call_reaches_every_waiting_call_as_compromised_key() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("AssumeRole"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R-OK")))
        .mount(&server)
        .await;
    let guard = Arc::new(Guard::new());
    let sts = client_for(
        &server,
        &guard,
        Credentials::new(PARENT_ID, "parent-secret"),
    );
    let client = Client::builder()
        .credentials_provider(AssumeRoleLike { sts })
        .endpoint(server.uri())
        .guard(Arc::clone(&guard))
        .build()
        .unwrap();
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call(&describe_regions()).await })
        })
        .collect();
    for call in calls {
        let leak = compromised(call.await.unwrap().unwrap_err());
        assert_eq!(leak.key_to_rotate(), "LTAI****wxyz");
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        1,
        "one STS request for 500 calls, none with no credentials"
    );
    assert!(guard.is_compromised(PARENT_ID));
}

#[tokio::test(flavor = "current_thread")]
async fn a_refresh_awaited_by_a_retry_stays_within_the_calls_total_timeout() {
    let clock = ManualClock::new();
    let mut sts = MockSts::new(&clock, time::Duration::seconds(2));
    sts.gate = Some(Arc::new(Semaphore::new(0))); // the refresh never ends
    let sts = Arc::new(sts);
    // The first attempt expires the credentials and fails with a 503.
    let (server, _) = token_service(&sts, Some(time::Duration::seconds(3))).await;
    let client = Client::builder()
        .credentials_cache(cache_of(&sts))
        .endpoint(server.uri())
        .retry(RetryPolicy::new(3, Duration::from_millis(1)))
        .total_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), client.call(&describe_regions()))
        .await
        .expect("the call must end within its total timeout");
    assert!(
        matches!(
            &outcome,
            Err(Error::Credentials { kind: CredentialsErrorKind::Unavailable, message, .. })
                if message.contains("total timeout")
        ),
        "{outcome:?}"
    );
    assert_eq!(sts.fetches(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_provider_that_never_answers_is_bounded_by_the_calls_total_timeout() {
    #[derive(Debug)]
    struct Hangs;
    impl CredentialsProvider for Hangs {
        fn provide_credentials(&self) -> CredentialsFuture<'_> {
            Box::pin(std::future::pending())
        }
    }
    let client = Client::builder()
        .credentials_provider(Hangs)
        .endpoint("http://127.0.0.1:9")
        .total_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), client.call(&describe_regions()))
        .await
        .expect("the call must end within its total timeout");
    assert!(
        matches!(
            &outcome,
            Err(Error::Credentials {
                kind: CredentialsErrorKind::Unavailable,
                ..
            })
        ),
        "{outcome:?}"
    );
}

/// A provider slower than the calls that wait for it: each call gives up (its deadline), but the
/// one refresh it started goes on and its value serves the calls after it.
#[tokio::test(start_paused = true)]
async fn a_refresh_outlives_the_calls_that_give_up_on_it() {
    #[derive(Debug)]
    struct Slow(Arc<AtomicUsize>);
    impl CredentialsProvider for Slow {
        fn provide_credentials(&self) -> CredentialsFuture<'_> {
            let fetches = Arc::clone(&self.0);
            Box::pin(async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                Ok(Credentials::new("LTAI5tSlowProvider000slow", "slow-secret"))
            })
        }
    }
    let fetches = Arc::new(AtomicUsize::new(0));
    let cache = CredentialsCache::new(Slow(Arc::clone(&fetches)));
    for _ in 0..5 {
        let gave_up =
            tokio::time::timeout(Duration::from_millis(200), cache.provide_credentials()).await;
        assert!(
            gave_up.is_err(),
            "the provider takes longer than the caller waits"
        );
    }
    let creds = tokio::time::timeout(Duration::from_secs(5), cache.provide_credentials())
        .await
        .expect("the refresh that was started ends")
        .unwrap();
    assert_eq!(creds.access_key_id(), "LTAI5tSlowProvider000slow");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch, not one per call"
    );
}
