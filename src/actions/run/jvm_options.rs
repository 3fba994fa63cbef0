//! Editing `GOCD_SERVER_JVM_OPTIONS` in a shell-style defaults file (`/etc/default/go-server`)
//! to set GoCD's business-continuity mode: pure text in, text out.
//!
//! Only the `-Dgo.server.mode=` and `-Dbc.primary.url=` options change; every other option,
//! line and comment stays. The value is read the way the lab's stand-in (and a POSIX shell,
//! for these simple cases) reads it: the last assignment wins, one level of quotes,
//! backslash escapes; it is written back double-quoted with `\ " $ `` ` escaped.

const VAR: &str = "GOCD_SERVER_JVM_OPTIONS";
const MODE: &str = "-Dgo.server.mode";
const PRIMARY_URL: &str = "-Dbc.primary.url";

/// The file's text with the mode set (and for standby, the primary's URL).
pub(super) fn set_mode(text: &str, mode: &str, primary_url: Option<&str>) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines.iter().rposition(|l| assignment(l).is_some());
    let (prefix, value, rest) = match at.and_then(|i| assignment(&lines[i])) {
        Some((prefix, raw)) => {
            let (value, rest) = unquote(raw);
            (prefix.to_owned(), value, rest.to_owned())
        }
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
    let line = format!("{prefix}{VAR}={}{rest}", quote(&tokens.join(" ")));
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
fn assignment(line: &str) -> Option<(&str, &str)> {
    let body = line.trim_start();
    let body = match body.strip_prefix("export") {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => body,
    };
    let value = body.strip_prefix(VAR)?.strip_prefix('=')?;
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
        let out = set_mode(FILE, "primary", None);
        assert_eq!(
            out,
            "# GoCD server defaults\nexport GOCD_SERVER_JVM_OPTIONS=\"-Xmx1g -Dgo.server.mode=primary -Dfoo=bar\" # managed\nOTHER=1\n"
        );
        // Idempotent.
        assert_eq!(set_mode(&out, "primary", None), out);
    }

    #[test]
    fn primary_to_standby_adds_the_url() {
        let text = "GOCD_SERVER_JVM_OPTIONS='-Xms512m'\n";
        let out = set_mode(text, "standby", Some("http://h:8153"));
        assert_eq!(
            out,
            "GOCD_SERVER_JVM_OPTIONS=\"-Xms512m -Dgo.server.mode=standby -Dbc.primary.url=http://h:8153\"\n"
        );
        assert_eq!(set_mode(&out, "standby", Some("http://h:8153")), out);
        // A new primary URL replaces the old one.
        let moved = set_mode(&out, "standby", Some("http://other:8153"));
        assert!(moved.contains("-Dbc.primary.url=http://other:8153\""));
        assert!(!moved.contains("http://h:8153"));
    }

    #[test]
    fn a_file_without_the_variable_gets_it_and_the_last_assignment_is_edited() {
        assert_eq!(
            set_mode("A=1", "primary", None),
            "A=1\nGOCD_SERVER_JVM_OPTIONS=\"-Dgo.server.mode=primary\"\n"
        );
        assert_eq!(
            set_mode("", "primary", None),
            "GOCD_SERVER_JVM_OPTIONS=\"-Dgo.server.mode=primary\"\n"
        );
        let two = "GOCD_SERVER_JVM_OPTIONS=\"-Da=1\"\nGOCD_SERVER_JVM_OPTIONS=\"-Db=2 -Dgo.server.mode\"\n";
        assert_eq!(
            set_mode(two, "standby", Some("u")),
            "GOCD_SERVER_JVM_OPTIONS=\"-Da=1\"\nGOCD_SERVER_JVM_OPTIONS=\"-Db=2 -Dgo.server.mode=standby -Dbc.primary.url=u\"\n"
        );
    }

    #[test]
    fn values_are_quoted_for_the_shell() {
        let out = set_mode(
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
}
