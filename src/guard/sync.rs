//! Keeping the guard's state in step with its store (a state directory or Redis): loading,
//! persisting, background syncs, what a store's listener pushes, and the store's health.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

use super::state_store::{Change, Pushed, StateStore, StoreError};
use super::store::State;
use super::{Guard, KeyMap, LearnedEntry, RestrictionTable, Shared, Snapshot};
use crate::error::Error;

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
pub(super) struct StoreMonitor {
    /// Count of in-memory changes made.
    pub(super) changes: AtomicU64,
    /// The count of changes that the store holds (all of them when equal to `changes`).
    pub(super) saved: AtomicU64,
    /// Whether the file has been read at least once.
    pub(super) loaded: AtomicBool,
    /// Whether the store is failing now.
    pub(super) outage: AtomicBool,
    /// A background sync is under way.
    pub(super) syncing: AtomicBool,
    pub(super) last_error: Mutex<Option<String>>,
}

impl StoreMonitor {
    pub(super) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn unsaved(&self) -> bool {
        self.changes.load(Ordering::SeqCst) > self.saved.load(Ordering::SeqCst)
    }

    pub(super) fn failed(&self, error: &Error) {
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

    pub(super) fn succeeded(&self) {
        if self.outage.swap(false, Ordering::SeqCst) {
            tracing::info!("aliyun-guard: the guard state store is available again");
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

impl Guard {
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
}

impl Shared {
    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a change made in memory (called with the state lock held, so that the queue is in
    /// the order of the changes).
    pub(super) fn changed(&self, change: Change) {
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
    pub(super) fn take_in(&self, state: &mut State, loaded: State, store: &dyn StateStore) {
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

    pub(super) fn reload(&self) -> Result<(), Error> {
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

    pub(super) fn persist(&self) -> Result<(), Error> {
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
    pub(super) fn sync(&self, force_load: bool) {
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
    pub(super) fn sync_in_background(self: &Arc<Self>) {
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
    pub(super) fn pushed(&self, pushed: Pushed, error: Option<&Error>) {
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
    pub(super) fn publish(&self, state: &State) {
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
    pub(super) fn apply_learned(&self, state: &State) {
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
    pub(super) fn set_table(&self, table: Arc<RestrictionTable>) {
        let keys = Arc::clone(&self.snapshot.load().keys);
        self.snapshot.store(Arc::new(Snapshot { keys, table }));
    }

    /// Swaps in a new key map (writers hold the state lock).
    pub(super) fn set_keys(&self, keys: Arc<KeyMap>) {
        let table = Arc::clone(&self.snapshot.load().table);
        self.snapshot.store(Arc::new(Snapshot { keys, table }));
    }
}
