//! [`AdminApi`]: a client of a shop's Admin API, for what the relay asks Shopify directly: the
//! shop's settings, its orders over a period (to reconcile and replay), one order's full payload,
//! and the webhook subscriptions `pinrelay subscribe` manages.
//!
//! Lists go through the GraphQL Admin API; one order's payload through the REST Admin API, whose
//! order resource has the shape of the `orders/create` webhook body. Every call handles Shopify's
//! limits itself: a GraphQL `THROTTLED` answer waits until the cost bucket holds the query's cost
//! (read from `extensions.cost`), a 429 honours `Retry-After`, a 5xx is retried with backoff, each
//! within [`RetryPolicy`]. The token is a [`SecretString`] and is never logged.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::retry::{self, Failure};

/// The first API version whose webhook subscriptions take `uri` instead of `callbackUrl`.
pub const URI_SINCE: &str = "2025-10";

/// The Admin API version the watch uses unless `SHOPIFY_API_VERSION` says otherwise (the CLI's
/// `--api-version` default, the same value).
pub const DEFAULT_API_VERSION: &str = "2026-07";

/// What the retry warnings call an Admin API call ([`retry::retry`]).
const RETRIED: &str = "Admin API call";

/// Orders per page of [`AdminApi::orders`]: the most Shopify returns.
pub const ORDERS_PAGE_SIZE: u32 = 250;

/// Reads the shop's name, domain, time zone and currency.
pub const SHOP_QUERY: &str =
    "query pinrelayShop { shop { name myshopifyDomain ianaTimezone currencyCode } }";

/// One page of orders created in a period, oldest first.
pub const ORDERS_QUERY: &str = "query pinrelayOrders($first: Int!, $after: String, $query: String!) { \
orders(first: $first, after: $after, sortKey: CREATED_AT, query: $query) { nodes { legacyResourceId name \
createdAt test sourceName cancelledAt displayFinancialStatus currentSubtotalPriceSet { shopMoney { amount currencyCode } } \
currentTotalPriceSet { shopMoney { amount currencyCode } } } \
pageInfo { hasNextPage endCursor } } }";

/// Lists webhook subscriptions (API 2025-10 and later).
pub const LIST_QUERY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }";

/// Lists webhook subscriptions (API versions before 2025-10).
pub const LIST_QUERY_LEGACY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } \
pageInfo { hasNextPage endCursor } } }";

/// Creates one webhook subscription; `webhookSubscription` is `{uri}` (or `{callbackUrl, format}`
/// before 2025-10).
pub const CREATE_MUTATION: &str = "mutation pinrelayWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, \
$webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, \
webhookSubscription: $webhookSubscription) { webhookSubscription { id topic } userErrors { field message } } }";

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
    fn clamp(&self, wait: Duration) -> Duration {
        wait.clamp(self.min_wait, self.max_wait.max(self.min_wait))
    }

    /// The backoff before retry `n` (1-based) after a 5xx: `min_wait * 2^(n-1)`, capped.
    fn backoff(&self, n: u32) -> Duration {
        self.clamp(retry::exponential(self.min_wait, n, self.max_wait))
    }
}

/// The shop's settings that matter to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShopInfo {
    /// The shop's display name.
    pub name: String,
    /// `name.myshopify.com`.
    #[serde(rename = "myshopifyDomain")]
    pub myshopify_domain: String,
    /// The shop's time zone, as IANA names it (`America/New_York`).
    #[serde(rename = "ianaTimezone")]
    pub iana_timezone: String,
    /// The shop's currency (ISO 4217).
    #[serde(rename = "currencyCode")]
    pub currency_code: String,
}

/// One order as [`AdminApi::orders`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOrder {
    /// The numeric id (the webhook's `id`, GraphQL's `legacyResourceId`).
    pub id: u64,
    /// The order name (`#1001`).
    pub name: String,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// A test order (Bogus Gateway or a development store).
    pub test: bool,
    /// The sales channel (`web`, `pos`, an app id...), when Shopify gives one.
    pub source_name: Option<String>,
    /// When the order was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `displayFinancialStatus` (`PAID`, `PENDING`, `VOIDED`…), when Shopify gives one.
    pub financial_status: Option<String>,
    /// The current subtotal (after discounts and edits, before shipping and tax) in the shop's
    /// currency, the decimal string Shopify gives (`"199.00"`): the relay's default `value`.
    pub subtotal: String,
    /// The current total in the shop's currency.
    pub total: String,
    /// The currency of `subtotal` and `total` (ISO 4217).
    pub currency: String,
}

/// One webhook subscription of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// The subscription's GraphQL id.
    pub id: String,
    /// The topic as a GraphQL enum (`ORDERS_CREATE`).
    pub topic: String,
    /// Where it delivers: `uri`, or the HTTP `callbackUrl` before 2025-10 (`None` for other
    /// endpoint kinds).
    pub uri: Option<String>,
}

/// What [`AdminApi::create_webhook_subscription`] got from Shopify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionCreated {
    /// Created, with this id.
    Created(String),
    /// Refused, with Shopify's `userErrors` (`field.path: message`).
    Refused(Vec<String>),
}

/// A client of one shop's Admin API.
#[derive(Debug, Clone)]
pub struct AdminApi {
    client: reqwest::Client,
    base: String,
    version: String,
    token: SecretString,
    retry: RetryPolicy,
}

impl AdminApi {
    /// A client for `shop` (`name` or `name.myshopify.com`) at `https://{shop}`, or at `base_url`.
    ///
    /// # Errors
    /// [`AdminError::InvalidShop`], [`AdminError::InvalidVersion`], [`AdminError::InvalidBaseUrl`].
    pub fn new(
        shop: &str,
        token: SecretString,
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
        Ok(Self {
            client,
            base,
            version: api_version.to_owned(),
            token,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with other waits and attempts.
    #[must_use]
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The GraphQL endpoint: `{base}/admin/api/{version}/graphql.json`.
    pub fn graphql_url(&self) -> String {
        format!("{}/admin/api/{}/graphql.json", self.base, self.version)
    }

    /// Whether this API version's webhook subscriptions take `uri` (else `callbackUrl`).
    pub fn uses_uri(&self) -> bool {
        self.version.as_str() >= URI_SINCE
    }

    /// One GraphQL call; returns `data`. Waits out throttling, 429 and 5xx within the
    /// [`RetryPolicy`].
    ///
    /// # Errors
    /// [`AdminError`]: other GraphQL `errors` as [`AdminError::GraphQl`], HTTP failures by status.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, AdminError> {
        let url = &self.graphql_url();
        let body = &json!({ "query": query, "variables": variables });
        retry::retry(RETRIED, self.retry.max_attempts, |attempt| async move {
            let request = self.client.post(url).json(body);
            match self.send(request, url).await? {
                Answer::Body(bytes) => match read_graphql(&bytes)? {
                    GraphQlReply::Data(data) => Ok(data),
                    GraphQlReply::Throttled(cost) => Err(Failure::Retry {
                        wait: self.retry.clamp(throttle_wait(cost.as_ref())),
                        error: AdminError::Throttled { attempts: attempt },
                    }),
                },
                Answer::Retry(retry) => Err(self.retry_failure(retry, attempt)),
            }
        })
        .await
    }

    /// The shop's name, domain, time zone and currency.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn shop(&self) -> Result<ShopInfo, AdminError> {
        let data = self.graphql(SHOP_QUERY, json!({})).await?;
        serde_json::from_value(data["shop"].clone()).map_err(|e| AdminError::UnexpectedAnswer {
            what: "shop",
            source: Some(e),
        })
    }

    /// Every order created in `[from, to)`, oldest first, 250 per page; `progress` gets the
    /// running count after each page.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<AdminOrder>, AdminError> {
        let search = orders_search(from, to);
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let variables = json!({ "first": ORDERS_PAGE_SIZE, "after": after, "query": search });
            let data = self.graphql(ORDERS_QUERY, variables).await?;
            let page: Page<OrderNode> =
                serde_json::from_value(data["orders"].clone()).map_err(|e| {
                    AdminError::UnexpectedAnswer {
                        what: "orders",
                        source: Some(e),
                    }
                })?;
            for node in page.nodes {
                all.push(node.into_order()?);
            }
            progress(all.len());
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// One order's JSON as the REST Admin API has it (`GET orders/{id}.json`, the inner `order`
    /// object). REST rather than GraphQL because this resource has the shape of the
    /// `orders/create` webhook body, so [`crate::mapping::translate`] reads it as one.
    ///
    /// # Errors
    /// [`AdminError::OrderNotFound`] on 404; otherwise as [`AdminApi::graphql`].
    pub async fn order_payload(&self, id: u64) -> Result<Vec<u8>, AdminError> {
        let url = &format!("{}/admin/api/{}/orders/{id}.json", self.base, self.version);
        retry::retry(RETRIED, self.retry.max_attempts, |attempt| async move {
            match self.send(self.client.get(url), url).await {
                Ok(Answer::Body(bytes)) => Ok(inner_order(&bytes)?),
                Err(AdminError::NotFound { .. }) => Err(AdminError::OrderNotFound(id).into()),
                Err(e) => Err(e.into()),
                Ok(Answer::Retry(retry)) => Err(self.retry_failure(retry, attempt)),
            }
        })
        .await
    }

    /// Every webhook subscription of the shop, page by page.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>, AdminError> {
        let query = if self.uses_uri() {
            LIST_QUERY
        } else {
            LIST_QUERY_LEGACY
        };
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let data = self.graphql(query, json!({ "after": after })).await?;
            let page: Page<SubscriptionNode> =
                serde_json::from_value(data["webhookSubscriptions"].clone()).map_err(|e| {
                    AdminError::UnexpectedAnswer {
                        what: "webhookSubscriptions",
                        source: Some(e),
                    }
                })?;
            all.extend(page.nodes.into_iter().map(|n| WebhookSubscription {
                id: n.id,
                topic: n.topic,
                uri: n.uri.or(n.endpoint.and_then(|e| e.callback_url)),
            }));
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// Subscribes `topic` (`orders/create` or `ORDERS_CREATE`) to `uri`, as `uri` from 2025-10
    /// and as a JSON `callbackUrl` before.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; Shopify's `userErrors` are [`SubscriptionCreated::Refused`].
    pub async fn create_webhook_subscription(
        &self,
        topic: &str,
        uri: &str,
    ) -> Result<SubscriptionCreated, AdminError> {
        let subscription = if self.uses_uri() {
            json!({ "uri": uri })
        } else {
            json!({ "callbackUrl": uri, "format": "JSON" })
        };
        let variables = json!({ "topic": topic_enum(topic), "webhookSubscription": subscription });
        let data = self.graphql(CREATE_MUTATION, variables).await?;
        let payload: CreatePayload =
            serde_json::from_value(data["webhookSubscriptionCreate"].clone()).map_err(|e| {
                AdminError::UnexpectedAnswer {
                    what: "webhookSubscriptionCreate",
                    source: Some(e),
                }
            })?;
        if !payload.user_errors.is_empty() {
            return Ok(SubscriptionCreated::Refused(
                payload
                    .user_errors
                    .into_iter()
                    .map(|e| match e.field {
                        Some(field) if !field.is_empty() => {
                            format!("{}: {}", field.join("."), e.message)
                        }
                        _ => e.message,
                    })
                    .collect(),
            ));
        }
        Ok(match payload.webhook_subscription {
            Some(created) => SubscriptionCreated::Created(created.id),
            None => SubscriptionCreated::Refused(vec![
                "Shopify returned neither a subscription nor an error".to_owned(),
            ]),
        })
    }

    /// Sends one request with the token; maps the statuses no retry can cure to errors.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Answer, AdminError> {
        let response = match request
            .timeout(self.retry.attempt_timeout)
            .header("X-Shopify-Access-Token", self.token.expose_secret())
            .send()
            .await
        {
            Ok(response) => response,
            // A connection that failed or timed out is a network blip until retries say otherwise.
            Err(source) if source.is_connect() || source.is_timeout() => {
                return Ok(Answer::Retry(Retryable::Network(AdminError::Unreachable {
                    url: url.to_owned(),
                    source,
                })));
            }
            Err(source) => {
                return Err(AdminError::Unreachable {
                    url: url.to_owned(),
                    source,
                });
            }
        };
        let status = response.status().as_u16();
        match status {
            401 => return Err(AdminError::InvalidToken),
            402 => return Err(AdminError::ShopUnavailable),
            403 => return Err(AdminError::MissingScope),
            404 => {
                return Err(AdminError::NotFound {
                    url: url.to_owned(),
                });
            }
            429 => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                return Ok(Answer::Retry(Retryable::RateLimited(retry_after)));
            }
            500..=599 => return Ok(Answer::Retry(Retryable::ServerError(status))),
            200..=299 => {}
            _ => {
                return Err(AdminError::Status {
                    status,
                    attempts: 1,
                });
            }
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|source| AdminError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        Ok(Answer::Body(bytes.to_vec()))
    }

    /// The wait before retrying after a 429 or a 5xx, with the error once attempts are spent.
    fn retry_failure(&self, retry: Retryable, attempt: u32) -> Failure<AdminError> {
        match retry {
            Retryable::RateLimited(after) => Failure::Retry {
                wait: self.retry.clamp(after.unwrap_or(self.retry.min_wait)),
                error: AdminError::Throttled { attempts: attempt },
            },
            Retryable::ServerError(status) => Failure::Retry {
                wait: self.retry.backoff(attempt),
                error: AdminError::Status {
                    status,
                    attempts: attempt,
                },
            },
            Retryable::Network(error) => Failure::Retry {
                wait: self.retry.backoff(attempt),
                error,
            },
        }
    }
}

/// What one HTTP exchange gave.
enum Answer {
    /// 2xx with this body.
    Body(Vec<u8>),
    /// An answer worth retrying.
    Retry(Retryable),
}

/// The HTTP answers retried.
enum Retryable {
    /// 429, with `Retry-After` when given.
    RateLimited(Option<Duration>),
    /// 5xx.
    ServerError(u16),
    /// The connection failed or timed out; the error is the one given once retries are spent.
    Network(AdminError),
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
struct Cost {
    #[serde(rename = "requestedQueryCost")]
    requested_query_cost: f64,
    #[serde(rename = "throttleStatus")]
    throttle_status: ThrottleStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
struct ThrottleStatus {
    #[serde(rename = "currentlyAvailable")]
    currently_available: f64,
    #[serde(rename = "restoreRate")]
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

/// The bytes of `order` in a REST `{"order": {...}}` body.
fn inner_order(body: &[u8]) -> Result<Vec<u8>, AdminError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        order: &'a RawValue,
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| AdminError::UnexpectedAnswer {
            what: "orders/{id}.json",
            source: Some(e),
        })?;
    Ok(envelope.order.get().as_bytes().to_vec())
}

/// Shopify's search syntax for `[from, to)` on `created_at`.
fn orders_search(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "created_at:>='{}' created_at:<'{}'",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        to.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

#[derive(Deserialize)]
struct Page<N> {
    nodes: Vec<N>,
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(rename = "hasNextPage")]
    has_next_page: bool,
    #[serde(rename = "endCursor")]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct OrderNode {
    /// `UnsignedInt64`, which GraphQL serializes as a string.
    #[serde(rename = "legacyResourceId")]
    legacy_resource_id: Value,
    name: String,
    #[serde(rename = "createdAt")]
    created_at: DateTime<Utc>,
    #[serde(default)]
    test: bool,
    #[serde(rename = "sourceName", default)]
    source_name: Option<String>,
    #[serde(rename = "cancelledAt", default)]
    cancelled_at: Option<DateTime<Utc>>,
    #[serde(rename = "displayFinancialStatus", default)]
    financial_status: Option<String>,
    #[serde(rename = "currentSubtotalPriceSet")]
    subtotal_price_set: MoneyBag,
    #[serde(rename = "currentTotalPriceSet")]
    total_price_set: MoneyBag,
}

#[derive(Deserialize)]
struct MoneyBag {
    #[serde(rename = "shopMoney")]
    shop_money: Money,
}

#[derive(Deserialize)]
struct Money {
    amount: String,
    #[serde(rename = "currencyCode")]
    currency_code: String,
}

impl OrderNode {
    fn into_order(self) -> Result<AdminOrder, AdminError> {
        let id = match &self.legacy_resource_id {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or(AdminError::UnexpectedAnswer {
            what: "orders (legacyResourceId)",
            source: None,
        })?;
        Ok(AdminOrder {
            id,
            name: self.name,
            created_at: self.created_at,
            test: self.test,
            source_name: self.source_name,
            cancelled_at: self.cancelled_at,
            financial_status: self.financial_status,
            subtotal: self.subtotal_price_set.shop_money.amount,
            total: self.total_price_set.shop_money.amount,
            currency: self.total_price_set.shop_money.currency_code,
        })
    }
}

#[derive(Deserialize)]
struct SubscriptionNode {
    id: String,
    topic: String,
    uri: Option<String>,
    endpoint: Option<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    #[serde(rename = "callbackUrl")]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
struct CreatePayload {
    #[serde(rename = "webhookSubscription")]
    webhook_subscription: Option<Created>,
    #[serde(rename = "userErrors", default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    message: String,
}

/// `orders/create` -> `ORDERS_CREATE` (a GraphQL `WebhookSubscriptionTopic`).
pub fn topic_enum(topic: &str) -> String {
    topic.replace(['/', '.'], "_").to_ascii_uppercase()
}

/// `name` -> `name.myshopify.com`; a domain stays as given (lowercased); `None` when invalid.
pub fn shop_domain(shop: &str) -> Option<String> {
    let shop = shop
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let valid = !shop.is_empty()
        && shop
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !shop.starts_with(['.', '-']);
    match valid {
        false => None,
        true if shop.contains('.') => Some(shop),
        true => Some(format!("{shop}.myshopify.com")),
    }
}

/// Whether `v` is an Admin API version: `YYYY-MM` or `unstable`.
pub fn is_api_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn order_nodes_parse_with_legacy_resource_id_as_a_string() {
        let node: OrderNode = serde_json::from_value(json!({
            "legacyResourceId": "820982911946154508",
            "name": "#9999",
            "createdAt": "2026-11-30T23:59:59Z",
            "test": true,
            "sourceName": "web",
            "cancelledAt": null,
            "currentSubtotalPriceSet": {"shopMoney": {"amount": "180.0", "currencyCode": "USD"}},
            "currentTotalPriceSet": {"shopMoney": {"amount": "199.0", "currencyCode": "USD"}}
        }))
        .unwrap();
        let order = node.into_order().unwrap();
        assert_eq!(
            order,
            AdminOrder {
                id: 820_982_911_946_154_508,
                name: "#9999".into(),
                created_at: "2026-11-30T23:59:59Z".parse().unwrap(),
                test: true,
                source_name: Some("web".into()),
                cancelled_at: None,
                financial_status: None,
                subtotal: "180.0".into(),
                total: "199.0".into(),
                currency: "USD".into(),
            }
        );
    }

    #[test]
    fn order_nodes_with_a_bad_id_are_an_error() {
        let node: OrderNode = serde_json::from_value(json!({
            "legacyResourceId": "gid://shopify/Order/1",
            "name": "#1",
            "createdAt": "2026-11-30T23:59:59Z",
            "cancelledAt": "2026-12-01T00:00:00-05:00",
            "currentSubtotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "EUR"}},
            "currentTotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "EUR"}}
        }))
        .unwrap();
        assert!(matches!(
            node.into_order(),
            Err(AdminError::UnexpectedAnswer { .. })
        ));
    }

    #[test]
    fn the_inner_order_is_returned_byte_for_byte() {
        let body = br##"{"order": {"id": 1, "name": "#1001" }}"##;
        assert_eq!(
            inner_order(body).unwrap(),
            br##"{"id": 1, "name": "#1001" }"##
        );
        assert!(inner_order(br#"{"errors":"Not Found"}"#).is_err());
    }

    #[test]
    fn the_search_is_a_half_open_created_at_range() {
        let from = "2026-11-01T00:00:00Z".parse().unwrap();
        let to = "2026-12-01T05:00:00Z".parse().unwrap();
        assert_eq!(
            orders_search(from, to),
            "created_at:>='2026-11-01T00:00:00Z' created_at:<'2026-12-01T05:00:00Z'"
        );
    }

    #[test]
    fn retry_after_takes_decimal_seconds() {
        assert_eq!(parse_retry_after("2.0"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn topics_become_graphql_enums() {
        assert_eq!(topic_enum("orders/create"), "ORDERS_CREATE");
        assert_eq!(topic_enum("ORDERS_CREATE"), "ORDERS_CREATE");
        assert_eq!(
            topic_enum("customers/data_request"),
            "CUSTOMERS_DATA_REQUEST"
        );
    }

    #[test]
    fn shop_names_become_myshopify_domains() {
        assert_eq!(shop_domain("acme").as_deref(), Some("acme.myshopify.com"));
        assert_eq!(
            shop_domain("https://Acme.myshopify.com/").as_deref(),
            Some("acme.myshopify.com")
        );
        assert_eq!(shop_domain("acme/../x"), None);
        assert_eq!(shop_domain(""), None);
    }

    #[test]
    fn accepts_dated_and_unstable_versions_only() {
        assert!(is_api_version("2026-07"));
        assert!(is_api_version("unstable"));
        assert!(!is_api_version("2026-7"));
        assert!(!is_api_version("latest"));
    }

    #[test]
    fn unstable_and_2025_10_use_uri_subscriptions() {
        let api = |v| AdminApi::new("acme", SecretString::from("t"), v, None).unwrap();
        assert!(api("unstable").uses_uri());
        assert!(api("2025-10").uses_uri());
        assert!(!api("2025-07").uses_uri());
        assert_eq!(
            api("2026-07").graphql_url(),
            "https://acme.myshopify.com/admin/api/2026-07/graphql.json"
        );
    }

    #[test]
    fn the_token_stays_out_of_debug() {
        let api =
            AdminApi::new("acme", SecretString::from("shpat_secret"), "2026-07", None).unwrap();
        assert!(!format!("{api:?}").contains("shpat_secret"));
    }
}
