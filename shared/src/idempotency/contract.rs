//! The contract every [`IdempotencyStore`] adapter must pass: SQLite runs it in unit tests,
//! DynamoDB runs it against moto in the integration tests.
//!
//! Each check takes a fresh, empty store and panics with a message on violation.

#![allow(missing_docs, clippy::missing_panics_doc)]

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{Claim, IdempotencyKey, IdempotencyStore, RECORD_TTL_SECONDS, Status};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn key(n: u32) -> IdempotencyKey {
    IdempotencyKey::new("a.myshopify.com", "checkout", &n.to_string())
        .unwrap_or_else(|_| unreachable!("valid key"))
}

/// Runs every check, each on its own key space of the same store.
pub async fn run_all<S: IdempotencyStore>(store: &S) {
    first_claim_acquires(store).await;
    second_claim_sees_in_progress(store).await;
    completed_is_reported_as_already_completed(store).await;
    expired_lock_can_be_taken_over(store).await;
    a_completed_record_past_its_ttl_is_acquired_not_abandoned(store).await;
    released_key_can_be_claimed_again(store).await;
    completed_record_expires_after_ttl(store).await;
    concurrent_claims_acquire_once(store).await;
    delete_shop_removes_only_that_shop(store).await;
}

pub async fn first_claim_acquires<S: IdempotencyStore>(store: &S) {
    let k = key(1);
    let claim = store
        .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
        .await;
    assert_eq!(claim.ok(), Some(Claim::Acquired));
    let record = store.get(&k).await.ok().flatten().expect("record stored");
    assert_eq!(record.status, Status::InProgress);
    assert_eq!(
        record.in_progress_expiration,
        Some((t0() + Duration::seconds(30)).timestamp_millis())
    );
    assert!(record.expiration >= t0().timestamp() + RECORD_TTL_SECONDS);
}

pub async fn second_claim_sees_in_progress<S: IdempotencyStore>(store: &S) {
    let k = key(2);
    let until = t0() + Duration::seconds(30);
    assert_eq!(
        store.put_in_progress(&k, t0(), until).await.ok(),
        Some(Claim::Acquired)
    );
    let again = store
        .put_in_progress(&k, t0() + Duration::seconds(1), until)
        .await
        .ok();
    assert_eq!(
        again,
        Some(Claim::InProgress {
            until_ms: until.timestamp_millis()
        })
    );
}

pub async fn completed_is_reported_as_already_completed<S: IdempotencyStore>(store: &S) {
    let k = key(3);
    assert_eq!(
        store
            .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired)
    );
    assert!(store.complete(&k, t0()).await.is_ok());
    // Even long after the lock would have expired.
    let later = t0() + Duration::days(7);
    assert_eq!(
        store
            .put_in_progress(&k, later, later + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::AlreadyCompleted)
    );
    let record = store.get(&k).await.ok().flatten().expect("record stored");
    assert_eq!(record.status, Status::Completed);
}

pub async fn expired_lock_can_be_taken_over<S: IdempotencyStore>(store: &S) {
    let k = key(4);
    assert_eq!(
        store
            .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired)
    );
    let after = t0() + Duration::seconds(31);
    assert_eq!(
        store
            .put_in_progress(&k, after, after + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Abandoned),
        "a crashed invocation must not block the event forever, and is reported as such"
    );
}

pub async fn a_completed_record_past_its_ttl_is_acquired_not_abandoned<S: IdempotencyStore>(
    store: &S,
) {
    let k = key(14);
    store
        .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
        .await
        .unwrap();
    store.complete(&k, t0()).await.unwrap();
    let later = t0() + Duration::seconds(super::RECORD_TTL_SECONDS + 1);
    assert_eq!(
        store
            .put_in_progress(&k, later, later + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired)
    );
}

pub async fn released_key_can_be_claimed_again<S: IdempotencyStore>(store: &S) {
    let k = key(5);
    assert_eq!(
        store
            .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired)
    );
    assert!(store.release(&k).await.is_ok());
    assert!(store.get(&k).await.ok().flatten().is_none());
    assert_eq!(
        store
            .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired)
    );
    // Releasing a missing key is fine.
    assert!(store.release(&key(55)).await.is_ok());
}

pub async fn completed_record_expires_after_ttl<S: IdempotencyStore>(store: &S) {
    let k = key(6);
    assert!(
        store
            .put_in_progress(&k, t0(), t0() + Duration::seconds(30))
            .await
            .is_ok()
    );
    assert!(store.complete(&k, t0()).await.is_ok());
    let after_ttl = t0() + Duration::seconds(RECORD_TTL_SECONDS + 1);
    assert_eq!(
        store
            .put_in_progress(&k, after_ttl, after_ttl + Duration::seconds(30))
            .await
            .ok(),
        Some(Claim::Acquired),
        "the store deletes lazily, so the code must check expiry itself"
    );
}

pub async fn concurrent_claims_acquire_once<S: IdempotencyStore>(store: &S) {
    let k = key(7);
    let until = t0() + Duration::seconds(30);
    let claims =
        futures::future::join_all((0..16).map(|_| store.put_in_progress(&k, t0(), until))).await;
    let acquired = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Acquired)))
        .count();
    assert_eq!(acquired, 1, "claims: {claims:?}");
}

pub async fn delete_shop_removes_only_that_shop<S: IdempotencyStore>(store: &S) {
    let until = t0() + Duration::seconds(30);
    let gone = IdempotencyKey::new("gone.myshopify.com", "checkout", "1")
        .unwrap_or_else(|_| unreachable!());
    let gone2 = IdempotencyKey::new("gone.myshopify.com", "signup", "signup-2")
        .unwrap_or_else(|_| unreachable!());
    let kept = IdempotencyKey::new("gone.myshopify.com.evil", "checkout", "1")
        .unwrap_or_else(|_| unreachable!());
    for k in [&gone, &gone2, &kept] {
        assert!(store.put_in_progress(k, t0(), until).await.is_ok());
    }
    assert!(store.complete(&gone, t0()).await.is_ok());
    assert_eq!(store.delete_shop("gone.myshopify.com").await.ok(), Some(2));
    assert!(store.get(&gone).await.ok().flatten().is_none());
    assert!(store.get(&gone2).await.ok().flatten().is_none());
    assert!(store.get(&kept).await.ok().flatten().is_some());
}
