//! [`Ingest`]: the webhook endpoint's logic, shared by the Lambda and `pinrelay serve`.
//!
//! Route, verify the HMAC over the exact body bytes, check the shop, encode, enqueue, and map each
//! outcome to one status code. Shopify retries anything but 2xx for 4 hours, so 2xx means "durably
//! queued" and nothing else; failures that a retry can fix answer 503.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use crate::browser::{self, BrowserEventError, ReceivedBrowserEvent};
use crate::metrics::{Metrics, Unit, names};
use crate::queue::{EncodeError, Envelope, Queue, QueueError, Source};
use crate::registry::{CachedDirectory, DefaultStore, Directory, Lookup, NoRegistry};
use crate::shopify::{self, MetadataError, VerifyError, WebhookMetadata, WebhookSecrets};

/// The path Shopify posts to.
pub const WEBHOOK_PATH: &str = "/webhooks/shopify";

/// The path the storefront pixel posts browser events to (unauthenticated; see [`crate::browser`]).
pub const BROWSER_PATH: &str = "/events/browser";

/// The longest ingest waits for the queue before answering 503 (Shopify's budget is 5 s).
pub const ENQUEUE_TIMEOUT: Duration = Duration::from_millis(2500);

/// Settings of the endpoint.
#[derive(Clone)]
pub struct IngestConfig {
    /// Which store each shop is, and so its webhook secrets; the storefront endpoint serves only
    /// the shops it lists.
    pub shops: Arc<dyn Directory>,
    /// The largest message to enqueue ([`crate::queue::MAX_ENQUEUE_BYTES`]: the queue's limit less
    /// room for a dead-letter reason).
    pub max_message_bytes: usize,
    /// Delay before an order webhook becomes visible to dispatch.
    pub order_delay: Duration,
}

impl IngestConfig {
    /// One store, the relay's variables: webhooks of every shop in `allowed_shops` (any shop when
    /// `None`) are verified with `secrets`; the storefront endpoint serves `allowed_shops` only.
    pub fn single(
        secrets: &WebhookSecrets,
        allowed_shops: Option<HashSet<String>>,
        max_message_bytes: usize,
        order_delay: Duration,
    ) -> Self {
        let default = DefaultStore::new(secrets, allowed_shops);
        Self {
            shops: Arc::new(CachedDirectory::<NoRegistry>::new(None, default)),
            max_message_bytes,
            order_delay,
        }
    }
}

impl std::fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestConfig")
            .field("max_message_bytes", &self.max_message_bytes)
            .field("order_delay", &self.order_delay)
            .finish_non_exhaustive()
    }
}

/// An HTTP request, reduced to what ingest reads.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path, without query string.
    pub path: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The exact body bytes (after any base64 decoding by the platform).
    pub body: &'a [u8],
    /// The client's IP address as the platform saw it (Function URL `requestContext.http.sourceIp`,
    /// or the socket peer for `pinrelay serve`); used for browser events only.
    pub source_ip: Option<std::net::IpAddr>,
}

/// The answer: a status, a small JSON body, and an `Allow` header for 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// A JSON document, `{"status": ...}` or `{"error": ...}`.
    pub body: String,
    /// Set on 405.
    pub allow: Option<&'static str>,
    /// Set on the browser endpoint: CORS headers for the pixel's `Origin: null` requests.
    pub cors: bool,
}

impl Reply {
    fn ok(detail: &str) -> Self {
        Self {
            status: StatusCode::OK,
            body: json!({ "status": detail }).to_string(),
            allow: None,
            cors: false,
        }
    }

    fn error(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": message }).to_string(),
            allow: None,
            cors: false,
        }
    }

    /// Every header the reply needs besides `Content-Type: application/json`.
    pub fn headers(&self) -> Vec<(&'static str, &'static str)> {
        let mut headers = Vec::new();
        if let Some(allow) = self.allow {
            headers.push(("allow", allow));
        }
        if self.cors {
            headers.extend([
                // Custom pixels run in a sandboxed iframe and send `Origin: null`; the endpoint
                // takes no credentials, so any origin is safe.
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "POST, OPTIONS"),
                ("access-control-allow-headers", "content-type"),
                ("access-control-max-age", "86400"),
            ]);
        }
        headers
    }
}

/// Why a request was not enqueued; each is a metric reason and one status code.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Unknown path.
    #[error("not found; Shopify webhooks go to POST {WEBHOOK_PATH}")]
    NotFound,
    /// Wrong method on the webhook path.
    #[error("method not allowed; use POST")]
    MethodNotAllowed,
    /// The HMAC check failed.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// A required header is missing.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The storefront endpoint serves only the shops the relay lists: registered stores, or
    /// `SHOPIFY_SHOP_DOMAINS` (it is unauthenticated, so it fails closed).
    #[error(
        "shop {0} is not served by this storefront endpoint: register it (pinrelay shops add) or add it to SHOPIFY_SHOP_DOMAINS (stack parameter ShopDomains)"
    )]
    ShopNotAllowed(String),
    /// A webhook naming a shop the relay does not serve (not registered, disabled, not in the
    /// allow-list, or no header): answered like a bad signature, so a stranger learns nothing.
    #[error("shop {0:?} is not served by this relay (pinrelay shops add)")]
    UnknownShop(String),
    /// A signed order of another store, sent under this shop's header (stores sharing an app
    /// secret): the `order_status_url` names another shop id.
    #[error("the signed order belongs to another store than {0}")]
    ShopMismatch(String),
    /// The shop registry cannot be read and has no earlier answer for the shop.
    #[error("the shop registry is unavailable; Shopify will retry")]
    RegistryUnavailable,
    /// The body does not fit the queue even compressed.
    #[error(transparent)]
    TooLarge(#[from] EncodeError),
    /// The queue failed or timed out.
    #[error("the queue is unavailable; Shopify will retry: {0}")]
    QueueUnavailable(#[source] QueueError),
    /// A browser event outside the wire format.
    #[error(transparent)]
    BrowserEvent(#[from] BrowserEventError),
}

impl Rejection {
    /// The status code Shopify sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Signature(_) | Rejection::UnknownShop(_) | Rejection::ShopMismatch(_) => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::RegistryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Metadata(_) => StatusCode::BAD_REQUEST,
            Rejection::ShopNotAllowed(_) => StatusCode::FORBIDDEN,
            Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::QueueUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::BrowserEvent(BrowserEventError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::BrowserEvent(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The reason of a webhook whose HMAC does not match the secret (`pinrelay doctor` counts it).
    pub const BAD_SIGNATURE: &'static str = "bad_signature";

    /// The metric reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NotFound => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::Signature(VerifyError::MissingHeader) => "missing_signature",
            Rejection::Signature(VerifyError::Malformed) => "malformed_signature",
            Rejection::Signature(VerifyError::Mismatch) => Self::BAD_SIGNATURE,
            Rejection::Metadata(MetadataError::InvalidShopDomain(_)) => "invalid_shop_domain",
            Rejection::Metadata(_) => "missing_header",
            Rejection::ShopNotAllowed(_) => "shop_not_allowed",
            Rejection::UnknownShop(_) => "unknown_shop",
            Rejection::ShopMismatch(_) => "shop_mismatch",
            Rejection::RegistryUnavailable => "registry_unavailable",
            Rejection::TooLarge(_) => "too_large",
            Rejection::QueueUnavailable(_) => "queue_unavailable",
            Rejection::BrowserEvent(_) => "invalid_browser_event",
        }
    }
}

/// The webhook endpoint over a [`Queue`].
pub struct Ingest<Q> {
    queue: Q,
    config: IngestConfig,
    metrics: Metrics,
}

impl<Q: Queue> Ingest<Q> {
    /// Builds the endpoint.
    pub fn new(queue: Q, config: IngestConfig, metrics: Metrics) -> Self {
        Self {
            queue,
            config,
            metrics,
        }
    }

    /// Handles one request; never fails, every outcome is a [`Reply`].
    pub async fn handle(&self, request: Request<'_>, now: DateTime<Utc>) -> Reply {
        let started = Instant::now();
        let path = request.path.trim_end_matches('/');
        if path == BROWSER_PATH {
            return self.handle_browser(&request, now, started).await;
        }
        if path != WEBHOOK_PATH {
            return self.reject(Rejection::NotFound, None, started);
        }
        if request.method != Method::POST {
            let mut reply = self.reject(Rejection::MethodNotAllowed, None, started);
            reply.allow = Some("POST");
            return reply;
        }
        self.metrics.count(names::WEBHOOKS_RECEIVED, None, 1);
        // The shop header picks the store, and so the secrets; nothing else is read before the
        // body is verified with them. An unknown shop is answered like a bad signature.
        let domain = match shopify::metadata::shop_domain(request.headers) {
            Ok(domain) => domain,
            Err(MetadataError::MissingShopDomain) => {
                return self.reject(Rejection::UnknownShop(String::new()), None, started);
            }
            Err(e) => return self.reject(e.into(), None, started),
        };
        let store = match self.config.shops.lookup(&domain).await {
            Lookup::Known(store) => store,
            Lookup::Unknown => return self.reject(Rejection::UnknownShop(domain), None, started),
            Lookup::Unavailable => {
                return self.reject(Rejection::RegistryUnavailable, None, started);
            }
        };
        if let Err(e) = shopify::verify(request.headers, request.body, &store.signing_secrets()) {
            return self.reject(e.into(), None, started);
        }
        let metadata = match WebhookMetadata::from_headers(request.headers) {
            Ok(m) => m,
            Err(e) => return self.reject(e.into(), None, started),
        };
        if let Some(shop_id) = store.entry.shop_id
            && metadata.topic.is_order()
            && !shopify::order_belongs_to(request.body, shop_id)
        {
            return self.reject(Rejection::ShopMismatch(domain), Some(&metadata), started);
        }
        match self.enqueue(&metadata, request.body, now).await {
            Ok(()) => {
                let elapsed = started.elapsed();
                self.metrics.record(
                    None,
                    &[
                        (names::WEBHOOKS_ENQUEUED, 1.0, Unit::Count),
                        (
                            names::ENQUEUE_LATENCY,
                            elapsed.as_secs_f64() * 1000.0,
                            Unit::Milliseconds,
                        ),
                    ],
                );
                tracing::info!(
                    topic = %metadata.topic,
                    shop = %metadata.shop_domain,
                    webhook_id = metadata.webhook_id.as_deref().unwrap_or("-"),
                    outcome = "enqueued",
                    latency_ms = elapsed.as_millis() as u64,
                    "webhook enqueued"
                );
                Reply::ok("enqueued")
            }
            Err(e) => self.reject(e, Some(&metadata), started),
        }
    }

    async fn handle_browser(
        &self,
        request: &Request<'_>,
        now: DateTime<Utc>,
        started: Instant,
    ) -> Reply {
        let with_cors = |mut reply: Reply| {
            reply.cors = true;
            reply
        };
        if request.method == Method::OPTIONS {
            return Reply {
                status: StatusCode::NO_CONTENT,
                body: String::new(),
                allow: Some("POST, OPTIONS"),
                cors: true,
            };
        }
        if request.method != Method::POST {
            let mut reply = self.reject(Rejection::MethodNotAllowed, None, started);
            reply.allow = Some("POST, OPTIONS");
            return with_cors(reply);
        }
        let event = match browser::parse(request.body).and_then(|e| {
            browser::check_time(&e, now)?;
            Ok(e)
        }) {
            Ok(event) => event,
            Err(e) => return with_cors(self.reject(e.into(), None, started)),
        };
        let metadata = WebhookMetadata {
            topic: format!("browser/{}", event.event.as_str())
                .parse()
                .unwrap_or_else(|e| match e {}),
            shop_domain: event.shop.trim().to_ascii_lowercase(),
            webhook_id: None,
            event_id: Some(event.event_id.clone()),
            triggered_at: None,
            api_version: None,
        };
        if !self.config.shops.listed(&metadata.shop_domain).await {
            let shop = metadata.shop_domain.clone();
            return with_cors(self.reject(
                Rejection::ShopNotAllowed(shop),
                Some(&metadata),
                started,
            ));
        }
        if event.probe {
            // `pinrelay doctor`: the endpoint, the shop and the CORS answer work; nothing is kept.
            return Reply {
                status: StatusCode::ACCEPTED,
                body: json!({ "status": "probe" }).to_string(),
                allow: None,
                cors: true,
            };
        }
        // Without marketing consent (the pixel's consent-only checkout record) neither the IP
        // address nor the user agent is queued, nor anything else that identifies the shopper.
        let consented = event.has_marketing_consent();
        let received = ReceivedBrowserEvent {
            event: if consented {
                event
            } else {
                event.consent_only()
            },
            client_ip: request.source_ip.filter(|_| consented),
            user_agent: request
                .headers
                .get(http::header::USER_AGENT)
                .filter(|_| consented)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(1024).collect()),
        };
        let body = match serde_json::to_vec(&received) {
            Ok(body) => body,
            Err(e) => {
                let e = BrowserEventError::Invalid(e.to_string());
                return with_cors(self.reject(e.into(), Some(&metadata), started));
            }
        };
        let result = self
            .send(Source::Browser, &metadata, &body, Duration::ZERO, now)
            .await;
        match result {
            Ok(()) => {
                self.metrics.count(names::BROWSER_EVENTS_ENQUEUED, None, 1);
                Reply {
                    status: StatusCode::ACCEPTED,
                    body: json!({ "status": "accepted" }).to_string(),
                    allow: None,
                    cors: true,
                }
            }
            Err(e) => with_cors(self.reject(e, Some(&metadata), started)),
        }
    }

    async fn enqueue(
        &self,
        metadata: &WebhookMetadata,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let delay = if metadata.topic.is_order() {
            self.config.order_delay
        } else {
            Duration::ZERO
        };
        self.send(Source::Webhook, metadata, body, delay, now).await
    }

    async fn send(
        &self,
        source: Source,
        metadata: &WebhookMetadata,
        body: &[u8],
        delay: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let message = Envelope {
            source,
            metadata: metadata.clone(),
            received_at: now,
            body: body.to_vec(),
        }
        .encode(self.config.max_message_bytes, delay)?;
        match tokio::time::timeout(ENQUEUE_TIMEOUT, self.queue.send(&message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(QueueError::TooLarge)) => Err(Rejection::TooLarge(EncodeError::TooLarge {
                bytes: message.size(),
                limit: self.config.max_message_bytes,
            })),
            Ok(Err(e)) => Err(Rejection::QueueUnavailable(e)),
            Err(_elapsed) => Err(Rejection::QueueUnavailable(QueueError::Unavailable(
                format!("no answer within {ENQUEUE_TIMEOUT:?}").into(),
            ))),
        }
    }

    fn reject(
        &self,
        rejection: Rejection,
        metadata: Option<&WebhookMetadata>,
        started: Instant,
    ) -> Reply {
        let status = rejection.status();
        self.metrics
            .count(names::WEBHOOKS_REJECTED, Some(rejection.reason()), 1);
        let topic = metadata.map(|m| m.topic.to_string());
        let shop = metadata.map(|m| m.shop_domain.as_str());
        let webhook_id = metadata.and_then(|m| m.webhook_id.as_deref());
        let latency_ms = started.elapsed().as_millis() as u64;
        match &rejection {
            Rejection::QueueUnavailable(e) => tracing::error!(
                topic, shop, webhook_id, outcome = rejection.reason(), latency_ms,
                error.message = %e, error.cause_chain = ?e,
                "webhook NOT enqueued; answered 503 so Shopify retries it (nothing is lost unless all 8 retries fail)"
            ),
            Rejection::TooLarge(e) => tracing::error!(
                topic, shop, webhook_id, outcome = rejection.reason(), latency_ms,
                error.message = %e,
                "webhook too large for the queue even compressed; answered 413 and it will not be delivered"
            ),
            _ => tracing::warn!(
                topic, shop, webhook_id, outcome = rejection.reason(), latency_ms,
                error.message = %rejection,
                "webhook rejected"
            ),
        }
        Reply::error(status, &rejection.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::queue::{EncodedMessage, MAX_MESSAGE_BYTES, attr};

    #[derive(Clone, Default)]
    struct Recording(Arc<Mutex<Vec<EncodedMessage>>>);

    impl Queue for Recording {
        async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(message.clone());
            Ok(())
        }
    }

    fn ingest(queue: Recording) -> Ingest<Recording> {
        Ingest::new(
            queue,
            IngestConfig::single(
                &WebhookSecrets::from_comma_separated("s"),
                Some(["example.myshopify.com".to_owned()].into()),
                MAX_MESSAGE_BYTES,
                Duration::ZERO,
            ),
            Metrics::in_memory("test"),
        )
    }

    fn browser_body(shop: &str) -> Vec<u8> {
        json!({"v": 1, "shop": shop, "event": "page_visit", "event_id": "e-1",
               "timestamp": "2026-11-29T08:00:00Z", "consent": {"marketing": true}})
        .to_string()
        .into_bytes()
    }

    async fn call(ingest: &Ingest<Recording>, method: Method, body: &[u8]) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::USER_AGENT, "Mozilla/5.0".parse().unwrap());
        let request = Request {
            method: &method,
            path: BROWSER_PATH,
            headers: &headers,
            body,
            source_ip: "203.0.113.7".parse().ok(),
        };
        // Half an hour after the events' own timestamp.
        let now = "2026-11-29T08:30:00Z".parse().unwrap();
        ingest.handle(request, now).await
    }

    #[tokio::test]
    async fn browser_preflight_answers_cors_for_origin_null() {
        let reply = call(&ingest(Recording::default()), Method::OPTIONS, b"").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(
            reply
                .headers()
                .contains(&("access-control-allow-origin", "*"))
        );
    }

    #[tokio::test]
    async fn browser_events_are_enqueued_with_the_ip_and_agent_of_the_request() {
        let queue = Recording::default();
        let reply = call(
            &ingest(queue.clone()),
            Method::POST,
            &browser_body("example.myshopify.com"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert!(reply.cors);
        let sent = queue.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let attributes = sent[0].attributes.clone().into_iter().collect();
        let relay = crate::queue::RelayFacts::of(&attributes);
        assert_eq!(relay.source.as_deref(), Some("browser"));
        assert_eq!(sent[0].attributes[attr::TOPIC], "browser/page_visit");
        let received: ReceivedBrowserEvent = serde_json::from_str(&sent[0].body).unwrap();
        assert_eq!(received.client_ip, "203.0.113.7".parse().ok());
        assert_eq!(received.user_agent.as_deref(), Some("Mozilla/5.0"));
    }

    #[tokio::test]
    async fn doctors_probe_is_answered_like_an_event_and_never_queued() {
        let probe = |shop: &str| {
            let mut body: serde_json::Value = serde_json::from_slice(&browser_body(shop)).unwrap();
            body["probe"] = true.into();
            body.to_string().into_bytes()
        };
        let queue = Recording::default();
        let ingest = ingest(queue.clone());
        let reply = call(&ingest, Method::POST, &probe("example.myshopify.com")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert!(
            reply
                .headers()
                .contains(&("access-control-allow-origin", "*"))
        );
        // An unregistered shop is refused as any event would be.
        let reply = call(&ingest, Method::POST, &probe("other.myshopify.com")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_consent_only_checkout_is_accepted_and_queued_without_ip_agent_or_shopper_data() {
        for consent in [
            json!({"marketing": false, "sale_of_data": false, "analytics": false}),
            json!({}),
        ] {
            let queue = Recording::default();
            // As the pixel posts it, plus the fields a forged record could add.
            let body = json!({"v": 1, "shop": "example.myshopify.com", "event": "checkout",
                "event_id": "450789469", "timestamp": "2026-11-29T08:00:00Z", "consent": consent,
                "order": {"order_id": "450789469", "checkout_token": "t"},
                "click_id": "abc", "client_id": "c-1", "page_url": "https://shop.example/x",
                "referrer": "https://pinterest.com/", "utm": {"source": "pinterest"},
                "custom": {"value": "1.00", "currency": "USD"}});
            let reply = call(
                &ingest(queue.clone()),
                Method::POST,
                body.to_string().as_bytes(),
            )
            .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            let sent = queue.0.lock().unwrap();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].attributes[attr::TOPIC], "browser/checkout");
            let received: ReceivedBrowserEvent = serde_json::from_str(&sent[0].body).unwrap();
            assert_eq!(received.client_ip, None);
            assert_eq!(received.user_agent, None);
            let e = &received.event;
            assert_eq!(
                (
                    &e.click_id,
                    &e.client_id,
                    &e.page_url,
                    &e.referrer,
                    &e.custom
                ),
                (&None, &None, &None, &None, &None)
            );
            assert_eq!(e.utm, browser::Utm::default());
            assert_eq!(
                e.order.as_ref().and_then(|o| o.checkout_token.as_deref()),
                Some("t")
            );
            for leaked in ["203.0.113.7", "Mozilla", "abc", "pinterest", "shop.example"] {
                assert!(
                    !sent[0].body.contains(leaked),
                    "{leaked} in {}",
                    sent[0].body
                );
            }
        }
    }

    #[tokio::test]
    async fn browser_events_outside_the_format_or_allow_list_are_refused() {
        let queue = Recording::default();
        let ingest = ingest(queue.clone());
        let reply = call(&ingest, Method::POST, b"{\"v\":1}").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.cors);
        let reply = call(&ingest, Method::POST, &browser_body("evil.myshopify.com")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = call(&ingest, Method::GET, b"").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        for junk in [
            json!({"timestamp": "2020-01-01T00:00:00Z"}),
            json!({"shop": "a#b"}),
            json!({"custom": {"value": "abc"}}),
            json!({"custom": {"value": "1", "currency": "dollars"}}),
        ] {
            let mut body: serde_json::Value =
                serde_json::from_slice(&browser_body("example.myshopify.com")).unwrap();
            for (k, v) in junk.as_object().unwrap() {
                body[k] = v.clone();
            }
            let reply = call(&ingest, Method::POST, body.to_string().as_bytes()).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{junk}: {}",
                reply.body
            );
        }
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_an_allow_list_the_storefront_endpoint_refuses_every_shop() {
        let queue = Recording::default();
        let open = Ingest::new(
            queue.clone(),
            IngestConfig::single(
                &WebhookSecrets::from_comma_separated("s"),
                None,
                MAX_MESSAGE_BYTES,
                Duration::ZERO,
            ),
            Metrics::in_memory("test"),
        );
        let reply = call(&open, Method::POST, &browser_body("example.myshopify.com")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(
            reply.body.contains("SHOPIFY_SHOP_DOMAINS"),
            "{}",
            reply.body
        );
        assert!(queue.0.lock().unwrap().is_empty());
    }
}
