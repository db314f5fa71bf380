//! [`DynamoDbAudienceStore`]: the [`AudienceStore`] in the relay's DynamoDB table (partition key
//! `id`), beside the records (see [`crate::dynamodb`]). No email is stored.
//!
//! | item `id` | attributes |
//! |---|---|
//! | `audience#{shop}#{kind}` | `list_id`, `audience_id` (S); `watermark_ms`, `last_full_ms`, `last_resend_ms`, `last_sync_ms` (N); the lease: `holder` (S), `lease_until_ms` (N) |
//! | `audience#{shop}#{kind}#m#{bucket}` | `m` (M: customer id → hash) for the customers whose id modulo [`BUCKETS`] is `bucket`; `v` (N), the version each write checks |
//! | `audience#{shop}#removals` | `r` (M: `{kind}#{customer id}#{hash}` → `""`), the removals not yet accepted; `v` (N) |
//! | `audience#{shop}#rechecks#{bucket}` | `c` (M: customer id → the re-check's time in ms, as a string) for the customers whose id modulo [`RECHECK_BUCKETS`] is `bucket`; `v` (N) |
//!
//! Members are spread over [`BUCKETS`] items so none nears DynamoDB's 400 KB item limit: a member
//! takes about 85 bytes, so a list holds [`BUCKETS`] × [`MAX_MEMBERS_PER_BUCKET`] members (about
//! a million). Each map item is bounded ([`MAX_MEMBERS_PER_BUCKET`], [`MAX_PENDING_REMOVALS`],
//! [`MAX_RECHECKS_PER_BUCKET`]): past its bound a write is refused with what it means, never
//! left to DynamoDB's size error. A bucket is rewritten whole under its version (read, change, conditional put,
//! again on a conflict), so a removal from a webhook and a sync's write never undo each other.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::customer::{CustomerId, ListKind};
use super::ledger::{AudienceStore, Lease, LedgerError, ListState, Marks, PendingRemoval, Recheck};
use super::plan::{Batch, Operation};
use crate::dynamodb::{ID, Table, TableError};

/// Items a list's members are spread over.
pub const BUCKETS: u64 = 256;

/// Items the re-checks of a store are spread over.
pub const RECHECK_BUCKETS: u64 = 64;

/// The most re-checks one item holds (an entry takes about 40 bytes: about 160 KB, well under
/// DynamoDB's 400 KB), so a store holds [`RECHECK_BUCKETS`] × this many (256,000) before a
/// re-check is refused (the webhook is then retried until a pass clears the queue).
pub const MAX_RECHECKS_PER_BUCKET: usize = 4_000;

/// The most pending removals a store's removals item holds (an entry, `{kind}#{customer
/// id}#{hash}`, takes about 95 bytes: about 285 KB, under DynamoDB's 400 KB). Past it a deletion
/// or redaction is refused (its webhook is retried) until a sync or the light pass sends them.
pub const MAX_PENDING_REMOVALS: usize = 3_000;

/// The most members one bucket item holds (an entry takes about 85 bytes: about 340 KB, under
/// DynamoDB's 400 KB), so a list holds [`BUCKETS`] × this many (about a million) before an `ADD`
/// is refused with what it means rather than DynamoDB's size error.
pub const MAX_MEMBERS_PER_BUCKET: usize = 4_000;

/// Attempts at a versioned rewrite before the conflict is reported.
const REWRITE_ATTEMPTS: u32 = 8;

/// The audience ledger in the relay's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbAudienceStore {
    table: Table,
}

impl DynamoDbAudienceStore {
    /// The ledger in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

impl From<TableError> for LedgerError {
    fn from(e: TableError) -> Self {
        LedgerError::Storage(Box::new(e))
    }
}

/// A rewrite kept meeting a concurrent writer.
#[derive(Debug, thiserror::Error)]
#[error("item {0} kept changing under the audience ledger's write; try again")]
struct Conflict(String);

fn list_key(shop: &str, kind: ListKind) -> String {
    format!("audience#{shop}#{}", kind.label())
}

fn bucket_key(shop: &str, kind: ListKind, bucket: u64) -> String {
    format!("{}#m#{bucket}", list_key(shop, kind))
}

fn removals_key(shop: &str) -> String {
    format!("audience#{shop}#removals")
}

fn recheck_key(shop: &str, bucket: u64) -> String {
    format!("audience#{shop}#rechecks#{bucket}")
}

/// [`LedgerError::Full`] of `item`.
fn item_full(item: String, most: usize, what: &'static str, fix: &'static str) -> LedgerError {
    LedgerError::Full {
        item,
        most,
        what,
        fix,
    }
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_time(
    shop: &str,
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, LedgerError> {
    let Some(value) = item.get(name).and_then(|v| v.as_n().ok()) else {
        return Ok(None);
    };
    value
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(Some)
        .ok_or_else(|| LedgerError::Corrupt {
            shop: shop.to_owned(),
            detail: format!("{name} {value}"),
        })
}

/// The string map `name` of an item, and its version (0 when the item is absent).
fn map_of(
    item: Option<&HashMap<String, AttributeValue>>,
    name: &str,
) -> (BTreeMap<String, String>, u64) {
    let Some(item) = item else {
        return (BTreeMap::new(), 0);
    };
    let map = item
        .get(name)
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                .collect()
        })
        .unwrap_or_default();
    let version = item
        .get("v")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (map, version)
}

impl DynamoDbAudienceStore {
    /// Reads item `id`'s map `name`, lets `change` edit it, and writes it back under its version
    /// (deleting the item when the map is empty); again on a conflict. `change` returns whether it
    /// changed anything, and what to hand back.
    async fn rewrite<R>(
        &self,
        id: &str,
        name: &str,
        mut change: impl FnMut(&mut BTreeMap<String, String>) -> (bool, R),
    ) -> Result<R, LedgerError> {
        for _ in 0..REWRITE_ATTEMPTS {
            let item = self.table.get(id).await?;
            let (mut map, version) = map_of(item.as_ref(), name);
            let (changed, out) = change(&mut map);
            if !changed {
                return Ok(out);
            }
            let client = self.table.client();
            let condition = "attribute_not_exists(#id) OR #v = :v";
            let written = if map.is_empty() {
                client
                    .delete_item()
                    .table_name(self.table.name())
                    .key(ID, s(id))
                    .condition_expression(condition)
                    .expression_attribute_names("#id", ID)
                    .expression_attribute_names("#v", "v")
                    .expression_attribute_values(":v", n(version))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        SdkError::ServiceError(ref se)
                            if se.err().is_conditional_check_failed_exception() =>
                        {
                            None
                        }
                        e => Some(self.table.error("DeleteItem", e)),
                    })
            } else {
                let values: HashMap<String, AttributeValue> =
                    map.into_iter().map(|(k, v)| (k, s(v))).collect();
                client
                    .put_item()
                    .table_name(self.table.name())
                    .item(ID, s(id))
                    .item(name, AttributeValue::M(values))
                    .item("v", n(version + 1))
                    .condition_expression(condition)
                    .expression_attribute_names("#id", ID)
                    .expression_attribute_names("#v", "v")
                    .expression_attribute_values(":v", n(version))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        SdkError::ServiceError(ref se)
                            if matches!(
                                se.err(),
                                PutItemError::ConditionalCheckFailedException(_)
                            ) =>
                        {
                            None
                        }
                        e => Some(self.table.error("PutItem", e)),
                    })
            };
            match written {
                Ok(()) => return Ok(out),
                Err(Some(e)) => return Err(e.into()),
                Err(None) => continue,
            }
        }
        Err(LedgerError::Storage(Box::new(Conflict(id.to_owned()))))
    }

    async fn update(
        &self,
        id: String,
        set: Vec<(&'static str, AttributeValue)>,
    ) -> Result<(), LedgerError> {
        if set.is_empty() {
            return Ok(());
        }
        let mut request = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(id));
        let mut parts = Vec::new();
        for (i, (name, value)) in set.into_iter().enumerate() {
            parts.push(format!("#a{i} = :a{i}"));
            request = request
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        request
            .update_expression(format!("SET {}", parts.join(", ")))
            .send()
            .await
            .map_err(|e| self.table.error("UpdateItem", e))?;
        Ok(())
    }
}

impl AudienceStore for DynamoDbAudienceStore {
    async fn acquire(
        &self,
        shop: &str,
        kind: ListKind,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Lease, LedgerError> {
        let until = now
            .timestamp_millis()
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let id = list_key(shop, kind);
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(id.clone()))
            .update_expression("SET #holder = :holder, #until = :until")
            .condition_expression(
                "attribute_not_exists(#holder) OR #holder = :holder OR #until <= :now",
            )
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Lease::Acquired),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let item = self.table.get(&id).await?.unwrap_or_default();
                Ok(Lease::Held {
                    holder: get_s(&item, "holder").unwrap_or_default(),
                    until: get_time(shop, &item, "lease_until_ms")?.unwrap_or_default(),
                })
            }
            Err(e) => Err(self.table.error("UpdateItem", e).into()),
        }
    }

    async fn release(&self, shop: &str, kind: ListKind, holder: &str) -> Result<(), LedgerError> {
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(list_key(shop, kind)))
            .update_expression("REMOVE #holder, #until")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(self.table.error("UpdateItem", e).into()),
        }
    }

    async fn state(&self, shop: &str, kind: ListKind) -> Result<ListState, LedgerError> {
        let Some(item) = self.table.get(&list_key(shop, kind)).await? else {
            return Ok(ListState::default());
        };
        Ok(ListState {
            list_id: get_s(&item, "list_id"),
            audience_id: get_s(&item, "audience_id"),
            watermark: get_time(shop, &item, "watermark_ms")?,
            last_full: get_time(shop, &item, "last_full_ms")?,
            last_resend: get_time(shop, &item, "last_resend_ms")?,
            last_sync: get_time(shop, &item, "last_sync_ms")?,
        })
    }

    async fn set_ids(
        &self,
        shop: &str,
        kind: ListKind,
        list_id: &str,
        audience_id: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut set = vec![("list_id", s(list_id))];
        if let Some(audience_id) = audience_id {
            set.push(("audience_id", s(audience_id)));
        }
        self.update(list_key(shop, kind), set).await
    }

    async fn set_marks(&self, shop: &str, kind: ListKind, marks: Marks) -> Result<(), LedgerError> {
        let set = [
            ("watermark_ms", marks.watermark),
            ("last_full_ms", marks.last_full),
            ("last_resend_ms", marks.last_resend),
            ("last_sync_ms", marks.last_sync),
        ]
        .into_iter()
        .filter_map(|(name, t)| Some((name, n(t?.timestamp_millis()))))
        .collect();
        self.update(list_key(shop, kind), set).await
    }

    async fn members(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> Result<BTreeMap<CustomerId, String>, LedgerError> {
        let ids: Vec<String> = (0..BUCKETS).map(|b| bucket_key(shop, kind, b)).collect();
        let mut members = BTreeMap::new();
        for item in self.table.get_many(&ids).await? {
            for (id, hash) in map_of(Some(&item), "m").0 {
                let id = id.parse().map_err(|_| LedgerError::Corrupt {
                    shop: shop.to_owned(),
                    detail: format!("customer id {id}"),
                })?;
                members.insert(id, hash);
            }
        }
        Ok(members)
    }

    async fn record(&self, shop: &str, kind: ListKind, batch: &Batch) -> Result<(), LedgerError> {
        let mut by_bucket: BTreeMap<u64, Vec<&(CustomerId, String)>> = BTreeMap::new();
        for entry in &batch.entries {
            by_bucket.entry(entry.0 % BUCKETS).or_default().push(entry);
        }
        for (bucket, entries) in by_bucket {
            let id = bucket_key(shop, kind, bucket);
            let full = self
                .rewrite(&id, "m", |map| {
                    let mut changed = false;
                    for (id, hash) in &entries {
                        let key = id.to_string();
                        match batch.operation {
                            Operation::Add => {
                                changed |= map.insert(key, hash.clone()).as_ref() != Some(hash);
                            }
                            Operation::Remove if map.get(&key) == Some(hash) => {
                                map.remove(&key);
                                changed = true;
                            }
                            Operation::Remove => {}
                        }
                    }
                    // Only an `ADD` can fill a bucket; a removal is always recorded.
                    if batch.operation == Operation::Add && map.len() > MAX_MEMBERS_PER_BUCKET {
                        return (false, true);
                    }
                    (changed, false)
                })
                .await?;
            if full {
                return Err(item_full(
                    id,
                    MAX_MEMBERS_PER_BUCKET,
                    "members",
                    "the list is larger than this relay's DynamoDB record keeps (about a million members)",
                ));
            }
        }
        if batch.operation == Operation::Remove {
            self.rewrite(&removals_key(shop), "r", |map| {
                let before = map.len();
                for (id, hash) in &batch.entries {
                    map.remove(&format!("{}#{id}#{hash}", kind.label()));
                }
                (map.len() != before, ())
            })
            .await?;
        }
        Ok(())
    }

    async fn pending_removals(
        &self,
        shop: &str,
        kind: ListKind,
    ) -> Result<Vec<PendingRemoval>, LedgerError> {
        let item = self.table.get(&removals_key(shop)).await?;
        let list_id = self.state(shop, kind).await?.list_id;
        let prefix = format!("{}#", kind.label());
        let mut removals = Vec::new();
        for key in map_of(item.as_ref(), "r").0.into_keys() {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let parsed = rest
                .split_once('#')
                .and_then(|(id, hash)| Some((id.parse().ok()?, hash.to_owned())));
            let Some((customer_id, hash)) = parsed else {
                return Err(LedgerError::Corrupt {
                    shop: shop.to_owned(),
                    detail: format!("pending removal {key}"),
                });
            };
            removals.push(PendingRemoval {
                kind,
                list_id: list_id.clone(),
                customer_id,
                hash,
            });
        }
        Ok(removals)
    }

    async fn remove_customer(
        &self,
        shop: &str,
        customer_id: CustomerId,
    ) -> Result<Vec<PendingRemoval>, LedgerError> {
        let key = customer_id.to_string();
        let mut removals = Vec::new();
        for kind in ListKind::ALL {
            let bucket = bucket_key(shop, kind, customer_id % BUCKETS);
            let item = self.table.get(&bucket).await?;
            let Some(hash) = map_of(item.as_ref(), "m").0.remove(&key) else {
                continue;
            };
            // Pending first, then out of the members: a stop in between leaves both, never neither.
            let pending = format!("{}#{customer_id}#{hash}", kind.label());
            let full = self
                .rewrite(&removals_key(shop), "r", |map| {
                    if map.contains_key(&pending) {
                        return (false, false);
                    }
                    if map.len() >= MAX_PENDING_REMOVALS {
                        return (false, true);
                    }
                    map.insert(pending.clone(), String::new());
                    (true, false)
                })
                .await?;
            if full {
                return Err(item_full(
                    removals_key(shop),
                    MAX_PENDING_REMOVALS,
                    "pending removals",
                    "the webhook is retried; run the audience sync (or let the audience job's next run) send them",
                ));
            }
            self.rewrite(&bucket, "m", |map| (map.remove(&key).is_some(), ()))
                .await?;
        }
        let recheck = recheck_key(shop, customer_id % RECHECK_BUCKETS);
        self.rewrite(&recheck, "c", |map| (map.remove(&key).is_some(), ()))
            .await?;
        for kind in ListKind::ALL {
            removals.extend(
                self.pending_removals(shop, kind)
                    .await?
                    .into_iter()
                    .filter(|r| r.customer_id == customer_id),
            );
        }
        Ok(removals)
    }

    async fn queue_recheck(
        &self,
        shop: &str,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let id = recheck_key(shop, customer_id % RECHECK_BUCKETS);
        let key = customer_id.to_string();
        let at_ms = at.timestamp_millis();
        let full = self
            .rewrite(&id, "c", |map| {
                let stored = map.get(&key).and_then(|v| v.parse::<i64>().ok());
                if stored.is_some_and(|t| t >= at_ms) {
                    return (false, false);
                }
                if stored.is_none() && map.len() >= MAX_RECHECKS_PER_BUCKET {
                    return (false, true);
                }
                map.insert(key.clone(), at_ms.to_string());
                (true, false)
            })
            .await?;
        if full {
            return Err(item_full(
                id,
                MAX_RECHECKS_PER_BUCKET,
                "consent re-checks",
                "run the audience sync (or let the audience job's next run) clear them",
            ));
        }
        Ok(())
    }

    async fn rechecks(&self, shop: &str) -> Result<Vec<Recheck>, LedgerError> {
        let ids: Vec<String> = (0..RECHECK_BUCKETS).map(|b| recheck_key(shop, b)).collect();
        let mut rechecks = Vec::new();
        for item in self.table.get_many(&ids).await? {
            for (id, at) in map_of(Some(&item), "c").0 {
                let parsed = id.parse().ok().zip(
                    at.parse::<i64>()
                        .ok()
                        .and_then(DateTime::from_timestamp_millis),
                );
                let Some((customer_id, at)) = parsed else {
                    return Err(LedgerError::Corrupt {
                        shop: shop.to_owned(),
                        detail: format!("re-check {id}"),
                    });
                };
                rechecks.push(Recheck { customer_id, at });
            }
        }
        rechecks.sort();
        Ok(rechecks)
    }

    async fn clear_rechecks(&self, shop: &str, done: &[Recheck]) -> Result<(), LedgerError> {
        let mut by_bucket: BTreeMap<u64, Vec<&Recheck>> = BTreeMap::new();
        for r in done {
            by_bucket
                .entry(r.customer_id % RECHECK_BUCKETS)
                .or_default()
                .push(r);
        }
        for (bucket, done) in by_bucket {
            self.rewrite(&recheck_key(shop, bucket), "c", |map| {
                let before = map.len();
                for r in &done {
                    let key = r.customer_id.to_string();
                    let newer = map
                        .get(&key)
                        .and_then(|v| v.parse::<i64>().ok())
                        .is_some_and(|t| t > r.at.timestamp_millis());
                    if !newer {
                        map.remove(&key);
                    }
                }
                (map.len() != before, ())
            })
            .await?;
        }
        Ok(())
    }

    async fn forget_shop(&self, shop: &str) -> Result<Vec<(ListKind, ListState)>, LedgerError> {
        let mut states = Vec::new();
        let mut ids = vec![removals_key(shop)];
        ids.extend((0..RECHECK_BUCKETS).map(|b| recheck_key(shop, b)));
        for kind in ListKind::ALL {
            let state = self.state(shop, kind).await?;
            if state != ListState::default() {
                states.push((kind, state));
            }
            ids.push(list_key(shop, kind));
            ids.extend((0..BUCKETS).map(|b| bucket_key(shop, kind, b)));
        }
        self.table.delete_ids(&ids).await?;
        Ok(states)
    }
}
