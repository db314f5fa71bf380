//! `pinrelay translate`: prints the Pinterest request body a Shopify webhook body becomes, with the
//! relay's own mapping ([`pinrelay::mapping::translate`]). Nothing is sent anywhere.
//!
//! Exit codes: 0 the body is printed on stdout; 3 the webhook is skipped (reason on stderr); 2 the
//! input or the options are invalid (one-line error on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use pinrelay::config;
use pinrelay::mapping::{self, ComplianceRequest, Outcome};
use pinrelay::pinterest::EventBatch;
use pinrelay::shopify::WebhookMetadata;

/// Exit code of a skipped webhook.
const SKIPPED: u8 = 3;
/// Exit code of invalid input or options.
const INVALID: u8 = 2;

/// Arguments of `pinrelay translate`.
///
/// Mapping options come from the same environment variables as the relay (`EVENT_ID_TEMPLATE`,
/// `STORE_URL`, `INCLUDE_TEST_ORDERS`, `SEND_POS_ORDERS`, `ORDER_SOURCES`, `VALUE_SOURCE`, `CONTENT_ID`,
/// `DEFAULT_COUNTRY`); the flags
/// below override them.
#[derive(clap::Args)]
pub struct Args {
    /// The webhook topic, as in X-Shopify-Topic (`orders/create`) or GraphQL form (`ORDERS_CREATE`).
    #[arg(long)]
    pub topic: String,
    /// The shop's myshopify domain; `event_source_url` is `https://{shop}/` unless STORE_URL is set.
    #[arg(long, default_value = "example.myshopify.com")]
    pub shop: String,
    /// Translate orders marked `test: true` instead of skipping them.
    #[arg(long)]
    pub include_test_orders: bool,
    /// Send point-of-sale orders as `offline` events instead of skipping them.
    #[arg(long)]
    pub send_pos_orders: bool,
    /// The `event_source_url` (overrides STORE_URL).
    #[arg(long)]
    pub store_url: Option<String>,
    /// The checkout `event_id` template, e.g. `checkout-{order_id}` (overrides EVENT_ID_TEMPLATE).
    #[arg(long)]
    pub event_id_template: Option<String>,
    /// The product id of `content_ids`: `variant`, `sku`, `product` or a template such as
    /// `shopify_{country}_{product_id}_{variant_id}` (overrides CONTENT_ID).
    #[arg(long)]
    pub content_id: Option<String>,
    /// The catalog feed's country, the `{country}` of a CONTENT_ID template (overrides
    /// CATALOG_COUNTRY).
    #[arg(long)]
    pub catalog_country: Option<String>,
    /// The clock, RFC 3339 (event times in the future are clamped to it); default: now.
    #[arg(long, value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Print the body on one line instead of indented.
    #[arg(long)]
    pub compact: bool,
    /// The webhook body (JSON); standard input when absent.
    pub file: Option<PathBuf>,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-29T08:00:00Z)"))
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match translate(&args) {
        Ok(Translated::Body(json)) => {
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Translated::Skipped(reason)) => {
            eprintln!("skipped: {reason}");
            Ok(ExitCode::from(SKIPPED))
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(INVALID))
        }
    }
}

enum Translated {
    Body(String),
    Skipped(String),
}

/// Everything but printing; an `Err` is the one-line message of an exit-2 failure.
fn translate(args: &Args) -> Result<Translated, String> {
    let mut options = config::mapping_options().map_err(|e| e.to_string())?;
    options.include_test_orders |= args.include_test_orders;
    options.send_pos_orders |= args.send_pos_orders;
    if let Some(url) = &args.store_url {
        options.store_url = Some(url.clone());
    }
    if let Some(template) = &args.event_id_template {
        options.event_id_template = template.clone();
    }
    if let Some(country) = &args.catalog_country {
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic())) {
            return Err(format!(
                "--catalog-country {country:?} is not an ISO 3166-1 alpha-2 country such as US"
            ));
        }
        options.catalog_country = Some(country.to_ascii_uppercase());
    }
    if let Some(content_id) = &args.content_id {
        options.content_id =
            mapping::ContentIdSource::parse(content_id, options.catalog_country.as_deref())
                .map_err(|why| format!("--content-id {content_id:?}: {why}"))?;
    }
    let metadata = WebhookMetadata::from_lookup(|name| match name {
        "topic" => Some(args.topic.clone()),
        "shop-domain" => Some(args.shop.clone()),
        _ => None,
    })
    .map_err(|e| format!("{e} (use --topic and --shop)"))?;
    let body = crate::input::read_body(args.file.as_deref())?;
    let now = args.now.unwrap_or_else(Utc::now);
    let outcome = mapping::translate(&metadata, &body, &options, now).map_err(|e| e.to_string())?;
    match outcome {
        // Without a shopper profile to enrich it, the identity check follows at once, as in dispatch.
        Outcome::Send(conversion) => {
            if let Err(reason) = mapping::require_identity(&conversion.event) {
                return Ok(Translated::Skipped(format!(
                    "{reason} [{}]",
                    reason.label()
                )));
            }
            let batch = EventBatch {
                data: vec![conversion.event],
            };
            let json = if args.compact {
                serde_json::to_string(&batch)
            } else {
                serde_json::to_string_pretty(&batch)
            }
            .map_err(|e| format!("could not serialize the event: {e}"))?;
            Ok(Translated::Body(json))
        }
        Outcome::Skip { reason, .. } => Ok(Translated::Skipped(format!(
            "{reason} [{}]",
            reason.label()
        ))),
        Outcome::Compliance(request) => Ok(Translated::Skipped(format!(
            "{} is {} ({}); the relay acts on it, it is never a Pinterest event [compliance]",
            metadata.topic,
            if metadata.topic.is_compliance() {
                "a mandatory compliance request"
            } else {
                "about the store"
            },
            describe(&request)
        ))),
    }
}

fn describe(request: &ComplianceRequest) -> String {
    match request {
        ComplianceRequest::DataRequest {
            orders_requested, ..
        } => format!("data request for {} order(s)", orders_requested.len()),
        ComplianceRequest::CustomerRedact {
            orders_to_redact, ..
        } => format!(
            "forget the customer and {} order(s)",
            orders_to_redact.len()
        ),
        ComplianceRequest::ShopRedact { shop_domain } => {
            format!("forget everything of {shop_domain}")
        }
        ComplianceRequest::AppUninstalled { shop_domain } => {
            format!("disable the registered store {shop_domain}")
        }
        ComplianceRequest::CustomerDeleted { customer_id, .. } => {
            format!("take customer {customer_id} off the customer lists")
        }
        ComplianceRequest::ConsentChanged { customer_id, .. } => {
            format!("re-check customer {customer_id}'s consent for the customer lists")
        }
    }
}
