//! [`FilterSet`] against its definition: for random sets of random filters
//! and random records, the set's matches are exactly the filters that pass
//! alone.

use super::tests::Rng;
use super::*;
use distlog_core::record::ValueRef;
use distlog_core::record::{Field, Record, Value};
use distlog_core::wire::{
    access_batch, encode_batch_to_vec, put_value, ArchivedWireBatch, Batch, Sender, Site, Thread,
    WireBatch, WireRecord,
};

const TARGETS: &[&str] = &[
    "db",
    "db::pool",
    "db::pool::x",
    "http::server",
    "dbx",
    "",
    "pool",
    // Longer than a value cache slot: looked up in the indexes each time.
    "db::pool::a_target_name_longer_than_the_sixty_four_bytes_a_cache_slot_holds",
];
const WORDS: &[&str] = &["timeout", "retry", "user 42", "closed", "time", "out", "db"];

/// One comparison, every kind the set indexes and some it runs one by one.
fn leaf(rng: &mut Rng) -> String {
    let s = |rng: &mut Rng| format!("{:?}", rng.pick(TARGETS));
    let w = |rng: &mut Rng| format!("{:?}", rng.pick(WORDS));
    match rng.below(23) {
        0 => format!(
            "level {} {}",
            rng.pick(&["==", "!=", "<", ">=", ">"]),
            rng.pick(&["warn", "10", "info", "0", "255", "error"])
        ),
        1 => format!(
            "level in [{}, {}]",
            rng.pick(&[5, 10, 20]),
            rng.pick(&[30, 40, 7])
        ),
        2 => format!("kind == {}", rng.pick(&["log", "perf"])),
        3 => format!(
            "system {} {}",
            rng.pick(&["==", "!="]),
            rng.pick(&["test", "production"])
        ),
        4 => format!("target == {}", s(rng)),
        22 => format!(
            "target {} \"db::pool::a_target\"",
            rng.pick(&["starts_with", "contains"])
        ),
        5 => format!("target != {}", s(rng)),
        6 => format!("target starts_with {}", s(rng)),
        7 => format!("target ends_with {}", s(rng)),
        8 => format!("target under {}", s(rng)),
        9 => format!("target contains {}", s(rng)),
        10 => format!("target in [{}, {}]", s(rng), s(rng)),
        11 => format!("target {} {}", rng.pick(&["<", ">="]), s(rng)),
        12 => format!("message contains {}", w(rng)),
        13 => format!(
            "message {} {}",
            rng.pick(&["starts_with", "ends_with", "==", "<"]),
            w(rng)
        ),
        14 => format!(
            "host {} {:?}",
            rng.pick(&["==", "contains"]),
            rng.pick(&["web-1", "web", "db-2"])
        ),
        15 => format!(
            "field.user_id {} {}",
            rng.pick(&["==", "==", "!=", ">"]),
            rng.pick(&["42", "7", "42.0", "\"42\""])
        ),
        16 => format!("field.shard == {:?}", rng.pick(&["s1", "s2", "42"])),
        17 => format!(
            "field.shard {} {:?}",
            rng.pick(&["starts_with", "contains"]),
            rng.pick(&["s", "1"])
        ),
        18 => format!(
            "key {} {:?}",
            rng.pick(&["==", "starts_with", "contains"]),
            rng.pick(&["3@", "3@t/1", "t/"])
        ),
        19 => format!("pid {} {}", rng.pick(&["==", "<"]), rng.pick(&[42, 100])),
        20 => format!(
            "thread {} {:?}",
            rng.pick(&["==", "ends_with"]),
            rng.pick(&["worker-1", "1"])
        ),
        21 => rng.pick(&["true", "false"]).to_owned(),
        _ => unreachable!(),
    }
}

fn filter(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.below(3) == 0 {
        return leaf(rng);
    }
    match rng.below(3) {
        0 => format!("not ({})", filter(rng, depth - 1)),
        k => {
            let n = 2 + rng.below(2);
            let xs: Vec<String> = (0..n)
                .map(|_| format!("({})", filter(rng, depth - 1)))
                .collect();
            xs.join(if k == 1 { " and " } else { " or " })
        }
    }
}

fn record(rng: &mut Rng, i: u64) -> Record {
    let mut message = String::new();
    for _ in 0..rng.below(5) {
        message.push_str(rng.pick(WORDS));
        message.push(' ');
    }
    let deferred = rng.below(4) == 0;
    let mut fields = Vec::new();
    for key in ["user_id", "shard", "user_id"] {
        if rng.below(3) > 0 {
            let value = match rng.below(5) {
                0 => Value::I64(rng.pick(&[42, 7, -1])),
                1 => Value::U64(rng.pick(&[42, 7])),
                2 => Value::F64(rng.pick(&[42.0, 42.5, 7.0])),
                3 => Value::Bool(true),
                _ => Value::Str(rng.pick(&["s1", "s2", "42"]).into()),
            };
            fields.push(Field {
                key: key.into(),
                value,
            });
        }
    }
    Record {
        seq: i,
        level: rng.pick(&[0, 5, 10, 20, 30, 40, 50, 255]),
        kind: rng.pick(b"LP"),
        target: rng.pick(TARGETS).into(),
        message: if deferred {
            String::new()
        } else {
            message.clone()
        },
        format: if deferred {
            format!("{{}} {message}")
        } else {
            String::new()
        },
        args: if deferred {
            vec![Value::I64(42)]
        } else {
            Vec::new()
        },
        thread_name: rng.pick(&["worker-1", "main", ""]).into(),
        task: rng.pick(&["", "t/1", "t/1/2"]).into(),
        task_n: 3,
        fields,
        ..Record::default()
    }
}

#[test]
fn random_sets_match_each_filter_alone() {
    let mut rng = Rng(0x05e7_0ff1_17e5);
    let records: Vec<Record> = (0..200).map(|i| record(&mut rng, i)).collect();
    let batch = Batch {
        sender: Sender {
            host: "web-1".into(),
            pid: 42,
            program: "api".into(),
            start_ns: 1,
            instance: 9,
        },
        first_seq: 0,
        dropped: 0,
        records,
    };
    let body = encode_batch_to_vec(&batch);
    let b = access_batch(&body).unwrap();
    let mut got = Vec::new();
    let (mut checked, mut pairs, mut hits) = (0usize, 0usize, 0usize);
    let mut one_probe = 0;
    for round in 0..150 {
        let n = 1 + rng.below(if round % 10 == 0 { 200 } else { 12 });
        let sources: Vec<String> = (0..n).map(|_| filter(&mut rng, 3)).collect();
        let filters: Vec<Filter> = sources
            .iter()
            .map(|s| Filter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect();
        let set = FilterSet::new(&sources).unwrap();
        assert!(set.tests() <= sources.len() * 8);
        one_probe += usize::from(set.one_probe());
        // Twice: the second pass answers from the signature cache.
        for _ in 0..2 {
            for (system, r) in [b'P', b'T'].into_iter().cycle().zip(b.records()) {
                let view = RecordView::new(system, b.sender(), r);
                let want: Vec<u32> = (0..n as u32)
                    .filter(|&i| filters[i as usize].matches(&view))
                    .collect();
                set.matching(&view, &mut got);
                assert_eq!(got, want, "{sources:#?}\non {:?}", r.to_record());
                let mut calls = 0;
                set.with_matches(&view, |m| {
                    calls += 1;
                    assert_eq!(m, want, "the slice, {sources:#?}");
                });
                assert_eq!(calls, 1);
                let mut in_batch = set.matcher_in(b);
                in_batch.with_matches(&view, |m| assert_eq!(m, want, "in batch, {sources:#?}"));
                checked += 1;
                pairs += n;
                hits += got.len();
            }
        }
    }
    assert_eq!(checked, 150 * 2 * 200);
    // Both evaluation paths (one memo probe, or the cheap key first) are
    // checked.
    assert!(
        (10..140).contains(&one_probe),
        "{one_probe} of 150 sets took one probe"
    );
    // Both outcomes are well represented.
    assert!(
        hits * 5 > pairs && hits * 5 < pairs * 4,
        "{hits} of {pairs}"
    );
}

#[test]
fn shared_tests_are_counted_once() {
    let set = FilterSet::new(&[
        "level >= warn",
        r#"level >= warn and target == "a""#,
        r#"level >= 30 or target in ["a", "b"]"#,
        r#"message contains "x" and not (level >= warn)"#,
    ])
    .unwrap();
    // level >= warn (= level >= 30), target == "a", target in [a, b],
    // message contains "x".
    assert_eq!(set.tests(), 4);
    assert_eq!(set.len(), 4);
    assert!(!set.is_empty());
}

#[test]
fn errors_name_the_filter_and_the_bound() {
    let e = FilterSet::new(&["true", "level >= loud"]).unwrap_err();
    assert!(matches!(e, SetError::Filter { index: 1, .. }), "{e}");
    assert!(
        e.to_string().starts_with("filter 1: line 1, column 10"),
        "{e}"
    );

    let many = vec!["true"; 65_537];
    let e = FilterSet::new(&many).unwrap_err();
    assert!(e.to_string().contains("at most 65536"), "{e}");

    let needle = "n".repeat(600 * 1024);
    let big = [
        format!("message contains {needle:?}"),
        format!("message contains \"x{needle}\""),
    ];
    let e = FilterSet::new(&big).unwrap_err();
    assert!(
        e.to_string().contains("`contains` needles on `message`"),
        "{e}"
    );

    let empty = FilterSet::new::<&str>(&[]).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn untrusted_records_cost_bounded_work() {
    // A message full of one needle's overlapping matches: each needle's
    // tests are added once, and the result stays exact.
    let set = FilterSet::new(&[r#"message contains "aa""#, r#"message contains "a""#]).unwrap();
    let rec = Record {
        message: "a".repeat(1 << 16),
        ..Record::default()
    };
    let batch = Batch {
        records: vec![rec],
        ..Batch::default()
    };
    let body = encode_batch_to_vec(&batch);
    let b = access_batch(&body).unwrap();
    let mut got = Vec::new();
    let r = b.records().next().unwrap();
    set.matching(&RecordView::new(b'P', b.sender(), r), &mut got);
    assert_eq!(got, [0, 1]);
}

/// Checks `set` against each of `sources` alone on every record of `b`,
/// twice (the second pass answers from the memo tables).
fn agree(sources: &[String], records: Vec<Record>) {
    let filters: Vec<Filter> = sources.iter().map(|s| Filter::parse(s).unwrap()).collect();
    let set = FilterSet::new(sources).unwrap();
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record { seq: i as u64, ..r })
        .collect();
    let body = encode_batch_to_vec(&Batch {
        records,
        ..Batch::default()
    });
    let b = access_batch(&body).unwrap();
    let mut got = Vec::new();
    let mut hits = 0;
    for _ in 0..2 {
        for r in b.records() {
            let view = RecordView::new(b'P', b.sender(), r);
            let want: Vec<u32> = (0..sources.len() as u32)
                .filter(|&i| filters[i as usize].matches(&view))
                .collect();
            set.matching(&view, &mut got);
            assert_eq!(got, want, "on {:?}", r.to_record());
            let mut each = Vec::new();
            set.for_each_matching(&view, |i| each.push(i));
            assert_eq!(each, want);
            let mut calls = 0;
            set.with_matches(&view, |m| {
                calls += 1;
                assert_eq!(m, want);
            });
            assert_eq!(calls, 1, "one slice per record");
            hits += want.len();
        }
        // One matcher for the whole batch: the same lists.
        let mut matcher = set.matcher();
        for r in b.records() {
            let view = RecordView::new(b'P', b.sender(), r);
            let want: Vec<u32> = (0..sources.len() as u32)
                .filter(|&f| filters[f as usize].matches(&view))
                .collect();
            let mut calls = 0;
            matcher.with_matches(&view, |m| {
                calls += 1;
                assert_eq!(m, want, "matcher, on {:?}", r.to_record());
            });
            assert_eq!(calls, 1);
        }
        // One matcher given the batch: its per-site work, the same lists.
        let mut matcher = set.matcher_in(b);
        for r in b.records() {
            let view = RecordView::new(b'P', b.sender(), r);
            let want: Vec<u32> = (0..sources.len() as u32)
                .filter(|&f| filters[f as usize].matches(&view))
                .collect();
            matcher.with_matches(&view, |m| {
                assert_eq!(m, want, "batch matcher, on {:?}", r.to_record());
            });
        }
        drop(matcher);
        // A router of the batch: each record's union of masks, each
        // filter's count (across the memo tables emptied mid-batch).
        let masks: Vec<u64> = (0..sources.len() as u64).map(|i| 1 << (i % 64)).collect();
        let mut router = set.router(b, &masks);
        let mut want_hits = vec![0u32; sources.len()];
        for r in b.records() {
            let view = RecordView::new(b'P', b.sender(), r);
            let want: Vec<u32> = (0..sources.len() as u32)
                .filter(|&f| filters[f as usize].matches(&view))
                .collect();
            want.iter().for_each(|&f| want_hits[f as usize] += 1);
            let union = want.iter().map(|&f| masks[f as usize]).reduce(|a, b| a | b);
            assert_eq!(router.route(&view), union, "router, on {:?}", r.to_record());
        }
        let mut hits = vec![0u32; sources.len()];
        router.add_hits(&mut hits);
        assert_eq!(hits, want_hits, "router's hits");
    }
    assert!(hits > 0);
}

#[test]
fn many_needles_are_searched_by_the_automaton_exactly() {
    // More needles than Teddy takes, some prefixes of others ("w1" of
    // "w10"): the automaton and the overlapping scan.
    let sources: Vec<String> = (0..150)
        .map(|k| format!("message contains \"w{k}\""))
        .collect();
    let mut rng = Rng(0x0a11_4ee5);
    let records = (0..300)
        .map(|_| Record {
            message: (0..rng.below(6))
                .map(|_| format!("w{}", rng.below(160)))
                .collect::<Vec<_>>()
                .join(" "),
            ..Record::default()
        })
        .collect();
    agree(&sources, records);
}

#[test]
fn prefix_free_needles_restart_teddy_exactly() {
    // Few needles, none a prefix of another, overlapping and repeated in
    // the messages: Teddy restarted past each match.
    let sources: Vec<String> = ["abc", "bcd", "cd", "xyz", "zz"]
        .iter()
        .map(|n| format!("message contains {n:?}"))
        .collect();
    let mut rng = Rng(0x07ed_d1e5);
    let records = (0..400)
        .map(|_| Record {
            message: (0..rng.below(40))
                .map(|_| rng.pick(&["a", "b", "c", "d", "x", "y", "z", " "]))
                .collect(),
            ..Record::default()
        })
        .collect();
    agree(&sources, records);
}

#[test]
fn memo_tables_emptied_when_full_stay_exact() {
    // 100 x 100 (target, thread) classes: more cheap keys than the memo
    // keeps, and more targets than a value cache has slots.
    let mut sources: Vec<String> = (0..100).map(|k| format!("target == \"t{k}\"")).collect();
    sources.extend((0..100).map(|k| format!("thread == \"h{k}\" and level >= warn")));
    sources.push("message contains \"m\" or target ends_with \"7\"".into());
    let mut rng = Rng(0xf011);
    let records = (0..6000)
        .map(|_| Record {
            target: format!("t{}", rng.below(110)),
            thread_name: format!("h{}", rng.below(110)),
            level: rng.pick(&[10, 30, 40]),
            message: rng.pick(&["m", "n", ""]).into(),
            ..Record::default()
        })
        .collect();
    agree(&sources, records);
}

/// Message tests on deferred messages (format and arguments), as the set
/// decides them per call site: needles inside the literal text, across
/// literal text and arguments, inside an argument, of every argument kind
/// (integers, floats with their `.`, `e`, `NaN`, `inf`, strings, bools,
/// nulls, missing arguments), prefixes, suffixes and `==` values that
/// stop inside or continue past the first and last literal runs.
#[test]
fn deferred_messages_decided_by_call_site_match_each_filter_alone() {
    const ATOMS: &[&str] = &[
        "code ", "{}", " after ", "{:?}", "{{", "}}", "ms", "-", ".", "e", "12", "timeout", " ",
        "{x}", "a",
    ];
    const CONSTS: &[&str] = &[
        "code 12",
        "12 after",
        "2.5 ms",
        "e-7",
        "NaN",
        "inf",
        "-1",
        "12",
        "{}",
        "after 1",
        "ms",
        "code",
        "5 m",
        "{",
        "}",
        "timeout",
        "code 12 after 5 ms",
        "a",
        "",
        "1e300",
        "true",
        "null",
        "code {x}",
        "12.5",
    ];
    let mut rng = Rng(0xdefe_44ed);
    let leaf = |rng: &mut Rng| {
        let op = rng.pick(&[
            "contains",
            "contains",
            "contains",
            "starts_with",
            "ends_with",
            "==",
            "not contains",
        ]);
        format!("message {op} {:?}", rng.pick(CONSTS))
    };
    let mut formats: Vec<String> = (0..40)
        .map(|_| {
            (0..rng.below(7))
                .map(|_| rng.pick(ATOMS))
                .collect::<String>()
        })
        .collect();
    // Longer than an analysed format, and one without placeholders.
    formats.push(format!("{} code {{}} ms", "x".repeat(1100)));
    formats.push("code 12 after 5 ms".into());
    for round in 0..30 {
        let sources: Vec<String> = (0..1 + rng.below(if round % 5 == 0 { 60 } else { 8 }))
            .map(|_| match rng.below(4) {
                0 => format!("({}) and ({})", leaf(&mut rng), leaf(&mut rng)),
                1 => format!("({}) or level >= warn", leaf(&mut rng)),
                _ => leaf(&mut rng),
            })
            .collect();
        let records = (0..300)
            .map(|_| {
                let args = (0..rng.below(4))
                    .map(|_| match rng.below(9) {
                        0 | 1 => Value::I64(rng.pick(&[-12, 0, 12, 1234, i64::MIN])),
                        2 | 3 => Value::U64(rng.pick(&[12, 5, u64::MAX])),
                        4 | 5 => Value::F64(rng.pick(&[
                            12.5,
                            -0.0,
                            1e300,
                            f64::NAN,
                            f64::INFINITY,
                            1e-7,
                            -2.5,
                        ])),
                        6 => Value::Str(rng.pick(&["12", "code 1", "", "{}", "ms"]).into()),
                        7 => Value::Bool(true),
                        _ => Value::Null,
                    })
                    .collect();
                Record {
                    level: rng.pick(&[10, 30]),
                    format: formats[rng.below(formats.len())].clone(),
                    args,
                    ..Record::default()
                }
            })
            .collect();
        agree(&sources, records);
    }
}

/// More call sites than a thread keeps: evicted and analysed again, the
/// results unchanged.
#[test]
fn many_call_sites_evict_and_stay_exact() {
    let sources: Vec<String> = (0..30)
        .map(|k| format!("message contains \"site {k} \""))
        .chain(["message starts_with \"site 1\"".into()])
        .collect();
    let mut rng = Rng(0x0005_1735);
    let records = (0..3000)
        .map(|_| {
            let site = rng.below(400);
            Record {
                format: format!("site {site} {{}} x{}", "y".repeat(site % 7)),
                args: vec![Value::U64(rng.below(40) as u64)],
                ..Record::default()
            }
        })
        .collect();
    agree(&sources, records);
}

#[test]
fn many_needles_sharing_prefixes_are_found_from_the_first_candidate() {
    // 300 needles with two distinct 4-byte prefixes: Teddy over the
    // prefixes, then the overlapping automaton from the first candidate.
    let mut sources: Vec<String> = (0..300)
        .map(|k| format!("message contains \"code {k}\""))
        .collect();
    sources.push("message contains \"timeout\"".into());
    sources.push("message contains \"time\" and not (message contains \"code 1\")".into());
    let mut rng = Rng(0x000c_0de5);
    let records = (0..500)
        .map(|_| Record {
            message: (0..rng.below(6))
                .map(|_| match rng.below(4) {
                    0 => format!("code {}", rng.below(400)),
                    1 => format!("code {}code {}", rng.below(40), rng.below(40)),
                    2 => rng.pick(&["timeout", "time", "tim", "cod", "co de"]).into(),
                    _ => "x".into(),
                })
                .collect::<Vec<_>>()
                .join(rng.pick(&[" ", ""])),
            ..Record::default()
        })
        .collect();
    agree(&sources, records);
}

/// What a batch matcher keeps per call site (`set_batch.rs`: the site's
/// target and host classes, its format's verdicts, its keys' typed-field
/// slots) is for that batch only: batches whose site tables differ at the
/// same indexes (other targets, formats, keys, senders), records with
/// bound pairs after their site keys (a name a key has, one it has not),
/// duplicate keys, a site past the ones kept, and a record of another
/// batch, each against every filter alone. Fails if one batch's entries
/// are used for another's records.
#[test]
fn batch_matchers_keep_nothing_from_another_batch() {
    let sources: Vec<String> = [
        r#"target == "db""#,
        r#"target starts_with "http" and level >= warn"#,
        r#"host == "web-1""#,
        r#"message contains "code 12""#,
        r#"message contains "after""#,
        "field.user_id == 42",
        r#"field.shard == "s1""#,
        r#"field.user_id == 7 or target == "http""#,
        "level >= error",
        r#"process == "api" and field.shard == "s2""#,
        r#"thread == "main""#,
        "not (field.user_id == 42)",
    ]
    .map(String::from)
    .to_vec();
    let values = |vs: &[ValueRef<'_>]| {
        let mut b = Vec::new();
        vs.iter().for_each(|v| put_value(&mut b, *v));
        b
    };
    let site = |target: &str, format: &str, args: u32, keys: &[&str]| Site {
        target: target.into(),
        format: format.into(),
        args,
        keys: keys.iter().map(|k| (*k).into()).collect(),
        ..Site::default()
    };
    use ValueRef::{Str, U64};
    // Site 0 of one batch is another site in the next, and so on.
    let tables = [
        (
            "web-1",
            "api",
            vec![
                site("db", "code {} done", 1, &["user_id"]),
                site("http", "", 0, &["shard", "user_id"]),
            ],
        ),
        (
            "web-2",
            "batch",
            vec![
                site("http::x", "{} after", 1, &["shard"]),
                site("db", "code {} done", 1, &["user_id", "user_id"]),
            ],
        ),
        (
            "web-1",
            "api",
            // More sites than a batch keeps entries for.
            (0..70)
                .map(|i| {
                    site(
                        if i % 2 == 0 { "db" } else { "http" },
                        "code {}",
                        1,
                        &["user_id"],
                    )
                })
                .collect(),
        ),
    ];
    let mut rng = Rng(0xba7c_4e55);
    let bodies: Vec<_> = tables
        .iter()
        .map(|(host, program, sites)| {
            let records = (0..300)
                .map(|i| {
                    let s = rng.below(sites.len());
                    let mut vs: Vec<ValueRef<'_>> = Vec::new();
                    // Arguments of one length with and without a needle's
                    // bytes: a site's kept walk is only for the same bytes.
                    for _ in 0..sites[s].args {
                        vs.push(rng.pick(&[U64(12), Str("after"), U64(3), Str("zzzzz")]));
                    }
                    for k in &sites[s].keys {
                        vs.push(if k == "user_id" {
                            rng.pick(&[U64(42), U64(7), Str("s1")])
                        } else {
                            rng.pick(&[Str("s1"), Str("s2"), U64(42)])
                        });
                    }
                    // Bound pairs: a name of the site's keys, or another.
                    for _ in 0..rng.below(3) {
                        vs.push(Str(rng.pick(&["user_id", "shard", "other"])));
                        vs.push(rng.pick(&[U64(42), U64(7), Str("s1"), Str("s2")]));
                    }
                    WireRecord {
                        seq: i,
                        level: rng.pick(&[20, 30, 40]),
                        kind: b'L',
                        site: s as u32,
                        thread: rng.below(2) as u32,
                        values: values(&vs),
                        ..WireRecord::default()
                    }
                })
                .collect();
            WireBatch {
                sender: Sender {
                    host: (*host).into(),
                    program: (*program).into(),
                    ..Sender::default()
                },
                sites: sites.clone(),
                threads: vec![
                    Thread {
                        id: 1,
                        name: "main".into(),
                    },
                    Thread {
                        id: 2,
                        name: "w".into(),
                    },
                ],
                records,
                ..WireBatch::default()
            }
            .to_body()
        })
        .collect();
    let batches: Vec<_> = bodies.iter().map(|b| access_batch(b).unwrap()).collect();
    // The set above (`thread` is per record: no site lists); without
    // that filter, its records' cheap key is their site's and their
    // level's, so the sites keep lists (one probe per record); and a set
    // whose expensive tests are each behind a cheap one (the cheap entry
    // first). Site-mates differ in level, so a list kept for one level
    // and given to another fails.
    let lists_one_probe: Vec<String> = sources
        .iter()
        .filter(|s| !s.starts_with("thread"))
        .cloned()
        .collect();
    let lists_cheap_first: Vec<String> = [
        r#"target == "db" and field.user_id == 42"#,
        r#"level >= error and message contains "after""#,
        r#"target starts_with "http" and level >= warn"#,
        r#"host == "web-1" and level == info"#,
        "level >= warn and not (field.shard == \"s1\")",
        "system == test and level >= warn",
    ]
    .map(String::from)
    .to_vec();
    for (sources, lists, one_probe) in [
        (&sources, false, true),
        (&lists_one_probe, true, true),
        (&lists_cheap_first, true, false),
    ] {
        let set = FilterSet::new(sources).unwrap();
        assert_eq!((set.site_lists(), set.one_probe()), (lists, one_probe));
        same_lists_in_batches(sources, &set, &batches);
    }
}

/// Checks a matcher given each of `batches` (and 20 records of the one
/// before) against each of `sources` alone, twice.
fn same_lists_in_batches(sources: &[String], set: &FilterSet, batches: &[&ArchivedWireBatch]) {
    let filters: Vec<Filter> = sources.iter().map(|s| Filter::parse(s).unwrap()).collect();
    let mut checked = 0;
    for _ in 0..2 {
        for (k, &b) in batches.iter().enumerate() {
            let mut matcher = set.matcher_in(b);
            // The previous batch's records too: not its sites.
            let other = batches[(k + batches.len() - 1) % batches.len()];
            for (i, (batch, r)) in b
                .records()
                .map(|r| (b, r))
                .chain(other.records().take(20).map(|r| (other, r)))
                .enumerate()
            {
                // Site-mates of both systems too.
                let system = if i % 3 == 0 { b'T' } else { b'P' };
                let view = RecordView::new(system, batch.sender(), r);
                let want: Vec<u32> = (0..sources.len() as u32)
                    .filter(|&f| filters[f as usize].matches(&view))
                    .collect();
                matcher.with_matches(&view, |m| {
                    assert_eq!(m, want, "batch {k}, on {:?}", r.to_record());
                });
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 3 * 320);
}

#[test]
fn routers_count_each_list_per_record_and_again_after_their_hits_are_taken() {
    // Each list comes back many times (its count looked up once per
    // record after the first); after `add_hits` the counts start again
    // from the next record of each list.
    let set = FilterSet::new(&["level >= warn", "level >= error", "level == info"]).unwrap();
    let levels = [
        distlog_core::record::level::ERROR,
        distlog_core::record::level::INFO,
        distlog_core::record::level::DEBUG,
        distlog_core::record::level::WARN,
    ];
    let batch = Batch {
        records: (0..40u64)
            .map(|seq| Record {
                seq,
                level: levels[(seq % 4) as usize],
                ..Record::default()
            })
            .collect(),
        ..Batch::default()
    };
    let body = encode_batch_to_vec(&batch);
    let b = access_batch(&body).unwrap();
    let masks = [0b01, 0b10, 0b100];
    let mut router = set.router(b, &masks);
    let want = [Some(0b11), Some(0b100), None, Some(0b01)];
    for (i, r) in b.records().take(20).enumerate() {
        let view = RecordView::new(b'P', b.sender(), r);
        assert_eq!(router.route(&view), want[i % 4], "record {i}");
    }
    let mut hits = [0; 3];
    router.add_hits(&mut hits);
    // 5 errors and 5 warnings, 5 errors, 5 infos.
    assert_eq!(hits, [10, 5, 5]);
    for (i, r) in b.records().enumerate().skip(20).take(7) {
        let view = RecordView::new(b'P', b.sender(), r);
        assert_eq!(router.route(&view), want[i % 4], "record {i}");
    }
    let mut hits = [0; 3];
    router.add_hits(&mut hits);
    // Records 20..27: errors at 20 and 24, warnings at 23, infos at 21 and 25.
    assert_eq!(hits, [3, 2, 2]);
}
