//! `pinrelay replay --queue-url DLQ --to QUEUE` (to be written).

use std::process::ExitCode;

/// Re-drives an AWS dead-letter queue.
pub async fn run(_args: &crate::replay::Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
