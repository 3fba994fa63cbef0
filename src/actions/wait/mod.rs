//! `wait.until`: poll a check until its expectation holds.

use crate::plan::{Duration, Map};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
