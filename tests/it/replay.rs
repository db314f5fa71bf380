//! `pinrelay replay --queue-url DLQ --to QUEUE` against moto: recent dead letters go back to the
//! queue without their `dead-letter-reason`, too-old ones stay, `--dry-run` changes nothing. Runs
//! the real binary with `AWS_ENDPOINT_URL` pointing at moto.

use std::collections::{BTreeMap, HashMap};
use std::process::Output;

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use chrono::{Duration, SecondsFormat, Utc};
use pinrelay::queue::attr;

use crate::helpers::TestEnv;

fn string(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .unwrap()
}

/// Puts a dead letter as dispatch writes it: the original attributes plus the reason.
async fn dead_letter(env: &TestEnv, order_id: u64, age: Duration, reason: &str) {
    let received_at = (Utc::now() - age).to_rfc3339_opts(SecondsFormat::Millis, true);
    env.sqs
        .send_message()
        .queue_url(&env.dlq_url)
        .message_body(format!(r#"{{"id":{order_id}}}"#))
        .message_attributes(attr::TOPIC, string("orders/create"))
        .message_attributes(attr::SHOP, string("acme.myshopify.com"))
        .message_attributes(attr::WEBHOOK_ID, string(&format!("w-{order_id}")))
        .message_attributes(
            attr::RELAY,
            string(
                &pinrelay::queue::RelayFacts {
                    source: Some("webhook".into()),
                    encoding: Some("identity".into()),
                    received_at: Some(received_at),
                    ..Default::default()
                }
                .encode(),
            ),
        )
        .message_attributes(attr::DEAD_LETTER_REASON, string(reason))
        .send()
        .await
        .unwrap();
}

async fn replay(env: &TestEnv, extra: &[&str]) -> Output {
    replay_to(env, &env.queue_url, extra).await
}

async fn replay_to(env: &TestEnv, to: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = ["replay", "--queue-url", &env.dlq_url, "--to", to]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let endpoint = env.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        crate::helpers::pinrelay_on_moto(&endpoint)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn attributes(m: &Message) -> BTreeMap<String, String> {
    m.message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
        .collect()
}

fn by_body(messages: &[Message]) -> HashMap<String, &Message> {
    messages
        .iter()
        .map(|m| (m.body().unwrap().to_owned(), m))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn replays_recent_dead_letters_without_their_reason_and_leaves_old_ones() {
    let env = TestEnv::start().await;
    dead_letter(
        &env,
        1,
        Duration::hours(2),
        "pinterest: 503 Service Unavailable",
    )
    .await;
    dead_letter(
        &env,
        2,
        Duration::days(6),
        "Pinterest refused the access token",
    )
    .await;
    dead_letter(&env, 3, Duration::days(8), "expired").await;

    let out = replay(&env, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "replayed 2, skipped 1 (older than 7d, left in the dead-letter queue), left 0 (not selected), failed 0"
        ),
        "{}",
        text(&out)
    );

    let queued = env.receive_all(&env.queue_url).await;
    let queued = by_body(&queued);
    assert_eq!(queued.len(), 2);
    for id in [1, 2] {
        let m = queued[&format!(r#"{{"id":{id}}}"#)];
        let attrs = attributes(m);
        assert!(!attrs.contains_key(attr::DEAD_LETTER_REASON), "{attrs:?}");
        assert_eq!(attrs[attr::TOPIC], "orders/create");
        assert_eq!(attrs[attr::WEBHOOK_ID], format!("w-{id}"));
        assert_eq!(attrs.len(), 4, "{attrs:?}");
    }

    // The old one is still there, visible again at once, with its reason.
    let left = env.receive_all(&env.dlq_url).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].body(), Some(r#"{"id":3}"#));
    assert_eq!(attributes(&left[0])[attr::DEAD_LETTER_REASON], "expired");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let skipped = left[0].message_id().unwrap();
    assert!(
        stdout.contains(&format!("skipped       {skipped}")),
        "{stdout}"
    );
}

#[tokio::test]
async fn dry_run_moves_nothing() {
    let env = TestEnv::start().await;
    dead_letter(&env, 1, Duration::minutes(5), "pinterest: 500").await;
    dead_letter(&env, 2, Duration::days(30), "expired").await;

    let out = replay(&env, &["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("dry run: would replay 1, would skip 1"),
        "{stdout}"
    );
    assert!(stdout.contains("would replay  "), "{stdout}");
    assert!(env.receive_all(&env.queue_url).await.is_empty());
    assert_eq!(env.receive_all(&env.dlq_url).await.len(), 2);
}

#[tokio::test]
async fn drains_more_than_one_batch_and_honours_max_age() {
    let env = TestEnv::start().await;
    for id in 0..23 {
        dead_letter(&env, id, Duration::hours(30), "pinterest: 500").await;
    }
    // With --max-age 1d every one of them is too old.
    let out = replay(&env, &["--max-age", "1d"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 0, skipped 23"));
    assert!(env.receive_all(&env.queue_url).await.is_empty());

    let out = replay(&env, &["--max-age", "36h"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 23, skipped 0"));
    assert_eq!(env.receive_all(&env.queue_url).await.len(), 23);
    assert!(env.receive_all(&env.dlq_url).await.is_empty());
}

#[tokio::test]
async fn refuses_bad_arguments_before_touching_a_queue() {
    let env = TestEnv::start().await;
    dead_letter(&env, 1, Duration::minutes(5), "x").await;
    let out = replay(&env, &["--max-age", "a week"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = replay_to(&env, &env.dlq_url, &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(env.receive_all(&env.dlq_url).await.len(), 1);
}
