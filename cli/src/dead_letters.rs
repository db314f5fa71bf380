//! `pinrelay dead_letters` (to be written).

use std::process::ExitCode;

/// Arguments of `pinrelay dead_letters`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
