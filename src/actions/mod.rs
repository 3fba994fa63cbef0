//! The actions: every typed action and check a plan may name, and the registry that lists
//! them.
//!
//! An action is one declaration in its family's folder (`pg/mod.rs`: its parameter type
//! and its [`About`] beside it, code in the folder's other files) and one entry in that
//! family's `ACTIONS`. Everything else is generated from the registry below: the catalogue
//! (`lookup`, `names`), the published and validating JSON Schemas (`schema/`), validation
//! (`check/`), the dispatch (`dispatch`, for `runner.rs`) and `docs/actions.md`. Actions
//! never open connections themselves: they run over the transports `env.rs` connects.

mod action;
mod env;
mod exec;
mod failure;
mod file;
mod gocd;
mod host;
mod http;
mod pg;
pub mod runner;
mod service;
mod vip;
mod wait;

pub use action::{About, ActionKind, DEFAULT_BUDGET, LONG_BUDGET, RunsCheck};
pub use env::Approvals;
pub use runner::ActionRunner;

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
    PgBasebackupParams, PgControl, PgControldataParams, PgMakeStandbyParams, PgPromoteParams,
    PgRebuildCheckParams, PgRemoveOldCopiesParams, PgRewindParams, PgStartParams, PgStatusParams,
    PgStopMode, PgStopParams, RebuildMethod, WalMethod,
};
pub use service::ServiceParams;
pub use vip::VipParams;
pub use wait::WaitUntilParams;

pub(crate) use action::Registered;

use crate::step::{Call, FailureKind, StepFailure};
use env::Env;
use host::Ctx;
use serde_json::Value;
use std::sync::LazyLock;

/// Every family's actions, sorted by name: the one list.
static REGISTRY: LazyLock<Vec<&'static dyn Registered>> = LazyLock::new(|| {
    let families = [
        exec::ACTIONS,
        file::ACTIONS,
        gocd::ACTIONS,
        http::ACTIONS,
        pg::ACTIONS,
        service::ACTIONS,
        vip::ACTIONS,
        wait::ACTIONS,
    ];
    let mut all: Vec<&'static dyn Registered> = families.concat();
    all.sort_by_key(|a| a.about().name);
    all
});

/// Every action, sorted by name.
pub(crate) fn registry() -> &'static [&'static dyn Registered] {
    &REGISTRY
}

/// The action of that name, to run or to describe.
pub(crate) fn find(name: &str) -> Option<&'static dyn Registered> {
    let all = registry();
    all.binary_search_by(|a| a.about().name.cmp(name))
        .ok()
        .map(|i| all[i])
}

/// What is known about the action of that name.
pub fn lookup(name: &str) -> Option<&'static About> {
    find(name).map(action::Registered::about)
}

/// Every action's declaration, sorted by name.
pub fn all() -> impl Iterator<Item = &'static About> {
    registry().iter().map(|a| a.about())
}

/// Every action's name, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    all().map(|a| a.name)
}

/// Run the action a call names: find it, check its parameters, run it with the step's
/// `timeout` (else its budget) as the deadline. A wait runs its check through here.
/// Do these (rendered) parameters fit the action? None for an unknown action.
pub fn check_params(name: &str, params: &Value) -> Option<Result<(), String>> {
    find(name).map(|a| a.check_params(params))
}

pub(crate) async fn dispatch(env: &Env, call: &Call) -> Result<Value, StepFailure> {
    let Some(action) = find(&call.action) else {
        return Err(StepFailure::new(
            FailureKind::InvalidParams,
            env.hosts.label(&call.role),
            format!("there is no action `{}`", call.action),
        ));
    };
    let ctx = Ctx::new(env, call, action.about().budget);
    action.run(&ctx, &call.params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_found_by_its_name_and_no_name_is_taken_twice() {
        for a in all() {
            assert_eq!(lookup(a.name).map(|s| s.name), Some(a.name));
        }
        let mut names: Vec<&str> = names().collect();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "two actions share a name");
        assert!(lookup("pg.promte").is_none());
    }

    #[test]
    fn every_declaration_is_complete() {
        for a in all() {
            assert!(
                !a.summary.is_empty() && !a.result.is_empty() && !a.needs.is_empty(),
                "{}: summary, result and needs are the docs",
                a.name
            );
        }
    }

    #[test]
    fn shared_parameters_are_checked_like_their_own() {
        // `pg.rewind`'s `data_dir` and `source_host` come from flattened types: the typed
        // check still needs them and still refuses a key no part names.
        let ok = serde_json::json!({ "data_dir": "/d", "source_host": "h", "user": "u" });
        assert_eq!(check_params("pg.rewind", &ok), Some(Ok(())));
        let mut misspelt = ok.clone();
        misspelt["sourc_port"] = 5433.into();
        let err = check_params("pg.rewind", &misspelt).unwrap().unwrap_err();
        assert!(err.contains("unknown field `sourc_port`"), "{err}");
        let mut missing = ok;
        missing.as_object_mut().unwrap().remove("source_host");
        let err = check_params("pg.rewind", &missing).unwrap().unwrap_err();
        assert!(err.contains("missing field `source_host`"), "{err}");
    }

    #[test]
    fn every_parameter_type_refuses_unknown_keys() {
        // The published schema and the validator rely on it: a misspelt key is an error
        // before the run, never a parameter silently left out.
        let mut generator = schemars::SchemaGenerator::default();
        for a in registry() {
            let reference = a.params_schema(&mut generator).to_value();
            let name = reference["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .unwrap_or_else(|| panic!("{}: no $ref", a.about().name))
                .to_owned();
            let defs = generator.definitions();
            assert_eq!(
                defs[&name]["additionalProperties"],
                serde_json::json!(false),
                "{}",
                a.about().name
            );
        }
    }
}
