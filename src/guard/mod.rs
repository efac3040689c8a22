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

mod builder;
pub(crate) mod detect;
mod hooks;
#[cfg(feature = "redis")]
mod redis_store;
mod state_file;
mod state_store;
pub(crate) mod store;
mod sync;
pub(crate) mod table;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;
use time::OffsetDateTime;

pub use crate::error::compromised::{CompromisedKey, Detection};
pub use crate::error::remediation::{Link, REMEDIATION, Remediation, Step};
pub use builder::GuardBuilder;
pub(crate) use detect::{detect_body, fields_are_leak, value_is_leak};
pub use hooks::{CompromisedEvent, FirstSighting};
pub use store::{ClearedKey, Evidence, EvidenceSource, KeyFingerprint, KeyRecord, LearnedEntry};
pub use sync::StoreHealth;
pub use table::{Actions, Coverage, Restriction, RestrictionTable};

use crate::error::Error;
use crate::response::{Decoded, ErrorFields};
use crate::secret::mask_key_id;
use hooks::Hooks;
use state_store::{Change, StateStore};
use store::State;
use sync::StoreMonitor;

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

type KeyMap = HashMap<KeyFingerprint, Arc<KeyRecord>, RandomState>;

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

    /// The client's check before sending (entry point 1 of 2): refreshes from the store when
    /// due, then refuses when the call's key, or the long-lived key it was minted from, is known
    /// to be compromised and the policy blocks the call, for the request's `product` and for
    /// every product its host serves (`host_products`: a mislabelled product does not slip a
    /// blocked call past the guard). The error names the call's key and, for temporary
    /// credentials, the long-lived key to rotate, both masked.
    pub(crate) fn check_call(
        self: &Arc<Self>,
        keys: &CallKeys<'_>,
        product: &str,
        host_products: &[String],
        version: &str,
        action: &str,
    ) -> Result<(), Error> {
        self.refresh_if_due();
        // The usual case, no key known compromised: one lock-free load and no lookup.
        if self.shared.snapshot.load().keys.is_empty() {
            return Ok(());
        }
        let checked = std::iter::once((&keys.key, false))
            .chain(keys.parent.as_ref().map(|(parent, _)| (parent, true)));
        for (fingerprint, is_parent) in checked {
            let others = host_products
                .iter()
                .map(String::as_str)
                .filter(|p| !p.eq_ignore_ascii_case(product));
            for product in std::iter::once(product).chain(others) {
                if let Verdict::Refuse { on_table } =
                    self.verdict(fingerprint, product, version, action)
                    && let Some(mut refusal) =
                        self.refusal(fingerprint, on_table, product, version, action)
                {
                    refusal.masked_key_id = keys.masked_key_id.to_string();
                    refusal.parent_masked_key_id =
                        keys.parent.map(|(_, masked)| masked.to_string());
                    tracing::warn!(
                        key = %keys.masked_key_id,
                        parent_key = keys.parent.map_or("", |(_, masked)| masked),
                        compromised = if is_parent { "parent key" } else { "key" },
                        product,
                        action,
                        "aliyun-guard: refused a call before sending: the key is compromised"
                    );
                    return Err(refusal.into());
                }
            }
        }
        Ok(())
    }

    /// The client's record of an answer (entry point 2 of 2): when the answer (decoded, or its
    /// raw body when it did not decode) is the leak answer, returns its recording: a future
    /// that records the key (and its parent key), learns the table entry if missing, persists
    /// within the call's budget, and resolves to the error to give the caller. Any other answer
    /// is handed back untouched.
    ///
    /// `call` describes the call; it is asked only for a leak answer, so that other answers
    /// cost nothing beyond the detection. The recording is boxed: the leak answer is rare, and
    /// its state does not enlarge the future of every call.
    pub(crate) fn record_answer<'s, 'c: 's>(
        self: &'s Arc<Self>,
        decoded: Decoded,
        body: &[u8],
        call: impl FnOnce() -> AnsweredCall<'c>,
    ) -> Result<Decoded, Recording<'s>> {
        let fields = match decoded {
            Decoded::Data(ref value) if value_is_leak(value) => {
                ErrorFields::from_json(value).unwrap_or_default()
            }
            Decoded::Error(fields) if fields_are_leak(&fields) => fields,
            Decoded::Fault(fault) => match detect_body(body) {
                Some(fields) => fields,
                None => return Ok(Decoded::Fault(fault)),
            },
            other => return Ok(other),
        };
        Err(Box::pin(self.record_leak_answer(fields, call())))
    }

    async fn record_leak_answer(
        self: &Arc<Self>,
        fields: ErrorFields,
        call: AnsweredCall<'_>,
    ) -> CompromisedKey {
        let text = |t: &str| (call.server_text)(t);
        let error = self.record_leak(LeakContext {
            key: call.keys.key,
            masked_key_id: call.keys.masked_key_id,
            parent: call.keys.parent,
            product: call.product,
            version: call.version,
            action: call.action,
            status: call.status,
            request_id: fields
                .request_id
                .as_deref()
                .map(text)
                .or(call.header_request_id),
            host_id: fields.host_id.as_deref().map(text),
            server_code: fields.code.as_deref().map(|c| text(c.trim())),
            server_message: fields.message.as_deref().map(text),
            host: call.host,
            secure_transport: call.secure_transport,
        });
        // Within the call's budget; failures are kept in the guard's store health.
        self.persist_within(call.deadline).await;
        error
    }

    /// Records a leak answer: remembers the key, learns the table entry if it was missing, and
    /// returns the error to give the caller. Persisting is left to [`Guard::persist`].
    fn record_leak(&self, leak: LeakContext<'_>) -> CompromisedKey {
        let now = self.now();
        let evidence = Evidence {
            product: leak.product.to_string(),
            version: leak.version.to_string(),
            action: leak.action.to_string(),
            request_id: leak.request_id.clone(),
            at: now,
            source: EvidenceSource::ServerAnswer,
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
        if !on_table && !trusted {
            tracing::warn!(
                product = leak.product,
                version = leak.version,
                action = leak.action,
                host = leak.host,
                "aliyun-guard: a leak answer from a plain-http endpoint does not teach the \
                 restriction table"
            );
        }
        if !on_table && trusted {
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
            status: Some(leak.status),
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
        error
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

    /// When the key with this fingerprint was first seen compromised, if it is known.
    pub(crate) fn first_seen(&self, fingerprint: KeyFingerprint) -> Option<OffsetDateTime> {
        self.shared
            .snapshot
            .load()
            .keys
            .get(&fingerprint)
            .map(|r| r.first_seen)
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

/// The compromised keys and the table, read together by the check before sending.
struct Snapshot {
    keys: Arc<KeyMap>,
    table: Arc<RestrictionTable>,
}

/// The keys of one call as the guard sees them: fingerprints and masked ids, never a secret.
#[derive(Clone, Copy)]
pub(crate) struct CallKeys<'a> {
    pub key: KeyFingerprint,
    pub masked_key_id: &'a str,
    /// The long-lived key temporary credentials were minted from: fingerprint and masked id.
    pub parent: Option<(KeyFingerprint, &'a str)>,
}

/// The recording of a leak answer ([`Guard::record_answer`]): resolves to the error to give the
/// caller.
pub(crate) type Recording<'a> = Pin<Box<dyn Future<Output = CompromisedKey> + Send + 'a>>;

/// The product a leak answer from a host is recorded under: the request's `product` when the
/// host serves it (or the host is not an Alibaba Cloud name, `host_products` empty), else the
/// first product the host serves.
pub(crate) fn leak_product<'a>(product: &'a str, host_products: &'a [String]) -> &'a str {
    match host_products.first() {
        Some(first)
            if !host_products
                .iter()
                .any(|p| p.eq_ignore_ascii_case(product)) =>
        {
            first
        }
        _ => product,
    }
}

/// What the client knows about a call whose answer is the leak answer.
pub(crate) struct AnsweredCall<'a> {
    pub keys: CallKeys<'a>,
    /// The product the answer is recorded under.
    pub product: &'a str,
    pub version: &'a str,
    pub action: &'a str,
    /// The host that answered.
    pub host: &'a str,
    /// Whether the answer came over https (only then may it teach the table by default).
    pub secure_transport: bool,
    pub status: u16,
    /// The request id from the answer's header, made fit for an error.
    pub header_request_id: Option<String>,
    /// Makes server text fit for an error: the call's secrets removed, key ids masked, control
    /// characters neutralised.
    pub server_text: &'a (dyn Fn(&str) -> String + Sync),
    /// Persisting the key waits at most until then.
    pub deadline: tokio::time::Instant,
}

/// What the guard records about a leak answer.
struct LeakContext<'a> {
    pub key: KeyFingerprint,
    pub masked_key_id: &'a str,
    /// The long-lived key temporary credentials were minted from: fingerprint and masked id.
    pub parent: Option<(KeyFingerprint, &'a str)>,
    pub product: &'a str,
    pub version: &'a str,
    pub action: &'a str,
    pub status: u16,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    pub server_code: Option<String>,
    pub server_message: Option<String>,
    /// The host that answered.
    pub host: &'a str,
    /// Whether the answer came over https (only then may it teach the table by default).
    pub secure_transport: bool,
}

#[cfg(test)]
mod entry_point_tests {
    use super::*;
    use crate::error::Error;
    use crate::response::decode;

    const KEY: &str = "LTAI5tEntryPointKey00abcd";
    const PARENT: &str = "LTAI5tEntryPointParentwxyz";
    const LEAK: &[u8] = br#"{"Code":"Forbidden","Message":"There is a risk of leakage of this AccessKey.","RequestId":"R-1"}"#;

    fn keys(parent: bool) -> CallKeys<'static> {
        CallKeys {
            key: KeyFingerprint::of(KEY),
            masked_key_id: "LTAI****abcd",
            parent: parent.then(|| (KeyFingerprint::of(PARENT), "LTAI****wxyz")),
        }
    }

    fn answered<'a>(text: &'a (dyn Fn(&str) -> String + Sync), parent: bool) -> AnsweredCall<'a> {
        AnsweredCall {
            keys: keys(parent),
            product: "Ecs",
            version: "2014-05-26",
            action: "RunInstances",
            host: "ecs.cn-hangzhou.aliyuncs.com",
            secure_transport: true,
            status: 403,
            header_request_id: None,
            server_text: text,
            deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn other_answers_are_handed_back_untouched_without_asking_for_the_call() {
        let guard = Arc::new(Guard::new());
        for (status, body) in [
            (200, &br#"{"RequestId":"R","Regions":{}}"#[..]),
            (400, br#"{"Code":"InvalidParameter","Message":"m"}"#),
            (502, b"<html>bad gateway</html>"),
        ] {
            let decoded = decode(status, body);
            let expected = format!("{decoded:?}");
            let back = guard
                .record_answer(decoded, body, || panic!("asked for a plain answer"))
                .unwrap_or_else(|_| panic!("{status}: not a leak answer"));
            assert_eq!(format!("{back:?}"), expected);
        }
        assert!(guard.compromised_keys().is_empty());
    }

    #[tokio::test]
    async fn a_leak_answer_is_recorded_with_its_parent_and_refused_next_time() {
        let guard = Arc::new(Guard::new());
        let text = |t: &str| format!("[{t}]");
        // The answer in every form: an error answer, and a non-JSON body quoting it.
        for body in [
            LEAK,
            &b"Forbidden : There is a risk of leakage of this AccessKey."[..],
        ] {
            let error = match guard.record_answer(decode(403, body), body, || answered(&text, true))
            {
                Err(recording) => recording.await,
                Ok(other) => panic!("missed the leak answer: {other:?}"),
            };
            assert_eq!(error.masked_key_id, "LTAI****abcd");
            assert_eq!(error.parent_masked_key_id.as_deref(), Some("LTAI****wxyz"));
            assert_eq!(error.detection, Detection::ServerAnswer);
            assert_eq!(error.status, Some(403));
        }
        let error = match guard.record_answer(decode(403, LEAK), LEAK, || answered(&text, true)) {
            Err(recording) => recording.await,
            Ok(_) => unreachable!(),
        };
        // Server text passes through the client's redaction.
        assert_eq!(error.request_id.as_deref(), Some("[R-1]"));
        assert_eq!(error.server_code.as_deref(), Some("[Forbidden]"));
        assert!(guard.is_compromised(KEY) && guard.is_compromised(PARENT));
        // The check before sending now refuses a blocked action, naming both keys masked...
        let refused = guard
            .check_call(&keys(true), "Ecs", &[], "2014-05-26", "RunInstances")
            .unwrap_err();
        let Error::CompromisedKey(refusal) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(refusal.detection, Detection::RefusedLocally);
        assert_eq!(refusal.masked_key_id, "LTAI****abcd");
        assert_eq!(
            refusal.parent_masked_key_id.as_deref(),
            Some("LTAI****wxyz")
        );
        // ...and lets a read-only one through.
        guard
            .check_call(&keys(true), "Ecs", &[], "2014-05-26", "DescribeRegions")
            .unwrap();
    }

    #[test]
    fn the_check_covers_the_parent_key_and_every_product_of_the_host() {
        let guard = Arc::new(Guard::new());
        guard.mark_compromised(PARENT, "notice").unwrap();
        // The call's own key is clean; its parent is not.
        assert!(
            guard
                .check_call(&keys(false), "Ram", &[], "2015-05-01", "CreateAccessKey")
                .is_ok()
        );
        assert!(
            guard
                .check_call(&keys(true), "Ram", &[], "2015-05-01", "CreateAccessKey")
                .is_err()
        );
        // A product label that the host does not serve does not slip past the check.
        guard.mark_compromised(KEY, "notice").unwrap();
        assert!(
            guard
                .check_call(
                    &keys(false),
                    "Harmless",
                    &[],
                    "2015-05-01",
                    "CreateAccessKey"
                )
                .is_ok()
        );
        let host_products = ["Ram".to_string()];
        assert!(
            guard
                .check_call(
                    &keys(false),
                    "Harmless",
                    &host_products,
                    "2015-05-01",
                    "CreateAccessKey"
                )
                .is_err()
        );
    }
}
