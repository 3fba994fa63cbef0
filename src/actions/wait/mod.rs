//! `wait.until`: poll a check until its expectation holds. Parameters and declaration are
//! here; the code in `run.rs`.

mod run;

use super::action::ActionKind::Check;
use super::action::{About, Action, Registered, RunsCheck};
use super::host::Ctx;
use crate::plan::{Duration, Map};
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Run `check` every `interval` until `expect` holds, or fail after `timeout`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitUntilParams {
    /// A check action (`pg.status`, `http.get`, …).
    pub check: String,
    /// The check's parameters.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub with: Map,
    /// An expression over `result` that ends the wait when true.
    pub expect: String,
    /// Give up after this long (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Pause between polls (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[&WaitUntil];

struct WaitUntil;

impl Action for WaitUntil {
    type Params = WaitUntilParams;
    const ABOUT: About = About {
        name: "wait.until",
        kind: Check,
        idempotent: true,
        summary: "Run a check repeatedly until its expectation holds",
        result: "`attempts`, `waited_ms`, `result` (the check's last result). Fails with a timeout \
            showing the last result or error.",
        needs: "What its check needs.",
        runs_check: Some(RunsCheck {
            check: "check",
            with: "with",
            expect: "expect",
        }),
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: WaitUntilParams) -> Result<Value, StepFailure> {
        run::until(ctx, p).await
    }
}
