//! The Admin API transport: where a call goes (`{base}/admin/api/{version}/...`), the
//! `X-Shopify-Access-Token` header from the [`TokenSource`], and Shopify's limits: a GraphQL
//! `THROTTLED` answer waits until the cost bucket holds the query's cost (read from
//! `extensions.cost`), a 429 honours `Retry-After`, a 5xx or a network failure is retried with
//! backoff, each within [`RetryPolicy`] through [`retry::retry`]. A 401 on a minted token renews
//! it once.
//!
//! It knows no query: each lives in its own module ([`super`]) and calls [`AdminApi::query`] with
//! its typed answer. Tokens are [`secrecy::SecretString`]s and are never logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::bulk::BulkPolling;
use super::credentials::{AdminCredentials, Clock, TokenSource};
use super::{is_api_version, shop_domain};
use crate::retry::{self, Failure};

/// What the retry warnings call an Admin API call ([`retry::retry`]).
const RETRIED: &str = "Admin API call";

/// Why an Admin API call failed; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The shop is neither a name nor a `name.myshopify.com` domain.
    #[error("{0:?} is not a shop name or a name.myshopify.com domain")]
    InvalidShop(String),
    /// The API version is not `YYYY-MM` or `unstable`.
    #[error("{0:?} is not an Admin API version: use YYYY-MM (such as 2026-07) or unstable")]
    InvalidVersion(String),
    /// The base URL cannot be parsed.
    #[error("{0:?} is not a valid Admin API base URL")]
    InvalidBaseUrl(String),
    /// 401: the token is not one of an app installed on this shop.
    #[error(
        "Shopify refused the admin token (401): use an Admin API access token of the app installed on this shop"
    )]
    InvalidToken,
    /// 403: the token lacks an access scope.
    #[error("the admin token lacks a scope (403): the app needs read_orders and read_customers")]
    MissingScope,
    /// 402: the shop is frozen or unpaid.
    #[error("the shop is frozen or unpaid (402): the merchant must settle the Shopify bill first")]
    ShopUnavailable,
    /// 404 on the GraphQL endpoint: wrong shop or API version.
    #[error("no Admin API at {url} (404): check the shop and the API version")]
    NotFound {
        /// The URL that answered 404.
        url: String,
    },
    /// 404 on one order.
    #[error("order {0} does not exist on this shop (404): check the order id, or it was deleted")]
    OrderNotFound(u64),
    /// The token endpoint refused the client id or secret (`invalid_client`).
    #[error(
        "Shopify refused the app's client id or secret ({code}): copy both from the Dev Dashboard (the app, Settings, Credentials); after a secret rotation, use the new secret"
    )]
    InvalidClient {
        /// Shopify's OAuth `error` code.
        code: String,
    },
    /// The token endpoint refused the grant for this shop (`shop_not_permitted`).
    #[error(
        "Shopify does not let this app mint tokens for this shop (shop_not_permitted): client credentials work only for an app of your own organization installed on a store it owns; install the app on the store, or use an Admin API access token"
    )]
    ShopNotPermitted,
    /// The token endpoint refused the grant for another reason (`invalid_request`,
    /// `unsupported_grant_type`, ...).
    #[error(
        "Shopify's token endpoint refused the client-credentials grant ({code}): check that the Dev Dashboard app is installed on this shop"
    )]
    GrantRefused {
        /// Shopify's OAuth `error` code.
        code: String,
    },
    /// Still throttled (THROTTLED or 429) after every attempt.
    #[error(
        "Shopify kept throttling the Admin API after {attempts} attempts: try again in a minute, or over a shorter period"
    )]
    Throttled {
        /// Attempts made.
        attempts: u32,
    },
    /// An HTTP status that retries did not cure, or that is not retried.
    #[error(
        "the Admin API answered HTTP {status} after {attempts} attempt(s): if it persists, check https://www.shopifystatus.com and the API version"
    )]
    Status {
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// GraphQL `errors` other than throttling, with Shopify's messages.
    #[error("the Admin API refused the request: {}", .0.join("; "))]
    GraphQl(Vec<String>),
    /// An answer that is not the JSON this client asked for.
    #[error("the Admin API's answer to {what} has an unexpected shape; check the API version")]
    UnexpectedAnswer {
        /// Which call.
        what: &'static str,
        /// The parse error, when there is one.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A bulk operation was still running when the read's deadline came; the next read
    /// continues with it.
    #[error(
        "Shopify is still exporting (bulk operation {id}, {status}, {object_count} objects so far); the next run continues with this export"
    )]
    BulkOperationRunning {
        /// The operation's id.
        id: String,
        /// `CREATED` or `RUNNING`.
        status: &'static str,
        /// Objects exported so far.
        object_count: u64,
    },
    /// A bulk operation ended without data: `FAILED`, `CANCELED` or `EXPIRED`.
    #[error("bulk operation {id} ended {status}: {}", super::bulk::failure_advice(status, error_code.as_deref()))]
    BulkOperationFailed {
        /// The operation's id.
        id: String,
        /// Its status.
        status: &'static str,
        /// Shopify's `errorCode` (`ACCESS_DENIED`, `TIMEOUT`, `INTERNAL_SERVER_ERROR`).
        error_code: Option<String>,
    },
    /// `bulkOperationRunQuery` answered `userErrors`.
    #[error("Shopify would not start the export: {}", .0.join("; "))]
    BulkOperationRefused(Vec<String>),
    /// The export's file did not arrive in time.
    #[error("the export's file at {url} did not arrive in time; run again")]
    BulkDownloadTimedOut {
        /// The file's URL without its signature.
        url: String,
    },
    /// The export's file answered an HTTP error.
    #[error(
        "the export's file at {url} answered HTTP {status}; run again (an expired file is exported anew)"
    )]
    BulkDownloadStatus {
        /// The file's URL without its signature.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A line of an export is not what the query selects (its content is not shown: it may hold
    /// an email address).
    #[error("line {line} of the customers export has an unexpected shape; check the API version")]
    BulkExportLine {
        /// The line's number, from 1.
        line: u64,
    },
    /// The request did not get an answer (DNS, connection, timeout).
    #[error("cannot reach the Admin API at {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
}

/// How long and how often [`AdminApi`] waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The shortest wait before a retry (and the first 5xx backoff).
    pub min_wait: Duration,
    /// The longest wait before a retry, whatever Shopify asks for.
    pub max_wait: Duration,
    /// How long one attempt may take, connecting included.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The watch's: one call takes at most 3 x 8 s + 2 x 2 s = 28 s, so a run's three calls (or a
    /// fourth for a second page of orders) fit its 120 s Lambda timeout even when all time out.
    pub const WATCH: Self = Self {
        max_attempts: 3,
        min_wait: Duration::from_millis(250),
        max_wait: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(8),
    };

    /// The longest one call can take: every attempt timing out, with the longest wait between.
    #[must_use]
    pub fn worst_case(&self) -> Duration {
        let attempts = self.max_attempts.max(1);
        self.attempt_timeout * attempts + self.max_wait * (attempts - 1)
    }

    /// `wait` kept within `[min_wait, max_wait]`.
    pub(super) fn clamp(&self, wait: Duration) -> Duration {
        wait.clamp(self.min_wait, self.max_wait.max(self.min_wait))
    }

    /// The backoff before retry `n` (1-based) after a 5xx: `min_wait * 2^(n-1)`, capped.
    fn backoff(&self, n: u32) -> Duration {
        self.clamp(retry::exponential(self.min_wait, n, self.max_wait))
    }

    /// The wait before retrying after a 429, a 5xx or a network failure, with the error once
    /// attempts are spent.
    pub(super) fn failure(&self, retry: Retryable, attempt: u32) -> Failure<AdminError> {
        match retry {
            Retryable::RateLimited(after) => Failure::Retry {
                wait: self.clamp(after.unwrap_or(self.min_wait)),
                error: AdminError::Throttled { attempts: attempt },
            },
            Retryable::ServerError(status) => Failure::Retry {
                wait: self.backoff(attempt),
                error: AdminError::Status {
                    status,
                    attempts: attempt,
                },
            },
            Retryable::Network(error) => Failure::Retry {
                wait: self.backoff(attempt),
                error,
            },
        }
    }
}

/// A client of one shop's Admin API. Clones share one [`TokenSource`], so a minted token serves
/// every query of every clone until it is renewed.
#[derive(Debug, Clone)]
pub struct AdminApi {
    client: reqwest::Client,
    base: String,
    version: String,
    tokens: TokenSource,
    retry: RetryPolicy,
    pub(super) bulk_polling: BulkPolling,
}

impl AdminApi {
    /// A client for `shop` (`name` or `name.myshopify.com`) at `https://{shop}`, or at `base_url`,
    /// authenticated by `credentials` (a static token as a [`secrecy::SecretString`], or
    /// [`AdminCredentials::ClientCredentials`], minted at `{base}/admin/oauth/access_token` on
    /// first use).
    ///
    /// # Errors
    /// [`AdminError::InvalidShop`], [`AdminError::InvalidVersion`], [`AdminError::InvalidBaseUrl`].
    pub fn new(
        shop: &str,
        credentials: impl Into<AdminCredentials>,
        api_version: &str,
        base_url: Option<&str>,
    ) -> Result<Self, AdminError> {
        let shop = shop_domain(shop).ok_or_else(|| AdminError::InvalidShop(shop.to_owned()))?;
        if !is_api_version(api_version) {
            return Err(AdminError::InvalidVersion(api_version.to_owned()));
        }
        let base = match base_url {
            Some(base) => {
                let base = base.trim_end_matches('/');
                url::Url::parse(base).map_err(|_| AdminError::InvalidBaseUrl(base.to_owned()))?;
                base.to_owned()
            }
            None => format!("https://{shop}"),
        };
        crate::pinterest::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::client_config())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("pinrelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| AdminError::Unreachable {
                url: base.clone(),
                source,
            })?;
        let tokens = TokenSource::new(
            credentials.into(),
            format!("{base}/admin/oauth/access_token"),
        );
        Ok(Self {
            client,
            base,
            version: api_version.to_owned(),
            tokens,
            retry: RetryPolicy::default(),
            bulk_polling: BulkPolling::default(),
        })
    }

    /// The same client with other waits and attempts.
    #[must_use]
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same client with other waits between the status polls of a bulk operation.
    #[must_use]
    pub fn with_bulk_polling(mut self, polling: BulkPolling) -> Self {
        self.bulk_polling = polling;
        self
    }

    /// The base URL (`https://{shop}`, or the one given).
    pub(super) fn base_url(&self) -> &str {
        &self.base
    }

    /// The waits and attempts of this client.
    pub(super) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The HTTP client, without credentials (they are added per request).
    pub(super) fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The same client reading the time from `clock` to judge a minted token's expiry (tests);
    /// its token cache starts empty.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.tokens = self.tokens.with_clock(clock);
        self
    }

    /// The GraphQL endpoint: `{base}/admin/api/{version}/graphql.json`.
    pub fn graphql_url(&self) -> String {
        format!("{}/admin/api/{}/graphql.json", self.base, self.version)
    }

    /// A REST endpoint: `{base}/admin/api/{version}/{resource}`.
    pub(super) fn rest_url(&self, resource: &str) -> String {
        format!("{}/admin/api/{}/{resource}", self.base, self.version)
    }

    /// The API version this client calls (`2026-07`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// One GraphQL call; returns `data`. Waits out throttling, 429 and 5xx within the
    /// [`RetryPolicy`].
    ///
    /// # Errors
    /// [`AdminError`]: other GraphQL `errors` as [`AdminError::GraphQl`], HTTP failures by status,
    /// token minting failures ([`AdminError::InvalidClient`]...).
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, AdminError> {
        let url = &self.graphql_url();
        let body = &json!({ "query": query, "variables": variables });
        let renewed = &AtomicBool::new(false);
        retry::retry(RETRIED, self.retry.max_attempts, |attempt| async move {
            let request = self.client.post(url).json(body);
            match self.authorized(request, url, attempt, renewed).await? {
                Answer::Body(bytes) => match read_graphql(&bytes)? {
                    GraphQlReply::Data(data) => Ok(data),
                    GraphQlReply::Throttled(cost) => Err(Failure::Retry {
                        wait: self.retry.clamp(throttle_wait(cost.as_ref())),
                        error: AdminError::Throttled { attempts: attempt },
                    }),
                },
                Answer::Retry(retry) => Err(self.retry.failure(retry, attempt)),
            }
        })
        .await
    }

    /// One GraphQL call whose `data` is read as `T` (`what` names the call in
    /// [`AdminError::UnexpectedAnswer`]).
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; [`AdminError::UnexpectedAnswer`] when `data` is not a `T`.
    pub async fn query<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
        what: &'static str,
    ) -> Result<T, AdminError> {
        let data = self.graphql(query, variables).await?;
        serde_json::from_value(data).map_err(|e| AdminError::UnexpectedAnswer {
            what,
            source: Some(e),
        })
    }

    /// One REST `GET` of `resource`; returns the body. A 404 is [`AdminError::NotFound`].
    ///
    /// # Errors
    /// As [`AdminApi::graphql`].
    pub(super) async fn get(&self, resource: &str) -> Result<Vec<u8>, AdminError> {
        let url = &self.rest_url(resource);
        let renewed = &AtomicBool::new(false);
        retry::retry(RETRIED, self.retry.max_attempts, |attempt| async move {
            match self
                .authorized(self.client.get(url), url, attempt, renewed)
                .await?
            {
                Answer::Body(bytes) => Ok(bytes),
                Answer::Retry(retry) => Err(self.retry.failure(retry, attempt)),
            }
        })
        .await
    }

    /// One attempt with a current token; a 401 on a minted token drops it and asks for one retry
    /// (once per call), which mints a new one.
    async fn authorized(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        attempt: u32,
        renewed: &AtomicBool,
    ) -> Result<Answer, Failure<AdminError>> {
        let token = self
            .tokens
            .token(&self.client, &self.retry, attempt)
            .await?;
        let request = request.header("X-Shopify-Access-Token", token.expose_secret());
        match self.send(request, url).await {
            Err(AdminError::InvalidToken)
                if self.tokens.renews() && !renewed.swap(true, Ordering::SeqCst) =>
            {
                self.tokens.invalidate(&token).await;
                Err(Failure::Retry {
                    wait: Duration::ZERO,
                    error: AdminError::InvalidToken,
                })
            }
            answer => Ok(answer?),
        }
    }

    /// Sends one request; maps the statuses no retry can cure to errors.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Answer, AdminError> {
        let (status, bytes) = match exchange(request, url, self.retry.attempt_timeout).await? {
            Exchange::Answered { status, body } => (status, body),
            Exchange::Retry(retry) => return Ok(Answer::Retry(retry)),
        };
        match status {
            200..=299 => Ok(Answer::Body(bytes)),
            401 => Err(AdminError::InvalidToken),
            402 => Err(AdminError::ShopUnavailable),
            403 => Err(AdminError::MissingScope),
            404 => Err(AdminError::NotFound {
                url: url.to_owned(),
            }),
            _ => Err(AdminError::Status {
                status,
                attempts: 1,
            }),
        }
    }
}

/// What one attempt gave.
pub(super) enum Answer {
    /// 2xx with this body.
    Body(Vec<u8>),
    /// An answer worth retrying.
    Retry(Retryable),
}

/// The HTTP answers retried.
pub(super) enum Retryable {
    /// 429, with `Retry-After` when given.
    RateLimited(Option<Duration>),
    /// 5xx.
    ServerError(u16),
    /// The connection failed or timed out; the error is the one given once retries are spent.
    Network(AdminError),
}

/// One HTTP exchange, before the caller reads the status.
pub(super) enum Exchange {
    /// Any status other than 429 and 5xx, with the body.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
    /// 429, 5xx, or a connection that failed or timed out.
    Retry(Retryable),
}

/// Sends `request` within `timeout`; 429, 5xx and network blips are [`Exchange::Retry`].
///
/// # Errors
/// [`AdminError::Unreachable`] for failures that are not a connection or a timeout.
pub(super) async fn exchange(
    request: reqwest::RequestBuilder,
    url: &str,
    timeout: Duration,
) -> Result<Exchange, AdminError> {
    let unreachable = |source| AdminError::Unreachable {
        url: url.to_owned(),
        source,
    };
    let response = match request.timeout(timeout).send().await {
        Ok(response) => response,
        // A connection that failed or timed out is a network blip until retries say otherwise.
        Err(source) if source.is_connect() || source.is_timeout() => {
            return Ok(Exchange::Retry(Retryable::Network(unreachable(source))));
        }
        Err(source) => return Err(unreachable(source)),
    };
    let status = response.status().as_u16();
    match status {
        429 => {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            Ok(Exchange::Retry(Retryable::RateLimited(retry_after)))
        }
        500..=599 => Ok(Exchange::Retry(Retryable::ServerError(status))),
        _ => match response.bytes().await {
            Ok(body) => Ok(Exchange::Answered {
                status,
                body: body.to_vec(),
            }),
            Err(source) => Err(unreachable(source)),
        },
    }
}

/// A 200 GraphQL body, read.
#[derive(Debug, PartialEq)]
enum GraphQlReply {
    /// `data`.
    Data(Value),
    /// A `THROTTLED` error, with `extensions.cost` when present.
    Throttled(Option<Cost>),
}

/// `extensions.cost` of a GraphQL answer.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: f64,
    throttle_status: ThrottleStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleStatus {
    currently_available: f64,
    restore_rate: f64,
}

/// How long until the bucket holds the query's cost: `(requested - available) / restoreRate`
/// seconds; zero when unknown (the caller's floor applies).
fn throttle_wait(cost: Option<&Cost>) -> Duration {
    let Some(cost) = cost else {
        return Duration::ZERO;
    };
    let missing = cost.requested_query_cost - cost.throttle_status.currently_available;
    let rate = cost.throttle_status.restore_rate;
    if !(missing > 0.0 && rate > 0.0) {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(missing / rate).unwrap_or(Duration::MAX)
}

/// `Retry-After` in seconds; Shopify sends decimals such as `2.0`.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[derive(Deserialize)]
struct GraphQlBody {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(default)]
    cost: Option<Cost>,
}

/// Reads a 200 GraphQL body: `data`, throttled, or Shopify's error messages.
fn read_graphql(body: &[u8]) -> Result<GraphQlReply, AdminError> {
    let body: GraphQlBody =
        serde_json::from_slice(body).map_err(|e| AdminError::UnexpectedAnswer {
            what: "a GraphQL request",
            source: Some(e),
        })?;
    let errors: Vec<Value> = match body.errors {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(errors)) => errors,
        Some(other) => vec![other],
    };
    if errors
        .iter()
        .any(|e| e["extensions"]["code"].as_str() == Some("THROTTLED"))
    {
        return Ok(GraphQlReply::Throttled(
            body.extensions.and_then(|e| e.cost),
        ));
    }
    if !errors.is_empty() {
        let messages = errors
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                e => e["message"]
                    .as_str()
                    .map_or_else(|| e.to_string(), str::to_owned),
            })
            .collect();
        return Err(AdminError::GraphQl(messages));
    }
    match body.data {
        Some(data) if !data.is_null() => Ok(GraphQlReply::Data(data)),
        _ => Err(AdminError::UnexpectedAnswer {
            what: "a GraphQL request (no data)",
            source: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    const THROTTLED: &str = r#"{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED","documentation":"https://shopify.dev/api/usage/rate-limits"}}],
        "extensions":{"cost":{"requestedQueryCost":752,"actualQueryCost":null,
        "throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":152,"restoreRate":100.0}}}}"#;

    fn cost(requested: f64, available: f64, rate: f64) -> Cost {
        Cost {
            requested_query_cost: requested,
            throttle_status: ThrottleStatus {
                currently_available: available,
                restore_rate: rate,
            },
        }
    }

    #[test]
    fn throttle_wait_is_the_missing_cost_over_the_restore_rate() {
        assert_eq!(
            throttle_wait(Some(&cost(752.0, 152.0, 100.0))),
            Duration::from_secs(6)
        );
        assert_eq!(
            throttle_wait(Some(&cost(100.0, 50.0, 200.0))),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn throttle_wait_is_zero_when_unknown_or_already_available() {
        assert_eq!(throttle_wait(None), Duration::ZERO);
        assert_eq!(
            throttle_wait(Some(&cost(10.0, 50.0, 100.0))),
            Duration::ZERO
        );
        assert_eq!(throttle_wait(Some(&cost(100.0, 0.0, 0.0))), Duration::ZERO);
    }

    #[test]
    fn four_watch_calls_that_all_time_out_fit_the_watch_lambda_timeout() {
        let lambda_timeout = Duration::from_secs(120);
        assert_eq!(RetryPolicy::WATCH.worst_case(), Duration::from_secs(28));
        assert!(RetryPolicy::WATCH.worst_case() * 4 < lambda_timeout);
        assert_eq!(
            RetryPolicy::default().worst_case(),
            Duration::from_secs(6 * 30 + 5 * 30)
        );
    }

    #[test]
    fn waits_are_kept_between_the_floor_and_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.clamp(Duration::ZERO), policy.min_wait);
        assert_eq!(policy.clamp(Duration::from_secs(3600)), policy.max_wait);
        assert_eq!(policy.clamp(Duration::from_secs(6)), Duration::from_secs(6));
        assert_eq!(policy.backoff(1), policy.min_wait);
        assert_eq!(policy.backoff(2), policy.min_wait * 2);
        assert_eq!(policy.backoff(40), policy.max_wait);
    }

    #[test]
    fn reads_a_throttled_body_with_its_cost() {
        assert_eq!(
            read_graphql(THROTTLED.as_bytes()).unwrap(),
            GraphQlReply::Throttled(Some(cost(752.0, 152.0, 100.0)))
        );
    }

    #[test]
    fn reads_a_throttled_body_without_cost() {
        let body = br#"{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}]}"#;
        assert_eq!(read_graphql(body).unwrap(), GraphQlReply::Throttled(None));
    }

    #[test]
    fn other_graphql_errors_keep_shopifys_messages() {
        let body = br#"{"errors":[{"message":"Field 'nope' doesn't exist on type 'Shop'","locations":[{"line":1,"column":9}]},{"message":"second"}]}"#;
        match read_graphql(body) {
            Err(AdminError::GraphQl(messages)) => assert_eq!(
                messages,
                ["Field 'nope' doesn't exist on type 'Shop'", "second"]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_graphql(br#"{"errors":"[API] Invalid API key or access token"}"#),
            Err(AdminError::GraphQl(m)) if m == ["[API] Invalid API key or access token"]
        ));
    }

    #[test]
    fn data_is_returned_and_a_missing_one_is_an_error() {
        assert_eq!(
            read_graphql(br#"{"data":{"shop":{"name":"x"}},"extensions":{}}"#).unwrap(),
            GraphQlReply::Data(json!({"shop": {"name": "x"}}))
        );
        assert!(matches!(
            read_graphql(br#"{"data":null}"#),
            Err(AdminError::UnexpectedAnswer { .. })
        ));
        assert!(matches!(
            read_graphql(b"<html>"),
            Err(AdminError::UnexpectedAnswer { .. })
        ));
    }

    #[test]
    fn retry_after_takes_decimal_seconds() {
        assert_eq!(parse_retry_after("2.0"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn the_graphql_endpoint_has_the_shop_and_the_version() {
        let api = AdminApi::new("acme", SecretString::from("t"), "2026-07", None).unwrap();
        assert_eq!(
            api.graphql_url(),
            "https://acme.myshopify.com/admin/api/2026-07/graphql.json"
        );
        assert_eq!(
            api.rest_url("orders/1.json"),
            "https://acme.myshopify.com/admin/api/2026-07/orders/1.json"
        );
    }

    #[test]
    fn the_token_stays_out_of_debug() {
        let api =
            AdminApi::new("acme", SecretString::from("shpat_secret"), "2026-07", None).unwrap();
        assert!(!format!("{api:?}").contains("shpat_secret"));
        let api = AdminApi::new(
            "acme",
            AdminCredentials::ClientCredentials {
                client_id: "cid".into(),
                client_secret: SecretString::from("shpss_secret"),
            },
            "2026-07",
            None,
        )
        .unwrap();
        assert!(!format!("{api:?}").contains("shpss_secret"));
    }
}
