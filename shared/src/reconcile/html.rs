//! The page form of a [`Report`]: one self-contained HTML file a merchant opens in a browser.
//!
//! Everything is inline: the CSS, the SVG charts, no script, no font, no image, and no `src=`,
//! `href=` or `url(` anywhere, so the page opens offline and asks nothing of the network. Every text
//! taken from the report (shop, order names, reasons, details, hints) goes through [`escape`].
//!
//! It shows, in order: tiles of the window's totals; orders against sent per day (grouped vertical
//! bars, one group per day, days without orders included); the skip and dead-letter reasons
//! (horizontal bars, skips by a conversion rule apart from conversions lost); the match-key coverage
//! of the sent events; the value sent against the value ordered per currency; Pinterest's Event
//! Quality beside the relay's coverage (when the report has it); a table of the days; and the orders
//! that need a look (all but the sent and the skipped by rule).
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
//!   `orders` (`orders.3.id`), which is the report's own order;
//! - when the element's **text** is the JSON value as it is (a count, an amount such as `50.00`, a
//!   status), there is no other attribute; when the text is a rendering (a fraction shown as a
//!   percent, a percentage with `%`, a missing value shown as `–`), the exact JSON value is in
//!   `data-value` (`<span data-metric="totals.accuracy" data-value="0.6">60.0%</span>`; `null` for
//!   a missing value).
//!
//! The same metric may appear more than once (a chart label and a table cell); each copy holds the
//! same value. Chart groups carry `data-day` (chart 1) and bars `data-reason`/`data-key`, for tests
//! that count them; the charts are `svg[data-chart="days"]`, `svg[data-chart="reasons"]` and
//! `svg[data-chart="coverage"]`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Report, STATUS_KEYS, Status, Totals};

/// Escapes text for HTML content and for a double- or single-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The report as one self-contained HTML page (see the module documentation).
pub fn html(report: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    head(&mut out, report);
    tiles(&mut out, report);
    chart_days(&mut out, report);
    chart_reasons(&mut out, report);
    chart_coverage(&mut out, &report.totals);
    values(&mut out, &report.totals);
    quality(&mut out, report);
    days_table(&mut out, report);
    orders_to_look_at(&mut out, report);
    out.push_str(
        "<footer><p>Made by <code>pinrelay reconcile --html</code>. Days are the shop's calendar \
         days; accuracy is (sent + skipped by a conversion rule) / orders.</p></footer>\n\
         </main>\n</body>\n</html>\n",
    );
    out
}

const CSS: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --paper: #ffffff;
  --soft: #f6f8fa; --orders: #8a94a6; --sent: #1a7f37; --rule: #0969da; --lost: #bc4c00;
  --dead: #cf222e; --warn: #9a6700; }
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
svg .orders { fill: var(--orders); } svg .sent { fill: var(--sent); } svg .rule { fill: var(--rule); }
svg .lost { fill: var(--lost); } svg .dead { fill: var(--dead); } svg .key { fill: var(--rule); }
svg .track { fill: var(--soft); stroke: var(--line); }
svg .muted { fill: var(--muted); }
/* Many days: the zero counts stay in the page (and the day table) but not in the way. */
svg[data-dense] text.zero { display: none; }
.legend { display: flex; gap: 16px; flex-wrap: wrap; font-size: .9rem; margin: 4px 0 8px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.swatch.orders { background: var(--orders); } .swatch.sent { background: var(--sent); }
.swatch.rule { background: var(--rule); } .swatch.lost { background: var(--lost); } .swatch.dead { background: var(--dead); }
table { border-collapse: collapse; width: 100%; font-size: .92rem; margin: 8px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.below-good td { background: #fff8c5; }
.status { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: .82rem; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.status.dead_lettered, .status.missing { color: var(--dead); } .status.pending { color: var(--warn); }
.status.skipped { color: var(--lost); } .status.good { color: var(--sent); } .status.fair, .status.needs_improvement { color: var(--warn); }
.hint { color: var(--muted); font-size: .88rem; }
td time { white-space: nowrap; }
.empty { color: var(--muted); font-style: italic; }
code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
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

fn head(out: &mut String, r: &Report) {
    let shop = escape(&r.shop);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n\
         <title>Pinterest conversions report: {shop}, {} to {}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n<main>\n<header>\n<h1>Pinterest conversions: {shop}</h1>\n\
         <p class=\"meta\">Orders from <time datetime=\"{from}\">{from}</time> to \
         <time datetime=\"{to}\">{to}</time> ({tz}) &middot; generated \
         <time datetime=\"{gen}\">{gen_text}</time> &middot; report schema v{v}</p>\n</header>\n",
        r.from,
        r.to,
        from = r.from,
        to = r.to,
        tz = escape(&r.time_zone),
        gen = r.generated_at.to_rfc3339(),
        gen_text = r.generated_at.format("%Y-%m-%d %H:%M UTC"),
        v = r.schema_version,
    );
}

/// `<span data-metric="path">text</span>`, the text being the JSON value as it is.
fn metric(path: &str, text: &str) -> String {
    format!(
        "<span data-metric=\"{}\">{}</span>",
        escape(path),
        escape(text)
    )
}

/// `<span data-metric="path" data-value="json">display</span>`.
fn metric_value(path: &str, json: &str, display: &str) -> String {
    format!(
        "<span data-metric=\"{}\" data-value=\"{}\">{}</span>",
        escape(path),
        escape(json),
        escape(display)
    )
}

/// A fraction (0 to 1) as `60.0%`, with the fraction in `data-value`.
fn fraction_metric(path: &str, fraction: Option<f64>) -> String {
    match fraction {
        Some(f) => metric_value(path, &f.to_string(), &percent(f * 100.0)),
        None => metric_value(path, "null", "–"),
    }
}

/// A percentage (0 to 100) as `18.5%`, with the number in `data-value`.
fn percentage_metric(path: &str, pct: Option<f64>) -> String {
    match pct {
        Some(p) => metric_value(path, &p.to_string(), &percent(p)),
        None => metric_value(path, "null", "–"),
    }
}

fn percent(pct: f64) -> String {
    format!("{pct:.1}%")
}

fn tile(out: &mut String, class: &str, label: &str, big: &str, note: &str) {
    let _ = writeln!(
        out,
        "<div class=\"tile {class}\"><div class=\"label\">{label}</div><div class=\"big\">{big}</div>\
         <div class=\"note\">{note}</div></div>"
    );
}

fn tiles(out: &mut String, r: &Report) {
    let t = &r.totals;
    let dead: u64 = t.dead_lettered.values().sum();
    let skipped: u64 = t.skipped.values().sum();
    out.push_str("<section aria-label=\"Totals\" class=\"tiles\">\n");
    tile(
        out,
        "",
        "Shopify orders",
        &metric("totals.orders", &t.orders.to_string()),
        &format!(
            "{skipped} skipped, {} by a conversion rule",
            metric("totals.skipped_by_rule", &t.skipped_by_rule.to_string())
        ),
    );
    tile(
        out,
        "good",
        "Sent to Pinterest",
        &metric("totals.sent", &t.sent.to_string()),
        "processed by the Conversions API",
    );
    let accuracy_class = match t.accuracy {
        Some(a) if a >= 0.98 => "good",
        Some(a) if a < 0.9 => "bad",
        Some(_) => "warn",
        None => "",
    };
    tile(
        out,
        accuracy_class,
        "Accuracy",
        &fraction_metric("totals.accuracy", t.accuracy),
        "(sent + skipped by rule) / orders",
    );
    let missing_note = if t.recoverable > 0 {
        format!(
            "recoverable: {} — run <code>pinrelay reconcile --backfill</code>",
            metric("totals.recoverable", &t.recoverable.to_string())
        )
    } else {
        format!(
            "recoverable: {}",
            metric("totals.recoverable", &t.recoverable.to_string())
        )
    };
    tile(
        out,
        if t.missing > 0 { "bad" } else { "" },
        "Missing",
        &metric("totals.missing", &t.missing.to_string()),
        &missing_note,
    );
    tile(
        out,
        if dead > 0 { "bad" } else { "" },
        "Dead-lettered",
        &dead.to_string(),
        "need a human: see the reasons below",
    );
    tile(
        out,
        if t.pending > 0 { "warn" } else { "" },
        "Pending",
        &metric("totals.pending", &t.pending.to_string()),
        "retrying, or placed moments ago",
    );
    out.push_str("</section>\n");
    if t.recoverable > 0 {
        let _ = writeln!(
            out,
            "<p class=\"callout\">{} missing order(s) are still within Pinterest's 7 days: run \
             <code>pinrelay reconcile --backfill</code> to send them through the relay.</p>",
            t.recoverable
        );
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

fn svg_open(out: &mut String, chart: &str, width: f64, height: f64, title: &str, desc: &str) {
    let _ = writeln!(
        out,
        "<svg data-chart=\"{chart}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-labelledby=\"{chart}-title {chart}-desc\" preserveAspectRatio=\"xMinYMin meet\">\
         <title id=\"{chart}-title\">{}</title><desc id=\"{chart}-desc\">{}</desc>",
        escape(title),
        escape(desc)
    );
}

fn chart_days(out: &mut String, r: &Report) {
    let n = r.days.len().max(1) as f64;
    let (left, right, top, plot_h, bottom) = (44.0, 12.0, 16.0, 220.0, 56.0);
    let plot_w = 900.0_f64.max(n * 14.0);
    let width = left + plot_w + right;
    let height = top + plot_h + bottom;
    let max = r.days.iter().map(|d| d.totals.orders).max().unwrap_or(0);
    let (axis_max, step) = nice_scale(max);
    let y = |v: u64| top + plot_h - (v as f64 / axis_max as f64) * plot_h;
    let group = plot_w / n;
    let bar = (group * 0.36).min(40.0);
    let label_size = (group * 0.32).clamp(6.0, 11.0);

    out.push_str("<section aria-labelledby=\"h-days\">\n<h2 id=\"h-days\">Orders and sent events per day</h2>\n");
    out.push_str(
        "<div class=\"legend\" aria-hidden=\"true\"><span><span class=\"swatch orders\"></span>Shopify orders</span>\
         <span><span class=\"swatch sent\"></span>sent to Pinterest</span></div>\n",
    );
    svg_open(
        out,
        "days",
        width,
        height,
        "Shopify orders and events sent to Pinterest, per day",
        &format!(
            "Grouped bars for each of the {} days from {} to {}: orders (grey) beside sent (green).",
            r.days.len(),
            r.from,
            r.to
        ),
    );
    if r.days.len() > 14 {
        // `<svg data-chart="days" ` gains `data-dense` (see the CSS).
        if let Some(at) = out.rfind("<svg data-chart=\"days\" ") {
            out.insert_str(at + "<svg data-chart=\"days\" ".len(), "data-dense=\"\" ");
        }
    }
    // Grid and y axis.
    let mut tick = 0;
    while tick <= axis_max {
        let ty = y(tick);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" class=\"muted\">{tick}</text>",
            left + plot_w,
            left - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\"/>\
         <line class=\"axis\" x1=\"{left}\" x2=\"{}\" y1=\"{0}\" y2=\"{0}\"/>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {1})\" text-anchor=\"middle\" class=\"muted\">orders</text>",
        top + plot_h,
        left + plot_w,
        top + plot_h / 2.0,
    );
    let rotate = n > 12.0;
    for (i, day) in r.days.iter().enumerate() {
        let t = &day.totals;
        let date = day.date.to_string();
        let x0 = left + group * i as f64 + (group - 2.0 * bar) / 2.0;
        let _ = write!(
            out,
            "<g class=\"day\" data-day=\"{date}\"><title>{date}: {} orders, {} sent</title>",
            t.orders, t.sent
        );
        for (class, value, x) in [("orders", t.orders, x0), ("sent", t.sent, x0 + bar)] {
            let by = y(value);
            let _ = write!(
                out,
                "<rect class=\"bar {class}\" x=\"{x:.1}\" y=\"{by:.1}\" width=\"{bar:.1}\" height=\"{:.1}\">\
                 <title>{date}: {value} {class}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"font-size:{label_size:.1}px\" \
                 class=\"count{}\" data-metric=\"days.{date}.{class}\">{value}</text>",
                top + plot_h - by,
                x + bar / 2.0,
                by - 3.0,
                if value == 0 { " zero" } else { "" },
            );
        }
        let cx = left + group * (i as f64 + 0.5);
        let ly = top + plot_h + 14.0;
        let label = day.date.format("%m-%d");
        if rotate {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-50 {cx:.1} {ly:.1})\" \
                 class=\"muted\">{label}</text>"
            );
        } else {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" class=\"muted\">{label}</text>"
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n</section>\n");
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

fn hbar_chart(
    out: &mut String,
    chart: &str,
    title: &str,
    desc: &str,
    rows: &[HBar],
    scale_max: f64,
) {
    let (label_w, bar_w, value_w, row_h) = (260.0, 560.0, 180.0, 28.0);
    let width = label_w + bar_w + value_w;
    let height = (rows.len().max(1) as f64) * row_h + 8.0;
    svg_open(out, chart, width, height, title, desc);
    if rows.is_empty() {
        let _ = write!(
            out,
            "<text x=\"0\" y=\"20\" class=\"muted\">none in this window</text>"
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = if scale_max > 0.0 {
            (row.amount / scale_max).clamp(0.0, 1.0) * bar_w
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "<g class=\"hbar\" {attr}><title>{title}</title>\
             <text x=\"{lx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"track\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"{h:.1}\" rx=\"3\"/>\
             <rect class=\"bar {class}\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"3\"/>\
             <text x=\"{vx:.1}\" y=\"{ty:.1}\">{value}</text></g>",
            attr = row.attr,
            title = escape(&row.title),
            lx = label_w - 8.0,
            ty = y + row_h * 0.6,
            label = escape(&row.label),
            h = row_h - 8.0,
            class = row.class,
            vx = label_w + bar_w + 8.0,
            value = row.value_svg,
        );
    }
    out.push_str("</svg>\n");
}

/// One horizontal bar: `attr` is raw attribute text, `value_svg` raw SVG (already escaped).
struct HBar {
    attr: String,
    title: String,
    label: String,
    class: &'static str,
    amount: f64,
    value_svg: String,
}

fn svg_metric(path: &str, text: &str, json: Option<&str>) -> String {
    let value = json.map_or_else(String::new, |j| format!(" data-value=\"{}\"", escape(j)));
    format!(
        "<tspan data-metric=\"{}\"{value}>{}</tspan>",
        escape(path),
        escape(text)
    )
}

fn chart_reasons(out: &mut String, r: &Report) {
    let t = &r.totals;
    let by_rule = rule_reasons(r);
    let mut rows = Vec::new();
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
    for (class, field, reason, n) in all {
        let what = match class {
            "rule" => "skipped by a conversion rule",
            "lost" => "skipped, conversion lost",
            _ => "dead-lettered",
        };
        rows.push(HBar {
            attr: format!("data-reason=\"{}\" data-kind=\"{class}\"", escape(reason)),
            title: format!("{reason}: {n} ({what})"),
            label: format!("{reason} ({what})"),
            class,
            amount: *n as f64,
            value_svg: svg_metric(&format!("totals.{field}.{reason}"), &n.to_string(), None),
        });
    }
    let max = rows.iter().map(|r| r.amount).fold(0.0, f64::max);
    out.push_str(
        "<section aria-labelledby=\"h-reasons\">\n<h2 id=\"h-reasons\">Why orders were not sent</h2>\n\
         <div class=\"legend\" aria-hidden=\"true\"><span><span class=\"swatch rule\"></span>skipped by a conversion rule (as intended)</span>\
         <span><span class=\"swatch lost\"></span>skipped, conversion lost</span>\
         <span><span class=\"swatch dead\"></span>dead-lettered (needs a human)</span></div>\n",
    );
    hbar_chart(
        out,
        "reasons",
        "Skip and dead-letter reasons",
        "One bar per reason with its number of orders: skips by a conversion rule, conversions lost, and dead letters.",
        &rows,
        max,
    );
    out.push_str("</section>\n");
}

fn chart_coverage(out: &mut String, t: &Totals) {
    let rows: Vec<HBar> = t
        .coverage
        .keys()
        .iter()
        .map(|(key, n)| {
            let pct = (t.sent > 0).then(|| *n as f64 * 100.0 / t.sent as f64);
            let shown = pct.map_or_else(|| "–".to_owned(), percent);
            HBar {
                attr: format!("data-key=\"{key}\""),
                title: format!("{key}: {n} of {} sent events ({shown})", t.sent),
                label: key_label(key).to_owned(),
                class: "key",
                amount: pct.unwrap_or(0.0),
                value_svg: format!(
                    "{} ({} of {})",
                    escape(&shown),
                    svg_metric(&format!("totals.coverage.{key}"), &n.to_string(), None),
                    t.sent
                ),
            }
        })
        .collect();
    out.push_str(
        "<section aria-labelledby=\"h-coverage\">\n<h2 id=\"h-coverage\">Match keys of the sent events</h2>\n\
         <p class=\"hint\">The more keys an event carries, the more of your orders Pinterest can match to an ad.</p>\n",
    );
    hbar_chart(
        out,
        "coverage",
        "Match-key coverage of the sent events",
        &format!(
            "Share of the {} sent events carrying each match key: email, phone, IP address and user agent, click id, external id.",
            t.sent
        ),
        &rows,
        100.0,
    );
    out.push_str("</section>\n");
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

fn values(out: &mut String, t: &Totals) {
    out.push_str(
        "<section aria-labelledby=\"h-value\">\n<h2 id=\"h-value\">Value sent against value ordered</h2>\n",
    );
    if t.value_ordered.is_empty() {
        out.push_str("<p class=\"empty\">No orders in the window.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th scope=\"col\">currency</th><th scope=\"col\" class=\"num\">ordered</th>\
         <th scope=\"col\" class=\"num\">sent</th><th scope=\"col\" class=\"num\">share sent</th></tr></thead><tbody>\n",
    );
    let currencies: BTreeSet<&String> = t.value_ordered.keys().chain(t.value_sent.keys()).collect();
    for c in currencies {
        let ordered = t.value_ordered.get(c);
        let sent = t.value_sent.get(c);
        let share = match (ordered.and_then(|o| o.parse::<f64>().ok()), sent) {
            (Some(o), Some(s)) if o > 0.0 => s
                .parse::<f64>()
                .map_or_else(|_| "–".to_owned(), |s| percent(s * 100.0 / o)),
            (Some(o), None) if o > 0.0 => percent(0.0),
            _ => "–".to_owned(),
        };
        let cell = |which: &str, v: Option<&String>| match v {
            Some(v) => metric(&format!("totals.{which}.{c}"), v),
            None => "0".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{share}</td></tr>",
            escape(c),
            cell("value_ordered", ordered),
            cell("value_sent", sent),
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
}

fn status_badge(path: &str, status: Option<&str>) -> String {
    match status {
        Some(s) => format!(
            "<span class=\"status {}\" data-metric=\"{}\">{}</span>",
            escape(&s.to_ascii_lowercase()),
            escape(path),
            escape(s)
        ),
        None => format!(
            "<span class=\"empty\" data-metric=\"{}\" data-value=\"null\">no score</span>",
            escape(path)
        ),
    }
}

fn quality(out: &mut String, r: &Report) {
    let Some(q) = &r.quality else {
        return;
    };
    let _ = write!(
        out,
        "<section aria-labelledby=\"h-quality\">\n<h2 id=\"h-quality\">Pinterest's Event Quality (last {})</h2>\n\
         <p>Conversions API: {} &middot; Tag: {} &middot; lookback {}</p>\n",
        escape(&q.lookback),
        status_badge("quality.conversions_api", q.conversions_api.as_deref()),
        status_badge("quality.tag", q.tag.as_deref()),
        metric("quality.lookback", &q.lookback),
    );
    if q.components.is_empty() {
        out.push_str("<p class=\"empty\">Pinterest scored no component of the checkout events.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th scope=\"col\">component</th><th scope=\"col\" class=\"num\">Pinterest API</th>\
         <th scope=\"col\" class=\"num\">Tag</th><th scope=\"col\" class=\"num\">relay</th>\
         <th scope=\"col\" class=\"num\">overlap</th><th scope=\"col\">what to do</th></tr></thead><tbody>\n",
    );
    for row in &q.components {
        let name = row.component.as_str().to_owned();
        let path = |field: &str| format!("quality.components.{name}.{field}");
        let hint = match (row.below_good, row.hint) {
            (true, Some(h)) => format!("<span class=\"hint\">{}</span>", escape(h)),
            (true, None) => "below GOOD".to_owned(),
            (false, _) if row.pinterest_api.is_none() && row.pinterest_tag.is_none() => {
                "<span class=\"hint\">not scored by Pinterest</span>".to_owned()
            }
            (false, _) => "<span class=\"status good\">GOOD</span>".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><th scope=\"row\"><code>{}</code></th><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{hint}</td></tr>",
            if row.below_good { "below-good" } else { "good" },
            escape(&name),
            percentage_metric(&path("pinterest_api"), row.pinterest_api),
            percentage_metric(&path("pinterest_tag"), row.pinterest_tag),
            percentage_metric(&path("relay"), row.relay),
            percentage_metric(&path("overlap"), row.overlap),
        );
    }
    out.push_str(
        "</tbody></table>\n<p class=\"hint\">Percentages of events carrying the component. Pinterest gives no \
         per-component status: with a FAIR or NEEDS_IMPROVEMENT source every component it reports is flagged; \
         compare the columns to find the one to blame. The relay column counts the window's sent events.</p>\n</section>\n",
    );
}

fn days_table(out: &mut String, r: &Report) {
    // One column per status: each day's cells add up to its orders.
    let heads: String = STATUS_KEYS
        .iter()
        .map(|k| {
            format!(
                "<th scope=\"col\" class=\"num\">{}</th>",
                k.replace('_', " ")
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<section aria-labelledby=\"h-daytable\">\n<h2 id=\"h-daytable\">Day by day</h2>\n<table>\
         <thead><tr><th scope=\"col\">day</th><th scope=\"col\" class=\"num\">orders</th>{heads}\
         <th scope=\"col\" class=\"num\">accuracy</th></tr></thead><tbody>"
    );
    for day in &r.days {
        let d = day.date.to_string();
        let t = &day.totals;
        let p = |field: &str| format!("days.{d}.{field}");
        let cells: String = STATUS_KEYS
            .iter()
            .map(|k| {
                let n = t.statuses.get(k).copied().unwrap_or_default();
                format!(
                    "<td class=\"num\">{}</td>",
                    metric(&p(&format!("statuses.{k}")), &n.to_string())
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\"><time datetime=\"{d}\">{d}</time></th><td class=\"num\">{}</td>{cells}<td class=\"num\">{}</td></tr>",
            metric(&p("orders"), &t.orders.to_string()),
            fraction_metric(&p("accuracy"), t.accuracy),
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
}

fn orders_to_look_at(out: &mut String, r: &Report) {
    out.push_str(
        "<section aria-labelledby=\"h-look\">\n<h2 id=\"h-look\">Orders that need a look</h2>\n",
    );
    let rows: Vec<String> = r
        .orders
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let (reason, detail) = match &o.status {
                Status::Sent { .. }
                | Status::Skipped { by_rule: true, .. }
                | Status::NotAConversion { .. } => return None,
                Status::Skipped { reason, detail, .. } | Status::DeadLettered { reason, detail } => {
                    (reason.clone(), detail.clone())
                }
                Status::Pending { reason } => (
                    reason.clone(),
                    if reason == "recent" {
                        "placed moments ago; its webhook may still be on its way".to_owned()
                    } else {
                        "handed back to the queue for another attempt".to_owned()
                    },
                ),
                Status::TestOnly { .. } => (
                    "test_only".to_owned(),
                    "sent in test mode or to a dry run only: Pinterest recorded nothing; the next delivery with test mode off sends it".to_owned(),
                ),
                Status::InDoubt { cause } => (
                    "in_doubt".to_owned(),
                    format!(
                        "{}; if Pinterest's Event History does not show it, run pinrelay replay --in-doubt",
                        cause.map_or("Pinterest may have it", |c| c.describe())
                    ),
                ),
                Status::Missing { recoverable: true } => (
                    "recoverable".to_owned(),
                    "no trace in the relay; pinrelay reconcile --backfill sends it".to_owned(),
                ),
                Status::Missing { recoverable: false } => (
                    "not recoverable".to_owned(),
                    "no trace in the relay; older than Pinterest's 7 days".to_owned(),
                ),
            };
            let label = o.status.label();
            Some(format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td><time datetime=\"{date}\">{date}</time></td>\
                 <td><span class=\"status {label}\">{}</span></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&o.name),
                metric(&format!("orders.{i}.id"), &o.id.to_string()),
                label.replace('_', "-"),
                escape(&reason),
                escape(&detail),
                date = o.date,
            ))
        })
        .collect();
    if rows.is_empty() {
        out.push_str(
            "<p class=\"empty\">None: every order was sent or skipped by a conversion rule.</p>\n",
        );
    } else {
        out.push_str(
            "<table><thead><tr><th scope=\"col\">order</th><th scope=\"col\" class=\"num\">id</th><th scope=\"col\">date</th>\
             <th scope=\"col\">status</th><th scope=\"col\">reason</th><th scope=\"col\">detail</th></tr></thead><tbody>\n",
        );
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}
