//! The crash matrix: `drplan apply` is killed with SIGKILL right after each journal record
//! of a multi-step plan (after every `started`, `command_started` and `finished`), then
//! resumed until it completes. Per-step counter files prove every non-idempotent step ran
//! exactly once and the end state equals an uninterrupted run's.

use assert_cmd::Command;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

const STEPS: &[&str] = &["a", "b", "c", "d"];

/// a → b, a → c, (b, c) → d; each step bumps its own counter (not idempotent), and an
/// idempotent `file.write` records the end.
fn plan(dir: &Path) -> String {
    let bump = |id: &str, needs: &str| {
        format!(
            "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'n=$(cat \"$1\" 2>/dev/null || echo 0); echo $((n+1)) > \"$1\"', _, \"{}/count-{id}\"] }}\n{needs}",
            dir.display()
        )
    };
    format!(
        "version: 1\nname: crash\nroles: [a]\nsteps:\n{}{}{}{}  - id: done\n    on: a\n    action: file.write\n    with: {{ path: \"{}/done\", content: \"finished\\n\" }}\n    needs: [d]\n",
        bump("a", ""),
        bump("b", "    needs: [a]\n"),
        bump("c", "    needs: [a]\n"),
        bump("d", "    needs: [b, c]\n"),
        dir.display()
    )
}

fn drplan(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("drplan").unwrap();
    c.env("NO_COLOR", "1")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("-q");
    c
}

fn count(dir: &Path, id: &str) -> u32 {
    fs::read_to_string(dir.join(format!("count-{id}")))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("plan.yaml"), plan(dir.path())).unwrap();
    let site = format!(
        "version: 1\nsite: crash-{}\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n",
        std::process::id()
    );
    fs::write(dir.path().join("site.yaml"), site).unwrap();
    dir
}

fn apply(dir: &Path, crash_after: Option<usize>) -> std::process::Output {
    let mut c = drplan(dir);
    c.args(["apply", "--yes", "--parallel", "1"])
        .arg(dir.join("plan.yaml"))
        .arg("--site")
        .arg(dir.join("site.yaml"));
    if let Some(n) = crash_after {
        c.env("DRPLAN_CRASH_AFTER_RECORD", n.to_string());
    }
    c.output().unwrap()
}

/// The kinds of the run's journal records, in order.
fn journal_kinds(dir: &Path) -> Vec<String> {
    let runs = dir.join("state/runs");
    let run = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["record"]["kind"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn run_id(dir: &Path) -> String {
    fs::read_dir(dir.join("state/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_journal_boundary_survives_sigkill() {
    // The uninterrupted run, for reference.
    let clean = setup();
    assert!(apply(clean.path(), None).status.success());
    let kinds = journal_kinds(clean.path());
    let records = kinds.len();
    let commands = kinds.iter().filter(|k| *k == "command_started").count();
    assert_eq!(
        records - commands,
        3 + 2 * (STEPS.len() + 1),
        "run_started, preconditions_passed, started+finished per step, run_finished"
    );
    assert!(
        commands > STEPS.len(),
        "each step's commands are journaled: {kinds:?}"
    );

    for k in 1..=records {
        let dir = setup();
        let crashed = apply(dir.path(), Some(k));
        assert_eq!(
            crashed.status.signal(),
            Some(9),
            "boundary {k}: the process was killed"
        );
        let run = run_id(dir.path());
        // Resume until done, deciding about in-doubt steps as an operator would: look at
        // the host (the counter) to see whether the step ran.
        let mut rounds = 0;
        let finished = |dir: &Path| {
            let st = drplan(dir)
                .args(["status", &run, "--format", "json"])
                .output()
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&st.stdout).unwrap()["status"]
                == "succeeded"
        };
        while !finished(dir.path()) {
            rounds += 1;
            assert!(rounds < 10, "boundary {k}: resume does not converge");
            let mut c = drplan(dir.path());
            c.args(["resume", &run]);
            let probe = drplan(dir.path())
                .args(["status", &run, "--format", "json"])
                .output()
                .unwrap();
            let status: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
            for s in status["steps"].as_array().unwrap() {
                if s["state"] == "in doubt" {
                    let id = s["step"].as_str().unwrap();
                    let flag = if count(dir.path(), id) == 0 {
                        "--retry"
                    } else {
                        "--skip"
                    };
                    c.args([flag, id]);
                }
            }
            let out = c.output().unwrap();
            if out.status.success() {
                continue;
            }
            assert_eq!(
                out.status.code(),
                Some(1),
                "boundary {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for id in STEPS {
            assert_eq!(
                count(dir.path(), id),
                1,
                "boundary {k}: step {id} ran exactly once"
            );
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("done")).unwrap(),
            "finished\n",
            "boundary {k}"
        );
        let st = drplan(dir.path())
            .args(["status", &run, "--format", "json"])
            .output()
            .unwrap();
        let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert_eq!(st["status"], "succeeded", "boundary {k}");
    }
}
