//! The state directory under stress: a lock held by someone else, unreadable files, a directory
//! shared by a group, and files at the size caps.
#![cfg(unix)]

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aliyun_guard::__internal::{MAX_STATE_BYTES, MAX_TABLE_BYTES, check_state_file};
use aliyun_guard::guard::{Detection, Guard, KeyFingerprint, RestrictionTable};
use aliyun_guard::{Error, RpcRequest};
use common::*;

/// Generous liveness bound: only a hang trips it, never a slow machine.
const HANG_GUARD: Duration = Duration::from_secs(300);

fn run_instances() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "RunInstances").region("cn-hangzhou")
}
fn describe_regions() -> RpcRequest {
    RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
}

fn compromised(err: Error) -> aliyun_guard::CompromisedKey {
    match err {
        Error::CompromisedKey(c) => *c,
        other => panic!("expected CompromisedKey, got {other:?}"),
    }
}

/// Runs `f` on a thread; panics if it does not finish within [`HANG_GUARD`].
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("{what} hung (no answer in {HANG_GUARD:?})"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn hold_lock(dir: &Path) -> std::fs::File {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("state.lock"))
        .unwrap();
    lock.lock().unwrap();
    lock
}

fn file_holds_key(dir: &Path) -> bool {
    std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|bytes| check_state_file(&bytes).ok())
        .is_some_and(|s| s.compromised_keys == 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_neither_hangs_the_client_nor_loses_the_sighting() {
    let server = leak_server().await;
    let dir = tempfile::tempdir().unwrap();
    let lock = hold_lock(dir.path());
    let state_dir = dir.path().to_path_buf();
    // Built while another handle holds the lock: the guard starts in memory.
    let guard = tokio::time::timeout(
        HANG_GUARD,
        tokio::task::spawn_blocking(move || {
            Guard::builder()
                .state_dir(&state_dir)
                .lock_timeout(Duration::from_millis(200))
                .refresh_interval(Duration::from_millis(10))
                .build()
        }),
    )
    .await
    .expect("building the guard hung on the held lock")
    .unwrap()
    .expect("the guard builds while the lock is held");
    let guard = Arc::new(guard);
    let health = guard.store_health();
    assert!(health.persistent && !health.available, "{health:?}");
    assert!(health.last_error.unwrap().contains("state.lock"));

    let client = client_builder(&server)
        .total_timeout(Duration::from_secs(10))
        .guard(guard.clone())
        .build()
        .unwrap();
    let leak = tokio::time::timeout(HANG_GUARD, client.call(&run_instances()))
        .await
        .expect("the leak call hung on the held lock")
        .unwrap_err();
    assert_eq!(compromised(leak).detection, Detection::ServerAnswer);
    tokio::time::timeout(HANG_GUARD, client.call(&describe_regions()))
        .await
        .expect("a call hung on the held lock")
        .unwrap();
    // Refused afterwards from memory.
    let refused = compromised(client.call(&run_instances()).await.unwrap_err());
    assert_eq!(refused.detection, Detection::RefusedLocally);
    assert!(
        !file_holds_key(dir.path()),
        "the lock was held: nothing written"
    );
    assert!(guard.store_health().unsaved_changes);

    // Once the lock is released, the next calls write the pending sighting in the background.
    drop(lock);
    let waited = Instant::now();
    while !file_holds_key(dir.path()) {
        assert!(
            waited.elapsed() < HANG_GUARD,
            "the sighting never reached the file"
        );
        client.call(&describe_regions()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = Guard::builder().state_dir(dir.path()).build().unwrap();
    assert!(again.is_compromised(KEY_ID));
    let waited = Instant::now();
    while !guard.store_health().available {
        assert!(waited.elapsed() < HANG_GUARD, "the outage never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisting_after_a_leak_stays_within_the_call_budget() {
    let server = leak_server().await;
    let dir = tempfile::tempdir().unwrap();
    // A guard willing to wait long for the lock, built while the lock is free.
    let guard = Arc::new(
        Guard::builder()
            .state_dir(dir.path())
            .lock_timeout(Duration::from_secs(600))
            .refresh_interval(Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    let lock = hold_lock(dir.path());
    let client = client_builder(&server)
        .total_timeout(Duration::from_secs(2))
        .guard(guard.clone())
        .build()
        .unwrap();
    // The persist waits for the lock in the background; the call returns at its budget, long
    // before the lock wait (600 s) would end.
    let leak = tokio::time::timeout(Duration::from_secs(120), client.call(&run_instances()))
        .await
        .expect("the call outlived its budget waiting for the state lock")
        .unwrap_err();
    assert_eq!(compromised(leak).detection, Detection::ServerAnswer);
    assert!(guard.is_compromised(KEY_ID));
    // Calls due for a refresh (with a change to write) do not wait for the lock either: the
    // refresh runs in the background.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        tokio::time::timeout(Duration::from_secs(120), client.call(&describe_regions()))
            .await
            .expect("a call waited for the state lock")
            .unwrap();
    }
    // The background persist completes once the lock is free.
    drop(lock);
    let waited = Instant::now();
    while !file_holds_key(dir.path()) {
        assert!(
            waited.elapsed() < HANG_GUARD,
            "the sighting never reached the file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_unreadable_state_file_is_an_error_and_stays_in_place() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    {
        let seed = Guard::builder().state_dir(dir.path()).build().unwrap();
        seed.mark_compromised(KEY_ID, "seed").unwrap();
    }
    let original = std::fs::read(&state).unwrap();
    let cases: Vec<&str> = if is_root() {
        // Root reads a mode-000 file anyway: a directory in its place cannot be read either.
        vec!["directory"]
    } else {
        vec!["mode 000", "directory"]
    };
    for case in cases {
        match case {
            "mode 000" => {
                std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o000)).unwrap()
            }
            _ => {
                std::fs::remove_file(&state).unwrap();
                std::fs::create_dir(&state).unwrap();
            }
        }
        let err = Guard::builder()
            .state_dir(dir.path())
            .build()
            .expect_err(case);
        match &err {
            Error::State { path, .. } => assert_eq!(path, &state, "{case}: names the file"),
            other => panic!("{case}: expected Error::State, got {other:?}"),
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("corrupt")),
            "{case}: nothing set aside: {names:?}"
        );
        assert!(state.exists(), "{case}: the file stays in place");
        match case {
            "mode 000" => {
                std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
                assert_eq!(
                    std::fs::read(&state).unwrap(),
                    original,
                    "{case}: untouched"
                );
            }
            _ => {
                std::fs::remove_dir(&state).unwrap();
                std::fs::write(&state, &original).unwrap();
            }
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn gid_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().gid()
}

#[test]
fn a_private_state_dir_is_0700_with_0600_files() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("guard-state");
    let guard = Guard::builder().state_dir(&dir).build().unwrap();
    guard.mark_compromised(KEY_ID, "mode check").unwrap();
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&dir.join("state.json")), 0o600);
    assert_eq!(mode_of(&dir.join("state.lock")), 0o600);
    // A lock file left 0644 by an older version is narrowed on next use.
    {
        use std::os::unix::fs::PermissionsExt;
        let lock = dir.join("state.lock");
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
        Guard::builder().state_dir(&dir).build().unwrap();
        assert_eq!(mode_of(&lock), 0o600);
    }
}

#[test]
fn a_state_dir_shared_by_a_group_gives_the_group_read_and_write() {
    use std::os::unix::fs::PermissionsExt;
    for setgid in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mode = if setgid { 0o2770 } else { 0o770 };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        if is_root() {
            // Root may give the directory any group: one that is nobody's primary group shows
            // that new files take the directory's group, not the creator's.
            std::os::unix::fs::chown(dir.path(), None, Some(4242)).unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let group = gid_of(dir.path());
        let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
        guard.mark_compromised(KEY_ID, "group check").unwrap();
        for name in ["state.json", "state.lock"] {
            let file = dir.path().join(name);
            assert_eq!(mode_of(&file), 0o660, "setgid {setgid}: {name} mode");
            assert_eq!(gid_of(&file), group, "setgid {setgid}: {name} group");
        }
        // Another member of the group (here: the same user) reads and writes it.
        let other = Guard::builder().state_dir(dir.path()).build().unwrap();
        assert!(other.is_compromised(KEY_ID));
        other.clear(KEY_ID).unwrap();
        assert_eq!(mode_of(&dir.path().join("state.json")), 0o660);
    }
}

#[test]
fn a_symlinked_or_non_directory_state_dir_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let real = parent.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = Guard::builder().state_dir(&link).build().unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    let file = parent.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = Guard::builder().state_dir(&file).build().unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

/// A state file just under [`MAX_STATE_BYTES`]: half keys, half clearings of other keys, and
/// learned entries; returns the file and how many keys it holds compromised.
fn cap_sized_state() -> (String, usize) {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut keys = Vec::new();
    let mut cleared = Vec::new();
    let mut learned = Vec::new();
    let mut size = 0usize;
    let mut i = 0usize;
    while size < (MAX_STATE_BYTES as usize) - 4096 {
        let fp = KeyFingerprint::of(&format!("LTAI5tCapKey{i:012}")).to_hex();
        let entry = if i.is_multiple_of(3) {
            let c = serde_json::json!({
                "fingerprint": fp, "masked_key_id": "LTAI****capx", "cleared_at": now,
            })
            .to_string();
            cleared.push(c.clone());
            c
        } else if i % 3 == 1 {
            let k = serde_json::json!({
                "fingerprint": fp, "masked_key_id": "LTAI****capx",
                "first_seen": now, "last_seen": now,
                "evidence": [{"product": "Ecs", "version": "2014-05-26", "action": "RunInstances",
                              "request_id": format!("R{i}"), "at": now, "source": {"kind": "server_answer"}}],
            })
            .to_string();
            keys.push(k.clone());
            k
        } else {
            let l = serde_json::json!({
                "product": "Ecs", "version": "2014-05-26", "action": format!("Action{i}"),
                "learned_at": now,
            })
            .to_string();
            learned.push(l.clone());
            l
        };
        size += entry.len() + 1;
        i += 1;
    }
    let text = format!(
        r#"{{"format":"aliyun-guard-state","version":1,"keys":[{}],"cleared":[{}],"learned":[{}]}}"#,
        keys.join(","),
        cleared.join(","),
        learned.join(",")
    );
    assert!(text.len() as u64 <= MAX_STATE_BYTES);
    (text, keys.len())
}

#[test]
fn a_state_file_at_the_size_cap_loads() {
    let (text, keys) = cap_sized_state();
    assert!(keys > 20_000, "{keys} keys");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), &text).unwrap();
    let state_dir = dir.path().to_path_buf();
    let guard = within("loading a cap-sized state file", move || {
        Guard::builder().state_dir(&state_dir).build().unwrap()
    });
    assert_eq!(guard.compromised_keys().len(), keys);
    assert!(guard.is_compromised("LTAI5tCapKey000000000001"));
    assert!(!guard.is_compromised("LTAI5tCapKey000000000000"));
    assert!(guard.table().is_blocked("Ecs", "2014-05-26", "Action2"));
    let summary = within("checking a cap-sized state file", move || {
        check_state_file(text.as_bytes()).unwrap()
    });
    assert_eq!(summary.compromised_keys, keys);
}

/// A table file just under [`MAX_TABLE_BYTES`]: one product (with an alias) per entry.
fn cap_sized_table() -> (String, usize) {
    let mut text = String::from("updated = \"2026-11-01\"\n");
    let mut products = 0;
    while text.len() < (MAX_TABLE_BYTES as usize) - 512 {
        text.push_str(&format!(
            "[[entry]]\nproduct = \"P{products}\"\naliases = [\"Alias {products}\"]\nversion = \"2020-01-01\"\nactions = [\"Act{products}\"]\n"
        ));
        products += 1;
    }
    (text, products)
}

#[test]
fn a_table_file_at_the_size_cap_loads_and_merges() {
    let (text, products) = cap_sized_table();
    assert!(products > 20_000, "{products} products");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("update.toml");
    std::fs::write(&file, &text).unwrap();
    let guard = within("loading and merging a cap-sized table", move || {
        Guard::builder()
            .merge_restrictions_from(&file)
            .build()
            .unwrap()
    });
    let table = guard.table();
    assert_eq!(
        table.len(),
        RestrictionTable::builtin().len() + products,
        "every row merged"
    );
    let last = products - 1;
    assert!(table.is_blocked(&format!("P{last}"), "2020-01-01", &format!("act{last}")));
    assert!(table.is_blocked("alias 7", "2020-01-01", "Act7"));
    assert!(table.is_blocked("Ecs", "2014-05-26", "RunInstances"));
    assert_eq!(table.updated(), Some("2026-11-01"));
}

#[test]
fn an_in_memory_guard_reports_a_healthy_non_persistent_store() {
    let health = Guard::new().store_health();
    assert!(!health.persistent && health.available && !health.unsaved_changes);
    assert!(health.last_error.is_none());
}

#[test]
fn a_guard_built_while_the_lock_is_held_still_knows_the_files_keys() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Guard::builder().state_dir(dir.path()).build().unwrap();
    writer
        .mark_compromised("LTAI5tHeldLockKey000held", "seen in a public repository")
        .unwrap();
    assert!(file_holds_key(dir.path()) || dir.path().join("state.json").exists());
    let lock = hold_lock(dir.path());
    // Built while another process holds the lock past the bound: the file is read without the
    // lock (writes are atomic renames), so the key marked by the other process is refused.
    let guard = Guard::builder()
        .state_dir(dir.path())
        .lock_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(!guard.store_health().available);
    assert!(guard.is_compromised("LTAI5tHeldLockKey000held"));
    // A reload while the lock is still held takes in a key written meanwhile the same way.
    let bytes = std::fs::read(dir.path().join("state.json")).unwrap();
    drop(lock);
    writer
        .mark_compromised("LTAI5tSecondKey000second", "a second key")
        .unwrap();
    let lock = hold_lock(dir.path());
    assert!(guard.reload().is_err());
    assert!(guard.is_compromised("LTAI5tSecondKey000second"));
    assert_ne!(bytes, std::fs::read(dir.path().join("state.json")).unwrap());
    drop(lock);
}

#[test]
fn a_state_file_of_another_version_is_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let newer = br#"{"format": "aliyun-guard-state", "version": 2, "keys": [], "future": true}"#;
    std::fs::write(dir.path().join("state.json"), newer).unwrap();
    let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
    // Not set aside as corrupt and not overwritten, even after a change to persist.
    let _ = guard.mark_compromised("LTAI5tOtherVersion00ver2", "test");
    assert!(guard.is_compromised("LTAI5tOtherVersion00ver2"));
    assert_eq!(
        std::fs::read(dir.path().join("state.json")).unwrap(),
        newer.to_vec()
    );
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("corrupt"));
    assert!(!aside, "a file of another version was set aside");
    let health = guard.store_health();
    assert!(!health.available, "{health:?}");
    assert!(
        health.last_error.unwrap_or_default().contains("version 2"),
        "the health names the version"
    );
}
