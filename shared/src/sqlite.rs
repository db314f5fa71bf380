//! The relay database of `pinrelay serve`: one SQLite file, [`SqliteDatabase`], shared by the
//! embedded adapters ([`crate::queue::sqlite`], [`crate::idempotency::sqlite`],
//! [`crate::profile::sqlite`]). It owns the schema of every table and its version, so the adapters
//! depend on it and never on each other.
//!
//! - One connection, owned by one dedicated thread, so blocking SQLite calls never run on the async
//!   runtime. Requests queued while a transaction runs are executed together in the next one (group
//!   commit): many concurrent webhooks cost one `fsync`, not one each. Each request runs in its own
//!   savepoint, so one failing request never undoes another.
//! - WAL mode. Durable requests (a webhook acknowledged, a message moved) commit with
//!   `synchronous=FULL`: they survive a process kill *and* a power cut. Bookkeeping (receive,
//!   delete, retry delays, idempotency records, profiles) commits with `synchronous=NORMAL`, which
//!   survives a process kill; a power cut may lose the last of those commits, which at worst
//!   redelivers a message that the idempotency store or Pinterest's `event_id` deduplication then
//!   absorbs.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// The database file inside a data directory.
pub const DB_FILE: &str = "relay.db";

/// The schema version this code writes (`PRAGMA user_version`).
/// Version 2 added the `profiles` table; an older pinrelay refuses the file rather than ignore
/// profiles it would then fail to redact. Version 3 added the `outcomes` ledger. Version 4 made
/// the record the ledger: `records` (one row per event, every state) and `dead_letter_counts`
/// replace `idempotency` and `outcomes` ([`MIGRATE_TO_4`]). Version 5 added `shops`, the registry
/// ([`crate::registry::sqlite`]): an older pinrelay would serve those stores' webhooks as unknown.
/// Version 6 added `pinterest_grants`, the stores' Pinterest sign-ins and their refresh lease
/// ([`crate::pinterest::oauth::sqlite`]): an older pinrelay would not renew them; and `pauses`,
/// each store's latest pause ([`crate::idempotency::IdempotencyStore::mark_paused`]).
/// The audience ledger (`audience_lists`, `audience_members`, `audience_removals`,
/// [`crate::audiences::sqlite`]) came in version 6 too: an older pinrelay would not apply a
/// customer's redaction to the lists. Version 7 added `audience_lists.last_sync_ms`, when the
/// scheduled audience job last completed a list's sync ([`MIGRATE_TO_7`]). Version 8 added
/// `audience_rechecks`, the customers whose consent changed
/// ([`crate::audiences::AudienceStore::queue_recheck`]): an older pinrelay would not apply a
/// withdrawal queued there.
const SCHEMA_VERSION: i64 = 8;

/// From version 6 to 7: the column the audience job's schedule reads (`NULL`: due now).
const MIGRATE_TO_7: &str = "ALTER TABLE audience_lists ADD COLUMN last_sync_ms INTEGER;";

/// How long a transaction waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most requests committed together.
const MAX_GROUP: usize = 512;

/// Every table of the relay database. `CREATE ... IF NOT EXISTS`, so opening an older file adds
/// what it lacks.
const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS records (
    id            TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    event_id      TEXT,
    holder        TEXT,
    lock_until_ms INTEGER,
    generation    INTEGER NOT NULL DEFAULT 0,
    test          INTEGER NOT NULL DEFAULT 0,
    settled       TEXT,
    retrying      TEXT,
    topic         TEXT,
    expires_at    INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letter_counts (
    shop       TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (shop, day, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
    id         TEXT    PRIMARY KEY,
    profile    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shops (
    domain     TEXT    PRIMARY KEY,
    entry      TEXT    NOT NULL,
    secrets    TEXT    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pauses (
    shop       TEXT    PRIMARY KEY,
    reason     TEXT    NOT NULL,
    since_ms   INTEGER NOT NULL,
    last_ms    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pinterest_grants (
    shop           TEXT    PRIMARY KEY,
    grant_json     TEXT,
    lease_holder   TEXT,
    lease_until_ms INTEGER,
    updated_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audience_lists (
    shop           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    list_id        TEXT,
    audience_id    TEXT,
    watermark_ms   INTEGER,
    last_full_ms   INTEGER,
    last_resend_ms INTEGER,
    last_sync_ms   INTEGER,
    holder         TEXT,
    lease_until_ms INTEGER,
    PRIMARY KEY (shop, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audience_members (
    shop        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    customer_id INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (shop, kind, customer_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audience_removals (
    shop        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    customer_id INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (shop, kind, customer_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audience_rechecks (
    shop        TEXT    NOT NULL,
    customer_id INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (shop, customer_id)
) WITHOUT ROWID;
";

/// From version 3 to 4: each idempotency record becomes a record (`COMPLETED` → `sent`, its
/// details unknown; `INPROGRESS` → `in_progress` under its lock, so a holder that stopped is still
/// found in doubt); the outcome ledger's details of a sent order (event id, match keys, value) are
/// kept on its record, and its skipped and dead-lettered orders become records; each profile is
/// keyed by its checkout token too. Runs once, in the transaction that sets the version.
const MIGRATE_TO_4: &str = "
CREATE TABLE IF NOT EXISTS outcomes (id TEXT PRIMARY KEY, outcome TEXT NOT NULL, entry TEXT NOT NULL,
    expires_at INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO records (id, state, holder, lock_until_ms, settled, expires_at, updated_at_ms)
    SELECT id,
           CASE status WHEN 'COMPLETED' THEN 'sent' ELSE 'in_progress' END,
           CASE status WHEN 'INPROGRESS' THEN 'legacy' END,
           in_progress_expiration,
           CASE status WHEN 'COMPLETED' THEN '{\"outcome\":\"sent\",\"legacy\":true}' END,
           expiration, 0
    FROM idempotency;
UPDATE records SET
    event_id = json_extract(o.entry, '$.event_id'),
    settled = json_object('outcome', 'sent', 'at', json_extract(o.entry, '$.at'), 'mode', 'live',
        'match_keys', json(json_extract(o.entry, '$.match_keys')),
        'value', json_extract(o.entry, '$.value'), 'currency', json_extract(o.entry, '$.currency'),
        'late', json(CASE WHEN json_extract(o.entry, '$.late') THEN 'true' ELSE 'false' END))
    FROM outcomes o
    WHERE o.outcome = 'sent' AND records.state = 'sent'
      AND records.id = json_extract(o.entry, '$.shop') || '#checkout#' || json_extract(o.entry, '$.subject.id');
INSERT OR IGNORE INTO records (id, state, settled, topic, expires_at, updated_at_ms)
    SELECT json_extract(entry, '$.shop') || '#checkout#' || json_extract(entry, '$.subject.id'),
           outcome,
           CASE outcome
             WHEN 'skipped' THEN json_object('outcome', 'skipped', 'reason', json_extract(entry, '$.reason'),
                 'detail', json_extract(entry, '$.detail'),
                 'by_rule', json(CASE WHEN json_extract(entry, '$.by_rule') THEN 'true' ELSE 'false' END))
             ELSE json_object('outcome', 'dead_lettered', 'reason', json_extract(entry, '$.reason'),
                 'detail', json_extract(entry, '$.detail'))
           END,
           json_extract(entry, '$.topic'), expires_at, 0
    FROM outcomes
    WHERE outcome IN ('skipped', 'dead_lettered') AND json_extract(entry, '$.subject.kind') = 'order';
DROP TABLE idempotency;
DROP TABLE outcomes;
UPDATE profiles SET id = id || '#' || coalesce(json_extract(profile, '$.checkout_token_sha256'), '-');
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

    /// Opens (creating if needed) the database file, with every table.
    ///
    /// # Errors
    /// [`SqliteError::Open`] or [`SqliteError::TooNew`].
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let open_error = |e: rusqlite::Error| SqliteError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let conn = Connection::open(path).map_err(open_error)?;
        // It holds the stores' secrets and shoppers' profiles: its owner alone reads it (SQLite
        // gives its -wal and -shm files the same mode).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| SqliteError::Open {
                    path: path.to_owned(),
                    source: Box::new(e),
                },
            )?;
        }
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
        // Deleted rows (a redacted shop's records and profiles, a removed store's secrets) are
        // overwritten where that costs no extra I/O, rather than left in free pages.
        conn.pragma_update(None, "secure_delete", "FAST")
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
        // A file of version 4 or 5 gets `audience_lists` from SCHEMA, with the column.
        let migrate = match version {
            1..=3 => MIGRATE_TO_4,
            6 => MIGRATE_TO_7,
            _ => "",
        };
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} {migrate} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn a_version_6_file_keeps_its_lists_and_gains_the_sync_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE audience_lists (shop TEXT NOT NULL, kind TEXT NOT NULL, list_id TEXT,
               audience_id TEXT, watermark_ms INTEGER, last_full_ms INTEGER,
               last_resend_ms INTEGER, holder TEXT, lease_until_ms INTEGER,
               PRIMARY KEY (shop, kind)) WITHOUT ROWID;
             INSERT INTO audience_lists (shop, kind, list_id) VALUES ('a', 'customers', 'L1');
             PRAGMA user_version = 6;",
        )
        .unwrap();
        drop(conn);
        let db = SqliteDatabase::open(&path).unwrap();
        let (list, last_sync): (String, Option<i64>) = db
            .call(false, |conn| {
                conn.query_row(
                    "SELECT list_id, last_sync_ms FROM audience_lists WHERE shop = 'a'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
            .unwrap();
        assert_eq!((list.as_str(), last_sync), ("L1", None));
        drop(db);
        // Opening it again (now the current version) migrates nothing twice.
        SqliteDatabase::open(&path).unwrap();
    }

    #[tokio::test]
    async fn a_failing_request_does_not_undo_the_others_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open_in(dir.path()).unwrap();
        let bad = db.call(false, |conn| {
            conn.execute("INSERT INTO nowhere VALUES (1)", [])
        });
        let good = db.call(true, |conn| {
            conn.execute(
                "INSERT INTO profiles (id, profile, expires_at) VALUES ('a', '{}', 1)",
                [],
            )
        });
        let (bad, good) = tokio::join!(bad, good);
        assert!(bad.is_err());
        assert!(good.is_ok());
        let rows: i64 = db
            .call(false, |conn| {
                conn.query_row("SELECT count(*) FROM profiles", [], |r| r.get(0))
            })
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}
