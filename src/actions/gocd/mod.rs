//! `gocd.*`: GoCD's business-continuity switches and gauges.
//!
//! GoCD reads its mode from the `go.server.mode` system property (`-Dgo.server.mode=`), set
//! where the install reads JVM options: `/etc/default/go-server`'s `GOCD_SERVER_JVM_OPTIONS`
//! (old packages), `wrapper-properties.conf` (packages since 19.6) or a container's
//! `GOCD_SERVER_JVM_OPTS`. The business-continuity add-on (GoCD ≤ 22.3) kept a standby's
//! config files and external plugins in sync; current GoCD has no add-on, so drplan compares
//! (`gocd.compare_files`) and copies (`gocd.sync_config`) those files itself.
//!
//! Parameters and declarations are here; the code in `run.rs` (mode, readiness, dashboard,
//! db.properties, maintenance mode), `files.rs` (compare and sync) and `jvm_options.rs`.

mod files;
mod jvm_options;
mod run;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::plan::Duration;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// `primary` or `standby`.
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

/// Look at a GoCD server once: is it healthy, and does it serve agents?
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GocdServerStatusParams {
    /// The server's base URL, e.g. `http://10.231.0.14:8153`.
    pub url: String,
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
    /// Without `username`: the business-continuity token, as GoCD's
    /// `business-continuity-token` file holds it (`user=password` or `user:password`). Use a
    /// site secret (`"{{ secrets.NAME | default(none) }}"`): like `password`, it reaches curl
    /// on stdin, never in its arguments. None (or empty): no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
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
    /// `true` turns maintenance mode on, `false` off.
    pub enabled: bool,
    /// A GoCD administrator's API access token. Use a site secret
    /// (`"{{ secrets.NAME | default(none) }}"`): it reaches curl on stdin, never its
    /// arguments, and is masked in results, logs and the journal. Required to call the API;
    /// none (or empty) fails the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[
    &CompareFiles,
    &DbProperties,
    &MaintenanceMode,
    &ServerStatus,
    &SetMode,
    &SyncConfig,
    &SyncStatus,
    &WaitReady,
];

struct CompareFiles;

impl Action for CompareFiles {
    type Params = GocdFilesParams;
    const ABOUT: About = About {
        name: "gocd.compare_files",
        kind: Check,
        idempotent: true,
        summary: "Compare this GoCD server's config files and external plugins with another's: md5 and \
            last change per file (never db.properties)",
        result: "`from` (the other server's role), `in_sync`, `differ` (the paths that differ), \
            `compared` (how many files), `files` (per path: `same`, and the `primary`'s (`from`'s) and \
            `standby`'s (this host's) `md5` and `changed_at`), `note`.",
        needs: "`sh`, `find`, `md5sum` on both servers, as users who may read the config and plugins \
            directories.",
        role_params: &["from"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdFilesParams) -> Result<Value, StepFailure> {
        files::compare(ctx, p).await
    }
}

struct DbProperties;

impl Action for DbProperties {
    type Params = GocdDbPropertiesParams;
    const ABOUT: About = About {
        name: "gocd.db_properties",
        kind: Check,
        idempotent: true,
        summary: "Read a GoCD server's db.properties: the PostgreSQL host, port, database and user it uses",
        result: "`exists`, `path`; when it exists: `url`, `host`, `port`, `database`, `user` (never the \
            password).",
        needs: "`sh`, `stat`, `md5sum`, `cat`; read rights on the file.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdDbPropertiesParams) -> Result<Value, StepFailure> {
        run::db_properties(ctx, p).await
    }
}

struct MaintenanceMode;

impl Action for MaintenanceMode {
    type Params = GocdMaintenanceParams;
    const ABOUT: About = About {
        name: "gocd.maintenance_mode",
        kind: Change,
        idempotent: true,
        summary: "Turn GoCD's maintenance mode on or off through its API (bearer token from a file)",
        result: "`maintenance_mode` (as asked), `status` (the API's HTTP status), `note`.",
        needs: "`curl` on the step's host; the token file readable by the step's user.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdMaintenanceParams) -> Result<Value, StepFailure> {
        run::maintenance_mode(ctx, p).await
    }
}

struct SetMode;

impl Action for SetMode {
    type Params = GocdSetModeParams;
    const ABOUT: About = About {
        name: "gocd.set_mode",
        kind: Change,
        idempotent: true,
        summary: "Set -Dgo.server.mode= where the GoCD server reads it (defaults file, wrapper properties \
            or container env)",
        result: "`changed`, `mode`, `was` (the mode found before, or null), `file`. It takes effect at \
            the server's next start.",
        needs: "`sh`, `stat`, `md5sum`, `cat`, `mktemp`, `mv`; write rights on the file.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdSetModeParams) -> Result<Value, StepFailure> {
        run::set_mode(ctx, p).await
    }
}

struct SyncConfig;

impl Action for SyncConfig {
    type Params = GocdFilesParams;
    const ABOUT: About = About {
        name: "gocd.sync_config",
        kind: Change,
        idempotent: true,
        summary: "Copy what changed of another GoCD server's config files and external plugins here, \
            atomically (never db.properties)",
        result: "`changed`, `copied`, `permissions` (files whose mode or owner was set), `deleted` \
            (plugins the other server no longer has), `note`.",
        needs: "`find`, `md5sum`, `tar`, `dd` on both servers, `bash` here; run as root (or the `go` \
            user) to write the config and keep owners.",
        role_params: &["from"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdFilesParams) -> Result<Value, StepFailure> {
        files::sync(ctx, p).await
    }
}

struct SyncStatus;

impl Action for SyncStatus {
    type Params = GocdSyncStatusParams;
    const ABOUT: About = About {
        name: "gocd.sync_status",
        kind: Check,
        idempotent: true,
        summary: "Read a standby GoCD server's business-continuity dashboard where there is one: is it in \
            sync?",
        result: "`present: false` (with `reason`, `in_sync: null`) without the add-on; otherwise \
            `present: true`, `in_sync`, `setup_status`, `sync_errors`, `primary_error`, `files` \
            (each file's md5 on both), `plugins_in_sync`, `plugins`, `sync_gap_s`.",
        needs: "`curl` on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdSyncStatusParams) -> Result<Value, StepFailure> {
        run::sync_status(ctx, p).await
    }
}

struct ServerStatus;

impl Action for ServerStatus {
    type Params = GocdServerStatusParams;
    const ABOUT: About = About {
        name: "gocd.server_status",
        kind: Check,
        idempotent: true,
        summary: "Look at a GoCD server once: healthy or not, active (serving agents) or passive (a standby)",
        result: "`url`, `healthy`, `active` (null unless healthy), `mode` (`active`, `passive` or `down`), \
            `agent_request_status`; when not healthy, `reason` (what it answered, or that nothing did).",
        needs: "`curl` on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdServerStatusParams) -> Result<Value, StepFailure> {
        run::server_status(ctx, p).await
    }
}

struct WaitReady;

impl Action for WaitReady {
    type Params = GocdWaitReadyParams;
    const ABOUT: About = About {
        name: "gocd.wait_ready",
        kind: Check,
        idempotent: true,
        summary: "Poll a GoCD server until it is healthy and active as a primary (or passive as a standby)",
        result: "`healthy: true`, `active`, `agent_request_status`, `attempts`, `waited_ms`. Fails with a \
            timeout showing what the server last said.",
        needs: "`curl` on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: GocdWaitReadyParams) -> Result<Value, StepFailure> {
        run::wait_ready(ctx, p).await
    }
}
