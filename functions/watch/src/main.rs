//! The watch Lambda: invoked hourly by EventBridge Scheduler (the event's payload is ignored), it
//! runs [`pinrelay::watch::watch`]: the store's webhook subscriptions still deliver to the relay,
//! and every order of the last hours reached it.
//!
//! It writes the watch's metrics as EMF (`WebhookSubscriptionsMissing`, `OrdersMissing`,
//! `OrdersChecked`, `ReconcileAccuracy`), one log line per missing topic and per missing order
//! (order id and name only, never personal data) and one summary line. A failure of the Admin API
//! or the records fail the invocation, after a log line saying what to do, so `WatchErrorsAlarm`
//! fires. It changes nothing in Shopify or the relay: the alarms name the `pinrelay` commands that
//! do.
//!
//! Environment: read by [`config::watch_settings`], plus the Admin API credentials:
//! `SHOPIFY_ADMIN_TOKEN`, or `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`, or
//! `SHOPIFY_ADMIN_TOKEN_SECRET_ARN` (a token or a Dev Dashboard app's client id and secret; see
//! [`pinrelay::secrets::shopify_admin_credentials`]). Client-credentials tokens are minted on the
//! first run and renewed by the client before they expire, for as long as the instance lives.

use anyhow::Context as _;
use chrono::Utc;
use lambda_runtime::{LambdaEvent, service_fn};
use pinrelay::aws::{self, Budget};
use pinrelay::config;
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::metrics::{self, Metrics};
use pinrelay::shopify::admin::AdminApi;
use pinrelay::telemetry::{self, Output};
use pinrelay::watch::{self, WatchConfig, WatchReport};
use serde_json::{Value, json};

/// What one invocation needs, built once per cold start.
struct Service {
    admin: AdminApi,
    records: DynamoDbIdempotencyStore,
    config: WatchConfig,
    metrics: Metrics,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(Output::Stdout);
    let settings = config::watch_settings().context("watch configuration")?;

    let sdk = aws::load(Budget::DISPATCH).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws::with_budget(&sdk, Budget::STARTUP));
    let credentials = pinrelay::secrets::shopify_admin_credentials(&secrets)
        .await
        .context("Shopify Admin API credentials")?;
    let admin = AdminApi::new(
        &settings.watch.shop,
        credentials,
        &settings.api_version,
        settings.admin_api_url.as_deref(),
    )
    .context("Shopify Admin API client")?
    .with_retry_policy(pinrelay::shopify::admin::RetryPolicy::WATCH);
    let service = Service {
        admin,
        records: DynamoDbIdempotencyStore::new(Table::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            settings.table,
        )),
        config: settings.watch,
        metrics: Metrics::emf(&metrics::function_dimension(
            config::var(metrics::LAMBDA_FUNCTION_NAME_VAR),
            "watch",
        )),
    };

    lambda_runtime::run(service_fn(|event| handle(&service, event))).await
}

async fn handle(
    service: &Service,
    _event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let report = match watch::watch(
        &service.admin,
        &service.records,
        &service.config,
        Utc::now(),
    )
    .await
    {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(
                error.message = %e,
                error.cause_chain = ?e,
                shop = %service.config.shop,
                "watch failed"
            );
            return Err(e.into());
        }
    };
    watch::emit(&service.metrics, &report);
    log(&service.config, &report);
    Ok(summary(&report))
}

/// One line per missing topic and order, then the summary line.
fn log(config: &WatchConfig, r: &WatchReport) {
    for topic in &r.subscriptions_missing {
        tracing::warn!(
            outcome = "subscription_missing",
            topic = %topic,
            webhook_url = %config.webhook_url,
            "no webhook subscription of this topic delivers to the relay: run pinrelay subscribe"
        );
    }
    for (id, name) in &r.missing {
        tracing::warn!(
            outcome = "order_missing",
            order_id = id,
            order_name = %name,
            "the relay has no trace of this order: run pinrelay reconcile --backfill"
        );
    }
    tracing::info!(
        outcome = "watched",
        shop = %config.shop,
        subscriptions_missing = r.subscriptions_missing.len(),
        orders_checked = r.orders_checked,
        orders_missing = r.missing.len(),
        recoverable_missing = r.recoverable_missing,
        accuracy = r.accuracy.map(|a| 100.0 * a),
        "watch done"
    );
}

/// The invocation's answer: the counts (Scheduler ignores it; a manual `aws lambda invoke` reads it).
fn summary(r: &WatchReport) -> Value {
    json!({
        "subscriptions_missing": r.subscriptions_missing,
        "orders_checked": r.orders_checked,
        "orders_missing": r.missing.len(),
        "recoverable_missing": r.recoverable_missing,
        "accuracy_percent": r.accuracy.map(|a| 100.0 * a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinrelay::reconcile::{Report, Settings, Window};

    #[test]
    fn the_answer_carries_counts_and_topics_only() {
        let tz = Window::time_zone("UTC").unwrap();
        let day = "2026-12-01".parse().unwrap();
        let report = Report::build(
            "acme.myshopify.com",
            &Window::dates(day, day, tz).unwrap(),
            &[],
            &[],
            "2026-12-01T12:00:00Z".parse().unwrap(),
            &Settings::default(),
        );
        let mut r = watch::summarize(vec!["orders/paid".into()], report);
        r.missing = vec![(1001, "#1001".into())];
        assert_eq!(
            summary(&r),
            json!({
                "subscriptions_missing": ["orders/paid"],
                "orders_checked": 0,
                "orders_missing": 1,
                "recoverable_missing": 0,
                "accuracy_percent": null,
            })
        );
    }
}
