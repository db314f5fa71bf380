//! The types every dispatch stage shares: settings, the messages in flight, what becomes of them
//! and why, and the batch's counts. Stages depend on this module and never on each other.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::browser::Profile;
use crate::idempotency::{DoubtCause, IdempotencyKey, Mode, PauseReason};
use crate::mapping::{ComplianceRequest, Options, OrderRef, SkipReason};
use crate::pinterest::{Event, EventBatch, MatchKeyCounts};
use crate::profile::ConsentPolicy;
use crate::queue::{Received, Source};

/// Store calls in flight at once: a batch may hold thousands of messages, and one connection per
/// call would exhaust the function's file descriptors (1,024 on Lambda) and throttle the table.
pub(super) const STORE_CONCURRENCY: usize = 32;

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// How webhooks become events.
    pub options: Options,
    /// Events older than this that were never sent are skipped as `expired` (Pinterest's window is
    /// 7 days); checked after the claim, so a duplicate is deduplicated whatever its age.
    pub max_event_age: Duration,
    /// Events older than this are sent and counted as `late` (Pinterest reports them as offline).
    pub late_after: Duration,
    /// First retry delay; doubles with each receive.
    pub retry_base: Duration,
    /// Longest retry delay (also used for auth failures, which need a human).
    pub retry_max: Duration,
    /// The queue's redrive count: on the last receive a still-failing message is dead-lettered by
    /// the dispatcher itself, with its reason, instead of silently by the queue.
    pub max_receive_count: u32,
    /// Events per Pinterest request (at most 1000).
    pub max_batch_events: usize,
    /// Orders whose shopper refused marketing consent in the browser: opt out or skip.
    pub order_consent_policy: ConsentPolicy,
    /// The longest one Pinterest request may take (the HTTP client's timeout). No request starts
    /// unless it can finish before the deadline less `deadline_margin`, and locks last this long
    /// past the deadline, so no lock expires while its request may still be in flight.
    pub request_timeout: Duration,
    /// Time kept after the last request to settle the batch (complete, release, delay).
    pub deadline_margin: Duration,
    /// `RESEND_IN_DOUBT`: an event Pinterest may already have (its request got no answer, or the
    /// invocation holding it stopped) is sent again with the same `event_id` (at least once,
    /// relying on Pinterest's deduplication) instead of dead-lettered `in_doubt` (the default:
    /// never twice, a human replays).
    pub resend_in_doubt: bool,
    /// [`Mode::Test`] when events go with `test=true` or to a dry run: recorded as test sends,
    /// which never stop a live send of the same event.
    pub mode: Mode,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            options: Options::default(),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
            late_after: Duration::from_secs(3600),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(900),
            max_receive_count: 5,
            max_batch_events: EventBatch::MAX_EVENTS,
            order_consent_policy: ConsentPolicy::default(),
            request_timeout: Duration::from_secs(10),
            deadline_margin: Duration::from_secs(2),
            resend_in_doubt: false,
            mode: Mode::Live,
        }
    }
}

/// The queue's own redrive count (SQS `maxReceiveCount`, serve's queue): above
/// [`DispatchConfig::max_receive_count`], so the dispatcher dead-letters a failing message itself,
/// with its reason, while a paused store's messages ([`Disposition::Paused`]) keep coming back for
/// Pinterest's 7 days (20 deliveries for a refused token, 24 for a rate limit); the queue's count only
/// catches messages whose every delivery crashed.
pub const QUEUE_MAX_RECEIVES: u32 = 50;

/// The longest pause between two attempts of a paused store's message: SQS's longest visibility
/// timeout, 12 hours.
pub const PAUSE_MAX: Duration = Duration::from_secs(12 * 3600);

impl DispatchConfig {
    /// The delay of a paused store's message delivered `receive_count` times, for an event of
    /// `event_time` (Unix seconds) at `now`: `from` (the first delay: `retry_max` for a refused
    /// token, `retry_base` for a rate limit) doubled per earlier delivery, at least `at_least`
    /// (Pinterest's `Retry-After`), at most [`PAUSE_MAX`], and never past a minute after the event
    /// becomes too old to send (`max_event_age`), so its last delivery skips it `expired` before
    /// the queue's 7-day retention could drop it unseen.
    pub fn pause(
        &self,
        receive_count: u32,
        from: Duration,
        at_least: Duration,
        event_time: i64,
        now: DateTime<Utc>,
    ) -> Duration {
        let exp = receive_count.saturating_sub(1).min(20);
        let scheduled = from.saturating_mul(1 << exp).max(at_least).min(PAUSE_MAX);
        let expires_in = event_time
            .saturating_add(self.max_event_age.as_secs() as i64 + 60)
            .saturating_sub(now.timestamp());
        let until_expiry = Duration::from_secs(u64::try_from(expires_in).unwrap_or(0));
        scheduled
            .min(until_expiry)
            .max(self.retry_base.min(scheduled))
    }

    /// The retry delay of a message delivered `receive_count` times: `retry_base` doubled per
    /// earlier delivery, at most `retry_max`.
    pub fn backoff(&self, receive_count: u32) -> Duration {
        let exp = receive_count.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1 << exp).min(self.retry_max)
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Pinterest processed its event.
    Sent,
    /// Its event had been sent before.
    Deduplicated,
    /// It sends nothing, for this reason.
    Skipped(SkipReason),
    /// A compliance request was carried out.
    Compliance,
    /// A browser checkout was recorded as the order's shopper profile.
    ProfileRecorded,
    /// Moved to the dead-letter queue with this reason.
    DeadLettered(DeadLetterReason),
    /// Its event is in doubt (its dead letter waits for a human's `pinrelay replay --in-doubt`):
    /// nothing is sent.
    HeldInDoubt,
    /// Handed back to the queue for another attempt after the delay.
    Retry(Duration),
    /// Its store is paused (Pinterest refused its token, or rate-limits it): handed back after
    /// the delay ([`DispatchConfig::pause`]) however often it was received, until the event is
    /// too old for Pinterest; other stores' events are not held up.
    Paused(Duration, PauseReason),
}

impl Disposition {
    /// The `outcome` log field.
    pub fn label(&self) -> &'static str {
        match self {
            Disposition::Sent => "sent",
            Disposition::Deduplicated => "deduplicated",
            Disposition::Skipped(_) => "skipped",
            Disposition::Compliance => "compliance",
            Disposition::ProfileRecorded => "profile_recorded",
            Disposition::DeadLettered(_) => "dead_lettered",
            Disposition::HeldInDoubt => "held_in_doubt",
            Disposition::Retry(_) => "retried",
            Disposition::Paused(..) => "paused",
        }
    }
}

/// Why a message was moved to the dead-letter queue: something a human must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The message is not a queue envelope pinrelay can read.
    Undecodable(String),
    /// The webhook or browser body does not fit its topic.
    InvalidPayload(String),
    /// A compliance request whose body disagrees with its delivery's headers: not carried out.
    ComplianceMismatch(String),
    /// Pinterest refused the event for good.
    PinterestRejected(String),
    /// Pinterest may have the event (its request got no answer, or the relay stopped while it may
    /// have been sending): it is not sent again on its own, since Pinterest documents no
    /// deduplication of two Conversions API events. Its record is `in_doubt`; `pinrelay replay
    /// --in-doubt` sends it again, once, when a human decides Pinterest does not have it.
    InDoubt(DoubtCause),
    /// The message's shop is not (or no longer) served by this relay: not registered, disabled
    /// (`app/uninstalled`), or outside the allow-list. Replayable once the store is registered.
    ShopNotServed(String),
    /// A webhook that must name a customer (a consent change) names none: nobody to re-check.
    NoCustomerId {
        /// Its topic.
        topic: String,
    },
    /// Every delivery the queue allows failed with a retryable error.
    RetriesExhausted {
        /// Deliveries so far.
        attempts: u32,
    },
}

impl DeadLetterReason {
    /// A short stable label: the metric dimension, the log field, and what the
    /// `dead-letter-reason` attribute starts with.
    pub fn label(&self) -> &'static str {
        match self {
            DeadLetterReason::Undecodable(_) => "undecodable",
            DeadLetterReason::InvalidPayload(_) => "invalid_payload",
            DeadLetterReason::ComplianceMismatch(_) => "compliance_mismatch",
            DeadLetterReason::PinterestRejected(_) => "pinterest_rejected",
            DeadLetterReason::InDoubt(_) => "in_doubt",
            DeadLetterReason::ShopNotServed(_) => "shop_not_served",
            DeadLetterReason::NoCustomerId { .. } => "no_customer_id",
            DeadLetterReason::RetriesExhausted { .. } => "retries_exhausted",
        }
    }
}

/// `label: what happened`, the `dead-letter-reason` attribute a merchant reads in `replay`.
impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label();
        match self {
            DeadLetterReason::Undecodable(why)
            | DeadLetterReason::InvalidPayload(why)
            | DeadLetterReason::ComplianceMismatch(why)
            | DeadLetterReason::PinterestRejected(why) => write!(f, "{label}: {why}"),
            DeadLetterReason::NoCustomerId { topic } => write!(
                f,
                "{label}: the {topic} body names no customer (customer_id or id), so there is nobody to re-check"
            ),
            DeadLetterReason::RetriesExhausted { attempts } => {
                write!(f, "{label}: still failing after {attempts} attempts")
            }
            DeadLetterReason::ShopNotServed(shop) => write!(
                f,
                "{label}: {shop} is not a store this relay serves (pinrelay shops add, then replay)"
            ),
            DeadLetterReason::InDoubt(cause) => write!(
                f,
                "{label}: {}, so Pinterest may already have this event; it is not resent on its own. If Pinterest's Event History does not show it, run pinrelay replay --in-doubt",
                cause.describe()
            ),
        }
    }
}

/// What the logs say about a message: never its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Context {
    /// How the message reached the relay.
    pub source: Option<Source>,
    /// The webhook topic (or `browser/{event}`).
    pub topic: String,
    /// The shop domain.
    pub shop: String,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: Option<String>,
}

/// One message whose event is waiting to be claimed and sent.
#[derive(Debug)]
pub(super) struct Pending<'a> {
    /// The queue message.
    pub message: &'a Received,
    /// The event's record key (what it is about).
    pub key: IdempotencyKey,
    /// The key a pinrelay before one-record-per-event used, when it differs.
    pub legacy: Option<IdempotencyKey>,
    /// A human's resend of an in-doubt event: the record generation it was issued for.
    pub resend: Option<u32>,
    /// The record's generation, once claimed.
    pub generation: u32,
    /// Why the last attempt failed, for a `pending` record (never personal data).
    pub last_error: Option<String>,
    /// For an order's checkout: the shopper's profile recorded with the order's checkout token,
    /// read before the claim ([`super::profiles::look_up`]).
    pub profile: Option<Profile>,
    /// The event, enriched in place; its `event_id` is the record's once claimed.
    pub event: Event,
    /// The order behind a `checkout`, as `mapping` read it.
    pub order: Option<OrderRef>,
    /// For the logs.
    pub context: Context,
}

/// A browser checkout to record as its order's shopper profile.
#[derive(Debug)]
pub(super) struct ProfileWrite<'a> {
    /// The queue message.
    pub message: &'a Received,
    /// The shop.
    pub shop: String,
    /// The order id the pixel reported.
    pub order_id: u64,
    /// What to record.
    pub profile: Box<Profile>,
}

/// What a message becomes once decoded and translated.
#[derive(Debug)]
pub(super) enum Prepared<'a> {
    /// An event to claim and send.
    Event(Box<Pending<'a>>),
    /// A shopper profile to record.
    Profile(ProfileWrite<'a>),
    /// A compliance request to carry out.
    Compliance(&'a Received, Context, ComplianceRequest),
    /// Already decided: skipped or dead-lettered, with the order it is about when known.
    Decided(&'a Received, Option<Context>, Option<u64>, Disposition),
}

/// Counts of one batch, also emitted as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages in the batch.
    pub received: u64,
    /// Events included in Pinterest requests.
    pub sent: u64,
    /// Events Pinterest processed.
    pub processed: u64,
    /// Events Pinterest failed.
    pub failed: u64,
    /// Events already sent before.
    pub deduplicated: u64,
    /// Skips by reason label.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Messages to retry.
    pub retried: u64,
    /// Dead letters by reason label.
    pub dead_lettered: BTreeMap<&'static str, u64>,
    /// Late events.
    pub late: u64,
    /// Events skipped as expired (never sent, now too old to send).
    pub expired: u64,
    /// Compliance requests handled.
    pub compliance: u64,
    /// Auth failures seen.
    pub auth_failures: u64,
    /// Browser checkouts recorded as profiles.
    pub profiles_recorded: u64,
    /// Order checkouts enriched from a profile.
    pub enriched: u64,
    /// Under `CHECKOUT_EVENT_ID=shopify_event`: order checkouts that took the order id because no
    /// pixel record with the Shopify event id matched the order.
    pub event_id_fallbacks: u64,
    /// Browser events whose pixel reported settings other than the relay's.
    pub pixel_settings_drift: u64,
    /// Messages whose event is in doubt (held, nothing sent).
    pub held_in_doubt: u64,
    /// The match keys of the processed events.
    pub matched: MatchKeyCounts,
}

/// The result of [`super::Dispatcher::dispatch`].
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Item identifiers of the messages to retry; all others are settled and may be deleted.
    pub batch_item_failures: Vec<String>,
    /// Per-message dispositions, by item identifier.
    pub dispositions: BTreeMap<String, Disposition>,
    /// Totals.
    pub counts: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_delivery_up_to_the_maximum() {
        let config = DispatchConfig {
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(900),
            ..DispatchConfig::default()
        };
        let delays: Vec<u64> = (1..=6).map(|n| config.backoff(n).as_secs()).collect();
        assert_eq!(delays, [60, 120, 240, 480, 900, 900]);
        assert_eq!(config.backoff(0).as_secs(), 60);
        assert_eq!(config.backoff(u32::MAX).as_secs(), 900);
    }

    #[test]
    fn dead_letter_reasons_start_with_their_label() {
        let reasons = [
            DeadLetterReason::Undecodable("no topic".into()),
            DeadLetterReason::InvalidPayload("line 1".into()),
            DeadLetterReason::ComplianceMismatch("shop".into()),
            DeadLetterReason::PinterestRejected("bad currency".into()),
            DeadLetterReason::RetriesExhausted { attempts: 5 },
            DeadLetterReason::InDoubt(DoubtCause::NoAnswer),
            DeadLetterReason::InDoubt(DoubtCause::HolderStopped),
        ];
        for reason in reasons {
            let text = reason.to_string();
            assert!(text.starts_with(&format!("{}: ", reason.label())), "{text}");
        }
        assert_eq!(
            DeadLetterReason::RetriesExhausted { attempts: 5 }.to_string(),
            "retries_exhausted: still failing after 5 attempts"
        );
    }
}
