//! External plugins, as GoCD's business-continuity add-on syncs them: the primary lists the files
//! of its external plugins directory with their md5 (`plugin_files_status`) and serves each one
//! (`plugin?folderName=external&pluginName=NAME`); a standby copies what differs and removes
//! what the primary no longer has; the standby's dashboard shows both sides as `pluginStatus`
//! (`"a.jar=md5, b.jar=md5"`). Bundled plugins come with the install and are never synced.

use crate::json::Value;
use crate::md5;
use std::path::Path;

/// (file name, md5) of every regular file directly in `dir`, sorted; none when it is missing.
pub fn list(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    // Our own half-written downloads are not plugins.
                    if name.starts_with('.') {
                        return None;
                    }
                    let bytes = std::fs::read(e.path()).ok()?;
                    Some((name, md5::hex(&bytes)))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `plugin_files_status`: `{"bundled":[],"external":[{"name":…,"md5":…},…]}`.
pub fn status(dir: &Path) -> Value {
    let external = list(dir)
        .into_iter()
        .map(|(name, md5)| Value::object([("name", Value::str(name)), ("md5", Value::str(md5))]))
        .collect();
    Value::object([
        ("bundled", Value::Array(Vec::new())),
        ("external", Value::Array(external)),
    ])
}

/// The external plugins of a `plugin_files_status` document.
pub fn parse_status(doc: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = match doc.get("external") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?;
                let md5 = p.get("md5")?.as_str()?;
                Some((name.to_string(), md5.to_string()))
            })
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

/// The dashboard's `pluginStatus`: `"a.jar=md5, b.jar=md5"`.
pub fn plugin_status(plugins: &[(String, String)]) -> String {
    plugins
        .iter()
        .map(|(name, md5)| format!("{name}={md5}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plugin file name a request may ask for: one plain name inside the directory.
pub fn safe_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/')
}

/// The value of `key` in a query string (`a=1&b=2`), undecoded: plugin names are plain.
pub fn query_value<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_status_and_queries() {
        let dir = std::env::temp_dir().join(format!("standin-plugins-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.jar"), b"b").unwrap();
        std::fs::write(dir.join("a.jar"), b"a").unwrap();
        std::fs::write(dir.join(".a.jar.part"), b"x").unwrap();
        let found = list(&dir);
        assert_eq!(
            found.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a.jar", "b.jar"]
        );
        assert_eq!(parse_status(&status(&dir)), found);
        assert_eq!(
            plugin_status(&found),
            format!("a.jar={}, b.jar={}", md5::hex(b"a"), md5::hex(b"b"))
        );
        assert!(list(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            query_value("folderName=external&pluginName=a.jar", "pluginName"),
            Some("a.jar")
        );
        assert!(safe_name("a.jar") && !safe_name("../x") && !safe_name("a/b") && !safe_name(""));
    }
}
