//! `gocd-standin`: the drplan DR lab's one program.
//!
//! * `serve`  — a small stand-in for a GoCD server that keeps the contract drplan's GoCD plans rely
//!   on (mode from `/etc/default/go-server`, health API, heartbeat rows, business-continuity sync
//!   and dashboard). See `server.rs`.
//! * `reap`   — a child subreaper that runs a lab host's sshd and reaps every daemon orphaned
//!   below it. See `reap.rs`.
//! * `probe`  — `GET` a URL and print the body (the lab needs no curl).

mod config;
mod db;
mod http;
mod json;
mod md5;
mod plugins;
mod reap;
mod server;
mod signals;
mod time;

use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "\
usage:
  gocd-standin serve [--name NAME] [--port 8153] [--bind 0.0.0.0] [--defaults /etc/default/go-server]
                     [--config-dir /etc/go] [--pidfile PATH] [--psql psql] [--db-wait SECS]
                     [--bc-addon on|off] [--bc-auth on|off] [--wrapper-properties PATH]
                     [--api-token-file PATH] [--plugins-dir /var/lib/go-server/plugins/external]
      --bc-addon off: the business-continuity add-on is not installed: go.server.mode is
      ignored (always primary) and /go/add-on/business-continuity/* answers 404
      --bc-auth on: the add-on's API and dashboard want Basic auth with the token of
      CONFIG-DIR/business-continuity-token (401 without), and a standby sends its own
      --wrapper-properties PATH: a package install (GoCD >= 19.6): the JVM options come from
      PATH's wrapper.java.additional.N lines, and --defaults is not read
      --api-token-file PATH: the API access tokens (one a line) GoCD's API accepts as
      `Authorization: Bearer TOKEN` (maintenance mode)
      --plugins-dir DIR: the external plugins a primary lists and serves, and a standby syncs
  gocd-standin reap [--grace SECS] -- CMD [ARGS...]
  gocd-standin probe [--timeout SECS] URL
      prints the body; exit 0 on HTTP 2xx, 1 on another HTTP status, 2 when nothing answered";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("reap") => reap::run(&args[1..]),
        Some("probe") => probe(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

/// `--flag value` pairs and positional arguments.
type Flags = (Vec<(String, String)>, Vec<String>);

/// Splits `--flag value` pairs; anything else is positional.
fn flags(args: &[String]) -> Result<Flags, String> {
    let mut pairs = Vec::new();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_string(), value.clone()));
        } else {
            positional.push(a.clone());
        }
    }
    Ok((pairs, positional))
}

fn serve(args: &[String]) -> i32 {
    let (pairs, positional) = match flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("serve: {e}\n{USAGE}");
            return 2;
        }
    };
    let mut opts = server::Options::default();
    for (name, value) in pairs {
        if let Err(e) = set_serve_option(&mut opts, &name, &value) {
            eprintln!("serve: {e}\n{USAGE}");
            return 2;
        }
    }
    if !positional.is_empty() {
        eprintln!("serve: unexpected arguments {positional:?}\n{USAGE}");
        return 2;
    }
    server::run(opts)
}

fn set_serve_option(opts: &mut server::Options, name: &str, value: &str) -> Result<(), String> {
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| format!("--{name} {value:?}: expected a number"))
    };
    match name {
        "defaults" => opts.defaults_file = PathBuf::from(value),
        "config-dir" => opts.config_dir = PathBuf::from(value),
        "bind" => opts.bind = value.to_string(),
        "port" => {
            opts.port = u16::try_from(number()?).map_err(|_| "--port: too big".to_string())?
        }
        "name" => opts.name = value.to_string(),
        "pidfile" => opts.pidfile = Some(PathBuf::from(value)),
        "psql" => opts.psql = PathBuf::from(value),
        "db-wait" => opts.db_wait = Duration::from_secs(number()?),
        "bc-addon" | "bc-auth" => {
            let on = match value {
                "on" => true,
                "off" => false,
                _ => return Err(format!("--{name} {value:?}: expected on or off")),
            };
            if name == "bc-addon" {
                opts.bc_addon = on;
            } else {
                opts.bc_auth = on;
            }
        }
        "wrapper-properties" => opts.wrapper_properties = Some(PathBuf::from(value)),
        "api-token-file" => opts.api_token_file = Some(PathBuf::from(value)),
        "plugins-dir" => opts.plugins_dir = PathBuf::from(value),
        _ => return Err(format!("unknown option --{name}")),
    }
    Ok(())
}

fn probe(args: &[String]) -> i32 {
    let (pairs, positional) = match flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("probe: {e}");
            return 2;
        }
    };
    let mut timeout = Duration::from_secs(3);
    for (name, value) in pairs {
        match (name.as_str(), value.parse::<f64>()) {
            ("timeout", Ok(secs)) if secs > 0.0 => timeout = Duration::from_secs_f64(secs),
            _ => {
                eprintln!("probe: bad option --{name} {value}");
                return 2;
            }
        }
    }
    let [url] = positional.as_slice() else {
        eprintln!("usage: gocd-standin probe [--timeout SECS] URL");
        return 2;
    };
    match http::get(url, timeout) {
        Ok(reply) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&reply.body);
            if (200..300).contains(&reply.status) {
                0
            } else {
                eprintln!("probe: {url}: HTTP {}", reply.status);
                1
            }
        }
        Err(e) => {
            eprintln!("probe: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> server::Options {
        server::Options::default()
    }

    #[test]
    fn bc_addon_option() {
        let mut opts = options();
        set_serve_option(&mut opts, "bc-addon", "off").unwrap();
        assert!(!opts.bc_addon);
        set_serve_option(&mut opts, "bc-addon", "on").unwrap();
        assert!(opts.bc_addon);
        assert!(set_serve_option(&mut opts, "bc-addon", "no").is_err());
        set_serve_option(&mut opts, "bc-auth", "on").unwrap();
        assert!(opts.bc_auth);
        set_serve_option(&mut opts, "wrapper-properties", "/w.conf").unwrap();
        assert_eq!(opts.wrapper_properties, Some(PathBuf::from("/w.conf")));
    }
}
