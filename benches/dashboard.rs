//! What `drplan serve` costs per page: the dashboard rendered server-side (a GoCD site's 12
//! checks with what they saw, the Primary/Standby panels, an hour of lag history at a 5 s
//! interval: 720 points) and a failover run's page (15 steps, Gantt chart, evidence), and how
//! much each page weighs.
//!
//! `cargo bench --bench dashboard`. Prints the weights first, then criterion's timings.
//! Measures, never asserts: the budget is < 200 KB and < 50 ms per render.

use criterion::{Criterion, criterion_group, criterion_main};
use drplan::check;
use drplan::clock::Timestamp;
use drplan::diag::SourceFile;
use drplan::evidence::RunEvidence;
use drplan::exec::RunState;
use drplan::exec::record::Record;
use drplan::graph::PlanGraph;
use drplan::load::Document;
use drplan::plan::Severity;
use drplan::readiness::{CheckRow, Report, Status};
use drplan::serve::charts::{LagChart, LagPoint};
use drplan::serve::pages;
use drplan::step::Outcome;
use serde_json::{Value, json};

fn row(name: &str, check: &str, on: &str, result: Value) -> CheckRow {
    CheckRow {
        name: name.to_owned(),
        check: check.to_owned(),
        on: on.to_owned(),
        host: format!("root@10.231.0.{}", 12 + name.len() % 4),
        severity: Severity::Critical,
        status: Status::Ok,
        message: None,
        detail: None,
        result: Some(result),
        label: on.to_owned(),
    }
}

fn report() -> Report {
    let files: Vec<Value> = [
        "cruise-config.xml",
        "cipher.aes",
        "jetty.xml",
        "go.feature.toggles",
        "plugins/lab-notifier-1.0.jar",
    ]
    .iter()
    .map(|f| {
        let side = json!({ "md5": "c2a5d18680ab6c298a15e074edd9e785", "changed_at": "2026-12-01T02:11:09Z" });
        json!({ "path": format!("/etc/go/{f}"), "same": true, "primary": side, "standby": side })
    })
    .collect();
    let primary = json!({ "reachable": true, "in_recovery": false, "timeline": 1, "current_lsn": "0/3008140", "replica": { "replay_lsn": "0/3008140" }, "replica_lag_bytes": 0 });
    let standby = json!({ "reachable": true, "in_recovery": true, "streaming": true, "timeline": 1, "receive_lsn": "0/3008140", "replay_lsn": "0/3008140", "replay_lag_bytes": 0, "replay_lag_s": 0, "last_replay_at": "2026-12-01T02:11:24.423575+00:00" });
    let checks = vec![
        row(
            "the primary PostgreSQL is reachable and accepts writes",
            "pg.status",
            "pg_primary",
            primary.clone(),
        ),
        row(
            "the standby PostgreSQL is a replica, streaming from the primary",
            "pg.status",
            "pg_standby",
            standby.clone(),
        ),
        row(
            "a failover now would lose at most max_lag_bytes",
            "pg.status",
            "pg_primary",
            primary,
        ),
        row(
            "the standby PostgreSQL has replayed what it received",
            "pg.status",
            "pg_standby",
            standby,
        ),
        row(
            "config files and plugins match",
            "gocd.compare_files",
            "go_standby",
            json!({ "from": "go_primary", "in_sync": true, "differ": [], "files": files }),
        ),
        row(
            "the add-on's dashboard",
            "gocd.sync_status",
            "go_standby",
            json!({ "present": true, "in_sync": true, "sync_gap_s": 0 }),
        ),
        row(
            "the primary GoCD server is healthy and serves agents",
            "gocd.server_status",
            "local",
            json!({ "url": "http://10.231.0.14:8153", "healthy": true, "active": true, "mode": "active" }),
        ),
        row(
            "the standby GoCD server does not serve agents",
            "gocd.server_status",
            "local",
            json!({ "url": "http://10.231.0.15:8153", "healthy": true, "active": false, "mode": "passive" }),
        ),
        row(
            "the primary holds the VIP",
            "vip.owner",
            "go_primary",
            json!({ "held": true }),
        ),
        row(
            "the standby does not hold the VIP",
            "vip.owner",
            "go_standby",
            json!({ "held": false }),
        ),
        row(
            "the primary's db.properties",
            "gocd.db_properties",
            "go_primary",
            json!({ "exists": true, "host": "10.231.0.12", "port": 5432, "database": "gocd" }),
        ),
        row(
            "the standby's db.properties",
            "gocd.db_properties",
            "go_standby",
            json!({ "exists": true, "host": "10.231.0.13", "port": 5432, "database": "gocd" }),
        ),
    ];
    Report {
        site: "bench".into(),
        checked_at: Timestamp::now(),
        ok: checks.len(),
        warnings: 0,
        critical: 0,
        checks,
    }
}

fn lag(now: i64) -> Vec<LagPoint> {
    (0..720)
        .map(|i| LagPoint {
            at_ms: now - 3_600_000 + i * 5000,
            replay: Some(((i * 7919) % 4096) as f64),
            loss: Some(((i * 104_729) % 65_536) as f64),
        })
        .collect()
}

/// The failover plan on the example site, every step done one after the other.
fn failover() -> RunEvidence {
    let read = |p: &str| {
        let text = std::fs::read_to_string(p).unwrap();
        Document::parse(SourceFile::new(p.to_owned(), text)).unwrap()
    };
    let plan = check::plan(read("plans/gocd/failover.yaml")).unwrap();
    let graph = PlanGraph::build(check::bind(plan, read("plans/sites/example.yaml")).unwrap());
    let t0 = Timestamp::now().as_millis();
    let at = |ms: i64| {
        let since = std::time::Duration::from_millis((t0 + ms) as u64);
        Timestamp::from_system(std::time::UNIX_EPOCH + since)
    };
    let mut records = vec![Record::RunStarted {
        run_id: "bench".into(),
        plan: "gocd-failover".into(),
        site: "example".into(),
        plan_sha256: String::new(),
        site_sha256: String::new(),
        params: Default::default(),
        at: at(0),
    }];
    for (i, s) in graph.steps().iter().enumerate() {
        let start = i as i64 * 400;
        records.push(Record::StepStarted {
            step: s.id.clone(),
            attempt: 1,
            at: at(start),
        });
        records.push(Record::StepFinished {
            step: s.id.clone(),
            attempt: 1,
            outcome: Outcome::Succeeded {
                result: json!({ "changed": true, "note": "x".repeat(80) }),
            },
            duration_ms: 350,
            at: at(start + 350),
        });
    }
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let state = RunState::replay(&values, false).unwrap();
    RunEvidence::build("bench", &graph, &state, &values)
}

fn bench(c: &mut Criterion) {
    let report = report();
    let now = Timestamp::now().as_millis();
    let points = lag(now);
    let dashboard = || {
        pages::dashboard(
            &pages::Dashboard {
                site: "bench",
                checks: "plans/gocd/readiness.yaml",
                interval: "5s".into(),
                refresh: 5,
                report: Some(&report),
                chart: LagChart::draw(&points, now),
            },
            false,
        )
    };
    let run = failover();
    println!(
        "page weight: dashboard {} bytes, failover run {} bytes, runs list (50 runs) {} bytes",
        dashboard().len(),
        pages::run(&run, 5, false, false).len(),
        pages::runs(&vec![run.clone(); 50], None, ".drplan", 5, false).len()
    );
    c.bench_function("render the dashboard (12 checks, 720 lag points)", |b| {
        b.iter(dashboard);
    });
    c.bench_function("render a failover run's page (15 steps)", |b| {
        b.iter(|| pages::run(&run, 5, false, false));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
