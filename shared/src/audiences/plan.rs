//! The planner: what to `ADD` to and `REMOVE` from one Pinterest customer list so that it holds
//! exactly the consenting customers, given what was uploaded before. Pure and synchronous.
//!
//! Pinterest keeps no readable membership, so "what was uploaded" is the ledger's record
//! (customer id → hash). A `REMOVE` always names the hash that was uploaded, never a recomputed
//! one: after an email change the old hash goes and the new one comes.
//!
//! Known limit: two customers of one store sharing an address (Shopify refuses duplicates, so
//! only through a race) share a hash, and removing one removes the other's upload too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::customer::{Customer, CustomerId, ListKind};

/// The most records one request carries unless configured otherwise: Pinterest publishes no
/// limit, and 10,000 is what other uploaders use (findings §1).
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

/// How much of the store the observed customers cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only customers changed since the watermark: a recorded customer not observed is unchanged.
    Incremental,
    /// Every customer: a recorded customer not observed was deleted and is removed.
    Full {
        /// Re-`ADD` every member, unchanged ones too, so Pinterest matches people who joined it
        /// since their first upload.
        resend: bool,
    },
}

/// `operation_type` of a `PATCH …/customer_lists/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Upload records.
    Add,
    /// Withdraw records.
    Remove,
}

impl Operation {
    /// The wire value, `ADD` or `REMOVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Remove => "REMOVE",
        }
    }
}

/// One request's worth of one operation: each customer id with the hash it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `ADD` or `REMOVE`.
    pub operation: Operation,
    /// The customers and their hashes; the request's records are the hashes.
    pub entries: Vec<(CustomerId, String)>,
}

impl Batch {
    /// The hashes, as the one comma-separated string Pinterest's `records` takes.
    pub fn records(&self) -> String {
        let mut records = String::with_capacity(self.entries.len() * 65);
        for (i, (_, hash)) in self.entries.iter().enumerate() {
            if i > 0 {
                records.push(',');
            }
            records.push_str(hash);
        }
        records
    }

    /// The record once Pinterest accepted this batch: an `ADD` sets each customer's hash, a
    /// `REMOVE` drops each customer whose recorded hash is the one removed.
    pub fn apply_to(&self, record: &mut BTreeMap<CustomerId, String>) {
        for (id, hash) in &self.entries {
            match self.operation {
                Operation::Add => {
                    record.insert(*id, hash.clone());
                }
                Operation::Remove => {
                    if record.get(id) == Some(hash) {
                        record.remove(id);
                    }
                }
            }
        }
    }
}

/// What one list needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Hashes to withdraw (unsubscribed, opted out, deleted, or an old address).
    pub remove: Vec<(CustomerId, String)>,
    /// Hashes to upload (new members, new addresses, and every member on a re-send).
    pub add: Vec<(CustomerId, String)>,
    /// Members whose upload stands and is not re-sent.
    pub unchanged: usize,
}

impl Plan {
    /// True when nothing is to be sent.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// The requests, removals first (so a customer whose address changed is never left without
    /// their new hash recorded), each of at most `batch_size` records (at least 1).
    pub fn batches(&self, batch_size: usize) -> Vec<Batch> {
        let size = batch_size.max(1);
        let chunk = |operation, entries: &[(CustomerId, String)]| {
            entries
                .chunks(size)
                .map(|c| Batch {
                    operation,
                    entries: c.to_vec(),
                })
                .collect::<Vec<_>>()
        };
        let mut batches = chunk(Operation::Remove, &self.remove);
        batches.extend(chunk(Operation::Add, &self.add));
        batches
    }
}

/// The plan that brings the `kind` list from `recorded` (customer id → uploaded hash) to the
/// membership `observed` shows, under `scope`. A customer observed twice counts as last seen.
pub fn plan(
    recorded: &BTreeMap<CustomerId, String>,
    observed: &[Customer],
    kind: ListKind,
    scope: Scope,
) -> Plan {
    let wanted: BTreeMap<CustomerId, Option<&str>> = observed
        .iter()
        .map(|c| (c.id, c.member_hash(kind)))
        .collect();
    let resend = matches!(scope, Scope::Full { resend: true });
    let mut plan = Plan::default();
    for (&id, &want) in &wanted {
        match (recorded.get(&id), want) {
            (None, None) => {}
            (None, Some(new)) => plan.add.push((id, new.to_owned())),
            (Some(old), None) => plan.remove.push((id, old.clone())),
            (Some(old), Some(new)) if old == new => {
                if resend {
                    plan.add.push((id, new.to_owned()));
                } else {
                    plan.unchanged += 1;
                }
            }
            (Some(old), Some(new)) => {
                plan.remove.push((id, old.clone()));
                plan.add.push((id, new.to_owned()));
            }
        }
    }
    for (&id, old) in recorded {
        if wanted.contains_key(&id) {
            continue;
        }
        match scope {
            Scope::Full { .. } => plan.remove.push((id, old.clone())),
            Scope::Incremental => plan.unchanged += 1,
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use proptest::prelude::*;

    use super::*;
    use crate::audiences::customer::{MarketingState, record_hash};

    fn subscribed(id: CustomerId, email: &str) -> Customer {
        Customer::new(
            id,
            Some(email),
            MarketingState::Subscribed,
            false,
            1,
            DateTime::UNIX_EPOCH,
        )
    }

    fn with_state(id: CustomerId, email: &str, state: MarketingState) -> Customer {
        Customer {
            marketing_state: state,
            ..subscribed(id, email)
        }
    }

    fn h(email: &str) -> String {
        record_hash(email).unwrap()
    }

    #[test]
    fn new_members_are_added_and_others_ignored() {
        let observed = [
            subscribed(1, "a@x.io"),
            with_state(2, "b@x.io", MarketingState::Pending),
        ];
        let plan = plan(
            &BTreeMap::new(),
            &observed,
            ListKind::Customers,
            Scope::Incremental,
        );
        assert_eq!(plan.add, [(1, h("a@x.io"))]);
        assert!(plan.remove.is_empty());
    }

    #[test]
    fn an_unsubscribed_member_is_removed_by_the_hash_uploaded() {
        let recorded = BTreeMap::from([(1, h("a@x.io"))]);
        let observed = [with_state(1, "a@x.io", MarketingState::Unsubscribed)];
        let plan = plan(
            &recorded,
            &observed,
            ListKind::Customers,
            Scope::Incremental,
        );
        assert_eq!(plan.remove, [(1, h("a@x.io"))]);
        assert!(plan.add.is_empty());
    }

    #[test]
    fn an_email_change_removes_the_old_hash_and_adds_the_new() {
        let recorded = BTreeMap::from([(1, h("old@x.io"))]);
        let plan = plan(
            &recorded,
            &[subscribed(1, "new@x.io")],
            ListKind::Customers,
            Scope::Incremental,
        );
        assert_eq!(plan.remove, [(1, h("old@x.io"))]);
        assert_eq!(plan.add, [(1, h("new@x.io"))]);
    }

    #[test]
    fn a_full_comparison_removes_customers_no_longer_there() {
        let recorded = BTreeMap::from([(1, h("a@x.io")), (2, h("b@x.io"))]);
        let observed = [subscribed(1, "a@x.io")];
        let full = plan(
            &recorded,
            &observed,
            ListKind::Customers,
            Scope::Full { resend: false },
        );
        assert_eq!(full.remove, [(2, h("b@x.io"))]);
        assert_eq!(full.unchanged, 1);
        let incremental = plan(
            &recorded,
            &observed,
            ListKind::Customers,
            Scope::Incremental,
        );
        assert!(incremental.is_empty());
        assert_eq!(incremental.unchanged, 2);
    }

    #[test]
    fn a_resend_adds_every_member_again() {
        let recorded = BTreeMap::from([(1, h("a@x.io"))]);
        let plan = plan(
            &recorded,
            &[subscribed(1, "a@x.io")],
            ListKind::Customers,
            Scope::Full { resend: true },
        );
        assert_eq!(plan.add, [(1, h("a@x.io"))]);
        assert_eq!(plan.unchanged, 0);
    }

    #[test]
    fn batches_hold_at_most_the_batch_size_removals_first() {
        let plan = Plan {
            remove: (0..3).map(|i| (i, format!("r{i}"))).collect(),
            add: (0..5).map(|i| (i, format!("a{i}"))).collect(),
            unchanged: 0,
        };
        let batches = plan.batches(2);
        let shape: Vec<(Operation, usize)> = batches
            .iter()
            .map(|b| (b.operation, b.entries.len()))
            .collect();
        use Operation::*;
        assert_eq!(
            shape,
            [(Remove, 2), (Remove, 1), (Add, 2), (Add, 2), (Add, 1)]
        );
        assert_eq!(batches[0].records(), "r0,r1");
    }

    fn any_customer() -> impl Strategy<Value = Customer> {
        use MarketingState::*;
        (
            0u64..30,
            proptest::option::of(0u8..8),
            proptest::sample::select(vec![
                Subscribed,
                Subscribed,
                Pending,
                Unsubscribed,
                NotSubscribed,
                Redacted,
            ]),
            any::<bool>(),
            0u64..3,
        )
            .prop_map(|(id, email, state, opt_out, orders)| {
                let email = email.map(|e| format!("user{e}@shop.example"));
                Customer::new(
                    id,
                    email.as_deref(),
                    state,
                    opt_out,
                    orders,
                    DateTime::UNIX_EPOCH,
                )
            })
    }

    proptest! {
        #[test]
        fn the_plan_applied_to_the_record_gives_the_wanted_membership(
            recorded in proptest::collection::btree_map(0u64..30, (0u8..8).prop_map(|e| h(&format!("user{e}@shop.example"))), 0..20),
            observed in proptest::collection::vec(any_customer(), 0..40),
            full in any::<bool>(),
            resend in any::<bool>(),
            purchasers in any::<bool>(),
            batch_size in 1usize..7,
        ) {
            let kind = if purchasers { ListKind::Purchasers } else { ListKind::Customers };
            let scope = if full { Scope::Full { resend } } else { Scope::Incremental };
            let plan = plan(&recorded, &observed, kind, scope);

            let mut wanted = if full { BTreeMap::new() } else { recorded.clone() };
            for c in &observed {
                match c.member_hash(kind) {
                    Some(hash) => { wanted.insert(c.id, hash.to_owned()); }
                    None => { wanted.remove(&c.id); }
                }
            }

            let mut record = recorded.clone();
            for batch in plan.batches(batch_size) {
                prop_assert!(batch.entries.len() <= batch_size);
                batch.apply_to(&mut record);
            }
            prop_assert_eq!(record, wanted);
        }
    }
}
