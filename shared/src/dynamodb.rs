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
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, WriteRequest};

use crate::retry::{self, Failure};

/// The partition key attribute.
pub(crate) const ID: &str = "id";
/// The TTL attribute, Unix seconds.
pub(crate) const EXPIRES_AT: &str = "expires_at";

/// Items per `BatchWriteItem`, DynamoDB's limit.
const BATCH_WRITE_MAX: usize = 25;
/// Keys per `BatchGetItem`, DynamoDB's limit.
const BATCH_GET_MAX: usize = 100;
/// Scan pages one [`Table::delete_prefixes`] call reads at most (1 MB each): a large table's purge
/// is bounded, and resumes on the next call (what was deleted is not read again).
const SCAN_PAGES_PER_CALL: usize = 8;
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
#[error("{left} {what} were still unprocessed after {attempts} attempt(s) (throttled)")]
struct Throttled {
    left: usize,
    what: &'static str,
    attempts: u32,
}

/// A purge stopped after its page budget; the next call goes on.
#[derive(Debug, thiserror::Error)]
#[error("deleted {deleted} items, more are left; the next attempt goes on")]
struct Unfinished {
    deleted: u64,
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
                        what: "deletes",
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

    /// The items with these ids that exist, read consistently, 100 per `BatchGetItem`, keys left
    /// unprocessed (throttling) read again with a backoff.
    pub(crate) async fn get_many(
        &self,
        ids: &[String],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, TableError> {
        let items = &std::sync::Mutex::new(Vec::with_capacity(ids.len()));
        for chunk in ids.chunks(BATCH_GET_MAX) {
            let keys = chunk
                .iter()
                .map(|id| HashMap::from([(ID.to_owned(), AttributeValue::S(id.clone()))]))
                .collect::<Vec<_>>();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| self.error("BatchGetItem", e))?;
            // What is left to read: each attempt takes it and puts back the unprocessed keys.
            let pending = &std::sync::Mutex::new(Some(request));
            retry::retry(
                "DynamoDB BatchGetItem",
                UNPROCESSED_ATTEMPTS,
                |attempt| async move {
                    let Some(request) = pending.lock().unwrap_or_else(|e| e.into_inner()).take()
                    else {
                        return Ok(());
                    };
                    let output = self
                        .client
                        .batch_get_item()
                        .request_items(&self.name, request)
                        .send()
                        .await
                        .map_err(|e| self.error("BatchGetItem", e))?;
                    if let Some(mut responses) = output.responses {
                        items
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(responses.remove(&self.name).unwrap_or_default());
                    }
                    match output
                        .unprocessed_keys
                        .and_then(|mut left| left.remove(&self.name))
                    {
                        Some(left) if !left.keys.is_empty() => {
                            let error = self.error(
                                "BatchGetItem",
                                Throttled {
                                    left: left.keys.len(),
                                    what: "reads",
                                    attempts: attempt,
                                },
                            );
                            *pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(left);
                            Err(Failure::Retry {
                                wait: retry::exponential(
                                    UNPROCESSED_FIRST_WAIT,
                                    attempt,
                                    UNPROCESSED_MAX_WAIT,
                                ),
                                error,
                            })
                        }
                        _ => Ok(()),
                    }
                },
            )
            .await?;
        }
        Ok(std::mem::take(
            &mut *items.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    /// Deletes every item whose id starts with one of `prefixes` (a consistent Scan, page by page);
    /// returns how many. At most [`SCAN_PAGES_PER_CALL`] pages a call: a table larger than that
    /// returns an error after deleting what it read, and the next call (the retried compliance
    /// message) goes on where it left off, since deleted items are not read again.
    pub(crate) async fn delete_prefixes(&self, prefixes: &[String]) -> Result<u64, TableError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let mut deleted = 0u64;
        let filter = (0..prefixes.len())
            .map(|i| format!("begins_with(#id, :p{i})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        for _ in 0..SCAN_PAGES_PER_CALL {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.name)
                .filter_expression(&filter)
                .projection_expression("#id")
                .expression_attribute_names("#id", ID)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            for (i, p) in prefixes.iter().enumerate() {
                scan = scan
                    .expression_attribute_values(format!(":p{i}"), AttributeValue::S(p.clone()));
            }
            let page = scan.send().await.map_err(|e| self.error("Scan", e))?;
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
        Err(self.error("Scan", Unfinished { deleted }))
    }
}
