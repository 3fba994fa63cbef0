//! Why ssh could not open a master connection, read from what ssh printed.
//!
//! ssh reports failures only in prose (the log it writes with `-E`), so this file reads the words OpenSSH uses and sorts them into the distinctions
//! the executor acts on: host key, authentication, unreachable. It must not do I/O.

use super::TransportError;
use super::ssh::SshSpec;

/// Sort a failed master start into the distinctions the executor acts on, from what ssh
/// logged. Only a connection that could not be made (refused, timed out, no route, no such
/// name, closed before the SSH handshake) is `Unreachable`: a key that does not match is a
/// `HostKey` error and a refused login an `Auth` error, which a step's `on_unreachable:
/// skip` must never skip (a changed key may be an impostor in the middle).
pub(super) fn connect_error(spec: &SshSpec, host: &str, user: &str, log: &str) -> TransportError {
    let detail = summary(log);
    let lower = log.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&[
        "host key verification failed",
        "remote host identification has changed",
        "host key is known",
    ]) {
        TransportError::HostKey {
            host: host.to_owned(),
            known_hosts: spec.known_hosts.clone(),
            detail: host_key_summary(log).unwrap_or(detail),
        }
    } else if has(&["permission denied", "too many authentication failures"]) {
        TransportError::Auth {
            host: host.to_owned(),
            user: user.to_owned(),
            detail,
        }
    } else if has(&[
        "connection refused",
        "timed out",
        "no route to host",
        "network is unreachable",
        "could not resolve",
        "name or service not known",
        "connection closed",
        "connection reset",
        "kex_exchange_identification",
    ]) {
        TransportError::Unreachable {
            host: host.to_owned(),
            detail,
        }
    } else {
        TransportError::Ssh {
            host: host.to_owned(),
            detail,
        }
    }
}

/// The informative lines of an ssh log: not the `@@@` banner, at most the last three.
fn summary(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@'))
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// What ssh said about the key, without its banner and without its advice to delete the
/// known key (`ssh-keygen -R`), which is the wrong first move when a DR peer changes its key.
fn host_key_summary(log: &str) -> Option<String> {
    let facts: Vec<String> = log
        .lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.trim_end_matches('.');
            if l.starts_with("SHA256:") {
                Some(format!("the host offered {l}"))
            } else if ["Offending", "Host key for", "No ", "Host key verification"]
                .iter()
                .any(|p| l.starts_with(p))
            {
                Some(l.to_owned())
            } else {
                None
            }
        })
        .collect();
    (!facts.is_empty()).then(|| facts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: &str = "\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
The fingerprint for the ED25519 key sent by the remote host is
SHA256:abc.
Please contact your system administrator.
Add correct host key in /k/known_hosts to get rid of this message.
Offending ED25519 key in /k/known_hosts:1
  remove with:
  ssh-keygen -f \"/k/known_hosts\" -R \"[10.0.0.1]:22\"
Host key for 10.0.0.1 has changed and you have requested strict checking.
Host key verification failed.
";

    fn classify(log: &str) -> TransportError {
        let spec = SshSpec::new("10.0.0.1", "/k/known_hosts");
        connect_error(&spec, "10.0.0.1:22", "ops", log)
    }

    #[test]
    fn a_changed_key_is_a_host_key_error_without_the_delete_advice() {
        let TransportError::HostKey { detail, .. } = classify(CHANGED) else {
            panic!("not a host key error");
        };
        assert_eq!(
            detail,
            "the host offered SHA256:abc; Offending ED25519 key in /k/known_hosts:1; \
             Host key for 10.0.0.1 has changed and you have requested strict checking; \
             Host key verification failed"
        );
    }

    #[test]
    fn ssh_words_sort_into_the_right_kind() {
        let kind = |log: &str| match classify(log) {
            TransportError::HostKey { .. } => "host_key",
            TransportError::Auth { .. } => "auth",
            TransportError::Unreachable { .. } => "unreachable",
            _ => "other",
        };
        assert_eq!(
            kind("ssh: connect to host 10.0.0.1 port 22: No route to host"),
            "unreachable"
        );
        assert_eq!(
            kind("ssh: Could not resolve hostname nowhere: Name or service not known"),
            "unreachable"
        );
        assert_eq!(
            kind("kex_exchange_identification: read: Connection reset by peer"),
            "unreachable"
        );
        assert_eq!(kind("ops@10.0.0.1: Permission denied (publickey)."), "auth");
        assert_eq!(
            kind(
                "No ED25519 host key is known for 10.0.0.1 and you have requested strict checking.\nHost key verification failed."
            ),
            "host_key"
        );
        assert_eq!(kind("something else entirely"), "other");
    }
}
