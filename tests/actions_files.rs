//! file.* and gocd.set_mode through the public action API on the controller's own files
//! (two roles, both `transport: local`): modes, owners, atomic replacement, idempotence, and
//! file.sync keeping the destination's db.properties.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::rig::{Rig, changed};
use drplan::step::FailureKind;
use serde_json::json;

const HOSTS: &str =
    "  a: { address: 127.0.0.1, transport: local }\n  b: { address: 127.0.0.2, transport: local }";

fn rig() -> Rig {
    Rig::new(&["a", "b"], HOSTS)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn postgres_uid() -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    assert!(out.status.success(), "user postgres is needed");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("drplan"))
        .collect()
}

#[tokio::test]
async fn write_is_atomic_idempotent_and_keeps_or_sets_attributes() {
    let rig = rig();
    let dir = rig.dir.path().join("w");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("conf");
    let p = path.to_str().unwrap();

    let r = rig
        .ok("a", "file.write", json!({ "path": p, "content": "one\n" }))
        .await;
    assert!(changed(&r));
    assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
    assert_eq!(mode(&path), 0o644);
    let again = rig
        .ok("a", "file.write", json!({ "path": p, "content": "one\n" }))
        .await;
    assert!(!changed(&again));

    // The old file's mode and owner carry over to new content when none is given.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&path, Some(postgres_uid()), None).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let r = rig
        .ok("a", "file.write", json!({ "path": p, "content": "two\n" }))
        .await;
    assert!(changed(&r));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), postgres_uid());
    assert_ne!(
        meta.ino(),
        inode,
        "replaced by rename, not rewritten in place"
    );

    // Same content, other mode/owner: only the attributes change.
    let r = rig
        .ok(
            "a",
            "file.write",
            json!({ "path": p, "content": "two\n", "mode": "0600", "owner": "root:root" }),
        )
        .await;
    assert_eq!(r["attributes_only"], true);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::metadata(&path).unwrap().uid(), 0);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    let e = rig
        .run(
            "a",
            "file.write",
            json!({ "path": "relative/x", "content": "" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::InvalidParams);
    let e = rig
        .run(
            "a",
            "file.write",
            json!({ "path": dir.join("no/such/dir").to_str(), "content": "" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);
}

#[tokio::test]
async fn readers_see_the_old_or_the_new_content_never_a_mix() {
    let rig = rig();
    let path = rig.dir.path().join("big");
    let a = "a".repeat(3 << 20);
    let b = "b".repeat(3 << 20);
    fs::write(&path, &a).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop, a, b) = (path.clone(), stop.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let got = fs::read_to_string(&path).unwrap();
                assert!(got == a || got == b, "a torn read of {} bytes", got.len());
                reads += 1;
            }
            reads
        })
    };
    for content in [&b, &a, &b] {
        rig.ok(
            "a",
            "file.write",
            json!({ "path": path.to_str(), "content": content }),
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

#[tokio::test]
async fn touch_remove_rename_and_stat() {
    let rig = rig();
    let d = rig.dir.path();
    let f = d.join("t");
    let fp = f.to_str().unwrap();
    assert!(changed(
        &rig.ok("a", "file.touch", json!({ "path": fp, "mode": "0600" }))
            .await
    ));
    assert_eq!(mode(&f), 0o600);
    assert!(!changed(
        &rig.ok("a", "file.touch", json!({ "path": fp, "mode": "600" }))
            .await
    ));

    let st = rig.ok("a", "file.stat", json!({ "path": fp })).await;
    assert_eq!(st["exists"], true);
    assert_eq!(st["size"], 0);
    assert_eq!(st["mode"], "0600");
    assert_eq!(st["md5"], "d41d8cd98f00b204e9800998ecf8427e");
    let absent = rig
        .ok("a", "file.stat", json!({ "path": d.join("nope").to_str() }))
        .await;
    assert_eq!(absent["exists"], false);

    let to = d.join("t2");
    let rename = json!({ "path": fp, "to": to.to_str() });
    assert!(changed(&rig.ok("a", "file.rename", rename.clone()).await));
    assert!(to.exists() && !f.exists());
    assert!(!changed(&rig.ok("a", "file.rename", rename.clone()).await));
    fs::write(&f, "").unwrap();
    let both = rig.run("a", "file.rename", rename).await.unwrap_err();
    assert_eq!(both.kind, FailureKind::Failed);
    assert!(both.message.contains("both"), "{}", both.message);

    let sub = d.join("sub");
    fs::create_dir_all(sub.join("deeper")).unwrap();
    fs::write(sub.join("deeper/x"), "x").unwrap();
    let plain = rig
        .run("a", "file.remove", json!({ "path": sub.to_str() }))
        .await
        .unwrap_err();
    assert_eq!(plain.kind, FailureKind::Failed);
    assert!(
        plain
            .stderr_tail
            .unwrap_or_default()
            .contains("Is a directory")
    );
    assert!(changed(
        &rig.ok(
            "a",
            "file.remove",
            json!({ "path": sub.to_str(), "recursive": true })
        )
        .await
    ));
    assert!(!sub.exists());
    assert!(!changed(
        &rig.ok("a", "file.remove", json!({ "path": sub.to_str() }))
            .await
    ));
}

#[tokio::test]
async fn copy_reads_large_files_in_chunks_and_keeps_the_source_mode() {
    let rig = rig();
    let d = rig.dir.path();
    let src = d.join("src.bin");
    let data: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(&src, &data).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o600)).unwrap();
    let dest = d.join("dest.bin");
    let params = json!({ "from": "a", "src": src.to_str(), "dest": dest.to_str() });
    let r = rig.ok("b", "file.copy", params.clone()).await;
    assert!(changed(&r));
    assert_eq!(fs::read(&dest).unwrap(), data);
    assert_eq!(mode(&dest), 0o600);
    assert!(!changed(&rig.ok("b", "file.copy", params).await));
    let missing = rig
        .run(
            "b",
            "file.copy",
            json!({ "from": "a", "src": d.join("nope").to_str(), "dest": dest.to_str() }),
        )
        .await
        .unwrap_err();
    assert!(
        missing.message.contains("does not exist"),
        "{}",
        missing.message
    );
}

/// A GoCD-like /etc/go on "GO2" (the source) and on "GO1" (the destination).
fn go_dirs(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = root.join("go2/etc/go");
    let dest = root.join("go1/etc/go");
    for d in [&src, &dest] {
        fs::create_dir_all(d.join("plugins/external")).unwrap();
    }
    fs::write(src.join("cruise-config.xml"), "<cruise v2/>").unwrap();
    fs::write(src.join("cipher.aes"), "secret-2").unwrap();
    fs::set_permissions(src.join("cipher.aes"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(src.join("cipher.aes"), Some(postgres_uid()), None).unwrap();
    fs::write(
        src.join("db.properties"),
        "db.url=jdbc:postgresql://pg2:5432/gocd\n",
    )
    .unwrap();
    fs::write(src.join("plugins/external/a.jar"), vec![7u8; 1_500_000]).unwrap();
    symlink("cruise-config.xml", src.join("current.xml")).unwrap();
    fs::write(dest.join("cruise-config.xml"), "<cruise v1/>").unwrap();
    fs::write(
        dest.join("db.properties"),
        "db.url=jdbc:postgresql://pg1:5432/gocd\n",
    )
    .unwrap();
    fs::write(dest.join("stale.xml"), "old").unwrap();
    (src, dest)
}

#[tokio::test]
async fn sync_carries_only_differences_and_never_touches_db_properties() {
    let rig = rig();
    let (src, dest) = go_dirs(rig.dir.path());
    let params = json!({
        "from": "a", "src": src.to_str(), "dest": dest.to_str(),
        "exclude": ["db.properties"], "delete": true,
    });
    let r = rig.ok("b", "file.sync", params.clone()).await;
    let changed_paths: Vec<&str> = r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        changed_paths,
        [
            "cipher.aes",
            "cruise-config.xml",
            "current.xml",
            "plugins/external/a.jar",
            "stale.xml"
        ]
    );
    assert_eq!(r["deleted"], json!(["stale.xml"]));
    assert_eq!(
        fs::read_to_string(dest.join("cruise-config.xml")).unwrap(),
        "<cruise v2/>"
    );
    assert_eq!(
        fs::read(dest.join("plugins/external/a.jar")).unwrap(),
        vec![7u8; 1_500_000]
    );
    assert_eq!(mode(&dest.join("cipher.aes")), 0o600);
    assert_eq!(
        fs::metadata(dest.join("cipher.aes")).unwrap().uid(),
        postgres_uid()
    );
    assert_eq!(
        fs::read_link(dest.join("current.xml")).unwrap(),
        Path::new("cruise-config.xml")
    );
    assert!(!dest.join("stale.xml").exists());
    // GO1's db.properties points at PG1, whatever GO2's says.
    assert_eq!(
        fs::read_to_string(dest.join("db.properties")).unwrap(),
        "db.url=jdbc:postgresql://pg1:5432/gocd\n"
    );
    assert!(
        leftovers(&dest).is_empty(),
        "staging left behind: {:?}",
        leftovers(&dest)
    );

    // Identical now: nothing to do.
    let again = rig.ok("b", "file.sync", params.clone()).await;
    assert_eq!(again["changed"], json!([]));

    // One change on the source, one mode change: exactly those travel.
    fs::write(src.join("cruise-config.xml"), "<cruise v3/>").unwrap();
    fs::set_permissions(src.join("plugins"), fs::Permissions::from_mode(0o750)).unwrap();
    let r = rig.ok("b", "file.sync", params).await;
    assert_eq!(r["changed"], json!(["cruise-config.xml", "plugins"]));
    assert_eq!(mode(&dest.join("plugins")), 0o750);

    // Without delete, a file only the destination has stays.
    fs::write(dest.join("local-only"), "mine").unwrap();
    let keep = json!({ "from": "a", "src": src.to_str(), "dest": dest.to_str(), "exclude": ["db.properties"] });
    assert_eq!(rig.ok("b", "file.sync", keep).await["changed"], json!([]));
    assert!(dest.join("local-only").exists());
}

#[tokio::test]
async fn sync_creates_an_absent_destination() {
    let rig = rig();
    let (src, _) = go_dirs(rig.dir.path());
    let dest = rig.dir.path().join("fresh");
    let r = rig
        .ok("b", "file.sync", json!({ "from": "a", "src": src.to_str(), "dest": dest.to_str(), "exclude": ["db.properties"] }))
        .await;
    assert!(r["changed"].as_array().unwrap().contains(&json!("")));
    assert_eq!(
        fs::read_to_string(dest.join("cipher.aes")).unwrap(),
        "secret-2"
    );
    assert!(!dest.join("db.properties").exists());
    assert!(
        leftovers(rig.dir.path())
            .iter()
            .all(|n| !n.contains("drplan-sync"))
    );
}

/// What GoCD's start script (a POSIX shell) makes of the defaults file.
fn jvm_options(path: &Path) -> String {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            ". \"$1\"; printf %s \"$GOCD_SERVER_JVM_OPTIONS\"",
            "sh",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn gocd_set_mode_edits_only_its_options() {
    let rig = rig();
    let file = rig.dir.path().join("go-server");
    fs::write(
        &file,
        "# defaults\nJAVA_HOME=/usr/lib/jvm\nexport GOCD_SERVER_JVM_OPTIONS=\"-Xmx2g -Dgo.server.mode=standby -Dbc.primary.url=http://go1:8153 -Dx=1\"\n",
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let f = file.to_str().unwrap();

    let r = rig
        .ok(
            "a",
            "gocd.set_mode",
            json!({ "mode": "primary", "defaults_file": f }),
        )
        .await;
    assert!(changed(&r));
    assert_eq!(jvm_options(&file), "-Xmx2g -Dgo.server.mode=primary -Dx=1");
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .starts_with("# defaults\nJAVA_HOME=/usr/lib/jvm\nexport ")
    );
    assert_eq!(mode(&file), 0o640);
    assert!(!changed(
        &rig.ok(
            "a",
            "gocd.set_mode",
            json!({ "mode": "primary", "defaults_file": f })
        )
        .await
    ));

    let standby =
        json!({ "mode": "standby", "defaults_file": f, "primary_url": "http://10.231.0.15:8153" });
    assert!(changed(
        &rig.ok("a", "gocd.set_mode", standby.clone()).await
    ));
    assert_eq!(
        jvm_options(&file),
        "-Xmx2g -Dgo.server.mode=standby -Dbc.primary.url=http://10.231.0.15:8153 -Dx=1"
    );
    assert!(!changed(&rig.ok("a", "gocd.set_mode", standby).await));

    let no_url = rig
        .run(
            "a",
            "gocd.set_mode",
            json!({ "mode": "standby", "defaults_file": f }),
        )
        .await;
    assert_eq!(no_url.unwrap_err().kind, FailureKind::InvalidParams);
    let missing = rig
        .run(
            "a",
            "gocd.set_mode",
            json!({ "mode": "primary", "defaults_file": rig.dir.path().join("nope").to_str() }),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.kind, FailureKind::Failed);
}
