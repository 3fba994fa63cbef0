//! Files → JSON value + source map. YAML errors become located diagnostics.
//!
//! This stage knows nothing about plans or actions: it reads text and remembers where
//! every node came from, so later stages can point at it.
mod document;
mod fast;
mod node;

pub use document::{Document, SourceMap, child, push_token};
pub use node::{Key, Kind, Node, Span};

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use std::path::Path;

/// The largest plan, site, checks, saved plan or secret file drplan reads: ten times the
/// largest real plan we know, and small enough that `validate /dev/zero` ends at once.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Read a text file of at most `MAX_FILE` bytes. Too large, or not UTF-8, is an error that
/// says so (with the line and column of the first bad byte). A file that a user other than
/// you or root could have written is refused (`trust::check_input`) unless
/// `--allow-insecure-files` was given.
pub fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    crate::trust::check_input(path, Some(&meta)).map_err(|e| e.to_string_with_help())?;
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "{} is larger than {} MiB; drplan reads plans, sites and secrets only up to that size",
            path.display(),
            MAX_FILE / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column =
            String::from_utf8_lossy(good.rsplit(|&b| b == b'\n').next().unwrap_or_default())
                .chars()
                .count()
                + 1;
        format!(
            "{}:{line}:{column}: not UTF-8 text (byte {}); plans and sites are UTF-8",
            path.display(),
            good.len()
        )
    })
}

/// Read and parse a YAML file.
pub fn read(path: &Path) -> Result<Document, Diagnostics> {
    let text = read_text(path).map_err(|e| Diagnostic::new("drplan::io::read", e))?;
    Document::parse(SourceFile::new(path.display().to_string(), text))
}

/// Run both YAML readers on `text` (for the differential tests and the fuzz target):
/// `Ok(true)` when the fast reader accepts it and builds exactly serde-saphyr's tree (every
/// value, key text and span), `Ok(false)` when it declines, and `Err` saying how they differ
/// otherwise (serde-saphyr failing on a text the fast reader accepted included).
pub fn readers_agree(text: &str) -> Result<bool, String> {
    let Some(fast) = fast::parse(text) else {
        return Ok(false);
    };
    match document::saphyr(text) {
        Ok(slow) if slow == fast => Ok(true),
        Ok(slow) => Err(format!(
            "the readers differ on {text:?}:\nfast:        {fast:?}\nserde-saphyr: {slow:?}"
        )),
        Err(e) => Err(format!(
            "the fast reader accepted {text:?} as {fast:?}; serde-saphyr says: {e}"
        )),
    }
}
