//! `pinrelay audiences sync`: keeps the store's Pinterest customer list (and, with
//! `--purchasers`, a list of its consenting buyers) in step with its consenting customers.
//!
//! The relay's record is `serve`'s data directory (`--data-dir`) or a deployed stack's table
//! (`--stack`); a store registered there brings its ad account, Admin credentials and
//! `pinterest_api_token`; otherwise `PINTEREST_AD_ACCOUNT_ID`, the Admin variables and
//! `PINTEREST_API_TOKEN` are used (`PINTEREST_API_TOKEN`, when set, wins for a registered store
//! too); the store's Pinterest sign-in (`pinrelay pinterest login`) gives the token, and the ad
//! account, where nothing else does ([`Credentials::resolve`], as for the audience job); a
//! sign-in's token is read again after Pinterest's 401. The lists
//! are the store's `AUDIENCE_LISTS` (default: the customers list), plus `--purchasers`. The same
//! sync runs on a schedule in the stack and in `serve` ([`pinrelay::audiences::job`]).
//!
//! Exit codes: 0 done, 1 a request failed or another sync holds the list, 2 invalid arguments.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::audiences::job::{
    Credentials, Endpoints, Fallback, ListsToken, MissingCredential, parse_lists,
};
use pinrelay::audiences::sqlite::SqliteAudienceStore;
use pinrelay::audiences::{
    AudienceStore, ListKind, ListSummary, Mode, ProgressEvent, Scope, Settings, sync,
};
use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::dynamodb::Table;
use pinrelay::pinterest::audiences::StaticToken;
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::sqlite::SqliteGrantStore;
use pinrelay::pinterest::oauth::{ApiToken, GrantStore};
use pinrelay::registry::Registry;
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::sqlite::SqliteRegistry;
use pinrelay::shopify::admin::shop_domain;
use secrecy::SecretString;

use crate::stack::Stack;

/// Arguments of `pinrelay audiences`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Send Pinterest the difference between the customer list and the consenting customers.
    Sync(SyncArgs),
}

/// Arguments of `pinrelay audiences sync`.
#[derive(clap::Args)]
struct SyncArgs {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    shop: String,
    /// The local relay's data directory (`pinrelay serve --data-dir`): the record of each list.
    #[arg(long, default_value = ".pinrelay", conflicts_with = "stack")]
    data_dir: PathBuf,
    /// A deployed stack: the record is kept in its table, the stores come from its registry.
    #[arg(long)]
    stack: Option<String>,
    /// Compute and print what would be sent; send nothing, record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also keep a second list: the consenting customers who have ordered (for exclusion).
    #[arg(long)]
    purchasers: bool,
    /// Compare every customer now, whatever the last full comparison.
    #[arg(long)]
    full: bool,
    /// The most records a request carries.
    #[arg(long, env = "AUDIENCE_BATCH_SIZE", default_value_t = pinrelay::audiences::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Admin API version (YYYY-MM).
    #[arg(long, default_value = pinrelay::shopify::admin::DEFAULT_API_VERSION)]
    api_version: String,
    /// Where the Shopify and Pinterest APIs are (tests point them at fakes).
    #[command(flatten)]
    endpoints: crate::input::Endpoints,
}

/// Runs `pinrelay audiences`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Sync(args) => run_sync(args).await,
    }
}

fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(2))
}

async fn run_sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let Some(shop) = shop_domain(&args.shop) else {
        return usage(&format!(
            "--shop {:?} is not a shop name or domain",
            args.shop
        ));
    };
    if args.batch_size == 0 {
        return usage("--batch-size is at least 1");
    }
    if let Some(stack) = &args.stack {
        let (registry, table, grants) = stack_parts(stack).await?;
        return run_with(
            &args,
            &shop,
            &registry,
            &DynamoDbAudienceStore::new(table),
            &grants,
        )
        .await;
    }
    // An existing database only: a mistyped directory would otherwise start an empty record, and
    // the run would create a second list on Pinterest and upload everyone to it.
    let db = crate::local::open_existing_db(&args.data_dir)?;
    let registry = SqliteRegistry::new(db.clone());
    let grants = SqliteGrantStore::new(db.clone());
    run_with(
        &args,
        &shop,
        &registry,
        &SqliteAudienceStore::new(db),
        &grants,
    )
    .await
}

/// The registry, the table and the Pinterest sign-ins of stack `name`, from its outputs.
async fn stack_parts(name: &str) -> anyhow::Result<(AwsRegistry, Table, AwsGrantStore)> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, name).await?;
    let output = |key: &str| {
        stack.output(key).with_context(|| {
            format!("stack {name} has no {key} output: deploy this version of pinrelay's template (sam deploy or cdk deploy) to add it")
        })
    };
    let table = Table::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        output("IdempotencyTableName")?,
    );
    let registry = AwsRegistry::new(
        table.clone(),
        aws_sdk_secretsmanager::Client::new(&sdk),
        output("ShopSecretsPrefix")?,
    );
    let grants = crate::pinterest::Grants::of_stack(&sdk, &stack, name)?;
    Ok((registry, table, grants))
}

/// The sync with this registry and ledger.
async fn run_with(
    args: &SyncArgs,
    shop: &str,
    registry: &impl Registry,
    ledger: &impl AudienceStore,
    grants: &(impl GrantStore + Clone),
) -> anyhow::Result<ExitCode> {
    let registered = registry.get(shop).await?;
    let signed_in = grants.get(shop).await?;

    // Where each credential comes from is decided once, for this command and the audience job
    // alike: PINTEREST_API_TOKEN, else the store's registered token, else its sign-in; the ad
    // account from the registry, else PINTEREST_AD_ACCOUNT_ID, else the sign-in; the store's Admin
    // credentials, else the Admin variables.
    let env_admin =
        crate::input::admin_credentials("the app's Admin API access token (read_customers)");
    let fallback = |api_token: Option<SecretString>| Fallback {
        ad_account_id: config::var(keys::PINTEREST_AD_ACCOUNT_ID),
        api_token: api_token
            .or_else(|| config::var(keys::PINTEREST_API_TOKEN).map(SecretString::from)),
        admin: env_admin.as_ref().ok().cloned(),
    };
    let resolved = match Credentials::resolve(
        shop,
        registered.as_ref(),
        signed_in.as_ref(),
        fallback(None),
    ) {
        // A dry run calls no Pinterest API: it needs no token.
        Err(MissingCredential::PinterestToken { .. }) if args.dry_run => Credentials::resolve(
            shop,
            registered.as_ref(),
            signed_in.as_ref(),
            fallback(Some(SecretString::from(String::new()))),
        ),
        resolved => resolved,
    };
    let credentials = match resolved {
        Ok(credentials) => credentials,
        Err(MissingCredential::AdAccount { .. }) => {
            return usage(&format!(
                "set {} to the Pinterest ad account id, sign in with `pinrelay pinterest login --shop {shop}`, or register the store (`pinrelay shops add`)",
                keys::PINTEREST_AD_ACCOUNT_ID
            ));
        }
        Err(MissingCredential::PinterestToken { .. }) => {
            return usage(&format!(
                "sign in with `pinrelay pinterest login --shop SHOP`, or set {} to a Pinterest token with the ads:write scope (customer lists take an OAuth token, not the conversion token)",
                keys::PINTEREST_API_TOKEN
            ));
        }
        Err(MissingCredential::Admin { .. }) => {
            return usage(&env_admin.err().unwrap_or_default());
        }
    };
    // The sign-in's token is read again after a 401 (the refresher may renew it during a long run).
    let tokens = if credentials.from_sign_in {
        ListsToken::SignIn(ApiToken::new(grants.clone(), shop))
    } else {
        ListsToken::Given(StaticToken(credentials.token.clone()))
    };
    let (admin, api) = Endpoints {
        api_version: args.api_version.clone(),
        admin_api_url: args.endpoints.admin_url_base.clone(),
        pinterest_api_url: args.endpoints.pinterest_api_url.clone(),
    }
    .clients_with(shop, credentials, tokens)?;

    // The lists: the store's AUDIENCE_LISTS (what the audience job keeps), else the customers
    // list; --purchasers adds the second.
    let configured = match &registered {
        Some(store) => store.setting(keys::AUDIENCE_LISTS, &config::var),
        None => config::var(keys::AUDIENCE_LISTS),
    };
    let mut kinds = match parse_lists(configured.as_deref()) {
        Ok(kinds) => kinds,
        Err(e) => return usage(&e.to_string()),
    };
    if kinds.is_empty() {
        kinds.push(ListKind::Customers);
    }
    if args.purchasers && !kinds.contains(&ListKind::Purchasers) {
        kinds.push(ListKind::Purchasers);
    }
    let settings = Settings {
        kinds,
        batch_size: args.batch_size,
        force_full: args.full,
        ..Settings::default()
    };
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let bar = progress_bar();
    let mut progress = |event: ProgressEvent| match event {
        ProgressEvent::Read(n) => bar.set_message(format!("{n} customers read")),
        ProgressEvent::Planned { kind, records } => {
            bar.set_position(0);
            bar.set_length(records as u64);
            bar.set_message(format!("{kind} list"));
        }
        ProgressEvent::Sent { records, .. } => bar.set_position(records as u64),
    };
    let result = sync(
        shop,
        &admin,
        &api,
        ledger,
        &settings,
        mode,
        Utc::now(),
        &mut progress,
    )
    .await;
    bar.finish_and_clear();
    match result {
        Ok(summaries) => {
            for summary in &summaries {
                println!("{}", line(shop, summary, args.dry_run));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One summary line per list.
fn line(shop: &str, s: &ListSummary, dry_run: bool) -> String {
    let scope = match s.scope {
        Scope::Incremental => "changes since the last sync",
        Scope::Full { resend: false } => "full comparison",
        Scope::Full { resend: true } => "full comparison, every member re-sent",
    };
    let ids = match (&s.list_id, &s.audience_id) {
        (Some(list), Some(audience)) => format!(" (list {list}, audience {audience})"),
        (Some(list), None) => format!(" (list {list})"),
        _ => String::new(),
    };
    if dry_run {
        return format!(
            "dry run: {shop} {kind} list{ids}: would add {a}, remove {r}, {u} unchanged, in {n} request(s) ({scope}); nothing was sent",
            kind = s.kind,
            a = s.added,
            r = s.removed,
            u = s.unchanged,
            n = s.requests,
        );
    }
    let status = s
        .status
        .as_deref()
        .map(|st| format!("; status {st}"))
        .unwrap_or_default();
    format!(
        "{shop} {kind} list{ids}: {a} added, {r} removed, {u} unchanged, in {n} request(s) ({scope}){status}",
        kind = s.kind,
        a = s.added,
        r = s.removed,
        u = s.unchanged,
        n = s.requests,
    )
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
