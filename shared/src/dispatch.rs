//! [`Dispatcher`]: queue messages to Pinterest events, exactly once. Shared by the dispatch Lambda
//! and `pinrelay serve`.
//!
//! For each batch: decode and translate every message on its own, record the shopper profiles of
//! browser checkouts, claim each event's idempotency key (once per batch: further messages of the
//! same key follow the first one's outcome), enrich claimed order checkouts from their
//! profiles, send them in as few requests as possible, then complete, release or dead-letter per
//! event. The result names the messages to retry (batch item failures); every
//! other message is settled: sent, deduplicated, skipped for a stated reason, or dead-lettered with
//! its reason.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use crate::browser::{self, BrowserOutcome, Profile, ReceivedBrowserEvent};
use crate::idempotency::{Claim, IdempotencyKey, IdempotencyStore};
use crate::mapping::{self, ComplianceRequest, Options, Outcome, SkipReason};
use crate::metrics::{Metrics, Unit, names};
use crate::pinterest::{ConversionsApi, ConversionsApiError, Event, EventBatch, EventStatus};
use crate::profile::{self, Applied, ConsentPolicy, PROFILE_TTL_SECONDS, ProfileStore};
use crate::queue::{Envelope, Inbox, Received, Source};

/// Store calls in flight at once: a batch may hold thousands of messages, and one connection per
/// call would exhaust the function's file descriptors (1,024 on Lambda) and throttle the table.
const STORE_CONCURRENCY: usize = 32;

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// How webhooks become events.
    pub options: Options,
    /// Events older than this are dead-lettered as `expired` (Pinterest's window is 7 days).
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
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Pinterest processed its event.
    Sent,
    /// Its event had been sent before.
    Deduplicated,
    /// It sends nothing, for this reason (label).
    Skipped(&'static str),
    /// A compliance request was carried out.
    Compliance,
    /// A browser checkout was recorded as the order's shopper profile.
    ProfileRecorded,
    /// Moved to the dead-letter queue with this reason.
    DeadLettered(String),
    /// Handed back to the queue for another attempt after the delay.
    Retry(Duration),
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
    /// Skips by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Messages to retry.
    pub retried: u64,
    /// Dead letters by reason label.
    pub dead_lettered: BTreeMap<&'static str, u64>,
    /// Late events.
    pub late: u64,
    /// Expired events.
    pub expired: u64,
    /// Compliance requests handled.
    pub compliance: u64,
    /// Auth failures seen.
    pub auth_failures: u64,
    /// Browser checkouts recorded as profiles.
    pub profiles_recorded: u64,
    /// Order checkouts enriched from a profile.
    pub enriched: u64,
    /// Processed events carrying each identifier: em, ph, click_id, ip+ua, external_id.
    pub with_email: u64,
    /// See `with_email`.
    pub with_phone: u64,
    /// See `with_email`.
    pub with_click_id: u64,
    /// See `with_email`.
    pub with_ip_ua: u64,
    /// See `with_email`.
    pub with_external_id: u64,
}

/// The result of [`Dispatcher::dispatch`].
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Item identifiers of the messages to retry; all others are settled and may be deleted.
    pub batch_item_failures: Vec<String>,
    /// Per-message dispositions, by item identifier.
    pub dispositions: BTreeMap<String, Disposition>,
    /// Totals.
    pub counts: Counts,
}

/// The dispatcher over an idempotency store, a Conversions API and an inbox.
pub struct Dispatcher<S, A, I> {
    store: S,
    api: A,
    inbox: I,
    config: DispatchConfig,
    metrics: Metrics,
}

/// What a message becomes once decoded and translated.
enum Prepared<'a> {
    /// An event to claim and send.
    Send(Box<Pending<'a>>),
    /// A browser checkout's profile to record.
    Profile {
        message: &'a Received,
        shop: String,
        order_id: u64,
        profile: Box<Profile>,
    },
}

/// One message whose event is waiting to be sent.
struct Pending<'a> {
    message: &'a Received,
    key: IdempotencyKey,
    event: Event,
    topic: String,
    webhook_id: Option<String>,
}

impl<S: IdempotencyStore + ProfileStore, A: ConversionsApi, I: Inbox> Dispatcher<S, A, I> {
    /// Builds the dispatcher.
    pub fn new(store: S, api: A, inbox: I, mut config: DispatchConfig, metrics: Metrics) -> Self {
        // Identity is checked after enrichment (see `enrich`), not by `translate`.
        config.options.defer_identity_check = true;
        Self {
            store,
            api,
            inbox,
            config,
            metrics,
        }
    }

    /// The idempotency store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The inbox.
    pub fn inbox(&self) -> &I {
        &self.inbox
    }

    /// Handles a batch. `deadline` is when the invocation ends: locks taken now expire then, so a
    /// crashed invocation blocks nothing for longer.
    pub async fn dispatch(
        &self,
        batch: &[Received],
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        report.counts.received = batch.len() as u64;
        let mut pending = Vec::new();
        let mut profiles = Vec::new();
        for message in batch {
            match self.prepare(message, now).await {
                Ok(Prepared::Send(p)) => pending.push(*p),
                Ok(Prepared::Profile {
                    message,
                    shop,
                    order_id,
                    profile,
                }) => profiles.push((message, shop, order_id, profile)),
                Err(d) => self.settle(&mut report, message, d, None).await,
            }
        }

        // Profiles first, so an order in the same batch already finds its browser checkout.
        let expires_at = now.timestamp() + PROFILE_TTL_SECONDS;
        let recorded: Vec<_> =
            futures::stream::iter(profiles.iter().map(|(_, shop, order_id, profile)| {
                self.store.put_profile(shop, *order_id, profile, expires_at)
            }))
            .buffered(STORE_CONCURRENCY)
            .collect()
            .await;
        for ((message, _, _, _), result) in profiles.iter().zip(recorded) {
            let d = match result {
                Ok(()) => Disposition::ProfileRecorded,
                Err(e) => {
                    tracing::warn!(message_id = %message.id, error.message = %e, "could not record the shopper profile; will retry");
                    Disposition::Retry(self.backoff(message.receive_count))
                }
            };
            self.settle(&mut report, message, d, None).await;
        }

        let (pending, followers) = leaders_and_followers(pending);

        // Claim every key at once; a key claimed by someone else is retried later.
        let claims: Vec<_> = futures::stream::iter(
            pending
                .iter()
                .map(|p| self.store.put_in_progress(&p.key, now, deadline)),
        )
        .buffered(STORE_CONCURRENCY)
        .collect()
        .await;
        let mut claimed = Vec::new();
        for (p, claim) in pending.into_iter().zip(claims) {
            match claim {
                Ok(Claim::Acquired) => claimed.push(p),
                Ok(Claim::AlreadyCompleted) => {
                    self.settle(&mut report, p.message, Disposition::Deduplicated, Some(&p))
                        .await;
                }
                Ok(Claim::InProgress { until_ms }) => {
                    let wait = Duration::from_millis(
                        (until_ms - now.timestamp_millis()).max(0) as u64 + 1000,
                    );
                    let delay = wait.max(self.backoff(p.message.receive_count));
                    self.settle(&mut report, p.message, Disposition::Retry(delay), Some(&p))
                        .await;
                }
                Err(e) => {
                    tracing::warn!(key = %p.key, error.message = %e, "idempotency store unavailable; will retry");
                    let delay = self.backoff(p.message.receive_count);
                    self.settle(&mut report, p.message, Disposition::Retry(delay), Some(&p))
                        .await;
                }
            }
        }

        let to_send = self.enrich(claimed, now, &mut report).await;

        let chunk = self
            .config
            .max_batch_events
            .clamp(1, EventBatch::MAX_EVENTS);
        let mut queue: Vec<Vec<Pending>> = Vec::new();
        let mut rest = to_send;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            queue.push(std::mem::replace(&mut rest, tail));
        }
        while let Some(group) = queue.pop() {
            self.send_group(group, now, &mut report, &mut queue).await;
        }

        for (p, leader_id) in &followers {
            let d = match report.dispositions.get(leader_id) {
                Some(Disposition::Sent | Disposition::Deduplicated) => Disposition::Deduplicated,
                Some(Disposition::Skipped(reason)) => Disposition::Skipped(reason),
                // Retried or dead-lettered: try this copy again later, on its own.
                _ => Disposition::Retry(self.backoff(p.message.receive_count)),
            };
            self.settle(&mut report, p.message, d, Some(p)).await;
        }

        self.emit(&report.counts);
        report
    }

    /// Decodes and translates one message. `Err` is already decided.
    async fn prepare<'a>(
        &self,
        message: &'a Received,
        now: DateTime<Utc>,
    ) -> Result<Prepared<'a>, Disposition> {
        let envelope = Envelope::decode(&message.body, &message.attributes, now)
            .map_err(|e| Disposition::DeadLettered(format!("undecodable: {e}")))?;
        let outcome = if envelope.source == Source::Browser {
            match Self::translate_browser(&envelope.body, now)? {
                BrowserOutcome::Send(event) => Outcome::Send(event),
                BrowserOutcome::NoConsent => return Err(Disposition::Skipped("consent")),
                BrowserOutcome::Profile { order_id, profile } => {
                    return Ok(Prepared::Profile {
                        message,
                        shop: envelope.metadata.shop_domain.clone(),
                        order_id,
                        profile,
                    });
                }
            }
        } else {
            mapping::translate(
                &envelope.metadata,
                &envelope.body,
                &self.config.options,
                now,
            )
            .map_err(|e| Disposition::DeadLettered(format!("invalid_payload: {e}")))?
        };
        match outcome {
            Outcome::Skip(reason) => {
                tracing::info!(
                    topic = %envelope.metadata.topic,
                    shop = %envelope.metadata.shop_domain,
                    webhook_id = envelope.metadata.webhook_id.as_deref().unwrap_or("-"),
                    outcome = "skipped",
                    reason = reason.label(),
                    detail = %reason,
                    "webhook skipped"
                );
                Err(Disposition::Skipped(reason.label()))
            }
            Outcome::Compliance(request) => Err(self.comply(&request, now).await),
            Outcome::Send(event) => {
                let key = IdempotencyKey::new(
                    &envelope.metadata.shop_domain,
                    &event.event_name,
                    &event.event_id,
                )
                .map_err(|e| Disposition::DeadLettered(format!("invalid_payload: {e}")))?;
                let age = now.timestamp() - event.event_time;
                if age > self.config.max_event_age.as_secs() as i64 {
                    return Err(Disposition::DeadLettered(format!(
                        "expired: the event is {} days old; Pinterest accepts events up to 7 days old",
                        age / 86_400
                    )));
                }
                Ok(Prepared::Send(Box::new(Pending {
                    message,
                    key,
                    event: *event,
                    topic: envelope.metadata.topic.to_string(),
                    webhook_id: envelope.metadata.webhook_id.clone(),
                })))
            }
        }
    }

    /// A browser event from the pixel: sent when it has marketing consent. A browser `checkout`
    /// is never sent (the verified order webhook is the source of truth); it becomes a profile.
    fn translate_browser(body: &[u8], now: DateTime<Utc>) -> Result<BrowserOutcome, Disposition> {
        let received: ReceivedBrowserEvent = serde_json::from_slice(body)
            .map_err(|e| Disposition::DeadLettered(format!("invalid_payload: {e}")))?;
        Ok(browser::translate(&received, now))
    }

    /// Applies each claimed order checkout's shopper profile (see [`profile::apply`]). A profile
    /// that cannot be read leaves the order as the webhook has it: sending it beats delaying it.
    /// Returns the events still to send; an order skipped (consent, or still not enough identity)
    /// is released and settled.
    async fn enrich<'a>(
        &self,
        claimed: Vec<Pending<'a>>,
        now: DateTime<Utc>,
        report: &mut BatchReport,
    ) -> Vec<Pending<'a>> {
        let lookups: Vec<_> = futures::stream::iter(claimed.iter().map(|p| async move {
            let order_id = p
                .event
                .custom_data
                .as_ref()
                .and_then(|c| c.order_id.as_deref())
                .and_then(|id| id.parse::<u64>().ok());
            match order_id {
                // Only order webhooks make `checkout` events: a browser checkout is a profile.
                Some(id) if p.event.event_name == "checkout" => {
                    self.store.get_profile(p.key.shop(), id, now).await
                }
                _ => Ok(None),
            }
        }))
        .buffered(STORE_CONCURRENCY)
        .collect()
        .await;
        let mut to_send = Vec::with_capacity(claimed.len());
        for (mut p, lookup) in claimed.into_iter().zip(lookups) {
            let profile = match lookup {
                Ok(profile) => profile,
                Err(e) => {
                    tracing::warn!(key = %p.key, error.message = %e, "could not read the shopper profile; sending the order without it");
                    None
                }
            };
            let Some(profile) = profile else {
                self.send_if_identified(p, report, &mut to_send).await;
                continue;
            };
            // Read only for orders that have a profile: a second parse of the body (about 30 µs
            // for a 28 KB order, see BENCHMARKS.md) that shops without the pixel never pay.
            let checkout_token = Envelope::decode(&p.message.body, &p.message.attributes, now)
                .ok()
                .and_then(|e| profile::order_checkout_token(&e.body));
            match profile::apply(
                &mut p.event,
                checkout_token.as_deref(),
                &profile,
                self.config.order_consent_policy,
            ) {
                Applied::TokenMismatch => {
                    tracing::warn!(key = %p.key, "the order's browser profile was not recorded with the order's checkout token; ignored (a forged or stale browser event, or an order without a checkout)");
                    self.send_if_identified(p, report, &mut to_send).await;
                }
                Applied::Send { filled } => {
                    report.counts.enriched += u64::from(filled > 0);
                    self.send_if_identified(p, report, &mut to_send).await;
                }
                Applied::Skip => {
                    if let Err(e) = self.store.release(&p.key).await {
                        tracing::warn!(key = %p.key, error.message = %e, "could not release the key of an order skipped for consent; its lock expires");
                    }
                    tracing::info!(key = %p.key, topic = %p.topic, outcome = "skipped", reason = "consent", "the shopper refused marketing consent and ORDER_CONSENT_POLICY is skip");
                    self.settle(report, p.message, Disposition::Skipped("consent"), Some(&p))
                        .await;
                }
            }
        }
        to_send
    }

    /// Queues the event for sending when Pinterest can match it (an email, mobile ad ids, or IP
    /// and user agent); otherwise releases its key and skips it (`not_enough_identity`).
    async fn send_if_identified<'a>(
        &self,
        p: Pending<'a>,
        report: &mut BatchReport,
        to_send: &mut Vec<Pending<'a>>,
    ) {
        if p.event.user_data.is_sendable() {
            to_send.push(p);
            return;
        }
        if let Err(e) = self.store.release(&p.key).await {
            tracing::warn!(key = %p.key, error.message = %e, "could not release the key of an unidentified order; its lock expires");
        }
        let reason = SkipReason::NotEnoughIdentity;
        tracing::info!(key = %p.key, topic = %p.topic, outcome = "skipped", reason = reason.label(), detail = %reason, "webhook skipped");
        self.settle(
            report,
            p.message,
            Disposition::Skipped(reason.label()),
            Some(&p),
        )
        .await;
    }

    async fn comply(&self, request: &ComplianceRequest, now: DateTime<Utc>) -> Disposition {
        let result = match request {
            ComplianceRequest::DataRequest {
                shop_domain,
                customer_id,
                orders_requested,
            } => {
                // Profiles are the only personal data pinrelay keeps; say which orders have one.
                let found = futures::stream::iter(
                    orders_requested
                        .iter()
                        .map(|id| self.store.get_profile(shop_domain, *id, now)),
                )
                .buffered(STORE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
                let with_profile: Vec<u64> = orders_requested
                    .iter()
                    .zip(&found)
                    .filter(|(_, f)| matches!(f, Ok(Some(_))))
                    .map(|(id, _)| *id)
                    .collect();
                let failed = found.iter().filter(|f| f.is_err()).count();
                tracing::info!(
                    shop = %shop_domain,
                    customer_id,
                    orders = orders_requested.len(),
                    orders_with_profile = ?with_profile,
                    outcome = "compliance",
                    "customers/data_request: pinrelay keeps, per order with a profile, the Pinterest click id, IP address, user agent, UTM parameters and consent seen by the storefront pixel, for up to 30 days; idempotency records hold no personal data"
                );
                if failed == 0 { Ok(()) } else { Err(()) }
            }
            ComplianceRequest::CustomerRedact {
                shop_domain,
                customer_id,
                orders_to_redact,
            } => {
                let mut keys = Vec::new();
                for order_id in orders_to_redact {
                    if let Some(event_id) = self.config.options.checkout_event_id(*order_id) {
                        keys.extend(IdempotencyKey::new(shop_domain, "checkout", &event_id).ok());
                    }
                }
                if let Some(id) = customer_id {
                    keys.extend(
                        IdempotencyKey::new(shop_domain, "signup", &format!("signup-{id}")).ok(),
                    );
                }
                let results =
                    futures::future::join_all(keys.iter().map(|k| self.store.release(k))).await;
                let profiles = self
                    .store
                    .delete_profiles(shop_domain, orders_to_redact)
                    .await;
                let failed =
                    results.iter().filter(|r| r.is_err()).count() + usize::from(profiles.is_err());
                tracing::info!(
                    shop = %shop_domain,
                    records = keys.len(),
                    profiles = orders_to_redact.len(),
                    failed,
                    outcome = "compliance",
                    "customers/redact: deleted the customer's idempotency records and order profiles"
                );
                if failed == 0 { Ok(()) } else { Err(()) }
            }
            ComplianceRequest::ShopRedact { shop_domain } => {
                let deleted = match self.store.delete_shop(shop_domain).await {
                    Ok(records) => self
                        .store
                        .delete_shop_profiles(shop_domain)
                        .await
                        .map(|profiles| (records, profiles)),
                    Err(e) => Err(e),
                };
                match deleted {
                    Ok((records, profiles)) => {
                        tracing::info!(shop = %shop_domain, records, profiles, outcome = "compliance", "shop/redact: deleted every record and profile of the shop");
                        Ok(())
                    }
                    Err(e) => {
                        tracing::warn!(shop = %shop_domain, error.message = %e, "shop/redact failed; will retry");
                        Err(())
                    }
                }
            }
        };
        match result {
            Ok(()) => Disposition::Compliance,
            Err(()) => Disposition::Retry(self.config.retry_base),
        }
    }

    /// Sends one group; a whole-request 400 splits the group in halves to find the offenders.
    async fn send_group<'a>(
        &self,
        group: Vec<Pending<'a>>,
        now: DateTime<Utc>,
        report: &mut BatchReport,
        queue: &mut Vec<Vec<Pending<'a>>>,
    ) {
        let events: Vec<Event> = group.iter().map(|p| p.event.clone()).collect();
        let started = Instant::now();
        let result = self.api.send(&events).await;
        self.metrics.record(
            None,
            &[(
                names::PINTEREST_LATENCY,
                started.elapsed().as_secs_f64() * 1000.0,
                Unit::Milliseconds,
            )],
        );
        report.counts.sent += group.len() as u64;
        match result {
            Ok(statuses) => {
                for (p, status) in group.iter().zip(statuses) {
                    match status {
                        EventStatus::Processed { warning } => {
                            if let Some(w) = warning {
                                tracing::info!(key = %p.key, warning = %w, "Pinterest accepted the event with a warning");
                            }
                            if let Err(e) = self.store.complete(&p.key, now).await {
                                tracing::error!(key = %p.key, error.message = %e, "event sent but not recorded as completed; a redelivery may send it again (Pinterest deduplicates by event_id)");
                            }
                            let late = now.timestamp() - p.event.event_time
                                > self.config.late_after.as_secs() as i64;
                            count_match(&mut report.counts, &p.event, late);
                            self.settle(report, p.message, Disposition::Sent, Some(p))
                                .await;
                        }
                        EventStatus::Failed { error_message } => {
                            report.counts.failed += 1;
                            let _ = self.store.release(&p.key).await;
                            let reason = format!("pinterest_rejected: {error_message}");
                            self.settle(
                                report,
                                p.message,
                                Disposition::DeadLettered(reason),
                                Some(p),
                            )
                            .await;
                        }
                    }
                }
            }
            Err(ConversionsApiError::Rejected { status, message }) if group.len() > 1 => {
                tracing::warn!(status, events = group.len(), error.message = %message, "Pinterest rejected the request as a whole; splitting it to find the offending events");
                report.counts.sent -= group.len() as u64;
                let mut first = group;
                let second = first.split_off(first.len() / 2);
                queue.push(second);
                queue.push(first);
            }
            Err(e) => {
                let retryable = e.is_retryable();
                if e.is_auth() {
                    report.counts.auth_failures += 1;
                    tracing::error!(error.message = %e, events = group.len(), "Pinterest refused the access token; events are kept for retry");
                } else {
                    tracing::warn!(error.message = %e, kind = e.kind(), events = group.len(), retryable, "Pinterest request failed");
                }
                futures::stream::iter(group.iter().map(|p| self.store.release(&p.key)))
                    .buffer_unordered(STORE_CONCURRENCY)
                    .for_each(|_| async {})
                    .await;
                for p in &group {
                    let d = if retryable {
                        let delay = match &e {
                            ConversionsApiError::RateLimited {
                                retry_after: Some(after),
                            } => (*after).max(self.backoff(p.message.receive_count)),
                            ConversionsApiError::Unauthorized { .. } => self.config.retry_max,
                            _ => self.backoff(p.message.receive_count),
                        };
                        Disposition::Retry(delay)
                    } else {
                        Disposition::DeadLettered(format!("pinterest_rejected: {e}"))
                    };
                    self.settle(report, p.message, d, Some(p)).await;
                }
            }
        }
    }

    /// Records the disposition of one message, performing the dead-letter or retry it needs.
    async fn settle(
        &self,
        report: &mut BatchReport,
        message: &Received,
        disposition: Disposition,
        pending: Option<&Pending<'_>>,
    ) {
        let disposition = match disposition {
            Disposition::Retry(_) if message.receive_count >= self.config.max_receive_count => {
                Disposition::DeadLettered(format!(
                    "retries_exhausted: still failing after {} attempts",
                    message.receive_count
                ))
            }
            other => other,
        };
        let disposition = match disposition {
            Disposition::DeadLettered(reason) => {
                match self.inbox.dead_letter(message, &reason).await {
                    Ok(()) => Disposition::DeadLettered(reason),
                    Err(e) => {
                        tracing::error!(message_id = %message.id, error.message = %e, "could not dead-letter the message; it will be retried");
                        Disposition::Retry(self.backoff(message.receive_count))
                    }
                }
            }
            other => other,
        };
        let c = &mut report.counts;
        match &disposition {
            Disposition::Sent => c.processed += 1,
            Disposition::Deduplicated => c.deduplicated += 1,
            Disposition::Skipped(reason) => *c.skipped.entry(reason).or_default() += 1,
            Disposition::Compliance => c.compliance += 1,
            Disposition::ProfileRecorded => c.profiles_recorded += 1,
            Disposition::DeadLettered(reason) => {
                let label = reason_label(reason);
                if label == "expired" {
                    c.expired += 1;
                }
                *c.dead_lettered.entry(label).or_default() += 1;
                tracing::warn!(
                    message_id = %message.id,
                    topic = pending.map(|p| p.topic.as_str()),
                    webhook_id = pending.and_then(|p| p.webhook_id.as_deref()),
                    event_id = pending.map(|p| p.event.event_id.as_str()),
                    outcome = "dead_lettered",
                    reason = %reason,
                    "message dead-lettered"
                );
            }
            Disposition::Retry(delay) => {
                c.retried += 1;
                report.batch_item_failures.push(message.id.clone());
                if let Err(e) = self.inbox.retry_after(message, *delay).await {
                    tracing::warn!(message_id = %message.id, error.message = %e, "could not set the retry delay; the queue's visibility timeout applies");
                }
            }
        }
        if let Some(p) = pending
            && matches!(disposition, Disposition::Sent | Disposition::Deduplicated)
        {
            tracing::info!(
                topic = %p.topic,
                webhook_id = p.webhook_id.as_deref().unwrap_or("-"),
                event_id = %p.event.event_id,
                outcome = if disposition == Disposition::Sent { "sent" } else { "deduplicated" },
                "event settled"
            );
        }
        report.dispositions.insert(message.id.clone(), disposition);
    }

    fn backoff(&self, receive_count: u32) -> Duration {
        let exp = receive_count.saturating_sub(1).min(20);
        self.config
            .retry_base
            .saturating_mul(1 << exp)
            .min(self.config.retry_max)
    }

    fn emit(&self, c: &Counts) {
        let count = |name, n: u64| (name, n as f64, Unit::Count);
        self.metrics.record(
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
            self.metrics.count(names::EVENTS_SKIPPED, Some(reason), *n);
        }
        for (reason, n) in &c.dead_lettered {
            self.metrics
                .count(names::EVENTS_DEAD_LETTERED, Some(reason), *n);
        }
    }
}

fn count_match(c: &mut Counts, event: &Event, late: bool) {
    let u = &event.user_data;
    c.late += u64::from(late);
    c.with_email += u64::from(!u.em.is_empty());
    c.with_phone += u64::from(!u.ph.is_empty());
    c.with_click_id += u64::from(u.click_id.is_some());
    c.with_ip_ua += u64::from(u.client_ip_address.is_some() && u.client_user_agent.is_some());
    c.with_external_id += u64::from(!u.external_id.is_empty());
}

/// Splits a batch's events into one leader per key and the followers of each leader (with the
/// leader's message id): `orders/create` and `orders/paid` of one order, delayed together, arrive
/// in one batch, and a follower takes its leader's outcome instead of waiting for its lock.
fn leaders_and_followers(
    pending: Vec<Pending<'_>>,
) -> (Vec<Pending<'_>>, Vec<(Pending<'_>, String)>) {
    let mut leader_of: HashMap<IdempotencyKey, String> = HashMap::new();
    let mut leaders = Vec::with_capacity(pending.len());
    let mut followers = Vec::new();
    for p in pending {
        match leader_of.get(&p.key) {
            Some(leader_id) => followers.push((p, leader_id.clone())),
            None => {
                leader_of.insert(p.key.clone(), p.message.id.clone());
                leaders.push(p);
            }
        }
    }
    (leaders, followers)
}

/// The stable label of a dead-letter reason: the text before the first `:`.
pub fn reason_label(reason: &str) -> &'static str {
    match reason.split(':').next().unwrap_or_default() {
        "expired" => "expired",
        "undecodable" => "undecodable",
        "invalid_payload" => "invalid_payload",
        "pinterest_rejected" => "pinterest_rejected",
        "retries_exhausted" => "retries_exhausted",
        _ => "other",
    }
}
