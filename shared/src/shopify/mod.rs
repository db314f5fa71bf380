//! Shopify's side of the relay: webhook signatures, delivery headers and payload types, and the
//! Admin API client.
//!
//! Everything here is pure (no I/O, no clock, no environment) except [`admin`], the HTTP client of
//! the Admin API.

pub mod admin;
pub mod metadata;
pub mod payload;
pub mod verify;

pub use admin::{
    AdminApi, AdminError, AdminOrder, RetryPolicy, ShopInfo, SubscriptionCreated,
    WebhookSubscription,
};
pub use metadata::{MetadataError, Topic, WebhookMetadata};
pub use verify::{VerifyError, WebhookSecrets, sign, verify};

/// False when a signed order names another shop: its `order_status_url` path starts with the
/// shop's numeric id (`https://{shop}.myshopify.com/548380009/orders/…`), and that id is not
/// `shop_id`. True when it names `shop_id`, or names no shop at all (a payload without the URL:
/// nothing to tell by, and Shopify's order ids are unique across stores).
pub fn order_belongs_to(body: &[u8], shop_id: u64) -> bool {
    #[derive(serde::Deserialize)]
    struct Order {
        #[serde(default)]
        order_status_url: Option<String>,
    }
    let Ok(Order {
        order_status_url: Some(url),
    }) = serde_json::from_slice::<Order>(body)
    else {
        return true;
    };
    let Ok(url) = url::Url::parse(&url) else {
        return true;
    };
    match url.path_segments().and_then(|mut s| s.next()) {
        Some(first) if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() => {
            first == shop_id.to_string()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_order_belongs_to_the_shop_its_status_url_names() {
        let order = |url: &str| format!(r#"{{"id": 1, "order_status_url": "{url}"}}"#);
        let ours =
            order("https://jsmith.myshopify.com/548380009/orders/1234abcd/authenticate?key=k");
        assert!(super::order_belongs_to(ours.as_bytes(), 548_380_009));
        assert!(!super::order_belongs_to(ours.as_bytes(), 1_000_001));
        assert!(super::order_belongs_to(br#"{"id": 1}"#, 1_000_001));
        assert!(super::order_belongs_to(b"not json", 1_000_001));
    }
}
