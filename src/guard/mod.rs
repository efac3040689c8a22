//! The guard: protection against AccessKeys that Alibaba has found exposed.
//!
//! When Alibaba Cloud finds an AccessKey in public it blocks high-risk operations for it and
//! answers `Forbidden : There is a risk of leakage of this AccessKey.` Every call through
//! [`crate::Client`] passes the guard, which
//!
//! * recognises that answer in every form and turns it into
//!   [`CompromisedKey`], an error carrying [`REMEDIATION`] guidance, never retried;
//! * remembers the key (by fingerprint; persisted in a state directory when one is set, see
//!   [`GuardBuilder::state_dir`]) and learns actions missing from its table;
//! * before sending, refuses calls that the [`RestrictionTable`] says are blocked for a key known
//!   to be compromised, without a network request, according to its [`LeakPolicy`];
//! * calls an operator hook once per newly detected key.
//!
//! ```
//! use aliyun_guard::guard::{Guard, KeyFingerprint, LeakPolicy, Verdict};
//!
//! let guard = Guard::builder().policy(LeakPolicy::BlockRestricted).build().unwrap();
//! guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice of 2026-11-20").unwrap();
//! let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
//! assert!(matches!(guard.verdict(&key, "Ecs", "2014-05-26", "RunInstances"), Verdict::Refuse { .. }));
//! assert!(matches!(guard.verdict(&key, "Ecs", "2014-05-26", "DescribeRegions"), Verdict::AllowCompromised));
//! ```

pub(crate) mod detect;
mod feed;
#[cfg(feature = "redis")]
mod redis_store;
mod remediation;
mod state_store;
pub(crate) mod store;
pub(crate) mod table;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;
use time::OffsetDateTime;

pub(crate) use detect::{detect_body, fields_are_leak, value_is_leak};
pub use feed::{LeakFeed, LeakFeedHandle, SECURITY_CENTER_ENDPOINTS};
pub(crate) use remediation::PARENT_KEY_ADVICE;
pub use remediation::{Link, REMEDIATION, Remediation, Step};
pub use store::{ClearedKey, Evidence, EvidenceSource, KeyFingerprint, KeyRecord, LearnedEntry};
pub use table::{Actions, Coverage, Restriction, RestrictionTable};

use crate::credentials::mask_key_id;
use crate::error::Error;
use state_store::{Change, DirStore, Pushed, StateStore};
use store::{State, StateFile, StoreError, StoreOptions};

/// The environment variable naming the state directory of the examples.
pub const STATE_DIR_ENV: &str = "ALIYUN_GUARD_STATE_DIR";

/// The environment variable naming the Redis URL of the examples (feature `redis`).
pub const REDIS_URL_ENV: &str = "ALIYUN_GUARD_REDIS_URL";

/// The environment variable naming the Redis key prefix of the examples (feature `redis`).
pub const REDIS_PREFIX_ENV: &str = "ALIYUN_GUARD_REDIS_PREFIX";

/// Default longest wait for the state directory's lock ([`GuardBuilder::lock_timeout`]).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Default age after which learned table entries are dropped ([`GuardBuilder::learned_ttl`]).
pub const DEFAULT_LEARNED_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What the guard does with calls made with a key known to be compromised.
///
/// ```
/// use aliyun_guard::LeakPolicy;
/// use aliyun_guard::guard::Guard;
///
/// // Strictest: refuse every call made with a key known to be compromised.
/// let guard = Guard::builder().policy(LeakPolicy::BlockAll).build()?;
/// assert_eq!(guard.policy(), LeakPolicy::BlockAll);
/// assert_eq!(Guard::new().policy(), LeakPolicy::BlockRestricted);
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LeakPolicy {
    /// Refuse calls on the restriction table; let the others go out, with a warning (default).
    #[default]
    BlockRestricted,
    /// Refuse every call with the key.
    BlockAll,
    /// Never refuse locally; still classify answers and remember keys.
    ObserveOnly,
}

/// The former name of [`LeakPolicy`] (ambiguous beside [`crate::RetryPolicy`]).
#[deprecated(note = "renamed to `LeakPolicy`")]
pub type Policy = LeakPolicy;

/// How a [`CompromisedKey`] was found.
///
/// ```
/// use aliyun_guard::guard::{Detection, Guard, KeyFingerprint, Verdict};
///
/// let guard = Guard::new();
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice")?;
/// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
/// let leak = guard.refusal(&key, true, "Ram", "2015-05-01", "CreateUser").unwrap();
/// assert_eq!(leak.detection, Detection::RefusedLocally);
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detection {
    /// Alibaba answered the call with the leak error.
    ServerAnswer,
    /// The guard refused the call before sending it.
    RefusedLocally,
    /// Security Center's leak list reported the key ([`LeakFeed`]), before any call was refused.
    SecurityCenter,
}

/// The AccessKey is under Alibaba's leak protection, or known to be compromised.
///
/// Its `Display` is guidance an operator can act on; [`CompromisedKey::remediation`] holds the same
/// as data. It holds no secret, and the key id only masked.
///
/// ```no_run
/// use aliyun_guard::{Client, CompromisedKey, Error, RpcRequest};
///
/// async fn call(client: &Client) -> Result<(), Error> {
///     let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances");
///     match client.call(&request).await {
///         Err(Error::CompromisedKey(leak)) => {
///             let leak: &CompromisedKey = &leak;
///             // Guidance for a person: which key to rotate and how.
///             eprintln!("{leak}");
///             eprintln!("rotate {} first", leak.key_to_rotate());
///             Err(Error::CompromisedKey(Box::new(leak.clone())))
///         }
///         other => other.map(drop),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompromisedKey {
    /// The key id, masked (`LTAI****wxyz`).
    pub masked_key_id: String,
    /// Product code of the call.
    pub product: String,
    /// API version of the call.
    pub version: String,
    /// Action of the call.
    pub action: String,
    /// HTTP status of the answer (`None` when refused before sending).
    pub status: Option<u16>,
    /// Request id of the answer.
    pub request_id: Option<String>,
    /// Host id of the answer.
    pub host_id: Option<String>,
    /// The server's error code (`Forbidden`).
    pub server_code: Option<String>,
    /// The server's message.
    pub server_message: Option<String>,
    /// Answered by the server, or refused before sending.
    pub detection: Detection,
    /// Whether the action is on the restriction table (after learning).
    pub on_restriction_table: bool,
    /// When the key was first seen compromised.
    pub first_seen: OffsetDateTime,
    /// What to do.
    pub remediation: &'static Remediation,
    /// For temporary (STS) credentials, the long-lived AccessKey they were minted from, masked:
    /// the key to rotate. It is marked compromised along with the temporary key.
    pub parent_masked_key_id: Option<String>,
}

impl CompromisedKey {
    /// The key to rotate, masked: the long-lived parent of temporary credentials, else the key
    /// of the call.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, KeyFingerprint};
    ///
    /// let guard = Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
    /// let leak = guard.refusal(&key, false, "Ecs", "2014-05-26", "DescribeInstances").unwrap();
    /// assert_eq!(leak.key_to_rotate(), "LTAI****wxyz");
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn key_to_rotate(&self) -> &str {
        self.parent_masked_key_id
            .as_deref()
            .unwrap_or(&self.masked_key_id)
    }
}

impl fmt::Display for CompromisedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = format!("{} {} {}", self.product, self.version, self.action);
        let key = match &self.parent_masked_key_id {
            Some(parent) => format!(
                "{} (temporary credentials minted from the long-lived AccessKey {parent})",
                self.masked_key_id
            ),
            None => self.masked_key_id.clone(),
        };
        match self.detection {
            Detection::ServerAnswer => write!(
                f,
                "AccessKey {} is compromised: Alibaba Cloud answered {call} with \"{}: {}\" \
                 (HTTP {}, request id {})",
                key,
                self.server_code.as_deref().unwrap_or("Forbidden"),
                self.server_message
                    .as_deref()
                    .unwrap_or("There is a risk of leakage of this AccessKey."),
                self.status
                    .map_or_else(|| "?".to_string(), |s| s.to_string()),
                self.request_id.as_deref().unwrap_or("unknown"),
            )?,
            Detection::SecurityCenter => write!(
                f,
                "AccessKey {key} is compromised: Security Center found it exposed in public \
                 (DescribeAccesskeyLeakList)"
            )?,
            Detection::RefusedLocally => write!(
                f,
                "AccessKey {} is compromised: refused {call} before sending, because Alibaba \
                 Cloud blocks {} for keys under leak protection",
                key,
                if self.on_restriction_table {
                    "this operation"
                } else {
                    "operations"
                },
            )?,
        }
        let first_seen = self
            .first_seen
            .replace_nanosecond(0)
            .unwrap_or(self.first_seen)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        writeln!(f, "; first seen compromised {first_seen}.")?;
        if let Some(parent) = &self.parent_masked_key_id {
            writeln!(
                f,
                "Rotate the long-lived AccessKey {parent}: {PARENT_KEY_ADVICE}"
            )?;
        }
        write!(f, "{}", self.remediation)
    }
}

impl std::error::Error for CompromisedKey {}

/// The guard's decision before a call is sent.
///
/// ```
/// use aliyun_guard::guard::{Guard, KeyFingerprint, Verdict};
///
/// let guard = Guard::new();
/// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
/// assert!(matches!(guard.verdict(&key, "Ram", "2015-05-01", "CreateUser"), Verdict::Allow));
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
/// assert!(matches!(
///     guard.verdict(&key, "Ram", "2015-05-01", "CreateUser"),
///     Verdict::Refuse { on_table: true, .. }
/// ));
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verdict {
    /// The key is not known to be compromised.
    Allow,
    /// The key is compromised but the policy lets this call out (a warning is logged once per key).
    AllowCompromised,
    /// Refuse the call ([`Guard::refusal`] builds the error).
    #[non_exhaustive]
    Refuse {
        /// Whether the action is on the restriction table.
        on_table: bool,
    },
}

type Callback = Arc<dyn Fn(&CompromisedEvent) + Send + Sync>;
type AsyncCallback = Arc<
    dyn Fn(CompromisedEvent) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Who saw a compromised key first, as an [`CompromisedEvent`] says.
///
/// ```
/// use aliyun_guard::guard::{FirstSighting, Guard};
///
/// let guard = Guard::builder()
///     .on_compromised_event(|event| {
///         if event.first != FirstSighting::FleetUnknown {
///             eprintln!("page the on-call: {}", event.key.key_to_rotate());
///         }
///     })
///     .build()?;
/// # drop(guard);
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirstSighting {
    /// No fleet store (memory or a state directory): this process saw it first; other processes
    /// sharing a state directory notify on their own.
    ThisProcess,
    /// This host saw it first in the whole fleet (it won the claim in Redis): no other host
    /// calls its hook for this key.
    ThisHostFirstInFleet,
    /// The fleet store could not be asked (Redis down): the hook is called anyway, so another
    /// host may also report the key.
    FleetUnknown,
}

/// A key newly detected compromised, as the hooks receive it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use aliyun_guard::guard::Guard;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let guard = Guard::builder()
///     .on_compromised_event(move |event| {
///         sink.lock().unwrap().push(event.fingerprint.to_hex());
///     })
///     .build()?;
/// // Marking a key by hand is no detection: hooks fire on leak answers and refusals.
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
/// assert!(seen.lock().unwrap().is_empty());
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompromisedEvent {
    /// The error given to the caller (masked key id, call, evidence, remediation).
    pub key: CompromisedKey,
    /// The key's fingerprint (to correlate across hosts and logs without the key id).
    pub fingerprint: KeyFingerprint,
    /// Who saw it first.
    pub first: FirstSighting,
}
type KeyMap = HashMap<KeyFingerprint, Arc<KeyRecord>, RandomState>;

/// Builds a [`Guard`].
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::LeakPolicy;
/// use aliyun_guard::guard::Guard;
///
/// let guard = Guard::builder()
///     .policy(LeakPolicy::BlockRestricted)
///     .learned_ttl(Duration::from_secs(7 * 86_400))
///     .on_compromised(|leak| eprintln!("{leak}"))
///     .build()?;
/// assert!(!guard.is_persistent());
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
#[derive(Default)]
pub struct GuardBuilder {
    policy: LeakPolicy,
    table: Option<RestrictionTable>,
    merges: Vec<RestrictionTable>,
    state_dir: Option<PathBuf>,
    refresh_interval: Option<Duration>,
    lock_timeout: Option<Duration>,
    learned_ttl: Option<Duration>,
    learn_insecure: bool,
    on_compromised: Vec<Callback>,
    on_compromised_async: Vec<AsyncCallback>,
    clock_skew: time::Duration,
    #[cfg(feature = "redis")]
    redis: Option<redis_store::RedisOptions>,
}

impl fmt::Debug for GuardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardBuilder")
            .field("policy", &self.policy)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl GuardBuilder {
    /// Sets the policy (default [`LeakPolicy::BlockRestricted`]).
    ///
    /// ```
    /// use aliyun_guard::LeakPolicy;
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder().policy(LeakPolicy::ObserveOnly).build()?;
    /// assert_eq!(guard.policy(), LeakPolicy::ObserveOnly);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn policy(mut self, policy: LeakPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses `table` instead of the built-in one.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, RestrictionTable};
    ///
    /// let mut table = RestrictionTable::empty();
    /// table.insert("Ecs", "2014-05-26", "DeleteInstance");
    /// let guard = Guard::builder().restriction_table(table).build()?;
    /// assert!(guard.table().is_blocked("Ecs", "2014-05-26", "DeleteInstance"));
    /// assert!(!guard.table().is_blocked("Ram", "2015-05-01", "CreateUser"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn restriction_table(mut self, table: RestrictionTable) -> Self {
        self.table = Some(table);
        self
    }

    /// Merges `table` (an updated list) into the table in use.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, RestrictionTable};
    ///
    /// let mut update = RestrictionTable::empty();
    /// update.insert("Ecs", "2014-05-26", "DeleteInstance");
    /// let guard = Guard::builder().merge_restrictions(update).build()?;
    /// // The built-in entries stay, the update adds its own.
    /// assert!(guard.table().is_blocked("Ram", "2015-05-01", "CreateUser"));
    /// assert!(guard.table().is_blocked("Ecs", "2014-05-26", "DeleteInstance"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn merge_restrictions(mut self, table: RestrictionTable) -> Self {
        self.merges.push(table);
        self
    }

    /// Merges the table in the file at `path` (TOML or JSON) if it loads; if it does not, logs a
    /// warning naming the problem and keeps the table as it is, so that a bad update never stops
    /// the client. Use [`RestrictionTable::from_path`] to handle the error yourself.
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    ///
    /// // A missing or broken file is logged and skipped: the built-in table stays in force.
    /// let guard = Guard::builder()
    ///     .merge_restrictions_from("/nonexistent/aliyun-guard/restrictions.toml")
    ///     .build()?;
    /// assert!(guard.table().is_blocked("Ram", "2015-05-01", "CreateUser"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn merge_restrictions_from(mut self, path: impl AsRef<Path>) -> Self {
        match RestrictionTable::from_path(path.as_ref()) {
            Ok(table) => self.merges.push(table),
            Err(e) => tracing::warn!(
                error = %e,
                "aliyun-guard: ignoring a restriction table that does not load; keeping the current table"
            ),
        }
        self
    }

    /// Persists compromised keys and learned entries in `dir`, shared with other processes and
    /// restarts.
    ///
    /// The directory holds `state.json` (written atomically: temporary file, then rename) and
    /// `state.lock` (locked while a process reads or writes; waited for at most
    /// [`lock_timeout`](Self::lock_timeout)). It must be a directory, not a symbolic link.
    ///
    /// * **Private (default).** Created if missing with mode `0700`; files are created `0600`.
    /// * **Shared by a group.** When the directory is group-writable (say `chgrp guard dir;
    ///   chmod 2770 dir`), files are created `0660` with the directory's group (the setgid bit
    ///   does that; without it the guard sets the group itself), so every member can read and
    ///   write them.
    ///
    /// A `state.json` that was read and does not parse is set aside (`state.json.corrupt-*`) with
    /// a warning; one that cannot be read (permission denied, I/O error, a FIFO, a symlink) is an
    /// [`Error::State`] naming it and stays in place. When the store is unavailable (lock not
    /// obtained in time, directory read-only or full), the guard keeps its state in memory, logs
    /// one warning per outage, writes the pending changes once it can, and reports the problem in
    /// [`Guard::store_health`].
    ///
    /// ```no_run
    /// use aliyun_guard::guard::Guard;
    ///
    /// // Every process of the service shares what one of them learned.
    /// let guard = Guard::builder().state_dir("/var/lib/my-service/aliyun-guard").build()?;
    /// assert!(guard.is_persistent());
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn state_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.state_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Uses the directory named by `ALIYUN_GUARD_STATE_DIR`, when it is set.
    ///
    /// ```no_run
    /// use aliyun_guard::guard::Guard;
    ///
    /// // ALIYUN_GUARD_STATE_DIR=/var/lib/my-service/aliyun-guard in the service's environment.
    /// let guard = Guard::builder().state_dir_from_env().build()?;
    /// println!("state file: {:?}", guard.state_file());
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn state_dir_from_env(mut self) -> Self {
        if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
            self.state_dir = Some(PathBuf::from(dir));
        }
        self
    }

    /// How often calls check the state file for other processes' writes (default 2 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder().refresh_interval(Duration::from_millis(500)).build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = Some(interval);
        self
    }

    /// Longest wait for the state directory's lock (default [`DEFAULT_LOCK_TIMEOUT`]). Waiting
    /// retries with short sleeps, so cooperating processes take turns; past the bound the guard
    /// goes on in memory and writes later.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder().lock_timeout(Duration::from_millis(200)).build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Age after which entries learned from leak answers are dropped (default
    /// [`DEFAULT_LEARNED_TTL`], 30 days), when the state is loaded or merged.
    ///
    /// ```
    /// use std::time::Duration;
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder().learned_ttl(Duration::from_secs(7 * 86_400)).build()?;
    /// assert!(guard.learned_entries().is_empty());
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn learned_ttl(mut self, ttl: Duration) -> Self {
        self.learned_ttl = Some(ttl);
        self
    }

    /// Whether a leak answer from a plain `http://` endpoint may add learned table entries
    /// (default `false`: such an answer marks the key, since it is the caller's endpoint, but
    /// does not teach the shared table).
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    ///
    /// // Only for a test set-up whose mock endpoint is plain HTTP.
    /// let guard = Guard::builder().learn_from_insecure_endpoints(true).build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn learn_from_insecure_endpoints(mut self, learn: bool) -> Self {
        self.learn_insecure = learn;
        self
    }

    /// Shares the state through Redis (cargo feature `redis`): every host using the same server
    /// and `prefix` refuses a key within about a second of one of them seeing it compromised.
    ///
    /// `url` is `redis://[:password@]host[:port][/db]` or `rediss://` (TLS). `prefix` namespaces
    /// the keys (1 to 64 characters of `A-Z a-z 0-9 _ - . :`), e.g. one per fleet. The URL and
    /// prefix are checked by [`build`](Self::build); Redis being unreachable at build is not an
    /// error (the guard goes on in memory and writes when Redis is back). See the README's
    /// "Fleet set-up".
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>, prefix: impl Into<String>) -> Self {
        let options = self.redis.take().unwrap_or_default();
        self.redis = Some(redis_store::RedisOptions {
            url: url.into(),
            prefix: prefix.into(),
            ..options
        });
        self
    }

    /// Uses the Redis URL named by `ALIYUN_GUARD_REDIS_URL` (and the prefix named by
    /// `ALIYUN_GUARD_REDIS_PREFIX`, default `aliyun-guard`), when it is set.
    #[cfg(feature = "redis")]
    pub fn redis_from_env(self) -> Self {
        match std::env::var(REDIS_URL_ENV).ok().filter(|u| !u.is_empty()) {
            Some(url) => {
                let prefix = std::env::var(REDIS_PREFIX_ENV)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "aliyun-guard".to_string());
                self.redis(url, prefix)
            }
            None => self,
        }
    }

    /// Longest wait for one Redis operation (default 500 ms); no call waits longer than its own
    /// budget in any case.
    #[cfg(feature = "redis")]
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        let mut options = self.redis.take().unwrap_or_default();
        options.timeout = timeout;
        self.redis = Some(options);
        self
    }

    /// How often the whole shared state is read again from Redis, as a safety net for missed
    /// notifications (default 30 s).
    #[cfg(feature = "redis")]
    pub fn redis_reconcile_interval(mut self, interval: Duration) -> Self {
        let mut options = self.redis.take().unwrap_or_default();
        options.reconcile = interval;
        self.redis = Some(options);
        self
    }

    /// Shifts this guard's clock (tests of hosts whose clocks disagree).
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    ///
    /// let late = Guard::builder().clock_skew(time::Duration::minutes(-5)).build()?;
    /// # drop(late);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    #[doc(hidden)]
    pub fn clock_skew(mut self, skew: time::Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Calls `hook` once per key newly detected compromised in this process (for alerting).
    /// A panic in the hook is caught and logged.
    ///
    /// With Redis ([`redis`](Self::redis)) the hooks fire once per key in the whole fleet: the
    /// first host to claim the key in Redis calls them, on a background thread.
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder()
    ///     .on_compromised(|leak| eprintln!("ALERT: rotate {}: {leak}", leak.key_to_rotate()))
    ///     .build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn on_compromised(
        mut self,
        hook: impl Fn(&CompromisedKey) + Send + Sync + 'static,
    ) -> Self {
        self.on_compromised
            .push(Arc::new(move |event: &CompromisedEvent| hook(&event.key)));
        self
    }

    /// Like [`on_compromised`](Self::on_compromised), with the key's fingerprint and who saw it
    /// first.
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Guard::builder()
    ///     .on_compromised_event(|event| {
    ///         eprintln!("key {} ({:?})", event.fingerprint.to_hex(), event.first);
    ///     })
    ///     .build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn on_compromised_event(
        mut self,
        hook: impl Fn(&CompromisedEvent) + Send + Sync + 'static,
    ) -> Self {
        self.on_compromised.push(Arc::new(hook));
        self
    }

    /// An asynchronous hook (say, posting to a webhook): each event runs it on a task spawned on
    /// the current Tokio runtime (or a thread of its own outside one), never on the call path.
    ///
    /// ```
    /// use aliyun_guard::guard::Guard;
    /// let guard = Guard::builder()
    ///     .on_compromised_async(|event| async move {
    ///         eprintln!("rotate {} now", event.key.key_to_rotate());
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # drop(guard);
    /// ```
    pub fn on_compromised_async<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(CompromisedEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.on_compromised_async
            .push(Arc::new(move |event| Box::pin(hook(event))));
        self
    }

    /// Builds the guard, loading the state directory if one is set (blocking I/O, waiting at
    /// most the lock timeout). A state file that does not parse is set aside with a warning; an
    /// unusable directory or a state file that cannot be read is an error; a store that is
    /// unavailable (lock held, read-only) leaves the guard in memory with a warning.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aliyun_guard::{Client, Credentials, LeakPolicy};
    /// use aliyun_guard::guard::Guard;
    ///
    /// let guard = Arc::new(Guard::builder().policy(LeakPolicy::BlockAll).build()?);
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("LTAI5tExampleKeyIdwxyz", "example-secret"))
    ///     .region("cn-hangzhou")
    ///     .guard(Arc::clone(&guard))
    ///     .build()?;
    /// assert!(Arc::ptr_eq(client.guard(), &guard));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn build(self) -> Result<Guard, Error> {
        let mut table = self.table.unwrap_or_else(RestrictionTable::builtin);
        for update in &self.merges {
            table.merge(update);
        }
        let learned_ttl = self.learned_ttl.unwrap_or(DEFAULT_LEARNED_TTL);
        let options = StoreOptions {
            lock_wait: self.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
            learned_ttl,
        };
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut store: Option<Arc<dyn StateStore>> = match self.state_dir.as_deref() {
            Some(dir) => Some(Arc::new(DirStore::new(StateFile::open(dir, options)?))),
            None => None,
        };
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis {
            if store.is_some() {
                tracing::warn!(
                    "aliyun-guard: both a state directory and Redis are set; using Redis"
                );
            }
            store = Some(Arc::new(redis_store::RedisStore::open(redis)?));
        }
        let mut outage = None;
        let (state, loaded) = match &store {
            Some(store) => match store.load() {
                Ok(state) => (state, true),
                Err(StoreError::Unavailable(e)) => {
                    outage = Some(e);
                    // What another process wrote still counts: read without the lock.
                    (store.peek().unwrap_or_default(), false)
                }
                Err(StoreError::File(e)) => return Err(e),
            },
            None => (State::default(), true),
        };
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: Arc::new(KeyMap::default()),
                table: Arc::new(table),
            }),
            state: Mutex::new(state),
            store,
            pending: Mutex::new(Vec::new()),
            learned_ttl,
            health: StoreMonitor::default(),
        });
        shared.health.loaded.store(loaded, Ordering::SeqCst);
        if let Some(e) = outage {
            shared.health.failed(&e);
        }
        shared.publish(&shared.lock_state());
        if let Some(store) = &shared.store {
            let weak = Arc::downgrade(&shared);
            store.subscribe(Arc::new(move |pushed, error| {
                let Some(shared) = weak.upgrade() else {
                    return false;
                };
                shared.pushed(pushed, error);
                true
            }));
        }
        Ok(Guard {
            policy: self.policy,
            shared,
            born: Instant::now(),
            next_refresh_ms: AtomicU64::new(0),
            refresh_interval: self.refresh_interval.unwrap_or(Duration::from_secs(2)),
            learn_insecure: self.learn_insecure,
            hooks: Arc::new(Hooks {
                sync: self.on_compromised,
                spawned: self.on_compromised_async,
            }),
            clock_skew: self.clock_skew,
        })
    }
}

/// The guard. Share one per process (`Arc<Guard>`) among clients.
///
/// ```
/// use std::sync::Arc;
/// use aliyun_guard::Guard;
///
/// // One guard shared by every client (and credential provider) of the process.
/// let guard = Arc::new(Guard::new());
/// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice of Jan 7")?;
/// assert!(guard.is_compromised("LTAI5tExampleKeyIdwxyz"));
/// # Ok::<(), aliyun_guard::Error>(())
/// ```
pub struct Guard {
    policy: LeakPolicy,
    shared: Arc<Shared>,
    born: Instant,
    next_refresh_ms: AtomicU64,
    refresh_interval: Duration,
    learn_insecure: bool,
    hooks: Arc<Hooks>,
    /// Added to this host's clock (tests of skewed clocks).
    clock_skew: time::Duration,
}

/// What the guard shares with its store's background listener.
struct Shared {
    /// What the check before sending reads, swapped whole on every (rare) change.
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<State>,
    store: Option<Arc<dyn StateStore>>,
    /// Changes not yet held by the store, oldest first.
    pending: Mutex<Vec<Change>>,
    learned_ttl: Duration,
    health: StoreMonitor,
}

/// The health of the state store, as [`Guard::store_health`] reports it.
///
/// ```
/// use aliyun_guard::Guard;
///
/// let health = Guard::new().store_health();
/// assert!(!health.persistent && health.available && !health.unsaved_changes);
/// assert_eq!(health.last_error, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreHealth {
    /// Whether the guard shares its state (a state directory or Redis).
    pub persistent: bool,
    /// Whether the last use of the store succeeded (always `true` without a store).
    pub available: bool,
    /// Whether changes made in memory have not reached the store yet (they are written when it
    /// is available again).
    pub unsaved_changes: bool,
    /// The last error of the store, with its causes, if there was one.
    pub last_error: Option<String>,
}

/// Outage tracking of the state store: one warning per outage, the last error kept.
#[derive(Default)]
struct StoreMonitor {
    /// Count of in-memory changes made.
    changes: AtomicU64,
    /// The count of changes that the store holds (all of them when equal to `changes`).
    saved: AtomicU64,
    /// Whether the file has been read at least once.
    loaded: AtomicBool,
    /// Whether the store is failing now.
    outage: AtomicBool,
    /// A background sync is under way.
    syncing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl StoreMonitor {
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    fn unsaved(&self) -> bool {
        self.changes.load(Ordering::SeqCst) > self.saved.load(Ordering::SeqCst)
    }

    fn failed(&self, error: &Error) {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        if !self.outage.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                error = %error,
                "aliyun-guard: the guard state store is unavailable; keeping the state in memory \
                 and writing it when the store is back (this warning is logged once per outage)"
            );
        }
    }

    fn succeeded(&self) {
        if self.outage.swap(false, Ordering::SeqCst) {
            tracing::info!("aliyun-guard: the guard state store is available again");
        }
    }
}

/// The operator's hooks.
struct Hooks {
    sync: Vec<Callback>,
    spawned: Vec<AsyncCallback>,
}

impl Hooks {
    /// Calls the hooks for one event: the plain ones here (a panic caught and logged), the
    /// asynchronous ones on spawned tasks.
    fn fire(&self, event: CompromisedEvent) {
        for hook in &self.sync {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&event))).is_err() {
                tracing::error!("aliyun-guard: the on_compromised hook panicked");
            }
        }
        for hook in &self.spawned {
            let future = hook(event.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(future);
                }
                Err(_) => {
                    let _ = std::thread::Builder::new()
                        .name("aliyun-guard-hook".into())
                        .spawn(move || {
                            match tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                            {
                                Ok(runtime) => runtime.block_on(future),
                                Err(e) => tracing::error!(
                                    error = %e,
                                    "aliyun-guard: no runtime for the asynchronous hook"
                                ),
                            }
                        });
                }
            }
        }
    }
}

/// Clears the sync flag when a background sync ends, or is dropped without running.
struct SyncSlot(Arc<Shared>);

impl Drop for SyncSlot {
    fn drop(&mut self) {
        self.0.health.syncing.store(false, Ordering::SeqCst);
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &self.policy)
            .field("compromised_keys", &self.shared.snapshot.load().keys.len())
            .field("table_rows", &self.shared.snapshot.load().table.len())
            .field("store", &self.shared.store.as_ref().map(|s| s.describe()))
            .finish()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Guard {
    /// A guard with the default policy, the built-in table and in-memory state.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// assert!(guard.compromised_keys().is_empty());
    /// ```
    pub fn new() -> Self {
        match Self::builder().build() {
            Ok(guard) => guard,
            // Without a state directory, building does no I/O and cannot fail.
            Err(_) => unreachable!("an in-memory guard cannot fail to build"),
        }
    }

    /// Starts building a guard.
    ///
    /// ```
    /// use aliyun_guard::{Guard, LeakPolicy};
    ///
    /// let guard = Guard::builder().policy(LeakPolicy::BlockAll).build()?;
    /// # drop(guard);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    /// The policy.
    ///
    /// ```
    /// use aliyun_guard::{Guard, LeakPolicy};
    /// assert_eq!(Guard::new().policy(), LeakPolicy::BlockRestricted);
    /// ```
    pub fn policy(&self) -> LeakPolicy {
        self.policy
    }

    /// The restriction table in use (built-in or loaded, plus learned entries).
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// assert!(guard.table().is_blocked("Ram", "2015-05-01", "CreateAccessKey"));
    /// ```
    pub fn table(&self) -> Arc<RestrictionTable> {
        Arc::clone(&self.shared.snapshot.load().table)
    }

    /// Replaces the restriction table; learned entries are kept.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, RestrictionTable};
    ///
    /// let guard = Guard::new();
    /// let mut table = RestrictionTable::empty();
    /// table.insert("Ecs", "2014-05-26", "DeleteInstance");
    /// guard.replace_table(table);
    /// assert!(guard.table().is_blocked("Ecs", "2014-05-26", "DeleteInstance"));
    /// assert!(!guard.table().is_blocked("Ram", "2015-05-01", "CreateUser"));
    /// ```
    pub fn replace_table(&self, table: RestrictionTable) {
        let state = self.lock_state();
        self.shared.set_table(Arc::new(table));
        self.shared.apply_learned(&state);
    }

    /// Merges an updated list into the table in use.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, RestrictionTable};
    ///
    /// let guard = Guard::new();
    /// let mut update = RestrictionTable::empty();
    /// update.insert("Ecs", "2014-05-26", "DeleteInstance");
    /// guard.merge_table(&update);
    /// assert!(guard.table().is_blocked("Ecs", "2014-05-26", "DeleteInstance"));
    /// assert!(guard.table().is_blocked("Ram", "2015-05-01", "CreateUser"));
    /// ```
    pub fn merge_table(&self, update: &RestrictionTable) {
        let _state = self.lock_state();
        let mut table = (*self.shared.snapshot.load().table).clone();
        table.merge(update);
        self.shared.set_table(Arc::new(table));
    }

    /// The check before sending: cheap, lock-free and allocation-free.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, KeyFingerprint, Verdict};
    ///
    /// let guard = Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
    /// // Off the table: allowed under the default policy, with a warning.
    /// assert!(matches!(
    ///     guard.verdict(&key, "Ecs", "2014-05-26", "DescribeRegions"),
    ///     Verdict::AllowCompromised
    /// ));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn verdict(
        &self,
        key: &KeyFingerprint,
        product: &str,
        version: &str,
        action: &str,
    ) -> Verdict {
        let snapshot = self.shared.snapshot.load();
        let keys = &snapshot.keys;
        if keys.is_empty() {
            return Verdict::Allow;
        }
        let Some(record) = keys.get(key) else {
            return Verdict::Allow;
        };
        let on_table = || snapshot.table.is_blocked(product, version, action);
        let refuse = match self.policy {
            LeakPolicy::ObserveOnly => false,
            LeakPolicy::BlockAll => true,
            LeakPolicy::BlockRestricted => on_table(),
        };
        if refuse {
            // No clone of the record here: a shared refcount written by every caller would make
            // concurrent checks contend.
            return Verdict::Refuse {
                on_table: self.policy == LeakPolicy::BlockRestricted || on_table(),
            };
        }
        if !record.warned.load(Ordering::Relaxed) && !record.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                key = %record.masked_key_id,
                product,
                version,
                action,
                "aliyun-guard: calling with an AccessKey known to be compromised; rotate it \
                 (this warning is logged once per key)"
            );
        }
        Verdict::AllowCompromised
    }

    /// Whether the key with this id is known to be compromised.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// assert!(!guard.is_compromised("LTAI5tExampleKeyIdwxyz"));
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// assert!(guard.is_compromised("LTAI5tExampleKeyIdwxyz"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn is_compromised(&self, access_key_id: &str) -> bool {
        self.shared
            .snapshot
            .load()
            .keys
            .contains_key(&KeyFingerprint::of(access_key_id))
    }

    /// The record of a key id, if it is known to be compromised.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// let record = guard.record("LTAI5tExampleKeyIdwxyz").unwrap();
    /// assert_eq!(record.masked_key_id, "LTAI****wxyz");
    /// assert!(guard.record("LTAI5tOtherKeyId0000abcd").is_none());
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn record(&self, access_key_id: &str) -> Option<Arc<KeyRecord>> {
        self.shared
            .snapshot
            .load()
            .keys
            .get(&KeyFingerprint::of(access_key_id))
            .cloned()
    }

    /// Every key known to be compromised.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// guard.mark_all_compromised(["LTAI5tExampleKeyIdwxyz", "LTAI5tOtherKeyId0000abcd"], "leak list")?;
    /// let mut masked: Vec<_> = guard.compromised_keys().iter().map(|r| r.masked_key_id.clone()).collect();
    /// masked.sort();
    /// assert_eq!(masked, ["LTAI****abcd", "LTAI****wxyz"]);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn compromised_keys(&self) -> Vec<Arc<KeyRecord>> {
        let mut keys: Vec<Arc<KeyRecord>> =
            self.shared.snapshot.load().keys.values().cloned().collect();
        keys.sort_by_key(|k| k.first_seen);
        keys
    }

    /// Entries learned from leak answers for actions the table did not list.
    ///
    /// ```
    /// for entry in aliyun_guard::Guard::new().learned_entries() {
    ///     println!("learned {} {} {}", entry.product, entry.version, entry.action);
    /// }
    /// ```
    pub fn learned_entries(&self) -> Vec<LearnedEntry> {
        self.lock_state().learned().cloned().collect()
    }

    /// Keys cleared by hand ([`Guard::clear`]), oldest first.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice").unwrap();
    /// guard.clear("LTAI5tExampleKeyIdwxyz").unwrap();
    /// assert!(!guard.is_compromised("LTAI5tExampleKeyIdwxyz"));
    /// assert_eq!(guard.cleared_keys()[0].masked_key_id, "LTAI****wxyz");
    /// ```
    pub fn cleared_keys(&self) -> Vec<ClearedKey> {
        self.lock_state().clearings()
    }

    /// Marks a key compromised by hand (from Alibaba's notification or Security Center's leak
    /// list). Returns whether it was new. With a state directory this writes the file
    /// (blocking I/O, waiting at most the lock timeout); if that fails, the key is marked in
    /// memory all the same, the error is returned, and the change is written later.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// assert!(guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice")?);
    /// // Marking it again is not new.
    /// assert!(!guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "Alibaba's notice")?);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn mark_compromised(
        &self,
        access_key_id: &str,
        note: impl Into<String>,
    ) -> Result<bool, Error> {
        Ok(self.mark_all_compromised([access_key_id], &note.into())? == 1)
    }

    /// Marks many keys compromised at once (such as Security Center's leak list), with one
    /// rebuild of the lookup map and one write of the state file. Returns how many were new.
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// let leaked = ["LTAI5tExampleKeyIdwxyz", "LTAI5tOtherKeyId0000abcd"];
    /// assert_eq!(guard.mark_all_compromised(leaked, "Security Center leak list")?, 2);
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn mark_all_compromised<I, S>(&self, access_key_ids: I, note: &str) -> Result<usize, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let at = self.now();
        let newly = self.mark_with(
            access_key_ids
                .into_iter()
                .map(|id| (id.as_ref().trim().to_string(), Evidence::manual(note, at))),
        );
        self.persist()?;
        Ok(newly.len())
    }

    /// Records sightings in memory (one rebuild of the lookup map); returns the records of the
    /// keys that became compromised. Persisting is left to the caller.
    pub(crate) fn mark_with(
        &self,
        sightings: impl IntoIterator<Item = (String, Evidence)>,
    ) -> Vec<(KeyFingerprint, String)> {
        let mut state = self.lock_state();
        let mut newly = Vec::new();
        for (id, evidence) in sightings {
            let fp = KeyFingerprint::of(&id);
            let masked = mask_key_id(&id);
            if state.record(fp, &masked, evidence.clone()) {
                newly.push((fp, masked.clone()));
            }
            self.shared.changed(Change::Sighting {
                fp,
                masked,
                evidence,
            });
        }
        self.shared.publish(&state);
        newly
    }

    /// Clears a key (after it was rotated, or flagged in error). Returns whether it was
    /// compromised. With a state directory this writes the file (blocking I/O).
    ///
    /// ```
    /// let guard = aliyun_guard::Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// assert!(guard.clear("LTAI5tExampleKeyIdwxyz")?);
    /// assert!(!guard.is_compromised("LTAI5tExampleKeyIdwxyz"));
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn clear(&self, access_key_id: &str) -> Result<bool, Error> {
        let fp = KeyFingerprint::of(access_key_id);
        let masked = mask_key_id(access_key_id.trim());
        let at = self.now();
        let was = {
            let mut state = self.lock_state();
            let was = state.clear(fp, &masked, at);
            self.shared.changed(Change::Clearing { fp, masked, at });
            self.shared.publish(&state);
            was
        };
        self.persist()?;
        Ok(was)
    }

    /// Re-reads the shared state (state file or Redis), taking in other processes' keys,
    /// clearings and learned entries.
    ///
    /// ```no_run
    /// let guard = aliyun_guard::Guard::builder().state_dir("/var/lib/my-service/aliyun-guard").build()?;
    /// // After an operator marked a key with the command-line tool:
    /// guard.reload()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn reload(&self) -> Result<(), Error> {
        self.shared.reload()
    }

    /// This host's clock (shifted in tests).
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_skew
    }

    /// When the refresh interval has passed, syncs with the store in the background: writes
    /// pending changes, or reloads when the store changed. Never does I/O on the calling task:
    /// the check before sending keeps reading the in-memory snapshot.
    pub(crate) fn refresh_if_due(self: &Arc<Self>) {
        if self.shared.store.is_none() {
            return;
        }
        let now = self.born.elapsed().as_millis() as u64;
        let due = self.next_refresh_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .next_refresh_ms
                .compare_exchange(
                    due,
                    now + self.refresh_interval.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        self.shared.sync_in_background();
    }

    /// Persists after a leak answer, within the call's budget: past `deadline` the write goes on
    /// in the background and the call returns. Failures are recorded in the store health.
    pub(crate) async fn persist_within(self: &Arc<Self>, deadline: tokio::time::Instant) {
        if self.shared.store.is_none() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let task = tokio::task::spawn_blocking(move || shared.persist());
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "aliyun-guard: the persisting task failed"),
            Err(_) => tracing::debug!(
                "aliyun-guard: persisting the compromised key goes on past the call's budget"
            ),
        }
    }

    /// Records a leak answer: remembers the key, learns the table entry if it was missing, and
    /// returns the error to give the caller. Persisting is left to [`Guard::persist`].
    pub(crate) fn record_leak(&self, leak: LeakContext<'_>) -> (CompromisedKey, bool) {
        let now = self.now();
        let evidence = Evidence {
            product: leak.product.to_string(),
            version: leak.version.to_string(),
            action: leak.action.to_string(),
            request_id: leak.request_id.clone(),
            at: now,
            source: leak.source.clone(),
        };
        // Temporary credentials: the long-lived key they were minted from is marked too.
        let newly_parent = leak
            .parent
            .is_some_and(|(parent, masked)| self.record_evidence(parent, masked, evidence.clone()));
        let newly = self.record_evidence(leak.key, leak.masked_key_id, evidence) | newly_parent;
        let mut on_table =
            self.shared
                .snapshot
                .load()
                .table
                .is_blocked(leak.product, leak.version, leak.action);
        let trusted = leak.secure_transport || self.learn_insecure;
        if !on_table && leak.source == EvidenceSource::ServerAnswer && !trusted {
            tracing::warn!(
                product = leak.product,
                version = leak.version,
                action = leak.action,
                host = leak.host,
                "aliyun-guard: a leak answer from a plain-http endpoint does not teach the \
                 restriction table"
            );
        }
        if !on_table && leak.source == EvidenceSource::ServerAnswer && trusted {
            let mut state = self.lock_state();
            let entry = LearnedEntry {
                product: leak.product.to_string(),
                version: leak.version.to_string(),
                action: leak.action.to_string(),
                learned_at: now,
                request_id: leak.request_id.clone(),
                host: Some(leak.host.to_string()).filter(|h| !h.is_empty()),
            };
            state.learn(entry.clone());
            self.shared.changed(Change::Learned(entry));
            self.shared.apply_learned(&state);
            on_table = true;
            tracing::warn!(
                product = leak.product,
                version = leak.version,
                action = leak.action,
                "aliyun-guard: learned a blocked operation missing from the restriction table"
            );
        }
        let first_seen = self
            .shared
            .snapshot
            .load()
            .keys
            .get(&leak.key)
            .map_or(now, |r| r.first_seen);
        let error = CompromisedKey {
            masked_key_id: leak.masked_key_id.to_string(),
            product: leak.product.to_string(),
            version: leak.version.to_string(),
            action: leak.action.to_string(),
            status: leak.status,
            request_id: leak.request_id,
            host_id: leak.host_id,
            server_code: leak.server_code,
            server_message: leak.server_message,
            detection: Detection::ServerAnswer,
            on_restriction_table: on_table,
            first_seen,
            remediation: &REMEDIATION,
            parent_masked_key_id: leak.parent.map(|(_, masked)| masked.to_string()),
        };
        if newly {
            tracing::error!(
                key = %error.masked_key_id,
                parent_key = error.parent_masked_key_id.as_deref().unwrap_or(""),
                product = %error.product,
                action = %error.action,
                request_id = error.request_id.as_deref().unwrap_or(""),
                "aliyun-guard: Alibaba Cloud reports this AccessKey as leaked; rotate it now"
            );
            self.notify(&error, leak.key);
        }
        (error, newly)
    }

    /// The error for a call refused before sending (after [`Verdict::Refuse`]); `None` if the key
    /// is not (or no longer) known to be compromised.
    ///
    /// ```
    /// use aliyun_guard::guard::{Guard, KeyFingerprint, Verdict};
    ///
    /// let guard = Guard::new();
    /// guard.mark_compromised("LTAI5tExampleKeyIdwxyz", "leak notice")?;
    /// let key = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
    /// if let Verdict::Refuse { on_table, .. } = guard.verdict(&key, "Ram", "2015-05-01", "CreateUser") {
    ///     let leak = guard.refusal(&key, on_table, "Ram", "2015-05-01", "CreateUser").unwrap();
    ///     assert!(leak.to_string().contains("refused"));
    /// }
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn refusal(
        &self,
        key: &KeyFingerprint,
        on_table: bool,
        product: &str,
        version: &str,
        action: &str,
    ) -> Option<CompromisedKey> {
        let snapshot = self.shared.snapshot.load();
        let record = snapshot.keys.get(key)?;
        Some(CompromisedKey {
            masked_key_id: record.masked_key_id.clone(),
            product: product.to_string(),
            version: version.to_string(),
            action: action.to_string(),
            status: None,
            request_id: None,
            host_id: None,
            server_code: None,
            server_message: None,
            detection: Detection::RefusedLocally,
            on_restriction_table: on_table,
            first_seen: record.first_seen,
            remediation: &REMEDIATION,
            parent_masked_key_id: None,
        })
    }

    /// Calls the hooks for a key newly compromised here: at once without a fleet store; with
    /// one, on a background thread after claiming the key in the store (the hooks fire on the
    /// host that wins the claim only).
    pub(crate) fn notify(&self, error: &CompromisedKey, fingerprint: KeyFingerprint) {
        if self.hooks.sync.is_empty() && self.hooks.spawned.is_empty() {
            return;
        }
        let mut event = CompromisedEvent {
            key: error.clone(),
            fingerprint,
            first: FirstSighting::ThisProcess,
        };
        match self.shared.store.as_ref().filter(|s| s.fleet()) {
            None => self.hooks.fire(event),
            Some(store) => {
                let store = Arc::clone(store);
                let hooks = Arc::clone(&self.hooks);
                let runtime = tokio::runtime::Handle::try_current().ok();
                let _ = std::thread::Builder::new()
                    .name("aliyun-guard-notify".into())
                    .spawn(move || {
                        let _entered = runtime.as_ref().map(|r| r.enter());
                        event.first = match store.claim_notification(&fingerprint) {
                            Some(true) => FirstSighting::ThisHostFirstInFleet,
                            Some(false) => {
                                tracing::info!(
                                    key = %event.key.masked_key_id,
                                    "aliyun-guard: another host already reported this key; \
                                     the hooks are not called here"
                                );
                                return;
                            }
                            None => FirstSighting::FleetUnknown,
                        };
                        hooks.fire(event);
                    });
            }
        }
    }

    fn record_evidence(&self, key: KeyFingerprint, masked: &str, evidence: Evidence) -> bool {
        let mut state = self.lock_state();
        let newly = state.record(key, masked, evidence.clone());
        self.shared.changed(Change::Sighting {
            fp: key,
            masked: masked.to_string(),
            evidence,
        });
        self.shared.publish(&state);
        newly
    }

    /// Writes the state to the store (state directory or Redis), taking in other processes'
    /// writes (blocking I/O, waiting at most the lock timeout or the Redis timeout). Without a
    /// store, does nothing. On failure the changes stay pending (written by a later persist or
    /// background sync) and the error is also kept in [`Guard::store_health`].
    ///
    /// ```
    /// // Without a store there is nothing to write.
    /// aliyun_guard::Guard::new().persist()?;
    /// # Ok::<(), aliyun_guard::Error>(())
    /// ```
    pub fn persist(&self) -> Result<(), Error> {
        self.shared.persist()
    }

    /// The health of the state store: whether it works, whether changes wait to be written,
    /// and the last error.
    ///
    /// ```
    /// let health = aliyun_guard::Guard::new().store_health();
    /// if !health.available {
    ///     eprintln!("guard store down: {:?}", health.last_error);
    /// }
    /// ```
    pub fn store_health(&self) -> StoreHealth {
        let persistent = self.shared.store.is_some();
        StoreHealth {
            persistent,
            available: !self.shared.health.outage.load(Ordering::SeqCst),
            unsaved_changes: persistent && self.shared.health.unsaved(),
            last_error: self
                .shared
                .health
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Whether this guard shares its state (a state directory or Redis).
    ///
    /// ```
    /// assert!(!aliyun_guard::Guard::new().is_persistent());
    /// ```
    pub fn is_persistent(&self) -> bool {
        self.shared.store.is_some()
    }

    /// The state file, when a state directory is set.
    ///
    /// ```
    /// assert_eq!(aliyun_guard::Guard::new().state_file(), None);
    /// ```
    pub fn state_file(&self) -> Option<PathBuf> {
        self.shared.store.as_ref().and_then(|s| s.path())
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.shared.lock_state()
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a change made in memory (called with the state lock held, so that the queue is in
    /// the order of the changes).
    fn changed(&self, change: Change) {
        if self.store.is_some() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(change);
        }
        self.health.changed();
    }

    /// Takes in a state read from the store: merged into ours (a state directory), or replacing
    /// ours with the changes not yet stored laid over it (an authoritative store such as Redis,
    /// which orders events itself). Called with the state lock held.
    fn take_in(&self, state: &mut State, loaded: State, store: &dyn StateStore) {
        let before = Arc::clone(&self.snapshot.load().keys);
        if store.authoritative() {
            let mut fresh = loaded;
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            // What the store lost (a Redis restarted empty) is written again: a known key stays
            // refused.
            let (lost_keys, lost_learned) = state.missing_from(&fresh);
            let lost = !lost_keys.is_empty() || !lost_learned.is_empty();
            for (fp, masked, evidence) in lost_keys {
                pending.push(Change::Sighting {
                    fp,
                    masked,
                    evidence,
                });
            }
            pending.extend(lost_learned.into_iter().map(Change::Learned));
            for change in pending.iter() {
                change.apply(&mut fresh);
            }
            drop(pending);
            if lost {
                self.health.changed();
            }
            *state = fresh;
        } else {
            state.merge(&loaded);
        }
        state.expire_learned(OffsetDateTime::now_utc(), self.learned_ttl);
        self.publish(state);
        let now = self.snapshot.load();
        for (fp, record) in now.keys.iter() {
            if !before.contains_key(fp) {
                tracing::error!(
                    key = %record.masked_key_id,
                    store = %store.describe(),
                    "aliyun-guard: another process reports this AccessKey as leaked; calls with \
                     it are now refused on this host too"
                );
            }
        }
    }

    fn reload(&self) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let loaded = match store.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable(_));
                let e = e.into_error();
                self.health.failed(&e);
                // Keys another process marked still count while a state file's lock is held
                // past its bound: take in what the file holds now, without the lock.
                if unavailable && let Some(peeked) = store.peek() {
                    let mut state = self.lock_state();
                    state.merge(&peeked);
                    self.publish(&state);
                }
                return Err(e);
            }
        };
        let mut state = self.lock_state();
        self.take_in(&mut state, loaded, store.as_ref());
        drop(state);
        self.health.loaded.store(true, Ordering::SeqCst);
        self.health.succeeded();
        Ok(())
    }

    fn persist(&self) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        // The state, the changes queued and their count, taken together under the state lock.
        let (snapshot, changes, count) = {
            let state = self.lock_state();
            let pending = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            (
                state.clone(),
                pending,
                self.health.changes.load(Ordering::SeqCst),
            )
        };
        let merged = match store.merge_and_store(&snapshot, &changes) {
            Ok(merged) => merged,
            Err(e) => {
                let e = e.into_error();
                self.health.failed(&e);
                return Err(e);
            }
        };
        let mut state = self.lock_state();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let written = changes.len().min(pending.len());
            pending.drain(..written);
        }
        self.take_in(&mut state, merged, store.as_ref());
        drop(state);
        self.health.saved.fetch_max(count, Ordering::SeqCst);
        self.health.loaded.store(true, Ordering::SeqCst);
        self.health.succeeded();
        Ok(())
    }

    /// One sync with the store (blocking): pending changes are written (which also takes in
    /// other processes' writes); otherwise the store is reloaded if it changed. Failures are
    /// recorded in the store health.
    fn sync(&self, force_load: bool) {
        let Some(store) = &self.store else {
            return;
        };
        if self.health.unsaved() {
            // A second round writes what the first found missing from the store.
            for _ in 0..2 {
                if self.persist().is_err() || !self.health.unsaved() {
                    break;
                }
            }
            return;
        }
        if (force_load || store.changed() || !self.health.loaded.load(Ordering::SeqCst))
            && let Err(e) = self.reload()
        {
            tracing::debug!(error = %e, "aliyun-guard: could not reload the guard state");
        }
    }

    /// Starts a sync on a blocking thread unless one is under way.
    fn sync_in_background(self: &Arc<Self>) {
        if self.health.syncing.swap(true, Ordering::SeqCst) {
            return;
        }
        let slot = SyncSlot(Arc::clone(self));
        let job = move || {
            slot.0.sync(false);
            drop(slot);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(job);
            }
            Err(_) => {
                let _ = std::thread::Builder::new()
                    .name("aliyun-guard-state".into())
                    .spawn(job);
            }
        }
    }

    /// What a store's listener reports (on its own thread).
    fn pushed(&self, pushed: Pushed, error: Option<&Error>) {
        match pushed {
            Pushed::Changed => {
                if let Err(e) = self.reload() {
                    tracing::debug!(error = %e, "aliyun-guard: could not reload the guard state");
                }
            }
            Pushed::Sync => self.sync(true),
            Pushed::Failed => {
                if let Some(e) = error {
                    self.health.failed(e);
                }
            }
            Pushed::Alive => {}
        }
    }

    /// Rebuilds the lock-free key map from `state` (called with the state lock held).
    fn publish(&self, state: &State) {
        let old = Arc::clone(&self.snapshot.load().keys);
        let map: KeyMap = state
            .records()
            .map(|record| {
                if let Some(previous) = old.get(&record.fingerprint) {
                    record
                        .warned
                        .store(previous.warned.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                (record.fingerprint, Arc::new(record))
            })
            .collect();
        self.set_keys(Arc::new(map));
        self.apply_learned(state);
    }

    /// Adds learned entries missing from the table (called with the state lock held).
    fn apply_learned(&self, state: &State) {
        let current = Arc::clone(&self.snapshot.load().table);
        let missing: Vec<&LearnedEntry> = state
            .learned()
            .filter(|l| !current.is_blocked(&l.product, &l.version, &l.action))
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut table = (*current).clone();
        for l in missing {
            table.insert(&l.product, &l.version, &l.action);
        }
        self.set_table(Arc::new(table));
    }

    /// Swaps in a new table (writers hold the state lock, so there is no lost update).
    fn set_table(&self, table: Arc<RestrictionTable>) {
        let keys = Arc::clone(&self.snapshot.load().keys);
        self.snapshot.store(Arc::new(Snapshot { keys, table }));
    }

    /// Swaps in a new key map (writers hold the state lock).
    fn set_keys(&self, keys: Arc<KeyMap>) {
        let table = Arc::clone(&self.snapshot.load().table);
        self.snapshot.store(Arc::new(Snapshot { keys, table }));
    }
}

/// The compromised keys and the table, read together by the check before sending.
struct Snapshot {
    keys: Arc<KeyMap>,
    table: Arc<RestrictionTable>,
}

/// What the transport knows about a leak answer.
pub(crate) struct LeakContext<'a> {
    pub key: KeyFingerprint,
    pub masked_key_id: &'a str,
    /// The long-lived key temporary credentials were minted from: fingerprint and masked id.
    pub parent: Option<(KeyFingerprint, &'a str)>,
    pub product: &'a str,
    pub version: &'a str,
    pub action: &'a str,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    pub server_code: Option<String>,
    pub server_message: Option<String>,
    pub source: EvidenceSource,
    /// The host that answered.
    pub host: &'a str,
    /// Whether the answer came over https (only then may it teach the table by default).
    pub secure_transport: bool,
}
