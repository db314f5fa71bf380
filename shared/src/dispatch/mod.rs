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
//!    Each order checkout's profile is read then, the one with the order's own checkout token
//!    ([`profiles::look_up`]); under `CHECKOUT_EVENT_ID=shopify_event` its Shopify event id is the
//!    `event_id` the claim proposes.
//! 4. **claim** ([`claim`]): one leader per idempotency key takes the lock; further messages of the
//!    key follow the leader's outcome. A key sent before is deduplicated whatever its age; an event
//!    claimed but older than Pinterest's 7 days is skipped as `expired` ([`prepare::expiry`]).
//! 5. **enrich** ([`profiles::enrich`]): claimed order checkouts take what their profile adds, then
//!    the identity check.
//! 6. **send** ([`send`]): as few requests as possible; a whole-request 400 is split in halves.
//! 7. **settle** ([`settle`]): messages dead-lettered (in batches) or delayed, then each record
//!    this invocation holds settled (sent, skipped, dead-lettered, in doubt, pending): the record
//!    is the ledger reconcile reads ([`crate::idempotency`]). Counted, logged once each, and the
//!    counts emitted as metrics.
//!
//! The stages share the types of [`model`] and never call each other; only this file orders them.
//! The report names the messages to retry (batch item failures); every other message is settled:
//! sent, deduplicated, skipped for a stated reason, or dead-lettered with its reason.

mod claim;
mod compliance;
pub use self::compliance::AudienceLedger;
mod model;
mod prepare;
mod profiles;
pub mod routes;
mod send;
mod settle;
#[cfg(all(test, feature = "sqlite"))]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use self::model::Prepared;

/// The dispatch log's warning for a browser event whose pixel settings differ from the relay's
/// (`pinrelay doctor` counts these lines).
pub const PIXEL_DRIFT_MESSAGE: &str = "the storefront pixel's settings differ from the relay's; paste the pixel again (pinrelay prints it with the stack's settings)";
pub use self::model::{
    BatchReport, Counts, DeadLetterReason, DispatchConfig, Disposition, PAUSE_MAX,
    QUEUE_MAX_RECEIVES,
};
pub use self::routes::{Route, Routes, StoreRoutes};
use self::settle::{Item, Settler};
use crate::idempotency::{DoubtCause, Holder, IdempotencyStore};
use crate::metrics::Metrics;
use crate::pinterest::ConversionsApi;
use crate::profile::ProfileStore;
use crate::queue::{Inbox, Received, attr};

/// A batch's clock: when it started, when the last request must have started, when its locks end.
#[derive(Clone, Copy)]
struct Clock {
    now: DateTime<Utc>,
    cutoff: Instant,
    lock_until: DateTime<Utc>,
}

/// The dispatcher over its four ports: the records, shopper profiles, the Conversions API (one
/// client, or [`Routes`] to each store's) and the inbox the messages came from.
pub struct Dispatcher<S, P, R, I> {
    store: S,
    profiles: P,
    routes: R,
    inbox: I,
    config: DispatchConfig,
    metrics: Metrics,
    audiences: Option<Arc<dyn compliance::AudienceLedger>>,
}

impl<S: IdempotencyStore, P: ProfileStore, R: Routes, I: Inbox> Dispatcher<S, P, R, I> {
    /// Builds the dispatcher; `config` is its settings, and every store's but for what a
    /// registered store sets itself.
    pub fn new(
        store: S,
        profiles: P,
        routes: R,
        inbox: I,
        config: DispatchConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            profiles,
            routes,
            inbox,
            config,
            metrics,
            audiences: None,
        }
    }

    /// The same, applying compliance webhooks to the customer-list ledger too
    /// (`pinrelay audiences sync`): a redacted customer's uploads are queued for removal, a
    /// redacted shop's record deleted.
    #[must_use]
    pub fn with_audiences(mut self, ledger: Arc<dyn compliance::AudienceLedger>) -> Self {
        self.audiences = Some(ledger);
        self
    }

    /// Handles a batch. `deadline` is when the invocation ends: no Pinterest request starts that
    /// could not finish before it (less `deadline_margin`, kept for settling); what is left is
    /// handed back. Locks taken now expire one `request_timeout` after the deadline, so a crashed
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
        let clock = Clock {
            now,
            cutoff: started + budget.saturating_sub(config.deadline_margin),
            lock_until: chrono::Duration::from_std(config.request_timeout)
                .ok()
                .and_then(|t| deadline.checked_add_signed(t))
                .unwrap_or(deadline),
        };
        let holder = Holder::new();
        let mut report = BatchReport::default();
        report.counts.received = batch.len() as u64;

        // One store at a time: its own client and settings, never a request mixing stores.
        let mut by_shop: BTreeMap<&str, Vec<&Received>> = BTreeMap::new();
        for message in batch {
            let shop = message
                .attributes
                .get(attr::SHOP)
                .map_or("", String::as_str);
            by_shop.entry(shop).or_default().push(message);
        }
        for (shop, messages) in by_shop {
            match self.routes.route(shop, config).await {
                Route::To { api, config } => {
                    self.dispatch_store(&*api, &config, &messages, &holder, &clock, &mut report)
                        .await;
                }
                other => {
                    let d = match other {
                        Route::Unavailable(why) => {
                            tracing::error!(shop, reason = %why, messages = messages.len(), "the store's events cannot be sent now; kept for retry");
                            Disposition::Retry(config.retry_base)
                        }
                        _ => Disposition::DeadLettered(DeadLetterReason::ShopNotServed(
                            shop.to_owned(),
                        )),
                    };
                    let settler = Settler {
                        store: &self.store,
                        inbox: &self.inbox,
                        config,
                        holder: &holder,
                        now,
                    };
                    let items = messages
                        .iter()
                        .map(|m| Item::plain(m, None, d.clone()))
                        .collect();
                    settler.settle(&mut report, items).await;
                }
            }
        }
        settle::emit(&self.metrics, &report.counts);
        report
    }

    /// One store's messages through the stages, with its client and settings.
    async fn dispatch_store<A: ConversionsApi>(
        &self,
        api: &A,
        config: &DispatchConfig,
        batch: &[&Received],
        holder: &Holder,
        clock: &Clock,
        report: &mut BatchReport,
    ) {
        let Clock {
            now,
            cutoff,
            lock_until,
        } = *clock;
        let settler = Settler {
            store: &self.store,
            inbox: &self.inbox,
            config,
            holder,
            now,
        };
        let mut items = Vec::with_capacity(batch.len());

        let mut events = Vec::new();
        let mut writes = Vec::new();
        for message in batch.iter().copied() {
            if let Some(differ) = prepare::settings_drift(message, config) {
                report.counts.pixel_settings_drift += 1;
                tracing::warn!(message_id = %message.id, settings = ?differ, "{PIXEL_DRIFT_MESSAGE}");
            }
            match prepare::prepare(message, config, now) {
                Prepared::Event(p) => events.push(*p),
                Prepared::Profile(write) => writes.push(write),
                Prepared::Compliance(message, context, request) => {
                    // Kept off the batch's deadline: a purge that cannot finish in half the
                    // time left is retried (it goes on where it stopped).
                    let left = cutoff.saturating_duration_since(Instant::now()) / 2;
                    let d = tokio::time::timeout(
                        left,
                        compliance::comply(
                            &self.store,
                            &self.profiles,
                            &self.routes,
                            self.audiences.as_deref(),
                            config,
                            &request,
                            now,
                        ),
                    )
                    .await
                    .unwrap_or(Disposition::Retry(config.retry_base));
                    items.push(Item::plain(message, Some(context), d));
                }
                Prepared::Decided(message, context, order, d) => {
                    items.push(Item::decided(message, context, order, d));
                }
            }
        }

        for (message, d) in profiles::record(&self.profiles, writes, config, now).await {
            items.push(Item::plain(message, None, d));
        }

        report.counts.event_id_fallbacks +=
            profiles::look_up(&self.profiles, &mut events, config, now).await;
        let (leaders, followers) = claim::leaders_and_followers(events);
        let claimed = claim::claim(&self.store, leaders, config, holder, now, lock_until).await;
        for (p, d) in &claimed.decided {
            items.push(Item::unheld(p, d.clone()));
        }
        for p in &claimed.abandoned {
            let d = Disposition::DeadLettered(DeadLetterReason::InDoubt(DoubtCause::HolderStopped));
            items.push(Item::held(p, d, config, now));
        }

        let mut held = Vec::with_capacity(claimed.held.len());
        for p in claimed.held {
            match prepare::expiry(&p, config, now) {
                Some(reason) => {
                    items.push(Item::held(&p, Disposition::Skipped(reason), config, now))
                }
                None => held.push(p),
            }
        }

        let enriched = profiles::enrich(held, config.order_consent_policy);
        report.counts.enriched += enriched.enriched;
        for (p, d) in &enriched.skipped {
            items.push(Item::held(p, d.clone(), config, now));
        }

        let sent = send::send(api, enriched.to_send, config, &self.metrics, cutoff, now).await;
        report.counts.sent += sent.sent;
        report.counts.failed += sent.failed;
        report.counts.auth_failures += sent.auth_failures;
        for (p, d) in &sent.results {
            items.push(Item::held(p, d.clone(), config, now));
        }
        settler.settle(report, items).await;

        let follower_items = followers
            .iter()
            .map(|(p, leader_id)| {
                let d = claim::follow(report.dispositions.get(leader_id), p, config);
                Item::unheld(p, d)
            })
            .collect();
        settler.settle(report, follower_items).await;
    }
}
