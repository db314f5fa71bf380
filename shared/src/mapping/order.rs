//! `orders/create` and `orders/paid` → one `checkout` event, and the facts about the order the
//! dispatcher needs ([`OrderRef`]).

use chrono::{DateTime, Utc};

use super::fields::*;
use super::money::currency_amount;
use super::{
    CheckoutOn, ContentIdSource, Conversion, ItemIds, MappingError, Options, OrderRef, Outcome,
    SkipReason, ValueSource, render_event_id,
};
use crate::pinterest::normalize;
use crate::pinterest::{ActionSource, Content, CustomData, Event, UserData};
use crate::shopify::WebhookMetadata;
use crate::shopify::payload::{LineItem, Order};

/// `source_name` of orders placed through the online store's checkout.
pub const ONLINE_STORE: &str = "web";

/// Why an order from this sales channel is not a storefront checkout, unless `ORDER_SOURCES`
/// lists the source: draft orders staff create, subscription renewals an app charges (the first
/// subscription order is a storefront checkout, `web`), and every other channel or app
/// (marketplaces, social channels, orders created through the API).
fn channel_skip(source: &str, options: &Options) -> Option<SkipReason> {
    if options.order_sources.iter().any(|s| s == source) {
        return None;
    }
    Some(match source {
        "shopify_draft_order" => SkipReason::DraftOrder,
        s if s.starts_with("subscription_contract") => SkipReason::SubscriptionRenewal,
        other => SkipReason::SalesChannel(other.to_owned()),
    })
}

/// What the conversion rules read of an order, whatever shape it came in: a webhook or REST body
/// ([`Order`]), or the Admin API's GraphQL order (reconcile and the watch, for orders the relay
/// never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderFacts<'a> {
    /// `test`.
    pub test: bool,
    /// `cancelled_at` is set.
    pub cancelled: bool,
    /// `source_name` (`web`, `pos`, …); `None` reads as the online store.
    pub source_name: Option<&'a str>,
    /// `financial_status` (REST, `paid`) or `displayFinancialStatus` (GraphQL, `PAID`); compared
    /// without case.
    pub financial_status: Option<&'a str>,
}

impl<'a> OrderFacts<'a> {
    /// The facts of a webhook or REST order.
    pub fn of(order: &'a Order) -> Self {
        Self {
            test: order.test == Some(true),
            cancelled: order
                .cancelled_at
                .as_deref()
                .is_some_and(|c| !c.trim().is_empty()),
            source_name: order.source_name.as_deref(),
            financial_status: order.financial_status.as_deref(),
        }
    }
}

/// Where an order counts when it is a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderChannel {
    /// A storefront checkout: `action_source: web`.
    Web,
    /// A point-of-sale order sent because `SEND_POS_ORDERS`: `action_source: offline`.
    Offline,
}

/// The conversion rules of an order, the one place they are decided: whether it is a conversion
/// to send and where, or the reason it is not. In order: a test order, a cancelled one, a voided
/// one (never sent, under either `CHECKOUT_ON`), the sales channel, then under `CHECKOUT_ON=paid`
/// whether payment is secured (`PAID_STATUSES`).
///
/// # Errors
/// The [`SkipReason`] when the order is not a conversion to send.
pub fn order_rule(facts: &OrderFacts<'_>, options: &Options) -> Result<OrderChannel, SkipReason> {
    if facts.test && !options.include_test_orders {
        return Err(SkipReason::TestOrder);
    }
    if facts.cancelled {
        return Err(SkipReason::CancelledOrder);
    }
    let status = facts
        .financial_status
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty());
    if matches!(status.as_deref(), Some("voided" | "expired")) {
        return Err(SkipReason::VoidedOrder);
    }
    let source = facts
        .source_name
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        // Shopify always names the source; a payload without one is taken as the online store.
        .unwrap_or_else(|| ONLINE_STORE.to_owned());
    let channel = if source == "pos" {
        if !options.send_pos_orders {
            return Err(SkipReason::PosOrder);
        }
        OrderChannel::Offline
    } else {
        if let Some(reason) = channel_skip(&source, options) {
            return Err(reason);
        }
        OrderChannel::Web
    };
    if options.checkout_on == CheckoutOn::Paid
        && !status
            .as_deref()
            .is_some_and(|s| options.paid_statuses.iter().any(|p| p == s))
    {
        return Err(SkipReason::Unpaid {
            status: status.unwrap_or_else(|| "unknown".to_owned()),
        });
    }
    Ok(channel)
}

/// `orders/create` and `orders/paid` → `checkout`.
pub(super) fn order_event(
    metadata: &WebhookMetadata,
    order: Order,
    options: &Options,
    now: DateTime<Utc>,
) -> Result<Outcome, MappingError> {
    let topic = metadata.topic.as_str();
    let pos = match order_rule(&OrderFacts::of(&order), options) {
        Ok(channel) => channel == OrderChannel::Offline,
        Err(reason) => return Ok(Outcome::skip_order(reason, order.id)),
    };
    let order_id = order.id.ok_or(MappingError::MissingField {
        topic: topic.to_owned(),
        field: "id",
    })?;
    let event_id = render_event_id(&options.event_id_template, order_id, order.name.as_deref())
        .map_err(|e| match e {
            MappingError::MissingField { field, .. } => MappingError::MissingField {
                topic: topic.to_owned(),
                field,
            },
            other => other,
        })?;
    let created = order
        .created_at
        .or(order.processed_at)
        .ok_or(MappingError::MissingField {
            topic: topic.to_owned(),
            field: "created_at",
        })?;

    let user_data = order_user_data(&order, options.default_country.as_deref());
    let action_source = if pos {
        ActionSource::Offline
    } else {
        ActionSource::Web
    };
    let language = order
        .customer_locale
        .as_deref()
        .and_then(language)
        .or_else(|| {
            order
                .client_details
                .as_ref()
                .and_then(|c| c.accept_language.as_deref())
                .and_then(language)
        });
    let event = Event {
        event_name: "checkout".to_owned(),
        action_source,
        event_time: event_time(created, now),
        event_id,
        // An in-store sale has no page; never `order_status_url`, which carries an access key.
        event_source_url: (action_source == ActionSource::Web)
            .then(|| source_url(metadata, options))
            .flatten(),
        opt_out: None,
        user_data,
        custom_data: Some(order_custom_data(&order, order_id, options)),
        language,
    };
    Ok(Outcome::Send(Box::new(Conversion {
        event,
        order: Some(OrderRef {
            id: order_id,
            checkout_token: order.checkout_token.clone(),
        }),
    })))
}

fn order_user_data(order: &Order, default_country: Option<&str>) -> UserData {
    let customer = order.customer.as_ref();
    let billing = order.billing_address.as_ref();
    let shipping = order.shipping_address.as_ref();
    let default = customer.and_then(|c| c.default_address.as_ref());
    let addresses = [billing, shipping, default];
    // The country of a phone written without its country code: its own address's, else the first
    // address that names one.
    let any_country = addresses.into_iter().find_map(country_of);

    let mut user_data = UserData {
        em: hashed(first_of(
            [
                order.email.as_deref(),
                order.contact_email.as_deref(),
                customer.and_then(|c| c.email.as_deref()),
            ],
            normalize::email,
        )),
        ph: hashed(first_phone(
            [
                (order.phone.as_deref(), any_country),
                (
                    billing.and_then(|a| a.phone.as_deref()),
                    country_of(billing).or(any_country),
                ),
                (
                    shipping.and_then(|a| a.phone.as_deref()),
                    country_of(shipping).or(any_country),
                ),
                (
                    customer.and_then(|c| c.phone.as_deref()),
                    country_of(default).or(any_country),
                ),
            ],
            default_country,
        )),
        first_name: hashed(first_of(
            [
                billing.and_then(|a| a.first_name.as_deref()),
                shipping.and_then(|a| a.first_name.as_deref()),
                default.and_then(|a| a.first_name.as_deref()),
                customer.and_then(|c| c.first_name.as_deref()),
            ],
            normalize::name,
        )),
        ln: hashed(first_of(
            [
                billing.and_then(|a| a.last_name.as_deref()),
                shipping.and_then(|a| a.last_name.as_deref()),
                default.and_then(|a| a.last_name.as_deref()),
                customer.and_then(|c| c.last_name.as_deref()),
            ],
            normalize::name,
        )),
        external_id: hashed(
            customer
                .and_then(|c| c.id)
                .and_then(|id| normalize::external_id(&id.to_string())),
        ),
        client_ip_address: [
            order.browser_ip.as_deref(),
            order
                .client_details
                .as_ref()
                .and_then(|c| c.browser_ip.as_deref()),
        ]
        .into_iter()
        .flatten()
        .find_map(ip_address),
        client_user_agent: order
            .client_details
            .as_ref()
            .and_then(|c| c.user_agent.as_deref())
            .and_then(non_blank),
        click_id: order
            .landing_site
            .as_deref()
            .and_then(epik_from_landing_site)
            .or_else(|| {
                order.note_attributes.iter().find_map(|a| {
                    let name = a.name.as_deref()?.trim();
                    (name.eq_ignore_ascii_case("epik") || name.eq_ignore_ascii_case("_epik"))
                        .then(|| a.value.as_deref().and_then(non_blank))
                        .flatten()
                })
            }),
        ..UserData::default()
    };
    // City, state, zip and country describe one place: take them from one address, the first that
    // has any of them, rather than mixing a billing city with a shipping zip.
    if let Some(a) = addresses.into_iter().flatten().find(|a| has_location(a)) {
        add_location(&mut user_data, a);
    }
    user_data
}

fn order_custom_data(order: &Order, order_id: u64, options: &Options) -> CustomData {
    let currency = order.currency.as_deref();
    let value = match options.value_source {
        ValueSource::Subtotal => [&order.current_subtotal_price, &order.subtotal_price],
        ValueSource::Total => [&order.current_total_price, &order.total_price],
    }
    .into_iter()
    .find_map(|v| v.as_deref().and_then(|v| currency_amount(v, currency)));

    let mut content_ids: Vec<String> = Vec::new();
    let mut contents = Vec::new();
    for item in &order.line_items {
        if let Some(id) = content_id(
            item,
            &options.content_id,
            options.catalog_country.as_deref(),
        ) {
            if !content_ids.contains(&id) {
                content_ids.push(id.clone());
            }
            contents.push(Content {
                id,
                item_price: item
                    .price
                    .as_deref()
                    .and_then(|p| currency_amount(p, currency)),
                quantity: item.quantity,
            });
        }
    }
    let num_items = order
        .line_items
        .iter()
        .filter_map(|i| i.quantity)
        .fold(0u64, u64::saturating_add);
    CustomData {
        currency: currency.and_then(non_blank),
        value,
        content_ids,
        contents,
        // One name and one brand per event: only set when every line agrees.
        content_name: single(order.line_items.iter().map(|i| i.title.as_deref())),
        content_brand: single(order.line_items.iter().map(|i| i.vendor.as_deref())),
        num_items: (num_items > 0).then_some(num_items),
        order_id: Some(order_id.to_string()),
        ..CustomData::default()
    }
}

fn content_id(item: &LineItem, source: &ContentIdSource, country: Option<&str>) -> Option<String> {
    source.item_id(
        ItemIds {
            variant_id: item.variant_id,
            product_id: item.product_id,
            sku: item.sku.as_deref(),
        },
        country,
    )
}

/// The value every item agrees on, when there is exactly one.
fn single<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let mut found: Option<&str> = None;
    for v in values {
        let v = v.map(str::trim).filter(|v| !v.is_empty())?;
        match found {
            Some(f) if f != v => return None,
            _ => found = Some(v),
        }
    }
    found.map(str::to_owned)
}
