//! Reading a command's input: a file, or standard input.

use std::io::Read as _;
use std::path::Path;

use pinrelay::config::{self, keys};
use pinrelay::shopify::admin::AdminCredentials;
use secrecy::SecretString;

/// A token from its environment variable: the CLI takes none as a flag, so tokens stay out of
/// shell history and `ps`. The error is the one-line message to print.
pub fn token(var: &'static str, what: &str) -> Result<SecretString, String> {
    config::var(var).map(SecretString::from).ok_or_else(|| {
        format!(
            "set {var} to {what}; tokens are read from the environment, never from a flag, so they stay out of shell history and `ps`"
        )
    })
}

/// The Admin API credentials from the environment: `SHOPIFY_ADMIN_TOKEN` (`what` says which
/// token), or `SHOPIFY_CLIENT_ID` with `SHOPIFY_CLIENT_SECRET` (a Dev Dashboard app's, whose tokens
/// are minted and renewed). The error is the one-line message to print.
pub fn admin_credentials(what: &str) -> Result<AdminCredentials, String> {
    match config::admin_credentials() {
        Ok(Some(credentials)) => Ok(credentials),
        Ok(None) => Err(format!(
            "set {} to {what}, or {} and {} to a Dev Dashboard app's client id and secret; credentials are read from the environment, never from a flag, so they stay out of shell history and `ps`",
            keys::SHOPIFY_ADMIN_TOKEN,
            keys::SHOPIFY_CLIENT_ID,
            keys::SHOPIFY_CLIENT_SECRET
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads the raw bytes of `file`, or of standard input when none is given; the error is the one-line
/// message to print.
pub fn read_body(file: Option<&Path>) -> Result<Vec<u8>, String> {
    match file {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(body)
        }
    }
}

/// The API base URLs, hidden options that tests point at local fakes.
#[derive(clap::Args, Clone)]
pub struct Endpoints {
    /// Base URL of the Admin API instead of https://{shop} (tests).
    #[arg(long, hide = true)]
    pub admin_url_base: Option<String>,
    /// Base URL of the Pinterest API (tests).
    #[arg(
        long,
        hide = true,
        env = "PINTEREST_API_URL",
        default_value = "https://api.pinterest.com"
    )]
    pub pinterest_api_url: String,
    /// Base URL where the relay answers, instead of the one its webhook URL names (tests: a local
    /// serve standing in for a stack's Function URL).
    #[arg(long, hide = true)]
    pub relay_url_base: Option<String>,
}

/// One hidden line from the terminal (a secret: not echoed, not in shell history).
///
/// # Errors
/// The terminal cannot be read.
pub fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let term = console::Term::stderr();
    term.write_str(prompt)?;
    Ok(term.read_secure_line()?)
}
