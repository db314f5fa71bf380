//! `pinrelay subscribe`: subscribes a store's webhooks to the relay through the GraphQL Admin API.
//!
//! It lists the shop's existing subscriptions first and creates only the missing ones, so running
//! it again changes nothing. From API version 2025-10 a subscription has a `uri`; older versions
//! use an HTTP endpoint's `callbackUrl`, and both are supported. The compliance topics cannot be
//! subscribed this way (Shopify only takes them from the app configuration): they are reported and
//! pointed to `infra/shopify.app.toml`.
//!
//! Exit codes: 0 when every requested subscription exists afterwards (or would, with `--dry-run`),
//! 1 when Shopify refused one (its `userErrors` are printed) or the request failed, 2 for invalid
//! arguments.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

/// Topics subscribed when `--topics` is not given.
pub const DEFAULT_TOPICS: &[&str] = &["orders/create", "orders/paid", "customers/create"];

/// Topics Shopify only accepts through the app configuration (`compliance_topics`).
pub const COMPLIANCE_TOPICS: &[&str] =
    &["customers/data_request", "customers/redact", "shop/redact"];

/// The first API version whose subscriptions take `uri` instead of `callbackUrl`.
const URI_SINCE: &str = "2025-10";

/// Arguments of `pinrelay subscribe`.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// An Admin API access token of the app (needs read_orders and read_customers).
    #[arg(long, env = "SHOPIFY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// The relay's webhook URL: the stack's WebhookUrl output, ending in /webhooks/shopify.
    #[arg(long)]
    pub address: String,
    /// Comma-separated webhook topics.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_TOPICS.iter().map(|t| t.to_string()))]
    pub topics: Vec<String>,
    /// Admin API version (YYYY-MM).
    #[arg(long, default_value = "2026-07")]
    pub api_version: String,
    /// List what exists and what would be created, without creating anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Base URL of the Admin API instead of https://{shop} (tests).
    #[arg(long, hide = true)]
    pub admin_url_base: Option<String>,
}

/// Lists subscriptions (API 2025-10 and later).
pub const LIST_QUERY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }";

/// Lists subscriptions (API versions before 2025-10).
pub const LIST_QUERY_LEGACY: &str = "query pinrelayWebhookSubscriptions($after: String) { \
webhookSubscriptions(first: 250, after: $after) { nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } \
pageInfo { hasNextPage endCursor } } }";

/// Creates one subscription; `webhookSubscription` is `{uri}` (or `{callbackUrl, format}` before
/// 2025-10).
pub const CREATE_MUTATION: &str = "mutation pinrelayWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, \
$webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, \
webhookSubscription: $webhookSubscription) { webhookSubscription { id topic } userErrors { field message } } }";

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created(String),
    WouldCreate,
    AlreadyPresent(String),
    Compliance,
    Failed(Vec<String>),
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shop = match shop_domain(&args.shop) {
        Some(shop) => shop,
        None => {
            eprintln!(
                "error: --shop {:?} is not a shop name or a name.myshopify.com domain",
                args.shop
            );
            return Ok(ExitCode::from(2));
        }
    };
    if !args.address.starts_with("https://") {
        eprintln!(
            "error: --address must be an https:// URL (Shopify delivers webhooks over HTTPS only): use the stack's WebhookUrl output"
        );
        return Ok(ExitCode::from(2));
    }
    if !is_version(&args.api_version) {
        eprintln!(
            "error: --api-version {:?} is not YYYY-MM or unstable",
            args.api_version
        );
        return Ok(ExitCode::from(2));
    }
    let topics: Vec<String> = args
        .topics
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let base = args
        .admin_url_base
        .clone()
        .unwrap_or_else(|| format!("https://{shop}"));
    let admin = Admin {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pinrelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?,
        url: format!(
            "{}/admin/api/{}/graphql.json",
            base.trim_end_matches('/'),
            args.api_version
        ),
        token: args.admin_token.clone(),
        uses_uri: args.api_version.as_str() >= URI_SINCE,
    };

    let existing = admin.list().await?;
    let address = normalize(&args.address);
    let mut outcomes = Vec::new();
    for topic in &topics {
        let outcome = if COMPLIANCE_TOPICS.contains(&topic.as_str()) {
            Outcome::Compliance
        } else if let Some(id) = existing
            .iter()
            .find(|s| {
                s.topic == topic_enum(topic) && s.address.as_deref().map(normalize) == Some(address)
            })
            .map(|s| s.id.clone())
        {
            Outcome::AlreadyPresent(id)
        } else if args.dry_run {
            Outcome::WouldCreate
        } else {
            admin.create(topic, &args.address).await?
        };
        outcomes.push((topic.clone(), outcome));
    }
    Ok(report(&shop, &args.address, &outcomes))
}

/// Prints one line per topic and a summary; returns the exit code.
fn report(shop: &str, address: &str, outcomes: &[(String, Outcome)]) -> ExitCode {
    println!("{shop} -> {address}");
    let width = outcomes.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    let (mut created, mut present, mut failed) = (0, 0, 0);
    for (topic, outcome) in outcomes {
        let line = match outcome {
            Outcome::Created(id) => {
                created += 1;
                format!("created          {id}")
            }
            Outcome::WouldCreate => {
                created += 1;
                "would create     (dry run)".to_owned()
            }
            Outcome::AlreadyPresent(id) => {
                present += 1;
                format!("already present  {id}")
            }
            Outcome::Compliance => {
                "not subscribed   compliance topic: set it under compliance_topics in infra/shopify.app.toml (shopify app deploy)".to_owned()
            }
            Outcome::Failed(errors) => {
                failed += 1;
                format!("failed           {}", errors.join("; "))
            }
        };
        println!("  {topic:<width$}  {line}");
    }
    let verb = if outcomes.iter().any(|(_, o)| *o == Outcome::WouldCreate) {
        "would create"
    } else {
        "created"
    };
    println!("{verb} {created}, already present {present}, failed {failed}");
    if !outcomes.iter().any(|(_, o)| *o == Outcome::Compliance) {
        eprintln!(
            "note: the compliance topics ({}) cannot be subscribed through the Admin API; the app must declare them under compliance_topics in its configuration (see infra/shopify.app.toml).",
            COMPLIANCE_TOPICS.join(", ")
        );
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// An existing subscription.
#[derive(Debug, Clone)]
struct Existing {
    id: String,
    topic: String,
    address: Option<String>,
}

struct Admin {
    client: reqwest::Client,
    url: String,
    token: String,
    uses_uri: bool,
}

#[derive(Deserialize)]
struct GraphQlResponse {
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Deserialize)]
struct GraphQlError {
    message: String,
}

#[derive(Deserialize)]
struct Page {
    nodes: Vec<Node>,
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    topic: String,
    uri: Option<String>,
    endpoint: Option<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    #[serde(rename = "callbackUrl")]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(rename = "hasNextPage")]
    has_next_page: bool,
    #[serde(rename = "endCursor")]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct CreatePayload {
    #[serde(rename = "webhookSubscription")]
    webhook_subscription: Option<Created>,
    #[serde(rename = "userErrors", default)]
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

impl Admin {
    /// Every subscription of the shop, page by page.
    async fn list(&self) -> anyhow::Result<Vec<Existing>> {
        let query = if self.uses_uri {
            LIST_QUERY
        } else {
            LIST_QUERY_LEGACY
        };
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let data = self.call(query, json!({ "after": after })).await?;
            let page: Page = serde_json::from_value(data["webhookSubscriptions"].clone())
                .context("Shopify's webhookSubscriptions answer has an unexpected shape")?;
            all.extend(page.nodes.into_iter().map(|n| Existing {
                id: n.id,
                topic: n.topic,
                address: n.uri.or(n.endpoint.and_then(|e| e.callback_url)),
            }));
            match (page.page_info.has_next_page, page.page_info.end_cursor) {
                (true, Some(cursor)) => after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    /// Creates one subscription; Shopify's `userErrors` become [`Outcome::Failed`].
    async fn create(&self, topic: &str, address: &str) -> anyhow::Result<Outcome> {
        let subscription = if self.uses_uri {
            json!({ "uri": address })
        } else {
            json!({ "callbackUrl": address, "format": "JSON" })
        };
        let variables = json!({ "topic": topic_enum(topic), "webhookSubscription": subscription });
        let data = self.call(CREATE_MUTATION, variables).await?;
        let payload: CreatePayload =
            serde_json::from_value(data["webhookSubscriptionCreate"].clone())
                .context("Shopify's webhookSubscriptionCreate answer has an unexpected shape")?;
        if !payload.user_errors.is_empty() {
            return Ok(Outcome::Failed(
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
        match payload.webhook_subscription {
            Some(created) => Ok(Outcome::Created(created.id)),
            None => Ok(Outcome::Failed(vec![
                "Shopify returned neither a subscription nor an error".to_owned(),
            ])),
        }
    }

    /// One GraphQL request; HTTP and top-level GraphQL errors are errors.
    async fn call(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(&self.url)
            .header("X-Shopify-Access-Token", &self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .with_context(|| format!("cannot reach the Admin API at {}", self.url))?;
        let status = response.status();
        match status.as_u16() {
            401 => bail!(
                "Shopify refused the admin token (401): use an Admin API access token of the app installed on this shop"
            ),
            402 => bail!("the shop is frozen or unpaid (402)"),
            403 => bail!(
                "the admin token lacks a scope (403): the app needs read_orders and read_customers"
            ),
            404 => bail!(
                "no Admin API at {} (404): check --shop and --api-version",
                self.url
            ),
            _ if !status.is_success() => bail!("the Admin API answered {status}"),
            _ => {}
        }
        let body: GraphQlResponse = response
            .json()
            .await
            .context("the Admin API answer is not GraphQL JSON")?;
        if !body.errors.is_empty() {
            let messages: Vec<_> = body.errors.into_iter().map(|e| e.message).collect();
            bail!("the Admin API refused the request: {}", messages.join("; "));
        }
        body.data.context("the Admin API answer has no data")
    }
}

/// `orders/create` -> `ORDERS_CREATE`.
fn topic_enum(topic: &str) -> String {
    topic.replace(['/', '.'], "_").to_ascii_uppercase()
}

/// Compares addresses without a trailing slash (Shopify removes it).
fn normalize(address: &str) -> &str {
    address.trim_end_matches('/')
}

/// `name` -> `name.myshopify.com`; a domain stays as given (lowercased).
fn shop_domain(shop: &str) -> Option<String> {
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

fn is_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v.as_bytes()[4] == b'-'
            && v.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_become_graphql_enums() {
        assert_eq!(topic_enum("orders/create"), "ORDERS_CREATE");
        assert_eq!(
            topic_enum("customers/data_request"),
            "CUSTOMERS_DATA_REQUEST"
        );
    }

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
        assert!(is_version("2026-07"));
        assert!(is_version("unstable"));
        assert!(!is_version("2026-7"));
        assert!(!is_version("latest"));
    }

    #[test]
    fn unstable_uses_uri_subscriptions() {
        assert!("unstable" >= URI_SINCE);
        assert!("2025-10" >= URI_SINCE);
        assert!("2025-07" < URI_SINCE);
    }
}
