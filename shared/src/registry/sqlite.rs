//! `pinrelay serve`'s registry: the `shops` table of the relay database, one row per store, its
//! entry and its secrets as JSON (the database file is readable by its owner only).

use chrono::Utc;
use rusqlite::{OptionalExtension as _, params};

use super::{Registry, RegistryError, Shop, ShopEntry, ShopSecrets, validate};
use crate::sqlite::{SqliteDatabase, SqliteError};

/// The registry in the relay database.
#[derive(Clone)]
pub struct SqliteRegistry {
    db: SqliteDatabase,
}

impl SqliteRegistry {
    /// The registry in `db`.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }
}

impl From<SqliteError> for RegistryError {
    fn from(e: SqliteError) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

fn parse(domain: &str, entry: &str, secrets: &str) -> Result<Shop, RegistryError> {
    let corrupt = |e: serde_json::Error| RegistryError::Corrupt {
        domain: domain.to_owned(),
        message: crate::mapping::json_error_summary(&e),
    };
    Ok(Shop {
        entry: serde_json::from_str::<ShopEntry>(entry).map_err(corrupt)?,
        secrets: serde_json::from_str::<ShopSecrets>(secrets).map_err(corrupt)?,
    })
}

impl Registry for SqliteRegistry {
    async fn get(&self, domain: &str) -> Result<Option<Shop>, RegistryError> {
        let key = domain.to_owned();
        let row: Option<(String, String)> = self
            .db
            .call(false, move |conn| {
                conn.query_row(
                    "SELECT entry, secrets FROM shops WHERE domain = ?1",
                    params![key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        row.map(|(entry, secrets)| parse(domain, &entry, &secrets))
            .transpose()
    }

    async fn list(&self) -> Result<Vec<ShopEntry>, RegistryError> {
        let rows: Vec<(String, String)> = self
            .db
            .call(false, |conn| {
                let mut statement =
                    conn.prepare("SELECT domain, entry FROM shops ORDER BY domain")?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.iter()
            .map(|(domain, entry)| {
                serde_json::from_str(entry).map_err(|e| RegistryError::Corrupt {
                    domain: domain.clone(),
                    message: crate::mapping::json_error_summary(&e),
                })
            })
            .collect()
    }

    async fn register(&self, shop: &Shop) -> Result<(), RegistryError> {
        validate(shop)?;
        let domain = shop.entry.domain.clone();
        let entry = serde_json::to_string(&shop.entry)
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        let secrets = serde_json::to_string(&shop.secrets)
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.db
            .call(true, move |conn| {
                conn.execute(
                    "INSERT INTO shops (domain, entry, secrets) VALUES (?1, ?2, ?3)
                     ON CONFLICT (domain) DO UPDATE SET entry = ?2, secrets = ?3",
                    params![domain, entry, secrets],
                )
            })
            .await?;
        Ok(())
    }

    async fn set_enabled(&self, domain: &str, enabled: bool) -> Result<bool, RegistryError> {
        let Some(mut shop) = self.get(domain).await? else {
            return Ok(false);
        };
        shop.entry.enabled = enabled;
        shop.entry.updated_at = Utc::now().max(shop.entry.updated_at);
        let entry = serde_json::to_string(&shop.entry)
            .map_err(|e| RegistryError::Storage(e.to_string()))?;
        let key = domain.to_owned();
        let changed = self
            .db
            .call(true, move |conn| {
                conn.execute(
                    "UPDATE shops SET entry = ?2 WHERE domain = ?1",
                    params![key, entry],
                )
            })
            .await?;
        Ok(changed > 0)
    }

    async fn remove(&self, domain: &str) -> Result<bool, RegistryError> {
        let key = domain.to_owned();
        let removed = self
            .db
            .call(true, move |conn| {
                // The store's Pinterest sign-in goes with it.
                conn.execute("DELETE FROM pinterest_grants WHERE shop = ?1", params![key])?;
                conn.execute("DELETE FROM shops WHERE domain = ?1", params![key])
            })
            .await?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_survive_a_reopen_and_the_file_is_its_owners_alone() {
        let dir = tempfile::tempdir().unwrap();
        let registry = SqliteRegistry::new(SqliteDatabase::open_in(dir.path()).unwrap());
        let shop = super::super::tests::shop("a.myshopify.com", "hush");
        registry.register(&shop).await.unwrap();
        drop(registry);
        let registry = SqliteRegistry::new(SqliteDatabase::open_in(dir.path()).unwrap());
        assert_eq!(registry.get("a.myshopify.com").await.unwrap(), Some(shop));
        assert_eq!(registry.list().await.unwrap().len(), 1);
        assert!(registry.get("b.myshopify.com").await.unwrap().is_none());
        assert!(registry.remove("a.myshopify.com").await.unwrap());
        assert!(!registry.remove("a.myshopify.com").await.unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(crate::sqlite::DB_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
