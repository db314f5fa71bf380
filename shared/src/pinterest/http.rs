//! [`PinterestHttp`]: the [`ConversionsApi`] adapter for `POST /v5/ad_accounts/{id}/events`.
//!
//! It maps HTTP outcomes to [`ConversionsApiError`] and reads per-event statuses from both the 200
//! body and the 422 `details`. It does not retry: retries belong to the queue, which survives
//! restarts.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::api::{ConversionsApi, ConversionsApiError, EventStatus};
use super::event::Event;

/// Pinterest's production API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.pinterest.com";

/// Where and how to reach Pinterest.
#[derive(Debug, Clone)]
pub struct PinterestHttpConfig {
    /// Base URL without a trailing slash; tests point it at a local fake.
    pub base_url: String,
    /// The numeric ad account id.
    pub ad_account_id: String,
    /// A conversion access token (or an OAuth token with `ads:write`).
    pub access_token: SecretString,
    /// Adds `?test=true`: Pinterest validates but does not record the events.
    pub test_mode: bool,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request.
    pub request_timeout: Duration,
}

/// Sends events with `reqwest` over rustls.
#[derive(Debug, Clone)]
pub struct PinterestHttp {
    /// Shared with [`super::quality`] and [`super::catalog`], so their reads reuse the warm
    /// connections.
    pub(super) client: reqwest::Client,
    url: String,
    /// Base URL, ad account and token; [`super::quality`] and [`super::catalog`] read them too.
    pub(super) config: PinterestHttpConfig,
}

impl PinterestHttp {
    /// Builds the HTTP client once; reuse it across invocations so connections stay warm.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialized.
    pub fn new(config: PinterestHttpConfig) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::client_config())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("pinrelay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let url = format!(
            "{}/v5/ad_accounts/{}/events",
            config.base_url.trim_end_matches('/'),
            config.ad_account_id
        );
        Ok(Self {
            client,
            url,
            config,
        })
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    #[serde(default)]
    events: Vec<ApiEventStatus>,
}

#[derive(Deserialize)]
struct ApiEventStatus {
    status: String,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    warning_message: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<ApiResponse>,
}

impl ConversionsApi for PinterestHttp {
    async fn send(&self, events: &[Event]) -> Result<Vec<EventStatus>, ConversionsApiError> {
        let mut request = self
            .client
            .post(&self.url)
            .bearer_auth(self.config.access_token.expose_secret())
            .json(&EventBatchRef { data: events });
        if self.config.test_mode {
            request = request.query(&[("test", "true")]);
        }
        // Only a failed connection proves nothing was sent; any later failure leaves the events
        // in doubt.
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                ConversionsApiError::Transport(Box::new(e))
            } else {
                ConversionsApiError::NoAnswer(Box::new(e))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|e| ConversionsApiError::NoAnswer(Box::new(e)))?;
        let message = || {
            serde_json::from_slice::<ApiError>(&body)
                .ok()
                .and_then(|e| e.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect())
        };
        let statuses = match status {
            200 => serde_json::from_slice::<ApiResponse>(&body)
                .map(|r| r.events)
                .map_err(|e| ConversionsApiError::UnexpectedResponse(e.to_string()))?,
            422 => serde_json::from_slice::<ApiError>(&body)
                .ok()
                .and_then(|e| e.details)
                .map(|d| d.events)
                .ok_or_else(|| ConversionsApiError::UnexpectedResponse(message()))?,
            // 404 means a wrong ad account id: a configuration error like a bad token, kept for retry.
            401 | 403 | 404 => {
                return Err(ConversionsApiError::Unauthorized {
                    status,
                    message: message(),
                });
            }
            429 => return Err(ConversionsApiError::RateLimited { retry_after }),
            500..=599 => return Err(ConversionsApiError::Unavailable { status }),
            _ => {
                return Err(ConversionsApiError::Rejected {
                    status,
                    message: message(),
                });
            }
        };
        if statuses.len() != events.len() {
            return Err(ConversionsApiError::UnexpectedResponse(format!(
                "{} statuses for {} events",
                statuses.len(),
                events.len()
            )));
        }
        Ok(statuses
            .into_iter()
            .map(|s| {
                let non_empty = |m: Option<String>| m.filter(|m| !m.is_empty());
                if s.status == "failed" {
                    EventStatus::Failed {
                        error_message: non_empty(s.error_message)
                            .unwrap_or_else(|| "Pinterest reported the event as failed".into()),
                    }
                } else {
                    // "processed", and any status a newer API version adds that is not a failure.
                    EventStatus::Processed {
                        warning: non_empty(s.warning_message),
                    }
                }
            })
            .collect())
    }
}

/// Serializes like [`super::EventBatch`] without cloning the events.
#[derive(serde::Serialize)]
struct EventBatchRef<'a> {
    data: &'a [Event],
}

/// Makes ring the process's rustls provider, the one the AWS SDK client uses too (see
/// [`crate::aws`]), so a bundle links one TLS crypto library. A provider installed before
/// (by a test or the CLI) is kept.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
