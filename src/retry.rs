//! Which failures are retried, and how long to wait between attempts.
//!
//! The rule (documented in the README's "Retries" section): a failure that shows the request was
//! not executed is always retried; an ambiguous failure, after which the request may have run, is
//! retried only for idempotent requests ([`crate::RpcRequest::is_idempotent`]); anything else is
//! final.

use std::time::Duration;

use crate::error::{Error, ResponseFault, THROTTLING_CODES, TimeoutPhase};

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
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A policy with `max_attempts` attempts and the given base delay for both kinds of failure.
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
        let base = if throttled {
            self.throttle_base_delay
        } else {
            self.base_delay
        };
        let exp = attempt.saturating_sub(1).min(20);
        let full = base.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = full / 2;
        let jitter_nanos = fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_nanos)
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
}
