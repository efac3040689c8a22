//! The guard shared by a fleet through Redis (feature `redis`). Each test starts its own
//! `redis-server` on a free loopback port in a temporary directory and kills it on drop; without
//! `redis-server` installed the tests say so and pass.
//!
//! The multi-process tests run this binary as its own children: with `AG_FLEET_ROLE` set, the
//! named test acts as one host of the fleet instead of the coordinator.
#![cfg(feature = "redis")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aliyun_guard::RpcRequest;
use aliyun_guard::guard::{Guard, KeyFingerprint, LeakPolicy, Verdict};
use common::*;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROLE: &str = "AG_FLEET_ROLE";
const URL: &str = "AG_FLEET_URL";
const DIR: &str = "AG_FLEET_DIR";
const INDEX: &str = "AG_FLEET_INDEX";
const PROCESSES: usize = 8;
const PREFIX: &str = "fleet-test";
/// Generous bound for liveness on a loaded machine (not a performance assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// A redis-server of the test's own, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

fn redis_installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

impl RedisServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1))
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the test `name` alone in a child process (so that a global log capture holds only its
/// logs); `true` in the parent (which then returns), `false` in the child (which runs the body).
fn in_own_process(name: &str) -> bool {
    if child_env().is_some() {
        return false;
    }
    if !redis_installed() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(ROLE, "alone")
        .env(URL, "-")
        .env(DIR, "-")
        .env(INDEX, "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    true
}

/// A capture of every thread's warnings (in a child process of [`in_own_process`]).
fn global_capture() -> Capture {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.subscriber(tracing::Level::WARN)).unwrap();
    capture
}

fn fleet_guard(url: &str) -> aliyun_guard::guard::GuardBuilder {
    Guard::builder()
        .redis(url, PREFIX)
        .redis_timeout(Duration::from_secs(2))
}

fn refused(guard: &Guard, key: &str) -> bool {
    matches!(
        guard.verdict(
            &KeyFingerprint::of(key),
            "Ecs",
            "2014-05-26",
            "RunInstances"
        ),
        Verdict::Refuse { .. }
    )
}

/// Waits (at most [`PATIENCE`]) until `check` holds; returns the time it took.
fn wait_for(what: &str, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

fn spawn_children(test: &str, url: &str, dir: &Path, role: &str) -> Vec<Child> {
    let exe = std::env::current_exe().unwrap();
    (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    test,
                    "--test-threads=1",
                    "--nocapture",
                    "--quiet",
                ])
                .env(ROLE, role)
                .env(URL, url)
                .env(DIR, dir)
                .env(INDEX, i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a host process")
        })
        .collect()
}

fn wait_children(children: Vec<Child>) -> Vec<String> {
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a host process failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

fn child_env() -> Option<(String, String, PathBuf, usize)> {
    let role = std::env::var(ROLE).ok()?;
    Some((
        role,
        std::env::var(URL).unwrap(),
        PathBuf::from(std::env::var(DIR).unwrap()),
        std::env::var(INDEX).unwrap().parse().unwrap(),
    ))
}

/// Every process waits here until all have arrived (files in the shared temp dir).
fn barrier(dir: &Path, name: &str, index: usize) {
    std::fs::write(dir.join(format!("{name}-{index}")), b"").unwrap();
    wait_for("the other processes", || {
        (0..PROCESSES).all(|i| dir.join(format!("{name}-{i}")).exists())
    });
}

fn append_line(path: &Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

async fn leak_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(ActionIs("RunInstances"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    server
}

fn run_instances() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances").region("cn-hangzhou")
}

const ONE_SEES: &str = "one_host_sees_the_leak_and_the_seven_others_refuse";

/// Host 0 gets the leak answer; hosts 1..8 refuse the key without sending, and the hook fires
/// once in the whole fleet.
#[test]
fn one_host_sees_the_leak_and_the_seven_others_refuse() {
    if let Some((_, url, dir, index)) = child_env() {
        let hooks = dir.join("hooks");
        let guard = Arc::new(
            fleet_guard(&url)
                .on_compromised(move |_| append_line(&hooks, "fired"))
                .build()
                .unwrap(),
        );
        barrier(&dir, "ready", index);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        if index == 0 {
            runtime.block_on(async {
                let server = leak_server().await;
                let client = client_builder(&server)
                    .guard(guard.clone())
                    .build()
                    .unwrap();
                let started = std::time::SystemTime::now();
                std::fs::write(
                    dir.join("leaked-at"),
                    started
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_micros()
                        .to_string(),
                )
                .unwrap();
                let err = client.call(&run_instances()).await.unwrap_err();
                assert!(err.is_compromised_key());
            });
        } else {
            wait_for("the leak to reach this host", || refused(&guard, KEY_ID));
            let seen = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros();
            let leaked: u128 = std::fs::read_to_string(dir.join("leaked-at"))
                .unwrap()
                .parse()
                .unwrap();
            println!("latency-us {}", seen.saturating_sub(leaked));
            // And the client refuses without sending (this mock would answer with the leak).
            runtime.block_on(async {
                let server = leak_server().await;
                let client = client_builder(&server)
                    .guard(guard.clone())
                    .build()
                    .unwrap();
                let err = client.call(&run_instances()).await.unwrap_err();
                assert!(err.is_compromised_key());
                assert!(
                    server.received_requests().await.unwrap().is_empty(),
                    "refused locally"
                );
            });
        }
        barrier(&dir, "done", index);
        // Give the winner's notification thread time to run before exiting.
        std::thread::sleep(Duration::from_secs(2));
        return;
    }
    if !redis_installed() {
        return;
    }
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let outputs = wait_children(spawn_children(ONE_SEES, &redis.url(), dir.path(), "host"));
    let latencies: Vec<&str> = outputs
        .iter()
        .flat_map(|o| o.lines())
        .filter_map(|l| l.strip_prefix("latency-us "))
        .collect();
    assert_eq!(latencies.len(), PROCESSES - 1, "every other host refused");
    println!("propagation latencies (µs) to the 7 other hosts: {latencies:?}");
    let hooks = std::fs::read_to_string(dir.path().join("hooks")).unwrap_or_default();
    assert_eq!(hooks.lines().count(), 1, "the hook fires once in the fleet");
}

const ALL_SEE: &str = "eight_hosts_answered_with_the_leak_at_once_notify_once";

/// Eight hosts all get the leak answer at once (policy ObserveOnly, so none is refused first):
/// each logs its own sighting, the hook fires once in total.
#[test]
fn eight_hosts_answered_with_the_leak_at_once_notify_once() {
    if let Some((_, url, dir, index)) = child_env() {
        let hooks = dir.join("hooks");
        let guard = Arc::new(
            fleet_guard(&url)
                .policy(LeakPolicy::ObserveOnly)
                .on_compromised_event(move |event| {
                    append_line(&hooks, &format!("{:?}", event.first));
                })
                .build()
                .unwrap(),
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let server = leak_server().await;
            let client = client_builder(&server)
                .guard(guard.clone())
                .build()
                .unwrap();
            barrier(&dir, "ready", index);
            let err = client.call(&run_instances()).await.unwrap_err();
            assert!(err.is_compromised_key());
        });
        barrier(&dir, "done", index);
        std::thread::sleep(Duration::from_secs(2));
        return;
    }
    if !redis_installed() {
        return;
    }
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    wait_children(spawn_children(ALL_SEE, &redis.url(), dir.path(), "host"));
    let hooks = std::fs::read_to_string(dir.path().join("hooks")).unwrap_or_default();
    assert_eq!(
        hooks.lines().collect::<Vec<_>>(),
        vec!["ThisHostFirstInFleet"],
        "the hook fires once in the fleet"
    );
}

const THOUSAND: &str = "a_thousand_keys_marked_by_eight_processes_are_all_kept";
const PER_PROCESS: usize = 125;

fn fleet_key(process: usize, key: usize) -> String {
    format!("LTAI5tFleet{process:02}Key{key:04}xxxx")
}

#[test]
fn a_thousand_keys_marked_by_eight_processes_are_all_kept() {
    if let Some((_, url, dir, index)) = child_env() {
        let guard = fleet_guard(&url).build().unwrap();
        barrier(&dir, "ready", index);
        for batch in 0..5 {
            let ids: Vec<String> = (batch * 25..(batch + 1) * 25)
                .map(|k| fleet_key(index, k))
                .collect();
            guard
                .mark_all_compromised(&ids, &format!("process {index}"))
                .expect("written");
        }
        return;
    }
    if !redis_installed() {
        return;
    }
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    wait_children(spawn_children(THOUSAND, &redis.url(), dir.path(), "host"));
    let guard = fleet_guard(&redis.url()).build().unwrap();
    assert_eq!(guard.compromised_keys().len(), PROCESSES * PER_PROCESS);
    for process in 0..PROCESSES {
        for key in 0..PER_PROCESS {
            let id = fleet_key(process, key);
            assert!(guard.is_compromised(&id), "{id} was lost");
        }
    }
}

/// Propagation latency between two guards (separate connections) over 100 leaks: printed, not
/// asserted (run with `--nocapture` to see it).
#[test]
fn propagation_latency_over_a_hundred_leaks() {
    if child_env().is_some() || !redis_installed() {
        return;
    }
    let redis = RedisServer::start();
    let writer = fleet_guard(&redis.url()).build().unwrap();
    let reader = fleet_guard(&redis.url()).build().unwrap();
    let mut latencies = Vec::new();
    for i in 0..100 {
        let key = format!("LTAI5tLatency{i:04}xxxxxx");
        let started = Instant::now();
        writer.mark_compromised(&key, "latency").unwrap();
        wait_for("the leak to propagate", || refused(&reader, &key));
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "propagation latency over 100 leaks: p50 {:?}, p99 {:?}, max {:?}",
        latencies[49], latencies[98], latencies[99]
    );
}

#[test]
fn redis_killed_and_restarted_calls_go_on_and_sightings_arrive() {
    if in_own_process("redis_killed_and_restarted_calls_go_on_and_sightings_arrive") {
        return;
    }
    let capture = global_capture();
    let mut redis = RedisServer::start();
    let a = fleet_guard(&redis.url()).build().unwrap();
    let b = fleet_guard(&redis.url()).build().unwrap();
    a.mark_compromised("LTAI5tBeforeOutage00xxxx", "before")
        .unwrap();
    wait_for("b to learn the first key", || {
        refused(&b, "LTAI5tBeforeOutage00xxxx")
    });

    redis.kill();
    // Calls go on with the local snapshot; the sighting made now is kept in memory.
    let err = a.mark_compromised("LTAI5tDuringOutage00xxxx", "during");
    assert!(err.is_err(), "the write fails while Redis is down");
    assert!(refused(&a, "LTAI5tDuringOutage00xxxx"));
    assert!(refused(&a, "LTAI5tBeforeOutage00xxxx"));
    assert!(
        refused(&b, "LTAI5tBeforeOutage00xxxx"),
        "known keys stay refused"
    );
    assert!(!a.store_health().available);
    assert!(a.store_health().unsaved_changes);

    // Redis comes back empty (no persistence): what the hosts know is written again.
    redis.restart();
    wait_for("b to learn the key seen during the outage", || {
        refused(&b, "LTAI5tDuringOutage00xxxx")
    });
    wait_for("a to write everything", || {
        let health = a.store_health();
        health.available && !health.unsaved_changes
    });
    let fresh = fleet_guard(&redis.url()).build().unwrap();
    assert!(fresh.is_compromised("LTAI5tDuringOutage00xxxx"));
    assert!(fresh.is_compromised("LTAI5tBeforeOutage00xxxx"));
    // One warning per outage and guard (a and b), however many operations failed meanwhile.
    let logs = capture.take();
    assert_eq!(
        logs.matches("the guard state store is unavailable").count(),
        2,
        "{logs}"
    );
}

#[test]
fn a_clearing_from_a_clock_an_hour_ahead_does_not_hide_a_later_leak() {
    if child_env().is_some() || !redis_installed() {
        return;
    }
    let redis = RedisServer::start();
    let key = "LTAI5tSkewedClock000xxxx";
    let ahead = fleet_guard(&redis.url())
        .clock_skew(time::Duration::hours(1))
        .build()
        .unwrap();
    let honest = fleet_guard(&redis.url()).build().unwrap();
    honest.mark_compromised(key, "first leak").unwrap();
    wait_for("the skewed host to learn the key", || refused(&ahead, key));
    assert!(ahead.clear(key).unwrap());
    wait_for("the clearing to reach the honest host", || {
        !honest.is_compromised(key)
    });
    // A later leak, stamped by an honest clock an hour behind the clearing's.
    honest.mark_compromised(key, "second leak").unwrap();
    assert!(refused(&honest, key));
    wait_for("the skewed host to learn the second leak", || {
        refused(&ahead, key)
    });
    let fresh = fleet_guard(&redis.url()).build().unwrap();
    assert!(fresh.is_compromised(key), "the later leak is not hidden");
}

const CORRUPT: &str = "corrupt_or_foreign_data_under_the_prefix_is_ignored_with_a_warning";

#[test]
fn corrupt_or_foreign_data_under_the_prefix_is_ignored_with_a_warning() {
    if in_own_process(CORRUPT) {
        return;
    }
    let capture = global_capture();
    let redis = RedisServer::start();
    let writer = fleet_guard(&redis.url()).build().unwrap();
    writer
        .mark_compromised("LTAI5tGoodKey0000000xxxx", "good")
        .unwrap();
    let mut conn = redis.conn();
    let fp_string = KeyFingerprint::of("LTAI5tAStringNotAHashxx").to_hex();
    let fp_junk = KeyFingerprint::of("LTAI5tJunkCounters00xxxx").to_hex();
    let fp_good = KeyFingerprint::of("LTAI5tGoodKey0000000xxxx").to_hex();
    redis::pipe()
        .sadd(format!("{PREFIX}:keys"), "not-a-fingerprint")
        .sadd(format!("{PREFIX}:keys"), &fp_string)
        .set(format!("{PREFIX}:key:{fp_string}"), "foreign")
        .sadd(format!("{PREFIX}:keys"), &fp_junk)
        .hset(format!("{PREFIX}:key:{fp_junk}"), "seen", "lots")
        .rpush(format!("{PREFIX}:ev:{fp_good}"), "{not json")
        .hset(format!("{PREFIX}:learned"), "x", "{\"product\":\"\"}")
        .query::<()>(&mut conn)
        .unwrap();
    drop(writer);
    capture.take();
    let guard = fleet_guard(&redis.url()).build().unwrap();
    let logs = capture.take();
    assert!(
        logs.contains("not the guard's"),
        "a warning names the skipped data: {logs}"
    );
    assert!(guard.is_compromised("LTAI5tGoodKey0000000xxxx"));
    assert_eq!(guard.compromised_keys().len(), 1);
    assert_eq!(
        guard
            .record("LTAI5tGoodKey0000000xxxx")
            .unwrap()
            .evidence
            .len(),
        1
    );
    assert!(guard.learned_entries().is_empty());
    // Nothing secret in Redis: no key id, only fingerprints and masked ids.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let mut dump = keys.join("\n");
    for key in &keys {
        if let Ok(fields) = redis::cmd("HGETALL")
            .arg(key)
            .query::<Vec<String>>(&mut conn)
        {
            dump.push_str(&fields.join("\n"));
        }
        if let Ok(items) = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query::<Vec<String>>(&mut conn)
        {
            dump.push_str(&items.join("\n"));
        }
    }
    assert!(!dump.contains("LTAI5tGoodKey0000000xxxx"), "{dump}");
}

#[test]
fn bad_urls_and_prefixes_are_refused_at_build() {
    for (url, prefix) in [
        ("http://127.0.0.1:6379/", "p"),
        ("redis://127.0.0.1:6379/", ""),
        ("redis://127.0.0.1:6379/", "has space"),
        ("redis://127.0.0.1:6379/", "x/y"),
        ("not a url", "p"),
    ] {
        let err = Guard::builder().redis(url, prefix).build().unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
    let err = Guard::builder()
        .redis("ftp://:s3cret@127.0.0.1:6379/", "p")
        .build()
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    // A server that is not there: built all the same, in memory, the outage reported.
    let guard = Guard::builder()
        .redis(
            format!(
                "redis://:s3cret@{}",
                closed_port_url().trim_start_matches("http://")
            ),
            "p",
        )
        .build()
        .unwrap();
    let health = guard.store_health();
    assert!(!health.available);
    assert!(!health.last_error.unwrap_or_default().contains("s3cret"));
    guard
        .mark_compromised("LTAI5tNoRedis0000000xxxx", "x")
        .unwrap_err();
    assert!(guard.is_compromised("LTAI5tNoRedis0000000xxxx"));
}
