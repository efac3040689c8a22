//! The state kept in a directory: `state.json` there, every write taking an exclusive lock on
//! `state.lock`, reading the file, merging, writing a temporary file and renaming it over
//! `state.json`, so several processes writing at once lose nothing and a crash leaves the old
//! file whole. The lock is waited for a bounded time only. A file that was read and does not
//! parse is renamed `state.json.corrupt-*` with a warning and the guard goes on without it; a
//! file that cannot be read (permission, I/O, not a regular file) is an error naming it, and
//! stays where it is.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::state_store::StoreError;
use super::store::{MAX_STATE_BYTES, State};
use crate::error::Error;
use crate::fs_safe::{self, ReadError};

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

/// Settings of the state directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreOptions {
    /// Longest wait for the lock.
    pub lock_wait: Duration,
    /// Age after which learned entries are dropped.
    pub learned_ttl: Duration,
}

/// The state kept in a directory (`state.json`, `state.lock`): one implementation of a state
/// store (load a snapshot; merge a delta in and store it).
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    dir: PathBuf,
    options: StoreOptions,
    /// Permission bits of the files created (0600, or 0660 in a group-writable directory).
    file_mode: u32,
    /// The group to give new files (the directory's, in a group-writable directory without the
    /// setgid bit).
    group: Option<u32>,
}

/// Size and modification time of the state file, to notice other processes' writes.
pub(crate) type Stamp = Option<(u64, std::time::SystemTime)>;

impl StateFile {
    /// Uses `dir`, creating it (mode 0700) if needed. It must be a directory, not a symlink.
    pub(crate) fn open(dir: &Path, options: StoreOptions) -> Result<Self, Error> {
        let err = |message: &str, source: Option<std::io::Error>| Error::State {
            path: dir.to_path_buf(),
            message: message.to_string(),
            source,
        };
        let meta = match fs::symlink_metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut builder = fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder
                    .create(dir)
                    .map_err(|e| err("cannot create the state directory", Some(e)))?;
                fs::symlink_metadata(dir)
                    .map_err(|e| err("cannot inspect the state directory", Some(e)))?
            }
            Err(e) => return Err(err("cannot inspect the state directory", Some(e))),
        };
        if meta.file_type().is_symlink() {
            return Err(err(
                "the state directory is a symbolic link; give the real directory",
                None,
            ));
        }
        if !meta.is_dir() {
            return Err(err("the state directory is not a directory", None));
        }
        #[cfg(unix)]
        let (file_mode, group) = {
            use std::os::unix::fs::MetadataExt;
            let mode = meta.mode();
            if mode & 0o002 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    "aliyun-guard: the state directory is writable by every user; anyone can plant \
                     or remove its files (use a private or group-shared directory)"
                );
            }
            if mode & 0o020 != 0 && mode & 0o002 == 0 {
                // Shared by a group: the group reads and writes the files. With the setgid bit
                // the kernel gives new files the directory's group; without, they are chowned.
                let setgid = mode & 0o2000 != 0;
                (0o660, (!setgid).then_some(meta.gid()))
            } else {
                (0o600, None)
            }
        };
        #[cfg(not(unix))]
        let (file_mode, group) = (0o600, None);
        Ok(Self {
            dir: dir.to_path_buf(),
            options,
            file_mode,
            group,
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub(crate) fn stamp(&self) -> Stamp {
        let meta = fs::symlink_metadata(self.path()).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }

    /// Gives a file this process created the mode and group of the directory's policy.
    fn adopt(&self, file: &File) {
        #[cfg(unix)]
        if let Some(gid) = self.group
            && let Err(e) = std::os::unix::fs::fchown(file, None, Some(gid))
        {
            tracing::debug!(error = %e, "aliyun-guard: cannot give a state file the directory's group");
        }
        #[cfg(not(unix))]
        let _ = file;
    }

    /// Narrows the mode of a file this user owns that an older version created too open (a
    /// `0644` lock file lets any local user hold the lock).
    fn tighten(&self, file: &File) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let Ok(meta) = file.metadata() else {
                return;
            };
            // Only the owner may change it (fchmod fails with EPERM otherwise: left as it is).
            if meta.mode() & 0o777 & !self.file_mode != 0 {
                let _ = file.set_permissions(fs::Permissions::from_mode(self.file_mode));
            }
        }
        #[cfg(not(unix))]
        let _ = file;
    }

    /// Takes the exclusive lock, waiting at most the configured bound (retrying with short
    /// sleeps, so that cooperating processes take turns and lose nothing).
    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK_FILE);
        let unavailable = |message: String, source: Option<std::io::Error>| {
            StoreError::Unavailable(Error::State {
                path: path.clone(),
                message,
                source,
            })
        };
        let file = match fs_safe::open_lock_file(&path, self.file_mode) {
            Ok((file, created)) => {
                if created {
                    self.adopt(&file);
                } else {
                    self.tighten(&file);
                }
                file
            }
            Err(ReadError::Io(e)) => {
                return Err(unavailable("cannot open the lock file".into(), Some(e)));
            }
            Err(e) => return Err(unavailable(format!("cannot use the lock file: {e}"), None)),
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(unavailable("cannot lock the state".into(), Some(e)));
                }
            }
            let waited = started.elapsed();
            if waited >= self.options.lock_wait {
                return Err(unavailable(
                    format!(
                        "another process has held the lock for more than {} ms",
                        self.options.lock_wait.as_millis()
                    ),
                    None,
                ));
            }
            let jitter = Duration::from_micros(fastrand::u64(..=pause.as_micros() as u64));
            std::thread::sleep((pause + jitter).min(self.options.lock_wait - waited));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Reads the state under the lock (a shared reader still takes the exclusive lock, so that it
    /// never sees a file another process is setting aside).
    pub(crate) fn load(&self) -> Result<State, StoreError> {
        let _lock = self.lock()?;
        self.read_unlocked()
    }

    /// Reads, merges `ours` in, writes back atomically, and returns the merged state. Nothing is
    /// written when the file could not be read.
    pub(crate) fn merge_and_store(&self, ours: &State) -> Result<State, StoreError> {
        let _lock = self.lock()?;
        let on_disk = self.read_unlocked()?;
        let mut merged = on_disk.clone();
        merged.merge(ours);
        merged.expire_learned(OffsetDateTime::now_utc(), self.options.learned_ttl);
        if merged != on_disk || self.stamp().is_none() {
            self.write_unlocked(&merged)
                .map_err(StoreError::Unavailable)?;
        }
        Ok(merged)
    }

    fn read_unlocked(&self) -> Result<State, StoreError> {
        let path = self.path();
        let file_error = |message: String, source: Option<std::io::Error>| {
            StoreError::File(Error::State {
                path: path.clone(),
                message,
                source,
            })
        };
        let bytes = match fs_safe::read_regular(&path, MAX_STATE_BYTES) {
            Ok(bytes) => bytes,
            Err(ReadError::NotFound) => return Ok(State::default()),
            Err(e @ ReadError::TooLarge(_)) => {
                // Read to the cap: a file that size is not a state file this guard wrote.
                self.set_aside(&path, &e.to_string());
                return Ok(State::default());
            }
            Err(ReadError::Io(e)) => {
                return Err(file_error("cannot read the file".into(), Some(e)));
            }
            Err(e @ ReadError::NotRegular(_)) => {
                return Err(file_error(format!("cannot use the file: {e}"), None));
            }
        };
        match State::from_json(&bytes, &path) {
            Ok(mut state) => {
                state.expire_learned(OffsetDateTime::now_utc(), self.options.learned_ttl);
                Ok(state)
            }
            Err(failure) if failure.other_version => Err(StoreError::Unavailable(Error::State {
                path: path.clone(),
                message: failure.reason,
                source: None,
            })),
            Err(failure) => {
                self.set_aside(&path, &failure.reason);
                Ok(State::default())
            }
        }
    }

    /// Reads the state file without the lock, for when another process holds the lock past the
    /// bound: writes are atomic renames, so the file read is a whole old or new one. Nothing is
    /// set aside or written; any failure gives `None`.
    pub(crate) fn peek(&self) -> Option<State> {
        let bytes = fs_safe::read_regular(&self.path(), MAX_STATE_BYTES).ok()?;
        let mut state = State::from_json(&bytes, &self.path()).ok()?;
        state.expire_learned(OffsetDateTime::now_utc(), self.options.learned_ttl);
        Some(state)
    }

    fn set_aside(&self, path: &Path, reason: &str) {
        let stamp = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let aside = self.dir.join(format!(
            "{STATE_FILE}.corrupt-{stamp}-{}",
            std::process::id()
        ));
        match fs::rename(path, &aside) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                moved_to = %aside.display(),
                reason,
                "aliyun-guard: the guard state file is unreadable; set it aside and started afresh"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                reason,
                error = %e,
                "aliyun-guard: the guard state file is unreadable and could not be set aside"
            ),
        }
    }

    fn write_unlocked(&self, state: &State) -> Result<(), Error> {
        let path = self.path();
        let err = |message: &str, e: std::io::Error| Error::State {
            path: path.clone(),
            message: message.to_string(),
            source: Some(e),
        };
        let bytes = state
            .to_json()
            .map_err(|e| err("cannot serialize the state", std::io::Error::other(e)))?;
        let tmp = self.dir.join(format!(
            ".{STATE_FILE}.tmp-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut created = false;
        let result = (|| {
            let mut file = fs_safe::create_new_file(&tmp, self.file_mode)?;
            created = true;
            self.adopt(&file);
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            if created {
                let _ = fs::remove_file(&tmp);
            }
            return Err(err("cannot write the state file", e));
        }
        Ok(())
    }
}
