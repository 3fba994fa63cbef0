//! The SSH transport against a real sshd on 127.0.0.1, through the library API: what
//! commands see (argv, env, stdin, user), one master per host, timeouts, cancellation.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::sshd::TestSshd;
use common::{cmd, processes_running};
use drplan::transport::{BecomeMethod, Command, SshSpec, SshTransport, TransportError};

const AWKWARD: &[&str] = &[
    "plain",
    "two words",
    "",
    "it's",
    "\"double\"",
    "$(touch /tmp/drplan-quoting-pwned)",
    "`id`",
    "a; echo injected",
    "*",
    "/etc/*",
    "~",
    "#not a comment",
    "line one\nline two",
    "tab\there",
    "back\\slash",
    "bang!",
    "$HOME ${PATH}",
    "&& || | > < &",
    "naïve — 日本語 🚀",
    "-n",
    "--",
    "=",
    " leading and trailing ",
    "'",
    "''",
];

async fn printed_args(t: &SshTransport, c: &Command) -> Vec<String> {
    let out = t.run(c).await.unwrap();
    assert_eq!(out.status, Some(0), "stderr: {}", out.stderr_tail(5));
    let mut parts: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
        .collect();
    assert_eq!(parts.pop().as_deref(), Some(""), "output ends with NUL");
    parts
}

#[tokio::test]
async fn every_argument_arrives_byte_exact() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let mut argv = vec!["printf", "%s\\0"];
    argv.extend(AWKWARD);
    assert_eq!(printed_args(&t, &cmd(&argv)).await, AWKWARD);
    assert!(!Path::new("/tmp/drplan-quoting-pwned").exists());

    // The same through every wrapper: become, timeout and env (variables and directory).
    let mut c = cmd(&argv);
    c.become_user = Some("postgres".into());
    c.timeout = Some(Duration::from_secs(20));
    c.cwd = Some("/tmp".into());
    c.env = vec![("DRPLAN_AWKWARD".into(), "x'$(id)\n\"".into())];
    let spec = SshSpec {
        become_method: BecomeMethod::Runuser,
        ..sshd.spec()
    };
    let t2 = SshTransport::connect(&spec).await.unwrap();
    assert_eq!(printed_args(&t2, &c).await, AWKWARD);
    c.argv = vec![
        "sh".into(),
        "-c".into(),
        "printf '%s\\0' \"$(id -un)\" \"$PWD\" \"$DRPLAN_AWKWARD\"".into(),
    ];
    assert_eq!(
        printed_args(&t2, &c).await,
        ["postgres", "/tmp", "x'$(id)\n\""]
    );
    t.close().await;
    t2.close().await;
}

/// Variables (passwords: `PGPASSWORD`) reach the remote command but never any argv on the
/// host, where every user can read them: with and without become, with a timeout and a
/// directory, and the command's own stdin still arrives whole after them.
#[tokio::test]
async fn variables_never_travel_in_argv() {
    let sshd = TestSshd::start();
    let plain = SshTransport::connect(&sshd.spec()).await.unwrap();
    let spec = SshSpec {
        become_method: BecomeMethod::Runuser,
        ..sshd.spec()
    };
    let switched = SshTransport::connect(&spec).await.unwrap();
    let script = format!("{}; cat", common::ARGV_SCAN);
    for (t, user) in [(&plain, None), (&switched, Some("postgres"))] {
        let mut c = cmd(&["sh", "-c", &script]);
        c.env = vec![(
            "PGPASSWORD".into(),
            format!("drplan-probe-{}", std::process::id()),
        )];
        c.become_user = user.map(str::to_owned);
        c.timeout = Some(Duration::from_secs(30));
        c.cwd = Some("/".into());
        c.stdin = Some(b"own input\n".to_vec());
        let out = t.run(&c).await.unwrap();
        assert_eq!(out.status, Some(0), "as {user:?}: {}", out.stderr_tail(5));
        assert_eq!(out.stdout, b"own input\n");
    }
    plain.close().await;
    switched.close().await;
}

#[tokio::test]
async fn one_master_connection_serves_every_command() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    assert_eq!(sshd.logins(), 1);
    let socket = t.control_socket().to_path_buf();
    assert!(socket.exists());
    let mode = std::fs::metadata(t.control_dir()).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );

    for i in 0..10 {
        let out = t.run(&cmd(&["echo", &i.to_string()])).await.unwrap();
        assert_eq!(out.stdout, format!("{i}\n").as_bytes());
    }
    // 25 at once: more than sshd's MaxSessions (10) per connection, so this also proves
    // the transport queues rather than having sessions refused.
    let t = std::sync::Arc::new(t);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let t = t.clone();
        set.spawn(async move { t.run(&cmd(&["sleep", "0.2"])).await });
    }
    while let Some(done) = set.join_next().await {
        let out = done.unwrap().unwrap();
        assert_eq!(out.status, Some(0), "{}", out.stderr_tail(3));
    }
    let Ok(t) = std::sync::Arc::try_unwrap(t) else {
        panic!("all runs are done, so nothing else holds the transport");
    };
    // Had any command opened its own connection, sshd would have logged another login.
    assert_eq!(sshd.logins(), 1);

    let dir = t.control_dir().to_path_buf();
    t.close().await;
    assert!(!socket.exists());
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_timeout_ends_the_remote_command() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let mut c = cmd(&["sh", "-c", "echo before; exec sleep 31.7"]);
    c.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let err = t.run(&c).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    let TransportError::Timeout { after, partial, .. } = &err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(*after, Duration::from_secs(1));
    assert_eq!(partial.stdout, b"before\n");
    // The remote sleep is gone, not merely abandoned by us.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(processes_running(&["sleep", "31.7"]), Vec::<u32>::new());
    // The master survives a timeout: the next command runs on the same connection.
    assert_eq!(t.run(&cmd(&["true"])).await.unwrap().status, Some(0));
    assert_eq!(sshd.logins(), 1);
    t.close().await;
}

#[tokio::test]
async fn become_with_runuser_runs_as_that_user() {
    let sshd = TestSshd::start();
    let spec = SshSpec {
        become_user: Some("postgres".into()),
        become_method: BecomeMethod::Runuser,
        ..sshd.spec()
    };
    let t = SshTransport::connect(&spec).await.unwrap();
    let out = t.run(&cmd(&["id", "-un"])).await.unwrap();
    assert_eq!(out.stdout, b"postgres\n", "{}", out.stderr_tail(3));
    // A command may name the login user to run without the host's default switch.
    let mut c = cmd(&["id", "-un"]);
    c.become_user = Some("root".into());
    assert_eq!(t.run(&c).await.unwrap().stdout, b"root\n");
    t.close().await;
}

#[tokio::test]
async fn stdin_exit_codes_and_stderr_round_trip() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();

    // 3 MiB of every byte value, hashed remotely: all of stdin arrives, unaltered.
    let input: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let mut c = cmd(&["sha256sum"]);
    c.stdin = Some(input.clone());
    let out = t.run(&c).await.unwrap();
    let local = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&input)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.stdout, local.stdout);

    let out = t
        .run(&cmd(&[
            "sh",
            "-c",
            "echo out; echo 'it broke' >&2; exit 42",
        ]))
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_slice()),
        (Some(42), &b"out\n"[..])
    );
    assert_eq!(out.stderr_tail(1), "it broke");
    assert_eq!(
        t.run(&cmd(&["sh", "-c", "exit 255"])).await.unwrap().status,
        Some(255)
    );
    let out = t.run(&cmd(&["drplan-no-such-program"])).await.unwrap();
    assert_eq!(out.status, Some(127));
    assert!(
        out.stderr_tail(1).contains("not found"),
        "{}",
        out.stderr_tail(1)
    );
    let out = t.run(&cmd(&["sh", "-c", "kill -9 $$"])).await.unwrap();
    assert_eq!(out.status, None, "killed by a signal");
    t.close().await;
}

#[tokio::test]
async fn env_and_cwd_reach_the_remote_program() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let mut c = cmd(&["sh", "-c", "printf '%s|%s' \"$PWD\" \"$DRPLAN_V\""]);
    c.cwd = Some("/usr/share".into());
    c.env = vec![("DRPLAN_V".into(), "a 'b' $c".into())];
    let out = t.run(&c).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/usr/share|a 'b' $c");
    t.close().await;
}

/// What the executor must know: dropping `run` does not stop the remote command (the mux
/// protocol cannot), but the remote `timeout` wrapper still does, and the master survives.
#[tokio::test]
async fn a_dropped_run_is_still_bounded_by_its_remote_timeout() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let mut c = cmd(&["sleep", "30.9"]);
    c.timeout = Some(Duration::from_secs(1));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), t.run(&c))
            .await
            .is_err()
    );
    assert_eq!(
        processes_running(&["sleep", "30.9"]).len(),
        1,
        "still running remotely"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(processes_running(&["sleep", "30.9"]), Vec::<u32>::new());
    assert_eq!(t.run(&cmd(&["true"])).await.unwrap().status, Some(0));
    assert_eq!(sshd.logins(), 1);
    t.close().await;
}

#[tokio::test]
async fn stdin_the_program_never_reads_does_not_hang() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let mut c = cmd(&["true"]);
    c.stdin = Some(vec![b'x'; 4 * 1024 * 1024]);
    c.timeout = Some(Duration::from_secs(10));
    let out = tokio::time::timeout(Duration::from_secs(5), t.run(&c))
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(out.status, Some(0));
    t.close().await;
}

/// A command's end is its exit: a daemon it leaves behind holds the session's stdout and
/// stderr, which used to hold the step until the daemon ended (or a `timeout` reported a
/// command that exited 0 as timed out). The daemon itself runs on: the user started it.
#[tokio::test]
async fn a_command_ends_at_its_exit_though_a_daemon_holds_its_output() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    for timeout in [None, Some(Duration::from_secs(3))] {
        let mut c = cmd(&[
            "sh",
            "-c",
            "echo started; echo warming >&2; sleep 300 & echo $!; exit 0",
        ]);
        c.timeout = timeout;
        let started = Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(10), t.run(&c))
            .await
            .expect("the command's exit ends it")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{timeout:?}");
        assert_eq!(out.status, Some(0));
        assert_eq!(out.stderr, b"warming\n", "nothing but the command's stderr");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("started"));
        let daemon: i32 = lines.next().and_then(|l| l.parse().ok()).unwrap();
        // The "remote" host is this machine, so the daemon's pid is ours to look at.
        assert!(
            std::path::Path::new(&format!("/proc/{daemon}/cmdline")).exists(),
            "the daemon is left running"
        );
        // SAFETY: kill(2) on the sleep this test's command started.
        unsafe { libc::kill(daemon, libc::SIGKILL) };
    }
    t.close().await;
}

/// Learning the exit early must not cut the output short: everything a command wrote
/// before it exited arrives, however large, on both streams.
#[tokio::test]
async fn output_written_just_before_the_exit_arrives_whole() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    let script = "seq 1 150000; seq 1 20000 >&2";
    let want = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    for _ in 0..15 {
        let out = t.run(&cmd(&["sh", "-c", script])).await.unwrap();
        assert_eq!(out.status, Some(0));
        assert_eq!(out.stdout.len(), want.stdout.len());
        assert_eq!(out.stderr.len(), want.stderr.len());
        assert!(out.stdout == want.stdout && out.stderr == want.stderr);
    }
    t.close().await;
}
