//! Caching and refreshing credentials ahead of their expiry: see [`CredentialsCache`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    Credentials, CredentialsErrorKind, CredentialsFuture, CredentialsProvider, mask_key_id,
};
use crate::error::Error;

/// The longest a refresh run as its own task may take before it is abandoned.
const REFRESH_TASK_TIMEOUT: Duration = Duration::from_secs(120);
use crate::guard::{CompromisedKey, KeyFingerprint};

/// How long before expiry a value becomes stale, at most (the official libraries' 15 minutes).
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);
/// The first wait after a failed refresh (the waits double, jittered into their upper half).
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between failed refreshes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The clock a [`CredentialsCache`] reads, injectable for tests.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;

    /// The current time in nanoseconds since the Unix epoch (what the hot path compares; the
    /// default derives it from [`Clock::now`]).
    fn now_unix_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
}

/// The system clock (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[inline]
    fn now_unix_nanos(&self) -> i128 {
        // Cheaper than building an OffsetDateTime: no calendar arithmetic.
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => since.as_nanos() as i128,
            Err(before) => -(before.duration().as_nanos() as i128),
        }
    }
}

/// Credentials as the client uses them, with what the guard needs computed once per fetched
/// value rather than once per call.
pub(crate) struct Resolved {
    pub(crate) credentials: Credentials,
    pub(crate) fingerprint: KeyFingerprint,
    pub(crate) masked: String,
    pub(crate) parent: Option<ParentKey>,
    refresh_at: Option<OffsetDateTime>,
    /// `refresh_at` in Unix nanoseconds, for the hot path.
    refresh_at_nanos: Option<i128>,
}

/// The long-lived key temporary credentials were minted from (fingerprinted and masked only).
pub(crate) struct ParentKey {
    pub(crate) fingerprint: KeyFingerprint,
    pub(crate) masked: String,
}

impl Resolved {
    fn new(credentials: Credentials, now: OffsetDateTime, refresh_before: Duration) -> Self {
        let id = credentials.access_key_id().trim();
        let fingerprint = KeyFingerprint::of(id);
        let masked = mask_key_id(id);
        let parent = credentials
            .parent_key_id()
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != id)
            .map(|p| ParentKey {
                fingerprint: KeyFingerprint::of(p),
                masked: mask_key_id(p),
            });
        let refresh_at = credentials.expiry().map(|expiry| {
            expiry
                .checked_sub(margin(expiry - now, refresh_before))
                .unwrap_or(expiry)
        });
        Self {
            credentials,
            fingerprint,
            masked,
            parent,
            refresh_at,
            refresh_at_nanos: refresh_at.map(OffsetDateTime::unix_timestamp_nanos),
        }
    }

    #[inline]
    fn is_fresh(&self, now: OffsetDateTime) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    fn is_valid(&self, now: OffsetDateTime) -> bool {
        self.credentials.expiry().is_none_or(|expiry| now < expiry)
    }
}

/// How long before expiry a value with this remaining lifetime becomes stale: the smaller of
/// `refresh_before` and a quarter of the lifetime (zero for a value that arrived expired).
fn margin(lifetime: time::Duration, refresh_before: Duration) -> time::Duration {
    if lifetime <= time::Duration::ZERO {
        return time::Duration::ZERO;
    }
    let cap = time::Duration::try_from(refresh_before).unwrap_or(time::Duration::MAX);
    let quarter: time::Duration = lifetime / 4_i32;
    quarter.min(cap)
}

/// What every reader sees, swapped whole by the (single) refresh.
struct Snapshot {
    resolved: Option<Arc<Resolved>>,
    failure: Option<Failure>,
    /// Bumped by every refresh that ends, so that callers that waited take its outcome.
    generation: u64,
}

struct Failure {
    error: SharedError,
    streak: u32,
    retry_at: OffsetDateTime,
}

/// A refresh error kept to answer the callers that waited for it and those within the backoff.
/// Crate errors hold no secrets; only what is needed to rebuild one is kept.
enum SharedError {
    Compromised(Box<CompromisedKey>),
    Credentials {
        kind: CredentialsErrorKind,
        message: String,
    },
    Other(String),
}

impl SharedError {
    fn of(error: &Error) -> Self {
        match error {
            Error::CompromisedKey(key) => Self::Compromised(key.clone()),
            Error::Credentials { kind, message, .. } => Self::Credentials {
                kind: *kind,
                message: message.clone(),
            },
            other => Self::Other(other.to_string()),
        }
    }

    fn to_error(&self) -> Error {
        match self {
            Self::Compromised(key) => Error::CompromisedKey(key.clone()),
            Self::Credentials { kind, message } => Error::credentials_kind(*kind, message, None),
            Self::Other(message) => Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                format!("refreshing credentials failed: {message}"),
                None,
            ),
        }
    }
}

struct Shared {
    provider: Arc<dyn CredentialsProvider>,
    clock: Arc<dyn Clock>,
    refresh_before: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    state: ArcSwap<Snapshot>,
    /// Held by the one refresh in flight.
    flight: Arc<Mutex<()>>,
}

/// Builds a [`CredentialsCache`].
#[derive(Debug)]
pub struct CredentialsCacheBuilder {
    provider: Arc<dyn CredentialsProvider>,
    clock: Arc<dyn Clock>,
    refresh_before: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl CredentialsCacheBuilder {
    /// The most a value is refreshed ahead of its expiry (default 15 minutes); short-lived values
    /// are refreshed when a quarter of their lifetime is left, if that is sooner.
    pub fn refresh_before(mut self, before: Duration) -> Self {
        self.refresh_before = before;
        self
    }

    /// The clock used for staleness, expiry and backoff (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The waits between failed refreshes: `min` doubling up to `max` (defaults 1 s and 10 s),
    /// each jittered into its upper half. Both are bounded to an hour.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        const HOUR: Duration = Duration::from_secs(3600);
        self.backoff_min = min.min(HOUR);
        self.backoff_max = max.min(HOUR).max(self.backoff_min);
        self
    }

    /// Builds the cache (empty: the first call fetches).
    pub fn build(self) -> CredentialsCache {
        CredentialsCache {
            shared: Arc::new(Shared {
                provider: self.provider,
                clock: self.clock,
                refresh_before: self.refresh_before,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                state: ArcSwap::from_pointee(Snapshot {
                    resolved: None,
                    failure: None,
                    generation: 0,
                }),
                flight: Arc::new(Mutex::new(())),
            }),
        }
    }
}

/// Caches the credentials of a provider and refreshes them ahead of expiry. Cheap to clone:
/// clones share the cache.
///
/// It wraps any [`CredentialsProvider`] and is what the [`crate::Client`] asks for credentials
/// on every attempt: every client holds one, built from what was given to
/// [`crate::ClientBuilder::credentials`] or [`crate::ClientBuilder::credentials_provider`]; pass
/// a configured one with [`crate::ClientBuilder::credentials_cache`]. The rules:
///
/// * **Hot path.** A value that is not stale is returned after one lock-free load (an
///   [`arc_swap`] snapshot) and, for values that expire, one clock read: no lock, no allocation,
///   no await. Values without an expiry (long-lived AccessKeys) are never refreshed.
/// * **Staleness.** A value that expires is *stale* from `expiry - margin`, where the margin is
///   the smaller of [`CredentialsCacheBuilder::refresh_before`] (default 15 minutes, as the
///   official libraries) and a quarter of the value's lifetime as seen when it was fetched. An
///   hourly STS token is refreshed 15 minutes ahead; a 15-minute token 3 min 45 s ahead rather
///   than at once; a value that arrives already stale (or expired: clocks may disagree) is used
///   by the callers that waited for it and refreshed again on the next call.
/// * **Single flight.** One refresh runs at a time, however many calls want one. Calls holding a
///   stale value that is still valid keep using it while a refresh runs in a spawned task; only
///   calls with no valid value wait, and when the refresh they waited for ends they all take its
///   outcome (value or error) instead of starting another.
/// * **Failure.** A failed refresh is retried no sooner than a jittered backoff (1 s doubling up
///   to 10 s, each wait drawn from its upper half); calls in between get the last error (or the
///   old value, below) without a request, so a failing STS is not hammered. Providers that opt
///   in through [`CredentialsProvider::serve_stale_on_failure`] (the ECS instance role, as in the
///   official libraries) keep serving the old value until it really expires, with one warning per
///   failure streak; for the others a stale value is not served after its refresh failed, and
///   the refresh error is returned (the official rule: "the others fail once the value is stale").
/// * **Clock.** Staleness, expiry and backoff read an injectable [`Clock`]; the cache itself never
///   sleeps, so tests drive it with a manual clock (and tokio's paused time for the provider).
/// * **Background refresh** ([`CredentialsCache::spawn_background_refresh`]) is optional: it
///   refreshes stale values between calls but is never needed for correctness.
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::Credentials;
/// use aliyun_guard::credentials::{CredentialsCache, StaticProvider};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), aliyun_guard::Error> {
/// let provider = StaticProvider::new(Credentials::new("LTAI5tExampleKeyIdwxyz", "secret"));
/// let cache = CredentialsCache::builder(provider)
///     .refresh_before(Duration::from_secs(10 * 60))
///     .build();
/// let creds = cache.credentials().await?; // fetched once, then served from the cache
/// assert_eq!(creds.masked_key_id(), "LTAI****wxyz");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CredentialsCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.load();
        f.debug_struct("CredentialsCache")
            .field("provider", &self.shared.provider)
            .field(
                "current",
                &state.resolved.as_ref().map(|r| r.masked.as_str()),
            )
            .field(
                "expiry",
                &state.resolved.as_ref().and_then(|r| r.credentials.expiry()),
            )
            .field("failing", &state.failure.as_ref().map(|f| f.streak))
            .finish()
    }
}

impl CredentialsCache {
    /// A cache with the default settings around `provider`.
    pub fn new(provider: impl CredentialsProvider + 'static) -> Self {
        Self::builder(provider).build()
    }

    /// Starts configuring a cache around `provider`.
    pub fn builder(provider: impl CredentialsProvider + 'static) -> CredentialsCacheBuilder {
        Self::builder_shared(Arc::new(provider))
    }

    /// Starts configuring a cache around a shared provider.
    pub fn builder_shared(provider: Arc<dyn CredentialsProvider>) -> CredentialsCacheBuilder {
        CredentialsCacheBuilder {
            provider,
            clock: Arc::new(SystemClock),
            refresh_before: DEFAULT_REFRESH_BEFORE,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }

    /// The credentials to use now: the cached value while it is fresh, else a refreshed one
    /// (see [`CredentialsCache`] for the rules).
    pub async fn credentials(&self) -> Result<Credentials, Error> {
        if let Some(credentials) = self.fresh(|r| r.credentials.clone()) {
            return Ok(credentials);
        }
        Ok(Box::pin(self.slow()).await?.credentials.clone())
    }

    /// The credentials with their fingerprints, for the client.
    #[inline]
    pub(crate) async fn resolve(&self) -> Result<Arc<Resolved>, Error> {
        if let Some(resolved) = self.fresh(Arc::clone) {
            return Ok(resolved);
        }
        // Rare: boxed so that it does not enlarge the future of every call.
        Box::pin(self.slow()).await
    }

    /// The cached value if it is fresh (the hot path alone, never waits).
    #[inline]
    pub(crate) fn fresh_resolved(&self) -> Option<Arc<Resolved>> {
        self.fresh(Arc::clone)
    }

    /// The hot path: one lock-free load and, for values that expire, one clock read.
    #[inline]
    fn fresh<R>(&self, take: impl FnOnce(&Arc<Resolved>) -> R) -> Option<R> {
        let state = self.shared.state.load();
        let resolved = state.resolved.as_ref()?;
        match resolved.refresh_at_nanos {
            None => Some(take(resolved)),
            Some(at) if self.shared.clock.now_unix_nanos() < at => Some(take(resolved)),
            Some(_) => None,
        }
    }

    async fn slow(&self) -> Result<Arc<Resolved>, Error> {
        let shared = &self.shared;
        let state = shared.state.load_full();
        let now = shared.clock.now();
        if let Some(current) = &state.resolved {
            if current.is_fresh(now) {
                return Ok(Arc::clone(current));
            }
            let servable = current.is_valid(now)
                && (state.failure.is_none() || shared.provider.serve_stale_on_failure());
            if servable {
                let retry_allowed = state.failure.as_ref().is_none_or(|f| now >= f.retry_at);
                if retry_allowed && let Ok(flight) = Arc::clone(&shared.flight).try_lock_owned() {
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        let shared = Arc::clone(shared);
                        runtime.spawn(async move {
                            let _ = shared.refresh(flight).await;
                        });
                    } else {
                        // No runtime to refresh in the background: refresh here.
                        return match shared.refresh(flight).await {
                            Ok(fresh) => Ok(fresh),
                            Err(_) if shared.provider.serve_stale_on_failure() => {
                                Ok(Arc::clone(current))
                            }
                            Err(e) => Err(e),
                        };
                    }
                }
                // A refresh is running (or just started, or waits out its backoff): the
                // still-valid value serves meanwhile.
                return Ok(Arc::clone(current));
            }
        }
        if let Some(failure) = &state.failure
            && now < failure.retry_at
        {
            return Err(failure.error.to_error());
        }
        let seen = state.generation;
        let flight = Arc::clone(&shared.flight).lock_owned().await;
        let state = shared.state.load_full();
        if state.generation != seen {
            // A refresh ended while this call waited: take its outcome rather than start another
            // (its value is used even if it arrived stale; the next call refreshes again).
            drop(flight);
            let now = shared.clock.now();
            return match (&state.failure, &state.resolved) {
                (None, Some(resolved)) => Ok(Arc::clone(resolved)),
                (Some(_), Some(resolved))
                    if shared.provider.serve_stale_on_failure() && resolved.is_valid(now) =>
                {
                    Ok(Arc::clone(resolved))
                }
                (Some(failure), _) => Err(failure.error.to_error()),
                (None, None) => Err(Error::credentials_kind(
                    CredentialsErrorKind::Unavailable,
                    "the credentials refresh ended without a value",
                    None,
                )),
            };
        }
        // The refresh runs as its own task when a runtime is there: a caller that gives up (its
        // call's deadline) does not cancel it, so its outcome (a value, or a failure and its
        // backoff) is recorded for the callers after it, instead of every call starting a new
        // fetch that is cancelled in turn.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let owned = Arc::clone(shared);
                // Bounded, so that a provider that never answers does not hold the flight lock
                // (and every later call) forever.
                let task = runtime.spawn(async move {
                    tokio::time::timeout(REFRESH_TASK_TIMEOUT, owned.refresh(flight))
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::credentials_kind(
                                CredentialsErrorKind::Unavailable,
                                format!(
                                    "the credentials provider did not answer within {} s",
                                    REFRESH_TASK_TIMEOUT.as_secs()
                                ),
                                None,
                            ))
                        })
                });
                task.await.unwrap_or_else(|e| {
                    Err(Error::credentials_kind(
                        CredentialsErrorKind::Unavailable,
                        format!("the credentials refresh task failed: {e}"),
                        None,
                    ))
                })
            }
            Err(_) => shared.refresh(flight).await,
        }
    }

    /// Keeps values fresh between calls: every `every`, refreshes a stale value (subject to the
    /// backoff). Optional: calls refresh by themselves. The task ends when the last clone of the
    /// cache is dropped. Returns `None` outside a tokio runtime.
    pub fn spawn_background_refresh(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let weak = Arc::downgrade(&self.shared);
        let every = every.max(Duration::from_millis(10));
        Some(runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = weak.upgrade() else { break };
                let state = shared.state.load_full();
                let now = shared.clock.now();
                let stale = state.resolved.as_ref().is_some_and(|r| !r.is_fresh(now));
                let retry_allowed = state.failure.as_ref().is_none_or(|f| now >= f.retry_at);
                if stale
                    && retry_allowed
                    && let Ok(flight) = Arc::clone(&shared.flight).try_lock_owned()
                {
                    let _ = shared.refresh(flight).await;
                }
            }
        }))
    }
}

impl Shared {
    /// Fetches, validates and publishes a value, or records the failure. Runs with the flight
    /// lock held, so one at a time.
    async fn refresh(&self, flight: OwnedMutexGuard<()>) -> Result<Arc<Resolved>, Error> {
        let fetched = self.provider.provide_credentials().await.and_then(|c| {
            c.validate()?;
            Ok(c)
        });
        let now = self.clock.now();
        let previous = self.state.load_full();
        let generation = previous.generation.wrapping_add(1);
        let outcome = match fetched {
            Ok(credentials) => {
                let resolved = Arc::new(Resolved::new(credentials, now, self.refresh_before));
                if !resolved.is_fresh(now) {
                    tracing::warn!(
                        key = %resolved.masked,
                        provider = resolved.credentials.provider_name(),
                        expiry = ?resolved.credentials.expiry(),
                        "aliyun-guard: the provider returned credentials that are already stale; \
                         using them and refreshing again on the next call"
                    );
                }
                self.state.store(Arc::new(Snapshot {
                    resolved: Some(Arc::clone(&resolved)),
                    failure: None,
                    generation,
                }));
                Ok(resolved)
            }
            Err(error) => {
                let streak = previous.failure.as_ref().map_or(1, |f| f.streak + 1);
                let wait = self.backoff(streak);
                // The builder bounds the backoff to an hour, so this cannot overflow in practice;
                // a clock at the end of time retries at once rather than panic.
                let retry_at = time::Duration::try_from(wait)
                    .ok()
                    .and_then(|wait| now.checked_add(wait))
                    .unwrap_or(now);
                if streak == 1 {
                    match previous.resolved.as_ref().filter(|r| r.is_valid(now)) {
                        Some(old) if self.provider.serve_stale_on_failure() => tracing::warn!(
                            error = %error,
                            key = %old.masked,
                            expiry = ?old.credentials.expiry(),
                            "aliyun-guard: refreshing credentials failed; serving the previous \
                             credentials until they expire (retried with backoff; logged once \
                             per failure streak)"
                        ),
                        _ => tracing::warn!(
                            error = %error,
                            "aliyun-guard: refreshing credentials failed (retried with backoff; \
                             logged once per failure streak)"
                        ),
                    }
                }
                self.state.store(Arc::new(Snapshot {
                    resolved: previous.resolved.clone(),
                    failure: Some(Failure {
                        error: SharedError::of(&error),
                        streak,
                        retry_at,
                    }),
                    generation,
                }));
                Err(error)
            }
        };
        drop(flight);
        outcome
    }

    /// The wait after the `streak`-th failure in a row: `min × 2^(streak-1)` capped at `max`,
    /// drawn uniformly from its upper half.
    fn backoff(&self, streak: u32) -> Duration {
        let exp = streak.saturating_sub(1).min(20);
        let full = self
            .backoff_min
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let half = full / 2;
        let jitter = fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter)
    }
}

impl CredentialsProvider for CredentialsCache {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.credentials())
    }

    fn serve_stale_on_failure(&self) -> bool {
        self.shared.provider.serve_stale_on_failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_quarter_of_short_lifetimes_and_at_most_refresh_before() {
        let m = |secs: i64| margin(time::Duration::seconds(secs), DEFAULT_REFRESH_BEFORE);
        assert_eq!(m(3600), time::Duration::minutes(15));
        assert_eq!(m(6 * 3600), time::Duration::minutes(15));
        assert_eq!(m(900), time::Duration::seconds(225));
        assert_eq!(m(2), time::Duration::milliseconds(500));
        assert_eq!(m(0), time::Duration::ZERO);
        assert_eq!(m(-5), time::Duration::ZERO);
        assert_eq!(
            margin(time::Duration::hours(1), Duration::from_secs(60)),
            time::Duration::minutes(1)
        );
    }

    #[test]
    fn resolved_computes_fingerprints_once_and_skips_a_parent_equal_to_the_key() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let creds = Credentials::new("STS.NTx9YourTemporaryKeyId", "s")
            .with_security_token("t")
            .with_parent_key_id("LTAI5tParentKeyId000wxyz")
            .with_expiry(now + time::Duration::hours(1));
        let r = Resolved::new(creds, now, DEFAULT_REFRESH_BEFORE);
        assert_eq!(r.masked, "STS.****eyId");
        assert_eq!(
            r.fingerprint,
            KeyFingerprint::of("STS.NTx9YourTemporaryKeyId")
        );
        let parent = r.parent.as_ref().unwrap();
        assert_eq!(parent.masked, "LTAI****wxyz");
        assert_eq!(
            parent.fingerprint,
            KeyFingerprint::of("LTAI5tParentKeyId000wxyz")
        );
        assert_eq!(r.refresh_at, Some(now + time::Duration::minutes(45)));
        let same = Credentials::new("LTAI5tSameKeyId00000wxyz", "s")
            .with_parent_key_id("LTAI5tSameKeyId00000wxyz");
        assert!(
            Resolved::new(same, now, DEFAULT_REFRESH_BEFORE)
                .parent
                .is_none()
        );
    }

    #[test]
    fn hostile_expiries_do_not_panic() {
        let now = OffsetDateTime::now_utc();
        for expiry in [
            time::macros::datetime!(-9999-01-01 0:00 UTC),
            time::macros::datetime!(9999-12-31 23:59:59.999999999 UTC),
            time::PrimitiveDateTime::MIN.assume_utc(),
            time::PrimitiveDateTime::MAX.assume_utc(),
        ] {
            let creds = Credentials::new("LTAI5tExampleKeyIdwxyz", "s").with_expiry(expiry);
            let r = Resolved::new(creds, now, Duration::MAX);
            assert_eq!(r.is_fresh(now), expiry > now);
        }
        let cache = CredentialsCache::builder(Credentials::new("id", "s"))
            .backoff(Duration::MAX, Duration::MAX)
            .build();
        assert!(cache.shared.backoff(u32::MAX) <= Duration::from_secs(3600));
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let cache = CredentialsCache::builder(Credentials::new("id", "s")).build();
        for streak in 1..40 {
            let wait = cache.shared.backoff(streak);
            let full = Duration::from_secs(1)
                .saturating_mul(1 << (streak - 1).min(20))
                .min(Duration::from_secs(10));
            assert!(wait >= full / 2 && wait <= full, "{streak}: {wait:?}");
        }
    }
}
