//! Stage 7: what each message's disposition requires, for a whole group of messages at once.
//! Dead letters are moved first (in as few requests as the queue allows), so a record says
//! `dead_lettered` or `in_doubt` only once its letter is stored; then retry delays are set, and
//! every record this invocation holds is settled (sent, skipped, dead-lettered, in doubt, or
//! pending), with a decision about an order taken without the lock recorded on the order's record
//! and a dead letter without a subject counted. Each message is counted and logged once, in one
//! compact line. The batch's counts become metrics.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::model::{
    BatchReport, Context, Counts, DeadLetterReason, DispatchConfig, Disposition, Pending,
    STORE_CONCURRENCY,
};
use crate::idempotency::{
    Holder, IdempotencyKey, IdempotencyStore, LetterFacts, PauseReason, Retrying, SentFacts,
    Settled, Settlement, SkipFacts, Unheld,
};
use crate::mapping::SkipReason;
use crate::metrics::{Metrics, Unit, names};
use crate::pinterest::{Event, MatchKeys};
use crate::queue::{Inbox, Letter, Received, RelayFacts};

/// Where dead letters without a shop are counted.
const UNKNOWN_SHOP: &str = "unknown";

/// Settles messages of one batch into its report.
pub(super) struct Settler<'d, S, I> {
    /// Where records are settled.
    pub store: &'d S,
    /// Where dead letters and retry delays go.
    pub inbox: &'d I,
    /// Retry limits, the late threshold and the send mode.
    pub config: &'d DispatchConfig,
    /// The holder of this invocation's locks.
    pub holder: &'d Holder,
    /// The batch's clock.
    pub now: DateTime<Utc>,
}

/// What a settled message writes to the records.
pub(super) enum Write {
    /// Nothing (a duplicate, a profile, a compliance request, a skip of something not an order).
    Nothing,
    /// The record this invocation holds.
    Held {
        /// Its key.
        key: IdempotencyKey,
        /// What was sent, for a sent event.
        sent: Option<SentFacts>,
        /// Its generation (an in-doubt letter carries the next one).
        generation: u32,
        /// Why the last attempt failed.
        last_error: Option<String>,
    },
    /// A decision about an order taken without the lock.
    Order(IdempotencyKey),
    /// A dead letter without a subject: counted by reason.
    Count,
}

/// One message to settle.
pub(super) struct Item<'m> {
    /// The message.
    pub message: &'m Received,
    /// What the logs say about it.
    pub context: Option<Context>,
    /// The event's `event_id`, once there is one.
    pub event_id: Option<String>,
    /// What it writes.
    pub write: Write,
    /// What became of it.
    pub disposition: Disposition,
}

impl<'m> Item<'m> {
    /// A message settled without touching a record.
    pub fn plain(message: &'m Received, context: Option<Context>, d: Disposition) -> Self {
        Self {
            message,
            context,
            event_id: None,
            write: Write::Nothing,
            disposition: d,
        }
    }

    /// A message decided before any claim: a skip or dead letter of an order is recorded on the
    /// order's record, a dead letter without an order is counted.
    pub fn decided(
        message: &'m Received,
        context: Option<Context>,
        order: Option<u64>,
        d: Disposition,
    ) -> Self {
        let shop = context.as_ref().map_or(UNKNOWN_SHOP, |c| c.shop.as_str());
        let write = match (&d, order) {
            (Disposition::Skipped(_) | Disposition::DeadLettered(_), Some(id)) => {
                IdempotencyKey::order(shop, id).map_or(Write::Nothing, Write::Order)
            }
            (Disposition::DeadLettered(_), None) => Write::Count,
            _ => Write::Nothing,
        };
        Self {
            message,
            context,
            event_id: None,
            write,
            disposition: d,
        }
    }

    /// An event whose record this invocation does not hold.
    pub fn unheld(p: &Pending<'m>, d: Disposition) -> Self {
        Self {
            message: p.message,
            context: Some(p.context.clone()),
            event_id: Some(p.event.event_id.clone()),
            write: Write::Nothing,
            disposition: d,
        }
    }

    /// An event whose record this invocation holds.
    pub fn held(
        p: &Pending<'m>,
        d: Disposition,
        config: &DispatchConfig,
        now: DateTime<Utc>,
    ) -> Self {
        let sent = (d == Disposition::Sent).then(|| {
            let custom = p.event.custom_data.as_ref();
            SentFacts {
                at: Some(now),
                mode: config.mode,
                match_keys: MatchKeys::of(&p.event),
                value: custom.and_then(|c| c.value.clone()),
                currency: custom.and_then(|c| c.currency.clone()),
                late: is_late(config, &p.event, now),
                legacy: false,
            }
        });
        Self {
            message: p.message,
            context: Some(p.context.clone()),
            event_id: Some(p.event.event_id.clone()),
            write: Write::Held {
                key: p.key.clone(),
                sent,
                generation: p.generation,
                last_error: p.last_error.clone(),
            },
            disposition: d,
        }
    }
}

fn is_late(config: &DispatchConfig, event: &Event, now: DateTime<Utc>) -> bool {
    now.timestamp() - event.event_time > config.late_after.as_secs() as i64
}

/// The reason facts a record keeps of a skip.
fn skip_facts(reason: &SkipReason) -> SkipFacts {
    SkipFacts {
        reason: reason.label().to_owned(),
        detail: reason.to_string(),
        by_rule: reason.is_rule(),
    }
}

/// The reason facts a record keeps of a dead letter.
fn letter_facts(reason: &DeadLetterReason) -> LetterFacts {
    LetterFacts {
        reason: reason.label().to_owned(),
        detail: reason.to_string(),
    }
}

impl<S: IdempotencyStore, I: Inbox> Settler<'_, S, I> {
    /// Settles `items`: dead letters, retry delays, record writes (all at once), then counts, logs
    /// and dispositions.
    pub async fn settle(&self, report: &mut BatchReport, mut items: Vec<Item<'_>>) {
        let config = self.config;
        for item in &mut items {
            if matches!(item.disposition, Disposition::Retry(_))
                && item.message.receive_count >= config.max_receive_count
            {
                item.disposition = Disposition::DeadLettered(DeadLetterReason::RetriesExhausted {
                    attempts: item.message.receive_count,
                });
            }
        }

        // Dead letters first: a record says dead-lettered or in doubt only once its letter is stored.
        let letters: Vec<(usize, String, RelayFacts)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match &item.disposition {
                Disposition::DeadLettered(reason) => {
                    let mut relay = RelayFacts::of(&item.message.attributes);
                    relay.resend = None;
                    relay.in_doubt = match (reason, &item.write) {
                        (DeadLetterReason::InDoubt(_), Write::Held { generation, .. }) => {
                            Some(generation + 1)
                        }
                        _ => None,
                    };
                    Some((i, reason.to_string(), relay))
                }
                _ => None,
            })
            .collect();
        let mut unstored_doubt = vec![false; items.len()];
        if !letters.is_empty() {
            let requests: Vec<Letter<'_>> = letters
                .iter()
                .map(|(i, reason, relay)| Letter {
                    message: items[*i].message,
                    reason,
                    relay: Some(relay),
                })
                .collect();
            let results = self.inbox.dead_letter_many(&requests).await;
            for ((i, _, _), result) in letters.iter().zip(results) {
                if let Err(e) = result {
                    let item = &mut items[*i];
                    tracing::error!(message_id = %item.message.id, error.message = %e, "could not dead-letter the message; it will be retried");
                    unstored_doubt[*i] = matches!(
                        item.disposition,
                        Disposition::DeadLettered(DeadLetterReason::InDoubt(_))
                    );
                    item.disposition =
                        Disposition::Retry(config.backoff(item.message.receive_count));
                }
            }
        }

        for item in &items {
            if let Disposition::Retry(delay) | Disposition::Paused(delay, _) = &item.disposition {
                report.batch_item_failures.push(item.message.id.clone());
                if let Err(e) = self.inbox.retry_after(item.message, *delay).await {
                    tracing::warn!(message_id = %item.message.id, error.message = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
            }
        }

        futures::stream::iter(
            items
                .iter()
                .zip(&unstored_doubt)
                .map(|(item, unstored)| self.write(item, *unstored)),
        )
        .buffer_unordered(STORE_CONCURRENCY)
        .for_each(|()| async {})
        .await;

        // Each paused store once, for the watch to name it.
        let mut paused: Vec<(&str, PauseReason)> = Vec::new();
        for item in &items {
            if let (Disposition::Paused(_, reason), Some(context)) =
                (&item.disposition, &item.context)
                && !paused.iter().any(|(shop, _)| *shop == context.shop)
            {
                paused.push((&context.shop, *reason));
            }
        }
        for (shop, reason) in paused {
            tracing::error!(
                shop,
                reason = reason.as_str(),
                outcome = "store_paused",
                "{reason}: the store's events wait (up to 12 h between attempts, for 7 days); fix it with pinrelay shops update {shop} --secrets (the stack's PinterestAccessTokenSecret for the default store)"
            );
            if let Err(e) = self.store.mark_paused(shop, reason, self.now).await {
                tracing::warn!(shop, error.message = %e, "could not note the store's pause");
            }
        }

        for item in items {
            if item.disposition == Disposition::Sent
                && let Write::Held {
                    sent: Some(facts), ..
                } = &item.write
            {
                report.counts.late += u64::from(facts.late);
                report.counts.matched.add(&facts.match_keys);
            }
            count(&mut report.counts, &item.disposition);
            log(
                item.message,
                item.context.as_ref(),
                item.event_id.as_deref(),
                &item.disposition,
            );
            report
                .dispositions
                .insert(item.message.id.clone(), item.disposition);
        }
    }

    /// The record write of one settled message. A failure is logged: the record's lock then
    /// expires, and the next delivery finds it abandoned (in doubt), which never sends twice.
    async fn write(&self, item: &Item<'_>, unstored_doubt: bool) {
        let store = self.store;
        let now = self.now;
        let d = &item.disposition;
        match &item.write {
            Write::Nothing => {}
            Write::Held {
                key,
                sent,
                last_error,
                ..
            } => {
                if unstored_doubt {
                    // Its letter could not be stored: the lock stays, so the next delivery after
                    // it expires finds the event abandoned and tries the letter again.
                    return;
                }
                let settlement = match d {
                    Disposition::Sent => {
                        Settlement::Settled(Settled::Sent(sent.clone().unwrap_or_default()))
                    }
                    Disposition::Skipped(reason) => {
                        Settlement::Settled(Settled::Skipped(skip_facts(reason)))
                    }
                    Disposition::DeadLettered(DeadLetterReason::InDoubt(cause)) => {
                        Settlement::Settled(Settled::InDoubt { cause: *cause })
                    }
                    Disposition::DeadLettered(reason) => {
                        Settlement::Settled(Settled::DeadLettered(letter_facts(reason)))
                    }
                    Disposition::Retry(_) | Disposition::Paused(..) => {
                        Settlement::Pending(Retrying {
                            attempts: item.message.receive_count,
                            last_error: last_error
                                .clone()
                                .unwrap_or_else(|| "a retryable failure".to_owned()),
                        })
                    }
                    Disposition::Deduplicated
                    | Disposition::HeldInDoubt
                    | Disposition::Compliance
                    | Disposition::ProfileRecorded => return,
                };
                if let Err(e) = store.settle(key, self.holder, &settlement, now).await {
                    if *d == Disposition::Sent {
                        tracing::error!(key = %key, error.message = %e, "event sent but its record could not say so; its lock expires and a later delivery finds it in doubt");
                    } else {
                        tracing::warn!(key = %key, error.message = %e, "could not settle the event's record; its lock expires");
                    }
                }
            }
            Write::Order(key) => {
                let decision = match d {
                    Disposition::Skipped(reason) => Unheld::Skipped(skip_facts(reason)),
                    Disposition::DeadLettered(reason) => Unheld::DeadLettered(letter_facts(reason)),
                    _ => return,
                };
                let topic = item.context.as_ref().map_or("", |c| c.topic.as_str());
                if let Err(e) = store.record(key, &decision, topic, now).await {
                    tracing::warn!(key = %key, error.message = %e, "could not record the order's outcome; reconcile shows it missing");
                }
            }
            Write::Count => {
                let Disposition::DeadLettered(reason) = d else {
                    return;
                };
                let shop = item
                    .context
                    .as_ref()
                    .map_or(UNKNOWN_SHOP, |c| c.shop.as_str());
                if let Err(e) = store.count_dead_letter(shop, reason.label(), now).await {
                    tracing::warn!(shop, error.message = %e, "could not count the dead letter");
                }
            }
        }
    }
}

fn count(c: &mut Counts, disposition: &Disposition) {
    match disposition {
        Disposition::Sent => c.processed += 1,
        Disposition::Deduplicated => c.deduplicated += 1,
        Disposition::Skipped(reason) => {
            if matches!(reason, SkipReason::Expired { .. }) {
                c.expired += 1;
            }
            *c.skipped.entry(reason.label()).or_default() += 1;
        }
        Disposition::Compliance => c.compliance += 1,
        Disposition::ProfileRecorded => c.profiles_recorded += 1,
        Disposition::DeadLettered(reason) => {
            *c.dead_lettered.entry(reason.label()).or_default() += 1;
        }
        Disposition::HeldInDoubt => c.held_in_doubt += 1,
        Disposition::Retry(_) | Disposition::Paused(..) => c.retried += 1,
    }
}

/// The message's one log line: outcome, reason label, and what identifies it (never its body).
fn log(message: &Received, context: Option<&Context>, event_id: Option<&str>, d: &Disposition) {
    let topic = context.map(|c| c.topic.as_str());
    let shop = context.map(|c| c.shop.as_str());
    let webhook_id = context.and_then(|c| c.webhook_id.as_deref());
    let outcome = d.label();
    match d {
        Disposition::DeadLettered(reason) => tracing::warn!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            reason = reason.label(), detail = %reason, "message settled"
        ),
        Disposition::HeldInDoubt => tracing::warn!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            "message settled: its event is in doubt; run pinrelay replay --in-doubt once Pinterest's Event History shows it missing"
        ),
        Disposition::Skipped(reason) => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            reason = reason.label(), detail = %reason, "message settled"
        ),
        Disposition::Retry(delay) | Disposition::Paused(delay, _) => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            delay_s = delay.as_secs(), receive_count = message.receive_count, "message settled"
        ),
        _ => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome, "message settled"
        ),
    }
}

/// Emits the batch's counts as metrics (skips and dead letters with their reason dimension).
pub(super) fn emit(metrics: &Metrics, c: &Counts) {
    let count = |name, n: u64| (name, n as f64, Unit::Count);
    metrics.record(
        None,
        &[
            count(names::EVENTS_SENT, c.sent),
            count(names::EVENTS_PROCESSED, c.processed),
            count(names::EVENTS_FAILED, c.failed),
            count(names::EVENTS_DEDUPLICATED, c.deduplicated),
            count(names::EVENTS_RETRIED, c.retried),
            count(names::EVENTS_LATE, c.late),
            count(names::EVENTS_EXPIRED, c.expired),
            count(names::EVENTS_HELD_IN_DOUBT, c.held_in_doubt),
            count(names::COMPLIANCE_HANDLED, c.compliance),
            count(names::PINTEREST_AUTH_FAILURES, c.auth_failures),
            count(names::MATCH_EMAIL, c.matched.email),
            count(names::MATCH_PHONE, c.matched.phone),
            count(names::MATCH_CLICK_ID, c.matched.click_id),
            count(names::MATCH_IP_UA, c.matched.ip_ua),
            count(names::MATCH_EXTERNAL_ID, c.matched.external_id),
            count(names::PROFILES_RECORDED, c.profiles_recorded),
            count(names::ORDERS_ENRICHED, c.enriched),
            count(names::EVENT_ID_FALLBACKS, c.event_id_fallbacks),
            count(names::PIXEL_SETTINGS_DRIFT, c.pixel_settings_drift),
        ],
    );
    for (reason, n) in &c.skipped {
        metrics.count(names::EVENTS_SKIPPED, Some(reason), *n);
    }
    for (reason, n) in &c.dead_lettered {
        metrics.count(names::EVENTS_DEAD_LETTERED, Some(reason), *n);
    }
}
