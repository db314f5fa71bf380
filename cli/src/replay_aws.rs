//! `pinrelay replay --queue-url DLQ_URL --to QUEUE_URL`: re-drives an AWS dead-letter queue.
//!
//! Receives the dead letters in batches of 10, skips (and reports) those whose event is older than
//! `--max-age` (Pinterest rejects events over 7 days old), sends the others to the target queue
//! with their attributes except `dead-letter-reason`, and deletes each from the dead-letter queue
//! only after its send succeeded. A replayed event that was already sent is deduplicated by
//! dispatch, so a crash between send and delete costs nothing but a duplicate message.
//!
//! Messages it leaves in the dead-letter queue (skipped, failed, or all of them with `--dry-run`)
//! stay hidden while the run lasts, so each is seen once, and are made visible again at the end.
//! The SDK reads the standard AWS environment, `AWS_ENDPOINT_URL` included.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use pinrelay::queue::{Envelope, attr};

/// How long received dead letters stay hidden while the run lasts.
const HOLD_SECONDS: i32 = 900;

/// Long-poll wait of each receive; an empty answer after it ends the run.
const WAIT_SECONDS: i32 = 1;

/// Re-drives an AWS dead-letter queue.
pub async fn run(args: &crate::replay::Args) -> anyhow::Result<ExitCode> {
    let (Some(dlq), Some(target)) = (args.queue_url.as_deref(), args.to.as_deref()) else {
        eprintln!("error: AWS mode needs both --queue-url and --to");
        return Ok(ExitCode::from(2));
    };
    if dlq.trim_end_matches('/') == target.trim_end_matches('/') {
        eprintln!("error: --to is the dead-letter queue itself; give the stack's EventQueueUrl");
        return Ok(ExitCode::from(2));
    }
    let Some(max_age) = parse_age(&args.max_age) else {
        eprintln!(
            "error: --max-age {:?} is not a duration like 7d, 36h, 90m or 600s",
            args.max_age
        );
        return Ok(ExitCode::from(2));
    };
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let replay = Replay {
        sqs: Client::new(&config),
        dlq: dlq.to_owned(),
        target: target.to_owned(),
        max_age,
        dry_run: args.dry_run,
        now: Utc::now(),
    };
    let summary = replay.run().await?;
    summary.print(args);
    Ok(if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `7d`, `36h`, `90m`, `600s`.
fn parse_age(s: &str) -> Option<TimeDelta> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        'd' => n.checked_mul(86_400)?,
        'h' => n.checked_mul(3_600)?,
        'm' => n.checked_mul(60)?,
        's' => n,
        _ => return None,
    };
    (seconds > 0).then(|| TimeDelta::seconds(seconds))
}

/// Counts of a run.
#[derive(Debug, Default)]
struct Summary {
    replayed: u64,
    skipped: u64,
    failed: u64,
    not_deleted: u64,
}

impl Summary {
    fn print(&self, args: &crate::replay::Args) {
        if args.dry_run {
            println!(
                "dry run: would replay {}, would skip {} (older than {}); nothing was changed",
                self.replayed, self.skipped, args.max_age
            );
            return;
        }
        println!(
            "replayed {}, skipped {} (older than {}, left in the dead-letter queue), failed {}",
            self.replayed, self.skipped, args.max_age, self.failed
        );
        if self.not_deleted > 0 {
            println!(
                "{} replayed messages could not be deleted from the dead-letter queue; a later replay sends them again, and dispatch deduplicates them",
                self.not_deleted
            );
        }
    }
}

struct Replay {
    sqs: Client,
    dlq: String,
    target: String,
    max_age: TimeDelta,
    dry_run: bool,
    now: DateTime<Utc>,
}

impl Replay {
    async fn run(&self) -> anyhow::Result<Summary> {
        let progress = self.progress().await;
        let mut summary = Summary::default();
        let mut held: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let result = self
            .drain(&progress, &mut summary, &mut held, &mut seen)
            .await;
        progress.finish_and_clear();
        // Whatever happened, make what is left visible again for the next run or for inspection.
        self.release(&held).await;
        result.map(|()| summary)
    }

    async fn drain(
        &self,
        progress: &ProgressBar,
        summary: &mut Summary,
        held: &mut Vec<String>,
        seen: &mut HashSet<String>,
    ) -> anyhow::Result<()> {
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq)
                .max_number_of_messages(10)
                .wait_time_seconds(WAIT_SECONDS)
                .visibility_timeout(HOLD_SECONDS)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", sdk_error(&e)))
                .with_context(|| {
                    format!("cannot receive from the dead-letter queue {}", self.dlq)
                })?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(());
            }
            let mut to_send = Vec::new();
            for m in messages {
                let id = m.message_id().unwrap_or_default().to_owned();
                let receipt = m.receipt_handle().unwrap_or_default().to_owned();
                if !seen.insert(id.clone()) {
                    held.push(receipt);
                    continue;
                }
                let info = Info::of(&m, self.now);
                let age = self.now - info.received_at;
                if age > self.max_age {
                    summary.skipped += 1;
                    held.push(receipt);
                    progress.suspend(|| {
                        println!(
                            "skipped       {id}  {}  age {}",
                            info.describe(),
                            human(age)
                        )
                    });
                } else if self.dry_run {
                    summary.replayed += 1;
                    held.push(receipt);
                    progress.suspend(|| {
                        println!(
                            "would replay  {id}  {}  age {}",
                            info.describe(),
                            human(age)
                        )
                    });
                } else {
                    to_send.push(m);
                }
                progress.inc(1);
            }
            if !to_send.is_empty() {
                self.send(to_send, progress, summary, held).await;
            }
        }
    }

    /// Sends up to 10 messages to the target, then deletes the sent ones from the dead-letter queue.
    async fn send(
        &self,
        messages: Vec<Message>,
        progress: &ProgressBar,
        summary: &mut Summary,
        held: &mut Vec<String>,
    ) {
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let attributes: HashMap<_, _> = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != attr::DEAD_LETTER_REASON)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_attributes(Some(attributes).filter(|a| !a.is_empty()))
                    .build()
                    .ok()
            })
            .collect();
        let sent: HashSet<usize> = match self
            .sqs
            .send_message_batch()
            .queue_url(&self.target)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                for f in out.failed() {
                    progress.suspend(|| {
                        eprintln!(
                            "failed to send message {} to the target queue: {} {}",
                            f.id(),
                            f.code(),
                            f.message().unwrap_or_default()
                        )
                    });
                }
                out.successful()
                    .iter()
                    .filter_map(|s| s.id().parse().ok())
                    .collect()
            }
            Err(e) => {
                progress.suspend(|| {
                    eprintln!(
                        "failed to send {} messages to {}: {}",
                        messages.len(),
                        self.target,
                        sdk_error(&e)
                    )
                });
                HashSet::new()
            }
        };
        let mut deletes = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            if sent.contains(&i) {
                summary.replayed += 1;
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build(),
                );
            } else {
                summary.failed += 1;
                held.push(receipt);
            }
        }
        if deletes.is_empty() {
            return;
        }
        let requested = deletes.len() as u64;
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.dlq)
            .set_entries(Some(deletes.into_iter().filter_map(Result::ok).collect()))
            .send()
            .await
            .map(|out| out.successful().len() as u64)
            .unwrap_or(0);
        summary.not_deleted += requested.saturating_sub(deleted);
    }

    /// Makes held messages visible again (best effort: otherwise they reappear after the hold).
    async fn release(&self, held: &[String]) {
        for chunk in held.chunks(10) {
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
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.dlq)
                .set_entries(Some(entries))
                .send()
                .await;
        }
    }

    /// A progress bar over the approximate queue length, drawn only on a terminal.
    async fn progress(&self) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let total = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.dlq)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .ok()
            .and_then(|out| {
                out.attributes()?
                    .get(&QueueAttributeName::ApproximateNumberOfMessages)?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {pos}/{len} dead letters {wide_bar} {eta}")
        {
            bar.set_style(style);
        }
        bar
    }
}

/// What the report says about a dead letter: never its body.
struct Info {
    received_at: DateTime<Utc>,
    topic: Option<String>,
    shop: Option<String>,
    reason: Option<String>,
}

impl Info {
    fn of(m: &Message, now: DateTime<Utc>) -> Self {
        let attributes: HashMap<String, String> = m
            .message_attributes()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
            .collect();
        let sent_at = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|ms| ms.parse().ok())
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now);
        // The envelope knows when the relay accepted the webhook (received-at, or an EventBridge
        // event's time); an unreadable message falls back to when it was sent to this queue.
        let envelope = Envelope::decode(m.body().unwrap_or_default(), &attributes, sent_at).ok();
        Self {
            received_at: envelope.as_ref().map_or(sent_at, |e| e.received_at),
            topic: envelope.as_ref().map(|e| e.metadata.topic.to_string()),
            shop: envelope.map(|e| e.metadata.shop_domain),
            reason: attributes.get(attr::DEAD_LETTER_REASON).cloned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} reason: {}",
            self.topic.as_deref().unwrap_or("(unreadable)"),
            self.shop.as_deref().unwrap_or("-"),
            self.reason.as_deref().unwrap_or("-")
        )
    }
}

/// An SDK error in one line: SQS's code and message, or the transport error's chain.
fn sdk_error<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(e) => format!(
            "{} ({})",
            e.err().message().unwrap_or("no message"),
            e.err().code().unwrap_or("no code")
        ),
        other => DisplayErrorContext(other).to_string(),
    }
}

/// `3d 4h`, `5h 12m`, `40s`.
fn human(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ages_with_a_unit() {
        assert_eq!(parse_age("7d"), Some(TimeDelta::days(7)));
        assert_eq!(parse_age("36h"), Some(TimeDelta::hours(36)));
        assert_eq!(parse_age("90m"), Some(TimeDelta::minutes(90)));
        assert_eq!(parse_age("600s"), Some(TimeDelta::seconds(600)));
        assert_eq!(parse_age("7"), None);
        assert_eq!(parse_age("0d"), None);
        assert_eq!(parse_age("d"), None);
        assert_eq!(parse_age("7w"), None);
    }

    #[test]
    fn ages_print_in_their_two_largest_units() {
        assert_eq!(human(TimeDelta::seconds(40)), "40s");
        assert_eq!(human(TimeDelta::minutes(90)), "1h 30m");
        assert_eq!(human(TimeDelta::hours(76)), "3d 4h");
    }
}
