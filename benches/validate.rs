//! How long validation and preview take on a 10,000-step generated plan.
//!
//! `cargo bench --bench validate`. The plan has 100 parallel chains of 100 steps, each step
//! with templated parameters, a rollback and a reference to its predecessor's result, so
//! every stage (YAML, schema, checks, templates, DAG, preview) does real work.

use criterion::{Criterion, criterion_group, criterion_main};
use drplan::check;
use drplan::diag::SourceFile;
use drplan::graph::PlanGraph;
use drplan::load::Document;
use std::fmt::Write;
use std::hint::black_box;

const CHAINS: usize = 100;
const LENGTH: usize = 100;

fn plan_text() -> String {
    let mut s = String::from(
        "version: 1\nname: big\nroles: [db, app]\nparams:\n  dir: { type: string, default: /srv }\nsteps:\n",
    );
    for c in 0..CHAINS {
        for i in 0..LENGTH {
            let _ = writeln!(
                s,
                "  - id: s{c}_{i}\n    on: {}\n    action: file.write",
                if i % 2 == 0 { "db" } else { "app" }
            );
            let _ = writeln!(
                s,
                "    with: {{ path: \"{{{{ params.dir }}}}/{c}/{i}\", content: \"{{{{ vars.v }}}} {{{{ hosts.db.address }}}}\" }}"
            );
            let _ = writeln!(
                s,
                "    rollback: {{ action: file.remove, with: {{ path: \"{{{{ params.dir }}}}/{c}/{i}\" }} }}"
            );
            if i > 0 {
                let _ = writeln!(
                    s,
                    "    needs: [s{c}_{}]\n    when: \"steps.s{c}_{}.result is defined\"",
                    i - 1,
                    i - 1
                );
            }
        }
    }
    s
}

const SITE: &str = "version: 1\nsite: bench\nhosts:\n  db: { address: 10.0.0.1 }\n  app: { address: 10.0.0.2 }\nssh: { known_hosts: kh }\nvars: { v: x }\n";

fn bench(c: &mut Criterion) {
    let text = plan_text();
    let mut g = c.benchmark_group("10k-steps");
    g.sample_size(10);
    // The floors: the YAML parser's events alone (what `Document::parse`'s fast reader
    // reads), and serde-saphyr reading the same text into a JSON value without positions
    // (its default node budget is too small for this plan: raised as `Document::parse` does).
    g.bench_function("yaml-events", |b| {
        b.iter(|| black_box(serde_saphyr::granit_parser::Parser::new_from_str(&text).count()));
    });
    g.bench_function("yaml-floor", |b| {
        b.iter(|| {
            let mut options = serde_saphyr::Options::default();
            let mut budget = serde_saphyr::Budget::default();
            budget.max_nodes = 20_000_000;
            budget.max_events = 40_000_000;
            options.budget = Some(budget);
            let v: serde_json::Value =
                serde_saphyr::from_str_with_options(&text, options).expect("parses");
            black_box(v)
        });
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            black_box(Document::parse(SourceFile::new("big.yaml", text.as_str())).expect("parses"))
        });
    });
    g.bench_function("validate", |b| {
        b.iter(|| {
            let doc = Document::parse(SourceFile::new("big.yaml", text.as_str())).expect("parses");
            black_box(check::plan(doc).expect("valid"))
        });
    });
    g.bench_function("validate+bind+preview", |b| {
        b.iter(|| {
            let doc = Document::parse(SourceFile::new("big.yaml", text.as_str())).expect("parses");
            let valid = check::plan(doc).expect("valid");
            let site = Document::parse(SourceFile::new("site.yaml", SITE)).expect("parses");
            let graph = PlanGraph::build(check::bind(valid, site).expect("binds"));
            black_box(drplan::render::preview_json(&graph).expect("renders"))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
