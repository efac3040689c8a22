//! Benchmarks: signing, the guard's check before sending, classifying error bodies, and a full
//! guarded `call` against plain reqwest on the same loopback server.
//!
//! `cargo bench --bench client` (all), or a group: `cargo bench --bench client -- sign`.

#[path = "support/mock_server.rs"]
mod mock_server;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aliyun_guard::__internal::{Decoded, decode, detect_body, fields_are_leak};
use aliyun_guard::guard::{Guard, KeyFingerprint, Verdict};
use aliyun_guard::signing::{Method, Signer};
use aliyun_guard::{Client, Credentials, RpcRequest};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn ecs_request() -> RpcRequest {
    // A typical 12-parameter ECS call.
    RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
        .region("cn-hangzhou")
        .params([
            ("VpcId", "vpc-bp1opxu1zkhn00gzv26cm"),
            ("VSwitchId", "vsw-bp1s5fnvk4gn2tws03624"),
            ("ZoneId", "cn-hangzhou-g"),
            ("InstanceType", "ecs.g7.large"),
            ("InstanceChargeType", "PostPaid"),
            ("Status", "Running"),
            ("PageNumber", "1"),
            ("PageSize", "50"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "production web"),
            ("InstanceName", "web-*"),
            ("SecurityGroupId", "sg-bp67acfmxazb4ph***"),
        ])
}

fn credentials() -> Credentials {
    Credentials::new("LTAI5tBenchKeyId0000wxyz", "BenchSecretValue0123456789abcd")
}

fn bench_sign(c: &mut Criterion) {
    let signer = Signer::new();
    let creds = credentials();
    let request = ecs_request();
    assert_eq!(request.parameters().len(), 12);
    c.bench_function("sign/ecs_12_params", |b| {
        b.iter(|| black_box(signer.sign(black_box(&request), &creds)))
    });
}

/// The parts of signing, to see where its time goes.
fn bench_sign_parts(c: &mut Criterion) {
    use aliyun_guard::__internal::{canonical_query, format_timestamp, signature, string_to_sign};
    let request = ecs_request();
    let mut params: Vec<(&str, &str)> = request
        .parameters()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    params.extend([
        ("AccessKeyId", "LTAI5tBenchKeyId0000wxyz"),
        ("Action", "DescribeInstances"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2026-11-23T10:00:00Z"),
        ("Version", "2014-05-26"),
        ("RegionId", "cn-hangzhou"),
    ]);
    let canonical = canonical_query(&params);
    let sts = string_to_sign(Method::Post, &canonical);
    let mut group = c.benchmark_group("sign_parts");
    group.bench_function("canonical_query", |b| {
        b.iter(|| black_box(canonical_query(black_box(&params))))
    });
    group.bench_function("string_to_sign", |b| {
        b.iter(|| black_box(string_to_sign(Method::Post, black_box(&canonical))))
    });
    group.bench_function("hmac_sha1_base64", |b| {
        b.iter(|| black_box(signature("BenchSecretValue0123456789abcd", black_box(&sts))))
    });
    group.bench_function("timestamp", |b| {
        b.iter(|| black_box(format_timestamp(time::OffsetDateTime::now_utc())))
    });
    group.bench_function("uuid_nonce", |b| {
        b.iter(|| black_box(uuid::Uuid::new_v4().hyphenated().to_string()))
    });
    group.finish();
}

fn guard_with_10k_keys() -> (Guard, KeyFingerprint, KeyFingerprint) {
    let guard = Guard::new();
    let ids: Vec<String> = (0..10_000)
        .map(|i| format!("LTAI5tBenchKey{i:010}"))
        .collect();
    guard.mark_all_compromised(&ids, "bench").unwrap();
    (
        guard,
        KeyFingerprint::of(&ids[4242]),
        KeyFingerprint::of("LTAI5tCleanKey0000000000"),
    )
}

fn bench_guard(c: &mut Criterion) {
    let (guard, bad, good) = guard_with_10k_keys();
    assert!(matches!(
        guard.verdict(&bad, "Ecs", "2014-05-26", "RunInstances"),
        Verdict::Refuse { .. }
    ));
    // Warm the once-per-key warning so it is not measured.
    let _ = guard.verdict(&bad, "Ecs", "2014-05-26", "DescribeInstances");
    let mut group = c.benchmark_group("guard_check");
    group.bench_function("clean_key", |b| {
        b.iter(|| black_box(guard.verdict(black_box(&good), "Ecs", "2014-05-26", "RunInstances")))
    });
    group.bench_function("compromised_key/blocked_action", |b| {
        b.iter(|| black_box(guard.verdict(black_box(&bad), "Ecs", "2014-05-26", "RunInstances")))
    });
    group.bench_function("compromised_key/allowed_action", |b| {
        b.iter(|| {
            black_box(guard.verdict(black_box(&bad), "Ecs", "2014-05-26", "DescribeInstances"))
        })
    });
    // Eight threads checking at once (on this machine's two cores): time per check, per thread.
    let guard = Arc::new(guard);
    for (name, key) in [
        ("8_threads/clean_key", good),
        ("8_threads/compromised_key", bad),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..8 {
                        let guard = &guard;
                        scope.spawn(move || {
                            for _ in 0..iters {
                                black_box(guard.verdict(
                                    black_box(&key),
                                    "Ecs",
                                    "2014-05-26",
                                    "RunInstances",
                                ));
                            }
                        });
                    }
                });
                // Eight threads did `iters` checks each; two cores run them. Report wall time per
                // check per thread, the latency one caller sees.
                start.elapsed() / 8 * 2
            })
        });
    }
    group.finish();
}

fn bench_classify(c: &mut Criterion) {
    let json = br#"{"RequestId":"5E3A1B6C-7F2D-4C2B-9F0A-3B1F2E4D5C6A","HostId":"ecs.cn-hangzhou.aliyuncs.com","Code":"Forbidden","Message":"There is a risk of leakage of this AccessKey.","Recommend":"https://api.aliyun.com/troubleshoot?q=Forbidden&product=Ecs"}"#;
    let xml = br#"<?xml version="1.0" encoding="UTF-8"?><Error><RequestId>5E3A1B6C-7F2D-4C2B-9F0A-3B1F2E4D5C6A</RequestId><HostId>ecs.cn-hangzhou.aliyuncs.com</HostId><Code>Forbidden</Code><Message>There is a risk of leakage of this AccessKey.</Message><Recommend><![CDATA[https://api.aliyun.com/troubleshoot?q=Forbidden]]></Recommend></Error>"#;
    let other = br#"{"RequestId":"R","HostId":"ecs.aliyuncs.com","Code":"InvalidParameter","Message":"The specified parameter \"PageSize\" is not valid."}"#;
    let mut group = c.benchmark_group("classify");
    for (name, body) in [
        ("json_leak", &json[..]),
        ("xml_leak", &xml[..]),
        ("json_other_error", &other[..]),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| match decode(403, black_box(body)) {
                Decoded::Error(fields) => black_box(fields_are_leak(&fields)),
                _ => black_box(detect_body(body).is_some()),
            })
        });
    }
    group.finish();
}

fn bench_round_trip(c: &mut Criterion) {
    let server = mock_server::start(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = Client::builder()
        .credentials(credentials())
        .endpoint(&server.url)
        .build()
        .unwrap();
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").region("cn-hangzhou");
    let plain = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // The same request, signed once, for plain reqwest: the same bytes on the wire (body,
    // Content-Type and User-Agent).
    let body = bytes::Bytes::from(
        Signer::new()
            .sign(&request.clone().method(Method::Post), &credentials())
            .into_encoded_params(),
    );
    let url: Arc<str> = format!("{}/", server.url).into();
    // Each side clones only reference-counted handles per call.
    let request = Arc::new(request);

    // Set when a round trip runs: a filter may skip the whole group.
    let ran = std::cell::Cell::new(false);
    let mut group = c.benchmark_group("round_trip");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(6));
    for concurrency in [1usize, 64] {
        group.throughput(Throughput::Elements(concurrency as u64));
        group.bench_function(format!("guarded_call/{concurrency}"), |b| {
            ran.set(true);
            b.to_async(&runtime).iter(|| {
                let client = client.clone();
                let request = request.clone();
                async move {
                    let calls = (0..concurrency).map(|_| {
                        let client = client.clone();
                        let request = request.clone();
                        tokio::spawn(async move { client.call(&request).await.map(|_| ()) })
                    });
                    for done in futures::future::join_all(calls).await {
                        done.unwrap().unwrap();
                    }
                }
            })
        });
        group.bench_function(format!("plain_reqwest/{concurrency}"), |b| {
            ran.set(true);
            b.to_async(&runtime).iter(|| {
                let plain = plain.clone();
                let body = body.clone();
                let url = url.clone();
                async move {
                    let calls = (0..concurrency).map(|_| {
                        let (plain, body, url) = (plain.clone(), body.clone(), url.clone());
                        tokio::spawn(async move {
                            let response = plain
                                .post(&*url)
                                .header("content-type", "application/x-www-form-urlencoded")
                                .header("user-agent", aliyun_guard::USER_AGENT_VALUE)
                                .body(body)
                                .send()
                                .await?;
                            let bytes = response.bytes().await?;
                            // The same JSON parse the client does.
                            let value: serde_json::Value =
                                serde_json::from_slice(&bytes).expect("JSON answer");
                            black_box(value);
                            Ok::<(), reqwest::Error>(())
                        })
                    });
                    for done in futures::future::join_all(calls).await {
                        done.unwrap().unwrap();
                    }
                }
            })
        });
    }
    group.finish();
    assert!(
        !ran.get() || server.requests() > 0,
        "no call reached the server"
    );
}

criterion_group!(
    benches,
    bench_sign,
    bench_sign_parts,
    bench_guard,
    bench_classify,
    bench_round_trip
);
criterion_main!(benches);
