//! The dispatch Lambda: an SQS-triggered adapter over [`pinrelay::dispatch::Dispatcher`].
//!
//! `main` initializes telemetry, reads the configuration, builds the SDK clients and adapters once,
//! and runs the handler. The handler only converts: SQS records become [`Received`] messages, the
//! dispatcher's [`BatchReport`] becomes an [`SqsBatchResponse`] (the function's event source
//! mapping must enable `ReportBatchItemFailures`). It never fails the invocation as a whole: even
//! when every record is to be retried, it lists them all as batch item failures, so the queue's
//! receive count and redrive policy stay per message.
//!
//! Environment: read by [`config::dispatch_settings`], plus `PINTEREST_ACCESS_TOKEN` or
//! `PINTEREST_ACCESS_TOKEN_SECRET_ARN` (see [`pinrelay::secrets`]). With `SHOP_SECRETS_PREFIX`, a
//! registered store's events go to its own ad account with its own token and settings
//! ([`StoreRoutes`]); every other shop's go where the variables say (the default store).

use std::sync::Arc;

use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::aws::{self, Budget};
use pinrelay::config;
use pinrelay::dispatch::routes::http_factory;
use pinrelay::dispatch::{BatchReport, Dispatcher, StoreRoutes};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::metrics::{self, Metrics};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::profile::dynamodb::DynamoDbProfileStore;
use pinrelay::queue::Received;
use pinrelay::queue::sqs::SqsInbox;
use pinrelay::registry::aws::{self as registry, AwsRegistry};
use pinrelay::registry::{CachedDirectory, DefaultStore};
use pinrelay::telemetry::{self, Output};

/// Time allowed to open a connection to Pinterest.
const PINTEREST_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one Pinterest request; the function timeout must leave room for a few.
const PINTEREST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The SQS attribute holding how often the message was delivered.
const RECEIVE_COUNT: &str = "ApproximateReceiveCount";
/// When the runtime gives no usable deadline, locks last as long as the longest invocation.
const FALLBACK_LOCK: Duration = Duration::from_secs(15 * 60);

type Routes = StoreRoutes<CachedDirectory<AwsRegistry>, PinterestHttp>;
type Service = Dispatcher<DynamoDbIdempotencyStore, DynamoDbProfileStore, Routes, SqsInbox>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(Output::Stdout);
    let mut config = config::dispatch_settings().context("dispatch configuration")?;
    config.dispatch.request_timeout = PINTEREST_REQUEST_TIMEOUT;
    if config.pinterest.test_mode {
        config.dispatch.mode = pinrelay::idempotency::Mode::Test;
    }

    let sdk = aws::load(Budget::DISPATCH).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws::with_budget(&sdk, Budget::STARTUP));
    let access_token = pinrelay::secrets::pinterest_token(&secrets)
        .await
        .context("Pinterest access token")?;
    let api = PinterestHttp::new(PinterestHttpConfig {
        base_url: config.pinterest.base_url.clone(),
        ad_account_id: config.pinterest.ad_account_id,
        access_token,
        test_mode: config.pinterest.test_mode,
        connect_timeout: PINTEREST_CONNECT_TIMEOUT,
        request_timeout: PINTEREST_REQUEST_TIMEOUT,
    })
    .context("Pinterest HTTP client")?;
    let directory = registry::directory(
        &sdk,
        config.registry.as_ref(),
        Some(DefaultStore::any_shop()),
    );
    let routes = StoreRoutes::new(
        Arc::new(directory),
        api,
        http_factory(
            config.pinterest.base_url,
            PINTEREST_CONNECT_TIMEOUT,
            PINTEREST_REQUEST_TIMEOUT,
        ),
    );
    // Records and profiles share the table; each port has its own adapter.
    let table = Table::new(aws_sdk_dynamodb::Client::new(&sdk), config.table);
    let inbox = SqsInbox::new(
        aws_sdk_sqs::Client::new(&sdk),
        config.queue_url,
        config.dead_letter_queue_url,
    );
    // The customer-list ledger (`pinrelay audiences sync --stack`) shares the table too: a
    // redaction reaches it here.
    let audiences = Arc::new(DynamoDbAudienceStore::new(table.clone()));
    let service: Service = Dispatcher::new(
        DynamoDbIdempotencyStore::new(table.clone()),
        DynamoDbProfileStore::new(table),
        routes,
        inbox,
        config.dispatch,
        Metrics::emf(&metrics::function_dimension(
            config::var(metrics::LAMBDA_FUNCTION_NAME_VAR),
            "dispatch",
        )),
    )
    .with_audiences(audiences);

    lambda_runtime::run(service_fn(|event| handle(&service, event))).await
}

async fn handle(
    service: &Service,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let now = Utc::now();
    let batch: Vec<Received> = event.payload.records.iter().map(received).collect();
    let report = service
        .dispatch(&batch, now, deadline(event.context.deadline, now))
        .await;
    Ok(response(&report))
}

/// An SQS record as the dispatcher's [`Received`]: string (and number) attributes, the receive
/// count (1 when absent). Binary attributes are left out: pinrelay never sets any.
fn received(record: &SqsMessage) -> Received {
    Received {
        id: record.message_id.clone().unwrap_or_default(),
        receipt: record.receipt_handle.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get(RECEIVE_COUNT)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        body: record.body.clone().unwrap_or_default(),
        attributes: record
            .message_attributes
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.string_value.clone()?)))
            .collect(),
    }
}

/// The invocation deadline (Unix milliseconds from the runtime), or a worst-case one.
fn deadline(deadline_ms: u64, now: DateTime<Utc>) -> DateTime<Utc> {
    i64::try_from(deadline_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .filter(|d| *d > now)
        .unwrap_or_else(|| now + FALLBACK_LOCK)
}

/// The batch item failures Lambda reads to return only those messages to the queue.
fn response(report: &BatchReport) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .batch_item_failures
        .iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> SqsEvent {
        serde_json::from_str(include_str!("../fixtures/sqs-event.json")).unwrap()
    }

    #[test]
    fn converts_records_with_their_string_attributes_and_receive_count() {
        let records: Vec<Received> = event().records.iter().map(received).collect();
        assert_eq!(records.len(), 2);
        let first = &records[0];
        assert_eq!(first.id, "059f36b4-87a3-44ab-83d2-661975830a7d");
        assert_eq!(first.receipt, "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a");
        assert_eq!(first.receive_count, 3);
        assert_eq!(first.body, r#"{"id":450789469,"test":false}"#);
        assert_eq!(first.attributes["topic"], "orders/create");
        assert_eq!(first.attributes["shop"], "example.myshopify.com");
        assert_eq!(
            first.attributes.len(),
            4,
            "the binary attribute is left out"
        );
    }

    #[test]
    fn a_record_without_receive_count_or_attributes_is_a_first_delivery() {
        let records: Vec<Received> = event().records.iter().map(received).collect();
        let eventbridge = &records[1];
        assert_eq!(eventbridge.receive_count, 1);
        assert!(eventbridge.attributes.is_empty());
        assert!(eventbridge.body.contains("shopifyWebhook"));
    }

    #[test]
    fn response_lists_only_the_messages_to_retry() {
        let report = BatchReport {
            batch_item_failures: vec!["m-2".into()],
            ..BatchReport::default()
        };
        let json = serde_json::to_value(response(&report)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
        );
        let empty = serde_json::to_value(response(&BatchReport::default())).unwrap();
        assert_eq!(empty, serde_json::json!({"batchItemFailures": []}));
    }

    #[test]
    fn locks_expire_at_the_invocation_deadline() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let d = deadline(1_800_000_030_500, now);
        assert_eq!(d.timestamp_millis(), 1_800_000_030_500);
        assert_eq!(deadline(0, now), now + FALLBACK_LOCK);
    }
}
