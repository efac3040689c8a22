//! The guard's state-file loader never panics: a bad file is an error (and set aside by the guard).
#![no_main]

use aliyun_guard::__internal::check_state_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = check_state_file(data) {
        assert!(summary.compromised_keys <= data.len());
    }
});
