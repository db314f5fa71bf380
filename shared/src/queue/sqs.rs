//! Amazon SQS adapters: [`SqsQueue`] (ingest's [`Queue`]) and [`SqsInbox`] (dispatch's [`Inbox`]),
//! plus [`received_from_message`], which reads an SDK [`Message`] as a [`Received`].
//!
//! Timeouts and retries come from the client's [`SdkConfig`](aws_config::SdkConfig); build it with
//! [`crate::aws`].

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};

use super::{EncodedMessage, Inbox, Queue, QueueError, Received, attr};

/// The longest `DelaySeconds` SQS accepts (15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The longest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// Dead-letter reasons are cut to this many bytes (they count toward the message size).
const MAX_REASON_BYTES: usize = 1024;

/// Sends ingest's messages to one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// A queue at `queue_url` reached through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl Queue for SqsQueue {
    async fn send(&self, message: &EncodedMessage) -> Result<(), QueueError> {
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
    async fn dead_letter(&self, message: &Received, reason: &str) -> Result<(), QueueError> {
        let reason = truncate(reason.trim(), MAX_REASON_BYTES);
        let reason = if reason.is_empty() {
            "unspecified"
        } else {
            reason
        };
        let original = message
            .attributes
            .iter()
            .filter(|(k, _)| k.as_str() != attr::DEAD_LETTER_REASON);
        let reason_attr = (&attr::DEAD_LETTER_REASON.to_owned(), &reason.to_owned());
        send(
            &self.client,
            &self.dead_letter_queue_url,
            &message.body,
            original.chain(std::iter::once(reason_attr)),
            0,
        )
        .await
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
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| QueueError::Unavailable(Box::new(e)))?;
        request = request.message_attributes(name, value);
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

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
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
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
