//! `drplan schema [plan|site]`

use super::Failure;
use crate::schema::{self, Kind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema.
    #[arg(value_enum, default_value = "plan")]
    pub kind: Kind,
}

pub fn run(args: Args) -> Result<(), Failure> {
    print!("{}", schema::published_text(args.kind));
    Ok(())
}
