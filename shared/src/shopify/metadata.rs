//! Typed webhook metadata from Shopify's delivery headers (`X-Shopify-*`, or `Shopify-*` on Events).
//!
//! Headers are not covered by the HMAC: treat them as routing hints, never as proof.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use http::HeaderMap;

/// A webhook topic, as sent in `X-Shopify-Topic` (`orders/create`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `orders/create`: the main purchase signal.
    OrdersCreate,
    /// `orders/paid`: an alternative purchase signal, deduplicated with `orders/create` by order id.
    OrdersPaid,
    /// `orders/updated`: not mapped to an event (skipped), accepted so subscriptions can share a URL.
    OrdersUpdated,
    /// `checkouts/create`.
    CheckoutsCreate,
    /// `checkouts/update`.
    CheckoutsUpdate,
    /// `customers/create`: a `signup` event.
    CustomersCreate,
    /// `customers/data_request`: mandatory compliance topic.
    CustomersDataRequest,
    /// `customers/redact`: mandatory compliance topic.
    CustomersRedact,
    /// `shop/redact`: mandatory compliance topic.
    ShopRedact,
    /// `app/uninstalled`: the store removed the app; a registered store is disabled.
    AppUninstalled,
    /// `customers/delete`: a customer was deleted; their uploads leave the customer lists.
    CustomersDelete,
    /// `customers_email_marketing_consent/update`: a customer's email marketing consent changed;
    /// the customer lists re-check them.
    CustomersEmailMarketingConsentUpdate,
    /// Any other topic, kept verbatim (lowercase).
    Other(String),
}

impl Topic {
    /// The topic as Shopify writes it in the header.
    pub fn as_str(&self) -> &str {
        match self {
            Topic::OrdersCreate => "orders/create",
            Topic::OrdersPaid => "orders/paid",
            Topic::OrdersUpdated => "orders/updated",
            Topic::CheckoutsCreate => "checkouts/create",
            Topic::CheckoutsUpdate => "checkouts/update",
            Topic::CustomersCreate => "customers/create",
            Topic::CustomersDataRequest => "customers/data_request",
            Topic::CustomersRedact => "customers/redact",
            Topic::ShopRedact => "shop/redact",
            Topic::AppUninstalled => "app/uninstalled",
            Topic::CustomersDelete => "customers/delete",
            Topic::CustomersEmailMarketingConsentUpdate => {
                "customers_email_marketing_consent/update"
            }
            Topic::Other(s) => s,
        }
    }

    /// True for the three mandatory compliance topics.
    pub fn is_compliance(&self) -> bool {
        matches!(
            self,
            Topic::CustomersDataRequest | Topic::CustomersRedact | Topic::ShopRedact
        )
    }

    /// True for topics whose body is an order (delayed at ingest so browser events can arrive first).
    pub fn is_order(&self) -> bool {
        matches!(
            self,
            Topic::OrdersCreate | Topic::OrdersPaid | Topic::OrdersUpdated
        )
    }
}

impl FromStr for Topic {
    type Err = std::convert::Infallible;

    /// Accepts `orders/create` and the GraphQL enum form `ORDERS_CREATE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let normalized = match lower.as_str() {
            "orders_create" => "orders/create",
            "orders_paid" => "orders/paid",
            "orders_updated" => "orders/updated",
            "checkouts_create" => "checkouts/create",
            "checkouts_update" => "checkouts/update",
            "customers_create" => "customers/create",
            "customers_data_request" => "customers/data_request",
            "customers_redact" => "customers/redact",
            "shop_redact" => "shop/redact",
            "app_uninstalled" => "app/uninstalled",
            "customers_delete" => "customers/delete",
            "customers_email_marketing_consent_update" => {
                "customers_email_marketing_consent/update"
            }
            other => other,
        };
        Ok(match normalized {
            "orders/create" => Topic::OrdersCreate,
            "orders/paid" => Topic::OrdersPaid,
            "orders/updated" => Topic::OrdersUpdated,
            "checkouts/create" => Topic::CheckoutsCreate,
            "checkouts/update" => Topic::CheckoutsUpdate,
            "customers/create" => Topic::CustomersCreate,
            "customers/data_request" => Topic::CustomersDataRequest,
            "customers/redact" => Topic::CustomersRedact,
            "shop/redact" => Topic::ShopRedact,
            "app/uninstalled" => Topic::AppUninstalled,
            "customers/delete" => Topic::CustomersDelete,
            "customers_email_marketing_consent/update" => {
                Topic::CustomersEmailMarketingConsentUpdate
            }
            other => Topic::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the delivery headers cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// `X-Shopify-Topic` is missing or empty.
    #[error("the request has no X-Shopify-Topic header")]
    MissingTopic,
    /// `X-Shopify-Shop-Domain` is missing or empty.
    #[error("the request has no X-Shopify-Shop-Domain header")]
    MissingShopDomain,
    /// `X-Shopify-Shop-Domain` is not a store's `*.myshopify.com` domain.
    #[error("X-Shopify-Shop-Domain {0:?} is not a store's *.myshopify.com domain")]
    InvalidShopDomain(String),
}

/// True for a store's permanent domain: `{handle}.myshopify.com`, the handle 1 to 63 lowercase
/// letters, digits and inner hyphens. Every key and allow-list entry is built from it, so nothing
/// else (a path, a `#`, another host) ever reaches them.
pub fn is_shop_domain(domain: &str) -> bool {
    let Some(handle) = domain.strip_suffix(".myshopify.com") else {
        return false;
    };
    (1..=63).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !handle.starts_with('-')
        && !handle.ends_with('-')
}

/// The shop a delivery names (`X-Shopify-Shop-Domain` or `Shopify-Shop-Domain`), lowercase and
/// checked. It is not signed: it only chooses the store, and so the secrets, to verify with.
///
/// # Errors
/// [`MetadataError::MissingShopDomain`] or [`MetadataError::InvalidShopDomain`].
pub fn shop_domain(headers: &HeaderMap) -> Result<String, MetadataError> {
    let domain = ["x-shopify-shop-domain", "shopify-shop-domain"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .ok_or(MetadataError::MissingShopDomain)?;
    if is_shop_domain(&domain) {
        Ok(domain)
    } else {
        Err(MetadataError::InvalidShopDomain(domain))
    }
}

/// What Shopify tells us about a delivery besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMetadata {
    /// The topic; decides how the body is read.
    pub topic: Topic,
    /// The `*.myshopify.com` domain of the store, lowercase; part of every dedup key.
    pub shop_domain: String,
    /// Unique per delivery and subscription: the id to quote when tracing one webhook.
    pub webhook_id: Option<String>,
    /// Shared by all deliveries caused by one merchant action.
    pub event_id: Option<String>,
    /// When Shopify triggered the delivery; retries keep the original value.
    pub triggered_at: Option<DateTime<Utc>>,
    /// The API version the payload was serialized with.
    pub api_version: Option<String>,
}

impl WebhookMetadata {
    /// Reads the metadata from delivery headers (case-insensitive, `X-Shopify-` or `Shopify-`).
    ///
    /// # Errors
    /// [`MetadataError`] when the topic or shop domain is missing.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, MetadataError> {
        Self::from_lookup(|name| {
            headers
                .get(format!("x-shopify-{name}"))
                .or_else(|| headers.get(format!("shopify-{name}")))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
    }

    /// Reads the metadata through a lookup of the header name without its prefix (`topic`,
    /// `shop-domain`, `webhook-id`, `event-id`, `triggered-at`, `api-version`). Used for EventBridge
    /// envelopes, whose headers arrive as a JSON object.
    ///
    /// # Errors
    /// [`MetadataError`] when the topic or shop domain is missing, or the shop domain is not a
    /// `*.myshopify.com` domain (see [`is_shop_domain`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MetadataError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let topic = get("topic").ok_or(MetadataError::MissingTopic)?;
        let shop_domain = get("shop-domain")
            .ok_or(MetadataError::MissingShopDomain)?
            .to_ascii_lowercase();
        if !is_shop_domain(&shop_domain) {
            return Err(MetadataError::InvalidShopDomain(shop_domain));
        }
        Ok(Self {
            topic: topic.parse().unwrap_or_else(|e| match e {}),
            shop_domain,
            webhook_id: get("webhook-id"),
            event_id: get("event-id"),
            triggered_at: get("triggered-at").and_then(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            }),
            api_version: get("api-version"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn reads_every_documented_header() {
        let h = headers(&[
            ("X-Shopify-Topic", "orders/create"),
            ("X-Shopify-Shop-Domain", "Snowdevil.myshopify.com"),
            ("X-Shopify-API-Version", "2026-07"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
            ("X-Shopify-Triggered-At", "2023-03-29T18:00:27.877041743Z"),
            ("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
        ]);
        let m = WebhookMetadata::from_headers(&h).unwrap();
        assert_eq!(m.topic, Topic::OrdersCreate);
        assert_eq!(m.shop_domain, "snowdevil.myshopify.com");
        assert_eq!(m.api_version.as_deref(), Some("2026-07"));
        assert_eq!(
            m.webhook_id.as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        assert_eq!(
            m.event_id.as_deref(),
            Some("98880550-7158-44d4-b7cd-2c97c8a091b5")
        );
        assert_eq!(m.triggered_at.unwrap().timestamp(), 1_680_112_827);
    }

    #[test]
    fn reads_events_style_headers() {
        let h = headers(&[
            ("shopify-topic", "customers/redact"),
            ("shopify-shop-domain", "a.myshopify.com"),
        ]);
        let m = WebhookMetadata::from_headers(&h).unwrap();
        assert!(m.topic.is_compliance());
        assert_eq!(m.webhook_id, None);
    }

    #[test]
    fn accepts_only_myshopify_domains() {
        for ok in ["a.myshopify.com", "snow-devil2.myshopify.com"] {
            assert!(is_shop_domain(ok), "{ok}");
        }
        for bad in [
            "evil.com/../x",
            "myshopify.com",
            ".myshopify.com",
            "a#b.myshopify.com",
            "-a.myshopify.com",
            "a.b.myshopify.com",
            "shop.example.com",
            "a.myshopify.com.evil.com",
        ] {
            assert!(!is_shop_domain(bad), "{bad}");
        }
        let lookup = |shop: &'static str| {
            move |name: &str| match name {
                "topic" => Some("orders/create".to_owned()),
                "shop-domain" => Some(shop.to_owned()),
                _ => None,
            }
        };
        assert_eq!(
            WebhookMetadata::from_lookup(lookup("evil.com/../x")),
            Err(MetadataError::InvalidShopDomain("evil.com/../x".into()))
        );
        assert!(WebhookMetadata::from_lookup(lookup("Shop.MyShopify.com")).is_ok());
    }

    #[test]
    fn requires_topic_and_shop_domain() {
        assert_eq!(
            WebhookMetadata::from_headers(&headers(&[("X-Shopify-Shop-Domain", "a")])),
            Err(MetadataError::MissingTopic)
        );
        assert_eq!(
            WebhookMetadata::from_headers(&headers(&[("X-Shopify-Topic", "orders/create")])),
            Err(MetadataError::MissingShopDomain)
        );
    }

    #[test]
    fn topic_round_trips_and_accepts_graphql_form() {
        for t in [
            "orders/create",
            "orders/paid",
            "shop/redact",
            "refunds/create",
        ] {
            assert_eq!(t.parse::<Topic>().unwrap().as_str(), t);
        }
        assert_eq!("ORDERS_PAID".parse::<Topic>().unwrap(), Topic::OrdersPaid);
    }
}
