//! [`SqliteProfileStore`]: the [`ProfileStore`] of `pinrelay serve`, the `profiles` table of the
//! relay database (see [`crate::sqlite::SqliteDatabase`]): one row per order and checkout token
//! (`order#{shop}#{order_id}#{token hash}`), the [`Profile`] as JSON. Reads check expiry; [`SqliteProfileStore::purge_expired`] deletes expired rows.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{
    MAX_PROFILES_PER_ORDER, ProfileError, ProfileStore, Stored, profile_key, shop_profile_prefix,
};
use crate::browser::Profile;
use crate::sqlite::{SqliteDatabase, SqliteError};

impl From<SqliteError> for ProfileError {
    fn from(e: SqliteError) -> Self {
        ProfileError::Unavailable(Box::new(e))
    }
}

/// Shopper profiles in the relay database.
#[derive(Clone, Debug)]
pub struct SqliteProfileStore {
    db: SqliteDatabase,
}

impl SqliteProfileStore {
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

    /// Deletes profiles expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`ProfileError`].
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, ProfileError> {
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM profiles WHERE expires_at <= ?1",
                    params![now.timestamp()],
                )
                .map(|n| n as u64)
            })
            .await?)
    }
}

impl ProfileStore for SqliteProfileStore {
    async fn put_profile(
        &self,
        shop: &str,
        order_id: u64,
        profile: &Profile,
        expires_at: i64,
        now: DateTime<Utc>,
    ) -> Result<Stored, ProfileError> {
        let order = format!("{}#", profile_key(shop, order_id));
        let id = format!(
            "{order}{}",
            profile.checkout_token_sha256.as_deref().unwrap_or("-")
        );
        let json = super::encode(&id, profile)?;
        let written = self
            .db
            .call(false, move |conn| {
                let (from, to) = (order.clone(), format!("{}$", order.trim_end_matches('#')));
                let live: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM profiles WHERE id >= ?1 AND id < ?2 AND expires_at > ?3",
                    )?
                    .query_row(params![from, to, now.timestamp()], |row| row.get(0))?;
                if live >= i64::from(MAX_PROFILES_PER_ORDER) {
                    return Ok(0);
                }
                // The first live profile of a token wins; an expired one is replaced.
                conn.prepare_cached(
                    "INSERT INTO profiles (id, profile, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET
                         profile = excluded.profile, expires_at = excluded.expires_at
                     WHERE profiles.expires_at <= ?4",
                )?
                .execute(params![id, json, expires_at, now.timestamp()])
            })
            .await?;
        Ok(if written == 1 {
            Stored::Recorded
        } else {
            Stored::KeptEarlier
        })
    }

    async fn get_profiles(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Profile>, ProfileError> {
        let order = format!("{}#", profile_key(shop, order_id));
        let (from, to) = (order.clone(), format!("{}$", order.trim_end_matches('#')));
        let rows: Vec<(String, String)> = self
            .db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "SELECT id, profile FROM profiles WHERE id >= ?1 AND id < ?2 AND expires_at > ?3",
                )?
                .query_map(params![from, to, now.timestamp()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect()
            })
            .await?;
        rows.iter()
            .map(|(id, json)| super::decode(id, json))
            .collect()
    }

    async fn delete_profiles(&self, shop: &str, order_ids: &[u64]) -> Result<(), ProfileError> {
        let orders: Vec<String> = order_ids.iter().map(|id| profile_key(shop, *id)).collect();
        self.db
            .call(false, move |conn| {
                // Every token's row of the order: ids in ["{order}#", "{order}$").
                let mut delete =
                    conn.prepare_cached("DELETE FROM profiles WHERE id >= ?1 AND id < ?2")?;
                for order in &orders {
                    delete.execute(params![format!("{order}#"), format!("{order}$")])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn delete_shop_profiles(&self, shop: &str) -> Result<u64, ProfileError> {
        // As in `delete_shop`: the shop's keys are exactly those in ["order#{shop}#", "order#{shop}$").
        let from = shop_profile_prefix(shop);
        let to = format!("order#{shop}$");
        Ok(self
            .db
            .call(false, move |conn| {
                conn.execute(
                    "DELETE FROM profiles WHERE id >= ?1 AND id < ?2",
                    params![from, to],
                )
                .map(|n| n as u64)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::idempotency::sqlite::SqliteIdempotencyStore;
    use crate::profile::contract;

    fn store() -> (tempfile::TempDir, SqliteProfileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteProfileStore::open_in(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn passes_the_profile_store_contract() {
        let (_dir, store) = store();
        contract::run_all(&store).await;
        contract::a_forged_profile_posted_first_changes_nothing_for_the_shoppers_own(&store).await;
    }

    #[tokio::test]
    async fn shares_the_database_with_the_idempotency_store_without_mixing_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open_in(dir.path()).unwrap();
        contract::records_and_profiles_are_kept_apart(
            &SqliteIdempotencyStore::new(db.clone()),
            &SqliteProfileStore::new(db),
        )
        .await;
    }

    #[tokio::test]
    async fn purge_deletes_expired_profiles() {
        let (_dir, store) = store();
        let now = Utc::now();
        let profile = Profile::default();
        let shop = "a.myshopify.com";
        store
            .put_profile(shop, 1, &profile, now.timestamp() + 10, now)
            .await
            .unwrap();
        store
            .put_profile(shop, 2, &profile, now.timestamp() + 1000, now)
            .await
            .unwrap();
        assert_eq!(
            store
                .purge_expired(now + Duration::seconds(20))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.get_profiles(shop, 2, now).await.unwrap().len(), 1);
    }
}
