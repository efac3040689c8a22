//! The guard against wiremock: detection, local refusal, policies, learning, persistence, hooks,
//! probe.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aliyun_guard::guard::{Detection, Guard, LeakPolicy, RestrictionTable};
use aliyun_guard::{Client, Error, ProbeOutcome, RpcRequest};
use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn run_instances() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances").region("cn-hangzhou")
}
fn describe_regions() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn client_with(server: &MockServer, guard: Arc<Guard>) -> Client {
    client_builder(server).guard(guard).build().unwrap()
}

fn compromised(err: Error) -> aliyun_guard::CompromisedKey {
    match err {
        Error::CompromisedKey(c) => *c,
        other => panic!("expected CompromisedKey, got {other:?}"),
    }
}

#[tokio::test]
async fn the_whole_story_with_the_default_policy() {
    let server = leak_server().await;
    let guard = Arc::new(Guard::new());
    let client = client_with(&server, guard.clone());

    client.call(&describe_regions()).await.unwrap();
    assert_eq!(hits(&server).await, 1);

    let leak = compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(hits(&server).await, 2, "a leak answer is never retried");
    assert_eq!(leak.detection, Detection::ServerAnswer);
    assert_eq!(leak.masked_key_id, "LTAI****wxyz");
    assert_eq!(
        (
            leak.product.as_str(),
            leak.version.as_str(),
            leak.action.as_str()
        ),
        ("Ecs", "2014-05-26", "RunInstances")
    );
    assert_eq!(leak.status, Some(403));
    assert_eq!(leak.request_id.as_deref(), Some("LEAK-REQ-1"));
    assert_eq!(leak.host_id.as_deref(), Some("ecs.aliyuncs.com"));
    assert_eq!(leak.server_code.as_deref(), Some("Forbidden"));
    assert_eq!(leak.server_message.as_deref(), Some(LEAK_MESSAGE));
    assert!(leak.on_restriction_table);
    assert!(leak.remediation.steps.len() >= 5);
    assert!(guard.is_compromised(KEY_ID));

    let refused = compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(hits(&server).await, 2, "refused before sending: no request");
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(refused.first_seen, leak.first_seen);
    assert!(refused.request_id.is_none());

    client.call(&describe_regions()).await.unwrap();
    assert_eq!(
        hits(&server).await,
        3,
        "a call that is not blocked still goes out"
    );
}

#[tokio::test]
async fn the_leak_answer_is_recognised_in_every_form_and_status() {
    let bodies: Vec<(u16, ResponseTemplate)> = vec![
        (400, ResponseTemplate::new(400).set_body_json(leak_json())),
        (403, ResponseTemplate::new(403).set_body_string(leak_xml())),
        (404, ResponseTemplate::new(404).set_body_json(serde_json::json!({"code": "forbidden ", "message": "there is a RISK of   leakage of this accesskey", "requestId": "R-lc"}))),
        (200, ResponseTemplate::new(200).set_body_json(leak_json())),
        (403, ResponseTemplate::new(403).set_body_string("Forbidden : There is a risk of leakage of this AccessKey.")),
        (200, ResponseTemplate::new(200).set_body_json(serde_json::json!({"Message": LEAK_MESSAGE, "RequestId": "R-bare"}))),
        (500, ResponseTemplate::new(500).set_body_string("<Error><Code>Forbidden</Code><Message>Forbidden:There is a risk of leakage of this AccessKey.</Message></Error>")),
    ];
    for (status, template) in bodies {
        let server = MockServer::start().await;
        Mock::given(path("/"))
            .respond_with(template)
            .mount(&server)
            .await;
        let client = client_with(&server, Arc::new(Guard::new()));
        let leak = compromised(client.call(&run_instances()).await.unwrap_err());
        assert_eq!(leak.status, Some(status));
        assert_eq!(hits(&server).await, 1, "status {status}: never retried");
    }
}

#[tokio::test]
async fn lookalike_errors_are_plain_api_errors() {
    for (code, message) in [
        (
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource.",
        ),
        (
            "Forbidden.RiskControl",
            "This operation is forbidden by Aliyun RiskControl system.",
        ),
        (
            "Forbidden.AccessKeyDisabled",
            "The specified AccessKey is disabled.",
        ),
        (
            "Forbidden.AccessKey",
            "There is a risk of leakage of this AccessKey.",
        ),
        (
            "InvalidAccessKeyId.Inactive",
            "Specified access key is disabled.",
        ),
        ("NoPermission", "You are not authorized to do this action."),
        (
            "Forbidden",
            "User not authorized to operate on the specified resource.",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                serde_json::json!({"Code": code, "Message": message, "RequestId": "R"}),
            ))
            .mount(&server)
            .await;
        let guard = Arc::new(Guard::new());
        let err = client_with(&server, guard.clone())
            .call(&run_instances())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Api(api) if api.code == code),
            "{code}: {err:?}"
        );
        assert!(
            !guard.is_compromised(KEY_ID),
            "{code} must not mark the key"
        );
    }
}

#[tokio::test]
async fn block_all_refuses_every_call_of_the_key() {
    let server = leak_server().await;
    let guard = common::guard_with(LeakPolicy::BlockAll);
    let client = client_with(&server, guard);
    compromised(client.call(&run_instances()).await.unwrap_err());
    let refused = compromised(client.call(&describe_regions()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert!(!refused.on_restriction_table);
    assert_eq!(hits(&server).await, 1);
}

#[tokio::test]
async fn observe_only_never_refuses_but_still_classifies() {
    let server = leak_server().await;
    let guard = common::guard_with(LeakPolicy::ObserveOnly);
    let client = client_with(&server, guard.clone());
    for _ in 0..3 {
        let leak = compromised(client.call(&run_instances()).await.unwrap_err());
        assert_eq!(leak.detection, Detection::ServerAnswer);
    }
    assert_eq!(hits(&server).await, 3);
    assert!(guard.is_compromised(KEY_ID));
    client.call(&describe_regions()).await.unwrap();
}

#[tokio::test]
async fn a_leak_for_an_unlisted_action_is_learned_and_kept() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("ModifyInstanceAttribute"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    // The mock is plain http: learning from it must be allowed explicitly.
    let guard = Arc::new(
        Guard::builder()
            .state_dir(dir.path())
            .learn_from_insecure_endpoints(true)
            .build()
            .unwrap(),
    );
    let client = client_with(&server, guard.clone());
    let request = RpcRequest::new("Ecs", "2014-05-26", "ModifyInstanceAttribute");
    assert!(
        !guard
            .table()
            .is_blocked("Ecs", "2014-05-26", "ModifyInstanceAttribute")
    );
    let leak = compromised(client.call(&request).await.unwrap_err());
    assert!(leak.on_restriction_table);
    assert!(
        guard
            .table()
            .is_blocked("Ecs", "2014-05-26", "ModifyInstanceAttribute")
    );
    let learned = guard.learned_entries();
    assert_eq!(learned.len(), 1);
    assert_eq!(learned[0].request_id.as_deref(), Some("LEAK-REQ-1"));
    assert_eq!(learned[0].host.as_deref(), Some("127.0.0.1"));
    let refused = compromised(client.call(&request).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(hits(&server).await, 1);
    // A restart keeps the learned entry.
    let again = Guard::builder().state_dir(dir.path()).build().unwrap();
    assert!(
        again
            .table()
            .is_blocked("ecs", "2014-05-26", "modifyinstanceattribute")
    );
    assert!(!RestrictionTable::builtin().is_blocked(
        "Ecs",
        "2014-05-26",
        "ModifyInstanceAttribute"
    ));
}

#[tokio::test]
async fn two_clients_sharing_a_state_directory_know_each_others_keys() {
    let server = leak_server().await;
    let dir = tempfile::tempdir().unwrap();
    let early = Arc::new(
        Guard::builder()
            .state_dir(dir.path())
            .refresh_interval(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let first = Arc::new(Guard::builder().state_dir(dir.path()).build().unwrap());
    compromised(
        client_with(&server, first)
            .call(&run_instances())
            .await
            .unwrap_err(),
    );
    assert_eq!(hits(&server).await, 1);
    // A guard built after the detection (a restart) refuses without a request.
    let later = Arc::new(Guard::builder().state_dir(dir.path()).build().unwrap());
    let refused = compromised(
        client_with(&server, later)
            .call(&run_instances())
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.detection, Detection::RefusedLocally);
    // A guard that was already running picks up the other's write in the background, started
    // by its next call (which itself reads the snapshot in memory and never waits for the file).
    let early_client = client_with(&server, early.clone());
    let waited = std::time::Instant::now();
    while !early.is_compromised(KEY_ID) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the running guard never picked up the other's write"
        );
        early_client.call(&describe_regions()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = compromised(early_client.call(&run_instances()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    let run_hits = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| param(r, "Action").as_deref() == Some("RunInstances"))
        .count();
    assert_eq!(run_hits, 1);
    let text = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(
        !text.contains(KEY_ID) && !text.contains(SECRET),
        "the state file holds no key id or secret"
    );
    assert!(text.contains("LTAI****wxyz"));
}

#[tokio::test]
async fn many_tasks_detecting_at_once_fire_the_hook_once() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(leak_json())
                .set_delay(Duration::from_millis(50)),
        )
        .mount(&server)
        .await;
    let fired = Arc::new(AtomicUsize::new(0));
    let seen = fired.clone();
    let masks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_masks = masks.clone();
    let dir = tempfile::tempdir().unwrap();
    let guard = Arc::new(
        Guard::builder()
            .state_dir(dir.path())
            .on_compromised(move |e| {
                seen_masks.lock().unwrap().push(e.masked_key_id.clone());
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap(),
    );
    let client = client_with(&server, guard.clone());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call(&run_instances()).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.is_compromised_key());
    }
    assert_eq!(
        fired.load(Ordering::SeqCst),
        1,
        "the hook fires once per key"
    );
    assert_eq!(guard.compromised_keys().len(), 1);
    // Another key is another alert.
    let other = client_builder(&server)
        .credentials(aliyun_guard::Credentials::new(
            "LTAI5tAnotherKey00000abcd",
            "s",
        ))
        .guard(guard.clone())
        .build()
        .unwrap();
    compromised(other.call(&run_instances()).await.unwrap_err());
    assert_eq!(fired.load(Ordering::SeqCst), 2);
    assert_eq!(
        *masks.lock().unwrap(),
        vec!["LTAI****wxyz".to_string(), "LTAI****abcd".to_string()]
    );
}

#[tokio::test]
async fn a_panicking_hook_does_not_break_the_call() {
    let server = leak_server().await;
    let guard = Arc::new(
        Guard::builder()
            .on_compromised(|_| panic!("alerting is down"))
            .build()
            .unwrap(),
    );
    let err = client_with(&server, guard)
        .call(&run_instances())
        .await
        .unwrap_err();
    assert!(err.is_compromised_key());
}

#[tokio::test]
async fn keys_can_be_marked_and_cleared_by_hand() {
    let server = leak_server().await;
    let dir = tempfile::tempdir().unwrap();
    let guard = Arc::new(Guard::builder().state_dir(dir.path()).build().unwrap());
    assert!(
        guard
            .mark_compromised(KEY_ID, "Security Center leak list")
            .unwrap()
    );
    assert!(!guard.mark_compromised(KEY_ID, "again").unwrap());
    let client = client_with(&server, guard.clone());
    let refused = compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert_eq!(hits(&server).await, 0);
    assert!(guard.clear(KEY_ID).unwrap());
    assert!(!guard.is_compromised(KEY_ID));
    // The clearing is persisted: a restart does not bring the key back.
    let again = Guard::builder().state_dir(dir.path()).build().unwrap();
    assert!(!again.is_compromised(KEY_ID));
    client.call(&describe_regions()).await.unwrap();
}

#[tokio::test]
async fn an_updated_table_from_a_file_blocks_new_actions() {
    let server = leak_server().await;
    let dir = tempfile::tempdir().unwrap();
    let update = dir.path().join("update.json");
    std::fs::write(
        &update,
        r#"{"source": "ops", "updated": "2026-11-01", "entry": [
            {"product": "Ecs", "version": "2014-05-26", "actions": ["DescribeRegions"]}]}"#,
    )
    .unwrap();
    let table = RestrictionTable::from_path(&update).unwrap();
    let guard = Arc::new(
        Guard::builder()
            .merge_restrictions(table.clone())
            .build()
            .unwrap(),
    );
    guard.mark_compromised(KEY_ID, "test").unwrap();
    let client = client_with(&server, guard);
    compromised(client.call(&describe_regions()).await.unwrap_err());
    compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(hits(&server).await, 0);
    // Replacing instead of merging drops the built-in rows.
    let replaced = Arc::new(Guard::builder().restriction_table(table).build().unwrap());
    replaced.mark_compromised(KEY_ID, "test").unwrap();
    let leak = compromised(
        client_with(&server, replaced)
            .call(&run_instances())
            .await
            .unwrap_err(),
    );
    assert_eq!(leak.detection, Detection::ServerAnswer);
    // A bad file names the entry at fault.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[entry]]\nproduct = \"Ecs\"\nversion = \"2014-05-26\"\nactions = []\n",
    )
    .unwrap();
    let err = RestrictionTable::from_path(&bad).unwrap_err().to_string();
    assert!(err.contains("entry 1") && err.contains("bad.toml"), "{err}");
}

#[tokio::test]
async fn the_probe_has_three_outcomes() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("GetAccountAlias"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    let guard = Arc::new(Guard::new());
    let client = client_with(&server, guard.clone());
    assert!(
        matches!(client.probe().await, ProbeOutcome::Compromised { request_id: Some(id) } if id == "LEAK-REQ-1")
    );
    assert!(guard.is_compromised(KEY_ID));
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(param(req, "Version").as_deref(), Some("2015-05-01"));

    let fine = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"RequestId": "R", "AccountAlias": "example"})),
        )
        .mount(&fine)
        .await;
    assert!(matches!(
        client_builder(&fine).build().unwrap().probe().await,
        ProbeOutcome::NotFlagged { .. }
    ));

    let denied = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            serde_json::json!({"Code": "NoPermission", "Message": "no", "RequestId": "R-np"}),
        ))
        .mount(&denied)
        .await;
    match client_builder(&denied).build().unwrap().probe().await {
        ProbeOutcome::NotFlagged { reason } => assert!(reason.contains("NoPermission")),
        other => panic!("{other:?}"),
    }

    let broken = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"Code": "InvalidAccessKeyId.NotFound", "Message": "no", "RequestId": "R"})))
        .mount(&broken)
        .await;
    match client_builder(&broken).build().unwrap().probe().await {
        ProbeOutcome::Unknown { reason } => assert!(reason.contains("InvalidAccessKeyId.NotFound")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn display_and_debug_hold_guidance_and_no_secret() {
    let server = leak_server().await;
    let client = client_builder(&server)
        .credentials(credentials().with_security_token("STS-TOKEN-VALUE"))
        .build()
        .unwrap();
    let err = client.call(&run_instances()).await.unwrap_err();
    let shown = format!("{err}\n{err:?}\n{err:#?}");
    for secret in [SECRET, "STS-TOKEN-VALUE", KEY_ID] {
        assert!(!shown.contains(secret), "{secret} appears in:\n{shown}");
    }
    let display = err.to_string();
    assert!(display.contains("LTAI****wxyz"));
    assert!(display.contains("cannot rotate or delete itself"));
    assert!(display.contains("Create a replacement AccessKey"));
    assert!(display.contains(
        "https://www.alibabacloud.com/help/en/ram/user-guide/solution-to-accesskey-leakage"
    ));
    assert!(display.contains("LEAK-REQ-1"));
    let refused = client.call(&run_instances()).await.unwrap_err().to_string();
    assert!(
        refused.contains("refused Ecs 2014-05-26 RunInstances before sending"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_plain_http_leak_answer_marks_the_key_but_does_not_teach_the_table() {
    let server = MockServer::start().await;
    Mock::given(ActionIs("ModifyInstanceAttribute"))
        .respond_with(ResponseTemplate::new(403).set_body_json(leak_json()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let guard = Arc::new(Guard::builder().state_dir(dir.path()).build().unwrap());
    let client = client_with(&server, guard.clone());
    let request = RpcRequest::new("Ecs", "2014-05-26", "ModifyInstanceAttribute");
    let leak = compromised(client.call(&request).await.unwrap_err());
    assert_eq!(leak.detection, Detection::ServerAnswer);
    assert!(!leak.on_restriction_table);
    assert!(
        guard.is_compromised(KEY_ID),
        "the caller's endpoint marks the key"
    );
    assert!(
        guard.learned_entries().is_empty(),
        "but teaches no table entry"
    );
    assert!(
        !guard
            .table()
            .is_blocked("Ecs", "2014-05-26", "ModifyInstanceAttribute")
    );
    let again = Guard::builder().state_dir(dir.path()).build().unwrap();
    assert!(again.is_compromised(KEY_ID));
    assert!(again.learned_entries().is_empty());
}

fn stamp(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A state file that cleared `KEY_ID` at `cleared_at`, after sighting it an hour before now.
fn state_with_clearing(cleared_at: time::OffsetDateTime) -> String {
    let now = time::OffsetDateTime::now_utc();
    let fp = aliyun_guard::guard::KeyFingerprint::of(KEY_ID).to_hex();
    serde_json::json!({
        "format": "aliyun-guard-state",
        "version": 1,
        "keys": [{
            "fingerprint": fp,
            "masked_key_id": "LTAI****wxyz",
            "first_seen": stamp(now - time::Duration::hours(1)),
            "last_seen": stamp(now - time::Duration::hours(1)),
        }],
        "cleared": [{
            "fingerprint": fp,
            "masked_key_id": "LTAI****wxyz",
            "cleared_at": stamp(cleared_at),
        }],
    })
    .to_string()
}

#[tokio::test]
async fn a_leak_answer_after_a_future_dated_clearing_is_remembered() {
    for ahead in [time::Duration::hours(1), time::Duration::days(365)] {
        let server = leak_server().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("state.json"),
            state_with_clearing(time::OffsetDateTime::now_utc() + ahead),
        )
        .unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = fired.clone();
        let guard = Arc::new(
            Guard::builder()
                .state_dir(dir.path())
                .on_compromised(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
                .build()
                .unwrap(),
        );
        assert!(!guard.is_compromised(KEY_ID), "{ahead}: cleared");
        let client = client_with(&server, guard.clone());
        let leak = compromised(client.call(&run_instances()).await.unwrap_err());
        assert_eq!(leak.detection, Detection::ServerAnswer);
        assert!(
            guard.is_compromised(KEY_ID),
            "{ahead}: the sighting is kept"
        );
        assert_eq!(fired.load(Ordering::SeqCst), 1, "{ahead}: the hook fired");
        let refused = compromised(client.call(&run_instances()).await.unwrap_err());
        assert_eq!(refused.detection, Detection::RefusedLocally);
        // Persisted (the call persists within its budget; persist again to be sure) and
        // reloaded by another guard: still compromised.
        guard.persist().unwrap();
        let again = Guard::builder().state_dir(dir.path()).build().unwrap();
        assert!(
            again.is_compromised(KEY_ID),
            "{ahead}: the sighting survives a reload"
        );
        let text = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        let year = (time::OffsetDateTime::now_utc() + ahead).year();
        if year != time::OffsetDateTime::now_utc().year() {
            assert!(
                !text.contains(&format!("\"{year}-")),
                "{ahead}: future stamps are clamped"
            );
        }
    }
}

#[tokio::test]
async fn learned_entries_expire_and_record_their_evidence() {
    let now = time::OffsetDateTime::now_utc();
    let entry = |action: &str, age: time::Duration| {
        serde_json::json!({
            "product": "Ecs", "version": "2014-05-26", "action": action,
            "learned_at": stamp(now - age), "request_id": "R-LEARN", "host": "ecs.aliyuncs.com",
        })
    };
    let file = serde_json::json!({
        "format": "aliyun-guard-state",
        "version": 1,
        "learned": [
            entry("StaleAction", time::Duration::days(40)),
            entry("FreshAction", time::Duration::days(1)),
        ],
    })
    .to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), &file).unwrap();
    let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
    let table = guard.table();
    assert!(table.is_blocked("Ecs", "2014-05-26", "FreshAction"));
    assert!(
        !table.is_blocked("Ecs", "2014-05-26", "StaleAction"),
        "older than the default 30 days"
    );
    let learned = guard.learned_entries();
    assert_eq!(learned.len(), 1);
    assert_eq!(learned[0].request_id.as_deref(), Some("R-LEARN"));
    assert_eq!(learned[0].host.as_deref(), Some("ecs.aliyuncs.com"));
    // A longer TTL keeps both; a shorter one neither.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), &file).unwrap();
    let long = Guard::builder()
        .state_dir(dir.path())
        .learned_ttl(Duration::from_secs(100 * 24 * 3600))
        .build()
        .unwrap();
    assert_eq!(long.learned_entries().len(), 2);
    let short = Guard::builder()
        .state_dir(dir.path())
        .learned_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert!(short.learned_entries().is_empty());
    // Expired entries are dropped from the file when it is next written.
    short.mark_compromised(KEY_ID, "write").unwrap();
    let text = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(!text.contains("StaleAction") && !text.contains("FreshAction"));
}
