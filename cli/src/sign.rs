//! `pinrelay sign`: prints the `X-Shopify-Hmac-Sha256` value Shopify would send for a body, to
//! craft test deliveries (`curl -H "X-Shopify-Hmac-Sha256: $(pinrelay sign body.json)"`), with the
//! key from `SHOPIFY_WEBHOOK_SECRETS` (the first, current one), never a flag.
//!
//! The HMAC covers the exact bytes, trailing newline included: sign the file you send.

use std::path::PathBuf;
use std::process::ExitCode;

use secrecy::ExposeSecret as _;

/// Exit code of invalid input.
const INVALID: u8 = 2;

/// Arguments of `pinrelay sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The body to sign, byte for byte; standard input when absent.
    pub file: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = match crate::input::token(
        pinrelay::config::keys::SHOPIFY_WEBHOOK_SECRETS,
        "the Shopify app's client secret (the webhook signing key)",
    ) {
        Ok(secrets) => secrets,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(INVALID));
        }
    };
    // During a rotation the list is `current,old`: Shopify signs with the current one.
    let current = key
        .expose_secret()
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = crate::input::read_body(args.file.as_deref());
    match body {
        Ok(body) => {
            println!("{}", pinrelay::shopify::sign(current.as_bytes(), &body));
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(INVALID))
        }
    }
}
