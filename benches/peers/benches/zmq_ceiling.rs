//! The raw ZeroMQ ceiling on this machine: one 128-byte message per send,
//! PUSH (this thread) -> PULL (a receiver thread), each socket in its own
//! context (its own I/O thread), default high-water marks,
//! blocking sends. Messages/s = messages / (first send .. last receive).
//! Over tcp loopback and ipc, single-frame, plus the two-frame shape
//! distlog's own messages have (`[3-byte topic, body]`). This is the rate
//! distlog's batching must beat by a wide margin (issue 6: >= 3x).
//!
//! `cargo bench -p distlog-peers --bench zmq_ceiling` (`ZMQ_MESSAGES`,
//! default 2,000,000 per run, median of `ZMQ_RUNS`, default 3; `ZMQ_CASES`,
//! default `tcp1,tcp2,ipc1,ipc2`, picks transports and frame counts, so
//! `benches/peers/e2e.sh` can run the tcp one-frame case between its own
//! runs); quick check under `cargo test -p distlog-peers --benches`
//! (10,000 messages, one run).

use std::io::Write;
use std::time::Instant;

const SIZE: usize = 128;

fn run(endpoint: &str, frames: usize, n: u64) -> f64 {
    // Two contexts, so each side has its own I/O thread, as two processes
    // would.
    let (rx_ctx, tx_ctx) = (zmq::Context::new(), zmq::Context::new());
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let endpoint = if endpoint.starts_with("ipc://") {
        format!(
            "{endpoint}{}",
            RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    } else {
        endpoint.to_owned()
    };
    let pull = rx_ctx.socket(zmq::PULL).unwrap();
    pull.bind(&endpoint).unwrap();
    let bound = pull.get_last_endpoint().unwrap().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 2 * SIZE];
        let mut got = 0u64;
        while got < n {
            for _ in 0..frames {
                pull.recv_into(&mut buf, 0).unwrap();
            }
            got += 1;
        }
        Instant::now()
    });
    let push = tx_ctx.socket(zmq::PUSH).unwrap();
    push.connect(&bound).unwrap();
    let body = [b'x'; SIZE];
    // Let the connection come up before timing.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let start = Instant::now();
    for _ in 0..n {
        if frames == 2 {
            push.send(&b"TLR"[..], zmq::SNDMORE).unwrap();
        }
        push.send(&body[..], 0).unwrap();
    }
    let end = receiver.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("ZMQ_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 2_000_000 } else { 10_000 });
    let reps = if full {
        std::env::var("ZMQ_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3usize)
            .max(1)
    } else {
        1
    };
    let cases = std::env::var("ZMQ_CASES").unwrap_or_else(|_| "tcp1,tcp2,ipc1,ipc2".into());
    let dir = std::env::temp_dir().join(format!("distlog-zmq-ceiling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ipc = format!("ipc://{}/s", dir.display());
    for (transport, endpoint, frames) in [
        ("tcp", "tcp://127.0.0.1:*", 1),
        ("tcp", "tcp://127.0.0.1:*", 2),
        ("ipc", ipc.as_str(), 1),
        ("ipc", ipc.as_str(), 2),
    ] {
        if !cases
            .split(',')
            .any(|c| c == format!("{transport}{frames}"))
        {
            continue;
        }
        let mut rates: Vec<f64> = (0..reps).map(|_| run(endpoint, frames, n)).collect();
        rates.sort_by(|a, b| a.total_cmp(b));
        let v = serde_json::json!({
            "bench": "zmq_ceiling",
            "transport": transport,
            "frames": frames,
            "message_bytes": SIZE,
            "messages": n,
            "runs": reps,
            "median_msgs_per_sec": rates[rates.len() / 2].round(),
            "min_msgs_per_sec": rates[0].round(),
            "max_msgs_per_sec": rates[rates.len() - 1].round(),
        });
        println!("ZMQ_RESULT {v}");
        if let Some(p) = std::env::var_os("PEERS_OUT") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap();
            writeln!(f, "{v}").unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
