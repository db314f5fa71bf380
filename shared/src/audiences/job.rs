//! The audience job: what the stack's schedule (every [`TICK`], in the watch function) and
//! `pinrelay serve` (with `AUDIENCE_LISTS`) run to keep each store's customer lists in step
//! without anyone typing `pinrelay audiences sync`.
//!
//! Each run goes over the stores that keep lists (the default store's `AUDIENCE_LISTS`, each
//! registered store's own setting or the default's), the most overdue first. Between syncs, a
//! store with work left by webhooks (a consent re-check, a deleted or redacted customer) gets the
//! light pass ([`super::sync::sync_pending`]), so a withdrawal reaches Pinterest within minutes.
//! A store is synced ([`super::sync()`]) when its last completed sync is [`JobSettings::every`] old
//! (daily by default); the sync itself decides between the incremental read, the weekly full
//! comparison and the monthly re-send. A run never outlasts its deadline: a sync still going then is dropped, its
//! leases are released, and since the record moves only after Pinterest accepted a request, the
//! next run (a tick later) resumes where it stopped, repeating at most the request in flight. A
//! store that cannot be synced (no ad account, no Pinterest token, no Admin credentials) is
//! reported with its fix, and the others still run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::customer::ListKind;
use super::ledger::AudienceStore;
use super::plan::DEFAULT_BATCH_SIZE;
use super::sync::{CustomerSource, ListSummary, Mode, Settings, SyncError, sync, sync_pending};
use crate::config::{InvalidVar, keys};
use crate::pinterest::audiences::{
    ApiTokenSource, CustomerListsApi, PinterestAudiences, StaticToken,
};
use crate::pinterest::oauth::{ApiToken, Grant, GrantStore, GrantStoreError};
use crate::registry::{Registry, RegistryError, Shop};
use crate::shopify::admin::{AdminApi, AdminCredentials, AdminError};

/// How often the job runs: the stack's schedule and `serve`'s timer.
pub const TICK: Duration = Duration::from_secs(15 * 60);

/// How long past the deadline the job waits for a read that stops by itself at the deadline
/// ([`SyncError::ReadContinues`]); the callers' deadlines leave a minute before Lambda's.
const READ_STOP_MARGIN: Duration = Duration::from_secs(5);

/// Hours between two syncs of a store unless `AUDIENCE_SYNC_HOURS` says otherwise.
pub const DEFAULT_SYNC_HOURS: u32 = 24;

/// How the job runs.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// A store is synced again once its last completed sync is this old.
    pub every: chrono::Duration,
    /// The most records a request carries.
    pub batch_size: usize,
    /// Who holds the lists' leases (the Lambda request id, serve's process).
    pub holder: String,
}

impl JobSettings {
    /// `AUDIENCE_SYNC_HOURS` (default 24, at least 1) and `AUDIENCE_BATCH_SIZE` (default 10,000)
    /// from `var`.
    ///
    /// # Errors
    /// [`InvalidVar`] naming the variable.
    pub fn from_vars(
        var: &dyn Fn(&'static str) -> Option<String>,
        holder: String,
    ) -> Result<Self, InvalidVar> {
        let number = |key, default: usize, expected| match var(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(InvalidVar {
                    key,
                    value: v,
                    expected,
                }),
        };
        let hours = number(
            keys::AUDIENCE_SYNC_HOURS,
            DEFAULT_SYNC_HOURS as usize,
            "a whole number of hours, at least 1 (24: daily)",
        )?;
        let batch_size = number(
            keys::AUDIENCE_BATCH_SIZE,
            DEFAULT_BATCH_SIZE,
            "a whole number of records, at least 1",
        )?;
        Ok(Self {
            every: chrono::Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX / 3_600_000)),
            batch_size,
            holder,
        })
    }
}

/// Reads `AUDIENCE_LISTS`: `customers`, `purchasers`, both comma-separated, or empty / `none`
/// for no list.
///
/// # Errors
/// [`InvalidVar`] for any other word.
pub fn parse_lists(value: Option<&str>) -> Result<Vec<ListKind>, InvalidVar> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    if value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    let mut kinds = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let kind = ListKind::from_label(&word.to_ascii_lowercase()).ok_or(InvalidVar {
            key: keys::AUDIENCE_LISTS,
            value: value.to_owned(),
            expected: "customers, purchasers, customers,purchasers, or none",
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(kinds)
}

/// What a store's sync runs with: its ad account, a Pinterest token with `ads:write`, and
/// Admin credentials with `read_customers`.
pub struct Credentials {
    /// The Pinterest ad account that owns the lists.
    pub ad_account_id: String,
    /// The customer-list token.
    pub token: SecretString,
    /// The store's Admin API credentials.
    pub admin: AdminCredentials,
    /// Whether the token is the store's sign-in's (read again after a 401: the refresher may
    /// have renewed it), not one given once.
    pub from_sign_in: bool,
}

/// What a store has when it is not registered, or what the caller gives beside the registry:
/// the relay's variables (`PINTEREST_AD_ACCOUNT_ID`, `PINTEREST_API_TOKEN`, the Admin ones).
#[derive(Default)]
pub struct Fallback {
    /// `PINTEREST_AD_ACCOUNT_ID`.
    pub ad_account_id: Option<String>,
    /// `PINTEREST_API_TOKEN`: wins over a registered or signed-in token when set.
    pub api_token: Option<SecretString>,
    /// The Admin credentials, for the store they belong to only.
    pub admin: Option<AdminCredentials>,
}

/// Something a store's sync needs is not there; each says how to give it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingCredential {
    /// No ad account.
    #[error(
        "{shop} has no Pinterest ad account for its customer lists: sign in with `pinrelay pinterest login --shop {shop}`, or register the store with its ad account"
    )]
    AdAccount {
        /// The store.
        shop: String,
    },
    /// No token that can write customer lists.
    #[error(
        "{shop} has no Pinterest token for customer lists (the conversion token cannot write them): sign in with `pinrelay pinterest login --shop {shop}`"
    )]
    PinterestToken {
        /// The store.
        shop: String,
    },
    /// No Admin credentials.
    #[error(
        "{shop} has no Shopify Admin credentials to read its customers: run `pinrelay shops update {shop} --secrets` (read_customers)"
    )]
    Admin {
        /// The store.
        shop: String,
    },
}

impl Credentials {
    /// Decides where each credential of `shop` comes from, once for every caller: the ad account
    /// from the registry, else `fallback`, else the sign-in; the token from `fallback`
    /// (`PINTEREST_API_TOKEN`), else the store's registered API token, else the sign-in; the
    /// Admin credentials from the registry, else `fallback`.
    ///
    /// # Errors
    /// [`MissingCredential`]: the first thing missing, with its fix.
    pub fn resolve(
        shop: &str,
        registered: Option<&Shop>,
        signed_in: Option<&Grant>,
        fallback: Fallback,
    ) -> Result<Self, MissingCredential> {
        let ad_account_id = registered
            .map(|s| s.entry.ad_account_id.clone())
            .filter(|a| !a.is_empty())
            .or(fallback.ad_account_id)
            .or_else(|| signed_in.map(|g| g.ad_account_id.clone()))
            .ok_or_else(|| MissingCredential::AdAccount {
                shop: shop.to_owned(),
            })?;
        let given = fallback.api_token.or_else(|| {
            registered
                .and_then(|s| s.secrets.pinterest_api_token.clone())
                .map(SecretString::from)
        });
        let from_sign_in = given.is_none() && signed_in.is_some();
        let token = given
            .or_else(|| signed_in.map(|g| g.access_token.clone()))
            .ok_or_else(|| MissingCredential::PinterestToken {
                shop: shop.to_owned(),
            })?;
        let admin = registered
            .and_then(|s| s.secrets.admin_credentials())
            .or(fallback.admin)
            .ok_or_else(|| MissingCredential::Admin {
                shop: shop.to_owned(),
            })?;
        Ok(Self {
            ad_account_id,
            token,
            admin,
            from_sign_in,
        })
    }
}

/// Where the APIs are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The Admin API version (`YYYY-MM`).
    pub api_version: String,
    /// The Admin API's base URL (tests point it at a fake); `None` for the shop's own.
    pub admin_api_url: Option<String>,
    /// Pinterest's API base URL.
    pub pinterest_api_url: String,
}

impl Endpoints {
    /// The Admin API client and the customer-lists client of `shop` with `credentials`.
    ///
    /// # Errors
    /// [`JobError::Client`] when a client cannot be built.
    pub fn clients(
        &self,
        shop: &str,
        credentials: Credentials,
    ) -> Result<(AdminApi, PinterestAudiences<StaticToken>), JobError> {
        let tokens = StaticToken(credentials.token.clone());
        self.clients_with(shop, credentials, tokens)
    }

    /// [`Endpoints::clients`] with the customer lists called with `tokens`' token.
    ///
    /// # Errors
    /// [`JobError::Client`] when a client cannot be built.
    pub fn clients_with<T: ApiTokenSource>(
        &self,
        shop: &str,
        credentials: Credentials,
        tokens: T,
    ) -> Result<(AdminApi, PinterestAudiences<T>), JobError> {
        let admin = AdminApi::new(
            shop,
            credentials.admin,
            &self.api_version,
            self.admin_api_url.as_deref(),
        )
        .map_err(JobError::Admin)?;
        let api = PinterestAudiences::with_tokens(
            &self.pinterest_api_url,
            &credentials.ad_account_id,
            tokens,
            Duration::from_secs(60),
        )
        .map_err(|e| JobError::Client(e.to_string()))?;
        Ok((admin, api))
    }
}

/// What the job did for one store.
#[derive(Debug)]
pub enum Run {
    /// Synced less than [`JobSettings::every`] ago: only what webhooks left was sent (the
    /// light pass, [`super::sync::sync_pending`]) until `next`.
    NotDue {
        /// When the store is due.
        next: DateTime<Utc>,
        /// What the light pass sent, one summary per list; `None` when nothing was pending.
        pending: Option<Vec<ListSummary>>,
    },
    /// A sync completed: one summary per list.
    Synced(Vec<ListSummary>),
    /// Another writer holds one of the lists (`pinrelay audiences sync` run by hand, or a run
    /// whose lease has not expired): not a failure; the next run tries again.
    Busy {
        /// Who holds it.
        holder: String,
        /// Until when, unless released sooner.
        until: DateTime<Utc>,
    },
    /// The run's time ran out before this store's sync completed (or began), or Shopify's export
    /// of its customers is not ready yet: what Pinterest accepted is recorded, and the next run
    /// resumes (continuing the same export).
    OutOfTime,
}

/// Why the job could not sync a store.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A credential is missing.
    #[error(transparent)]
    Missing(#[from] MissingCredential),
    /// The store's `AUDIENCE_LISTS` (or another setting) is invalid.
    #[error(transparent)]
    Setting(#[from] InvalidVar),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The Pinterest sign-ins could not be read.
    #[error(transparent)]
    SignIn(#[from] GrantStoreError),
    /// The Admin API client could not be built.
    #[error(transparent)]
    Admin(AdminError),
    /// A client could not be built.
    #[error("the customer-lists client could not be built: {0}")]
    Client(String),
    /// The sync failed; what was accepted before is recorded.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// The latest completed sync of `shop`'s lists of `kinds` (`None` when any was never synced).
async fn last_sync<L: AudienceStore>(
    shop: &str,
    kinds: &[ListKind],
    ledger: &L,
) -> Result<Option<DateTime<Utc>>, JobError> {
    let mut oldest: Option<DateTime<Utc>> = None;
    for &kind in kinds {
        let state = ledger.state(shop, kind).await.map_err(SyncError::from)?;
        match state.last_sync {
            None => return Ok(None),
            Some(t) => oldest = Some(oldest.map_or(t, |o| o.min(t))),
        }
    }
    Ok(oldest)
}

/// Runs the job for one store: syncs its lists of `kinds` when due, within `deadline`.
///
/// # Errors
/// [`JobError::Sync`] when the sync failed (what Pinterest accepted before is recorded).
#[allow(clippy::too_many_arguments)]
pub async fn run_store<S, A, L>(
    shop: &str,
    kinds: &[ListKind],
    source: &S,
    api: &A,
    ledger: &L,
    settings: &JobSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> Result<Run, JobError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    let (_, work) = work(shop, kinds, ledger, settings, now).await?;
    execute(
        work, shop, kinds, source, api, ledger, settings, now, deadline,
    )
    .await
}

/// What a store's run has to do, decided from the record alone (before any credential is read).
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Synced recently, and no webhook left work: nothing until `next`.
    Nothing { next: DateTime<Utc> },
    /// Synced recently; webhooks left work for the light pass.
    Pending { next: DateTime<Utc> },
    /// Due: the sync.
    Sync,
}

/// The store's last completed sync (for ordering the stores) and its [`Work`].
async fn work<L: AudienceStore>(
    shop: &str,
    kinds: &[ListKind],
    ledger: &L,
    settings: &JobSettings,
    now: DateTime<Utc>,
) -> Result<(Option<DateTime<Utc>>, Work), JobError> {
    let last = last_sync(shop, kinds, ledger).await?;
    let work = match last.map(|t| t + settings.every).filter(|next| now < *next) {
        // Not due: only what webhooks asked for since (consent withdrawn or given, a customer
        // deleted or redacted), so it reaches Pinterest within a run or two.
        Some(next) if has_pending(shop, kinds, ledger).await? => Work::Pending { next },
        Some(next) => Work::Nothing { next },
        None => Work::Sync,
    };
    Ok((last, work))
}

/// Does `work` for one store, within `deadline`.
#[allow(clippy::too_many_arguments)]
async fn execute<S, A, L>(
    work: Work,
    shop: &str,
    kinds: &[ListKind],
    source: &S,
    api: &A,
    ledger: &L,
    settings: &JobSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> Result<Run, JobError>
where
    S: CustomerSource,
    A: CustomerListsApi,
    L: AudienceStore,
{
    let sync_settings = Settings {
        kinds: kinds.to_vec(),
        batch_size: settings.batch_size,
        holder: settings.holder.clone(),
        // Shopify's export of a large store may take longer than a run: waiting for it stops a
        // little before the deadline, and the next run continues the same export.
        read_deadline: Some(deadline),
        ..Settings::default()
    };
    let mut quiet = |_| {};
    match work {
        Work::Nothing { next } => {
            return Ok(Run::NotDue {
                next,
                pending: None,
            });
        }
        Work::Pending { next } => {
            let pass = sync_pending(
                shop,
                source,
                api,
                ledger,
                &sync_settings,
                Mode::Live,
                now,
                &mut quiet,
            );
            return match tokio::time::timeout_at(deadline, pass).await {
                Ok(Err(SyncError::Busy { holder, until, .. })) => Ok(Run::Busy { holder, until }),
                Ok(summaries) => Ok(Run::NotDue {
                    next,
                    pending: Some(summaries?),
                }),
                Err(_) => {
                    release(shop, kinds, ledger, &settings.holder).await;
                    Ok(Run::OutOfTime)
                }
            };
        }
        Work::Sync => {}
    }
    let run = sync(
        shop,
        source,
        api,
        ledger,
        &sync_settings,
        Mode::Live,
        now,
        &mut quiet,
    );
    // The read gets a margin over the deadline so that its own stop (which names the export it
    // waits for) comes first.
    match tokio::time::timeout_at(deadline + READ_STOP_MARGIN, run).await {
        Ok(Err(SyncError::ReadContinues { operation, .. })) => {
            tracing::info!(shop, operation = %operation, "Shopify's export of the customers is not ready; the next run continues it");
            Ok(Run::OutOfTime)
        }
        Ok(Err(SyncError::Busy { holder, until, .. })) => Ok(Run::Busy { holder, until }),
        Ok(summaries) => Ok(Run::Synced(summaries?)),
        Err(_) => {
            release(shop, kinds, ledger, &settings.holder).await;
            Ok(Run::OutOfTime)
        }
    }
}

/// Gives back the leases of a sync dropped mid-way, so the next run need not wait for them to
/// expire.
async fn release<L: AudienceStore>(shop: &str, kinds: &[ListKind], ledger: &L, holder: &str) {
    for &kind in kinds {
        if let Err(e) = ledger.release(shop, kind, holder).await {
            tracing::warn!(shop, list = kind.label(), error.message = %e, "audience lease not released; it expires");
        }
    }
}

/// Whether webhooks left work for the light pass: consent re-checks, or removals of deleted or
/// redacted customers.
async fn has_pending<L: AudienceStore>(
    shop: &str,
    kinds: &[ListKind],
    ledger: &L,
) -> Result<bool, JobError> {
    if !ledger
        .rechecks(shop)
        .await
        .map_err(SyncError::from)?
        .is_empty()
    {
        return Ok(true);
    }
    for &kind in kinds {
        if !ledger
            .pending_removals(shop, kind)
            .await
            .map_err(SyncError::from)?
            .is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The token a store's sync calls Pinterest with: one given once (`PINTEREST_API_TOKEN`, a
/// registered store's), or its sign-in, read again after a 401 (the refresher renews it).
pub enum ListsToken<G> {
    /// Given once.
    Given(StaticToken),
    /// The store's sign-in in the grant store.
    SignIn(ApiToken<G>),
}

impl<G: GrantStore> ApiTokenSource for ListsToken<G> {
    async fn access_token(&self) -> Result<SecretString, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Given(token) => token.access_token().await,
            Self::SignIn(token) => token.access_token().await,
        }
    }

    async fn reread(&self) -> Option<SecretString> {
        match self {
            Self::Given(_) => None,
            Self::SignIn(token) => ApiTokenSource::reread(token).await,
        }
    }
}

/// A store the job keeps lists for.
struct Due {
    shop: String,
    kinds: Vec<ListKind>,
    /// A registered store (its entry and secrets are in the registry), not the default one.
    registered: bool,
}

/// The default store (the relay's variables) and its own credentials.
pub struct DefaultStore {
    /// Its domain.
    pub shop: String,
    /// Its variables' credentials.
    pub fallback: Fallback,
}

/// Runs the job over every store that keeps lists: `default` (its lists from `var`'s
/// `AUDIENCE_LISTS`) and every enabled registered store (its own `AUDIENCE_LISTS`, else the
/// default's), the most overdue first, one at a time, until `deadline`. Returns one outcome per
/// store that keeps lists; a store whose lists are `none` is not in it.
///
/// # Errors
/// [`JobError::Registry`] when the registry cannot be listed (no store is synced then).
#[allow(clippy::too_many_arguments)]
pub async fn run_stores<R, G, L>(
    registry: &R,
    grants: &G,
    ledger: &L,
    default: Option<DefaultStore>,
    var: &(dyn Fn(&'static str) -> Option<String> + Sync),
    endpoints: &Endpoints,
    settings: &JobSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> Result<Vec<(String, Result<Run, JobError>)>, JobError>
where
    R: Registry,
    G: GrantStore + Clone,
    L: AudienceStore,
{
    let mut outcomes = Vec::new();
    let mut stores = Vec::new();
    let default_shop = default.as_ref().map(|d| d.shop.to_ascii_lowercase());
    let mut default_fallback = None;
    if let Some(d) = default {
        match parse_lists(var(keys::AUDIENCE_LISTS).as_deref()) {
            Ok(kinds) if kinds.is_empty() => {}
            Ok(kinds) => {
                stores.push(Due {
                    shop: d.shop.clone(),
                    kinds,
                    registered: false,
                });
                default_fallback = Some(d.fallback);
            }
            Err(e) => outcomes.push((d.shop, Err(e.into()))),
        }
    }
    for entry in registry.list().await? {
        if !entry.enabled || Some(entry.domain.to_ascii_lowercase()) == default_shop {
            continue;
        }
        // The entry's own setting decides: no secret is read for a store that keeps no list.
        match parse_lists(entry.setting(keys::AUDIENCE_LISTS, var).as_deref()) {
            Ok(kinds) if kinds.is_empty() => {}
            Ok(kinds) => stores.push(Due {
                shop: entry.domain,
                kinds,
                registered: true,
            }),
            Err(e) => outcomes.push((entry.domain, Err(e.into()))),
        }
    }
    // What each store has to do, from the record alone: the secrets and the sign-in are read
    // only for a store with work.
    let mut planned = Vec::new();
    for store in stores {
        match work(&store.shop, &store.kinds, ledger, settings, now).await {
            Ok((last, work)) => planned.push((last, work, store)),
            Err(e) => outcomes.push((store.shop, Err(e))),
        }
    }
    // The most overdue first (never synced before all), so a store whose sync takes a whole run
    // cannot keep the others waiting forever.
    planned.sort_by_key(|(last, _, _)| *last);

    for (_, work, store) in planned {
        if let Work::Nothing { next } = work {
            outcomes.push((
                store.shop,
                Ok(Run::NotDue {
                    next,
                    pending: None,
                }),
            ));
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            outcomes.push((store.shop, Ok(Run::OutOfTime)));
            continue;
        }
        let outcome = async {
            let registered = if store.registered {
                match registry.get(&store.shop).await? {
                    Some(shop) => Some(shop),
                    // Removed since the listing.
                    None => return Ok(None),
                }
            } else {
                None
            };
            let signed_in = grants.get(&store.shop).await?;
            let fallback = match registered {
                // The variables' Admin credentials belong to the default store only.
                Some(_) => Fallback {
                    ad_account_id: None,
                    api_token: None,
                    admin: None,
                },
                None => default_fallback.take().unwrap_or_default(),
            };
            let credentials = Credentials::resolve(
                &store.shop,
                registered.as_ref(),
                signed_in.as_ref(),
                fallback,
            )?;
            let tokens = if credentials.from_sign_in {
                ListsToken::SignIn(ApiToken::new(grants.clone(), store.shop.clone()))
            } else {
                ListsToken::Given(StaticToken(credentials.token.clone()))
            };
            let (admin, api) = endpoints.clients_with(&store.shop, credentials, tokens)?;
            execute(
                work,
                &store.shop,
                &store.kinds,
                &admin,
                &api,
                ledger,
                settings,
                now,
                deadline,
            )
            .await
            .map(Some)
        }
        .await;
        match outcome {
            Ok(None) => {}
            Ok(Some(run)) => outcomes.push((store.shop, Ok(run))),
            Err(e) => outcomes.push((store.shop, Err(e))),
        }
    }
    Ok(outcomes)
}

/// Logs one store's outcome: what was sent, that it continues, or what to fix.
pub fn log_outcome(shop: &str, outcome: &Result<Run, JobError>) {
    match outcome {
        Ok(Run::NotDue {
            next,
            pending: None,
        }) => {
            tracing::debug!(outcome = "audiences_not_due", shop, next = %next.to_rfc3339(), "customer lists are in step; next sync then");
        }
        Ok(Run::NotDue {
            next,
            pending: Some(lists),
        }) => {
            for l in lists {
                tracing::info!(
                    outcome = "audiences_pending_sent",
                    shop,
                    list = l.kind.label(),
                    added = l.added,
                    removed = l.removed,
                    requests = l.requests,
                    next = %next.to_rfc3339(),
                    "consent changes and removals sent"
                );
            }
        }
        Ok(Run::Synced(lists)) => {
            for l in lists {
                tracing::info!(
                    outcome = "audiences_synced",
                    shop,
                    list = l.kind.label(),
                    list_id = l.list_id.as_deref(),
                    added = l.added,
                    removed = l.removed,
                    unchanged = l.unchanged,
                    requests = l.requests,
                    status = l.status.as_deref(),
                    "customer list synced"
                );
            }
        }
        Ok(Run::Busy { holder, until }) => tracing::info!(
            outcome = "audiences_busy",
            shop,
            holder,
            until = %until.to_rfc3339(),
            "another sync holds the customer lists; the next run tries again"
        ),
        Ok(Run::OutOfTime) => tracing::warn!(
            outcome = "audiences_continue",
            shop,
            "the customer-list sync did not finish in this run; the next run resumes it"
        ),
        Err(e) => tracing::error!(
            outcome = "audiences_failed",
            shop,
            error.message = %e,
            error.cause_chain = ?e,
            "customer-list sync failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn lists_parse_and_anything_else_is_refused() {
        assert_eq!(parse_lists(None).unwrap(), vec![]);
        assert_eq!(parse_lists(Some(" none ")).unwrap(), vec![]);
        assert_eq!(
            parse_lists(Some("customers")).unwrap(),
            vec![ListKind::Customers]
        );
        assert_eq!(
            parse_lists(Some("Purchasers, customers,customers")).unwrap(),
            vec![ListKind::Customers, ListKind::Purchasers]
        );
        let e = parse_lists(Some("customers,buyers")).unwrap_err();
        assert_eq!(e.key, keys::AUDIENCE_LISTS);
    }

    #[test]
    fn settings_default_to_daily_and_refuse_zero() {
        let none = |_| None;
        let s = JobSettings::from_vars(&none, "t".into()).unwrap();
        assert_eq!(s.every, chrono::Duration::hours(24));
        assert_eq!(s.batch_size, DEFAULT_BATCH_SIZE);
        let zero = |k| (k == keys::AUDIENCE_SYNC_HOURS).then(|| "0".to_owned());
        assert!(JobSettings::from_vars(&zero, "t".into()).is_err());
        let six = |k| (k == keys::AUDIENCE_SYNC_HOURS).then(|| "6".to_owned());
        assert_eq!(
            JobSettings::from_vars(&six, "t".into()).unwrap().every,
            chrono::Duration::hours(6)
        );
    }

    #[test]
    fn credentials_come_from_the_registry_then_the_variables_then_the_sign_in() {
        let fallback = || Fallback {
            ad_account_id: Some("549755885175".into()),
            api_token: None,
            admin: Some(AdminCredentials::Token(SecretString::from("shpat_x"))),
        };
        let c = Credentials::resolve("a.myshopify.com", None, None, fallback());
        assert!(matches!(c, Err(MissingCredential::PinterestToken { .. })));
        let with_token = Fallback {
            api_token: Some(SecretString::from("pina_x")),
            ..fallback()
        };
        let c = Credentials::resolve("a.myshopify.com", None, None, with_token).unwrap();
        assert_eq!(c.ad_account_id, "549755885175");
        assert_eq!(c.token.expose_secret(), "pina_x");
        let c = Credentials::resolve("a.myshopify.com", None, None, Fallback::default());
        assert!(matches!(c, Err(MissingCredential::AdAccount { .. })));
    }
}
