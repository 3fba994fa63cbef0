//! The DR lab for tests that need real hosts: run `tests/lab/up|down`, and a guard that
//! always takes the lab down again.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `tests/lab/SCRIPT --dir DIR`, show its output, and say whether it succeeded.
pub(crate) fn lab(script: &str, dir: &Path) -> bool {
    lab_args(script, dir, &[])
}

/// `lab` with more arguments (`--flavour hardened`).
pub(crate) fn lab_args(script: &str, dir: &Path, args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let out = Command::new(repo().join("tests/lab").join(script))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("CARGO", cargo)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/lab/{script}: {e}"));
    println!(
        "{script}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

/// Removes the lab when dropped, whatever happened.
pub(crate) struct Lab(pub PathBuf);

impl Drop for Lab {
    fn drop(&mut self) {
        if lab("down", &self.0) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `DIR/lab.env`, read.
pub(crate) struct LabEnv {
    pub dir: PathBuf,
    text: String,
}

impl LabEnv {
    pub(crate) fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("lab.env")).expect("lab.env");
        LabEnv {
            dir: dir.to_path_buf(),
            text,
        }
    }

    /// The lab's libpq password file (hardened), else none at all.
    pub(crate) fn passfile(&self) -> String {
        self.try_var("LAB_PG_PASSFILE")
            .unwrap_or_else(|| "/dev/null".to_owned())
    }

    pub(crate) fn try_var(&self, name: &str) -> Option<String> {
        let line = self
            .text
            .lines()
            .find(|l| l.starts_with(&format!("{name}=")))?;
        Some(line[name.len() + 1..].trim_matches('"').to_owned())
    }

    pub(crate) fn var(&self, name: &str) -> String {
        self.try_var(name)
            .unwrap_or_else(|| panic!("{name} is not in lab.env"))
    }

    /// psql from the controller to the lab PostgreSQL at `addr`, as postgres (with its
    /// password on the hardened flavour).
    pub(crate) fn psql(&self, addr: &str, sql: &str) -> String {
        let psql = format!("{}/psql", self.var("LAB_PG_BIN"));
        let out = Command::new("ip")
            .args(["netns", "exec", &self.var("LAB_NS_CTL"), &psql])
            .env("PGPASSFILE", self.passfile())
            .args(["-X", "-At", "-w", "-v", "ON_ERROR_STOP=1", "-h", addr])
            .args([
                "-p",
                &self.var("LAB_PG_PORT"),
                "-U",
                "postgres",
                "-d",
                "gocd",
            ])
            .args(["-c", sql])
            .output()
            .expect("psql");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

/// `s` as one word for `sh`, in single quotes.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The remote command that runs `script` as root on a lab host logged into as `user`: the
/// script itself for root's own login (default flavour), through `sudo -n sh -c` for the
/// hardened flavour's unprivileged user.
pub(crate) fn as_root(user: &str, script: &str) -> String {
    if user == "root" {
        script.to_owned()
    } else {
        format!("sudo -n sh -c {}", sh_quote(script))
    }
}

/// Where a lab PostgreSQL's `postgresql.conf` and `pg_hba.conf` are: its data directory
/// (default flavour), Debian's `/etc/postgresql/15/main` (hardened; each host its own).
pub(crate) fn pg_conf_dir(var: impl Fn(&str) -> String, host: &str) -> String {
    if var("LAB_FLAVOUR") == "hardened" {
        "/etc/postgresql/15/main".to_owned()
    } else {
        var(&format!("LAB_PGDATA_{}", host.to_uppercase()))
    }
}

/// A shell command (for root on pg1/pg2) that runs `pg_ctl ARGS` as postgres with the host's
/// data directory and log — and, in Debian's layout (hardened), its configuration file, which
/// is not in the data directory.
pub(crate) fn pg_ctl_script(var: impl Fn(&str) -> String, host: &str, args: &str) -> String {
    let h = host.to_uppercase();
    let config = if var("LAB_FLAVOUR") == "hardened" {
        format!(
            " -o '-c config_file={}/postgresql.conf'",
            pg_conf_dir(&var, host)
        )
    } else {
        String::new()
    };
    format!(
        "env -C / runuser -u postgres -- {}/pg_ctl -D {} -l {}{config} {args}",
        var("LAB_PG_BIN"),
        var(&format!("LAB_PGDATA_{h}")),
        var(&format!("LAB_PGLOG_{h}")),
    )
}
