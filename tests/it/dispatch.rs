//! Dispatch scenarios end to end: the real [`Dispatcher`] with [`DynamoDbIdempotencyStore`] and
//! [`SqsInbox`] on moto, and [`PinterestHttp`] against [`FakePinterest`].
//!
//! Each round plays the Lambda event source mapping: receive what is visible on the queue, dispatch
//! it, delete every message not reported as a batch item failure. Time is injected (`now`); "the
//! visibility timeout passes" is played by setting the retried messages' visibility to zero.
//! Every scenario asserts exact counts at the fake, in the table and in the dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};
use chrono::{DateTime, SecondsFormat, Utc};
use pinrelay::dispatch::{BatchReport, DispatchConfig, Dispatcher, Disposition};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::idempotency::{
    Claim, ClaimRequest, Holder, IdempotencyKey, IdempotencyStore, Mode, State,
};
use pinrelay::metrics::{Metrics, names};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::profile::dynamodb::DynamoDbProfileStore;
use pinrelay::profile::{ConsentPolicy, ProfileStore};
use pinrelay::queue::sqs::{SqsInbox, SqsQueue, received_from_message};
use pinrelay::queue::{Envelope, MAX_MESSAGE_BYTES, Queue, Received, Source, attr};
use pinrelay::shopify::{Topic, WebhookMetadata};
use serde_json::{Value, json};

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, Failure, FakePinterest};
use crate::helpers::{TestEnv, fixture};
use crate::idempotency::serialized_dynamodb;

const SHOP: &str = "example.myshopify.com";
const ORDER_FIXTURE: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";
const REDACT_FIXTURE: &str = "shopify/webhooks/customers-redact.shopify-dev-sample-2026-07.json";
/// Invocations in these tests "end" this long after `now`; claimed locks expire then.
const INVOCATION: chrono::Duration = chrono::Duration::seconds(30);
/// For the large batches: moto's serialized claims alone can take most of [`INVOCATION`].
const LONG_INVOCATION: chrono::Duration = chrono::Duration::seconds(600);

/// Long enough for a loaded CI machine (the fake validates every body against the schema): a client
/// timeout on a request the fake did accept would count its events twice. [`Failure::Timeout`]
/// holds its answer for longer.
const PINTEREST_TIMEOUT: Duration = Duration::from_secs(5);

type TestDispatcher =
    Dispatcher<DynamoDbIdempotencyStore, DynamoDbProfileStore, PinterestHttp, SqsInbox>;

/// moto, the fake, and what a dispatcher needs.
struct World {
    env: TestEnv,
    /// Through [`serialized_dynamodb`]: moto is not atomic under concurrent conditional writes.
    dynamodb: aws_sdk_dynamodb::Client,
    fake: FakePinterest,
    metrics: Metrics,
    now: DateTime<Utc>,
}

impl World {
    async fn start() -> Self {
        let env = TestEnv::start().await;
        let fake = FakePinterest::start().await;
        Self {
            dynamodb: serialized_dynamodb(&env).await,
            env,
            fake,
            metrics: Metrics::in_memory("dispatch"),
            now: Utc::now(),
        }
    }

    fn table(&self) -> Table {
        Table::new(self.dynamodb.clone(), &self.env.table)
    }

    fn store(&self) -> DynamoDbIdempotencyStore {
        DynamoDbIdempotencyStore::new(self.table())
    }

    fn profiles(&self) -> DynamoDbProfileStore {
        DynamoDbProfileStore::new(self.table())
    }

    /// Retries back off by zero seconds, so a retried message is visible again at once.
    fn config(&self) -> DispatchConfig {
        DispatchConfig {
            retry_base: Duration::ZERO,
            retry_max: Duration::ZERO,
            ..DispatchConfig::default()
        }
    }

    fn dispatcher(&self) -> TestDispatcher {
        self.dispatcher_with(self.config())
    }

    fn dispatcher_with(&self, config: DispatchConfig) -> TestDispatcher {
        self.dispatcher_over(config, false, PINTEREST_TIMEOUT)
    }

    /// A dispatcher whose Pinterest client has this test mode and request timeout.
    fn dispatcher_over(
        &self,
        config: DispatchConfig,
        test_mode: bool,
        request_timeout: Duration,
    ) -> TestDispatcher {
        let api = PinterestHttp::new(PinterestHttpConfig {
            base_url: self.fake.base_url(),
            ad_account_id: AD_ACCOUNT_ID.to_owned(),
            access_token: ACCESS_TOKEN.to_owned().into(),
            test_mode,
            connect_timeout: Duration::from_secs(1),
            request_timeout,
        })
        .unwrap();
        let inbox = SqsInbox::new(self.env.sqs.clone(), &self.env.queue_url, &self.env.dlq_url);
        let config = DispatchConfig {
            mode: if test_mode { Mode::Test } else { Mode::Live },
            ..config
        };
        Dispatcher::new(
            self.store(),
            self.profiles(),
            api,
            inbox,
            config,
            self.metrics.clone(),
        )
    }

    /// An `orders/create` message for order `id`, created `age` before `now`.
    async fn enqueue_order(&self, id: u64, age: chrono::Duration) {
        self.enqueue(Topic::OrdersCreate, order(id, self.now - age))
            .await;
    }

    async fn enqueue(&self, topic: Topic, body: Value) {
        let message = envelope(topic, &body, self.now)
            .encode(MAX_MESSAGE_BYTES, Duration::ZERO)
            .unwrap();
        SqsQueue::new(self.env.sqs.clone(), &self.env.queue_url)
            .send(&message)
            .await
            .unwrap();
    }

    /// `n` order messages with ids `first..first + n`, as a Lambda event would carry them.
    ///
    /// The large-batch scenarios skip the queue, because batching is what they test and moto is
    /// slow at volume (sending and receiving 250 messages took 21 s on a loaded two-core machine;
    /// 1,200 did not finish in ten minutes). The messages are encoded exactly as [`SqsQueue`]
    /// sends them.
    fn records(&self, first: u64, n: u64) -> Vec<Received> {
        (first..first + n)
            .map(|id| {
                let m = envelope(
                    Topic::OrdersCreate,
                    &order(id, self.now - minutes(5)),
                    self.now,
                )
                .encode(MAX_MESSAGE_BYTES, Duration::ZERO)
                .unwrap();
                Received {
                    id: format!("message-{id}"),
                    receipt: format!("receipt-{id}"),
                    receive_count: 1,
                    body: m.body,
                    attributes: m.attributes.into_iter().collect(),
                }
            })
            .collect()
    }

    async fn enqueue_raw(&self, body: &str) {
        self.env
            .sqs
            .send_message()
            .queue_url(&self.env.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Every visible message of the queue, as the Lambda would get it.
    async fn receive(&self) -> Vec<Received> {
        let messages = self.env.receive_all(&self.env.queue_url).await;
        messages.iter().map(received_from_message).collect()
    }

    /// One Lambda invocation over every visible message, at `now`.
    async fn round(&self, dispatcher: &TestDispatcher, now: DateTime<Utc>) -> BatchReport {
        let batch = self.receive().await;
        self.invoke(dispatcher, &batch, now).await
    }

    /// Dispatches `batch` and deletes what it settled, like the event source mapping.
    async fn invoke(
        &self,
        dispatcher: &TestDispatcher,
        batch: &[Received],
        now: DateTime<Utc>,
    ) -> BatchReport {
        let report = dispatcher.dispatch(batch, now, now + INVOCATION).await;
        let settled: Vec<&Received> = batch
            .iter()
            .filter(|m| !report.batch_item_failures.contains(&m.id))
            .collect();
        self.delete(&settled).await;
        report
    }

    async fn delete(&self, messages: &[&Received]) {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .build()
                        .unwrap()
                })
                .collect();
            self.env
                .sqs
                .delete_message_batch()
                .queue_url(&self.env.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        }
    }

    /// Plays "the visibility timeout has passed" for messages a dispatcher handed back.
    async fn make_visible(&self, batch: &[Received], report: &BatchReport) {
        for m in batch
            .iter()
            .filter(|m| report.batch_item_failures.contains(&m.id))
        {
            self.env
                .sqs
                .change_message_visibility()
                .queue_url(&self.env.queue_url)
                .receipt_handle(&m.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
    }

    /// The dead letters, each with its `dead-letter-reason` attribute.
    async fn dead_letters(&self) -> Vec<(String, Message)> {
        self.env
            .receive_all(&self.env.dlq_url)
            .await
            .into_iter()
            .map(|m| {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get(attr::DEAD_LETTER_REASON))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned();
                (reason, m)
            })
            .collect()
    }

    async fn status(&self, order_id: u64) -> Option<State> {
        self.store()
            .get(&key(order_id))
            .await
            .unwrap()
            .map(|r| r.state)
    }

    fn metric(&self, name: &str) -> f64 {
        self.metrics
            .snapshot()
            .get(name)
            .copied()
            .unwrap_or_default()
    }
}

fn key(order_id: u64) -> IdempotencyKey {
    IdempotencyKey::new(SHOP, "checkout", &order_id.to_string()).unwrap()
}

/// The REST order fixture as order `id`, created at `created`.
fn order(id: u64, created: DateTime<Utc>) -> Value {
    let mut order: Value = serde_json::from_slice(&fixture(ORDER_FIXTURE)).unwrap();
    let at = created.to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = json!(id);
    order["name"] = json!(format!("#{id}"));
    order["admin_graphql_api_id"] = json!(format!("gid://shopify/Order/{id}"));
    for field in ["created_at", "processed_at", "updated_at"] {
        order[field] = json!(at);
    }
    order
}

fn envelope(topic: Topic, body: &Value, now: DateTime<Utc>) -> Envelope {
    Envelope {
        source: Source::Webhook,
        metadata: WebhookMetadata {
            topic,
            shop_domain: SHOP.to_owned(),
            webhook_id: Some(format!("webhook-{}", body["id"])),
            event_id: Some(format!("event-{}", body["id"])),
            triggered_at: Some(now),
            api_version: Some("2026-07".to_owned()),
        },
        received_at: now,
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn ids(v: &[u64]) -> Vec<String> {
    v.iter().map(u64::to_string).collect()
}

#[tokio::test]
async fn the_same_order_delivered_three_times_in_a_row_is_sent_once() {
    let w = World::start().await;
    let d = w.dispatcher();
    let mut processed = 0;
    let mut deduplicated = 0;
    for _ in 0..3 {
        w.enqueue_order(1001, minutes(5)).await;
        let report = w.round(&d, w.now).await;
        assert!(report.batch_item_failures.is_empty(), "{report:?}");
        processed += report.counts.processed;
        deduplicated += report.counts.deduplicated;
    }
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    assert_eq!((processed, deduplicated), (1, 2));
    assert_eq!(w.status(1001).await, Some(State::Sent));
    assert!(w.dead_letters().await.is_empty());
    assert!(w.receive().await.is_empty());
    assert_eq!(w.fake.schema_errors(), Vec::<String>::new());
}

#[tokio::test]
async fn the_same_order_in_concurrent_batches_is_sent_once() {
    let w = World::start().await;
    let (a, b) = (w.dispatcher(), w.dispatcher());
    for _ in 0..3 {
        w.enqueue_order(1001, minutes(5)).await;
    }
    let batch = w.receive().await;
    assert_eq!(batch.len(), 3);
    let (first, second) = batch.split_at(1);
    let (ra, rb) = tokio::join!(w.invoke(&a, first, w.now), w.invoke(&b, second, w.now));
    let mut processed = ra.counts.processed + rb.counts.processed;
    let mut deduplicated = ra.counts.deduplicated + rb.counts.deduplicated;

    // Whoever lost the race retries after the winner's lock; by then the event is completed.
    let mut retried: Vec<Received> = batch
        .iter()
        .filter(|m| {
            ra.batch_item_failures.contains(&m.id) || rb.batch_item_failures.contains(&m.id)
        })
        .cloned()
        .collect();
    let later = w.now + INVOCATION + chrono::Duration::seconds(1);
    for _ in 0..3 {
        if retried.is_empty() {
            break;
        }
        let failures = BatchReport {
            batch_item_failures: retried.iter().map(|m| m.id.clone()).collect(),
            ..BatchReport::default()
        };
        w.make_visible(&retried, &failures).await;
        let again = w.receive().await;
        let report = w.invoke(&a, &again, later).await;
        processed += report.counts.processed;
        deduplicated += report.counts.deduplicated;
        retried = again
            .into_iter()
            .filter(|m| report.batch_item_failures.contains(&m.id))
            .collect();
    }

    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    assert_eq!((processed, deduplicated), (1, 2));
    assert_eq!(w.status(1001).await, Some(State::Sent));
    assert!(w.dead_letters().await.is_empty());
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn a_pinterest_500_is_retried_then_delivered_once() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, minutes(5)).await;
    w.fake.fail_next(1, Failure::Status(500));

    let first = w.round(&d, w.now).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    assert_eq!(first.counts.retried, 1);
    assert!(w.fake.accepted_event_ids().is_empty());
    assert_eq!(
        w.status(1001).await,
        Some(State::Pending),
        "pending: the next delivery tries again"
    );

    let second = w.round(&d, w.now + minutes(1)).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert_eq!(second.counts.processed, 1);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    assert_eq!(w.fake.requests().len(), 2);
    assert_eq!(w.status(1001).await, Some(State::Sent));
    assert!(w.dead_letters().await.is_empty());
}

/// A request Pinterest never answered may have been recorded: its event is in doubt, dead-lettered
/// with that reason and its record in doubt, so nothing sends it twice on its own.
#[tokio::test]
async fn a_pinterest_timeout_leaves_the_event_in_doubt_and_never_resent_on_its_own() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, minutes(5)).await;
    w.fake.fail_next(1, Failure::Timeout);

    let first = w.round(&d, w.now).await;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    assert!(w.fake.accepted_event_ids().is_empty());
    assert_eq!(w.status(1001).await, Some(State::InDoubt));
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].0.starts_with("in_doubt: "), "{}", dead[0].0);

    // orders/paid of the same order later: held in doubt, not sent.
    w.enqueue_order(1001, minutes(5)).await;
    let second = w.round(&d, w.now + minutes(1)).await;
    assert_eq!(second.counts.held_in_doubt, 1, "{second:?}");
    assert_eq!(w.fake.requests().len(), 1);
}

#[tokio::test]
async fn an_event_pinterest_fails_is_dead_lettered_alone_with_its_reason() {
    let w = World::start().await;
    let d = w.dispatcher();
    for id in [1001, 1002, 1003] {
        w.enqueue_order(id, minutes(5)).await;
    }
    w.fake
        .fail_events(["1002"], "Invalid event_time parameter.");

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.processed, 2);
    assert_eq!(report.counts.failed, 1);
    let mut accepted = w.fake.accepted_event_ids();
    accepted.sort();
    assert_eq!(accepted, ids(&[1001, 1003]));
    assert_eq!(w.fake.requests().len(), 1);
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].0,
        "pinterest_rejected: Invalid event_time parameter."
    );
    let body: Value = serde_json::from_str(dead[0].1.body().unwrap()).unwrap();
    assert_eq!(body["id"], 1002, "the original message is dead-lettered");
    assert_eq!(w.status(1001).await, Some(State::Sent));
    assert_eq!(w.status(1002).await, Some(State::DeadLettered));
    assert_eq!(w.status(1003).await, Some(State::Sent));
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn a_request_refused_for_one_event_dead_letters_that_event_and_sends_the_rest() {
    let w = World::start().await;
    let d = w.dispatcher();
    for id in [1001, 1002, 1003, 1004] {
        w.enqueue_order(id, minutes(5)).await;
    }
    w.fake.reject_requests_containing("1003");

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.processed, 3);
    let mut accepted = w.fake.accepted_event_ids();
    accepted.sort();
    assert_eq!(accepted, ids(&[1001, 1002, 1004]));
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].0.starts_with("pinterest_rejected: "),
        "{}",
        dead[0].0
    );
    let body: Value = serde_json::from_str(dead[0].1.body().unwrap()).unwrap();
    assert_eq!(body["id"], 1003);
    assert_eq!(w.status(1003).await, Some(State::DeadLettered));
    for id in [1001, 1002, 1004] {
        assert_eq!(w.status(id).await, Some(State::Sent));
    }
}

#[tokio::test]
async fn a_refused_token_keeps_the_event_for_retry_and_counts_an_auth_failure() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, minutes(5)).await;
    w.fake.fail_next(1, Failure::Status(401));

    let first = w.round(&d, w.now).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    assert_eq!(first.counts.auth_failures, 1);
    assert_eq!(w.metric(names::PINTEREST_AUTH_FAILURES), 1.0);
    assert!(w.dead_letters().await.is_empty());
    assert!(w.fake.accepted_event_ids().is_empty());
    assert_eq!(w.status(1001).await, Some(State::Pending));

    // The token is fixed: the kept event goes out.
    let second = w.round(&d, w.now + minutes(1)).await;
    assert_eq!(second.counts.processed, 1);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
}

#[tokio::test]
async fn an_invocation_that_died_after_claiming_blocks_the_event_until_its_lock_expires_then_it_is_in_doubt()
 {
    let w = World::start().await;
    let d = w.dispatcher();
    let store = w.store();
    // The dead invocation: claimed, never sent, never settled.
    let claim = ClaimRequest {
        key: key(1001),
        event_id: "1001".into(),
        holder: Holder::new(),
        lock_until: w.now + INVOCATION,
        mode: Mode::Live,
        resend: None,
        topic: "orders/create".into(),
        legacy: None,
    };
    assert!(matches!(
        store.claim(&claim, w.now).await.unwrap(),
        Claim::Acquired { .. }
    ));
    w.enqueue_order(1001, minutes(5)).await;

    let batch = w.receive().await;
    let first = w
        .invoke(&d, &batch, w.now + chrono::Duration::seconds(5))
        .await;
    assert_eq!(first.batch_item_failures.len(), 1, "{first:?}");
    assert!(matches!(
        first.dispositions.values().next(),
        Some(Disposition::Retry(delay)) if *delay >= Duration::from_secs(25)
    ));
    assert!(w.fake.requests().is_empty());

    // Once its lock expires the event is in doubt (the dead invocation may have sent it): it is
    // dead-lettered with that reason and its generation, its record in doubt.
    w.make_visible(&batch, &first).await;
    let after_lock = w.now + INVOCATION + chrono::Duration::seconds(1);
    let second = w.round(&d, after_lock).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert!(w.fake.requests().is_empty(), "never resent on its own");
    assert_eq!(w.status(1001).await, Some(State::InDoubt));
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].0.starts_with("in_doubt: "), "{}", dead[0].0);
    let letter = received_from_message(&dead[0].1);
    assert_eq!(
        pinrelay::queue::RelayFacts::of(&letter.attributes).in_doubt,
        Some(1)
    );
    assert!(letter.attributes.len() <= 10, "{:?}", letter.attributes);
    assert_eq!(w.metric("EventsDeadLettered{Reason=in_doubt}"), 1.0);
}

#[tokio::test]
async fn a_ten_day_old_order_never_sent_is_skipped_as_expired() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, chrono::Duration::days(10)).await;

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(report.counts.expired, 1);
    assert!(w.fake.requests().is_empty());
    assert!(
        w.dead_letters().await.is_empty(),
        "nothing a human can act on"
    );
    assert_eq!(w.status(1001).await, Some(State::Skipped));
    assert_eq!(w.metric("EventsSkipped{Reason=expired}"), 1.0);
    assert_eq!(w.metric("EventsExpired"), 1.0);
}

#[tokio::test]
async fn orders_paid_eight_days_after_its_orders_create_was_sent_is_deduplicated() {
    let w = World::start().await;
    let d = w.dispatcher();
    let created = w.now - chrono::Duration::days(8);
    // orders/create, dispatched when the order was five minutes old.
    w.enqueue(Topic::OrdersCreate, order(1001, created)).await;
    let first = w.round(&d, created + minutes(5)).await;
    assert!(first.batch_item_failures.is_empty());
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    // The bank transfer clears eight days later.
    w.enqueue(Topic::OrdersPaid, order(1001, created)).await;
    let paid = w.round(&d, w.now).await;
    assert_eq!(paid.counts.deduplicated, 1, "{paid:?}");
    assert_eq!(paid.counts.expired, 0);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]), "sent once");
    assert!(w.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_order_two_hours_old_is_sent_and_counted_late() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, chrono::Duration::hours(2)).await;

    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(report.counts.late, 1);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
}

#[tokio::test]
async fn a_test_order_is_skipped() {
    let w = World::start().await;
    let d = w.dispatcher();
    let mut body = order(1001, w.now - minutes(5));
    body["test"] = json!(true);
    w.enqueue(Topic::OrdersCreate, body).await;

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(report.counts.skipped.get("test_order"), Some(&1));
    assert!(w.fake.requests().is_empty());
    assert!(w.dead_letters().await.is_empty());
    assert_eq!(w.status(1001).await, Some(State::Skipped));
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn a_batch_of_250_records_is_sent_in_one_request() {
    let w = World::start().await;
    let d = w.dispatcher();
    let batch = w.records(10_000, 250);

    // moto claims a thousand keys slowly (serialized); a real invocation has the time to send.
    let report = d.dispatch(&batch, w.now, w.now + LONG_INVOCATION).await;
    assert_eq!(report.counts.received, 250);
    assert_eq!(report.counts.processed, 250);
    let requests = w.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].event_count, 250);
    let mut accepted = w.fake.accepted_event_ids();
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), 250);
    assert!(report.batch_item_failures.is_empty());
}

#[tokio::test]
async fn twelve_hundred_events_go_out_in_two_requests() {
    let w = World::start().await;
    let d = w.dispatcher();
    let batch = w.records(20_000, 1_200);

    // moto claims a thousand keys slowly (serialized); a real invocation has the time to send.
    let report = d.dispatch(&batch, w.now, w.now + LONG_INVOCATION).await;
    assert_eq!(report.counts.received, 1_200);
    assert_eq!(report.counts.processed, 1_200);
    let mut sizes: Vec<usize> = w.fake.requests().iter().map(|r| r.event_count).collect();
    sizes.sort();
    assert_eq!(sizes, [200, 1_000]);
    let accepted = w.fake.accepted_event_ids();
    let distinct: std::collections::HashSet<_> = accepted.iter().collect();
    assert_eq!((accepted.len(), distinct.len()), (1_200, 1_200));
}

#[tokio::test]
async fn an_eventbridge_envelope_is_delivered() {
    let w = World::start().await;
    let d = w.dispatcher();
    let body = json!({
        "version": "0",
        "id": "6f1e3b0a-1111-2222-3333-444455556666",
        "detail-type": "shopifyWebhook",
        "source": "aws.partner/shopify.com/0000000/pinrelay",
        "account": "000000000000",
        "time": w.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "payload": order(1001, w.now - minutes(5)),
            "metadata": {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-Order-Id": "1001",
                "X-Shopify-Hmac-SHA256": "DkXXXXX92/LQYUVHXXXXXXXXXXXXXXXXXXXXXXXXXfY=",
                "X-Shopify-API-Version": "2026-07",
                "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
            }
        }
    });
    w.enqueue_raw(&body.to_string()).await;

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.processed, 1);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    assert_eq!(w.status(1001).await, Some(State::Sent));
}

#[tokio::test]
async fn customers_redact_is_acknowledged_sends_nothing_and_deletes_the_orders_records() {
    let w = World::start().await;
    let d = w.dispatcher();
    for id in [299_938, 280_263, 1003] {
        w.enqueue_order(id, minutes(5)).await;
    }
    w.round(&d, w.now).await;
    assert_eq!(w.fake.requests().len(), 1);
    assert_eq!(w.status(299_938).await, Some(State::Sent));

    let mut redact: Value = serde_json::from_slice(&fixture(REDACT_FIXTURE)).unwrap();
    redact["shop_domain"] = json!(SHOP);
    w.enqueue(Topic::CustomersRedact, redact).await;
    let report = w.round(&d, w.now).await;

    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.compliance, 1);
    assert_eq!(w.fake.requests().len(), 1, "nothing more was sent");
    assert_eq!(w.status(299_938).await, None);
    assert_eq!(w.status(280_263).await, None);
    assert_eq!(w.status(1003).await, Some(State::Sent));
    assert!(w.dead_letters().await.is_empty());
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn shop_redact_deletes_every_record_of_the_shop() {
    let w = World::start().await;
    let d = w.dispatcher();
    for id in [1001, 1002] {
        w.enqueue_order(id, minutes(5)).await;
    }
    w.round(&d, w.now).await;
    w.enqueue(
        Topic::ShopRedact,
        json!({"shop_id": 954_889, "shop_domain": SHOP}),
    )
    .await;

    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.compliance, 1);
    assert_eq!(w.status(1001).await, None);
    assert_eq!(w.status(1002).await, None);
    assert_eq!(w.fake.requests().len(), 1);
}

#[tokio::test]
async fn retries_exhausted_on_the_last_receive_are_dead_lettered_with_the_reason() {
    let w = World::start().await;
    let d = w.dispatcher_with(DispatchConfig {
        max_receive_count: 2,
        ..w.config()
    });
    w.enqueue_order(1001, minutes(5)).await;
    w.fake.fail_next(2, Failure::Status(503));

    let first = w.round(&d, w.now).await;
    assert_eq!(first.batch_item_failures.len(), 1);
    assert!(w.dead_letters().await.is_empty());

    let second = w.round(&d, w.now + minutes(1)).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].0.starts_with("retries_exhausted: "),
        "{}",
        dead[0].0
    );
    assert!(w.fake.accepted_event_ids().is_empty());
    assert_eq!(w.fake.requests().len(), 2);
    assert_eq!(w.status(1001).await, Some(State::DeadLettered));
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn test_mode_marks_every_request() {
    let w = World::start().await;
    let d = w.dispatcher_over(w.config(), true, PINTEREST_TIMEOUT);
    w.enqueue_order(1001, minutes(5)).await;

    w.round(&d, w.now).await;
    let requests = w.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].test.as_deref(), Some("true"));
    assert_eq!(requests[0].ad_account_id, AD_ACCOUNT_ID);
}

// ---- shopper profiles: the storefront pixel's checkout enriches the verified order -------------

/// The fixture order's checkout token, which the pixel sees as `checkout.token`.
const CHECKOUT_TOKEN: &str = "bd5a8aa1ecd019dd3520ff791ee3a24c";
const BROWSER_IP: &str = "203.0.113.7";
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0";

/// A browser `checkout` for `order_id` as ingest enqueues it (source `browser`).
fn browser_checkout(order_id: u64, consent: Value, token: &str, now: DateTime<Utc>) -> Envelope {
    let received = json!({
        "event": {
            "v": 1,
            "shop": SHOP,
            "event": "checkout",
            "event_id": order_id.to_string(),
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "client_id": "client-7",
            "page_url": "https://shop.example/checkouts/c/abc/thank-you",
            "click_id": "dj0yJnU9browser",
            "utm": {"source": "pinterest"},
            "consent": consent,
            "order": {"order_id": order_id.to_string(), "checkout_token": token}
        },
        "client_ip": BROWSER_IP,
        "user_agent": BROWSER_UA
    });
    Envelope {
        source: Source::Browser,
        metadata: WebhookMetadata {
            topic: "browser/checkout".parse().unwrap(),
            shop_domain: SHOP.to_owned(),
            webhook_id: None,
            event_id: Some(order_id.to_string()),
            triggered_at: None,
            api_version: None,
        },
        received_at: now,
        body: serde_json::to_vec(&received).unwrap(),
    }
}

impl World {
    async fn enqueue_envelope(&self, envelope: Envelope) {
        let message = envelope.encode(MAX_MESSAGE_BYTES, Duration::ZERO).unwrap();
        SqsQueue::new(self.env.sqs.clone(), &self.env.queue_url)
            .send(&message)
            .await
            .unwrap();
    }

    /// The one event the fake accepted with this id.
    fn accepted(&self, event_id: &str) -> Value {
        let events: Vec<Value> = self
            .fake
            .accepted_events()
            .into_iter()
            .filter(|e| e["event_id"] == event_id)
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        events.into_iter().next().unwrap()
    }

    async fn profile(&self, order_id: u64) -> Option<pinrelay::browser::Profile> {
        self.profiles()
            .get_profiles(SHOP, order_id, self.now)
            .await
            .unwrap()
            .into_iter()
            .next()
    }
}

fn consented() -> Value {
    json!({"marketing": true, "sale_of_data": true, "analytics": true})
}

#[tokio::test]
async fn a_browser_checkout_enriches_the_order_with_click_id_ip_and_user_agent() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_envelope(browser_checkout(1001, consented(), CHECKOUT_TOKEN, w.now))
        .await;
    let first = w.round(&d, w.now).await;
    assert_eq!(first.counts.profiles_recorded, 1, "{first:?}");
    assert!(
        w.fake.requests().is_empty(),
        "a browser checkout is never sent"
    );
    let stored = w.profile(1001).await.unwrap();
    assert_eq!(stored.click_id.as_deref(), Some("dj0yJnU9browser"));

    w.enqueue_order(1001, minutes(1)).await;
    let second = w.round(&d, w.now).await;
    assert_eq!(second.counts.processed, 1, "{second:?}");
    assert_eq!(second.counts.enriched, 1);
    assert_eq!(w.metric(names::ORDERS_ENRICHED), 1.0);
    let event = w.accepted("1001");
    assert_eq!(event["event_name"], "checkout");
    assert_eq!(event["user_data"]["click_id"], "dj0yJnU9browser");
    assert_eq!(event["user_data"]["client_ip_address"], BROWSER_IP);
    assert_eq!(event["user_data"]["client_user_agent"], BROWSER_UA);
    assert!(event.get("opt_out").is_none());
    assert!(w.fake.schema_errors().is_empty());
}

#[tokio::test]
async fn a_browser_checkout_in_the_same_batch_as_its_order_still_enriches_it() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, minutes(1)).await;
    w.enqueue_envelope(browser_checkout(1001, consented(), CHECKOUT_TOKEN, w.now))
        .await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.profiles_recorded, 1, "{report:?}");
    assert_eq!(report.counts.processed, 1);
    assert_eq!(
        w.accepted("1001")["user_data"]["click_id"],
        "dj0yJnU9browser"
    );
}

#[tokio::test]
async fn an_order_without_a_browser_checkout_is_sent_as_the_webhook_has_it() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_order(1001, minutes(1)).await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(report.counts.enriched, 0);
    let event = w.accepted("1001");
    assert!(event["user_data"].get("click_id").is_none(), "{event}");
}

#[tokio::test]
async fn a_forged_browser_checkout_with_another_token_changes_nothing() {
    let w = World::start().await;
    let d = w.dispatcher_with(DispatchConfig {
        order_consent_policy: ConsentPolicy::Skip,
        ..w.config()
    });
    w.enqueue_envelope(browser_checkout(
        1001,
        json!({"marketing": false}),
        "guessed-token",
        w.now,
    ))
    .await;
    w.round(&d, w.now).await;
    w.enqueue_order(1001, minutes(1)).await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.processed, 1, "{report:?}");
    let event = w.accepted("1001");
    assert!(event.get("opt_out").is_none(), "{event}");
    assert!(event["user_data"].get("click_id").is_none());
}

#[tokio::test]
async fn refused_marketing_consent_sends_the_order_opted_out_by_default() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_envelope(browser_checkout(
        1001,
        json!({"marketing": false, "sale_of_data": false}),
        CHECKOUT_TOKEN,
        w.now,
    ))
    .await;
    w.round(&d, w.now).await;
    let stored = w.profile(1001).await.unwrap();
    assert_eq!(
        stored.click_id, None,
        "nothing identifying is kept without consent"
    );
    assert_eq!(stored.client_ip, None);

    w.enqueue_order(1001, minutes(1)).await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.processed, 1, "{report:?}");
    let event = w.accepted("1001");
    assert_eq!(event["opt_out"], true);
    assert!(event["user_data"].get("click_id").is_none());
    // The fixture's buyer is in the US: sale of data refused as well, so LDP.
    assert_eq!(event["custom_data"]["opt_out_type"], "LDP");
}

#[tokio::test]
async fn refused_marketing_consent_skips_the_order_when_the_policy_says_skip() {
    let w = World::start().await;
    let d = w.dispatcher_with(DispatchConfig {
        order_consent_policy: ConsentPolicy::Skip,
        ..w.config()
    });
    w.enqueue_envelope(browser_checkout(
        1001,
        json!({"marketing": false}),
        CHECKOUT_TOKEN,
        w.now,
    ))
    .await;
    w.round(&d, w.now).await;
    w.enqueue_order(1001, minutes(1)).await;
    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.skipped.get("consent"), Some(&1));
    assert!(w.fake.requests().is_empty());
    assert_eq!(
        w.status(1001).await,
        Some(State::Skipped),
        "recorded; a later delivery may decide again"
    );
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn refused_sale_of_data_alone_marks_the_order_ldp_and_still_enriches_it() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_envelope(browser_checkout(
        1001,
        json!({"marketing": true, "sale_of_data": false}),
        CHECKOUT_TOKEN,
        w.now,
    ))
    .await;
    w.enqueue_order(1001, minutes(1)).await;
    w.round(&d, w.now).await;
    let event = w.accepted("1001");
    assert_eq!(event["custom_data"]["opt_out_type"], "LDP");
    assert!(event.get("opt_out").is_none());
    assert_eq!(event["user_data"]["click_id"], "dj0yJnU9browser");
}

#[tokio::test]
async fn customers_redact_and_shop_redact_delete_the_profiles() {
    let w = World::start().await;
    let d = w.dispatcher();
    for id in [299_938, 280_263, 1003] {
        w.enqueue_envelope(browser_checkout(id, consented(), CHECKOUT_TOKEN, w.now))
            .await;
    }
    w.round(&d, w.now).await;
    assert!(w.profile(299_938).await.is_some());

    let mut redact: Value = serde_json::from_slice(&fixture(REDACT_FIXTURE)).unwrap();
    redact["shop_domain"] = json!(SHOP);
    w.enqueue(Topic::CustomersRedact, redact).await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.compliance, 1, "{report:?}");
    assert!(w.profile(299_938).await.is_none());
    assert!(w.profile(280_263).await.is_none());
    assert!(w.profile(1003).await.is_some(), "another customer's order");

    w.enqueue(
        Topic::ShopRedact,
        json!({"shop_id": 954_889, "shop_domain": SHOP}),
    )
    .await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.compliance, 1, "{report:?}");
    assert!(w.profile(1003).await.is_none());
}

#[tokio::test]
async fn orders_create_and_orders_paid_in_one_batch_send_once_without_a_retry() {
    let w = World::start().await;
    let d = w.dispatcher();
    let body = order(1001, w.now - minutes(1));
    w.enqueue(Topic::OrdersCreate, body.clone()).await;
    w.enqueue(Topic::OrdersPaid, body).await;

    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.processed, 1);
    assert_eq!(report.counts.deduplicated, 1);
    assert_eq!(report.counts.retried, 0);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
    assert_eq!(w.status(1001).await, Some(State::Sent));
    assert!(w.receive().await.is_empty());
}

#[tokio::test]
async fn a_second_copy_in_the_batch_is_retried_with_the_first_when_pinterest_fails() {
    let w = World::start().await;
    let d = w.dispatcher();
    let body = order(1001, w.now - minutes(1));
    w.enqueue(Topic::OrdersCreate, body.clone()).await;
    w.enqueue(Topic::OrdersPaid, body).await;
    w.fake.fail_next(1, Failure::Status(503));

    let batch = w.receive().await;
    let first = w.invoke(&d, &batch, w.now).await;
    assert_eq!(first.batch_item_failures.len(), 2, "{first:?}");
    assert!(w.fake.accepted_event_ids().is_empty());
    w.make_visible(&batch, &first).await;

    let second = w.round(&d, w.now + minutes(1)).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    assert_eq!(second.counts.processed, 1);
    assert_eq!(second.counts.deduplicated, 1);
    assert_eq!(w.fake.accepted_event_ids(), ids(&[1001]));
}

/// Order `id` with no email anywhere (the fixture has no usable IP or user agent either).
fn order_without_email(id: u64, created: DateTime<Utc>) -> Value {
    let mut body = order(id, created);
    body["email"] = Value::Null;
    body["contact_email"] = Value::Null;
    body["customer"]["email"] = Value::Null;
    body
}

#[tokio::test]
async fn an_order_pinterest_cannot_match_is_skipped_and_its_key_released() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue(
        Topic::OrdersCreate,
        order_without_email(1001, w.now - minutes(1)),
    )
    .await;
    let report = w.round(&d, w.now).await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.counts.skipped.get("not_enough_identity"), Some(&1));
    assert!(w.fake.requests().is_empty());
    assert_eq!(
        w.status(1001).await,
        Some(State::Skipped),
        "recorded; a later delivery may decide again"
    );
}

#[tokio::test]
async fn a_browser_checkout_makes_an_order_without_email_matchable() {
    let w = World::start().await;
    let d = w.dispatcher();
    w.enqueue_envelope(browser_checkout(1001, consented(), CHECKOUT_TOKEN, w.now))
        .await;
    w.enqueue(
        Topic::OrdersCreate,
        order_without_email(1001, w.now - minutes(1)),
    )
    .await;
    let report = w.round(&d, w.now).await;
    assert_eq!(report.counts.processed, 1, "{report:?}");
    let event = w.accepted("1001");
    assert!(event["user_data"].get("em").is_none(), "{event}");
    assert_eq!(event["user_data"]["client_ip_address"], BROWSER_IP);
    assert_eq!(event["user_data"]["client_user_agent"], BROWSER_UA);
    assert!(w.fake.schema_errors().is_empty());
}

// ---- deadlines: a slow Pinterest and a short invocation --------------------------------------

#[tokio::test]
async fn a_slow_pinterest_and_a_short_deadline_return_in_time_and_send_nothing_twice() {
    let w = World::start().await;
    for id in [2001, 2002, 2003] {
        w.enqueue_order(id, minutes(5)).await;
    }
    // The first request hangs past the client's timeout; the deadline leaves no room for more.
    w.fake.fail_next(1, Failure::Timeout);
    let request_timeout = Duration::from_secs(1);
    let config = DispatchConfig {
        max_batch_events: 1,
        request_timeout,
        deadline_margin: Duration::from_millis(500),
        ..w.config()
    };
    let d = w.dispatcher_over(config, false, request_timeout);

    let batch = w.receive().await;
    assert_eq!(batch.len(), 3);
    let now = Utc::now();
    let deadline = now + chrono::Duration::milliseconds(2500);
    let started = std::time::Instant::now();
    let report = d.dispatch(&batch, now, deadline).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "returned after {:?}",
        started.elapsed()
    );
    assert_eq!(report.batch_item_failures.len(), 2, "{report:?}");
    assert_eq!(
        w.fake.requests().len(),
        1,
        "only the request that fitted started"
    );
    // The request that timed out left its event in doubt; the others were never sent.
    let hung: u64 = w.fake.requests()[0].event_ids[0].parse().unwrap();
    let others: Vec<u64> = [2001, 2002, 2003]
        .into_iter()
        .filter(|id| *id != hung)
        .collect();
    assert_eq!(w.status(hung).await, Some(State::InDoubt));
    for id in &others {
        assert_eq!(
            w.status(*id).await,
            Some(State::Pending),
            "pending: the next delivery sends it"
        );
    }

    // The next delivery sends each once.
    w.make_visible(&batch, &report).await;
    let later = Utc::now();
    let batch = w.receive().await;
    let report = d
        .dispatch(&batch, later, later + chrono::Duration::seconds(30))
        .await;
    assert!(report.batch_item_failures.is_empty(), "{report:?}");
    let mut accepted = w.fake.accepted_event_ids();
    accepted.sort();
    assert_eq!(accepted, ids(&others), "each once");
    let dead = w.dead_letters().await;
    assert_eq!(
        dead.len(),
        1,
        "the timed-out event waits in doubt for a human"
    );
    assert!(dead[0].0.starts_with("in_doubt: "));
}
