//! Security Center's leak list as a feed (`LeakFeed`), against loopback mocks of both sites:
//! paging, both key spellings, masked ids, `StartTs`, failures that are never fatal.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliyun_guard::feed::LeakFeed;
use aliyun_guard::guard::{
    Detection, EvidenceSource, FirstSighting, Guard, KeyFingerprint, Verdict,
};
use aliyun_guard::{Client, Credentials, RpcRequest};
use common::*;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const FLEET_KEY_A: &str = "LTAI5tFleetKeyAlpha0wxyz";
const FLEET_KEY_B: &str = "LTAI5tFleetKeyBravo0abcd";

fn item(id: i64, spelling: &str, key: &str, gmt: i64) -> serde_json::Value {
    serde_json::json!({
        "Id": id, spelling: key, "AliUserName": "dev", "UserType": "ram", "Type": "AccessKey",
        "Asset": "Cloud Platform", "Url": format!("https://github.com/example/repo/blob/main/f{id}.py"),
        "GmtModified": gmt, "Status": "pending", "DealType": "pending"
    })
}

/// Answers the leak list from `items`, paged by `CurrentPage`/`PageSize`.
struct Pages(Vec<serde_json::Value>);

impl Respond for Pages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert_eq!(
            param(request, "Action").as_deref(),
            Some("DescribeAccesskeyLeakList")
        );
        assert_eq!(param(request, "Version").as_deref(), Some("2018-12-03"));
        let page: usize = param(request, "CurrentPage").unwrap().parse().unwrap();
        let size: usize = param(request, "PageSize").unwrap().parse().unwrap();
        let since: i64 = param(request, "StartTs").map_or(0, |s| s.parse().unwrap());
        let items: Vec<_> = self
            .0
            .iter()
            .filter(|i| i["GmtModified"].as_i64().unwrap() > since)
            .cloned()
            .collect();
        let list: Vec<_> = items
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "RequestId": format!("REQ-PAGE-{page}"), "CurrentPage": page, "PageSize": size,
            "TotalCount": items.len(), "AkLeakCount": items.len(), "AccessKeyLeakList": list
        }))
    }
}

async fn site(items: Vec<serde_json::Value>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(ActionIs("DescribeAccesskeyLeakList"))
        .respond_with(Pages(items))
        .mount(&server)
        .await;
    server
}

fn auditor() -> Client {
    Client::builder()
        .credentials(Credentials::new(
            "LTAI5tAuditorReadOnlyxx",
            "auditor-secret",
        ))
        .retry(aliyun_guard::RetryPolicy::new(1, Duration::from_millis(5)))
        .build()
        .unwrap()
}

fn run_instances() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances").region("cn-hangzhou")
}

#[tokio::test]
async fn listed_fleet_keys_are_marked_before_any_call_is_refused() {
    // Site 1: 130 findings on two pages (other accounts' keys), the fleet's key A on page 2
    // spelled `AccessKeyId`. Site 2: the fleet's key B masked, spelled `AccesskeyId`.
    let mut first: Vec<_> = (0..129)
        .map(|i| {
            item(
                i,
                "AccesskeyId",
                &format!("LTAI5tSomeoneElse{i:04}xx"),
                1_000 + i,
            )
        })
        .collect();
    first.push(item(500, "AccessKeyId", FLEET_KEY_A, 2_000));
    let one = site(first).await;
    let two = site(vec![item(
        900,
        "AccesskeyId",
        "LTAI5tFl************abcd",
        3_000,
    )])
    .await;
    assert_eq!("LTAI5tFl************abcd".len(), FLEET_KEY_B.len());

    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let guard = Arc::new(
        Guard::builder()
            .on_compromised_event(move |e| seen.lock().unwrap().push(e.clone()))
            .build()
            .unwrap(),
    );
    let mut feed = LeakFeed::new(auditor(), guard.clone())
        .endpoints([one.uri(), two.uri()])
        .keys([FLEET_KEY_A, FLEET_KEY_B, "LTAI5tNotListed00000xxxx"]);
    assert_eq!(feed.poll_once().await.unwrap(), 2);

    // Both pages of site 1 were read.
    let pages: Vec<String> = one
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| param(r, "CurrentPage"))
        .collect();
    assert_eq!(pages, ["1", "2"]);
    assert!(guard.is_compromised(FLEET_KEY_A));
    assert!(guard.is_compromised(FLEET_KEY_B));
    assert!(!guard.is_compromised("LTAI5tNotListed00000xxxx"));
    assert!(
        !guard.is_compromised("LTAI5tSomeoneElse0001xx"),
        "not the fleet's"
    );
    let record = guard.record(FLEET_KEY_A).unwrap();
    match &record.evidence[0].source {
        EvidenceSource::SecurityCenter {
            url,
            found_at_ms,
            leak_id,
        } => {
            assert_eq!(
                url.as_deref(),
                Some("https://github.com/example/repo/blob/main/f500.py")
            );
            assert_eq!(*found_at_ms, Some(2_000));
            assert_eq!(*leak_id, Some(500));
        }
        other => panic!("unexpected evidence {other:?}"),
    }
    {
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2, "the hook fires per key");
        for e in events.iter() {
            assert_eq!(e.key.detection, Detection::SecurityCenter);
            assert_eq!(e.first, FirstSighting::ThisProcess);
            assert!(e.key.to_string().contains("Security Center"));
        }
        assert!(
            events
                .iter()
                .any(|e| e.fingerprint == KeyFingerprint::of(FLEET_KEY_B))
        );
    }

    // A call with the key is refused before it is sent.
    assert!(matches!(
        guard.verdict(
            &KeyFingerprint::of(FLEET_KEY_A),
            "Ecs",
            "2014-05-26",
            "RunInstances"
        ),
        Verdict::Refuse { .. }
    ));
    let ecs = MockServer::start().await;
    let client = Client::builder()
        .credentials(Credentials::new(FLEET_KEY_A, "s"))
        .endpoint(ecs.uri())
        .guard(guard.clone())
        .build()
        .unwrap();
    assert!(
        client
            .call(&run_instances())
            .await
            .unwrap_err()
            .is_compromised_key()
    );
    assert!(ecs.received_requests().await.unwrap().is_empty());

    // The next poll asks only for what is new, and finds nothing new.
    assert_eq!(feed.poll_once().await.unwrap(), 0);
    let last = one.received_requests().await.unwrap();
    assert_eq!(
        param(last.last().unwrap(), "StartTs").as_deref(),
        Some("2000")
    );
    let last = two.received_requests().await.unwrap();
    assert_eq!(
        param(last.last().unwrap(), "StartTs").as_deref(),
        Some("3000")
    );
    assert_eq!(events.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn failures_are_logged_and_never_fatal() {
    let broken = MockServer::start().await;
    Mock::given(ActionIs("DescribeAccesskeyLeakList"))
        .respond_with(ResponseTemplate::new(500).set_body_string("{not json"))
        .mount(&broken)
        .await;
    let good = site(vec![item(1, "AccesskeyId", FLEET_KEY_A, 10)]).await;
    let guard = Arc::new(Guard::new());
    // One site failing: the other is read.
    let mut feed = LeakFeed::new(auditor(), guard.clone())
        .endpoints([broken.uri(), good.uri()])
        .keys([FLEET_KEY_A]);
    assert_eq!(feed.poll_once().await.unwrap(), 1);
    // Every site failing: an error, and the spawned feed goes on retrying until stopped.
    let received = || async { broken.received_requests().await.unwrap().len() };
    let mut feed = LeakFeed::new(auditor(), guard.clone()).endpoints([broken.uri()]);
    let before = received().await;
    assert!(feed.poll_once().await.is_err());
    let per_poll = received().await - before;
    assert!(per_poll > 0);
    let after = received().await;
    let handle = feed.interval(Duration::from_secs(1)).spawn();
    // Waits for two polls of the spawned feed, the second after a failed one (a liveness bound
    // for a loaded host, not a timing assertion).
    let patience = tokio::time::Instant::now() + Duration::from_secs(60);
    while received().await < after + 2 * per_poll {
        assert!(
            tokio::time::Instant::now() < patience,
            "the feed stopped polling after a failure"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop().await;
}

#[tokio::test]
async fn hostile_findings_are_skipped() {
    let server = site(vec![
        item(1, "AccesskeyId", "LTAI5t<script>", 10),
        item(2, "AccesskeyId", &"A".repeat(500), 11),
        serde_json::json!({"Id": 3, "GmtModified": 12}),
        item(4, "AccesskeyId", "LTAI5tPlainListedKey0xxx", 13),
    ])
    .await;
    let guard = Arc::new(Guard::new());
    // Without fleet keys, each unmasked listed id is marked as it is.
    let mut feed = LeakFeed::new(auditor(), guard.clone()).endpoints([server.uri()]);
    assert_eq!(feed.poll_once().await.unwrap(), 1);
    assert!(guard.is_compromised("LTAI5tPlainListedKey0xxx"));
    assert_eq!(guard.compromised_keys().len(), 1);
}

#[tokio::test]
async fn an_async_hook_runs_on_a_spawned_task_with_the_fingerprint() {
    let server = site(vec![item(7, "AccessKeyId", FLEET_KEY_B, 70)]).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let guard = Arc::new(
        Guard::builder()
            .on_compromised_async(move |event| {
                let tx = tx.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let _ = tx.send((event.fingerprint, event.key.masked_key_id.clone()));
                }
            })
            .build()
            .unwrap(),
    );
    let mut feed = LeakFeed::new(auditor(), guard.clone())
        .endpoints([server.uri()])
        .keys([FLEET_KEY_B]);
    assert_eq!(feed.poll_once().await.unwrap(), 1);
    let (fp, masked) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fp, KeyFingerprint::of(FLEET_KEY_B));
    assert!(masked.contains("****") && !masked.contains(FLEET_KEY_B));
}
