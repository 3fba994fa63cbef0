//! `drplan report RUN [--format html|md|json] [--out FILE]`: a run's evidence (see
//! `crate::evidence`) as one self-contained file for the change ticket: the same as `drplan
//! serve` shows on `/runs/RUN`, with nothing to fetch (styles inline, charts as SVG, no
//! script). Read-only: the run is not opened for writing.

use super::{Failure, Global, session};
use crate::serve::pages;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// One HTML page.
    Html,
    /// Markdown.
    Md,
    /// The evidence as JSON (as `/api/runs/RUN` serves it).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run (its id, as `drplan status` lists it).
    pub run: String,
    #[arg(long, value_enum, default_value = "html")]
    pub format: ReportFormat,
    /// Write it to FILE (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub(super) fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let (e, _) = session::evidence(&*session::store(global)?, &args.run)?;
    let mut text = match args.format {
        ReportFormat::Html => pages::run(&e, 0, false, true),
        ReportFormat::Md => pages::markdown(&e),
        ReportFormat::Json => serde_json::to_string_pretty(&e)
            .map_err(|e| Failure::io("encode the report")(e.into()))?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.out {
        Some(path) => {
            crate::saved::write_private(path, text.as_bytes()).map_err(|source| Failure::Write {
                path: path.clone(),
                source,
            })
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
    }
}
