//! The rotation journal (in the state directory, 0600), and careful file writes.
//!
//! The journal is written BEFORE `CreateAccessKey` and after every step, so that a rerun after a
//! lost answer or a failure between steps resumes instead of creating another key. It holds no
//! key id in clear (SHA-256 fingerprints and masked ids) and never a secret.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aliyun_guard::guard::KeyFingerprint;
use serde::{Deserialize, Serialize};

const FORMAT: &str = "aliyun-guard-rotation";
/// Largest journal or config file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The state of one rotation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Journal {
    pub format: String,
    pub version: u32,
    /// Fingerprint of the key being replaced.
    pub old_key: String,
    pub old_key_masked: String,
    pub user_name: String,
    /// Fingerprints of the user's keys just before `CreateAccessKey`.
    pub before: Vec<String>,
    /// `CreateAccessKey` may have been sent.
    pub creating: bool,
    /// When `CreateAccessKey` was about to be sent (RFC 3339, UTC): only a key created after it
    /// (less a clock allowance) can be the one a lost answer made.
    #[serde(default)]
    pub creating_since: Option<String>,
    /// When the interrupted `CreateAccessKey` ended without an answer (RFC 3339, UTC).
    #[serde(default)]
    pub create_ended: Option<String>,
    /// Fingerprint of the new key, once known (from the answer, or adopted on a rerun).
    pub new_key: Option<String>,
    pub new_key_masked: Option<String>,
    /// The new secret was saved to the destination.
    pub secret_saved: bool,
    /// Where the secret went (a description, no secret).
    pub destination: Option<String>,
    pub deactivated: bool,
    pub deleted: bool,
    pub purged: bool,
    pub recorded: bool,
    pub updated_at: String,
}

impl Journal {
    pub fn new(old_key_id: &str, old_key_masked: &str, user_name: &str) -> Self {
        Self {
            format: FORMAT.into(),
            version: 1,
            old_key: fingerprint(old_key_id),
            old_key_masked: old_key_masked.into(),
            user_name: user_name.into(),
            ..Self::default()
        }
    }

    /// The journal's path for a key.
    pub fn path(state_dir: &Path, old_key_id: &str) -> PathBuf {
        let fp = fingerprint(old_key_id);
        state_dir.join(format!("rotation-{}.json", &fp[..24]))
    }

    /// Loads the journal; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let Some(bytes) = read_capped(path, MAX_FILE_BYTES)? else {
            return Ok(None);
        };
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the rotation journal {} does not parse: {e}",
                path.display()
            )
        })?;
        if journal.format != FORMAT || journal.version != 1 {
            return Err(format!("{} is not a rotation journal", path.display()));
        }
        // Fingerprints are 64 hex digits: anything else is not a journal this tool wrote.
        let is_fingerprint = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_fingerprint(&journal.old_key)
            || !journal.before.iter().all(|f| is_fingerprint(f))
            || !journal.new_key.as_deref().is_none_or(is_fingerprint)
        {
            return Err(format!(
                "{} is not a rotation journal (bad key fingerprint)",
                path.display()
            ));
        }
        Ok(Some(journal))
    }

    /// Writes the journal atomically, 0600.
    pub fn save(&mut self, path: &Path) -> Result<(), String> {
        self.updated_at = crate::output::now();
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        write_atomic(path, &bytes)
            .map_err(|e| format!("cannot write the rotation journal {}: {e}", path.display()))
    }
}

/// The fingerprint of a key id, as hex.
pub fn fingerprint(key_id: &str) -> String {
    KeyFingerprint::of(key_id).to_hex()
}

#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO swapped in is never waited on (and is refused as not a regular file).
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .mode(0o600);
}

#[cfg(not(unix))]
fn no_follow(_options: &mut OpenOptions) {}

/// Reads a regular file of at most `cap` bytes; `None` if it does not exist. Symbolic links and
/// other non-regular files are refused.
pub fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.file_type().is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let file = options
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > cap {
        return Err(format!("{} is larger than {cap} bytes", path.display()));
    }
    Ok(Some(bytes))
}

/// Creates `path` (which must not exist; never through a symbolic link), 0600, with `bytes`.
pub fn create_exclusive(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    no_follow(&mut options);
    let mut file: File = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` atomically (a 0600 temporary file renamed over it). A symbolic link at
/// `path` is refused, not followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(std::io::Error::other("not a regular file"));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    if let Err(e) = create_exclusive(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates a directory (and its parents) 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_without_key_ids() {
        let dir = std::env::temp_dir().join(format!("ag-journal-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let path = Journal::path(&dir, "LTAI5tExampleKeyIdwxyz");
        let mut j = Journal::new("LTAI5tExampleKeyIdwxyz", "LTAI****wxyz", "alice");
        j.creating = true;
        j.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("LTAI5tExampleKeyIdwxyz"));
        assert!(Journal::load(&path).unwrap().unwrap().creating);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
