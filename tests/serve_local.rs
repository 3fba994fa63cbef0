//! `drplan serve` and `drplan report` through the real binary, on local-transport sites: the
//! dashboard's rows and their states, a check that hangs shown critical "timed out" (never
//! the last green), an unreachable host critical with its reason, `/metrics` as Prometheus
//! text, runs read from the state directory (an unreadable one: an empty list with the
//! reason), the bearer token, the refusal to listen beyond loopback without one, and the
//! report of a run in each format. (Against the lab, with headless Chromium:
//! `tests/dashboard_lab.rs`.)

mod common;

use common::http::{Served, get, prometheus};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// Two local hosts (`a_primary`, `b_standby`), one ssh host nobody answers for
    /// (`c_standby`, port 1), a file `present`, and a checks file with one check of each
    /// state plus one that never ends.
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let site = format!(
            "version: 1\nsite: served\nhosts:\n  a_primary: {{ address: 127.0.0.1, transport: local }}\n  b_standby: {{ address: 127.0.0.1, transport: local }}\n  c_standby: {{ address: 127.0.0.1, port: 1, user: nobody }}\nvars:\n  dir: {d}\nssh:\n  known_hosts: {d}/known_hosts\n"
        );
        fs::write(dir.path().join("known_hosts"), "").unwrap();
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        fs::write(dir.path().join("present"), "here\n").unwrap();
        let checks = [
            "version: 1",
            "name: ready",
            "roles: [a_primary, b_standby, c_standby]",
            "preconditions:",
            "  - name: the file is there",
            "    on: a_primary",
            "    check: file.stat",
            "    with: { path: \"{{ vars.dir }}/present\" }",
            "    expect: result.exists",
            "  - name: the other file is there",
            "    on: b_standby",
            "    check: file.stat",
            "    with: { path: \"{{ vars.dir }}/absent\" }",
            "    expect: result.exists",
            "    severity: warning",
            "  - name: a check that never ends",
            "    on: b_standby",
            "    check: wait.until",
            "    with: { check: file.stat, with: { path: \"{{ vars.dir }}/never\" }, expect: result.exists, timeout: 1h }",
            "    expect: result.attempts > 0",
            "  - name: the far host answers",
            "    on: c_standby",
            "    check: file.stat",
            "    with: { path: /etc/hostname }",
            "    expect: result.exists",
            "steps: []",
            "",
        ]
        .join("\n");
        fs::write(dir.path().join("checks.yaml"), checks).unwrap();
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn drplan(&self) -> Command {
        let mut c = common::drplan();
        c.current_dir(self.dir.path())
            .arg("--state-dir")
            .arg(self.path("state"));
        c
    }

    fn serve(&self, extra: &[&str]) -> Command {
        let mut c = self.drplan();
        c.args(["serve", "--site", "site.yaml", "--checks", "checks.yaml"])
            .args(["--listen", "127.0.0.1:0", "--interval", "1s"])
            .args(extra);
        c
    }
}

/// The dashboard row of the check named `name`: its `data-status`, and the row's text.
fn row<'a>(page: &'a str, name: &str) -> (&'a str, &'a str) {
    let at = page
        .find(&format!("<td class=\"name\">{name}</td>"))
        .unwrap_or_else(|| panic!("no row for {name:?} in {page}"));
    let start = page[..at].rfind("<tr ").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    let tr = &page[start..end];
    let status = tr
        .split("data-status=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    (status, tr)
}

#[test]
fn the_dashboard_shows_each_check_by_state_and_a_hung_check_times_out() {
    let site = Site::new();
    let served = Served::start(site.serve(&[]));
    let readiness = served.until("/api/readiness", 60, |g| g.status == 200);
    let report: Value = serde_json::from_str(&readiness.body).unwrap();
    assert_eq!(report["site"], "served");
    assert_eq!(report["checks"].as_array().unwrap().len(), 4);

    let page = served.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let body = &page.body;
    assert_eq!(row(body, "the file is there").0, "ok");
    assert_eq!(row(body, "the other file is there").0, "warning");
    let (status, hung) = row(body, "a check that never ends");
    assert_eq!(status, "critical");
    assert!(hung.contains("timed out: no answer within 1s"), "{hung}");
    let (status, far) = row(body, "the far host answers");
    assert_eq!(status, "critical");
    assert!(far.contains("c_standby"), "{far}");
    assert!(
        far.contains("could not run") && far.to_lowercase().contains("refused"),
        "the reason is shown: {far}"
    );
    // Words and colours: the state is written out, and styled by its class.
    assert!(body.contains("<td class=\"state\">critical</td>"));
    // Works without JavaScript (a plain refresh) and with it (the live part alone).
    assert!(body.contains("<noscript><meta http-equiv=\"refresh\" content=\"1\"></noscript>"));
    assert!(body.contains("<script src=\"/app.js\"></script>"));
    let part = served.get("/?fragment=1");
    assert!(!part.body.contains("<html") && part.body.contains("id=\"checks\""));
    // Nothing from anywhere else: no external script, style, image or font.
    for external in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!body.contains(external), "{external} in the page");
    }
    assert!(body.contains("<svg id=\"lag-chart\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(served.get("/app.js").status, 200);

    // Each round is bounded by the interval: the hung check is reported again and again,
    // rounds keep coming (never a stale report).
    let first = report["checked_at"].as_str().unwrap().to_owned();
    let later = served.until("/api/readiness", 40, |g| {
        serde_json::from_str::<Value>(&g.body).is_ok_and(|r| r["checked_at"] != first.as_str())
    });
    let later: Value = serde_json::from_str(&later.body).unwrap();
    assert_eq!(later["critical"], 2);

    let metrics = served.get("/metrics");
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = prometheus(&metrics.body, "drplan_");
    let status_of = |name: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == "drplan_check_status" && l.contains(&format!("name=\"{name}\"")))
            .map(|s| s.2)
    };
    assert_eq!(status_of("the file is there"), Some(0.0));
    assert_eq!(status_of("the other file is there"), Some(1.0));
    assert_eq!(status_of("a check that never ends"), Some(2.0));
    assert!(
        samples
            .iter()
            .any(|(n, _, v)| n == "drplan_readiness_status" && *v == 2.0)
    );
}

#[test]
fn runs_are_read_from_the_state_directory_and_reported() {
    let site = Site::new();
    let plan = [
        "version: 1",
        "name: demo",
        "roles: [a_primary]",
        "steps:",
        "  - id: first",
        "    on: a_primary",
        "    action: sleep",
        "    with: { duration: 50ms }",
        "  - id: breaks",
        "    on: a_primary",
        "    action: exec",
        "    with: { argv: [sh, -c, \"echo 'boom | <b>' >&2; exit 3\"] }",
        "    needs: [first]",
        "",
    ]
    .join("\n");
    fs::write(site.path("plan.yaml"), plan).unwrap();
    let out = site
        .drplan()
        .args(["apply", "plan.yaml", "--site", "site.yaml", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let runs: Value = serde_json::from_slice(
        &site
            .drplan()
            .args(["status", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let id = runs[0]["run"].as_str().unwrap().to_owned();

    let served = Served::start(site.serve(&[]));
    let list = served.get("/runs");
    assert!(
        list.body.contains(&format!(
            "data-run=\"{id}\" data-status=\"paused\" data-live=\"false\""
        )),
        "{}",
        list.body
    );
    let page = served.get(&format!("/runs/{id}"));
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("<svg id=\"gantt\""), "{body}");
    assert!(body.contains("data-step=\"first\" data-state=\"done\""));
    assert!(body.contains("data-step=\"breaks\" data-state=\"failed\""));
    // The failure with its stderr, escaped.
    assert!(body.contains("boom | &lt;b&gt;"), "{body}");
    assert!(!body.contains("<b>'"));
    assert!(body.contains("a_primary (local)"));
    let api: Value = serde_json::from_str(&served.get(&format!("/api/runs/{id}")).body).unwrap();
    assert_eq!(api["status"], "paused");
    assert_eq!(api["counts"]["done"], 1);
    assert_eq!(api["failures"][0]["step"], "breaks");
    assert_eq!(api["outage"]["first_change"], "first");
    assert_eq!(served.get("/runs/20990101T000000.000Z-0000").status, 404);
    let metrics = prometheus(&served.get("/metrics").body, "drplan_");
    assert!(
        metrics
            .iter()
            .any(|(n, l, _)| n == "drplan_step_duration_seconds" && l.contains("step=\"breaks\""))
    );

    // The same evidence as one file, in each format.
    let report = |format: &str| {
        let out = site
            .drplan()
            .args(["report", &id, "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let md = report("md");
    assert!(
        md.starts_with(&format!("# Run {id}: plan demo on site served")),
        "{md}"
    );
    assert!(md.contains("```text\nboom | <b>\n```"), "{md}");
    assert!(md.contains("| `breaks` | exec | failed: "), "{md}");
    let html = report("html");
    assert!(html.contains("<svg id=\"gantt\"") && !html.contains("<script"));
    assert!(!html.contains("<nav>") && !html.contains("http-equiv"));
    let json: Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(json["run"], id.as_str());
    let out = site
        .drplan()
        .args(["report", &id, "--out", "report.html"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mode = fs::metadata(site.path("report.html"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let missing = site
        .drplan()
        .args(["report", "20990101T000000.000Z-0000"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn an_unreadable_state_directory_is_an_empty_list_with_the_reason() {
    let site = Site::new();
    // A file where the state directory should be.
    fs::write(site.path("state"), "not a directory\n").unwrap();
    let served = Served::start(site.serve(&[]));
    let list = served.get("/runs");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("id=\"runs-error\""), "{}", list.body);
    assert!(list.body.contains("No runs in"), "{}", list.body);
    let api: Value = serde_json::from_str(&served.get("/api/runs").body).unwrap();
    assert_eq!(api["runs"], serde_json::json!([]));
    assert!(api["error"].as_str().is_some_and(|e| !e.is_empty()));
}

fn token_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("token");
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn beyond_loopback_a_token_is_required_and_checked() {
    let site = Site::new();
    let out = site
        .drplan()
        .args(["serve", "--site", "site.yaml", "--checks", "checks.yaml"])
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve on 0.0.0.0:0 without --token"),
        "{err}"
    );

    let short = token_file(site.dir.path(), "short\n");
    let out = site
        .serve(&["--token", short.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));

    let token = "0123456789abcdef-the-token";
    let file = token_file(site.dir.path(), &format!("{token}\n"));
    let served = Served::start(site.serve(&["--token", file.to_str().unwrap()]));
    for path in ["/", "/runs", "/metrics", "/api/readiness", "/app.js"] {
        let refused = served.get(path);
        assert_eq!(refused.status, 401, "{path}");
        assert_eq!(
            refused.header("www-authenticate").as_deref(),
            Some("Bearer")
        );
    }
    assert_eq!(
        get(&served.addr, "/", Some("0123456789abcdef-not-it")).status,
        401
    );
    assert_eq!(get(&served.addr, "/", Some(token)).status, 200);
}
