//! The `aliyun-guard` binary, run as a process against a loopback fake of STS, RAM, IMS,
//! ActionTrail and Security Center whose every request has its signature checked by the
//! independent verifier of `tests/common`. The child's environment is cleared: HOME and the
//! Alibaba variables point into a temporary directory, so no test touches the real home.
#![cfg(feature = "cli")]

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_aliyun-guard");
const ACCOUNT: &str = "1968132000123456";

const ADMIN_ID: &str = "LTAI5tAdminKey000000admn";
const ADMIN_SECRET: &str = "AdminSecretValue-0123456789abc";
const LEAKED_ID: &str = "LTAI5tLeakedKey00000leak";
const LEAKED_SECRET: &str = "LeakedSecretValue-0123456789ab";
const OTHER_ID: &str = "LTAI5tOtherKey000000othr";
const OTHER_SECRET: &str = "OtherSecretValue-0123456789abc";
const ROOT_ID: &str = "LTAI5tRootKey0000000root";
const ROOT_SECRET: &str = "RootSecretValue-0123456789abcd";

const WRITES: &[&str] = &[
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "DeleteAccessKeyInRecycleBin",
    "SetAccessKeyPolicy",
];

#[derive(Clone, Debug)]
struct FakeKey {
    id: String,
    secret: String,
    status: String,
    created: String,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fail {
    /// Answers 500 after doing the work (a lost answer).
    AfterEffect,
    /// Answers 500 without doing anything.
    Before,
}

#[derive(Default)]
struct World {
    /// RAM user name to (user id, keys).
    users: BTreeMap<String, (String, Vec<FakeKey>)>,
    root_keys: Vec<FakeKey>,
    /// Keys answering the leak error on RAM and IMS.
    leaked: HashSet<String>,
    /// Every verified call: (action, caller key id, parameters).
    calls: Vec<(String, String, BTreeMap<String, String>)>,
    bad_signatures: usize,
    fail: BTreeMap<String, Fail>,
    created: usize,
    policies: Vec<(String, String)>,
    purged: Vec<(String, String)>,
}

impl World {
    fn secret_of(&self, id: &str) -> Option<String> {
        self.users
            .values()
            .flat_map(|(_, keys)| keys.iter())
            .chain(self.root_keys.iter())
            .find(|k| k.id == id)
            .map(|k| k.secret.clone())
    }

    fn owner_of(&self, id: &str) -> Option<(String, String)> {
        self.users.iter().find_map(|(name, (uid, keys))| {
            keys.iter()
                .any(|k| k.id == id)
                .then(|| (name.clone(), uid.clone()))
        })
    }
}

#[derive(Clone)]
struct Fake(Arc<Mutex<World>>);

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"RequestId": "ERR-1", "Code": code, "Message": message}))
}

fn page_of(items: &[Value], token: Option<&str>, next: &str) -> (Vec<Value>, Option<String>) {
    // Two pages: the first item, then the rest.
    match token {
        None if items.len() > 1 => (items[..1].to_vec(), Some(next.to_string())),
        _ if token == Some(next) => (items[1..].to_vec(), None),
        _ => (items.to_vec(), None),
    }
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params: BTreeMap<String, String> = common::params_of(request).into_iter().collect();
        let p = |n: &str| params.get(n).cloned().unwrap_or_default();
        let mut w = self.0.lock().unwrap();
        let caller = p("AccessKeyId");
        let secret = match w.secret_of(&caller) {
            Some(s) => s,
            None => return error(404, "InvalidAccessKeyId.NotFound", "unknown key"),
        };
        if common::expected_signature(request, &secret).as_deref() != Some(p("Signature").as_str())
            || p("SignatureMethod") != "HMAC-SHA1"
            || p("Format") != "JSON"
        {
            w.bad_signatures += 1;
            return error(400, "SignatureDoesNotMatch", "bad signature");
        }
        let inactive = w
            .users
            .values()
            .flat_map(|(_, keys)| keys.iter())
            .any(|k| k.id == caller && k.status == "Inactive");
        if inactive {
            return error(400, "InvalidAccessKeyId.Inactive", "the key is disabled");
        }
        let action = p("Action");
        w.calls
            .push((action.clone(), caller.clone(), params.clone()));
        let version = p("Version");
        let product_blocked = version == "2015-05-01" || version == "2019-08-15";
        if product_blocked && w.leaked.contains(&caller) {
            return ResponseTemplate::new(403).set_body_json(common::leak_json());
        }
        let fail = w.fail.get(&action).copied();
        if fail == Some(Fail::Before) {
            return error(500, "InternalError", "injected");
        }
        let answer = match action.as_str() {
            "GetCallerIdentity" => {
                if w.root_keys.iter().any(|k| k.id == caller) {
                    ok(json!({"IdentityType": "Account", "AccountId": ACCOUNT,
                        "Arn": format!("acs:ram::{ACCOUNT}:root"), "RequestId": "R"}))
                } else {
                    let (name, uid) = w.owner_of(&caller).unwrap();
                    // The old spelling, to check the case-insensitive comparison.
                    ok(
                        json!({"IdentityType": "RamUser", "AccountId": ACCOUNT, "UserId": uid,
                        "PrincipalId": uid, "Arn": format!("acs:ram::{ACCOUNT}:user/{name}"),
                        "RequestId": "R"}),
                    )
                }
            }
            "GetAccountAlias" => ok(json!({"AccountAlias": "acme", "RequestId": "R"})),
            "ListAccessKeys" => match w.users.get(&p("UserName")) {
                Some((_, keys)) => ok(json!({"RequestId": "R", "AccessKeys": {"AccessKey":
                    keys.iter().map(|k| json!({"AccessKeyId": k.id, "Status": k.status,
                        "CreateDate": k.created})).collect::<Vec<_>>()}})),
                None => error(404, "EntityNotExist.User", "no such user"),
            },
            "GetUser" => match w.users.get(&p("UserName")) {
                Some((uid, _)) => ok(json!({"RequestId": "R",
                    "User": {"UserId": uid, "UserName": p("UserName")}})),
                None => error(404, "EntityNotExist.User", "no such user"),
            },
            "CreateAccessKey" => {
                let user = p("UserName");
                let n = w.created + 1;
                let Some((_, keys)) = w.users.get_mut(&user) else {
                    return error(404, "EntityNotExist.User", "no such user");
                };
                if keys.len() >= 2 {
                    return error(400, "LimitExceeded.AccessKey", "two keys already");
                }
                let key = FakeKey {
                    id: format!("LTAI5tNewKey{n:08}newk"),
                    secret: format!("NewSecret{n:04}-abcdefghijklmnopq"),
                    status: "Active".into(),
                    created: now_rfc3339(),
                };
                keys.push(key.clone());
                w.created = n;
                ok(
                    json!({"RequestId": "R", "AccessKey": {"AccessKeyId": key.id,
                    "AccessKeySecret": key.secret, "Status": "Active",
                    "CreateDate": "2026-11-24T00:00:00Z"}}),
                )
            }
            "UpdateAccessKey" => {
                let id = p("UserAccessKeyId");
                let status = p("Status");
                match w
                    .users
                    .get_mut(&p("UserName"))
                    .and_then(|(_, keys)| keys.iter_mut().find(|k| k.id == id))
                {
                    Some(k) => {
                        k.status = status;
                        ok(json!({"RequestId": "R"}))
                    }
                    None => error(404, "EntityNotExist.User.AccessKey", "no such key"),
                }
            }
            "DeleteAccessKey" => {
                let id = p("UserAccessKeyId");
                match w.users.get_mut(&p("UserName")) {
                    Some((_, keys)) if keys.iter().any(|k| k.id == id) => {
                        keys.retain(|k| k.id != id);
                        ok(json!({"RequestId": "R"}))
                    }
                    _ => error(404, "EntityNotExist.User.AccessKey", "no such key"),
                }
            }
            "DeleteAccessKeyInRecycleBin" => {
                w.purged.push((p("UserId"), p("UserAccessKeyId")));
                ok(json!({"RequestId": "R"}))
            }
            "SetAccessKeyPolicy" => {
                w.policies
                    .push((p("UserAccessKeyId"), p("AccessKeyPolicy")));
                ok(json!({"RequestId": "R-POLICY"}))
            }
            "DescribeAccesskeyLeakList" => {
                let all: Vec<Value> = (1..=3)
                    .map(|i| {
                        json!({"Id": i, "AccesskeyId": if i == 1 { LEAKED_ID } else { OTHER_ID },
                        "AliUserName": "alice", "UserType": "ram", "Type": "AccessKey",
                        "Asset": "Cloud Platform",
                        "Url": format!("https://github.com/acme/app{i}/blob/main/config.py"),
                        "GmtModified": 1_614_155_361_489_i64 + i,
                        "Status": if i == 1 { "pending" } else { "dealed" },
                        "DealType": "manual"})
                    })
                    .collect();
                let page: usize = p("CurrentPage").parse().unwrap_or(1);
                let size: usize = p("PageSize").parse().unwrap_or(20);
                let items: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .cloned()
                    .collect();
                ok(
                    json!({"RequestId": "R", "CurrentPage": page, "PageSize": size,
                    "TotalCount": all.len(), "AkLeakCount": 1, "AccessKeyLeakList": items}),
                )
            }
            "GetAccessKeyLastUsedInfo" => {
                let key = p("AccessKey");
                if w.root_keys.iter().any(|k| k.id == key) {
                    ok(json!({"RequestId": "R", "AccessKeyId": key, "AccountType": "root-account"}))
                } else {
                    let user = w.owner_of(&key).map(|o| o.0).unwrap_or_default();
                    ok(
                        json!({"RequestId": "R", "AccessKeyId": key, "AccountId": ACCOUNT,
                        "AccountType": "ram-user", "UserName": user, "ServiceName": "Ecs",
                        "Source": "OpenAPI", "UsedTimestamp": 1_763_942_400_000_i64}),
                    )
                }
            }
            "GetAccessKeyLastUsedProducts" => ok(json!({"RequestId": "R", "Products": [
                {"ServiceName": "Ecs", "Source": "OpenAPI", "UsedTimestamp": 1_763_942_400_000_i64},
                {"ServiceName": "Oss", "Source": "SDK", "UsedTimestamp": 1_763_900_000_000_i64}]})),
            "GetAccessKeyLastUsedIps" => {
                let items = [
                    json!({"Ip": "203.0.113.7", "Source": "OpenAPI", "UsedTimestamp": 1}),
                    json!({"Ip": "198.51.100.9", "Source": "OpenAPI", "UsedTimestamp": 2}),
                ];
                let token = params.get("NextToken").map(String::as_str);
                let (items, next) = page_of(&items, token, "ips-2");
                ok(json!({"RequestId": "R", "Ips": items, "NextToken": next}))
            }
            "GetAccessKeyLastUsedResources" => ok(json!({"RequestId": "R", "Resources": [
                {"ResourceName": format!("i-{}", p("ServiceName")), "ResourceType": "ACS::ECS::Instance",
                 "Source": "OpenAPI", "UsedTimestamp": 3}]})),
            "LookupEvents" => {
                if p("LookupAttribute.1.Key") != "EventAccessKeyId"
                    || p("LookupAttribute.1.Value").is_empty()
                {
                    return error(400, "InvalidParameter", "no filter");
                }
                let items = [
                    json!({"eventName": "RunInstances", "eventRW": "Write", "eventTime": "2026-11-23T10:00:00Z",
                        "eventSource": "ecs.aliyuncs.com", "sourceIpAddress": "203.0.113.7"}),
                    json!({"eventName": "DescribeInstances", "eventRW": "Read", "eventTime": "2026-11-23T10:01:00Z",
                        "eventSource": "ecs.aliyuncs.com", "sourceIpAddress": "203.0.113.7"}),
                    json!({"eventName": "CreateUser", "eventTime": "2026-11-23T10:02:00Z",
                        "eventSource": "ram.aliyuncs.com", "sourceIpAddress": "198.51.100.9"}),
                ];
                let token = params.get("NextToken").map(String::as_str);
                let (items, next) = match token {
                    None => (items[..2].to_vec(), Some("ev-2".to_string())),
                    Some(_) => (items[2..].to_vec(), None),
                };
                let mut body = json!({"RequestId": "R", "Events": items});
                if let Some(next) = next {
                    body["NextToken"] = json!(next);
                }
                ok(body)
            }
            other => error(
                400,
                "InvalidAction.NotFound",
                &format!("unknown action {other}"),
            ),
        };
        if fail == Some(Fail::AfterEffect) {
            return error(500, "InternalError", "the answer was lost");
        }
        answer
    }
}

struct Env {
    _dir: tempfile::TempDir,
    home: PathBuf,
    state: PathBuf,
    server: MockServer,
    world: Arc<Mutex<World>>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

fn key(id: &str, secret: &str) -> FakeKey {
    FakeKey {
        id: id.into(),
        secret: secret.into(),
        status: "Active".into(),
        created: "2026-01-01T00:00:00Z".into(),
    }
}

impl Env {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let state = dir.path().join("state");
        std::fs::create_dir_all(home.join(".aliyun")).unwrap();
        let config = json!({"current": "leaked", "profiles": [
            {"name": "admin", "mode": "AK", "access_key_id": ADMIN_ID, "access_key_secret": ADMIN_SECRET},
            {"name": "leaked", "mode": "AK", "access_key_id": LEAKED_ID, "access_key_secret": LEAKED_SECRET},
            {"name": "root", "mode": "AK", "access_key_id": ROOT_ID, "access_key_secret": ROOT_SECRET},
            {"name": "keep-me", "mode": "AK", "access_key_id": "LTAI5tKeepMe0000000keep",
             "access_key_secret": "KeepSecret", "region_id": "cn-beijing"}]});
        std::fs::write(
            home.join(".aliyun/config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut world = World::default();
        world.users.insert(
            "admin".into(),
            ("200000000000001".into(), vec![key(ADMIN_ID, ADMIN_SECRET)]),
        );
        world.users.insert(
            "alice".into(),
            (
                "200000000000002".into(),
                vec![key(LEAKED_ID, LEAKED_SECRET)],
            ),
        );
        world.root_keys.push(key(ROOT_ID, ROOT_SECRET));
        let world = Arc::new(Mutex::new(world));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(Fake(world.clone()))
            .mount(&server)
            .await;
        Self {
            _dir: dir,
            home,
            state,
            server,
            world,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.home.join(".aliyun/config.json")
    }

    async fn run(&self, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(BIN);
        command
            .env_clear()
            .env("HOME", &self.home)
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .env("ALIBABA_CLOUD_CONFIG_FILE", self.config_path())
            .args(args)
            .args(["--endpoint", &self.server.uri(), "--state-dir"])
            .arg(&self.state)
            .kill_on_drop(true);
        let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
            .await
            .expect("the binary did not finish in 120 s")
            .unwrap();
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // No secret ever reaches the output.
        for secret in [ADMIN_SECRET, LEAKED_SECRET, ROOT_SECRET, OTHER_SECRET] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "secret printed"
            );
        }
        run
    }

    fn calls(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        self.world
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.0 == action)
            .map(|c| c.2.clone())
            .collect()
    }

    fn writes(&self) -> usize {
        self.world
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| WRITES.contains(&c.0.as_str()))
            .count()
    }

    fn alice_keys(&self) -> Vec<FakeKey> {
        self.world.lock().unwrap().users["alice"].1.clone()
    }

    fn assert_signed(&self) {
        assert_eq!(
            self.world.lock().unwrap().bad_signatures,
            0,
            "a request was badly signed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_text_and_json() {
    let env = Env::new().await;
    let run = env.run(&["whoami", "--profile", "leaked"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("RAMUser") && run.stdout.contains("alice"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("LTAI****leak") && !run.stdout.contains(LEAKED_ID));
    // The default chain (config.json's current profile), JSON parsed back.
    let json = env.run(&["whoami", "--output", "json"]).await.json();
    assert_eq!(json["identity_type"], "RAMUser");
    assert_eq!(json["user_name"], "alice");
    assert_eq!(json["account_id"], ACCOUNT);
    let root = env
        .run(&["whoami", "--profile", "root", "--output", "json"])
        .await
        .json();
    assert_eq!(root["identity_type"], "Account");
    assert_eq!(env.calls("GetCallerIdentity").len(), 3);
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_compromised_exits_3_and_clean_exits_0() {
    let env = Env::new().await;
    env.world.lock().unwrap().leaked.insert(LEAKED_ID.into());
    let run = env.run(&["probe", "--profile", "leaked"]).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("UNDER LEAK PROTECTION"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("aliyun-guard rotate"), "{}", run.stdout);
    let json = env
        .run(&["probe", "--profile", "leaked", "--output", "json"])
        .await;
    assert_eq!(json.code, 3);
    assert_eq!(json.json()["outcome"], "compromised");
    // The guard's state remembers the key.
    let status = env.run(&["status", "--output", "json"]).await.json();
    assert_eq!(
        status["compromised_keys"][0]["access_key_id"],
        "LTAI****leak"
    );
    let clean = env
        .run(&["probe", "--profile", "admin", "--output", "json"])
        .await;
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert_eq!(clean.json()["outcome"], "not_flagged");
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_mark_and_clear_round_trip() {
    let env = Env::new().await;
    let empty = env.run(&["status", "--output", "json"]).await.json();
    assert_eq!(empty["compromised_keys"].as_array().unwrap().len(), 0);
    let mark = env
        .run(&[
            "status",
            "mark",
            OTHER_ID,
            "--note",
            "Security Center notice",
        ])
        .await;
    assert_eq!(mark.code, 0, "{}", mark.stderr);
    let status = env.run(&["status", "--output", "json"]).await.json();
    assert_eq!(
        status["compromised_keys"][0]["access_key_id"],
        "LTAI****othr"
    );
    assert_eq!(
        status["compromised_keys"][0]["evidence"][0]["note"],
        "Security Center notice"
    );
    let text = env.run(&["status"]).await;
    assert!(
        text.stdout.contains("marked: Security Center notice"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains(OTHER_ID));
    let clear = env
        .run(&["status", "clear", OTHER_ID, "--output", "json"])
        .await
        .json();
    assert_eq!(clear["was_compromised"], true);
    let status = env.run(&["status", "--output", "json"]).await.json();
    assert_eq!(status["compromised_keys"].as_array().unwrap().len(), 0);
    assert_eq!(status["cleared_keys"][0]["access_key_id"], "LTAI****othr");
    // No state directory: a usage error.
    let mut command = tokio::process::Command::new(BIN);
    let out = command
        .env_clear()
        .env("HOME", &env.home)
        .arg("status")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_show_check_and_diff() {
    let env = Env::new().await;
    let show = env.run(&["table", "show", "--output", "json"]).await.json();
    let rows = show["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["product"] == "Ram" && r["actions"] == "*")
    );
    let text = env.run(&["table", "show"]).await;
    assert!(text.stdout.contains("RunInstances"), "{}", text.stdout);
    let update = env.home.join("update.toml");
    std::fs::write(&update, "updated = \"2026-03-01\"\n[[entry]]\nproduct = \"Ecs\"\nversion = \"2014-05-26\"\nactions = [\"RunInstances\", \"ModifyInstanceAttribute\"]\n[[entry]]\nproduct = \"Vpc\"\nversion = \"2016-04-28\"\nactions = [\"CreateVpc\"]\n").unwrap();
    let check = env
        .run(&[
            "table",
            "check",
            update.to_str().unwrap(),
            "--output",
            "json",
        ])
        .await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert_eq!(check.json()["rows"], 2);
    let diff = env
        .run(&[
            "table",
            "diff",
            update.to_str().unwrap(),
            "--output",
            "json",
        ])
        .await
        .json();
    let added = diff["added"].as_array().unwrap();
    assert!(
        added
            .iter()
            .any(|a| a["product"] == "Ecs" && a["actions"] == json!(["ModifyInstanceAttribute"])),
        "{diff}"
    );
    assert!(added.iter().any(|a| a["product"] == "Vpc"), "{diff}");
    assert!(!diff["not_in_update"].as_array().unwrap().is_empty());
    let bad = env.home.join("bad.toml");
    std::fs::write(&bad, "[[entry]]\nproduct = 3\n").unwrap();
    let run = env.run(&["table", "check", bad.to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaks_reads_two_pages() {
    let env = Env::new().await;
    let run = env
        .run(&[
            "leaks",
            "--profile",
            "admin",
            "--page-size",
            "2",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(
        run.code, 3,
        "a pending leak is a compromised key: {}",
        run.stderr
    );
    let json = run.json();
    let leaks = json["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 3);
    assert_eq!(leaks[0]["access_key_id"], "LTAI****leak");
    assert_eq!(
        leaks[0]["url"],
        "https://github.com/acme/app1/blob/main/config.py"
    );
    assert_eq!(json["pending"], 1);
    let pages: Vec<String> = env
        .calls("DescribeAccesskeyLeakList")
        .iter()
        .map(|c| c["CurrentPage"].clone())
        .collect();
    assert_eq!(pages, ["1", "2"]);
    assert!(
        env.calls("DescribeAccesskeyLeakList")
            .iter()
            .all(|c| c["Version"] == "2018-12-03")
    );
    let text = env.run(&["leaks", "--profile", "admin"]).await;
    assert!(
        text.stdout.contains("where: https://github.com/acme/app3"),
        "{}",
        text.stdout
    );
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reads_paged_answers() {
    let env = Env::new().await;
    let run = env
        .run(&[
            "audit",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--days",
            "30",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["last_used"]["user_name"], "alice");
    assert_eq!(json["products"].as_array().unwrap().len(), 2);
    // Two pages of IPs for each of the two products.
    assert_eq!(json["ips"].as_array().unwrap().len(), 4);
    assert_eq!(json["resources"].as_array().unwrap().len(), 2);
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(json["writes"], 2, "RunInstances and CreateUser are writes");
    assert_eq!(events[1]["write"], false);
    let lookups = env.calls("LookupEvents");
    assert_eq!(lookups.len(), 2);
    assert_eq!(lookups[0]["LookupAttribute.1.Value"], LEAKED_ID);
    assert_eq!(lookups[1]["NextToken"], "ev-2");
    assert!(
        lookups
            .iter()
            .all(|c| c["AccessKeyId"] == ADMIN_ID && c["Version"] == "2020-07-06")
    );
    let text = env
        .run(&["audit", LEAKED_ID, "--admin-profile", "admin"])
        .await;
    assert!(
        text.stdout.contains("WRITE") && text.stdout.contains("CreateUser"),
        "{}",
        text.stdout
    );
    assert_eq!(env.writes(), 0);
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contain_and_undo() {
    let env = Env::new().await;
    let run = env
        .run(&[
            "contain",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--allow-ip",
            "203.0.113.10",
            "198.51.100.0/24",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["allowed_ips"],
        json!(["203.0.113.10", "198.51.100.0/24"])
    );
    let undo = env
        .run(&["contain", LEAKED_ID, "--admin-profile", "admin", "--undo"])
        .await;
    assert_eq!(undo.code, 0, "{}", undo.stderr);
    let policies = env.world.lock().unwrap().policies.clone();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0].0, LEAKED_ID);
    let set: Value = serde_json::from_str(&policies[0].1).unwrap();
    assert_eq!(set["Statements"][0]["Type"], "ClassicWhiteList");
    assert_eq!(
        set["Statements"][0]["IPList"],
        json!(["203.0.113.10", "198.51.100.0/24"])
    );
    let unset: Value = serde_json::from_str(&policies[1].1).unwrap();
    assert_eq!(unset["Statements"], json!([]));
    for bad in [
        &["--allow-ip", "0.0.0.0/0"][..],
        &["--allow-ip", "10.0.0.1/33"],
        &["--allow-ip", "evil.example"],
        &[],
    ] {
        let mut args = vec!["contain", LEAKED_ID, "--admin-profile", "admin"];
        args.extend_from_slice(bad);
        assert_eq!(env.run(&args).await.code, 2, "{bad:?}");
    }
    assert_eq!(env.calls("SetAccessKeyPolicy").len(), 2);
    env.assert_signed();
}

fn read_config(env: &Env) -> Value {
    serde_json::from_slice(&std::fs::read(env.config_path()).unwrap()).unwrap()
}

fn profile<'a>(config: &'a Value, name: &str) -> Option<&'a Value> {
    config["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const EXECUTE: &[&str] = &[
    "rotate",
    LEAKED_ID,
    "--admin-profile",
    "admin",
    "--profile",
    "leaked",
    "--execute",
    "--write-profile",
    "app-new",
    "--deactivate-old",
    "--delete-old",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_rotation() {
    let env = Env::new().await;
    let mut args = EXECUTE.to_vec();
    args.extend(["--output", "json"]);
    let run = env.run(&args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["user_name"], "alice");
    assert_eq!(
        report["owner_found_by"],
        "GetCallerIdentity with the leaked key"
    );
    assert_eq!(report["deactivated_old"], true);
    assert_eq!(report["deleted_old"], true);
    assert_eq!(report["purged_old"], true);
    // One new key, the old one gone.
    let keys = env.alice_keys();
    assert_eq!(keys.len(), 1);
    let new = keys[0].clone();
    assert_ne!(new.id, LEAKED_ID);
    assert!(!run.stdout.contains(&new.secret) && !run.stderr.contains(&new.secret));
    assert_eq!(env.calls("CreateAccessKey").len(), 1);
    assert_eq!(env.calls("UpdateAccessKey")[0]["Status"], "Inactive");
    assert_eq!(
        env.world.lock().unwrap().purged,
        vec![("200000000000002".to_string(), LEAKED_ID.to_string())]
    );
    // Every RAM write by the administrator, never by the leaked key.
    for action in WRITES {
        assert!(
            env.calls(action)
                .iter()
                .all(|c| c["AccessKeyId"] == ADMIN_ID),
            "{action}"
        );
    }
    // The new pair is in config.json, the other profiles kept, 0600.
    let config = read_config(&env);
    let written = profile(&config, "app-new").unwrap();
    assert_eq!(written["access_key_id"], new.id.as_str());
    assert_eq!(written["access_key_secret"], new.secret.as_str());
    assert_eq!(written["mode"], "AK");
    assert_eq!(
        profile(&config, "keep-me").unwrap()["region_id"],
        "cn-beijing"
    );
    assert_eq!(config["current"], "leaked");
    #[cfg(unix)]
    assert_eq!(mode(&env.config_path()), 0o600);
    // The new profile works: whoami with it.
    let who = env
        .run(&["whoami", "--profile", "app-new", "--output", "json"])
        .await
        .json();
    assert_eq!(who["user_name"], "alice");
    // The guard's state records the old key as rotated.
    let status = env.run(&["status", "--output", "json"]).await.json();
    let record = &status["compromised_keys"][0];
    assert_eq!(record["access_key_id"], "LTAI****leak");
    assert!(
        record["evidence"][0]["note"]
            .as_str()
            .unwrap()
            .contains("rotated"),
        "{status}"
    );
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_changes_nothing() {
    let env = Env::new().await;
    let run = env
        .run(&[
            "rotate",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--user",
            "alice",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    assert_eq!(plan["mode"], "plan");
    assert_eq!(plan["user_name"], "alice");
    assert_eq!(plan["keys"][0]["leaked"], true);
    assert!(plan["steps"].as_array().unwrap().len() >= 4);
    // Without --user and without the key's credentials: ActionTrail names the owner.
    let text = env
        .run(&[
            "rotate",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--profile",
            "admin",
        ])
        .await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("ActionTrail") && text.stdout.contains("alice"),
        "{}",
        text.stdout
    );
    assert_eq!(env.writes(), 0);
    assert!(
        !env.state.exists()
            || std::fs::read_dir(&env.state).unwrap().all(|e| {
                !e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("rotation-")
            })
    );
    assert_eq!(env.alice_keys().len(), 1);
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_never_makes_a_third_key() {
    let env = Env::new().await;
    env.world
        .lock()
        .unwrap()
        .fail
        .insert("CreateAccessKey".into(), Fail::AfterEffect);
    let first = env.run(EXECUTE).await;
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stderr.contains("not retried"), "{}", first.stderr);
    assert_eq!(
        env.calls("CreateAccessKey").len(),
        1,
        "CreateAccessKey is never retried"
    );
    env.world.lock().unwrap().fail.clear();
    // The rerun finds the key the lost answer created, and creates none.
    let rerun = env.run(EXECUTE).await;
    assert_eq!(rerun.code, 1, "{}\n{}", rerun.stdout, rerun.stderr);
    assert!(rerun.stderr.contains("no third key"), "{}", rerun.stderr);
    assert_eq!(
        env.calls("CreateAccessKey").len(),
        1,
        "exactly one key created in total"
    );
    assert_eq!(env.world.lock().unwrap().created, 1);
    let keys = env.alice_keys();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .any(|k| k.id == LEAKED_ID && k.status == "Active"),
        "the old key is untouched"
    );
    assert!(env.calls("UpdateAccessKey").is_empty() && env.calls("DeleteAccessKey").is_empty());
    // The operator lets it replace the orphan: deleted, then one new key.
    let mut args = EXECUTE.to_vec();
    args.push("--replace-lost-key");
    let fixed = env.run(&args).await;
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    let keys = env.alice_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, "LTAI5tNewKey00000002newk");
    let config = read_config(&env);
    assert_eq!(
        profile(&config, "app-new").unwrap()["access_key_id"],
        keys[0].id.as_str()
    );
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_did_nothing_is_sent_again_on_the_rerun() {
    let env = Env::new().await;
    env.world
        .lock()
        .unwrap()
        .fail
        .insert("CreateAccessKey".into(), Fail::Before);
    assert_eq!(env.run(EXECUTE).await.code, 1);
    env.world.lock().unwrap().fail.clear();
    let rerun = env.run(EXECUTE).await;
    assert_eq!(rerun.code, 0, "{}\n{}", rerun.stdout, rerun.stderr);
    assert_eq!(env.world.lock().unwrap().created, 1);
    assert_eq!(env.alice_keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_another_administrator_made_later_is_never_adopted() {
    let env = Env::new().await;
    env.world
        .lock()
        .unwrap()
        .fail
        .insert("CreateAccessKey".into(), Fail::Before);
    assert_eq!(env.run(EXECUTE).await.code, 1);
    env.world.lock().unwrap().fail.clear();
    // Meanwhile another administrator gives alice a second key (created outside the
    // interrupted call's window): the rerun must not take it for the lost answer's key.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::minutes(30))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut foreign = key("LTAI5tForeignKey0000frgn", "ForeignSecret-abcdefghij");
    foreign.created = later;
    env.world
        .lock()
        .unwrap()
        .users
        .get_mut("alice")
        .unwrap()
        .1
        .push(foreign);
    let mut args = EXECUTE.to_vec();
    args.push("--replace-lost-key");
    let rerun = env.run(&args).await;
    assert!(
        !rerun.stdout.contains("adopted") && !rerun.stderr.contains("adopted"),
        "{}\n{}",
        rerun.stdout,
        rerun.stderr
    );
    assert!(
        env.alice_keys()
            .iter()
            .any(|k| k.id == "LTAI5tForeignKey0000frgn"),
        "the other administrator's key is never deleted"
    );
    assert!(
        env.calls("DeleteAccessKey")
            .iter()
            .all(|params| !format!("{params:?}").contains("LTAI5tForeignKey0000frgn"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_journal_is_refused_without_a_panic() {
    let env = Env::new().await;
    // Interrupt a rotation so that its journal exists, then corrupt the journal's fingerprints.
    env.world
        .lock()
        .unwrap()
        .fail
        .insert("CreateAccessKey".into(), Fail::Before);
    assert_eq!(env.run(EXECUTE).await.code, 1);
    env.world.lock().unwrap().fail.clear();
    let journal = std::fs::read_dir(&env.state)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().contains("rotation-") && p.extension().is_some_and(|e| e == "json")
        })
        .expect("the interrupted rotation left a journal");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    doc["old_key"] = serde_json::json!("é");
    std::fs::write(&journal, serde_json::to_vec(&doc).unwrap()).unwrap();
    let rerun = env.run(EXECUTE).await;
    assert_ne!(rerun.code, 101, "panicked: {}", rerun.stderr);
    assert!(
        rerun.stderr.contains("not a rotation journal"),
        "{}",
        rerun.stderr
    );
    assert_eq!(env.world.lock().unwrap().created, 0, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_steps_then_resume() {
    // Failing before the old key is disabled, after it (the old key no longer answers
    // GetCallerIdentity on the rerun), and at the recycle-bin purge.
    for action in [
        "UpdateAccessKey",
        "DeleteAccessKey",
        "DeleteAccessKeyInRecycleBin",
    ] {
        failure_between_steps_then_resume(action).await;
    }
}

async fn failure_between_steps_then_resume(action: &str) {
    let env = Env::new().await;
    env.world
        .lock()
        .unwrap()
        .fail
        .insert(action.into(), Fail::Before);
    let first = env.run(EXECUTE).await;
    assert_eq!(
        first.code, 1,
        "{action}: {}\n{}",
        first.stdout, first.stderr
    );
    let new_id = env
        .alice_keys()
        .iter()
        .find(|k| k.id != LEAKED_ID)
        .unwrap()
        .id
        .clone();
    assert_eq!(
        profile(&read_config(&env), "app-new").unwrap()["access_key_id"],
        new_id.as_str()
    );
    env.world.lock().unwrap().fail.clear();
    let mut args = EXECUTE.to_vec();
    args.extend(["--output", "json"]);
    let rerun = env.run(&args).await;
    assert_eq!(
        rerun.code, 0,
        "{action}: {}\n{}",
        rerun.stdout, rerun.stderr
    );
    assert_eq!(rerun.json()["deleted_old"], true);
    assert_eq!(rerun.json()["purged_old"], true);
    assert_eq!(env.calls("CreateAccessKey").len(), 1, "{action}");
    assert_eq!(env.world.lock().unwrap().purged.len(), 1, "{action}");
    let keys = env.alice_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, new_id);
    env.assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_key_limit() {
    let env = Env::new().await;
    env.world
        .lock()
        .unwrap()
        .users
        .get_mut("alice")
        .unwrap()
        .1
        .push(key(OTHER_ID, OTHER_SECRET));
    let plan = env
        .run(&[
            "rotate",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--user",
            "alice",
        ])
        .await;
    assert_eq!(plan.code, 0);
    assert!(plan.stdout.contains("Two-key limit"), "{}", plan.stdout);
    let run = env.run(EXECUTE).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("two AccessKeys"), "{}", run.stderr);
    let mut other = EXECUTE.to_vec();
    other.extend(["--make-room-with", OTHER_ID]);
    let refused = env.run(&other).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refusing to delete"),
        "{}",
        refused.stderr
    );
    assert_eq!(env.writes(), 0, "nothing changed");
    assert_eq!(env.alice_keys().len(), 2);
    other.push("--allow-deleting-other");
    let done = env.run(&other).await;
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    let keys = env.alice_keys();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].id.starts_with("LTAI5tNewKey"));
    assert_eq!(env.calls("CreateAccessKey").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_key_is_explained_not_rotated() {
    let env = Env::new().await;
    let run = env
        .run(&[
            "rotate",
            ROOT_ID,
            "--admin-profile",
            "admin",
            "--profile",
            "root",
            "--execute",
            "--write-profile",
            "x",
        ])
        .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("account owner"), "{}", run.stderr);
    // Without its credentials, ActionTrail says it is the account's.
    let run = env
        .run(&[
            "rotate",
            ROOT_ID,
            "--admin-profile",
            "admin",
            "--profile",
            "admin",
        ])
        .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("root"), "{}", run.stderr);
    assert_eq!(env.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_env_creates_a_private_file_and_never_overwrites() {
    let env = Env::new().await;
    let file = env.home.join("new.env");
    std::fs::write(&file, "existing").unwrap();
    let args = [
        "rotate",
        LEAKED_ID,
        "--admin-profile",
        "admin",
        "--user",
        "alice",
        "--execute",
        "--write-env",
        file.to_str().unwrap(),
    ];
    let run = env.run(&args).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(env.writes(), 0);
    std::fs::remove_file(&file).unwrap();
    let run = env.run(&args).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let content = std::fs::read_to_string(&file).unwrap();
    let new = env
        .alice_keys()
        .into_iter()
        .find(|k| k.id != LEAKED_ID)
        .unwrap();
    assert!(content.contains(&format!("ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", new.secret)));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    assert!(!run.stdout.contains(&new.secret));
    // Without --deactivate-old the old key stays active.
    assert!(
        env.alice_keys()
            .iter()
            .any(|k| k.id == LEAKED_ID && k.status == "Active")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let env = Env::new().await;
    for args in [
        &["audit", LEAKED_ID][..],
        &["whoami", "--output", "yaml"],
        &[
            "contain",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--undo",
            "--allow-ip",
            "10.0.0.1",
        ],
        &["audit", "bad id!", "--admin-profile", "admin"],
        &[
            "rotate",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--user",
            "alice",
            "--execute",
        ],
        &[
            "audit",
            LEAKED_ID,
            "--admin-profile",
            "admin",
            "--days",
            "400",
        ],
        &["frobnicate"],
        &["whoami", "--profile", "missing-profile"],
    ] {
        let run = env.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    assert_eq!(env.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "whoami", "probe", "status", "table", "leaks", "audit", "contain", "rotate",
    ] {
        let out = tokio::process::Command::new(BIN)
            .env_clear()
            .args([sub, "--help"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example:") && text.contains(&format!("aliyun-guard {sub}")),
            "{sub}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_printed_only_when_asked() {
    let env = Env::new().await;
    let args = [
        "rotate",
        LEAKED_ID,
        "--admin-profile",
        "admin",
        "--user",
        "alice",
        "--execute",
        "--show-secret",
        "--output",
        "json",
    ];
    let run = env.run(&args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let new = env
        .alice_keys()
        .into_iter()
        .find(|k| k.id != LEAKED_ID)
        .unwrap();
    let json = run.json();
    assert_eq!(json["new_access_key_secret"], new.secret.as_str());
    assert_eq!(json["new_access_key_id_full"], new.id.as_str());
    // The journal in the state directory holds neither the secret nor a full key id.
    for entry in std::fs::read_dir(&env.state).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains(&new.secret) && !text.contains(&new.id) && !text.contains(LEAKED_ID),
            "{}",
            path.display()
        );
    }
}
