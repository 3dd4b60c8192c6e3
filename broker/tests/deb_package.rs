//! The Debian package for broker nodes, built and used as an operator would:
//! `cargo deb` packages the binaries this test run built, `dpkg -i` installs
//! them with the systemd unit, the config under /etc/distlog and the
//! `distlog` user, `distlogd` runs from the package as that user with the
//! installed config, the installed `distlog` sends records and reads them
//! back, and `dpkg --purge` removes it all.
//!
//! It changes the machine (installs a package), so it runs only as root
//! with dpkg, and not when a `distlog` package is already installed (that
//! one is the operator's; the test says so and leaves it). cargo-deb comes
//! from `scripts/provision`.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{free_port, wait_for, Broker, TempDir};

const RECORDS: u64 = 2_000;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why this machine cannot run the test, if it cannot.
fn unsuitable() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root");
    }
    if Command::new("dpkg").arg("--version").output().is_err() {
        return Some("no dpkg");
    }
    let status = run("dpkg-query", &["-W", "-f=${Status}", "distlog"]);
    if String::from_utf8_lossy(&status.stdout).contains("installed") {
        return Some("a distlog package is already installed");
    }
    None
}

fn mode_owner(path: &str) -> (u32, String, String) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |db: &str, id: u32| -> String {
        run_ok("getent", &[db, &id.to_string()])
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    (
        m.permissions().mode() & 0o7777,
        name("passwd", m.uid()),
        name("group", m.gid()),
    )
}

#[test]
fn package_installs_runs_and_purges() {
    if let Some(why) = unsuitable() {
        eprintln!("skipped: the package test needs root and dpkg, and no distlog package installed ({why})");
        return;
    }
    let out = TempDir::new("deb");
    let out_dir = out.path().to_str().unwrap();

    // Package the binaries of this test run (the dev profile: cargo-deb
    // warns that it is meant for release builds; the package's contents and
    // scripts are the same).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let _ = (
        env!("CARGO_BIN_EXE_distlogd"),
        env!("CARGO_BIN_EXE_distlog"),
    );
    let built = run(
        &cargo,
        &[
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--manifest-path",
            manifest,
            "--output",
            out_dir,
        ],
    );
    assert!(
        built.status.success(),
        "cargo deb failed (scripts/provision installs cargo-deb):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).exists(),
        "no package at {deb:?}"
    );

    // The package holds what an operator needs, nothing at a stray path.
    let contents = run_ok("dpkg-deb", &["--contents", &deb]);
    for path in [
        "./usr/bin/distlogd",
        "./usr/bin/distlog",
        "./etc/distlog/distlogd.yaml",
        "distlogd.service",
        "./usr/share/doc/distlog/README.md",
    ] {
        assert!(
            contents.contains(path),
            "{path} not in the package:\n{contents}"
        );
    }

    run_ok("dpkg", &["-i", &deb]);
    let installed = Installed;
    // Where systemd runs, installing started the unit on the config's
    // ports; this test runs the packaged broker itself, on its own ports.
    if Path::new("/run/systemd/system").exists() {
        run_ok("systemctl", &["stop", "distlogd"]);
    }

    // What postinst set up.
    assert!(
        run("getent", &["passwd", "distlog"]).status.success(),
        "no distlog user"
    );
    assert_eq!(
        mode_owner("/var/lib/distlog"),
        (0o750, "distlog".into(), "distlog".into())
    );
    assert_eq!(
        mode_owner("/etc/distlog/distlogd.yaml"),
        (0o640, "root".into(), "distlog".into())
    );
    run_ok(
        "/usr/bin/distlogd",
        &["--check-config", "/etc/distlog/distlogd.yaml"],
    );

    // The broker from the package, as the unit runs it: the distlog user,
    // the installed config, /var/lib/distlog as working directory. Only the
    // ports are the test's own.
    let port = free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut c = Command::new("setpriv");
    c.args(["--reuid=distlog", "--regid=distlog", "--init-groups", "--"])
        .args([
            "/usr/bin/distlogd",
            "--config",
            "/etc/distlog/distlogd.yaml",
        ])
        .args(["--listen", &endpoint, "--metrics", &metrics])
        .current_dir("/var/lib/distlog");
    let broker = Broker::spawn(c, &endpoint);
    wait_for(
        "the packaged distlogd to listen",
        Duration::from_secs(30),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );

    let records = RECORDS.to_string();
    run_ok(
        "/usr/bin/distlog",
        &["loadgen", "--endpoint", &endpoint, "--records", &records],
    );
    let store = "/var/lib/distlog/distlog-data";
    let stored = || -> u64 {
        let out = run_ok(
            "/usr/bin/distlog",
            &[
                "query",
                "--data-dir",
                store,
                "--count",
                "--filter",
                "target == \"loadgen\"",
            ],
        );
        out.trim().parse().unwrap()
    };
    wait_for(
        "every record in the packaged broker's store",
        Duration::from_secs(60),
        || stored() >= RECORDS,
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "distlogd exited with {status}: {stderr}");
    assert_eq!(stored(), RECORDS, "records stored once each");
    // The store's files belong to the broker's user, private to it.
    let (mode, user, _) = mode_owner(store);
    assert_eq!(user, "distlog", "store dir owner");
    assert_eq!(mode & 0o007, 0, "store dir {mode:o} open to other users");

    drop(installed);
    for gone in [
        "/usr/bin/distlogd",
        "/usr/bin/distlog",
        "/etc/distlog",
        "/var/lib/distlog",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    let status = run("dpkg-query", &["-W", "-f=${Status}", "distlog"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains(" installed"),
        "still installed: {}",
        String::from_utf8_lossy(&status.stdout)
    );
}

/// Purges the package when dropped, so a failing test leaves no package
/// behind either.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = run("dpkg", &["--purge", "distlog"]);
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "dpkg --purge distlog failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
