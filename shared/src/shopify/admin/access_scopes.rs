//! The access scopes the app was granted (`currentAppInstallation { accessScopes { handle } }`),
//! and the one list of scopes the relay needs: [`required_scopes`] for the conversion rules, and
//! [`missing_scopes`] between the two. Doctor compares them; nothing here changes a grant.
//!
//! | scope | needed by |
//! |---|---|
//! | `read_orders` | the `orders/create` and `orders/paid` webhooks; reconcile, replay and the watch (`orders`, `orders/{id}.json`); [`AdminApi::recent_line_items`] |
//! | `read_customers` | the `customers/create` webhook; for customer lists, the `customers/delete` and `customers_email_marketing_consent/update` webhooks and the customers read |
//! | `read_products` | only the catalog-id probe: the products and variants of [`AdminApi::recent_line_items`] ([`CATALOG_PROBE_SCOPE`], not in [`required_scopes`]) |
//!
//! Reading the shop (`shop`) and the webhook subscriptions needs no scope. A `write_` scope grants
//! its `read_` scope, so either satisfies it.

use serde::Deserialize;
use serde_json::json;

use super::transport::{AdminApi, AdminError};
use crate::mapping::{CheckoutOn, webhook_topics};

/// Reads the access scopes the app has on this shop.
pub const ACCESS_SCOPES_QUERY: &str =
    "query pinrelayAccessScopes { currentAppInstallation { accessScopes { handle } } }";

/// The scope the catalog-id probe needs on top of [`required_scopes`]: `LineItem.product` and
/// `LineItem.variant` are `Product` and `ProductVariant` objects.
pub const CATALOG_PROBE_SCOPE: &str = "read_products";

/// What reconcile, replay and the watch read, besides the webhook topics.
const ORDER_READS: &str = "reconcile, replay and the watch (orders)";

/// One access scope the relay needs, and what needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredScope {
    /// The scope's handle (`read_orders`).
    pub handle: &'static str,
    /// What needs it, in words a merchant reads (`the orders/create webhook`).
    pub needed_for: Vec<String>,
}

/// The scope a webhook topic needs (`orders/paid` -> `read_orders`); `None` for topics that need
/// none the relay knows of.
pub fn topic_scope(topic: &str) -> Option<&'static str> {
    match topic.split_once('/')?.0 {
        "orders" => Some("read_orders"),
        // The consent topics are named `customers_…_consent/update`, not `customers/…`.
        "customers" | "customers_email_marketing_consent" | "customers_marketing_consent" => {
            Some("read_customers")
        }
        "products" => Some("read_products"),
        "checkouts" => Some("read_checkouts"),
        _ => None,
    }
}

/// The scopes the relay needs under `checkout_on`: each of its webhook topics'
/// ([`webhook_topics`]) and `read_orders` for reconcile, replay and the watch; one entry per
/// scope, in the order first needed.
pub fn required_scopes(checkout_on: CheckoutOn) -> Vec<RequiredScope> {
    let mut needs: Vec<(&'static str, String)> = webhook_topics(checkout_on)
        .iter()
        .filter_map(|topic| Some((topic_scope(topic)?, format!("the {topic} webhook"))))
        .collect();
    needs.push(("read_orders", ORDER_READS.to_owned()));
    let mut scopes: Vec<RequiredScope> = Vec::new();
    for (handle, why) in needs {
        match scopes.iter_mut().find(|s| s.handle == handle) {
            Some(scope) => scope.needed_for.push(why),
            None => scopes.push(RequiredScope {
                handle,
                needed_for: vec![why],
            }),
        }
    }
    scopes
}

/// The scopes of `required` that `granted` (handles, as [`AdminApi::access_scopes`] gives them)
/// does not cover; `write_x` covers `read_x`.
pub fn missing_scopes(granted: &[String], required: &[RequiredScope]) -> Vec<RequiredScope> {
    let covers = |handle: &str| {
        granted.iter().any(|g| {
            g == handle
                || handle
                    .strip_prefix("read_")
                    .is_some_and(|rest| g.strip_prefix("write_") == Some(rest))
        })
    };
    required
        .iter()
        .filter(|scope| !covers(scope.handle))
        .cloned()
        .collect()
}

/// `data` of [`ACCESS_SCOPES_QUERY`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    current_app_installation: AppInstallation,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppInstallation {
    access_scopes: Vec<AccessScope>,
}

#[derive(Deserialize)]
struct AccessScope {
    handle: String,
}

impl AdminApi {
    /// The handles of the access scopes the app has on this shop (`read_orders`, ...), as Shopify
    /// lists them.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn access_scopes(&self) -> Result<Vec<String>, AdminError> {
        let data: Data = self
            .query(ACCESS_SCOPES_QUERY, json!({}), "currentAppInstallation")
            .await?;
        Ok(data
            .current_app_installation
            .access_scopes
            .into_iter()
            .map(|s| s.handle)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles(scopes: &[RequiredScope]) -> Vec<&str> {
        scopes.iter().map(|s| s.handle).collect()
    }

    #[test]
    fn the_rules_need_orders_and_customers_once_each() {
        for checkout_on in [CheckoutOn::Created, CheckoutOn::Paid] {
            let scopes = required_scopes(checkout_on);
            assert_eq!(handles(&scopes), ["read_orders", "read_customers"]);
            assert!(
                scopes[0]
                    .needed_for
                    .contains(&"the orders/create webhook".to_owned())
            );
            assert!(scopes[0].needed_for.contains(&ORDER_READS.to_owned()));
        }
        let paid = required_scopes(CheckoutOn::Paid);
        assert!(
            paid[0]
                .needed_for
                .contains(&"the orders/paid webhook".to_owned())
        );
    }

    #[test]
    fn missing_scopes_are_those_neither_granted_nor_written() {
        let required = required_scopes(CheckoutOn::Created);
        let granted = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            handles(&missing_scopes(&granted(&["read_orders"]), &required)),
            ["read_customers"]
        );
        assert!(
            missing_scopes(&granted(&["write_orders", "write_customers"]), &required).is_empty()
        );
        assert_eq!(
            handles(&missing_scopes(&granted(&["read_all_orders"]), &required)),
            ["read_orders", "read_customers"]
        );
    }

    #[test]
    fn topics_map_to_their_read_scope() {
        assert_eq!(topic_scope("orders/paid"), Some("read_orders"));
        assert_eq!(topic_scope("customers/create"), Some("read_customers"));
        assert_eq!(
            topic_scope("customers_email_marketing_consent/update"),
            Some("read_customers")
        );
        assert_eq!(topic_scope("app/uninstalled"), None);
        assert_eq!(topic_scope("nonsense"), None);
    }
}
