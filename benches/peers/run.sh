#!/usr/bin/env bash
# Runs every peer bench binary (one per logger, since several install the
# process-wide `log` logger) plus the raw ZeroMQ ceiling, in one go, and
# gathers one markdown table of medians, delivery rates and ratios against
# distlog from this same run.
#
#   benches/peers/run.sh                 # full run (about 5-10 minutes)
#   PEERS_PAUSE_US=2000 benches/peers/run.sh   # Quill's ~2 ms pause
#   PEERS_BATCHES=N     bursts per thread per case (default 10000)
#   PEERS_ONLY="peer_distlog peer_ticklog"     # a subset
#   PEERS_ONLY=head_to_head   # distlog, quicklog, tracing interleaved in one process
#
# Output: target/peers/<stamp>/{results.jsonl,table.md,<bench>.log}.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=$(date +%Y%m%d-%H%M%S)
out=target/peers/$stamp
mkdir -p "$out"
export PEERS_OUT="$PWD/$out/results.jsonl"
: > "$PEERS_OUT"
benches=${PEERS_ONLY:-"peer_distlog peer_tracing peer_slog peer_ftlog peer_fast_log peer_ticklog peer_quicklog peer_low_latency_log head_to_head zmq_ceiling"}
crit=(--warm-up-time "${CRIT_WARMUP:-1}" --measurement-time "${CRIT_MEASURE:-2}")

# Build once, then run the binaries themselves: going through `cargo bench`
# for each would rebuild mid-run whenever someone changes the tree.
echo "building the bench binaries (bench profile)..." >&2
cargo bench -p distlog-peers --no-run --message-format=json 2> "$out/build.log" |
    jq -r 'select(.reason == "compiler-artifact" and .target.kind == ["bench"] and .executable != null)
           | "\(.target.name) \(.executable)"' > "$out/executables"
exe() { awk -v b="$1" '$1 == b {print $2}' "$out/executables"; }

for b in $benches; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    printf '{"bench":"load","binary":"%s","loadavg":"%s"}\n' "$b" "$load" >> "$PEERS_OUT"
    echo "== $b (load $load)" >&2
    if [ "$b" = zmq_ceiling ]; then
        "$(exe "$b")" --bench > "$out/$b.log" 2>&1
    else
        "$(exe "$b")" --bench "${crit[@]}" > "$out/$b.log" 2>&1
    fi
    grep -E '^(PEERS_|ZMQ_)' "$out/$b.log" >&2 || true
done

{
    echo "Run $stamp on $(nproc) cores, $(uname -srm); pause ${PEERS_PAUSE_US:-100} µs, ${PEERS_BATCHES:-10000} bursts of 20 per thread per case."
    echo
    python3 benches/peers/table.py "$PEERS_OUT"
} > "$out/table.md"
cat "$out/table.md"
echo "results: $out" >&2
