//! Signature V3 (ACS3-HMAC-SHA256) beside RPC 1.0 (HMAC-SHA1) for the same typical RPC call: a
//! 12-parameter ECS `DescribeInstances` (the request of `benches/client.rs`).
//!
//! `cargo bench --bench signing` (or briefly: `-- --warm-up-time 1 --measurement-time 3`).
//! Target (issue 14): V3 within 2x of v1.
use std::hint::black_box;

use aliyun_guard::__internal::{V3Request, sign_v3};
use aliyun_guard::signing::{Method, Signer};
use aliyun_guard::{Credentials, RpcRequest};
use criterion::{Criterion, criterion_group, criterion_main};
use time::macros::datetime;

const PARAMS: [(&str, &str); 13] = [
    ("RegionId", "cn-hangzhou"),
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
];

fn credentials() -> Credentials {
    Credentials::new("LTAI5tBenchKeyId0000wxyz", "BenchSecretValue0123456789abcd")
}

fn bench_v1_v3(c: &mut Criterion) {
    let creds = credentials();
    let at = datetime!(2026-01-02 03:04:05 UTC);
    // v1: the client's signer (common parameters added, RegionId from the request's region).
    let rpc = RpcRequest::new("Ecs", "2014-05-26", "DescribeInstances")
        .region("cn-hangzhou")
        .params(PARAMS[1..].iter().copied())
        .method(Method::Post);
    let signer = Signer::new()
        .with_clock(move || at)
        .with_nonce(|| "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".to_string());
    // V3: the same parameters in the query, POST /.
    let v3 = V3Request::rpc(
        "ecs.cn-hangzhou.aliyuncs.com",
        "DescribeInstances",
        "2014-05-26",
    )
    .queries(PARAMS.iter().copied());
    let nonce = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";
    assert!(sign_v3(&v3, &creds, at, nonce).is_ok());

    let mut group = c.benchmark_group("sign_ecs_13_params");
    group.bench_function("v1_hmac_sha1", |b| {
        b.iter(|| black_box(signer.sign(black_box(&rpc), &creds)))
    });
    group.bench_function("v3_acs3_hmac_sha256", |b| {
        b.iter(|| black_box(sign_v3(black_box(&v3), &creds, at, nonce)))
    });
    let sts = credentials().with_security_token("CAIS".repeat(100));
    group.bench_function("v1_hmac_sha1_sts", |b| {
        b.iter(|| black_box(signer.sign(black_box(&rpc), &sts)))
    });
    group.bench_function("v3_acs3_hmac_sha256_sts", |b| {
        b.iter(|| black_box(sign_v3(black_box(&v3), &sts, at, nonce)))
    });
    group.finish();
}

criterion_group!(benches, bench_v1_v3);
criterion_main!(benches);
