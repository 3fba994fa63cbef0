//! `http.get`, `http.wait`, `tcp.wait`: reachability as seen from a host. Parameters and
//! declarations are here; the code (and the curl helpers `gocd.*` uses) in `run.rs`.

pub(crate) mod run;

use super::action::ActionKind::Check;
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::plan::Duration;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// GET a URL once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGetParams {
    /// `http://…` URL.
    pub url: String,
}

/// Poll a URL until it answers the expected status.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpWaitParams {
    /// `http://…` URL.
    pub url: String,
    /// The status that ends the wait (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// Give up after this long (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Pause between polls (default 200ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Poll until a TCP port accepts connections.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpWaitParams {
    /// Host name or address, as the step's host resolves it.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Give up after this long (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Pause between polls (default 200ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] = &[&HttpGet, &HttpWait, &TcpWait];

struct HttpGet;

impl Action for HttpGet {
    type Params = HttpGetParams;
    const ABOUT: About = About {
        name: "http.get",
        kind: Check,
        idempotent: true,
        summary: "GET a URL from the host; result: status, body, json",
        result: "`status` (HTTP status), `body` (its last 64 KiB as text), `json` (the body parsed, or \
            null).",
        needs: "`curl` on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: HttpGetParams) -> Result<Value, StepFailure> {
        run::get(ctx, p).await
    }
}

struct HttpWait;

impl Action for HttpWait {
    type Params = HttpWaitParams;
    const ABOUT: About = About {
        name: "http.wait",
        kind: Check,
        idempotent: true,
        summary: "Poll a URL from the host until it answers the expected status",
        result: "As `http.get`, plus `attempts` and `waited_ms`. Fails with a timeout showing the last \
            answer.",
        needs: "`curl` on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: HttpWaitParams) -> Result<Value, StepFailure> {
        run::wait(ctx, p).await
    }
}

struct TcpWait;

impl Action for TcpWait {
    type Params = TcpWaitParams;
    const ABOUT: About = About {
        name: "tcp.wait",
        kind: Check,
        idempotent: true,
        summary: "Poll until a TCP port accepts connections",
        result: "`open: true`, `attempts`, `waited_ms`. Fails with a timeout.",
        needs: "`bash` (its `/dev/tcp`) on the step's host.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: TcpWaitParams) -> Result<Value, StepFailure> {
        run::tcp_wait(ctx, p).await
    }
}
