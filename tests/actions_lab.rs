//! The actions the shipped GoCD plans rely on, against the DR lab's real hosts over SSH, with
//! the lab's own site file and the failover plan bound by the real pipeline: the plans'
//! preconditions (PostgreSQL replication, GoCD config sync, VIP ownership), services through
//! the site's commands, and GoCD's mode file. The lab is built by `tests/lab/up` and always
//! removed by `tests/lab/down`. Needs root and the lab's packages: fails (never skips) without.

mod common;

use common::lab::{Lab, lab, repo};

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use drplan::actions::{ActionRunner, Approvals};
use drplan::check;
use drplan::step::{Call, StepRunner};
use serde_json::{Value, json};

/// The test thread inside the controller's namespace (where drplan runs in the lab).
struct Inside(File);

impl Inside {
    fn enter(ns: &str) -> Self {
        let original = File::open("/proc/thread-self/ns/net").unwrap();
        let target = File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns changes only this thread's network namespace.
        assert_eq!(
            unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        Self(original)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        // SAFETY: as above, back to where the thread started.
        unsafe {
            libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET);
        }
    }
}

fn env_var(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("lab.env")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}=")))
        .unwrap();
    line[name.len() + 1..].trim_matches('\'').to_owned()
}

struct Site {
    runner: ActionRunner,
    context: Value,
}

impl Site {
    /// Render `with` as the executor would, then run the action.
    async fn run(&self, role: &str, action: &str, with: Value) -> Value {
        let params =
            drplan::template::render_value(drplan::template::shared(), &with, &self.context)
                .unwrap();
        let call = Call {
            step_id: "lab".to_owned(),
            action: action.to_owned(),
            params,
            role: role.to_owned(),
            become_user: None,
            timeout: Some(std::time::Duration::from_secs(120)),
            context: std::sync::Arc::new(self.context.clone()),
            commands: None,
        };
        match self.runner.call(call).await {
            Ok(v) => v,
            Err(e) => panic!("{action} on {role} failed: {e:#?}"),
        }
    }
}

#[tokio::test]
async fn the_plans_checks_and_actions_work_on_the_lab() {
    let dir = std::env::temp_dir().join(format!("drplan-alab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _lab = Lab(dir.clone());
    assert!(lab("up", &dir), "tests/lab/up failed (output above)");

    let valid = drplan::load::read(&repo().join("plans/gocd/failover.yaml"))
        .and_then(check::plan)
        .unwrap();
    let site_doc = drplan::load::read(&dir.join("site.yaml")).unwrap();
    let bound = check::bind(valid, site_doc).unwrap();
    let context = bound.context(None);
    let site = Site {
        runner: ActionRunner::new(
            &bound,
            &dir.join("ctl"),
            Approvals::new(vec![], false),
            Default::default(),
        ),
        context,
    };
    let _ctl = Inside::enter(&env_var(&dir, "LAB_NS_CTL"));
    let pg = json!({ "port": "{{ vars.pg.port }}", "user": "{{ vars.pg.user }}", "bin_dir": "{{ vars.pg.bin_dir }}" });

    // The failover plan's precondition, as a wait.
    let r = site
        .run("pg_standby", "wait.until", json!({
            "check": "pg.status", "with": pg, "interval": "200ms", "timeout": "60s",
            "expect": "result.reachable and result.in_recovery and result.streaming and result.replay_lag_bytes <= 16777216",
        }))
        .await;
    assert_eq!(r["result"]["timeline"], 1);
    let primary = site.run("pg_primary", "pg.status", pg.clone()).await;
    assert_eq!(primary["in_recovery"], false);
    assert_eq!(
        primary["replicas"][0]["client_addr"],
        env_var(&dir, "LAB_ADDR_PG2")
    );
    // The fencing check, from the standby's host about the primary's address.
    let mut fence = pg.clone();
    fence["host"] = json!("{{ hosts.pg_primary.address }}");
    let seen = site.run("pg_standby", "pg.status", fence).await;
    assert_eq!(
        (seen["reachable"].clone(), seen["in_recovery"].clone()),
        (json!(true), json!(false))
    );

    // The switchover plan's config-sync precondition.
    let sync = json!({ "check": "gocd.sync_status", "with": { "url": "http://{{ hosts.go_standby.address }}:{{ vars.go.port }}" },
                       "expect": "result.in_sync", "interval": "500ms", "timeout": "60s" });
    let r = site.run("go_standby", "wait.until", sync).await;
    assert_eq!(
        r["result"]["files"]["CRUISE_CONFIG_XML"]["primary"],
        r["result"]["files"]["CRUISE_CONFIG_XML"]["standby"]
    );

    let vip =
        json!({ "address": "{{ vars.vip.address }}", "interface": "{{ vars.vip.interface }}" });
    assert_eq!(
        site.run("go_primary", "vip.owner", vip.clone()).await,
        json!({ "held": true, "answered_elsewhere": false })
    );
    assert_eq!(
        site.run("go_standby", "vip.owner", vip).await,
        json!({ "held": false, "answered_elsewhere": true })
    );

    let go = json!({ "unit": "go-server" });
    assert_eq!(
        site.run("go_standby", "service.status", go.clone()).await["active"],
        true
    );
    let health = json!({ "url": "http://{{ vars.vip.address | split('/') | first }}:{{ vars.go.port }}/go/api/v1/health" });
    assert_eq!(
        site.run("local", "http.get", health).await["json"]["health"],
        "OK"
    );

    // Each GoCD host has its own db.properties (the reason file.sync excludes it).
    let db = json!({ "path": "{{ vars.go.config_dir }}/db.properties" });
    let (a, b) = (
        site.run("go_primary", "file.stat", db.clone()).await,
        site.run("go_standby", "file.stat", db).await,
    );
    assert_ne!(a["md5"], b["md5"]);

    // GO2 is already a standby of GO1: the plans' rollback values change nothing; a stop and
    // a start through the site's service commands do what they say.
    let standby = json!({ "mode": "standby", "defaults_file": "{{ vars.go.defaults_file }}",
                          "primary_url": "http://{{ hosts.go_primary.address }}:{{ vars.go.port }}" });
    let first = site
        .run("go_standby", "gocd.set_mode", standby.clone())
        .await;
    assert_eq!(
        site.run("go_standby", "gocd.set_mode", standby).await["changed"],
        false,
        "{first}"
    );
    assert_eq!(
        site.run("go_standby", "service.stop", go.clone()).await["changed"],
        true
    );
    assert_eq!(
        site.run("go_standby", "service.status", go.clone()).await["active"],
        false
    );
    assert_eq!(
        site.run("go_standby", "service.start", go.clone()).await["changed"],
        true
    );
    assert_eq!(
        site.run("go_standby", "service.start", go).await["changed"],
        false
    );

    site.runner.close().await;
}
