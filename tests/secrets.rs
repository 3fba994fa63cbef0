//! Secrets, in every form, never leave drplan: not quoted, not filtered, not cut in two, not
//! through a command's argv (where every user of the host can read them), not in a
//! `manual.approve` prompt, not as the md5 of a file written with one. Through the real
//! binary on local hosts; the output a user sees and the journal are searched.

mod common;

use assert_cmd::Command;
use common::ARGV_SCAN;
use std::fs;
use std::path::{Path, PathBuf};

/// A secret with a quote, a double quote and a slash, and a word found in no other text.
const QUOTED: &str = "it's-S3cr3tQ\"/x";
const QUOTED_WORD: &str = "S3cr3tQ";
const TOKEN: &str = "s3cr3t-t0ken";

/// A 27-line private key: every line is distinctive (`KEYLINE07…`).
fn key() -> String {
    let mut lines = vec!["-----BEGIN DRPLAN TEST KEY-----".to_owned()];
    for i in 1..=25 {
        lines.push(format!("KEYLINE{i:02}{}", "Ab9+/".repeat(11)));
    }
    lines.push("-----END DRPLAN TEST KEY-----".to_owned());
    lines.join("\n")
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let s = Site { dir };
        fs::write(
            s.path("site.yaml"),
            format!(
                "version: 1\nsite: secrets-{}\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n  b: {{ address: 127.0.0.1, transport: local, become: nobody, become_method: runuser }}\nvars:\n  dir: {}\nsecrets:\n  quoted: {{ file: quoted.secret }}\n  key: {{ file: key.secret }}\n  token: {{ env: DRPLAN_TEST_TOKEN }}\n",
                std::process::id(),
                s.dir.path().display()
            ),
        )
        .unwrap();
        fs::write(s.path("quoted.secret"), format!("{QUOTED}\n")).unwrap();
        fs::write(s.path("key.secret"), format!("{}\n", key())).unwrap();
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn plan(&self, steps: &str) -> PathBuf {
        let p = self.path("plan.yaml");
        fs::write(
            &p,
            format!("version: 1\nname: secrets\nroles: [a, b]\nsteps:\n{steps}"),
        )
        .unwrap();
        p
    }

    fn drplan(&self) -> Command {
        let mut c = Command::from_std(common::drplan());
        c.env("DRPLAN_TEST_TOKEN", TOKEN)
            .arg("--state-dir")
            .arg(self.path("state"));
        c
    }

    /// `apply -v` of `steps`: what the user saw (stdout and stderr) and the journal.
    fn apply(&self, steps: &str, code: i32) -> (String, String) {
        let plan = self.plan(steps);
        let a = self
            .drplan()
            .arg("apply")
            .arg(&plan)
            .arg("--site")
            .arg(self.path("site.yaml"))
            .args(["--yes", "-v"])
            .assert()
            .code(code);
        let o = a.get_output();
        let seen = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (seen, self.journal())
    }

    fn journal(&self) -> String {
        let runs = self.path("state/runs");
        let run = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
        fs::read_to_string(run.join("journal.jsonl")).unwrap()
    }
}

fn assert_absent(what: &str, seen: &str, journal: &str, needles: &[&str]) {
    for n in needles {
        assert!(!seen.contains(n), "{what}: {n:?} in the output:\n{seen}");
        assert!(
            !journal.contains(n),
            "{what}: {n:?} in the journal:\n{journal}"
        );
    }
}

#[test]
fn a_secret_with_quotes_is_masked_raw_quoted_and_escaped() {
    let s = Site::new();
    // The script holds the secret shell-quoted; the failure shows the command (quoted once
    // more) and the stderr (raw); the journal holds both JSON-escaped.
    let (seen, journal) = s.apply(
        "  - id: leak\n    on: a\n    action: exec\n    with: { script: \"printf 'seen: %s\\\\n' {{ secrets.quoted | shell_quote }} >&2; exit 1\" }\n",
        1,
    );
    assert_absent("quoted secret", &seen, &journal, &[QUOTED_WORD]);
    assert!(seen.contains("seen: (sensitive)"), "{seen}");
}

#[test]
fn whatever_a_template_makes_of_a_secret_is_a_secret() {
    let s = Site::new();
    let (seen, journal) = s.apply(
        "  - id: leak\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'echo \"$@\"; echo \"$@\" >&2; exit 1', sh, \"{{ secrets.token | upper }}\", \"{{ secrets.token | replace('-', '%2D') }}\", \"{{ secrets.token[3:] }}\", \"{{ secrets.token | reverse }}\", \"x{{ 'pre:' ~ secrets.token ~ ':post' }}\"] }\n",
        1,
    );
    assert_absent(
        "derived secret",
        &seen,
        &journal,
        &[
            "S3CR3T",
            "s3cr3t%2D",
            "r3t-t0",
            "nek0t",
            "3t-t0k",
            "pre:s3c",
        ],
    );
}

#[test]
fn a_long_secret_is_masked_before_output_is_cut() {
    let s = Site::new();
    // stderr keeps its last 20 lines in an error: 20 of the key's 27.
    let (seen, journal) = s.apply(
        "  - id: leak\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'printf \"%s\\n\" \"$1\" >&2; exit 1', sh, \"{{ secrets.key }}\"] }\n",
        1,
    );
    let lines: Vec<String> = (1..=25).map(|i| format!("KEYLINE{i:02}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_absent("key in stderr", &seen, &journal, &lines);

    // A successful step's result keeps the last 64 KiB of stdout: the cut falls inside the
    // key, after 64 KiB less 1000 bytes of filler.
    fs::remove_dir_all(s.path("state")).unwrap();
    let (seen, journal) = s.apply(
        "  - id: leak\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'head -c 64536 /dev/zero | tr \"\\\\0\" x; printf \"%s\\n\" \"$1\"', sh, \"{{ secrets.key }}\"] }\n",
        0,
    );
    assert_absent("key in a result", &seen, &journal, &lines);
    assert!(
        journal.contains("(sensitive)"),
        "the result is kept, masked"
    );
}

#[test]
fn environment_secrets_never_appear_in_any_argv_locally_with_become() {
    let s = Site::new();
    // On `b`, as nobody through runuser: the step looks at every process's argv on the
    // machine while it runs (its own wrappers included) for its PGPASSWORD.
    s.apply(
        &format!(
            "  - id: scan\n    on: b\n    action: exec\n    with: {{ argv: [sh, -c, {ARGV_SCAN:?}], env: {{ PGPASSWORD: \"{{{{ secrets.token }}}}\" }}, cwd: / }}\n"
        ),
        0,
    );
}

#[test]
fn a_manual_approve_prompt_never_prints_a_secret() {
    let s = Site::new();
    let plan = s.plan(
        "  - id: ask\n    on: a\n    action: manual.approve\n    with: { prompt: \"promote with {{ secrets.token }} and {{ secrets.token | upper }}?\" }\n",
    );
    // A terminal (script(1) gives drplan one) so that the operator is asked; the answer is
    // no.
    let line = format!(
        "{} --state-dir {} apply {} --site {} --yes",
        env!("CARGO_BIN_EXE_drplan"),
        s.path("state").display(),
        plan.display(),
        s.path("site.yaml").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DRPLAN_TEST_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdin(fs::File::open(write(&s.path("answer"), "n\n")).unwrap())
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.contains("promote with (sensitive) and (sensitive)? [y/N]"),
        "the operator is asked: {seen}"
    );
    assert_absent("prompt", &seen, &s.journal(), &[TOKEN, "S3CR3T"]);
}

#[test]
fn a_file_written_with_a_secret_leaves_no_md5_of_it_in_the_journal() {
    let s = Site::new();
    let target = s.path("written");
    let (seen, journal) = s.apply(
        &format!(
            "  - id: write\n    on: a\n    action: file.write\n    with: {{ path: \"{}\", content: \"password={{{{ secrets.token }}}}\\n\" }}\n",
            target.display()
        ),
        0,
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        format!("password={TOKEN}\n")
    );
    let md5 = std::process::Command::new("md5sum")
        .arg(&target)
        .output()
        .unwrap();
    let md5 = String::from_utf8_lossy(&md5.stdout);
    let md5 = md5.split_whitespace().next().unwrap();
    assert_absent("md5 of the secret", &seen, &journal, &[md5]);
    assert!(journal.contains(r#""md5":"(sensitive)""#), "{journal}");
}

fn write(path: &Path, text: &str) -> PathBuf {
    fs::write(path, text).unwrap();
    path.to_path_buf()
}
