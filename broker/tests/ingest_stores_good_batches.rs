//! The real broker binary: good batches interleaved with garbage are all
//! stored, the garbage is counted by reason, sequence gaps are counted,
//! SIGTERM stores everything received and exits 0, and a torn tail in the
//! store is detected and truncated.

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::{Reader, Writer};
use std::time::Duration;
use support::{free_port, messages_taken, wait_for, Broker, TempDir};

fn batch(first_seq: u64, n: u64) -> Vec<u8> {
    let b = Batch {
        sender: Sender {
            host: "test-host".into(),
            pid: 4242,
            program: "ingest-test".into(),
            start_ns: 1,
            instance: 99,
        },
        first_seq,
        dropped: 5,
        records: (0..n)
            .map(|i| Record {
                seq: first_seq + i,
                level: 20,
                kind: b'L',
                message: format!("record {}", first_seq + i),
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}

#[test]
fn good_batches_stored_garbage_counted_sigterm_drains() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let tmp = TempDir::new("ingest");
    let dir = tmp.path();
    let metrics = format!("127.0.0.1:{}", free_port());
    let broker = Broker::start(&endpoint, dir, &["--metrics", &metrics]);

    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&endpoint).unwrap();
    let mut seq = 0;
    let mut good_records = 0;
    let mut sent = 0;
    for i in 0..50u64 {
        if i == 25 {
            seq += 7; // a lost batch of 7 records: a gap
        }
        push.send_multipart([&b"TLR"[..], &batch(seq, 100)], 0)
            .unwrap();
        seq += 100;
        good_records += 100;
        sent += 2; // this batch and the message after it
        match i % 5 {
            0 => push.send(&b"only one frame"[..], 0).unwrap(),
            1 => push.send_multipart([&b"XXX"[..], &b"body"[..]], 0).unwrap(),
            2 => push
                .send_multipart([&b"TLR"[..], &batch(0, 3)[..40]], 0)
                .unwrap(),
            3 => push.send_multipart([&b"PLJ"[..], &b"{}"[..]], 0).unwrap(),
            4 if i == 4 => {
                // One real Python record (JSON), stored as a batch.
                let py = br#"{"name": "py.app", "levelno": 30, "created": 1700000000.0,
                    "message": "from python", "hostname": "py-1", "process": 5,
                    "context": {"key": "2@1b4e28ba-2fa1-11d2-883f-0016d3cca427"}}"#;
                push.send_multipart([&b"PLJ"[..], &py[..]], 0).unwrap();
            }
            4 if i == 9 => push
                .send_multipart([&b"PLP"[..], &b"\x80\x03N."[..]], 0)
                .unwrap(),
            _ => push
                .send_multipart([&b"TLR"[..], &b"DLB\x01\x00\x00\x00\x00"[..], &b"x"[..]], 0)
                .unwrap(),
        }
    }
    // Once the broker has taken every message off its socket, stop it.
    wait_for("every message taken", Duration::from_secs(20), || {
        messages_taken(&metrics) == sent
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "exit status {status:?}: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("stopped:"))
        .expect(&stderr);
    assert!(
        summary.contains(&format!("records={}", good_records + 1)),
        "{summary}"
    );
    assert!(summary.contains("batches=51"), "{summary}");
    assert!(summary.contains("gap_records=7"), "{summary}");
    assert!(summary.contains("client_dropped=5"), "{summary}");
    for reason in [
        "\"bad_frame_count\": 18",
        "\"bad_topic\": 10",
        "\"bad_length\": 10",
        "\"missing_field\": 10",
        "\"pickle_not_dict\": 1",
    ] {
        assert!(summary.contains(reason), "{reason} in {summary}");
    }

    // Everything stored reads back, in order.
    let count = |dir: &std::path::Path| -> (u64, usize) {
        let mut python = 0;
        let mut n = 0;
        let mut torn = 0;
        let mut expect = 0;
        for (_, reader) in Reader::open_dir(dir).unwrap() {
            torn += reader.torn();
            for b in reader.batches() {
                let b = b.unwrap();
                if b.batch.sender().instance == 0 {
                    // The Python record.
                    assert_eq!(b.topic.bytes(), *b"PLR");
                    let r = b.batch.record(0).unwrap();
                    assert_eq!(r.message(), "from python");
                    assert_eq!(r.key().unwrap(), "2@1b4e28ba-2fa1-11d2-883f-0016d3cca427");
                    assert_eq!(b.batch.sender().host.as_str(), "py-1");
                    python += 1;
                    continue;
                }
                assert_eq!(b.topic.bytes(), *b"TLR");
                for r in b.batch.records() {
                    if r.seq() != expect {
                        assert_eq!(expect, 2500, "only the one gap");
                        expect += 7;
                    }
                    assert_eq!(r.seq(), expect);
                    assert_eq!(r.message(), format!("record {expect}"));
                    expect += 1;
                    n += 1;
                }
            }
        }
        assert_eq!(python, 1, "the Python record was stored once");
        (n, torn)
    };
    assert_eq!(count(dir), (good_records, 0));

    // A torn tail (a crash mid-write) is detected, and cut at open.
    let last = distlogd::store::segments(dir).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&last, &bytes).unwrap();
    assert_eq!(count(dir), (good_records, 9));
    drop(Writer::open(dir, 1 << 20).unwrap());
    assert_eq!(count(dir), (good_records, 0));
}
