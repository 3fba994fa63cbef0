//! `--store etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?OPTION=VALUE&…]`, parsed (pure: text in,
//! settings out; the files it names are read by the caller).
//!
//! Options: `ca=FILE` (TLS: the CA that signed the members' certificates; with it the
//! connection is TLS), `cert=FILE` and `key=FILE` (a client certificate, both or neither,
//! TLS only), `user=NAME` with `password-file=FILE` (etcd's own authentication), and
//! `lease=DURATION` (the site lock's lease, `10s` by default: how long a lost controller
//! keeps its sites locked). Values are taken literally (no %-escapes).

use std::path::PathBuf;
use std::time::Duration;

/// What a store URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// `host:port`, at least one
    pub endpoints: Vec<String>,
    /// every key drplan writes starts with this (`/drplan`), never with a `/` at its end
    pub prefix: String,
    pub ca: Option<PathBuf>,
    /// a client certificate and its key
    pub identity: Option<(PathBuf, PathBuf)>,
    /// a user name and the file holding its password
    pub user: Option<(String, PathBuf)>,
    pub lease: Duration,
}

/// The lease when the URL names none.
pub(super) const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl StoreUrl {
    /// Parse, or say what is wrong (for the operator, with the URL's shape).
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        let rest = text
            .strip_prefix("etcd://")
            .ok_or("the store must start with etcd://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (hosts, prefix) = rest
            .split_once('/')
            .ok_or("the store names no PREFIX after the hosts")?;
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Err("the store's PREFIX is empty".into());
        }
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(format!("{host:?} is not HOST:PORT"));
            }
            endpoints.push(host.to_owned());
        }
        let mut url = StoreUrl {
            endpoints,
            prefix: format!("/{prefix}"),
            ca: None,
            identity: None,
            user: None,
            lease: DEFAULT_LEASE,
        };
        let (mut cert, mut key, mut user, mut password) = (None, None, None, None);
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (name, value) = pair
                .split_once('=')
                .filter(|(_, v)| !v.is_empty())
                .ok_or_else(|| format!("{pair:?} is not OPTION=VALUE"))?;
            match name {
                "ca" => url.ca = Some(PathBuf::from(value)),
                "cert" => cert = Some(PathBuf::from(value)),
                "key" => key = Some(PathBuf::from(value)),
                "user" => user = Some(value.to_owned()),
                "password-file" => password = Some(PathBuf::from(value)),
                "lease" => url.lease = duration(value)?,
                other => {
                    return Err(format!(
                        "unknown option {other:?} (known: ca, cert, key, user, password-file, lease)"
                    ));
                }
            }
        }
        url.identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("cert= and key= go together".into()),
        };
        if url.identity.is_some() && url.ca.is_none() {
            return Err("a client certificate needs TLS: give ca= too".into());
        }
        url.user = match (user, password) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            _ => return Err("user= and password-file= go together".into()),
        };
        Ok(url)
    }

    /// The URL without its options, for messages.
    pub fn display(&self) -> String {
        format!("etcd://{}{}", self.endpoints.join(","), self.prefix)
    }
}

/// `10s`, `1500ms`, `2m`: whole seconds at least 2 (etcd's shortest lease).
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("lease={text} is not a duration like 10s or 2m");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(bad()),
    };
    if d < Duration::from_secs(2) {
        return Err(format!(
            "lease={text} is shorter than etcd's shortest lease (2s)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_prefix_and_options() {
        let url = StoreUrl::parse(
            "etcd://a:2379,10.0.0.2:2379/dr/plan/?ca=/etc/ca.pem&cert=c.pem&key=k.pem&user=drplan&password-file=/run/pw&lease=4s",
        )
        .unwrap();
        assert_eq!(url.endpoints, ["a:2379", "10.0.0.2:2379"]);
        assert_eq!(url.prefix, "/dr/plan");
        assert_eq!(url.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            url.identity,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        assert_eq!(
            url.user,
            Some(("drplan".to_owned(), PathBuf::from("/run/pw")))
        );
        assert_eq!(url.lease, Duration::from_secs(4));
        assert_eq!(url.display(), "etcd://a:2379,10.0.0.2:2379/dr/plan");
        let plain = StoreUrl::parse("etcd://127.0.0.1:2379/drplan").unwrap();
        assert_eq!(plain.lease, DEFAULT_LEASE);
        assert_eq!((plain.ca, plain.identity, plain.user), (None, None, None));
    }

    #[test]
    fn what_is_wrong_is_said() {
        for (url, says) in [
            ("http://a:1/p", "etcd://"),
            ("etcd://a:1", "no PREFIX"),
            ("etcd://a:1/", "empty"),
            ("etcd://a/p", "not HOST:PORT"),
            ("etcd://a:1,:2/p", "not HOST:PORT"),
            ("etcd://a:1/p?cert=c", "go together"),
            ("etcd://a:1/p?cert=c&key=k", "needs TLS"),
            ("etcd://a:1/p?user=u", "go together"),
            ("etcd://a:1/p?lease=1s", "shortest"),
            ("etcd://a:1/p?lease=soon", "not a duration"),
            ("etcd://a:1/p?tls", "OPTION=VALUE"),
            ("etcd://a:1/p?colour=red", "unknown option"),
        ] {
            let err = StoreUrl::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
