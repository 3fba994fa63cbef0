//! A bound plan with hosts, for driving actions through `drplan::actions::run` exactly as the
//! executor does: a site written to a temp dir, loaded, checked and bound by the real
//! pipeline, and a `Hosts` over it.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use drplan::actions::{self, ActionEnv, ActionError, Approvals, Hosts, Invocation};
use drplan::check::{self, BoundPlan};
use serde_json::Value;

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub bound: BoundPlan,
    pub hosts: Hosts,
    pub approvals: Approvals,
    pub context: Value,
}

impl Rig {
    /// `hosts_yaml`: the site's `hosts:` mapping (indented by two spaces), binding `roles`.
    pub fn new(roles: &[&str], hosts_yaml: &str) -> Self {
        Self::with_approvals(roles, hosts_yaml, Approvals::new(Vec::new(), false))
    }

    pub fn with_approvals(roles: &[&str], hosts_yaml: &str, approvals: Approvals) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("drplan-rig-")
            .tempdir()
            .expect("tempdir");
        let plan = format!(
            "version: 1\nname: rig\nroles: [{}]\nsteps:\n  - id: noop\n    on: local\n    action: sleep\n    with: {{ duration: 1ms }}\n",
            roles.join(", ")
        );
        let site = format!("version: 1\nsite: rig\nhosts:\n{hosts_yaml}\n");
        let plan_path = dir.path().join("plan.yaml");
        let site_path = dir.path().join("site.yaml");
        std::fs::write(&plan_path, plan).expect("write plan");
        std::fs::write(&site_path, site).expect("write site");
        let bound = bind(&plan_path, &site_path);
        let hosts = Hosts::new(&bound, &dir.path().join("ctl"));
        let context = bound.context(None);
        Self {
            dir,
            bound,
            hosts,
            approvals,
            context,
        }
    }

    pub async fn run(&self, role: &str, action: &str, params: Value) -> Result<Value, ActionError> {
        self.run_with(
            role,
            None,
            "step",
            action,
            params,
            Some(Duration::from_secs(120)),
        )
        .await
    }

    pub async fn run_as(
        &self,
        role: &str,
        become_user: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, ActionError> {
        self.run_with(
            role,
            Some(become_user),
            "step",
            action,
            params,
            Some(Duration::from_secs(180)),
        )
        .await
    }

    pub async fn run_with(
        &self,
        role: &str,
        become_user: Option<&str>,
        step_id: &str,
        action: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, ActionError> {
        let env = ActionEnv {
            hosts: &self.hosts,
            bound: &self.bound,
            approvals: &self.approvals,
            redact: &Default::default(),
        };
        let inv = Invocation {
            step_id,
            action,
            params: &params,
            role,
            become_user,
            timeout,
            context: &self.context,
            commands: None,
        };
        actions::run(&env, &inv).await
    }

    /// Run and insist on success, showing the whole error otherwise.
    pub async fn ok(&self, role: &str, action: &str, params: Value) -> Value {
        match self.run(role, action, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{action} {params} failed: {e:#?}"),
        }
    }

    pub async fn ok_as(&self, role: &str, user: &str, action: &str, params: Value) -> Value {
        match self.run_as(role, user, action, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{action} {params} as {user} failed: {e:#?}"),
        }
    }
}

fn bind(plan: &Path, site: &Path) -> BoundPlan {
    let valid = drplan::load::read(plan)
        .and_then(check::plan)
        .unwrap_or_else(|d| panic!("plan: {d:?}"));
    let site_doc = drplan::load::read(site).unwrap_or_else(|d| panic!("site: {d:?}"));
    check::bind(valid, site_doc).unwrap_or_else(|d| panic!("bind: {d:?}"))
}

/// `changed` of a result, which must be there.
pub fn changed(result: &Value) -> bool {
    result["changed"]
        .as_bool()
        .unwrap_or_else(|| panic!("no `changed` in {result}"))
}
