//! The sync driver: brings each of a store's customer lists in step with its consenting
//! customers. Reads customers through a [`CustomerSource`], talks to Pinterest through a
//! [`CustomerListsApi`], records in an [`AudienceStore`]. Time comes in as `now`. A full read
//! is Shopify's bulk export of the customers; one not ready by [`Settings::read_deadline`] ends
//! the run with [`SyncError::ReadContinues`] before anything is sent, and the next run continues
//! with the same export.
//!
//! Per list: take the one-writer lease; send the pending removals of deleted or redacted
//! customers; choose the [`Scope`] (a full comparison when the last is
//! [`Settings::full_every`] old, with a re-send of everyone when the last re-send is
//! [`Settings::resend_every`] old); plan; create the list with its first `ADD` batch (and its
//! `CUSTOMER_LIST` audience) if the record has none and Pinterest has none of that name (a
//! creation whose answer was lost is found, not repeated); renew the lease before each batch (a
//! run that lost it to another writer stops with [`SyncError::Busy`] before sending more); send
//! each batch and record it once Pinterest accepted it; move the marks forward only when every
//! batch was accepted. A run stopped half-way
//! repeats at most the request in flight, and loses no removal.
//!
//! A customer with a pending removal (deleted or redacted, [`AudienceStore::remove_customer`])
//! is never added back by the run that sends the removal, even if the customers it read still
//! show them.
//!
//! Consent changes (`customers_email_marketing_consent/update`, through the queue) are queued
//! re-checks ([`AudienceStore::queue_recheck`]). Each run reads the re-checked customers by id
//! after the store's read ([`CustomerSource::customers_by_id`]); their fresh state replaces theirs
//! in the read, and one not found leaves every list. Newer consent wins: the re-checks are read
//! again right before the lists are sent, and a customer queued since the run's first read (or
//! queued again with a newer time) gets no `ADD` from this run; the next run reads them fresh.
//! The re-checks are cleared once every list was sent, each only if not queued again since, and
//! only when the run covered every list the store has. [`sync_pending`] is the light pass that does
//! only this and the pending removals, without reading the store, so that a withdrawal reaches
//! Pinterest within minutes of its webhook.
//!
//! A deletion or redaction (`customers/delete`, `customers/redact`, through dispatch) queues a
//! re-check too, so even a customer who was no member yet is read again by id (and found gone)
//! rather than added from a snapshot taken before it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::customer::{Customer, CustomerId, ListKind};
use super::ledger::{AudienceStore, Lease, LedgerError, Marks, Recheck};
use super::plan::{Batch, DEFAULT_BATCH_SIZE, Operation, Scope, plan};
use crate::pinterest::audiences::{AudienceApiError, CustomerListsApi};
use crate::shopify::admin::{AdminApi, AdminError, supports_bulk_operations};
use tokio::time::Instant;

/// Where customers come from: the Admin API in production, a fixed list in tests.
pub trait CustomerSource: Send + Sync {
    /// Every customer (`since` is `None`) or those updated at or after `since`; `progress` gets
    /// the running count. `now` is the run's time; `deadline`, when set, is when a read that
    /// waits (a bulk export) stops waiting.
    ///
    /// # Errors
    /// MUST return the Admin API's error when a page cannot be read, and
    /// [`AdminError::BulkOperationRunning`] when the deadline came before the export was ready.
    fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> impl Future<Output = Result<Vec<Customer>, AdminError>> + Send;

    /// The customers of `ids` that exist, read now; an id left out is a customer the store no
    /// longer has.
    ///
    /// # Errors
    /// MUST return the Admin API's error when they cannot be read.
    fn customers_by_id(
        &self,
        ids: &[CustomerId],
    ) -> impl Future<Output = Result<Vec<Customer>, AdminError>> + Send;
}

/// A full read is a bulk operation (when the API version has `bulkOperations`), continued by
/// the next run when cut off by the deadline; a read since a time is the paged `customers` query.
impl CustomerSource for AdminApi {
    async fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Customer>, AdminError> {
        match since {
            None if supports_bulk_operations(self.version()) => {
                AdminApi::customers_bulk(self, now, deadline, progress).await
            }
            since => AdminApi::customers(self, since, progress).await,
        }
    }

    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>, AdminError> {
        AdminApi::customers_by_id(self, ids).await
    }
}

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The lists to keep: [`ListKind::Customers`], and [`ListKind::Purchasers`] when asked.
    pub kinds: Vec<ListKind>,
    /// The most records a request carries.
    pub batch_size: usize,
    /// A full comparison (catches deletions and data-sale opt-outs) at least this often.
    pub full_every: chrono::Duration,
    /// Every member re-sent at least this often (Pinterest matches people who joined since).
    pub resend_every: chrono::Duration,
    /// Compare in full this run whatever the marks say.
    pub force_full: bool,
    /// How long the lease is held before another writer may take it over.
    pub lease_ttl: Duration,
    /// Who holds the lease (a process id, a Lambda request id).
    pub holder: String,
    /// When a full read stops waiting for Shopify's export ([`SyncError::ReadContinues`]);
    /// `None` waits for it.
    pub read_deadline: Option<Instant>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            kinds: vec![ListKind::Customers],
            batch_size: DEFAULT_BATCH_SIZE,
            full_every: chrono::Duration::days(7),
            resend_every: chrono::Duration::days(30),
            force_full: false,
            lease_ttl: Duration::from_secs(15 * 60),
            holder: format!("pid-{}", std::process::id()),
            read_deadline: None,
        }
    }
}

/// Whether to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send to Pinterest and record.
    Live,
    /// Compute the plan only: no Pinterest call, no ledger write (no lease either).
    DryRun,
}

/// What a run reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Customers read so far.
    Read(usize),
    /// A list's plan: how many records will be sent.
    Planned {
        /// Which list.
        kind: ListKind,
        /// Records to send.
        records: usize,
    },
    /// Records of that list accepted so far.
    Sent {
        /// Which list.
        kind: ListKind,
        /// Records accepted so far.
        records: usize,
    },
}

/// What a run did to one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    /// Which list.
    pub kind: ListKind,
    /// How much of the store was compared.
    pub scope: Scope,
    /// Pinterest's list id (`None` when none exists yet).
    pub list_id: Option<String>,
    /// Its audience id.
    pub audience_id: Option<String>,
    /// Records added (or that would be, in a dry run).
    pub added: usize,
    /// Records removed, pending removals included.
    pub removed: usize,
    /// Members whose upload stands.
    pub unchanged: usize,
    /// Requests sent (or that would be).
    pub requests: usize,
    /// The list's status after the run (`READY`, `TOO_SMALL`…), when read.
    pub status: Option<String>,
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Another writer holds the list.
    #[error(
        "another sync of the {kind} list of {shop} is running ({holder}, until {until}); try again after it"
    )]
    Busy {
        /// The store.
        shop: String,
        /// The list.
        kind: ListKind,
        /// Who holds it.
        holder: String,
        /// Until when.
        until: DateTime<Utc>,
    },
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Customers could not be read.
    #[error("could not read the store's customers")]
    Shopify(#[source] AdminError),
    /// Shopify's export of the customers was not ready by [`Settings::read_deadline`]; nothing
    /// was sent, and the next run continues with the same export.
    #[error(
        "Shopify is still exporting the store's customers (bulk operation {operation}); nothing was sent, and the next run continues with this export"
    )]
    ReadContinues {
        /// The bulk operation the next run continues.
        operation: String,
        /// The Admin API's error.
        #[source]
        source: AdminError,
    },
    /// Pinterest failed; what was accepted before is recorded and the next run resumes.
    #[error(
        "the {kind} list sync stopped after {requests} accepted requests; run it again to resume"
    )]
    Pinterest {
        /// The list.
        kind: ListKind,
        /// Requests accepted before the failure.
        requests: usize,
        /// What failed.
        #[source]
        source: AudienceApiError,
    },
}

/// Syncs `shop`'s lists (see the module docs) and returns one summary per list of
/// [`Settings::kinds`].
///
/// # Errors
/// [`SyncError`]: the first failure stops the run; what Pinterest accepted before is recorded.
#[allow(clippy::too_many_arguments)]
pub async fn sync<S, A, L>(
    shop: &str,
    source: &S,
    api: &A,
    ledger: &L,
    settings: &Settings,
    mode: Mode,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(ProgressEvent) + Send),
) -> Result<Vec<ListSummary>, SyncError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    run(
        Pass::Sync,
        shop,
        source,
        api,
        ledger,
        settings,
        mode,
        now,
        progress,
    )
    .await
}

/// The light pass, every few minutes: sends `shop`'s pending removals and applies its consent
/// re-checks ([`AudienceStore::rechecks`], read fresh by id) to each list of [`Settings::kinds`],
/// without reading the whole store; no mark moves, and a list not created yet gets no `ADD` (its
/// first [`sync`] reads everyone). Summaries say [`Scope::Incremental`], and their `unchanged`
/// counts only re-checked members.
///
/// # Errors
/// [`SyncError`], as [`sync`].
#[allow(clippy::too_many_arguments)]
pub async fn sync_pending<S, A, L>(
    shop: &str,
    source: &S,
    api: &A,
    ledger: &L,
    settings: &Settings,
    mode: Mode,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(ProgressEvent) + Send),
) -> Result<Vec<ListSummary>, SyncError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    run(
        Pass::Pending,
        shop,
        source,
        api,
        ledger,
        settings,
        mode,
        now,
        progress,
    )
    .await
}

/// Which pass a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// [`sync`]: the store's customers (all, or changed since the watermark) and the re-checks.
    Sync,
    /// [`sync_pending`]: pending removals and re-checks only.
    Pending,
}

/// Runs `pass` under the lists' leases, and gives them back.
#[allow(clippy::too_many_arguments)]
async fn run<S, A, L>(
    pass: Pass,
    shop: &str,
    source: &S,
    api: &A,
    ledger: &L,
    settings: &Settings,
    mode: Mode,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(ProgressEvent) + Send),
) -> Result<Vec<ListSummary>, SyncError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    let mut leased = Vec::new();
    let result = sync_leased(
        pass,
        shop,
        source,
        api,
        ledger,
        settings,
        mode,
        now,
        progress,
        &mut leased,
    )
    .await;
    for kind in leased {
        if let Err(e) = ledger.release(shop, kind, &settings.holder).await {
            tracing::warn!(shop, list = kind.label(), error.message = %e, "audience lease not released; it expires");
        }
    }
    result
}

/// The re-checks queued since `read` was taken (new, or queued again with a newer time): their
/// customers' consent may have changed after the state this run applies.
fn newer_rechecks(read: &[Recheck], latest: &[Recheck]) -> BTreeSet<CustomerId> {
    let read: BTreeMap<CustomerId, DateTime<Utc>> =
        read.iter().map(|r| (r.customer_id, r.at)).collect();
    latest
        .iter()
        .filter(|r| read.get(&r.customer_id).is_none_or(|at| r.at > *at))
        .map(|r| r.customer_id)
        .collect()
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn sync_leased<S, A, L>(
    pass: Pass,
    shop: &str,
    source: &S,
    api: &A,
    ledger: &L,
    settings: &Settings,
    mode: Mode,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(ProgressEvent) + Send),
    leased: &mut Vec<ListKind>,
) -> Result<Vec<ListSummary>, SyncError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    let mut lists = Vec::new();
    for &kind in &settings.kinds {
        if mode == Mode::Live {
            match ledger
                .acquire(shop, kind, &settings.holder, now, settings.lease_ttl)
                .await?
            {
                Lease::Acquired => leased.push(kind),
                Lease::Held { holder, until } => {
                    return Err(SyncError::Busy {
                        shop: shop.to_owned(),
                        kind,
                        holder,
                        until,
                    });
                }
            }
        }
        let state = ledger.state(shop, kind).await?;
        let due = |last: Option<DateTime<Utc>>, every| last.is_none_or(|t| now - t >= every);
        let scope = if pass == Pass::Pending {
            Scope::Incremental
        } else if settings.force_full || due(state.last_full, settings.full_every) {
            Scope::Full {
                resend: due(state.last_resend, settings.resend_every),
            }
        } else {
            Scope::Incremental
        };
        lists.push((kind, state, scope));
    }

    let full = lists
        .iter()
        .any(|(_, _, scope)| matches!(scope, Scope::Full { .. }));
    let since = if full {
        None
    } else {
        lists.iter().filter_map(|(_, s, _)| s.watermark).min()
    };
    let rechecks = ledger.rechecks(shop).await?;
    let mut customers = match pass {
        Pass::Sync => source
            .customers(since, now, settings.read_deadline, &mut |n| {
                progress(ProgressEvent::Read(n))
            })
            .await
            .map_err(|e| match e {
                AdminError::BulkOperationRunning { ref id, .. } => SyncError::ReadContinues {
                    operation: id.clone(),
                    source: e,
                },
                e => SyncError::Shopify(e),
            })?,
        Pass::Pending => Vec::new(),
    };
    // Only the store's read moves the watermark: a re-check read later may be newer than
    // customers changed in between, which the next incremental read must still see.
    let watermark = customers.iter().map(|c| c.updated_at).max();
    // Re-checked customers are read now, after the store's read: their fresh state replaces
    // theirs in it, and one not found is gone from every list.
    let rechecked: BTreeSet<CustomerId> = rechecks.iter().map(|r| r.customer_id).collect();
    let mut gone = rechecked.clone();
    if !rechecked.is_empty() {
        let ids: Vec<CustomerId> = rechecked.iter().copied().collect();
        let fresh = source
            .customers_by_id(&ids)
            .await
            .map_err(SyncError::Shopify)?;
        customers.retain(|c| !rechecked.contains(&c.id));
        for c in &fresh {
            gone.remove(&c.id);
        }
        customers.extend(fresh.into_iter().filter(|c| rechecked.contains(&c.id)));
    }

    let mut summaries = Vec::new();
    for (kind, state, scope) in lists {
        // The light pass without re-checks only sends pending removals: no member is needed.
        let recorded = if pass == Pass::Pending && rechecks.is_empty() {
            BTreeMap::new()
        } else {
            ledger.members(shop, kind).await?
        };
        let pending: Vec<(u64, String)> = ledger
            .pending_removals(shop, kind)
            .await?
            .into_iter()
            .map(|r| (r.customer_id, r.hash))
            .collect();
        let mut planned = plan(&recorded, &customers, kind, scope);
        // A re-checked customer the store no longer has leaves the list (a full comparison
        // already removes them; an incremental one would leave them).
        for id in &gone {
            if let Some(hash) = recorded.get(id)
                && !planned.remove.iter().any(|(r, h)| r == id && h == hash)
            {
                planned.remove.push((*id, hash.clone()));
                planned.unchanged = planned.unchanged.saturating_sub(1);
            }
        }
        // A customer removed (deleted, redacted) since is never added back from the customers
        // read: the removal is newer than that read.
        planned
            .add
            .retain(|(id, _)| !pending.iter().any(|(removed, _)| removed == id));
        // Newer consent wins: a customer whose consent changed after this run's reads (a
        // re-check queued since) is not added from them; the next run reads them fresh.
        if !planned.add.is_empty() {
            let newer = newer_rechecks(&rechecks, &ledger.rechecks(shop).await?);
            planned.add.retain(|(id, _)| !newer.contains(id));
        }
        // The light pass creates no list: the first sync reads everyone.
        if pass == Pass::Pending && state.list_id.is_none() {
            planned.add.clear();
        }
        // Removals of deleted or redacted customers go first, in the same requests as the plan's.
        planned.remove.splice(0..0, pending);
        let batches = planned.batches(settings.batch_size);
        let records: usize = batches.iter().map(|b| b.entries.len()).sum();
        progress(ProgressEvent::Planned { kind, records });
        let count = |op| {
            batches
                .iter()
                .filter(|b| b.operation == op)
                .map(|b| b.entries.len())
                .sum()
        };
        let mut summary = ListSummary {
            kind,
            scope,
            list_id: state.list_id.clone(),
            audience_id: state.audience_id.clone(),
            added: count(Operation::Add),
            removed: count(Operation::Remove),
            unchanged: planned.unchanged,
            requests: batches.len(),
            status: None,
        };
        if mode == Mode::DryRun {
            summaries.push(summary);
            continue;
        }
        let sent = send(
            shop,
            kind,
            api,
            ledger,
            &mut summary,
            batches,
            (now, settings),
            progress,
        )
        .await;
        summary.requests = sent.map_err(|(requests, source)| match source {
            Failure::Api(source) => SyncError::Pinterest {
                kind,
                requests,
                source,
            },
            Failure::Ledger(e) => SyncError::Ledger(e),
            Failure::LeaseLost { holder, until } => SyncError::Busy {
                shop: shop.to_owned(),
                kind,
                holder,
                until,
            },
        })?;
        if let Some(list_id) = &summary.list_id
            && summary.audience_id.is_none()
        {
            let audience = api
                .create_audience(&kind.list_name(shop), list_id)
                .await
                .map_err(|source| SyncError::Pinterest {
                    kind,
                    requests: summary.requests,
                    source,
                })?;
            ledger
                .set_ids(shop, kind, list_id, Some(&audience.id))
                .await?;
            summary.audience_id = Some(audience.id);
        }
        // The light pass moves no mark: the watermark, the full comparison and the job's
        // schedule (`last_sync`) follow the store's reads only.
        if pass == Pass::Sync {
            let full = matches!(scope, Scope::Full { .. });
            let marks = Marks {
                watermark: watermark.max(state.watermark),
                last_full: full.then_some(now),
                last_resend: matches!(scope, Scope::Full { resend: true }).then_some(now),
                last_sync: Some(now),
            };
            ledger.set_marks(shop, kind, marks).await?;
        }
        if let Some(list_id) = &summary.list_id
            && (pass == Pass::Sync || summary.requests > 0)
        {
            match api.get_list(list_id).await {
                Ok(list) => summary.status = list.status,
                Err(e) => {
                    tracing::warn!(shop, list = kind.label(), error.message = %e, "customer list status not read");
                }
            }
        }
        summaries.push(summary);
    }
    if mode == Mode::Live && !rechecks.is_empty() {
        // Applied to every list of this run; a list of the store left out of it keeps them
        // owed, so they stay queued until a run covers every list.
        let mut covered = true;
        for kind in ListKind::ALL {
            if !settings.kinds.contains(&kind) && ledger.state(shop, kind).await?.list_id.is_some()
            {
                covered = false;
            }
        }
        if covered {
            ledger.clear_rechecks(shop, &rechecks).await?;
        } else {
            tracing::info!(
                shop,
                rechecks = rechecks.len(),
                "consent re-checks kept: a list of the store was not part of this run"
            );
        }
    }
    Ok(summaries)
}

enum Failure {
    Api(AudienceApiError),
    Ledger(LedgerError),
    /// The lease lapsed (a run longer than its time-to-live) and another writer took it.
    LeaseLost {
        holder: String,
        until: DateTime<Utc>,
    },
}

/// Sends `batches` in order, creating the list with the first `ADD` when it has none, and records
/// each once accepted. Returns the requests sent, or how many were accepted before the failure.
///
/// The first upload counts as a re-send (its time is recorded when the list is created), so a
/// first run stopped half-way resumes with what is left rather than uploading everyone again.
#[allow(clippy::too_many_arguments)]
async fn send<A: CustomerListsApi, L: AudienceStore>(
    shop: &str,
    kind: ListKind,
    api: &A,
    ledger: &L,
    summary: &mut ListSummary,
    batches: Vec<Batch>,
    (now, settings): (DateTime<Utc>, &Settings),
    progress: &mut (dyn FnMut(ProgressEvent) + Send),
) -> Result<usize, (usize, Failure)> {
    let mut requests = 0;
    let mut records = 0;
    // `now` is the run's start; the lease is renewed against the time since, so a run longer
    // than its time-to-live keeps it, and one that lost it (stalled past it, and another writer
    // took over) stops before its next request.
    let started = std::time::Instant::now();
    if summary.list_id.is_none() && batches.iter().any(|b| b.operation == Operation::Add) {
        // A creation whose answer was lost (or not recorded) left a list: use it, not a second.
        let found = api
            .find_list(&kind.list_name(shop))
            .await
            .map_err(|e| (requests, Failure::Api(e)))?;
        if let Some(list) = found {
            ledger
                .set_ids(shop, kind, &list.id, None)
                .await
                .map_err(|e| (requests, Failure::Ledger(e)))?;
            summary.list_id = Some(list.id);
        }
    }
    for batch in batches {
        let at = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
        match ledger
            .acquire(shop, kind, &settings.holder, at, settings.lease_ttl)
            .await
        {
            Ok(Lease::Acquired) => {}
            Ok(Lease::Held { holder, until }) => {
                return Err((requests, Failure::LeaseLost { holder, until }));
            }
            Err(e) => return Err((requests, Failure::Ledger(e))),
        }
        let accepted = match (&summary.list_id, batch.operation) {
            (Some(list_id), operation) => api
                .update_list(list_id, operation, &batch.records())
                .await
                .map(|()| None),
            (None, Operation::Add) => api
                .create_list(&kind.list_name(shop), &batch.records())
                .await
                .map(|list| Some(list.id)),
            // Nothing was uploaded to a list that does not exist: the removal only clears the record.
            (None, Operation::Remove) => Ok(None),
        };
        match accepted {
            Ok(created) => {
                if let Some(list_id) = created {
                    ledger
                        .set_ids(shop, kind, &list_id, None)
                        .await
                        .map_err(|e| (requests, Failure::Ledger(e)))?;
                    let first_upload = Marks {
                        last_resend: Some(now),
                        ..Marks::default()
                    };
                    ledger
                        .set_marks(shop, kind, first_upload)
                        .await
                        .map_err(|e| (requests, Failure::Ledger(e)))?;
                    summary.list_id = Some(list_id);
                }
                if summary.list_id.is_some() {
                    requests += 1;
                }
                ledger
                    .record(shop, kind, &batch)
                    .await
                    .map_err(|e| (requests, Failure::Ledger(e)))?;
                records += batch.entries.len();
                progress(ProgressEvent::Sent { kind, records });
            }
            Err(e) => return Err((requests, Failure::Api(e))),
        }
    }
    Ok(requests)
}
