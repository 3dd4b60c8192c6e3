//! Shared by the `cli_*` tests: a real broker in a temp dir, and the built
//! `distlog` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("distlog-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// distlogd on a free port, storing under `dir`.
pub struct Broker {
    pub child: Child,
    pub endpoint: String,
}

impl Broker {
    pub fn start(dir: &Path) -> Broker {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .args(["--listen", &endpoint, "--data-dir"])
            .arg(dir.join("store"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Broker { child, endpoint }
    }

    /// SIGTERM: the broker stores everything it received and exits 0.
    pub fn stop(mut self) -> String {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "broker did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read;
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(status.success(), "broker exit {status:?}: {stderr}");
        stderr
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    /// distlogd with `--config FILE`, whose `listen` is `endpoint`.
    pub fn with_config(config: &Path, endpoint: &str) -> Broker {
        let child = Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .arg("--config")
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Broker {
            child,
            endpoint: endpoint.to_owned(),
        }
    }
}

/// Polls `f` every 50 ms until it holds; fails the test after `within`.
pub fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The broker's Prometheus text from `GET /metrics` on `addr`.
pub fn metrics_text(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Runs `distlog` with `args`.
pub fn distlog<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `distlog` and returns its stdout, asserting success.
pub fn distlog_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = distlog(args);
    assert!(
        out.status.success(),
        "distlog failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `distlog query --data-dir STORE --count` plus `extra`.
pub fn count(store: &Path, extra: &[&str]) -> u64 {
    let mut args = vec![
        "query".as_ref(),
        "--data-dir".as_ref(),
        store.as_os_str(),
        "--count".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = distlog_ok(args);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {out:?}"))
}
