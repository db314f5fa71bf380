//! `pinrelay serve`'s grants: the `pinterest_grants` table of the relay database (readable by its
//! owner only), one row per store: the grant as JSON, and the refresh lease (`lease_holder`,
//! `lease_until_ms`) taken with a conditional upsert.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};
use secrecy::ExposeSecret as _;

use super::Grant;
use super::store::{GrantStore, GrantStoreError, Lease};
use crate::sqlite::{SqliteDatabase, SqliteError};

/// The grants in the relay database.
#[derive(Clone)]
pub struct SqliteGrantStore {
    db: SqliteDatabase,
}

impl SqliteGrantStore {
    /// The grants in `db`.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }

    /// The stores that have signed in, by domain.
    ///
    /// # Errors
    /// The database failed.
    pub async fn shops(&self) -> Result<Vec<String>, GrantStoreError> {
        Ok(self
            .db
            .call(false, |conn| {
                let mut statement = conn.prepare(
                    "SELECT shop FROM pinterest_grants WHERE grant_json IS NOT NULL ORDER BY shop",
                )?;
                let rows = statement
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(rows)
            })
            .await?)
    }
}

impl From<SqliteError> for GrantStoreError {
    fn from(e: SqliteError) -> Self {
        GrantStoreError::Storage(Box::new(e))
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl GrantStore for SqliteGrantStore {
    async fn get(&self, shop: &str) -> Result<Option<Grant>, GrantStoreError> {
        let key = shop.to_owned();
        let json: Option<Option<String>> = self
            .db
            .call(false, move |conn| {
                conn.query_row(
                    "SELECT grant_json FROM pinterest_grants WHERE shop = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        json.flatten()
            .map(|json| {
                Grant::from_json(&json).map_err(|e| GrantStoreError::Corrupt {
                    shop: shop.to_owned(),
                    message: crate::mapping::json_error_summary(&e),
                })
            })
            .transpose()
    }

    async fn try_lease(
        &self,
        shop: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<Option<Lease>, GrantStoreError> {
        let lease = Lease {
            holder: holder.to_owned(),
            until: now + ttl,
        };
        let (key, who, until, now) = (shop.to_owned(), holder.to_owned(), ms(lease.until), ms(now));
        let taken = self
            .db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT INTO pinterest_grants (shop, lease_holder, lease_until_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (shop) DO UPDATE SET lease_holder = ?2, lease_until_ms = ?3
                     WHERE lease_holder IS NULL OR lease_until_ms < ?4",
                    params![key, who, until, now],
                )
            })
            .await?;
        Ok((taken == 1).then_some(lease))
    }

    async fn put(&self, shop: &str, lease: &Lease, grant: &Grant) -> Result<(), GrantStoreError> {
        let json = grant.to_json().expose_secret().to_owned();
        let (key, who, now) = (shop.to_owned(), lease.holder.clone(), ms(Utc::now()));
        let written = self
            .db
            .call(true, move |conn| {
                conn.execute(
                    "UPDATE pinterest_grants SET grant_json = ?3, updated_at_ms = ?4
                     WHERE shop = ?1 AND lease_holder = ?2",
                    params![key, who, json, now],
                )
            })
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(GrantStoreError::LeaseLost {
                shop: shop.to_owned(),
            })
        }
    }

    async fn release(&self, shop: &str, lease: &Lease) -> Result<(), GrantStoreError> {
        let (key, who) = (shop.to_owned(), lease.holder.clone());
        self.db
            .call(true, move |conn| {
                conn.execute(
                    "UPDATE pinterest_grants SET lease_holder = NULL, lease_until_ms = NULL
                     WHERE shop = ?1 AND lease_holder = ?2",
                    params![key, who],
                )
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::RefreshOutcome;
    use super::super::store::contract;
    use super::*;

    #[tokio::test]
    async fn sqlite_leases_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        contract::leases_are_exclusive(&store, "a.myshopify.com").await;
        assert_eq!(store.shops().await.unwrap(), ["a.myshopify.com"]);
    }

    #[tokio::test]
    async fn sqlite_two_refreshers_racing_one_wins_the_token_survives() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        let shop = "a.myshopify.com";
        let lease = store
            .try_lease(shop, "login", Utc::now(), super::super::store::LEASE_TTL)
            .await
            .unwrap()
            .unwrap();
        store
            .put(shop, &lease, &contract::due_grant(Utc::now()))
            .await
            .unwrap();
        store.release(shop, &lease).await.unwrap();
        let endpoint = contract::RotatingEndpoint::issuing("refresh-0");
        contract::two_refreshers_racing_one_wins_the_token_survives(&store, &endpoint, shop).await;
    }

    #[tokio::test]
    async fn api_token_rereads_after_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        let shop = "a.myshopify.com";
        let reader = super::super::ApiToken::new(store.clone(), shop);
        assert!(reader.get().await.unwrap().is_none());
        super::super::save_signed_in(&store, shop, &contract::due_grant(Utc::now()), 1)
            .await
            .unwrap();
        assert_eq!(
            reader.get().await.unwrap().unwrap().expose_secret(),
            "access-0"
        );
        let endpoint = contract::RotatingEndpoint::issuing("refresh-0");
        super::super::refresh_with_lease(&store, &endpoint, shop, Utc::now(), true)
            .await
            .unwrap();
        assert_eq!(
            reader.get().await.unwrap().unwrap().expose_secret(),
            "access-0"
        );
        assert_eq!(
            reader.reread().await.unwrap().unwrap().expose_secret(),
            "access-1"
        );
    }

    #[tokio::test]
    async fn the_scheduled_pass_renews_only_due_sign_ins() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        let now = Utc::now();
        let save = |shop: &'static str, grant| {
            let store = store.clone();
            async move { super::super::save_signed_in(&store, shop, &grant, 1).await }
        };
        save("due.myshopify.com", contract::due_grant(now))
            .await
            .unwrap();
        save("fresh.myshopify.com", contract::grant_at(now, 30, 60))
            .await
            .unwrap();
        let endpoint = contract::RotatingEndpoint::issuing("refresh-0");
        let shops: Vec<String> = ["due", "fresh", "never"]
            .iter()
            .map(|s| format!("{s}.myshopify.com"))
            .collect();
        let outcomes = super::super::refresh_due(&store, &endpoint, &shops, now).await;
        let outcomes: Vec<_> = outcomes.into_iter().map(|(_, o)| o.unwrap()).collect();
        assert!(matches!(outcomes[0], RefreshOutcome::Refreshed { .. }));
        assert_eq!(
            outcomes[1],
            RefreshOutcome::NotDue {
                refresh_token_days_left: 60
            }
        );
        assert_eq!(outcomes[2], RefreshOutcome::NotSignedIn);
        assert_eq!(endpoint.refreshes(), 1);
    }
}
