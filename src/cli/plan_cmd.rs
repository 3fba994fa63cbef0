//! `drplan plan PLAN --site SITE [--format …] [--out FILE]`: the preview.

use super::{Failure, Global, ParamFlags, load_graph, with_params};
use crate::render;
use crate::saved::SavedPlan;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// The site to bind it to.
    #[arg(long)]
    pub site: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Save the exact plan (with the sha-256 of both files) to apply later.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub params: ParamFlags,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Dot,
    Mermaid,
}

pub(super) fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let graph = load_graph(&args.plan, &args.site)?;
    let params = args.params.values(&graph)?;
    let graph = with_params(graph, &params)?;
    let preview = render::preview_json(&graph)?;
    // Straight to stdout through one buffer: a 10,000-step preview is megabytes of JSON, and
    // a closed pipe is an error to report, not a panic.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &preview)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => out.write_all(render::text(&preview, global.stdout_color()).as_bytes()),
        Format::Dot => out.write_all(render::dot(&preview).as_bytes()),
        Format::Mermaid => out.write_all(render::mermaid(&preview).as_bytes()),
    }
    .and_then(|()| out.flush())
    .map_err(|source| Failure::Write {
        path: "stdout".into(),
        source,
    })?;
    drop(out);
    if let Some(out) = &args.out {
        let saved = SavedPlan::capture(&graph, &preview, params);
        saved.write(out).map_err(|source| Failure::Write {
            path: out.clone(),
            source,
        })?;
        if !global.quiet {
            eprintln!(
                "Saved this plan to {}. Apply exactly it with: drplan apply {}",
                out.display(),
                out.display()
            );
        }
    }
    // The process ends here.
    super::validate::exiting((graph, preview));
    Ok(())
}
