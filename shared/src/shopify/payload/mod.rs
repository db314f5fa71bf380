//! Typed Shopify payloads: only the fields the relay uses, all optional, ids as `u64`, money as
//! decimal strings. Unknown fields are ignored.
//!
//! Shopify may omit any field or send it as `null` (protected customer data, POS and draft orders,
//! redacted stores), so every field is an `Option` (or an empty `Vec`) and a `null` reads the same as
//! a missing field. Ids can exceed 2^53 (`820982911946154508`), so they are read as `u64`, never
//! through `f64`; a numeric string id is accepted too. Money stays the decimal string Shopify sent:
//! the relay never does arithmetic on it in floating point. A timestamp string that is not RFC 3339
//! reads as missing rather than failing the whole webhook.
//!
//! This module does not decide anything: [`crate::mapping`] turns these values into events.

mod de;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// An order: the body of `orders/create`, `orders/paid` and `orders/updated`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Order {
    /// The order id; the default checkout `event_id` and `custom_data.order_id`.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
    /// The shop-facing order name such as `#1001` (`{order_name}` in the event id template).
    #[serde(default, deserialize_with = "de::text")]
    pub name: Option<String>,
    /// The buyer's email; the first source of `em`.
    #[serde(default, deserialize_with = "de::text")]
    pub email: Option<String>,
    /// The checkout's contact email; `em` when `email` is empty.
    #[serde(default, deserialize_with = "de::text")]
    pub contact_email: Option<String>,
    /// The buyer's phone; the first source of `ph`.
    #[serde(default, deserialize_with = "de::text")]
    pub phone: Option<String>,
    /// When the order was placed: the `event_time`.
    #[serde(default, deserialize_with = "de::timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the order was processed; `event_time` when `created_at` is missing.
    #[serde(default, deserialize_with = "de::timestamp")]
    pub processed_at: Option<DateTime<Utc>>,
    /// Set when the order is cancelled; its presence is what matters, not its value.
    #[serde(default, deserialize_with = "de::text")]
    pub cancelled_at: Option<String>,
    /// `pending`, `authorized`, `partially_paid`, `paid`, `partially_refunded`, `refunded`,
    /// `voided`: whether payment was secured (`CHECKOUT_ON=paid`).
    #[serde(default, deserialize_with = "de::text")]
    pub financial_status: Option<String>,
    /// True for orders placed with a test gateway.
    #[serde(default, deserialize_with = "de::flag")]
    pub test: Option<bool>,
    /// The storefront checkout's token; a shopper profile applies only with the same token. Absent
    /// for orders that had no storefront checkout.
    #[serde(default, deserialize_with = "de::text")]
    pub checkout_token: Option<String>,
    /// The sales channel: `web`, `pos`, `shopify_draft_order`, an app id...
    #[serde(default, deserialize_with = "de::text")]
    pub source_name: Option<String>,
    /// The buyer's browser IP address.
    #[serde(default, deserialize_with = "de::text")]
    pub browser_ip: Option<String>,
    /// The buyer's browser details.
    #[serde(default)]
    pub client_details: Option<ClientDetails>,
    /// The first page of the buyer's visit, a path or URL with its query string (may carry `epik`).
    #[serde(default, deserialize_with = "de::text")]
    pub landing_site: Option<String>,
    /// Cart attributes written by the storefront (may carry `epik` or `_epik`).
    #[serde(default, deserialize_with = "de::list")]
    pub note_attributes: Vec<NoteAttribute>,
    /// The shop currency (ISO 4217) that the amounts below are in.
    #[serde(default, deserialize_with = "de::text")]
    pub currency: Option<String>,
    /// Line items after edits and discounts, before shipping and tax: the default `value`.
    #[serde(default, deserialize_with = "de::money")]
    pub current_subtotal_price: Option<String>,
    /// What the buyer pays after edits: `value` with `VALUE_SOURCE=total`.
    #[serde(default, deserialize_with = "de::money")]
    pub current_total_price: Option<String>,
    /// The subtotal when the order was placed; used when `current_subtotal_price` is missing.
    #[serde(default, deserialize_with = "de::money")]
    pub subtotal_price: Option<String>,
    /// The total when the order was placed; used when `current_total_price` is missing.
    #[serde(default, deserialize_with = "de::money")]
    pub total_price: Option<String>,
    /// The buyer's locale such as `en` or `fr-CA`: the event `language`.
    #[serde(default, deserialize_with = "de::text")]
    pub customer_locale: Option<String>,
    /// The billing address: the first source of name and location fields.
    #[serde(default)]
    pub billing_address: Option<Address>,
    /// The shipping address: name and location fields when billing has none.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// The customer record, when the order has one.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// What was bought.
    #[serde(default, deserialize_with = "de::list")]
    pub line_items: Vec<LineItem>,
}

/// One line of an order or checkout.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LineItem {
    /// The line's own id.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
    /// The product; null for custom line items.
    #[serde(default, deserialize_with = "de::id")]
    pub product_id: Option<u64>,
    /// The variant; the default catalog id. Null for custom line items.
    #[serde(default, deserialize_with = "de::id")]
    pub variant_id: Option<u64>,
    /// The variant's SKU; the catalog id with `CONTENT_ID=sku`.
    #[serde(default, deserialize_with = "de::text")]
    pub sku: Option<String>,
    /// The unit price before discounts.
    #[serde(default, deserialize_with = "de::money")]
    pub price: Option<String>,
    /// Units bought.
    #[serde(default, deserialize_with = "de::count")]
    pub quantity: Option<u64>,
    /// The product title.
    #[serde(default, deserialize_with = "de::text")]
    pub title: Option<String>,
    /// The product's vendor (brand).
    #[serde(default, deserialize_with = "de::text")]
    pub vendor: Option<String>,
}

/// A postal address (billing, shipping, or a customer's default address).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Address {
    /// First name: `fn`.
    #[serde(default, deserialize_with = "de::text")]
    pub first_name: Option<String>,
    /// Last name: `ln`.
    #[serde(default, deserialize_with = "de::text")]
    pub last_name: Option<String>,
    /// Phone at this address: `ph` when the order has none.
    #[serde(default, deserialize_with = "de::text")]
    pub phone: Option<String>,
    /// City: `ct`.
    #[serde(default, deserialize_with = "de::text")]
    pub city: Option<String>,
    /// Province or state code such as `KY`: `st`.
    #[serde(default, deserialize_with = "de::text")]
    pub province_code: Option<String>,
    /// Postal code: `zp`.
    #[serde(default, deserialize_with = "de::text")]
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 country such as `US`: `country`, and the country code of local phones.
    #[serde(default, deserialize_with = "de::text")]
    pub country_code: Option<String>,
}

/// A customer: the body of `customers/create`, and the `customer` of orders and checkouts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Customer {
    /// The customer id: `external_id`, and the `signup` event id.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
    /// Email: `em` of signups, and of orders without their own.
    #[serde(default, deserialize_with = "de::text")]
    pub email: Option<String>,
    /// Phone (Shopify stores it as E.164).
    #[serde(default, deserialize_with = "de::text")]
    pub phone: Option<String>,
    /// First name.
    #[serde(default, deserialize_with = "de::text")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, deserialize_with = "de::text")]
    pub last_name: Option<String>,
    /// When the customer was created: the `signup` event time.
    #[serde(default, deserialize_with = "de::timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// The customer's default address.
    #[serde(default)]
    pub default_address: Option<Address>,
    /// Classic customer accounts: `enabled` once the customer created an account, `disabled`
    /// (no account: a guest buyer, an import, a contact), `invited` or `declined`.
    #[serde(default, deserialize_with = "de::text")]
    pub state: Option<String>,
    /// Tags; the storefront's newsletter form tags its customers `newsletter`.
    #[serde(default, deserialize_with = "de::tags")]
    pub tags: Vec<String>,
    /// Email marketing consent.
    #[serde(default)]
    pub email_marketing_consent: Option<MarketingConsent>,
}

/// A customer's consent to email marketing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MarketingConsent {
    /// `subscribed`, `pending` (double opt-in not yet confirmed), `not_subscribed`,
    /// `unsubscribed`, `redacted` or `invalid`.
    #[serde(default, deserialize_with = "de::text")]
    pub state: Option<String>,
}

/// The buyer's browser, as Shopify saw it at checkout.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ClientDetails {
    /// The browser IP; `client_ip_address` when the order's `browser_ip` is missing.
    #[serde(default, deserialize_with = "de::text")]
    pub browser_ip: Option<String>,
    /// The browser's user agent: `client_user_agent`.
    #[serde(default, deserialize_with = "de::text")]
    pub user_agent: Option<String>,
    /// The browser's `Accept-Language`.
    #[serde(default, deserialize_with = "de::text")]
    pub accept_language: Option<String>,
}

/// A cart attribute carried onto the order (`note_attributes[]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NoteAttribute {
    /// The attribute name (`epik`, `_epik`...).
    #[serde(default, deserialize_with = "de::text")]
    pub name: Option<String>,
    /// Its value; a number or boolean is read as its text.
    #[serde(default, deserialize_with = "de::text")]
    pub value: Option<String>,
}

/// A checkout: the body of `checkouts/create` and `checkouts/update` (the abandoned-checkout
/// resource). Parsed for completeness; the relay does not turn checkouts into events.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Checkout {
    /// The checkout id (absent from some webhook samples).
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
    /// The checkout token, shared with the browser's checkout events.
    #[serde(default, deserialize_with = "de::text")]
    pub token: Option<String>,
    /// The cart token.
    #[serde(default, deserialize_with = "de::text")]
    pub cart_token: Option<String>,
    /// The buyer's email, once entered.
    #[serde(default, deserialize_with = "de::text")]
    pub email: Option<String>,
    /// The buyer's phone, once entered.
    #[serde(default, deserialize_with = "de::text")]
    pub phone: Option<String>,
    /// When the checkout started.
    #[serde(default, deserialize_with = "de::timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    /// Set once the checkout became an order.
    #[serde(default, deserialize_with = "de::text")]
    pub completed_at: Option<String>,
    /// The checkout currency.
    #[serde(default, deserialize_with = "de::text")]
    pub currency: Option<String>,
    /// Line items after discounts, before shipping and tax.
    #[serde(default, deserialize_with = "de::money")]
    pub subtotal_price: Option<String>,
    /// The total.
    #[serde(default, deserialize_with = "de::money")]
    pub total_price: Option<String>,
    /// The sales channel.
    #[serde(default, deserialize_with = "de::text")]
    pub source_name: Option<String>,
    /// The first page of the visit.
    #[serde(default, deserialize_with = "de::text")]
    pub landing_site: Option<String>,
    /// Cart attributes.
    #[serde(default, deserialize_with = "de::list")]
    pub note_attributes: Vec<NoteAttribute>,
    /// The buyer's locale.
    #[serde(default, deserialize_with = "de::text")]
    pub customer_locale: Option<String>,
    /// The billing address.
    #[serde(default)]
    pub billing_address: Option<Address>,
    /// The shipping address.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// The customer, when known.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// What is in the checkout.
    #[serde(default, deserialize_with = "de::list")]
    pub line_items: Vec<LineItem>,
}

/// The customer named by a compliance request. Only the id is read: the relay keeps no email or
/// phone, so it has nothing to look up by them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ComplianceCustomer {
    /// The customer id.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
}

/// The body of `customers/data_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CustomersDataRequest {
    /// The shop's numeric id.
    #[serde(default, deserialize_with = "de::id")]
    pub shop_id: Option<u64>,
    /// The shop's `*.myshopify.com` domain (covered by the HMAC, unlike the header).
    #[serde(default, deserialize_with = "de::text")]
    pub shop_domain: Option<String>,
    /// The customer whose data is requested.
    #[serde(default)]
    pub customer: Option<ComplianceCustomer>,
    /// The orders the merchant asks about.
    #[serde(default, deserialize_with = "de::ids")]
    pub orders_requested: Vec<u64>,
    /// The request's own id.
    #[serde(default)]
    pub data_request: Option<DataRequestId>,
}

/// `data_request` of a `customers/data_request` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DataRequestId {
    /// The request id, to quote back to the merchant.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
}

/// The body of `customers/redact`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CustomersRedact {
    /// The shop's numeric id.
    #[serde(default, deserialize_with = "de::id")]
    pub shop_id: Option<u64>,
    /// The shop's `*.myshopify.com` domain.
    #[serde(default, deserialize_with = "de::text")]
    pub shop_domain: Option<String>,
    /// The customer to forget.
    #[serde(default)]
    pub customer: Option<ComplianceCustomer>,
    /// The customer's orders to forget.
    #[serde(default, deserialize_with = "de::ids")]
    pub orders_to_redact: Vec<u64>,
}

/// The body of `shop/redact`, sent 48 hours after the shop uninstalls the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ShopRedact {
    /// The shop's numeric id.
    #[serde(default, deserialize_with = "de::id")]
    pub shop_id: Option<u64>,
    /// The shop's `*.myshopify.com` domain.
    #[serde(default, deserialize_with = "de::text")]
    pub shop_domain: Option<String>,
}

/// `app/uninstalled`: the shop the app was removed from (Shopify's REST `Shop` resource).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppUninstalled {
    /// The shop's numeric id.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
    /// The shop's `*.myshopify.com` domain.
    #[serde(default, deserialize_with = "de::text")]
    pub myshopify_domain: Option<String>,
}

/// `customers/delete`: the deleted customer's id (the body carries nothing else of use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomersDelete {
    /// The customer's numeric id.
    #[serde(default, deserialize_with = "de::id")]
    pub id: Option<u64>,
}

/// `customers_email_marketing_consent/update`: whose email marketing consent changed. Its keys
/// are unconfirmed (findings §1), so only the customer's id is read, from `customer_id`, else
/// `id` ([`consent_customer_id`]); the consent itself is read again from the Admin API.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomersEmailMarketingConsentUpdate {
    /// `customer_id`, as sent.
    #[serde(default)]
    pub customer_id: serde_json::Value,
    /// `id`, as sent.
    #[serde(default)]
    pub id: serde_json::Value,
}

impl CustomersEmailMarketingConsentUpdate {
    /// The customer's numeric id: `customer_id`, else `id`, each read by [`consent_customer_id`].
    pub fn customer(&self) -> Option<u64> {
        consent_customer_id(&self.customer_id).or_else(|| consent_customer_id(&self.id))
    }
}

/// A customer id as a consent webhook may carry it: a number, a numeric string, or a
/// `gid://shopify/Customer/N`; `None` for anything else (another type's global id included).
pub fn consent_customer_id(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("gid://shopify/Customer/") {
                Some(tail) => tail.split('?').next()?.parse().ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    #[test]
    fn parses_the_populated_rest_order() {
        let o: Order = serde_json::from_str(ORDER_REST).unwrap();
        assert_eq!(o.id, Some(450_789_469));
        assert_eq!(o.name.as_deref(), Some("#1001"));
        assert_eq!(o.email.as_deref(), Some("bob.norman@mail.example.com"));
        assert_eq!(o.phone.as_deref(), Some("+557734881234"));
        assert_eq!(o.created_at.unwrap().timestamp(), 1_199_980_800);
        assert_eq!(o.cancelled_at, None);
        assert_eq!(o.test, Some(false));
        assert_eq!(o.source_name.as_deref(), Some("web"));
        assert_eq!(o.browser_ip.as_deref(), Some("0.0.0.0"));
        let client = o.client_details.as_ref().unwrap();
        assert_eq!(client.browser_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(client.user_agent, None);
        assert_eq!(
            o.landing_site.as_deref(),
            Some("http://www.example.com?source=abc")
        );
        assert_eq!(o.note_attributes.len(), 2);
        assert_eq!(
            o.note_attributes[0].name.as_deref(),
            Some("custom engraving")
        );
        assert_eq!(o.currency.as_deref(), Some("USD"));
        assert_eq!(o.current_subtotal_price.as_deref(), Some("195.67"));
        assert_eq!(o.current_total_price.as_deref(), Some("199.65"));
        let billing = o.billing_address.as_ref().unwrap();
        assert_eq!(billing.first_name.as_deref(), Some("Bob"));
        assert_eq!(billing.province_code.as_deref(), Some("KY"));
        assert_eq!(billing.country_code.as_deref(), Some("US"));
        assert_eq!(billing.zip.as_deref(), Some("40202"));
        let customer = o.customer.as_ref().unwrap();
        assert_eq!(customer.id, Some(207_119_551));
        assert_eq!(customer.phone.as_deref(), Some("+16136120707"));
        let default = customer.default_address.as_ref().unwrap();
        assert_eq!(default.first_name, None);
        assert_eq!(default.city.as_deref(), Some("Louisville"));
        assert_eq!(o.line_items.len(), 3);
        let li = &o.line_items[0];
        assert_eq!(li.variant_id, Some(39_072_856));
        assert_eq!(li.product_id, Some(632_910_392));
        assert_eq!(li.sku.as_deref(), Some("IPOD2008GREEN"));
        assert_eq!(li.price.as_deref(), Some("199.00"));
        assert_eq!(li.quantity, Some(1));
    }

    #[test]
    fn parses_ids_above_two_to_the_53_exactly() {
        let o: Order = serde_json::from_str(ORDER_SAMPLE).unwrap();
        assert_eq!(o.id, Some(820_982_911_946_154_508));
        assert_eq!(
            o.customer.as_ref().unwrap().id,
            Some(115_310_627_314_723_954)
        );
        assert_eq!(o.line_items[1].id, Some(789_012_345_678_901_234));
        assert_eq!(o.line_items[0].variant_id, None);
        assert_eq!(o.test, Some(true));
        assert!(o.cancelled_at.is_some());
        assert_eq!(o.browser_ip, None);
        assert_eq!(o.client_details, None);
        assert!(o.note_attributes.is_empty());
    }

    #[test]
    fn parses_both_checkout_fixtures() {
        let c: Checkout = serde_json::from_str(CHECKOUT_REST).unwrap();
        assert_eq!(c.id, Some(450_789_469));
        assert_eq!(c.token.as_deref(), Some("2a1ace52255252df566af0faaedfbfa7"));
        assert_eq!(c.subtotal_price.as_deref(), Some("358.20"));
        assert_eq!(c.customer.as_ref().unwrap().id, Some(207_119_551));
        assert_eq!(c.line_items.len(), 2);
        let c: Checkout = serde_json::from_str(CHECKOUT_SAMPLE).unwrap();
        assert_eq!(c.id, None);
        assert_eq!(c.email.as_deref(), Some("example@email.com"));
        assert_eq!(c.line_items[0].id, None);
        assert_eq!(c.line_items[0].vendor.as_deref(), Some("Apple"));
    }

    #[test]
    fn parses_both_customer_fixtures() {
        let c: Customer = serde_json::from_str(CUSTOMER_REST).unwrap();
        assert_eq!(c.id, Some(207_119_551));
        assert_eq!(c.email.as_deref(), Some("bob.norman@mail.example.com"));
        assert_eq!(c.created_at.unwrap().timestamp(), 1_743_611_158);
        let c: Customer = serde_json::from_str(CUSTOMER_SAMPLE).unwrap();
        assert_eq!(c.id, Some(706_405_506_930_370_084));
        assert_eq!(c.phone, None);
        let a = c.default_address.unwrap();
        assert_eq!(a.zip.as_deref(), Some("K2P 2L8"));
        assert_eq!(a.country_code.as_deref(), Some("CA"));
    }

    #[test]
    fn parses_the_compliance_fixtures() {
        let r: CustomersDataRequest = serde_json::from_str(DATA_REQUEST).unwrap();
        assert_eq!(r.shop_id, Some(954_889));
        assert_eq!(r.shop_domain.as_deref(), Some("{shop}.myshopify.com"));
        assert_eq!(r.customer.unwrap().id, Some(191_167));
        assert_eq!(r.orders_requested, vec![299_938, 280_263, 220_458]);
        assert_eq!(r.data_request.unwrap().id, Some(9999));
        let r: CustomersRedact = serde_json::from_str(CUSTOMERS_REDACT).unwrap();
        assert_eq!(r.customer.unwrap().id, Some(191_167));
        assert_eq!(r.orders_to_redact, vec![299_938, 280_263, 220_458]);
        let r: ShopRedact = serde_json::from_str(SHOP_REDACT).unwrap();
        assert_eq!(r.shop_id, Some(954_889));
        assert_eq!(r.shop_domain.as_deref(), Some("{shop}.myshopify.com"));
    }

    #[test]
    fn reads_null_as_missing_everywhere() {
        let o: Order = serde_json::from_str(
            r#"{"id":null,"email":null,"line_items":null,"note_attributes":null,
                "customer":null,"billing_address":null,"client_details":null,"test":null,
                "created_at":null,"current_subtotal_price":null}"#,
        )
        .unwrap();
        assert_eq!(o, Order::default());
        let r: CustomersRedact =
            serde_json::from_str(r#"{"orders_to_redact":null,"customer":{"id":null}}"#).unwrap();
        assert!(r.orders_to_redact.is_empty());
        assert_eq!(r.customer.unwrap().id, None);
    }

    #[test]
    fn ignores_unknown_fields_and_accepts_an_empty_object() {
        let o: Order = serde_json::from_str(r#"{"brand_new_field":{"x":[1,2]}}"#).unwrap();
        assert_eq!(o, Order::default());
    }

    #[test]
    fn a_consent_webhook_names_its_customer_by_number_string_or_global_id() {
        let read = |body: serde_json::Value| {
            serde_json::from_value::<CustomersEmailMarketingConsentUpdate>(body)
                .unwrap()
                .customer()
        };
        assert_eq!(read(serde_json::json!({"customer_id": 42})), Some(42));
        assert_eq!(read(serde_json::json!({"customer_id": " 42 "})), Some(42));
        assert_eq!(
            read(serde_json::json!({"customer_id": "gid://shopify/Customer/42"})),
            Some(42)
        );
        assert_eq!(
            read(serde_json::json!({"customer_id": null, "id": 7})),
            Some(7),
            "id when customer_id is missing"
        );
        assert_eq!(
            read(serde_json::json!({"customer_id": 42, "id": 7})),
            Some(42),
            "customer_id first"
        );
        assert_eq!(
            read(serde_json::json!({"id": "gid://shopify/Customer/9?x=1"})),
            Some(9)
        );
        assert_eq!(
            read(serde_json::json!({"id": "gid://shopify/Order/9"})),
            None,
            "another type's global id is no customer"
        );
        for nobody in [
            serde_json::json!({}),
            serde_json::json!({"customer_id": -1}),
            serde_json::json!({"customer_id": 4.5}),
            serde_json::json!({"customer_id": "x"}),
            serde_json::json!({"customer_id": {"id": 1}}),
            serde_json::json!({"email_address": "a@b.co"}),
        ] {
            assert_eq!(read(nobody.clone()), None, "{nobody}");
        }
    }

    #[test]
    fn accepts_numeric_string_ids_and_text_scalars() {
        let o: Order = serde_json::from_str(
            r#"{"id":"820982911946154508","note_attributes":[{"name":"epik","value":42}],
                "line_items":[{"quantity":"3","price":19.9}]}"#,
        )
        .unwrap();
        assert_eq!(o.id, Some(820_982_911_946_154_508));
        assert_eq!(o.note_attributes[0].value.as_deref(), Some("42"));
        assert_eq!(o.line_items[0].quantity, Some(3));
        assert_eq!(o.line_items[0].price.as_deref(), Some("19.9"));
    }

    #[test]
    fn rejects_ids_that_are_not_whole_numbers() {
        for body in [
            r#"{"id":-1}"#,
            r#"{"id":1.5}"#,
            r#"{"id":"abc"}"#,
            r#"{"id":{}}"#,
            r#"{"id":18446744073709551616}"#,
        ] {
            assert!(serde_json::from_str::<Order>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn reads_an_unparsable_timestamp_as_missing() {
        let o: Order =
            serde_json::from_str(r#"{"created_at":"yesterday","processed_at":12}"#).unwrap();
        assert_eq!(o.created_at, None);
        assert_eq!(o.processed_at, None);
    }
}
