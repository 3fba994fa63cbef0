//! `drplan schema [plan|site]`

use super::Failure;
use crate::schema::{self, Kind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema.
    #[arg(value_enum, default_value = "plan")]
    pub kind: Which,
}

/// The documents with a schema.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Which {
    Plan,
    Site,
}

pub(super) fn run(args: Args) -> Result<(), Failure> {
    let kind = match args.kind {
        Which::Plan => Kind::Plan,
        Which::Site => Kind::Site,
    };
    print!("{}", schema::published_text(kind));
    Ok(())
}
