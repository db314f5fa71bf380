//! What a browser event becomes: a Pinterest event, or for a checkout the order's shopper
//! [`Profile`]. Pure: `now` is an argument.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{BrowserEventName, Consent, ReceivedBrowserEvent, Utm};
use crate::mapping::currency_amount;
use crate::pinterest::normalize;
use crate::pinterest::{ActionSource, Content, CustomData, Event, UserData};

/// What the pixel learned about the shopper of one order, kept to enrich the order's webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Pinterest click id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// Client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// User agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// UTM parameters.
    #[serde(default)]
    pub utm: Utm,
    /// Consent at checkout.
    #[serde(default)]
    pub consent: Consent,
    /// SHA-256 of the checkout token the pixel saw: the order's webhook must carry the same token
    /// for the profile to apply, so a forged browser event cannot alter someone else's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_token_sha256: Option<String>,
    /// The `checkout_completed` customer event's `id` (the Pinterest app's Tag `eventID`): the
    /// order's `event_id` under `CHECKOUT_EVENT_ID=shopify_event`, when the token matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify_event_id: Option<String>,
}

/// What dispatch does with a browser event.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserOutcome {
    /// Send this event.
    Send(Box<Event>),
    /// Record this profile for the order (a browser checkout).
    Profile {
        /// The order id.
        order_id: u64,
        /// What to record.
        profile: Box<Profile>,
    },
    /// Marketing consent was not given: send nothing.
    NoConsent,
}

/// Turns a received browser event into a Pinterest event or a profile.
pub fn translate(received: &ReceivedBrowserEvent, now: DateTime<Utc>) -> BrowserOutcome {
    let e = &received.event;
    let consented = e.has_marketing_consent();
    let client_ip = received.client_ip.map(|ip| ip.to_string());
    if e.event == BrowserEventName::Checkout {
        let order_id = e
            .order
            .as_ref()
            .and_then(|o| o.order_id.parse::<u64>().ok())
            .unwrap_or_default();
        let checkout_token_sha256 = e
            .order
            .as_ref()
            .and_then(|o| o.checkout_token.as_deref())
            .map(normalize::sha256_hex);
        let shopify_event_id = e.order.as_ref().and_then(|o| o.shopify_event_id.clone());
        // Without marketing consent only the refusal itself is kept, so the order webhook can
        // honour it; nothing that identifies the shopper is stored.
        let profile = if consented {
            Profile {
                click_id: e.click_id.clone(),
                client_ip,
                user_agent: received.user_agent.clone(),
                utm: e.utm.clone(),
                consent: e.consent,
                checkout_token_sha256,
                shopify_event_id,
            }
        } else {
            Profile {
                consent: e.consent,
                checkout_token_sha256,
                shopify_event_id,
                ..Profile::default()
            }
        };
        return BrowserOutcome::Profile {
            order_id,
            profile: Box::new(profile),
        };
    }
    if !consented {
        return BrowserOutcome::NoConsent;
    }
    // Amounts get the currency's own decimals, as order amounts do; one that is not a plain
    // decimal is left out rather than sent as the pixel wrote it.
    let custom = e.custom.as_ref().map(|c| CustomData {
        currency: c.currency.clone(),
        value: c
            .value
            .as_deref()
            .and_then(|v| currency_amount(v, c.currency.as_deref())),
        content_ids: c.content_ids.clone(),
        contents: c
            .contents
            .iter()
            .map(|i| Content {
                id: i.id.clone(),
                item_price: i
                    .item_price
                    .as_deref()
                    .and_then(|p| currency_amount(p, c.currency.as_deref())),
                quantity: i.quantity,
            })
            .collect(),
        num_items: c.num_items,
        search_string: c.search_string.clone(),
        ..CustomData::default()
    });
    let opt_out_type = (e.consent.sale_of_data == Some(false)).then(|| "LDP".to_owned());
    let custom = match (custom, opt_out_type) {
        (Some(c), t) => Some(CustomData {
            opt_out_type: t,
            ..c
        }),
        (None, Some(t)) => Some(CustomData {
            opt_out_type: Some(t),
            ..CustomData::default()
        }),
        (None, None) => None,
    };
    BrowserOutcome::Send(Box::new(Event {
        event_name: e.event.as_str().to_owned(),
        action_source: ActionSource::Web,
        event_time: e.timestamp.min(now).timestamp(),
        event_id: e.event_id.clone(),
        event_source_url: e.page_url.as_deref().and_then(origin_and_path),
        opt_out: None,
        user_data: UserData {
            external_id: e
                .client_id
                .as_deref()
                .and_then(normalize::external_id)
                .and_then(|id| normalize::hash(&id))
                .into_iter()
                .collect(),
            client_ip_address: client_ip,
            client_user_agent: received.user_agent.clone(),
            click_id: e.click_id.clone(),
            ..UserData::default()
        },
        custom_data: custom,
        language: None,
    }))
}

/// `event_source_url` of a browser event: the page's origin and path. The query and fragment
/// (click ids, UTMs, search terms, tokens) and any credentials are dropped; what the pixel needed
/// from them it has already read. A URL that does not parse, or is not http(s), yields `None`:
/// it is not sent at all.
fn origin_and_path(page_url: &str) -> Option<String> {
    let mut url = Url::parse(page_url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url.into())
}
