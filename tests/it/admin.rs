//! The library's Admin API client ([`pinrelay::shopify::AdminApi`]) against the fake Admin API
//! (`fake_shopify.rs`): pagination and the `created_at` range, throttling, the shop's time zone,
//! refused tokens, one order's REST payload read by `translate`, webhook subscriptions, the access
//! scopes and the recent line items; tokens minted from client credentials, renewed before they
//! expire or once after a 401.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pinrelay::mapping::CheckoutOn;
use pinrelay::mapping::{self, Options, Outcome, SkipReason};
use pinrelay::shopify::admin::{
    AdminCredentials, CREATE_MUTATION, LIST_QUERY, LIST_QUERY_LEGACY, ORDERS_QUERY, missing_scopes,
    required_scopes,
};
use pinrelay::shopify::{AdminApi, AdminError, RetryPolicy, SubscriptionCreated, WebhookMetadata};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fake_shopify::{
    ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, FakeLineItem, FakeOrder, FakeShopify, SHOP_DOMAIN,
};
use crate::helpers::fixture;

const REST_ORDER: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";
const SAMPLE_ORDER: &str = "shopify/webhooks/orders-create.shopify-dev-sample-2026-07.json";
const ADDRESS: &str = "https://relay.example.lambda-url.us-east-1.on.aws/webhooks/shopify";

/// Short waits, so throttling costs milliseconds.
const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    min_wait: Duration::from_millis(5),
    max_wait: Duration::from_millis(50),
    attempt_timeout: Duration::from_secs(5),
};

fn client(fake: &FakeShopify, version: &str, token: &str) -> AdminApi {
    AdminApi::new(
        "acme",
        SecretString::from(token.to_owned()),
        version,
        Some(&fake.base_url()),
    )
    .unwrap()
    .with_retry_policy(FAST)
}

fn admin(fake: &FakeShopify) -> AdminApi {
    client(fake, "2026-07", ADMIN_TOKEN)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn lists_every_order_in_the_range_across_pages_and_none_outside() {
    let fake = FakeShopify::start().await;
    fake.set_page_size(2);
    fake.add_orders([
        FakeOrder::new(1, "2026-10-31T23:59:59Z"), // before
        FakeOrder::new(7, "2026-11-20T08:00:00-05:00"),
        FakeOrder::new(2, "2026-11-01T00:00:00Z"), // on `from`: in
        FakeOrder::new(3, "2026-11-02T10:00:00Z"),
        FakeOrder::new(9, "2026-12-01T00:00:00Z"), // on `to`: out
        FakeOrder::new(4, "2026-11-03T10:00:00Z"),
        FakeOrder::new(5, "2026-11-04T10:00:00Z"),
        FakeOrder::new(6, "2026-11-10T10:00:00Z"),
        FakeOrder::new(8, "2026-11-30T23:59:59Z"),
        FakeOrder::new(10, "2027-01-01T00:00:00Z"), // after
    ]);
    let mut counts = Vec::new();
    let orders = admin(&fake)
        .orders(
            at("2026-11-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            &mut |n| counts.push(n),
        )
        .await
        .unwrap();

    let ids: Vec<u64> = orders.iter().map(|o| o.id).collect();
    assert_eq!(ids, [2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(counts, [2, 4, 6, 7]);
    let seventh = &orders[5];
    assert_eq!(seventh.created_at, at("2026-11-20T13:00:00Z"));
    assert_eq!(
        (
            seventh.name.as_str(),
            seventh.total.as_str(),
            seventh.currency.as_str()
        ),
        ("#7", "10.00", "USD")
    );
    assert_eq!(seventh.source_name.as_deref(), Some("web"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 4, "one request per page");
    assert!(requests.iter().all(|r| r.query == ORDERS_QUERY));
    assert!(requests.iter().all(|r| r.version == "2026-07"));
    assert_eq!(
        requests[0].variables,
        json!({
            "first": 250,
            "after": null,
            "query": "created_at:>='2026-11-01T00:00:00Z' created_at:<'2026-12-01T00:00:00Z'"
        })
    );
    assert_eq!(requests[1].variables["after"], "cursor:2");
    assert_eq!(requests[3].variables["after"], "cursor:6");
}

#[tokio::test]
async fn an_empty_range_is_one_request_and_no_orders() {
    let fake = FakeShopify::start().await;
    fake.add_orders([FakeOrder::new(1, "2026-10-31T23:59:59Z")]);
    let mut counts = Vec::new();
    let orders = admin(&fake)
        .orders(
            at("2026-11-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            &mut |n| counts.push(n),
        )
        .await
        .unwrap();
    assert!(orders.is_empty());
    assert_eq!(counts, [0]);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn waits_out_throttling_then_succeeds() {
    let fake = FakeShopify::start().await;
    fake.set_page_size(1);
    fake.add_orders([
        FakeOrder::new(1, "2026-11-01T00:00:00Z"),
        FakeOrder::new(2, "2026-11-02T00:00:00Z"),
    ]);
    fake.throttle_next(2);
    let orders = admin(&fake)
        .orders(
            at("2026-11-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), 2);
    let requests = fake.requests();
    let throttled = requests.iter().filter(|r| r.throttled).count();
    assert_eq!((requests.len(), throttled), (4, 2));
    // The retried request is the same page.
    assert_eq!(requests[0].variables, requests[2].variables);
}

#[tokio::test]
async fn gives_up_when_throttled_on_every_attempt() {
    let fake = FakeShopify::start().await;
    fake.throttle_next(100);
    let err = admin(&fake).shop().await.unwrap_err();
    assert!(
        matches!(err, AdminError::Throttled { attempts: 4 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("throttling"), "{err}");
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn a_hung_attempt_is_cut_at_the_attempt_timeout_and_retried() {
    let fake = FakeShopify::start().await;
    fake.stall_next(1);
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(300),
        ..FAST
    };
    let started = std::time::Instant::now();
    let shop = admin(&fake).with_retry_policy(policy).shop().await.unwrap();
    assert_eq!(shop.myshopify_domain, SHOP_DOMAIN);
    assert_eq!(fake.requests().len(), 2);
    // The fake holds a stalled call for 60 s; without the cut this waits that long.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn reads_the_shops_time_zone() {
    let fake = FakeShopify::start().await;
    fake.set_timezone("Asia/Kolkata");
    let shop = admin(&fake).shop().await.unwrap();
    assert_eq!(shop.iana_timezone, "Asia/Kolkata");
    assert_eq!(shop.myshopify_domain, SHOP_DOMAIN);
    assert_eq!(shop.currency_code, "USD");
    assert!(fake.requests()[0].selects("shop {"));
}

#[tokio::test]
async fn a_wrong_token_is_an_actionable_401_error_without_the_token() {
    let fake = FakeShopify::start().await;
    let api = client(&fake, "2026-07", "shpat_wrong_token");
    let err = api.shop().await.unwrap_err();
    assert!(matches!(err, AdminError::InvalidToken), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("refused the admin token (401)"),
        "{message}"
    );
    assert!(!message.contains("shpat_wrong_token"));
    assert!(!format!("{api:?}").contains("shpat_wrong_token"));
    // Not retried.
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].status, 401);

    fake.refuse_token();
    assert!(matches!(
        admin(&fake).order_payload(1).await,
        Err(AdminError::InvalidToken)
    ));
}

#[tokio::test]
async fn other_graphql_errors_carry_shopifys_message() {
    let fake = FakeShopify::start().await;
    let err = admin(&fake)
        .graphql("query { nope }", json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the fake Admin API does not know this query"),
        "{err}"
    );
}

fn orders_create_metadata() -> WebhookMetadata {
    WebhookMetadata::from_lookup(|name| match name {
        "topic" => Some("orders/create".to_owned()),
        "shop-domain" => Some(SHOP_DOMAIN.to_owned()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn order_payload_is_a_body_translate_reads_as_orders_create() {
    let fake = FakeShopify::start().await;
    let rest: Value = serde_json::from_slice(&fixture(REST_ORDER)).unwrap();
    let sample: Value = serde_json::from_slice(&fixture(SAMPLE_ORDER)).unwrap();
    fake.add_orders([
        FakeOrder::from_payload(rest.clone()),
        FakeOrder::from_payload(sample.clone()),
    ]);
    let api = admin(&fake);

    let body = api.order_payload(450_789_469).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), rest);
    assert_eq!(fake.requests()[0].resource, "orders/450789469.json");
    let outcome = mapping::translate(
        &orders_create_metadata(),
        &body,
        &Options::default(),
        at("2026-12-01T00:00:00Z"),
    )
    .unwrap();
    match outcome {
        Outcome::Send(conversion) => assert_eq!(conversion.event.event_id, "450789469"),
        other => panic!("expected a checkout event, got {other:?}"),
    }

    // The webhook sample is a test order: skipped, but read as an order of its topic.
    let body = api.order_payload(820_982_911_946_154_508).await.unwrap();
    let outcome = mapping::translate(
        &orders_create_metadata(),
        &body,
        &Options::default(),
        at("2026-12-01T00:00:00Z"),
    )
    .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Skip {
                reason: SkipReason::TestOrder,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_unknown_order_is_order_not_found() {
    let fake = FakeShopify::start().await;
    fake.add_orders([FakeOrder::new(5, "2026-11-01T00:00:00Z")]); // no REST payload
    for id in [5, 6] {
        let err = admin(&fake).order_payload(id).await.unwrap_err();
        assert!(
            matches!(err, AdminError::OrderNotFound(i) if i == id),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("order {id} does not exist"))
        );
    }
}

#[tokio::test]
async fn lists_creates_and_sees_deleted_subscriptions() {
    let fake = FakeShopify::start().await;
    fake.set_page_size(2);
    let first = fake.add_subscription("ORDERS_CREATE", ADDRESS);
    fake.add_subscription("ORDERS_PAID", ADDRESS);
    fake.add_subscription("PRODUCTS_UPDATE", "https://elsewhere.example/hook");
    let api = admin(&fake);

    let listed = api.webhook_subscriptions().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, first);
    assert_eq!(listed[0].topic, "ORDERS_CREATE");
    assert_eq!(listed[0].uri.as_deref(), Some(ADDRESS));
    let lists = fake.requests();
    assert_eq!(lists.len(), 2, "two pages");
    assert!(lists.iter().all(|r| r.query == LIST_QUERY));

    let created = api
        .create_webhook_subscription("customers/create", ADDRESS)
        .await
        .unwrap();
    let SubscriptionCreated::Created(id) = created else {
        panic!("{created:?}");
    };
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.query, CREATE_MUTATION);
    assert_eq!(
        last.variables,
        json!({"topic": "CUSTOMERS_CREATE", "webhookSubscription": {"uri": ADDRESS}})
    );
    assert!(fake.subscriptions().iter().any(|s| s.id == id));

    fake.reject_topic("ORDERS_CANCELLED");
    assert_eq!(
        api.create_webhook_subscription("orders/cancelled", ADDRESS)
            .await
            .unwrap(),
        SubscriptionCreated::Refused(vec![
            "webhookSubscription.callbackUrl: Address for this topic has already been taken"
                .to_owned()
        ])
    );

    assert!(fake.delete_subscription(&first));
    assert!(!fake.delete_subscription(&first));
    let topics: Vec<String> = api
        .webhook_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.topic)
        .collect();
    assert_eq!(
        topics,
        ["ORDERS_PAID", "PRODUCTS_UPDATE", "CUSTOMERS_CREATE"]
    );
}

#[tokio::test]
async fn versions_before_2025_10_list_and_create_with_callback_url() {
    let fake = FakeShopify::start().await;
    fake.add_subscription("ORDERS_CREATE", ADDRESS);
    let api = client(&fake, "2025-07", ADMIN_TOKEN);
    let listed = api.webhook_subscriptions().await.unwrap();
    assert_eq!(listed[0].uri.as_deref(), Some(ADDRESS));
    api.create_webhook_subscription("orders/paid", ADDRESS)
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests[0].query, LIST_QUERY_LEGACY);
    assert_eq!(requests[0].version, "2025-07");
    assert_eq!(
        requests[1].variables["webhookSubscription"],
        json!({"callbackUrl": ADDRESS, "format": "JSON"})
    );
}

/// A client of the fake minting from `secret`, on the fake's clock.
fn minting(fake: &FakeShopify, secret: &str) -> AdminApi {
    let credentials = AdminCredentials::ClientCredentials {
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
    };
    AdminApi::new("acme", credentials, "2026-07", Some(&fake.base_url()))
        .unwrap()
        .with_retry_policy(FAST)
        .with_clock(fake.clock())
}

#[tokio::test]
async fn a_token_minted_from_client_credentials_serves_every_query_of_every_clone() {
    let fake = FakeShopify::start().await;
    fake.add_orders([FakeOrder::new(1, "2026-11-01T00:00:00Z")]);
    let api = minting(&fake, CLIENT_SECRET);

    assert_eq!(api.shop().await.unwrap().myshopify_domain, SHOP_DOMAIN);
    let clone = api.clone();
    let orders = clone
        .orders(
            at("2026-11-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    clone.webhook_subscriptions().await.unwrap();

    let mints = fake.mints();
    assert_eq!(mints.len(), 1, "one token for three queries");
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.status == 200 && r.token.as_deref() == Some(mints[0].token.as_str())),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_minted_token_is_renewed_before_it_expires_and_never_used_expired() {
    let fake = FakeShopify::start().await;
    let api = minting(&fake, CLIENT_SECRET);
    let hour = Duration::from_secs(3600);

    api.shop().await.unwrap();
    let first = fake.mints()[0].clone();
    assert_eq!(
        first.expires_at - first.at,
        chrono::Duration::seconds(86_399)
    );

    // Ten minutes left: the token is still used.
    fake.advance(hour * 23 + Duration::from_secs(50 * 60 - 1));
    api.shop().await.unwrap();
    assert_eq!(fake.mints().len(), 1);

    // Under five minutes left: a new token, minted before the first expires.
    fake.advance(Duration::from_secs(6 * 60));
    api.access_scopes().await.unwrap();
    let mints = fake.mints();
    assert_eq!(mints.len(), 2);
    assert!(mints[1].at < first.expires_at, "{mints:?}");

    // Past the first token's expiry: the second one serves, for a day.
    fake.advance(Duration::from_secs(10 * 60));
    assert!(fake.now() > first.expires_at);
    api.shop().await.unwrap();
    fake.advance(hour * 20);
    api.shop().await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 5);
    assert!(
        requests.iter().all(|r| r.status == 200 && !r.expired),
        "{requests:?}"
    );
    let used: Vec<&str> = requests.iter().filter_map(|r| r.token.as_deref()).collect();
    assert_eq!(
        used,
        [
            first.token.as_str(),
            &first.token,
            &mints[1].token,
            &mints[1].token,
            &mints[1].token
        ]
    );
    assert_eq!(fake.mints().len(), 2);
}

#[tokio::test]
async fn a_refused_minted_token_is_renewed_once_then_the_401_stands() {
    let fake = FakeShopify::start().await;
    let api = minting(&fake, CLIENT_SECRET);
    api.shop().await.unwrap();

    // Shopify revokes the tokens (a rotated secret): one 401, a new token, the query succeeds.
    fake.revoke_minted_tokens();
    api.shop().await.unwrap();
    assert_eq!(fake.mints().len(), 2);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200]);

    // A 401 whatever the token: renewed once, then the error.
    fake.clear_requests();
    fake.refuse_token();
    let err = api.shop().await.unwrap_err();
    assert!(matches!(err, AdminError::InvalidToken), "{err:?}");
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.mints().len(), 3);
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_error_that_names_the_fix_without_the_secret() {
    let fake = FakeShopify::start().await;
    let api = minting(&fake, "shpss_wrong_secret");
    let err = api.shop().await.unwrap_err();
    assert!(matches!(err, AdminError::InvalidClient { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(
        message.contains("copy both from the Dev Dashboard"),
        "{message}"
    );
    assert!(!message.contains("shpss_wrong_secret"));
    assert!(!format!("{api:?}").contains("shpss_wrong_secret"));
    // No Admin API call was made with nothing to authenticate it.
    assert!(fake.requests().is_empty());
    assert!(fake.mints().is_empty());
}

#[tokio::test]
async fn a_static_token_is_sent_as_is_and_never_minted() {
    let fake = FakeShopify::start().await;
    let api = AdminApi::new(
        "acme",
        AdminCredentials::Token(SecretString::from(ADMIN_TOKEN)),
        "2026-07",
        Some(&fake.base_url()),
    )
    .unwrap()
    .with_clock(fake.clock());
    fake.advance(Duration::from_secs(400 * 24 * 3600));
    api.shop().await.unwrap();
    api.access_scopes().await.unwrap();
    assert!(fake.mints().is_empty());
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.token.as_deref() == Some(ADMIN_TOKEN))
    );
}

#[tokio::test]
async fn access_scopes_list_the_grant_and_name_what_is_missing() {
    let fake = FakeShopify::start().await;
    let granted = admin(&fake).access_scopes().await.unwrap();
    assert_eq!(granted, ["read_orders", "read_customers"]);
    assert!(missing_scopes(&granted, &required_scopes(CheckoutOn::Paid)).is_empty());

    fake.set_access_scopes(&["read_products", "write_orders"]);
    let granted = admin(&fake).access_scopes().await.unwrap();
    let missing = missing_scopes(&granted, &required_scopes(CheckoutOn::Created));
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].handle, "read_customers");
    assert_eq!(missing[0].needed_for, ["the customers/create webhook"]);
    assert!(fake.requests()[0].selects("currentAppInstallation {"));
}

#[tokio::test]
async fn recent_line_items_are_the_newest_orders_products_and_variants() {
    let fake = FakeShopify::start().await;
    let rest: Value = serde_json::from_slice(&fixture(REST_ORDER)).unwrap();
    fake.add_orders([
        FakeOrder::new(1, "2026-11-01T00:00:00Z")
            .with_line_items([FakeLineItem::new(11, 111, "OLD-1")]),
        FakeOrder::new(3, "2026-11-03T00:00:00Z").with_line_items([
            FakeLineItem::new(31, 311, "MUG-RED"),
            FakeLineItem {
                sku: None,
                product_id: None,
                variant_id: None,
                variant_sku: None,
            },
        ]),
        FakeOrder::new(2, "2026-11-02T00:00:00Z")
            .with_line_items([FakeLineItem::new(21, 211, "TEE-S")]),
        FakeOrder::from_payload(rest.clone()),
    ]);
    let api = admin(&fake);

    let recent = api.recent_line_items(3).await.unwrap();
    let names: Vec<&str> = recent.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["#3", "#2", "#1"]);
    let mug = &recent[0].line_items[0];
    assert_eq!(
        (mug.product_id(), mug.variant_id(), mug.sku.as_deref()),
        (Some(31), Some(311), Some("MUG-RED"))
    );
    assert_eq!(
        mug.variant.as_ref().unwrap().id,
        "gid://shopify/ProductVariant/311"
    );
    let custom = &recent[0].line_items[1];
    assert_eq!((custom.product_id(), custom.variant_id()), (None, None));
    let request = fake.requests().pop().unwrap();
    assert_eq!(request.variables, json!({"first": 3, "lineItems": 10}));

    // The REST fixture's order (created 2008) is the oldest; asking for more than the cap asks
    // for the cap.
    let all = api.recent_line_items(1000).await.unwrap();
    assert_eq!(all.len(), 4);
    let fixture_items = &all[3].line_items;
    assert_eq!(
        fixture_items[0].variant_id(),
        rest["line_items"][0]["variant_id"].as_u64()
    );
    assert_eq!(fake.requests().pop().unwrap().variables["first"], 25);
}
