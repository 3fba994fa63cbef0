//! `/metrics`: the last readiness report and the runs in Prometheus' text exposition format
//! (version 0.0.4), every name prefixed `drplan_`, so that existing monitoring scrapes it.
//! One sample per name and label set (two checks that see the same thing give one sample,
//! the later one's).

use crate::evidence::RunEvidence;
use crate::readiness::{Report, Status};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A metric family being collected: its samples by label set.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: BTreeMap<String, f64>,
}

#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn set(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], v: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    samples: BTreeMap::new(),
                });
                self.families.len() - 1
            }
        };
        self.families[i].samples.insert(labels, v);
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} gauge", f.name);
            for (labels, v) in &f.samples {
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{labels}}}")
                };
                let _ = writeln!(out, "{}{labels} {v}", f.name);
            }
        }
        out
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn level(s: Status) -> f64 {
    match s {
        Status::Ok => 0.0,
        Status::Warning => 1.0,
        Status::Critical => 2.0,
    }
}

fn flag(v: &Value) -> Option<f64> {
    v.as_bool().map(|b| if b { 1.0 } else { 0.0 })
}

/// The exposition of the last report (none before the first round ends) and the runs.
pub fn render(report: Option<&Report>, runs: &[RunEvidence]) -> String {
    let mut m = Exposition::default();
    if let Some(r) = report {
        readiness(&mut m, r);
    }
    for run in runs {
        run_metrics(&mut m, run);
    }
    m.text()
}

fn readiness(m: &mut Exposition, r: &Report) {
    m.set(
        "drplan_readiness_status",
        "Worst state of the last readiness round: 0 ok, 1 warning, 2 critical.",
        &[("site", &r.site)],
        level(r.worst()),
    );
    m.set(
        "drplan_readiness_checked_timestamp_seconds",
        "When the last readiness round ended (Unix time).",
        &[("site", &r.site)],
        r.checked_at.as_millis() as f64 / 1000.0,
    );
    for (status, n) in [
        ("ok", r.ok),
        ("warning", r.warnings),
        ("critical", r.critical),
    ] {
        m.set(
            "drplan_readiness_checks",
            "Checks of the last round in each state.",
            &[("site", &r.site), ("status", status)],
            n as f64,
        );
    }
    for c in &r.checks {
        let severity = match c.severity {
            crate::plan::Severity::Warning => "warning",
            crate::plan::Severity::Critical => "critical",
        };
        m.set(
            "drplan_check_status",
            "State of each readiness check: 0 ok, 1 warning, 2 critical.",
            &[
                ("name", &c.name),
                ("check", &c.check),
                ("role", &c.on),
                ("severity", severity),
            ],
            level(c.status),
        );
        let Some(res) = &c.result else { continue };
        let role = [("role", c.on.as_str())];
        let mut gauge = |name, help, v: Option<f64>| {
            if let Some(v) = v {
                m.set(name, help, &role, v);
            }
        };
        match c.check.as_str() {
            "pg.status" => {
                gauge(
                    "drplan_pg_reachable",
                    "PostgreSQL answered (1) or nothing did (0).",
                    flag(&res["reachable"]),
                );
                gauge(
                    "drplan_pg_in_recovery",
                    "PostgreSQL is a standby (1) or a primary (0).",
                    flag(&res["in_recovery"]),
                );
                gauge(
                    "drplan_pg_timeline",
                    "PostgreSQL's timeline.",
                    res["timeline"].as_f64(),
                );
                if res["in_recovery"] == Value::Bool(true) {
                    gauge(
                        "drplan_pg_replay_lag_bytes",
                        "WAL a standby received but has not replayed, in bytes.",
                        res["replay_lag_bytes"].as_f64(),
                    );
                    gauge(
                        "drplan_pg_replay_lag_seconds",
                        "How far behind a standby's replay is (0 when it replayed all it received).",
                        res["replay_lag_s"].as_f64(),
                    );
                }
                gauge(
                    "drplan_pg_failover_loss_bytes",
                    "On a primary: its current WAL position minus its standby's replay position (what a failover now would lose).",
                    res["replica_lag_bytes"].as_f64(),
                );
            }
            "gocd.compare_files" => {
                gauge(
                    "drplan_gocd_config_in_sync",
                    "The GoCD servers' config files and external plugins match (1) or not (0).",
                    flag(&res["in_sync"]),
                );
                gauge(
                    "drplan_gocd_config_files_differ",
                    "How many config files and plugins differ between the GoCD servers.",
                    res["differ"].as_array().map(|d| d.len() as f64),
                );
            }
            "gocd.server_status" => {
                gauge(
                    "drplan_gocd_healthy",
                    "The GoCD server answers its health API with 200 (1) or not (0).",
                    flag(&res["healthy"]),
                );
                gauge(
                    "drplan_gocd_active",
                    "The GoCD server serves agents (1: a primary) or not (0).",
                    flag(&res["active"]).or(Some(0.0)),
                );
            }
            "vip.owner" => gauge(
                "drplan_vip_held",
                "This host holds the agents' virtual IP (1) or not (0).",
                flag(&res["held"]),
            ),
            _ => {}
        }
    }
}

fn run_metrics(m: &mut Exposition, e: &RunEvidence) {
    let labels = [
        ("run", e.run.as_str()),
        ("plan", e.plan.as_str()),
        ("site", e.site.as_str()),
        ("status", e.status_word),
    ];
    m.set(
        "drplan_run_duration_seconds",
        "From a run's first journal record to its last.",
        &labels,
        e.duration_ms as f64 / 1000.0,
    );
    m.set(
        "drplan_run_running",
        "A process runs this run now (1) or not (0).",
        &labels[..1],
        if e.live { 1.0 } else { 0.0 },
    );
    if let Some(o) = &e.outage {
        m.set(
            "drplan_run_outage_seconds",
            "A run's measured outage: from its first change to the end of its last step.",
            &labels[..3],
            o.ms as f64 / 1000.0,
        );
    }
    if let Some(lost) = e.data_loss.as_ref().and_then(|d| d.lost_bytes) {
        m.set(
            "drplan_run_data_loss_bytes",
            "WAL the old primary wrote that the promoted standby never replayed.",
            &labels[..3],
            lost as f64,
        );
    }
    for s in &e.steps {
        if let Some(ms) = s.duration_ms {
            m.set(
                "drplan_step_duration_seconds",
                "How long each step of a run took.",
                &[
                    ("run", e.run.as_str()),
                    ("step", s.id.as_str()),
                    ("role", s.role.as_str()),
                    ("state", s.class),
                ],
                ms as f64 / 1000.0,
            );
        }
    }
}
