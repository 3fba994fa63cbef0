//! What a host says about a command drplan started: plain data that the transport learns
//! (and can later check and signal, `transport/identity.rs`), actions report through the
//! step seam (`step::CommandReport`) and the executor journals (`command_started`), so none
//! of them has to import another.

use serde::{Deserialize, Serialize};

/// One command that ran (or runs) on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandIdentity {
    /// the host as the transport names it (`local`, `address:port`)
    pub host: String,
    /// the OS user the command runs as (checking and stopping it run as this user)
    pub user: String,
    /// the process drplan started: locally the command (or its become wrapper), over SSH
    /// the remote wrapper shell that waits for it
    pub pid: i32,
    /// its process group when it started (locally: its own, = pid)
    pub pgid: i32,
    /// its session (SSH only: the session sshd made for the command's channel)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<i32>,
    /// `/proc/sys/kernel/random/boot_id` of the host when the command started
    pub boot_id: String,
    /// the leader's start time in clock ticks since boot (`/proc/PID/stat` field 22)
    pub start_time: u64,
}
