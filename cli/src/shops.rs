//! `pinrelay shops add | list | show | update | remove`: the stores one relay serves, for
//! `pinrelay serve` (`--data-dir`) or a deployed stack (`--stack NAME`: entries in its table,
//! each store's secrets in a Secrets Manager secret `{StackName}/shops/{domain}`, both read from
//! the stack's outputs). Offline: nothing is checked against Shopify or Pinterest here
//! (`pinrelay doctor --shop` does that). Secrets come from the variables the relay reads (a
//! variable that is set wins), else hidden prompts on a terminal, else standard input's lines;
//! never from a flag. A running relay sees a change within a minute, without a restart.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::doctor::is_placeholder;
use pinrelay::dynamodb::Table;
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::sqlite::SqliteRegistry;
use pinrelay::registry::{Registry, STORE_SETTINGS, Shop, ShopEntry, ShopSecrets};
use pinrelay::shopify::admin::{AdminCredentials, shop_domain};
use pinrelay::sqlite::SqliteDatabase;
use secrecy::ExposeSecret as _;

use crate::stack::Stack;

/// Arguments of `pinrelay shops`.
#[derive(clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// `pinrelay serve`'s data directory.
    #[arg(
        long,
        global = true,
        default_value = ".pinrelay",
        conflicts_with = "stack"
    )]
    pub data_dir: PathBuf,
    /// A deployed stack instead: its table and secrets prefix are read from its outputs
    /// (IdempotencyTableName, ShopSecretsPrefix).
    #[arg(long, global = true)]
    pub stack: Option<String>,
}

/// The `shops` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Register a store: its ad account, settings and secrets (webhook secret, Pinterest
    /// conversion token, optional API token and Admin credentials).
    Add {
        /// The shop: `name` or `name.myshopify.com`.
        shop: String,
        /// The Pinterest ad account its events go to.
        #[arg(long)]
        ad_account: String,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// List the registered stores (no secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one store: its entry, and which secrets are set (never their values).
    Show {
        /// The shop.
        shop: String,
    },
    /// Change a store's entry; `--secrets` reads its secrets again.
    Update {
        /// The shop.
        shop: String,
        /// Another ad account.
        #[arg(long)]
        ad_account: Option<String>,
        #[command(flatten)]
        entry: EntryArgs,
        /// Remove a setting (the relay's variable applies again).
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        /// Serve it again.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop serving it (its webhooks are refused, its queued events dead-lettered).
        #[arg(long)]
        disable: bool,
        /// Read its secrets again (variables, prompts or standard input, as `add`).
        #[arg(long)]
        secrets: bool,
    },
    /// Remove a store and its secrets.
    Remove {
        /// The shop.
        shop: String,
    },
}

/// Entry fields `add` and `update` share.
#[derive(clap::Args, Default)]
pub struct EntryArgs {
    /// Shopify's numeric shop id (in an order's `order_status_url`): with it, a signed order of
    /// another store sent under this shop's header is refused.
    #[arg(long)]
    pub shop_id: Option<u64>,
    /// A per-store setting, `KEY=VALUE` (repeatable): ORDER_SOURCES, CHECKOUT_ON, CONTENT_ID, ...
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(stack) = &args.stack {
        let registry = stack_registry(stack).await?;
        return run_on(&registry, args.command).await;
    }
    let registry = SqliteRegistry::new(
        SqliteDatabase::open_in(&args.data_dir)
            .with_context(|| format!("cannot open {}", args.data_dir.display()))?,
    );
    run_on(&registry, args.command).await
}

/// The registry of stack `name`, from its outputs.
async fn stack_registry(name: &str) -> anyhow::Result<AwsRegistry> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, name).await?;
    let output = |key: &str| {
        stack.output(key).with_context(|| {
            format!("stack {name} has no {key} output: deploy this version of pinrelay's template (sam deploy or cdk deploy) to add it")
        })
    };
    let table = output("IdempotencyTableName")?;
    let prefix = output("ShopSecretsPrefix")?;
    Ok(AwsRegistry::new(
        Table::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        aws_sdk_secretsmanager::Client::new(&sdk),
        prefix,
    ))
}

/// Runs a `shops` subcommand on any registry.
pub async fn run_on(registry: &impl Registry, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Add {
            shop,
            ad_account,
            entry,
        } => {
            let domain = domain(&shop)?;
            anyhow::ensure!(
                !ad_account.is_empty() && ad_account.bytes().all(|b| b.is_ascii_digit()),
                "--ad-account {ad_account:?}: give the Pinterest ad account id, the number in Ads Manager's URL"
            );
            if registry.get(&domain).await?.is_some() {
                anyhow::bail!(
                    "{domain} is registered already: use `pinrelay shops update {domain}`"
                );
            }
            let mut settings = BTreeMap::new();
            apply_settings(&mut settings, &entry.set, &[])?;
            let shop = Shop {
                entry: ShopEntry {
                    domain: domain.clone(),
                    shop_id: entry.shop_id,
                    ad_account_id: ad_account,
                    settings,
                    enabled: true,
                    updated_at: Utc::now(),
                },
                secrets: read_secrets()?,
            };
            registry.register(&shop).await?;
            eprintln!(
                "added    {domain}: ad account {}; {}",
                shop.entry.ad_account_id,
                secrets_summary(&shop.secrets)
            );
        }
        Command::List { json } => {
            let entries = registry.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                eprintln!("no store registered: pinrelay shops add SHOP --ad-account ID");
            } else {
                print!("{}", table(&entries));
            }
        }
        Command::Show { shop } => {
            let shop = existing(registry, &shop).await?;
            println!("{}", serde_json::to_string_pretty(&shop.entry)?);
            println!("secrets: {}", secrets_summary(&shop.secrets));
        }
        Command::Update {
            shop,
            ad_account,
            entry,
            unset,
            enable,
            disable,
            secrets,
        } => {
            let mut shop = existing(registry, &shop).await?;
            if let Some(account) = ad_account {
                shop.entry.ad_account_id = account;
            }
            if let Some(id) = entry.shop_id {
                shop.entry.shop_id = Some(id);
            }
            apply_settings(&mut shop.entry.settings, &entry.set, &unset)?;
            if enable || disable {
                shop.entry.enabled = enable;
            }
            if secrets {
                shop.secrets = read_secrets()?;
            }
            shop.entry.updated_at = Utc::now();
            registry.register(&shop).await?;
            eprintln!(
                "updated  {}: takes effect within a minute",
                shop.entry.domain
            );
        }
        Command::Remove { shop } => {
            let domain = domain(&shop)?;
            if !registry.remove(&domain).await? {
                anyhow::bail!("{domain} is not registered");
            }
            eprintln!("removed  {domain} and its secrets");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn domain(shop: &str) -> anyhow::Result<String> {
    shop_domain(shop).with_context(|| {
        format!("{shop:?} is not a shop: give its name or its name.myshopify.com domain")
    })
}

async fn existing(registry: &impl Registry, shop: &str) -> anyhow::Result<Shop> {
    let domain = domain(shop)?;
    registry
        .get(&domain)
        .await?
        .with_context(|| format!("{domain} is not registered: pinrelay shops add {domain}"))
}

/// Applies `KEY=VALUE` settings, then removes `unset` keys; only [`STORE_SETTINGS`].
fn apply_settings(
    settings: &mut BTreeMap<String, String>,
    set: &[String],
    unset: &[String],
) -> anyhow::Result<()> {
    let known = |key: &str| {
        anyhow::ensure!(
            STORE_SETTINGS.contains(&key),
            "{key} is not a per-store setting; per-store settings are {}",
            STORE_SETTINGS.join(", ")
        );
        Ok(())
    };
    for pair in set {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--set {pair:?}: give KEY=VALUE"))?;
        let key = key.trim().to_ascii_uppercase();
        known(&key)?;
        settings.insert(key, value.trim().to_owned());
    }
    for key in unset {
        let key = key.trim().to_ascii_uppercase();
        known(&key)?;
        settings.remove(&key);
    }
    // A list name the audience job would refuse at every run is refused now.
    pinrelay::audiences::job::parse_lists(
        settings
            .get(pinrelay::config::keys::AUDIENCE_LISTS)
            .map(String::as_str),
    )?;
    Ok(())
}

/// The store's secrets, in order: the webhook secret (required), the Pinterest conversion token,
/// a Pinterest API token, the Admin credentials (each optional). A variable that is set wins;
/// else a hidden prompt on a terminal; else the next line of standard input (empty: none).
fn read_secrets() -> anyhow::Result<ShopSecrets> {
    let interactive = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    let mut next = |variable: &'static str, what: &str| -> anyhow::Result<Option<String>> {
        let value = match config::var(variable) {
            Some(value) => Some(value),
            None if interactive => Some(crate::input::prompt_hidden(&format!(
                "{what} (hidden; Enter for none): "
            ))?),
            None => lines.next().transpose()?,
        }
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
        if let Some(v) = &value {
            anyhow::ensure!(
                !is_placeholder(v),
                "the {what} given is a placeholder; nothing was stored"
            );
        }
        Ok(value)
    };
    let webhook = next(keys::SHOPIFY_WEBHOOK_SECRETS, "Shopify app client secret")?
        .context("a store needs the Shopify app's client secret its webhooks are signed with (SHOPIFY_WEBHOOK_SECRETS, the prompt, or the first line of standard input)")?;
    let conversion = next(
        keys::PINTEREST_ACCESS_TOKEN,
        "Pinterest conversion access token",
    )?;
    let api = next(keys::PINTEREST_API_TOKEN, "Pinterest API token (ads:read)")?;
    let admin = match config::admin_credentials()? {
        Some(credentials) => Some(credentials),
        None => next(
            keys::SHOPIFY_ADMIN_TOKEN,
            "Shopify Admin API token, or {\"client_id\", \"client_secret\"}",
        )?
        .map(|line| {
            pinrelay::secrets::parse_admin_credentials(&line, keys::SHOPIFY_ADMIN_TOKEN)
                .context("the Admin API credentials")
        })
        .transpose()?,
    };
    let mut secrets = ShopSecrets {
        webhook_secrets: webhook
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        pinterest_access_token: conversion,
        pinterest_api_token: api,
        ..ShopSecrets::default()
    };
    set_admin_credentials(&mut secrets, admin);
    Ok(secrets)
}

/// Puts Admin credentials in a store's secrets.
fn set_admin_credentials(secrets: &mut ShopSecrets, admin: Option<AdminCredentials>) {
    match admin {
        Some(AdminCredentials::Token(token)) => {
            secrets.shopify_admin_token = Some(token.expose_secret().to_owned());
        }
        Some(AdminCredentials::ClientCredentials {
            client_id,
            client_secret,
        }) => {
            secrets.shopify_client_id = Some(client_id);
            secrets.shopify_client_secret = Some(client_secret.expose_secret().to_owned());
        }
        None => {}
    }
}

/// Which secrets are set, by name: never a value.
fn secrets_summary(secrets: &ShopSecrets) -> String {
    let mut set = vec![format!(
        "{} webhook secret(s)",
        secrets.webhook_secrets.len()
    )];
    let mut named = |present: bool, name: &str| {
        set.push(format!("{name} {}", if present { "set" } else { "unset" }));
    };
    named(secrets.pinterest_access_token.is_some(), "conversion token");
    named(secrets.pinterest_api_token.is_some(), "API token");
    named(
        secrets.shopify_admin_token.is_some() || secrets.shopify_client_id.is_some(),
        "Admin credentials",
    );
    set.join(", ")
}

/// The entries as an aligned table.
fn table(entries: &[ShopEntry]) -> String {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.domain.clone(),
                e.ad_account_id.clone(),
                if e.enabled { "enabled" } else { "disabled" }.to_owned(),
                e.shop_id
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                e.settings
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    let header = ["shop", "ad account", "state", "shop id", "settings"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_lists_are_checked_when_set() {
        let mut settings = BTreeMap::new();
        apply_settings(
            &mut settings,
            &["audience_lists=customers,purchasers".to_owned()],
            &[],
        )
        .unwrap();
        assert_eq!(settings["AUDIENCE_LISTS"], "customers,purchasers");
        let e =
            apply_settings(&mut settings, &["AUDIENCE_LISTS=buyers".to_owned()], &[]).unwrap_err();
        assert!(e.to_string().contains("AUDIENCE_LISTS"), "{e}");
        assert!(apply_settings(&mut settings, &["NOPE=1".to_owned()], &[]).is_err());
    }
}
