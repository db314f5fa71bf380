//! The shop's newest order: its id, name and creation time, and nothing that needs more than
//! `read_orders` (`pinrelay doctor` asks whether it reached the relay).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::transport::{AdminApi, AdminError};

/// The newest order, by creation time.
pub const NEWEST_ORDER_QUERY: &str = "query pinrelayNewestOrder { \
orders(first: 1, sortKey: CREATED_AT, reverse: true) { nodes { legacyResourceId name createdAt } } }";

/// The shop's newest order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewestOrder {
    /// The numeric id (the webhook's `id`), as GraphQL writes it: a string.
    #[serde(deserialize_with = "number")]
    pub legacy_resource_id: u64,
    /// The order name (`#1001`).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
struct Data {
    orders: Nodes,
}

#[derive(Deserialize)]
struct Nodes {
    nodes: Vec<NewestOrder>,
}

impl AdminApi {
    /// The shop's newest order; `None` when it has none.
    ///
    /// # Errors
    /// See [`AdminApi::query`].
    pub async fn newest_order(&self) -> Result<Option<NewestOrder>, AdminError> {
        let data: Data = self
            .query(NEWEST_ORDER_QUERY, json!({}), "orders (the newest)")
            .await?;
        Ok(data.orders.nodes.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_newest_order_or_none() {
        let data: Data = serde_json::from_value(json!({"orders": {"nodes": [{
            "legacyResourceId": "450789469", "name": "#1001", "createdAt": "2026-11-30T10:00:00Z"
        }]}}))
        .unwrap();
        assert_eq!(data.orders.nodes[0].legacy_resource_id, 450_789_469);
        let empty: Data = serde_json::from_value(json!({"orders": {"nodes": []}})).unwrap();
        assert!(empty.orders.nodes.is_empty());
    }
}
