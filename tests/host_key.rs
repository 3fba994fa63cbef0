//! A host key that cannot be verified is never "unreachable": a changed or intercepted key
//! must stop the run, even for a step that says `on_unreachable: skip` (the failover's
//! fencing steps do), and the message says how to check the key before trusting it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::sshd::{TestSshd, keygen, known_hosts_line};
use drplan::transport::{SshSpec, SshTransport, TransportError};

/// A known_hosts file that names another key for the test sshd: what an impostor (or a
/// reinstalled host) looks like.
fn wrong_known_hosts(sshd: &TestSshd) -> PathBuf {
    let impostor = sshd.dir.path().join("impostor_ed25519");
    keygen(&impostor);
    let impostor_pub = fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let wrong = sshd.dir.path().join("wrong_known_hosts");
    fs::write(&wrong, known_hosts_line(sshd.port, &impostor_pub)).unwrap();
    wrong
}

#[tokio::test]
async fn a_changed_host_key_is_not_unreachable_and_says_how_to_check_it() {
    let sshd = TestSshd::start();
    let wrong = wrong_known_hosts(&sshd);
    let spec = SshSpec {
        known_hosts: wrong.clone(),
        ..sshd.spec()
    };
    let err = SshTransport::connect(&spec).await.unwrap_err();
    assert!(matches!(err, TransportError::HostKey { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [
        "could not be verified",
        &format!("ssh-keyscan -p {} 127.0.0.1", sshd.port),
        "fingerprint",
        "ssh-keygen -lf",
        &wrong.display().to_string(),
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    // ssh's own advice (delete the known key) is the wrong first move: not repeated.
    assert!(!message.contains("ssh-keygen -f"), "{message}");
    assert_eq!(sshd.logins(), 0);
}

/// `drplan apply` of a failover-like plan: `fence` on the SSH host with `on_unreachable:
/// skip`, then `promote` on the controller once fencing is done (or skipped). Returns the
/// exit code, everything printed, and whether `promote` ran.
fn apply_fence(
    sshd: &TestSshd,
    known_hosts: &Path,
    identity: &Path,
) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let site = format!(
        "version: 1\nsite: hostkey-{}\nhosts:\n  old_primary: {{ address: 127.0.0.1, port: {}, user: root }}\n  ctl: {{ address: 127.0.0.1, transport: local }}\nssh: {{ identity: {}, known_hosts: {}, connect_timeout: 5s }}\n",
        std::process::id(),
        sshd.port,
        identity.display(),
        known_hosts.display()
    );
    fs::write(dir.path().join("site.yaml"), site).unwrap();
    let promoted = dir.path().join("promoted");
    let plan = format!(
        "version: 1\nname: failover\nroles: [old_primary, ctl]\nsteps:\n  - {{ id: fence, on: old_primary, action: exec, on_unreachable: skip, with: {{ argv: [\"true\"] }} }}\n  - {{ id: promote, on: ctl, action: exec, needs: [fence], with: {{ argv: [touch, \"{}\"] }} }}\n",
        promoted.display()
    );
    fs::write(dir.path().join("plan.yaml"), plan).unwrap();
    let out = common::drplan()
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("apply")
        .arg(dir.path().join("plan.yaml"))
        .arg("--site")
        .arg(dir.path().join("site.yaml"))
        .arg("--yes")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, promoted.exists())
}

/// Through the binary: a fencing step with `on_unreachable: skip` on a host whose key does
/// not match (or is not known at all) must fail the run, not be skipped while the run
/// "succeeds" and promotes; the same for a login the host refuses.
#[test]
fn on_unreachable_skip_does_not_skip_a_host_drplan_cannot_trust_or_log_into() {
    let sshd = TestSshd::start();
    let unknown = sshd.dir.path().join("empty_known_hosts");
    fs::write(&unknown, "").unwrap();
    let stranger = sshd.dir.path().join("stranger_ed25519");
    keygen(&stranger);
    let cases = [
        (
            wrong_known_hosts(&sshd),
            sshd.client_key.clone(),
            "could not be verified",
        ),
        (unknown, sshd.client_key.clone(), "could not be verified"),
        (
            sshd.known_hosts.clone(),
            stranger,
            "refused to let root log in",
        ),
    ];
    for (known_hosts, identity, says) in cases {
        let (code, text, promoted) = apply_fence(&sshd, &known_hosts, &identity);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(!text.contains("unreachable"), "{text}");
        assert!(!promoted, "the run went on without fencing: {text}");
    }
    assert_eq!(sshd.logins(), 0);
}
