//! [`GuardBuilder`]: the guard's settings, and building it (loading the shared state).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::hooks::{AsyncCallback, Callback, Hooks};
#[cfg(feature = "redis")]
use super::redis_store;
use super::state_file::{StateFile, StoreOptions};
use super::state_store::{DirStore, StateStore, StoreError};
use super::store::State;
use super::sync::StoreMonitor;
use super::{
    CompromisedEvent, CompromisedKey, DEFAULT_LEARNED_TTL, DEFAULT_LOCK_TIMEOUT, Guard, KeyMap,
    LeakPolicy, RestrictionTable, STATE_DIR_ENV, Shared, Snapshot,
};
#[cfg(feature = "redis")]
use super::{REDIS_PREFIX_ENV, REDIS_URL_ENV};
use crate::error::Error;

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
    /// With Redis (`redis`, feature `redis`) the hooks fire once per key in the whole fleet: the
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
