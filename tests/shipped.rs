//! The plans that travel inside the binary, and what a packager builds from it: a plan named
//! from any directory (a file of that path wins), `drplan plans list`, `drplan plans export`
//! (modes, ownership, refusing to overwrite, `--force`), a saved plan made from a shipped plan
//! compared with the binary's text, and the man pages and shell completions.

mod common;

use common::{output_in, said as text};

use drplan::shipped::FILES;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `plans/`, as a path relative to it.
fn plans_on_disk() -> Vec<String> {
    let root = repo().join("plans");
    let mut stack = vec![root.clone()];
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_file_of_plans_is_in_the_binary_as_it_is_on_disk() {
    let shipped: Vec<String> = FILES.iter().map(|s| s.path.to_string()).collect();
    assert_eq!(
        shipped,
        plans_on_disk(),
        "src/shipped.rs must list every file of plans/"
    );
    for s in FILES {
        assert_eq!(
            fs::read_to_string(repo().join("plans").join(s.path)).unwrap(),
            s.text
        );
    }
}

#[test]
fn a_shipped_plan_is_named_from_any_directory_and_a_file_of_that_path_wins() {
    let dir = tempfile::tempdir().unwrap();
    let site = repo().join("plans/sites/example.yaml");
    let site = site.to_str().unwrap();
    for name in ["gocd/failover", "gocd/failover.yaml"] {
        let out = output_in(dir.path(), &["validate", name, "--site", site]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("ok: plan `gocd-failover` in {name} is valid")),
            "{}",
            text(&out)
        );
    }
    let out = output_in(dir.path(), &["plan", "gocd/failback", "--site", site]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out)
            .contains("Plan gocd-failback on site example\n  shipped:gocd/failback.yaml with "),
        "{}",
        text(&out)
    );

    // A file at that path wins over the shipped plan.
    fs::create_dir(dir.path().join("gocd")).unwrap();
    fs::write(
        dir.path().join("gocd/failover"),
        "version: 1\nname: mine\nroles: [go_primary]\nsteps:\n  - { id: hello, on: local, action: note, with: { message: hi } }\n",
    )
    .unwrap();
    let out = output_in(dir.path(), &["validate", "gocd/failover"]);
    assert!(
        text(&out).contains("ok: plan `mine` in gocd/failover is valid"),
        "{}",
        text(&out)
    );

    // `apply` of a shipped plan without a site: it says how.
    let out = output_in(dir.path(), &["apply", "gocd/failback", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("drplan apply gocd/failback --site SITE"),
        "{}",
        text(&out)
    );

    // Neither a file nor shipped: the read error, and the shipped names.
    let out = output_in(dir.path(), &["validate", "gocd/failovr"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    assert!(said.contains("cannot read gocd/failovr"), "{said}");
    assert!(said.contains("did you mean `gocd/failover`?"), "{said}");
    assert!(
        said.contains("gocd/failback, gocd/failover, gocd/readiness, gocd/switchover, gocd/sync (`drplan plans list`)"),
        "{said}"
    );
}

#[test]
fn plans_list_names_each_shipped_file_with_what_it_is() {
    let out = output_in(Path::new("/"), &["plans", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let said = text(&out);
    for (name, kind) in [
        ("gocd/failback", "plan"),
        ("gocd/failover", "plan"),
        ("gocd/readiness", "checks"),
        ("gocd/switchover", "plan"),
        ("gocd/sync", "plan"),
        ("sites/example", "site"),
    ] {
        let line = said
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{said}"));
        assert_eq!(line.split_whitespace().nth(1), Some(kind), "{line}");
    }
    assert!(
        said.contains("Turn off the primaries, promote the standby PostgreSQL"),
        "{said}"
    );
}

#[test]
fn plans_export_writes_0644_files_in_0755_directories_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("site-plans");
    // Under a umask that would make them private: the modes are set, not inherited.
    let export = |force: bool| {
        let mut sh = std::process::Command::new("sh");
        sh.current_dir(dir.path())
            .env("NO_COLOR", "1")
            .arg("-c")
            .arg(r#"umask 077; exec "$0" plans export site-plans "$@""#)
            .arg(env!("CARGO_BIN_EXE_drplan"));
        if force {
            sh.arg("--force");
        }
        sh.output().expect("run drplan")
    };
    let out = export(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let uid = unsafe { libc::geteuid() };
    for s in FILES {
        let path = out_dir.join(s.path);
        assert!(
            text(&out).contains(&format!("wrote site-plans/{}", s.path)),
            "{}",
            text(&out)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), s.text);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o644,
            "{}",
            path.display()
        );
        assert_eq!(meta.uid(), uid, "{}", path.display());
    }
    for d in ["", "gocd", "sites"] {
        let meta = fs::metadata(out_dir.join(d)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "site-plans/{d}");
        assert_eq!(meta.uid(), uid);
    }

    // A second export refuses, names what exists, and writes nothing: an edited copy stays.
    let edited = out_dir.join("gocd/failover.yaml");
    fs::write(&edited, "# the site's own\n").unwrap();
    let out = export(false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("nothing was written"), "{said}");
    assert!(said.contains("site-plans/gocd/failover.yaml"), "{said}");
    assert!(said.contains("--force"), "{said}");
    assert_eq!(fs::read_to_string(&edited).unwrap(), "# the site's own\n");

    // --force replaces files, and a link with a file (never writing through the link).
    let elsewhere = dir.path().join("elsewhere.yaml");
    fs::write(&elsewhere, "not drplan's\n").unwrap();
    let linked = out_dir.join("gocd/sync.yaml");
    fs::remove_file(&linked).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let out = export(true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(&edited).unwrap(),
        drplan::shipped::find("gocd/failover").unwrap().text
    );
    assert!(fs::symlink_metadata(&linked).unwrap().is_file());
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "not drplan's\n");
    assert_eq!(
        fs::metadata(&edited).unwrap().permissions().mode() & 0o7777,
        0o644
    );
}

#[test]
fn a_saved_shipped_plan_is_compared_with_the_binarys_text_not_a_file() {
    // gocd/sync on a site whose GoCD hosts nobody answers for: the run is refused by its
    // precondition (exit 3) and never starts. What matters here is the saved plan: applying
    // it again compares the shipped plan with this binary's text, not with a file.
    let dir = tempfile::tempdir().unwrap();
    common::unreachable_site(dir.path(), &["go_primary", "go_standby"]);
    let out = output_in(
        dir.path(),
        &[
            "plan",
            "gocd/sync",
            "--site",
            "site.yaml",
            "--out",
            "saved.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let saved = fs::read_to_string(dir.path().join("saved.json")).unwrap();
    assert!(saved.contains("\"shipped:gocd/sync.yaml\""), "{saved}");
    let out = output_in(dir.path(), &["apply", "saved.json", "--yes"]);
    let said = text(&out);
    assert!(
        !said.contains("stale") && !said.contains("cannot read"),
        "{said}"
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
}

#[test]
fn the_binary_writes_its_man_pages_and_shell_completions() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let out = output_in(dir.path(), &["man", man.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for page in [
        "drplan",
        "drplan-validate",
        "drplan-plan",
        "drplan-apply",
        "drplan-resume",
        "drplan-rollback",
        "drplan-status",
        "drplan-check",
        "drplan-schema",
        "drplan-plans",
        "drplan-plans-list",
        "drplan-plans-export",
        "drplan-serve",
        "drplan-report",
    ] {
        let text = fs::read_to_string(man.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}.1 has no title line:\n{text}"
        );
    }
    let apply = fs::read_to_string(man.join("drplan-apply.1")).unwrap();
    assert!(apply.contains("\\-\\-on\\-failure"), "{apply}");
    let pages = fs::read_dir(&man).unwrap().count();
    assert_eq!(pages, 14, "the hidden commands have no page");

    for (shell, marker) in [
        ("bash", "_drplan()"),
        ("zsh", "#compdef drplan"),
        ("fish", "complete -c drplan"),
    ] {
        let out = output_in(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("export"), "{shell}: no `plans export`");
    }
    // Hidden from --help: they are for packagers.
    let help = text(&output_in(dir.path(), &["--help"]));
    assert!(
        help.contains("plans") && !help.contains("completions"),
        "{help}"
    );
}
