//! The facade's call-site table is bounded: more `log` locations than it
//! holds still log, intact and in order, through the uncached path, and
//! the locations it did intern keep finding their sites.
mod common;

use common::{app_records, Receiver};
use std::time::Duration;

/// More locations than the table interns (2,048).
const LOCATIONS: u32 = 3_000;

fn log_at(line: u32, pass: u32) {
    log::logger().log(
        &log::Record::builder()
            .args(format_args!("line {line} pass {pass}"))
            .level(log::Level::Info)
            .target("generated")
            .module_path_static(Some("generated"))
            .file_static(Some("generated.rs"))
            .line(Some(line))
            .build(),
    );
}

#[test]
fn locations_past_the_table_bound_still_log() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    for pass in 0..2 {
        for line in 0..LOCATIONS {
            log_at(line, pass);
        }
    }
    common::end_marker();
    let batches = receiver.collect_until_end(Duration::from_secs(60));
    let got: Vec<(u32, String, String)> = app_records(&batches)
        .map(|r| (r.line, r.file.clone(), r.rendered_message()))
        .collect();
    let want: Vec<(u32, String, String)> = (0..2)
        .flat_map(|pass| {
            (0..LOCATIONS).map(move |line| {
                (
                    line,
                    "generated.rs".to_owned(),
                    format!("line {line} pass {pass}"),
                )
            })
        })
        .collect();
    assert_eq!(got.len(), want.len(), "record count");
    assert!(got == want, "records intact and in order");
    assert_eq!(distlog::stats().dropped, 0);
}
