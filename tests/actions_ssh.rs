//! Actions on an SSH host (a private sshd on 127.0.0.1), reached by an `ActionRunner` from a
//! site's `ssh:` settings: one master connection shared by every action, `become` through
//! runuser, files carried between a local role and the SSH role, a clean close.

mod common;

use common::rig::{Rig, changed};
use common::sshd::TestSshd;
use serde_json::json;

#[tokio::test]
async fn actions_over_one_ssh_connection() {
    let sshd = TestSshd::start();
    let hosts = format!(
        "  remote: {{ address: 127.0.0.1, port: {}, user: root, become_method: runuser }}\n  here: {{ address: 127.0.0.1, transport: local }}\nssh: {{ identity: {}, known_hosts: {}, connect_timeout: 5s }}",
        sshd.port,
        sshd.client_key.display(),
        sshd.known_hosts.display(),
    );
    let rig = Rig::new(&["remote", "here"], &hosts);

    let r = rig
        .ok_as(
            "remote",
            "postgres",
            "exec",
            json!({ "argv": ["id", "-un"] }),
        )
        .await;
    assert_eq!(r["stdout"], "postgres\n");

    // A file with awkward content written over SSH (content on stdin, not argv).
    let path = rig.dir.path().join("it's a file");
    let content = "line 'one'\n$(not run)\n\u{1F680}\n";
    let w =
        json!({ "path": path.to_str(), "content": content, "mode": "0640", "owner": "postgres" });
    assert!(changed(&rig.ok("remote", "file.write", w.clone()).await));
    assert!(!changed(&rig.ok("remote", "file.write", w).await));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);

    // A directory carried from the local role to the SSH role.
    let src = rig.dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a"), "a").unwrap();
    std::fs::write(src.join("db.properties"), "here").unwrap();
    let dest = rig.dir.path().join("dest");
    let sync = json!({ "from": "here", "src": src.to_str(), "dest": dest.to_str(), "exclude": ["db.properties"] });
    let r = rig.ok("remote", "file.sync", sync.clone()).await;
    assert_eq!(r["changed"], json!(["", "sub", "sub/a"]));
    assert_eq!(
        rig.ok("remote", "file.sync", sync).await["changed"],
        json!([])
    );
    assert_eq!(std::fs::read_to_string(dest.join("sub/a")).unwrap(), "a");
    assert!(!dest.join("db.properties").exists());

    let st = rig
        .ok("remote", "file.stat", json!({ "path": path.to_str() }))
        .await;
    assert_eq!(st["mode"], "0640");
    assert_eq!(st["owner"], "postgres:root");

    // Every action above shared one SSH login.
    assert_eq!(sshd.logins(), 1);
    let Rig { runner, .. } = rig;
    runner.close().await;
}
