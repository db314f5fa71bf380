//! `pinrelay replay --queue-url DLQ_URL --to QUEUE_URL`: re-drives an AWS dead-letter queue through
//! the library's [`SqsRedrive`].
//!
//! Receives the dead letters in batches of 10, skips (and reports) those whose event is older than
//! `--max-age` (Pinterest rejects events over 7 days old), sends the others to the target queue
//! with their attributes except `dead-letter-reason`, and deletes each from the dead-letter queue
//! only after its send succeeded. A replayed event that was already sent is deduplicated by
//! dispatch, so a crash between send and delete costs nothing but a duplicate message.
//!
//! Messages it leaves in the dead-letter queue (skipped, failed, or all of them with `--dry-run`)
//! stay hidden while the run lasts, so each is seen once, and are made visible again at the end.
//! The SDK reads the standard AWS environment, `AWS_ENDPOINT_URL` included, with the
//! [`Budget::CLI`] timeouts and retries.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::ProgressBar;
use pinrelay::aws::{self, Budget};
use pinrelay::queue::sqs::{DeadLetterMessage, Redriven, SqsRedrive};
use pinrelay::queue::{Envelope, Received, attr};

use super::Args;

/// How long received dead letters stay hidden while the run lasts.
const HOLD: Duration = Duration::from_secs(900);

/// Long-poll wait of each receive; an empty answer after it ends the run.
const WAIT: Duration = Duration::from_secs(1);

/// Re-drives an AWS dead-letter queue.
pub(super) async fn run(args: &Args) -> anyhow::Result<ExitCode> {
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
            "error: --max-age {:?} is not a duration like 7d, 36h, 90m, 600s or 1d 12h",
            args.max_age
        );
        return Ok(ExitCode::from(2));
    };
    let sdk = aws::load(Budget::CLI).await;
    let replay = Replay {
        redrive: SqsRedrive::new(aws_sdk_sqs::Client::new(&sdk), dlq, target),
        dlq: dlq.to_owned(),
        max_age,
        dry_run: args.dry_run,
        filter: super::Filter::from(args),
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

/// `7d`, `36h`, `90m`, `600s`, `1d 12h`: a positive duration with units
/// ([`pinrelay::config::parse_duration`], the settings' parser).
fn parse_age(s: &str) -> Option<TimeDelta> {
    pinrelay::config::parse_duration(s, None)
        .filter(|d| !d.is_zero())
        .and_then(|d| TimeDelta::from_std(d).ok())
}

/// Counts of a run.
#[derive(Debug, Default)]
struct Summary {
    replayed: u64,
    skipped: u64,
    left: u64,
    failed: u64,
    not_deleted: u64,
}

impl Summary {
    fn print(&self, args: &Args) {
        if args.dry_run {
            println!(
                "dry run: would replay {}, would skip {} (older than {}), would leave {} (not selected); nothing was changed",
                self.replayed, self.skipped, args.max_age, self.left
            );
            return;
        }
        println!(
            "replayed {}, skipped {} (older than {}, left in the dead-letter queue), left {} (not selected), failed {}",
            self.replayed, self.skipped, args.max_age, self.left, self.failed
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
    redrive: SqsRedrive,
    dlq: String,
    max_age: TimeDelta,
    dry_run: bool,
    filter: super::Filter,
    now: DateTime<Utc>,
}

impl Replay {
    async fn run(&self) -> anyhow::Result<Summary> {
        let total = self.redrive.approximate_len().await.unwrap_or(0);
        let progress =
            super::progress(total, "{spinner} {pos}/{len} dead letters {wide_bar} {eta}");
        let mut summary = Summary::default();
        let mut held: Vec<String> = Vec::new();
        let result = self.drain(&progress, &mut summary, &mut held).await;
        progress.finish_and_clear();
        // Whatever happened, make what is left visible again for the next run or for inspection.
        self.redrive.release(&held).await;
        result.map(|()| summary)
    }

    async fn drain(
        &self,
        progress: &ProgressBar,
        summary: &mut Summary,
        held: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let letters = self.redrive.receive(HOLD, WAIT).await.with_context(|| {
                format!("cannot receive from the dead-letter queue {}", self.dlq)
            })?;
            if letters.is_empty() {
                return Ok(());
            }
            let mut to_send: Vec<(&Received, HashMap<String, String>)> = Vec::new();
            for letter in &letters {
                let m = &letter.message;
                if !seen.insert(m.id.clone()) {
                    held.push(m.receipt.clone());
                    continue;
                }
                let info = Info::of(letter, self.now);
                let age = self.now - info.received_at;
                if age > self.max_age {
                    summary.skipped += 1;
                    held.push(m.receipt.clone());
                    progress.suspend(|| {
                        println!(
                            "skipped       {}  {}  age {}",
                            m.id,
                            info.describe(),
                            human(age)
                        )
                    });
                    progress.inc(1);
                    continue;
                }
                match self.filter.replay(&m.body, &m.attributes, None) {
                    Err(left) => {
                        summary.left += 1;
                        held.push(m.receipt.clone());
                        progress.suspend(|| {
                            println!(
                                "left          {}  {}  ({})",
                                m.id,
                                info.describe(),
                                left.describe()
                            )
                        });
                    }
                    Ok(_) if self.dry_run => {
                        summary.replayed += 1;
                        held.push(m.receipt.clone());
                        progress.suspend(|| {
                            println!(
                                "would replay  {}  {}  age {}",
                                m.id,
                                info.describe(),
                                human(age)
                            )
                        });
                    }
                    Ok(attributes) => to_send.push((m, attributes)),
                }
                progress.inc(1);
            }
            if to_send.is_empty() {
                continue;
            }
            let results = self.redrive.redrive(&to_send).await;
            for ((m, _), result) in to_send.iter().zip(results) {
                match result {
                    Redriven::Replayed => summary.replayed += 1,
                    Redriven::NotDeleted => {
                        summary.replayed += 1;
                        summary.not_deleted += 1;
                    }
                    Redriven::Failed(why) => {
                        summary.failed += 1;
                        held.push(m.receipt.clone());
                        progress.suspend(|| {
                            eprintln!("failed to send message {} to the target queue: {why}", m.id)
                        });
                    }
                }
            }
        }
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
    fn of(letter: &DeadLetterMessage, now: DateTime<Utc>) -> Self {
        let m = &letter.message;
        let sent_at = letter.sent_at.unwrap_or(now);
        // The envelope knows when the relay accepted the webhook (received-at, or an EventBridge
        // event's time); an unreadable message falls back to when it was sent to this queue.
        let envelope = Envelope::decode(&m.body, &m.attributes, sent_at).ok();
        Self {
            received_at: envelope.as_ref().map_or(sent_at, |e| e.received_at),
            topic: envelope.as_ref().map(|e| e.metadata.topic.to_string()),
            shop: envelope.map(|e| e.metadata.shop_domain),
            reason: m.attributes.get(attr::DEAD_LETTER_REASON).cloned(),
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
        assert_eq!(parse_age("1d 12h"), Some(TimeDelta::hours(36)));
        assert_eq!(parse_age("7"), None);
        assert_eq!(parse_age("0d"), None);
        assert_eq!(parse_age("d"), None);
        assert_eq!(parse_age("1w"), Some(TimeDelta::days(7)));
        assert_eq!(parse_age("7x"), None);
    }

    #[test]
    fn ages_print_in_their_two_largest_units() {
        assert_eq!(human(TimeDelta::seconds(40)), "40s");
        assert_eq!(human(TimeDelta::minutes(90)), "1h 30m");
        assert_eq!(human(TimeDelta::hours(76)), "3d 4h");
    }
}
