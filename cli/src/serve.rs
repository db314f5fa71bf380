//! `pinrelay serve`: the whole relay in one process, on SQLite under `--data-dir`.
//!
//! - HTTP (axum): every request except `GET /healthz` and `GET /metrics` goes through
//!   [`Ingest::handle`], the code the ingest Lambda runs, so routes, status codes and bodies are the
//!   same. A 200 means the webhook's row is committed.
//! - A dispatcher task: receive up to 1000 messages, [`Dispatcher::dispatch`] them (the dispatch
//!   Lambda's code), delete the settled ones; the rest come back after their backoff.
//! - Pinterest: the real API when `PINTEREST_ACCESS_TOKEN` and `PINTEREST_AD_ACCOUNT_ID` are set,
//!   otherwise a dry run printing each request body on stdout. Logs go to stderr.
//! - `GET /reconcile` (when `SHOPIFY_ADMIN_TOKEN`, or `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`, are set): the `pinrelay reconcile` report of the
//!   shop's orders against this relay's records, as the HTML page (`?format=json` for the JSON,
//!   `?since=14d` for another window). Served to loopback clients only: it lists orders and values.
//! - The audience job ([`pinrelay::audiences::job`]), when a store keeps customer lists
//!   (`AUDIENCE_LISTS`, the relay's or a registered store's own): at start, then every 15
//!   minutes, each such store's lists are synced once `AUDIENCE_SYNC_HOURS` old, with the store's
//!   Pinterest sign-in (or `PINTEREST_API_TOKEN`) and Admin credentials.
//! - SIGINT/SIGTERM: stop accepting, answer requests in flight, let the dispatcher finish its batch.
//! - One process per data directory, enforced by an exclusive lock on `serve.lock`: a batch's
//!   deadline is the visibility timeout, no Pinterest request starts that could not finish before
//!   it, and its locks last one request timeout longer, so a batch never outlives its own locks.
//!
//! Relay logic lives in the library: this file wires the SQLite adapters to [`Ingest`] and
//! [`Dispatcher`] and plays the part Lambda's SQS event source mapping plays in AWS: it receives
//! batches, deletes the messages the dispatcher settled, and purges expired rows hourly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use pinrelay::config;
use pinrelay::config::keys;
use pinrelay::dispatch::{Dispatcher, StoreRoutes};
use pinrelay::idempotency::sqlite::SqliteIdempotencyStore;
use pinrelay::ingest::{self, Ingest};
use pinrelay::metrics::Metrics;
use pinrelay::pinterest::http::DEFAULT_BASE_URL;
use pinrelay::pinterest::{
    ConversionsApi, ConversionsApiError, DryRun, Event, EventStatus, PinterestHttp,
    PinterestHttpConfig,
};
use pinrelay::profile::sqlite::SqliteProfileStore;
use pinrelay::queue::sqlite::SqliteQueue;
use pinrelay::queue::{EncodedMessage, Queue, QueueError};
use pinrelay::reconcile::{self, Period, ReconcileError};
use pinrelay::registry::sqlite::SqliteRegistry;
use pinrelay::registry::{CachedDirectory, DefaultStore, Registry as _, Shop};
use pinrelay::shopify::AdminApi;
use pinrelay::sqlite::SqliteDatabase;
use pinrelay::telemetry::{self, Output};
use serde_json::json;
use tokio::sync::{Notify, watch};

/// The largest request body accepted, as for a Lambda Function URL (6 MB).
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Messages per receive (and so at most per Pinterest request).
const BATCH: usize = 1000;

/// The file `pinrelay serve` holds an exclusive lock on, in its data directory.
const LOCK_FILE: &str = "serve.lock";

/// How long shutdown waits for requests in flight and the dispatcher's batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Arguments of `pinrelay serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the relay database (`relay.db`: queue, dead letters, idempotency records).
    #[arg(long, default_value = ".pinrelay")]
    pub data_dir: PathBuf,
    /// How long the dispatcher waits for new messages when the queue is empty, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub dispatch_interval_ms: u64,
    /// How long a store's registry entry is used before it is read again, in milliseconds: a
    /// store added or changed with `pinrelay shops` takes effect within this time.
    #[arg(
        long,
        hide = true,
        env = "PINRELAY_REGISTRY_TTL_MS",
        default_value_t = 60_000
    )]
    pub registry_ttl_ms: u64,
    /// First retry delay after a retryable Pinterest failure, in milliseconds; doubles with each
    /// attempt, up to 15 minutes.
    #[arg(long, env = "PINRELAY_RETRY_BASE_MS", default_value_t = 60_000)]
    pub retry_base_ms: u64,
    /// How long a received batch may take, in milliseconds: after a crash its messages are
    /// delivered again this long after they were received, and their idempotency locks expire one
    /// Pinterest request timeout (a third of this, 1 to 20 s) later.
    #[arg(long, env = "PINRELAY_VISIBILITY_TIMEOUT_MS", default_value_t = 60_000)]
    pub visibility_timeout_ms: u64,
}

/// The Pinterest target chosen at start-up.
enum Target {
    Pinterest(PinterestHttp),
    DryRun(DryRun),
}

impl ConversionsApi for Target {
    async fn send(&self, events: &[Event]) -> Result<Vec<EventStatus>, ConversionsApiError> {
        match self {
            Target::Pinterest(api) => api.send(events).await,
            Target::DryRun(api) => api.send(events).await,
        }
    }
}

/// The queue as ingest sees it: every stored webhook wakes the dispatcher.
#[derive(Clone)]
struct WakingQueue {
    queue: SqliteQueue,
    wake: Arc<Notify>,
}

impl Queue for WakingQueue {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
        self.queue.send(message).await?;
        self.wake.notify_one();
        Ok(())
    }
}

struct App {
    ingest: Ingest<WakingQueue>,
    queue: SqliteQueue,
    metrics: Metrics,
    report: Option<ReportPage>,
}

/// What `GET /reconcile` reads: the shop's Admin API and this relay's records; and who may read it.
struct ReportPage {
    admin: AdminApi,
    records: SqliteIdempotencyStore,
    rules: pinrelay::mapping::Options,
    access: ReportAccess,
    /// The customer lists' record and the Pinterest sign-ins, for the lists' section.
    lists: (
        pinrelay::audiences::sqlite::SqliteAudienceStore,
        pinrelay::pinterest::oauth::sqlite::SqliteGrantStore,
    ),
    /// Pinterest's API, where the lists' status is read.
    pinterest_api_url: String,
}

impl ReportPage {
    /// The customer lists this relay keeps for `shop`, each with Pinterest's status when a token
    /// (`PINTEREST_API_TOKEN`, else the store's sign-in) and ad account can read it.
    async fn customer_lists(
        &self,
        shop: &str,
    ) -> Result<Vec<reconcile::CustomerListRow>, pinrelay::audiences::LedgerError> {
        use pinrelay::pinterest::audiences::PinterestAudiences;
        use pinrelay::pinterest::oauth::GrantStore as _;
        let (ledger, grants) = &self.lists;
        let grant = grants.get(shop).await.ok().flatten();
        let token = config::var(keys::PINTEREST_API_TOKEN)
            .map(secrecy::SecretString::from)
            .or_else(|| grant.as_ref().map(|g| g.access_token.clone()));
        let account = config::var(keys::PINTEREST_AD_ACCOUNT_ID)
            .or_else(|| grant.as_ref().map(|g| g.ad_account_id.clone()));
        let api = match (token, account) {
            (Some(token), Some(account)) => PinterestAudiences::with_token(
                &self.pinterest_api_url,
                &account,
                token,
                Duration::from_secs(20),
            )
            .map_err(|e| e.to_string()),
            _ => Err("no Pinterest token: sign in with `pinrelay pinterest login`".to_owned()),
        };
        reconcile::customer_lists(ledger, api.as_ref().map_err(Clone::clone), shop).await
    }
}

/// Who may read the report: a request naming one of `allowed_hosts` (against DNS rebinding) with
/// the token, as `Authorization: Bearer …` or the `HttpOnly` cookie the login form sets (never in
/// the query string).
struct ReportAccess {
    token: secrecy::SecretString,
    allowed_hosts: Vec<String>,
}

/// The cookie the login form sets.
const REPORT_COOKIE: &str = "pinrelay_report";

/// Why a request may not read the report.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// The `Host` is not one of `PINRELAY_ALLOWED_HOSTS`.
    Host,
    /// No token was presented.
    NoToken,
    /// A token was presented and it is not the report's.
    WrongToken,
}

impl ReportAccess {
    /// Checks a request's headers.
    fn check(&self, headers: &axum::http::HeaderMap) -> Result<(), Refused> {
        use secrecy::ExposeSecret as _;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_without_port)
            .unwrap_or_default();
        if !self.allowed_hosts.contains(&host) {
            return Err(Refused::Host);
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == REPORT_COOKIE)
            .map(|(_, value)| value);
        match bearer.or(cookie) {
            None => Err(Refused::NoToken),
            Some(given) if same(given.trim(), self.token.expose_secret()) => Ok(()),
            Some(_) => Err(Refused::WrongToken),
        }
    }
}

/// The host of a `Host` header, lowercase, without its port (`[::1]:8080` → `[::1]`).
fn host_without_port(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => {
            name.to_owned()
        }
        _ => host,
    }
}

/// Compares two tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Writes the conversion rules and `VALUE_SOURCE` this relay runs with to its data directory.
fn record_settings(
    data_dir: &std::path::Path,
    rules: &pinrelay::mapping::Options,
) -> anyhow::Result<()> {
    let settings: std::collections::BTreeMap<&str, String> =
        config::order_rule_settings(rules).into_iter().collect();
    let path = data_dir.join(crate::reconcile::SETTINGS_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&settings)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A new report token: 32 random bytes, hex.
fn new_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The stores this relay serves: its registry, then its own variables.
type Shops = CachedDirectory<SqliteRegistry>;

type Relay =
    Dispatcher<SqliteIdempotencyStore, SqliteProfileStore, StoreRoutes<Shops, Target>, SqliteQueue>;

/// A registered store's Pinterest client: its ad account and token, or a dry run without a token.
fn store_target(shop: &Shop, base_url: &str, request_timeout: Duration) -> Result<Target, String> {
    let Some(token) = &shop.secrets.pinterest_access_token else {
        return Ok(Target::DryRun(DryRun::stdout()));
    };
    let test_mode = shop
        .setting(keys::PINTEREST_TEST_MODE, &|k| config::var(k))
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    PinterestHttp::new(PinterestHttpConfig {
        base_url: base_url.to_owned(),
        ad_account_id: shop.entry.ad_account_id.clone(),
        access_token: secrecy::SecretString::from(token.clone()),
        test_mode,
        connect_timeout: PINTEREST_CONNECT_TIMEOUT.min(request_timeout),
        request_timeout,
    })
    .map(Target::Pinterest)
    .map_err(|e| e.to_string())
}

/// Time allowed to open a connection to Pinterest.
const PINTEREST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one Pinterest request may take, with the default 60 s visibility timeout.
const PINTEREST_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A batch's deadline is the visibility timeout: its Pinterest requests get a third of it (at
/// most [`PINTEREST_REQUEST_TIMEOUT`], at least 1 s) and a tenth (at most 2 s) is kept to settle,
/// so a batch always has room for a request and never outlives its locks.
fn request_budget(visibility: Duration) -> (Duration, Duration) {
    let request = (visibility / 3).clamp(Duration::from_secs(1), PINTEREST_REQUEST_TIMEOUT);
    let margin = (visibility / 10).min(Duration::from_secs(2));
    (request, margin)
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    telemetry::init(Output::Stderr);

    let mut settings = config::serve_settings()?;
    let visibility = Duration::from_millis(args.visibility_timeout_ms.max(1));
    let (request_timeout, deadline_margin) = request_budget(visibility);
    // Without credentials it is a dry run; test mode validates without recording: both are test
    // sends, recorded as such.
    let test_sends = settings
        .pinterest
        .as_ref()
        .is_none_or(|(pinterest, _)| pinterest.test_mode);
    // The real API when the settings have credentials, a dry run otherwise.
    let target = match settings.pinterest {
        Some((pinterest, access_token)) => Target::Pinterest(
            PinterestHttp::new(PinterestHttpConfig {
                base_url: pinterest.base_url,
                ad_account_id: pinterest.ad_account_id,
                access_token,
                test_mode: pinterest.test_mode,
                connect_timeout: PINTEREST_CONNECT_TIMEOUT.min(request_timeout),
                request_timeout,
            })
            .context("cannot initialize the HTTPS client for Pinterest")?,
        ),
        None => Target::DryRun(DryRun::stdout()),
    };
    let max_receive_count = settings.dispatch.max_receive_count;
    let mut dispatch_config = settings.dispatch;
    dispatch_config.retry_base = Duration::from_millis(args.retry_base_ms.max(1));
    dispatch_config.request_timeout = request_timeout;
    dispatch_config.deadline_margin = deadline_margin;
    // Test-mode and dry-run sends are recorded as such: switching to real credentials on the same
    // data directory sends those orders for real, once.
    if test_sends {
        dispatch_config.mode = pinrelay::idempotency::Mode::Test;
    }

    let db = SqliteDatabase::open_in(&args.data_dir)?;
    // The rules this relay runs with, for `pinrelay reconcile --data-dir` to judge orders alike.
    record_settings(&args.data_dir, &dispatch_config.options)?;
    // One relay per data directory: a second would compete for messages and its batches could
    // outlive the other's locks. The lock is the OS's, released whenever this process ends.
    let lock_path = args.data_dir.join(LOCK_FILE);
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another pinrelay serve is running on {}; one relay per data directory (stop it, or give this one another --data-dir)",
            args.data_dir.display()
        );
    }
    // The queue redrives well after the dispatcher's own last attempt (as SQS does on the stack),
    // so the dispatcher dead-letters with the real reason, a paused store's messages come back for
    // Pinterest's 7 days, and the queue only catches crashes.
    let queue = SqliteQueue::new(db.clone())
        .with_max_receive_count(pinrelay::dispatch::QUEUE_MAX_RECEIVES.max(max_receive_count + 1));
    let store = SqliteIdempotencyStore::new(db.clone());
    let profiles = SqliteProfileStore::new(db.clone());
    let metrics = Metrics::in_memory("serve");
    let wake = Arc::new(Notify::new());
    let target_name = match &target {
        Target::Pinterest(_) => "Pinterest API",
        Target::DryRun(_) => "dry run (request bodies on stdout)",
    };
    // The stores: registered ones (`pinrelay shops add`), then the default store of the relay's
    // variables. Read again after --registry-ttl-ms, so a store added or changed takes effect
    // without a restart.
    let registry = SqliteRegistry::new(db.clone());
    let registered = registry.list().await?;
    let default = DefaultStore::new(&settings.webhook_secrets, config::allowed_shops());
    if default.is_none() && registered.is_empty() {
        anyhow::bail!(
            "no store to serve: set SHOPIFY_WEBHOOK_SECRETS to the Shopify app's client secret, or register stores with `pinrelay shops add SHOP --data-dir {}`",
            args.data_dir.display()
        );
    }
    tracing::info!(
        registered = registered.len(),
        default_store = default.is_some(),
        "stores"
    );
    let shops: Arc<Shops> = Arc::new(
        CachedDirectory::new(Some(registry), default)
            .with_ttl(Duration::from_millis(args.registry_ttl_ms)),
    );
    settings.ingest.shops = shops.clone();
    let base_url =
        config::var(keys::PINTEREST_API_URL).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let sign_ins = (
        pinrelay::pinterest::oauth::sqlite::SqliteGrantStore::new(db.clone()),
        pinrelay::pinterest::oauth::OAuthClient::new(&base_url, request_timeout)?,
    );
    // Checked now, so a bad value stops serve at start rather than every run of the job.
    pinrelay::audiences::job::parse_lists(config::var(keys::AUDIENCE_LISTS).as_deref())?;
    pinrelay::audiences::job::JobSettings::from_vars(&config::var, String::new())?;
    let audience_endpoints = pinrelay::audiences::job::Endpoints {
        api_version: config::var(keys::SHOPIFY_API_VERSION)
            .unwrap_or_else(|| pinrelay::shopify::admin::DEFAULT_API_VERSION.to_owned()),
        admin_api_url: config::var(keys::SHOPIFY_ADMIN_API_URL),
        pinterest_api_url: base_url.clone(),
    };
    let routes = StoreRoutes::new(
        shops,
        target,
        Box::new(move |shop| store_target(shop, &base_url, request_timeout)),
    );
    let dispatcher = Dispatcher::new(
        store.clone(),
        profiles.clone(),
        routes,
        queue.clone(),
        dispatch_config,
        metrics.clone(),
    )
    // `pinrelay audiences sync --data-dir`'s record: a redaction reaches it here.
    .with_audiences(Arc::new(
        pinrelay::audiences::sqlite::SqliteAudienceStore::new(db.clone()),
    ));
    let report = match config::serve_report_settings()? {
        Some(r) => {
            let token = match r.token_for_report {
                Some(token) => token,
                None => {
                    let token = new_token()?;
                    eprintln!(
                        "the reconcile report (GET /reconcile) asks for this token, made for this run (set PINRELAY_REPORT_TOKEN to choose one): {token}"
                    );
                    secrecy::SecretString::from(token)
                }
            };
            Some(ReportPage {
                admin: AdminApi::new(
                    &r.shop,
                    r.credentials,
                    &r.api_version,
                    r.admin_api_url.as_deref(),
                )?,
                records: store.clone(),
                rules: r.rules,
                lists: (
                    pinrelay::audiences::sqlite::SqliteAudienceStore::new(db.clone()),
                    pinrelay::pinterest::oauth::sqlite::SqliteGrantStore::new(db.clone()),
                ),
                pinterest_api_url: config::var(keys::PINTEREST_API_URL)
                    .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
                access: ReportAccess {
                    token,
                    allowed_hosts: r.allowed_hosts,
                },
            })
        }
        None => None,
    };
    let app = Arc::new(App {
        ingest: Ingest::new(
            WakingQueue {
                queue: queue.clone(),
                wake: wake.clone(),
            },
            settings.ingest,
            metrics.clone(),
        ),
        queue: queue.clone(),
        metrics,
        report,
    });

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let stop = Arc::new(stop);
    tokio::spawn(stop_on_signal(stop.clone()));
    tokio::spawn(refresh_loop(sign_ins, stopping.clone()));
    tokio::spawn(audience_loop(
        db.clone(),
        audience_endpoints,
        stopping.clone(),
    ));

    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_json))
        .route("/reconcile", get(reconcile_page))
        .route("/reconcile/login", axum::routing::post(report_login))
        .fallback(webhook)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    tracing::info!(address = %address, data_dir = %args.data_dir.display(), target = target_name, "pinrelay serve listening");
    eprintln!(
        "pinrelay serve: listening on http://{address} (data dir {}, Pinterest: {target_name})",
        db.path().display()
    );
    let mut until_stopped = stopping.clone();
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = until_stopped.wait_for(|s| *s).await;
        })
        .await;
        // Whatever ended the server also ends the dispatcher.
        let _ = server_stop.send(true);
        served
    });

    // The dispatcher runs on this task rather than a spawned one: its future holds borrows of the
    // batch across awaits (it is not `Send`), and it leaves the runtime's workers to HTTP.
    let mut stopped = stopping.clone();
    tokio::select! {
        () = dispatch_loop(
            dispatcher,
            queue,
            (store, profiles),
            wake,
            Duration::from_millis(args.dispatch_interval_ms.max(1)),
            visibility,
            stopping,
        ) => {}
        () = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(
            "the dispatcher did not finish its batch within {SHUTDOWN_GRACE:?}; its messages will be delivered again after the visibility timeout"
        ),
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(served)) => served.context("the HTTP server failed")?,
        Ok(Err(e)) => anyhow::bail!("the HTTP server task failed: {e}"),
        Err(_) => tracing::warn!(
            "requests still open {SHUTDOWN_GRACE:?} after the shutdown signal were dropped"
        ),
    }
    tracing::info!("pinrelay serve stopped");
    eprintln!("pinrelay serve: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn stop_on_signal(stop: Arc<watch::Sender<bool>>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight and the current batch");
    let _ = stop.send(true);
}

/// The stores' Pinterest sign-ins: checked at start and hourly, each due one renewed under its
/// lease (serve is its data dir's only refresher; `pinrelay pinterest refresh` takes the same
/// lease). Never exits on an error: a failure is logged with its fix, and tried again next hour.
async fn refresh_loop(
    (grants, client): (
        pinrelay::pinterest::oauth::sqlite::SqliteGrantStore,
        pinrelay::pinterest::oauth::OAuthClient,
    ),
    mut stopping: watch::Receiver<bool>,
) {
    const CHECK_EVERY: Duration = Duration::from_secs(3600);
    while !*stopping.borrow() {
        match grants.shops().await {
            Ok(shops) => {
                let outcomes =
                    pinrelay::pinterest::oauth::refresh_due(&grants, &client, &shops, Utc::now())
                        .await;
                for (shop, outcome) in &outcomes {
                    pinrelay::pinterest::oauth::log_refresh(shop, outcome);
                }
            }
            Err(e) => {
                tracing::error!(error.message = %e, "cannot read the stores' Pinterest sign-ins")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// The audience job on the data directory: at start, then every [`job::TICK`], every store that
/// keeps lists and is due is synced ([`job::run_stores`]); a run stops at the next tick's time and
/// the next resumes it. Never exits on an error: each store's failure is logged with its fix.
///
/// [`job::TICK`]: pinrelay::audiences::job::TICK
/// [`job::run_stores`]: pinrelay::audiences::job::run_stores
async fn audience_loop(
    db: SqliteDatabase,
    endpoints: pinrelay::audiences::job::Endpoints,
    mut stopping: watch::Receiver<bool>,
) {
    use pinrelay::audiences::job::{self, DefaultStore, Fallback, JobSettings};
    let registry = SqliteRegistry::new(db.clone());
    let grants = pinrelay::pinterest::oauth::sqlite::SqliteGrantStore::new(db.clone());
    let ledger = pinrelay::audiences::sqlite::SqliteAudienceStore::new(db);
    let holder = format!("serve-{}", std::process::id());
    while !*stopping.borrow() {
        let started = tokio::time::Instant::now();
        match JobSettings::from_vars(&config::var, holder.clone()) {
            Ok(settings) => {
                let default = config::watched_shop().map(|shop| DefaultStore {
                    shop,
                    fallback: Fallback {
                        ad_account_id: config::var(keys::PINTEREST_AD_ACCOUNT_ID),
                        api_token: config::var(keys::PINTEREST_API_TOKEN)
                            .map(secrecy::SecretString::from),
                        admin: config::admin_credentials().ok().flatten(),
                    },
                });
                let run = job::run_stores(
                    &registry,
                    &grants,
                    &ledger,
                    default,
                    &config::var,
                    &endpoints,
                    &settings,
                    Utc::now(),
                    started + job::TICK,
                );
                tokio::select! {
                    outcomes = run => match outcomes {
                        Ok(outcomes) => {
                            for (shop, outcome) in &outcomes {
                                job::log_outcome(shop, outcome);
                            }
                        }
                        Err(e) => tracing::error!(error.message = %e, outcome = "audiences_failed", "the audience job cannot list the stores"),
                    },
                    // Stopping drops the run: what Pinterest accepted is recorded, and the lease
                    // lapses by itself.
                    _ = stopping.changed() => break,
                }
            }
            Err(e) => tracing::error!(error.message = %e, "audience job settings"),
        }
        tokio::select! {
            () = tokio::time::sleep_until(started + job::TICK) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Receives, dispatches and acknowledges until stopped; never exits on an error.
async fn dispatch_loop(
    dispatcher: Relay,
    queue: SqliteQueue,
    (store, profiles): (SqliteIdempotencyStore, SqliteProfileStore),
    wake: Arc<Notify>,
    interval: Duration,
    visibility: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    const PURGE_EVERY: Duration = Duration::from_secs(3600);
    let mut last_purge: Option<tokio::time::Instant> = None;
    let lock = chrono::Duration::from_std(visibility).unwrap_or(chrono::Duration::MAX);
    while !*stopping.borrow() {
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            let now = Utc::now();
            match store.purge_expired(now).await {
                Ok(n) => tracing::debug!(records = n, "purged expired idempotency records"),
                Err(e) => {
                    tracing::warn!(error.message = %e, "could not purge expired idempotency records")
                }
            }
            match profiles.purge_expired(now).await {
                Ok(n) => tracing::debug!(profiles = n, "purged expired shopper profiles"),
                Err(e) => {
                    tracing::warn!(error.message = %e, "could not purge expired shopper profiles")
                }
            }
        }
        let now = Utc::now();
        let batch = match queue.receive(BATCH, visibility, now).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = ?e, "cannot receive from the relay database; retrying");
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
                _ = stopping.changed() => {}
            }
            continue;
        }
        let report = dispatcher.dispatch(&batch, now, now + lock).await;
        let settled: Vec<String> = batch
            .iter()
            .filter(|m| !report.batch_item_failures.contains(&m.id))
            .map(|m| m.receipt.clone())
            .collect();
        if let Err(e) = queue.delete_many(&settled).await {
            // They come back after the visibility timeout; the idempotency store absorbs the repeat.
            tracing::error!(error.message = %e, messages = settled.len(), "cannot acknowledge settled messages; they will be delivered again");
        }
        tracing::debug!(
            received = batch.len(),
            settled = settled.len(),
            retried = report.batch_item_failures.len(),
            "batch dispatched"
        );
    }
}

async fn webhook(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = ingest::Request {
        method: &method,
        path: uri.path(),
        headers: &headers,
        body: &body,
        source_ip: Some(peer.ip()),
    };
    let reply = app.ingest.handle(request, Utc::now()).await;
    let extra_headers = reply.headers();
    let mut response = (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response();
    for (name, value) in extra_headers {
        response.headers_mut().insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.queue.depth(Utc::now()).await {
        Ok(depth) => axum::Json(json!({
            "status": "ok",
            "pending": depth.pending,
            "visible": depth.visible,
            "dead_letters": depth.dead_letters,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics_json(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.metrics.snapshot()).into_response()
}

/// The login form a browser gets instead of the report: the token is posted once, and the answer
/// sets it as an `HttpOnly` cookie.
const LOGIN_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>pinrelay reconcile</title></head>\
<body><form method=\"post\" action=\"/reconcile/login\"><p>The reconcile report lists this shop's orders; \
enter the token pinrelay serve printed at start (or PINRELAY_REPORT_TOKEN).</p>\
<input type=\"password\" name=\"token\" autocomplete=\"off\" required> <button>Open the report</button></form></body></html>";

/// The answer to a request that may not read the report.
fn refused(why: Refused) -> Response {
    match why {
        Refused::Host => (
            StatusCode::FORBIDDEN,
            "the reconcile report answers only to the hosts in PINRELAY_ALLOWED_HOSTS (default localhost,127.0.0.1)",
        )
            .into_response(),
        Refused::NoToken => (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            LOGIN_PAGE,
        )
            .into_response(),
        Refused::WrongToken => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            "the report token is wrong",
        )
            .into_response(),
    }
}

/// The login form's post.
#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

/// `POST /reconcile/login`: the right token sets the `HttpOnly` cookie and goes to the report.
async fn report_login(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    axum::Form(login): axum::Form<Login>,
) -> Response {
    use secrecy::ExposeSecret as _;
    let Some(page) = &app.report else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut with_token = headers.clone();
    with_token.remove(header::COOKIE);
    if let Ok(v) = format!("Bearer {}", login.token.trim()).parse() {
        with_token.insert(header::AUTHORIZATION, v);
    }
    if let Err(why) = page.access.check(&with_token) {
        return refused(why);
    }
    let cookie = format!(
        "{REPORT_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/reconcile",
        page.access.token.expose_secret()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/reconcile".to_owned()),
        ],
    )
        .into_response()
}

/// The query of `GET /reconcile`.
#[derive(serde::Deserialize)]
struct ReportQuery {
    /// `7d` by default.
    since: Option<String>,
    /// `json` for the JSON report, anything else the HTML page.
    format: Option<String>,
}

/// `GET /reconcile`: the reconcile report, to its owner only: it lists orders and values, and the
/// relay's address is often reachable from the internet (a proxy or tunnel for the storefront
/// endpoint), so the peer address proves nothing. [`ReportAccess`] decides.
async fn reconcile_page(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Query(query): Query<ReportQuery>,
) -> Response {
    let Some(page) = &app.report else {
        let why = "no report: set SHOPIFY_ADMIN_TOKEN (read_orders), or SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET, and SHOPIFY_SHOP_DOMAINS (or SHOP_DOMAIN), then restart pinrelay serve";
        return (StatusCode::NOT_FOUND, why).into_response();
    };
    if let Err(why) = page.access.check(&headers) {
        return refused(why);
    }
    let period = Period::Since(query.since.unwrap_or_else(|| "7d".to_owned()));
    let fetched = reconcile::fetch(
        &page.admin,
        &page.records,
        &period,
        &page.rules,
        Utc::now(),
        &mut |_| {},
    )
    .await;
    let fetched = match fetched {
        Ok(mut report) => {
            match page.customer_lists(&report.shop).await {
                Ok(rows) => report.customer_lists = rows,
                Err(e) => tracing::warn!(error.message = %e, "the customer lists are not shown"),
            }
            Ok(report)
        }
        Err(e) => Err(e),
    };
    match fetched {
        Ok(report) if query.format.as_deref() == Some("json") => axum::Json(report).into_response(),
        Ok(report) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            reconcile::html(&report),
        )
            .into_response(),
        Err(e @ ReconcileError::Window(_)) => {
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e) => {
            tracing::warn!(error.message = %e, "the reconcile report failed");
            (StatusCode::BAD_GATEWAY, e.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> ReportAccess {
        ReportAccess {
            token: secrecy::SecretString::from("s3cret-token"),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into()],
        }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_report_needs_an_allowed_host_and_the_token() {
        let a = access();
        let host = (header::HOST, "127.0.0.1:8080");
        let bearer = (header::AUTHORIZATION, "Bearer s3cret-token");
        assert_eq!(a.check(&headers(&[host.clone(), bearer.clone()])), Ok(()));
        assert_eq!(
            a.check(&headers(&[
                (header::HOST, "localhost"),
                (header::COOKIE, "a=b; pinrelay_report=s3cret-token")
            ])),
            Ok(())
        );
        assert_eq!(
            a.check(&headers(&[
                (header::HOST, "evil.example:8080"),
                bearer.clone()
            ])),
            Err(Refused::Host),
            "a foreign Host (DNS rebinding, a proxy's public name)"
        );
        assert_eq!(a.check(&headers(&[bearer])), Err(Refused::Host));
        assert_eq!(
            a.check(&headers(std::slice::from_ref(&host))),
            Err(Refused::NoToken)
        );
        assert_eq!(
            a.check(&headers(&[host, (header::AUTHORIZATION, "Bearer nope")])),
            Err(Refused::WrongToken)
        );
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("LocalHost"), "localhost");
        assert_eq!(new_token().unwrap().len(), 64);
    }

    #[test]
    fn a_batch_always_has_room_for_one_request_and_settling() {
        for ms in [1, 500, 1500, 3000, 60_000, 3_600_000] {
            let visibility = Duration::from_millis(ms);
            let (request, margin) = request_budget(visibility);
            assert!(request <= PINTEREST_REQUEST_TIMEOUT && request >= Duration::from_secs(1));
            assert!(margin <= Duration::from_secs(2));
            if visibility >= Duration::from_millis(1500) {
                assert!(request + margin < visibility, "{ms} ms");
            }
        }
        assert_eq!(
            request_budget(Duration::from_secs(60)),
            (Duration::from_secs(20), Duration::from_secs(2))
        );
    }
}
