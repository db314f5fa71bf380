//! Ingest against moto through the real `aws-sdk-sqs` client: what Shopify sends lands in SQS
//! unchanged, nothing unsigned does, an unreachable queue answers 503 inside Shopify's budget, and
//! the SQS adapters (`SqsQueue`, `SqsInbox`, secrets) behave as dispatch and start-up rely on.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use pinrelay::aws::{self, Budget};
use pinrelay::ingest::{self, Ingest, IngestConfig, WEBHOOK_PATH};
use pinrelay::metrics::Metrics;
use pinrelay::queue::sqs::{SqsInbox, SqsQueue, received_from_message};
use pinrelay::queue::{
    EncodedMessage, Envelope, Inbox, MAX_ENQUEUE_BYTES, MAX_MESSAGE_BYTES, MAX_REASON_BYTES, Queue,
    QueueError, Received, attr,
};
use pinrelay::shopify::{self, Topic, WebhookSecrets};

use crate::helpers::{TestEnv, fixture, free_port, sdk_config};

const SECRET: &str = "integration-test-secret";
const SHOP: &str = "snowdevil.myshopify.com";
const REST_ORDER: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";

fn ingest_to(config: &aws_config::SdkConfig, queue_url: &str, delay: Duration) -> Ingest<SqsQueue> {
    let sqs = aws_sdk_sqs::Client::new(&aws::with_budget(config, Budget::INGEST));
    Ingest::new(
        SqsQueue::new(sqs, queue_url),
        IngestConfig::single(
            &WebhookSecrets::from_comma_separated(SECRET),
            None,
            MAX_MESSAGE_BYTES,
            delay,
        ),
        Metrics::in_memory("ingest"),
    )
}

fn headers(topic: &str, body: &[u8], secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: &str| {
        h.insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    };
    put("content-type", "application/json");
    put("x-shopify-topic", topic);
    put("x-shopify-shop-domain", SHOP);
    put(
        "x-shopify-webhook-id",
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    );
    put("x-shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5");
    put("x-shopify-triggered-at", "2026-09-11T18:00:27.877Z");
    put("x-shopify-api-version", "2026-07");
    put(
        "x-shopify-hmac-sha256",
        &shopify::sign(secret.as_bytes(), body),
    );
    h
}

async fn post(ingest: &Ingest<impl Queue>, headers: &HeaderMap, body: &[u8]) -> ingest::Reply {
    ingest
        .handle(
            ingest::Request {
                method: &Method::POST,
                path: WEBHOOK_PATH,
                headers,
                body,
                source_ip: None,
            },
            chrono::Utc::now(),
        )
        .await
}

fn decode(received: &Received) -> Envelope {
    Envelope::decode(&received.body, &received.attributes, chrono::Utc::now()).unwrap()
}

/// The REST order fixture with its one line item repeated `n` times under distinct ids.
fn order_with_line_items(n: usize) -> Vec<u8> {
    let mut order: serde_json::Value = serde_json::from_slice(&fixture(REST_ORDER)).unwrap();
    let item = order["line_items"][0].clone();
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut item = item.clone();
            let id = 466_157_049 + i as u64;
            item["id"] = id.into();
            item["admin_graphql_api_id"] = format!("gid://shopify/LineItem/{id}").into();
            item
        })
        .collect();
    order["line_items"] = items.into();
    serde_json::to_vec_pretty(&order).unwrap()
}

#[tokio::test]
async fn a_signed_order_lands_in_sqs_with_all_attributes_and_its_exact_bytes() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = fixture(REST_ORDER);
    assert!(body.len() > 20_000, "the 28 KB order");
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let messages = env.receive_all(&env.queue_url).await;
    assert_eq!(messages.len(), 1);
    let received = received_from_message(&messages[0]);
    assert_eq!(received.receive_count, 1);
    let a = &received.attributes;
    let relay = pinrelay::queue::RelayFacts::of(a);
    assert_eq!(relay.source.as_deref(), Some("webhook"));
    assert_eq!(a[attr::TOPIC], "orders/create");
    assert_eq!(a[attr::SHOP], SHOP);
    assert_eq!(a[attr::WEBHOOK_ID], "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_eq!(a[attr::EVENT_ID], "98880550-7158-44d4-b7cd-2c97c8a091b5");
    assert_eq!(a[attr::TRIGGERED_AT], "2026-09-11T18:00:27.877Z");
    assert_eq!(a[attr::API_VERSION], "2026-07");
    assert_eq!(relay.encoding.as_deref(), Some("identity"));
    assert!(relay.received_at.is_some());
    assert_eq!(
        a.len(),
        7,
        "six Shopify headers and the relay's facts: room for a dead-letter reason and more"
    );

    let envelope = decode(&received);
    assert_eq!(envelope.body, body, "byte-identical body");
    assert_eq!(envelope.metadata.topic, Topic::OrdersCreate);
    assert_eq!(envelope.metadata.shop_domain, SHOP);
}

#[tokio::test]
async fn a_bad_signature_leaves_the_queue_empty() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = fixture(REST_ORDER);
    let reply = post(
        &ingest,
        &headers("orders/create", &body, "wrong-secret"),
        &body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(env.receive_all(&env.queue_url).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_queue_answers_503_within_shopifys_budget() {
    crate::helpers::init_test_log();
    // Connection refused: a port nobody listens on.
    let closed = sdk_config(&format!("http://127.0.0.1:{}", free_port())).await;
    let ingest = ingest_to(&closed, "http://127.0.0.1/123456789012/q", Duration::ZERO);
    let body = fixture(REST_ORDER);
    let started = Instant::now();
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_queue_that_never_answers_gives_503_within_shopifys_budget() {
    crate::helpers::init_test_log();
    // The kernel completes the handshake into the backlog, but nobody ever reads or answers.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", blackhole.local_addr().unwrap());
    let ingest = ingest_to(&sdk_config(&endpoint).await, &endpoint, Duration::ZERO);
    let body = fixture(REST_ORDER);
    let started = Instant::now();
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    let elapsed = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    drop(blackhole);
}

#[tokio::test]
async fn an_order_with_500_line_items_round_trips_compressed() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = order_with_line_items(500);
    assert!(body.len() > MAX_MESSAGE_BYTES, "{} bytes raw", body.len());
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let messages = env.receive_all(&env.queue_url).await;
    assert_eq!(messages.len(), 1);
    let received = received_from_message(&messages[0]);
    assert_eq!(
        pinrelay::queue::RelayFacts::of(&received.attributes)
            .encoding
            .as_deref(),
        Some("gzip+base64")
    );
    assert!(received.body.len() < MAX_MESSAGE_BYTES);
    let envelope = decode(&received);
    assert_eq!(envelope.body, body, "byte-identical after decompression");
    let items = serde_json::from_slice::<serde_json::Value>(&envelope.body).unwrap()["line_items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(items, 500);
}

#[tokio::test]
async fn orders_wait_the_order_delay_and_compliance_webhooks_do_not() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::from_secs(600));
    let order = fixture(REST_ORDER);
    let redact = fixture("shopify/webhooks/customers-redact.shopify-dev-sample-2026-07.json");
    let reply = post(&ingest, &headers("orders/create", &order, SECRET), &order).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = post(
        &ingest,
        &headers("customers/redact", &redact, SECRET),
        &redact,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    let visible = env.receive_all(&env.queue_url).await;
    assert_eq!(visible.len(), 1, "the order is still delayed");
    assert_eq!(
        received_from_message(&visible[0]).attributes[attr::TOPIC],
        "customers/redact"
    );
}

#[tokio::test]
async fn a_queue_refusing_the_size_answers_413_not_503() {
    let env = TestEnv::start().await;
    env.sqs
        .set_queue_attributes()
        .queue_url(&env.queue_url)
        .attributes(QueueAttributeName::MaximumMessageSize, "1024")
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&env.sdk_config);
    let queue = SqsQueue::new(sqs, &env.queue_url);
    let message = EncodedMessage {
        body: "x".repeat(2000),
        attributes: Default::default(),
        delay: Duration::ZERO,
    };
    assert!(matches!(
        queue.send(&message).await,
        Err(QueueError::TooLarge)
    ));

    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = fixture(REST_ORDER);
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn dead_letter_moves_the_original_with_its_reason_to_the_dlq() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = fixture(REST_ORDER);
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = received_from_message(&env.receive_all(&env.queue_url).await[0]);

    let inbox = SqsInbox::new(env.sqs.clone(), &env.queue_url, &env.dlq_url);
    inbox
        .dead_letter(&received, "pinterest rejected the event: invalid currency")
        .await
        .unwrap();

    let dead = env.receive_all(&env.dlq_url).await;
    assert_eq!(dead.len(), 1);
    let dead = received_from_message(&dead[0]);
    assert_eq!(dead.body, received.body);
    assert_eq!(
        dead.attributes[attr::DEAD_LETTER_REASON],
        "pinterest rejected the event: invalid currency"
    );
    let mut original: HashMap<_, _> = dead.attributes.clone();
    original.remove(attr::DEAD_LETTER_REASON);
    assert_eq!(original, received.attributes);
    assert_eq!(decode(&dead).body, body, "replayable as is");
}

#[tokio::test]
async fn retry_after_changes_the_messages_visibility() {
    let env = TestEnv::start().await;
    // With a zero visibility timeout every message is visible again right after a receive, so
    // only `retry_after` can hide it.
    env.sqs
        .set_queue_attributes()
        .queue_url(&env.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap();
    let queue = SqsQueue::new(env.sqs.clone(), &env.queue_url);
    let message = EncodedMessage {
        body: "{}".into(),
        attributes: [(attr::TOPIC.to_owned(), "orders/create".to_owned())].into(),
        delay: Duration::ZERO,
    };
    queue.send(&message).await.unwrap();
    let inbox = SqsInbox::new(env.sqs.clone(), &env.queue_url, &env.dlq_url);

    let first = receive_one(&env).await.expect("visible at first");
    assert_eq!(first.receive_count, 1);
    let again = receive_one(&env)
        .await
        .expect("visible again without retry_after");
    assert_eq!(again.receive_count, 2);

    inbox
        .retry_after(&again, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(receive_one(&env).await.is_none(), "hidden by retry_after");
}

async fn receive_one(env: &TestEnv) -> Option<Received> {
    let out = env
        .sqs
        .receive_message()
        .queue_url(&env.queue_url)
        .max_number_of_messages(1)
        .message_attribute_names("All")
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .unwrap();
    out.messages().first().map(received_from_message)
}

#[tokio::test]
async fn loads_webhook_secrets_and_the_pinterest_token_from_secrets_manager() {
    let env = TestEnv::start().await;
    let create = |name: &str, value: &str| {
        env.secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
    };
    let list = create("webhook", r#"["new-secret", "old-secret"]"#)
        .await
        .unwrap()
        .arn
        .unwrap();
    let token = create("token", r#"{"access_token": "pina_test"}"#)
        .await
        .unwrap()
        .arn
        .unwrap();

    let secrets = pinrelay::secrets::webhook_secrets_from_arn(&env.secrets, &list)
        .await
        .unwrap();
    assert_eq!(secrets.len(), 2);
    let body = b"{}";
    let h = headers("orders/create", body, "old-secret");
    assert_eq!(shopify::verify(&h, body, &secrets), Ok(1));

    let token = pinrelay::secrets::pinterest_token_from_arn(&env.secrets, &token)
        .await
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&token), "pina_test");

    let missing = pinrelay::secrets::webhook_secrets_from_arn(
        &env.secrets,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
    )
    .await
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("SHOPIFY_WEBHOOK_SECRET_ARN"),
        "{missing}"
    );
}

/// An order whose body, with `noise` bytes of random letters in its note, encodes (gzip+base64)
/// to a message of about `target` bytes.
fn incompressible_order(target: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut noise = String::new();
    let mut best = Vec::new();
    for _ in 0..target * 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(char::from(b'a' + (x % 26) as u8));
        if noise.len().is_multiple_of(512) {
            let mut order: serde_json::Value =
                serde_json::from_slice(&fixture(REST_ORDER)).unwrap();
            order["note"] = serde_json::json!(noise);
            let body = serde_json::to_vec(&order).unwrap();
            let envelope = Envelope {
                source: pinrelay::queue::Source::Webhook,
                metadata: pinrelay::shopify::WebhookMetadata::from_headers(&headers(
                    "orders/create",
                    &body,
                    SECRET,
                ))
                .unwrap(),
                received_at: chrono::Utc::now(),
                body: body.clone(),
            };
            match envelope.encode(target, Duration::ZERO) {
                Ok(_) => best = body,
                Err(_) => return best,
            }
        }
    }
    best
}

#[tokio::test]
async fn an_order_at_ingests_size_limit_can_still_be_dead_lettered_with_its_reason() {
    let env = TestEnv::start().await;
    let sqs = aws_sdk_sqs::Client::new(&aws::with_budget(&env.sdk_config, Budget::INGEST));
    let ingest = Ingest::new(
        SqsQueue::new(sqs, &env.queue_url),
        IngestConfig::single(
            &WebhookSecrets::from_comma_separated(SECRET),
            None,
            MAX_ENQUEUE_BYTES,
            Duration::ZERO,
        ),
        Metrics::in_memory("ingest"),
    );
    let body = incompressible_order(MAX_ENQUEUE_BYTES);
    let reply = post(&ingest, &headers("orders/create", &body, SECRET), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let received = received_from_message(&env.receive_all(&env.queue_url).await[0]);
    let size = received.body.len()
        + received
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + "String".len())
            .sum::<usize>();
    assert!(
        size > 255 * 1024 - 4096,
        "a message near the limit: {size} bytes"
    );

    let inbox = SqsInbox::new(env.sqs.clone(), &env.queue_url, &env.dlq_url);
    let reason = format!("pinterest_rejected: {}", "x".repeat(2000));
    inbox.dead_letter(&received, &reason).await.unwrap();
    let dead = received_from_message(&env.receive_all(&env.dlq_url).await[0]);
    assert_eq!(dead.body, received.body);
    assert_eq!(
        dead.attributes[attr::DEAD_LETTER_REASON].len(),
        MAX_REASON_BYTES,
        "the reason, cut to its limit"
    );
}

#[tokio::test]
async fn a_shop_header_that_is_not_a_myshopify_domain_gets_400() {
    let env = TestEnv::start().await;
    let ingest = ingest_to(&env.sdk_config, &env.queue_url, Duration::ZERO);
    let body = fixture(REST_ORDER);
    let mut h = headers("orders/create", &body, SECRET);
    h.insert(
        HeaderName::from_static("x-shopify-shop-domain"),
        HeaderValue::from_static("evil.com/../x"),
    );
    let reply = post(&ingest, &h, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("myshopify.com"), "{}", reply.body);
    assert!(env.receive_all(&env.queue_url).await.is_empty());
}
