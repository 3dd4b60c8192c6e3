//! Helpers shared by the broker's integration tests: a free loopback
//! endpoint, a scratch directory, and the real `distlogd` binary started
//! with `--listen` / `--data-dir` and stopped with SIGTERM.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `tcp://127.0.0.1:<port>` endpoint on a port free right now.
pub fn free_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("tcp://127.0.0.1:{port}")
}

/// An empty scratch directory, unique to this process and `tag`.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("distlogd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `distlogd`; its stderr is collected in the background so a
/// chatty broker never blocks on a full pipe.
pub struct Broker {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Broker {
    /// Starts `distlogd --listen ENDPOINT --data-dir DIR` plus `extra` args.
    pub fn start(endpoint: &str, data_dir: &Path, extra: &[&str]) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .args(["--listen", endpoint, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start distlogd");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        Broker {
            child,
            stderr: Some(stderr),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, waits (at most 20 s) for the exit, and returns the
    /// exit status with everything the broker wrote to stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("distlogd did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A test that panicked before stop(): do not leave the broker running.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
