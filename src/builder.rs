//! Setting up the pipeline: [`Builder`], [`Guard`], and the process hooks.

use crate::callsite;
use crate::directives::{Directives, DirectivesError};
use crate::pipeline::link::{Connection, Link};
use crate::pipeline::sender::SenderThread;
use crate::pipeline::{Config, Shared, PIPELINE};
use distlog_core::wire::Sender;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};
use std::time::Duration;

/// The default broker endpoint (the original project's port).
pub const DEFAULT_ENDPOINT: &str = "tcp://127.0.0.1:5010";

/// Configures and installs the process-wide pipeline. Start with
/// [`builder()`](crate::builder).
///
/// Unless set here, the endpoint, system and level directives come from
/// `DISTLOG_ENDPOINT` (default `tcp://127.0.0.1:5010`), `DISTLOG_SYSTEM`
/// (`P`, `S` or `T`; default `P`) and `DISTLOG_LOG` (`RUST_LOG` syntax;
/// default `info`).
#[derive(Debug, Clone)]
pub struct Builder {
    endpoint: Option<String>,
    system: Option<char>,
    level: Option<String>,
    buffer_per_thread: usize,
    max_memory: usize,
    max_pending: usize,
    block_when_full: bool,
    grow_when_full: bool,
    batch_records: usize,
    idle_wait: Duration,
    shutdown_timeout: Duration,
    send_hwm: i32,
    allow_tsc: bool,
    log_facade: bool,
    panic_hook: bool,
    program: Option<String>,
    curve: Option<(String, crate::curve::KeyPair)>,
    acknowledged: bool,
    resend_buffer: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            endpoint: None,
            system: None,
            level: None,
            buffer_per_thread: 128 * 1024,
            max_memory: 4 * 1024 * 1024,
            max_pending: 2 * 1024 * 1024,
            block_when_full: false,
            grow_when_full: true,
            batch_records: 2048,
            idle_wait: Duration::from_millis(1),
            shutdown_timeout: Duration::from_secs(3),
            send_hwm: 1000,
            allow_tsc: true,
            log_facade: true,
            panic_hook: true,
            program: None,
            curve: None,
            acknowledged: false,
            resend_buffer: 16 * 1024 * 1024,
        }
    }
}

impl Builder {
    /// Encrypts and authenticates the connection with CURVE: the broker's
    /// public key (Z85) and this client's key pair, whose public key must
    /// be on the broker's allow-list. Without this call,
    /// `DISTLOG_CURVE_SERVER_KEY` and `DISTLOG_CURVE_KEY_FILE` (a
    /// `distlog keygen` file) are read when set.
    pub fn curve(mut self, server_public: impl Into<String>, keys: crate::curve::KeyPair) -> Self {
        self.curve = Some((server_public.into(), keys));
        self
    }

    /// Acknowledged delivery (default off): the broker acknowledges every
    /// batch once its processors have taken it (the store: written); the
    /// client keeps what is not yet acknowledged in a bounded resend
    /// buffer ([`resend_buffer`](Builder::resend_buffer)) and sends it
    /// again after a reconnect, and the broker discards what it already
    /// has. A broker restart or a short outage then loses nothing that fit
    /// in the buffer; [`flush`](crate::flush) waits for the
    /// acknowledgements. The endpoint must be one of the broker's
    /// `ack_listen` endpoints (`docs/PROTOCOL.md`).
    pub fn acknowledged(mut self, on: bool) -> Self {
        self.acknowledged = on;
        self
    }

    /// With [`acknowledged`](Builder::acknowledged) delivery, the most
    /// bytes of batches kept until the broker acknowledges them, sent or
    /// still waiting for a connection (default 16 MiB; it replaces
    /// [`max_pending`](Builder::max_pending)). While it is full the rings
    /// fill: a record is dropped and counted, or waits with
    /// `block_when_full`. Size it for the outages to ride out: about the
    /// bytes logged per second (loadgen's `bytes / secs`) times their
    /// length.
    pub fn resend_buffer(mut self, bytes: usize) -> Self {
        self.resend_buffer = bytes;
        self
    }

    /// The broker's endpoint: `tcp://host:port` or `ipc:///path`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The system letter of the topic: `'P'` production, `'S'` staging,
    /// `'T'` test.
    pub fn system(mut self, system: char) -> Self {
        self.system = Some(system);
        self
    }

    /// Level directives in `RUST_LOG` syntax, e.g. `"info,db=debug"`.
    pub fn level(mut self, directives: impl Into<String>) -> Self {
        self.level = Some(directives.into());
        self
    }

    /// Ring size of each logging thread, in bytes (rounded up to a power of
    /// two; default 128 KiB).
    pub fn buffer_per_thread(mut self, bytes: usize) -> Self {
        self.buffer_per_thread = bytes.clamp(4096, 1 << 30).next_power_of_two();
        self
    }

    /// The most memory all rings together may take (default 4 MiB): at most
    /// `max_memory / buffer_per_thread` rings (at least one) exist at once.
    /// Threads that start logging once it is used up drop their records
    /// (counted) until a thread exits and gives its ring back. With
    /// [`Builder::grow_when_full`] (the default), half of it is what threads
    /// whose ring is full may take for more rings, and that half is
    /// allocated as spare rings when the pipeline starts (address space:
    /// their pages cost memory only once written).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The most encoded bytes the sender holds while ZeroMQ cannot take
    /// them (default 2 MiB). ZeroMQ itself holds at most 8 MiB more of
    /// batches taken and not yet written (its high-water mark counts
    /// messages, not bytes); past both the sender stops draining the
    /// rings.
    pub fn max_pending(mut self, bytes: usize) -> Self {
        self.max_pending = bytes;
        self
    }

    /// When a ring is full, wait for room instead of dropping the record.
    /// Off by default: a hot loop must never stall because a broker is down.
    pub fn block_when_full(mut self, block: bool) -> Self {
        self.block_when_full = block;
        self
    }

    /// When a ring is full (and the pipeline does not block), continue in
    /// a spare ring instead of dropping the record, while the rings in use
    /// stay within half of [`Builder::max_memory`]; the sender reads the
    /// new ring after the full one (the thread's records stay in order) and
    /// gives the full one back to the pool. On by default. The logging call
    /// allocates nothing for it: the sender thread keeps the spares (as
    /// many as growth may use, allocated zeroed, so untouched pages of
    /// large rings cost no memory) and recycles full rings into them; all
    /// rings together stay within `max_memory`
    /// (`tests/full_ring_grows_without_allocating.rs`,
    /// `tests/full_ring_continues_in_order.rs`). With it, one thread
    /// logging 1 M records/s on a loaded 2-core machine delivered every
    /// record in 48 of 66 one-second phases, against 0 of 36 without
    /// (PERFORMANCE.md, "Issue 17 part 1: ring growth without
    /// allocation"). Off, a full ring drops and counts its records.
    pub fn grow_when_full(mut self, grow: bool) -> Self {
        self.grow_when_full = grow;
        self
    }

    /// The most records in one batch (default 2048).
    pub fn batch_records(mut self, n: usize) -> Self {
        self.batch_records = n.clamp(1, 1 << 20);
        self
    }

    /// How long the sender sleeps when it finds nothing to do (default
    /// 1 ms). A batch under three quarters full stays open through one
    /// such sleep (so it fills under load), so a record leaves an idle
    /// process within about twice this; a flush sends at once.
    pub fn idle_wait(mut self, wait: Duration) -> Self {
        self.idle_wait = wait;
        self
    }

    /// How long [`Guard`]'s drop, [`shutdown`](crate::shutdown) and the exit
    /// hook wait to deliver what is queued (default 3 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// ZeroMQ send high-water mark, in batches (default 1000).
    pub fn send_hwm(mut self, hwm: i32) -> Self {
        self.send_hwm = hwm;
        self
    }

    /// Allow the cycle counter as the hot-path clock where the CPU has an
    /// invariant TSC (default true).
    pub fn allow_tsc(mut self, allow: bool) -> Self {
        self.allow_tsc = allow;
        self
    }

    /// Install the `log` facade logger (default true).
    pub fn log_facade(mut self, install: bool) -> Self {
        self.log_facade = install;
        self
    }

    /// Install a panic hook that records panics and flushes (default true).
    pub fn panic_hook(mut self, install: bool) -> Self {
        self.panic_hook = install;
        self
    }

    /// The program name sent with every batch (default: the executable's
    /// file name).
    pub fn program(mut self, name: impl Into<String>) -> Self {
        self.program = Some(name.into());
        self
    }

    /// Starts the pipeline: connects the socket, starts the sender thread,
    /// and installs the `log` logger, the panic hook and an exit hook that
    /// flushes (each as configured). Once per process.
    pub fn install(self) -> Result<Guard, InitError> {
        self.install_inner()
    }

    /// The CURVE server key and client keys, from the builder or the
    /// environment.
    fn curve_settings(&self) -> Result<Option<([u8; 32], crate::curve::KeyPair)>, InitError> {
        let curve_err =
            |e: crate::curve::CurveError| InitError::new(ErrorKind::Curve(e.to_string()));
        if let Some((server, keys)) = &self.curve {
            let server = crate::curve::decode_key(server).map_err(curve_err)?;
            return Ok(Some((server, keys.clone())));
        }
        let server = std::env::var("DISTLOG_CURVE_SERVER_KEY").ok();
        let file = std::env::var("DISTLOG_CURVE_KEY_FILE").ok();
        match (server, file) {
            (None, None) => Ok(None),
            (Some(server), Some(file)) => {
                let server = crate::curve::decode_key(&server).map_err(curve_err)?;
                let keys =
                    crate::curve::KeyPair::load(std::path::Path::new(&file)).map_err(curve_err)?;
                Ok(Some((server, keys)))
            }
            _ => Err(InitError::new(ErrorKind::Curve(
                "set both DISTLOG_CURVE_SERVER_KEY and DISTLOG_CURVE_KEY_FILE, or neither".into(),
            ))),
        }
    }

    fn install_inner(self) -> Result<Guard, InitError> {
        if PIPELINE.get().is_some() {
            return Err(InitError::new(ErrorKind::AlreadyInstalled));
        }
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("DISTLOG_ENDPOINT").ok())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let system = match self.system {
            Some(c) => c,
            None => std::env::var("DISTLOG_SYSTEM")
                .ok()
                .and_then(|s| s.trim().chars().next())
                .unwrap_or('P'),
        };
        if !matches!(system, 'P' | 'S' | 'T') {
            return Err(InitError::new(ErrorKind::BadSystem(system)));
        }
        let spec = self
            .level
            .clone()
            .or_else(|| std::env::var("DISTLOG_LOG").ok())
            .unwrap_or_else(|| "info".to_owned());
        let directives = Directives::parse(&spec).map_err(ErrorKind::Directives)?;

        let context = zmq::Context::new();
        // Acknowledged delivery needs a way back: DEALER (to the broker's
        // ROUTER) sends batches like PUSH and receives the acks.
        let kind = if self.acknowledged {
            zmq::DEALER
        } else {
            zmq::PUSH
        };
        let socket = context
            .socket(kind)
            .map_err(|e| ErrorKind::Socket(e.to_string()))?;
        // ZMQ_IMMEDIATE: ZeroMQ queues batches only on connections whose
        // handshake completed, so nothing waits in ZeroMQ for a broker that
        // is absent or refuses us (see `pipeline::link`).
        socket
            .set_sndhwm(self.send_hwm)
            .and_then(|_| socket.set_immediate(true))
            .and_then(|_| socket.set_linger(0))
            .and_then(|_| socket.set_reconnect_ivl_max(5000))
            .map_err(|e| ErrorKind::Socket(e.to_string()))?;
        let curve = self.curve_settings()?;
        if let Some((server, keys)) = &curve {
            crate::curve::set_client(&socket, server, keys)
                .map_err(|e| ErrorKind::Curve(e.to_string()))?;
        }
        let link = Link::watch(&context, &socket, &endpoint, curve.is_some())
            .map_err(|e| ErrorKind::Socket(format!("socket monitor: {e}")))?;
        socket
            .connect(&endpoint)
            .map_err(|e| ErrorKind::Endpoint(endpoint.clone(), e.to_string()))?;

        if self.log_facade {
            log::set_logger(&crate::facade::Facade).map_err(|_| ErrorKind::LoggerAlreadySet)?;
            log::set_max_level(level_filter(directives.min_threshold()));
        }

        let program = self
            .program
            .clone()
            .unwrap_or_else(crate::process::program_name);
        let host = crate::process::host_name();
        let config = Config {
            system: system as u8,
            directives: directives.clone(),
            buffer_per_thread: self.buffer_per_thread,
            max_memory: self.max_memory.max(self.buffer_per_thread),
            max_pending: self.max_pending,
            block_when_full: self.block_when_full,
            grow_when_full: self.grow_when_full,
            batch_records: self.batch_records,
            // Small enough that a broker's queues, which count messages,
            // stay modest in bytes (its ingest_hwm x this); large enough
            // that per-message costs vanish (a few hundred records).
            batch_bytes: 128 * 1024,
            idle_wait: self.idle_wait,
            shutdown_timeout: self.shutdown_timeout,
            allow_tsc: self.allow_tsc,
            acknowledged: self.acknowledged,
            resend_buffer: self.resend_buffer,
        };
        let shared = Arc::new(Shared::new(config));
        if PIPELINE.set(shared.clone()).is_err() {
            return Err(InitError::new(ErrorKind::AlreadyInstalled));
        }
        let identity = Sender {
            host,
            pid: std::process::id(),
            program,
            start_ns: crate::clock::wall_ns(),
            instance: crate::process::random_u64() | 1,
        };
        // Calibrate the clock before any call site is enabled.
        let sender = SenderThread::new(shared.clone(), socket, link, context, identity);
        let handle = std::thread::Builder::new()
            .name("distlog-sender".into())
            .spawn(move || sender.run())
            .map_err(|e| ErrorKind::Thread(e.to_string()))?;
        let _ = shared.sender.set(handle.thread().clone());
        callsite::set_directives(Some(directives));
        if self.panic_hook {
            crate::panic_hook::install();
        }
        static AT_EXIT: Once = Once::new();
        AT_EXIT.call_once(|| {
            // SAFETY: `at_exit` is a plain `extern "C" fn()` that never
            // unwinds (it catches panics); registering it has no other
            // precondition.
            unsafe {
                libc::atexit(at_exit);
            }
        });
        Ok(Guard { _private: () })
    }
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        crate::shutdown();
    });
}

fn level_filter(threshold: u8) -> log::LevelFilter {
    match threshold {
        0..=5 => log::LevelFilter::Trace,
        6..=10 => log::LevelFilter::Debug,
        11..=20 => log::LevelFilter::Info,
        21..=30 => log::LevelFilter::Warn,
        31..=40 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    }
}

/// Keeps the pipeline running; dropping it delivers what is queued (within
/// the shutdown timeout) and stops the sender. Keep it in `main`.
#[must_use = "dropping the guard shuts the pipeline down"]
#[derive(Debug)]
pub struct Guard {
    _private: (),
}

impl Drop for Guard {
    fn drop(&mut self) {
        crate::shutdown();
    }
}

/// Why the pipeline could not be installed.
#[derive(Debug)]
pub struct InitError {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    AlreadyInstalled,
    BadSystem(char),
    Directives(DirectivesError),
    Socket(String),
    Endpoint(String, String),
    LoggerAlreadySet,
    Thread(String),
    Curve(String),
}

impl InitError {
    fn new(kind: ErrorKind) -> Self {
        InitError { kind }
    }
}

impl From<ErrorKind> for InitError {
    fn from(kind: ErrorKind) -> Self {
        InitError::new(kind)
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::AlreadyInstalled => f.write_str(
                "distlog is already installed in this process; install it once, in main",
            ),
            ErrorKind::BadSystem(c) => write!(
                f,
                "system {c:?} is not one of 'P' (production), 'S' (staging), 'T' (test); \
                 check DISTLOG_SYSTEM"
            ),
            ErrorKind::Directives(e) => write!(f, "{e}; check DISTLOG_LOG"),
            ErrorKind::Socket(e) => write!(f, "cannot create the ZeroMQ socket: {e}"),
            ErrorKind::Endpoint(ep, e) => write!(
                f,
                "cannot connect to {ep:?}: {e}; use tcp://HOST:PORT or ipc:///PATH \
                 (check DISTLOG_ENDPOINT)"
            ),
            ErrorKind::LoggerAlreadySet => f.write_str(
                "another `log` logger is already installed; remove it, or call \
                 .log_facade(false) to use only distlog's macros",
            ),
            ErrorKind::Thread(e) => write!(f, "cannot start the sender thread: {e}"),
            ErrorKind::Curve(e) => write!(f, "CURVE: {e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Directives(e) => Some(e),
            _ => None,
        }
    }
}

/// Counters of the pipeline, from [`stats`](crate::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records handed to a broker that had completed the handshake (queued
    /// in ZeroMQ for a connected peer; not proof of arrival: a broker that
    /// dies takes what was in flight with it).
    pub sent: u64,
    /// Records dropped, for every reason (the sum of [`drops`](Stats::drops)),
    /// as of the sender's last pass (exact after [`flush`](crate::flush),
    /// final after [`shutdown`](crate::shutdown)).
    pub dropped: u64,
    /// [`dropped`](Stats::dropped) by reason.
    pub drops: Drops,
    /// With acknowledged delivery: records the broker acknowledged.
    pub acknowledged: u64,
    /// With acknowledged delivery: records sent again after a reconnect
    /// (the broker discards those it already had).
    pub resent: u64,
    /// Batches handed to a broker.
    pub batches: u64,
    /// Bytes handed to a broker.
    pub bytes: u64,
    /// With [`grow_when_full`](crate::Builder::grow_when_full): how many
    /// times a thread's full ring continued in another ring (each time the
    /// thread would otherwise have dropped records or waited).
    pub rings_grown: u64,
    /// The connection to the broker, as the sender last saw it.
    pub connection: Connection,
}

/// Dropped records by reason, from [`Stats::drops`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drops {
    /// No room in the client's buffers (the broker was down or slower than
    /// the application and the buffers filled), or logged after shutdown.
    pub buffer_full: u64,
    /// Still in the client's buffers at shutdown, with no broker connected
    /// (none was listening, or it went away).
    pub no_broker: u64,
    /// Still in the client's buffers at shutdown, with the handshake with
    /// the broker failing (CURVE settings; the reason is in
    /// [`Stats::connection`] and on stderr).
    pub handshake_failed: u64,
    /// With acknowledged delivery: handed to a broker and still not
    /// acknowledged at shutdown (they may or may not have been stored).
    pub unacknowledged: u64,
}

impl Drops {
    /// Every drop, whatever the reason.
    pub fn total(&self) -> u64 {
        self.buffer_full + self.no_broker + self.handshake_failed + self.unacknowledged
    }
}

pub(crate) fn stats() -> Stats {
    PIPELINE.get().map_or(Stats::default(), |p| {
        let c = &p.counters;
        let drops = Drops {
            buffer_full: c.dropped_seen.load(Ordering::Relaxed),
            no_broker: c.dropped_no_broker.load(Ordering::Relaxed),
            handshake_failed: c.dropped_handshake.load(Ordering::Relaxed),
            unacknowledged: c.dropped_unacked.load(Ordering::Relaxed),
        };
        Stats {
            sent: c.records_sent.load(Ordering::Relaxed),
            dropped: drops.total(),
            drops,
            acknowledged: c.records_acked.load(Ordering::Relaxed),
            resent: c.records_resent.load(Ordering::Relaxed),
            batches: c.batches_sent.load(Ordering::Relaxed),
            bytes: c.bytes_sent.load(Ordering::Relaxed),
            rings_grown: c.rings_grown.load(Ordering::Relaxed),
            connection: c.connection.get(),
        }
    })
}
