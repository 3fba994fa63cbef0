//! What a site file says and what the shipped plans read of it, through the real binary:
//! `validate --site` warns (exit 0) about site variables and secrets a plan does not read,
//! naming each with its line and column; the example site declares nothing that no shipped
//! plan reads; values a plan reads through `| default(…)` may be left out; and parameters an
//! action refuses (`control: pg_ctlclustr`) stop `apply` before anything starts.

mod common;

use common::said as text;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn drplan(dir: &Path, args: &[&str]) -> Output {
    common::drplan()
        .current_dir(dir)
        .env("DRPLAN_PG_PASSWORD", "pw1")
        .env("DRPLAN_REPLICATION_PASSWORD", "pw2")
        .args(args)
        .output()
        .expect("run drplan")
}

const PLANS: [&str; 5] = ["failover", "failback", "switchover", "readiness", "sync"];

/// The names `validate --site SITE` warns about for `plan` (`vars.pg.database`, `secret x`).
fn warned(site: &Path, plan: &str) -> BTreeSet<String> {
    let plan = repo().join(format!("plans/gocd/{plan}.yaml"));
    let out = drplan(
        &repo(),
        &[
            "validate",
            plan.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .map(|l| {
            l.split('`')
                .nth(1)
                .expect("a name in backquotes")
                .to_string()
        })
        .collect()
}

#[test]
fn every_value_of_the_example_site_is_read_by_a_shipped_plan() {
    let site = repo().join("plans/sites/example.yaml");
    let mut never = warned(&site, PLANS[0]);
    for plan in &PLANS[1..] {
        let here = warned(&site, plan);
        never = never.intersection(&here).cloned().collect();
    }
    assert!(never.is_empty(), "no shipped plan reads {never:?}");
    // …while each plan alone leaves some unread: the warnings are real.
    assert!(warned(&site, "sync").contains("pg_password"));
    assert!(warned(&site, "readiness").contains("vars.pg.data_dir"));
}

#[test]
fn validate_warns_about_unread_site_values_with_their_line_and_column_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let example = fs::read_to_string(repo().join("plans/sites/example.yaml")).unwrap();
    let site = example
        .replace("    user: postgres\n", "    user: postgres\n    database: gocd\n")
        .replace(
            "secrets:\n",
            "secrets:\n  api_token: { env: DRPLAN_API_TOKEN }\n",
        )
        .replace(
            "  pg_primary: { address: 10.0.2.12, user: ops, become_method: sudo }",
            "  pg_primary: { address: 10.0.2.12, user: ops, become_method: sudo, vars: { pg: { data_dir: /srv/pg, extra: 1 } } }",
        );
    fs::write(dir.path().join("site.yaml"), &site).unwrap();
    let line_col = |needle: &str| {
        let at = site.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let line = site[..at].lines().count() + usize::from(site[..at].ends_with('\n'));
        let col = at - site[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
        format!("{line}:{col}")
    };
    let out = drplan(
        dir.path(),
        &["validate", "gocd/failover", "--site", "site.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (needle, what) in [
        ("database: gocd", "site variable `vars.pg.database`"),
        ("api_token:", "secret `api_token`"),
        ("extra: 1", "variable `hosts.pg_primary.vars.pg.extra`"),
    ] {
        let expected = format!(
            "warning: site.yaml:{}: {what} is not used by plan `gocd-failover`",
            line_col(needle)
        );
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }
    // The host's own data_dir is read (hosts.pg_primary.vars.pg.data_dir): no warning.
    assert!(
        !stderr.contains("hosts.pg_primary.vars.pg.data_dir"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is valid"),
        "{}",
        text(&out)
    );

    let out = drplan(
        dir.path(),
        &[
            "validate",
            "gocd/failover",
            "--site",
            "site.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    let database = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["message"].as_str().unwrap().contains("vars.pg.database"))
        .expect("a warning for vars.pg.database");
    assert_eq!(database["code"], "drplan::site::unused_var");
    assert_eq!(
        format!("{}:{}", database["line"], database["column"]),
        line_col("database: gocd")
    );

    // -q: only errors.
    let out = drplan(
        dir.path(),
        &["-q", "validate", "gocd/failover", "--site", "site.yaml"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out), "");
}

#[test]
fn a_site_may_leave_out_what_a_plan_reads_with_a_default_but_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let example = fs::read_to_string(repo().join("plans/sites/example.yaml")).unwrap();
    // pg_ctl (the default): no control, cluster, config_file; GoCD's unit is `go-server`.
    let plain: String = example
        .lines()
        .filter(|l| {
            ![
                "    control:",
                "    cluster:",
                "    config_file:",
                "    service:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(dir.path().join("plain.yaml"), &plain).unwrap();
    for plan in ["gocd/failover", "gocd/failback", "gocd/switchover"] {
        let out = drplan(dir.path(), &["plan", plan, "--site", "plain.yaml"]);
        assert_eq!(out.status.code(), Some(0), "{plan}: {}", text(&out));
        let preview = text(&out);
        assert!(preview.contains("control: pg_ctl,"), "{plan}: {preview}");
        assert!(preview.contains("unit: go-server"), "{plan}: {preview}");
    }
    // Without `vars.go` at all, `vars.go.service | default(…)` cannot be read either.
    let no_go: String = plain
        .split("  go:\n")
        .next()
        .map(|head| format!("{head}secrets:{}", plain.split("secrets:").nth(1).unwrap()))
        .unwrap();
    fs::write(dir.path().join("no-go.yaml"), no_go).unwrap();
    let out = drplan(
        dir.path(),
        &["validate", "gocd/failover", "--site", "no-go.yaml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("undefined variable `vars.go`: site `example` does not define it"),
        "{}",
        text(&out)
    );
}

#[test]
fn parameters_an_action_refuses_stop_apply_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let example = fs::read_to_string(repo().join("plans/sites/example.yaml")).unwrap();
    for (site, says) in [
        (
            example.replace("control: pg_ctlcluster", "control: pg_ctlclustr"),
            "unknown variant `pg_ctlclustr`, expected `pg_ctl` or `pg_ctlcluster`",
        ),
        (
            example.replace("    cluster: 15/main\n", ""),
            "`control: pg_ctlcluster` needs `cluster: VERSION/NAME`",
        ),
    ] {
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        let out = drplan(
            dir.path(),
            &["apply", "gocd/failover", "--site", "site.yaml", "--yes"],
        );
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains("nothing was started"), "{said}");
        assert!(
            said.contains(&format!(
                "step `stop-pg-primary`: invalid `with:` for pg.stop: {says}"
            )),
            "{said}"
        );
        // The rollback hook (pg.start) is checked too.
        assert!(
            said.contains("rollback of step `stop-pg-primary`: invalid `with:` for pg.start"),
            "{said}"
        );
        let runs = dir.path().join(".drplan/runs");
        assert!(
            !runs.exists() || fs::read_dir(&runs).unwrap().next().is_none(),
            "a run directory was made"
        );
    }
}

#[test]
fn a_run_reads_only_the_passwords_of_the_postgresql_users_its_actions_log_in_as() {
    // The readiness checks log in as `vars.pg.user` (postgres) only: the replication user's
    // password may be unset, as on a monitoring host that never runs a failback.
    let dir = tempfile::tempdir().unwrap();
    let roles = ["pg_primary", "pg_standby", "go_primary", "go_standby"];
    let site = common::unreachable_site(dir.path(), &roles);
    let mut yaml = fs::read_to_string(&site).unwrap();
    yaml.push_str(
        "secrets:\n  pg_password: { env: DRPLAN_T_PG }\n  replication_password: { env: DRPLAN_T_REPL }\npostgres:\n  passwords: { postgres: pg_password, replicator: replication_password }\n",
    );
    fs::write(&site, yaml).unwrap();
    let check = |pg: Option<&str>| {
        let mut c = common::drplan();
        c.current_dir(dir.path()).env_remove("DRPLAN_T_REPL").args([
            "check",
            "--site",
            "site.yaml",
        ]);
        match pg {
            Some(pw) => c.env("DRPLAN_T_PG", pw),
            None => c.env_remove("DRPLAN_T_PG"),
        };
        c.output().expect("run drplan")
    };
    let out = check(Some("pw"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("1 ok, 0 warnings, 13 critical"),
        "the checks ran: {}",
        text(&out)
    );
    let out = check(None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("secret `pg_password`: environment variable DRPLAN_T_PG is not set"),
        "{}",
        text(&out)
    );
}
