//! Bulk query operations (`bulkOperationRunQuery`): Shopify runs a query over a whole connection
//! on its side and leaves the result as a JSONL file (one object a line) at a signed storage URL.
//! [`AdminApi::bulk_query_lines`] starts one (or picks up the one an earlier run left, see
//! below), polls its status with a growing wait ([`BulkPolling`]), and streams the file chunk by
//! chunk to a callback, one line at a time: nothing is written to disk, and no line is kept or
//! logged here.
//!
//! - **Continuation.** Shopify lets an app run a limited number of bulk queries at a time (five per
//!   shop since API 2026-01, one before). When a read starts, an operation of this app that runs
//!   the same query and is `CREATED` or `RUNNING`, or `COMPLETED` and created within
//!   [`REUSE_WINDOW`] of `now`, is used instead of starting another one. With a deadline, a read
//!   whose operation is not done by then ends with [`AdminError::BulkOperationRunning`]: the next
//!   read (the next Lambda invocation) continues with that operation.
//! - **The download** goes to Shopify's signed URL (another host) without the Admin token or any
//!   other credential, and its URL is never logged (its query string is the signature).
//! - **Versions.** Finding an operation uses `bulkOperations` (API 2026-01 and later, where
//!   `currentBulkOperation` is deprecated); polling uses `node(id:)`, which every version has.
//!   [`supports_bulk_operations`] says whether a version has what this module uses.
//! - `FAILED`, `CANCELED` and `EXPIRED` end the read with [`AdminError::BulkOperationFailed`],
//!   whose message says what the merchant can do (`ACCESS_DENIED`: grant `read_customers` and
//!   protected customer data access).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::transport::{AdminApi, AdminError};
use crate::retry;

/// A `COMPLETED` operation of the same query created this long before `now` is still used: the
/// export a run cut off by its deadline left for the next one. An older one is not (its data
/// would be too old); a new operation starts instead.
pub const REUSE_WINDOW: chrono::Duration = chrono::Duration::hours(6);

/// The first API version with `bulkOperations` (and five concurrent bulk queries).
pub const BULK_OPERATIONS_SINCE: &str = "2026-01";

/// Starts a bulk query; `$query` is the query document.
pub const RUN_MUTATION: &str = "mutation pinrelayBulkRun($query: String!) { \
bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message } } }";

/// The fields of a `BulkOperation` this module reads.
const FIELDS: &str =
    "id status errorCode objectCount url partialDataUrl createdAt completedAt query";

/// One `bulkOperation` read by id (every version has `node`).
pub fn node_query() -> String {
    format!(
        "query pinrelayBulkOperation($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {FIELDS} }} }} }}"
    )
}

/// This app's bulk queries that may be continued: each alias answers the search in the variable
/// of the same name (`created`, `running`, and `completed` since a time).
pub fn operations_query() -> String {
    format!(
        "query pinrelayBulkOperations($created: String!, $running: String!, $completed: String!) {{ \
created: bulkOperations(first: 10, query: $created) {{ nodes {{ {FIELDS} }} }} \
running: bulkOperations(first: 10, query: $running) {{ nodes {{ {FIELDS} }} }} \
completed: bulkOperations(first: 10, query: $completed) {{ nodes {{ {FIELDS} }} }} }}"
    )
}

/// Whether API `version` has what bulk reads use (`bulkOperations`): 2026-01 or later, or
/// `unstable`.
pub fn supports_bulk_operations(version: &str) -> bool {
    version == "unstable" || version >= BULK_OPERATIONS_SINCE
}

/// How long a bulk read waits between status polls: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkPolling {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for BulkPolling {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }
}

/// `BulkOperation.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkStatus {
    /// Queued.
    Created,
    /// Running.
    Running,
    /// Done: `url` holds the JSONL (`null` when the query matched nothing).
    Completed,
    /// Being canceled.
    Canceling,
    /// Canceled.
    Canceled,
    /// Failed: `errorCode` says why.
    Failed,
    /// Its file expired (7 days after completion).
    Expired,
    /// A status this version does not know.
    #[serde(other)]
    Unknown,
}

impl BulkStatus {
    /// Still working: waiting may end in `COMPLETED`.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Created | Self::Running | Self::Canceling)
    }

    /// Shopify's spelling (`RUNNING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// `UnsignedInt64`, which Shopify serializes as a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Count {
    Text(String),
    Number(u64),
}

impl Count {
    fn value(&self) -> u64 {
        match self {
            Self::Text(s) => s.parse().unwrap_or(0),
            Self::Number(n) => *n,
        }
    }
}

/// One bulk operation as Shopify reports it. Its `url` is a credential (a signed URL): it is
/// left out of `Debug`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    /// `gid://shopify/BulkOperation/{n}`.
    pub id: String,
    /// Where it is.
    pub status: BulkStatus,
    /// Why it failed (`ACCESS_DENIED`, `INTERNAL_SERVER_ERROR`, `TIMEOUT`).
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    object_count: Option<Count>,
    /// The JSONL file once `COMPLETED` (`None`: nothing matched).
    #[serde(default)]
    pub url: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// When it completed.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// The query document it runs.
    #[serde(default)]
    pub query: Option<String>,
}

impl std::fmt::Debug for BulkOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkOperation")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("error_code", &self.error_code)
            .field("object_count", &self.object_count())
            .field("url", &self.url.as_ref().map(|_| "<signed URL>"))
            .field("created_at", &self.created_at)
            .field("completed_at", &self.completed_at)
            .finish_non_exhaustive()
    }
}

impl BulkOperation {
    /// Objects read so far (`objectCount`).
    pub fn object_count(&self) -> u64 {
        self.object_count.as_ref().map_or(0, Count::value)
    }

    /// Whether it runs `query` (compared without regard to whitespace).
    fn runs(&self, query: &str) -> bool {
        self.query
            .as_deref()
            .is_some_and(|q| squash(q) == squash(query))
    }

    fn failed(&self) -> AdminError {
        AdminError::BulkOperationFailed {
            id: self.id.clone(),
            status: self.status.as_str(),
            error_code: self.error_code.clone(),
        }
    }
}

/// `query` as its tokens (names and punctuation) separated by single spaces, so that two
/// spellings of the same document compare equal whatever their whitespace.
fn squash(query: &str) -> String {
    let spaced: String = query
        .chars()
        .flat_map(|c| {
            if "{}():,!$@=[]".contains(c) {
                [' ', c, ' ']
            } else {
                [c, '\0', '\0']
            }
        })
        .filter(|&c| c != '\0')
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a merchant can do about a bulk operation that ended without data.
pub(super) fn failure_advice(status: &str, error_code: Option<&str>) -> String {
    match (status, error_code) {
        (_, Some("ACCESS_DENIED")) => "Shopify denied the export (ACCESS_DENIED): the app needs the read_customers scope and protected customer data access (with the email field) for this store; grant them in the app's settings and run again".to_owned(),
        (_, Some("TIMEOUT")) => "Shopify stopped the export (TIMEOUT): run again; if it keeps timing out, contact Shopify support".to_owned(),
        (_, Some("INTERNAL_SERVER_ERROR")) => "Shopify's export failed on its side (INTERNAL_SERVER_ERROR): run again later; see https://www.shopifystatus.com".to_owned(),
        ("CANCELED", _) => "the export was canceled (by a bulkOperationCancel, or from the store's side): run again to start a new one".to_owned(),
        ("EXPIRED", _) => "the export's file expired before it was read: run again to start a new one".to_owned(),
        (status, code) => format!("the export ended {status}{}: run again; if it persists, contact Shopify support", code.map(|c| format!(" ({c})")).unwrap_or_default()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunData {
    bulk_operation_run_query: RunPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPayload {
    #[serde(default)]
    bulk_operation: Option<BulkOperation>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct UserError {
    message: String,
}

#[derive(Deserialize)]
struct NodeData {
    node: Option<BulkOperation>,
}

#[derive(Deserialize)]
struct Nodes {
    nodes: Vec<BulkOperation>,
}

#[derive(Deserialize)]
struct OperationsData {
    created: Nodes,
    running: Nodes,
    completed: Nodes,
}

/// The searches of [`operations_query`]: this app's bulk queries created or running, and those
/// completed and created after `now - REUSE_WINDOW`.
fn operation_searches(now: DateTime<Utc>) -> serde_json::Value {
    let since = (now - REUSE_WINDOW).to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "created": "operation_type:query status:created",
        "running": "operation_type:query status:running",
        "completed": format!("operation_type:query status:completed created_at:>'{since}'"),
    })
}

/// The operation to continue among those listed: one running `query` (the newest), else one that
/// completed within the window (the newest).
fn pick(data: OperationsData, query: &str, now: DateTime<Utc>) -> Option<BulkOperation> {
    let newest = |ops: Vec<BulkOperation>| {
        ops.into_iter()
            .filter(|op| op.runs(query))
            .max_by_key(|op| op.created_at)
    };
    let active: Vec<BulkOperation> = data
        .created
        .nodes
        .into_iter()
        .chain(data.running.nodes)
        .filter(|op| op.status.in_progress())
        .collect();
    newest(active).or_else(|| {
        newest(
            data.completed
                .nodes
                .into_iter()
                .filter(|op| {
                    op.status == BulkStatus::Completed
                        && op.created_at.is_some_and(|t| now - t <= REUSE_WINDOW)
                })
                .collect(),
        )
    })
}

/// Splits a byte stream into lines, whatever the chunk boundaries; `\r\n` ends a line too.
#[derive(Default)]
pub(super) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Feeds `chunk`, calling `line` for each line it completes (blank lines skipped).
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        line: &mut dyn FnMut(&[u8]) -> Result<(), AdminError>,
    ) -> Result<(), AdminError> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(end);
            if self.pending.is_empty() {
                emit(head, line)?;
            } else {
                self.pending.extend_from_slice(head);
                let whole = std::mem::take(&mut self.pending);
                emit(&whole, line)?;
            }
            rest = &tail[1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the stream: a last line without a newline is a line.
    pub(super) fn finish(
        &mut self,
        line: &mut dyn FnMut(&[u8]) -> Result<(), AdminError>,
    ) -> Result<(), AdminError> {
        let last = std::mem::take(&mut self.pending);
        emit(&last, line)
    }
}

fn emit(
    bytes: &[u8],
    line: &mut dyn FnMut(&[u8]) -> Result<(), AdminError>,
) -> Result<(), AdminError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    line(bytes)
}

/// The signed URL without its query string (the signature), for errors.
fn redacted(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.path()
    )
}

impl AdminApi {
    /// Runs `query` (a bulk query document) as a bulk operation, or continues this app's
    /// operation of the same query (see the module docs), and calls `line` with each line of its
    /// JSONL, in order, as the file is downloaded. Returns the operation's id.
    ///
    /// `now` dates the reuse window; `deadline`, when set, is when to stop waiting for the
    /// operation (the download itself is not cut).
    ///
    /// # Errors
    /// [`AdminError::BulkOperationRunning`] when the deadline came first;
    /// [`AdminError::BulkOperationFailed`] when it ended `FAILED`, `CANCELED` or `EXPIRED`;
    /// [`AdminError::BulkOperationRefused`] when Shopify would not start it; the errors of
    /// [`AdminApi::graphql`]; and `line`'s.
    pub async fn bulk_query_lines(
        &self,
        query: &str,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
        line: &mut (dyn FnMut(&[u8]) -> Result<(), AdminError> + Send),
    ) -> Result<String, AdminError> {
        let mut op = match self.continued_operation(query, now).await? {
            Some(op) => {
                tracing::info!(operation = %op.id, status = op.status.as_str(), "bulk operation continued");
                op
            }
            None => self.start_bulk_operation(query).await?,
        };
        let mut polls = 0;
        while op.status != BulkStatus::Completed {
            if !op.status.in_progress() {
                return Err(op.failed());
            }
            let wait =
                retry::exponential(self.bulk_polling.first, polls + 1, self.bulk_polling.max);
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(AdminError::BulkOperationRunning {
                    status: op.status.as_str(),
                    object_count: op.object_count(),
                    id: op.id,
                });
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            op = self.bulk_operation(&op.id).await?;
        }
        if let Some(url) = &op.url {
            self.download_lines(url, line).await?;
        }
        Ok(op.id)
    }

    /// This app's operation of `query` that a read may continue, if any.
    async fn continued_operation(
        &self,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BulkOperation>, AdminError> {
        let data: OperationsData = self
            .query(
                &operations_query(),
                operation_searches(now),
                "bulkOperations",
            )
            .await?;
        Ok(pick(data, query, now))
    }

    /// `bulkOperationRunQuery`.
    async fn start_bulk_operation(&self, query: &str) -> Result<BulkOperation, AdminError> {
        let data: RunData = self
            .query(
                RUN_MUTATION,
                json!({ "query": query }),
                "bulkOperationRunQuery",
            )
            .await?;
        let payload = data.bulk_operation_run_query;
        match payload.bulk_operation {
            Some(op) if payload.user_errors.is_empty() => {
                tracing::info!(operation = %op.id, "bulk operation started");
                Ok(op)
            }
            _ => Err(AdminError::BulkOperationRefused(
                payload.user_errors.into_iter().map(|e| e.message).collect(),
            )),
        }
    }

    /// One operation by id.
    async fn bulk_operation(&self, id: &str) -> Result<BulkOperation, AdminError> {
        let data: NodeData = self
            .query(&node_query(), json!({ "id": id }), "bulkOperation")
            .await?;
        data.node.ok_or(AdminError::UnexpectedAnswer {
            what: "bulkOperation (no such operation)",
            source: None,
        })
    }

    /// Downloads the JSONL at `url` chunk by chunk, without any credential, retrying a failed
    /// connection from the start (nothing of an attempt is kept but what `line` kept).
    async fn download_lines(
        &self,
        url: &str,
        line: &mut (dyn FnMut(&[u8]) -> Result<(), AdminError> + Send),
    ) -> Result<(), AdminError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| AdminError::UnexpectedAnswer {
            what: "bulkOperation (url)",
            source: None,
        })?;
        // Shopify's file is on https; plain http only when the Admin API itself is (a local fake).
        if parsed.scheme() != "https" && !self.base_url().starts_with("http://") {
            return Err(AdminError::UnexpectedAnswer {
                what: "bulkOperation (url is not https)",
                source: None,
            });
        }
        let shown = redacted(&parsed);
        let timeout = self.retry_policy().attempt_timeout;
        let mut attempt = 1;
        loop {
            let mut lines = Lines::default();
            let mut seen = false;
            let failure = match self
                .download_once(&parsed, &shown, timeout, &mut lines, &mut |l| {
                    seen = true;
                    line(l)
                })
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // Lines already handed over cannot be taken back: only a failure before the first
            // line is retried.
            match failure {
                retry::Failure::Retry { wait, error }
                    if !seen && attempt < self.retry_policy().max_attempts =>
                {
                    tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error.message = %error, "bulk operation download retried");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                retry::Failure::Retry { error, .. } | retry::Failure::Fatal(error) => {
                    return Err(error);
                }
            }
        }
    }

    async fn download_once(
        &self,
        url: &reqwest::Url,
        shown: &str,
        timeout: Duration,
        lines: &mut Lines,
        line: &mut (dyn FnMut(&[u8]) -> Result<(), AdminError> + Send),
    ) -> Result<(), retry::Failure<AdminError>> {
        // reqwest's error names the URL it failed on: the signature is dropped from it too.
        let unreachable = |source: reqwest::Error| AdminError::Unreachable {
            url: shown.to_owned(),
            source: source.without_url(),
        };
        let backoff = self.retry_policy().min_wait;
        let timed_out = || retry::Failure::Retry {
            wait: backoff,
            error: AdminError::BulkDownloadTimedOut {
                url: shown.to_owned(),
            },
        };
        // A bare GET: no Admin token, no header of this client's but its user agent.
        let sent = tokio::time::timeout(timeout, self.http_client().get(url.clone()).send()).await;
        let mut response = match sent {
            Err(_) => return Err(timed_out()),
            Ok(Err(source)) if source.is_connect() || source.is_timeout() => {
                return Err(retry::Failure::Retry {
                    wait: backoff,
                    error: unreachable(source),
                });
            }
            Ok(Err(source)) => return Err(retry::Failure::Fatal(unreachable(source))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let error = AdminError::BulkDownloadStatus {
                url: shown.to_owned(),
                status,
            };
            return Err(if status == 429 || status >= 500 {
                retry::Failure::Retry {
                    wait: backoff,
                    error,
                }
            } else {
                retry::Failure::Fatal(error)
            });
        }
        loop {
            match tokio::time::timeout(timeout, response.chunk()).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(source)) => {
                    return Err(retry::Failure::Retry {
                        wait: backoff,
                        error: unreachable(source),
                    });
                }
                Ok(Ok(Some(chunk))) => lines.feed(&chunk, line)?,
                Ok(Ok(None)) => return Ok(lines.finish(line)?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut lines = Lines::default();
        let mut push = |l: &[u8]| {
            out.push(String::from_utf8(l.to_vec()).unwrap());
            Ok(())
        };
        for chunk in chunks {
            lines.feed(chunk, &mut push).unwrap();
        }
        lines.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn lines_are_whole_whatever_the_chunks() {
        let expected = ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"];
        assert_eq!(split(&[b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"]), expected);
        assert_eq!(
            split(&[b"{\"a\":", b"1}\n{\"b", b"\":2}\r\n\n{\"c\":3}"]),
            expected
        );
        let bytes = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}";
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split(&one_by_one), expected);
        assert!(split(&[b"", b"\n\n"]).is_empty());
    }

    #[test]
    fn versions_from_2026_01_have_bulk_operations() {
        assert!(supports_bulk_operations("2026-01"));
        assert!(supports_bulk_operations("2026-07"));
        assert!(supports_bulk_operations("unstable"));
        assert!(!supports_bulk_operations("2025-10"));
    }

    fn op(id: u32, status: &str, created: DateTime<Utc>, query: &str) -> serde_json::Value {
        json!({"id": format!("gid://shopify/BulkOperation/{id}"), "status": status,
               "objectCount": "0", "createdAt": created, "query": query})
    }

    #[test]
    fn a_running_operation_of_the_same_query_is_continued_before_a_completed_one() {
        let now = Utc::now();
        let ours = "{ customers { edges { node { id } } } }";
        let theirs = "{ products { edges { node { id } } } }";
        let data = |created: Vec<serde_json::Value>,
                    running: Vec<serde_json::Value>,
                    completed: Vec<serde_json::Value>|
         -> OperationsData {
            serde_json::from_value(json!({
                "created": {"nodes": created}, "running": {"nodes": running},
                "completed": {"nodes": completed}
            }))
            .unwrap()
        };
        let hour = chrono::Duration::hours(1);
        let picked = pick(
            data(
                vec![],
                vec![
                    op(1, "RUNNING", now - hour, theirs),
                    op(
                        2,
                        "RUNNING",
                        now - hour * 2,
                        "{customers {edges {node {id}}}}",
                    ),
                ],
                vec![op(3, "COMPLETED", now - hour, ours)],
            ),
            ours,
            now,
        );
        assert_eq!(picked.unwrap().id, "gid://shopify/BulkOperation/2");
        let picked = pick(
            data(
                vec![],
                vec![],
                vec![
                    op(3, "COMPLETED", now - hour, ours),
                    op(4, "COMPLETED", now - hour * 7, ours),
                ],
            ),
            ours,
            now,
        );
        assert_eq!(picked.unwrap().id, "gid://shopify/BulkOperation/3");
        let too_old = pick(
            data(
                vec![],
                vec![],
                vec![op(4, "COMPLETED", now - hour * 7, ours)],
            ),
            ours,
            now,
        );
        assert!(too_old.is_none());
    }

    #[test]
    fn the_searches_date_the_window_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T18:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            operation_searches(now)["completed"],
            "operation_type:query status:completed created_at:>'2026-12-05T12:00:00Z'"
        );
    }

    #[test]
    fn failures_say_what_to_do() {
        assert!(failure_advice("FAILED", Some("ACCESS_DENIED")).contains("read_customers"));
        assert!(
            failure_advice("FAILED", Some("ACCESS_DENIED")).contains("protected customer data")
        );
        assert!(failure_advice("CANCELED", None).contains("run again"));
        assert!(failure_advice("FAILED", Some("SOMETHING")).contains("SOMETHING"));
    }

    #[test]
    fn the_signed_url_stays_out_of_debug_and_errors() {
        let op: BulkOperation = serde_json::from_value(json!({
            "id": "gid://shopify/BulkOperation/1", "status": "COMPLETED",
            "url": "https://storage.example/file.jsonl?Signature=secret"
        }))
        .unwrap();
        assert!(!format!("{op:?}").contains("secret"));
        let url = reqwest::Url::parse(op.url.as_deref().unwrap()).unwrap();
        assert_eq!(redacted(&url), "https://storage.example/file.jsonl");
    }
}
