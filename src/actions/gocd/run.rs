//! `gocd.set_mode`, `gocd.wait_ready`, `gocd.server_status`, `gocd.sync_status`,
//! `gocd.db_properties` and `gocd.maintenance_mode`: GoCD's business-continuity switch and
//! gauges.
//!
//! The mode is edited in the file the install reads (`jvm_options.rs`) and takes effect at
//! the server's next start. Whether it took is only known from the running server: a passive
//! standby answers `/go/api/v1/health` with 200 like an active primary, but redirects what
//! agents send it (to the business-continuity dashboard), so `gocd.wait_ready` (and
//! `gocd.server_status`, once) asks both.
//! The sync state of the add-on's dashboard (GoCD 20.6–22.3 only) is read where there is
//! one: in sync when there are no sync errors, every config file's and plugin's md5 on the
//! primary equals the standby's (the oracle of GoCD's own business-continuity tests), and the
//! standby's last sync is not far behind the primary's last change (the manual's "not off by
//! a huge time gap"). Without the add-on the dashboard is absent, which says nothing bad.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::jvm_options::{self, Layout};
use super::{
    GocdDbPropertiesParams, GocdLayout, GocdMaintenanceParams, GocdMode, GocdServerStatusParams,
    GocdSetModeParams, GocdSyncStatusParams, GocdWaitReadyParams,
};
use crate::actions::file::read::{read, write_atomic};
use crate::actions::host::{Ctx, Host, absolute};
use crate::actions::http::run::{self as http, Auth, Fetched, Request, fetch, send};
use crate::step::{FailureKind, StepFailure};

const DEFAULT_DEFAULTS_FILE: &str = "/etc/default/go-server";
const DEFAULT_WRAPPER_PROPERTIES: &str =
    "/usr/share/go-server/wrapper-config/wrapper-properties.conf";
const DEFAULT_DB_PROPERTIES: &str = "/etc/go/db.properties";
const DASHBOARD: &str = "/go/add-on/business-continuity/admin/dashboard.json";
const HEALTH: &str = "/go/api/v1/health";
/// What an agent POSTs to its server; a passive (standby) server redirects it.
const AGENT_PING: &str = "/go/remoting/api/agent/ping";
const MAINTENANCE: &str = "/go/api/admin/maintenance_mode";
const DEFAULT_MAX_SYNC_GAP: Duration = Duration::from_secs(300);
/// The config files GoCD's standby keeps in sync, by the dashboard's keys.
const FILE_KEYS: [&str; 4] = [
    "CRUISE_CONFIG_XML",
    "AES_CIPHER",
    "JETTY_XML",
    "USER_FEATURE_TOGGLE",
];

pub(super) async fn set_mode(ctx: &Ctx<'_>, p: GocdSetModeParams) -> Result<Value, StepFailure> {
    let (mode, url) = match (p.mode, p.primary_url.as_deref()) {
        (GocdMode::Primary, None) => ("primary", None),
        (GocdMode::Primary, Some(_)) => {
            return Err(ctx.invalid("`primary_url` is for standby mode only"));
        }
        (GocdMode::Standby, Some(url)) if !url.is_empty() && !url.contains(char::is_whitespace) => {
            ("standby", Some(url))
        }
        (GocdMode::Standby, Some(url)) => {
            return Err(ctx.invalid(format!("{url:?} is not a URL (no blanks allowed)")));
        }
        (GocdMode::Standby, None) => {
            return Err(
                ctx.invalid("standby mode needs `primary_url` (the primary GoCD server's URL)")
            );
        }
    };
    let file = p.file.as_deref().filter(|f| !f.is_empty());
    let (layout, path) = match p.layout.unwrap_or(GocdLayout::Defaults) {
        GocdLayout::Defaults => (
            Layout::Defaults,
            file.or(p.defaults_file.as_deref())
                .unwrap_or(DEFAULT_DEFAULTS_FILE),
        ),
        GocdLayout::WrapperProperties => (
            Layout::WrapperProperties,
            file.unwrap_or(DEFAULT_WRAPPER_PROPERTIES),
        ),
        GocdLayout::ContainerEnv => match file {
            Some(f) => (Layout::ContainerEnv, f),
            None => {
                return Err(ctx.invalid(
                    "layout container_env needs `file`: the container's environment file",
                ));
            }
        },
    };
    absolute(ctx, "file", path)?;
    let host = ctx.host().await?;
    // A missing file is an error, not a fresh one: a wrong path would otherwise "succeed"
    // while the server goes on reading the real file.
    let old = read(&host, path).await?;
    let old = String::from_utf8(old).map_err(|_| host.fail(format!("{path} is not UTF-8 text")))?;
    let was = jvm_options::mode_of(layout, &old);
    let new = jvm_options::set_mode(layout, &old, mode, url);
    if new == old {
        return Ok(json!({ "changed": false, "mode": mode, "was": was, "file": path }));
    }
    write_atomic(&host, path, new.into_bytes(), None, None).await?;
    Ok(json!({ "changed": true, "mode": mode, "was": was, "file": path }))
}

/// What one look at a server found.
enum Seen {
    /// Not answering health with 200 (yet): what it said instead.
    NotHealthy(String),
    /// Healthy, and agents' requests are served (`true`) or redirected (`false`).
    Healthy { active: bool, agent_status: u16 },
}

async fn look(host: &Host<'_>, base: &str, limit: Duration) -> Result<Seen, StepFailure> {
    let health = format!("{base}{HEALTH}");
    let got = match fetch(host, &health, limit, None).await {
        Ok(f) => f,
        Err(e) if matches!(e.kind, FailureKind::Failed | FailureKind::Timeout) => {
            return Ok(Seen::NotHealthy(e.stderr_tail.unwrap_or(e.message)));
        }
        Err(e) => return Err(e),
    };
    if got.status != 200 {
        let body: String = host.text(&got.body).chars().take(200).collect();
        return Ok(Seen::NotHealthy(format!(
            "health answered {}: {body}",
            got.status
        )));
    }
    let ping = format!("{base}{AGENT_PING}");
    let req = Request {
        method: "POST",
        url: &ping,
        limit,
        auth: None,
        headers: &[],
    };
    match send(host, &req).await {
        // A redirect is a passive server; 5xx is one not (yet) serving; anything else —
        // even 401/403 for an agent we are not — is a server that handles agents.
        Ok(Fetched { status, .. }) if (300..400).contains(&status) => Ok(Seen::Healthy {
            active: false,
            agent_status: status,
        }),
        Ok(Fetched { status, .. }) if status >= 500 => Ok(Seen::NotHealthy(format!(
            "healthy, but POST {AGENT_PING} answered {status}"
        ))),
        Ok(Fetched { status, .. }) => Ok(Seen::Healthy {
            active: true,
            agent_status: status,
        }),
        Err(e) if matches!(e.kind, FailureKind::Failed | FailureKind::Timeout) => {
            Ok(Seen::NotHealthy(e.stderr_tail.unwrap_or(e.message)))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn server_status(
    ctx: &Ctx<'_>,
    p: GocdServerStatusParams,
) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let base = p.url.trim_end_matches('/');
    let limit = ctx
        .remaining("looking at the GoCD server")?
        .min(http::PROBE_LIMIT);
    Ok(match look(&host, base, limit).await? {
        Seen::Healthy {
            active,
            agent_status,
        } => json!({
            "url": base,
            "healthy": true,
            "active": active,
            "mode": if active { "active" } else { "passive" },
            "agent_request_status": agent_status,
        }),
        Seen::NotHealthy(reason) => json!({
            "url": base,
            "healthy": false,
            "active": null,
            "mode": "down",
            "agent_request_status": null,
            "reason": reason.trim(),
        }),
    })
}

pub(super) async fn wait_ready(
    ctx: &Ctx<'_>,
    p: GocdWaitReadyParams,
) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let base = p.url.trim_end_matches('/');
    let want_active = p.mode == GocdMode::Primary;
    let interval = p
        .interval
        .map_or(http::DEFAULT_INTERVAL, crate::plan::duration::Duration::std);
    let started = Instant::now();
    let deadline = http::wait_deadline(ctx, p.timeout);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match look(&host, base, left.min(http::PROBE_LIMIT)).await? {
            Seen::Healthy {
                active,
                agent_status,
            } if active == want_active => {
                let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                return Ok(json!({
                    "healthy": true,
                    "active": active,
                    "agent_request_status": agent_status,
                    "attempts": attempts,
                    "waited_ms": waited,
                }));
            }
            Seen::Healthy {
                active: false,
                agent_status,
            } => format!(
                "healthy but passive: it redirects agents (POST {AGENT_PING} answered {agent_status}), as a standby does — is -Dgo.server.mode set where this server reads it?"
            ),
            Seen::Healthy {
                active: true,
                agent_status,
            } => format!(
                "healthy and active (POST {AGENT_PING} answered {agent_status}), not a passive standby"
            ),
            Seen::NotHealthy(why) => why,
        };
        if Instant::now() + interval >= deadline {
            return Err(http::timed_out(
                &host,
                format!(
                    "{base} did not become {} within {:.1}s ({attempts} attempts); last: {last}",
                    if want_active {
                        "a healthy, active primary"
                    } else {
                        "a healthy, passive standby"
                    },
                    started.elapsed().as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(interval).await;
    }
}

/// `user=password` or `user:password`, the business-continuity token file's one line.
fn token_pair(text: &str) -> Option<(String, String)> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let at = line.find(['=', ':'])?;
    Some((line[..at].to_owned(), line[at + 1..].to_owned()))
}

pub(super) async fn sync_status(
    ctx: &Ctx<'_>,
    p: GocdSyncStatusParams,
) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let url = format!("{}{DASHBOARD}", p.url.trim_end_matches('/'));
    let mut auth = match (&p.username, &p.password) {
        (Some(u), Some(pw)) => Some((u.clone(), pw.clone())),
        (None, None) => None,
        _ => return Err(ctx.invalid("give both `username` and `password`, or neither")),
    };
    if let (None, Some(token)) = (&auth, p.token.as_deref().filter(|t| !t.trim().is_empty())) {
        auth = Some(
            token_pair(token)
                .ok_or_else(|| ctx.invalid("`token` is not `user=password` or `user:password`"))?,
        );
    }
    let limit = ctx
        .remaining("reading the dashboard")?
        .min(Duration::from_secs(30));
    let got = match fetch(
        &host,
        &url,
        limit,
        auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
    )
    .await
    {
        Ok(got) => got,
        // Nothing listens: no running server, so no dashboard (a cold standby).
        Err(e) if e.kind == FailureKind::Failed => {
            return Ok(absent(format!(
                "no GoCD server answers there: {}",
                e.stderr_tail.unwrap_or(e.message).trim()
            )));
        }
        Err(e) => return Err(e),
    };
    match got.status {
        200 => {}
        404 => {
            return Ok(absent(
                "no business-continuity add-on (the dashboard answers 404)".into(),
            ));
        }
        401 => {
            return Err(host.fail(format!(
                "GET {url} answered 401: the dashboard needs the business-continuity token (`token`, or `username` and `password`){}",
                if auth.is_some() { "; the one sent was refused" } else { "" }
            )));
        }
        status => {
            let body: String = host.text(&got.body).chars().take(300).collect();
            return Err(host.fail(format!("GET {url} answered {status}: {body}")));
        }
    }
    let dashboard: Value = serde_json::from_slice(&got.body)
        .map_err(|e| host.fail(format!("{url} did not return JSON: {e}")))?;
    let gap = p
        .max_sync_gap
        .map_or(DEFAULT_MAX_SYNC_GAP, crate::plan::duration::Duration::std);
    Ok(in_sync(&dashboard, gap))
}

fn absent(reason: String) -> Value {
    json!({ "present": false, "in_sync": Value::Null, "reason": reason })
}

pub(super) async fn db_properties(
    ctx: &Ctx<'_>,
    p: GocdDbPropertiesParams,
) -> Result<Value, StepFailure> {
    let path = p.path.as_deref().unwrap_or(DEFAULT_DB_PROPERTIES);
    absolute(ctx, "path", path)?;
    let host = ctx.host().await?;
    if !host.exists(path).await? {
        return Ok(json!({ "exists": false, "path": path }));
    }
    let text = read(&host, path).await?;
    let mut out = parse_db_properties(&String::from_utf8_lossy(&text));
    out["exists"] = json!(true);
    out["path"] = json!(path);
    Ok(out)
}

/// `db.url=jdbc:postgresql://HOST[:PORT]/DB[?…]` and `db.user` of a Java properties file; the
/// password is never part of the result.
fn parse_db_properties(text: &str) -> Value {
    let mut url = None;
    let mut user = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let (k, v) = (line[..at].trim(), line[at + 1..].trim());
        match k {
            "db.url" => url = Some(v.to_owned()),
            "db.user" => user = Some(v.to_owned()),
            _ => {}
        }
    }
    let (mut host, mut port, mut database) = (Value::Null, Value::Null, Value::Null);
    if let Some(rest) = url
        .as_deref()
        .and_then(|u| u.strip_prefix("jdbc:postgresql://"))
        && let Some((authority, path)) = rest.split_once('/')
    {
        database = json!(path.split('?').next().unwrap_or(""));
        match authority.rsplit_once(':') {
            Some((h, p)) => {
                host = json!(h);
                port = p.parse::<u16>().map_or(Value::Null, |n| json!(n));
            }
            None => {
                host = json!(authority);
                port = json!(5432);
            }
        }
    }
    json!({ "url": url, "host": host, "port": port, "database": database, "user": user })
}

pub(super) async fn maintenance_mode(
    ctx: &Ctx<'_>,
    p: GocdMaintenanceParams,
) -> Result<Value, StepFailure> {
    // The token is never quoted back: it is a secret.
    let token = p.token.as_deref().map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(ctx.invalid(
            "GoCD's maintenance-mode API needs an administrator's API token (`token`, from a site secret) and none was given",
        ));
    }
    if token.contains(char::is_whitespace) {
        return Err(ctx.invalid("`token` is not one API access token (it holds spaces or lines)"));
    }
    let host = ctx.host().await?;
    let verb = if p.enabled { "enable" } else { "disable" };
    let url = format!("{}{MAINTENANCE}/{verb}", p.url.trim_end_matches('/'));
    let limit = ctx
        .remaining("calling GoCD's API")?
        .min(Duration::from_secs(30));
    let got = send(
        &host,
        &Request {
            method: "POST",
            url: &url,
            limit,
            auth: Some(Auth::Bearer(token)),
            // GoCD's API answers only requests that name its versioned media type.
            headers: &["Accept: application/vnd.go.cd+json", "X-GoCD-Confirm: true"],
        },
    )
    .await?;
    if !(200..300).contains(&got.status) {
        let body: String = host.text(&got.body).chars().take(300).collect();
        return Err(host.fail(format!("POST {url} answered {}: {body}", got.status)));
    }
    Ok(json!({
        "maintenance_mode": p.enabled,
        "status": got.status,
        "note": format!("GoCD at {} is {} maintenance mode", p.url, if p.enabled { "in" } else { "out of" }),
    }))
}

/// `MMM d, yyyy HH:mm:ss` (GoCD's dashboard dates), as seconds since the epoch (UTC).
fn dashboard_time(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut it = s.split([' ', ',', ':']).filter(|p| !p.is_empty());
    let first = it.next()?;
    let month = MONTHS.iter().position(|m| *m == first)? as u32 + 1;
    let nums: Vec<i64> = it.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [day, year, hour, minute, second] = nums[..] else {
        return None;
    };
    let t = crate::journal::clock::UtcTime {
        year,
        month,
        day: u32::try_from(day).ok()?,
        hour: u32::try_from(hour).ok()?,
        minute: u32::try_from(minute).ok()?,
        second: u32::try_from(second).ok()?,
        millis: 0,
    };
    let secs = t
        .to_system()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    i64::try_from(secs).ok()
}

/// `a.jar=md5, b.jar=md5` → sorted pairs.
fn plugin_list(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .map(|(n, m)| (n.trim().to_owned(), m.trim().to_owned()))
        .collect();
    out.sort();
    out
}

/// The result object for a dashboard.json document.
fn in_sync(d: &Value, max_gap: Duration) -> Value {
    let sync_errors: Vec<Value> = d["syncErrors"].as_array().cloned().unwrap_or_default();
    let primary = &d["primaryServerDetails"];
    let standby = &d["standbyServerDetails"];
    let mut files = Map::new();
    let mut all_equal = true;
    let mut any = false;
    for key in FILE_KEYS {
        let p = primary[key]["md5"].as_str();
        let s = standby[key].as_str().filter(|s| !s.is_empty());
        if p.is_none() && s.is_none() {
            continue;
        }
        if p.is_some() {
            any = true;
            all_equal &= p == s;
        }
        files.insert(key.to_owned(), json!({ "primary": p, "standby": s }));
    }
    let (pp, sp) = (
        plugin_list(&primary["pluginStatus"]),
        plugin_list(&standby["pluginStatus"]),
    );
    let plugins_in_sync = pp == sp;
    // The manual: the primary's last config/plugin update time and the standby's last
    // successful sync must not be off by a huge gap.
    let gap = match (
        primary["lastConfigUpdateTime"]
            .as_str()
            .and_then(dashboard_time),
        standby["lastUpdateTime"].as_str().and_then(dashboard_time),
    ) {
        (Some(p), Some(s)) => Some(p - s),
        _ => None,
    };
    let gap_ok = gap.is_some_and(|g| g <= i64::try_from(max_gap.as_secs()).unwrap_or(i64::MAX));
    let setup_ok = d["setupStatus"].as_str() == Some("success");
    let primary_error = primary["error"].as_str();
    let in_sync = setup_ok
        && sync_errors.is_empty()
        && primary_error.is_none()
        && any
        && all_equal
        && plugins_in_sync
        && gap_ok;
    json!({
        "present": true,
        "in_sync": in_sync,
        "setup_status": d["setupStatus"],
        "sync_errors": sync_errors,
        "primary_error": primary_error,
        "files": files,
        "plugins_in_sync": plugins_in_sync,
        "plugins": { "primary": primary["pluginStatus"], "standby": standby["pluginStatus"] },
        "sync_gap_s": gap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_secs(300);

    fn dashboard(standby_cipher: &str, errors: &[&str]) -> Value {
        json!({
            "userName": "",
            "setupStatus": "success",
            "syncErrors": errors,
            "primaryServerDetails": {
                "url": "http://go1:8153",
                "CRUISE_CONFIG_XML": { "md5": "aaa" },
                "AES_CIPHER": { "md5": "bbb" },
                "JETTY_XML": { "md5": "ccc" },
                "USER_FEATURE_TOGGLE": { "md5": "ddd" },
                "lastConfigUpdateTime": "Nov 25, 2026 20:34:56",
                "pluginStatus": "b.jar=2, a.jar=1"
            },
            "standbyServerDetails": {
                "CRUISE_CONFIG_XML": "aaa",
                "AES_CIPHER": standby_cipher,
                "JETTY_XML": "ccc",
                "USER_FEATURE_TOGGLE": "ddd",
                "lastUpdateTime": "Nov 25, 2026 20:34:50",
                "pluginStatus": "a.jar=1, b.jar=2"
            }
        })
    }

    #[test]
    fn in_sync_when_every_md5_matches_and_there_are_no_errors() {
        let r = in_sync(&dashboard("bbb", &[]), GAP);
        assert_eq!(r["in_sync"], true);
        assert_eq!(
            r["files"]["AES_CIPHER"],
            json!({ "primary": "bbb", "standby": "bbb" })
        );
    }

    #[test]
    fn out_of_sync_on_a_different_md5_or_an_error() {
        let r = in_sync(&dashboard("old", &[]), GAP);
        assert_eq!(r["in_sync"], false);
        assert_eq!(r["files"]["AES_CIPHER"]["standby"], "old");
        assert_eq!(
            in_sync(&dashboard("bbb", &["Unable to connect"]), GAP)["in_sync"],
            false
        );
    }

    #[test]
    fn an_incomplete_setup_is_never_in_sync() {
        let d = json!({ "userName": "", "setupStatus": "incomplete", "syncErrors": ["Unable to connect to primary"] });
        let r = in_sync(&d, GAP);
        assert_eq!(r["in_sync"], false);
        assert_eq!(r["sync_errors"].as_array().map(Vec::len), Some(1));
        let mut d = dashboard("bbb", &[]);
        d["primaryServerDetails"]["error"] =
            json!("Could not fetch latest file status from master");
        assert_eq!(in_sync(&d, GAP)["in_sync"], false);
    }

    #[test]
    fn plugins_and_the_update_gap_count_too() {
        let r = in_sync(&dashboard("bbb", &[]), GAP);
        assert_eq!(r["sync_gap_s"], 6);
        let mut d = dashboard("bbb", &[]);
        d["standbyServerDetails"]["pluginStatus"] = json!("a.jar=1");
        assert_eq!(in_sync(&d, GAP)["plugins_in_sync"], false);
        assert_eq!(in_sync(&d, GAP)["in_sync"], false);
        let mut d = dashboard("bbb", &[]);
        d["standbyServerDetails"]["lastUpdateTime"] = json!("Nov 25, 2026 19:00:00");
        assert_eq!(in_sync(&d, GAP)["in_sync"], false);
        assert_eq!(in_sync(&d, Duration::from_secs(7200))["in_sync"], true);
    }

    #[test]
    fn tokens_and_db_properties_are_read() {
        assert_eq!(
            token_pair("lab:abc=d\n"),
            Some(("lab".to_owned(), "abc=d".to_owned()))
        );
        assert_eq!(token_pair("u=p"), Some(("u".to_owned(), "p".to_owned())));
        assert_eq!(token_pair("\n"), None);
        let r = parse_db_properties(
            "# x\ndb.url=jdbc:postgresql://10.231.0.12:5433/gocd?ssl=false\ndb.user=gocd\ndb.password=secret\n",
        );
        assert_eq!(r["host"], "10.231.0.12");
        assert_eq!(r["port"], 5433);
        assert_eq!(r["database"], "gocd");
        assert!(!r.to_string().contains("secret"), "{r}");
        assert_eq!(
            parse_db_properties("db.url=jdbc:postgresql://pg/x")["port"],
            5432
        );
        assert_eq!(parse_db_properties("")["host"], Value::Null);
    }
}
