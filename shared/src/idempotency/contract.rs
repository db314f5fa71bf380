//! The contract every [`IdempotencyStore`] adapter must pass: SQLite runs it in unit tests,
//! DynamoDB runs it against moto (behind the AWS limits layer) in the integration tests. It covers
//! every transition of a record and every refused one.
//!
//! Each check uses its own keys and panics with a message on violation.

#![allow(missing_docs, clippy::missing_panics_doc)]

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{
    Claim, ClaimRequest, DoubtCause, Holder, IdempotencyKey, IdempotencyStore, LetterFacts, Mode,
    RECORD_TTL_SECONDS, Retrying, SentFacts, Settled, Settlement, SkipFacts, State, StoreError,
    Unheld,
};
use crate::pinterest::MatchKeys;

const SHOP: &str = "a.myshopify.com";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn key(n: u64) -> IdempotencyKey {
    IdempotencyKey::order(SHOP, n).unwrap_or_else(|_| unreachable!("valid key"))
}

/// A live claim of order `n` by a new holder, locked 30 s from `now`, choosing `event_id` `e{n}`.
pub fn request(n: u64, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        key: key(n),
        event_id: format!("e{n}"),
        holder: Holder::new(),
        lock_until: now + Duration::seconds(30),
        mode: Mode::Live,
        resend: None,
        topic: "orders/create".into(),
        legacy: None,
    }
}

fn again(r: &ClaimRequest) -> ClaimRequest {
    ClaimRequest {
        holder: Holder::new(),
        event_id: format!("{}-other", r.event_id),
        ..r.clone()
    }
}

fn sent(mode: Mode) -> Settlement {
    Settlement::Settled(Settled::Sent(SentFacts {
        at: Some(t0()),
        mode,
        match_keys: MatchKeys {
            email: true,
            ..MatchKeys::default()
        },
        value: Some("10.00".into()),
        currency: Some("USD".into()),
        late: false,
        legacy: false,
    }))
}

fn skip() -> SkipFacts {
    SkipFacts {
        reason: "unpaid".into(),
        detail: "not paid".into(),
        by_rule: true,
    }
}

fn letter() -> LetterFacts {
    LetterFacts {
        reason: "pinterest_rejected".into(),
        detail: "bad currency".into(),
    }
}

fn doubt() -> Settlement {
    Settlement::Settled(Settled::InDoubt {
        cause: DoubtCause::NoAnswer,
    })
}

async fn claim<S: IdempotencyStore>(store: &S, r: &ClaimRequest, now: DateTime<Utc>) -> Claim {
    store
        .claim(r, now)
        .await
        .unwrap_or_else(|e| panic!("claim failed: {e}"))
}

async fn settle<S: IdempotencyStore>(store: &S, r: &ClaimRequest, s: Settlement) {
    store
        .settle(&r.key, &r.holder, &s, t0())
        .await
        .unwrap_or_else(|e| panic!("settle failed: {e}"));
}

async fn state<S: IdempotencyStore>(store: &S, k: &IdempotencyKey) -> State {
    store
        .get(k)
        .await
        .ok()
        .flatten()
        .map(|r| r.state)
        .unwrap_or_else(|| panic!("no record for {k}"))
}

/// Runs every check.
pub async fn run_all<S: IdempotencyStore>(store: &S) {
    first_claim_acquires_and_chooses_the_event_id(store).await;
    a_held_record_refuses_a_second_claim(store).await;
    sent_stops_every_later_claim(store).await;
    the_event_id_is_chosen_once(store).await;
    skipped_dead_lettered_and_pending_can_be_decided_again(store).await;
    pending_keeps_what_was_known(store).await;
    an_expired_lock_is_taken_over_as_abandoned(store).await;
    in_doubt_is_left_only_by_a_resend_of_its_generation(store).await;
    a_test_send_never_stops_a_live_one(store).await;
    only_the_holder_settles(store).await;
    unheld_decisions_never_replace_sent_in_doubt_or_held(store).await;
    records_expire_after_their_ttl(store).await;
    a_legacy_sent_record_is_honoured(store).await;
    concurrent_claims_acquire_once(store).await;
    get_many_reads_live_records(store).await;
    dead_letters_without_a_subject_are_counted(store).await;
    a_stores_pause_keeps_its_first_and_last_time(store).await;
    forget_and_delete_shop(store).await;
}

pub async fn first_claim_acquires_and_chooses_the_event_id<S: IdempotencyStore>(store: &S) {
    let r = request(1, t0());
    assert_eq!(
        claim(store, &r, t0()).await,
        Claim::Acquired {
            event_id: "e1".into(),
            generation: 0,
        }
    );
    let record = store
        .get(&r.key)
        .await
        .ok()
        .flatten()
        .expect("record stored");
    assert_eq!(record.state, State::InProgress);
    assert_eq!(record.holder.as_ref(), Some(&r.holder));
    assert_eq!(record.lock_until_ms, Some(r.lock_until.timestamp_millis()));
    assert_eq!(record.event_id.as_deref(), Some("e1"));
    assert_eq!(record.topic.as_deref(), Some("orders/create"));
    assert!(record.expiration >= t0().timestamp() + RECORD_TTL_SECONDS);
}

pub async fn a_held_record_refuses_a_second_claim<S: IdempotencyStore>(store: &S) {
    let r = request(2, t0());
    claim(store, &r, t0()).await;
    assert_eq!(
        claim(store, &again(&r), t0() + Duration::seconds(1)).await,
        Claim::InProgress {
            until_ms: r.lock_until.timestamp_millis()
        }
    );
}

pub async fn sent_stops_every_later_claim<S: IdempotencyStore>(store: &S) {
    let r = request(3, t0());
    claim(store, &r, t0()).await;
    settle(store, &r, sent(Mode::Live)).await;
    let record = store.get(&r.key).await.ok().flatten().expect("record");
    assert_eq!(record.state, State::Sent);
    let facts = record.sent().expect("sent facts");
    assert!(facts.match_keys.email);
    assert_eq!(facts.value.as_deref(), Some("10.00"));
    let later = t0() + Duration::days(30);
    let expected = Claim::AlreadySent {
        event_id: Some("e3".into()),
    };
    assert_eq!(claim(store, &again(&r), later).await, expected);
    let test = ClaimRequest {
        mode: Mode::Test,
        ..again(&r)
    };
    assert_eq!(claim(store, &test, later).await, expected);
    let resend = ClaimRequest {
        resend: Some(0),
        ..again(&r)
    };
    assert_eq!(
        claim(store, &resend, later).await,
        expected,
        "a resend of a sent event sends nothing"
    );
}

pub async fn the_event_id_is_chosen_once<S: IdempotencyStore>(store: &S) {
    let r = request(4, t0());
    claim(store, &r, t0()).await;
    store
        .settle(
            &r.key,
            &r.holder,
            &Settlement::Pending(Retrying {
                attempts: 1,
                last_error: "503".into(),
            }),
            t0(),
        )
        .await
        .ok();
    let other = ClaimRequest {
        event_id: "changed-template".into(),
        ..again(&r)
    };
    assert_eq!(
        claim(store, &other, t0() + Duration::seconds(1)).await,
        Claim::Acquired {
            event_id: "e4".into(),
            generation: 0,
        },
        "a later claim reuses the event_id the first one chose"
    );
}

pub async fn skipped_dead_lettered_and_pending_can_be_decided_again<S: IdempotencyStore>(
    store: &S,
) {
    let settlements = [
        Settlement::Settled(Settled::Skipped(skip())),
        Settlement::Settled(Settled::DeadLettered(letter())),
        Settlement::Pending(Retrying {
            attempts: 2,
            last_error: "429".into(),
        }),
    ];
    for (i, s) in settlements.into_iter().enumerate() {
        let r = request(10 + i as u64, t0());
        claim(store, &r, t0()).await;
        settle(store, &r, s).await;
        assert!(
            matches!(
                claim(store, &again(&r), t0() + Duration::seconds(1)).await,
                Claim::Acquired { .. }
            ),
            "settlement {i} must not stop a new delivery"
        );
    }
}

pub async fn pending_keeps_what_was_known<S: IdempotencyStore>(store: &S) {
    let r = request(20, t0());
    claim(store, &r, t0()).await;
    settle(store, &r, Settlement::Settled(Settled::Skipped(skip()))).await;
    let r2 = again(&r);
    claim(store, &r2, t0() + Duration::seconds(1)).await;
    let retry = Retrying {
        attempts: 1,
        last_error: "Pinterest answered 503".into(),
    };
    settle(store, &r2, Settlement::Pending(retry.clone())).await;
    let record = store.get(&r.key).await.ok().flatten().expect("record");
    assert_eq!(record.state, State::Pending);
    assert_eq!(record.retrying, Some(retry));
    assert_eq!(
        record.settled,
        Some(Settled::Skipped(skip())),
        "a retryable failure keeps the earlier state's facts"
    );
}

pub async fn an_expired_lock_is_taken_over_as_abandoned<S: IdempotencyStore>(store: &S) {
    let r = request(21, t0());
    claim(store, &r, t0()).await;
    let after = r.lock_until + Duration::seconds(1);
    let r2 = again(&r);
    assert_eq!(
        claim(store, &r2, after).await,
        Claim::Abandoned {
            event_id: "e21".into(),
            generation: 0,
        }
    );
    // The first holder is back: it no longer holds the lock.
    assert!(matches!(
        store
            .settle(&r.key, &r.holder, &sent(Mode::Live), after)
            .await,
        Err(StoreError::LockLost { .. })
    ));
    // A record past its time to live is acquired, not abandoned.
    let r3 = request(22, t0());
    claim(store, &r3, t0()).await;
    let much_later = t0() + Duration::seconds(RECORD_TTL_SECONDS + 1);
    assert!(matches!(
        claim(store, &again(&r3), much_later).await,
        Claim::Acquired { .. }
    ));
}

pub async fn in_doubt_is_left_only_by_a_resend_of_its_generation<S: IdempotencyStore>(store: &S) {
    let r = request(23, t0());
    claim(store, &r, t0()).await;
    settle(store, &r, doubt()).await;
    let record = store.get(&r.key).await.ok().flatten().expect("record");
    assert_eq!((record.state, record.generation), (State::InDoubt, 1));
    let t1 = t0() + Duration::seconds(5);
    assert_eq!(
        claim(store, &again(&r), t1).await,
        Claim::InDoubt { generation: 1 },
        "a plain delivery sends nothing"
    );
    let stale = ClaimRequest {
        resend: Some(0),
        ..again(&r)
    };
    assert_eq!(
        claim(store, &stale, t1).await,
        Claim::InDoubt { generation: 1 }
    );
    let resend = ClaimRequest {
        resend: Some(1),
        ..again(&r)
    };
    assert_eq!(
        claim(store, &resend, t1).await,
        Claim::Acquired {
            event_id: "e23".into(),
            generation: 1,
        }
    );
    let copy = ClaimRequest {
        holder: Holder::new(),
        ..resend.clone()
    };
    assert!(
        matches!(claim(store, &copy, t1).await, Claim::InProgress { .. }),
        "a concurrent copy of the resend sends nothing"
    );
    settle(store, &resend, sent(Mode::Live)).await;
    assert!(
        matches!(claim(store, &copy, t1).await, Claim::AlreadySent { .. }),
        "a second delivery of the resend sends nothing"
    );
    // In doubt again: the generation goes up, and the old resend is stale.
    let r2 = request(24, t0());
    claim(store, &r2, t0()).await;
    settle(store, &r2, doubt()).await;
    let resend = ClaimRequest {
        resend: Some(1),
        ..again(&r2)
    };
    claim(store, &resend, t1).await;
    settle(store, &resend, doubt()).await;
    assert_eq!(
        claim(store, &resend, t1).await,
        Claim::InDoubt { generation: 2 }
    );
}

pub async fn a_test_send_never_stops_a_live_one<S: IdempotencyStore>(store: &S) {
    let r = ClaimRequest {
        mode: Mode::Test,
        ..request(25, t0())
    };
    claim(store, &r, t0()).await;
    settle(store, &r, sent(Mode::Test)).await;
    let test_again = ClaimRequest {
        holder: Holder::new(),
        ..r.clone()
    };
    assert!(matches!(
        claim(store, &test_again, t0()).await,
        Claim::AlreadySent { .. }
    ));
    let live = ClaimRequest {
        mode: Mode::Live,
        ..again(&r)
    };
    assert_eq!(
        claim(store, &live, t0()).await,
        Claim::Acquired {
            event_id: "e25".into(),
            generation: 0,
        }
    );
}

pub async fn only_the_holder_settles<S: IdempotencyStore>(store: &S) {
    let r = request(26, t0());
    claim(store, &r, t0()).await;
    let stranger = Holder::new();
    assert!(matches!(
        store
            .settle(&r.key, &stranger, &sent(Mode::Live), t0())
            .await,
        Err(StoreError::LockLost { .. })
    ));
    settle(store, &r, sent(Mode::Live)).await;
    assert!(
        matches!(
            store
                .settle(
                    &r.key,
                    &r.holder,
                    &Settlement::Pending(Retrying {
                        attempts: 1,
                        last_error: "late".into()
                    }),
                    t0()
                )
                .await,
            Err(StoreError::LockLost { .. })
        ),
        "a settled record is not settled again"
    );
    assert_eq!(state(store, &r.key).await, State::Sent);
    let absent = key(27);
    assert!(matches!(
        store
            .settle(&absent, &r.holder, &sent(Mode::Live), t0())
            .await,
        Err(StoreError::LockLost { .. })
    ));
}

pub async fn unheld_decisions_never_replace_sent_in_doubt_or_held<S: IdempotencyStore>(store: &S) {
    let skipped = Unheld::Skipped(skip());
    let fresh = key(30);
    assert_eq!(
        store
            .record(&fresh, &skipped, "orders/create", t0())
            .await
            .ok(),
        Some(true)
    );
    assert_eq!(state(store, &fresh).await, State::Skipped);
    assert_eq!(
        store
            .record(
                &fresh,
                &Unheld::DeadLettered(letter()),
                "orders/create",
                t0()
            )
            .await
            .ok(),
        Some(true),
        "a skip may be decided again"
    );
    for (n, s) in [
        (31, Some(sent(Mode::Live))),
        (32, Some(doubt())),
        (33, None),
    ] {
        let r = request(n, t0());
        claim(store, &r, t0()).await;
        if let Some(s) = s {
            settle(store, &r, s).await;
        }
        let before = state(store, &r.key).await;
        assert_eq!(
            store
                .record(&r.key, &skipped, "orders/create", t0())
                .await
                .ok(),
            Some(false)
        );
        assert_eq!(state(store, &r.key).await, before);
    }
}

pub async fn records_expire_after_their_ttl<S: IdempotencyStore>(store: &S) {
    let r = request(40, t0());
    claim(store, &r, t0()).await;
    settle(store, &r, sent(Mode::Live)).await;
    let after_ttl = t0() + Duration::seconds(RECORD_TTL_SECONDS + 1);
    assert!(matches!(
        claim(store, &again(&r), after_ttl).await,
        Claim::Acquired { .. }
    ));
}

pub async fn a_legacy_sent_record_is_honoured<S: IdempotencyStore>(store: &S) {
    // Under a custom template the old key differs: a sent record there still stops the send.
    let old = IdempotencyKey::new(SHOP, "checkout", "order-41")
        .unwrap_or_else(|_| unreachable!("valid key"));
    let old_claim = ClaimRequest {
        key: old.clone(),
        ..request(0, t0())
    };
    claim(store, &old_claim, t0()).await;
    settle(store, &old_claim, sent(Mode::Live)).await;
    let r = ClaimRequest {
        legacy: Some(old),
        ..request(41, t0())
    };
    assert!(matches!(
        claim(store, &r, t0()).await,
        Claim::AlreadySent { .. }
    ));
}

pub async fn concurrent_claims_acquire_once<S: IdempotencyStore>(store: &S) {
    let base = request(50, t0());
    let claims = futures::future::join_all((0..16).map(|_| {
        let r = again(&base);
        async move { store.claim(&r, t0()).await }
    }))
    .await;
    let acquired = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Acquired { .. })))
        .count();
    assert_eq!(
        acquired, 1,
        "exactly one concurrent claim acquires: {claims:?}"
    );
}

pub async fn get_many_reads_live_records<S: IdempotencyStore>(store: &S) {
    let keys: Vec<IdempotencyKey> = (60..190).map(key).collect();
    for k in keys.iter().step_by(2) {
        store
            .record(k, &Unheld::Skipped(skip()), "orders/create", t0())
            .await
            .unwrap_or_else(|e| panic!("record failed: {e}"));
    }
    let found = store
        .get_many(&keys, t0())
        .await
        .unwrap_or_else(|e| panic!("get_many failed: {e}"));
    assert_eq!(found.len(), 65, "every other of 130 keys, past one batch");
    let later = t0() + Duration::seconds(RECORD_TTL_SECONDS + 1);
    assert!(
        store
            .get_many(&keys, later)
            .await
            .is_ok_and(|f| f.is_empty())
    );
}

pub async fn dead_letters_without_a_subject_are_counted<S: IdempotencyStore>(store: &S) {
    for _ in 0..3 {
        store
            .count_dead_letter("c.myshopify.com", "undecodable", t0())
            .await
            .unwrap_or_else(|e| panic!("count failed: {e}"));
    }
    store
        .count_dead_letter(
            "c.myshopify.com",
            "invalid_payload",
            t0() + Duration::days(1),
        )
        .await
        .unwrap_or_else(|e| panic!("count failed: {e}"));
    let day = t0().date_naive();
    let counts = store
        .dead_letter_counts("c.myshopify.com", day, day)
        .await
        .unwrap_or_else(|e| panic!("counts failed: {e}"));
    assert_eq!(counts.len(), 1);
    assert_eq!(counts.get(&(day, "undecodable".to_owned())), Some(&3));
}

pub async fn a_stores_pause_keeps_its_first_and_last_time<S: IdempotencyStore>(store: &S) {
    let shop = "c.myshopify.com";
    assert!(store.pause(shop).await.ok().flatten().is_none());
    let later = t0() + Duration::hours(2);
    for (reason, at) in [
        (super::PauseReason::TokenRefused, t0()),
        (super::PauseReason::RateLimited, later),
    ] {
        store
            .mark_paused(shop, reason, at)
            .await
            .unwrap_or_else(|e| panic!("mark_paused failed: {e}"));
    }
    let pause = store
        .pause(shop)
        .await
        .unwrap_or_else(|e| panic!("pause failed: {e}"))
        .unwrap_or_else(|| panic!("no pause"));
    assert_eq!(
        pause,
        super::Pause {
            reason: super::PauseReason::RateLimited,
            since: t0(),
            last_at: later,
        }
    );
    assert!(
        store
            .pause("d.myshopify.com")
            .await
            .ok()
            .flatten()
            .is_none()
    );
}

pub async fn forget_and_delete_shop<S: IdempotencyStore>(store: &S) {
    let other = IdempotencyKey::order("b.myshopify.com", 1).unwrap_or_else(|_| unreachable!());
    let r = ClaimRequest {
        key: other.clone(),
        ..request(0, t0())
    };
    claim(store, &r, t0()).await;
    let mine = key(70);
    store.forget(&mine).await.ok();
    assert!(store.get(&mine).await.ok().flatten().is_none());
    let deleted = store
        .delete_shop(SHOP)
        .await
        .unwrap_or_else(|e| panic!("delete_shop failed: {e}"));
    assert!(deleted > 10, "{deleted}");
    assert!(store.get(&key(3)).await.ok().flatten().is_none());
    assert!(store.get(&other).await.ok().flatten().is_some());
    let _ = store.delete_shop("c.myshopify.com").await;
    assert!(
        store
            .pause("c.myshopify.com")
            .await
            .is_ok_and(|p| p.is_none())
    );
    let day = t0().date_naive();
    assert!(
        store
            .dead_letter_counts("c.myshopify.com", day, day)
            .await
            .is_ok_and(|c| c.is_empty())
    );
}

/// Writes a record the way dispatch does (a claim, then the holder's settle) at `at`; for tests
/// that need records in a store.
pub async fn write_settled<S: IdempotencyStore>(
    store: &S,
    key: IdempotencyKey,
    settled: Settled,
    at: DateTime<Utc>,
) {
    let order = key.order_id().unwrap_or_default();
    let request = ClaimRequest {
        key,
        ..request(order, at)
    };
    let request = ClaimRequest {
        event_id: order.to_string(),
        ..request
    };
    claim(store, &request, at).await;
    store
        .settle(
            &request.key,
            &request.holder,
            &Settlement::Settled(settled),
            at,
        )
        .await
        .unwrap_or_else(|e| panic!("settle failed: {e}"));
}
