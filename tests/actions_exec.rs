//! exec, sleep, manual.approve, service (site commands), http.get/http.wait/tcp.wait and
//! wait.until through the public action API, on local hosts; and the error kinds the
//! executor acts on (invalid parameters, unreachable host, unverifiable host key).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::rig::{Rig, changed};
use drplan::actions::Approvals;
use drplan::step::FailureKind;
use serde_json::json;

const LOCAL: &str = "  a: { address: 127.0.0.1, transport: local }";

#[tokio::test]
async fn exec_runs_argv_or_script_with_env_cwd_and_creates() {
    let rig = Rig::new(&["a"], LOCAL);
    let r = rig
        .ok(
            "a",
            "exec",
            json!({ "argv": ["printf", "%s|%s", "two words", "$(id)"] }),
        )
        .await;
    assert_eq!(r["stdout"], "two words|$(id)");
    assert_eq!(r["status"], 0);

    let dir = rig.dir.path().to_str().unwrap().to_owned();
    let r = rig
        .ok("a", "exec", json!({ "script": "echo \"$GREETING from $PWD\"; echo oops >&2", "env": { "GREETING": "hi 'there'" }, "cwd": dir }))
        .await;
    assert_eq!(r["stdout"], format!("hi 'there' from {dir}\n"));
    assert_eq!(r["stderr"], "oops\n");

    let marker = rig.dir.path().join("done");
    let creates = json!({ "argv": ["touch", marker.to_str()], "creates": marker.to_str() });
    assert!(changed(&rig.ok("a", "exec", creates.clone()).await));
    assert!(marker.exists());
    assert_eq!(rig.ok("a", "exec", creates).await["skipped"], true);

    let e = rig
        .run(
            "a",
            "exec",
            json!({ "script": "echo first >&2; echo why it failed >&2; exit 7" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);
    assert_eq!(e.status, Some(7));
    assert_eq!(e.stderr_tail.as_deref(), Some("first\nwhy it failed"));
    assert_eq!(e.host, "local");
    assert!(e.command.unwrap().starts_with("/bin/sh -c"));
}

#[tokio::test]
async fn become_and_timeouts_reach_the_command() {
    let rig = Rig::new(&["a"], LOCAL);
    let r = rig
        .ok_as("a", "postgres", "exec", json!({ "argv": ["id", "-un"] }))
        .await;
    assert_eq!(r["stdout"], "postgres\n");

    let started = Instant::now();
    let e = rig
        .run_with(
            "a",
            None,
            "s",
            "exec",
            json!({ "argv": ["sleep", "30"] }),
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(10));

    let r = rig.ok("a", "sleep", json!({ "duration": "50ms" })).await;
    assert_eq!(r["slept_ms"], 50);
    let e = rig
        .run_with(
            "a",
            None,
            "s",
            "sleep",
            json!({ "duration": "10s" }),
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
}

#[tokio::test]
async fn bad_parameters_and_roles_are_invalid_not_failures() {
    let rig = Rig::new(&["a"], LOCAL);
    for (action, params) in [
        ("exec", json!({})),
        ("exec", json!({ "argv": ["true"], "script": "true" })),
        ("exec", json!({ "argv": ["true"], "bogus": 1 })),
        ("pg.start", json!({ "data_dir": "/x" })),
        ("nosuch.action", json!({})),
        (
            "vip.assign",
            json!({ "address": "10.0.0.1", "interface": "eth0" }),
        ),
    ] {
        let e = rig.run("a", action, params.clone()).await.unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidParams, "{action} {params}: {e}");
    }
    let e = rig
        .run("ghost", "exec", json!({ "argv": ["true"] }))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::InvalidParams);
}

#[tokio::test]
async fn unreachable_and_unverifiable_hosts_say_so() {
    let port = common::sshd::free_port();
    let hosts = format!(
        "  a: {{ address: 127.0.0.1, port: {port}, user: root }}\nssh: {{ known_hosts: known_hosts, connect_timeout: 2s }}"
    );
    let rig = Rig::new(&["a"], &hosts);
    std::fs::write(rig.dir.path().join("known_hosts"), "").unwrap();
    let e = rig
        .run("a", "exec", json!({ "argv": ["true"] }))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Unreachable, "{e:#?}");
    assert_eq!(e.host, format!("root@127.0.0.1:{port}"));

    let no_ssh = Rig::new(&["a"], "  a: { address: 127.0.0.1 }");
    let e = no_ssh
        .run("a", "exec", json!({ "argv": ["true"] }))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::HostKey);
    assert!(e.message.contains("known_hosts"), "{}", e.message);
}

#[tokio::test]
async fn manual_approve_needs_approval_or_a_terminal() {
    let rig = Rig::with_approvals(
        &["a"],
        LOCAL,
        Approvals::new(vec!["go-ahead".into()], false),
    );
    let params = json!({ "prompt": "Really fail over?" });
    let ok = rig
        .run_with(
            "local",
            None,
            "go-ahead",
            "manual.approve",
            params.clone(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ok["approved"], true);
    let e = rig
        .run_with("local", None, "other", "manual.approve", params, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Refused);
    assert!(e.message.contains("--approve other"), "{}", e.message);
}

/// A fake service controlled by scripts: a state file says whether it runs; every call is
/// counted in a log.
fn service_scripts(dir: &Path) -> String {
    let state = dir.join("running");
    let log = dir.join("calls");
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {name} >> '{}'\n{body}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    };
    let s = state.display();
    let start = script("start", &format!("touch '{s}'"));
    let stop = script("stop", &format!("rm -f '{s}'"));
    let status = script("status", &format!("[ -e '{s}' ] && exit 0; exit 3"));
    let broken = script("broken", "exit 1");
    format!(
        "  a: {{ address: 127.0.0.1, transport: local, services: {{ app: {{ start: [{start}], stop: [{stop}], status: [{status}] }}, odd: {{ start: [{start}], stop: [{stop}], status: [{broken}] }} }} }}"
    )
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn services_from_the_site_start_and_stop_once() {
    let scripts = tempfile::tempdir().unwrap();
    let rig = Rig::new(&["a"], &service_scripts(scripts.path()));
    let app = json!({ "unit": "app" });
    assert_eq!(
        rig.ok("a", "service.status", app.clone()).await["active"],
        false
    );
    assert!(changed(&rig.ok("a", "service.start", app.clone()).await));
    assert!(!changed(&rig.ok("a", "service.start", app.clone()).await));
    assert_eq!(
        rig.ok("a", "service.status", app.clone()).await["active"],
        true
    );
    assert_eq!(
        calls(scripts.path())
            .iter()
            .filter(|c| *c == "start")
            .count(),
        1
    );
    // No restart command: stop, then start (each checked).
    let before = calls(scripts.path()).len();
    assert!(changed(&rig.ok("a", "service.restart", app.clone()).await));
    let log = calls(scripts.path());
    assert_eq!(
        log[before..],
        ["status", "stop", "status", "start", "status"]
    );
    assert!(changed(&rig.ok("a", "service.stop", app.clone()).await));
    assert!(!scripts.path().join("running").exists());
    assert!(!changed(&rig.ok("a", "service.stop", app).await));

    let e = rig
        .run("a", "service.status", json!({ "unit": "odd" }))
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);
    assert_eq!(e.status, Some(1));
}

/// A tiny HTTP/1.1 server: `/health` answers 503 for the first `flaps` requests, then 200.
fn http_server(flaps: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = match path.as_str() {
                "/health" => {
                    if counter.fetch_add(1, Ordering::SeqCst) < flaps {
                        ("503 Service Unavailable", "starting".to_owned())
                    } else {
                        ("200 OK", "{\"health\":\"OK\"}".to_owned())
                    }
                }
                "/text" => ("200 OK", "plain\nlines".to_owned()),
                _ => ("404 Not Found", "no".to_owned()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

#[tokio::test]
async fn http_get_and_wait_from_the_host() {
    let rig = Rig::new(&["a"], LOCAL);
    let (port, hits) = http_server(3);
    let base = format!("http://127.0.0.1:{port}");
    let r = rig
        .ok("a", "http.get", json!({ "url": format!("{base}/text") }))
        .await;
    assert_eq!(
        r,
        json!({ "status": 200, "body": "plain\nlines", "json": null })
    );
    let r = rig
        .ok("a", "http.get", json!({ "url": format!("{base}/missing") }))
        .await;
    assert_eq!(r["status"], 404);

    let r = rig
        .ok("a", "http.wait", json!({ "url": format!("{base}/health"), "contains": "OK", "interval": "50ms", "timeout": "10s" }))
        .await;
    assert_eq!(r["json"]["health"], "OK");
    assert_eq!(r["attempts"], 4);
    assert_eq!(hits.load(Ordering::SeqCst), 4);

    let started = Instant::now();
    let e = rig
        .run(
            "a",
            "http.wait",
            json!({ "url": format!("{base}/missing"), "interval": "100ms", "timeout": "600ms" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
    assert!(e.message.contains("last: status 404"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5));

    let closed = common::sshd::free_port();
    let e = rig
        .run(
            "a",
            "http.get",
            json!({ "url": format!("http://127.0.0.1:{closed}/") }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);
}

#[tokio::test]
async fn tcp_wait_polls_until_the_port_opens() {
    let rig = Rig::new(&["a"], LOCAL);
    let port = common::sshd::free_port();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let _ = listener.accept();
    });
    let r = rig
        .ok(
            "a",
            "tcp.wait",
            json!({ "host": "127.0.0.1", "port": port, "interval": "100ms", "timeout": "10s" }),
        )
        .await;
    assert_eq!(r["open"], true);
    assert!(r["attempts"].as_u64().unwrap() >= 2, "{r}");
    opener.join().unwrap();

    let closed = common::sshd::free_port();
    let e = rig
        .run(
            "a",
            "tcp.wait",
            json!({ "host": "127.0.0.1", "port": closed, "interval": "100ms", "timeout": "500ms" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
}

#[tokio::test]
async fn wait_until_polls_a_check_until_its_expectation_holds() {
    let rig = Rig::new(&["a"], LOCAL);
    let (port, _) = http_server(2);
    let r = rig
        .ok(
            "a",
            "wait.until",
            json!({
                "check": "http.get",
                "with": { "url": format!("http://127.0.0.1:{port}/health") },
                "expect": "result.status == 200 and result.json.health == 'OK'",
                "interval": "50ms",
                "timeout": "10s",
            }),
        )
        .await;
    assert_eq!(r["attempts"], 3);
    assert_eq!(r["result"]["json"]["health"], "OK");

    let e = rig
        .run(
            "a",
            "wait.until",
            json!({ "check": "file.stat", "with": { "path": "/nonexistent-drplan" }, "expect": "result.exists", "interval": "100ms", "timeout": "400ms" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout);
    assert!(e.message.contains("\"exists\":false"), "{}", e.message);

    for bad in [
        json!({ "check": "exec", "with": { "argv": ["true"] }, "expect": "true" }),
        json!({ "check": "file.stat", "with": { "path": "/" }, "expect": "result.nope.deeper" }),
        json!({ "check": "file.stat", "with": { "path": "/" }, "expect": "result.exists and (" }),
    ] {
        let e = rig.run("a", "wait.until", bad.clone()).await.unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidParams, "{bad}: {e}");
    }
}
