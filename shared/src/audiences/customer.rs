//! A store's customer as the audience sync sees it, the consent rule, and the record uploaded for
//! a member. Pure: no I/O, no clock. Not the webhook's `Customer` payload
//! ([`crate::shopify::payload`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pinterest::normalize;

/// Shopify's numeric customer id (the REST id, a GraphQL id's tail).
pub type CustomerId = u64;

/// `Customer.emailMarketingConsent.marketingState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarketingState {
    /// Opted in: the only state that is consent.
    Subscribed,
    /// Never opted in.
    NotSubscribed,
    /// Asked to confirm (double opt-in) and has not yet: not consent.
    Pending,
    /// Opted out.
    Unsubscribed,
    /// The customer's data was redacted.
    Redacted,
    /// The address is not deliverable.
    Invalid,
    /// A state this version does not know: never consent.
    #[serde(other)]
    Unknown,
}

/// Which list of a store: each is its own Pinterest customer list and audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Every consenting customer (retargeting, lookalikes, suppression).
    Customers,
    /// Consenting customers with at least one order (to leave buyers out of prospecting).
    Purchasers,
}

impl ListKind {
    /// Both kinds, in the order they are synced.
    pub const ALL: [ListKind; 2] = [ListKind::Customers, ListKind::Purchasers];

    /// The stored and logged name: `customers` or `purchasers`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Purchasers => "purchasers",
        }
    }

    /// The kind whose [`ListKind::label`] is `label`.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The Pinterest list name for `shop`: `pinrelay – {shop} – {label}`.
    pub fn list_name(self, shop: &str) -> String {
        format!("pinrelay – {shop} – {}", self.label())
    }
}

impl std::fmt::Display for ListKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The record uploaded for `email`: SHA-256 hex of the trimmed, lowercased address, the same
/// digest as CAPI's `em` ([`normalize::email`], [`normalize::hash`]); `None` when it is no email.
pub fn record_hash(email: &str) -> Option<String> {
    normalize::email(email).and_then(|e| normalize::hash(&e))
}

/// One customer, read from the Admin API. The address is hashed when the customer is built and
/// never kept, so no plain email can reach a log, the ledger or a `Debug` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The numeric id: the ledger's key.
    pub id: CustomerId,
    /// [`record_hash`] of the default email address, when there is a valid one.
    pub email_hash: Option<String>,
    /// The email marketing state.
    pub marketing_state: MarketingState,
    /// `dataSaleOptOut`: opted out of the sale or sharing of their data, which includes uploads.
    pub data_sale_opt_out: bool,
    /// `numberOfOrders`: a purchaser has at least one.
    pub number_of_orders: u64,
    /// `updatedAt`: what the incremental watermark follows.
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// A customer whose `email` (if any) is hashed at once with [`record_hash`].
    pub fn new(
        id: CustomerId,
        email: Option<&str>,
        marketing_state: MarketingState,
        data_sale_opt_out: bool,
        number_of_orders: u64,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            email_hash: email.and_then(record_hash),
            marketing_state,
            data_sale_opt_out,
            number_of_orders,
            updated_at,
        }
    }

    /// The consent rule: subscribed to email marketing and not opted out of data sale
    /// (`PENDING` is not consent).
    pub fn consents(&self) -> bool {
        self.marketing_state == MarketingState::Subscribed && !self.data_sale_opt_out
    }

    /// The record to upload to the `kind` list, or `None` when the customer is not a member.
    pub fn member_hash(&self, kind: ListKind) -> Option<&str> {
        let in_list = match kind {
            ListKind::Customers => true,
            ListKind::Purchasers => self.number_of_orders >= 1,
        };
        if self.consents() && in_list {
            self.email_hash.as_deref()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(state: MarketingState, opt_out: bool, orders: u64) -> Customer {
        Customer::new(
            1,
            Some(" Jane@Example.com "),
            state,
            opt_out,
            orders,
            DateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn the_record_is_the_capi_em_digest() {
        let expected = normalize::sha256_hex("jane@example.com");
        assert_eq!(
            record_hash("  JANE@example.COM").as_deref(),
            Some(expected.as_str())
        );
        assert_eq!(record_hash("not an email"), None);
        assert_eq!(
            customer(MarketingState::Subscribed, false, 0).email_hash,
            Some(expected)
        );
    }

    #[test]
    fn only_subscribed_customers_who_did_not_opt_out_are_members() {
        use MarketingState::*;
        for state in [
            NotSubscribed,
            Pending,
            Unsubscribed,
            Redacted,
            Invalid,
            Unknown,
        ] {
            assert_eq!(
                customer(state, false, 3).member_hash(ListKind::Customers),
                None
            );
        }
        assert_eq!(
            customer(Subscribed, true, 3).member_hash(ListKind::Customers),
            None
        );
        assert!(
            customer(Subscribed, false, 0)
                .member_hash(ListKind::Customers)
                .is_some()
        );
    }

    #[test]
    fn purchasers_are_consenting_customers_with_an_order() {
        use MarketingState::Subscribed;
        assert_eq!(
            customer(Subscribed, false, 0).member_hash(ListKind::Purchasers),
            None
        );
        assert!(
            customer(Subscribed, false, 1)
                .member_hash(ListKind::Purchasers)
                .is_some()
        );
    }

    #[test]
    fn a_customer_without_a_valid_email_is_no_member() {
        let c = Customer::new(
            1,
            None,
            MarketingState::Subscribed,
            false,
            1,
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(c.member_hash(ListKind::Customers), None);
    }

    #[test]
    fn unknown_states_parse_and_never_consent() {
        let state: MarketingState = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(state, MarketingState::Unknown);
        let state: MarketingState = serde_json::from_str("\"NOT_SUBSCRIBED\"").unwrap();
        assert_eq!(state, MarketingState::NotSubscribed);
    }
}
