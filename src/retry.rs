//! Which failures are retried, and how long to wait between attempts.
//!
//! The rule (documented in the README's "Retries" section): a failure that shows the request was
//! not executed is always retried; an ambiguous failure, after which the request may have run, is
//! retried only for idempotent requests ([`crate::RpcRequest::is_idempotent`]); anything else is
//! final.
//!
//! [`run`] is the retry loop itself: it counts attempts, classifies each failure, waits with
//! exponential backoff and jitter while the call's budget allows, and logs what it does. The
//! caller hands it one attempt (a closure called anew for every attempt: fresh credentials, a
//! fresh signature) and the clock to wait with ([`Sleep`]) and the randomness to jitter with
//! ([`Jitter`]), so that tests drive it on tokio's paused clock with a fixed jitter.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{Error, ResponseFault, THROTTLING_CODES, TimeoutPhase};

/// How the retry loop waits between attempts.
pub(crate) trait Sleep: Send + Sync {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Waits on tokio's clock (which tests may pause and advance).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Where in its allowed range a wait falls.
pub(crate) trait Jitter: Send + Sync {
    /// A duration between zero and `max`, both included.
    fn up_to(&self, max: Duration) -> Duration;
}

/// Uniform jitter from `fastrand`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastrandJitter;

impl Jitter for FastrandJitter {
    fn up_to(&self, max: Duration) -> Duration {
        let nanos = fastrand::u64(0..=max.as_nanos().min(u64::MAX as u128) as u64);
        Duration::from_nanos(nanos)
    }
}

/// One call's retry settings: the policy, whether the request may run twice, the call's
/// deadline (on tokio's clock), how to wait and jitter, and what to name in logs.
pub(crate) struct Retry<'a, S = TokioSleep, J = FastrandJitter> {
    pub(crate) policy: &'a RetryPolicy,
    /// Whether an ambiguous failure (the request may have run) may be retried.
    pub(crate) idempotent: bool,
    /// No wait is started that would end at or past it.
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) sleep: S,
    pub(crate) jitter: J,
    /// The action, for logs.
    pub(crate) action: &'a str,
    /// The host, for logs.
    pub(crate) host: &'a str,
}

/// Runs `attempt` (called with the attempt's number, from 1) until it succeeds, fails in a way
/// that is not retried ([`classify`], [`should_retry`]), the policy's attempts are spent, or the
/// next wait would end past the deadline; returns the last result.
///
/// Each attempt is a new call of the closure, so that everything an attempt needs afresh
/// (credentials, nonce, timestamp, signature) is made anew.
pub(crate) async fn run<T, F, Fut, S, J>(
    retry: &Retry<'_, S, J>,
    mut attempt: F,
) -> Result<T, Error>
where
    S: Sleep,
    J: Jitter,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let error = match attempt(attempts).await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let failure = classify(&error);
        if !should_retry(failure, retry.idempotent) || attempts >= retry.policy.max_attempts {
            return Err(error);
        }
        let throttled = matches!(failure, Failure::NotExecuted { throttled: true });
        let wait = retry.policy.delay_with(attempts, throttled, &retry.jitter);
        if tokio::time::Instant::now()
            .checked_add(wait)
            .is_none_or(|end| end >= retry.deadline)
        {
            tracing::debug!(
                action = retry.action,
                attempts,
                "aliyun-guard: no time left in the budget for another attempt"
            );
            return Err(error);
        }
        tracing::debug!(
            action = retry.action,
            host = %retry.host,
            attempt = attempts,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "aliyun-guard: retrying"
        );
        retry.sleep.sleep(wait).await;
    }
}

/// What a failed attempt says about whether the action ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request cannot have been executed: no connection (refused, DNS, TLS), a connect
    /// timeout, or a throttling / `ServiceUnavailable` answer given before running the action.
    NotExecuted {
        /// A throttling answer (waits use the throttling base delay).
        throttled: bool,
    },
    /// The request may have run: a connection lost mid-exchange, a read timeout, a 5xx answer
    /// without a "not executed" code, an unparseable 5xx answer.
    Ambiguous,
    /// Retrying cannot help or is not wanted: 4xx answers, leak answers, bad bodies under a
    /// non-5xx status, a body over the cap, redirects, the budget spent, local errors.
    Final,
}

/// Classifies the error of one attempt.
pub(crate) fn classify(error: &Error) -> Failure {
    match error {
        Error::Connect { .. } => Failure::NotExecuted { throttled: false },
        Error::Timeout { phase, .. } => match phase {
            TimeoutPhase::Connect => Failure::NotExecuted { throttled: false },
            TimeoutPhase::Response => Failure::Ambiguous,
            _ => Failure::Final,
        },
        Error::Transport { .. } => Failure::Ambiguous,
        Error::Api(e) if THROTTLING_CODES.contains(&e.code.as_str()) => {
            Failure::NotExecuted { throttled: true }
        }
        Error::Api(e) if e.status >= 500 => Failure::Ambiguous,
        Error::UnexpectedResponse(e)
            if e.status >= 500 && !matches!(e.fault, ResponseFault::TooLarge { .. }) =>
        {
            Failure::Ambiguous
        }
        _ => Failure::Final,
    }
}

/// Whether a failure of `kind` is retried for a request that is `idempotent` or not
/// ([`crate::RpcRequest::is_idempotent`], [`crate::RoaRequest::is_idempotent`]; attempts and time
/// budget aside).
pub(crate) fn should_retry(kind: Failure, idempotent: bool) -> bool {
    match kind {
        Failure::NotExecuted { .. } => true,
        Failure::Ambiguous => idempotent,
        Failure::Final => false,
    }
}

/// Whether an action only reads: `Describe*`, `List*`, `Get*`, `Query*`, `Check*` (the prefix
/// followed by an upper-case letter or a digit, as in `DescribeInstances`).
pub(crate) fn is_read_only(action: &str) -> bool {
    ["Describe", "List", "Get", "Query", "Check"]
        .iter()
        .any(|prefix| {
            action.strip_prefix(prefix).is_some_and(|rest| {
                rest.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
        })
}

/// Bounded retries with exponential backoff and jitter.
///
/// Failures that show the request was not executed (connection refused, connect timeout,
/// throttling and `ServiceUnavailable` answers) are always retried; ambiguous ones (a connection
/// lost mid-response, a read timeout, a 5xx answer) only for idempotent requests (read-only
/// actions, a `ClientToken`, or [`crate::RpcRequest::idempotent`]). Every attempt is signed anew,
/// with a fresh nonce and timestamp. The whole call, waits included, stays within the client's total
/// timeout: a wait that would end past it is not started.
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::RetryPolicy;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 3);
/// let wait = policy.delay(2, false);
/// assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Base delay after a 5xx or connection failure; doubled per attempt.
    pub base_delay: Duration,
    /// Base delay after throttling; doubled per attempt.
    pub throttle_base_delay: Duration,
    /// Longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            throttle_base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    ///
    /// ```
    /// use aliyun_guard::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().max_attempts, 1);
    /// ```
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A policy with `max_attempts` attempts and the given base delay for both kinds of failure.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::RetryPolicy;
    /// let policy = RetryPolicy::new(5, Duration::from_millis(200));
    /// assert_eq!(policy.max_attempts, 5);
    /// ```
    pub fn new(max_attempts: u32, base_delay: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay,
            throttle_base_delay: base_delay,
            max_delay: Duration::from_secs(20),
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): `base × 2^(attempt-1)`, capped at
    /// `max_delay`, then jittered uniformly into its upper half.
    pub fn delay(&self, attempt: u32, throttled: bool) -> Duration {
        self.delay_with(attempt, throttled, &FastrandJitter)
    }

    /// [`RetryPolicy::delay`] with the jitter drawn from `jitter`.
    pub(crate) fn delay_with(
        &self,
        attempt: u32,
        throttled: bool,
        jitter: &dyn Jitter,
    ) -> Duration {
        let base = if throttled {
            self.throttle_base_delay
        } else {
            self.base_delay
        };
        let exp = attempt.saturating_sub(1).min(20);
        let full = base.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = full / 2;
        half + jitter.up_to(half).min(half)
    }
}

// The defaults of every call the crate makes (the client's and the credential services'),
// re-exported by the client and the crate root.

/// Default connect timeout, as the official SDKs.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default read timeout, as the official SDKs.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default budget of one call, retries and waits included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on a response body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The `User-Agent` sent.
pub const USER_AGENT_VALUE: &str = concat!("aliyun-guard/", env!("CARGO_PKG_VERSION"), " (Rust)");

/// Timeouts of this length or more mean "no limit" (about 30 years: far beyond any call, and
/// still addable to any clock, so that `Duration::MAX` never overflows a deadline).
pub const UNLIMITED: Duration = Duration::from_secs(30 * 365 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, UnexpectedResponse};
    use crate::request::RpcRequest;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(Box::new(ApiError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
            host_id: None,
            recommend: None,
            action: "A".into(),
            attempts: 1,
            signature_diagnosis: None,
            access_denied_detail: None,
        }))
    }

    fn unexpected(status: u16, fault: ResponseFault) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status,
            fault,
            snippet: String::new(),
            host: "h".into(),
            action: "A".into(),
            request_id: None,
            attempts: 1,
        }))
    }

    fn timeout(phase: TimeoutPhase) -> Error {
        Error::Timeout {
            host: "h".into(),
            action: "A".into(),
            phase,
            attempts: 1,
            source: None,
        }
    }

    /// (error, its class, retried for RunInstances, retried for DescribeInstances)
    #[test]
    fn the_retry_table() {
        let not_executed = Failure::NotExecuted { throttled: false };
        let throttled = Failure::NotExecuted { throttled: true };
        let cases: Vec<(&str, Error, Failure, bool, bool)> = vec![
            (
                "connect timeout",
                timeout(TimeoutPhase::Connect),
                not_executed,
                true,
                true,
            ),
            (
                "read timeout",
                timeout(TimeoutPhase::Response),
                Failure::Ambiguous,
                false,
                true,
            ),
            (
                "budget spent",
                timeout(TimeoutPhase::Total),
                Failure::Final,
                false,
                false,
            ),
            (
                "throttling 400",
                api(400, "Throttling.User"),
                throttled,
                true,
                true,
            ),
            (
                "throttling 429",
                api(429, "Throttling"),
                throttled,
                true,
                true,
            ),
            (
                "unavailable 503",
                api(503, "ServiceUnavailable"),
                throttled,
                true,
                true,
            ),
            (
                "internal 500",
                api(500, "InternalError"),
                Failure::Ambiguous,
                false,
                true,
            ),
            (
                "unknown 503",
                api(503, "Whatever"),
                Failure::Ambiguous,
                false,
                true,
            ),
            (
                "invalid 400",
                api(400, "InvalidParameter"),
                Failure::Final,
                false,
                false,
            ),
            (
                "forbidden 403",
                api(403, "Forbidden"),
                Failure::Final,
                false,
                false,
            ),
            (
                "html 502",
                unexpected(502, ResponseFault::Html),
                Failure::Ambiguous,
                false,
                true,
            ),
            (
                "empty 504",
                unexpected(504, ResponseFault::Empty),
                Failure::Ambiguous,
                false,
                true,
            ),
            (
                "too large 500",
                unexpected(500, ResponseFault::TooLarge { limit: 1 }),
                Failure::Final,
                false,
                false,
            ),
            (
                "bad json 200",
                unexpected(200, ResponseFault::InvalidJson),
                Failure::Final,
                false,
                false,
            ),
            (
                "html 403",
                unexpected(403, ResponseFault::Html),
                Failure::Final,
                false,
                false,
            ),
            (
                "invalid request",
                Error::InvalidRequest("x".into()),
                Failure::Final,
                false,
                false,
            ),
        ];
        let write = RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
        let read = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
        let tokened = write.clone().param("ClientToken", "123e4567");
        let marked = write.clone().idempotent(true);
        let unmarked = read.clone().idempotent(false);
        for (label, error, class, for_write, for_read) in cases {
            let kind = classify(&error);
            assert_eq!(kind, class, "{label}");
            assert_eq!(
                should_retry(kind, write.is_idempotent()),
                for_write,
                "{label} RunInstances"
            );
            assert_eq!(
                should_retry(kind, read.is_idempotent()),
                for_read,
                "{label} DescribeInstances"
            );
            assert_eq!(
                should_retry(kind, tokened.is_idempotent()),
                for_read,
                "{label} with ClientToken"
            );
            assert_eq!(
                should_retry(kind, marked.is_idempotent()),
                for_read,
                "{label} marked idempotent"
            );
            assert_eq!(
                should_retry(kind, unmarked.is_idempotent()),
                for_write,
                "{label} marked not idempotent"
            );
        }
    }

    #[test]
    fn read_only_actions() {
        for action in [
            "DescribeInstances",
            "ListUsers",
            "GetAccountAlias",
            "QueryX",
            "CheckY",
            "Describe2",
        ] {
            assert!(is_read_only(action), "{action}");
        }
        for action in [
            "RunInstances",
            "Describe",
            "Getaway",
            "Listen",
            "describeInstances",
            "",
        ] {
            assert!(!is_read_only(action), "{action}");
        }
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d1 = p.delay(1, false);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3, true);
            assert!(d3 >= Duration::from_millis(1000) && d3 <= Duration::from_millis(2000));
            let big = p.delay(40, true);
            assert!(big <= Duration::from_secs(20) && big >= Duration::from_secs(10));
        }
    }

    /// The jitter at either end of its range.
    struct FixedJitter {
        full: bool,
    }

    impl Jitter for FixedJitter {
        fn up_to(&self, max: Duration) -> Duration {
            if self.full { max } else { Duration::ZERO }
        }
    }

    /// Waits on tokio's (paused) clock and records every wait asked for.
    #[derive(Clone, Default)]
    struct RecordingSleep(std::sync::Arc<std::sync::Mutex<Vec<Duration>>>);

    impl RecordingSleep {
        fn waits(&self) -> Vec<Duration> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Sleep for RecordingSleep {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            self.0.lock().unwrap().push(duration);
            Box::pin(tokio::time::sleep(duration))
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    struct Outcome {
        result: Result<u32, Error>,
        /// The attempt numbers the closure was called with, in order.
        calls: Vec<u32>,
        waits: Vec<Duration>,
        /// Time passed on tokio's clock.
        elapsed: Duration,
    }

    /// Runs the loop on the paused clock with attempts that fail with `fail(attempt)` (or
    /// succeed, returning the attempt number, where it gives `None`).
    async fn drive(
        policy: RetryPolicy,
        idempotent: bool,
        budget: Duration,
        full_jitter: bool,
        fail: impl Fn(u32) -> Option<Error>,
    ) -> Outcome {
        let sleep = RecordingSleep::default();
        let start = tokio::time::Instant::now();
        let retry = Retry {
            policy: &policy,
            idempotent,
            deadline: start + budget,
            sleep: sleep.clone(),
            jitter: FixedJitter { full: full_jitter },
            action: "DescribeInstances",
            host: "ecs.aliyuncs.com",
        };
        let calls = std::sync::Mutex::new(Vec::new());
        let result = run(&retry, |attempt| {
            calls.lock().unwrap().push(attempt);
            let outcome = fail(attempt);
            async move {
                match outcome {
                    Some(error) => Err(error),
                    None => Ok(attempt),
                }
            }
        })
        .await;
        Outcome {
            result,
            calls: calls.into_inner().unwrap(),
            waits: sleep.waits(),
            elapsed: start.elapsed(),
        }
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_per_attempt_within_the_jitter_range() {
        let policy = RetryPolicy::new(4, MS(100));
        let failing = |_| Some(timeout(TimeoutPhase::Connect));
        // Full jitter: the whole exponential delay; none: its lower half.
        let full = drive(policy, false, LONG, true, failing).await;
        assert_eq!(full.waits, [MS(100), MS(200), MS(400)]);
        assert_eq!(full.calls, [1, 2, 3, 4]);
        assert_eq!(full.elapsed, MS(700), "the loop waited exactly its backoff");
        assert!(matches!(
            full.result,
            Err(Error::Timeout {
                phase: TimeoutPhase::Connect,
                ..
            })
        ));
        let none = drive(policy, false, LONG, false, failing).await;
        assert_eq!(none.waits, [MS(50), MS(100), MS(200)]);
        assert_eq!(none.elapsed, MS(350));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_capped_at_the_longest_wait() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: MS(300),
            throttle_base_delay: MS(300),
            max_delay: MS(1000),
        };
        let out = drive(policy, true, LONG, true, |_| {
            Some(api(500, "InternalError"))
        })
        .await;
        assert_eq!(out.waits, [MS(300), MS(600), MS(1000), MS(1000)]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_waits_from_its_own_base() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: MS(100),
            throttle_base_delay: MS(500),
            max_delay: Duration::from_secs(20),
        };
        let throttled = drive(policy, false, LONG, true, |_| {
            Some(api(400, "Throttling.User"))
        })
        .await;
        assert_eq!(throttled.waits, [MS(500), MS(1000)]);
        assert_eq!(throttled.elapsed, MS(1500));
        let unavailable = drive(policy, true, LONG, true, |_| {
            Some(api(500, "InternalError"))
        })
        .await;
        assert_eq!(unavailable.waits, [MS(100), MS(200)]);
        assert_eq!(unavailable.elapsed, MS(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_would_end_past_the_deadline_is_not_started() {
        let policy = RetryPolicy::new(10, MS(100));
        // Waits of 100, 200, 400 ms: the third would end at 700 ms, past the 500 ms budget.
        let out = drive(policy, true, MS(500), true, |_| Some(api(503, "Whatever"))).await;
        assert_eq!(out.waits, [MS(100), MS(200)]);
        assert_eq!(out.calls, [1, 2, 3]);
        assert_eq!(out.elapsed, MS(300));
        assert!(matches!(out.result, Err(Error::Api(_))));
        // A wait ending exactly at the deadline is not started either.
        let out = drive(policy, true, MS(100), true, |_| Some(api(503, "Whatever"))).await;
        assert_eq!(out.calls, [1]);
        assert!(out.waits.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_may_have_run_is_retried_only_when_idempotent() {
        let policy = RetryPolicy::new(3, MS(100));
        for ambiguous in [
            api(500, "InternalError"),
            timeout(TimeoutPhase::Response),
            unexpected(502, ResponseFault::Html),
        ] {
            let label = ambiguous.to_string();
            let once = drive(policy, false, LONG, true, |_| Some(clone_error(&ambiguous))).await;
            assert_eq!(once.calls, [1], "{label}: not idempotent");
            assert!(once.waits.is_empty(), "{label}");
            assert_eq!(once.elapsed, Duration::ZERO, "{label}");
            let retried = drive(policy, true, LONG, true, |_| Some(clone_error(&ambiguous))).await;
            assert_eq!(retried.calls, [1, 2, 3], "{label}: idempotent");
        }
        // Not executed (connect failure, throttling): retried either way.
        let out = drive(policy, false, LONG, true, |_| {
            Some(timeout(TimeoutPhase::Connect))
        })
        .await;
        assert_eq!(out.calls, [1, 2, 3]);
        // Final failures: never retried.
        let out = drive(policy, true, LONG, true, |_| {
            Some(api(400, "InvalidParameter"))
        })
        .await;
        assert_eq!(out.calls, [1]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_attempt_is_a_new_call_of_the_closure() {
        let policy = RetryPolicy::new(5, MS(100));
        let out = drive(policy, false, LONG, true, |attempt| {
            (attempt < 3).then(|| timeout(TimeoutPhase::Connect))
        })
        .await;
        assert_eq!(out.calls, [1, 2, 3]);
        assert_eq!(out.result.unwrap(), 3, "the third attempt's own answer");
        assert_eq!(out.waits, [MS(100), MS(200)]);
        // What an attempt builds (here a signature over a fresh nonce) is built anew each time.
        let signatures = std::sync::Mutex::new(Vec::new());
        let retry = Retry {
            policy: &policy,
            idempotent: true,
            deadline: tokio::time::Instant::now() + LONG,
            sleep: TokioSleep,
            jitter: FixedJitter { full: true },
            action: "A",
            host: "h",
        };
        let result: Result<(), Error> = run(&retry, |attempt| {
            signatures
                .lock()
                .unwrap()
                .push(format!("nonce-{}", fastrand::u64(..)));
            async move {
                match attempt {
                    1 | 2 => Err(api(503, "ServiceUnavailable")),
                    _ => Ok(()),
                }
            }
        })
        .await;
        result.unwrap();
        let signatures = signatures.into_inner().unwrap();
        assert_eq!(signatures.len(), 3);
        assert!(signatures[0] != signatures[1] && signatures[1] != signatures[2]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_attempt_when_retries_are_off_or_the_first_succeeds() {
        let out = drive(RetryPolicy::none(), true, LONG, true, |_| {
            Some(timeout(TimeoutPhase::Connect))
        })
        .await;
        assert_eq!(out.calls, [1]);
        let out = drive(RetryPolicy::default(), true, LONG, true, |_| None).await;
        assert_eq!(out.calls, [1]);
        assert!(out.waits.is_empty());
        assert_eq!(out.result.unwrap(), 1);
    }

    /// A copy of the test errors above (Error is not Clone).
    fn clone_error(error: &Error) -> Error {
        match error {
            Error::Api(e) => api(e.status, &e.code),
            Error::Timeout { phase, .. } => timeout(*phase),
            Error::UnexpectedResponse(e) => unexpected(e.status, e.fault.clone()),
            other => panic!("not a test error: {other}"),
        }
    }
}
