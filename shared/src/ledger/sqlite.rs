//! [`SqliteLedger`]: the [`Ledger`] of `pinrelay serve`, the `outcomes` table of the relay database
//! (see [`crate::sqlite::SqliteDatabase`]): one row per subject, the [`Entry`] as JSON.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Entry, Ledger, LedgerError, Subject, ledger_key, shop_ledger_prefix};
use crate::sqlite::{SqliteDatabase, SqliteError};

impl From<SqliteError> for LedgerError {
    fn from(e: SqliteError) -> Self {
        LedgerError::Unavailable(Box::new(e))
    }
}

/// The outcome ledger in the relay database.
#[derive(Clone, Debug)]
pub struct SqliteLedger {
    db: SqliteDatabase,
}

impl SqliteLedger {
    /// The ledger in `db`.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }

    /// Opens the ledger in `data_dir/relay.db`.
    ///
    /// # Errors
    /// See [`SqliteDatabase::open`].
    pub fn open_in(data_dir: &Path) -> Result<Self, SqliteError> {
        Ok(Self::new(SqliteDatabase::open_in(data_dir)?))
    }

    /// Deletes entries expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, LedgerError> {
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM outcomes WHERE expires_at <= ?1",
                    params![now.timestamp()],
                )
                .map(|n| n as u64)
            })
            .await?)
    }
}

impl Ledger for SqliteLedger {
    async fn record(&self, entry: &Entry, expires_at: i64) -> Result<(), LedgerError> {
        let id = entry.key();
        let json = super::encode(entry)?;
        let outcome = entry.outcome.label();
        let now = entry.at.timestamp();
        self.db
            .call(false, move |conn| {
                // A live `sent` entry stays; anything else takes the latest outcome.
                conn.prepare_cached(
                    "INSERT INTO outcomes (id, outcome, entry, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET
                         outcome = excluded.outcome, entry = excluded.entry,
                         expires_at = excluded.expires_at
                     WHERE outcomes.outcome <> 'sent' OR outcomes.expires_at <= ?5",
                )?
                .execute(params![id, outcome, json, expires_at, now])
            })
            .await?;
        Ok(())
    }

    async fn lookup(
        &self,
        shop: &str,
        subjects: &[Subject],
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, LedgerError> {
        let ids: Vec<String> = subjects.iter().map(|s| ledger_key(shop, s)).collect();
        let rows: Vec<(String, String)> = self
            .db
            .call(false, move |conn| {
                let mut select = conn.prepare_cached(
                    "SELECT entry FROM outcomes WHERE id = ?1 AND expires_at > ?2",
                )?;
                let mut rows = Vec::new();
                for id in ids {
                    let json: Option<String> = select
                        .query_row(params![id, now.timestamp()], |row| row.get(0))
                        .optional()?;
                    if let Some(json) = json {
                        rows.push((id, json));
                    }
                }
                Ok(rows)
            })
            .await?;
        rows.iter()
            .map(|(id, json)| super::decode(id, json))
            .collect()
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, LedgerError> {
        // The shop's keys are exactly those in ["outcome#{shop}#", "outcome#{shop}$"): `$` follows `#`.
        let from = shop_ledger_prefix(shop);
        let to = format!("outcome#{shop}$");
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM outcomes WHERE id >= ?1 AND id < ?2",
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
    use crate::ledger::contract;

    #[tokio::test]
    async fn passes_the_ledger_contract() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::open_in(dir.path()).unwrap();
        contract::run_all(&ledger).await;
    }
}
