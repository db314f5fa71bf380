//! Shopify's mandatory compliance webhooks: what pinrelay keeps about a customer or a shop, and
//! forgetting it. The only personal data kept is the shopper profiles; idempotency records hold
//! none, but a redacted customer's are deleted too.

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::future::BoxFuture;

use super::model::{DispatchConfig, Disposition, STORE_CONCURRENCY};
use super::routes::Routes;
use crate::audiences::AudienceStore;
use crate::idempotency::{IdempotencyKey, IdempotencyStore};
use crate::mapping::{ComplianceRequest, SkipReason};
use crate::profile::ProfileStore;

/// Carries out one request: [`Disposition::Compliance`] when done, a retry when a store failed.
pub(super) async fn comply<S: IdempotencyStore, P: ProfileStore, R: Routes>(
    store: &S,
    profiles: &P,
    routes: &R,
    audiences: Option<&dyn AudienceLedger>,
    config: &DispatchConfig,
    request: &ComplianceRequest,
    now: DateTime<Utc>,
) -> Disposition {
    let done = match request {
        ComplianceRequest::DataRequest {
            shop_domain,
            customer_id,
            orders_requested,
        } => data_request(profiles, shop_domain, *customer_id, orders_requested, now).await,
        ComplianceRequest::CustomerRedact {
            shop_domain,
            customer_id,
            orders_to_redact,
        } => {
            let records = customer_redact(
                store,
                profiles,
                config,
                shop_domain,
                *customer_id,
                orders_to_redact,
            )
            .await;
            let lists = match (audiences, customer_id) {
                (Some(ledger), Some(id)) => redact_from_lists(ledger, shop_domain, *id, now).await,
                _ => true,
            };
            records && lists
        }
        ComplianceRequest::ShopRedact { shop_domain } => {
            let lists = match audiences {
                Some(ledger) => forget_lists(ledger, shop_domain).await,
                None => true,
            };
            lists && shop_redact(store, profiles, routes, shop_domain).await
        }
        ComplianceRequest::AppUninstalled { shop_domain } => {
            app_uninstalled(routes, shop_domain).await
        }
        ComplianceRequest::CustomerDeleted {
            shop_domain,
            customer_id,
        } => match audiences {
            Some(ledger) => redact_from_lists(ledger, shop_domain, *customer_id, now).await,
            None => true,
        },
        ComplianceRequest::ConsentChanged {
            shop_domain,
            customer_id,
            at,
        } => match audiences {
            Some(ledger) => recheck(ledger, shop_domain, *customer_id, at.unwrap_or(now)).await,
            None => {
                let reason = SkipReason::NoAudienceLedger;
                tracing::info!(
                    shop = %shop_domain,
                    customer_id,
                    reason = reason.label(),
                    outcome = "skipped",
                    "{reason}"
                );
                return Disposition::Skipped(reason);
            }
        },
    };
    if done {
        Disposition::Compliance
    } else {
        Disposition::Retry(config.retry_base)
    }
}

/// `customers/data_request`: says which of the orders have a profile, and what a profile holds.
async fn data_request<P: ProfileStore>(
    profiles: &P,
    shop: &str,
    customer_id: Option<u64>,
    orders: &[u64],
    now: DateTime<Utc>,
) -> bool {
    let found = futures::stream::iter(
        orders
            .iter()
            .map(|id| profiles.get_profiles(shop, *id, now)),
    )
    .buffered(STORE_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let with_profile: Vec<u64> = orders
        .iter()
        .zip(&found)
        .filter(|(_, f)| matches!(f, Ok(p) if !p.is_empty()))
        .map(|(id, _)| *id)
        .collect();
    let failed = found.iter().filter(|f| f.is_err()).count();
    tracing::info!(
        shop,
        customer_id,
        orders = orders.len(),
        orders_with_profile = ?with_profile,
        outcome = "compliance",
        "customers/data_request: pinrelay keeps, per order with a profile, the Pinterest click id, IP address, user agent, UTM parameters and consent seen by the storefront pixel, for up to 30 days; idempotency records hold no personal data"
    );
    failed == 0
}

/// `customers/redact`: deletes the orders' and the sign-up's records and the orders' profiles.
async fn customer_redact<S: IdempotencyStore, P: ProfileStore>(
    store: &S,
    profiles: &P,
    config: &DispatchConfig,
    shop: &str,
    customer_id: Option<u64>,
    orders: &[u64],
) -> bool {
    let mut keys = Vec::new();
    for order_id in orders {
        keys.extend(IdempotencyKey::order(shop, *order_id).ok());
        // A record of a pinrelay before one-record-per-event, keyed by the event_id.
        if let Some(event_id) = config.options.checkout_event_id(*order_id) {
            keys.extend(
                IdempotencyKey::new(shop, "checkout", &event_id)
                    .ok()
                    .filter(|k| !keys.contains(k)),
            );
        }
    }
    if let Some(id) = customer_id {
        keys.extend(IdempotencyKey::new(shop, "signup", &format!("signup-{id}")).ok());
    }
    let results = futures::future::join_all(keys.iter().map(|k| store.forget(k))).await;
    let deleted_profiles = profiles.delete_profiles(shop, orders).await;
    let failed =
        results.iter().filter(|r| r.is_err()).count() + usize::from(deleted_profiles.is_err());
    tracing::info!(
        shop,
        records = keys.len(),
        profiles = orders.len(),
        failed,
        outcome = "compliance",
        "customers/redact: deleted the customer's idempotency records and order profiles"
    );
    failed == 0
}

/// `shop/redact`: deletes every record and profile of the shop, then its registry entry and
/// secrets (a registered store). A large table is purged over several deliveries (each goes on
/// where the last stopped).
async fn shop_redact<S: IdempotencyStore, P: ProfileStore, R: Routes>(
    store: &S,
    profiles: &P,
    routes: &R,
    shop: &str,
) -> bool {
    let deleted = async {
        let records = store.delete_shop(shop).await.map_err(|e| e.to_string())?;
        let deleted_profiles = profiles
            .delete_shop_profiles(shop)
            .await
            .map_err(|e| e.to_string())?;
        let forgotten = routes.forget_store(shop).await?;
        Ok::<_, String>((records, deleted_profiles, forgotten))
    };
    match deleted.await {
        Ok((records, profiles, registered)) => {
            tracing::info!(
                shop,
                records,
                profiles,
                registered,
                outcome = "compliance",
                "shop/redact: deleted every record and profile of the shop, and its registry entry and secrets"
            );
            true
        }
        Err(e) => {
            tracing::warn!(shop, error.message = %e, "shop/redact not finished; will retry");
            false
        }
    }
}

/// `app/uninstalled`: disables a registered store (its records stay until `shop/redact`, which
/// Shopify sends 48 hours later). The default store's shops are the relay's variables: the line
/// says what to change.
async fn app_uninstalled<R: Routes>(routes: &R, shop: &str) -> bool {
    match routes.disable_store(shop).await {
        Ok(true) => {
            tracing::warn!(
                shop,
                outcome = "compliance",
                "app/uninstalled: the store removed the app; it is disabled (pinrelay shops update SHOP --enable after a reinstall)"
            );
            true
        }
        Ok(false) => {
            tracing::warn!(
                shop,
                outcome = "compliance",
                "app/uninstalled: the store removed the app; it is not a registered store, so the relay's variables still name it: take it out of SHOPIFY_SHOP_DOMAINS"
            );
            true
        }
        Err(e) => {
            tracing::warn!(shop, error.message = %e, "app/uninstalled: the store could not be disabled; will retry");
            false
        }
    }
}

/// What compliance webhooks change in the customer-list ledger (`pinrelay audiences sync`'s
/// record): object-safe, so a dispatcher holds any [`AudienceStore`].
pub trait AudienceLedger: Send + Sync {
    /// `customers/redact`: the customer's uploaded hashes are queued for removal from every list
    /// (the next sync sends them first) and their rows deleted; how many were queued.
    fn remove_customer<'a>(
        &'a self,
        shop: &'a str,
        customer_id: u64,
    ) -> BoxFuture<'a, Result<usize, String>>;

    /// `shop/redact`: every list record of the shop deleted; how many lists were known.
    fn forget_shop<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<usize, String>>;

    /// `customers_email_marketing_consent/update`: a re-check of the customer queued at `at`
    /// (the next audiences pass reads them by id).
    fn queue_recheck<'a>(
        &'a self,
        shop: &'a str,
        customer_id: u64,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

impl<T: AudienceStore + 'static> AudienceLedger for T {
    fn remove_customer<'a>(
        &'a self,
        shop: &'a str,
        customer_id: u64,
    ) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async move {
            AudienceStore::remove_customer(self, shop, customer_id)
                .await
                .map(|r| r.len())
                .map_err(|e| e.to_string())
        })
    }

    fn forget_shop<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<usize, String>> {
        Box::pin(async move {
            AudienceStore::forget_shop(self, shop)
                .await
                .map(|lists| lists.len())
                .map_err(|e| e.to_string())
        })
    }

    fn queue_recheck<'a>(
        &'a self,
        shop: &'a str,
        customer_id: u64,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            AudienceStore::queue_recheck(self, shop, customer_id, at)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A consent change on the customer lists: the customer's re-check queued; false (retried) when
/// the ledger failed.
async fn recheck(
    ledger: &dyn AudienceLedger,
    shop: &str,
    customer_id: u64,
    at: DateTime<Utc>,
) -> bool {
    match ledger.queue_recheck(shop, customer_id, at).await {
        Ok(()) => {
            tracing::info!(
                shop,
                customer_id,
                at = %at,
                outcome = "compliance",
                "the customer's consent changed: a re-check is queued for the store's customer lists (the next audiences pass reads them again)"
            );
            true
        }
        Err(e) => {
            tracing::warn!(shop, error.message = %e, "customers_email_marketing_consent/update: the customer lists' record could not be updated; will retry");
            false
        }
    }
}

/// `customers/redact` or `customers/delete` on the customer lists: the customer's uploads queued
/// for removal, and a re-check at `now`, so that a run reading an older snapshot of the store
/// (where they still are) does not add them back, even if they were never uploaded; false
/// (retried) when the ledger failed.
async fn redact_from_lists(
    ledger: &dyn AudienceLedger,
    shop: &str,
    customer_id: u64,
    now: DateTime<Utc>,
) -> bool {
    let removed = match ledger.remove_customer(shop, customer_id).await {
        Ok(queued) => ledger
            .queue_recheck(shop, customer_id, now)
            .await
            .map(|()| queued),
        Err(e) => Err(e),
    };
    match removed {
        Ok(queued) => {
            tracing::info!(
                shop,
                customer_id,
                queued,
                outcome = "compliance",
                "the redacted or deleted customer's uploads are queued for removal from the store's customer lists (the next audiences sync sends them)"
            );
            true
        }
        Err(e) => {
            tracing::warn!(shop, error.message = %e, "customers/redact: the customer lists' record could not be updated; will retry");
            false
        }
    }
}

/// `shop/redact` on the customer lists; false (retried) when the ledger failed.
async fn forget_lists(ledger: &dyn AudienceLedger, shop: &str) -> bool {
    match ledger.forget_shop(shop).await {
        Ok(lists) => {
            tracing::info!(
                shop,
                lists,
                outcome = "compliance",
                "shop/redact: deleted the store's customer-list records"
            );
            true
        }
        Err(e) => {
            tracing::warn!(shop, error.message = %e, "shop/redact: the customer lists' record could not be deleted; will retry");
            false
        }
    }
}
