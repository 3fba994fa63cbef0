//! `vip.assign`, `vip.release`, `vip.owner`: a virtual IP moved with `ip addr`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
