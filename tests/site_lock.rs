//! The per-site lock, within one process and across processes (flock(1) from util-linux
//! plays the other process: it takes the same kind of lock on the same file).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use drplan::journal::{LockError, LockInfo, SiteLock};

fn info(run: &str) -> LockInfo {
    LockInfo::for_this_process(run, "drplan apply plans/gocd-failover.yaml --site lab")
}

/// Another process holding `path` locked until it is killed or its stdin closes.
fn hold_with_flock(path: &Path) -> Child {
    let mut child = Command::new("flock")
        // -o: the lock belongs to flock itself, not to the command it runs, so killing
        // flock frees the lock (the way a crashed drplan would).
        .args(["-o", "-x", "-n"])
        .arg(path)
        .args(["sh", "-c", "echo locked; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run flock (util-linux)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n", "flock could not take the lock");
    child
}

#[test]
fn a_second_holder_is_refused_with_the_first_ones_details() {
    let state = tempfile::tempdir().unwrap();
    let first = info("20261125T203456.789Z-3f9a");
    let held = SiteLock::acquire(state.path(), "lab", &first).unwrap();
    assert_eq!(held.stale, None);

    let err = SiteLock::acquire(state.path(), "lab", &info("other")).unwrap_err();
    let LockError::Held { holder, .. } = &err else {
        panic!("expected Held, got {err:?}");
    };
    assert_eq!(holder.as_deref(), Some(&first));
    assert_eq!(
        err.to_string(),
        format!(
            "site 'lab' is locked by run 20261125T203456.789Z-3f9a (pid {} on host {} since {})",
            std::process::id(),
            first.host,
            first.started_at
        )
    );
    assert_eq!(
        miette::Diagnostic::code(&err).unwrap().to_string(),
        "drplan::journal::locked"
    );
    // Other sites are independent.
    SiteLock::acquire(state.path(), "dr2", &info("other")).unwrap();

    // Released on drop, cleanly: the next holder gets no stale-lock note.
    drop(held);
    let again = SiteLock::acquire(state.path(), "lab", &info("next")).unwrap();
    assert_eq!(again.stale, None);
    assert_eq!(again.note(), None);
}

#[test]
fn another_process_holding_the_lock_refuses_us_and_we_refuse_it() {
    let state = tempfile::tempdir().unwrap();
    let ours = SiteLock::acquire(state.path(), "lab", &info("ours")).unwrap();
    let status = Command::new("flock")
        .args(["-n", "-x"])
        .arg(ours.lock.path())
        .arg("true")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "flock got a lock we hold");
    let path = ours.lock.path().to_path_buf();
    drop(ours);

    // Now another process holds it, with a holder's details in the file.
    let theirs = info("theirs");
    std::fs::write(&path, serde_json::to_vec(&theirs).unwrap()).unwrap();
    let mut holder = hold_with_flock(&path);
    let err = SiteLock::acquire(state.path(), "lab", &info("ours")).unwrap_err();
    assert!(
        matches!(&err, LockError::Held { holder: Some(h), .. } if **h == theirs),
        "{err:?}"
    );

    // It dies without cleaning up (SIGKILL): the kernel frees the lock, its details stay.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let taken = SiteLock::acquire(state.path(), "lab", &info("ours")).unwrap();
    assert_eq!(taken.stale.as_ref(), Some(&theirs));
    let note = taken.note().unwrap();
    assert!(note.contains("run theirs"), "{note}");
    assert!(note.contains("ended without releasing"), "{note}");
    // The file now names us.
    let now: LockInfo = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(now.run_id, "ours");
}

#[test]
fn a_holder_that_has_not_written_its_details_yet_is_still_a_holder() {
    let state = tempfile::tempdir().unwrap();
    let locks = state.path().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let path = locks.join("lab.lock");
    std::fs::write(&path, "").unwrap();
    let mut holder = hold_with_flock(&path);
    let err = SiteLock::acquire(state.path(), "lab", &info("ours")).unwrap_err();
    assert!(
        matches!(&err, LockError::Held { holder: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("another drplan process"), "{err}");
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(SiteLock::acquire(state.path(), "lab", &info("ours")).is_ok());
}

#[test]
fn site_names_cannot_escape_the_locks_directory() {
    let state = tempfile::tempdir().unwrap();
    for bad in ["", "../x", "a/b", ".hidden"] {
        assert!(
            matches!(
                SiteLock::acquire(state.path(), bad, &info("r")),
                Err(LockError::InvalidSite { .. })
            ),
            "{bad:?}"
        );
    }
}
