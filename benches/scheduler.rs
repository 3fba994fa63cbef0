//! Scheduler overhead: a 1,000-step DAG (10 chains of 100) of no-op steps, journaled to a
//! real fsync'd run journal in a temp dir.
//!
//! `cargo bench --bench scheduler`. Two runners: a no-op double (the engine and the journal
//! alone) and the real action runner with `sleep: 0ms` steps (plus parameter rendering and
//! dispatch). Divide by 1,000 for the per-step cost.

use criterion::{Criterion, criterion_group, criterion_main};
use drplan::actions::{ActionRunner, Approvals};
use drplan::diag::SourceFile;
use drplan::exec::{Executor, Options, RunState, Secrets, Shared};
use drplan::graph::PlanGraph;
use drplan::journal::{FileRunStore, RunId, RunStore};
use drplan::load::Document;
use drplan::step::{Call, StepFailure, StepRunner};
use drplan::transport::CommandIdentity;
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::Arc;

struct Noop;

impl StepRunner for Noop {
    async fn call(&self, _: Call) -> Result<Value, StepFailure> {
        Ok(json!({}))
    }

    // No commands run, so none is ever left running.
    async fn processes(&self, _: &str, _: &CommandIdentity) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }

    async fn signal(&self, _: &str, _: &CommandIdentity, _: &str) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }
}

fn graph() -> PlanGraph {
    let mut plan = String::from("version: 1\nname: thousand\nroles: [a]\nsteps:\n");
    for c in 0..10 {
        for i in 0..100 {
            let _ = writeln!(
                plan,
                "  - id: s{c}_{i}\n    on: a\n    action: sleep\n    with: {{ duration: 0ms }}"
            );
            if i > 0 {
                let _ = writeln!(plan, "    needs: [s{c}_{}]", i - 1);
            }
        }
    }
    let site = "version: 1\nsite: bench\nhosts:\n  a: { address: 127.0.0.1, transport: local }\n";
    let p = Document::parse(SourceFile::new("p.yaml", plan)).expect("plan parses");
    let s = Document::parse(SourceFile::new("s.yaml", site)).expect("site parses");
    PlanGraph::build(drplan::check::bind(drplan::check::plan(p).expect("valid"), s).expect("binds"))
}

fn run<R: StepRunner>(rt: &tokio::runtime::Runtime, graph: &PlanGraph, runner: R) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileRunStore::new(dir.path());
    let id = RunId::generate().expect("run id");
    let run = store.create_run(&id, b"{}").expect("run");
    let shared = Shared::new(
        graph.clone(),
        runner,
        Secrets::default(),
        Arc::new(drplan::events::Silent),
    );
    let mut ex = Executor::new(shared, run.journal, RunState::default());
    ex.start(id.as_str(), "plan", "site", &Default::default())
        .expect("journal works");
    let opts = Options {
        parallel: 8,
        ..Options::default()
    };
    let ending = rt.block_on(ex.forward(&opts)).expect("journal works");
    assert_eq!(ending, drplan::exec::Ending::Succeeded);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let graph = graph();
    let mut g = c.benchmark_group("1000-steps");
    g.sample_size(10);
    g.bench_function("engine+journal (no-op runner)", |b| {
        b.iter(|| run(&rt, &graph, Noop));
    });
    g.bench_function("engine+journal+actions (sleep 0ms)", |b| {
        b.iter(|| {
            let control = tempfile::tempdir().expect("tempdir");
            let approvals = Approvals::new(Vec::new(), false);
            let runner =
                ActionRunner::new(&graph.bound, control.path(), approvals, Default::default());
            run(&rt, &graph, runner);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
