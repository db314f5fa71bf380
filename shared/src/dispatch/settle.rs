//! Stage 7: what each message's disposition requires. A held key is completed (sent) or released
//! (anything else); a dead letter is moved with its reason, a retry gets its delay; every message is
//! counted and logged once, in one compact line, and what it settled about an order or event is
//! filed in the outcome ledger. The batch's counts become metrics.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::model::{
    BatchReport, Context, Counts, DeadLetterReason, DispatchConfig, Disposition, Pending,
    STORE_CONCURRENCY,
};
use crate::idempotency::IdempotencyStore;
use crate::ledger::{Entry, LEDGER_TTL_SECONDS, Ledger, MatchKeys, Recorded, Subject};
use crate::mapping::SkipReason;
use crate::metrics::{Metrics, Unit, names};
use crate::pinterest::Event;
use crate::queue::{Inbox, Received};

/// Settles messages of one batch into its report.
pub(super) struct Settler<'d, S, L, I> {
    /// Where held keys are completed or released.
    pub store: &'d S,
    /// Where outcomes are filed.
    pub ledger: &'d L,
    /// Where dead letters and retry delays go.
    pub inbox: &'d I,
    /// Retry limits and the late threshold.
    pub config: &'d DispatchConfig,
    /// The batch's clock.
    pub now: DateTime<Utc>,
    /// Outcomes settled so far, written together by [`Settler::file_outcomes`].
    pub entries: Mutex<Vec<Entry>>,
}

/// What a settled message is about, for the ledger and the log line.
pub(super) struct About<'a> {
    /// The order or event.
    pub subject: Subject,
    /// The event, once there is one.
    pub event: Option<&'a Event>,
}

impl<S: IdempotencyStore, L: Ledger, I: Inbox> Settler<'_, S, L, I> {
    /// Settles events whose keys this invocation holds: sent ones are completed, all others
    /// released (so a later delivery may try again), all at once; then each is settled.
    pub async fn settle_held(
        &self,
        report: &mut BatchReport,
        results: Vec<(Pending<'_>, Disposition)>,
    ) {
        let in_doubt = |d: &Disposition| *d == Disposition::DeadLettered(DeadLetterReason::InDoubt);
        futures::stream::iter(results.iter().map(|(p, d)| async move {
            if *d == Disposition::Sent {
                if let Err(e) = self.store.complete(&p.key, self.now).await {
                    tracing::error!(key = %p.key, error.message = %e, "event sent but not recorded as completed; a redelivery may send it again");
                }
            } else if in_doubt(d) {
                // Completed once its dead letter is stored (below), not before.
            } else if let Err(e) = self.store.release(&p.key).await {
                tracing::warn!(key = %p.key, error.message = %e, "could not release the event's key; its lock expires");
            }
        }))
        .buffer_unordered(STORE_CONCURRENCY)
        .for_each(|()| async {})
        .await;
        for (p, d) in results {
            if d == Disposition::Sent {
                count_match(&mut report.counts, &p.event, self.is_late(&p.event));
            }
            let doubted = in_doubt(&d);
            self.settle_event(report, &p, d).await;
            // An in-doubt event may have been sent: once its dead letter is stored, its key is
            // completed, so no later delivery sends it on its own. If the dead letter could not be
            // stored, the key stays locked: the next delivery after the lock finds it abandoned and
            // tries the dead letter again.
            let stored = report.dispositions.get(&p.message.id).is_some_and(in_doubt);
            if doubted
                && stored
                && let Err(e) = self.store.complete(&p.key, self.now).await
            {
                tracing::warn!(key = %p.key, error.message = %e, "could not record the in-doubt event's key; its lock expires and the next delivery finds it abandoned");
            }
        }
    }

    fn is_late(&self, event: &Event) -> bool {
        self.now.timestamp() - event.event_time > self.config.late_after.as_secs() as i64
    }

    /// Settles an event whose key this invocation does not hold.
    pub async fn settle_event(&self, report: &mut BatchReport, p: &Pending<'_>, d: Disposition) {
        let about = About {
            subject: p.subject(),
            event: Some(&p.event),
        };
        self.settle(report, p.message, Some(&p.context), Some(about), d)
            .await;
    }

    /// Writes the outcomes settled so far to the ledger, all at once. A failed write is logged
    /// and costs nothing else: the ledger informs reconcile, it never decides.
    pub async fn file_outcomes(&self) {
        let entries = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        let expires_at = self.now.timestamp() + LEDGER_TTL_SECONDS;
        futures::stream::iter(entries.iter().map(|entry| async move {
            if let Err(e) = self.ledger.record(entry, expires_at).await {
                tracing::warn!(subject = %entry.subject, shop = %entry.shop, outcome = entry.outcome.label(), error.message = %e, "could not file the outcome in the ledger; reconcile will not see it");
            }
        }))
        .buffer_unordered(STORE_CONCURRENCY)
        .for_each(|()| async {})
        .await;
    }

    /// The ledger entry of a settled message, when it concerns an order or an event.
    fn entry(
        &self,
        message: &Received,
        context: Option<&Context>,
        about: About<'_>,
        d: &Disposition,
    ) -> Option<Entry> {
        let outcome = match d {
            Disposition::Sent => {
                let event = about.event?;
                let custom = event.custom_data.as_ref();
                Recorded::Sent {
                    event_id: event.event_id.clone(),
                    match_keys: MatchKeys::of(event),
                    value: custom.and_then(|c| c.value.clone()),
                    currency: custom.and_then(|c| c.currency.clone()),
                    late: self.is_late(event),
                }
            }
            Disposition::Skipped(reason) => Recorded::Skipped {
                reason: reason.label().to_owned(),
                detail: reason.to_string(),
                by_rule: reason.is_rule(),
            },
            Disposition::DeadLettered(reason) => Recorded::DeadLettered {
                reason: reason.label().to_owned(),
                detail: reason.to_string(),
            },
            Disposition::Retry(delay) => Recorded::Pending {
                attempts: message.receive_count,
                retry_in_s: delay.as_secs(),
            },
            Disposition::Deduplicated | Disposition::Compliance | Disposition::ProfileRecorded => {
                return None;
            }
        };
        let context = context?;
        Some(Entry {
            shop: context.shop.clone(),
            subject: about.subject,
            topic: context.topic.clone(),
            at: self.now,
            outcome,
        })
    }

    /// Records the disposition of one message, performing the dead-letter or retry it needs.
    pub async fn settle(
        &self,
        report: &mut BatchReport,
        message: &Received,
        context: Option<&Context>,
        about: Option<About<'_>>,
        disposition: Disposition,
    ) {
        let event_id = about
            .as_ref()
            .and_then(|a| a.event)
            .map(|e| e.event_id.as_str());
        let disposition = match disposition {
            Disposition::Retry(_) if message.receive_count >= self.config.max_receive_count => {
                Disposition::DeadLettered(DeadLetterReason::RetriesExhausted {
                    attempts: message.receive_count,
                })
            }
            other => other,
        };
        let disposition = match disposition {
            Disposition::DeadLettered(reason) => {
                let marked;
                let letter = if reason == DeadLetterReason::InDoubt {
                    let mut m = message.clone();
                    m.attributes
                        .insert(crate::queue::attr::IN_DOUBT.to_owned(), "true".to_owned());
                    marked = m;
                    &marked
                } else {
                    message
                };
                match self.inbox.dead_letter(letter, &reason.to_string()).await {
                    Ok(()) => Disposition::DeadLettered(reason),
                    Err(e) => {
                        tracing::error!(message_id = %message.id, error.message = %e, "could not dead-letter the message; it will be retried");
                        Disposition::Retry(self.config.backoff(message.receive_count))
                    }
                }
            }
            other => other,
        };
        if let Disposition::Retry(delay) = &disposition {
            report.batch_item_failures.push(message.id.clone());
            if let Err(e) = self.inbox.retry_after(message, *delay).await {
                tracing::warn!(message_id = %message.id, error.message = %e, "could not set the retry delay; the queue's visibility timeout applies");
            }
        }
        count(&mut report.counts, &disposition);
        log(message, context, event_id, &disposition);
        if let Some(entry) = about.and_then(|a| self.entry(message, context, a, &disposition)) {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry);
        }
        report.dispositions.insert(message.id.clone(), disposition);
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
        Disposition::Retry(_) => c.retried += 1,
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
        Disposition::Skipped(reason) => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            reason = reason.label(), detail = %reason, "message settled"
        ),
        Disposition::Retry(delay) => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome,
            delay_s = delay.as_secs(), receive_count = message.receive_count, "message settled"
        ),
        _ => tracing::info!(
            message_id = %message.id, topic, shop, webhook_id, event_id, outcome, "message settled"
        ),
    }
}

/// Counts a sent event's match keys, the ones its ledger entry records.
fn count_match(c: &mut Counts, event: &Event, late: bool) {
    let keys = MatchKeys::of(event);
    c.late += u64::from(late);
    c.with_email += u64::from(keys.email);
    c.with_phone += u64::from(keys.phone);
    c.with_click_id += u64::from(keys.click_id);
    c.with_ip_ua += u64::from(keys.ip_ua);
    c.with_external_id += u64::from(keys.external_id);
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
            count(names::COMPLIANCE_HANDLED, c.compliance),
            count(names::PINTEREST_AUTH_FAILURES, c.auth_failures),
            count(names::MATCH_EMAIL, c.with_email),
            count(names::MATCH_PHONE, c.with_phone),
            count(names::MATCH_CLICK_ID, c.with_click_id),
            count(names::MATCH_IP_UA, c.with_ip_ua),
            count(names::MATCH_EXTERNAL_ID, c.with_external_id),
            count(names::PROFILES_RECORDED, c.profiles_recorded),
            count(names::ORDERS_ENRICHED, c.enriched),
        ],
    );
    for (reason, n) in &c.skipped {
        metrics.count(names::EVENTS_SKIPPED, Some(reason), *n);
    }
    for (reason, n) in &c.dead_lettered {
        metrics.count(names::EVENTS_DEAD_LETTERED, Some(reason), *n);
    }
}
