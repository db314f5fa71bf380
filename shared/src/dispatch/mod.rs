//! [`Dispatcher`]: queue messages to Pinterest events, exactly once. Shared by the dispatch Lambda
//! and `pinrelay serve`.
//!
//! [`Dispatcher::dispatch`] runs a batch through its stages, top to bottom:
//!
//! 1. **prepare** ([`prepare`]): decode and translate each message on its own (pure). It becomes
//!    an event to send, a browser checkout's profile, a compliance request, or a decided skip or
//!    dead letter.
//! 2. **comply** ([`compliance`]): compliance requests are carried out.
//! 3. **record** ([`profiles::record`]): browser checkouts become shopper profiles, before any
//!    claim, so an order in the same batch already finds its profile.
//! 4. **claim** ([`claim`]): one leader per idempotency key takes the lock; further messages of the
//!    key follow the leader's outcome. A key sent before is deduplicated whatever its age; an event
//!    claimed but older than Pinterest's 7 days is skipped as `expired` ([`prepare::expiry`]).
//! 5. **enrich** ([`profiles::enrich`]): claimed order checkouts take what their profile adds, then
//!    the identity check.
//! 6. **send** ([`send`]): as few requests as possible; a whole-request 400 is split in halves.
//! 7. **settle** ([`settle`]): keys completed or released, messages dead-lettered or delayed,
//!    counted, logged once each, filed in the outcome ledger ([`crate::ledger`]), and the counts
//!    emitted as metrics.
//!
//! The stages share the types of [`model`] and never call each other; only this file orders them.
//! The report names the messages to retry (batch item failures); every other message is settled:
//! sent, deduplicated, skipped for a stated reason, or dead-lettered with its reason.

mod claim;
mod compliance;
mod model;
mod prepare;
mod profiles;
mod send;
mod settle;
#[cfg(all(test, feature = "sqlite"))]
mod tests;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use self::model::Prepared;
pub use self::model::{BatchReport, Counts, DeadLetterReason, DispatchConfig, Disposition};
use self::settle::{About, Settler};
use crate::idempotency::IdempotencyStore;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::pinterest::ConversionsApi;
use crate::profile::ProfileStore;
use crate::queue::{Inbox, Received};

/// The dispatcher over its five ports: idempotency records, shopper profiles, the outcome ledger,
/// the Conversions API and the inbox the messages came from.
pub struct Dispatcher<S, P, L, A, I> {
    store: S,
    profiles: P,
    ledger: L,
    api: A,
    inbox: I,
    config: DispatchConfig,
    metrics: Metrics,
}

impl<S: IdempotencyStore, P: ProfileStore, L: Ledger, A: ConversionsApi, I: Inbox>
    Dispatcher<S, P, L, A, I>
{
    /// Builds the dispatcher.
    pub fn new(
        store: S,
        profiles: P,
        ledger: L,
        api: A,
        inbox: I,
        config: DispatchConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            profiles,
            ledger,
            api,
            inbox,
            config,
            metrics,
        }
    }

    /// Handles a batch. `deadline` is when the invocation ends: no Pinterest request starts that
    /// could not finish before it (less `deadline_margin`); what is left is released and handed
    /// back. Locks taken now expire one `request_timeout` after the deadline, so a crashed
    /// invocation blocks nothing for longer and a live one never outlives its locks.
    pub async fn dispatch(
        &self,
        batch: &[Received],
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> BatchReport {
        let config = &self.config;
        let started = Instant::now();
        let budget = (deadline - now).to_std().unwrap_or(Duration::ZERO);
        let cutoff = started + budget.saturating_sub(config.deadline_margin);
        let lock_until = chrono::Duration::from_std(config.request_timeout)
            .ok()
            .and_then(|t| deadline.checked_add_signed(t))
            .unwrap_or(deadline);
        let settler = Settler {
            store: &self.store,
            ledger: &self.ledger,
            inbox: &self.inbox,
            config,
            now,
            entries: Default::default(),
        };
        let mut report = BatchReport::default();
        report.counts.received = batch.len() as u64;

        let mut events = Vec::new();
        let mut writes = Vec::new();
        for message in batch {
            match prepare::prepare(message, config, now) {
                Prepared::Event(p) => events.push(*p),
                Prepared::Profile(write) => writes.push(write),
                Prepared::Compliance(message, context, request) => {
                    let d = compliance::comply(
                        &self.store,
                        &self.profiles,
                        &self.ledger,
                        config,
                        &request,
                        now,
                    )
                    .await;
                    settler
                        .settle(&mut report, message, Some(&context), None, d)
                        .await;
                }
                Prepared::Decided(message, context, subject, d) => {
                    let about = subject.map(|subject| About {
                        subject,
                        event: None,
                    });
                    settler
                        .settle(&mut report, message, context.as_ref(), about, d)
                        .await;
                }
            }
        }

        for (message, d) in profiles::record(&self.profiles, writes, config, now).await {
            settler.settle(&mut report, message, None, None, d).await;
        }

        let (leaders, followers) = claim::leaders_and_followers(events);
        let claimed = claim::claim(&self.store, leaders, config, now, lock_until).await;
        for (p, d) in claimed.decided {
            settler.settle_event(&mut report, &p, d).await;
        }
        let in_doubt = claimed.abandoned.into_iter();
        let in_doubt = in_doubt.map(|p| (p, Disposition::DeadLettered(DeadLetterReason::InDoubt)));
        settler.settle_held(&mut report, in_doubt.collect()).await;

        let mut held = Vec::with_capacity(claimed.held.len());
        let mut expired = Vec::new();
        for p in claimed.held {
            match prepare::expiry(&p, config, now) {
                Some(reason) => expired.push((p, Disposition::Skipped(reason))),
                None => held.push(p),
            }
        }
        settler.settle_held(&mut report, expired).await;

        let enriched =
            profiles::enrich(&self.profiles, held, config.order_consent_policy, now).await;
        report.counts.enriched += enriched.enriched;
        settler.settle_held(&mut report, enriched.skipped).await;

        let sent = send::send(&self.api, enriched.to_send, config, &self.metrics, cutoff).await;
        report.counts.sent += sent.sent;
        report.counts.failed += sent.failed;
        report.counts.auth_failures += sent.auth_failures;
        settler.settle_held(&mut report, sent.results).await;

        for (p, leader_id) in followers {
            let d = claim::follow(report.dispositions.get(&leader_id), &p, config);
            settler.settle_event(&mut report, &p, d).await;
        }

        settler.file_outcomes().await;
        settle::emit(&self.metrics, &report.counts);
        report
    }
}
