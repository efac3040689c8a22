//! Benchmarks: the credentials cache's hot path (a fresh value), on one thread and on eight
//! threads at once, for credentials without an expiry and for STS credentials that expire (which
//! cost one clock read more), and the clock read alone.
//!
//! `cargo bench --bench credentials`.

use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aliyun_guard::Credentials;
use aliyun_guard::credentials::{CredentialsCache, StaticProvider};
use criterion::{Criterion, criterion_group, criterion_main};

/// Polls a lookup once: a fresh value completes at once, with no runtime and no waker use.
fn lookup(cache: &CredentialsCache) -> Credentials {
    let mut future = std::pin::pin!(cache.credentials());
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(credentials)) => credentials,
        _ => panic!("the value should be fresh"),
    }
}

fn caches() -> Vec<(&'static str, CredentialsCache)> {
    let fixed = CredentialsCache::new(Credentials::new(
        "LTAI5tBenchKeyId0000wxyz",
        "BenchSecretValue0123456789abcd",
    ));
    let sts = CredentialsCache::new(StaticProvider::new(
        Credentials::new(
            "STS.BenchTemporaryKeyId00",
            "BenchSecretValue0123456789abcd",
        )
        .with_security_token("bench-token")
        .with_expiry(time::OffsetDateTime::now_utc() + time::Duration::days(365))
        .with_parent_key_id("LTAI5tBenchParentKey0wxyz"),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for cache in [&fixed, &sts] {
        runtime.block_on(cache.credentials()).unwrap();
    }
    vec![("static", fixed), ("expiring", sts)]
}

fn bench_fresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("credentials/fresh");
    for (name, cache) in caches() {
        group.bench_function(format!("{name}/1_thread"), |b| {
            b.iter(|| black_box(lookup(black_box(&cache))))
        });
        let cache = Arc::new(cache);
        group.bench_function(format!("{name}/8_threads"), |b| {
            // Eight threads look up concurrently; the time reported is the wall time per lookup,
            // all threads together (elapsed / (8 × iterations)): on a machine with fewer than
            // eight cores the threads take turns, so one thread's latency is not meaningful.
            b.iter_custom(|iters| {
                let barrier = Arc::new(Barrier::new(9));
                let workers: Vec<_> = (0..8)
                    .map(|_| {
                        let cache = Arc::clone(&cache);
                        let barrier = Arc::clone(&barrier);
                        std::thread::spawn(move || {
                            barrier.wait();
                            for _ in 0..iters {
                                black_box(lookup(&cache));
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for worker in workers {
                    worker.join().unwrap();
                }
                start.elapsed() / 8
            })
        });
    }
    // For scale: the clock read that a value with an expiry costs (`clock_gettime`), which
    // dominates the `expiring` lookups where that call is slow (virtualised machines).
    group.bench_function("clock_read", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_fresh
}
criterion_main!(benches);
