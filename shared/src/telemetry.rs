//! `tracing` initialization shared by the Lambdas and the CLI: JSON lines, level from `RUST_LOG`.
//!
//! One line is one JSON object: `timestamp`, `level` (which Lambda's log-level filter reads),
//! `message` and the event's fields, flattened. No span list: the only span in a Lambda is the
//! runtime's, whose request and trace ids would add about 190 bytes to every line, more than the
//! line itself; the lines carry the webhook and event ids instead.
//!
//! `RUST_LOG` takes a level (`info`, `INFO`) or `target=level` directives separated by commas
//! (`pinrelay=debug,info`); span and field filters are not supported (they would link a regex
//! engine into every bundle). A value that does not parse means `info`.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output (Lambda: CloudWatch Logs).
    Stdout,
    /// Standard error (the CLI, whose stdout carries data).
    Stderr,
}

/// The filter a `RUST_LOG` value stands for: its directives, or `info` when absent or invalid.
pub fn level_filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Installs a JSON subscriber once; later calls are ignored. Default level `info`.
pub fn init(output: Output) {
    let filter = level_filter(std::env::var("RUST_LOG").ok().as_deref());
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .flatten_event(true);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match output {
        Output::Stdout => registry.with(layer.with_writer(std::io::stdout)).try_init(),
        Output::Stderr => registry.with(layer.with_writer(std::io::stderr)).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn a_bare_level_in_either_case_sets_the_default() {
        for v in ["info", "INFO", " Info "] {
            let t = level_filter(Some(v));
            assert_eq!(t.default_level(), Some(LevelFilter::INFO), "{v}");
            assert!(!t.would_enable("pinrelay", &Level::DEBUG));
        }
        assert!(level_filter(Some("DEBUG")).would_enable("pinrelay", &Level::DEBUG));
    }

    #[test]
    fn target_directives_apply_per_target() {
        let t = level_filter(Some("pinrelay=debug,warn"));
        assert!(t.would_enable("pinrelay::dispatch", &Level::DEBUG));
        assert!(!t.would_enable("hyper", &Level::INFO));
        assert!(t.would_enable("hyper", &Level::WARN));
    }

    #[test]
    fn a_missing_or_invalid_value_means_info() {
        for v in [
            None,
            Some(""),
            Some("pinrelay=loud"),
            Some("[span{x=1}]=debug"),
        ] {
            let t = level_filter(v);
            assert_eq!(t.default_level(), Some(LevelFilter::INFO), "{v:?}");
        }
    }
}
