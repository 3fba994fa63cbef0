//! `gocd.set_mode` and `gocd.sync_status`: GoCD's business-continuity switches.
//!
//! GoCD reads its mode from the `go.server.mode` system property (`-Dgo.server.mode=`),
//! set in `/etc/default/go-server`'s `GOCD_SERVER_JVM_OPTIONS` (or wrapper properties).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The mode a GoCD server starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GocdMode {
    Primary,
    Standby,
}

/// Set the mode a GoCD server starts in (takes effect at its next start).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdSetModeParams {
    pub mode: GocdMode,
    /// The file holding `GOCD_SERVER_JVM_OPTIONS` (default `/etc/default/go-server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults_file: Option<String>,
    /// For standby mode: the primary's URL (`-Dbc.primary.url=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_url: Option<String>,
}

/// Read a standby's `/go/add-on/business-continuity/admin/dashboard.json`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdSyncStatusParams {
    /// The standby server's base URL, e.g. `http://10.231.0.15:8153`.
    pub url: String,
    /// User for HTTP Basic authentication (GoCD answers 401 without it); with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Its password (use a secret); sent to curl on stdin, never in its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}
