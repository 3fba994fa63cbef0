//! Talking to PostgreSQL through `psql` subprocesses (one per statement), so the stand-in needs
//! no database driver. Each call connects afresh: a database that went away is retried naturally.

use crate::config::DbSettings;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Db {
    pub settings: DbSettings,
    psql: PathBuf,
    application_name: String,
}

impl Db {
    pub fn new(settings: DbSettings, psql: PathBuf, application_name: &str) -> Db {
        Db {
            settings,
            psql,
            application_name: application_name.to_string(),
        }
    }

    /// `host:port/db`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{}",
            self.settings.host, self.settings.port, self.settings.database
        )
    }

    fn conninfo(&self) -> String {
        let s = &self.settings;
        [
            ("host", s.host.as_str()),
            ("port", &s.port.to_string()),
            ("dbname", &s.database),
            ("user", &s.user),
            ("connect_timeout", "3"),
            ("application_name", &self.application_name),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", conninfo_quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// Runs one SQL statement; returns psql's unaligned, tuples-only output, trimmed.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.psql);
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo())
            .args(["-c", sql])
            .env("PGOPTIONS", "-c statement_timeout=5000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.settings.password.is_empty() {
            cmd.env_remove("PGPASSWORD");
        } else {
            cmd.env("PGPASSWORD", &self.settings.password);
        }
        let mut child = crate::signals::clean_mask(&mut cmd)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.psql.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("psql on {} took longer than 10 s", self.describe()));
                }
                Err(e) => return Err(format!("waiting for psql: {e}")),
            }
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        if status.success() {
            Ok(out.trim().to_string())
        } else {
            let err = err.trim().replace('\n', " | ");
            Err(format!("{} ({status}): {err}", self.describe()))
        }
    }
}

/// Quotes a libpq connection-string value.
fn conninfo_quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::conninfo_quote;

    #[test]
    fn quoting() {
        assert_eq!(conninfo_quote("10.231.0.12"), "10.231.0.12");
        assert_eq!(conninfo_quote(""), "''");
        assert_eq!(conninfo_quote("a b'c\\"), r"'a b\'c\\'");
    }
}
