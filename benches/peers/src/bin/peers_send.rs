//! `peers-send`: the sender side of `benches/peers/rsyslog.sh`, the broker
//! against rsyslog on one workload.
//!
//! The workload: `--records` records of 128 bytes each, pre-encoded before
//! the clock starts, sent from `--connections` (2) tcp connections, one
//! thread each, records split evenly. One record in `--match-every` (1:
//! all) carries the word `marker` in its message, the others `plain`; the
//! receiver keeps those that contain `marker` and writes them to disk.
//!
//! - `--to distlog`: each connection is a ZeroMQ PUSH socket of its own
//!   context sending `[TLR, batch]` messages, each batch `--batch` (512)
//!   records of one sender (its own host, pid and instance per
//!   connection, sequence numbers contiguous), a record's rendered message
//!   sized so the archived record takes 128 bytes of the body. Done when
//!   the broker's `distlogd_processor_written_records_total{processor=
//!   "store"}` (from `--metrics HOST:PORT`) reaches the matched count.
//! - `--to rsyslog`: each connection a plain tcp stream of RFC 3164 lines
//!   (`<13>Dec  6 09:10:11 bench peers: MSG\n`), 128 bytes with the
//!   newline, the same messages, written in 64 KiB chunks. Done when the
//!   output file (`--out FILE`, one `MSG` line per kept record, every line
//!   the same length) holds the matched count.
//!
//! With `--warmup N` (0: none), each connection first sends its share of
//! `N` more records (sequence numbers before the timed ones, the same
//! messages) and the clock starts only once the sink holds every matching
//! one of them: the receiver is measured in its steady state, its queues'
//! memory already touched once, as a long-running receiver is, rather
//! than paying the first fill inside the timed span. Both peers get it
//! alike.
//!
//! Time runs from the first timed send to the last record on the sink,
//! polled every 2 ms. With `--pid`, the receiver's CPU time (utime + stime from
//! `/proc/PID/stat`) over the same span. Prints one JSON line:
//! `records`, `matched`, `secs`, `records_per_sec` (records sent per
//! second: the receiver took and filtered all of them), `stored_per_sec`,
//! `cpu_secs`, `cpu_us_per_record`, and `threads`: the receiver's CPU
//! per record, minor page faults and context switches (voluntary and
//! not: how often it waited or was preempted) over the same span for
//! each of its threads, grouped by thread name without a trailing `-N`
//! (`worker`, `proc-store`; distlogd's ZeroMQ I/O thread is named
//! `distlogd`, with the main thread, which is idle). Exits 1 if the sink did not get every
//! matched record within `--timeout` seconds (it reports what it got).

use distlog_core::wire::{Sender, Site, Thread, WireBatch, WireRecord};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bytes per record: an rsyslog line with its newline, a distlog record in
/// the archive.
const RECORD: usize = 128;

/// What a distlog record takes in the archive besides its message bytes
/// (the fixed fields and four relative pointers), for a message longer
/// than rkyv's 8 inline bytes.
const ARCHIVED_RECORD_FIXED: usize = 68;

struct Args {
    to: String,
    endpoint: String,
    records: u64,
    connections: u64,
    match_every: u64,
    batch: u64,
    metrics: Option<String>,
    out: Option<String>,
    pid: Option<u32>,
    timeout: f64,
    warmup: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: peers-send --to distlog|rsyslog --endpoint HOST:PORT --records N \
         [--connections 2] [--match-every 1] [--batch 512] [--warmup 0] \
         (--metrics HOST:PORT | --out FILE) [--pid PID] [--timeout 300]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        to: String::new(),
        endpoint: String::new(),
        records: 0,
        connections: 2,
        match_every: 1,
        batch: 512,
        metrics: None,
        out: None,
        pid: None,
        timeout: 300.0,
        warmup: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "--to" => a.to = v,
            "--endpoint" => a.endpoint = v,
            "--records" => a.records = num(&v),
            "--connections" => a.connections = num(&v).max(1),
            "--match-every" => a.match_every = num(&v).max(1),
            "--batch" => a.batch = num(&v).max(1),
            "--metrics" => a.metrics = Some(v),
            "--out" => a.out = Some(v),
            "--pid" => a.pid = Some(num(&v) as u32),
            "--timeout" => a.timeout = v.parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = num(&v),
            _ => usage(),
        }
    }
    let sink_ok = match a.to.as_str() {
        "distlog" => a.metrics.is_some(),
        "rsyslog" => a.out.is_some(),
        _ => false,
    };
    if !sink_ok || a.endpoint.is_empty() || a.records == 0 {
        usage();
    }
    a
}

/// Record `i` of connection `c`'s message, `len` bytes: `marker` in one
/// record of `match_every`, `plain` in the others; fixed width, so every
/// line rsyslog writes has the same length.
fn message(c: u64, i: u64, match_every: u64, len: usize) -> Vec<u8> {
    let word = if i.is_multiple_of(match_every) {
        "marker"
    } else {
        "plain "
    };
    let mut m = format!("conn {c} record {i:012} {word} ").into_bytes();
    m.resize(len, b'x');
    m
}

/// How many of the records `[first, first + n)` carry `marker`.
fn matched((first, n): (u64, u64), match_every: u64) -> u64 {
    (first + n).div_ceil(match_every) - first.div_ceil(match_every)
}

/// Connection `c`'s share of `records`.
fn share(records: u64, connections: u64, c: u64) -> u64 {
    records / connections + u64::from(c < records % connections)
}

/// Connection `c`'s records: `[first, first + n)` of its sequence, where
/// the warm-up takes `[0, warm-up share)` and the timed send the rest.
fn span(a: &Args, c: u64, warmup: bool) -> (u64, u64) {
    let w = share(a.warmup, a.connections, c);
    if warmup {
        (0, w)
    } else {
        (w, share(a.records, a.connections, c))
    }
}

/// Connection `c`'s batches, encoded.
fn distlog_batches(a: &Args, c: u64, (first, n): (u64, u64)) -> Vec<zmq::Message> {
    let sender = Sender {
        host: format!("bench-{c}"),
        pid: 1000 + c as u32,
        program: "peers-send".into(),
        start_ns: 1,
        instance: 0x5eed_0000 + c + 1,
    };
    let len = RECORD - ARCHIVED_RECORD_FIXED;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out = Vec::new();
    let mut seq = first;
    while seq < first + n {
        let end = (seq + a.batch).min(first + n);
        let b = WireBatch {
            sender: sender.clone(),
            first_seq: seq,
            dropped: 0,
            sites: vec![Site {
                target: "peers".into(),
                module: "peers_send".into(),
                file: "peers_send.rs".into(),
                ..Site::default()
            }],
            threads: vec![Thread {
                id: c,
                name: "send".into(),
            }],
            records: (seq..end)
                .map(|i| WireRecord {
                    time_ns: now + i,
                    seq: i,
                    level: 20,
                    kind: b'L',
                    message: String::from_utf8(message(c, i, a.match_every, len)).unwrap(),
                    ..WireRecord::default()
                })
                .collect(),
        };
        out.push(zmq::Message::from(b.to_body().to_vec()));
        seq = end;
    }
    out
}

/// Connection `c`'s lines, as one buffer.
fn rsyslog_lines(a: &Args, c: u64, (first, n): (u64, u64)) -> Vec<u8> {
    const HEAD: &[u8] = b"<13>Dec  6 09:10:11 bench peers: ";
    let mut out = Vec::with_capacity(n as usize * RECORD);
    for i in first..first + n {
        out.extend_from_slice(HEAD);
        out.extend_from_slice(&message(c, i, a.match_every, RECORD - HEAD.len() - 1));
        out.push(b'\n');
    }
    out
}

/// One group of the receiver's threads so far: CPU seconds, minor page
/// faults, and context switches (voluntary and not: how often they
/// waited or were preempted).
#[derive(Clone, Copy, Default)]
struct ThreadStats {
    cpu: f64,
    faults: u64,
    switches: u64,
}

/// The receiver's threads so far, grouped by name without a trailing
/// `-N`.
fn thread_stats(pid: u32) -> std::collections::BTreeMap<String, ThreadStats> {
    let mut out = std::collections::BTreeMap::<String, ThreadStats>::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, n)| n);
        let name = match name.rsplit_once('-') {
            Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => name,
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // After the name: minflt is the 10th field of the line, utime and
        // stime the 14th and 15th.
        let (Some(minflt), Some(u), Some(s)) = (f.get(7), f.get(11), f.get(12)) else {
            continue;
        };
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter_map(|l| l.split_once("ctxt_switches:"))
            .map(|(_, v)| v.trim().parse::<u64>().unwrap_or(0))
            .sum();
        let e = out.entry(name.to_owned()).or_default();
        e.cpu += (u + s) as f64 / hz;
        e.faults += minflt;
        e.switches += switches;
    }
    out
}

/// The receiver's CPU time so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / hz)
}

/// The store's written-records counter from the broker's metrics page.
fn written(metrics: &str) -> Option<u64> {
    let mut s = TcpStream::connect(metrics).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| {
            l.strip_prefix("distlogd_processor_written_records_total{processor=\"store\"} ")
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The length of the first line of `file` with its newline, 0 while it
/// has none.
fn first_line_len(file: &str) -> u64 {
    let mut buf = [0u8; 4096];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    memchr::memchr(b'\n', &buf[..n]).map_or(0, |i| i as u64 + 1)
}

fn main() {
    let a = parse_args();
    let want_of = |warmup: bool| {
        (0..a.connections)
            .map(|c| matched(span(&a, c, warmup), a.match_every))
            .sum::<u64>()
    };
    let (want, warm_want) = (want_of(false), want_of(true));
    // Every line rsyslog writes has the length of its first.
    let mut line_len = 0u64;
    let mut sink = || -> u64 {
        match (&a.metrics, &a.out) {
            (Some(m), _) => written(m).unwrap_or(0),
            (None, Some(f)) => {
                if line_len == 0 {
                    line_len = first_line_len(f);
                }
                match line_len {
                    0 => 0,
                    l => std::fs::metadata(f).map_or(0, |m| m.len()) / l,
                }
            }
            (None, None) => 0,
        }
    };
    let start_count = sink();
    // Encoded before the clock starts: per connection, the warm-up's
    // records, then the timed ones.
    let (zmq_batches, lines): (Vec<_>, Vec<_>) = if a.to == "distlog" {
        (
            (0..a.connections)
                .map(|c| [true, false].map(|warmup| distlog_batches(&a, c, span(&a, c, warmup))))
                .collect(),
            Vec::new(),
        )
    } else {
        (
            Vec::new(),
            (0..a.connections)
                .map(|c| [true, false].map(|warmup| rsyslog_lines(&a, c, span(&a, c, warmup))))
                .collect(),
        )
    };
    let barrier = std::sync::Barrier::new(a.connections as usize + 1);
    let ctx_sockets: Vec<(zmq::Context, zmq::Socket)> = zmq_batches
        .iter()
        .map(|_| {
            let ctx = zmq::Context::new();
            let s = ctx.socket(zmq::PUSH).expect("socket");
            s.set_sndhwm(1000).expect("hwm");
            s.set_linger(-1).expect("linger");
            s.connect(&format!("tcp://{}", a.endpoint))
                .expect("connect");
            (ctx, s)
        })
        .collect();
    let streams: Vec<TcpStream> = lines
        .iter()
        .map(|_| TcpStream::connect(&a.endpoint).expect("connect to rsyslog"))
        .collect();
    // Let the connections come up before timing.
    std::thread::sleep(Duration::from_millis(200));
    let deadline = Duration::from_secs_f64(a.timeout);
    let (mut base, mut warm_secs, mut cpu0) = (start_count, 0.0, 0.0);
    let mut threads0 = Default::default();
    let mut t0 = Instant::now();
    std::thread::scope(|s| {
        // Each sender: the warm-up, a wait for the sink to hold it, then
        // the timed records on the same connection.
        for ((ctx, sock), [warm, timed]) in ctx_sockets.into_iter().zip(zmq_batches) {
            let barrier = &barrier;
            s.spawn(move || {
                for batches in [warm, timed] {
                    barrier.wait();
                    for m in batches {
                        sock.send("TLR", zmq::SNDMORE).expect("send");
                        sock.send(m, 0).expect("send");
                    }
                }
                // Returns once everything is on the wire (linger -1).
                drop(sock);
                drop(ctx);
            });
        }
        for (mut stream, bufs) in streams.into_iter().zip(&lines) {
            let barrier = &barrier;
            s.spawn(move || {
                for buf in bufs {
                    barrier.wait();
                    for chunk in buf.chunks(64 << 10) {
                        stream.write_all(chunk).expect("write to rsyslog");
                    }
                    stream.flush().ok();
                }
            });
        }
        barrier.wait();
        let tw = Instant::now();
        while a.warmup > 0 && sink().saturating_sub(start_count) < warm_want {
            if tw.elapsed() > deadline {
                eprintln!("peers-send: the sink did not take the warm-up's {warm_want} records");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        warm_secs = tw.elapsed().as_secs_f64();
        base = sink();
        cpu0 = a.pid.map_or(0.0, cpu_secs);
        threads0 = a.pid.map(thread_stats).unwrap_or_default();
        barrier.wait();
        t0 = Instant::now();
    });
    let mut got;
    loop {
        got = sink().saturating_sub(base);
        if got >= want || t0.elapsed() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = a.pid.map_or(0.0, cpu_secs) - cpu0;
    let threads: serde_json::Map<String, serde_json::Value> = a
        .pid
        .map(thread_stats)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, now)| {
            let then = threads0.get(&name).copied().unwrap_or_default();
            let v = serde_json::json!({
                "cpu_us_per_record": (now.cpu - then.cpu) * 1e6 / a.records as f64,
                "minor_faults": now.faults.saturating_sub(then.faults),
                "context_switches": now.switches.saturating_sub(then.switches),
            });
            (name, v)
        })
        .collect();
    let summary = serde_json::json!({
        "to": a.to,
        "records": a.records,
        "warmup": a.warmup,
        "warmup_secs": warm_secs,
        "warmup_matched": warm_want,
        "connections": a.connections,
        "match_every": a.match_every,
        "matched": want,
        "stored": got,
        "secs": secs,
        "records_per_sec": a.records as f64 / secs,
        "stored_per_sec": got as f64 / secs,
        "cpu_secs": cpu,
        "cpu_us_per_record": cpu * 1e6 / a.records as f64,
        "threads": threads,
    });
    println!("{summary}");
    if got < want {
        eprintln!("peers-send: the sink has {got} of {want} records after {secs:.1} s");
        std::process::exit(1);
    }
}
