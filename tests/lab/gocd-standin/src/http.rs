//! A minimal HTTP/1.1 server (one thread per connection, `Connection: close`) and client (GET only).
//!
//! Enough for GoCD's health and business-continuity endpoints; no TLS, no chunked encoding,
//! no keep-alive.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A parsed request line (headers we care about are kept too).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string (after `?`), undecoded; empty without one.
    pub query: String,
    pub authorization: Option<String>,
    pub accept: Option<String>,
}

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A `Location:` header (redirects).
    pub location: Option<String>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            location: None,
        }
    }

    /// `302 Found` to `location`, as GoCD's standby answers what it does not serve.
    pub fn redirect(location: &str) -> Response {
        Response {
            location: Some(location.to_string()),
            ..Response::text(302, "")
        }
    }

    pub fn json(status: u16, body: String) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        406 => "Not Acceptable",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Serves `listener` forever, answering each request with `handler` on its own thread.
pub fn serve<H>(listener: TcpListener, handler: H)
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || {
            let _ = handle(stream, &*handler);
        });
    }
}

fn handle<H: Fn(&Request) -> Response>(mut stream: TcpStream, handler: &H) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 32 * 1024 {
            return write_response(
                &mut stream,
                &Response::text(400, "request head too large\n"),
            );
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let response = match parse_request(&head) {
        Some(req) if req.method == "GET" || req.method == "POST" => handler(&req),
        Some(_) => Response::text(405, "only GET and POST\n"),
        None => Response::text(400, "bad request\n"),
    };
    write_response(&mut stream, &response)
}

fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        authorization: header("authorization"),
        accept: header("accept"),
    })
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let location = r
        .location
        .as_deref()
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{location}Connection: close\r\nServer: gocd-standin\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}

/// What a GET returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a GET failed before any HTTP status arrived.
#[derive(Debug)]
pub struct FetchError(pub String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `GET url` (plain `http://host[:port]/path` only), with `timeout` for connecting and for each read.
pub fn get(url: &str, timeout: Duration) -> Result<Reply, FetchError> {
    get_with(url, timeout, None)
}

/// `get` with an `Authorization:` header value.
pub fn get_with(
    url: &str,
    timeout: Duration,
    authorization: Option<&str>,
) -> Result<Reply, FetchError> {
    let err = |m: String| FetchError(m);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| err(format!("{url}: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| err(format!("{url}: cannot resolve {addr_text}: {e}")))?
        .next()
        .ok_or_else(|| err(format!("{url}: no address for {addr_text}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| err(format!("{url}: cannot connect to {addr}: {e}")))?;
    let io = |e: std::io::Error| err(format!("{url}: {e}"));
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: gocd-standin\r\nAccept: */*\r\n{}Connection: close\r\n\r\n",
        authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_reply(&raw).ok_or_else(|| {
        err(format!(
            "{url}: malformed HTTP response ({} bytes)",
            raw.len()
        ))
    })
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse::<u16>().ok()?;
    let mut body = raw[split + 4..].to_vec();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    if let Some(n) = length {
        if body.len() < n {
            return None; // truncated
        }
        body.truncate(n);
    }
    Some(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_and_headers() {
        let r = parse_request("GET /go/api/v1/health?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n")
            .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/go/api/v1/health");
        assert_eq!(r.authorization.as_deref(), Some("Basic Zm9vOmJhcg=="));
    }

    #[test]
    fn reply_parsing() {
        let r = parse_reply(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nabcdef")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"abc"[..]));
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_none());
        assert!(parse_reply(b"garbage").is_none());
    }

    #[test]
    fn serve_and_get_round_trip() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            serve(listener, |req| {
                Response::text(200, format!("you asked {}", req.path))
            })
        });
        let reply = get(
            &format!("http://127.0.0.1:{port}/a/b"),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"you asked /a/b");
    }
}
