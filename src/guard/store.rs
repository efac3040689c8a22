//! Key state: which AccessKeys are known to be compromised, and why.
//!
//! Keys are identified by a [`KeyFingerprint`] (SHA-256 of the key id), so the state, in memory or
//! on disk, holds no key ids (only masked ones, for people) and no secrets. [`State`] merges
//! what several processes saw; its JSON form is what a state directory holds (see
//! `state_file.rs`) and what [`check_state_file`] checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::mask_key_id;

/// Largest state file read; a larger one is set aside as corrupt.
pub const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;
/// Evidence entries kept per key (the newest).
pub const MAX_EVIDENCE: usize = 16;
const FORMAT: &str = "aliyun-guard-state";

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
    /// Security Center's leak list (`DescribeAccesskeyLeakList`) reported it.
    SecurityCenter {
        /// Where Security Center found the key (a URL, as Security Center gave it).
        #[serde(default)]
        url: Option<String>,
        /// When Security Center recorded the finding (Unix milliseconds).
        #[serde(default)]
        found_at_ms: Option<i64>,
        /// Security Center's id of the finding.
        #[serde(default)]
        leak_id: Option<i64>,
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
    /// The newest observations (at most 16).
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
    /// Host of the endpoint that answered.
    #[serde(default)]
    pub host: Option<String>,
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
    /// Identifies the clearing across processes and rewrites, so that the same clearing read at
    /// different times (its stamp clamped to a different "now") is recognised as one event. Files
    /// written before ids existed get one derived from the stamp as written.
    #[serde(default)]
    id: String,
}

/// Learned entries are unique by product (any case), version and action (any case).
type LearnedKey = (String, String, String);

fn learned_key(entry: &LearnedEntry) -> LearnedKey {
    (
        entry.product.to_ascii_lowercase(),
        entry.version.clone(),
        entry.action.to_ascii_lowercase(),
    )
}

/// The smallest step by which an event this process has seen is ordered before the next one.
const TICK: time::Duration = time::Duration::microseconds(1);

/// The whole state, as kept in memory and on disk.
///
/// Events are ordered without trusting that clocks agree: a sighting this process records after
/// it has seen a clearing is stamped after that clearing (and a clearing after a sighting it has
/// seen), and stamps read from a file that lie in the future are clamped to the time of reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    keys: BTreeMap<KeyFingerprint, KeyDoc>,
    cleared: BTreeMap<KeyFingerprint, ClearedDoc>,
    learned: BTreeMap<LearnedKey, LearnedEntry>,
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

    /// Records evidence; returns whether the key became compromised by it. The sighting always
    /// counts: if this process has seen a clearing stamped at or after it (a clock stepped back,
    /// another host's clock ahead), it is stamped just after that clearing.
    pub(crate) fn record(&mut self, fp: KeyFingerprint, masked: &str, evidence: Evidence) -> bool {
        let was = self.is_compromised(&fp);
        let cleared_at = self.cleared.get(&fp).map(|c| c.cleared_at);
        let at = match cleared_at {
            Some(cleared) if evidence.at <= cleared => cleared + TICK,
            _ => evidence.at,
        };
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

    /// Clears a key; returns whether it was compromised. The clearing is stamped after every
    /// sighting of the key this process has seen.
    pub(crate) fn clear(&mut self, fp: KeyFingerprint, masked: &str, at: OffsetDateTime) -> bool {
        let was = self.is_compromised(&fp);
        let at = match self.keys.get(&fp) {
            Some(k) if k.last_seen >= at => k.last_seen + TICK,
            _ => at,
        };
        let at = match self.cleared.get(&fp) {
            Some(c) if c.cleared_at >= at => c.cleared_at + TICK,
            _ => at,
        };
        self.cleared.insert(
            fp,
            ClearedDoc {
                fingerprint: fp.to_hex(),
                masked_key_id: masked.to_string(),
                cleared_at: at,
                id: uuid::Uuid::new_v4().to_string(),
            },
        );
        self.keys.remove(&fp);
        was
    }

    /// Adds a learned entry; an entry already known keeps its place and takes the newer
    /// evidence.
    pub(crate) fn learn(&mut self, entry: LearnedEntry) {
        match self.learned.entry(learned_key(&entry)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(entry);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                if entry.learned_at > slot.get().learned_at {
                    slot.insert(entry);
                }
            }
        }
    }

    pub(crate) fn learned(&self) -> impl Iterator<Item = &LearnedEntry> + '_ {
        self.learned.values()
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

    /// Drops learned entries older than `ttl` at `now`.
    pub(crate) fn expire_learned(&mut self, now: OffsetDateTime, ttl: std::time::Duration) {
        let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX);
        self.learned.retain(|_, l| now - l.learned_at < ttl);
    }

    /// Clamps every stamp later than `now` to `now` (a file written by a host whose clock is
    /// ahead, or before this host's clock was stepped back).
    fn clamp_future(&mut self, now: OffsetDateTime) {
        for k in self.keys.values_mut() {
            k.first_seen = k.first_seen.min(now);
            k.last_seen = k.last_seen.min(now);
            for e in &mut k.evidence {
                e.at = e.at.min(now);
            }
        }
        for c in self.cleared.values_mut() {
            c.cleared_at = c.cleared_at.min(now);
        }
        for l in self.learned.values_mut() {
            l.learned_at = l.learned_at.min(now);
        }
    }

    /// Merges one key's history (no clearing applied: see [`State::drop_cleared`]).
    fn merge_key(&mut self, fp: KeyFingerprint, theirs: KeyDoc) {
        match self.keys.entry(fp) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(theirs);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                let ours = slot.get_mut();
                ours.first_seen = ours.first_seen.min(theirs.first_seen);
                ours.last_seen = ours.last_seen.max(theirs.last_seen);
                for e in theirs.evidence {
                    if !ours.evidence.contains(&e) {
                        ours.evidence.push(e);
                    }
                }
                trim_evidence(&mut ours.evidence);
            }
        }
    }

    /// Merges one clearing: the same clearing (same id) keeps its earliest stamp, of two
    /// different clearings the later wins.
    fn merge_cleared(&mut self, fp: KeyFingerprint, theirs: ClearedDoc) {
        match self.cleared.entry(fp) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(theirs);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                let ours = slot.get_mut();
                if ours.id == theirs.id {
                    ours.cleared_at = ours.cleared_at.min(theirs.cleared_at);
                } else if theirs.cleared_at > ours.cleared_at {
                    *ours = theirs;
                }
            }
        }
    }

    /// Adds a key as a fleet store holds it (compromised now, ordered by the store): validated
    /// like a file's entry (masked id re-masked if it does not look masked, evidence bounded).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn insert_fleet_key(
        &mut self,
        fp: KeyFingerprint,
        masked: &str,
        first_seen: OffsetDateTime,
        last_seen: OffsetDateTime,
        mut evidence: Vec<Evidence>,
    ) {
        evidence.dedup();
        let mut unique: Vec<Evidence> = Vec::with_capacity(evidence.len());
        for e in evidence {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        trim_evidence(&mut unique);
        self.cleared.remove(&fp);
        self.keys.insert(
            fp,
            KeyDoc {
                fingerprint: fp.to_hex(),
                masked_key_id: sanitize_masked(masked),
                first_seen: first_seen.min(last_seen),
                last_seen,
                evidence: unique,
            },
        );
    }

    /// Adds a clearing as a fleet store holds it (the store ordered it after every sighting).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn insert_fleet_clearing(
        &mut self,
        fp: KeyFingerprint,
        masked: &str,
        at: OffsetDateTime,
        id: String,
    ) {
        self.keys.remove(&fp);
        self.cleared.insert(
            fp,
            ClearedDoc {
                fingerprint: fp.to_hex(),
                masked_key_id: sanitize_masked(masked),
                cleared_at: at,
                id,
            },
        );
    }

    /// Adds a learned entry read from a fleet store, if it is well-formed and small.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn insert_fleet_learned(&mut self, entry: LearnedEntry) -> bool {
        let ok = |s: &str| !s.is_empty() && s.len() <= 128;
        if ok(&entry.product) && ok(&entry.version) && ok(&entry.action) {
            self.learn(entry);
            true
        } else {
            false
        }
    }

    /// The compromised keys (masked id, newest evidence) and learned entries of `self` that
    /// `other` does not mention at all: what a fleet store lost (say, Redis restarted empty) and
    /// this process must write again.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn missing_from(
        &self,
        other: &State,
    ) -> (Vec<(KeyFingerprint, String, Evidence)>, Vec<LearnedEntry>) {
        let keys = self
            .keys
            .iter()
            .filter(|(fp, _)| {
                self.is_compromised(fp)
                    && !other.keys.contains_key(fp)
                    && !other.cleared.contains_key(fp)
            })
            .filter_map(|(fp, k)| {
                let evidence = k.evidence.last()?.clone();
                Some((*fp, k.masked_key_id.clone(), evidence))
            })
            .collect();
        let learned = self
            .learned
            .iter()
            .filter(|(key, _)| !other.learned.contains_key(*key))
            .map(|(_, l)| l.clone())
            .collect();
        (keys, learned)
    }

    /// Drops keys whose last sighting precedes their clearing.
    fn drop_cleared(&mut self) {
        let cleared = &self.cleared;
        self.keys
            .retain(|fp, k| cleared.get(fp).is_none_or(|c| k.last_seen > c.cleared_at));
    }

    /// Merges `other` into `self`: union of keys and evidence, latest clearing wins. Linear in
    /// the size of both (n log n with the maps).
    pub(crate) fn merge(&mut self, other: &State) {
        for (fp, theirs) in &other.keys {
            self.merge_key(*fp, theirs.clone());
        }
        for (fp, theirs) in &other.cleared {
            self.merge_cleared(*fp, theirs.clone());
        }
        self.drop_cleared();
        for l in other.learned.values() {
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

    pub(super) fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
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
                .values()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
        };
        serde_json::to_vec_pretty(&doc)
    }

    /// Parses a state file read now.
    pub(super) fn from_json(bytes: &[u8], path: &Path) -> Result<Self, ParseFailure> {
        Self::from_json_at(bytes, path, OffsetDateTime::now_utc())
    }

    /// Parses a state file read at `now` (future stamps are clamped to it); entries that do not
    /// parse are skipped with a warning, a file that is not a state file at all is an error.
    /// Each entry is merged in O(log n).
    fn from_json_at(bytes: &[u8], path: &Path, now: OffsetDateTime) -> Result<Self, ParseFailure> {
        let doc: StateDoc = serde_json::from_slice(bytes).map_err(|e| ParseFailure {
            reason: format!(
                "not a state file ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
            other_version: false,
        })?;
        if doc.format != FORMAT || doc.version != 1 {
            // Another version's file (a newer aliyun-guard in a mixed fleet) is not corrupt:
            // it is left in place and this guard works in memory.
            return Err(ParseFailure {
                reason: format!(
                    "a state file of format {:?} version {}, which this version of aliyun-guard \
                     does not read",
                    crate::redact::sanitize(&doc.format.chars().take(40).collect::<String>()),
                    doc.version
                ),
                other_version: doc.format == FORMAT,
            });
        }
        let mut state = State::default();
        let mut skipped = 0usize;
        for value in doc.keys {
            match serde_json::from_value::<KeyDoc>(value) {
                Ok(mut k) => match KeyFingerprint::from_hex(&k.fingerprint) {
                    Some(fp) => {
                        k.masked_key_id = sanitize_masked(&k.masked_key_id);
                        trim_evidence(&mut k.evidence);
                        state.merge_key(fp, k);
                    }
                    None => skipped += 1,
                },
                Err(_) => skipped += 1,
            }
        }
        for value in doc.cleared {
            match serde_json::from_value::<ClearedDoc>(value) {
                Ok(mut c) => match KeyFingerprint::from_hex(&c.fingerprint) {
                    Some(fp) => {
                        if c.id.is_empty() {
                            c.id = format!("at:{}", c.cleared_at.unix_timestamp_nanos());
                        }
                        state.merge_cleared(fp, c);
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
        state.clamp_future(now);
        state.drop_cleared();
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
/// use aliyun_guard::__internal::check_state_file;
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
    let state = State::from_json(bytes, path).map_err(|failure| Error::State {
        path: path.to_path_buf(),
        message: failure.reason,
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

/// Why a state file could not be parsed.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    /// What is wrong (never quotes the file's content).
    pub(super) reason: String,
    /// The file is a state file of another version: not corrupt, left in place.
    pub(super) other_version: bool,
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

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    /// A file holding a sighting at `seen` and a clearing (as old files wrote it: no id) at
    /// `cleared`.
    fn file_with_clearing(fp: KeyFingerprint, seen: i64, cleared: i64) -> Vec<u8> {
        let mut s = State::default();
        s.record(fp, "m", ev(seen));
        let mut bytes = s.to_json().unwrap();
        let text = String::from_utf8(std::mem::take(&mut bytes)).unwrap();
        let cleared_at = at(cleared)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        text.replacen(
            "\"cleared\": []",
            &format!(
                "\"cleared\": [{{\"fingerprint\": \"{}\", \"cleared_at\": \"{cleared_at}\"}}]",
                fp.to_hex()
            ),
            1,
        )
        .into_bytes()
    }

    #[test]
    fn a_sighting_after_a_future_dated_clearing_wins_and_survives_rewrites() {
        let fp = KeyFingerprint::of("LTAIfuture-key");
        let path = Path::new("x");
        for ahead in [3_600, 365 * 86_400] {
            // Now is 1000; the file's clearing is `ahead` seconds in the future.
            let file = file_with_clearing(fp, 900, 1_000 + ahead);
            let mut memory = State::from_json_at(&file, path, at(1_000)).unwrap();
            assert!(!memory.is_compromised(&fp), "the clearing applies");
            // A leak answer a second later: remembered, and newly so.
            assert!(
                memory.record(fp, "m", ev(1_001)),
                "{ahead}: newly compromised"
            );
            // Persisting re-reads the same file later (its stamp clamped to a later "now"): the
            // same clearing keeps its earliest stamp, the sighting stays after it.
            let mut disk = State::from_json_at(&file, path, at(1_005)).unwrap();
            disk.merge(&memory);
            assert!(disk.is_compromised(&fp), "{ahead}: kept when persisting");
            let written = disk.to_json().unwrap();
            let reloaded = State::from_json_at(&written, path, at(1_010)).unwrap();
            assert!(reloaded.is_compromised(&fp), "{ahead}: kept after a reload");
            assert_eq!(
                reloaded.cleared[&fp].cleared_at,
                at(1_000),
                "{ahead}: the clearing's future stamp was clamped when first read"
            );
        }
    }

    #[test]
    fn a_sighting_with_a_clock_stepped_back_still_counts() {
        let fp = KeyFingerprint::of("LTAIstepped-back");
        let mut s = State::default();
        s.record(fp, "m", ev(100));
        assert!(s.clear(fp, "m", at(200)));
        // The clock was stepped back: the next sighting's wall time precedes the clearing.
        assert!(s.record(fp, "m", ev(150)));
        assert!(s.is_compromised(&fp));
        // And a clearing made after that sighting (clock still behind) clears it.
        assert!(s.clear(fp, "m", at(160)));
        assert!(!s.is_compromised(&fp));
    }

    #[test]
    fn two_different_clearings_the_later_wins() {
        let fp = KeyFingerprint::of("LTAItwo-clearings");
        let mut one = State::default();
        one.record(fp, "m", ev(10));
        one.clear(fp, "m", at(20));
        let mut two = State::default();
        two.record(fp, "m", ev(25));
        two.merge(&one);
        assert!(two.is_compromised(&fp), "sighting after the clearing");
        let mut three = State::default();
        three.clear(fp, "m", at(30));
        two.merge(&three);
        assert!(!two.is_compromised(&fp));
    }

    #[test]
    fn learned_entries_expire_after_their_ttl() {
        let entry = |action: &str, learned: i64| LearnedEntry {
            product: "Ecs".into(),
            version: "2014-05-26".into(),
            action: action.into(),
            learned_at: at(learned),
            request_id: Some("R".into()),
            host: Some("ecs.aliyuncs.com".into()),
        };
        let mut s = State::default();
        s.learn(entry("Old", 0));
        s.learn(entry("New", 86_400 * 20));
        s.learn(entry("new", 86_400 * 25)); // same entry (any case): newer evidence kept
        assert_eq!(s.learned().count(), 2);
        s.expire_learned(at(86_400 * 31), std::time::Duration::from_secs(30 * 86_400));
        let left: Vec<_> = s.learned().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].action, "new");
        assert_eq!(left[0].learned_at, at(86_400 * 25));
        s.expire_learned(at(86_400 * 1_000), std::time::Duration::MAX);
        assert_eq!(s.learned().count(), 1, "an unbounded TTL keeps everything");
    }

    #[test]
    fn loading_many_keys_and_clearings_is_not_quadratic() {
        // 20,000 keys and 20,000 clearings took minutes when every entry was merged into the
        // whole state; the hang guard of the integration test covers timing, this checks the
        // result of the indexed load.
        let mut s = State::default();
        for i in 0..20_000u32 {
            let fp = KeyFingerprint::of(&format!("LTAIkey{i}"));
            s.record(fp, "m", ev(10));
            if i.is_multiple_of(2) {
                s.clear(fp, "m", at(20));
            }
        }
        let bytes = s.to_json().unwrap();
        let loaded = State::from_json_at(&bytes, Path::new("x"), at(1_000)).unwrap();
        assert_eq!(loaded.records().count(), 10_000);
        assert_eq!(loaded.cleared.len(), 10_000);
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
        assert_eq!(parsed.learned().count(), 0);
        assert!(State::from_json(b"[]", Path::new("x")).is_err());
        assert!(State::from_json(br#"{"format":"other","version":1}"#, Path::new("x")).is_err());
    }
}
