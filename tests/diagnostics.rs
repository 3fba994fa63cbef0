//! Every mistake in `tests/fixtures/invalid/` is reported by the real binary with the
//! right code, at the right line and column, with the words an operator needs.
//!
//! Each fixture is one small plan with one mistake (`several_errors` has several);
//! `NAME.site.yaml` next to it, when present, is passed with `--site`. The rendered report
//! is snapshotted (`tests/snapshots/diagnostics__NAME.snap`), and the table below pins the
//! facts that matter independently of the snapshot — so a snapshot accepted without reading
//! it still cannot hide a wrong location or a lost "did you mean".
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test --test diagnostics` (or
//! `cargo insta review`), then read every changed `.snap`.

mod common;

use assert_cmd::prelude::*;
use common::drplan;
use serde_json::Value;
use std::path::{Path, PathBuf};

const DIR: &str = "tests/fixtures/invalid";

/// Where a diagnostic must point: the fixture's plan or its site file.
#[derive(Clone, Copy, Debug, PartialEq)]
enum In {
    Plan,
    Site,
}

/// One expected diagnostic: code, file, 1-based line and column.
type Expected = (&'static str, In, u64, u64);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Relative paths (from the repo root) of the fixture and of its site, if any.
fn paths(name: &str) -> (String, Option<String>) {
    let plan = format!("{DIR}/{name}.yaml");
    let site = format!("{DIR}/{name}.site.yaml");
    assert!(root().join(&plan).is_file(), "missing fixture {plan}");
    (plan, root().join(&site).is_file().then_some(site))
}

/// `drplan validate FILE [--site SITE] [extra…]` from the repo root, without colour.
fn validate(name: &str, extra: &[&str]) -> std::process::Output {
    let (plan, site) = paths(name);
    let mut cmd = drplan();
    cmd.current_dir(root()).arg("validate").arg(&plan);
    if let Some(site) = &site {
        cmd.arg("--site").arg(site);
    }
    cmd.args(extra);
    cmd.output().expect("drplan runs")
}

fn check(name: &str, expected: &[Expected], says: &[&str]) {
    let (plan, site) = paths(name);

    // The report for people.
    let out = validate(name, &[]);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name}: invalid input exits 2\n{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "{name}: nothing on stdout, got:\n{stdout}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "{name}: no colour codes with NO_COLOR\n{stderr}"
    );
    let n = expected.len();
    let total = format!("{n} error{}\n", if n == 1 { "" } else { "s" });
    assert!(
        stderr.ends_with(&total),
        "{name}: ends with `{total}`:\n{stderr}"
    );
    for (code, file, line, col) in expected {
        let file = match file {
            In::Plan => &plan,
            In::Site => site.as_ref().expect("a site fixture"),
        };
        assert!(stderr.contains(code), "{name}: code {code} in\n{stderr}");
        let at = format!("[{file}:{line}:{col}]");
        assert!(stderr.contains(&at), "{name}: points at {at} in\n{stderr}");
    }
    for s in says {
        assert!(stderr.contains(s), "{name}: says {s:?} in\n{stderr}");
    }
    insta::assert_snapshot!(name, stderr);

    // The same diagnostics for machines: code, file, line, column, in file order.
    let out = validate(name, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name}: --format json still exits 2"
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("--format json prints JSON");
    assert_eq!(json["valid"], Value::Bool(false), "{name}");
    let got: Vec<(String, String, u64, u64)> = json["diagnostics"]
        .as_array()
        .expect("a diagnostics list")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().expect("code").to_string(),
                d["file"].as_str().expect("file").to_string(),
                d["line"].as_u64().expect("line"),
                d["column"].as_u64().expect("column"),
            )
        })
        .collect();
    let want: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|(code, file, line, col)| {
            let file = match file {
                In::Plan => plan.clone(),
                In::Site => site.clone().expect("a site fixture"),
            };
            (code.to_string(), file, *line, *col)
        })
        .collect();
    assert_eq!(got, want, "{name}: diagnostics as JSON");
}

macro_rules! fixtures {
    ($($name:ident: [$($code:literal @ $in:ident $line:literal : $col:literal),+ $(,)?] says [$($s:literal),* $(,)?];)+) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), &[$(($code, In::$in, $line, $col)),+], &[$($s),*]);
            }
        )+
        /// Every fixture the table covers.
        const COVERED: &[&str] = &[$(stringify!($name)),+];
    };
}

fixtures! {
    yaml_syntax: ["drplan::yaml::syntax" @ Plan 17:23]
        says ["invalid YAML", "illegal placement of ':' indicator"];
    yaml_bad_indent: ["drplan::yaml::syntax" @ Plan 14:12]
        says ["invalid YAML", "mapping values are not allowed"];
    duplicate_yaml_key: ["drplan::yaml::syntax" @ Plan 20:5]
        says ["duplicate key `with`: a key may appear only once"];
    wrong_type: ["drplan::schema::wrong_type" @ Plan 20:14]
        says ["`retries` of step `promote-pg-standby` must be an integer, found the string \"many\"", "expected integer"];
    unknown_key: ["drplan::schema::unknown_key" @ Plan 8:5]
        says ["unknown key `nmae` in step `stop-go-primary`", "did you mean `name`?"];
    missing_required_key: ["drplan::schema::missing_key" @ Plan 13:5]
        says ["missing required key `action` in step `promote-pg-standby`", "`action` is required here"];
    bad_step_id: ["drplan::schema::bad_id" @ Plan 7:9]
        says ["\"Stop GoCD primary\"", "`stop-gocd-primary`"];
    duplicate_step_id: ["drplan::plan::duplicate_id" @ Plan 21:9]
        says ["duplicate step id `stop-go-primary`", "first used on line 7"];
    needs_missing_step: ["drplan::plan::unknown_need" @ Plan 19:13]
        says [
            "step `promote-pg-standby` needs `stop-go-primray`, which is not a step of this plan",
            "did you mean `stop-go-primary`?",
        ];
    dependency_cycle: ["drplan::graph::cycle" @ Plan 12:5]
        says [
            // miette wraps the long message; every step of the cycle is named in order.
            "dependency cycle: `stop-go-primary` → `promote-pg-standby` → `start-go-standby` → `stop-go-",
            "remove one of these `needs`",
        ];
    unknown_filter: [
        "drplan::template::unknown" @ Plan 17:26,
        "drplan::template::unknown" @ Plan 19:37,
        "drplan::template::unknown" @ Plan 19:56,
    ]
        says ["unknown test `nosuchtest`", "unknown filter `urlencode`", "unknown function `nosuchfunction`"];
    unknown_action: ["drplan::plan::unknown_action" @ Plan 17:13]
        says ["unknown action `pg.promte`", "did you mean `pg.promote`?"];
    action_params: [
        "drplan::schema::missing_key" @ Plan 11:11,
        "drplan::schema::unknown_key" @ Plan 11:13,
    ] says ["missing required key `unit` in `with` of step `stop-go-primary`", "unknown key `unti`", "did you mean `unit`?"];
    shared_pg_params: [
        "drplan::schema::missing_key" @ Plan 14:7,
        "drplan::schema::unknown_key" @ Plan 16:7,
    ] says ["missing required key `source_host` in `with` of step `rewind`", "unknown key `sourc_port`", "did you mean `source_port`?"];
    action_param_enum: ["drplan::schema::not_allowed" @ Plan 16:19]
        says ["`with.mode` of step `set-go-standby-primary`", "\"primay\"", "did you mean `primary`?"];
    check_not_read_only: ["drplan::plan::not_a_check" @ Plan 24:16]
        says ["`service.stop` changes things, so it cannot be a check", "service.status"];
    undeclared_role: ["drplan::plan::unknown_role" @ Plan 15:9]
        says ["`pg_stanby` is not a role of this plan", "did you mean `pg_standby`?"];
    unbound_role: ["drplan::site::unbound_role" @ Site 4:1]
        says ["site `lab` does not bind role `pg_standby`, which plan `gocd-failover-mini` uses"];
    template_syntax: ["drplan::template::syntax" @ Plan 18:44]
        says ["template syntax error", "unexpected `}`"];
    undefined_variable: ["drplan::template::undefined" @ Plan 23:59]
        says ["undefined variable `params.promote_wait`", "declare it under `params:`"];
    undefined_root: ["drplan::template::undefined" @ Plan 11:27]
        says ["undefined variable `var`", "did you mean `vars`?"];
    bad_duration: ["drplan::schema::bad_duration" @ Plan 20:14]
        says ["`timeout` of step `promote-pg-standby` is not a duration", "\"30 seconds\"", "500ms, 30s, 5m, 1h"];
    unquoted_script: ["drplan::template::unquoted" @ Plan 14:23]
        says ["`{{ params.dir }}` is pasted into a shell script without `| shell_quote`"];
    unquoted_rollback_script: [
        "drplan::template::unquoted" @ Plan 13:19,
        "drplan::template::unquoted" @ Plan 17:36,
        "drplan::template::script_tag" @ Plan 17:52,
    ] says [
        "`{{ params.dir ~ '' | shell_quote }}` is pasted into a shell script partly unquoted",
        "`{{ params.dir }}` is pasted into a shell script",
        "may not hold template tags",
    ];
    result_not_ancestor: ["drplan::template::undefined" @ Plan 28:20]
        says [
            "`steps.read_standby_status.result` is not known when step `record_timeline` runs",
            "add `read_standby_status` to the `needs` of `record_timeline`",
        ];
    undefined_site_var: ["drplan::template::undefined" @ Plan 18:62]
        says ["undefined variable `vars.pg.bindir`: site `lab` does not define it"];
    site_param_type: ["drplan::site::param_type" @ Site 7:18]
        says ["parameter `max_lag_bytes` must be of type integer"];
    param_enum_default: ["drplan::plan::param_not_allowed" @ Plan 6:65]
        says ["parameter `rebuild` must be one of basebackup, rewind, found the string \"rewnd\"", "did you mean `rewind`?"];
    site_param_not_allowed: ["drplan::site::param_not_allowed" @ Site 8:12]
        says ["parameter `rebuild` must be one of basebackup, rewind, found the string \"basebakup\"", "did you mean `basebackup`?"];
    several_errors: [
        "drplan::schema::bad_duration" @ Plan 19:14,
        "drplan::plan::unknown_action" @ Plan 24:13,
        "drplan::plan::unknown_role" @ Plan 30:9,
        "drplan::plan::unknown_need" @ Plan 39:13,
    ] says [
        "did you mean `pg.promote`?",
        "did you mean `go_standby`?",
        "did you mean `start-go-standby`?",
    ];
}

/// The fixtures on disk: every `*.yaml` that is not a `*.site.yaml`.
fn fixtures_on_disk() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(DIR))
        .expect("fixtures directory")
        .map(|e| e.expect("dir entry").path())
        .filter_map(|p: PathBuf| {
            let file = p.file_name()?.to_str()?.to_string();
            let name = file.strip_suffix(".yaml")?;
            (!name.ends_with(".site")).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_is_in_the_table() {
    let on_disk = fixtures_on_disk();
    let mut covered: Vec<String> = COVERED
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    covered.sort();
    assert_eq!(
        on_disk, covered,
        "each tests/fixtures/invalid/*.yaml needs a row in the table of tests/diagnostics.rs"
    );
    // A site fixture belongs to a plan fixture.
    for e in std::fs::read_dir(root().join(DIR)).unwrap() {
        let file = e.unwrap().file_name().into_string().unwrap();
        if let Some(plan) = file.strip_suffix(".site.yaml") {
            assert!(
                on_disk.iter().any(|n| n == plan),
                "{file} has no plan fixture"
            );
        }
    }
}

#[test]
fn the_cycle_names_every_step_of_it() {
    let out = validate("dependency_cycle", &["--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["diagnostics"][0]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "dependency cycle: `stop-go-primary` → `promote-pg-standby` → `start-go-standby` → `stop-go-primary`"
    );
}

#[test]
fn several_errors_are_reported_together_in_file_order_as_json() {
    let out = validate("several_errors", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["valid"], Value::Bool(false));
    let diags = json["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 4, "{json:#}");
    for d in diags {
        for key in ["code", "message", "file", "label", "help"] {
            assert!(d[key].is_string(), "`{key}` is a string in {d}");
        }
        for key in ["line", "column"] {
            assert!(
                d[key].as_u64().is_some_and(|n| n >= 1),
                "`{key}` is 1-based in {d}"
            );
        }
        assert_eq!(d["file"], "tests/fixtures/invalid/several_errors.yaml");
    }
    let codes: Vec<&str> = diags.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "drplan::schema::bad_duration",
            "drplan::plan::unknown_action",
            "drplan::plan::unknown_role",
            "drplan::plan::unknown_need"
        ]
    );
    let lines: Vec<u64> = diags.iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert!(
        lines.windows(2).all(|w| w[0] < w[1]),
        "file order: {lines:?}"
    );

    // The text report lists them in the same order.
    let text = String::from_utf8(validate("several_errors", &[]).stderr).unwrap();
    let at: Vec<usize> = ["19:14]", "24:13]", "30:9]", "39:13]"]
        .iter()
        .map(|l| text.find(l).unwrap_or_else(|| panic!("{l} in\n{text}")))
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "text in file order:\n{text}"
    );
}

#[test]
fn a_valid_plan_prints_ok_and_exits_0() {
    // The failback reads every value of the example site: no warning either.
    let out = drplan()
        .current_dir(root())
        .args([
            "validate",
            "plans/gocd/failback.yaml",
            "--site",
            "plans/sites/example.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("ok: plan `gocd-failback`"), "{stdout}");
}

/// The shipped failback picks how PG1 is rebuilt with `params.rebuild`, and each rebuild step
/// runs only `when` it is named: a misspelt value must not skip both and start PG1 on its
/// stale data. It is refused, pointing at the site's value, with the closest allowed one.
#[test]
fn the_shipped_failback_refuses_a_misspelt_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(root().join("plans/sites/example.yaml")).unwrap();
    let site = example.replacen(
        "params:\n  max_lag_bytes: 1048576\n",
        "params:\n  max_lag_bytes: 1048576\n  rebuild: rewnid\n",
        1,
    );
    assert_ne!(
        site, example,
        "the example site has a params section to extend"
    );
    let path = dir.path().join("site.yaml");
    std::fs::write(&path, site).unwrap();
    let out = drplan()
        .current_dir(root())
        .args(["validate", "plans/gocd/failback.yaml", "--site"])
        .arg(&path)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "drplan::site::param_not_allowed", "{json:#}");
    assert_eq!(d["line"], 17, "{json:#}");
    assert_eq!(d["help"], "did you mean `rewind`?", "{json:#}");
    assert_eq!(json["diagnostics"].as_array().unwrap().len(), 1, "{json:#}");
}

/// A hostile file's 1 MB line (or word) is never echoed whole: the report shows a window
/// around the error, with `…` where the line was cut, and the right line and column.
#[test]
fn a_megabyte_line_is_shown_as_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("big.yaml");
    let argv: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: big\nroles: [a]\nsteps:\n  - id: one\n    on: a\n    action: exec\n    with: {{ argv: [{}], nmae: 1 }}\n  - id: two\n    on: a\n    action: {}\n",
            argv.join(", "),
            "x".repeat(1 << 20)
        ),
    )
    .unwrap();
    for format in ["text", "json"] {
        let out = drplan()
            .args(["validate", "--format", format])
            .arg(&plan)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned()
            + &String::from_utf8_lossy(&out.get_output().stdout);
        assert!(err.len() < 10_000, "{format}: {} bytes", err.len());
        assert!(err.contains("unknown key `nmae`"), "{format}: {err}");
        assert!(err.contains("unknown action"), "{format}: {err}");
        if format == "text" {
            // The unknown key is far along line 8: its column, and the text around it.
            let column = "    with: { argv: [".len() + argv.join(", ").len() + "], ".len();
            assert!(
                err.contains(&format!("big.yaml:8:{}]", column + 1)),
                "{err}"
            );
            assert!(err.contains("a19999], nmae: 1 }"), "{err}");
            assert!(err.contains("…"), "{err}");
        }
    }
}

/// `}}` in an expression made minijinja's parser panic (found by the `template` fuzz
/// target): `validate` exited 101 with a backtrace. It is a syntax error like any other.
#[test]
fn an_interpolation_end_in_an_expression_is_a_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "version: 1\nname: x\nroles: [a]\nsteps:\n  - id: one\n    on: a\n    action: exec\n    when: \"true }} x\"\n    with: { argv: [echo] }\n",
    )
    .unwrap();
    let out = drplan().arg("validate").arg(&plan).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("drplan::template::syntax"), "{err}");
    assert!(err.contains("ends a `{{ … }}` interpolation"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
