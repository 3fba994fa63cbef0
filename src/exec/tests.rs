//! Scheduling logic with a test double for the hosts: ordering, parallelism, failure,
//! rollback and resume decisions. End-to-end behaviour is proven on real hosts in `tests/`.

pub(super) mod doubles;

use super::record::Record;
use super::*;
use crate::events::RunStatus;
use doubles::{Fake, MemJournal, graph};

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
    let state = RunState::replay(&journal.records(), false).unwrap();
    let shared = Shared::new(
        graph,
        fake,
        Secrets::default(),
        Arc::new(crate::events::Silent),
    );
    let fresh = !state.started;
    let mut ex = Executor::new(shared, Box::new(journal), state);
    if fresh {
        ex.start("t", "p", "s", &Default::default()).unwrap();
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
    fake.order()
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
    let fake = Arc::new(Fake::failing(&["x"]));
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

/// A journal that fails mid-run (a store that stopped answering): nothing new starts, and
/// the step still running ends before `forward` returns; its end is not recorded, so a
/// resume finds it in doubt.
#[tokio::test]
async fn a_journal_that_fails_mid_run_stops_once_the_running_steps_end() {
    let fake = Arc::new(Fake {
        delay_ms: 10,
        delay_for: [("slow".to_string(), 300)].into(),
        ..Fake::default()
    });
    let text = plan(&[
        step("quick", &[], ""),
        step("slow", &[], ""),
        step("after", &["quick"], ""),
    ]);
    let journal = MemJournal::default();
    // run_started, step_started quick and slow; quick's end is the write that fails.
    let crash = Some(doubles::CrashAt { at: 4, torn: true });
    let mut ex = executor(fake.clone(), &text, journal.process(crash));
    assert!(ex.forward(&opts()).await.is_err());
    let seen = fake.seen();
    assert!(
        seen.contains(&doubles::Seen::End {
            tag: "slow".into(),
            ok: true
        }),
        "the running step ended first: {seen:?}"
    );
    assert!(
        !seen.contains(&doubles::Seen::Start("after".into())),
        "nothing started after the failure: {seen:?}"
    );
    let state = RunState::replay(&journal.records(), false).unwrap();
    for s in ["quick", "slow"] {
        assert!(
            matches!(state.step(s), StepState::InDoubt { .. }),
            "{s}: {:?}",
            state.step(s)
        );
    }
}

#[tokio::test]
async fn rollback_runs_newest_first_and_stops_at_the_point_of_no_return() {
    let fake = Arc::new(Fake::failing(&["boom"]));
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

/// The runner names a host its own way (the double: the bare role); every failure the
/// executor journals — a step's, a check's, a rollback hook's — names it `role (address)`.
#[tokio::test]
async fn every_journaled_failure_names_its_host_by_role() {
    let fake = Arc::new(Fake::failing(&["boom", "probe", "undo-one"]));
    let check = "    preconditions:\n      - { name: probe, on: b, check: file.stat, with: { path: probe } }\n";
    let text = plan(&[
        step(
            "one",
            &[],
            "    rollback: { action: file.remove, with: { path: undo-one } }\n",
        ),
        step("boom", &["one"], ""),
        step("checked", &["one"], check),
    ]);
    let journal = MemJournal::default();
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let rollback = Options {
        on_failure: OnFailure::Rollback,
        ..opts()
    };
    let end = ex.forward(&rollback).await.unwrap();
    assert_eq!(end, Ending::RollbackPaused { step: "one".into() });
    let hosts: Vec<(String, String)> = journal
        .records()
        .iter()
        .filter_map(|r| {
            let error = r.get("error").filter(|e| e.is_object())?;
            Some((
                r["step"].as_str()?.to_owned(),
                error["host"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let (a, b) = (ex.shared.host_label("a"), ex.shared.host_label("b"));
    assert_ne!(a, "a", "the label is not the bare role");
    let want = [("boom", &a), ("checked", &b), ("one", &a)];
    for (step, host) in want {
        assert!(
            hosts.iter().any(|(s, h)| s == step && h == host),
            "{step} on {host}: {hosts:?}"
        );
    }
    assert_eq!(hosts.len(), want.len(), "{hosts:?}");
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
            at: Default::default(),
        })
        .unwrap();
        journal.push(rec);
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

/// `exec` steps (not idempotent) with `exec` hooks (not idempotent either).
fn exec_step(id: &str, needs: &[&str], extra: &str) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    format!(
        "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [{id}] }}\n    rollback: {{ action: exec, with: {{ argv: [undo-{id}] }} }}\n{needs}{extra}"
    )
}

/// A crash while `step_finished` of a step that ran was being written; the operator
/// looks at the host, sees that it ran and says `--skip`; a later step fails; rollback.
async fn skipped_after_a_crash_then_rolled_back(
    text: &str,
    torn_at: u64,
) -> (Arc<Fake>, Ending, RunState) {
    let fake = Arc::new(Fake::failing(&["boom"]));
    let journal = MemJournal::default();
    let sequential = Options {
        parallel: 1,
        ..Options::default()
    };
    let crash = Some(doubles::CrashAt {
        at: torn_at,
        torn: true,
    });
    let mut ex = executor(fake.clone(), text, journal.process(crash));
    assert!(
        ex.forward(&sequential).await.is_err(),
        "the process crashed"
    );
    let mut ex = executor(fake.clone(), text, journal.clone());
    let Ending::NeedsDecision { in_doubt } = ex.forward(&sequential).await.unwrap() else {
        panic!("the step that ran is in doubt");
    };
    assert_eq!(
        fake.succeeded(&in_doubt[0]),
        1,
        "it ran: the operator skips it"
    );
    let mut ex = executor(fake.clone(), text, journal.clone());
    let skip = Options {
        skip: in_doubt,
        ..sequential
    };
    assert!(matches!(
        ex.forward(&skip).await.unwrap(),
        Ending::Paused { .. }
    ));
    let mut ex = executor(fake.clone(), text, journal.clone());
    let end = ex.rollback(&RollbackOptions::default()).await.unwrap();
    (fake, end, ex.state.clone())
}

#[tokio::test]
async fn a_step_the_operator_marked_done_is_undone_by_rollback() {
    // run_started, x started, x finished (torn: x ran, the journal does not say so).
    let text = plan(&[exec_step("x", &[], ""), step("boom", &["x"], "")]);
    let (fake, end, _) = skipped_after_a_crash_then_rolled_back(&text, 3).await;
    assert_eq!(end, Ending::RolledBack);
    assert_eq!(
        fake.succeeded("undo-x"),
        1,
        "x ran (the operator said so with --skip): rolling back must undo it, as it would had the run not crashed"
    );
}

#[tokio::test]
async fn rollback_stops_at_a_point_of_no_return_the_operator_marked_done() {
    // run_started, one started, one finished, ponr started, ponr finished (torn).
    let text = plan(&[
        exec_step("one", &[], ""),
        exec_step("ponr", &["one"], "    point_of_no_return: true\n"),
        step("boom", &["ponr"], ""),
    ]);
    let (fake, end, state) = skipped_after_a_crash_then_rolled_back(&text, 5).await;
    assert_eq!(end, Ending::RolledBack);
    assert_eq!(state.rollback_stopped_at.as_deref(), Some("ponr"));
    assert_eq!(
        fake.succeeded("undo-one"),
        0,
        "rollback crossed a point of no return that ran (the operator said so with --skip)"
    );
}

#[tokio::test]
async fn a_compensation_left_in_doubt_is_not_run_again_blindly() {
    let fake = Arc::new(Fake::failing(&["boom"]));
    let text = plan(&[exec_step("x", &[], ""), step("boom", &["x"], "")]);
    let journal = MemJournal::default();
    let mut ex = executor(fake.clone(), &text, journal.clone());
    assert!(matches!(
        ex.forward(&opts()).await.unwrap(),
        Ending::Paused { .. }
    ));
    // rollback_started, compensation_started, compensation_finished (torn): the hook ran.
    let crash = Some(doubles::CrashAt { at: 3, torn: true });
    let mut ex = executor(fake.clone(), &text, journal.process(crash));
    assert!(ex.rollback(&RollbackOptions::default()).await.is_err());
    assert_eq!(fake.succeeded("undo-x"), 1);
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let end = ex.rollback(&RollbackOptions::default()).await.unwrap();
    assert_eq!(
        fake.succeeded("undo-x"),
        1,
        "a hook that is not idempotent ran twice without the operator's word"
    );
    assert_eq!(
        end,
        Ending::RollbackNeedsDecision {
            in_doubt: vec!["x".into()]
        }
    );
}

#[tokio::test]
async fn a_resume_that_waits_for_a_decision_journals_nothing() {
    // A crash left both in doubt; the idempotent one may well have run.
    let text = plan(&[
        step(
            "safe",
            &[],
            "    rollback: { action: exec, with: { argv: [undo-safe] } }\n",
        ),
        "  - id: unsafe\n    on: a\n    action: exec\n    with: { argv: [unsafe] }\n".to_string(),
    ]);
    let journal = MemJournal::default();
    let fake = Arc::new(Fake::default());
    drop(executor(fake.clone(), &text, journal.clone()));
    for s in ["safe", "unsafe"] {
        let rec = serde_json::to_value(Record::StepStarted {
            step: s.into(),
            attempt: 1,
            at: Default::default(),
        })
        .unwrap();
        journal.push(rec);
    }
    let before = journal.records().len();
    let mut ex = executor(fake.clone(), &text, journal.clone());
    assert_eq!(
        ex.forward(&opts()).await.unwrap(),
        Ending::NeedsDecision {
            in_doubt: vec!["unsafe".into()]
        }
    );
    assert_eq!(
        journal.records().len(),
        before,
        "a resume that changed nothing journals nothing"
    );
    // The operator rolls back instead: `safe` is still in doubt, and its hook is not
    // idempotent, so rollback asks rather than forgetting that it may have run.
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let end = ex
        .rollback(&RollbackOptions {
            assume_not_run: vec!["unsafe".into()],
            ..RollbackOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(
        end,
        Ending::RollbackNeedsDecision {
            in_doubt: vec!["safe".into()]
        }
    );
}

#[tokio::test]
async fn a_resumed_sequential_run_starts_steps_in_the_same_order() {
    let text = plan(&[
        step("first", &[], ""),
        step("maybe", &[], "    when: \"false\"\n"),
        step("after-maybe", &["maybe"], ""),
        exec_step("boom", &[], ""),
    ]);
    let sequential = Options {
        parallel: 1,
        ..Options::default()
    };
    let clean = Arc::new(Fake::failing(&["boom"]));
    let mut ex = executor(clean.clone(), &text, MemJournal::default());
    ex.forward(&sequential).await.unwrap();
    // Killed right after `boom` started (run_started, first ×2, maybe, boom started).
    let fake = Arc::new(Fake::failing(&["boom"]));
    let journal = MemJournal::default();
    let crash = Some(doubles::CrashAt { at: 5, torn: false });
    let mut ex = executor(fake.clone(), &text, journal.process(crash));
    assert!(ex.forward(&sequential).await.is_err());
    let mut ex = executor(fake.clone(), &text, journal.clone());
    let retry = Options {
        retry: vec!["boom".into()],
        ..sequential
    };
    ex.forward(&retry).await.unwrap();
    assert_eq!(fake.order(), clean.order());
}
