//! `distlog ui` in a real browser: Debian's chromium, headless, driven
//! through chromedriver (WebDriver). scripts/provision installs both;
//! without them this test fails and says so.
//!
//! Against a real broker (store, publish socket, metrics) and the real
//! `distlog ui`: the three-process request (plus its Python service)
//! shows as a waterfall of six task rows, nested, the failed tasks
//! marked; a filtered search shows exactly the lines `distlog query`
//! prints for the same filter, and a bad filter shows its position; a
//! record sent after the page opened appears in live tail; a record whose
//! message, fields, target and host are `<script>` / `<img onerror>` /
//! `<svg onload>` payloads shows them as text in live tail, search and
//! the tree, and runs nothing. The page's headers forbid inline script.
//!
//! It takes screenshots of the waterfall and of search into
//! `target/ui-screenshots/`; with `DISTLOG_UPDATE_SCREENSHOTS=1` into
//! `docs/` instead (docs/ui-tree.png and docs/ui-search.png, which the
//! README shows), so a test run leaves the tracked files alone. `ui_speed` (ignored; run by hand) measures what PERFORMANCE.md
//! reports.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// The entry point of the request's child processes (`support::request_flow`).
#[test]
fn child_role() {
    request_flow::child_role();
}

/// How long any one condition may take to hold.
const WAIT: Duration = Duration::from_secs(30);

/// An executable on PATH or in /usr/bin, or a failure that says what to do.
fn tool(name: &str, package: &str) -> PathBuf {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the web view's browser tests need Debian's \
                 {package} package; run scripts/provision (the test command does) or \
                 `apt-get install chromium chromium-driver`"
            )
        })
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `distlog ui` with `args` on a free port and returns it with the
/// URL it printed.
fn start_ui(args: &[&str]) -> (Proc, String) {
    // DISTLOG_UI_BIN: another build of `distlog` (a release one, for
    // `ui_speed` from a debug test build), as an absolute path: the test
    // runs in broker/.
    let bin = std::env::var_os("DISTLOG_UI_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_distlog")),
        PathBuf::from,
    );
    let mut child = Command::new(bin)
        .arg("ui")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start distlog ui");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("distlog ui: serving ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(WAIT)
        .expect("distlog ui prints its address");
    (Proc(child), url)
}

/// chromedriver and a headless chromium session on it.
struct Browser {
    client: Client,
    _driver: Proc,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = tool("chromium", "chromium");
        let driver_bin = tool("chromedriver", "chromium-driver");
        let port = free_port();
        let driver = Proc(
            Command::new(driver_bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let addr = format!("127.0.0.1:{port}");
        wait_for("chromedriver to listen", WAIT, || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,900"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a chromium session through chromedriver");
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Evaluates `expr` in the page.
    async fn js(&self, expr: &str) -> Value {
        self.client
            .execute(&format!("return ({expr});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Waits until `expr` is truthy in the page; returns its value.
    async fn wait(&self, what: &str, expr: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(expr).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} ({expr} = {v})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = if std::env::var_os("DISTLOG_UPDATE_SCREENSHOTS").is_some() {
            root.join("docs")
        } else {
            root.join("target/ui-screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Nothing injected ran: no alert open, no flag set by a payload, no
    /// element a payload would have made.
    async fn nothing_ran(&self) {
        assert!(
            self.client.get_alert_text().await.is_err(),
            "an alert is open: a payload ran"
        );
        let v = self
            .js("[window.distlogPwned === undefined, document.querySelectorAll('main img, main svg, main script, main iframe').length]")
            .await;
        assert_eq!(
            v,
            serde_json::json!([true, 0]),
            "a payload ran or became markup"
        );
    }
}

/// The text lines `distlog query` prints for `filter`.
fn query_lines(store: &Path, filter: &str) -> Vec<String> {
    distlog_ok([
        "query".as_ref(),
        "--data-dir".as_ref(),
        store.as_os_str(),
        "--filter".as_ref(),
        filter.as_ref(),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Sends one record as the original Python clients do (a JSON frame).
fn send_python(endpoint: &str, rec: &Value) {
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(endpoint).unwrap();
    push.send_multipart([&b"TLJ"[..], rec.to_string().as_bytes()], 0)
        .unwrap();
    push.set_linger(5000).unwrap();
}

/// A Python client's record of `task` saying `msg` (no markup).
fn plain(task: &str, msg: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    serde_json::json!({
        "name": "svc", "msg": msg, "args": null, "levelname": "INFO", "levelno": 20,
        "created": now, "process": 1, "processName": "MainProcess", "thread": 1,
        "threadName": "MainThread", "message": msg, "hostname": "py-2",
        "context": {"key": format!("1@{task}")},
    })
}

/// Sends one record as the original Python clients do, with markup in
/// every string a page shows.
fn send_hostile(endpoint: &str, task: &str) {
    let msg = "<script>window.distlogPwned=1;alert(1)</script>";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let rec = serde_json::json!({
        "name": "<b>target</b>", "msg": msg, "args": null, "levelname": "ERROR", "levelno": 40,
        "pathname": "/srv/x.py", "filename": "x.py", "module": "x",
        "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 1,
        "funcName": "f", "created": now, "msecs": 0.0,
        "relativeCreated": 1.0, "thread": 1, "threadName": "MainThread",
        "processName": "<svg onload=\"window.distlogPwned=3;alert(3)\">", "process": 4242,
        "message": msg, "asctime": null,
        "hostname": "<img src=x onerror=\"window.distlogPwned=4;alert(4)\">",
        "context": {"key": format!("0@{task}"),
                    "html": "<img src=x onerror=\"window.distlogPwned=2;alert(2)\">"},
    });
    send_python(endpoint, &rec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_view_in_a_real_browser() {
    let tmp = TempDir::new("ui-browser");
    let store = tmp.path().join("store");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let broker = Broker::start(
        &endpoint,
        &store,
        &["--publish", &publish, "--metrics", &metrics],
    );
    let root = request_flow::run(&broker.endpoint);
    wait_for("the request's records in the store", WAIT, || {
        stored(&store, &["--filter", &format!("task under {root:?}")]) == request_flow::RECORDS
    });
    let store_arg = store.to_str().unwrap();
    let (_ui, url) = start_ui(&[
        "--data-dir",
        store_arg,
        "--broker",
        &publish,
        "--metrics",
        &metrics,
    ]);

    // The page's own headers.
    let get = |host: &str| {
        use std::io::{Read, Write};
        let mut s =
            std::net::TcpStream::connect(url.trim_start_matches("http://").trim_end_matches('/'))
                .unwrap();
        write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.to_ascii_lowercase()
    };
    let head = get("localhost");
    // A name that is not this machine's (DNS rebinding) gets no page.
    let rebound = get("attacker.example");
    assert!(rebound.starts_with("http/1.0 403"), "{rebound}");
    assert!(!rebound.contains("<script"), "{rebound}");
    assert!(rebound.contains("content-security-policy"), "{rebound}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        !head.contains("<script>") && head.contains("<script src=\"/app.js\""),
        "no inline script: {head}"
    );

    let b = Browser::start().await;

    // 1. The waterfall: six task rows, nested, failed ones marked.
    b.client.goto(&format!("{url}#tree={root}")).await.unwrap();
    b.wait(
        "the tree",
        "document.getElementById('waterfall').dataset.done",
    )
    .await;
    assert_eq!(
        b.js("document.getElementById('waterfall').dataset.done")
            .await,
        "ok"
    );
    let rows = b
        .js(
            "[...document.querySelectorAll('#waterfall .task-row')].map(r => [
               r.querySelector('.wf-name').textContent, Number(r.dataset.depth), r.dataset.status,
               r.querySelector('.wf-badge').textContent,
               getComputedStyle(r.querySelector('.wf-bar')).backgroundColor,
               [...r.querySelectorAll('.wf-proc')].map(p => p.textContent).join(' '),
               r.querySelectorAll('.wf-mark').length])",
        )
        .await;
    let rows = rows.as_array().unwrap();
    let want = [
        (root.as_str(), 0, "failed", 3),
        ("/1", 1, "failed", 2),
        ("/1/1", 2, "succeeded", 3),
        ("/1/2", 2, "failed", 3),
        ("/1/3", 2, "succeeded", 3),
        ("/2", 1, "succeeded", 3),
    ];
    assert_eq!(rows.len(), want.len(), "task rows: {rows:?}");
    let red = "rgb(217, 72, 15)";
    for (row, (label, depth, status, marks)) in rows.iter().zip(want) {
        assert_eq!(row[0], label, "{row}");
        assert_eq!(row[1], depth, "{row}");
        assert_eq!(row[2], status, "{row}");
        assert_eq!(row[3] == "FAILED", status == "failed", "{row}");
        assert_eq!(row[4] == red, status == "failed", "failed bars red: {row}");
        assert_eq!(row[6], marks, "record marks: {row}");
    }
    assert!(
        rows[3][5].as_str().unwrap().contains("/db pid"),
        "{:?}",
        rows[3]
    );
    assert!(
        rows[5][5]
            .as_str()
            .unwrap()
            .contains("py-1/MainProcess pid 999"),
        "Python row: {:?}",
        rows[5]
    );
    // The marks carry the message on hover.
    let titles = b.js("[...document.querySelectorAll('#waterfall .task-row')][3].querySelector('.wf-mark.lvl-warn').title").await;
    assert_eq!(titles, "WARNING slow plan: sequential scan on orders");
    // Collapse /1: its three subtasks hide; expand: back.
    b.click("#waterfall .task-row:nth-child(3) .wf-toggle")
        .await;
    let hidden = "[...document.querySelectorAll('#waterfall .task-row')].filter(r => r.hidden).map(r => r.querySelector('.wf-name').textContent)";
    assert_eq!(
        b.js(hidden).await,
        serde_json::json!(["/1/1", "/1/2", "/1/3"])
    );
    b.click("#waterfall .task-row:nth-child(3) .wf-toggle")
        .await;
    assert_eq!(b.js(hidden).await, serde_json::json!([]));
    b.screenshot("ui-tree.png").await;

    // 2. Search: a bad filter shows where; a good one shows exactly what
    // `distlog query` prints.
    b.click("button[data-tab=search]").await;
    b.type_into("#filter", "  level >= ").await;
    b.click("#search-go").await;
    b.wait(
        "the filter error",
        "document.getElementById('results').dataset.done === 'error'",
    )
    .await;
    let err = b
        .js("document.getElementById('filter-error').textContent")
        .await;
    let err = err.as_str().unwrap();
    let cli = distlog(["query", "--data-dir", store_arg, "--filter", "  level >= "]);
    let cli = String::from_utf8(cli.stderr).unwrap();
    let first = err.lines().next().unwrap();
    assert_eq!(
        cli.trim(),
        format!("distlog: error: {first}"),
        "as the CLI says it"
    );
    assert!(
        first.starts_with("bad filter at line 1, column 12: expected a value"),
        "{err}"
    );
    assert!(
        err.contains("\n  level >= \n           ^ expected a value"),
        "caret under column 12: {err}"
    );
    let filter = "level >= warn or host == \"py-1\"";
    b.type_into("#filter", filter).await;
    b.click("#search-go").await;
    b.wait(
        "search results",
        "document.getElementById('results').dataset.done === 'ok'",
    )
    .await;
    let shown = b
        .js("[...document.querySelectorAll('#results .line')].map(e => e.textContent)")
        .await;
    let expected = query_lines(&store, filter);
    assert_eq!(expected.len(), 7, "{expected:?}");
    assert_eq!(
        shown,
        serde_json::json!(expected),
        "the page shows what distlog query prints"
    );
    b.screenshot("ui-search.png").await;
    // A record expands to all its fields.
    b.click("#results li:nth-child(2) .line").await;
    let detail = b
        .js("document.querySelector('#results li:nth-child(2) .detail').textContent")
        .await;
    let detail: Value = serde_json::from_str(detail.as_str().unwrap()).unwrap();
    let want: Value = serde_json::from_str(
        distlog_ok([
            "query",
            "--data-dir",
            store_arg,
            "--filter",
            filter,
            "--format",
            "jsonl",
        ])
        .lines()
        .nth(1)
        .unwrap(),
    )
    .unwrap();
    assert_eq!(detail["fields"], want["fields"], "{detail}");
    assert_eq!(detail["exc_text"], "timeout after 5s", "{detail}");
    assert_eq!(detail["processName"], "db", "{detail}");

    // 3. Live tail: empty when opened; a record sent now appears, as text.
    // (Filtered to the task: the broker publishes its own metric records
    // every 10 s.)
    let hostile_task = "6f1e28ba-2fa1-41d2-883f-0016d3cca427";
    b.click("button[data-tab=live]").await;
    b.type_into("#live-filter", &format!("task under {hostile_task:?}"))
        .await;
    b.click("#live-form button[type=submit]").await;
    b.wait(
        "the live tail to open",
        "document.getElementById('live-status').dataset.state === 'open'",
    )
    .await;
    assert_eq!(
        b.js("document.querySelectorAll('#live-records li').length")
            .await,
        0
    );
    send_hostile(&broker.endpoint, hostile_task);
    let line = b
        .wait("the record in live tail", "[...document.querySelectorAll('#live-records .line')].map(e => e.textContent).find(t => t.includes('distlogPwned=1'))")
        .await;
    let line = line.as_str().unwrap();
    assert!(
        line.contains("<script>window.distlogPwned=1;alert(1)</script>"),
        "{line}"
    );
    b.click("#live-records li:last-child .line").await;
    let detail = b
        .js("document.querySelector('#live-records li:last-child .detail').textContent")
        .await;
    assert!(
        detail
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=\\\"window.distlogPwned=2"),
        "{detail}"
    );
    b.nothing_ran().await;
    // Paused, what arrives is held (and counted), and shown on resume.
    b.click("#live-pause").await;
    send_python(&broker.endpoint, &plain(hostile_task, "sent while paused"));
    b.wait(
        "the held record",
        "document.getElementById('live-status').textContent.includes('(paused: 1 held)')",
    )
    .await;
    let shown = "[...document.querySelectorAll('#live-records .line')].some(e => e.textContent.includes('sent while paused'))";
    assert_eq!(b.js(shown).await, false, "not shown while paused");
    b.click("#live-pause").await;
    assert_eq!(b.js(shown).await, true, "shown on resume");

    // The same record in search and in its tree: text, nothing runs.
    wait_for("the hostile record in the store", WAIT, || {
        count(
            &store,
            &["--filter", &format!("task under {hostile_task:?}")],
        ) == 2
    });
    b.click("button[data-tab=search]").await;
    b.type_into("#filter", "message contains \"<script>\"")
        .await;
    b.click("#search-go").await;
    b.wait(
        "search results",
        "document.getElementById('results').dataset.done === 'ok'",
    )
    .await;
    let shown = b
        .js("[...document.querySelectorAll('#results .line')].map(e => e.textContent)")
        .await;
    assert_eq!(
        shown,
        serde_json::json!(query_lines(&store, "message contains \"<script>\""))
    );
    b.click("#results li:first-child .line").await;
    b.nothing_ran().await;
    b.click("#results li:first-child .task-link").await;
    b.wait("the hostile tree", &format!("document.getElementById('waterfall').dataset.done && document.getElementById('task').value === {hostile_task:?}")).await;
    let row = b.js("document.querySelector('#waterfall .task-row .wf-msg').textContent + '|' + document.querySelector('#waterfall .task-row .wf-proc').textContent").await;
    assert!(
        row.as_str()
            .unwrap()
            .contains("<script>window.distlogPwned=1")
            && row.as_str().unwrap().contains("<img src=x onerror="),
        "{row}"
    );
    b.nothing_ran().await;

    // 4. The glance reads the broker's metrics.
    b.click("button[data-tab=glance]").await;
    b.wait(
        "metrics",
        "document.querySelectorAll('#glance-table tbody tr').length",
    )
    .await;

    b.client.close().await.unwrap();
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
}

/// Writes a tree of 500 tasks (a root, 20 children, 479 grandchildren)
/// of 10 records each into a new store at `dir`; returns the root id.
fn write_big_tree(dir: &Path) -> String {
    use distlog_core::record::{Field, Record, Value};
    use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
    let root = "5a1e28ba-2fa1-41d2-883f-0016d3cca427".to_owned();
    let mut tasks = vec![root.clone()];
    for i in 0..499u32 {
        tasks.push(if i < 20 {
            format!("{root}/{}", i + 1)
        } else {
            format!("{root}/{}/{}", (i - 20) % 20 + 1, (i - 20) / 20 + 1)
        });
    }
    let mut records = Vec::new();
    for (k, task) in tasks.iter().enumerate() {
        for n in 1..=10u32 {
            let status = match n {
                1 => "started",
                10 if k % 97 == 5 => "failed",
                10 => "succeeded",
                _ => "",
            };
            let mut fields = vec![Field {
                key: "step".into(),
                value: Value::U64(u64::from(n)),
            }];
            if !status.is_empty() {
                fields.push(Field {
                    key: "task_status".into(),
                    value: Value::Str(status.into()),
                });
            }
            records.push(Record {
                time_ns: 1_700_000_000_000_000_000 + (k as u64) * 1_000_000 + u64::from(n) * 50_000,
                level: if status == "failed" { 40 } else { 20 },
                kind: b'L',
                target: "bench".into(),
                message: format!("task {k} step {n}"),
                task: task.clone(),
                task_n: n,
                fields,
                ..Record::default()
            });
        }
    }
    assert_eq!((tasks.len(), records.len()), (500, 5_000));
    let mut w = distlogd::store::Writer::open(dir, 64 << 20).unwrap();
    for (i, chunk) in records.chunks(100).enumerate() {
        let mut recs = chunk.to_vec();
        for (j, r) in recs.iter_mut().enumerate() {
            r.seq = (i * 100 + j) as u64;
        }
        let b = Batch {
            sender: Sender {
                host: "bench-host".into(),
                pid: 7,
                program: "bench".into(),
                start_ns: 1,
                instance: 3,
            },
            first_seq: recs[0].seq,
            dropped: 0,
            records: recs,
        };
        w.append(*b"TLR", &encode_batch_to_vec(&b)).unwrap();
    }
    w.sync().unwrap();
    root
}

/// Writes `n` records like `distlog loadgen --fields 3`'s (message
/// `record <i> of ...`, fields k0..k2) into a new store at `dir`, 1,000
/// to a batch, in 16 MiB segments.
fn write_filler(dir: &Path, n: u64) {
    use distlog_core::record::{Field, Record, Value};
    use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
    let mut w = distlogd::store::Writer::open(dir, 16 << 20).unwrap();
    let sender = Sender {
        host: "load-host".into(),
        pid: 9,
        program: "loadgen".into(),
        start_ns: 1,
        instance: 5,
    };
    for first in (0..n).step_by(1_000) {
        let records = (first..(first + 1_000).min(n))
            .map(|i| Record {
                seq: i,
                time_ns: 1_700_000_000_000_000_000 + i * 1_000,
                level: 20,
                kind: b'L',
                target: "loadgen".into(),
                message: format!("record {i} of {n}"),
                fields: (0..3)
                    .map(|k| Field {
                        key: format!("k{k}"),
                        value: Value::U64(i % 10_000 + k),
                    })
                    .collect(),
                ..Record::default()
            })
            .collect();
        let b = Batch {
            sender: sender.clone(),
            first_seq: first,
            dropped: 0,
            records,
        };
        w.append(*b"PLR", &encode_batch_to_vec(&b)).unwrap();
    }
    w.sync().unwrap();
}

/// What PERFORMANCE.md reports, measured in the browser (prints, asserts
/// nothing about time; run by hand, with a release `distlog`):
///
/// ```sh
/// cargo build --release -p distlogd --bin distlog
/// DISTLOG_UI_BIN=$PWD/target/release/distlog DISTLOG_UI_BIG_STORE=/tmp/dl-perf/store \
///   cargo test -p distlogd --test ui_browser -- --ignored --nocapture ui_speed
/// ```
///
/// (Without DISTLOG_UI_BIG_STORE, the tree only.) The times are the
/// page's: `performance.now()` around drawing the tree, and from the
/// search's request to its first record on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for PERFORMANCE.md, run by hand"]
async fn ui_speed() {
    let tmp = TempDir::new("ui-speed");
    let root = write_big_tree(tmp.path());
    let (_ui, url) = start_ui(&["--data-dir", tmp.path().to_str().unwrap()]);
    let b = Browser::start().await;
    b.client.goto(&format!("{url}#tree={root}")).await.unwrap();
    b.wait(
        "the tree",
        "document.getElementById('waterfall').dataset.done === 'ok'",
    )
    .await;
    assert_eq!(
        b.js("document.querySelectorAll('#waterfall .task-row').length")
            .await,
        500
    );
    assert_eq!(
        b.js("document.querySelectorAll('#waterfall .wf-mark').length")
            .await,
        5_000
    );
    let mut render = Vec::new();
    let mut load = Vec::new();
    for _ in 0..7 {
        b.click("#tree-form button[type=submit]").await;
        b.wait(
            "the tree",
            "document.getElementById('waterfall').dataset.done === 'ok'",
        )
        .await;
        render.push(b.js("window.distlogTreeRenderMs").await.as_f64().unwrap());
        load.push(b.js("window.distlogTreeLoadMs").await.as_f64().unwrap());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "tree of 500 tasks / 5000 records: render median {:.1} ms (runs {render:?}); fetch+parse+render median {:.1} ms",
        median(&mut render.clone()),
        median(&mut load.clone())
    );
    let generated = TempDir::new("ui-speed-store");
    let big = std::env::var("DISTLOG_UI_BIG_STORE").unwrap_or_else(|_| {
        write_filler(generated.path(), 1_000_000);
        generated.path().to_str().unwrap().to_owned()
    });
    {
        let (_ui, url) = start_ui(&["--data-dir", &big]);
        b.client.goto(&url).await.unwrap();
        for filter in [
            "",
            "field.k0 == 4242",
            "message contains \"record 999999 \"",
        ] {
            b.type_into("#filter", filter).await;
            b.click("#search-go").await;
            b.wait(
                "search results",
                "document.getElementById('results').dataset.done",
            )
            .await;
            let first = b.js("window.distlogSearchFirstMs").await;
            let status = b
                .js("document.getElementById('search-status').textContent")
                .await;
            println!("search {filter:?} over {big}: first results after {first} ms; {status}");
            b.js("(window.distlogSearchFirstMs = null)").await;
        }
    }
    b.client.close().await.unwrap();
}
