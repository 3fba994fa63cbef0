//! `http.get`, `http.wait`, `tcp.wait`: reachability as the step's host sees it (curl and
//! bash's `/dev/tcp` on the host, not a socket on the controller: "GO2 can reach GO1" is a
//! different fact from "drplan can").
//!
//! Waits poll at `interval` until they succeed or their `timeout` (or the step's, whichever
//! ends first) runs out; each probe is itself bounded, so a black-holed address cannot
//! hold a poll past the deadline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{HttpGetParams, HttpWaitParams, TcpWaitParams};
use crate::actions::host::{Ctx, Host};
use crate::step::{FailureKind, StepFailure};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// The longest one request or connection attempt may take.
pub(crate) const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// What one GET brought back.
pub(crate) struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Fetched {
    pub(crate) fn result(&self, host: &Host<'_>) -> Value {
        let json = serde_json::from_slice::<Value>(&self.body).unwrap_or(Value::Null);
        json!({ "status": self.status, "body": host.text(&self.body), "json": json })
    }
}

/// Escape a value for a curl config file's double-quoted string.
fn curl_config_string(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', r"\\").replace('"', "\\\""))
}

/// Credentials for a request; they reach curl through its config on stdin (`-K -`), never argv.
pub(crate) enum Auth<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

/// One HTTP request made from a host.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub limit: Duration,
    pub auth: Option<Auth<'a>>,
    /// Extra request headers (`Name: value`), e.g. GoCD's versioned `Accept`.
    pub headers: &'a [&'a str],
}

/// GET `url` from the host with curl. Credentials, if any, go through stdin (`-K -`), never
/// argv. An Err is a request that got no HTTP answer at all (refused, timed out, bad URL).
pub(crate) async fn fetch(
    host: &Host<'_>,
    url: &str,
    limit: Duration,
    auth: Option<(&str, &str)>,
) -> Result<Fetched, StepFailure> {
    send(
        host,
        &Request {
            method: "GET",
            url,
            limit,
            auth: auth.map(|(u, p)| Auth::Basic(u, p)),
            headers: &[],
        },
    )
    .await
}

/// Make `req` from the host with curl (redirects are not followed: a 3xx is an answer).
pub(crate) async fn send(host: &Host<'_>, req: &Request<'_>) -> Result<Fetched, StepFailure> {
    let url = req.url;
    let secs = format!("{:.3}", req.limit.as_secs_f64().max(0.1));
    let mut argv: Vec<String> = [
        "curl",
        "-sS",
        "--globoff",
        "--proto",
        "=http,https",
        "--max-time",
        &secs,
        "-o",
        "-",
        "-w",
        "\\n%{http_code}",
    ]
    .map(String::from)
    .to_vec();
    if req.method != "GET" {
        argv.extend(["-X".into(), req.method.into()]);
        // A body (empty) so curl sends Content-Length: 0, as servers expect of a POST.
        argv.extend(["--data-binary".into(), "".into()]);
    }
    for h in req.headers {
        argv.extend(["-H".into(), (*h).into()]);
    }
    let mut stdin = None;
    if let Some(auth) = &req.auth {
        argv.extend(["-K".into(), "-".into()]);
        let line = match auth {
            Auth::Basic(user, password) => format!(
                "user = {}\n",
                curl_config_string(&format!("{user}:{password}"))
            ),
            Auth::Bearer(token) => format!(
                "header = {}\n",
                curl_config_string(&format!("Authorization: Bearer {token}"))
            ),
        };
        stdin = Some(line.into_bytes());
    }
    argv.extend(["--url".into(), url.into()]);
    let mut cmd = host.cmd(argv.clone());
    cmd.stdin = stdin;
    cmd.timeout = Some(req.limit + Duration::from_secs(5));
    let out = host.ok(cmd, &format!("{} {url}", req.method)).await?;
    let raw = out.stdout;
    let split = raw.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&raw[(split + 1).min(raw.len())..])
        .trim()
        .to_owned();
    let status: u16 = code
        .parse()
        .map_err(|_| host.fail(format!("{} {url}: curl printed no status code", req.method)))?;
    if status == 0 {
        return Err(host.fail(format!("{} {url}: no HTTP answer", req.method)));
    }
    Ok(Fetched {
        status,
        body: raw[..split].to_vec(),
    })
}

pub(crate) async fn get(ctx: &Ctx<'_>, p: HttpGetParams) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let limit = ctx.remaining("GET")?.min(Duration::from_secs(30));
    Ok(fetch(&host, &p.url, limit, None).await?.result(&host))
}

/// The deadline of a wait: its own timeout or the step's, whichever comes first.
pub(crate) fn wait_deadline(ctx: &Ctx<'_>, timeout: Option<crate::plan::Duration>) -> Instant {
    let own =
        Instant::now() + timeout.map_or(DEFAULT_TIMEOUT, crate::plan::duration::Duration::std);
    own.min(ctx.deadline)
}

pub(crate) fn timed_out(host: &Host<'_>, what: String) -> StepFailure {
    StepFailure::new(FailureKind::Timeout, &host.label, what)
}

pub(crate) async fn wait(ctx: &Ctx<'_>, p: HttpWaitParams) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let want = p.status.unwrap_or(200);
    let interval = p
        .interval
        .map_or(DEFAULT_INTERVAL, crate::plan::duration::Duration::std);
    let started = Instant::now();
    let deadline = wait_deadline(ctx, p.timeout);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match fetch(&host, &p.url, left.min(PROBE_LIMIT), None).await {
            Ok(f) => {
                let body_ok = p
                    .contains
                    .as_deref()
                    .is_none_or(|c| String::from_utf8_lossy(&f.body).contains(c));
                if f.status == want && body_ok {
                    let mut result = f.result(&host);
                    result["attempts"] = json!(attempts);
                    result["waited_ms"] =
                        json!(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
                    return Ok(result);
                }
                let body = host.text(&f.body);
                let body: String = body.chars().take(200).collect();
                format!("status {}, body {body:?}", f.status)
            }
            Err(e) if e.kind == FailureKind::Failed || e.kind == FailureKind::Timeout => {
                e.stderr_tail.unwrap_or(e.message)
            }
            Err(e) => return Err(e),
        };
        if Instant::now() + interval >= deadline {
            let what = match &p.contains {
                Some(c) => format!("status {want} with {c:?} in the body"),
                None => format!("status {want}"),
            };
            return Err(timed_out(
                &host,
                format!(
                    "{} did not answer {what} within {:.1}s ({attempts} attempts); last: {last}",
                    p.url,
                    started.elapsed().as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(interval).await;
    }
}

/// Connects with bash's /dev/tcp; host and port arrive as positional parameters.
const TCP_SCRIPT: &str = r#"exec 3<>"/dev/tcp/$1/$2""#;

pub(crate) async fn tcp_wait(ctx: &Ctx<'_>, p: TcpWaitParams) -> Result<Value, StepFailure> {
    if p.host.is_empty() || p.host.contains(['/', '\0']) {
        return Err(ctx.invalid(format!("{:?} is not a host name or address", p.host)));
    }
    let host = ctx.host().await?;
    let interval = p
        .interval
        .map_or(DEFAULT_INTERVAL, crate::plan::duration::Duration::std);
    let started = Instant::now();
    let deadline = wait_deadline(ctx, p.timeout);
    let port = p.port.to_string();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut cmd = host.cmd([
            "bash",
            "-c",
            TCP_SCRIPT,
            "bash",
            p.host.as_str(),
            port.as_str(),
        ]);
        cmd.timeout = Some(left.min(PROBE_LIMIT).max(Duration::from_millis(100)));
        let last = match host.run(cmd).await {
            Ok(out) if out.success() => {
                let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                return Ok(json!({ "open": true, "attempts": attempts, "waited_ms": waited }));
            }
            Ok(out) => out.stderr_tail(1),
            Err(e) if e.kind == FailureKind::Timeout => {
                "the connection attempt timed out".to_owned()
            }
            Err(e) => return Err(e),
        };
        if Instant::now() + interval >= deadline {
            return Err(timed_out(
                &host,
                format!(
                    "{}:{} did not accept a connection within {:.1}s ({attempts} attempts); last: {last}",
                    p.host,
                    p.port,
                    started.elapsed().as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_config_strings_escape_quotes_and_backslashes() {
        assert_eq!(curl_config_string(r#"u:p"a\b"#), r#""u:p\"a\\b""#);
    }
}
