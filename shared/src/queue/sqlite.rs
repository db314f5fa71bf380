//! The embedded queue of `pinrelay serve`: [`SqliteQueue`] over one SQLite file, and the
//! [`SqliteDatabase`] handle it shares with the SQLite idempotency store.
//!
//! - One connection, owned by one dedicated thread, so blocking SQLite calls never run on the async
//!   runtime. Requests queued while a transaction runs are executed together in the next one (group
//!   commit): many concurrent webhooks cost one `fsync`, not one each. Each request runs in its own
//!   savepoint, so one failing request never undoes another.
//! - WAL mode. Transactions that acknowledge a webhook (`send`) or move a message (dead-letter,
//!   requeue) commit with `synchronous=FULL`: once `send` returns `Ok` the row survives a process
//!   kill *and* a power cut. Bookkeeping (receive, delete, retry delays, idempotency records) commits
//!   with `synchronous=NORMAL`, which survives a process kill; a power cut may lose the last of those
//!   commits, which at worst redelivers a message that the idempotency store or Pinterest's
//!   `event_id` deduplication then absorbs.
//! - SQS semantics: a received message is hidden for a visibility timeout and comes back with a
//!   higher receive count unless deleted with its receipt; after `max_receive_count` unsettled
//!   deliveries it is moved to the dead letters (redrive), with its reason.
//!
//! This is not a general job queue: one process dispatches a data directory (several may share it
//! safely, as the idempotency store arbitrates, but they would compete for messages).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};

use super::{EncodedMessage, Inbox, Queue, QueueError, Received, attr};

/// The database file inside a data directory.
pub const DB_FILE: &str = "relay.db";

/// The schema version this code writes (`PRAGMA user_version`).
/// Version 2 added the `profiles` table; an older pinrelay refuses the file rather than ignore
/// profiles it would then fail to redact.
const SCHEMA_VERSION: i64 = 2;

/// How long a transaction waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most requests committed together.
const MAX_GROUP: usize = 512;

const QUEUE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT    NOT NULL,
    attributes    TEXT    NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (visible_at_ms, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    attributes          TEXT    NOT NULL,
    reason              TEXT    NOT NULL,
    topic               TEXT,
    shop                TEXT,
    webhook_id          TEXT,
    receive_count       INTEGER NOT NULL,
    dead_lettered_at_ms INTEGER NOT NULL
);
";

/// Why the relay database failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The file cannot be opened or initialized.
    #[error(
        "cannot open the relay database {path}: {source}; check that the data directory is writable and not on a network file system"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer pinrelay.
    #[error(
        "the relay database {path} has schema version {found}, newer than this pinrelay ({SCHEMA_VERSION}); upgrade pinrelay"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A statement failed.
    #[error("the relay database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction holding this request could not commit (disk full, I/O error, lock timeout).
    #[error("the relay database could not commit: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// The database thread has stopped (the relay is shutting down).
    #[error("the relay database is closed")]
    Closed,
}

impl From<SqliteError> for QueueError {
    fn from(e: SqliteError) -> Self {
        QueueError::Unavailable(Box::new(e))
    }
}

/// One request to the database thread: run inside the group's transaction, then learn whether the
/// group committed.
trait Task: Send {
    /// Needs `synchronous=FULL`.
    fn durable(&self) -> bool;
    /// Runs the request; false when it failed (its savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result once the transaction's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>);
}

type Reply<R> = Box<dyn FnOnce(Result<R, SqliteError>) + Send>;

struct Request<F, R> {
    durable: bool,
    f: Option<F>,
    out: Option<rusqlite::Result<R>>,
    reply: Reply<R>,
}

impl<F, R> Task for Request<F, R>
where
    F: FnOnce(&Connection) -> rusqlite::Result<R> + Send,
    R: Send,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = f(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>) {
        let result = match (committed, self.out) {
            (Err(e), _) => Err(SqliteError::Commit(e)),
            (Ok(()), Some(Ok(r))) => Ok(r),
            (Ok(()), Some(Err(e))) => Err(SqliteError::Sqlite(e)),
            (Ok(()), None) => Err(SqliteError::Closed),
        };
        (self.reply)(result);
    }
}

struct Worker {
    sender: Mutex<Option<mpsc::Sender<Box<dyn Task>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the requests already queued; joining it lets the
        // connection close (and checkpoint the WAL) before the process exits.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// A handle to the relay database file; clones share one connection and one thread.
#[derive(Clone)]
pub struct SqliteDatabase {
    worker: Arc<Worker>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDatabase {
    /// Opens (creating if needed) `relay.db` in `data_dir`, creating the directory too.
    ///
    /// # Errors
    /// [`SqliteError::Open`] or [`SqliteError::TooNew`].
    pub fn open_in(data_dir: &Path) -> Result<Self, SqliteError> {
        std::fs::create_dir_all(data_dir).map_err(|e| SqliteError::Open {
            path: data_dir.join(DB_FILE),
            source: Box::new(e),
        })?;
        Self::open(&data_dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file, with the queue and idempotency tables.
    ///
    /// # Errors
    /// [`SqliteError::Open`] or [`SqliteError::TooNew`].
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let open_error = |e: rusqlite::Error| SqliteError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::Open {
                path: path.to_owned(),
                source: format!(
                    "the file system does not support WAL mode (journal_mode is {mode})"
                )
                .into(),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_error)?;
        if version > SCHEMA_VERSION {
            return Err(SqliteError::TooNew {
                path: path.to_owned(),
                found: version,
            });
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {QUEUE_SCHEMA} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            crate::idempotency::sqlite::SCHEMA
        ))
        .map_err(open_error)?;

        let (sender, receiver) = mpsc::channel::<Box<dyn Task>>();
        let thread = std::thread::Builder::new()
            .name("pinrelay-sqlite".into())
            .spawn(move || serve_requests(&conn, &receiver))
            .map_err(|e| SqliteError::Open {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
        Ok(Self {
            worker: Arc::new(Worker {
                sender: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
            }),
            path: Arc::new(path.to_owned()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a transaction on the database thread and returns its result once committed.
    /// `durable` requests commit with `synchronous=FULL`.
    pub(crate) async fn call<F, R>(&self, durable: bool, f: F) -> Result<R, SqliteError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.enqueue(
            durable,
            f,
            Box::new(move |result| {
                // The caller may have stopped waiting (ingest's enqueue timeout); the outcome stands.
                let _ = reply.send(result);
            }),
        )?;
        answer.await.map_err(|_| SqliteError::Closed)?
    }

    /// Queues `f` without waiting for it (write-behind, `synchronous=NORMAL`). It runs after every
    /// request queued before it and before every request queued after it, so later reads see it;
    /// only a crash before its group commits can lose it. A failure is logged as `what`.
    pub(crate) fn submit<F>(&self, what: &'static str, f: F) -> Result<(), SqliteError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    {
        self.enqueue(
            false,
            f,
            Box::new(move |result| {
                if let Err(e) = result {
                    tracing::error!(error.message = %e, error.cause_chain = ?e, "{what} failed");
                }
            }),
        )
    }

    fn enqueue<F, R>(&self, durable: bool, f: F, reply: Reply<R>) -> Result<(), SqliteError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let task: Box<dyn Task> = Box::new(Request {
            durable,
            f: Some(f),
            out: None,
            reply,
        });
        let sender = self.worker.sender.lock().map_err(|_| SqliteError::Closed)?;
        sender
            .as_ref()
            .ok_or(SqliteError::Closed)?
            .send(task)
            .map_err(|_| SqliteError::Closed)
    }
}

/// The database thread: takes every queued request, runs them in one transaction, commits, answers.
fn serve_requests(conn: &Connection, requests: &mpsc::Receiver<Box<dyn Task>>) {
    let mut full = true;
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(task) => group.push(task),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|t| t.durable());
        if durable != full {
            let mode = if durable { "FULL" } else { "NORMAL" };
            if conn.pragma_update(None, "synchronous", mode).is_ok() {
                full = durable;
            }
        }
        let committed = run_group(conn, &mut group);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for task in group {
            task.finish(committed.clone());
        }
    }
}

fn run_group(conn: &Connection, group: &mut [Box<dyn Task>]) -> Result<(), Arc<rusqlite::Error>> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(Arc::new)?;
    for task in group.iter_mut() {
        conn.execute_batch("SAVEPOINT request").map_err(Arc::new)?;
        if task.run(conn) {
            conn.execute_batch("RELEASE request").map_err(Arc::new)?;
        } else {
            conn.execute_batch("ROLLBACK TO request; RELEASE request")
                .map_err(Arc::new)?;
        }
    }
    conn.execute_batch("COMMIT").map_err(Arc::new)
}

/// A dead letter as `pinrelay dead-letters` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its row id (what `replay` re-queues).
    pub id: i64,
    /// The id the message had in the queue.
    pub message_id: String,
    /// Why it was dead-lettered (`label: detail`, see [`crate::dispatch::reason_label`]).
    pub reason: String,
    /// The webhook topic, when the message carried one.
    pub topic: Option<String>,
    /// The shop domain, when the message carried one.
    pub shop: Option<String>,
    /// `X-Shopify-Webhook-Id`, when the message carried one.
    pub webhook_id: Option<String>,
    /// Deliveries before it was dead-lettered.
    pub receive_count: u32,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// Queue depth for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages not yet settled (visible, delayed, or being dispatched).
    pub pending: u64,
    /// Of those, the ones a receive would return now.
    pub visible: u64,
    /// Dead letters waiting for a human.
    pub dead_letters: u64,
}

/// The durable queue of `pinrelay serve`.
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    db: SqliteDatabase,
    max_receive_count: u32,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn after(now: DateTime<Utc>, d: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `{id}:{receive_count}`: unique per delivery, so a stale receipt cannot settle a later delivery.
fn receipt(id: i64, receive_count: u32) -> String {
    format!("{id}:{receive_count}")
}

fn parse_receipt(receipt: &str) -> Option<(i64, u32)> {
    let (id, count) = receipt.split_once(':')?;
    Some((id.parse().ok()?, count.parse().ok()?))
}

fn parse_attributes(json: &str) -> HashMap<String, String> {
    // A corrupt attribute column yields none, so the message is dead-lettered as undecodable
    // instead of blocking the queue.
    serde_json::from_str(json).unwrap_or_default()
}

impl SqliteQueue {
    /// The queue in `db`, dead-lettering messages after 5 unsettled deliveries.
    pub fn new(db: SqliteDatabase) -> Self {
        Self {
            db,
            max_receive_count: 5,
        }
    }

    /// Opens the queue in `data_dir/relay.db`.
    ///
    /// # Errors
    /// See [`SqliteDatabase::open`].
    pub fn open_in(data_dir: &Path) -> Result<Self, SqliteError> {
        Ok(Self::new(SqliteDatabase::open_in(data_dir)?))
    }

    /// Sets the redrive count: a message delivered this many times without being settled (the
    /// relay crashed while handling it) is moved to the dead letters on its next receive.
    #[must_use]
    pub fn with_max_receive_count(mut self, n: u32) -> Self {
        self.max_receive_count = n.max(1);
        self
    }

    /// The database this queue lives in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Claims up to `max` visible messages: each is hidden until `now + visibility_timeout`, its
    /// receive count incremented, and given a new receipt.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn receive(
        &self,
        max: usize,
        visibility_timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Received>, SqliteError> {
        let max_receive_count = self.max_receive_count;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.db
            .call(false, move |conn| {
                let now_ms = ms(now);
                let candidates = conn
                    .prepare_cached(
                        "SELECT id, receive_count, body, attributes FROM messages
                         WHERE visible_at_ms <= ?1 ORDER BY visible_at_ms, id LIMIT ?2",
                    )?
                    .query_map(params![now_ms, limit], |row| {
                        let id: i64 = row.get(0)?;
                        let receive_count: u32 = row.get(1)?;
                        let attributes: String = row.get(3)?;
                        Ok(Received {
                            id: id.to_string(),
                            receipt: receipt(id, receive_count),
                            receive_count,
                            body: row.get(2)?,
                            attributes: parse_attributes(&attributes),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut claim = conn.prepare_cached(
                    "UPDATE messages SET receive_count = ?1, visible_at_ms = ?2 WHERE id = ?3",
                )?;
                let hidden_until = after(now, visibility_timeout);
                let mut received = Vec::with_capacity(candidates.len());
                for mut message in candidates {
                    if message.receive_count >= max_receive_count {
                        redrive(conn, &message, max_receive_count, now_ms)?;
                        continue;
                    }
                    message.receive_count += 1;
                    let id: i64 = message.id.parse().unwrap_or(-1);
                    message.receipt = receipt(id, message.receive_count);
                    claim.execute(params![message.receive_count, hidden_until, id])?;
                    received.push(message);
                }
                Ok(received)
            })
            .await
    }

    /// Acknowledges a delivery: deletes the message if `receipt` is its latest. Returns whether a
    /// message was deleted.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn delete(&self, receipt: &str) -> Result<bool, SqliteError> {
        Ok(self.delete_many(&[receipt.to_owned()]).await? == 1)
    }

    /// Acknowledges many deliveries in one transaction; returns how many messages were deleted.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn delete_many(&self, receipts: &[String]) -> Result<u64, SqliteError> {
        let keys: Vec<(i64, u32)> = receipts.iter().filter_map(|r| parse_receipt(r)).collect();
        if keys.is_empty() {
            return Ok(0);
        }
        self.db
            .call(false, move |conn| {
                let mut statement = conn
                    .prepare_cached("DELETE FROM messages WHERE id = ?1 AND receive_count = ?2")?;
                let mut deleted = 0;
                for (id, count) in keys {
                    deleted += statement.execute(params![id, count])? as u64;
                }
                Ok(deleted)
            })
            .await
    }

    /// Queue depth: pending, visible now, and dead letters.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, SqliteError> {
        self.db
            .call(false, move |conn| {
                let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
                    conn.prepare_cached(sql)?
                        .query_row(p, |r| r.get::<_, i64>(0))
                        .map(|n| n.max(0) as u64)
                };
                Ok(QueueDepth {
                    pending: count("SELECT COUNT(*) FROM messages", &[])?,
                    visible: count(
                        "SELECT COUNT(*) FROM messages WHERE visible_at_ms <= ?1",
                        &[&ms(now)],
                    )?,
                    dead_letters: count("SELECT COUNT(*) FROM dead_letters", &[])?,
                })
            })
            .await
    }

    /// Messages not yet settled (visible, delayed, or being dispatched).
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn pending_count(&self) -> Result<u64, SqliteError> {
        Ok(self.depth(Utc::now()).await?.pending)
    }

    /// Every dead letter, oldest first.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, SqliteError> {
        self.db
            .call(false, |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, message_id, reason, topic, shop, webhook_id, receive_count,
                            dead_lettered_at_ms
                     FROM dead_letters ORDER BY id",
                )?;
                statement
                    .query_map([], |row| {
                        let at: i64 = row.get(7)?;
                        Ok(DeadLetter {
                            id: row.get(0)?,
                            message_id: row.get(1)?,
                            reason: row.get(2)?,
                            topic: row.get(3)?,
                            shop: row.get(4)?,
                            webhook_id: row.get(5)?,
                            receive_count: row.get(6)?,
                            dead_lettered_at: Utc
                                .timestamp_millis_opt(at)
                                .single()
                                .unwrap_or_default(),
                        })
                    })?
                    .collect()
            })
            .await
    }

    /// Moves every dead letter back to the queue, visible now with a fresh receive count; returns
    /// how many.
    ///
    /// # Errors
    /// [`SqliteError`]; nothing is moved then.
    pub async fn requeue_dead_letters(&self) -> Result<u64, SqliteError> {
        self.requeue(None).await
    }

    /// Moves one dead letter back to the queue; returns false when it no longer exists.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn requeue_dead_letter(&self, id: i64) -> Result<bool, SqliteError> {
        Ok(self.requeue(Some(id)).await? == 1)
    }

    async fn requeue(&self, id: Option<i64>) -> Result<u64, SqliteError> {
        self.db
            .call(true, move |conn| {
                let now = ms(Utc::now());
                let moved = conn.execute(
                    "INSERT INTO messages (body, attributes, sent_at_ms, visible_at_ms, receive_count)
                     SELECT body, attributes, ?1, ?1, 0 FROM dead_letters
                     WHERE ?2 IS NULL OR id = ?2 ORDER BY id",
                    params![now, id],
                )?;
                conn.execute(
                    "DELETE FROM dead_letters WHERE ?1 IS NULL OR id = ?1",
                    params![id],
                )?;
                Ok(moved as u64)
            })
            .await
    }
}

/// Moves a message delivered `max_receive_count` times without being settled, and visible again,
/// to the dead letters (what SQS's redrive policy does).
fn redrive(
    conn: &Connection,
    message: &Received,
    max_receive_count: u32,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let reason = format!(
        "retries_exhausted: delivered {max_receive_count} times without being settled; the relay stopped or failed while handling it"
    );
    tracing::warn!(
        message_id = %message.id,
        topic = message.attributes.get(attr::TOPIC).map(String::as_str),
        webhook_id = message.attributes.get(attr::WEBHOOK_ID).map(String::as_str),
        outcome = "dead_lettered",
        reason = %reason,
        "message dead-lettered by the queue's redrive"
    );
    move_to_dead_letters(conn, message, &reason, now_ms)
}

fn move_to_dead_letters(
    conn: &Connection,
    message: &Received,
    reason: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut attributes = message.attributes.clone();
    attributes.remove(attr::DEAD_LETTER_REASON);
    let attributes_json = serde_json::to_string(&attributes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let id: i64 = message.id.parse().unwrap_or(-1);
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached(
        "INSERT INTO dead_letters (message_id, body, attributes, reason, topic, shop, webhook_id,
                                   receive_count, dead_lettered_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        message.id,
        message.body,
        attributes_json,
        reason,
        attributes.get(attr::TOPIC),
        attributes.get(attr::SHOP),
        attributes.get(attr::WEBHOOK_ID),
        message.receive_count,
        now_ms,
    ])?;
    Ok(())
}

impl Queue for SqliteQueue {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
        let attributes = serde_json::to_string(&message.attributes)
            .map_err(|e| QueueError::Unavailable(Box::new(e)))?;
        let body = message.body.clone();
        let delay = message.delay;
        self.db
            .call(true, move |conn| {
                let now = Utc::now();
                conn.prepare_cached(
                    "INSERT INTO messages (body, attributes, sent_at_ms, visible_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![body, attributes, ms(now), after(now, delay)])?;
                Ok(())
            })
            .await
            .map_err(QueueError::from)
    }
}

impl Inbox for SqliteQueue {
    async fn dead_letter(&self, message: &Received, reason: &str) -> Result<(), QueueError> {
        let message = message.clone();
        let reason = reason.to_owned();
        self.db
            .call(true, move |conn| {
                move_to_dead_letters(conn, &message, &reason, ms(Utc::now()))
            })
            .await
            .map_err(QueueError::from)
    }

    async fn retry_after(&self, message: &Received, delay: Duration) -> Result<(), QueueError> {
        let Some((id, count)) = parse_receipt(&message.receipt) else {
            return Err(QueueError::Unavailable(
                format!("{:?} is not a receipt of this queue", message.receipt).into(),
            ));
        };
        self.db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "UPDATE messages SET visible_at_ms = ?1 WHERE id = ?2 AND receive_count = ?3",
                )?
                .execute(params![after(Utc::now(), delay), id, count])?;
                Ok(())
            })
            .await
            .map_err(QueueError::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn message(n: u32, delay: Duration) -> EncodedMessage {
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::TOPIC.to_owned(), "orders/create".to_owned());
        attributes.insert(attr::SHOP.to_owned(), "a.myshopify.com".to_owned());
        attributes.insert(attr::WEBHOOK_ID.to_owned(), format!("w-{n}"));
        EncodedMessage {
            body: format!(r#"{{"id": {n}}}"#),
            attributes,
            delay,
        }
    }

    fn queue() -> (tempfile::TempDir, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let queue = SqliteQueue::open_in(dir.path()).unwrap();
        (dir, queue)
    }

    const VISIBILITY: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_sent_message_is_received_with_body_and_attributes() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let got = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, r#"{"id": 1}"#);
        assert_eq!(got[0].attributes[attr::WEBHOOK_ID], "w-1");
        assert_eq!(got[0].receive_count, 1);
    }

    #[tokio::test]
    async fn receive_returns_at_most_max_in_send_order() {
        let (_dir, q) = queue();
        for n in 0..5 {
            q.send(&message(n, Duration::ZERO)).await.unwrap();
        }
        let got = q.receive(3, VISIBILITY, Utc::now()).await.unwrap();
        let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, [r#"{"id": 0}"#, r#"{"id": 1}"#, r#"{"id": 2}"#]);
    }

    #[tokio::test]
    async fn a_delayed_message_stays_hidden_until_its_delay_passes() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::from_secs(60))).await.unwrap();
        let now = Utc::now();
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(q.receive(10, VISIBILITY, later).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unacknowledged_message_comes_back_after_the_visibility_timeout() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let first = q.receive(10, VISIBILITY, now).await.unwrap();
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let later = now + chrono::Duration::seconds(31);
        let second = q.receive(10, VISIBILITY, later).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, first[0].id);
        assert_eq!(second[0].receive_count, 2);
        assert_ne!(second[0].receipt, first[0].receipt);
    }

    #[tokio::test]
    async fn delete_needs_the_latest_receipt() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let first = q.receive(10, VISIBILITY, now).await.unwrap();
        let later = now + chrono::Duration::seconds(31);
        let second = q.receive(10, VISIBILITY, later).await.unwrap();
        assert!(!q.delete(&first[0].receipt).await.unwrap());
        assert_eq!(q.pending_count().await.unwrap(), 1);
        assert!(q.delete(&second[0].receipt).await.unwrap());
        assert_eq!(q.pending_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_letter_moves_the_message_with_its_reason() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let got = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        q.dead_letter(&got[0], "expired: the event is 9 days old")
            .await
            .unwrap();
        assert_eq!(q.pending_count().await.unwrap(), 0);
        let dead = q.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "expired: the event is 9 days old");
        assert_eq!(dead[0].topic.as_deref(), Some("orders/create"));
        assert_eq!(dead[0].shop.as_deref(), Some("a.myshopify.com"));
        assert_eq!(dead[0].webhook_id.as_deref(), Some("w-1"));
        assert_eq!(dead[0].message_id, got[0].id);
        assert_eq!(dead[0].receive_count, 1);
    }

    #[tokio::test]
    async fn requeued_dead_letters_are_received_again_from_a_fresh_count() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        q.send(&message(2, Duration::ZERO)).await.unwrap();
        for m in q.receive(10, VISIBILITY, Utc::now()).await.unwrap() {
            q.dead_letter(&m, "pinterest_rejected: no").await.unwrap();
        }
        assert_eq!(q.requeue_dead_letters().await.unwrap(), 2);
        assert!(q.dead_letters().await.unwrap().is_empty());
        let again = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|m| m.receive_count == 1));
        assert_eq!(again[0].attributes[attr::WEBHOOK_ID], "w-1");
    }

    #[tokio::test]
    async fn requeue_of_one_dead_letter_leaves_the_others() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        q.send(&message(2, Duration::ZERO)).await.unwrap();
        for m in q.receive(10, VISIBILITY, Utc::now()).await.unwrap() {
            q.dead_letter(&m, "expired: old").await.unwrap();
        }
        let dead = q.dead_letters().await.unwrap();
        assert!(q.requeue_dead_letter(dead[0].id).await.unwrap());
        assert!(!q.requeue_dead_letter(dead[0].id).await.unwrap());
        assert_eq!(q.dead_letters().await.unwrap().len(), 1);
        assert_eq!(q.pending_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn retry_after_hides_the_message_for_the_delay() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let got = q.receive(10, Duration::ZERO, now).await.unwrap();
        q.retry_after(&got[0], Duration::from_secs(120))
            .await
            .unwrap();
        let soon = Utc::now() + chrono::Duration::seconds(100);
        assert!(q.receive(10, VISIBILITY, soon).await.unwrap().is_empty());
        let later = Utc::now() + chrono::Duration::seconds(121);
        assert_eq!(q.receive(10, VISIBILITY, later).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_message_never_settled_is_redriven_to_the_dead_letters() {
        let (_dir, q) = queue();
        let q = q.with_max_receive_count(2);
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let mut now = Utc::now();
        for _ in 0..2 {
            assert_eq!(q.receive(10, VISIBILITY, now).await.unwrap().len(), 1);
            now += chrono::Duration::seconds(31);
        }
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let dead = q.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with("retries_exhausted:"),
            "{}",
            dead[0].reason
        );
    }

    #[tokio::test]
    async fn messages_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = SqliteQueue::open_in(dir.path()).unwrap();
            q.send(&message(1, Duration::ZERO)).await.unwrap();
        }
        let q = SqliteQueue::open_in(dir.path()).unwrap();
        assert_eq!(
            q.receive(10, VISIBILITY, Utc::now()).await.unwrap().len(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sends_are_all_stored() {
        let (_dir, q) = queue();
        let sends = futures::future::join_all((0..300).map(|n| {
            let q = q.clone();
            tokio::spawn(async move { q.send(&message(n, Duration::ZERO)).await })
        }))
        .await;
        assert!(sends.iter().all(|r| matches!(r, Ok(Ok(())))));
        let got = q.receive(1000, VISIBILITY, Utc::now()).await.unwrap();
        let mut ids: Vec<_> = got
            .iter()
            .map(|m| m.attributes[attr::WEBHOOK_ID].clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300);
    }

    #[tokio::test]
    async fn a_failing_request_does_not_undo_the_others_of_its_group() {
        let (_dir, q) = queue();
        let bad = q.db.call(false, |conn| {
            conn.execute("INSERT INTO nowhere VALUES (1)", [])
        });
        let m = message(1, Duration::ZERO);
        let good = q.send(&m);
        let (bad, good) = tokio::join!(bad, good);
        assert!(bad.is_err());
        assert!(good.is_ok());
        assert_eq!(q.pending_count().await.unwrap(), 1);
    }

    #[test]
    fn refuses_a_database_from_a_newer_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            SqliteDatabase::open(&path),
            Err(SqliteError::TooNew { found: 99, .. })
        ));
    }
}
