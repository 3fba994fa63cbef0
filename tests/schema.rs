//! The committed JSON Schemas: they are what `drplan schema` prints, the shipped plans and
//! sites satisfy them under an independent validator (and `drplan validate` agrees), and the
//! *shape* mistakes among the invalid fixtures are caught by the schema alone — so an editor
//! using `schemas/plan.schema.json` flags them as the user types.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `drplan` from the repository.
fn drplan() -> Command {
    let mut cmd = common::drplan();
    cmd.current_dir(root());
    Command::from_std(cmd)
}

/// The YAML file as JSON, read as drplan reads it: YAML 1.2 booleans only, so `on:` stays a
/// key named "on" (YAML 1.1 would make it `true`).
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options::<Value>(&text, options)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn committed(kind: &str) -> Value {
    let path = root().join(format!("schemas/{kind}.schema.json"));
    let text = std::fs::read_to_string(&path).expect("committed schema");
    serde_json::from_str(&text).expect("committed schema is JSON")
}

fn validator(kind: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&committed(kind))
        .unwrap_or_else(|e| panic!("schemas/{kind}.schema.json does not compile: {e}"))
}

/// Schema errors as `pointer: message` lines (empty when valid).
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Files with extension `ext` under `dir`, recursively, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn committed_schemas_are_what_drplan_prints() {
    for kind in ["plan", "site"] {
        let out = drplan().args(["schema", kind]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "drplan schema {kind}");
        let printed = String::from_utf8(out.stdout).unwrap();
        let file = std::fs::read_to_string(root().join(format!("schemas/{kind}.schema.json")))
            .expect("committed schema");
        assert!(
            printed == file,
            "schemas/{kind}.schema.json is out of date with the model; regenerate it with\n\n    \
             cargo run -- schema {kind} > schemas/{kind}.schema.json\n\nand commit it"
        );
    }
    // Without an argument, `drplan schema` is the plan schema.
    let default = drplan().arg("schema").output().unwrap();
    assert_eq!(
        String::from_utf8(default.stdout).unwrap(),
        std::fs::read_to_string(root().join("schemas/plan.schema.json")).unwrap()
    );
}

#[test]
fn the_yaml_reader_keeps_on_as_a_string_key() {
    let v = yaml(&root().join("plans/gocd/failover.yaml"));
    let step = &v["steps"][0];
    assert_eq!(step["on"], "go_primary", "{step}");
    assert!(step.get("true").is_none());
}

#[test]
fn shipped_plans_and_sites_satisfy_the_committed_schemas() {
    let plans: Vec<PathBuf> = files(&root().join("plans"), "yaml")
        .into_iter()
        .filter(|p| !p.starts_with(root().join("plans/sites")))
        .collect();
    let sites = files(&root().join("plans/sites"), "yaml");
    assert!(
        !plans.is_empty() && !sites.is_empty(),
        "plans/ holds plans and sites"
    );
    assert!(plans.iter().any(|p| p.ends_with("gocd/failover.yaml")));

    let (plan_schema, site_schema) = (validator("plan"), validator("site"));
    for p in &plans {
        let found = errors(&plan_schema, &yaml(p));
        assert!(
            found.is_empty(),
            "{} against plan.schema.json:\n{}",
            relative(p),
            found.join("\n")
        );
    }
    for s in &sites {
        let found = errors(&site_schema, &yaml(s));
        assert!(
            found.is_empty(),
            "{} against site.schema.json:\n{}",
            relative(s),
            found.join("\n")
        );
    }
    // drplan agrees: each plan is valid alone and bound to the example site.
    for p in &plans {
        let p = relative(p);
        for with_site in [false, true] {
            let mut cmd = drplan();
            cmd.args(["validate", &p]);
            if with_site {
                cmd.args(["--site", "plans/sites/example.yaml"]);
            }
            let out = cmd.output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "drplan validate {p} (site: {with_site}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_site_is_not_a_plan_and_a_plan_is_not_a_site() {
    // The schemas tell the two kinds apart, so a wrong `$schema` comment shows at once.
    let plan = yaml(&root().join("plans/gocd/failover.yaml"));
    let site = yaml(&root().join("plans/sites/example.yaml"));
    assert!(!validator("site").is_valid(&plan));
    assert!(!validator("plan").is_valid(&site));
}

/// Fixtures whose mistake is one of shape, which the published schema alone must catch.
/// Kept explicit: a new shape fixture is added here by hand.
const SHAPE_ERRORS: &[&str] = &[
    "wrong_type",
    "unknown_key",
    "missing_required_key",
    "bad_duration",
    "action_params",
    "action_param_enum",
    "shared_pg_params",
    "unknown_action",
    "check_not_read_only",
    "bad_step_id",
];

/// Fixtures whose mistake a schema cannot see (references, graph, templates, the site):
/// they satisfy the schema, which shows the shape fixtures fail for their one mistake.
const NOT_SHAPE_ERRORS: &[&str] = &[
    "duplicate_step_id",
    "needs_missing_step",
    "dependency_cycle",
    "undeclared_role",
    "unbound_role",
    "template_syntax",
    "undefined_variable",
    "undefined_root",
    "unquoted_script",
    "unquoted_rollback_script",
    "unknown_filter",
    "result_not_ancestor",
    "undefined_site_var",
    "site_param_type",
    // A default outside its own `enum`, and a site's value outside it: one value checked
    // against another, which a schema for the plan file alone cannot say.
    "param_enum_default",
    "site_param_not_allowed",
];

#[test]
fn shape_mistakes_fail_the_committed_plan_schema() {
    let v = validator("plan");
    for name in SHAPE_ERRORS {
        let doc = yaml(&root().join(format!("tests/fixtures/invalid/{name}.yaml")));
        assert!(
            !v.is_valid(&doc),
            "tests/fixtures/invalid/{name}.yaml is a shape mistake, but satisfies plan.schema.json"
        );
    }
    for name in NOT_SHAPE_ERRORS {
        let doc = yaml(&root().join(format!("tests/fixtures/invalid/{name}.yaml")));
        let found = errors(&v, &doc);
        assert!(
            found.is_empty(),
            "tests/fixtures/invalid/{name}.yaml should satisfy the schema apart from its one \
             non-shape mistake:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_shape_error_points_where_drplan_points() {
    // The schema's complaint is about the same node drplan reports.
    let v = validator("plan");
    let cases = [
        ("wrong_type", "/steps/1/retries"),
        ("bad_duration", "/steps/1/timeout"),
        ("unknown_key", "/steps/0"),
        ("missing_required_key", "/steps/1"),
        ("action_params", "/steps/0/with"),
        ("shared_pg_params", "/steps/0/with"),
        ("unknown_action", "/steps/1/action"),
        ("check_not_read_only", "/steps/1/preconditions/0/check"),
        ("bad_step_id", "/steps/0/id"),
    ];
    for (name, pointer) in cases {
        let doc = yaml(&root().join(format!("tests/fixtures/invalid/{name}.yaml")));
        let at: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| e.instance_path().to_string())
            .collect();
        assert!(
            at.iter().any(|p| p == pointer),
            "{name}: expected a schema error at {pointer}, got {at:?}"
        );
    }
}

#[test]
fn site_fixtures_satisfy_the_site_schema() {
    // Their mistakes are in how they meet a plan, not in their own shape.
    let v = validator("site");
    for p in files(&root().join("tests/fixtures"), "yaml") {
        if p.to_string_lossy().ends_with(".site.yaml") {
            let found = errors(&v, &yaml(&p));
            assert!(found.is_empty(), "{}:\n{}", relative(&p), found.join("\n"));
        }
    }
}

#[test]
fn every_invalid_fixture_is_classified() {
    let mut all: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/invalid"))
        .unwrap()
        .filter_map(|e| {
            let f = e.unwrap().file_name().into_string().ok()?;
            let n = f.strip_suffix(".yaml")?;
            (!n.ends_with(".site")).then(|| n.to_string())
        })
        .collect();
    // YAML syntax errors cannot be read at all: they are neither.
    all.retain(|n| {
        !matches!(
            n.as_str(),
            "yaml_syntax" | "yaml_bad_indent" | "duplicate_yaml_key"
        )
    });
    all.sort();
    let mut listed: Vec<String> = SHAPE_ERRORS
        .iter()
        .chain(NOT_SHAPE_ERRORS)
        .chain(&["several_errors"])
        .map(std::string::ToString::to_string)
        .collect();
    listed.sort();
    assert_eq!(all, listed, "classify each new fixture in tests/schema.rs");
}

#[test]
fn docs_actions_md_is_what_the_action_registry_generates() {
    let path = root().join("docs/actions.md");
    let generated = drplan::schema::actions_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/actions.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/actions.md is out of date with the actions; regenerate it with\n\n    \
         UPDATE_DOCS=1 cargo test --test schema\n"
    );
}
