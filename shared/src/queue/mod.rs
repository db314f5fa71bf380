//! The message that travels from ingest to dispatch, its wire encoding, and the queue ports.
//!
//! - [`Envelope`]: a verified webhook (or an EventBridge delivery) with its metadata.
//! - [`EncodedMessage`]: the envelope as a queue message body plus string attributes; large bodies
//!   are gzip-compressed and base64-encoded so any order Shopify sends fits the queue's limit.
//! - [`Queue`]: the port ingest sends through. [`Inbox`]: what dispatch does with a received message
//!   besides acknowledging it (dead-letter it, or delay its retry).
//!
//! Adapters: `sqs` (feature `aws`) and `sqlite` (feature `sqlite`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::shopify::{MetadataError, WebhookMetadata};

#[doc(hidden)]
pub mod contract;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqs")]
pub mod sqs;

/// Message attribute names; SQS allows at most 10 per message and these are 9.
pub mod attr {
    /// Where the message came from: `webhook` or `browser` (EventBridge messages carry none).
    pub const SOURCE: &str = "source";
    /// `X-Shopify-Topic`.
    pub const TOPIC: &str = "topic";
    /// `X-Shopify-Shop-Domain`.
    pub const SHOP: &str = "shop";
    /// `X-Shopify-Webhook-Id`.
    pub const WEBHOOK_ID: &str = "webhook-id";
    /// `X-Shopify-Event-Id`.
    pub const EVENT_ID: &str = "event-id";
    /// `X-Shopify-Triggered-At`, RFC 3339.
    pub const TRIGGERED_AT: &str = "triggered-at";
    /// `X-Shopify-API-Version`.
    pub const API_VERSION: &str = "api-version";
    /// When ingest accepted the webhook, RFC 3339.
    pub const RECEIVED_AT: &str = "received-at";
    /// `identity` or `gzip+base64`.
    pub const CONTENT_ENCODING: &str = "content-encoding";
    /// On dead letters: why the message was dead-lettered.
    pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
    /// `true` on a message dead-lettered because its event is in doubt (the relay stopped while
    /// sending it). Kept by `pinrelay replay`, it tells dispatch that a human chose to send the
    /// event again, so the key recorded as sent is released first.
    pub const IN_DOUBT: &str = "in-doubt";
}

/// Bodies above this size are compressed (JSON orders shrink about tenfold).
pub const COMPRESS_THRESHOLD: usize = 64 * 1024;

/// The longest delay a queue holds a message back (SQS's `DelaySeconds` limit, 15 minutes;
/// the SQLite queue keeps to it too).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The largest message a standard SQS queue accepts by default (256 KiB, attributes included).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The longest dead-letter reason an inbox writes; a longer one is cut.
pub const MAX_REASON_BYTES: usize = 1024;

/// The most a `dead-letter-reason` attribute adds to a message, as SQS counts it (name, type,
/// value).
pub const DEAD_LETTER_RESERVE: usize =
    attr::DEAD_LETTER_REASON.len() + "String".len() + MAX_REASON_BYTES;

/// The largest message ingest enqueues: [`MAX_MESSAGE_BYTES`] less [`DEAD_LETTER_RESERVE`], so
/// every message it queues can still be dead-lettered with its reason.
pub const MAX_ENQUEUE_BYTES: usize = MAX_MESSAGE_BYTES - DEAD_LETTER_RESERVE;

const IDENTITY: &str = "identity";
const GZIP_BASE64: &str = "gzip+base64";

/// How a message reached the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An HTTPS webhook verified by ingest.
    Webhook,
    /// A Shopify delivery routed through Amazon EventBridge to the queue (trusted through IAM).
    EventBridge,
    /// A storefront pixel event from the unauthenticated browser endpoint; its body is a
    /// [`crate::browser::ReceivedBrowserEvent`].
    Browser,
    /// A missing order fetched from the Admin API by `pinrelay reconcile --backfill` (trusted: the
    /// merchant's own Admin token fetched it); its body is the REST order, an `orders/create` body.
    Backfill,
}

impl Source {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::EventBridge => "eventbridge",
            Source::Browser => "browser",
            Source::Backfill => "backfill",
        }
    }
}

/// A verified delivery: metadata plus the exact body bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// How it arrived.
    pub source: Source,
    /// Topic, shop and delivery ids.
    pub metadata: WebhookMetadata,
    /// When the relay accepted it.
    pub received_at: DateTime<Utc>,
    /// The raw body (for EventBridge, the re-serialized `detail.payload`).
    pub body: Vec<u8>,
}

/// An [`Envelope`] ready for a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    /// The body: the webhook JSON itself, or base64 of its gzip.
    pub body: String,
    /// String attributes ([`attr`]).
    pub attributes: BTreeMap<String, String>,
    /// How long the queue should hide the message before first delivery.
    pub delay: Duration,
}

impl EncodedMessage {
    /// Size as SQS counts it: body plus attribute names and values.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>()
    }
}

/// Why an envelope cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// Even compressed, the message exceeds the queue's limit.
    #[error(
        "the webhook is {bytes} bytes even compressed, over the queue's {limit}-byte message limit"
    )]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why a queue message cannot be read back as an [`Envelope`] (it is dead-lettered with this reason).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The message lacks the topic or shop attribute, and is not an EventBridge envelope.
    #[error("the message is neither a pinrelay webhook nor a Shopify EventBridge event: {0}")]
    Metadata(#[from] MetadataError),
    /// `content-encoding` names an encoding this version does not know.
    #[error("the message has an unknown content-encoding {0:?}")]
    UnknownEncoding(String),
    /// The compressed body is corrupt.
    #[error("the compressed body cannot be decoded: {0}")]
    Corrupt(String),
    /// The body is JSON but not a `shopifyWebhook` EventBridge event.
    #[error("the message body is not a Shopify EventBridge event: {0}")]
    EventBridge(String),
}

impl Envelope {
    /// A missing order for `pinrelay reconcile --backfill`: its REST Admin body (the shape of an
    /// `orders/create` webhook) as an `orders/create` of source [`Source::Backfill`]. The dispatcher
    /// treats it as it treats the webhook, so the order's `event_id` and idempotency key are the
    /// ones the webhook would have had: exactly once still holds.
    pub fn backfill(
        shop_domain: &str,
        order_id: u64,
        api_version: &str,
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            source: Source::Backfill,
            metadata: WebhookMetadata {
                topic: crate::shopify::Topic::OrdersCreate,
                shop_domain: shop_domain.to_owned(),
                webhook_id: Some(format!("backfill-{order_id}")),
                event_id: None,
                triggered_at: Some(now),
                api_version: Some(api_version.to_owned()),
            },
            received_at: now,
            body,
        }
    }

    /// Encodes for a queue whose messages may be at most `limit` bytes.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] when even the compressed body does not fit.
    pub fn encode(&self, limit: usize, delay: Duration) -> Result<EncodedMessage, EncodeError> {
        let m = &self.metadata;
        let mut attributes = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                attributes.insert(k.to_owned(), v);
            }
        };
        put(attr::SOURCE, Some(self.source.as_str().to_owned()));
        put(attr::TOPIC, Some(m.topic.to_string()));
        put(attr::SHOP, Some(m.shop_domain.clone()));
        put(attr::WEBHOOK_ID, m.webhook_id.clone());
        put(attr::EVENT_ID, m.event_id.clone());
        put(attr::TRIGGERED_AT, m.triggered_at.map(rfc3339));
        put(attr::API_VERSION, m.api_version.clone());
        put(attr::RECEIVED_AT, Some(rfc3339(self.received_at)));
        let (body, encoding) = match std::str::from_utf8(&self.body) {
            Ok(text) if text.len() <= COMPRESS_THRESHOLD => (text.to_owned(), IDENTITY),
            _ => (STANDARD.encode(gzip(&self.body)), GZIP_BASE64),
        };
        attributes.insert(attr::CONTENT_ENCODING.to_owned(), encoding.to_owned());
        let message = EncodedMessage {
            body,
            attributes,
            delay,
        };
        match message.size() {
            bytes if bytes > limit => Err(EncodeError::TooLarge { bytes, limit }),
            _ => Ok(message),
        }
    }

    /// Reads a queue message: a pinrelay message (attributes present) or, without attributes, a
    /// Shopify EventBridge event (`detail-type: shopifyWebhook`) routed straight to the queue.
    ///
    /// # Errors
    /// [`DecodeError`] when the message is neither.
    pub fn decode(
        body: &str,
        attributes: &HashMap<String, String>,
        received_at: DateTime<Utc>,
    ) -> Result<Self, DecodeError> {
        if !attributes.contains_key(attr::TOPIC) {
            return Self::from_eventbridge(body, received_at);
        }
        let get = |k: &str| attributes.get(k).cloned();
        let metadata = WebhookMetadata::from_lookup(|name| match name {
            "shop-domain" => get(attr::SHOP),
            other => get(other),
        })?;
        let body = match attributes
            .get(attr::CONTENT_ENCODING)
            .map(String::as_str)
            .unwrap_or(IDENTITY)
        {
            IDENTITY => body.as_bytes().to_vec(),
            GZIP_BASE64 => STANDARD
                .decode(body.trim())
                .map_err(|e| DecodeError::Corrupt(e.to_string()))
                .and_then(|z| gunzip(&z).map_err(|e| DecodeError::Corrupt(e.to_string())))?,
            other => return Err(DecodeError::UnknownEncoding(other.to_owned())),
        };
        let received_at = get(attr::RECEIVED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or(received_at, |t| t.with_timezone(&Utc));
        let source = match get(attr::SOURCE).as_deref() {
            Some("browser") => Source::Browser,
            Some("backfill") => Source::Backfill,
            _ => Source::Webhook,
        };
        Ok(Self {
            source,
            metadata,
            received_at,
            body,
        })
    }

    fn from_eventbridge(body: &str, received_at: DateTime<Utc>) -> Result<Self, DecodeError> {
        #[derive(serde::Deserialize)]
        struct Event {
            #[serde(rename = "detail-type")]
            detail_type: String,
            time: Option<DateTime<Utc>>,
            detail: Detail,
        }
        #[derive(serde::Deserialize)]
        struct Detail {
            payload: Box<serde_json::value::RawValue>,
            #[serde(default)]
            metadata: HashMap<String, serde_json::Value>,
        }
        let event: Event =
            serde_json::from_str(body).map_err(|e| DecodeError::EventBridge(e.to_string()))?;
        if event.detail_type != "shopifyWebhook" {
            return Err(DecodeError::EventBridge(format!(
                "detail-type is {:?}, not \"shopifyWebhook\"",
                event.detail_type
            )));
        }
        // Header names arrive in any case, with or without the `X-` prefix.
        let headers: HashMap<String, String> = event
            .detail
            .metadata
            .into_iter()
            .filter_map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                let k = k.strip_prefix("x-").unwrap_or(&k);
                let k = k.strip_prefix("shopify-")?.to_owned();
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                Some((k, v))
            })
            .collect();
        let metadata = WebhookMetadata::from_lookup(|name| headers.get(name).cloned())?;
        Ok(Self {
            source: Source::EventBridge,
            metadata,
            received_at: event.time.unwrap_or(received_at),
            body: event.detail.payload.get().as_bytes().to_vec(),
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The largest body a compressed message may expand to: far above any real order, low enough that
/// a corrupt or hostile message cannot exhaust the function's memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 32 * 1024 * 1024;

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 8);
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(std::io::Error::other(format!(
            "expands beyond {MAX_DECOMPRESSED_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or refused the request (ingest answers 503 so Shopify retries).
    #[error("the queue is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The queue rejected the message as too large.
    #[error("the queue rejected the message as too large")]
    TooLarge,
}

/// Where ingest puts verified webhooks.
pub trait Queue: Send + Sync + 'static {
    /// Sends one message.
    ///
    /// # Errors
    /// Returning `Ok` MUST mean the message is durably stored (SQS acknowledged it, or the SQLite
    /// transaction committed). Any doubt MUST be an error, so the webhook is answered non-2xx and
    /// Shopify retries.
    fn send(&self, message: &EncodedMessage)
    -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// A message handed to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The item identifier reported in batch item failures (the SQS message id).
    pub id: String,
    /// The handle for changing this delivery's visibility.
    pub receipt: String,
    /// How many times the queue has delivered it, this time included.
    pub receive_count: u32,
    /// The message body.
    pub body: String,
    /// The string attributes.
    pub attributes: HashMap<String, String>,
}

/// What dispatch can do to a received message besides acknowledging it.
pub trait Inbox: Send + Sync + 'static {
    /// Moves the original message to the dead-letter queue with `reason` as an attribute.
    ///
    /// # Errors
    /// `Ok` MUST mean the dead letter is stored; on error the message is retried instead.
    fn dead_letter(
        &self,
        message: &Received,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Hides the message for `delay` before its next delivery (backoff).
    ///
    /// # Errors
    /// On error the queue's default visibility timeout applies, which is safe.
    fn retry_after(
        &self,
        message: &Received,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shopify::Topic;

    fn envelope(body: Vec<u8>) -> Envelope {
        Envelope {
            source: Source::Webhook,
            metadata: WebhookMetadata {
                topic: Topic::OrdersCreate,
                shop_domain: "a.myshopify.com".into(),
                webhook_id: Some("w-1".into()),
                event_id: Some("e-1".into()),
                triggered_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00.123Z")
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                api_version: Some("2026-07".into()),
            },
            received_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:01Z")
                .unwrap()
                .with_timezone(&Utc),
            body,
        }
    }

    fn round_trip(e: &Envelope) -> (EncodedMessage, Envelope) {
        let m = e.encode(MAX_MESSAGE_BYTES, Duration::ZERO).unwrap();
        let attrs: HashMap<_, _> = m.attributes.clone().into_iter().collect();
        let back = Envelope::decode(&m.body, &attrs, Utc::now()).unwrap();
        (m, back)
    }

    #[test]
    fn small_bodies_travel_unchanged() {
        let e = envelope(br#"{"id": 1}"#.to_vec());
        let (m, back) = round_trip(&e);
        assert_eq!(m.body, r#"{"id": 1}"#);
        assert_eq!(m.attributes[attr::CONTENT_ENCODING], "identity");
        assert_eq!(back, e);
    }

    #[test]
    fn large_bodies_are_compressed_and_restored_byte_for_byte() {
        let body = format!(
            "[{}]",
            vec![r#"{"title":"Widget","price":"1.00"}"#; 20_000].join(",")
        );
        let e = envelope(body.into_bytes());
        let (m, back) = round_trip(&e);
        assert_eq!(m.attributes[attr::CONTENT_ENCODING], "gzip+base64");
        assert!(m.size() < MAX_MESSAGE_BYTES);
        assert_eq!(back.body, e.body);
    }

    #[test]
    fn a_message_at_ingests_limit_still_fits_with_the_longest_reason() {
        // Incompressible bytes, so the encoded message lands right at the limit.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..400_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 26) as u8
            })
            .collect();
        let mut fitting = None;
        for len in (150_000..400_000).rev().step_by(1000) {
            let e = envelope(noise[..len].to_vec());
            if let Ok(m) = e.encode(MAX_ENQUEUE_BYTES, Duration::ZERO) {
                fitting = Some(m);
                break;
            }
        }
        let mut m = fitting.expect("some body fits ingest's limit");
        assert!(
            m.size() > MAX_ENQUEUE_BYTES - 2000,
            "{} is near the limit",
            m.size()
        );
        m.attributes.insert(
            attr::DEAD_LETTER_REASON.into(),
            "x".repeat(MAX_REASON_BYTES),
        );
        assert!(
            m.size() <= MAX_MESSAGE_BYTES,
            "{} > {MAX_MESSAGE_BYTES}",
            m.size()
        );
    }

    #[test]
    fn non_utf8_bodies_are_compressed_rather_than_mangled() {
        let e = envelope(vec![0xff, 0xfe, b'{']);
        let (_, back) = round_trip(&e);
        assert_eq!(back.body, e.body);
    }

    #[test]
    fn refuses_bodies_that_cannot_fit() {
        // Incompressible bytes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let body: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(matches!(
            envelope(body).encode(MAX_MESSAGE_BYTES, Duration::ZERO),
            Err(EncodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn decodes_the_aws_quickstart_eventbridge_envelope() {
        let body = include_str!(
            "../../../tests/fixtures/shopify/eventbridge/products-update.eventbridge-envelope.aws-quickstart.json"
        );
        let e = Envelope::decode(body, &HashMap::new(), Utc::now()).unwrap();
        assert_eq!(e.source, Source::EventBridge);
        assert_eq!(e.metadata.topic, Topic::Other("products/update".into()));
        assert_eq!(e.metadata.shop_domain, "example.myshopify.com");
        let payload: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert!(payload.get("id").is_some());
    }

    #[test]
    fn rejects_messages_that_are_neither() {
        assert!(Envelope::decode("{}", &HashMap::new(), Utc::now()).is_err());
        assert!(Envelope::decode("not json", &HashMap::new(), Utc::now()).is_err());
        let mut attrs = HashMap::new();
        attrs.insert(attr::TOPIC.to_owned(), "orders/create".to_owned());
        attrs.insert(attr::SHOP.to_owned(), "a.myshopify.com".to_owned());
        attrs.insert(attr::CONTENT_ENCODING.to_owned(), "brotli".to_owned());
        assert!(matches!(
            Envelope::decode("{}", &attrs, Utc::now()),
            Err(DecodeError::UnknownEncoding(_))
        ));
    }
}
