//! The store's customers with what the audience sync needs (GraphQL `customers`, 250 a page):
//! id, default email, email marketing state, data-sale opt-out, orders count, last update.
//! Each address is hashed as its page is read ([`Customer::new`]); no plain email outlives the
//! page. Not a bulk operation: a very large store is read page by page.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;

use super::legacy_id;
use super::orders::Page;
use super::transport::{AdminApi, AdminError};
use crate::audiences::{Customer, MarketingState};

/// Customers per page of [`AdminApi::customers`]: the most Shopify returns.
pub const CUSTOMERS_PAGE_SIZE: u32 = 250;

/// One page of customers, oldest update first, optionally only those updated since a time.
pub const CUSTOMERS_QUERY: &str = "query pinrelayCustomers($first: Int!, $after: String, $query: String) { \
customers(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) { nodes { id \
defaultEmailAddress { emailAddress } emailMarketingConsent { marketingState } dataSaleOptOut \
numberOfOrders updatedAt } pageInfo { hasNextPage endCursor } } }";

/// `data` of [`CUSTOMERS_QUERY`].
#[derive(Deserialize)]
struct Data {
    customers: Page<CustomerNode>,
}

/// One `Customer` node with the fields of [`CUSTOMERS_QUERY`] (also read by
/// [`super::customer_nodes`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomerNode {
    id: String,
    #[serde(default)]
    default_email_address: Option<EmailAddress>,
    #[serde(default)]
    email_marketing_consent: Option<Consent>,
    #[serde(default)]
    data_sale_opt_out: bool,
    #[serde(default)]
    number_of_orders: Option<Count>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailAddress {
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consent {
    marketing_state: MarketingState,
}

/// `UnsignedInt64`, which Shopify serializes as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Count {
    Text(String),
    Number(u64),
}

impl CustomerNode {
    pub(super) fn into_customer(self) -> Result<Customer, AdminError> {
        let id = legacy_id(&self.id).ok_or(AdminError::UnexpectedAnswer {
            what: "customers (id)",
            source: None,
        })?;
        let orders = match self.number_of_orders {
            Some(Count::Text(s)) => s.parse().unwrap_or(0),
            Some(Count::Number(n)) => n,
            None => 0,
        };
        let email = self.default_email_address.and_then(|e| e.email_address);
        Ok(Customer::new(
            id,
            email.as_deref(),
            self.email_marketing_consent
                .map_or(MarketingState::NotSubscribed, |c| c.marketing_state),
            self.data_sale_opt_out,
            orders,
            self.updated_at,
        ))
    }
}

/// Shopify's search syntax for customers updated at or after `since` (at, so a customer updated
/// in the watermark's second is read again rather than missed).
fn customers_search(since: DateTime<Utc>) -> String {
    format!(
        "updated_at:>='{}'",
        since.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

impl AdminApi {
    /// Every customer, or those updated since `since`, oldest update first, 250 per page;
    /// `progress` gets the running count after each page.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; without `read_customers` (and protected customer data access)
    /// Shopify answers 403 or an access-denied error.
    pub async fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Customer>, AdminError> {
        let search = since.map(customers_search);
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let variables =
                json!({ "first": CUSTOMERS_PAGE_SIZE, "after": after, "query": search });
            let data: Data = self.query(CUSTOMERS_QUERY, variables, "customers").await?;
            for node in data.customers.nodes {
                all.push(node.into_customer()?);
            }
            progress(all.len());
            match (
                data.customers.page_info.has_next_page,
                data.customers.page_info.end_cursor,
            ) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audiences::{ListKind, record_hash};

    #[test]
    fn customers_parse_and_their_emails_are_hashed() {
        let data: Data = serde_json::from_value(json!({"customers": {"nodes": [
            {"id": "gid://shopify/Customer/207119551", "defaultEmailAddress": {"emailAddress": "Bob@Example.com"},
             "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}, "dataSaleOptOut": false,
             "numberOfOrders": "3", "updatedAt": "2026-11-30T10:00:00Z"},
            {"id": "gid://shopify/Customer/2", "defaultEmailAddress": null,
             "emailMarketingConsent": null, "dataSaleOptOut": true,
             "numberOfOrders": "0", "updatedAt": "2026-11-30T10:00:00Z"}
        ], "pageInfo": {"hasNextPage": false, "endCursor": null}}}))
        .unwrap();
        let customers: Vec<Customer> = data
            .customers
            .nodes
            .into_iter()
            .map(|n| n.into_customer().unwrap())
            .collect();
        assert_eq!(customers[0].id, 207119551);
        assert_eq!(customers[0].number_of_orders, 3);
        assert_eq!(
            customers[0].member_hash(ListKind::Purchasers),
            record_hash("bob@example.com").as_deref()
        );
        assert_eq!(customers[1].marketing_state, MarketingState::NotSubscribed);
        assert_eq!(customers[1].email_hash, None);
    }

    #[test]
    fn the_search_reads_from_the_watermark_on() {
        let since = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            customers_search(since),
            "updated_at:>='2026-12-01T08:00:00Z'"
        );
    }
}
