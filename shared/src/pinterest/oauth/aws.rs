//! A stack's grants (features `dynamodb` and `secretsmanager`): each store's grant in a Secrets
//! Manager secret of its own, `{prefix}{domain}/pinterest-oauth` (the stack's prefix is
//! `{StackName}/shops/`, beside the store's own secret), and its refresh lease on an item of the
//! stack's table:
//!
//! | item `id` | attributes |
//! |---|---|
//! | `pinterest-oauth#{domain}` | `holder` (S), `lease_until` (N, Unix ms), `written_at` (N, Unix ms) |
//!
//! The lease is taken with a conditional `UpdateItem` (free, or lapsed); before writing the
//! secret the holder proves it still holds the lease with another conditional `UpdateItem`, so
//! a refresher whose lease lapsed and was taken over never writes. Only the refresher (the hourly
//! watch, `pinrelay pinterest refresh`) and `pinrelay pinterest login` write the secret; the
//! functions read it.

use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;

use super::Grant;
use super::store::{GrantStore, GrantStoreError, Lease};
use crate::dynamodb::{ID, Table};

/// The suffix of a store's grant secret, after `{prefix}{domain}`.
pub const SECRET_SUFFIX: &str = "/pinterest-oauth";

/// The lease item's holder.
const HOLDER: &str = "holder";
/// When the lease lapses, Unix ms.
const LEASE_UNTIL: &str = "lease_until";
/// When the holder last proved its lease before writing, Unix ms.
const WRITTEN_AT: &str = "written_at";

/// The grants of a stack: secrets under `prefix`, leases in `table`.
#[derive(Clone)]
pub struct AwsGrantStore {
    table: Table,
    secrets: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl fmt::Debug for AwsGrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsGrantStore")
            .field("table", &self.table.name())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A Secrets Manager call failed; the message names the call, the secret and the permission.
#[derive(Debug)]
struct SecretsError {
    operation: &'static str,
    name: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Secrets Manager {} on {} failed (the caller needs secretsmanager:{} on it): {}",
            self.operation,
            self.name,
            self.operation,
            DisplayErrorContext(&*self.source)
        )
    }
}

impl std::error::Error for SecretsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The id of `shop`'s lease item in the table.
pub fn lease_id(shop: &str) -> String {
    format!("pinterest-oauth#{shop}")
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl AwsGrantStore {
    /// The grants of the stack whose table is `table` and whose store secrets are named
    /// `{prefix}{domain}`.
    pub fn new(
        table: Table,
        secrets: aws_sdk_secretsmanager::Client,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            table,
            secrets,
            prefix: prefix.into(),
        }
    }

    /// The name of `shop`'s grant secret.
    pub fn secret_name(&self, shop: &str) -> String {
        format!("{}{shop}{SECRET_SUFFIX}", self.prefix)
    }

    fn secrets_error<E>(&self, operation: &'static str, name: &str, e: E) -> GrantStoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        GrantStoreError::Storage(Box::new(SecretsError {
            operation,
            name: name.to_owned(),
            source: Box::new(e),
        }))
    }

    /// A conditional `UpdateItem` on `shop`'s lease item: false when its condition failed.
    async fn conditional_update(
        &self,
        shop: &str,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, GrantStoreError> {
        let mut request = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(lease_id(shop)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#holder", HOLDER);
        if update.contains("#until") || condition.contains("#until") {
            request = request.expression_attribute_names("#until", LEASE_UNTIL);
        }
        if update.contains("#written") {
            request = request.expression_attribute_names("#written", WRITTEN_AT);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(GrantStoreError::Storage(Box::new(
                self.table.error("UpdateItem", e),
            ))),
        }
    }
}

impl GrantStore for AwsGrantStore {
    async fn get(&self, shop: &str) -> Result<Option<Grant>, GrantStoreError> {
        let name = self.secret_name(shop);
        let output = match self
            .secrets
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.secrets_error("GetSecretValue", &name, e)),
        };
        output
            .secret_string()
            .map(|json| {
                Grant::from_json(json).map_err(|e| GrantStoreError::Corrupt {
                    shop: shop.to_owned(),
                    message: format!(
                        "its secret {name} is not a grant: {}",
                        crate::mapping::json_error_summary(&e)
                    ),
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
        let taken = self
            .conditional_update(
                shop,
                "SET #holder = :h, #until = :u",
                "attribute_not_exists(#holder) OR #until < :now",
                vec![
                    (":h", s(holder)),
                    (":u", n(lease.until.timestamp_millis())),
                    (":now", n(now.timestamp_millis())),
                ],
            )
            .await?;
        Ok(taken.then_some(lease))
    }

    async fn put(&self, shop: &str, lease: &Lease, grant: &Grant) -> Result<(), GrantStoreError> {
        let held = self
            .conditional_update(
                shop,
                "SET #written = :now",
                "#holder = :h",
                vec![
                    (":h", s(&lease.holder)),
                    (":now", n(Utc::now().timestamp_millis())),
                ],
            )
            .await?;
        if !held {
            return Err(GrantStoreError::LeaseLost {
                shop: shop.to_owned(),
            });
        }
        let name = self.secret_name(shop);
        let value = grant.to_json();
        let put = self
            .secrets
            .put_secret_value()
            .secret_id(&name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            // The first sign-in: the secret does not exist yet.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.secrets
                    .create_secret()
                    .name(&name)
                    .description(format!(
                        "pinrelay: the Pinterest sign-in of store {shop} (written by its refresher)"
                    ))
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| self.secrets_error("CreateSecret", &name, e))?;
                Ok(())
            }
            Err(e) => Err(self.secrets_error("PutSecretValue", &name, e)),
        }
    }

    async fn release(&self, shop: &str, lease: &Lease) -> Result<(), GrantStoreError> {
        self.conditional_update(
            shop,
            "REMOVE #holder, #until",
            "#holder = :h",
            vec![(":h", s(&lease.holder))],
        )
        .await?;
        Ok(())
    }
}
