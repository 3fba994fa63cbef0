//! The serde model of plans and sites: plain data, no I/O.
//!
//! This model is the single source of truth for the file formats: the JSON Schemas in
//! `schemas/` are generated from it, and the loader checks documents against those schemas
//! before deserializing them here. Nothing in this module reads files or validates.
//!
//! `bound.rs` holds what the checker makes of them (`ValidPlan`, keeping its `load::Document`
//! for positions; `BoundPlan`, a valid plan with a site's hosts and values) and `dag.rs` the
//! steps' dependencies: plain data the graph, the executor and the actions read without
//! knowing the checker.

mod bound;
mod dag;
pub mod duration;
mod site;

pub use bound::{BoundPlan, HostBinding, ValidPlan};
pub use dag::Dag;
pub use duration::Duration;
pub use site::{
    BecomeMethod, HostSpec, PostgresSpec, SecretSource, ServiceCommands, Site, SshSpec, SslMode,
    TransportKind,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Free-form values: `with:` parameters, variables, results.
pub type Map = serde_json::Map<String, serde_json::Value>;

/// The only format version so far; a later one will be a new variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Version;

impl JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "const": 1, "description": "Format version; always 1." })
    }
}

impl TryFrom<u8> for Version {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        if v == 1 {
            Ok(Version)
        } else {
            Err(format!(
                "unsupported version {v}; this drplan reads version 1"
            ))
        }
    }
}

impl From<Version> for u8 {
    fn from(_: Version) -> u8 {
        1
    }
}

/// A plan: *what* to do, as a DAG of typed steps over roles.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drplan plan")]
pub struct Plan {
    /// Format version; always 1.
    pub version: Version,
    /// Short name of the plan, shown in previews and run listings.
    pub name: String,
    /// What the plan does, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every role the plan uses; a site must bind each one to a host.
    pub roles: Vec<String>,
    /// Typed knobs with defaults; a site may override them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamSpec>,
    /// Read-only checks that must all pass before step one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preconditions: Vec<Check>,
    /// The steps; order in the file does not matter, `needs` does.
    pub steps: Vec<Step>,
}

/// The type of a plan parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Duration,
    List,
    Map,
}

/// A typed plan parameter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The value's type; a site's override must have it too.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Used when the site does not set the parameter; without one, the site must.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The only values the parameter may take (its default and a site's override alike):
    /// a parameter that picks one of a fixed set of behaviours must not let a typo pick none.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub allowed: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ParamSpec {
    /// Is `value` one the parameter allows (any value, without an `enum`)?
    pub fn allows(&self, value: &serde_json::Value) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(value))
    }

    /// The allowed values as an operator writes them (`basebackup, rewind`).
    pub fn allowed_list(&self) -> String {
        self.allowed
            .iter()
            .flatten()
            .map(shown)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A parameter value as written in YAML: strings bare, the rest as JSON.
pub fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A read-only check with an expectation over its result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What the check guards, in words (shown when it fails).
    pub name: String,
    /// The role whose host runs the check (or `local`).
    pub on: String,
    /// A check action from the catalogue (`pg.status`, `file.stat`, …).
    pub check: String,
    /// The check's parameters.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub with: Map,
    /// An expression over `result` (and `params`, `vars`, …) that must be true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// How much a failure of this check weighs in `drplan check`'s readiness report:
    /// `warning` (exit 1) or `critical` (exit 2, the default). A plan's preconditions stop the
    /// run when they fail, whatever their severity.
    #[serde(default, skip_serializing_if = "is_default")]
    pub severity: Severity,
}

/// How much a failing check weighs in a readiness report (`drplan check`): `warning`, worth
/// a look but a failover would still work (exit 1); `critical`, a failover would be unsafe or
/// impossible (exit 2).
// No doc comments on the variants: schemars would then describe them as a `oneOf`, which the
// loader can only report as "needs exactly one alternative" instead of naming the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    #[default]
    Critical,
}

/// What to do when a step's host cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreachable {
    #[default]
    Fail,
    Skip,
}

/// The compensation run when a run is rolled back after its step succeeded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The compensating action.
    pub action: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub with: Map,
    /// Another role to run it on (default: the step's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// The OS user it runs as (default: the step's).
    #[serde(default, rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// One step of the DAG.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique in the plan; used by `needs`, `resume --retry`, and `steps.<id>.result`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// A human sentence shown in preview and progress (default: the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role whose host runs the step, or `local` (the controller).
    pub on: String,
    /// A typed action from the catalogue; its `with:` is checked against its own schema.
    pub action: String,
    /// The action's parameters; strings may hold minijinja templates.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub with: Map,
    /// Step ids this step waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// An expression; false skips the step (journaled as skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Checks evaluated right before the step; a failing one stops it before it changes anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preconditions: Vec<Check>,
    /// The compensation run when the run is rolled back after this step succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Give up on one attempt after this long (`500ms`, `30s`, `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Extra attempts after a failure (at most 100: a step that needs more is a wait, and
    /// `wait.until` says so with a deadline).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(max = 100))]
    pub retries: u32,
    /// Pause between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Duration>,
    /// Safe to re-run if a crash left it in doubt (default: what the action says of itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Once this step has succeeded, rollback of the run stops here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub point_of_no_return: bool,
    /// `fail` (default) or `skip` when the host cannot be reached.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_unreachable: OnUnreachable,
    /// The OS user the action runs as on the host.
    #[serde(default, rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Step {
    /// The sentence shown for the step: its name, else its id.
    pub fn title(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The role name that always means the controller itself.
pub const LOCAL_ROLE: &str = "local";
