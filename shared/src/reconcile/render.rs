//! The terminal form of a [`Report`]: a table per day, the reasons, the match keys, the orders
//! that need a look, and Pinterest's Event Quality when the report has it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Quality, Report, Status, Totals};

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
    out
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
