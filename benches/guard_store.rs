//! Benchmarks: loading a guard state file and a restriction table at their size caps (issue 9,
//! defect 5: both used to be quadratic). Each should take well under a second in release.
//!
//! `cargo bench --bench guard_store`. With `--features redis`, the check before sending is also
//! measured with the Redis store attached (`cargo bench --features redis --bench guard_store --
//! guard_check`).

use std::hint::black_box;
use std::time::Duration;

use aliyun_guard::__internal::{MAX_STATE_BYTES, MAX_TABLE_BYTES, check_state_file};
use aliyun_guard::guard::{Guard, KeyFingerprint, RestrictionTable};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A state file just under the cap: keys with one piece of evidence, clearings and learned
/// entries in equal numbers.
fn cap_sized_state() -> String {
    let now = "2026-11-20T10:00:00Z";
    let (mut keys, mut cleared, mut learned) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0usize;
    let mut i = 0usize;
    while size < MAX_STATE_BYTES as usize - 4096 {
        let fp = KeyFingerprint::of(&format!("LTAI5tBenchKey{i:010}")).to_hex();
        let entry = match i % 3 {
            0 => {
                let k = format!(
                    r#"{{"fingerprint":"{fp}","masked_key_id":"LTAI****bnch","first_seen":"{now}","last_seen":"{now}","evidence":[{{"product":"Ecs","version":"2014-05-26","action":"RunInstances","request_id":"R{i}","at":"{now}","source":{{"kind":"server_answer"}}}}]}}"#
                );
                keys.push(k.clone());
                k
            }
            1 => {
                let c = format!(
                    r#"{{"fingerprint":"{fp}","masked_key_id":"LTAI****bnch","cleared_at":"{now}"}}"#
                );
                cleared.push(c.clone());
                c
            }
            _ => {
                let l = format!(
                    r#"{{"product":"Ecs","version":"2014-05-26","action":"Action{i}","learned_at":"{now}"}}"#
                );
                learned.push(l.clone());
                l
            }
        };
        size += entry.len() + 1;
        i += 1;
    }
    format!(
        r#"{{"format":"aliyun-guard-state","version":1,"keys":[{}],"cleared":[{}],"learned":[{}]}}"#,
        keys.join(","),
        cleared.join(","),
        learned.join(",")
    )
}

/// A table file just under the cap: one product with an alias per entry.
fn cap_sized_table() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < MAX_TABLE_BYTES as usize - 512 {
        text.push_str(&format!(
            "[[entry]]\nproduct = \"P{i}\"\naliases = [\"Alias {i}\"]\nversion = \"2020-01-01\"\nactions = [\"Act{i}\"]\n"
        ));
        i += 1;
    }
    text
}

fn loads(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_store");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let state = cap_sized_state();
    group.throughput(Throughput::Bytes(state.len() as u64));
    group.bench_function("check_state_file at the cap", |b| {
        b.iter(|| check_state_file(black_box(state.as_bytes())).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), &state).unwrap();
    group.bench_function("Guard build from a state dir at the cap", |b| {
        b.iter(|| Guard::builder().state_dir(dir.path()).build().unwrap())
    });

    let table = cap_sized_table();
    group.throughput(Throughput::Bytes(table.len() as u64));
    group.bench_function("table parse at the cap", |b| {
        b.iter(|| RestrictionTable::from_toml_str(black_box(&table), "bench").unwrap())
    });
    let parsed = RestrictionTable::from_toml_str(&table, "bench").unwrap();
    group.bench_function("table merge at the cap", |b| {
        b.iter(|| {
            let mut builtin = RestrictionTable::builtin();
            builtin.merge(black_box(&parsed));
            builtin
        })
    });
    group.finish();
}

/// The check before sending (`Guard::verdict`) with no store, a state directory, and Redis
/// attached (feature `redis`; a `redis-server` of its own on a free loopback port, skipped with
/// a message when it is not installed). The check reads the local snapshot only: it costs the
/// same with every store.
fn check_with_stores(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_check");
    let clean = KeyFingerprint::of("LTAI5tCleanBenchKey00xxxx");
    let leaked = "LTAI5tLeakedBenchKey0xxxx";
    let leaked_fp = KeyFingerprint::of(leaked);
    let mut bench = |name: &str, guard: &Guard| {
        guard.mark_compromised(leaked, "bench").ok();
        group.bench_function(format!("{name}: clean key"), |b| {
            b.iter(|| {
                guard.verdict(
                    black_box(&clean),
                    black_box("Ecs"),
                    black_box("2014-05-26"),
                    black_box("RunInstances"),
                )
            })
        });
        group.bench_function(format!("{name}: compromised key"), |b| {
            b.iter(|| {
                guard.verdict(
                    black_box(&leaked_fp),
                    black_box("Ecs"),
                    black_box("2014-05-26"),
                    black_box("RunInstances"),
                )
            })
        });
    };
    bench("memory", &Guard::new());
    let dir = tempfile::tempdir().unwrap();
    bench(
        "state dir",
        &Guard::builder().state_dir(dir.path()).build().unwrap(),
    );
    #[cfg(feature = "redis")]
    match redis_server::RedisServer::start() {
        Some(server) => {
            let guard = Guard::builder()
                .redis(server.url(), "bench")
                .build()
                .unwrap();
            assert!(guard.store_health().available, "Redis is reachable");
            bench("redis", &guard);
            drop(guard);
            drop(server);
        }
        None => eprintln!("guard_check redis: skipped, redis-server is not installed"),
    }
    #[cfg(not(feature = "redis"))]
    eprintln!("guard_check redis: skipped, build with --features redis");
    group.finish();
}

#[cfg(feature = "redis")]
mod redis_server {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A redis-server of the benchmark's own, killed on drop.
    pub struct RedisServer {
        child: Child,
        port: u16,
        _dir: tempfile::TempDir,
    }

    impl RedisServer {
        pub fn start() -> Option<Self> {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let dir = tempfile::tempdir().ok()?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let server = Self {
                child,
                port,
                _dir: dir,
            };
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if started.elapsed() > Duration::from_secs(30) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(server)
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

criterion_group!(benches, loads, check_with_stores);
criterion_main!(benches);
