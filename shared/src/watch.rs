//! The scheduled watch: once an hour the stack asks Shopify whether the relay still gets the store's
//! webhooks and whether every recent order reached it, and says what to do when not.
//!
//! Shopify deletes a webhook subscription after 8 failed deliveries over 4 hours; from then on
//! every order is silently missing. [`watch`] checks two things over the ports the relay already
//! has ([`AdminApi`], [`IdempotencyStore`]), with no AWS specifics:
//!
//! 1. **subscriptions**: each watched topic has a subscription whose `uri` is the relay's webhook
//!    URL ([`missing_topics`], pure);
//! 2. **orders**: the orders created in `[now - lookback, now - grace)` beside their records,
//!    through [`Report::build`]; an order without a trace is missing ([`summarize`], pure).
//!
//! [`emit`] turns the [`WatchReport`] into the metrics the stack's alarms watch. The Lambda in
//! `functions/watch` only reads the configuration, calls these and logs. This module does not
//! subscribe or backfill anything: the alarms name the `pinrelay` commands that do.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::idempotency::{IdempotencyStore, StoreError};
use crate::mapping::Options;
use crate::metrics::{Metrics, Unit, names};
use crate::reconcile::{
    Orders, ReconcileError, Report, Settings, Status, Window, WindowError, fetch_orders,
};
use crate::shopify::admin::{AdminApi, AdminError, WebhookSubscription, topic_enum};

/// The topics watched by default: the ones `pinrelay subscribe` creates under the default
/// `CHECKOUT_ON` ([`crate::mapping::webhook_topics`]).
pub const DEFAULT_TOPICS: &[&str] =
    crate::mapping::webhook_topics(crate::mapping::CheckoutOn::Created);

/// The default lookback: orders of the last 6 hours, so an order missed by one run (Shopify still
/// retrying, a run that failed) is seen by the next five.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(6 * 3600);

/// What to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// The shop (`name.myshopify.com`) whose Admin API is asked.
    pub shop: String,
    /// The relay's webhook URL (the stack's `WebhookUrl`): a subscription elsewhere does not count.
    pub webhook_url: String,
    /// Topics that must each have a subscription to [`WatchConfig::webhook_url`].
    pub topics: Vec<String>,
    /// How far back orders are checked; a longer one sees a missed order in more runs.
    pub lookback: Duration,
    /// The grace period (an order younger than it may still be on its way) and Pinterest's age
    /// limit (what is still recoverable).
    pub settings: Settings,
    /// The relay's conversion rules and `VALUE_SOURCE`: a never-seen order they would skip is not
    /// missing.
    pub rules: Options,
}

impl WatchConfig {
    /// The default topics, lookback and settings for this shop and webhook URL.
    pub fn new(shop: impl Into<String>, webhook_url: impl Into<String>) -> Self {
        Self {
            shop: shop.into(),
            webhook_url: webhook_url.into(),
            topics: DEFAULT_TOPICS.iter().map(|t| (*t).to_owned()).collect(),
            lookback: DEFAULT_LOOKBACK,
            settings: Settings::default(),
            rules: Options::default(),
        }
    }
}

/// What one run found.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchReport {
    /// Watched topics without a subscription to the relay, as configured (`orders/paid`).
    pub subscriptions_missing: Vec<String>,
    /// Orders of the lookback, the grace period excluded.
    pub orders_checked: u64,
    /// Orders the relay has no trace of: (order id, order name). Ids and names only, never PII.
    pub missing: Vec<(u64, String)>,
    /// Of those, still inside Pinterest's 7 days (`pinrelay reconcile --backfill` sends them).
    pub recoverable_missing: u64,
    /// (sent + skipped by rule) / orders checked, from 0 to 1; `None` without orders.
    pub accuracy: Option<f64>,
    /// The reconcile report behind these numbers.
    pub report: Report,
}

/// Why a run could not finish; the function fails the invocation, so its errors alarm fires.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The Admin API refused or failed a call.
    #[error(
        "the Shopify Admin API failed while the watch {step}: {source}. {}",
        admin_hint(source)
    )]
    Admin {
        /// What the watch was doing (`listed the webhook subscriptions`).
        step: &'static str,
        /// Shopify's answer.
        #[source]
        source: AdminError,
    },
    /// The relay's records could not be read.
    #[error(
        "the watch cannot read the relay's records: {0}. Check that the function's role may call dynamodb:BatchGetItem on IDEMPOTENCY_TABLE"
    )]
    Records(#[from] StoreError),
    /// The shop's time zone is not one the watch knows.
    #[error("the watch cannot lay out the shop's days: {0}")]
    Window(#[from] WindowError),
}

/// What to do about an Admin API failure, beyond Shopify's own message.
fn admin_hint(e: &AdminError) -> &'static str {
    match e {
        AdminError::InvalidToken | AdminError::MissingScope => {
            "Put an Admin API access token of the app, with read_orders, in the stack's ShopifyAdminTokenSecret (or the Dev Dashboard app's {\"client_id\": ..., \"client_secret\": ...}); the next run checks again"
        }
        AdminError::InvalidClient { .. }
        | AdminError::ShopNotPermitted
        | AdminError::GrantRefused { .. } => {
            "Put the Dev Dashboard app's current {\"client_id\": ..., \"client_secret\": ...} in the stack's ShopifyAdminTokenSecret, or an Admin API access token; the next run checks again"
        }
        AdminError::InvalidShop(_) | AdminError::NotFound { .. } => {
            "Check the stack's ShopDomains (its first shop is the one watched)"
        }
        _ => "The next run tries again; if every run fails, see WatchErrorsAlarm in the README",
    }
}

/// The watched topics that have no subscription delivering to `webhook_url`. Topics compare as
/// GraphQL enums (`orders/create` = `ORDERS_CREATE`), URLs ignoring one trailing slash.
pub fn missing_topics(
    subscriptions: &[WebhookSubscription],
    topics: &[String],
    webhook_url: &str,
) -> Vec<String> {
    let url = webhook_url.trim_end_matches('/');
    topics
        .iter()
        .filter(|topic| {
            let wanted = topic_enum(topic);
            !subscriptions.iter().any(|s| {
                topic_enum(&s.topic) == wanted
                    && s.uri
                        .as_deref()
                        .is_some_and(|u| u.trim_end_matches('/') == url)
            })
        })
        .cloned()
        .collect()
}

/// The run's findings from the missing topics and the reconcile report.
pub fn summarize(subscriptions_missing: Vec<String>, report: Report) -> WatchReport {
    let missing: Vec<(u64, String)> = report
        .orders
        .iter()
        .filter(|o| matches!(o.status, Status::Missing { .. }))
        .map(|o| (o.id, o.name.clone()))
        .collect();
    WatchReport {
        subscriptions_missing,
        orders_checked: report.totals.orders,
        recoverable_missing: report.totals.recoverable,
        accuracy: report.totals.accuracy,
        missing,
        report,
    }
}

/// The orders' period: `[now - lookback, now - grace)`, empty when the lookback is within the grace.
pub fn period(
    now: DateTime<Utc>,
    lookback: Duration,
    grace: Duration,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let back = |d: Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let to = back(grace);
    (back(lookback).min(to), to)
}

/// Checks the subscriptions, then the orders of the lookback against their records.
///
/// # Errors
/// [`WatchError::Admin`] when a Shopify call fails (after the client's own retries),
/// [`WatchError::Records`] when the records cannot be read, [`WatchError::Window`] for a time zone
/// the watch cannot use.
pub async fn watch<S: IdempotencyStore>(
    admin: &AdminApi,
    store: &S,
    config: &WatchConfig,
    now: DateTime<Utc>,
) -> Result<WatchReport, WatchError> {
    let admin_step = |step| move |source| WatchError::Admin { step, source };
    let subscriptions = admin
        .webhook_subscriptions()
        .await
        .map_err(admin_step("listed the webhook subscriptions"))?;
    let subscriptions_missing = missing_topics(&subscriptions, &config.topics, &config.webhook_url);

    let info = admin
        .shop()
        .await
        .map_err(admin_step("read the shop's settings"))?;
    let tz = Window::time_zone(&info.iana_timezone)?;
    let (from, to) = period(now, config.lookback, config.settings.grace);
    let day = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    let window = Window::dates(day(from), day(now), tz)?;
    let orders = Orders {
        from,
        to,
        rules: config.rules.clone(),
        settings: config.settings,
    };
    let report = fetch_orders(
        admin,
        store,
        &info.myshopify_domain,
        &window,
        &orders,
        now,
        &mut |_| {},
    )
    .await
    .map_err(|e| match e {
        ReconcileError::Admin(source) => admin_step("listed the recent orders")(source),
        ReconcileError::Records(e) => WatchError::Records(e),
        ReconcileError::Window(e) => WatchError::Window(e),
    })?;
    Ok(summarize(subscriptions_missing, report))
}

/// Records the run's metrics, zeros included (a zero is a reading, not an absence):
/// `WebhookSubscriptionsMissing`, `OrdersMissing`, `OrdersChecked`, and `ReconcileAccuracy` in
/// percent when orders were checked.
pub fn emit(metrics: &Metrics, r: &WatchReport) {
    let mut values = vec![
        (
            names::WEBHOOK_SUBSCRIPTIONS_MISSING,
            r.subscriptions_missing.len() as f64,
            Unit::Count,
        ),
        (names::ORDERS_MISSING, r.missing.len() as f64, Unit::Count),
        (names::ORDERS_CHECKED, r.orders_checked as f64, Unit::Count),
    ];
    if r.orders_checked > 0
        && let Some(accuracy) = r.accuracy
    {
        values.push((names::RECONCILE_ACCURACY, 100.0 * accuracy, Unit::Percent));
    }
    metrics.gauges(&values);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::{IdempotencyKey, IdempotencyRecord, SentFacts, Settled};
    use crate::reconcile::ShopOrder;

    const URL: &str = "https://abc.lambda-url.us-east-1.on.aws/webhooks/shopify";

    fn subscription(topic: &str, uri: &str) -> WebhookSubscription {
        WebhookSubscription {
            id: format!("gid://shopify/WebhookSubscription/{topic}"),
            topic: topic.into(),
            uri: Some(uri.into()),
        }
    }

    /// The topics under `CHECKOUT_ON=paid`, `orders/paid` included.
    fn topics() -> Vec<String> {
        crate::mapping::webhook_topics(crate::mapping::CheckoutOn::Paid)
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn order(id: u64, created_at: &str) -> ShopOrder {
        ShopOrder {
            id,
            name: format!("#{id}"),
            created_at: at(created_at),
            value: "10.00".into(),
            currency: "USD".into(),
            not_a_conversion: None,
            undone: false,
        }
    }

    fn sent(id: u64) -> IdempotencyRecord {
        let when = at("2026-12-01T09:00:00Z");
        IdempotencyRecord::settled(
            IdempotencyKey::order("acme.myshopify.com", id).unwrap(),
            Some(id.to_string()),
            Settled::Sent(SentFacts {
                at: Some(when),
                value: Some("10.00".into()),
                currency: Some("USD".into()),
                ..SentFacts::default()
            }),
            when,
        )
    }

    fn report(orders: &[ShopOrder], entries: &[IdempotencyRecord]) -> Report {
        let now = at("2026-12-01T12:00:00Z");
        let tz = Window::time_zone("America/New_York").unwrap();
        let window = Window::dates(
            "2026-12-01".parse().unwrap(),
            "2026-12-01".parse().unwrap(),
            tz,
        )
        .unwrap();
        Report::build(
            "acme.myshopify.com",
            &window,
            orders,
            entries,
            now,
            &Settings::default(),
        )
    }

    #[test]
    fn every_topic_subscribed_to_the_relay_leaves_none_missing() {
        let subs = [
            subscription("ORDERS_CREATE", URL),
            subscription("ORDERS_PAID", &format!("{URL}/")),
            subscription("CUSTOMERS_CREATE", URL),
        ];
        assert!(missing_topics(&subs, &topics(), URL).is_empty());
        assert!(missing_topics(&subs, &topics(), &format!("{URL}/")).is_empty());
    }

    #[test]
    fn a_deleted_subscription_names_its_topic() {
        let subs = [
            subscription("ORDERS_CREATE", URL),
            subscription("CUSTOMERS_CREATE", URL),
        ];
        assert_eq!(missing_topics(&subs, &topics(), URL), ["orders/paid"]);
    }

    #[test]
    fn a_subscription_to_another_address_does_not_count() {
        let subs = [
            subscription("ORDERS_CREATE", "https://old.example/webhooks/shopify"),
            subscription("ORDERS_PAID", URL),
            WebhookSubscription {
                id: "x".into(),
                topic: "CUSTOMERS_CREATE".into(),
                uri: None,
            },
        ];
        assert_eq!(
            missing_topics(&subs, &topics(), URL),
            ["orders/create", "customers/create"]
        );
    }

    #[test]
    fn orders_without_a_trace_are_missing_with_their_id_and_name() {
        let orders = [
            order(1, "2026-12-01T08:00:00Z"),
            order(2, "2026-12-01T09:00:00Z"),
        ];
        let r = summarize(vec![], report(&orders, &[sent(1)]));
        assert_eq!(r.orders_checked, 2);
        assert_eq!(r.missing, [(2, "#2".to_owned())]);
        assert_eq!(r.recoverable_missing, 1);
        assert_eq!(r.accuracy, Some(0.5));
    }

    #[test]
    fn the_period_ends_a_grace_before_now_and_never_starts_after_it_ends() {
        let now = at("2026-12-01T12:00:00Z");
        let (from, to) = period(now, DEFAULT_LOOKBACK, Duration::from_secs(900));
        assert_eq!(from, at("2026-12-01T06:00:00Z"));
        assert_eq!(to, at("2026-12-01T11:45:00Z"));
        let (from, to) = period(now, Duration::from_secs(60), Duration::from_secs(900));
        assert_eq!(from, to);
    }

    #[test]
    fn emit_records_zeros_and_the_accuracy_in_percent() {
        let metrics = Metrics::in_memory("watch");
        let orders = [order(1, "2026-12-01T08:00:00Z")];
        emit(
            &metrics,
            &summarize(vec!["orders/paid".into()], report(&orders, &[sent(1)])),
        );
        let s = metrics.snapshot();
        assert_eq!(s["WebhookSubscriptionsMissing"], 1.0);
        assert_eq!(s["OrdersMissing"], 0.0);
        assert_eq!(s["OrdersChecked"], 1.0);
        assert_eq!(s["ReconcileAccuracy"], 100.0);
    }

    #[test]
    fn emit_leaves_the_accuracy_out_without_orders() {
        let metrics = Metrics::in_memory("watch");
        emit(&metrics, &summarize(vec![], report(&[], &[])));
        let s = metrics.snapshot();
        assert_eq!(s["OrdersChecked"], 0.0);
        assert!(!s.contains_key("ReconcileAccuracy"));
    }
}
