//! Shopper profiles: what the storefront pixel saw at checkout (click id, IP, user agent, UTMs,
//! consent), kept per order so dispatch can enrich the verified order webhook.
//!
//! The [`ProfileStore`] port is implemented by the idempotency adapters (DynamoDB: the same table
//! under the key prefix `order#`; SQLite: a `profiles` table), so one store serves both.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::browser::Profile;
use crate::idempotency::StoreError;

/// Profiles are kept 30 days: long enough for any order webhook delay, short for privacy.
pub const PROFILE_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;

/// The storage key of an order's profile: `order#{shop}#{order_id}`.
pub fn profile_key(shop: &str, order_id: u64) -> String {
    format!("{}{order_id}", shop_profile_prefix(shop))
}

/// The prefix of every profile key of a shop: `order#{shop}#`.
pub fn shop_profile_prefix(shop: &str) -> String {
    format!("order#{shop}#")
}

/// Persists shopper profiles.
pub trait ProfileStore: Send + Sync + 'static {
    /// Records (or replaces) the profile of an order, expiring at `expires_at` (Unix seconds).
    ///
    /// # Errors
    /// [`StoreError`]; the browser event is then retried.
    fn put_profile(
        &self,
        shop: &str,
        order_id: u64,
        profile: &Profile,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads the profile of an order; an expired profile MUST read as `None`.
    ///
    /// # Errors
    /// [`StoreError`]; dispatch then sends the order without enrichment.
    fn get_profile(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;

    /// Deletes the profiles of these orders (`customers/redact`).
    ///
    /// # Errors
    /// [`StoreError`]; the compliance message is then retried.
    fn delete_profiles(
        &self,
        shop: &str,
        order_ids: &[u64],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes every profile of a shop (`shop/redact`); returns how many.
    ///
    /// # Errors
    /// [`StoreError`]; the compliance message is then retried.
    fn delete_shop_profiles(
        &self,
        shop: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Checks every [`ProfileStore`] adapter must pass (SQLite in unit tests, DynamoDB on moto).
#[doc(hidden)]
pub mod contract {
    #![allow(missing_docs)]

    use chrono::{Duration, TimeZone, Utc};

    use super::{Profile, ProfileStore};
    use crate::browser::Consent;

    pub async fn run_all<S: ProfileStore>(store: &S) {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let profile = Profile {
            click_id: Some("dj0yJnU9".into()),
            client_ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            consent: Consent {
                marketing: Some(true),
                sale_of_data: Some(false),
                analytics: None,
            },
            ..Profile::default()
        };
        let shop = "p.myshopify.com";
        let expires = (now + Duration::days(30)).timestamp();
        assert!(store.put_profile(shop, 1, &profile, expires).await.is_ok());
        assert!(store.put_profile(shop, 2, &profile, expires).await.is_ok());
        assert!(
            store
                .put_profile("other.myshopify.com", 1, &profile, expires)
                .await
                .is_ok()
        );
        assert_eq!(
            store.get_profile(shop, 1, now).await.ok().flatten(),
            Some(profile.clone())
        );
        assert_eq!(store.get_profile(shop, 3, now).await.ok().flatten(), None);
        let after = now + Duration::days(31);
        assert_eq!(
            store.get_profile(shop, 1, after).await.ok().flatten(),
            None,
            "expired profiles read as absent"
        );
        assert!(store.delete_profiles(shop, &[1]).await.is_ok());
        assert_eq!(store.get_profile(shop, 1, now).await.ok().flatten(), None);
        assert_eq!(store.delete_shop_profiles(shop).await.ok(), Some(1));
        assert_eq!(store.get_profile(shop, 2, now).await.ok().flatten(), None);
        assert!(
            store
                .get_profile("other.myshopify.com", 1, now)
                .await
                .ok()
                .flatten()
                .is_some()
        );
    }
}
