//! Fuzz target: an arbitrary queue message (body plus string attributes) through
//! `pinrelay::queue::Envelope::decode`, the first thing dispatch does with every message.
//!
//! Input format, chosen so real messages can seed the corpus (`scripts/fuzz.sh` writes them):
//!
//! ```text
//! <flags byte><name>=<value>\n ... \n\n<body>
//! ```
//!
//! Flag bit 0 ("compress") gzip-compresses and base64-encodes the body and sets
//! `content-encoding: gzip+base64` before decoding, so the decompressed bytes are fuzzed too, not
//! only the base64 and gzip framing (which the fuzzer reaches by setting the attribute itself).
//! A message without a `topic` attribute takes the EventBridge path. What decodes is encoded
//! again. A panic or sanitizer report is a finding; `fuzz/envelope_decode.dict` lists the
//! attribute names and values pinrelay writes.
#![no_main]

use std::collections::HashMap;
use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use pinrelay::queue::{Envelope, MAX_MESSAGE_BYTES, attr};

fn gzip_base64(body: &[u8]) -> String {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(body);
    STANDARD.encode(encoder.finish().unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or(("", &text));
    let mut attributes = HashMap::new();
    for line in head.lines() {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        attributes.insert(name.to_owned(), value.to_owned());
    }
    let body = if flags & 1 != 0 {
        attributes.insert(attr::CONTENT_ENCODING.to_owned(), "gzip+base64".to_owned());
        gzip_base64(body.as_bytes())
    } else {
        body.to_owned()
    };
    // 2026-11-29T08:00:00Z: a fixed clock keeps runs reproducible.
    let Some(received_at) = DateTime::from_timestamp(1_795_939_200, 0) else {
        return;
    };
    if let Ok(envelope) = Envelope::decode(&body, &attributes, received_at) {
        let _ = envelope.encode(MAX_MESSAGE_BYTES, std::time::Duration::ZERO);
    }
});
