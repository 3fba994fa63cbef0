//! `pg.*`: PostgreSQL ≥ 13 cluster control with `pg_ctl`, `pg_basebackup`, `pg_rewind`.
//!
//! Standbys are `standby.signal` + `primary_conninfo` (PostgreSQL 12 removed
//! `recovery.conf`; the server refuses to start with one). 13 is the oldest supported:
//! its `pg_rewind` recovers a target that was not shut down cleanly (an old primary lost
//! in a disaster) before rewinding it; `pg.rebuild_check` refuses anything older. These actions run as the cluster's OS user
//! (`become: postgres`): `pg_ctl` refuses to run as root.
//!
//! Parameters and declarations are here; the code in `run.rs` (start and stop, with pg_ctl
//! or Debian's pg_ctlcluster; promote),
//! `status.rs`, `copy.rs` (basebackup, rewind, make_standby), `check.rs` (controldata,
//! rebuild_check) and `aside.rs` (moved-aside copies), with `auth.rs` (passwords) and
//! `libpq.rs` (connection strings).

mod aside;
mod auth;
mod check;
mod copy;
mod libpq;
mod run;
mod status;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, LONG_BUDGET, Registered};
use super::host::Ctx;
use crate::plan::Duration;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A cluster's data directory on the step's host, and where its programs are: the first
/// parameters of most `pg.*` actions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PgDataDir {
    /// The cluster's data directory.
    pub data_dir: String,
    /// Directory of the PostgreSQL programs (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
}

/// The server a rebuild copies from (`pg.basebackup`) or rewinds from (`pg.rewind`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PgSource {
    /// The server to copy or rewind from (the primary).
    pub source_host: String,
    /// Its port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
}

/// Promote a standby and wait until it accepts writes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgPromoteParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    /// How long to wait for the end of recovery (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
}

/// How `pg.start` and `pg.stop` control a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PgControl {
    /// `pg_ctl -D DATA_DIR`, as the step's user (the cluster's OS user).
    #[default]
    PgCtl,
    /// Debian's `pg_ctlcluster VERSION NAME` (the `cluster`), run as root through the host's
    /// become method: it reads the cluster's configuration under `/etc/postgresql`, starts
    /// the server as the cluster's owner with its own log file, and where systemd runs it
    /// hands the start or stop to the cluster's unit (`postgresql@VERSION-NAME`).
    PgCtlcluster,
}

/// Start a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgStartParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    /// Server log file (`pg_ctl -l`); needed with `pg_ctl`, because a server started over SSH
    /// without one keeps the session's output open and hangs it. `pg_ctlcluster` uses the
    /// cluster's own log, and this one only names it in messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
    /// How long to wait until it accepts connections (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
    /// Extra server options, e.g. `["-c", "port=5433"]`, given to postgres through
    /// `pg_ctl -o` (each quoted; pg_ctl remembers them for a later restart). Not with
    /// `pg_ctlcluster`, which takes the cluster's configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// `pg_ctl` (default) or `pg_ctlcluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<PgControl>,
    /// With `pg_ctlcluster`: the cluster, `VERSION/NAME` (`15/main`). Empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The server's `postgresql.conf` when it is not in the data directory (Debian's
    /// `/etc/postgresql/15/main/postgresql.conf`): with `pg_ctl`, given to postgres as
    /// `-c config_file=…`; `pg_ctlcluster` reads the cluster's own. Empty: the data
    /// directory's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
}

/// How `pg_ctl stop` shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PgStopMode {
    Smart,
    #[default]
    Fast,
    Immediate,
}

/// Stop a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgStopParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    /// smart, fast (default) or immediate. pg_rewind needs a clean (not immediate) stop.
    /// (Where pg_ctlcluster hands the stop to systemd, the unit's own mode applies: fast.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PgStopMode>,
    /// `pg_ctl` (default) or `pg_ctlcluster`, as for `pg.start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<PgControl>,
    /// With `pg_ctlcluster`: the cluster, `VERSION/NAME` (`15/main`). Empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// How pg_basebackup gets the WAL needed for a consistent copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WalMethod {
    /// Collect WAL at the end (needs enough `wal_keep_size` on the source); GoCD's advice.
    #[default]
    Fetch,
    /// Stream WAL alongside the copy.
    Stream,
}

/// Rebuild a data directory from a running server; an existing one is moved aside first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgBasebackupParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    #[serde(flatten)]
    pub source: PgSource,
    /// Replication user on the source.
    pub user: String,
    /// fetch (default) or stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_method: Option<WalMethod>,
    /// Write standby.signal + primary_conninfo (as `user`, with the site's `sslmode`): the
    /// copy starts as a standby of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<bool>,
    /// Password for the replication user (use a secret; default: the site's
    /// `postgres.passwords` for `user`); sent through the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `application_name` in the primary_conninfo written with `standby`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// With `standby`: the replication slot it streams through, as `pg.make_standby`'s `slot`
    /// (created on the source before the copy, so it keeps the WAL the copy needs). Empty or
    /// absent: none, and a `primary_slot_name` copied from the source is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
}

/// Resynchronise a cleanly stopped old primary with the new primary.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgRewindParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    #[serde(flatten)]
    pub source: PgSource,
    /// A superuser (or a user granted pg_rewind's functions) on the source.
    pub user: String,
    /// Database to connect to (default `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Write standby.signal + primary_conninfo naming `replication_user` (not pg_rewind's
    /// `--write-recovery-conf`, which names the rewinding user and needs PostgreSQL 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<bool>,
    /// Password of `user` (use a secret; default: the site's `postgres.passwords`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The user the rewound standby streams as (default: `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_user: Option<String>,
    /// Its password (use a secret; default: the site's `postgres.passwords`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_password: Option<String>,
    /// `application_name` in the primary_conninfo written with `standby`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// With `standby`: the replication slot it streams through, as `pg.make_standby`'s `slot`
    /// (created as `replication_user`). Empty or absent: none, and a `primary_slot_name`
    /// copied from the source is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The cluster's `postgresql.conf` when it is not in the data directory (Debian's
    /// `/etc/postgresql/15/main/postgresql.conf`): pg_rewind needs it (`--config-file`,
    /// PostgreSQL 15 and later) to finish crash recovery of an old primary that was not shut
    /// down cleanly. Empty: the data directory's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
}

/// Turn a stopped cluster into a standby of `primary_host`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgMakeStandbyParams {
    /// The cluster's data directory.
    pub data_dir: String,
    /// The primary it follows.
    pub primary_host: String,
    /// Its port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_port: Option<u16>,
    /// Replication user.
    pub user: String,
    /// Replication password (use a secret; default: the site's `postgres.passwords` for
    /// `user`); written to `postgresql.auto.conf`, mode 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `application_name` the primary sees in pg_stat_replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// The physical replication slot it streams through (`primary_slot_name`), created on
    /// the primary (a replication connection as `user`) when it has none, and removed from
    /// this cluster's own `pg_replslot` (a standby must not keep a stale copy of the slot it
    /// uses: it would hold WAL back for ever). Empty or absent: no slot (any
    /// `primary_slot_name` is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Directory of psql, which creates the slot (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
}

/// Ask a server about itself with psql.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgStatusParams {
    /// Host or socket directory to connect to (default: the step host's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port to connect to (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User to connect as (default: the OS user psql runs as).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Database to connect to (default `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Directory of psql (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// Password (use a secret; default: the site's `postgres.passwords` for `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// On a primary: the standby to report on (its address as the primary sees it, or its
    /// `application_name`). The result's `replica` is its `pg_stat_replication` row and
    /// `replica_lag_bytes` the primary's current LSN minus its replay LSN — what a failover
    /// to it would lose now (null when it is not connected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// How a failback rebuilds the old primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RebuildMethod {
    Basebackup,
    Rewind,
}

/// What the control file of a cluster says (`pg_controldata`); works on a stopped cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgControldataParams {
    #[serde(flatten)]
    pub dir: PgDataDir,
    /// The OS user that may read the data directory (default: the step's user). Checks have
    /// no `become:`, so a precondition names it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
}

/// Read-only preflight of a rebuild (`pg.basebackup` or `pg.rewind` of `data_dir` from
/// `source_host`): everything it will need, checked before anything is stopped. The result's
/// `problems` names each thing missing; `ready` is true when there is none.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgRebuildCheckParams {
    /// basebackup or rewind.
    pub method: RebuildMethod,
    #[serde(flatten)]
    pub dir: PgDataDir,
    #[serde(flatten)]
    pub source: PgSource,
    /// The administrative user (sizes; for rewind: the rewinding user, whose rights are
    /// checked).
    pub user: String,
    /// The user the rebuilt standby streams as (and pg_basebackup copies as).
    pub replication_user: String,
    /// Database to connect to (default `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The cluster's OS user, which runs the rebuild (default: the step's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// The replication slot the rebuilt cluster's standby will stream through (empty: none):
    /// the source must allow slots (`max_replication_slots` > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
}

/// Retention of the copies `pg.basebackup` moved aside (`DATA.drplan-old-<UTC time>`): every
/// one is removed except `keep` (the copy this run made). Run at the end of a successful
/// failback.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgRemoveOldCopiesParams {
    /// The cluster's data directory.
    pub data_dir: String,
    /// A moved-aside copy to keep (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[
    &Basebackup,
    &Controldata,
    &MakeStandby,
    &Promote,
    &RebuildCheck,
    &RemoveOldCopies,
    &Rewind,
    &Start,
    &Status,
    &Stop,
];

struct Basebackup;

impl Action for Basebackup {
    type Params = PgBasebackupParams;
    const ABOUT: About = About {
        name: "pg.basebackup",
        kind: Change,
        idempotent: false,
        summary: "Rebuild a data directory from another server with pg_basebackup",
        result: "`changed: true`, `moved_aside` (where the old contents went: `DATA.drplan-old-<UTC time>` \
            beside it, or null), `standby` \
            (whether standby.signal and primary_conninfo were written).",
        needs: "`pg_basebackup` (in `bin_dir` or on PATH), run as the cluster's OS user; write rights in \
            the data directory's parent, or root through the host's become method, to keep the old \
            contents beside it; a replication connection to the source (with a `slot`, `psql` too, which \
            creates it there first).",
        budget: LONG_BUDGET,
        login_params: &["user"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgBasebackupParams) -> Result<Value, StepFailure> {
        copy::basebackup(ctx, p).await
    }
}

struct Controldata;

impl Action for Controldata {
    type Params = PgControldataParams;
    const ABOUT: About = About {
        name: "pg.controldata",
        kind: Check,
        idempotent: true,
        summary: "Report a cluster's control file: state, latest checkpoint LSN, timeline, wal_log_hints, \
            checksums",
        result: "`state`, `system_identifier`, `checkpoint_lsn` (and `_bytes`), `redo_lsn`, `timeline`, \
            `min_recovery_end_lsn_bytes`, `wal_log_hints`, `data_checksums`. Works on a stopped \
            cluster.",
        needs: "`pg_controldata`, run as `os_user` (or the step's user).",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgControldataParams) -> Result<Value, StepFailure> {
        check::controldata(ctx, p).await
    }
}

struct MakeStandby;

impl Action for MakeStandby {
    type Params = PgMakeStandbyParams;
    const ABOUT: About = About {
        name: "pg.make_standby",
        kind: Change,
        idempotent: true,
        summary: "Configure a stopped cluster as a standby: standby.signal + primary_conninfo",
        result: "`changed`: false when both were already so.",
        needs: "`sh`, `cat`, `mktemp`, `mv`, run as the cluster's OS user; with a `slot`, `psql` and a \
            replication connection to the primary, which creates the slot when it has none.",
        login_params: &["user"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgMakeStandbyParams) -> Result<Value, StepFailure> {
        copy::make_standby(ctx, p).await
    }
}

struct Promote;

impl Action for Promote {
    type Params = PgPromoteParams;
    const ABOUT: About = About {
        name: "pg.promote",
        kind: Change,
        idempotent: true,
        summary: "Promote a standby (nothing to do on a primary); waits until it accepts writes",
        result: "`promoted`, `changed`, `timeline` (the new one), `took_ms`, `replayed_lsn` (and \
            `_bytes`: where replay ended, the last WAL it applied before it became a primary); \
            `running: false` for a stopped primary.",
        needs: "`pg_ctl`, `pg_controldata` and `psql` (in `bin_dir` or on PATH), run as the cluster's OS \
            user.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgPromoteParams) -> Result<Value, StepFailure> {
        run::promote(ctx, p).await
    }
}

struct RebuildCheck;

impl Action for RebuildCheck {
    type Params = PgRebuildCheckParams;
    const ABOUT: About = About {
        name: "pg.rebuild_check",
        kind: Check,
        idempotent: true,
        summary: "Preflight of a rebuild by basebackup or rewind: rights, free space, replication access, \
            rewind needs",
        result: "`ready`, `problems` (each thing missing, in words: ownership, room for \
            the old copy, free space, the replication login, versions, and for rewind \
            `wal_log_hints` or checksums and the rewinding role's rights), `method`, `data_dir`, `exists`, \
            `parent_writable`, `root_available`, `free_bytes`, `needed_bytes`, `source` (what the \
            source server says), `system_identifier`, `control`.",
        needs: "`psql`, `pg_controldata`, `df`, `du` and `awk`, run as `os_user`; changes nothing.",
        login_params: &["user", "replication_user"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgRebuildCheckParams) -> Result<Value, StepFailure> {
        check::rebuild_check(ctx, p).await
    }
}

struct RemoveOldCopies;

impl Action for RemoveOldCopies {
    type Params = PgRemoveOldCopiesParams;
    const ABOUT: About = About {
        name: "pg.remove_old_copies",
        kind: Change,
        idempotent: true,
        summary: "Remove the data directories pg.basebackup moved aside, except the one to keep",
        result: "`changed`, `removed` (the copies removed), `kept`.",
        needs: "`sh`, `find` and `rmdir`, as a user who may remove the copies (root for copies under a root-owned \
            parent).",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgRemoveOldCopiesParams) -> Result<Value, StepFailure> {
        aside::remove_old_copies(ctx, p).await
    }
}

struct Rewind;

impl Action for Rewind {
    type Params = PgRewindParams;
    const ABOUT: About = About {
        name: "pg.rewind",
        kind: Change,
        idempotent: false,
        summary: "Resynchronise a stopped old primary with the new one (pg_rewind)",
        result: "`changed`, `rewound` (false when the timelines had not diverged), `crash_recovered` (the \
            target was not shut down cleanly and pg_rewind recovered it first), `standby`, `warning`.",
        needs: "`pg_rewind` and `pg_controldata`, run as the cluster's OS user; `wal_log_hints` or data \
            checksums on the old primary; a user with pg_rewind's rights on the source (with a `slot`, `psql` \
            and a replication connection as `replication_user`, which creates it there).",
        budget: LONG_BUDGET,
        login_params: &["user", "replication_user"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgRewindParams) -> Result<Value, StepFailure> {
        copy::rewind(ctx, p).await
    }
}

struct Start;

impl Action for Start {
    type Params = PgStartParams;
    const ABOUT: About = About {
        name: "pg.start",
        kind: Change,
        idempotent: true,
        summary: "Start a PostgreSQL cluster (pg_ctl, or Debian's pg_ctlcluster) and wait until it accepts \
            connections",
        result: "`changed`, `running: true`.",
        needs: "`pg_ctl`, run as the cluster's OS user; with `control: pg_ctlcluster`, `pg_ctlcluster` \
            (postgresql-common) run as root through the host's become method.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgStartParams) -> Result<Value, StepFailure> {
        run::start(ctx, p).await
    }

    fn check(p: &PgStartParams) -> Result<(), String> {
        run::check_start(p)
    }
}

struct Status;

impl Action for Status {
    type Params = PgStatusParams;
    const ABOUT: About = About {
        name: "pg.status",
        kind: Check,
        idempotent: true,
        summary: "Report reachability, recovery state, timeline, LSNs and replay lag",
        result: "`reachable` (false only when nothing answered — refused, no route, \
            a timeout; then `error`. A server that refuses the login is reachable: the check \
            fails instead), `in_recovery`, \
            `streaming`, `timeline`, `current_lsn`, `receive_lsn`, `replay_lsn` (each also as \
            `_bytes`), `replay_lag_bytes`, `replay_lag_s` (a standby's: 0 when it has replayed \
            all it received, else the age of the last transaction it replayed), `last_replay_at`, \
            `replicas`, `replica` and `replica_lag_bytes` (with `replica`), `slots` (each \
            replication slot: `name`, `type`, `active`, `wal_status`, `retained_bytes`), \
            `inactive_slot_retained_bytes` (the most WAL a slot nothing streams through holds \
            back; 0 when none), `slots_losing_wal` (slots whose `wal_status` is `unreserved` or \
            `lost`), `server_version`.",
        needs: "`psql` on the step's host; superuser or `pg_read_all_stats` to see replication.",
        login_params: &["user"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgStatusParams) -> Result<Value, StepFailure> {
        status::status(ctx, p).await
    }
}

struct Stop;

impl Action for Stop {
    type Params = PgStopParams;
    const ABOUT: About = About {
        name: "pg.stop",
        kind: Change,
        idempotent: true,
        summary: "Stop a PostgreSQL cluster (pg_ctl, or Debian's pg_ctlcluster; nothing to do when stopped)",
        result: "`changed`, `running: false`, `mode` (when it stopped one), `last_lsn` (and \
            `_bytes`: the shutdown checkpoint, where its WAL ends; null unless it was shut down \
            cleanly).",
        needs: "`pg_ctl` and `pg_controldata`, run as the cluster's OS user; with \
            `control: pg_ctlcluster`, `pg_ctlcluster` (postgresql-common) run as root through the \
            host's become method.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: PgStopParams) -> Result<Value, StepFailure> {
        run::stop(ctx, p).await
    }

    fn check(p: &PgStopParams) -> Result<(), String> {
        run::control_of(p.control, p.cluster.as_deref()).map(|_| ())
    }
}
