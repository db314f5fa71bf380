//! The shop's webhook subscriptions: listing them (the watch, doctor, `pinrelay subscribe`) and
//! creating one (`pinrelay subscribe`), as `uri` from API 2025-10 and as `callbackUrl` before.

use serde::Deserialize;
use serde_json::json;

use super::orders::Page;
use super::transport::{AdminApi, AdminError};

/// The first API version whose webhook subscriptions take `uri` instead of `callbackUrl`.
pub const URI_SINCE: &str = "2025-10";

/// Lists webhook subscriptions (API 2025-10 and later).
pub const LIST_QUERY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }";

/// Lists webhook subscriptions (API versions before 2025-10).
pub const LIST_QUERY_LEGACY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } \
pageInfo { hasNextPage endCursor } } }";

/// Creates one webhook subscription; `webhookSubscription` is `{uri}` (or `{callbackUrl, format}`
/// before 2025-10).
pub const CREATE_MUTATION: &str = "mutation pinrelayWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, \
$webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, \
webhookSubscription: $webhookSubscription) { webhookSubscription { id topic } userErrors { field message } } }";

/// One webhook subscription of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// The subscription's GraphQL id.
    pub id: String,
    /// The topic as a GraphQL enum (`ORDERS_CREATE`).
    pub topic: String,
    /// Where it delivers: `uri`, or the HTTP `callbackUrl` before 2025-10 (`None` for other
    /// endpoint kinds).
    pub uri: Option<String>,
}

/// What [`AdminApi::create_webhook_subscription`] got from Shopify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionCreated {
    /// Created, with this id.
    Created(String),
    /// Refused, with Shopify's `userErrors` (`field.path: message`).
    Refused(Vec<String>),
}

impl AdminApi {
    /// Whether this API version's webhook subscriptions take `uri` (else `callbackUrl`).
    pub fn uses_uri(&self) -> bool {
        self.version() >= URI_SINCE
    }

    /// Every webhook subscription of the shop, page by page.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>, AdminError> {
        let query = if self.uses_uri() {
            LIST_QUERY
        } else {
            LIST_QUERY_LEGACY
        };
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let data: ListData = self
                .query(query, json!({ "after": after }), "webhookSubscriptions")
                .await?;
            let page = data.webhook_subscriptions;
            all.extend(page.nodes.into_iter().map(|n| WebhookSubscription {
                id: n.id,
                topic: n.topic,
                uri: n.uri.or(n.endpoint.and_then(|e| e.callback_url)),
            }));
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// Subscribes `topic` (`orders/create` or `ORDERS_CREATE`) to `uri`, as `uri` from 2025-10
    /// and as a JSON `callbackUrl` before.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`]; Shopify's `userErrors` are [`SubscriptionCreated::Refused`].
    pub async fn create_webhook_subscription(
        &self,
        topic: &str,
        uri: &str,
    ) -> Result<SubscriptionCreated, AdminError> {
        let subscription = if self.uses_uri() {
            json!({ "uri": uri })
        } else {
            json!({ "callbackUrl": uri, "format": "JSON" })
        };
        let variables = json!({ "topic": topic_enum(topic), "webhookSubscription": subscription });
        let data: CreateData = self
            .query(CREATE_MUTATION, variables, "webhookSubscriptionCreate")
            .await?;
        let payload = data.webhook_subscription_create;
        if !payload.user_errors.is_empty() {
            return Ok(SubscriptionCreated::Refused(
                payload
                    .user_errors
                    .into_iter()
                    .map(|e| match e.field {
                        Some(field) if !field.is_empty() => {
                            format!("{}: {}", field.join("."), e.message)
                        }
                        _ => e.message,
                    })
                    .collect(),
            ));
        }
        Ok(match payload.webhook_subscription {
            Some(created) => SubscriptionCreated::Created(created.id),
            None => SubscriptionCreated::Refused(vec![
                "Shopify returned neither a subscription nor an error".to_owned(),
            ]),
        })
    }
}

/// `orders/create` -> `ORDERS_CREATE` (a GraphQL `WebhookSubscriptionTopic`).
pub fn topic_enum(topic: &str) -> String {
    topic.replace(['/', '.'], "_").to_ascii_uppercase()
}

/// `data` of [`LIST_QUERY`] and [`LIST_QUERY_LEGACY`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListData {
    webhook_subscriptions: Page<SubscriptionNode>,
}

#[derive(Deserialize)]
struct SubscriptionNode {
    id: String,
    topic: String,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    endpoint: Option<Endpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    callback_url: Option<String>,
}

/// `data` of [`CREATE_MUTATION`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateData {
    webhook_subscription_create: CreatePayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePayload {
    webhook_subscription: Option<Created>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn topics_become_graphql_enums() {
        assert_eq!(topic_enum("orders/create"), "ORDERS_CREATE");
        assert_eq!(topic_enum("ORDERS_CREATE"), "ORDERS_CREATE");
        assert_eq!(
            topic_enum("customers/data_request"),
            "CUSTOMERS_DATA_REQUEST"
        );
    }

    #[test]
    fn unstable_and_2025_10_use_uri_subscriptions() {
        let api = |v| AdminApi::new("acme", SecretString::from("t"), v, None).unwrap();
        assert!(api("unstable").uses_uri());
        assert!(api("2025-10").uses_uri());
        assert!(!api("2025-07").uses_uri());
    }
}
