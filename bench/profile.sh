#!/bin/sh
# A native CPU profile of the guarded client (issue 15): `perf record` of `load` (sustained
# mode, one side only) against nginx, then the top symbols of the client runtime's threads
# (`load-client`; nginx is another process and is not sampled).
#
#   bench/profile.sh [CONCURRENCY [SECONDS [SIDE]]]   # default 64 in flight, 5 s, guarded
#
# SIDE is `guarded` (the client) or `plain` (plain reqwest posting the same pre-signed body), so
# that the two profiles can be set side by side.
#
# Uses the cpu-clock software event, which works where hardware counters do not (VMs).
set -eu
cd "$(dirname "$0")/.."

CONCURRENCY=${1:-64}
SECONDS_=${2:-5}
SIDE=${3:-guarded}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --example load >&2
LOAD="$TARGET_DIR/release/examples/load"
OUT=${PERF_OUT:-$(mktemp -d)/perf.data}
STARTED=
if [ -z "${TARGET:-}" ]; then
    if ! TARGET=$(bench/nginx.sh url 2>/dev/null); then
        TARGET=$(bench/nginx.sh start)
        STARTED=1
    fi
fi
perf record -e cpu-clock -F 2999 -g -o "$OUT" -- \
    "$LOAD" --target "$TARGET" --concurrency "$CONCURRENCY" --seconds "$SECONDS_" --side "$SIDE" >&2
if [ -n "$STARTED" ]; then bench/nginx.sh stop; fi
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); data in $OUT"
# Self time per symbol, in % of the client threads' samples (kernel symbols show as [k]).
perf report -i "$OUT" --comm load-client --no-children --percentage relative --sort symbol \
    --stdio -g none 2>/dev/null | grep '%' | cut -c1-160 | sed 's/ *$//' | head -"${TOP:-40}"
