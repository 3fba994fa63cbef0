//! The SSH transport when things go wrong: host keys that do not match, hosts that are
//! down, silent, refuse our key, or die in the middle of a command.

mod common;

use std::time::{Duration, Instant};

use common::sshd::{TestSshd, free_port, keygen, known_hosts_line};
use common::{children_of, cmd};
use drplan::transport::{SshSpec, SshTransport, TransportError};

#[tokio::test]
async fn a_host_key_mismatch_is_refused_before_anything_runs() {
    let sshd = TestSshd::start();
    let impostor = sshd.dir.path().join("impostor_ed25519");
    keygen(&impostor);
    let impostor_pub = std::fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let wrong = sshd.dir.path().join("wrong_known_hosts");
    std::fs::write(&wrong, known_hosts_line(sshd.port, &impostor_pub)).unwrap();
    let marker = sshd.dir.path().join("ran");

    let spec = SshSpec {
        known_hosts: wrong.clone(),
        ..sshd.spec()
    };
    let err = SshTransport::connect(&spec).await.unwrap_err();
    let TransportError::HostKey { known_hosts, .. } = &err else {
        panic!("expected a host key error, got {err:?}");
    };
    assert_eq!(known_hosts, &wrong);
    let message = err.to_string();
    assert!(message.contains("could not be verified"), "{message}");
    assert!(message.contains(&wrong.display().to_string()), "{message}");
    assert_eq!(
        miette::Diagnostic::code(&err).unwrap().to_string(),
        "drplan::transport::host_key"
    );
    // Nothing logged in, so nothing (like `touch marker`) could have run.
    assert_eq!(sshd.logins(), 0);
    assert!(!marker.exists());

    // A host missing from known_hosts is refused the same way (never "accept new")…
    let empty = sshd.dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let spec = SshSpec {
        known_hosts: empty.clone(),
        ..sshd.spec()
    };
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(matches!(err, TransportError::HostKey { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "nothing was added"
    );
    // …and so is a known_hosts file that does not exist.
    let spec = SshSpec {
        known_hosts: sshd.dir.path().join("missing"),
        ..sshd.spec()
    };
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(matches!(err, TransportError::HostKey { .. }), "{err:?}");
    assert_eq!(sshd.logins(), 0);
}

#[tokio::test]
async fn a_closed_port_is_unreachable_within_the_connect_timeout() {
    let sshd = TestSshd::start();
    let spec = SshSpec {
        port: free_port(),
        connect_timeout: Duration::from_secs(2),
        ..sshd.spec()
    };
    let started = Instant::now();
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        miette::Diagnostic::code(&err).unwrap().to_string(),
        "drplan::transport::unreachable"
    );
}

#[tokio::test]
async fn a_host_that_never_answers_is_unreachable_within_the_connect_timeout() {
    let sshd = TestSshd::start();
    // Accepts TCP (the kernel completes the handshake) but never says a word: a hung host.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = SshSpec {
        port: silent.local_addr().unwrap().port(),
        connect_timeout: Duration::from_secs(1),
        ..sshd.spec()
    };
    let started = Instant::now();
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_key_is_an_authentication_error() {
    let sshd = TestSshd::start();
    let stranger = sshd.dir.path().join("stranger_ed25519");
    keygen(&stranger);
    let spec = SshSpec {
        identity: Some(stranger),
        ..sshd.spec()
    };
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(matches!(err, TransportError::Auth { .. }), "{err:?}");
}

/// The disaster itself: the host's side of the connection dies while a command runs. The
/// command in flight is reported as Disconnected (in doubt), later ones as Unreachable.
#[tokio::test]
async fn a_host_that_dies_mid_command_is_disconnected_then_unreachable() {
    let sshd = TestSshd::start();
    let t = SshTransport::connect(&sshd.spec()).await.unwrap();
    assert_eq!(t.run(&cmd(&["true"])).await.unwrap().status, Some(0));

    let sleep = cmd(&["sleep", "3.3"]);
    let in_flight = t.run(&sleep);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sessions = children_of(sshd.pid());
        assert!(!sessions.is_empty(), "no per-connection sshd found");
        for pid in sessions {
            // SAFETY: kill(2) on a process our test sshd forked for this connection.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    };
    let (result, ()) = tokio::join!(in_flight, kill);
    let err = result.unwrap_err();
    assert!(
        matches!(err, TransportError::Disconnected { .. }),
        "{err:?}"
    );

    // Give the master a moment to notice and exit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = t.run(&cmd(&["true"])).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
}
