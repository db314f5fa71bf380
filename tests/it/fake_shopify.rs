//! A local fake of a shop's Admin API for the integration tests. It is not a mock that expects
//! calls: it holds a shop's state and records every request.
//!
//! - `POST /admin/api/{version}/graphql.json` answers the queries the relay sends, recognized by
//!   their root field: `shop` (time zone set with [`FakeShopify::set_timezone`]), `orders`
//!   (`first`, `after`, and the `created_at` range of the `query` variable applied, oldest first,
//!   [`FakeShopify::set_page_size`] orders per page at most), `webhookSubscriptions` (both the
//!   `uri` and the legacy `callbackUrl` selections) and `webhookSubscriptionCreate`.
//! - `GET /admin/api/{version}/orders/{id}.json` answers `{"order": <payload>}` for orders added
//!   with a payload ([`FakeOrder::from_payload`]), 404 otherwise.
//! - `POST /admin/oauth/access_token` answers the client-credentials grant (JSON or form body) for
//!   [`CLIENT_ID`] and [`CLIENT_SECRET`] with a new token valid [`FakeShopify::set_token_lifetime`]
//!   seconds (86399 by default, as Shopify), and a wrong id or secret with 401
//!   `{"error": "invalid_client", ...}`; [`FakeShopify::mints`] lists the tokens minted.
//! - Checks `X-Shopify-Access-Token` ([`ADMIN_TOKEN`], or a minted token before its expiry on the
//!   fake's clock, [`FakeShopify::advance`]) and answers 401 otherwise, or always after
//!   [`FakeShopify::refuse_token`]; [`FakeShopify::revoke_minted_tokens`] refuses those minted so
//!   far.
//! - `currentAppInstallation { accessScopes }` lists [`FakeShopify::set_access_scopes`]
//!   (`read_orders`, `read_customers` by default); an `orders` query with `lineItems` lists the
//!   newest orders first with their [`FakeLineItem`]s.
//! - [`FakeShopify::throttle_next`] answers the next GraphQL calls with Shopify's `THROTTLED` body,
//!   whose `extensions.cost` asks for a wait of about 10 ms; [`FakeShopify::stall_next`] hangs them.
//! - [`FakeShopify::requests`] lists every request with its answer.
//!
//! - `customers` (audiences): the [`FakeCustomer`]s, oldest update first, `first`/`after` paging
//!   (at most [`FakeShopify::set_page_size`] a page) and the `updated_at:>='…'` search term.
//! - `nodes(ids: …)` (a consent re-check): each `gid://shopify/Customer/N` asked, as the
//!   `customers` query's node, or `null` when the shop has no such customer; more than 250 ids is
//!   Shopify's error. [`FakeShopify::customer_node_queries`] lists the ids asked.
//! - Bulk query operations (audiences' full reads): `bulkOperationRunQuery` starts one
//!   (`bulkOperation {id status}` and `userErrors`; at most five in progress); `node(id:)` reads
//!   one; `bulkOperations` answers, under each alias, the search in the variable of the same name
//!   (`operation_type:`, `status:` and `created_at:>'…'` terms). An operation answers `RUNNING` to
//!   [`FakeShopify::set_bulk_polls`] status reads, then completes (or fails with the code of
//!   [`FakeShopify::fail_next_bulk_operation`]); [`FakeShopify::finish_bulk_operations`]
//!   completes them at once. On completion the customers are written as JSONL, one `customers`
//!   node a line, served at `GET /bulk/{id}.jsonl?signature=…` on the fake's own server without
//!   any check; [`FakeShopify::bulk_downloads`] records the credential headers each download
//!   carried. A completion with no customer has `url: null`.
//!
//! It does not model query costs, other search terms than `created_at` and `updated_at`, or REST
//! pagination.

#![allow(dead_code)] // Shared by several test modules; each uses a part.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, body::Bytes};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The token the fake accepts (`X-Shopify-Access-Token`).
pub const ADMIN_TOKEN: &str = "shpat_test_token";

/// The Dev Dashboard app's client id the token endpoint accepts.
pub const CLIENT_ID: &str = "3b2f1c0e9d8a7b6c5d4e3f2a1b0c9d8e";

/// The client secret the token endpoint accepts with [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "shpss_test_client_secret";

/// Shopify's lifetime of a client-credentials token, in seconds.
pub const TOKEN_LIFETIME: u64 = 86_399;

/// One line item of a fake order (`lineItems` answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLineItem {
    /// The line item's `sku`.
    pub sku: Option<String>,
    /// `product.id`'s number; `None` answers `product: null` (custom item, deleted product).
    pub product_id: Option<u64>,
    /// `variant.id`'s number; `None` answers `variant: null`.
    pub variant_id: Option<u64>,
    /// `variant.sku`.
    pub variant_sku: Option<String>,
}

impl FakeLineItem {
    /// A line item of product `product`, variant `variant`, whose SKU is `sku` (both now and then).
    pub fn new(product: u64, variant: u64, sku: &str) -> Self {
        Self {
            sku: Some(sku.to_owned()),
            product_id: Some(product),
            variant_id: Some(variant),
            variant_sku: Some(sku.to_owned()),
        }
    }

    fn node(&self) -> Value {
        json!({
            "sku": self.sku,
            "product": self.product_id.map(|id| json!({"id": format!("gid://shopify/Product/{id}")})),
            "variant": self.variant_id.map(|id| json!({
                "id": format!("gid://shopify/ProductVariant/{id}"),
                "sku": self.variant_sku,
            })),
        })
    }
}

/// One token the fake minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mint {
    /// The token.
    pub token: String,
    /// When it was minted, on the fake's clock.
    pub at: DateTime<Utc>,
    /// When it stops working, on the fake's clock.
    pub expires_at: DateTime<Utc>,
}

/// The shop's domain in `shop` answers.
pub const SHOP_DOMAIN: &str = "acme.myshopify.com";

/// The most orders Shopify returns per page (`first` above it is an error).
pub const MAX_FIRST: usize = 250;

/// One order of the fake shop.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOrder {
    /// `legacyResourceId`, the REST `id`.
    pub id: u64,
    /// `#1001`.
    pub name: String,
    /// `createdAt`; decides the range filter and the order of the pages.
    pub created_at: DateTime<Utc>,
    /// `test`.
    pub test: bool,
    /// `sourceName`.
    pub source_name: Option<String>,
    /// `cancelledAt`.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `displayFinancialStatus` (`PAID`, `PENDING`…), as GraphQL writes the REST `financial_status`.
    pub financial_status: Option<String>,
    /// `currentSubtotalPriceSet.shopMoney.amount`.
    pub subtotal: String,
    /// `currentTotalPriceSet.shopMoney.amount`.
    pub total: String,
    /// The currency of both.
    pub currency: String,
    /// The REST order resource served by `orders/{id}.json`; `None` answers 404 there.
    pub payload: Option<Value>,
    /// Its line items (`lineItems`).
    pub line_items: Vec<FakeLineItem>,
}

impl FakeOrder {
    /// A web order of 10.00 USD named `#{id}`, without a REST payload.
    pub fn new(id: u64, created_at: &str) -> Self {
        Self {
            id,
            name: format!("#{id}"),
            created_at: parse_time(created_at).expect("created_at is RFC 3339"),
            test: false,
            source_name: Some("web".to_owned()),
            cancelled_at: None,
            financial_status: Some("PAID".to_owned()),
            subtotal: "10.00".to_owned(),
            total: "10.00".to_owned(),
            currency: "USD".to_owned(),
            payload: None,
            line_items: Vec::new(),
        }
    }

    /// The same order with these line items.
    pub fn with_line_items(mut self, items: impl IntoIterator<Item = FakeLineItem>) -> Self {
        self.line_items = items.into_iter().collect();
        self
    }

    /// The order a REST order resource (or an `orders/create` body) describes, served as is.
    pub fn from_payload(payload: Value) -> Self {
        let time = |key: &str| payload[key].as_str().and_then(parse_time);
        Self {
            id: payload["id"]
                .as_u64()
                .expect("the payload has a numeric id"),
            name: payload["name"].as_str().unwrap_or_default().to_owned(),
            created_at: time("created_at").expect("the payload has created_at"),
            test: payload["test"].as_bool().unwrap_or(false),
            source_name: payload["source_name"].as_str().map(str::to_owned),
            cancelled_at: time("cancelled_at"),
            financial_status: payload["financial_status"]
                .as_str()
                .map(str::to_ascii_uppercase),
            subtotal: payload["current_subtotal_price"]
                .as_str()
                .or(payload["subtotal_price"].as_str())
                .unwrap_or("0.00")
                .to_owned(),
            total: payload["total_price"].as_str().unwrap_or("0.00").to_owned(),
            currency: payload["currency"].as_str().unwrap_or("USD").to_owned(),
            line_items: payload["line_items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| FakeLineItem {
                    sku: item["sku"].as_str().map(str::to_owned),
                    product_id: item["product_id"].as_u64(),
                    variant_id: item["variant_id"].as_u64(),
                    variant_sku: item["sku"].as_str().map(str::to_owned),
                })
                .collect(),
            payload: Some(payload),
        }
    }

    /// The GraphQL `Order` node the relay selects.
    fn node(&self) -> Value {
        json!({
            "legacyResourceId": self.id.to_string(),
            "name": self.name,
            "createdAt": self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "test": self.test,
            "sourceName": self.source_name,
            "cancelledAt": self.cancelled_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "displayFinancialStatus": self.financial_status,
            "currentSubtotalPriceSet": {"shopMoney": {"amount": self.subtotal, "currencyCode": self.currency}},
            "currentTotalPriceSet": {"shopMoney": {"amount": self.total, "currencyCode": self.currency}},
        })
    }

    /// The GraphQL `Order` node of the recent-line-items query.
    fn line_items_node(&self, line_items: usize) -> Value {
        json!({
            "id": format!("gid://shopify/Order/{}", self.id),
            "name": self.name,
            "createdAt": self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "test": self.test,
            "lineItems": {"nodes": self.line_items.iter().take(line_items).map(FakeLineItem::node).collect::<Vec<_>>()},
        })
    }
}

/// One webhook subscription of the fake shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSubscription {
    /// `gid://shopify/WebhookSubscription/{n}`.
    pub id: String,
    /// The topic enum (`ORDERS_CREATE`).
    pub topic: String,
    /// The `uri` (or `callbackUrl`).
    pub uri: String,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `POST` or `GET`.
    pub method: &'static str,
    /// The `{version}` of the path.
    pub version: String,
    /// The path after `/admin/api/{version}/` (`graphql.json`, `orders/1.json`).
    pub resource: String,
    /// `X-Shopify-Access-Token`, as sent.
    pub token: Option<String>,
    /// The GraphQL `query` (empty for REST).
    pub query: String,
    /// The GraphQL `variables` (`null` for REST).
    pub variables: Value,
    /// The HTTP status answered.
    pub status: u16,
    /// Answered with a `THROTTLED` body.
    pub throttled: bool,
    /// Refused because the token was minted and had expired.
    pub expired: bool,
}

impl RecordedRequest {
    /// A GraphQL request whose query selects `field` (`orders(`, `shop {`...).
    pub fn selects(&self, field: &str) -> bool {
        self.method == "POST" && self.query.contains(field)
    }
}

struct Inner {
    timezone: String,
    page_size: usize,
    orders: Vec<FakeOrder>,
    subscriptions: Vec<FakeSubscription>,
    next_subscription: u64,
    reject_topics: Vec<String>,
    refuse_token: bool,
    throttle_next: usize,
    stall_next: usize,
    requests: Vec<RecordedRequest>,
    access_scopes: Vec<String>,
    clock_offset: chrono::Duration,
    token_lifetime: u64,
    mints: Vec<Mint>,
    revoked: usize,
    shop_domain: String,
    admin_token: String,
    customers: Vec<FakeCustomer>,
    base_url: String,
    bulk_operations: Vec<FakeBulkOperation>,
    bulk_polls: usize,
    bulk_fail_next: Option<String>,
    bulk_downloads: Vec<BulkDownload>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            timezone: "America/New_York".to_owned(),
            page_size: MAX_FIRST,
            orders: Vec::new(),
            subscriptions: Vec::new(),
            next_subscription: 1,
            reject_topics: Vec::new(),
            refuse_token: false,
            throttle_next: 0,
            stall_next: 0,
            requests: Vec::new(),
            access_scopes: vec!["read_orders".to_owned(), "read_customers".to_owned()],
            clock_offset: chrono::Duration::zero(),
            token_lifetime: TOKEN_LIFETIME,
            mints: Vec::new(),
            revoked: 0,
            shop_domain: SHOP_DOMAIN.to_owned(),
            admin_token: ADMIN_TOKEN.to_owned(),
            customers: Vec::new(),
            base_url: String::new(),
            bulk_operations: Vec::new(),
            bulk_polls: 0,
            bulk_fail_next: None,
            bulk_downloads: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the recorded state from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// The fake's clock: the system's, moved by [`FakeShopify::advance`].
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Whether `token` opens the Admin API now; `Err(true)` when it is a minted one that expired.
    fn check(&self, token: Option<&str>) -> Result<(), bool> {
        let Some(token) = token else {
            return Err(false);
        };
        if self.refuse_token {
            return Err(false);
        }
        if token == self.admin_token {
            return Ok(());
        }
        match self.mints.iter().position(|m| m.token == token) {
            Some(i) if i < self.revoked => Err(false),
            Some(i) if self.now() < self.mints[i].expires_at => Ok(()),
            Some(_) => Err(true),
            None => Err(false),
        }
    }
}

/// The running fake; dropping it stops the server.
pub struct FakeShopify {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeShopify {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeShopify {
    /// Starts the fake on `127.0.0.1:0`: time zone `America/New_York`, no orders, no
    /// subscriptions, 250 orders per page.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/admin/api/{version}/graphql.json", post(graphql))
            .route("/admin/api/{version}/orders/{file}", get(order))
            .route("/admin/oauth/access_token", post(access_token))
            .route("/bulk/{file}", get(bulk_file))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        shared.lock().base_url = format!("http://{addr}");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:{port}`: the Admin API base URL instead of `https://{shop}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shop's `ianaTimezone`.
    pub fn set_timezone(&self, timezone: &str) {
        self.shared.lock().timezone = timezone.to_owned();
    }

    /// At most this many orders per page, whatever `first` asks (at least 1).
    pub fn set_page_size(&self, orders: usize) {
        self.shared.lock().page_size = orders.max(1);
    }

    /// Adds orders to the shop.
    pub fn add_orders(&self, orders: impl IntoIterator<Item = FakeOrder>) {
        self.shared.lock().orders.extend(orders);
    }

    /// Adds a subscription as if created earlier; returns its id.
    pub fn add_subscription(&self, topic: &str, uri: &str) -> String {
        add_subscription(&mut self.shared.lock(), topic, uri)
    }

    /// Deletes a subscription, as the merchant or `webhookSubscriptionDelete` would; `false` when
    /// there is none with this id.
    pub fn delete_subscription(&self, id: &str) -> bool {
        let mut inner = self.shared.lock();
        let before = inner.subscriptions.len();
        inner.subscriptions.retain(|s| s.id != id);
        inner.subscriptions.len() < before
    }

    /// The shop's subscriptions, oldest first.
    pub fn subscriptions(&self) -> Vec<FakeSubscription> {
        self.shared.lock().subscriptions.clone()
    }

    /// Creating a subscription to this topic enum (`ORDERS_PAID`) answers `userErrors`.
    pub fn reject_topic(&self, topic: &str) {
        self.shared.lock().reject_topics.push(topic.to_owned());
    }

    /// The shop it plays (`myshopifyDomain`), instead of [`SHOP_DOMAIN`]: one fake per store.
    pub fn set_shop_domain(&self, domain: &str) {
        self.shared.lock().shop_domain = domain.to_owned();
    }

    /// The static token it accepts, instead of [`ADMIN_TOKEN`].
    pub fn set_admin_token(&self, token: &str) {
        self.shared.lock().admin_token = token.to_owned();
    }

    /// Answer 401 to everything, whatever the token.
    pub fn refuse_token(&self) {
        self.shared.lock().refuse_token = true;
    }

    /// The next `n` GraphQL calls (with a valid token) answer `THROTTLED`.
    pub fn throttle_next(&self, n: usize) {
        self.shared.lock().throttle_next += n;
    }

    /// Holds the next `n` GraphQL calls for a minute before answering: a Shopify that hangs.
    pub fn stall_next(&self, n: usize) {
        self.shared.lock().stall_next += n;
    }

    /// The access scopes `currentAppInstallation` lists.
    pub fn set_access_scopes(&self, scopes: &[&str]) {
        self.shared.lock().access_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    }

    /// The `expires_in` of the tokens minted from now on, in seconds.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.shared.lock().token_lifetime = seconds;
    }

    /// Moves the fake's clock forward: minted tokens expire by it.
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).expect("a short duration");
        self.shared.lock().clock_offset += by;
    }

    /// The fake's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().now()
    }

    /// The fake's clock, for a client to judge expiry by the same time.
    pub fn clock(&self) -> pinrelay::shopify::admin::Clock {
        let shared = self.shared.clone();
        Arc::new(move || shared.lock().now())
    }

    /// Every token minted so far, oldest first.
    pub fn mints(&self) -> Vec<Mint> {
        self.shared.lock().mints.clone()
    }

    /// Refuses every token minted so far (as after the app's secret was rotated and revoked).
    pub fn revoke_minted_tokens(&self) {
        let mut inner = self.shared.lock();
        inner.revoked = inner.mints.len();
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }
}

fn add_subscription(inner: &mut Inner, topic: &str, uri: &str) -> String {
    let id = format!(
        "gid://shopify/WebhookSubscription/{}",
        inner.next_subscription
    );
    inner.next_subscription += 1;
    inner.subscriptions.push(FakeSubscription {
        id: id.clone(),
        topic: topic.to_owned(),
        uri: uri.to_owned(),
    });
    id
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
    )
        .into_response()
}

/// Shopify's answer when the cost bucket is empty: about 10 ms to wait at 10 000 points a second.
fn throttled() -> Value {
    json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 100, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 0, "restoreRate": 10000.0}}}
    })
}

fn graphql_error(message: &str) -> Value {
    json!({"errors": [{"message": message, "locations": [{"line": 1, "column": 1}]}]})
}

async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match graphql_reply(&shared, version, &headers, &body) {
        Some(response) => response,
        None => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// The answer to one GraphQL call, or `None` when the call is to hang.
fn graphql_reply(
    shared: &Shared,
    version: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut inner = shared.lock();
    let mut request = RecordedRequest {
        method: "POST",
        version,
        resource: "graphql.json".to_owned(),
        token: token(headers),
        query: body["query"].as_str().unwrap_or_default().to_owned(),
        variables: body["variables"].clone(),
        status: 200,
        throttled: false,
        expired: false,
    };
    if let Err(expired) = inner.check(request.token.as_deref()) {
        request.status = 401;
        request.expired = expired;
        inner.requests.push(request);
        return Some(unauthorized());
    }
    if inner.stall_next > 0 {
        inner.stall_next -= 1;
        inner.requests.push(request);
        return None;
    }
    let answer = if inner.throttle_next > 0 {
        inner.throttle_next -= 1;
        request.throttled = true;
        throttled()
    } else {
        answer(&mut inner, &request.query, &request.variables)
    };
    inner.requests.push(request);
    Some((StatusCode::OK, Json(answer)).into_response())
}

/// The answer to one GraphQL query, by its root field.
fn answer(inner: &mut Inner, query: &str, variables: &Value) -> Value {
    if query.contains("nodes(ids:") {
        customer_nodes(inner, variables)
    } else if query.contains("bulkOperationRunQuery(") {
        run_bulk_operation(inner, variables)
    } else if query.contains("bulkOperations(") {
        list_bulk_operations(inner, variables)
    } else if query.contains("node(id:") && query.contains("BulkOperation") {
        read_bulk_operation(inner, variables)
    } else if query.contains("customers(") {
        customers(inner, variables)
    } else if query.contains("webhookSubscriptionCreate(") {
        create_subscription(inner, variables)
    } else if query.contains("webhookSubscriptions(") {
        list_subscriptions(inner, query, variables)
    } else if query.contains("currentAppInstallation {") {
        let scopes: Vec<Value> = inner
            .access_scopes
            .iter()
            .map(|handle| json!({"handle": handle}))
            .collect();
        json!({"data": {"currentAppInstallation": {"accessScopes": scopes}}})
    } else if query.contains("orders(") && query.contains("lineItems(") {
        recent_line_items(inner, variables)
    } else if query.contains("pinrelayNewestOrder") {
        let newest = inner.orders.iter().max_by_key(|o| (o.created_at, o.id));
        json!({"data": {"orders": {"nodes": newest.map(FakeOrder::node).into_iter().collect::<Vec<_>>()}}})
    } else if query.contains("orders(") {
        orders(inner, variables)
    } else if query.contains("shop {") {
        json!({"data": {"shop": {
            "name": "Acme",
            "myshopifyDomain": inner.shop_domain,
            "ianaTimezone": inner.timezone,
            "currencyCode": "USD",
        }}})
    } else {
        graphql_error("the fake Admin API does not know this query")
    }
}

/// The index after cursor `after` (`cursor:{n}`), 0 without one.
fn start_after(variables: &Value) -> Result<usize, Value> {
    match variables["after"].as_str() {
        None => Ok(0),
        Some(cursor) => cursor
            .strip_prefix("cursor:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| graphql_error("Invalid cursor for current pagination")),
    }
}

fn page(nodes: Vec<Value>, end: usize, total: usize) -> Value {
    let has_next = end < total;
    json!({
        "nodes": nodes,
        "pageInfo": {"hasNextPage": has_next, "endCursor": has_next.then(|| format!("cursor:{end}"))}
    })
}

fn list_subscriptions(inner: &Inner, query: &str, variables: &Value) -> Value {
    let start = match start_after(variables) {
        Ok(start) => start,
        Err(e) => return e,
    };
    let legacy = query.contains("callbackUrl");
    let nodes: Vec<Value> = inner
        .subscriptions
        .iter()
        .skip(start)
        .take(inner.page_size)
        .map(|s| {
            if legacy {
                json!({"id": s.id, "topic": s.topic, "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": s.uri}})
            } else {
                json!({"id": s.id, "topic": s.topic, "uri": s.uri})
            }
        })
        .collect();
    let end = start + nodes.len();
    json!({"data": {"webhookSubscriptions": page(nodes, end, inner.subscriptions.len())}})
}

fn create_subscription(inner: &mut Inner, variables: &Value) -> Value {
    let Some(topic) = variables["topic"].as_str().map(str::to_owned) else {
        return graphql_error(
            "Variable $topic of type WebhookSubscriptionTopic! was provided invalid value",
        );
    };
    if inner.reject_topics.contains(&topic) {
        return json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": null,
            "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]
        }}});
    }
    let sub = &variables["webhookSubscription"];
    let Some(uri) = sub["uri"].as_str().or(sub["callbackUrl"].as_str()) else {
        return json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": null,
            "userErrors": [{"field": ["webhookSubscription"], "message": "Address can't be blank"}]
        }}});
    };
    let id = add_subscription(inner, &topic, uri);
    json!({"data": {"webhookSubscriptionCreate": {
        "webhookSubscription": {"id": id, "topic": topic},
        "userErrors": []
    }}})
}

/// A `created_at` bound of Shopify's search syntax: `created_at:>='2026-01-01T00:00:00Z'`.
fn matches_search(search: &str, created_at: DateTime<Utc>) -> Result<bool, String> {
    for term in search.split_whitespace() {
        let Some(condition) = term.strip_prefix("created_at:") else {
            return Err(format!("the fake only filters on created_at, not {term:?}"));
        };
        let (op, value) = [">=", "<=", ">", "<"]
            .iter()
            .find_map(|op| condition.strip_prefix(op).map(|v| (*op, v)))
            .ok_or_else(|| format!("unsupported comparison in {term:?}"))?;
        let value = value.trim_matches(['\'', '"']);
        let bound = parse_time(value).ok_or_else(|| format!("{value:?} is not RFC 3339"))?;
        let inside = match op {
            ">=" => created_at >= bound,
            "<=" => created_at <= bound,
            ">" => created_at > bound,
            _ => created_at < bound,
        };
        if !inside {
            return Ok(false);
        }
    }
    Ok(true)
}

fn orders(inner: &Inner, variables: &Value) -> Value {
    let Some(first) = variables["first"].as_u64().map(|n| n as usize) else {
        return graphql_error("you must provide one of first or last");
    };
    if first > MAX_FIRST {
        return graphql_error("The maximum number of records that can be fetched at once is 250");
    }
    let start = match start_after(variables) {
        Ok(start) => start,
        Err(e) => return e,
    };
    let search = variables["query"].as_str().unwrap_or_default();
    let mut selected = Vec::new();
    for order in &inner.orders {
        match matches_search(search, order.created_at) {
            Ok(true) => selected.push(order),
            Ok(false) => {}
            Err(message) => return graphql_error(&message),
        }
    }
    selected.sort_by_key(|o| (o.created_at, o.id));
    let nodes: Vec<Value> = selected
        .iter()
        .skip(start)
        .take(first.min(inner.page_size))
        .map(|o| o.node())
        .collect();
    let end = start + nodes.len();
    json!({"data": {"orders": page(nodes, end, selected.len())}})
}

async fn order(
    State(shared): State<Arc<Shared>>,
    Path((version, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = shared.lock();
    let mut request = RecordedRequest {
        method: "GET",
        version,
        resource: format!("orders/{file}"),
        token: token(&headers),
        query: String::new(),
        variables: Value::Null,
        status: 200,
        throttled: false,
        expired: false,
    };
    if let Err(expired) = inner.check(request.token.as_deref()) {
        request.status = 401;
        request.expired = expired;
        inner.requests.push(request);
        return unauthorized();
    }
    let payload = file
        .strip_suffix(".json")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| inner.orders.iter().find(|o| o.id == id))
        .and_then(|o| o.payload.clone());
    let response = match payload {
        Some(payload) => (StatusCode::OK, Json(json!({ "order": payload }))),
        None => {
            request.status = 404;
            (StatusCode::NOT_FOUND, Json(json!({"errors": "Not Found"})))
        }
    };
    inner.requests.push(request);
    response.into_response()
}

/// The newest orders first, each with its first `lineItems` line items.
fn recent_line_items(inner: &Inner, variables: &Value) -> Value {
    let (Some(first), Some(line_items)) = (
        variables["first"].as_u64().map(|n| n as usize),
        variables["lineItems"].as_u64().map(|n| n as usize),
    ) else {
        return graphql_error("you must provide one of first or last");
    };
    if first > MAX_FIRST || line_items > MAX_FIRST {
        return graphql_error("The maximum number of records that can be fetched at once is 250");
    }
    let mut newest: Vec<&FakeOrder> = inner.orders.iter().collect();
    newest.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
    let nodes: Vec<Value> = newest
        .iter()
        .take(first)
        .map(|o| o.line_items_node(line_items))
        .collect();
    json!({"data": {"orders": {"nodes": nodes}}})
}

/// `application/x-www-form-urlencoded` fields (`+` and `%XX` decoded).
fn form_fields(body: &[u8]) -> Value {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let text = String::from_utf8_lossy(body);
    let fields: serde_json::Map<String, Value> = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), Value::String(decode(v))))
        .collect();
    Value::Object(fields)
}

/// `POST /admin/oauth/access_token`: the client-credentials grant, in Shopify's answer shapes.
async fn access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields = if json {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        form_fields(&body)
    };
    if fields["grant_type"] != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported by the authorization server."})),
        )
            .into_response();
    }
    if fields["client_id"] != CLIENT_ID || fields["client_secret"] != CLIENT_SECRET {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})),
        )
            .into_response();
    }
    let mut inner = shared.lock();
    let at = inner.now();
    let lifetime = inner.token_lifetime;
    let token = format!("shpat_minted_{}", inner.mints.len() + 1);
    inner.mints.push(Mint {
        token: token.clone(),
        at,
        expires_at: at + chrono::Duration::seconds(lifetime as i64),
    });
    let scope = inner.access_scopes.join(",");
    (
        StatusCode::OK,
        Json(json!({"access_token": token, "scope": scope, "expires_in": lifetime})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Customers (audiences, issue 24)
// ---------------------------------------------------------------------------------------------

/// A customer of the fake shop, as the `customers` query answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCustomer {
    /// The numeric id (`gid://shopify/Customer/{id}`).
    pub id: u64,
    /// The default email address.
    pub email: Option<String>,
    /// `SUBSCRIBED`, `NOT_SUBSCRIBED`, `PENDING`, `UNSUBSCRIBED`, `REDACTED` or `INVALID`.
    pub marketing_state: String,
    /// `dataSaleOptOut`.
    pub data_sale_opt_out: bool,
    /// `numberOfOrders`.
    pub number_of_orders: u64,
    /// `updatedAt`.
    pub updated_at: DateTime<Utc>,
}

impl FakeCustomer {
    /// A subscribed customer `customer{id}@example.com` without orders, updated at `updated_at`.
    pub fn subscribed(id: u64, updated_at: DateTime<Utc>) -> Self {
        Self {
            id,
            email: Some(format!("customer{id}@example.com")),
            marketing_state: "SUBSCRIBED".to_owned(),
            data_sale_opt_out: false,
            number_of_orders: 0,
            updated_at,
        }
    }

    fn node(&self) -> Value {
        json!({
            "id": format!("gid://shopify/Customer/{}", self.id),
            "defaultEmailAddress": self.email.as_ref().map(|e| json!({"emailAddress": e})),
            "emailMarketingConsent": {"marketingState": self.marketing_state},
            "dataSaleOptOut": self.data_sale_opt_out,
            "numberOfOrders": self.number_of_orders.to_string(),
            "updatedAt": self.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}

impl FakeShopify {
    /// Adds customers to the shop.
    pub fn add_customers(&self, customers: impl IntoIterator<Item = FakeCustomer>) {
        self.shared.lock().customers.extend(customers);
    }

    /// Changes customer `id` (then `updated_at` should move too); `false` when there is none.
    pub fn update_customer(&self, id: u64, change: impl FnOnce(&mut FakeCustomer)) -> bool {
        let mut inner = self.shared.lock();
        match inner.customers.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                change(c);
                true
            }
            None => false,
        }
    }

    /// Deletes customer `id`, as `customers/delete` reports.
    pub fn delete_customer(&self, id: u64) -> bool {
        let mut inner = self.shared.lock();
        let before = inner.customers.len();
        inner.customers.retain(|c| c.id != id);
        inner.customers.len() < before
    }

    /// The ids asked by each `nodes` query (a consent re-check), as numbers.
    pub fn customer_node_queries(&self) -> Vec<Vec<u64>> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.query.contains("nodes(ids:"))
            .map(|r| {
                r.variables["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str()?.rsplit('/').next()?.parse().ok())
                    .collect()
            })
            .collect()
    }

    /// The `customers` queries received, with their variables.
    pub fn customer_queries(&self) -> Vec<Value> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.query.contains("customers("))
            .map(|r| r.variables.clone())
            .collect()
    }
}

/// `nodes(ids: [...])`: each customer asked, `null` when there is none.
fn customer_nodes(inner: &Inner, variables: &Value) -> Value {
    let Some(ids) = variables["ids"].as_array() else {
        return graphql_error("Variable $ids of type [ID!]! was provided invalid value");
    };
    if ids.len() > 250 {
        return graphql_error("The maximum number of ids that can be fetched at once is 250");
    }
    let nodes: Vec<Value> = ids
        .iter()
        .map(|gid| {
            gid.as_str()
                .and_then(|g| g.strip_prefix("gid://shopify/Customer/"))
                .and_then(|n| n.parse::<u64>().ok())
                .and_then(|id| inner.customers.iter().find(|c| c.id == id))
                .map_or(Value::Null, FakeCustomer::node)
        })
        .collect();
    json!({"data": {"nodes": nodes}})
}

/// `customers(first:, after:, query: "updated_at:>='…'")`, oldest update first.
fn customers(inner: &Inner, variables: &Value) -> Value {
    let start = match start_after(variables) {
        Ok(start) => start,
        Err(e) => return e,
    };
    let since = match variables["query"].as_str() {
        None | Some("") => None,
        Some(q) => match q
            .strip_prefix("updated_at:>='")
            .and_then(|rest| rest.strip_suffix('\''))
            .and_then(parse_time)
        {
            Some(t) => Some(t),
            None => return graphql_error("the fake Admin API only knows updated_at:>='…'"),
        },
    };
    let first = variables["first"].as_u64().unwrap_or(50) as usize;
    let mut matching: Vec<&FakeCustomer> = inner
        .customers
        .iter()
        .filter(|c| since.is_none_or(|t| c.updated_at >= t))
        .collect();
    matching.sort_by_key(|c| (c.updated_at, c.id));
    let nodes: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(first.min(inner.page_size))
        .map(|c| c.node())
        .collect();
    let end = start + nodes.len();
    json!({"data": {"customers": page(nodes, end, matching.len())}})
}

// ---------------------------------------------------------------------------------------------
// Bulk query operations (audiences' full reads)
// ---------------------------------------------------------------------------------------------

/// One bulk query operation of the fake shop.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeBulkOperation {
    /// The numeric id (`gid://shopify/BulkOperation/{id}`).
    pub id: u64,
    /// The query document it runs.
    pub query: String,
    /// `CREATED`, `RUNNING`, `COMPLETED` or `FAILED`.
    pub status: &'static str,
    /// `errorCode` once failed.
    pub error_code: Option<String>,
    /// Status reads still answered `RUNNING`.
    pub polls_left: usize,
    /// The code it fails with when it ends.
    fail_with: Option<String>,
    /// `createdAt`.
    pub created_at: DateTime<Utc>,
    /// `completedAt`.
    pub completed_at: Option<DateTime<Utc>>,
    /// The JSONL written on completion (empty when no customer).
    pub jsonl: String,
    /// Lines of the JSONL (`objectCount`).
    pub objects: usize,
}

/// One download of a bulk operation's file, with the credential headers it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkDownload {
    /// The file requested (`{id}.jsonl`).
    pub file: String,
    /// `Authorization`, as sent.
    pub authorization: Option<String>,
    /// `X-Shopify-Access-Token`, as sent.
    pub access_token: Option<String>,
}

impl FakeBulkOperation {
    fn gid(&self) -> String {
        format!("gid://shopify/BulkOperation/{}", self.id)
    }

    fn node(&self, base_url: &str) -> Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let url = (self.status == "COMPLETED" && !self.jsonl.is_empty()).then(|| {
            format!(
                "{base_url}/bulk/{}.jsonl?signature=fake-{}",
                self.id, self.id
            )
        });
        json!({
            "id": self.gid(),
            "status": self.status,
            "errorCode": self.error_code,
            "objectCount": self.objects.to_string(),
            "url": url,
            "partialDataUrl": null,
            "createdAt": time(&self.created_at),
            "completedAt": self.completed_at.as_ref().map(time),
            "query": self.query,
        })
    }

    /// Ends it: completed with the customers as JSONL, or failed.
    fn finish(&mut self, customers: &[FakeCustomer], now: DateTime<Utc>) {
        if !matches!(self.status, "CREATED" | "RUNNING") {
            return;
        }
        self.polls_left = 0;
        if let Some(code) = self.fail_with.take() {
            self.status = "FAILED";
            self.error_code = Some(code);
            return;
        }
        let mut sorted: Vec<&FakeCustomer> = customers.iter().collect();
        sorted.sort_by_key(|c| c.id);
        self.jsonl = sorted.iter().map(|c| format!("{}\n", c.node())).collect();
        self.objects = sorted.len();
        self.status = "COMPLETED";
        self.completed_at = Some(now);
    }
}

impl FakeShopify {
    /// New bulk operations answer `RUNNING` to this many status reads before they end.
    pub fn set_bulk_polls(&self, polls: usize) {
        self.shared.lock().bulk_polls = polls;
    }

    /// The next bulk operation started ends `FAILED` with this `errorCode` (`ACCESS_DENIED`).
    pub fn fail_next_bulk_operation(&self, error_code: &str) {
        self.shared.lock().bulk_fail_next = Some(error_code.to_owned());
    }

    /// Ends every bulk operation in progress now.
    pub fn finish_bulk_operations(&self) {
        let mut inner = self.shared.lock();
        let now = inner.now();
        let customers = inner.customers.clone();
        for op in &mut inner.bulk_operations {
            op.finish(&customers, now);
        }
    }

    /// Every bulk operation, oldest first.
    pub fn bulk_operations(&self) -> Vec<FakeBulkOperation> {
        self.shared.lock().bulk_operations.clone()
    }

    /// The `bulkOperationRunQuery` calls answered (with or without `userErrors`).
    pub fn bulk_runs(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| {
                r.status == 200 && !r.throttled && r.query.contains("bulkOperationRunQuery(")
            })
            .count()
    }

    /// Every download of a bulk operation's file, in order.
    pub fn bulk_downloads(&self) -> Vec<BulkDownload> {
        self.shared.lock().bulk_downloads.clone()
    }
}

fn run_bulk_operation(inner: &mut Inner, variables: &Value) -> Value {
    let Some(query) = variables["query"].as_str().filter(|q| !q.trim().is_empty()) else {
        return graphql_error("Variable $query of type String! was provided invalid value");
    };
    let running = inner
        .bulk_operations
        .iter()
        .filter(|op| matches!(op.status, "CREATED" | "RUNNING"))
        .count();
    if running >= 5 {
        return json!({"data": {"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": [
            {"field": null, "message": "A bulk query operation for this app and shop is already in progress"}
        ]}}});
    }
    let now = inner.now();
    let op = FakeBulkOperation {
        id: inner.bulk_operations.len() as u64 + 1,
        query: query.to_owned(),
        status: "CREATED",
        error_code: None,
        polls_left: inner.bulk_polls,
        fail_with: inner.bulk_fail_next.take(),
        created_at: now,
        completed_at: None,
        jsonl: String::new(),
        objects: 0,
    };
    let answer = json!({"data": {"bulkOperationRunQuery": {
        "bulkOperation": {"id": op.gid(), "status": op.status},
        "userErrors": []
    }}});
    inner.bulk_operations.push(op);
    answer
}

/// `node(id:)` of a bulk operation: one status read.
fn read_bulk_operation(inner: &mut Inner, variables: &Value) -> Value {
    let now = inner.now();
    let customers = inner.customers.clone();
    let base_url = inner.base_url.clone();
    let id = variables["id"].as_str().unwrap_or_default();
    let Some(op) = inner.bulk_operations.iter_mut().find(|op| op.gid() == id) else {
        return json!({"data": {"node": null}});
    };
    if matches!(op.status, "CREATED" | "RUNNING") {
        if op.polls_left > 0 {
            op.polls_left -= 1;
            op.status = "RUNNING";
        } else {
            op.finish(&customers, now);
        }
    }
    json!({"data": {"node": op.node(&base_url)}})
}

/// `bulkOperations`: each variable is a search answered under the alias of its name.
fn list_bulk_operations(inner: &Inner, variables: &Value) -> Value {
    let Some(searches) = variables.as_object() else {
        return graphql_error("the fake answers bulkOperations searches given as variables");
    };
    let mut data = serde_json::Map::new();
    for (alias, search) in searches {
        let search = search.as_str().unwrap_or_default();
        let mut nodes = Vec::new();
        for op in inner.bulk_operations.iter().rev() {
            match bulk_search_matches(search, op) {
                Ok(true) => nodes.push(op.node(&inner.base_url)),
                Ok(false) => {}
                Err(message) => return graphql_error(&message),
            }
        }
        data.insert(alias.clone(), json!({ "nodes": nodes }));
    }
    json!({ "data": data })
}

fn bulk_search_matches(search: &str, op: &FakeBulkOperation) -> Result<bool, String> {
    for term in search.split_whitespace() {
        let inside = if let Some(kind) = term.strip_prefix("operation_type:") {
            kind == "query"
        } else if let Some(status) = term.strip_prefix("status:") {
            status.eq_ignore_ascii_case(op.status)
        } else if let Some(bound) = term.strip_prefix("created_at:>") {
            let bound = bound.trim_start_matches('=').trim_matches(['\'', '"']);
            let bound = parse_time(bound).ok_or_else(|| format!("{bound:?} is not RFC 3339"))?;
            op.created_at > bound
        } else {
            return Err(format!(
                "the fake does not filter bulk operations on {term:?}"
            ));
        };
        if !inside {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /bulk/{id}.jsonl`: the file of a completed operation, with no credential checked.
async fn bulk_file(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = shared.lock();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    inner.bulk_downloads.push(BulkDownload {
        file: file.clone(),
        authorization: header("authorization"),
        access_token: header("x-shopify-access-token"),
    });
    let op = file
        .strip_suffix(".jsonl")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| inner.bulk_operations.iter().find(|op| op.id == id));
    match op {
        Some(op) if op.status == "COMPLETED" => (
            StatusCode::OK,
            [("content-type", "application/jsonl")],
            op.jsonl.clone(),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
