use super::*;
use crate::ledger::Recorded;

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
    }
}

fn entry(id: u64, outcome: Recorded) -> Entry {
    Entry {
        shop: SHOP.into(),
        subject: Subject::Order { id },
        topic: "orders/create".into(),
        at: now(),
        outcome,
    }
}

fn sent(id: u64, email: bool, click: bool) -> Entry {
    entry(
        id,
        Recorded::Sent {
            event_id: id.to_string(),
            match_keys: MatchKeys {
                email,
                click_id: click,
                ..MatchKeys::default()
            },
            value: Some("10.00".into()),
            currency: Some("USD".into()),
            late: false,
        },
    )
}

fn skipped(id: u64, reason: &str, by_rule: bool) -> Entry {
    entry(
        id,
        Recorded::Skipped {
            reason: reason.into(),
            detail: format!("{reason} in words"),
            by_rule,
        },
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
    let dead = entry(
        1,
        Recorded::DeadLettered {
            reason: "pinterest_rejected".into(),
            detail: "no".into(),
        },
    );
    assert_eq!(
        classify(&o, Some(&dead), now(), &s).label(),
        "dead_lettered"
    );
    let retrying = entry(
        1,
        Recorded::Pending {
            attempts: 2,
            retry_in_s: 120,
        },
    );
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
        // Another shop's entry for the same id is not this shop's.
        Entry {
            shop: "other.myshopify.com".into(),
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
    assert_eq!(t.value_ordered["USD"], "50.00");
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
