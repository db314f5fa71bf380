//! The dispatcher's logic in milliseconds: the real pipeline over the SQLite stores (a temporary
//! relay database), a scripted Conversions API and a recording inbox. The end-to-end layer (moto,
//! the fake Pinterest) lives in `tests/it/dispatch.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::*;
use crate::browser::Profile;
use crate::idempotency::sqlite::SqliteIdempotencyStore;
use crate::idempotency::{Claim, IdempotencyKey, IdempotencyRecord, PauseReason, State};
use crate::mapping::SkipReason;
use crate::pinterest::{ConversionsApiError, Event, EventStatus};
use crate::profile::sqlite::SqliteProfileStore;
use crate::profile::{ConsentPolicy, ProfileStore};
use crate::queue::{
    Envelope, Letter, MAX_MESSAGE_BYTES, QueueError, Source, dead_letter_attributes,
};
use crate::shopify::{Topic, WebhookMetadata};
use crate::sqlite::SqliteDatabase;

const SHOP: &str = "unit.myshopify.com";
const TOKEN: &str = "bd5a8aa1ecd019dd3520ff791ee3a24c";

type Answer = Result<Vec<EventStatus>, ConversionsApiError>;
/// How the scripted API answers a request.
type Rule = Arc<dyn Fn(&[Event]) -> Answer + Send + Sync>;

/// A Conversions API that answers by a rule (after `delay`) and records each request's event ids.
#[derive(Clone)]
struct ScriptedApi {
    answer: Rule,
    delay: Duration,
    requests: Arc<Mutex<Vec<Vec<String>>>>,
    sent: Arc<Mutex<Vec<Event>>>,
}

impl ScriptedApi {
    fn new(answer: impl Fn(&[Event]) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            answer: Arc::new(answer),
            delay: Duration::ZERO,
            requests: Arc::default(),
            sent: Arc::default(),
        }
    }

    fn accepting() -> Self {
        Self::new(|events| Ok(vec![EventStatus::Processed { warning: None }; events.len()]))
    }

    fn requests(&self) -> Vec<Vec<String>> {
        self.requests.lock().unwrap().clone()
    }

    /// The events Pinterest processed.
    fn sent(&self) -> Vec<Event> {
        self.sent.lock().unwrap().clone()
    }
}

impl ConversionsApi for ScriptedApi {
    async fn send(&self, events: &[Event]) -> Answer {
        let ids = events.iter().map(|e| e.event_id.clone()).collect();
        self.requests.lock().unwrap().push(ids);
        tokio::time::sleep(self.delay).await;
        let answer = (self.answer)(events);
        if let Ok(statuses) = &answer {
            for (e, s) in events.iter().zip(statuses) {
                if matches!(s, EventStatus::Processed { .. }) {
                    self.sent.lock().unwrap().push(e.clone());
                }
            }
        }
        answer
    }
}

/// An inbox that records dead letters (message id, reason) and retry delays.
#[derive(Clone, Default)]
struct RecordingInbox {
    dead: Arc<Mutex<Vec<(String, String)>>>,
    dead_messages: Arc<Mutex<Vec<Received>>>,
    refuse_dead_letters: Arc<std::sync::atomic::AtomicBool>,
    delays: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Inbox for RecordingInbox {
    async fn dead_letter_many(&self, letters: &[Letter<'_>]) -> Vec<Result<(), QueueError>> {
        let mut out = Vec::new();
        for letter in letters {
            if self
                .refuse_dead_letters
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                out.push(Err(QueueError::Unavailable(
                    "the dead-letter queue is down".into(),
                )));
                continue;
            }
            let entry = (letter.message.id.clone(), letter.reason.to_owned());
            self.dead.lock().unwrap().push(entry);
            // The letter as the queue stores it: attributes, relay facts and reason.
            let attributes = dead_letter_attributes(letter.message, letter.reason, letter.relay);
            self.dead_messages.lock().unwrap().push(Received {
                attributes,
                ..letter.message.clone()
            });
            out.push(Ok(()));
        }
        out
    }

    async fn retry_after(&self, message: &Received, delay: Duration) -> Result<(), QueueError> {
        self.delays
            .lock()
            .unwrap()
            .push((message.id.clone(), delay));
        Ok(())
    }
}

type Unit = Dispatcher<SqliteIdempotencyStore, SqliteProfileStore, ScriptedApi, RecordingInbox>;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteIdempotencyStore,
    profiles: SqliteProfileStore,
    inbox: RecordingInbox,
    now: DateTime<Utc>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open_in(dir.path()).unwrap();
        Self {
            _dir: dir,
            store: SqliteIdempotencyStore::new(db.clone()),
            profiles: SqliteProfileStore::new(db),
            inbox: RecordingInbox::default(),
            now: "2026-11-29T12:00:00Z".parse().unwrap(),
        }
    }

    fn config() -> DispatchConfig {
        DispatchConfig {
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(900),
            ..DispatchConfig::default()
        }
    }

    fn dispatcher(&self, api: &ScriptedApi, config: DispatchConfig) -> Unit {
        Dispatcher::new(
            self.store.clone(),
            self.profiles.clone(),
            api.clone(),
            self.inbox.clone(),
            config,
            crate::metrics::Metrics::in_memory("dispatch"),
        )
    }

    async fn run(&self, api: &ScriptedApi, batch: &[Received]) -> BatchReport {
        self.run_with(api, Self::config(), batch).await
    }

    async fn run_with(
        &self,
        api: &ScriptedApi,
        config: DispatchConfig,
        batch: &[Received],
    ) -> BatchReport {
        let deadline = self.now + chrono::Duration::seconds(30);
        self.dispatcher(api, config)
            .dispatch(batch, self.now, deadline)
            .await
    }

    async fn status(&self, order_id: u64) -> Option<State> {
        self.record(order_id).await.map(|r| r.state)
    }

    async fn record(&self, order_id: u64) -> Option<IdempotencyRecord> {
        self.store.get(&key(order_id)).await.unwrap()
    }

    fn dead_letters(&self) -> Vec<(String, String)> {
        self.inbox.dead.lock().unwrap().clone()
    }

    fn delays(&self) -> Vec<(String, Duration)> {
        self.inbox.delays.lock().unwrap().clone()
    }
}

fn key(order_id: u64) -> IdempotencyKey {
    IdempotencyKey::order(SHOP, order_id).unwrap()
}

/// A claim of order `order_id` by another invocation at `at`, locked until `until`.
async fn claim_elsewhere(
    w: &World,
    order_id: u64,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> (Claim, crate::idempotency::ClaimRequest) {
    let request = crate::idempotency::ClaimRequest {
        key: key(order_id),
        event_id: order_id.to_string(),
        holder: crate::idempotency::Holder::new(),
        lock_until: until,
        mode: crate::idempotency::Mode::Live,
        resend: None,
        topic: "orders/create".into(),
        legacy: None,
    };
    (w.store.claim(&request, at).await.unwrap(), request)
}

fn message(id: &str, receive_count: u32, envelope: &Envelope) -> Received {
    let m = envelope.encode(MAX_MESSAGE_BYTES, Duration::ZERO).unwrap();
    Received {
        id: id.to_owned(),
        receipt: format!("receipt-{id}"),
        receive_count,
        body: m.body,
        attributes: m.attributes.into_iter().collect(),
    }
}

/// A webhook as ingest enqueues it, with every Shopify header.
fn webhook(topic: Topic, body: &Value, now: DateTime<Utc>) -> Envelope {
    Envelope {
        source: Source::Webhook,
        metadata: WebhookMetadata {
            topic,
            shop_domain: SHOP.to_owned(),
            webhook_id: Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()),
            event_id: Some("98880550-7158-44d4-b7cd-2c97c8a091b5".into()),
            triggered_at: Some(now),
            api_version: Some("2026-07".into()),
        },
        received_at: now,
        body: body.to_string().into_bytes(),
    }
}

fn order_body(id: u64, now: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "created_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "email": "buyer@example.com",
        "checkout_token": TOKEN,
        "currency": "USD",
        "current_subtotal_price": "10.00"
    })
}

/// An `orders/create` message (id `o-{order_id}`), first delivery.
fn order(w: &World, order_id: u64) -> Received {
    message(
        &format!("o-{order_id}"),
        1,
        &webhook(Topic::OrdersCreate, &order_body(order_id, w.now), w.now),
    )
}

fn browser_checkout(w: &World, order_id: u64, marketing: bool, token: &str) -> Received {
    let received = json!({
        "event": {
            "v": 1,
            "shop": SHOP,
            "event": "checkout",
            "event_id": order_id.to_string(),
            "timestamp": w.now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "client_id": "client-7",
            "page_url": "https://shop.example/checkouts/c/abc/thank-you",
            "click_id": "dj0yJnU9browser",
            "consent": {"marketing": marketing, "sale_of_data": true, "analytics": true},
            "order": {"order_id": order_id.to_string(), "checkout_token": token}
        },
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"
    });
    let envelope = browser_envelope(w, "checkout", &order_id.to_string(), &received);
    message(&format!("b-{order_id}"), 1, &envelope)
}

/// A browser event as ingest enqueues it (source `browser`).
fn browser_envelope(w: &World, event: &str, event_id: &str, received: &Value) -> Envelope {
    Envelope {
        source: Source::Browser,
        metadata: WebhookMetadata {
            topic: format!("browser/{event}").parse().unwrap(),
            shop_domain: SHOP.to_owned(),
            webhook_id: None,
            event_id: Some(event_id.to_owned()),
            triggered_at: None,
            api_version: None,
        },
        received_at: w.now,
        body: serde_json::to_vec(received).unwrap(),
    }
}

#[tokio::test]
async fn orders_create_and_paid_in_one_batch_send_once_without_a_retry() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let paid = message(
        "paid-1",
        1,
        &webhook(Topic::OrdersPaid, &order_body(1, w.now), w.now),
    );
    let report = w.run(&api, &[order(&w, 1), paid]).await;
    assert_eq!(api.requests(), [["1"]]);
    assert_eq!(report.dispositions["o-1"], Disposition::Sent);
    assert_eq!(report.dispositions["paid-1"], Disposition::Deduplicated);
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(w.status(1).await, Some(State::Sent));
    assert_eq!(
        (report.counts.processed, report.counts.deduplicated),
        (1, 1)
    );
}

#[tokio::test]
async fn an_event_sent_before_is_deduplicated_without_a_request() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[order(&w, 1)]).await;
    let again = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(again.dispositions["o-1"], Disposition::Deduplicated);
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn a_request_refused_as_a_whole_is_split_until_the_offender_stands_alone() {
    let w = World::new();
    let api = ScriptedApi::new(|events| {
        if events.iter().any(|e| e.event_id == "3") {
            Err(ConversionsApiError::Rejected {
                status: 400,
                message: "currency is not ISO 4217".into(),
            })
        } else {
            Ok(vec![EventStatus::Processed { warning: None }; events.len()])
        }
    });
    let batch: Vec<_> = (1..=4).map(|id| order(&w, id)).collect();
    let report = w.run(&api, &batch).await;
    let requests = api.requests();
    assert_eq!(requests[0], ["1", "2", "3", "4"]);
    assert!(requests.iter().any(|r| r == &["3"]), "{requests:?}");
    assert_eq!(requests.len(), 5, "4 → 2+2 → the refused half split again");
    let mut sent: Vec<_> = api.sent().into_iter().map(|e| e.event_id).collect();
    sent.sort();
    assert_eq!(sent, ["1", "2", "4"]);
    let dead = w.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "o-3");
    assert!(
        dead[0].1.starts_with("pinterest_rejected: "),
        "{}",
        dead[0].1
    );
    assert_eq!(
        report.counts.dead_lettered.get("pinterest_rejected"),
        Some(&1)
    );
    assert_eq!(
        report.counts.sent, 4,
        "split requests count their halves once"
    );
    assert_eq!(
        w.status(3).await,
        Some(State::DeadLettered),
        "the refused event's record says why; a replay may decide it again"
    );
}

#[tokio::test]
async fn an_event_pinterest_fails_alone_is_dead_lettered_and_the_rest_sent() {
    let w = World::new();
    let api = ScriptedApi::new(|events| {
        Ok(events
            .iter()
            .map(|e| match e.event_id.as_str() {
                "2" => EventStatus::Failed {
                    error_message: "event_time is too old".into(),
                },
                _ => EventStatus::Processed { warning: None },
            })
            .collect())
    });
    let report = w.run(&api, &[order(&w, 1), order(&w, 2)]).await;
    assert_eq!(report.dispositions["o-1"], Disposition::Sent);
    assert_eq!(
        report.dispositions["o-2"],
        Disposition::DeadLettered(DeadLetterReason::PinterestRejected(
            "event_time is too old".into()
        ))
    );
    assert_eq!(report.counts.failed, 1);
    assert_eq!(w.status(2).await, Some(State::DeadLettered));
}

#[tokio::test]
async fn a_503_is_retried_with_backoff_and_the_key_released() {
    let w = World::new();
    let api = ScriptedApi::new(|_| Err(ConversionsApiError::Unavailable { status: 503 }));
    let second_delivery = message(
        "o-7",
        2,
        &webhook(Topic::OrdersCreate, &order_body(7, w.now), w.now),
    );
    let report = w.run(&api, &[second_delivery]).await;
    assert_eq!(report.batch_item_failures, ["o-7"]);
    assert_eq!(
        report.dispositions["o-7"],
        Disposition::Retry(Duration::from_secs(120))
    );
    assert_eq!(w.delays(), [("o-7".to_owned(), Duration::from_secs(120))]);
    assert_eq!(
        w.status(7).await,
        Some(State::Pending),
        "pending: the next delivery tries again"
    );
}

#[tokio::test]
async fn a_rate_limit_waits_at_least_what_pinterest_asks() {
    let w = World::new();
    let api = ScriptedApi::new(|_| {
        Err(ConversionsApiError::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
        })
    });
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Paused(Duration::from_secs(600), PauseReason::RateLimited)
    );
}

#[tokio::test]
async fn a_refused_token_is_retried_after_the_longest_delay_and_counted() {
    let w = World::new();
    let api = ScriptedApi::new(|_| {
        Err(ConversionsApiError::Unauthorized {
            status: 401,
            message: "invalid token".into(),
        })
    });
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Paused(Duration::from_secs(900), PauseReason::TokenRefused)
    );
    assert_eq!(report.counts.auth_failures, 1);
    assert_eq!(report.counts.retried, 1);
}

#[tokio::test]
async fn a_paused_stores_message_is_not_dead_lettered_after_the_usual_receives() {
    let w = World::new();
    let api = ScriptedApi::new(|_| {
        Err(ConversionsApiError::Unauthorized {
            status: 401,
            message: "invalid token".into(),
        })
    });
    // Its 9th delivery, far past MAX_RECEIVE_COUNT (5): paused again, for longer.
    let mut message = order(&w, 1);
    message.receive_count = 9;
    let report = w.run(&api, &[message]).await;
    let Disposition::Paused(delay, PauseReason::TokenRefused) = report.dispositions["o-1"] else {
        panic!("{:?}", report.dispositions["o-1"]);
    };
    assert_eq!(delay, PAUSE_MAX);
    assert!(report.counts.dead_lettered.is_empty());
    // Noted once for the store, for the watch to name it.
    let pause = w.store.pause(SHOP).await.unwrap().unwrap();
    assert_eq!(pause.reason, PauseReason::TokenRefused);
    assert_eq!(pause.last_at, w.now);
}

#[test]
fn a_pause_doubles_up_to_twelve_hours_and_ends_when_the_event_expires() {
    let config = DispatchConfig::default();
    let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    let event_time = t0.timestamp();
    let pause = |n, at_least, now| config.pause(n, config.retry_max, at_least, event_time, now);
    let minutes = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(pause(1, Duration::ZERO, t0), minutes(15));
    assert_eq!(pause(2, Duration::ZERO, t0), minutes(30));
    assert_eq!(pause(7, Duration::ZERO, t0), minutes(12 * 60));
    assert_eq!(pause(30, Duration::ZERO, t0), minutes(12 * 60));
    // A rate limit starts at retry_base and honours Retry-After.
    assert_eq!(
        config.pause(1, config.retry_base, minutes(5), event_time, t0),
        minutes(5)
    );
    // Two hours before the event expires: its next delivery comes a minute after, to skip it.
    let late = t0 + chrono::Duration::days(7) - chrono::Duration::hours(2);
    assert_eq!(pause(20, Duration::ZERO, late), minutes(121));
    // Already expired: back soon, to be skipped `expired`.
    let after = t0 + chrono::Duration::days(8);
    assert_eq!(pause(20, Duration::ZERO, after), config.retry_base);
}

#[tokio::test]
async fn a_lock_held_elsewhere_is_retried_once_it_can_have_expired() {
    let w = World::new();
    let held_until = w.now + chrono::Duration::seconds(300);
    assert!(matches!(
        claim_elsewhere(&w, 1, w.now, held_until).await.0,
        Claim::Acquired { .. }
    ));
    let api = ScriptedApi::accepting();
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert!(api.requests().is_empty());
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Retry(Duration::from_secs(301))
    );
    assert_eq!(
        w.status(1).await,
        Some(State::InProgress),
        "not ours to release"
    );
}

#[tokio::test]
async fn the_last_delivery_is_dead_lettered_with_retries_exhausted() {
    let w = World::new();
    let api = ScriptedApi::new(|_| Err(ConversionsApiError::Unavailable { status: 503 }));
    let last = message(
        "o-1",
        5,
        &webhook(Topic::OrdersCreate, &order_body(1, w.now), w.now),
    );
    let report = w.run(&api, &[last]).await;
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(
        w.dead_letters(),
        [(
            "o-1".to_owned(),
            "retries_exhausted: still failing after 5 attempts".to_owned()
        )]
    );
    assert_eq!(
        report.counts.dead_lettered.get("retries_exhausted"),
        Some(&1)
    );
}

#[tokio::test]
async fn a_copy_following_a_retried_leader_is_retried_too() {
    let w = World::new();
    let api = ScriptedApi::new(|_| Err(ConversionsApiError::Unavailable { status: 503 }));
    let paid = message(
        "paid-1",
        1,
        &webhook(Topic::OrdersPaid, &order_body(1, w.now), w.now),
    );
    let report = w.run(&api, &[order(&w, 1), paid]).await;
    assert_eq!(api.requests().len(), 1);
    let mut failures = report.batch_item_failures.clone();
    failures.sort();
    assert_eq!(failures, ["o-1", "paid-1"]);
}

#[tokio::test]
async fn a_browser_checkout_in_the_same_batch_enriches_its_order() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let report = w
        .run(&api, &[browser_checkout(&w, 1, true, TOKEN), order(&w, 1)])
        .await;
    assert_eq!(report.dispositions["b-1"], Disposition::ProfileRecorded);
    let sent = api.sent();
    assert_eq!(sent.len(), 1, "the browser checkout itself is never sent");
    assert_eq!(
        sent[0].user_data.click_id.as_deref(),
        Some("dj0yJnU9browser")
    );
    assert_eq!(report.counts.enriched, 1);
    assert_eq!(report.counts.profiles_recorded, 1);
}

#[tokio::test]
async fn a_profile_recorded_with_another_checkout_token_changes_nothing() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[browser_checkout(&w, 1, true, "forged-token")])
        .await;
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(api.sent()[0].user_data.click_id, None);
    assert_eq!(report.counts.enriched, 0);
}

#[tokio::test]
async fn refused_consent_skips_the_order_when_the_policy_says_skip() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let config = DispatchConfig {
        order_consent_policy: ConsentPolicy::Skip,
        ..World::config()
    };
    let batch = [browser_checkout(&w, 1, false, TOKEN), order(&w, 1)];
    let report = w.run_with(&api, config, &batch).await;
    assert!(api.requests().is_empty());
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Skipped(SkipReason::Consent)
    );
    assert_eq!(
        w.status(1).await,
        Some(State::Skipped),
        "a skip is recorded and may be decided again"
    );
}

#[tokio::test]
async fn refused_consent_opts_the_order_out_by_default() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[browser_checkout(&w, 1, false, TOKEN), order(&w, 1)])
        .await;
    let sent = api.sent();
    assert_eq!(sent[0].opt_out, Some(true));
    assert_eq!(
        sent[0].user_data.click_id, None,
        "nothing added without consent"
    );
}

#[tokio::test]
async fn an_order_without_identity_is_skipped_and_its_key_released() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let mut body = order_body(1, w.now);
    body["email"] = Value::Null;
    let m = message("o-1", 1, &webhook(Topic::OrdersCreate, &body, w.now));
    let report = w.run(&api, &[m]).await;
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Skipped(SkipReason::NotEnoughIdentity)
    );
    assert_eq!(w.status(1).await, Some(State::Skipped));
    assert_eq!(report.counts.skipped.get("not_enough_identity"), Some(&1));
}

#[tokio::test]
async fn a_browser_profile_makes_an_order_without_email_matchable() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let mut body = order_body(1, w.now);
    body["email"] = Value::Null;
    let m = message("o-1", 1, &webhook(Topic::OrdersCreate, &body, w.now));
    let report = w
        .run(&api, &[browser_checkout(&w, 1, true, TOKEN), m])
        .await;
    assert_eq!(report.dispositions["o-1"], Disposition::Sent);
    assert_eq!(
        api.sent()[0].user_data.client_ip_address.as_deref(),
        Some("203.0.113.7")
    );
}

#[tokio::test]
async fn shop_redact_deletes_the_shops_records_and_profiles() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[order(&w, 1)]).await;
    let expires = (w.now + chrono::Duration::days(1)).timestamp();
    w.profiles
        .put_profile(SHOP, 9, &Profile::default(), expires, w.now)
        .await
        .unwrap();
    let redact = message(
        "redact",
        1,
        &webhook(
            Topic::ShopRedact,
            &json!({"shop_id": 1, "shop_domain": SHOP}),
            w.now,
        ),
    );
    let report = w.run(&api, &[redact]).await;
    assert_eq!(report.dispositions["redact"], Disposition::Compliance);
    assert_eq!(w.status(1).await, None);
    assert!(
        w.profiles
            .get_profiles(SHOP, 9, w.now)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn customers_redact_deletes_the_orders_records_and_profiles() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[browser_checkout(&w, 1, true, TOKEN), order(&w, 1)])
        .await;
    let redact = message(
        "redact",
        1,
        &webhook(
            Topic::CustomersRedact,
            &json!({"shop_domain": SHOP, "customer": {"id": 5}, "orders_to_redact": [1]}),
            w.now,
        ),
    );
    let report = w.run(&api, &[redact]).await;
    assert_eq!(report.dispositions["redact"], Disposition::Compliance);
    assert_eq!(w.status(1).await, None);
    assert!(
        w.profiles
            .get_profiles(SHOP, 1, w.now)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn test_orders_and_expired_events_are_skipped_with_their_labels() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let mut test_order = order_body(2, w.now);
    test_order["test"] = json!(true);
    let mut old = order_body(3, w.now);
    old["created_at"] = json!((w.now - chrono::Duration::days(10)).to_rfc3339());
    let batch = [
        message("test", 1, &webhook(Topic::OrdersCreate, &test_order, w.now)),
        message("old", 1, &webhook(Topic::OrdersCreate, &old, w.now)),
    ];
    let report = w.run(&api, &batch).await;
    assert_eq!(report.counts.skipped.get("test_order"), Some(&1));
    assert_eq!(report.counts.skipped.get("expired"), Some(&1));
    assert_eq!(report.counts.expired, 1);
    assert!(
        w.dead_letters().is_empty(),
        "an expired event pages no one as a dead letter"
    );
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn a_late_payment_of_an_order_sent_before_is_deduplicated_not_expired() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let created = w.now - chrono::Duration::days(8);
    let mut body = order_body(1, w.now);
    body["created_at"] = json!(created.to_rfc3339());
    // orders/create was sent 8 days ago, when the order was fresh.
    let (_, request) =
        claim_elsewhere(&w, 1, created, created + chrono::Duration::seconds(30)).await;
    let sent = crate::idempotency::Settlement::Settled(crate::idempotency::Settled::Sent(
        crate::idempotency::SentFacts::default(),
    ));
    w.store
        .settle(&request.key, &request.holder, &sent, created)
        .await
        .unwrap();
    let paid = message("paid-1", 1, &webhook(Topic::OrdersPaid, &body, w.now));
    let report = w.run(&api, &[paid]).await;
    assert_eq!(report.dispositions["paid-1"], Disposition::Deduplicated);
    assert!(w.dead_letters().is_empty());
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn an_old_event_never_sent_is_skipped_as_expired_and_its_key_released() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let mut body = order_body(1, w.now);
    body["created_at"] = json!((w.now - chrono::Duration::days(8)).to_rfc3339());
    let m = message("o-1", 1, &webhook(Topic::OrdersCreate, &body, w.now));
    let report = w.run(&api, &[m]).await;
    assert_eq!(
        report.dispositions["o-1"],
        Disposition::Skipped(SkipReason::Expired { days: 8 })
    );
    assert_eq!(w.status(1).await, Some(State::Skipped));
    assert!(w.dead_letters().is_empty());
}

#[tokio::test]
async fn a_browser_event_pinterest_refuses_is_skipped_not_dead_lettered() {
    let w = World::new();
    let api = ScriptedApi::new(|events| {
        Ok(vec![
            EventStatus::Failed {
                error_message: "invalid value".into(),
            };
            events.len()
        ])
    });
    let received = json!({
        "event": {
            "v": 1, "shop": SHOP, "event": "add_to_cart", "event_id": "atc-1",
            "timestamp": w.now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "consent": {"marketing": true},
            "custom": {"value": "9.99", "currency": "USD"}
        },
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0"
    });
    let envelope = browser_envelope(&w, "add_to_cart", "atc-1", &received);
    let report = w.run(&api, &[message("atc", 1, &envelope)]).await;
    assert_eq!(
        report.dispositions["atc"],
        Disposition::Skipped(SkipReason::BrowserEventRejected("invalid value".into()))
    );
    assert!(w.dead_letters().is_empty());
    assert_eq!(
        report.counts.skipped.get("browser_event_rejected"),
        Some(&1)
    );
}

#[tokio::test]
async fn a_signed_order_body_replayed_as_shop_redact_deletes_nothing() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[order(&w, 1)]).await;
    let replayed = message(
        "replayed",
        1,
        &webhook(Topic::ShopRedact, &order_body(1, w.now), w.now),
    );
    let report = w.run(&api, &[replayed]).await;
    assert!(
        matches!(
            &report.dispositions["replayed"],
            Disposition::DeadLettered(DeadLetterReason::ComplianceMismatch(_))
        ),
        "{:?}",
        report.dispositions
    );
    assert_eq!(w.status(1).await, Some(State::Sent), "nothing deleted");
    assert_eq!(
        w.dead_letters()[0].1.split(':').next(),
        Some("compliance_mismatch")
    );
}

#[tokio::test]
async fn a_forged_checkout_after_the_genuine_one_does_not_replace_its_profile() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    w.run(&api, &[browser_checkout(&w, 1, true, TOKEN)]).await;
    let forged = browser_checkout(&w, 1, false, "forged-token");
    let report = w.run(&api, &[forged]).await;
    assert_eq!(
        report.dispositions["b-1"],
        Disposition::ProfileRecorded,
        "kept apart, under its own token"
    );
    let reload = browser_checkout(&w, 1, false, TOKEN);
    assert_eq!(
        w.run(&api, &[reload]).await.dispositions["b-1"],
        Disposition::Skipped(SkipReason::ProfileConflict),
        "a second record with the order's token (a reload, or a forgery of it) keeps the first"
    );
    w.run(&api, &[order(&w, 1)]).await;
    let sent = api.sent();
    assert_eq!(
        sent[0].user_data.click_id.as_deref(),
        Some("dj0yJnU9browser")
    );
    assert_eq!(sent[0].opt_out, None, "the forged refusal did not apply");
}

#[tokio::test]
async fn a_forged_refusal_posted_before_the_shoppers_own_does_not_lift_the_refusal() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    // A forged checkout record with marketing consent, for a guessed order id, posted first.
    let forged = browser_checkout(&w, 1, true, "guessed-token");
    assert_eq!(
        w.run(&api, &[forged]).await.dispositions["b-1"],
        Disposition::ProfileRecorded
    );
    // The shopper's own consent-only record (a refusal) arrives next: it is kept too.
    let refusal = browser_checkout(&w, 1, false, TOKEN);
    assert_eq!(
        w.run(&api, &[refusal]).await.dispositions["b-1"],
        Disposition::ProfileRecorded
    );
    w.run(&api, &[order(&w, 1)]).await;
    let sent = api.sent();
    assert_eq!(sent[0].opt_out, Some(true), "the shopper's refusal applies");
    assert_eq!(
        sent[0].user_data.click_id, None,
        "nothing of the forged record"
    );
}

#[tokio::test]
async fn with_checkout_event_id_shopify_event_the_order_takes_its_pixel_records_id_once() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let config = DispatchConfig {
        options: crate::mapping::Options {
            checkout_event_id: crate::mapping::CheckoutEventId::ShopifyEvent,
            ..crate::mapping::Options::default()
        },
        ..World::config()
    };
    let mut checkout = browser_checkout(&w, 1, true, TOKEN);
    let mut body: Value = serde_json::from_str(&checkout.body).unwrap();
    body["event"]["order"]["shopify_event_id"] = json!("sh-evt-42");
    checkout.body = body.to_string();
    w.run_with(&api, config.clone(), &[checkout]).await;
    let paid = message(
        "p-1",
        1,
        &webhook(Topic::OrdersPaid, &order_body(1, w.now), w.now),
    );
    let report = w
        .run_with(&api, config.clone(), &[order(&w, 1), paid])
        .await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(api.requests(), [["sh-evt-42"]]);
    assert_eq!(
        w.record(1).await.unwrap().event_id.as_deref(),
        Some("sh-evt-42")
    );
    // A backfill of the same order is the same record: nothing more is sent.
    let body = order_body(1, w.now).to_string().into_bytes();
    let backfill = message(
        "bf-1",
        1,
        &Envelope::backfill(SHOP, 1, "2026-07", body, w.now),
    );
    let report = w.run_with(&api, config.clone(), &[backfill]).await;
    assert_eq!(report.counts.deduplicated, 1);
    assert_eq!(api.requests().len(), 1);
    // An order without a pixel record goes out once with its order id, counted.
    let report = w.run_with(&api, config, &[order(&w, 2)]).await;
    assert_eq!(report.counts.event_id_fallbacks, 1);
    assert_eq!(api.requests()[1], ["2"]);
}

#[tokio::test]
async fn a_slow_pinterest_and_a_near_deadline_hand_the_rest_back_in_time() {
    let w = World::new();
    let api = ScriptedApi {
        delay: Duration::from_millis(150),
        ..ScriptedApi::accepting()
    };
    let config = DispatchConfig {
        max_batch_events: 1,
        request_timeout: Duration::from_millis(200),
        deadline_margin: Duration::from_millis(50),
        ..World::config()
    };
    let batch: Vec<_> = (1..=5).map(|id| order(&w, id)).collect();
    let deadline = w.now + chrono::Duration::milliseconds(500);
    let started = std::time::Instant::now();
    let report = w
        .dispatcher(&api, config.clone())
        .dispatch(&batch, w.now, deadline)
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "returned in time"
    );
    let sent = api.sent().len();
    assert!(
        (1..5).contains(&sent),
        "some sent, some handed back: {sent}"
    );
    assert_eq!(report.batch_item_failures.len(), 5 - sent);
    for id in &report.batch_item_failures {
        assert_eq!(report.dispositions[id], Disposition::Retry(Duration::ZERO));
    }
    // Their keys are released: the next delivery sends exactly the rest, none twice.
    let rest: Vec<_> = batch
        .iter()
        .filter(|m| report.batch_item_failures.contains(&m.id))
        .cloned()
        .collect();
    let later = w.now + chrono::Duration::seconds(1);
    w.dispatcher(&api, World::config())
        .dispatch(&rest, later, later + chrono::Duration::seconds(30))
        .await;
    let mut ids: Vec<_> = api.sent().into_iter().map(|e| e.event_id).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
}

#[tokio::test]
async fn locks_outlast_the_deadline_by_one_request_timeout() {
    let w = World::new();
    let api = ScriptedApi {
        delay: Duration::from_millis(1000),
        ..ScriptedApi::accepting()
    };
    let config = World::config();
    let deadline = w.now + chrono::Duration::seconds(30);
    let dispatcher = w.dispatcher(&api, config.clone());
    let batch = [order(&w, 1)];
    let (_, record) = tokio::join!(dispatcher.dispatch(&batch, w.now, deadline), async {
        // While the request is in flight.
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.store.get(&key(1)).await.unwrap()
    });
    let record = record.expect("locked while sending");
    assert_eq!(record.state, State::InProgress);
    let want = deadline + chrono::Duration::from_std(config.request_timeout).unwrap();
    assert_eq!(record.lock_until_ms, Some(want.timestamp_millis()));
}

// The record is the ledger: each order's outcome, read back as reconcile reads it.

async fn outcome(w: &World, order_id: u64) -> Option<(State, Option<crate::idempotency::Settled>)> {
    let found = w.store.get_many(&[key(order_id)], w.now).await.unwrap();
    found.into_iter().next().map(|r| (r.state, r.settled))
}

#[tokio::test]
async fn each_order_record_keeps_its_outcome_with_its_reason() {
    use crate::idempotency::{LetterFacts, SentFacts, Settled, SkipFacts};
    use crate::pinterest::MatchKeys;
    let w = World::new();
    // Order 2 is refused by Pinterest, 3 is a test order, 4 is a point-of-sale order.
    let api = ScriptedApi::new(|events| {
        Ok(events
            .iter()
            .map(|e| match e.event_id.as_str() {
                "2" => EventStatus::Failed {
                    error_message: "bad currency".into(),
                },
                _ => EventStatus::Processed { warning: None },
            })
            .collect())
    });
    let mut test_order = order_body(3, w.now);
    test_order["test"] = json!(true);
    let mut pos = order_body(4, w.now);
    pos["source_name"] = json!("pos");
    let batch = [
        order(&w, 1),
        order(&w, 2),
        message("o-3", 1, &webhook(Topic::OrdersCreate, &test_order, w.now)),
        message("o-4", 1, &webhook(Topic::OrdersCreate, &pos, w.now)),
    ];
    w.run(&api, &batch).await;

    assert_eq!(
        outcome(&w, 1).await,
        Some((
            State::Sent,
            Some(Settled::Sent(SentFacts {
                at: Some(w.now),
                match_keys: MatchKeys {
                    email: true,
                    ..MatchKeys::default()
                },
                value: Some("10.00".into()),
                currency: Some("USD".into()),
                ..SentFacts::default()
            }))
        ))
    );
    assert_eq!(
        w.record(1).await.unwrap().event_id.as_deref(),
        Some("1"),
        "the record keeps the event_id it chose"
    );
    let Some((State::DeadLettered, Some(Settled::DeadLettered(LetterFacts { reason, detail })))) =
        outcome(&w, 2).await
    else {
        panic!("order 2 is dead-lettered");
    };
    assert_eq!(reason, "pinterest_rejected");
    assert!(detail.contains("bad currency"), "{detail}");
    let Some((
        State::Skipped,
        Some(Settled::Skipped(SkipFacts {
            reason, by_rule, ..
        })),
    )) = outcome(&w, 3).await
    else {
        panic!("order 3 is skipped");
    };
    assert_eq!((reason.as_str(), by_rule), ("test_order", true));
    let Some((_, Some(Settled::Skipped(SkipFacts { reason, .. })))) = outcome(&w, 4).await else {
        panic!("order 4 is skipped");
    };
    assert_eq!(reason, "pos_order");
    assert_eq!(
        outcome(&w, 5).await,
        None,
        "an order never seen has no record"
    );
}

#[tokio::test]
async fn a_retried_order_is_pending_until_sent_and_a_duplicate_changes_nothing() {
    let w = World::new();
    let down = ScriptedApi::new(|_| Err(ConversionsApiError::Unavailable { status: 503 }));
    w.run(&down, &[order(&w, 1)]).await;
    let pending = w.record(1).await.unwrap();
    assert_eq!(pending.state, State::Pending);
    let retrying = pending.retrying.unwrap();
    assert_eq!(retrying.attempts, 1);
    assert!(
        retrying.last_error.contains("unavailable"),
        "{}",
        retrying.last_error
    );
    // A pending record does not stop the next delivery: it claims and sends.
    let up = ScriptedApi::accepting();
    w.run(
        &up,
        &[message(
            "o-1",
            2,
            &webhook(Topic::OrdersCreate, &order_body(1, w.now), w.now),
        )],
    )
    .await;
    assert_eq!(w.status(1).await, Some(State::Sent));
    // orders/paid of the same order is deduplicated; the record still says sent.
    let paid = message(
        "p-1",
        1,
        &webhook(Topic::OrdersPaid, &order_body(1, w.now), w.now),
    );
    let report = w.run(&up, &[paid]).await;
    assert_eq!(report.counts.deduplicated, 1);
    assert_eq!(w.status(1).await, Some(State::Sent));
}

#[tokio::test]
async fn an_expired_order_is_filed_as_a_lost_conversion() {
    use crate::idempotency::{Settled, SkipFacts};
    let w = World::new();
    let old = order_body(9, w.now - chrono::Duration::days(10));
    w.run(
        &ScriptedApi::accepting(),
        &[message(
            "o-9",
            1,
            &webhook(Topic::OrdersCreate, &old, w.now),
        )],
    )
    .await;
    let Some((
        State::Skipped,
        Some(Settled::Skipped(SkipFacts {
            reason, by_rule, ..
        })),
    )) = outcome(&w, 9).await
    else {
        panic!("order 9 is skipped");
    };
    assert_eq!((reason.as_str(), by_rule), ("expired", false));
}

// In doubt: a key whose holder stopped mid-send is never sent again on its own.

#[tokio::test]
async fn an_event_whose_holder_stopped_is_dead_lettered_in_doubt_and_never_resent_on_its_own() {
    let w = World::new();
    // An invocation claimed order 1 a minute ago and stopped before completing or releasing it.
    let crashed = w.now - chrono::Duration::seconds(90);
    let (claim, _) = claim_elsewhere(&w, 1, crashed, crashed + chrono::Duration::seconds(30)).await;
    assert!(matches!(claim, Claim::Acquired { .. }));

    let api = ScriptedApi::accepting();
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert!(api.requests().is_empty(), "nothing is sent while in doubt");
    assert!(report.batch_item_failures.is_empty());
    let dead = w.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.starts_with("in_doubt: "), "{}", dead[0].1);
    assert!(
        dead[0].1.contains("stopped"),
        "the cause is named: {}",
        dead[0].1
    );
    let letter = w.inbox.dead_messages.lock().unwrap()[0].clone();
    let relay = crate::queue::RelayFacts::of(&letter.attributes);
    assert_eq!((relay.in_doubt, relay.resend), (Some(1), None));
    let record = w.record(1).await.unwrap();
    assert_eq!((record.state, record.generation), (State::InDoubt, 1));
    let paid = message(
        "p-1",
        1,
        &webhook(Topic::OrdersPaid, &order_body(1, w.now), w.now),
    );
    assert_eq!(w.run(&api, &[paid]).await.counts.held_in_doubt, 1);
    assert!(api.requests().is_empty());

    // The letter put back as it is (SQS's own redrive): still nothing is sent.
    let redriven = Received {
        id: "x-1".into(),
        receive_count: 1,
        ..letter.clone()
    };
    assert_eq!(
        w.run(&api, std::slice::from_ref(&redriven))
            .await
            .dispositions["x-1"],
        Disposition::HeldInDoubt
    );

    // A human replays it (`pinrelay replay --in-doubt`): a resend of generation 1, sent once,
    // however often the replayed message is delivered.
    let mut attributes = letter.attributes.clone();
    attributes.remove(crate::queue::attr::DEAD_LETTER_REASON);
    crate::queue::RelayFacts {
        in_doubt: None,
        resend: Some(1),
        ..relay
    }
    .apply(&mut attributes);
    let replayed = Received {
        id: "r-1".into(),
        receive_count: 1,
        attributes,
        ..letter
    };
    let copy = Received {
        id: "r-2".into(),
        ..replayed.clone()
    };
    let report = w.run(&api, &[replayed.clone(), copy]).await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(api.requests(), vec![vec!["1".to_owned()]]);
    let again = Received {
        id: "r-3".into(),
        receive_count: 2,
        ..replayed
    };
    assert_eq!(w.run(&api, &[again]).await.counts.deduplicated, 1);
    assert_eq!(api.requests().len(), 1, "sent exactly once");
    assert_eq!(w.status(1).await, Some(State::Sent));
}

#[tokio::test]
async fn a_backfilled_order_is_sent_like_its_webhook_and_only_once() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let body = order_body(7, w.now).to_string().into_bytes();
    let backfill = Envelope::backfill(SHOP, 7, "2026-07", body, w.now);
    let m = message("b-7", 1, &backfill);
    let decoded = Envelope::decode(&m.body, &m.attributes, w.now).unwrap();
    assert_eq!(decoded.source, Source::Backfill);
    let report = w.run(&api, std::slice::from_ref(&m)).await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(
        api.requests(),
        vec![vec!["7".to_owned()]],
        "the webhook's event_id"
    );
    // Backfilled twice, or racing the late webhook: deduplicated.
    let again = w
        .run(
            &api,
            &[
                Received {
                    id: "b-7b".into(),
                    ..m
                },
                order(&w, 7),
            ],
        )
        .await;
    assert_eq!(again.counts.deduplicated, 2);
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn a_request_without_an_answer_leaves_its_orders_in_doubt_but_a_refused_connection_is_retried()
 {
    let w = World::new();
    let no_answer = ScriptedApi::new(|_| {
        Err(ConversionsApiError::NoAnswer(
            "operation timed out".to_owned().into(),
        ))
    });
    let report = w.run(&no_answer, &[order(&w, 1)]).await;
    assert!(report.batch_item_failures.is_empty());
    assert_eq!(report.counts.dead_lettered.get("in_doubt"), Some(&1));
    assert_eq!(w.status(1).await, Some(State::InDoubt));

    let refused = ScriptedApi::new(|_| {
        Err(ConversionsApiError::Transport(
            "connection refused".to_owned().into(),
        ))
    });
    let report = w.run(&refused, &[order(&w, 2)]).await;
    assert_eq!(
        report.batch_item_failures,
        ["o-2"],
        "nothing was sent: retried"
    );
    assert_eq!(w.status(2).await, Some(State::Pending));
}

#[tokio::test]
async fn with_resend_in_doubt_an_unanswered_or_abandoned_event_is_sent_again() {
    let w = World::new();
    let config = DispatchConfig {
        resend_in_doubt: true,
        ..World::config()
    };
    let no_answer = ScriptedApi::new(|_| {
        Err(ConversionsApiError::NoAnswer(
            "operation timed out".to_owned().into(),
        ))
    });
    let report = w
        .run_with(&no_answer, config.clone(), &[order(&w, 1)])
        .await;
    assert_eq!(
        report.batch_item_failures,
        ["o-1"],
        "retried, not dead-lettered"
    );
    assert_eq!(w.status(1).await, Some(State::Pending));

    let crashed = w.now - chrono::Duration::seconds(90);
    claim_elsewhere(&w, 2, crashed, crashed + chrono::Duration::seconds(30)).await;
    let api = ScriptedApi::accepting();
    let report = w.run_with(&api, config, &[order(&w, 2)]).await;
    assert_eq!(report.counts.processed, 1);
    assert!(w.dead_letters().is_empty());
}

#[tokio::test]
async fn an_in_doubt_event_whose_dead_letter_fails_keeps_its_lock_for_the_next_try() {
    let w = World::new();
    let crashed = w.now - chrono::Duration::seconds(90);
    claim_elsewhere(&w, 1, crashed, crashed + chrono::Duration::seconds(30)).await;
    w.inbox
        .refuse_dead_letters
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let api = ScriptedApi::accepting();
    let report = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(
        report.batch_item_failures,
        ["o-1"],
        "retried: the dead letter is not stored"
    );
    assert_eq!(
        w.status(1).await,
        Some(State::InProgress),
        "neither completed nor released"
    );
    assert!(api.requests().is_empty());

    // Later, the queue is back: the lock is found abandoned again and the dead letter stored.
    w.inbox
        .refuse_dead_letters
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let later = World {
        now: w.now + chrono::Duration::seconds(120),
        ..w
    };
    let report = later
        .run(
            &api,
            &[message(
                "o-1",
                2,
                &webhook(Topic::OrdersCreate, &order_body(1, later.now), later.now),
            )],
        )
        .await;
    assert_eq!(report.counts.dead_lettered.get("in_doubt"), Some(&1));
    assert_eq!(later.status(1).await, Some(State::InDoubt));
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn a_dead_letter_without_an_order_is_counted_and_its_reason_quotes_nothing() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let bad = message(
        "bad-1",
        1,
        &webhook(
            Topic::OrdersCreate,
            &json!({"id": "jane@example.com", "email": "jane@example.com"}),
            w.now,
        ),
    );
    let report = w.run(&api, &[bad]).await;
    assert_eq!(report.counts.dead_lettered.get("invalid_payload"), Some(&1));
    let (_, reason) = &w.dead_letters()[0];
    assert!(reason.starts_with("invalid_payload: "), "{reason}");
    assert!(
        !reason.contains("jane"),
        "no personal data in a reason: {reason}"
    );
    let day = w.now.date_naive();
    let counts = w.store.dead_letter_counts(SHOP, day, day).await.unwrap();
    assert_eq!(counts.get(&(day, "invalid_payload".to_owned())), Some(&1));
}

#[tokio::test]
async fn a_test_mode_send_never_stops_the_live_send_of_the_order() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let test_mode = DispatchConfig {
        mode: crate::idempotency::Mode::Test,
        ..World::config()
    };
    w.run_with(&api, test_mode.clone(), &[order(&w, 1)]).await;
    let record = w.record(1).await.unwrap();
    assert_eq!(
        record.sent().map(|s| s.mode),
        Some(crate::idempotency::Mode::Test)
    );
    // Another test-mode delivery is a duplicate; the first live one sends, once.
    let again = w.run_with(&api, test_mode, &[order(&w, 1)]).await;
    assert_eq!(again.counts.deduplicated, 1);
    let live = w.run(&api, &[order(&w, 1)]).await;
    assert_eq!(live.counts.processed, 1);
    assert_eq!(
        w.record(1).await.unwrap().sent().map(|s| s.mode),
        Some(crate::idempotency::Mode::Live)
    );
    assert_eq!(w.run(&api, &[order(&w, 1)]).await.counts.deduplicated, 1);
    assert_eq!(api.requests().len(), 2, "one test send, one live send");
}

#[tokio::test]
async fn under_checkout_on_paid_a_pending_order_waits_for_its_payment_then_is_sent_once() {
    let w = World::new();
    let api = ScriptedApi::accepting();
    let paid_rule = DispatchConfig {
        options: crate::mapping::Options {
            checkout_on: crate::mapping::CheckoutOn::Paid,
            ..crate::mapping::Options::default()
        },
        ..World::config()
    };
    let with_status = |id: u64, status: &str| {
        let mut body = order_body(id, w.now);
        body["financial_status"] = json!(status);
        body
    };
    let created = message(
        "c-1",
        1,
        &webhook(Topic::OrdersCreate, &with_status(1, "pending"), w.now),
    );
    let report = w.run_with(&api, paid_rule.clone(), &[created]).await;
    assert_eq!(report.counts.skipped.get("unpaid"), Some(&1));
    assert_eq!(w.status(1).await, Some(State::Skipped));
    assert!(api.requests().is_empty());
    let paid = |id: &str| {
        message(
            id,
            1,
            &webhook(Topic::OrdersPaid, &with_status(1, "paid"), w.now),
        )
    };
    let report = w
        .run_with(&api, paid_rule.clone(), &[paid("p-1"), paid("p-2")])
        .await;
    assert_eq!(report.counts.processed, 1);
    assert_eq!(report.counts.deduplicated, 1);
    assert_eq!(api.requests(), [["1"]]);
    // A refund after payment does not undo the purchase; a voided order is never sent.
    let refunded = message(
        "r-1",
        1,
        &webhook(Topic::OrdersPaid, &with_status(1, "refunded"), w.now),
    );
    assert_eq!(
        w.run_with(&api, paid_rule.clone(), &[refunded])
            .await
            .counts
            .deduplicated,
        1
    );
    for config in [paid_rule, World::config()] {
        let voided = message(
            "v-2",
            1,
            &webhook(Topic::OrdersCreate, &with_status(2, "voided"), w.now),
        );
        let report = w.run_with(&api, config, &[voided]).await;
        assert_eq!(report.counts.skipped.get("voided_order"), Some(&1));
    }
    // Under the default (created), a pending order is sent when it is placed.
    let pending = message(
        "c-3",
        1,
        &webhook(Topic::OrdersCreate, &with_status(3, "pending"), w.now),
    );
    assert_eq!(w.run(&api, &[pending]).await.counts.processed, 1);
    assert_eq!(api.requests().len(), 2);
}

#[tokio::test]
async fn a_consent_change_queues_a_recheck_with_a_ledger_and_is_skipped_without_one() {
    use crate::audiences::sqlite::SqliteAudienceStore;
    use crate::audiences::{AudienceStore as _, Recheck};

    let w = World::new();
    let api = ScriptedApi::accepting();
    let triggered = w.now - chrono::Duration::minutes(3);
    let mut envelope = webhook(
        Topic::CustomersEmailMarketingConsentUpdate,
        &json!({"customer_id": "gid://shopify/Customer/42"}),
        w.now,
    );
    envelope.metadata.triggered_at = Some(triggered);
    let consent = message("consent", 1, &envelope);
    let mut untimed = webhook(
        Topic::CustomersEmailMarketingConsentUpdate,
        &json!({"customer_id": 43}),
        w.now - chrono::Duration::minutes(1),
    );
    untimed.metadata.triggered_at = None;
    let untimed = message("untimed", 1, &untimed);
    let nobody = message(
        "nobody",
        1,
        &webhook(
            Topic::CustomersEmailMarketingConsentUpdate,
            &json!({"email_address": "a@b.co"}),
            w.now,
        ),
    );

    // Without an audience ledger: skipped with its reason.
    let report = w.run(&api, std::slice::from_ref(&consent)).await;
    assert_eq!(
        report.dispositions["consent"],
        Disposition::Skipped(SkipReason::NoAudienceLedger)
    );

    // With one: the re-check is queued at the webhook's time (else its receipt).
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteAudienceStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
    let report = w
        .dispatcher(&api, World::config())
        .with_audiences(Arc::new(ledger.clone()))
        .dispatch(
            &[consent, untimed, nobody],
            w.now,
            w.now + chrono::Duration::seconds(30),
        )
        .await;
    assert_eq!(report.dispositions["consent"], Disposition::Compliance);
    assert_eq!(report.dispositions["untimed"], Disposition::Compliance);
    assert_eq!(
        ledger.rechecks(SHOP).await.unwrap(),
        [
            Recheck {
                customer_id: 42,
                at: triggered
            },
            Recheck {
                customer_id: 43,
                at: w.now - chrono::Duration::minutes(1)
            }
        ]
    );
    // A body naming no customer is dead-lettered with its typed reason, quoting nothing.
    assert_eq!(
        report.dispositions["nobody"],
        Disposition::DeadLettered(DeadLetterReason::NoCustomerId {
            topic: "customers_email_marketing_consent/update".into()
        })
    );
    let dead = w.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.starts_with("no_customer_id: "), "{dead:?}");
    assert!(!dead[0].1.contains("a@b.co"));
    assert_eq!(api.requests().len(), 0, "never a Pinterest event");
}

#[tokio::test]
async fn a_deleted_customer_is_queued_for_removal_and_for_a_recheck() {
    use crate::audiences::sqlite::SqliteAudienceStore;
    use crate::audiences::{AudienceStore as _, Recheck};

    let w = World::new();
    let api = ScriptedApi::accepting();
    let deleted = message(
        "deleted",
        1,
        &webhook(Topic::CustomersDelete, &json!({"id": 77}), w.now),
    );
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteAudienceStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
    let report = w
        .dispatcher(&api, World::config())
        .with_audiences(Arc::new(ledger.clone()))
        .dispatch(&[deleted], w.now, w.now + chrono::Duration::seconds(30))
        .await;
    assert_eq!(report.dispositions["deleted"], Disposition::Compliance);
    // Never uploaded, so nothing to remove; the re-check is what keeps a run reading an older
    // snapshot from adding them.
    assert_eq!(
        ledger.rechecks(SHOP).await.unwrap(),
        [Recheck {
            customer_id: 77,
            at: w.now
        }]
    );
}
