//! Setting GoCD's business-continuity mode (`-Dgo.server.mode=`, and for a standby
//! `-Dbc.primary.url=`) in the file the server reads it from: pure text in, text out.
//!
//! GoCD reads its JVM options from different places depending on how it was installed:
//!
//! * [`Layout::Defaults`]: `GOCD_SERVER_JVM_OPTIONS` in a shell-style defaults file
//!   (`/etc/default/go-server`; packages before GoCD 19.6, and the lab's stand-in);
//! * [`Layout::WrapperProperties`]: one option per `wrapper.java.additional.N=` line of the
//!   Java Service Wrapper's `wrapper-properties.conf` (packages since 19.6:
//!   `/usr/share/go-server/wrapper-config/wrapper-properties.conf`);
//! * [`Layout::ContainerEnv`]: `GOCD_SERVER_JVM_OPTS` in a container's environment file (the
//!   official images read that variable; the container must be re-created to see a change).
//!
//! Only the two options change; every other option, line and comment stays. A shell value is
//! read the way the lab's stand-in (and a POSIX shell, for these simple cases) reads it: the
//! last assignment wins, one level of quotes, backslash escapes; it is written back
//! double-quoted with `\ " $ `` ` escaped. An environment file's value is written bare (docker's
//! `--env-file` keeps quotes as part of the value).

const DEFAULTS_VAR: &str = "GOCD_SERVER_JVM_OPTIONS";
const CONTAINER_VAR: &str = "GOCD_SERVER_JVM_OPTS";
const WRAPPER_KEY: &str = "wrapper.java.additional.";
const MODE: &str = "-Dgo.server.mode";
const PRIMARY_URL: &str = "-Dbc.primary.url";

/// Where a GoCD server reads its JVM options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Defaults,
    WrapperProperties,
    ContainerEnv,
}

/// The file's text with the mode set (and for standby, the primary's URL).
pub(super) fn set_mode(
    layout: Layout,
    text: &str,
    mode: &str,
    primary_url: Option<&str>,
) -> String {
    match layout {
        Layout::Defaults => set_in_variable(text, DEFAULTS_VAR, true, mode, primary_url),
        Layout::ContainerEnv => set_in_variable(text, CONTAINER_VAR, false, mode, primary_url),
        Layout::WrapperProperties => set_in_wrapper(text, mode, primary_url),
    }
}

/// The mode a file says (the last `-Dgo.server.mode=` wins, as in the JVM); None when absent.
pub(super) fn mode_of(layout: Layout, text: &str) -> Option<String> {
    let options: Vec<String> = match layout {
        Layout::Defaults | Layout::ContainerEnv => {
            let var = if layout == Layout::Defaults {
                DEFAULTS_VAR
            } else {
                CONTAINER_VAR
            };
            let raw = text.lines().rev().find_map(|l| assignment(l, var))?;
            let value = if layout == Layout::Defaults {
                unquote(raw.1).0
            } else {
                env_value(raw.1)
            };
            value.split_whitespace().map(str::to_owned).collect()
        }
        Layout::WrapperProperties => text
            .lines()
            .filter_map(wrapper_option)
            .map(|(_, v)| v.trim().to_owned())
            .collect(),
    };
    options
        .iter()
        .rev()
        .find(|t| is_option(t, MODE))
        .map(|t| t.split_once('=').map_or("", |(_, v)| v).to_owned())
}

/// A `wrapper.java.additional.N=VALUE` line: (N, VALUE).
fn wrapper_option(line: &str) -> Option<(u64, &str)> {
    let body = line.trim_start();
    let rest = body.strip_prefix(WRAPPER_KEY)?;
    let (n, value) = rest.split_once('=')?;
    let n: u64 = n.trim_end().parse().ok()?;
    Some((n, value))
}

/// Wrapper properties: the existing mode and URL lines get the new values in place; a missing
/// one is added with the next free number. A primary keeps its `-Dbc.primary.url` line (GoCD
/// reads it only in standby mode): removing a line could leave a gap in the numbering, which
/// the wrapper may read as the end of the list.
fn set_in_wrapper(text: &str, mode: &str, primary_url: Option<&str>) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut next = 0u64;
    let (mut has_mode, mut has_url) = (false, false);
    for line in &mut lines {
        let Some((n, value)) = wrapper_option(line) else {
            continue;
        };
        next = next.max(n + 1);
        let key = &line[..line.len() - value.len()];
        let replaced = if is_option(value.trim(), MODE) {
            has_mode = true;
            Some(format!("{key}{MODE}={mode}"))
        } else if is_option(value.trim(), PRIMARY_URL) {
            has_url = true;
            primary_url.map(|url| format!("{key}{PRIMARY_URL}={url}"))
        } else {
            None
        };
        if let Some(r) = replaced {
            *line = r;
        }
    }
    // Numbering starts at 100 in an empty file: GoCD's own wrapper.conf uses the low numbers.
    let mut next = if next == 0 { 100 } else { next };
    if !has_mode {
        lines.push(format!("{WRAPPER_KEY}{next}={MODE}={mode}"));
        next += 1;
    }
    if let (false, Some(url)) = (has_url, primary_url) {
        lines.push(format!("{WRAPPER_KEY}{next}={PRIMARY_URL}={url}"));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A shell or environment-file variable holding all the options in one value.
fn set_in_variable(
    text: &str,
    var: &str,
    shell: bool,
    mode: &str,
    primary_url: Option<&str>,
) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines.iter().rposition(|l| assignment(l, var).is_some());
    let (prefix, value, rest) = match at.and_then(|i| assignment(&lines[i], var)) {
        Some((prefix, raw)) if shell => {
            let (value, rest) = unquote(raw);
            (prefix.to_owned(), value, rest.to_owned())
        }
        Some((prefix, raw)) => (prefix.to_owned(), env_value(raw), String::new()),
        None => (String::new(), String::new(), String::new()),
    };
    let mut new_options = vec![format!("{MODE}={mode}")];
    if let Some(url) = primary_url {
        new_options.push(format!("{PRIMARY_URL}={url}"));
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut inserted = false;
    for token in value.split_whitespace() {
        if is_option(token, MODE) || is_option(token, PRIMARY_URL) {
            // The new options take the place of the first old one, keeping the order.
            if !inserted {
                tokens.append(&mut new_options.clone());
                inserted = true;
            }
        } else {
            tokens.push(token.to_owned());
        }
    }
    if !inserted {
        tokens.extend(new_options);
    }
    let joined = tokens.join(" ");
    let line = if shell {
        format!("{prefix}{var}={}{rest}", quote(&joined))
    } else {
        format!("{prefix}{var}={joined}")
    };
    match at {
        Some(i) => lines[i] = line,
        None => lines.push(line),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `-Dname=…` or a bare `-Dname`.
fn is_option(token: &str, name: &str) -> bool {
    token
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
}

/// For a line assigning the variable: (everything before the name, the raw value text).
fn assignment<'a>(line: &'a str, var: &str) -> Option<(&'a str, &'a str)> {
    let body = line.trim_start();
    let body = match body.strip_prefix("export") {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => body,
    };
    let value = body.strip_prefix(var)?.strip_prefix('=')?;
    let prefix_len = line.len() - body.len();
    Some((&line[..prefix_len], value))
}

/// One shell word's value (quotes removed, escapes applied) and the text after it.
fn unquote(raw: &str) -> (String, &str) {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => return (out, &raw[i..]),
            (None, '#') if !started => return (out, &raw[i..]),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                started = true;
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            (_, c) => {
                started = true;
                out.push(c);
            }
        }
    }
    (out, "")
}

/// An environment file's value: the rest of the line, without one pair of enclosing quotes
/// (compose's `.env` strips them; docker's `--env-file` never writes them for us).
fn env_value(raw: &str) -> String {
    let t = raw.trim();
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    t.to_owned()
}

fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# GoCD server defaults\nexport GOCD_SERVER_JVM_OPTIONS=\"-Xmx1g -Dgo.server.mode=standby -Dbc.primary.url=http://10.231.0.14:8153 -Dfoo=bar\" # managed\nOTHER=1\n";

    #[test]
    fn standby_to_primary_removes_the_url_and_keeps_the_rest() {
        let out = set_mode(Layout::Defaults, FILE, "primary", None);
        assert_eq!(
            out,
            "# GoCD server defaults\nexport GOCD_SERVER_JVM_OPTIONS=\"-Xmx1g -Dgo.server.mode=primary -Dfoo=bar\" # managed\nOTHER=1\n"
        );
        // Idempotent.
        assert_eq!(set_mode(Layout::Defaults, &out, "primary", None), out);
    }

    #[test]
    fn primary_to_standby_adds_the_url() {
        let text = "GOCD_SERVER_JVM_OPTIONS='-Xms512m'\n";
        let out = set_mode(Layout::Defaults, text, "standby", Some("http://h:8153"));
        assert_eq!(
            out,
            "GOCD_SERVER_JVM_OPTIONS=\"-Xms512m -Dgo.server.mode=standby -Dbc.primary.url=http://h:8153\"\n"
        );
        assert_eq!(
            set_mode(Layout::Defaults, &out, "standby", Some("http://h:8153")),
            out
        );
        // A new primary URL replaces the old one.
        let moved = set_mode(Layout::Defaults, &out, "standby", Some("http://other:8153"));
        assert!(moved.contains("-Dbc.primary.url=http://other:8153\""));
        assert!(!moved.contains("http://h:8153"));
    }

    #[test]
    fn a_file_without_the_variable_gets_it_and_the_last_assignment_is_edited() {
        assert_eq!(
            set_mode(Layout::Defaults, "A=1", "primary", None),
            "A=1\nGOCD_SERVER_JVM_OPTIONS=\"-Dgo.server.mode=primary\"\n"
        );
        assert_eq!(
            set_mode(Layout::Defaults, "", "primary", None),
            "GOCD_SERVER_JVM_OPTIONS=\"-Dgo.server.mode=primary\"\n"
        );
        let two = "GOCD_SERVER_JVM_OPTIONS=\"-Da=1\"\nGOCD_SERVER_JVM_OPTIONS=\"-Db=2 -Dgo.server.mode\"\n";
        assert_eq!(
            set_mode(Layout::Defaults, two, "standby", Some("u")),
            "GOCD_SERVER_JVM_OPTIONS=\"-Da=1\"\nGOCD_SERVER_JVM_OPTIONS=\"-Db=2 -Dgo.server.mode=standby -Dbc.primary.url=u\"\n"
        );
    }

    #[test]
    fn values_are_quoted_for_the_shell() {
        let out = set_mode(
            Layout::Defaults,
            "GOCD_SERVER_JVM_OPTIONS=\"-Dx=\\$HOME\"",
            "standby",
            Some("http://h/?a=\"b\""),
        );
        assert_eq!(
            out,
            "GOCD_SERVER_JVM_OPTIONS=\"-Dx=\\$HOME -Dgo.server.mode=standby -Dbc.primary.url=http://h/?a=\\\"b\\\"\"\n"
        );
        let (value, rest) = unquote(&out["GOCD_SERVER_JVM_OPTIONS=".len()..out.len() - 1]);
        assert_eq!(
            value,
            "-Dx=$HOME -Dgo.server.mode=standby -Dbc.primary.url=http://h/?a=\"b\""
        );
        assert_eq!(rest, "");
        assert!(!is_option("-Dgo.server.modex=1", MODE));
    }

    #[test]
    fn wrapper_properties_are_edited_in_place_or_appended() {
        let text = "# GoCD\nwrapper.java.additional.100=-Dgo.server.mode=standby\nwrapper.java.additional.101=-Dbc.primary.url=http://go1:8153\nwrapper.java.additional.102=-Xmx2g\n";
        let out = set_mode(Layout::WrapperProperties, text, "primary", None);
        assert_eq!(
            out,
            "# GoCD\nwrapper.java.additional.100=-Dgo.server.mode=primary\nwrapper.java.additional.101=-Dbc.primary.url=http://go1:8153\nwrapper.java.additional.102=-Xmx2g\n"
        );
        assert_eq!(
            set_mode(Layout::WrapperProperties, &out, "primary", None),
            out
        );
        assert_eq!(
            mode_of(Layout::WrapperProperties, &out).as_deref(),
            Some("primary")
        );
        let back = set_mode(
            Layout::WrapperProperties,
            &out,
            "standby",
            Some("http://go2:8153"),
        );
        assert!(back.contains("additional.100=-Dgo.server.mode=standby\n"));
        assert!(back.contains("additional.101=-Dbc.primary.url=http://go2:8153\n"));
        // A file without them gets new lines after the highest number (100 in an empty file).
        assert_eq!(
            set_mode(
                Layout::WrapperProperties,
                "wrapper.java.additional.7=-Da\n",
                "standby",
                Some("u")
            ),
            "wrapper.java.additional.7=-Da\nwrapper.java.additional.8=-Dgo.server.mode=standby\nwrapper.java.additional.9=-Dbc.primary.url=u\n"
        );
        assert_eq!(
            set_mode(Layout::WrapperProperties, "", "primary", None),
            "wrapper.java.additional.100=-Dgo.server.mode=primary\n"
        );
        // A property of another name is not ours.
        assert_eq!(
            mode_of(
                Layout::WrapperProperties,
                "wrapper.java.additional.1=-Dgo.server.modex=standby\n"
            ),
            None
        );
    }

    #[test]
    fn container_env_files_hold_bare_values() {
        let text = "GOCD_SERVER_JVM_OPTS=-Xmx1g -Dgo.server.mode=standby -Dbc.primary.url=http://go1:8153\nOTHER=1\n";
        let out = set_mode(Layout::ContainerEnv, text, "primary", None);
        assert_eq!(
            out,
            "GOCD_SERVER_JVM_OPTS=-Xmx1g -Dgo.server.mode=primary\nOTHER=1\n"
        );
        assert_eq!(
            mode_of(Layout::ContainerEnv, &out).as_deref(),
            Some("primary")
        );
        // Not the defaults file's variable.
        assert_eq!(mode_of(Layout::Defaults, &out), None);
        assert_eq!(
            set_mode(Layout::ContainerEnv, "", "standby", Some("http://h")),
            "GOCD_SERVER_JVM_OPTS=-Dgo.server.mode=standby -Dbc.primary.url=http://h\n"
        );
    }
}
