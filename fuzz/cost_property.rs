// The property of the `expansion_bound` fuzz target, shared with the
// corpus replay test (`tests/fuzz_corpus_replay.rs` includes this file):
// whatever is accepted costs its readers at most the stated multiple of
// its size (`distlog_core::limits`, docs/PROTOCOL.md "Cost bounds").
//
// The first byte picks the input: `P` a Python pickle, `J` a Python JSON
// record, anything else a batch body.

/// Text a renderer may write per byte of a record's expanded size (an
/// escape is at most 6 bytes; JSON shows the file path, arguments and
/// fields twice), and per record whatever its content.
const RENDERED_PER_BYTE: u64 = 20;
const RENDERED_PER_RECORD: u64 = 1024;

/// The bytes a reader may touch for `r`, counted from the views (not by
/// the validator): what it refers to and what it carries.
fn record_cost(b: &distlog_core::view::BatchRef<'_>, r: &distlog_core::view::RecordRef<'_>) -> u64 {
    use distlog_core::record::ValueRef;
    let value = |v: ValueRef<'_>| match v {
        ValueRef::Str(s) => s.len() as u64,
        _ => 1,
    };
    let s = b.sender();
    let strings = [
        s.host.as_str(),
        s.program.as_str(),
        r.target(),
        r.module(),
        r.file(),
        r.func(),
        r.format(),
        r.thread_name(),
        r.task(),
        r.message(),
        r.error(),
    ];
    strings.iter().map(|s| s.len() as u64).sum::<u64>()
        + r.args().map(value).sum::<u64>()
        + r.fields().map(|(k, v)| k.len() as u64 + value(v)).sum::<u64>()
}

/// Checks one input; panics when a bound does not hold.
pub fn check(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which {
        b'P' | b'J' => {
            if which == b'P' {
                if let Ok(v) = distlogd::python::pickle::to_json(body) {
                    let cost = json_cost(&v);
                    let budget = distlogd::python::pickle::output_budget(body.len()) as u64;
                    assert!(cost <= budget, "pickle of {} bytes decoded to {cost} > {budget}", body.len());
                }
            }
            let Ok((sender, record)) = distlogd::python::decode(which, body) else {
                return;
            };
            let batch = distlogd::python::to_batch(sender, record);
            match distlog_core::wire::OwnedBatch::from_body(&batch) {
                Ok(owned) => check_batch(&owned.get(), batch.len()),
                Err(e) => assert!(
                    matches!(e.reason(), "name_too_long" | "too_many_fields" | "task_too_deep"),
                    "a decoded Python record failed validation: {e}"
                ),
            }
        }
        _ => {
            // Readers need an aligned body.
            if let Ok(owned) = distlog_core::wire::OwnedBatch::from_body(data) {
                check_batch(&owned.get(), data.len());
            }
        }
    }
}

/// The expanded size of an accepted batch is within the bound, and so is
/// the text the renderers make of it.
fn check_batch(b: &distlog_core::view::BatchRef<'_>, len: usize) {
    let budget = distlog_core::limits::budget(len);
    let (mut expanded, mut rendered) = (0u64, 0u64);
    let mut line = String::new();
    for r in b.records() {
        let cost = record_cost(b, &r);
        expanded += cost;
        line.clear();
        distlog_filter::render::text_line(b'P', b.sender(), r, true, &mut line);
        // Text output (console, tail, query) reaches terminals: no control
        // or bidi character raw (the colour codes are the renderer's own).
        assert!(
            !line.chars().any(|c| distlog_filter::render::must_escape(c) && c != '\u{1b}'),
            "{line:?}"
        );
        distlog_filter::render::json_record(b'P', b.sender(), r, &mut line);
        assert!(
            line.len() as u64 <= RENDERED_PER_BYTE * cost + RENDERED_PER_RECORD,
            "a record of cost {cost} rendered to {} bytes",
            line.len()
        );
        rendered += line.len() as u64;
    }
    assert!(expanded <= budget, "a batch of {len} bytes expands to {expanded} > {budget}");
    let records = b.len() as u64;
    assert!(rendered <= RENDERED_PER_BYTE * budget + RENDERED_PER_RECORD * records);
}

/// What the pickle decoder charges for a decoded value.
fn json_cost(v: &serde_json::Value) -> u64 {
    use serde_json::Value;
    let unit = distlogd::python::pickle::VALUE_COST as u64;
    unit + match v {
        Value::String(s) => s.len() as u64,
        Value::Array(a) => a.iter().map(json_cost).sum(),
        Value::Object(m) => m.iter().map(|(k, v)| unit + k.len() as u64 + json_cost(v)).sum(),
        _ => 0,
    }
}
