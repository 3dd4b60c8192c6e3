//! Handing encoded batches to ZeroMQ without copying them, and getting the
//! buffers back for the next batch.
//!
//! `zmq::Message::from(&[u8])` copies the body (a batch is tens of KiB), and
//! `Message::from(Vec<u8>)` frees it afterwards, so every batch would cost a
//! fresh allocation whose pages fault in on first touch. Measured on the
//! sender thread, that copy and those faults were about a fifth of its time
//! (PERFORMANCE.md, "End to end"). Here the body is lent to ZeroMQ with
//! `zmq_msg_init_data` and a free function that returns the buffer to a
//! bounded pool once ZeroMQ's I/O thread has written it, so the sender
//! reuses the same few buffers in steady state.

use crossbeam_queue::ArrayQueue;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Buffers that ZeroMQ has finished with, ready for reuse.
pub(crate) struct BufPool {
    free: ArrayQueue<Vec<u8>>,
    /// Bytes of bodies lent to ZeroMQ and not yet given back.
    lent: AtomicUsize,
}

impl BufPool {
    /// A pool keeping at most `max` idle buffers (extra ones are freed).
    pub(crate) fn new(max: usize) -> Arc<BufPool> {
        Arc::new(BufPool {
            free: ArrayQueue::new(max.max(1)),
            lent: AtomicUsize::new(0),
        })
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        match self.free.pop() {
            Some(mut buf) => {
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Bytes of bodies ZeroMQ holds (queued or being written).
    pub(crate) fn lent(&self) -> usize {
        self.lent.load(Ordering::Relaxed)
    }

    fn give_back(&self, buf: Vec<u8>) {
        self.lent.fetch_sub(buf.len(), Ordering::Relaxed);
        let _ = self.free.push(buf); // a full pool frees the extra buffer
    }
}

/// What ZeroMQ holds while it owns a body: the buffer and where it goes back.
struct Lease {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
}

/// ZeroMQ's free function for lent bodies.
///
/// # Safety
///
/// `hint` must be a pointer from `Box::into_raw(Box<Lease>)` made by
/// [`send_pooled`], passed here exactly once (ZeroMQ calls a message's free
/// function once, when its last reference goes).
unsafe extern "C" fn return_to_pool(_data: *mut c_void, hint: *mut c_void) {
    // SAFETY: per this function's contract, `hint` is the leaked lease of
    // this message and nothing else refers to it any more.
    let lease = unsafe { Box::from_raw(hint.cast::<Lease>()) };
    let Lease { buf, pool } = *lease;
    pool.give_back(buf);
}

/// A `zmq_msg_t` with the pointer alignment libzmq's own declaration has.
#[repr(C, align(8))]
struct Msg(zmq_sys::zmq_msg_t);

/// Sends `body` as a (last or only) frame on `socket` without copying it;
/// once ZeroMQ is done with it, the buffer returns to `pool`. On an error
/// the buffer returns to the pool at once.
pub(crate) fn send_pooled(
    socket: &mut zmq::Socket,
    body: Vec<u8>,
    pool: &Arc<BufPool>,
    flags: i32,
) -> Result<(), zmq::Error> {
    if body.is_empty() {
        return socket.send(&[][..], flags);
    }
    let data = body.as_ptr() as *mut c_void;
    let len = body.len();
    // Counted before ZeroMQ can give it back (from its I/O thread).
    pool.lent.fetch_add(len, Ordering::Relaxed);
    let lease = Box::into_raw(Box::new(Lease {
        buf: body,
        pool: pool.clone(),
    }));
    let mut msg = Msg(zmq_sys::zmq_msg_t { __: [0; 64] });
    let sock = socket.as_mut_ptr();
    // SAFETY: `data..data + len` is the lease's buffer, which stays put and
    // alive until `return_to_pool` runs (moving a Vec does not move its heap
    // bytes, and nothing else touches the leased Vec). `lease` is handed to
    // ZeroMQ as the hint of exactly this message, whose free function runs
    // once: after the I/O thread wrote it, or from `zmq_msg_close` below if
    // initialising or sending fails. `msg` is aligned as libzmq expects and
    // not used after it is sent or closed; `sock` is a live socket we
    // borrow mutably for the call.
    unsafe {
        if zmq_sys::zmq_msg_init_data(&mut msg.0, data, len, Some(return_to_pool), lease.cast())
            != 0
        {
            let err = zmq::Error::from_raw(zmq_sys::zmq_errno());
            // The message was not initialised: the lease is still ours.
            pool.lent.fetch_sub(len, Ordering::Relaxed);
            drop(Box::from_raw(lease));
            return Err(err);
        }
        if zmq_sys::zmq_msg_send(&mut msg.0, sock, flags) == -1 {
            let err = zmq::Error::from_raw(zmq_sys::zmq_errno());
            zmq_sys::zmq_msg_close(&mut msg.0);
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_arrive_intact_and_buffers_come_back() {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind("inproc://zero-copy").unwrap();
        let mut push = ctx.socket(zmq::PUSH).unwrap();
        push.connect("inproc://zero-copy").unwrap();
        let pool = BufPool::new(4);
        for i in 0..100u32 {
            let mut buf = pool.take(4096);
            buf.extend((0..4096u32).map(|k| (k.wrapping_mul(31) ^ i) as u8));
            let want = buf.clone();
            send_pooled(&mut push, buf, &pool, 0).unwrap();
            assert_eq!(pull.recv_bytes(0).unwrap(), want, "message {i}");
        }
        // inproc hands the message itself to the receiver, which dropped it
        // above: every buffer is back (the pool keeps at most 4).
        assert!(!pool.free.is_empty());
        assert_eq!(pool.lent(), 0, "every body given back is counted back");
        let reused = pool.take(16);
        assert!(reused.is_empty() && reused.capacity() >= 4096);
    }

    #[test]
    fn lent_counts_the_bodies_zeromq_holds() {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind("inproc://lent").unwrap();
        let mut push = ctx.socket(zmq::PUSH).unwrap();
        push.connect("inproc://lent").unwrap();
        let pool = BufPool::new(4);
        for len in [1000, 3000] {
            let mut buf = pool.take(len);
            buf.resize(len, 1);
            send_pooled(&mut push, buf, &pool, 0).unwrap();
        }
        // inproc keeps both messages, bodies and all, until they are read.
        assert_eq!(pool.lent(), 4000);
        assert_eq!(pull.recv_bytes(0).unwrap().len(), 1000);
        assert_eq!(pool.lent(), 3000);
        assert_eq!(pull.recv_bytes(0).unwrap().len(), 3000);
        assert_eq!(pool.lent(), 0);
    }

    #[test]
    fn a_refused_send_returns_the_buffer() {
        let ctx = zmq::Context::new();
        let mut push = ctx.socket(zmq::PUSH).unwrap();
        // Nobody connected: a non-blocking send is refused.
        push.bind("inproc://nobody").unwrap();
        let pool = BufPool::new(2);
        let buf = vec![7u8; 1000];
        let err = send_pooled(&mut push, buf, &pool, zmq::DONTWAIT).unwrap_err();
        assert_eq!(err, zmq::Error::EAGAIN);
        assert_eq!(pool.free.len(), 1);
        assert_eq!(pool.lent(), 0);
    }
}
