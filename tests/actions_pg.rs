//! pg.* against real PostgreSQL 15 clusters in a temp dir, through the public action API:
//! start (twice), status of a primary, basebackup of a streaming standby (moving an old
//! directory aside), status of the standby, promotion (polled, then a no-op), divergence of
//! the old primary, stop, rewind, make_standby, and the old primary streaming from the new
//! one. Every server is stopped at the end (`pg_ctl stop -m immediate`, by data directory),
//! whatever happens. Needs root, user postgres and /usr/lib/postgresql/15: fails without.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::rig::{Rig, changed};
use common::sshd::free_port;
use drplan::step::FailureKind;
use serde_json::{Value, json};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Stops every cluster it knows of when dropped (also on a failed assertion).
struct Clusters {
    _root: tempfile::TempDir,
    data_dirs: Vec<PathBuf>,
}

impl Drop for Clusters {
    fn drop(&mut self) {
        for d in &self.data_dirs {
            let _ = Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    &format!("{BIN}/pg_ctl"),
                    "stop",
                    "-m",
                    "immediate",
                    "-w",
                    "-D",
                ])
                .arg(d)
                .current_dir("/")
                .output();
        }
    }
}

fn sh(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn setup() -> (Clusters, PathBuf) {
    assert!(
        Path::new(&format!("{BIN}/initdb")).exists(),
        "PostgreSQL 15 is needed"
    );
    // Short path: the socket (`DIR/run1/.s.PGSQL.PORT`) must fit in 107 bytes.
    let root = tempfile::Builder::new()
        .prefix("drpg-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = root.path().join("pg");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    sh(&[
        "install",
        "-d",
        "-o",
        "postgres",
        "-g",
        "postgres",
        "-m",
        "700",
        &s(&pg),
    ]);
    for d in ["run1", "run2"] {
        sh(&[
            "install",
            "-d",
            "-o",
            "postgres",
            "-g",
            "postgres",
            "-m",
            "700",
            &s(&pg.join(d)),
        ]);
    }
    let d1 = pg.join("d1");
    sh(&[
        "runuser",
        "-u",
        "postgres",
        "--",
        &format!("{BIN}/initdb"),
        "-D",
        &s(&d1),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--encoding=UTF8",
        "--locale=C",
    ]);
    let conf = "\n# drplan test\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nwal_log_hints = on\n\
                hot_standby = on\nmax_wal_senders = 10\nwal_keep_size = '128MB'\nshared_buffers = '16MB'\n\
                max_connections = 20\nfsync = off\n";
    let mut text = std::fs::read_to_string(d1.join("postgresql.conf")).unwrap();
    text.push_str(conf);
    std::fs::write(d1.join("postgresql.conf"), text).unwrap();
    let clusters = Clusters {
        _root: root,
        data_dirs: vec![d1, pg.join("d2")],
    };
    (clusters, pg)
}

fn psql(rig_port: u16, sql: &str) -> Value {
    json!({ "argv": [format!("{BIN}/psql"), "-X", "-At", "-h", "127.0.0.1", "-p", rig_port.to_string(), "-U", "postgres", "-d", "postgres", "-c", sql] })
}

fn status(port: u16) -> Value {
    json!({ "host": "127.0.0.1", "port": port, "user": "postgres", "bin_dir": BIN })
}

fn start(data: &Path, pg: &Path, n: u8, port: u16) -> Value {
    json!({
        "data_dir": data.to_str(),
        "bin_dir": BIN,
        "log_file": pg.join(format!("log{n}")).to_str(),
        "wait": "60s",
        "options": ["-c", format!("port={port}"), "-c", format!("unix_socket_directories={}", pg.join(format!("run{n}")).display())],
    })
}

async fn wait_streaming(rig: &Rig, port: u16) -> Value {
    rig.ok(
        "pg",
        "wait.until",
        json!({ "check": "pg.status", "with": status(port), "expect": "result.in_recovery and result.streaming", "interval": "100ms", "timeout": "60s" }),
    )
    .await["result"]
        .clone()
}

#[tokio::test]
async fn a_primary_a_standby_a_promotion_and_a_rewind() {
    let (clusters, pg) = setup();
    let (d1, d2) = (clusters.data_dirs[0].clone(), clusters.data_dirs[1].clone());
    let (p1, p2) = (free_port(), free_port());
    let rig = Rig::new(&["pg"], "  pg: { address: 127.0.0.1, transport: local }");
    let pgu = "postgres";

    // Start, twice: the second is a no-op.
    assert!(changed(
        &rig.ok_as("pg", pgu, "pg.start", start(&d1, &pg, 1, p1))
            .await
    ));
    assert!(!changed(
        &rig.ok_as("pg", pgu, "pg.start", start(&d1, &pg, 1, p1))
            .await
    ));
    let s = rig.ok("pg", "pg.status", status(p1)).await;
    assert_eq!(s["reachable"], true);
    assert_eq!(s["in_recovery"], false);
    assert_eq!(s["timeline"], 1);
    assert!(s["current_lsn_bytes"].as_i64().unwrap() > 0, "{s}");
    assert!(s["current_lsn"].as_str().unwrap().contains('/'));
    assert_eq!(s["replay_lag_bytes"], 0);
    assert_eq!(s["replicas"], json!([]));
    rig.ok(
        "pg",
        "exec",
        psql(p1, "create table t (x int); insert into t values (1)"),
    )
    .await;

    // Basebackup into a directory that holds something: it is moved aside, not deleted.
    sh(&[
        "install",
        "-d",
        "-o",
        "postgres",
        "-g",
        "postgres",
        "-m",
        "755",
        d2.to_str().unwrap(),
    ]);
    std::fs::write(d2.join("junk"), "keep me").unwrap();
    let bb = json!({
        "data_dir": d2.to_str(), "bin_dir": BIN, "source_host": "127.0.0.1", "source_port": p1,
        "user": "postgres", "wal_method": "stream", "standby": true,
    });
    let r = rig.ok_as("pg", pgu, "pg.basebackup", bb).await;
    let old = PathBuf::from(r["moved_aside"].as_str().expect("moved aside"));
    assert_eq!(
        std::fs::read_to_string(old.join("junk")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::metadata(&d2).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(d2.join("standby.signal").exists());

    assert!(changed(
        &rig.ok_as("pg", pgu, "pg.start", start(&d2, &pg, 2, p2))
            .await
    ));
    let s = wait_streaming(&rig, p2).await;
    assert_eq!(s["timeline"], 1);
    assert!(s["replay_lag_bytes"].is_i64(), "{s}");
    assert!(s["receive_lsn_bytes"].as_i64().unwrap() > 0);
    assert!(s["replay_lsn_bytes"].as_i64().unwrap() > 0);
    assert_eq!(s["current_lsn"], Value::Null);
    let primary = rig.ok("pg", "pg.status", status(p1)).await;
    assert_eq!(primary["replicas"][0]["state"], "streaming", "{primary}");
    assert_eq!(primary["replicas"][0]["client_addr"], "127.0.0.1");

    // Promote: polled until it accepts writes; then nothing to do.
    let r = rig
        .ok_as(
            "pg",
            pgu,
            "pg.promote",
            json!({ "data_dir": d2.to_str(), "bin_dir": BIN, "wait": "30s" }),
        )
        .await;
    assert_eq!(r["promoted"], true, "{r}");
    assert_eq!(r["timeline"], 2);
    let again = rig
        .ok_as(
            "pg",
            pgu,
            "pg.promote",
            json!({ "data_dir": d2.to_str(), "bin_dir": BIN }),
        )
        .await;
    assert_eq!(again["promoted"], false);
    assert_eq!(again["timeline"], 2);
    let s = rig.ok("pg", "pg.status", status(p2)).await;
    assert_eq!(
        (s["in_recovery"].clone(), s["timeline"].clone()),
        (json!(false), json!(2))
    );
    rig.ok("pg", "exec", psql(p2, "insert into t values (2)"))
        .await;

    // The old primary diverges (a write the new one never sees), then stops cleanly.
    rig.ok("pg", "exec", psql(p1, "insert into t values (99)"))
        .await;
    let stop = json!({ "data_dir": d1.to_str(), "bin_dir": BIN, "mode": "fast" });
    assert!(changed(
        &rig.ok_as("pg", pgu, "pg.stop", stop.clone()).await
    ));
    assert!(!changed(
        &rig.ok_as("pg", pgu, "pg.stop", stop.clone()).await
    ));
    let down = rig.ok("pg", "pg.status", status(p1)).await;
    assert_eq!(down["reachable"], false);
    assert_eq!(down["in_recovery"], Value::Null);

    // Rewind it from the new primary and make it that one's standby.
    let rw = json!({ "data_dir": d1.to_str(), "bin_dir": BIN, "source_host": "127.0.0.1", "source_port": p2, "user": "postgres" });
    let r = rig.ok_as("pg", pgu, "pg.rewind", rw).await;
    assert_eq!(r["rewound"], true, "{r}");
    let ms = json!({
        "data_dir": d1.to_str(), "primary_host": "127.0.0.1", "primary_port": p2, "user": "postgres",
        "application_name": "old primary's",
    });
    assert!(changed(
        &rig.ok_as("pg", pgu, "pg.make_standby", ms.clone()).await
    ));
    assert!(!changed(
        &rig.ok_as("pg", pgu, "pg.make_standby", ms.clone()).await
    ));
    let auto = std::fs::read_to_string(d1.join("postgresql.auto.conf")).unwrap();
    assert_eq!(auto.matches("primary_conninfo").count(), 1, "{auto}");
    assert!(auto.contains(&format!("port=''{p2}''")), "{auto}");
    assert_eq!(
        std::fs::metadata(d1.join("postgresql.auto.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(d1.join("standby.signal").exists());

    assert!(changed(
        &rig.ok_as("pg", pgu, "pg.start", start(&d1, &pg, 1, p1))
            .await
    ));
    let s = wait_streaming(&rig, p1).await;
    assert_eq!(s["timeline"], 2);
    let primary = rig.ok("pg", "pg.status", status(p2)).await;
    assert_eq!(
        primary["replicas"][0]["application_name"], "old primary's",
        "{primary}"
    );
    // The diverged row is gone; the new primary's row arrived.
    let rows = rig
        .ok(
            "pg",
            "exec",
            psql(p1, "select string_agg(x::text, ',' order by x) from t"),
        )
        .await;
    assert_eq!(rows["stdout"], "1,2\n");

    // A running cluster is refused by make_standby; a server that answers and refuses us
    // is an error, never "unreachable".
    let e = rig
        .run_as("pg", pgu, "pg.make_standby", ms)
        .await
        .unwrap_err();
    assert!(e.message.contains("postmaster.pid"), "{}", e.message);
    let mut bad_db = status(p2);
    bad_db["database"] = json!("no_such_db");
    let e = rig.run("pg", "pg.status", bad_db).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);

    for d in [&d1, &d2] {
        let stop = json!({ "data_dir": d.to_str(), "bin_dir": BIN });
        assert!(changed(&rig.ok_as("pg", pgu, "pg.stop", stop).await));
    }
    assert_eq!(
        rig.ok("pg", "pg.status", status(p2)).await["reachable"],
        false
    );
    drop(clusters);
}

/// A live server that asks for a password drplan was not given answers: `pg.status` must say
/// so with an error (a fencing check that reads it fails closed), never `reachable: false`.
/// libpq reports it as `fe_sendauth: no password supplied`, without `FATAL:`. Only a port
/// where nothing listens is unreachable.
#[tokio::test]
async fn a_server_that_asks_for_a_password_is_not_unreachable() {
    let (clusters, pg) = setup();
    let d1 = clusters.data_dirs[0].clone();
    std::fs::write(
        d1.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    let p1 = free_port();
    let rig = Rig::new(&["pg"], "  pg: { address: 127.0.0.1, transport: local }");
    rig.ok_as("pg", "postgres", "pg.start", start(&d1, &pg, 1, p1))
        .await;

    let e = rig.run("pg", "pg.status", status(p1)).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{e:?}");
    let said = format!(
        "{} {}",
        e.message,
        e.stderr_tail.clone().unwrap_or_default()
    );
    assert!(said.contains("no password supplied"), "{said}");
    assert!(said.contains("not \"unreachable\""), "{said}");

    // Nothing listens on a fresh port: that, and only that, is unreachable.
    let nobody = rig.ok("pg", "pg.status", status(free_port())).await;
    assert_eq!(nobody["reachable"], false, "{nobody}");
    assert!(
        nobody["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{nobody}"
    );

    rig.ok_as(
        "pg",
        "postgres",
        "pg.stop",
        json!({ "data_dir": d1.to_str(), "bin_dir": BIN }),
    )
    .await;
    drop(clusters);
}

/// A site whose PostgreSQL wants scram passwords, which the site gives
/// (`postgres.passwords`): pg.status logs in; pg.rebuild_check finds everything a rebuild
/// needs, and names the replication password when the site lacks it; pg.basebackup copies
/// as the replication user into a data directory whose parent is root's (the old contents
/// kept beside it, in a directory root made), and the standby it writes streams with the
/// replication user's password; pg.remove_old_copies keeps what it is told to and removes
/// the rest.
#[tokio::test]
async fn site_passwords_a_root_owned_parent_and_kept_copies() {
    let (mut clusters, pg) = setup();
    let d1 = clusters.data_dirs[0].clone();
    let srv = clusters._root.path().join("srv");
    let d2 = srv.join("d2");
    clusters.data_dirs.push(d2.clone());
    sh(&[
        "install",
        "-d",
        "-o",
        "root",
        "-g",
        "root",
        "-m",
        "755",
        srv.to_str().unwrap(),
    ]);
    sh(&[
        "install",
        "-d",
        "-o",
        "postgres",
        "-g",
        "postgres",
        "-m",
        "700",
        d2.to_str().unwrap(),
    ]);
    std::fs::write(d2.join("junk"), "keep me").unwrap();
    std::fs::write(
        d1.join("pg_hba.conf"),
        "local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost replication replicator 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    let p1 = free_port();
    let site = |passwords: &str| {
        format!(
            "  pg: {{ address: 127.0.0.1, transport: local }}\npostgres:\n  passwords: {{ {passwords} }}\n  sslmode: prefer\nsecrets:\n  pgpw: {{ env: DRPLAN_TEST_UNSET_1 }}\n  rpw: {{ env: DRPLAN_TEST_UNSET_2 }}"
        )
    };
    let (pgpw, rpw) = (r#"it's a "pw" $(x) \n"#, "repl-pw");
    let mut rig = Rig::new(&["pg"], &site("postgres: pgpw, replicator: rpw"));
    rig.context["secrets"] = json!({ "pgpw": pgpw, "rpw": rpw });
    let mut no_repl = Rig::new(&["pg"], &site("postgres: pgpw"));
    no_repl.context["secrets"] = json!({ "pgpw": pgpw, "rpw": rpw });
    rig.ok_as("pg", "postgres", "pg.start", start(&d1, &pg, 1, p1))
        .await;
    let socket = pg.join("run1");
    let sql = format!(
        "alter role postgres password '{}'; create role replicator login replication password '{rpw}'",
        pgpw.replace('\'', "''")
    );
    rig.ok_as(
        "pg",
        "postgres",
        "exec",
        json!({ "argv": [format!("{BIN}/psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", socket.to_str(), "-p", p1.to_string(), "-d", "postgres", "-c", sql] }),
    )
    .await;

    let s = rig.ok("pg", "pg.status", status(p1)).await;
    assert_eq!(
        (s["reachable"].clone(), s["in_recovery"].clone()),
        (json!(true), json!(false)),
        "{s}"
    );
    let c = rig
        .ok(
            "pg",
            "pg.controldata",
            json!({ "data_dir": d1.to_str(), "bin_dir": BIN, "os_user": "postgres" }),
        )
        .await;
    assert_eq!(c["state"], "in production", "{c}");
    assert_eq!(c["wal_log_hints"], true, "{c}");

    let preflight = |method: &str| {
        json!({
            "method": method, "data_dir": d2.to_str(), "bin_dir": BIN, "source_host": "127.0.0.1",
            "source_port": p1, "user": "postgres", "replication_user": "replicator", "os_user": "postgres",
        })
    };
    let r = rig
        .ok("pg", "pg.rebuild_check", preflight("basebackup"))
        .await;
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(r["parent_writable"], false, "{r}");
    assert_eq!(r["root_available"], true, "{r}");
    assert!(r["needed_bytes"].as_u64().unwrap() > 0, "{r}");
    let r = no_repl
        .ok("pg", "pg.rebuild_check", preflight("basebackup"))
        .await;
    assert_eq!(r["ready"], false, "{r}");
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("user replicator cannot open a replication connection"),
        "{r}"
    );
    // d2 holds no cluster: nothing to rewind, and no control file to read.
    let r = rig.ok("pg", "pg.rebuild_check", preflight("rewind")).await;
    assert_eq!(r["ready"], false, "{r}");
    assert!(
        r["problems"]
            .to_string()
            .contains("cannot read the control file"),
        "{r}"
    );

    let bb = json!({
        "data_dir": d2.to_str(), "bin_dir": BIN, "source_host": "127.0.0.1", "source_port": p1,
        "user": "replicator", "wal_method": "fetch", "standby": true,
    });
    let r = rig.ok_as("pg", "postgres", "pg.basebackup", bb).await;
    let old = PathBuf::from(r["moved_aside"].as_str().expect("moved aside"));
    assert_eq!(old.parent(), Some(srv.as_path()));
    assert_eq!(
        std::fs::read_to_string(old.join("junk")).unwrap(),
        "keep me"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&old).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.uid()),
        (0o700, std::fs::metadata(&d2).unwrap().uid())
    );
    let auto = std::fs::read_to_string(d2.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("user=''replicator''") && auto.contains("sslmode=''prefer''"),
        "{auto}"
    );
    assert!(d2.join("standby.signal").exists());

    let p2 = free_port();
    rig.ok_as("pg", "postgres", "pg.start", start(&d2, &pg, 2, p2))
        .await;
    wait_streaming(&rig, p2).await;
    // The standby streams a moment before the primary's pg_stat_replication shows it with a
    // replay position: the primary's own view, with the password from the site, is waited for.
    let primary = rig
        .ok(
            "pg",
            "wait.until",
            json!({ "check": "pg.status", "with": { "host": "127.0.0.1", "port": p1, "user": "postgres", "bin_dir": BIN, "replica": "127.0.0.1" }, "expect": "result.replica is not none and result.replica.state == 'streaming' and result.replica_lag_bytes is not none", "interval": "100ms", "timeout": "60s" }),
        )
        .await["result"]
        .clone();
    assert!(primary["replica_lag_bytes"].is_i64(), "{primary}");

    let data = d2.to_str().unwrap();
    let kept = rig
        .ok_as(
            "pg",
            "postgres",
            "pg.remove_old_copies",
            json!({ "data_dir": data, "keep": old.to_str() }),
        )
        .await;
    assert_eq!(
        (kept["changed"].clone(), kept["kept"].clone()),
        (json!(false), json!([old.to_str()]))
    );
    assert!(old.exists());
    let gone = rig
        .ok_as(
            "pg",
            "postgres",
            "pg.remove_old_copies",
            json!({ "data_dir": data, "keep": "" }),
        )
        .await;
    assert_eq!(gone["removed"], json!([old.to_str()]), "{gone}");
    assert!(!old.exists());
    assert!(d2.join("PG_VERSION").exists());

    for d in [&d2, &d1] {
        rig.ok_as(
            "pg",
            "postgres",
            "pg.stop",
            json!({ "data_dir": d.to_str(), "bin_dir": BIN }),
        )
        .await;
    }
    drop(clusters);
}
