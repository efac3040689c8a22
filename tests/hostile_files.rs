//! Corrupt, truncated, empty, huge and hostile state files and restriction tables: the client
//! starts, warns, and keeps working. One test in this binary, so that its scoped tracing subscriber
//! sees every warning (tracing caches callsite interest across threads).

mod common;

use std::sync::Arc;

use aliyun_guard::guard::{Guard, RestrictionTable};
use aliyun_guard::{Client, RpcRequest};
use common::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn valid_state() -> String {
    let dir = tempfile::tempdir().unwrap();
    let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
    guard
        .mark_compromised("LTAI5tSomeoneElse0000aaaa", "seed")
        .unwrap();
    std::fs::read_to_string(dir.path().join("state.json")).unwrap()
}

/// Runs `f` on a thread (logging into `capture`); panics if it does not finish in a (generous)
/// while: a hang guard.
#[cfg(unix)]
fn within<T: Send + 'static>(
    capture: &Capture,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let capture = capture.clone();
    std::thread::spawn(move || {
        let subscriber = capture.subscriber(tracing::Level::WARN);
        let _ = tx.send(tracing::subscriber::with_default(subscriber, f));
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{what}: hung"))
}

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(unix)]
fn is_fifo(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_fifo()
}

fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn hostile_files_never_stop_the_client() {
    let capture = Capture::default();
    let subscriber = capture.subscriber(tracing::Level::WARN);
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path("/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(ok_json("R")))
            .mount(&server)
            .await;
        server
    });

    let valid = valid_state();
    let state_cases: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt", b"{ this is not json".to_vec()),
        ("truncated", valid.as_bytes()[..valid.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("huge", vec![b' '; 17 * 1024 * 1024]),
        ("deeply nested", deep(100_000).into_bytes()),
        (
            "wrong format",
            br#"{"format":"something-else","version":9}"#.to_vec(),
        ),
        ("binary", (0..=255u8).cycle().take(4096).collect()),
    ];
    for (label, bytes) in state_cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), &bytes).unwrap();
        let guard = Arc::new(
            Guard::builder()
                .state_dir(dir.path())
                .build()
                .unwrap_or_else(|e| panic!("{label}: the guard did not start: {e}")),
        );
        let warnings = capture.take();
        assert!(
            warnings.contains("set it aside"),
            "{label}: no warning:\n{warnings}"
        );
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("state.json.corrupt-")
            })
            .count();
        assert_eq!(
            aside, 1,
            "{label}: the bad file is kept aside for inspection"
        );
        let client = Client::builder()
            .credentials(credentials())
            .endpoint(server.uri())
            .guard(guard.clone())
            .build()
            .unwrap();
        let answer = runtime
            .block_on(client.call(&RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")))
            .unwrap_or_else(|e| panic!("{label}: the client does not work: {e}"));
        assert_eq!(answer["RequestId"], "R");
        guard.mark_compromised(KEY_ID, "after recovery").unwrap();
        let again = Guard::builder().state_dir(dir.path()).build().unwrap();
        assert!(
            again.is_compromised(KEY_ID),
            "{label}: a fresh state file is written"
        );
    }

    // Entries that do not parse are skipped, the rest kept.
    let dir = tempfile::tempdir().unwrap();
    let mixed = valid.replacen(
        "\"keys\": [",
        "\"keys\": [ {\"fingerprint\": 42}, \"junk\",",
        1,
    );
    assert_ne!(mixed, valid);
    std::fs::write(dir.path().join("state.json"), mixed).unwrap();
    let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
    assert!(guard.is_compromised("LTAI5tSomeoneElse0000aaaa"));
    assert!(capture.take().contains("skipped invalid entries"));

    let valid_table = RestrictionTable::builtin().to_toml();
    let table_cases: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt", b"[[entry]\nproduct = ".to_vec()),
        (
            "truncated",
            valid_table.as_bytes()[..valid_table.len() / 3].to_vec(),
        ),
        ("huge", vec![b'#'; 5 * 1024 * 1024]),
        (
            "deeply nested",
            format!("a = {}", deep(100_000)).into_bytes(),
        ),
        (
            "wrong types",
            b"[[entry]]\nproduct = 1\nversion = []\nactions = \"x\"\n".to_vec(),
        ),
        ("binary", (0..=255u8).cycle().take(4096).collect()),
        (
            "hostile json",
            br#"{"entry":[{"product":"Ram","version":"2015-05-01","actions":[]}]}"#.to_vec(),
        ),
    ];
    for (label, bytes) in table_cases {
        let dir = tempfile::tempdir().unwrap();
        let ext = if label == "hostile json" {
            "json"
        } else {
            "toml"
        };
        let file = dir.path().join(format!("update.{ext}"));
        std::fs::write(&file, &bytes).unwrap();
        assert!(
            RestrictionTable::from_path(&file).is_err(),
            "{label}: accepted"
        );
        let guard = Guard::builder()
            .merge_restrictions_from(&file)
            .build()
            .unwrap();
        let warnings = capture.take();
        assert!(
            warnings.contains("ignoring a restriction table"),
            "{label}: no warning:\n{warnings}"
        );
        assert!(
            guard
                .table()
                .is_blocked("Ecs", "2014-05-26", "RunInstances"),
            "{label}: built-in table lost"
        );
        assert_eq!(guard.table().len(), RestrictionTable::builtin().len());
    }
    #[cfg(unix)]
    special_files(&capture, &valid);

    // An empty table file is a valid, empty update.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let guard = Guard::builder()
        .merge_restrictions_from(&empty)
        .build()
        .unwrap();
    assert_eq!(guard.table().len(), RestrictionTable::builtin().len());
}

/// FIFOs, devices and symlinks: a clear error or a warning and the memory fallback, never a hang
/// (each case runs on a thread with a generous hang guard).
#[cfg(unix)]
fn special_files(capture: &Capture, valid: &str) {
    let dir = tempfile::tempdir().unwrap();
    let fifo_state = dir.path().join("state.json");
    mkfifo(&fifo_state);
    let state_dir = dir.path().to_path_buf();
    let err = within(capture, "a FIFO state.json", move || {
        Guard::builder().state_dir(&state_dir).build().unwrap_err()
    });
    assert!(
        err.to_string().contains("FIFO") && err.to_string().contains("state.json"),
        "{err}"
    );
    assert!(is_fifo(&fifo_state), "the FIFO is left in place");

    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("state.lock"));
    let state_dir = dir.path().to_path_buf();
    let guard = within(capture, "a FIFO state.lock", move || {
        let guard = Guard::builder().state_dir(&state_dir).build().unwrap();
        assert!(guard.mark_compromised(KEY_ID, "fifo lock").is_err());
        guard
    });
    assert!(guard.is_compromised(KEY_ID), "kept in memory");
    let health = guard.store_health();
    assert!(!health.available && health.unsaved_changes, "{health:?}");
    assert!(health.last_error.unwrap().contains("FIFO"));
    assert!(capture.take().contains("state store is unavailable"));

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("planted-target");
    std::os::unix::fs::symlink(&target, dir.path().join("state.lock")).unwrap();
    let state_dir = dir.path().to_path_buf();
    let guard = within(capture, "a symlink state.lock", move || {
        let guard = Guard::builder().state_dir(&state_dir).build().unwrap();
        let _ = guard.mark_compromised(KEY_ID, "symlink lock");
        guard
    });
    assert!(!target.exists(), "the symlink's target is not created");
    assert!(!guard.store_health().available);
    assert!(guard.is_compromised(KEY_ID));
    assert!(capture.take().contains("state store is unavailable"));

    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("victim.json");
    std::fs::write(&target, valid.as_bytes()).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("state.json")).unwrap();
    let state_dir = dir.path().to_path_buf();
    let err = within(capture, "a symlink state.json", move || {
        Guard::builder().state_dir(&state_dir).build().unwrap_err()
    });
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), valid);

    let dir = tempfile::tempdir().unwrap();
    let fifo_table = dir.path().join("update.toml");
    mkfifo(&fifo_table);
    for (label, file) in [
        ("/dev/zero", std::path::PathBuf::from("/dev/zero")),
        ("a FIFO table", fifo_table),
    ] {
        let probe = file.clone();
        let err = within(capture, label, move || {
            RestrictionTable::from_path(&probe).unwrap_err()
        });
        assert!(
            err.to_string().contains("not a regular file"),
            "{label}: {err}"
        );
        let guard = within(capture, label, move || {
            Guard::builder()
                .merge_restrictions_from(&file)
                .build()
                .unwrap()
        });
        assert_eq!(guard.table().len(), RestrictionTable::builtin().len());
        assert!(
            capture.take().contains("ignoring a restriction table"),
            "{label}: no warning"
        );
    }
}
