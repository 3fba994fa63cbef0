//! `pg.*`: PostgreSQL ≥ 13 cluster control with `pg_ctl`, `pg_basebackup`, `pg_rewind`.
//!
//! Standbys are `standby.signal` + `primary_conninfo` (PostgreSQL 12 removed
//! `recovery.conf`; the server refuses to start with one). 13 is the oldest supported:
//! its `pg_rewind` recovers a target that was not shut down cleanly (an old primary lost
//! in a disaster) before rewinding it; `pg.rebuild_check` refuses anything older. These actions run as the cluster's OS user
//! (`become: postgres`): `pg_ctl` refuses to run as root.

use crate::plan::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Promote a standby and wait until it accepts writes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgPromoteParams {
    /// The cluster's data directory.
    pub data_dir: String,
    /// Directory of pg_ctl and friends (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// How long to wait for the end of recovery (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
}

/// Start a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgStartParams {
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// Server log file (`pg_ctl -l`); required because a server started over SSH without
    /// one keeps the session's output open and hangs it.
    pub log_file: String,
    /// How long to wait until it accepts connections (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
    /// Extra server options, e.g. `["-c", "port=5433"]`, given to postgres through
    /// `pg_ctl -o` (each quoted; pg_ctl remembers them for a later restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
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
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// smart, fast (default) or immediate. pg_rewind needs a clean (not immediate) stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PgStopMode>,
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

/// Rebuild a data directory from a running server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgBasebackupParams {
    /// The data directory to (re)create; an existing one is moved aside first.
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// The server to copy from.
    pub source_host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
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
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    pub source_host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    /// A superuser (or a user granted pg_rewind's functions) on the source.
    pub user: String,
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
}

/// Turn a stopped cluster into a standby of `primary_host`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgMakeStandbyParams {
    pub data_dir: String,
    pub primary_host: String,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
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
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
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
    /// The data directory that will be rebuilt (on this host).
    pub data_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// The server it will be rebuilt from.
    pub source_host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    /// The administrative user (sizes; for rewind: the rewinding user, whose rights are
    /// checked).
    pub user: String,
    /// The user the rebuilt standby streams as (and pg_basebackup copies as).
    pub replication_user: String,
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
    pub data_dir: String,
    /// A moved-aside copy to keep (empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}
