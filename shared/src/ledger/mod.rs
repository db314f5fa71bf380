//! The outcome ledger: what became of each conversion the relay settled, so a merchant can ask, order
//! by order, "did this reach Pinterest, and if not, why not" (`pinrelay reconcile`).
//!
//! Dispatch writes one [`Entry`] per settled message that concerns a conversion: **sent** (with the
//! match keys it carried and its value), **skipped** (the reason label, and whether the skip is one
//! of the conversion rules or a conversion lost), **dead-lettered** (the reason), or **pending**
//! (handed back for another attempt). Entries are keyed by [`Subject`]: the Shopify order for
//! everything about an order (its `checkout`, or why it sends none), the event otherwise. A later
//! outcome replaces an earlier one, except that a `sent` entry is never replaced. The ledger is
//! apart from the idempotency records: nothing in it blocks a later claim of the same key.
//!
//! Entries hold no personal data (match keys are booleans) and live as long as the idempotency
//! records ([`LEDGER_TTL_SECONDS`]). Adapters: [`dynamodb`] (the relay table under `outcome#`) and
//! [`sqlite`] (the `outcomes` table of the relay database); both run [`contract`].

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::idempotency::RECORD_TTL_SECONDS;
use crate::pinterest::Event;

#[doc(hidden)]
pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Entries live as long as the idempotency records: 45 days.
pub const LEDGER_TTL_SECONDS: i64 = RECORD_TTL_SECONDS;

/// What an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A Shopify order: its `checkout` event, or why it sends none.
    Order {
        /// The order id.
        id: u64,
    },
    /// Any other event (a sign-up, a browser event), by its Pinterest identity.
    Event {
        /// `event_name`.
        name: String,
        /// `event_id`.
        id: String,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Order { id } => write!(f, "order#{id}"),
            Subject::Event { name, id } => write!(f, "event#{name}#{id}"),
        }
    }
}

/// The storage key of an entry: `outcome#{shop}#{subject}`.
pub fn ledger_key(shop: &str, subject: &Subject) -> String {
    format!("{}{subject}", shop_ledger_prefix(shop))
}

/// The prefix of every entry key of a shop: `outcome#{shop}#`.
pub fn shop_ledger_prefix(shop: &str) -> String {
    format!("outcome#{shop}#")
}

/// Which of Pinterest's match keys a sent event carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchKeys {
    /// A hashed email (`em`).
    pub email: bool,
    /// A hashed phone (`ph`).
    pub phone: bool,
    /// Both the client IP address and user agent.
    pub ip_ua: bool,
    /// The `_epik` click id.
    pub click_id: bool,
    /// A hashed external id (the Shopify customer).
    pub external_id: bool,
}

impl MatchKeys {
    /// The match keys of an event as sent.
    pub fn of(event: &Event) -> Self {
        let u = &event.user_data;
        Self {
            email: !u.em.is_empty(),
            phone: !u.ph.is_empty(),
            ip_ua: u.client_ip_address.is_some() && u.client_user_agent.is_some(),
            click_id: u.click_id.is_some(),
            external_id: !u.external_id.is_empty(),
        }
    }
}

/// What became of the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Recorded {
    /// Pinterest processed the event.
    Sent {
        /// The `event_id` sent.
        event_id: String,
        /// The match keys it carried.
        match_keys: MatchKeys,
        /// `custom_data.value`, as sent.
        value: Option<String>,
        /// `custom_data.currency`.
        currency: Option<String>,
        /// Sent more than an hour after it happened (Pinterest counts it as offline).
        late: bool,
    },
    /// Nothing was sent, for this reason.
    Skipped {
        /// The reason's label ([`crate::mapping::SkipReason::label`]).
        reason: String,
        /// The reason in words.
        detail: String,
        /// True when a conversion rule says this is not a conversion to send (a test order, a
        /// point-of-sale order…); false when a conversion was lost (too old to send).
        by_rule: bool,
    },
    /// Moved to the dead-letter queue: a human must look.
    DeadLettered {
        /// The reason's label ([`crate::dispatch::DeadLetterReason::label`]).
        reason: String,
        /// The reason in words.
        detail: String,
    },
    /// Handed back to the queue for another attempt, or (`attempts: 0`) queued by
    /// `pinrelay reconcile --backfill` and not yet handled.
    Pending {
        /// Deliveries so far.
        attempts: u32,
        /// Seconds until the next one.
        retry_in_s: u64,
    },
}

impl Recorded {
    /// `sent`, `skipped`, `dead_lettered` or `pending`: the stored outcome column.
    pub fn label(&self) -> &'static str {
        match self {
            Recorded::Sent { .. } => "sent",
            Recorded::Skipped { .. } => "skipped",
            Recorded::DeadLettered { .. } => "dead_lettered",
            Recorded::Pending { .. } => "pending",
        }
    }
}

/// One settled outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The shop domain.
    pub shop: String,
    /// What it is about.
    pub subject: Subject,
    /// The webhook topic (or `browser/{event}`) that settled it.
    pub topic: String,
    /// When it was settled.
    pub at: DateTime<Utc>,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Recorded,
}

impl Entry {
    /// Its storage key.
    pub fn key(&self) -> String {
        ledger_key(&self.shop, &self.subject)
    }
}

/// Why a ledger operation failed. Dispatch logs a failed write and carries on: the ledger informs,
/// it never decides.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store could not be reached or refused the request.
    #[error("the outcome ledger is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored entry cannot be read.
    #[error("the outcome ledger entry {key} is corrupt: {why}")]
    Corrupt {
        /// The entry's storage key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// An entry as the adapters store it: JSON.
#[cfg(any(feature = "dynamodb", feature = "sqlite"))]
pub(crate) fn encode(entry: &Entry) -> Result<String, LedgerError> {
    serde_json::to_string(entry).map_err(|e| LedgerError::Corrupt {
        key: entry.key(),
        why: format!("the entry cannot be serialized: {e}"),
    })
}

/// Reads a stored entry back.
#[cfg(any(feature = "dynamodb", feature = "sqlite"))]
pub(crate) fn decode(key: &str, json: &str) -> Result<Entry, LedgerError> {
    serde_json::from_str(json).map_err(|e| LedgerError::Corrupt {
        key: key.to_owned(),
        why: format!("the stored entry is not valid: {e}"),
    })
}

/// Persists outcomes.
pub trait Ledger: Send + Sync + 'static {
    /// Records an entry, expiring at `expires_at` (Unix seconds), replacing the subject's earlier
    /// entry unless that one is `sent`.
    ///
    /// # Errors
    /// [`LedgerError`]; the caller logs it.
    fn record(
        &self,
        entry: &Entry,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The live entries of these subjects of a shop (absent subjects are left out), in any order.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn lookup(
        &self,
        shop: &str,
        subjects: &[Subject],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Entry>, LedgerError>> + Send;

    /// Deletes every entry of a shop (`shop/redact`); returns how many.
    ///
    /// # Errors
    /// [`LedgerError`]; the compliance message is then retried.
    fn delete_shop(&self, shop: &str) -> impl Future<Output = Result<u64, LedgerError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_shop_and_the_subject() {
        let order = Subject::Order { id: 42 };
        assert_eq!(
            ledger_key("a.myshopify.com", &order),
            "outcome#a.myshopify.com#order#42"
        );
        let signup = Subject::Event {
            name: "signup".into(),
            id: "signup-7".into(),
        };
        assert_eq!(
            ledger_key("a.myshopify.com", &signup),
            "outcome#a.myshopify.com#event#signup#signup-7"
        );
        assert!(
            ledger_key("a.myshopify.com", &order)
                .starts_with(&shop_ledger_prefix("a.myshopify.com"))
        );
    }

    #[test]
    fn entries_serialize_flat_with_their_outcome() {
        let entry = Entry {
            shop: "a.myshopify.com".into(),
            subject: Subject::Order { id: 42 },
            topic: "orders/create".into(),
            at: "2026-12-01T10:00:00Z".parse().unwrap(),
            outcome: Recorded::Skipped {
                reason: "test_order".into(),
                detail: "a test order".into(),
                by_rule: true,
            },
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["outcome"], "skipped");
        assert_eq!(json["reason"], "test_order");
        assert_eq!(json["subject"]["kind"], "order");
        let back: Entry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }
}
