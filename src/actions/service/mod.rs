//! `service.start|stop|restart|status`: systemd units, or the site's commands for hosts
//! without systemd (`hosts.<role>.services.<unit>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A service by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    /// The systemd unit, or a service named in the host's `services:` in the site.
    pub unit: String,
}
