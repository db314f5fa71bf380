//! `pinrelay replay`: re-queue dead letters, from the local relay's data dir ([`local`]) or, with
//! `--queue-url`, from an AWS dead-letter queue ([`aws`]). Both halves share [`Args`] and the one
//! rule of what a replay sends, [`Filter::replay`].
//!
//! A letter dead-lettered **in doubt** (Pinterest may have its event) is replayed only with
//! `--in-doubt`, and then as a resend of the record's generation it was dead-lettered with: dispatch
//! sends it once however often it is delivered, and a second replay or a copy sends nothing.

mod aws;
mod local;

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use pinrelay::queue::{Envelope, RelayFacts, attr};

/// Arguments of `pinrelay replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The local relay's data directory.
    #[arg(long, default_value = ".pinrelay", conflicts_with = "queue_url")]
    pub data_dir: PathBuf,
    /// AWS mode: the dead-letter queue to drain.
    #[arg(long, requires = "to")]
    pub queue_url: Option<String>,
    /// AWS mode: the queue to send the messages back to.
    #[arg(long)]
    pub to: Option<String>,
    /// AWS mode: skip dead letters older than this (Pinterest rejects events over 7 days).
    #[arg(long, default_value = "7d")]
    pub max_age: String,
    /// Replay only letters dead-lettered for this reason label (`pinterest_rejected`,
    /// `retries_exhausted`, `invalid_payload`, …).
    #[arg(long)]
    pub reason: Option<String>,
    /// Replay only the letters of this Shopify order id.
    #[arg(long)]
    pub order: Option<u64>,
    /// Replay the letters whose event is in doubt (and only those): once you have checked in
    /// Pinterest's Event History that it does not have them. Without it they stay.
    #[arg(long)]
    pub in_doubt: bool,
    /// Show what would be replayed without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which dead letters a run replays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `--reason`.
    pub reason: Option<String>,
    /// `--order`.
    pub order: Option<u64>,
    /// `--in-doubt`.
    pub in_doubt: bool,
}

/// Why a letter is left in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Its event is in doubt and `--in-doubt` was not given.
    InDoubt,
    /// Not in doubt, and `--in-doubt` asks for those only.
    NotInDoubt,
    /// Another reason than `--reason`.
    Reason,
    /// Another order than `--order` (or no order).
    Order,
}

impl Left {
    /// In words, for the run's listing.
    pub fn describe(&self) -> &'static str {
        match self {
            Left::InDoubt => "in doubt: replayed only with --in-doubt",
            Left::NotInDoubt => "not in doubt (--in-doubt replays in-doubt letters only)",
            Left::Reason => "another reason than --reason",
            Left::Order => "another order than --order",
        }
    }
}

impl From<&Args> for Filter {
    fn from(args: &Args) -> Self {
        Self {
            reason: args.reason.clone(),
            order: args.order,
            in_doubt: args.in_doubt,
        }
    }
}

impl Filter {
    /// The attributes to replay a dead letter with, or why it is left: without its
    /// `dead-letter-reason`, and an in-doubt letter's generation turned into a resend.
    pub fn replay(
        &self,
        body: &str,
        attributes: &HashMap<String, String>,
        reason: Option<&str>,
    ) -> Result<HashMap<String, String>, Left> {
        let mut relay = RelayFacts::of(attributes);
        let reason = reason.or(attributes.get(attr::DEAD_LETTER_REASON).map(String::as_str));
        let label = reason.and_then(|r| r.split(':').next()).map(str::trim);
        let in_doubt = relay.in_doubt.is_some() || label == Some("in_doubt");
        match (in_doubt, self.in_doubt) {
            (true, false) => return Err(Left::InDoubt),
            (false, true) => return Err(Left::NotInDoubt),
            _ => {}
        }
        if let Some(want) = &self.reason
            && label != Some(want.as_str())
        {
            return Err(Left::Reason);
        }
        if let Some(want) = self.order
            && order_id(body, attributes) != Some(want)
        {
            return Err(Left::Order);
        }
        let mut out = attributes.clone();
        out.remove(attr::DEAD_LETTER_REASON);
        // A letter of the format before one-record-per-event carries no generation: its record
        // says sent, and a resend of generation 0 takes it, once.
        relay.resend = match relay.in_doubt.take() {
            Some(generation) => Some(generation),
            None if in_doubt => Some(0),
            None => None,
        };
        relay.apply(&mut out);
        Ok(out)
    }
}

/// The Shopify order a letter is about: an order webhook's (or backfill's) `id`.
fn order_id(body: &str, attributes: &HashMap<String, String>) -> Option<u64> {
    let envelope = Envelope::decode(body, attributes, chrono::Utc::now()).ok()?;
    if !envelope.metadata.topic.to_string().starts_with("orders/") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: u64,
    }
    serde_json::from_slice::<Id>(&envelope.body)
        .ok()
        .map(|o| o.id)
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match (&args.queue_url, &args.to) {
        (Some(_), Some(_)) => aws::run(&args).await,
        _ => local::run(&args).await,
    }
}

/// A progress bar of `total` items with this template, drawn only on a terminal.
fn progress(total: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(reason: &str, in_doubt: Option<u32>) -> HashMap<String, String> {
        let mut a: HashMap<String, String> = [
            ("topic", "orders/create"),
            ("shop", "a.myshopify.com"),
            ("dead-letter-reason", reason),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        RelayFacts {
            source: Some("webhook".into()),
            encoding: Some("identity".into()),
            in_doubt,
            ..RelayFacts::default()
        }
        .apply(&mut a);
        a
    }

    #[test]
    fn in_doubt_letters_go_back_only_with_in_doubt_and_as_a_resend_of_their_generation() {
        let doubt = letter("in_doubt: no answer", Some(3));
        let plain = Filter::default();
        assert_eq!(
            plain.replay(r#"{"id":1}"#, &doubt, None),
            Err(Left::InDoubt)
        );
        let aimed = Filter {
            in_doubt: true,
            ..Filter::default()
        };
        let out = aimed.replay(r#"{"id":1}"#, &doubt, None).unwrap();
        assert!(!out.contains_key(attr::DEAD_LETTER_REASON));
        let relay = RelayFacts::of(&out);
        assert_eq!((relay.resend, relay.in_doubt), (Some(3), None));
        let rejected = letter("pinterest_rejected: bad currency", None);
        assert_eq!(aimed.replay("{}", &rejected, None), Err(Left::NotInDoubt));
        let out = plain.replay("{}", &rejected, None).unwrap();
        assert_eq!(RelayFacts::of(&out).resend, None);
        // A letter of the format before: `in-doubt: true`, no generation.
        let mut old = letter("in_doubt: the relay stopped", None);
        old.insert("in-doubt".into(), "true".into());
        let out = aimed.replay("{}", &old, None).unwrap();
        assert_eq!(RelayFacts::of(&out).resend, Some(0));
        assert!(!out.contains_key("in-doubt"));
    }

    #[test]
    fn reason_and_order_aim_the_replay() {
        let rejected = letter("pinterest_rejected: bad currency", None);
        let by_reason = Filter {
            reason: Some("retries_exhausted".into()),
            ..Filter::default()
        };
        assert_eq!(by_reason.replay("{}", &rejected, None), Err(Left::Reason));
        let by_order = Filter {
            order: Some(7),
            ..Filter::default()
        };
        assert_eq!(
            by_order.replay(r#"{"id":8}"#, &rejected, None),
            Err(Left::Order)
        );
        assert!(by_order.replay(r#"{"id":7}"#, &rejected, None).is_ok());
    }
}
