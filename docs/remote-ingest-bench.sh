#!/usr/bin/env bash
# Sustained ingest into the embedded store, PostgreSQL (postgres processor)
# and through NATS JetStream (edge jetstream processor -> stream -> central
# broker's input -> store), with the same load: `distlog loadgen --block`
# (no client drops: every record reaches the broker). Time runs from the
# start of loadgen until the sink has every record: for store and postgres
# the broker is stopped with SIGTERM (it hands everything to the processor,
# which flushes/commits before exit); for JetStream the edge is stopped the
# same way (everything acknowledged by the stream), then the central
# broker's store count is polled.
#
#   cargo build --release -p distlogd
#   N=2000000 bash docs/remote-ingest-bench.sh
# Needs (as root) Debian's postgresql and nats-server.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000000}
T=${T:-2}
K=${K:-2}
BIN=target/release
W=$(mktemp -d /tmp/distlog-bench.XXXXXX)
chmod 755 "$W"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

loadgen() { "$BIN/distlog" loadgen --endpoint "$1" --records "$N" --threads "$T" --fields "$K" --block --flush-timeout 600 | tail -1; }
stop_wait() { kill -TERM "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.02; done; }
report() { python3 -c "import sys; n,t0,t1=int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]); print(f'{sys.argv[1]}: {n} records in {t1-t0:.2f} s = {n/(t1-t0):,.0f} records/s')" "$@"; }

# 1. embedded store
EP=tcp://127.0.0.1:$(port)
"$BIN/distlogd" --listen "$EP" --data-dir "$W/store" 2>"$W/store.log" & B=$!; pids+=($B); sleep 0.5
t0=$(now); loadgen "$EP" >"$W/lg-store.json"; stop_wait $B; t1=$(now)
got=$("$BIN/distlog" query --data-dir "$W/store" --count)
report "store" "$got" "$t0" "$t1"

# 2. PostgreSQL
mkdir -p "$W/pg/data"; [ "$(id -u)" = 0 ] && chown -R postgres "$W/pg"
as_pg "$PGBIN/initdb" -A trust -U distlog -E UTF8 -D "$W/pg/data" >/dev/null
PGP=$(port)
as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -w -l "$W/pg/log" -o "-p $PGP -k $W/pg -c listen_addresses=127.0.0.1" start >/dev/null
URL="host=127.0.0.1 port=$PGP user=distlog dbname=postgres"
cat >"$W/pg.yaml" <<YAML
metrics: {interval: 0s}
processors:
  db: {type: postgres, url: "$URL", batch: ${PG_BATCH:-5000}, queue: {overflow: block}}
default: [db]
YAML
EP=tcp://127.0.0.1:$(port)
"$BIN/distlogd" --config "$W/pg.yaml" --listen "$EP" 2>"$W/pg.log" & B=$!; pids+=($B); sleep 1
t0=$(now); loadgen "$EP" >"$W/lg-pg.json"; stop_wait $B; t1=$(now)
got=$("$BIN/distlog" query --database "$URL" --count)
report "postgres" "$got" "$t0" "$t1"
tail -1 "$W/pg.log" | sed 's/.*processors=/  broker: processors=/'

# 3. JetStream: edge -> stream -> central -> store
NP=$(port)
nats-server -js -a 127.0.0.1 -p "$NP" -sd "$W/nats" 2>"$W/nats.log" & N1=$!; pids+=($N1); sleep 0.5
cat >"$W/edge.yaml" <<YAML
metrics: {interval: 0s}
processors:
  js: {type: jetstream, url: "nats://127.0.0.1:$NP", queue: {overflow: block}}
default: [js]
YAML
cat >"$W/central.yaml" <<YAML
metrics: {interval: 0s, listen: "127.0.0.1:$(port)"}
processors:
  store: {type: store}
default: [store]
jetstream_inputs:
  - {url: "nats://127.0.0.1:$NP", stream: DISTLOG, consumer: central}
YAML
CM=$(sed -n 's/.*listen: "\(.*\)"}/\1/p' "$W/central.yaml")
"$BIN/distlogd" --config "$W/central.yaml" --listen tcp://127.0.0.1:$(port) --data-dir "$W/central" 2>"$W/central.log" & C=$!; pids+=($C)
EP=tcp://127.0.0.1:$(port)
"$BIN/distlogd" --config "$W/edge.yaml" --listen "$EP" 2>"$W/edge.log" & B=$!; pids+=($B); sleep 1
t0=$(now); loadgen "$EP" >"$W/lg-js.json"; stop_wait $B; t_edge=$(now)
written() { python3 - "$CM" <<'PY'
import sys, urllib.request
t = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
print(next((l.split()[-1] for l in t.splitlines() if l.startswith('distlogd_processor_written_records_total{processor="store"}')), "0"))
PY
}
while [ "$(written)" -lt "$N" ]; do sleep 0.05; done; t1=$(now)
report "jetstream (edge acked by the stream)" "$N" "$t0" "$t_edge"
report "jetstream (end to end, central store)" "$N" "$t0" "$t1"
tail -1 "$W/edge.log" | sed 's/.*processors=/  edge: processors=/'
