//! [`fetch`]: a reconcile report from its two sources, the shop's Admin API and the relay's outcome
//! ledger. The one place that gathers them, for `pinrelay reconcile` and `pinrelay serve`'s page.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Report, Settings, ShopOrder, Window, WindowError};
use crate::ledger::{Ledger, LedgerError, Subject};
use crate::mapping::ValueSource;
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
    /// The Admin API failed (token, scope, network).
    #[error("the Shopify Admin API failed: {0}")]
    Admin(#[from] AdminError),
    /// The relay's ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The shop's orders of `period` (in its time zone) beside the ledger's entries, as a [`Report`].
/// `progress` is called with the running count of orders after each page.
///
/// # Errors
/// [`ReconcileError`].
pub async fn fetch<L: Ledger>(
    admin: &AdminApi,
    ledger: &L,
    period: &Period,
    value_source: ValueSource,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<Report, ReconcileError> {
    let shop = admin.shop().await?;
    let tz = Window::time_zone(&shop.iana_timezone)?;
    let window = match period {
        Period::Since(since) => Window::since(since, now, tz)?,
        Period::Dates { from, to } => Window::dates(*from, *to, tz)?,
    };
    let (start, end) = window.bounds();
    let orders: Vec<ShopOrder> = admin
        .orders(start, end.min(now), progress)
        .await?
        .iter()
        .map(|o| ShopOrder::from_admin(o, value_source))
        .collect();
    let subjects: Vec<Subject> = orders.iter().map(|o| Subject::Order { id: o.id }).collect();
    // Webhooks are filed under the shop's myshopify domain, whatever name the caller gave.
    let domain = shop.myshopify_domain;
    let entries = ledger.lookup(&domain, &subjects, now).await?;
    Ok(Report::build(
        &domain,
        &window,
        &orders,
        &entries,
        now,
        &Settings::default(),
    ))
}
