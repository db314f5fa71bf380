//! [`fetch`]: a reconcile report from its two sources, the shop's Admin API and the relay's records
//! (one per event, [`crate::idempotency`]), for `pinrelay reconcile` and `pinrelay serve`'s page; [`fetch_orders`], the step it shares
//! with the hourly watch, which reconciles hours rather than days.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Report, Settings, ShopOrder, Window, WindowError};
use crate::idempotency::{IdempotencyKey, IdempotencyStore, StoreError};
use crate::mapping::Options;
use crate::shopify::{AdminApi, AdminError};

/// Which days of the shop's calendar to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    /// `7d`: the last days, today included.
    Since(String),
    /// These days, both included.
    Dates {
        /// The first day.
        from: NaiveDate,
        /// The last day.
        to: NaiveDate,
    },
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The period is not a valid window.
    #[error(transparent)]
    Window(#[from] WindowError),
    /// The Admin API failed (token, scope, network); its message says so, once.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The relay's records could not be read; the message says so, once.
    #[error(transparent)]
    Records(#[from] StoreError),
}

/// The shop's orders of `period` (in its time zone) beside their records, as a [`Report`].
/// `progress` is called with the running count of orders after each page.
///
/// # Errors
/// [`ReconcileError`].
pub async fn fetch<S: IdempotencyStore>(
    admin: &AdminApi,
    store: &S,
    period: &Period,
    rules: &Options,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Report, ReconcileError> {
    let shop = admin.shop().await?;
    let tz = Window::time_zone(&shop.iana_timezone)?;
    let window = match period {
        Period::Since(since) => Window::since(since, now, tz)?,
        Period::Dates { from, to } => Window::dates(*from, *to, tz)?,
    }
    .within_records(now)?;
    let (start, end) = window.bounds();
    let orders = Orders {
        from: start,
        to: end.min(now),
        rules: rules.clone(),
        settings: Settings::default(),
    };
    fetch_orders(
        admin,
        store,
        &shop.myshopify_domain,
        &window,
        &orders,
        now,
        progress,
    )
    .await
}

/// Which orders [`fetch_orders`] reads, and how it judges them.
#[derive(Debug, Clone)]
pub struct Orders {
    /// Orders placed from this instant…
    pub from: DateTime<Utc>,
    /// …to this one (excluded).
    pub to: DateTime<Utc>,
    /// The relay's conversion rules and `VALUE_SOURCE`, for orders it never saw.
    pub rules: Options,
    /// The grace and age limits.
    pub settings: Settings,
}

/// The shop's orders placed in `orders.from..orders.to` beside their records, added up over
/// the days of `window`. `domain` is the shop's myshopify domain: webhooks, and so the records, are
/// filed under it, whatever name the caller gave. Nothing is asked of the Admin API for an empty
/// range, nor of the records without orders.
///
/// # Errors
/// [`ReconcileError::Admin`] or [`ReconcileError::Records`].
pub async fn fetch_orders<S: IdempotencyStore>(
    admin: &AdminApi,
    store: &S,
    domain: &str,
    window: &Window,
    orders: &Orders,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Report, ReconcileError> {
    let listed = if orders.from < orders.to {
        admin.orders(orders.from, orders.to, progress).await?
    } else {
        Vec::new()
    };
    let listed: Vec<ShopOrder> = listed
        .iter()
        .map(|o| ShopOrder::from_admin(o, &orders.rules))
        .collect();
    let keys: Vec<IdempotencyKey> = listed
        .iter()
        .filter_map(|o| IdempotencyKey::order(domain, o.id).ok())
        .collect();
    let records = if keys.is_empty() {
        Vec::new()
    } else {
        store.get_many(&keys, now).await?
    };
    let mut report = Report::build(domain, window, &listed, &records, now, &orders.settings);
    let (from, to) = (orders.from.date_naive(), orders.to.date_naive());
    for ((_, reason), n) in store.dead_letter_counts(domain, from, to).await? {
        *report.dead_letters_without_order.entry(reason).or_default() += n;
    }
    Ok(report)
}
