//! A saved plan (`drplan plan --out FILE`): the exact plan and site texts with their
//! sha-256, so `apply FILE` runs what was reviewed — and refuses when the files changed.

use crate::graph::PlanGraph;
use crate::render::Preview;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Marks the file's format; bumped when it changes incompatibly.
pub(crate) const SAVED_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedFile {
    /// Absolute path when saved.
    pub path: PathBuf,
    pub sha256: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedPlan {
    pub drplan_saved_plan: u32,
    pub plan: SavedFile,
    pub site: SavedFile,
    /// Parameter values given for this run (`--param`, `--params`), over the site's.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The preview as it was reviewed.
    pub preview: serde_json::Value,
}

/// Hex sha-256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The plan and site texts `graph` was built from, with their hashes.
pub(crate) fn texts(graph: &PlanGraph) -> (SavedFile, SavedFile) {
    let b = &graph.bound;
    (
        saved_file(&b.valid.doc.file.name, &b.valid.doc.file.text),
        saved_file(&b.site_doc.file.name, &b.site_doc.file.text),
    )
}

fn saved_file(name: &str, text: &str) -> SavedFile {
    let path = std::fs::canonicalize(name).unwrap_or_else(|_| PathBuf::from(name));
    SavedFile {
        path,
        sha256: sha256_hex(text.as_bytes()),
        text: text.to_string(),
    }
}

impl SavedPlan {
    pub(crate) fn capture(
        graph: &PlanGraph,
        preview: &Preview,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> SavedPlan {
        let (plan, site) = texts(graph);
        SavedPlan {
            drplan_saved_plan: SAVED_FORMAT,
            plan,
            site,
            params,
            preview: serde_json::to_value(preview).unwrap_or_default(),
        }
    }

    /// Write it privately (0600): a plan describes the site's hosts.
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_private(path, text.as_bytes())
    }
}

/// Replace `path` atomically with `bytes`, readable only by its owner (0600): what drplan
/// writes for the operator (a saved plan, a run's report) describes the site.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A fresh, unique temporary file: an old or planted one must never be reused.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag = sha256_hex(bytes);
    let tmp = path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), &tag[..8]));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
