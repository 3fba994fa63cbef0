//! What each fuzz target feeds drplan, shared with the regression test that replays every
//! crasher kept under `fuzz/regressions/TARGET/` (`tests/fuzz_regressions.rs`). Each entry
//! must never panic, hang or grow without bound, whatever the bytes.
#![allow(dead_code)] // each target uses one entry

use drplan::diag::{self, Diagnostics, SourceFile};
use drplan::load::Document;
use serde_json::{Value, json};

/// Plan and site loading, validation and binding, then every preview form. The input is a
/// plan, optionally followed by a NUL byte and a site.
pub(crate) fn validate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (plan, site) = match text.split_once('\0') {
        Some((plan, site)) => (plan, Some(site)),
        None => (text, None),
    };
    let report = |d: Diagnostics| {
        diag::render(&d, false);
    };
    let valid =
        match Document::parse(SourceFile::new("plan.yaml", plan)).and_then(drplan::check::plan) {
            Ok(valid) => valid,
            Err(d) => return report(d),
        };
    let Some(site) = site else {
        return;
    };
    let bound = match Document::parse(SourceFile::new("site.yaml", site))
        .and_then(|doc| drplan::check::bind(valid, doc))
    {
        Ok(bound) => bound,
        Err(d) => return report(d),
    };
    let graph = drplan::graph::PlanGraph::build(bound);
    match drplan::render::preview_json(&graph) {
        Ok(preview) => {
            drplan::render::text(&preview, false);
            drplan::render::dot(&preview);
            drplan::render::mermaid(&preview);
        }
        Err(d) => report(d),
    }
}

/// Template and expression evaluation against a context like a run's: the first line is an
/// expression (`when`/`expect`), the rest a template. Also what the checks and the
/// redaction do with them.
pub(crate) fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, tmpl) = text.split_once('\n').unwrap_or((text, ""));
    let env = drplan::template::shared();
    let ctx = json!({
        "params": { "n": 3, "s": "a'b\"c", "list": [1, "x", null], "on": true },
        "vars": { "dir": "/var/lib/pg", "port": 5432, "map": { "k": "v" } },
        "hosts": { "pg": { "address": "10.0.0.1", "port": 22 } },
        "secrets": { "pw": "it's-$ecret\n2nd line" },
        "steps": { "check": { "result": { "lsn": "0/3000", "size": null, "ok": true } } },
        "result": { "in_recovery": false, "lag": 12 },
    });
    use drplan::template::Form;
    for (source, form) in [(expr, Form::Expression), (tmpl, Form::Template)] {
        let _ = drplan::template::variables(env, source, form);
        let _ = drplan::template::unknown_names(env, source, form);
    }
    let _ = drplan::template::eval(env, expr, &ctx);
    let value = Value::String(tmpl.to_owned());
    let rendered = drplan::template::render_value(env, &value, &ctx);
    let redactor = drplan::redact::Redactor::new();
    redactor.add("it's-$ecret\n2nd line");
    for derived in drplan::template::secret_renderings(env, &value, &ctx) {
        redactor.add(&derived);
    }
    if let Ok(Value::String(out)) = rendered {
        redactor.redact_tail(&out, true);
    }
    drplan::template::unquoted_interpolations(tmpl);
}

/// Journal reading: the bytes as a journal file; then as records, one JSON value a line,
/// replayed into a run's state, and written and read back (which must give them again).
pub(crate) fn journal(data: &[u8]) {
    let _ = drplan::journal::decode(data);
    let records: Vec<Value> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    let _ = drplan::exec::RunState::replay(&records, false);
    let _ = drplan::exec::RunState::replay(&records, true);
    let back = drplan::journal::decode(&drplan::journal::encode(&records))
        .expect("a journal drplan wrote reads back");
    assert_eq!(back.records, records, "records change through the journal");
    assert!(!back.torn_tail);
}

/// The fast YAML reader against serde-saphyr (`drplan::load::readers_agree`): wherever the
/// fast reader accepts a text, both must build the same tree. The input is YAML text.
pub(crate) fn yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = drplan::load::readers_agree(text) {
        panic!("{e}");
    }
}
