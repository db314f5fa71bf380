//! [`DynamoDbLedger`]: the outcome ledger in the relay's DynamoDB table, beside the idempotency
//! records and profiles (see [`crate::dynamodb`]).
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `outcome#{shop}#order#{order_id}` or `outcome#{shop}#event#{name}#{event_id}` |
//! | `outcome` | S | `sent`, `skipped`, `dead_lettered` or `pending` (for the write condition) |
//! | `entry` | S | the [`Entry`] as JSON |
//! | `expires_at` | N | Unix seconds; the table's TTL attribute |
//!
//! One `PutItem` per entry (about 300 bytes: one write unit); lookups are `BatchGetItem`s of 100.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};

use super::{Entry, Ledger, LedgerError, Subject, ledger_key, shop_ledger_prefix};
use crate::dynamodb::{EXPIRES_AT, ID, Table, TableError, live_string};

const OUTCOME: &str = "outcome";
const ENTRY: &str = "entry";
/// Keys per `BatchGetItem`, DynamoDB's limit.
const BATCH_GET_MAX: usize = 100;
/// Attempts at reading a batch's unprocessed keys before giving up.
const UNPROCESSED_ATTEMPTS: u32 = 8;

impl From<TableError> for LedgerError {
    fn from(e: TableError) -> Self {
        LedgerError::Unavailable(Box::new(e))
    }
}

/// DynamoDB kept returning unprocessed keys.
#[derive(Debug, thiserror::Error)]
#[error(
    "{left} ledger reads were still unprocessed after {UNPROCESSED_ATTEMPTS} attempts (throttled)"
)]
struct Throttled {
    left: usize,
}

/// The outcome ledger in a DynamoDB table (partition key `id`, TTL attribute `expires_at`).
#[derive(Debug, Clone)]
pub struct DynamoDbLedger {
    table: Table,
}

impl DynamoDbLedger {
    /// The ledger in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    async fn batch_get(
        &self,
        ids: &[String],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, LedgerError> {
        let keys = ids
            .iter()
            .map(|id| HashMap::from([(ID.to_owned(), AttributeValue::S(id.clone()))]))
            .collect::<Vec<_>>();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| self.table.error("BatchGetItem", e))?;
        let mut items = Vec::new();
        for attempt in 0..UNPROCESSED_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
            }
            let output = self
                .table
                .client()
                .batch_get_item()
                .request_items(self.table.name(), request)
                .send()
                .await
                .map_err(|e| self.table.error("BatchGetItem", e))?;
            if let Some(mut responses) = output.responses {
                items.extend(responses.remove(self.table.name()).unwrap_or_default());
            }
            match output
                .unprocessed_keys
                .and_then(|mut left| left.remove(self.table.name()))
            {
                Some(left) if !left.keys.is_empty() => request = left,
                _ => return Ok(items),
            }
        }
        Err(self
            .table
            .error("BatchGetItem", Throttled { left: ids.len() })
            .into())
    }
}

impl Ledger for DynamoDbLedger {
    async fn record(&self, entry: &Entry, expires_at: i64) -> Result<(), LedgerError> {
        let json = super::encode(entry)?;
        let put = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .item(ID, AttributeValue::S(entry.key()))
            .item(OUTCOME, AttributeValue::S(entry.outcome.label().to_owned()))
            .item(ENTRY, AttributeValue::S(json))
            .item(EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#outcome", OUTCOME)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(entry.at.timestamp().to_string()),
            )
            // A live `sent` entry stays; anything else takes the latest outcome.
            .condition_expression(
                "attribute_not_exists(#id) OR #outcome <> :sent OR #expires_at <= :now",
            );
        match put.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(self.table.error("PutItem", e).into()),
        }
    }

    async fn lookup(
        &self,
        shop: &str,
        subjects: &[Subject],
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, LedgerError> {
        let mut ids: Vec<String> = subjects.iter().map(|s| ledger_key(shop, s)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut entries = Vec::new();
        for chunk in ids.chunks(BATCH_GET_MAX) {
            for item in self.batch_get(chunk).await? {
                if let Some(entry) = parse(&item, now)? {
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, LedgerError> {
        Ok(self.table.delete_prefix(&shop_ledger_prefix(shop)).await?)
    }
}

/// Reads a stored entry; an expired one reads as `None` (TTL deletes lazily).
fn parse(
    item: &HashMap<String, AttributeValue>,
    now: DateTime<Utc>,
) -> Result<Option<Entry>, LedgerError> {
    let id = match item.get(ID) {
        Some(AttributeValue::S(id)) => id.as_str(),
        _ => "(no id)",
    };
    let json = live_string(item, ENTRY, now).map_err(|why| LedgerError::Corrupt {
        key: id.to_owned(),
        why,
    })?;
    json.map(|json| super::decode(id, json)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_and_corrupt_items_are_told_apart() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let item = |expires: &str, entry: &str| {
            HashMap::from([
                (ID.to_owned(), AttributeValue::S("outcome#a#order#1".into())),
                (EXPIRES_AT.to_owned(), AttributeValue::N(expires.into())),
                (ENTRY.to_owned(), AttributeValue::S(entry.into())),
            ])
        };
        assert_eq!(parse(&item("100", "{}"), now).unwrap(), None);
        let e = parse(&item("200", "{}"), now).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the outcome ledger entry outcome#a#order#1"),
            "{e}"
        );
        assert!(parse(&item("soon", "{}"), now).is_err());
    }
}
