//! A plain HTTP/1.0 GET over a TCP socket (no client library: the tests see exactly what the
//! server sends), `drplan serve` started as a child that is always killed, and a check of
//! Prometheus' text exposition format.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A response: status code, header lines, body.
pub(crate) struct Got {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Got {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// GET `path` from `addr` (`127.0.0.1:PORT`), with a bearer token if given.
pub(crate) fn get(addr: &str, path: &str, token: Option<&str>) -> Got {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
    Got {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `drplan serve …` running; killed (by its pid) when dropped.
pub(crate) struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`, as it said on its first line.
    pub addr: String,
}

impl Served {
    /// Start `cmd` (a `drplan serve` with `--listen 127.0.0.1:0`) and wait for the line that
    /// names its address.
    pub(crate) fn start(mut cmd: Command) -> Served {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start drplan serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("drplan serve said: {line:?}"))
            .to_owned();
        Served { child, addr }
    }

    pub(crate) fn get(&self, path: &str) -> Got {
        get(&self.addr, path, None)
    }

    /// GET `path` until `done` holds on the response, for at most `tries` × 250 ms.
    pub(crate) fn until(&self, path: &str, tries: u32, done: impl Fn(&Got) -> bool) -> Got {
        for _ in 0..tries {
            let got = self.get(path);
            if done(&got) {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        let last = self.get(path);
        panic!(
            "GET {path} never became what was expected; last: {} {}",
            last.status, last.body
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Check `text` against Prometheus' text exposition format (0.0.4): `# HELP`/`# TYPE` lines
/// before their samples, every sample `name{label="value",…} number`, every name with
/// `prefix`. Returns the samples as (name, labels, value).
pub(crate) fn prometheus(text: &str, prefix: &str) -> Vec<(String, String, f64)> {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap_or_default();
            assert!(
                ["gauge", "counter", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(typed.insert(name.to_owned()), "TYPE twice: {line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                check_labels(l, line);
                (n, l)
            }
            None => (series, ""),
        };
        assert!(
            name.starts_with(prefix)
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    samples
}

/// `k="v",k2="v2"` with escapes `\\`, `\"`, `\n` inside values.
fn check_labels(mut l: &str, line: &str) {
    while !l.is_empty() {
        let (k, rest) = l.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name in {line}"
        );
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let (_, e) = chars.next().unwrap_or_else(|| panic!("{line}"));
                    assert!(matches!(e, '\\' | '"' | 'n'), "bad escape in {line}");
                }
                Some((i, '"')) => break i,
                Some((_, '\n')) => panic!("raw newline in {line}"),
                Some(_) => {}
                None => panic!("unterminated label value in {line}"),
            }
        };
        l = &rest[end + 1..];
        l = l.strip_prefix(',').unwrap_or(l);
    }
}
