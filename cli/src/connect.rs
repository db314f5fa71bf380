//! `pinrelay connect`: once after `sam deploy`, fills the stack's secrets (hidden prompts, or
//! variables, or standard input for automation; never flags), subscribes the store's webhooks,
//! writes the configured custom pixel, and ends with `doctor`.
//!
//! The Admin API secret takes either a static token (`SHOPIFY_ADMIN_TOKEN`, stored as is) or a
//! Dev Dashboard app's client id and secret (`SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`, or
//! Enter at the token prompt; stored as JSON `{"client_id", "client_secret"}`, from which the
//! watch and the CLI mint tokens). On standard input its line is the token or that JSON.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::doctor::is_placeholder;
use pinrelay::shopify::admin::AdminCredentials;
use secrecy::{ExposeSecret as _, SecretString};

use crate::stack::Stack;

/// Arguments of `pinrelay connect`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("relay").required(true).args(["stack", "data_dir"])))]
pub struct Args {
    /// The deployed stack.
    #[arg(long)]
    pub stack: Option<String>,
    /// `pinrelay serve`'s data directory: the store is registered there (`pinrelay shops add`),
    /// its webhooks subscribed at `WEBHOOK_URL`.
    #[arg(long, requires = "ad_account")]
    pub data_dir: Option<PathBuf>,
    /// With `--data-dir`: the Pinterest ad account the store's events go to.
    #[arg(long)]
    pub ad_account: Option<String>,
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

/// The stack's secrets, in the order `connect` asks for them (and reads standard input's lines);
/// the Admin API credentials come after them ([`ADMIN_SECRET`]).
const SECRETS: [(&str, &str, &str); 2] = [
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
];

/// The output naming the secret of the Admin API credentials.
const ADMIN_SECRET: &str = "ShopifyAdminTokenSecret";

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match (&args.stack, &args.data_dir) {
        (Some(stack), _) => {
            let stack = stack.clone();
            run_stack(args, &stack).await
        }
        (None, Some(dir)) => {
            let dir = dir.clone();
            run_data_dir(args, &dir).await
        }
        (None, None) => anyhow::bail!("give --stack NAME or --data-dir DIR"),
    }
}

/// `serve`'s data directory: registers (or updates) the store with its secrets, then subscribes,
/// writes the pixel and runs doctor, as for a stack.
async fn run_data_dir(args: Args, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use pinrelay::registry::Registry as _;
    let domain = pinrelay::shopify::admin::shop_domain(&args.shop)
        .with_context(|| format!("--shop {:?} is not a shop", args.shop))?;
    let webhook_url = config::var(keys::WEBHOOK_URL).context(
        "set WEBHOOK_URL to serve's public https URL ending in /webhooks/shopify (a tunnel to it), where Shopify delivers the webhooks",
    )?;
    let registry = pinrelay::registry::sqlite::SqliteRegistry::new(
        pinrelay::sqlite::SqliteDatabase::open_in(dir)
            .with_context(|| format!("cannot open {}", dir.display()))?,
    );
    let entry = args.ad_account.clone().unwrap_or_default();
    let command = match registry.get(&domain).await? {
        Some(_) => crate::shops::Command::Update {
            shop: domain.clone(),
            ad_account: Some(entry),
            entry: crate::shops::EntryArgs::default(),
            unset: Vec::new(),
            enable: true,
            disable: false,
            secrets: true,
        },
        None => crate::shops::Command::Add {
            shop: domain.clone(),
            ad_account: entry,
            entry: crate::shops::EntryArgs::default(),
        },
    };
    crate::shops::run_on(&registry, command).await?;
    let store = registry
        .get(&domain)
        .await?
        .with_context(|| format!("{domain} was not registered"))?;
    let credentials = store.secrets.admin_credentials();
    let checkout_on = store
        .setting(keys::CHECKOUT_ON, &|k| config::var(k))
        .unwrap_or_else(|| "created".to_owned());
    finish(args, webhook_url, checkout_on, credentials, None, Some(dir)).await
}

/// A stack: fills its secrets, then subscribes, writes the pixel and runs doctor.
async fn run_stack(args: Args, name: &str) -> anyhow::Result<ExitCode> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, name).await?;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let interactive = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    for (output, variable, what) in SECRETS {
        let arn = output_arn(&stack, name, output)?;
        let given = match config::var(variable) {
            Some(value) => Some(value),
            None if interactive => Some(crate::input::prompt_hidden(&format!(
                "{what} (hidden; Enter keeps the current value): "
            ))?),
            None => lines.next().transpose()?,
        }
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
        match given {
            Some(value) if is_placeholder(&value) => {
                anyhow::bail!("the {what} given is a placeholder; nothing was stored for {output}")
            }
            Some(value) => store(&client, &arn, output, &SecretString::from(value)).await?,
            None => eprintln!("kept     {output}"),
        }
    }
    let arn = output_arn(&stack, name, ADMIN_SECRET)?;
    let given = match config::admin_credentials()? {
        Some(credentials) => Some(credentials),
        None if interactive => prompt_admin_credentials()?,
        None => match lines.next().transpose()? {
            Some(line) if !line.trim().is_empty() => Some(
                pinrelay::secrets::parse_admin_credentials(
                    &line,
                    keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN,
                )
                .context("the Admin API line of standard input")?,
            ),
            _ => None,
        },
    };
    let admin_credentials = match given {
        Some(credentials) if placeholder(&credentials) => anyhow::bail!(
            "the Admin API credentials given are a placeholder; nothing was stored for {ADMIN_SECRET}"
        ),
        Some(credentials) => {
            store(&client, &arn, ADMIN_SECRET, &credentials.to_secret_string()).await?;
            Some(credentials)
        }
        None => {
            eprintln!("kept     {ADMIN_SECRET}");
            current_admin_credentials(&client, &stack).await?
        }
    };

    let webhook_url = stack
        .output("WebhookUrl")
        .context("the stack has no WebhookUrl output")?;
    let rules = stack.variables(&crate::stack::RULE_VARIABLES);
    let checkout_on = rules
        .get(keys::CHECKOUT_ON)
        .cloned()
        .unwrap_or_else(|| "created".to_owned());
    finish(
        args,
        webhook_url,
        checkout_on,
        admin_credentials,
        Some(name.to_owned()),
        None,
    )
    .await
}

/// Subscribes the webhooks at `webhook_url`, writes the pixel, and ends with doctor.
async fn finish(
    args: Args,
    webhook_url: String,
    checkout_on: String,
    admin_credentials: Option<AdminCredentials>,
    stack: Option<String>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let subscribed = match admin_credentials {
        Some(credentials) => {
            let subscribe = crate::subscribe::Args {
                shop: args.shop.clone(),
                address: webhook_url.clone(),
                topics: Vec::new(),
                checkout_on,
                api_version: config::var(keys::SHOPIFY_API_VERSION)
                    .unwrap_or_else(|| pinrelay::shopify::admin::DEFAULT_API_VERSION.to_owned()),
                dry_run: false,
                admin_url_base: args.endpoints.admin_url_base.clone(),
            };
            crate::subscribe::run_with_credentials(&subscribe, credentials).await?
        }
        None => {
            eprintln!("skipped  webhook subscriptions: no Admin API credentials");
            ExitCode::FAILURE
        }
    };

    if let Some(tag_id) = &args.tag_id {
        let pixel = crate::pixel::Args {
            shop: args.shop.clone(),
            tag_id: tag_id.clone(),
            stack: stack.clone(),
            data_dir: data_dir.map(std::path::Path::to_owned),
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
        data_dir: data_dir.map(std::path::Path::to_owned),
        shop: args.shop,
        stack,
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

/// The ARN in the stack's `output`.
fn output_arn(stack: &Stack, name: &str, output: &str) -> anyhow::Result<String> {
    stack
        .output(output)
        .with_context(|| format!("stack {name} has no {output} output; is it a pinrelay stack?"))
}

/// The Admin API credentials from the terminal: a token, or (after Enter) a Dev Dashboard app's
/// client id and secret; `None` keeps the stored value.
fn prompt_admin_credentials() -> anyhow::Result<Option<AdminCredentials>> {
    let token = crate::input::prompt_hidden(
        "Shopify Admin API access token (hidden; Enter to give a Dev Dashboard app's client id and secret instead, or to keep the current value): ",
    )?;
    if !token.trim().is_empty() {
        return Ok(Some(AdminCredentials::Token(SecretString::from(
            token.trim().to_owned(),
        ))));
    }
    let client_id = crate::input::prompt_hidden(
        "Dev Dashboard app client id (Enter keeps the current value): ",
    )?;
    if client_id.trim().is_empty() {
        return Ok(None);
    }
    let secret = crate::input::prompt_hidden("Dev Dashboard app client secret (hidden): ")?;
    if secret.trim().is_empty() {
        anyhow::bail!("a client id needs its client secret; nothing was stored for {ADMIN_SECRET}");
    }
    Ok(Some(AdminCredentials::ClientCredentials {
        client_id: client_id.trim().to_owned(),
        client_secret: SecretString::from(secret.trim().to_owned()),
    }))
}

/// Whether the credentials hold a placeholder (`your-…`, `...`) rather than a value.
fn placeholder(credentials: &AdminCredentials) -> bool {
    match credentials {
        AdminCredentials::Token(token) => is_placeholder(token.expose_secret()),
        AdminCredentials::ClientCredentials {
            client_id,
            client_secret,
        } => is_placeholder(client_id) || is_placeholder(client_secret.expose_secret()),
    }
}

/// Puts `value` in the secret `arn` (the stack's `output`).
async fn store(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    output: &str,
    value: &SecretString,
) -> anyhow::Result<()> {
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.expose_secret())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot store {output} (check the credentials allow secretsmanager:PutSecretValue): {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?;
    eprintln!("stored   {output}");
    Ok(())
}

/// The Admin API credentials already in the stack's secret, when it holds some.
///
/// # Errors
/// The secret cannot be read (permissions, region).
async fn current_admin_credentials(
    client: &aws_sdk_secretsmanager::Client,
    stack: &Stack,
) -> anyhow::Result<Option<AdminCredentials>> {
    let Some(arn) = stack.output(ADMIN_SECRET) else {
        return Ok(None);
    };
    let value = crate::doctor::secret_value(client, &arn).await?;
    Ok(value
        .and_then(|v| {
            pinrelay::secrets::parse_admin_credentials(&v, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN)
                .ok()
        })
        .filter(|c| !placeholder(c)))
}
