//! Tests of the whole language: parse, compile, evaluate on archived records.

use super::*;
use distlog_core::record::{level, Field, Record, Value};
use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, Sender};

const UUID: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

fn sender() -> Sender {
    Sender {
        host: "web-1".into(),
        pid: 42,
        program: "api".into(),
        start_ns: 1,
        instance: 9,
    }
}

fn field(key: &str, value: Value) -> Field {
    Field {
        key: key.into(),
        value,
    }
}

/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000_000_000_000;

fn base() -> Record {
    Record {
        time_ns: T0,
        seq: 0,
        level: level::INFO,
        kind: b'L',
        line: 120,
        task_n: 3,
        thread_id: 77,
        thread_name: "worker-1".into(),
        target: "db::pool".into(),
        module: "app::db::pool".into(),
        file: "src/db/pool.rs".into(),
        func: "checkout".into(),
        message: "connection timeout after 5s".into(),
        fields: vec![
            field("user_id", Value::I64(42)),
            field("neg", Value::I64(-5)),
            field("ratio", Value::F64(0.5)),
            field("big", Value::U64(u64::MAX)),
            field("name", Value::Str("alice".into())),
            field("ok", Value::Bool(true)),
            field("none", Value::Null),
            field("dup", Value::I64(1)),
            field("dup", Value::I64(2)),
            field("http.status", Value::U64(200)),
            field("", Value::I64(0)),
        ],
        task: format!("{UUID}/2"),
        error: "boom: disk full".into(),
        ..Record::default()
    }
}

/// Evaluates `src` on `rec` (archived for real) under topic system `system`.
fn eval_sys(src: &str, rec: &Record, system: u8) -> bool {
    let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let batch = Batch {
        sender: sender(),
        first_seq: rec.seq,
        dropped: 0,
        records: vec![rec.clone()],
    };
    let body = encode_batch_to_vec(&batch);
    let b = access_batch(&body).unwrap();
    f.matches(&RecordView::new(
        system,
        b.sender(),
        b.records().next().unwrap(),
    ))
}

fn eval(src: &str, rec: &Record) -> bool {
    eval_sys(src, rec, b'P')
}

/// Evaluates on the base record.
fn m(src: &str) -> bool {
    eval(src, &base())
}

fn all(srcs: &[&str]) {
    for s in srcs {
        assert!(m(s), "expected a match: {s}");
    }
}

fn none(srcs: &[&str]) {
    for s in srcs {
        assert!(!m(s), "expected no match: {s}");
    }
}

fn err(src: &str) -> FilterError {
    match Filter::parse(src) {
        Ok(f) => panic!("{src} parsed: {}", f.disassemble()),
        Err(e) => e,
    }
}

fn err_at(src: &str, line: usize, column: usize, needle: &str) {
    let e = err(src);
    assert_eq!((e.line(), e.column()), (line, column), "{src}: {e}");
    assert!(e.to_string().contains(needle), "{src}: {e}");
}

#[test]
fn level_by_name_number_and_severity() {
    all(&[
        "level == info",
        "level == INFO",
        "level == \"Info\"",
        "level == 20",
        "level == \"20\"",
        "level >= debug",
        "level >= trace",
        "level > debug",
        "level <= info",
        "level < warn",
        "level < warning",
        "level != warn",
        "level in [info, error]",
        "level in [10, 20, 30]",
        "level not in [warn, error, critical]",
        "level <= 255",
        "level > -3",
    ]);
    none(&[
        "level >= warn",
        "level > info",
        "level < info",
        "level == critical",
        "level == fatal",
        "level != info",
        "level in [warn, error]",
        "level in []",
        "level == 300",
        "level > 255",
    ]);
    let mut r = base();
    r.level = 25; // a Python custom level between INFO and WARNING
    assert!(eval("level > info and level < warn", &r));
    r.level = level::CRITICAL;
    assert!(eval("level >= error", &r));
    assert!(eval("level == critical", &r));
    r.level = level::TRACE;
    assert!(eval("level < debug", &r));
}

#[test]
fn text_fields_and_operators() {
    all(&[
        "target == \"db::pool\"",
        "target != \"db\"",
        "target starts_with \"db::\"",
        "target ends_with \"::pool\"",
        "target contains \":po\"",
        "target < \"db::q\"",
        "target <= \"db::pool\"",
        "target > \"db::\"",
        "target >= \"db::pool\"",
        "target in [\"http\", \"db::pool\"]",
        "target not in [\"http\", \"db\"]",
        "target not contains \"http\"",
        "target not starts_with \"http\"",
        "target not ends_with \"db\"",
        "target under \"db\"",
        "target under \"db::pool\"",
        "target not under \"db::po\"",
        "message contains \"timeout\"",
        "message starts_with \"connection\"",
        "message == \"connection timeout after 5s\"",
        "host == \"web-1\"",
        "host in [\"web-1\", \"web-2\"]",
        "process == \"api\"",
        "thread == \"worker-1\"",
        "thread starts_with \"worker\"",
        "thread == 77",
        "thread in [\"main\", 77]",
        "thread in [1, \"worker-1\"]",
        "file ends_with \".rs\"",
        "file under \"src/db\"",
        "module under \"app::db\"",
        "module == \"app::db::pool\"",
        "func == \"checkout\"",
        "error contains \"disk full\"",
        "target contains \"\"",
        "target starts_with \"\"",
    ]);
    none(&[
        "target == \"db\"",
        "target != \"db::pool\"",
        "target starts_with \"http\"",
        "target ends_with \"db\"",
        "target contains \"xyz\"",
        "target > \"db::pool\"",
        "target < \"db::pool\"",
        "target in [\"http\", \"db\"]",
        "target in []",
        "target under \"db::po\"",
        "target under \"d\"",
        "message contains \"Timeout\"",
        "host == \"web-2\"",
        "process == \"apix\"",
        "thread == \"main\"",
        "thread == 78",
        "thread in [1, 2, \"main\"]",
        "file under \"src/d\"",
        "func != \"checkout\"",
        "error == \"\"",
    ]);
}

#[test]
fn numeric_record_and_sender_fields() {
    all(&[
        "pid == 42",
        "pid != 7",
        "pid > 41 and pid < 43",
        "pid in [1, 42, 100000]",
        "line == 120",
        "line >= 100",
        "line in [120]",
        "not (pid == 7)",
    ]);
    none(&[
        "pid == 7",
        "pid in [1, 2, 3]",
        "pid < 0",
        "pid > 4294967295",
        "line != 120",
    ]);
}

#[test]
fn kind_and_system() {
    all(&[
        "kind == log",
        "kind == \"L\"",
        "kind == LOG",
        "kind != perf",
        "kind in [log, perf]",
        "system == production",
        "system == \"P\"",
        "system == prod",
        "system in [staging, production]",
        "system != test",
    ]);
    none(&[
        "kind == perf",
        "kind == \"P\"",
        "system == \"T\"",
        "system in [test, staging]",
    ]);
    let mut r = base();
    r.kind = b'P';
    assert!(eval("kind == perf", &r));
    assert!(eval_sys("system == test", &base(), b'T'));
    assert!(eval_sys("system == \"S\"", &base(), b'S'));
    assert!(!eval_sys("system == production", &base(), b'S'));
}

#[test]
fn time_by_rfc3339_and_nanoseconds() {
    all(&[
        "time == \"2023-11-14T22:13:20Z\"",
        "time == \"2023-11-15T00:13:20+02:00\"",
        "time >= \"2023-11-14\"",
        "time < \"2023-11-15\"",
        "time > \"2023-11-14T22:13:19.999999999Z\"",
        "time == 1700000000000000000",
        "time > 0",
        "time > -5",
        "time in [1, 1700000000000000000]",
    ]);
    none(&[
        "time > \"2023-11-14T22:13:20Z\"",
        "time < \"1970-01-01\"",
        "time < 0",
        "time >= \"2023-11-14T22:13:20.000000001Z\"",
    ]);
}

#[test]
fn task_under_is_the_subtree_not_a_sibling() {
    let mut r = base();
    for (task, under_1) in [
        (format!("{UUID}/1"), true),
        (format!("{UUID}/1/4"), true),
        (format!("{UUID}/1/4/2"), true),
        (format!("{UUID}/10"), false),
        (format!("{UUID}/10/1"), false),
        (UUID.to_string(), false),
        (format!("{UUID}/2"), false),
        (String::new(), false),
    ] {
        r.task = task.clone();
        assert_eq!(
            eval(&format!("task under \"{UUID}/1\""), &r),
            under_1,
            "{task}"
        );
        assert_eq!(
            eval(&format!("task under \"{UUID}\""), &r),
            !task.is_empty(),
            "{task}"
        );
    }
    r.task = format!("{UUID}x/1");
    assert!(!eval(&format!("task under \"{UUID}\""), &r));
    r.task = String::new();
    assert!(eval("task == \"\"", &r));
}

#[test]
fn key_is_compared_piecewise() {
    let k = format!("3@{UUID}/2");
    all(&[
        &format!("key == \"{k}\""),
        &format!("key != \"4@{UUID}/2\""),
        "key starts_with \"3@\"",
        "key starts_with \"3\"",
        &format!("key starts_with \"3@{}\"", &UUID[..8]),
        "key ends_with \"/2\"",
        &format!("key ends_with \"3@{UUID}/2\""),
        &format!("key ends_with \"@{UUID}/2\""),
        "key contains \"3@1b4e\"",
        "key contains \"@\"",
        "key contains \"-2fa1-\"",
        "key contains \"\"",
        &format!("key in [\"1@x\", \"{k}\", \"9@y\"]"),
        &format!("key > \"3@{UUID}\""),
        "key < \"4\"",
        "key >= \"3@\"",
    ]);
    none(&[
        &format!("key == \"33@{UUID}/2\""),
        &format!("key == \"3@{UUID}\""),
        &format!("key == \"3@{UUID}/2/\""),
        "key starts_with \"33\"",
        "key starts_with \"3@x\"",
        &format!("key ends_with \"x3@{UUID}/2\""),
        "key contains \"@@\"",
        "key contains \"2@\"",
        "key in [\"1@x\", \"9@y\"]",
        "key < \"3@\"",
    ]);
    let mut r = base();
    r.task_n = 4_000_000_000;
    assert!(eval(&format!("key == \"4000000000@{UUID}/2\""), &r));
    assert!(eval("key contains \"00@1b\"", &r));
    r.task_n = 0;
    assert!(eval(&format!("key == \"0@{UUID}/2\""), &r));
    // Outside a task there is no key: every comparison is false.
    r.task = String::new();
    for src in [
        "key == \"\"",
        "key != \"x\"",
        "key contains \"\"",
        "key starts_with \"\"",
        "key in [\"\", \"0@\"]",
        "key < \"z\"",
    ] {
        assert!(!eval(src, &r), "{src}");
    }
    assert!(eval("not (key == \"x\")", &r));
}

#[test]
fn typed_fields_compare_numerically_across_types() {
    all(&[
        "field.user_id == 42",
        "field.user_id == 42.0",
        "field.user_id < 42.5",
        "field.user_id > 41.9",
        "field.user_id >= 42",
        "field.user_id != 43",
        "field.user_id in [1, 42]",
        "field.user_id in [1, 42.0]",
        "field.neg < 0",
        "field.neg == -5",
        "field.neg > -5.5",
        "field.ratio == 0.5",
        "field.ratio > 0",
        "field.ratio < 1",
        "field.ratio in [0.25, 0.5]",
        "field.big == 18446744073709551615",
        "field.big > 9223372036854775807",
        "field.big > 1e19",
        "field.big < 1.8446744073709552e19", // 2^64 as a float
        "field.name == \"alice\"",
        "field.name starts_with \"al\"",
        "field.name ends_with \"ice\"",
        "field.name contains \"lic\"",
        "field.name < \"bob\"",
        "field.name in [\"alice\", \"bob\"]",
        "field.ok == true",
        "field.ok != false",
        "field.ok in [true]",
        "field.none == null",
        "field.none in [null]",
        "field.user_id != null",
        "field.dup == 1", // the first of duplicate names wins
        "field.\"user_id\" == 42",
        "field.http.status == 200",
        "field.\"http.status\" in [200, 201]",
        "field.\"\" == 0",
    ]);
    none(&[
        "field.user_id == 43",
        "field.user_id == 42.5",
        "field.user_id > 42",
        "field.user_id in [1, 2.5]",
        "field.ratio == 0",
        "field.big == -1",
        "field.big < 0",
        "field.big == 1.8446744073709552e19",
        "field.neg > 0",
        "field.name == \"Alice\"",
        "field.name > \"bob\"",
        "field.ok == false",
        "field.none != null",
        "field.dup == 2",
        // Type mismatches are false, `!=` included.
        "field.name == 5",
        "field.name != 5",
        "field.user_id == \"42\"",
        "field.user_id != \"42\"",
        "field.user_id contains \"4\"",
        "field.ok == 1",
        "field.none == 0",
        "field.user_id == null",
    ]);
}

#[test]
fn missing_fields_make_comparisons_false() {
    none(&[
        "field.missing == 1",
        "field.missing != 1",
        "field.missing < 1",
        "field.missing >= 1",
        "field.missing == \"x\"",
        "field.missing != \"x\"",
        "field.missing contains \"\"",
        "field.missing starts_with \"\"",
        "field.missing in [1, \"x\", null, true]",
        "field.missing == null",
        "field.missing != null",
    ]);
    // Negating the whole comparison is true.
    all(&[
        "not (field.missing == 1)",
        "not field.missing == 1",
        "field.missing not in [1]",
        "field.missing not contains \"x\"",
    ]);
}

#[test]
fn deferred_messages_are_rendered() {
    let mut r = base();
    r.message = String::new();
    r.format = "request {} took {} ms, ok={}".into();
    r.args = vec![Value::U64(7), Value::F64(1.5), Value::Bool(true)];
    for src in [
        "message == \"request 7 took 1.5 ms, ok=true\"",
        "message contains \"took 1.5\"",
        "message starts_with \"request 7 \"",
        "message ends_with \"ok=true\"",
        // Rendered once, used twice.
        "message contains \"request\" and message contains \"ms\"",
        "level >= info and message contains \"7\"",
    ] {
        assert!(eval(src, &r), "{src}");
    }
    for src in [
        "message contains \"{}\"",
        "message == \"\"",
        "message contains \"timeout\"",
    ] {
        assert!(!eval(src, &r), "{src}");
    }
    // A record that is not deferred, after a deferred one on this thread.
    assert!(eval("message contains \"timeout\"", &base()));
    // A rendering larger than the kept buffer: released, and rendered again
    // for the second test of the same record.
    let mut big = r.clone();
    big.format = "{} end".into();
    big.args = vec![Value::Str(format!("{}needle", "x".repeat(100_000)))];
    assert!(eval(
        "message contains \"needle\" and message ends_with \"needle end\" and message starts_with \"xx\"",
        &big
    ));
    assert!(eval("message contains \"took\"", &r));
    // A format without args keeps its placeholders.
    r.args.clear();
    assert!(eval("message == \"request {} took {} ms, ok={}\"", &r));
}

#[test]
fn precedence_not_and_or() {
    // and binds tighter than or.
    assert!(m("true or true and false"));
    assert!(m("true and false or true"));
    assert!(!m("(true or true) and false"));
    assert!(m("false and false or true"));
    // not binds tighter than and / or.
    assert!(!m("not false and false"));
    assert!(m("not (false and false)"));
    assert!(m("not true or true"));
    assert!(!m("not (true or true)"));
    assert!(m("not not true"));
    assert!(m("!(false) && true || false"));
    // With real fields: level >= warn is false, host is true, pid is true.
    assert!(m("level >= warn and host == \"web-1\" or pid == 42"));
    assert!(!m("level >= warn and (host == \"web-1\" or pid == 42)"));
    assert!(m("not level >= warn and pid == 42"));
    assert!(!m("not (level >= warn or pid == 42)"));
    assert!(!m("false"));
    assert!(m("true"));
}

#[test]
fn examples_from_the_design() {
    let mut r = base();
    r.level = level::WARN;
    assert!(eval("level >= warn and target starts_with \"db::\"", &r));
    assert!(m("message contains \"timeout\" or field.user_id == 42"));
    assert!(m(&format!("task under \"{UUID}\"   # the whole subtree")));
    assert!(m("host in [\"web-1\", \"web-2\"] and not (pid == 7)"));
    assert!(m(
        "# a comment\nlevel >= info # trailing\n  and # more\n pid == 42"
    ));
}

#[test]
fn errors_name_line_column_and_expectation() {
    let e = err("level >= ");
    assert_eq!(
        e.to_string(),
        "line 1, column 10: expected a value after `>=` (a string, a number or a name), \
         found the end of the filter\n  level >= \n           ^"
    );
    assert_eq!(e.offset(), 9);

    let e = err("level >= warn\n\tand target starts_with 42");
    assert_eq!((e.line(), e.column(), e.offset()), (2, 25, 38));
    assert_eq!(
        e.to_string(),
        format!(
            "line 2, column 25: `target` is text: expected a double-quoted string, found the \
             number 42\n  \tand target starts_with 42\n  \t{}^",
            " ".repeat(23)
        )
    );

    err_at("lvl >= 3", 1, 1, "unknown field `lvl`");
    err_at("host == web1", 1, 9, "as in \"web1\"");
    err_at("target == \"abc", 1, 11, "unterminated string");
    err_at("level >= loud", 1, 10, "unknown level");
    err_at(
        "time > \"2024-13-01T00:00:00Z\"",
        1,
        8,
        "month out of range",
    );
    err_at("time > \"2024-01-01T00:00:00\"", 1, 8, "offset");
    err_at("time > 1.5", 1, 8, "RFC 3339");
    err_at(
        "pid contains \"4\"",
        1,
        5,
        "`contains` does not apply to `pid`",
    );
    err_at("pid == \"4\"", 1, 8, "expected an integer");
    err_at("kind > log", 1, 6, "expected ==, != or in");
    err_at("kind == x", 1, 9, "`log`");
    err_at("host under \"x\"", 1, 6, "`under` does not apply");
    err_at("key under \"x\"", 1, 5, "`under` does not apply");
    err_at("field.x under \"x\"", 1, 9, "`under` does not apply");
    err_at("field.x < true", 1, 9, "expected == or !=");
    err_at("field.x == bare", 1, 12, "double-quoted");
    err_at("field.x contains 4", 1, 18, "double-quoted string");
    err_at("(level >= warn", 1, 15, "expected `)`");
    err_at(
        "level >= warn extra",
        1,
        15,
        "expected `and`, `or` or the end",
    );
    err_at("level = 3", 1, 7, "expected `==`");
    err_at("level >= warn & pid == 1", 1, 15, "expected `&&` or `and`");
    err_at("level", 1, 6, "expected an operator after `level`");
    err_at("level warn", 1, 7, "expected an operator");
    err_at("level not warn", 1, 7, "expected an operator");
    err_at("", 1, 1, "expected a field name");
    err_at("   # only a comment", 1, 20, "found the end of the filter");
    err_at("and", 1, 1, "unknown field `and`");
    err_at("level >= warn and", 1, 18, "expected a field name");
    err_at("()", 1, 2, "expected a field name");
    err_at("host in \"web-1\"", 1, 9, "expected `[`");
    err_at("host in [\"a\" \"b\"]", 1, 14, "expected `,` or `]`");
    err_at("host in [\"a\",", 1, 14, "expected a value");
    err_at("field", 1, 6, "expected `.`");
    err_at("field.", 1, 7, "expected a field name");
    err_at("field.a.", 1, 9, "expected a field name");
    // A long line is shown as a window around the column.
    let long = format!("{} and pid == \"x\"", vec!["pid == 42"; 30].join(" and "));
    let e = err(&long);
    assert_eq!(e.column(), long.find("\"x\"").unwrap() + 1);
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(
        lines[1].starts_with("  ...") && lines[1].ends_with("\"x\""),
        "{shown}"
    );
    let caret = lines[2].find('^').unwrap();
    assert_eq!(&lines[1][caret..caret + 3], "\"x\"", "{shown}");
    err_at("target == \"\\q\"", 1, 12, "invalid escape `\\q`");
    err_at("target == \"\\u{110000}\"", 1, 12, "invalid escape");
    err_at("pid == 12ab", 1, 8, "invalid number `12ab`");
    err_at(
        "pid == 1000000000000000000000000000000000000000",
        1,
        8,
        "out of range",
    );
    err_at("pid == 4 $", 1, 10, "unexpected character '$'");
    // Columns count characters, not bytes.
    err_at("message == \"é\" and lvl > 3", 1, 20, "unknown field");
    err_at("level >= wärn", 1, 11, "unexpected character 'ä'");
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}true{}", "(".repeat(64), ")".repeat(64));
    assert!(Filter::parse(&ok).is_ok());
    let deep = format!("{}true{}", "(".repeat(65), ")".repeat(65));
    err_at(&deep, 1, 65, "nested too deeply");
    let nots = format!("{}true", "not ".repeat(64));
    assert!(Filter::parse(&nots).unwrap().is_always());
    assert!(Filter::parse(&format!("{}true", "not ".repeat(65))).is_err());
    // Far deeper than any stack: an error, not an overflow.
    assert!(Filter::parse(&"(".repeat(1_000_000)).is_err());
    assert!(Filter::parse(&"!".repeat(1_000_000)).is_err());
    // Long flat chains are fine (loops, not recursion).
    let chain = vec!["pid == 42"; 10_000].join(" and ");
    assert!(m(&chain));
    let too_long = "x".repeat(MAX_LEN + 1);
    err_at(&too_long, 1, MAX_LEN + 1, "too long");
}

const MAX_LEN: usize = 1 << 20;

#[test]
fn strings_escape() {
    let mut r = base();
    r.message = "tab\there \"quoted\" back\\slash é 😀".into();
    assert!(eval(
        r#"message == "tab\there \"quoted\" back\\slash \u{e9} \u{1F600}""#,
        &r
    ));
    assert!(eval("message contains \"é 😀\"", &r));
}

#[test]
fn constants_fold_and_jumps_go_forward() {
    for src in [
        "true",
        "level >= 0",
        "level <= 255",
        "pid != -1",
        "time >= 0",
        "not false",
    ] {
        let f = Filter::parse(src).unwrap();
        assert!(f.is_always(), "{src}");
        assert_eq!(f.disassemble(), "accept\n", "{src}");
    }
    for src in [
        "false",
        "level > 255",
        "target in []",
        "pid < 0",
        "level >= warn and false",
    ] {
        let f = Filter::parse(src).unwrap();
        assert_eq!(f.disassemble(), "reject\n", "{src}");
    }
    assert!(Filter::parse("pid == 1 or true").unwrap().is_always());
    let f = Filter::parse(
        "message contains \"timeout\" and level >= warn and target starts_with \"db::\"",
    )
    .unwrap();
    // Cheapest first; each test says where to go on pass and on fail.
    assert_eq!(
        f.disassemble(),
        "   0  range Level 30..=255  ? 1 : reject\n\
         \x20  1  str Target starts_with \"db::\"  ? 2 : reject\n\
         \x20  2  str Message contains \"timeout\"  ? accept : reject\n"
    );
    // Nested, with `not` (free: the targets swap).
    let f = Filter::parse("(pid == 1 or not pid == 2) and not (line == 3 or line == 4)").unwrap();
    assert_eq!(
        f.disassemble(),
        "   0  range Pid 1..=1  ? 2 : 1\n\
         \x20  1  range Pid 2..=2  ? reject : 2\n\
         \x20  2  range Line 3..=3  ? reject : 3\n\
         \x20  3  range Line 4..=4  ? reject : accept\n"
    );
    // `!=` on a number is a range with swapped targets.
    assert_eq!(
        Filter::parse("pid != 7").unwrap().disassemble(),
        "   0  range Pid 7..=7  ? reject : accept\n"
    );
    // Byte fields use bitsets; other numeric lists, sorted sets.
    assert!(Filter::parse("level in [warn, error]")
        .unwrap()
        .disassemble()
        .contains("in Level [30, 40]"));
    assert!(Filter::parse("pid in [9, 3, 3]")
        .unwrap()
        .disassemble()
        .contains("in Pid [3, 9]"));
}

#[test]
fn api_traits() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + std::fmt::Display>() {}
    assert_traits::<Filter>();
    let f: Filter = "pid == 42".parse().unwrap();
    assert_eq!(f.source(), "pid == 42");
    assert_eq!(f.to_string(), "pid == 42");
    assert_eq!(format!("{f:?}"), "Filter(\"pid == 42\")");
    assert_eq!(Filter::always().source(), "true");
    assert!(Filter::default().is_always());
    assert!("pid ==".parse::<Filter>().is_err());
    let g = f.clone();
    std::thread::spawn(move || assert!(g.source() == "pid == 42"))
        .join()
        .unwrap();
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(err("pid =="));
    assert!(e.to_string().starts_with("line 1, column 7"));
}

// ---- property tests --------------------------------------------------

/// The crate's tests' random generator (xorshift64*), seeded by each test.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// A number at or near a power of ten up to 10^`most` (at most 19):
    /// one less, it, one more, or another of its digit count, so its
    /// digits straddle every count a test's arithmetic may get wrong.
    pub(crate) fn number(&mut self, most: u32) -> u64 {
        let p = 10u64.pow(self.below(most as usize + 1) as u32);
        match self.below(4) {
            0 => p - 1,
            1 => p,
            2 => p + 1,
            _ => p.saturating_add(self.next() % p.saturating_mul(9).min(u64::MAX - p)),
        }
    }
    /// [`Rng::number`] of either sign, as an `i64`.
    pub(crate) fn signed(&mut self) -> i64 {
        let m = self.number(18) as i64;
        if self.below(2) == 0 {
            -m
        } else {
            m
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    const PIECES: &[&str] = &[
        "level",
        "target",
        "message",
        "key",
        "task",
        "time",
        "kind",
        "system",
        "thread",
        "field",
        ".",
        "field.x",
        "field.\"a b\"",
        "and",
        "or",
        "not",
        "!",
        "&&",
        "||",
        "in",
        "under",
        "contains",
        "starts_with",
        "ends_with",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "&",
        "|",
        "(",
        ")",
        "[",
        "]",
        ",",
        "true",
        "false",
        "null",
        "warn",
        "42",
        "-7",
        "1.5e3",
        "1e999",
        "-",
        "9999999999999999999999999999999999999999",
        "\"",
        "\"x\"",
        "\"\\u{",
        "\\",
        "\"\\u{1F600}\"",
        "\"2024-01-01T00:00:00Z\"",
        "#",
        "\n",
        " ",
        "\t",
        "é",
        "😀",
        "\0",
        "\"é",
        "12ab",
        "field..",
        "field.1",
        "log",
        "perf",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let recs = [base(), {
        let mut r = base();
        r.format = "x {} y".into();
        r.args = vec![Value::I64(1)];
        r.task = String::new();
        r.fields.clear();
        r
    }];
    let batch = Batch {
        sender: sender(),
        first_seq: 0,
        dropped: 0,
        records: recs
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                seq: i as u64,
                ..r.clone()
            })
            .collect(),
    };
    let bytes = encode_batch_to_vec(&batch);
    let b = access_batch(&bytes).unwrap();
    let mut parsed = 0;
    for round in 0..20_000 {
        let mut src = String::new();
        if round % 2 == 1 {
            // Mutations of a valid filter: near misses exercise more paths.
            let valid = render(&gen(&mut rng, 3));
            let mut chars: Vec<char> = valid.chars().collect();
            for _ in 0..rng.below(3) {
                let at = rng.below(chars.len() + 1);
                match rng.below(3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 => chars
                        .splice(at..at, rng.pick(PIECES).chars())
                        .for_each(drop),
                    _ => chars.truncate(at),
                }
            }
            src = chars.into_iter().collect();
        }
        let n = if round % 2 == 1 { 0 } else { 1 + rng.below(12) };
        for _ in 0..n {
            if round % 4 == 0 {
                // Raw bytes, lossily decoded.
                let bytes: Vec<u8> = (0..rng.below(6)).map(|_| rng.next() as u8).collect();
                src.push_str(&String::from_utf8_lossy(&bytes));
            } else {
                src.push_str(rng.pick(PIECES));
            }
            if rng.below(3) > 0 {
                src.push(' ');
            }
        }
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match Filter::parse(&src) {
                Ok(f) => {
                    for r in b.records() {
                        f.matches(&RecordView::new(b'P', b.sender(), r));
                    }
                    let _ = f.disassemble();
                    true
                }
                Err(e) => {
                    let _ = e.to_string();
                    false
                }
            }));
        match result {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(_) => panic!("panicked on {src:?}"),
        }
    }
    assert!(
        parsed > 100,
        "the generator should produce some valid filters: {parsed}"
    );
}

/// A generated filter and a reference evaluation of it.
enum Gen {
    Const(bool),
    Level(&'static str, u8),
    Target(&'static str, &'static str),
    Pid(&'static str, i64),
    Num(&'static str, &'static str, f64),
    Not(Box<Gen>),
    And(Vec<Gen>),
    Or(Vec<Gen>),
}

const CMP: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

fn cmp_f(op: &str, a: f64, b: f64) -> bool {
    match op {
        "==" => a == b,
        "!=" => a != b,
        "<" => a < b,
        "<=" => a <= b,
        ">" => a > b,
        _ => a >= b,
    }
}

fn gen(rng: &mut Rng, depth: usize) -> Gen {
    let leaf = depth == 0 || rng.below(3) == 0;
    if leaf {
        return match rng.below(6) {
            0 => Gen::Const(rng.below(2) == 0),
            1 => Gen::Level(
                rng.pick(CMP),
                rng.pick(&[0, 5, 10, 20, 25, 30, 40, 50, 255]),
            ),
            2 => Gen::Target(
                rng.pick(&["==", "!=", "starts_with", "contains", "ends_with", "under"]),
                rng.pick(&["db", "db::pool", "http", "", ":", "pool"]),
            ),
            3 => Gen::Pid(rng.pick(CMP), rng.pick(&[-1, 0, 7, 42, 43, 4294967295])),
            _ => Gen::Num(
                rng.pick(CMP),
                rng.pick(&["a", "b", "c", "s", "missing"]),
                rng.pick(&[-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]),
            ),
        };
    }
    match rng.below(3) {
        0 => Gen::Not(Box::new(gen(rng, depth - 1))),
        k => {
            let n = 2 + rng.below(3);
            let xs = (0..n).map(|_| gen(rng, depth - 1)).collect();
            if k == 1 {
                Gen::And(xs)
            } else {
                Gen::Or(xs)
            }
        }
    }
}

fn render(g: &Gen) -> String {
    match g {
        Gen::Const(b) => b.to_string(),
        Gen::Level(op, v) => format!("level {op} {v}"),
        Gen::Target(op, s) => format!("target {op} {s:?}"),
        Gen::Pid(op, v) => format!("pid {op} {v}"),
        Gen::Num(op, name, v) => {
            if v.fract() == 0.0 {
                format!("field.{name} {op} {}", *v as i64)
            } else {
                format!("field.{name} {op} {v}")
            }
        }
        Gen::Not(x) => format!("not ({})", render(x)),
        Gen::And(xs) => xs
            .iter()
            .map(|x| format!("({})", render(x)))
            .collect::<Vec<_>>()
            .join(" and "),
        Gen::Or(xs) => xs
            .iter()
            .map(|x| format!("({})", render(x)))
            .collect::<Vec<_>>()
            .join(" || "),
    }
}

fn reference(g: &Gen, r: &Record, pid: u32) -> bool {
    match g {
        Gen::Const(b) => *b,
        Gen::Level(op, v) => cmp_f(op, f64::from(r.level), f64::from(*v)),
        Gen::Target(op, s) => {
            let t = r.target.as_str();
            match *op {
                "==" => t == *s,
                "!=" => t != *s,
                "starts_with" => t.starts_with(s),
                "ends_with" => t.ends_with(s),
                "contains" => t.contains(s),
                _ => t == *s || t.starts_with(&format!("{s}::")),
            }
        }
        Gen::Pid(op, v) => cmp_f(op, f64::from(pid), *v as f64),
        Gen::Num(op, name, v) => match r.fields.iter().find(|f| f.key == *name) {
            Some(Field {
                value: Value::I64(x),
                ..
            }) => cmp_f(op, *x as f64, *v),
            Some(Field {
                value: Value::U64(x),
                ..
            }) => cmp_f(op, *x as f64, *v),
            Some(Field {
                value: Value::F64(x),
                ..
            }) => cmp_f(op, *x, *v),
            _ => false,
        },
        Gen::Not(x) => !reference(x, r, pid),
        Gen::And(xs) => xs.iter().all(|x| reference(x, r, pid)),
        Gen::Or(xs) => xs.iter().any(|x| reference(x, r, pid)),
    }
}

#[test]
fn random_filters_agree_with_a_reference_evaluator() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let targets = ["db", "db::pool", "http::server", "pool", "dbx", ""];
    let records: Vec<Record> = (0..64)
        .map(|i| {
            let mut r = base();
            r.seq = i;
            r.level = rng.pick(&[5, 10, 20, 25, 30, 40, 50]);
            r.target = rng.pick(&targets).to_string();
            let v = |rng: &mut Rng| match rng.below(4) {
                0 => Value::I64(rng.below(5) as i64 - 1),
                1 => Value::U64(rng.below(4) as u64),
                2 => Value::F64(rng.pick(&[0.5, 1.0, 2.5, -1.0])),
                _ => Value::Str("1".into()),
            };
            r.fields.clear();
            for k in ["a", "b", "c", "s"] {
                if rng.below(4) > 0 {
                    let value = v(&mut rng);
                    r.fields.push(field(k, value));
                }
            }
            r
        })
        .collect();
    let batch = Batch {
        sender: sender(),
        first_seq: 0,
        dropped: 0,
        records: records.clone(),
    };
    let body = encode_batch_to_vec(&batch);
    let b = access_batch(&body).unwrap();
    for _ in 0..2_000 {
        let g = gen(&mut rng, 4);
        let src = render(&g);
        let f = Filter::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        for (r, a) in records.iter().zip(b.records()) {
            let want = reference(&g, r, 42);
            let got = f.matches(&RecordView::new(b'P', b.sender(), a));
            assert_eq!(got, want, "{src}\non {r:?}\n{}", f.disassemble());
        }
    }
}

/// A tree printed back as source parses to the same tree (its print is a
/// fixed point) and compiles to the same program as the original source.
#[test]
fn printed_trees_parse_back_to_the_same_filter() {
    let sources = [
        r#"level >= warn and host == "a\"b\\c""#,
        r#"not (message contains "tab\there" or target starts_with "x")"#,
        r#"field.user.id in [1, -2, 3.5, 1e300, true, null, "é\u{7}"]"#,
        r#"pid not in [] && !(time < 1700000000000000000)"#,
        r#"task under "a/b" or key == "3@a/b" or kind == perf"#,
        r#"message not contains "x" and line != 12 and field.f == 0.1"#,
        "true",
        "thread == \"main\" || thread == 7",
    ];
    for src in sources {
        let tree = crate::parse(src).unwrap();
        let printed = tree.to_string();
        let again = crate::parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again.to_string(), printed, "{src}");
        assert_eq!(
            Filter::parse(&printed).unwrap().disassemble(),
            Filter::parse(src).unwrap().disassemble(),
            "{src} printed as {printed}"
        );
    }
}

/// The query path (a compiled filter on archived records) decides message
/// tests on deferred messages per call site without rendering where it
/// can (`site_shape.rs`): its verdict must equal the test on the rendered
/// message, for random formats (numbers in the literal text too, so
/// needles straddle literal text and arguments), arguments of every kind
/// (missing ones included) and needles cut from the messages.
#[test]
fn deferred_message_tests_equal_tests_on_the_rendered_message() {
    use distlog_core::message::render_format;
    use distlog_core::record::ValueRef;
    const ATOMS: &[&str] = &[
        "{}", "{}", "{:?}", "{{", "}}", "record ", " of ", "4", "42", "-", ".", "e", "a", "x", " ",
        "é",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        // A few sites, several records each (the per-site caches hit).
        let formats: Vec<String> = (0..3)
            .map(|_| {
                (0..rng.below(7))
                    .map(|_| rng.pick(ATOMS))
                    .collect::<String>()
            })
            .collect();
        let records: Vec<Record> = (0..8)
            .map(|i| {
                let mut r = base();
                r.seq = i;
                r.message = String::new();
                r.format = formats[rng.below(formats.len())].clone();
                r.args = (0..rng.below(4))
                    .map(|_| match rng.below(8) {
                        0 => Value::Null,
                        1 => Value::Bool(rng.below(2) == 1),
                        2 | 3 => Value::I64(rng.pick(&[-42, 0, 4, 42, 4242, i64::MIN])),
                        4 => Value::U64(rng.pick(&[0, 42, 4242, u64::MAX])),
                        5 => Value::F64(rng.pick(&[1.5, -0.0, 1e300, f64::NAN, 1e-7])),
                        _ => Value::Str(rng.pick(&["", "a", "x 4", "record", "é", "{}"]).into()),
                    })
                    .collect();
                r
            })
            .collect();
        let rendered: Vec<String> = records
            .iter()
            .map(|r| {
                let mut m = String::new();
                render_format(&r.format, r.args.iter().map(ValueRef::from), &mut m);
                m
            })
            .collect();
        let batch = Batch {
            sender: sender(),
            first_seq: 0,
            dropped: 0,
            records: records.clone(),
        };
        let body = encode_batch_to_vec(&batch);
        let b = access_batch(&body).unwrap();
        let mut needles: Vec<String> = vec![String::new(), "zz".into(), "x4".into()];
        for _ in 0..4 {
            let m: Vec<char> = rendered[rng.below(rendered.len())].chars().collect();
            let a = rng.below(m.len() + 1);
            let e = a + rng.below(m.len() - a + 1);
            let cut: String = m[a..e].iter().collect();
            needles.push(cut.clone() + "!");
            needles.push(cut.replace('4', "5"));
            needles.push(cut);
        }
        for n in &needles {
            let lit = ast::Lit::Str(n.clone());
            for op in ["contains", "starts_with", "ends_with", "=="] {
                let src = format!("message {op} {lit}");
                let f = Filter::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                for ((r, a), m) in records.iter().zip(b.records()).zip(&rendered) {
                    let want = match op {
                        "contains" => m.contains(n.as_str()),
                        "starts_with" => m.starts_with(n.as_str()),
                        "ends_with" => m.ends_with(n.as_str()),
                        _ => m == n,
                    };
                    let got = f.matches(&RecordView::new(b'P', b.sender(), a));
                    assert_eq!(got, want, "{src} on {:?} {:?} ({m:?})", r.format, r.args);
                }
            }
        }
    }
}

/// A [`BatchScan`] keeps each deferred-message test's per-site work per
/// (batch, site index): its verdict must be [`Filter::matches`]'s and the
/// rendered message's on every record, with batches that mix sites, the
/// same site index naming another format in the next batch, arguments
/// missing, strings, floats, needles past a plan's kept tests, filters of
/// several message tests, and records handed to a batch they are not of.
#[test]
fn batch_scans_equal_matches_across_batches() {
    use distlog_core::message::render_format;
    use distlog_core::record::ValueRef;
    const ATOMS: &[&str] = &[
        "{}", "{}", "{:?}", "{{", "}}", "record ", " of ", "4", "42", "-", ".", "e", "a", "x", " ",
    ];
    let mut rng = Rng(0x51_7cc1_b727_220a);
    let mut plans = 0;
    for _ in 0..120 {
        let formats: Vec<String> = (0..5)
            .map(|_| {
                (0..rng.below(7))
                    .map(|_| rng.pick(ATOMS))
                    .collect::<String>()
            })
            .collect();
        // Three batches over the same formats in other orders: a site
        // index names another format (and argument count) in each.
        let batches: Vec<(Vec<Record>, Vec<String>)> = (0..3)
            .map(|_| {
                let records: Vec<Record> = (0..10)
                    .map(|i| {
                        let mut r = base();
                        r.seq = i;
                        r.message = String::new();
                        r.format = formats[rng.below(formats.len())].clone();
                        let plain = rng.below(8) == 0;
                        if plain {
                            // A plain message among the deferred ones.
                            r.message = "record 42 of x".into();
                            r.format = String::new();
                        }
                        r.args = (0..if plain { 0 } else { rng.below(4) })
                            .map(|_| match rng.below(8) {
                                0 => Value::Null,
                                1 => Value::Bool(rng.below(2) == 1),
                                2 => Value::I64(rng.pick(&[-42, 0, 4, 42, 4242, i64::MIN])),
                                3 => Value::I64(rng.signed()),
                                4 if rng.below(2) == 0 => Value::U64(rng.number(19)),
                                4 => Value::U64(rng.pick(&[0, 42, 4242, u64::MAX])),
                                5 => Value::F64(rng.pick(&[1.5, -0.0, 1e300, f64::NAN, 4.2])),
                                _ => Value::Str(
                                    rng.pick(&["", "a", "x 4", "record", "42", "{}"]).into(),
                                ),
                            })
                            .collect();
                        r
                    })
                    .collect();
                let rendered = records
                    .iter()
                    .map(|r| {
                        let mut m = r.message.clone();
                        render_format(&r.format, r.args.iter().map(ValueRef::from), &mut m);
                        m
                    })
                    .collect();
                (records, rendered)
            })
            .collect();
        let bodies: Vec<_> = batches
            .iter()
            .map(|(records, _)| {
                encode_batch_to_vec(&Batch {
                    sender: sender(),
                    first_seq: 0,
                    dropped: 0,
                    records: records.clone(),
                })
            })
            .collect();
        let views: Vec<_> = bodies.iter().map(|b| access_batch(b).unwrap()).collect();
        // Needles cut from the messages (more than a plan keeps tests of).
        let mut needles: Vec<String> = vec![String::new(), "zz".into(), "42 ".into()];
        for k in 0..6 {
            let all = &batches[rng.below(3)].1;
            let m: Vec<char> = all[rng.below(all.len())].chars().collect();
            let a = rng.below(m.len() + 1);
            let e = a + rng.below(m.len() - a + 1);
            // Most cuts start or end inside digits where there are some
            // (an integer's digits cut: the digit arithmetic), the rest
            // of the message on the other side or more digits.
            let digits: Vec<usize> = (0..m.len()).filter(|&i| m[i].is_ascii_digit()).collect();
            let (a, e) = match (digits.is_empty(), k % 4) {
                (true, _) | (_, 3) => (a, e),
                (false, 0) => (rng.pick(&digits), m.len()),
                (false, 1) => (0, rng.pick(&digits) + 1),
                (false, _) => {
                    let (x, y) = (rng.pick(&digits), rng.pick(&digits) + 1);
                    (x.min(y), x.max(y))
                }
            };
            let cut: String = m[a..e].iter().collect();
            needles.push(cut.replace('4', "5"));
            // Near misses of an integer's digits: a digit more or fewer.
            let mut z: Vec<char> = m[a..e].to_vec();
            z.insert(rng.below(z.len() + 1), '0');
            needles.push(z.into_iter().collect());
            needles.push(cut.chars().skip(1).collect());
            needles.push(cut);
        }
        let ops = ["contains", "starts_with", "ends_with", "=="];
        let mut sources: Vec<String> = Vec::new();
        for n in &needles {
            let lit = ast::Lit::Str(n.clone());
            for op in ops {
                sources.push(format!("message {op} {lit}"));
            }
            // Negated: a one-test program whose verdicts are swapped.
            sources.push(format!("not message {} {lit}", rng.pick(&ops)));
        }
        // Several message tests in one filter.
        for _ in 0..6 {
            let t = |rng: &mut Rng| {
                let lit = ast::Lit::Str(needles[rng.below(needles.len())].clone());
                format!("message {} {lit}", rng.pick(&ops))
            };
            let (a, b, c) = (t(&mut rng), t(&mut rng), t(&mut rng));
            sources.push(format!("({a} or not {b}) and ({c} or level >= warn)"));
        }
        for src in &sources {
            let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let mut scan = f.batch_scan();
            // Each batch twice, in turn, on one scan.
            for i in [0, 1, 2, 1, 0, 2] {
                let (b, (records, rendered)) = (views[i], &batches[i]);
                let mut in_batch = scan.batch(b);
                for ((r, a), m) in records.iter().zip(b.records()).zip(rendered) {
                    let v = RecordView::new(b'P', b.sender(), a);
                    let want = f.matches(&v);
                    assert_eq!(
                        in_batch.matches(&v),
                        want,
                        "{src} on {:?} {:?} ({m:?}), batch {i}",
                        r.format,
                        r.args
                    );
                    if !src.contains(" or ") && !src.starts_with("not ") {
                        let (op, n) = src["message ".len()..].split_once(' ').unwrap();
                        let n = needles
                            .iter()
                            .find(|x| *n == ast::Lit::Str((*x).clone()).to_string())
                            .unwrap();
                        let truth = match op {
                            "contains" => m.contains(n.as_str()),
                            "starts_with" => m.starts_with(n.as_str()),
                            "ends_with" => m.ends_with(n.as_str()),
                            _ => m == n,
                        };
                        assert_eq!(want, truth, "{src} on {m:?}");
                    }
                }
                plans += in_batch.plans_made();
                // A record of another batch: not looked up in this one's
                // plans.
                let other = views[(i + 1) % 3];
                for a in other.records() {
                    let v = RecordView::new(b'P', other.sender(), a);
                    assert_eq!(in_batch.matches(&v), f.matches(&v), "{src}, foreign record");
                }
            }
        }
    }
    assert!(plans > 10_000, "the scans kept {plans} plans");
    // Integers' `ends_with` / `starts_with` cuts were decided on their
    // numbers, both ways, often.
    let [failed, held] = crate::message_align::tally::get_digits();
    assert!(failed > 400 && held > 100, "{failed} / {held}");
}
