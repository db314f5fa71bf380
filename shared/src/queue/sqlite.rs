//! The embedded queue of `pinrelay serve`: [`SqliteQueue`], two tables of the relay database
//! ([`crate::sqlite::SqliteDatabase`]).
//!
//! - `send` (a webhook acknowledged) and moving a message (dead-letter, requeue) are durable
//!   commits: once `send` returns `Ok` the row survives a process kill and a power cut. Receive,
//!   delete and retry delays are bookkeeping commits (see [`crate::sqlite`]).
//! - SQS semantics: a received message is hidden for a visibility timeout and comes back with a
//!   higher receive count unless deleted with its receipt; after `max_receive_count` unsettled
//!   deliveries it is moved to the dead letters (redrive), with its reason.
//!
//! This is not a general job queue: one process dispatches a data directory.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};

use super::{
    EncodedMessage, Inbox, Letter, MAX_MESSAGE_BYTES, Queue, QueueError, Received, attr,
    check_limits, dead_letter_attributes,
};
pub use crate::sqlite::DB_FILE;
use crate::sqlite::{SqliteDatabase, SqliteError};

impl From<SqliteError> for QueueError {
    fn from(e: SqliteError) -> Self {
        QueueError::Unavailable(Box::new(e))
    }
}

/// A dead letter as `pinrelay dead-letters` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its row id (what `replay` re-queues).
    pub id: i64,
    /// The id the message had in the queue.
    pub message_id: String,
    /// Why it was dead-lettered (`label: detail`, see [`crate::dispatch::DeadLetterReason`]).
    pub reason: String,
    /// The webhook topic, when the message carried one.
    pub topic: Option<String>,
    /// The shop domain, when the message carried one.
    pub shop: Option<String>,
    /// `X-Shopify-Webhook-Id`, when the message carried one.
    pub webhook_id: Option<String>,
    /// Deliveries before it was dead-lettered.
    pub receive_count: u32,
    /// The message body, as it was queued.
    pub body: String,
    /// The message attributes (the reason is [`DeadLetter::reason`], not among them).
    pub attributes: HashMap<String, String>,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// Queue depth for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Messages not yet settled (visible, delayed, or being dispatched).
    pub pending: u64,
    /// Of those, the ones a receive would return now.
    pub visible: u64,
    /// Dead letters waiting for a human.
    pub dead_letters: u64,
}

/// The durable queue of `pinrelay serve`.
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    db: SqliteDatabase,
    max_receive_count: u32,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn after(now: DateTime<Utc>, d: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `{id}:{receive_count}`: unique per delivery, so a stale receipt cannot settle a later delivery.
fn receipt(id: i64, receive_count: u32) -> String {
    format!("{id}:{receive_count}")
}

fn parse_receipt(receipt: &str) -> Option<(i64, u32)> {
    let (id, count) = receipt.split_once(':')?;
    Some((id.parse().ok()?, count.parse().ok()?))
}

fn parse_attributes(json: &str) -> HashMap<String, String> {
    // A corrupt attribute column yields none, so the message is dead-lettered as undecodable
    // instead of blocking the queue.
    serde_json::from_str(json).unwrap_or_default()
}

impl SqliteQueue {
    /// The queue in `db`, dead-lettering messages after 5 unsettled deliveries.
    pub fn new(db: SqliteDatabase) -> Self {
        Self {
            db,
            max_receive_count: 5,
        }
    }

    /// Opens the queue in `data_dir/relay.db`.
    ///
    /// # Errors
    /// See [`SqliteDatabase::open`].
    pub fn open_in(data_dir: &Path) -> Result<Self, SqliteError> {
        Ok(Self::new(SqliteDatabase::open_in(data_dir)?))
    }

    /// Sets the redrive count: a message delivered this many times without being settled (the
    /// relay crashed while handling it) is moved to the dead letters on its next receive.
    #[must_use]
    pub fn with_max_receive_count(mut self, n: u32) -> Self {
        self.max_receive_count = n.max(1);
        self
    }

    /// The database this queue lives in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Claims up to `max` visible messages: each is hidden until `now + visibility_timeout`, its
    /// receive count incremented, and given a new receipt.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn receive(
        &self,
        max: usize,
        visibility_timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Received>, SqliteError> {
        let max_receive_count = self.max_receive_count;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.db
            .call(false, move |conn| {
                let now_ms = ms(now);
                let candidates = conn
                    .prepare_cached(
                        "SELECT id, receive_count, body, attributes FROM messages
                         WHERE visible_at_ms <= ?1 ORDER BY visible_at_ms, id LIMIT ?2",
                    )?
                    .query_map(params![now_ms, limit], |row| {
                        let id: i64 = row.get(0)?;
                        let receive_count: u32 = row.get(1)?;
                        let attributes: String = row.get(3)?;
                        Ok(Received {
                            id: id.to_string(),
                            receipt: receipt(id, receive_count),
                            receive_count,
                            body: row.get(2)?,
                            attributes: parse_attributes(&attributes),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut claim = conn.prepare_cached(
                    "UPDATE messages SET receive_count = ?1, visible_at_ms = ?2 WHERE id = ?3",
                )?;
                let hidden_until = after(now, visibility_timeout);
                let mut received = Vec::with_capacity(candidates.len());
                for mut message in candidates {
                    if message.receive_count >= max_receive_count {
                        redrive(conn, &message, max_receive_count, now_ms)?;
                        continue;
                    }
                    message.receive_count += 1;
                    let id: i64 = message.id.parse().unwrap_or(-1);
                    message.receipt = receipt(id, message.receive_count);
                    claim.execute(params![message.receive_count, hidden_until, id])?;
                    received.push(message);
                }
                Ok(received)
            })
            .await
    }

    /// Acknowledges a delivery: deletes the message if `receipt` is its latest. Returns whether a
    /// message was deleted.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn delete(&self, receipt: &str) -> Result<bool, SqliteError> {
        Ok(self.delete_many(&[receipt.to_owned()]).await? == 1)
    }

    /// Acknowledges many deliveries in one transaction; returns how many messages were deleted.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn delete_many(&self, receipts: &[String]) -> Result<u64, SqliteError> {
        let keys: Vec<(i64, u32)> = receipts.iter().filter_map(|r| parse_receipt(r)).collect();
        if keys.is_empty() {
            return Ok(0);
        }
        self.db
            .call(false, move |conn| {
                let mut statement = conn
                    .prepare_cached("DELETE FROM messages WHERE id = ?1 AND receive_count = ?2")?;
                let mut deleted = 0;
                for (id, count) in keys {
                    deleted += statement.execute(params![id, count])? as u64;
                }
                Ok(deleted)
            })
            .await
    }

    /// Queue depth: pending, visible now, and dead letters.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, SqliteError> {
        self.db
            .call(false, move |conn| {
                let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
                    conn.prepare_cached(sql)?
                        .query_row(p, |r| r.get::<_, i64>(0))
                        .map(|n| n.max(0) as u64)
                };
                Ok(QueueDepth {
                    pending: count("SELECT COUNT(*) FROM messages", &[])?,
                    visible: count(
                        "SELECT COUNT(*) FROM messages WHERE visible_at_ms <= ?1",
                        &[&ms(now)],
                    )?,
                    dead_letters: count("SELECT COUNT(*) FROM dead_letters", &[])?,
                })
            })
            .await
    }

    /// Messages not yet settled (visible, delayed, or being dispatched).
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn pending_count(&self) -> Result<u64, SqliteError> {
        Ok(self.depth(Utc::now()).await?.pending)
    }

    /// Every dead letter, oldest first.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, SqliteError> {
        self.db
            .call(false, |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, message_id, reason, topic, shop, webhook_id, receive_count,
                            dead_lettered_at_ms, body, attributes
                     FROM dead_letters ORDER BY id",
                )?;
                statement
                    .query_map([], |row| {
                        let at: i64 = row.get(7)?;
                        Ok(DeadLetter {
                            id: row.get(0)?,
                            message_id: row.get(1)?,
                            reason: row.get(2)?,
                            topic: row.get(3)?,
                            shop: row.get(4)?,
                            webhook_id: row.get(5)?,
                            receive_count: row.get(6)?,
                            body: row.get(8)?,
                            attributes: parse_attributes(&row.get::<_, String>(9)?),
                            dead_lettered_at: Utc
                                .timestamp_millis_opt(at)
                                .single()
                                .unwrap_or_default(),
                        })
                    })?
                    .collect()
            })
            .await
    }

    /// Moves every dead letter back to the queue, visible now with a fresh receive count; returns
    /// how many.
    ///
    /// # Errors
    /// [`SqliteError`]; nothing is moved then.
    pub async fn requeue_dead_letters(&self) -> Result<u64, SqliteError> {
        self.requeue(None).await
    }

    /// Moves one dead letter back to the queue; returns false when it no longer exists.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn requeue_dead_letter(&self, id: i64) -> Result<bool, SqliteError> {
        Ok(self.requeue(Some(id)).await? == 1)
    }

    /// Moves one dead letter back to the queue with these attributes (a replay's: the in-doubt
    /// generation turned into a resend); returns false when it no longer exists.
    ///
    /// # Errors
    /// [`SqliteError`].
    pub async fn requeue_dead_letter_as(
        &self,
        id: i64,
        attributes: &HashMap<String, String>,
    ) -> Result<bool, SqliteError> {
        let attributes = serde_json::to_string(attributes)
            .map_err(|e| SqliteError::Sqlite(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
        self.db
            .call(true, move |conn| {
                let now = ms(Utc::now());
                let moved = conn.execute(
                    "INSERT INTO messages (body, attributes, sent_at_ms, visible_at_ms, receive_count)
                     SELECT body, ?3, ?1, ?1, 0 FROM dead_letters WHERE id = ?2",
                    params![now, id, attributes],
                )?;
                conn.execute("DELETE FROM dead_letters WHERE id = ?1", params![id])?;
                Ok(moved == 1)
            })
            .await
    }

    async fn requeue(&self, id: Option<i64>) -> Result<u64, SqliteError> {
        self.db
            .call(true, move |conn| {
                let now = ms(Utc::now());
                let moved = conn.execute(
                    "INSERT INTO messages (body, attributes, sent_at_ms, visible_at_ms, receive_count)
                     SELECT body, attributes, ?1, ?1, 0 FROM dead_letters
                     WHERE ?2 IS NULL OR id = ?2 ORDER BY id",
                    params![now, id],
                )?;
                conn.execute(
                    "DELETE FROM dead_letters WHERE ?1 IS NULL OR id = ?1",
                    params![id],
                )?;
                Ok(moved as u64)
            })
            .await
    }
}

/// Moves a message delivered `max_receive_count` times without being settled, and visible again,
/// to the dead letters (what SQS's redrive policy does).
fn redrive(
    conn: &Connection,
    message: &Received,
    max_receive_count: u32,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let reason = format!(
        "retries_exhausted: delivered {max_receive_count} times without being settled; the relay stopped or failed while handling it"
    );
    tracing::warn!(
        message_id = %message.id,
        topic = message.attributes.get(attr::TOPIC).map(String::as_str),
        webhook_id = message.attributes.get(attr::WEBHOOK_ID).map(String::as_str),
        outcome = "dead_lettered",
        reason = %reason,
        "message dead-lettered by the queue's redrive"
    );
    move_to_dead_letters(conn, message, &reason, now_ms)
}

fn move_to_dead_letters(
    conn: &Connection,
    message: &Received,
    reason: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut attributes = message.attributes.clone();
    attributes.remove(attr::DEAD_LETTER_REASON);
    let attributes_json = serde_json::to_string(&attributes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let id: i64 = message.id.parse().unwrap_or(-1);
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached(
        "INSERT INTO dead_letters (message_id, body, attributes, reason, topic, shop, webhook_id,
                                   receive_count, dead_lettered_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        message.id,
        message.body,
        attributes_json,
        reason,
        attributes.get(attr::TOPIC),
        attributes.get(attr::SHOP),
        attributes.get(attr::WEBHOOK_ID),
        message.receive_count,
        now_ms,
    ])?;
    Ok(())
}

impl Queue for SqliteQueue {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
        // The limits of the SQS queue it stands in for, so what works on serve works on AWS.
        check_limits(&message.body, &message.attributes, MAX_MESSAGE_BYTES)?;
        let attributes = serde_json::to_string(&message.attributes)
            .map_err(|e| QueueError::Unavailable(Box::new(e)))?;
        let body = message.body.clone();
        let delay = message.delay;
        self.db
            .call(true, move |conn| {
                let now = Utc::now();
                conn.prepare_cached(
                    "INSERT INTO messages (body, attributes, sent_at_ms, visible_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![body, attributes, ms(now), after(now, delay)])?;
                Ok(())
            })
            .await
            .map_err(QueueError::from)
    }
}

impl Inbox for SqliteQueue {
    async fn dead_letter_many(&self, letters: &[Letter<'_>]) -> Vec<Result<(), QueueError>> {
        let mut results = Vec::with_capacity(letters.len());
        for letter in letters {
            let mut attributes =
                dead_letter_attributes(letter.message, letter.reason, letter.relay);
            if let Err(limit) = check_limits(&letter.message.body, &attributes, MAX_MESSAGE_BYTES) {
                results.push(Err(limit.into()));
                continue;
            }
            let reason = attributes
                .remove(attr::DEAD_LETTER_REASON)
                .unwrap_or_default();
            let message = Received {
                attributes,
                ..letter.message.clone()
            };
            let result = self
                .db
                .call(true, move |conn| {
                    move_to_dead_letters(conn, &message, &reason, ms(Utc::now()))
                })
                .await
                .map_err(QueueError::from);
            results.push(result);
        }
        results
    }

    async fn retry_after(&self, message: &Received, delay: Duration) -> Result<(), QueueError> {
        let Some((id, count)) = parse_receipt(&message.receipt) else {
            return Err(QueueError::Unavailable(
                format!("{:?} is not a receipt of this queue", message.receipt).into(),
            ));
        };
        self.db
            .call(false, move |conn| {
                conn.prepare_cached(
                    "UPDATE messages SET visible_at_ms = ?1 WHERE id = ?2 AND receive_count = ?3",
                )?
                .execute(params![after(Utc::now(), delay), id, count])?;
                Ok(())
            })
            .await
            .map_err(QueueError::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::queue::contract::{self, Harness};

    /// The contract's consumer: what `pinrelay serve`'s loop does.
    struct Local {
        _dir: tempfile::TempDir,
        q: SqliteQueue,
    }

    impl Harness for Local {
        type Queue = SqliteQueue;
        type Inbox = SqliteQueue;
        fn queue(&self) -> &SqliteQueue {
            &self.q
        }
        fn inbox(&self) -> &SqliteQueue {
            &self.q
        }
        async fn receive(&self, visibility: Duration) -> Vec<Received> {
            self.q.receive(10, visibility, Utc::now()).await.unwrap()
        }
        async fn delete(&self, message: &Received) {
            self.q.delete(&message.receipt).await.unwrap();
        }
        async fn dead_letters(&self) -> Vec<(String, HashMap<String, String>)> {
            let letters = self.q.dead_letters().await.unwrap();
            self.q.requeue_dead_letters().await.unwrap();
            for m in self
                .q
                .receive(1000, Duration::from_secs(1), Utc::now())
                .await
                .unwrap()
            {
                self.q.delete(&m.receipt).await.unwrap();
            }
            letters
                .into_iter()
                .map(|d| {
                    let mut attributes = d.attributes;
                    attributes.insert(attr::DEAD_LETTER_REASON.into(), d.reason);
                    (d.body, attributes)
                })
                .collect()
        }
    }

    fn local() -> Local {
        let (_dir, q) = queue();
        Local { _dir, q }
    }

    #[tokio::test]
    async fn passes_the_queue_contract() {
        contract::a_sent_message_arrives_whole(&local()).await;
        contract::a_compressed_body_round_trips(&local()).await;
        contract::a_dead_letter_keeps_the_message_and_its_latest_reason(&local()).await;
        contract::retry_after_sets_the_next_delivery(&local()).await;
        contract::the_queues_limits_are_enforced_and_named(&local()).await;
    }

    fn message(n: u32, delay: Duration) -> EncodedMessage {
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::TOPIC.to_owned(), "orders/create".to_owned());
        attributes.insert(attr::SHOP.to_owned(), "a.myshopify.com".to_owned());
        attributes.insert(attr::WEBHOOK_ID.to_owned(), format!("w-{n}"));
        EncodedMessage {
            body: format!(r#"{{"id": {n}}}"#),
            attributes,
            delay,
        }
    }

    fn queue() -> (tempfile::TempDir, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let queue = SqliteQueue::open_in(dir.path()).unwrap();
        (dir, queue)
    }

    const VISIBILITY: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_sent_message_is_received_with_body_and_attributes() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let got = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, r#"{"id": 1}"#);
        assert_eq!(got[0].attributes[attr::WEBHOOK_ID], "w-1");
        assert_eq!(got[0].receive_count, 1);
    }

    #[tokio::test]
    async fn receive_returns_at_most_max_in_send_order() {
        let (_dir, q) = queue();
        for n in 0..5 {
            q.send(&message(n, Duration::ZERO)).await.unwrap();
        }
        let got = q.receive(3, VISIBILITY, Utc::now()).await.unwrap();
        let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, [r#"{"id": 0}"#, r#"{"id": 1}"#, r#"{"id": 2}"#]);
    }

    #[tokio::test]
    async fn a_delayed_message_stays_hidden_until_its_delay_passes() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::from_secs(60))).await.unwrap();
        let now = Utc::now();
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(q.receive(10, VISIBILITY, later).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_unacknowledged_message_comes_back_after_the_visibility_timeout() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let first = q.receive(10, VISIBILITY, now).await.unwrap();
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let later = now + chrono::Duration::seconds(31);
        let second = q.receive(10, VISIBILITY, later).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, first[0].id);
        assert_eq!(second[0].receive_count, 2);
        assert_ne!(second[0].receipt, first[0].receipt);
    }

    #[tokio::test]
    async fn delete_needs_the_latest_receipt() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let first = q.receive(10, VISIBILITY, now).await.unwrap();
        let later = now + chrono::Duration::seconds(31);
        let second = q.receive(10, VISIBILITY, later).await.unwrap();
        assert!(!q.delete(&first[0].receipt).await.unwrap());
        assert_eq!(q.pending_count().await.unwrap(), 1);
        assert!(q.delete(&second[0].receipt).await.unwrap());
        assert_eq!(q.pending_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_letter_moves_the_message_with_its_reason() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let got = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        q.dead_letter(&got[0], "expired: the event is 9 days old")
            .await
            .unwrap();
        assert_eq!(q.pending_count().await.unwrap(), 0);
        let dead = q.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "expired: the event is 9 days old");
        assert_eq!(dead[0].topic.as_deref(), Some("orders/create"));
        assert_eq!(dead[0].shop.as_deref(), Some("a.myshopify.com"));
        assert_eq!(dead[0].webhook_id.as_deref(), Some("w-1"));
        assert_eq!(dead[0].message_id, got[0].id);
        assert_eq!(dead[0].receive_count, 1);
    }

    #[tokio::test]
    async fn requeued_dead_letters_are_received_again_from_a_fresh_count() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        q.send(&message(2, Duration::ZERO)).await.unwrap();
        for m in q.receive(10, VISIBILITY, Utc::now()).await.unwrap() {
            q.dead_letter(&m, "pinterest_rejected: no").await.unwrap();
        }
        assert_eq!(q.requeue_dead_letters().await.unwrap(), 2);
        assert!(q.dead_letters().await.unwrap().is_empty());
        let again = q.receive(10, VISIBILITY, Utc::now()).await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|m| m.receive_count == 1));
        assert_eq!(again[0].attributes[attr::WEBHOOK_ID], "w-1");
    }

    #[tokio::test]
    async fn requeue_of_one_dead_letter_leaves_the_others() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        q.send(&message(2, Duration::ZERO)).await.unwrap();
        for m in q.receive(10, VISIBILITY, Utc::now()).await.unwrap() {
            q.dead_letter(&m, "expired: old").await.unwrap();
        }
        let dead = q.dead_letters().await.unwrap();
        assert!(q.requeue_dead_letter(dead[0].id).await.unwrap());
        assert!(!q.requeue_dead_letter(dead[0].id).await.unwrap());
        assert_eq!(q.dead_letters().await.unwrap().len(), 1);
        assert_eq!(q.pending_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn retry_after_hides_the_message_for_the_delay() {
        let (_dir, q) = queue();
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let now = Utc::now();
        let got = q.receive(10, Duration::ZERO, now).await.unwrap();
        q.retry_after(&got[0], Duration::from_secs(120))
            .await
            .unwrap();
        let soon = Utc::now() + chrono::Duration::seconds(100);
        assert!(q.receive(10, VISIBILITY, soon).await.unwrap().is_empty());
        let later = Utc::now() + chrono::Duration::seconds(121);
        assert_eq!(q.receive(10, VISIBILITY, later).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_message_never_settled_is_redriven_to_the_dead_letters() {
        let (_dir, q) = queue();
        let q = q.with_max_receive_count(2);
        q.send(&message(1, Duration::ZERO)).await.unwrap();
        let mut now = Utc::now();
        for _ in 0..2 {
            assert_eq!(q.receive(10, VISIBILITY, now).await.unwrap().len(), 1);
            now += chrono::Duration::seconds(31);
        }
        assert!(q.receive(10, VISIBILITY, now).await.unwrap().is_empty());
        let dead = q.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with("retries_exhausted:"),
            "{}",
            dead[0].reason
        );
    }

    #[tokio::test]
    async fn messages_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = SqliteQueue::open_in(dir.path()).unwrap();
            q.send(&message(1, Duration::ZERO)).await.unwrap();
        }
        let q = SqliteQueue::open_in(dir.path()).unwrap();
        assert_eq!(
            q.receive(10, VISIBILITY, Utc::now()).await.unwrap().len(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sends_are_all_stored() {
        let (_dir, q) = queue();
        let sends = futures::future::join_all((0..300).map(|n| {
            let q = q.clone();
            tokio::spawn(async move { q.send(&message(n, Duration::ZERO)).await })
        }))
        .await;
        assert!(sends.iter().all(|r| matches!(r, Ok(Ok(())))));
        let got = q.receive(1000, VISIBILITY, Utc::now()).await.unwrap();
        let mut ids: Vec<_> = got
            .iter()
            .map(|m| m.attributes[attr::WEBHOOK_ID].clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300);
    }
}
