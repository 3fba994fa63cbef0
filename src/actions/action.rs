//! What an action is: its declaration ([`About`]: what the engine, the validator and the docs
//! know about it), its parameter type and the code that does it ([`Action`]), and the form
//! the registry keeps every action in ([`Registered`]).
//!
//! Everything that differs from one action to another is a property here, so that nothing
//! outside an action's family names it: validation, the schemas, the docs, the time budget,
//! the wait and the readiness report all read these properties.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::host::Ctx;
use crate::step::StepFailure;

/// How long an action may run when its step sets no `timeout`.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(600);
/// The budget of copies of whole clusters.
pub const LONG_BUDGET: Duration = Duration::from_secs(6 * 3600);

/// Whether an action only looks, or changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Read-only; usable in `preconditions`, `wait.until`, checks files and as a step.
    Check,
    /// Changes state on a host.
    Change,
}

/// What the engine, the validator and the docs know about one action.
#[derive(Debug)]
pub struct About {
    /// The name plans use (`pg.promote`).
    pub name: &'static str,
    pub kind: ActionKind,
    /// Safe to run again after a crash left it in doubt: it looks first and does nothing
    /// when the work is already done.
    pub idempotent: bool,
    /// One line: the schema's description and the docs' heading.
    pub summary: &'static str,
    /// What its `result` holds (for the docs).
    pub result: &'static str,
    /// What it needs on the host: programs, rights (for the docs).
    pub needs: &'static str,
    /// How long it may run when its step sets no `timeout`.
    pub budget: Duration,
    /// Parameters whose value names a role of the plan, checked like `on:` (`file.copy`'s
    /// `from`).
    pub role_params: &'static [&'static str],
    /// Parameters holding a `/bin/sh` script: every `{{ … }}` in them must end in
    /// `| shell_quote`.
    pub script_params: &'static [&'static str],
    /// The action runs another check itself (`wait.until`): which parameters say which.
    pub runs_check: Option<RunsCheck>,
    /// It asks the operator (`manual.approve`): neither a wait nor a readiness report can.
    pub asks_operator: bool,
    /// The parameters naming the PostgreSQL users it logs in as (`user`,
    /// `replication_user`): without a `password` of its own, it takes each one's password
    /// from the site's `postgres.passwords`, and a run resolves the secrets of those users only.
    pub login_params: &'static [&'static str],
}

/// The parameters of an action that runs a check itself.
#[derive(Debug, Clone, Copy)]
pub struct RunsCheck {
    /// Names the check (validated as a check).
    pub check: &'static str,
    /// The check's own `with:`.
    pub with: &'static str,
    /// An expression over the check's `result` (validated with `result` in scope).
    pub expect: &'static str,
}

impl About {
    /// The properties most actions leave as they are, for `..About::PLAIN` in a declaration:
    /// the default budget, no parameter naming a role or holding a script, no nested check,
    /// no operator. (Its name, kind, texts and idempotence are always given.)
    pub const PLAIN: About = About {
        name: "",
        kind: ActionKind::Check,
        idempotent: true,
        summary: "",
        result: "",
        needs: "",
        budget: DEFAULT_BUDGET,
        role_params: &[],
        script_params: &[],
        runs_check: None,
        asks_operator: false,
        login_params: &[],
    };

    /// Can a wait poll it (and a readiness report run it)? Read-only, neither asks the
    /// operator nor runs a check of its own.
    pub fn pollable(&self) -> bool {
        self.kind == ActionKind::Check && !self.asks_operator && self.runs_check.is_none()
    }
}

/// One action: its declaration, its parameter type and its code. Each family declares its
/// actions beside their parameter types (`pg/mod.rs`) and lists them in its `ACTIONS`.
pub(crate) trait Action: Sync + 'static {
    /// Its `with:`, with `#[serde(deny_unknown_fields)]`: the JSON Schema is generated from
    /// this type, so validation, the published schema, the docs and the code read one
    /// definition.
    type Params: DeserializeOwned + JsonSchema + Send;
    const ABOUT: About;
    /// Do it. Every command runs before `ctx.deadline`; the future is never dropped
    /// half-way (see `runner.rs`).
    fn run(
        ctx: &Ctx<'_>,
        params: Self::Params,
    ) -> impl Future<Output = Result<Value, StepFailure>> + Send;

    /// What the parameter type cannot say (`pg.start`'s `cluster` only with
    /// `pg_ctlcluster`): checked before a run starts wherever the values are known by then,
    /// and again before the action runs. The error says what is wrong, in words.
    fn check(_params: &Self::Params) -> Result<(), String> {
        Ok(())
    }
}

/// An action's running code, boxed.
pub(crate) type Running<'a> = Pin<Box<dyn Future<Output = Result<Value, StepFailure>> + Send + 'a>>;

/// An action as the registry holds it, whatever its parameter type.
pub(crate) trait Registered: Sync {
    fn about(&self) -> &'static About;
    /// The JSON Schema of its `with:` (a `$ref` into the generator's definitions).
    fn params_schema(&self, generator: &mut SchemaGenerator) -> Schema;
    /// Check `params` against its parameter type and its own rules (`Action::check`).
    fn check_params(&self, params: &Value) -> Result<(), String>;
    /// Check `params` as `check_params` does, then run it.
    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, params: &'a Value) -> Running<'a>;
}

impl<T: Action> Registered for T {
    fn about(&self) -> &'static About {
        const { &T::ABOUT }
    }

    fn params_schema(&self, generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T::Params>()
    }

    fn check_params(&self, params: &Value) -> Result<(), String> {
        typed::<T>(params).map(|_| ())
    }

    fn run<'a>(&'a self, ctx: &'a Ctx<'a>, params: &'a Value) -> Running<'a> {
        Box::pin(async move {
            let params = typed::<T>(params).map_err(|e| ctx.invalid(e))?;
            T::run(ctx, params).await
        })
    }
}

/// `params` as `T`'s parameter type, obeying `T`'s own rules.
fn typed<T: Action>(params: &Value) -> Result<T::Params, String> {
    let invalid = |e: String| format!("invalid `with:` for {}: {e}", T::ABOUT.name);
    let params = T::Params::deserialize(params).map_err(|e| invalid(e.to_string()))?;
    T::check(&params).map_err(invalid)?;
    Ok(params)
}
