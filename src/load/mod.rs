//! Files → JSON value + source map. YAML errors become located diagnostics.
//!
//! This stage knows nothing about plans or actions: it reads text and remembers where
//! every node came from, so later stages can point at it.
mod document;
mod node;

pub use document::{Document, SourceMap, child};
pub use node::{Key, Kind, Node, Span};

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use std::path::Path;

/// Read and parse a YAML file.
pub fn read(path: &Path) -> Result<Document, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            "drplan::io::read",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Document::parse(SourceFile::new(path.display().to_string(), text))
}
