//! `pinrelay replay`: re-queue dead letters, from the local relay's data dir or, with
//! `--queue-url`, from an AWS dead-letter queue (see [`crate::replay_aws`]).

use std::io::{IsTerminal as _, Write as _};
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
        (Some(_), Some(_)) => crate::replay_aws::run(&args).await,
        _ => run_local(&args).await,
    }
}

/// Re-queues the local relay's dead letters (or lists them with `--dry-run`).
async fn run_local(args: &Args) -> anyhow::Result<ExitCode> {
    let queue = crate::dead_letters::open_existing(&args.data_dir)?;
    let letters = queue.dead_letters().await?;
    let mut out = std::io::stdout().lock();
    if letters.is_empty() {
        writeln!(out, "no dead letters in {}", args.data_dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        crate::dead_letters::write_table(&mut out, &letters)?;
        writeln!(
            out,
            "\n{} dead letter(s) would be re-queued (--dry-run: nothing changed)",
            letters.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(letters.len() as u64).with_style(
            ProgressStyle::with_template("re-queuing {bar:40} {pos}/{len} dead letters")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut requeued = 0u64;
    for letter in &letters {
        if queue.requeue_dead_letter(letter.id).await? {
            requeued += 1;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    writeln!(
        out,
        "re-queued {requeued} dead letter(s) from {}; `pinrelay serve --data-dir {}` dispatches them",
        args.data_dir.display(),
        args.data_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
