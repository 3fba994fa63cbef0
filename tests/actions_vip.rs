//! vip.assign / vip.owner / vip.release for real: `ip addr` and `arping` run inside a pair of
//! network namespaces made for this test (a veth pair, no default route, nothing leaves
//! them), through the public action API with a local transport.
//!
//! The test's thread enters namespace A (`setns`), so every command the local transport
//! spawns from it runs there; `#[tokio::test]` runs on that one thread. B plays "another
//! host": it holds the address for the duplicate-detection check and, with `arp_accept`,
//! learns A's MAC from the gratuitous ARP. Both namespaces are deleted at the end.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

use common::rig::{Rig, changed};
use serde_json::json;

const VIP: &str = "10.251.0.100";

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2 is needed)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair; deleted (with their interfaces) when dropped.
struct Pair {
    a: String,
    b: String,
    if_a: String,
    if_b: String,
}

impl Pair {
    fn new() -> Self {
        assert!(
            Command::new("arping").arg("-V").output().is_ok(),
            "arping (iputils-arping) is needed"
        );
        let id = std::process::id();
        let pair = Self {
            a: format!("drt{id}a"),
            b: format!("drt{id}b"),
            if_a: format!("dva{id}"),
            if_b: format!("dvb{id}"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link", "add", &pair.if_a, "netns", &pair.a, "type", "veth", "peer", "name",
            &pair.if_b, "netns", &pair.b,
        ]);
        for (ns, dev, addr) in [
            (&pair.a, &pair.if_a, "10.251.0.1/24"),
            (&pair.b, &pair.if_b, "10.251.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // B learns neighbours from gratuitous ARP, so the announcement can be seen there.
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.arp_accept=1",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{}.arp_accept=1", pair.if_b),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// This thread's network namespace while alive; the original one back when dropped.
struct Inside(File);

impl Inside {
    fn enter(ns: &str) -> Self {
        let original = File::open("/proc/thread-self/ns/net").unwrap();
        let target = File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns only changes this thread's namespace; both fds are open files.
        let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        Self(original)
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        // SAFETY: as above; returning to the namespace the thread started in.
        unsafe {
            libc::setns(self.0.as_raw_fd(), libc::CLONE_NEWNET);
        }
    }
}

fn mac(ns: &str, dev: &str) -> String {
    let text = ip(&["-n", ns, "-o", "link", "show", "dev", dev]);
    let after = text.split("link/ether ").nth(1).expect("a MAC");
    after.split_whitespace().next().unwrap().to_owned()
}

/// The command lines of the background announcers of the VIP on `dev`.
fn announcers(dev: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", &format!("drplan-vip-announce {dev} {VIP} ")])
        .output()
        .expect("run pgrep (procps is needed)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many announcers run for `dev`, read until there is one (for up to 5 s): `setsid -f`
/// returns before its child has taken the announcer's name.
fn one_announcer(dev: &str) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n = announcers(dev).len();
        if n == 1 || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn assign_announce_detect_and_release_in_a_private_namespace() {
    let pair = Pair::new();
    let rig = Rig::new(&["go"], "  go: { address: 10.251.0.1, transport: local }");
    let vip = json!({ "address": format!("{VIP}/24"), "interface": pair.if_a, "arp_count": 1 });
    let _inside = Inside::enter(&pair.a);

    let r = rig.ok("go", "vip.owner", vip.clone()).await;
    assert_eq!(r, json!({ "held": false, "answered_elsewhere": false }));

    let r = rig.ok("go", "vip.assign", vip.clone()).await;
    assert!(changed(&r));
    assert_eq!(r["announced"], true, "{r}");
    assert!(
        ip(&["-n", &pair.a, "-o", "addr", "show", "dev", &pair.if_a])
            .contains(&format!("{VIP}/24"))
    );
    // The gratuitous ARP, sent before the step ends, reaches B, which then
    // knows the VIP at A's MAC.
    let a_mac = mac(&pair.a, &pair.if_a);
    let mut neigh = String::new();
    for _ in 0..50 {
        neigh = ip(&["-n", &pair.b, "neigh", "show", VIP]);
        if neigh.contains(&a_mac) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(neigh.contains(&a_mac), "B's neighbours: {neigh}");
    assert!(!changed(&rig.ok("go", "vip.assign", vip.clone()).await));
    assert_eq!(rig.ok("go", "vip.owner", vip.clone()).await["held"], true);

    assert!(changed(&rig.ok("go", "vip.release", vip.clone()).await));
    assert!(!ip(&["-n", &pair.a, "-o", "addr", "show", "dev", &pair.if_a]).contains(VIP));
    assert!(!changed(&rig.ok("go", "vip.release", vip.clone()).await));

    // Three announcements: the first before the step ends, the other two from an announcer
    // left running on the host, which `vip.release` ends before it removes the address.
    let three = json!({ "address": format!("{VIP}/24"), "interface": pair.if_a, "arp_count": 3 });
    let r = rig.ok("go", "vip.assign", three.clone()).await;
    assert_eq!(r["announced"], true, "{r}");
    assert_eq!(
        one_announcer(&pair.if_a),
        1,
        "one announcer after the assign"
    );
    assert!(changed(&rig.ok("go", "vip.release", three.clone()).await));
    assert_eq!(
        announcers(&pair.if_a),
        Vec::<String>::new(),
        "announcer after the release"
    );

    // An announcer whose address went some other way sends no more and ends by itself:
    // `arping -U` cannot bind to an address the host no longer holds.
    rig.ok("go", "vip.assign", three.clone()).await;
    assert_eq!(one_announcer(&pair.if_a), 1);
    ip(&[
        "-n",
        &pair.a,
        "addr",
        "del",
        &format!("{VIP}/24"),
        "dev",
        &pair.if_a,
    ]);
    let mut left = announcers(&pair.if_a);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = announcers(&pair.if_a);
    }
    assert_eq!(
        left,
        Vec::<String>::new(),
        "announcer after the address went"
    );

    // Another host holds it: duplicate address detection says so.
    ip(&[
        "-n",
        &pair.b,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        &pair.if_b,
    ]);
    let r = rig.ok("go", "vip.owner", vip.clone()).await;
    assert_eq!(r, json!({ "held": false, "answered_elsewhere": true }));

    let e = rig
        .run(
            "go",
            "vip.assign",
            json!({ "address": format!("{VIP}/24"), "interface": "nosuchdev0" }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, drplan::step::FailureKind::Failed);
}
