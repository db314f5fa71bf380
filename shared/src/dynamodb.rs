//! [`Table`]: the DynamoDB table the AWS adapters share, and the calls more than one of them
//! needs (batch deletes, deleting by key prefix). The idempotency records
//! ([`crate::idempotency::dynamodb`]) and the shopper profiles ([`crate::profile::dynamodb`]) live
//! in one table, told apart by their key prefix; that is this adapter layer's detail, not the ports'.
//!
//! The table has a string partition key `id` and its TTL attribute is `expires_at`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use crate::retry::{self, Failure};

/// The partition key attribute.
pub(crate) const ID: &str = "id";
/// The TTL attribute, Unix seconds.
pub(crate) const EXPIRES_AT: &str = "expires_at";

/// The string attribute `name` of an item that is still live at `now` (its `expires_at` is later):
/// `Ok(None)` once expired (TTL deletes lazily, so readers compare themselves), `Err(why)` when
/// the item is malformed.
pub(crate) fn live_string<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<&'a str>, String> {
    let expires_at = match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|_| "expires_at is not a whole number".to_owned())?,
        _ => return Err("expires_at is missing or not a number".to_owned()),
    };
    if expires_at <= now.timestamp() {
        return Ok(None);
    }
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(Some(s)),
        _ => Err(format!("{name} is missing or not a string")),
    }
}

/// Items per `BatchWriteItem`, DynamoDB's limit.
const BATCH_WRITE_MAX: usize = 25;
/// Attempts at writing back a batch's unprocessed items before giving up (the caller retries).
const UNPROCESSED_ATTEMPTS: u32 = 8;
/// The wait before the first write of unprocessed items, doubling for each next one.
const UNPROCESSED_FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between two writes of unprocessed items.
const UNPROCESSED_MAX_WAIT: Duration = Duration::from_millis(3200);

/// One DynamoDB table reached through one client; clones share the client.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

/// A DynamoDB call failed; the message names the call, the table and the SDK's explanation.
#[derive(Debug)]
pub struct TableError {
    operation: &'static str,
    table: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for TableError {
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

impl std::error::Error for TableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// DynamoDB kept returning unprocessed items.
#[derive(Debug, thiserror::Error)]
#[error("{left} deletes were still unprocessed after {attempts} attempt(s) (throttled)")]
struct Throttled {
    left: usize,
    attempts: u32,
}

impl Table {
    /// `name` through `client`; build the client once per process.
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SDK client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A failed call of `operation` on this table.
    pub(crate) fn error<E>(&self, operation: &'static str, source: E) -> TableError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        TableError {
            operation,
            table: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// The item with this id, read consistently.
    pub(crate) async fn get(
        &self,
        id: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        Ok(output.item)
    }

    /// Deletes the item with this id (absent is fine).
    pub(crate) async fn delete(&self, id: &str) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key(ID, AttributeValue::S(id.to_owned()))
            .send()
            .await
            .map_err(|e| self.error("DeleteItem", e))?;
        Ok(())
    }

    async fn write_deletes(&self, requests: Vec<WriteRequest>) -> Result<(), TableError> {
        if requests.is_empty() {
            return Ok(());
        }
        // What is left to write: each attempt takes it and puts back the unprocessed items.
        let pending = &std::sync::Mutex::new(requests);
        retry::retry(
            "DynamoDB BatchWriteItem",
            UNPROCESSED_ATTEMPTS,
            |attempt| async move {
                let batch = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, batch)
                    .send()
                    .await
                    .map_err(|e| self.error("BatchWriteItem", e))?;
                let left = output
                    .unprocessed_items
                    .and_then(|mut items| items.remove(&self.name))
                    .unwrap_or_default();
                if left.is_empty() {
                    return Ok(());
                }
                let error = self.error(
                    "BatchWriteItem",
                    Throttled {
                        left: left.len(),
                        attempts: attempt,
                    },
                );
                *pending.lock().unwrap_or_else(|e| e.into_inner()) = left;
                // Unprocessed items mean throttling: back off before writing them again.
                Err(Failure::Retry {
                    wait: retry::exponential(UNPROCESSED_FIRST_WAIT, attempt, UNPROCESSED_MAX_WAIT),
                    error,
                })
            },
        )
        .await
    }

    /// Deletes the items with these ids, 25 per `BatchWriteItem`.
    pub(crate) async fn delete_ids(&self, ids: &[String]) -> Result<(), TableError> {
        for chunk in ids.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|id| {
                    DeleteRequest::builder()
                        .key(ID, AttributeValue::S(id.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| self.error("BatchWriteItem", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.write_deletes(requests).await?;
        }
        Ok(())
    }

    /// Deletes every item whose id starts with `prefix` (a consistent Scan, page by page); returns
    /// how many.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, TableError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut deleted = 0u64;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .filter_expression("begins_with(#id, :prefix)")
                .projection_expression("#id")
                .expression_attribute_names("#id", ID)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("Scan", e))?;
            let ids: Vec<String> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|mut item| match item.remove(ID) {
                    Some(AttributeValue::S(id)) => Some(id),
                    _ => None,
                })
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
