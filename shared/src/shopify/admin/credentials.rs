//! How the relay authenticates to the Admin API: [`AdminCredentials`], and the [`TokenSource`]
//! every query of one [`super::AdminApi`] (and its clones) gets its token from.
//!
//! A legacy custom app gives a static `shpat_` token, used as is. A Dev Dashboard app of the
//! merchant's own organization (the only kind a new store can make since 2026-01-01) gives a client
//! id and secret instead; the source trades them for a token with the client-credentials grant,
//! `POST {base}/admin/oauth/access_token` with `{"grant_type": "client_credentials", "client_id",
//! "client_secret"}`, answered `{"access_token", "scope", "expires_in"}` (86399 s today). It keeps
//! the token until [`REFRESH_MARGIN`] before it expires, and drops it when Shopify answers 401, so
//! the next call mints a new one. Secrets and tokens are [`SecretString`]s, never logged.
//!
//! This module does not read the environment or Secrets Manager: `config` and `secrets` build the
//! [`AdminCredentials`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::transport::{AdminError, Exchange, RetryPolicy, exchange};
use crate::retry::Failure;

/// How long before a minted token's expiry it is renewed (or half its lifetime, if shorter).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Where the token source reads the time: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How the relay authenticates to a shop's Admin API.
#[derive(Debug, Clone)]
pub enum AdminCredentials {
    /// A static Admin API access token (`shpat_…`, a legacy custom app's), used as is.
    Token(SecretString),
    /// A Dev Dashboard app's client id and secret: tokens are minted with the client-credentials
    /// grant and renewed before they expire.
    ClientCredentials {
        /// The app's client id (not a secret; it names the app).
        client_id: String,
        /// The app's client secret.
        client_secret: SecretString,
    },
}

impl AdminCredentials {
    /// Whether tokens are minted (and so renewed), rather than given.
    pub fn renews(&self) -> bool {
        matches!(self, Self::ClientCredentials { .. })
    }

    /// The form Secrets Manager keeps: the token itself, or JSON
    /// `{"client_id": "...", "client_secret": "..."}` (what `secrets::parse_admin_credentials`
    /// reads back).
    pub fn to_secret_string(&self) -> SecretString {
        match self {
            Self::Token(token) => token.clone(),
            Self::ClientCredentials {
                client_id,
                client_secret,
            } => SecretString::from(
                json!({"client_id": client_id, "client_secret": client_secret.expose_secret()})
                    .to_string(),
            ),
        }
    }
}

impl From<SecretString> for AdminCredentials {
    fn from(token: SecretString) -> Self {
        Self::Token(token)
    }
}

/// A token minted from client credentials, and when it stops working.
#[derive(Clone)]
struct Minted {
    token: SecretString,
    /// `None` when Shopify gave no `expires_in`: kept until a 401.
    expires_at: Option<DateTime<Utc>>,
    /// How long before `expires_at` it is renewed.
    margin: chrono::Duration,
}

impl Minted {
    fn fresh_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at - now > self.margin)
    }
}

/// The tokens of one [`AdminCredentials`]: the static token, or minted ones cached until shortly
/// before they expire. Clones share the cache; minting holds its lock, so concurrent calls mint
/// once.
#[derive(Clone)]
pub struct TokenSource {
    credentials: Arc<AdminCredentials>,
    token_url: Arc<str>,
    clock: Clock,
    cached: Arc<Mutex<Option<Minted>>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for `credentials` minting at `token_url`
    /// (`https://{shop}/admin/oauth/access_token`), on the system clock.
    pub fn new(credentials: AdminCredentials, token_url: String) -> Self {
        Self {
            credentials: Arc::new(credentials),
            token_url: token_url.into(),
            clock: Arc::new(Utc::now),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The same source on `clock`, with an empty cache.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self {
            clock,
            cached: Arc::new(Mutex::new(None)),
            ..self
        }
    }

    /// Whether its tokens are minted, so a 401 is worth one renewal.
    pub fn renews(&self) -> bool {
        self.credentials.renews()
    }

    /// A token good for one call: the static one, the cached one while it has more than its margin
    /// left, else a new one (one attempt of `policy`, numbered `attempt`).
    ///
    /// # Errors
    /// [`Failure::Fatal`] for a refused grant ([`AdminError::InvalidClient`],
    /// [`AdminError::ShopNotPermitted`], [`AdminError::GrantRefused`]) or an unexpected answer;
    /// [`Failure::Retry`] for 429, 5xx and network failures of the token endpoint.
    pub(super) async fn token(
        &self,
        client: &reqwest::Client,
        policy: &RetryPolicy,
        attempt: u32,
    ) -> Result<SecretString, Failure<AdminError>> {
        let (client_id, client_secret) = match &*self.credentials {
            AdminCredentials::Token(token) => return Ok(token.clone()),
            AdminCredentials::ClientCredentials {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let mut cached = self.cached.lock().await;
        let now = (self.clock)();
        if let Some(minted) = cached.as_ref().filter(|m| m.fresh_at(now)) {
            return Ok(minted.token.clone());
        }
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret.expose_secret(),
        });
        let url = &*self.token_url;
        let request = client.post(url).json(&body);
        let (status, answer) = match exchange(request, url, policy.attempt_timeout).await? {
            Exchange::Answered { status, body } => (status, body),
            Exchange::Retry(retry) => return Err(policy.failure(retry, attempt)),
        };
        let minted = read_grant(status, &answer, url, now)?;
        tracing::info!(
            expires_at = ?minted.expires_at,
            "minted a Shopify Admin API token from the app's client credentials"
        );
        let token = minted.token.clone();
        *cached = Some(minted);
        Ok(token)
    }

    /// Drops the cached token if it is still `used`, so the next call mints a new one.
    pub(super) async fn invalidate(&self, used: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|m| m.token.expose_secret() == used.expose_secret())
        {
            *cached = None;
        }
    }
}

/// The token endpoint's answer: `{"access_token", "scope", "expires_in"}`.
#[derive(Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth error: `{"error": "invalid_client", "error_description": "..."}`.
#[derive(Deserialize)]
struct GrantError {
    error: String,
}

/// Reads the token endpoint's answer, minted at `now`.
fn read_grant(
    status: u16,
    body: &[u8],
    url: &str,
    now: DateTime<Utc>,
) -> Result<Minted, AdminError> {
    match status {
        200..=299 => {
            let grant: Grant =
                serde_json::from_slice(body).map_err(|e| AdminError::UnexpectedAnswer {
                    what: "admin/oauth/access_token",
                    source: Some(e),
                })?;
            if grant.access_token.is_empty() {
                return Err(AdminError::UnexpectedAnswer {
                    what: "admin/oauth/access_token (empty access_token)",
                    source: None,
                });
            }
            let lifetime = grant
                .expires_in
                .map(|s| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000)));
            let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default();
            Ok(Minted {
                token: SecretString::from(grant.access_token),
                expires_at: lifetime.and_then(|l| now.checked_add_signed(l)),
                margin: lifetime.map_or(margin, |l| margin.min(l / 2)),
            })
        }
        404 => Err(AdminError::NotFound {
            url: url.to_owned(),
        }),
        _ => match serde_json::from_slice::<GrantError>(body) {
            Ok(e) if e.error == "invalid_client" => {
                Err(AdminError::InvalidClient { code: e.error })
            }
            Ok(e) if e.error == "shop_not_permitted" => Err(AdminError::ShopNotPermitted),
            Ok(e) => Err(AdminError::GrantRefused { code: e.error }),
            Err(_) if status == 401 => Err(AdminError::InvalidClient {
                code: "HTTP 401".to_owned(),
            }),
            Err(_) => Err(AdminError::Status {
                status,
                attempts: 1,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_minted_token_is_renewed_five_minutes_before_it_expires() {
        let minted = read_grant(
            200,
            br#"{"access_token":"shpat_minted","scope":"read_orders","expires_in":86399}"#,
            "u",
            now(),
        )
        .unwrap();
        assert_eq!(minted.token.expose_secret(), "shpat_minted");
        let expiry = now() + chrono::Duration::seconds(86399);
        assert_eq!(minted.expires_at, Some(expiry));
        assert!(minted.fresh_at(expiry - chrono::Duration::seconds(301)));
        assert!(!minted.fresh_at(expiry - chrono::Duration::seconds(299)));
    }

    #[test]
    fn a_short_lived_token_is_renewed_at_half_its_life() {
        let minted =
            read_grant(200, br#"{"access_token":"t","expires_in":60}"#, "u", now()).unwrap();
        assert!(minted.fresh_at(now() + chrono::Duration::seconds(29)));
        assert!(!minted.fresh_at(now() + chrono::Duration::seconds(31)));
        let forever = read_grant(200, br#"{"access_token":"t"}"#, "u", now()).unwrap();
        assert!(forever.fresh_at(now() + chrono::Duration::days(365)));
    }

    #[test]
    fn oauth_errors_become_errors_that_name_the_fix() {
        let err = |status, body: &[u8]| read_grant(status, body, "u", now()).err().unwrap();
        let bad = err(
            401,
            br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        );
        assert!(matches!(bad, AdminError::InvalidClient { .. }), "{bad:?}");
        assert!(bad.to_string().contains("Dev Dashboard"));
        assert!(matches!(
            err(400, br#"{"error":"shop_not_permitted"}"#),
            AdminError::ShopNotPermitted
        ));
        assert!(matches!(
            err(400, br#"{"error":"unsupported_grant_type"}"#),
            AdminError::GrantRefused { code } if code == "unsupported_grant_type"
        ));
        assert!(matches!(
            err(401, b"<html>"),
            AdminError::InvalidClient { .. }
        ));
        assert!(matches!(err(404, b""), AdminError::NotFound { .. }));
        assert!(matches!(
            err(200, br#"{"access_token":""}"#),
            AdminError::UnexpectedAnswer { .. }
        ));
    }

    #[test]
    fn credentials_keep_their_secret_out_of_debug_and_store_as_json() {
        let credentials = AdminCredentials::ClientCredentials {
            client_id: "cid".into(),
            client_secret: SecretString::from("shpss_secret"),
        };
        assert!(!format!("{credentials:?}").contains("shpss_secret"));
        let stored: serde_json::Value =
            serde_json::from_str(credentials.to_secret_string().expose_secret()).unwrap();
        assert_eq!(
            stored,
            json!({"client_id": "cid", "client_secret": "shpss_secret"})
        );
        let token = AdminCredentials::from(SecretString::from("shpat_x"));
        assert!(!token.renews());
        assert_eq!(token.to_secret_string().expose_secret(), "shpat_x");
    }
}
