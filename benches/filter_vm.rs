//! The filter VM against the alternatives, on the same 1000 records and the
//! same three-clause predicate:
//!
//! ```text
//! level >= warn and target starts_with "db::" and message contains "timeout"
//! ```
//!
//! - `vm_archived`: the compiled filter on the zero-copy archived records,
//!   as the broker runs it (before the wire format was unified, this was
//!   `vm_archived_v2`);
//! - `native_closure_archived`: the same predicate hand-written in Rust on
//!   the archived records (the floor the VM is measured against);
//! - `owned_record_then_eval`: copy each record to an owned `Record`
//!   first, then test it;
//! - `serde_json_value_then_eval`: parse each record's JSON form (the
//!   Python clients' field names) into a `serde_json::Value`, then test it.
//!
//! The records are mixed so every clause matters (levels, targets, messages
//! with and without "timeout", some with deferred formatting). Before timing,
//! the bench checks that all four agree on every record and that the VM
//! allocates nothing in steady state (a counting global allocator).
//!
//! `cargo bench --bench filter_vm -- --warm-up-time 1 --measurement-time 3`;
//! quick check: `cargo test --benches`.
//!
//! Group `filter_rules`: a broker's rules over the same records, 1, 10, 20,
//! 100 and 1,000 rules of 1-3 clauses ([`rules`]: levels, targets, typed
//! fields, hosts, message substrings; rule 0 is the filter above), each
//! rule evaluated alone (`separate`, what the broker did) against all of
//! them as one [`FilterSet`] (`set`). Both agree on every record, and the
//! set allocates nothing in steady state.
//! `cargo bench --bench filter_vm -- filter_rules`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use distlog_core::record::{level, Field, Record, Value};
use distlog_core::view::RecordRef;
use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, BatchRef, Sender};
use distlog_filter::{Filter, FilterSet, RecordView};
use std::hint::black_box;

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocs_in, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1000;
const FILTER: &str =
    r#"level >= warn and target starts_with "db::" and message contains "timeout""#;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn records() -> Vec<Record> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let levels = [
        level::TRACE,
        level::DEBUG,
        level::DEBUG,
        level::INFO,
        level::INFO,
        level::INFO,
        level::WARN,
        level::WARN,
        level::ERROR,
        level::CRITICAL,
    ];
    let targets = [
        "db::pool",
        "db::query",
        "http::server",
        "app::worker",
        "dbx::cache",
        "cache",
    ];
    let words = [
        "request",
        "handled",
        "for",
        "user",
        "connection",
        "retry",
        "slow",
        "query",
        "on",
        "shard",
        "took",
        "ms",
        "after",
        "upstream",
        "closed",
        "reset",
    ];
    (0..N)
        .map(|i| {
            let target = targets[rng.below(targets.len() as u64) as usize];
            let mut message = String::new();
            let len = 4 + rng.below(14);
            let timeout_at = if rng.below(3) == 0 {
                rng.below(len)
            } else {
                u64::MAX
            };
            for w in 0..len {
                if !message.is_empty() {
                    message.push(' ');
                }
                if w == timeout_at {
                    message.push_str("timeout");
                } else {
                    message.push_str(words[rng.below(words.len() as u64) as usize]);
                }
            }
            let deferred = rng.below(10) == 0;
            let (message, format, args) = if deferred {
                let fmt = if timeout_at != u64::MAX {
                    "query {} timeout after {} ms"
                } else {
                    "query {} done in {} ms"
                };
                (
                    String::new(),
                    fmt.to_owned(),
                    vec![Value::U64(i as u64), Value::F64(12.5)],
                )
            } else {
                (message, String::new(), Vec::new())
            };
            Record {
                time_ns: 1_700_000_000_000_000_000 + i as u64 * 1000,
                seq: i as u64,
                level: levels[rng.below(levels.len() as u64) as usize],
                kind: b'L',
                line: 100 + rng.below(400) as u32,
                task_n: rng.below(20) as u32,
                thread_id: 1000 + rng.below(8),
                thread_name: format!("worker-{}", rng.below(8)),
                target: target.to_owned(),
                module: format!("app::{}", target),
                file: format!("src/{}.rs", target.replace("::", "/")),
                func: "handle".to_owned(),
                message,
                format,
                args,
                fields: vec![
                    Field {
                        key: "user_id".into(),
                        value: Value::I64(rng.below(100_000) as i64),
                    },
                    Field {
                        key: "shard".into(),
                        value: Value::Str(format!("s{}", rng.below(16))),
                    },
                ],
                task: format!("1b4e28ba-2fa1-11d2-883f-0016d3cca427/{}", rng.below(5)),
                error: String::new(),
            }
        })
        .collect()
}

fn sender() -> Sender {
    Sender {
        host: "web-1".into(),
        pid: 4242,
        program: "api".into(),
        start_ns: 1_700_000_000_000_000_000,
        instance: 7,
    }
}

/// The JSON a Python client would send for `r` (its field names).
fn to_json(r: &Record, s: &Sender) -> String {
    let mut context = serde_json::Map::new();
    context.insert("key".into(), r.key().into());
    for f in &r.fields {
        let v = match &f.value {
            Value::I64(i) => serde_json::json!(i),
            Value::Str(s) => serde_json::json!(s),
            other => serde_json::json!(format!("{other:?}")),
        };
        context.insert(f.key.clone(), v);
    }
    serde_json::json!({
        "name": r.target,
        "msg": if r.format.is_empty() { &r.message } else { &r.format },
        "args": null,
        "levelname": level::name(r.level),
        "levelno": r.level,
        "pathname": r.file,
        "filename": r.file.rsplit('/').next(),
        "module": r.module,
        "exc_info": null,
        "exc_text": null,
        "stack_info": null,
        "lineno": r.line,
        "funcName": r.func,
        "created": r.time_ns as f64 / 1e9,
        "msecs": (r.time_ns / 1_000_000 % 1000) as f64,
        "relativeCreated": 1234.5,
        "thread": r.thread_id,
        "threadName": r.thread_name,
        "processName": s.program,
        "process": s.pid,
        "message": r.rendered_message(),
        "asctime": null,
        "hostname": s.host,
        "context": context,
    })
    .to_string()
}

fn native(r: RecordRef<'_>, finder: &memchr::memmem::Finder<'_>, buf: &mut String) -> bool {
    r.level() >= level::WARN
        && r.target().starts_with("db::")
        && if r.format().is_empty() {
            finder.find(r.message().as_bytes()).is_some()
        } else {
            buf.clear();
            distlog_core::message::render_format(r.format(), r.args(), buf);
            finder.find(buf.as_bytes()).is_some()
        }
}

fn owned(r: &Record) -> bool {
    r.level >= level::WARN
        && r.target.starts_with("db::")
        && r.rendered_message().contains("timeout")
}

fn json(s: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(s).expect("valid json");
    v["levelno"].as_u64().unwrap_or(0) >= u64::from(level::WARN)
        && v["name"].as_str().is_some_and(|t| t.starts_with("db::"))
        && v["message"].as_str().is_some_and(|m| m.contains("timeout"))
}

fn vm_pass(f: &Filter, batch: BatchRef<'_>) -> usize {
    let sender = batch.sender();
    batch
        .records()
        .filter(|r| f.matches(&RecordView::new(b'P', sender, *r)))
        .count()
}

/// `n` rules as a broker config would have them: 1-3 clauses each, from
/// levels (few distinct, shared by many rules), targets (`==`,
/// `starts_with`, `under`), typed fields (`==`), hosts and message
/// substrings (`contains`; distinct needles grow with the rules). Rule 0
/// is [`FILTER`].
fn rules(n: usize) -> Vec<String> {
    let mut rng = Rng(0x0dd5_eed5_0f5e_7500);
    let mut out = vec![FILTER.to_owned()];
    let levels = ["warn", "error", "info", "critical"];
    let services = ["db", "http", "app", "cache", "auth", "billing", "search"];
    while out.len() < n {
        let i = out.len() as u64;
        let clauses = 1 + rng.below(3);
        let mut parts = Vec::new();
        for c in 0..clauses {
            let k = rng.below(1000);
            let svc = services[rng.below(services.len() as u64) as usize];
            let part = match (c, rng.below(8)) {
                (0, 0..=2) => format!("level >= {}", levels[rng.below(4) as usize]),
                (_, 0) => format!("target == \"{svc}::w{k}\""),
                (_, 1) => format!("target starts_with \"{svc}{}::\"", k % 50),
                (_, 2) => format!("target under \"{svc}::pool{}\"", k % 20),
                (_, 3) => format!("field.user_id == {}", i * 97 % 100_000),
                (_, 4) => format!("field.shard == \"s{}\"", k % 40),
                (_, 5) => format!("host == \"web-{}\"", k % 30),
                (_, 6) => format!("message contains \"code {k}\""),
                _ => format!("level >= {}", levels[rng.below(4) as usize]),
            };
            parts.push(part);
        }
        out.push(parts.join(" and "));
    }
    out.truncate(n);
    out
}

/// Each rule alone, as the broker routed before [`FilterSet`]: the number
/// of (record, rule) matches.
fn separate_pass(filters: &[Filter], batch: BatchRef<'_>) -> usize {
    let sender = batch.sender();
    let mut hits = 0;
    for r in batch.records() {
        let view = RecordView::new(b'P', sender, r);
        for f in filters {
            hits += usize::from(f.matches(&view));
        }
    }
    hits
}

/// The same with the set.
fn set_pass(set: &FilterSet, batch: BatchRef<'_>, out: &mut Vec<u32>) -> usize {
    let sender = batch.sender();
    let mut hits = 0;
    for r in batch.records() {
        set.matching(&RecordView::new(b'P', sender, r), out);
        hits += out.len();
    }
    hits
}

fn bench_rules(c: &mut Criterion, archived: BatchRef<'_>) {
    let mut g = c.benchmark_group("filter_rules");
    g.throughput(Throughput::Elements(N as u64));
    let mut out = Vec::new();
    for n in [1, 10, 20, 100, 1000] {
        let srcs = rules(n);
        let filters: Vec<Filter> = srcs
            .iter()
            .map(|s| Filter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect();
        let set = FilterSet::new(&srcs).expect("rules compile");
        // The set agrees with each rule alone, record by record.
        let sender = archived.sender();
        for r in archived.records() {
            let view = RecordView::new(b'P', sender, r);
            set.matching(&view, &mut out);
            let want: Vec<u32> = (0..n as u32)
                .filter(|&i| filters[i as usize].matches(&view))
                .collect();
            assert_eq!(out, want);
        }
        let allocs = allocs_in(|| {
            for _ in 0..10 {
                black_box(set_pass(&set, archived, &mut out));
            }
        });
        assert_eq!(allocs, 0, "the set allocated in steady state");
        eprintln!(
            "filter_rules: {n} rules, {} distinct tests, {} matches per 1000 records; \
             0 allocations",
            set.tests(),
            set_pass(&set, archived, &mut out)
        );
        g.bench_function(format!("separate/{n}"), |b| {
            b.iter(|| separate_pass(black_box(&filters), archived))
        });
        g.bench_function(format!("set/{n}"), |b| {
            b.iter(|| set_pass(black_box(&set), archived, &mut out))
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let owned_records = records();
    let batch = Batch {
        sender: sender(),
        first_seq: 0,
        dropped: 0,
        records: owned_records.clone(),
    };
    let bytes = encode_batch_to_vec(&batch);
    let archived = access_batch(&bytes).expect("valid batch");
    let jsons: Vec<String> = owned_records
        .iter()
        .map(|r| to_json(r, &batch.sender))
        .collect();
    let filter = Filter::parse(FILTER).expect("filter compiles");
    let finder = memchr::memmem::Finder::new("timeout");
    let mut buf = String::new();

    // Everyone agrees, record by record; the clauses all matter.
    let mut hits = 0;
    for ((r, a), j) in owned_records.iter().zip(archived.records()).zip(&jsons) {
        let want = owned(r);
        assert_eq!(
            filter.matches(&RecordView::new(b'P', archived.sender(), a)),
            want
        );
        assert_eq!(native(a, &finder, &mut buf), want);
        assert_eq!(owned(&a.to_record()), want);
        assert_eq!(json(j), want);
        hits += usize::from(want);
    }
    let frac = |p: &dyn Fn(&Record) -> bool| {
        owned_records.iter().filter(|r| p(r)).count() as f64 / N as f64
    };
    eprintln!(
        "filter_vm: {N} records; level >= warn {:.2}, target db:: {:.2}, message timeout {:.2}, \
         deferred {:.2}; all three {hits}",
        frac(&|r| r.level >= level::WARN),
        frac(&|r| r.target.starts_with("db::")),
        frac(&|r| r.rendered_message().contains("timeout")),
        frac(&|r| !r.format.is_empty()),
    );
    eprintln!("filter_vm bytecode:\n{}", filter.disassemble());

    // Steady state allocates nothing (the first pass may grow the
    // thread's message buffer).
    vm_pass(&filter, archived);
    let allocs = allocs_in(|| {
        for _ in 0..10 {
            black_box(vm_pass(&filter, archived));
        }
    });
    assert_eq!(allocs, 0, "the VM allocated in steady state");
    eprintln!("filter_vm: 0 allocations in {} evaluations", 10 * N);

    let mut g = c.benchmark_group("filter_vm");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("vm_archived", |b| {
        b.iter(|| vm_pass(black_box(&filter), archived))
    });
    g.bench_function("native_closure_archived", |b| {
        b.iter(|| {
            archived
                .records()
                .filter(|r| native(*r, black_box(&finder), &mut buf))
                .count()
        })
    });
    g.bench_function("owned_record_then_eval", |b| {
        b.iter(|| archived.records().filter(|r| owned(&r.to_record())).count())
    });
    g.bench_function("serde_json_value_then_eval", |b| {
        b.iter(|| jsons.iter().filter(|s| json(black_box(s))).count())
    });
    g.finish();
    bench_rules(c, archived);
}

criterion_group!(benches, bench);
criterion_main!(benches);
