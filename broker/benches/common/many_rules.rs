//! The rule mix the broker's rule benches share (`benches/pipeline.rs`'s
//! `decode_route/rules_*` and `examples/instr_count.rs`'s
//! `measured_rules_*`), included by `#[path]` so both measure the same
//! rules.

/// A config of `n` rules as a broker would have them, the mix of the
/// `filter_rules` bench (`benches/filter_vm.rs`, `rules`): 1-3 clauses
/// each from levels, targets (`==`, `starts_with`, `under`), typed fields
/// (`==`), hosts and message substrings; rule 0 is `level >= warn and
/// target starts_with "db::"`. Each rule goes to one of four processors.
pub fn many_rules(n: usize) -> String {
    let mut state = 0x0dd5_eed5_0f5e_7500u64;
    let mut below = |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let levels = ["warn", "error", "info", "critical"];
    let services = ["db", "http", "app", "cache", "auth", "billing", "search"];
    let mut out = String::from(
        "processors:\n  p0: {type: console}\n  p1: {type: console}\n  \
         p2: {type: console}\n  p3: {type: console}\nrules:\n",
    );
    for i in 0..n as u64 {
        let filter = if i == 0 {
            r#"level >= warn and target starts_with "db::""#.to_owned()
        } else {
            let clauses = 1 + below(3);
            let mut parts = Vec::new();
            for c in 0..clauses {
                let k = below(1000);
                let svc = services[below(services.len() as u64) as usize];
                parts.push(match (c, below(8)) {
                    (0, 0..=2) => format!("level >= {}", levels[below(4) as usize]),
                    (_, 0) => format!("target == \"{svc}::w{k}\""),
                    (_, 1) => format!("target starts_with \"{svc}{}::\"", k % 50),
                    (_, 2) => format!("target under \"{svc}::pool{}\"", k % 20),
                    (_, 3) => format!("field.user_id == {}", i * 97 % 100_000),
                    (_, 4) => format!("field.route == \"/r{}\"", k % 40),
                    (_, 5) => format!("host == \"web-{}\"", k % 30),
                    (_, 6) => format!("message contains \"code {k}\""),
                    _ => format!("level >= {}", levels[below(4) as usize]),
                });
            }
            parts.join(" and ")
        };
        out.push_str(&format!(
            "  - filter: '{filter}'\n    processors: [p{}]\n",
            i % 4
        ));
    }
    out.push_str("default: [p0]\n");
    out
}
