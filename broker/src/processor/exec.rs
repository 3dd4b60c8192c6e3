//! `exec`: a plugin is a program. The broker starts `command` and writes
//! each record routed to the processor to its stdin as one JSON line, with
//! the same field names as the `jsonl` processor (`distlog_filter::render::json_record`).
//! A processor in Python, Go or shell is a loop over lines of stdin.
//!
//! ```yaml
//! alerts:
//!   type: exec
//!   command: [/usr/bin/python3, /etc/distlog/plugins/errors_to_file.py, /var/log/errors.txt]
//!   confirm: true          # the program writes OK per record (or "OK <n>" for n)
//! ```
//!
//! # What reaches the program
//!
//! The records of the rules that name the processor, in the order the
//! broker routed them, one JSON object and a `\n` each. The program's
//! environment has `DISTLOG_PROCESSOR` set to the processor's name; it runs
//! in its own process group (a Ctrl-C at the broker's terminal reaches the
//! broker, which then stops it in order) and is killed if the broker dies.
//!
//! # When the program is slow
//!
//! Writing blocks this processor's thread only: its queue fills, and its
//! overflow policy applies (`drop` by default: the batch is counted in
//! `distlogd_processor_dropped_records_total` for this processor alone;
//! `queue: { overflow: block }` slows the whole broker down instead).
//!
//! # When the program exits or crashes
//!
//! It is started again after `restart_delay` (100 ms), doubling per quick
//! failure up to `restart_max` (30 s), back to `restart_delay` once a run
//! lasted 10 s; every restart is counted in
//! `distlogd_processor_restarts_total`. Records that arrive meanwhile wait
//! in the queue (the overflow policy applies when it is full); none is
//! discarded for being early.
//!
//! - Without `confirm`, the records lost are those written to the pipe that
//!   the program never read: the broker asks the kernel how many bytes were
//!   left unread in the pipe (`FIONREAD`) and counts the records they
//!   belong to (a record read in part counts as lost) in
//!   `distlogd_processor_lost_records_total`. A record the program read but
//!   had not finished with is invisible to the broker: that is what
//!   confirmations are for.
//! - With `confirm: true` (rsyslog omprog's protocol), the program writes a
//!   line `OK` on stdout for each record it has finished, or `OK <n>` for
//!   the next `n` at once (a batch). The broker keeps every record sent and
//!   not yet confirmed, at most `confirm_window` of them (1000): when the
//!   window is full it waits for confirmations, so its memory is bounded by
//!   `confirm_window` lines (plus the queue). When the program dies, the
//!   unconfirmed records are sent again, in order, to the restarted
//!   program: nothing is lost, some may arrive twice. A program that
//!   confirms nothing for `confirm_timeout` (30 s) while records are
//!   outstanding is killed and restarted. Other lines on stdout are
//!   reported and ignored. `distlogd_processor_unconfirmed_records` is the
//!   window's size.
//!
//! Without `confirm`, the program's stdout is discarded. Its stderr goes to
//! the broker's stderr, one line each (escaped, 4 KiB at most), at most 20
//! lines a second per processor; the rest are counted in a note.
//!
//! # Stopping (shutdown, reload)
//!
//! The broker writes what is queued, waits up to `stop_timeout` (5 s) for
//! the program to read it (and, with `confirm`, to confirm it), closes its
//! stdin and waits for it to exit within what is left of `stop_timeout`,
//! then kills it. Records not read (or not confirmed) by then are counted
//! as lost.

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Processor, QueueConfig, Settings};
use crate::config::units;
use crate::metrics::ProcessorStats;
use crate::warn::RateLimited;
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `exec` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments (no shell: write
    /// `[/bin/sh, -c, "..."]` for one).
    pub command: Vec<String>,
    /// Whether the program confirms records (`OK` or `OK <n>` lines on
    /// stdout); unconfirmed ones are sent again after a restart.
    #[serde(default)]
    pub confirm: bool,
    /// Most records sent and not yet confirmed (default 1000).
    #[serde(default = "default_window")]
    pub confirm_window: usize,
    /// A program that confirms nothing for this long while records are
    /// outstanding is restarted (default 30 s).
    #[serde(default = "default_confirm_timeout", with = "units::duration")]
    pub confirm_timeout: Duration,
    /// First wait before a restart (default 100 ms).
    #[serde(default = "default_restart_delay", with = "units::duration")]
    pub restart_delay: Duration,
    /// Longest wait before a restart (default 30 s).
    #[serde(default = "default_restart_max", with = "units::duration")]
    pub restart_max: Duration,
    /// How long the program has to finish at shutdown or reload
    /// (default 5 s).
    #[serde(default = "default_stop_timeout", with = "units::duration")]
    pub stop_timeout: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_window() -> usize {
    1000
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_restart_delay() -> Duration {
    Duration::from_millis(100)
}
fn default_restart_max() -> Duration {
    Duration::from_secs(30)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A run at least this long resets the restart delay.
const STEADY: Duration = Duration::from_secs(10);
/// How long one wait for the program lasts before checking for shutdown.
const POLL: Duration = Duration::from_millis(100);
/// The longest stderr line forwarded (longer ones are split).
const STDERR_LINE: u64 = 4096;
/// Stderr lines forwarded per second and processor.
const STDERR_PER_SECOND: u32 = 20;
/// The longest confirmation line read (longer ones are refused).
const REPLY_LINE: usize = 64;

impl Settings for ExecConfig {
    fn check(&self) -> Result<(), Invalid> {
        if self.command.first().map_or(true, |p| p.is_empty()) {
            return Err(Invalid::new(
                "command",
                "command must name a program, e.g. command: [/usr/bin/python3, plugin.py]",
            ));
        }
        if self.confirm_window == 0 {
            return Err(Invalid::new("confirm_window", "confirm_window must be above 0"));
        }
        if self.restart_delay.is_zero() || self.restart_max < self.restart_delay {
            return Err(Invalid::new(
                "restart_delay",
                "restart_delay must be above 0 and at most restart_max",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Exec::start(self, ctx)?))
    }
}

/// A running plugin program and what the broker knows about it.
struct Program {
    child: Child,
    stdin: ChildStdin,
    /// With `confirm`: its replies, and the partial line read so far.
    stdout: Option<ChildStdout>,
    reply: Vec<u8>,
    started: Instant,
    /// The last confirmation, or when the first outstanding record was sent.
    progress: Instant,
    /// The pipe's capacity: at most this many bytes can be unread in it.
    pipe_size: u64,
}

/// The `exec` processor.
pub struct Exec {
    name: String,
    cfg: ExecConfig,
    stats: Arc<ProcessorStats>,
    closing: Arc<AtomicBool>,
    closing_since: Option<Instant>,
    /// The processor's own warnings (restarts, bad replies), one a second.
    warnings: RateLimited,
    program: Option<Program>,
    restart_at: Instant,
    backoff: Duration,
    line: String,
    /// Without `confirm`: the stream of lines, as offsets. `pending[pos..]`
    /// is stream bytes `sent..appended` (not yet written); `ends` holds
    /// where each record that may still be unread ends (ascending), and
    /// `floor` where the last one dropped from `ends` ended.
    pending: Vec<u8>,
    pos: usize,
    sent: u64,
    appended: u64,
    ends: VecDeque<u64>,
    floor: u64,
    /// With `confirm`: the unconfirmed lines, oldest first; the first
    /// `written` were written whole to the program, and `partial` bytes of
    /// the next one.
    window: VecDeque<Vec<u8>>,
    written: usize,
    partial: usize,
}

impl Exec {
    /// Starts the program: a command that cannot be started is an error
    /// here (the config is refused), later only a reason to retry.
    pub fn start(cfg: &ExecConfig, ctx: &Context<'_>) -> io::Result<Exec> {
        let mut e = Exec {
            name: ctx.name.to_owned(),
            cfg: cfg.clone(),
            stats: ctx.stats.clone(),
            closing: ctx.closing.clone(),
            closing_since: None,
            warnings: RateLimited::new(Duration::from_secs(1)),
            program: None,
            restart_at: Instant::now(),
            backoff: cfg.restart_delay,
            line: String::new(),
            pending: Vec::new(),
            pos: 0,
            sent: 0,
            appended: 0,
            ends: VecDeque::new(),
            floor: 0,
            window: VecDeque::new(),
            written: 0,
            partial: 0,
        };
        e.program = Some(e.spawn()?);
        Ok(e)
    }

    fn spawn(&self) -> io::Result<Program> {
        let c = &self.cfg;
        let mut cmd = Command::new(&c.command[0]);
        cmd.args(&c.command[1..])
            .env("DISTLOG_PROCESSOR", &self.name)
            .stdin(Stdio::piped())
            .stdout(if c.confirm {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent; it asks the kernel to kill the child when the thread
        // that started it (this processor's) ends, e.g. the broker dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {:?}: {e} (command: must name an executable)", c.command),
            )
        })?;
        let stdin = child.stdin.take().expect("piped");
        set_nonblocking(stdin.as_raw_fd())?;
        let stdout = child.stdout.take();
        if let Some(s) = &stdout {
            set_nonblocking(s.as_raw_fd())?;
        }
        if let Some(err) = child.stderr.take() {
            let (name, pid) = (self.name.clone(), child.id());
            std::thread::Builder::new()
                .name(format!("exec-{}-stderr", self.name))
                .spawn(move || forward_stderr(&name, pid, err))?;
        }
        // SAFETY: F_GETPIPE_SZ reads an integer from a descriptor we own.
        let pipe_size = unsafe { libc::fcntl(stdin.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let now = Instant::now();
        Ok(Program {
            child,
            stdin,
            stdout,
            reply: Vec::new(),
            started: now,
            progress: now,
            pipe_size: u64::try_from(pipe_size).unwrap_or(1 << 20),
        })
    }

    /// Whether the broker has been closing this processor for longer than
    /// `stop_timeout`: then nothing more is waited for.
    fn giving_up(&mut self) -> bool {
        if !self.closing.load(Ordering::Acquire) {
            return false;
        }
        self.closing_since.get_or_insert_with(Instant::now).elapsed() >= self.cfg.stop_timeout
    }

    /// Records taken and not yet delivered (without `confirm`: not yet
    /// written; with it: not yet confirmed).
    fn undelivered(&self) -> usize {
        if self.cfg.confirm {
            self.window.len()
        } else {
            self.ends.iter().filter(|&&e| e > self.sent).count()
        }
    }

    /// Works the program's pipes until `done` holds: writes, reads
    /// confirmations, restarts a program that died. Returns false when it
    /// gave up (closing for longer than `stop_timeout`).
    fn pump(&mut self, done: fn(&Exec) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if self.giving_up() {
                return false;
            }
            if self.program.is_none() {
                self.restart_when_due();
                continue;
            }
            match self.write_some() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.died(&format!("stopped reading ({e})"));
                    continue;
                }
            }
            self.wait_io();
            if let Err(why) = self.read_replies() {
                self.died(&why);
            }
        }
    }

    /// Waits (at most [`POLL`]) until the program can take more or has
    /// replied.
    fn wait_io(&self) {
        let Some(p) = &self.program else { return };
        let mut fds = [
            libc::pollfd {
                fd: p.stdin.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: p.stdout.as_ref().map_or(-1, |s| s.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let wants_write = if self.cfg.confirm {
            self.written < self.window.len()
        } else {
            self.pos < self.pending.len()
        };
        if !wants_write {
            fds[0].fd = -1;
        }
        // SAFETY: `fds` is a valid array of 2 pollfd (negative fds are
        // ignored by poll).
        unsafe { libc::poll(fds.as_mut_ptr(), 2, POLL.as_millis() as libc::c_int) };
    }

    /// Writes what the pipe takes now. Ok(true) when something was written.
    fn write_some(&mut self) -> io::Result<bool> {
        let Some(p) = &mut self.program else {
            return Ok(false);
        };
        let mut any = false;
        loop {
            let buf: &[u8] = if self.cfg.confirm {
                match self.window.get(self.written) {
                    Some(l) => &l[self.partial..],
                    None => return Ok(any),
                }
            } else if self.pos < self.pending.len() {
                &self.pending[self.pos..]
            } else {
                return Ok(any);
            };
            match (&p.stdin).write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    any = true;
                    if self.cfg.confirm {
                        if self.written == 0 && self.partial == 0 {
                            p.progress = Instant::now();
                        }
                        self.partial += n;
                        if self.partial == self.window[self.written].len() {
                            self.written += 1;
                            self.partial = 0;
                        }
                    } else {
                        self.pos += n;
                        self.sent += n as u64;
                        if self.pos == self.pending.len() {
                            self.pending.clear();
                            self.pos = 0;
                        }
                        // Records that ended a whole pipe ago have been read.
                        let read = self.sent.saturating_sub(p.pipe_size);
                        while self.ends.front().is_some_and(|&e| e <= read) {
                            self.floor = self.ends.pop_front().unwrap_or(self.floor);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads confirmations (with `confirm`). Err says why the program is
    /// taken for dead: its stdout closed, or it confirmed nothing for
    /// `confirm_timeout`.
    fn read_replies(&mut self) -> Result<(), String> {
        let Some(p) = &mut self.program else {
            return Ok(());
        };
        let Some(out) = &mut p.stdout else {
            return Ok(());
        };
        let mut buf = [0u8; 4096];
        loop {
            match out.read(&mut buf) {
                Ok(0) => return Err("closed its stdout".into()),
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b != b'\n' {
                            if p.reply.len() <= REPLY_LINE {
                                p.reply.push(b);
                            }
                            continue;
                        }
                        match parse_reply(&p.reply) {
                            Some(n) => {
                                let n = n.min(self.written);
                                self.window.drain(..n);
                                self.written -= n;
                                p.progress = Instant::now();
                            }
                            None => self.warnings.warn(|| {
                                format!(
                                    "exec {:?}: ignored a reply that is not \"OK\" or \"OK <n>\": {:?}",
                                    self.name,
                                    String::from_utf8_lossy(&p.reply)
                                )
                            }),
                        }
                        p.reply.clear();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("stdout: {e}")),
            }
        }
        self.stats
            .unconfirmed
            .store(self.window.len() as u64, Ordering::Relaxed);
        if self.written > 0 && p.progress.elapsed() > self.cfg.confirm_timeout {
            return Err(format!(
                "confirmed nothing for {:?} with {} records outstanding",
                self.cfg.confirm_timeout, self.written
            ));
        }
        Ok(())
    }

    /// The program is gone (or taken for dead): reap it (killing it if it
    /// still runs), count what it never read, schedule the restart.
    fn died(&mut self, why: &str) {
        let Some(mut p) = self.program.take() else {
            return;
        };
        let status = reap(&mut p.child);
        let lost = if self.cfg.confirm {
            self.written = 0;
            self.partial = 0;
            0
        } else {
            self.lose_unread(&p)
        };
        drop(p.stdin);
        let ran = p.started.elapsed();
        if ran >= STEADY {
            self.backoff = self.cfg.restart_delay;
        }
        self.restart_at = Instant::now() + self.backoff;
        self.warnings.warn(|| {
            let what = if self.cfg.confirm {
                format!("{} unconfirmed records will be sent again", self.window.len())
            } else {
                format!("{lost} records it had not read are lost")
            };
            format!(
                "exec {:?}: the program {why} ({status}) after {ran:.1?}; {what}; restarting in {:?}",
                self.name, self.backoff
            )
        });
        self.backoff = (self.backoff * 2).min(self.cfg.restart_max);
    }

    /// Without `confirm`: counts as lost the records whose bytes were left
    /// unread in the pipe `p` (and one written in part), and skips the rest
    /// of a record written in part, so the next program starts on a line.
    fn lose_unread(&mut self, p: &Program) -> u64 {
        let unread = unread_bytes(&p.stdin);
        let read = self.sent - unread.min(self.sent);
        let mut lost = 0;
        while let Some(&e) = self.ends.front() {
            if e > self.sent {
                break;
            }
            if e > read {
                lost += 1;
            }
            self.floor = e;
            self.ends.pop_front();
        }
        if self.floor < self.sent {
            // A record written in part: its rest is not sent.
            if let Some(e) = self.ends.pop_front() {
                lost += 1;
                self.pos += (e - self.sent) as usize;
                self.sent = e;
                self.floor = e;
                if self.pos == self.pending.len() {
                    self.pending.clear();
                    self.pos = 0;
                }
            }
        }
        self.stats.lost.fetch_add(lost, Ordering::Relaxed);
        lost
    }

    /// Sleeps (at most [`POLL`]) toward the restart time, then starts the
    /// program again.
    fn restart_when_due(&mut self) {
        let now = Instant::now();
        if now < self.restart_at {
            std::thread::sleep((self.restart_at - now).min(POLL));
            return;
        }
        match self.spawn() {
            Ok(p) => {
                self.program = Some(p);
                self.stats.restarts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.restart_at = Instant::now() + self.backoff;
                crate::warn::RateLimited::new(Duration::ZERO)
                    .warn(|| format!("exec {:?}: {e}; retrying in {:?}", self.name, self.backoff));
                self.backoff = (self.backoff * 2).min(self.cfg.restart_max);
            }
        }
    }

    /// Counts what is still undelivered as lost and forgets it.
    fn give_up(&mut self) {
        let n = self.undelivered() as u64;
        if n == 0 {
            return;
        }
        self.stats.lost.fetch_add(n, Ordering::Relaxed);
        self.window.clear();
        self.written = 0;
        self.partial = 0;
        self.stats.unconfirmed.store(0, Ordering::Relaxed);
        self.ends.retain(|&e| e <= self.sent);
        self.pending.clear();
        self.pos = 0;
        self.appended = self.sent;
        self.warnings.warn(|| {
            format!(
                "exec {:?}: {n} records lost: the program did not take them within stop_timeout ({:?})",
                self.name, self.cfg.stop_timeout
            )
        });
    }

    /// Closes the program's stdin once it has read everything (or
    /// `stop_timeout` passed), waits for it to exit, kills it if it does
    /// not. Records left unread are counted as lost.
    fn stop(&mut self) {
        let Some(p) = &self.program else { return };
        let deadline = self.closing_since.unwrap_or_else(Instant::now) + self.cfg.stop_timeout;
        while unread_bytes(&p.stdin) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let Some(mut p) = self.program.take() else { return };
        if !self.cfg.confirm {
            self.lose_unread(&p);
        }
        drop(p.stdin);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = p.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = reap(&mut p.child);
    }
}

impl Processor for Exec {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let sender = d.batch.get().sender();
        for r in d.records() {
            self.line.clear();
            distlog_filter::render::json_record(d.topic.system, sender, r, &mut self.line);
            self.line.push('\n');
            if self.cfg.confirm {
                if !self.pump(|s| s.window.len() < s.cfg.confirm_window) {
                    self.give_up();
                }
                self.window.push_back(self.line.as_bytes().to_vec());
            } else {
                self.pending.extend_from_slice(self.line.as_bytes());
                self.appended += self.line.len() as u64;
                self.ends.push_back(self.appended);
            }
        }
        self.stats
            .unconfirmed
            .store(self.window.len() as u64, Ordering::Relaxed);
        let all_written = |s: &Exec| {
            if s.cfg.confirm {
                s.written == s.window.len()
            } else {
                s.pos == s.pending.len()
            }
        };
        if !self.pump(all_written) {
            self.give_up();
        }
        Ok(())
    }

    /// Notices a program that exited while idle, reads confirmations,
    /// restarts when due, and writes what the pipe takes.
    fn tick(&mut self) -> io::Result<()> {
        if let Some(p) = &mut self.program {
            if let Ok(Some(status)) = p.child.try_wait() {
                self.died(&format!("exited ({status})"));
            }
        }
        if let Err(why) = self.read_replies() {
            self.died(&why);
        }
        if self.program.is_none() && Instant::now() >= self.restart_at {
            self.restart_when_due();
        }
        if let Err(e) = self.write_some() {
            self.died(&format!("stopped reading ({e})"));
        }
        Ok(())
    }

    /// Delivers everything taken (with `confirm`: until confirmed), then
    /// stops the program; see the module docs for the time allowed.
    fn flush(&mut self) -> io::Result<()> {
        let delivered = if self.cfg.confirm {
            self.pump(|s| s.window.is_empty())
        } else {
            self.pump(|s| s.pos == s.pending.len())
        };
        if !delivered {
            self.give_up();
        }
        self.stop();
        Ok(())
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        if let Some(mut p) = self.program.take() {
            let _ = reap(&mut p.child);
        }
    }
}

/// `OK` is 1, `OK <n>` is n; anything else None.
fn parse_reply(line: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(line).ok()?.trim();
    let rest = s.strip_prefix("OK")?;
    if rest.is_empty() {
        return Some(1);
    }
    rest.strip_prefix(' ')?.trim().parse().ok()
}

/// The exit status of `child`, killing it first if it still runs.
fn reap(child: &mut Child) -> String {
    let status: io::Result<ExitStatus> = match child.try_wait() {
        Ok(Some(s)) => Ok(s),
        _ => {
            let _ = child.kill();
            child.wait()
        }
    };
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("not reaped: {e}"),
    }
}

/// Bytes written to the pipe and not read by the program.
fn unread_bytes(stdin: &ChildStdin) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at
    // `n`; the descriptor is open (we own `stdin`).
    let rc = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        u64::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

fn set_nonblocking(fd: libc::c_int) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory is passed.
    let rc = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copies the program's stderr to the broker's, a line at a time, escaped,
/// at most [`STDERR_PER_SECOND`] lines a second; ends when the program's
/// stderr closes.
fn forward_stderr(name: &str, pid: u32, err: std::process::ChildStderr) {
    let mut r = BufReader::new(err);
    let mut line = Vec::new();
    let mut window = Instant::now();
    let (mut shown, mut suppressed) = (0u32, 0u64);
    loop {
        line.clear();
        match r.by_ref().take(STDERR_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if window.elapsed() >= Duration::from_secs(1) {
            if suppressed > 0 {
                eprintln!("distlogd: exec {name:?} [{pid}]: ({suppressed} stderr lines suppressed)");
            }
            window = Instant::now();
            (shown, suppressed) = (0, 0);
        }
        if shown >= STDERR_PER_SECOND {
            suppressed += 1;
            continue;
        }
        shown += 1;
        let text = String::from_utf8_lossy(&line);
        let text = distlog_filter::render::escaped(text.trim_end_matches(['\n', '\r']));
        eprintln!("distlogd: exec {name:?} [{pid}]: {text}");
    }
    if suppressed > 0 {
        eprintln!("distlogd: exec {name:?} [{pid}]: ({suppressed} stderr lines suppressed)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_ok_or_ok_n() {
        assert_eq!(parse_reply(b"OK"), Some(1));
        assert_eq!(parse_reply(b"OK\r"), Some(1));
        assert_eq!(parse_reply(b"OK 25"), Some(25));
        assert_eq!(parse_reply(b"OKAY"), None);
        assert_eq!(parse_reply(b"ok"), None);
        assert_eq!(parse_reply(b"OK x"), None);
        assert_eq!(parse_reply(b"ERROR"), None);
    }
}
