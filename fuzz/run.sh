#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after another, and prints libFuzzer's
# final statistics. Needs cargo-fuzz (`cargo install cargo-fuzz`); works on stable through
# RUSTC_BOOTSTRAP=1. Corpora grow in fuzz/corpus/TARGET (not committed); fuzz/seeds holds seeds.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
for target in decode_response table_loader state_loader roa_path; do
  mkdir -p "corpus/$target"
  echo "== $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "/tmp/fuzz-$target.log" | grep -E '^(stat::|==[0-9]+==|Done [0-9]+ runs|INFO: seed)' || true
  grep -qE '^Done [0-9]+ runs' "/tmp/fuzz-$target.log" || { echo "$target did not finish cleanly" >&2; exit 1; }
done
