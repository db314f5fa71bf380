//! Secrets read once at start-up: the Shopify webhook secrets, the Pinterest access token and the
//! Shopify Admin API credentials, from environment variables (local use) or from AWS Secrets
//! Manager by ARN.
//!
//! Errors name the variable to fix; values are never logged or put in an error message.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{self, ConfigError, keys};
use crate::shopify::WebhookSecrets;
use crate::shopify::admin::AdminCredentials;

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Neither the plain variable nor the ARN variable is set.
    #[error(
        "neither {plain} nor {arn} is set: set {plain} to the value, or {arn} to a Secrets Manager ARN"
    )]
    Missing {
        /// The variable holding the value itself.
        plain: &'static str,
        /// The variable holding a Secrets Manager ARN.
        arn: &'static str,
    },
    /// Secrets Manager did not return the secret.
    #[error(
        "{key}: cannot read the secret from Secrets Manager (check the ARN and that the function's role may call secretsmanager:GetSecretValue on it): {detail}"
    )]
    Fetch {
        /// The variable holding the ARN.
        key: &'static str,
        /// The SDK error.
        detail: String,
    },
    /// The secret exists but its value is unusable.
    #[error("{key}: the secret's value is {problem}; expected {expected}")]
    Invalid {
        /// The variable that names the secret (or holds it).
        key: &'static str,
        /// What is wrong, without the value.
        problem: &'static str,
        /// The accepted shapes.
        expected: &'static str,
    },
    /// The environment's Admin API credentials are half set.
    #[error(transparent)]
    Environment(#[from] ConfigError),
}

const WEBHOOK_SHAPE: &str = "a JSON array of strings (current secret first) or a plain string";
const TOKEN_SHAPE: &str = r#"a plain string or JSON {"access_token": "..."}"#;
const ADMIN_SHAPE: &str = r#"an Admin API access token (plain, or JSON {"access_token": "..."}), or a Dev Dashboard app's JSON {"client_id": "...", "client_secret": "..."}"#;

/// Loads the Shopify webhook secrets: `SHOPIFY_WEBHOOK_SECRETS` if set, else the secret named by
/// `SHOPIFY_WEBHOOK_SECRET_ARN`.
///
/// # Errors
/// [`SecretsError`] naming the variable when neither is set, the fetch fails, or the value is
/// empty or malformed.
pub async fn webhook_secrets(client: &Client) -> Result<WebhookSecrets, SecretsError> {
    if let Some(list) = config::var(keys::SHOPIFY_WEBHOOK_SECRETS) {
        return non_empty(
            WebhookSecrets::from_comma_separated(&list),
            keys::SHOPIFY_WEBHOOK_SECRETS,
        );
    }
    let arn = config::var(keys::SHOPIFY_WEBHOOK_SECRET_ARN).ok_or(SecretsError::Missing {
        plain: keys::SHOPIFY_WEBHOOK_SECRETS,
        arn: keys::SHOPIFY_WEBHOOK_SECRET_ARN,
    })?;
    webhook_secrets_from_arn(client, &arn).await
}

/// Fetches and parses the webhook secrets stored at `arn` (errors name
/// `SHOPIFY_WEBHOOK_SECRET_ARN`).
///
/// # Errors
/// [`SecretsError::Fetch`] or [`SecretsError::Invalid`].
pub async fn webhook_secrets_from_arn(
    client: &Client,
    arn: &str,
) -> Result<WebhookSecrets, SecretsError> {
    let value = fetch(client, arn, keys::SHOPIFY_WEBHOOK_SECRET_ARN).await?;
    let secrets = parse_webhook_secrets(&value, keys::SHOPIFY_WEBHOOK_SECRET_ARN)?;
    tracing::info!(
        source = "secrets_manager",
        count = secrets.len(),
        "loaded Shopify webhook secrets"
    );
    Ok(secrets)
}

/// Loads the Pinterest access token: `PINTEREST_ACCESS_TOKEN` if set, else the secret named by
/// `PINTEREST_ACCESS_TOKEN_SECRET_ARN`.
///
/// # Errors
/// [`SecretsError`] naming the variable when neither is set, the fetch fails, or the value is
/// empty or malformed.
pub async fn pinterest_token(client: &Client) -> Result<SecretString, SecretsError> {
    if let Some(token) = config::var(keys::PINTEREST_ACCESS_TOKEN) {
        return Ok(SecretString::from(token));
    }
    let arn =
        config::var(keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN).ok_or(SecretsError::Missing {
            plain: keys::PINTEREST_ACCESS_TOKEN,
            arn: keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN,
        })?;
    pinterest_token_from_arn(client, &arn).await
}

/// Fetches and parses the Pinterest token stored at `arn` (errors name
/// `PINTEREST_ACCESS_TOKEN_SECRET_ARN`).
///
/// # Errors
/// [`SecretsError::Fetch`] or [`SecretsError::Invalid`].
pub async fn pinterest_token_from_arn(
    client: &Client,
    arn: &str,
) -> Result<SecretString, SecretsError> {
    let value = fetch(client, arn, keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN).await?;
    let token = parse_pinterest_token(&value, keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN)?;
    tracing::info!(source = "secrets_manager", "loaded Pinterest access token");
    Ok(token)
}

/// Loads the Shopify Admin API credentials the watch uses: `SHOPIFY_ADMIN_TOKEN`, or
/// `SHOPIFY_CLIENT_ID` with `SHOPIFY_CLIENT_SECRET`, if set; else the secret named by
/// `SHOPIFY_ADMIN_TOKEN_SECRET_ARN` ([`parse_admin_credentials`]).
///
/// # Errors
/// [`SecretsError`] naming the variable when none is set, the client id or secret is set without
/// the other, the fetch fails, or the value is empty or malformed (a secret the stack created and
/// nobody filled yet is empty).
pub async fn shopify_admin_credentials(client: &Client) -> Result<AdminCredentials, SecretsError> {
    if let Some(credentials) = config::admin_credentials()? {
        return Ok(credentials);
    }
    let arn = config::var(keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN).ok_or(SecretsError::Missing {
        plain: keys::SHOPIFY_ADMIN_TOKEN,
        arn: keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN,
    })?;
    let value = fetch(client, &arn, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN).await?;
    let credentials = parse_admin_credentials(&value, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN)?;
    tracing::info!(
        source = "secrets_manager",
        client_credentials = credentials.renews(),
        "loaded Shopify Admin API credentials"
    );
    Ok(credentials)
}

/// Reads an Admin API credentials value: a token (plain, or JSON `{"access_token": "..."}`), or
/// a Dev Dashboard app's JSON `{"client_id": "...", "client_secret": "..."}`.
///
/// # Errors
/// [`SecretsError::Invalid`] (naming `key`) for empty values, an empty id or secret, and JSON of
/// another shape.
pub fn parse_admin_credentials(
    value: &str,
    key: &'static str,
) -> Result<AdminCredentials, SecretsError> {
    #[derive(serde::Deserialize)]
    struct Client {
        client_id: String,
        client_secret: String,
    }
    let value = value.trim();
    let invalid = |problem| SecretsError::Invalid {
        key,
        problem,
        expected: ADMIN_SHAPE,
    };
    if !value.starts_with('{') || value.contains("\"access_token\"") {
        return parse_pinterest_token(value, key)
            .map(AdminCredentials::Token)
            .map_err(|e| match e {
                SecretsError::Invalid { problem, .. } => invalid(problem),
                e => e,
            });
    }
    let client: Client = serde_json::from_str(value).map_err(|_| {
        invalid("a JSON object without string \"client_id\" and \"client_secret\" (or \"access_token\")")
    })?;
    let (client_id, client_secret) = (client.client_id.trim(), client.client_secret.trim());
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(invalid("JSON with an empty client_id or client_secret"));
    }
    Ok(AdminCredentials::ClientCredentials {
        client_id: client_id.to_owned(),
        client_secret: SecretString::from(client_secret.to_owned()),
    })
}

/// Reads a webhook secret value: a JSON array of strings, or one plain string.
///
/// # Errors
/// [`SecretsError::Invalid`] (naming `key`) for empty values and JSON of another shape.
pub fn parse_webhook_secrets(
    value: &str,
    key: &'static str,
) -> Result<WebhookSecrets, SecretsError> {
    let value = value.trim();
    let secrets = if value.starts_with('[') {
        let list: Vec<String> = serde_json::from_str(value).map_err(|_| SecretsError::Invalid {
            key,
            problem: "JSON but not an array of strings",
            expected: WEBHOOK_SHAPE,
        })?;
        WebhookSecrets::new(
            list.into_iter()
                .map(|s| SecretString::from(s.trim().to_owned())),
        )
    } else if value.starts_with('{') {
        return Err(SecretsError::Invalid {
            key,
            problem: "a JSON object",
            expected: WEBHOOK_SHAPE,
        });
    } else {
        WebhookSecrets::new([SecretString::from(value.to_owned())])
    };
    non_empty(secrets, key)
}

/// Reads a Pinterest token value: a plain string, or JSON `{"access_token": "..."}`.
///
/// # Errors
/// [`SecretsError::Invalid`] (naming `key`) for empty values and JSON of another shape.
pub fn parse_pinterest_token(value: &str, key: &'static str) -> Result<SecretString, SecretsError> {
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
    }
    let value = value.trim();
    let token = if value.starts_with('{') {
        serde_json::from_str::<Token>(value)
            .map_err(|_| SecretsError::Invalid {
                key,
                problem: "a JSON object without a string \"access_token\"",
                expected: TOKEN_SHAPE,
            })?
            .access_token
    } else {
        value.to_owned()
    };
    let token = SecretString::from(token.trim().to_owned());
    if token.expose_secret().is_empty() {
        return Err(SecretsError::Invalid {
            key,
            problem: "empty",
            expected: TOKEN_SHAPE,
        });
    }
    Ok(token)
}

fn non_empty(secrets: WebhookSecrets, key: &'static str) -> Result<WebhookSecrets, SecretsError> {
    if secrets.is_empty() {
        return Err(SecretsError::Invalid {
            key,
            problem: "empty",
            expected: WEBHOOK_SHAPE,
        });
    }
    Ok(secrets)
}

async fn fetch(client: &Client, arn: &str, key: &'static str) -> Result<String, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch {
            key,
            detail: DisplayErrorContext(&e).to_string(),
        })?;
    output.secret_string.ok_or(SecretsError::Invalid {
        key,
        problem: "binary (SecretBinary) or absent",
        expected: "a SecretString",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "SHOPIFY_WEBHOOK_SECRET_ARN";

    #[test]
    fn reads_a_json_array_of_secrets_in_order() {
        let s = parse_webhook_secrets(r#"["new", " old "]"#, KEY).unwrap();
        assert_eq!(s.len(), 2);
        let body = b"{}";
        let old = crate::shopify::sign(b"old", body);
        let mut h = http::HeaderMap::new();
        h.insert("x-shopify-hmac-sha256", old.parse().unwrap());
        assert_eq!(crate::shopify::verify(&h, body, &s), Ok(1));
    }

    #[test]
    fn reads_a_plain_string_as_one_secret() {
        let s = parse_webhook_secrets("  shpss_abc\n", KEY).unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn refuses_empty_or_misshapen_webhook_secrets_naming_the_variable() {
        for bad in ["", "  ", "[]", r#"[""]"#, "[1, 2]", r#"{"secret": "x"}"#] {
            let e = parse_webhook_secrets(bad, KEY).unwrap_err();
            assert!(e.to_string().starts_with(KEY), "{bad:?}: {e}");
        }
    }

    #[test]
    fn reads_a_token_plain_or_as_json() {
        let t = parse_pinterest_token("pina_1", "K").unwrap();
        assert_eq!(t.expose_secret(), "pina_1");
        let t = parse_pinterest_token(r#"{"access_token": "pina_2", "other": 1}"#, "K").unwrap();
        assert_eq!(t.expose_secret(), "pina_2");
    }

    #[test]
    fn reads_admin_credentials_as_a_token_or_a_client_id_and_secret() {
        let token = parse_admin_credentials(" shpat_1\n", "K").unwrap();
        assert!(matches!(&token, AdminCredentials::Token(t) if t.expose_secret() == "shpat_1"));
        let token = parse_admin_credentials(r#"{"access_token": "shpat_2"}"#, "K").unwrap();
        assert!(matches!(&token, AdminCredentials::Token(t) if t.expose_secret() == "shpat_2"));
        let client =
            parse_admin_credentials(r#"{"client_id": " cid ", "client_secret": "shpss_x"}"#, "K")
                .unwrap();
        match client {
            AdminCredentials::ClientCredentials {
                client_id,
                client_secret,
            } => {
                assert_eq!(client_id, "cid");
                assert_eq!(client_secret.expose_secret(), "shpss_x");
            }
            other => panic!("{other:?}"),
        }
        // What `AdminCredentials::to_secret_string` stores reads back.
        let stored = AdminCredentials::ClientCredentials {
            client_id: "cid".into(),
            client_secret: SecretString::from("shpss_y"),
        }
        .to_secret_string();
        assert!(
            parse_admin_credentials(stored.expose_secret(), "K")
                .unwrap()
                .renews()
        );
    }

    #[test]
    fn refuses_bad_admin_credentials_without_echoing_them() {
        for bad in [
            "",
            r#"{"client_id": "cid"}"#,
            r#"{"client_id": "", "client_secret": "shpss_secret"}"#,
            r#"{"client_secret": "shpss_secret"}"#,
            r#"{"access_token": ""}"#,
        ] {
            let e = parse_admin_credentials(bad, "K").unwrap_err();
            assert!(e.to_string().starts_with("K:"), "{bad:?}: {e}");
            assert!(e.to_string().contains("client_id"), "{bad:?}: {e}");
            assert!(!e.to_string().contains("shpss_secret"));
        }
    }

    #[test]
    fn refuses_bad_tokens_without_echoing_them() {
        for bad in ["", r#"{"token": "pina_secret"}"#, r#"{"access_token": ""}"#] {
            let e = parse_pinterest_token(bad, "K").unwrap_err();
            assert!(e.to_string().starts_with("K:"));
            assert!(!e.to_string().contains("pina_secret"));
        }
    }
}
