//! The site model: which address plays which role, how to reach it, and the site's values.

use super::{Duration, Map, Version};
use crate::transport::BecomeMethod;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A site: *where* a plan runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drplan site")]
pub struct Site {
    /// Format version; always 1.
    pub version: Version,
    /// The site's name; one run at a time holds its lock.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub site: String,
    /// Role → host that plays it.
    pub hosts: BTreeMap<String, HostSpec>,
    /// How to reach hosts over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSpec>,
    /// Overrides of the plans' parameters.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: Map,
    /// The site's variables, `vars.*` in templates.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vars: Map,
    /// Secrets, `secrets.*` in templates; never printed, logged or journaled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretSource>,
}

/// How drplan reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Ssh,
    /// Run on the controller itself (demo sites, single-box tests).
    Local,
}

/// One host of the site.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// IP address or DNS name.
    pub address: String,
    /// SSH port (default 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Login user (default: the controller's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The OS user steps run as unless a step says otherwise.
    #[serde(default, rename = "become", skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
    /// How to switch user: sudo (default), runuser, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub become_method: Option<BecomeMethod>,
    /// ssh (default) or local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// Per-host variables, deep-merged over the site's `vars` as `hosts.<role>.vars`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vars: Map,
    /// Services controlled by explicit commands on hosts without systemd.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceCommands>,
    /// How to fence this host when drplan cannot log into it: a program and its arguments,
    /// run on the controller, that must exit 0 only once the host can no longer serve
    /// (power it off through its BMC or PDU, stop the VM through the cloud's API). Plans read
    /// it as `hosts.<role>.fence`; the GoCD failover runs it before promoting a standby over a
    /// primary it could not stop, and asks the operator (`--approve`) when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub fence: Option<Vec<String>>,
}

/// Commands (argv) that control a service where systemd does not.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCommands {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    /// Exits 0 when running, 3 when stopped (LSB).
    pub status: Vec<String>,
    /// Default: stop, then start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Vec<String>>,
}

/// SSH settings; paths are relative to the site file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Private key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Host keys are verified against this file; there is no "accept anything" mode.
    pub known_hosts: String,
    /// Give up connecting after this long (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
}

/// Where a secret's value comes from. Exactly one of the keys.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretSource {
    /// An environment variable of the controller.
    Env(String),
    /// A file on the controller (relative to the site file); trailing newline trimmed.
    File(String),
}
