//! The crash matrix: `drplan` is killed with SIGKILL right after each journal record it
//! appends (`DRPLAN_CRASH_AFTER_RECORD`, counted per process) — in `apply`, in a `resume`,
//! and in a `rollback` — then driven on by an operator until the run is done. Every step
//! and every rollback hook bumps a counter file, so the test sees what ran on the host: each
//! non-idempotent command and hook must run exactly once, and the run must end as the same
//! run without crashes ends.
//!
//! The operator decides about steps left in doubt the way a person who checked the host
//! would: the counter was bumped → `resume --skip` / `rollback --assume-done`; it was
//! not → `resume --retry` / `rollback --assume-not-run`. Before answering, the operator
//! first runs the command without a decision once, which must refuse and change nothing.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// Steps that bump `count-ID` (exec: not idempotent) and whose hooks bump `undo-ID`.
const COUNTED: &[&str] = &["a", "p", "c", "d", "boom"];
const HOOKED: &[&str] = &["a", "p", "c", "d"];

/// `bump FILE`: a non-idempotent shell command, as argv for `exec`.
/// Bump a counter atomically (a command killed with drplan never leaves it half-written).
fn bump(file: &Path) -> String {
    format!(
        "[sh, -c, 'n=$(cat \"$1\" 2>/dev/null || echo 0); echo $((n+1)) > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"', _, \"{}\"]",
        file.display()
    )
}

/// A plan-level precondition on a file that exists, then
/// a → p (point of no return) → (c, d) → boom → done,
/// where `boom` fails while the file `broken` exists and `done` is an idempotent write.
fn plan(dir: &Path) -> String {
    let step = |id: &str, needs: &str, extra: &str| {
        format!(
            "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: {} }}\n    rollback: {{ action: exec, with: {{ argv: {} }} }}\n{needs}{extra}",
            bump(&dir.join(format!("count-{id}"))),
            bump(&dir.join(format!("undo-{id}")))
        )
    };
    format!(
        "version: 1\nname: crash\nroles: [a]\npreconditions:\n  - {{ name: the flag exists, on: a, check: file.stat, with: {{ path: \"{flag}\" }}, expect: result.exists }}\nsteps:\n{}{}{}{}  - id: boom\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'test ! -e \"$2\" || exit 1; n=$(cat \"$1\" 2>/dev/null || echo 0); echo $((n+1)) > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"', _, \"{count}\", \"{broken}\"] }}\n    needs: [c, d]\n  - id: done\n    on: a\n    action: file.write\n    with: {{ path: \"{done}\", content: \"finished\\n\" }}\n    needs: [boom]\n",
        step("a", "", ""),
        step("p", "    needs: [a]\n", "    point_of_no_return: true\n"),
        step("c", "    needs: [p]\n", ""),
        step("d", "    needs: [p]\n", ""),
        flag = dir.join("flag").display(),
        count = dir.join("count-boom").display(),
        broken = dir.join("broken").display(),
        done = dir.join("done").display(),
    )
}

/// A site and a plan in a temp dir; `broken`: `boom` fails (the run pauses).
struct Lab {
    dir: tempfile::TempDir,
}

/// What the operator wants of the run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Goal {
    /// `resume` until it succeeded.
    Succeeded,
    /// `rollback` until it is rolled back.
    RolledBack,
}

impl Lab {
    fn new(broken: bool) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::write(p.join("plan.yaml"), plan(p)).unwrap();
        let site = format!(
            "version: 1\nsite: crash-{}\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n",
            std::process::id()
        );
        fs::write(p.join("site.yaml"), site).unwrap();
        fs::write(p.join("flag"), "").unwrap();
        if broken {
            fs::write(p.join("broken"), "").unwrap();
        }
        Lab { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn drplan(&self, crash_after: Option<usize>) -> Command {
        let mut c = common::drplan();
        c.arg("--state-dir")
            .arg(self.path().join("state"))
            .arg("-q");
        if let Some(n) = crash_after {
            c.env("DRPLAN_CRASH_AFTER_RECORD", n.to_string());
        }
        Command::from_std(c)
    }

    fn apply(&self, crash_after: Option<usize>) -> std::process::Output {
        self.drplan(crash_after)
            .args(["apply", "--yes", "--parallel", "1"])
            .arg(self.path().join("plan.yaml"))
            .arg("--site")
            .arg(self.path().join("site.yaml"))
            .output()
            .unwrap()
    }

    fn run_id(&self) -> String {
        let mut runs = fs::read_dir(self.path().join("state/runs")).unwrap();
        let run = runs.next().unwrap().unwrap().file_name();
        assert!(runs.next().is_none(), "one run");
        run.to_string_lossy().into_owned()
    }

    fn journal(&self) -> String {
        let journal = self
            .path()
            .join(format!("state/runs/{}/journal.jsonl", self.run_id()));
        fs::read_to_string(journal).unwrap()
    }

    fn journal_len(&self) -> usize {
        self.journal().lines().count()
    }

    /// Records that say which command a step or hook started (one per command run).
    fn commands_started(&self) -> usize {
        self.journal()
            .matches("\"kind\":\"command_started\"")
            .count()
    }

    fn status(&self) -> Value {
        let out = self
            .drplan(None)
            .args(["status", &self.run_id(), "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn count(&self, name: &str) -> u32 {
        fs::read_to_string(self.path().join(name))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// Every counter and the `done` file: what the host holds.
    fn host(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        for e in fs::read_dir(self.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let counter = name.starts_with("count-") || name.starts_with("undo-");
            if (counter && !name.ends_with(".tmp")) || name == "done" {
                let text = fs::read_to_string(self.path().join(&name)).unwrap();
                files.insert(name, text);
            }
        }
        files
    }

    /// Drive the run to `goal` (the last command exits 0), crashing the first command
    /// after its `crash_after`-th record; returns how many commands it took. The operator
    /// reads `drplan status` after a crash, to find the steps left in doubt.
    fn drive(&self, goal: Goal, mut crash_after: Option<usize>, what: &str) -> usize {
        let run = self.run_id();
        let verb = match goal {
            Goal::Succeeded => "resume",
            Goal::RolledBack => "rollback",
        };
        let finished = match goal {
            Goal::Succeeded => "succeeded",
            Goal::RolledBack => "rolled_back",
        };
        let mut crashed = true;
        let mut commands = 0;
        loop {
            let status = if crashed { self.status() } else { Value::Null };
            if status["status"] == finished {
                // Killed after its last record: done all the same.
                return commands;
            }
            commands += 1;
            assert!(commands < 12, "{what}: {verb} does not converge");
            // Steps left in doubt whose command (resume) or hook (rollback) is not
            // idempotent: look at the host.
            let mut decisions: Vec<String> = Vec::new();
            let asked = if goal == Goal::Succeeded {
                COUNTED
            } else {
                HOOKED
            };
            for s in status["steps"].as_array().into_iter().flatten() {
                let id = s["step"].as_str().unwrap();
                // A rollback hook left in doubt: did the hook itself take effect?
                let ran = match s["state"].as_str() {
                    Some("in doubt") if asked.contains(&id) => {
                        self.count(&format!("count-{id}")) > 0
                    }
                    Some("undo in doubt") if goal == Goal::RolledBack => {
                        self.count(&format!("undo-{id}")) > 0
                    }
                    _ => continue,
                };
                let flag = match (goal, ran) {
                    (Goal::Succeeded, true) => "--skip",
                    (Goal::Succeeded, false) => "--retry",
                    (Goal::RolledBack, true) => "--assume-done",
                    (Goal::RolledBack, false) => "--assume-not-run",
                };
                decisions.extend([flag.to_string(), id.to_string()]);
            }
            if !decisions.is_empty() {
                // Without the operator's word nothing happens.
                let (host, records) = (self.host(), self.journal_len());
                let out = self.drplan(None).args([verb, &run]).output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{what}: {verb} without a decision: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(self.host(), host, "{what}: {verb} ran something blindly");
                assert_eq!(self.journal_len(), records, "{what}: {verb} journaled");
            }
            let out = self
                .drplan(crash_after.take())
                .args([verb, &run])
                .args(&decisions)
                .output()
                .unwrap();
            if out.status.success() {
                return commands;
            }
            crashed = out.status.signal() == Some(9);
            assert!(
                crashed,
                "{what}: {verb} {decisions:?}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Each counted step ran at most once, each hook too, and never the hook of a step
    /// before the point of no return once it ran.
    fn assert_at_most_once(&self, what: &str) {
        for id in COUNTED {
            let n = self.count(&format!("count-{id}"));
            assert!(n <= 1, "{what}: step {id} ran {n} times");
        }
        for id in HOOKED {
            let n = self.count(&format!("undo-{id}"));
            assert!(n <= 1, "{what}: the hook of {id} ran {n} times");
        }
        assert_eq!(self.count("undo-p"), 0, "{what}: p is a point of no return");
        if self.count("count-p") == 1 {
            assert_eq!(self.count("undo-a"), 0, "{what}: rollback crossed p");
        }
    }
}

fn killed(out: &std::process::Output, what: &str) {
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{what}: the process was killed: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The uninterrupted run: its host state and how many records each command appends.
fn reference(broken: bool) -> (Lab, usize) {
    let lab = Lab::new(broken);
    let out = lab.apply(None);
    assert_eq!(out.status.success(), !broken, "{out:?}");
    let records = lab.journal_len();
    (lab, records)
}

#[test]
fn apply_killed_after_every_record_resumes_to_the_same_end() {
    let (clean, records) = reference(false);
    assert_eq!(
        records - clean.commands_started(),
        2 + 2 * 6 + 1,
        "run_started, preconditions_passed, started+finished per step, run_finished (and a command_started per command)"
    );
    for id in COUNTED {
        assert_eq!(clean.count(&format!("count-{id}")), 1);
    }
    let mut commands = 0;
    for k in 1..=records {
        let what = format!("apply killed after record {k}");
        let lab = Lab::new(false);
        killed(&lab.apply(Some(k)), &what);
        commands += lab.drive(Goal::Succeeded, None, &what);
        lab.assert_at_most_once(&what);
        assert_eq!(lab.host(), clean.host(), "{what}");
    }
    // Killed after `run_finished`, the run is already done.
    assert!(commands >= records - 1, "every other crash needed a resume");
}

#[test]
fn resume_killed_after_every_record_resumes_to_the_same_end() {
    let (clean, _) = reference(false);
    // The apply stopped before the preconditions held: the resume checks them and then
    // writes every record an apply writes. With `a` in doubt, the resume journals the
    // operator's `--retry` first, then goes on as before: its first records suffice.
    let probe = Lab::new(false);
    killed(&probe.apply(Some(1)), "probe");
    probe.drive(Goal::Succeeded, None, "probe");
    let resume_records = probe.journal_len() - 1;
    assert_eq!(resume_records - probe.commands_started(), 1 + 2 * 6 + 1);
    assert_eq!(probe.host(), clean.host());
    for (apply_k, last) in [(1, resume_records), (3, 3)] {
        for j in 1..=last {
            let what = format!("apply killed after record {apply_k}, resume after {j}");
            let lab = Lab::new(false);
            killed(&lab.apply(Some(apply_k)), &what);
            lab.drive(Goal::Succeeded, Some(j), &what);
            lab.assert_at_most_once(&what);
            assert_eq!(lab.host(), clean.host(), "{what}");
        }
    }
}

#[test]
fn rollback_killed_after_every_record_rolls_back_to_the_same_end() {
    // `boom` fails: the run pauses; rolling it back undoes d and c, then stops at p.
    let (clean, _) = reference(true);
    clean.drive(Goal::RolledBack, None, "reference");
    let expected = clean.host();
    assert_eq!(
        clean.count("undo-d") + clean.count("undo-c"),
        2,
        "{expected:?}"
    );
    assert_eq!(clean.count("undo-a"), 0, "stopped at p");
    assert_eq!(clean.status()["status"], "rolled_back");
    let (rollback_records, hook_commands) = {
        let (lab, before) = reference(true);
        let commands_before = lab.commands_started();
        lab.drive(Goal::RolledBack, None, "probe");
        (
            lab.journal_len() - before,
            lab.commands_started() - commands_before,
        )
    };
    assert_eq!(
        rollback_records - hook_commands,
        1 + 2 * 2 + 1 + 1,
        "rollback_started, compensation_started+finished of d and c, rollback_stopped, run_finished"
    );
    for j in 1..=rollback_records {
        let what = format!("rollback killed after record {j}");
        let (lab, _) = reference(true);
        lab.drive(Goal::RolledBack, Some(j), &what);
        lab.assert_at_most_once(&what);
        assert_eq!(lab.host(), expected, "{what}");
    }
}

#[test]
fn a_run_killed_after_every_record_can_be_rolled_back_instead() {
    // The operator rolls back a crashed run rather than resuming it: steps in doubt need
    // --assume-done/--assume-not-run, and the end is the rollback of what ran.
    let (_, records) = reference(true);
    for k in 1..=records {
        let what = format!("failing apply killed after record {k}, rolled back");
        let lab = Lab::new(true);
        killed(&lab.apply(Some(k)), &what);
        lab.drive(Goal::RolledBack, None, &what);
        lab.assert_at_most_once(&what);
        let p_ran = lab.count("count-p") == 1;
        for id in HOOKED {
            let ran = lab.count(&format!("count-{id}"));
            let undone = lab.count(&format!("undo-{id}"));
            let expected = match *id {
                "p" => 0,
                "a" if p_ran => 0,
                _ => ran,
            };
            assert_eq!(
                undone, expected,
                "{what}: hook of {id} (step ran {ran} times)"
            );
        }
    }
}
