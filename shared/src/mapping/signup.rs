//! `customers/create` → one `signup` event, when the customer signed up on the storefront.
//!
//! Shopify creates a customer for far more than sign-ups: every guest checkout, every CSV import,
//! every customer staff or an app adds. Only two payloads are a storefront sign-up:
//!
//! - an account registration: `state` is `enabled` (classic customer accounts; Shopify documents
//!   `state` as meaningful only there);
//! - the storefront newsletter form: Shopify tags its customers `newsletter`, with email marketing
//!   consent `subscribed` (or `pending`, double opt-in not yet confirmed).
//!
//! Everything else is skipped as [`SkipReason::NotASignup`].

use chrono::{DateTime, Utc};

use super::fields::*;
use super::{Conversion, MappingError, Options, Outcome, SkipReason};
use crate::pinterest::normalize;
use crate::pinterest::{ActionSource, Event, UserData};
use crate::shopify::WebhookMetadata;
use crate::shopify::payload::Customer;

/// `customers/create` → `signup`.
pub(super) fn signup_event(
    metadata: &WebhookMetadata,
    customer: Customer,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let topic = metadata.topic.as_str();
    if !is_storefront_signup(&customer) {
        return Ok(Outcome::skip(SkipReason::NotASignup));
    }
    let id = customer.id.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "id",
    })?;
    let created = customer.created_at.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "created_at",
    })?;
    let address = customer.default_address.as_ref();
    let address_country = address.and_then(|a| a.country_code.as_deref());
    let mut user_data = UserData {
        em: hashed(customer.email.as_deref().and_then(normalize::email)),
        ph: hashed(first_phone(
            [
                (customer.phone.as_deref(), address_country),
                (address.and_then(|a| a.phone.as_deref()), address_country),
            ],
            options.default_country.as_deref(),
        )),
        first_name: hashed(first_of(
            [
                customer.first_name.as_deref(),
                address.and_then(|a| a.first_name.as_deref()),
            ],
            normalize::name,
        )),
        ln: hashed(first_of(
            [
                customer.last_name.as_deref(),
                address.and_then(|a| a.last_name.as_deref()),
            ],
            normalize::name,
        )),
        external_id: hashed(normalize::external_id(&id.to_string())),
        ..UserData::default()
    };
    if let Some(a) = address {
        add_location(&mut user_data, a);
    }
    let event = Event {
        event_name: "signup".to_owned(),
        action_source: ActionSource::Web,
        event_time: event_time(created, now),
        event_id: format!("signup-{id}"),
        event_source_url: source_url(metadata, options),
        opt_out: None,
        user_data,
        custom_data: None,
        language: None,
    };
    Ok(Outcome::Send(Box::new(Conversion { event, order: None })))
}

/// An account registration, or the storefront newsletter form (see the module docs).
fn is_storefront_signup(customer: &Customer) -> bool {
    let registered = customer
        .state
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("enabled"));
    let newsletter = customer
        .tags
        .iter()
        .any(|t| t.eq_ignore_ascii_case("newsletter"))
        && customer
            .email_marketing_consent
            .as_ref()
            .and_then(|c| c.state.as_deref())
            .is_some_and(|s| {
                let s = s.trim();
                s.eq_ignore_ascii_case("subscribed") || s.eq_ignore_ascii_case("pending")
            });
    registered || newsletter
}
