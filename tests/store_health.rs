//! A state directory that cannot be written: the guard goes on in memory with ONE warning, calls
//! answer as before, and the guard's store health reports the error. One test in this binary:
//! it installs a global tracing subscriber, so that warnings from background threads are seen.
#![cfg(unix)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aliyun_guard::guard::{Detection, Guard};
use aliyun_guard::{Error, RpcRequest};
use common::*;

const WARNING: &str = "the guard state store is unavailable";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_dir_degrades_to_memory_with_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.subscriber(tracing::Level::WARN)).unwrap();

    let server = leak_server().await;

    let dir = tempfile::tempdir().unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() == 0 };
    if root {
        // Root writes into a mode-555 directory anyway: a directory where the lock file should
        // be makes the store just as unusable.
        std::fs::create_dir(dir.path().join("state.lock")).unwrap();
    } else {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let guard = Arc::new(
        Guard::builder()
            .state_dir(dir.path())
            .refresh_interval(Duration::from_millis(5))
            .build()
            .expect("an unwritable state dir does not stop the guard"),
    );
    let client = client_builder(&server)
        .guard(guard.clone())
        .build()
        .unwrap();

    let ok = client
        .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
        .await
        .unwrap();
    assert_eq!(ok["RequestId"], "R-OK");
    let run = RpcRequest::new("Ecs", "2014-05-26", "RunInstances");
    match client.call(&run).await.unwrap_err() {
        Error::CompromisedKey(leak) => {
            assert_eq!(leak.detection, Detection::ServerAnswer);
            assert_eq!(leak.request_id.as_deref(), Some("LEAK-REQ-1"));
        }
        other => panic!("expected the leak error, got {other:?}"),
    }
    // Many more calls, each due for a background sync that fails again.
    let started = Instant::now();
    for _ in 0..20 {
        client
            .call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match client.call(&run).await.unwrap_err() {
        Error::CompromisedKey(leak) => assert_eq!(leak.detection, Detection::RefusedLocally),
        other => panic!("expected a local refusal, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(300));

    let health = guard.store_health();
    assert!(health.persistent);
    assert!(!health.available, "{health:?}");
    assert!(health.unsaved_changes, "{health:?}");
    let error = health.last_error.expect("the error is kept");
    assert!(error.contains("state.lock"), "{error}");

    let logs = capture.take();
    assert_eq!(
        logs.matches(WARNING).count(),
        1,
        "one warning per outage, not per call:\n{logs}"
    );
    assert!(
        !logs.contains(KEY_ID) && !logs.contains(SECRET),
        "no secret in the logs"
    );
    if !root {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
