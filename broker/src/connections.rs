//! The cap on client connections across all ingest sockets
//! (`max_connections`), which makes the broker's ingest memory bounded:
//! ZeroMQ queues at most `ingest_hwm` messages of at most `max_message`
//! bytes per connection, so at most `max_connections` x `ingest_hwm` x
//! `max_message` in all.
//!
//! Invariants:
//!
//! - `live` holds the connections admitted and not yet seen closed, keyed
//!   by (ingest socket, fd); its size is the `distlogd_connections` gauge.
//!   A connection is counted once: an fd number that is accepted again while
//!   still in `live` means the earlier connection with that number closed
//!   unseen, and the new one takes its place.
//! - A connection that would make `live` larger than the cap is closed
//!   (`shutdown(2)`: libzmq then sees the error and drops the session) and
//!   counted as `distlogd_rejected_total{reason="too_many_connections"}`;
//!   it never enters `live`, so its disconnection does not decrement.
//! - Only an fd that is, right now, a connected stream socket whose local
//!   address is the ingest socket's own is ever shut down: the events are
//!   read after the fact, so the fd may have been closed and its number
//!   reused for another socket (metrics, publish, a file).
//! - Entries whose fd is no longer such a socket are dropped every
//!   [`SWEEP`], so a lost disconnection event cannot hold a slot forever.
//!
//! The connection is closed after libzmq accepted it, usually during its
//! handshake, before any message. A client that completes its handshake
//! before the monitor thread sees it may get messages in before it is
//! closed; messages in flight on the closed connection are lost as on any
//! dropped connection (acknowledged clients resend them). ZeroMQ clients
//! reconnect (every 100 ms by default) and get in once a slot is free.

use crate::metrics::Metrics;
use crate::warn::RateLimited;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often entries of closed fds are dropped (see the invariants).
pub const SWEEP: Duration = Duration::from_secs(2);

/// Descriptors the broker needs besides its connections (store segments,
/// the metrics endpoint, processors' sockets, libzmq's own).
const FD_HEADROOM: u64 = 256;

static WARN: RateLimited = RateLimited::new(Duration::from_secs(10));

/// Where an ingest socket listens, as `getsockname(2)` reports it for the
/// connections it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// A TCP address; an unspecified IP (`0.0.0.0`, `::`) matches any.
    Tcp(SocketAddr),
    /// A Unix socket path (`ipc://`); abstract names start with a NUL.
    Ipc(Vec<u8>),
    /// Another transport: its connections are neither counted nor closed.
    Other,
}

impl Local {
    /// The address of a bound endpoint, as libzmq reports it
    /// (`ZMQ_LAST_ENDPOINT`: `tcp://127.0.0.1:5010`, `tcp://[::1]:5010`,
    /// `ipc:///run/distlog.sock`, `ipc://@name`).
    pub fn parse(endpoint: &str) -> Local {
        if let Some(a) = endpoint.strip_prefix("tcp://") {
            return a.parse().map(Local::Tcp).unwrap_or(Local::Other);
        }
        if let Some(p) = endpoint.strip_prefix("ipc://") {
            return match p.strip_prefix('@') {
                Some(name) => Local::Ipc([&[0u8][..], name.as_bytes()].concat()),
                None => Local::Ipc(p.as_bytes().to_vec()),
            };
        }
        Local::Other
    }

    fn matches(&self, got: &Local) -> bool {
        match (self, got) {
            (Local::Tcp(want), Local::Tcp(got)) => {
                want.port() == got.port()
                    && (want.ip().is_unspecified() || same_ip(want.ip(), got.ip()))
            }
            (Local::Ipc(want), Local::Ipc(got)) => want == got,
            _ => false,
        }
    }
}

/// IPv4 addresses compare equal to their IPv4-mapped IPv6 form (a
/// dual-stack socket reports those).
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    v6(a) == v6(b)
}

/// The live connections of all ingest sockets and the cap on them.
pub struct Connections {
    /// Per ingest socket, in the monitor's order.
    locals: Vec<Local>,
    live: HashSet<(usize, i32)>,
    /// Closed for being over the cap, their disconnection not seen yet.
    refused: HashSet<(usize, i32)>,
    max: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    swept: Instant,
}

impl Connections {
    /// No connections yet, on ingest sockets bound to `locals`; `max` may
    /// change while the broker runs (a reload).
    pub fn new(locals: Vec<Local>, max: Arc<AtomicUsize>, metrics: Arc<Metrics>) -> Connections {
        Connections {
            locals,
            live: HashSet::new(),
            refused: HashSet::new(),
            max,
            metrics,
            swept: Instant::now(),
        }
    }

    /// Socket `socket` accepted a connection on `fd` (`ZMQ_EVENT_ACCEPTED`):
    /// counts it, or closes it when the cap is reached.
    pub fn accepted(&mut self, socket: usize, fd: i32) {
        let Some(local) = self.locals.get(socket) else {
            return;
        };
        if *local == Local::Other {
            return;
        }
        // An fd number comes back only after it was closed.
        self.refused.remove(&(socket, fd));
        if self.live.contains(&(socket, fd)) {
            return;
        }
        let max = self.max.load(Ordering::Relaxed);
        if self.live.len() < max {
            self.live.insert((socket, fd));
            self.publish();
            return;
        }
        self.metrics.reject("too_many_connections");
        let open = self.live.len();
        WARN.warn(|| {
            format!(
                "closed a new client connection: {open} connections are open and max_connections is {max}; raise max_connections (sizing ingest_hwm x max_message for it) or find the clients holding so many"
            )
        });
        if local_address(fd).is_some_and(|got| local.matches(&got)) {
            // SAFETY: `fd` is an open stream socket accepted on this ingest
            // socket (checked just above), which libzmq owns and closes;
            // shutdown(2) only ends its I/O, it does not free the number.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            self.refused.insert((socket, fd));
        }
    }

    /// Whether the connection on `fd` of `socket` was closed for being over
    /// the cap (its handshake then fails; that is not counted again).
    pub fn was_refused(&self, socket: usize, fd: i32) -> bool {
        self.refused.contains(&(socket, fd))
    }

    /// The connection on `fd` of `socket` closed (`ZMQ_EVENT_DISCONNECTED`).
    pub fn disconnected(&mut self, socket: usize, fd: i32) {
        self.refused.remove(&(socket, fd));
        if self.live.remove(&(socket, fd)) {
            self.publish();
        }
    }

    /// Every [`SWEEP`], drops the entries whose fd is no longer a
    /// connection of their ingest socket.
    pub fn sweep(&mut self) {
        if self.swept.elapsed() < SWEEP {
            return;
        }
        self.swept = Instant::now();
        let locals = &self.locals;
        let ours =
            |&(s, fd): &(usize, i32)| local_address(fd).is_some_and(|a| locals[s].matches(&a));
        let before = self.live.len();
        self.live.retain(ours);
        self.refused.retain(ours);
        if self.live.len() != before {
            self.publish();
        }
    }

    fn publish(&self) {
        let n = self.live.len() as u64;
        self.metrics.connections.store(n, Ordering::Relaxed);
    }
}

/// The local address of `fd` if it is a connected (not listening) stream
/// socket, TCP or Unix; `None` for anything else or a closed fd.
fn local_address(fd: i32) -> Option<Local> {
    let opt = |name: libc::c_int| -> Option<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of an int and its
        // length; on a closed or non-socket fd the call fails (EBADF,
        // ENOTSOCK) without touching them.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    if opt(libc::SO_TYPE)? != libc::SOCK_STREAM || opt(libc::SO_ACCEPTCONN)? != 0 {
        return None;
    }
    // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is large enough for any address and `len` says so; the
    // kernel writes at most `len` bytes and the actual length back.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says `ss` holds a sockaddr_in, which fits.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(Local::Tcp(SocketAddr::new(
                ip.into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says `ss` holds a sockaddr_in6, which fits.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(Local::Tcp(SocketAddr::new(
                ip.into(),
                u16::from_be(a.sin6_port),
            )))
        }
        libc::AF_UNIX => {
            // SAFETY: the family says `ss` holds a sockaddr_un, which fits.
            let a: libc::sockaddr_un =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            let n = (len as usize)
                .saturating_sub(std::mem::offset_of!(libc::sockaddr_un, sun_path))
                .min(a.sun_path.len());
            let mut path: Vec<u8> = a.sun_path[..n].iter().map(|&c| c as u8).collect();
            // A path name is NUL-terminated; an abstract one starts with NUL.
            if path.first() != Some(&0) {
                if let Some(end) = path.iter().position(|&c| c == 0) {
                    path.truncate(end);
                }
            }
            Some(Local::Ipc(path))
        }
        _ => None,
    }
}

/// Raises the soft limit on open files (up to the hard limit) so that
/// `max_connections` connections fit beside the broker's other
/// descriptors; warns when the hard limit is too low for that. Past the
/// limit the kernel, not the cap, refuses connections, and libzmq retries
/// the accept in a loop.
pub fn fit_fd_limit(max_connections: usize) {
    let want = max_connections as u64 + FD_HEADROOM;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= want {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: want.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit within the hard limit.
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
    if !ok || raised.rlim_cur < want {
        eprintln!(
            "distlogd: warning: max_connections is {max_connections} but only {} files may be open (ulimit -n; about {FD_HEADROOM} go to other uses); raise the limit (systemd: LimitNOFILE=) or lower max_connections",
            if ok { raised.rlim_cur } else { lim.rlim_cur }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_to_the_addresses_getsockname_reports() {
        let l = Local::parse("tcp://0.0.0.0:5010");
        assert!(l.matches(&Local::Tcp("10.1.2.3:5010".parse().unwrap())));
        assert!(!l.matches(&Local::Tcp("10.1.2.3:5011".parse().unwrap())));
        let l = Local::parse("tcp://127.0.0.1:5010");
        assert!(l.matches(&Local::Tcp("127.0.0.1:5010".parse().unwrap())));
        assert!(l.matches(&Local::Tcp("[::ffff:127.0.0.1]:5010".parse().unwrap())));
        assert!(!l.matches(&Local::Tcp("127.0.0.2:5010".parse().unwrap())));
        assert_eq!(Local::parse("ipc://@x"), Local::Ipc(b"\0x".to_vec()));
        assert_eq!(
            Local::parse("ipc:///run/d.sock"),
            Local::Ipc(b"/run/d.sock".to_vec())
        );
        assert_eq!(Local::parse("inproc://x"), Local::Other);
        assert!(!Local::Other.matches(&Local::Other));
    }

    #[test]
    fn the_cap_closes_only_real_connections_and_counts_each_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let max = Arc::new(AtomicUsize::new(1));
        let mut c = Connections::new(vec![Local::Tcp(addr)], max.clone(), metrics.clone());
        let gauge = || metrics.connections.load(Ordering::Relaxed);
        use std::os::fd::AsRawFd;
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let (a, _) = listener.accept().unwrap();
        c.accepted(0, a.as_raw_fd());
        c.accepted(0, a.as_raw_fd());
        assert_eq!(gauge(), 1, "an fd accepted twice counts once");
        // Over the cap: a real connection of this listener is shut down.
        let mut b_client = std::net::TcpStream::connect(addr).unwrap();
        let (b, _) = listener.accept().unwrap();
        c.accepted(0, b.as_raw_fd());
        assert!(c.was_refused(0, b.as_raw_fd()));
        use std::io::Read;
        let mut buf = [0u8; 8];
        assert_eq!(b_client.read(&mut buf).unwrap(), 0, "closed");
        c.disconnected(0, b.as_raw_fd());
        assert_eq!(gauge(), 1, "a refused connection does not decrement");
        // An fd that is not one of the listener's connections (the
        // listener itself; a file) is never touched.
        c.accepted(0, listener.as_raw_fd());
        assert!(!c.was_refused(0, listener.as_raw_fd()));
        let f = std::fs::File::open("/dev/null").unwrap();
        c.accepted(0, f.as_raw_fd());
        assert!(!c.was_refused(0, f.as_raw_fd()));
        assert_eq!(
            metrics.snapshot().rejected.get("too_many_connections"),
            Some(&3)
        );
        // A live count: a raised cap admits at once; a closed connection
        // whose disconnection was lost is swept.
        max.store(2, Ordering::Relaxed);
        let _d = std::net::TcpStream::connect(addr).unwrap();
        let (d, _) = listener.accept().unwrap();
        c.accepted(0, d.as_raw_fd());
        assert_eq!(gauge(), 2);
        drop(d);
        c.swept = Instant::now() - SWEEP;
        c.sweep();
        assert_eq!(gauge(), 1);
        c.disconnected(0, a.as_raw_fd());
        assert_eq!(gauge(), 0);
    }
}
