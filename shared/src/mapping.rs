//! `translate`: one Shopify webhook to one Pinterest event, a stated skip, or a compliance request.
//!
//! Pure: no I/O, no environment, and the clock is the `now` argument.
//!
//! | topic | outcome |
//! |---|---|
//! | `orders/create`, `orders/paid` | one `checkout` event; both topics give the same `event_id`, so the second is deduplicated |
//! | `customers/create` | one `signup` event, `event_id` = `signup-{customer id}` |
//! | `customers/data_request`, `customers/redact`, `shop/redact` | [`Outcome::Compliance`], never a Pinterest event |
//! | `orders/updated` | skipped: it fires on every edit, fulfillment and refund of an order already sent |
//! | `checkouts/create`, `checkouts/update` | skipped: checkouts are not purchases (most are abandoned), and Pinterest's `checkout` event means a completed purchase |
//! | `carts/*` and any other topic | skipped: no purchase, and carts carry no identity |
//!
//! Orders are skipped, with the reason, when they are test orders (unless
//! [`Options::include_test_orders`]), cancelled, or point-of-sale (unless
//! [`Options::send_pos_orders`], which sends them as `offline`). Whether an event has the identity
//! Pinterest requires (an email, or both IP address and user agent) is decided once, by
//! [`require_identity`], after the dispatcher has enriched it from a shopper profile. Identity
//! fields are normalized and hashed by [`crate::pinterest::normalize`].

use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use url::Url;

use crate::pinterest::normalize;
use crate::pinterest::{ActionSource, Content, CustomData, Event, UserData};
use crate::shopify::payload::{
    Address, Customer, CustomersDataRequest, CustomersRedact, LineItem, Order, ShopRedact,
};
use crate::shopify::{Topic, WebhookMetadata};

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
    /// `DEFAULT_COUNTRY`: the ISO alpha-2 country (uppercase) of a phone written without `+`/`00`
    /// whose order or customer names no address country (default `None`: such a phone is left out,
    /// since a country is never guessed from its digits).
    pub default_country: Option<String>,
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
            default_country: None,
        }
    }
}

impl Options {
    /// The checkout `event_id` of an order, when the template needs nothing but the order id
    /// (`None` for templates with `{order_name}`, which only the order body knows, and for invalid
    /// templates). Always the id [`translate`] gives the order's `checkout` event.
    pub fn checkout_event_id(&self, order_id: u64) -> Option<String> {
        render_event_id(&self.event_id_template, order_id, None).ok()
    }
}

/// Renders an `event_id` template: `{order_id}` becomes the order id in decimal, `{order_name}` the
/// order name as Shopify writes it (`#1001`), and any other text is kept.
///
/// # Errors
/// [`MappingError::InvalidTemplate`] for an unknown placeholder, an unbalanced brace or an empty
/// result; [`MappingError::MissingField`] (`name`) when the template uses `{order_name}` and
/// `order_name` is `None` or blank.
pub fn render_event_id(
    template: &str,
    order_id: u64,
    order_name: Option<&str>,
) -> Result<String, MappingError> {
    let invalid = |why| MappingError::InvalidTemplate {
        template: template.to_owned(),
        why,
    };
    let mut out = String::with_capacity(template.len() + 20);
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let (text, tail) = rest.split_at(open);
        out.push_str(text);
        if tail.starts_with('}') {
            return Err(invalid("it has a '}' without a matching '{'"));
        }
        let close = tail
            .find('}')
            .ok_or_else(|| invalid("it has a '{' without a matching '}'"))?;
        match &tail[1..close] {
            "order_id" => out.push_str(&order_id.to_string()),
            "order_name" => {
                let name = order_name.map(str::trim).filter(|n| !n.is_empty()).ok_or(
                    MappingError::MissingField {
                        topic: "orders".to_owned(),
                        field: "name",
                    },
                )?;
                out.push_str(name);
            }
            _ => {
                return Err(invalid(
                    "the only placeholders are {order_id} and {order_name}",
                ));
            }
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    if out.trim().is_empty() {
        return Err(invalid("it produces an empty event_id"));
    }
    Ok(out)
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
    /// Send this event (once [`require_identity`] agrees, after any enrichment).
    Send(Box<Conversion>),
    /// Send nothing, for this reason.
    Skip(SkipReason),
    /// A mandatory compliance request for dispatch to act on; never a Pinterest event.
    Compliance(ComplianceRequest),
}

/// A webhook's Pinterest event, with what the relay needs to know about the order behind it, decided
/// here where the payload is read so that nobody recovers it from the event later.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The event to send.
    pub event: Event,
    /// The Shopify order behind a `checkout` event; `None` for other events.
    pub order: Option<OrderRef>,
}

/// The Shopify order behind a `checkout` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    /// The order id (the shopper profile's key).
    pub id: u64,
    /// The storefront checkout's token, which a shopper profile must match; `None` when the order
    /// had no storefront checkout.
    pub checkout_token: Option<String>,
}

/// Pinterest's identity rule, checked once, after any enrichment: an event needs an email, mobile
/// ad ids, or both IP address and user agent.
///
/// # Errors
/// [`SkipReason::NotEnoughIdentity`] otherwise.
pub fn require_identity(event: &Event) -> Result<(), SkipReason> {
    if event.user_data.is_sendable() {
        Ok(())
    } else {
        Err(SkipReason::NotEnoughIdentity)
    }
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
    /// The shopper has not given marketing consent: a browser event without it, or an order whose
    /// shopper refused it while `ORDER_CONSENT_POLICY` is `skip`.
    Consent,
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
            SkipReason::Consent => "consent",
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
            SkipReason::Consent => f.write_str(
                "the shopper has not given marketing consent (for an order: refused in the browser, and ORDER_CONSENT_POLICY is skip)",
            ),
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
/// The topic comes from `metadata`; the body is only parsed for the topics that are mapped, so an
/// unmapped topic is skipped whatever its body.
///
/// # Errors
/// [`MappingError`] when the body does not fit its topic.
pub fn translate(
    metadata: &WebhookMetadata,
    body: &[u8],
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let topic = &metadata.topic;
    match topic {
        Topic::OrdersCreate | Topic::OrdersPaid => {
            order_event(metadata, parse(topic, body)?, options, now)
        }
        Topic::CustomersCreate => signup_event(metadata, parse(topic, body)?, options, now),
        Topic::CustomersDataRequest => {
            let r: CustomersDataRequest = parse(topic, body)?;
            Ok(Outcome::Compliance(ComplianceRequest::DataRequest {
                shop_domain: metadata.shop_domain.clone(),
                customer_id: r.customer.and_then(|c| c.id),
                orders_requested: r.orders_requested,
            }))
        }
        Topic::CustomersRedact => {
            let r: CustomersRedact = parse(topic, body)?;
            Ok(Outcome::Compliance(ComplianceRequest::CustomerRedact {
                shop_domain: metadata.shop_domain.clone(),
                customer_id: r.customer.and_then(|c| c.id),
                orders_to_redact: r.orders_to_redact,
            }))
        }
        Topic::ShopRedact => {
            // The body is parsed so that a malformed one is dead-lettered, not acted on. Records are
            // keyed (and shops allow-listed) by the header's domain, so that is the one to forget.
            let _: ShopRedact = parse(topic, body)?;
            Ok(Outcome::Compliance(ComplianceRequest::ShopRedact {
                shop_domain: metadata.shop_domain.clone(),
            }))
        }
        Topic::OrdersUpdated
        | Topic::CheckoutsCreate
        | Topic::CheckoutsUpdate
        | Topic::Other(_) => Ok(Outcome::Skip(SkipReason::UnmappedTopic(topic.to_string()))),
    }
}

/// Parses a webhook body, which must be a JSON object (serde would also read a struct from an
/// array).
fn parse<T: DeserializeOwned>(topic: &Topic, body: &[u8]) -> Result<T, MappingError> {
    let invalid = |source| MappingError::InvalidPayload {
        topic: topic.to_string(),
        source,
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(body).map_err(invalid),
        Some(_) => Err(invalid(serde::de::Error::custom(
            "expected a JSON object at line 1",
        ))),
        None => Err(invalid(serde::de::Error::custom(
            "the body is empty, expected a JSON object",
        ))),
    }
}

/// `orders/create` and `orders/paid` → `checkout`.
fn order_event(
    metadata: &WebhookMetadata,
    order: Order,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let topic = metadata.topic.as_str();
    if order.test == Some(true) && !options.include_test_orders {
        return Ok(Outcome::Skip(SkipReason::TestOrder));
    }
    if order
        .cancelled_at
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
    {
        return Ok(Outcome::Skip(SkipReason::CancelledOrder));
    }
    let pos = order
        .source_name
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("pos"));
    if pos && !options.send_pos_orders {
        return Ok(Outcome::Skip(SkipReason::PosOrder));
    }
    let order_id = order.id.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "id",
    })?;
    let event_id = render_event_id(&options.event_id_template, order_id, order.name.as_deref())
        .map_err(|e| match e {
            MappingError::MissingField { field, .. } => MappingError::MissingField {
                topic: topic.to_owned(),
                field,
            },
            other => other,
        })?;
    let created = order
        .created_at
        .or(order.processed_at)
        .ok_or(MappingError::MissingField {
            topic: topic.to_owned(),
            field: "created_at",
        })?;

    let user_data = order_user_data(&order, options.default_country.as_deref());
    let action_source = if pos {
        ActionSource::Offline
    } else {
        ActionSource::Web
    };
    let language = order
        .customer_locale
        .as_deref()
        .and_then(language)
        .or_else(|| {
            order
                .client_details
                .as_ref()
                .and_then(|c| c.accept_language.as_deref())
                .and_then(language)
        });
    let event = Event {
        event_name: "checkout".to_owned(),
        action_source,
        event_time: event_time(created, now),
        event_id,
        // An in-store sale has no page; never `order_status_url`, which carries an access key.
        event_source_url: (action_source == ActionSource::Web)
            .then(|| source_url(metadata, options))
            .flatten(),
        opt_out: None,
        user_data,
        custom_data: Some(order_custom_data(&order, order_id, options)),
        language,
    };
    Ok(Outcome::Send(Box::new(Conversion {
        event,
        order: Some(OrderRef {
            id: order_id,
            checkout_token: order.checkout_token.clone(),
        }),
    })))
}

/// `customers/create` → `signup`.
fn signup_event(
    metadata: &WebhookMetadata,
    customer: Customer,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let topic = metadata.topic.as_str();
    let id = customer.id.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "id",
    })?;
    let created = customer.created_at.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "created_at",
    })?;
    let address = customer.default_address.as_ref();
    let address_country = address.and_then(|a| a.country_code.as_deref());
    let mut user_data = UserData {
        em: hashed(customer.email.as_deref().and_then(normalize::email)),
        ph: hashed(first_phone(
            [
                (customer.phone.as_deref(), address_country),
                (address.and_then(|a| a.phone.as_deref()), address_country),
            ],
            options.default_country.as_deref(),
        )),
        first_name: hashed(first_of(
            [
                customer.first_name.as_deref(),
                address.and_then(|a| a.first_name.as_deref()),
            ],
            normalize::name,
        )),
        ln: hashed(first_of(
            [
                customer.last_name.as_deref(),
                address.and_then(|a| a.last_name.as_deref()),
            ],
            normalize::name,
        )),
        external_id: hashed(normalize::external_id(&id.to_string())),
        ..UserData::default()
    };
    if let Some(a) = address {
        add_location(&mut user_data, a);
    }
    let event = Event {
        event_name: "signup".to_owned(),
        action_source: ActionSource::Web,
        event_time: event_time(created, now),
        event_id: format!("signup-{id}"),
        event_source_url: source_url(metadata, options),
        opt_out: None,
        user_data,
        custom_data: None,
        language: None,
    };
    Ok(Outcome::Send(Box::new(Conversion { event, order: None })))
}

fn order_user_data(order: &Order, default_country: Option<&str>) -> UserData {
    let customer = order.customer.as_ref();
    let billing = order.billing_address.as_ref();
    let shipping = order.shipping_address.as_ref();
    let default = customer.and_then(|c| c.default_address.as_ref());
    let addresses = [billing, shipping, default];
    // The country of a phone written without its country code: its own address's, else the first
    // address that names one.
    let any_country = addresses.into_iter().find_map(country_of);

    let mut user_data = UserData {
        em: hashed(first_of(
            [
                order.email.as_deref(),
                order.contact_email.as_deref(),
                customer.and_then(|c| c.email.as_deref()),
            ],
            normalize::email,
        )),
        ph: hashed(first_phone(
            [
                (order.phone.as_deref(), any_country),
                (
                    billing.and_then(|a| a.phone.as_deref()),
                    country_of(billing).or(any_country),
                ),
                (
                    shipping.and_then(|a| a.phone.as_deref()),
                    country_of(shipping).or(any_country),
                ),
                (
                    customer.and_then(|c| c.phone.as_deref()),
                    country_of(default).or(any_country),
                ),
            ],
            default_country,
        )),
        first_name: hashed(first_of(
            [
                billing.and_then(|a| a.first_name.as_deref()),
                shipping.and_then(|a| a.first_name.as_deref()),
                default.and_then(|a| a.first_name.as_deref()),
                customer.and_then(|c| c.first_name.as_deref()),
            ],
            normalize::name,
        )),
        ln: hashed(first_of(
            [
                billing.and_then(|a| a.last_name.as_deref()),
                shipping.and_then(|a| a.last_name.as_deref()),
                default.and_then(|a| a.last_name.as_deref()),
                customer.and_then(|c| c.last_name.as_deref()),
            ],
            normalize::name,
        )),
        external_id: hashed(
            customer
                .and_then(|c| c.id)
                .and_then(|id| normalize::external_id(&id.to_string())),
        ),
        client_ip_address: [
            order.browser_ip.as_deref(),
            order
                .client_details
                .as_ref()
                .and_then(|c| c.browser_ip.as_deref()),
        ]
        .into_iter()
        .flatten()
        .find_map(ip_address),
        client_user_agent: order
            .client_details
            .as_ref()
            .and_then(|c| c.user_agent.as_deref())
            .and_then(non_blank),
        click_id: order
            .landing_site
            .as_deref()
            .and_then(epik_from_landing_site)
            .or_else(|| {
                order.note_attributes.iter().find_map(|a| {
                    let name = a.name.as_deref()?.trim();
                    (name.eq_ignore_ascii_case("epik") || name.eq_ignore_ascii_case("_epik"))
                        .then(|| a.value.as_deref().and_then(non_blank))
                        .flatten()
                })
            }),
        ..UserData::default()
    };
    // City, state, zip and country describe one place: take them from one address, the first that
    // has any of them, rather than mixing a billing city with a shipping zip.
    if let Some(a) = addresses.into_iter().flatten().find(|a| has_location(a)) {
        add_location(&mut user_data, a);
    }
    user_data
}

fn country_of(a: Option<&Address>) -> Option<&str> {
    a.and_then(|a| a.country_code.as_deref())
}

fn has_location(a: &Address) -> bool {
    [&a.city, &a.province_code, &a.zip, &a.country_code]
        .into_iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.trim().is_empty()))
}

fn add_location(user_data: &mut UserData, a: &Address) {
    let country = a.country_code.as_deref();
    user_data.ct = hashed(a.city.as_deref().and_then(normalize::city));
    user_data.st = hashed(a.province_code.as_deref().and_then(normalize::state));
    user_data.zp = hashed(a.zip.as_deref().and_then(|z| normalize::zip(z, country)));
    user_data.country = hashed(country.and_then(normalize::country));
}

fn order_custom_data(order: &Order, order_id: u64, options: &Options) -> CustomData {
    let currency = order.currency.as_deref();
    let value = match options.value_source {
        ValueSource::Subtotal => [&order.current_subtotal_price, &order.subtotal_price],
        ValueSource::Total => [&order.current_total_price, &order.total_price],
    }
    .into_iter()
    .find_map(|v| v.as_deref().and_then(|v| currency_amount(v, currency)));

    let mut content_ids: Vec<String> = Vec::new();
    let mut contents = Vec::new();
    for item in &order.line_items {
        if let Some(id) = content_id(item, options.content_id) {
            if !content_ids.contains(&id) {
                content_ids.push(id.clone());
            }
            contents.push(Content {
                id,
                item_price: item
                    .price
                    .as_deref()
                    .and_then(|p| currency_amount(p, currency)),
                quantity: item.quantity,
            });
        }
    }
    let num_items = order
        .line_items
        .iter()
        .filter_map(|i| i.quantity)
        .fold(0u64, u64::saturating_add);
    CustomData {
        currency: currency.and_then(non_blank),
        value,
        content_ids,
        contents,
        // One name and one brand per event: only set when every line agrees.
        content_name: single(order.line_items.iter().map(|i| i.title.as_deref())),
        content_brand: single(order.line_items.iter().map(|i| i.vendor.as_deref())),
        num_items: (num_items > 0).then_some(num_items),
        order_id: Some(order_id.to_string()),
        ..CustomData::default()
    }
}

fn content_id(item: &LineItem, source: ContentIdSource) -> Option<String> {
    let variant_or_product = || item.variant_id.or(item.product_id).map(|id| id.to_string());
    match source {
        ContentIdSource::Variant => variant_or_product(),
        ContentIdSource::Sku => item
            .sku
            .as_deref()
            .and_then(non_blank)
            .or_else(|| item.variant_id.map(|id| id.to_string())),
        ContentIdSource::Product => item.product_id.map(|id| id.to_string()),
    }
}

/// The value every item agrees on, when there is exactly one.
fn single<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let mut found: Option<&str> = None;
    for v in values {
        let v = v.map(str::trim).filter(|v| !v.is_empty())?;
        match found {
            Some(f) if f != v => return None,
            _ => found = Some(v),
        }
    }
    found.map(str::to_owned)
}

/// ISO 4217 currencies without minor units (`JPY 1500`): their amounts have no decimals.
const ZERO_DECIMAL_CURRENCIES: [&str; 17] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimals (`KWD 1.235`).
const THREE_DECIMAL_CURRENCIES: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// ISO 4217 units of account with four decimals (Chile's UF, Uruguay's UYW).
const FOUR_DECIMAL_CURRENCIES: [&str; 2] = ["CLF", "UYW"];

/// The number of decimals (ISO 4217 minor units) of a currency code, any case: 0 for JPY, KRW and
/// the other zero-decimal currencies, 3 for KWD, BHD, OMR, JOD, TND, IQD and LYD, 4 for CLF and
/// UYW, and 2 for every other code and when the currency is unknown.
pub fn minor_units(currency: Option<&str>) -> usize {
    let Some(code) = currency.map(str::trim) else {
        return 2;
    };
    let is = |list: &[&str]| list.iter().any(|c| c.eq_ignore_ascii_case(code));
    if is(&ZERO_DECIMAL_CURRENCIES) {
        0
    } else if is(&THREE_DECIMAL_CURRENCIES) {
        3
    } else if is(&FOUR_DECIMAL_CURRENCIES) {
        4
    } else {
        2
    }
}

/// A decimal amount written with exactly the currency's own decimals ([`minor_units`]), computed on
/// the digits (never through `f64`): `"1500.00"` JPY → `"1500"`, `"10"` USD → `"10.00"`,
/// `"1.2345"` KWD → `"1.235"`. Digits are only dropped when the amount has more of them than the
/// currency, and then it is rounded half away from zero (`"0.125"` USD → `"0.13"`); missing digits
/// are zeros, so nothing is invented. Negative, exponent or otherwise non-decimal text yields `None`.
pub fn currency_amount(amount: &str, currency: Option<&str>) -> Option<String> {
    let decimals = minor_units(currency);
    let amount = amount.trim();
    let (int, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.as_bytes();
    let digit = |i: usize| frac.get(i).copied().unwrap_or(b'0');
    // The amount in minor units, as decimal digits, most significant first.
    let mut minor: Vec<u8> = int.bytes().chain((0..decimals).map(digit)).collect();
    if digit(decimals) >= b'5' {
        let mut i = minor.len();
        loop {
            if i == 0 {
                minor.insert(0, b'1');
                break;
            }
            i -= 1;
            if minor[i] == b'9' {
                minor[i] = b'0';
            } else {
                minor[i] += 1;
                break;
            }
        }
    }
    let (units, fraction) = minor.split_at(minor.len() - decimals);
    let units = std::str::from_utf8(units).ok()?.trim_start_matches('0');
    let units = if units.is_empty() { "0" } else { units };
    if decimals == 0 {
        return Some(units.to_owned());
    }
    Some(format!("{units}.{}", std::str::from_utf8(fraction).ok()?))
}

/// Unix seconds, never after `now` (Pinterest rejects or misreads events from the future).
fn event_time(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    at.timestamp().min(now.timestamp())
}

fn source_url(metadata: &WebhookMetadata, options: &Options) -> Option<String> {
    match options.store_url.as_deref().and_then(non_blank) {
        Some(url) => Some(url),
        None => {
            let shop = metadata.shop_domain.trim();
            (!shop.is_empty()).then(|| format!("https://{shop}/"))
        }
    }
}

/// The primary language subtag of a locale or `Accept-Language` value (`fr-CA` → `fr`).
fn language(tag: &str) -> Option<String> {
    let primary = tag.trim().split([',', ';', '-', '_']).next()?.trim();
    (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

/// A literal IP address, in canonical form; `0.0.0.0` and `::` (placeholders) are dropped.
fn ip_address(raw: &str) -> Option<String> {
    let ip: IpAddr = raw.trim().parse().ok()?;
    (!ip.is_unspecified()).then(|| ip.to_string())
}

static RELATIVE_BASE: LazyLock<Option<Url>> =
    LazyLock::new(|| Url::parse("https://shop.invalid/").ok());

/// The `epik` query parameter (any case, as Pinterest's pixel reads it) of `landing_site`, which is
/// an absolute URL or a path with its query string.
fn epik_from_landing_site(landing_site: &str) -> Option<String> {
    let landing_site = landing_site.trim();
    let url = match Url::parse(landing_site) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            RELATIVE_BASE.as_ref()?.join(landing_site).ok()?
        }
        Err(_) => return None,
    };
    url.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("epik"))
        .and_then(|(_, v)| non_blank(&v))
}

fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The first candidate that normalizes to something.
fn first_of<const N: usize>(
    candidates: [Option<&str>; N],
    normalize: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    candidates.into_iter().flatten().find_map(normalize)
}

/// The first phone that normalizes, each read with the country of its own address, or
/// `default_country` (`DEFAULT_COUNTRY`) when there is none; never a country guessed from digits.
fn first_phone<const N: usize>(
    candidates: [(Option<&str>, Option<&str>); N],
    default_country: Option<&str>,
) -> Option<String> {
    candidates
        .into_iter()
        .find_map(|(phone, country)| normalize::phone(phone?, country.or(default_country)))
}

fn hashed(normalized: Option<String>) -> Vec<String> {
    normalized
        .and_then(|n| normalize::hash(&n))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::fixtures::*;
    use crate::pinterest::EventBatch;

    const SCHEMA: &str =
        include_str!("../../tests/fixtures/pinterest/conversion-events.request.schema.json");

    static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
        jsonschema::validator_for(&serde_json::from_str(SCHEMA).unwrap()).unwrap()
    });

    const SHOP: &str = "snowdevil.myshopify.com";

    fn now() -> DateTime<Utc> {
        "2026-11-29T00:00:00Z".parse().unwrap()
    }

    fn meta(topic: &str) -> WebhookMetadata {
        WebhookMetadata {
            topic: topic.parse().unwrap(),
            shop_domain: SHOP.to_owned(),
            webhook_id: None,
            event_id: None,
            triggered_at: None,
            api_version: None,
        }
    }

    /// What the relay decides for a webhook without a shopper profile: translate, then the
    /// identity check.
    fn run(topic: &str, body: &str, options: &Options) -> Result<Outcome, MappingError> {
        Ok(
            match translate(&meta(topic), body.as_bytes(), options, now())? {
                Outcome::Send(c) => match require_identity(&c.event) {
                    Ok(()) => Outcome::Send(c),
                    Err(reason) => Outcome::Skip(reason),
                },
                other => other,
            },
        )
    }

    fn event(topic: &str, body: &str, options: &Options) -> Event {
        match run(topic, body, options).unwrap() {
            Outcome::Send(c) => c.event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn skip(topic: &str, body: &str, options: &Options) -> SkipReason {
        match run(topic, body, options).unwrap() {
            Outcome::Skip(reason) => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    /// The request body of one event, checked against Pinterest's JSON Schema.
    fn assert_schema_valid(event: &Event) -> Value {
        let body = serde_json::to_value(EventBatch {
            data: vec![event.clone()],
        })
        .unwrap();
        let errors: Vec<String> = VALIDATOR
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "schema errors {errors:?} in {body:#}");
        body
    }

    /// The REST order with `edit` applied to its JSON.
    fn rest_order(edit: impl FnOnce(&mut Value)) -> String {
        let mut v: Value = serde_json::from_str(ORDER_REST).unwrap();
        edit(&mut v);
        v.to_string()
    }

    fn h(normalized: &str) -> Vec<String> {
        vec![normalize::sha256_hex(normalized)]
    }

    fn defaults() -> Options {
        Options::default()
    }

    #[test]
    fn maps_the_populated_rest_order_to_a_checkout() {
        let e = event("orders/create", ORDER_REST, &defaults());
        assert_eq!(e.event_name, "checkout");
        assert_eq!(e.action_source, ActionSource::Web);
        assert_eq!(e.event_id, "450789469");
        assert_eq!(e.event_time, 1_199_980_800);
        assert_eq!(
            e.event_source_url.as_deref(),
            Some("https://snowdevil.myshopify.com/")
        );
        let u = &e.user_data;
        assert_eq!(u.em, h("bob.norman@mail.example.com"));
        assert_eq!(u.ph, h("557734881234"));
        assert_eq!(u.first_name, h("bob"));
        assert_eq!(u.ln, h("norman"));
        assert_eq!(u.ct, h("louisville"));
        assert_eq!(u.st, h("ky"));
        assert_eq!(u.zp, h("40202"));
        assert_eq!(u.country, h("us"));
        assert_eq!(u.external_id, h("207119551"));
        assert_eq!(u.client_ip_address, None, "0.0.0.0 is a placeholder");
        assert_eq!(u.client_user_agent, None);
        assert_eq!(u.click_id, None);
        let c = e.custom_data.as_ref().unwrap();
        assert_eq!(c.currency.as_deref(), Some("USD"));
        assert_eq!(c.value.as_deref(), Some("195.67"));
        assert_eq!(c.order_id.as_deref(), Some("450789469"));
        assert_eq!(c.num_items, Some(3));
        assert_eq!(c.content_ids, ["39072856", "49148385", "457924702"]);
        assert_eq!(c.contents.len(), 3);
        assert_eq!(
            c.contents[0],
            Content {
                id: "39072856".into(),
                item_price: Some("199.00".into()),
                quantity: Some(1)
            }
        );
        assert_eq!(c.content_name.as_deref(), Some("IPod Nano - 8gb"));
        assert_eq!(c.content_brand, None);
        assert_eq!(e.language, None);
        let body = assert_schema_valid(&e);
        assert!(!body.to_string().contains("imasecretipod"));
        assert!(!body.to_string().contains("bob.norman"));
    }

    #[test]
    fn orders_paid_gives_the_same_event_as_orders_create() {
        assert_eq!(
            event("orders/paid", ORDER_REST, &defaults()),
            event("orders/create", ORDER_REST, &defaults())
        );
    }

    #[test]
    fn skips_the_shopify_dev_sample_as_a_test_order_then_as_cancelled() {
        assert_eq!(
            skip("orders/create", ORDER_SAMPLE, &defaults()),
            SkipReason::TestOrder
        );
        let include = Options {
            include_test_orders: true,
            ..defaults()
        };
        assert_eq!(
            skip("orders/create", ORDER_SAMPLE, &include),
            SkipReason::CancelledOrder
        );
    }

    #[test]
    fn maps_the_shopify_dev_sample_once_included_and_not_cancelled() {
        let mut v: Value = serde_json::from_str(ORDER_SAMPLE).unwrap();
        v["cancelled_at"] = Value::Null;
        let include = Options {
            include_test_orders: true,
            ..defaults()
        };
        let e = event("orders/create", &v.to_string(), &include);
        assert_eq!(e.event_id, "820982911946154508");
        assert_eq!(e.user_data.em, h("jon@example.com"));
        assert_eq!(
            e.user_data.ph,
            Vec::<String>::new(),
            "555 numbers are fictional"
        );
        assert_eq!(e.user_data.external_id, h("115310627314723954"));
        assert_eq!(e.user_data.first_name, h("steve"));
        assert_eq!(e.user_data.ct, h("shippington"));
        assert_eq!(e.language.as_deref(), Some("en"));
        let c = e.custom_data.as_ref().unwrap();
        assert_eq!(c.value.as_deref(), Some("414.95"));
        assert_eq!(c.num_items, Some(5));
        // variant_id is null on every line: the product id stands in; custom lines have neither.
        assert_eq!(c.content_ids, ["788032119674292922"]);
        assert_eq!(c.contents.len(), 3);
        assert_schema_valid(&e);
    }

    #[test]
    fn every_order_and_customer_fixture_gives_a_schema_valid_body() {
        let include = Options {
            include_test_orders: true,
            ..defaults()
        };
        let mut sample: Value = serde_json::from_str(ORDER_SAMPLE).unwrap();
        sample["cancelled_at"] = Value::Null;
        let sample = sample.to_string();
        let cases = [
            ("orders/create", ORDER_REST),
            ("orders/paid", ORDER_REST),
            ("orders/create", sample.as_str()),
            ("orders/paid", sample.as_str()),
            ("customers/create", CUSTOMER_REST),
            ("customers/create", CUSTOMER_SAMPLE),
        ];
        for (topic, body) in cases {
            for content_id in [
                ContentIdSource::Variant,
                ContentIdSource::Sku,
                ContentIdSource::Product,
            ] {
                for value_source in [ValueSource::Subtotal, ValueSource::Total] {
                    let options = Options {
                        content_id,
                        value_source,
                        ..include.clone()
                    };
                    assert_schema_valid(&event(topic, body, &options));
                }
            }
        }
    }

    #[test]
    fn checkouts_are_not_purchases_and_are_skipped() {
        for topic in ["checkouts/create", "checkouts/update"] {
            for body in [CHECKOUT_REST, CHECKOUT_SAMPLE] {
                assert_eq!(
                    skip(topic, body, &defaults()),
                    SkipReason::UnmappedTopic(topic.to_owned())
                );
            }
        }
    }

    #[test]
    fn skips_carts_order_updates_and_unknown_topics_whatever_their_body() {
        for (topic, body) in [
            ("carts/create", CART_SAMPLE),
            ("orders/updated", ORDER_REST),
            ("refunds/create", "not json at all"),
            ("products/update", ""),
        ] {
            assert_eq!(
                skip(topic, body, &defaults()),
                SkipReason::UnmappedTopic(topic.to_owned())
            );
        }
    }

    #[test]
    fn maps_customers_create_to_a_signup() {
        let e = event("customers/create", CUSTOMER_SAMPLE, &defaults());
        assert_eq!(e.event_name, "signup");
        assert_eq!(e.event_id, "signup-706405506930370084");
        assert_eq!(e.event_time, 1_640_995_200);
        assert_eq!(e.user_data.em, h("bob@biller.com"));
        assert_eq!(e.user_data.first_name, h("bob"));
        assert_eq!(e.user_data.ln, h("biller"));
        assert_eq!(e.user_data.external_id, h("706405506930370084"));
        assert_eq!(e.user_data.zp, h("k2p2l8"));
        assert_eq!(e.user_data.st, h("on"));
        assert_eq!(e.user_data.country, h("ca"));
        assert_eq!(e.user_data.ct, h("ottawa"));
        assert_eq!(e.custom_data, None);
        assert_schema_valid(&e);
        let e = event("customers/create", CUSTOMER_REST, &defaults());
        assert_eq!(e.event_id, "signup-207119551");
        assert_eq!(e.user_data.ph, h("16136120707"));
    }

    #[test]
    fn signup_without_an_email_is_not_enough_identity() {
        let body = json!({"id": 1, "created_at": "2026-01-01T00:00:00Z", "phone": "+16136120707"});
        assert_eq!(
            skip("customers/create", &body.to_string(), &defaults()),
            SkipReason::NotEnoughIdentity
        );
    }

    #[test]
    fn signup_needs_an_id_and_a_creation_time() {
        let no_id = json!({"email": "a@b.co", "created_at": "2026-01-01T00:00:00Z"});
        let err = run("customers/create", &no_id.to_string(), &defaults()).unwrap_err();
        assert!(matches!(
            err,
            MappingError::MissingField { field: "id", .. }
        ));
        let no_time = json!({"id": 1, "email": "a@b.co"});
        let err = run("customers/create", &no_time.to_string(), &defaults()).unwrap_err();
        assert!(matches!(
            err,
            MappingError::MissingField {
                field: "created_at",
                ..
            }
        ));
    }

    #[test]
    fn maps_compliance_topics_to_compliance_requests() {
        assert_eq!(
            run("customers/data_request", DATA_REQUEST, &defaults()).unwrap(),
            Outcome::Compliance(ComplianceRequest::DataRequest {
                shop_domain: SHOP.into(),
                customer_id: Some(191_167),
                orders_requested: vec![299_938, 280_263, 220_458],
            })
        );
        assert_eq!(
            run("customers/redact", CUSTOMERS_REDACT, &defaults()).unwrap(),
            Outcome::Compliance(ComplianceRequest::CustomerRedact {
                shop_domain: SHOP.into(),
                customer_id: Some(191_167),
                orders_to_redact: vec![299_938, 280_263, 220_458],
            })
        );
        assert_eq!(
            run("shop/redact", SHOP_REDACT, &defaults()).unwrap(),
            Outcome::Compliance(ComplianceRequest::ShopRedact {
                shop_domain: SHOP.into()
            })
        );
    }

    #[test]
    fn rejects_a_compliance_body_that_is_not_json() {
        let err = run("shop/redact", "{", &defaults()).unwrap_err();
        assert!(matches!(err, MappingError::InvalidPayload { .. }));
    }

    #[test]
    fn rejects_order_bodies_that_are_not_orders() {
        for body in ["", "{", "[]", "42", r#"{"id": "not a number"}"#] {
            let err = run("orders/create", body, &defaults()).unwrap_err();
            assert!(
                matches!(&err, MappingError::InvalidPayload { topic, .. } if topic == "orders/create"),
                "{body:?}: {err}"
            );
        }
    }

    #[test]
    fn an_order_without_an_id_or_a_time_is_an_error() {
        let body = rest_order(|o| o["id"] = Value::Null);
        let err = run("orders/create", &body, &defaults()).unwrap_err();
        assert!(matches!(
            err,
            MappingError::MissingField { field: "id", .. }
        ));
        assert!(err.to_string().contains("orders/create"));
        let body = rest_order(|o| {
            o["created_at"] = Value::Null;
            o["processed_at"] = Value::Null;
        });
        let err = run("orders/create", &body, &defaults()).unwrap_err();
        assert!(matches!(
            err,
            MappingError::MissingField {
                field: "created_at",
                ..
            }
        ));
    }

    #[test]
    fn event_time_falls_back_to_processed_at() {
        let body = rest_order(|o| {
            o["created_at"] = Value::Null;
            o["processed_at"] = json!("2026-11-28T12:00:00Z");
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).event_time,
            1_795_867_200
        );
    }

    #[test]
    fn clamps_an_event_time_in_the_future_to_now() {
        let body = rest_order(|o| o["created_at"] = json!("2030-01-01T00:00:00Z"));
        assert_eq!(
            event("orders/create", &body, &defaults()).event_time,
            now().timestamp()
        );
    }

    #[test]
    fn skips_test_orders_unless_included() {
        let body = rest_order(|o| o["test"] = json!(true));
        assert_eq!(
            skip("orders/create", &body, &defaults()),
            SkipReason::TestOrder
        );
        let include = Options {
            include_test_orders: true,
            ..defaults()
        };
        assert_eq!(
            event("orders/create", &body, &include).event_id,
            "450789469"
        );
    }

    #[test]
    fn skips_cancelled_orders() {
        let body = rest_order(|o| o["cancelled_at"] = json!("2008-01-10T12:00:00-05:00"));
        assert_eq!(
            skip("orders/create", &body, &defaults()),
            SkipReason::CancelledOrder
        );
    }

    #[test]
    fn skips_pos_orders_unless_sent_as_offline() {
        let body = rest_order(|o| o["source_name"] = json!("pos"));
        assert_eq!(
            skip("orders/create", &body, &defaults()),
            SkipReason::PosOrder
        );
        let send = Options {
            send_pos_orders: true,
            ..defaults()
        };
        let e = event("orders/create", &body, &send);
        assert_eq!(e.action_source, ActionSource::Offline);
        assert_eq!(e.event_source_url, None);
        assert_schema_valid(&e);
    }

    #[test]
    fn skips_orders_without_enough_identity() {
        let body = rest_order(|o| {
            o["email"] = Value::Null;
            o["contact_email"] = json!("  ");
            o["customer"]["email"] = Value::Null;
        });
        assert_eq!(
            skip("orders/create", &body, &defaults()),
            SkipReason::NotEnoughIdentity
        );
        // `translate` itself returns the event: a shopper profile may still add IP and UA.
        let Ok(Outcome::Send(c)) =
            translate(&meta("orders/create"), body.as_bytes(), &defaults(), now())
        else {
            panic!("translate returns the unidentified order");
        };
        assert_eq!(
            require_identity(&c.event),
            Err(SkipReason::NotEnoughIdentity)
        );
    }

    #[test]
    fn ip_address_and_user_agent_are_enough_identity() {
        let body = json!({
            "id": 7, "created_at": "2026-11-28T10:00:00Z",
            "browser_ip": "203.0.113.7",
            "client_details": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
        });
        let e = event("orders/create", &body.to_string(), &defaults());
        assert!(e.user_data.em.is_empty());
        assert_eq!(
            e.user_data.client_ip_address.as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            e.user_data.client_user_agent.as_deref(),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
        assert_schema_valid(&e);
        let only_ip =
            json!({"id": 7, "created_at": "2026-11-28T10:00:00Z", "browser_ip": "203.0.113.7"});
        assert_eq!(
            skip("orders/create", &only_ip.to_string(), &defaults()),
            SkipReason::NotEnoughIdentity
        );
    }

    #[test]
    fn client_ip_falls_back_to_client_details_and_is_canonical() {
        let body = rest_order(|o| {
            o["browser_ip"] = Value::Null;
            o["client_details"]["browser_ip"] = json!(" 2001:DB8:0:0:0:0:0:1 ");
        });
        let e = event("orders/create", &body, &defaults());
        assert_eq!(
            e.user_data.client_ip_address.as_deref(),
            Some("2001:db8::1")
        );
        let body = rest_order(|o| o["browser_ip"] = json!("not an ip"));
        let e = event("orders/create", &body, &defaults());
        assert_eq!(e.user_data.client_ip_address, None);
    }

    #[test]
    fn email_falls_back_to_contact_email_then_customer_email() {
        let body = rest_order(|o| {
            o["email"] = json!("");
            o["contact_email"] = json!("Contact@Example.com");
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.em,
            h("contact@example.com")
        );
        let body = rest_order(|o| {
            o["email"] = Value::Null;
            o["contact_email"] = Value::Null;
            o["customer"]["email"] = json!("Customer@Example.com");
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.em,
            h("customer@example.com")
        );
    }

    #[test]
    fn phone_falls_back_through_billing_shipping_and_customer() {
        let body = rest_order(|o| o["phone"] = Value::Null);
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("15024592181"),
            "billing phone"
        );
        let body = rest_order(|o| {
            o["phone"] = Value::Null;
            o["billing_address"]["phone"] = Value::Null;
            o["shipping_address"]["phone"] = json!("(613) 555-0188 ");
            o["shipping_address"]["country_code"] = json!("CA");
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("16135550188"),
            "shipping phone with the shipping country"
        );
        let body = rest_order(|o| {
            o["phone"] = Value::Null;
            o["billing_address"]["phone"] = Value::Null;
            o["shipping_address"]["phone"] = Value::Null;
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("16136120707"),
            "customer phone"
        );
    }

    #[test]
    fn a_local_order_phone_gets_the_country_code_of_the_address() {
        let body = rest_order(|o| o["phone"] = json!("(502) 459-2181"));
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("15024592181")
        );
        let body = rest_order(|o| {
            o["phone"] = json!("020 7946 0018");
            o["billing_address"]["country_code"] = json!("GB");
        });
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("442079460018")
        );
    }

    /// The REST order with only `phone` as a phone, and no address naming a country.
    fn order_without_a_country(phone: &str) -> String {
        rest_order(|o| {
            o["phone"] = json!(phone);
            o["billing_address"] = Value::Null;
            o["shipping_address"] = Value::Null;
            o["customer"]["default_address"] = Value::Null;
            o["customer"]["phone"] = Value::Null;
        })
    }

    fn us_default() -> Options {
        Options {
            default_country: Some("US".to_owned()),
            ..defaults()
        }
    }

    #[test]
    fn a_phone_without_plus_or_country_is_left_out_without_a_default_country() {
        for raw in ["4692223333", "6465550199", "3235551234"] {
            let e = event("orders/create", &order_without_a_country(raw), &defaults());
            assert!(e.user_data.ph.is_empty(), "{raw}: {:?}", e.user_data.ph);
            assert!(
                !e.user_data.em.is_empty(),
                "the order is still sent on its email"
            );
        }
    }

    #[test]
    fn a_phone_without_plus_or_country_takes_the_default_country() {
        // Golden digests, computed outside the crate (`printf %s 14692223333 | sha256sum`).
        for (raw, digest) in [
            (
                "4692223333",
                "a04fcbf6c8f15bad464e2d2838173928464f2086ca420c40cfa424e80a545eb6",
            ),
            (
                "6465550199",
                "0c82ed9de8cef0e789845770db2d4bf31b5a2952e6b7f0e8fdcc973bd73f7fd8",
            ),
            (
                "3235551234",
                "3cb9c1db8556f1e069f9d9d5f910c66623f84a5e8b716b6557d3013d5742ff39",
            ),
        ] {
            let e = event(
                "orders/create",
                &order_without_a_country(raw),
                &us_default(),
            );
            assert_eq!(e.user_data.ph, [digest], "{raw}");
            assert_schema_valid(&e);
        }
        let signup = json!({"id": 1, "created_at": "2026-01-01T00:00:00Z",
                            "email": "a@b.co", "phone": "4692223333"});
        let e = event("customers/create", &signup.to_string(), &defaults());
        assert!(e.user_data.ph.is_empty(), "{:?}", e.user_data.ph);
        let e = event("customers/create", &signup.to_string(), &us_default());
        assert_eq!(e.user_data.ph, h("14692223333"));
    }

    #[test]
    fn the_address_country_wins_over_the_default_country_and_00_needs_neither() {
        let body = rest_order(|o| {
            o["phone"] = json!("020 7946 0018");
            o["billing_address"]["country_code"] = json!("GB");
        });
        assert_eq!(
            event("orders/create", &body, &us_default()).user_data.ph,
            h("442079460018")
        );
        let body = order_without_a_country("0044 20 7946 0018");
        assert_eq!(
            event("orders/create", &body, &defaults()).user_data.ph,
            h("442079460018")
        );
        assert_eq!(
            event("orders/create", &body, &us_default()).user_data.ph,
            h("442079460018")
        );
    }

    #[test]
    fn names_fall_back_to_the_customer_and_location_comes_from_one_address() {
        let body = rest_order(|o| {
            o["billing_address"] = Value::Null;
            o["shipping_address"] =
                json!({"first_name": null, "city": "Zürich", "zip": "8001", "country_code": "CH"});
            o["customer"]["default_address"] = Value::Null;
        });
        let u = event("orders/create", &body, &defaults()).user_data;
        assert_eq!(u.first_name, h("bob"));
        assert_eq!(u.ln, h("norman"));
        assert_eq!(u.ct, h("zürich"));
        assert_eq!(u.zp, h("8001"));
        assert_eq!(u.country, h("ch"));
        assert!(u.st.is_empty());
    }

    #[test]
    fn click_id_comes_from_the_landing_site_epik_parameter() {
        for landing in [
            "https://shop.example/products/x?utm_source=pinterest&epik=dj0yJnU9abc",
            "/products/x?epik=dj0yJnU9abc",
            "/?EPIK=dj0yJnU9abc",
            "www.example.com/?epik=dj0yJnU9abc",
            "/?epik=dj0yJnU9%61bc",
        ] {
            let body = rest_order(|o| o["landing_site"] = json!(landing));
            assert_eq!(
                event("orders/create", &body, &defaults())
                    .user_data
                    .click_id
                    .as_deref(),
                Some("dj0yJnU9abc"),
                "{landing:?}"
            );
        }
    }

    #[test]
    fn click_id_falls_back_to_an_epik_note_attribute() {
        for name in ["epik", "_epik", " _EPIK "] {
            let body = rest_order(|o| {
                o["note_attributes"] = json!([{"name": "gift", "value": "yes"}, {"name": name, "value": " from-cart "}]);
            });
            assert_eq!(
                event("orders/create", &body, &defaults())
                    .user_data
                    .click_id
                    .as_deref(),
                Some("from-cart"),
                "{name:?}"
            );
        }
        let body = rest_order(|o| {
            o["landing_site"] = json!("/?epik=from-url");
            o["note_attributes"] = json!([{"name": "_epik", "value": "from-cart"}]);
        });
        assert_eq!(
            event("orders/create", &body, &defaults())
                .user_data
                .click_id
                .as_deref(),
            Some("from-url"),
            "the landing URL wins"
        );
        let body = rest_order(|o| o["landing_site"] = json!("/?epik="));
        assert_eq!(
            event("orders/create", &body, &defaults())
                .user_data
                .click_id,
            None
        );
    }

    #[test]
    fn event_source_url_is_the_store_url_never_the_order_status_url() {
        let with_store = Options {
            store_url: Some("https://www.snowdevil.ca/".into()),
            ..defaults()
        };
        let e = event("orders/create", ORDER_REST, &with_store);
        assert_eq!(
            e.event_source_url.as_deref(),
            Some("https://www.snowdevil.ca/")
        );
        let e = event("orders/create", ORDER_REST, &defaults());
        assert_eq!(
            e.event_source_url.as_deref(),
            Some("https://snowdevil.myshopify.com/")
        );
    }

    #[test]
    fn value_is_the_subtotal_by_default_and_the_total_when_configured() {
        let total = Options {
            value_source: ValueSource::Total,
            ..defaults()
        };
        let value = |body: &str, options: &Options| {
            event("orders/create", body, options)
                .custom_data
                .unwrap()
                .value
        };
        assert_eq!(value(ORDER_REST, &defaults()).as_deref(), Some("195.67"));
        assert_eq!(value(ORDER_REST, &total).as_deref(), Some("199.65"));
        let body = rest_order(|o| {
            o["current_subtotal_price"] = Value::Null;
            o["current_total_price"] = Value::Null;
        });
        assert_eq!(value(&body, &defaults()).as_deref(), Some("597.00"));
        assert_eq!(value(&body, &total).as_deref(), Some("598.94"));
        let body = rest_order(|o| {
            o["current_subtotal_price"] = json!("lots");
            o["subtotal_price"] = Value::Null;
        });
        assert_eq!(value(&body, &defaults()), None);
    }

    #[test]
    fn amounts_keep_two_decimals_by_default_without_floating_point() {
        for (raw, want) in [
            ("195.67", "195.67"),
            ("10", "10.00"),
            ("10.5", "10.50"),
            ("0.125", "0.13"),
            ("0.1249", "0.12"),
            ("99.995", "100.00"),
            ("999.999", "1000.00"),
            (".5", "0.50"),
            ("7.", "7.00"),
            ("007.10", "7.10"),
            (" 12.3 ", "12.30"),
            ("0", "0.00"),
            ("12345678901234567890.005", "12345678901234567890.01"),
        ] {
            for currency in [Some("USD"), Some("eur"), None, Some("XYZ")] {
                assert_eq!(
                    currency_amount(raw, currency).as_deref(),
                    Some(want),
                    "{raw:?} {currency:?}"
                );
            }
        }
        for bad in [
            "", ".", "-1.00", "+1", "1e3", "1,000.00", "1.2.3", "NaN", "１.00",
        ] {
            for currency in [Some("USD"), Some("JPY"), Some("KWD")] {
                assert_eq!(currency_amount(bad, currency), None, "{bad:?} {currency:?}");
            }
        }
    }

    #[test]
    fn amounts_keep_the_currencys_own_decimals() {
        for (raw, currency, want) in [
            ("1.2345", "KWD", "1.235"),
            ("1.2344", "KWD", "1.234"),
            ("5", "BHD", "5.000"),
            ("12.5", "OMR", "12.500"),
            ("0.0005", "JOD", "0.001"),
            ("3.14159", "TND", "3.142"),
            ("1000", "IQD", "1000.000"),
            ("2.1", "LYD", "2.100"),
            ("1500", "JPY", "1500"),
            ("1500.00", "JPY", "1500"),
            ("1500.5", "jpy", "1501"),
            ("1499.49", "JPY", "1499"),
            ("0.4", "KRW", "0"),
            (".5", "KRW", "1"),
            ("9999.5", "VND", "10000"),
            ("25000", "CLP", "25000"),
            ("10", "USD", "10.00"),
            ("0.125", "USD", "0.13"),
            ("37.1234", "CLF", "37.1234"),
            ("37.12345", "CLF", "37.1235"),
        ] {
            assert_eq!(
                currency_amount(raw, Some(currency)).as_deref(),
                Some(want),
                "{raw:?} {currency}"
            );
        }
    }

    #[test]
    fn a_yen_order_is_sent_without_decimals_and_a_dinar_order_with_three() {
        let yen = rest_order(|o| {
            o["currency"] = json!("JPY");
            o["current_subtotal_price"] = json!("1500.00");
            o["line_items"][0]["price"] = json!("500.00");
        });
        let e = event("orders/create", &yen, &defaults());
        let c = e.custom_data.as_ref().unwrap();
        assert_eq!(c.value.as_deref(), Some("1500"));
        assert_eq!(c.contents[0].item_price.as_deref(), Some("500"));
        assert_schema_valid(&e);
        let dinar = rest_order(|o| {
            o["currency"] = json!("KWD");
            o["current_subtotal_price"] = json!("1.2345");
            o["line_items"][0]["price"] = json!("0.5");
        });
        let e = event("orders/create", &dinar, &defaults());
        let c = e.custom_data.as_ref().unwrap();
        assert_eq!(c.value.as_deref(), Some("1.235"));
        assert_eq!(c.contents[0].item_price.as_deref(), Some("0.500"));
        assert_schema_valid(&e);
    }

    #[test]
    fn content_ids_follow_the_configured_source() {
        let ids = |source| {
            let options = Options {
                content_id: source,
                ..defaults()
            };
            event("orders/create", ORDER_REST, &options)
                .custom_data
                .unwrap()
                .content_ids
        };
        assert_eq!(
            ids(ContentIdSource::Variant),
            ["39072856", "49148385", "457924702"]
        );
        assert_eq!(
            ids(ContentIdSource::Sku),
            ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]
        );
        assert_eq!(ids(ContentIdSource::Product), ["632910392"]);
    }

    #[test]
    fn sku_falls_back_to_the_variant_and_variant_to_the_product() {
        let body = rest_order(|o| {
            o["line_items"] = json!([
                {"product_id": 1, "variant_id": 2, "sku": "", "price": "5", "quantity": 2},
                {"product_id": 3, "variant_id": null, "sku": null, "price": "1.5", "quantity": 1}
            ]);
        });
        let sku = Options {
            content_id: ContentIdSource::Sku,
            ..defaults()
        };
        let c = event("orders/create", &body, &sku).custom_data.unwrap();
        assert_eq!(c.content_ids, ["2"]);
        let c = event("orders/create", &body, &defaults())
            .custom_data
            .unwrap();
        assert_eq!(c.content_ids, ["2", "3"]);
        assert_eq!(c.contents[1].item_price.as_deref(), Some("1.50"));
        assert_eq!(c.num_items, Some(3));
        assert_eq!(c.content_name, None);
    }

    #[test]
    fn language_is_the_primary_subtag_of_the_locale() {
        let body = rest_order(|o| o["customer_locale"] = json!("fr-CA"));
        assert_eq!(
            event("orders/create", &body, &defaults())
                .language
                .as_deref(),
            Some("fr")
        );
        let body = rest_order(|o| {
            o["customer_locale"] = Value::Null;
            o["client_details"]["accept_language"] = json!("de-DE,de;q=0.9,en;q=0.8");
        });
        assert_eq!(
            event("orders/create", &body, &defaults())
                .language
                .as_deref(),
            Some("de")
        );
    }

    #[test]
    fn event_id_follows_the_template() {
        for (template, want) in [
            ("{order_id}", "450789469"),
            ("checkout-{order_id}", "checkout-450789469"),
            ("{order_name}", "#1001"),
            ("order {order_name}/{order_id}", "order #1001/450789469"),
        ] {
            let options = Options {
                event_id_template: template.into(),
                ..defaults()
            };
            assert_eq!(event("orders/create", ORDER_REST, &options).event_id, want);
        }
    }

    #[test]
    fn checkout_event_id_matches_the_event_translate_sends() {
        for template in ["{order_id}", "checkout-{order_id}", "{order_id}-{order_id}"] {
            let options = Options {
                event_id_template: template.into(),
                ..defaults()
            };
            assert_eq!(
                options.checkout_event_id(450_789_469).as_deref(),
                Some(
                    event("orders/create", ORDER_REST, &options)
                        .event_id
                        .as_str()
                ),
                "{template}"
            );
        }
        let by_name = Options {
            event_id_template: "{order_name}".into(),
            ..defaults()
        };
        assert_eq!(by_name.checkout_event_id(450_789_469), None);
    }

    #[test]
    fn rejects_invalid_event_id_templates() {
        for template in ["{order}", "{order_id", "order_id}", "   ", ""] {
            let options = Options {
                event_id_template: template.into(),
                ..defaults()
            };
            let err = run("orders/create", ORDER_REST, &options).unwrap_err();
            assert!(
                matches!(err, MappingError::InvalidTemplate { .. }),
                "{template:?}: {err}"
            );
            assert_eq!(options.checkout_event_id(1), None);
        }
    }

    #[test]
    fn an_order_name_template_needs_the_order_name() {
        let options = Options {
            event_id_template: "{order_name}".into(),
            ..defaults()
        };
        let body = rest_order(|o| o["name"] = Value::Null);
        let err = run("orders/paid", &body, &options).unwrap_err();
        assert!(
            matches!(&err, MappingError::MissingField { topic, field: "name" } if topic == "orders/paid"),
            "{err}"
        );
    }

    /// Arbitrary JSON, biased towards the keys the mapping reads so deep paths are reached.
    fn arbitrary_json() -> impl Strategy<Value = Value> {
        const KEYS: &[&str] = &[
            "id",
            "name",
            "email",
            "contact_email",
            "phone",
            "created_at",
            "processed_at",
            "cancelled_at",
            "test",
            "source_name",
            "browser_ip",
            "client_details",
            "user_agent",
            "accept_language",
            "landing_site",
            "note_attributes",
            "value",
            "currency",
            "current_subtotal_price",
            "current_total_price",
            "subtotal_price",
            "total_price",
            "customer_locale",
            "billing_address",
            "shipping_address",
            "customer",
            "default_address",
            "line_items",
            "product_id",
            "variant_id",
            "sku",
            "price",
            "quantity",
            "title",
            "vendor",
            "first_name",
            "last_name",
            "city",
            "province_code",
            "zip",
            "country_code",
            "orders_to_redact",
            "orders_requested",
            "shop_domain",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[0-9]{1,25}(\\.[0-9]{0,5})?".prop_map(Value::from),
            "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:00:00[+-]0[0-9]:00".prop_map(Value::from),
            "[+]?[0-9 ()-]{0,16}".prop_map(Value::from),
            "/?[a-z]{0,5}=[a-z]{0,5}&epik=[A-Za-z0-9%+]{0,10}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (prop::sample::select(KEYS).prop_map(str::to_owned), inner),
                    0..8
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn arbitrary_options() -> impl Strategy<Value = Options> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0..3u8,
            prop::sample::select(vec!["{order_id}", "{order_name}", "x-{order_id}", "{bad}"]),
        )
            .prop_map(|(test, pos, total, content, template)| Options {
                event_id_template: template.to_owned(),
                store_url: None,
                include_test_orders: test,
                send_pos_orders: pos,
                value_source: if total {
                    ValueSource::Total
                } else {
                    ValueSource::Subtotal
                },
                content_id: match content {
                    0 => ContentIdSource::Variant,
                    1 => ContentIdSource::Sku,
                    _ => ContentIdSource::Product,
                },
                default_country: None,
            })
    }

    const TOPICS: &[&str] = &[
        "orders/create",
        "orders/paid",
        "orders/updated",
        "checkouts/create",
        "customers/create",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
        "carts/create",
    ];

    proptest! {
        #[test]
        fn translate_never_panics_on_arbitrary_json(
            topic in prop::sample::select(TOPICS),
            body in arbitrary_json(),
            options in arbitrary_options(),
        ) {
            let bytes = serde_json::to_vec(&body).unwrap();
            if let Ok(Outcome::Send(c)) = translate(&meta(topic), &bytes, &options, now()) {
                // Whatever the input, what is sent is what Pinterest's schema accepts.
                let body = serde_json::to_value(EventBatch { data: vec![c.event] }).unwrap();
                prop_assert!(VALIDATOR.is_valid(&body), "{body:#}");
            }
        }

        #[test]
        fn translate_never_panics_on_arbitrary_bytes(
            topic in prop::sample::select(TOPICS),
            body in any::<Vec<u8>>(),
        ) {
            let _ = translate(&meta(topic), &body, &defaults(), now());
        }

        #[test]
        fn translate_never_panics_on_a_mutated_real_order(
            topic in prop::sample::select(TOPICS),
            key in prop::sample::select(vec![
                "email", "phone", "created_at", "landing_site", "note_attributes", "line_items",
                "billing_address", "customer", "current_subtotal_price", "client_details", "id",
            ]),
            value in arbitrary_json(),
        ) {
            let body = rest_order(|o| o[key] = value);
            if let Ok(Outcome::Send(c)) = run(topic, &body, &defaults()) {
                let body = serde_json::to_value(EventBatch { data: vec![c.event] }).unwrap();
                prop_assert!(VALIDATOR.is_valid(&body), "{body:#}");
            }
        }

        #[test]
        fn two_decimal_amounts_agree_with_exact_integer_rounding(cents in 0u64..10_000_000_000, extra in 0u8..10) {
            // cents + extra/10 of a cent, rounded half up, computed in integers.
            let raw = format!("{}.{:02}{}", cents / 100, cents % 100, extra);
            let rounded = cents + u64::from(extra >= 5);
            prop_assert_eq!(
                currency_amount(&raw, Some("USD")),
                Some(format!("{}.{:02}", rounded / 100, rounded % 100))
            );
        }

        #[test]
        fn amounts_always_have_exactly_the_currencys_decimals(
            int in "[0-9]{0,15}",
            frac in proptest::option::of("[0-9]{0,8}"),
            currency in proptest::sample::select(vec![
                None, Some("USD"), Some("EUR"), Some("JPY"), Some("KRW"), Some("ISK"),
                Some("KWD"), Some("BHD"), Some("OMR"), Some("JOD"), Some("TND"), Some("IQD"),
                Some("LYD"), Some("CLF"), Some("ZZZ"),
            ]),
        ) {
            let raw = match &frac {
                Some(f) => format!("{int}.{f}"),
                None => int.clone(),
            };
            let decimals = minor_units(currency);
            match currency_amount(&raw, currency) {
                None => prop_assert!(int.is_empty() && frac.as_deref().is_none_or(str::is_empty)),
                Some(out) => {
                    let (units, fraction) = out.split_once('.').unwrap_or((&out, ""));
                    prop_assert_eq!(fraction.len(), decimals, "{:?} {:?} -> {:?}", raw, currency, out);
                    prop_assert_eq!(out.contains('.'), decimals > 0);
                    prop_assert!(!units.is_empty() && units.bytes().all(|b| b.is_ascii_digit()));
                    prop_assert!(units == "0" || !units.starts_with('0'));
                    // Already in the currency's form: formatting again changes nothing.
                    prop_assert_eq!(currency_amount(&out, currency), Some(out.clone()));
                    // Never rounded away: with no more digits than the currency, the value is kept.
                    if frac.as_deref().is_none_or(|f| f.len() <= decimals) {
                        let written: String = format!("{}{:0<width$}", int, frac.as_deref().unwrap_or(""), width = decimals);
                        let kept: String = format!("{units}{fraction}");
                        prop_assert_eq!(written.trim_start_matches('0'), kept.trim_start_matches('0'));
                    }
                }
            }
        }
    }
}
