//! Turning a `Command` into the argv that the host really executes: the become wrapper
//! (`sudo`/`runuser`), the `timeout` wrapper, the `env` wrapper (directory) and the
//! variables' reader.
//!
//! Over SSH the whole argv is then wrapped once more, in a tiny `sh` script that writes who
//! the command is and marks its exit on stderr (`with_markers`).
//!
//! Pure functions, no I/O. This file must not quote anything for a shell: the result is still
//! an argv vector, and the SSH transport quotes each element exactly once.
//!
//! The order is `become → timeout → env → program`:
//! - `env` sits inside the become wrapper because `sudo` resets the environment and
//!   `runuser` may; only variables set after the switch reach the program.
//! - `timeout` sits inside the become wrapper so that it runs as the same user as the
//!   program and can always kill it (and everything in its process group) when time is up;
//!   from outside, `sudo` could not forward the final SIGKILL.
//! - Variables never travel in argv, which every user of the host can read (`ps`, and
//!   `/proc/PID/cmdline`): passwords are variables (`PGPASSWORD`). They are written to the
//!   command's stdin, ahead of its own input, and a small `sh` reader (`ENV_READER`) exports
//!   them and `exec`s the program, which reads the rest of stdin as its own.

use std::time::Duration;

use super::{BecomeMethod, Command, TransportError};

/// Grace between the remote `timeout`'s SIGTERM and its SIGKILL (`timeout --kill-after`).
pub(crate) const KILL_AFTER: Duration = Duration::from_secs(5);

/// Refuse what cannot be passed to `execve` faithfully.
pub(crate) fn check(cmd: &Command) -> Result<(), TransportError> {
    let Some(program) = cmd.argv.first() else {
        return Err(TransportError::invalid("argv is empty"));
    };
    if program.is_empty() {
        return Err(TransportError::invalid("the program name is empty"));
    }
    // C strings end at NUL: such an argument would silently arrive shortened.
    if let Some(i) = cmd.argv.iter().position(|a| a.contains('\0')) {
        return Err(TransportError::invalid(format!(
            "argument {i} contains a NUL byte"
        )));
    }
    for (key, value) in &cmd.env {
        let mut chars = key.chars();
        let name = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name || key.starts_with("_drplan_") {
            return Err(TransportError::invalid(format!(
                "{key:?} is not a valid environment variable name (letters, digits and `_`, not starting with a digit or `_drplan_`)"
            )));
        }
        if value.contains('\0') {
            return Err(TransportError::invalid(format!(
                "the value of {key} contains a NUL byte"
            )));
        }
    }
    if cmd.cwd.as_deref().is_some_and(|d| d.contains('\0')) {
        return Err(TransportError::invalid(
            "the working directory contains a NUL byte",
        ));
    }
    Ok(())
}

/// The user to switch to, if a switch is needed at all.
pub(crate) fn become_target<'a>(
    cmd: &'a Command,
    host_default: Option<&'a str>,
    method: BecomeMethod,
    login_user: &str,
) -> Option<&'a str> {
    let user = cmd.become_user.as_deref().or(host_default)?;
    (method != BecomeMethod::None && user != login_user).then_some(user)
}

/// Exports the variables written ahead of the command's stdin, then becomes the command:
/// `sh -c ENV_READER sh COUNT argv…`. For each of COUNT variables stdin holds its name, the
/// number of lines of its value, and those lines, each ended by a newline (`env_block`).
/// `read` takes one byte at a time from a pipe, so the command's own input stays unread.
const ENV_READER: &str = r#"_drplan_n=$1; shift; while [ "$_drplan_n" -gt 0 ]; do IFS= read -r _drplan_k && IFS= read -r _drplan_c || exit 125; _drplan_v=; _drplan_i=0; while [ "$_drplan_i" -lt "$_drplan_c" ]; do IFS= read -r _drplan_l || exit 125; if [ "$_drplan_i" -eq 0 ]; then _drplan_v=$_drplan_l; else _drplan_v="$_drplan_v
$_drplan_l"; fi; _drplan_i=$((_drplan_i + 1)); done; export "$_drplan_k=$_drplan_v" || exit 125; _drplan_n=$((_drplan_n - 1)); done; exec "$@""#;

/// The variables as `ENV_READER` reads them.
fn env_block(env: &[(String, String)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (key, value) in env {
        let lines: Vec<&str> = value.split('\n').collect();
        block.extend_from_slice(format!("{key}\n{}\n", lines.len()).as_bytes());
        for line in lines {
            block.extend_from_slice(line.as_bytes());
            block.push(b'\n');
        }
    }
    block
}

/// What the host executes: the argv, and the bytes for its stdin.
#[derive(Debug, PartialEq)]
pub(crate) struct Wrapped {
    pub argv: Vec<String>,
    /// The variables (`ENV_READER`), then the command's own stdin; None: no stdin.
    pub stdin: Option<Vec<u8>>,
}

/// The full argv: `[become…] [timeout…] [env -C DIR] [sh -c ENV_READER…] argv…`, and its
/// stdin.
///
/// `env_in_argv` is false only for a local command without become, which gets its
/// variables and directory straight from `tokio::process`.
pub(crate) fn build(
    cmd: &Command,
    become_as: Option<(&str, BecomeMethod)>,
    timeout: Option<Duration>,
    env_in_argv: bool,
) -> Result<Wrapped, TransportError> {
    check(cmd)?;
    let mut argv = Vec::with_capacity(cmd.argv.len() + 8);
    match become_as {
        Some((user, BecomeMethod::Sudo)) => {
            // -n: never prompt for a password; a prompt would hang a remote command forever.
            argv.extend(["sudo", "-n", "-u", user, "--"].map(String::from));
        }
        Some((user, BecomeMethod::Runuser)) => {
            argv.extend(["runuser", "-u", user, "--"].map(String::from));
        }
        Some((_, BecomeMethod::None)) | None => {}
    }
    if let Some(limit) = timeout {
        argv.extend([
            "timeout".to_owned(),
            format!("--kill-after={}s", KILL_AFTER.as_secs()),
            timeout_arg(limit),
        ]);
    }
    let mut stdin = cmd.stdin.clone();
    if env_in_argv && let Some(dir) = &cmd.cwd {
        // env(1) takes every leading NAME=VALUE word as an assignment, even after `--`.
        let first = if cmd.env.is_empty() {
            &cmd.argv[0]
        } else {
            "sh"
        };
        if first.contains('=') {
            return Err(TransportError::invalid(
                "a program whose name contains '=' cannot be given a directory (env(1) would take it for a variable)",
            ));
        }
        argv.extend(["env", "-C", dir, "--"].map(String::from));
    }
    if env_in_argv && !cmd.env.is_empty() {
        argv.extend(["sh", "-c", ENV_READER, "sh"].map(String::from));
        argv.push(cmd.env.len().to_string());
        let mut bytes = env_block(&cmd.env);
        bytes.extend_from_slice(cmd.stdin.as_deref().unwrap_or_default());
        stdin = Some(bytes);
    }
    argv.extend(cmd.argv.iter().cloned());
    Ok(Wrapped { argv, stdin })
}

/// The remote wrapper around every SSH command: write a start record to stderr (`$1`, a
/// one-time prefix, then `PID PGID SID BOOT_ID START_TIME]`), run the command, then write
/// `$2` (the end marker) to stderr, then end the way the command ended.
///
/// The start record is who the command is (`identity`): the wrapper's pid, process group
/// and session, the host's boot id and the wrapper's start time, read with the shell's own
/// `read` (no extra process) before the command runs, so nothing the command writes can
/// come before it or be taken for it. The wrapper waits for the command, so while the
/// wrapper lives the command does. On a host without `/proc` the record is left out.
///
/// The end marker: over SSH the end of a command is only known from its exit status, and a
/// mux session's wait cuts short the output not yet forwarded (see `capture::End`). This
/// marker tells drplan that the command exited even while a daemon it started keeps stdout
/// and stderr open. A signal death (status 129–143 in a shell) is passed on by the shell
/// killing itself with the same signal, so drplan still sees "killed by a signal"; a
/// program that itself exits with such a status is reported as killed too (sh cannot tell
/// the two apart). `set -f`: the unquoted stat fields must not be globbed (`"$@"` is
/// quoted, so the command is not affected).
const WRAPPER_SCRIPT: &str = r#"set -f; _drplan_s=$1 _drplan_e=$2; shift 2; _drplan_id() { _drplan_g=$3 _drplan_i=$4 _drplan_t=${20}; }; { read -r _drplan_b < /proc/sys/kernel/random/boot_id && read -r _drplan_l < /proc/$$/stat; } 2>/dev/null && _drplan_id ${_drplan_l##*) } && printf '%s %s %s %s %s %s]' "$_drplan_s" $$ "$_drplan_g" "$_drplan_i" "$_drplan_b" "$_drplan_t" >&2; "$@"; _drplan_x=$?; printf %s "$_drplan_e" >&2; case $_drplan_x in 129|13[0-9]|14[0-3]) kill -$((_drplan_x - 128)) $$;; esac; exit $_drplan_x"#;

/// `argv` run under the remote wrapper: `sh -c SCRIPT sh START END argv…`. The markers and
/// the argv stay arguments (never spliced into the script), so they are quoted once, like
/// every other argument.
pub(crate) fn with_markers(argv: Vec<String>, start: &str, end: &str) -> Vec<String> {
    let mut wrapped = Vec::with_capacity(argv.len() + 6);
    wrapped.extend(["sh", "-c", WRAPPER_SCRIPT, "sh", start, end].map(String::from));
    wrapped.extend(argv);
    wrapped
}

/// `timeout(1)`'s duration: milliseconds, rounded up, never 0 (0 would disable the limit).
fn timeout_arg(limit: Duration) -> String {
    let ms = limit.as_nanos().div_ceil(1_000_000).max(1);
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str]) -> Command {
        Command::new(argv.iter().copied())
    }

    #[test]
    fn become_env_and_timeout_nest_in_that_order() {
        let mut c = cmd(&["psql", "-c", "select 1"]);
        c.env = vec![("PGPASSWORD".into(), "pw".into())];
        c.cwd = Some("/tmp".into());
        c.stdin = Some(b"input".to_vec());
        let built = build(
            &c,
            Some(("postgres", BecomeMethod::Sudo)),
            Some(Duration::from_millis(1500)),
            true,
        )
        .unwrap();
        assert_eq!(
            built.argv,
            [
                "sudo",
                "-n",
                "-u",
                "postgres",
                "--",
                "timeout",
                "--kill-after=5s",
                "1.500s",
                "env",
                "-C",
                "/tmp",
                "--",
                "sh",
                "-c",
                ENV_READER,
                "sh",
                "1",
                "psql",
                "-c",
                "select 1"
            ]
        );
        // The password is on stdin, ahead of the command's own input; never in argv.
        assert_eq!(
            built.stdin.as_deref(),
            Some(&b"PGPASSWORD\n1\npw\ninput"[..])
        );
        assert!(
            !built
                .argv
                .iter()
                .any(|a| a.contains("pw") && a != ENV_READER)
        );
    }

    #[test]
    fn the_reader_exports_any_value_and_leaves_the_input_to_the_command() {
        let values = [
            "",
            "plain",
            "it's \"q\" $(x) `y` \\",
            "two\nlines\n",
            "\n\n",
        ];
        let mut c = cmd(&["sh", "-c", r#"printf '%s|' "$A" "$B" "$C" "$D" "$E"; cat"#]);
        c.env = ["A", "B", "C", "D", "E"]
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.stdin = Some(b"rest of\ninput".to_vec());
        let built = build(&c, None, None, true).unwrap();
        let mut child = std::process::Command::new(&built.argv[0])
            .args(&built.argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(built.stdin.as_deref().unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        // Command substitution strips trailing newlines in sh, so the check compares the
        // values as printf saw them.
        let want = format!("{}|rest of\ninput", values.join("|"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }

    #[test]
    fn runuser_and_no_wrappers() {
        let c = cmd(&["id", "-un"]);
        let built = build(&c, Some(("postgres", BecomeMethod::Runuser)), None, true).unwrap();
        assert_eq!(built.argv, ["runuser", "-u", "postgres", "--", "id", "-un"]);
        assert_eq!(built.stdin, None);
        assert_eq!(build(&c, None, None, true).unwrap().argv, ["id", "-un"]);
    }

    #[test]
    fn become_only_when_the_user_differs_and_the_method_allows() {
        let mut c = cmd(&["id"]);
        assert_eq!(
            become_target(&c, Some("postgres"), BecomeMethod::Sudo, "root"),
            Some("postgres")
        );
        assert_eq!(
            become_target(&c, Some("root"), BecomeMethod::Sudo, "root"),
            None
        );
        assert_eq!(
            become_target(&c, Some("postgres"), BecomeMethod::None, "root"),
            None
        );
        c.become_user = Some("ops".into());
        assert_eq!(
            become_target(&c, Some("postgres"), BecomeMethod::Runuser, "root"),
            Some("ops")
        );
        assert_eq!(
            become_target(&cmd(&["id"]), None, BecomeMethod::Sudo, "root"),
            None
        );
    }

    #[test]
    fn zero_and_sub_millisecond_timeouts_round_up() {
        assert_eq!(timeout_arg(Duration::ZERO), "0.001s");
        assert_eq!(timeout_arg(Duration::from_micros(1)), "0.001s");
        assert_eq!(timeout_arg(Duration::from_secs(90)), "90.000s");
    }

    #[test]
    fn unrepresentable_commands_are_refused() {
        assert!(build(&cmd(&[]), None, None, true).is_err());
        assert!(build(&cmd(&[""]), None, None, true).is_err());
        assert!(build(&cmd(&["echo", "a\0b"]), None, None, true).is_err());
        let mut c = cmd(&["A=1"]);
        c.cwd = Some("/".into());
        assert!(build(&c, None, None, true).is_err());
        for bad in ["A=B", "1A", "A-B", "", "_drplan_n"] {
            let mut c = cmd(&["true"]);
            c.env = vec![(bad.into(), "x".into())];
            assert!(build(&c, None, None, true).is_err(), "{bad:?}");
        }
    }
}
