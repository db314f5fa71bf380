//! [`AdminApi`]: a client of a shop's Admin API, for what the relay asks Shopify directly.
//!
//! # Layout
//! - [`transport`]: the client itself: endpoint, auth header, retries (429, 5xx, network) through
//!   [`crate::retry`], GraphQL cost throttling, [`AdminError`]. It knows no query.
//! - [`credentials`]: [`AdminCredentials`] (a static token, or a Dev Dashboard app's client id and
//!   secret) and the [`TokenSource`] that mints, caches and renews client-credentials tokens.
//! - One module per query, each with its query text and typed answer: [`shop`] (the shop's
//!   settings), [`orders`] (orders over a period, one order's REST payload), [`webhooks`] (the
//!   subscriptions `pinrelay subscribe` manages), [`access_scopes`] (the scopes granted, and those
//!   the relay needs), [`recent_line_items`] (the latest orders' products and variants),
//!   [`newest_order`] (the newest order alone, with `read_orders` only), [`customers`] (consent,
//!   data-sale opt-out and orders count, for the audience sync, page by page or in bulk),
//!   [`customer_nodes`] (the same, for given customer ids: a consent webhook's re-check).
//! - [`bulk`]: bulk query operations (`bulkOperationRunQuery`): start or continue one, poll it,
//!   stream its JSONL line by line from Shopify's signed URL (no token sent there).
//!
//! A new query goes in its own file: a `const` query, `#[serde(rename_all = "camelCase")]` structs
//! for its `data`, and one `impl AdminApi` method calling [`AdminApi::query`].
//!
//! This module is not the webhook side: payload types and signatures are [`super::payload`] and
//! [`super::verify()`].

pub mod access_scopes;
pub mod bulk;
pub mod credentials;
pub mod customer_nodes;
pub mod customers;
pub mod newest_order;
pub mod orders;
pub mod recent_line_items;
pub mod shop;
pub mod transport;
pub mod webhooks;

pub use access_scopes::{RequiredScope, missing_scopes, required_scopes};
pub use bulk::{BulkOperation, BulkPolling, BulkStatus, supports_bulk_operations};
pub use credentials::{AdminCredentials, Clock, TokenSource};
pub use customer_nodes::{CUSTOMER_NODES_MAX, CUSTOMER_NODES_QUERY};
pub use customers::{BULK_CUSTOMERS_QUERY, CUSTOMERS_PAGE_SIZE, CUSTOMERS_QUERY};
pub use newest_order::NewestOrder;
pub use orders::{AdminOrder, ORDERS_PAGE_SIZE, ORDERS_QUERY};
pub use recent_line_items::{RecentLineItem, RecentOrder};
pub use shop::{SHOP_QUERY, ShopInfo};
pub use transport::{AdminApi, AdminError, RetryPolicy};
pub use webhooks::{
    CREATE_MUTATION, LIST_QUERY, LIST_QUERY_LEGACY, SubscriptionCreated, URI_SINCE,
    WebhookSubscription, topic_enum,
};

/// The Admin API version the watch uses unless `SHOPIFY_API_VERSION` says otherwise (the CLI's
/// `--api-version` default, the same value).
pub const DEFAULT_API_VERSION: &str = "2026-07";

/// `name` -> `name.myshopify.com`; a domain stays as given (lowercased); `None` when invalid.
pub fn shop_domain(shop: &str) -> Option<String> {
    let shop = shop
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let valid = !shop.is_empty()
        && shop
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !shop.starts_with(['.', '-']);
    match valid {
        false => None,
        true if shop.contains('.') => Some(shop),
        true => Some(format!("{shop}.myshopify.com")),
    }
}

/// Whether `v` is an Admin API version: `YYYY-MM` or `unstable`.
pub fn is_api_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()))
}

/// The numeric id at the end of a GraphQL global id (`gid://shopify/ProductVariant/42` -> 42),
/// the id webhooks and the REST API use; `None` for anything else.
pub fn legacy_id(gid: &str) -> Option<u64> {
    gid.strip_prefix("gid://shopify/")?
        .rsplit_once('/')?
        .1
        .split('?')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_names_become_myshopify_domains() {
        assert_eq!(shop_domain("acme").as_deref(), Some("acme.myshopify.com"));
        assert_eq!(
            shop_domain("https://Acme.myshopify.com/").as_deref(),
            Some("acme.myshopify.com")
        );
        assert_eq!(shop_domain("acme/../x"), None);
        assert_eq!(shop_domain(""), None);
    }

    #[test]
    fn accepts_dated_and_unstable_versions_only() {
        assert!(is_api_version("2026-07"));
        assert!(is_api_version("unstable"));
        assert!(!is_api_version("2026-7"));
        assert!(!is_api_version("latest"));
    }

    #[test]
    fn global_ids_give_their_numeric_tail() {
        assert_eq!(legacy_id("gid://shopify/ProductVariant/42"), Some(42));
        assert_eq!(legacy_id("gid://shopify/Product/7?x=1"), Some(7));
        assert_eq!(legacy_id("gid://shopify/Product/"), None);
        assert_eq!(legacy_id("42"), None);
    }
}
