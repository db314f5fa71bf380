//! The watch ([`pinrelay::watch::watch`]) against the fake Shopify Admin API and the relay's
//! records in DynamoDB (moto), then [`pinrelay::watch::emit`] into in-memory metrics:
//!
//! - every subscription present and every recent order with a record: nothing missing, accuracy
//!   100 %; orders older than the lookback or younger than the grace period are not checked;
//! - a deleted subscription: `WebhookSubscriptionsMissing` 1, naming its topic;
//! - an order without a record: `OrdersMissing` 1, with its id and name;
//! - a refused token: an Admin error that names the secret to fix.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::idempotency::{IdempotencyKey, SentFacts, Settled, contract};
use pinrelay::metrics::Metrics;
use pinrelay::shopify::admin::AdminApi;
use pinrelay::watch::{self, WatchConfig, WatchError};
use secrecy::SecretString;

use crate::fake_shopify::{ADMIN_TOKEN, FakeOrder, FakeShopify, SHOP_DOMAIN};
use crate::helpers::TestEnv;

const WEBHOOK_URL: &str = "https://abc123.lambda-url.us-east-1.on.aws/webhooks/shopify";

fn ago(now: DateTime<Utc>, minutes: i64) -> String {
    (now - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn record_sent(store: &DynamoDbIdempotencyStore, id: u64, now: DateTime<Utc>) {
    let at = now - Duration::minutes(30);
    let facts = SentFacts {
        at: Some(at),
        value: Some("10.00".into()),
        currency: Some("USD".into()),
        ..SentFacts::default()
    };
    let key = IdempotencyKey::order(SHOP_DOMAIN, id).unwrap();
    contract::write_settled(store, key, Settled::Sent(facts), at).await;
}

#[tokio::test]
async fn the_watch_finds_deleted_subscriptions_and_orders_the_relay_never_saw() {
    let env = TestEnv::start().await;
    let shopify = FakeShopify::start().await;
    let ledger = DynamoDbIdempotencyStore::new(Table::new(env.dynamodb.clone(), &env.table));
    let admin = AdminApi::new(
        SHOP_DOMAIN,
        SecretString::from(ADMIN_TOKEN),
        "2026-07",
        Some(&shopify.base_url()),
    )
    .unwrap();
    // A stack with CHECKOUT_ON=paid watches orders/paid too.
    let mut config = WatchConfig::new(SHOP_DOMAIN, WEBHOOK_URL);
    config.topics = pinrelay::mapping::webhook_topics(pinrelay::mapping::CheckoutOn::Paid)
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let now = Utc::now();

    // Arrange: the three topics subscribed (one with a trailing slash), two recent orders sent,
    // one older than the 6 h lookback and one inside the 15 min grace, both without a trace.
    shopify.add_subscription("ORDERS_CREATE", WEBHOOK_URL);
    let paid = shopify.add_subscription("ORDERS_PAID", &format!("{WEBHOOK_URL}/"));
    shopify.add_subscription("CUSTOMERS_CREATE", WEBHOOK_URL);
    shopify.add_subscription("ORDERS_UPDATED", "https://elsewhere.example/hook");
    shopify.add_orders([
        FakeOrder::new(1001, &ago(now, 120)),
        FakeOrder::new(1002, &ago(now, 60)),
        FakeOrder::new(900, &ago(now, 7 * 60)),
        FakeOrder::new(1003, &ago(now, 5)),
    ]);
    record_sent(&ledger, 1001, now).await;
    record_sent(&ledger, 1002, now).await;

    // Everything in place.
    let report = watch::watch(&admin, &ledger, &config, now).await.unwrap();
    assert!(report.subscriptions_missing.is_empty(), "{report:?}");
    assert_eq!(
        report.orders_checked, 2,
        "only the lookback, minus the grace"
    );
    assert!(report.missing.is_empty(), "{report:?}");
    assert_eq!(report.accuracy, Some(1.0));
    let metrics = Metrics::in_memory("watch");
    watch::emit(&metrics, &report);
    let values = metrics.snapshot();
    assert_eq!(values["WebhookSubscriptionsMissing"], 0.0);
    assert_eq!(values["OrdersMissing"], 0.0);
    assert_eq!(values["OrdersChecked"], 2.0);
    assert_eq!(values["ReconcileAccuracy"], 100.0);

    // Shopify deleted a subscription, and an order placed since never reached the relay.
    assert!(shopify.delete_subscription(&paid));
    shopify.add_orders([FakeOrder::new(1004, &ago(now, 30))]);
    let report = watch::watch(&admin, &ledger, &config, now).await.unwrap();
    assert_eq!(report.subscriptions_missing, ["orders/paid"]);
    assert_eq!(report.orders_checked, 3);
    assert_eq!(report.missing, [(1004, "#1004".to_owned())]);
    assert_eq!(report.recoverable_missing, 1);
    let metrics = Metrics::in_memory("watch");
    watch::emit(&metrics, &report);
    let values = metrics.snapshot();
    assert_eq!(values["WebhookSubscriptionsMissing"], 1.0);
    assert_eq!(values["OrdersMissing"], 1.0);
    assert_eq!(values["OrdersChecked"], 3.0);
    let accuracy = values["ReconcileAccuracy"];
    assert!((accuracy - 200.0 / 3.0).abs() < 1e-9, "{accuracy}");

    // A refused token fails the run with what to fix.
    shopify.refuse_token();
    let err = watch::watch(&admin, &ledger, &config, now)
        .await
        .unwrap_err();
    assert!(matches!(err, WatchError::Admin { .. }), "{err:?}");
    assert!(err.to_string().contains("ShopifyAdminTokenSecret"), "{err}");
}
