//! `pinrelay replay`: re-queue dead letters, from the local relay's data dir or, with
//! `--queue-url`, from an AWS dead-letter queue (see [`crate::replay_aws`]).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pinrelay replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The local relay's data directory.
    #[arg(long, default_value = ".pinrelay", conflicts_with = "queue_url")]
    pub data_dir: PathBuf,
    /// AWS mode: the dead-letter queue to drain.
    #[arg(long, requires = "to")]
    pub queue_url: Option<String>,
    /// AWS mode: the queue to send the messages back to.
    #[arg(long)]
    pub to: Option<String>,
    /// AWS mode: skip dead letters older than this (Pinterest rejects events over 7 days).
    #[arg(long, default_value = "7d")]
    pub max_age: String,
    /// Show what would be replayed without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match (&args.queue_url, &args.to) {
        (Some(_), Some(_)) => crate::replay_aws::run(&args).await,
        _ => run_local(&args),
    }
}

fn run_local(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
