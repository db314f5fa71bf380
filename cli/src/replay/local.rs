//! `pinrelay replay --data-dir DIR`: re-queues the local relay's dead letters, as aimed by
//! `--reason`, `--order` and `--in-doubt` ([`super::Filter`]).

use std::io::Write as _;
use std::process::ExitCode;

use super::{Args, Filter};

/// Re-queues the local relay's dead letters (or lists them with `--dry-run`).
pub(super) async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let queue = crate::local::open_existing(&args.data_dir)?;
    let letters = queue.dead_letters().await?;
    let mut out = std::io::stdout().lock();
    if letters.is_empty() {
        writeln!(out, "no dead letters in {}", args.data_dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let filter = Filter::from(args);
    let mut chosen = Vec::new();
    let mut left = Vec::new();
    for letter in &letters {
        match filter.replay(&letter.body, &letter.attributes, Some(&letter.reason)) {
            Ok(attributes) => chosen.push((letter, attributes)),
            Err(why) => left.push((letter, why)),
        }
    }
    for (letter, why) in &left {
        writeln!(
            out,
            "left  {}  {}  ({})",
            letter.id,
            letter.reason,
            why.describe()
        )?;
    }
    if args.dry_run {
        let rows: Vec<_> = chosen.iter().map(|(l, _)| (*l).clone()).collect();
        crate::local::write_table(&mut out, &rows)?;
        writeln!(
            out,
            "\n{} dead letter(s) would be re-queued, {} left (--dry-run: nothing changed)",
            chosen.len(),
            left.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let progress = super::progress(
        chosen.len() as u64,
        "re-queuing {bar:40} {pos}/{len} dead letters",
    );
    let mut requeued = 0u64;
    for (letter, attributes) in &chosen {
        if queue.requeue_dead_letter_as(letter.id, attributes).await? {
            requeued += 1;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    writeln!(
        out,
        "re-queued {requeued} dead letter(s) from {}, left {}; `pinrelay serve --data-dir {}` dispatches them",
        args.data_dir.display(),
        left.len(),
        args.data_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
