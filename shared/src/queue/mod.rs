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

/// Message attribute names. SQS allows at most 10 per message ([`MAX_ATTRIBUTES`]): a message
/// carries the six Shopify headers it has and [`attr::RELAY`] (7), a dead letter one more
/// ([`attr::DEAD_LETTER_REASON`], 8), which leaves room for two more headers.
pub mod attr {
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
    /// The relay's own facts about the message, one form-encoded attribute ([`super::RelayFacts`]):
    /// source, content encoding, when ingest accepted it, and on an in-doubt dead letter or its
    /// replay the record's generation.
    pub const RELAY: &str = "relay";
    /// On dead letters: why the message was dead-lettered.
    pub const DEAD_LETTER_REASON: &str = "dead-letter-reason";
    /// Before one-record-per-event (read, never written): the source.
    pub const LEGACY_SOURCE: &str = "source";
    /// Before one-record-per-event (read, never written): when ingest accepted it.
    pub const LEGACY_RECEIVED_AT: &str = "received-at";
    /// Before one-record-per-event (read, never written): the content encoding.
    pub const LEGACY_CONTENT_ENCODING: &str = "content-encoding";
}

/// The most message attributes SQS accepts on one message.
pub const MAX_ATTRIBUTES: usize = 10;

/// The relay's own facts about a queue message, carried in [`attr::RELAY`] as
/// `source=webhook&encoding=identity&received_at=…` (form encoding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayFacts {
    /// `webhook`, `browser`, `backfill` (EventBridge messages carry none).
    pub source: Option<String>,
    /// `identity` or `gzip+base64`.
    pub encoding: Option<String>,
    /// When ingest accepted it, RFC 3339.
    pub received_at: Option<String>,
    /// On an in-doubt dead letter: the generation the record went in doubt with. `pinrelay replay
    /// --in-doubt` turns it into `resend`.
    pub in_doubt: Option<u32>,
    /// On a replayed in-doubt letter: a human's resend of this generation, single-use.
    pub resend: Option<u32>,
}

impl RelayFacts {
    /// Reads the facts of a message's attributes ([`attr::RELAY`], or the attributes a pinrelay
    /// before one-record-per-event wrote).
    pub fn of(attributes: &HashMap<String, String>) -> Self {
        let mut facts = Self::default();
        match attributes.get(attr::RELAY) {
            Some(relay) => {
                for (k, v) in url::form_urlencoded::parse(relay.as_bytes()) {
                    let v = v.into_owned();
                    match k.as_ref() {
                        "source" => facts.source = Some(v),
                        "encoding" => facts.encoding = Some(v),
                        "received_at" => facts.received_at = Some(v),
                        "in_doubt" => facts.in_doubt = v.parse().ok(),
                        "resend" => facts.resend = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            None => {
                facts.source = attributes.get(attr::LEGACY_SOURCE).cloned();
                facts.encoding = attributes.get(attr::LEGACY_CONTENT_ENCODING).cloned();
                facts.received_at = attributes.get(attr::LEGACY_RECEIVED_AT).cloned();
            }
        }
        facts
    }

    /// The attribute value.
    pub fn encode(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.append_pair(k, &v);
            }
        };
        put("source", self.source.clone());
        put("encoding", self.encoding.clone());
        put("received_at", self.received_at.clone());
        put("in_doubt", self.in_doubt.map(|g| g.to_string()));
        put("resend", self.resend.map(|g| g.to_string()));
        out.finish()
    }

    /// `attributes` with these facts in [`attr::RELAY`] (and the legacy attributes gone).
    pub fn apply(&self, attributes: &mut HashMap<String, String>) {
        for legacy in [
            attr::LEGACY_SOURCE,
            attr::LEGACY_RECEIVED_AT,
            attr::LEGACY_CONTENT_ENCODING,
            "in-doubt",
        ] {
            attributes.remove(legacy);
        }
        attributes.insert(attr::RELAY.to_owned(), self.encode());
    }
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
        put(attr::TOPIC, Some(m.topic.to_string()));
        put(attr::SHOP, Some(m.shop_domain.clone()));
        put(attr::WEBHOOK_ID, m.webhook_id.clone());
        put(attr::EVENT_ID, m.event_id.clone());
        put(attr::TRIGGERED_AT, m.triggered_at.map(rfc3339));
        put(attr::API_VERSION, m.api_version.clone());
        let (body, encoding) = match std::str::from_utf8(&self.body) {
            Ok(text) if text.len() <= COMPRESS_THRESHOLD => (text.to_owned(), IDENTITY),
            _ => (STANDARD.encode(gzip(&self.body)), GZIP_BASE64),
        };
        let relay = RelayFacts {
            source: Some(self.source.as_str().to_owned()),
            encoding: Some(encoding.to_owned()),
            received_at: Some(rfc3339(self.received_at)),
            ..RelayFacts::default()
        };
        attributes.insert(attr::RELAY.to_owned(), relay.encode());
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
        let relay = RelayFacts::of(attributes);
        let body = match relay.encoding.as_deref().unwrap_or(IDENTITY) {
            IDENTITY => body.as_bytes().to_vec(),
            GZIP_BASE64 => STANDARD
                .decode(body.trim())
                .map_err(|e| DecodeError::Corrupt(e.to_string()))
                .and_then(|z| gunzip(&z).map_err(|e| DecodeError::Corrupt(e.to_string())))?,
            other => return Err(DecodeError::UnknownEncoding(other.to_owned())),
        };
        let received_at = relay
            .received_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(received_at, |t| t.with_timezone(&Utc));
        let source = match relay.source.as_deref() {
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
        let event: Event = serde_json::from_str(body)
            .map_err(|e| DecodeError::EventBridge(crate::mapping::json_error_summary(&e)))?;
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

/// The most bytes one `SendMessageBatch` may carry in all (SQS's limit).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The most entries one SQS batch call may carry.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// An SQS limit a message would break: refused by the adapter before SQS (or moto, which does not
/// enforce them) sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    /// More attributes than SQS accepts.
    #[error("the message has {count} attributes, over SQS's limit of {MAX_ATTRIBUTES}")]
    Attributes {
        /// How many.
        count: usize,
    },
    /// Larger than the queue accepts.
    #[error("the message is {bytes} bytes, over the queue's maximum message size of {limit} bytes")]
    MessageSize {
        /// Its size as SQS counts it.
        bytes: usize,
        /// The queue's `MaximumMessageSize`.
        limit: usize,
    },
}

/// The size of a message as SQS counts it: the body plus each attribute's name, data type
/// (`String`) and value. Empty values are left out, as the adapters leave them out.
pub fn message_size<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> (usize, usize) {
    attributes
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .fold((body.len(), 0), |(bytes, count), (k, v)| {
            (bytes + k.len() + "String".len() + v.len(), count + 1)
        })
}

/// Checks a message against SQS's limits for a queue whose messages may be `limit` bytes.
///
/// # Errors
/// The [`Limit`] it breaks.
pub fn check_limits<'a>(
    body: &str,
    attributes: impl IntoIterator<Item = (&'a String, &'a String)>,
    limit: usize,
) -> Result<usize, Limit> {
    let (bytes, count) = message_size(body, attributes);
    if count > MAX_ATTRIBUTES {
        return Err(Limit::Attributes { count });
    }
    if bytes > limit {
        return Err(Limit::MessageSize { bytes, limit });
    }
    Ok(bytes)
}

/// A dead letter's attributes: the message's, with `reason` as [`attr::DEAD_LETTER_REASON`]
/// (trimmed, cut to [`MAX_REASON_BYTES`]) and `relay` facts when given.
pub fn dead_letter_attributes(
    message: &Received,
    reason: &str,
    relay: Option<&RelayFacts>,
) -> HashMap<String, String> {
    let mut attributes = message.attributes.clone();
    if let Some(relay) = relay {
        relay.apply(&mut attributes);
    }
    let reason = truncate(reason.trim(), MAX_REASON_BYTES);
    let reason = if reason.is_empty() {
        "unspecified"
    } else {
        reason
    };
    attributes.insert(attr::DEAD_LETTER_REASON.to_owned(), reason.to_owned());
    attributes
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One dead letter for [`Inbox::dead_letter_many`]: the message, its reason, and relay facts to
/// set (an in-doubt letter's generation).
#[derive(Debug, Clone, Copy)]
pub struct Letter<'a> {
    /// The message as received.
    pub message: &'a Received,
    /// Why.
    pub reason: &'a str,
    /// Facts to set in [`attr::RELAY`].
    pub relay: Option<&'a RelayFacts>,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The message breaks an SQS limit (checked by the adapter, as SQS would).
    #[error("the queue refuses the message: {0}")]
    Limit(#[from] Limit),
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
    /// `Ok` MUST mean the dead letter is stored; on error the message is retried instead. A letter
    /// breaking an SQS limit is [`QueueError::Limit`].
    fn dead_letter(
        &self,
        message: &Received,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        async move {
            let letter = Letter {
                message,
                reason,
                relay: None,
            };
            let mut results = self.dead_letter_many(std::slice::from_ref(&letter)).await;
            results.pop().unwrap_or(Ok(()))
        }
    }

    /// Moves several messages to the dead-letter queue, in as few requests as the queue allows;
    /// one result per letter, in order (`Ok`: stored).
    fn dead_letter_many(
        &self,
        letters: &[Letter<'_>],
    ) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send;

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
    fn a_message_with_every_shopify_header_leaves_room_for_a_dead_letter_reason_and_more() {
        let (m, _) = round_trip(&envelope(b"{}".to_vec()));
        assert_eq!(m.attributes.len(), 7, "{:?}", m.attributes.keys());
        assert!(m.attributes.len() + 1 + 2 <= MAX_ATTRIBUTES);
    }

    #[test]
    fn relay_facts_round_trip_and_messages_of_the_old_format_still_decode() {
        let facts = RelayFacts {
            source: Some("webhook".into()),
            encoding: Some("gzip+base64".into()),
            received_at: Some("2026-01-01T00:00:01.000Z".into()),
            in_doubt: Some(3),
            resend: None,
        };
        let mut attrs = HashMap::new();
        facts.apply(&mut attrs);
        assert_eq!(RelayFacts::of(&attrs), facts);
        let old: HashMap<String, String> = [
            ("topic", "orders/create"),
            ("shop", "a.myshopify.com"),
            ("source", "browser"),
            ("content-encoding", "identity"),
            ("received-at", "2026-01-01T00:00:01Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let e = Envelope::decode("{}", &old, Utc::now()).unwrap();
        assert_eq!(e.source, Source::Browser);
        assert_eq!(e.received_at.to_rfc3339(), "2026-01-01T00:00:01+00:00");
        let mut upgraded = old.clone();
        RelayFacts::of(&old).apply(&mut upgraded);
        assert_eq!(
            upgraded.len(),
            3,
            "legacy attributes fold into one: {upgraded:?}"
        );
    }

    #[test]
    fn small_bodies_travel_unchanged() {
        let e = envelope(br#"{"id": 1}"#.to_vec());
        let (m, back) = round_trip(&e);
        assert_eq!(m.body, r#"{"id": 1}"#);
        assert_eq!(
            RelayFacts::of(&m.attributes.clone().into_iter().collect())
                .encoding
                .as_deref(),
            Some("identity")
        );
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
        assert_eq!(
            RelayFacts::of(&m.attributes.clone().into_iter().collect())
                .encoding
                .as_deref(),
            Some("gzip+base64")
        );
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
        attrs.insert(
            attr::LEGACY_CONTENT_ENCODING.to_owned(),
            "brotli".to_owned(),
        );
        assert!(matches!(
            Envelope::decode("{}", &attrs, Utc::now()),
            Err(DecodeError::UnknownEncoding(_))
        ));
    }
}
