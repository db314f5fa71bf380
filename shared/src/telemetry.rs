//! `tracing` initialization shared by the Lambdas and the CLI: JSON lines, level from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output (Lambda: CloudWatch Logs).
    Stdout,
    /// Standard error (the CLI, whose stdout carries data).
    Stderr,
}

/// Installs a JSON subscriber once; later calls are ignored. Default level `info`.
pub fn init(output: Output) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .flatten_event(true);
    let _ = match output {
        Output::Stdout => builder.with_writer(std::io::stdout).try_init(),
        Output::Stderr => builder.with_writer(std::io::stderr).try_init(),
    };
}
