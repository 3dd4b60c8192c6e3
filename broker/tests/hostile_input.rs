//! Hostile input against the real broker: every kind of bad message,
//! interleaved with good records from the same and from other
//! connections. The broker stays up, counts each bad message by reason,
//! and stores every good record, in order.

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::Reader;
use std::time::Duration;
use support::{free_port, messages_taken, wait_for, Broker, TempDir};

fn good(first: u64, n: u64) -> Vec<u8> {
    encode_batch_to_vec(&Batch {
        sender: Sender {
            host: "good".into(),
            instance: 7,
            ..Sender::default()
        },
        first_seq: first,
        records: (first..first + n)
            .map(|s| Record {
                seq: s,
                message: format!("good {s}"),
                ..Record::default()
            })
            .collect(),
        ..Batch::default()
    })
    .to_vec()
}

/// (topic, body or frames, the reason it must be counted under).
fn hostile() -> Vec<(Vec<Vec<u8>>, &'static str)> {
    let valid = good(0, 3);
    let mut bad_offsets = valid.clone();
    let n = bad_offsets.len();
    for b in &mut bad_offsets[n - 12..n - 4] {
        *b ^= 0x5a; // the root's relative pointers
    }
    let mut flipped_len = valid.clone();
    flipped_len[4] ^= 1;
    let two = |t: &[u8], b: &[u8]| vec![t.to_vec(), b.to_vec()];
    let deep_json = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge_json = format!(
        r#"{{"levelno": 20, "created": 1.0, "msg": "{}"}}"#,
        "x".repeat(2 << 20)
    );
    // pickle: PROTO 3, GLOBAL os system, "echo pwned", TUPLE1, REDUCE, STOP
    let pickle_reduce = b"\x80\x03cos\nsystem\nX\x0a\x00\x00\x00echo pwnedq\x00\x85R.".to_vec();
    // pickle: PROTO 4, STACK_GLOBAL with two strings, EMPTY_TUPLE, NEWOBJ
    let pickle_newobj = b"\x80\x04\x8c\x08builtins\x8c\x06object\x93)\x81.".to_vec();
    // pickle: BUILD on a dict
    let pickle_build = b"\x80\x03}q\x00}b.".to_vec();
    vec![
        (vec![b"TLR".to_vec()], "bad_frame_count"),
        (
            vec![b"TLR".to_vec(), valid.clone(), b"extra".to_vec()],
            "bad_frame_count",
        ),
        (two(b"XLR", &valid), "bad_topic"),
        (two(b"TLRR", &valid), "bad_topic"),
        (two(b"", &valid), "bad_topic"),
        (two(b"TLR", &valid[..5]), "truncated"),
        (two(b"TLR", &valid[..valid.len() - 3]), "bad_length"),
        (two(b"TLR", &flipped_len), "bad_length"),
        (two(b"TLR", b"XYZ\x01\x00\x00\x00\x00"), "bad_magic"),
        (two(b"TLR", &bad_offsets), "invalid"),
        (two(b"TLJ", b"\xff\xfe\xfd not utf-8"), "json_syntax"),
        (two(b"TLJ", deep_json.as_bytes()), "json_syntax"),
        (two(b"TLJ", huge_json.as_bytes()), "too_large"),
        (two(b"TLJ", b"[1, 2, 3]"), "json_not_object"),
        (two(b"TLJ", b"{\"created\": 1.0}"), "missing_field"),
        (two(b"TLP", &pickle_reduce), "pickle_forbidden"),
        (two(b"TLP", &pickle_newobj), "pickle_forbidden"),
        (two(b"TLP", &pickle_build), "pickle_forbidden"),
        (two(b"TLP", b"\x80\x03"), "pickle_syntax"),
        (two(b"TLP", b"\x80\x03N."), "pickle_not_dict"),
    ]
}

#[test]
fn hostile_messages_are_counted_by_reason_and_every_good_record_is_stored() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let tmp = TempDir::new("hostile");
    let dir = tmp.path();
    // A small max_message so the oversized case is cheap.
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: [{endpoint}]\nmax_message: 4MiB\ndata_dir: {}\nmetrics: {{interval: 0s}}\n",
            dir.join("store").display()
        ),
    )
    .unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let broker = Broker::start(
        &endpoint,
        &dir.join("store"),
        &["--config", config.to_str().unwrap(), "--metrics", &metrics],
    );
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&endpoint).unwrap();
    // An oversized message on its own connection: ZeroMQ drops it and the
    // connection before the broker allocates it.
    let big = ctx.socket(zmq::PUSH).unwrap();
    big.set_linger(0).unwrap();
    big.connect(&endpoint).unwrap();
    big.send_multipart([&b"TLR"[..], &vec![0u8; 5 << 20]], 0)
        .unwrap();

    let cases = hostile();
    let mut want: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut seq = 0;
    let mut sent = 0;
    for round in 0..3 {
        for (frames, reason) in &cases {
            push.send_multipart(frames.iter().map(|f| &f[..]), 0)
                .unwrap();
            *want.entry(reason).or_default() += 1;
            push.send_multipart([&b"TLR"[..], &good(seq, 10)], 0)
                .unwrap();
            seq += 10;
            sent += 2;
        }
        let _ = round;
    }
    // Once the broker has taken every message on the good connection off
    // its socket, stop it (the oversized one never reaches it).
    wait_for("every message taken", Duration::from_secs(20), || {
        messages_taken(&metrics) == sent
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .expect(&stderr);
    for (reason, n) in &want {
        assert!(
            summary.contains(&format!("\"{reason}\": {n}")),
            "{reason} counted {n} times: {summary}"
        );
    }
    assert!(summary.contains(&format!("records={seq}")), "{summary}");
    assert!(summary.contains("gap_records=0"), "{summary}");

    let mut got = Vec::new();
    for (_, r) in Reader::open_dir(&dir.join("store")).unwrap() {
        for b in r.batches() {
            for rec in b.unwrap().batch.records() {
                got.push(rec.seq());
            }
        }
    }
    assert_eq!(
        got,
        (0..seq).collect::<Vec<_>>(),
        "every good record, in order"
    );
}
