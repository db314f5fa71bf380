//! `pinrelay connect`: once after `sam deploy`, fills the stack's secrets (hidden prompts, or
//! variables, or standard input for automation; never flags), subscribes the store's webhooks,
//! writes the configured custom pixel, and ends with `doctor`.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::doctor::is_placeholder;
use secrecy::{ExposeSecret as _, SecretString};

use crate::stack::Stack;

/// Arguments of `pinrelay connect`.
#[derive(clap::Args)]
pub struct Args {
    /// The deployed stack.
    #[arg(long)]
    pub stack: String,
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// The Pinterest Tag id, to write the configured custom pixel.
    #[arg(long)]
    pub tag_id: Option<String>,
    /// Where to write the custom pixel.
    #[arg(long, default_value = "pinrelay-pixel.js")]
    pub pixel_out: PathBuf,
    /// Where the Shopify and Pinterest APIs are (tests point them at fakes).
    #[command(flatten)]
    pub endpoints: crate::input::Endpoints,
}

/// The stack's secrets, in the order `connect` asks for them (and reads standard input's lines).
const SECRETS: [(&str, &str, &str); 3] = [
    (
        "ShopifyWebhookSecret",
        keys::SHOPIFY_WEBHOOK_SECRETS,
        "Shopify app client secret",
    ),
    (
        "PinterestAccessTokenSecret",
        keys::PINTEREST_ACCESS_TOKEN,
        "Pinterest conversion access token",
    ),
    (
        "ShopifyAdminTokenSecret",
        keys::SHOPIFY_ADMIN_TOKEN,
        "Shopify Admin API access token",
    ),
];

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, &args.stack).await?;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let interactive = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    let mut admin_token = None;
    for (output, variable, what) in SECRETS {
        let arn = stack.output(output).with_context(|| {
            format!(
                "stack {} has no {output} output; is it a pinrelay stack?",
                args.stack
            )
        })?;
        let given = match config::var(variable) {
            Some(value) => Some(value),
            None if interactive => {
                let prompt = format!("{what} (hidden; Enter keeps the current value): ");
                let term = console::Term::stderr();
                term.write_str(&prompt)?;
                Some(term.read_secure_line()?)
            }
            None => lines.next().transpose()?,
        }
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
        match given {
            Some(value) if is_placeholder(&value) => {
                anyhow::bail!("the {what} given is a placeholder; nothing was stored for {output}")
            }
            Some(value) => {
                client
                    .put_secret_value()
                    .secret_id(&arn)
                    .secret_string(&value)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot store {output} (check the credentials allow secretsmanager:PutSecretValue): {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                        )
                    })?;
                eprintln!("stored   {output}");
                if variable == keys::SHOPIFY_ADMIN_TOKEN {
                    admin_token = Some(SecretString::from(value));
                }
            }
            None => eprintln!("kept     {output}"),
        }
    }
    let admin_token = match admin_token {
        Some(token) => Some(token),
        None => current_admin_token(&client, &stack).await?,
    };

    let webhook_url = stack
        .output("WebhookUrl")
        .context("the stack has no WebhookUrl output")?;
    let rules = stack.variables(&crate::stack::RULE_VARIABLES);
    let subscribed = match admin_token {
        Some(token) => {
            let subscribe = crate::subscribe::Args {
                shop: args.shop.clone(),
                address: webhook_url.clone(),
                topics: Vec::new(),
                checkout_on: rules
                    .get(keys::CHECKOUT_ON)
                    .cloned()
                    .unwrap_or_else(|| "created".to_owned()),
                api_version: config::var(keys::SHOPIFY_API_VERSION)
                    .unwrap_or_else(|| pinrelay::shopify::admin::DEFAULT_API_VERSION.to_owned()),
                dry_run: false,
                admin_url_base: args.endpoints.admin_url_base.clone(),
            };
            crate::subscribe::run_with_token(&subscribe, token).await?
        }
        None => {
            eprintln!("skipped  webhook subscriptions: no Admin API token in the stack");
            ExitCode::FAILURE
        }
    };

    if let Some(tag_id) = &args.tag_id {
        let pixel = crate::pixel::Args {
            shop: args.shop.clone(),
            tag_id: tag_id.clone(),
            stack: Some(args.stack.clone()),
        };
        match crate::pixel::render(&pixel).await? {
            Ok(source) => {
                std::fs::write(&args.pixel_out, source)
                    .with_context(|| format!("cannot write {}", args.pixel_out.display()))?;
                eprintln!(
                    "wrote    {}: paste it in Shopify admin, Settings, Customer events, Add custom pixel",
                    args.pixel_out.display()
                );
            }
            Err(message) => eprintln!("skipped  pixel: {message}"),
        }
    }

    println!();
    let doctor = crate::doctor::Args {
        data_dir: None,
        shop: args.shop,
        stack: Some(args.stack),
        json: false,
        endpoints: args.endpoints,
    };
    let verdict = crate::doctor::run(doctor).await?;
    Ok(if subscribed == ExitCode::SUCCESS {
        verdict
    } else {
        ExitCode::FAILURE
    })
}

/// The Admin token already in the stack's secret, when it holds one.
///
/// # Errors
/// The secret cannot be read (permissions, region).
async fn current_admin_token(
    client: &aws_sdk_secretsmanager::Client,
    stack: &Stack,
) -> anyhow::Result<Option<SecretString>> {
    let Some(arn) = stack.output("ShopifyAdminTokenSecret") else {
        return Ok(None);
    };
    let value = crate::doctor::secret_value(client, &arn).await?;
    Ok(value
        .and_then(|v| {
            pinrelay::secrets::parse_pinterest_token(&v, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN).ok()
        })
        .filter(|t| !is_placeholder(t.expose_secret())))
}
