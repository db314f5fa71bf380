//! Checks every [`Queue`]/[`Inbox`] pair must pass (SQLite in unit tests, SQS on moto in the
//! integration tests), through a small [`Harness`] that plays the consumer's part.

#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Envelope, Inbox, MAX_MESSAGE_BYTES, Queue, Received, Source, attr};
use crate::shopify::{Topic, WebhookMetadata};

/// The consumer's side of a queue: what the Lambda event source mapping (or `pinrelay serve`'s
/// loop) does, which the ports leave out.
pub trait Harness: Sync {
    /// Ingest's port.
    type Queue: Queue;
    /// Dispatch's port.
    type Inbox: Inbox;
    fn queue(&self) -> &Self::Queue;
    fn inbox(&self) -> &Self::Inbox;
    /// Receives what is visible now (at most 10), hiding it for `visibility`.
    fn receive(&self, visibility: Duration) -> impl Future<Output = Vec<Received>> + Send;
    /// Acknowledges (deletes) a settled message.
    fn delete(&self, message: &Received) -> impl Future<Output = ()> + Send;
    /// The dead letters, drained: each body with its attributes.
    fn dead_letters(&self) -> impl Future<Output = Vec<(String, HashMap<String, String>)>> + Send;
}

const VISIBILITY: Duration = Duration::from_secs(30);

fn envelope(body: Vec<u8>, now: DateTime<Utc>) -> Envelope {
    Envelope {
        source: Source::Webhook,
        metadata: WebhookMetadata {
            topic: Topic::OrdersCreate,
            shop_domain: "contract.myshopify.com".into(),
            webhook_id: Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()),
            event_id: Some("9d5ab8ec-18bd-4c43-82a6-1c4b9e5e9c55".into()),
            triggered_at: None,
            api_version: Some("2026-07".into()),
        },
        received_at: now,
        body,
    }
}

async fn send_and_receive<H: Harness>(h: &H, e: &Envelope) -> Received {
    let encoded = e
        .encode(MAX_MESSAGE_BYTES, Duration::ZERO)
        .unwrap_or_else(|err| panic!("{err}"));
    h.queue()
        .send(&encoded)
        .await
        .unwrap_or_else(|err| panic!("send: {err}"));
    let mut got = h.receive(VISIBILITY).await;
    assert_eq!(got.len(), 1, "exactly the message sent");
    let m = got.remove(0);
    let sent: BTreeMap<_, _> = encoded.attributes.into_iter().collect();
    let received: BTreeMap<_, _> = m.attributes.clone().into_iter().collect();
    assert_eq!(received, sent, "every attribute arrives as sent");
    assert_eq!(m.body, encoded.body);
    assert_eq!(m.receive_count, 1);
    m
}

/// A message arrives with its body and attributes, decodes to the envelope sent, and is gone once
/// acknowledged.
pub async fn a_sent_message_arrives_whole<H: Harness>(h: &H) {
    let now = Utc::now();
    let e = envelope(
        br#"{"id":450789469,"email":"bob@example.com"}"#.to_vec(),
        now,
    );
    let m = send_and_receive(h, &e).await;
    let decoded =
        Envelope::decode(&m.body, &m.attributes, now).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(decoded.body, e.body);
    assert_eq!(decoded.metadata, e.metadata);
    h.delete(&m).await;
    assert!(h.receive(VISIBILITY).await.is_empty());
}

/// A body over the compression threshold comes back byte for byte.
pub async fn a_compressed_body_round_trips<H: Harness>(h: &H) {
    let now = Utc::now();
    let items: Vec<String> = (0..3000)
        .map(|i| format!(r#"{{"id":{i},"title":"Item {i}","price":"{i}.99"}}"#))
        .collect();
    let body = format!(r#"{{"id":1,"line_items":[{}]}}"#, items.join(",")).into_bytes();
    assert!(body.len() > super::COMPRESS_THRESHOLD);
    let m = send_and_receive(h, &envelope(body.clone(), now)).await;
    let decoded =
        Envelope::decode(&m.body, &m.attributes, now).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(decoded.body, body);
    h.delete(&m).await;
}

/// A dead letter keeps the body and attributes and adds its reason, replacing an older one; once
/// the original is acknowledged, nothing is left to receive.
pub async fn a_dead_letter_keeps_the_message_and_its_latest_reason<H: Harness>(h: &H) {
    let now = Utc::now();
    let m = send_and_receive(h, &envelope(br#"{"id":1}"#.to_vec(), now)).await;
    let mut replayed = m.clone();
    replayed.attributes.insert(
        attr::DEAD_LETTER_REASON.into(),
        "expired: an older reason".into(),
    );
    let reason = "pinterest_rejected: currency is not ISO 4217";
    h.inbox()
        .dead_letter(&replayed, reason)
        .await
        .unwrap_or_else(|err| panic!("dead_letter: {err}"));
    h.delete(&m).await;
    let letters = h.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let (body, attributes) = &letters[0];
    assert_eq!(body, &m.body);
    assert_eq!(attributes[attr::DEAD_LETTER_REASON], reason);
    for (k, v) in &m.attributes {
        assert_eq!(attributes.get(k), Some(v), "attribute {k} kept");
    }
    assert!(h.receive(VISIBILITY).await.is_empty());
}

/// A retry delay hides the message; a zero delay hands it back at once, one delivery later.
pub async fn retry_after_sets_the_next_delivery<H: Harness>(h: &H) {
    let now = Utc::now();
    let m = send_and_receive(h, &envelope(br#"{"id":2}"#.to_vec(), now)).await;
    h.inbox()
        .retry_after(&m, Duration::ZERO)
        .await
        .unwrap_or_else(|err| panic!("retry_after: {err}"));
    let again = h.receive(VISIBILITY).await;
    assert_eq!(again.len(), 1, "visible again after a zero delay");
    assert_eq!(again[0].id, m.id);
    assert_eq!(again[0].receive_count, 2);
    h.inbox()
        .retry_after(&again[0], Duration::from_secs(600))
        .await
        .unwrap_or_else(|err| panic!("retry_after: {err}"));
    assert!(
        h.receive(VISIBILITY).await.is_empty(),
        "hidden for the delay"
    );
}

/// SQS's limits hold on every adapter, named in the error: more than 10 attributes, a message over
/// the queue's size, and a dead letter whose reason would be an eleventh attribute are refused
/// before anything is stored; a batch of dead letters larger than one request goes in several.
pub async fn the_queues_limits_are_enforced_and_named<H: Harness>(h: &H) {
    use super::{EncodedMessage, Letter, Limit, QueueError};
    let now = Utc::now();
    let good = envelope(br#"{"id":3}"#.to_vec(), now)
        .encode(MAX_MESSAGE_BYTES, Duration::ZERO)
        .unwrap_or_else(|err| panic!("{err}"));
    let mut crowded = good.clone();
    for i in 0..(super::MAX_ATTRIBUTES + 1 - crowded.attributes.len()) {
        crowded.attributes.insert(format!("x-{i}"), "v".into());
    }
    match h.queue().send(&crowded).await {
        Err(QueueError::Limit(Limit::Attributes { count: 11 })) => {}
        other => panic!("11 attributes must be refused by name, got {other:?}"),
    }
    let huge = EncodedMessage {
        body: "x".repeat(MAX_MESSAGE_BYTES),
        ..good.clone()
    };
    match h.queue().send(&huge).await {
        Err(e @ QueueError::Limit(Limit::MessageSize { .. })) => {
            assert!(e.to_string().contains("maximum message size"), "{e}");
        }
        other => panic!("an oversized message must be refused, got {other:?}"),
    }
    assert!(h.receive(VISIBILITY).await.is_empty(), "nothing was stored");

    // A received message with 10 attributes cannot take a dead-letter reason.
    let m = send_and_receive(h, &envelope(br#"{"id":4}"#.to_vec(), now)).await;
    let mut full = m.clone();
    for i in 0..(super::MAX_ATTRIBUTES - full.attributes.len()) {
        full.attributes.insert(format!("x-{i}"), "v".into());
    }
    let results = h
        .inbox()
        .dead_letter_many(&[
            Letter {
                message: &full,
                reason: "pinterest_rejected: no",
                relay: None,
            },
            Letter {
                message: &m,
                reason: "pinterest_rejected: no",
                relay: None,
            },
        ])
        .await;
    assert!(
        matches!(
            results[0],
            Err(QueueError::Limit(Limit::Attributes { count: 11 }))
        ),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok(), "{:?}", results[1]);
    h.delete(&m).await;
    assert_eq!(h.dead_letters().await.len(), 1);
}
