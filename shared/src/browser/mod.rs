//! First-party browser events from the storefront custom pixel (`infra/shopify/custom-pixel.js`):
//! the strict wire format, and how each event becomes a Pinterest event or a shopper profile.
//!
//! The browser endpoint is unauthenticated, so this module never lets a browser event create or
//! alter a `checkout`: a browser checkout only records a [`Profile`] that enriches the verified
//! order webhook. Pure: no I/O, and `now` is an argument.

mod translate;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::translate::{BrowserOutcome, Profile, translate};

/// The largest body the endpoint accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const MAX_URL: usize = 2048;
const MAX_ID: usize = 128;
const MAX_TEXT: usize = 256;
const MAX_CLICK_ID: usize = 512;
const MAX_ITEMS: usize = 100;

/// The event types a pixel may relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrowserEventName {
    /// `page_viewed`, `product_viewed`.
    PageVisit,
    /// `collection_viewed`.
    ViewCategory,
    /// `product_added_to_cart`.
    AddToCart,
    /// `search_submitted`.
    Search,
    /// `checkout_completed`: recorded as a profile, never sent.
    Checkout,
}

impl BrowserEventName {
    /// The Pinterest `event_name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PageVisit => "page_visit",
            Self::ViewCategory => "view_category",
            Self::AddToCart => "add_to_cart",
            Self::Search => "search",
            Self::Checkout => "checkout",
        }
    }
}

/// Consent as the pixel saw it; `None` means unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// `marketingAllowed`.
    #[serde(default)]
    pub marketing: Option<bool>,
    /// `saleOfDataAllowed`.
    #[serde(default)]
    pub sale_of_data: Option<bool>,
    /// `analyticsProcessingAllowed`.
    #[serde(default)]
    pub analytics: Option<bool>,
}

/// UTM parameters of the landing page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utm {
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Value and products of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserCustom {
    /// Decimal string.
    #[serde(default)]
    pub value: Option<String>,
    /// ISO-4217.
    #[serde(default)]
    pub currency: Option<String>,
    /// Total quantity.
    #[serde(default)]
    pub num_items: Option<u64>,
    /// Product ids.
    #[serde(default)]
    pub content_ids: Vec<String>,
    /// Products.
    #[serde(default)]
    pub contents: Vec<BrowserContent>,
    /// The search query.
    #[serde(default)]
    pub search_string: Option<String>,
}

/// One product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserContent {
    /// Product id.
    pub id: String,
    /// Decimal string.
    #[serde(default)]
    pub item_price: Option<String>,
    /// Quantity.
    #[serde(default)]
    pub quantity: Option<u64>,
}

/// The order a browser checkout belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserOrder {
    /// The numeric Shopify order id, as a string.
    pub order_id: String,
    /// The checkout token.
    #[serde(default)]
    pub checkout_token: Option<String>,
    /// The `checkout_completed` customer event's `id`: what Pinterest's own Shopify app uses as
    /// the Tag's `eventID`, so the relay's checkout can share it (`CHECKOUT_EVENT_ID=shopify_event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify_event_id: Option<String>,
}

/// The pixel's event, as posted (wire format v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserEvent {
    /// Wire format version, 1.
    pub v: u8,
    /// The `*.myshopify.com` domain.
    pub shop: String,
    /// Which event.
    pub event: BrowserEventName,
    /// Shopify's analytics event id (the order id for checkouts): the Tag's `event_id`.
    pub event_id: String,
    /// When it happened, from the pixel.
    pub timestamp: DateTime<Utc>,
    /// Shopify's client id of the browser.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The page.
    #[serde(default)]
    pub page_url: Option<String>,
    /// The referrer.
    #[serde(default)]
    pub referrer: Option<String>,
    /// Pinterest click id (`epik`).
    #[serde(default)]
    pub click_id: Option<String>,
    /// UTM parameters.
    #[serde(default)]
    pub utm: Utm,
    /// Consent.
    #[serde(default)]
    pub consent: Consent,
    /// Value and products.
    #[serde(default)]
    pub custom: Option<BrowserCustom>,
    /// For checkouts.
    #[serde(default)]
    pub order: Option<BrowserOrder>,
    /// The pasted pixel's settings, [`PixelSettings::wire`]: the relay counts events whose settings
    /// differ from its own, so drift between the pixel and the stack shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// `pinrelay doctor`'s reachability probe: checked like any event, answered, never queued.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
}

impl BrowserEvent {
    /// True only with an explicit marketing consent (`marketingAllowed`); unknown counts as no.
    pub fn has_marketing_consent(&self) -> bool {
        self.consent.marketing == Some(true)
    }

    /// The event reduced to what the relay may keep without marketing consent: its identity
    /// (shop, name, id, time), the consent flags and, for a checkout, the order id and checkout
    /// token. The client id, page, referrer, click id, UTMs and products are dropped, so a
    /// consent-only record (or a forged one) never carries shopper data into the queue.
    pub fn consent_only(self) -> Self {
        Self {
            client_id: None,
            page_url: None,
            referrer: None,
            click_id: None,
            utm: Utm::default(),
            custom: None,
            ..self
        }
    }
}

/// The settings the custom pixel shares with the relay, as the pixel reports them in every event
/// (`settings`): `checkout_event_id=order_id&checkout_on=created&content_id=variant&catalog_country=&value_source=subtotal&event_id_template={order_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelSettings {
    /// `CHECKOUT_EVENT_ID`.
    pub checkout_event_id: String,
    /// `CHECKOUT_ON`.
    pub checkout_on: String,
    /// `CONTENT_ID`.
    pub content_id: String,
    /// `CATALOG_COUNTRY` (empty when unset).
    pub catalog_country: String,
    /// `VALUE_SOURCE`.
    pub value_source: String,
    /// `EVENT_ID_TEMPLATE`.
    pub event_id_template: String,
}

impl PixelSettings {
    /// The form-encoded string the pixel sends.
    pub fn wire(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("checkout_event_id", &self.checkout_event_id)
            .append_pair("checkout_on", &self.checkout_on)
            .append_pair("content_id", &self.content_id)
            .append_pair("catalog_country", &self.catalog_country)
            .append_pair("value_source", &self.value_source)
            .append_pair("event_id_template", &self.event_id_template)
            .finish()
    }

    /// The names of the settings on which a pixel's `wire` string differs from these (a missing
    /// one differs); empty when they agree.
    pub fn differences(&self, wire: &str) -> Vec<&'static str> {
        let theirs: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(wire.as_bytes())
                .into_owned()
                .collect();
        [
            ("checkout_event_id", &self.checkout_event_id),
            ("checkout_on", &self.checkout_on),
            ("content_id", &self.content_id),
            ("catalog_country", &self.catalog_country),
            ("value_source", &self.value_source),
            ("event_id_template", &self.event_id_template),
        ]
        .into_iter()
        .filter(|(name, ours)| theirs.get(*name) != Some(*ours))
        .map(|(name, _)| name)
        .collect()
    }
}

/// A browser event plus what only the server knows: the client's IP and user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedBrowserEvent {
    /// The pixel's event.
    pub event: BrowserEvent,
    /// From the request, never from the body.
    pub client_ip: Option<IpAddr>,
    /// From the request's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Why a browser event is refused (the endpoint answers 4xx with this message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrowserEventError {
    /// Over [`MAX_BODY_BYTES`].
    #[error("the event is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Not JSON of the wire format (unknown fields and event names included).
    #[error("the event is not a valid pinrelay browser event: {0}")]
    Invalid(String),
    /// A field is too long or empty.
    #[error("the field {0} is empty or too long")]
    Field(&'static str),
    /// A field does not hold what it must (a decimal, a currency code, a shop domain).
    #[error("the field {field} must be {expected}")]
    Format {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The event's time is too far from the server's clock.
    #[error(
        "the event's timestamp is outside the accepted window (from {MAX_EVENT_AGE_HOURS} hours ago to {MAX_CLOCK_SKEW_MINUTES} minutes ahead)"
    )]
    Timestamp,
}

/// Browser events older than this are refused at the endpoint: the pixel posts them as they happen.
pub const MAX_EVENT_AGE_HOURS: i64 = 24;
/// How far ahead of the server's clock a browser's clock may be.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 60;

/// Refuses an event whose timestamp is outside [`MAX_EVENT_AGE_HOURS`] ago to
/// [`MAX_CLOCK_SKEW_MINUTES`] ahead of `now`.
///
/// # Errors
/// [`BrowserEventError::Timestamp`].
pub fn check_time(event: &BrowserEvent, now: DateTime<Utc>) -> Result<(), BrowserEventError> {
    let earliest = now - chrono::Duration::hours(MAX_EVENT_AGE_HOURS);
    let latest = now + chrono::Duration::minutes(MAX_CLOCK_SKEW_MINUTES);
    if event.timestamp < earliest || event.timestamp > latest {
        return Err(BrowserEventError::Timestamp);
    }
    Ok(())
}

/// A plain non-negative decimal such as `19.99` (at most 12 digits before the point, 6 after).
fn is_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && int.len() <= 12
        && frac.len() <= 6
        && digits(int)
        && digits(frac)
        && s.contains('.') != frac.is_empty()
}

/// An ISO 4217 code's shape: three ASCII capital letters.
fn is_currency_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Parses and validates a posted body.
///
/// # Errors
/// [`BrowserEventError`] for anything outside the wire format.
pub fn parse(body: &[u8]) -> Result<BrowserEvent, BrowserEventError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BrowserEventError::TooLarge);
    }
    let event: BrowserEvent =
        serde_json::from_slice(body).map_err(|e| BrowserEventError::Invalid(e.to_string()))?;
    if event.v != 1 {
        return Err(BrowserEventError::Invalid(format!(
            "unsupported version {}",
            event.v
        )));
    }
    let required = |name, value: &str, max| {
        if value.trim().is_empty() || value.len() > max {
            Err(BrowserEventError::Field(name))
        } else {
            Ok(())
        }
    };
    let optional = |name, value: &Option<String>, max| match value {
        Some(v) if v.len() > max => Err(BrowserEventError::Field(name)),
        _ => Ok(()),
    };
    required("shop", &event.shop, MAX_TEXT)?;
    if !crate::shopify::metadata::is_shop_domain(&event.shop.trim().to_ascii_lowercase()) {
        return Err(BrowserEventError::Format {
            field: "shop",
            expected: "the store's *.myshopify.com domain",
        });
    }
    required("event_id", &event.event_id, MAX_ID)?;
    optional("settings", &event.settings, MAX_TEXT)?;
    optional("client_id", &event.client_id, MAX_ID)?;
    optional("page_url", &event.page_url, MAX_URL)?;
    optional("referrer", &event.referrer, MAX_URL)?;
    optional("click_id", &event.click_id, MAX_CLICK_ID)?;
    for (name, v) in [
        ("utm.source", &event.utm.source),
        ("utm.medium", &event.utm.medium),
        ("utm.campaign", &event.utm.campaign),
        ("utm.term", &event.utm.term),
        ("utm.content", &event.utm.content),
    ] {
        optional(name, v, MAX_TEXT)?;
    }
    if let Some(c) = &event.custom {
        optional("custom.value", &c.value, 32)?;
        optional("custom.currency", &c.currency, 3)?;
        optional("custom.search_string", &c.search_string, MAX_TEXT)?;
        if c.value.as_deref().is_some_and(|v| !is_decimal(v)) {
            return Err(BrowserEventError::Format {
                field: "custom.value",
                expected: "a plain decimal such as 19.99",
            });
        }
        if c.currency.as_deref().is_some_and(|v| !is_currency_code(v)) {
            return Err(BrowserEventError::Format {
                field: "custom.currency",
                expected: "an ISO 4217 code such as USD",
            });
        }
        if c.content_ids.len() > MAX_ITEMS || c.contents.len() > MAX_ITEMS {
            return Err(BrowserEventError::Field("custom.contents"));
        }
        for id in &c.content_ids {
            required("custom.content_ids", id, MAX_ID)?;
        }
        for item in &c.contents {
            required("custom.contents.id", &item.id, MAX_ID)?;
            optional("custom.contents.item_price", &item.item_price, 32)?;
            if item.item_price.as_deref().is_some_and(|v| !is_decimal(v)) {
                return Err(BrowserEventError::Format {
                    field: "custom.contents.item_price",
                    expected: "a plain decimal such as 19.99",
                });
            }
        }
    }
    match (&event.event, &event.order) {
        (BrowserEventName::Checkout, Some(order)) => {
            // A positive decimal that fits a Shopify id (u64); no sign, no spaces.
            if !order.order_id.bytes().all(|b| b.is_ascii_digit())
                || !order.order_id.parse::<u64>().is_ok_and(|id| id > 0)
            {
                return Err(BrowserEventError::Field("order.order_id"));
            }
            optional("order.checkout_token", &order.checkout_token, MAX_ID)?;
            optional("order.shopify_event_id", &order.shopify_event_id, MAX_ID)?;
        }
        (BrowserEventName::Checkout, None) => return Err(BrowserEventError::Field("order")),
        (_, Some(_)) => return Err(BrowserEventError::Field("order")),
        (_, None) => {}
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pinterest::normalize;
    use serde_json::json;

    fn body(overrides: serde_json::Value) -> Vec<u8> {
        let mut event = json!({
            "v": 1,
            "shop": "example.myshopify.com",
            "event": "add_to_cart",
            "event_id": "sh-88a3c2",
            "timestamp": "2026-11-29T08:00:00.000Z",
            "client_id": "Client-7",
            "page_url": "https://example.com/products/x?epik=abc",
            "click_id": "abc",
            "consent": {"marketing": true, "sale_of_data": true, "analytics": true},
            "custom": {"value": "12.50", "currency": "USD", "num_items": 2,
                       "contents": [{"id": "39072856", "item_price": "6.25", "quantity": 2}]}
        });
        if let (Some(e), Some(o)) = (event.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                e.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_vec(&event).unwrap()
    }

    fn received(b: &[u8]) -> ReceivedBrowserEvent {
        ReceivedBrowserEvent {
            event: parse(b).unwrap(),
            client_ip: "203.0.113.7".parse().ok(),
            user_agent: Some("Mozilla/5.0".into()),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-29T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn consented_add_to_cart_becomes_a_pinterest_event_with_the_pixels_id() {
        let BrowserOutcome::Send(event) = translate(&received(&body(json!({}))), now()) else {
            panic!("expected an event");
        };
        assert_eq!(event.event_name, "add_to_cart");
        assert_eq!(event.event_id, "sh-88a3c2");
        assert_eq!(event.user_data.click_id.as_deref(), Some("abc"));
        assert_eq!(
            event.user_data.client_ip_address.as_deref(),
            Some("203.0.113.7")
        );
        assert!(event.user_data.is_sendable());
        // external_id is the SHA-256 of the lowercased client id, never the raw id.
        assert_eq!(
            event.user_data.external_id,
            vec![normalize::sha256_hex("client-7")]
        );
        let custom = event.custom_data.unwrap();
        assert_eq!(custom.value.as_deref(), Some("12.50"));
        assert_eq!(custom.opt_out_type, None);
    }

    #[test]
    fn events_without_marketing_consent_are_not_sent() {
        for consent in [json!({"marketing": false}), json!({})] {
            let b = body(json!({ "consent": consent }));
            assert_eq!(translate(&received(&b), now()), BrowserOutcome::NoConsent);
        }
    }

    #[test]
    fn a_browser_checkout_without_consent_keeps_only_the_refusal() {
        let b = body(json!({"event": "checkout", "event_id": "450789469",
                            "consent": {"marketing": false, "sale_of_data": false},
                            "order": {"order_id": "450789469", "checkout_token": "t"}}));
        let BrowserOutcome::Profile { order_id, profile } = translate(&received(&b), now()) else {
            panic!("expected a profile");
        };
        assert_eq!(order_id, 450_789_469);
        assert_eq!(
            *profile,
            Profile {
                consent: Consent {
                    marketing: Some(false),
                    sale_of_data: Some(false),
                    analytics: None,
                },
                checkout_token_sha256: Some(normalize::sha256_hex("t")),
                ..Profile::default()
            }
        );
    }

    #[test]
    fn refused_sale_of_data_marks_the_event_ldp() {
        let b = body(json!({"consent": {"marketing": true, "sale_of_data": false}}));
        let BrowserOutcome::Send(event) = translate(&received(&b), now()) else {
            panic!("expected an event");
        };
        assert_eq!(
            event.custom_data.unwrap().opt_out_type.as_deref(),
            Some("LDP")
        );
    }

    #[test]
    fn a_browser_checkout_only_becomes_a_profile() {
        let b = body(json!({"event": "checkout", "event_id": "450789469",
                            "order": {"order_id": "450789469", "checkout_token": "t"}}));
        let BrowserOutcome::Profile { order_id, profile } = translate(&received(&b), now()) else {
            panic!("expected a profile");
        };
        assert_eq!(order_id, 450_789_469);
        assert_eq!(profile.click_id.as_deref(), Some("abc"));
        assert_eq!(profile.client_ip.as_deref(), Some("203.0.113.7"));
    }

    #[test]
    fn browser_amounts_get_the_currencys_own_decimals() {
        for (currency, value, price, want_value, want_price) in [
            ("JPY", "3000.00", "1500.00", "3000", "1500"),
            ("KWD", "1.2345", "0.5", "1.235", "0.500"),
            ("USD", "12.5", "6.25", "12.50", "6.25"),
        ] {
            let b = body(
                json!({"custom": {"value": value, "currency": currency, "num_items": 2,
                "contents": [{"id": "39072856", "item_price": price, "quantity": 2}]}}),
            );
            let BrowserOutcome::Send(event) = translate(&received(&b), now()) else {
                panic!("expected an event");
            };
            let custom = event.custom_data.unwrap();
            assert_eq!(custom.value.as_deref(), Some(want_value), "{currency}");
            assert_eq!(
                custom.contents[0].item_price.as_deref(),
                Some(want_price),
                "{currency}"
            );
        }
    }

    #[test]
    fn junk_values_shops_and_times_are_refused_at_the_edge() {
        for (custom, field) in [
            (json!({"value": "1e3", "currency": "USD"}), "custom.value"),
            (json!({"value": "abc", "currency": "USD"}), "custom.value"),
            (json!({"value": "-2", "currency": "USD"}), "custom.value"),
            (json!({"value": "2.", "currency": "USD"}), "custom.value"),
            (json!({"value": "2", "currency": "usd"}), "custom.currency"),
            (json!({"value": "2", "currency": "US1"}), "custom.currency"),
            (
                json!({"contents": [{"id": "1", "item_price": "-2"}]}),
                "custom.contents.item_price",
            ),
        ] {
            let err = parse(&body(json!({ "custom": custom }))).unwrap_err();
            assert!(
                matches!(err, BrowserEventError::Format { field: f, .. } if f == field),
                "{custom}: {err}"
            );
        }
        for shop in ["a#b", "evil.com", "shop.myshopify.com/../x"] {
            let err = parse(&body(json!({ "shop": shop }))).unwrap_err();
            assert!(
                matches!(err, BrowserEventError::Format { field: "shop", .. }),
                "{shop}"
            );
        }
        let event = parse(&body(json!({}))).unwrap();
        assert!(check_time(&event, event.timestamp).is_ok());
        let later = event.timestamp + chrono::Duration::hours(MAX_EVENT_AGE_HOURS + 1);
        assert_eq!(check_time(&event, later), Err(BrowserEventError::Timestamp));
        let earlier = event.timestamp - chrono::Duration::minutes(MAX_CLOCK_SKEW_MINUTES + 1);
        assert_eq!(
            check_time(&event, earlier),
            Err(BrowserEventError::Timestamp)
        );
    }

    #[test]
    fn the_page_url_is_sent_as_origin_and_path_only() {
        let sent = |page_url: serde_json::Value| {
            let b = body(json!({ "page_url": page_url }));
            let BrowserOutcome::Send(event) = translate(&received(&b), now()) else {
                panic!("expected an event");
            };
            event.event_source_url
        };
        for (page_url, want) in [
            (
                "https://example.com/products/x?epik=abc&utm_source=pinterest#reviews",
                "https://example.com/products/x",
            ),
            ("https://example.com", "https://example.com/"),
            (
                "http://shop.example:8080/search?q=secret",
                "http://shop.example:8080/search",
            ),
            (
                "https://user:pass@example.com/checkouts/cn/abc/thank-you?key=tok",
                "https://example.com/checkouts/cn/abc/thank-you",
            ),
            (
                "HTTPS://Example.COM/a%20b/?x=1",
                "https://example.com/a%20b/",
            ),
        ] {
            assert_eq!(sent(json!(page_url)).as_deref(), Some(want), "{page_url}");
        }
        for dropped in [
            "not a url",
            "/products/x?epik=abc",
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com/file",
            "file:///etc/passwd",
            "",
        ] {
            assert_eq!(sent(json!(dropped)), None, "{dropped:?}");
        }
        assert_eq!(sent(serde_json::Value::Null), None);
    }

    #[test]
    fn future_timestamps_are_clamped_to_now() {
        let b = body(json!({"timestamp": "2030-01-01T00:00:00Z"}));
        let BrowserOutcome::Send(event) = translate(&received(&b), now()) else {
            panic!("expected an event");
        };
        assert_eq!(event.event_time, now().timestamp());
    }

    #[test]
    fn parse_rejects_anything_outside_the_wire_format() {
        let cases = [
            body(json!({"event": "purchase"})),
            body(json!({"unexpected": 1})),
            body(json!({"v": 2})),
            body(json!({"event_id": ""})),
            body(json!({"page_url": "x".repeat(3000)})),
            body(json!({"event": "checkout"})),
            body(json!({"event": "checkout", "order": {"order_id": "gid://shopify/Order/1"}})),
            body(json!({"order": {"order_id": "1"}})),
            body(json!({"event": "checkout", "order": {"order_id": "0"}})),
            body(json!({"event": "checkout", "order": {"order_id": "18446744073709551616"}})),
            body(json!({"event": "checkout", "order": {"order_id": "+1"}})),
            b"not json".to_vec(),
        ];
        for case in cases {
            assert!(parse(&case).is_err(), "{}", String::from_utf8_lossy(&case));
        }
        assert_eq!(
            parse(&vec![b' '; MAX_BODY_BYTES + 1]),
            Err(BrowserEventError::TooLarge)
        );
    }
}
