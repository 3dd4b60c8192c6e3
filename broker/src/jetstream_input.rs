//! JetStream inputs: a durable pull consumer per `jetstream_inputs` entry,
//! read like another ingest socket (see `docs/JETSTREAM.md`).
//!
//! Each message's subject gives the topic (`<prefix>.<system>.<kind>.<host>`:
//! the system and kind tokens, encoding `R`) and its payload is the batch
//! body; both go through [`crate::ingest::decode`] with the broker's rules,
//! exactly as a ZeroMQ message would. The decoded batch goes to the
//! dispatcher (which tracks sequence gaps and hands it to the processors)
//! with an [`AckToken`] that travels in every delivery of it: the message
//! is acknowledged when the last processor is done with it, which for
//! `postgres` is after the commit of its records and for `store` after
//! the write. A processor that refuses it (a full buffer) makes it a
//! negative acknowledgement: the stream redelivers it, to this broker or
//! another sharing the consumer. A message the broker rejects (bad
//! subject, bad body) or routes nowhere is acknowledged at once, so that it
//! is not redelivered forever. A broker that stops or crashes before
//! acknowledging gets the message redelivered (after `ack_wait`), to
//! itself or to another broker sharing the consumer: delivery is at least
//! once, and exactly once where the destination skips what it has (the
//! `postgres` processor, by record identity).
//!
//! Memory: the pull asks for at most `fetch` messages and 8 MiB at a time,
//! and more only as the broker takes them.

use crate::acks::AckToken;
use crate::config::JetstreamInputConfig;
use crate::ingest::{decode, Decoded};
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::warn::RateLimited;
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A decoded message for the dispatcher, and the token that acknowledges
/// it when the last processor is done with it.
pub type Handoff = (Decoded, AckToken);

/// How long the stream waits before redelivering a message a processor
/// refused (its buffer was full): long enough not to spin while the
/// database is away.
const NAK_DELAY: Duration = Duration::from_secs(1);

/// How long one pull request lives.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The server's idle heartbeat on a pull request (missing two of them
/// means the request or the connection is gone).
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);

/// Consumer info requests (100 ms apart) before giving up on a leader
/// and reconnecting.
const LEADER_TRIES: usize = 100;

/// Most bytes per pull.
const FETCH_BYTES: usize = 8 << 20;

static WARN: RateLimited = RateLimited::new(Duration::from_secs(10));

/// The topic frame of a subject `<prefix...>.<system>.<kind>.<host>`:
/// `[system, kind, b'R']`, or an empty frame (which `decode` rejects) when
/// the subject does not have that shape.
pub fn topic_of(subject: &str) -> Vec<u8> {
    let mut t = subject.rsplit('.');
    let (_host, kind, system) = (t.next(), t.next(), t.next());
    match (system, kind) {
        (Some(s), Some(k)) if s.len() == 1 && k.len() == 1 => {
            vec![
                s.as_bytes()[0],
                k.as_bytes()[0],
                distlog_core::wire::ENCODING_BATCH,
            ]
        }
        _ => Vec::new(),
    }
}

/// Runs one input until `stop` is set; reconnects by itself.
pub fn run(
    cfg: JetstreamInputConfig,
    out: crossbeam_channel::Sender<Handoff>,
    rules: Arc<RwLock<Arc<RuleSet>>>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("jetstream-input-nats")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("distlogd: error: jetstream input {}: {e}", cfg.consumer);
            return;
        }
    };
    let warn = |what: String| {
        WARN.warn(|| {
            format!(
                "jetstream input (stream {} consumer {} at {}): {what}",
                cfg.stream, cfg.consumer, cfg.url
            )
        })
    };
    rt.block_on(async {
        while !stop.load(Ordering::Acquire) {
            match consume(&cfg, &out, &rules, &metrics, &stop).await {
                Ok(()) => return,
                Err(e) => {
                    warn(e);
                    for _ in 0..10 {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    });
}

/// Waits until the consumer answers with a leader (a replicated consumer
/// just created is still electing one): a pull request sent before that
/// reaches no leader and is lost, and the broker notices only when two
/// heartbeats are missing, seconds during which the brokers sharing the
/// consumer take everything. The info request is answered by the leader
/// itself, so once it names one, the leader listens for pull requests.
async fn wait_for_leader(consumer: &PullConsumer, stop: &AtomicBool) -> Result<(), String> {
    let mut consumer = consumer.clone();
    let mut last = String::new();
    for _ in 0..LEADER_TRIES {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        match consumer.info().await {
            // No cluster: a single server is the leader.
            Ok(i) => match &i.cluster {
                Some(c) if c.leader.is_none() => last = "no leader yet".to_owned(),
                _ => return Ok(()),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the consumer has no leader: {last}"))
}

/// Connects, finds the stream, makes the durable consumer, and pulls until
/// `stop` (Ok) or a failure (Err, retried by the caller).
async fn consume(
    cfg: &JetstreamInputConfig,
    out: &crossbeam_channel::Sender<Handoff>,
    rules: &RwLock<Arc<RuleSet>>,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .connect(crate::processor::jetstream::servers(&cfg.url))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js
        .get_stream(&cfg.stream)
        .await
        .map_err(|e| format!("no stream: {e}"))?;
    let consumer = stream
        .get_or_create_consumer::<pull::Config>(
            &cfg.consumer,
            pull::Config {
                durable_name: Some(cfg.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: cfg.ack_wait,
                max_ack_pending: cfg.max_ack_pending,
                filter_subject: cfg.filter_subject.clone().unwrap_or_default(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot create the consumer: {e}"))?;
    wait_for_leader(&consumer, stop).await?;
    // A continuous pull: the client keeps a pull request open and asks
    // for more as messages are consumed, at most `fetch` messages and
    // FETCH_BYTES at a time.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(cfg.fetch)
        .max_bytes_per_batch(FETCH_BYTES)
        // Short-lived pull requests with heartbeats: a request the server
        // lost (sent while the consumer's leader was being elected, or to
        // a node that died) is noticed and renewed within seconds, and a
        // new request lets the other brokers sharing the consumer have
        // their turn.
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| format!("pull: {e}"))?;
    let rt = tokio::runtime::Handle::current();
    // Messages handed on whose acknowledgement has not been sent yet.
    let outstanding = Arc::new(AtomicUsize::new(0));
    let result = loop {
        if stop.load(Ordering::Acquire) {
            break Ok(());
        }
        let m = match tokio::time::timeout(Duration::from_millis(200), messages.next()).await {
            Err(_) => continue,
            Ok(None) => break Err("the pull ended".to_owned()),
            Ok(Some(Err(e))) => break Err(format!("pull: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        metrics.messages.fetch_add(1, Ordering::Relaxed);
        let frames = vec![
            zmq::Message::from(topic_of(m.subject.as_str())),
            zmq::Message::from(m.payload.to_vec()),
        ];
        let d = decode(frames, &rules.read().clone());
        let (rt, left) = (rt.clone(), outstanding.clone());
        left.fetch_add(1, Ordering::AcqRel);
        // Acknowledged once every processor is done with it; redelivered
        // at once when one refused it.
        let token = AckToken::call(Box::new(move |taken| {
            rt.spawn(async move {
                let _ = if taken {
                    m.ack().await
                } else {
                    m.ack_with(AckKind::Nak(Some(NAK_DELAY))).await
                };
                left.fetch_sub(1, Ordering::AcqRel);
            });
        }));
        if let Err(crossbeam_channel::SendError((_, token))) = out.send((d, token)) {
            // The broker is stopping: not taken, let it be redelivered.
            token.refuse();
            break Ok(());
        }
    };
    // Let the acknowledgements of what was handed on go out (the
    // dispatcher and the processors still run: they stop after the
    // inputs). What is still unacknowledged after this is redelivered
    // after `ack_wait`.
    for _ in 0..100 {
        if outstanding.load(Ordering::Acquire) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    result
}

#[cfg(test)]
mod tests {
    use super::topic_of;

    #[test]
    fn subjects_give_topics() {
        assert_eq!(topic_of("distlog.T.L.web-1"), b"TLR");
        assert_eq!(topic_of("a.b.P.P.h"), b"PPR");
        assert!(topic_of("x").is_empty());
        assert!(topic_of("distlog.TT.L.h").is_empty());
        assert!(topic_of("").is_empty());
    }
}
