//! The action catalogue: every typed action and check a plan may name.
//!
//! Each action family lives in its own file with the parameter types of its actions; this
//! file lists them with what the engine must know about each: is it a read-only check or
//! does it change things, is it safe to re-run, and what its `with:` looks like (a JSON
//! Schema generated from the parameter type, so validation, the published schema and the
//! runtime all read the same definition). Actions never open connections themselves: they
//! run over a `Transport`. `runtime` is the executor's entry point ([`run`]); the code
//! behind each action lives in `run/`, one file per family.

mod error;
mod exec;
mod file;
mod gocd;
mod http;
mod pg;
mod run;
pub mod runtime;
mod service;
mod vip;
mod wait;

pub use error::{ActionError, ActionErrorKind};
pub use runtime::{ActionEnv, Approvals, Hosts, Invocation, run};

pub use exec::{ExecParams, ManualApproveParams, NoteParams, SleepParams};
pub use file::{
    FileCopyParams, FileRemoveParams, FileRenameParams, FileStatParams, FileSyncParams,
    FileTouchParams, FileWriteParams,
};
pub use gocd::{
    GocdDbPropertiesParams, GocdFilesParams, GocdLayout, GocdMaintenanceParams, GocdMode,
    GocdSetModeParams, GocdSyncStatusParams, GocdWaitReadyParams,
};
pub use http::{HttpGetParams, HttpWaitParams, TcpWaitParams};
pub use pg::{
    PgBasebackupParams, PgControldataParams, PgMakeStandbyParams, PgPromoteParams,
    PgRebuildCheckParams, PgRemoveOldCopiesParams, PgRewindParams, PgStartParams, PgStatusParams,
    PgStopMode, PgStopParams, RebuildMethod, WalMethod,
};
pub use service::ServiceParams;
pub use vip::VipParams;
pub use wait::WaitUntilParams;

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Whether an action only looks, or changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Read-only; usable in `preconditions`, `wait.until` and as a step.
    Check,
    /// Changes state on a host.
    Change,
}

/// What the engine knows about one action.
pub struct ActionSpec {
    pub name: &'static str,
    pub kind: ActionKind,
    /// Safe to run again after a crash left it in doubt: it checks state first and does
    /// nothing when the work is already done.
    pub idempotent: bool,
    /// One line for `--help`, the README and the schema's description.
    pub summary: &'static str,
    /// The schema of its `with:` parameters.
    pub params: fn(&mut SchemaGenerator) -> Schema,
    /// The action run by default to undo this one when a step gives no `rollback`.
    pub default_rollback: Option<&'static str>,
}

fn params<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

const fn spec(
    name: &'static str,
    kind: ActionKind,
    idempotent: bool,
    summary: &'static str,
    params: fn(&mut SchemaGenerator) -> Schema,
) -> ActionSpec {
    ActionSpec {
        name,
        kind,
        idempotent,
        summary,
        params,
        default_rollback: None,
    }
}

use ActionKind::{Change, Check};

/// Every action, sorted by name.
pub static CATALOGUE: &[ActionSpec] = &[
    spec(
        "exec",
        Change,
        false,
        "Run a program (argv) or a /bin/sh script",
        params::<ExecParams>,
    ),
    spec(
        "file.copy",
        Change,
        true,
        "Copy one file from another role's host to this host (atomic replace)",
        params::<FileCopyParams>,
    ),
    spec(
        "file.remove",
        Change,
        true,
        "Remove a file or directory (nothing to do when absent)",
        params::<FileRemoveParams>,
    ),
    spec(
        "file.rename",
        Change,
        true,
        "Rename a file on the host (done when the target exists and the source does not)",
        params::<FileRenameParams>,
    ),
    spec(
        "file.stat",
        Check,
        true,
        "Report whether a path exists, its size, mode and md5",
        params::<FileStatParams>,
    ),
    spec(
        "file.sync",
        Change,
        true,
        "Make a directory on this host match one on another role's host, with excludes",
        params::<FileSyncParams>,
    ),
    spec(
        "file.touch",
        Change,
        true,
        "Create an empty file if it does not exist",
        params::<FileTouchParams>,
    ),
    spec(
        "file.write",
        Change,
        true,
        "Write a file's content atomically (nothing to do when identical)",
        params::<FileWriteParams>,
    ),
    spec(
        "gocd.compare_files",
        Check,
        true,
        "Compare this GoCD server's config files and external plugins with another's: md5 and last change per file (never db.properties)",
        params::<GocdFilesParams>,
    ),
    spec(
        "gocd.db_properties",
        Check,
        true,
        "Read a GoCD server's db.properties: the PostgreSQL host, port, database and user it uses",
        params::<GocdDbPropertiesParams>,
    ),
    spec(
        "gocd.maintenance_mode",
        Change,
        true,
        "Turn GoCD's maintenance mode on or off through its API (bearer token from a file)",
        params::<GocdMaintenanceParams>,
    ),
    spec(
        "gocd.set_mode",
        Change,
        true,
        "Set -Dgo.server.mode= where the GoCD server reads it (defaults file, wrapper properties or container env)",
        params::<GocdSetModeParams>,
    ),
    spec(
        "gocd.sync_config",
        Change,
        true,
        "Copy what changed of another GoCD server's config files and external plugins here, atomically (never db.properties)",
        params::<GocdFilesParams>,
    ),
    spec(
        "gocd.sync_status",
        Check,
        true,
        "Read a standby GoCD server's business-continuity dashboard where there is one: is it in sync?",
        params::<GocdSyncStatusParams>,
    ),
    spec(
        "gocd.wait_ready",
        Check,
        true,
        "Poll a GoCD server until it is healthy and active as a primary (or passive as a standby)",
        params::<GocdWaitReadyParams>,
    ),
    spec(
        "http.get",
        Check,
        true,
        "GET a URL from the host; result: status, body, json",
        params::<HttpGetParams>,
    ),
    spec(
        "http.wait",
        Check,
        true,
        "Poll a URL from the host until it answers the expected status",
        params::<HttpWaitParams>,
    ),
    spec(
        "manual.approve",
        Check,
        true,
        "Ask the operator to confirm before going on",
        params::<ManualApproveParams>,
    ),
    spec(
        "note",
        Check,
        true,
        "Print a message with the step's end (what the run leaves, what comes next)",
        params::<NoteParams>,
    ),
    spec(
        "pg.basebackup",
        Change,
        false,
        "Rebuild a data directory from another server with pg_basebackup",
        params::<PgBasebackupParams>,
    ),
    spec(
        "pg.controldata",
        Check,
        true,
        "Report a cluster's control file: state, latest checkpoint LSN, timeline, wal_log_hints, checksums",
        params::<PgControldataParams>,
    ),
    spec(
        "pg.make_standby",
        Change,
        true,
        "Configure a stopped cluster as a standby: standby.signal + primary_conninfo",
        params::<PgMakeStandbyParams>,
    ),
    spec(
        "pg.promote",
        Change,
        true,
        "Promote a standby (nothing to do on a primary); waits until it accepts writes",
        params::<PgPromoteParams>,
    ),
    spec(
        "pg.rebuild_check",
        Check,
        true,
        "Preflight of a rebuild by basebackup or rewind: rights, free space, replication access, rewind needs",
        params::<PgRebuildCheckParams>,
    ),
    spec(
        "pg.remove_old_copies",
        Change,
        true,
        "Remove the data directories pg.basebackup moved aside, except the one to keep",
        params::<PgRemoveOldCopiesParams>,
    ),
    spec(
        "pg.rewind",
        Change,
        false,
        "Resynchronise a stopped old primary with the new one (pg_rewind)",
        params::<PgRewindParams>,
    ),
    spec(
        "pg.start",
        Change,
        true,
        "Start a PostgreSQL cluster with pg_ctl and wait until it accepts connections",
        params::<PgStartParams>,
    ),
    spec(
        "pg.status",
        Check,
        true,
        "Report reachability, recovery state, timeline, LSNs and replay lag",
        params::<PgStatusParams>,
    ),
    spec(
        "pg.stop",
        Change,
        true,
        "Stop a PostgreSQL cluster with pg_ctl (nothing to do when stopped)",
        params::<PgStopParams>,
    ),
    spec(
        "service.restart",
        Change,
        false,
        "Restart a service",
        params::<ServiceParams>,
    ),
    spec(
        "service.start",
        Change,
        true,
        "Start a service (nothing to do when running)",
        params::<ServiceParams>,
    ),
    spec(
        "service.status",
        Check,
        true,
        "Report whether a service is running",
        params::<ServiceParams>,
    ),
    spec(
        "service.stop",
        Change,
        true,
        "Stop a service (nothing to do when stopped)",
        params::<ServiceParams>,
    ),
    spec(
        "sleep",
        Change,
        true,
        "Wait for a fixed time",
        params::<SleepParams>,
    ),
    spec(
        "tcp.wait",
        Check,
        true,
        "Poll until a TCP port accepts connections",
        params::<TcpWaitParams>,
    ),
    spec(
        "vip.assign",
        Change,
        true,
        "Add a virtual IP to an interface and announce it (gratuitous ARP)",
        params::<VipParams>,
    ),
    spec(
        "vip.owner",
        Check,
        true,
        "Report whether this host holds a virtual IP",
        params::<VipParams>,
    ),
    spec(
        "vip.release",
        Change,
        true,
        "Remove a virtual IP from an interface (nothing to do when absent)",
        params::<VipParams>,
    ),
    spec(
        "wait.until",
        Check,
        true,
        "Run a check repeatedly until its expectation holds",
        params::<WaitUntilParams>,
    ),
];

/// The action of that name.
pub fn lookup(name: &str) -> Option<&'static ActionSpec> {
    CATALOGUE
        .binary_search_by(|a| a.name.cmp(name))
        .ok()
        .map(|i| &CATALOGUE[i])
}

/// Every action's name, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|a| a.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_so_lookup_finds_everything() {
        for a in CATALOGUE {
            assert_eq!(lookup(a.name).map(|s| s.name), Some(a.name));
        }
        assert!(lookup("pg.promte").is_none());
    }
}
