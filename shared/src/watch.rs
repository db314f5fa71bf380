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
//! [`emit`] turns the [`WatchReport`] into the metrics the stack's alarms watch. [`watch_stores`]
//! runs the same checks on every registered, enabled store with its own Admin credentials and
//! rules. The Lambda in `functions/watch` only reads the configuration, calls these and logs. This
//! module does not subscribe or backfill anything: the alarms name the `pinrelay` commands that do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, stream};

use crate::config::{self, InvalidVar};
use crate::idempotency::{IdempotencyStore, Pause, StoreError};
use crate::mapping::Options;
use crate::metrics::{Metrics, Unit, names};
use crate::reconcile::{
    Orders, ReconcileError, Report, Settings, Status, Window, WindowError, fetch_orders,
};
use crate::registry::{Registry, RegistryError, Shop};
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
    /// The store's pause, when dispatch paused it within the lookback (its token refused, or
    /// rate-limited): its events wait.
    pub paused: Option<Pause>,
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
    /// A registered store could not be read from the registry.
    #[error("the watch cannot read the store from the shop registry: {0}")]
    Registry(#[from] RegistryError),
    /// A registered store's setting does not parse.
    #[error("the store's settings are invalid: {0}. Fix it with pinrelay shops update")]
    Settings(#[from] InvalidVar),
}

/// How many registered stores are watched at once.
pub const STORE_CONCURRENCY: usize = 4;

/// How the watch of one registered store ended.
#[derive(Debug)]
pub enum StoreWatch {
    /// Watched: what it found.
    Watched(Box<WatchReport>),
    /// Not watched: its secrets hold no Admin credentials (a token, or a client id and secret).
    NoCredentials,
    /// Its watch failed; the other stores are watched all the same.
    Failed(WatchError),
}

/// The command that gives a registered store Admin credentials, for a stack whose
/// `SHOP_SECRETS_PREFIX` is `prefix` (`{stack}/shops/`).
pub fn credentials_fix(domain: &str, prefix: &str) -> String {
    let stack = prefix.trim_end_matches('/').trim_end_matches("/shops");
    format!("pinrelay shops update {domain} --secrets --stack {stack}")
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
        paused: None,
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
    let mut summary = summarize(subscriptions_missing, report);
    summary.paused = store.pause(&config.shop).await?.filter(|p| {
        now.signed_duration_since(p.last_at)
            .to_std()
            .unwrap_or_default()
            <= config.lookback
    });
    Ok(summary)
}

/// What to watch for a registered store: `base` with its domain, its rules (its settings over the
/// relay's variables, read through `fallback`) and, when `base` watches the topics of the relay's
/// `CHECKOUT_ON`, the topics of its own.
///
/// # Errors
/// [`InvalidVar`] naming the store's setting that does not parse.
pub fn store_config(
    base: &WatchConfig,
    shop: &Shop,
    fallback: &dyn Fn(&'static str) -> Option<String>,
) -> Result<WatchConfig, InvalidVar> {
    let rules = shop.options(fallback)?;
    let derived = |on| {
        crate::mapping::webhook_topics(on)
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<Vec<_>>()
    };
    let mut wanted = base.topics.clone();
    wanted.sort();
    let mut relays = derived(base.rules.checkout_on);
    relays.sort();
    let topics = if wanted == relays {
        derived(rules.checkout_on)
    } else {
        base.topics.clone()
    };
    Ok(WatchConfig {
        shop: shop.entry.domain.clone(),
        topics,
        rules,
        ..base.clone()
    })
}

/// Watches every registered, enabled store but `base.shop` (the default shop, watched by
/// [`watch`] with the relay's credentials), [`STORE_CONCURRENCY`] at a time, each with the Admin
/// API `admin_for` builds from its credentials (`None`: it has none) and its
/// [`store_config`] over the relay's variables. One store's failure never stops the others.
///
/// # Errors
/// [`RegistryError`] when the registry cannot be listed.
pub async fn watch_stores<R, S, F>(
    registry: &R,
    records: &S,
    base: &WatchConfig,
    admin_for: F,
    now: DateTime<Utc>,
) -> Result<Vec<(String, StoreWatch)>, RegistryError>
where
    R: Registry,
    S: IdempotencyStore,
    F: Fn(&Shop) -> Option<Result<AdminApi, AdminError>>,
{
    let default = base.shop.to_ascii_lowercase();
    let domains: Vec<String> = registry
        .list()
        .await?
        .into_iter()
        .filter(|e| e.enabled && e.domain.to_ascii_lowercase() != default)
        .map(|e| e.domain)
        .collect();
    let admin_for = &admin_for;
    let watched = stream::iter(domains)
        .map(|domain| async move {
            let outcome = watch_store(registry, records, base, admin_for, &domain, now).await;
            outcome.map(|o| (domain, o))
        })
        .buffered(STORE_CONCURRENCY)
        .filter_map(|o| async move { o })
        .collect()
        .await;
    Ok(watched)
}

/// One store of [`watch_stores`]; `None` when it was removed or disabled since the listing.
async fn watch_store<R, S, F>(
    registry: &R,
    records: &S,
    base: &WatchConfig,
    admin_for: &F,
    domain: &str,
    now: DateTime<Utc>,
) -> Option<StoreWatch>
where
    R: Registry,
    S: IdempotencyStore,
    F: Fn(&Shop) -> Option<Result<AdminApi, AdminError>>,
{
    let shop = match registry.get(domain).await {
        Ok(Some(shop)) if shop.entry.enabled => shop,
        Ok(_) => return None,
        Err(e) => return Some(StoreWatch::Failed(e.into())),
    };
    let config = match store_config(base, &shop, &|k| config::var(k)) {
        Ok(config) => config,
        Err(e) => return Some(StoreWatch::Failed(e.into())),
    };
    let admin = match admin_for(&shop) {
        None => return Some(StoreWatch::NoCredentials),
        Some(Err(source)) => {
            return Some(StoreWatch::Failed(WatchError::Admin {
                step: "built the Admin API client",
                source,
            }));
        }
        Some(Ok(admin)) => admin,
    };
    Some(match watch(&admin, records, &config, now).await {
        Ok(report) => StoreWatch::Watched(Box::new(report)),
        Err(e) => StoreWatch::Failed(e),
    })
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
        (
            names::STORES_PAUSED,
            f64::from(u8::from(r.paused.is_some())),
            Unit::Count,
        ),
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

    fn store(settings: &[(&str, &str)]) -> Shop {
        Shop {
            entry: crate::registry::ShopEntry {
                domain: "beta.myshopify.com".into(),
                shop_id: None,
                ad_account_id: "222".into(),
                settings: settings
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                enabled: true,
                updated_at: at("2026-12-01T00:00:00Z"),
            },
            secrets: crate::registry::ShopSecrets::default(),
        }
    }

    #[test]
    fn a_store_is_watched_under_its_domain_with_its_own_rules_and_topics() {
        let base = WatchConfig::new("acme.myshopify.com", URL);
        let paid = store(&[("CHECKOUT_ON", "paid"), ("INCLUDE_TEST_ORDERS", "true")]);
        let c = store_config(&base, &paid, &|_| None).unwrap();
        assert_eq!(c.shop, "beta.myshopify.com");
        assert_eq!(c.webhook_url, URL);
        assert_eq!(
            c.topics,
            topics(),
            "its CHECKOUT_ON=paid watches orders/paid"
        );
        assert!(c.rules.include_test_orders);
        assert_eq!(c.lookback, base.lookback);

        // WATCH_TOPICS chosen by hand apply to every store; the relay's variables are the fallback.
        let mut custom = base.clone();
        custom.topics = vec!["orders/create".into()];
        let plain = store(&[]);
        let c = store_config(&custom, &plain, &|k| {
            (k == "INCLUDE_TEST_ORDERS").then(|| "true".to_owned())
        })
        .unwrap();
        assert_eq!(c.topics, ["orders/create"]);
        assert!(c.rules.include_test_orders);
        assert!(store_config(&base, &store(&[("CHECKOUT_ON", "never")]), &|_| None).is_err());
    }

    #[test]
    fn the_credentials_fix_names_the_store_and_the_stack() {
        assert_eq!(
            credentials_fix("beta.myshopify.com", "pinrelay-prod/shops/"),
            "pinrelay shops update beta.myshopify.com --secrets --stack pinrelay-prod"
        );
    }
}
