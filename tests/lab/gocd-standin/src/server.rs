//! `gocd-standin serve`: the GoCD server stand-in.
//!
//! * Both modes: `GET /go/api/v1/health` → `200 {"health":"OK"}` once ready, `503` while starting.
//! * Primary: checks its database is writable (a read-only, in-recovery database makes it exit
//!   non-zero, as GoCD's migrations would), then inserts one `heartbeat` row a second, retrying
//!   while the database is away; serves the business-continuity API a standby pulls from.
//! * Standby: polls the primary (`bc.primary.url`) every `bc.primary.status.check.interval` ms,
//!   copies changed config files into its own config dir and changed external plugins into its
//!   plugins dir by md5 (atomic replace; plugins the primary no longer has are removed), and
//!   serves `/go/add-on/business-continuity/admin/dashboard.json`. It never touches the database.
//!
//! Without the business-continuity add-on (`--bc-addon off`, as on a GoCD install that never had
//! it): `go.server.mode` means nothing, so the server always runs as a primary (a "standby" started
//! on an in-recovery database refuses to start like any primary), and every
//! `/go/add-on/business-continuity/*` path answers 404, as GoCD does for an add-on it lacks.
//!
//! Differences from GoCD: authentication only with `--bc-auth on` (GoCD always wants Basic auth
//! from the BC token file), WAL fields say "Not Available" (as GoCD does on PostgreSQL ≥ 10),
//! and the standby reports the md5 of each file as it is on its disk.

use crate::config::{DbSettings, Mode, ServerSettings};
use crate::db::Db;
use crate::http::{self, Request, Response};
use crate::json::Value;
use crate::md5;
use crate::plugins;
use crate::time::{gocd_date, now_ms};
use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The config files a standby keeps in sync: (GoCD's ConfigFileType, file name in the config dir, API path).
pub const CONFIG_FILES: [(&str, &str, &str); 4] = [
    ("CRUISE_CONFIG_XML", "cruise-config.xml", "cruise_config"),
    ("AES_CIPHER", "cipher.aes", "cipher.aes"),
    ("JETTY_XML", "jetty.xml", "jetty_config"),
    (
        "USER_FEATURE_TOGGLE",
        "go.feature.toggles",
        "user_feature_toggle",
    ),
];

const BC_API: &str = "/go/add-on/business-continuity/api/";
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Options {
    pub defaults_file: PathBuf,
    pub config_dir: PathBuf,
    pub bind: String,
    pub port: u16,
    pub name: String,
    pub pidfile: Option<PathBuf>,
    pub psql: PathBuf,
    /// How long a primary waits for an unreachable database at start-up before giving up.
    pub db_wait: Duration,
    /// Whether the business-continuity add-on is installed (standby mode, BC API, dashboard).
    pub bc_addon: bool,
    /// Whether the add-on's API and dashboard want the token (Basic auth), as GoCD ≥ 20.6 does.
    pub bc_auth: bool,
    /// A package install: JVM options from this `wrapper-properties.conf`, not `defaults_file`.
    pub wrapper_properties: Option<PathBuf>,
    /// The API access tokens GoCD's API accepts (maintenance mode).
    pub api_token_file: Option<PathBuf>,
    /// The external plugins directory.
    pub plugins_dir: PathBuf,
}

/// What a GoCD package install uses when no flag says otherwise.
impl Default for Options {
    fn default() -> Self {
        Options {
            defaults_file: PathBuf::from("/etc/default/go-server"),
            config_dir: PathBuf::from("/etc/go"),
            bind: "0.0.0.0".to_string(),
            port: 8153,
            name: "go".to_string(),
            pidfile: None,
            psql: PathBuf::from("psql"),
            db_wait: Duration::from_secs(120),
            bc_addon: true,
            bc_auth: false,
            wrapper_properties: None,
            api_token_file: None,
            plugins_dir: PathBuf::from("/var/lib/go-server/plugins/external"),
        }
    }
}

/// Where a standby sends whatever it does not serve, as GoCD's add-on does.
const STANDBY_DASHBOARD: &str = "/go/add-on/business-continuity/admin/dashboard";
const TOKEN_FILE: &str = "business-continuity-token";

pub fn log(msg: &str) {
    eprintln!(
        "{} gocd-standin[{}]: {msg}",
        crate::time::iso(now_ms()),
        std::process::id()
    );
}

struct State {
    /// The business-continuity add-on is installed.
    bc_addon: bool,
    bc_auth: bool,
    api_token_file: Option<PathBuf>,
    /// GoCD's maintenance mode (set through its API; lost at restart).
    maintenance: AtomicBool,
    settings: ServerSettings,
    config_dir: PathBuf,
    plugins_dir: PathBuf,
    ready: AtomicBool,
    /// Primary: md5 per file type (empty when the file is missing) and when they were last read.
    file_status: Mutex<(Vec<(&'static str, String)>, u64)>,
    /// Standby: the last five sync errors and when the last successful sync ended.
    sync: Mutex<(VecDeque<String>, u64)>,
}

impl State {
    fn file_md5(&self, file: &str) -> String {
        std::fs::read(self.config_dir.join(file))
            .map(|b| md5::hex(&b))
            .unwrap_or_default()
    }

    fn scan_files(&self) {
        let status: Vec<_> = CONFIG_FILES
            .iter()
            .map(|(key, file, _)| (*key, self.file_md5(file)))
            .collect();
        if let Ok(mut guard) = self.file_status.lock() {
            *guard = (status, now_ms());
        }
    }
}

pub fn run(opts: Options) -> i32 {
    if opts.name.is_empty()
        || !opts
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        log(&format!(
            "--name {:?}: use letters, digits, - and _ only",
            opts.name
        ));
        return 2;
    }
    let loaded = match &opts.wrapper_properties {
        Some(w) => ServerSettings::load_wrapper(w),
        None => ServerSettings::load(&opts.defaults_file),
    };
    let mut settings = match loaded {
        Ok(s) => s,
        Err(e) => {
            log(&format!("FATAL: {e}"));
            return 1;
        }
    };
    if !opts.bc_addon && settings.mode == Mode::Standby {
        log(&format!(
            "go.server.mode={} ignored: the business-continuity add-on is not installed, so this \
             server runs as a primary",
            settings.mode_value
        ));
        settings.mode = Mode::Primary;
    }
    stop_on_signals(opts.pidfile.clone());

    let listener = match TcpListener::bind((opts.bind.as_str(), opts.port)) {
        Ok(l) => l,
        Err(e) => {
            log(&format!(
                "FATAL: cannot listen on {}:{}: {e}",
                opts.bind, opts.port
            ));
            return 1;
        }
    };
    if let Some(pidfile) = &opts.pidfile {
        if let Err(e) = std::fs::write(pidfile, format!("{}\n", std::process::id())) {
            log(&format!("cannot write pid file {}: {e}", pidfile.display()));
        }
    }
    log(&format!(
        "{} listening on {}:{} in {} mode (go.server.mode={}, {}, config dir {})",
        opts.name,
        opts.bind,
        opts.port,
        if settings.mode == Mode::Standby {
            "standby"
        } else {
            "primary"
        },
        settings.mode_value,
        opts.wrapper_properties.as_ref().map_or_else(
            || format!("defaults {}", opts.defaults_file.display()),
            |w| format!("wrapper properties {} (package install)", w.display())
        ),
        opts.config_dir.display()
    ));

    let state = Arc::new(State {
        bc_addon: opts.bc_addon,
        bc_auth: opts.bc_auth,
        api_token_file: opts.api_token_file.clone(),
        maintenance: AtomicBool::new(false),
        settings: settings.clone(),
        config_dir: opts.config_dir.clone(),
        plugins_dir: opts.plugins_dir.clone(),
        ready: AtomicBool::new(false),
        file_status: Mutex::new((Vec::new(), 0)),
        sync: Mutex::new((VecDeque::new(), 0)),
    });
    {
        let state = Arc::clone(&state);
        let name = opts.name.clone();
        std::thread::spawn(move || http::serve(listener, move |req| route(&state, &name, req)));
    }

    match settings.mode {
        Mode::Primary => run_primary(&state, &opts),
        Mode::Standby => run_standby(&state),
    }
}

/// SIGTERM/SIGINT/SIGHUP end the process at once (after removing the pid file).
fn stop_on_signals(pidfile: Option<PathBuf>) {
    // Blocked before any other thread exists, so every later thread inherits the mask and only
    // the waiter below takes these signals. (psql children get a clean mask: see db.rs.)
    let set = crate::signals::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP]);
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: valid set and out-pointer.
        unsafe { libc::sigwait(&set, &mut sig) };
        log(&format!("stopping on signal {sig}"));
        if let Some(p) = pidfile {
            let _ = std::fs::remove_file(p);
        }
        std::process::exit(0);
    });
}

fn run_primary(state: &Arc<State>, opts: &Options) -> i32 {
    let db_settings = match DbSettings::load(&opts.config_dir.join("db.properties")) {
        Ok(s) => s,
        Err(e) => {
            log(&format!("FATAL: {e}"));
            return 1;
        }
    };
    let db = Db::new(
        db_settings,
        opts.psql.clone(),
        &format!("gocd-{}", opts.name),
    );
    log(&format!("primary: checking database {}", db.describe()));

    // Start-up, as GoCD's migrations would: the database must be reachable and writable.
    let started = Instant::now();
    let mut last_error = String::new();
    loop {
        match db.query("select pg_is_in_recovery()") {
            Ok(r) if r == "f" => break,
            Ok(r) if r == "t" => {
                log(&format!(
                    "FATAL: database {} is in recovery (a read-only standby); a primary GoCD server cannot \
                     run its migrations there. Refusing to start. {}",
                    db.describe(),
                    if opts.bc_addon {
                        "Promote the database or start this server with -Dgo.server.mode=standby."
                    } else {
                        "Promote the database first (without the business-continuity add-on there is no \
                         standby mode)."
                    }
                ));
                return 1;
            }
            Ok(r) => {
                log(&format!(
                    "FATAL: unexpected answer to pg_is_in_recovery(): {r:?}"
                ));
                return 1;
            }
            Err(e) => {
                if e != last_error {
                    log(&format!("database not reachable yet, retrying: {e}"));
                    last_error = e;
                }
                if started.elapsed() > opts.db_wait {
                    log(&format!(
                        "FATAL: database {} unreachable for {} s",
                        db.describe(),
                        opts.db_wait.as_secs()
                    ));
                    return 1;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    let create =
        "create table if not exists heartbeat (id bigserial primary key, server text not null, \
                  at timestamptz not null default now())";
    if let Err(e) = db.query(create) {
        log(&format!("FATAL: cannot prepare the heartbeat table: {e}"));
        return 1;
    }

    state.scan_files();
    {
        let state = Arc::clone(state);
        let interval = Duration::from_millis(state.settings.file_check_interval_ms);
        std::thread::spawn(move || loop {
            std::thread::sleep(interval);
            state.scan_files();
        });
    }
    state.ready.store(true, Ordering::SeqCst);
    log("primary: ready; writing one heartbeat a second");

    let insert = format!("insert into heartbeat (server) values ('{}')", opts.name);
    let mut next = Instant::now();
    let mut failing_since: Option<Instant> = None;
    let mut last_failure_log = Instant::now();
    let mut written: u64 = 0;
    loop {
        match db.query(&insert) {
            Ok(_) => {
                written += 1;
                if let Some(since) = failing_since.take() {
                    log(&format!(
                        "heartbeat: database back after {:.1} s",
                        since.elapsed().as_secs_f64()
                    ));
                }
                if written % 300 == 1 {
                    log(&format!("heartbeat: {written} rows written"));
                }
            }
            Err(e) => {
                // Log the first failure of an outage, then at most every 30 s.
                if failing_since.is_none() || last_failure_log.elapsed() >= Duration::from_secs(30)
                {
                    log(&format!("heartbeat failed (will retry): {e}"));
                    last_failure_log = Instant::now();
                }
                failing_since.get_or_insert_with(Instant::now);
            }
        }
        next += Duration::from_secs(1);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

fn run_standby(state: &Arc<State>) -> i32 {
    let Some(primary) = state.settings.primary_url.clone() else {
        log("FATAL: standby mode needs -Dbc.primary.url=http://PRIMARY:8153 in GOCD_SERVER_JVM_OPTIONS");
        return 1;
    };
    let primary = primary.trim_end_matches('/').to_string();
    state.ready.store(true, Ordering::SeqCst);
    log(&format!(
        "standby: ready; syncing config files from {primary} every {} ms",
        state.settings.primary_check_interval_ms
    ));
    let interval = Duration::from_millis(state.settings.primary_check_interval_ms);
    let mut reachable: Option<bool> = None;
    loop {
        let able = able_to_connect(state, &primary);
        if reachable != Some(able) {
            log(&format!(
                "standby: primary {primary} {}",
                if able { "reachable" } else { "NOT reachable" }
            ));
            reachable = Some(able);
        }
        if able {
            match sync_files(state, &primary).and_then(|()| sync_plugins(state, &primary)) {
                Ok(()) => {
                    if let Ok(mut s) = state.sync.lock() {
                        s.0.clear();
                        s.1 = now_ms();
                    }
                }
                Err(e) => {
                    log(&format!("standby: sync failed: {e}"));
                    if let Ok(mut s) = state.sync.lock() {
                        if s.0.len() == 5 {
                            s.0.pop_front();
                        }
                        s.0.push_back(format!(
                            "[{}] Error while syncing files. Reason, {e}",
                            gocd_date(now_ms())
                        ));
                    }
                }
            }
        }
        std::thread::sleep(interval);
    }
}

fn able_to_connect(state: &State, primary: &str) -> bool {
    matches!(fetch(state, primary, "health-check"), Ok(_))
}

/// `Basic …` for this server's token file (`user=password` or `user:password`).
fn own_token(state: &State) -> Option<String> {
    let text = std::fs::read_to_string(state.config_dir.join(TOKEN_FILE)).ok()?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let at = line.find(['=', ':'])?;
    Some(format!(
        "Basic {}",
        base64_encode(format!("{}:{}", &line[..at], &line[at + 1..]).as_bytes())
    ))
}

/// GET a BC API resource from the primary (with this server's token); non-200 is an error.
fn fetch(state: &State, primary: &str, what: &str) -> Result<Vec<u8>, String> {
    let url = format!("{primary}{BC_API}{what}");
    match http::get_with(&url, HTTP_TIMEOUT, own_token(state).as_deref()) {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(format!("{url}: HTTP {}", r.status)),
        Err(e) => Err(e.to_string()),
    }
}

/// The primary's `config_files_status`, parsed.
fn primary_status(state: &State, primary: &str) -> Result<Value, String> {
    let body = fetch(state, primary, "config_files_status")?;
    crate::json::parse(&String::from_utf8_lossy(&body))
        .map_err(|e| format!("config_files_status: {e}"))
}

fn sync_files(state: &State, primary: &str) -> Result<(), String> {
    let status = primary_status(state, primary)?;
    let Some(map) = status.get("fileDetailsMap") else {
        return Err("config_files_status has no fileDetailsMap".to_string());
    };
    for (key, file, api) in CONFIG_FILES {
        let Some(remote) = map
            .get(key)
            .and_then(|d| d.get("md5"))
            .and_then(Value::as_str)
        else {
            continue; // the primary does not have this file
        };
        let local = state.file_md5(file);
        if local == remote {
            continue;
        }
        let body = fetch(state, primary, api)?;
        let got = md5::hex(&body);
        if got != remote {
            return Err(format!(
                "{file} changed on the primary while downloading (md5 {got}, expected {remote})"
            ));
        }
        replace_file(&state.config_dir.join(file), &body)
            .map_err(|e| format!("writing {file}: {e}"))?;
        log(&format!(
            "standby: synced {file} (md5 {} -> {remote})",
            if local.is_empty() { "none" } else { &local }
        ));
    }
    Ok(())
}

/// Copies the primary's external plugins that differ from ours, and removes the ones it no
/// longer has, as the add-on did.
fn sync_plugins(state: &State, primary: &str) -> Result<(), String> {
    let body = fetch(state, primary, "plugin_files_status")?;
    let theirs = plugins::parse_status(
        &crate::json::parse(&String::from_utf8_lossy(&body))
            .map_err(|e| format!("plugin_files_status: {e}"))?,
    );
    let ours = plugins::list(&state.plugins_dir);
    for (name, md5) in &theirs {
        if !plugins::safe_name(name) || ours.contains(&(name.clone(), md5.clone())) {
            continue;
        }
        let body = fetch(
            state,
            primary,
            &format!("plugin?folderName=external&pluginName={name}"),
        )?;
        if md5::hex(&body) != *md5 {
            return Err(format!(
                "plugin {name} changed on the primary while downloading"
            ));
        }
        std::fs::create_dir_all(&state.plugins_dir)
            .and_then(|()| replace_file(&state.plugins_dir.join(name), &body))
            .map_err(|e| format!("writing plugin {name}: {e}"))?;
        log(&format!("standby: synced plugin {name} (md5 {md5})"));
    }
    for (name, _) in ours
        .iter()
        .filter(|(n, _)| !theirs.iter().any(|(t, _)| t == n))
    {
        std::fs::remove_file(state.plugins_dir.join(name))
            .map_err(|e| format!("removing plugin {name}: {e}"))?;
        log(&format!(
            "standby: removed plugin {name} (not on the primary)"
        ));
    }
    Ok(())
}

/// Writes `path` atomically (temporary file in the same directory, fsync, rename), keeping its mode.
fn replace_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.standin-{}", std::process::id()));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn route(state: &State, name: &str, req: &Request) -> Response {
    let ready = state.ready.load(Ordering::SeqCst);
    let mode = state.settings.mode;
    match req.path.as_str() {
        "/go/api/v1/health" => {
            if ready {
                Response::json(200, r#"{"health":"OK"}"#.to_string())
            } else {
                Response::json(503, r#"{"health":"Server is starting"}"#.to_string())
            }
        }
        "/lab/status" => Response::json(
            200,
            Value::object([
                ("name", Value::str(name)),
                (
                    "mode",
                    Value::str(if mode == Mode::Standby {
                        "standby"
                    } else {
                        "primary"
                    }),
                ),
                ("ready", Value::Bool(ready)),
                ("bc_addon", Value::Bool(state.bc_addon)),
                (
                    "maintenance",
                    Value::Bool(state.maintenance.load(Ordering::SeqCst)),
                ),
                ("pid", Value::from(u64::from(std::process::id()))),
            ])
            .to_json(),
        ),
        path if !state.bc_addon && path.starts_with("/go/add-on/business-continuity/") => {
            Response::text(404, "not found\n")
        }
        path if path.starts_with("/go/add-on/business-continuity/")
            && state.bc_auth
            && req
                .authorization
                .as_deref()
                .is_none_or(|a| own_token(state).as_deref() != Some(a)) =>
        {
            Response::text(401, "Unauthorized: send the business-continuity token\n")
        }
        "/go/add-on/business-continuity/admin/dashboard.json" => {
            if mode == Mode::Standby {
                Response::json(200, dashboard(state, req).to_json())
            } else {
                Response::text(500, "This information only available for standby server\n")
            }
        }
        path if path.starts_with("/go/add-on/business-continuity/") => {
            match path.strip_prefix(BC_API) {
                Some(api) if mode == Mode::Primary && ready => primary_api(state, api, &req.query),
                Some(_) if mode == Mode::Primary => Response::text(503, "Server is starting\n"),
                _ => Response::text(404, "not found\n"),
            }
        }
        // GoCD's standby serves nothing else: agents and browsers are sent to the dashboard.
        // Its health API still answers 200, so health alone cannot tell it from a primary.
        _ if mode == Mode::Standby => Response::redirect(STANDBY_DASHBOARD),
        _ if !ready => Response::text(503, "Server is starting\n"),
        path if path.starts_with("/go/api/admin/maintenance_mode") => maintenance_api(state, req),
        // An agent that is not registered (the stand-in has no agents): refused, but served.
        "/go/remoting/api/agent/ping" if req.method == "POST" => {
            Response::json(403, r#"{"message":"Unknown agent"}"#.to_string())
        }
        _ => Response::text(404, "not found\n"),
    }
}

/// GoCD's maintenance-mode API: `POST …/enable|disable` (204), `GET …/info`, with a bearer
/// token of the API token file and GoCD's versioned `Accept`.
fn maintenance_api(state: &State, req: &Request) -> Response {
    let tokens = state
        .api_token_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let given = req
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim);
    if !given.is_some_and(|g| !g.is_empty() && tokens.lines().any(|t| t.trim() == g)) {
        return Response::json(
            401,
            r#"{"message":"You are not authenticated!"}"#.to_string(),
        );
    }
    if !req
        .accept
        .as_deref()
        .is_some_and(|a| a.contains("application/vnd.go.cd"))
    {
        return Response::json(
            404,
            r#"{"message":"The url you are trying to reach appears to be incorrect."}"#.to_string(),
        );
    }
    let verb = req
        .path
        .trim_start_matches("/go/api/admin/maintenance_mode");
    match (req.method.as_str(), verb) {
        ("POST", "/enable" | "/disable") => {
            let on = verb == "/enable";
            let was = state.maintenance.swap(on, Ordering::SeqCst);
            if was != on {
                log(&format!(
                    "maintenance mode {}",
                    if on { "enabled" } else { "disabled" }
                ));
            }
            Response::new(204, "application/json", "")
        }
        ("GET", "/info") => Response::json(
            200,
            Value::object([(
                "is_maintenance_mode",
                Value::Bool(state.maintenance.load(Ordering::SeqCst)),
            )])
            .to_json(),
        ),
        _ => Response::text(404, "not found\n"),
    }
}

fn primary_api(state: &State, api: &str, query: &str) -> Response {
    match api {
        "health-check" => Response::text(200, "OK!"),
        "latest_database_wal_location" => Response::text(200, "Not Available"),
        "config_files_status" => {
            let (status, updated) = state
                .file_status
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default();
            let details = status
                .into_iter()
                .filter(|(_, md5)| !md5.is_empty())
                .map(|(key, md5)| (key, Value::object([("md5", Value::str(md5))])));
            Response::json(
                200,
                Value::object([
                    (
                        "configFilesUpdateInterval",
                        Value::from(state.settings.file_check_interval_ms),
                    ),
                    ("lastConfigFilesUpdateTime", Value::from(updated)),
                    ("fileDetailsMap", Value::object(details)),
                ])
                .to_json(),
            )
        }
        "plugin_files_status" => Response::json(200, plugins::status(&state.plugins_dir).to_json()),
        "plugin" => match plugins::query_value(query, "pluginName") {
            Some(name)
                if plugins::safe_name(name)
                    && plugins::query_value(query, "folderName") == Some("external") =>
            {
                match std::fs::read(state.plugins_dir.join(name)) {
                    Ok(body) => Response::new(200, "application/java-archive", body),
                    Err(_) => Response::text(404, "no such plugin\n"),
                }
            }
            _ => Response::text(400, "folderName=external&pluginName=NAME\n"),
        },
        api => match CONFIG_FILES.iter().find(|(_, _, path)| *path == api) {
            Some((_, file, _)) => match std::fs::read(state.config_dir.join(file)) {
                Ok(body) => {
                    let content_type = if file.ends_with(".xml") {
                        "text/xml"
                    } else {
                        "text/plain"
                    };
                    Response::new(200, content_type, body)
                }
                Err(e) => Response::text(500, format!("cannot read {file}: {e}\n")),
            },
            None => Response::text(404, "not found\n"),
        },
    }
}

/// GoCD's standby dashboard data (DashBoardController.showStatusJSON).
fn dashboard(state: &State, req: &Request) -> Value {
    let user = req
        .authorization
        .as_deref()
        .and_then(basic_user)
        .unwrap_or_default();
    let primary = state.settings.primary_url.clone().unwrap_or_default();
    let primary = primary.trim_end_matches('/');
    if !able_to_connect(state, primary) {
        return Value::object([
            ("userName", Value::str(user)),
            ("setupStatus", Value::str("incomplete")),
            (
                "syncErrors",
                Value::Array(vec![Value::str(
                    "Unable to connect to primary, please check that the business-continuity-token file is \
                     identical on primary and secondary, and that this server can connect to the primary server.",
                )]),
            ),
        ]);
    }
    let mut primary_details = vec![
        ("url".to_string(), Value::str(primary)),
        (
            "latestDatabaseWalLocation".to_string(),
            Value::str("Not Available"),
        ),
    ];
    match primary_status(state, primary) {
        Ok(status) => {
            let number = |k: &str| status.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            primary_details.push((
                "configFilesUpdateInterval".into(),
                Value::Number(number("configFilesUpdateInterval")),
            ));
            primary_details.push((
                "lastConfigUpdateTime".into(),
                Value::str(gocd_date(number("lastConfigFilesUpdateTime") as u64)),
            ));
            if let Some(Value::Object(files)) = status.get("fileDetailsMap") {
                primary_details.extend(files.iter().cloned());
            }
            let theirs = fetch(state, primary, "plugin_files_status")
                .ok()
                .and_then(|b| crate::json::parse(&String::from_utf8_lossy(&b)).ok())
                .map(|doc| plugins::parse_status(&doc))
                .unwrap_or_default();
            primary_details.push((
                "pluginStatus".into(),
                Value::str(plugins::plugin_status(&theirs)),
            ));
        }
        Err(e) => primary_details.push((
            "error".into(),
            Value::str(format!(
                "Could not fetch latest file status from master, Reason, {e}"
            )),
        )),
    }
    let (errors, last_update) = state.sync.lock().map(|g| g.clone()).unwrap_or_default();
    let mut standby_details = vec![
        (
            "primaryStatusCheckInterval".to_string(),
            Value::from(state.settings.primary_check_interval_ms),
        ),
        (
            "lastUpdateTime".to_string(),
            Value::str(gocd_date(last_update)),
        ),
        (
            "latestReceivedDatabaseWalLocation".to_string(),
            Value::str("Not Available"),
        ),
    ];
    for (key, file, _) in CONFIG_FILES {
        standby_details.push((key.to_string(), Value::str(state.file_md5(file))));
    }
    standby_details.push((
        "pluginStatus".into(),
        Value::str(plugins::plugin_status(&plugins::list(&state.plugins_dir))),
    ));
    Value::object([
        ("userName", Value::str(user)),
        ("setupStatus", Value::str("success")),
        (
            "syncErrors",
            Value::Array(errors.into_iter().map(Value::String).collect()),
        ),
        ("primaryServerDetails", Value::Object(primary_details)),
        ("standbyServerDetails", Value::Object(standby_details)),
    ])
}

/// The user name of a `Basic` Authorization header.
fn basic_user(header: &str) -> Option<String> {
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = base64_decode(encoded)?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or("").to_string())
}

fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_user() {
        assert_eq!(basic_user("Basic Zm9vOmJhcg==").as_deref(), Some("foo"));
        assert_eq!(basic_user("Basic YWRtaW46").as_deref(), Some("admin"));
        assert_eq!(basic_user("Bearer x"), None);
        assert_eq!(basic_user("Basic !!!!"), None);
        assert_eq!(base64_encode(b"foo:bar"), "Zm9vOmJhcg==");
        assert_eq!(base64_encode(b"admin:"), "YWRtaW46");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn atomic_replace_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("standin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cipher.aes");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace_file(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
