//! A local fake of Pinterest's Conversions API (`POST /v5/ad_accounts/{id}/events`), Event
//! Quality Score (`GET /v5/ad_accounts/{id}/conversion_eqs`) and catalog item lookup
//! (`POST /v5/catalogs/items`) for the integration tests. It is not a mock that expects calls: it
//! records state.
//!
//! - Checks the Bearer token ([`ACCESS_TOKEN`], or one added with [`FakePinterest::accept_token`])
//!   and answers 401 otherwise, or once it is refused ([`FakePinterest::refuse_token`]).
//! - Validates every body against `tests/fixtures/pinterest/conversion-events.request.schema.json`;
//!   an invalid body is answered 400 `{"code":4196,...}` and its schema errors are kept
//!   ([`FakePinterest::schema_errors`]), so a test can never pass on a body Pinterest would refuse.
//! - Answers 200 with one `events[]` status per event, or 422 `DetailedError` when every event
//!   failed, like the real API.
//! - Records every request and every accepted event (with repeats, to assert "exactly once").
//! - Failures are injected while it runs: [`FakePinterest::fail_next`],
//!   [`FakePinterest::fail_events`], [`FakePinterest::reject_requests_containing`].
//! - `conversion_eqs` checks the token the same way, answers 400 for a missing or invalid
//!   `lookback_period` (or an `ingestion_source` / `source_platform` outside the 5.23 enums), and
//!   otherwise the body set with [`FakePinterest::set_event_quality`] for the pair
//!   (`lookback_period`, `ingestion_source`), else [`default_event_quality`]; without
//!   `ingestion_source` it concatenates the `CONVERSIONS_API` and `TAG` answers, and
//!   `source_platform` filters by the elements' `source_platform`. Requests are recorded
//!   ([`FakePinterest::quality_requests`]).
//! - `catalogs/items` checks the token the same way, validates the body against
//!   [`catalog_items_request_schema`] (400 and [`FakePinterest::schema_errors`] otherwise), and
//!   answers the retail items seeded with [`FakePinterest::add_catalog_items`] for the body's
//!   `country` and `language` among its `item_ids` (an error record for each id it lacks, as the
//!   real API may). [`FakePinterest::catalog_requests`] records each request.
//!
//! - OAuth (sign in to Pinterest): the authorize page, the token endpoint with rotating refresh
//!   tokens, and the ad account listing; see the section "OAuth" near the end of this file.
//! - Customer lists and audiences (see the "Customer lists" section): lists kept as sets of
//!   records, `ADD`/`REMOVE` applied, every list request recorded with its size, `records`
//!   checked to be one comma-separated string of SHA-256 hex digests, 429s and failures injected.
//!
//! It does not model rate limits of the other endpoints, event age checks or Pinterest's own event_id deduplication, and
//! its quality scores are set, never computed from the events it accepted.

#![allow(dead_code)] // Shared by several test modules; each uses a part.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The token the fake accepts (`Authorization: Bearer ...`).
pub const ACCESS_TOKEN: &str = "fake-pinterest-token";

/// The ad account id tests configure (any id is accepted and recorded).
pub const AD_ACCOUNT_ID: &str = "549755885175";

/// How long [`Failure::Timeout`] holds a response: longer than any client timeout in the tests.
pub const TIMEOUT_HOLD: Duration = Duration::from_secs(30);

const REQUEST_SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/pinterest/conversion-events.request.schema.json"
));

/// A whole-request failure injected with [`FakePinterest::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer this status (429, 500, 503, 401, 400, ...) with Pinterest's error body.
    Status(u16),
    /// Hold the response for [`TIMEOUT_HOLD`], past the client's timeout; nothing is accepted.
    Timeout,
}

/// One request the fake received, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `{id}` of the path.
    pub ad_account_id: String,
    /// Events in `data` (0 when the body is not JSON with a `data` array).
    pub event_count: usize,
    /// The `event_id`s of `data`, in order.
    pub event_ids: Vec<String>,
    /// The `test` query parameter, as sent.
    pub test: Option<String>,
    /// The status the fake answered (for timeouts, the status it would have sent: 0).
    pub status: u16,
}

/// One `GET conversion_eqs` request the fake received, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityRequest {
    /// The `{id}` of the path.
    pub ad_account_id: String,
    /// Query parameters, as sent.
    pub lookback_period: Option<String>,
    /// See `lookback_period`.
    pub ingestion_source: Option<String>,
    /// See `lookback_period`.
    pub source_platform: Option<String>,
    /// The `test` query parameter, which the real endpoint does not take.
    pub test: Option<String>,
    /// The status the fake answered (0 for a held timeout).
    pub status: u16,
}

/// `LookbackPeriodOptions` of the 5.23 spec.
const LOOKBACK_PERIODS: [&str; 2] = ["1d", "14d"];
/// `IngestionSourceOptions`.
const INGESTION_SOURCES: [&str; 5] = ["TAG", "MMP", "FILE_UPLOAD", "CONVERSIONS_API", "NATIVE"];
/// `SourcePlatformOptions`.
const SOURCE_PLATFORMS: [&str; 9] = [
    "WEB",
    "MOBILE",
    "MOBILE_ANDROID",
    "MOBILE_IOS",
    "OFFLINE",
    "PINTEREST_WEB",
    "PINTEREST_ANDROID",
    "PINTEREST_IOS",
    "POINT_OF_SALE",
];

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    accepted: Vec<Value>,
    schema_errors: Vec<String>,
    fail_next: VecDeque<Failure>,
    failing_events: HashMap<String, String>,
    poison: HashSet<String>,
    event_quality: HashMap<(String, String), Value>,
    quality_requests: Vec<QualityRequest>,
    /// Retail item ids by (country, language).
    catalog: HashMap<(String, String), HashSet<String>>,
    catalog_requests: Vec<CatalogRequest>,
    tokens: HashSet<String>,
    refused_tokens: HashSet<String>,
}

/// One `POST catalogs/items` request the fake received, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRequest {
    /// The `ad_account_id` query parameter.
    pub ad_account_id: Option<String>,
    /// The body, as sent (`Null` when it is not JSON).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Sign-in state (the OAuth section at the end of this file).
    oauth: Mutex<OAuthState>,
    validator: jsonschema::Validator,
    catalog_validator: jsonschema::Validator,
    audiences: Mutex<AudienceInner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the recorded state from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake; dropping it stops the server.
pub struct FakePinterest {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePinterest {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePinterest {
    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let schema: Value = serde_json::from_str(REQUEST_SCHEMA).expect("request schema is JSON");
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("request schema compiles");
        let catalog_validator = jsonschema::options()
            .build(&catalog_items_request_schema())
            .expect("catalog request schema compiles");
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            oauth: Mutex::default(),
            validator,
            catalog_validator,
            audiences: Mutex::default(),
        });
        let app = Router::new()
            .route("/v5/ad_accounts/{id}/events", post(events))
            .route("/v5/ad_accounts/{id}/conversion_eqs", get(conversion_eqs))
            .route("/v5/catalogs/items", post(catalog_items))
            .merge(oauth_routes())
            .merge(audience_routes())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:{port}`: the value of `PINTEREST_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` requests (with a valid token and body or query), to either route, fail this
    /// way.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared
            .lock()
            .fail_next
            .extend(std::iter::repeat_n(failure, n));
    }

    /// From now on, these events get a per-event `failed` status with `message`.
    pub fn fail_events<I, S>(&self, event_ids: I, message: &str)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut inner = self.shared.lock();
        for id in event_ids {
            inner.failing_events.insert(id.into(), message.to_owned());
        }
    }

    /// From now on, any request whose batch contains this event is refused as a whole with 400.
    pub fn reject_requests_containing(&self, event_id: &str) {
        self.shared.lock().poison.insert(event_id.to_owned());
    }

    /// From now on, `conversion_eqs?lookback_period={lookback}&ingestion_source={source}` answers
    /// 200 with `body` (normally an array of `EventQualityScore`; any JSON is sent as is). The
    /// strings are the wire values (`1d`, `CONVERSIONS_API`), so the fake checks what the client
    /// sends rather than sharing its types.
    pub fn set_event_quality(&self, lookback: &str, source: &str, body: Value) {
        self.shared
            .lock()
            .event_quality
            .insert((lookback.to_owned(), source.to_owned()), body);
    }

    /// Every `conversion_eqs` request received, in order.
    pub fn quality_requests(&self) -> Vec<QualityRequest> {
        self.shared.lock().quality_requests.clone()
    }

    /// From now on, the ad account's retail catalog holds these item ids for `country` and
    /// `language` (`US`, `EN`).
    pub fn add_catalog_items<I, S>(&self, country: &str, language: &str, item_ids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared
            .lock()
            .catalog
            .entry((country.to_owned(), language.to_owned()))
            .or_default()
            .extend(item_ids.into_iter().map(Into::into));
    }

    /// Every `catalogs/items` request received, in order.
    pub fn catalog_requests(&self) -> Vec<CatalogRequest> {
        self.shared.lock().catalog_requests.clone()
    }

    /// From now on, this token is accepted too (one ad account's, in a multi-store test).
    pub fn accept_token(&self, token: &str) {
        self.shared.lock().tokens.insert(token.to_owned());
    }

    /// From now on, this token is answered 401 (revoked), whatever else it was.
    pub fn refuse_token(&self, token: &str) {
        self.shared.lock().refused_tokens.insert(token.to_owned());
    }

    /// Removes every injected failure.
    pub fn heal(&self) {
        let mut inner = self.shared.lock();
        inner.fail_next.clear();
        inner.failing_events.clear();
        inner.poison.clear();
    }

    /// The `event_id` of every event answered `processed`, in order, with repeats.
    pub fn accepted_event_ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .accepted
            .iter()
            .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every event answered `processed`, as sent.
    pub fn accepted_events(&self) -> Vec<Value> {
        self.shared.lock().accepted.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Schema violations of every body refused as invalid (`{instance path}: {error}`).
    pub fn schema_errors(&self) -> Vec<String> {
        self.shared.lock().schema_errors.clone()
    }
}

fn error_body(status: u16) -> Value {
    let (code, message) = match status {
        400 => (4196, "The request was invalid."),
        401 => (2, "Authentication failed."),
        403 => (29, "You are not permitted to access that resource."),
        404 => (4, "Ad account not found."),
        429 => (8, "This request exceeded a rate limit."),
        503 => (
            4197,
            "The endpoint has been ramped down and is currently not accepting any traffic.",
        ),
        _ => (12, "Something went wrong on our end. Sorry about that."),
    };
    json!({ "code": code, "message": message })
}

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

async fn events(
    State(shared): State<Arc<Shared>>,
    Path(ad_account_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let data: Vec<Value> = parsed
        .as_ref()
        .and_then(|v| v.get("data"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let event_ids: Vec<String> = data
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut recorded = RecordedRequest {
        ad_account_id,
        event_count: data.len(),
        event_ids: event_ids.clone(),
        test: query.get("test").cloned(),
        status: 0,
    };

    let authorized = authorized(&headers, &shared.lock());
    let decision = {
        let mut inner = shared.lock();
        if !authorized {
            Some((401, error_body(401)))
        } else if let Some(errors) = invalid(&shared.validator, parsed.as_ref()) {
            let message = format!("The request was invalid. {}", errors.join("; "));
            inner.schema_errors.extend(errors);
            Some((400, json!({ "code": 4196, "message": message })))
        } else if let Some(failure) = inner.fail_next.pop_front() {
            match failure {
                Failure::Status(status) => Some((status, error_body(status))),
                Failure::Timeout => None,
            }
        } else if let Some(id) = event_ids.iter().find(|id| inner.poison.contains(*id)) {
            let message = format!("The request was invalid. Invalid parameters for event {id}.");
            Some((400, json!({ "code": 4196, "message": message })))
        } else {
            let statuses: Vec<Value> = data
                .iter()
                .zip(&event_ids)
                .map(|(event, id)| match inner.failing_events.get(id) {
                    Some(message) => json!({
                        "status": "failed",
                        "error_message": message,
                        "warning_message": null,
                    }),
                    None => {
                        inner.accepted.push(event.clone());
                        json!({ "status": "processed", "error_message": null, "warning_message": null })
                    }
                })
                .collect();
            let processed = statuses
                .iter()
                .filter(|s| s["status"] == "processed")
                .count();
            let answer = json!({
                "num_events_received": data.len(),
                "num_events_processed": processed,
                "events": statuses,
            });
            if processed == 0 {
                let error = json!({
                    "code": 953,
                    "message": "The action could not be processed properly due to some or all data provided being invalid.",
                    "details": answer,
                });
                Some((422, error))
            } else {
                Some((200, answer))
            }
        }
    };
    let Some((status, response)) = decision else {
        shared.lock().requests.push(recorded);
        tokio::time::sleep(TIMEOUT_HOLD).await;
        return reply(503, error_body(503));
    };
    recorded.status = status;
    shared.lock().requests.push(recorded);
    reply(status, response)
}

/// The answer `conversion_eqs` gives for a pair that was not set: a plausible web store whose
/// Conversions API events are FAIR (few click ids, with an issue) and whose Tag is GOOD, for the
/// `checkout` event type (the Tag also for `page_visit`). The 14-day window has slightly higher
/// coverages, so a test can tell the windows apart. Percentages, as the spec describes them.
/// `MMP`, `FILE_UPLOAD` and `NATIVE` have no events: `[]`.
pub fn default_event_quality(lookback: &str, source: &str) -> Value {
    let bump = if lookback == "14d" { 1.5 } else { 0.0 };
    let c = |coverage: f64| json!({ "checkout": { "coverage": coverage + bump, "issues": [] } });
    match source {
        "CONVERSIONS_API" => json!([{
            "overall_status": "FAIR",
            "ingestion_source": "CONVERSIONS_API",
            "source_platform": "WEB",
            "lookback_period": lookback,
            "quality_components": {
                "hashed_email": c(91.0),
                "ip_address": c(60.0),
                "user_agent": c(60.0),
                "click_id_epik": { "checkout": {
                    "coverage": 17.0 + bump,
                    "issues": [{
                        "id": "LOW_CLICK_ID_COVERAGE",
                        "name": "Low click ID coverage",
                        "reason": "Less than 30% of events include a Pinterest click ID.",
                    }],
                } },
                "advertiser_external_id": c(86.0),
                "external_event_id": { "checkout": {
                    "coverage": 100.0, "overlap": 42.0 + bump, "issues": [],
                } },
                "order_id": c(98.5),
                "order_value": c(98.5),
                "product_id": c(95.0),
                "source_url": c(98.5),
            },
        }]),
        "TAG" => json!([{
            "overall_status": "GOOD",
            "ingestion_source": "TAG",
            "source_platform": "WEB",
            "lookback_period": lookback,
            "quality_components": {
                "hashed_email": c(28.0),
                "ip_address": c(98.5),
                "user_agent": c(98.5),
                "click_id_epik": {
                    "checkout": { "coverage": 80.0 + bump, "issues": [] },
                    "page_visit": { "coverage": 84.0 + bump, "issues": [] },
                },
                "external_event_id": { "checkout": {
                    "coverage": 98.5, "overlap": 42.0 + bump, "issues": [],
                } },
                "order_id": c(90.0),
                "order_value": c(90.0),
                "source_url": c(98.5),
            },
        }]),
        _ => json!([]),
    }
}

async fn conversion_eqs(
    State(shared): State<Arc<Shared>>,
    Path(ad_account_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut recorded = QualityRequest {
        ad_account_id,
        lookback_period: query.get("lookback_period").cloned(),
        ingestion_source: query.get("ingestion_source").cloned(),
        source_platform: query.get("source_platform").cloned(),
        test: query.get("test").cloned(),
        status: 0,
    };
    let invalid = |name: &str, allowed: &[&str]| {
        json!({
            "code": 1,
            "message": format!("Invalid parameters: {name} must be one of {}.", allowed.join(", ")),
        })
    };
    let decision = {
        let mut inner = shared.lock();
        let lookback = recorded.lookback_period.as_deref();
        let source = recorded.ingestion_source.as_deref();
        let platform = recorded.source_platform.as_deref();
        if !authorized(&headers, &inner) {
            Some((401, error_body(401)))
        } else if !lookback.is_some_and(|l| LOOKBACK_PERIODS.contains(&l)) {
            Some((400, invalid("lookback_period", &LOOKBACK_PERIODS)))
        } else if source.is_some_and(|s| !INGESTION_SOURCES.contains(&s)) {
            Some((400, invalid("ingestion_source", &INGESTION_SOURCES)))
        } else if platform.is_some_and(|p| !SOURCE_PLATFORMS.contains(&p)) {
            Some((400, invalid("source_platform", &SOURCE_PLATFORMS)))
        } else if let Some(failure) = inner.fail_next.pop_front() {
            match failure {
                Failure::Status(status) => Some((status, error_body(status))),
                Failure::Timeout => None,
            }
        } else {
            let lookback = lookback.unwrap_or_default();
            let sources = match source {
                Some(source) => vec![source],
                None => vec!["CONVERSIONS_API", "TAG"],
            };
            let answers: Vec<Value> = sources
                .into_iter()
                .map(|s| {
                    inner
                        .event_quality
                        .get(&(lookback.to_owned(), s.to_owned()))
                        .cloned()
                        .unwrap_or_else(|| default_event_quality(lookback, s))
                })
                .collect();
            let body = match answers.as_slice() {
                [one] if !one.is_array() => one.clone(),
                _ => Value::Array(
                    answers
                        .into_iter()
                        .flat_map(|a| match a {
                            Value::Array(items) => items,
                            other => vec![other],
                        })
                        .filter(|score| platform.is_none_or(|p| score["source_platform"] == p))
                        .collect(),
                ),
            };
            Some((200, body))
        }
    };
    let Some((status, response)) = decision else {
        shared.lock().quality_requests.push(recorded);
        tokio::time::sleep(TIMEOUT_HOLD).await;
        return reply(503, error_body(503));
    };
    recorded.status = status;
    shared.lock().quality_requests.push(recorded);
    reply(status, response)
}

/// `CatalogsItemsRequest` of the 5.23 spec as a JSON Schema, written out by hand for the retail
/// filter (`CatalogsRetailItemsPostFilter`), the only one the relay sends: `country` and `language`
/// required (ISO 3166-1 alpha-2; ISO 639-1 uppercase or a catalog locale such as `en-US`, as
/// patterns rather than the spec's enums), `filters.catalog_type` `RETAIL`, `item_ids` 1 to 1000
/// strings, an optional numeric `catalog_id`, and no other keys at the top level.
pub fn catalog_items_request_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "language": {"type": "string", "pattern": "^([A-Z]{2}|[a-z]{2}(-[A-Z0-9]{2,3})?)$"},
            "filters": {
                "type": "object",
                "properties": {
                    "catalog_type": {"type": "string", "enum": ["RETAIL"]},
                    "item_ids": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 1000,
                    },
                    "catalog_id": {"type": "string", "pattern": "^\\d+$"},
                },
                "required": ["catalog_type", "item_ids"],
            },
        },
        "additionalProperties": false,
        "required": ["country", "language", "filters"],
    })
}

async fn catalog_items(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let mut inner = shared.lock();
    let (status, answer) = if !authorized(&headers, &inner) {
        (401, error_body(401))
    } else if let Some(errors) = invalid(&shared.catalog_validator, parsed.as_ref()) {
        let message = format!("Invalid request: {}", errors.join("; "));
        inner.schema_errors.extend(errors);
        (400, json!({ "code": 1, "message": message }))
    } else if let Some(failure) = inner.fail_next.pop_front() {
        match failure {
            Failure::Status(status) => (status, error_body(status)),
            Failure::Timeout => (503, error_body(503)),
        }
    } else {
        let body = parsed.clone().unwrap_or_default();
        let key = (
            body["country"].as_str().unwrap_or_default().to_owned(),
            body["language"].as_str().unwrap_or_default().to_owned(),
        );
        let held = inner.catalog.get(&key);
        let items: Vec<Value> = body["filters"]["item_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|id| match held.is_some_and(|h| h.contains(id)) {
                true => json!({
                    "catalog_type": "RETAIL",
                    "item_id": id,
                    "attributes": {"title": format!("Item {id}"), "image_link": ["https://example.com/i.jpg"]},
                    "pins": [],
                }),
                false => json!({
                    "catalog_type": "RETAIL",
                    "item_id": id,
                    "errors": [{"attribute": "item_id", "code": 404, "message": "Item not found."}],
                }),
            })
            .collect();
        (200, json!({ "items": items }))
    };
    inner.catalog_requests.push(CatalogRequest {
        ad_account_id: query.get("ad_account_id").cloned(),
        body: parsed.unwrap_or(Value::Null),
        status,
    });
    drop(inner);
    reply(status, answer)
}

fn authorized(headers: &HeaderMap, inner: &Inner) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| {
            (token == ACCESS_TOKEN || inner.tokens.contains(token))
                && !inner.refused_tokens.contains(token)
        })
}

/// The schema errors of a body, or `None` when it is valid.
fn invalid(validator: &jsonschema::Validator, body: Option<&Value>) -> Option<Vec<String>> {
    let Some(body) = body else {
        return Some(vec!["the body is not JSON".to_owned()]);
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    (!errors.is_empty()).then_some(errors)
}

// ---------------------------------------------------------------------------------------------
// OAuth: sign in to Pinterest (`pinrelay pinterest login`, the refreshers). Kept apart from the
// Conversions API, Event Quality and catalog routes above.
//
// - `GET /oauth/` stands in for Pinterest's authorize page: it checks `client_id` ([`APP_ID`]),
//   `response_type=code` and the scopes, issues a single-use code for the `redirect_uri`, and
//   answers 302 to `redirect_uri?code=…&state=…`, as Pinterest does once the merchant allows it.
// - `POST /v5/oauth/token` checks HTTP Basic ([`APP_ID`], [`APP_SECRET`]; 401 otherwise) and the
//   form body: `authorization_code` takes a code it issued, once, for the same `redirect_uri`;
//   `refresh_token` takes a live refresh token and rotates it: the old one is refused from then
//   on (400), as Pinterest's continuous refresh tokens are. Issued access tokens are accepted by
//   the routes above.
// - `GET /v5/ad_accounts` lists [`FakePinterest::set_ad_accounts`] (default one account,
//   [`AD_ACCOUNT_ID`]) to a token it issued or [`ACCESS_TOKEN`].
// ---------------------------------------------------------------------------------------------

/// The Pinterest app id the fake's token endpoint accepts.
pub const APP_ID: &str = "1509876";
/// The app secret that goes with [`APP_ID`].
pub const APP_SECRET: &str = "fake-app-secret";
/// Seconds an issued access token lasts (30 days, like Pinterest's).
pub const ACCESS_TOKEN_SECONDS: i64 = 30 * 86_400;
/// Seconds an issued refresh token lasts (60 days, continuous refresh).
pub const REFRESH_TOKEN_SECONDS: i64 = 60 * 86_400;

/// One token endpoint request, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `grant_type`, as sent.
    pub grant_type: Option<String>,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct OAuthState {
    issued: u64,
    /// Code → the redirect URI it was issued for; removed when used.
    codes: HashMap<String, String>,
    /// Refresh token → still live.
    refresh_tokens: HashMap<String, bool>,
    /// `None`: the default single account.
    ad_accounts: Option<Vec<Value>>,
    token_requests: Vec<TokenRequest>,
}

impl OAuthState {
    fn next(&mut self, kind: &str) -> String {
        self.issued += 1;
        format!("fake-{kind}-{}", self.issued)
    }
}

impl Shared {
    fn oauth(&self) -> MutexGuard<'_, OAuthState> {
        self.oauth.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakePinterest {
    /// A single-use authorization code for `redirect_uri`, as the authorize page would issue.
    pub fn issue_code(&self, redirect_uri: &str) -> String {
        let mut oauth = self.shared.oauth();
        let code = oauth.next("code");
        oauth.codes.insert(code.clone(), redirect_uri.to_owned());
        code
    }

    /// A live refresh token (to seed a stored grant).
    pub fn issue_refresh_token(&self) -> String {
        let mut oauth = self.shared.oauth();
        let token = oauth.next("refresh");
        oauth.refresh_tokens.insert(token.clone(), true);
        token
    }

    /// Whether `refresh_token` would be accepted now (issued and not yet used).
    pub fn refresh_token_live(&self, refresh_token: &str) -> bool {
        self.shared
            .oauth()
            .refresh_tokens
            .get(refresh_token)
            .copied()
            .unwrap_or(false)
    }

    /// The ad accounts `GET /v5/ad_accounts` lists from now on: `(id, name)`.
    pub fn set_ad_accounts(&self, accounts: &[(&str, &str)]) {
        self.shared.oauth().ad_accounts = Some(
            accounts
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "currency": "USD", "country": "US"}))
                .collect(),
        );
    }

    /// Every token endpoint request, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared.oauth().token_requests.clone()
    }

    /// Refreshes the token endpoint granted.
    pub fn refreshes(&self) -> usize {
        self.token_requests()
            .iter()
            .filter(|r| r.grant_type.as_deref() == Some("refresh_token") && r.status == 200)
            .count()
    }
}

fn oauth_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth/", get(oauth_authorize))
        .route("/v5/oauth/token", post(oauth_token))
        .route("/v5/ad_accounts", get(oauth_ad_accounts))
}

fn oauth_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"code": 1, "message": message}))).into_response()
}

async fn oauth_authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    if param("client_id") != APP_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    if param("response_type") != "code" || param("redirect_uri").is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "response_type=code and redirect_uri are required",
        );
    }
    let scopes: Vec<&str> = param("scope").split(',').collect();
    for wanted in ["ads:read", "ads:write", "catalogs:read"] {
        if !scopes.contains(&wanted) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "a scope the relay needs is missing",
            );
        }
    }
    let redirect = param("redirect_uri").to_owned();
    let code = {
        let mut oauth = shared.oauth();
        let code = oauth.next("code");
        oauth.codes.insert(code.clone(), redirect.clone());
        code
    };
    let mut location = match url::Url::parse(&redirect) {
        Ok(url) => url,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri is not a URL"),
    };
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state"));
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// Whether `headers` carry HTTP Basic with the fake app's id and secret.
fn app_authorized(headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|decoded| decoded == format!("{APP_ID}:{APP_SECRET}").as_bytes())
}

async fn oauth_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let grant_type = form.get("grant_type").cloned();
    let mut oauth = shared.oauth();
    let (status, response) = 'answer: {
        if !app_authorized(&headers) {
            break 'answer (
                401,
                oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "Authentication failed: invalid client credentials",
                ),
            );
        }
        let refused = |m: &str| (400, oauth_error(StatusCode::BAD_REQUEST, m));
        let scope = "ads:read,ads:write,catalogs:read";
        match grant_type.as_deref() {
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                match oauth.codes.remove(&code) {
                    Some(uri) if Some(&uri) == form.get("redirect_uri") => {}
                    Some(_) => {
                        break 'answer refused(
                            "redirect_uri does not match the authorization request",
                        );
                    }
                    None => break 'answer refused("Invalid authorization code"),
                }
            }
            Some("refresh_token") => {
                let token = form.get("refresh_token").cloned().unwrap_or_default();
                match oauth.refresh_tokens.get_mut(&token) {
                    Some(live @ true) => *live = false,
                    _ => break 'answer refused("Invalid refresh token"),
                }
            }
            _ => break 'answer refused("unsupported grant_type"),
        }
        let access = oauth.next("access");
        let refresh = oauth.next("refresh");
        oauth.refresh_tokens.insert(refresh.clone(), true);
        shared.lock().tokens.insert(access.clone());
        let now = chrono::Utc::now().timestamp();
        let body = json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scope": scope,
            "response_type": grant_type,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_SECONDS,
            "refresh_token_expires_at": now + REFRESH_TOKEN_SECONDS,
        });
        (200, axum::Json(body).into_response())
    };
    oauth
        .token_requests
        .push(TokenRequest { grant_type, status });
    response
}

async fn oauth_ad_accounts(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &shared.lock()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "Authentication failed.");
    }
    let items = shared.oauth().ad_accounts.clone().unwrap_or_else(|| {
        vec![json!({"id": AD_ACCOUNT_ID, "name": "Fake store ads", "currency": "USD", "country": "US"})]
    });
    axum::Json(json!({"items": items, "bookmark": null})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE_SCHEMA: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pinterest/conversion-events.response.schema.json"
    ));

    fn event(id: &str) -> Value {
        json!({
            "event_name": "checkout",
            "action_source": "web",
            "event_time": 1_780_000_000,
            "event_id": id,
            "user_data": { "em": ["a".repeat(64)] },
            "custom_data": { "currency": "USD", "value": "10.00", "order_id": id },
        })
    }

    async fn post(fake: &FakePinterest, token: &str, body: &Value) -> (u16, Value) {
        let url = format!(
            "{}/v5/ad_accounts/{AD_ACCOUNT_ID}/events?test=true",
            fake.base_url()
        );
        // reqwest is built without a default crypto provider; a test run alone must install one.
        pinrelay::pinterest::http::install_crypto_provider();
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn assert_valid_response(body: &Value) {
        let schema: Value = serde_json::from_str(RESPONSE_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[tokio::test]
    async fn accepts_a_valid_body_and_records_its_events() {
        let fake = FakePinterest::start().await;
        let (status, body) = post(
            &fake,
            ACCESS_TOKEN,
            &json!({"data": [event("1"), event("2")]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_valid_response(&body);
        assert_eq!(body["num_events_processed"], 2);
        assert_eq!(fake.accepted_event_ids(), ["1", "2"]);
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].event_count, 2);
        assert_eq!(requests[0].test.as_deref(), Some("true"));
        assert!(fake.schema_errors().is_empty());
    }

    #[tokio::test]
    async fn rejects_a_body_that_breaks_the_schema() {
        let fake = FakePinterest::start().await;
        let mut bad = event("1");
        bad.as_object_mut().unwrap().remove("event_time");
        bad["not_a_field"] = json!(true);
        let (status, body) = post(&fake, ACCESS_TOKEN, &json!({"data": [bad]})).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], 4196);
        assert!(fake.accepted_event_ids().is_empty());
        let errors = fake.schema_errors();
        assert!(
            errors.iter().any(|e| e.contains("event_time")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("not_a_field")),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn refuses_a_wrong_token() {
        let fake = FakePinterest::start().await;
        let (status, _) = post(&fake, "wrong", &json!({"data": [event("1")]})).await;
        assert_eq!(status, 401);
        assert!(fake.accepted_event_ids().is_empty());
    }

    #[tokio::test]
    async fn injected_failures_apply_in_order_then_stop() {
        let fake = FakePinterest::start().await;
        fake.fail_next(2, Failure::Status(503));
        let body = json!({"data": [event("1")]});
        assert_eq!(post(&fake, ACCESS_TOKEN, &body).await.0, 503);
        assert_eq!(post(&fake, ACCESS_TOKEN, &body).await.0, 503);
        assert_eq!(post(&fake, ACCESS_TOKEN, &body).await.0, 200);
        assert_eq!(fake.accepted_event_ids(), ["1"]);
    }

    #[tokio::test]
    async fn failed_events_get_per_event_statuses_and_422_when_all_fail() {
        let fake = FakePinterest::start().await;
        fake.fail_events(["2"], "Invalid event_time");
        let (status, body) = post(
            &fake,
            ACCESS_TOKEN,
            &json!({"data": [event("1"), event("2")]}),
        )
        .await;
        assert_eq!(status, 200);
        assert_valid_response(&body);
        assert_eq!(body["events"][1]["status"], "failed");
        assert_eq!(body["events"][1]["error_message"], "Invalid event_time");
        let (status, body) = post(&fake, ACCESS_TOKEN, &json!({"data": [event("2")]})).await;
        assert_eq!(status, 422);
        assert_valid_response(&body["details"]);
        assert_eq!(fake.accepted_event_ids(), ["1"]);
    }

    #[tokio::test]
    async fn poisoned_event_fails_the_whole_request() {
        let fake = FakePinterest::start().await;
        fake.reject_requests_containing("2");
        let (status, body) = post(
            &fake,
            ACCESS_TOKEN,
            &json!({"data": [event("1"), event("2")]}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], 4196);
        assert_eq!(
            post(&fake, ACCESS_TOKEN, &json!({"data": [event("1")]}))
                .await
                .0,
            200
        );
        assert_eq!(fake.accepted_event_ids(), ["1"]);
    }

    async fn get_quality(fake: &FakePinterest, token: &str, query: &str) -> (u16, Value) {
        let url = format!(
            "{}/v5/ad_accounts/{AD_ACCOUNT_ID}/conversion_eqs{query}",
            fake.base_url()
        );
        pinrelay::pinterest::http::install_crypto_provider();
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn conversion_eqs_needs_a_valid_lookback_period() {
        let fake = FakePinterest::start().await;
        let (status, body) = get_quality(&fake, ACCESS_TOKEN, "").await;
        assert_eq!(status, 400);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("lookback_period")
        );
        let (status, _) = get_quality(&fake, ACCESS_TOKEN, "?lookback_period=7d").await;
        assert_eq!(status, 400);
        let (status, _) = get_quality(
            &fake,
            ACCESS_TOKEN,
            "?lookback_period=1d&ingestion_source=PIXEL",
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = get_quality(&fake, "wrong", "?lookback_period=1d").await;
        assert_eq!(status, 401);
        let statuses: Vec<u16> = fake.quality_requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [400, 400, 400, 401]);
    }

    #[tokio::test]
    async fn conversion_eqs_answers_both_sources_unless_one_is_asked() {
        let fake = FakePinterest::start().await;
        let (status, body) = get_quality(&fake, ACCESS_TOKEN, "?lookback_period=14d").await;
        assert_eq!(status, 200);
        let sources: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ingestion_source"].as_str().unwrap())
            .collect();
        assert_eq!(sources, ["CONVERSIONS_API", "TAG"]);
        fake.set_event_quality(
            "1d",
            "TAG",
            json!([{"overall_status": "NEEDS_IMPROVEMENT"}]),
        );
        let (_, body) = get_quality(
            &fake,
            ACCESS_TOKEN,
            "?lookback_period=1d&ingestion_source=TAG",
        )
        .await;
        assert_eq!(body, json!([{"overall_status": "NEEDS_IMPROVEMENT"}]));
        let (_, body) = get_quality(
            &fake,
            ACCESS_TOKEN,
            "?lookback_period=14d&source_platform=MOBILE",
        )
        .await;
        assert_eq!(body, json!([]));
    }

    #[tokio::test]
    async fn catalog_items_answers_the_seeded_ids_and_refuses_a_body_off_the_schema() {
        let fake = FakePinterest::start().await;
        fake.add_catalog_items("US", "EN", ["39072856"]);
        pinrelay::pinterest::http::install_crypto_provider();
        let post = |body: Value| {
            let url = format!(
                "{}/v5/catalogs/items?ad_account_id={AD_ACCOUNT_ID}",
                fake.base_url()
            );
            async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(ACCESS_TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let (status, body) = post(json!({
            "country": "US",
            "language": "EN",
            "filters": {"catalog_type": "RETAIL", "item_ids": ["39072856", "IPOD2008GREEN"]},
        }))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["items"][0]["item_id"], "39072856");
        assert!(body["items"][0].get("errors").is_none());
        assert!(body["items"][1]["errors"].is_array());
        let (status, _) = post(json!({
            "country": "US",
            "filters": {"catalog_type": "RETAIL", "item_ids": []},
            "extra": 1,
        }))
        .await;
        assert_eq!(status, 400);
        let errors = fake.schema_errors();
        for part in ["language", "item_ids", "extra"] {
            assert!(
                errors.iter().any(|e| e.contains(part)),
                "{part}: {errors:?}"
            );
        }
        let requests = fake.catalog_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].ad_account_id.as_deref(), Some(AD_ACCOUNT_ID));
        assert_eq!(requests[1].status, 400);
    }

    #[tokio::test]
    async fn timeout_holds_the_response_past_the_client_timeout() {
        let fake = FakePinterest::start().await;
        fake.fail_next(1, Failure::Timeout);
        pinrelay::pinterest::http::install_crypto_provider();
        let url = format!("{}/v5/ad_accounts/{AD_ACCOUNT_ID}/events", fake.base_url());
        let result = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
            .post(url)
            .bearer_auth(ACCESS_TOKEN)
            .json(&json!({"data": [event("1")]}))
            .send()
            .await;
        assert!(result.is_err_and(|e| e.is_timeout()));
        assert!(fake.accepted_event_ids().is_empty());
        assert_eq!(fake.requests().len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Customer lists and audiences (issue 24): `POST/PATCH/GET /v5/ad_accounts/{id}/customer_lists`,
// `POST /v5/ad_accounts/{id}/audiences`. Kept apart from the other endpoints' state.
// ---------------------------------------------------------------------------------------------

/// One customer list the fake holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeCustomerList {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its records (SHA-256 hex digests), as a set.
    pub records: std::collections::BTreeSet<String>,
}

/// One audience the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAudience {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `rule.customer_list_id`.
    pub customer_list_id: String,
}

/// One customer-list or audience request, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// `POST`, `PATCH` or `GET`.
    pub method: &'static str,
    /// `customer_lists`, `customer_lists/{id}` or `audiences`.
    pub path: String,
    /// `operation_type` of a `PATCH` (`CREATE` for a list creation).
    pub operation: Option<String>,
    /// How many records the request carried.
    pub records: usize,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct AudienceInner {
    lists: Vec<FakeCustomerList>,
    audiences: Vec<FakeAudience>,
    requests: Vec<ListRequest>,
    rate_limit_next: usize,
    /// Writes (creations and updates) still accepted before every further one fails with 503.
    fail_after: Option<usize>,
    next_id: u64,
}

impl Shared {
    fn audiences(&self) -> MutexGuard<'_, AudienceInner> {
        self.audiences.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakePinterest {
    /// The customer lists, oldest first.
    pub fn customer_lists(&self) -> Vec<FakeCustomerList> {
        self.shared.audiences().lists.clone()
    }

    /// The audiences, oldest first.
    pub fn audiences(&self) -> Vec<FakeAudience> {
        self.shared.audiences().audiences.clone()
    }

    /// Every customer-list and audience request, in order.
    pub fn list_requests(&self) -> Vec<ListRequest> {
        self.shared.audiences().requests.clone()
    }

    /// Forgets the recorded list requests (the lists stay).
    pub fn clear_list_requests(&self) {
        self.shared.audiences().requests.clear();
    }

    /// Answers the next `n` customer-list or audience requests 429 with `Retry-After: 0`.
    pub fn rate_limit_lists(&self, n: usize) {
        self.shared.audiences().rate_limit_next = n;
    }

    /// Accepts `n` more list writes, then answers every further one 503 until
    /// [`FakePinterest::heal_lists`].
    pub fn fail_list_writes_after(&self, n: usize) {
        self.shared.audiences().fail_after = Some(n);
    }

    /// Adds a list as if an earlier request created it; returns its id.
    pub fn add_customer_list(&self, name: &str) -> String {
        let mut audiences = self.shared.audiences();
        audiences.next_id += 1;
        let id = format!("{}", 6_000 + audiences.next_id);
        audiences.lists.push(FakeCustomerList {
            id: id.clone(),
            name: name.to_owned(),
            records: Default::default(),
        });
        id
    }

    /// Stops failing list writes.
    pub fn heal_lists(&self) {
        self.shared.audiences().fail_after = None;
    }
}

fn audience_routes() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route(
            "/v5/ad_accounts/{id}/customer_lists",
            post(create_customer_list).get(list_customer_lists),
        )
        .route(
            "/v5/ad_accounts/{id}/customer_lists/{list_id}",
            get(get_customer_list).patch(update_customer_list),
        )
        .route("/v5/ad_accounts/{id}/audiences", post(create_audience))
}

/// The records of `body["records"]`: one comma-separated string of 64-hex SHA-256 digests
/// (lowercase), or the reason it is not.
fn parse_records(body: &Value) -> Result<Vec<String>, String> {
    let Some(records) = body["records"].as_str() else {
        return Err("records must be one comma-separated string".to_owned());
    };
    records
        .split(',')
        .map(|r| {
            let ok = r.len() == 64
                && r.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            ok.then(|| r.to_owned())
                .ok_or_else(|| "each record must be a lowercase SHA-256 hex digest".to_owned())
        })
        .collect()
}

fn list_json(list: &FakeCustomerList) -> Value {
    let status = if list.records.len() >= 100 {
        "READY"
    } else {
        "TOO_SMALL"
    };
    json!({
        "ad_account_id": AD_ACCOUNT_ID, "id": list.id, "name": list.name, "status": status,
        "num_uploaded_user_records": list.records.len(), "type": "customerlist",
    })
}

/// The common gate of every list request: token, injected 429, injected write failures.
fn gate(
    headers: &HeaderMap,
    shared: &Shared,
    audiences: &mut AudienceInner,
    write: bool,
) -> Option<Response> {
    if !authorized(headers, &shared.lock()) {
        return Some(reply(401, error_body(401)));
    }
    if audiences.rate_limit_next > 0 {
        audiences.rate_limit_next -= 1;
        let mut response = reply(429, error_body(429));
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("0"),
        );
        return Some(response);
    }
    if write && let Some(left) = audiences.fail_after.as_mut() {
        if *left == 0 {
            return Some(reply(503, error_body(503)));
        }
        *left -= 1;
    }
    None
}

fn record(
    audiences: &mut AudienceInner,
    method: &'static str,
    path: String,
    operation: Option<String>,
    records: usize,
    response: Response,
) -> Response {
    audiences.requests.push(ListRequest {
        method,
        path,
        operation,
        records,
        status: response.status().as_u16(),
    });
    response
}

async fn create_customer_list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut audiences = shared.audiences();
    let records = parse_records(&body);
    let count = records.as_ref().map_or(0, Vec::len);
    let path = "customer_lists".to_owned();
    let op = Some("CREATE".to_owned());
    if let Some(response) = gate(&headers, &shared, &mut audiences, true) {
        return record(&mut audiences, "POST", path, op, count, response);
    }
    let (Some(name), Ok(records), Some("EMAIL")) =
        (body["name"].as_str(), records, body["list_type"].as_str())
    else {
        let response = reply(
            400,
            json!({"code": 1, "message": "name, records (one string) and list_type EMAIL are required"}),
        );
        return record(&mut audiences, "POST", path, op, count, response);
    };
    audiences.next_id += 1;
    let list = FakeCustomerList {
        id: format!("{}", 6_000 + audiences.next_id),
        name: name.to_owned(),
        records: records.into_iter().collect(),
    };
    let response = reply(200, list_json(&list));
    audiences.lists.push(list);
    record(&mut audiences, "POST", path, op, count, response)
}

async fn update_customer_list(
    State(shared): State<Arc<Shared>>,
    Path((_, list_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut audiences = shared.audiences();
    let records = parse_records(&body);
    let count = records.as_ref().map_or(0, Vec::len);
    let path = format!("customer_lists/{list_id}");
    let op = body["operation_type"].as_str().map(str::to_owned);
    if let Some(response) = gate(&headers, &shared, &mut audiences, true) {
        return record(&mut audiences, "PATCH", path, op, count, response);
    }
    let Some(i) = audiences.lists.iter().position(|l| l.id == list_id) else {
        return record(
            &mut audiences,
            "PATCH",
            path,
            op,
            count,
            reply(404, error_body(404)),
        );
    };
    let response = match (op.as_deref(), records) {
        (Some("ADD"), Ok(records)) => {
            audiences.lists[i].records.extend(records);
            reply(200, list_json(&audiences.lists[i]))
        }
        (Some("REMOVE"), Ok(records)) => {
            for r in &records {
                audiences.lists[i].records.remove(r);
            }
            reply(200, list_json(&audiences.lists[i]))
        }
        (_, Err(message)) => reply(400, json!({"code": 1, "message": message})),
        _ => reply(
            400,
            json!({"code": 1, "message": "operation_type must be ADD or REMOVE"}),
        ),
    };
    record(&mut audiences, "PATCH", path, op, count, response)
}

async fn get_customer_list(
    State(shared): State<Arc<Shared>>,
    Path((_, list_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut audiences = shared.audiences();
    let path = format!("customer_lists/{list_id}");
    if let Some(response) = gate(&headers, &shared, &mut audiences, false) {
        return record(&mut audiences, "GET", path, None, 0, response);
    }
    let response = match audiences.lists.iter().find(|l| l.id == list_id) {
        Some(list) => reply(200, list_json(list)),
        None => reply(404, error_body(404)),
    };
    record(&mut audiences, "GET", path, None, 0, response)
}

async fn create_audience(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut audiences = shared.audiences();
    let path = "audiences".to_owned();
    if let Some(response) = gate(&headers, &shared, &mut audiences, false) {
        return record(&mut audiences, "POST", path, None, 0, response);
    }
    let list_id = body["rule"]["customer_list_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let valid = body["audience_type"] == "CUSTOMER_LIST"
        && body["name"].is_string()
        && audiences.lists.iter().any(|l| l.id == list_id);
    if !valid {
        let response = reply(
            400,
            json!({"code": 1, "message": "audience_type CUSTOMER_LIST, name and rule.customer_list_id of an existing list are required"}),
        );
        return record(&mut audiences, "POST", path, None, 0, response);
    }
    audiences.next_id += 1;
    let audience = FakeAudience {
        id: format!("{}", 2_542_620_000_000u64 + audiences.next_id),
        name: body["name"].as_str().unwrap_or_default().to_owned(),
        customer_list_id: list_id,
    };
    let response = reply(
        200,
        json!({"id": audience.id, "name": audience.name, "audience_type": "CUSTOMER_LIST",
               "ad_account_id": AD_ACCOUNT_ID, "rule": {"customer_list_id": audience.customer_list_id},
               "status": "INITIALIZING"}),
    );
    audiences.audiences.push(audience);
    record(&mut audiences, "POST", path, None, 0, response)
}

/// `GET …/customer_lists?page_size=&bookmark=`: the lists, oldest first; the bookmark is the
/// index of the next page's first list.
async fn list_customer_lists(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut audiences = shared.audiences();
    let path = "customer_lists".to_owned();
    if let Some(response) = gate(&headers, &shared, &mut audiences, false) {
        return record(&mut audiences, "GET", path, None, 0, response);
    }
    let size: usize = query
        .get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
        .clamp(1, 250);
    let start: usize = query
        .get("bookmark")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let items: Vec<Value> = audiences
        .lists
        .iter()
        .skip(start)
        .take(size)
        .map(list_json)
        .collect();
    let end = start + items.len();
    let bookmark = (end < audiences.lists.len()).then(|| end.to_string());
    let response = reply(200, json!({"items": items, "bookmark": bookmark}));
    record(&mut audiences, "GET", path, None, 0, response)
}
