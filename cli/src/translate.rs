//! `pinrelay translate` (to be written).

use std::process::ExitCode;

/// Arguments of `pinrelay translate`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
