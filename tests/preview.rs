//! `drplan plan`: the preview of the GoCD failover in every format, the saved plan, and
//! what must never be printed (secrets) or cannot be known yet (step results).

mod common;

use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const PLAN: &str = "plans/gocd/failover.yaml";
const SITE: &str = "plans/sites/example.yaml";
const SECRET_PLAN: &str = "tests/fixtures/valid/secret.yaml";
const SECRET_SITE: &str = "tests/fixtures/valid/secret.site.yaml";
/// The site's `secrets: { pw: { env: … } }` and the value the test gives it.
const SECRET_ENV: &str = "DRPLAN_TEST_REPLICATION_PW";
const SECRET_VALUE: &str = "hunter2-Zq9-do-not-print";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `drplan` from the repository, with a state directory of its own.
fn drplan() -> Command {
    let mut cmd = common::drplan();
    cmd.current_dir(root()).env(
        "DRPLAN_STATE_DIR",
        std::env::temp_dir().join("drplan-preview-test-state"),
    );
    Command::from_std(cmd)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("drplan runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn plan(args: &[&str]) -> Run {
    let r = run(drplan().args(["plan", PLAN, "--site", SITE]).args(args));
    assert_eq!(r.code, Some(0), "drplan plan {args:?}:\n{}", r.stderr);
    r
}

fn preview_json() -> Value {
    serde_json::from_str(&plan(&["--format", "json"]).stdout).expect("--format json is JSON")
}

/// `needs` as written in the plan file (not as drplan reports them): (need, step) pairs.
fn needs_in_file(path: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let v: Value = serde_saphyr::from_str_with_options(&text, options).unwrap();
    let mut out = BTreeSet::new();
    for s in v["steps"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        for n in s["needs"].as_array().into_iter().flatten() {
            out.insert((n.as_str().unwrap().to_string(), id.to_string()));
        }
    }
    out
}

#[test]
fn text_preview_of_the_gocd_failover() {
    let r = plan(&[]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(!r.stdout.contains('\x1b'), "no colour with NO_COLOR");
    assert!(r.stdout.starts_with("Plan gocd-failover on site example\n"));
    assert!(r.stdout.contains(
        "── point of no return: once `promote-pg-standby` succeeds, rollback stops here ──"
    ));
    insta::assert_snapshot!("failover_text", r.stdout);
}

#[test]
fn json_preview_has_the_documented_shape() {
    let p = preview_json();
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "format_version",
        "plan",
        "site",
        "params",
        "preconditions",
        "waves",
        "steps",
        "points_of_no_return",
        "rollback_order",
    ] {
        assert!(keys.contains(&key), "top-level `{key}` in {keys:?}");
    }
    assert_eq!(p["format_version"], 1);
    assert_eq!(p["plan"]["name"], "gocd-failover");
    assert_eq!(p["plan"]["file"], PLAN);
    assert_eq!(p["site"]["name"], "example");
    assert_eq!(p["site"]["file"], SITE);
    // The site's override wins over the plan's default; the default fills the rest.
    assert_eq!(p["params"]["max_lag_bytes"], 1048576);
    assert_eq!(p["params"]["health_timeout"], "120s");

    // Waves: every step once, and after every step it needs.
    let steps = p["steps"].as_array().unwrap();
    let wave: HashMap<&str, u64> = steps
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["wave"].as_u64().unwrap()))
        .collect();
    assert_eq!(wave.len(), 16);
    let in_waves: Vec<&str> = p["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w.as_array().unwrap().iter().map(|s| s.as_str().unwrap()))
        .collect();
    assert_eq!(in_waves.len(), 16);
    assert_eq!(in_waves.iter().collect::<BTreeSet<_>>().len(), 16);
    let needs: BTreeSet<(String, String)> = steps
        .iter()
        .flat_map(|s| {
            let id = s["id"].as_str().unwrap().to_string();
            s["needs"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |n| (n.as_str().unwrap().to_string(), id.clone()))
        })
        .collect();
    assert_eq!(
        needs,
        needs_in_file(PLAN),
        "the preview's needs are the plan's"
    );
    for (n, s) in &needs {
        assert!(
            wave[n.as_str()] < wave[s.as_str()],
            "`{s}` runs in a later wave than `{n}`"
        );
    }
    // Rendered parameters: templates filled from the site and the host's vars.
    let promote = steps
        .iter()
        .find(|s| s["id"] == "promote-pg-standby")
        .unwrap();
    assert_eq!(promote["with"]["data_dir"], "/var/lib/postgresql/15/main");
    assert_eq!(promote["on"]["host"], "ops@10.0.2.13");
    assert_eq!(promote["become"], "postgres");
}

#[test]
fn promotion_is_the_point_of_no_return_and_rollback_stops_there() {
    let p = preview_json();
    assert_eq!(
        p["points_of_no_return"],
        serde_json::json!(["promote-pg-standby"])
    );
    let steps = p["steps"].as_array().unwrap();
    let promote = steps
        .iter()
        .find(|s| s["id"] == "promote-pg-standby")
        .unwrap();
    assert_eq!(promote["point_of_no_return"], true);

    let rollback: Vec<&str> = p["rollback_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // Every compensation of the failover belongs to a step that runs before the promotion
    // (its checks of everything that can refuse come first), so after a complete run there
    // may be nothing left to undo; whatever is listed must not cross the promotion.
    assert!(!rollback.contains(&"promote-pg-standby"));
    // Nothing the promotion waited for, and nothing listed before it, is undone.
    let order: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let at = order
        .iter()
        .position(|s| *s == "promote-pg-standby")
        .unwrap();
    for id in &rollback {
        let i = order.iter().position(|s| s == id).unwrap();
        assert!(
            i > at,
            "rollback of `{id}` crosses the point of no return: {rollback:?}"
        );
    }
    for before in ["stop-go-primary", "stop-pg-primary"] {
        assert!(
            !rollback.contains(&before),
            "{before} is before the promotion: {rollback:?}"
        );
    }
    // Only steps with a rollback hook, newest first.
    for id in &rollback {
        let s = steps.iter().find(|s| s["id"] == *id).unwrap();
        assert!(s["rollback"].is_object(), "{id} has a rollback");
    }
    let positions: Vec<usize> = rollback
        .iter()
        .map(|id| order.iter().position(|s| s == id).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "newest first: {rollback:?}"
    );
}

#[test]
fn dot_has_an_edge_per_need() {
    let dot = plan(&["--format", "dot"]).stdout;
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    let needs = needs_in_file(PLAN);
    for (n, s) in &needs {
        let edge = format!("\"{n}\" -> \"{s}\";");
        assert!(dot.contains(&edge), "{edge} in\n{dot}");
    }
    assert_eq!(
        dot.matches(" -> ").count(),
        needs.len(),
        "no other edges:\n{dot}"
    );
    assert!(dot.contains("\"promote-pg-standby\" [label=") && dot.contains("doubleoctagon"));
    insta::assert_snapshot!("failover_dot", dot);
}

#[test]
fn mermaid_is_a_flowchart_with_an_edge_per_need() {
    let m = plan(&["--format", "mermaid"]).stdout;
    assert!(m.starts_with("flowchart"), "{m}");
    assert_eq!(m.matches(" --> ").count(), needs_in_file(PLAN).len(), "{m}");
    assert!(
        m.contains("{{\"Promote the standby PostgreSQL"),
        "the point of no return is a hexagon:\n{m}"
    );
    insta::assert_snapshot!("failover_mermaid", m);
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn out_saves_the_exact_plan_privately() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failover.plan.json");
    let r = plan(&["--out", out.to_str().unwrap()]);
    assert!(
        r.stdout.starts_with("Plan gocd-failover"),
        "the preview is still shown"
    );
    assert!(r.stderr.contains("Saved this plan to"), "{}", r.stderr);

    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "saved plan mode {mode:o}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let plan_sha = sha256_hex(&std::fs::read(root().join(PLAN)).unwrap());
    let site_sha = sha256_hex(&std::fs::read(root().join(SITE)).unwrap());
    assert_eq!(saved["plan"]["sha256"], plan_sha.as_str());
    assert_eq!(saved["site"]["sha256"], site_sha.as_str());
    assert_eq!(
        saved["preview"],
        preview_json(),
        "it saves the preview that was shown"
    );
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn secrets_are_never_printed_and_results_are_known_after_apply() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("secret.plan.json");
    let mut printed = Vec::new();
    for format in ["text", "json", "dot", "mermaid"] {
        let mut cmd = drplan();
        cmd.env(SECRET_ENV, SECRET_VALUE).args([
            "plan",
            SECRET_PLAN,
            "--site",
            SECRET_SITE,
            "--format",
            format,
        ]);
        if format == "json" {
            cmd.args(["--out", saved.to_str().unwrap()]);
        }
        let r = run(&mut cmd);
        assert_eq!(r.code, Some(0), "{format}:\n{}", r.stderr);
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            assert!(
                !text.contains(SECRET_VALUE),
                "{format} {stream} shows the secret:\n{text}"
            );
        }
        printed.push((format, r.stdout));
    }
    let saved_text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        !saved_text.contains(SECRET_VALUE),
        "the saved plan holds the secret"
    );

    let text = &printed[0].1;
    assert!(text.contains("password: (sensitive)"), "{text}");
    assert!(text.contains("content: (known after apply)"), "{text}");

    let p: Value = serde_json::from_str(&printed[1].1).unwrap();
    let step = |id: &str| {
        p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("step {id}"))
            .clone()
    };
    // A whole-value secret, a secret inside a longer string, and one in a precondition.
    assert_eq!(step("rebuild_old")["with"]["password"], "(sensitive)");
    assert_eq!(step("write_pgpass")["with"]["content"], "(sensitive)");
    assert_eq!(
        step("start_old")["preconditions"][0]["with"]["password"],
        "(sensitive)"
    );
    // The rest of the same `with` is rendered.
    assert_eq!(step("rebuild_old")["with"]["source_host"], "10.231.0.13");
    assert_eq!(
        step("write_pgpass")["with"]["path"],
        "/var/lib/postgresql/.pgpass"
    );
    // A step's result is only known while the plan runs.
    assert_eq!(
        step("note_timeline")["with"]["content"],
        "(known after apply)"
    );
}

#[test]
fn secrets_stay_hidden_when_the_environment_lacks_them() {
    // The preview does not need the secret's value at all.
    let r = run(drplan().env_remove(SECRET_ENV).args([
        "plan",
        SECRET_PLAN,
        "--site",
        SECRET_SITE,
        "--format",
        "json",
    ]));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("(sensitive)"));
}

#[test]
fn global_flags_work_before_and_after_the_subcommand() {
    let reference = plan(&[]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let forms: [&[&str]; 4] = [
        &["--no-color", "plan", PLAN, "--site", SITE],
        &["plan", PLAN, "--site", SITE, "--no-color"],
        &["--state-dir", state, "-v", "plan", PLAN, "--site", SITE],
        &["plan", PLAN, "--site", SITE, "--state-dir", state, "-v"],
    ];
    for args in forms {
        let r = run(drplan().env_remove("NO_COLOR").args(args));
        assert_eq!(r.code, Some(0), "drplan {args:?}:\n{}", r.stderr);
        assert_eq!(r.stdout, reference, "drplan {args:?}");
    }
    // -q has a visible effect: no "Saved this plan" note, wherever it is written.
    for (i, quiet_first) in [true, false].into_iter().enumerate() {
        let out = dir.path().join(format!("q{i}.json"));
        let out = out.to_str().unwrap();
        let mut args = vec!["plan", PLAN, "--site", SITE, "--out", out];
        if quiet_first {
            args.insert(0, "-q");
        } else {
            args.push("-q");
        }
        let r = run(drplan().args(&args));
        assert_eq!(r.code, Some(0), "drplan {args:?}:\n{}", r.stderr);
        assert!(
            r.stderr.is_empty(),
            "drplan {args:?} is quiet: {}",
            r.stderr
        );
        assert!(Path::new(out).is_file());
    }
}

#[test]
fn help_exits_0() {
    for args in [&["--help"][..], &["plan", "--help"], &["help", "plan"]] {
        let r = run(drplan().args(args));
        assert_eq!(r.code, Some(0), "drplan {args:?}:\n{}", r.stderr);
        assert!(
            r.stdout.contains("Usage:"),
            "drplan {args:?}:\n{}",
            r.stdout
        );
    }
    let top = run(drplan().arg("--help")).stdout;
    for cmd in ["validate", "plan", "schema"] {
        assert!(top.contains(cmd), "--help lists {cmd}:\n{top}");
    }
    let plan_help = run(drplan().args(["plan", "--help"])).stdout;
    for flag in ["--site", "--format", "--out", "--no-color", "--state-dir"] {
        assert!(
            plan_help.contains(flag),
            "plan --help lists {flag}:\n{plan_help}"
        );
    }
}

#[test]
fn plan_without_site_or_with_a_bad_format_is_a_usage_error() {
    let r = run(drplan().args(["plan", PLAN]));
    assert_eq!(r.code, Some(2), "--site is required for a preview");
    assert!(r.stderr.contains("--site"), "{}", r.stderr);
    let r = run(drplan().args(["plan", PLAN, "--site", SITE, "--format", "yaml"]));
    assert_eq!(r.code, Some(2));
    assert!(r.stdout.is_empty());
}

#[test]
fn an_invalid_plan_previews_nothing() {
    let r = run(drplan().args([
        "plan",
        "tests/fixtures/invalid/unknown_action.yaml",
        "--site",
        SITE,
    ]));
    assert_eq!(r.code, Some(2));
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("did you mean `pg.promote`?"),
        "{}",
        r.stderr
    );
}
