//! The pure core on the 28 KB REST order fixture: HMAC verification, a bare HMAC-SHA256 over the
//! same bytes (the floor verification cannot beat: ring's, which `shopify::verify` uses), the same
//! HMAC with the RustCrypto `hmac` and `sha2` crates (aws-sigv4's, for comparison), and
//! `translate` (parse the order, map it, normalize and hash the identity fields, serialize the
//! Pinterest request body to JSON).
//!
//! Run with `cargo bench -p pinrelay --bench core`; `scripts/bench_hmac.py` runs it beside
//! OpenSSL's HMAC over the same bytes.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{KeyInit, Mac};
use pinrelay::mapping::{Options, Outcome, translate};
use pinrelay::pinterest::EventBatch;
use pinrelay::shopify::verify::verify_signature;
use pinrelay::shopify::{self, WebhookMetadata, WebhookSecrets};
use sha2::Sha256;

const ORDER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
));
const SECRET: &str = "bench-secret";

fn metadata() -> WebhookMetadata {
    WebhookMetadata {
        topic: shopify::Topic::OrdersCreate,
        shop_domain: "snowdevil.myshopify.com".to_owned(),
        webhook_id: None,
        event_id: None,
        triggered_at: None,
        api_version: None,
    }
}

fn core(c: &mut Criterion) {
    let secrets = WebhookSecrets::from_comma_separated(SECRET);
    let signature = shopify::sign(SECRET.as_bytes(), ORDER);
    let metadata = metadata();
    let options = Options::default();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_795_939_200, 0).unwrap_or_default();
    assert!(matches!(
        translate(&metadata, ORDER, &options, now),
        Ok(Outcome::Send(_))
    ));

    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Bytes(ORDER.len() as u64));

    group.bench_function("hmac_verify", |b| {
        b.iter(|| verify_signature(black_box(&signature), black_box(ORDER), &secrets))
    });

    group.bench_function("hmac_sha256_floor", |b| {
        b.iter(|| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
            ring::hmac::sign(&key, black_box(ORDER))
        })
    });

    group.bench_function("hmac_sha256_rustcrypto", |b| {
        b.iter(|| {
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
                .unwrap_or_else(|_| unreachable!());
            mac.update(black_box(ORDER));
            mac.finalize().into_bytes()
        })
    });

    group.bench_function("translate_order", |b| {
        b.iter(|| {
            let outcome = translate(&metadata, black_box(ORDER), &options, now);
            match outcome {
                Ok(Outcome::Send(conversion)) => serde_json::to_vec(&EventBatch {
                    data: vec![conversion.event],
                })
                .unwrap_or_default(),
                _ => Vec::new(),
            }
        })
    });

    group.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
