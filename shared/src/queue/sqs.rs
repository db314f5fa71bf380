//! Amazon SQS adapters: [`SqsQueue`] (ingest's [`Queue`]), [`SqsInbox`] (dispatch's [`Inbox`]) and
//! [`SqsRedrive`] (`pinrelay replay`: a dead-letter queue drained back into the event queue), plus
//! [`received_from_message`], which reads an SDK [`Message`] as a [`Received`].
//!
//! Timeouts and retries come from the client's [`SdkConfig`](aws_config::SdkConfig); build it with
//! [`crate::aws`].

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use chrono::{DateTime, Utc};

use super::{
    EncodedMessage, Inbox, Letter, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_MESSAGE_BYTES, Queue,
    QueueError, Received, check_limits, dead_letter_attributes,
};

pub use super::MAX_DELAY;

/// The longest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// Sends ingest's messages to one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    max_message_bytes: usize,
}

impl SqsQueue {
    /// A queue at `queue_url` reached through `client`, whose `MaximumMessageSize` is
    /// [`MAX_MESSAGE_BYTES`] (as template.yaml sets it).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            max_message_bytes: MAX_MESSAGE_BYTES,
        }
    }

    /// The same queue with another `MaximumMessageSize`.
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl Queue for SqsQueue {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
        check_limits(&message.body, &message.attributes, self.max_message_bytes)?;
        let delay = message.delay.min(MAX_DELAY).as_secs();
        send(
            &self.client,
            &self.queue_url,
            &message.body,
            message.attributes.iter(),
            delay,
        )
        .await
    }
}

/// Dead-letters and delays messages dispatch received from an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsInbox {
    client: Client,
    queue_url: String,
    dead_letter_queue_url: String,
}

impl SqsInbox {
    /// The inbox of `queue_url` (where receipt handles come from) dead-lettering to
    /// `dead_letter_queue_url`.
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_queue_url: dead_letter_queue_url.into(),
        }
    }
}

impl Inbox for SqsInbox {
    async fn dead_letter_many(&self, letters: &[Letter<'_>]) -> Vec<Result<(), QueueError>> {
        let mut results: Vec<Option<Result<(), QueueError>>> =
            letters.iter().map(|_| None).collect();
        let mut outgoing = Vec::with_capacity(letters.len());
        for (i, letter) in letters.iter().enumerate() {
            let attributes = dead_letter_attributes(letter.message, letter.reason, letter.relay);
            match check_limits(&letter.message.body, &attributes, MAX_MESSAGE_BYTES) {
                Ok(bytes) => outgoing.push((i, letter.message.body.as_str(), attributes, bytes)),
                Err(limit) => results[i] = Some(Err(limit.into())),
            }
        }
        for batch in batches(&outgoing) {
            for (i, result) in send_batch(&self.client, &self.dead_letter_queue_url, batch).await {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(QueueError::Unavailable("not in SQS's answer".into())))
            })
            .collect()
    }

    async fn retry_after(&self, message: &Received, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay.min(MAX_VISIBILITY).as_secs();
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("ChangeMessageVisibility", &e))
    }
}

/// Reads an SQS message (from `ReceiveMessage`) as a [`Received`]: its string (and number)
/// attributes, and `ApproximateReceiveCount` (1 when absent). Binary attributes are skipped.
pub fn received_from_message(message: &Message) -> Received {
    let attributes: HashMap<String, String> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
        .collect();
    let receive_count = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    Received {
        id: message.message_id().unwrap_or_default().to_owned(),
        receipt: message.receipt_handle().unwrap_or_default().to_owned(),
        receive_count,
        body: message.body().unwrap_or_default().to_owned(),
        attributes,
    }
}

impl From<&Message> for Received {
    fn from(message: &Message) -> Self {
        received_from_message(message)
    }
}

/// A dead letter as [`SqsRedrive::receive`] returns it.
#[derive(Debug, Clone)]
pub struct DeadLetterMessage {
    /// The message, its `dead-letter-reason` attribute included.
    pub message: Received,
    /// When it was sent to the dead-letter queue (`SentTimestamp`).
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of one dead letter handed to [`SqsRedrive::redrive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    /// Sent to the target queue and deleted from the dead-letter queue.
    Replayed,
    /// Sent, but it could not be deleted: a later replay sends it again (dispatch deduplicates).
    NotDeleted,
    /// Not sent; it stays in the dead-letter queue.
    Failed(String),
}

/// Drains a dead-letter queue back into the event queue: receive with a hold, send without the
/// `dead-letter-reason` attribute, delete only what was sent, release what is left.
#[derive(Debug, Clone)]
pub struct SqsRedrive {
    client: Client,
    dead_letter_queue_url: String,
    target_url: String,
}

impl SqsRedrive {
    /// Redrives `dead_letter_queue_url` into `target_url`.
    pub fn new(
        client: Client,
        dead_letter_queue_url: impl Into<String>,
        target_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            dead_letter_queue_url: dead_letter_queue_url.into(),
            target_url: target_url.into(),
        }
    }

    /// The approximate number of dead letters (for a progress bar).
    ///
    /// # Errors
    /// [`QueueError::Unavailable`].
    pub async fn approximate_len(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dead_letter_queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Up to 10 dead letters, hidden from other readers for `hold`, waiting at most `wait` for
    /// one; empty when the queue is drained.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`].
    pub async fn receive(
        &self,
        hold: Duration,
        wait: Duration,
    ) -> Result<Vec<DeadLetterMessage>, QueueError> {
        let seconds = |d: Duration| i32::try_from(d.as_secs()).unwrap_or(i32::MAX);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.dead_letter_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(seconds(wait).min(20))
            .visibility_timeout(seconds(hold.min(MAX_VISIBILITY)))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", &e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .iter()
            .map(|m| DeadLetterMessage {
                message: received_from_message(m),
                sent_at: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|ms| ms.parse().ok())
                    .and_then(DateTime::from_timestamp_millis),
            })
            .collect())
    }

    /// Sends dead letters to the target queue with the attributes given (the caller drops the
    /// `dead-letter-reason` and sets what a replay changes), in batches SQS accepts, then deletes
    /// the sent ones from the dead-letter queue. One result per letter, in order; a letter breaking
    /// an SQS limit is not sent.
    pub async fn redrive(&self, letters: &[(&Received, HashMap<String, String>)]) -> Vec<Redriven> {
        let mut results = vec![Redriven::Failed("not in SQS's answer".to_owned()); letters.len()];
        let mut outgoing = Vec::with_capacity(letters.len());
        for (i, (m, attributes)) in letters.iter().enumerate() {
            match check_limits(&m.body, attributes, MAX_MESSAGE_BYTES) {
                Ok(bytes) => outgoing.push((i, m.body.as_str(), attributes.clone(), bytes)),
                Err(limit) => results[i] = Redriven::Failed(limit.to_string()),
            }
        }
        let mut deletes = Vec::new();
        for batch in batches(&outgoing) {
            for (i, result) in send_batch(&self.client, &self.target_url, batch).await {
                match result {
                    Ok(()) => {
                        results[i] = Redriven::NotDeleted;
                        deletes.push(i);
                    }
                    Err(e) => results[i] = Redriven::Failed(e.to_string()),
                }
            }
        }
        for chunk in deletes.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .filter_map(|i| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&letters[*i].0.receipt)
                        .build()
                        .ok()
                })
                .collect();
            // A failed delete leaves a replayed message behind: reported, never fatal.
            if let Ok(out) = self
                .client
                .delete_message_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                for d in out.successful() {
                    if let Some(r) = d
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| results.get_mut(i))
                    {
                        *r = Redriven::Replayed;
                    }
                }
            }
        }
        results
    }

    /// Makes held dead letters visible again (best effort: otherwise they reappear after the hold).
    pub async fn release(&self, receipts: &[String]) {
        for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let _ = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
        }
    }
}

/// A message ready for `SendMessageBatch`: its index among the caller's, body, attributes, size.
type Outgoing<'a> = (usize, &'a str, HashMap<String, String>, usize);

/// Groups messages into batches SQS accepts: at most [`MAX_BATCH_ENTRIES`] entries and
/// [`MAX_BATCH_BYTES`] in all.
fn batches<'a, 'b>(messages: &'b [Outgoing<'a>]) -> Vec<&'b [Outgoing<'a>]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + m.3 > MAX_BATCH_BYTES) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.3;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// Sends one batch; the result of each message by the caller's index.
async fn send_batch(
    client: &Client,
    queue_url: &str,
    batch: &[Outgoing<'_>],
) -> Vec<(usize, Result<(), QueueError>)> {
    let mut entries = Vec::with_capacity(batch.len());
    for (i, body, attributes, _) in batch {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(*body);
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            match string_attribute(value) {
                Ok(v) => entry = entry.message_attributes(name, v),
                Err(e) => {
                    return batch
                        .iter()
                        .map(|m| (m.0, Err(QueueError::Unavailable(e.to_string().into()))))
                        .collect();
                }
            }
        }
        match entry.build() {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                return batch
                    .iter()
                    .map(|m| (m.0, Err(QueueError::Unavailable(e.to_string().into()))))
                    .collect();
            }
        }
    }
    let out = match client
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let error = unavailable("SendMessageBatch", &e).to_string();
            return batch
                .iter()
                .map(|m| (m.0, Err(QueueError::Unavailable(error.clone().into()))))
                .collect();
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    for s in out.successful() {
        if let Ok(i) = s.id().parse::<usize>() {
            results.push((i, Ok(())));
        }
    }
    for f in out.failed() {
        if let Ok(i) = f.id().parse::<usize>() {
            let why = format!(
                "SQS refused the entry: {} {}",
                f.code(),
                f.message().unwrap_or_default()
            );
            results.push((i, Err(QueueError::Unavailable(why.into()))));
        }
    }
    results
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Unavailable(Box::new(e)))
}

async fn send<'a>(
    client: &Client,
    queue_url: &str,
    body: &str,
    attributes: impl Iterator<Item = (&'a String, &'a String)>,
    delay_seconds: u64,
) -> Result<(), QueueError> {
    let mut request = client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .delay_seconds(i32::try_from(delay_seconds).unwrap_or(900));
    // SQS refuses empty attribute values.
    for (name, value) in attributes.filter(|(_, v)| !v.is_empty()) {
        request = request.message_attributes(name, string_attribute(value)?);
    }
    request.send().await.map(|_| ()).map_err(|e| {
        if is_too_large(&e) {
            QueueError::TooLarge
        } else {
            unavailable("SendMessage", &e)
        }
    })
}

/// SQS answers an oversized `SendMessage` with `InvalidParameterValue` ("Message must be shorter
/// than N bytes"); the code alone also covers other invalid parameters, so the message decides.
/// A body over the HTTP limit gets a bare 413.
fn is_too_large<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::ServiceError(e) => {
            let service = e.err();
            (service.code() == Some("InvalidParameterValue")
                && service
                    .message()
                    .is_some_and(|m| m.contains("shorter than")))
                || e.raw().status().as_u16() == 413
        }
        _ => false,
    }
}

/// The SDK error as a [`QueueError::Unavailable`] with the operation and the full error context.
fn unavailable<E>(operation: &'static str, error: &E) -> QueueError
where
    E: std::error::Error,
{
    QueueError::Unavailable(
        SqsError {
            operation,
            detail: DisplayErrorContext(error).to_string(),
        }
        .into(),
    )
}

/// An SQS call failed.
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} failed: {detail}")]
struct SqsError {
    operation: &'static str,
    detail: String,
}

#[cfg(test)]
mod tests {
    use super::super::attr;
    use super::*;

    #[test]
    fn reads_attributes_and_receive_count_from_an_sdk_message() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .message_attributes(
                attr::TOPIC,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("orders/create")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![1]))
                    .build()
                    .unwrap(),
            )
            .build();
        let r = received_from_message(&m);
        assert_eq!(r.id, "m-1");
        assert_eq!(r.receipt, "r-1");
        assert_eq!(r.receive_count, 3);
        assert_eq!(r.body, "{}");
        assert_eq!(r.attributes.len(), 1);
        assert_eq!(r.attributes[attr::TOPIC], "orders/create");
    }

    #[test]
    fn a_message_without_receive_count_counts_as_first_delivery() {
        let r = received_from_message(&Message::builder().body("x").build());
        assert_eq!(r.receive_count, 1);
        assert!(r.attributes.is_empty());
    }

    #[test]
    fn truncates_on_a_char_boundary() {
        use super::super::truncate;
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
