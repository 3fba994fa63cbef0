//! `drplan serve` against the DR lab, read by headless Chromium (Debian's `chromium`) in the
//! controller's namespace: the dashboard's rows and states and its *Primary details* and
//! *Standby details* from the DOM (after the page's script has swapped in a refresh), a
//! screenshot kept in `target/artifacts/`; replay paused on the standby behind a burst of
//! writes turns replication red within two refreshes; a failover started beside it shows up
//! live on `/runs`, then with its timeline by host, point of no return, outage and
//! data-loss evidence; `/metrics` parses as Prometheus text. Needs root, the lab's packages
//! and chromium: fails (never skips) without them.

mod common;

use common::http::{Served, prometheus};
use common::lab::{Lab, LabEnv, lab, repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds between two refreshes of the dashboard.
const INTERVAL: u64 = 2;
const LAG: &str = "the standby PostgreSQL has replayed what it received (lag within max_lag_bytes)";

fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn artifacts() -> PathBuf {
    let dir = repo().join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The served site, seen from inside the controller's namespace.
struct Browser<'a> {
    ns: String,
    base: String,
    profile: &'a Path,
}

impl Browser<'_> {
    /// `curl` from the controller: (status, body).
    fn curl(&self, path: &str) -> (u16, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-sS", "--max-time", "20"])
            .args(["-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    fn json(&self, path: &str) -> Value {
        let (code, body) = self.curl(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Headless Chromium with nothing but the page: `--dump-dom` (after `budget_ms` of
    /// virtual time, so the page's script has run) or `--screenshot=FILE`.
    fn chromium(&self, path: &str, what: &str, budget_ms: u64) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "chromium"])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,1800",
            ])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg(what)
            .arg(format!("{}{path}", self.base))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("chromium cannot run ({e}): CI installs Debian's chromium (.ci/run)")
            });
        assert!(
            out.status.success(),
            "chromium {what} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dom(&self, path: &str) -> String {
        self.chromium(path, "--dump-dom", INTERVAL * 1000 + 1500)
    }

    /// The page once `shows` holds of its DOM. A readiness round on a loaded machine can
    /// outrun its budget (the interval) and show its checks as timed out: the next rounds
    /// are the ones to read, as an operator would.
    fn dom_showing(&self, path: &str, what: &str, shows: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let dom = self.dom(path);
            if shows(&dom) {
                return dom;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the page never showed {what}: {dom}"
            );
        }
    }

    fn screenshot(&self, path: &str, name: &str) {
        let file = artifacts().join(name);
        let _ = std::fs::remove_file(&file);
        self.chromium(path, &format!("--screenshot={}", file.display()), 1000);
        let png = std::fs::read(&file).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG"),
            "no screenshot in {}",
            file.display()
        );
    }
}

/// The `<tr>` of the dashboard row named `name`, and its `data-status`.
fn row<'a>(dom: &'a str, name: &str) -> (&'a str, &'a str) {
    let at = dom
        .find(&format!("<td class=\"name\">{name}</td>"))
        .unwrap_or_else(|| panic!("no row {name:?} in {dom}"));
    let start = dom[..at].rfind("<tr ").unwrap();
    let tr = &dom[start..at + dom[at..].find("</tr>").unwrap()];
    let status = tr
        .split("data-status=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    (status, tr)
}

/// The class of the fact `label` of the server playing `role`.
fn fact<'a>(dom: &'a str, role: &str, label: &str) -> &'a str {
    let server = dom
        .find(&format!("<div class=\"server\" data-role=\"{role}\">"))
        .unwrap_or_else(|| panic!("no server {role} in {dom}"));
    let rest = &dom[server..];
    let at = rest
        .find(&format!("data-fact=\"{label}\""))
        .unwrap_or_else(|| panic!("no fact {label:?} of {role} in {rest}"));
    let start = rest[..at].rfind("<tr ").unwrap();
    rest[start..at]
        .split("class=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
}

#[test]
fn the_dashboard_in_chromium_against_the_lab() {
    assert_eq!(
        uid(),
        Some(0),
        "this test builds the DR lab and needs root; a lab test that did not run has not passed"
    );
    let dir = std::env::temp_dir().join(format!("drplan-dlab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _lab = Lab(dir.clone());
    assert!(lab("up", &dir), "tests/lab/up failed (output above)");
    let env = LabEnv::read(&dir);
    let ns = env.var("LAB_NS_CTL");
    let site = dir.join("site.yaml");
    let state = dir.join("state");

    let mut serve = common::drplan_in(&ns);
    serve
        .arg("--state-dir")
        .arg(&state)
        .args(["serve", "--listen", "127.0.0.1:0", "--interval"])
        .arg(format!("{INTERVAL}s"))
        .arg("--site")
        .arg(&site)
        .current_dir(repo());
    let served = Served::start(serve);
    let profile = tempfile::tempdir().unwrap();
    let web = Browser {
        ns: ns.clone(),
        base: format!("http://{}", served.addr),
        profile: profile.path(),
    };

    // A fresh lab: every row ok.
    let started = Instant::now();
    loop {
        let (code, body) = web.curl("/api/readiness");
        if code == 200 && serde_json::from_str::<Value>(&body).is_ok_and(|r| r["ok"] == 14) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "never green: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The page's script fetched a refresh and swapped it in (no reload).
    let dom = web.dom_showing("/", "a refreshed page with 14 checks ok", |dom| {
        dom.contains("data-updated=\"")
            && dom.matches("class=\"check ok\" data-status=\"ok\"").count() == 14
    });
    assert!(dom.contains("id=\"live\" data-refresh=\"2\""), "{dom}");
    assert!(!dom.contains("data-status=\"warning\"") && !dom.contains("data-status=\"critical\""));
    assert_eq!(row(&dom, LAG).0, "ok");
    // The manual's panels: each server's role, replication, files, GoCD mode, the VIP.
    assert!(dom.contains("id=\"primary-details\"") && dom.contains("id=\"standby-details\""));
    assert_eq!(fact(&dom, "pg_standby", "replay lag"), "fact in-sync");
    assert!(dom.contains("standby (in recovery, streaming)"), "{dom}");
    assert!(dom.contains("primary (accepts writes)"), "{dom}");
    assert_eq!(fact(&dom, "go_primary", "GoCD mode"), "fact in-sync");
    assert!(dom.contains("active (serves agents)") && dom.contains("passive (a standby"));
    assert!(dom.contains("cruise-config.xml"), "{dom}");
    assert!(
        dom.contains("<b id=\"vip\" class=\"in-sync\">go_primary</b>"),
        "{dom}"
    );
    assert!(dom.contains("<path class=\"replay\""), "{dom}");
    web.screenshot("/", "dashboard.png");
    metrics(
        &web,
        &[
            "drplan_check_status",
            "drplan_pg_replay_lag_bytes",
            "drplan_pg_replay_lag_seconds",
            "drplan_pg_failover_loss_bytes",
            "drplan_gocd_config_in_sync",
            "drplan_vip_held",
        ],
    );
    // Everything the page needs is in it, and it is light.
    let (_, page) = web.curl("/");
    assert!(
        page.len() < 200 * 1024,
        "the page weighs {} bytes",
        page.len()
    );

    // Replay paused on the standby behind ~30 MB of writes: replication red within two
    // refreshes (the report in flight when the burst ends may predate it).
    let (pg1, pg2) = (env.var("LAB_ADDR_PG1"), env.var("LAB_ADDR_PG2"));
    env.psql(&pg2, "select pg_wal_replay_pause()");
    env.psql(
        &pg1,
        "create table drplan_dash_lag as select g, repeat('x', 1000) as pad from generate_series(1, 30000) g",
    );
    let mut seen = Vec::new();
    let red = loop {
        let r = web.json("/api/readiness");
        let at = r["checked_at"].as_str().unwrap_or_default().to_owned();
        if !seen.contains(&at) {
            seen.push(at);
        }
        let lag = r["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == LAG))
            .cloned()
            .unwrap_or_default();
        if lag["status"] == "warning" {
            break r;
        }
        assert!(
            seen.len() <= 3,
            "replication still not red after {} reports: {r:#}",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(red["checks"].to_string().contains("replay_lag_bytes"));
    let dom = web.dom_showing("/", "the replay lag as a warning", |dom| {
        row(dom, LAG).0 == "warning"
    });
    assert_eq!(fact(&dom, "pg_standby", "replay lag"), "fact out-of-sync");
    web.screenshot("/", "dashboard-replay-paused.png");
    env.psql(&pg2, "select pg_wal_replay_resume()");
    env.psql(&pg1, "drop table drplan_dash_lag");
    let started = Instant::now();
    while web.json("/api/readiness")["ok"] != 14 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never green again"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // A failover started beside it: live on /runs while it runs, then its evidence.
    let mut failover = common::drplan_in(&ns)
        .arg("--state-dir")
        .arg(&state)
        .args(["apply", "plans/gocd/failover.yaml", "--yes", "--site"])
        .arg(&site)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .spawn()
        .expect("drplan apply");
    let started = Instant::now();
    let run = loop {
        let runs = web.json("/api/runs");
        if let Some(r) = runs["runs"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["live"] == true))
        {
            break r["run"].as_str().unwrap().to_owned();
        }
        assert!(
            failover.try_wait().unwrap().is_none(),
            "the failover ended before /runs showed it running"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, list) = web.curl("/runs");
    assert!(list.contains(&format!("data-run=\"{run}\"")) && list.contains("running now"));
    let status = failover.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut failover.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "the failover failed: {out}");

    let dom = web.dom(&format!("/runs/{run}"));
    assert!(dom.contains("data-status=\"succeeded\""), "{dom}");
    assert!(dom.contains("<svg id=\"gantt\""), "{dom}");
    for host in [
        "pg_standby (root@",
        "go_standby (root@",
        "go_primary (root@",
    ] {
        assert!(dom.contains(host), "{host} lane in {dom}");
    }
    assert!(dom.contains("promote-pg-standby: crossed at"), "{dom}");
    assert!(dom.contains("data-lost=\"0\""), "{dom}");
    assert!(
        dom.contains("nothing lost: the new primary had replayed to"),
        "{dom}"
    );
    web.screenshot(&format!("/runs/{run}"), "failover-run.png");
    let e = web.json(&format!("/api/runs/{run}"));
    assert_eq!(e["outage"]["first_change"], "stop-go-primary", "{e:#}");
    assert!(e["outage"]["ms"].as_i64().unwrap() > 0);
    assert_eq!(e["data_loss"]["lost_bytes"], 0, "{e:#}");
    let (code, events) = web.curl(&format!("/api/runs/{run}/events"));
    assert_eq!(code, 200);
    assert!(events.contains("\"kind\":\"run_finished\"") && events.contains("event: end"));

    metrics(
        &web,
        &[
            "drplan_run_outage_seconds",
            "drplan_run_data_loss_bytes",
            "drplan_step_duration_seconds",
        ],
    );
}

/// `/metrics` parses as Prometheus text and has these names (read again while a round
/// that timed out on a loaded machine left some out, as `dom_showing` does).
fn metrics(web: &Browser<'_>, names: &[&str]) {
    let started = Instant::now();
    loop {
        let (code, text) = web.curl("/metrics");
        assert_eq!(code, 200);
        let samples = prometheus(&text, "drplan_");
        let missing = names
            .iter()
            .find(|name| !samples.iter().any(|s| s.0 == **name));
        let Some(name) = missing else { return };
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} in {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
