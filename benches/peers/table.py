#!/usr/bin/env python3
"""Turns the JSON result lines of one run.sh run into markdown tables.

usage: table.py RESULTS.jsonl
"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lat = [r for r in rows if "logger" in r and r.get("bench") is None]
zmq = [r for r in rows if r.get("bench") == "zmq_ceiling"]
load = [r for r in rows if r.get("bench") == "load"]
h2h = [r for r in rows if r.get("bench") == "head_to_head"]
h2h_delivery = {r["logger"]: r for r in rows if r.get("bench") == "head_to_head_delivery"}

PEERS = ["distlog", "distlog (log facade)", "tracing", "slog", "ftlog",
         "fast_log", "ticklog", "quicklog", "low_latency_log"]
CASES = [("0kv", 1), ("3kv", 1), ("8kv", 1), ("0kv", 2), ("3kv", 2),
         ("8kv", 2), ("disabled", 1)]


def column(r):
    if r["logger"] == "distlog" and r["case"].startswith("facade_"):
        return "distlog (log facade)", r["case"][len("facade_"):]
    return r["logger"], r["case"]


cell = {}
for r in lat:
    col, case = column(r)
    cell[(col, case, r["threads"])] = r


def fmt_ns(x):
    if x is None:
        return "?"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def delivery(r):
    if r.get("logged", 0) == 0:
        return ""
    d = r.get("delivered")
    if d is None:
        return " (delivery not counted)"
    pct = 100.0 * d / r["logged"]
    return f" ({pct:.0f}%)" if pct < 99.95 else " (100%)"


def label(case, threads):
    if case == "disabled":
        return "level disabled"
    return f"{case[0]} kv, {threads} thread{'s' if threads > 1 else ''}"


present = [p for p in PEERS if any(k[0] == p for k in cell)]
print("### Log call, p50 ns per call (delivered share)\n")
print("| case | " + " | ".join(present) + " |")
print("|---|" + "---|" * len(present))
for case, t in CASES:
    out = []
    for p in present:
        r = cell.get((p, case, t))
        if r is None:
            out.append("—")
        elif "unsupported" in r:
            out.append("n/a")
        else:
            out.append(fmt_ns(r.get("p50_ns")) + delivery(r))
    print(f"| {label(case, t)} | " + " | ".join(out) + " |")

print("\n### Ratio: peer p50 / distlog native-macro p50 (same case, same run; >1 = distlog faster)\n")
peers = [p for p in present if p != "distlog"]
print("| case | " + " | ".join(peers) + " |")
print("|---|" + "---|" * len(peers))
for case, t in CASES:
    base = cell.get(("distlog", case, t))
    out = []
    for p in peers:
        r = cell.get((p, case, t))
        if r is None or "unsupported" in r or base is None or not base.get("p50_ns"):
            out.append("—")
        else:
            out.append(f"{r['p50_ns'] / base['p50_ns']:.1f}x")
    print(f"| {label(case, t)} | " + " | ".join(out) + " |")

print("\n### Detail (percentiles of the per-call average of 20-call bursts)\n")
print("| logger | case | threads | p50 | p90 | p99 | p99.9 | max | delivered / logged | allocs/call | process CPU | note |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in lat:
    if "unsupported" in r:
        print(f"| {r['logger']} | {r['case']} | {r['threads']} | n/a | | | | | | | | {r['unsupported']} |")
        continue
    d = r.get("delivered")
    dl = "" if r.get("logged", 0) == 0 else (
        f"{d} / {r['logged']} ({100.0 * d / r['logged']:.1f}%)" if d is not None
        else f"not counted / {r['logged']}")
    cpu = r.get("cpu_pct")
    print(f"| {r['logger']} | {r['case']} | {r['threads']} | {fmt_ns(r.get('p50_ns'))} "
          f"| {fmt_ns(r.get('p90_ns')) if r.get('p90_ns') is not None else ''} "
          f"| {fmt_ns(r.get('p99_ns'))} | {fmt_ns(r.get('p999_ns'))} "
          f"| {fmt_ns(r.get('max_ns')) if r.get('max_ns') is not None else ''} | {dl} "
          f"| {r.get('allocs_per_call', '')} | {'' if cpu is None else f'{cpu:.0f}%'} "
          f"| {r.get('note', '')} |")

if h2h:
    rounds = h2h[0]["rounds"]
    print(f"\n### Head to head: one process, bursts interleaved, {rounds} rounds (1 thread)\n")
    print("Ratio = peer p50 / distlog p50 (>1 = distlog faster): median over the "
          "rounds (min-max), and from all bursts pooled.\n")
    print("| case | logger | p50 ns | p99 ns | ratio, round median (min-max) | ratio, pooled | delivered |")
    print("|---|---|---|---|---|---|---|")
    for r in h2h:
        d = h2h_delivery.get(r["logger"])
        dl = "?" if d is None else (
            "100%" if d["delivered"] == d["logged"]
            else f"{100.0 * d['delivered'] / max(d['logged'], 1):.1f}%")
        ratio = ("—" if r["logger"] == "distlog" else
                 f"{r['ratio_round_median']:.2f}x ({r['ratio_round_min']:.2f}-{r['ratio_round_max']:.2f})")
        pooled = "—" if r["logger"] == "distlog" else f"{r['ratio_pooled']:.2f}x"
        print(f"| {r['case']} | {r['logger']} | {fmt_ns(r['p50_ns'])} | {fmt_ns(r['p99_ns'])} "
              f"| {ratio} | {pooled} | {dl} |")

if zmq:
    print("\n### Raw ZeroMQ ceiling: one 128-byte message per send (median of runs)\n")
    print("| transport | frames per message | messages/s (median) | min | max |")
    print("|---|---|---|---|---|")
    for r in zmq:
        print(f"| {r['transport']} | {r['frames']} | {r['median_msgs_per_sec'] / 1e6:.2f} M "
              f"| {r['min_msgs_per_sec'] / 1e6:.2f} M | {r['max_msgs_per_sec'] / 1e6:.2f} M |")

if load:
    print("\n### Machine load (1-minute load average before each binary; 2 cores)\n")
    print("| binary | load average |")
    print("|---|---|")
    for r in load:
        print(f"| {r['binary']} | {r['loadavg']} |")
