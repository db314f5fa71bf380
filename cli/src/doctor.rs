//! `pinrelay doctor`: checks a setup end to end, a deployed stack's (`--stack`: its outputs,
//! parameters and secrets) or `pinrelay serve`'s (its variables), one line per check (`ok`, `fail`
//! with its fix, or `skip`); exits 1 when a check fails.

use std::process::ExitCode;
use std::time::Duration;

use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::dispatch;
use pinrelay::doctor::{self, AlarmSubscriber, LatestOrder, PixelSeen, Secret, is_placeholder};
use pinrelay::dynamodb::Table;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;
use pinrelay::idempotency::sqlite::SqliteIdempotencyStore;
use pinrelay::idempotency::{IdempotencyKey, IdempotencyStore as _};
use pinrelay::mapping::{CheckoutOn, ContentIdSource};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::shopify::admin::{
    AdminApi, AdminCredentials, DEFAULT_API_VERSION, RetryPolicy, shop_domain,
};
use pinrelay::{ingest, metrics};
use secrecy::{ExposeSecret as _, SecretString};

use crate::stack::Stack;
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::audiences::sqlite::SqliteAudienceStore;
use pinrelay::audiences::{AudienceStore as _, ListKind, ListState};
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::registry::sqlite::SqliteRegistry;
use pinrelay::registry::{Registry as _, STORE_SETTINGS, Shop};

/// Arguments of `pinrelay doctor`. Tokens and secrets come from the stack or serve's variables,
/// never flags.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// A deployed stack: its outputs, parameters and secrets; without it, serve's variables.
    #[arg(long, conflicts_with = "data_dir")]
    pub stack: Option<String>,
    /// `pinrelay serve`'s data directory, for its records (whether the latest order arrived).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Print `[{"check", "status", "detail", "fix"}]` instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Where the Shopify and Pinterest APIs are (tests point them at fakes).
    #[command(flatten)]
    pub endpoints: crate::input::Endpoints,
}

/// Doctor's own waits: a check answers within seconds or fails, it does not wait out an outage.
const CHECK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 2,
    min_wait: Duration::from_millis(250),
    max_wait: Duration::from_secs(2),
    attempt_timeout: Duration::from_secs(10),
};

/// A token and where it lives (named in skips and fixes).
struct Token {
    /// The token, when filled with something other than a placeholder.
    value: Option<SecretString>,
    /// `PINTEREST_ACCESS_TOKEN`, or the stack's secret.
    home: String,
}

/// The Admin API credentials and where they live (named in skips and fixes).
struct Admin {
    /// A token or a client id and secret, when filled with something other than a placeholder.
    value: Option<AdminCredentials>,
    /// `SHOPIFY_ADMIN_TOKEN` (or the client id and secret variables), or the stack's secret.
    home: String,
}

impl Admin {
    fn new(value: Option<AdminCredentials>, home: impl Into<String>) -> Self {
        let filled = |c: &AdminCredentials| match c {
            AdminCredentials::Token(token) => !is_placeholder(token.expose_secret()),
            AdminCredentials::ClientCredentials {
                client_id,
                client_secret,
            } => !is_placeholder(client_id) && !is_placeholder(client_secret.expose_secret()),
        };
        Self {
            value: value.filter(filled),
            home: home.into(),
        }
    }
}

impl Token {
    fn new(value: Option<SecretString>, home: impl Into<String>) -> Self {
        Self {
            value: value.filter(|v| !is_placeholder(v.expose_secret())),
            home: home.into(),
        }
    }
}

/// The relay's records, where doctor looks up the latest order and the customer lists.
enum Records {
    /// `pinrelay serve`'s data directory.
    Local(SqliteIdempotencyStore, SqliteAudienceStore),
    /// A stack's table.
    Aws(DynamoDbIdempotencyStore, DynamoDbAudienceStore),
}

impl Records {
    /// serve's records in `dir`.
    fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        let db = crate::local::open_existing_db(dir)?;
        Ok(Self::Local(
            SqliteIdempotencyStore::new(db.clone()),
            SqliteAudienceStore::new(db),
        ))
    }

    /// A stack's records in `table`.
    fn aws(table: Table) -> Self {
        Self::Aws(
            DynamoDbIdempotencyStore::new(table.clone()),
            DynamoDbAudienceStore::new(table),
        )
    }

    /// What the relay recorded of `shop`'s customer lists (`pinrelay audiences sync`).
    async fn lists(&self, shop: &str) -> anyhow::Result<Vec<(ListKind, ListState)>> {
        let mut out = Vec::new();
        for kind in ListKind::ALL {
            let state = match self {
                Self::Local(_, ledger) => ledger.state(shop, kind).await?,
                Self::Aws(_, ledger) => ledger.state(shop, kind).await?,
            };
            out.push((kind, state));
        }
        Ok(out)
    }

    async fn has(&self, key: &IdempotencyKey) -> anyhow::Result<bool> {
        let now = chrono::Utc::now();
        let keys = std::slice::from_ref(key);
        let found = match self {
            Self::Local(store, _) => store.get_many(keys, now).await?,
            Self::Aws(store, _) => store.get_many(keys, now).await?,
        };
        Ok(!found.is_empty())
    }
}

/// What the relay itself counted: refusals for a bad signature, and the pixel's settings.
struct Observed {
    /// Webhooks refused for their HMAC, and over what period.
    bad_signatures: Option<(u64, &'static str)>,
    /// Browser events and those whose settings differed.
    pixel: Option<PixelSeen>,
}

/// What the checks need, from a stack or from serve's variables.
struct Setup {
    secrets: Vec<Secret>,
    /// Where the webhook secret lives (named in fixes).
    webhook_secret_home: String,
    /// The relay's records, when reachable from here.
    records: Option<Records>,
    /// The relay's own counts.
    observed: Observed,
    /// The alarm topic and its subscriptions (a stack only).
    alarm: Option<(String, Vec<AlarmSubscriber>)>,
    /// `ORDER_DELAY_SECONDS`.
    order_delay: Duration,
    /// The command that prints the pixel for this setup.
    pixel_command: String,
    admin: Admin,
    conversion_token: Token,
    ad_account: Option<String>,
    checkout_on: CheckoutOn,
    /// `CONTENT_ID`, the scheme `catalog_ids` expects the catalog to use.
    content_id: ContentIdSource,
    /// `CATALOG_COUNTRY`: a template's `{country}`, and the country the catalog is looked up in.
    catalog_country: Option<String>,
    webhook_url: Option<String>,
    api_version: String,
    /// A registered store's own Pinterest API token (else `PINTEREST_API_TOKEN`, else the
    /// sign-in's access token).
    api_token: Option<SecretString>,
    /// The store's sign-in to Pinterest (`pinrelay pinterest login`), when it has one.
    grant: Option<pinrelay::pinterest::oauth::Grant>,
    /// How commands name this relay in fixes: `--data-dir DIR`, `--stack NAME`, or nothing.
    relay: String,
    /// `AUDIENCE_LISTS`: the customer lists the audience job keeps for the store (raw, checked
    /// by `customer_lists`).
    audience_lists: Option<String>,
}

/// Runs the checks and prints them.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(shop) = shop_domain(&args.shop) else {
        eprintln!(
            "error: --shop {:?} is not a shop name or a name.myshopify.com domain",
            args.shop
        );
        return Ok(ExitCode::from(2));
    };
    let setup = match &args.stack {
        Some(name) => from_stack(name, &shop).await?,
        None => from_env(args.data_dir.as_deref(), &shop).await?,
    };

    let mut findings = vec![doctor::secrets(&setup.secrets)];
    let admin = match &setup.admin.value {
        Some(credentials) => Some(
            AdminApi::new(
                &shop,
                credentials.clone(),
                &setup.api_version,
                args.endpoints.admin_url_base.as_deref(),
            )?
            .with_retry_policy(CHECK_RETRY),
        ),
        None => None,
    };
    let admin_finding = doctor::shopify_admin_token(admin.as_ref(), &setup.admin.home).await;
    let admin_works = admin_finding.status == doctor::Status::Ok;
    findings.push(admin_finding);
    let granted = match admin.as_ref().filter(|_| admin_works) {
        Some(admin) => Some(admin.access_scopes().await),
        None => None,
    };
    findings.push(doctor::shopify_scopes(granted.as_ref(), setup.checkout_on));
    findings.push(
        doctor::webhook_subscriptions(
            admin.as_ref().filter(|_| admin_works),
            setup.checkout_on,
            &shop,
            setup.webhook_url.as_deref(),
        )
        .await,
    );

    let pinterest = |token: Option<SecretString>, test_mode: bool| -> anyhow::Result<_> {
        let account = setup
            .ad_account
            .clone()
            .or_else(|| setup.grant.as_ref().map(|g| g.ad_account_id.clone()));
        let (Some(token), Some(account)) = (token, account) else {
            return Ok(None);
        };
        Ok(Some(PinterestHttp::new(PinterestHttpConfig {
            base_url: args
                .endpoints
                .pinterest_api_url
                .trim_end_matches('/')
                .to_owned(),
            ad_account_id: account,
            access_token: token,
            test_mode,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        })?))
    };
    let latest = latest_order(
        admin.as_ref().filter(|_| admin_works),
        setup.records.as_ref(),
        &shop,
        setup.order_delay,
    )
    .await;
    findings.push(doctor::webhook_secret(
        setup.observed.bad_signatures,
        &latest,
        &setup.webhook_secret_home,
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let browser_url = match &args.endpoints.relay_url_base {
        Some(base) => Some(format!(
            "{}{}",
            base.trim_end_matches('/'),
            ingest::BROWSER_PATH
        )),
        None => setup.webhook_url.as_deref().map(browser_url),
    };
    findings.push(doctor::storefront_endpoint(&http, browser_url.as_deref(), &shop).await);
    findings.push(doctor::pixel_settings(
        setup.observed.pixel,
        &setup.pixel_command,
    ));
    findings.push(doctor::alarm_subscription(
        setup
            .alarm
            .as_ref()
            .map(|(arn, subscribers)| (arn.as_str(), subscribers.as_slice())),
    ));

    let account = setup.ad_account.clone().unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let conversions = pinterest(setup.conversion_token.value.clone(), true)?;
    findings.push(
        doctor::pinterest_conversion_token(
            conversions.as_ref(),
            &account,
            &setup.conversion_token.home,
            now,
        )
        .await,
    );
    // The store's own API token, else PINTEREST_API_TOKEN, else the sign-in's access token.
    let api_token = setup
        .api_token
        .clone()
        .or_else(|| config::var(keys::PINTEREST_API_TOKEN).map(SecretString::from))
        .or_else(|| setup.grant.as_ref().map(|g| g.access_token.clone()));
    let api = pinterest(api_token, false)?;
    findings.push(doctor::event_quality(api.as_ref()).await);
    findings.push(
        doctor::catalog_ids(
            api.as_ref(),
            admin.as_ref().filter(|_| admin_works),
            granted.as_ref().and_then(|g| g.as_deref().ok()),
            &setup.content_id,
            setup.catalog_country.as_deref(),
        )
        .await,
    );

    findings.push(doctor::pinterest_sign_in(
        setup.grant.as_ref(),
        &shop,
        &setup.relay,
        chrono::Utc::now(),
    ));

    findings.push(customer_lists(&setup, &shop, &args).await);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", doctor::render(&findings));
    }
    Ok(if doctor::passed(&findings) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The browser endpoint beside the webhook URL (`…/webhooks/shopify` → `…/events/browser`).
fn browser_url(webhook_url: &str) -> String {
    let base = webhook_url
        .trim_end_matches('/')
        .trim_end_matches(ingest::WEBHOOK_PATH);
    format!("{base}{}", ingest::BROWSER_PATH)
}

/// Whether the shop's latest order reached the relay: it has a record, or it is too recent to
/// tell (the relay's delay plus reconcile's grace). Reads that one order only.
async fn latest_order(
    admin: Option<&AdminApi>,
    records: Option<&Records>,
    shop: &str,
    order_delay: Duration,
) -> LatestOrder {
    let (Some(admin), Some(records)) = (admin, records) else {
        return LatestOrder::Unknown;
    };
    let order = match admin.newest_order().await {
        Ok(Some(order)) => order,
        Ok(None) => return LatestOrder::None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the latest order");
            return LatestOrder::Unknown;
        }
    };
    let name = order.name.clone();
    let now = chrono::Utc::now();
    let age = (now - order.created_at).to_std().unwrap_or_default();
    if age < order_delay + pinrelay::reconcile::Settings::default().grace {
        return LatestOrder::TooRecent { name };
    }
    let Ok(key) = IdempotencyKey::order(shop, order.legacy_resource_id) else {
        return LatestOrder::Unknown;
    };
    match records.has(&key).await {
        Ok(true) => LatestOrder::Reached { name },
        Ok(false) => LatestOrder::Missing {
            name,
            minutes_ago: i64::try_from(age.as_secs() / 60).unwrap_or(i64::MAX),
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the relay's records");
            LatestOrder::Unknown
        }
    }
}

/// A running serve's counts, from `GET /metrics` beside its webhook URL (since it started).
async fn serve_counts(webhook_url: Option<&str>) -> Observed {
    let unknown = Observed {
        bad_signatures: None,
        pixel: None,
    };
    let Some(url) = webhook_url else {
        return unknown;
    };
    let base = url
        .trim_end_matches('/')
        .trim_end_matches(ingest::WEBHOOK_PATH);
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return unknown;
    };
    let totals: Option<std::collections::BTreeMap<String, f64>> =
        match client.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
    let Some(totals) = totals else {
        return unknown;
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counts"
    )]
    let count = |key: &str| totals.get(key).copied().unwrap_or(0.0) as u64;
    Observed {
        bad_signatures: Some((
            count(&format!(
                "{}{{Reason={}}}",
                metrics::names::WEBHOOKS_REJECTED,
                ingest::Rejection::BAD_SIGNATURE
            )),
            "since serve started",
        )),
        pixel: Some(PixelSeen {
            events: Some(count(metrics::names::BROWSER_EVENTS_ENQUEUED)),
            drifted: count(metrics::names::PIXEL_SETTINGS_DRIFT),
        }),
    }
}

/// `pinrelay serve`'s setup: its variables, and its data directory when given.
async fn from_env(data_dir: Option<&std::path::Path>, shop: &str) -> anyhow::Result<Setup> {
    let mut base = from_variables(data_dir, shop).await?;
    if let Some(dir) = data_dir {
        use pinrelay::pinterest::oauth::GrantStore as _;
        let grants = pinrelay::pinterest::oauth::sqlite::SqliteGrantStore::new(
            crate::local::open_existing_db(dir)?,
        );
        base.grant = grants.get(shop).await?;
        base.relay = format!("--data-dir {}", dir.display());
        let registry = SqliteRegistry::new(crate::local::open_existing_db(dir)?);
        if let Some(store) = registry.get(shop).await? {
            let relay = format!("--data-dir {}", dir.display());
            return with_store(base, &store, &relay, &|k| config::var(k));
        }
    }
    Ok(base)
}

/// serve's variables (the default store), and its records when `data_dir` is given.
async fn from_variables(data_dir: Option<&std::path::Path>, shop: &str) -> anyhow::Result<Setup> {
    let options = config::mapping_options()?;
    let var = |key: &'static str, fix: &str| Secret {
        name: key.to_owned(),
        value: config::var(key),
        fix: format!("set {key} to {fix}"),
    };
    Ok(Setup {
        secrets: vec![
            var(
                keys::SHOPIFY_WEBHOOK_SECRETS,
                "the Shopify app's client secret (Dev Dashboard or Partner Dashboard, app, Settings)",
            ),
            var(
                keys::PINTEREST_ACCESS_TOKEN,
                "the conversion access token (Ads Manager, Conversions, Conversion access token)",
            ),
            var(
                keys::PINTEREST_AD_ACCOUNT_ID,
                "the Pinterest ad account id (Ads Manager, the number in the URL)",
            ),
        ],
        admin: Admin::new(
            config::admin_credentials()?,
            format!(
                "{} (or {} and {})",
                keys::SHOPIFY_ADMIN_TOKEN,
                keys::SHOPIFY_CLIENT_ID,
                keys::SHOPIFY_CLIENT_SECRET
            ),
        ),
        conversion_token: Token::new(
            config::var(keys::PINTEREST_ACCESS_TOKEN).map(SecretString::from),
            keys::PINTEREST_ACCESS_TOKEN,
        ),
        ad_account: config::var(keys::PINTEREST_AD_ACCOUNT_ID),
        checkout_on: options.checkout_on,
        content_id: options.content_id,
        catalog_country: options.catalog_country,
        webhook_secret_home: keys::SHOPIFY_WEBHOOK_SECRETS.to_owned(),
        records: match data_dir {
            Some(dir) => Some(Records::local(dir)?),
            None => None,
        },
        observed: serve_counts(config::var(keys::WEBHOOK_URL).as_deref()).await,
        alarm: None,
        order_delay: serve_order_delay(),
        pixel_command: format!("pinrelay pixel --shop {shop} --tag-id YOUR_TAG_ID"),
        audience_lists: config::var(keys::AUDIENCE_LISTS),
        webhook_url: config::var(keys::WEBHOOK_URL),
        api_version: config::var(keys::SHOPIFY_API_VERSION)
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
        api_token: None,
        grant: None,
        relay: String::new(),
    })
}

/// serve's `ORDER_DELAY_SECONDS` (doctor judges an order only once it is older).
fn serve_order_delay() -> Duration {
    Duration::from_secs(
        config::var(keys::ORDER_DELAY_SECONDS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(config::DEFAULT_ORDER_DELAY_SECONDS),
    )
}

/// A registered store's checks: the relay-wide `base` (records, counts, alarms, URL) with the
/// store's own secrets, ad account and settings (its unset ones from `fallback`, the relay's).
/// `relay` is how commands name this relay (`--data-dir DIR`, `--stack NAME`) in fixes.
fn with_store(
    mut base: Setup,
    store: &Shop,
    relay: &str,
    fallback: &dyn Fn(&'static str) -> Option<String>,
) -> anyhow::Result<Setup> {
    let domain = &store.entry.domain;
    let options = store.options(fallback)?;
    let update = format!("run `pinrelay shops update {domain} --secrets {relay}`");
    let secret = |name: &str, value: Option<&String>| Secret {
        name: format!("{domain}'s {name}"),
        value: value.cloned(),
        fix: update.clone(),
    };
    let secrets = &store.secrets;
    base.secrets = vec![
        secret("webhook secret", secrets.webhook_secrets.first()),
        secret(
            "Pinterest conversion token",
            secrets.pinterest_access_token.as_ref(),
        ),
    ];
    base.webhook_secret_home = format!("{domain}'s webhook secret ({update})");
    base.admin = Admin::new(
        secrets.admin_credentials(),
        format!("{domain}'s Admin credentials ({update})"),
    );
    base.conversion_token = Token::new(
        secrets
            .pinterest_access_token
            .clone()
            .map(SecretString::from),
        format!("{domain}'s Pinterest conversion token ({update})"),
    );
    base.ad_account = Some(store.entry.ad_account_id.clone());
    base.checkout_on = options.checkout_on;
    base.content_id = options.content_id;
    base.catalog_country = options.catalog_country;
    base.api_token = secrets.pinterest_api_token.clone().map(SecretString::from);
    base.pixel_command = format!("pinrelay pixel --shop {domain} --tag-id YOUR_TAG_ID {relay}");
    base.audience_lists =
        store.setting(keys::AUDIENCE_LISTS, &|k| match (k, &base.audience_lists) {
            (keys::AUDIENCE_LISTS, Some(v)) => Some(v.clone()),
            _ => fallback(k),
        });
    Ok(base)
}

/// The stack's counts of the last 24 hours, from its log groups: ingest's lines for webhooks
/// refused for their signature, and dispatch's warnings of pixel settings that differ. (The
/// refusals are also a metric, but CloudWatch's metric API is not one moto can stand in for, and
/// the pixel's drift is not stored as a metric at all.)
async fn stack_counts(
    sdk: &aws_config::SdkConfig,
    resources: &std::collections::HashMap<String, String>,
) -> Observed {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let since = millis(std::time::SystemTime::now() - Duration::from_secs(86_400));
    let bad_signature = format!("\"outcome\":\"{}\"", ingest::Rejection::BAD_SIGNATURE);
    let bad_signatures = match resources.get("IngestLogGroup") {
        Some(group) => count_lines(&logs, group, "bad_signature", &bad_signature, since)
            .await
            .map(|n| (n, "in the last 24 hours")),
        None => None,
    };
    let pixel = match resources.get("DispatchLogGroup") {
        Some(group) => count_lines(&logs, group, "pixel", dispatch::PIXEL_DRIFT_MESSAGE, since)
            .await
            .map(|drifted| PixelSeen {
                events: None,
                drifted,
            }),
        None => None,
    };
    Observed {
        bad_signatures,
        pixel,
    }
}

/// Lines of log group `group` since `since_ms` that contain `needle`, found through the filter
/// term `term`; at most ten pages are read. `None` when the group cannot be read.
async fn count_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    term: &str,
    needle: &str,
    since_ms: i64,
) -> Option<u64> {
    let mut count = 0;
    let mut next: Option<String> = None;
    for _ in 0..10 {
        let answer = logs
            .filter_log_events()
            .log_group_name(group)
            .filter_pattern(term)
            .start_time(since_ms)
            .set_next_token(next.take())
            .send()
            .await;
        let page = match answer {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(group, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e), "cannot read the log group");
                return None;
            }
        };
        count += page
            .events()
            .iter()
            .filter(|e| e.message().is_some_and(|m| m.contains(needle)))
            .count() as u64;
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    Some(count)
}

fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The stack's alarm topic and its subscriptions; `None` without a topic.
async fn alarm_topic(
    sdk: &aws_config::SdkConfig,
    topic: Option<&String>,
) -> anyhow::Result<Option<(String, Vec<AlarmSubscriber>)>> {
    let Some(arn) = topic else {
        return Ok(None);
    };
    let out = aws_sdk_sns::Client::new(sdk)
        .list_subscriptions_by_topic()
        .topic_arn(arn)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot list the subscriptions of {arn}: {}",
                aws_sdk_sns::error::DisplayErrorContext(&e)
            )
        })?;
    let subscribers = out
        .subscriptions()
        .iter()
        .map(|s| AlarmSubscriber {
            endpoint: s.endpoint().unwrap_or("?").to_owned(),
            confirmed: s.subscription_arn().is_some_and(|a| a.starts_with("arn:")),
        })
        .collect();
    Ok(Some((arn.clone(), subscribers)))
}

/// A deployed stack's setup: its outputs, its parameters and the values of its secrets.
async fn from_stack(name: &str, shop: &str) -> anyhow::Result<Setup> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, name).await?;
    let mut base = from_stack_outputs(&sdk, &stack, name, shop).await?;
    base.relay = format!("--stack {name}");
    if let Ok(grants) = crate::pinterest::Grants::of_stack(&sdk, &stack, name) {
        use pinrelay::pinterest::oauth::GrantStore as _;
        base.grant = grants.get(shop).await?;
    }
    // A registered store (pinrelay shops --stack): its own secrets, ad account and settings.
    if let (Some(table), Some(prefix)) = (
        stack.output("IdempotencyTableName"),
        stack.output("ShopSecretsPrefix"),
    ) {
        let registry = AwsRegistry::new(
            Table::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            aws_sdk_secretsmanager::Client::new(&sdk),
            prefix,
        );
        if let Some(store) = registry.get(shop).await? {
            let parameters = stack.variables(&STORE_SETTINGS);
            let relay = format!("--stack {name}");
            return with_store(base, &store, &relay, &|k| {
                parameters.get(k).filter(|v| !v.is_empty()).cloned()
            });
        }
    }
    Ok(base)
}

/// The default store of a stack: its outputs, parameters, secrets, log groups and alarm topic.
async fn from_stack_outputs(
    sdk: &aws_config::SdkConfig,
    stack: &Stack,
    name: &str,
    shop: &str,
) -> anyhow::Result<Setup> {
    let sdk = sdk.clone();
    let resources = Stack::resources(&sdk, name).await?;
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&sdk);
    let mut secrets = Vec::new();
    let mut values = Vec::new();
    for (output, what) in [
        ("ShopifyWebhookSecret", "the Shopify app's client secret"),
        (
            "PinterestAccessTokenSecret",
            "the Pinterest conversion access token",
        ),
        (
            "ShopifyAdminTokenSecret",
            r#"an Admin API access token with read_orders, or a Dev Dashboard app's {"client_id": "...", "client_secret": "..."}"#,
        ),
    ] {
        let arn = stack.output(output);
        let value = match &arn {
            Some(arn) => secret_value(&secrets_manager, arn).await?,
            None => None,
        };
        secrets.push(Secret {
            name: output.to_owned(),
            value: value.clone(),
            fix: format!(
                "aws secretsmanager put-secret-value --secret-id {} --secret-string file:///dev/stdin (paste {what}, then Ctrl-D)",
                arn.as_deref().unwrap_or(output)
            ),
        });
        values.push(value);
    }
    let token = |value: &Option<String>, key| {
        value
            .as_deref()
            .and_then(|v| pinrelay::secrets::parse_pinterest_token(v, key).ok())
    };
    let rules = stack.variables(&crate::stack::RULE_VARIABLES);
    let get = |key: &'static str| rules.get(key).cloned();
    // An empty CatalogCountry is the parameter's default: unset.
    let catalog = stack.variables(&[keys::CONTENT_ID, keys::CATALOG_COUNTRY]);
    let catalog =
        config::mapping_options_from(&|key| catalog.get(key).filter(|v| !v.is_empty()).cloned())?;
    Ok(Setup {
        admin: Admin::new(
            values[2].as_deref().and_then(|v| {
                pinrelay::secrets::parse_admin_credentials(v, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN)
                    .ok()
            }),
            "the stack's ShopifyAdminTokenSecret",
        ),
        conversion_token: Token::new(
            token(&values[1], keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN),
            "the stack's PinterestAccessTokenSecret",
        ),
        secrets,
        ad_account: stack.parameter("PinterestAdAccountId"),
        checkout_on: config::order_rules_from(&get)?.checkout_on,
        content_id: catalog.content_id,
        catalog_country: catalog.catalog_country,
        webhook_secret_home: "the stack's ShopifyWebhookSecret".to_owned(),
        records: stack
            .output("IdempotencyTableName")
            .map(|table| Records::aws(Table::new(aws_sdk_dynamodb::Client::new(&sdk), table))),
        observed: stack_counts(&sdk, &resources).await,
        alarm: alarm_topic(&sdk, resources.get("AlarmTopic")).await?,
        order_delay: Duration::from_secs(
            stack
                .parameter("OrderDelaySeconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(config::DEFAULT_ORDER_DELAY_SECONDS),
        ),
        pixel_command: format!("pinrelay pixel --shop {shop} --tag-id YOUR_TAG_ID --stack {name}"),
        audience_lists: stack
            .variables(&[keys::AUDIENCE_LISTS])
            .remove(keys::AUDIENCE_LISTS)
            .filter(|v| !v.is_empty()),
        webhook_url: stack.output("WebhookUrl"),
        api_version: config::var(keys::SHOPIFY_API_VERSION)
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
        api_token: None,
        grant: None,
        relay: String::new(),
    })
}

/// A secret's current value; `None` when it has none yet (the stack creates its secrets empty).
///
/// # Errors
/// The secret cannot be read (permissions, region).
pub async fn secret_value(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> anyhow::Result<Option<String>> {
    match client.get_secret_value().secret_id(arn).send().await {
        Ok(out) => Ok(out.secret_string().map(str::to_owned)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read secret {arn} (check the credentials allow secretsmanager:GetSecretValue): {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        )),
    }
}

/// `customer_lists`: the lists `pinrelay audiences sync` keeps for the shop, with their status
/// on Pinterest when a token can read it (the API token, or the sign-in's).
async fn customer_lists(setup: &Setup, shop: &str, args: &Args) -> doctor::Finding {
    let lists = match &setup.records {
        Some(records) => match records.lists(shop).await {
            Ok(lists) => lists,
            Err(e) => {
                return doctor::customer_lists(
                    &[],
                    Err(format!("the relay's record cannot be read: {e}")),
                    shop,
                    &setup.relay,
                );
            }
        },
        None => Vec::new(),
    };
    // As for Event Quality: the store's own API token, else PINTEREST_API_TOKEN, else the
    // sign-in's access token.
    let token = setup
        .api_token
        .clone()
        .or_else(|| config::var(keys::PINTEREST_API_TOKEN).map(SecretString::from))
        .or_else(|| setup.grant.as_ref().map(|g| g.access_token.clone()));
    let account = setup
        .ad_account
        .clone()
        .or_else(|| setup.grant.as_ref().map(|g| g.ad_account_id.clone()));
    // Lists the audience job should keep but has not created yet: can it run for this store?
    if lists.iter().all(|(_, state)| state.list_id.is_none())
        && let Some(finding) =
            audience_job_readiness(setup, shop, token.is_some(), account.is_some())
    {
        return finding;
    }
    let mut statuses = Vec::new();
    for (kind, state) in &lists {
        let Some(list_id) = &state.list_id else {
            continue;
        };
        let status = match (&token, &account) {
            (Some(token), Some(account)) => list_status(args, token.clone(), account, list_id)
                .await
                .map(Some),
            _ => Ok(None),
        };
        match status {
            Ok(status) => statuses.push((*kind, state.clone(), status)),
            Err(e) => {
                return doctor::customer_lists(&statuses, Err(e), shop, &setup.relay);
            }
        }
    }
    doctor::customer_lists(&statuses, Ok(()), shop, &setup.relay)
}

/// For a store whose `AUDIENCE_LISTS` names lists none of which exists yet: whether the audience
/// job has what it needs (a Pinterest token that can write lists, an ad account, Admin
/// credentials), as the finding; `None` when the store keeps no list.
fn audience_job_readiness(
    setup: &Setup,
    shop: &str,
    has_token: bool,
    has_account: bool,
) -> Option<doctor::Finding> {
    use pinrelay::audiences::job::parse_lists;
    let id = doctor::CheckId::CustomerLists;
    let kinds = match parse_lists(setup.audience_lists.as_deref()) {
        Ok(kinds) if kinds.is_empty() => return None,
        Ok(kinds) => kinds,
        Err(e) => {
            return Some(doctor::Finding::fail(
                id,
                e.to_string(),
                "set AUDIENCE_LISTS to customers, purchasers or customers,purchasers".to_owned(),
            ));
        }
    };
    let names: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
    let login = format!("pinrelay pinterest login --shop {shop} {}", setup.relay);
    let missing = if !has_token {
        Some("no Pinterest token that can write customer lists (the conversion token cannot)")
    } else if !has_account {
        Some("no Pinterest ad account for the lists")
    } else if setup.admin.value.is_none() {
        Some("no Admin credentials to read the customers (read_customers)")
    } else {
        None
    };
    Some(match missing {
        Some(what) => doctor::Finding::fail(
            id,
            format!(
                "AUDIENCE_LISTS keeps the {} list(s), but the audience job cannot run for {shop}: {what}",
                names.join(" and ")
            ),
            format!("sign in with `{}`, then run doctor again", login.trim_end()),
        ),
        None => doctor::Finding::ok(
            id,
            format!(
                "AUDIENCE_LISTS keeps the {} list(s): the audience job creates them at its next run (every 15 minutes)",
                names.join(" and ")
            ),
        ),
    })
}

/// A customer list's status on Pinterest (`PROCESSING`, `READY`, `TOO_SMALL`, `UPLOADING`).
async fn list_status(
    args: &Args,
    token: SecretString,
    account: &str,
    list_id: &str,
) -> Result<String, String> {
    use pinrelay::pinterest::audiences::CustomerListsApi as _;
    use pinrelay::pinterest::audiences::PinterestAudiences;
    PinterestAudiences::with_token(
        &args.endpoints.pinterest_api_url,
        account,
        token,
        Duration::from_secs(20),
    )
    .map_err(|e| e.to_string())?
    .get_list(list_id)
    .await
    .map(|info| info.status.unwrap_or_else(|| "unknown".to_owned()))
    .map_err(|e| e.to_string())
}
