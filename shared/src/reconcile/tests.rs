use super::*;
use crate::idempotency::{IdempotencyKey, LetterFacts, Retrying, SentFacts, Settled, SkipFacts};
use crate::pinterest::quality::{Lookback, QualityScore};

const SHOP: &str = "r.myshopify.com";

fn now() -> DateTime<Utc> {
    "2026-12-01T15:00:00Z".parse().unwrap()
}

fn ny() -> Tz {
    Window::time_zone("America/New_York").unwrap()
}

fn order(id: u64, created_at: &str) -> ShopOrder {
    ShopOrder {
        id,
        name: format!("#{}", 1000 + id),
        created_at: created_at.parse().unwrap(),
        value: "10.00".into(),
        currency: "USD".into(),
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

fn sent(id: u64, email: bool, click: bool) -> IdempotencyRecord {
    entry(
        id,
        Settled::Sent(SentFacts {
            at: Some(now()),
            match_keys: MatchKeys {
                email,
                click_id: click,
                ..MatchKeys::default()
            },
            value: Some("10.00".into()),
            currency: Some("USD".into()),
            ..SentFacts::default()
        }),
    )
}

fn skipped(id: u64, reason: &str, by_rule: bool) -> IdempotencyRecord {
    entry(
        id,
        Settled::Skipped(SkipFacts {
            reason: reason.into(),
            detail: format!("{reason} in words"),
            by_rule,
        }),
    )
}

fn dead(id: u64, reason: &str, detail: &str) -> IdempotencyRecord {
    entry(
        id,
        Settled::DeadLettered(LetterFacts {
            reason: reason.into(),
            detail: detail.into(),
        }),
    )
}

#[test]
fn since_counts_days_of_the_shops_calendar() {
    // 15:00 UTC is 10:00 in New York: today there is 2026-12-01.
    let w = Window::since("7d", now(), ny()).unwrap();
    assert_eq!(
        (w.from.to_string(), w.to.to_string()),
        ("2026-11-25".into(), "2026-12-01".into())
    );
    let (start, end) = w.bounds();
    assert_eq!(start.to_rfc3339(), "2026-11-25T05:00:00+00:00");
    assert_eq!(end.to_rfc3339(), "2026-12-02T05:00:00+00:00");
    // 02:00 UTC on 1 December is still 30 November in New York.
    assert_eq!(
        w.day_of("2026-12-01T02:00:00Z".parse().unwrap())
            .to_string(),
        "2026-11-30"
    );
    for bad in ["7", "0d", "61d", "week"] {
        assert!(
            matches!(
                Window::since(bad, now(), ny()),
                Err(WindowError::BadSince(_))
            ),
            "{bad}"
        );
    }
    let (a, b) = ("2026-11-02".parse().unwrap(), "2026-11-01".parse().unwrap());
    assert!(Window::dates(a, b, ny()).is_err());
    assert!(Window::time_zone("Mars/Olympus").is_err());
}

#[test]
fn a_window_across_a_dst_change_still_starts_at_local_midnight() {
    // New York leaves daylight time on 2026-11-01.
    let w = Window::dates(
        "2026-10-31".parse().unwrap(),
        "2026-11-01".parse().unwrap(),
        ny(),
    )
    .unwrap();
    let (start, end) = w.bounds();
    assert_eq!(start.to_rfc3339(), "2026-10-31T04:00:00+00:00");
    assert_eq!(end.to_rfc3339(), "2026-11-02T05:00:00+00:00");
}

#[test]
fn each_order_is_exactly_one_status() {
    let s = Settings::default();
    let o = order(1, "2026-11-30T12:00:00Z");
    assert_eq!(
        classify(&o, Some(&sent(1, true, false)), now(), &s).label(),
        "sent"
    );
    assert!(matches!(
        classify(&o, Some(&skipped(1, "test_order", true)), now(), &s),
        Status::Skipped { by_rule: true, .. }
    ));
    let dead = dead(1, "pinterest_rejected", "no");
    assert_eq!(
        classify(&o, Some(&dead), now(), &s).label(),
        "dead_lettered"
    );
    let mut retrying = skipped(1, "unpaid", true);
    retrying.state = State::Pending;
    retrying.retrying = Some(Retrying {
        attempts: 2,
        last_error: "Pinterest request failed: unavailable".into(),
    });
    assert_eq!(
        classify(&o, Some(&retrying), now(), &s),
        Status::Pending {
            reason: "retrying".into()
        }
    );
    assert_eq!(
        classify(&o, None, now(), &s),
        Status::Missing { recoverable: true }
    );
    let recent = order(2, "2026-12-01T14:50:00Z");
    assert_eq!(
        classify(&recent, None, now(), &s),
        Status::Pending {
            reason: "recent".into()
        }
    );
    let old = order(3, "2026-11-20T12:00:00Z");
    assert_eq!(
        classify(&old, None, now(), &s),
        Status::Missing { recoverable: false }
    );
}

#[test]
fn the_report_adds_up_days_accuracy_value_and_coverage() {
    let w = Window::since("3d", now(), ny()).unwrap();
    let orders = [
        order(1, "2026-11-29T15:00:00Z"),
        order(2, "2026-11-29T16:00:00Z"),
        order(3, "2026-11-30T15:00:00Z"),
        order(4, "2026-11-30T16:00:00Z"),
        order(5, "2026-12-01T14:00:00Z"),
    ];
    let entries = [
        sent(1, true, true),
        sent(2, true, false),
        skipped(3, "pos_order", true),
        skipped(4, "expired", false),
        // Another shop's record for the same id is not this shop's.
        IdempotencyRecord {
            key: IdempotencyKey::order("other.myshopify.com", 5).unwrap(),
            ..sent(5, true, true)
        },
    ];
    let r = Report::build(SHOP, &w, &orders, &entries, now(), &Settings::default());
    assert_eq!(r.days.len(), 3);
    let t = &r.totals;
    assert_eq!(
        (t.orders, t.sent, t.skipped_by_rule, t.missing),
        (5, 2, 1, 1)
    );
    assert_eq!(t.accuracy, Some(3.0 / 5.0));
    // The POS order a rule skips is not in the value that should have been sent.
    assert_eq!(t.value_ordered["USD"], "40.00");
    assert_eq!(t.value_sent["USD"], "20.00");
    assert_eq!((t.coverage.email, t.coverage.click_id), (2, 1));
    assert_eq!(r.days[0].totals.accuracy, Some(1.0));
    assert_eq!(r.days[1].totals.skipped["expired"], 1);
    assert_eq!(r.recoverable().map(|o| o.id).collect::<Vec<_>>(), [5]);

    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["orders"][0]["status"], "sent");
    assert_eq!(json["orders"][0]["match_keys"]["email"], true);
    assert_eq!(json["orders"][4]["status"], "missing");
    assert_eq!(json["orders"][4]["recoverable"], true);
    assert_eq!(json["days"][1]["date"], "2026-11-30");

    let text = table(&r);
    assert!(text.contains("total"), "{text}");
    assert!(text.contains("60.0%"), "{text}");
    assert!(text.contains("#1005 (id 5, 2026-12-01) missing"), "{text}");
    assert!(
        !text.contains("#1001 (id 1"),
        "sent orders need no look: {text}"
    );
}

#[test]
fn money_is_summed_in_minor_units_per_currency() {
    let mut sums = BTreeMap::new();
    add_money(&mut sums, "0.10", "USD");
    add_money(&mut sums, "0.20", "USD");
    add_money(&mut sums, "1500", "JPY");
    add_money(&mut sums, "junk", "USD");
    assert_eq!(format_minor(sums["USD"], 2), "0.30");
    assert_eq!(format_minor(sums["JPY"], 0), "1500");
    assert_eq!(format_minor(5, 3), "0.005");
}

/// A report of three days with every status, two currencies and a quality section.
fn full_report() -> Report {
    let w = Window::since("3d", now(), ny()).unwrap();
    let mut orders = vec![
        order(1, "2026-11-29T15:00:00Z"),
        order(2, "2026-11-29T16:00:00Z"),
        order(3, "2026-11-29T17:00:00Z"),
        order(4, "2026-11-29T18:00:00Z"),
        order(5, "2026-12-01T14:00:00Z"),
        order(6, "2026-12-01T14:55:00Z"),
    ];
    orders[3].name = "<script>alert(1)</script>".into();
    orders[2].currency = "JPY".into();
    orders[2].value = "1500".into();
    let entries = [
        sent(1, true, true),
        entry(
            3,
            Settled::Sent(SentFacts {
                at: Some(now()),
                value: Some("1500".into()),
                currency: Some("JPY".into()),
                late: true,
                ..SentFacts::default()
            }),
        ),
        skipped(2, "test_order", true),
        dead(
            4,
            "pinterest_rejected",
            "Pinterest said \"no\" & <b>why</b>",
        ),
    ];
    let mut r = Report::build(SHOP, &w, &orders, &entries, now(), &Settings::default());
    // A shop name is the merchant's text as much as an order name.
    r.shop = "o'brien & <sons>.myshopify.com".into();
    let scores: Vec<QualityScore> = serde_json::from_value(serde_json::json!([
        {"overall_status": "FAIR", "ingestion_source": "CONVERSIONS_API", "lookback_period": "14d",
         "quality_components": {
            "hashed_email": {"checkout": {"coverage": 90.0}},
            "click_id_epik": {"checkout": {"coverage": 18.5}},
            "external_event_id": {"checkout": {"coverage": 100.0, "overlap": 43.5}}}},
        {"overall_status": "GOOD", "ingestion_source": "TAG", "lookback_period": "14d",
         "quality_components": {"click_id_epik": {"checkout": {"coverage": 81.5}}}}
    ]))
    .unwrap();
    r.quality = Some(Quality::new(Lookback::FourteenDays, &scores, &r.totals));
    r
}

#[test]
fn the_page_escapes_every_text_from_the_report() {
    let page = html(&full_report());
    assert!(!page.contains("<script"), "an order name became markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Text and double-quoted attribute values: `'` needs no escape.
    assert!(page.contains("o'brien &amp; &lt;sons&gt;.myshopify.com"));
    assert!(page.contains("Pinterest said &quot;no&quot; &amp; &lt;b&gt;why&lt;/b&gt;"));
    assert!(!page.contains("<b>why"));
}

#[test]
fn the_page_asks_nothing_of_the_network() {
    let page = html(&full_report());
    for needle in [
        "http://", "https://", "src=", "href=", "url(", "@import", "<link", "<script",
    ] {
        assert!(!page.contains(needle), "the page contains {needle}");
    }
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<style>"));
}

#[test]
fn the_page_has_a_metric_for_every_day_and_total() {
    let r = full_report();
    let page = html(&r);
    for day in &r.days {
        for field in ["orders", "sent"] {
            let attr = format!("data-metric=\"days.{}.{field}\"", day.date);
            assert!(page.contains(&attr), "{attr}");
        }
        assert!(page.contains(&format!("data-day=\"{}\"", day.date)));
    }
    for attr in [
        r#"data-metric="totals.orders">6<"#,
        r#"data-metric="totals.sent">2<"#,
        r#"data-metric="totals.missing">1<"#,
        r#"data-metric="totals.recoverable">1<"#,
        r#"data-metric="totals.accuracy" data-value="0.5">50.0%<"#,
        r#"data-metric="totals.skipped.test_order">1<"#,
        r#"data-metric="totals.dead_lettered.pinterest_rejected">1<"#,
        r#"data-metric="totals.coverage.email">1<"#,
        r#"data-metric="totals.value_sent.USD">10.00<"#,
        r#"data-metric="totals.value_ordered.JPY">1500<"#,
        r#"data-metric="quality.components.click_id_epik.pinterest_tag" data-value="81.5">81.5%<"#,
        r#"data-metric="quality.conversions_api">FAIR<"#,
        "run <code>pinrelay reconcile --backfill</code>",
    ] {
        assert!(page.contains(attr), "{attr}");
    }
    for chart in ["days", "reasons", "coverage"] {
        assert!(
            page.contains(&format!("<svg data-chart=\"{chart}\"")),
            "{chart}"
        );
    }
    assert_eq!(page.matches("role=\"img\"").count(), 3);
}

#[test]
fn the_table_prints_the_quality_section_with_hints_below_good() {
    let text = table(&full_report());
    assert!(
        text.contains("Pinterest Event Quality (14d): Conversions API FAIR, Tag GOOD"),
        "{text}"
    );
    assert!(text.contains("click_id_epik"), "{text}");
    assert!(text.contains("18.5%"), "{text}");
    assert!(text.contains("81.5%"), "{text}");
    assert!(text.contains("43.5%"), "{text}");
    assert!(
        text.contains(crate::pinterest::quality::hint(
            &crate::pinterest::Component::ClickIdEpik
        )),
        "{text}"
    );
}

#[test]
fn a_never_seen_order_the_rules_skip_is_not_a_conversion_and_never_backfilled() {
    let w = Window::since("3d", now(), ny()).unwrap();
    let rules = crate::mapping::Options::default();
    let admin = |id: u64, test: bool, source: &str| crate::shopify::AdminOrder {
        id,
        name: format!("#{id}"),
        created_at: "2026-11-30T15:00:00Z".parse().unwrap(),
        test,
        source_name: Some(source.into()),
        cancelled_at: None,
        financial_status: Some("PAID".into()),
        subtotal: "10.00".into(),
        total: "12.00".into(),
        currency: "USD".into(),
    };
    let orders = [
        ShopOrder::from_admin(&admin(1, true, "web"), &rules),
        ShopOrder::from_admin(&admin(2, false, "pos"), &rules),
        ShopOrder::from_admin(&admin(3, false, "web"), &rules),
    ];
    let r = Report::build(SHOP, &w, &orders, &[], now(), &Settings::default());
    let labels: Vec<&str> = r.orders.iter().map(|o| o.status.label()).collect();
    assert_eq!(labels, ["not_a_conversion", "not_a_conversion", "missing"]);
    assert_eq!(r.totals.not_a_conversion, 2);
    assert_eq!(r.totals.accuracy, Some(2.0 / 3.0));
    assert_eq!(r.recoverable().map(|o| o.id).collect::<Vec<_>>(), [3]);
    assert!(matches!(
        &r.orders[0].status,
        Status::NotAConversion { reason, .. } if reason == "test_order"
    ));
}

#[test]
fn a_window_never_reaches_past_the_records_life() {
    assert!(matches!(
        Window::since("60d", now(), ny()),
        Err(WindowError::BadSince(_))
    ));
    let e = Window::since("60d", now(), ny()).unwrap_err().to_string();
    assert!(e.contains("45d"), "{e}");
    assert!(
        Window::since("45d", now(), ny())
            .unwrap()
            .within_records(now())
            .is_ok()
    );
    let old = Window::dates(
        "2026-10-01".parse().unwrap(),
        "2026-10-02".parse().unwrap(),
        ny(),
    )
    .unwrap();
    let e = old.within_records(now()).unwrap_err();
    assert!(e.to_string().contains("45 days"), "{e}");
}

#[test]
fn days_start_right_where_dst_begins_at_midnight() {
    // Chile moves its clocks from 00:00 to 01:00 on 2026-09-06: that day starts at 01:00 -03.
    let santiago = Window::time_zone("America/Santiago").unwrap();
    let day: NaiveDate = "2026-09-06".parse().unwrap();
    let w = Window::dates(day, day, santiago).unwrap();
    let (start, end) = w.bounds();
    assert_eq!(start.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    assert_eq!(end.to_rfc3339(), "2026-09-07T03:00:00+00:00");
    // An order at 01:30 local time lands on its local day; one at 23:30 the evening before does not.
    let early: DateTime<Utc> = "2026-09-06T04:30:00Z".parse().unwrap();
    assert_eq!(w.day_of(early), day);
    let eve: DateTime<Utc> = "2026-09-06T03:30:00Z".parse().unwrap();
    assert!(eve < start, "the evening before is outside the day");
}

#[test]
fn every_days_statuses_add_up_to_its_orders() {
    let r = full_report();
    for day in r.days.iter().map(|d| &d.totals).chain([&r.totals]) {
        assert_eq!(day.statuses.len(), STATUS_KEYS.len());
        assert_eq!(day.statuses.values().sum::<u64>(), day.orders, "{day:?}");
    }
    let json = serde_json::to_value(&r).unwrap();
    let total: u64 = json["totals"]["statuses"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(json["totals"]["orders"], total);
}

#[test]
fn orders_sent_and_since_cancelled_or_refunded_are_counted_with_their_value() {
    let w = Window::since("3d", now(), ny()).unwrap();
    let mut refunded = order(1, "2026-11-30T15:00:00Z");
    refunded.undone = true;
    let orders = [refunded, order(2, "2026-11-30T16:00:00Z")];
    let r = Report::build(
        SHOP,
        &w,
        &orders,
        &[sent(1, true, false), sent(2, true, false)],
        now(),
        &Settings::default(),
    );
    assert_eq!(r.totals.sent, 2, "a purchase Pinterest got stays sent");
    assert_eq!(r.totals.sent_since_undone, 1);
    assert_eq!(r.totals.value_sent_since_undone["USD"], "10.00");
    assert_eq!(r.totals.value_sent["USD"], "20.00");
}

#[test]
fn the_page_has_a_row_for_every_order_in_its_status_group() {
    let r = full_report();
    let page = html(&r);
    for (i, o) in r.orders.iter().enumerate() {
        let row = format!("<tr data-order=\"{i}\" data-status=\"{}\">", o.status.key());
        assert_eq!(page.matches(&row).count(), 1, "{row}");
        assert!(page.contains(&format!("data-metric=\"orders.{i}.id\">{}<", o.id)));
    }
    // The sent are folded; the groups that need a look are open.
    assert!(page.contains("<details class=\"group\" data-status=\"sent\">"));
    assert!(page.contains("<details class=\"group\" data-status=\"dead_lettered\" open>"));
    assert!(page.contains("<details class=\"group\" data-status=\"missing\" open>"));
    // A reason is shown whole, with its message, and a sent order its event id and lateness.
    assert!(page.contains("data-metric=\"orders.1.reason\">test_order<"));
    assert!(page.contains("data-metric=\"orders.0.event_id\">1<"));
    assert!(page.contains("late (counted as offline)"));
}

#[test]
fn the_day_chart_stacks_each_days_statuses_in_one_bar() {
    let r = full_report();
    let page = html(&r);
    for day in &r.days {
        let group = format!(
            "<g class=\"day\" data-day=\"{}\" data-orders=\"{}\">",
            day.date, day.totals.orders
        );
        let at = page.find(&group).unwrap_or_else(|| panic!("{group}"));
        let end = at + page[at..].find("</g>").unwrap();
        let segments = &page[at..end];
        let mut sum = 0;
        for key in STATUS_KEYS {
            let n = day.totals.statuses[key];
            let seg = format!("data-status=\"{key}\" data-count=\"{n}\"");
            assert_eq!(segments.contains(&seg), n > 0, "{}: {seg}", day.date);
            sum += n;
        }
        assert_eq!(sum, day.totals.orders);
    }
    assert!(
        !page.contains("bar orders"),
        "no orders-vs-sent pairs any more"
    );
}

#[test]
fn the_customer_lists_are_shown_with_what_was_uploaded_and_pinterests_status() {
    let mut report = full_report();
    assert!(
        !serde_json::to_value(&report)
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("customer_lists"),
        "a shop without lists has no section"
    );
    report.customer_lists = vec![
        CustomerListRow {
            list: "customers".into(),
            list_id: Some("L1".into()),
            audience_id: Some("A1".into()),
            status: Some("TOO_SMALL".into()),
            status_unread: None,
            members: 85,
            pending_removals: 2,
            last_sync: Some(now()),
            last_full: None,
        },
        CustomerListRow {
            list: "purchasers".into(),
            list_id: Some("L2".into()),
            audience_id: None,
            status: None,
            status_unread: Some("no Pinterest token".into()),
            members: 40,
            pending_removals: 0,
            last_sync: Some(now()),
            last_full: Some(now()),
        },
    ];
    let text = table(&report);
    assert!(
        text.contains("customers list L1: 85 members uploaded, 2 removals pending; TOO_SMALL"),
        "{text}"
    );
    assert!(
        text.contains("purchasers list L2: 40 members uploaded, 0 removals pending; status not read: no Pinterest token"),
        "{text}"
    );
    let page = html(&report);
    assert!(page.contains(r#"data-metric="customer_lists.customers.members">85<"#));
    assert!(page.contains(r#"data-metric="customer_lists.customers.status">TOO_SMALL<"#));
    assert!(page.contains(r#"data-metric="customer_lists.purchasers.status" data-value="null""#));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["customer_lists"][0]["members"], 85);
    assert_eq!(json["customer_lists"][1]["status"], serde_json::Value::Null);
}
