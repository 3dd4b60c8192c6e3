#!/usr/bin/env bash
# A/B of two builds of distlog end to end: alternating runs of
# `distlog loadgen` (2 threads, 3 fields, --block) into that build's own
# `distlogd` storing, with the CPU of the client's sender thread and of the
# broker read from /proc. Prints each run and the medians per build.
#
#   benches/peers/ab.sh DIR_A DIR_B            # dirs holding distlog + distlogd
#   AB_RUNS=5 AB_RECORDS=2000000 benches/peers/ab.sh ...
#
# To build an older revision beside the tree:
#   git worktree add /tmp/rev-a REV && (cd /tmp/rev-a && cargo build --release -p distlogd)
#   benches/peers/ab.sh /tmp/rev-a/target/release target/release
#
# CPU is in clock ticks (1/100 s) for all records: sender ticks / records
# is the client's encoding cost, broker ticks / records the broker's.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR_A DIR_B" >&2; exit 2; }
runs=${AB_RUNS:-5}
records=${AB_RECORDS:-2000000}
tmp=$(mktemp -d)
broker=
cleanup() {
    if [ -n "$broker" ]; then kill "$broker" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "$1"; }

one() {
    local label=$1 dir=$2 port=$((20000 + RANDOM % 20000))
    rm -rf "$tmp/data"
    "$dir/distlogd" --listen "tcp://127.0.0.1:$port" --data-dir "$tmp/data" 2> /dev/null &
    broker=$!
    sleep 0.4
    local b0 b1 sender=0 client
    b0=$(ticks "/proc/$broker/stat")
    "$dir/distlog" loadgen --endpoint "tcp://127.0.0.1:$port" --records "$records" \
        --threads 2 --fields 3 --block > "$tmp/out" 2>&1 &
    client=$!
    # The sender thread's ticks, sampled until the client exits.
    while kill -0 "$client" 2> /dev/null; do
        for t in /proc/"$client"/task/*; do
            if [ "$(cat "$t/comm" 2> /dev/null)" = distlog-sender ]; then
                s=$(ticks "$t/stat" 2> /dev/null || true)
                [ -n "$s" ] && sender=$s
            fi
        done
        sleep 0.05
    done
    wait "$client"
    # Until the broker has stored everything (its queues drain quickly).
    sleep 0.3
    b1=$(ticks "/proc/$broker/stat")
    kill "$broker"
    wait "$broker" 2> /dev/null || true
    broker=
    printf '%s %s %s %s\n' "$label" "$(tail -1 "$tmp/out" | jq .records_per_sec)" "$sender" "$((b1 - b0))"
}

for _ in $(seq "$runs"); do
    one A "$1"
    one B "$2"
done | tee "$tmp/runs"
echo "build  median records/s  sender ticks  broker ticks   (${records} records per run)"
for l in A B; do
    awk -v l="$l" '$1 == l' "$tmp/runs" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split()[1:])) for line in sys.stdin]
m = [statistics.median(c) for c in zip(*rows)]
print(f"{sys.argv[1]:5}  {m[0]:20,.0f}  {m[1]:12.0f}  {m[2]:12.0f}")' "$l"
done
