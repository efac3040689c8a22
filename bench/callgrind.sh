#!/bin/sh
# Instructions per call of each side of `load` (issue 15), under callgrind: runs
# `load --calls N --side S` for two values of N and prints (Ir(N2) - Ir(N1)) / (N2 - N1), so that
# start-up cost (runtime, TLS roots, the guard's state directory, the first connection) cancels.
#
#   bench/callgrind.sh [N1 [N2]]       # default 200 and 1200
#
# Server: $TARGET if set (an http://127.0.0.1:PORT URL), else a nginx started with
# bench/nginx.sh (stopped afterwards), else the in-process mock, whose instructions callgrind
# then counts too (the figures then overstate both sides by the mock's cost per call).
# Caveat: valgrind does not run the CPU's SHA instructions, so SHA-1 runs in software and
# signing weighs more than natively; use it for instruction counts, `perf` for where time goes.
set -eu
cd "$(dirname "$0")/.."

N1=${1:-200}
N2=${2:-1200}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --example load >&2
LOAD="$TARGET_DIR/release/examples/load"
OUT=$(mktemp -d)
STARTED=
if [ -z "${TARGET:-}" ]; then
    if TARGET=$(bench/nginx.sh url 2>/dev/null); then
        : # one is running already: use it, leave it running
    elif [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
        TARGET=$(bench/nginx.sh start)
        STARTED=1
    else
        TARGET=
    fi
fi
cleanup() {
    rm -rf "$OUT"
    if [ -n "$STARTED" ]; then bench/nginx.sh stop; fi
}
trap cleanup EXIT INT TERM

ir() { # side calls -> total Ir of the run
    set -- "$1" "$2" ${TARGET:+--target "$TARGET"}
    side=$1 calls=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$side.$calls" \
        "$LOAD" --calls "$calls" --side "$side" "$@" >/dev/null 2>"$OUT/log.$side.$calls" || {
        cat "$OUT/log.$side.$calls" >&2
        exit 1
    }
    # Callgrind's own summary line: "summary: <Ir>" (or "totals:").
    awk '/^(summary|totals):/ { print $2; exit }' "$OUT/cg.$side.$calls"
}

echo "server: ${TARGET:-in-process mock (counted)}; N1=$N1, N2=$N2; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for side in guarded plain; do
    a=$(ir "$side" "$N1")
    b=$(ir "$side" "$N2")
    per=$(( (b - a) / (N2 - N1) ))
    echo "$side: Ir($N1) = $a, Ir($N2) = $b, per call = $per"
    eval "per_$side=$per"
done
awk -v g="$per_guarded" -v p="$per_plain" \
    'BEGIN { printf "guarded - plain = %d instructions per call, ratio %.3f\n", g - p, g / p }'
