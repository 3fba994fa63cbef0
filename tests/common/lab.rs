//! The DR lab for tests that need real hosts: run `tests/lab/up|down`, and a guard that
//! always takes the lab down again.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `tests/lab/SCRIPT --dir DIR`, show its output, and say whether it succeeded.
pub fn lab(script: &str, dir: &Path) -> bool {
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
pub struct Lab(pub PathBuf);

impl Drop for Lab {
    fn drop(&mut self) {
        if lab("down", &self.0) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
