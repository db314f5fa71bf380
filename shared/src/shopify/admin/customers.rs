//! The store's customers with what the audience sync needs: id, default email, email marketing
//! state, data-sale opt-out, orders count, last update. Two reads of the same fields:
//! - [`AdminApi::customers`]: GraphQL `customers`, 250 a page, optionally only those updated since
//!   a time (the sync's incremental reads);
//! - [`AdminApi::customers_bulk`]: every customer through a bulk operation
//!   ([`super::bulk`], [`BULK_CUSTOMERS_QUERY`]), its JSONL streamed and read line by line (the
//!   sync's full reads), which a run cut off by its deadline continues in the next one.
//!
//! Each address is hashed as its page or line is read ([`Customer::new`]); no plain email
//! outlives the page or line, and none is written to disk or logged.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

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

/// The bulk query of every customer, with the fields of [`CUSTOMERS_QUERY`]: each JSONL line is
/// one such node.
pub const BULK_CUSTOMERS_QUERY: &str = "{ customers { edges { node { id \
defaultEmailAddress { emailAddress } emailMarketingConsent { marketingState } dataSaleOptOut \
numberOfOrders updatedAt } } } }";

/// How often a bulk read reports its running count.
const BULK_PROGRESS_EVERY: usize = 1_000;

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

/// One line of the [`BULK_CUSTOMERS_QUERY`] export (line `number`, from 1) as a customer, its
/// email hashed at once. A line that is not a customer node is [`AdminError::BulkExportLine`],
/// without the parser's message (which could quote an address).
fn bulk_line(bytes: &[u8], number: u64) -> Result<Customer, AdminError> {
    let node: CustomerNode =
        serde_json::from_slice(bytes).map_err(|_| AdminError::BulkExportLine { line: number })?;
    if !node.id.starts_with("gid://shopify/Customer/") {
        return Err(AdminError::BulkExportLine { line: number });
    }
    node.into_customer()
        .map_err(|_| AdminError::BulkExportLine { line: number })
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

    /// Every customer, read with a bulk operation ([`BULK_CUSTOMERS_QUERY`]), or with the one an
    /// earlier read left running or completed ([`super::bulk`]); `progress` gets the running
    /// count as the export is read. `now` dates the reuse window; `deadline` is when to stop
    /// waiting for Shopify.
    ///
    /// # Errors
    /// [`AdminError::BulkOperationRunning`] when the export is not ready by `deadline` (the next
    /// read continues it); [`AdminError::BulkOperationFailed`] (`ACCESS_DENIED` without
    /// `read_customers` and protected customer data access); [`AdminError::BulkExportLine`];
    /// see [`AdminApi::bulk_query_lines`].
    pub async fn customers_bulk(
        &self,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Customer>, AdminError> {
        let mut all = Vec::new();
        let mut number = 0;
        self.bulk_query_lines(BULK_CUSTOMERS_QUERY, now, deadline, &mut |bytes| {
            number += 1;
            all.push(bulk_line(bytes, number)?);
            if all.len() % BULK_PROGRESS_EVERY == 0 {
                progress(all.len());
            }
            Ok(())
        })
        .await?;
        progress(all.len());
        Ok(all)
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
    fn a_bulk_line_is_a_customer_with_its_email_hashed() {
        let line = br#"{"id":"gid://shopify/Customer/207119551","defaultEmailAddress":{"emailAddress":" Bob@Example.com"},"emailMarketingConsent":{"marketingState":"SUBSCRIBED"},"dataSaleOptOut":false,"numberOfOrders":"3","updatedAt":"2026-11-30T10:00:00Z"}"#;
        let customer = bulk_line(line, 1).unwrap();
        assert_eq!(customer.id, 207119551);
        assert_eq!(customer.number_of_orders, 3);
        assert!(customer.consents());
        assert_eq!(customer.email_hash, record_hash("bob@example.com"));
        assert!(!format!("{customer:?}").to_lowercase().contains("bob@"));

        let bare = br#"{"id":"gid://shopify/Customer/2","defaultEmailAddress":null,"emailMarketingConsent":null,"dataSaleOptOut":true,"numberOfOrders":"0","updatedAt":"2026-11-30T10:00:00Z"}"#;
        let customer = bulk_line(bare, 2).unwrap();
        assert_eq!(customer.email_hash, None);
        assert_eq!(customer.marketing_state, MarketingState::NotSubscribed);
    }

    #[test]
    fn a_bad_bulk_line_names_its_number_and_not_its_content() {
        let wrong = br#"{"id":"gid://shopify/Customer/3","defaultEmailAddress":"jane@example.com","updatedAt":"2026-11-30T10:00:00Z"}"#;
        let err = bulk_line(wrong, 7).unwrap_err();
        assert!(
            matches!(err, AdminError::BulkExportLine { line: 7 }),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("jane"));
        assert!(matches!(
            bulk_line(
                br#"{"id":"gid://shopify/Order/3","updatedAt":"2026-11-30T10:00:00Z"}"#,
                8
            ),
            Err(AdminError::BulkExportLine { line: 8 })
        ));
        assert!(bulk_line(b"not json", 9).is_err());
    }

    #[test]
    fn the_bulk_query_selects_the_fields_of_the_paged_one() {
        for field in [
            "id",
            "defaultEmailAddress { emailAddress }",
            "emailMarketingConsent { marketingState }",
            "dataSaleOptOut",
            "numberOfOrders",
            "updatedAt",
        ] {
            assert!(BULK_CUSTOMERS_QUERY.contains(field), "{field}");
            assert!(CUSTOMERS_QUERY.contains(field), "{field}");
        }
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
