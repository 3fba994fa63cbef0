//! Who a running command is, in terms that survive drplan: enough to find it again after a
//! crash, tell it from a process that merely got its pid later, and stop it.
//!
//! A pid alone is not an identity: pids are reused. So an identity also holds the host's
//! boot id (a reboot ended every command) and the process's start time in clock ticks since
//! boot (field 22 of `/proc/PID/stat`): the same pid with another start time is another
//! process. Besides the process drplan started (the leader) the command may have started
//! others; they are found as the leader's descendants, and as the members of the command's
//! scope: its own process group locally (`process_group(0)`), its session over SSH (sshd
//! starts a session per channel; the remote `timeout` moves the program into a group of its
//! own, but not out of the session). The kernel never reuses a number that is still some
//! process's group or session id, so a scope whose number does not name a *younger* process
//! is still the command's.
//!
//! Checking and stopping run one small `sh` script (`PROBE_SCRIPT`) on the host, as the
//! user the command ran as, so that a command run through `sudo` can be reached without
//! more rights than it had. Linux only (`/proc`); a host without it gives no identity, and
//! drplan then knows as little as it did before identities existed.
//!
//! This file must not decide what to do about a live command: that is the executor's call.

use std::io;
use std::sync::OnceLock;

pub use crate::process::CommandIdentity;

impl CommandIdentity {
    /// The arguments of `PROBE_SCRIPT` after its first (what to do).
    pub(crate) fn probe_args(&self) -> [String; 5] {
        let (kind, scope) = match self.session {
            Some(sid) => ("s", sid),
            None => ("g", self.pgid),
        };
        [
            self.pid.to_string(),
            self.start_time.to_string(),
            self.boot_id.clone(),
            kind.to_owned(),
            scope.to_string(),
        ]
    }
}

/// Checks or signals the processes of one command. Arguments: `check` or a signal name,
/// then pid, start time, boot id, `g`/`s` (the scope is a process group or a session) and
/// the scope's id. Exit 0 with the pids on stdout when something of the command still runs
/// (after signalling it, for a signal), 1 when nothing does, 3 when it cannot tell.
///
/// Only processes that started no earlier than the leader count (older ones cannot be
/// part of the command, which also keeps a reused scope number harmless), zombies never
/// do (they run nothing, and a PID 1 that does not reap keeps them forever), and the script
/// itself is left out. `set -f`: the unquoted stat fields must not be globbed.
pub(crate) const PROBE_SCRIPT: &str = r#"set -f
_drplan_stat() { _drplan_l=; { read -r _drplan_l < "/proc/$1/stat"; } 2>/dev/null && _drplan_fields ${_drplan_l##*) }; }
_drplan_fields() { _drplan_st=$1 _drplan_pp=$2 _drplan_pg=$3 _drplan_ss=$4 _drplan_t=${20}; }
_drplan_op=$1 _drplan_pid=$2 _drplan_start=$3 _drplan_boot=$4 _drplan_kind=$5 _drplan_scope=$6
{ read -r _drplan_b < /proc/sys/kernel/random/boot_id; } 2>/dev/null || { echo "cannot read /proc/sys/kernel/random/boot_id" >&2; exit 3; }
[ "$_drplan_b" = "$_drplan_boot" ] || exit 1
_drplan_tree=
if _drplan_stat "$_drplan_pid" && [ "$_drplan_t" = "$_drplan_start" ]; then _drplan_tree=" $_drplan_pid "; fi
_drplan_own=yes
if _drplan_stat "$_drplan_scope" && [ "$_drplan_t" -gt "$_drplan_start" ]; then _drplan_own=no; fi
_drplan_all= _drplan_found=
set +f; set -- /proc/[0-9]*; set -f
for _drplan_d; do
  _drplan_p=${_drplan_d#/proc/}
  [ "$_drplan_p" != $$ ] && _drplan_stat "$_drplan_p" && [ "$_drplan_t" -ge "$_drplan_start" ] || continue
  case $_drplan_st in Z|X|x) continue;; esac
  _drplan_all="$_drplan_all $_drplan_p:$_drplan_pp"
  case $_drplan_kind in g) _drplan_in=$_drplan_pg;; *) _drplan_in=$_drplan_ss;; esac
  [ "$_drplan_own:$_drplan_in" = "yes:$_drplan_scope" ] && _drplan_found="$_drplan_found $_drplan_p"
done
_drplan_grew=${_drplan_tree:+yes}
while [ "$_drplan_grew" = yes ]; do
  _drplan_grew=no
  for _drplan_e in $_drplan_all; do
    _drplan_p=${_drplan_e%%:*}
    case $_drplan_tree in *" $_drplan_p "*) continue;; esac
    case $_drplan_tree in *" ${_drplan_e#*:} "*) _drplan_tree="$_drplan_tree$_drplan_p " _drplan_grew=yes;; esac
  done
done
for _drplan_p in $_drplan_tree; do
  case " $_drplan_found " in *" $_drplan_p "*) ;; *) _drplan_found="$_drplan_found $_drplan_p";; esac
done
[ -n "$_drplan_found" ] || exit 1
[ "$_drplan_op" = check ] || kill -s "$_drplan_op" $_drplan_found 2>/dev/null
echo $_drplan_found"#;

/// The identity of a local command that was just spawned (and not yet reaped, so that its
/// `/proc` entry exists even if it already exited).
pub(crate) fn local(pid: i32, user: &str) -> io::Result<CommandIdentity> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, start_time) = parse_stat(&stat)
        .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat has no start time")))?;
    Ok(CommandIdentity {
        host: super::local::HOST.to_owned(),
        user: user.to_owned(),
        pid,
        pgid: pid,
        session: None,
        boot_id: boot_id()?.to_owned(),
        start_time,
    })
}

/// This machine's boot id, read once.
fn boot_id() -> io::Result<&'static str> {
    static BOOT_ID: OnceLock<String> = OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return Ok(id);
    }
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    Ok(BOOT_ID.get_or_init(|| id.trim().to_owned()))
}

/// (process group, start time) from a `/proc/PID/stat` line. The command name (field 2)
/// is in parentheses and may itself hold blanks and parentheses, hence the last `) `.
fn parse_stat(stat: &str) -> Option<(i32, u64)> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// The identity in a remote wrapper's start record: `PID PGID SID BOOT_ID START_TIME`, as
/// `wrap::with_markers` writes it after its one-time prefix.
pub(crate) fn from_start_record(record: &str, host: &str, user: &str) -> Option<CommandIdentity> {
    let mut fields = record.split_whitespace();
    let mut next = || fields.next();
    let pid = next()?.parse().ok()?;
    let pgid = next()?.parse().ok()?;
    let session = next()?.parse().ok()?;
    let boot_id = next()?.to_owned();
    let start_time = next()?.parse().ok()?;
    if next().is_some() {
        return None;
    }
    Some(CommandIdentity {
        host: host.to_owned(),
        user: user.to_owned(),
        pid,
        pgid,
        session: Some(session),
        boot_id,
        start_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_are_read() {
        let line = "4242 (my (odd) prog) S 1 4240 4200 0 -1 4194304 103 0 0 0 0 0 0 0 20 0 1 0 299472 3133440 383";
        assert_eq!(parse_stat(line), Some((4240, 299472)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn a_start_record_is_read_strictly() {
        let id = from_start_record(" 10 11 12 b00t 345", "h:22", "root").unwrap();
        assert_eq!((id.pid, id.pgid, id.session), (10, 11, Some(12)));
        assert_eq!((id.boot_id.as_str(), id.start_time), ("b00t", 345));
        assert!(from_start_record("10 11 12 b00t", "h", "u").is_none());
        assert!(from_start_record("10 11 12 b00t 345 extra", "h", "u").is_none());
        assert!(from_start_record("x 11 12 b00t 345", "h", "u").is_none());
    }

    #[test]
    fn this_process_is_alive_to_the_probe_and_a_changed_start_time_is_not() {
        let me = i32::try_from(std::process::id()).unwrap();
        let mut id = local(me, "root").unwrap();
        // Our own group is not ours alone in a test harness; look at the leader only.
        id.pgid = i32::MAX;
        let probe = |id: &CommandIdentity| {
            std::process::Command::new("sh")
                .args(["-c", PROBE_SCRIPT, "sh", "check"])
                .args(id.probe_args())
                .output()
                .unwrap()
        };
        let out = probe(&id);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&me.to_string()));
        id.start_time += 1;
        assert_eq!(probe(&id).status.code(), Some(1));
        id.start_time -= 1;
        id.boot_id = "another-boot".into();
        assert_eq!(probe(&id).status.code(), Some(1));
    }
}
