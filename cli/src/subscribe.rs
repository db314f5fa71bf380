//! `pinrelay subscribe`: subscribes a store's webhooks to the relay through the GraphQL Admin API.
//!
//! It lists the shop's existing subscriptions first and creates only the missing ones, so running
//! it again changes nothing. From API version 2025-10 a subscription has a `uri`; older versions
//! use an HTTP endpoint's `callbackUrl`, and both are supported. The compliance topics cannot be
//! subscribed this way (Shopify only takes them from the app configuration): they are reported and
//! pointed to `infra/shopify.app.toml`. The Admin API calls (and their throttle and retry
//! handling) are [`pinrelay::shopify::AdminApi`]'s.
//!
//! Exit codes: 0 when every requested subscription exists afterwards (or would, with `--dry-run`),
//! 1 when Shopify refused one (its `userErrors` are printed) or the request failed, 2 for invalid
//! arguments.

use std::process::ExitCode;

use pinrelay::shopify::admin::{AdminCredentials, is_api_version, shop_domain, topic_enum};
use pinrelay::shopify::{AdminApi, SubscriptionCreated};

/// Topics Shopify only accepts through the app configuration (`compliance_topics`).
pub const COMPLIANCE_TOPICS: &[&str] =
    &["customers/data_request", "customers/redact", "shop/redact"];

/// Arguments of `pinrelay subscribe`.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// The relay's webhook URL: the stack's WebhookUrl output, ending in /webhooks/shopify.
    #[arg(long)]
    pub address: String,
    /// Comma-separated webhook topics; by default the ones the conversion rules need
    /// (orders/create and customers/create, and orders/paid with --checkout-on paid), and
    /// app/uninstalled (which disables a registered store). For customer lists (`audiences
    /// sync`, `read_customers`) add customers/delete and customers_email_marketing_consent/update.
    #[arg(long, value_delimiter = ',')]
    pub topics: Vec<String>,
    /// When a purchase counts, as the relay's CHECKOUT_ON: created or paid (decides the default
    /// topics).
    #[arg(long, env = "CHECKOUT_ON", default_value = "created", value_parser = ["created", "paid"])]
    pub checkout_on: String,
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

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Created(String),
    WouldCreate,
    AlreadyPresent(String),
    Compliance,
    Failed(Vec<String>),
}

/// Runs the command with the credentials from `SHOPIFY_ADMIN_TOKEN`, or `SHOPIFY_CLIENT_ID` and
/// `SHOPIFY_CLIENT_SECRET`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let credentials = match crate::input::admin_credentials(
        "the app's Admin API access token (read_orders, read_customers)",
    ) {
        Ok(credentials) => credentials,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    run_with_credentials(&args, credentials).await
}

/// Runs the command with `credentials`.
pub async fn run_with_credentials(
    args: &Args,
    credentials: AdminCredentials,
) -> anyhow::Result<ExitCode> {
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
    if !is_api_version(&args.api_version) {
        eprintln!(
            "error: --api-version {:?} is not YYYY-MM or unstable",
            args.api_version
        );
        return Ok(ExitCode::from(2));
    }
    let checkout_on = if args.checkout_on == "paid" {
        pinrelay::mapping::CheckoutOn::Paid
    } else {
        pinrelay::mapping::CheckoutOn::Created
    };
    let requested = if args.topics.is_empty() {
        pinrelay::mapping::webhook_topics(checkout_on)
            .iter()
            .chain(&[pinrelay::mapping::UNINSTALL_TOPIC])
            .map(|t| (*t).to_owned())
            .collect()
    } else {
        args.topics.clone()
    };
    let topics: Vec<String> = requested
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let admin = AdminApi::new(
        &shop,
        credentials,
        &args.api_version,
        args.admin_url_base.as_deref(),
    )?;

    let existing = admin.webhook_subscriptions().await?;
    let address = normalize(&args.address);
    let mut outcomes = Vec::new();
    for topic in &topics {
        let outcome = if COMPLIANCE_TOPICS.contains(&topic.as_str()) {
            Outcome::Compliance
        } else if let Some(id) = existing
            .iter()
            .find(|s| {
                s.topic == topic_enum(topic) && s.uri.as_deref().map(normalize) == Some(address)
            })
            .map(|s| s.id.clone())
        {
            Outcome::AlreadyPresent(id)
        } else if args.dry_run {
            Outcome::WouldCreate
        } else {
            match admin
                .create_webhook_subscription(topic, &args.address)
                .await?
            {
                SubscriptionCreated::Created(id) => Outcome::Created(id),
                SubscriptionCreated::Refused(errors) => Outcome::Failed(errors),
            }
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

/// Compares addresses without a trailing slash (Shopify removes it).
fn normalize(address: &str) -> &str {
    address.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_a_trailing_slash() {
        assert_eq!(
            normalize("https://relay.example/webhooks/shopify/"),
            "https://relay.example/webhooks/shopify"
        );
    }
}
