//! How drplan reaches a host: run one command (an argv vector) and collect its output.
//!
//! Two transports: `local` (the controller itself, tokio::process) and `ssh` (openssh in
//! native-mux mode, one master connection per host, reused by every command). This module
//! knows nothing about plans, steps or actions; actions build `Command`s and read `Output`s.
//! It must never build a shell string out of caller values: argv stays argv (for SSH, each
//! argument is quoted exactly once for the remote shell).

use std::time::Duration;

/// How to run a command as another user than the login user.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BecomeMethod {
    /// `sudo -n -u USER -- argv…` (the default)
    Sudo,
    /// `runuser -u USER -- argv…` (root login only; no sudo needed)
    Runuser,
    /// never switch user
    None,
}

/// One command to run on a host.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// program and arguments; never joined into a shell string by drplan
    pub argv: Vec<String>,
    /// extra environment variables
    pub env: Vec<(String, String)>,
    /// working directory on the host
    pub cwd: Option<String>,
    /// bytes fed to the command's stdin (then stdin is closed)
    pub stdin: Option<Vec<u8>>,
    /// run as this OS user (None: the login user)
    pub become_user: Option<String>,
    /// give up (and kill the command) after this long
    pub timeout: Option<Duration>,
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// exit code; None when killed by a signal
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}
