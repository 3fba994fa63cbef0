//! Tests of the local transport against real processes.

use super::*;
use crate::transport::OUTPUT_CAP;
use std::time::Instant;

fn transport() -> LocalTransport {
    LocalTransport::new(&LocalSpec::default()).unwrap()
}

fn cmd(argv: &[&str]) -> Command {
    Command::new(argv.iter().copied())
}

/// Running, as opposed to gone or a zombie nobody reaps (PID 1 here does not).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state follows the parenthesised command name
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn argv_reaches_the_program_exactly() {
    let args = [
        "two words",
        "",
        "it's \"quoted\"",
        "$(touch /tmp/drplan-pwned) `id` ; ls *",
        "line\nbreak",
        "naïve 日本",
        "-n",
    ];
    let mut argv = vec!["printf", "%s\\0"];
    argv.extend(args);
    let out = transport().run(&cmd(&argv)).await.unwrap();
    assert_eq!(out.status, Some(0));
    let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    let want: Vec<&[u8]> = args
        .iter()
        .map(|a| a.as_bytes())
        .chain([&b""[..]])
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn env_cwd_stdin_status_and_stderr() {
    let mut c = cmd(&[
        "sh",
        "-c",
        "printf '%s|' \"$DRPLAN_X\" \"$(pwd)\"; cat; echo oops >&2; exit 3",
    ]);
    c.env = vec![("DRPLAN_X".into(), "a b $c".into())];
    c.cwd = Some("/usr".into());
    c.stdin = Some(b"in\0put\xff".to_vec());
    let out = transport().run(&c).await.unwrap();
    assert_eq!(out.status, Some(3));
    assert_eq!(out.stdout, b"a b $c|/usr|in\0put\xff");
    assert_eq!(out.stderr_tail(1), "oops");
}

#[tokio::test]
async fn signal_death_has_no_status_and_missing_programs_say_127() {
    let out = transport()
        .run(&cmd(&["sh", "-c", "kill -9 $$"]))
        .await
        .unwrap();
    assert_eq!(out.status, None);
    let out = transport().run(&cmd(&["/nonexistent/prog"])).await.unwrap();
    assert_eq!(out.status, Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));
}

#[tokio::test]
async fn long_output_keeps_the_tail_and_says_so() {
    let script = format!("head -c {} /dev/zero; printf END", OUTPUT_CAP * 3);
    let out = transport().run(&cmd(&["sh", "-c", &script])).await.unwrap();
    assert!(out.stdout_truncated);
    assert_eq!(out.stdout.len(), OUTPUT_CAP);
    assert!(out.stdout.ends_with(b"END"));
    assert!(!out.stderr_truncated);
}

#[tokio::test]
async fn timeout_stops_the_whole_process_group() {
    let mut c = cmd(&["sh", "-c", "sleep 41.3 & echo $!; wait"]);
    c.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let err = transport().run(&c).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let TransportError::Timeout { after, partial, .. } = err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(after, Duration::from_millis(300));
    let pid: i32 = String::from_utf8_lossy(&partial.stdout)
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !running(pid),
        "the background sleep {pid} survived the timeout"
    );
}

#[tokio::test]
async fn a_dropped_run_kills_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 42.7", pidfile.display());
    let t = transport();
    let c = cmd(&["sh", "-c", &script]);
    let run = t.run(&c);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), run)
            .await
            .is_err()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!running(pid), "sleep {pid} outlived the dropped future");
}

#[tokio::test]
async fn become_with_runuser_switches_user_and_keeps_env_and_cwd() {
    let t = LocalTransport::new(&LocalSpec {
        become_user: Some("postgres".into()),
        become_method: BecomeMethod::Runuser,
    })
    .unwrap();
    let mut c = cmd(&["sh", "-c", "id -un; pwd; printf %s \"$DRPLAN_X\""]);
    c.env = vec![("DRPLAN_X".into(), "kept".into())];
    c.cwd = Some("/tmp".into());
    let out = t.run(&c).await.unwrap();
    assert_eq!(out.status, Some(0), "{}", out.stderr_tail(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "postgres\n/tmp\nkept");
}

/// A command's end is its exit: a daemon it leaves behind keeps stdout and stderr open, but
/// does not hold the command (it used to, until the daemon ended or the timeout struck and
/// a command that exited 0 was reported as timed out). The daemon itself runs on.
#[tokio::test]
async fn a_command_ends_at_its_exit_though_a_daemon_holds_its_output() {
    for timeout in [None, Some(Duration::from_secs(3))] {
        let mut c = cmd(&["sh", "-c", "echo started; sleep 300 & echo $!; exit 0"]);
        c.timeout = timeout;
        let started = Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(10), transport().run(&c))
            .await
            .expect("the command's exit ends it")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{timeout:?}");
        assert_eq!(out.status, Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("started"));
        let daemon: i32 = lines.next().and_then(|l| l.parse().ok()).unwrap();
        assert!(running(daemon), "the daemon is left running");
        // SAFETY: kill(2) on the sleep this test's command started.
        unsafe { libc::kill(daemon, libc::SIGKILL) };
    }
}

/// The SSH transport's wrapper (run here through a local shell) writes the start record
/// first, passes the command's status on, and a signal death stays one.
#[tokio::test]
async fn the_remote_wrapper_keeps_the_status_and_starts_with_its_identity() {
    let cases = [
        ("exit 0", Some(0)),
        ("exit 3", Some(3)),
        ("exit 124", Some(124)),
        ("kill -9 $$", None),
        ("kill -TERM $$", None),
        ("drplan-no-such-program", Some(127)),
    ];
    for (script, status) in cases {
        let argv = wrap::with_markers(vec!["sh".into(), "-c".into(), script.into()], "[S", "[M]");
        let out = transport().run(&Command::new(argv)).await.unwrap();
        assert_eq!(out.status, status, "{script}");
        assert!(out.stderr.ends_with(b"[M]"), "{script}");
        let text = String::from_utf8_lossy(&out.stderr);
        let record = text
            .strip_prefix("[S")
            .and_then(|t| t.split_once(']'))
            .map(|(r, _)| r)
            .unwrap_or_default();
        let id = super::super::identity::from_start_record(record, "local", "root");
        assert!(id.is_some_and(|id| id.start_time > 0), "{script}: {text}");
    }
}
