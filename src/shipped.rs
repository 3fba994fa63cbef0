//! The plans drplan ships (the repository's `plans/`), inside the binary: an installed drplan
//! runs `drplan plan gocd/failover --site SITE` from any directory, `drplan check` finds its
//! checks, and `drplan plans export DIR` gives a site its own copy to edit.
//!
//! The rule for a plan (or checks) argument: **a path that exists on disk wins**; otherwise a
//! shipped plan of that name, its path under `plans/` with or without `.yaml`
//! (`gocd/failover`, `gocd/failover.yaml`). A run or saved plan made from a shipped plan names
//! it `shipped:gocd/failover.yaml`, and `resume`, `rollback` and `apply SAVED` compare it with
//! the text of the drplan that runs them (a drplan whose plan changed refuses, as for an
//! edited file).

use crate::diag::{Diagnostics, SourceFile, suggest};
use crate::load::{self, Document};
use std::path::Path;

/// One shipped file: its path under `plans/` and its text.
#[derive(Debug)]
pub struct Shipped {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(Shipped { path: $path, text: include_str!(concat!("../plans/", $path)) }),*]
    };
}

/// Every file of `plans/` (a test fails when one is missing here).
pub const FILES: &[Shipped] = shipped![
    "gocd/failback.yaml",
    "gocd/failover.yaml",
    "gocd/readiness.yaml",
    "gocd/switchover.yaml",
    "gocd/sync.yaml",
    "sites/example.yaml",
];

/// How a run or a saved plan names a shipped file.
const STORED: &str = "shipped:";

impl Shipped {
    /// Its name on the command line: its path without `.yaml`.
    pub fn name(&self) -> &'static str {
        self.path.strip_suffix(".yaml").unwrap_or(self.path)
    }

    /// How diagnostics, runs and saved plans name it.
    pub fn stored_path(&self) -> String {
        format!("{STORED}{}", self.path)
    }
}

/// The shipped file `name` names: `gocd/failover` or `gocd/failover.yaml`.
pub fn find(name: &str) -> Option<&'static Shipped> {
    FILES.iter().find(|s| s.name() == name || s.path == name)
}

/// The shipped file a run or saved plan stored as `shipped:PATH`.
pub fn stored(path: &Path) -> Option<&'static Shipped> {
    let rest = path.to_str()?.strip_prefix(STORED)?;
    FILES.iter().find(|s| s.path == rest)
}

/// Read a plan or checks file: the file at `path` when anything exists there (a file drplan
/// cannot read is an error, never replaced), else the shipped plan of that name.
pub fn read_plan(path: &Path) -> Result<Document, Diagnostics> {
    if std::fs::symlink_metadata(path).is_err()
        && let Some(s) = path.to_str().and_then(find)
    {
        return Document::parse(SourceFile::new(s.stored_path(), s.text));
    }
    load::read(path).map_err(|mut d| {
        if std::fs::symlink_metadata(path).is_err()
            && let Some(first) = d.0.first_mut()
        {
            let plans = FILES.iter().map(Shipped::name).filter(|n| !n.starts_with("sites/"));
            let near = path.to_str().and_then(|p| suggest(p, plans.clone()));
            let all: Vec<&str> = plans.collect();
            first.help = Some(format!(
                "{}The plans shipped with drplan are named by their path under plans/: {} (`drplan plans list`)",
                near.map(|n| format!("{n} ")).unwrap_or_default(),
                all.join(", ")
            ));
        }
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_stored_paths() {
        let f = find("gocd/failover").expect("shipped");
        assert_eq!(f.path, "gocd/failover.yaml");
        assert!(std::ptr::eq(find("gocd/failover.yaml").unwrap(), f));
        assert!(find("failover").is_none() && find("plans/gocd/failover.yaml").is_none());
        assert!(std::ptr::eq(
            stored(Path::new(&f.stored_path())).unwrap(),
            f
        ));
        assert!(stored(Path::new("gocd/failover.yaml")).is_none());
    }
}
