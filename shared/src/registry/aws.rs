//! A stack's registry: each store's entry in the relay's DynamoDB table, its secrets in one
//! Secrets Manager secret of its own (features `dynamodb` and `secretsmanager`).
//!
//! | item `id` | attributes |
//! |---|---|
//! | `shop#{domain}` | `entry` (S, [`ShopEntry`] JSON), `secret_arn` (S), `secret_version` (S); no `expires_at` |
//! | `shops` | `domains` (SS): every registered domain, so [`Registry::list`] never scans the table |
//!
//! The secret is named `{prefix}{domain}` (the stack's prefix is `{StackName}/shops/`) and holds
//! [`ShopSecrets`] as JSON.
//!
//! **Cost.** A secret costs $0.40 a month and `GetSecretValue` $0.05 per 10,000 calls, so the
//! secret is read again only when its entry changed: [`AwsRegistry::get`] reads the entry (one
//! `GetItem`) and reuses the secrets it read for the same `updated_at` and secret version. A warm
//! function re-reading a store every minute (the [`super::CachedDirectory`]) makes 43,200
//! `GetItem`s a month (about $0.011 at $0.25 per million reads) and no `GetSecretValue` until the
//! store changes; each cold start reads the secret once. An added store stays under $0.50 a month
//! (the README's "Many stores" has the arithmetic).
//!
//! **Size.** The index item holds at most [`MAX_STORES`] domains: at 77 bytes a domain at most
//! (a 63-character name), 5,000 fit in DynamoDB's 400 KB item with room to spare.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata as _};
use chrono::{DateTime, Utc};

use super::{
    CachedDirectory, DefaultStore, Registry, RegistryError, Shop, ShopEntry, ShopSecrets, validate,
};
use crate::config::RegistrySettings;
use crate::dynamodb::{ID, Table, TableError};

/// Stores one stack's registry holds at most: the index item of their domains must stay under
/// DynamoDB's 400 KB item limit (5,000 × 77 bytes = 385 KB).
pub const MAX_STORES: usize = 5_000;

/// The index item's id.
const INDEX_ID: &str = "shops";
/// The index item's string set of domains.
const DOMAINS: &str = "domains";
/// A store item's entry JSON.
const ENTRY: &str = "entry";
/// A store item's secret ARN.
const SECRET_ARN: &str = "secret_arn";
/// A store item's secret version, the one written with the entry.
const SECRET_VERSION: &str = "secret_version";

impl From<TableError> for RegistryError {
    fn from(e: TableError) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

/// A store's secrets as last read, and the entry version they belong to.
#[derive(Clone)]
struct CachedSecrets {
    updated_at: DateTime<Utc>,
    version: String,
    secrets: ShopSecrets,
}

/// The registry of a stack: entries in its table, secrets in Secrets Manager under `prefix`.
pub struct AwsRegistry {
    table: Table,
    secrets: aws_sdk_secretsmanager::Client,
    prefix: String,
    cache: Mutex<HashMap<String, CachedSecrets>>,
    secret_reads: AtomicU64,
}

impl std::fmt::Debug for AwsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsRegistry")
            .field("table", &self.table.name())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A store's item as read from the table.
struct Item {
    entry: ShopEntry,
    secret_arn: String,
    secret_version: String,
}

fn store_id(domain: &str) -> String {
    format!("shop#{domain}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// What a Lambda function asks which store a shop is: the stack's registered stores (when
/// `settings` is set, `SHOP_SECRETS_PREFIX`) through `sdk`'s clients, then `default`.
pub fn directory(
    sdk: &aws_config::SdkConfig,
    settings: Option<&RegistrySettings>,
    default: Option<DefaultStore>,
) -> CachedDirectory<AwsRegistry> {
    let registry = settings.map(|s| {
        AwsRegistry::new(
            Table::new(aws_sdk_dynamodb::Client::new(sdk), &s.table),
            aws_sdk_secretsmanager::Client::new(sdk),
            &s.secrets_prefix,
        )
    });
    CachedDirectory::new(registry, default)
}

impl AwsRegistry {
    /// The registry in `table`, secrets named `{prefix}{domain}` through `secrets`.
    pub fn new(
        table: Table,
        secrets: aws_sdk_secretsmanager::Client,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            table,
            secrets,
            prefix: prefix.into(),
            cache: Mutex::new(HashMap::new()),
            secret_reads: AtomicU64::new(0),
        }
    }

    /// The name of `domain`'s secret.
    pub fn secret_name(&self, domain: &str) -> String {
        format!("{}{domain}", self.prefix)
    }

    /// How many times a secret was read (`GetSecretValue`) by this registry: what it costs.
    pub fn secret_reads(&self) -> u64 {
        self.secret_reads.load(Ordering::Relaxed)
    }

    /// A failed Secrets Manager call, naming the permission it needs.
    fn secrets_error<E>(&self, operation: &'static str, name: &str, e: &E) -> RegistryError
    where
        E: std::error::Error + 'static,
    {
        self.secrets_error_hint(operation, name, e, "")
    }

    /// [`Self::secrets_error`] with a hint appended.
    fn secrets_error_hint<E>(
        &self,
        operation: &'static str,
        name: &str,
        e: &E,
        hint: &str,
    ) -> RegistryError
    where
        E: std::error::Error + 'static,
    {
        RegistryError::Storage(format!(
            "Secrets Manager {operation} on {name} failed (the caller needs secretsmanager:{operation} on the secrets named {}*){hint}: {}",
            self.prefix,
            DisplayErrorContext(e)
        ))
    }

    /// The store item of `domain`, parsed.
    async fn item(&self, domain: &str) -> Result<Option<Item>, RegistryError> {
        let Some(item) = self.table.get(&store_id(domain)).await? else {
            return Ok(None);
        };
        let corrupt = |message: String| RegistryError::Corrupt {
            domain: domain.to_owned(),
            message,
        };
        let string = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(corrupt(format!("{name} is missing or not a string"))),
        };
        let entry: ShopEntry = serde_json::from_str(&string(ENTRY)?)
            .map_err(|e| corrupt(crate::mapping::json_error_summary(&e)))?;
        Ok(Some(Item {
            entry,
            secret_arn: string(SECRET_ARN)?,
            secret_version: string(SECRET_VERSION)?,
        }))
    }

    /// The registered domains (the index item).
    async fn domains(&self) -> Result<Vec<String>, RegistryError> {
        let item = self.table.get(INDEX_ID).await?;
        let mut domains = match item.as_ref().and_then(|i| i.get(DOMAINS)) {
            Some(AttributeValue::Ss(list)) => list.clone(),
            None => Vec::new(),
            Some(_) => {
                return Err(RegistryError::Storage(format!(
                    "the item {INDEX_ID} of table {} is not pinrelay's index of stores ({DOMAINS} is not a string set)",
                    self.table.name()
                )));
            }
        };
        domains.sort();
        Ok(domains)
    }

    /// Adds `domain` to (`ADD`) or removes it from (`DELETE`) the index.
    async fn index(&self, action: &str, domain: &str) -> Result<(), RegistryError> {
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(INDEX_ID))
            .update_expression(format!("{action} #domains :d"))
            .expression_attribute_names("#domains", DOMAINS)
            .expression_attribute_values(":d", AttributeValue::Ss(vec![domain.to_owned()]))
            .send()
            .await
            .map_err(|e| self.table.error("UpdateItem", e))?;
        Ok(())
    }

    /// Reads the secret version of a store entry (counted).
    async fn read_secret(&self, domain: &str, item: &Item) -> Result<ShopSecrets, RegistryError> {
        self.secret_reads.fetch_add(1, Ordering::Relaxed);
        let output = self
            .secrets
            .get_secret_value()
            .secret_id(&item.secret_arn)
            .version_id(&item.secret_version)
            .send()
            .await
            .map_err(|e| self.secrets_error("GetSecretValue", &item.secret_arn, &e))?;
        let value = output.secret_string.ok_or_else(|| RegistryError::Corrupt {
            domain: domain.to_owned(),
            message: format!("its secret {} has no SecretString", item.secret_arn),
        })?;
        serde_json::from_str(&value).map_err(|e| RegistryError::Corrupt {
            domain: domain.to_owned(),
            message: format!(
                "its secret {} is not the store's secrets as JSON: {}",
                item.secret_arn,
                crate::mapping::json_error_summary(&e)
            ),
        })
    }

    /// Writes `domain`'s secret (a new one, or a new version of `existing`): its ARN and version.
    async fn write_secret(
        &self,
        domain: &str,
        existing: Option<&str>,
        secrets: &ShopSecrets,
    ) -> Result<(String, String), RegistryError> {
        let value = serde_json::to_string(secrets)
            .map_err(|e| RegistryError::Storage(format!("cannot encode the secrets: {e}")))?;
        let name = self.secret_name(domain);
        if existing.is_none() {
            let created = self
                .secrets
                .create_secret()
                .name(&name)
                .description(format!("pinrelay: the secrets of store {domain}"))
                .secret_string(&value)
                .send()
                .await;
            match created {
                Ok(out) => {
                    return match (out.arn, out.version_id) {
                        (Some(arn), Some(version)) => Ok((arn, version)),
                        _ => Err(RegistryError::Storage(format!(
                            "Secrets Manager CreateSecret on {name} returned no ARN or version"
                        ))),
                    };
                }
                // Left by an earlier `put` whose entry was not written: write a new version.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_exists_exception()) => {}
                Err(e) => {
                    let hint = if e.code() == Some("InvalidRequestException") {
                        " (a secret of that name scheduled for deletion blocks it: restore it with `aws secretsmanager restore-secret` or delete it with --force-delete-without-recovery)"
                    } else {
                        ""
                    };
                    return Err(self.secrets_error_hint("CreateSecret", &name, &e, hint));
                }
            }
        }
        let id = existing.unwrap_or(&name);
        let out = self
            .secrets
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| self.secrets_error("PutSecretValue", id, &e))?;
        match (out.arn, out.version_id) {
            (Some(arn), Some(version)) => Ok((arn, version)),
            _ => Err(RegistryError::Storage(format!(
                "Secrets Manager PutSecretValue on {id} returned no ARN or version"
            ))),
        }
    }

    /// Deletes a secret at once (no recovery window, so its name is free again); absent is fine.
    async fn delete_secret(&self, id: &str) -> Result<(), RegistryError> {
        match self
            .secrets
            .delete_secret()
            .secret_id(id)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.secrets_error("DeleteSecret", id, &e)),
        }
    }

    fn forget(&self, domain: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(domain);
        }
    }
}

impl Registry for AwsRegistry {
    async fn get(&self, domain: &str) -> Result<Option<Shop>, RegistryError> {
        let Some(item) = self.item(domain).await? else {
            self.forget(domain);
            return Ok(None);
        };
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(domain)
                .filter(|c| {
                    c.updated_at == item.entry.updated_at && c.version == item.secret_version
                })
                .map(|c| c.secrets.clone())
        });
        let secrets = match cached {
            Some(secrets) => secrets,
            None => {
                let secrets = self.read_secret(domain, &item).await?;
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(
                        domain.to_owned(),
                        CachedSecrets {
                            updated_at: item.entry.updated_at,
                            version: item.secret_version.clone(),
                            secrets: secrets.clone(),
                        },
                    );
                }
                secrets
            }
        };
        Ok(Some(Shop {
            entry: item.entry,
            secrets,
        }))
    }

    async fn list(&self) -> Result<Vec<ShopEntry>, RegistryError> {
        let domains = self.domains().await?;
        let ids: Vec<String> = domains.iter().map(|d| store_id(d)).collect();
        let items = self.table.get_many(&ids).await?;
        let mut entries = items
            .iter()
            .filter_map(|item| match item.get(ENTRY) {
                Some(AttributeValue::S(json)) => Some(json),
                _ => None,
            })
            .map(|json| {
                serde_json::from_str::<ShopEntry>(json).map_err(|e| RegistryError::Corrupt {
                    domain: "(listed store)".to_owned(),
                    message: crate::mapping::json_error_summary(&e),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(entries)
    }

    async fn register(&self, shop: &Shop) -> Result<(), RegistryError> {
        validate(shop)?;
        let domain = shop.entry.domain.as_str();
        let existing = self.item(domain).await.or_else(|e| match e {
            // A damaged entry is rewritten; its secret keeps its name.
            RegistryError::Corrupt { .. } => Ok(None),
            e => Err(e),
        })?;
        if existing.is_none() {
            let domains = self.domains().await?;
            if !domains.iter().any(|d| d == domain) && domains.len() >= MAX_STORES {
                return Err(RegistryError::Storage(format!(
                    "this stack serves {} stores, the most one registry holds ({MAX_STORES}: the index of domains must fit in one 400 KB DynamoDB item); remove a store or deploy another stack",
                    domains.len()
                )));
            }
        }
        let (arn, version) = self
            .write_secret(
                domain,
                existing.as_ref().map(|i| i.secret_arn.as_str()),
                &shop.secrets,
            )
            .await?;
        // A new version of the entry, later than the one it replaces (the secrets cache key).
        let mut entry = shop.entry.clone();
        let now = Utc::now();
        entry.updated_at = match &existing {
            Some(old) if old.entry.updated_at >= now => {
                old.entry.updated_at + chrono::Duration::milliseconds(1)
            }
            _ => now,
        };
        let json = serde_json::to_string(&entry)
            .map_err(|e| RegistryError::Storage(format!("cannot encode the entry: {e}")))?;
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .item(ID, s(store_id(domain)))
            .item(ENTRY, s(json))
            .item(SECRET_ARN, s(arn))
            .item(SECRET_VERSION, s(version.clone()))
            .send()
            .await
            .map_err(|e| self.table.error("PutItem", e))?;
        self.index("ADD", domain).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                domain.to_owned(),
                CachedSecrets {
                    updated_at: entry.updated_at,
                    version,
                    secrets: shop.secrets.clone(),
                },
            );
        }
        Ok(())
    }

    async fn set_enabled(&self, domain: &str, enabled: bool) -> Result<bool, RegistryError> {
        let Some(item) = self.item(domain).await? else {
            return Ok(false);
        };
        let mut entry = item.entry;
        entry.enabled = enabled;
        // A new version of the entry (the caches compare it); the secret's version is unchanged.
        entry.updated_at = Utc::now().max(entry.updated_at + chrono::Duration::milliseconds(1));
        let json = serde_json::to_string(&entry)
            .map_err(|e| RegistryError::Storage(format!("cannot encode the entry: {e}")))?;
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(store_id(domain)))
            .update_expression("SET #entry = :entry")
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#entry", ENTRY)
            .expression_attribute_names("#id", ID)
            .expression_attribute_values(":entry", s(json))
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Removed meanwhile (`shop/redact`): nothing left to disable.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(self.table.error("UpdateItem", e).into()),
        }
        if let Ok(mut cache) = self.cache.lock()
            && let Some(c) = cache.get_mut(domain)
        {
            c.updated_at = entry.updated_at;
        }
        Ok(true)
    }

    async fn remove(&self, domain: &str) -> Result<bool, RegistryError> {
        let existing = self.item(domain).await.map(|i| i.map(|i| i.secret_arn));
        let (found, secret) = match existing {
            Ok(Some(arn)) => (true, arn),
            Ok(None) => (false, self.secret_name(domain)),
            // A damaged entry is removed all the same; its secret by name.
            Err(RegistryError::Corrupt { .. }) => (true, self.secret_name(domain)),
            Err(e) => return Err(e),
        };
        self.forget(domain);
        self.table.delete(&store_id(domain)).await?;
        self.index("DELETE", domain).await?;
        // Also a secret an interrupted `put` left without an entry: it would cost $0.40 a month.
        self.delete_secret(&secret).await?;
        // And the store's Pinterest sign-in (`pinrelay pinterest login`), with its lease item.
        self.delete_secret(&format!(
            "{}{}",
            self.secret_name(domain),
            crate::pinterest::oauth::aws::SECRET_SUFFIX
        ))
        .await?;
        self.table
            .delete(&crate::pinterest::oauth::aws::lease_id(domain))
            .await?;
        Ok(found)
    }
}
