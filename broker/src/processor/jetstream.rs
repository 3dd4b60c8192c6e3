//! `jetstream`: publish batches to a NATS JetStream stream, unchanged (the
//! same bytes distlog clients send), on the subject
//! `<prefix>.<system>.<kind>.<host>`, and wait for the stream's
//! acknowledgements (see `docs/JETSTREAM.md`).
//!
//! - At most `max_in_flight` publishes wait for their acknowledgement; the
//!   processor waits for the oldest before publishing more, so a slow or
//!   absent server fills the processor's queue and its overflow policy
//!   (default `drop`, counted) decides.
//! - A publish that fails or is not acknowledged within `ack_timeout` is
//!   published again, together with every later one still in flight, in
//!   order. Each carries a `Nats-Msg-Id` made of its sender identity and
//!   sequence range, so the stream drops the copies it already has
//!   (within its duplicate window, 2 minutes by default). Python clients'
//!   records (no sequence numbers) carry none: a retry may duplicate them.
//! - `max_attempts` (0: unlimited) bounds the attempts per batch; at
//!   shutdown the processor keeps trying for `shutdown_timeout`. What it
//!   gives up on is added to the processor's `dropped`.
//!
//! The NATS client is async: a one-worker tokio runtime of this processor
//! keeps its connection alive (pings, reconnection) between deliveries.
//!
//! ```yaml
//! stream:
//!   type: jetstream
//!   url: nats://127.0.0.1:4222
//!   stream: DISTLOG        # created when missing, subjects "<prefix>.>"
//!   subject_prefix: distlog
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Processor, QueueConfig, Settings};
use crate::config::units;
use crate::metrics::ProcessorStats as Stats;
use crate::warn::RateLimited;
use async_nats::jetstream::context::{Context as Js, PublishAckFuture};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures_util::FutureExt;
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::IntoFuture;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `jetstream` processor's settings (see `docs/JETSTREAM.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamConfig {
    /// NATS server URL(s), comma separated: `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream; created when missing (file storage, subjects
    /// `<subject_prefix>.>`). Default `DISTLOG`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Subjects are `<prefix>.<system>.<kind>.<host>`. Default `distlog`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Replicas when the stream is created (default 1; 3 on a cluster).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Publishes waiting for their acknowledgement at once (default 256).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// How long a publish waits for its acknowledgement before it is sent
    /// again (default 5s).
    #[serde(default = "default_ack_timeout", with = "units::duration")]
    pub ack_timeout: Duration,
    /// Attempts per batch before it is dropped and counted (default 0:
    /// retry until shutdown; the queue's overflow policy bounds memory).
    #[serde(default)]
    pub max_attempts: u32,
    /// At shutdown, how long to keep trying (default 10s).
    #[serde(default = "default_shutdown_timeout", with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// The stream distlog publishes to and reads from unless told: `DISTLOG`.
pub fn default_stream() -> String {
    "DISTLOG".to_owned()
}
fn default_prefix() -> String {
    "distlog".to_owned()
}
fn default_replicas() -> usize {
    1
}
fn default_in_flight() -> usize {
    256
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Whether `s` is a name NATS takes for a stream or consumer (and a token
/// of a subject): 1 to 64 letters, digits, `-` and `_`.
pub fn is_nats_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The servers of a `url` setting: one URL or several separated by commas
/// (the nodes of a cluster; the client picks one and fails over to the
/// others).
pub fn servers(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a `url` setting: at least one server, each a NATS URL.
pub fn check_servers(url: &str) -> Result<(), Invalid> {
    let list = servers(url);
    if list.is_empty() {
        return Err(Invalid::new("url", "at least one nats://host:port"));
    }
    for u in &list {
        u.parse::<async_nats::ServerAddr>()
            .map_err(|e| Invalid::new("url", format!("bad server {u:?}: {e}")))?;
    }
    Ok(())
}

impl Settings for JetstreamConfig {
    fn check(&self) -> Result<(), Invalid> {
        if self.max_in_flight == 0 || self.replicas == 0 {
            let key = if self.max_in_flight == 0 { "max_in_flight" } else { "replicas" };
            return Err(Invalid::new(key, "max_in_flight and replicas above 0"));
        }
        check_servers(&self.url)?;
        if !is_nats_name(&self.stream) || !self.subject_prefix.split('.').all(is_nats_name) {
            let key = if is_nats_name(&self.stream) { "subject_prefix" } else { "stream" };
            return Err(Invalid::new(
                key,
                "stream and subject_prefix: letters, digits, '-', '_' (prefix tokens separated by '.')",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Jetstream::start(self, ctx)?))
    }
}

static WARN: RateLimited = RateLimited::new(Duration::from_secs(10));

type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'static>>;

/// One published batch.
struct Pending {
    subject: String,
    payload: Bytes,
    id: Option<String>,
    records: u64,
    attempts: u32,
    ack: Option<AckFuture>,
}

/// The processor.
pub struct Jetstream {
    cfg: JetstreamConfig,
    name: String,
    rt: tokio::runtime::Runtime,
    js: Js,
    stream_ready: bool,
    in_flight: VecDeque<Pending>,
    stats: Arc<Stats>,
}

/// A subject token from untrusted text: `.`, `*`, `>`, whitespace and
/// control characters become `_`; at most 64 bytes; never empty.
pub fn token(s: &str) -> String {
    let mut t: String = s
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if t.len() > 64 {
        let mut cut = 64;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    if t.is_empty() {
        t.push('_');
    }
    t
}

impl Jetstream {
    /// Starts the client (it connects, and reconnects, in the background:
    /// a server that is away at start is waited for).
    pub fn start(c: &JetstreamConfig, ctx: &Context<'_>) -> io::Result<Jetstream> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("proc-{}-nats", ctx.name))
            .enable_all()
            .build()?;
        let urls = servers(&c.url);
        let timeout = c.ack_timeout;
        let client = rt
            .block_on(async move {
                async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .max_reconnects(None)
                    .request_timeout(Some(timeout))
                    .connection_timeout(Duration::from_secs(5))
                    .connect(urls)
                    .await
            })
            .map_err(|e| io::Error::other(format!("nats {}: {e}", c.url)))?;
        let mut js = {
            let _enter = rt.enter();
            async_nats::jetstream::new(client)
        };
        js.set_timeout(c.ack_timeout);
        Ok(Jetstream {
            cfg: c.clone(),
            name: ctx.name.to_owned(),
            rt,
            js,
            stream_ready: false,
            in_flight: VecDeque::new(),
            stats: ctx.stats.clone(),
        })
    }

    fn warn(&self, what: &str) {
        WARN.warn(|| {
            format!(
                "processor {:?} (jetstream {} stream {}): {what}; {} batches in flight",
                self.name,
                self.cfg.url,
                self.cfg.stream,
                self.in_flight.len()
            )
        });
    }

    /// Makes sure the stream exists (created with the configured subjects
    /// when missing).
    fn ensure_stream(&mut self) -> bool {
        if self.stream_ready {
            return true;
        }
        let cfg = stream::Config {
            name: self.cfg.stream.clone(),
            subjects: vec![format!("{}.>", self.cfg.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: self.cfg.replicas,
            ..Default::default()
        };
        let js = self.js.clone();
        let result = self.rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(5), js.get_or_create_stream(cfg)).await
        });
        match result {
            Ok(Ok(_)) => {
                self.stream_ready = true;
                true
            }
            Ok(Err(e)) => {
                self.warn(&format!("cannot create or find the stream: {e}"));
                false
            }
            Err(_) => {
                self.warn("the server did not answer (stream lookup)");
                false
            }
        }
    }

    /// Publishes every pending batch that has no acknowledgement future.
    fn publish_unsent(&mut self) {
        let js = self.js.clone();
        for p in self.in_flight.iter_mut().filter(|p| p.ack.is_none()) {
            p.attempts += 1;
            let (js, subject, payload, id) = (
                js.clone(),
                p.subject.clone(),
                p.payload.clone(),
                p.id.clone(),
            );
            let fut: Result<PublishAckFuture, String> = self.rt.block_on(async move {
                let r = match id {
                    Some(id) => {
                        let mut h = async_nats::HeaderMap::new();
                        h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                        js.publish_with_headers(subject, h, payload).await
                    }
                    None => js.publish(subject, payload).await,
                };
                r.map_err(|e| e.to_string())
            });
            p.ack = Some(match fut {
                Ok(f) => Box::pin(
                    f.into_future()
                        .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                ),
                Err(e) => Box::pin(std::future::ready(Err(e))),
            });
        }
    }

    /// Waits for the oldest publish's acknowledgement. On failure, every
    /// publish in flight is sent again (in order) after a pause; a batch
    /// past `max_attempts` is dropped and counted. Returns false when
    /// nothing was settled (failure).
    fn settle_oldest(&mut self) -> bool {
        let Some(front) = self.in_flight.front_mut() else {
            return true;
        };
        let Some(ack) = front.ack.take() else {
            self.publish_unsent();
            return false;
        };
        let attempts = front.attempts;
        match self.rt.block_on(ack) {
            Ok(()) => {
                self.in_flight.pop_front();
                true
            }
            Err(e) => {
                self.warn(&format!("publish not acknowledged ({e}); sending again"));
                if e.contains("stream not found") || e.contains("no responders") {
                    self.stream_ready = false;
                }
                let max = self.cfg.max_attempts;
                if max > 0 && attempts >= max {
                    let p = self.in_flight.pop_front().expect("front");
                    self.count_dropped(p.records);
                }
                // Re-send everything in flight, in order: the ones already
                // stored are dropped by the stream as duplicates.
                for p in self.in_flight.iter_mut() {
                    p.ack = None;
                }
                std::thread::sleep(Duration::from_millis(100));
                if self.ensure_stream() {
                    self.publish_unsent();
                }
                false
            }
        }
    }

    fn count_dropped(&self, records: u64) {
        self.stats.dropped.fetch_add(records, Ordering::Relaxed);
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes acknowledgements that have already arrived, without waiting.
    fn settle_ready(&mut self) {
        loop {
            let ready = {
                let _enter = self.rt.enter();
                match self.in_flight.front_mut().and_then(|f| f.ack.as_mut()) {
                    Some(ack) => ack.now_or_never(),
                    None => None,
                }
            };
            match ready {
                Some(Ok(())) => {
                    self.in_flight.pop_front();
                }
                Some(Err(e)) => {
                    // settle_oldest re-sends.
                    if let Some(f) = self.in_flight.front_mut() {
                        f.ack = Some(Box::pin(std::future::ready(Err(e))));
                    }
                    self.settle_oldest();
                    return;
                }
                None => return,
            }
        }
    }
}

/// A batch larger than the server takes, as batches of consecutive records
/// that each fit (halving until they do), in order; and the number of
/// records that alone are too large (dropped).
fn split(body: &[u8], max: usize) -> (Vec<Vec<u8>>, u64) {
    use distlog_core::wire::{encode_batch_to_vec, Batch};
    let Ok(archived) = distlog_core::wire::access_batch(body) else {
        return (Vec::new(), 0);
    };
    let batch = archived.to_batch();
    let (mut out, mut lost) = (Vec::new(), 0);
    let mut stack = vec![batch];
    while let Some(mut b) = stack.pop() {
        let enc = encode_batch_to_vec(&b);
        if enc.len() <= max {
            out.push(enc.to_vec());
            continue;
        }
        if b.records.len() <= 1 {
            lost += b.records.len() as u64;
            continue;
        }
        let mid = b.records.len() / 2;
        let tail = Batch {
            sender: b.sender.clone(),
            first_seq: b.first_seq + mid as u64,
            dropped: b.dropped,
            records: b.records.split_off(mid),
        };
        stack.push(tail);
        stack.push(b);
    }
    (out, lost)
}

/// The message id of a batch: sender identity and sequence range (none for
/// Python records, which have no sequence numbers). Over CURVE the client's
/// key (hex) leads it, so a client claiming another's host, pid and
/// instance cannot make the stream drop that sender's batches as
/// duplicates.
fn message_id(kind: u8, peer: Option<&[u8; 32]>, b: distlog_core::wire::BatchRef<'_>) -> Option<String> {
    let s = b.sender();
    let instance = s.instance.to_native();
    if instance == 0 {
        return None;
    }
    let mut key = String::new();
    for byte in peer.into_iter().flatten() {
        let _ = write!(key, "{byte:02x}");
    }
    if peer.is_some() {
        key.push(':');
    }
    Some(format!(
        "{key}{}:{}:{instance:x}:{}:{}:{}",
        token(s.host.as_str()),
        s.pid.to_native(),
        b.first_seq(),
        b.len(),
        char::from(kind)
    ))
}

impl Processor for Jetstream {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        if d.is_empty() {
            return Ok(());
        }
        let host = token(d.batch.get().sender().host.as_str());
        let subject = format!(
            "{}.{}.{}.{host}",
            self.cfg.subject_prefix,
            token(&char::from(d.topic.system).to_string()),
            token(&char::from(d.topic.kind).to_string()),
        );
        let max_payload = match self.js.client().server_info().max_payload {
            0 => 1 << 20, // not connected yet: the server's default
            n => n,
        };
        for body in d.bodies() {
            let parts = if body.len() <= max_payload {
                vec![body.into_owned()]
            } else {
                let (parts, lost) = split(&body, max_payload);
                if lost > 0 {
                    self.count_dropped(lost);
                    self.warn(&format!(
                        "dropped {lost} records each larger than the server's max_payload ({max_payload} bytes)"
                    ));
                }
                parts
            };
            for body in parts {
                // Bodies are validated batches (as received, or re-encoded).
                let (records, id) = match distlog_core::wire::access_batch(&body) {
                    Ok(b) => (b.len() as u64, message_id(d.topic.kind, d.peer.as_ref(), b)),
                    Err(_) => continue,
                };
                self.in_flight.push_back(Pending {
                    subject: subject.clone(),
                    id,
                    payload: Bytes::from(body),
                    records,
                    attempts: 0,
                    ack: None,
                });
            }
        }
        if !self.ensure_stream() {
            // Keep them; the next delivery or tick tries again, and the
            // in-flight bound below makes this wait.
        } else {
            self.publish_unsent();
        }
        self.settle_ready();
        while self.in_flight.len() > self.cfg.max_in_flight {
            if !self.settle_oldest() && !self.ensure_stream() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if !self.in_flight.is_empty() && self.ensure_stream() {
            self.publish_unsent();
            self.settle_ready();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.cfg.shutdown_timeout;
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            if self.ensure_stream() {
                self.publish_unsent();
                self.settle_oldest();
            } else {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let lost: u64 = self.in_flight.drain(..).map(|p| p.records).sum();
        if lost > 0 {
            self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
            return Err(io::Error::other(format!(
                "the stream did not acknowledge the last {lost} records before shutdown; counted as dropped"
            )));
        }
        let client = self.js.clone();
        let _ = self.rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(2), client.client().flush()).await
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn oversized_batches_split_in_order() {
        use distlog_core::record::Record;
        use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
        let b = Batch {
            first_seq: 100,
            records: (0..10)
                .map(|i| Record {
                    seq: 100 + i,
                    message: if i == 7 {
                        "x".repeat(5000)
                    } else {
                        format!("m{i}")
                    },
                    ..Record::default()
                })
                .collect(),
            ..Batch::default()
        };
        let body = encode_batch_to_vec(&b);
        let (parts, lost) = super::split(&body, 2048);
        assert_eq!(lost, 1);
        let seqs: Vec<u64> = parts
            .iter()
            .flat_map(|p| {
                let a = access_batch(p).unwrap();
                assert!(p.len() <= 2048);
                assert_eq!(a.first_seq(), a.record(0).unwrap().seq());
                a.records().map(|r| r.seq()).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(seqs, [100, 101, 102, 103, 104, 105, 106, 108, 109]);
    }

    #[test]
    fn subject_tokens_are_safe() {
        assert_eq!(token("web-1.example.com"), "web-1_example_com");
        assert_eq!(token(""), "_");
        assert_eq!(token("a b*>\n"), "a_b___");
        assert_eq!(token(&"é".repeat(40)).len(), 64);
    }
}
