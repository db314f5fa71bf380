//! Fuzz target: an arbitrary queue message (body plus string attributes) through
//! `pinrelay::queue::Envelope::decode`, the first thing dispatch does with every message.
//!
//! Attribute names are drawn mostly from the ones pinrelay writes (so the fuzzer reaches the
//! branches behind `topic`, `shop` and `content-encoding`), with arbitrary names as well. In
//! `compress` mode the body is gzip-compressed and base64-encoded before decoding, so the
//! decompressed bytes are fuzzed too, not only the base64 and gzip framing. Messages without a
//! `topic` attribute take the EventBridge path. A panic or sanitizer report is a finding.
#![no_main]

use std::collections::HashMap;
use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::DateTime;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pinrelay::queue::{Envelope, attr};

const KNOWN: [&str; 10] = [
    attr::SOURCE,
    attr::TOPIC,
    attr::SHOP,
    attr::WEBHOOK_ID,
    attr::EVENT_ID,
    attr::TRIGGERED_AT,
    attr::API_VERSION,
    attr::RECEIVED_AT,
    attr::CONTENT_ENCODING,
    attr::DEAD_LETTER_REASON,
];

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Message {
    compress: bool,
    attributes: Vec<(Name, String)>,
    body: String,
}

fn gzip_base64(body: &[u8]) -> String {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(body);
    STANDARD.encode(encoder.finish().unwrap_or_default())
}

fuzz_target!(|m: Message| {
    let mut attributes = HashMap::new();
    for (name, value) in m.attributes {
        let name = match name {
            Name::Known(i) => KNOWN[usize::from(i) % KNOWN.len()].to_owned(),
            Name::Other(s) => s,
        };
        attributes.insert(name, value);
    }
    let body = if m.compress {
        attributes.insert(attr::CONTENT_ENCODING.to_owned(), "gzip+base64".to_owned());
        gzip_base64(m.body.as_bytes())
    } else {
        m.body
    };
    let Some(received_at) = DateTime::from_timestamp(1_795_939_200, 0) else {
        return;
    };
    if let Ok(envelope) = Envelope::decode(&body, &attributes, received_at) {
        // What decodes must encode again without panicking.
        let _ = envelope.encode(
            pinrelay::queue::MAX_MESSAGE_BYTES,
            std::time::Duration::ZERO,
        );
    }
});
