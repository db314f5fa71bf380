//! Shopper profiles in a batch: browser checkouts are recorded (stage 3, before any claim, so an
//! order in the same batch already finds its profile); each order checkout's profile is read
//! before the claim ([`look_up`]: the one recorded with the order's own checkout token, whose
//! Shopify event id becomes the `event_id` under `CHECKOUT_EVENT_ID=shopify_event`); claimed
//! order checkouts are enriched from it (stage 5). The identity check follows enrichment, here and
//! nowhere else.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::model::{DispatchConfig, Disposition, Pending, ProfileWrite, STORE_CONCURRENCY};
use crate::mapping::{self, CheckoutEventId};
use crate::profile::{self, Applied, ConsentPolicy, PROFILE_TTL_SECONDS, ProfileStore, Stored};
use crate::queue::Received;

/// Records each browser checkout's profile for 30 days; a failed write is retried.
pub(super) async fn record<'a, P: ProfileStore>(
    profiles: &P,
    writes: Vec<ProfileWrite<'a>>,
    config: &DispatchConfig,
    now: DateTime<Utc>,
) -> Vec<(&'a Received, Disposition)> {
    let expires_at = now.timestamp() + PROFILE_TTL_SECONDS;
    let results: Vec<_> = futures::stream::iter(
        writes
            .iter()
            .map(|w| profiles.put_profile(&w.shop, w.order_id, &w.profile, expires_at, now)),
    )
    .buffered(STORE_CONCURRENCY)
    .collect()
    .await;
    writes
        .iter()
        .zip(results)
        .map(|(w, result)| {
            let d = match result {
                Ok(Stored::Recorded) => Disposition::ProfileRecorded,
                Ok(Stored::KeptEarlier) => {
                    tracing::warn!(message_id = %w.message.id, shop = %w.shop, order_id = w.order_id, "a browser checkout for an order that has a profile from another checkout was ignored (a forged or repeated event)");
                    Disposition::Skipped(mapping::SkipReason::ProfileConflict)
                }
                Err(e) => {
                    tracing::warn!(message_id = %w.message.id, error.message = %e, "could not record the shopper profile; will retry");
                    Disposition::Retry(config.backoff(w.message.receive_count))
                }
            };
            (w.message, d)
        })
        .collect()
}

/// The claimed events after enrichment.
pub(super) struct Enriched<'a> {
    /// Events to send.
    pub to_send: Vec<Pending<'a>>,
    /// Claimed events that are not sent (consent, or still not enough identity).
    pub skipped: Vec<(Pending<'a>, Disposition)>,
    /// Order checkouts a profile added an identifier to.
    pub enriched: u64,
}

/// Reads each order checkout's profile (the one recorded with the order's checkout token) before
/// the claim, and under `CHECKOUT_EVENT_ID=shopify_event` proposes its Shopify event id as the
/// `event_id` (the claim keeps whichever the record chose first). Returns how many orders fell
/// back to the order id. A profile that cannot be read leaves the order as the webhook has it.
pub(super) async fn look_up<P: ProfileStore>(
    profiles: &P,
    events: &mut [Pending<'_>],
    config: &DispatchConfig,
    now: DateTime<Utc>,
) -> u64 {
    let lookups: Vec<_> = futures::stream::iter(events.iter().map(|p| async move {
        match &p.order {
            Some(order) => profiles.get_profiles(p.key.shop(), order.id, now).await,
            None => Ok(Vec::new()),
        }
    }))
    .buffered(STORE_CONCURRENCY)
    .collect()
    .await;
    let mut fallbacks = 0;
    for (p, lookup) in events.iter_mut().zip(lookups) {
        let Some(order) = &p.order else { continue };
        let found = lookup.unwrap_or_else(|e| {
            tracing::warn!(key = %p.key, error.message = %e, "could not read the shopper profile; sending the order without it");
            Vec::new()
        });
        p.profile = profile::for_order(&found, order.checkout_token.as_deref()).cloned();
        if config.options.checkout_event_id == CheckoutEventId::ShopifyEvent {
            match p.profile.as_ref().and_then(|f| f.shopify_event_id.clone()) {
                Some(id) => p.event.event_id = id,
                None => {
                    fallbacks += 1;
                    tracing::info!(key = %p.key, "no pixel record with the Shopify event id matches this order's checkout; its event_id is the order id (CHECKOUT_EVENT_ID=shopify_event fallback)");
                }
            }
        }
    }
    fallbacks
}

/// Applies each claimed order checkout's profile (see [`profile::apply`]), then checks identity
/// ([`mapping::require_identity`]). A profile that cannot be read leaves the order as the webhook
/// has it: sending it beats delaying it.
pub(super) fn enrich(claimed: Vec<Pending<'_>>, policy: ConsentPolicy) -> Enriched<'_> {
    let mut out = Enriched {
        to_send: Vec::with_capacity(claimed.len()),
        skipped: Vec::new(),
        enriched: 0,
    };
    for mut p in claimed {
        if let Some(found) = p.profile.take() {
            let token = p.order.as_ref().and_then(|o| o.checkout_token.as_deref());
            match profile::apply(&mut p.event, token, &found, policy) {
                Applied::TokenMismatch => {
                    tracing::warn!(key = %p.key, "the order's browser profile was not recorded with the order's checkout token; ignored (a forged or stale browser event, or an order without a checkout)");
                }
                Applied::Send { filled } => out.enriched += u64::from(filled > 0),
                Applied::Skip => {
                    out.skipped
                        .push((p, Disposition::Skipped(mapping::SkipReason::Consent)));
                    continue;
                }
            }
        }
        match mapping::require_identity(&p.event) {
            Ok(()) => out.to_send.push(p),
            Err(reason) => out.skipped.push((p, Disposition::Skipped(reason))),
        }
    }
    out
}
