//! The guard's state shared by a fleet through Redis (cargo feature `redis`).
//!
//! Layout under the prefix `P` (nothing secret: fingerprints, masked ids, redacted evidence):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:keys` | set | fingerprints (hex) with a history |
//! | `P:seq:<fp>` | counter | the key's event counter (`INCR`) |
//! | `P:key:<fp>` | hash | `masked`, `seen` and `cleared` (counter values of the last sighting and clearing), `first`, `last`, `cleared_at` (Redis server time, µs) |
//! | `P:ev:<fp>` | list | evidence, JSON, the newest [`MAX_EVIDENCE`] |
//! | `P:learned` | hash | learned table entries, JSON |
//! | `P:notified:<fp>` | string | the host that won the notification claim (`SET NX`) |
//! | `P:changes` | pub/sub channel | a fingerprint (or `learned`) per change |
//!
//! Ordering trusts no host clock: a key is compromised when the counter value of its last
//! sighting exceeds that of its last clearing; each script runs atomically in Redis, and the
//! times shown are Redis server time. Sightings and clearings are written by Lua scripts (one
//! round trip each).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::state_store::{Change, PushFn, Pushed, StateStore, StoreError};
use super::store::{Evidence, KeyFingerprint, LearnedEntry, MAX_EVIDENCE, State};
use crate::error::Error;

/// Most keys (fingerprints) read from Redis; a larger set is ignored with a warning.
const MAX_KEYS: usize = 200_000;
/// Most learned entries read from Redis.
const MAX_LEARNED: usize = 10_000;
/// Largest value (evidence, learned entry, masked id) taken from Redis.
const MAX_VALUE: usize = 8 * 1024;
/// How long a notification claim lives.
const CLAIM_TTL_SECS: u64 = 90 * 24 * 60 * 60;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

const RECORD: &str = r"
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local seen = tonumber(redis.call('HGET', KEYS[2], 'seen') or '0') or 0
local cleared = tonumber(redis.call('HGET', KEYS[2], 'cleared') or '0') or 0
local was = seen > cleared
if not was then
  redis.call('HSET', KEYS[2], 'first', now)
  redis.call('DEL', KEYS[3])
end
redis.call('HSET', KEYS[2], 'seen', seq, 'last', now, 'masked', ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[1])
if was then return 0 else return 1 end
";

const CLEAR: &str = r"
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[2], 'cleared', seq, 'cleared_at', now, 'masked', ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[5])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
";

/// Settings of the Redis store, as the builder collects them.
#[derive(Debug, Clone)]
pub(crate) struct RedisOptions {
    pub url: String,
    pub prefix: String,
    pub timeout: Duration,
    pub reconcile: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            prefix: "aliyun-guard".into(),
            timeout: Duration::from_millis(500),
            reconcile: Duration::from_secs(30),
        }
    }
}

/// The Redis store.
pub(crate) struct RedisStore {
    client: redis::Client,
    prefix: String,
    /// The URL without its password, for messages.
    shown: String,
    timeout: Duration,
    reconcile: Duration,
    conn: Mutex<Option<redis::Connection>>,
    /// When the next connection attempt may be made, and the pause after that.
    backoff: Mutex<(Option<Instant>, Duration)>,
    record: redis::Script,
    clear: redis::Script,
    /// An id for the notification claim (this process).
    host: String,
    listening: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn config_error(shown: &str, message: String) -> Error {
    Error::State {
        path: shown.into(),
        message,
        source: None,
    }
}

/// Checks a key prefix: 1 to 64 characters of `A-Z a-z 0-9 _ - . :`.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The URL with the user name and password removed.
fn redact_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

impl RedisStore {
    /// Checks the URL and prefix; does not connect.
    pub(crate) fn open(options: RedisOptions) -> Result<Self, Error> {
        let parsed = url::Url::parse(&options.url)
            .map_err(|e| config_error("redis", format!("the Redis URL does not parse: {e}")))?;
        let shown = redact_url(&parsed);
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(config_error(
                &shown,
                "the Redis URL must start with redis:// or rediss://".into(),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(config_error(&shown, "the Redis URL names no host".into()));
        }
        if !valid_prefix(&options.prefix) {
            return Err(config_error(
                &shown,
                "the Redis key prefix must be 1 to 64 characters of A-Z a-z 0-9 _ - . :".into(),
            ));
        }
        let client = redis::Client::open(options.url.as_str()).map_err(|e| {
            config_error(
                &shown,
                format!("the Redis URL is not usable: {:?}", e.kind()),
            )
        })?;
        Ok(Self {
            client,
            prefix: options.prefix,
            shown,
            timeout: options.timeout.max(Duration::from_millis(10)),
            reconcile: options.reconcile.max(Duration::from_millis(100)),
            conn: Mutex::new(None),
            backoff: Mutex::new((None, Duration::from_millis(100))),
            record: redis::Script::new(RECORD),
            clear: redis::Script::new(CLEAR),
            host: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            listening: AtomicBool::new(false),
        })
    }

    fn key(&self, kind: &str, fp: &str) -> String {
        format!("{}:{kind}:{fp}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    fn error(&self, message: &str, e: &redis::RedisError) -> Error {
        // The kind and the server's code only: never the URL (which may hold the password).
        Error::State {
            path: self.shown.clone().into(),
            message: format!("{message}: {:?} ({})", e.kind(), e.category()),
            source: None,
        }
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Runs `op` on the shared connection (connecting if needed, unless a reconnection waits
    /// for its backoff). A failure drops the connection and backs off.
    fn with_conn<T>(
        &self,
        what: &str,
        op: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            {
                let backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                if backoff.0.is_some_and(|at| Instant::now() < at) {
                    return Err(StoreError::Unavailable(Error::State {
                        path: self.shown.clone().into(),
                        message: "Redis is unreachable; waiting before reconnecting".into(),
                        source: None,
                    }));
                }
            }
            match self.connect() {
                Ok(conn) => *slot = Some(conn),
                Err(e) => {
                    self.back_off();
                    return Err(StoreError::Unavailable(
                        self.error("cannot connect to Redis", &e),
                    ));
                }
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError::Unavailable(config_error(
                &self.shown,
                "no Redis connection".into(),
            )));
        };
        match op(conn) {
            Ok(value) => {
                *self.backoff.lock().unwrap_or_else(|e| e.into_inner()) =
                    (None, Duration::from_millis(100));
                Ok(value)
            }
            Err(e) => {
                *slot = None;
                if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                    self.back_off();
                }
                Err(StoreError::Unavailable(self.error(what, &e)))
            }
        }
    }

    fn back_off(&self) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let pause = backoff.1;
        let jitter = Duration::from_millis(fastrand::u64(..=pause.as_millis() as u64 / 2));
        *backoff = (
            Some(Instant::now() + pause + jitter),
            (pause * 2).min(MAX_BACKOFF),
        );
    }

    fn write(&self, conn: &mut redis::Connection, change: &Change) -> redis::RedisResult<()> {
        let keys = format!("{}:keys", self.prefix);
        match change {
            Change::Sighting {
                fp,
                masked,
                evidence,
            } => {
                let fp = fp.to_hex();
                let evidence = serde_json::to_string(evidence).map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::Client, "evidence", e.to_string()))
                })?;
                let _: i64 = self
                    .record
                    .key(self.key("seq", &fp))
                    .key(self.key("key", &fp))
                    .key(self.key("ev", &fp))
                    .key(&keys)
                    .arg(&fp)
                    .arg(masked)
                    .arg(evidence)
                    .arg(MAX_EVIDENCE)
                    .arg(self.channel())
                    .invoke(conn)?;
            }
            Change::Clearing { fp, masked, .. } => {
                let fp = fp.to_hex();
                let _: i64 = self
                    .clear
                    .key(self.key("seq", &fp))
                    .key(self.key("key", &fp))
                    .key(self.key("ev", &fp))
                    .key(&keys)
                    .key(self.key("notified", &fp))
                    .arg(&fp)
                    .arg(masked)
                    .arg(self.channel())
                    .invoke(conn)?;
            }
            Change::Learned(entry) => {
                let field = format!(
                    "{}|{}|{}",
                    entry.product.to_ascii_lowercase(),
                    entry.version,
                    entry.action.to_ascii_lowercase()
                );
                let json = serde_json::to_string(entry).map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::Client, "learned", e.to_string()))
                })?;
                redis::pipe()
                    .hset(format!("{}:learned", self.prefix), field, json)
                    .ignore()
                    .publish(self.channel(), "learned")
                    .ignore()
                    .query::<()>(conn)?;
            }
        }
        Ok(())
    }

    /// Reads the whole shared state; entries that are not the guard's are skipped with one
    /// warning per load.
    fn read(&self, conn: &mut redis::Connection) -> redis::RedisResult<State> {
        let keys_key = format!("{}:keys", self.prefix);
        let learned_key = format!("{}:learned", self.prefix);
        let mut skipped = 0usize;
        let mut state = State::default();
        let (count, learned_count): (redis::RedisResult<usize>, redis::RedisResult<usize>) = {
            let results: Vec<redis::RedisResult<redis::Value>> = redis::pipe()
                .scard(&keys_key)
                .hlen(&learned_key)
                .ignore_errors()
                .query(conn)?;
            let mut it = results.into_iter();
            let mut next = || match it.next() {
                Some(Ok(v)) => redis::from_redis_value::<usize>(v).map_err(redis::RedisError::from),
                Some(Err(e)) => Err(e),
                None => Ok(0),
            };
            (next(), next())
        };
        let fps: Vec<String> = match count {
            Ok(n) if n <= MAX_KEYS => conn.smembers(&keys_key).unwrap_or_else(|_| {
                skipped += 1;
                Vec::new()
            }),
            Ok(n) => {
                tracing::warn!(
                    store = %self.shown,
                    keys = n,
                    "aliyun-guard: the Redis key set is larger than the guard reads; ignored"
                );
                Vec::new()
            }
            Err(_) => {
                skipped += 1;
                Vec::new()
            }
        };
        let fps: Vec<KeyFingerprint> = fps
            .iter()
            .filter_map(|hex| {
                let fp = KeyFingerprint::from_hex(hex);
                if fp.is_none() {
                    skipped += 1;
                }
                fp
            })
            .collect();
        for chunk in fps.chunks(500) {
            let mut pipe = redis::pipe();
            for fp in chunk {
                let hex = fp.to_hex();
                pipe.hgetall(self.key("key", &hex));
                pipe.lrange(self.key("ev", &hex), -(MAX_EVIDENCE as isize), -1);
            }
            let results: Vec<redis::RedisResult<redis::Value>> =
                pipe.ignore_errors().query(conn)?;
            let mut it = results.into_iter();
            for fp in chunk {
                let (Some(hash), Some(list)) = (it.next(), it.next()) else {
                    break;
                };
                let hash = hash.and_then(|v| {
                    redis::from_redis_value::<HashMap<String, Vec<u8>>>(v)
                        .map_err(redis::RedisError::from)
                });
                let list = list.and_then(|v| {
                    redis::from_redis_value::<Vec<Vec<u8>>>(v).map_err(redis::RedisError::from)
                });
                match (hash, list) {
                    (Ok(hash), Ok(list)) => {
                        if !add_key(&mut state, *fp, &hash, &list, &mut skipped) {
                            skipped += 1;
                        }
                    }
                    _ => skipped += 1,
                }
            }
        }
        match learned_count {
            Ok(n) if n <= MAX_LEARNED => {
                let entries: redis::RedisResult<HashMap<String, Vec<u8>>> =
                    conn.hgetall(&learned_key);
                match entries {
                    Ok(entries) => {
                        for value in entries.values() {
                            let ok = value.len() <= MAX_VALUE
                                && serde_json::from_slice::<LearnedEntry>(value)
                                    .is_ok_and(|l| state.insert_fleet_learned(l));
                            if !ok {
                                skipped += 1;
                            }
                        }
                    }
                    Err(e) if e.is_io_error() || e.is_timeout() => return Err(e),
                    Err(_) => skipped += 1,
                }
            }
            Ok(_) | Err(_) => skipped += 1,
        }
        if skipped > 0 {
            tracing::warn!(
                store = %self.shown,
                prefix = %self.prefix,
                skipped,
                "aliyun-guard: skipped data under the Redis prefix that is not the guard's \
                 (corrupt or foreign)"
            );
        }
        Ok(state)
    }
}

use redis::Commands as _;

/// Parses server time in microseconds.
fn server_time(hash: &HashMap<String, Vec<u8>>, field: &str) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(hash.get(field)?).ok()?;
    let micros: i128 = text.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()
}

fn counter(hash: &HashMap<String, Vec<u8>>, field: &str) -> Option<u64> {
    match hash.get(field) {
        None => Some(0),
        Some(v) => std::str::from_utf8(v).ok()?.parse().ok(),
    }
}

/// Adds one key's history read from Redis; `false` when it is not the guard's.
fn add_key(
    state: &mut State,
    fp: KeyFingerprint,
    hash: &HashMap<String, Vec<u8>>,
    list: &[Vec<u8>],
    skipped: &mut usize,
) -> bool {
    if hash.is_empty() {
        return false;
    }
    let (Some(seen), Some(cleared)) = (counter(hash, "seen"), counter(hash, "cleared")) else {
        return false;
    };
    let masked = match hash.get("masked").map(|m| std::str::from_utf8(m)) {
        Some(Ok(m)) if m.len() <= 64 => m,
        _ => return false,
    };
    if seen > cleared {
        let (Some(first), Some(last)) = (server_time(hash, "first"), server_time(hash, "last"))
        else {
            return false;
        };
        let evidence: Vec<Evidence> = list
            .iter()
            .filter_map(|raw| {
                let e = (raw.len() <= MAX_VALUE)
                    .then(|| serde_json::from_slice::<Evidence>(raw).ok())
                    .flatten();
                if e.is_none() {
                    *skipped += 1;
                }
                e
            })
            .collect();
        state.insert_fleet_key(fp, masked, first, last, evidence);
    } else if cleared > 0 {
        let Some(at) = server_time(hash, "cleared_at") else {
            return false;
        };
        state.insert_fleet_clearing(fp, masked, at, format!("redis:{cleared}"));
    } else {
        return false;
    }
    true
}

impl StateStore for RedisStore {
    fn load(&self) -> Result<State, StoreError> {
        self.with_conn("cannot read the guard state from Redis", |conn| {
            self.read(conn)
        })
    }

    fn merge_and_store(&self, _ours: &State, changes: &[Change]) -> Result<State, StoreError> {
        self.with_conn("cannot write the guard state to Redis", |conn| {
            for change in changes {
                self.write(conn, change)?;
            }
            self.read(conn)
        })
    }

    fn authoritative(&self) -> bool {
        true
    }

    fn fleet(&self) -> bool {
        true
    }

    fn claim_notification(&self, fp: &KeyFingerprint) -> Option<bool> {
        let key = self.key("notified", &fp.to_hex());
        self.with_conn("cannot claim the notification in Redis", |conn| {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&self.host)
                .arg("NX")
                .arg("EX")
                .arg(CLAIM_TTL_SECS)
                .query(conn)?;
            Ok(set.is_some())
        })
        .ok()
    }

    fn subscribe(&self, push: PushFn) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let listener = Listener {
            client: self.client.clone(),
            channel: self.channel(),
            shown: self.shown.clone(),
            timeout: self.timeout,
            reconcile: self.reconcile,
            push,
        };
        let _ = std::thread::Builder::new()
            .name("aliyun-guard-redis".into())
            .spawn(move || listener.run());
    }

    fn describe(&self) -> String {
        format!("{} (prefix {})", self.shown, self.prefix)
    }
}

/// The background listener: pub/sub for pushed changes, a full read every `reconcile`, and
/// reconnection with backoff.
struct Listener {
    client: redis::Client,
    channel: String,
    shown: String,
    timeout: Duration,
    reconcile: Duration,
    push: PushFn,
}

/// How often the listener looks whether the guard still exists.
const TICK: Duration = Duration::from_millis(250);

impl Listener {
    fn run(self) {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.listen() {
                Ok(()) => return,
                Err(e) => {
                    let error = Error::State {
                        path: self.shown.clone().into(),
                        message: format!(
                            "the Redis notification connection failed: {:?} ({})",
                            e.kind(),
                            e.category()
                        ),
                        source: None,
                    };
                    if !(self.push)(Pushed::Failed, Some(&error)) {
                        return;
                    }
                }
            }
            // Backoff, looking every tick whether the guard is gone.
            let until = Instant::now() + pause + Duration::from_millis(fastrand::u64(..=50));
            while Instant::now() < until {
                std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
                if !(self.push)(Pushed::Alive, None) {
                    return;
                }
            }
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life; `Ok` when the guard is gone.
    fn listen(&self) -> redis::RedisResult<()> {
        let mut conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_write_timeout(Some(self.timeout))?;
        let mut pubsub = conn.as_pubsub();
        pubsub.set_read_timeout(Some(self.timeout))?;
        pubsub.subscribe(&self.channel)?;
        pubsub.set_read_timeout(Some(TICK))?;
        // (Re)connected: write what waited during an outage, then read everything.
        if !(self.push)(Pushed::Sync, None) {
            return Ok(());
        }
        let mut reconciled = Instant::now();
        loop {
            match pubsub.get_message() {
                Ok(_) => {
                    // Coalesce a burst into one read.
                    pubsub.set_read_timeout(Some(Duration::from_millis(2)))?;
                    let mut drained = 0;
                    loop {
                        match pubsub.get_message() {
                            Ok(_) if drained < 10_000 => drained += 1,
                            Ok(_) => break,
                            Err(e) if e.is_timeout() => break,
                            Err(e) => return Err(e),
                        }
                    }
                    pubsub.set_read_timeout(Some(TICK))?;
                    if !(self.push)(Pushed::Changed, None) {
                        return Ok(());
                    }
                }
                Err(e) if e.is_timeout() => {
                    let pushed = if reconciled.elapsed() >= self.reconcile {
                        reconciled = Instant::now();
                        Pushed::Sync
                    } else {
                        Pushed::Alive
                    };
                    if !(self.push)(pushed, None) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
