//! The [`AudienceStore`] port: the relay's record of each store's customer lists. Pinterest keeps
//! no readable membership, so this record is the only way to send differences and to withdraw
//! what was uploaded. It holds customer ids and SHA-256 hashes, never an email.
//!
//! Adapters: [`super::sqlite::SqliteAudienceStore`] (the relay database of `pinrelay serve`) and
//! `super::dynamodb::DynamoDbAudienceStore` (the stack's table).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::customer::{CustomerId, ListKind};
use super::plan::Batch;

/// What the ledger knows of one store's list of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    /// Pinterest's customer list id, once the list was created (it is created once).
    pub list_id: Option<String>,
    /// The `CUSTOMER_LIST` audience over it, once created: what campaigns target or exclude.
    pub audience_id: Option<String>,
    /// The newest `updatedAt` of a customer seen by a completed sync: the next incremental sync
    /// reads customers updated since.
    pub watermark: Option<DateTime<Utc>>,
    /// When the last full comparison completed (deletions and data-sale opt-outs no webhook
    /// reports).
    pub last_full: Option<DateTime<Utc>>,
    /// When every member was last re-sent (Pinterest does not re-match people who join later).
    pub last_resend: Option<DateTime<Utc>>,
    /// When the last sync of the list completed: the scheduled job syncs again a day later
    /// ([`super::job`]).
    pub last_sync: Option<DateTime<Utc>>,
}

/// Sync marks to move forward; `None` leaves a mark as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// New [`ListState::watermark`].
    pub watermark: Option<DateTime<Utc>>,
    /// New [`ListState::last_full`].
    pub last_full: Option<DateTime<Utc>>,
    /// New [`ListState::last_resend`].
    pub last_resend: Option<DateTime<Utc>>,
    /// New [`ListState::last_sync`].
    pub last_sync: Option<DateTime<Utc>>,
}

/// A hash to withdraw from a list because its customer was deleted or redacted: kept until
/// Pinterest accepted the `REMOVE`, so no removal is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRemoval {
    /// Which list.
    pub kind: ListKind,
    /// Pinterest's id of that list, when it was created.
    pub list_id: Option<String>,
    /// The customer.
    pub customer_id: CustomerId,
    /// The hash uploaded for them.
    pub hash: String,
}

/// A customer to read again because their consent changed (a
/// `customers_email_marketing_consent/update` webhook): the next pass reads them by id and applies
/// their fresh state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Recheck {
    /// The customer.
    pub customer_id: CustomerId,
    /// When their consent changed (the webhook's trigger time, else when it was received).
    pub at: DateTime<Utc>,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The caller is now the one writer of the list until it releases or the lease expires.
    Acquired,
    /// Another writer holds it.
    Held {
        /// Who.
        holder: String,
        /// Until when, unless released sooner.
        until: DateTime<Utc>,
    },
}

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage failed.
    #[error("the audience ledger could not be read or written; check the data directory")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item holds the most entries it keeps under the storage's item limit (DynamoDB's
    /// 400 KB): the write is refused, nothing is changed.
    #[error(
        "{item} holds {most} {what}, the most it keeps under DynamoDB's 400 KB item limit; {fix}"
    )]
    Full {
        /// The item.
        item: String,
        /// How many entries it keeps at most.
        most: usize,
        /// What the entries are.
        what: &'static str,
        /// What clears room.
        fix: &'static str,
    },
    /// A stored value could not be read back.
    #[error("the audience ledger of {shop} holds an unreadable value ({detail})")]
    Corrupt {
        /// The store.
        shop: String,
        /// What was unreadable.
        detail: String,
    },
}

/// The record of each store's customer lists, keyed by store domain and [`ListKind`].
pub trait AudienceStore: Send + Sync + 'static {
    /// Takes the one-writer lease of `shop`'s `kind` list for `holder` until `now + ttl`: granted
    /// when free, expired, or already `holder`'s.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] only when the storage fails, never for a held lease.
    fn acquire(
        &self,
        shop: &str,
        kind: ListKind,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> impl Future<Output = Result<Lease, LedgerError>> + Send;

    /// Gives the lease back if `holder` holds it.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] only when the storage fails.
    fn release(
        &self,
        shop: &str,
        kind: ListKind,
        holder: &str,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The list's ids and marks (all `None` for a list never synced).
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails or a mark is unreadable.
    fn state(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> impl Future<Output = Result<ListState, LedgerError>> + Send;

    /// Keeps the ids Pinterest gave the list and, once created, its audience.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails.
    fn set_ids(
        &self,
        shop: &str,
        kind: ListKind,
        list_id: &str,
        audience_id: Option<&str>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Moves the marks given in `marks` forward.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails.
    fn set_marks(
        &self,
        shop: &str,
        kind: ListKind,
        marks: Marks,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// Every member recorded: customer id → the hash uploaded.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails.
    fn members(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> impl Future<Output = Result<BTreeMap<CustomerId, String>, LedgerError>> + Send;

    /// Records a batch Pinterest accepted, atomically: an `ADD` sets each customer's hash; a
    /// `REMOVE` drops each member with that hash and clears the matching pending removals. Call
    /// it only after Pinterest accepted the request.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails; nothing is then recorded.
    fn record(
        &self,
        shop: &str,
        kind: ListKind,
        batch: &Batch,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The removals of deleted or redacted customers not yet accepted by Pinterest.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails.
    fn pending_removals(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> impl Future<Output = Result<Vec<PendingRemoval>, LedgerError>> + Send;

    /// A customer was deleted (`customers/delete`) or redacted (`customers/redact`): their
    /// member rows on every list of `shop` become pending removals, returned with the hashes to
    /// `REMOVE`. Once Pinterest accepts those, [`AudienceStore::record`] clears them; the next
    /// sync sends any still pending. The customer's queued re-check, if any, is cleared.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails; nothing is then changed.
    fn remove_customer(
        &self,
        shop: &str,
        customer_id: CustomerId,
    ) -> impl Future<Output = Result<Vec<PendingRemoval>, LedgerError>> + Send;

    /// Queues a re-check of `customer_id` at `at` (their consent changed); idempotent: a newer
    /// `at` replaces an older one, an older one leaves the newer in place.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails (or is full); nothing is then queued.
    fn queue_recheck(
        &self,
        shop: &str,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The re-checks queued for `shop`, by customer id.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails or a value is unreadable.
    fn rechecks(
        &self,
        shop: &str,
    ) -> impl Future<Output = Result<Vec<Recheck>, LedgerError>> + Send;

    /// Clears the re-checks `done` once their fresh state was applied: each only if it was not
    /// queued again with a newer time meanwhile.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails.
    fn clear_rechecks(
        &self,
        shop: &str,
        done: &[Recheck],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// `shop/redact`: deletes everything recorded for `shop` (lists, members, pending removals,
    /// re-checks) and returns the lists' states as they were, so the caller can remove their audiences.
    ///
    /// # Errors
    /// MUST return [`LedgerError`] when the storage fails; nothing is then deleted.
    fn forget_shop(
        &self,
        shop: &str,
    ) -> impl Future<Output = Result<Vec<(ListKind, ListState)>, LedgerError>> + Send;
}
