//! The watch ([`pinrelay::watch::watch`]) against the fake Shopify Admin API and the relay's
//! records in DynamoDB (moto), then [`pinrelay::watch::emit`] into in-memory metrics:
//!
//! - every subscription present and every recent order with a record: nothing missing, accuracy
//!   100 %; orders older than the lookback or younger than the grace period are not checked;
//! - a deleted subscription: `WebhookSubscriptionsMissing` 1, naming its topic;
//! - an order without a record: `OrdersMissing` 1, with its id and name;
//! - a refused token: an Admin error that names the secret to fix;
//! - the registered stores ([`pinrelay::watch::watch_stores`], registry on moto, one fake Shopify
//!   per store): each with its own token, its missing orders under its shop; a store without Admin
//!   credentials skipped; one store's refused token does not stop the others.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::idempotency::{
    IdempotencyKey, IdempotencyStore as _, PauseReason, SentFacts, Settled, contract,
};
use pinrelay::metrics::Metrics;
use pinrelay::registry::Registry;
use pinrelay::shopify::admin::AdminApi;
use pinrelay::watch::{self, StoreWatch, WatchConfig, WatchError, WatchReport};
use secrecy::SecretString;

use crate::fake_shopify::{ADMIN_TOKEN, FakeOrder, FakeShopify, SHOP_DOMAIN};
use crate::helpers::TestEnv;

const WEBHOOK_URL: &str = "https://abc123.lambda-url.us-east-1.on.aws/webhooks/shopify";

fn ago(now: DateTime<Utc>, minutes: i64) -> String {
    (now - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn record_sent(store: &DynamoDbIdempotencyStore, id: u64, now: DateTime<Utc>) {
    record_sent_for(store, SHOP_DOMAIN, id, now).await;
}

async fn record_sent_for(
    store: &DynamoDbIdempotencyStore,
    shop: &str,
    id: u64,
    now: DateTime<Utc>,
) {
    let at = now - Duration::minutes(30);
    let facts = SentFacts {
        at: Some(at),
        value: Some("10.00".into()),
        currency: Some("USD".into()),
        ..SentFacts::default()
    };
    let key = IdempotencyKey::order(shop, id).unwrap();
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

/// A fake Shopify playing `domain`, accepting `token`, with the default topics subscribed but
/// `unsubscribed`.
async fn store_fake(domain: &str, token: &str, unsubscribed: &[&str]) -> FakeShopify {
    let fake = FakeShopify::start().await;
    fake.set_shop_domain(domain);
    fake.set_admin_token(token);
    for topic in ["ORDERS_CREATE", "CUSTOMERS_CREATE"] {
        if !unsubscribed.contains(&topic) {
            fake.add_subscription(topic, WEBHOOK_URL);
        }
    }
    fake
}

/// A registered store, with its own Admin token when given.
fn registered(domain: &str, token: Option<&str>, enabled: bool) -> pinrelay::registry::Shop {
    let mut shop = crate::registry::shop(domain, "222", "webhook-secret", "conversion-token");
    shop.secrets.shopify_admin_token = token.map(str::to_owned);
    shop.entry.enabled = enabled;
    shop
}

fn report_of<'a>(outcomes: &'a [(String, StoreWatch)], shop: &str) -> &'a WatchReport {
    match outcomes.iter().find(|(s, _)| s == shop) {
        Some((_, StoreWatch::Watched(r))) => r,
        other => panic!("{shop}: {other:?}"),
    }
}

#[tokio::test]
async fn the_watch_checks_each_registered_store_with_its_own_credentials() {
    let env = TestEnv::start().await;
    let ledger = DynamoDbIdempotencyStore::new(Table::new(env.dynamodb.clone(), &env.table));
    let registry = crate::registry::registry(&env, "pinrelay-test/shops/");
    let now = Utc::now();
    const ALPHA: &str = "alpha.myshopify.com";
    const BETA: &str = "beta.myshopify.com";

    // Two stores with their own tokens on their own fakes: alpha's 2002 and beta's 3001 never
    // reached the relay, beta lost its orders/create subscription.
    let alpha = store_fake(ALPHA, "shpat_alpha", &[]).await;
    alpha.add_orders([
        FakeOrder::new(2001, &ago(now, 90)),
        FakeOrder::new(2002, &ago(now, 60)),
    ]);
    record_sent_for(&ledger, ALPHA, 2001, now).await;
    let beta = store_fake(BETA, "shpat_beta", &["ORDERS_CREATE"]).await;
    beta.add_orders([FakeOrder::new(3001, &ago(now, 45))]);
    // Alpha's order 3001 is not beta's: records are per shop.
    record_sent_for(&ledger, ALPHA, 3001, now).await;
    // Dispatch paused beta half an hour ago (its token refused); alpha's pause is older than the
    // lookback, so it is over.
    ledger
        .mark_paused(BETA, PauseReason::TokenRefused, now - Duration::minutes(30))
        .await
        .unwrap();
    ledger
        .mark_paused(ALPHA, PauseReason::RateLimited, now - Duration::hours(30))
        .await
        .unwrap();
    for shop in [
        registered(ALPHA, Some("shpat_alpha"), true),
        registered(BETA, Some("shpat_beta"), true),
        registered("gamma.myshopify.com", None, true),
        registered("paused.myshopify.com", Some("shpat_alpha"), false),
        // The default shop is watched with the stack's credentials, not twice.
        registered(SHOP_DOMAIN, Some(ADMIN_TOKEN), true),
    ] {
        registry.register(&shop).await.unwrap();
    }
    let urls = [(ALPHA, alpha.base_url()), (BETA, beta.base_url())];
    let admin_for = |shop: &pinrelay::registry::Shop| {
        let credentials = shop.secrets.admin_credentials()?;
        let url = urls
            .iter()
            .find(|(d, _)| *d == shop.entry.domain)
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| "http://127.0.0.1:9".to_owned());
        Some(AdminApi::new(
            &shop.entry.domain,
            credentials,
            "2026-07",
            Some(&url),
        ))
    };
    let base = WatchConfig::new(SHOP_DOMAIN, WEBHOOK_URL);

    let outcomes = watch::watch_stores(&registry, &ledger, &base, &admin_for, now)
        .await
        .unwrap();
    let shops: Vec<&str> = outcomes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(shops, [ALPHA, BETA, "gamma.myshopify.com"]);
    let a = report_of(&outcomes, ALPHA);
    assert!(a.subscriptions_missing.is_empty(), "{a:?}");
    assert_eq!(a.orders_checked, 2);
    assert_eq!(a.missing, [(2002, "#2002".to_owned())]);
    let b = report_of(&outcomes, BETA);
    assert_eq!(b.subscriptions_missing, ["orders/create"]);
    assert_eq!(b.missing, [(3001, "#3001".to_owned())]);
    assert!(matches!(outcomes[2].1, StoreWatch::NoCredentials));
    assert_eq!(a.paused, None);
    let pause = b.paused.as_ref().unwrap();
    assert_eq!(pause.reason, PauseReason::TokenRefused);
    // The function emits each store's metrics under the same names: they add up.
    let metrics = Metrics::in_memory("watch");
    watch::emit(&metrics, a);
    watch::emit(&metrics, b);
    assert_eq!(metrics.snapshot()["OrdersMissing"], 2.0);
    assert_eq!(metrics.snapshot()["StoresPaused"], 1.0);

    // Alpha's token is refused: alpha fails, beta is watched all the same.
    alpha.refuse_token();
    let outcomes = watch::watch_stores(&registry, &ledger, &base, &admin_for, now)
        .await
        .unwrap();
    match &outcomes[0] {
        (shop, StoreWatch::Failed(WatchError::Admin { .. })) if shop == ALPHA => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        report_of(&outcomes, BETA).missing,
        [(3001, "#3001".to_owned())]
    );
    assert!(matches!(outcomes[2].1, StoreWatch::NoCredentials));
    assert!(
        beta.requests()
            .iter()
            .all(|r| r.token.as_deref() == Some("shpat_beta"))
    );
}
