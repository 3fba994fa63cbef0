//! A real etcd cluster for the tests: `members` processes of Debian's `etcd` (package
//! `etcd-server`, which CI installs) on loopback ports, with their data in a temp dir.
//! Each member is killed by its PID when the cluster is dropped.

#![allow(dead_code)] // the tests and the journal_commit bench each use a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    /// `127.0.0.1:PORT` of each member's client URL
    pub clients: Vec<String>,
    /// the client's CA, certificate and key, PEM, when the cluster speaks TLS
    tls: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

struct Member {
    child: Option<Child>,
    argv: Vec<String>,
}

/// TLS files for a cluster that asks clients for certificates (see `Cluster::start_tls`).
pub(crate) struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cluster {
    /// `members` members, plain HTTP, ready to answer.
    pub(crate) fn start(members: usize) -> Cluster {
        Cluster::start_with(members, None)
    }

    /// One member that speaks only TLS and requires a client certificate signed by the
    /// cluster's CA (made here with openssl); the client's files are in `Tls`.
    pub(crate) fn start_tls() -> (Cluster, Tls) {
        let dir = tempfile::tempdir().unwrap();
        let tls = make_certificates(dir.path());
        let cluster = Cluster::start_with(1, Some((dir, &tls)));
        (cluster, tls)
    }

    fn start_with(members: usize, tls: Option<(tempfile::TempDir, &Tls)>) -> Cluster {
        let etcd = which("etcd").unwrap_or_else(|| {
            panic!("etcd is not installed: `apt-get install etcd-server` (CI's .ci/run does)")
        });
        let (dir, tls) = match tls {
            Some((dir, tls)) => (dir, Some(tls)),
            None => (tempfile::tempdir().unwrap(), None),
        };
        let ports = free_ports(2 * members);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let clients: Vec<String> = (0..members)
            .map(|i| format!("127.0.0.1:{}", ports[2 * i]))
            .collect();
        let initial: Vec<String> = (0..members).map(|i| format!("m{i}={}", peer(i))).collect();
        let mut list = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let mut argv = vec![
                etcd.display().to_string(),
                format!("--name=m{i}"),
                format!("--data-dir={}", dir.path().join(format!("m{i}")).display()),
                format!("--listen-client-urls={scheme}://{client}"),
                format!("--advertise-client-urls={scheme}://{client}"),
                format!("--listen-peer-urls={}", peer(i)),
                format!("--initial-advertise-peer-urls={}", peer(i)),
                format!("--initial-cluster={}", initial.join(",")),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token=drplan-test-{}", ports[0]),
                "--logger=zap".into(),
                "--log-outputs=stderr".into(),
                "--log-level=error".into(),
            ];
            if let Some(tls) = tls {
                argv.push(format!("--trusted-ca-file={}", tls.ca.display()));
                argv.push(format!(
                    "--cert-file={}",
                    dir.path().join("server.pem").display()
                ));
                argv.push(format!(
                    "--key-file={}",
                    dir.path().join("server.key").display()
                ));
                argv.push("--client-cert-auth".into());
            }
            let mut member = Member { child: None, argv };
            member.spawn(&dir.path().join(format!("m{i}.log")));
            list.push(member);
        }
        let read = |p: &Path| std::fs::read(p).unwrap();
        let cluster = Cluster {
            dir,
            members: list,
            clients,
            tls: tls.map(|t| (read(&t.ca), read(&t.cert), read(&t.key))),
        };
        cluster.wait_healthy();
        cluster
    }

    /// `etcd://…/PREFIX` naming every member.
    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.clients.join(","))
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL member `i` (it stays down).
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`stop`) or SIGCONT every member: a cluster that is there but never answers.
    pub(crate) fn freeze(&self, stop: bool) {
        let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        for m in &self.members {
            if let Some(child) = &m.child {
                // SAFETY: kill(2) on a child we started and have not reaped.
                unsafe {
                    libc::kill(child.id() as i32, signal);
                }
            }
        }
    }

    /// Until a write through every member's client URL succeeds (a leader is elected).
    pub(crate) fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        loop {
            let ok = rt.block_on(async {
                let Some(mut c) = self.client().await else {
                    return false;
                };
                let put = c.put("/drplan-test/ready", "yes", None);
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), put).await,
                    Ok(Ok(_))
                )
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the etcd cluster did not become healthy in 30s; logs in {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A client of the whole cluster (as root, TLS when the cluster speaks it).
    pub(crate) async fn client(&self) -> Option<etcd_client::Client> {
        let mut options = etcd_client::ConnectOptions::new();
        if let Some((ca, cert, key)) = &self.tls {
            options = options.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(ca))
                    .identity(etcd_client::Identity::from_pem(cert, key)),
            );
        }
        let connect = etcd_client::Client::connect(&self.clients, Some(options));
        tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .ok()?
            .ok()
    }

    /// Which member leads now.
    pub(crate) fn leader(&self) -> usize {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for client in &self.clients {
                let Ok(mut c) = etcd_client::Client::connect([client], None).await else {
                    continue;
                };
                let Ok(status) = c.status().await else {
                    continue;
                };
                if let Some(header) = status.header()
                    && header.member_id() == status.leader()
                {
                    return self.clients.iter().position(|c| c == client).unwrap();
                }
            }
            panic!("no member says it leads");
        })
    }

    /// Every member's log, for a failing test's message.
    pub(crate) fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("m{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Member {
    fn spawn(&mut self, log: &Path) {
        let log = std::fs::File::create(log).unwrap();
        self.child = Some(
            Command::new(&self.argv[0])
                .args(&self.argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start etcd"),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.freeze(false);
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// Ports nothing listens on now (the kernel's choice, released at once: a member binds
/// them a moment later).
fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl.
fn make_certificates(dir: &Path) -> Tls {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=drplan test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(&ca);
    for (name, cn, ext) in [
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", "drplan", "extendedKeyUsage=clientAuth"),
    ] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let subj = format!("/CN={cn}");
        let mut req = vec!["req", "-new", "-subj", &subj];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr]);
        run(&req);
        let extfile = format!("{name}.ext");
        let both = if name == "server" {
            format!("{ext}\nextendedKeyUsage=serverAuth,clientAuth\n")
        } else {
            format!("{ext}\n")
        };
        std::fs::write(dir.join(&extfile), both).unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &extfile,
        ]);
    }
    Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
    }
}
