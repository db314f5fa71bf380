//! Given customers by id, with the fields of [`super::CUSTOMERS_QUERY`] (GraphQL `nodes`, at most
//! [`CUSTOMER_NODES_MAX`] ids a call): what a consent webhook's re-check reads fresh. A customer
//! Shopify no longer has comes back as a `null` node, and is left out of the answer. Each address
//! is hashed as it is read ([`crate::audiences::Customer::new`]).

use serde::Deserialize;
use serde_json::json;

use super::customers::CustomerNode;
use super::transport::{AdminApi, AdminError};
use crate::audiences::{Customer, CustomerId};

/// The most ids one `nodes` call takes (Shopify's limit).
pub const CUSTOMER_NODES_MAX: usize = 250;

/// Customers by global id, with the same fields as [`super::CUSTOMERS_QUERY`].
pub const CUSTOMER_NODES_QUERY: &str = "query pinrelayCustomerNodes($ids: [ID!]!) { \
nodes(ids: $ids) { ... on Customer { id defaultEmailAddress { emailAddress } \
emailMarketingConsent { marketingState } dataSaleOptOut numberOfOrders updatedAt } } }";

/// `data` of [`CUSTOMER_NODES_QUERY`]: one entry per id asked, `null` for a missing node.
#[derive(Deserialize)]
struct Data {
    nodes: Vec<Option<CustomerNode>>,
}

/// `gid://shopify/Customer/{id}`.
fn customer_gid(id: CustomerId) -> String {
    format!("gid://shopify/Customer/{id}")
}

impl AdminApi {
    /// The customers of `ids` that exist, read now, [`CUSTOMER_NODES_MAX`] ids a call; an id
    /// missing from the answer is a customer Shopify no longer has.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; without `read_customers` (and protected customer data access)
    /// Shopify answers 403 or an access-denied error.
    pub async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>, AdminError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CUSTOMER_NODES_MAX) {
            let gids: Vec<String> = chunk.iter().map(|id| customer_gid(*id)).collect();
            let data: Data = self
                .query(
                    CUSTOMER_NODES_QUERY,
                    json!({ "ids": gids }),
                    "customers by id",
                )
                .await?;
            for node in data.nodes.into_iter().flatten() {
                found.push(node.into_customer()?);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audiences::{ListKind, MarketingState, record_hash};

    #[test]
    fn nodes_parse_a_missing_one_is_left_out_and_emails_are_hashed() {
        let data: Data = serde_json::from_value(json!({"nodes": [
            {"id": "gid://shopify/Customer/7", "defaultEmailAddress": {"emailAddress": "Ann@Example.com"},
             "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}, "dataSaleOptOut": false,
             "numberOfOrders": "2", "updatedAt": "2026-12-01T10:00:00Z"},
            null
        ]}))
        .unwrap();
        let customers: Vec<Customer> = data
            .nodes
            .into_iter()
            .flatten()
            .map(|n| n.into_customer().unwrap())
            .collect();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0].id, 7);
        assert_eq!(customers[0].marketing_state, MarketingState::Unsubscribed);
        assert_eq!(
            customers[0].email_hash.as_deref(),
            record_hash("ann@example.com").as_deref()
        );
        assert_eq!(customers[0].member_hash(ListKind::Customers), None);
        assert_eq!(customer_gid(7), "gid://shopify/Customer/7");
    }
}
