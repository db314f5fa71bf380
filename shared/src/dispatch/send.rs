//! Stage 5: the claimed events to Pinterest in as few requests as possible (at most
//! `max_batch_events` each), and each event's disposition from Pinterest's answer. A request that
//! Pinterest refuses as a whole (400) is split in halves until the offending events stand alone.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::model::{DeadLetterReason, DispatchConfig, Disposition, Pending};
use crate::idempotency::{DoubtCause, PauseReason};
use crate::mapping::SkipReason;
use crate::metrics::{Metrics, Unit, names};
use crate::pinterest::{ConversionsApi, ConversionsApiError, Event, EventBatch, EventStatus};
use crate::queue::Source;

/// What sending did.
#[derive(Default)]
pub(super) struct Sent<'a> {
    /// Each event with its disposition: sent, dead-lettered (refused for good) or retried.
    pub results: Vec<(Pending<'a>, Disposition)>,
    /// Events included in requests Pinterest answered or failed (a split request counts its halves).
    pub sent: u64,
    /// Events Pinterest failed one by one.
    pub failed: u64,
    /// Requests refused for the access token.
    pub auth_failures: u64,
}

/// Sends the events, chunked; the last chunk first, halves of a split request in order. A request
/// that could not finish by `cutoff` (its `request_timeout` from now) is not started: its events,
/// and all after it, are handed back for another delivery at once.
pub(super) async fn send<'a, A: ConversionsApi>(
    api: &A,
    events: Vec<Pending<'a>>,
    config: &DispatchConfig,
    metrics: &Metrics,
    cutoff: Instant,
    now: DateTime<Utc>,
) -> Sent<'a> {
    let chunk = config.max_batch_events.clamp(1, EventBatch::MAX_EVENTS);
    let mut queue: Vec<Vec<Pending>> = Vec::new();
    let mut rest = events;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        queue.push(std::mem::replace(&mut rest, tail));
    }
    let mut out = Sent::default();
    while let Some(group) = queue.pop() {
        if Instant::now() + config.request_timeout > cutoff {
            let left: usize = group.len() + queue.iter().map(Vec::len).sum::<usize>();
            tracing::warn!(
                events = left,
                "the invocation's deadline is near: events not sent are handed back for another delivery"
            );
            for mut p in std::iter::once(group).chain(queue.drain(..)).flatten() {
                p.last_error = Some("not sent before the invocation's deadline".to_owned());
                out.results.push((p, Disposition::Retry(Duration::ZERO)));
            }
            break;
        }
        if let Some((first, second)) = send_group(api, group, config, metrics, &mut out, now).await
        {
            queue.push(second);
            queue.push(first);
        }
    }
    out
}

/// An event Pinterest refused for good: a dead letter for a human, except a storefront browser
/// event, which anyone can post and is only skipped (counted and logged).
fn refused(p: &Pending<'_>, why: String) -> Disposition {
    if p.context.source == Some(Source::Browser) {
        Disposition::Skipped(SkipReason::BrowserEventRejected(why))
    } else {
        Disposition::DeadLettered(DeadLetterReason::PinterestRejected(why))
    }
}

/// An event whose request Pinterest may have applied: a dead letter `in_doubt` (its record is then
/// `in_doubt`), never resent on its own; a storefront browser event, which a human would not
/// replay, is retried instead.
fn in_doubt(p: &Pending<'_>, config: &DispatchConfig) -> Disposition {
    if p.context.source == Some(Source::Browser) {
        Disposition::Retry(config.backoff(p.message.receive_count))
    } else {
        Disposition::DeadLettered(DeadLetterReason::InDoubt(DoubtCause::NoAnswer))
    }
}

/// Sends one group; returns its two halves when Pinterest refused the request as a whole.
async fn send_group<'a, A: ConversionsApi>(
    api: &A,
    group: Vec<Pending<'a>>,
    config: &DispatchConfig,
    metrics: &Metrics,
    out: &mut Sent<'a>,
    now: DateTime<Utc>,
) -> Option<(Vec<Pending<'a>>, Vec<Pending<'a>>)> {
    let events: Vec<Event> = group.iter().map(|p| p.event.clone()).collect();
    let started = Instant::now();
    let result = api.send(&events).await;
    metrics.record(
        None,
        &[(
            names::PINTEREST_LATENCY,
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        )],
    );
    match result {
        Ok(statuses) => {
            out.sent += group.len() as u64;
            for (p, status) in group.into_iter().zip(statuses) {
                let d = match status {
                    EventStatus::Processed { warning } => {
                        if let Some(w) = warning {
                            tracing::info!(key = %p.key, warning = %w, "Pinterest accepted the event with a warning");
                        }
                        Disposition::Sent
                    }
                    EventStatus::Failed { error_message } => {
                        out.failed += 1;
                        refused(&p, error_message)
                    }
                };
                out.results.push((p, d));
            }
            None
        }
        Err(ConversionsApiError::Rejected { status, message }) if group.len() > 1 => {
            tracing::warn!(status, events = group.len(), error.message = %message, "Pinterest rejected the request as a whole; splitting it to find the offending events");
            let mut first = group;
            let second = first.split_off(first.len() / 2);
            Some((first, second))
        }
        Err(e) => {
            out.sent += group.len() as u64;
            let retryable = e.is_retryable();
            // One request is one store's (the dispatcher runs stores apart): the line names it.
            let shop = group.first().map_or("-", |p| p.context.shop.as_str());
            if e.is_auth() {
                out.auth_failures += 1;
                tracing::error!(shop, error.message = %e, events = group.len(), "Pinterest refused the store's access token; its events are kept for retry (pinrelay shops update SHOP --secrets, or the stack's PinterestAccessTokenSecret for the default store)");
            } else {
                tracing::warn!(shop, error.message = %e, kind = e.kind(), events = group.len(), retryable, "Pinterest request failed");
            }
            for mut p in group {
                p.last_error = Some(format!("Pinterest request failed: {}", e.kind()));
                let d = if e.is_in_doubt() && !config.resend_in_doubt {
                    in_doubt(&p, config)
                } else if e.is_in_doubt() {
                    Disposition::Retry(config.backoff(p.message.receive_count))
                } else if let Some((from, at_least, reason)) = pause(&e, config) {
                    // The store is paused: its token refused, or Pinterest rate-limits it.
                    Disposition::Paused(
                        config.pause(
                            p.message.receive_count,
                            from,
                            at_least,
                            p.event.event_time,
                            now,
                        ),
                        reason,
                    )
                } else if retryable {
                    Disposition::Retry(config.backoff(p.message.receive_count))
                } else {
                    refused(&p, e.to_string())
                };
                out.results.push((p, d));
            }
            None
        }
    }
}

/// A failure that pauses the whole store rather than one event: Pinterest refused its token (a
/// human must change it: first delay `retry_max`) or rate-limits it (first delay `retry_base`, at
/// least its `Retry-After`). The first delay, the least one and why; `None` for any other failure.
fn pause(
    e: &ConversionsApiError,
    config: &DispatchConfig,
) -> Option<(Duration, Duration, PauseReason)> {
    match e {
        ConversionsApiError::Unauthorized { .. } => {
            Some((config.retry_max, Duration::ZERO, PauseReason::TokenRefused))
        }
        ConversionsApiError::RateLimited { retry_after } => Some((
            config.retry_base,
            retry_after.unwrap_or(Duration::ZERO),
            PauseReason::RateLimited,
        )),
        _ => None,
    }
}
