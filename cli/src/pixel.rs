//! `pinrelay pixel`: prints the storefront custom pixel with its configuration filled in from the
//! relay's own settings (a stack's outputs and parameters, or serve's variables), so nothing is
//! edited by hand and the pixel cannot disagree with the relay.

use std::collections::HashMap;
use std::process::ExitCode;

use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::shopify::admin::shop_domain;

use crate::stack::Stack;
use pinrelay::dynamodb::Table;
use pinrelay::registry::Registry as _;
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::sqlite::SqliteRegistry;

/// The pixel as published in `infra/shopify/custom-pixel.js`.
const PIXEL: &str = include_str!("../../infra/shopify/custom-pixel.js");

/// The relay's settings the pixel must agree with.
const PIXEL_VARIABLES: [&str; 6] = [
    keys::EVENT_ID_TEMPLATE,
    keys::CONTENT_ID,
    keys::CATALOG_COUNTRY,
    keys::CHECKOUT_EVENT_ID,
    keys::CHECKOUT_ON,
    keys::VALUE_SOURCE,
];

/// Arguments of `pinrelay pixel`.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// The Pinterest Tag id (Ads Manager, Conversions, Tag manager): public, it is in every page.
    #[arg(long)]
    pub tag_id: String,
    /// A deployed stack: its WebhookUrl output and parameters; without it, serve's variables
    /// (WEBHOOK_URL and the conversion settings).
    #[arg(long, conflicts_with = "data_dir")]
    pub stack: Option<String>,
    /// serve's data directory: a store registered there (`pinrelay shops add`) brings its own
    /// settings.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match render(&args).await? {
        Ok(pixel) => {
            print!("{pixel}");
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The configured pixel, or the one-line reason it cannot be made.
///
/// # Errors
/// The stack cannot be read.
pub async fn render(args: &Args) -> anyhow::Result<Result<String, String>> {
    let Some(shop) = shop_domain(&args.shop) else {
        return Ok(Err(format!(
            "--shop {:?} is not a shop name or a name.myshopify.com domain",
            args.shop
        )));
    };
    let (webhook_url, mut settings, store) = match &args.stack {
        Some(name) => {
            let sdk = aws::load(Budget::CLI).await;
            let stack = Stack::describe(&sdk, name).await?;
            let store = match (
                stack.output("IdempotencyTableName"),
                stack.output("ShopSecretsPrefix"),
            ) {
                (Some(table), Some(prefix)) => {
                    AwsRegistry::new(
                        Table::new(aws_sdk_dynamodb::Client::new(&sdk), table),
                        aws_sdk_secretsmanager::Client::new(&sdk),
                        prefix,
                    )
                    .get(&shop)
                    .await?
                }
                _ => None,
            };
            (
                stack.output("WebhookUrl"),
                stack.variables(&PIXEL_VARIABLES),
                store,
            )
        }
        None => (
            config::var(keys::WEBHOOK_URL),
            PIXEL_VARIABLES
                .iter()
                .filter_map(|variable| Some(((*variable).to_owned(), config::var(variable)?)))
                .collect(),
            match &args.data_dir {
                Some(dir) => {
                    SqliteRegistry::new(crate::local::open_existing_db(dir)?)
                        .get(&shop)
                        .await?
                }
                None => None,
            },
        ),
    };
    // A registered store's own settings over the relay's.
    if let Some(store) = &store {
        for key in PIXEL_VARIABLES {
            if let Some(value) = store.setting(key, &|_| None) {
                settings.insert(key.to_owned(), value);
            }
        }
    }
    let Some(webhook_url) = webhook_url else {
        return Ok(Err(
            "the relay's public URL is unknown: set WEBHOOK_URL (serve) or pass --stack".to_owned(),
        ));
    };
    Ok(configured(&args.tag_id, &shop, &webhook_url, &settings))
}

/// The pixel with every configuration line set: the browser endpoint beside `webhook_url`, the
/// shop, the Tag id, and the relay's settings (their defaults where unset).
///
/// # Errors
/// A one-line message: a Tag id that is not digits, a webhook URL not ending in
/// `/webhooks/shopify`, an `EVENT_ID_TEMPLATE` the browser cannot reproduce, or a pixel without
/// one of its configuration lines.
pub fn configured(
    tag_id: &str,
    shop: &str,
    webhook_url: &str,
    settings: &HashMap<String, String>,
) -> Result<String, String> {
    if tag_id.is_empty() || !tag_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "--tag-id {tag_id:?} is not a Pinterest Tag id (digits, from Ads Manager, Conversions, Tag manager)"
        ));
    }
    let base = webhook_url
        .trim_end_matches('/')
        .strip_suffix("/webhooks/shopify")
        .ok_or_else(|| {
            format!("{webhook_url} is not the relay's webhook URL (…/webhooks/shopify)")
        })?;
    let setting = |key: &str, default: &str| {
        settings
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let template = setting(keys::EVENT_ID_TEMPLATE, "{order_id}");
    if template.contains("{order_name}") {
        return Err(format!(
            "EVENT_ID_TEMPLATE {template:?} uses {{order_name}}, which the browser does not have: the Tag's checkout could not share its event_id; use {{order_id}}"
        ));
    }
    let lines = [
        ("PINTEREST_TAG_ID", tag_id.to_owned()),
        ("RELAY_URL", format!("{base}/events/browser")),
        ("SHOP_DOMAIN", shop.to_owned()),
        ("CHECKOUT_EVENT_ID_TEMPLATE", template),
        ("CONTENT_ID", setting(keys::CONTENT_ID, "variant")),
        ("CATALOG_COUNTRY", setting(keys::CATALOG_COUNTRY, "")),
        (
            "CHECKOUT_EVENT_ID",
            setting(keys::CHECKOUT_EVENT_ID, "order_id"),
        ),
        ("CHECKOUT_ON", setting(keys::CHECKOUT_ON, "created")),
        ("VALUE_SOURCE", setting(keys::VALUE_SOURCE, "subtotal")),
    ];
    let mut pixel = String::with_capacity(PIXEL.len());
    let mut set = Vec::new();
    for line in PIXEL.split_inclusive('\n') {
        let name = line
            .strip_prefix("var ")
            .and_then(|rest| rest.split_once(" = "))
            .map(|(name, _)| name);
        match lines.iter().find(|(n, _)| Some(*n) == name) {
            Some((name, value)) if !set.contains(name) => {
                // A JSON string is a JavaScript string literal.
                let literal = serde_json::to_string(value).map_err(|e| e.to_string())?;
                pixel.push_str(&format!("var {name} = {literal};\n"));
                set.push(*name);
            }
            _ => pixel.push_str(line),
        }
    }
    if let Some((missing, _)) = lines.iter().find(|(n, _)| !set.contains(n)) {
        return Err(format!("the pixel has no configuration line for {missing}"));
    }
    Ok(pixel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://abc.lambda-url.us-east-1.on.aws/webhooks/shopify";

    fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_configuration_line_is_filled_and_no_placeholder_is_left() {
        let settings = settings(&[
            (
                keys::CONTENT_ID,
                "shopify_{country}_{product_id}_{variant_id}",
            ),
            (keys::CATALOG_COUNTRY, "US"),
            (keys::CHECKOUT_ON, "paid"),
        ]);
        let pixel = configured("2612345678901", "acme.myshopify.com", URL, &settings).unwrap();
        for line in [
            "var PINTEREST_TAG_ID = \"2612345678901\";",
            "var RELAY_URL = \"https://abc.lambda-url.us-east-1.on.aws/events/browser\";",
            "var SHOP_DOMAIN = \"acme.myshopify.com\";",
            "var CHECKOUT_EVENT_ID_TEMPLATE = \"{order_id}\";",
            "var CONTENT_ID = \"shopify_{country}_{product_id}_{variant_id}\";",
            "var CATALOG_COUNTRY = \"US\";",
            "var CHECKOUT_EVENT_ID = \"order_id\";",
            "var CHECKOUT_ON = \"paid\";",
            "var VALUE_SOURCE = \"subtotal\";",
        ] {
            assert!(pixel.lines().any(|l| l == line), "missing {line}");
        }
        assert!(!pixel.contains("YOUR_PINTEREST_TAG_ID"));
        assert!(!pixel.contains("xxxx.lambda-url"));
        // Only the configuration lines change.
        assert_eq!(pixel.lines().count(), PIXEL.lines().count());
    }

    #[test]
    fn values_are_escaped_as_string_literals() {
        let settings = settings(&[(keys::CONTENT_ID, "a'b\"c\\{sku}")]);
        let pixel = configured("1", "acme.myshopify.com", URL, &settings).unwrap();
        assert!(pixel.contains(r#"var CONTENT_ID = "a'b\"c\\{sku}";"#));
    }

    #[test]
    fn refuses_what_the_browser_cannot_match() {
        let none = HashMap::new();
        assert!(configured("abc", "acme.myshopify.com", URL, &none).is_err());
        assert!(configured("1", "acme.myshopify.com", "https://x.example/other", &none).is_err());
        let name = settings(&[(keys::EVENT_ID_TEMPLATE, "{order_name}")]);
        let err = configured("1", "acme.myshopify.com", URL, &name).unwrap_err();
        assert!(err.contains("{order_name}"), "{err}");
    }
}
