//! `pinrelay replay --data-dir DIR`: re-queues the local relay's dead letters.

use std::io::Write as _;
use std::process::ExitCode;

use super::Args;

/// Re-queues the local relay's dead letters (or lists them with `--dry-run`).
pub(super) async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let queue = crate::local::open_existing(&args.data_dir)?;
    let letters = queue.dead_letters().await?;
    let mut out = std::io::stdout().lock();
    if letters.is_empty() {
        writeln!(out, "no dead letters in {}", args.data_dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        crate::local::write_table(&mut out, &letters)?;
        writeln!(
            out,
            "\n{} dead letter(s) would be re-queued (--dry-run: nothing changed)",
            letters.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let progress = super::progress(
        letters.len() as u64,
        "re-queuing {bar:40} {pos}/{len} dead letters",
    );
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
