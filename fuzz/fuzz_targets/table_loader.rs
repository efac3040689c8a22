//! The restriction-table loader rejects bad input with an error and never panics; what it accepts
//! survives a round trip through its own TOML.
#![no_main]

use aliyun_guard::guard::RestrictionTable;
use libfuzzer_sys::fuzz_target;

fn exercise(table: RestrictionTable) {
    let again = RestrictionTable::from_toml_str(&table.to_toml(), "round-trip")
        .expect("a loaded table must survive its own TOML");
    assert_eq!(table.entries(), again.entries());
    let mut merged = RestrictionTable::builtin();
    merged.merge(&table);
    for row in table.entries() {
        let action = match &row.actions {
            aliyun_guard::guard::Actions::All => "AnyAction",
            aliyun_guard::guard::Actions::Only(list) => list[0].as_str(),
        };
        assert!(merged.is_blocked(&row.product, &row.version, action));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(table) = RestrictionTable::from_toml_str(text, "fuzz.toml") {
        exercise(table);
    }
    if let Ok(table) = RestrictionTable::from_json_str(text, "fuzz.json") {
        exercise(table);
    }
});
