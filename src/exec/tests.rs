//! Scheduling logic with a test double for the hosts: ordering, parallelism, failure,
//! rollback and resume decisions. End-to-end behaviour is proven on real hosts in `tests/`.

use super::record::{FailureKind, Record, StepFailure};
use super::*;
use crate::diag::SourceFile;
use crate::journal::{Journal, JournalError, Replay};
use crate::load::Document;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct MemJournal(Arc<Mutex<Vec<Value>>>);

impl Journal for MemJournal {
    fn append(&mut self, record: &Value) -> Result<(), JournalError> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }
    fn replay(&mut self) -> Result<Replay, JournalError> {
        Ok(Replay {
            records: self.0.lock().unwrap().clone(),
            torn_tail: false,
        })
    }
}

#[derive(Default)]
struct Fake {
    /// (action or check name with its `with.tag`, start, end)
    calls: Mutex<Vec<(String, Instant, Instant)>>,
    fail: HashSet<String>,
    delay_ms: u64,
}

impl StepRunner for Arc<Fake> {
    async fn call(&self, call: Call) -> Result<Value, StepFailure> {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        let tag = call
            .params
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or(&call.action)
            .to_string();
        self.calls
            .lock()
            .unwrap()
            .push((tag.clone(), start, Instant::now()));
        if self.fail.contains(&tag) {
            return Err(StepFailure {
                kind: FailureKind::Failed,
                message: format!("{tag} broke"),
                host: call.role,
                command: None,
                status: Some(1),
                stderr_tail: None,
            });
        }
        Ok(json!({ "tag": tag, "ok": true }))
    }

    // The double runs no commands, so none of them is ever left running.
    async fn processes(
        &self,
        _role: &str,
        _identity: &crate::transport::CommandIdentity,
    ) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }

    async fn signal(
        &self,
        _role: &str,
        _identity: &crate::transport::CommandIdentity,
        _signal: &str,
    ) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }
}

const SITE: &str = "version: 1\nsite: t\nhosts:\n  a: { address: 127.0.0.1, transport: local }\n  b: { address: 127.0.0.1, transport: local }\n";

fn graph(plan: &str) -> crate::graph::PlanGraph {
    let p = Document::parse(SourceFile::new("p.yaml", plan)).unwrap();
    let s = Document::parse(SourceFile::new("s.yaml", SITE)).unwrap();
    crate::graph::PlanGraph::build(crate::check::bind(crate::check::plan(p).unwrap(), s).unwrap())
}

fn step(id: &str, needs: &[&str], extra: &str) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    format!(
        "  - id: {id}\n    on: a\n    action: file.touch\n    with: {{ path: {id} }}\n{needs}{extra}"
    )
}

fn plan(steps: &[String]) -> String {
    format!(
        "version: 1\nname: t\nroles: [a, b]\nsteps:\n{}",
        steps.concat()
    )
}

fn executor(fake: Arc<Fake>, plan_text: &str, journal: MemJournal) -> Executor<Arc<Fake>> {
    let graph = graph(plan_text);
    let state = RunState::replay(&journal.0.lock().unwrap(), false).unwrap();
    let shared = Shared::new(
        graph,
        fake,
        Secrets::default(),
        Arc::new(crate::events::Silent),
    );
    let fresh = !state.started;
    let mut ex = Executor::new(shared, Box::new(journal), state);
    if fresh {
        ex.start("t", "p", "s").unwrap();
    }
    ex
}

fn opts() -> Options {
    Options {
        parallel: 4,
        ..Options::default()
    }
}

fn order(fake: &Fake) -> Vec<String> {
    fake.calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.0.clone())
        .collect()
}

#[tokio::test]
async fn independent_steps_overlap_and_dependants_wait() {
    let fake = Arc::new(Fake {
        delay_ms: 150,
        ..Fake::default()
    });
    let text = plan(&[
        step("x", &[], ""),
        step("y", &[], ""),
        step("z", &["x", "y"], ""),
    ]);
    let mut ex = executor(fake.clone(), &text, MemJournal::default());
    assert_eq!(ex.forward(&opts()).await.unwrap(), Ending::Succeeded);
    let calls = fake.calls.lock().unwrap().clone();
    let (x, y, z) = (
        &calls.iter().find(|c| c.0 == "x").unwrap(),
        &calls.iter().find(|c| c.0 == "y").unwrap(),
        &calls.iter().find(|c| c.0 == "z").unwrap(),
    );
    assert!(x.1 < y.2 && y.1 < x.2, "x and y ran at the same time");
    assert!(z.1 >= x.2 && z.1 >= y.2, "z started after both ended");
}

#[tokio::test]
async fn parallel_one_runs_one_at_a_time() {
    let fake = Arc::new(Fake {
        delay_ms: 50,
        ..Fake::default()
    });
    let text = plan(&[step("x", &[], ""), step("y", &[], "")]);
    let mut ex = executor(fake.clone(), &text, MemJournal::default());
    ex.forward(&Options {
        parallel: 1,
        ..Options::default()
    })
    .await
    .unwrap();
    let calls = fake.calls.lock().unwrap().clone();
    assert!(calls[1].1 >= calls[0].2);
}

#[tokio::test]
async fn a_failure_pauses_and_dependants_never_start() {
    let fake = Arc::new(Fake {
        fail: HashSet::from(["x".to_string()]),
        ..Fake::default()
    });
    let text = plan(&[step("x", &[], ""), step("after-x", &["x"], "")]);
    let journal = MemJournal::default();
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let end = ex.forward(&opts()).await.unwrap();
    assert_eq!(
        end,
        Ending::Paused {
            failed: vec!["x".into()],
            refused: false
        }
    );
    assert_eq!(order(&fake), vec!["x"]);
    assert_eq!(ex.state.status(), RunStatus::Paused);
}

#[tokio::test]
async fn rollback_runs_newest_first_and_stops_at_the_point_of_no_return() {
    let fake = Arc::new(Fake {
        fail: HashSet::from(["boom".to_string()]),
        ..Fake::default()
    });
    let rb =
        |p: &str| format!("    rollback: {{ action: file.remove, with: {{ path: undo-{p} }} }}\n");
    let text = plan(&[
        step("one", &[], &rb("one")),
        step(
            "ponr",
            &["one"],
            &format!("{}    point_of_no_return: true\n", rb("ponr")),
        ),
        step("two", &["ponr"], &rb("two")),
        step("three", &["two"], &rb("three")),
        step("boom", &["three"], ""),
    ]);
    let mut ex = executor(fake.clone(), &text, MemJournal::default());
    let end = ex
        .forward(&Options {
            on_failure: OnFailure::Rollback,
            ..opts()
        })
        .await
        .unwrap();
    assert_eq!(end, Ending::RolledBack);
    assert_eq!(
        order(&fake),
        vec![
            "one",
            "ponr",
            "two",
            "three",
            "boom",
            "undo-three",
            "undo-two"
        ]
    );
    assert_eq!(ex.state.rollback_stopped_at.as_deref(), Some("ponr"));
}

#[tokio::test]
async fn a_refusing_precondition_stops_the_step_before_it_runs() {
    let fake = Arc::new(Fake::default());
    let pre = "    preconditions:\n      - { name: never, on: b, check: file.stat, with: { path: probe }, expect: \"result.ok == false\" }\n";
    let text = plan(&[step("guarded", &[], pre)]);
    let mut ex = executor(fake.clone(), &text, MemJournal::default());
    let end = ex.forward(&opts()).await.unwrap();
    assert_eq!(
        end,
        Ending::Paused {
            failed: vec!["guarded".into()],
            refused: true
        }
    );
    assert_eq!(order(&fake), vec!["probe"], "only the check ran");
}

#[tokio::test]
async fn resume_reruns_idempotent_doubts_and_asks_about_the_others() {
    // A crash after `started` of a non-idempotent exec and of an idempotent touch.
    let text = plan(&[
        step("safe", &[], ""),
        "  - id: unsafe\n    on: a\n    action: exec\n    with: { argv: [\"true\"] }\n".to_string(),
    ]);
    let journal = MemJournal::default();
    for s in ["safe", "unsafe"] {
        let rec = serde_json::to_value(Record::StepStarted {
            step: s.into(),
            attempt: 1,
            at: "t".into(),
        })
        .unwrap();
        journal.0.lock().unwrap().push(rec);
    }
    let fake = Arc::new(Fake::default());
    let mut ex = executor(fake.clone(), &text, journal.clone());
    assert_eq!(
        ex.forward(&opts()).await.unwrap(),
        Ending::NeedsDecision {
            in_doubt: vec!["unsafe".into()]
        }
    );
    assert!(
        order(&fake).is_empty(),
        "nothing runs until the operator decides"
    );
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let end = ex
        .forward(&Options {
            skip: vec!["unsafe".into()],
            ..opts()
        })
        .await
        .unwrap();
    assert_eq!(end, Ending::Succeeded);
    assert_eq!(
        order(&fake),
        vec!["safe"],
        "the idempotent step ran again, the skipped one did not"
    );
}

#[tokio::test]
async fn when_false_skips_and_satisfies_dependants() {
    let fake = Arc::new(Fake::default());
    let text = plan(&[
        step("maybe", &[], "    when: \"false\"\n"),
        step("next", &["maybe"], ""),
    ]);
    let mut ex = executor(fake.clone(), &text, MemJournal::default());
    assert_eq!(ex.forward(&opts()).await.unwrap(), Ending::Succeeded);
    assert_eq!(order(&fake), vec!["next"]);
}
