//! One record per event: the exactly-once lock, what became of the event, and the merchant's
//! ledger, in one place ([`IdempotencyRecord`], the [`IdempotencyStore`] port).
//!
//! A record is keyed by what it is about ([`IdempotencyKey`]: the shop, the Pinterest event name and
//! the subject: the order id, `signup-{customer id}`, or the browser event's id), never by a value a
//! setting can change. It moves through these states, each move one conditional write:
//!
//! ```text
//!            claim                     settle (by the holder)
//! (none) ──────────────▶ in_progress ─┬─▶ sent          (stops every later delivery)
//!   ▲ skipped ─┐                       ├─▶ in_doubt(n+1) (stops every later delivery but a resend of n+1)
//!   ▲ dead_lettered ─┼── claim again   ├─▶ skipped
//!   ▲ pending ─┘                       ├─▶ dead_lettered
//!   ▲ sent in test mode, by a live claim └─▶ pending     (a retryable failure; the earlier facts are kept)
//! ```
//!
//! - The `event_id` is chosen once, by the first claim, and every later claim gets it back: one
//!   order, one `event_id`, whatever `EVENT_ID_TEMPLATE` says later.
//! - Only *sent* and *in doubt* stop a new delivery. *In doubt* (Pinterest may have the event) is
//!   left only by a resend naming its generation ([`ClaimRequest::resend`]), so a second replay, a
//!   redelivery or a concurrent copy sends nothing.
//! - Test-mode and dry-run sends are *sent* with [`Mode::Test`] and never stop a live send.
//! - Lock takeover: an `in_progress` record whose lock expired belonged to a holder that stopped,
//!   perhaps mid-request: the claim reports [`Claim::Abandoned`] and the event is in doubt.
//!
//! Records hold no personal data. Reconcile reads them by order ([`IdempotencyStore::get_many`]);
//! dead letters without a subject are counted per shop, day and reason
//! ([`IdempotencyStore::count_dead_letter`]).
//!
//! Adapters: `dynamodb` (feature `dynamodb`) and `sqlite` (feature `sqlite`). Both run the same
//! contract suite, [`contract`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::pinterest::MatchKeys;

#[doc(hidden)]
pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Records are kept this long: 45 days, well past Pinterest's 7-day event window, so an
/// `orders/paid` of an order sent weeks before (bank transfer, net-30 terms) is recognised as a
/// duplicate rather than counted as an expired event. A record is about 300 bytes.
pub const RECORD_TTL_SECONDS: i64 = 45 * 24 * 60 * 60;

/// `{shop}#{event_name}#{subject}`: the identity of one Pinterest event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a key cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an idempotency key needs a non-empty shop, event name and subject")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// Builds the key; every part must be non-empty and the shop and event name free of `#`.
    ///
    /// # Errors
    /// [`InvalidKey`] otherwise.
    pub fn new(shop: &str, event_name: &str, subject: &str) -> Result<Self, InvalidKey> {
        let ok = |s: &str| !s.trim().is_empty();
        if !(ok(shop) && ok(event_name) && ok(subject))
            || shop.contains('#')
            || event_name.contains('#')
        {
            return Err(InvalidKey);
        }
        Ok(Self(format!("{shop}#{event_name}#{subject}")))
    }

    /// The key of an order's `checkout`: `{shop}#checkout#{order_id}`.
    ///
    /// # Errors
    /// [`InvalidKey`] for an empty shop or one with `#`.
    pub fn order(shop: &str, order_id: u64) -> Result<Self, InvalidKey> {
        Self::new(shop, "checkout", &order_id.to_string())
    }

    /// The prefix shared by every key of a shop, `{shop}#`.
    pub fn shop_prefix(shop: &str) -> String {
        format!("{shop}#")
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a stored key back.
    ///
    /// # Errors
    /// [`InvalidKey`] when it is not `{shop}#{event_name}#{subject}`.
    pub fn parse(stored: &str) -> Result<Self, InvalidKey> {
        let (shop, rest) = stored.split_once('#').ok_or(InvalidKey)?;
        let (name, subject) = rest.split_once('#').ok_or(InvalidKey)?;
        Self::new(shop, name, subject)
    }

    /// The shop part.
    pub fn shop(&self) -> &str {
        self.0.split('#').next().unwrap_or_default()
    }

    /// The order id of a `checkout` key.
    pub fn order_id(&self) -> Option<u64> {
        let mut parts = self.0.splitn(3, '#');
        let (_, name, subject) = (parts.next()?, parts.next()?, parts.next()?);
        (name == "checkout").then(|| subject.parse().ok()).flatten()
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who holds a lock: one per dispatch invocation (random, never reused).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder(String);

impl Holder {
    /// A new holder id.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or_default());
        Self(format!("{:016x}", h.finish()))
    }

    /// A holder with this id (as stored).
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Holder {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a send reached Pinterest for real.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Recorded by Pinterest.
    #[default]
    Live,
    /// `test=true` (validated, not recorded) or a dry run: never stops a live send.
    Test,
}

/// Where a record stands: the column every condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A holder may be sending.
    InProgress,
    /// Pinterest processed the event.
    Sent,
    /// Nothing to send, for a reason.
    Skipped,
    /// In the dead-letter queue, for a reason.
    DeadLettered,
    /// Pinterest may have the event; only a resend of this generation sends it again.
    InDoubt,
    /// A retryable failure; the next delivery tries again.
    Pending,
}

impl State {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Sent => "sent",
            State::Skipped => "skipped",
            State::DeadLettered => "dead_lettered",
            State::InDoubt => "in_doubt",
            State::Pending => "pending",
        }
    }

    /// Reads a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        [
            State::InProgress,
            State::Sent,
            State::Skipped,
            State::DeadLettered,
            State::InDoubt,
            State::Pending,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// What a sent event carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFacts {
    /// When Pinterest answered.
    pub at: Option<DateTime<Utc>>,
    /// Live or test.
    #[serde(default)]
    pub mode: Mode,
    /// The match keys it carried.
    #[serde(default)]
    pub match_keys: MatchKeys,
    /// `custom_data.value`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `custom_data.currency`, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Sent more than an hour after it happened (Pinterest counts it as offline).
    #[serde(default)]
    pub late: bool,
    /// Written by a pinrelay before one-record-per-event: sent, details unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
}

/// Why nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipFacts {
    /// The reason's label ([`crate::mapping::SkipReason::label`]).
    pub reason: String,
    /// The reason in words (never personal data).
    pub detail: String,
    /// A conversion rule says this is not a conversion (true), or a conversion was lost (false).
    pub by_rule: bool,
}

/// Why it is in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterFacts {
    /// The reason's label ([`crate::dispatch::DeadLetterReason::label`]).
    pub reason: String,
    /// The reason in words (never personal data).
    pub detail: String,
}

/// Why Pinterest may have an event the relay cannot confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoubtCause {
    /// The request was sent and no readable answer came (a timeout, a dropped connection).
    NoAnswer,
    /// The holder of the lock stopped (killed, crashed) while it may have been sending.
    HolderStopped,
}

impl DoubtCause {
    /// The cause in words, for the dead-letter reason and the logs.
    pub fn describe(self) -> &'static str {
        match self {
            DoubtCause::NoAnswer => "Pinterest gave no readable answer to the request carrying it",
            DoubtCause::HolderStopped => {
                "the relay stopped (killed or crashed) while it may have been sending it"
            }
        }
    }
}

/// The facts of the last settled state. The record keeps them while it is `pending` or
/// `in_progress` again, so a retryable failure never erases what was known before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Settled {
    /// Sent.
    Sent(SentFacts),
    /// Skipped.
    Skipped(SkipFacts),
    /// Dead-lettered.
    DeadLettered(LetterFacts),
    /// In doubt.
    InDoubt {
        /// Why.
        cause: DoubtCause,
    },
}

impl Settled {
    /// The state it puts a record in.
    pub fn state(&self) -> State {
        match self {
            Settled::Sent(_) => State::Sent,
            Settled::Skipped(_) => State::Skipped,
            Settled::DeadLettered(_) => State::DeadLettered,
            Settled::InDoubt { .. } => State::InDoubt,
        }
    }
}

/// A retryable failure: what the `pending` state keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrying {
    /// Deliveries so far.
    pub attempts: u32,
    /// What failed (never personal data).
    pub last_error: String,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Its key.
    pub key: IdempotencyKey,
    /// Where it stands.
    pub state: State,
    /// The `event_id` chosen by the first claim (absent on a skip decided before any claim, and
    /// on records written before one-record-per-event).
    pub event_id: Option<String>,
    /// The holder of an `in_progress` record.
    pub holder: Option<Holder>,
    /// For `in_progress`: Unix milliseconds after which the lock may be taken over.
    pub lock_until_ms: Option<i64>,
    /// How often it went `in_doubt`; a resend must name the current one.
    pub generation: u32,
    /// The facts of the last settled state, kept through `in_progress` and `pending`.
    pub settled: Option<Settled>,
    /// For `pending`: the retryable failure.
    pub retrying: Option<Retrying>,
    /// The webhook topic (or `browser/{event}`) that last changed it.
    pub topic: Option<String>,
    /// Unix seconds after which the record is void (and DynamoDB's TTL may delete it).
    pub expiration: i64,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// A record settled at `at` (what reconcile reads; for tests and fixtures).
    pub fn settled(
        key: IdempotencyKey,
        event_id: Option<String>,
        settled: Settled,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            key,
            state: settled.state(),
            event_id,
            holder: None,
            lock_until_ms: None,
            generation: u32::from(matches!(settled, Settled::InDoubt { .. })),
            settled: Some(settled),
            retrying: None,
            topic: Some("orders/create".to_owned()),
            expiration: at.timestamp() + RECORD_TTL_SECONDS,
            updated_at: at,
        }
    }

    /// True for the lock of a holder that stopped: `in_progress`, its lock expired, its time to
    /// live not. Whoever takes it over gets [`Claim::Abandoned`].
    pub fn is_abandoned(&self, now: DateTime<Utc>) -> bool {
        self.state == State::InProgress
            && self.expiration > now.timestamp()
            && self
                .lock_until_ms
                .is_some_and(|ms| ms <= now.timestamp_millis())
    }

    /// True when the record no longer counts (the stores delete lazily, so readers must check).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration <= now.timestamp()
    }

    /// The sent facts of a `sent` record.
    pub fn sent(&self) -> Option<&SentFacts> {
        match (&self.state, &self.settled) {
            (State::Sent, Some(Settled::Sent(facts))) => Some(facts),
            _ => None,
        }
    }

    /// What a claim by `request` at `now` gets from this (live) record, when it cannot take it.
    /// `None`: the claim takes the record. The one rule both adapters follow.
    pub fn refusal(&self, request: &ClaimRequest, now: DateTime<Utc>) -> Option<Claim> {
        if self.is_expired(now) {
            return None;
        }
        match self.state {
            State::Skipped | State::DeadLettered | State::Pending => None,
            // A letter dead-lettered in doubt by a pinrelay before one-record-per-event recorded its
            // key as sent; its replay is a resend of generation 0 and takes that record, once.
            State::Sent if request.resend == Some(0) && self.sent().is_some_and(|s| s.legacy) => {
                None
            }
            State::Sent => match (self.sent().map(|s| s.mode), request.mode) {
                (Some(Mode::Test), Mode::Live) => None,
                _ => Some(Claim::AlreadySent {
                    event_id: self.event_id.clone(),
                }),
            },
            State::InDoubt if request.resend == Some(self.generation) => None,
            State::InDoubt => Some(Claim::InDoubt {
                generation: self.generation,
            }),
            State::InProgress if self.is_abandoned(now) => None,
            State::InProgress => Some(Claim::InProgress {
                until_ms: self.lock_until_ms.unwrap_or_default(),
            }),
        }
    }
}

/// A request to take the lock of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The key.
    pub key: IdempotencyKey,
    /// The `event_id` to choose if the record has none yet.
    pub event_id: String,
    /// Who claims.
    pub holder: Holder,
    /// When the lock may be taken over.
    pub lock_until: DateTime<Utc>,
    /// Live or test: a test send never stops a live one.
    pub mode: Mode,
    /// A human's resend of an in-doubt event: the generation its dead letter was issued for (0
    /// for a letter of the format before one-record-per-event, whose record says sent).
    pub resend: Option<u32>,
    /// The webhook topic, kept on the record.
    pub topic: String,
    /// The key a pinrelay before one-record-per-event used, when it differs (a custom
    /// `EVENT_ID_TEMPLATE`): a sent record found there is honoured.
    pub legacy: Option<IdempotencyKey>,
}

/// The result of trying to take the lock for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lock and must send with this `event_id`, then settle.
    Acquired {
        /// The record's `event_id` (chosen now, or by an earlier claim).
        event_id: String,
        /// The record's generation: an in-doubt settle makes it one more.
        generation: u32,
    },
    /// The caller holds the lock, taken over from a holder that stopped while holding it (killed,
    /// crashed): that one may have sent the event, so sending again may count it twice.
    Abandoned {
        /// The record's `event_id`.
        event_id: String,
        /// The record's generation.
        generation: u32,
    },
    /// The event was sent (live, or test for a test claim): skip it and count a duplicate.
    AlreadySent {
        /// The `event_id` sent (unknown for records written before one-record-per-event).
        event_id: Option<String>,
    },
    /// The event is in doubt: nothing is sent but a resend of this generation.
    InDoubt {
        /// The record's generation.
        generation: u32,
    },
    /// Another holder has an unexpired lock: retry later.
    InProgress {
        /// When that lock expires (Unix milliseconds).
        until_ms: i64,
    },
}

impl Claim {
    /// The lock just taken: [`Claim::Abandoned`] when it was taken over from a holder that
    /// stopped, else [`Claim::Acquired`].
    #[must_use]
    pub fn taken(abandoned: bool, event_id: String, generation: u32) -> Self {
        if abandoned {
            Self::Abandoned {
                event_id,
                generation,
            }
        } else {
            Self::Acquired {
                event_id,
                generation,
            }
        }
    }
}

/// What the holder of a lock makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Settled for good: sent, skipped, dead-lettered, or in doubt (the generation goes up by one).
    Settled(Settled),
    /// A retryable failure: `pending`, the earlier facts kept.
    Pending(Retrying),
}

/// A decision taken without the lock (a skip or dead letter decided before any claim): it is
/// recorded unless the record is sent, in doubt or held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unheld {
    /// Skipped.
    Skipped(SkipFacts),
    /// Dead-lettered.
    DeadLettered(LetterFacts),
}

/// Dead letters without a subject (an undecodable message, an invalid payload), by day and reason.
pub type DeadLetterCounts = BTreeMap<(NaiveDate, String), u64>;

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
    /// A settle by a holder that no longer holds the lock (it expired and was taken over).
    #[error("the lock of {key} is no longer held by this invocation; another one took it over")]
    LockLost {
        /// The key.
        key: String,
    },
}

/// Persists the records.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Takes the lock of `request.key` unless the record refuses it
    /// ([`IdempotencyRecord::refusal`]).
    ///
    /// # Errors
    /// MUST be atomic: of two concurrent callers for one key, at most one gets
    /// [`Claim::Acquired`] or [`Claim::Abandoned`]. Store failures are [`StoreError`].
    fn claim(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Settles a held record: only while `holder` holds it (`in_progress`, same holder).
    ///
    /// # Errors
    /// [`StoreError::LockLost`] when it does not; [`StoreError`] otherwise.
    fn settle(
        &self,
        key: &IdempotencyKey,
        holder: &Holder,
        settlement: &Settlement,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a decision taken without the lock; returns false when the record refused it (sent,
    /// in doubt, or held).
    ///
    /// # Errors
    /// [`StoreError`].
    fn record(
        &self,
        key: &IdempotencyKey,
        decision: &Unheld,
        topic: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reads a record, expired or not.
    ///
    /// # Errors
    /// [`StoreError`].
    fn get(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;

    /// Reads the live records of these keys (absent and expired ones are left out), in any order.
    ///
    /// # Errors
    /// [`StoreError`].
    fn get_many(
        &self,
        keys: &[IdempotencyKey],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<IdempotencyRecord>, StoreError>> + Send;

    /// Deletes one record (`customers/redact`).
    ///
    /// # Errors
    /// [`StoreError`].
    fn forget(&self, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts a dead letter without a subject under its shop, day and reason label.
    ///
    /// # Errors
    /// [`StoreError`].
    fn count_dead_letter(
        &self,
        shop: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The counts of dead letters without a subject of a shop, days `from..=to` (UTC days).
    ///
    /// # Errors
    /// [`StoreError`].
    fn dead_letter_counts(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<DeadLetterCounts, StoreError>> + Send;

    /// Notes that `shop` is paused now for `reason` (the dispatcher, once per batch that paused
    /// it), for the watch to name it.
    ///
    /// # Errors
    /// [`StoreError`].
    fn mark_paused(
        &self,
        shop: &str,
        reason: PauseReason,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest pause of `shop`, if it was ever paused (kept for [`RECORD_TTL_SECONDS`]).
    ///
    /// # Errors
    /// [`StoreError`].
    fn pause(&self, shop: &str) -> impl Future<Output = Result<Option<Pause>, StoreError>> + Send;

    /// Deletes every record and count of a shop (`shop/redact`); returns how many.
    ///
    /// # Errors
    /// [`StoreError`]; the compliance message is then retried, and deletes what is left.
    fn delete_shop(&self, shop: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Why a store's events wait: something about the whole store, not one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// Pinterest refused its token or ad account (401, 403, 404): a human must fix it.
    TokenRefused,
    /// Pinterest rate-limits it (429).
    RateLimited,
}

impl PauseReason {
    /// Its label in records, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenRefused => "token_refused",
            Self::RateLimited => "rate_limited",
        }
    }

    /// The reason of a label written by [`Self::as_str`].
    pub fn parse(label: &str) -> Option<Self> {
        match label {
            "token_refused" => Some(Self::TokenRefused),
            "rate_limited" => Some(Self::RateLimited),
            _ => None,
        }
    }
}

impl fmt::Display for PauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TokenRefused => "Pinterest refused the store's conversion token or ad account",
            Self::RateLimited => "Pinterest rate-limits the store",
        })
    }
}

/// A store's latest pause ([`IdempotencyStore::mark_paused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// Why, the last time.
    pub reason: PauseReason,
    /// The first time, since the record was created (it lasts [`RECORD_TTL_SECONDS`] after the
    /// last).
    pub since: DateTime<Utc>,
    /// The last time.
    pub last_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_shop_event_and_subject() {
        let k = IdempotencyKey::order("a.myshopify.com", 42).unwrap();
        assert_eq!(k.as_str(), "a.myshopify.com#checkout#42");
        assert_eq!(k.order_id(), Some(42));
        assert_eq!(k.shop(), "a.myshopify.com");
        assert_eq!(IdempotencyKey::parse(k.as_str()), Ok(k));
        let s = IdempotencyKey::new("a.myshopify.com", "signup", "signup-7").unwrap();
        assert_eq!(s.order_id(), None);
        assert!(IdempotencyKey::new("a#b", "checkout", "1").is_err());
        assert!(IdempotencyKey::new("a", "checkout", " ").is_err());
    }

    #[test]
    fn holders_are_distinct() {
        assert_ne!(Holder::new(), Holder::new());
    }

    #[test]
    fn states_read_back() {
        for s in [
            State::InProgress,
            State::Sent,
            State::Skipped,
            State::DeadLettered,
            State::InDoubt,
            State::Pending,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("COMPLETED"), None);
    }

    #[test]
    fn settled_facts_serialize_with_their_outcome() {
        let s = Settled::Skipped(SkipFacts {
            reason: "test_order".into(),
            detail: "a test order".into(),
            by_rule: true,
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["outcome"], "skipped");
        assert_eq!(serde_json::from_value::<Settled>(json).unwrap(), s);
        let legacy: Settled = serde_json::from_str(r#"{"outcome":"sent","legacy":true}"#).unwrap();
        assert!(matches!(
            legacy,
            Settled::Sent(SentFacts { legacy: true, .. })
        ));
    }
}
