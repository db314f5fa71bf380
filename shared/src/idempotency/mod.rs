//! Exactly-once sending: dedup keys, records and the [`IdempotencyStore`] port.
//!
//! The design follows Powertools for AWS Lambda's idempotency utility: a conditional put creates an
//! `IN_PROGRESS` record whose lock expires at the invocation deadline; `COMPLETED` means "already
//! sent"; an expired lock may be taken over; a retryable failure deletes the record. Records hold
//! no personal data: the key is `{shop}#{event_name}#{event_id}`.
//!
//! Adapters: `dynamodb` (feature `dynamodb`) and `sqlite` (feature `sqlite`). Both run the same
//! contract suite, [`contract`].

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};

#[doc(hidden)]
pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Completed records are kept this long: 45 days, well past Pinterest's 7-day event window, so an
/// `orders/paid` of an order sent weeks before (bank transfer, net-30 terms) is recognised as a
/// duplicate rather than counted as an expired event. A record is about 100 bytes.
pub const RECORD_TTL_SECONDS: i64 = 45 * 24 * 60 * 60;

/// `{shop}#{event_name}#{event_id}`: the identity of one Pinterest event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a key cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an idempotency key needs a non-empty shop, event name and event id")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// Builds the key; every part must be non-empty and the shop and event name free of `#`.
    ///
    /// # Errors
    /// [`InvalidKey`] otherwise.
    pub fn new(shop: &str, event_name: &str, event_id: &str) -> Result<Self, InvalidKey> {
        let ok = |s: &str| !s.trim().is_empty();
        if !(ok(shop) && ok(event_name) && ok(event_id))
            || shop.contains('#')
            || event_name.contains('#')
        {
            return Err(InvalidKey);
        }
        Ok(Self(format!("{shop}#{event_name}#{event_id}")))
    }

    /// The prefix shared by every key of a shop, `{shop}#`.
    pub fn shop_prefix(shop: &str) -> String {
        format!("{shop}#")
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shop part.
    pub fn shop(&self) -> &str {
        self.0.split('#').next().unwrap_or_default()
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a record stands. "Expired" is computed from the times, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// An invocation holds the lock and may be sending.
    InProgress,
    /// The event was accepted by Pinterest.
    Completed,
}

impl Status {
    /// The stored value, as Powertools writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "INPROGRESS",
            Status::Completed => "COMPLETED",
        }
    }

    /// Reads a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(Status::InProgress),
            "COMPLETED" => Some(Status::Completed),
            _ => None,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Its key.
    pub key: IdempotencyKey,
    /// Its status.
    pub status: Status,
    /// Unix seconds after which the record is void (and DynamoDB's TTL may delete it).
    pub expiration: i64,
    /// For `InProgress`: Unix milliseconds after which the lock may be taken over.
    pub in_progress_expiration: Option<i64>,
}

impl IdempotencyRecord {
    /// True for the lock of a holder that stopped: `InProgress`, its lock expired, its time to live
    /// not. Whoever takes it over gets [`Claim::Abandoned`].
    pub fn is_abandoned(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::InProgress
            && self.expiration > now.timestamp()
            && self
                .in_progress_expiration
                .is_some_and(|ms| ms <= now.timestamp_millis())
    }

    /// True when the record no longer counts (the store deletes lazily, so readers must check).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration <= now.timestamp()
            || (self.status == Status::InProgress
                && self
                    .in_progress_expiration
                    .is_some_and(|ms| ms <= now.timestamp_millis()))
    }
}

/// The result of trying to take the lock for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lock and must send, then `complete` or `release`.
    Acquired,
    /// The caller holds the lock, taken over from an invocation that stopped while holding it
    /// (killed, crashed): that one may have sent the event before it stopped, so sending again
    /// may count it twice. The caller must `complete` or `release` as for `Acquired`.
    Abandoned,
    /// The event was already sent: skip it and count a duplicate.
    AlreadyCompleted,
    /// Another invocation holds an unexpired lock: retry later.
    InProgress {
        /// When that lock expires (Unix milliseconds).
        until_ms: i64,
    },
}

/// Why a store operation failed; every variant is retryable (the message stays on the queue).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the request.
    #[error("the idempotency store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record cannot be read.
    #[error("the idempotency record {key} is corrupt: {why}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// Persists idempotency records.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Creates an `InProgress` record locked until `lock_until`, unless a live record exists.
    ///
    /// # Errors
    /// MUST be atomic: of two concurrent callers for one key, at most one gets
    /// [`Claim::Acquired`] or [`Claim::Abandoned`]. An expired record (see
    /// [`IdempotencyRecord::is_expired`]) MUST be taken over: a live `InProgress` record whose lock
    /// expired is reported as [`Claim::Abandoned`], any other as [`Claim::Acquired`]. Store
    /// failures are [`StoreError`].
    fn put_in_progress(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lock_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks the key `Completed`, expiring [`RECORD_TTL_SECONDS`] after `now`.
    ///
    /// # Errors
    /// [`StoreError`]; the event was sent, so callers log it and rely on Pinterest's event_id dedup.
    fn complete(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the record so the event can be tried again (after a retryable failure).
    ///
    /// # Errors
    /// [`StoreError`]; the lock then simply expires.
    fn release(&self, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads a record, expired or not.
    ///
    /// # Errors
    /// [`StoreError`].
    fn get(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// Deletes every record of a shop (`shop/redact`); returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`]; the compliance message is then retried.
    fn delete_shop(&self, shop: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
