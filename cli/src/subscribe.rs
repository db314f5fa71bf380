//! `pinrelay subscribe` (to be written).

use std::process::ExitCode;

/// Arguments of `pinrelay subscribe`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the command.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
