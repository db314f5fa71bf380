//! `pinrelay replay`: re-queue dead letters, from the local relay's data dir ([`local`]) or, with
//! `--queue-url`, from an AWS dead-letter queue ([`aws`]). Both halves share [`Args`].

mod aws;
mod local;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

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
        (Some(_), Some(_)) => aws::run(&args).await,
        _ => local::run(&args).await,
    }
}

/// A progress bar of `total` items with this template, drawn only on a terminal.
fn progress(total: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}
