//! The terminal form of a [`Report`]: a table per day, the reasons, the match keys, the orders
//! that need a look, and Pinterest's Event Quality when the report has it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{CustomerListRow, Quality, Report, Status, Totals};

/// The report as text for a terminal (plain ASCII columns, no colour).
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} to {} ({})\n",
        report.shop, report.from, report.to, report.time_zone
    );
    // One column per status: each day's add up to its orders.
    let _ = writeln!(
        out,
        "{:<10}  {:>6}  {:>5}  {:>4}  {:>4}  {:>4}  {:>4}  {:>5}  {:>7}  {:>7}  {:>6}  {:>8}  value sent / ordered",
        "day",
        "orders",
        "sent",
        "test",
        "rule",
        "lost",
        "dead",
        "doubt",
        "pending",
        "missing",
        "n/conv",
        "accuracy"
    );
    for day in &report.days {
        row(&mut out, &day.date.to_string(), &day.totals);
    }
    row(&mut out, "total", &report.totals);
    let t = &report.totals;
    if !t.skipped.is_empty() {
        let _ = writeln!(
            out,
            "\nskipped: {} ({} by a conversion rule)",
            counts(&t.skipped),
            t.skipped_by_rule
        );
    }
    if !t.dead_lettered.is_empty() {
        let _ = writeln!(out, "dead-lettered: {}", counts(&t.dead_lettered));
    }
    if t.sent_since_undone > 0 {
        let value: Vec<String> = t
            .value_sent_since_undone
            .iter()
            .map(|(currency, v)| format!("{currency} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "sent, and since cancelled, voided or refunded: {} ({} of the value sent; Pinterest keeps them)",
            t.sent_since_undone,
            value.join(", ")
        );
    }
    if t.sent > 0 {
        let keys: Vec<String> = t
            .coverage
            .keys()
            .iter()
            .map(|(k, n)| format!("{k} {}", percent(*n as f64 / t.sent as f64)))
            .collect();
        let _ = writeln!(
            out,
            "match keys of the {} sent: {}",
            t.sent,
            keys.join(", ")
        );
    }
    let look: Vec<String> = report
        .orders
        .iter()
        .filter_map(|o| {
            let what = match &o.status {
                Status::Sent { .. }
                | Status::Skipped { by_rule: true, .. }
                | Status::NotAConversion { .. } => return None,
                Status::Skipped { detail, .. } | Status::DeadLettered { detail, .. } => {
                    format!("{}: {detail}", o.status.label())
                }
                Status::Pending { reason } => format!("pending ({reason})"),
                Status::TestOnly { .. } => {
                    "test_only: sent in test mode or a dry run only; Pinterest recorded nothing".to_owned()
                }
                Status::InDoubt { cause } => format!(
                    "in_doubt: {}; if Event History does not show it, run pinrelay replay --in-doubt",
                    cause.map_or("Pinterest may have it", |c| c.describe())
                ),
                Status::Missing { recoverable: true } => {
                    "missing: no trace in the relay; --backfill sends it".to_owned()
                }
                Status::Missing { recoverable: false } => {
                    "missing: no trace in the relay; older than 7 days, not recoverable".to_owned()
                }
            };
            Some(format!("  {} (id {}, {}) {what}", o.name, o.id, o.date))
        })
        .collect();
    if !look.is_empty() {
        let _ = writeln!(out, "\norders to look at:\n{}", look.join("\n"));
    }
    if !report.dead_letters_without_order.is_empty() {
        let reasons: Vec<String> = report
            .dead_letters_without_order
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "\ndead letters that name no order (in the dead-letter queue): {}",
            reasons.join(", ")
        );
    }
    if let Some(q) = &report.quality {
        quality(&mut out, q);
    }
    if !report.customer_lists.is_empty() {
        customer_lists(&mut out, &report.customer_lists);
    }
    out
}

/// The customer lists: one line each, what the relay uploaded beside Pinterest's status.
fn customer_lists(out: &mut String, lists: &[CustomerListRow]) {
    let _ = writeln!(
        out,
        "
customer lists (Pinterest audiences):"
    );
    let day = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    for l in lists {
        let status = match (&l.status, &l.status_unread) {
            (Some(s), _) if s == "TOO_SMALL" => {
                "TOO_SMALL (fewer than 100 matched Pinterest users: not targetable yet)".to_owned()
            }
            (Some(s), _) => s.clone(),
            (None, Some(why)) => format!("status not read: {why}"),
            (None, None) => "status unknown".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {} list {}: {} members uploaded, {} removals pending; {status}; last sync {}, last full comparison {}",
            l.list,
            l.list_id.as_deref().unwrap_or("-"),
            l.members,
            l.pending_removals,
            day(l.last_sync),
            day(l.last_full),
        );
    }
}

/// Pinterest's Event Quality beside the relay's coverage: one line per component, then the hints
/// of the components below GOOD.
fn quality(out: &mut String, q: &Quality) {
    let status = |s: &Option<String>| s.clone().unwrap_or_else(|| "no score".to_owned());
    let _ = writeln!(
        out,
        "\nPinterest Event Quality ({}): Conversions API {}, Tag {}",
        q.lookback,
        status(&q.conversions_api),
        status(&q.tag)
    );
    if q.components.is_empty() {
        let _ = writeln!(out, "  no component scored for checkout");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<24}  {:>8}  {:>6}  {:>6}  {:>7}",
        "component", "api", "tag", "relay", "overlap"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
    for row in &q.components {
        let flag = if row.below_good { "  below GOOD" } else { "" };
        let _ = writeln!(
            out,
            "  {:<24}  {:>8}  {:>6}  {:>6}  {:>7}{flag}",
            row.component.as_str(),
            cell(row.pinterest_api),
            cell(row.pinterest_tag),
            cell(row.relay),
            cell(row.overlap)
        );
    }
    for row in q.components.iter().filter(|r| r.below_good) {
        if let Some(hint) = row.hint {
            let _ = writeln!(out, "  {}: {hint}", row.component.as_str());
        }
    }
}

fn row(out: &mut String, label: &str, t: &Totals) {
    let n = |key: &str| t.statuses.get(key).copied().unwrap_or_default();
    let accuracy = t.accuracy.map_or_else(|| "-".to_owned(), percent);
    let value: Vec<String> = t
        .value_ordered
        .iter()
        .map(|(currency, ordered)| {
            let sent = t.value_sent.get(currency).map_or("0", String::as_str);
            format!("{currency} {sent} / {ordered}")
        })
        .collect();
    let _ = writeln!(
        out,
        "{label:<10}  {:>6}  {:>5}  {:>4}  {:>4}  {:>4}  {:>4}  {:>5}  {:>7}  {:>7}  {:>6}  {accuracy:>8}  {}",
        t.orders,
        n("sent"),
        n("test_only"),
        n("skipped_by_rule"),
        n("conversion_lost"),
        n("dead_lettered"),
        n("in_doubt"),
        n("pending"),
        n("missing"),
        n("not_a_conversion"),
        value.join(", ")
    );
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}
