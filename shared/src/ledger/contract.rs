//! The behaviour every [`Ledger`] adapter must have. Each adapter's tests call [`run_all`] on a fresh
//! store (SQLite in unit tests, DynamoDB on moto in the integration tests).

use chrono::{DateTime, Duration, Utc};

use super::{Entry, Ledger, MatchKeys, Recorded, Subject};

fn now() -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

fn entry(shop: &str, id: u64, outcome: Recorded) -> Entry {
    Entry {
        shop: shop.to_owned(),
        subject: Subject::Order { id },
        topic: "orders/create".into(),
        at: now(),
        outcome,
    }
}

fn sent(id: u64) -> Recorded {
    Recorded::Sent {
        event_id: id.to_string(),
        match_keys: MatchKeys {
            email: true,
            ..MatchKeys::default()
        },
        value: Some("10.00".into()),
        currency: Some("USD".into()),
        late: false,
    }
}

fn skipped(reason: &str) -> Recorded {
    Recorded::Skipped {
        reason: reason.into(),
        detail: format!("{reason} in words"),
        by_rule: true,
    }
}

fn pending() -> Recorded {
    Recorded::Pending {
        attempts: 1,
        retry_in_s: 60,
    }
}

fn live() -> i64 {
    (now() + Duration::days(45)).timestamp()
}

/// Runs every check; each uses its own shop, so one store serves them all.
pub async fn run_all<L: Ledger>(ledger: &L) {
    records_and_looks_up_entries(ledger).await;
    a_sent_entry_is_never_replaced(ledger).await;
    later_outcomes_replace_earlier_ones(ledger).await;
    expired_entries_are_not_returned(ledger).await;
    delete_shop_deletes_only_that_shop(ledger).await;
    looks_up_many_subjects_at_once(ledger).await;
}

/// What is recorded is read back as it was; unknown subjects are left out.
pub async fn records_and_looks_up_entries<L: Ledger>(ledger: &L) {
    let shop = "lookup.myshopify.com";
    let a = entry(shop, 1, sent(1));
    let b = Entry {
        subject: Subject::Event {
            name: "signup".into(),
            id: "signup-9".into(),
        },
        topic: "customers/create".into(),
        ..entry(shop, 0, skipped("consent"))
    };
    ledger.record(&a, live()).await.unwrap();
    ledger.record(&b, live()).await.unwrap();
    let mut found = ledger
        .lookup(
            shop,
            &[
                a.subject.clone(),
                b.subject.clone(),
                Subject::Order { id: 3 },
            ],
            now(),
        )
        .await
        .unwrap();
    found.sort_by(|x, y| x.subject.cmp(&y.subject));
    assert_eq!(found, vec![a, b]);
}

/// Once sent, always sent: a later skip, dead letter or retry of the subject changes nothing.
pub async fn a_sent_entry_is_never_replaced<L: Ledger>(ledger: &L) {
    let shop = "sent.myshopify.com";
    let first = entry(shop, 1, sent(1));
    ledger.record(&first, live()).await.unwrap();
    for later in [
        skipped("expired"),
        pending(),
        Recorded::DeadLettered {
            reason: "pinterest_rejected".into(),
            detail: "no".into(),
        },
    ] {
        ledger.record(&entry(shop, 1, later), live()).await.unwrap();
    }
    let found = ledger
        .lookup(shop, &[Subject::Order { id: 1 }], now())
        .await
        .unwrap();
    assert_eq!(found, vec![first]);
}

/// A retry that later succeeds, or a dead letter replayed and sent, shows its last outcome.
pub async fn later_outcomes_replace_earlier_ones<L: Ledger>(ledger: &L) {
    let shop = "later.myshopify.com";
    ledger
        .record(&entry(shop, 1, pending()), live())
        .await
        .unwrap();
    let dead = entry(
        shop,
        1,
        Recorded::DeadLettered {
            reason: "retries_exhausted".into(),
            detail: "5 attempts".into(),
        },
    );
    ledger.record(&dead, live()).await.unwrap();
    let subjects = [Subject::Order { id: 1 }];
    assert_eq!(
        ledger.lookup(shop, &subjects, now()).await.unwrap(),
        vec![dead]
    );
    let replayed = entry(shop, 1, sent(1));
    ledger.record(&replayed, live()).await.unwrap();
    assert_eq!(
        ledger.lookup(shop, &subjects, now()).await.unwrap(),
        vec![replayed]
    );
}

/// An entry past its expiry reads as absent, and an expired `sent` may be replaced.
pub async fn expired_entries_are_not_returned<L: Ledger>(ledger: &L) {
    let shop = "expired.myshopify.com";
    let gone = now().timestamp() - 1;
    ledger.record(&entry(shop, 1, sent(1)), gone).await.unwrap();
    let subjects = [Subject::Order { id: 1 }];
    assert!(
        ledger
            .lookup(shop, &subjects, now())
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = entry(shop, 1, skipped("expired"));
    ledger.record(&fresh, live()).await.unwrap();
    assert_eq!(
        ledger.lookup(shop, &subjects, now()).await.unwrap(),
        vec![fresh]
    );
}

/// `shop/redact` forgets one shop's entries and no other's.
pub async fn delete_shop_deletes_only_that_shop<L: Ledger>(ledger: &L) {
    let (gone, kept) = ("gone.myshopify.com", "gone-not.myshopify.com");
    for id in 1..=3 {
        ledger
            .record(&entry(gone, id, sent(id)), live())
            .await
            .unwrap();
    }
    ledger
        .record(&entry(kept, 1, sent(1)), live())
        .await
        .unwrap();
    assert_eq!(ledger.delete_shop(gone).await.unwrap(), 3);
    let subjects: Vec<Subject> = (1..=3).map(|id| Subject::Order { id }).collect();
    assert!(
        ledger
            .lookup(gone, &subjects, now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ledger.lookup(kept, &subjects, now()).await.unwrap().len(),
        1
    );
}

/// A reconcile looks up a window's orders at once: more than one DynamoDB `BatchGetItem` holds.
pub async fn looks_up_many_subjects_at_once<L: Ledger>(ledger: &L) {
    let shop = "many.myshopify.com";
    for id in (1..=250).filter(|id| id % 2 == 0) {
        ledger
            .record(&entry(shop, id, sent(id)), live())
            .await
            .unwrap();
    }
    let subjects: Vec<Subject> = (1..=250).map(|id| Subject::Order { id }).collect();
    let mut ids: Vec<u64> = ledger
        .lookup(shop, &subjects, now())
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.subject {
            Subject::Order { id } => id,
            Subject::Event { .. } => 0,
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=250).filter(|id| id % 2 == 0).collect::<Vec<_>>());
}
