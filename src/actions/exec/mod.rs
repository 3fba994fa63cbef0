//! `exec`, `sleep`, `manual.approve` and `note`: the generic actions. Their parameters and
//! declarations are here; their code is in `run.rs`.

mod run;
mod timer;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::plan::Duration;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;
use std::collections::BTreeMap;

/// Run a program. Give exactly one of `argv` and `script`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["argv"] }, { "required": ["script"] }]))]
pub struct ExecParams {
    /// Program and arguments, passed as they are (no shell).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "argv"
    )]
    pub argv: Option<Vec<String>>,
    /// A script run by `/bin/sh -c`; every `{{ … }}` in it must end in `| shell_quote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Extra environment variables.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "env"
    )]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Skip the command when this path exists (makes it safe to re-run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
}

/// Wait for a fixed time.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// How long.
    pub duration: Duration,
}

/// Ask the operator before going on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualApproveParams {
    /// The question shown to the operator.
    pub prompt: String,
}

/// Say something to whoever reads the run's output (what a plan leaves, what to do next).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    /// The text; it is the step's result (`note`) and is printed with the step's end.
    pub message: String,
}

/// Arguments and environment values are text. A parameter that is one whole `{{ expr }}`
/// keeps the expression's type (`"{{ params.count }}"` renders the number 3), so numbers and
/// booleans are taken as the text they print as, like a shell would pass them.
fn text<E: de::Error>(v: Value) -> Result<String, E> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(E::custom(format!(
            "expected text (or a number), found {other}"
        ))),
    }
}

fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let items: Option<Vec<Value>> = Option::deserialize(d)?;
    items
        .map(|items| items.into_iter().map(text).collect())
        .transpose()
}

fn env<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let vars: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
    vars.into_iter().map(|(k, v)| Ok((k, text(v)?))).collect()
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[&Exec, &ManualApprove, &Note, &Sleep];

struct Exec;

impl Action for Exec {
    type Params = ExecParams;
    const ABOUT: About = About {
        name: "exec",
        kind: Change,
        idempotent: false,
        summary: "Run a program (argv) or a /bin/sh script",
        result: "`changed: true`, `status` (the exit status, 0), the tail of `stdout` and `stderr` (64 \
            KiB each); with `creates` when that path exists: `skipped: true`, `changed: false`, \
            `reason`. A non-zero exit fails the step, naming the command and the end of its stderr.",
        needs: "The program (`/bin/sh` for a `script`), run as the step's `become` user.",
        script_params: &["script"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ExecParams) -> Result<Value, StepFailure> {
        run::exec(ctx, p).await
    }
}

struct ManualApprove;

impl Action for ManualApprove {
    type Params = ManualApproveParams;
    const ABOUT: About = About {
        name: "manual.approve",
        kind: Check,
        idempotent: true,
        summary: "Ask the operator to confirm before going on",
        result: "`approved: true` and `by` (`--approve` or `terminal`); refused when the operator says \
            no, or when there is no terminal and no `--approve STEP`.",
        needs: "Nothing on a host: a terminal on the controller, or `--approve STEP`.",
        asks_operator: true,
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ManualApproveParams) -> Result<Value, StepFailure> {
        run::approve(ctx, p).await
    }
}

struct Note;

impl Action for Note {
    type Params = NoteParams;
    const ABOUT: About = About {
        name: "note",
        kind: Check,
        idempotent: true,
        summary: "Print a message with the step's end (what the run leaves, what comes next)",
        result: "`note`: the message, which the run's output prints with the step's end.",
        needs: "Nothing.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: NoteParams) -> Result<Value, StepFailure> {
        run::note(ctx, p).await
    }
}

struct Sleep;

impl Action for Sleep {
    type Params = SleepParams;
    const ABOUT: About = About {
        name: "sleep",
        kind: Change,
        idempotent: true,
        summary: "Wait for a fixed time",
        result: "`changed: false`, `slept_ms`. Fails with a timeout when the step's `timeout` ends first.",
        needs: "Nothing: it waits on the controller.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: SleepParams) -> Result<Value, StepFailure> {
        run::sleep(ctx, p).await
    }
}
