//! The DR lab for tests that need real hosts: run `tests/lab/up|down`, and a guard that
//! always takes the lab down again.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `tests/lab/SCRIPT --dir DIR`, show its output, and say whether it succeeded.
pub(crate) fn lab(script: &str, dir: &Path) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let out = Command::new(repo().join("tests/lab").join(script))
        .arg("--dir")
        .arg(dir)
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

    pub(crate) fn var(&self, name: &str) -> String {
        let line = self
            .text
            .lines()
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} is not in lab.env"));
        line[name.len() + 1..].trim_matches('"').to_owned()
    }

    /// psql from the controller to the lab PostgreSQL at `addr`.
    pub(crate) fn psql(&self, addr: &str, sql: &str) -> String {
        let psql = format!("{}/psql", self.var("LAB_PG_BIN"));
        let out = Command::new("ip")
            .args(["netns", "exec", &self.var("LAB_NS_CTL"), &psql])
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", addr])
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
