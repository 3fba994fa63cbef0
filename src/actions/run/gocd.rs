//! `gocd.set_mode` and `gocd.sync_status`: GoCD's business-continuity switch and gauge.
//!
//! The mode is edited in the defaults file a real install reads (`GOCD_SERVER_JVM_OPTIONS` in
//! `/etc/default/go-server`; see `jvm_options.rs`) and takes effect at the server's next start.
//! The sync state comes from the standby's `dashboard.json`: in sync when there are no sync
//! errors and every config file's md5 on the primary equals the standby's (the oracle of
//! GoCD's own business-continuity tests).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::file_read::{read, write_atomic};
use super::http::fetch;
use super::{Ctx, jvm_options};
use crate::actions::error::ActionError;
use crate::actions::{GocdMode, GocdSetModeParams, GocdSyncStatusParams};

const DEFAULT_DEFAULTS_FILE: &str = "/etc/default/go-server";
const DASHBOARD: &str = "/go/add-on/business-continuity/admin/dashboard.json";
/// The config files GoCD's standby keeps in sync, by the dashboard's keys.
const FILE_KEYS: [&str; 4] = [
    "CRUISE_CONFIG_XML",
    "AES_CIPHER",
    "JETTY_XML",
    "USER_FEATURE_TOGGLE",
];

pub(super) async fn set_mode(ctx: &Ctx<'_>, p: GocdSetModeParams) -> Result<Value, ActionError> {
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
    let path = p.defaults_file.as_deref().unwrap_or(DEFAULT_DEFAULTS_FILE);
    super::file::absolute(ctx, "defaults_file", path)?;
    let host = ctx.host().await?;
    // A missing file is an error, not a fresh one: a wrong path would otherwise "succeed"
    // while the server goes on reading the real file.
    let old = read(&host, path).await?;
    let old = String::from_utf8(old).map_err(|_| host.fail(format!("{path} is not UTF-8 text")))?;
    let new = jvm_options::set_mode(&old, mode, url);
    if new == old {
        return Ok(json!({ "changed": false, "mode": mode }));
    }
    write_atomic(&host, path, new.into_bytes(), None, None).await?;
    Ok(json!({ "changed": true, "mode": mode }))
}

pub(super) async fn sync_status(
    ctx: &Ctx<'_>,
    p: GocdSyncStatusParams,
) -> Result<Value, ActionError> {
    let host = ctx.host().await?;
    let url = format!("{}{DASHBOARD}", p.url.trim_end_matches('/'));
    let auth = match (&p.username, &p.password) {
        (Some(u), Some(pw)) => Some((u.as_str(), pw.as_str())),
        (None, None) => None,
        _ => return Err(ctx.invalid("give both `username` and `password`, or neither")),
    };
    let limit = ctx
        .remaining("reading the dashboard")?
        .min(Duration::from_secs(30));
    let got = fetch(&host, &url, limit, auth).await?;
    if got.status != 200 {
        let body = String::from_utf8_lossy(&got.body);
        let body: String = body.chars().take(300).collect();
        return Err(host.fail(format!("GET {url} answered {}: {body}", got.status)));
    }
    let dashboard: Value = serde_json::from_slice(&got.body)
        .map_err(|e| host.fail(format!("{url} did not return JSON: {e}")))?;
    Ok(in_sync(&dashboard))
}

/// The result object for a dashboard.json document.
fn in_sync(d: &Value) -> Value {
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
    let setup_ok = d["setupStatus"].as_str() == Some("success");
    let primary_error = primary["error"].as_str();
    let in_sync = setup_ok && sync_errors.is_empty() && primary_error.is_none() && any && all_equal;
    json!({
        "in_sync": in_sync,
        "setup_status": d["setupStatus"],
        "sync_errors": sync_errors,
        "primary_error": primary_error,
        "files": files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "pluginStatus": ""
            },
            "standbyServerDetails": {
                "CRUISE_CONFIG_XML": "aaa",
                "AES_CIPHER": standby_cipher,
                "JETTY_XML": "ccc",
                "USER_FEATURE_TOGGLE": "ddd",
                "pluginStatus": ""
            }
        })
    }

    #[test]
    fn in_sync_when_every_md5_matches_and_there_are_no_errors() {
        let r = in_sync(&dashboard("bbb", &[]));
        assert_eq!(r["in_sync"], true);
        assert_eq!(
            r["files"]["AES_CIPHER"],
            json!({ "primary": "bbb", "standby": "bbb" })
        );
    }

    #[test]
    fn out_of_sync_on_a_different_md5_or_an_error() {
        let r = in_sync(&dashboard("old", &[]));
        assert_eq!(r["in_sync"], false);
        assert_eq!(r["files"]["AES_CIPHER"]["standby"], "old");
        assert_eq!(
            in_sync(&dashboard("bbb", &["Unable to connect"]))["in_sync"],
            false
        );
    }

    #[test]
    fn an_incomplete_setup_is_never_in_sync() {
        let d = json!({ "userName": "", "setupStatus": "incomplete", "syncErrors": ["Unable to connect to primary"] });
        let r = in_sync(&d);
        assert_eq!(r["in_sync"], false);
        assert_eq!(r["sync_errors"].as_array().map(Vec::len), Some(1));
        let mut d = dashboard("bbb", &[]);
        d["primaryServerDetails"]["error"] =
            json!("Could not fetch latest file status from master");
        assert_eq!(in_sync(&d)["in_sync"], false);
    }
}
