//! One request through three processes: `frontend` starts the tree, hands a
//! task id to `api` on its command line, which hands one on to `db`. Every
//! record lands in one tree under the frontend's root task.
//!
//! ```sh
//! cargo run --release -p distlogd &                # the broker
//! cargo run --example request_flow                 # the three processes
//! ```
//!
//! Each process reads DISTLOG_ENDPOINT (default tcp://127.0.0.1:5010).

use std::process::Command;

fn main() {
    let _guard = distlog::builder()
        .program(role())
        .install()
        .expect("distlog");
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        None => frontend(),
        Some("api") => api(&args[2]),
        Some("db") => db(&args[2]),
        Some(other) => eprintln!("unknown role {other}"),
    }
}

fn role() -> String {
    std::env::args().nth(1).unwrap_or_else(|| "frontend".into())
}

/// Runs this program again in another role, continuing the tree there.
fn call(role: &str, task: &distlog::Task) -> bool {
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .args([role, &task.foreign_id()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn frontend() {
    let request = distlog::task("GET /orders/17", &[("user", &"alice")]);
    println!("request tree: {}", request.path());
    distlog::info!(route = "/orders/{id}"; "routing");
    let ok = call("api", &request);
    if ok {
        request.success("200 OK");
    } else {
        request.fail("502 from api");
    }
}

fn api(id: &str) {
    let part = distlog::import_task(id, "load order 17", &[]);
    {
        let auth = distlog::to("check permissions", &[]);
        distlog::debug!("alice may read orders");
        auth.success("allowed");
    }
    let ok = call("db", &part);
    let result: Result<(), &str> = if ok { Ok(()) } else { Err("db failed") };
    let _ = part.finish(result);
    std::process::exit(if ok { 0 } else { 1 });
}

fn db(id: &str) {
    let query = distlog::import_task(id, "SELECT order 17", &[("table", &"orders")]);
    distlog::metric::timing("db.query", std::time::Duration::from_micros(850), &[]);
    distlog::warn!(rows = 1u64; "slow plan: sequential scan on {}", "orders");
    query.success("1 row");
}
