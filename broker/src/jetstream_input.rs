//! JetStream inputs: a durable pull consumer per `jetstream_inputs` entry,
//! read like another ingest socket (see `docs/JETSTREAM.md`).
//!
//! Each message's subject gives the topic (`<prefix>.<system>.<kind>.<host>`:
//! the system and kind tokens, encoding `R`) and its payload is the batch
//! body; both go through [`crate::ingest::decode`] with the broker's rules,
//! exactly as a ZeroMQ message would. The decoded batch goes to the
//! dispatcher (which tracks sequence gaps and hands it to the processors),
//! and the message is acknowledged only after the dispatcher has handed it
//! to the processors' queues. A message the broker rejects (bad subject,
//! bad body) is counted as rejected and acknowledged too, so that it is not
//! redelivered forever. A broker that stops or crashes before acknowledging
//! gets the message again (after `ack_wait`): delivery is at least once.
//!
//! Memory: the pull asks for at most `fetch` messages and 8 MiB at a time,
//! and more only as the broker takes them.

use crate::config::JetstreamInputConfig;
use crate::ingest::{decode, Decoded};
use crate::metrics::Metrics;
use crate::rules::RuleSet;
use crate::warn::RateLimited;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use futures_util::StreamExt;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A decoded message for the dispatcher, and what to call once it has been
/// handed to the processors.
pub type Handoff = (Decoded, Box<dyn FnOnce() + Send>);

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
        .connect(cfg.url.as_str())
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
    // A continuous pull: the client keeps a pull request open and asks
    // for more as messages are consumed, at most `fetch` messages and
    // FETCH_BYTES at a time.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(cfg.fetch)
        .max_bytes_per_batch(FETCH_BYTES)
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
        // Acknowledged once the dispatcher has handed it to the processors.
        let handed: Box<dyn FnOnce() + Send> = Box::new(move || {
            rt.spawn(async move {
                let _ = m.ack().await;
                left.fetch_sub(1, Ordering::AcqRel);
            });
        });
        if out.send((d, handed)).is_err() {
            break Ok(()); // the broker is stopping
        }
    };
    // Let the acknowledgements of what was handed on go out (the
    // dispatcher still runs: it stops after the inputs).
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
