//! `vip.assign`, `vip.release`, `vip.owner`: a virtual IP moved with `ip addr`. Parameters
//! and declarations are here; the code in `run.rs`.

mod run;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A virtual IP on an interface.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VipParams {
    /// Address with prefix length, e.g. `10.231.0.100/24`.
    pub address: String,
    /// Network interface, e.g. `eth0`.
    pub interface: String,
    /// Gratuitous ARP announcements sent after assigning (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_count: Option<u32>,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[&Assign, &Owner, &Release];

struct Assign;

impl Action for Assign {
    type Params = VipParams;
    const ABOUT: About = About {
        name: "vip.assign",
        kind: Change,
        idempotent: true,
        summary: "Add a virtual IP to an interface and announce it (gratuitous ARP: the first \
            before the step ends, the repeats from a background announcer on the host)",
        result: "`changed`, `held: true`, `address`; when it added it: `announced`, `warning` (why the \
            announcement failed, or null).",
        needs: "`ip`, `arping` (iputils), `timeout`, `setsid` and `sh`, as root.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
        run::assign(ctx, p).await
    }
}

struct Owner;

impl Action for Owner {
    type Params = VipParams;
    const ABOUT: About = About {
        name: "vip.owner",
        kind: Check,
        idempotent: true,
        summary: "Report whether this host holds a virtual IP",
        result: "`held`, `answered_elsewhere` (another host answers ARP for the address).",
        needs: "`ip`, `arping` (iputils) and `timeout`, as root.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
        run::owner(ctx, p).await
    }
}

struct Release;

impl Action for Release {
    type Params = VipParams;
    const ABOUT: About = About {
        name: "vip.release",
        kind: Change,
        idempotent: true,
        summary: "Remove a virtual IP from an interface (nothing to do when absent), first \
            ending this host's background announcer of it",
        result: "`changed`, `held: false`.",
        needs: "`ip`, `pgrep` and `kill`, as root.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
        run::release(ctx, p).await
    }
}
