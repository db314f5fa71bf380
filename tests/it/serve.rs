//! `pinrelay serve` end to end: the real binary, signed webhooks over HTTP, the fake Pinterest as
//! the target, SQLite under a temporary data directory.
//!
//! - durability: 1,000 distinct orders posted 32 at a time while the relay is SIGKILLed part-way,
//!   then restarted on the same data directory: the events whose request was in flight at the kill
//!   are dead-lettered `in_doubt` and never resent on their own; once replayed, every order answered
//!   200 has reached Pinterest exactly once, and no order twice;
//! - the same order posted three times, concurrently, becomes one event;
//! - Pinterest failing with 500 twice, then recovering: the event is delivered once;
//! - a bad signature is answered 401 and nothing is stored.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use pinrelay::queue::sqlite::SqliteQueue;
use serde_json::Value;

use crate::fake_pinterest::{Failure, FakePinterest};
use crate::relay::Relay;

const SECRET: &str = "serve-test-secret";
const SHOP: &str = "serve-test.myshopify.com";
const ORDER_FIXTURE: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";

/// Short enough that orders in flight when the relay is killed come back within the test.
const VISIBILITY_TIMEOUT_MS: &str = "6000";

/// The relay on `data_dir`, logging to `log_name` next to it.
fn start(data_dir: &Path, fake: &FakePinterest, log_name: &str) -> Relay {
    Relay::start(
        data_dir,
        data_dir.with_file_name(log_name),
        SECRET,
        fake,
        &[
            ("PINRELAY_RETRY_BASE_MS", "100"),
            ("PINRELAY_VISIBILITY_TIMEOUT_MS", VISIBILITY_TIMEOUT_MS),
        ],
    )
}

/// The REST order fixture as order `id`, created now (so it is not expired).
fn order(id: u64) -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&crate::helpers::fixture(ORDER_FIXTURE)).unwrap();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = id.into();
    order["name"] = format!("#{id}").into();
    order["created_at"] = now.clone().into();
    order["processed_at"] = now.into();
    serde_json::to_vec(&order).unwrap()
}

/// Posts an `orders/create` webhook signed with `secret`; `Err` when no answer came.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    webhook_id: &str,
    secret: &str,
) -> Result<u16, reqwest::Error> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header(
            "X-Shopify-Hmac-Sha256",
            pinrelay::shopify::sign(secret.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

fn counts(ids: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    counts
}

async fn wait_for_events(fake: &FakePinterest, expected: &BTreeSet<String>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let accepted: BTreeSet<String> = fake.accepted_event_ids().into_iter().collect();
        if expected.is_subset(&accepted) {
            return;
        }
        let missing = expected.difference(&accepted).count();
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged orders never reached Pinterest"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `condition` every 10 ms until it holds or `within` passes.
async fn until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Posts orders `ids` from `concurrency` connections; returns the handles of the posting tasks.
/// Each order answered is added to `acked`; one without an answer (the relay was killed) is not.
fn post_orders(
    url: &str,
    ids: std::ops::Range<u64>,
    concurrency: usize,
    acked: &Arc<Mutex<BTreeSet<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    let ids: Arc<Vec<u64>> = Arc::new(ids.collect());
    let client = reqwest::Client::new();
    (0..concurrency)
        .map(|_| {
            let (next, ids, acked, client, url) = (
                next.clone(),
                ids.clone(),
                acked.clone(),
                client.clone(),
                url.to_owned(),
            );
            tokio::spawn(async move {
                while let Some(&id) = ids.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let status = post(&client, &url, &order(id), &format!("w-{id}"), SECRET).await;
                    if let Ok(status) = status {
                        assert_eq!(status, 200, "order {id} answered {status}");
                        acked.lock().unwrap().insert(id.to_string());
                    }
                }
            })
        })
        .collect()
}

/// The kill lands while webhooks are being posted and a dispatch batch is claimed with its
/// Pinterest request in flight (the fake holds it: [`Failure::Timeout`]), after earlier orders were
/// delivered and settled. The events of that request are in doubt after the restart: they are
/// dead-lettered `in_doubt`, not resent, until the test replays them as a human would; then every
/// acknowledged order has been sent exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_order_survives_a_sigkill_and_is_sent_exactly_once() {
    const FIRST: u64 = 7_000_000;
    const ORDERS: u64 = 1000;
    const DELIVERED_FIRST: u64 = 100;
    const KILL_AFTER: usize = 400;
    const CONCURRENCY: usize = 32;
    let wait = Duration::from_secs(30);
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut relay = start(&data_dir, &fake, "first.log");
    let url = relay.webhook_url();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let acked_count = || acked.lock().unwrap().len();

    // The first 100 orders are delivered and settled before the kill: they must not be resent.
    for task in post_orders(&url, FIRST..FIRST + DELIVERED_FIRST, CONCURRENCY, &acked) {
        task.await.unwrap();
    }
    let first: BTreeSet<String> = acked.lock().unwrap().clone();
    wait_for_events(&fake, &first, wait).await;
    relay.drained(wait).await;

    // The other 900 are posted while the next batch hangs at Pinterest, then the relay is killed.
    fake.fail_next(1, Failure::Timeout);
    let posting = post_orders(
        &url,
        FIRST + DELIVERED_FIRST..FIRST + ORDERS,
        CONCURRENCY,
        &acked,
    );
    until(
        "a dispatch batch in flight and 400 orders acknowledged",
        wait,
        || fake.requests().iter().any(|r| r.status == 0) && acked_count() >= KILL_AFTER,
    )
    .await;
    relay.child.kill().unwrap(); // SIGKILL
    relay.child.wait().unwrap();
    let delivered_before_kill = fake.accepted_event_ids().len();
    for task in posting {
        task.await.unwrap();
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() < ORDERS as usize,
        "every order was answered before the kill; the test needs posts in flight"
    );

    let relay = start(&data_dir, &fake, "second.log");
    // The events of the request hanging at Pinterest when the relay was killed are in doubt (the
    // relay cannot know whether Pinterest got them): once their locks expire they are
    // dead-lettered as `in_doubt`, never resent on their own. Everything else is sent.
    let hung: BTreeSet<String> = fake
        .requests()
        .iter()
        .filter(|r| r.status == 0)
        .flat_map(|r| r.event_ids.clone())
        .collect();
    assert!(
        !hung.is_empty(),
        "the kill landed during a Pinterest request"
    );
    let queue = SqliteQueue::open_in(&data_dir).unwrap();
    let in_doubt = || async {
        let letters = queue.dead_letters().await.unwrap();
        assert!(
            letters.iter().all(|d| d.reason.starts_with("in_doubt: ")),
            "only in-doubt dead letters: {letters:?}"
        );
        letters
            .iter()
            .filter_map(|d| {
                d.webhook_id
                    .as_deref()?
                    .strip_prefix("w-")
                    .map(str::to_owned)
            })
            .collect::<BTreeSet<String>>()
    };
    let deadline = Instant::now() + wait;
    while !hung.is_subset(&in_doubt().await) {
        assert!(
            Instant::now() < deadline,
            "the hung events were not dead-lettered in doubt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doubted = in_doubt().await;
    let sure: BTreeSet<String> = acked.difference(&doubted).cloned().collect();
    wait_for_events(&fake, &sure, wait).await;
    relay.drained(wait).await;
    let before_replay = fake.accepted_event_ids();
    assert!(
        before_replay.iter().all(|id| !doubted.contains(id)),
        "an in-doubt event was resent without a replay"
    );

    // The letters put back as they are (a raw requeue) send nothing: the events are in doubt.
    let letters = queue.dead_letters().await.unwrap();
    assert_eq!(
        queue.requeue_dead_letters().await.unwrap(),
        doubted.len() as u64
    );
    relay.drained(wait).await;
    assert_eq!(fake.accepted_event_ids(), before_replay, "held in doubt");
    assert!(queue.dead_letters().await.unwrap().is_empty());

    // A human replays them (`pinrelay replay --in-doubt`, twice): each is sent, once. The letters
    // are restored first, as a human would find them in the dead-letter queue.
    for letter in &letters {
        let mut attributes = letter.attributes.clone();
        attributes.insert(
            pinrelay::queue::attr::DEAD_LETTER_REASON.into(),
            letter.reason.clone(),
        );
        let message = pinrelay::queue::Received {
            id: format!("restored-{}", letter.id),
            receipt: String::new(),
            receive_count: 1,
            body: letter.body.clone(),
            attributes,
        };
        pinrelay::queue::Inbox::dead_letter(&queue, &message, &letter.reason)
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let out = std::process::Command::new(crate::subscribe::pinrelay_bin())
            .args(["replay", "--in-doubt", "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for_events(&fake, &acked, wait).await;
    relay.drained(wait).await;

    let accepted = fake.accepted_event_ids();
    let counts = counts(&accepted);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    for id in &acked {
        assert_eq!(counts.get(id.as_str()), Some(&1), "order {id}");
    }
    // Orders whose answer was lost to the kill may have been committed: sent once or not at all.
    let posted: BTreeSet<String> = (FIRST..FIRST + ORDERS).map(|n| n.to_string()).collect();
    assert!(counts.keys().all(|id| posted.contains(*id)));
    assert!(
        fake.schema_errors().is_empty(),
        "{:?}",
        fake.schema_errors()
    );
    eprintln!(
        "durability: {} of {ORDERS} orders acknowledged, {delivered_before_kill} delivered before the SIGKILL, {} in doubt until replayed, {} delivered in total, none twice",
        acked.len(),
        doubted.len(),
        accepted.len()
    );
    assert!(relay.terminate().success());
}

#[tokio::test]
async fn the_same_order_posted_three_times_at_once_is_sent_once() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&dir.path().join("data"), &fake, "serve.log");
    let client = reqwest::Client::new();
    let body = order(8_000_001);
    let url = relay.webhook_url();
    let posts = (0..3).map(|i| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move { post(&client, &url, &body, &format!("dup-{i}"), SECRET).await })
    });
    for p in posts {
        assert_eq!(p.await.unwrap().unwrap(), 200);
    }
    relay.drained(Duration::from_secs(20)).await;
    assert_eq!(fake.accepted_event_ids(), ["8000001"]);
    let metrics = relay.metrics().await;
    assert_eq!(metrics.get("EventsProcessed"), Some(&1.0), "{metrics:?}");
    assert_eq!(metrics.get("EventsDeduplicated"), Some(&2.0), "{metrics:?}");
    assert!(relay.terminate().success());
}

#[tokio::test]
async fn an_order_is_delivered_once_after_pinterest_fails_then_recovers() {
    let fake = FakePinterest::start().await;
    fake.fail_next(2, Failure::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let relay = start(&dir.path().join("data"), &fake, "serve.log");
    let client = reqwest::Client::new();
    let status = post(
        &client,
        &relay.webhook_url(),
        &order(8_000_002),
        "w-1",
        SECRET,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(20)).await;
    assert_eq!(fake.accepted_event_ids(), ["8000002"]);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    let metrics = relay.metrics().await;
    assert_eq!(metrics.get("EventsRetried"), Some(&2.0), "{metrics:?}");
    assert_eq!(metrics.get("EventsProcessed"), Some(&1.0), "{metrics:?}");
    assert!(relay.terminate().success());
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let relay = start(&data_dir, &fake, "serve.log");
    let client = reqwest::Client::new();
    let status = post(
        &client,
        &relay.webhook_url(),
        &order(8_000_003),
        "w-1",
        "not-the-secret",
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let health = relay.health().await;
    assert_eq!(health["pending"], 0, "{health}");
    let metrics = relay.metrics().await;
    assert_eq!(
        metrics.get("WebhooksRejected{Reason=bad_signature}"),
        Some(&1.0)
    );
    assert_eq!(metrics.get("WebhooksEnqueued"), None);
    assert!(relay.terminate().success());
    // Read the database the relay left behind.
    let queue = SqliteQueue::open_in(&data_dir).unwrap();
    let depth = queue.depth(Utc::now()).await.unwrap();
    assert_eq!((depth.pending, depth.dead_letters), (0, 0));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_second_relay_on_the_same_data_dir_refuses_to_start() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let _first = start(&data_dir, &fake, "first.log");
    let second = std::process::Command::new(crate::subscribe::pinrelay_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("SHOPIFY_WEBHOOK_SECRETS", SECRET)
        .env_remove("PINTEREST_ACCESS_TOKEN")
        .env_remove("PINTEREST_AD_ACCOUNT_ID")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another pinrelay serve is running"), "{err}");
}
