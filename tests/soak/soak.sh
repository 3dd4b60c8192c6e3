#!/usr/bin/env bash
# Soak test (not run in CI): distlogd on its embedded store with metrics,
# fed by `distlog loadgen` in back-to-back runs for DURATION seconds.
# Prints the broker's RSS and record count every 10 s, then one JSON line:
# records sent, dropped by clients, received and stored by the broker, lost
# (sent - dropped - stored), and RSS min/max/last.
#
#   tests/soak/soak.sh [DURATION_SECS=600] [THREADS=2] [RECORDS_PER_RUN=2000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-600}"
THREADS="${2:-2}"
PER_RUN="${3:-2000000}"

cargo build --quiet --release -p distlogd
BIN=target/release
WORK="$(mktemp -d)"
trap 'kill "$BROKER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"; MPORT="$(free_port)"
"$BIN/distlogd" --listen "tcp://127.0.0.1:$PORT" --data-dir "$WORK/store" \
    --metrics "127.0.0.1:$MPORT" 2> "$WORK/broker.log" &
BROKER=$!
until curl -sf "http://127.0.0.1:$MPORT/metrics" > /dev/null; do sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$BROKER/status"; }
received() { curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '/^distlogd_records_total / {print $2}'; }

SENT=0; DROPPED=0; RSS_MIN=999999999; RSS_MAX=0
START=$(date +%s); NEXT=$START
echo "secs rss_kb broker_records" >&2
while [ $(( $(date +%s) - START )) -lt "$DURATION" ]; do
    "$BIN/distlog" loadgen --endpoint "tcp://127.0.0.1:$PORT" --records "$PER_RUN" \
        --threads "$THREADS" --fields 3 > "$WORK/run.json" &
    LG=$!
    while kill -0 "$LG" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$NEXT" ]; then
            R=$(rss); [ "$R" -lt "$RSS_MIN" ] && RSS_MIN=$R; [ "$R" -gt "$RSS_MAX" ] && RSS_MAX=$R
            echo "$(( $(date +%s) - START )) $R $(received)" >&2
            NEXT=$(( NEXT + 10 ))
        fi
        sleep 0.5
    done
    wait "$LG"
    LAST=$(tail -1 "$WORK/run.json")
    SENT=$(( SENT + $(echo "$LAST" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])') ))
    DROPPED=$(( DROPPED + $(echo "$LAST" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dropped"])') ))
done
RSS_LAST=$(rss)
RECEIVED=$(received)
kill -TERM "$BROKER"; wait "$BROKER" || { echo "broker exited non-zero" >&2; exit 1; }
STORED=$("$BIN/distlog" query --data-dir "$WORK/store" --count --filter 'target == "loadgen"')
echo "{\"secs\": $(( $(date +%s) - START )), \"sent\": $SENT, \"dropped\": $DROPPED, \"received\": $RECEIVED, \"stored\": $STORED, \"lost\": $(( SENT - DROPPED - STORED )), \"rss_kb_min\": $RSS_MIN, \"rss_kb_max\": $RSS_MAX, \"rss_kb_last\": $RSS_LAST}"
