//! [`DynamoDbIdempotencyStore`]: the [`IdempotencyStore`] adapter for the relay's DynamoDB table.
//!
//! The table has a string partition key `id` and its TTL attribute is `expires_at`. One item per
//! record (about 300 bytes: one write unit per transition):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `{shop}#{event_name}#{subject}` |
//! | `state` | S | `in_progress`, `sent`, `skipped`, `dead_lettered`, `in_doubt` or `pending` |
//! | `event_id` | S | the `event_id` the first claim chose |
//! | `holder`, `lock_until_ms` | S, N | the holder of an `in_progress` record and when its lock expires |
//! | `generation` | N | how often it went `in_doubt` |
//! | `test` | BOOL | a `sent` record sent in test mode or as a dry run |
//! | `settled`, `retrying` | S | JSON: the last settled state's facts; a `pending` record's failure |
//! | `topic` | S | the webhook topic that last changed it |
//! | `expires_at`, `updated_at_ms` | N | Unix seconds (the TTL attribute); Unix milliseconds |
//!
//! Records written before one-record-per-event (`status` `COMPLETED` or `INPROGRESS`, lock in
//! `in_progress_expiration`) are read as `sent` (details unknown) or `in_progress`, so an upgraded
//! stack resends nothing. Dead letters without a subject are counted in
//! `deadletters#{shop}#{day}` items, one `n_{reason}` number per reason.
//!
//! Every transition is one conditional `UpdateItem` whose condition is
//! [`IdempotencyRecord::refusal`] written as a condition expression. DynamoDB deletes expired items
//! lazily (up to days late), so every condition compares the times itself.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Days, NaiveDate, Utc};

use super::{
    Claim, ClaimRequest, DeadLetterCounts, Holder, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, Mode, Pause, PauseReason, RECORD_TTL_SECONDS, SentFacts, Settled, Settlement,
    State, StoreError, Unheld,
};
use crate::dynamodb::{EXPIRES_AT, ID, Table, TableError};

const STATE: &str = "state";
const EVENT_ID: &str = "event_id";
const HOLDER: &str = "holder";
const LOCK: &str = "lock_until_ms";
const GENERATION: &str = "generation";
const TEST: &str = "test";
const SETTLED: &str = "settled";
const RETRYING: &str = "retrying";
const TOPIC: &str = "topic";
const UPDATED: &str = "updated_at_ms";
/// Before one-record-per-event: `COMPLETED` or `INPROGRESS`.
const LEGACY_STATUS: &str = "status";
/// Before one-record-per-event: the lock's expiry, Unix milliseconds.
const LEGACY_LOCK: &str = "in_progress_expiration";
/// Attributes of a dead-letter count item start with this, then the reason label.
const COUNT_PREFIX: &str = "n_";

impl From<TableError> for StoreError {
    fn from(e: TableError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// Records in a DynamoDB table (partition key `id`, TTL attribute `expires_at`).
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotencyStore {
    table: Table,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn is_condition_failure(
    e: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    matches!(e, SdkError::ServiceError(s) if matches!(s.err(), UpdateItemError::ConditionalCheckFailedException(_)))
}

/// The old item a failed condition returned, when it did.
fn old_item(
    e: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<HashMap<String, AttributeValue>> {
    match e {
        SdkError::ServiceError(s) => match s.err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => failed.item.clone(),
            _ => None,
        },
        _ => None,
    }
}

/// The dead-letter count item of a shop's day.
fn count_id(shop: &str, day: NaiveDate) -> String {
    format!("deadletters#{shop}#{day}")
}

impl DynamoDbIdempotencyStore {
    /// Records in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn update(&self, key: &str) -> UpdateItemFluentBuilder {
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(key))
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_names("#updated", UPDATED)
    }

    /// Marks an acquired record sent before one-record-per-event (found under its legacy key).
    async fn settle_legacy(
        &self,
        request: &ClaimRequest,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let facts = Settled::Sent(SentFacts {
            legacy: true,
            ..SentFacts::default()
        });
        self.settle(
            &request.key,
            &request.holder,
            &Settlement::Settled(facts),
            now,
        )
        .await
    }
}

/// Reads a stored item back into a record.
pub(crate) fn parse(
    item: &HashMap<String, AttributeValue>,
) -> Result<IdempotencyRecord, StoreError> {
    let id = match item.get(ID) {
        Some(AttributeValue::S(s)) => s.as_str(),
        _ => "(no id)",
    };
    let corrupt = |why: String| StoreError::Corrupt {
        key: id.to_owned(),
        why,
    };
    let string = |name: &str| -> Result<Option<String>, StoreError> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(corrupt(format!("{name} is not a string"))),
        }
    };
    let number = |name: &str| -> Result<Option<i64>, StoreError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map(Some)
                .map_err(|_| corrupt(format!("{name} is not a whole number"))),
            Some(_) => Err(corrupt(format!("{name} is not a number"))),
        }
    };
    let key = IdempotencyKey::parse(id).map_err(|_| corrupt("malformed id".to_owned()))?;
    let json = |name: &str| -> Result<Option<String>, StoreError> { string(name) };
    let (state, settled, lock) = match (string(STATE)?, string(LEGACY_STATUS)?) {
        (Some(state), _) => {
            let state =
                State::parse(&state).ok_or_else(|| corrupt(format!("unknown state {state:?}")))?;
            let settled = json(SETTLED)?
                .map(|j| serde_json::from_str::<Settled>(&j))
                .transpose()
                .map_err(|e| corrupt(format!("settled facts: {e}")))?;
            (state, settled, number(LOCK)?)
        }
        (None, Some(status)) if status == "COMPLETED" => (
            State::Sent,
            Some(Settled::Sent(SentFacts {
                legacy: true,
                ..SentFacts::default()
            })),
            None,
        ),
        (None, Some(status)) if status == "INPROGRESS" => {
            (State::InProgress, None, number(LEGACY_LOCK)?)
        }
        _ => return Err(corrupt("state is missing or unknown".to_owned())),
    };
    let retrying = json(RETRYING)?
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(|e| corrupt(format!("retry facts: {e}")))?;
    Ok(IdempotencyRecord {
        key,
        state,
        event_id: string(EVENT_ID)?,
        holder: string(HOLDER)?.map(Holder::from_stored),
        lock_until_ms: lock,
        generation: number(GENERATION)?
            .and_then(|g| u32::try_from(g).ok())
            .unwrap_or_default(),
        settled,
        retrying,
        topic: string(TOPIC)?,
        expiration: number(EXPIRES_AT)?
            .ok_or_else(|| corrupt("expires_at is missing".to_owned()))?,
        updated_at: number(UPDATED)?
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or_default(),
    })
}

fn to_json<T: serde::Serialize>(key: &IdempotencyKey, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        why: format!("cannot serialize: {e}"),
    })
}

impl IdempotencyStore for DynamoDbIdempotencyStore {
    async fn claim(&self, request: &ClaimRequest, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        // `IdempotencyRecord::refusal` as a condition: the claim takes the record when it is absent
        // or expired, re-decidable, a test send claimed live, a resend of its in-doubt generation,
        // or an abandoned lock (this format's or the one before).
        let mut condition = String::from(
            "attribute_not_exists(#id) OR #expires_at <= :now \
             OR #state IN (:skipped, :dead_lettered, :pending) \
             OR (#state = :in_progress AND #lock <= :now_ms) \
             OR (#legacy_status = :legacy_in_progress AND #legacy_lock <= :now_ms)",
        );
        if request.mode == Mode::Live {
            condition.push_str(" OR (#state = :sent AND #test = :true)");
        }
        let mut update = self
            .update(request.key.as_str())
            .expression_attribute_names("#id", ID)
            .update_expression(
                "SET #state = :in_progress, #holder = :holder, #lock = :lock, \
                 #expires_at = :expires, #updated = :now_ms, #topic = :topic, \
                 #event_id = if_not_exists(#event_id, :event_id), \
                 #generation = if_not_exists(#generation, :zero) \
                 REMOVE #retrying, #legacy_status, #legacy_lock",
            )
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#lock", LOCK)
            .expression_attribute_names("#topic", TOPIC)
            .expression_attribute_names("#event_id", EVENT_ID)
            .expression_attribute_names("#generation", GENERATION)
            .expression_attribute_names("#retrying", RETRYING)
            .expression_attribute_names("#legacy_status", LEGACY_STATUS)
            .expression_attribute_names("#legacy_lock", LEGACY_LOCK)
            .expression_attribute_values(":in_progress", s(State::InProgress.as_str()))
            .expression_attribute_values(":skipped", s(State::Skipped.as_str()))
            .expression_attribute_values(":dead_lettered", s(State::DeadLettered.as_str()))
            .expression_attribute_values(":pending", s(State::Pending.as_str()))
            .expression_attribute_values(":legacy_in_progress", s("INPROGRESS"))
            .expression_attribute_values(":holder", s(request.holder.as_str()))
            .expression_attribute_values(":lock", n(request.lock_until.timestamp_millis()))
            .expression_attribute_values(":expires", n(now.timestamp() + RECORD_TTL_SECONDS))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":topic", s(&request.topic))
            .expression_attribute_values(":event_id", s(&request.event_id))
            .expression_attribute_values(":zero", n(0));
        if request.mode == Mode::Live {
            update = update
                .expression_attribute_names("#test", TEST)
                .expression_attribute_values(":sent", s(State::Sent.as_str()))
                .expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        if let Some(generation) = request.resend {
            condition.push_str(" OR (#state = :in_doubt AND #generation = :resend)");
            update = update
                .expression_attribute_values(":in_doubt", s(State::InDoubt.as_str()))
                .expression_attribute_values(":resend", n(generation));
            if generation == 0 {
                // A letter of the format before: its record was written COMPLETED.
                condition.push_str(" OR #legacy_status = :legacy_completed");
                update = update.expression_attribute_values(":legacy_completed", s("COMPLETED"));
            }
        }
        let result = update
            .condition_expression(condition)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(output) => output.attributes.filter(|a| !a.is_empty()),
            Err(e) if is_condition_failure(&e) => {
                let record = match old_item(&e) {
                    Some(item) => parse(&item)?,
                    None => match self.get(&request.key).await? {
                        Some(record) => record,
                        // Deleted in between: let the caller retry.
                        None => {
                            return Ok(Claim::InProgress {
                                until_ms: now.timestamp_millis(),
                            });
                        }
                    },
                };
                return Ok(record.refusal(request, now).unwrap_or(Claim::InProgress {
                    until_ms: now.timestamp_millis(),
                }));
            }
            Err(e) => return Err(self.table.error("UpdateItem", e).into()),
        };
        let old = old.map(|item| parse(&item)).transpose()?;
        let abandoned = old.as_ref().is_some_and(|r| r.is_abandoned(now));
        let live_old = old.filter(|r| !r.is_expired(now));
        if live_old.is_none()
            && let Some(legacy) = &request.legacy
            && let Some(record) = self.get(legacy).await?
            && !record.is_expired(now)
            && record.state == State::Sent
        {
            self.settle_legacy(request, now).await?;
            return Ok(Claim::AlreadySent { event_id: None });
        }
        let generation = live_old.as_ref().map_or(0, |r| r.generation);
        let event_id = live_old
            .and_then(|r| r.event_id)
            .unwrap_or_else(|| request.event_id.clone());
        Ok(Claim::taken(abandoned, event_id, generation))
    }

    async fn settle(
        &self,
        key: &IdempotencyKey,
        holder: &Holder,
        settlement: &Settlement,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let update = self
            .update(key.as_str())
            .condition_expression("#state = :in_progress AND #holder = :holder")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#lock", LOCK)
            .expression_attribute_values(":in_progress", s(State::InProgress.as_str()))
            .expression_attribute_values(":holder", s(holder.as_str()))
            .expression_attribute_values(":expires", n(now.timestamp() + RECORD_TTL_SECONDS))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()));
        let update = match settlement {
            Settlement::Settled(settled) => {
                let test = matches!(settled, Settled::Sent(f) if f.mode == Mode::Test);
                let generation = if matches!(settled, Settled::InDoubt { .. }) {
                    ", #generation = #generation + :one"
                } else {
                    ""
                };
                let update = update
                    .update_expression(format!(
                        "SET #state = :state, #settled = :settled, #test = :test, \
                         #expires_at = :expires, #updated = :now_ms{generation} \
                         REMOVE #holder, #lock, #retrying"
                    ))
                    .expression_attribute_names("#settled", SETTLED)
                    .expression_attribute_names("#test", TEST)
                    .expression_attribute_names("#retrying", RETRYING)
                    .expression_attribute_values(":state", s(settled.state().as_str()))
                    .expression_attribute_values(":settled", s(to_json(key, settled)?))
                    .expression_attribute_values(":test", AttributeValue::Bool(test));
                if generation.is_empty() {
                    update
                } else {
                    update
                        .expression_attribute_names("#generation", GENERATION)
                        .expression_attribute_values(":one", n(1))
                }
            }
            Settlement::Pending(retrying) => update
                .update_expression(
                    "SET #state = :state, #retrying = :retrying, #expires_at = :expires, \
                     #updated = :now_ms REMOVE #holder, #lock",
                )
                .expression_attribute_names("#retrying", RETRYING)
                .expression_attribute_values(":state", s(State::Pending.as_str()))
                .expression_attribute_values(":retrying", s(to_json(key, retrying)?)),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::LockLost {
                key: key.to_string(),
            }),
            Err(e) => Err(self.table.error("UpdateItem", e).into()),
        }
    }

    async fn record(
        &self,
        key: &IdempotencyKey,
        decision: &Unheld,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let settled = match decision {
            Unheld::Skipped(f) => Settled::Skipped(f.clone()),
            Unheld::DeadLettered(f) => Settled::DeadLettered(f.clone()),
        };
        let result = self
            .update(key.as_str())
            .expression_attribute_names("#id", ID)
            .condition_expression(
                "attribute_not_exists(#id) OR #expires_at <= :now \
                 OR #state IN (:skipped, :dead_lettered, :pending)",
            )
            .update_expression(
                "SET #state = :state, #settled = :settled, #test = :false, #topic = :topic, \
                 #expires_at = :expires, #updated = :now_ms REMOVE #retrying",
            )
            .expression_attribute_names("#settled", SETTLED)
            .expression_attribute_names("#test", TEST)
            .expression_attribute_names("#topic", TOPIC)
            .expression_attribute_names("#retrying", RETRYING)
            .expression_attribute_values(":state", s(settled.state().as_str()))
            .expression_attribute_values(":settled", s(to_json(key, &settled)?))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":topic", s(topic))
            .expression_attribute_values(":skipped", s(State::Skipped.as_str()))
            .expression_attribute_values(":dead_lettered", s(State::DeadLettered.as_str()))
            .expression_attribute_values(":pending", s(State::Pending.as_str()))
            .expression_attribute_values(":expires", n(now.timestamp() + RECORD_TTL_SECONDS))
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.table.error("UpdateItem", e).into()),
        }
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.table
            .get(key.as_str())
            .await?
            .map(|item| parse(&item))
            .transpose()
    }

    async fn get_many(
        &self,
        keys: &[IdempotencyKey],
        now: DateTime<Utc>,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let ids: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        let mut records = Vec::new();
        for item in self.table.get_many(&ids).await? {
            let record = parse(&item)?;
            if !record.is_expired(now) {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn forget(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        Ok(self.table.delete(key.as_str()).await?)
    }

    async fn count_dead_letter(
        &self,
        shop: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(count_id(shop, now.date_naive())))
            .update_expression("ADD #n :one SET #expires_at = :expires")
            .expression_attribute_names("#n", format!("{COUNT_PREFIX}{reason}"))
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(now.timestamp() + RECORD_TTL_SECONDS))
            .send()
            .await
            .map_err(|e| self.table.error("UpdateItem", e))?;
        Ok(())
    }

    async fn dead_letter_counts(
        &self,
        shop: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<DeadLetterCounts, StoreError> {
        let mut ids = Vec::new();
        let mut day = from;
        while day <= to && ids.len() < 400 {
            ids.push(count_id(shop, day));
            day = match day.checked_add_days(Days::new(1)) {
                Some(next) => next,
                None => break,
            };
        }
        let mut counts = DeadLetterCounts::new();
        for item in self.table.get_many(&ids).await? {
            let day = match item.get(ID) {
                Some(AttributeValue::S(id)) => id.rsplit('#').next().and_then(|d| d.parse().ok()),
                _ => None,
            };
            let Some(day) = day else { continue };
            for (name, value) in &item {
                if let (Some(reason), AttributeValue::N(n)) =
                    (name.strip_prefix(COUNT_PREFIX), value)
                    && let Ok(n) = n.parse::<u64>()
                {
                    counts.insert((day, reason.to_owned()), n);
                }
            }
        }
        Ok(counts)
    }

    async fn mark_paused(
        &self,
        shop: &str,
        reason: PauseReason,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = now.timestamp_millis();
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, s(pause_id(shop)))
            .update_expression(
                "SET #reason = :reason, #last = :at, #since = if_not_exists(#since, :at), #expires_at = :expires",
            )
            .expression_attribute_names("#reason", PAUSE_REASON)
            .expression_attribute_names("#last", PAUSE_LAST)
            .expression_attribute_names("#since", PAUSE_SINCE)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":reason", s(reason.as_str().to_owned()))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":expires", n(now.timestamp() + RECORD_TTL_SECONDS))
            .send()
            .await
            .map_err(|e| self.table.error("UpdateItem", e))?;
        Ok(())
    }

    async fn pause(&self, shop: &str) -> Result<Option<Pause>, StoreError> {
        let Some(item) = self.table.get(&pause_id(shop)).await? else {
            return Ok(None);
        };
        let corrupt = |why: &str| StoreError::Corrupt {
            key: pause_id(shop),
            why: why.to_owned(),
        };
        let millis = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| corrupt("a time is not a number of milliseconds")),
            _ => Err(corrupt("a time is missing")),
        };
        let reason = match item.get(PAUSE_REASON) {
            Some(AttributeValue::S(v)) => PauseReason::parse(v),
            _ => None,
        }
        .ok_or_else(|| corrupt("its reason is missing or unknown"))?;
        Ok(Some(Pause {
            reason,
            since: millis(PAUSE_SINCE)?,
            last_at: millis(PAUSE_LAST)?,
        }))
    }

    async fn delete_shop(&self, shop: &str) -> Result<u64, StoreError> {
        let prefixes = [
            IdempotencyKey::shop_prefix(shop),
            pause_id(shop),
            format!("deadletters#{shop}#"),
            // The outcome ledger of a pinrelay before one-record-per-event.
            format!("outcome#{shop}#"),
        ];
        Ok(self.table.delete_prefixes(&prefixes).await?)
    }
}

/// The item of a store's latest pause.
fn pause_id(shop: &str) -> String {
    format!("pause#{shop}")
}

/// Attributes of a pause item.
const PAUSE_REASON: &str = "reason";
const PAUSE_SINCE: &str = "since_ms";
const PAUSE_LAST: &str = "last_ms";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_of_the_format_before_one_record_per_event() {
        let item = |status: &str| {
            HashMap::from([
                (ID.to_owned(), s("a.myshopify.com#checkout#1")),
                (LEGACY_STATUS.to_owned(), s(status)),
                (EXPIRES_AT.to_owned(), n(100)),
                (LEGACY_LOCK.to_owned(), n(1500)),
            ])
        };
        let sent = parse(&item("COMPLETED")).unwrap();
        assert_eq!(sent.state, State::Sent);
        assert!(sent.sent().is_some_and(|f| f.legacy));
        let held = parse(&item("INPROGRESS")).unwrap();
        assert_eq!(
            (held.state, held.lock_until_ms),
            (State::InProgress, Some(1500))
        );
        assert!(matches!(
            parse(&item("DONE")),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
