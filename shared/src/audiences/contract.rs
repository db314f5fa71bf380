//! The contract every [`AudienceStore`] adapter must pass: SQLite runs it in unit tests; a
//! DynamoDB adapter would run it against moto. Each check uses its own shop and panics with a
//! message on violation.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::customer::{CustomerId, ListKind};
use super::ledger::{AudienceStore, Lease, ListState, Marks, Recheck};
use super::plan::{Batch, Operation};

const KIND: ListKind = ListKind::Customers;

fn batch(operation: Operation, entries: &[(CustomerId, &str)]) -> Batch {
    Batch {
        operation,
        entries: entries.iter().map(|(i, h)| (*i, (*h).to_owned())).collect(),
    }
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// Runs every check.
pub async fn run_all<S: AudienceStore>(store: &S) {
    accepted_batches_change_the_record(store).await;
    ids_and_marks_are_kept_and_moved_forward(store).await;
    one_writer_holds_the_lease_until_it_releases_or_it_expires(store).await;
    a_removed_customer_stays_pending_until_pinterest_accepts_the_removal(store).await;
    forgetting_a_shop_deletes_all_its_rows_and_no_other_shops(store).await;
    a_recheck_keeps_its_newest_time_and_is_cleared_only_once_applied(store).await;
}

fn recheck(customer_id: CustomerId, s: i64) -> Recheck {
    Recheck {
        customer_id,
        at: at(s),
    }
}

pub async fn a_recheck_keeps_its_newest_time_and_is_cleared_only_once_applied<S: AudienceStore>(
    store: &S,
) {
    let shop = "recheck.myshopify.com";
    let other = "recheck-other.myshopify.com";
    assert!(store.rechecks(shop).await.unwrap().is_empty());
    store.queue_recheck(shop, 7, at(10)).await.unwrap();
    store.queue_recheck(shop, 7, at(10)).await.unwrap();
    store.queue_recheck(shop, 3, at(20)).await.unwrap();
    store.queue_recheck(shop, 7, at(5)).await.unwrap();
    store.queue_recheck(other, 7, at(1)).await.unwrap();
    assert_eq!(
        store.rechecks(shop).await.unwrap(),
        [recheck(3, 20), recheck(7, 10)],
        "one re-check per customer, by id, an older time never replaces a newer"
    );
    store.queue_recheck(shop, 7, at(30)).await.unwrap();
    assert_eq!(
        store.rechecks(shop).await.unwrap(),
        [recheck(3, 20), recheck(7, 30)],
        "a newer time replaces an older"
    );

    // A pass read both at their old times; 7 was queued again meanwhile.
    store
        .clear_rechecks(shop, &[recheck(3, 20), recheck(7, 10)])
        .await
        .unwrap();
    assert_eq!(
        store.rechecks(shop).await.unwrap(),
        [recheck(7, 30)],
        "a re-check queued again with a newer time stays"
    );
    store.clear_rechecks(shop, &[recheck(7, 30)]).await.unwrap();
    store.clear_rechecks(shop, &[]).await.unwrap();
    assert!(store.rechecks(shop).await.unwrap().is_empty());
    assert_eq!(
        store.rechecks(other).await.unwrap(),
        [recheck(7, 1)],
        "each shop has its own"
    );

    // A deleted customer's re-check goes with them; a redacted shop's with the shop.
    store.queue_recheck(shop, 8, at(40)).await.unwrap();
    store.queue_recheck(shop, 9, at(40)).await.unwrap();
    store.remove_customer(shop, 8).await.unwrap();
    assert_eq!(store.rechecks(shop).await.unwrap(), [recheck(9, 40)]);
    store.forget_shop(shop).await.unwrap();
    assert!(store.rechecks(shop).await.unwrap().is_empty());
    assert_eq!(store.rechecks(other).await.unwrap().len(), 1);
}

pub async fn accepted_batches_change_the_record<S: AudienceStore>(store: &S) {
    let shop = "record.myshopify.com";
    store
        .record(shop, KIND, &batch(Operation::Add, &[(1, "a"), (2, "b")]))
        .await
        .unwrap();
    store
        .record(shop, KIND, &batch(Operation::Add, &[(2, "b2")]))
        .await
        .unwrap();
    store
        .record(shop, KIND, &batch(Operation::Remove, &[(1, "a"), (2, "b")]))
        .await
        .unwrap();
    let members = store.members(shop, KIND).await.unwrap();
    assert_eq!(
        members,
        BTreeMap::from([(2, "b2".to_owned())]),
        "an ADD sets the hash; a REMOVE drops only the hash recorded"
    );
    assert!(
        store
            .members(shop, ListKind::Purchasers)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn ids_and_marks_are_kept_and_moved_forward<S: AudienceStore>(store: &S) {
    let shop = "marks.myshopify.com";
    assert_eq!(store.state(shop, KIND).await.unwrap(), ListState::default());
    store.set_ids(shop, KIND, "L1", None).await.unwrap();
    store.set_ids(shop, KIND, "L1", Some("A1")).await.unwrap();
    store.set_ids(shop, KIND, "L1", None).await.unwrap();
    let marks = Marks {
        watermark: Some(at(10)),
        last_full: Some(at(5)),
        last_resend: None,
        last_sync: Some(at(7)),
    };
    store.set_marks(shop, KIND, marks).await.unwrap();
    let newer = Marks {
        watermark: Some(at(20)),
        ..Marks::default()
    };
    store.set_marks(shop, KIND, newer).await.unwrap();
    let state = store.state(shop, KIND).await.unwrap();
    assert_eq!(state.list_id.as_deref(), Some("L1"));
    assert_eq!(
        state.audience_id.as_deref(),
        Some("A1"),
        "an audience id is kept"
    );
    assert_eq!(state.watermark, Some(at(20)));
    assert_eq!(
        state.last_full,
        Some(at(5)),
        "a mark not given is left as it is"
    );
    assert_eq!(state.last_resend, None);
    assert_eq!(state.last_sync, Some(at(7)), "the job's mark is kept");
}

pub async fn one_writer_holds_the_lease_until_it_releases_or_it_expires<S: AudienceStore>(
    store: &S,
) {
    let shop = "lease.myshopify.com";
    let ttl = Duration::from_secs(60);
    assert_eq!(
        store.acquire(shop, KIND, "a", at(0), ttl).await.unwrap(),
        Lease::Acquired
    );
    assert_eq!(
        store.acquire(shop, KIND, "a", at(1), ttl).await.unwrap(),
        Lease::Acquired,
        "its holder renews it"
    );
    assert!(matches!(
        store.acquire(shop, KIND, "b", at(30), ttl).await.unwrap(),
        Lease::Held { holder, .. } if holder == "a"
    ));
    assert_eq!(
        store
            .acquire(shop, ListKind::Purchasers, "b", at(30), ttl)
            .await
            .unwrap(),
        Lease::Acquired,
        "each list has its own lease"
    );
    assert_eq!(
        store.acquire(shop, KIND, "b", at(61), ttl).await.unwrap(),
        Lease::Acquired
    );
    store.release(shop, KIND, "a").await.unwrap();
    assert!(
        matches!(
            store.acquire(shop, KIND, "c", at(62), ttl).await.unwrap(),
            Lease::Held { .. }
        ),
        "only the holder releases"
    );
    store.release(shop, KIND, "b").await.unwrap();
    assert_eq!(
        store.acquire(shop, KIND, "c", at(62), ttl).await.unwrap(),
        Lease::Acquired
    );
}

pub async fn a_removed_customer_stays_pending_until_pinterest_accepts_the_removal<
    S: AudienceStore,
>(
    store: &S,
) {
    let shop = "remove.myshopify.com";
    store.set_ids(shop, KIND, "L1", None).await.unwrap();
    store
        .record(shop, KIND, &batch(Operation::Add, &[(1, "a"), (2, "b")]))
        .await
        .unwrap();
    store
        .record(
            shop,
            ListKind::Purchasers,
            &batch(Operation::Add, &[(1, "a")]),
        )
        .await
        .unwrap();

    let removals = store.remove_customer(shop, 1).await.unwrap();
    let mut seen: Vec<(ListKind, Option<&str>, &str)> = removals
        .iter()
        .map(|r| (r.kind, r.list_id.as_deref(), r.hash.as_str()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (ListKind::Customers, Some("L1"), "a"),
            (ListKind::Purchasers, None, "a")
        ]
    );
    assert_eq!(store.members(shop, KIND).await.unwrap().len(), 1);
    assert_eq!(store.pending_removals(shop, KIND).await.unwrap().len(), 1);
    assert!(
        store.remove_customer(shop, 99).await.unwrap().is_empty(),
        "an unknown customer has nothing to remove"
    );

    store
        .record(shop, KIND, &batch(Operation::Remove, &[(1, "a")]))
        .await
        .unwrap();
    assert!(store.pending_removals(shop, KIND).await.unwrap().is_empty());
    assert_eq!(
        store
            .pending_removals(shop, ListKind::Purchasers)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn forgetting_a_shop_deletes_all_its_rows_and_no_other_shops<S: AudienceStore>(
    store: &S,
) {
    let shop = "forget.myshopify.com";
    let other = "keep.myshopify.com";
    store.set_ids(shop, KIND, "L1", Some("A1")).await.unwrap();
    store
        .record(shop, KIND, &batch(Operation::Add, &[(1, "a"), (2, "b")]))
        .await
        .unwrap();
    store
        .record(other, KIND, &batch(Operation::Add, &[(1, "a")]))
        .await
        .unwrap();
    store.remove_customer(shop, 1).await.unwrap();

    let forgotten = store.forget_shop(shop).await.unwrap();
    assert_eq!(forgotten.len(), 1);
    assert_eq!(forgotten[0].1.audience_id.as_deref(), Some("A1"));
    assert_eq!(store.state(shop, KIND).await.unwrap(), ListState::default());
    assert!(store.members(shop, KIND).await.unwrap().is_empty());
    assert!(store.pending_removals(shop, KIND).await.unwrap().is_empty());
    assert_eq!(store.members(other, KIND).await.unwrap().len(), 1);
}
