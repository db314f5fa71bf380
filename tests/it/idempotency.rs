//! The idempotency, profile store and ledger contracts ([`pinrelay::idempotency::contract`],
//! [`pinrelay::profile::contract`], [`pinrelay::ledger::contract`]) run against
//! [`DynamoDbIdempotencyStore`] on moto, and [`serialized_dynamodb`], which gives moto the
//! per-request atomicity DynamoDB has.
//!
//! moto's threaded server evaluates a `ConditionExpression` and then writes without a lock, so two
//! concurrent conditional puts on one key can both succeed (measured: 2 of 200 races). DynamoDB
//! never does that. Serializing the requests restores DynamoDB's guarantee without hiding an
//! adapter that checks and writes in two calls: such a race still loses under serialization.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::contract;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::profile::dynamodb::DynamoDbProfileStore;

use crate::helpers::TestEnv;

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// A DynamoDB client whose requests reach moto one at a time, through a proxy on 127.0.0.1:0
/// that lives as long as the test's runtime.
pub async fn serialized_dynamodb(env: &TestEnv) -> aws_sdk_dynamodb::Client {
    pinrelay::pinterest::http::install_crypto_provider();
    let proxy = Arc::new(Proxy {
        upstream: env.endpoint.clone(),
        client: reqwest::Client::new(),
        one_at_a_time: tokio::sync::Mutex::new(()),
    });
    let app = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = aws_sdk_dynamodb::config::Builder::from(&env.sdk_config)
        .endpoint_url(format!("http://{addr}"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = proxy
        .client
        .request(method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let _turn = proxy.one_at_a_time.lock().await;
    let Ok(response) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = response.status();
    let mut out_headers = response.headers().clone();
    out_headers.remove("content-length");
    out_headers.remove("transfer-encoding");
    let body = response.bytes().await.unwrap_or_default();
    (status, out_headers, body).into_response()
}

#[tokio::test]
async fn dynamodb_store_passes_the_idempotency_contract() {
    let env = TestEnv::start().await;
    let store =
        DynamoDbIdempotencyStore::new(Table::new(serialized_dynamodb(&env).await, &env.table));
    contract::run_all(&store).await;
}

#[tokio::test]
async fn dynamodb_store_passes_the_profile_contract() {
    let env = TestEnv::start().await;
    let table = Table::new(serialized_dynamodb(&env).await, &env.table);
    let profiles = DynamoDbProfileStore::new(table.clone());
    pinrelay::profile::contract::run_all(&profiles).await;
    pinrelay::profile::contract::a_forged_profile_posted_first_changes_nothing_for_the_shoppers_own(&profiles).await;
    pinrelay::profile::contract::records_and_profiles_are_kept_apart(
        &DynamoDbIdempotencyStore::new(table),
        &profiles,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_store_grants_one_of_many_concurrent_claims_every_time() {
    let env = TestEnv::start().await;
    let store =
        DynamoDbIdempotencyStore::new(Table::new(serialized_dynamodb(&env).await, &env.table));
    for _ in 0..5 {
        contract::concurrent_claims_acquire_once(&store).await;
        let key = pinrelay::idempotency::IdempotencyKey::order("a.myshopify.com", 50).unwrap();
        pinrelay::idempotency::IdempotencyStore::forget(&store, &key)
            .await
            .unwrap();
    }
}
