//! Ingest CPU per webhook, without network: `Ingest::handle` for the 28 KB REST order fixture over
//! a no-op `Queue` (route, verify the HMAC, read the headers, build the SQS message, EMF metrics to
//! a sink), next to the bare HMAC verification of the same body, the floor it cannot beat.
//!
//! Run with `cargo bench -p pinrelay --bench ingest`. The handler is driven by a current-thread
//! tokio runtime (its enqueue timeout needs one), so each iteration includes one `block_on`. No
//! `tracing` subscriber is installed: the Lambda's JSON log line per webhook is not included.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use pinrelay::ingest::{Ingest, IngestConfig, Request, WEBHOOK_PATH};
use pinrelay::metrics::Metrics;
use pinrelay::queue::{EncodedMessage, MAX_MESSAGE_BYTES, Queue, QueueError};
use pinrelay::shopify::{self, WebhookSecrets};

const ORDER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
));
const SECRET: &str = "bench-secret";

/// Accepts every message and keeps nothing.
struct NoOp;

impl Queue for NoOp {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
        black_box(message);
        Ok(())
    }
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/json".to_owned()),
        ("x-shopify-topic", "orders/create".to_owned()),
        (
            "x-shopify-shop-domain",
            "snowdevil.myshopify.com".to_owned(),
        ),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_owned(),
        ),
        (
            "x-shopify-event-id",
            "98880550-7158-44d4-b7cd-2c97c8a091b5".to_owned(),
        ),
        (
            "x-shopify-triggered-at",
            "2026-09-11T18:00:27.877Z".to_owned(),
        ),
        ("x-shopify-api-version", "2026-07".to_owned()),
        (
            "x-shopify-hmac-sha256",
            shopify::sign(SECRET.as_bytes(), ORDER),
        ),
    ] {
        h.insert(k, HeaderValue::from_str(&v).expect("valid header"));
    }
    h
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let secrets = WebhookSecrets::from_comma_separated(SECRET);
    let ingest = Ingest::new(
        NoOp,
        IngestConfig::single(&secrets.clone(), None, MAX_MESSAGE_BYTES, Duration::ZERO),
        Metrics::emf_to("ingest", Box::new(std::io::sink())),
    );
    let headers = headers();
    let now = chrono::Utc::now();
    let reply = runtime.block_on(ingest.handle(
        Request {
            method: &Method::POST,
            path: WEBHOOK_PATH,
            headers: &headers,
            body: ORDER,
            source_ip: None,
        },
        now,
    ));
    assert_eq!(reply.status, http::StatusCode::OK, "{}", reply.body);

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("handle_28kb_order", |b| {
        b.iter(|| {
            runtime.block_on(ingest.handle(
                Request {
                    method: &Method::POST,
                    path: WEBHOOK_PATH,
                    headers: black_box(&headers),
                    body: black_box(ORDER),
                    source_ip: None,
                },
                now,
            ))
        })
    });
    group.bench_function("hmac_verify_28kb_order_floor", |b| {
        b.iter(|| shopify::verify(black_box(&headers), black_box(ORDER), &secrets))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
