//! The site model: which address plays which role, how to reach it, and the site's values.

use super::{Duration, Map, Version};
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
    /// How `pg.*` actions log into PostgreSQL at this site: whose password is which secret,
    /// and the TLS mode. Plans name PostgreSQL users (`vars.pg.user`); the site says how
    /// they authenticate, so the same plan runs at a trust-only lab and a scram-only site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
}

impl Site {
    /// The secrets that hold the PostgreSQL passwords of `users` (of every user the site
    /// names when None).
    pub fn password_secrets(
        &self,
        users: Option<&std::collections::BTreeSet<String>>,
    ) -> Vec<&String> {
        let Some(pg) = &self.postgres else {
            return Vec::new();
        };
        pg.passwords
            .iter()
            .filter(|(user, _)| users.is_none_or(|set| set.contains(*user)))
            .map(|(_, secret)| secret)
            .collect()
    }
}

/// PostgreSQL logins of a site, for every `pg.*` action and check.
///
/// An action that connects as user `U` (its `user:`, or `replication_user:`) without a
/// `password:` of its own uses the secret named by `passwords.U`. The password reaches the
/// PostgreSQL program through its environment (`PGPASSWORD`, read from standard input by a
/// tiny shell wrapper: never in any argv, never journaled) and, for a standby's
/// `primary_conninfo`, the standby's `postgresql.auto.conf` (mode 0600), as `pg_basebackup
/// -R` writes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// PostgreSQL user → the name of a secret under `secrets:` holding its password, e.g.
    /// `{ postgres: pg_password, replicator: replication_password }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub passwords: BTreeMap<String, String>,
    /// libpq's `sslmode` for every connection drplan makes, and for the `primary_conninfo`
    /// it writes (default: libpq's, `prefer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The value as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
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

/// How a host's steps switch to another OS user: `sudo` (the default), `runuser` (root
/// logins only, no sudo needed), or `none`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BecomeMethod {
    /// `sudo -n -u USER -- argv…` (the default)
    #[default]
    Sudo,
    /// `runuser -u USER -- argv…` (root login only; no sudo needed)
    Runuser,
    /// never switch user
    None,
}
