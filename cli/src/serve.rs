//! `pinrelay serve`: the whole relay in one process, on SQLite under `--data-dir`.
//!
//! - HTTP (axum): every request except `GET /healthz` and `GET /metrics` goes through
//!   [`Ingest::handle`], the code the ingest Lambda runs, so routes, status codes and bodies are the
//!   same. A 200 means the webhook's row is committed.
//! - A dispatcher task: receive up to 1000 messages, [`Dispatcher::dispatch`] them (the dispatch
//!   Lambda's code), delete the settled ones; the rest come back after their backoff.
//! - Pinterest: the real API when `PINTEREST_ACCESS_TOKEN` and `PINTEREST_AD_ACCOUNT_ID` are set,
//!   otherwise a dry run printing each request body on stdout. Logs go to stderr.
//! - `GET /reconcile` (when `SHOPIFY_ADMIN_TOKEN` is set): the `pinrelay reconcile` report of the
//!   shop's orders against this relay's records, as the HTML page (`?format=json` for the JSON,
//!   `?since=14d` for another window). Served to loopback clients only: it lists orders and values.
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
use pinrelay::dispatch::Dispatcher;
use pinrelay::idempotency::sqlite::SqliteIdempotencyStore;
use pinrelay::ingest::{self, Ingest};
use pinrelay::metrics::Metrics;
use pinrelay::pinterest::{
    ConversionsApi, ConversionsApiError, DryRun, Event, EventStatus, PinterestHttp,
    PinterestHttpConfig,
};
use pinrelay::profile::sqlite::SqliteProfileStore;
use pinrelay::queue::sqlite::SqliteQueue;
use pinrelay::queue::{EncodedMessage, Queue, QueueError};
use pinrelay::reconcile::{self, Period, ReconcileError};
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

/// What `GET /reconcile` reads: the shop's Admin API and this relay's records.
struct ReportPage {
    admin: AdminApi,
    records: SqliteIdempotencyStore,
    rules: pinrelay::mapping::Options,
}

type Relay = Dispatcher<SqliteIdempotencyStore, SqliteProfileStore, Target, SqliteQueue>;

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

    let settings = config::serve_settings()?;
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
    // The queue redrives one delivery after the dispatcher's own last attempt, so the dispatcher
    // dead-letters with the real reason and the queue only catches crashes.
    let queue = SqliteQueue::new(db.clone()).with_max_receive_count(max_receive_count + 1);
    let store = SqliteIdempotencyStore::new(db.clone());
    let profiles = SqliteProfileStore::new(db.clone());
    let metrics = Metrics::in_memory("serve");
    let wake = Arc::new(Notify::new());
    let target_name = match &target {
        Target::Pinterest(_) => "Pinterest API",
        Target::DryRun(_) => "dry run (request bodies on stdout)",
    };
    let dispatcher = Dispatcher::new(
        store.clone(),
        profiles.clone(),
        target,
        queue.clone(),
        dispatch_config,
        metrics.clone(),
    );
    let report = match config::serve_report_settings()? {
        Some(r) => Some(ReportPage {
            admin: AdminApi::new(&r.shop, r.token, &r.api_version, r.admin_api_url.as_deref())?,
            records: store.clone(),
            rules: r.rules,
        }),
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

    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_json))
        .route("/reconcile", get(reconcile_page))
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

/// Whether `peer` may read the reconcile report: this machine only (fails closed for any other).
fn report_allowed(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        ip => ip.is_loopback(),
    }
}

/// The query of `GET /reconcile`.
#[derive(serde::Deserialize)]
struct ReportQuery {
    /// `7d` by default.
    since: Option<String>,
    /// `json` for the JSON report, anything else the HTML page.
    format: Option<String>,
}

/// `GET /reconcile`: the reconcile report, to this machine only (it lists orders and values, and the
/// relay's address may be reachable from the internet for the storefront endpoint).
async fn reconcile_page(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<ReportQuery>,
) -> Response {
    if !report_allowed(peer) {
        let why = "the reconcile report is served to this machine only (127.0.0.1 or ::1)";
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let Some(page) = &app.report else {
        let why = "no report: set SHOPIFY_ADMIN_TOKEN (read_orders) and SHOPIFY_SHOP_DOMAINS (or SHOP_DOMAIN), then restart pinrelay serve";
        return (StatusCode::NOT_FOUND, why).into_response();
    };
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

    #[test]
    fn the_reconcile_report_is_for_this_machine_only() {
        for ok in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            assert!(report_allowed(ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "10.0.0.7:1",
            "203.0.113.9:1",
            "[2001:db8::1]:1",
            "[::ffff:203.0.113.9]:1",
        ] {
            assert!(!report_allowed(no.parse().unwrap()), "{no}");
        }
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
