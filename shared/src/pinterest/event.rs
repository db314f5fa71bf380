//! The Conversions API request model, serialized exactly as Pinterest's JSON Schema (OpenAPI 5.23)
//! wants it: money as strings, counts as integers, hashed fields as arrays, empty fields omitted.
//!
//! Constructing these types does no hashing: [`super::normalize`] produces the hashed values.

use serde::{Deserialize, Serialize};

/// The request body: `{"data": [...]}` with 1 to [`EventBatch::MAX_EVENTS`] events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The events, in the order Pinterest reports their statuses.
    pub data: Vec<Event>,
}

impl EventBatch {
    /// Pinterest accepts at most this many events per request.
    pub const MAX_EVENTS: usize = 1000;
}

/// Where the conversion happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSource {
    /// An online-store event.
    Web,
    /// A point-of-sale or other offline event (Pinterest cannot deduplicate these with the Tag).
    Offline,
    /// Android app.
    AppAndroid,
    /// iOS app.
    AppIos,
}

/// One conversion event (`data[]` item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `checkout`, `signup`, `page_visit`, ...
    pub event_name: String,
    /// Where the event happened.
    pub action_source: ActionSource,
    /// Unix seconds, never in the future.
    pub event_time: i64,
    /// Shared with the browser Tag so Pinterest counts the conversion once.
    pub event_id: String,
    /// The page of the conversion; never a URL with a secret (such as `order_status_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source_url: Option<String>,
    /// True when the shopper opted out of tracking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<bool>,
    /// Hashed and raw identifiers Pinterest matches on.
    pub user_data: UserData,
    /// Value, currency and products.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<CustomData>,
    /// Two-letter ISO-639-1 language of the shopper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `user_data`: hashed fields are arrays of 64-hex SHA-256 digests; the last four are sent raw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserData {
    /// Email.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub em: Vec<String>,
    /// Phone, E.164 digits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ph: Vec<String>,
    /// Gender `m`/`f`/`n`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ge: Vec<String>,
    /// Date of birth `YYYYMMDD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db: Vec<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ln: Vec<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "fn")]
    pub first_name: Vec<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ct: Vec<String>,
    /// State or province code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub st: Vec<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zp: Vec<String>,
    /// ISO 3166-1 alpha-2 country.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    /// The advertiser's id of the shopper (the Shopify customer id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_id: Vec<String>,
    /// Mobile advertising ids (unused for web orders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashed_maids: Vec<String>,
    /// Raw IP of the shopper's browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip_address: Option<String>,
    /// Raw user agent of the shopper's browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_agent: Option<String>,
    /// Raw Pinterest click id (`epik`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

impl UserData {
    /// Pinterest's identity rule: at least one of `em`, `hashed_maids`, or both
    /// `client_ip_address` and `client_user_agent`.
    pub fn is_sendable(&self) -> bool {
        !self.em.is_empty()
            || !self.hashed_maids.is_empty()
            || (self.client_ip_address.is_some() && self.client_user_agent.is_some())
    }
}

/// `custom_data`: what was bought, for how much.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomData {
    /// ISO-4217 currency code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Decimal string with the currency's own decimals (ISO 4217 minor units: `1500` JPY, `1.235`
    /// KWD, `10.00` USD; see [`crate::mapping::currency_amount`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Catalog ids of the products.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_ids: Vec<String>,
    /// Per-product id, price and quantity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<Content>,
    /// Name of the page or product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_name: Option<String>,
    /// Brand of the product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_brand: Option<String>,
    /// Total quantity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_items: Option<u64>,
    /// The Shopify order id, which also helps Pinterest deduplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// What the shopper searched for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    /// Privacy-law opt-out flags, e.g. `LDP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out_type: Option<String>,
}

/// One product of `custom_data.contents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// Catalog id.
    pub id: String,
    /// Unit price before discounts, as a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_price: Option<String>,
    /// Quantity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_money_as_strings_and_omits_empty_fields() {
        let event = Event {
            event_name: "checkout".into(),
            action_source: ActionSource::Web,
            event_time: 1,
            event_id: "1".into(),
            event_source_url: None,
            opt_out: None,
            user_data: UserData {
                em: vec!["a".repeat(64)],
                first_name: vec!["b".repeat(64)],
                ..Default::default()
            },
            custom_data: Some(CustomData {
                value: Some("10.00".into()),
                num_items: Some(2),
                contents: vec![Content {
                    id: "7".into(),
                    item_price: Some("5.00".into()),
                    quantity: Some(2),
                }],
                ..Default::default()
            }),
            language: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["custom_data"]["value"], "10.00");
        assert_eq!(json["custom_data"]["num_items"], 2);
        assert_eq!(json["user_data"]["fn"][0], "b".repeat(64));
        assert!(json["user_data"].get("ph").is_none());
        assert!(json.get("event_source_url").is_none());
        assert!(json.get("partner_name").is_none());
    }

    #[test]
    fn identity_rule_needs_email_maids_or_ip_and_agent() {
        let mut u = UserData::default();
        assert!(!u.is_sendable());
        u.client_ip_address = Some("203.0.113.7".into());
        assert!(!u.is_sendable());
        u.client_user_agent = Some("Mozilla/5.0".into());
        assert!(u.is_sendable());
        let u = UserData {
            em: vec!["x".into()],
            ..Default::default()
        };
        assert!(u.is_sendable());
    }
}
