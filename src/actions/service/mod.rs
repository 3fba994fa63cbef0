//! `service.start|stop|restart|status`: systemd units, or the site's commands for hosts
//! without systemd (`hosts.<role>.services.<unit>`). Parameters and declarations are here;
//! the code in `run.rs`.

mod run;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::step::StepFailure;
use run::Verb;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A service by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    /// The systemd unit, or a service named in the host's `services:` in the site.
    pub unit: String,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[&Restart, &Start, &Status, &Stop];

/// What each of them needs on the host.
const NEEDS: &str = "`systemctl`, or the site's commands for the unit (`hosts.<role>.services`), \
    whose status exits 0 when running and 3 when stopped.";

struct Restart;

impl Action for Restart {
    type Params = ServiceParams;
    const ABOUT: About = About {
        name: "service.restart",
        kind: Change,
        idempotent: false,
        summary: "Restart a service",
        result: "`active: true`, `changed: true`.",
        needs: NEEDS,
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ServiceParams) -> Result<Value, StepFailure> {
        run::service(ctx, Verb::Restart, p).await
    }
}

struct Start;

impl Action for Start {
    type Params = ServiceParams;
    const ABOUT: About = About {
        name: "service.start",
        kind: Change,
        idempotent: true,
        summary: "Start a service (nothing to do when running)",
        result: "`active: true`, `changed`.",
        needs: NEEDS,
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ServiceParams) -> Result<Value, StepFailure> {
        run::service(ctx, Verb::Start, p).await
    }
}

struct Status;

impl Action for Status {
    type Params = ServiceParams;
    const ABOUT: About = About {
        name: "service.status",
        kind: Check,
        idempotent: true,
        summary: "Report whether a service is running",
        result: "`active`, `changed: false`.",
        needs: NEEDS,
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ServiceParams) -> Result<Value, StepFailure> {
        run::service(ctx, Verb::Status, p).await
    }
}

struct Stop;

impl Action for Stop {
    type Params = ServiceParams;
    const ABOUT: About = About {
        name: "service.stop",
        kind: Change,
        idempotent: true,
        summary: "Stop a service (nothing to do when stopped)",
        result: "`active: false`, `changed`.",
        needs: NEEDS,
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: ServiceParams) -> Result<Value, StepFailure> {
        run::service(ctx, Verb::Stop, p).await
    }
}
