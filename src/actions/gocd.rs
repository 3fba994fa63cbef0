//! `gocd.*`: GoCD's business-continuity switches and gauges.
//!
//! GoCD reads its mode from the `go.server.mode` system property (`-Dgo.server.mode=`), set
//! where the install reads JVM options: `/etc/default/go-server`'s `GOCD_SERVER_JVM_OPTIONS`
//! (old packages), `wrapper-properties.conf` (packages since 19.6) or a container's
//! `GOCD_SERVER_JVM_OPTS`. The business-continuity add-on (GoCD ≤ 22.3) kept a standby's
//! config files and external plugins in sync; current GoCD has no add-on, so drplan compares
//! (`gocd.compare_files`) and copies (`gocd.sync_config`) those files itself.

use crate::plan::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The mode a GoCD server starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GocdMode {
    Primary,
    Standby,
}

/// Where a GoCD server reads its JVM options (and so its mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GocdLayout {
    /// `GOCD_SERVER_JVM_OPTIONS` in `/etc/default/go-server` (packages before 19.6).
    Defaults,
    /// `wrapper.java.additional.N=` lines of `wrapper-properties.conf` (packages since 19.6).
    WrapperProperties,
    /// `GOCD_SERVER_JVM_OPTS` in a container's environment file.
    ContainerEnv,
}

/// Set the mode a GoCD server starts in (takes effect at its next start).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdSetModeParams {
    pub mode: GocdMode,
    /// Where the server reads its JVM options (default `defaults`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<GocdLayout>,
    /// That file. Empty or absent: `defaults_file` for `defaults`,
    /// `/usr/share/go-server/wrapper-config/wrapper-properties.conf` for `wrapper_properties`;
    /// `container_env` needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file holding `GOCD_SERVER_JVM_OPTIONS` (default `/etc/default/go-server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults_file: Option<String>,
    /// For standby mode: the primary's URL (`-Dbc.primary.url=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_url: Option<String>,
}

/// Wait until a GoCD server is healthy *and* active in the wanted mode.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdWaitReadyParams {
    /// The server's base URL, e.g. `http://10.231.0.15:8153`.
    pub url: String,
    /// `primary`: it must serve agents (a passive standby answers health with 200 but
    /// redirects agents' requests). `standby`: it must be that passive standby.
    pub mode: GocdMode,
    /// Give up after this long (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Pause between polls (default 200ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Read a standby's `/go/add-on/business-continuity/admin/dashboard.json`, where the add-on is.
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
    /// Without `username`: the business-continuity token file on this host (`user=password`
    /// or `user:password`, e.g. `/etc/go/business-continuity-token`); used when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// The largest gap between the primary's last config/plugin update and the standby's last
    /// successful sync that still counts as in sync (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sync_gap: Option<Duration>,
}

/// What must match between the GoCD servers: config files and external plugins.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdFilesParams {
    /// The role of the other GoCD server (the primary, for a standby's step).
    pub from: String,
    /// The config directory, the same path on both (default `/etc/go`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<String>,
    /// Config file names in it (default: `cruise-config.xml`, `cipher.aes`, `cipher`,
    /// `jetty.xml`, `go.feature.toggles`). `db.properties` is refused: each server has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// The external plugins directory, every file under it (default
    /// `/var/lib/go-server/plugins/external`; empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins_dir: Option<String>,
}

/// Read a GoCD server's `db.properties`: which PostgreSQL it uses.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdDbPropertiesParams {
    /// The file (default `/etc/go/db.properties`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Turn GoCD's maintenance mode on or off through its API.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GocdMaintenanceParams {
    /// The server's base URL, e.g. `http://10.231.0.14:8153`.
    pub url: String,
    pub enabled: bool,
    /// A file on this step's host holding an API access token of a GoCD administrator; it
    /// travels to curl on stdin, never in arguments, results or the journal.
    pub token_file: String,
}
