//! The terminal form of a [`Report`]: a table per day, the reasons, the match keys, and the orders
//! that need a look.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Report, Status, Totals};

/// The report as text for a terminal (plain ASCII columns, no colour).
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} to {} ({})\n",
        report.shop, report.from, report.to, report.time_zone
    );
    let _ = writeln!(
        out,
        "{:<10}  {:>6}  {:>5}  {:>7}  {:>4}  {:>7}  {:>7}  {:>8}  value sent / ordered",
        "day", "orders", "sent", "skipped", "dead", "pending", "missing", "accuracy"
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
                Status::Sent { .. } | Status::Skipped { by_rule: true, .. } => return None,
                Status::Skipped { detail, .. } | Status::DeadLettered { detail, .. } => {
                    format!("{}: {detail}", o.status.label())
                }
                Status::Pending { reason } => format!("pending ({reason})"),
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
    out
}

fn row(out: &mut String, label: &str, t: &Totals) {
    let skipped: u64 = t.skipped.values().sum();
    let dead: u64 = t.dead_lettered.values().sum();
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
        "{label:<10}  {:>6}  {:>5}  {skipped:>7}  {dead:>4}  {:>7}  {:>7}  {accuracy:>8}  {}",
        t.orders,
        t.sent,
        t.pending,
        t.missing,
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
