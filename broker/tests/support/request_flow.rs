//! One request through three processes (frontend -> api -> db, each
//! continuing the tree from a task id handed over on its command line)
//! plus a Python service's records (what the PyPI client sends): the
//! tree `distlog tree` and the web view are tested on. A test binary that
//! uses it has a test named `child_role` calling [`child_role`]: the
//! processes are that binary run again.
use std::process::Command;

const ROLE: &str = "DISTLOG_CLI_TREE_ROLE";
const ID: &str = "DISTLOG_CLI_TREE_ID";

/// Runs this test binary again as `role`, continuing task `id`.
fn call(role: &str, id: &str) -> bool {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_role",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .env(ID, id)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The entry point of the child processes (does nothing unless started
/// by `call`).
pub fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let id = std::env::var(ID).unwrap_or_default();
    let guard = distlog::builder()
        .program(role.as_str())
        .system('T')
        .level("info")
        .install()
        .expect("distlog");
    let code = match role.as_str() {
        "frontend" => frontend(),
        "api" => api(&id),
        "db" => db(&id),
        other => panic!("unknown role {other}"),
    };
    distlog::flush();
    drop(guard);
    std::process::exit(code);
}

fn frontend() -> i32 {
    let request = distlog::task("GET /orders/17", &[("user", &"alice")]);
    println!("\nROOT={}", request.path());
    distlog::info!(route = "/orders/{id}"; "routing");
    let ok = call("api", &request.foreign_id());
    // A Python service continues the tree too (what the PyPI client sends).
    python_service(&request.foreign_id());
    if ok {
        request.success("200 OK");
    } else {
        request.fail("502 from api");
    }
    0
}

fn python_service(id: &str) {
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&std::env::var("DISTLOG_ENDPOINT").unwrap())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (n, level, msg) in [
        (0, 20, "price lookup"),
        (1, 20, "cache hit"),
        (2, 20, "price lookup"),
    ] {
        let rec = serde_json::json!({
            "name": "pricing", "msg": msg, "args": null, "levelname": "INFO", "levelno": level,
            "pathname": "/srv/pricing.py", "filename": "pricing.py", "module": "pricing",
            "exc_info": null, "exc_text": null, "stack_info": null, "lineno": 12,
            "funcName": "lookup", "created": now + n as f64 * 1e-3, "msecs": 0.0,
            "relativeCreated": 1.0, "thread": 1, "threadName": "MainThread",
            "processName": "MainProcess", "process": 999, "message": msg, "asctime": null,
            "hostname": "py-1",
            "context": {"key": format!("{n}@{id}"), "sku": "A-17"},
        });
        push.send_multipart([&b"TLJ"[..], rec.to_string().as_bytes()], 0)
            .unwrap();
    }
    push.set_linger(5000).unwrap();
}

fn api(id: &str) -> i32 {
    let part = distlog::import_task(id, "load order 17", &[]);
    {
        let auth = distlog::to("check permissions", &[]);
        distlog::info!("alice may read orders");
        auth.success("allowed");
    }
    let ok = call("db", &part.foreign_id());
    {
        let fallback = distlog::to("fallback to cache", &[]);
        distlog::info!(key = "order:17"; "cache hit");
        fallback.success("served from cache");
    }
    let result: Result<(), &str> = if ok { Ok(()) } else { Err("db failed") };
    let _ = part.finish(result);
    i32::from(!ok)
}

fn db(id: &str) -> i32 {
    let query = distlog::import_task(id, "SELECT order 17", &[("table", &"orders")]);
    distlog::warn!(rows = 0u64; "slow plan: sequential scan on {}", "orders");
    query.fail("timeout after 5s");
    1
}

/// Runs the request against the broker at `endpoint`: returns the root
/// task id once every process has exited (the records are sent, not
/// necessarily stored yet). 17 records: 14 from the Rust processes, 3
/// from the Python service.
pub fn run(endpoint: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_role",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, "frontend")
        .env("DISTLOG_ENDPOINT", endpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.split("ROOT=").nth(1))
        .expect("root id")
        .to_owned()
}

/// The records of one request.
pub const RECORDS: u64 = 17;
