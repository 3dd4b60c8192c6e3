#!/usr/bin/env bash
# `distlog query` against grep over the same records, one row per filter
# kind (issue 17).
#
#   benches/query_vs_grep.sh                      # 3 M records, 5 runs
#   QVG_RECORDS=10000000 QVG_RUNS=3 benches/query_vs_grep.sh
#   QVG_BIN=/tmp/old/target/release benches/query_vs_grep.sh   # another build
#   QVG_DIR=/tmp/dl-qvg (default; the stores are kept there and reused)
#   QVG_ONLY=print benches/query_vs_grep.sh       # only cases whose name holds it
#
# Writes two stores once (kept in QVG_DIR, rewritten when QVG_RECORDS
# changes):
#   deferred/  release distlogd + `distlog loadgen --threads 2 --fields 3
#              --block` (as PERFORMANCE.md's "Query scan"): native records,
#              message = format "loadgen record {} of thread {}" + 2 arguments.
#   plain/     the same shape with the message as text, as a Python client
#              sends it (example `plain_store`).
# and exports each as text lines (`distlog query`, the same records) for
# grep. Then, per case, times `distlog query --count --filter F` (default
# threads: all cores) and `grep -c P` on the export alternately QVG_RUNS
# times, wall clock, and prints the medians and grep/distlog (> 1: distlog
# is faster). Each case first checks that both count the same records.
# Output goes to a file, never /dev/null (GNU grep then stops at the first
# match); "print" cases write the matching lines. Warm cache: every file is
# read once before timing. QVG_OLD=DIR adds a column: another build's
# `distlog` (e.g. the one before a change), timed in the same alternation.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${QVG_RECORDS:-3000000}
runs=${QVG_RUNS:-5}
dir=${QVG_DIR:-/tmp/dl-qvg}
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${QVG_BIN:-}" ]; then
    bin=$QVG_BIN
else
    echo "building release distlogd, distlog and the plain_store example..." >&2
    cargo build --release -p distlogd --bins --example plain_store >&2
    bin=$target/release
fi
example=${QVG_EXAMPLE:-$target/release/examples/plain_store}
mkdir -p "$dir"
broker=
cleanup() { if [ -n "$broker" ]; then kill "$broker" 2>/dev/null || true; fi; }
trap cleanup EXIT

count() { "$bin/distlog" query --data-dir "$1" --count; }

write_deferred() {
    local d=$dir/deferred port
    rm -rf "$d"
    port=$((20000 + RANDOM % 20000))
    "$bin/distlogd" --listen "tcp://127.0.0.1:$port" --data-dir "$d" 2> "$dir/distlogd.err" &
    broker=$!
    for _ in $(seq 200); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    "$bin/distlog" loadgen --endpoint "tcp://127.0.0.1:$port" --records "$records" \
        --threads 2 --fields 3 --block --buffer 4194304 > "$dir/loadgen.out"
    kill -TERM "$broker"
    wait "$broker" || true
    broker=
}

if [ "$(cat "$dir/records" 2>/dev/null)" != "$records" ]; then
    echo "writing $records deferred records (distlogd + loadgen)..." >&2
    write_deferred
    echo "writing $records plain records (example plain_store)..." >&2
    rm -rf "$dir/plain"
    "$example" "$dir/plain" "$records" >&2
    for kind in deferred plain; do
        n=$(count "$dir/$kind")
        # loadgen's own warning records, if any, come on top.
        if [ "$n" -lt "$records" ]; then
            echo "the $kind store holds $n records, expected $records" >&2
            exit 1
        fi
        "$bin/distlog" query --data-dir "$dir/$kind" > "$dir/$kind.txt"
    done
    echo "$records" > "$dir/records"
fi
for kind in deferred plain; do
    cat "$dir/$kind"/* "$dir/$kind.txt" > /dev/null
done

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# case: name, store, filter, grep pattern, mode (count|print)
cases=(
    "level == warn (no match)|deferred|level == warn| WARNING |count"
    "host == \"nosuch\"|deferred|host == \"nosuch\"| nosuch/|count"
    "target == \"nosuch\"|deferred|target == \"nosuch\"| nosuch: |count"
    "field.k0 == 4242|deferred|field.k0 == 4242| k0=4242 |count"
    "message contains \"record 4242 \"|deferred|message contains \"record 4242 \"|record 4242 |count"
    "the same, plain messages|plain|message contains \"record 4242 \"|record 4242 |count"
    "message contains \"no such text\"|deferred|message contains \"no such text\"|no such text|count"
    "message starts_with \"loadgen record 4242 \"|deferred|message starts_with \"loadgen record 4242 \"|loadgen: loadgen record 4242 |count"
    "message ends_with \"4242 of thread 1\"|deferred|message ends_with \"4242 of thread 1\"|4242 of thread 1 k0=|count"
    "message == \"loadgen record 4242 of thread 1\"|deferred|message == \"loadgen record 4242 of thread 1\"|loadgen: loadgen record 4242 of thread 1 k0=|count"
    "print message contains \"of thread 1\" (half)|deferred|message contains \"of thread 1\"|of thread 1|print"
)

printf '%s records, %s runs each, alternated; load %s\n' "$records" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${QVG_OLD:-}" ]; then
    printf '| case | distlog (median) | grep (median) | grep / distlog | matches | %s (old / new) |\n|---|---|---|---|---|---|\n' "$QVG_OLD"
else
    printf '| case | distlog (median) | grep (median) | grep / distlog | matches |\n|---|---|---|---|---|\n'
fi
for c in "${cases[@]}"; do
    IFS='|' read -r name kind filter pattern mode <<< "$c"
    case "$name" in *"${QVG_ONLY:-}"*) ;; *) continue ;; esac
    store=$dir/$kind
    text=$dir/$kind.txt
    a=$("$bin/distlog" query --data-dir "$store" --count --filter "$filter")
    b=$(grep -c -- "$pattern" "$text" || true)
    if [ "$a" != "$b" ]; then
        echo "case '$name': distlog counts $a, grep $b: not the same records" >&2
        exit 1
    fi
    ta=() tb=() tc=()
    for _ in $(seq "$runs"); do
        if [ -n "${QVG_OLD:-}" ]; then
            t0=$(now_ms)
            if [ "$mode" = count ]; then
                "$QVG_OLD/distlog" query --data-dir "$store" --count --filter "$filter" > "$dir/out-c"
            else
                "$QVG_OLD/distlog" query --data-dir "$store" --filter "$filter" > "$dir/out-c"
            fi
            tc+=($(($(now_ms) - t0)))
        fi
        # Never to /dev/null: GNU grep then stops at the first match.
        if [ "$mode" = count ]; then
            t0=$(now_ms); "$bin/distlog" query --data-dir "$store" --count --filter "$filter" > "$dir/out-a"; t1=$(now_ms)
            grep -c -- "$pattern" "$text" > "$dir/out-b" || true; t2=$(now_ms)
        else
            t0=$(now_ms); "$bin/distlog" query --data-dir "$store" --filter "$filter" > "$dir/out-a"; t1=$(now_ms)
            grep -- "$pattern" "$text" > "$dir/out-b" || true; t2=$(now_ms)
        fi
        ta+=($((t1 - t0))) tb+=($((t2 - t1)))
    done
    if [ "$mode" = print ] && ! cmp -s "$dir/out-a" "$dir/out-b"; then
        echo "case '$name': the printed lines differ from grep's" >&2
        exit 1
    fi
    ma=$(printf '%s\n' "${ta[@]}" | median)
    mb=$(printf '%s\n' "${tb[@]}" | median)
    ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", b / a}')
    old=
    if [ -n "${QVG_OLD:-}" ]; then
        mc=$(printf '%s\n' "${tc[@]}" | median)
        old=" $mc ms ($(awk -v a="$ma" -v c="$mc" 'BEGIN {printf "%.2f", c / a}')) |"
    fi
    printf '| %s | %s ms | %s ms | %s | %s |%s\n' "$name" "$ma" "$mb" "$ratio" "$a" "$old"
done
rm -f "$dir/out-a" "$dir/out-b" "$dir/out-c"
