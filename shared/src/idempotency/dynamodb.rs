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
//! Shopper profiles ([`ProfileStore`]) share the table: `id` is `order#{shop}#{order_id}`, `profile`
//! (S) the [`Profile`] as JSON, `expires_at` the same TTL attribute. The prefix keeps them apart from
//! records, whose ids start with the shop.
//!
//! DynamoDB deletes expired items lazily (up to days late), so every condition compares the times
//! itself. It is not a cache: every call goes to the table.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use chrono::{DateTime, Utc};

use super::{
    Claim, IdempotencyKey, IdempotencyRecord, IdempotencyStore, RECORD_TTL_SECONDS, Status,
    StoreError,
};
use crate::browser::Profile;
use crate::profile::{ProfileStore, profile_key, shop_profile_prefix};

const ID: &str = "id";
const STATUS: &str = "status";
const EXPIRES_AT: &str = "expires_at";
const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
const PROFILE: &str = "profile";

/// Items per `BatchWriteItem`, DynamoDB's limit.
const BATCH_WRITE_MAX: usize = 25;
/// Attempts at writing back a batch's unprocessed items before giving up (the caller retries).
const UNPROCESSED_ATTEMPTS: u32 = 8;

/// Idempotency records in a DynamoDB table (partition key `id`, TTL attribute `expires_at`).
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoDbIdempotencyStore {
    /// Uses `table` through `client`; build the client once per process.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn unavailable<E>(&self, operation: &'static str, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Unavailable(Box::new(DynamoDbError {
            operation,
            table: self.table.clone(),
            source: Box::new(source),
        }))
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

    async fn write_deletes(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..UNPROCESSED_ATTEMPTS {
            if requests.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                // Unprocessed items mean throttling: back off before writing them again.
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| self.unavailable("BatchWriteItem", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut items| items.remove(&self.table))
                .unwrap_or_default();
        }
        if requests.is_empty() {
            Ok(())
        } else {
            Err(self.unavailable(
                "BatchWriteItem",
                Throttled {
                    left: requests.len(),
                },
            ))
        }
    }

    /// Deletes the items with these ids, 25 per `BatchWriteItem`.
    async fn delete_ids(&self, ids: &[AttributeValue]) -> Result<(), StoreError> {
        for chunk in ids.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|id| {
                    DeleteRequest::builder()
                        .key(ID, id.clone())
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| self.unavailable("BatchWriteItem", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.write_deletes(requests).await?;
        }
        Ok(())
    }

    /// Deletes every item whose id starts with `prefix` (a consistent Scan, page by page); returns
    /// how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut deleted = 0u64;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#id, :prefix)")
                .projection_expression("#id")
                .expression_attribute_names("#id", ID)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.unavailable("Scan", e))?;
            let ids: Vec<AttributeValue> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|mut item| item.remove(ID))
                .collect();
            self.delete_ids(&ids).await?;
            deleted += ids.len() as u64;
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(deleted),
            }
        }
    }
}

/// A DynamoDB call failed; the message names the call, the table and the SDK's explanation.
#[derive(Debug)]
struct DynamoDbError {
    operation: &'static str,
    table: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for DynamoDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DynamoDB {} on table {} failed (check IDEMPOTENCY_TABLE and the function's IAM permissions): {}",
            self.operation,
            self.table,
            DisplayErrorContext(&*self.source)
        )
    }
}

impl std::error::Error for DynamoDbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// DynamoDB kept returning unprocessed items.
#[derive(Debug, thiserror::Error)]
#[error("{left} deletes were still unprocessed after {UNPROCESSED_ATTEMPTS} attempts (throttled)")]
struct Throttled {
    left: usize,
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
            .client
            .put_item()
            .table_name(&self.table)
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
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Claim::Acquired),
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
            None => Err(self.unavailable("PutItem", error)),
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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.unavailable("PutItem", e))?;
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(key.as_str().to_owned()))
            .send()
            .await
            .map_err(|e| self.unavailable("DeleteItem", e))?;
        Ok(())
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(key.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", e))?;
        output
            .item
            .map(|item| parse(key.as_str(), &item))
            .transpose()
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        self.delete_prefix(&IdempotencyKey::shop_prefix(shop)).await
    }
}

impl ProfileStore for DynamoDbIdempotencyStore {
    async fn put_profile(
        &self,
        shop: &str,
        order_id: u64,
        profile: &Profile,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let id = profile_key(shop, order_id);
        let json = crate::profile::encode(&id, profile)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ID, AttributeValue::S(id))
            .item(PROFILE, AttributeValue::S(json))
            .item(EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| self.unavailable("PutItem", e))?;
        Ok(())
    }

    async fn get_profile(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let id = profile_key(shop, order_id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        parse_profile(&id, &item, now)
    }

    async fn delete_profiles(&self, shop: &str, order_ids: &[u64]) -> Result<(), StoreError> {
        let ids: Vec<AttributeValue> = order_ids
            .iter()
            .map(|id| AttributeValue::S(profile_key(shop, *id)))
            .collect();
        self.delete_ids(&ids).await
    }

    async fn delete_shop_profiles(&self, shop: &str) -> Result<u64, StoreError> {
        self.delete_prefix(&shop_profile_prefix(shop)).await
    }
}

/// Reads a stored profile item; an expired one reads as `None` (TTL deletes lazily).
fn parse_profile(
    id: &str,
    item: &HashMap<String, AttributeValue>,
    now: DateTime<Utc>,
) -> Result<Option<Profile>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        key: id.to_owned(),
        why,
    };
    let expires_at = match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|_| corrupt("expires_at is not a whole number".into()))?,
        _ => return Err(corrupt("expires_at is missing or not a number".into())),
    };
    if expires_at <= now.timestamp() {
        return Ok(None);
    }
    match item.get(PROFILE) {
        Some(AttributeValue::S(json)) => crate::profile::decode(id, json).map(Some),
        _ => Err(corrupt("profile is missing or not a string".into())),
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
