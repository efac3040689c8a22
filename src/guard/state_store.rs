//! The seam between the guard and where its state lives.
//!
//! The guard keeps the state in memory and publishes a lock-free snapshot for the check before
//! sending; a [`StateStore`] is where it is shared (with restarts, other processes, other hosts).
//! The guard alone decides when the store is used: at build, after a leak answer (bounded by the
//! call's budget), and in the background. Three stores exist: none (memory only), a state
//! directory ([`DirStore`]) and, with the `redis` feature, Redis.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::state_file::{Stamp, StateFile};
use super::store::{Evidence, KeyFingerprint, LearnedEntry, State};
use crate::error::Error;

/// One change the guard made to its state, kept until the store holds it.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A key seen compromised.
    Sighting {
        fp: KeyFingerprint,
        masked: String,
        evidence: Evidence,
    },
    /// A key cleared by hand.
    Clearing {
        fp: KeyFingerprint,
        masked: String,
        at: OffsetDateTime,
    },
    /// A table entry learned from a leak answer.
    Learned(LearnedEntry),
}

impl Change {
    /// Applies the change to a state (used to lay changes not yet stored over a state loaded from
    /// an authoritative store).
    pub(crate) fn apply(&self, state: &mut State) {
        match self {
            Change::Sighting {
                fp,
                masked,
                evidence,
            } => {
                state.record(*fp, masked, evidence.clone());
            }
            Change::Clearing { fp, masked, at } => {
                state.clear(*fp, masked, *at);
            }
            Change::Learned(entry) => state.learn(entry.clone()),
        }
    }
}

/// What the store pushes to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Pushed {
    /// Another host changed the shared state: load it.
    Changed,
    /// The connection came back (or the periodic reconciliation is due): write what waits, then
    /// load.
    Sync,
    /// The store failed (the guard records the outage).
    Failed,
    /// Nothing happened (the listener asks whether the guard still exists).
    Alive,
}

/// Called by a store's background listener; returns `false` when the guard is gone (the
/// listener then stops).
pub(crate) type PushFn = Arc<dyn Fn(Pushed, Option<&crate::Error>) -> bool + Send + Sync>;

/// Where the guard's state is shared. Blocking: the guard calls it off the calling task (on a
/// blocking thread), and every implementation bounds its waits.
pub(crate) trait StateStore: Send + Sync + fmt::Debug {
    /// Reads the shared state.
    fn load(&self) -> Result<State, StoreError>;

    /// Writes `changes` (all made in `ours`, oldest first) and returns the shared state after the
    /// write, with other writers' changes.
    fn merge_and_store(&self, ours: &State, changes: &[Change]) -> Result<State, StoreError>;

    /// Whether a loaded state replaces the guard's (the store orders events itself) rather than
    /// being merged into it.
    fn authoritative(&self) -> bool {
        false
    }

    /// Whether the shared state may have changed since this store last read or wrote it.
    fn changed(&self) -> bool {
        false
    }

    /// Starts pushing changes to `push` (a background listener), if the store can.
    fn subscribe(&self, push: PushFn) {
        let _ = push;
    }

    /// Whether the store is shared by a fleet and decides which host notifies.
    fn fleet(&self) -> bool {
        false
    }

    /// Claims the right to notify about `fp` for the whole fleet: `Some(true)` for the first
    /// claim, `Some(false)` when another host claimed it, `None` when the store has no fleet
    /// (or cannot answer now: the caller notifies).
    fn claim_notification(&self, fp: &KeyFingerprint) -> Option<bool> {
        let _ = fp;
        None
    }

    /// The state file, for a state directory.
    fn path(&self) -> Option<PathBuf> {
        None
    }

    /// A best-effort read for when [`StateStore::load`] is unavailable (a state file's lock held
    /// past its bound): what the store holds, read without its coordination, never repaired.
    fn peek(&self) -> Option<State> {
        None
    }

    /// Where the state is, for people (never a secret).
    fn describe(&self) -> String;
}

/// The state directory as a store: `state.json` merged under a bounded lock.
#[derive(Debug)]
pub(crate) struct DirStore {
    file: StateFile,
    /// Size and modification time when this process last read or wrote the file.
    stamp: Mutex<Stamp>,
}

impl DirStore {
    pub(crate) fn new(file: StateFile) -> Self {
        Self {
            file,
            stamp: Mutex::new(None),
        }
    }

    fn remember_stamp(&self) {
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = self.file.stamp();
    }
}

impl StateStore for DirStore {
    fn load(&self) -> Result<State, StoreError> {
        let state = self.file.load()?;
        self.remember_stamp();
        Ok(state)
    }

    fn merge_and_store(&self, ours: &State, _changes: &[Change]) -> Result<State, StoreError> {
        let merged = self.file.merge_and_store(ours)?;
        self.remember_stamp();
        Ok(merged)
    }

    fn changed(&self) -> bool {
        self.file.stamp() != *self.stamp.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self) -> Option<PathBuf> {
        Some(self.file.path())
    }

    fn peek(&self) -> Option<State> {
        self.file.peek()
    }

    fn describe(&self) -> String {
        self.file.path().display().to_string()
    }
}

/// Why the state store could not be used.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The store cannot be used now (lock held past the bound, lock file unusable, directory
    /// read-only or full): the guard goes on in memory and retries later.
    Unavailable(Error),
    /// The state file is there but cannot be read (permission, I/O, not a regular file): an
    /// error naming the file, which stays in place.
    File(Error),
}

impl StoreError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            StoreError::Unavailable(e) | StoreError::File(e) => e,
        }
    }
}
