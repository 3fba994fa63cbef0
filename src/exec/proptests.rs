//! The executor's promises as a property: random DAGs (up to 30 steps; some idempotent,
//! some with rollback hooks, some points of no return, some skipped by `when`), random
//! failures, random crashes and random operator decisions, driven in-process against the
//! `Fake` host and a `MemJournal` that "kills" a process after its N-th append.
//!
//! The model is a state machine over processes: every transition is one `drplan`
//! command (`apply`, `resume`, `rollback`) run by a new `Executor` built from the replayed
//! journal, as the CLI builds it, possibly crashed part-way; the operator reads the run's
//! state (and, when asked about a step left in doubt, the host) and picks the next command.
//! After the run ends, the invariants are checked on what the host saw and on the journal:
//!
//! 1. no step starts before every step it needs succeeded (or was skipped);
//! 2. a non-idempotent step's command takes effect at most once, plus once per `--retry`
//!    the operator gave it; a non-idempotent rollback hook at most once;
//! 3. rollback never undoes a step that a point of no return (which ran) depends on, and
//!    undoes dependants before what they depend on;
//! 4. a run rolled back to the end has undone every step that ran and has a hook;
//! 5. with an operator who answers from the host, the run ends as the same run without
//!    crashes ends (same status, same effects on the host, same point where rollback
//!    stopped). With parallel steps *and* failures, what else was in flight when a step
//!    failed depends on timing, so 5 is checked when the run is sequential or nothing
//!    fails. A known gap narrows "sequential" further: a step made ready by a `when` skip
//!    waits for the next ready scan, so which step a sequential run starts next (and so
//!    what ran before a failure) depends on where it was resumed
//!    (`tests::a_resumed_sequential_run_starts_steps_in_the_same_order`, ignored); 5 is
//!    not checked for sequential runs with both a `when` skip and a failure.
//!
//! `DRPLAN_PROPTEST_CASES` sets the number of cases (default 256); the test prints how many
//! ran, how many processes, crashes and operator decisions they made, and how long it took.

use super::record::{Decision, Record};
use super::tests::doubles::{CrashAt, Fake, MemJournal, Seen, graph};
use super::*;
use crate::events::RunStatus;
use crate::step::Outcome;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::AtomicUsize;

#[derive(Debug, Clone)]
struct StepSpec {
    needs: Vec<usize>,
    idempotent: bool,
    /// `Some(idempotent)`: the step has a rollback hook.
    hook: Option<bool>,
    ponr: bool,
    when_false: bool,
    /// Its command fails until the operator fixes it (at a pause, before `resume`).
    fails: bool,
    /// Its hook fails until the operator fixes it (at a paused rollback).
    hook_fails: bool,
}

/// How the operator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// Looks at the host: `--skip` what ran, `--retry` what did not; assume done what ran.
    Truthful,
    /// As `Truthful`, but asked about steps in doubt, rolls the run back instead.
    RollsBack,
    /// Flips coins.
    Random,
}

#[derive(Debug, Clone)]
struct Case {
    steps: Vec<StepSpec>,
    parallel: usize,
    on_failure: OnFailure,
    /// Process k crashes as `crashes[k]` says; processes past the list run to their end.
    crashes: Vec<Option<CrashAt>>,
    operator: Operator,
    /// At a pause on step i: roll back (true) or fix it and resume (false).
    rollback_at_pause: Vec<bool>,
    coins: Vec<bool>,
}

fn step_spec(i: usize) -> impl Strategy<Value = StepSpec> {
    let needs = proptest::collection::vec(any::<prop::sample::Index>(), 0..=3);
    (
        needs,
        prop::bool::weighted(0.4),
        prop::option::weighted(0.6, any::<bool>()),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.07),
        prop::bool::weighted(0.07),
    )
        .prop_map(
            move |(needs, idempotent, hook, ponr, when_false, fails, hook_fails)| {
                let mut needs: Vec<usize> = if i == 0 {
                    Vec::new()
                } else {
                    needs.iter().map(|x| x.index(i)).collect()
                };
                needs.sort_unstable();
                needs.dedup();
                StepSpec {
                    needs,
                    idempotent,
                    hook,
                    ponr,
                    when_false,
                    fails,
                    hook_fails: hook_fails && hook.is_some(),
                }
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=30).prop_flat_map(|n| {
        let steps: Vec<_> = (0..n).map(step_spec).collect();
        // Early appends more often: small runs have few records.
        let crash = prop::option::weighted(0.9, (prop_oneof![1u64..=12, 1u64..=60], any::<bool>()))
            .prop_map(|c| c.map(|(at, torn)| CrashAt { at, torn }));
        (
            steps,
            prop_oneof![Just(1usize), 2usize..=4],
            prop_oneof![Just(OnFailure::Pause), Just(OnFailure::Rollback)],
            proptest::collection::vec(crash, 0..=6),
            prop_oneof![
                3 => Just(Operator::Truthful),
                1 => Just(Operator::RollsBack),
                1 => Just(Operator::Random)
            ],
            proptest::collection::vec(any::<bool>(), n),
            proptest::collection::vec(any::<bool>(), 16),
        )
            .prop_map(
                |(steps, parallel, on_failure, crashes, operator, rollback_at_pause, coins)| Case {
                    steps,
                    parallel,
                    on_failure,
                    crashes,
                    operator,
                    rollback_at_pause,
                    coins,
                },
            )
    })
}

fn id(i: usize) -> String {
    format!("s{i}")
}

fn undo(i: usize) -> String {
    format!("undo-s{i}")
}

/// The plan's YAML: a non-idempotent step runs `exec`, an idempotent one `file.touch`;
/// hooks likewise (`exec` or `file.remove`), so the catalogue says which is which.
fn plan_text(c: &Case) -> String {
    let mut t = String::from(
        "version: 1\nname: t\nroles: [a, b]\npreconditions:\n  - { name: probe, on: b, check: file.stat, with: { path: probe }, expect: result.exists }\nsteps:\n",
    );
    for (i, s) in c.steps.iter().enumerate() {
        let _ = writeln!(t, "  - id: {}\n    on: a", id(i));
        if s.idempotent {
            let _ = writeln!(t, "    action: file.touch\n    with: {{ path: {} }}", id(i));
        } else {
            let _ = writeln!(t, "    action: exec\n    with: {{ argv: [{}] }}", id(i));
        }
        if !s.needs.is_empty() {
            let needs: Vec<String> = s.needs.iter().map(|&n| id(n)).collect();
            let _ = writeln!(t, "    needs: [{}]", needs.join(", "));
        }
        match s.hook {
            Some(true) => {
                let _ = writeln!(
                    t,
                    "    rollback: {{ action: file.remove, with: {{ path: {} }} }}",
                    undo(i)
                );
            }
            Some(false) => {
                let _ = writeln!(
                    t,
                    "    rollback: {{ action: exec, with: {{ argv: [{}] }} }}",
                    undo(i)
                );
            }
            None => {}
        }
        if s.ponr {
            t.push_str("    point_of_no_return: true\n");
        }
        if s.when_false {
            t.push_str("    when: \"false\"\n");
        }
    }
    t
}

enum Command {
    Apply,
    Resume(Options),
    Rollback(RollbackOptions),
}

/// One run driven to its end by the operator, through crashes.
struct Drive<'a> {
    case: &'a Case,
    graph: crate::graph::PlanGraph,
    journal: MemJournal,
    fake: Arc<Fake>,
    processes: usize,
    crashes: usize,
    decisions: usize,
    coin: usize,
}

/// Where a run ended, as an operator would compare two runs.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    status: RunStatus,
    /// Per step: how often its command took effect (an idempotent one at most once).
    applied: BTreeMap<String, usize>,
    /// Per step: how often its hook took effect (an idempotent one at most once).
    undone: BTreeMap<String, usize>,
    rollback_stopped_at: Option<String>,
}

impl<'a> Drive<'a> {
    fn new(case: &'a Case) -> Drive<'a> {
        let mut fail: HashSet<String> = HashSet::new();
        for (i, s) in case.steps.iter().enumerate() {
            if s.fails {
                fail.insert(id(i));
            }
            if s.hook_fails {
                fail.insert(undo(i));
            }
        }
        let fake = Fake {
            fail: fail.into(),
            ..Fake::default()
        };
        Drive {
            case,
            graph: graph(&plan_text(case)),
            journal: MemJournal::default(),
            fake: Arc::new(fake),
            processes: 0,
            crashes: 0,
            decisions: 0,
            coin: 0,
        }
    }

    fn coin(&mut self) -> bool {
        let c = &self.case.coins;
        self.coin += 1;
        c[self.coin % c.len()]
    }

    fn options(&self) -> Options {
        Options {
            parallel: self.case.parallel,
            on_failure: self.case.on_failure,
            ..Options::default()
        }
    }

    fn state(&self) -> RunState {
        RunState::replay(&self.journal.records(), *self.journal.torn.lock().unwrap())
            .expect("the journal replays")
    }

    /// Did step `i`'s command take effect on the host (what the operator checks)?
    fn ran(&self, i: usize) -> bool {
        self.fake.succeeded(&id(i)) > 0
    }

    /// One process: a new executor over the replayed journal. `None`: it crashed.
    async fn process(&mut self, cmd: &Command, with_crashes: bool) -> Option<Ending> {
        let crash = if with_crashes {
            self.case.crashes.get(self.processes).copied().flatten()
        } else {
            None
        };
        self.processes += 1;
        let journal = self.journal.process(crash);
        let shared = Shared::new(
            self.graph.clone(),
            Arc::clone(&self.fake),
            Secrets::default(),
            Arc::new(crate::events::Silent),
        );
        let mut ex = Executor::new(shared, Box::new(journal), self.state());
        let result = async {
            match cmd {
                Command::Apply => {
                    ex.start("t", "p", "s", &Default::default())?;
                    let held = ex.preconditions().await?;
                    assert!(matches!(held, Preconditions::Held), "{held:?}");
                    ex.forward(&self.options()).await
                }
                Command::Resume(opts) => {
                    if !ex.state.preconditions_passed {
                        let held = ex.preconditions().await?;
                        assert!(matches!(held, Preconditions::Held), "{held:?}");
                    }
                    ex.forward(opts).await
                }
                Command::Rollback(opts) => ex.rollback(opts).await,
            }
        }
        .await;
        match result {
            Ok(ending) => Some(ending),
            Err(_) => {
                self.crashes += 1;
                None
            }
        }
    }

    /// Drive the run to its end; panics if it does not get there.
    async fn run(&mut self, with_crashes: bool) {
        let mut next: Option<Command> = None;
        for _ in 0..300 {
            let state = self.state();
            let cmd = match next.take() {
                Some(c) => c,
                None if !state.started => Command::Apply,
                None => match state.status() {
                    RunStatus::Succeeded | RunStatus::RolledBack => return,
                    RunStatus::RollingBack => Command::Rollback(RollbackOptions::default()),
                    RunStatus::Paused => self.at_pause(&state),
                    RunStatus::Incomplete | RunStatus::Interrupted => {
                        Command::Resume(self.options())
                    }
                    RunStatus::Refused => panic!("the precondition holds; nothing refuses"),
                },
            };
            let Some(ending) = self.process(&cmd, with_crashes).await else {
                continue;
            };
            next = match ending {
                Ending::NeedsDecision { in_doubt } => Some(self.decide_forward(&in_doubt)),
                Ending::RollbackNeedsDecision { in_doubt } => Some(self.decide_rollback(&in_doubt)),
                Ending::RollbackPaused { step } => {
                    let i = graph_index(&step);
                    self.fake.fail.lock().unwrap().remove(&undo(i));
                    Some(Command::Rollback(RollbackOptions::default()))
                }
                _ => None,
            };
        }
        panic!("the run did not end in 300 commands");
    }

    /// A paused run: roll back, or fix the failed steps and resume.
    fn at_pause(&mut self, state: &RunState) -> Command {
        let failed: Vec<usize> = (0..self.case.steps.len())
            .filter(|&i| matches!(state.step(&id(i)), StepState::Failed { .. }))
            .collect();
        if failed.iter().any(|&i| self.case.rollback_at_pause[i]) {
            return Command::Rollback(RollbackOptions::default());
        }
        for i in failed {
            self.fake.fail.lock().unwrap().remove(&id(i));
        }
        Command::Resume(self.options())
    }

    fn decide_forward(&mut self, in_doubt: &[String]) -> Command {
        if self.case.operator == Operator::RollsBack
            || (self.case.operator == Operator::Random && self.coin())
        {
            return Command::Rollback(RollbackOptions::default());
        }
        let mut opts = self.options();
        for s in in_doubt {
            self.decisions += 1;
            let ran = match self.case.operator {
                Operator::Random => self.coin(),
                _ => self.ran(graph_index(s)),
            };
            if ran {
                opts.skip.push(s.clone());
            } else {
                opts.retry.push(s.clone());
            }
        }
        Command::Resume(opts)
    }

    fn decide_rollback(&mut self, in_doubt: &[String]) -> Command {
        let mut opts = RollbackOptions::default();
        let hook_open = self.state().compensation_open;
        for s in in_doubt {
            self.decisions += 1;
            let ran = match self.case.operator {
                Operator::Random => self.coin(),
                // A rollback hook left in doubt: did the hook take effect on the host?
                _ if hook_open.as_ref() == Some(s) => {
                    self.fake.succeeded(&undo(graph_index(s))) > 0
                }
                _ => self.ran(graph_index(s)),
            };
            if ran {
                opts.assume_done.push(s.clone());
            } else {
                opts.assume_not_run.push(s.clone());
            }
        }
        Command::Rollback(opts)
    }

    fn end_state(&self) -> EndState {
        let state = self.state();
        let net = |tag: &str, idempotent: bool| {
            let n = self.fake.succeeded(tag);
            if idempotent { n.min(1) } else { n }
        };
        let mut applied = BTreeMap::new();
        let mut undone = BTreeMap::new();
        for (i, s) in self.case.steps.iter().enumerate() {
            applied.insert(id(i), net(&id(i), s.idempotent));
            if let Some(idem) = s.hook {
                undone.insert(
                    id(i),
                    net(&undo(i), idem || TOLERATE_COMPENSATIONS_IN_DOUBT),
                );
            }
        }
        EndState {
            status: state.status(),
            applied,
            undone,
            rollback_stopped_at: state.rollback_stopped_at,
        }
    }
}

fn graph_index(step: &str) -> usize {
    step.trim_start_matches("s")
        .parse()
        .expect("step ids are s<N>")
}

/// Every step that `i` needs, directly or not.
fn ancestors(c: &Case, i: usize) -> HashSet<usize> {
    let mut found = HashSet::new();
    let mut todo = c.steps[i].needs.clone();
    while let Some(n) = todo.pop() {
        if found.insert(n) {
            todo.extend(&c.steps[n].needs);
        }
    }
    found
}

/// The tag's step and whether it is a hook (`None` for the precondition's check).
fn parse_tag(tag: &str) -> Option<(usize, bool)> {
    if let Some(s) = tag.strip_prefix("undo-") {
        return Some((graph_index(s), true));
    }
    tag.starts_with('s').then(|| (graph_index(tag), false))
}

fn check(c: &Case, d: &Drive) -> Result<(), TestCaseError> {
    let records: Vec<Record> = d
        .journal
        .records()
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("records parse"))
        .collect();
    let seen = d.fake.seen();
    let truthful = c.operator != Operator::Random;
    let op_done: HashSet<usize> = records
        .iter()
        .filter_map(|r| match r {
            Record::OperatorDecision {
                step,
                decision: Decision::Skip | Decision::AssumeDone,
                ..
            } => Some(graph_index(step)),
            _ => None,
        })
        .collect();

    // 1. Needs first, on the host and in the journal.
    let mut ended_ok: HashSet<usize> = HashSet::new();
    for ev in &seen {
        match ev {
            Seen::Start(tag) => {
                if let Some((i, false)) = parse_tag(tag) {
                    for &n in &c.steps[i].needs {
                        prop_assert!(
                            ended_ok.contains(&n) || c.steps[n].when_false || op_done.contains(&n),
                            "s{i} started on the host before s{n}, which it needs, succeeded"
                        );
                    }
                }
            }
            Seen::End { tag, ok: true } => {
                if let Some((i, false)) = parse_tag(tag) {
                    ended_ok.insert(i);
                }
            }
            Seen::End { .. } => {}
        }
    }
    let mut done: HashSet<usize> = HashSet::new();
    let mut succeeded: HashSet<usize> = HashSet::new();
    let mut rolling_back = false;
    for r in &records {
        match r {
            Record::StepStarted { step, .. } => {
                let i = graph_index(step);
                prop_assert!(!rolling_back, "{step} started after rollback began");
                for &n in &c.steps[i].needs {
                    prop_assert!(done.contains(&n), "{step} journaled as started before s{n}");
                }
            }
            Record::StepFinished { step, outcome, .. } => match outcome {
                Outcome::Succeeded { .. } => {
                    done.insert(graph_index(step));
                    succeeded.insert(graph_index(step));
                }
                Outcome::Skipped { .. } => {
                    done.insert(graph_index(step));
                }
                Outcome::Failed { .. } => {}
            },
            Record::OperatorDecision {
                step,
                decision: Decision::Skip,
                ..
            } => {
                done.insert(graph_index(step));
            }
            Record::RollbackStarted { .. } => rolling_back = true,
            _ => {}
        }
    }

    // 2. At most once, unless the operator said `--retry`.
    for (i, s) in c.steps.iter().enumerate() {
        let retries = records
            .iter()
            .filter(|r| matches!(r, Record::OperatorDecision { step, decision: Decision::Retry, .. } if *step == id(i)))
            .count();
        if !s.idempotent {
            let n = d.fake.succeeded(&id(i));
            prop_assert!(
                n <= 1 + retries,
                "s{i} (not idempotent) took effect {n} times with {retries} --retry"
            );
        }
        if s.hook == Some(false) {
            let n = d.fake.succeeded(&undo(i));
            let reopened = records
                .iter()
                .filter(|r| matches!(r, Record::CompensationStarted { step, .. } if *step == id(i)))
                .count()
                .saturating_sub(1);
            // An operator who flips coins may say a hook that ran never did: taken at his
            // word, it runs once more for each such answer.
            let denied = if truthful {
                0
            } else {
                records
                    .iter()
                    .filter(|r| matches!(r, Record::OperatorDecision { step, decision: Decision::AssumeNotRun, .. } if *step == id(i)))
                    .count()
            };
            let allowed = if TOLERATE_COMPENSATIONS_IN_DOUBT {
                1 + reopened + denied
            } else {
                1 + denied
            };
            prop_assert!(
                n <= allowed,
                "the hook of s{i} (not idempotent) took effect {n} times"
            );
            if n > 1 {
                TOLERATED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // 3. Rollback stops at a point of no return that ran, and goes in reverse DAG order.
    let mut applied: HashSet<usize> = HashSet::new();
    let mut undone: HashSet<usize> = HashSet::new();
    for ev in &seen {
        let Seen::End { tag, ok: true } = ev else {
            continue;
        };
        let Some((i, hook)) = parse_tag(tag) else {
            continue;
        };
        if !hook {
            applied.insert(i);
            continue;
        }
        for (p, ps) in c.steps.iter().enumerate() {
            // The host's truth; an operator who flips coins is taken at his word.
            let ran = op_done.contains(&p)
                || if truthful {
                    applied.contains(&p)
                } else {
                    succeeded.contains(&p)
                };
            if ps.ponr && ran {
                prop_assert!(
                    !ancestors(c, p).contains(&i),
                    "the hook of s{i} ran although s{p}, a point of no return that needs it, ran"
                );
            }
        }
        for (j, js) in c.steps.iter().enumerate() {
            if js.hook.is_none() || !ancestors(c, j).contains(&i) {
                continue;
            }
            let j_applied = applied.contains(&j) || (truthful && op_done.contains(&j));
            prop_assert!(
                !truthful || !j_applied || undone.contains(&j),
                "the hook of s{i} ran while s{j}, which needs it, was still in effect"
            );
        }
        undone.insert(i);
    }

    // 4. Rolled back to the end: everything that ran and has a hook is undone.
    let state = d.state();
    if truthful && state.status() == RunStatus::RolledBack && state.rollback_stopped_at.is_none() {
        for (i, s) in c.steps.iter().enumerate() {
            if s.hook.is_some() && d.fake.succeeded(&id(i)) > 0 {
                prop_assert!(
                    d.fake.succeeded(&undo(i)) > 0,
                    "the run is rolled back but s{i} ran and was never undone"
                );
            }
        }
    }
    Ok(())
}

/// A compensation a crash left in doubt is never run again without the operator's word
/// (`tests::a_compensation_left_in_doubt_is_not_run_again_blindly`). Set to true, the
/// property would tolerate one more run of a non-idempotent hook per reopened
/// compensation (and count them): the switch stays for bisecting a regression.
const TOLERATE_COMPENSATIONS_IN_DOUBT: bool = false;

static TOLERATED: AtomicUsize = AtomicUsize::new(0);
static CASES: AtomicUsize = AtomicUsize::new(0);
static PROCESSES: AtomicUsize = AtomicUsize::new(0);
static CRASHES: AtomicUsize = AtomicUsize::new(0);
static DECISIONS: AtomicUsize = AtomicUsize::new(0);
static COMPARED: AtomicUsize = AtomicUsize::new(0);

fn one_case(c: &Case) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut crashed = Drive::new(c);
    rt.block_on(crashed.run(true));
    check(c, &crashed)?;
    let failures = c.steps.iter().any(|s| s.fails || s.hook_fails);
    let when_skips = c.steps.iter().any(|s| s.when_false);
    let comparable =
        c.operator == Operator::Truthful && (!failures || (c.parallel == 1 && !when_skips));
    if comparable {
        let mut clean = Drive::new(c);
        rt.block_on(clean.run(false));
        check(c, &clean)?;
        prop_assert_eq!(
            crashed.end_state(),
            clean.end_state(),
            "the crashed run ended elsewhere than the uninterrupted one"
        );
        COMPARED.fetch_add(1, Ordering::Relaxed);
    }
    CASES.fetch_add(1, Ordering::Relaxed);
    PROCESSES.fetch_add(crashed.processes, Ordering::Relaxed);
    CRASHES.fetch_add(crashed.crashes, Ordering::Relaxed);
    DECISIONS.fetch_add(crashed.decisions, Ordering::Relaxed);
    Ok(())
}

#[test]
fn crashed_and_resumed_runs_keep_the_executors_promises() {
    let cases = std::env::var("DRPLAN_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |c| one_case(&c));
    println!(
        "proptest: {} cases passed ({} compared with an uninterrupted run), {} processes, {} crashes, {} operator decisions, {} hooks run twice by the known compensation-in-doubt gap, in {:.2}s",
        CASES.load(Ordering::Relaxed),
        COMPARED.load(Ordering::Relaxed),
        PROCESSES.load(Ordering::Relaxed),
        CRASHES.load(Ordering::Relaxed),
        DECISIONS.load(Ordering::Relaxed),
        TOLERATED.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A step for the fixed cases below: not idempotent, no hook, nothing fails.
fn plain(needs: Vec<usize>) -> StepSpec {
    StepSpec {
        needs,
        idempotent: false,
        hook: None,
        ponr: false,
        when_false: false,
        fails: false,
        hook_fails: false,
    }
}

/// A case the property found, run many times: timing decides which records a crash cuts.
fn again(steps: Vec<StepSpec>, parallel: usize, crashes: Vec<Option<CrashAt>>) {
    let n = steps.len();
    let c = Case {
        steps,
        parallel,
        on_failure: OnFailure::Pause,
        crashes,
        operator: Operator::RollsBack,
        rollback_at_pause: vec![false; n],
        coins: vec![false; 16],
    };
    for _ in 0..200 {
        one_case(&c).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A step left in doubt whose idempotent hook was started and cut off by a crash was never
/// undone by the next rollback: the walk skipped the hook left open, and its step was not
/// among the completed ones.
#[test]
fn a_hook_left_open_on_a_step_in_doubt_runs_again() {
    let hooked = StepSpec {
        hook: Some(true),
        ..plain(vec![0])
    };
    let crashes = vec![
        Some(CrashAt { at: 9, torn: true }),
        None,
        Some(CrashAt { at: 2, torn: false }),
    ];
    again(
        vec![plain(vec![]), plain(vec![]), plain(vec![0]), hooked],
        2,
        crashes,
    );
}

/// A resume journaled `retry` for an idempotent step left in doubt and crashed before the
/// step started again: the step counted as never run, so the rollback that followed skipped
/// its hook although the first run had done it.
#[test]
fn a_retried_step_stays_in_doubt_until_it_starts() {
    let mut steps: Vec<StepSpec> =
        vec![plain(vec![]), plain(vec![0]), plain(vec![0]), plain(vec![])];
    steps.push(StepSpec {
        idempotent: true,
        hook: Some(false),
        ..plain(vec![])
    });
    steps.extend((0..5).map(|_| plain(vec![])));
    let crashes = vec![
        Some(CrashAt { at: 9, torn: false }),
        Some(CrashAt { at: 2, torn: false }),
    ];
    again(steps, 2, crashes);
}
