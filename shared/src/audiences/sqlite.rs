//! [`SqliteAudienceStore`]: the [`AudienceStore`] of `pinrelay serve` and `pinrelay audiences sync
//! --data-dir`, four tables of the relay database ([`crate::sqlite`]): `audience_lists` (ids,
//! marks, lease), `audience_members` (customer id → hash), `audience_removals` (removals not
//! yet accepted by Pinterest) and `audience_rechecks` (customers whose consent changed). No email
//! is stored.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

use super::customer::{CustomerId, ListKind};
use super::ledger::{AudienceStore, Lease, LedgerError, ListState, Marks, PendingRemoval, Recheck};
use super::plan::{Batch, Operation};
use crate::sqlite::{SqliteDatabase, SqliteError};

/// The audience ledger in the relay database.
#[derive(Clone, Debug)]
pub struct SqliteAudienceStore {
    db: SqliteDatabase,
}

impl SqliteAudienceStore {
    /// The ledger in `db`.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

impl From<SqliteError> for LedgerError {
    fn from(e: SqliteError) -> Self {
        LedgerError::Storage(Box::new(e))
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(shop: &str, v: Option<i64>) -> Result<Option<DateTime<Utc>>, LedgerError> {
    v.map(|v| {
        DateTime::from_timestamp_millis(v).ok_or_else(|| LedgerError::Corrupt {
            shop: shop.to_owned(),
            detail: format!("time {v}"),
        })
    })
    .transpose()
}

fn customer_id(shop: &str, v: i64) -> Result<CustomerId, LedgerError> {
    CustomerId::try_from(v).map_err(|_| LedgerError::Corrupt {
        shop: shop.to_owned(),
        detail: format!("customer id {v}"),
    })
}

/// A customer id as SQLite's signed integer; Shopify's ids fit, and a larger one is kept as the
/// same 64 bits.
fn sql_id(id: CustomerId) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

impl AudienceStore for SqliteAudienceStore {
    async fn acquire(
        &self,
        shop: &str,
        kind: ListKind,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease, LedgerError> {
        let (shop_key, holder) = (shop.to_owned(), holder.to_owned());
        let now_ms = ms(now);
        let until = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let (changed, holder, until): (usize, Option<String>, Option<i64>) = self
            .db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO audience_lists (shop, kind) VALUES (?1, ?2)",
                    params![shop_key, kind.label()],
                )?;
                let changed = conn.execute(
                    "UPDATE audience_lists SET holder = ?3, lease_until_ms = ?4
                     WHERE shop = ?1 AND kind = ?2
                       AND (holder IS NULL OR holder = ?3 OR lease_until_ms <= ?5)",
                    params![shop_key, kind.label(), holder, until, now_ms],
                )?;
                let (holder, until) = conn.query_row(
                    "SELECT holder, lease_until_ms FROM audience_lists WHERE shop = ?1 AND kind = ?2",
                    params![shop_key, kind.label()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok((changed, holder, until))
            })
            .await?;
        if changed == 1 {
            return Ok(Lease::Acquired);
        }
        Ok(Lease::Held {
            holder: holder.unwrap_or_default(),
            until: time(shop, until)?.unwrap_or_default(),
        })
    }

    async fn release(&self, shop: &str, kind: ListKind, holder: &str) -> Result<(), LedgerError> {
        let (shop, holder) = (shop.to_owned(), holder.to_owned());
        self.db
            .call(false, move |conn| {
                conn.execute(
                    "UPDATE audience_lists SET holder = NULL, lease_until_ms = NULL
                     WHERE shop = ?1 AND kind = ?2 AND holder = ?3",
                    params![shop, kind.label(), holder],
                )
            })
            .await?;
        Ok(())
    }

    async fn state(&self, shop: &str, kind: ListKind) -> Result<ListState, LedgerError> {
        let key = shop.to_owned();
        type Row = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Row> = self
            .db
            .call(false, move |conn| {
                conn.query_row(
                    "SELECT list_id, audience_id, watermark_ms, last_full_ms, last_resend_ms,
                            last_sync_ms
                     FROM audience_lists WHERE shop = ?1 AND kind = ?2",
                    params![key, kind.label()],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )
                .optional()
            })
            .await?;
        let Some((list_id, audience_id, watermark, last_full, last_resend, last_sync)) = row else {
            return Ok(ListState::default());
        };
        Ok(ListState {
            list_id,
            audience_id,
            watermark: time(shop, watermark)?,
            last_full: time(shop, last_full)?,
            last_resend: time(shop, last_resend)?,
            last_sync: time(shop, last_sync)?,
        })
    }

    async fn set_ids(
        &self,
        shop: &str,
        kind: ListKind,
        list_id: &str,
        audience_id: Option<&str>,
    ) -> Result<(), LedgerError> {
        let (shop, list_id, audience_id) = (
            shop.to_owned(),
            list_id.to_owned(),
            audience_id.map(str::to_owned),
        );
        self.db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT INTO audience_lists (shop, kind, list_id, audience_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (shop, kind) DO UPDATE SET list_id = ?3,
                       audience_id = coalesce(?4, audience_id)",
                    params![shop, kind.label(), list_id, audience_id],
                )
            })
            .await?;
        Ok(())
    }

    async fn set_marks(&self, shop: &str, kind: ListKind, marks: Marks) -> Result<(), LedgerError> {
        let shop = shop.to_owned();
        self.db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT INTO audience_lists
                       (shop, kind, watermark_ms, last_full_ms, last_resend_ms, last_sync_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (shop, kind) DO UPDATE SET
                       watermark_ms = coalesce(?3, watermark_ms),
                       last_full_ms = coalesce(?4, last_full_ms),
                       last_resend_ms = coalesce(?5, last_resend_ms),
                       last_sync_ms = coalesce(?6, last_sync_ms)",
                    params![
                        shop,
                        kind.label(),
                        marks.watermark.map(ms),
                        marks.last_full.map(ms),
                        marks.last_resend.map(ms),
                        marks.last_sync.map(ms)
                    ],
                )
            })
            .await?;
        Ok(())
    }

    async fn members(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> Result<BTreeMap<CustomerId, String>, LedgerError> {
        let key = shop.to_owned();
        let rows: Vec<(i64, String)> = self
            .db
            .call(false, move |conn| {
                let mut statement = conn.prepare(
                    "SELECT customer_id, hash FROM audience_members WHERE shop = ?1 AND kind = ?2",
                )?;
                let rows = statement
                    .query_map(params![key, kind.label()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, hash)| Ok((customer_id(shop, id)?, hash)))
            .collect()
    }

    async fn record(&self, shop: &str, kind: ListKind, batch: &Batch) -> Result<(), LedgerError> {
        let shop = shop.to_owned();
        let batch = batch.clone();
        self.db
            .call(true, move |conn| {
                match batch.operation {
                    Operation::Add => {
                        let mut insert = conn.prepare_cached(
                            "INSERT INTO audience_members (shop, kind, customer_id, hash)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (shop, kind, customer_id) DO UPDATE SET hash = ?4",
                        )?;
                        for (id, hash) in &batch.entries {
                            insert.execute(params![shop, kind.label(), sql_id(*id), hash])?;
                        }
                    }
                    Operation::Remove => {
                        let mut member = conn.prepare_cached(
                            "DELETE FROM audience_members
                             WHERE shop = ?1 AND kind = ?2 AND customer_id = ?3 AND hash = ?4",
                        )?;
                        let mut pending = conn.prepare_cached(
                            "DELETE FROM audience_removals
                             WHERE shop = ?1 AND kind = ?2 AND customer_id = ?3 AND hash = ?4",
                        )?;
                        for (id, hash) in &batch.entries {
                            member.execute(params![shop, kind.label(), sql_id(*id), hash])?;
                            pending.execute(params![shop, kind.label(), sql_id(*id), hash])?;
                        }
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn pending_removals(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> Result<Vec<PendingRemoval>, LedgerError> {
        let key = shop.to_owned();
        let rows: Vec<(i64, String, Option<String>)> = self
            .db
            .call(false, move |conn| {
                let mut statement = conn.prepare(
                    "SELECT r.customer_id, r.hash, l.list_id FROM audience_removals r
                     LEFT JOIN audience_lists l ON l.shop = r.shop AND l.kind = r.kind
                     WHERE r.shop = ?1 AND r.kind = ?2 ORDER BY r.customer_id",
                )?;
                let rows = statement
                    .query_map(params![key, kind.label()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, hash, list_id)| {
                Ok(PendingRemoval {
                    kind,
                    list_id,
                    customer_id: customer_id(shop, id)?,
                    hash,
                })
            })
            .collect()
    }

    async fn remove_customer(
        &self,
        shop: &str,
        id: CustomerId,
    ) -> Result<Vec<PendingRemoval>, LedgerError> {
        let key = shop.to_owned();
        let rows: Vec<(String, String, Option<String>)> = self
            .db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO audience_removals (shop, kind, customer_id, hash)
                     SELECT shop, kind, customer_id, hash FROM audience_members
                     WHERE shop = ?1 AND customer_id = ?2",
                    params![key, sql_id(id)],
                )?;
                conn.execute(
                    "DELETE FROM audience_members WHERE shop = ?1 AND customer_id = ?2",
                    params![key, sql_id(id)],
                )?;
                conn.execute(
                    "DELETE FROM audience_rechecks WHERE shop = ?1 AND customer_id = ?2",
                    params![key, sql_id(id)],
                )?;
                let mut statement = conn.prepare(
                    "SELECT r.kind, r.hash, l.list_id FROM audience_removals r
                     LEFT JOIN audience_lists l ON l.shop = r.shop AND l.kind = r.kind
                     WHERE r.shop = ?1 AND r.customer_id = ?2 ORDER BY r.kind",
                )?;
                let rows = statement
                    .query_map(params![key, sql_id(id)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(kind, hash, list_id)| {
                Ok(PendingRemoval {
                    kind: ListKind::from_label(&kind).ok_or_else(|| LedgerError::Corrupt {
                        shop: shop.to_owned(),
                        detail: format!("list kind {kind}"),
                    })?,
                    list_id,
                    customer_id: id,
                    hash,
                })
            })
            .collect()
    }

    async fn queue_recheck(
        &self,
        shop: &str,
        id: CustomerId,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let shop = shop.to_owned();
        self.db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT INTO audience_rechecks (shop, customer_id, at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (shop, customer_id) DO UPDATE SET at_ms = max(at_ms, ?3)",
                    params![shop, sql_id(id), ms(at)],
                )
            })
            .await?;
        Ok(())
    }

    async fn rechecks(&self, shop: &str) -> Result<Vec<Recheck>, LedgerError> {
        let key = shop.to_owned();
        let rows: Vec<(i64, i64)> = self
            .db
            .call(false, move |conn| {
                let mut statement = conn.prepare(
                    "SELECT customer_id, at_ms FROM audience_rechecks WHERE shop = ?1
                     ORDER BY customer_id",
                )?;
                let rows = statement
                    .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, at)| {
                Ok(Recheck {
                    customer_id: customer_id(shop, id)?,
                    at: time(shop, Some(at))?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn clear_rechecks(&self, shop: &str, done: &[Recheck]) -> Result<(), LedgerError> {
        if done.is_empty() {
            return Ok(());
        }
        let shop = shop.to_owned();
        let done = done.to_vec();
        self.db
            .call(true, move |conn| {
                let mut delete = conn.prepare_cached(
                    "DELETE FROM audience_rechecks
                     WHERE shop = ?1 AND customer_id = ?2 AND at_ms <= ?3",
                )?;
                for r in &done {
                    delete.execute(params![shop, sql_id(r.customer_id), ms(r.at)])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn forget_shop(&self, shop: &str) -> Result<Vec<(ListKind, ListState)>, LedgerError> {
        let mut states = Vec::new();
        for kind in ListKind::ALL {
            let state = self.state(shop, kind).await?;
            if state != ListState::default() {
                states.push((kind, state));
            }
        }
        let key = shop.to_owned();
        self.db
            .call(true, move |conn| {
                for table in [
                    "audience_lists",
                    "audience_members",
                    "audience_removals",
                    "audience_rechecks",
                ] {
                    conn.execute(
                        &format!("DELETE FROM {table} WHERE shop = ?1"),
                        params![key],
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audiences::contract;

    #[tokio::test]
    async fn passes_the_audience_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAudienceStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        contract::run_all(&store).await;
    }

    #[tokio::test]
    async fn stores_no_email_only_ids_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open_in(dir.path()).unwrap();
        let store = SqliteAudienceStore::new(db.clone());
        let hash = crate::audiences::record_hash("jane@example.com").unwrap();
        let batch = Batch {
            operation: Operation::Add,
            entries: vec![(7, hash.clone())],
        };
        store
            .record("a.myshopify.com", ListKind::Customers, &batch)
            .await
            .unwrap();
        drop(store);
        drop(db);
        let mut found_hash = false;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("jane@example.com"));
            found_hash |= text.contains(&hash);
        }
        assert!(
            found_hash,
            "the hash was written (the check read the right files)"
        );
    }
}
