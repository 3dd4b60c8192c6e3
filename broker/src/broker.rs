//! A running broker: sockets, the ingest thread, workers, the dispatcher
//! and the processors, wired together.
//!
//! ```text
//! PULL sockets ─ ingest ─┬─ worker 0 ─┬─ dispatcher ─┬─ store   (own thread, bounded queue)
//!   (recv only)          └─ worker 1 ─┘  (in order)  ├─ publish
//!                        validate, decode, filter    └─ ...
//! ```

use crate::config::Checked;
use crate::dispatch::{Control, Dispatcher};
use crate::metrics::{Metrics, Snapshot};
use crossbeam_channel::bounded;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Messages waiting per worker, in and out. Batches are held in ZeroMQ's
/// buffers until stored, so this bounds memory too (a client's batch is up
/// to 128 KiB by default): enough to keep the workers busy, no more.
const WORKER_QUEUE: usize = 16;

/// A running broker.
pub struct Broker {
    stop: Arc<AtomicBool>,
    allow: Option<crate::zap::Allow>,
    /// Stopped after every other thread, so no CURVE socket is ever open
    /// without its handler.
    zap: Option<crate::zap::Zap>,
    control: crossbeam_channel::Sender<Control>,
    /// `max_connections`, read by the monitor thread; reloads change it.
    max_connections: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    threads: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Binds the ingest endpoints, starts the processors and the threads.
    pub fn start(checked: &Checked) -> Result<Broker, String> {
        let c = &checked.config;
        let zmq = zmq::Context::new();
        let metrics = Arc::new(Metrics::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let curve = c.curve.as_ref().map(|cc| cc.load()).transpose()?;
        let (allow, zap) = match &curve {
            Some(cv) => {
                let allow: crate::zap::Allow = Arc::new(parking_lot::RwLock::new(cv.allow.clone()));
                let zap = crate::zap::start(&zmq, allow.clone(), metrics.clone())?;
                (Some(allow), Some(zap))
            }
            None => (None, None),
        };
        let mut sockets = Vec::new();
        let endpoints: Vec<&String> = c.listen.iter().chain(&c.ack_listen).collect();
        for i in 0..endpoints.len() {
            let kind = if i < c.listen.len() {
                zmq::PULL
            } else {
                zmq::ROUTER
            };
            let mut s = zmq.socket(kind).map_err(|e| e.to_string())?;
            s.set_maxmsgsize(c.max_message.min(i64::MAX as u64) as i64)
                .map_err(|e| e.to_string())?;
            s.set_rcvhwm(c.ingest_hwm).map_err(|e| e.to_string())?;
            s.set_linger(0).map_err(|e| e.to_string())?;
            if c.ingest_rcvbuf > 0 {
                // Checked to fit an i32.
                s.set_rcvbuf(c.ingest_rcvbuf as i32)
                    .map_err(|e| e.to_string())?;
            }
            if let Some(cv) = &curve {
                distlog::curve::set_server(&mut s, &cv.keys, crate::config::curve::DOMAIN)
                    .map_err(|e| e.to_string())?;
            }
            sockets.push(s);
        }
        // Monitored before they bind, so no connection or handshake goes
        // unseen; read once bound, when their addresses are known.
        let watch = crate::monitor::watch(&zmq, &sockets)?;
        let mut locals = Vec::new();
        for (s, ep) in sockets.iter().zip(&endpoints) {
            s.bind(ep)
                .map_err(|e| format!("cannot listen on {ep}: {e}"))?;
            let bound = s.get_last_endpoint().ok().and_then(|r| r.ok());
            locals.push(crate::connections::Local::parse(
                bound.as_deref().unwrap_or(ep),
            ));
        }
        crate::connections::fit_fd_limit(c.max_connections);
        let max_connections = Arc::new(AtomicUsize::new(c.max_connections));
        threads.push(watch.start(
            locals,
            curve.is_some(),
            max_connections.clone(),
            metrics.clone(),
            stop.clone(),
        )?);
        if let Some(addr) = &c.metrics.listen {
            crate::metrics_http::serve(addr, metrics.clone()).map_err(|e| e.to_string())?;
        }
        let (acks_tx, acks_rx) = crossbeam_channel::unbounded();
        let mut dispatcher = Dispatcher::start(checked, zmq, metrics.clone(), acks_tx)?;
        let rules = dispatcher.rules();
        let (side_tx, side_rx) = bounded(WORKER_QUEUE);
        if !c.jetstream_inputs.is_empty() {
            dispatcher.set_side_input(side_rx);
        }
        let mut to_workers = Vec::new();
        let mut from_workers = Vec::new();
        for i in 0..c.workers {
            let (in_tx, in_rx) = bounded(WORKER_QUEUE);
            let (out_tx, out_rx) = bounded(WORKER_QUEUE);
            to_workers.push(in_tx);
            from_workers.push(out_rx);
            let (rules, metrics, allow) = (rules.clone(), metrics.clone(), allow.clone());
            threads.push(spawn(&format!("worker-{i}"), move || {
                crate::ingest::work(in_rx, out_tx, &rules, &metrics, allow)
            })?);
        }
        let (control, control_rx) = bounded(4);
        threads.push(spawn("dispatch", move || {
            dispatcher.run(from_workers, control_rx)
        })?);
        let ingest_stop = stop.clone();
        let sockets = crate::ingest::Sockets {
            all: sockets,
            acked: c.ack_listen.len(),
            acks: acks_rx,
        };
        threads.push(spawn("ingest", move || {
            crate::ingest::receive(sockets, to_workers, &ingest_stop)
        })?);
        // Last, so that they stop first (and acknowledge what they handed
        // on) while the dispatcher still runs.
        for (i, jc) in c.jetstream_inputs.iter().enumerate() {
            let (jc, tx, rules, m, stop) = (
                jc.clone(),
                side_tx.clone(),
                rules.clone(),
                metrics.clone(),
                stop.clone(),
            );
            threads.push(spawn(&format!("jetstream-{i}"), move || {
                crate::jetstream_input::run(jc, tx, rules, m, stop)
            })?);
        }
        drop(side_tx);
        Ok(Broker {
            stop,
            allow,
            zap,
            control,
            max_connections,
            metrics,
            threads,
        })
    }

    /// The broker's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Applies a new config (see [`Dispatcher`]'s reload); on error the old
    /// one keeps running.
    pub fn reload(&self, checked: Checked) -> Result<(), String> {
        // The allow-list changes at once; keys and endpoints at restart.
        if let (Some(allow), Some(cc)) = (&self.allow, &checked.config.curve) {
            *allow.write() = cc.load()?.allow;
        }
        let max_connections = checked.config.max_connections;
        let (tx, rx) = bounded(1);
        self.control
            .send(Control::Reload(Box::new(checked), tx))
            .map_err(|_| "the broker is stopping".to_owned())?;
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| "reload did not finish within 60 s".to_owned())??;
        // The cap changes at once for new connections; open ones above a
        // lowered cap stay.
        self.max_connections
            .store(max_connections, Ordering::Relaxed);
        Ok(())
    }

    /// Stops taking input, hands everything received to the processors,
    /// waits until they have flushed, and returns the final counters.
    pub fn stop(self) -> Snapshot {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.into_iter().rev() {
            let _ = t.join();
        }
        // Every CURVE socket (ingest, publish) is closed now.
        if let Some(zap) = self.zap {
            zap.stop();
        }
        self.metrics.snapshot()
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}
