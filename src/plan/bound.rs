//! A plan as the checker leaves it (`ValidPlan`) and bound to a site (`BoundPlan`): plain
//! data the graph, the executor and the actions read. The checks that make them are in
//! `check`; nothing here validates.

use super::{Dag, HostSpec, LOCAL_ROLE, Map, Plan, Site, TransportKind};
use crate::load::Document;
use crate::redact::SENSITIVE;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A plan that passed every check: safe to bind to a site and build.
#[derive(Debug, Clone)]
pub struct ValidPlan {
    pub plan: Plan,
    pub doc: Document,
    pub dag: Dag,
    /// step id → index in `plan.steps`
    pub index: HashMap<String, usize>,
}

/// A role's host as the plan will use it.
#[derive(Debug, Clone)]
pub struct HostBinding {
    pub role: String,
    pub spec: HostSpec,
    /// The site's `vars` with the host's own deep-merged over them.
    pub vars: Map,
}

impl HostBinding {
    pub fn is_local(&self) -> bool {
        self.role == LOCAL_ROLE || self.spec.transport == Some(TransportKind::Local)
    }

    /// `address` or `user@address:port`, for previews and messages.
    pub fn describe(&self) -> String {
        if self.is_local() {
            return "local".into();
        }
        let user = self
            .spec
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self
            .spec
            .port
            .filter(|p| *p != 22)
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!("{user}{}{port}", self.spec.address)
    }
}

/// A plan bound to a site: what will run where, with which values.
#[derive(Debug, Clone)]
pub struct BoundPlan {
    pub valid: ValidPlan,
    pub site: Site,
    pub site_doc: Document,
    /// The directory of the site file: `ssh:` paths are relative to it.
    pub site_dir: PathBuf,
    /// Every parameter's value: the site's, else the plan's default.
    pub params: Map,
    /// Role → host, plus `local`.
    pub hosts: BTreeMap<String, HostBinding>,
}

impl BoundPlan {
    /// The template context; secrets are `(sensitive)` unless their values are given.
    pub fn context(&self, secrets: Option<&Map>) -> Value {
        let hosts: Map = self
            .hosts
            .iter()
            .map(|(role, h)| {
                let v = json!({
                    "address": h.spec.address,
                    "port": h.spec.port.unwrap_or(22),
                    "user": h.spec.user,
                    "vars": h.vars,
                    "fence": h.spec.fence,
                });
                (role.clone(), v)
            })
            .collect();
        let secrets = match secrets {
            Some(s) => s.clone(),
            None => self
                .site
                .secrets
                .keys()
                .map(|k| (k.clone(), json!(SENSITIVE)))
                .collect(),
        };
        json!({ "params": self.params, "vars": self.site.vars, "hosts": hosts, "secrets": secrets, "steps": {} })
    }
}
