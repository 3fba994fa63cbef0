//! Nobody else's files are trusted: the state directory is drplan's alone (another user's
//! planted lock link or run is refused, never followed or run), and a plan, site, secret,
//! params or known_hosts file that another user could have written is refused unless
//! `--allow-insecure-files`, which says so for each file.
//!
//! Run as root: the other user is `nobody`, whose commands run through `setpriv`. The
//! unprivileged side is tested too: `nobody` runs drplan itself.

mod common;

use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

const NOBODY: &str = "nobody";

/// A root-owned directory every user can enter (0755), with a local site and a plan.
struct Tmp {
    dir: tempfile::TempDir,
}

impl Tmp {
    fn new() -> Tmp {
        assert_eq!(
            // SAFETY: geteuid cannot fail and touches no memory of ours.
            unsafe { libc::geteuid() },
            0,
            "these tests plant files as another user: run them as root"
        );
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let t = Tmp { dir };
        fs::write(
            t.path("site.yaml"),
            format!(
                "version: 1\nsite: insecure\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\nvars:\n  dir: {}\nsecrets:\n  token: {{ file: token }}\n",
                t.dir.path().display()
            ),
        )
        .unwrap();
        fs::write(t.path("token"), "s3cr3t\n").unwrap();
        chmod(&t.path("token"), 0o600);
        t.plan("[sh, -c, 'echo ran > \"$1\"', sh, \"{{ vars.dir }}/done\"]");
        t
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `plan.yaml`: one `exec` step with this argv (YAML flow list).
    fn plan(&self, argv: &str) -> PathBuf {
        let p = self.path("plan.yaml");
        fs::write(
            &p,
            format!(
                "version: 1\nname: insecure\nroles: [a]\nsteps:\n  - id: work\n    on: a\n    action: exec\n    with: {{ argv: {argv} }}\n"
            ),
        )
        .unwrap();
        p
    }

    /// drplan as root with this state directory.
    fn drplan(&self, state: &Path) -> Command {
        let mut c = Command::from_std(common::drplan());
        c.arg("--state-dir").arg(state);
        c
    }

    fn apply(&self, state: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.drplan(state)
            .args(["apply", "plan.yaml", "--site", "site.yaml", "--yes"])
            .args(extra)
            .current_dir(self.dir.path())
            .assert()
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Run `argv` as `nobody` (its own group, no supplementary groups).
fn as_nobody(argv: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            "--regid=nogroup",
            "--clear-groups",
            "--",
        ])
        .args(argv)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn sh_as_nobody(script: &str, args: &[&str]) {
    let mut argv = vec!["sh", "-c", script, "sh"];
    argv.extend_from_slice(args);
    let out = as_nobody(&argv);
    assert!(
        out.status.success(),
        "as nobody: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn drplan_bin() -> String {
    env!("CARGO_BIN_EXE_drplan").to_owned()
}

#[test]
fn a_lock_link_planted_by_another_user_is_refused_and_its_target_untouched() {
    let t = Tmp::new();
    let victim = t.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    // A directory like /tmp (everyone may write, sticky), where the other user makes the
    // state directory first, with the site's lock file a link to a file only root may write.
    let shared = t.path("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let state = shared.join("state");
    sh_as_nobody(
        r#"mkdir -p "$1/locks" && ln -s "$2" "$1/locks/insecure.lock""#,
        &[state.to_str().unwrap(), victim.to_str().unwrap()],
    );

    let a = t.apply(&state, &[]).code(2);
    let err = stderr(&a);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("owned by nobody"), "{err}");
    assert!(err.contains("--allow-insecure-files"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!t.path("done").exists(), "nothing ran");

    // Told to trust the other user's directories, drplan says so for each, and still never
    // follows the link.
    let a = t.apply(&state, &["--allow-insecure-files"]).code(2);
    let err = stderr(&a);
    for insecure in [state.clone(), state.join("locks")] {
        let warning = format!("warning: trusting {} although", insecure.display());
        assert!(err.contains(&warning), "{warning} in:\n{err}");
    }
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!t.path("done").exists(), "nothing ran");
}

#[test]
fn a_run_planted_by_another_user_is_never_resumed() {
    let t = Tmp::new();
    // A state directory everyone can write (a shared directory made carelessly).
    let state = t.path("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o777);
    // The other user starts a run of their own plan in a state directory of their own: the
    // step fails unless it runs as root, so the run pauses. Then they move the paused run
    // into root's state directory.
    let theirs = t.path("theirs");
    fs::create_dir(&theirs).unwrap();
    let pwned = t.path("PWNED");
    fs::write(
        theirs.join("plan.yaml"),
        format!(
            "version: 1\nname: planted\nroles: [a]\nsteps:\n  - id: boom\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'test \"$(id -u)\" = 0 && touch \"$1\"', sh, \"{}\"] }}\n",
            pwned.display()
        ),
    )
    .unwrap();
    fs::write(
        theirs.join("site.yaml"),
        "version: 1\nsite: insecure\nhosts:\n  a: { address: 127.0.0.1, transport: local }\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    for f in ["plan.yaml", "site.yaml"] {
        std::os::unix::fs::chown(theirs.join(f), Some(65534), Some(65534)).unwrap();
    }
    let bin = drplan_bin();
    let applied = as_nobody(&[
        &bin,
        "--state-dir",
        theirs.join("state").to_str().unwrap(),
        "apply",
        theirs.join("plan.yaml").to_str().unwrap(),
        "--site",
        theirs.join("site.yaml").to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(
        applied.status.code(),
        Some(1),
        "the planted run pauses: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    sh_as_nobody(
        r#"mkdir "$2/runs" && mv "$1"/runs/* "$2/runs/""#,
        &[
            theirs.join("state").to_str().unwrap(),
            state.to_str().unwrap(),
        ],
    );
    let run = fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();

    // Root finds a paused run and resumes it.
    let a = t.drplan(&state).args(["resume", &run]).assert().code(2);
    let err = stderr(&a);
    assert!(err.contains("can write it"), "{err}");
    assert!(!pwned.exists(), "the planted step ran as root");
    let a = t.drplan(&state).args(["status"]).assert().code(2);
    assert!(stderr(&a).contains("refusing to trust"), "{}", stderr(&a));
}

#[test]
fn an_unprivileged_operator_keeps_a_private_state_and_refuses_roots() {
    let t = Tmp::new();
    let mine = t.path("mine");
    fs::create_dir(&mine).unwrap();
    std::os::unix::fs::chown(&mine, Some(65534), Some(65534)).unwrap();
    let bin = drplan_bin();
    let state = mine.join("state");
    let apply = |state: &Path| {
        as_nobody(&[
            &bin,
            "--state-dir",
            state.to_str().unwrap(),
            "apply",
            t.path("plan.yaml").to_str().unwrap(),
            "--site",
            t.path("site.yaml").to_str().unwrap(),
            "--yes",
        ])
    };
    // The plan and site are root's (trusted), the secret file is root's 0600 and the
    // plan does not read it: nobody's run works, in a state directory only nobody can read.
    t.plan("[\"true\"]");
    let ok = apply(&state);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("runs")), 0o700);
    assert_eq!(mode(&state.join("locks/insecure.lock")), 0o600);

    // A state directory root made is not nobody's.
    let roots = t.path("roots");
    fs::create_dir(&roots).unwrap();
    let refused = apply(&roots);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("owned by root (uid 0), not by nobody"),
        "{err}"
    );
}

#[test]
fn input_files_others_could_write_are_refused_unless_allowed() {
    let t = Tmp::new();
    let state = t.path("state");
    let validate = |extra: &[&str]| {
        t.drplan(&state)
            .args(["validate", "plan.yaml", "--site", "site.yaml"])
            .args(extra)
            .current_dir(t.dir.path())
            .assert()
    };
    validate(&[]).success();

    // Group-writable plan.
    chmod(&t.path("plan.yaml"), 0o664);
    let a = validate(&[]).code(2);
    assert!(
        stderr(&a).contains("its group can write it (mode 0664)"),
        "{}",
        stderr(&a)
    );
    let a = validate(&["--allow-insecure-files"]).success();
    let warning = format!(
        "warning: trusting {} although its group can write it",
        "plan.yaml"
    );
    assert!(stderr(&a).contains(&warning), "{}", stderr(&a));
    chmod(&t.path("plan.yaml"), 0o644);

    // A site owned by another (non-root) user.
    std::os::unix::fs::chown(t.path("site.yaml"), Some(65534), None).unwrap();
    let a = validate(&[]).code(2);
    assert!(stderr(&a).contains("owned by nobody"), "{}", stderr(&a));
    std::os::unix::fs::chown(t.path("site.yaml"), Some(0), None).unwrap();

    // A directory above the plan that everyone can write (not sticky).
    let open = t.path("open");
    fs::create_dir(&open).unwrap();
    fs::copy(t.path("plan.yaml"), open.join("plan.yaml")).unwrap();
    chmod(&open, 0o777);
    let a = t
        .drplan(&state)
        .args(["validate", "open/plan.yaml"])
        .current_dir(t.dir.path())
        .assert()
        .code(2);
    assert!(
        stderr(&a).contains("everyone can write it (mode 0777)"),
        "{}",
        stderr(&a)
    );
    // Sticky, like /tmp: others cannot replace what is yours in it.
    chmod(&open, 0o1777);
    t.drplan(&state)
        .args(["validate", "open/plan.yaml"])
        .current_dir(t.dir.path())
        .assert()
        .success();

    // A link to the plan owned by the other user, in that sticky directory.
    let link = open.join("link.yaml");
    symlink(t.path("plan.yaml"), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
    let a = t
        .drplan(&state)
        .args(["validate", "open/link.yaml"])
        .current_dir(t.dir.path())
        .assert()
        .code(2);
    assert!(
        stderr(&a).contains("symbolic link owned by nobody"),
        "{}",
        stderr(&a)
    );
}

#[test]
fn secret_params_and_known_hosts_files_others_could_write_are_refused() {
    let t = Tmp::new();
    let state = t.path("state");
    t.plan("[sh, -c, 'test -n \"$1\"', sh, \"{{ secrets.token }}\"]");

    chmod(&t.path("token"), 0o620);
    let a = t.apply(&state, &[]).code(2);
    assert!(stderr(&a).contains("token"), "{}", stderr(&a));
    assert!(
        stderr(&a).contains("its group can write it"),
        "{}",
        stderr(&a)
    );
    assert!(
        !state.join("runs").exists(),
        "a refused start leaves no run"
    );
    chmod(&t.path("token"), 0o600);

    fs::write(t.path("params.yaml"), "{}\n").unwrap();
    chmod(&t.path("params.yaml"), 0o666);
    let a = t.apply(&state, &["--params", "params.yaml"]).code(2);
    assert!(stderr(&a).contains("params.yaml"), "{}", stderr(&a));
    chmod(&t.path("params.yaml"), 0o644);

    // An ssh section whose known_hosts file another user owns.
    fs::write(t.path("known_hosts"), "").unwrap();
    std::os::unix::fs::chown(t.path("known_hosts"), Some(65534), None).unwrap();
    let site = fs::read_to_string(t.path("site.yaml")).unwrap();
    fs::write(
        t.path("site.yaml"),
        format!("{site}ssh:\n  known_hosts: known_hosts\n"),
    )
    .unwrap();
    let a = t.apply(&state, &[]).code(2);
    assert!(stderr(&a).contains("known_hosts"), "{}", stderr(&a));
    assert!(stderr(&a).contains("owned by nobody"), "{}", stderr(&a));

    // Trusted anyway when told to: the run goes on, saying what it trusted.
    let a = t.apply(&state, &["--allow-insecure-files"]).success();
    assert!(stderr(&a).contains("warning: trusting"), "{}", stderr(&a));
}
