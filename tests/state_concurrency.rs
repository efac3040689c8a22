//! Eight processes record compromised keys in one state directory at once: nothing is lost.
//!
//! The test binary is its own child: run with `AG_STATE_CHILD_DIR` set, the same test acts as a
//! writer process instead of the coordinator.

use std::process::{Command, Stdio};

use aliyun_guard::__internal::check_state_file;
use aliyun_guard::guard::Guard;

const CHILD_DIR: &str = "AG_STATE_CHILD_DIR";
const CHILD_INDEX: &str = "AG_STATE_CHILD_INDEX";
const PROCESSES: usize = 8;
const KEYS: usize = 10;
const ROUNDS: usize = 4;
const TEST_NAME: &str = "eight_processes_recording_at_once_lose_nothing";

fn key_id(process: usize, key: usize) -> String {
    format!("LTAI5tProc{process:02}Key{key:02}xxxxxxx")
}

fn child(dir: &str, index: usize) {
    // The lock is waited for a bounded time: generous here, so that eight processes on a loaded
    // machine take turns and lose nothing.
    let guard = Guard::builder()
        .state_dir(dir)
        .lock_timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("child guard");
    let doomed = format!("LTAI5tProc{index:02}Cleared0000xx");
    guard.mark_compromised(&doomed, "to be cleared").unwrap();
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            guard
                .mark_compromised(
                    &key_id(index, key),
                    format!("process {index} round {round}"),
                )
                .expect("persist");
        }
    }
    guard.clear(&doomed).unwrap();
}

#[test]
fn eight_processes_recording_at_once_lose_nothing() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let index = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
        child(&dir, index);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", TEST_NAME, "--test-threads=1", "--quiet"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_INDEX, i.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a writer process")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer process failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bytes = std::fs::read(dir.path().join("state.json")).unwrap();
    let summary = check_state_file(&bytes).expect("the file parses");
    assert_eq!(summary.compromised_keys, PROCESSES * KEYS);
    assert_eq!(summary.cleared_keys, PROCESSES);
    let guard = Guard::builder().state_dir(dir.path()).build().unwrap();
    for process in 0..PROCESSES {
        for key in 0..KEYS {
            let id = key_id(process, key);
            let record = guard.record(&id).unwrap_or_else(|| panic!("{id} was lost"));
            assert_eq!(record.evidence.len(), ROUNDS, "{id}: every sighting kept");
        }
        assert!(!guard.is_compromised(&format!("LTAI5tProc{process:02}Cleared0000xx")));
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "state.json" && name != "state.lock")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary or set-aside files left: {leftovers:?}"
    );
}
