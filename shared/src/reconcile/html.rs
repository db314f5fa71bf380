//! The page form of a [`Report`]: one self-contained HTML file a merchant opens in a browser.
//!
//! Everything is inline: the CSS, the SVG charts, no script, no font, no image, and no `src=`,
//! `href=` or `url(` anywhere, so the page opens offline and asks nothing of the network. The page
//! is a [maud](https://maud.lambda.xyz/) template: every text spliced into it (shop, order names,
//! reasons, details, hints) is escaped by the template itself.
//!
//! It shows, in order: tiles of the window's totals; the statuses of each day's orders (one
//! stacked bar a day, one segment per status, days without orders included); the skip and
//! dead-letter reasons (horizontal bars, skips by a conversion rule apart from conversions lost);
//! the match-key coverage of the sent events; the value sent against the value ordered per
//! currency; Pinterest's Event Quality beside the relay's coverage (when the report has it); a
//! table of the days; and every order, grouped by status (the sent, the skipped by a rule and the
//! not-a-conversion groups folded in a `<details>`), with its reason, message, time, `event_id`,
//! lateness and match keys.
//!
//! # Machine-readable numbers
//!
//! Every displayed number (or amount) that the JSON form of the report also has sits in an element
//! with a `data-metric` attribute naming its place in that JSON, so a test (or a scraper) can read
//! the page back:
//!
//! - the **path** is the JSON keys joined by `.`: `totals.orders`, `totals.skipped.test_order`,
//!   `totals.coverage.email`, `totals.value_sent.USD`, `quality.conversions_api`;
//! - an **array** is entered by its element's key, not its position: a day by its `date`
//!   (`days.2026-11-30.sent`), a quality component by its `component`
//!   (`quality.components.click_id_epik.pinterest_api`), and an order by its position in
//!   `orders` (`orders.3.id`, `orders.3.status`, `orders.3.reason`), which is the report's own
//!   order;
//! - when the element's **text** is the JSON value as it is (a count, an amount such as `50.00`, a
//!   status), there is no other attribute; when the text is a rendering (a fraction shown as a
//!   percent, a percentage with `%`, a missing value shown as `–`), the exact JSON value is in
//!   `data-value` (`<span data-metric="totals.accuracy" data-value="0.6">60.0%</span>`; `null` for
//!   a missing value).
//!
//! The same metric may appear more than once (a chart label and a table cell); each copy holds the
//! same value. For tests that count them: the charts are `svg[data-chart="days"]`,
//! `svg[data-chart="reasons"]` and `svg[data-chart="coverage"]`; a day of the first is a
//! `g.day[data-day][data-orders]` holding one `rect.bar.seg[data-status][data-count]` per status
//! with orders that day (the counts add up to the day's orders); a bar of the others is a
//! `g.hbar` with `data-reason`/`data-kind` or `data-key`. An order's row is
//! `tr[data-order="{position}"][data-status="{key}"]` inside the `details[data-status="{key}"]` of
//! its status ([`Status::key`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, PreEscaped, Render, html as markup};

use super::{OrderRow, Report, STATUS_KEYS, Status, Totals};
use crate::pinterest::MatchKeys;

/// The report as one self-contained HTML page (see the module documentation).
pub fn html(report: &Report) -> String {
    let page = markup! {
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title {
                    "Pinterest conversions report: " (report.shop) ", " (report.from) " to " (report.to)
                }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    (header(report))
                    (tiles(report))
                    (chart_days(report))
                    (chart_reasons(report))
                    (chart_coverage(&report.totals))
                    (values(&report.totals))
                    (quality(report))
                    (customer_lists(report))
                    (days_table(report))
                    (orders(report))
                    (without_order(report))
                    footer {
                        p {
                            "Made by " code { "pinrelay reconcile --html" } ". Days are the shop's \
                             calendar days; accuracy is (sent + skipped by a conversion rule + not a \
                             conversion) / orders."
                        }
                    }
                }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

const CSS: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --paper: #ffffff;
  --soft: #f6f8fa; --orders: #8a94a6; --sent: #1a7f37; --rule: #0969da; --lost: #bc4c00;
  --dead: #cf222e; --warn: #9a6700;
  --s-sent: #1a7f37; --s-test_only: #1b7c83; --s-skipped_by_rule: #0969da; --s-conversion_lost: #bc4c00;
  --s-dead_lettered: #cf222e; --s-in_doubt: #8250df; --s-pending: #d4a72c; --s-missing: #6e1423;
  --s-not_a_conversion: #afb8c1; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--paper); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 16px 0; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft);
  break-inside: avoid; }
.tile .label { color: var(--muted); font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; }
.tile .big { font-size: 2rem; font-weight: 650; line-height: 1.15; font-variant-numeric: tabular-nums; }
.tile .note { font-size: .85rem; color: var(--muted); }
.tile.good .big { color: var(--sent); } .tile.bad .big { color: var(--dead); } .tile.warn .big { color: var(--warn); }
.callout { border-left: 4px solid var(--warn); background: #fff8c5; padding: 8px 12px; margin: 12px 0; }
svg { display: block; width: 100%; height: auto; max-width: 100%; font-family: inherit; }
svg text { fill: var(--ink); font-size: 11px; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .sent { fill: var(--sent); } svg .rule { fill: var(--rule); }
svg .lost { fill: var(--lost); } svg .dead { fill: var(--dead); } svg .key { fill: var(--rule); }
svg .track { fill: var(--soft); stroke: var(--line); }
svg .muted { fill: var(--muted); }
svg .seg { stroke: var(--paper); stroke-width: .5; }
.s-sent { fill: var(--s-sent); background: var(--s-sent); }
.s-test_only { fill: var(--s-test_only); background: var(--s-test_only); }
.s-skipped_by_rule { fill: var(--s-skipped_by_rule); background: var(--s-skipped_by_rule); }
.s-conversion_lost { fill: var(--s-conversion_lost); background: var(--s-conversion_lost); }
.s-dead_lettered { fill: var(--s-dead_lettered); background: var(--s-dead_lettered); }
.s-in_doubt { fill: var(--s-in_doubt); background: var(--s-in_doubt); }
.s-pending { fill: var(--s-pending); background: var(--s-pending); }
.s-missing { fill: var(--s-missing); background: var(--s-missing); }
.s-not_a_conversion { fill: var(--s-not_a_conversion); background: var(--s-not_a_conversion); }
/* Many days: the zero counts stay in the page (and the day table) but not in the way. */
svg[data-dense] text.zero { display: none; }
.legend { display: flex; gap: 6px 16px; flex-wrap: wrap; font-size: .9rem; margin: 4px 0 8px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.swatch.sent { background: var(--sent); }
.swatch.rule { background: var(--rule); } .swatch.lost { background: var(--lost); } .swatch.dead { background: var(--dead); }
table { border-collapse: collapse; width: 100%; font-size: .92rem; margin: 8px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
/* Column heads wrap between words; a reason label never breaks (or is cut) inside itself. */
thead th.num { white-space: normal; }
td.reason code, th time, td time { white-space: nowrap; }
.scroll { overflow-x: auto; }
tr.below-good td { background: #fff8c5; }
.status { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: .82rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.status.dead_lettered, .status.missing { color: var(--dead); } .status.pending, .status.in_doubt { color: var(--warn); }
.status.skipped { color: var(--lost); } .status.good, .status.sent { color: var(--sent); }
.status.fair, .status.needs_improvement, .status.test_only { color: var(--warn); }
.hint { color: var(--muted); font-size: .88rem; }
.empty { color: var(--muted); font-style: italic; }
code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
details.group { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; padding: 0 12px; }
details.group > summary { cursor: pointer; padding: 8px 0; font-weight: 600; }
details.group > summary .hint { font-weight: normal; }
details.group[open] > summary { border-bottom: 1px solid var(--line); }
footer { margin-top: 32px; color: var(--muted); font-size: .85rem; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  section, .tile, tr, svg { break-inside: avoid; }
  .tile, th, tr.below-good td, .callout { background: none !important; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn header(r: &Report) -> Markup {
    let generated = r.generated_at.to_rfc3339();
    markup! {
        header {
            h1 { "Pinterest conversions: " (r.shop) }
            p.meta {
                "Orders from " time datetime=(r.from) { (r.from) } " to "
                time datetime=(r.to) { (r.to) } " (" (r.time_zone) ") · generated "
                time datetime=(generated) { (r.generated_at.format("%Y-%m-%d %H:%M UTC")) }
                " · report schema v" (r.schema_version)
            }
        }
    }
}

/// `<span data-metric="path">text</span>`, the text being the JSON value as it is.
fn metric(path: &str, text: impl Render) -> Markup {
    markup! { span data-metric=(path) { (text) } }
}

/// `<span data-metric="path" data-value="json">display</span>`.
fn metric_value(path: &str, json: &str, display: &str) -> Markup {
    markup! { span data-metric=(path) data-value=(json) { (display) } }
}

/// A fraction (0 to 1) as `60.0%`, with the fraction in `data-value`.
fn fraction_metric(path: &str, fraction: Option<f64>) -> Markup {
    match fraction {
        Some(f) => metric_value(path, &f.to_string(), &percent(f * 100.0)),
        None => metric_value(path, "null", "–"),
    }
}

/// A percentage (0 to 100) as `18.5%`, with the number in `data-value`.
fn percentage_metric(path: &str, pct: Option<f64>) -> Markup {
    match pct {
        Some(p) => metric_value(path, &p.to_string(), &percent(p)),
        None => metric_value(path, "null", "–"),
    }
}

fn percent(pct: f64) -> String {
    format!("{pct:.1}%")
}

/// A coordinate with one decimal.
fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn tile(class: &str, label: &str, big: Markup, note: Markup) -> Markup {
    markup! {
        div class={ "tile " (class) } {
            div.label { (label) }
            div.big { (big) }
            div.note { (note) }
        }
    }
}

fn tiles(r: &Report) -> Markup {
    let t = &r.totals;
    let dead: u64 = t.dead_lettered.values().sum();
    let skipped: u64 = t.skipped.values().sum();
    let accuracy_class = match t.accuracy {
        Some(a) if a >= 0.98 => "good",
        Some(a) if a < 0.9 => "bad",
        Some(_) => "warn",
        None => "",
    };
    markup! {
        section.tiles aria-label="Totals" {
            (tile("", "Shopify orders", metric("totals.orders", t.orders), markup! {
                (skipped) " skipped, " (metric("totals.skipped_by_rule", t.skipped_by_rule))
                " by a conversion rule"
            }))
            (tile("good", "Sent to Pinterest", metric("totals.sent", t.sent),
                markup! { "processed by the Conversions API" }))
            (tile(accuracy_class, "Accuracy", fraction_metric("totals.accuracy", t.accuracy),
                markup! { "(sent + skipped by rule + not a conversion) / orders" }))
            (tile(if t.missing > 0 { "bad" } else { "" }, "Missing",
                metric("totals.missing", t.missing), markup! {
                    "recoverable: " (metric("totals.recoverable", t.recoverable))
                    @if t.recoverable > 0 {
                        " — run " code { "pinrelay reconcile --backfill" }
                    }
                }))
            (tile(if dead > 0 { "bad" } else { "" }, "Dead-lettered", markup! { (dead) },
                markup! { "need a human: see the reasons below" }))
            (tile(if t.pending > 0 { "warn" } else { "" }, "Pending",
                metric("totals.pending", t.pending), markup! { "retrying, or placed moments ago" }))
        }
        @if t.recoverable > 0 {
            p.callout {
                (t.recoverable) " missing order(s) are still within Pinterest's 7 days: run "
                code { "pinrelay reconcile --backfill" } " to send them through the relay."
            }
        }
    }
}

/// A round axis maximum and step for counts up to `max`.
fn nice_scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let rough = max.div_ceil(5);
    let mut magnitude = 1;
    while magnitude * 10 <= rough {
        magnitude *= 10;
    }
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10 * magnitude);
    (max.div_ceil(step) * step, step)
}

/// A status key in words: `skipped_by_rule` is "skipped by a rule".
fn status_words(key: &str) -> &'static str {
    match key {
        "sent" => "sent",
        "test_only" => "test only",
        "skipped_by_rule" => "skipped by a rule",
        "conversion_lost" => "conversion lost",
        "dead_lettered" => "dead-lettered",
        "in_doubt" => "in doubt",
        "pending" => "pending",
        "missing" => "missing",
        "not_a_conversion" => "not a conversion",
        _ => "other",
    }
}

/// The opening of a chart: `<svg data-chart role="img">` with its title and description.
fn svg(chart: &str, size: (f64, f64), dense: bool, text: (&str, &str), body: Markup) -> Markup {
    let (title, desc) = text;
    let title_id = format!("{chart}-title");
    let desc_id = format!("{chart}-desc");
    markup! {
        svg data-chart=(chart) data-dense[dense] viewBox={ "0 0 " (size.0) " " (size.1) } role="img"
            aria-labelledby={ (title_id) " " (desc_id) } preserveAspectRatio="xMinYMin meet" {
            title id=(title_id) { (title) }
            desc id=(desc_id) { (desc) }
            (body)
        }
    }
}

fn chart_days(r: &Report) -> Markup {
    let n = r.days.len().max(1) as f64;
    let (left, right, top, plot_h, bottom) = (44.0, 12.0, 18.0, 220.0, 56.0);
    let plot_w = 900.0_f64.max(n * 14.0);
    let width = left + plot_w + right;
    let height = top + plot_h + bottom;
    let max = r.days.iter().map(|d| d.totals.orders).max().unwrap_or(0);
    let (axis_max, step) = nice_scale(max);
    let scale = |v: u64| (v as f64 / axis_max as f64) * plot_h;
    let base = top + plot_h;
    let group = plot_w / n;
    let bar = (group * 0.6).min(48.0);
    let label_size = (group * 0.3).clamp(6.0, 11.0);
    let ticks: Vec<u64> = (0..=axis_max).step_by(step.max(1) as usize).collect();
    let present: Vec<&str> = STATUS_KEYS
        .iter()
        .copied()
        .filter(|k| r.totals.statuses.get(k).copied().unwrap_or_default() > 0)
        .collect();
    let rotate = n > 12.0;
    let body = markup! {
        @for tick in &ticks {
            @let ty = base - scale(*tick);
            line.grid x1=(left) x2=(left + plot_w) y1=(f1(ty)) y2=(f1(ty)) {}
            text.muted x=(left - 6.0) y=(f1(ty + 4.0)) text-anchor="end" { (tick) }
        }
        line.axis x1=(left) x2=(left) y1=(top) y2=(base) {}
        line.axis x1=(left) x2=(left + plot_w) y1=(base) y2=(base) {}
        text.muted x="12" y=(top + plot_h / 2.0) transform={ "rotate(-90 12 " (top + plot_h / 2.0) ")" }
            text-anchor="middle" { "orders" }
        @for (i, day) in r.days.iter().enumerate() {
            @let t = &day.totals;
            @let date = day.date.to_string();
            @let x = left + group * i as f64 + (group - bar) / 2.0;
            @let cx = left + group * (i as f64 + 0.5);
            @let ly = base + 14.0;
            g.day data-day=(date) data-orders=(t.orders) {
                title {
                    (date) ": " (t.orders) " orders"
                    @for key in STATUS_KEYS {
                        @let count = t.statuses.get(key).copied().unwrap_or_default();
                        @if count > 0 { ", " (count) " " (status_words(key)) }
                    }
                }
                @let (segments, bar_top) = stack(t, base, scale);
                @for (key, count, y, h) in segments {
                    rect class={ "bar seg s-" (key) } data-status=(key) data-count=(count)
                        x=(f1(x)) y=(f1(y)) width=(f1(bar)) height=(f1(h)) {
                        title { (date) ": " (count) " " (status_words(key)) }
                    }
                }
                text class=(if t.orders == 0 { "count zero" } else { "count" }) x=(f1(cx))
                    y=(f1(bar_top - 4.0)) text-anchor="middle" style={ "font-size:" (f1(label_size)) "px" } {
                    tspan data-metric={ "days." (date) ".sent" } { (t.sent) }
                    "/"
                    tspan data-metric={ "days." (date) ".orders" } { (t.orders) }
                }
                @if rotate {
                    text.muted x=(f1(cx)) y=(f1(ly)) text-anchor="end"
                        transform={ "rotate(-50 " (f1(cx)) " " (f1(ly)) ")" } {
                        (day.date.format("%m-%d"))
                    }
                } @else {
                    text.muted x=(f1(cx)) y=(f1(ly)) text-anchor="middle" { (day.date.format("%m-%d")) }
                }
            }
        }
    };
    markup! {
        section aria-labelledby="h-days" {
            h2 #h-days { "What became of each day's orders" }
            div.legend aria-hidden="true" {
                @for key in &present {
                    span { span class={ "swatch s-" (key) } {} (status_words(key)) }
                }
                span.hint { "above each bar: sent / orders" }
            }
            (svg("days", (width, height), r.days.len() > 14, (
                "The orders of each day by status",
                &format!(
                    "One stacked bar for each of the {} days from {} to {}: a segment per status \
                     (sent at the bottom), the bar's height the day's orders.",
                    r.days.len(), r.from, r.to
                ),
            ), body))
        }
    }
}

/// A day's segments, bottom up in [`STATUS_KEYS`] order (statuses without orders left out): the
/// status, its count, the segment's top and height; and the top of the bar.
fn stack(
    t: &Totals,
    base: f64,
    scale: impl Fn(u64) -> f64,
) -> (Vec<(&'static str, u64, f64, f64)>, f64) {
    let mut y = base;
    let mut segments = Vec::new();
    for key in STATUS_KEYS {
        let count = t.statuses.get(key).copied().unwrap_or_default();
        if count > 0 {
            let h = scale(count);
            y -= h;
            segments.push((key, count, y, h));
        }
    }
    (segments, y)
}

/// Which skip reasons were by a conversion rule (from the orders: a reason is by rule when its
/// orders were skipped by a rule).
fn rule_reasons(r: &Report) -> BTreeSet<&str> {
    r.orders
        .iter()
        .filter_map(|o| match &o.status {
            Status::Skipped {
                reason,
                by_rule: true,
                ..
            } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

/// One horizontal bar: its label on a line of its own above the bar (never clipped), the bar,
/// then its value.
struct HBar {
    reason: Option<String>,
    kind: Option<&'static str>,
    key: Option<&'static str>,
    title: String,
    label: String,
    class: &'static str,
    amount: f64,
    value: Markup,
}

fn hbar_chart(chart: &str, text: (&str, &str), rows: &[HBar], scale_max: f64) -> Markup {
    let (bar_w, value_w, row_h) = (720.0, 280.0, 44.0);
    let width = bar_w + value_w;
    let height = (rows.len().max(1) as f64) * row_h + 4.0;
    let body = markup! {
        @if rows.is_empty() {
            text.muted x="0" y="20" { "none in this window" }
        }
        @for (i, row) in rows.iter().enumerate() {
            @let y = 2.0 + i as f64 * row_h;
            @let w = if scale_max > 0.0 { (row.amount / scale_max).clamp(0.0, 1.0) * bar_w } else { 0.0 };
            g.hbar data-reason=[row.reason.as_deref()] data-kind=[row.kind] data-key=[row.key] {
                title { (row.title) }
                text.label x="0" y=(f1(y + 13.0)) { (row.label) }
                rect.track x="0" y=(f1(y + 18.0)) width=(bar_w) height="18" rx="3" {}
                rect class={ "bar " (row.class) } x="0" y=(f1(y + 18.0)) width=(f1(w)) height="18" rx="3" {}
                text x=(bar_w + 8.0) y=(f1(y + 31.0)) { (row.value) }
            }
        }
    };
    svg(chart, (width, height), false, text, body)
}

fn svg_metric(path: &str, text: impl Render) -> Markup {
    markup! { tspan data-metric=(path) { (text) } }
}

fn chart_reasons(r: &Report) -> Markup {
    let t = &r.totals;
    let by_rule = rule_reasons(r);
    let skips = t.skipped.iter().map(|(reason, n)| {
        let kind = if by_rule.contains(reason.as_str()) {
            "rule"
        } else {
            "lost"
        };
        (kind, "skipped", reason, n)
    });
    let dead = t
        .dead_lettered
        .iter()
        .map(|(reason, n)| ("dead", "dead_lettered", reason, n));
    let mut all: Vec<_> = skips.chain(dead).collect();
    // By rule first, then lost, then dead letters; each by reason.
    all.sort_by_key(|(kind, _, reason, _)| {
        (
            ["rule", "lost", "dead"].iter().position(|k| k == kind),
            *reason,
        )
    });
    let rows: Vec<HBar> = all
        .into_iter()
        .map(|(class, field, reason, n)| {
            let what = match class {
                "rule" => "skipped by a conversion rule",
                "lost" => "skipped, conversion lost",
                _ => "dead-lettered",
            };
            HBar {
                reason: Some(reason.clone()),
                kind: Some(class),
                key: None,
                title: format!("{reason}: {n} ({what})"),
                label: format!("{reason} — {what}"),
                class,
                amount: *n as f64,
                value: svg_metric(&format!("totals.{field}.{reason}"), n),
            }
        })
        .collect();
    let max = rows.iter().map(|r| r.amount).fold(0.0, f64::max);
    markup! {
        section aria-labelledby="h-reasons" {
            h2 #h-reasons { "Why orders were not sent" }
            div.legend aria-hidden="true" {
                span { span.swatch.rule {} "skipped by a conversion rule (as intended)" }
                span { span.swatch.lost {} "skipped, conversion lost" }
                span { span.swatch.dead {} "dead-lettered (needs a human)" }
            }
            (hbar_chart("reasons", (
                "Skip and dead-letter reasons",
                "One bar per reason with its number of orders: skips by a conversion rule, \
                 conversions lost, and dead letters.",
            ), &rows, max))
        }
    }
}

fn chart_coverage(t: &Totals) -> Markup {
    let rows: Vec<HBar> = t
        .coverage
        .keys()
        .iter()
        .map(|(key, n)| {
            let pct = (t.sent > 0).then(|| *n as f64 * 100.0 / t.sent as f64);
            let shown = pct.map_or_else(|| "–".to_owned(), percent);
            HBar {
                reason: None,
                kind: None,
                key: Some(key),
                title: format!("{key}: {n} of {} sent events ({shown})", t.sent),
                label: key_label(key).to_owned(),
                class: "key",
                amount: pct.unwrap_or(0.0),
                value: markup! {
                    (shown) " (" (svg_metric(&format!("totals.coverage.{key}"), n)) " of " (t.sent) ")"
                },
            }
        })
        .collect();
    markup! {
        section aria-labelledby="h-coverage" {
            h2 #h-coverage { "Match keys of the sent events" }
            p.hint { "The more keys an event carries, the more of your orders Pinterest can match to an ad." }
            (hbar_chart("coverage", (
                "Match-key coverage of the sent events",
                &format!(
                    "Share of the {} sent events carrying each match key: email, phone, IP address \
                     and user agent, click id, external id.",
                    t.sent
                ),
            ), &rows, 100.0))
        }
    }
}

fn key_label(key: &str) -> &'static str {
    match key {
        "email" => "email (em)",
        "phone" => "phone (ph)",
        "ip_ua" => "IP address + user agent",
        "click_id" => "click id (epik)",
        "external_id" => "external id (customer)",
        _ => "other",
    }
}

fn values(t: &Totals) -> Markup {
    let currencies: BTreeSet<&String> = t.value_ordered.keys().chain(t.value_sent.keys()).collect();
    let cell = |which: &str, c: &str, v: Option<&String>| match v {
        Some(v) => metric(&format!("totals.{which}.{c}"), v),
        None => markup! { "0" },
    };
    markup! {
        section aria-labelledby="h-value" {
            h2 #h-value { "Value sent against value ordered" }
            @if t.value_ordered.is_empty() {
                p.empty { "No orders in the window." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "currency" }
                        th.num scope="col" { "ordered" }
                        th.num scope="col" { "sent" }
                        th.num scope="col" { "share sent" }
                    } }
                    tbody {
                        @for c in currencies {
                            @let ordered = t.value_ordered.get(c);
                            @let sent = t.value_sent.get(c);
                            tr {
                                th scope="row" { (c) }
                                td.num { (cell("value_ordered", c, ordered)) }
                                td.num { (cell("value_sent", c, sent)) }
                                td.num { (share(ordered, sent)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The value sent as a share of the value ordered, `–` when it has no meaning.
fn share(ordered: Option<&String>, sent: Option<&String>) -> String {
    match (ordered.and_then(|o| o.parse::<f64>().ok()), sent) {
        (Some(o), Some(s)) if o > 0.0 => s
            .parse::<f64>()
            .map_or_else(|_| "–".to_owned(), |s| percent(s * 100.0 / o)),
        (Some(o), None) if o > 0.0 => percent(0.0),
        _ => "–".to_owned(),
    }
}

fn status_badge(path: &str, status: Option<&str>) -> Markup {
    markup! {
        @match status {
            Some(s) => span class={ "status " (s.to_ascii_lowercase()) } data-metric=(path) { (s) },
            None => span.empty data-metric=(path) data-value="null" { "no score" },
        }
    }
}

fn quality(r: &Report) -> Markup {
    let Some(q) = &r.quality else {
        return markup! {};
    };
    markup! {
        section aria-labelledby="h-quality" {
            h2 #h-quality { "Pinterest's Event Quality (last " (q.lookback) ")" }
            p {
                "Conversions API: " (status_badge("quality.conversions_api", q.conversions_api.as_deref()))
                " · Tag: " (status_badge("quality.tag", q.tag.as_deref()))
                " · lookback " (metric("quality.lookback", &q.lookback))
            }
            @if q.components.is_empty() {
                p.empty { "Pinterest scored no component of the checkout events." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "component" }
                        th.num scope="col" { "Pinterest API" }
                        th.num scope="col" { "Tag" }
                        th.num scope="col" { "relay" }
                        th.num scope="col" { "overlap" }
                        th scope="col" { "what to do" }
                    } }
                    tbody {
                        @for row in &q.components {
                            @let name = row.component.as_str();
                            @let path = |field: &str| format!("quality.components.{name}.{field}");
                            tr class=(if row.below_good { "below-good" } else { "good" }) {
                                th scope="row" { code { (name) } }
                                td.num { (percentage_metric(&path("pinterest_api"), row.pinterest_api)) }
                                td.num { (percentage_metric(&path("pinterest_tag"), row.pinterest_tag)) }
                                td.num { (percentage_metric(&path("relay"), row.relay)) }
                                td.num { (percentage_metric(&path("overlap"), row.overlap)) }
                                td {
                                    @match (row.below_good, row.hint) {
                                        (true, Some(h)) => span.hint { (h) },
                                        (true, None) => "below GOOD",
                                        (false, _) if row.pinterest_api.is_none() && row.pinterest_tag.is_none() => {
                                            span.hint { "not scored by Pinterest" }
                                        },
                                        (false, _) => span.status.good { "GOOD" },
                                    }
                                }
                            }
                        }
                    }
                }
                p.hint {
                    "Percentages of events carrying the component. Pinterest gives no per-component \
                     status: with a FAIR or NEEDS_IMPROVEMENT source every component it reports is \
                     flagged; compare the columns to find the one to blame. The relay column counts \
                     the window's sent events."
                }
            }
        }
    }
}

fn customer_lists(r: &Report) -> Markup {
    if r.customer_lists.is_empty() {
        return markup! {};
    }
    let day = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    markup! {
        section aria-labelledby="h-lists" {
            h2 #h-lists { "Customer lists (Pinterest audiences)" }
            table {
                thead { tr {
                    th scope="col" { "list" }
                    th scope="col" { "Pinterest list" }
                    th scope="col" { "status" }
                    th.num scope="col" { "members uploaded" }
                    th.num scope="col" { "removals pending" }
                    th scope="col" { "last sync" }
                    th scope="col" { "last full comparison" }
                } }
                tbody {
                    @for l in &r.customer_lists {
                        @let path = |field: &str| format!("customer_lists.{}.{field}", l.list);
                        tr {
                            th scope="row" { (l.list) }
                            td { code { (l.list_id.as_deref().unwrap_or("–")) } }
                            td {
                                @match (&l.status, &l.status_unread) {
                                    (Some(s), _) => span class={ "status " (s.to_ascii_lowercase()) } data-metric=(path("status")) { (s) },
                                    (None, why) => span.empty data-metric=(path("status")) data-value="null" title=[why] { "not read" },
                                }
                            }
                            td.num { span data-metric=(path("members")) { (l.members) } }
                            td.num { span data-metric=(path("pending_removals")) { (l.pending_removals) } }
                            td { (day(l.last_sync)) }
                            td { (day(l.last_full)) }
                        }
                    }
                }
            }
            p.hint {
                "Members are the hashed emails the relay uploaded and has not removed: consenting                  customers only. Pinterest does not say how many it matched; TOO_SMALL means fewer                  than 100, and the audience cannot be targeted yet."
            }
        }
    }
}

fn days_table(r: &Report) -> Markup {
    // One column per status: each day's cells add up to its orders.
    markup! {
        section aria-labelledby="h-daytable" {
            h2 #h-daytable { "Day by day" }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "day" }
                    th.num scope="col" { "orders" }
                    @for key in STATUS_KEYS { th.num scope="col" { (key.replace('_', " ")) } }
                    th.num scope="col" { "accuracy" }
                } }
                tbody {
                    @for day in &r.days {
                        @let d = day.date.to_string();
                        @let t = &day.totals;
                        tr {
                            th scope="row" { time datetime=(d) { (d) } }
                            td.num { (metric(&format!("days.{d}.orders"), t.orders)) }
                            @for key in STATUS_KEYS {
                                td.num {
                                    (metric(&format!("days.{d}.statuses.{key}"),
                                        t.statuses.get(key).copied().unwrap_or_default()))
                                }
                            }
                            td.num { (fraction_metric(&format!("days.{d}.accuracy"), t.accuracy)) }
                        }
                    }
                }
            } }
        }
    }
}

/// The groups that are as intended: folded, to be opened when wanted.
fn folded(key: &str) -> bool {
    matches!(key, "sent" | "skipped_by_rule" | "not_a_conversion")
}

/// What a group of orders means, in a few words.
fn group_hint(key: &str) -> &'static str {
    match key {
        "sent" => "Pinterest processed their checkout events",
        "test_only" => {
            "sent in test mode or to a dry run only: Pinterest recorded nothing; the next delivery \
             with test mode off sends them"
        }
        "skipped_by_rule" => "not sent, as a conversion rule says (as intended)",
        "conversion_lost" => "not sent, and the conversion is lost",
        "dead_lettered" => "in the dead-letter queue: a human must look",
        "in_doubt" => {
            "Pinterest may have them: if its Event History does not, run pinrelay replay --in-doubt"
        }
        "pending" => "being sent, retrying, or placed moments ago",
        "missing" => "no trace in the relay: the webhook never arrived",
        "not_a_conversion" => "never seen, and the conversion rules would skip them anyway",
        _ => "",
    }
}

/// An order's reason (label, with its JSON field when it has one) and its message.
fn reason_and_message(o: &OrderRow) -> (Option<(String, Option<&'static str>)>, String) {
    match &o.status {
        Status::Sent { .. } => (None, String::new()),
        Status::Skipped { reason, detail, .. }
        | Status::DeadLettered { reason, detail }
        | Status::NotAConversion { reason, detail } => {
            (Some((reason.clone(), Some("reason"))), detail.clone())
        }
        Status::Pending { reason } => (
            Some((reason.clone(), Some("reason"))),
            match reason.as_str() {
                "recent" => "placed moments ago; its webhook may still be on its way",
                "sending" => "being sent now",
                _ => "handed back to the queue for another attempt",
            }
            .to_owned(),
        ),
        Status::TestOnly { .. } => (
            None,
            "sent in test mode or to a dry run only: Pinterest recorded nothing".to_owned(),
        ),
        Status::InDoubt { cause } => (
            cause.map(|c| {
                let label = match c {
                    crate::idempotency::DoubtCause::NoAnswer => "no_answer",
                    crate::idempotency::DoubtCause::HolderStopped => "holder_stopped",
                };
                (label.to_owned(), Some("cause"))
            }),
            format!(
                "{}; if Pinterest's Event History does not show it, run pinrelay replay --in-doubt",
                cause.map_or("Pinterest may have it", |c| c.describe())
            ),
        ),
        Status::Missing { recoverable: true } => (
            Some(("recoverable".to_owned(), None)),
            "no trace in the relay; pinrelay reconcile --backfill sends it".to_owned(),
        ),
        Status::Missing { recoverable: false } => (
            Some(("not recoverable".to_owned(), None)),
            "no trace in the relay; older than Pinterest's 7 days".to_owned(),
        ),
    }
}

/// An instant in the shop's time zone (UTC when the report's zone does not parse).
fn when(at: DateTime<Utc>, tz: Option<Tz>) -> Markup {
    let text = match tz {
        Some(tz) => at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    };
    markup! { time datetime=(at.to_rfc3339()) { (text) } }
}

fn match_keys(keys: &MatchKeys) -> String {
    let present: Vec<&str> = [
        (keys.email, "email"),
        (keys.phone, "phone"),
        (keys.ip_ua, "IP + user agent"),
        (keys.click_id, "click id"),
        (keys.external_id, "external id"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if present.is_empty() {
        "none".to_owned()
    } else {
        present.join(", ")
    }
}

fn order_row(i: usize, o: &OrderRow, tz: Option<Tz>) -> Markup {
    let key = o.status.key();
    let label = o.status.label();
    let path = |field: &str| format!("orders.{i}.{field}");
    let id = markup! {
        th scope="row" { (o.name) }
        td.num { (metric(&path("id"), o.id)) }
        td { span class={ "status " (label) } data-metric=(path("status")) { (label) } }
    };
    let event_id = |e: &Option<String>| match e {
        Some(e) => markup! { code data-metric=(path("event_id")) { (e) } },
        None => markup! { "–" },
    };
    match &o.status {
        Status::Sent {
            sent_at,
            event_id: e,
            match_keys: keys,
            value_sent,
            currency_sent,
            late,
        } => markup! {
            tr data-order=(i) data-status=(key) {
                (id)
                td { @match sent_at { Some(at) => (when(*at, tz)), None => "–" } }
                td { (event_id(e)) }
                td { @if *late { "late (counted as offline)" } @else { "on time" } }
                td { (match_keys(keys)) }
                td.num {
                    @match value_sent {
                        Some(v) => {
                            (metric(&path("value_sent"), v)) " "
                            (currency_sent.as_deref().unwrap_or(&o.currency))
                        },
                        None => "–",
                    }
                }
            }
        },
        Status::TestOnly {
            sent_at,
            event_id: e,
        } => markup! {
            tr data-order=(i) data-status=(key) {
                (id)
                td { @match sent_at { Some(at) => (when(*at, tz)), None => "–" } }
                td { (event_id(e)) }
                td { "–" }
                td { "–" }
                td.num { (metric(&path("value_ordered"), &o.value_ordered)) " " (o.currency) }
            }
        },
        _ => {
            let (reason, message) = reason_and_message(o);
            markup! {
                tr data-order=(i) data-status=(key) {
                    (id)
                    td { (when(o.created_at, tz)) }
                    td.reason {
                        @match reason {
                            Some((text, Some(field))) => code data-metric=(path(field)) { (text) },
                            Some((text, None)) => code { (text) },
                            None => "–",
                        }
                    }
                    td { (message) }
                    td.num { (metric(&path("value_ordered"), &o.value_ordered)) " " (o.currency) }
                }
            }
        }
    }
}

fn orders(r: &Report) -> Markup {
    let tz: Option<Tz> = r.time_zone.parse().ok();
    let to_look_at = r.orders.iter().filter(|o| !folded(o.status.key())).count();
    markup! {
        section aria-labelledby="h-orders" {
            h2 #h-orders { "Every order, by status" }
            @if r.orders.is_empty() {
                p.empty { "No orders in the window." }
            } @else if to_look_at == 0 {
                p { "No order needs a look: every order was sent, skipped by a conversion rule, or is not a conversion." }
            } @else {
                p { "Orders that need a look: " strong { (to_look_at) } " (the groups open below)." }
            }
            @for key in STATUS_KEYS {
                @let rows: Vec<(usize, &OrderRow)> =
                    r.orders.iter().enumerate().filter(|(_, o)| o.status.key() == key).collect();
                @if !rows.is_empty() {
                    details.group data-status=(key) open[!folded(key)] {
                        summary {
                            span class={ "swatch s-" (key) } {}
                            (status_words(key)) ": "
                            (metric(&format!("totals.statuses.{key}"),
                                r.totals.statuses.get(key).copied().unwrap_or_default()))
                            " " span.hint { "— " (group_hint(key)) }
                        }
                        table {
                            thead { tr {
                                th scope="col" { "order" }
                                th.num scope="col" { "id" }
                                th scope="col" { "status" }
                                @if matches!(key, "sent" | "test_only") {
                                    th scope="col" { "sent at" }
                                    th scope="col" { "event id" }
                                    th scope="col" { "late" }
                                    th scope="col" { "match keys" }
                                    th.num scope="col" { @if key == "sent" { "value sent" } @else { "value ordered" } }
                                } @else {
                                    th scope="col" { "placed" }
                                    th scope="col" { "reason" }
                                    th scope="col" { "what it means" }
                                    th.num scope="col" { "value ordered" }
                                }
                            } }
                            tbody {
                                @for (i, o) in rows { (order_row(i, o, tz)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn without_order(r: &Report) -> Markup {
    if r.dead_letters_without_order.is_empty() {
        return markup! {};
    }
    markup! {
        section aria-labelledby="h-noorder" {
            h2 #h-noorder { "Dead letters that name no order" }
            p.hint { "Undecodable or invalid messages, in the dead-letter queue with their reason." }
            table {
                thead { tr { th scope="col" { "reason" } th.num scope="col" { "messages" } } }
                tbody {
                    @for (reason, n) in &r.dead_letters_without_order {
                        tr {
                            th scope="row" { code { (reason) } }
                            td.num { (metric(&format!("dead_letters_without_order.{reason}"), n)) }
                        }
                    }
                }
            }
        }
    }
}
