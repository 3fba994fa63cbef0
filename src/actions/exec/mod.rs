//! `exec`, `sleep` and `manual.approve`: the generic actions.

use crate::plan::Duration;
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
