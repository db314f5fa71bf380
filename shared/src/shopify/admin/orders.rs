//! The orders of a period (GraphQL `orders`, page by page) and one order's full payload (REST
//! `orders/{id}.json`), for reconcile, replay and the watch.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::transport::{AdminApi, AdminError};

/// Orders per page of [`AdminApi::orders`]: the most Shopify returns.
pub const ORDERS_PAGE_SIZE: u32 = 250;

/// One page of orders created in a period, oldest first.
pub const ORDERS_QUERY: &str = "query pinrelayOrders($first: Int!, $after: String, $query: String!) { \
orders(first: $first, after: $after, sortKey: CREATED_AT, query: $query) { nodes { legacyResourceId name \
createdAt test sourceName cancelledAt displayFinancialStatus currentSubtotalPriceSet { shopMoney { amount currencyCode } } \
currentTotalPriceSet { shopMoney { amount currencyCode } } } \
pageInfo { hasNextPage endCursor } } }";

/// One order as [`AdminApi::orders`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOrder {
    /// The numeric id (the webhook's `id`, GraphQL's `legacyResourceId`).
    pub id: u64,
    /// The order name (`#1001`).
    pub name: String,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// A test order (Bogus Gateway or a development store).
    pub test: bool,
    /// The sales channel (`web`, `pos`, an app id...), when Shopify gives one.
    pub source_name: Option<String>,
    /// When the order was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `displayFinancialStatus` (`PAID`, `PENDING`, `VOIDED`…), when Shopify gives one.
    pub financial_status: Option<String>,
    /// The current subtotal (after discounts and edits, before shipping and tax) in the shop's
    /// currency, the decimal string Shopify gives (`"199.00"`): the relay's default `value`.
    pub subtotal: String,
    /// The current total in the shop's currency.
    pub total: String,
    /// The currency of `subtotal` and `total` (ISO 4217).
    pub currency: String,
}

impl AdminApi {
    /// Every order created in `[from, to)`, oldest first, 250 per page; `progress` gets the
    /// running count after each page.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<AdminOrder>, AdminError> {
        let search = orders_search(from, to);
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let variables = json!({ "first": ORDERS_PAGE_SIZE, "after": after, "query": search });
            let data: Data = self.query(ORDERS_QUERY, variables, "orders").await?;
            for node in data.orders.nodes {
                all.push(node.into_order()?);
            }
            progress(all.len());
            match (
                data.orders.page_info.has_next_page,
                data.orders.page_info.end_cursor,
            ) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// One order's JSON as the REST Admin API has it (`GET orders/{id}.json`, the inner `order`
    /// object). REST rather than GraphQL because this resource has the shape of the
    /// `orders/create` webhook body, so [`crate::mapping::translate`] reads it as one.
    ///
    /// # Errors
    /// [`AdminError::OrderNotFound`] on 404; otherwise as [`AdminApi::graphql`].
    pub async fn order_payload(&self, id: u64) -> Result<Vec<u8>, AdminError> {
        match self.get(&format!("orders/{id}.json")).await {
            Ok(body) => inner_order(&body),
            Err(AdminError::NotFound { .. }) => Err(AdminError::OrderNotFound(id)),
            Err(e) => Err(e),
        }
    }
}

/// The bytes of `order` in a REST `{"order": {...}}` body.
fn inner_order(body: &[u8]) -> Result<Vec<u8>, AdminError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        order: &'a RawValue,
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| AdminError::UnexpectedAnswer {
            what: "orders/{id}.json",
            source: Some(e),
        })?;
    Ok(envelope.order.get().as_bytes().to_vec())
}

/// Shopify's search syntax for `[from, to)` on `created_at`.
fn orders_search(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "created_at:>='{}' created_at:<'{}'",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        to.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// `data` of [`ORDERS_QUERY`].
#[derive(Deserialize)]
struct Data {
    orders: Page<OrderNode>,
}

/// One page of a connection.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page<N> {
    pub(super) nodes: Vec<N>,
    pub(super) page_info: PageInfo,
}

/// Where a connection's next page starts.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    pub(super) has_next_page: bool,
    pub(super) end_cursor: Option<String>,
}

/// GraphQL's `UnsignedInt64`, which Shopify serializes as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum UnsignedInt64 {
    Text(String),
    Number(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderNode {
    legacy_resource_id: UnsignedInt64,
    name: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    test: bool,
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    display_financial_status: Option<String>,
    current_subtotal_price_set: MoneyBag,
    current_total_price_set: MoneyBag,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag {
    shop_money: Money,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Money {
    amount: String,
    currency_code: String,
}

impl OrderNode {
    fn into_order(self) -> Result<AdminOrder, AdminError> {
        let id = match &self.legacy_resource_id {
            UnsignedInt64::Text(s) => s.parse().ok(),
            UnsignedInt64::Number(n) => Some(*n),
        }
        .ok_or(AdminError::UnexpectedAnswer {
            what: "orders (legacyResourceId)",
            source: None,
        })?;
        Ok(AdminOrder {
            id,
            name: self.name,
            created_at: self.created_at,
            test: self.test,
            source_name: self.source_name,
            cancelled_at: self.cancelled_at,
            financial_status: self.display_financial_status,
            subtotal: self.current_subtotal_price_set.shop_money.amount,
            total: self.current_total_price_set.shop_money.amount,
            currency: self.current_total_price_set.shop_money.currency_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_nodes_parse_with_legacy_resource_id_as_a_string() {
        let node: OrderNode = serde_json::from_value(json!({
            "legacyResourceId": "820982911946154508",
            "name": "#9999",
            "createdAt": "2026-11-30T23:59:59Z",
            "test": true,
            "sourceName": "web",
            "cancelledAt": null,
            "currentSubtotalPriceSet": {"shopMoney": {"amount": "180.0", "currencyCode": "USD"}},
            "currentTotalPriceSet": {"shopMoney": {"amount": "199.0", "currencyCode": "USD"}}
        }))
        .unwrap();
        let order = node.into_order().unwrap();
        assert_eq!(
            order,
            AdminOrder {
                id: 820_982_911_946_154_508,
                name: "#9999".into(),
                created_at: "2026-11-30T23:59:59Z".parse().unwrap(),
                test: true,
                source_name: Some("web".into()),
                cancelled_at: None,
                financial_status: None,
                subtotal: "180.0".into(),
                total: "199.0".into(),
                currency: "USD".into(),
            }
        );
    }

    #[test]
    fn order_nodes_with_a_bad_id_are_an_error() {
        let node: OrderNode = serde_json::from_value(json!({
            "legacyResourceId": "gid://shopify/Order/1",
            "name": "#1",
            "createdAt": "2026-11-30T23:59:59Z",
            "cancelledAt": "2026-12-01T00:00:00-05:00",
            "currentSubtotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "EUR"}},
            "currentTotalPriceSet": {"shopMoney": {"amount": "1.00", "currencyCode": "EUR"}}
        }))
        .unwrap();
        assert!(matches!(
            node.into_order(),
            Err(AdminError::UnexpectedAnswer { .. })
        ));
    }

    #[test]
    fn the_inner_order_is_returned_byte_for_byte() {
        let body = br##"{"order": {"id": 1, "name": "#1001" }}"##;
        assert_eq!(
            inner_order(body).unwrap(),
            br##"{"id": 1, "name": "#1001" }"##
        );
        assert!(inner_order(br#"{"errors":"Not Found"}"#).is_err());
    }

    #[test]
    fn the_search_is_a_half_open_created_at_range() {
        let from = "2026-11-01T00:00:00Z".parse().unwrap();
        let to = "2026-12-01T05:00:00Z".parse().unwrap();
        assert_eq!(
            orders_search(from, to),
            "created_at:>='2026-11-01T00:00:00Z' created_at:<'2026-12-01T05:00:00Z'"
        );
    }
}
