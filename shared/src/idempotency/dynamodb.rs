//! [`DynamoDbIdempotencyStore`]: the [`IdempotencyStore`] adapter for a DynamoDB table, following
//! Powertools for AWS Lambda's DynamoDB persistence layer.
//!
//! The table has a string partition key `id` and its TTL attribute is `expires_at`. One item per key:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `{shop}#{event_name}#{event_id}` |
//! | `status` | S | `INPROGRESS` or `COMPLETED` |
//! | `expires_at` | N | Unix seconds; the record's `expiration`, and the table's TTL attribute |
//! | `in_progress_expiration` | N | Unix milliseconds; when an `INPROGRESS` lock may be taken over |
//!
//! Shopper profiles share the table ([`crate::profile::dynamodb`]) under ids that start with
//! `order#`, apart from records, whose ids start with the shop.
//!
//! DynamoDB deletes expired items lazily (up to days late), so every condition compares the times
//! itself. It is not a cache: every call goes to the table.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::{
    Claim, IdempotencyKey, IdempotencyRecord, IdempotencyStore, RECORD_TTL_SECONDS, Status,
    StoreError,
};
use crate::dynamodb::{EXPIRES_AT, ID, Table, TableError};

const STATUS: &str = "status";
const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";

impl From<TableError> for StoreError {
    fn from(e: TableError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// Idempotency records in a DynamoDB table (partition key `id`, TTL attribute `expires_at`).
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotencyStore {
    table: Table,
}

impl DynamoDbIdempotencyStore {
    /// Records in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(
        key: &IdempotencyKey,
        status: Status,
        expiration: i64,
        lock_ms: Option<i64>,
    ) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            (ID.to_owned(), AttributeValue::S(key.as_str().to_owned())),
            (
                STATUS.to_owned(),
                AttributeValue::S(status.as_str().to_owned()),
            ),
            (
                EXPIRES_AT.to_owned(),
                AttributeValue::N(expiration.to_string()),
            ),
        ]);
        if let Some(ms) = lock_ms {
            item.insert(
                IN_PROGRESS_EXPIRATION.to_owned(),
                AttributeValue::N(ms.to_string()),
            );
        }
        item
    }

    /// The claim a live record stands for.
    fn claim_of(record: &IdempotencyRecord) -> Claim {
        match record.status {
            Status::Completed => Claim::AlreadyCompleted,
            Status::InProgress => Claim::InProgress {
                until_ms: record.in_progress_expiration.unwrap_or_default(),
            },
        }
    }
}

/// Reads a stored item back into a record.
fn parse(
    key: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<IdempotencyRecord, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt {
        key: key.to_owned(),
        why: why.to_owned(),
    };
    let number = |name: &str| -> Result<Option<i64>, StoreError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map(Some)
                .map_err(|_| corrupt(&format!("{name} is not a whole number"))),
            Some(_) => Err(corrupt(&format!("{name} is not a number"))),
        }
    };
    let id = match item.get(ID) {
        Some(AttributeValue::S(s)) => s.as_str(),
        _ => return Err(corrupt("id is missing or not a string")),
    };
    let (shop, rest) = id.split_once('#').ok_or_else(|| corrupt("malformed id"))?;
    let (event_name, event_id) = rest
        .split_once('#')
        .ok_or_else(|| corrupt("malformed id"))?;
    let record_key =
        IdempotencyKey::new(shop, event_name, event_id).map_err(|_| corrupt("malformed id"))?;
    let status = match item.get(STATUS) {
        Some(AttributeValue::S(s)) => Status::parse(s).ok_or_else(|| corrupt("unknown status"))?,
        _ => return Err(corrupt("status is missing or not a string")),
    };
    Ok(IdempotencyRecord {
        key: record_key,
        status,
        expiration: number(EXPIRES_AT)?.ok_or_else(|| corrupt("expires_at is missing"))?,
        in_progress_expiration: number(IN_PROGRESS_EXPIRATION)?,
    })
}

impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn put_in_progress(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        lock_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let item = Self::item(
            key,
            Status::InProgress,
            now.timestamp() + RECORD_TTL_SECONDS,
            Some(lock_until.timestamp_millis()),
        );
        // `<=` matches `IdempotencyRecord::is_expired`: whatever a reader sees as expired can be
        // taken over.
        let result = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#id) OR #expires_at <= :now \
                 OR (#status = :inprogress AND #in_progress_expiration <= :now_ms)",
            )
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_names("#in_progress_expiration", IN_PROGRESS_EXPIRATION)
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(
                ":now_ms",
                AttributeValue::N(now.timestamp_millis().to_string()),
            )
            .expression_attribute_values(
                ":inprogress",
                AttributeValue::S(Status::InProgress.as_str().to_owned()),
            )
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            // The item replaced, if any, tells a crashed holder's lock from a lapsed record.
            Ok(output) => {
                let abandoned = match output.attributes {
                    Some(old) if !old.is_empty() => parse(key.as_str(), &old)?.is_abandoned(now),
                    _ => false,
                };
                return Ok(if abandoned {
                    Claim::Abandoned
                } else {
                    Claim::Acquired
                });
            }
            Err(e) => e,
        };
        let old = match &error {
            SdkError::ServiceError(service) => match service.err() {
                PutItemError::ConditionalCheckFailedException(failed) => Some(failed.item.clone()),
                _ => None,
            },
            _ => None,
        };
        match old {
            None => Err(self.table.error("PutItem", error).into()),
            Some(Some(item)) => Ok(Self::claim_of(&parse(key.as_str(), &item)?)),
            // The condition failed but the old item was not returned: read it (consistently).
            Some(None) => match self.get(key).await? {
                Some(record) if !record.is_expired(now) => Ok(Self::claim_of(&record)),
                // Deleted or expired in between: someone else's turn is over; let the caller retry.
                _ => Ok(Claim::InProgress {
                    until_ms: now.timestamp_millis(),
                }),
            },
        }
    }

    async fn complete(&self, key: &IdempotencyKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item = Self::item(
            key,
            Status::Completed,
            now.timestamp() + RECORD_TTL_SECONDS,
            None,
        );
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.table.error("PutItem", e))?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        Ok(self.table.delete(key.as_str()).await?)
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.table
            .get(key.as_str())
            .await?
            .map(|item| parse(key.as_str(), &item))
            .transpose()
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        Ok(self
            .table
            .delete_prefix(&IdempotencyKey::shop_prefix(shop))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: &str, expires_at: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                ID.into(),
                AttributeValue::S("a.myshopify.com#checkout#1".into()),
            ),
            (STATUS.into(), AttributeValue::S(status.into())),
            (EXPIRES_AT.into(), AttributeValue::N(expires_at.into())),
            (
                IN_PROGRESS_EXPIRATION.into(),
                AttributeValue::N("1500".into()),
            ),
        ])
    }

    #[test]
    fn reads_back_what_it_writes() {
        let key = IdempotencyKey::new("a.myshopify.com", "checkout", "1").unwrap();
        let item = DynamoDbIdempotencyStore::item(&key, Status::InProgress, 10, Some(1500));
        let record = parse(key.as_str(), &item).unwrap();
        assert_eq!(record.key, key);
        assert_eq!(record.status, Status::InProgress);
        assert_eq!(record.expiration, 10);
        assert_eq!(record.in_progress_expiration, Some(1500));
    }

    #[test]
    fn reports_corrupt_items_instead_of_guessing() {
        assert!(matches!(
            parse("k", &stored("DONE", "10")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            parse("k", &stored("COMPLETED", "ten")),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(parse("k", &stored("COMPLETED", "10")).is_ok());
    }
}
