#!/usr/bin/env bash
# distlogd against rsyslog, side by side in one run, on one workload:
# pre-encoded 128-byte records from 2 tcp senders, a `contains "marker"`
# filter, the matching records written to a file on disk.
#
#   benches/peers/rsyslog.sh
#   RS_RECORDS=5000000 RS_ROUNDS=3 RS_MATCH_EVERY=1 benches/peers/rsyslog.sh
#   RS_BIN=/tmp/other/target/release benches/peers/rsyslog.sh   # another distlogd
#   RS_BIN_B=/tmp/new/release benches/peers/rsyslog.sh   # also a second distlogd
#       # (`distlog-b` rows), run after the first in every round: an A/B
#   RS_BIN_B=target/release RS_STORE_OPTS='direct_io: false' benches/peers/rsyslog.sh
#       # RS_STORE_OPTS / RS_STORE_OPTS_B: more settings of the store
#       # processor of the first / second distlogd (the same build, two
#       # settings: an A/B of one option)
#   RS_BIN_B=target/release RS_TOP_OPTS_B='ingest_hwm: 64' benches/peers/rsyslog.sh
#       # RS_TOP_OPTS / RS_TOP_OPTS_B: top-level config lines of the first /
#       # second distlogd (YAML, one setting a line)
#
# - rsyslog: Debian's `rsyslog` (installed with apt-get if missing; needs
#   root), `imtcp` on a free loopback port, `if $msg contains "marker"`
#   to an `omfile` action (one line per record, `%msg%`), a main queue
#   dequeuing batches of 1024 (rsyslog's documented throughput setting;
#   RS_RSYSLOG_DEFAULTS=1 keeps its defaults; RS_OMFILE_OPTS adds omfile
#   parameters, e.g. 'ioBufferSize="64k"').
# - distlogd: a release build, `message contains "marker"` routed to its
#   `store` processor, everything else to no processor.
#
# `peers-send` (benches/peers/src/bin/peers_send.rs) encodes the records
# before the clock starts (distlog batches of 512 records for distlogd,
# RFC 3164 lines for rsyslog; RS_MATCH_EVERY=N puts `marker` in one record
# of N, default every one), sends them over 2 connections and times from
# the first send until the sink holds every matching record (the store's
# written-records counter; the output file's lines), reading the
# receiver's CPU from /proc/<pid>/stat over the same span (and each of
# its threads' CPU per record, minor faults and context switches:
# `threads` in results.jsonl). The two alternate RS_ROUNDS times (default 3), each
# with RS_RECORDS records (default 5,000,000). After each run the sink is counted again (`distlog
# query --count` on the store; lines with `marker` in the file) and the
# bench fails if it holds fewer records than matched.
#
# Steady state: before the timed send, each receiver first takes a
# warm-up send of RS_WARMUP records (default RS_RECORDS; 0: none) on the
# same connections, and the clock starts once its sink holds all of them
# (`peers-send --warmup`). Both peers get the same. A receiver that has
# run a while has touched its queues' memory once; without the warm-up
# the timed span also pays that first fill (for distlogd, page faults on
# fresh 64 KiB message buffers while two fast senders fill its queues).
# The CPU, faults and time in results.jsonl are the timed span's only.
#
# RS_PERF=1 also profiles every distlogd run (`perf record -g`, 999 Hz,
# software clock) and prints each broker thread's share of the samples:
# where the CPU per record goes (ZMQbg/IO: the socket; worker-N:
# validation and rules; proc-store: the store's writes). The profiles stay
# in the output directory for `perf report -i`. They cover the warm-up
# too (RS_WARMUP=0 for a profile of the first fill alone), and with it
# peers-send's polling of the metrics page every 2 ms while the warm-up
# is sent: ~3% of the samples in the metrics-http/-accept threads, which
# the timed span does not carry (there peers-send polls only once its
# senders are done: 0.4% of the timed CPU over 121 runs).
#
# Output: target/peers/rsyslog-<stamp>/{results.jsonl,table.md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${RS_RECORDS:-5000000}
rounds=${RS_ROUNDS:-3}
every=${RS_MATCH_EVERY:-1}
warmup=${RS_WARMUP:-$records}
stamp=$(date +%Y%m%d-%H%M%S)
out=target/peers/rsyslog-$stamp
mkdir -p "$out"
results=$PWD/$out/results.jsonl
: > "$results"

if ! command -v rsyslogd > /dev/null; then
    echo "installing Debian's rsyslog..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog >&2
fi
if [ "${RS_BUILD:-1}" = 1 ]; then # RS_BUILD=0: use the binaries already built
    echo "building release distlogd, distlog and peers-send..." >&2
    cargo build --release -p distlogd -p distlog-peers --bin distlogd --bin distlog --bin peers-send >&2
fi
target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release
bin=${RS_BIN:-$target}
send=$target/peers-send

tmp=$(mktemp -d)
pid=
cleanup() {
    # The receiver first, and waited for, before its data goes.
    if [ -n "$pid" ]; then
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$1" 2> /dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}
row() { # the summary line plus what the sink holds, counted after the run
    # (less the warm-up's records)
    jq -c --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson counted "$2" \
        '. + {counted: ($counted - (.warmup_matched // 0)), loadavg: $load}' <<< "$1" | tee -a "$results" >&2
}

run_rsyslog() {
    local dir=$tmp/rsyslog-$RANDOM p
    mkdir -p "$dir/work"
    p=$(port)
    local queue='main_queue(queue.type="FixedArray" queue.size="200000" queue.dequeueBatchSize="1024")'
    [ "${RS_RSYSLOG_DEFAULTS:-0}" = 1 ] && queue=
    cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/work")
$queue
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$p")
template(name="msgline" type="string" string="%msg%\n")
if \$msg contains "marker" then {
    action(type="omfile" file="$dir/out.log" template="msgline"${RS_OMFILE_OPTS:+ $RS_OMFILE_OPTS})
}
CONF
    rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" 2> "$out/rsyslogd.err" &
    pid=$!
    wait_port "$p"
    local summary status=0
    summary=$("$send" --to rsyslog --endpoint "127.0.0.1:$p" --records "$records" \
        --warmup "$warmup" --match-every "$every" --out "$dir/out.log" --pid "$pid") || status=$?
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    local counted
    counted=$(grep -c marker "$dir/out.log" || true)
    row "$summary" "$counted"
    rm -rf "$dir"
    return $status
}

run_distlogd() {
    local bin=${1:-$bin} label=${2:-distlog} opts=${3-${RS_STORE_OPTS:-}} top=${4-${RS_TOP_OPTS:-}}
    local dir=$tmp/distlogd-$RANDOM p m
    mkdir -p "$dir"
    p=$(port)
    m=$(port)
    cat > "$dir/distlogd.yaml" <<CONF
listen: [tcp://127.0.0.1:$p]
data_dir: $dir/store
metrics: {listen: 127.0.0.1:$m, interval: 0s}
$top
processors:
  store: {type: store${opts:+, $opts}}
rules:
  - name: marker
    filter: message contains "marker"
    processors: [store]
default: []
CONF
    "$bin/distlogd" --config "$dir/distlogd.yaml" 2> "$out/distlogd.err" &
    pid=$!
    wait_port "$m"
    wait_port "$p"
    local summary status=0 perf_pid= perf_data=$out/perf-$label-$RANDOM.data
    if [ "${RS_PERF:-0}" = 1 ]; then
        perf record -q -F 999 -g -p "$pid" -o "$perf_data" 2> /dev/null &
        perf_pid=$!
        sleep 0.3 # perf attaches before the first send
    fi
    summary=$("$send" --to distlog --endpoint "127.0.0.1:$p" --records "$records" \
        --warmup "$warmup" --match-every "$every" --metrics "127.0.0.1:$m" --pid "$pid") || status=$?
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        echo "$label: samples per broker thread ($perf_data)" >&2
        perf script -i "$perf_data" -F comm 2> /dev/null | sort | uniq -c | sort -rn |
            awk '{n[NR] = $1; t[NR] = $2; s += $1} END {for (i = 1; i <= NR; i++) printf "  %-14s %5.1f%%\n", t[i], 100 * n[i] / s}' >&2
    fi
    summary=$(jq -c --arg to "$label" '.to = $to' <<< "$summary")
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    local counted
    counted=$("$bin/distlog" query --data-dir "$dir/store" --count --filter 'message contains "marker"')
    row "$summary" "$counted"
    rm -rf "$dir"
    return $status
}

failed=0
for r in $(seq "$rounds"); do
    echo "== round $r of $rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    run_distlogd || failed=1
    if [ -n "${RS_BIN_B:-}" ]; then run_distlogd "$RS_BIN_B" distlog-b "${RS_STORE_OPTS_B:-}" "${RS_TOP_OPTS_B:-}" || failed=1; fi
    run_rsyslog || failed=1
done

# Every run's sink must hold every matching record.
short=$(jq -s 'map(select(.counted < .matched)) | length' "$results")

{
    echo "### distlogd vs rsyslog: $records records of 128 bytes, 2 tcp senders, \`contains \"marker\"\` (1 in $every matches) to disk"
    echo
    echo "Each receiver took a warm-up send of $warmup records first, on the same connections (not timed)."
    echo
    echo "Run $stamp on $(nproc) cores, $(uname -srm), $(rsyslogd -v | head -1 | cut -d' ' -f1-3)."
    echo
    echo "| round | distlogd records/s | rsyslog records/s | ratio | distlogd CPU/record | rsyslog CPU/record | stored / matched (distlogd; rsyslog) | load |"
    echo "|---|---|---|---|---|---|---|---|"
    jq -rs '
        (map(select(.to == "distlog"))) as $d | (map(select(.to == "rsyslog"))) as $r
        | range(0; [$d, $r] | map(length) | min) as $i | $d[$i] as $a | $r[$i] as $b
        | "| \($i + 1) | \($a.records_per_sec / 1e6 * 1000 | round / 1000) M | \($b.records_per_sec / 1e6 * 1000 | round / 1000) M | \($a.records_per_sec / $b.records_per_sec * 100 | round / 100) | \($a.cpu_us_per_record * 1000 | round / 1000) µs | \($b.cpu_us_per_record * 1000 | round / 1000) µs | \($a.counted) / \($a.matched); \($b.counted) / \($b.matched) | \($a.loadavg) |"' "$results"
    jq -rs '
        def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        (map(select(.to == "distlog") | .records_per_sec) | median) as $d
        | (map(select(.to == "rsyslog") | .records_per_sec) | median) as $r
        | (map(select(.to == "distlog") | .cpu_us_per_record) | median) as $c
        | "| median | \($d / 1e6 * 1000 | round / 1000) M | \($r / 1e6 * 1000 | round / 1000) M | \($d / $r * 100 | round / 100) | \($c * 1000 | round / 1000) µs | | | |"' "$results"
    jq -rs '
        def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        (map(select(.to == "distlog-b"))) as $b | (map(select(.to == "rsyslog") | .records_per_sec) | median) as $r
        | if ($b | length) > 0 then
            "| median, distlogd B (RS_BIN_B) | \($b | map(.records_per_sec) | median / 1e6 * 1000 | round / 1000) M | \($r / 1e6 * 1000 | round / 1000) M | \(($b | map(.records_per_sec) | median) / $r * 100 | round / 100) | \($b | map(.cpu_us_per_record) | median * 1000 | round / 1000) µs | | | |"
          else empty end' "$results"
} > "$out/table.md"
cat "$out/table.md"
echo "results: $out" >&2
if [ "$short" != 0 ] || [ "$failed" != 0 ]; then
    echo "FAIL: $short run(s) stored fewer records than matched" >&2
    exit 1
fi
