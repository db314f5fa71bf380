//! The ingest Lambda, behind a Function URL: a thin adapter from `lambda_http` to
//! [`pinrelay::ingest::Ingest`] over SQS, which routes, verifies, enqueues and picks the status.
//!
//! Start-up reads the configuration ([`config::ingest_settings`], the webhook secrets from
//! `SHOPIFY_WEBHOOK_SECRETS` or `SHOPIFY_WEBHOOK_SECRET_ARN`, and the standard AWS SDK variables)
//! and fails the cold start with a message naming any variable that is wrong. With
//! `SHOP_SECRETS_PREFIX` it also serves the stack's registered stores (`pinrelay shops --stack`):
//! each webhook is verified with its store's secrets, the variables' store being the default.

use std::sync::Arc;

use std::net::IpAddr;

use anyhow::Context as _;
use chrono::Utc;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response, service_fn};
use pinrelay::aws::{self, Budget};
use pinrelay::config;
use pinrelay::ingest::{self, Ingest, Reply};
use pinrelay::metrics::{self, Metrics};
use pinrelay::queue::Queue;
use pinrelay::queue::sqs::SqsQueue;
use pinrelay::registry::{self, DefaultStore};
use pinrelay::{secrets, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(telemetry::Output::Stdout);
    let ingest = match build().await {
        Ok(ingest) => ingest,
        Err(e) => {
            tracing::error!(error.message = %format!("{e:#}"), "ingest cannot start: fix its configuration");
            return Err(e);
        }
    };
    let ingest = &ingest;
    lambda_http::run(service_fn(move |request| handle(ingest, request)))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// Reads the configuration and builds the SQS-backed endpoint, clients included (once).
async fn build() -> anyhow::Result<Ingest<SqsQueue>> {
    let settings = config::ingest_settings()?;
    let sdk = aws::load(Budget::INGEST).await;
    let secrets_client =
        aws_sdk_secretsmanager::Client::new(&aws::with_budget(&sdk, Budget::STARTUP));
    let secrets = secrets::webhook_secrets(&secrets_client)
        .await
        .context("cannot load the Shopify webhook secrets")?;
    let default = DefaultStore::new(&secrets, settings.allowed_shops.clone());
    let shops = registry::aws::directory(&sdk, settings.registry.as_ref(), default);
    let config = settings.config_with(Arc::new(shops));
    tracing::info!(
        secrets = secrets.len(),
        registry = settings.registry.is_some(),
        shop_allow_list = settings.allowed_shops.as_ref().map_or(0, |s| s.len()),
        order_delay_s = config.order_delay.as_secs(),
        "ingest ready"
    );
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), settings.queue_url);
    Ok(Ingest::new(
        queue,
        config,
        Metrics::emf(&metrics::function_dimension(
            config::var(metrics::LAMBDA_FUNCTION_NAME_VAR),
            "ingest",
        )),
    ))
}

/// Hands one Function URL request to [`Ingest::handle`] and converts its [`Reply`].
async fn handle<Q: Queue>(
    ingest: &Ingest<Q>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let raw_path = request.raw_http_path();
    let path = if raw_path.is_empty() {
        request.uri().path()
    } else {
        raw_path
    };
    let reply = ingest
        .handle(
            ingest::Request {
                method: request.method(),
                path,
                headers: request.headers(),
                body: request.body().as_ref(),
                source_ip: source_ip(&request),
            },
            Utc::now(),
        )
        .await;
    response(reply)
}

/// `requestContext.http.sourceIp` of a Function URL (payload 2.0) event.
fn source_ip(request: &Request) -> Option<IpAddr> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn response(reply: Reply) -> Result<Response<Body>, lambda_http::Error> {
    let mut response = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, "application/json");
    for (name, value) in reply.headers() {
        response = response.header(name, value);
    }
    Ok(response.body(Body::Text(reply.body))?)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use lambda_http::http::StatusCode;
    use pinrelay::ingest::IngestConfig;
    use pinrelay::queue::{EncodedMessage, Envelope, MAX_MESSAGE_BYTES, QueueError, attr};
    use pinrelay::shopify::WebhookSecrets;

    use super::*;

    const SECRET: &str = "ingest-unit-test-secret";

    /// Records every message it is given.
    #[derive(Clone, Default)]
    struct Recording(Arc<Mutex<Vec<EncodedMessage>>>);

    impl Queue for Recording {
        async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(message.clone());
            Ok(())
        }
    }

    /// Always fails, like an unreachable SQS.
    struct Down;

    impl Queue for Down {
        async fn send(&self, _: &EncodedMessage) -> Result<(), QueueError> {
            Err(QueueError::Unavailable("connection refused".into()))
        }
    }

    fn endpoint<Q: Queue>(queue: Q, metrics: Metrics) -> Ingest<Q> {
        Ingest::new(
            queue,
            IngestConfig::single(
                &WebhookSecrets::from_comma_separated(SECRET),
                None,
                MAX_MESSAGE_BYTES,
                Duration::from_secs(60),
            ),
            metrics,
        )
    }

    fn event_json(name: &str) -> String {
        let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn event(name: &str) -> Request {
        lambda_http::request::from_str(&event_json(name)).unwrap()
    }

    /// The `body` field of a plain (not base64) event: the bytes Shopify signed.
    fn plain_body(name: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&event_json(name)).unwrap();
        assert_eq!(v["isBase64Encoded"], false);
        v["body"].as_str().unwrap().to_owned()
    }

    /// Runs one event through the handler: the response, what was enqueued, the metric totals.
    async fn run(name: &str) -> (Response<Body>, Vec<EncodedMessage>, BTreeMap<String, f64>) {
        let queue = Recording::default();
        let metrics = Metrics::in_memory("ingest");
        let ingest = endpoint(queue.clone(), metrics.clone());
        let response = handle(&ingest, event(name)).await.unwrap();
        let sent = queue.0.lock().unwrap().clone();
        (response, sent, metrics.snapshot())
    }

    fn json_body(response: &Response<Body>) -> serde_json::Value {
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    fn attributes(m: &EncodedMessage) -> HashMap<String, String> {
        m.attributes.clone().into_iter().collect()
    }

    #[tokio::test]
    async fn enqueues_a_signed_plain_body_byte_for_byte_with_its_metadata() {
        let (response, sent, metrics) = run("orders-create.plain").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json_body(&response)["status"], "enqueued");
        assert_eq!(metrics["WebhooksEnqueued"], 1.0);
        assert_eq!(sent.len(), 1);
        let m = &sent[0];
        let body = plain_body("orders-create.plain");
        assert!(body.contains("Größe M — “gift” 🎁"));
        assert_eq!(m.body, body);
        let relay = pinrelay::queue::RelayFacts::of(&m.attributes.clone().into_iter().collect());
        assert_eq!(relay.encoding.as_deref(), Some("identity"));
        assert!(
            m.attributes.len() <= 7,
            "every Shopify header and the relay's facts: {m:?}"
        );
        assert_eq!(m.attributes[attr::TOPIC], "orders/create");
        assert_eq!(m.attributes[attr::SHOP], "snowdevil.myshopify.com");
        assert_eq!(
            m.attributes[attr::WEBHOOK_ID],
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
        );
        assert_eq!(
            m.attributes[attr::EVENT_ID],
            "98880550-7158-44d4-b7cd-2c97c8a091b5"
        );
        assert_eq!(m.attributes[attr::API_VERSION], "2026-07");
        assert!(m.attributes[attr::TRIGGERED_AT].starts_with("2026-09-11T18:00:27"));
        assert!(relay.received_at.is_some());
        assert_eq!(m.delay, Duration::from_secs(60), "orders wait ORDER_DELAY");
        assert_eq!(
            source_ip(&event("orders-create.plain")),
            "34.23.0.10".parse().ok()
        );
        let back = Envelope::decode(&m.body, &attributes(m), Utc::now()).unwrap();
        assert_eq!(back.body, body.as_bytes());
    }

    #[tokio::test]
    async fn enqueues_the_decoded_bytes_of_a_base64_encoded_event() {
        let (response, sent, _) = run("orders-create.base64").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body, plain_body("orders-create.plain"));
    }

    #[tokio::test]
    async fn enqueues_compliance_webhooks_without_delay() {
        let (response, sent, _) = run("customers-redact.plain").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body, plain_body("customers-redact.plain"));
        assert_eq!(sent[0].attributes[attr::TOPIC], "customers/redact");
        assert_eq!(sent[0].delay, Duration::ZERO);
    }

    #[tokio::test]
    async fn answers_401_and_enqueues_nothing_on_a_bad_signature() {
        for name in ["bad-signature", "missing-signature"] {
            let (response, sent, metrics) = run(name).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
            assert!(json_body(&response)["error"].is_string());
            assert!(sent.is_empty(), "{name}");
            assert!(!metrics.contains_key("WebhooksEnqueued"), "{name}");
        }
    }

    #[tokio::test]
    async fn answers_400_without_a_topic_and_401_without_a_shop() {
        // Without a shop there is no store, and so no secret to verify with: answered like a
        // bad signature.
        for (name, status) in [
            ("missing-topic", StatusCode::BAD_REQUEST),
            ("missing-shop-domain", StatusCode::UNAUTHORIZED),
        ] {
            let (response, sent, _) = run(name).await;
            assert_eq!(response.status(), status, "{name}");
            assert!(sent.is_empty(), "{name}");
        }
    }

    #[tokio::test]
    async fn answers_404_on_other_paths() {
        let (response, sent, _) = run("unknown-path").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(json_body(&response)["error"].is_string());
        assert!(sent.is_empty());
    }

    #[tokio::test]
    async fn answers_405_with_allow_on_other_methods() {
        let (response, sent, _) = run("get-webhook-path").await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");
        assert!(sent.is_empty());
    }

    #[tokio::test]
    async fn answers_503_when_the_queue_is_down() {
        let ingest = endpoint(Down, Metrics::in_memory("ingest"));
        let response = handle(&ingest, event("orders-create.plain")).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(json_body(&response)["error"].is_string());
    }
}
