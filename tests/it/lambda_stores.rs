//! Many stores, one stack, as the Lambdas wire it: three stores registered in [`AwsRegistry`] on
//! moto (each with its own secret and ad account) beside the default store (the stack's own
//! variables), the real [`Ingest`] on SQS, the real [`Dispatcher`] on [`StoreRoutes`] with the
//! dispatch Lambda's [`http_factory`], against [`FakePinterest`].

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use chrono::{SecondsFormat, Utc};
use pinrelay::dispatch::routes::http_factory;
use pinrelay::dispatch::{DispatchConfig, Dispatcher, StoreRoutes};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::ingest::{self, Ingest, IngestConfig, WEBHOOK_PATH};
use pinrelay::metrics::Metrics;
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::profile::dynamodb::DynamoDbProfileStore;
use pinrelay::queue::sqs::{SqsInbox, SqsQueue, received_from_message};
use pinrelay::queue::{MAX_MESSAGE_BYTES, Received, attr};
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::{CachedDirectory, DefaultStore, Registry as _};
use pinrelay::shopify::{self, WebhookSecrets};
use serde_json::{Value, json};

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::helpers::{TestEnv, fixture};
use crate::idempotency::serialized_dynamodb;
use crate::registry::{registry, shop};

const ORDER_FIXTURE: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";
const PREFIX: &str = "pinrelay-stores/shops/";

/// Domain, webhook secret, ad account, conversion token, order id.
const STORES: [(&str, &str, &str, &str, u64); 3] = [
    (
        "alpha.myshopify.com",
        "alpha-secret",
        "111111111111",
        "alpha-token",
        1001,
    ),
    (
        "beta.myshopify.com",
        "beta-secret",
        "222222222222",
        "beta-token",
        2001,
    ),
    (
        "gamma.myshopify.com",
        "gamma-secret",
        "333333333333",
        "gamma-token",
        3001,
    ),
];
/// The stack's own store (its variables): what an upgraded stack served before.
const LEGACY: (&str, &str, u64) = ("legacy.myshopify.com", "legacy-secret", 4001);

fn order(id: u64) -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&fixture(ORDER_FIXTURE)).unwrap();
    let at = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = json!(id);
    order["name"] = json!(format!("#{id}"));
    order["admin_graphql_api_id"] = json!(format!("gid://shopify/Order/{id}"));
    for field in ["created_at", "processed_at", "updated_at"] {
        order[field] = json!(at);
    }
    serde_json::to_vec(&order).unwrap()
}

fn headers(shop: &str, body: &[u8], secret: &str, id: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: &str| {
        h.insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    };
    put("content-type", "application/json");
    put("x-shopify-topic", "orders/create");
    put("x-shopify-shop-domain", shop);
    put("x-shopify-webhook-id", &format!("webhook-{shop}-{id}"));
    put("x-shopify-event-id", &format!("event-{shop}-{id}"));
    put("x-shopify-api-version", "2026-07");
    put(
        "x-shopify-hmac-sha256",
        &shopify::sign(secret.as_bytes(), body),
    );
    h
}

async fn post(ingest: &Ingest<SqsQueue>, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    ingest
        .handle(
            ingest::Request {
                method: &Method::POST,
                path: WEBHOOK_PATH,
                headers,
                body,
                source_ip: None,
            },
            Utc::now(),
        )
        .await
        .status
}

type Routes = StoreRoutes<CachedDirectory<AwsRegistry>, PinterestHttp>;

#[tokio::test]
async fn three_registered_stores_each_reach_their_own_ad_account_and_one_refused_token_stops_no_other()
 {
    let env = TestEnv::start().await;
    let fake = FakePinterest::start().await;
    let admin = registry(&env, PREFIX);
    for (domain, secret, account, token, _) in STORES {
        admin
            .register(&shop(domain, account, secret, token))
            .await
            .unwrap();
        fake.accept_token(token);
    }

    // Ingest as the Lambda builds it: the registry, then the stack's variables as default store.
    let default = DefaultStore::new(
        &WebhookSecrets::from_comma_separated(LEGACY.1),
        Some([LEGACY.0.to_owned()].into()),
    );
    let ingest = Ingest::new(
        SqsQueue::new(env.sqs.clone(), &env.queue_url),
        IngestConfig {
            shops: Arc::new(CachedDirectory::new(Some(registry(&env, PREFIX)), default)),
            max_message_bytes: MAX_MESSAGE_BYTES,
            order_delay: Duration::ZERO,
        },
        Metrics::in_memory("ingest"),
    );
    for (domain, secret, _, _, id) in STORES {
        let body = order(id);
        let status = post(&ingest, &headers(domain, &body, secret, id), &body).await;
        assert_eq!(status, StatusCode::OK, "{domain}");
    }
    let body = order(LEGACY.2);
    let status = post(
        &ingest,
        &headers(LEGACY.0, &body, LEGACY.1, LEGACY.2),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the default store keeps working");

    // Refused, nothing queued: an unknown shop (signed with a registered store's secret), and
    // store A's order signed with A's secret but sent under B's header.
    let body = order(9001);
    let unknown = headers("nobody.myshopify.com", &body, STORES[0].1, 9001);
    assert_eq!(
        post(&ingest, &unknown, &body).await,
        StatusCode::UNAUTHORIZED
    );
    let crossed = headers(STORES[1].0, &body, STORES[0].1, 9001);
    assert_eq!(
        post(&ingest, &crossed, &body).await,
        StatusCode::UNAUTHORIZED
    );
    // Nor may a registered store's secret sign for the default store's shops.
    let legacy_forged = headers(LEGACY.0, &body, STORES[0].1, 9001);
    assert_eq!(
        post(&ingest, &legacy_forged, &body).await,
        StatusCode::UNAUTHORIZED
    );
    let messages = env.receive_all(&env.queue_url).await;
    assert_eq!(messages.len(), 4, "three stores and the default store");
    let batch: Vec<Received> = messages.iter().map(received_from_message).collect();

    // Store A's token is revoked: its events wait, the others' go in the same batch.
    fake.refuse_token(STORES[0].3);
    let dynamodb = serialized_dynamodb(&env).await;
    let table = Table::new(dynamodb.clone(), &env.table);
    let default_api = PinterestHttp::new(PinterestHttpConfig {
        base_url: fake.base_url(),
        ad_account_id: AD_ACCOUNT_ID.to_owned(),
        access_token: ACCESS_TOKEN.to_owned().into(),
        test_mode: false,
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let directory = CachedDirectory::new(
        Some(AwsRegistry::new(
            Table::new(dynamodb, &env.table),
            env.secrets.clone(),
            PREFIX,
        )),
        Some(DefaultStore::any_shop()),
    );
    let routes: Routes = StoreRoutes::new(
        Arc::new(directory),
        default_api,
        http_factory(
            fake.base_url(),
            Duration::from_secs(1),
            Duration::from_secs(5),
        ),
    );
    let dispatcher = Dispatcher::new(
        DynamoDbIdempotencyStore::new(table.clone()),
        DynamoDbProfileStore::new(table),
        routes,
        SqsInbox::new(env.sqs.clone(), &env.queue_url, &env.dlq_url),
        DispatchConfig {
            retry_base: Duration::ZERO,
            retry_max: Duration::ZERO,
            ..DispatchConfig::default()
        },
        Metrics::in_memory("dispatch"),
    );
    let now = Utc::now();
    let report = dispatcher
        .dispatch(&batch, now, now + chrono::Duration::seconds(60))
        .await;

    // Each accepted event went to its store's ad account, exactly once.
    let requests = fake.requests();
    let sent_to = |account: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.ad_account_id == account && r.status == 200)
            .flat_map(|r| r.event_ids.clone())
            .collect()
    };
    for (domain, _, account, _, id) in &STORES[1..] {
        assert_eq!(sent_to(account), [id.to_string()], "{domain}");
    }
    assert_eq!(sent_to(AD_ACCOUNT_ID), [LEGACY.2.to_string()]);
    assert!(sent_to(STORES[0].2).is_empty());
    assert!(
        requests
            .iter()
            .any(|r| r.ad_account_id == STORES[0].2 && r.status == 401),
        "alpha's request went to alpha's account and was refused: {requests:?}"
    );
    assert_eq!(fake.accepted_event_ids().len(), 3);
    assert!(
        fake.schema_errors().is_empty(),
        "{:?}",
        fake.schema_errors()
    );
    // Only store A's message is handed back for a retry.
    let alpha = batch
        .iter()
        .find(|m| m.attributes.get(attr::SHOP).map(String::as_str) == Some(STORES[0].0))
        .unwrap();
    assert_eq!(report.batch_item_failures, std::slice::from_ref(&alpha.id));
    assert!(env.receive_all(&env.dlq_url).await.is_empty());
}
