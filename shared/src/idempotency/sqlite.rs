//! [`SqliteIdempotencyStore`]: the [`IdempotencyStore`] of `pinrelay serve`, the `idempotency`
//! table of the relay database (see [`crate::sqlite::SqliteDatabase`]).
//!
//! A claim is one statement, `INSERT ... ON CONFLICT DO UPDATE ... WHERE <the record is expired>`,
//! inside a write transaction, so of two concurrent claimers (even in two processes sharing the
//! file) exactly one acquires. Records commit with `synchronous=NORMAL`: they survive a process
//! kill; a power cut may lose the last ones, which can at worst resend an event that Pinterest then
//! deduplicates by `event_id`. Expired records are deleted lazily by
//! [`SqliteIdempotencyStore::purge_expired`]; every read checks expiry itself.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{
    Claim, IdempotencyKey, IdempotencyRecord, IdempotencyStore, RECORD_TTL_SECONDS, Status,
    StoreError,
};
use crate::sqlite::{SqliteDatabase, SqliteError};

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// Idempotency records in the relay database.
#[derive(Clone, Debug)]
pub struct SqliteIdempotencyStore {
    db: SqliteDatabase,
}

type Row = (String, String, i64, Option<i64>);

/// Reads one record row by key, expired or not.
fn select_record(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(
        "SELECT id, status, expiration, in_progress_expiration FROM idempotency WHERE id = ?1",
    )?
    .query_row(params![id], read_row)
    .optional()
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_record(key: &IdempotencyKey, row: Row) -> Result<IdempotencyRecord, StoreError> {
    let (_, status, expiration, in_progress_expiration) = row;
    let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt {
        key: key.to_string(),
        why: format!("unknown status {status:?}"),
    })?;
    Ok(IdempotencyRecord {
        key: key.clone(),
        status,
        expiration,
        in_progress_expiration,
    })
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

    /// Deletes records past their time to live at `now`; returns how many. An `INPROGRESS` record
    /// whose lock expired is kept: it is the evidence that its holder stopped mid-send, which the
    /// next claim reports as [`Claim::Abandoned`] (the event is in doubt).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM idempotency WHERE expiration <= ?1",
                    params![now.timestamp()],
                )
                .map(|n| n as u64)
            })
            .await?)
    }
}

impl IdempotencyStore for SqliteIdempotencyStore {
    async fn put_in_progress(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lock_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let id = key.as_str().to_owned();
        let row = self
            .db
            .call(false, move |conn| {
                // Read in the same transaction as the write: what was taken over is known exactly.
                let before = select_record(conn, &id)?;
                let acquired =
                    conn.prepare_cached(
                        "INSERT INTO idempotency (id, status, expiration, in_progress_expiration)
                         VALUES (?1, 'INPROGRESS', ?2, ?3)
                         ON CONFLICT (id) DO UPDATE SET
                             status = 'INPROGRESS',
                             expiration = excluded.expiration,
                             in_progress_expiration = excluded.in_progress_expiration
                         WHERE idempotency.expiration <= ?4
                            OR (idempotency.status = 'INPROGRESS'
                                AND idempotency.in_progress_expiration <= ?5)",
                    )?
                    .execute(params![
                        id,
                        now.timestamp() + RECORD_TTL_SECONDS,
                        lock_until.timestamp_millis(),
                        now.timestamp(),
                        now.timestamp_millis(),
                    ])? == 1;
                if acquired {
                    return Ok(Err(before));
                }
                select_record(conn, &id).map(Ok)
            })
            .await?;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(Claim::Acquired),
            Err(before) => {
                let abandoned = match before {
                    Some(row) => to_record(key, row)?.is_abandoned(now),
                    None => false,
                };
                return Ok(if abandoned {
                    Claim::Abandoned
                } else {
                    Claim::Acquired
                });
            }
        };
        let record = to_record(key, row)?;
        match record.status {
            Status::Completed => Ok(Claim::AlreadyCompleted),
            Status::InProgress => Ok(Claim::InProgress {
                until_ms: record.in_progress_expiration.unwrap_or_default(),
            }),
        }
    }

    async fn complete(&self, key: &IdempotencyKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        let id = key.as_str().to_owned();
        // Committed before it returns: the dispatcher completes a batch's events at once, so they
        // share one group commit, and a process killed after Pinterest answered does not resend
        // an event whose completion was only queued.
        self.db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO idempotency (id, status, expiration, in_progress_expiration)
                 VALUES (?1, 'COMPLETED', ?2, NULL)
                 ON CONFLICT (id) DO UPDATE SET status = 'COMPLETED',
                     expiration = excluded.expiration, in_progress_expiration = NULL",
                )?
                .execute(params![id, now.timestamp() + RECORD_TTL_SECONDS])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let id = key.as_str().to_owned();
        self.db
            .call(false, move |conn| {
                conn.prepare_cached("DELETE FROM idempotency WHERE id = ?1")?
                    .execute(params![id])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let id = key.as_str().to_owned();
        let row = self
            .db
            .call(false, move |conn| select_record(conn, &id))
            .await?;
        row.map(|row| to_record(key, row)).transpose()
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        // Keys of the shop are exactly those in ["{shop}#", "{shop}$"): '$' follows '#' in bytes,
        // and a shop name cannot contain '#'.
        let from = IdempotencyKey::shop_prefix(shop);
        let to = format!("{shop}$");
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM idempotency WHERE id >= ?1 AND id < ?2",
                    params![from, to],
                )
                .map(|n| n as u64)
            })
            .await?)
    }
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
        let key = IdempotencyKey::new("a.myshopify.com", "checkout", "42").unwrap();
        let now = Utc::now();
        let until = now + Duration::seconds(30);
        let claims = futures::future::join_all((0..20).map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move { store.put_in_progress(&key, now, until).await.unwrap() })
        }))
        .await;
        let acquired = claims
            .into_iter()
            .filter(|c| matches!(c.as_ref().unwrap(), Claim::Acquired))
            .count();
        assert_eq!(acquired, 1);
    }

    #[tokio::test]
    async fn records_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = IdempotencyKey::new("a.myshopify.com", "checkout", "7").unwrap();
        let now = Utc::now();
        {
            let store = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
            store
                .put_in_progress(&key, now, now + Duration::seconds(30))
                .await
                .unwrap();
            store.complete(&key, now).await.unwrap();
        }
        let store = SqliteIdempotencyStore::open_in(dir.path()).unwrap();
        assert_eq!(
            store
                .put_in_progress(&key, now, now + Duration::seconds(30))
                .await
                .unwrap(),
            Claim::AlreadyCompleted
        );
    }

    #[tokio::test]
    async fn purge_deletes_records_past_their_ttl_and_keeps_abandoned_locks() {
        let (_dir, store) = store();
        let now = Utc::now();
        let done = IdempotencyKey::new("a.myshopify.com", "checkout", "1").unwrap();
        let stale_lock = IdempotencyKey::new("a.myshopify.com", "checkout", "2").unwrap();
        let live_lock = IdempotencyKey::new("a.myshopify.com", "checkout", "3").unwrap();
        store
            .put_in_progress(&done, now, now + Duration::seconds(1))
            .await
            .unwrap();
        store.complete(&done, now).await.unwrap();
        store
            .put_in_progress(&stale_lock, now, now + Duration::seconds(1))
            .await
            .unwrap();
        store
            .put_in_progress(&live_lock, now, now + Duration::hours(1))
            .await
            .unwrap();
        let later = now + Duration::seconds(2);
        assert_eq!(store.purge_expired(later).await.unwrap(), 0);
        assert!(store.get(&done).await.unwrap().is_some());
        assert!(store.get(&live_lock).await.unwrap().is_some());
        assert_eq!(
            store
                .put_in_progress(&stale_lock, later, later + Duration::seconds(1))
                .await
                .unwrap(),
            Claim::Abandoned,
            "a purge must not erase the evidence of a holder that stopped"
        );
        let past_ttl = now + Duration::seconds(RECORD_TTL_SECONDS + 10);
        assert_eq!(store.purge_expired(past_ttl).await.unwrap(), 3);
    }
}
