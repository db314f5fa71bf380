//! `translate`: one Shopify webhook to one Pinterest event, a stated skip, or a compliance request.
//!
//! Pure: no I/O, no environment, and the clock is the `now` argument.
//!
//! | topic | outcome |
//! |---|---|
//! | `orders/create`, `orders/paid` | one `checkout` event; both topics give the same `event_id`, so the second is deduplicated |
//! | `customers/create` | one `signup` event, `event_id` = `signup-{customer id}`, for an account registration or a newsletter sign-up; any other customer is skipped (`not_a_signup`) |
//! | `customers/data_request`, `customers/redact`, `shop/redact` | [`Outcome::Compliance`], never a Pinterest event |
//! | `app/uninstalled` | [`ComplianceRequest::AppUninstalled`]: the registered store is disabled |
//! | `customers/delete` | [`ComplianceRequest::CustomerDeleted`]: the customer leaves the customer lists |
//! | `customers_email_marketing_consent/update` | [`ComplianceRequest::ConsentChanged`]: the customer lists re-check the customer (`customer_id`, else `id`); a body naming no customer is dead-lettered ([`MappingError::NoCustomerId`]) |
//! | `orders/updated` | skipped: it fires on every edit, fulfillment and refund of an order already sent |
//! | `checkouts/create`, `checkouts/update` | skipped: checkouts are not purchases (most are abandoned), and Pinterest's `checkout` event means a completed purchase |
//! | `carts/*` and any other topic | skipped: no purchase, and carts carry no identity |
//!
//! Orders are skipped, with the reason, when they are test orders (unless
//! [`Options::include_test_orders`]), cancelled, point-of-sale (unless
//! [`Options::send_pos_orders`], which sends them as `offline`), or from a sales channel not in
//! [`Options::order_sources`] (draft orders, subscription renewals, other channels and apps). Whether an event has the identity
//! Pinterest requires (an email, or both IP address and user agent) is decided once, by
//! [`require_identity`], after the dispatcher has enriched it from a shopper profile. Identity
//! fields are normalized and hashed by [`crate::pinterest::normalize`].

mod fields;
mod money;
mod order;
mod signup;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

pub use self::money::{currency_amount, minor_units};
pub use self::order::{ONLINE_STORE, OrderChannel, OrderFacts, order_rule};
use crate::pinterest::Event;
use crate::shopify::payload::{
    AppUninstalled, CustomersDataRequest, CustomersDelete, CustomersEmailMarketingConsentUpdate,
    CustomersRedact, ShopRedact,
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
    /// `ORDER_SOURCES`: the order `source_name`s sent as storefront `web` checkouts, lowercase
    /// (default `["web"]`, the online store). Any other source is skipped with its reason.
    pub order_sources: Vec<String>,
    /// Which amount becomes `custom_data.value`.
    pub value_source: ValueSource,
    /// Which line-item field becomes the product id in `content_ids` and `contents`.
    pub content_id: ContentIdSource,
    /// `CATALOG_COUNTRY`: the catalog feed's country (ISO alpha-2, uppercase), the `{country}` of a
    /// [`ContentIdSource::Template`].
    pub catalog_country: Option<String>,
    /// `CHECKOUT_EVENT_ID`: the `event_id` of an order's checkout (default
    /// [`CheckoutEventId::OrderId`]).
    pub checkout_event_id: CheckoutEventId,
    /// `CHECKOUT_ON`: when a purchase counts (default [`CheckoutOn::Created`]).
    pub checkout_on: CheckoutOn,
    /// `PAID_STATUSES`: the `financial_status`es (lowercase) that count as payment secured under
    /// `CHECKOUT_ON=paid` (default [`DEFAULT_PAID_STATUSES`]).
    pub paid_statuses: Vec<String>,
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
            order_sources: vec![order::ONLINE_STORE.to_owned()],
            value_source: ValueSource::Subtotal,
            content_id: ContentIdSource::Variant,
            catalog_country: None,
            checkout_event_id: CheckoutEventId::OrderId,
            checkout_on: CheckoutOn::Created,
            paid_statuses: DEFAULT_PAID_STATUSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
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

/// Which `event_id` an order's checkout carries, so Pinterest deduplicates it with the browser
/// Tag's checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckoutEventId {
    /// `EVENT_ID_TEMPLATE` over the order id: this relay's pixel fires the Tag with the same.
    #[default]
    OrderId,
    /// The `checkout_completed` customer event's `id`, from the shopper's pixel record (the
    /// token-matching profile): what Pinterest's own Shopify app fires its Tag with. Without such a
    /// record the order id is used (counted and logged).
    ShopifyEvent,
}

impl CheckoutEventId {
    /// The setting's value: `order_id` or `shopify_event`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutEventId::OrderId => "order_id",
            CheckoutEventId::ShopifyEvent => "shopify_event",
        }
    }
}

impl CheckoutOn {
    /// The setting's value: `created` or `paid`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutOn::Created => "created",
            CheckoutOn::Paid => "paid",
        }
    }
}

impl ValueSource {
    /// The setting's value: `subtotal` or `total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueSource::Subtotal => "subtotal",
            ValueSource::Total => "total",
        }
    }
}

impl Options {
    /// The settings the custom pixel must share with the relay, as it reports them.
    pub fn pixel_settings(&self) -> crate::browser::PixelSettings {
        crate::browser::PixelSettings {
            checkout_event_id: self.checkout_event_id.as_str().to_owned(),
            checkout_on: self.checkout_on.as_str().to_owned(),
            content_id: self.content_id.setting(),
            catalog_country: self.catalog_country.clone().unwrap_or_default(),
            value_source: self.value_source.as_str().to_owned(),
            event_id_template: self.event_id_template.clone(),
        }
    }
}

/// When a purchase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckoutOn {
    /// When the order is created (`orders/create`), as the Tag counts it on the thank-you page.
    #[default]
    Created,
    /// Once payment is secured ([`Options::paid_statuses`]): an unpaid order is skipped `unpaid`
    /// and its `orders/paid` sends it, once.
    Paid,
}

/// The webhook topics the conversion rules need: `orders/create` and `customers/create`, and
/// under [`CheckoutOn::Paid`] `orders/paid` too (under `created` it could only be a duplicate).
pub const fn webhook_topics(checkout_on: CheckoutOn) -> &'static [&'static str] {
    match checkout_on {
        CheckoutOn::Created => &["orders/create", "customers/create"],
        CheckoutOn::Paid => &["orders/create", "orders/paid", "customers/create"],
    }
}

/// The topic that disables a registered store when it removes the app; `pinrelay subscribe`
/// subscribes it beside [`webhook_topics`].
pub const UNINSTALL_TOPIC: &str = "app/uninstalled";

/// The `financial_status`es that count as payment secured by default: paid in full or in part,
/// authorized (for stores that capture later), and refunded after payment (a refund does not undo a
/// purchase).
pub const DEFAULT_PAID_STATUSES: &[&str] = &[
    "paid",
    "partially_paid",
    "authorized",
    "partially_refunded",
    "refunded",
];

/// The order amount sent as `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueSource {
    /// `current_subtotal_price`: after discounts, before shipping and tax (Pinterest's advice).
    #[default]
    Subtotal,
    /// `current_total_price`: what the buyer paid.
    Total,
}

impl ContentIdSource {
    /// The setting's value: `variant`, `sku`, `product` or the template.
    pub fn setting(&self) -> String {
        match self {
            ContentIdSource::Variant => "variant".to_owned(),
            ContentIdSource::Sku => "sku".to_owned(),
            ContentIdSource::Product => "product".to_owned(),
            ContentIdSource::Template(t) => t.clone(),
        }
    }

    /// Reads `CONTENT_ID`: an alias (`variant`, `sku`, `product`) or a template of `{variant_id}`,
    /// `{product_id}`, `{sku}` and `{country}`; a template with `{country}` needs
    /// `catalog_country`.
    ///
    /// # Errors
    /// What is wrong with the template, in words.
    pub fn parse(value: &str, catalog_country: Option<&str>) -> Result<Self, &'static str> {
        match value.trim() {
            "variant" => Ok(Self::Variant),
            "sku" => Ok(Self::Sku),
            "product" => Ok(Self::Product),
            template => {
                let lookup = |name: &str| match name {
                    "variant_id" | "product_id" | "sku" => Some("1".to_owned()),
                    "country" => catalog_country.map(str::to_owned),
                    _ => None,
                };
                if template.contains("{country}") && catalog_country.is_none() {
                    return Err(
                        "a template with {country} needs CATALOG_COUNTRY (the catalog feed's country)",
                    );
                }
                render_content_id(template, lookup)?;
                Ok(Self::Template(template.to_owned()))
            }
        }
    }
    /// The catalog id of a line item under this source, as `content_ids` carries it; `None` when
    /// the item has none (a custom line item, or a template naming an id it lacks). `country` is
    /// the `{country}` of a template ([`Options::catalog_country`]).
    pub fn item_id(&self, item: ItemIds<'_>, country: Option<&str>) -> Option<String> {
        let sku = || item.sku.and_then(fields::non_blank);
        let variant_or_product = || item.variant_id.or(item.product_id).map(|id| id.to_string());
        match self {
            Self::Template(template) => render_content_id(template, |name| match name {
                "variant_id" => item.variant_id.map(|id| id.to_string()),
                "product_id" => item.product_id.map(|id| id.to_string()),
                "sku" => sku(),
                "country" => country.map(str::to_owned),
                _ => None,
            })
            .ok()
            .flatten(),
            Self::Variant => variant_or_product(),
            Self::Sku => sku().or_else(|| item.variant_id.map(|id| id.to_string())),
            Self::Product => item.product_id.map(|id| id.to_string()),
        }
    }
}

/// The ids a line item can be known by in a catalog: a webhook's `line_items[]`, or a recent
/// order's line item read from the Admin API (doctor's `catalog_ids`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemIds<'a> {
    /// `variant_id`.
    pub variant_id: Option<u64>,
    /// `product_id`.
    pub product_id: Option<u64>,
    /// `sku`, as the order line has it.
    pub sku: Option<&'a str>,
}

/// Renders a `CONTENT_ID` template: `Ok(None)` when a placeholder has no value for this item (the
/// item is left out, as a custom line item without ids is).
///
/// # Errors
/// An unknown placeholder, an unbalanced brace, or no placeholder at all.
pub fn render_content_id(
    template: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, &'static str> {
    let mut out = String::with_capacity(template.len() + 20);
    let mut rest = template;
    let mut placeholders = 0;
    let mut missing = false;
    while let Some(open) = rest.find(['{', '}']) {
        let (text, tail) = rest.split_at(open);
        out.push_str(text);
        if tail.starts_with('}') {
            return Err("it has a '}' without a matching '{'");
        }
        let close = tail
            .find('}')
            .ok_or("it has a '{' without a matching '}'")?;
        let name = &tail[1..close];
        if !matches!(name, "variant_id" | "product_id" | "sku" | "country") {
            return Err(
                "the only placeholders are {variant_id}, {product_id}, {sku} and {country}",
            );
        }
        placeholders += 1;
        match value(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => out.push_str(v.trim()),
            None => missing = true,
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    if placeholders == 0 {
        return Err(
            "it is neither variant, sku, product nor a template with a placeholder such as {variant_id}",
        );
    }
    Ok((!missing).then_some(out))
}

/// The line-item field used as the catalog product id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContentIdSource {
    /// `variant_id`, falling back to `product_id` (Shopify's Pinterest catalog uses variant ids).
    #[default]
    Variant,
    /// `sku`, falling back to the variant id.
    Sku,
    /// `product_id`.
    Product,
    /// A template of `{variant_id}`, `{product_id}`, `{sku}` and `{country}`
    /// ([`Options::catalog_country`]), as the catalog feed names its items (e.g.
    /// `shopify_{country}_{product_id}_{variant_id}`).
    Template(String),
}

/// What to do with a webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this event (once [`require_identity`] agrees, after any enrichment).
    Send(Box<Conversion>),
    /// Send nothing, for this reason.
    Skip {
        /// Why.
        reason: SkipReason,
        /// The order skipped, for an order webhook that names its id (the outcome ledger's
        /// subject); `None` for other topics.
        order: Option<u64>,
    },
    /// A mandatory compliance request for dispatch to act on; never a Pinterest event.
    Compliance(ComplianceRequest),
}

impl Outcome {
    /// A skip of a webhook that is not about an order.
    pub fn skip(reason: SkipReason) -> Self {
        Outcome::Skip {
            reason,
            order: None,
        }
    }

    /// A skip of an order.
    pub fn skip_order(reason: SkipReason, order: Option<u64>) -> Self {
        Outcome::Skip { reason, order }
    }
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
    /// A draft order created by staff (`source_name = shopify_draft_order`).
    DraftOrder,
    /// A subscription renewal an app charged (`source_name = subscription_contract…`).
    SubscriptionRenewal,
    /// An order from another sales channel or app (marketplace, social channel, API), by source.
    SalesChannel(String),
    /// A `customers/create` that is not a storefront sign-up (guest checkout, import, staff, app).
    NotASignup,
    /// A browser checkout for an order whose profile came from another checkout token: the first
    /// is kept.
    ProfileConflict,
    /// Pinterest refused a storefront browser event for good: unauthenticated input, counted and
    /// logged, never a dead letter for a human.
    BrowserEventRejected(String),
    /// The event is older than Pinterest accepts and was never sent, so it cannot be.
    Expired {
        /// Its age in whole days.
        days: i64,
    },
    /// A topic the relay does not turn into an event.
    UnmappedTopic(String),
    /// Neither an email, nor mobile ad ids, nor both IP and user agent.
    NotEnoughIdentity,
    /// The order was cancelled before the webhook was handled.
    CancelledOrder,
    /// The order's payment was voided (or its authorization expired): never a purchase.
    VoidedOrder,
    /// `CHECKOUT_ON=paid` and payment is not secured yet; its `orders/paid` sends it.
    Unpaid {
        /// Its `financial_status`.
        status: String,
    },
    /// The shopper has not given marketing consent: a browser event without it, or an order whose
    /// shopper refused it while `ORDER_CONSENT_POLICY` is `skip`.
    Consent,
    /// A consent change for the customer lists, and this dispatcher keeps no audience ledger
    /// (`pinrelay audiences sync` reads consent again at its next run).
    NoAudienceLedger,
}

impl SkipReason {
    /// True when a conversion rule says the webhook is not a conversion to send (a test order, a
    /// point-of-sale order, a shopper's refusal…): reconcile counts it as rightly skipped. False
    /// when a conversion was lost: too old to send by the time it was handled (`expired`), or a
    /// browser event Pinterest refused.
    pub fn is_rule(&self) -> bool {
        match self {
            SkipReason::Expired { .. } | SkipReason::BrowserEventRejected(_) => false,
            SkipReason::TestOrder
            | SkipReason::PosOrder
            | SkipReason::DraftOrder
            | SkipReason::SubscriptionRenewal
            | SkipReason::SalesChannel(_)
            | SkipReason::NotASignup
            | SkipReason::ProfileConflict
            | SkipReason::UnmappedTopic(_)
            | SkipReason::NotEnoughIdentity
            | SkipReason::CancelledOrder
            | SkipReason::VoidedOrder
            | SkipReason::Unpaid { .. }
            | SkipReason::Consent
            | SkipReason::NoAudienceLedger => true,
        }
    }

    /// A short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::TestOrder => "test_order",
            SkipReason::PosOrder => "pos_order",
            SkipReason::DraftOrder => "draft_order",
            SkipReason::SubscriptionRenewal => "subscription_renewal",
            SkipReason::SalesChannel(_) => "sales_channel",
            SkipReason::NotASignup => "not_a_signup",
            SkipReason::BrowserEventRejected(_) => "browser_event_rejected",
            SkipReason::ProfileConflict => "profile_conflict",
            SkipReason::Expired { .. } => "expired",
            SkipReason::UnmappedTopic(_) => "unmapped_topic",
            SkipReason::NotEnoughIdentity => "not_enough_identity",
            SkipReason::CancelledOrder => "cancelled_order",
            SkipReason::VoidedOrder => "voided_order",
            SkipReason::Unpaid { .. } => "unpaid",
            SkipReason::Consent => "consent",
            SkipReason::NoAudienceLedger => "no_audience_ledger",
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
            SkipReason::DraftOrder => f.write_str(
                "a draft order created by staff, not a storefront checkout; add shopify_draft_order to ORDER_SOURCES to send draft orders",
            ),
            SkipReason::SubscriptionRenewal => f.write_str(
                "a subscription renewal charged by an app, not a storefront checkout (the first order of a subscription is sent); add its source to ORDER_SOURCES to send renewals",
            ),
            SkipReason::SalesChannel(source) => write!(
                f,
                "an order from the sales channel or app {source:?}, not the online store's checkout; add it to ORDER_SOURCES to send its orders"
            ),
            SkipReason::NotASignup => f.write_str(
                "a customer created at checkout, by an import, by staff or by an app, not a storefront sign-up (an account registration, or the newsletter form with email marketing consent)",
            ),
            SkipReason::ProfileConflict => f.write_str(
                "a browser checkout for an order that already has a profile from another checkout; the first is kept (a forged or repeated event)",
            ),
            SkipReason::BrowserEventRejected(why) => write!(
                f,
                "Pinterest refused this storefront browser event ({why}); browser events are unauthenticated, so they are skipped, never dead-lettered"
            ),
            SkipReason::Expired { days } => write!(
                f,
                "the event is {days} days old and was never sent; Pinterest accepts events up to 7 days old"
            ),
            SkipReason::UnmappedTopic(t) => {
                write!(f, "topic {t} is not turned into a Pinterest event")
            }
            SkipReason::NotEnoughIdentity => f.write_str(
                "Pinterest needs an email, mobile ad ids, or both IP address and user agent; the webhook has none",
            ),
            SkipReason::CancelledOrder => f.write_str("the order is cancelled"),
            SkipReason::VoidedOrder => f.write_str(
                "the order's payment was voided or its authorization expired: never a purchase",
            ),
            SkipReason::Unpaid { status } => write!(
                f,
                "payment is not secured yet (financial_status {status}) and CHECKOUT_ON=paid; its orders/paid sends it"
            ),
            SkipReason::Consent => f.write_str(
                "the shopper has not given marketing consent (for an order: refused in the browser, and ORDER_CONSENT_POLICY is skip)",
            ),
            SkipReason::NoAudienceLedger => f.write_str(
                "a consent change for the customer lists, and this dispatcher keeps no audience ledger; the next audiences sync reads consent again",
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
    /// `app/uninstalled` (not a compliance topic, but an instruction about the store in the same
    /// way, never an event): a registered store is disabled; its records are kept until
    /// `shop/redact`.
    AppUninstalled {
        /// The shop's domain.
        shop_domain: String,
    },
    /// `customers/delete` (not a compliance topic, never an event): the customer's uploads are
    /// queued for removal from the shop's customer lists. Its body names no shop; Shopify's
    /// customer ids are unique across shops, so a body replayed under another shop's header
    /// removes nobody there.
    CustomerDeleted {
        /// The shop's domain.
        shop_domain: String,
        /// Shopify's customer id.
        customer_id: u64,
    },
    /// `customers_email_marketing_consent/update` (never an event): the customer's email
    /// marketing consent changed; the customer lists re-check them (read by id at the next
    /// audiences pass). Like `customers/delete`, its body names no shop.
    ConsentChanged {
        /// The shop's domain.
        shop_domain: String,
        /// Shopify's customer id.
        customer_id: u64,
        /// When it changed: `X-Shopify-Triggered-At`; dispatch fills in the envelope's received
        /// time when the delivery had none.
        at: Option<DateTime<Utc>>,
    },
}

/// What is wrong with a JSON body, without quoting it: serde's own text quotes the offending value
/// (`invalid type: string "jane@…"`), which may be personal data and would travel into a dead
/// letter's reason and a log line. Only a missing or duplicate field is named.
pub fn json_error_summary(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let what = match e.classify() {
        Category::Syntax => "it is not valid JSON".to_owned(),
        Category::Eof => "it ends too early".to_owned(),
        Category::Io => "it could not be read".to_owned(),
        Category::Data => match text
            .split_once(" at line")
            .map(|(m, _)| m)
            .filter(|m| m.starts_with("missing field `") || m.starts_with("duplicate field `"))
        {
            Some(field) => field.to_owned(),
            None => "a field has the wrong type or value".to_owned(),
        },
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// Why a webhook body cannot be translated (it will be dead-lettered with this reason).
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The body is not JSON of the shape the topic promises.
    #[error(
        "the {topic} body is not a valid Shopify payload: {}",
        json_error_summary(source)
    )]
    InvalidPayload {
        /// The topic that decided the expected shape.
        topic: String,
        /// The JSON error, with line and column (its text may quote the body: never shown as is).
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
    /// A compliance body does not agree with its delivery's headers (or lacks what its topic
    /// requires): it is not acted on.
    #[error("the {topic} request was not carried out: {why}; a replayed or forged delivery?")]
    ComplianceMismatch {
        /// The topic.
        topic: String,
        /// What disagrees.
        why: String,
    },
    /// A body that must name a customer (`customers_email_marketing_consent/update`: `customer_id`
    /// or `id`) names none that reads as a customer id.
    #[error("the {topic} body names no customer (customer_id or id); there is nobody to re-check")]
    NoCustomerId {
        /// The topic.
        topic: Topic,
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
            order::order_event(metadata, parse(topic, body)?, options, now)
        }
        Topic::CustomersCreate => signup::signup_event(metadata, parse(topic, body)?, options, now),
        Topic::CustomersDataRequest => {
            let r: CustomersDataRequest = parse(topic, body)?;
            agrees(metadata, r.shop_domain.as_deref())?;
            required(topic, r.customer.is_some(), "customer")?;
            required(topic, r.data_request.is_some(), "data_request")?;
            Ok(Outcome::Compliance(ComplianceRequest::DataRequest {
                shop_domain: metadata.shop_domain.clone(),
                customer_id: r.customer.and_then(|c| c.id),
                orders_requested: r.orders_requested,
            }))
        }
        Topic::CustomersRedact => {
            let r: CustomersRedact = parse(topic, body)?;
            agrees(metadata, r.shop_domain.as_deref())?;
            required(topic, r.customer.is_some(), "customer")?;
            Ok(Outcome::Compliance(ComplianceRequest::CustomerRedact {
                shop_domain: metadata.shop_domain.clone(),
                customer_id: r.customer.and_then(|c| c.id),
                orders_to_redact: r.orders_to_redact,
            }))
        }
        Topic::ShopRedact => {
            // Records are keyed (and shops allow-listed) by the header's domain, so that is the one
            // to forget, and only when the body, which the HMAC covers, names the same shop.
            let r: ShopRedact = parse(topic, body)?;
            agrees(metadata, r.shop_domain.as_deref())?;
            required(topic, r.shop_id.is_some(), "shop_id")?;
            Ok(Outcome::Compliance(ComplianceRequest::ShopRedact {
                shop_domain: metadata.shop_domain.clone(),
            }))
        }
        Topic::AppUninstalled => {
            // The body (the shop, which the HMAC covers) must name the header's shop: a signed
            // uninstall of one store replayed under another's header disables nothing.
            let r: AppUninstalled = parse(topic, body)?;
            agrees(metadata, r.myshopify_domain.as_deref())?;
            required(topic, r.id.is_some(), "id")?;
            Ok(Outcome::Compliance(ComplianceRequest::AppUninstalled {
                shop_domain: metadata.shop_domain.clone(),
            }))
        }
        Topic::CustomersDelete => {
            let r: CustomersDelete = parse(topic, body)?;
            let customer_id = r.id.ok_or_else(|| MappingError::ComplianceMismatch {
                topic: topic.to_string(),
                why: "its body has no id".to_owned(),
            })?;
            Ok(Outcome::Compliance(ComplianceRequest::CustomerDeleted {
                shop_domain: metadata.shop_domain.clone(),
                customer_id,
            }))
        }
        Topic::CustomersEmailMarketingConsentUpdate => {
            let r: CustomersEmailMarketingConsentUpdate = parse(topic, body)?;
            let customer_id = r.customer().ok_or_else(|| MappingError::NoCustomerId {
                topic: topic.clone(),
            })?;
            Ok(Outcome::Compliance(ComplianceRequest::ConsentChanged {
                shop_domain: metadata.shop_domain.clone(),
                customer_id,
                at: metadata.triggered_at,
            }))
        }
        Topic::OrdersUpdated
        | Topic::CheckoutsCreate
        | Topic::CheckoutsUpdate
        | Topic::Other(_) => Ok(Outcome::skip(SkipReason::UnmappedTopic(topic.to_string()))),
    }
}

/// A compliance body names the shop of the delivery's header. The HMAC covers the body but not the
/// headers, so a captured signed body replayed under a compliance topic is refused here.
fn agrees(metadata: &WebhookMetadata, body_shop: Option<&str>) -> Result<(), MappingError> {
    match body_shop.map(|s| s.trim().to_ascii_lowercase()) {
        Some(shop) if shop == metadata.shop_domain => Ok(()),
        found => Err(MappingError::ComplianceMismatch {
            topic: metadata.topic.to_string(),
            why: match found {
                None => "its body does not name its shop".to_owned(),
                Some(shop) => format!(
                    "its body names shop {shop:?}, the delivery's header {:?}",
                    metadata.shop_domain
                ),
            },
        }),
    }
}

/// A field a compliance body must carry.
fn required(topic: &Topic, present: bool, field: &'static str) -> Result<(), MappingError> {
    if present {
        Ok(())
    } else {
        Err(MappingError::ComplianceMismatch {
            topic: topic.to_string(),
            why: format!("its body has no {field}"),
        })
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
