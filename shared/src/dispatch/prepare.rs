//! Stage 1: each message on its own, decoded and translated. Pure: no I/O, `now` injected.

use chrono::{DateTime, Utc};

use super::model::{
    Context, DeadLetterReason, DispatchConfig, Disposition, Pending, Prepared, ProfileWrite,
};
use crate::browser::{self, BrowserOutcome, ReceivedBrowserEvent};
use crate::idempotency::IdempotencyKey;
use crate::mapping::{
    self, ComplianceRequest, MappingError, Outcome, SkipReason, json_error_summary,
};
use crate::queue::{Envelope, Received, RelayFacts, Source};

/// The skip of a claimed event older than Pinterest accepts (`max_event_age`). Checked after the
/// claim, so that an event already sent is deduplicated however old its redelivery.
pub(super) fn expiry(
    p: &Pending<'_>,
    config: &DispatchConfig,
    now: DateTime<Utc>,
) -> Option<SkipReason> {
    let age = now.timestamp() - p.event.event_time;
    (age > config.max_event_age.as_secs() as i64)
        .then_some(SkipReason::Expired { days: age / 86_400 })
}

/// For a storefront browser event whose pixel reports its settings: the names of those that
/// differ from the relay's (`CHECKOUT_EVENT_ID`, `CHECKOUT_ON`, `CONTENT_ID`, `VALUE_SOURCE`,
/// `EVENT_ID_TEMPLATE`), so drift between the pasted pixel and the stack is counted. `None` for any
/// other message, or a pixel that reports none.
pub(super) fn settings_drift(
    message: &Received,
    config: &DispatchConfig,
) -> Option<Vec<&'static str>> {
    if RelayFacts::of(&message.attributes).source.as_deref() != Some(Source::Browser.as_str()) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Settings {
        event: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        settings: Option<String>,
    }
    let wire = serde_json::from_str::<Settings>(&message.body)
        .ok()?
        .event
        .settings?;
    let differ = config.options.pixel_settings().differences(&wire);
    (!differ.is_empty()).then_some(differ)
}

/// What one message becomes: an event to claim, a profile to record, a compliance request, or a
/// disposition decided already (a skip or a dead letter).
pub(super) fn prepare<'a>(
    message: &'a Received,
    config: &DispatchConfig,
    now: DateTime<Utc>,
) -> Prepared<'a> {
    let envelope = match Envelope::decode(&message.body, &message.attributes, now) {
        Ok(envelope) => envelope,
        Err(e) => {
            let reason = DeadLetterReason::Undecodable(e.to_string());
            return Prepared::Decided(message, None, None, Disposition::DeadLettered(reason));
        }
    };
    let context = Context {
        source: Some(envelope.source),
        topic: envelope.metadata.topic.to_string(),
        shop: envelope.metadata.shop_domain.clone(),
        webhook_id: envelope.metadata.webhook_id.clone(),
    };
    let decided = |context, d| Prepared::Decided(message, Some(context), None, d);
    let invalid = |why: String| Disposition::DeadLettered(DeadLetterReason::InvalidPayload(why));

    let conversion = if envelope.source == Source::Browser {
        let received: ReceivedBrowserEvent = match serde_json::from_slice(&envelope.body) {
            Ok(received) => received,
            Err(e) => return decided(context, invalid(json_error_summary(&e))),
        };
        match browser::translate(&received, now) {
            BrowserOutcome::Send(event) => mapping::Conversion {
                event: *event,
                order: None,
            },
            BrowserOutcome::NoConsent => {
                return decided(context, Disposition::Skipped(SkipReason::Consent));
            }
            BrowserOutcome::Profile { order_id, profile } => {
                return Prepared::Profile(ProfileWrite {
                    message,
                    shop: context.shop,
                    order_id,
                    profile,
                });
            }
        }
    } else {
        match mapping::translate(&envelope.metadata, &envelope.body, &config.options, now) {
            Ok(Outcome::Send(conversion)) => *conversion,
            Ok(Outcome::Skip { reason, order }) => {
                return Prepared::Decided(
                    message,
                    Some(context),
                    order,
                    Disposition::Skipped(reason),
                );
            }
            Ok(Outcome::Compliance(mut request)) => {
                // A consent change without `X-Shopify-Triggered-At` dates from its receipt.
                if let ComplianceRequest::ConsentChanged { at, .. } = &mut request {
                    at.get_or_insert(envelope.received_at);
                }
                return Prepared::Compliance(message, context, request);
            }
            Err(MappingError::NoCustomerId { topic }) => {
                let reason = DeadLetterReason::NoCustomerId {
                    topic: topic.to_string(),
                };
                return decided(context, Disposition::DeadLettered(reason));
            }
            Err(e @ MappingError::ComplianceMismatch { .. }) => {
                let reason = DeadLetterReason::ComplianceMismatch(e.to_string());
                return decided(context, Disposition::DeadLettered(reason));
            }
            Err(e) => return decided(context, invalid(e.to_string())),
        }
    };

    let event = conversion.event;
    // The record is keyed by what the event is about: an order's checkout by the order id (never by
    // the event_id, which a setting chooses), any other event by its own id.
    let key = match &conversion.order {
        Some(order) => IdempotencyKey::order(&context.shop, order.id),
        None => IdempotencyKey::new(&context.shop, &event.event_name, &event.event_id),
    };
    let key = match key {
        Ok(key) => key,
        Err(e) => return decided(context, invalid(e.to_string())),
    };
    // Before one-record-per-event an order's record was keyed by its event_id.
    let legacy = IdempotencyKey::new(&context.shop, &event.event_name, &event.event_id)
        .ok()
        .filter(|legacy| *legacy != key);
    Prepared::Event(Box::new(Pending {
        message,
        key,
        legacy,
        resend: RelayFacts::of(&message.attributes).resend,
        generation: 0,
        last_error: None,
        profile: None,
        event,
        order: conversion.order,
        context,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::queue::MAX_MESSAGE_BYTES;
    use crate::shopify::{Topic, WebhookMetadata};

    fn now() -> DateTime<Utc> {
        "2026-11-29T12:00:00Z".parse().unwrap()
    }

    fn message(topic: Topic, body: serde_json::Value) -> Received {
        let envelope = Envelope {
            source: Source::Webhook,
            metadata: WebhookMetadata {
                topic,
                shop_domain: "a.myshopify.com".into(),
                webhook_id: Some("w-1".into()),
                event_id: None,
                triggered_at: None,
                api_version: None,
            },
            received_at: now(),
            body: body.to_string().into_bytes(),
        };
        let m = envelope.encode(MAX_MESSAGE_BYTES, Duration::ZERO).unwrap();
        Received {
            id: "m-1".into(),
            receipt: "r-1".into(),
            receive_count: 1,
            body: m.body,
            attributes: m.attributes.into_iter().collect(),
        }
    }

    fn order(created_at: &str) -> serde_json::Value {
        json!({"id": 42, "created_at": created_at, "email": "a@b.co", "checkout_token": "tok"})
    }

    #[test]
    fn an_order_becomes_a_pending_checkout_with_its_order_facts() {
        let m = message(Topic::OrdersCreate, order("2026-11-29T11:00:00Z"));
        let Prepared::Event(p) = prepare(&m, &DispatchConfig::default(), now()) else {
            panic!("expected an event");
        };
        assert_eq!(p.key.as_str(), "a.myshopify.com#checkout#42");
        let order = p.order.unwrap();
        assert_eq!(
            (order.id, order.checkout_token.as_deref()),
            (42, Some("tok"))
        );
        assert_eq!(p.context.webhook_id.as_deref(), Some("w-1"));
    }

    #[test]
    fn skips_and_dead_letters_are_decided_with_typed_reasons() {
        let config = DispatchConfig::default();
        let test_order = message(Topic::OrdersCreate, json!({"id": 1, "test": true}));
        assert!(matches!(
            prepare(&test_order, &config, now()),
            Prepared::Decided(
                _,
                Some(_),
                Some(1),
                Disposition::Skipped(SkipReason::TestOrder)
            )
        ));
        let old = message(Topic::OrdersCreate, order("2026-11-19T12:00:00Z"));
        let Prepared::Event(p) = prepare(&old, &config, now()) else {
            panic!("an old order is still claimed: it may have been sent already");
        };
        assert_eq!(
            expiry(&p, &config, now()),
            Some(SkipReason::Expired { days: 10 })
        );
        let fresh = message(Topic::OrdersCreate, order("2026-11-29T11:00:00Z"));
        let Prepared::Event(p) = prepare(&fresh, &config, now()) else {
            panic!("expected an event");
        };
        assert_eq!(expiry(&p, &config, now()), None);
        let array = message(Topic::OrdersCreate, json!([1]));
        assert!(matches!(
            prepare(&array, &config, now()),
            Prepared::Decided(
                _,
                _,
                None,
                Disposition::DeadLettered(DeadLetterReason::InvalidPayload(_))
            )
        ));
        let junk = Received {
            id: "m".into(),
            receipt: "r".into(),
            receive_count: 1,
            body: "not an envelope".into(),
            attributes: HashMap::new(),
        };
        assert!(matches!(
            prepare(&junk, &config, now()),
            Prepared::Decided(
                _,
                None,
                None,
                Disposition::DeadLettered(DeadLetterReason::Undecodable(_))
            )
        ));
    }

    #[test]
    fn compliance_webhooks_become_requests() {
        let m = message(
            Topic::ShopRedact,
            json!({"shop_id": 1, "shop_domain": "a.myshopify.com"}),
        );
        assert!(matches!(
            prepare(&m, &DispatchConfig::default(), now()),
            Prepared::Compliance(_, _, _)
        ));
    }
}
