//! Runs and site locks in a real etcd cluster (`--store etcd://…`): three members of
//! Debian's etcd on loopback ports, started by the test (`common::etcd`). The plans run on
//! local hosts — the store is what is tested — and each step appends its id to a file, so
//! the file says how many times each step ran.

mod common;

use common::etcd::Cluster;
use common::local::{Site, logging_step, out};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// A step that waits for the file `go` in the site's directory, then logs its id.
fn gated_step(id: &str, needs: &[&str]) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    format!(
        "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'echo \"$1 started\" >> \"$2\"; while [ ! -e \"$3\" ]; do sleep 0.05; done; echo \"$1\" >> \"$2\"', _, {id}, \"{{{{ vars.dir }}}}/log\", \"{{{{ vars.dir }}}}/go\"] }}\n{needs}"
    )
}

/// `drplan --store URL …` for this site, from `cwd`: a controller's working directory,
/// which holds its state directory (`.drplan`, for SSH control sockets only).
fn drplan(_s: &Site, store: &str, cwd: &std::path::Path) -> std::process::Command {
    let mut c = common::drplan();
    c.env("DRPLAN_TEST_TOKEN", common::local::TOKEN)
        .env("DRPLAN_STORE", store)
        .current_dir(cwd);
    c
}

/// `drplan apply PLAN --site SITE --yes` with `store`, from `cwd`.
fn apply(
    s: &Site,
    store: &str,
    cwd: &std::path::Path,
    plan: &std::path::Path,
) -> std::process::Command {
    let mut c = drplan(s, store, cwd);
    c.args(["apply", plan.to_str().unwrap(), "--site"])
        .arg(s.path("site.yaml"))
        .arg("--yes");
    c
}

/// `apply` in the background, its output captured.
fn spawn_apply(s: &Site, store: &str, cwd: &std::path::Path, plan: &std::path::Path) -> Child {
    apply(s, store, cwd, plan)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until `ready` (at most `limit`).
fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `resume RUN` until the dead controller's lease has run out (exit 4 until then, naming
/// it); the output of the first resume that got past the lock.
fn resume_once_the_lease_expires(mut resume: impl FnMut() -> Output) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = resume();
        if o.status.code() != Some(4) {
            return o;
        }
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(text.contains("is locked by run"), "{text}");
        assert!(Instant::now() < deadline, "the lease never expired: {text}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The id of the only run in the store, as `status --format json` lists it.
fn only_run(s: &Site, store: &str, cwd: &std::path::Path) -> String {
    let o = drplan(s, store, cwd)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    runs[0]["run"].as_str().unwrap().to_owned()
}

#[test]
fn a_controller_killed_mid_run_is_continued_by_another_from_a_fresh_directory() {
    let cluster = Cluster::start(3);
    // Long enough to see the lock held right after the crash, short for the test.
    let store = cluster.url("drplan?lease=5s");
    let s = Site::new();
    let plan = s.plan(
        &(logging_step("one", &[], "")
            + &logging_step("two", &["one"], "")
            + &logging_step("three", &["two"], "")),
    );
    let first = tempfile::tempdir().unwrap();
    // SIGKILL right after `two` finished: `three` never started.
    let crashed = apply(&s, &store, first.path(), &plan)
        .env("DRPLAN_CRASH_AFTER_RECORD", "step_finished:two")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9), "{}", text(&crashed));
    let dead_pid = crashed_pid(&s, &store, first.path());
    assert!(
        !first.path().join(".drplan/runs").exists(),
        "nothing of the run is kept on this controller's disk"
    );

    // Another controller: another working directory, and so another state directory.
    let second = tempfile::tempdir().unwrap();
    let run = only_run(&s, &store, second.path());
    let o = drplan(&s, &store, second.path())
        .args(["status", &run])
        .output()
        .unwrap();
    let shown = text(&o);
    assert!(shown.contains("one") && shown.contains("done"), "{shown}");
    assert!(
        shown.contains("three") && shown.contains("pending"),
        "{shown}"
    );

    // Its evidence is read from the store without writing to it, lock or no lock.
    let evidence = |cwd: &std::path::Path| {
        let o = drplan(&s, &store, cwd)
            .args(["report", &run, "--format", "json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let e = evidence(second.path());
    assert_eq!(
        (&e["status"], &e["counts"]["done"]),
        (&"incomplete".into(), &2.into()),
        "{e:#}"
    );

    let resumed = resume_once_the_lease_expires(|| {
        drplan(&s, &store, second.path())
            .args(["resume", &run])
            .output()
            .unwrap()
    });
    let said = text(&resumed);
    assert!(resumed.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "took over the lock of site 'local-{}'",
            std::process::id()
        )) && said.contains(&format!("pid {dead_pid} on host ")),
        "the note names the dead holder: {said}"
    );
    assert_eq!(
        s.read("log"),
        "one\ntwo\nthree\n",
        "every step exactly once"
    );
    let e = evidence(first.path());
    assert_eq!(
        (&e["status"], &e["counts"]["done"], &e["live"]),
        (&"succeeded".into(), &3.into(), &false.into()),
        "{e:#}"
    );
}

/// The pid the crashed controller recorded (the lock details name it too).
fn crashed_pid(s: &Site, store: &str, cwd: &std::path::Path) -> u32 {
    let run = only_run(s, store, cwd);
    let o = drplan(s, store, cwd)
        .args(["resume", &run])
        .output()
        .unwrap();
    // The lease (2s) is still alive right after the crash: refused, naming the holder.
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("lease"),
        "the help says when it expires: {said}"
    );
    let pid = said
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok());
    pid.unwrap_or_else(|| panic!("no holder pid in: {said}"))
}

#[test]
fn the_run_completes_when_the_leader_is_killed_mid_run() {
    let mut cluster = Cluster::start(3);
    let store = cluster.url("drplan");
    let s = Site::new();
    let plan = s.plan(&(gated_step("one", &[]) + &logging_step("two", &["one"], "")));
    let here = tempfile::tempdir().unwrap();
    let child = spawn_apply(&s, &store, here.path(), &plan);
    wait_for(Duration::from_secs(20), "step one to start", || {
        s.read("log").contains("one started")
    });
    let leader = cluster.leader();
    cluster.kill(leader);
    std::fs::write(s.path("go"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), cluster.logs());
    assert_eq!(s.read("log"), "one started\none\ntwo\n");
}

#[test]
fn a_controller_cut_off_from_etcd_stops_and_the_run_resumes() {
    let cluster = Cluster::start(3);
    let store = cluster.url("drplan?lease=2s");
    let s = Site::new();
    let plan = s.plan(
        &(gated_step("one", &[])
            + &logging_step("two", &["one"], "")
            + &logging_step("three", &["two"], "")),
    );
    let here = tempfile::tempdir().unwrap();
    let child = spawn_apply(&s, &store, here.path(), &plan);
    wait_for(Duration::from_secs(20), "step one to start", || {
        s.read("log").contains("one started")
    });
    // Every member stops answering while `one` runs; then `one` ends.
    cluster.freeze(true);
    std::fs::write(s.path("go"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    cluster.freeze(false);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains("stopped: its journal can no longer be written"),
        "{said}"
    );
    assert!(said.contains("drplan resume "), "{said}");
    assert_eq!(
        s.read("log"),
        "one started\none\n",
        "the running step ended; no new step started"
    );

    // `one` ended but its end never reached etcd: in doubt. The operator saw it end.
    let run = only_run(&s, &store, here.path());
    let resume = |args: &[&str]| {
        resume_once_the_lease_expires(|| {
            drplan(&s, &store, here.path())
                .args(["resume", &run])
                .args(args)
                .output()
                .unwrap()
        })
    };
    let mut resumed = resume(&["--skip", "one"]);
    // The write drplan gave up on (`one`'s end with `two`'s start, one transaction) may
    // still land as the members wake: the leader applies a request already in its socket
    // while the lease still holds (once it expired, the lease fences it out). Then `two` is
    // journaled as started though it never ran: in doubt, as it must be; the operator, who
    // saw it never ran, retries it.
    if text(&resumed).contains("two may or may not have run") {
        assert_eq!(resumed.status.code(), Some(1), "{}", text(&resumed));
        resumed = resume(&["--retry", "two"]);
    }
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(s.read("log"), "one started\none\ntwo\nthree\n");
}

#[test]
fn two_controllers_racing_apply_on_one_site_one_runs_the_other_exits_4() {
    let cluster = Cluster::start(3);
    let store = cluster.url("drplan");
    let s = Site::new();
    let plan = s.plan(&gated_step("one", &[]));
    let start = |dir: &std::path::Path| -> Child { spawn_apply(&s, &store, dir, &plan) };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut racers = vec![start(a.path()), start(b.path())];
    // The winner waits in its step for `go`; the loser has to end on its own, refused.
    let mut loser = None;
    wait_for(
        Duration::from_secs(30),
        "one controller to be refused",
        || {
            for (i, c) in racers.iter_mut().enumerate() {
                if c.try_wait().unwrap().is_some() {
                    loser = Some(i);
                    return true;
                }
            }
            false
        },
    );
    let loser = racers.remove(loser.unwrap());
    let refused = loser.wait_with_output().unwrap();
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!(
            "site 'local-{}' is locked by run",
            std::process::id()
        )),
        "{said}"
    );
    std::fs::write(s.path("go"), "").unwrap();
    let won = racers.pop().unwrap().wait_with_output().unwrap();
    assert!(won.status.success(), "{}", text(&won));
    assert_eq!(s.read("log"), "one started\none\n", "the step ran once");
    // The refused controller left no run behind.
    only_run(&s, &store, a.path());
}

#[test]
fn an_unreachable_store_at_start_exits_2_and_nothing_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("etcd://127.0.0.1:{port}/drplan");
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let here = tempfile::tempdir().unwrap();
    let o = apply(&s, &store, here.path(), &plan).output().unwrap();
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "cannot reach the store etcd://127.0.0.1:{port}/drplan"
        )),
        "{said}"
    );
    assert_eq!(s.read("log"), "", "nothing ran");
    let o = drplan(&s, &store, here.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_store_url_that_is_wrong_says_how_it_looks() {
    let s = Site::new();
    let here = tempfile::tempdir().unwrap();
    let a = assert_cmd::Command::from_std(drplan(&s, "etcd://127.0.0.1/drplan", here.path()))
        .arg("status")
        .assert()
        .code(2);
    let said = out(&a);
    assert!(said.contains("\"127.0.0.1\" is not HOST:PORT"), "{said}");
    assert!(
        said.contains("etcd://HOST:PORT[,HOST:PORT…]/PREFIX"),
        "{said}"
    );
}

/// The store as the library sees it, for a URL.
fn connect(url: &str) -> drplan::journal::EtcdStore {
    use drplan::journal::{EtcdConnect, EtcdStore, StoreUrl};
    EtcdStore::connect(EtcdConnect {
        url: StoreUrl::parse(url).unwrap(),
        ca: None,
        identity: None,
        password: None,
    })
    .unwrap()
}

#[test]
fn a_controller_whose_lease_is_gone_writes_nothing_more_even_when_it_wakes_up() {
    use drplan::journal::{JournalError, LockInfo, RunId, RunStore};
    use serde_json::json;
    let cluster = Cluster::start(3);
    let url = cluster.url("fence");
    let id = RunId::generate().unwrap();
    let first = connect(&url);
    let held = first
        .lock_site("lab", &LockInfo::for_this_process(id.as_str(), "first"))
        .unwrap();
    let mut journal = first.create_run(&id, b"{}").unwrap().journal;
    journal.append(&json!({ "n": 1 })).unwrap();

    // Its lease ends behind its back (as when it was cut off for longer than the lease),
    // and a second controller takes the site.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = cluster.client().await.unwrap();
        let lock = c.get("/fence/locks/lab", None).await.unwrap();
        let lease = lock.kvs()[0].lease();
        c.lease_revoke(lease).await.unwrap();
    });
    let second = connect(&url);
    let taken = second
        .lock_site("lab", &LockInfo::for_this_process("second-run", "second"))
        .unwrap();
    let note = taken.note.clone().unwrap_or_default();
    assert!(
        note.contains(&format!("from run {id} (pid {}", std::process::id())),
        "the note names the old holder: {note}"
    );

    // The first wakes up and tries to write: refused, and nothing reaches etcd.
    let err = journal.append(&json!({ "n": 2 })).unwrap_err();
    assert!(matches!(err, JournalError::Fenced { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("no longer holds the lock of site 'lab'"),
        "{err}"
    );
    let mut opened = second.open_run(&id).unwrap();
    assert_eq!(opened.replay.records, [json!({ "n": 1 })]);
    // Its release (on drop) leaves the new holder's lock alone.
    drop(held);
    opened.journal.append(&json!({ "n": 2 })).unwrap();
    let again = second.open_run(&id).unwrap();
    assert_eq!(again.replay.records, [json!({ "n": 1 }), json!({ "n": 2 })]);
    drop(taken);
}

#[test]
fn tls_with_a_client_certificate_and_a_password() {
    let (cluster, tls) = Cluster::start_tls();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = cluster.client().await.unwrap();
        let _ = c.role_add("root").await;
        c.user_add("root", "pw-1", None).await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.auth_enable().await.unwrap();
    });
    let secret = cluster.dir().join("password");
    std::fs::write(&secret, "pw-1\n").unwrap();
    let store = |password: &std::path::Path, cert: bool| {
        let mut url = format!(
            "etcd://{}/drplan?ca={}&user=root&password-file={}",
            cluster.clients[0],
            tls.ca.display(),
            password.display()
        );
        if cert {
            url += &format!("&cert={}&key={}", tls.cert.display(), tls.key.display());
        }
        url
    };
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let here = tempfile::tempdir().unwrap();
    let run = |url: &str| apply(&s, url, here.path(), &plan).output().unwrap();
    let o = run(&store(&secret, true));
    assert!(o.status.success(), "{}\n{}", text(&o), cluster.logs());
    assert_eq!(s.read("log"), "one\n");
    only_run(&s, &store(&secret, true), here.path());

    // A wrong password, or no client certificate: refused before anything runs.
    let wrong = cluster.dir().join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    for url in [store(&wrong, true), store(&secret, false)] {
        let o = run(&url);
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{said}");
        assert!(said.contains("cannot reach the store"), "{said}");
    }
    let o = run(&store(&wrong, true));
    assert!(text(&o).contains("authentication failed"), "{}", text(&o));

    // A password file that another user could have written is not trusted.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = run(&store(&secret, true));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("refusing to trust"), "{}", text(&o));
    assert_eq!(s.read("log"), "one\n", "nothing more ran");
}
