//! `pinrelay dead-letters`: the local relay's dead letters as a table, reasons in full.
//!
//! Reads `relay.db` in `--data-dir` (safe while `pinrelay serve` runs). Re-queue them with
//! `pinrelay replay`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::local::{open_existing, write_table};

/// Arguments of `pinrelay dead-letters`.
#[derive(clap::Args)]
pub struct Args {
    /// The local relay's data directory (as given to `pinrelay serve`).
    #[arg(long, default_value = ".pinrelay")]
    pub data_dir: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let letters = runtime.block_on(async {
        let queue = open_existing(&args.data_dir)?;
        anyhow::Ok(queue.dead_letters().await?)
    })?;
    let mut out = std::io::stdout().lock();
    if letters.is_empty() {
        writeln!(out, "no dead letters in {}", args.data_dir.display())?;
    } else {
        write_table(&mut out, &letters)?;
        writeln!(
            out,
            "\n{} dead letter(s); re-queue them with `pinrelay replay --data-dir {}`",
            letters.len(),
            args.data_dir.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
