//! Stage 3: one claim per idempotency key. `orders/create` and `orders/paid` of one order, delayed
//! together, often arrive in one batch: the first message of a key leads and claims, the others
//! follow its outcome instead of waiting for its lock.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use super::model::{DeadLetterReason, DispatchConfig, Disposition, Pending, STORE_CONCURRENCY};
use crate::idempotency::{Claim, ClaimRequest, Holder, IdempotencyKey, IdempotencyStore};

/// One leader per key, and the followers of each leader with the leader's message id.
pub(super) type Split<'a> = (Vec<Pending<'a>>, Vec<(Pending<'a>, String)>);

/// Splits a batch's events into one leader per key and the followers of each leader.
pub(super) fn leaders_and_followers(pending: Vec<Pending<'_>>) -> Split<'_> {
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

/// The leaders after claiming: those this invocation holds, and the others with their
/// disposition (already sent, in doubt, or locked elsewhere or unreachable: retried later).
pub(super) struct Claimed<'a> {
    /// Keys this invocation holds until `lock_until`: send, then settle.
    pub held: Vec<Pending<'a>>,
    /// Keys taken over from an invocation that stopped while holding them: held, but in doubt.
    pub abandoned: Vec<Pending<'a>>,
    /// Not held; nothing to settle on the record.
    pub decided: Vec<(Pending<'a>, Disposition)>,
}

/// Claims every leader's key at once. A claimed event takes the record's `event_id` (chosen by
/// its first claim) and generation.
pub(super) async fn claim<'a, S: IdempotencyStore>(
    store: &S,
    leaders: Vec<Pending<'a>>,
    config: &DispatchConfig,
    holder: &Holder,
    now: DateTime<Utc>,
    lock_until: DateTime<Utc>,
) -> Claimed<'a> {
    let claims: Vec<_> = futures::stream::iter(leaders.iter().map(|p| {
        let request = ClaimRequest {
            key: p.key.clone(),
            event_id: p.event.event_id.clone(),
            holder: holder.clone(),
            lock_until,
            mode: config.mode,
            resend: p.resend,
            topic: p.context.topic.clone(),
            legacy: p.legacy.clone(),
        };
        async move { store.claim(&request, now).await }
    }))
    .buffered(STORE_CONCURRENCY)
    .collect()
    .await;
    let mut out = Claimed {
        held: Vec::with_capacity(leaders.len()),
        abandoned: Vec::new(),
        decided: Vec::new(),
    };
    for (mut p, claim) in leaders.into_iter().zip(claims) {
        let backoff = config.backoff(p.message.receive_count);
        let d = match claim {
            Ok(Claim::Acquired {
                event_id,
                generation,
            }) => {
                p.event.event_id = event_id;
                p.generation = generation;
                out.held.push(p);
                continue;
            }
            Ok(Claim::Abandoned {
                event_id,
                generation,
            }) => {
                p.event.event_id = event_id;
                p.generation = generation;
                if config.resend_in_doubt {
                    tracing::warn!(key = %p.key, "the invocation that last held this event's key stopped while holding it; resending the event (RESEND_IN_DOUBT=true)");
                    out.held.push(p);
                } else {
                    tracing::warn!(key = %p.key, "the invocation that last held this event's key stopped while holding it; the event is in doubt and is not sent again on its own");
                    out.abandoned.push(p);
                }
                continue;
            }
            Ok(Claim::AlreadySent { .. }) => Disposition::Deduplicated,
            // A resend of an older generation: the record went in doubt again since, and a newer
            // dead letter stands for it.
            Ok(Claim::InDoubt { .. }) if p.resend.is_some() => Disposition::Deduplicated,
            Ok(Claim::InDoubt { .. }) => Disposition::HeldInDoubt,
            Ok(Claim::InProgress { until_ms }) => {
                let wait =
                    Duration::from_millis((until_ms - now.timestamp_millis()).max(0) as u64 + 1000);
                Disposition::Retry(wait.max(backoff))
            }
            Err(e) => {
                tracing::warn!(key = %p.key, error.message = %e, "idempotency store unavailable; will retry");
                Disposition::Retry(backoff)
            }
        };
        out.decided.push((p, d));
    }
    out
}

/// A follower's disposition from its leader's: sent or deduplicated → deduplicated; skipped →
/// skipped alike; retried or dead-lettered → this copy is retried on its own.
pub(super) fn follow(
    leader: Option<&Disposition>,
    follower: &Pending<'_>,
    config: &DispatchConfig,
) -> Disposition {
    match leader {
        Some(Disposition::Sent | Disposition::Deduplicated) => Disposition::Deduplicated,
        Some(
            Disposition::HeldInDoubt | Disposition::DeadLettered(DeadLetterReason::InDoubt(_)),
        ) => Disposition::HeldInDoubt,
        Some(Disposition::Skipped(reason)) => Disposition::Skipped(reason.clone()),
        _ => Disposition::Retry(config.backoff(follower.message.receive_count)),
    }
}
