//! The limits layer (`scripts/moto_limits.py`) in front of moto, through the real SDK clients:
//! what SQS and DynamoDB refuse is refused, with the codes the SDKs map to their typed errors, what
//! they accept still passes, and under pressure batch calls come back partly unprocessed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use crate::helpers::TestEnv;

/// A `String` message attribute.
fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// `n` attributes `a0`.. with value `v`.
fn attributes(n: usize) -> HashMap<String, MessageAttributeValue> {
    (0..n).map(|i| (format!("a{i}"), attribute("v"))).collect()
}

/// The error code and message of a refused call.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata>(result: Result<T, E>) -> (String, String) {
    let error = result.expect_err("the layer should refuse this");
    (
        error.code().unwrap_or_default().to_owned(),
        error.message().unwrap_or_default().to_owned(),
    )
}

fn entry(id: usize, body: String) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(format!("m{id}"))
        .message_body(body)
        .build()
        .unwrap()
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), AttributeValue::S(id.to_owned()))])
}

fn put(id: &str) -> WriteRequest {
    WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(key(id)))
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test]
async fn sqs_refuses_what_sqs_refuses() {
    let env = TestEnv::start().await;
    let sqs = &env.sqs;
    let send = |attrs: HashMap<String, MessageAttributeValue>, body: String| {
        sqs.send_message()
            .queue_url(&env.queue_url)
            .message_body(body)
            .set_message_attributes(Some(attrs))
            .send()
    };

    // Attributes: 10 pass, 11 are refused, and so is an empty value.
    send(attributes(10), "ten".into()).await.unwrap();
    let (code, message) = refusal(send(attributes(11), "eleven".into()).await);
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        "Number of message attributes [11] exceeds the allowed maximum [10]."
    );
    let empty = HashMap::from([("reason".to_owned(), attribute(""))]);
    let (code, message) = refusal(send(empty, "empty".into()).await);
    assert_eq!(code, "InvalidParameterValue");
    assert!(
        message.contains("'reason' must contain a non-empty value"),
        "{message}"
    );

    // Size: the queue's MaximumMessageSize, body plus attribute name, type and value.
    let small = sqs
        .create_queue()
        .queue_name(format!("{}-256k", env.table))
        .attributes(QueueAttributeName::MaximumMessageSize, "262144")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let overhead = "reason".len() + "String".len() + "value".len();
    let sized = |extra: usize| {
        sqs.send_message()
            .queue_url(&small)
            .message_body("x".repeat(262_144 - overhead + extra))
            .message_attributes("reason", attribute("value"))
            .send()
    };
    sized(0).await.unwrap();
    let (code, message) = refusal(sized(1).await);
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes."
    );
    // moto's default queue (as SQS's since August 2025) takes up to 1 MiB.
    send(attributes(1), "x".repeat(300_000)).await.unwrap();

    // Batches: 11 entries are refused (the SDK's typed error), 10 pass.
    let batch = |entries: Vec<SendMessageBatchRequestEntry>| {
        sqs.send_message_batch()
            .queue_url(&env.queue_url)
            .set_entries(Some(entries))
            .send()
    };
    let eleven = batch((0..11).map(|i| entry(i, "b".into())).collect()).await;
    let error = eleven.expect_err("11 entries").into_service_error();
    assert!(error.is_too_many_entries_in_batch_request(), "{error:?}");
    assert_eq!(
        error.meta().message(),
        Some("Maximum number of entries per request are 10. You have sent 11.")
    );
    let ten = batch((0..10).map(|i| entry(i, "b".into())).collect())
        .await
        .unwrap();
    assert_eq!(ten.successful.len(), 10);

    // A batch over 1 MiB in all is refused though each message fits; one under it passes, even
    // above the 256 KiB batch limit SQS had before August 2025.
    let heavy = batch((0..10).map(|i| entry(i, "h".repeat(105_000))).collect()).await;
    let error = heavy.expect_err("1,050,000 bytes").into_service_error();
    assert!(error.is_batch_request_too_long(), "{error:?}");
    assert_eq!(
        error.meta().message(),
        Some("Batch requests cannot be longer than 1048576 bytes. You have sent 1050000 bytes.")
    );
    batch((0..3).map(|i| entry(i, "h".repeat(100_000))).collect())
        .await
        .unwrap();

    // DeleteMessageBatch: 11 entries are refused before any receipt handle is looked at.
    let deletes = (0..11)
        .map(|i| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle("unknown")
                .build()
                .unwrap()
        })
        .collect();
    let error = sqs
        .delete_message_batch()
        .queue_url(&env.queue_url)
        .set_entries(Some(deletes))
        .send()
        .await
        .expect_err("11 deletes")
        .into_service_error();
    assert!(error.is_too_many_entries_in_batch_request(), "{error:?}");

    // DelaySeconds above 15 minutes.
    let (code, _) = refusal(
        sqs.send_message()
            .queue_url(&env.queue_url)
            .message_body("late")
            .delay_seconds(901)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterValue");
}

#[tokio::test]
async fn dynamodb_refuses_what_dynamodb_refuses() {
    let env = TestEnv::start().await;
    let db = &env.dynamodb;
    let item = |id: &str, bytes: usize| {
        let mut item = key(id);
        item.insert("data".to_owned(), AttributeValue::S("x".repeat(bytes)));
        item
    };

    // 400 KB = 409,600 bytes: names plus values.
    let limit = 400 * 1024 - "id".len() - "big".len() - "data".len();
    db.put_item()
        .table_name(&env.table)
        .set_item(Some(item("big", limit)))
        .send()
        .await
        .unwrap();
    let (code, message) = refusal(
        db.put_item()
            .table_name(&env.table)
            .set_item(Some(item("big", 401 * 1024)))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(message, "Item size has exceeded the maximum allowed size");

    // An update that would leave the item above 400 KB is refused and leaves it as it was.
    let (code, message) = refusal(
        db.update_item()
            .table_name(&env.table)
            .set_key(Some(key("big")))
            .update_expression("SET more = :v")
            .expression_attribute_values(":v", AttributeValue::S("y".into()))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Item size to update has exceeded the maximum allowed size"
    );
    let stored = db
        .get_item()
        .table_name(&env.table)
        .set_key(Some(key("big")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!stored.contains_key("more"));

    // BatchWriteItem: 25 requests pass, 26 are refused.
    let writes = |n: usize| (0..n).map(|i| put(&format!("w{i}"))).collect::<Vec<_>>();
    db.batch_write_item()
        .request_items(&env.table, writes(25))
        .send()
        .await
        .unwrap();
    let (code, message) = refusal(
        db.batch_write_item()
            .request_items(&env.table, writes(26))
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must have length less than or equal to 25"),
        "{message}"
    );

    // BatchGetItem: 101 keys are refused.
    let keys = KeysAndAttributes::builder()
        .set_keys(Some((0..101).map(|i| key(&format!("w{i}"))).collect()))
        .build()
        .unwrap();
    let (code, message) = refusal(
        db.batch_get_item()
            .request_items(&env.table, keys)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Member must have length less than or equal to 100"),
        "{message}"
    );
}

#[tokio::test]
async fn under_pressure_batches_come_back_partly_unprocessed() {
    let env = TestEnv::start().await;
    let db = &env.dynamodb;
    env.pressure(0.5).await;

    // BatchWriteItem applies 13 of 25 and hands back 12; retrying what comes back converges.
    let mut pending = (0..25).map(|i| put(&format!("p{i}"))).collect::<Vec<_>>();
    let mut calls = 0;
    let mut first_unprocessed = None;
    while !pending.is_empty() {
        calls += 1;
        let out = db
            .batch_write_item()
            .request_items(&env.table, pending)
            .send()
            .await
            .unwrap();
        pending = out
            .unprocessed_items
            .unwrap_or_default()
            .remove(&env.table)
            .unwrap_or_default();
        first_unprocessed.get_or_insert(pending.len());
    }
    assert_eq!(first_unprocessed, Some(12));
    assert!(calls > 1 && calls <= 25, "{calls} calls");

    // BatchGetItem reads 13 of the 25 keys and hands back 12 with the request's options.
    let keys = || {
        KeysAndAttributes::builder()
            .set_keys(Some((0..25).map(|i| key(&format!("p{i}"))).collect()))
            .consistent_read(true)
            .build()
            .unwrap()
    };
    let out = db
        .batch_get_item()
        .request_items(&env.table, keys())
        .send()
        .await
        .unwrap();
    let read = out
        .responses
        .unwrap_or_default()
        .remove(&env.table)
        .unwrap_or_default();
    let unread = out
        .unprocessed_keys
        .unwrap_or_default()
        .remove(&env.table)
        .unwrap();
    assert_eq!((read.len(), unread.keys.len()), (13, 12));
    assert_eq!(unread.consistent_read, Some(true));

    // Without pressure every key is read.
    env.pressure(0.0).await;
    let out = db
        .batch_get_item()
        .request_items(&env.table, keys())
        .send()
        .await
        .unwrap();
    assert_eq!(out.responses.unwrap().remove(&env.table).unwrap().len(), 25);
    assert!(out.unprocessed_keys.unwrap_or_default().is_empty());
}
