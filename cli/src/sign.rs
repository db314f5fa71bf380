//! `pinrelay sign`: prints the `X-Shopify-Hmac-Sha256` value Shopify would send for a body, to
//! craft test deliveries (`curl -H "X-Shopify-Hmac-Sha256: $(pinrelay sign --secret s body.json)"`).
//!
//! The HMAC covers the exact bytes, trailing newline included: sign the file you send.

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code of invalid input.
const INVALID: u8 = 2;

/// Arguments of `pinrelay sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The Shopify app's client secret (the webhook signing key).
    #[arg(long)]
    pub secret: String,
    /// The body to sign, byte for byte; standard input when absent.
    pub file: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.secret.is_empty() {
        eprintln!("error: --secret is empty; pass the app's client secret");
        return Ok(ExitCode::from(INVALID));
    }
    let body = crate::input::read_body(args.file.as_deref());
    match body {
        Ok(body) => {
            println!("{}", pinrelay::shopify::sign(args.secret.as_bytes(), &body));
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(INVALID))
        }
    }
}
