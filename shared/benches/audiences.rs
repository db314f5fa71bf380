//! The audience sync's in-memory work for a store of 100,000 customers: hashing their emails as
//! they are read (`Customer::new`), planning a full comparison against the list's record (1% of
//! the customers changed), and building the requests' `records` strings. Before the timings, it
//! measures the heap such a sync holds at its peak (the customers read, the record, the plan and
//! its batches) with a counting allocator, so the watch function's memory can be sized from a
//! figure rather than a guess.
//!
//! Run with `cargo bench -p pinrelay --bench audiences`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pinrelay::audiences::{Customer, CustomerId, ListKind, MarketingState, Scope, plan};

/// Counts the bytes allocated and the peak, for the measurement before the timings.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CUSTOMERS: u64 = 100_000;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// The store as read: every customer subscribed, addresses hashed on the way in; customers
/// whose id ends in 00 changed their address since the last upload.
fn read_store() -> Vec<Customer> {
    (1..=CUSTOMERS)
        .map(|id| {
            let email = if id % 100 == 0 {
                format!("new-customer{id}@example.com")
            } else {
                format!("customer{id}@example.com")
            };
            Customer::new(
                id,
                Some(&email),
                MarketingState::Subscribed,
                false,
                id % 3,
                at(),
            )
        })
        .collect()
}

/// The list's record before the run: every customer's old hash.
fn record() -> BTreeMap<CustomerId, String> {
    (1..=CUSTOMERS)
        .map(|id| {
            let hash = pinrelay::audiences::record_hash(&format!("customer{id}@example.com"));
            (id, hash.unwrap())
        })
        .collect()
}

fn audiences(c: &mut Criterion) {
    // The peak heap of one list's sync: the record, the customers read, the plan, its batches.
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let recorded = record();
    let customers = read_store();
    let planned = plan(
        &recorded,
        &customers,
        ListKind::Customers,
        Scope::Full { resend: false },
    );
    let batches = planned.batches(10_000);
    let records: usize = batches.iter().map(|b| b.records().len()).sum();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    eprintln!(
        "peak heap of a full comparison of {CUSTOMERS} customers: {peak} bytes ({} bytes a customer); plan: {} to add, {} to remove, {} unchanged, {records} bytes of records",
        peak / CUSTOMERS as usize,
        planned.add.len(),
        planned.remove.len(),
        planned.unchanged,
    );
    drop((batches, planned));

    let mut group = c.benchmark_group("audiences");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CUSTOMERS));
    group.bench_function("read and hash 100k customers", |b| {
        b.iter(|| black_box(read_store()))
    });
    group.bench_function("plan a full comparison of 100k customers", |b| {
        b.iter(|| {
            black_box(plan(
                black_box(&recorded),
                black_box(&customers),
                ListKind::Customers,
                Scope::Full { resend: false },
            ))
        })
    });
    group.bench_function("records of a full re-send of 100k customers", |b| {
        let resend = plan(
            &recorded,
            &customers,
            ListKind::Customers,
            Scope::Full { resend: true },
        );
        b.iter(|| {
            let batches = resend.batches(10_000);
            black_box(batches.iter().map(|b| b.records().len()).sum::<usize>())
        })
    });
    group.finish();
}

criterion_group!(benches, audiences);
criterion_main!(benches);
