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
//! With `SHOP_SECRETS_PREFIX` (a stack with a shop registry) it then watches every registered,
//! enabled store with its own Admin credentials and rules ([`pinrelay::watch::watch_stores`]): the
//! same metrics once per store (no shop dimension: a dimension per store would cost $0.30 per
//! metric a month each), one summary line per store and the missing topics and orders, each with
//! its `shop`. A store without Admin credentials is skipped with a warning naming the command that
//! adds them; a store whose watch fails fails the invocation only after the others were watched.
//!
//! With a registry it also renews the stores' Pinterest sign-ins (`pinrelay pinterest login
//! --stack`) that are due, each under its lease in the table
//! ([`pinrelay::pinterest::oauth::refresh_due`]): the only writer of their secrets besides
//! `login`. A sign-in that cannot be renewed (expired, revoked) fails the invocation after the
//! others, with a line naming `pinrelay pinterest login`, so `WatchErrorsAlarm` fires.
//! `PINTEREST_API_URL` (default Pinterest's) is where the token endpoint is.
//!
//! Invoked with `{"job": "audiences"}` (the stack's second schedule, every 15 minutes) it runs the
//! audience job instead ([`pinrelay::audiences::job`]): every store that keeps customer lists
//! (`AUDIENCE_LISTS`, the stack's or the registered store's own) is synced once its last sync is
//! `AUDIENCE_SYNC_HOURS` old, with its Pinterest sign-in (or registered `pinterest_api_token`),
//! its ad account and its Admin credentials, until 60 seconds before the invocation's deadline; a
//! sync cut off there resumes in the next run. It writes `AudienceSyncFailures` (stores whose sync
//! failed), alarmed by `AudienceSyncAlarm`, and one line per store and list. A store's failure does
//! not fail the invocation (the watch's `WatchErrorsAlarm` is about the watch).
//!
//! Environment: read by [`config::watch_settings`], plus the Admin API credentials:
//! `SHOPIFY_ADMIN_TOKEN`, or `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`, or
//! `SHOPIFY_ADMIN_TOKEN_SECRET_ARN` (a token or a Dev Dashboard app's client id and secret; see
//! [`pinrelay::secrets::shopify_admin_credentials`]). Client-credentials tokens are minted on the
//! first run and renewed by the client before they expire, for as long as the instance lives.

use anyhow::Context as _;
use chrono::Utc;
use lambda_runtime::{LambdaEvent, service_fn};
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::audiences::job::{self, DefaultStore, Endpoints, Fallback, JobSettings, Run};
use pinrelay::aws::{self, Budget};
use pinrelay::config;
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::metrics::{self, Metrics};
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::{self, OAuthClient};
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::{Registry as _, Shop};
use pinrelay::shopify::admin::{AdminApi, AdminCredentials, AdminError, RetryPolicy};
use pinrelay::telemetry::{self, Output};
use pinrelay::watch::{self, StoreWatch, WatchConfig, WatchError, WatchReport};
use serde_json::{Value, json};

/// What one invocation needs, built once per cold start.
struct Service {
    admin: AdminApi,
    records: DynamoDbIdempotencyStore,
    config: WatchConfig,
    metrics: Metrics,
    /// The registered stores (`SHOP_SECRETS_PREFIX`), when the stack has a registry.
    stores: Option<Stores>,
    /// What the audience job (`{"job": "audiences"}`) needs beside the above.
    audiences: Audiences,
}

/// The audience job's parts.
struct Audiences {
    ledger: DynamoDbAudienceStore,
    /// The default store's Admin credentials (the registered stores bring their own).
    admin_credentials: AdminCredentials,
    endpoints: Endpoints,
}

/// The shop registry and how a registered store's Admin API client is built.
struct Stores {
    registry: AwsRegistry,
    /// The stores' Pinterest sign-ins, and the token endpoint that renews them.
    grants: (AwsGrantStore, OAuthClient),
    /// `SHOP_SECRETS_PREFIX`: `{stack}/shops/`, for the fix a skipped store's line names.
    prefix: String,
    api_version: String,
    admin_api_url: Option<String>,
}

impl Stores {
    /// The Admin API of a registered store, from its own credentials; `None` without any.
    fn admin_for(&self, shop: &Shop) -> Option<Result<AdminApi, AdminError>> {
        let credentials = shop.secrets.admin_credentials()?;
        Some(
            AdminApi::new(
                &shop.entry.domain,
                credentials,
                &self.api_version,
                self.admin_api_url.as_deref(),
            )
            .map(|a| a.with_retry_policy(RetryPolicy::WATCH)),
        )
    }
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
        credentials.clone(),
        &settings.api_version,
        settings.admin_api_url.as_deref(),
    )
    .context("Shopify Admin API client")?
    .with_retry_policy(RetryPolicy::WATCH);
    let pinterest_api_url = config::var(config::keys::PINTEREST_API_URL)
        .unwrap_or_else(|| pinrelay::pinterest::http::DEFAULT_BASE_URL.to_owned());
    let token_endpoint = OAuthClient::new(&pinterest_api_url, std::time::Duration::from_secs(20))
        .context("Pinterest OAuth client")?;
    let stores = settings.registry.map(|r| Stores {
        registry: AwsRegistry::new(
            Table::new(aws_sdk_dynamodb::Client::new(&sdk), &r.table),
            aws_sdk_secretsmanager::Client::new(&sdk),
            &r.secrets_prefix,
        ),
        grants: (
            AwsGrantStore::new(
                Table::new(aws_sdk_dynamodb::Client::new(&sdk), &r.table),
                aws_sdk_secretsmanager::Client::new(&sdk),
                &r.secrets_prefix,
            ),
            token_endpoint,
        ),
        prefix: r.secrets_prefix,
        api_version: settings.api_version.clone(),
        admin_api_url: settings.admin_api_url.clone(),
    });
    let audiences = Audiences {
        ledger: DynamoDbAudienceStore::new(Table::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &settings.table,
        )),
        admin_credentials: credentials,
        endpoints: Endpoints {
            api_version: settings.api_version.clone(),
            admin_api_url: settings.admin_api_url.clone(),
            pinterest_api_url: pinterest_api_url.clone(),
        },
    };
    // Checked at start, so a bad value fails the deploy's first run rather than every tick.
    JobSettings::from_vars(&config::var, String::new()).context("audience job settings")?;
    let service = Service {
        admin,
        stores,
        audiences,
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
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    if event.payload.get("job").and_then(Value::as_str) == Some("audiences") {
        return Ok(run_audiences(service, &event.context).await);
    }
    let now = Utc::now();
    let default = watch::watch(&service.admin, &service.records, &service.config, now).await;
    let Some(stores) = &service.stores else {
        // A stack without a registry: the default shop alone, as before.
        let report = default.inspect_err(|e| failed(&service.config.shop, e, None))?;
        watched(service, &service.config.shop, &report);
        return Ok(summary(&report));
    };

    let mut failures = Vec::new();
    let mut answer = match &default {
        Ok(report) => {
            watched(service, &service.config.shop, report);
            summary(report)
        }
        Err(e) => {
            failed(&service.config.shop, e, None);
            failures.push(service.config.shop.clone());
            json!({"error": e.to_string()})
        }
    };
    let mut answers = serde_json::Map::new();
    match watch::watch_stores(
        &stores.registry,
        &service.records,
        &service.config,
        |shop| stores.admin_for(shop),
        now,
    )
    .await
    {
        Ok(outcomes) => {
            for (shop, outcome) in outcomes {
                let answer = match outcome {
                    StoreWatch::Watched(report) => {
                        watched(service, &shop, &report);
                        summary(&report)
                    }
                    StoreWatch::NoCredentials => {
                        let fix = watch::credentials_fix(&shop, &stores.prefix);
                        tracing::warn!(
                            outcome = "store_skipped",
                            shop = %shop,
                            fix = %fix,
                            "the registered store has no Admin credentials, so it is not watched: run {fix}"
                        );
                        json!({"skipped": "no Admin credentials"})
                    }
                    StoreWatch::Failed(e) => {
                        failed(&shop, &e, Some(&stores.prefix));
                        failures.push(shop.clone());
                        json!({"error": e.to_string()})
                    }
                };
                answers.insert(shop, answer);
            }
        }
        Err(e) => {
            tracing::error!(
                error.message = %e,
                "the watch cannot list the registered stores; only the default shop was watched"
            );
            failures.push("(shop registry)".to_owned());
        }
    }
    let sign_ins = renew_sign_ins(stores, &service.config.shop, now, &mut failures).await;
    if let Some(a) = answer.as_object_mut() {
        a.insert("stores".to_owned(), Value::Object(answers));
        a.insert("pinterest_sign_ins".to_owned(), sign_ins);
    }
    if failures.is_empty() {
        Ok(answer)
    } else {
        Err(anyhow::anyhow!("the watch failed for {}", failures.join(", ")).into())
    }
}

/// Time the audience job leaves before the invocation's deadline: a sync still going then is
/// dropped and its leases released.
const AUDIENCE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The audience job: every store that keeps lists and is due is synced until shortly before the
/// deadline. Never fails the invocation: failures are counted in `AudienceSyncFailures`.
async fn run_audiences(service: &Service, context: &lambda_runtime::Context) -> Value {
    let now = Utc::now();
    let left =
        chrono::DateTime::from_timestamp_millis(i64::try_from(context.deadline).unwrap_or(0))
            .map(|d| (d - now).to_std().unwrap_or_default())
            .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + left.saturating_sub(AUDIENCE_MARGIN);
    let settings = match JobSettings::from_vars(&config::var, context.request_id.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error.message = %e, "audience job settings");
            service.metrics.gauges(&[(
                metrics::names::AUDIENCE_SYNC_FAILURES,
                1.0,
                metrics::Unit::Count,
            )]);
            return json!({"error": e.to_string()});
        }
    };
    let a = &service.audiences;
    let default = DefaultStore {
        shop: service.config.shop.clone(),
        fallback: Fallback {
            ad_account_id: config::var(config::keys::PINTEREST_AD_ACCOUNT_ID),
            api_token: None,
            admin: Some(a.admin_credentials.clone()),
        },
    };
    let outcomes = match &service.stores {
        Some(stores) => {
            job::run_stores(
                &stores.registry,
                &stores.grants.0,
                &a.ledger,
                Some(default),
                &config::var,
                &a.endpoints,
                &settings,
                now,
                deadline,
            )
            .await
        }
        None => {
            // A stack always has a registry; without one no sign-in can be read either.
            Ok(Vec::new())
        }
    };
    let outcomes = match outcomes {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error.message = %e, outcome = "audiences_failed", "the audience job cannot list the stores");
            service.metrics.gauges(&[(
                metrics::names::AUDIENCE_SYNC_FAILURES,
                1.0,
                metrics::Unit::Count,
            )]);
            return json!({"error": e.to_string()});
        }
    };
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    service.metrics.gauges(&[(
        metrics::names::AUDIENCE_SYNC_FAILURES,
        failed as f64,
        metrics::Unit::Count,
    )]);
    let mut answer = serde_json::Map::new();
    for (shop, outcome) in &outcomes {
        job::log_outcome(shop, outcome);
        let value = match outcome {
            Ok(Run::NotDue { next, pending }) => json!({
                "next": next.to_rfc3339(),
                "pending_sent": pending.as_ref().map(|lists| lists.iter().map(|l| json!({
                    "list": l.kind.label(), "added": l.added, "removed": l.removed,
                })).collect::<Vec<_>>()),
            }),
            Ok(Run::Synced(lists)) => Value::Array(
                lists
                    .iter()
                    .map(|l| {
                        json!({"list": l.kind.label(), "added": l.added, "removed": l.removed,
                               "unchanged": l.unchanged, "requests": l.requests, "status": l.status})
                    })
                    .collect(),
            ),
            Ok(Run::OutOfTime) => json!({"continues": true}),
            Ok(Run::Busy { holder, until }) => {
                json!({"busy": holder, "until": until.to_rfc3339()})
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        answer.insert(shop.clone(), value);
    }
    Value::Object(answer)
}

/// Renews the due Pinterest sign-ins of the default shop and the registered stores; a failed one
/// is added to `failures`. The answer: each signed-in store's outcome.
async fn renew_sign_ins(
    stores: &Stores,
    default_shop: &str,
    now: chrono::DateTime<Utc>,
    failures: &mut Vec<String>,
) -> Value {
    let mut shops = vec![default_shop.to_owned()];
    match stores.registry.list().await {
        Ok(entries) => shops.extend(
            entries
                .into_iter()
                .filter(|e| e.enabled && e.domain != default_shop)
                .map(|e| e.domain),
        ),
        Err(e) => tracing::error!(
            error.message = %e,
            "cannot list the registered stores; only the default shop's Pinterest sign-in was checked"
        ),
    }
    let (grants, endpoint) = &stores.grants;
    let mut answers = serde_json::Map::new();
    for (shop, outcome) in oauth::refresh_due(grants, endpoint, &shops, now).await {
        oauth::log_refresh(&shop, &outcome);
        let answer = match outcome {
            Ok(oauth::RefreshOutcome::NotSignedIn) => continue,
            Ok(oauth::RefreshOutcome::Refreshed {
                refresh_token_days_left,
                ..
            }) => json!({"renewed": true, "refresh_token_days_left": refresh_token_days_left}),
            Ok(oauth::RefreshOutcome::NotDue {
                refresh_token_days_left,
            }) => json!({"renewed": false, "refresh_token_days_left": refresh_token_days_left}),
            Ok(oauth::RefreshOutcome::Busy) => json!({"renewed": false, "busy": true}),
            Err(e) => {
                failures.push(format!("{shop} (Pinterest sign-in)"));
                json!({"error": e.to_string()})
            }
        };
        answers.insert(shop, answer);
    }
    Value::Object(answers)
}

/// Emits a watched shop's metrics (same names for every store, no shop dimension) and logs it.
fn watched(service: &Service, shop: &str, report: &WatchReport) {
    watch::emit(&service.metrics, report);
    log(shop, &service.config, report);
}

/// The line of a failed watch; for a registered store (`prefix` set) with what fixes its
/// credentials.
fn failed(shop: &str, e: &WatchError, prefix: Option<&str>) {
    let fix = prefix
        .filter(|_| matches!(e, WatchError::Admin { .. }))
        .map(|p| watch::credentials_fix(shop, p));
    tracing::error!(
        error.message = %e,
        error.cause_chain = ?e,
        shop = %shop,
        fix = fix.as_deref(),
        "watch failed"
    );
}

/// One line per missing topic and order, then the summary line, each naming the shop.
fn log(shop: &str, config: &WatchConfig, r: &WatchReport) {
    if let Some(pause) = &r.paused {
        tracing::error!(
            outcome = "store_paused",
            shop = %shop,
            reason = pause.reason.as_str(),
            since = %pause.since.to_rfc3339(),
            last_at = %pause.last_at.to_rfc3339(),
            "{}: the store's events wait; fix its token with pinrelay shops update {shop} --secrets (the stack's PinterestAccessTokenSecret for the default store)",
            pause.reason
        );
    }
    for topic in &r.subscriptions_missing {
        tracing::warn!(
            outcome = "subscription_missing",
            shop = %shop,
            topic = %topic,
            webhook_url = %config.webhook_url,
            "no webhook subscription of this topic delivers to the relay: run pinrelay subscribe"
        );
    }
    for (id, name) in &r.missing {
        tracing::warn!(
            outcome = "order_missing",
            shop = %shop,
            order_id = id,
            order_name = %name,
            "the relay has no trace of this order: run pinrelay reconcile --backfill"
        );
    }
    tracing::info!(
        outcome = "watched",
        shop = %shop,
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
        "paused": r.paused.as_ref().map(|p| p.reason.as_str()),
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
                "paused": null,
                "accuracy_percent": null,
            })
        );
    }
}
