//! Sign in to Pinterest: the OAuth token endpoint (`POST /v5/oauth/token`), the [`Grant`] the
//! relay keeps per store, and when to renew it ([`needs_refresh`], pure).
//!
//! Pinterest's continuous refresh tokens last 60 days and rotate: every refresh answers a new
//! refresh token, and the old one stops working. So exactly one refresher may renew a grant at a
//! time, and it must store the new refresh token every time ([`store::refresh_with_lease`]).
//!
//! - [`store`]: the [`GrantStore`] port (the grant, and a lease with an expiry so one refresher
//!   writes), [`refresh_with_lease`], and [`ApiToken`], what readers hold.
//! - [`sqlite`]: the grant in `pinrelay serve`'s relay database (feature `sqlite`).
//! - [`aws`]: the grant in a Secrets Manager secret, the lease in the stack's table (features
//!   `dynamodb` and `secretsmanager`).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

#[cfg(all(feature = "dynamodb", feature = "secretsmanager"))]
pub mod aws;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;

pub use store::{
    ApiToken, GrantStore, GrantStoreError, Lease, RefreshError, RefreshOutcome, log_refresh,
    refresh_due, refresh_with_lease, save_signed_in,
};

/// Where the merchant signs in (Pinterest's authorize page).
pub const AUTHORIZE_URL: &str = "https://www.pinterest.com/oauth/";

/// The scopes the relay asks for: the customer lists and Event Quality (`ads:read`,
/// `ads:write`) and the catalog probe (`catalogs:read`).
pub const SCOPES: &str = "ads:read,ads:write,catalogs:read";

/// Days a continuous refresh token lasts, when the token answer does not say.
pub const REFRESH_TOKEN_LIFETIME_DAYS: i64 = 60;

/// A refresh token is renewed once fewer days than this are left (of its 60).
pub const REFRESH_TOKEN_RENEW_DAYS: i64 = 30;

/// An access token is renewed once less than this is left, or a quarter of its lifetime.
pub const ACCESS_TOKEN_RENEW_BEFORE: chrono::Duration = chrono::Duration::days(2);

/// `doctor` fails the sign-in when fewer days than this are left on the refresh token.
pub const SIGN_IN_WARN_DAYS: i64 = 7;

/// The Pinterest app the merchant created: its id and secret (HTTP Basic on the token endpoint).
#[derive(Clone)]
pub struct AppCredentials {
    /// The app id (not a secret).
    pub app_id: String,
    /// The app secret.
    pub app_secret: SecretString,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .finish()
    }
}

/// A store's sign-in to Pinterest: the app, the tokens with their expiries, the scopes granted
/// and the ad account the merchant picked. `Debug` prints no secret.
#[derive(Clone)]
pub struct Grant {
    /// The app that was signed in to.
    pub app: AppCredentials,
    /// The bearer token the API calls use.
    pub access_token: SecretString,
    /// When the access token was issued (its lifetime is measured from here).
    pub access_token_issued_at: DateTime<Utc>,
    /// When the access token stops working.
    pub access_token_expires_at: DateTime<Utc>,
    /// The token that renews the access token (rotated on every refresh).
    pub refresh_token: SecretString,
    /// When the refresh token stops working: past it, the merchant signs in again.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// The scopes Pinterest granted, as it listed them.
    pub scopes: Vec<String>,
    /// The ad account the merchant picked.
    pub ad_account_id: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("app", &self.app)
            .field("access_token", &"[REDACTED]")
            .field("access_token_issued_at", &self.access_token_issued_at)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("refresh_token", &"[REDACTED]")
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .field("scopes", &self.scopes)
            .field("ad_account_id", &self.ad_account_id)
            .finish()
    }
}

/// The stored form of a [`Grant`] (a secret's value or a database column).
#[derive(Serialize, Deserialize)]
struct StoredGrant {
    app_id: String,
    app_secret: String,
    access_token: String,
    access_token_issued_at: DateTime<Utc>,
    access_token_expires_at: DateTime<Utc>,
    refresh_token: String,
    refresh_token_expires_at: DateTime<Utc>,
    scopes: Vec<String>,
    ad_account_id: String,
}

impl Grant {
    /// The grant as JSON, for its store; a secret itself.
    pub fn to_json(&self) -> SecretString {
        let stored = StoredGrant {
            app_id: self.app.app_id.clone(),
            app_secret: self.app.app_secret.expose_secret().to_owned(),
            access_token: self.access_token.expose_secret().to_owned(),
            access_token_issued_at: self.access_token_issued_at,
            access_token_expires_at: self.access_token_expires_at,
            refresh_token: self.refresh_token.expose_secret().to_owned(),
            refresh_token_expires_at: self.refresh_token_expires_at,
            scopes: self.scopes.clone(),
            ad_account_id: self.ad_account_id.clone(),
        };
        // A struct of strings and timestamps always serializes.
        SecretString::from(serde_json::to_string(&stored).unwrap_or_default())
    }

    /// The grant from its JSON.
    ///
    /// # Errors
    /// The JSON is not a grant (the error names the field, never a value).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let s: StoredGrant = serde_json::from_str(json)?;
        Ok(Self {
            app: AppCredentials {
                app_id: s.app_id,
                app_secret: SecretString::from(s.app_secret),
            },
            access_token: SecretString::from(s.access_token),
            access_token_issued_at: s.access_token_issued_at,
            access_token_expires_at: s.access_token_expires_at,
            refresh_token: SecretString::from(s.refresh_token),
            refresh_token_expires_at: s.refresh_token_expires_at,
            scopes: s.scopes,
            ad_account_id: s.ad_account_id,
        })
    }

    /// A new grant from the code exchange's answer (it must carry a refresh token).
    ///
    /// # Errors
    /// [`OAuthError::UnexpectedResponse`] when Pinterest sent no refresh token.
    pub fn from_code_exchange(
        app: AppCredentials,
        tokens: TokenResponse,
        ad_account_id: String,
        now: DateTime<Utc>,
    ) -> Result<Self, OAuthError> {
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Err(OAuthError::UnexpectedResponse(
                "the token answer carries no refresh_token; is the Pinterest app on continuous refresh tokens?".into(),
            ));
        };
        Ok(Self {
            app,
            access_token: tokens.access_token.clone(),
            access_token_issued_at: now,
            access_token_expires_at: tokens.access_token_expires_at(now),
            refresh_token,
            // The answer's own expiry, else the documented 60 days of a continuous refresh token.
            refresh_token_expires_at: tokens
                .refresh_token_expires_at(now)
                .unwrap_or(now + chrono::Duration::days(REFRESH_TOKEN_LIFETIME_DAYS)),
            scopes: tokens.scopes(),
            ad_account_id,
        })
    }

    /// This grant renewed by a refresh's answer: the new access token, and the new refresh token
    /// when Pinterest rotated it (it always does for continuous refresh tokens).
    #[must_use]
    pub fn renewed(&self, tokens: TokenResponse, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.access_token_issued_at = now;
        next.access_token_expires_at = tokens.access_token_expires_at(now);
        if let Some(expires_at) = tokens.refresh_token_expires_at(now) {
            next.refresh_token_expires_at = expires_at;
        }
        if !tokens.scopes().is_empty() {
            next.scopes = tokens.scopes();
        }
        next.access_token = tokens.access_token;
        if let Some(refresh_token) = tokens.refresh_token {
            next.refresh_token = refresh_token;
        }
        next
    }
}

/// Why a grant is due for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Neither token is close to expiring.
    NotYet,
    /// The access token has less than a quarter of its lifetime (or 2 days) left.
    AccessToken,
    /// The refresh token has fewer than [`REFRESH_TOKEN_RENEW_DAYS`] days left.
    RefreshToken,
    /// The refresh token has expired: only signing in again helps.
    SignInAgain,
}

/// Whether `grant` should be refreshed at `now` (pure): the access token well before it expires
/// (less than a quarter of its lifetime, or [`ACCESS_TOKEN_RENEW_BEFORE`], left), and the refresh
/// token well inside its 60 days (fewer than [`REFRESH_TOKEN_RENEW_DAYS`] left).
#[must_use]
pub fn needs_refresh(grant: &Grant, now: DateTime<Utc>) -> Due {
    if grant.refresh_token_expires_at <= now {
        return Due::SignInAgain;
    }
    if grant.refresh_token_expires_at - now < chrono::Duration::days(REFRESH_TOKEN_RENEW_DAYS) {
        return Due::RefreshToken;
    }
    let lifetime = grant.access_token_expires_at - grant.access_token_issued_at;
    let margin = std::cmp::max(lifetime / 4, ACCESS_TOKEN_RENEW_BEFORE);
    if grant.access_token_expires_at - now < margin {
        return Due::AccessToken;
    }
    Due::NotYet
}

/// Whole days left before the refresh token expires (negative once it has).
#[must_use]
pub fn refresh_token_days_left(grant: &Grant, now: DateTime<Utc>) -> i64 {
    (grant.refresh_token_expires_at - now).num_days()
}

/// The authorize page's address for `app_id`, sending the merchant back to `redirect_uri` with
/// `state`.
///
/// # Errors
/// `authorize_base` is not a URL.
pub fn authorize_url(
    authorize_base: &str,
    app_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(authorize_base)?;
    url.query_pairs_mut()
        .append_pair("client_id", app_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", SCOPES)
        .append_pair("state", state);
    Ok(url)
}

/// The token endpoint's answer (`OauthAccessTokenResponse`), for a code or a refresh.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    #[serde(deserialize_with = "secret")]
    pub access_token: SecretString,
    /// Seconds the access token lasts.
    pub expires_in: i64,
    /// The scopes granted, comma-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// The (new) refresh token.
    #[serde(default, deserialize_with = "optional_secret")]
    pub refresh_token: Option<SecretString>,
    /// Seconds the refresh token lasts.
    #[serde(default)]
    pub refresh_token_expires_in: Option<i64>,
    /// When the refresh token expires, Unix seconds.
    #[serde(default)]
    pub refresh_token_expires_at: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .finish_non_exhaustive()
    }
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

fn optional_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(SecretString::from))
}

impl TokenResponse {
    /// When the access token expires, counted from `now`.
    #[must_use]
    pub fn access_token_expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::seconds(self.expires_in.max(0))
    }

    /// When the refresh token expires: `refresh_token_expires_at`, else `now` plus
    /// `refresh_token_expires_in`; `None` without either.
    #[must_use]
    pub fn refresh_token_expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.refresh_token_expires_at
            .and_then(|at| DateTime::from_timestamp(at, 0))
            .or_else(|| {
                self.refresh_token_expires_in
                    .map(|s| now + chrono::Duration::seconds(s.max(0)))
            })
    }

    /// The scopes granted, one per entry.
    #[must_use]
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// One ad account the signed-in user can reach (`GET /v5/ad_accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdAccount {
    /// The numeric id.
    pub id: String,
    /// Its name in Ads Manager.
    #[serde(default)]
    pub name: String,
    /// Its currency.
    #[serde(default)]
    pub currency: Option<String>,
}

/// Why the token endpoint or the ad account listing failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// HTTP Basic refused: a wrong app id or secret.
    #[error(
        "Pinterest refused the app id and secret ({message}); check PINTEREST_APP_ID and PINTEREST_APP_SECRET against developers.pinterest.com, My apps"
    )]
    AppCredentials {
        /// Pinterest's message.
        message: String,
    },
    /// The code or refresh token was refused: expired, revoked, or already used.
    #[error(
        "Pinterest refused the sign-in ({message}): the refresh token expired, was revoked or was already used; sign in again with `pinrelay pinterest login --shop …`"
    )]
    GrantRefused {
        /// Pinterest's message.
        message: String,
    },
    /// The access token was refused on an API call.
    #[error(
        "Pinterest refused the access token ({message}); run `pinrelay pinterest refresh --shop …`, or sign in again"
    )]
    Unauthorized {
        /// Pinterest's message.
        message: String,
    },
    /// Too many requests (Trial apps have 1,000 a day).
    #[error(
        "Pinterest is rate limiting this app (Trial apps get 1,000 requests a day); try again later"
    )]
    RateLimited,
    /// Pinterest answered 5xx.
    #[error("Pinterest is unavailable (HTTP {status}); the next check tries again")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// Any other answer.
    #[error("Pinterest answered something unexpected: {0}")]
    UnexpectedResponse(String),
    /// The request did not complete.
    #[error("cannot reach Pinterest's API: {0}; check the network and PINTEREST_API_URL")]
    Transport(#[source] reqwest::Error),
}

/// What renews grants: Pinterest's token endpoint, or a test's stand-in.
pub trait TokenEndpoint: Send + Sync + 'static {
    /// Exchanges a refresh token for new tokens (`grant_type=refresh_token`).
    fn refresh(
        &self,
        app: &AppCredentials,
        refresh_token: &SecretString,
    ) -> impl Future<Output = Result<TokenResponse, OAuthError>> + Send;
}

/// Pinterest's OAuth token endpoint and ad account listing, over HTTPS.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    client: reqwest::Client,
    base_url: String,
}

impl OAuthClient {
    /// A client for the API at `base_url` (`https://api.pinterest.com`; tests point it at a fake).
    ///
    /// # Errors
    /// When the TLS backend cannot be initialized.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        super::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::client_config())
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .user_agent(concat!("pinrelay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Exchanges the authorization `code` the redirect brought (`grant_type=authorization_code`).
    ///
    /// # Errors
    /// See [`OAuthError`].
    pub async fn exchange_code(
        &self,
        app: &AppCredentials,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse, OAuthError> {
        self.token(
            app,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await
    }

    /// The ad accounts `access_token` reaches, shared ones included (every page).
    ///
    /// # Errors
    /// See [`OAuthError`].
    pub async fn ad_accounts(
        &self,
        access_token: &SecretString,
    ) -> Result<Vec<AdAccount>, OAuthError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            items: Vec<AdAccount>,
            #[serde(default)]
            bookmark: Option<String>,
        }
        let mut accounts = Vec::new();
        let mut bookmark: Option<String> = None;
        // Bounded: 50 pages of 250 accounts.
        for _ in 0..50 {
            let mut request = self
                .client
                .get(format!("{}/v5/ad_accounts", self.base_url))
                .bearer_auth(access_token.expose_secret())
                .query(&[("page_size", "250"), ("include_shared_accounts", "true")]);
            if let Some(b) = &bookmark {
                request = request.query(&[("bookmark", b.as_str())]);
            }
            let response = request.send().await.map_err(OAuthError::Transport)?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(OAuthError::Transport)?;
            if status == 401 || status == 403 {
                return Err(OAuthError::Unauthorized {
                    message: message(&body),
                });
            }
            let page: Page = parse(status, &body)?;
            accounts.extend(page.items);
            match page.bookmark.filter(|b| !b.is_empty()) {
                Some(b) => bookmark = Some(b),
                None => break,
            }
        }
        Ok(accounts)
    }

    async fn token(
        &self,
        app: &AppCredentials,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(format!("{}/v5/oauth/token", self.base_url))
            .basic_auth(&app.app_id, Some(app.app_secret.expose_secret()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(OAuthError::Transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(OAuthError::Transport)?;
        match status {
            401 => Err(OAuthError::AppCredentials {
                message: message(&body),
            }),
            400 | 403 => Err(OAuthError::GrantRefused {
                message: message(&body),
            }),
            _ => parse(status, &body),
        }
    }
}

impl TokenEndpoint for OAuthClient {
    async fn refresh(
        &self,
        app: &AppCredentials,
        refresh_token: &SecretString,
    ) -> Result<TokenResponse, OAuthError> {
        self.token(
            app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ],
        )
        .await
    }
}

/// Pinterest's error message in `body`, or its first 200 characters.
fn message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error_description: Option<String>,
    }
    serde_json::from_slice::<ApiError>(body)
        .ok()
        .and_then(|e| e.message.or(e.error_description))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// A 200 body as `T`, or the error its status means.
fn parse<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, OAuthError> {
    match status {
        200 => serde_json::from_slice(body).map_err(|e| {
            OAuthError::UnexpectedResponse(format!(
                "not the expected JSON: {}",
                crate::mapping::json_error_summary(&e)
            ))
        }),
        429 => Err(OAuthError::RateLimited),
        500..=599 => Err(OAuthError::Unavailable { status }),
        _ => Err(OAuthError::UnexpectedResponse(format!(
            "HTTP {status}: {}",
            message(body)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pinterest::oauth::store::contract::grant_at as grant;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_fresh_grant_is_not_due() {
        let now = at("2026-12-01T00:00:00Z");
        assert_eq!(needs_refresh(&grant(now, 30, 60), now), Due::NotYet);
        let later = now + chrono::Duration::days(22);
        assert_eq!(needs_refresh(&grant(now, 30, 60), later), Due::NotYet);
    }

    #[test]
    fn the_access_token_is_renewed_in_the_last_quarter_of_its_lifetime() {
        let now = at("2026-12-01T00:00:00Z");
        let later = now + chrono::Duration::days(23);
        assert_eq!(needs_refresh(&grant(now, 30, 60), later), Due::AccessToken);
    }

    #[test]
    fn a_short_lived_access_token_is_renewed_two_days_before_it_expires() {
        let now = at("2026-12-01T00:00:00Z");
        assert_eq!(needs_refresh(&grant(now, 1, 60), now), Due::AccessToken);
    }

    #[test]
    fn the_refresh_token_is_renewed_under_thirty_days_and_expired_means_sign_in_again() {
        let now = at("2026-12-01T00:00:00Z");
        assert_eq!(needs_refresh(&grant(now, 365, 29), now), Due::RefreshToken);
        assert_eq!(needs_refresh(&grant(now, 365, 0), now), Due::SignInAgain);
        assert_eq!(refresh_token_days_left(&grant(now, 30, 60), now), 60);
        let later = now + chrono::Duration::days(53) + chrono::Duration::hours(1);
        assert_eq!(refresh_token_days_left(&grant(now, 30, 60), later), 6);
    }

    #[test]
    fn debug_prints_no_secret_and_json_round_trips() {
        let now = at("2026-12-01T00:00:00Z");
        let g = grant(now, 30, 60);
        let debug = format!("{g:?}");
        for secret in [
            "app-secret-value",
            "access-token-value",
            "refresh-token-value",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let back = Grant::from_json(g.to_json().expose_secret()).unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "refresh-token-value");
        assert_eq!(back.refresh_token_expires_at, g.refresh_token_expires_at);
        assert_eq!(back.ad_account_id, g.ad_account_id);
    }

    #[test]
    fn a_refresh_answer_rotates_the_refresh_token() {
        let now = at("2026-12-01T00:00:00Z");
        let tokens: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a2","token_type":"bearer","expires_in":2592000,"scope":"ads:read,ads:write",
                "refresh_token":"r2","refresh_token_expires_in":5184000,"refresh_token_expires_at":1770000000}"#,
        )
        .unwrap();
        let later = now + chrono::Duration::days(25);
        let next = grant(now, 30, 60).renewed(tokens, later);
        assert_eq!(next.access_token.expose_secret(), "a2");
        assert_eq!(next.refresh_token.expose_secret(), "r2");
        assert_eq!(next.refresh_token_expires_at.timestamp(), 1_770_000_000);
        assert_eq!(
            next.access_token_expires_at,
            later + chrono::Duration::days(30)
        );
        assert_eq!(next.scopes, ["ads:read", "ads:write"]);
    }

    #[test]
    fn a_code_exchange_without_a_refresh_expiry_counts_sixty_days() {
        let now = at("2026-12-01T00:00:00Z");
        let tokens: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a1","token_type":"bearer","expires_in":2592000,"scope":"ads:read","refresh_token":"r1"}"#,
        )
        .unwrap();
        let app = grant(now, 1, 1).app;
        let g = Grant::from_code_exchange(app, tokens, "1".into(), now).unwrap();
        assert_eq!(refresh_token_days_left(&g, now), 60);
        assert_eq!(needs_refresh(&g, now), Due::NotYet);
    }

    #[test]
    fn the_authorize_url_carries_the_scopes_and_state() {
        let url = authorize_url(AUTHORIZE_URL, "1234", "http://localhost:8085/", "s t").unwrap();
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["scope"], SCOPES);
        assert_eq!(pairs["state"], "s t");
        assert_eq!(pairs["redirect_uri"], "http://localhost:8085/");
        assert_eq!(pairs["response_type"], "code");
    }
}
