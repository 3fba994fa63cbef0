//! A site of local-transport hosts in a temp dir, and the `drplan` commands that run plans
//! on it: the harness of the tests that drive `apply`, `resume`, `rollback` and `status`
//! through the real binary without SSH.

use assert_cmd::Command;
use std::fs;
use std::path::{Path, PathBuf};

/// The secret every local site declares (`secrets.token`), as the tests set it.
pub(crate) const TOKEN: &str = "s3cr3t-t0ken";

pub(crate) struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let site = format!(
            "version: 1\nsite: local-{}\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n  b: {{ address: 127.0.0.1, transport: local }}\nvars:\n  dir: {}\nsecrets:\n  token: {{ env: DRPLAN_TEST_TOKEN }}\n",
            std::process::id(),
            dir.path().display()
        );
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        Site { dir }
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub(crate) fn plan(&self, steps: &str) -> PathBuf {
        let text = format!("version: 1\nname: local-test\nroles: [a, b]\nsteps:\n{steps}");
        let p = self.path("plan.yaml");
        fs::write(&p, text).unwrap();
        p
    }
    /// `drplan --state-dir STATE` with the site's secret set, to add arguments to.
    pub(crate) fn drplan(&self) -> Command {
        Command::from_std(self.process())
    }
    /// The same as a `std::process::Command`, for runs a test spawns.
    pub(crate) fn process(&self) -> std::process::Command {
        let mut c = super::drplan();
        c.env("DRPLAN_TEST_TOKEN", TOKEN)
            .arg("--state-dir")
            .arg(self.path("state"));
        c
    }
    /// `drplan apply PLAN --site SITE --yes EXTRA…`, as a process (for runs a test watches,
    /// crashes or reads while they go).
    pub(crate) fn apply_process(&self, plan: &Path, extra: &[&str]) -> std::process::Command {
        let mut c = self.process();
        c.arg("apply")
            .arg(plan)
            .arg("--site")
            .arg(self.path("site.yaml"))
            .arg("--yes")
            .args(extra);
        c
    }
    pub(crate) fn apply(&self, plan: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
        Command::from_std(self.apply_process(plan, extra)).assert()
    }
    pub(crate) fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
    pub(crate) fn run_id(&self) -> String {
        let runs = fs::read_dir(self.path("state/runs")).unwrap();
        let mut ids: Vec<String> = runs
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids.pop().unwrap()
    }
}

/// A step that appends its id to `log` (a shell with values passed as arguments).
pub(crate) fn logging_step(id: &str, needs: &[&str], extra: &str) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    format!(
        "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'echo \"$1\" >> \"$2\"', _, {id}, \"{{{{ vars.dir }}}}/log\"] }}\n{needs}{extra}"
    )
}

pub(crate) fn out(a: &assert_cmd::assert::Assert) -> String {
    let o = a.get_output();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Site {
    /// A run's journal, as text.
    pub(crate) fn journal(&self, run: &str) -> String {
        self.read(&format!("state/runs/{run}/journal.jsonl"))
    }

    /// Write a plan file with plan-level `preconditions` (YAML, indented by two spaces).
    pub(crate) fn guarded_plan(&self, preconditions: &str, steps: &str) -> PathBuf {
        let text = format!(
            "version: 1\nname: guarded\nroles: [a, b]\npreconditions:\n{preconditions}steps:\n{steps}"
        );
        let p = self.path("guarded.yaml");
        fs::write(&p, text).unwrap();
        p
    }
}

impl Site {
    /// Snapshot settings that hide what changes from one test run to the next: the time
    /// since a run started, how long steps took, when a run started, run ids, the site's
    /// name (after the test's pid), its directory, and pids and host names.
    pub(crate) fn snapshot_settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\[ *\d+\.\d\ds\]", "[   T.TTs]");
        settings.add_filter(r"\b\d+\.\d\ds\b", "D.DDs");
        settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "TIME");
        settings.add_filter(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{4}", "RUN");
        settings.add_filter(r"local-\d+", "local-PID");
        settings.add_filter(&regex_quote(&self.dir.path().display().to_string()), "DIR");
        // Who held a lock a crashed run left behind.
        settings.add_filter(r"pid \d+ on host \S+", "pid PID on host HOST");
        settings
    }
}

/// Snapshot what a command wrote on stderr (`$a`, an `Assert`) as `$name`, with the
/// site's `snapshot_settings` (a macro, so the snapshot belongs to the calling test file).
#[macro_export]
macro_rules! snapshot_stderr {
    ($site:expr, $a:expr, $name:expr) => {{
        let stderr = String::from_utf8_lossy(&$a.get_output().stderr).into_owned();
        $site
            .snapshot_settings()
            .bind(|| insta::assert_snapshot!($name, stderr));
    }};
}

/// `text` as a regular expression that matches exactly it.
fn regex_quote(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
