//! Key state: which AccessKeys are known to be compromised, and why.
//!
//! Keys are identified by a [`KeyFingerprint`] (SHA-256 of the key id), so the state, in memory or
//! on disk, holds no key ids (only masked ones, for people) and no secrets. With a state directory
//! the state lives in `state.json` there: every write takes an exclusive lock on `state.lock`,
//! reads the file, merges, writes a temporary file and renames it over `state.json`, so several
//! processes writing at once lose nothing and a crash leaves the old file whole. A file that cannot
//! be read is renamed `state.json.corrupt-*` with a warning and the guard goes on without it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::credentials::mask_key_id;
use crate::error::Error;

/// Largest state file read; a larger one is set aside as corrupt.
pub const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;
/// Evidence entries kept per key (the newest).
pub const MAX_EVIDENCE: usize = 16;
const FORMAT: &str = "aliyun-guard-state";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

/// A one-way identifier of an AccessKey ID: SHA-256 of the id, domain-separated.
///
/// ```
/// use aliyun_guard::guard::KeyFingerprint;
/// let a = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
/// assert_eq!(a, KeyFingerprint::of(" LTAI5tExampleKeyIdwxyz "));
/// assert_eq!(KeyFingerprint::from_hex(&a.to_hex()), Some(a));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint([u8; 32]);

impl KeyFingerprint {
    /// The fingerprint of an AccessKey ID (surrounding white space ignored).
    pub fn of(access_key_id: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"aliyun-guard/key-id/v1\0");
        hasher.update(access_key_id.trim().as_bytes());
        Self(hasher.finalize().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({}…)", &self.to_hex()[..12])
    }
}

/// How a key came to be known as compromised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EvidenceSource {
    /// Alibaba answered a call with the leak error.
    ServerAnswer,
    /// An operator marked it (from Alibaba's notice, Security Center, ...).
    Manual {
        /// The operator's note.
        note: String,
    },
}

/// One observation that a key is compromised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evidence {
    /// Product code of the call (empty for a manual mark).
    #[serde(default)]
    pub product: String,
    /// API version of the call.
    #[serde(default)]
    pub version: String,
    /// Action of the call.
    #[serde(default)]
    pub action: String,
    /// Request id of the server's answer.
    #[serde(default)]
    pub request_id: Option<String>,
    /// When it was seen.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How it was seen.
    pub source: EvidenceSource,
}

impl Evidence {
    /// An operator's mark, with no call attached.
    pub(crate) fn manual(note: &str, at: OffsetDateTime) -> Self {
        Self {
            product: String::new(),
            version: String::new(),
            action: String::new(),
            request_id: None,
            at,
            source: EvidenceSource::Manual {
                note: note.to_string(),
            },
        }
    }
}

/// A key known to be compromised.
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyRecord {
    /// Its fingerprint.
    pub fingerprint: KeyFingerprint,
    /// The masked key id, for people.
    pub masked_key_id: String,
    /// When it was first seen compromised.
    pub first_seen: OffsetDateTime,
    /// When it was last seen compromised.
    pub last_seen: OffsetDateTime,
    /// The newest observations (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<Evidence>,
    pub(crate) warned: AtomicBool,
}

impl Clone for KeyRecord {
    fn clone(&self) -> Self {
        Self {
            fingerprint: self.fingerprint,
            masked_key_id: self.masked_key_id.clone(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            evidence: self.evidence.clone(),
            warned: AtomicBool::new(self.warned.load(Ordering::Relaxed)),
        }
    }
}

/// A table entry the guard learned from a leak answer for an action not on the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LearnedEntry {
    /// Product code.
    pub product: String,
    /// API version.
    pub version: String,
    /// Action.
    pub action: String,
    /// When it was learned.
    #[serde(with = "time::serde::rfc3339")]
    pub learned_at: OffsetDateTime,
    /// Request id of the answer it was learned from.
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyDoc {
    fingerprint: String,
    masked_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    #[serde(default)]
    evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClearedDoc {
    fingerprint: String,
    #[serde(default)]
    masked_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    cleared_at: OffsetDateTime,
}

/// The whole state, as kept in memory and on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    keys: BTreeMap<KeyFingerprint, KeyDoc>,
    cleared: BTreeMap<KeyFingerprint, ClearedDoc>,
    learned: Vec<LearnedEntry>,
}

#[derive(Serialize, Deserialize)]
struct StateDoc {
    format: String,
    version: u32,
    #[serde(default)]
    keys: Vec<serde_json::Value>,
    #[serde(default)]
    cleared: Vec<serde_json::Value>,
    #[serde(default)]
    learned: Vec<serde_json::Value>,
}

/// Re-masks a masked id read from a file if it does not look masked (a hand-edited file).
fn sanitize_masked(masked: &str) -> String {
    if masked.contains("****") && masked.chars().count() <= 16 {
        masked.to_string()
    } else {
        mask_key_id(masked)
    }
}

impl State {
    /// Whether `fp` is compromised now (seen after any clearing).
    pub(crate) fn is_compromised(&self, fp: &KeyFingerprint) -> bool {
        match (self.keys.get(fp), self.cleared.get(fp)) {
            (Some(k), Some(c)) => k.last_seen > c.cleared_at,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Records evidence; returns whether the key became compromised by it.
    pub(crate) fn record(&mut self, fp: KeyFingerprint, masked: &str, evidence: Evidence) -> bool {
        let was = self.is_compromised(&fp);
        let at = evidence.at;
        let cleared_at = self.cleared.get(&fp).map(|c| c.cleared_at);
        let doc = self.keys.entry(fp).or_insert_with(|| KeyDoc {
            fingerprint: fp.to_hex(),
            masked_key_id: masked.to_string(),
            first_seen: at,
            last_seen: at,
            evidence: Vec::new(),
        });
        if !was && cleared_at.is_some() {
            // Compromised again after being cleared: a new history starts.
            doc.first_seen = at;
            doc.evidence.clear();
        }
        doc.last_seen = doc.last_seen.max(at);
        doc.evidence.push(evidence);
        trim_evidence(&mut doc.evidence);
        !was && self.is_compromised(&fp)
    }

    /// Clears a key; returns whether it was compromised.
    pub(crate) fn clear(&mut self, fp: KeyFingerprint, masked: &str, at: OffsetDateTime) -> bool {
        let was = self.is_compromised(&fp);
        self.cleared.insert(
            fp,
            ClearedDoc {
                fingerprint: fp.to_hex(),
                masked_key_id: masked.to_string(),
                cleared_at: at,
            },
        );
        self.keys.remove(&fp);
        was
    }

    pub(crate) fn learn(&mut self, entry: LearnedEntry) {
        let exists = self.learned.iter().any(|l| {
            l.product.eq_ignore_ascii_case(&entry.product)
                && l.version == entry.version
                && l.action.eq_ignore_ascii_case(&entry.action)
        });
        if !exists {
            self.learned.push(entry);
        }
    }

    pub(crate) fn learned(&self) -> &[LearnedEntry] {
        &self.learned
    }

    /// The clearings, oldest first.
    pub(crate) fn clearings(&self) -> Vec<ClearedKey> {
        let mut out: Vec<ClearedKey> = self
            .cleared
            .values()
            .map(|c| ClearedKey {
                masked_key_id: sanitize_masked(&c.masked_key_id),
                cleared_at: c.cleared_at,
            })
            .collect();
        out.sort_by_key(|c| c.cleared_at);
        out
    }

    /// Merges `other` into `self`: union of keys and evidence, latest clearing wins.
    pub(crate) fn merge(&mut self, other: &State) {
        for (fp, theirs) in &other.keys {
            match self.keys.get_mut(fp) {
                None => {
                    self.keys.insert(*fp, theirs.clone());
                }
                Some(ours) => {
                    ours.first_seen = ours.first_seen.min(theirs.first_seen);
                    ours.last_seen = ours.last_seen.max(theirs.last_seen);
                    for e in &theirs.evidence {
                        if !ours.evidence.contains(e) {
                            ours.evidence.push(e.clone());
                        }
                    }
                    trim_evidence(&mut ours.evidence);
                }
            }
        }
        for (fp, theirs) in &other.cleared {
            match self.cleared.get_mut(fp) {
                Some(ours) if ours.cleared_at >= theirs.cleared_at => {}
                _ => {
                    self.cleared.insert(*fp, theirs.clone());
                }
            }
        }
        // Drop keys whose last sighting precedes their clearing.
        let cleared = &self.cleared;
        self.keys
            .retain(|fp, k| cleared.get(fp).is_none_or(|c| k.last_seen > c.cleared_at));
        for l in &other.learned {
            self.learn(l.clone());
        }
    }

    /// The compromised keys as records.
    pub(crate) fn records(&self) -> impl Iterator<Item = KeyRecord> + '_ {
        self.keys
            .iter()
            .filter(|(fp, _)| self.is_compromised(fp))
            .map(|(fp, k)| KeyRecord {
                fingerprint: *fp,
                masked_key_id: k.masked_key_id.clone(),
                first_seen: k.first_seen,
                last_seen: k.last_seen,
                evidence: k.evidence.clone(),
                warned: AtomicBool::new(false),
            })
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let doc = StateDoc {
            format: FORMAT.into(),
            version: 1,
            keys: self
                .keys
                .values()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
            cleared: self
                .cleared
                .values()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
            learned: self
                .learned
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
        };
        serde_json::to_vec_pretty(&doc)
    }

    /// Parses a state file; entries that do not parse are skipped with a warning, a file that is
    /// not a state file at all is an error.
    fn from_json(bytes: &[u8], path: &Path) -> Result<Self, String> {
        let doc: StateDoc =
            serde_json::from_slice(bytes).map_err(|e| format!("not a state file: {e}"))?;
        if doc.format != FORMAT || doc.version != 1 {
            return Err(format!(
                "unknown format {:?} version {}",
                doc.format, doc.version
            ));
        }
        let mut state = State::default();
        let mut skipped = 0usize;
        for value in doc.keys {
            match serde_json::from_value::<KeyDoc>(value) {
                Ok(mut k) => match KeyFingerprint::from_hex(&k.fingerprint) {
                    Some(fp) => {
                        k.masked_key_id = sanitize_masked(&k.masked_key_id);
                        trim_evidence(&mut k.evidence);
                        state.merge(&State {
                            keys: BTreeMap::from([(fp, k)]),
                            ..State::default()
                        });
                    }
                    None => skipped += 1,
                },
                Err(_) => skipped += 1,
            }
        }
        for value in doc.cleared {
            match serde_json::from_value::<ClearedDoc>(value) {
                Ok(c) => match KeyFingerprint::from_hex(&c.fingerprint) {
                    Some(fp) => {
                        state.merge(&State {
                            cleared: BTreeMap::from([(fp, c)]),
                            ..State::default()
                        });
                    }
                    None => skipped += 1,
                },
                Err(_) => skipped += 1,
            }
        }
        for value in doc.learned {
            match serde_json::from_value::<LearnedEntry>(value) {
                Ok(l) if !l.product.is_empty() && !l.version.is_empty() && !l.action.is_empty() => {
                    state.learn(l)
                }
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                path = %path.display(),
                skipped,
                "aliyun-guard: skipped invalid entries in the guard state file"
            );
        }
        Ok(state)
    }
}

/// A key cleared by hand (after rotation, or flagged in error), as [`crate::Guard::cleared_keys`]
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClearedKey {
    /// The masked key id, for people.
    pub masked_key_id: String,
    /// When it was cleared.
    pub cleared_at: OffsetDateTime,
}

/// What a state file holds, as [`check_state_file`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateSummary {
    /// Keys compromised now.
    pub compromised_keys: usize,
    /// Keys cleared by hand.
    pub cleared_keys: usize,
    /// Learned table entries.
    pub learned_entries: usize,
}

/// Checks the content of a guard state file (`state.json`) without loading it into a guard:
/// what it holds, or why the guard would set it aside. Entries that do not parse are skipped, as
/// the guard skips them.
///
/// ```
/// use aliyun_guard::guard::check_state_file;
/// let summary = check_state_file(br#"{"format":"aliyun-guard-state","version":1}"#).unwrap();
/// assert_eq!(summary.compromised_keys, 0);
/// assert!(check_state_file(b"{ truncated").is_err());
/// ```
pub fn check_state_file(bytes: &[u8]) -> Result<StateSummary, Error> {
    let path = Path::new("(bytes)");
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::State {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_STATE_BYTES} bytes"),
            source: None,
        });
    }
    let state = State::from_json(bytes, path).map_err(|message| Error::State {
        path: path.to_path_buf(),
        message,
        source: None,
    })?;
    Ok(StateSummary {
        compromised_keys: state.records().count(),
        cleared_keys: state.cleared.len(),
        learned_entries: state.learned.len(),
    })
}

fn trim_evidence(evidence: &mut Vec<Evidence>) {
    evidence.sort_by_key(|e| e.at);
    if evidence.len() > MAX_EVIDENCE {
        evidence.drain(..evidence.len() - MAX_EVIDENCE);
    }
}

/// The on-disk state in a directory.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    dir: PathBuf,
}

/// Size and modification time of the state file, to notice other processes' writes.
pub(crate) type Stamp = Option<(u64, std::time::SystemTime)>;

impl StateFile {
    /// Uses (and creates) `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::State {
            path: dir.to_path_buf(),
            message: "cannot create the state directory".into(),
            source: Some(e),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub(crate) fn stamp(&self) -> Stamp {
        let meta = fs::metadata(self.path()).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }

    fn lock(&self) -> Result<File, Error> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::State {
                path: path.clone(),
                message: "cannot open the lock file".into(),
                source: Some(e),
            })?;
        file.lock().map_err(|e| Error::State {
            path,
            message: "cannot lock the state".into(),
            source: Some(e),
        })?;
        Ok(file)
    }

    /// Reads the state under the lock (a shared reader still takes the exclusive lock, so that it
    /// never sees a file another process is setting aside).
    pub(crate) fn load(&self) -> Result<State, Error> {
        let _lock = self.lock()?;
        Ok(self.read_unlocked())
    }

    /// Reads, merges `ours` in, writes back atomically, and returns the merged state.
    pub(crate) fn merge_and_store(&self, ours: &State) -> Result<State, Error> {
        let _lock = self.lock()?;
        let on_disk = self.read_unlocked();
        let mut merged = on_disk.clone();
        merged.merge(ours);
        if merged != on_disk || self.stamp().is_none() {
            self.write_unlocked(&merged)?;
        }
        Ok(merged)
    }

    fn read_unlocked(&self) -> State {
        let path = self.path();
        let bytes = match read_capped(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return State::default(),
            Err(reason) => {
                self.set_aside(&path, &reason);
                return State::default();
            }
        };
        match State::from_json(&bytes, &path) {
            Ok(state) => state,
            Err(reason) => {
                self.set_aside(&path, &reason);
                State::default()
            }
        }
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
        let result = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(err("cannot write the state file", e));
        }
        Ok(())
    }
}

/// Reads a file of at most [`MAX_STATE_BYTES`]; `Ok(None)` when it does not exist.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(format!("larger than {MAX_STATE_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64) -> Evidence {
        Evidence {
            product: "Ecs".into(),
            version: "2014-05-26".into(),
            action: "RunInstances".into(),
            request_id: Some(format!("R{at}")),
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            source: EvidenceSource::ServerAnswer,
        }
    }

    #[test]
    fn record_clear_and_record_again() {
        let fp = KeyFingerprint::of("LTAIkey");
        let mut s = State::default();
        assert!(s.record(fp, "****ey", ev(10)));
        assert!(!s.record(fp, "****ey", ev(11)));
        assert!(s.clear(
            fp,
            "****ey",
            OffsetDateTime::from_unix_timestamp(12).unwrap()
        ));
        assert!(!s.is_compromised(&fp));
        assert!(s.record(fp, "****ey", ev(13)));
        assert_eq!(s.records().next().unwrap().first_seen.unix_timestamp(), 13);
    }

    #[test]
    fn merge_is_a_union_and_clearing_wins_only_over_older_sightings() {
        let a = KeyFingerprint::of("a-key-id-0000");
        let b = KeyFingerprint::of("b-key-id-0000");
        let mut one = State::default();
        one.record(a, "m", ev(10));
        let mut two = State::default();
        two.record(b, "m", ev(20));
        two.clear(a, "m", OffsetDateTime::from_unix_timestamp(15).unwrap());
        one.merge(&two);
        assert!(!one.is_compromised(&a));
        assert!(one.is_compromised(&b));
        let mut three = State::default();
        three.record(a, "m", ev(30));
        one.merge(&three);
        assert!(one.is_compromised(&a));
    }

    #[test]
    fn evidence_is_bounded() {
        let fp = KeyFingerprint::of("k-0000000000");
        let mut s = State::default();
        for i in 0..100 {
            s.record(fp, "m", ev(i));
        }
        let rec = s.records().next().unwrap();
        assert_eq!(rec.evidence.len(), MAX_EVIDENCE);
        assert_eq!(rec.first_seen.unix_timestamp(), 0);
        assert_eq!(rec.evidence.last().unwrap().at.unix_timestamp(), 99);
    }

    #[test]
    fn json_round_trip_and_hostile_entries() {
        let fp = KeyFingerprint::of("LTAI5tExampleKeyIdwxyz");
        let mut s = State::default();
        s.record(fp, "LTAI****wxyz", ev(5));
        let bytes = s.to_json().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("LTAI5tExampleKeyIdwxyz"));
        assert_eq!(State::from_json(&bytes, Path::new("x")).unwrap(), s);
        let hostile = br#"{"format":"aliyun-guard-state","version":1,
            "keys":[{"fingerprint":"zz"},{"fingerprint":42},
                    {"fingerprint":"00000000000000000000000000000000000000000000000000000000000000ff",
                     "masked_key_id":"LTAI5tFULLKEYIDLEAKEDHERE","first_seen":"2026-01-01T00:00:00Z",
                     "last_seen":"2026-01-01T00:00:00Z"}],
            "learned":[{"product":"","version":"","action":"","learned_at":"2026-01-01T00:00:00Z"}]}"#;
        let parsed = State::from_json(hostile, Path::new("x")).unwrap();
        let records: Vec<_> = parsed.records().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].masked_key_id, "LTAI****HERE");
        assert!(parsed.learned().is_empty());
        assert!(State::from_json(b"[]", Path::new("x")).is_err());
        assert!(State::from_json(br#"{"format":"other","version":1}"#, Path::new("x")).is_err());
    }
}
