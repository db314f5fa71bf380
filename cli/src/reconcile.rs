//! `pinrelay reconcile`: the shop's orders of a window beside what the relay did with each, and
//! `--backfill` for the ones it never saw.
//!
//! 1. The shop's time zone and its orders of the window come from the GraphQL Admin API (cursor
//!    pagination, the cost-based throttle respected; a progress bar on a terminal).
//! 2. The relay's side is its outcome ledger: a local data dir (`--data-dir`, the default `.pinrelay`)
//!    or a deployed stack's table (`--stack NAME` reads the stack's outputs, or `--table`).
//! 3. Each order is classified ([`pinrelay::reconcile`]) and the report printed as a table, or as
//!    JSON (`--json`), and written as a self-contained page (`--html FILE`). With a Pinterest token
//!    and ad account, Pinterest's Event Quality of `checkout` events is shown beside the relay's,
//!    and the customer lists the relay keeps for the shop with their status on Pinterest (the
//!    token is `PINTEREST_API_TOKEN`, the registered store's, or the store's Pinterest sign-in).
//! 4. `--backfill` fetches each missing order still inside Pinterest's 7 days (REST, the webhook's
//!    own shape) and sends it through the relay's queue, so dispatch claims it like the webhook it
//!    replaces: run twice, it is still sent once. `--dry-run` lists them only.
//!
//! Exit codes: 0 done, 1 a request failed or a backfill could not be queued, 2 invalid arguments.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::audiences::sqlite::SqliteAudienceStore;
use pinrelay::aws::{self, Budget};
use pinrelay::config;
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::idempotency::sqlite::SqliteIdempotencyStore;
use pinrelay::idempotency::{
    Claim, ClaimRequest, DeadLetterCounts, Holder, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, Pause, PauseReason, Settlement, StoreError, Unheld,
};
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::sqlite::SqliteGrantStore;
use pinrelay::pinterest::quality::{IngestionSource, Lookback};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::queue::sqlite::SqliteQueue;
use pinrelay::queue::sqs::SqsQueue;
use pinrelay::queue::{EncodedMessage, Envelope, MAX_ENQUEUE_BYTES, Queue};
use pinrelay::reconcile::{self, Period, Quality, ReconcileError, Report};
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::sqlite::SqliteRegistry;
use pinrelay::registry::{Registry as _, STORE_SETTINGS, Shop};
use pinrelay::shopify::admin::AdminApi;
use secrecy::ExposeSecret as _;

/// Arguments of `pinrelay reconcile`.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// The last N days of the shop's calendar, today included.
    #[arg(long, default_value = "7d", conflicts_with_all = ["from", "to"])]
    pub since: String,
    /// The first day (YYYY-MM-DD, the shop's calendar); with --to.
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// The last day, included.
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// The local relay's data directory (`pinrelay serve --data-dir`).
    #[arg(long, default_value = ".pinrelay", conflicts_with_all = ["stack", "table"])]
    pub data_dir: PathBuf,
    /// A deployed stack: its table and queues are read from the stack's outputs.
    #[arg(long, conflicts_with = "table")]
    pub stack: Option<String>,
    /// The relay's DynamoDB table (the stack's IdempotencyTableName output).
    #[arg(long)]
    pub table: Option<String>,
    /// The relay's queue, for --backfill with --table (the stack's EventQueueUrl output).
    #[arg(long)]
    pub queue_url: Option<String>,
    /// The dead-letter queue, to count what waits there (the stack's DeadLetterQueueUrl output).
    #[arg(long)]
    pub dead_letter_queue_url: Option<String>,
    /// Print the report as JSON (one row per order) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as a self-contained HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Send the missing orders still inside Pinterest's 7 days through the relay's queue.
    #[arg(long)]
    pub backfill: bool,
    /// With --backfill: list what would be sent, send nothing.
    #[arg(long, requires = "backfill")]
    pub dry_run: bool,
    /// Which amount the relay sends as `value`: `subtotal` or `total`; by default the relay's own
    /// (VALUE_SOURCE, with the other conversion rules: ORDER_SOURCES, CHECKOUT_ON…).
    #[arg(long)]
    pub value_source: Option<String>,
    /// The Pinterest ad account, for Event Quality beside the report (with PINTEREST_API_TOKEN).
    #[arg(long, env = "PINTEREST_AD_ACCOUNT_ID")]
    pub ad_account_id: Option<String>,
    /// Pinterest's Event Quality lookback: 1d or 14d.
    #[arg(long, default_value = "14d")]
    pub lookback: String,
    /// Admin API version (YYYY-MM).
    #[arg(long, default_value = "2026-07")]
    pub api_version: String,
    /// Where the Shopify and Pinterest APIs are (tests point them at fakes).
    #[command(flatten)]
    pub endpoints: crate::input::Endpoints,
}

/// Where the relay keeps its records and takes its messages.
enum Relay {
    /// `pinrelay serve`'s data dir.
    Local {
        records: SqliteIdempotencyStore,
        queue: SqliteQueue,
        audiences: SqliteAudienceStore,
        grants: SqliteGrantStore,
    },
    /// A deployed stack.
    Aws {
        records: DynamoDbIdempotencyStore,
        queue: Option<SqsQueue>,
        dead_letters: Option<(aws_sdk_sqs::Client, String)>,
        audiences: DynamoDbAudienceStore,
        /// The stack's Pinterest sign-ins (`--stack` only: a bare `--table` names no secrets).
        grants: Option<AwsGrantStore>,
    },
}

impl Relay {
    async fn open(args: &Args) -> anyhow::Result<Self> {
        if args.stack.is_none() && args.table.is_none() {
            let db = crate::local::open_existing_db(&args.data_dir)?;
            return Ok(Relay::Local {
                records: SqliteIdempotencyStore::new(db.clone()),
                queue: SqliteQueue::new(db.clone()),
                audiences: SqliteAudienceStore::new(db.clone()),
                grants: SqliteGrantStore::new(db),
            });
        }
        let sdk = aws::load(Budget::CLI).await;
        let mut grants = None;
        let (table, queue_url, dlq_url) = match &args.stack {
            Some(stack) => {
                let stack_info = crate::stack::Stack::describe(&sdk, stack).await?;
                grants = crate::pinterest::Grants::of_stack(&sdk, &stack_info, stack).ok();
                let get = |k: &str| stack_info.output(k);
                let table = get("IdempotencyTableName").with_context(|| {
                    format!(
                        "stack {stack} has no IdempotencyTableName output; is it a pinrelay stack?"
                    )
                })?;
                (table, get("EventQueueUrl"), get("DeadLetterQueueUrl"))
            }
            None => (
                args.table.clone().unwrap_or_default(),
                args.queue_url.clone(),
                args.dead_letter_queue_url.clone(),
            ),
        };
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let table = Table::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        Ok(Relay::Aws {
            records: DynamoDbIdempotencyStore::new(table.clone()),
            queue: queue_url.map(|url| SqsQueue::new(sqs.clone(), url)),
            dead_letters: dlq_url.map(|url| (sqs, url)),
            audiences: DynamoDbAudienceStore::new(table),
            grants,
        })
    }

    fn can_send(&self) -> bool {
        !matches!(self, Relay::Aws { queue: None, .. })
    }

    async fn send(&self, message: &EncodedMessage) -> anyhow::Result<()> {
        match self {
            Relay::Local { queue, .. } => queue.send(message).await?,
            Relay::Aws {
                queue: Some(queue), ..
            } => queue.send(message).await?,
            Relay::Aws { queue: None, .. } => bail!("--backfill with --table needs --queue-url"),
        }
        Ok(())
    }

    /// Messages waiting in the dead-letter queue, when it is known.
    async fn dead_letters(&self) -> Option<u64> {
        match self {
            Relay::Local { queue, .. } => queue.dead_letters().await.ok().map(|d| d.len() as u64),
            Relay::Aws {
                dead_letters: Some((sqs, url)),
                ..
            } => {
                let out = sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(
                        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                    )
                    .send()
                    .await
                    .ok()?;
                out.attributes()?
                    .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)?
                    .parse()
                    .ok()
            }
            Relay::Aws { .. } => None,
        }
    }
}

/// The relay's records, wherever they are.
macro_rules! each {
    ($self:ident, $records:ident => $call:expr) => {
        match $self {
            Relay::Local {
                records: $records, ..
            } => $call,
            Relay::Aws {
                records: $records, ..
            } => $call,
        }
    };
}

impl IdempotencyStore for Relay {
    async fn claim(&self, request: &ClaimRequest, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        each!(self, r => r.claim(request, now).await)
    }

    async fn settle(
        &self,
        key: &IdempotencyKey,
        holder: &Holder,
        settlement: &Settlement,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        each!(self, r => r.settle(key, holder, settlement, now).await)
    }

    async fn record(
        &self,
        key: &IdempotencyKey,
        decision: &Unheld,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        each!(self, r => r.record(key, decision, topic, now).await)
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        each!(self, r => r.get(key).await)
    }

    async fn get_many(
        &self,
        keys: &[IdempotencyKey],
        now: DateTime<Utc>,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        each!(self, r => r.get_many(keys, now).await)
    }

    async fn forget(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        each!(self, r => r.forget(key).await)
    }

    async fn count_dead_letter(
        &self,
        shop: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        each!(self, r => r.count_dead_letter(shop, reason, now).await)
    }

    async fn dead_letter_counts(
        &self,
        shop: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<DeadLetterCounts, StoreError> {
        each!(self, r => r.dead_letter_counts(shop, from, to).await)
    }

    async fn mark_paused(
        &self,
        shop: &str,
        reason: PauseReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        each!(self, r => r.mark_paused(shop, reason, now).await)
    }

    async fn pause(&self, shop: &str) -> Result<Option<Pause>, StoreError> {
        each!(self, r => r.pause(shop).await)
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        each!(self, r => r.delete_shop(shop).await)
    }
}

/// The file in `serve`'s data directory that records the rules it runs with.
pub const SETTINGS_FILE: &str = "settings.json";

/// The relay's own settings, where they can be read (a stack's parameters, the settings of its
/// functions, or the settings `serve` recorded in its data directory, `SETTINGS_FILE`; empty for
/// a bare `--table`, or a data directory serve never ran on), and the store `--shop` names in
/// its registry (`pinrelay shops add`), when it is one. A stack is described once for both.
async fn relay_context(args: &Args) -> anyhow::Result<(HashMap<String, String>, Option<Shop>)> {
    if let Some(stack) = &args.stack {
        let sdk = aws::load(Budget::CLI).await;
        let info = crate::stack::Stack::describe(&sdk, stack).await?;
        let values = info.variables(&STORE_SETTINGS);
        let store = match (
            info.output("IdempotencyTableName"),
            info.output("ShopSecretsPrefix"),
        ) {
            (Some(table), Some(prefix)) => {
                AwsRegistry::new(
                    Table::new(aws_sdk_dynamodb::Client::new(&sdk), table),
                    aws_sdk_secretsmanager::Client::new(&sdk),
                    prefix,
                )
                .get(&args.shop)
                .await?
            }
            _ => None,
        };
        return Ok((values, store));
    }
    if args.table.is_some() {
        return Ok((HashMap::new(), None));
    }
    let path = args.data_dir.join(SETTINGS_FILE);
    let values = match std::fs::read_to_string(&path) {
        Ok(json) => serde_json::from_str(&json)
            .with_context(|| format!("{} is not the settings serve records", path.display()))?,
        Err(_) => HashMap::new(),
    };
    let registry = SqliteRegistry::new(crate::local::open_existing_db(&args.data_dir)?);
    Ok((values, registry.get(&args.shop).await?))
}

/// The conversion rules and `VALUE_SOURCE` the relay judges `--shop`'s orders by: a registered
/// store's own settings over the relay's (`values`); `None` when nothing records them.
fn relay_rules(
    values: &HashMap<String, String>,
    store: Option<&Shop>,
) -> anyhow::Result<Option<pinrelay::mapping::Options>> {
    if values.is_empty() && store.is_none_or(|s| s.entry.settings.is_empty()) {
        return Ok(None);
    }
    let relay = |key: &'static str| {
        values
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .or_else(|| config::var(key))
    };
    let get = |key: &'static str| match store {
        Some(store) => store.setting(key, &relay),
        None => relay(key),
    };
    Ok(Some(pinrelay::config::order_rules_from(&get)?))
}

/// Runs `pinrelay reconcile`.
pub async fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    let mut api_token = config::var(config::keys::PINTEREST_API_TOKEN);
    let mut rules = match pinrelay::config::mapping_options() {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match args.value_source.as_deref() {
        None => {}
        Some("subtotal") => rules.value_source = pinrelay::mapping::ValueSource::Subtotal,
        Some("total") => rules.value_source = pinrelay::mapping::ValueSource::Total,
        Some(other) => {
            eprintln!("error: --value-source is subtotal or total, not {other:?}");
            return Ok(ExitCode::from(2));
        }
    }
    let lookback = match args.lookback.as_str() {
        "1d" => Lookback::OneDay,
        "14d" => Lookback::FourteenDays,
        other => {
            eprintln!("error: --lookback is 1d or 14d, not {other:?}");
            return Ok(ExitCode::from(2));
        }
    };
    // A registered store: its own Admin credentials, ad account and API token where the
    // variables give none, and its own conversion rules.
    let (values, store) = relay_context(&args).await?;
    let own_credentials = store.as_ref().and_then(|s| s.secrets.admin_credentials());
    let admin_credentials = match (
        own_credentials,
        crate::input::admin_credentials("the app's Admin API access token (read_orders)"),
    ) {
        (_, Ok(credentials)) | (Some(credentials), Err(_)) => credentials,
        (None, Err(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(store) = &store {
        if args.ad_account_id.is_none() {
            args.ad_account_id = Some(store.entry.ad_account_id.clone());
        }
        api_token = api_token.or_else(|| store.secrets.pinterest_api_token.clone());
    }
    let admin = AdminApi::new(
        &args.shop,
        admin_credentials,
        &args.api_version,
        args.endpoints.admin_url_base.as_deref(),
    )?;
    let period = match (args.from, args.to) {
        (Some(from), Some(to)) => Period::Dates { from, to },
        _ => Period::Since(args.since.clone()),
    };
    let relay = Relay::open(&args).await?;
    // The relay's own rules where it records them; the flag still overrides the value source.
    if let Some(own) = relay_rules(&values, store.as_ref())? {
        let value_source = rules.value_source;
        rules = own;
        if args.value_source.is_some() {
            rules.value_source = value_source;
        }
    }
    let progress = progress_bar(!args.json);
    let mut on_page = |n: usize| progress.set_message(format!("{n} orders"));
    let fetched = reconcile::fetch(&admin, &relay, &period, &rules, Utc::now(), &mut on_page).await;
    progress.finish_and_clear();
    let mut report = match fetched {
        Ok(report) => report,
        Err(ReconcileError::Window(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let shop = report.shop.clone();
    if args.backfill {
        // The backfill's result is what was asked for: it comes first, and alone.
        return backfill(&args, &admin, &relay, &shop, &report).await;
    }
    // The store's Pinterest sign-in, where no variable or registered token gives one.
    let signed_in = relay.signed_in(&shop).await;
    if args.ad_account_id.is_none() {
        args.ad_account_id = signed_in.as_ref().map(|g| g.ad_account_id.clone());
    }
    let api_token = api_token.or_else(|| {
        signed_in
            .as_ref()
            .map(|g| g.access_token.expose_secret().to_owned())
    });
    report.quality = quality(&args, api_token.clone(), lookback, &report).await;
    report.customer_lists = match relay.customer_lists(&args, api_token, &shop).await {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("warning: the customer lists are not shown: {e}");
            Vec::new()
        }
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", reconcile::table(&report));
        if let Some(n) = relay.dead_letters().await.filter(|n| *n > 0) {
            println!(
                "\n{n} message(s) wait in the dead-letter queue: `pinrelay replay` lists and re-sends them"
            );
        }
    }
    if let Some(path) = &args.html {
        std::fs::write(path, reconcile::html(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

impl Relay {
    /// `shop`'s Pinterest sign-in in this relay, if any (a failure to read it is no sign-in).
    async fn signed_in(&self, shop: &str) -> Option<pinrelay::pinterest::oauth::Grant> {
        use pinrelay::pinterest::oauth::GrantStore as _;
        match self {
            Relay::Local { grants, .. } => grants.get(shop).await.ok().flatten(),
            Relay::Aws {
                grants: Some(grants),
                ..
            } => grants.get(shop).await.ok().flatten(),
            Relay::Aws { grants: None, .. } => None,
        }
    }

    /// The customer lists the relay keeps for `shop`, each with Pinterest's status when a token
    /// and ad account can read it.
    async fn customer_lists(
        &self,
        args: &Args,
        api_token: Option<String>,
        shop: &str,
    ) -> anyhow::Result<Vec<reconcile::CustomerListRow>> {
        use pinrelay::pinterest::audiences::PinterestAudiences;
        let api = match (api_token, &args.ad_account_id) {
            (Some(token), Some(account)) => Ok(PinterestAudiences::with_token(
                &args.endpoints.pinterest_api_url,
                account,
                token.into(),
                Duration::from_secs(20),
            )?),
            _ => Err(
                "no Pinterest token (sign in with `pinrelay pinterest login`, or set PINTEREST_API_TOKEN)"
                    .to_owned(),
            ),
        };
        let api = api.as_ref().map_err(Clone::clone);
        Ok(match self {
            Relay::Local { audiences, .. } => {
                reconcile::customer_lists(audiences, api, shop).await?
            }
            Relay::Aws { audiences, .. } => reconcile::customer_lists(audiences, api, shop).await?,
        })
    }
}

/// Pinterest's Event Quality of `checkout` events beside the report, when a token and ad account
/// are given; a failure is a warning, never the end of the report.
async fn quality(
    args: &Args,
    api_token: Option<String>,
    lookback: Lookback,
    report: &Report,
) -> Option<Quality> {
    let (Some(token), Some(account)) = (api_token, &args.ad_account_id) else {
        return None;
    };
    let api = PinterestHttp::new(PinterestHttpConfig {
        base_url: args
            .endpoints
            .pinterest_api_url
            .trim_end_matches('/')
            .to_owned(),
        ad_account_id: account.clone(),
        access_token: token.into(),
        test_mode: false,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
    })
    .ok()?;
    let mut scores = Vec::new();
    for source in [IngestionSource::ConversionsApi, IngestionSource::Tag] {
        match api.event_quality(lookback, source).await {
            Ok(found) => scores.extend(found),
            Err(e) => {
                eprintln!(
                    "warning: Pinterest's Event Quality ({}) is not shown: {e}",
                    source.as_str()
                );
                return None;
            }
        }
    }
    Some(Quality::new(lookback, &scores, &report.totals))
}

/// What `--backfill` did (or, with `--dry-run`, would do), by order id.
#[derive(Debug, Default, serde::Serialize)]
struct Backfill {
    /// Missing orders inside Pinterest's 7 days: sent through the relay (or, dry, to be).
    #[serde(skip_serializing_if = "Option::is_none")]
    would_send: Option<Vec<u64>>,
    /// Sent through the relay's queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<Vec<u64>>,
    /// Could not be queued, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<(u64, String)>,
    /// Never seen, and the conversion rules would skip them: never backfilled.
    not_conversions: Vec<u64>,
    /// Missing, and older than Pinterest's 7 days.
    not_recoverable: Vec<u64>,
}

/// Sends the recoverable missing orders through the relay's queue; exit 1 if any failed. The
/// result is one line (or, with `--json`, one object) before anything else.
async fn backfill(
    args: &Args,
    admin: &AdminApi,
    relay: &Relay,
    shop: &str,
    report: &Report,
) -> anyhow::Result<ExitCode> {
    let ids = |want: fn(&reconcile::Status) -> bool| -> Vec<u64> {
        report
            .orders
            .iter()
            .filter(|o| want(&o.status))
            .map(|o| o.id)
            .collect()
    };
    let recoverable: Vec<_> = report.recoverable().collect();
    let mut result = Backfill {
        not_conversions: ids(|s| matches!(s, reconcile::Status::NotAConversion { .. })),
        not_recoverable: ids(|s| matches!(s, reconcile::Status::Missing { recoverable: false })),
        ..Backfill::default()
    };
    if args.dry_run {
        result.would_send = Some(recoverable.iter().map(|o| o.id).collect());
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "dry run: {} missing order(s) would be backfilled, {} not recoverable (older than Pinterest's 7 days), {} never seen and not conversions; nothing was sent",
                recoverable.len(),
                result.not_recoverable.len(),
                result.not_conversions.len()
            );
            for o in &recoverable {
                println!("  would backfill {} (id {}, {})", o.name, o.id, o.date);
            }
            not_recoverable(report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !relay.can_send() {
        eprintln!("error: --backfill with --table needs --queue-url (or use --stack)");
        return Ok(ExitCode::from(2));
    }
    let progress = progress_bar(!args.json);
    progress.set_length(recoverable.len() as u64);
    let mut sent = Vec::new();
    for o in &recoverable {
        progress.set_message(o.name.clone());
        match backfill_one(admin, relay, shop, &args.api_version, o.id).await {
            Ok(()) => sent.push(o.id),
            Err(e) => result.failed.push((o.id, format!("{e:#}"))),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let failed = !result.failed.is_empty();
    if args.json {
        result.sent = Some(sent);
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "backfilled {} of {} missing order(s) through the relay's queue (dispatch sends each once); {} not recoverable, {} not conversions",
            sent.len(),
            recoverable.len(),
            result.not_recoverable.len(),
            result.not_conversions.len()
        );
        for (id, why) in &result.failed {
            println!("  failed: order {id}: {why}");
        }
        not_recoverable(report);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Lists the missing orders too old to send, by name.
fn not_recoverable(report: &Report) {
    let names: Vec<&str> = report
        .orders
        .iter()
        .filter(|o| matches!(o.status, reconcile::Status::Missing { recoverable: false }))
        .map(|o| o.name.as_str())
        .collect();
    if !names.is_empty() {
        println!(
            "  not recoverable (older than Pinterest's 7 days): {}",
            names.join(", ")
        );
    }
}

/// One missing order: its REST body, onto the relay's queue. Nothing is recorded before dispatch
/// settles it: the record says what happened, never what is hoped to happen.
async fn backfill_one(
    admin: &AdminApi,
    relay: &Relay,
    shop: &str,
    api_version: &str,
    id: u64,
) -> anyhow::Result<()> {
    let body = admin.order_payload(id).await?;
    let now = Utc::now();
    let message = Envelope::backfill(shop, id, api_version, body, now)
        .encode(MAX_ENQUEUE_BYTES, Duration::ZERO)
        .context("the order is too large for the queue")?;
    relay.send(&message).await
}

fn progress_bar(visible: bool) -> ProgressBar {
    if !visible || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos}/{len}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
