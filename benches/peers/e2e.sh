#!/usr/bin/env bash
# End to end on this machine: records/s from `distlog loadgen` (the real
# client pipeline, 2 logging threads) through a release `distlogd` to its
# store, over tcp loopback and over ipc, with the broker's CPU and RSS read
# from /proc; then the raw ZeroMQ ceiling (one 128-byte message per send)
# from the zmq_ceiling bench, as the reference batching must beat.
#
#   benches/peers/e2e.sh
#   E2E_RECORDS=5000000 E2E_THREADS=2 E2E_FIELDS=3 E2E_BLOCK=1 benches/peers/e2e.sh
#   E2E_BIN=/tmp/old/target/release benches/peers/e2e.sh   # another build
#   E2E_ACK=1 E2E_IPC=0 E2E_CEILING=0 benches/peers/e2e.sh   # tcp with and without
#       # acknowledged delivery, alternated E2E_PAIRS times (default 3)
#   E2E_INTERLEAVE=1 E2E_IPC=0 benches/peers/e2e.sh   # tcp runs alternated with
#       # raw ZeroMQ runs (tcp, 1 frame, one run each), E2E_PAIRS times: each
#       # e2e run has a raw rate measured right before and right after it
#
# Every run also reads CPU per thread (utime + stime from
# /proc/PID/task/*/stat): loadgen's threads (polled every 50 ms while it
# runs, since its logging threads exit before it does; the last value per
# thread counts) and the broker's (before and after), as µs per stored
# record by thread name, so the summary says which thread paid for what.
#
# records/s here = records stored / (loadgen start .. the broker's store
# processor has written the last of them), polled from the broker's
# Prometheus endpoint every 10 ms. E2E_BLOCK=1 (default) runs loadgen with
# --block (the client waits instead of dropping), so every record is
# stored; E2E_BLOCK=0 uses the client's default drop-and-count and the
# summary says how many were dropped. E2E_ACK=1 adds `tcp-ack` runs: the
# broker also binds an acknowledging endpoint (--ack-listen) and loadgen
# sends there with --ack (every batch acknowledged once stored, kept for
# resending until then), alternated with plain tcp runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${E2E_RECORDS:-5000000}
threads=${E2E_THREADS:-2}
fields=${E2E_FIELDS:-3}
block=${E2E_BLOCK:-1}
ack=${E2E_ACK:-0}
pairs=${E2E_PAIRS:-3}
ipc=${E2E_IPC:-1}
ceiling=${E2E_CEILING:-1}
interleave=${E2E_INTERLEAVE:-0}
stamp=$(date +%Y%m%d-%H%M%S)
out=target/peers/e2e-$stamp
mkdir -p "$out"
results=$PWD/$out/results.jsonl
: > "$results"

if [ -n "${E2E_BIN:-}" ]; then
    bin=$E2E_BIN # another build's distlogd + distlog, for an A/B
else
    echo "building release distlogd and distlog..." >&2
    cargo build --release -p distlogd >&2
    bin=$PWD/target/release
fi
tmp=$(mktemp -d)
broker=
cleanup() {
    # The broker first, and waited for: removing its data directory while
    # it still writes made it fail to create segments ("No such file or
    # directory") and left the rm with "Directory not empty".
    if [ -n "$broker" ]; then
        kill "$broker" 2>/dev/null || true
        wait "$broker" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "tid name ticks" per thread of a process (the name is the comm field,
# spaces replaced by '_'; fields after it counted from the closing paren).
# A thread (or the process) may exit between the glob and the read: cat
# then fails, which under `set -e -o pipefail` ended the whole script
# with no result and no message (loadgen is polled until it exits), so
# what could be read is what counts.
task_ticks() {
    { cat /proc/"$1"/task/*/stat 2>/dev/null || true; } | awk '{
        o = index($0, "("); c = 0
        for (i = length($0); i > 0; i--) if (substr($0, i, 1) == ")") { c = i; break }
        name = substr($0, o + 1, c - o - 1); gsub(/ /, "_", name)
        n = split(substr($0, c + 2), f, " ")
        print $1, name, f[12] + f[13] }'
}
# JSON object {name: µs per record} from "tid name ticks" lines on stdin
# (the largest value seen per tid), given hz and the record count.
# Threads sharing a name (loadgen's logging threads and ZeroMQ's I/O
# thread all inherit "distlog") are told apart by their order of creation:
# the first keeps the name, later ones get ".2", ".3", ...
per_thread_json() {
    sort -s -n -k1,1 | awk -v hz="$1" -v n="$2" '
        !($1 in t) { ord[++m] = $1; t[$1] = $3 }
        { if ($3 > t[$1]) t[$1] = $3; name[$1] = $2 }
        END { for (j = 1; j <= m; j++) { i = ord[j]; k = ++seen[name[i]]
                  s[k == 1 ? name[i] : name[i] "." k] += t[i] }
              printf "{"; sep = ""
              for (k in s) { printf "%s\"%s\":%.4f", sep, k, s[k] / hz / n * 1e6; sep = "," }
              print "}" }'
}
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# Empty when a poll fails (the broker busy, a refused connection): the
# callers poll again; under `set -o pipefail` a failed curl here used to
# end the whole script mid-run.
written() {
    { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" || true; } |
        awk -F' ' '/^distlogd_processor_written_records_total\{processor="store"\}/ {print $2}'
}

run() {
    local transport=$1 endpoint=$2
    local data=$tmp/data-$transport-$RANDOM
    local mport=$((20000 + RANDOM % 20000))
    local brokerflags=() clientflags=() listen=$endpoint
    if [ "$transport" = tcp-ack ]; then
        listen="tcp://127.0.0.1:$((20000 + RANDOM % 20000))"
        brokerflags=(--ack-listen "$endpoint")
        clientflags=(--ack)
    fi
    "$bin/distlogd" --listen "$listen" "${brokerflags[@]}" --data-dir "$data" \
        --metrics "127.0.0.1:$mport" 2> "$out/distlogd-$transport.err" &
    broker=$!
    for _ in $(seq 100); do
        [ -n "$(written "$mport")" ] && break
        sleep 0.05
    done
    local rss0 cpu0 t0 t1 cpu1 n expected
    rss0=$(kb "$broker" VmRSS)
    cpu0=$(cpu_ticks "$broker")
    t0=$(date +%s.%N)
    local blockflag=()
    [ "$block" = 1 ] && blockflag=(--block)
    task_ticks "$broker" > "$tmp/broker-before"
    "$bin/distlog" loadgen --endpoint "$endpoint" --records "$records" --threads "$threads" \
        --fields "$fields" "${blockflag[@]}" "${clientflags[@]}" > "$out/loadgen-$transport.out" &
    local lg=$!
    : > "$tmp/client-ticks"
    while kill -0 "$lg" 2>/dev/null; do
        task_ticks "$lg" >> "$tmp/client-ticks"
        sleep 0.05
    done
    wait "$lg"
    local summary
    summary=$(tail -1 "$out/loadgen-$transport.out")
    expected=$(echo "$summary" | jq '.sent - .dropped')
    local deadline=$((SECONDS + 300))
    while :; do
        n=$(written "$mport")
        [ "${n:-0}" -ge "$expected" ] && break
        [ $SECONDS -ge $deadline ] && { echo "timeout: stored $n of $expected" >&2; break; }
        sleep 0.01
    done
    t1=$(date +%s.%N)
    cpu1=$(cpu_ticks "$broker")
    task_ticks "$broker" > "$tmp/broker-after"
    local hwm rss1
    hwm=$(kb "$broker" VmHWM)
    rss1=$(kb "$broker" VmRSS)
    kill -TERM "$broker"
    wait "$broker" || true
    broker=
    local stored
    stored=$("$bin/distlog" query --data-dir "$data" --count)
    local client_threads broker_threads
    client_threads=$(per_thread_json "$hz" "$stored" < "$tmp/client-ticks")
    # after minus before, per tid
    broker_threads=$(awk 'NR == FNR { b[$1] = $3; next } { print $1, $2, $3 - b[$1] }' \
        "$tmp/broker-before" "$tmp/broker-after" | per_thread_json "$hz" "$stored")
    jq -nc --arg transport "$transport" --argjson summary "$summary" \
        --argjson stored "$stored" --argjson t0 "$t0" --argjson t1 "$t1" \
        --argjson cpu "$(( cpu1 - cpu0 ))" --argjson hz "$hz" \
        --argjson rss0 "$rss0" --argjson rss1 "$rss1" --argjson hwm "$hwm" \
        --argjson client_threads "$client_threads" --argjson broker_threads "$broker_threads" \
        --argjson pair "${pair:-0}" \
        --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{
            bench: "e2e", transport: $transport, threads: $summary.threads,
            fields: $summary.fields, sent: $summary.sent, dropped: $summary.dropped,
            stored: $stored, secs: ($t1 - $t0),
            stored_per_sec: ($stored / ($t1 - $t0)),
            client_records_per_sec: $summary.records_per_sec,
            log_call_p50_ns: $summary.p50_ns, log_call_p99_ns: $summary.p99_ns,
            log_call_p999_ns: $summary.p999_ns, log_call_max_ns: $summary.max_ns,
            broker_cpu_pct: (100 * $cpu / $hz / ($t1 - $t0)),
            broker_rss_start_kib: $rss0, broker_rss_end_kib: $rss1, broker_rss_peak_kib: $hwm,
            client_us_per_record_by_thread: $client_threads,
            broker_us_per_record_by_thread: $broker_threads,
            pair: $pair, loadavg: $load }' | tee -a "$results" >&2
}

# One raw ZeroMQ run (tcp, 1 frame), tagged with the pair it belongs to.
# The bench binary built up front runs directly: no cargo (and no
# rebuild, lock wait or compile) between the runs of a pair.
raw_once() {
    ZMQ_CASES=tcp1 ZMQ_RUNS=1 "$raw_bin" --bench 2>&1 |
        grep ZMQ_RESULT | sed 's/^ZMQ_RESULT //' |
        jq -c --argjson pair "$1" --arg when "$2" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
            '. + {bench: "zmq_raw", pair: $pair, when: $when, loadavg: $load}' | tee -a "$results" >&2
}

if [ "$interleave" = 1 ]; then
    echo "building the raw ZeroMQ bench before any timing..." >&2
    raw_bin=$(cargo bench -p distlog-peers --bench zmq_ceiling --no-run --message-format=json |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "zmq_ceiling") | .executable')
    for pair in $(seq "$pairs"); do
        raw_once "$pair" before
        run tcp "tcp://127.0.0.1:$((20000 + RANDOM % 20000))"
        raw_once "$pair" after
    done
    ceiling=0
elif [ "$ack" = 1 ]; then
    for _ in $(seq "$pairs"); do
        run tcp "tcp://127.0.0.1:$((20000 + RANDOM % 20000))"
        run tcp-ack "tcp://127.0.0.1:$((20000 + RANDOM % 20000))"
    done
else
    run tcp "tcp://127.0.0.1:$((20000 + RANDOM % 20000))"
fi
[ "$ipc" = 1 ] && run ipc "ipc://$tmp/ingest.sock"

if [ "$ceiling" = 1 ]; then
    echo "raw ZeroMQ ceiling..." >&2
    PEERS_OUT=$results cargo bench -q -p distlog-peers --bench zmq_ceiling > "$out/zmq_ceiling.log" 2>&1
    grep ZMQ_RESULT "$out/zmq_ceiling.log" >&2
fi

{
    echo "### End to end: loadgen ($threads threads, $fields fields, $records records$([ "$block" = 1 ] && echo ', --block')) -> distlogd -> store"
    echo
    echo "| transport | stored / sent | stored records/s | vs raw ZeroMQ (1 msg/send, same transport) | broker CPU | broker RSS start / peak | log call p50 / p99 / p99.9 / max (ns) | load avg |"
    echo "|---|---|---|---|---|---|---|---|"
    jq -rs '
        (map(select(.bench == "zmq_ceiling" and .frames == 1)) | map({(.transport): .median_msgs_per_sec}) | add) as $z
        | .[] | select(.bench == "e2e")
        | "| \(.transport) | \(.stored) / \(.sent) | \(.stored_per_sec / 1e6 * 100 | round / 100) M/s | \(if $z[.transport] then "\(.stored_per_sec / $z[.transport] * 10 | round / 10)x of \($z[.transport] / 1e6 * 100 | round / 100) M/s" else "?" end) | \(.broker_cpu_pct | round)% | \(.broker_rss_start_kib / 1024 | round) / \(.broker_rss_peak_kib / 1024 | round) MiB | \(.log_call_p50_ns) / \(.log_call_p99_ns) / \(.log_call_p999_ns) / \(.log_call_max_ns) | \(.loadavg) |"' "$results"
    echo
    if [ "$interleave" = 1 ]; then
        echo "### Interleaved: each e2e run between two raw ZeroMQ runs (tcp, 1 msg/send, 128 B)"
        echo
        echo "| pair | stored records/s | raw before / after (M msg/s) | stored / mean raw | client µs/record by thread | broker µs/record by thread | load avg |"
        echo "|---|---|---|---|---|---|---|"
        jq -rs 'def r2: . * 100 | round / 100;
            (map(select(.bench == "zmq_raw")) | group_by(.pair) | map({(.[0].pair | tostring): map(.median_msgs_per_sec)}) | add) as $raw
            | .[] | select(.bench == "e2e")
            | ($raw[.pair | tostring]) as $r
            | "| \(.pair) | \(.stored_per_sec / 1e6 | r2) M/s | \($r | map(. / 1e6 | r2) | join(" / ")) | \(.stored_per_sec / (($r | add) / ($r | length)) * 10 | round / 10) | \(.client_us_per_record_by_thread | to_entries | map("\(.key) \(.value | r2)") | join(", ")) | \(.broker_us_per_record_by_thread | to_entries | map(select(.value >= 0.005)) | map("\(.key) \(.value | r2)") | join(", ")) | \(.loadavg) |"' "$results"
        echo
    fi
    echo "### Raw ZeroMQ ceiling: one 128-byte message per send, PUSH -> PULL"
    echo
    echo "| transport | frames | messages/s (median of 3) | min | max |"
    echo "|---|---|---|---|---|"
    jq -r 'select(.bench == "zmq_ceiling") | "| \(.transport) | \(.frames) | \(.median_msgs_per_sec / 1e6 * 100 | round / 100) M | \(.min_msgs_per_sec / 1e6 * 100 | round / 100) M | \(.max_msgs_per_sec / 1e6 * 100 | round / 100) M |"' "$results"
} > "$out/table.md"
cat "$out/table.md"
echo "results: $out" >&2
