//! The dashboard's *Primary details* and *Standby details*, read off one readiness report:
//! what each check saw (its `result`), put beside the server it is about. Nothing is probed
//! here: whatever the checks file asks is all there is to show, and a check that could not
//! run shows as such (no stale values).
//!
//! A role whose name ends in `primary` is shown under *Primary details*, one ending in
//! `standby` under *Standby details* (the GoCD plans' `pg_primary`, `go_standby`, …), any
//! other under *Other*. Like the business-continuity add-on's dashboard, an entry that is
//! not in sync is red and one that is, black (`sync: Some(false)` / `Some(true)`).

use crate::readiness::{CheckRow, Report, Status};
use serde::Serialize;
use serde_json::Value;

/// One panel: *Primary details*, *Standby details*, *Other*.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    pub title: &'static str,
    pub servers: Vec<Server>,
}

/// What the checks saw of one role's host.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub role: String,
    pub host: String,
    pub facts: Vec<Fact>,
    pub files: Vec<FileFact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
    /// In sync (black) or not (red); None for a plain fact.
    pub sync: Option<bool>,
}

/// A config file or plugin on this server, as `gocd.compare_files` saw it.
#[derive(Debug, Clone, Serialize)]
pub struct FileFact {
    pub path: String,
    pub md5: String,
    pub changed_at: String,
    pub same: bool,
}

/// Every panel that has something to show, and who holds the virtual IP.
#[derive(Debug, Clone, Serialize)]
pub struct Panels {
    pub panels: Vec<Panel>,
    /// The roles whose host holds the VIP (`vip.owner`), or why nobody does.
    pub vip: String,
    pub vip_ok: bool,
}

impl Panels {
    pub fn of(report: &Report) -> Panels {
        let mut servers: Vec<Server> = Vec::new();
        let mut vip_holders = Vec::new();
        let mut vip_seen = false;
        for row in &report.checks {
            let Some(result) = row.result.as_ref() else {
                // It could not run: say so on its host, never leave an older value.
                let why = row.detail.clone().unwrap_or_default();
                let role = about_role(row, report);
                let host = host_of(row, &role, report);
                server(&mut servers, &role, &host).facts.push(Fact {
                    label: format!("{} (could not run)", row.check),
                    value: why,
                    sync: Some(false),
                });
                continue;
            };
            let role = about_role(row, report);
            let host = host_of(row, &role, report);
            let ok = row.status == Status::Ok;
            match row.check.as_str() {
                "pg.status" => pg_facts(server(&mut servers, &role, &host), result, ok),
                "gocd.compare_files" => {
                    files(&mut servers, report, row, result);
                }
                "gocd.server_status" => {
                    let s = server(&mut servers, &role, &host);
                    let mode = result["mode"].as_str().unwrap_or("?");
                    let mode = match mode {
                        "active" => "active (serves agents)".to_owned(),
                        "passive" => "passive (a standby: redirects agents)".to_owned(),
                        other => other.to_owned(),
                    };
                    push(s, "GoCD mode", mode, Some(ok));
                    let health = if result["healthy"] == Value::Bool(true) {
                        "healthy".to_owned()
                    } else {
                        format!(
                            "not healthy: {}",
                            result["reason"].as_str().unwrap_or("no answer")
                        )
                    };
                    push(s, "GoCD health", health, None);
                }
                "gocd.db_properties" => {
                    let s = server(&mut servers, &role, &host);
                    let value = if result["exists"] == Value::Bool(true) {
                        format!(
                            "{}:{} / {}",
                            text(&result["host"]),
                            text(&result["port"]),
                            text(&result["database"])
                        )
                    } else {
                        "missing".to_owned()
                    };
                    push(s, "db.properties", value, Some(ok));
                }
                "gocd.sync_status" if result["present"] == Value::Bool(true) => {
                    let s = server(&mut servers, &role, &host);
                    let value = match result["sync_gap_s"].as_i64() {
                        Some(gap) => format!("{} (sync gap {gap}s)", text(&result["in_sync"])),
                        None => text(&result["in_sync"]),
                    };
                    push(s, "add-on sync", value, Some(ok));
                }
                "vip.owner" => {
                    vip_seen = true;
                    let held = result["held"] == Value::Bool(true);
                    if held {
                        vip_holders.push(row.on.clone());
                    }
                    let s = server(&mut servers, &role, &host);
                    push(s, "holds the VIP", yes_no(held), Some(ok));
                }
                _ => {}
            }
        }
        let vip_ok = vip_holders.len() == 1;
        vip_holders.dedup();
        let vip = match (vip_seen, vip_holders.as_slice()) {
            (false, _) => "not checked".to_owned(),
            (true, []) => "nobody".to_owned(),
            (true, [one]) => one.clone(),
            (true, many) => format!("{} (more than one!)", many.join(", ")),
        };
        let mut panels = Vec::new();
        for (title, side) in [
            ("Primary details", Side::Primary),
            ("Standby details", Side::Standby),
            ("Other", Side::Other),
        ] {
            let mine: Vec<Server> = servers
                .iter()
                .filter(|s| side_of(&s.role) == side)
                .cloned()
                .collect();
            if !mine.is_empty() {
                panels.push(Panel {
                    title,
                    servers: mine,
                });
            }
        }
        Panels {
            panels,
            vip,
            vip_ok,
        }
    }
}

#[derive(PartialEq, Eq)]
enum Side {
    Primary,
    Standby,
    Other,
}

fn side_of(role: &str) -> Side {
    if role.ends_with("primary") {
        Side::Primary
    } else if role.ends_with("standby") {
        Side::Standby
    } else {
        Side::Other
    }
}

/// The role a check is about: the one it runs on, unless it ran elsewhere (`local`) and
/// names another host's address in its result's `url`.
fn about_role(row: &CheckRow, report: &Report) -> String {
    let url = row
        .result
        .as_ref()
        .and_then(|r| r["url"].as_str())
        .map(str::to_owned);
    if let Some(url) = url {
        let authority = url.split("://").nth(1).unwrap_or(&url);
        let host = authority
            .split(['/', ':'])
            .next()
            .unwrap_or_default()
            .to_owned();
        if let Some(r) = report.checks.iter().find(|r| address(&r.host) == host) {
            return r.on.clone();
        }
    }
    row.on.clone()
}

/// `user@address:port` → `address`.
fn address(host: &str) -> &str {
    let h = host.rsplit_once('@').map_or(host, |(_, h)| h);
    h.split(':').next().unwrap_or(h)
}

fn host_of(row: &CheckRow, role: &str, report: &Report) -> String {
    if role == row.on {
        return row.host.clone();
    }
    report
        .checks
        .iter()
        .find(|r| r.on == role)
        .map_or_else(|| role.to_owned(), |r| r.host.clone())
}

fn server<'a>(servers: &'a mut Vec<Server>, role: &str, host: &str) -> &'a mut Server {
    let i = match servers.iter().position(|s| s.role == role) {
        Some(i) => i,
        None => {
            servers.push(Server {
                role: role.to_owned(),
                host: host.to_owned(),
                facts: Vec::new(),
                files: Vec::new(),
            });
            servers.len() - 1
        }
    };
    &mut servers[i]
}

/// Add a fact, replacing an earlier one of the same label (two checks may see the same).
fn push(s: &mut Server, label: &str, value: String, sync: Option<bool>) {
    let fact = Fact {
        label: label.to_owned(),
        value,
        sync,
    };
    match s.facts.iter_mut().find(|f| f.label == label) {
        // The worse of the two: one check's red is never hidden by another's black.
        Some(old) => {
            let sync = match (old.sync, fact.sync) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
            *old = Fact { sync, ..fact };
        }
        None => s.facts.push(fact),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// `12345678` → `11.8 MiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn pg_facts(s: &mut Server, r: &Value, ok: bool) {
    if r["reachable"] == Value::Bool(false) {
        push(
            s,
            "PostgreSQL",
            format!("unreachable: {}", text(&r["error"]).trim()),
            Some(false),
        );
        return;
    }
    let standby = r["in_recovery"] == Value::Bool(true);
    let role = if standby {
        if r["streaming"] == Value::Bool(true) {
            "standby (in recovery, streaming)"
        } else {
            "standby (in recovery, not streaming)"
        }
    } else {
        "primary (accepts writes)"
    };
    push(s, "PostgreSQL role", role.to_owned(), None);
    push(s, "timeline", text(&r["timeline"]), None);
    if standby {
        push(s, "received LSN", text(&r["receive_lsn"]), None);
        push(s, "replayed LSN", text(&r["replay_lsn"]), None);
        let lag = r["replay_lag_bytes"].as_f64().map(bytes);
        push(
            s,
            "replay lag",
            match (lag, r["replay_lag_s"].as_f64()) {
                (Some(b), Some(secs)) => format!("{b}, {secs:.1} s"),
                (Some(b), None) => b,
                _ => "—".to_owned(),
            },
            Some(ok),
        );
        push(
            s,
            "last replayed transaction",
            text(&r["last_replay_at"]),
            None,
        );
    } else {
        push(s, "current LSN", text(&r["current_lsn"]), None);
        if !r["replica"].is_null() || r.get("replica_lag_bytes").is_some_and(|v| !v.is_null()) {
            let lag = r["replica_lag_bytes"]
                .as_f64()
                .map_or_else(|| "standby not connected".to_owned(), bytes);
            push(s, "a failover now would lose", lag, Some(ok));
        }
    }
}

/// `gocd.compare_files`: each side's files go to that side's server.
fn files(servers: &mut Vec<Server>, report: &Report, row: &CheckRow, r: &Value) {
    let from = r["from"].as_str().unwrap_or_default().to_owned();
    let ok = row.status == Status::Ok;
    let from_host = report
        .checks
        .iter()
        .find(|c| c.on == from)
        .map_or_else(|| from.clone(), |c| c.host.clone());
    let list = r["files"].as_array().cloned().unwrap_or_default();
    for (side, role, host) in [
        ("primary", from.as_str(), from_host.as_str()),
        ("standby", row.on.as_str(), row.host.as_str()),
    ] {
        if role.is_empty() {
            continue;
        }
        let s = server(servers, role, host);
        let mut latest = String::new();
        for f in &list {
            let this = &f[side];
            let changed = this["changed_at"].as_str().unwrap_or_default().to_owned();
            if changed > latest {
                latest = changed.clone();
            }
            s.files.push(FileFact {
                path: f["path"].as_str().unwrap_or_default().to_owned(),
                md5: if this.is_null() {
                    "missing".to_owned()
                } else {
                    this["md5"].as_str().unwrap_or("—").to_owned()
                },
                changed_at: changed,
                same: f["same"] == Value::Bool(true),
            });
        }
        let label = if side == "primary" {
            "last config/plugins change"
        } else {
            "last config/plugins change here"
        };
        push(s, label, latest, None);
        if side == "standby" {
            push(
                s,
                "config and plugins",
                if ok {
                    "in sync".to_owned()
                } else {
                    format!("differ: {}", text(&r["differ"]))
                },
                Some(ok),
            );
        }
    }
}
