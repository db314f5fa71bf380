//! [`SqliteIdempotencyStore`]: the [`IdempotencyStore`] of `pinrelay serve`, the `records` and
//! `dead_letter_counts` tables of the relay database (see [`crate::sqlite::SqliteDatabase`]).
//!
//! Every transition reads the row and writes it in one transaction of the database thread, so of
//! two concurrent claimers (even in two processes sharing the file) exactly one acquires. The rule
//! deciding a claim is [`IdempotencyRecord::refusal`], the one both adapters follow. Records commit
//! with `synchronous=NORMAL`: they survive a process kill; a power cut may lose the last ones.
//! Records past their time to live are deleted by [`SqliteIdempotencyStore::purge_expired`]; every
//! read checks expiry itself.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    Claim, ClaimRequest, DeadLetterCounts, Holder, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, Mode, Pause, PauseReason, RECORD_TTL_SECONDS, Settled, Settlement, State,
    StoreError, Unheld,
};
use crate::sqlite::{SqliteDatabase, SqliteError};

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// Records in the relay database.
#[derive(Clone, Debug)]
pub struct SqliteIdempotencyStore {
    db: SqliteDatabase,
}

const COLUMNS: &str = "id, state, event_id, holder, lock_until_ms, generation, settled, retrying, \
                       topic, expires_at, updated_at_ms";

/// A row as stored, before it is checked.
struct Row {
    id: String,
    state: String,
    event_id: Option<String>,
    holder: Option<String>,
    lock_until_ms: Option<i64>,
    generation: i64,
    settled: Option<String>,
    retrying: Option<String>,
    topic: Option<String>,
    expires_at: i64,
    updated_at_ms: i64,
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: row.get(0)?,
        state: row.get(1)?,
        event_id: row.get(2)?,
        holder: row.get(3)?,
        lock_until_ms: row.get(4)?,
        generation: row.get(5)?,
        settled: row.get(6)?,
        retrying: row.get(7)?,
        topic: row.get(8)?,
        expires_at: row.get(9)?,
        updated_at_ms: row.get(10)?,
    })
}

fn select(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM records WHERE id = ?1"))?
        .query_row(params![id], read_row)
        .optional()
}

impl Row {
    fn record(self) -> Result<IdempotencyRecord, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            key: self.id.clone(),
            why,
        };
        let key =
            IdempotencyKey::parse(&self.id).map_err(|_| corrupt("malformed id".to_owned()))?;
        let state = State::parse(&self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        let settled = self
            .settled
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("settled facts: {e}")))?;
        let retrying = self
            .retrying
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("retry facts: {e}")))?;
        Ok(IdempotencyRecord {
            key,
            state,
            event_id: self.event_id,
            holder: self.holder.map(Holder::from_stored),
            lock_until_ms: self.lock_until_ms,
            generation: u32::try_from(self.generation).unwrap_or_default(),
            settled,
            retrying,
            topic: self.topic,
            expiration: self.expires_at,
            updated_at: DateTime::from_timestamp_millis(self.updated_at_ms).unwrap_or_default(),
        })
    }
}

/// Writes a record whole (insert or replace).
fn write(conn: &rusqlite::Connection, r: &IdempotencyRecord) -> rusqlite::Result<()> {
    fn json<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
        v.as_ref().and_then(|v| serde_json::to_string(v).ok())
    }
    let test = r.sent().is_some_and(|s| s.mode == Mode::Test);
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO records ({COLUMNS}, test) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        r.key.as_str(),
        r.state.as_str(),
        r.event_id,
        r.holder.as_ref().map(Holder::as_str),
        r.lock_until_ms,
        i64::from(r.generation),
        json(&r.settled),
        json(&r.retrying),
        r.topic,
        r.expiration,
        r.updated_at.timestamp_millis(),
        test,
    ])?;
    Ok(())
}

/// The outcome of a transition run on the database thread: done, or refused with an answer.
enum Step<T> {
    Done(T),
    Corrupt(StoreError),
}

impl SqliteIdempotencyStore {
    /// The store in `db`.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }

    /// Opens the store in `data_dir/relay.db`.
    ///
    /// # Errors
    /// See [`SqliteDatabase::open`].
    pub fn open_in(data_dir: &Path) -> Result<Self, SqliteError> {
        Ok(Self::new(SqliteDatabase::open_in(data_dir)?))
    }

    /// Deletes records and counts past their time to live at `now`; returns how many. An
    /// `in_progress` record whose lock expired is kept while it lives: it is the evidence that its
    /// holder stopped mid-send, which the next claim reports as [`Claim::Abandoned`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .db
            .call(false, move |conn| {
                let t = now.timestamp();
                let records =
                    conn.execute("DELETE FROM records WHERE expires_at <= ?1", params![t])?;
                let counts = conn.execute(
                    "DELETE FROM dead_letter_counts WHERE expires_at <= ?1",
                    params![t],
                )?;
                Ok((records + counts) as u64)
            })
            .await?)
    }

    /// Runs `f` over the key's current record (if any) inside one transaction.
    async fn transition<T: Send + 'static>(
        &self,
        key: &IdempotencyKey,
        f: impl FnOnce(&rusqlite::Connection, Option<IdempotencyRecord>) -> rusqlite::Result<T>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        let id = key.as_str().to_owned();
        let step = self
            .db
            .call(false, move |conn| {
                let current = match select(conn, &id)?.map(Row::record).transpose() {
                    Ok(current) => current,
                    Err(e) => return Ok(Step::Corrupt(e)),
                };
                f(conn, current).map(Step::Done)
            })
            .await?;
        match step {
            Step::Done(t) => Ok(t),
            Step::Corrupt(e) => Err(e),
        }
    }
}

/// A fresh `in_progress` record of a claim, keeping what the record knew.
pub(crate) fn claimed(
    request: &ClaimRequest,
    current: Option<IdempotencyRecord>,
    now: DateTime<Utc>,
) -> IdempotencyRecord {
    let live = current.filter(|r| !r.is_expired(now));
    let (event_id, generation, settled) = match live {
        Some(r) => (r.event_id, r.generation, r.settled),
        None => (None, 0, None),
    };
    IdempotencyRecord {
        key: request.key.clone(),
        state: State::InProgress,
        event_id: Some(event_id.unwrap_or_else(|| request.event_id.clone())),
        holder: Some(request.holder.clone()),
        lock_until_ms: Some(request.lock_until.timestamp_millis()),
        generation,
        settled,
        retrying: None,
        topic: Some(request.topic.clone()),
        expiration: now.timestamp() + RECORD_TTL_SECONDS,
        updated_at: now,
    }
}

/// The record after its holder settles it.
pub(crate) fn settled(
    mut r: IdempotencyRecord,
    settlement: &Settlement,
    now: DateTime<Utc>,
) -> IdempotencyRecord {
    match settlement {
        Settlement::Settled(s) => {
            if matches!(s, Settled::InDoubt { .. }) {
                r.generation += 1;
            }
            r.state = s.state();
            r.settled = Some(s.clone());
            r.retrying = None;
        }
        Settlement::Pending(retry) => {
            r.state = State::Pending;
            r.retrying = Some(retry.clone());
        }
    }
    r.holder = None;
    r.lock_until_ms = None;
    r.expiration = now.timestamp() + RECORD_TTL_SECONDS;
    r.updated_at = now;
    r
}

impl IdempotencyStore for SqliteIdempotencyStore {
    async fn claim(&self, request: &ClaimRequest, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        let request = request.clone();
        let legacy = request.legacy.clone();
        let claim = self
            .transition(&request.key.clone(), move |conn, current| {
                if let Some(refusal) = current.as_ref().and_then(|r| r.refusal(&request, now)) {
                    return Ok(refusal);
                }
                let abandoned = current.as_ref().is_some_and(|r| r.is_abandoned(now));
                let fresh = current.as_ref().is_none_or(|r| r.is_expired(now));
                if fresh && let Some(legacy) = &legacy {
                    let sent_before = select(conn, legacy.as_str())?
                        .and_then(|row| row.record().ok())
                        .is_some_and(|r| !r.is_expired(now) && r.state == State::Sent);
                    if sent_before {
                        return Ok(Claim::AlreadySent { event_id: None });
                    }
                }
                let record = claimed(&request, current, now);
                write(conn, &record)?;
                let generation = record.generation;
                let event_id = record.event_id.unwrap_or_default();
                Ok(Claim::taken(abandoned, event_id, generation))
            })
            .await?;
        Ok(claim)
    }

    async fn settle(
        &self,
        key: &IdempotencyKey,
        holder: &Holder,
        settlement: &Settlement,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let holder = holder.clone();
        let settlement = settlement.clone();
        let done = self
            .transition(key, move |conn, current| {
                let Some(r) = current
                    .filter(|r| r.state == State::InProgress && r.holder.as_ref() == Some(&holder))
                else {
                    return Ok(false);
                };
                write(conn, &settled(r, &settlement, now))?;
                Ok(true)
            })
            .await?;
        if done {
            Ok(())
        } else {
            Err(StoreError::LockLost {
                key: key.to_string(),
            })
        }
    }

    async fn record(
        &self,
        key: &IdempotencyKey,
        decision: &Unheld,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let decision = decision.clone();
        let topic = topic.to_owned();
        let key_owned = key.clone();
        self.transition(key, move |conn, current| {
            let live = current.filter(|r| !r.is_expired(now));
            if live.as_ref().is_some_and(|r| !unheld_may_replace(r)) {
                return Ok(false);
            }
            let settled = match decision {
                Unheld::Skipped(s) => Settled::Skipped(s),
                Unheld::DeadLettered(l) => Settled::DeadLettered(l),
            };
            let (event_id, generation) =
                live.map(|r| (r.event_id, r.generation)).unwrap_or_default();
            write(
                conn,
                &IdempotencyRecord {
                    key: key_owned,
                    state: settled.state(),
                    event_id,
                    holder: None,
                    lock_until_ms: None,
                    generation,
                    settled: Some(settled),
                    retrying: None,
                    topic: Some(topic),
                    expiration: now.timestamp() + RECORD_TTL_SECONDS,
                    updated_at: now,
                },
            )?;
            Ok(true)
        })
        .await
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let id = key.as_str().to_owned();
        let row = self.db.call(false, move |conn| select(conn, &id)).await?;
        row.map(Row::record).transpose()
    }

    async fn get_many(
        &self,
        keys: &[IdempotencyKey],
        now: DateTime<Utc>,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let ids: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        let rows = self
            .db
            .call(false, move |conn| {
                let mut rows = Vec::with_capacity(ids.len());
                for id in &ids {
                    rows.extend(select(conn, id)?);
                }
                Ok(rows)
            })
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let record = row.record()?;
            if !record.is_expired(now) {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn forget(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let id = key.as_str().to_owned();
        self.db
            .call(false, move |conn| {
                conn.prepare_cached("DELETE FROM records WHERE id = ?1")?
                    .execute(params![id])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn count_dead_letter(
        &self,
        shop: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (shop, reason) = (shop.to_owned(), reason.to_owned());
        let day = now.date_naive().to_string();
        let expires_at = now.timestamp() + RECORD_TTL_SECONDS;
        self.db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO dead_letter_counts (shop, day, reason, n, expires_at)
                     VALUES (?1, ?2, ?3, 1, ?4)
                     ON CONFLICT (shop, day, reason) DO UPDATE SET n = n + 1",
                )?
                .execute(params![shop, day, reason, expires_at])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn dead_letter_counts(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<DeadLetterCounts, StoreError> {
        let shop = shop.to_owned();
        let rows = self
            .db
            .call(false, move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT day, reason, n FROM dead_letter_counts
                     WHERE shop = ?1 AND day >= ?2 AND day <= ?3",
                )?;
                let rows = statement
                    .query_map(params![shop, from.to_string(), to.to_string()], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(day, reason, n)| {
                Some(((day.parse().ok()?, reason), u64::try_from(n).ok()?))
            })
            .collect())
    }

    async fn mark_paused(
        &self,
        shop: &str,
        reason: PauseReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let shop = shop.to_owned();
        let at = now.timestamp_millis();
        let expires_at = now.timestamp() + RECORD_TTL_SECONDS;
        self.db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO pauses (shop, reason, since_ms, last_ms, expires_at)
                     VALUES (?1, ?2, ?3, ?3, ?4)
                     ON CONFLICT (shop) DO UPDATE SET reason = ?2, last_ms = ?3, expires_at = ?4",
                )?
                .execute(params![shop, reason.as_str(), at, expires_at])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn pause(&self, shop: &str) -> Result<Option<Pause>, StoreError> {
        let key = shop.to_owned();
        let row: Option<(String, i64, i64)> = self
            .db
            .call(false, move |conn| {
                conn.prepare_cached("SELECT reason, since_ms, last_ms FROM pauses WHERE shop = ?1")?
                    .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .await?;
        row.map(|(reason, since, last)| {
            let corrupt = || StoreError::Corrupt {
                key: format!("pause of {shop}"),
                why: format!("unreadable pause ({reason}, {since}, {last})"),
            };
            Ok(Pause {
                reason: PauseReason::parse(&reason).ok_or_else(corrupt)?,
                since: DateTime::from_timestamp_millis(since).ok_or_else(corrupt)?,
                last_at: DateTime::from_timestamp_millis(last).ok_or_else(corrupt)?,
            })
        })
        .transpose()
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        // Keys of the shop are exactly those in ["{shop}#", "{shop}$"): '$' follows '#' in bytes,
        // and a shop name cannot contain '#'.
        let from = IdempotencyKey::shop_prefix(shop);
        let to = format!("{shop}$");
        let shop = shop.to_owned();
        Ok(self
            .db
            .call(false, move |conn| {
                let records = conn.execute(
                    "DELETE FROM records WHERE id >= ?1 AND id < ?2",
                    params![from, to],
                )?;
                let counts = conn.execute(
                    "DELETE FROM dead_letter_counts WHERE shop = ?1",
                    params![shop],
                )?;
                let pauses = conn.execute("DELETE FROM pauses WHERE shop = ?1", params![shop])?;
                Ok((records + counts + pauses) as u64)
            })
            .await?)
    }
}

/// True when a decision taken without the lock may replace this live record: a skip, a dead
/// letter or a pending retry may be decided again; sent, in doubt and held records stay.
pub(crate) fn unheld_may_replace(r: &IdempotencyRecord) -> bool {
    matches!(
        r.state,
        State::Skipped | State::DeadLettered | State::Pending
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::contract;
    use chrono::Duration;

    fn store() -> (tempfile::TempDir, SqliteIdempotencyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn passes_the_idempotency_store_contract() {
        let (_dir, store) = store();
        contract::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_connections_to_one_file_acquire_a_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
        let b = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
        let now = Utc::now();
        let claims = futures::future::join_all((0..20).map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let request = contract::request(42, now);
            tokio::spawn(async move { store.claim(&request, now).await.unwrap() })
        }))
        .await;
        let acquired = claims
            .into_iter()
            .filter(|c| matches!(c.as_ref().unwrap(), Claim::Acquired { .. }))
            .count();
        assert_eq!(acquired, 1);
    }

    #[tokio::test]
    async fn purge_deletes_records_past_their_ttl_and_keeps_abandoned_locks() {
        let (_dir, store) = store();
        let now = Utc::now();
        let stale = contract::request(2, now);
        let stale = ClaimRequest {
            lock_until: now + Duration::seconds(1),
            ..stale
        };
        store.claim(&stale, now).await.unwrap();
        let later = now + Duration::seconds(2);
        assert_eq!(store.purge_expired(later).await.unwrap(), 0);
        let again = ClaimRequest {
            holder: Holder::new(),
            ..stale.clone()
        };
        assert!(
            matches!(
                store.claim(&again, later).await.unwrap(),
                Claim::Abandoned { .. }
            ),
            "a purge must not erase the evidence of a holder that stopped"
        );
        let past_ttl = later + Duration::seconds(RECORD_TTL_SECONDS + 10);
        assert_eq!(store.purge_expired(past_ttl).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_version_3_database_keeps_its_sent_orders_and_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::sqlite::DB_FILE);
        let far = Utc::now().timestamp() + 86_400;
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE idempotency (id TEXT PRIMARY KEY, status TEXT NOT NULL,
                     expiration INTEGER NOT NULL, in_progress_expiration INTEGER) WITHOUT ROWID;
                 CREATE TABLE outcomes (id TEXT PRIMARY KEY, outcome TEXT NOT NULL,
                     entry TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO idempotency VALUES ('a.myshopify.com#checkout#1', 'COMPLETED', {far}, NULL);
                 INSERT INTO idempotency VALUES ('a.myshopify.com#checkout#3', 'COMPLETED', {far}, NULL);
                 INSERT INTO outcomes VALUES ('outcome#a.myshopify.com#order#3', 'dead_lettered',
                     '{{\"shop\":\"a.myshopify.com\",\"subject\":{{\"kind\":\"order\",\"id\":3}},\"topic\":\"orders/create\",\"at\":\"2026-12-01T10:00:00Z\",\"outcome\":\"dead_lettered\",\"reason\":\"in_doubt\",\"detail\":\"in_doubt: the relay stopped\"}}', {far});
                 INSERT INTO outcomes VALUES ('outcome#a.myshopify.com#order#1', 'sent',
                     '{{\"shop\":\"a.myshopify.com\",\"subject\":{{\"kind\":\"order\",\"id\":1}},\"topic\":\"orders/create\",\"at\":\"2026-12-01T10:00:00Z\",\"outcome\":\"sent\",\"event_id\":\"1\",\"match_keys\":{{\"email\":true,\"phone\":false,\"ip_ua\":false,\"click_id\":false,\"external_id\":false}},\"value\":\"10.00\",\"currency\":\"USD\",\"late\":false}}', {far});
                 INSERT INTO outcomes VALUES ('outcome#a.myshopify.com#order#2', 'skipped',
                     '{{\"shop\":\"a.myshopify.com\",\"subject\":{{\"kind\":\"order\",\"id\":2}},\"topic\":\"orders/create\",\"at\":\"2026-12-01T10:00:00Z\",\"outcome\":\"skipped\",\"reason\":\"test_order\",\"detail\":\"a test order\",\"by_rule\":true}}', {far});
                 PRAGMA user_version = 3;"
            ))
            .unwrap();
        }
        let store = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
        let now = Utc::now();
        let sent = store
            .get(&IdempotencyKey::order("a.myshopify.com", 1).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.state, State::Sent);
        assert_eq!(sent.event_id.as_deref(), Some("1"));
        let facts = sent.sent().unwrap();
        assert!(facts.match_keys.email);
        assert_eq!(facts.value.as_deref(), Some("10.00"));
        assert_eq!(
            store.claim(&contract::request(1, now), now).await.unwrap(),
            Claim::AlreadySent {
                event_id: Some("1".into())
            },
            "an order sent before the upgrade is not sent again"
        );
        // A letter dead-lettered in doubt before the upgrade (its key recorded COMPLETED) is
        // replayed as a resend of generation 0: it takes the record, once; an order the ledger
        // said was sent is not resent.
        let resend_sent = ClaimRequest {
            resend: Some(0),
            ..contract::request(1, now)
        };
        assert!(matches!(
            store.claim(&resend_sent, now).await.unwrap(),
            Claim::AlreadySent { .. }
        ));
        let resend = ClaimRequest {
            resend: Some(0),
            ..contract::request(3, now)
        };
        assert!(matches!(
            store.claim(&resend, now).await.unwrap(),
            Claim::Acquired { .. }
        ));
        store
            .settle(
                &resend.key,
                &resend.holder,
                &Settlement::Settled(Settled::Sent(Default::default())),
                now,
            )
            .await
            .unwrap();
        let again = ClaimRequest {
            holder: Holder::new(),
            ..resend
        };
        assert!(matches!(
            store.claim(&again, now).await.unwrap(),
            Claim::AlreadySent { .. }
        ));
        let skipped = store
            .get(&IdempotencyKey::order("a.myshopify.com", 2).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(skipped.state, State::Skipped);
    }
}
