//! The run store and journal on a real file system, through the library API.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use drplan::journal::{FileJournal, FileRunStore, Journal, JournalError, RunId, RunStore};
use serde_json::{Value, json};

/// A temporary directory that is 0700 whatever the umask: one test below runs with umask
/// 000, and a state directory inside a directory everyone can write is refused.
fn private_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn records() -> Vec<Value> {
    vec![
        json!({"event": "run_started", "plan": "gocd-failover"}),
        json!({"event": "started", "step": "stop-go-primary", "attempt": 1}),
        json!({"event": "finished", "step": "stop-go-primary", "status": "ok",
               "result": {"stderr": "line one\nline two", "ratio": 0.1, "big": 18446744073709551615u64}}),
        json!({"event": "started", "step": "promote-pg-standby", "note": "naïve ✓ \"quoted\""}),
    ]
}

fn write_journal(path: &Path, records: &[Value]) {
    let (mut journal, _) = FileJournal::open(path).unwrap();
    for r in records {
        journal.append(r).unwrap();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn records_and_plan_come_back_exactly_and_appends_continue() {
    let state = private_tempdir();
    let store = FileRunStore::new(state.path().join(".drplan"));
    assert_eq!(store.latest_run().unwrap(), None);
    let id = RunId::generate().unwrap();
    let plan = br#"{"name":"gocd-failover","steps":[]}"#;
    let mut run = store.create_run(&id, plan).unwrap();
    for r in &records()[..2] {
        run.journal.append(r).unwrap();
    }
    drop(run);

    let mut opened = store.open_run(&id).unwrap();
    assert_eq!(opened.plan, plan);
    assert_eq!(opened.replay.records, &records()[..2]);
    assert!(!opened.replay.torn_tail);
    for r in &records()[2..] {
        opened.journal.append(r).unwrap();
    }
    assert_eq!(opened.journal.replay().unwrap().records, records());
    drop(opened);
    assert_eq!(store.open_run(&id).unwrap().replay.records, records());

    // Sequence numbers run on across reopenings: every line says where it belongs.
    let text = std::fs::read_to_string(store.run_dir(&id).join("journal.jsonl")).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);

    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = RunId::generate().unwrap();
    store.create_run(&second, b"{}").unwrap();
    let runs = store.list_runs().unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [id.clone(), second.clone()]
    );
    assert_eq!(store.latest_run().unwrap().unwrap().id, second);
    assert!(matches!(
        store.create_run(&id, b"{}"),
        Err(JournalError::RunExists { .. })
    ));
}

#[test]
fn unknown_runs_are_reported_as_such() {
    let state = private_tempdir();
    let store = FileRunStore::new(state.path());
    let id: RunId = "20261125T203456.789Z-3f9a".parse().unwrap();
    let err = store.open_run(&id).err().unwrap();
    assert!(matches!(err, JournalError::RunNotFound { .. }), "{err:?}");
    assert!("../etc".parse::<RunId>().is_err());
}

/// Every crash point inside the last line: replay never returns part of a record, never
/// fails, and says the tail is torn; the next append cuts it off and continues cleanly.
#[test]
fn a_torn_last_line_is_reported_and_cut_at_every_byte() {
    let dir = private_tempdir();
    let path = dir.path().join("journal.jsonl");
    write_journal(&path, &records());
    let full = std::fs::read(&path).unwrap();
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let intact = &records()[..3];
    let next = json!({"event": "resumed"});

    for cut in last_start..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let (mut journal, replay) = FileJournal::open(&path).unwrap();
        assert_eq!(replay.records, intact, "cut at {cut}");
        assert_eq!(replay.torn_tail, cut > last_start, "cut at {cut}");

        journal.append(&next).unwrap();
        let mut expected = intact.to_vec();
        expected.push(next.clone());
        let again = journal.replay().unwrap();
        assert_eq!(
            (again.records, again.torn_tail),
            (expected, false),
            "cut at {cut}"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..last_start], &full[..last_start], "cut at {cut}");
    }

    // A complete last line whose record fails its checksum is torn too (a crash can leave
    // garbage where the page was not yet written), never a record.
    let mut flipped = full.clone();
    let inside = last_start + (full.len() - last_start) * 3 / 4;
    flipped[inside] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    let (_, replay) = FileJournal::open(&path).unwrap();
    assert_eq!(
        (replay.records.as_slice(), replay.torn_tail),
        (intact, true)
    );
}

#[test]
fn damage_before_the_last_line_is_an_error_naming_the_line() {
    let dir = private_tempdir();
    let path = dir.path().join("journal.jsonl");
    write_journal(&path, &records());
    let full = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = full.split_inclusive('\n').collect();

    // A changed character in line 2.
    let changed = full.replacen("stop-go-primary", "stop-go-primarY", 1);
    std::fs::write(&path, &changed).unwrap();
    let err = FileJournal::open(&path).err().unwrap();
    assert!(
        matches!(err, JournalError::Corrupt { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 2"), "{err}");

    // A line missing from the middle.
    std::fs::write(&path, [lines[0], lines[2], lines[3]].concat()).unwrap();
    let err = FileJournal::open(&path).err().unwrap();
    assert!(
        matches!(err, JournalError::Corrupt { line: 2, .. }),
        "{err:?}"
    );

    // A torn line followed by more lines is not a crash artefact either.
    std::fs::write(&path, [lines[0], &lines[1][..10], "\n", lines[2]].concat()).unwrap();
    assert!(matches!(
        FileJournal::open(&path),
        Err(JournalError::Corrupt { line: 2, .. })
    ));
}

#[test]
fn state_is_private_whatever_the_umask() {
    for umask in [0o000, 0o277] {
        // SAFETY: umask only swaps a process-wide integer. The modes below do not depend
        // on it (that is the point), so tests running alongside are unaffected.
        let old = unsafe { libc::umask(umask) };
        let state = private_tempdir();
        let state_dir = state.path().join("deep/.drplan");
        let store = FileRunStore::new(&state_dir);
        let id = RunId::generate().unwrap();
        let mut run = store.create_run(&id, b"{}").unwrap();
        run.journal.append(&json!({"event": "x"})).unwrap();
        let info = drplan::journal::LockInfo::for_this_process(id.as_str(), "drplan apply");
        let lock = drplan::journal::SiteLock::acquire(&state_dir, "lab", &info).unwrap();
        // SAFETY: as above.
        unsafe { libc::umask(old) };

        let run_dir = store.run_dir(&id);
        for dir in [
            state.path().join("deep"),
            state_dir.clone(),
            state_dir.join("runs"),
            run_dir.clone(),
            state_dir.join("locks"),
        ] {
            assert_eq!(mode(&dir), 0o700, "{} with umask {umask:o}", dir.display());
        }
        for file in [
            run_dir.join("plan.json"),
            run_dir.join("journal.jsonl"),
            lock.lock.path().to_path_buf(),
        ] {
            assert_eq!(
                mode(&file),
                0o600,
                "{} with umask {umask:o}",
                file.display()
            );
        }
        assert!(!run_dir.join("plan.json.tmp").exists());
    }
}
