//! Where a run keeps its SSH control sockets, and the clean-up of those left by runs that
//! were killed: a master connection outlives a SIGKILLed drplan (it persists by design), so
//! each run stops the masters of dead processes before it opens its own.

use crate::private_fs::Dir;
use std::path::{Path, PathBuf};

/// `STATE/ssh/<pid>/`: this process's SSH control sockets. A drplan killed with SIGKILL
/// cannot close its masters, so every run first stops the masters of dead processes and
/// removes their directories.
/// Every directory on the way is checked like the rest of the state directory
/// (`private_fs::Dir`): ours, writable by nobody else, never a link. A refusal is an I/O
/// error carrying a `trust::Insecure` (`trust::is_insecure` finds it).
pub fn control_dir(state_dir: &Path) -> std::io::Result<PathBuf> {
    let root = state_dir.join("ssh");
    let mine = root.join(std::process::id().to_string());
    Dir::make_state(state_dir)
        .and_then(|state| state.make_sub("ssh"))
        .and_then(|ssh| ssh.make_sub(&std::process::id().to_string()))?;
    sweep_dead_masters(&root);
    Ok(mine)
}

fn sweep_dead_masters(root: &Path) {
    use std::os::unix::process::CommandExt;
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || alive(pid) {
            continue;
        }
        for socket in sockets(&entry.path(), 4) {
            // Asks the master to exit; a master already gone makes this fail harmlessly. In a
            // process group of its own, like every child of drplan, so that a Ctrl-C meant
            // for drplan does not cut it short: drplan decides.
            let _ = std::process::Command::new("ssh")
                .process_group(0)
                .args(["-O", "exit", "-o"])
                .arg(format!("ControlPath={}", socket.display()))
                .arg("drplan-stale-master")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// A process that exists and is not a zombie.
fn alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) only checks for existence and permission.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    exists && !zombie
}

fn sockets(dir: &Path, depth: u32) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_socket() => out.push(e.path()),
            Ok(t) if t.is_dir() && depth > 0 => out.extend(sockets(&e.path(), depth - 1)),
            _ => {}
        }
    }
    out
}
