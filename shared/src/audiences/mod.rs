//! Customer-list audiences: keep a Pinterest customer list in step with the store's consenting
//! customers (issue 24). Not the OAuth sign-in; the webhooks reach the ledger through dispatch.
//!
//! # Stages
//! - [`customer`]: who a customer is, who is a member of which list ([`ListKind`]), and the record
//!   uploaded for them: the CAPI `em` digest (pure).
//! - [`plan`](mod@plan): the recorded uploads beside the observed customers give the `ADD` and `REMOVE`
//!   batches ([`plan::plan`], pure).
//! - [`ledger`]: the [`AudienceStore`] port: per store and list, the ids Pinterest gave, each
//!   customer id with the hash uploaded, the sync marks, a one-writer lease, the pending removals
//!   and the consent re-checks; its SQLite adapter
//!   is [`sqlite`], its DynamoDB adapter `dynamodb` (feature `dynamodb`), and [`contract`] the
//!   suite every adapter passes.
//! - [`sync`](mod@sync): the driver: lease, create the list and its audience once, read customers (and the
//!   re-checked ones by id), send the batches, record each accepted one; [`sync_pending`], the
//!   light pass (pending removals and re-checks only).
//! - [`job`]: the scheduled job over every store that keeps lists (`AUDIENCE_LISTS`): the stack's
//!   schedule and `pinrelay serve` run it.

pub mod contract;
pub mod customer;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod job;
pub mod ledger;
pub mod plan;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sync;

pub use customer::{Customer, CustomerId, ListKind, MarketingState, record_hash};
pub use ledger::{AudienceStore, Lease, LedgerError, ListState, Marks, PendingRemoval, Recheck};
pub use plan::{Batch, DEFAULT_BATCH_SIZE, Operation, Plan, Scope, plan};
pub use sync::{
    CustomerSource, ListSummary, Mode, ProgressEvent, Settings, SyncError, sync, sync_pending,
};
