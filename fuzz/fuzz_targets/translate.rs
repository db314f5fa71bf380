//! Fuzz target: arbitrary bytes as the body of an `orders/create`, `customers/create` and
//! `customers/redact` webhook, through `pinrelay::mapping::translate`.
//!
//! `translate` runs on bodies whose HMAC verified, so a crash here needs Shopify (or a leaked
//! secret) to send it; still, a panic would dead-letter nothing and retry forever. Any panic or
//! sanitizer report is a finding. The first input byte picks the mapping options, so the
//! option-dependent branches are explored too. Seeds: `scripts/fuzz.sh` copies the Shopify
//! webhook fixtures into the corpus.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use pinrelay::mapping::{ContentIdSource, Options, ValueSource, translate};
use pinrelay::shopify::WebhookMetadata;

const TOPICS: [&str; 3] = ["orders/create", "customers/create", "customers/redact"];

fn options(flags: u8) -> Options {
    let defaults = Options::default();
    Options {
        include_test_orders: flags & 1 != 0,
        send_pos_orders: flags & 2 != 0,
        value_source: if flags & 4 != 0 {
            ValueSource::Total
        } else {
            ValueSource::Subtotal
        },
        content_id: match (flags >> 3) & 3 {
            0 => ContentIdSource::Variant,
            1 => ContentIdSource::Sku,
            _ => ContentIdSource::Product,
        },
        event_id_template: if flags & 32 != 0 {
            "checkout-{order_id}".into()
        } else {
            defaults.event_id_template.clone()
        },
        store_url: (flags & 64 != 0).then(|| "https://shop.example/".into()),
        default_country: (flags & 128 != 0).then(|| "US".into()),
        ..defaults
    }
}

fuzz_target!(|data: &[u8]| {
    let (flags, body) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    };
    let options = options(flags);
    // 2026-11-29T08:00:00Z: a fixed clock keeps runs reproducible.
    let Some(now) = DateTime::from_timestamp(1_795_939_200, 0) else {
        return;
    };
    for topic in TOPICS {
        let metadata = WebhookMetadata::from_lookup(|name| match name {
            "topic" => Some(topic.to_owned()),
            "shop-domain" => Some("example.myshopify.com".to_owned()),
            "webhook-id" => Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_owned()),
            _ => None,
        });
        if let Ok(metadata) = metadata {
            let _ = translate(&metadata, body, &options, now);
        }
    }
});
