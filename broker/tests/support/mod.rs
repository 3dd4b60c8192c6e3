//! Shared by the broker's integration tests: a free loopback port, a temp
//! dir, the real `distlogd` binary (started with `--listen` / `--data-dir`
//! or with `--config`, stopped with SIGTERM), waiting for a condition, the
//! broker's counters (from its metrics endpoint and from its final stderr
//! line), and the built `distlog` binary.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod request_flow;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The Python interpreter for the interop tests: `$PYTHON` (`scripts/test`
/// sets it to the provisioned venv), else `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[path = "../../../tests/common/ports.rs"]
mod ports;
// Not every test binary takes a port.
#[allow(unused_imports)]
pub use ports::free_port;

/// A fresh temp dir, unique to this process and `name`, removed on drop
/// (kept, and its path printed, when the test is failing).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("distlogd-test-{name}-{}", std::process::id()));
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
        if std::thread::panicking() {
            eprintln!("test failed: kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running `distlogd` listening on `endpoint`; its stderr is collected in
/// the background so a chatty broker never blocks on a full pipe. Dropped
/// without [`stop`](Self::stop) (a test that panicked), it is killed.
pub struct Broker {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    pub endpoint: String,
}

impl Broker {
    /// Starts `distlogd --listen ENDPOINT --data-dir DIR` plus `extra` args.
    pub fn start(endpoint: &str, data_dir: &Path, extra: &[&str]) -> Broker {
        let mut c = Command::new(env!("CARGO_BIN_EXE_distlogd"));
        c.args(["--listen", endpoint, "--data-dir"])
            .arg(data_dir)
            .args(extra);
        Broker::spawn(c, endpoint)
    }

    /// Starts `distlogd --config FILE`, whose `listen` is `endpoint`.
    pub fn with_config(config: &Path, endpoint: &str) -> Broker {
        let mut c = Command::new(env!("CARGO_BIN_EXE_distlogd"));
        c.arg("--config").arg(config);
        Broker::spawn(c, endpoint)
    }

    /// Starts `c` (a `distlogd` command the caller set up: another binary,
    /// another user, stdout redirected), listening on `endpoint`.
    pub fn spawn(mut c: Command, endpoint: &str) -> Broker {
        let mut child = c.stderr(Stdio::piped()).spawn().expect("start distlogd");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        Broker {
            child,
            stderr: Some(stderr),
            endpoint: endpoint.to_owned(),
        }
    }

    /// The broker's process id (to signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (the broker stores everything it received and exits),
    /// waits (at most 30 s) for the exit, and returns the exit status with
    /// everything the broker wrote to stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
                panic!("distlogd did not stop within 30 s of SIGTERM: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, stderr)
    }

    /// Kills the broker with SIGKILL (a crash: nothing is flushed), waits
    /// for it, and returns the exit status with its stderr.
    pub fn kill(mut self) -> (ExitStatus, String) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Neither stop() nor kill(): do not leave the broker running.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A line of `/proc/<pid>/status` in KiB, e.g. `VmHWM` (the peak resident
/// set) or `VmRSS`.
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    line[key.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// The value of the Prometheus sample `name` (with its labels, e.g.
/// `distlogd_rejected_total{reason="bad_topic"}`), 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls `f` every 50 ms until it holds; fails the test after `within`.
pub fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages the broker on metrics address `addr` has taken off its sockets
/// so far: batches accepted plus messages rejected for any reason (0 while
/// the metrics endpoint is not up yet). For waiting until everything a test
/// sent has been read, before SIGTERM.
pub fn messages_taken(addr: &str) -> u64 {
    if std::net::TcpStream::connect(addr).is_err() {
        return 0;
    }
    let text = metrics_text(addr);
    let rejected: u64 = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("distlogd_rejected_total{")?
                .rsplit(' ')
                .next()
        })
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum();
    metric(&text, "distlogd_batches_total") + rejected
}

/// The broker's Prometheus text from `GET /metrics` on `addr`.
pub fn metrics_text(addr: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The final line distlogd writes to stderr when it stops.
fn final_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("distlogd: stopped"))
        .unwrap_or_else(|| panic!("no final counters in: {stderr}"))
}

/// `processor=written=W dropped=D` of `name` in distlogd's final line.
pub fn processor_counts(stderr: &str, name: &str) -> (u64, u64) {
    let line = final_line(stderr);
    let at = line
        .find(&format!("\"{name}\": \""))
        .unwrap_or_else(|| panic!("no processor {name} in {line}"));
    let rest = &line[at..];
    let num = |key: &str| -> u64 {
        let i = rest.find(key).unwrap() + key.len();
        rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (num("written="), num("dropped="))
}

/// A counter of the broker's final line, e.g. `gap_records`.
pub fn broker_counter(stderr: &str, key: &str) -> u64 {
    let line = final_line(stderr);
    let pat = format!(" {key}=");
    let i = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    line[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
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
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let out = distlog(&args);
    assert!(
        out.status.success(),
        "distlog {args:?} failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What a store holds so far, for waits: [`count`], or 0 while the broker
/// has not created the store yet (it opens its processors after it
/// starts, which a loaded machine can delay past a test's first check).
pub fn stored(store: &Path, extra: &[&str]) -> u64 {
    if store.exists() {
        count(store, extra)
    } else {
        0
    }
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

/// Writes `keys` as a key file private to its owner (mode 0600; the
/// broker and the library refuse one others may read).
pub fn write_key_file(path: &Path, keys: &distlog::curve::KeyPair) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, keys.to_file_text()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
