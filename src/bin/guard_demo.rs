//! The guard's whole story, offline, against an embedded mock of Alibaba Cloud.
//!
//! ```text
//! cargo run --features test-util --bin guard_demo
//! ```
//!
//! It builds only the library, its test kit (feature `test-util`) and their dependencies: as a
//! binary rather than an example, it does not pull in the dev-dependencies (criterion,
//! proptest, wiremock...), which cargo builds for every example.
//!
//! 1. a normal call succeeds;
//! 2. a blocked call (ECS RunInstances) is answered by the "server" with the leak error and
//!    becomes `CompromisedKey`, with guidance;
//! 3. the same call again is refused before sending: the server sees no new request;
//! 4. a call that is not blocked still works.
//!
//! With `ALIYUN_GUARD_STATE_DIR` set, the guard persists the (demo) key's state there; built with
//! `--features redis` and `ALIYUN_GUARD_REDIS_URL` set, it shares it through that Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aliyun_guard::guard::Detection;
use aliyun_guard::testkit::MockAlibaba;
use aliyun_guard::{Client, Credentials, Error, Guard, RpcRequest};

const DEMO_KEY_ID: &str = "LTAI5tDemoKeyForGuard0001";
const DEMO_SECRET: &str = "demo-secret-not-a-real-key-000";

/// A mock Alibaba endpoint (the crate's test kit): it verifies signatures, answers ECS
/// RunInstances with the leak error for the demo key, and DescribeRegions with data.
async fn mock_alibaba() -> std::io::Result<MockAlibaba> {
    let server = MockAlibaba::start().await?;
    server
        .add_key(DEMO_KEY_ID, DEMO_SECRET)
        .leak(DEMO_KEY_ID, ["RunInstances"])
        .answer(
            "DescribeRegions",
            serde_json::json!({
                "Regions": {"Region": [{"RegionId": "cn-hangzhou", "LocalName": "华东1（杭州）"}]}
            }),
        );
    Ok(server)
}

fn requests_seen(server: &MockAlibaba) -> u64 {
    server.request_count()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A small runtime of our own: the demo needs no more than tokio's current-thread scheduler.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(demo())
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = mock_alibaba().await?;
    let alerts = Arc::new(AtomicUsize::new(0));
    let counter = alerts.clone();
    let builder = Guard::builder().state_dir_from_env();
    // Built with `--features redis`: the fleet store from ALIYUN_GUARD_REDIS_URL.
    #[cfg(feature = "redis")]
    let builder = builder.redis_from_env();
    let guard = Arc::new(
        builder
            .on_compromised(move |leak| {
                counter.fetch_add(1, Ordering::SeqCst);
                println!("   [alert hook] key {} reported leaked", leak.masked_key_id);
            })
            .build()?,
    );
    if guard.clear(DEMO_KEY_ID)? {
        println!(
            "(cleared the demo key left by an earlier run in {:?})",
            guard.state_file()
        );
    }
    let client = Client::builder()
        .credentials(Credentials::new(DEMO_KEY_ID, DEMO_SECRET))
        .endpoint(server.url())
        .guard(guard.clone())
        .build()?;
    println!(
        "aliyun-guard demo: mock Alibaba Cloud endpoint at {}",
        server.url()
    );
    println!(
        "key in use: {}\n",
        client.current_credentials().await?.masked_key_id()
    );

    let describe = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions").region("cn-hangzhou");
    let run = RpcRequest::new("Ecs", "2014-05-26", "RunInstances")
        .region("cn-hangzhou")
        .param("ImageId", "aliyun_3_x64_20G_alibase_20240819.vhd")
        .param("InstanceType", "ecs.g7.large");

    println!("1. DescribeRegions (not blocked)");
    let answer = client.call(&describe).await?;
    println!(
        "   ok, request id {}; requests that reached the server: {}\n",
        answer["RequestId"].as_str().unwrap_or("-"),
        requests_seen(&server)
    );

    println!("2. RunInstances (blocked for leaked keys)");
    match client.call(&run).await {
        Err(Error::CompromisedKey(leak)) if leak.detection == Detection::ServerAnswer => {
            println!("   CompromisedKey, detected from the server's answer:\n");
            for line in leak.to_string().lines() {
                println!("   | {line}");
            }
        }
        other => return Err(format!("expected a leak answer, got {other:?}").into()),
    }
    println!(
        "   requests that reached the server: {}\n",
        requests_seen(&server)
    );

    println!("3. RunInstances again");
    let before = requests_seen(&server);
    match client.call(&run).await {
        Err(Error::CompromisedKey(leak)) if leak.detection == Detection::RefusedLocally => {
            println!(
                "   refused before sending: {}",
                leak.to_string().lines().next().unwrap_or("")
            );
        }
        other => return Err(format!("expected a local refusal, got {other:?}").into()),
    }
    let after = requests_seen(&server);
    println!(
        "   requests that reached the server: {after} (new: {})\n",
        after - before
    );

    println!(
        "4. DescribeRegions again (not blocked: still goes out; the guard logs a one-time `tracing` warning)"
    );
    let answer = client.call(&describe).await?;
    println!(
        "   ok, request id {}; requests that reached the server: {}\n",
        answer["RequestId"].as_str().unwrap_or("-"),
        requests_seen(&server)
    );

    println!(
        "summary: {} requests reached the server for 4 calls; the alert hook fired {} time(s); \
              keys known compromised: {}",
        requests_seen(&server),
        alerts.load(Ordering::SeqCst),
        guard.compromised_keys().len()
    );
    if let Some(file) = guard.state_file() {
        println!("state persisted in {}", file.display());
    }
    Ok(())
}
