//! `drplan()`: how every integration test runs the binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `drplan` binary cargo built for these tests, run as a script would run it: no colour
/// (`NO_COLOR` set, `CLICOLOR_FORCE` removed) and nothing on stdin (so `apply` without
/// `--yes` refuses instead of asking). Add arguments, then `.output()`, `.spawn()`, or
/// `.assert()` (with `assert_cmd::prelude::*`).
pub(crate) fn drplan() -> Command {
    script_like(Command::new(env!("CARGO_BIN_EXE_drplan")))
}

/// `drplan()` inside the network namespace `ns` (a lab's controller):
/// `ip netns exec NS drplan …`.
pub(crate) fn drplan_in(ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_drplan")]);
    script_like(c)
}

fn script_like(mut c: Command) -> Command {
    c.env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    c
}

/// `drplan ARGS` run in `dir`, to its end.
pub(crate) fn output_in(dir: &Path, args: &[&str]) -> Output {
    drplan()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run drplan")
}

/// What a command printed: its stdout, then its stderr.
pub(crate) fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
