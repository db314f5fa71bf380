//! The most recent orders' line items with their product and variant ids and SKUs: what the
//! catalog-id probe sends Pinterest to learn which id scheme the catalog uses (findings §3).
//!
//! Shopify prices a query by what it could return, and refuses one above 1,000 points, so the
//! query asks for at most [`MAX_RECENT_ORDERS`] orders of [`LINE_ITEMS_PER_ORDER`] line items.
//! `product` and `variant` are `null` for a custom line item or a deleted product.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::legacy_id;
use super::transport::{AdminApi, AdminError};

/// The most orders one [`AdminApi::recent_line_items`] call reads.
pub const MAX_RECENT_ORDERS: u32 = 25;

/// Line items read per order.
pub const LINE_ITEMS_PER_ORDER: u32 = 10;

/// The newest orders first, each with its first line items.
pub const RECENT_LINE_ITEMS_QUERY: &str = "query pinrelayRecentLineItems($first: Int!, $lineItems: Int!) { \
orders(first: $first, sortKey: CREATED_AT, reverse: true) { nodes { id name createdAt test \
lineItems(first: $lineItems) { nodes { sku product { id } variant { id sku } } } } } }";

/// One recent order and its line items.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentOrder {
    /// The order's GraphQL id (`gid://shopify/Order/450789469`; [`legacy_id`] gives the number).
    pub id: String,
    /// The order name (`#1001`).
    pub name: String,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// A test order (Bogus Gateway or a development store).
    #[serde(default)]
    pub test: bool,
    /// Its first [`LINE_ITEMS_PER_ORDER`] line items.
    #[serde(deserialize_with = "nodes")]
    pub line_items: Vec<RecentLineItem>,
}

/// One line item: the ids a catalog may key its items by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentLineItem {
    /// The SKU at the time of the order (the webhook's `line_items[].sku`).
    #[serde(default)]
    pub sku: Option<String>,
    /// The product, unless the item is custom or the product was deleted.
    #[serde(default)]
    pub product: Option<ProductRef>,
    /// The variant, unless the item is custom or the variant was deleted.
    #[serde(default)]
    pub variant: Option<VariantRef>,
}

impl RecentLineItem {
    /// The product's numeric id (the webhook's `product_id`).
    pub fn product_id(&self) -> Option<u64> {
        legacy_id(&self.product.as_ref()?.id)
    }

    /// The variant's numeric id (the webhook's `variant_id`).
    pub fn variant_id(&self) -> Option<u64> {
        legacy_id(&self.variant.as_ref()?.id)
    }
}

/// A line item's product.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductRef {
    /// `gid://shopify/Product/{id}`.
    pub id: String,
}

/// A line item's variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VariantRef {
    /// `gid://shopify/ProductVariant/{id}`.
    pub id: String,
    /// The variant's current SKU.
    #[serde(default)]
    pub sku: Option<String>,
}

/// A connection's `nodes`.
fn nodes<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    struct Connection<T> {
        nodes: Vec<T>,
    }
    Ok(Connection::deserialize(deserializer)?.nodes)
}

/// `data` of [`RECENT_LINE_ITEMS_QUERY`].
#[derive(Deserialize)]
struct Data {
    #[serde(deserialize_with = "nodes")]
    orders: Vec<RecentOrder>,
}

impl AdminApi {
    /// The `orders` most recent orders (1 to [`MAX_RECENT_ORDERS`]), newest first, test orders
    /// included, each with its first [`LINE_ITEMS_PER_ORDER`] line items.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; without `read_orders` Shopify answers 403
    /// ([`AdminError::MissingScope`]) or a GraphQL access-denied error.
    pub async fn recent_line_items(&self, orders: u32) -> Result<Vec<RecentOrder>, AdminError> {
        let variables = json!({
            "first": orders.clamp(1, MAX_RECENT_ORDERS),
            "lineItems": LINE_ITEMS_PER_ORDER,
        });
        let data: Data = self
            .query(
                RECENT_LINE_ITEMS_QUERY,
                variables,
                "orders (recent line items)",
            )
            .await?;
        Ok(data.orders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_orders_with_custom_and_deleted_items() {
        let data: Data = serde_json::from_value(json!({"orders": {"nodes": [{
            "id": "gid://shopify/Order/450789469",
            "name": "#1001",
            "createdAt": "2026-11-30T10:00:00Z",
            "test": false,
            "lineItems": {"nodes": [
                {"sku": "IPOD-342-N", "product": {"id": "gid://shopify/Product/632910392"},
                 "variant": {"id": "gid://shopify/ProductVariant/808950810", "sku": "IPOD2008PINK"}},
                {"sku": null, "product": null, "variant": null}
            ]}
        }]}}))
        .unwrap();
        let order = &data.orders[0];
        assert_eq!(order.name, "#1001");
        assert_eq!(order.line_items[0].product_id(), Some(632_910_392));
        assert_eq!(order.line_items[0].variant_id(), Some(808_950_810));
        assert_eq!(
            order.line_items[0].variant.as_ref().unwrap().sku.as_deref(),
            Some("IPOD2008PINK")
        );
        assert_eq!(order.line_items[1].product_id(), None);
        assert_eq!(order.line_items[1].sku, None);
    }
}
