//! A bound plan with hosts, for driving actions through `drplan::actions::ActionRunner`
//! exactly as the executor does: a site written to a temp dir, loaded, checked and bound by
//! the real pipeline, and a runner over it.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use drplan::actions::{ActionRunner, Approvals};
use drplan::check;
use drplan::plan::BoundPlan;
use drplan::step::{Call, StepFailure, StepRunner};
use serde_json::Value;

pub(crate) struct Rig {
    pub dir: tempfile::TempDir,
    pub bound: BoundPlan,
    pub runner: ActionRunner,
    pub context: Value,
}

impl Rig {
    /// `hosts_yaml`: the site's `hosts:` mapping (indented by two spaces), binding `roles`.
    pub(crate) fn new(roles: &[&str], hosts_yaml: &str) -> Self {
        Self::with_approvals(roles, hosts_yaml, Approvals::new(Vec::new(), false))
    }

    pub(crate) fn with_approvals(roles: &[&str], hosts_yaml: &str, approvals: Approvals) -> Self {
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
        let runner = ActionRunner::new(
            &bound,
            &dir.path().join("ctl"),
            approvals,
            Default::default(),
        );
        let context = bound.context(None);
        Self {
            dir,
            bound,
            runner,
            context,
        }
    }

    pub(crate) async fn run(
        &self,
        role: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, StepFailure> {
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

    pub(crate) async fn run_as(
        &self,
        role: &str,
        become_user: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, StepFailure> {
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

    pub(crate) async fn run_with(
        &self,
        role: &str,
        become_user: Option<&str>,
        step_id: &str,
        action: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, StepFailure> {
        let call = Call {
            step_id: step_id.to_owned(),
            action: action.to_owned(),
            params,
            role: role.to_owned(),
            become_user: become_user.map(str::to_owned),
            timeout,
            context: std::sync::Arc::new(self.context.clone()),
            commands: None,
        };
        self.runner.call(call).await
    }

    /// Run and insist on success, showing the whole error otherwise.
    pub(crate) async fn ok(&self, role: &str, action: &str, params: Value) -> Value {
        match self.run(role, action, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{action} {params} failed: {e:#?}"),
        }
    }

    pub(crate) async fn ok_as(&self, role: &str, user: &str, action: &str, params: Value) -> Value {
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
pub(crate) fn changed(result: &Value) -> bool {
    result["changed"]
        .as_bool()
        .unwrap_or_else(|| panic!("no `changed` in {result}"))
}
