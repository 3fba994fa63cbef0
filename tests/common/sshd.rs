//! A real, private sshd on 127.0.0.1 for tests: its own host key, a generated client key,
//! and a log (`LogLevel VERBOSE`) from which tests count logins.
//!
//! Root's `~/.bashrc` on these machines runs `pyenv init` (~90 ms per SSH command). The
//! client key's authorized_keys entry sets `HOME` to the test directory (with
//! `PermitUserEnvironment yes`), so the remote shell finds no `.bashrc` and timings are
//! honest. The daemon is stopped by PID (its own, never by name) when dropped.

#![allow(dead_code)] // each test binary (and the benchmark) uses a different part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drplan::transport::SshSpec;

pub(crate) struct TestSshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub client_key: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl TestSshd {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start with extra `sshd_config` lines.
    pub(crate) fn start_with(extra_config: &[&str]) -> Self {
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("drplan-sshd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        let client_key = d.join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        let client_pub = read(&client_key.with_extension("pub"));
        std::fs::write(
            d.join("authorized_keys"),
            format!("environment=\"HOME={}\" {client_pub}", d.display()),
        )
        .expect("write authorized_keys");
        let port = free_port();
        let known_hosts = d.join("known_hosts");
        let host_pub = read(&host_key.with_extension("pub"));
        std::fs::write(&known_hosts, known_hosts_line(port, &host_pub)).expect("known_hosts");
        let log = d.join("sshd.log");
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitUserEnvironment yes\nLogLevel VERBOSE\n",
            hk = host_key.display(),
            d = d.display(),
        );
        for line in extra_config {
            config.push_str(line);
            config.push('\n');
        }
        let config_path = d.join("sshd_config");
        std::fs::write(&config_path, config).expect("write sshd_config");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd");
        let sshd = Self {
            dir,
            port,
            known_hosts,
            client_key,
            log,
            child,
        };
        sshd.wait_listening();
        sshd
    }

    /// A spec that reaches this sshd as root with the client key.
    pub(crate) fn spec(&self) -> SshSpec {
        let mut spec = SshSpec::new("127.0.0.1", &self.known_hosts);
        spec.port = self.port;
        spec.user = Some("root".into());
        spec.identity = Some(self.client_key.clone());
        spec.connect_timeout = Duration::from_secs(5);
        spec.control_dir = Some(self.dir.path().join("ctl"));
        spec
    }

    /// How many SSH logins (connections that authenticated) sshd has accepted.
    pub(crate) fn logins(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Accepted publickey for ")
            .count()
    }

    /// Its public host key line (`ssh-ed25519 AAAA… comment`).
    pub(crate) fn host_public_key(&self) -> String {
        read(&self.dir.path().join("host_ed25519.pub"))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_listening(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "sshd did not listen on {addr}; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "drplan-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
}

pub(crate) fn known_hosts_line(port: u16, host_pub: &str) -> String {
    let mut fields = host_pub.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("[127.0.0.1]:{port} {kind} {key}\n")
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A TCP door on 127.0.0.1 in front of a port: each connection waits `delay` before it is
/// put through, so an SSH client spends that long connecting (its handshake has not begun).
/// Tests use it to act while drplan's ssh master is still starting. Its threads stop when it
/// is dropped.
pub(crate) struct SlowDoor {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowDoor {
    pub(crate) fn open(target: u16, delay: Duration) -> Self {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = client.set_nonblocking(false);
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                        return;
                    };
                    let (Ok(mut c_in), Ok(mut s_in)) = (client.try_clone(), server.try_clone())
                    else {
                        return;
                    };
                    let (mut c_out, mut s_out) = (client, server);
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_in, &mut s_out);
                        let _ = s_out.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        Self { port, stop }
    }
}

impl Drop for SlowDoor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
