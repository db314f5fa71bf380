//! The reconcile page ([`pinrelay::reconcile::html`]) in a real browser: a report of every status,
//! two currencies and a quality section is written to a file, opened offline in headless Chromium
//! (`tests/browser/report.mjs`, which fails on any request the page makes), and every
//! `[data-metric]` number read back must equal the same place in the report's JSON; the three
//! charts must be there, with a stacked bar per day, no label cut off, and every order in a row
//! of its status group.
//!
//! Needs Chromium and playwright-core, like `browser.rs` (same skip rule, same one-browser lock).

use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pinrelay::idempotency::{
    IdempotencyKey, IdempotencyRecord, LetterFacts, Retrying, SentFacts, Settled, SkipFacts, State,
};
use pinrelay::pinterest::MatchKeys;
use pinrelay::pinterest::{Lookback, QualityScore};
use pinrelay::reconcile::{Quality, Report, Settings, ShopOrder, Window, html};
use serde_json::Value;

use crate::browser::{BROWSER, browser_available, browser_dir};

const SHOP: &str = "report-test.myshopify.com";

fn now() -> DateTime<Utc> {
    "2026-12-01T15:00:00Z".parse().unwrap()
}

fn order(id: u64, created_at: &str, value: &str, currency: &str) -> ShopOrder {
    ShopOrder {
        id,
        name: format!("#{}", 1000 + id),
        created_at: created_at.parse().unwrap(),
        value: value.into(),
        currency: currency.into(),
        not_a_conversion: None,
        undone: false,
    }
}

fn entry(id: u64, settled: Settled) -> IdempotencyRecord {
    IdempotencyRecord::settled(
        IdempotencyKey::order(SHOP, id).unwrap(),
        Some(id.to_string()),
        settled,
        now(),
    )
}

fn sent(id: u64, value: &str, currency: &str, keys: MatchKeys) -> IdempotencyRecord {
    entry(
        id,
        Settled::Sent(SentFacts {
            at: Some(now()),
            match_keys: keys,
            value: Some(value.into()),
            currency: Some(currency.into()),
            ..SentFacts::default()
        }),
    )
}

fn skipped(id: u64, reason: &str, by_rule: bool) -> IdempotencyRecord {
    entry(
        id,
        Settled::Skipped(SkipFacts {
            reason: reason.into(),
            detail: format!("{reason}: <in words> & more"),
            by_rule,
        }),
    )
}

/// Pinterest's `conversion_eqs` answers (14 days) for both sources, as the API sends them.
const QUALITY_BODY: &str = r#"[
  {"overall_status": "FAIR", "ingestion_source": "CONVERSIONS_API", "source_platform": "WEB",
   "lookback_period": "14d",
   "quality_components": {
     "hashed_email": {"checkout": {"coverage": 91.5, "issues": []}},
     "ip_address": {"checkout": {"coverage": 60.25}},
     "user_agent": {"checkout": {"coverage": 60.25}},
     "click_id_epik": {"checkout": {"coverage": 18.0, "issues": [
       {"id": "LOW_CLICK_ID_COVERAGE", "name": "Low click ID coverage", "reason": "Few epik."}]}},
     "advertiser_external_id": {"checkout": {"coverage": 88.0}},
     "external_event_id": {"checkout": {"coverage": 100.0, "overlap": 43.5}}}},
  {"overall_status": "GOOD", "ingestion_source": "TAG", "source_platform": "WEB",
   "lookback_period": "14d",
   "quality_components": {
     "click_id_epik": {"checkout": {"coverage": 81.5}},
     "external_event_id": {"checkout": {"coverage": 100.0, "overlap": 41.0}}}}
]"#;

/// Ten days in New York with every status, USD and EUR, days without orders, and Pinterest's
/// Event Quality.
fn report() -> Report {
    let tz = Window::time_zone("America/New_York").unwrap();
    let window = Window::since("10d", now(), tz).unwrap();
    let all = MatchKeys {
        email: true,
        phone: true,
        ip_ua: true,
        click_id: true,
        external_id: true,
    };
    let email = MatchKeys {
        email: true,
        ..MatchKeys::default()
    };
    let mut orders = vec![
        order(1, "2026-11-22T15:00:00Z", "12.50", "USD"),
        order(2, "2026-11-22T18:00:00Z", "40.00", "EUR"),
        order(3, "2026-11-23T15:00:00Z", "7.25", "USD"),
        order(4, "2026-11-25T15:00:00Z", "19.99", "USD"),
        order(5, "2026-11-25T16:00:00Z", "5.00", "EUR"),
        order(6, "2026-11-26T15:00:00Z", "30.00", "USD"),
        order(7, "2026-11-27T15:00:00Z", "99.00", "EUR"),
        order(8, "2026-11-28T15:00:00Z", "10.00", "USD"),
        order(9, "2026-11-29T15:00:00Z", "10.00", "USD"),
        order(10, "2026-11-29T16:00:00Z", "1.10", "EUR"),
        order(11, "2026-12-01T14:00:00Z", "22.00", "USD"),
        order(12, "2026-12-01T14:55:00Z", "3.00", "USD"),
    ];
    orders[6].name = "<script>alert('x')</script>".into();
    let entries = vec![
        sent(1, "12.50", "USD", all),
        sent(2, "40.00", "EUR", email),
        skipped(3, "test_order", true),
        sent(4, "19.99", "USD", all),
        // The reason a past page cut to "ancelled_order" with its kind beside it.
        skipped(5, "cancelled_order", true),
        skipped(6, "expired", false),
        entry(
            7,
            Settled::DeadLettered(LetterFacts {
                reason: "pinterest_rejected".into(),
                detail: "Pinterest said \"invalid\" <value>".into(),
            }),
        ),
        IdempotencyRecord {
            state: State::Pending,
            retrying: Some(Retrying {
                attempts: 2,
                last_error: "Pinterest request failed: unavailable".into(),
            }),
            ..skipped(8, "unpaid", true)
        },
        sent(9, "10.00", "USD", email),
        // 10: missing (recoverable); 12: pending (recent); the old order 13 below: missing.
        sent(11, "22.00", "USD", all),
    ];
    // Placed nine days ago, never seen: missing and past Pinterest's seven days.
    orders.push(order(13, "2026-11-22T20:00:00Z", "8.00", "USD"));
    let mut report = Report::build(
        SHOP,
        &window,
        &orders,
        &entries,
        now(),
        &Settings::default(),
    );
    let scores: Vec<QualityScore> = serde_json::from_str(QUALITY_BODY).unwrap();
    report.quality = Some(Quality::new(
        Lookback::FourteenDays,
        &scores,
        &report.totals,
    ));
    report
}

/// What `report.mjs` printed.
async fn read_page(file: &std::path::Path) -> Value {
    let _one_browser = BROWSER.lock().await;
    let dir = browser_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("report.mjs"))
        .arg(file)
        .args(["--timeout-ms", "60000"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("report.mjs ran for over 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "report.mjs failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("report.mjs printed no JSON line ({e}):\n{stdout}\n{stderr}"))
}

/// The value at a `data-metric` path: keys joined by `.`; `days` entered by `date`, quality
/// `components` by `component`, any other array by position.
fn walk<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = json;
    for segment in path.split('.') {
        at = match at {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items
                .iter()
                .find(|i| i["date"] == segment || i["component"] == segment)
                .or_else(|| segment.parse::<usize>().ok().and_then(|n| items.get(n)))?,
            _ => return None,
        };
    }
    Some(at)
}

/// One `[data-metric]` element against the report's JSON.
fn check_metric(json: &Value, metric: &Value) -> Result<(), String> {
    let path = metric["metric"].as_str().unwrap_or_default();
    let text = metric["text"].as_str().unwrap_or_default();
    let expected = walk(json, path).ok_or_else(|| format!("{path}: not in the report's JSON"))?;
    match metric["value"].as_str() {
        Some(raw) => {
            let value: Value = serde_json::from_str(raw)
                .map_err(|e| format!("{path}: data-value {raw:?}: {e}"))?;
            let same = match (value.as_f64(), expected.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => value == *expected,
            };
            if !same {
                return Err(format!("{path}: data-value {value}, JSON {expected}"));
            }
            // The text renders the value: a fraction (accuracy) or a percentage as `12.3%`.
            let shown = match value.as_f64() {
                None => "–".to_owned(),
                Some(f) if path.ends_with("accuracy") => format!("{:.1}%", f * 100.0),
                Some(p) => format!("{p:.1}%"),
            };
            if text != shown {
                return Err(format!("{path}: text {text:?} for data-value {raw}"));
            }
        }
        None => {
            let same = match expected {
                Value::String(s) => text == s,
                Value::Number(n) => text.parse::<f64>().ok() == n.as_f64(),
                _ => false,
            };
            if !same {
                return Err(format!("{path}: text {text:?}, JSON {expected}"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_shows_the_reports_numbers_offline_in_a_browser() {
    if !browser_available() {
        return;
    }
    let report = report();
    let json = serde_json::to_value(&report).unwrap();
    // The synthetic report has what the page must show.
    let t = &report.totals;
    assert_eq!(report.days.len(), 10);
    assert!(report.days.iter().any(|d| d.totals.orders == 0));
    assert_eq!((t.orders, t.sent, t.skipped_by_rule), (13, 5, 2));
    assert_eq!((t.pending, t.missing, t.recoverable), (2, 2, 1));
    assert_eq!(t.value_ordered.len(), 2);
    assert!(
        t.skipped.contains_key("expired") && t.dead_lettered.contains_key("pinterest_rejected")
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, html(&report)).unwrap();
    // To look at the page: PINRELAY_KEEP_REPORT=/tmp/report.html cargo test -p integration-tests report::
    if let Some(keep) = std::env::var_os("PINRELAY_KEEP_REPORT") {
        std::fs::copy(&file, keep).unwrap();
    }
    let page = read_page(&file).await;

    // Every number on the page is the report's.
    let metrics = page["metrics"].as_array().unwrap();
    let errors: Vec<String> = metrics
        .iter()
        .filter_map(|m| check_metric(&json, m).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let shown: std::collections::BTreeSet<&str> = metrics
        .iter()
        .filter_map(|m| m["metric"].as_str())
        .collect();
    let mut wanted: Vec<String> = [
        "totals.orders",
        "totals.sent",
        "totals.accuracy",
        "totals.missing",
        "totals.recoverable",
        "totals.pending",
        "totals.skipped_by_rule",
        "totals.skipped.test_order",
        "totals.skipped.cancelled_order",
        "totals.skipped.expired",
        "totals.dead_lettered.pinterest_rejected",
        "totals.value_ordered.USD",
        "totals.value_ordered.EUR",
        "totals.value_sent.USD",
        "totals.value_sent.EUR",
        "quality.conversions_api",
        "quality.tag",
        "quality.lookback",
        "quality.components.click_id_epik.pinterest_api",
        "quality.components.click_id_epik.pinterest_tag",
        "quality.components.click_id_epik.relay",
        "quality.components.external_event_id.overlap",
    ]
    .map(str::to_owned)
    .into();
    for key in ["email", "phone", "ip_ua", "click_id", "external_id"] {
        wanted.push(format!("totals.coverage.{key}"));
    }
    for day in &report.days {
        for field in ["orders", "sent", "accuracy"] {
            wanted.push(format!("days.{}.{field}", day.date));
        }
        for status in pinrelay::reconcile::STATUS_KEYS {
            wanted.push(format!("days.{}.statuses.{status}", day.date));
        }
    }
    for i in 0..report.orders.len() {
        wanted.push(format!("orders.{i}.id"));
        wanted.push(format!("orders.{i}.status"));
    }
    let absent: Vec<&String> = wanted
        .iter()
        .filter(|w| !shown.contains(w.as_str()))
        .collect();
    assert!(absent.is_empty(), "not on the page: {absent:?}");

    // On the page, every day's statuses add up to its orders.
    let number = |name: &str| -> u64 {
        metrics
            .iter()
            .find(|m| m["metric"] == name)
            .and_then(|m| m["text"].as_str())
            .and_then(|t| t.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("{name} is not a number on the page"))
    };
    for day in &report.days {
        let statuses: u64 = pinrelay::reconcile::STATUS_KEYS
            .iter()
            .map(|s| number(&format!("days.{}.statuses.{s}", day.date)))
            .sum();
        assert_eq!(
            statuses,
            number(&format!("days.{}.orders", day.date)),
            "{}: the statuses shown do not add up to the orders shown",
            day.date
        );
    }

    // The three charts: one stacked bar per day in order, a segment per status with orders that
    // day (in `STATUS_KEYS` order, sent at the bottom), whose counts add up to the day's orders and
    // whose heights are in proportion to them.
    let charts = &page["charts"];
    let groups = charts["days"]["groups"].as_array().unwrap();
    let days: Vec<String> = report.days.iter().map(|d| d.date.to_string()).collect();
    let group_days: Vec<&str> = groups.iter().filter_map(|g| g["day"].as_str()).collect();
    assert_eq!(group_days, days);
    let mut segments = 0;
    for (group, day) in groups.iter().zip(&report.days) {
        assert_eq!(group["orders"], day.totals.orders, "{group}");
        let shown: Vec<(&str, u64)> = group["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["status"].as_str().unwrap(), s["count"].as_u64().unwrap()))
            .collect();
        let expected: Vec<(&str, u64)> = pinrelay::reconcile::STATUS_KEYS
            .iter()
            .map(|k| (*k, day.totals.statuses[k]))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(shown, expected, "{}", day.date);
        assert_eq!(
            shown.iter().map(|(_, n)| n).sum::<u64>(),
            day.totals.orders,
            "{}: the segments do not add up to the day's orders",
            day.date
        );
        for s in group["segments"].as_array().unwrap() {
            let per_order = s["height"].as_f64().unwrap() / s["count"].as_f64().unwrap();
            let first = group["segments"][0]["height"].as_f64().unwrap()
                / group["segments"][0]["count"].as_f64().unwrap();
            assert!((per_order - first).abs() < 0.2, "{group}");
        }
        segments += shown.len();
    }
    assert!(
        report
            .days
            .iter()
            .any(|d| d.totals.statuses.values().filter(|n| **n > 0).count() > 1),
        "some day stacks more than one status"
    );
    assert_eq!(charts["days"]["bars"], segments);
    // No chart label is cut off at an edge of its chart.
    assert_eq!(
        page["clipped"],
        serde_json::json!([]),
        "{}",
        page["clipped"]
    );

    // Every order has one row, in the group of its status; the sent are folded, the orders that
    // need a look are not.
    let rows = page["orders"].as_array().unwrap();
    let mut seen: Vec<u64> = rows.iter().map(|r| r["order"].as_u64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..report.orders.len() as u64).collect::<Vec<_>>());
    for row in rows {
        let o = &report.orders[row["order"].as_u64().unwrap() as usize];
        assert_eq!(row["status"], o.status.key(), "{row}");
        assert_eq!(row["group"], o.status.key(), "{row}");
        let folded = matches!(
            o.status.key(),
            "sent" | "skipped_by_rule" | "not_a_conversion"
        );
        assert_eq!(row["open"], !folded, "{row}");
    }
    let reasons = &charts["reasons"];
    assert_eq!(reasons["bars"], t.skipped.len() + t.dead_lettered.len());
    let kinds: Vec<(&str, &str)> = reasons["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .zip(reasons["kinds"].as_array().unwrap())
        .map(|(r, k)| (r.as_str().unwrap(), k.as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("cancelled_order", "rule"),
            ("test_order", "rule"),
            ("expired", "lost"),
            ("pinterest_rejected", "dead")
        ]
    );
    assert_eq!(charts["coverage"]["bars"], 5);
    let svgs = page["svgs"].as_array().unwrap();
    assert_eq!(svgs.len(), 3, "{svgs:?}");
    for svg in svgs {
        assert_eq!(svg["role"], "img", "{svg}");
        assert_eq!(svg["label"], true, "{svg}");
        assert!(
            !svg["title"].as_str().unwrap_or_default().is_empty(),
            "{svg}"
        );
    }

    // The order named `<script>` stayed text, and the page asked for nothing but itself.
    assert_eq!(page["scripts"], 0);
    assert_eq!(page["blocked"], serde_json::json!([]));
    assert_eq!(
        page["requests"].as_array().unwrap().len(),
        1,
        "{}",
        page["requests"]
    );
}
