//! `exec` processors against the real broker: a plugin program gets every
//! record its rules match, in order, as JSON lines; killed with SIGKILL
//! mid-stream it is restarted, and with confirmations nothing is lost (the
//! unconfirmed records are sent again) while without them the loss is
//! counted exactly (what it left unread in its pipe); a plugin that never
//! reads makes the broker drop and count for that processor alone while
//! the store keeps everything.

mod support;

use distlog_core::record::{level, Record};
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use support::{free_port, metric, metrics_text, processor_counts, wait_for, Broker, TempDir};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(60);

/// A broker with `processors` (YAML lines under `processors:`, `DIR` the
/// test's directory) and `rules` (under `rules:`), its metrics endpoint,
/// and a PUSH socket to it; `files` (name, text) are written to the
/// directory first.
struct Setup {
    tmp: TempDir,
    broker: Broker,
    endpoint: String,
    metrics: String,
    _ctx: zmq::Context,
    push: zmq::Socket,
}

impl Setup {
    fn new(name: &str, files: &[(&str, &str)], processors: &str, rules: &str) -> Setup {
        let tmp = TempDir::new(name);
        for (file, text) in files {
            std::fs::write(tmp.path().join(file), text).unwrap();
        }
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let path = write_config(tmp.path(), &endpoint, &metrics, processors, rules);
        let broker = Broker::with_config(&path, &endpoint);
        wait_for("metrics endpoint", WAIT, || {
            std::net::TcpStream::connect(&metrics).is_ok()
        });
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        Setup {
            tmp,
            broker,
            endpoint,
            metrics,
            _ctx: ctx,
            push,
        }
    }

    /// Rewrites the config file and sends the broker SIGHUP.
    fn reload(&self, processors: &str, rules: &str) {
        write_config(self.dir(), &self.endpoint, &self.metrics, processors, rules);
        // SAFETY: sending a signal to the broker this test started.
        assert_eq!(
            unsafe { libc::kill(self.broker.id() as i32, libc::SIGHUP) },
            0
        );
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Sends records `first..first+n` in one batch; record `s` has level
    /// ERROR when `s % 3 == 0`, INFO otherwise.
    fn send(&self, first: u64, n: u64) {
        let b = Batch {
            sender: Sender {
                host: "exec-test".into(),
                pid: 7,
                program: "exec-test".into(),
                start_ns: 1,
                instance: 3,
            },
            first_seq: first,
            dropped: 0,
            records: (first..first + n)
                .map(|s| Record {
                    seq: s,
                    time_ns: 1_700_000_000_000_000_000 + s,
                    level: if s % 3 == 0 {
                        level::ERROR
                    } else {
                        level::INFO
                    },
                    kind: b'L',
                    target: "app::orders".into(),
                    message: format!("record {s}"),
                    ..Record::default()
                })
                .collect(),
        };
        self.push
            .send_multipart([&b"PLR"[..], &encode_batch_to_vec(&b)], 0)
            .unwrap();
    }

    /// Sends records `0..total` in batches of `per`.
    fn send_all(&self, total: u64, per: u64) {
        self.send_all_from(0, total, per);
    }

    /// Sends records `start..start+total` in batches of `per`.
    fn send_all_from(&self, start: u64, total: u64, per: u64) {
        for first in (start..start + total).step_by(per as usize) {
            self.send(first, per.min(start + total - first));
        }
    }

    fn metric(&self, name: &str, processor: &str) -> u64 {
        metric(
            &metrics_text(&self.metrics),
            &format!("distlogd_{name}{{processor=\"{processor}\"}}"),
        )
    }
}

/// Writes `DIR/distlogd.yaml`; `DIR` in `processors` is the directory.
fn write_config(
    dir: &Path,
    endpoint: &str,
    metrics: &str,
    processors: &str,
    rules: &str,
) -> std::path::PathBuf {
    let d = dir.display().to_string();
    let config = format!(
        "listen: [{endpoint}]\ndata_dir: {d}/store\nmetrics: {{ listen: \"{metrics}\", interval: 0s }}\nprocessors:\n{}\nrules:\n{}\n",
        processors.replace("DIR", &d),
        rules
    );
    let path = dir.join("distlogd.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The complete JSON lines of `path` (none if it does not exist yet): a
/// last line the plugin is still writing (no newline yet) is left for the
/// next read.
fn lines(path: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn seqs(lines: &[Json]) -> Vec<u64> {
    lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect()
}

fn kill9(pid_file: &Path) {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: sending a signal to the plugin process this test's broker
    // started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

#[test]
fn plugin_gets_every_matched_record_in_order() {
    let s = Setup::new(
        "exec-order",
        &[],
        r#"  store: { type: store }
  plugin: { type: exec, command: [/bin/sh, -c, "exec cat > DIR/out.jsonl"] }"#,
        r#"  - { name: errors, filter: "level >= error", processors: [plugin] }
  - { name: all, filter: "true", processors: [store] }"#,
    );
    let total = 3000;
    s.send_all(total, 100);
    let want: Vec<u64> = (0..total).filter(|s| s % 3 == 0).collect();
    let out = s.dir().join("out.jsonl");
    wait_for("the plugin to write every error record", WAIT, || {
        lines(&out).len() >= want.len()
    });
    let got = lines(&out);
    assert_eq!(seqs(&got), want, "every matched record, once, in order");
    for l in &got {
        let seq = l["seq"].as_u64().unwrap();
        assert_eq!(l["message"], format!("record {seq}"));
        assert_eq!(l["levelname"], "ERROR");
        assert_eq!(l["name"], "app::orders");
        assert_eq!(l["hostname"], "exec-test");
        assert_eq!(l["system"], "P");
    }
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(processor_counts(&stderr, "plugin"), (want.len() as u64, 0));
    assert_eq!(processor_counts(&stderr, "store"), (total, 0));
}

/// A Python plugin that appends each record's line to `out.jsonl`, then
/// confirms it; it records its pid (for the test to kill) and sleeps a
/// millisecond per record, so the stream is still flowing when it is killed.
const CONFIRMING: &str = r#"
import os, sys, time
d = sys.argv[1]
with open(os.path.join(d, "pid"), "w") as f:
    f.write(str(os.getpid()))
with open(os.path.join(d, "out.jsonl"), "a") as out:
    for line in sys.stdin:
        out.write(line)
        out.flush()
        time.sleep(0.001)
        sys.stdout.write("OK\n")
        sys.stdout.flush()
"#;

#[test]
fn kill_9_with_confirmations_loses_nothing() {
    let s = Setup::new(
        "exec-confirm",
        &[("plugin.py", CONFIRMING)],
        r#"  plugin:
    type: exec
    command: [python3, DIR/plugin.py, DIR]
    confirm: true
    confirm_window: 200"#,
        r#"  - { name: all, filter: "true", processors: [plugin] }"#,
    );
    let total = 3000;
    s.send_all(total, 50);
    let out = s.dir().join("out.jsonl");
    wait_for("the plugin to be mid-stream", WAIT, || {
        lines(&out).len() >= 300
    });
    kill9(&s.dir().join("pid"));

    wait_for("every record to be received and confirmed", WAIT, || {
        let got: BTreeSet<u64> = seqs(&lines(&out)).into_iter().collect();
        got.len() as u64 == total && s.metric("processor_unconfirmed_records", "plugin") == 0
    });
    let got = seqs(&lines(&out));
    let unique: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(
        unique,
        (0..total).collect(),
        "every record reached a plugin"
    );
    let again = got.len() as u64 - total;
    assert!(
        again <= 200,
        "only unconfirmed records are sent twice (at most the window): {again}"
    );
    assert_eq!(
        s.metric("processor_restarts_total", "plugin"),
        1,
        "the killed plugin was restarted"
    );
    assert_eq!(s.metric("processor_lost_records_total", "plugin"), 0);
    assert_eq!(s.metric("processor_dropped_records_total", "plugin"), 0);
    // Each run got its records in order: the restarted one starts with
    // the first record the killed one had not confirmed.
    let restart = (1..got.len()).find(|&i| got[i] <= got[i - 1]);
    let (first, second) = got.split_at(restart.unwrap_or(got.len()));
    for run in [first, second] {
        assert!(run.windows(2).all(|w| w[0] < w[1]), "in order in each run");
    }
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    eprintln!(
        "sent {total}, confirmed {total}, received {} ({again} twice)",
        got.len()
    );
}

/// A shell plugin that copies lines to `out.jsonl` (the shell's `read`
/// takes one byte at a time from a pipe: it reads nothing ahead); the
/// first run stops reading after 100 records (it becomes `sleep`, same
/// pid, stdin still open) so the pipe holds records it never read.
const STALLING: &str = r#"
n=0
while IFS= read -r line; do
  printf '%s\n' "$line" >> "$1/out.jsonl"
  n=$((n+1))
  if [ "$n" -eq 100 ] && [ ! -e "$1/stalled" ]; then
    : > "$1/stalled"
    echo $$ > "$1/pid"
    exec sleep 1000
  fi
done
"#;

#[test]
fn kill_9_without_confirmations_counts_the_loss_exactly() {
    let s = Setup::new(
        "exec-lost",
        &[("plugin.sh", STALLING)],
        r#"  plugin: { type: exec, command: [/bin/sh, DIR/plugin.sh, DIR] }"#,
        r#"  - { name: all, filter: "true", processors: [plugin] }"#,
    );
    let total = 2000;
    s.send_all(total, 50);
    let out = s.dir().join("out.jsonl");
    let pid = s.dir().join("pid");
    wait_for("the plugin to stall", WAIT, || {
        pid.exists() && lines(&out).len() == 100
    });
    kill9(&pid);
    wait_for("received + lost to cover every record", WAIT, || {
        lines(&out).len() as u64 + s.metric("processor_lost_records_total", "plugin") >= total
    });
    let got = seqs(&lines(&out));
    let lost = s.metric("processor_lost_records_total", "plugin");
    assert!(lost > 0, "the pipe held records the plugin never read");
    assert_eq!(
        got.len() as u64 + lost,
        total,
        "received + lost = sent, exactly"
    );
    // The lost ones are those right after what the first run read.
    let want: Vec<u64> = (0..100).chain(100 + lost..total).collect();
    assert_eq!(got, want);
    assert_eq!(s.metric("processor_restarts_total", "plugin"), 1);
    assert_eq!(s.metric("processor_dropped_records_total", "plugin"), 0);
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{lost} records it had not read are lost")),
        "{stderr}"
    );
}

#[test]
fn plugin_that_never_reads_drops_for_itself_alone() {
    let s = Setup::new(
        "exec-stuck",
        &[],
        r#"  store: { type: store }
  stuck:
    type: exec
    command: [sleep, "1000"]
    stop_timeout: 1s
    queue: { batches: 4 }"#,
        r#"  - { name: all, filter: "true", processors: [store, stuck] }"#,
    );
    let (batches, per) = (400, 20);
    s.send_all(batches * per, per);
    wait_for("the store to take everything", WAIT, || {
        s.metric("processor_written_records_total", "store") == batches * per
    });
    assert!(s.metric("processor_dropped_records_total", "stuck") > 0);
    assert_eq!(s.metric("processor_dropped_records_total", "store"), 0);
    let store = s.dir().join("store");
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    let (written, dropped) = processor_counts(&stderr, "stuck");
    assert_eq!(
        written + dropped,
        batches * per,
        "each record taken or dropped"
    );
    assert!(
        dropped >= (batches - 40) * per,
        "all but a few batches dropped: {dropped}"
    );
    assert_eq!(
        processor_counts(&stderr, "store"),
        (batches * per, 0),
        "the store kept everything"
    );
    assert_eq!(
        support::count(&store, &[]),
        batches * per,
        "everything is in the store"
    );
}

/// The plugins in `examples/plugins/`, as a user would configure them.
#[test]
fn example_plugins_keep_error_records() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins");
    let processors = format!(
        r#"  python:
    type: exec
    command: [python3, {py}, DIR/alerts.jsonl, --confirm]
    confirm: true
  shell: {{ type: exec, command: [/bin/sh, {sh}, DIR/errors.jsonl] }}"#,
        py = examples.join("errors_to_file.py").display(),
        sh = examples.join("grep_errors.sh").display(),
    );
    let s = Setup::new(
        "exec-examples",
        &[],
        &processors,
        r#"  - { name: all, filter: "true", processors: [python, shell] }"#,
    );
    let total = 600;
    s.send_all(total, 40);
    let want: Vec<u64> = (0..total).filter(|s| s % 3 == 0).collect();
    let (alerts, errors) = (s.dir().join("alerts.jsonl"), s.dir().join("errors.jsonl"));
    wait_for("both plugins to write every error record", WAIT, || {
        lines(&alerts).len() >= want.len() && lines(&errors).len() >= want.len()
    });
    assert_eq!(
        seqs(&lines(&errors)),
        want,
        "the shell plugin keeps the records whole"
    );
    let texts: Vec<String> = lines(&alerts)
        .iter()
        .map(|a| a["text"].as_str().unwrap().to_owned())
        .collect();
    let want_texts: Vec<String> = want
        .iter()
        .map(|s| format!("ERROR app::orders on exec-test: record {s}"))
        .collect();
    assert_eq!(texts, want_texts, "the Python plugin's payloads");
    wait_for("every record confirmed", WAIT, || {
        s.metric("processor_unconfirmed_records", "python") == 0
    });
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(processor_counts(&stderr, "python"), (total, 0));
    assert_eq!(processor_counts(&stderr, "shell"), (total, 0));
    assert_eq!(lines(&errors).len(), want.len(), "nothing more at shutdown");
}

/// An exec processor `name` whose program appends its pid to
/// `DIR/<name>.pids` when it starts, then copies its stdin to `DIR/<out>`.
fn copying(name: &str, out: &str) -> String {
    format!(
        "  {name}: {{ type: exec, command: [/bin/sh, -c, \"echo $$ >> DIR/{name}.pids; exec cat >> DIR/{out}\"] }}\n"
    )
}

fn pids(dir: &Path, name: &str) -> Vec<i32> {
    std::fs::read_to_string(dir.join(format!("{name}.pids")))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn sighup_adds_removes_and_changes_exec_processors_leaving_the_others_running() {
    let all = |names: &str| format!("  - {{ name: all, filter: \"true\", processors: [{names}] }}");
    let before = copying("a", "a.out") + &copying("b", "b.out") + &copying("c", "c.out");
    let s = Setup::new("exec-sighup", &[], before.trim_end(), &all("a, b, c"));
    let dir = s.dir().to_owned();
    wait_for("three plugins to start", WAIT, || {
        ["a", "b", "c"].iter().all(|n| pids(&dir, n).len() == 1)
    });
    s.send_all(100, 20);
    wait_for("the first records", WAIT, || {
        ["a.out", "b.out", "c.out"]
            .iter()
            .all(|f| lines(&dir.join(f)).len() == 100)
    });
    let (a, b, c) = (pids(&dir, "a")[0], pids(&dir, "b")[0], pids(&dir, "c")[0]);

    // a unchanged, b's command changed, c removed, d added.
    let after = copying("a", "a.out") + &copying("b", "b2.out") + &copying("d", "d.out");
    s.reload(after.trim_end(), &all("a, b, d"));
    wait_for("the reload", WAIT, || {
        metric(&metrics_text(&s.metrics), "distlogd_reloads_total") == 1
    });
    s.send_all_from(100, 100, 20);
    wait_for("the records after the reload", WAIT, || {
        lines(&dir.join("a.out")).len() == 200
            && lines(&dir.join("b2.out")).len() == 100
            && lines(&dir.join("d.out")).len() == 100
    });
    assert_eq!(
        pids(&dir, "a"),
        [a],
        "the unchanged plugin was not restarted"
    );
    assert!(alive(a));
    assert_eq!(
        seqs(&lines(&dir.join("a.out"))),
        (0..200).collect::<Vec<_>>()
    );
    let b_runs = pids(&dir, "b");
    assert_eq!(b_runs.len(), 2, "the changed plugin was started again");
    assert!(!alive(b) && alive(b_runs[1]), "the old one stopped");
    assert_eq!(
        seqs(&lines(&dir.join("b.out"))),
        (0..100).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&lines(&dir.join("b2.out"))),
        (100..200).collect::<Vec<_>>()
    );
    assert!(!alive(c), "the removed plugin stopped");
    assert_eq!(lines(&dir.join("c.out")).len(), 100, "and got nothing more");
    assert_eq!(pids(&dir, "d").len(), 1);
    assert_eq!(
        seqs(&lines(&dir.join("d.out"))),
        (100..200).collect::<Vec<_>>()
    );
    let (status, stderr) = s.broker.stop();
    assert!(status.success(), "{stderr}");
    assert!(!alive(a), "plugins stop with the broker");
}
