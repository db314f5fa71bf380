//! Reconcile: the shop's orders beside what the relay did with each, the answer to "compare the
//! purchase events against your Shopify order count for the same period".
//!
//! Pure: the orders (from the Admin API), their records (the relay's one record per event, see
//! [`crate::idempotency`]) and the clock come in; a [`Report`] comes out ([`fetch`] gathers the two
//! inputs). Each order is exactly one of:
//!
//! | status | meaning |
//! |---|---|
//! | `sent` | Pinterest processed its `checkout` event (when, with which match keys, what value) |
//! | `test_only` | sent in test mode or to a dry run only: Pinterest validated it but recorded nothing |
//! | `skipped` | the relay sent nothing, for a reason: by a conversion rule (`by_rule`) or a conversion lost (`expired`) |
//! | `dead_lettered` | moved to the dead-letter queue with a reason: a human must look |
//! | `in_doubt` | Pinterest may have it (no answer, or the relay stopped mid-send): `pinrelay replay --in-doubt` once Event History shows it missing |
//! | `pending` | being sent, handed back for another attempt, or placed less than [`Settings::grace`] ago |
//! | `not_a_conversion` | never seen, and the conversion rules would skip it (test, POS, draft, another channel, cancelled, voided, unpaid under `CHECKOUT_ON=paid`) |
//! | `missing` | the relay has no trace of it: the webhook never arrived (a deleted subscription, an outage) |
//!
//! Accuracy is (sent + skipped by rule + not a conversion) / orders. A missing order placed within Pinterest's 7 days
//! is `recoverable`: `pinrelay reconcile --backfill` sends it through the relay's own queue.

mod fetch;
mod html;
mod render;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub use self::fetch::{Orders, Period, ReconcileError, fetch, fetch_orders};
pub use self::html::html;
pub use self::render::table;
use crate::idempotency::{DoubtCause, IdempotencyRecord, Mode, Settled, State};
use crate::mapping::{
    Options, OrderFacts, SkipReason, ValueSource, currency_amount, minor_units, order_rule,
};
use crate::pinterest::quality::{ComponentRow, IngestionSource, Lookback, QualityScore, compare};
use crate::pinterest::{MatchKeyCounts, MatchKeys};
use crate::shopify::AdminOrder;

/// The version of the JSON shape ([`Report`]); it changes only when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// One order as the shop's Admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopOrder {
    /// The order id (`legacyResourceId`), the relay's `event_id` source.
    pub id: u64,
    /// `#1001`.
    pub name: String,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// The amount the relay would send as `value` (the subtotal by default, see `VALUE_SOURCE`), as
    /// a decimal string.
    pub value: String,
    /// Its ISO 4217 currency.
    pub currency: String,
    /// Why the conversion rules would skip it ([`crate::mapping::order_rule`]), when they would:
    /// a never-seen order that is not a conversion.
    pub not_a_conversion: Option<SkipReason>,
    /// Cancelled, voided or refunded by now (a sent purchase stays sent; the report counts these).
    pub undone: bool,
}

impl ShopOrder {
    /// An Admin API order, valued as the relay values its event (`VALUE_SOURCE`) and judged by
    /// the relay's conversion rules (the one [`order_rule`] dispatch applies).
    pub fn from_admin(order: &AdminOrder, rules: &Options) -> Self {
        let facts = OrderFacts {
            test: order.test,
            cancelled: order.cancelled_at.is_some(),
            source_name: order.source_name.as_deref(),
            financial_status: order.financial_status.as_deref(),
        };
        let undone = order.cancelled_at.is_some()
            || order.financial_status.as_deref().is_some_and(|s| {
                matches!(
                    s.to_ascii_lowercase().as_str(),
                    "refunded" | "voided" | "partially_refunded"
                )
            });
        Self {
            not_a_conversion: order_rule(&facts, rules).err(),
            undone,
            id: order.id,
            name: order.name.clone(),
            created_at: order.created_at,
            value: match rules.value_source {
                ValueSource::Subtotal => order.subtotal.clone(),
                ValueSource::Total => order.total.clone(),
            },
            currency: order.currency.clone(),
        }
    }
}

/// How orders are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// An order without a trace placed less than this ago is `pending`, not `missing`: its webhook
    /// may still be on its way (default 15 minutes).
    pub grace: Duration,
    /// The oldest order Pinterest still takes: older missing orders are not recoverable (7 days).
    pub max_event_age: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(15 * 60),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The longest window reconcile reads: the records' life, 45 days
/// ([`crate::idempotency::RECORD_TTL_SECONDS`]).
pub const MAX_WINDOW_DAYS: u64 = (crate::idempotency::RECORD_TTL_SECONDS / 86_400) as u64;

/// Days of the shop's calendar, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// The shop's time zone (`ianaTimezone`).
    pub tz: Tz,
}

/// Why a window cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `--from` after `--to`.
    #[error("the window starts ({from}) after it ends ({to})")]
    Reversed {
        /// The first day.
        from: NaiveDate,
        /// The last day.
        to: NaiveDate,
    },
    /// A `--since` that is not `{days}d`.
    #[error(
        "--since takes a number of days such as 7d (1d to {MAX_WINDOW_DAYS}d, the records' life), not {0:?}"
    )]
    BadSince(String),
    /// A time zone Shopify gave that is not in the IANA database.
    #[error("the shop's time zone {0:?} is not an IANA time zone")]
    UnknownTimeZone(String),
    /// Days older than the relay's records live: every order there would read as missing.
    #[error(
        "the window starts {from}, more than {MAX_WINDOW_DAYS} days ago; the relay keeps its records {MAX_WINDOW_DAYS} days, so older orders cannot be reconciled"
    )]
    BeyondRecords {
        /// The first day asked for.
        from: NaiveDate,
    },
}

impl Window {
    /// The shop's time zone from its IANA name.
    ///
    /// # Errors
    /// [`WindowError::UnknownTimeZone`].
    pub fn time_zone(name: &str) -> Result<Tz, WindowError> {
        name.parse()
            .map_err(|_| WindowError::UnknownTimeZone(name.to_owned()))
    }

    /// `--since 7d`: the last `days` days of the shop's calendar, today included.
    ///
    /// # Errors
    /// [`WindowError::BadSince`] unless `since` is `1d` to `45d` ([`MAX_WINDOW_DAYS`]).
    pub fn since(since: &str, now: DateTime<Utc>, tz: Tz) -> Result<Self, WindowError> {
        let days = since
            .trim()
            .strip_suffix('d')
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|d| (1..=MAX_WINDOW_DAYS).contains(d))
            .ok_or_else(|| WindowError::BadSince(since.to_owned()))?;
        let to = now.with_timezone(&tz).date_naive();
        let from = to.checked_sub_days(Days::new(days - 1)).unwrap_or(to);
        Ok(Self { from, to, tz })
    }

    /// `--from`/`--to`: these days of the shop's calendar.
    ///
    /// # Errors
    /// [`WindowError::Reversed`] when `from` is after `to`.
    pub fn dates(from: NaiveDate, to: NaiveDate, tz: Tz) -> Result<Self, WindowError> {
        if from > to {
            return Err(WindowError::Reversed { from, to });
        }
        Ok(Self { from, to, tz })
    }

    /// Refuses a window that starts before the records' life ([`MAX_WINDOW_DAYS`]) at `now`.
    ///
    /// # Errors
    /// [`WindowError::BeyondRecords`].
    pub fn within_records(self, now: DateTime<Utc>) -> Result<Self, WindowError> {
        let today = now.with_timezone(&self.tz).date_naive();
        let oldest = today
            .checked_sub_days(Days::new(MAX_WINDOW_DAYS - 1))
            .unwrap_or(today);
        if self.from < oldest {
            return Err(WindowError::BeyondRecords { from: self.from });
        }
        Ok(self)
    }

    /// The window as instants: the first day's start to the start of the day after the last.
    pub fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.to.checked_add_days(Days::new(1)).unwrap_or(self.to);
        (self.day_start(self.from), self.day_start(end))
    }

    /// The first instant of a day of the shop's calendar: its midnight, or where a DST change
    /// skips midnight (America/Santiago, Asia/Beirut, America/Havana), the first local time
    /// that exists, minute by minute.
    pub fn day_start(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        (0..=180)
            .filter_map(|m| {
                self.tz
                    .from_local_datetime(&(midnight + chrono::Duration::minutes(m)))
                    .earliest()
            })
            .next()
            .map_or_else(
                || self.tz.from_utc_datetime(&midnight).with_timezone(&Utc),
                |t| t.with_timezone(&Utc),
            )
    }

    /// The day of the shop's calendar an instant falls on.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
}

/// What became of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Pinterest processed its event.
    Sent {
        /// When (unknown for an order sent before one-record-per-event).
        sent_at: Option<DateTime<Utc>>,
        /// The `event_id` sent.
        event_id: Option<String>,
        /// The match keys it carried.
        match_keys: MatchKeys,
        /// The value sent.
        value_sent: Option<String>,
        /// The currency sent with it (the order's when the record does not say).
        currency_sent: Option<String>,
        /// Sent more than an hour after the order (Pinterest counts it as offline).
        late: bool,
    },
    /// Sent in test mode or to a dry run only: validated, not recorded by Pinterest.
    TestOnly {
        /// When.
        sent_at: Option<DateTime<Utc>>,
        /// The `event_id` sent.
        event_id: Option<String>,
    },
    /// Pinterest may have it; not sent again without a human.
    InDoubt {
        /// Why.
        cause: Option<DoubtCause>,
    },
    /// Nothing was sent, for a reason.
    Skipped {
        /// The reason's label.
        reason: String,
        /// The reason in words.
        detail: String,
        /// A conversion rule (true) or a conversion lost (false).
        by_rule: bool,
    },
    /// Moved to the dead-letter queue.
    DeadLettered {
        /// The reason's label.
        reason: String,
        /// The reason in words.
        detail: String,
    },
    /// Not settled yet.
    Pending {
        /// `sending` (a dispatch holds it now), `retrying` (handed back to the queue after a
        /// retryable failure) or `recent` (placed within the grace period, its webhook may be on
        /// its way).
        reason: String,
    },
    /// Never seen by the relay, and the conversion rules would skip it anyway (a test, POS,
    /// draft or other-channel order, a cancelled or voided one, unpaid under `CHECKOUT_ON=paid`):
    /// not counted against accuracy, never backfilled.
    NotAConversion {
        /// The rule's label.
        reason: String,
        /// The rule in words.
        detail: String,
    },
    /// No trace in the relay.
    Missing {
        /// Still within Pinterest's window: `--backfill` can send it.
        recoverable: bool,
    },
}

/// The statuses a day's `statuses` counts, in display order; each order is exactly one, so they add
/// up to its `orders`.
pub const STATUS_KEYS: [&str; 9] = [
    "sent",
    "test_only",
    "skipped_by_rule",
    "conversion_lost",
    "dead_lettered",
    "in_doubt",
    "pending",
    "missing",
    "not_a_conversion",
];

impl Status {
    /// Its key in a day's `statuses` ([`STATUS_KEYS`]): a skip is `skipped_by_rule` or
    /// `conversion_lost` (too old, not enough identity… by [`SkipReason::is_rule`]).
    pub fn key(&self) -> &'static str {
        match self {
            Status::Sent { .. } => "sent",
            Status::TestOnly { .. } => "test_only",
            Status::Skipped { by_rule: true, .. } => "skipped_by_rule",
            Status::Skipped { by_rule: false, .. } => "conversion_lost",
            Status::DeadLettered { .. } => "dead_lettered",
            Status::InDoubt { .. } => "in_doubt",
            Status::Pending { .. } => "pending",
            Status::Missing { .. } => "missing",
            Status::NotAConversion { .. } => "not_a_conversion",
        }
    }

    /// `sent`, `test_only`, `skipped`, `dead_lettered`, `in_doubt`, `pending` or `missing`.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Sent { .. } => "sent",
            Status::TestOnly { .. } => "test_only",
            Status::NotAConversion { .. } => "not_a_conversion",
            Status::InDoubt { .. } => "in_doubt",
            Status::Skipped { .. } => "skipped",
            Status::DeadLettered { .. } => "dead_lettered",
            Status::Pending { .. } => "pending",
            Status::Missing { .. } => "missing",
        }
    }
}

/// What one order's record (or its absence) says about it.
pub fn classify(
    order: &ShopOrder,
    record: Option<&IdempotencyRecord>,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Status {
    let age = (now - order.created_at).to_std().unwrap_or(Duration::ZERO);
    let Some(record) = record else {
        if let Some(rule) = &order.not_a_conversion {
            return Status::NotAConversion {
                reason: rule.label().to_owned(),
                detail: rule.to_string(),
            };
        }
        return if age < settings.grace {
            Status::Pending {
                reason: "recent".into(),
            }
        } else {
            Status::Missing {
                recoverable: age < settings.max_event_age,
            }
        };
    };
    match (record.state, &record.settled) {
        (State::Sent, Some(Settled::Sent(facts))) if facts.mode == Mode::Test => Status::TestOnly {
            sent_at: facts.at,
            event_id: record.event_id.clone(),
        },
        (State::Sent, Some(Settled::Sent(facts))) => Status::Sent {
            sent_at: facts.at,
            event_id: record.event_id.clone(),
            match_keys: facts.match_keys,
            value_sent: facts.value.clone(),
            currency_sent: facts.currency.clone(),
            late: facts.late,
        },
        (State::Sent, _) => Status::Sent {
            sent_at: None,
            event_id: record.event_id.clone(),
            match_keys: MatchKeys::default(),
            value_sent: None,
            currency_sent: None,
            late: false,
        },
        (State::Skipped, Some(Settled::Skipped(f))) => Status::Skipped {
            reason: f.reason.clone(),
            detail: f.detail.clone(),
            by_rule: f.by_rule,
        },
        (State::DeadLettered, Some(Settled::DeadLettered(f))) => Status::DeadLettered {
            reason: f.reason.clone(),
            detail: f.detail.clone(),
        },
        (State::InDoubt, settled) => Status::InDoubt {
            cause: match settled {
                Some(Settled::InDoubt { cause }) => Some(*cause),
                _ => None,
            },
        },
        (State::InProgress, _) => Status::Pending {
            reason: "sending".into(),
        },
        _ => Status::Pending {
            reason: "retrying".into(),
        },
    }
}

/// One order of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRow {
    /// The order id.
    pub id: u64,
    /// `#1001`.
    pub name: String,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// The shop's calendar day it was placed on.
    pub date: NaiveDate,
    /// The value ordered (the amount the relay sends as `value`).
    pub value_ordered: String,
    /// Cancelled, voided or refunded since it was placed.
    pub undone: bool,
    /// Its currency.
    pub currency: String,
    /// What became of it.
    #[serde(flatten)]
    pub status: Status,
}

/// Totals of a day (or of the whole window).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Shopify orders.
    pub orders: u64,
    /// Each order counted once under its status ([`STATUS_KEYS`], every key present): the values
    /// add up to `orders`.
    pub statuses: BTreeMap<&'static str, u64>,
    /// Sent.
    pub sent: u64,
    /// Skipped, by reason label.
    pub skipped: BTreeMap<String, u64>,
    /// Of those, skipped by a conversion rule.
    pub skipped_by_rule: u64,
    /// Dead-lettered, by reason label.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Sent in test mode or to a dry run only.
    pub test_only: u64,
    /// In doubt.
    pub in_doubt: u64,
    /// Never seen, and not a conversion by the rules.
    pub not_a_conversion: u64,
    /// Pending.
    pub pending: u64,
    /// Missing.
    pub missing: u64,
    /// Of those, still recoverable.
    pub recoverable: u64,
    /// (sent + skipped by rule) / orders; `None` without orders.
    pub accuracy: Option<f64>,
    /// Value ordered of the orders that should have been sent (not those a rule skips), by
    /// currency, as decimal strings.
    pub value_ordered: BTreeMap<String, String>,
    /// Value of the sent events, by currency.
    pub value_sent: BTreeMap<String, String>,
    /// Of the sent, those cancelled, voided or refunded since (still counted as sent: Pinterest
    /// keeps a purchase), with their value sent by currency beside `value_sent`.
    pub sent_since_undone: u64,
    /// Their value sent, by currency.
    pub value_sent_since_undone: BTreeMap<String, String>,
    /// Match keys of the sent events.
    pub coverage: MatchKeyCounts,
}

/// One day of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// The shop's calendar day.
    pub date: NaiveDate,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The reconcile report: `--json` prints it as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The shop domain.
    pub shop: String,
    /// The shop's IANA time zone; days are its calendar days.
    pub time_zone: String,
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// The whole window.
    pub totals: Totals,
    /// Each day of the window, oldest first (days without orders included).
    pub days: Vec<Day>,
    /// Each order, oldest first.
    pub orders: Vec<OrderRow>,
    /// Pinterest's Event Quality beside the relay's coverage, when an ad account token was given.
    pub quality: Option<Quality>,
    /// The customer lists the relay keeps for the shop (`pinrelay audiences sync`, the audience
    /// job), with Pinterest's status of each; empty (and left out of the JSON) when it keeps none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub customer_lists: Vec<CustomerListRow>,
    /// Dead letters of the shop that name no order (an undecodable message, an invalid payload),
    /// by reason, over the window's days (UTC): each is in the dead-letter queue with its reason.
    pub dead_letters_without_order: BTreeMap<String, u64>,
}

/// One customer list of the shop as the relay recorded it, beside Pinterest's status of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerListRow {
    /// `customers` or `purchasers`.
    pub list: String,
    /// Pinterest's list id (`None` before the first upload).
    pub list_id: Option<String>,
    /// Its `CUSTOMER_LIST` audience.
    pub audience_id: Option<String>,
    /// Pinterest's status (`READY`, `PROCESSING`, `UPLOADING`, `TOO_SMALL` under 100 matched
    /// users); `None` when it could not be read ([`CustomerListRow::status_unread`] says why).
    pub status: Option<String>,
    /// Why the status is missing: no token, or Pinterest's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_unread: Option<String>,
    /// Hashes the relay uploaded and has not removed: its record of the list's members.
    pub members: u64,
    /// Removals of deleted or redacted customers Pinterest has not accepted yet.
    pub pending_removals: u64,
    /// When the last sync completed.
    pub last_sync: Option<DateTime<Utc>>,
    /// When the last full comparison completed.
    pub last_full: Option<DateTime<Utc>>,
}

/// The rows of `shop`'s lists kept in `ledger` (lists never synced left out), each with
/// Pinterest's status read through `api` when given.
///
/// # Errors
/// [`crate::audiences::LedgerError`] when the record cannot be read.
pub async fn customer_lists<L, A>(
    ledger: &L,
    api: Result<&A, String>,
    shop: &str,
) -> Result<Vec<CustomerListRow>, crate::audiences::LedgerError>
where
    L: crate::audiences::AudienceStore,
    A: crate::pinterest::audiences::CustomerListsApi,
{
    let mut rows = Vec::new();
    for kind in crate::audiences::ListKind::ALL {
        let state = ledger.state(shop, kind).await?;
        if state.list_id.is_none() && state.last_sync.is_none() {
            continue;
        }
        let members = ledger.members(shop, kind).await?.len() as u64;
        let pending_removals = ledger.pending_removals(shop, kind).await?.len() as u64;
        let (status, status_unread) = match (&state.list_id, &api) {
            (None, _) => (None, Some("no list on Pinterest yet".to_owned())),
            (Some(_), Err(why)) => (None, Some(why.clone())),
            (Some(id), Ok(api)) => match api.get_list(id).await {
                Ok(info) => (info.status, None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        rows.push(CustomerListRow {
            list: kind.label().to_owned(),
            list_id: state.list_id,
            audience_id: state.audience_id,
            status,
            status_unread,
            members,
            pending_removals,
            last_sync: state.last_sync,
            last_full: state.last_full,
        });
    }
    Ok(rows)
}

/// Pinterest's view of the `checkout` events (its Event Quality Score) beside the relay's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Pinterest's lookback: `1d` or `14d`.
    pub lookback: String,
    /// The overall status of the Conversions API events (`GOOD`, `FAIR`, `NEEDS_IMPROVEMENT`).
    pub conversions_api: Option<String>,
    /// The overall status of the Tag's events.
    pub tag: Option<String>,
    /// Each quality component: Pinterest's coverage per source, the relay's coverage of the sent
    /// events of the window, the Tag/API overlap, and a hint when below GOOD.
    pub components: Vec<ComponentRow>,
}

impl Quality {
    /// Pinterest's scores of one lookback beside the window's sent events.
    pub fn new(lookback: Lookback, scores: &[QualityScore], totals: &Totals) -> Self {
        let relay = &totals.coverage;
        let status = |source| {
            scores
                .iter()
                .find(|s| s.source() == Some(source))
                .map(|s| s.overall_status.as_str().to_owned())
        };
        Self {
            lookback: lookback.as_str().to_owned(),
            conversions_api: status(IngestionSource::ConversionsApi),
            tag: status(IngestionSource::Tag),
            components: compare(scores, relay, "checkout"),
        }
    }
}

impl Report {
    /// Classifies each order by its record and adds them up per day.
    pub fn build(
        shop: &str,
        window: &Window,
        orders: &[ShopOrder],
        records: &[IdempotencyRecord],
        now: DateTime<Utc>,
        settings: &Settings,
    ) -> Self {
        let by_order: HashMap<u64, &IdempotencyRecord> = records
            .iter()
            .filter(|r| r.key.shop() == shop)
            .filter_map(|r| Some((r.key.order_id()?, r)))
            .collect();
        let mut orders: Vec<&ShopOrder> = orders.iter().collect();
        orders.sort_by_key(|o| (o.created_at, o.id));
        let rows: Vec<OrderRow> = orders
            .into_iter()
            .map(|o| OrderRow {
                id: o.id,
                name: o.name.clone(),
                created_at: o.created_at,
                date: window.day_of(o.created_at),
                value_ordered: o.value.clone(),
                undone: o.undone,
                currency: o.currency.clone(),
                status: classify(o, by_order.get(&o.id).copied(), now, settings),
            })
            .collect();
        let mut sums: BTreeMap<NaiveDate, Sums> =
            window.days().map(|d| (d, Sums::default())).collect();
        let mut all = Sums::default();
        for row in &rows {
            sums.entry(row.date).or_default().add(row);
            all.add(row);
        }
        Self {
            schema_version: SCHEMA_VERSION,
            shop: shop.to_owned(),
            time_zone: window.tz.name().to_owned(),
            from: window.from,
            to: window.to,
            generated_at: now,
            totals: all.finish(),
            days: sums
                .into_iter()
                .map(|(date, s)| Day {
                    date,
                    totals: s.finish(),
                })
                .collect(),
            orders: rows,
            quality: None,
            customer_lists: Vec::new(),
            dead_letters_without_order: BTreeMap::new(),
        }
    }

    /// The missing orders `--backfill` can still send.
    pub fn recoverable(&self) -> impl Iterator<Item = &OrderRow> {
        self.orders
            .iter()
            .filter(|o| matches!(o.status, Status::Missing { recoverable: true }))
    }
}

/// Totals being added up; money in minor units per currency.
#[derive(Default)]
struct Sums {
    totals: Totals,
    ordered: BTreeMap<String, i128>,
    sent: BTreeMap<String, i128>,
    undone: BTreeMap<String, i128>,
}

impl Sums {
    fn add(&mut self, row: &OrderRow) {
        let t = &mut self.totals;
        t.orders += 1;
        *t.statuses.entry(row.status.key()).or_default() += 1;
        // The value ordered is that of the orders that should have been sent: not those a rule
        // skips, sent or not.
        if !matches!(
            row.status,
            Status::Skipped { by_rule: true, .. } | Status::NotAConversion { .. }
        ) {
            add_money(&mut self.ordered, &row.value_ordered, &row.currency);
        }
        match &row.status {
            Status::Sent {
                match_keys,
                value_sent,
                currency_sent,
                ..
            } => {
                t.sent += 1;
                t.coverage.add(match_keys);
                if let Some(v) = value_sent {
                    // In the currency recorded at send time.
                    let currency = currency_sent.as_deref().unwrap_or(&row.currency);
                    add_money(&mut self.sent, v, currency);
                    if row.undone {
                        add_money(&mut self.undone, v, currency);
                    }
                }
                t.sent_since_undone += u64::from(row.undone);
            }
            Status::TestOnly { .. } => t.test_only += 1,
            Status::InDoubt { .. } => t.in_doubt += 1,
            Status::NotAConversion { .. } => t.not_a_conversion += 1,
            Status::Skipped {
                reason, by_rule, ..
            } => {
                *t.skipped.entry(reason.clone()).or_default() += 1;
                t.skipped_by_rule += u64::from(*by_rule);
            }
            Status::DeadLettered { reason, .. } => {
                *t.dead_lettered.entry(reason.clone()).or_default() += 1;
            }
            Status::Pending { .. } => t.pending += 1,
            Status::Missing { recoverable } => {
                t.missing += 1;
                t.recoverable += u64::from(*recoverable);
            }
        }
    }

    fn finish(self) -> Totals {
        let mut t = self.totals;
        for key in STATUS_KEYS {
            t.statuses.entry(key).or_default();
        }
        t.accuracy = (t.orders > 0)
            .then(|| (t.sent + t.skipped_by_rule + t.not_a_conversion) as f64 / t.orders as f64);
        let format = |m: BTreeMap<String, i128>| {
            m.into_iter()
                .map(|(c, minor)| {
                    let text = format_minor(minor, minor_units(Some(&c)));
                    (c, text)
                })
                .collect()
        };
        t.value_ordered = format(self.ordered);
        t.value_sent = format(self.sent);
        t.value_sent_since_undone = format(self.undone);
        t
    }
}

/// Adds a decimal amount to its currency's sum, in minor units (never through `f64`); text that is
/// not an amount is left out.
fn add_money(sums: &mut BTreeMap<String, i128>, amount: &str, currency: &str) {
    let Some(exact) = currency_amount(amount, Some(currency)) else {
        return;
    };
    let Ok(minor) = exact.replace('.', "").parse::<i128>() else {
        return;
    };
    *sums.entry(currency.to_owned()).or_default() += minor;
}

fn format_minor(minor: i128, decimals: usize) -> String {
    let digits = format!("{:0>width$}", minor, width = decimals + 1);
    if decimals == 0 {
        return digits;
    }
    let (int, frac) = digits.split_at(digits.len() - decimals);
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests;
