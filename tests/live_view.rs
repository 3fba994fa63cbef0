//! The live terminal view of `apply` on a terminal (a pty from util-linux's `script`): the
//! steps running now, redrawn in place, and done/total; the same plain lines as ever above
//! it, and the summary below once it is gone. Not on a terminal, the output is the plain
//! lines alone (the snapshots of `tests/apply_local.rs` and `tests/failures.rs` hold them).

mod common;

use std::fs;
use std::process::Command;

fn plan(dir: &std::path::Path) {
    let site = "version: 1\nsite: tty\nhosts:\n  a: { address: 127.0.0.1, transport: local }\n";
    let plan = [
        "version: 1",
        "name: live",
        "roles: [a]",
        "steps:",
        "  - id: one",
        "    on: a",
        "    action: sleep",
        "    with: { duration: 700ms }",
        "  - id: two",
        "    on: a",
        "    action: sleep",
        "    with: { duration: 700ms }",
        "  - id: three",
        "    on: a",
        "    action: sleep",
        "    with: { duration: 300ms }",
        "    needs: [one, two]",
        "",
    ]
    .join("\n");
    fs::write(dir.join("site.yaml"), site).unwrap();
    fs::write(dir.join("plan.yaml"), plan).unwrap();
}

#[test]
fn on_a_terminal_the_running_steps_are_redrawn_in_place() {
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path());
    let drplan = env!("CARGO_BIN_EXE_drplan");
    let line = format!(
        "{drplan} --state-dir state apply plan.yaml --site site.yaml --yes; echo \"exit=$?\""
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("script (util-linux) runs drplan on a pty");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit=0"), "{text}");
    // The block: each running step with its action and host, and done/total.
    assert!(text.contains("sleep on a (local)"), "{text}");
    for count in ["0/3 steps done", "2/3 steps done"] {
        assert!(text.contains(count), "{count} in {text}");
    }
    // Redrawn in place: the cursor goes back up over the block.
    assert!(text.contains("\x1b[1A"), "{text}");
    // The plain lines are all there, and the summary comes after the block is gone.
    for line in ["▶ one sleep on a (local)", "✓ three done in", "run "] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let summary = text.rfind("summary: 3 done").expect("summary");
    assert!(
        text[summary..].lines().all(|l| !l.contains("steps done")),
        "nothing of the block after the summary: {text}"
    );
}

#[test]
fn not_on_a_terminal_the_lines_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    plan(dir.path());
    let out = common::drplan()
        .current_dir(dir.path())
        .args([
            "--state-dir",
            "state",
            "apply",
            "plan.yaml",
            "--site",
            "site.yaml",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("steps done") && !text.contains('\x1b'),
        "{text}"
    );
    assert!(text.contains("✓ three done in"), "{text}");
}
