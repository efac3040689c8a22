//! The guard's whole story, offline, against an embedded mock of Alibaba Cloud.
//!
//! ```text
//! cargo run --example guard_demo
//! ```
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
use aliyun_guard::{Client, Credentials, Error, Guard, RpcRequest};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const DEMO_KEY_ID: &str = "LTAI5tDemoKeyForGuard0001";
const DEMO_SECRET: &str = "demo-secret-not-a-real-key-000";

fn form_value(request: &Request, name: &str) -> Option<String> {
    url::form_urlencoded::parse(&request.body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A mock Alibaba endpoint: ECS RunInstances answers with the leak error, the rest succeeds.
async fn mock_alibaba() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(|request: &Request| match form_value(request, "Action").as_deref() {
            Some("RunInstances") => ResponseTemplate::new(403).set_body_json(serde_json::json!({
                "RequestId": "5E3A1B6C-DEMO-4C2B-9F0A-LEAKAGE00001",
                "HostId": "ecs.cn-hangzhou.aliyuncs.com",
                "Code": "Forbidden",
                "Message": "There is a risk of leakage of this AccessKey.",
                "Recommend": "https://api.aliyun.com/troubleshoot?q=Forbidden"
            })),
            Some(action) => ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "RequestId": format!("DEMO-{action}"),
                "Regions": {"Region": [{"RegionId": "cn-hangzhou", "LocalName": "华东1（杭州）"}]}
            })),
            None => ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "Code": "MissingParameter", "Message": "Action is mandatory", "RequestId": "DEMO"})),
        })
        .mount(&server)
        .await;
    server
}

async fn requests_seen(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The guard reports through `tracing`: show its warnings on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let server = mock_alibaba().await;
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
        .endpoint(server.uri())
        .guard(guard.clone())
        .build()?;
    println!(
        "aliyun-guard demo: mock Alibaba Cloud endpoint at {}",
        server.uri()
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
        requests_seen(&server).await
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
        requests_seen(&server).await
    );

    println!("3. RunInstances again");
    let before = requests_seen(&server).await;
    match client.call(&run).await {
        Err(Error::CompromisedKey(leak)) if leak.detection == Detection::RefusedLocally => {
            println!(
                "   refused before sending: {}",
                leak.to_string().lines().next().unwrap_or("")
            );
        }
        other => return Err(format!("expected a local refusal, got {other:?}").into()),
    }
    let after = requests_seen(&server).await;
    println!(
        "   requests that reached the server: {after} (new: {})\n",
        after - before
    );

    println!("4. DescribeRegions again (not blocked: still goes out, with a one-time warning)");
    let answer = client.call(&describe).await?;
    println!(
        "   ok, request id {}; requests that reached the server: {}\n",
        answer["RequestId"].as_str().unwrap_or("-"),
        requests_seen(&server).await
    );

    println!(
        "summary: {} requests reached the server for 4 calls; the alert hook fired {} time(s); \
              keys known compromised: {}",
        requests_seen(&server).await,
        alerts.load(Ordering::SeqCst),
        guard.compromised_keys().len()
    );
    if let Some(file) = guard.state_file() {
        println!("state persisted in {}", file.display());
    }
    Ok(())
}
