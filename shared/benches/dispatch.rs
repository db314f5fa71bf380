//! Dispatch CPU per event, without network: decode 100 queue messages carrying fixture orders,
//! translate each into a Pinterest event, and serialize the one request body they make.
//!
//! Also the CPU that shopper profiles add to an order: reading its checkout token and applying a
//! profile ([`pinrelay::profile`]).
//!
//! Run with `cargo bench -p pinrelay --bench dispatch`; criterion reports the time per batch of
//! 100 and the throughput in events per second.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pinrelay::browser::{Consent, Profile};
use pinrelay::mapping::{self, Options, Outcome};
use pinrelay::pinterest::EventBatch;
use pinrelay::pinterest::normalize;
use pinrelay::profile::{self, ConsentPolicy};
use pinrelay::queue::{Envelope, MAX_MESSAGE_BYTES, Source};
use pinrelay::shopify::{Topic, WebhookMetadata};

const ORDER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
));
const BATCH: usize = 100;

/// 100 messages (body and attributes) as dispatch receives them.
fn messages(now: DateTime<Utc>) -> Vec<(String, HashMap<String, String>)> {
    let template: serde_json::Value = serde_json::from_str(ORDER).expect("fixture is JSON");
    let created = (now - chrono::Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    (0..BATCH)
        .map(|i| {
            let mut order = template.clone();
            order["id"] = serde_json::json!(1_000_000 + i);
            for field in ["created_at", "processed_at", "updated_at"] {
                order[field] = serde_json::json!(created);
            }
            let envelope = Envelope {
                source: Source::Webhook,
                metadata: WebhookMetadata {
                    topic: Topic::OrdersCreate,
                    shop_domain: "example.myshopify.com".into(),
                    webhook_id: Some(format!("webhook-{i}")),
                    event_id: None,
                    triggered_at: Some(now),
                    api_version: Some("2026-07".into()),
                },
                received_at: now,
                body: serde_json::to_vec(&order).expect("serializable"),
            };
            let m = envelope
                .encode(MAX_MESSAGE_BYTES, Duration::ZERO)
                .expect("fits");
            (m.body, m.attributes.into_iter().collect())
        })
        .collect()
}

fn dispatch_cpu(c: &mut Criterion) {
    let now = Utc::now();
    let options = Options::default();
    let batch = messages(now);
    // The bench measures the send path: make sure every message really becomes an event.
    let sendable = batch
        .iter()
        .filter(|(body, attrs)| {
            let e = Envelope::decode(body, attrs, now).expect("decodes");
            matches!(
                mapping::translate(&e.metadata, &e.body, &options, now),
                Ok(Outcome::Send(_))
            )
        })
        .count();
    assert_eq!(
        sendable, BATCH,
        "every fixture order must translate to an event"
    );

    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("decode_translate_serialize_100_orders", |b| {
        b.iter(|| {
            let mut data = Vec::with_capacity(BATCH);
            for (body, attrs) in &batch {
                let Ok(envelope) = Envelope::decode(black_box(body), attrs, now) else {
                    continue;
                };
                if let Ok(Outcome::Send(conversion)) =
                    mapping::translate(&envelope.metadata, &envelope.body, &options, now)
                {
                    data.push(conversion.event);
                }
            }
            let body = serde_json::to_vec(&EventBatch { data }).unwrap_or_default();
            black_box(body)
        })
    });
    group.finish();
}

/// What enrichment costs per order on top of the send path: [`profile::apply`] (the checkout token
/// comes with the translated order); the profile read itself is one store round trip.
fn profile_cpu(c: &mut Criterion) {
    let now = Utc::now();
    let (body, attrs) = messages(now).swap_remove(0);
    let envelope = Envelope::decode(&body, &attrs, now).expect("decodes");
    let Ok(Outcome::Send(conversion)) =
        mapping::translate(&envelope.metadata, &envelope.body, &Options::default(), now)
    else {
        panic!("the fixture order translates to an event");
    };
    let token = conversion
        .order
        .as_ref()
        .and_then(|o| o.checkout_token.clone())
        .expect("the fixture has a token");
    let event = conversion.event;
    let recorded = Profile {
        click_id: Some("dj0yJnU9abc".into()),
        client_ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        consent: Consent {
            marketing: Some(true),
            sale_of_data: Some(false),
            analytics: None,
        },
        checkout_token_sha256: Some(normalize::sha256_hex(&token)),
        ..Profile::default()
    };
    let mut group = c.benchmark_group("profile");
    group.bench_function("apply", |b| {
        b.iter(|| {
            let mut e = event.clone();
            let applied = profile::apply(
                &mut e,
                Some(black_box(&token)),
                &recorded,
                ConsentPolicy::OptOut,
            );
            black_box((e, applied))
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch_cpu, profile_cpu);
criterion_main!(benches);
