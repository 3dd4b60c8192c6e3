//! `distlog query`'s text output is part of the stable command line
//! (docs/DESIGN.md): the same records print the same bytes, whichever way
//! the tool writes them (issue 17 part 5 writes plain lines straight into
//! a byte buffer and hands the rest to the filter crate's renderer).

mod support;

use distlog_core::record::{Field, Record, Value};
use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, Sender};
use support::*;

fn sender(host: &str) -> Sender {
    Sender {
        host: host.into(),
        pid: 31085,
        program: "p".into(),
        start_ns: 1,
        instance: 5,
    }
}

fn field(key: &str, value: Value) -> Field {
    Field {
        key: key.into(),
        value,
    }
}

/// Records that take every path of the printer: deferred messages with
/// each value type, a missing argument and doubled braces, plain text,
/// control characters, non-ASCII and bidi text (escaped), quoted field
/// values, tasks, errors, every level.
fn records() -> Vec<Record> {
    let t = 1_700_000_000_250_000_000u64;
    let records = vec![
        Record {
            time_ns: t,
            level: 20,
            target: "loadgen".into(),
            format: "loadgen record {} of thread {}".into(),
            args: vec![Value::U64(4242), Value::U64(1)],
            fields: vec![
                field("k0", Value::I64(4242)),
                field("k1", Value::Str("value".into())),
                field("k2", Value::Bool(true)),
            ],
            ..Record::default()
        },
        Record {
            time_ns: t + 1_500,
            level: 30,
            target: "db".into(),
            format: "took {} ms for {:?} {{x}} {}".into(),
            args: vec![Value::F64(1.5), Value::Str("two words".into())],
            fields: vec![
                field("neg", Value::I64(-7)),
                field("none", Value::Null),
                field("quoted", Value::Str("say \"hi\" k=v \\".into())),
                field("empty", Value::Str(String::new())),
                field("big", Value::U64(u64::MAX)),
            ],
            task: "1b4e/2".into(),
            task_n: 3,
            error: "boom here".into(),
            ..Record::default()
        },
        Record {
            time_ns: t + 2_000_000_000,
            level: 40,
            target: "web".into(),
            message: "line\nbreak\ttab caf\u{e9} \u{202e}evil \u{1b}[31m".into(),
            fields: vec![field("k\u{7}", Value::Str("x\u{85}y".into()))],
            error: "two\nlines".into(),
            ..Record::default()
        },
        Record {
            time_ns: 0,
            level: 50,
            message: "plain text, no target".into(),
            ..Record::default()
        },
        Record {
            time_ns: t + 3_000_000_000,
            level: 5,
            target: "t".into(),
            format: "caf\u{e9} {}".into(),
            args: vec![Value::I64(i64::MIN)],
            ..Record::default()
        },
        Record {
            time_ns: t + 3_000_000_001,
            level: 10,
            target: "t".into(),
            format: "open { brace {} and }".into(),
            fields: vec![field("f", Value::F64(-0.0))],
            ..Record::default()
        },
    ];
    records
        .into_iter()
        .zip(0..)
        .map(|(r, seq)| Record { seq, ..r })
        .collect()
}

/// What `distlog query` printed for [`records`] before issue 17 part 5
/// (main at 68257c0), byte for byte.
const EXPECTED: &str = r#"2023-11-14T22:13:20.250000Z INFO     vm/31085 loadgen: loadgen record 4242 of thread 1 k0=4242 k1=value k2=true
2023-11-14T22:13:20.250001Z WARNING  vm/31085 3@1b4e/2 db: took 1.5 ms for two words {x} {} neg=-7 none=null quoted="say \"hi\" k=v \\" empty="" big=18446744073709551615 error="boom here"
2023-11-14T22:13:22.250000Z ERROR    vm/31085 web: line\nbreak\ttab café \u{202e}evil \u{1b}[31m k\u{7}="x\u{85}y" error="two\nlines"
1970-01-01T00:00:00.000000Z CRITICAL vm/31085 plain text, no target
2023-11-14T22:13:23.250000Z TRACE    vm/31085 t: café -9223372036854775808
2023-11-14T22:13:23.250000Z DEBUG    vm/31085 t: open { brace {} and } f=-0
2023-11-14T22:13:20.250000Z INFO     hést 2/31085 loadgen: loadgen record 4242 of thread 1 k0=4242 k1=value k2=true
"#;

#[test]
fn query_prints_the_fixed_text() {
    let tmp = TempDir::new("print");
    let store = tmp.path();
    let mut w = distlogd::store::Writer::open(store, 1 << 20).unwrap();
    let body = encode_batch_to_vec(&Batch {
        sender: sender("vm"),
        records: records(),
        ..Batch::default()
    });
    w.append(*b"PLR", &body).unwrap();
    let other = encode_batch_to_vec(&Batch {
        sender: sender("h\u{e9}st 2"),
        records: records().into_iter().take(1).collect(),
        ..Batch::default()
    });
    w.append(*b"PLR", &other).unwrap();
    w.sync().unwrap();
    drop(w);
    let dir = store.to_str().unwrap();
    let text = distlog_ok(["query", "--data-dir", dir]);
    assert_eq!(text, EXPECTED, "got:\n{text}");
    // The same as the renderer's lines, one by one.
    let mut reference = String::new();
    for (system, body) in [(b'P', &body), (b'P', &other)] {
        let b = access_batch(body).unwrap();
        for r in b.records() {
            distlog_filter::render::text_line(system, b.sender(), r, false, &mut reference);
            reference.push('\n');
        }
    }
    assert_eq!(text, reference);
    // --limit cuts after whole lines.
    let first: String = EXPECTED.split_inclusive('\n').take(3).collect();
    assert_eq!(
        distlog_ok(["query", "--data-dir", dir, "--limit", "3"]),
        first
    );
}

/// Many segments, read by two threads whose text buffers are reused from
/// segment to segment: the output is every record, in stored order, as
/// the renderer writes it.
#[test]
fn query_prints_many_segments_in_order() {
    let tmp = TempDir::new("print-many");
    let store = tmp.path();
    let mut w = distlogd::store::Writer::open(store, 64 << 10).unwrap();
    let mut reference = String::new();
    for i in 0..200u64 {
        let records: Vec<Record> = records()
            .into_iter()
            .map(|mut r| {
                r.time_ns += i * 1_000_000_007;
                r.seq += i * 6;
                r
            })
            .collect();
        let body = encode_batch_to_vec(&Batch {
            sender: sender(["vm", "web-1"][i as usize % 2]),
            first_seq: i * 6,
            records,
            ..Batch::default()
        });
        w.append(*b"PLR", &body).unwrap();
        let b = access_batch(&body).unwrap();
        for r in b.records() {
            distlog_filter::render::text_line(b'P', b.sender(), r, false, &mut reference);
            reference.push('\n');
        }
    }
    w.sync().unwrap();
    drop(w);
    let segments = std::fs::read_dir(store).unwrap().count();
    assert!(segments > 3, "{segments} segments");
    let dir = store.to_str().unwrap();
    let text = distlog_ok(["query", "--data-dir", dir, "--threads", "2"]);
    assert_eq!(text, reference);
}
