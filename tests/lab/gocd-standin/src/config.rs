//! The settings a GoCD server reads at start-up, from the same files a real install uses:
//! `GOCD_SERVER_JVM_OPTIONS` in `/etc/default/go-server` (the `-D` system properties that pick
//! primary or standby mode) and `/etc/go/db.properties` (where the database is).

use std::path::Path;

/// The server's business-continuity role, fixed at start-up like GoCD's `go.server.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Primary,
    Standby,
}

/// What the stand-in takes from the JVM options.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub mode: Mode,
    /// The raw `go.server.mode` value (absent → GoCD's code default, `production`).
    pub mode_value: String,
    /// `bc.primary.url`: where a standby pulls from.
    pub primary_url: Option<String>,
    /// `bc.primary.status.check.interval` (ms): how often a standby polls the primary.
    /// GoCD's default is 60000; the stand-in's is 5000 so tests stay quick.
    pub primary_check_interval_ms: u64,
    /// `bc.file.status.check.interval` (ms): how often a primary re-reads its config files' md5s.
    /// GoCD's default is 60000; the stand-in's is 1000.
    pub file_check_interval_ms: u64,
}

pub const DEFAULT_PRIMARY_CHECK_INTERVAL_MS: u64 = 5000;
pub const DEFAULT_FILE_CHECK_INTERVAL_MS: u64 = 1000;

impl ServerSettings {
    /// Reads `GOCD_SERVER_JVM_OPTIONS` from a defaults file like `/etc/default/go-server`.
    /// A missing file means "no options" (primary mode), as for a plain install.
    pub fn load(defaults_file: &Path) -> Result<ServerSettings, String> {
        let text = match std::fs::read_to_string(defaults_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", defaults_file.display())),
        };
        let options = shell_assignment(&text, "GOCD_SERVER_JVM_OPTIONS").unwrap_or_default();
        ServerSettings::from_jvm_options(&options)
    }

    /// Reads the JVM options of a package install (GoCD ≥ 19.6): every
    /// `wrapper.java.additional.N=OPTION` line of the Java Service Wrapper's
    /// `wrapper-properties.conf`, in the order of N. A missing file means "no options".
    pub fn load_wrapper(path: &Path) -> Result<ServerSettings, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        ServerSettings::from_jvm_options(&wrapper_options(&text))
    }

    pub fn from_jvm_options(options: &str) -> Result<ServerSettings, String> {
        let props = system_properties(options);
        let prop = |name: &str| {
            props
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let interval = |name: &str, default: u64| -> Result<u64, String> {
            match prop(name) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!(
                        "-D{name}={v}: expected a positive number of milliseconds"
                    )),
                },
            }
        };
        let mode_value = prop("go.server.mode").unwrap_or_else(|| "production".to_string());
        // GoCD: standby iff the property equals "standby" (ignoring case); anything else runs as primary.
        let mode = if mode_value.eq_ignore_ascii_case("standby") {
            Mode::Standby
        } else {
            Mode::Primary
        };
        Ok(ServerSettings {
            mode,
            mode_value,
            primary_url: prop("bc.primary.url").filter(|u| !u.is_empty()),
            primary_check_interval_ms: interval(
                "bc.primary.status.check.interval",
                DEFAULT_PRIMARY_CHECK_INTERVAL_MS,
            )?,
            file_check_interval_ms: interval(
                "bc.file.status.check.interval",
                DEFAULT_FILE_CHECK_INTERVAL_MS,
            )?,
        })
    }
}

/// The value of the last `NAME=...` (or `export NAME=...`) line of a shell-style defaults file,
/// with one level of single or double quotes removed. Expansions are not performed.
pub fn shell_assignment(text: &str, name: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('=')) else {
            continue;
        };
        found = Some(unquote(rest));
    }
    found
}

fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if out.ends_with(char::is_whitespace) || out.is_empty() => break,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (None, c) if c.is_whitespace() && out.is_empty() => {}
            (None, c) if c.is_whitespace() => break, // unquoted value ends at a blank
            (_, c) => out.push(c),
        }
    }
    out
}

/// The options of `wrapper.java.additional.N=` lines, ordered by N, joined by blanks.
pub fn wrapper_options(text: &str) -> String {
    let mut options: Vec<(u64, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix("wrapper.java.additional.")?;
            let (n, v) = rest.split_once('=')?;
            Some((n.trim().parse().ok()?, v.trim().to_string()))
        })
        .collect();
    options.sort_by_key(|(n, _)| *n);
    options
        .into_iter()
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `-Dname=value` system properties in a JVM options string, in order.
pub fn system_properties(options: &str) -> Vec<(String, String)> {
    options
        .split_whitespace()
        .filter_map(|tok| tok.strip_prefix("-D"))
        .filter(|tok| !tok.is_empty())
        .map(|tok| match tok.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (tok.to_string(), String::new()),
        })
        .collect()
}

/// The database connection from `db.properties`.
#[derive(Debug, Clone, PartialEq)]
pub struct DbSettings {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
}

impl DbSettings {
    pub fn load(path: &Path) -> Result<DbSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        DbSettings::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses Java-properties text with `db.url=jdbc:postgresql://HOST[:PORT]/DB`, `db.user`, `db.password`.
    pub fn parse(text: &str) -> Result<DbSettings, String> {
        let mut url = None;
        let mut user = None;
        let mut password = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(split) = line.find(['=', ':']) else {
                continue;
            };
            let (key, value) = (line[..split].trim(), line[split + 1..].trim());
            match key {
                "db.url" => url = Some(value.to_string()),
                "db.user" => user = Some(value.to_string()),
                "db.password" => password = value.to_string(),
                _ => {}
            }
        }
        let url = url.ok_or("no db.url")?;
        let rest = url
            .strip_prefix("jdbc:postgresql://")
            .ok_or_else(|| format!("db.url {url:?} is not jdbc:postgresql://HOST:PORT/DB"))?;
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("db.url {url:?} names no database"))?;
        let database = path.split('?').next().unwrap_or("").to_string();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in db.url {url:?}"))?,
            ),
            None => (authority.to_string(), 5432),
        };
        if host.is_empty() || database.is_empty() {
            return Err(format!("db.url {url:?} lacks a host or a database"));
        }
        Ok(DbSettings {
            host,
            port,
            database,
            user: user.unwrap_or_else(|| "postgres".to_string()),
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_options() {
        let s = ServerSettings::from_jvm_options(
            "-Xmx1g -Dgo.server.mode=standby -Dbc.primary.url=http://10.231.0.14:8153 -Dbc.primary.status.check.interval=2000",
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Standby);
        assert_eq!(s.primary_url.as_deref(), Some("http://10.231.0.14:8153"));
        assert_eq!(s.primary_check_interval_ms, 2000);
        assert_eq!(s.file_check_interval_ms, DEFAULT_FILE_CHECK_INTERVAL_MS);
    }

    #[test]
    fn primary_is_the_default_and_anything_but_standby() {
        for opts in [
            "",
            "-Dgo.server.mode=primary",
            "-Dgo.server.mode=production",
            "-Dgo.server.mode",
        ] {
            assert_eq!(
                ServerSettings::from_jvm_options(opts).unwrap().mode,
                Mode::Primary,
                "{opts}"
            );
        }
        assert_eq!(
            ServerSettings::from_jvm_options("-Dgo.server.mode=STANDBY")
                .unwrap()
                .mode,
            Mode::Standby
        );
        // The last occurrence wins, as in the JVM.
        let s =
            ServerSettings::from_jvm_options("-Dgo.server.mode=standby -Dgo.server.mode=primary")
                .unwrap();
        assert_eq!(s.mode, Mode::Primary);
        assert!(
            ServerSettings::from_jvm_options("-Dbc.primary.status.check.interval=soon").is_err()
        );
    }

    #[test]
    fn defaults_file_assignments() {
        let text = "# comment\nGOCD_SERVER_JVM_OPTIONS=\"-Da=1\"\nOTHER=x\n\
                    export GOCD_SERVER_JVM_OPTIONS='-Dgo.server.mode=standby -Dbc.primary.url=http://h:1' # trailing\n";
        assert_eq!(
            shell_assignment(text, "GOCD_SERVER_JVM_OPTIONS").as_deref(),
            Some("-Dgo.server.mode=standby -Dbc.primary.url=http://h:1")
        );
        assert_eq!(
            shell_assignment("X=plain word", "X").as_deref(),
            Some("plain")
        );
        assert_eq!(shell_assignment("#X=1\n", "X"), None);
        assert_eq!(shell_assignment("XY=1\n", "X"), None);
    }

    #[test]
    fn db_properties() {
        let db = DbSettings::parse(
            "db.driver=org.postgresql.Driver\ndb.url=jdbc:postgresql://10.231.0.12:5432/gocd?ssl=false\ndb.user=postgres\ndb.password=\n",
        )
        .unwrap();
        assert_eq!(db.host, "10.231.0.12");
        assert_eq!(db.port, 5432);
        assert_eq!(db.database, "gocd");
        assert_eq!(db.user, "postgres");
        assert_eq!(
            DbSettings::parse("db.url = jdbc:postgresql://pg/x")
                .unwrap()
                .port,
            5432
        );
        assert!(DbSettings::parse("db.url=jdbc:h2:mem").is_err());
        assert!(DbSettings::parse("db.user=x").is_err());
    }

    #[test]
    fn wrapper_properties() {
        let text = "# GoCD\nwrapper.java.additional.101=-Dbc.primary.url=http://go1:8153\n\
                    wrapper.java.additional.100=-Dgo.server.mode=standby\n\
                    #wrapper.java.additional.102=-Dgo.server.mode=primary\n\
                    wrapper.java.additional.103=-Dgo.server.mode=primary\n";
        assert_eq!(
            wrapper_options(text),
            "-Dgo.server.mode=standby -Dbc.primary.url=http://go1:8153 -Dgo.server.mode=primary"
        );
        let s = ServerSettings::from_jvm_options(&wrapper_options(text)).unwrap();
        assert_eq!(s.mode, Mode::Primary);
        assert_eq!(
            ServerSettings::from_jvm_options(&wrapper_options(
                "wrapper.java.additional.100=-Dgo.server.mode=standby\n"
            ))
            .unwrap()
            .mode,
            Mode::Standby
        );
    }
}
