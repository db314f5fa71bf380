//! Shopper profiles: what the storefront pixel saw at checkout (click id, IP, user agent, UTMs,
//! consent), kept per order so dispatch can enrich the verified order webhook.
//!
//! The [`ProfileStore`] port has a DynamoDB adapter ([`dynamodb`], feature `dynamodb`: the idempotency
//! table under the key prefix `order#`) and a SQLite one ([`sqlite`], feature `sqlite`: a
//! `profiles` table of the relay database); both run the [`contract`] suite. [`apply`] is the pure
//! rule that turns an order's profile into changes to its `checkout` event.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::browser::Profile;
use crate::pinterest::{CustomData, Event, normalize};

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

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

/// Why a profile store operation failed; every variant is retryable or tolerated by the caller.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The store could not be reached or refused the request.
    #[error("the shopper profile store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored profile cannot be read.
    #[error("the shopper profile {key} is corrupt: {why}")]
    Corrupt {
        /// The profile's storage key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// A profile as the adapters store it: JSON.
#[cfg(any(feature = "dynamodb", feature = "sqlite"))]
pub(crate) fn encode(id: &str, profile: &Profile) -> Result<String, ProfileError> {
    serde_json::to_string(profile).map_err(|e| ProfileError::Corrupt {
        key: id.to_owned(),
        why: format!("the profile cannot be serialized: {e}"),
    })
}

/// Reads a stored profile back.
#[cfg(any(feature = "dynamodb", feature = "sqlite"))]
pub(crate) fn decode(id: &str, json: &str) -> Result<Profile, ProfileError> {
    serde_json::from_str(json).map_err(|e| ProfileError::Corrupt {
        key: id.to_owned(),
        why: format!("the stored profile is not valid: {e}"),
    })
}

/// The most profiles (checkout tokens) one order keeps: a forged record never displaces the
/// shopper's own, since each token has its own, but a flood of forged tokens for one order id is
/// bounded.
pub const MAX_PROFILES_PER_ORDER: u32 = 16;

/// What [`ProfileStore::put_profile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The profile is kept for its order and checkout token.
    Recorded,
    /// The order already has a live profile with this checkout token (a thank-you page reload),
    /// or [`MAX_PROFILES_PER_ORDER`] of them: the earlier ones are kept.
    KeptEarlier,
}

/// The one of an order's profiles recorded with the order's own checkout token, if any: the only
/// one that may apply to it.
pub fn for_order<'a>(
    profiles: &'a [Profile],
    order_checkout_token: Option<&str>,
) -> Option<&'a Profile> {
    let token = normalize::sha256_hex(order_checkout_token?);
    profiles
        .iter()
        .find(|p| p.checkout_token_sha256.as_deref() == Some(token.as_str()))
}

/// Persists shopper profiles.
pub trait ProfileStore: Send + Sync + 'static {
    /// Records the profile of an order and its `checkout_token_sha256`, expiring at `expires_at`
    /// (Unix seconds). Each token has its own profile, and the first for a token wins: the
    /// endpoint is unauthenticated, and a forged checkout posted first must change nothing for the
    /// shopper's own, which carries the order's token; a reload keeps the first. At most
    /// [`MAX_PROFILES_PER_ORDER`] tokens per order.
    ///
    /// # Errors
    /// [`ProfileError`]; the browser event is then retried.
    fn put_profile(
        &self,
        shop: &str,
        order_id: u64,
        profile: &Profile,
        expires_at: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Stored, ProfileError>> + Send;

    /// Reads the live profiles of an order, one per checkout token ([`for_order`] picks the one
    /// that applies); expired profiles MUST be left out.
    ///
    /// # Errors
    /// [`ProfileError`]; dispatch then sends the order without enrichment.
    fn get_profiles(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Profile>, ProfileError>> + Send;

    /// Deletes the profiles of these orders (`customers/redact`).
    ///
    /// # Errors
    /// [`ProfileError`]; the compliance message is then retried.
    fn delete_profiles(
        &self,
        shop: &str,
        order_ids: &[u64],
    ) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// Deletes every profile of a shop (`shop/redact`); returns how many.
    ///
    /// # Errors
    /// [`ProfileError`]; the compliance message is then retried.
    fn delete_shop_profiles(
        &self,
        shop: &str,
    ) -> impl Future<Output = Result<u64, ProfileError>> + Send;
}

/// What to do with an order whose shopper refused marketing consent in the browser
/// (`ORDER_CONSENT_POLICY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsentPolicy {
    /// Send the order with `opt_out: true`: Pinterest counts the conversion but does not use it
    /// for targeting (the default).
    #[default]
    OptOut,
    /// Send nothing for the order (skip reason `consent`).
    Skip,
}

impl ConsentPolicy {
    /// Reads `opt_out` or `skip`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opt_out" => Some(Self::OptOut),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }
}

/// What [`apply`] decided for an order's `checkout` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The profile was not recorded with the order's checkout token (a forged or stale browser
    /// event, or an order without a checkout): it was ignored; send the order as the webhook has it.
    TokenMismatch,
    /// Send the event; `filled` counts the identifiers (click id, IP, user agent) the profile
    /// added.
    Send {
        /// Identifiers added from the profile.
        filled: u8,
    },
    /// The shopper refused marketing consent and the policy is [`ConsentPolicy::Skip`].
    Skip,
}

/// Applies an order's browser profile to its server-side `checkout` event. Pure.
///
/// - The profile applies only if it was recorded with the order's own `checkout_token` (the
///   browser endpoint is unauthenticated; the token is known only to the shopper's browser and
///   Shopify). An order without one had no storefront checkout, so a profile for it is forged.
///   Otherwise [`Applied::TokenMismatch`] and nothing changes.
/// - Marketing refused: [`ConsentPolicy::OptOut`] sets `opt_out: true` and adds nothing;
///   [`ConsentPolicy::Skip`] skips the order.
/// - Otherwise the profile fills `click_id`, `client_ip_address` and `client_user_agent` where the
///   webhook had none (the webhook's own values win).
/// - Sale of data refused by a US buyer (hashed `country` is `us`) adds `LDP` to
///   `custom_data.opt_out_type`, with the buyer's `st` already in `user_data`.
/// - Unknown consent (`None`) changes nothing about consent.
pub fn apply(
    event: &mut Event,
    order_checkout_token: Option<&str>,
    profile: &Profile,
    policy: ConsentPolicy,
) -> Applied {
    let token_matches = match (order_checkout_token, &profile.checkout_token_sha256) {
        (Some(token), Some(recorded)) => normalize::sha256_hex(token) == *recorded,
        _ => false,
    };
    if !token_matches {
        return Applied::TokenMismatch;
    }
    let mut filled = 0;
    if profile.consent.marketing == Some(false) {
        if policy == ConsentPolicy::Skip {
            return Applied::Skip;
        }
        event.opt_out = Some(true);
    } else {
        let u = &mut event.user_data;
        for (slot, value) in [
            (&mut u.click_id, &profile.click_id),
            (&mut u.client_ip_address, &profile.client_ip),
            (&mut u.client_user_agent, &profile.user_agent),
        ] {
            if slot.is_none() && value.is_some() {
                slot.clone_from(value);
                filled += 1;
            }
        }
    }
    if profile.consent.sale_of_data == Some(false) && is_us_buyer(event) {
        add_opt_out_type(event, "LDP");
    }
    Applied::Send { filled }
}

/// True when the event's hashed country is the United States.
fn is_us_buyer(event: &Event) -> bool {
    let us = normalize::sha256_hex("us");
    event.user_data.country.contains(&us)
}

/// Adds a flag to the comma-separated `custom_data.opt_out_type`, once.
fn add_opt_out_type(event: &mut Event, flag: &str) {
    let custom = event.custom_data.get_or_insert_with(CustomData::default);
    match &mut custom.opt_out_type {
        Some(types) if types.split(',').any(|t| t.trim() == flag) => {}
        Some(types) => {
            types.push(',');
            types.push_str(flag);
        }
        None => custom.opt_out_type = Some(flag.to_owned()),
    }
}

/// Checks every [`ProfileStore`] adapter must pass (SQLite in unit tests, DynamoDB on moto).
#[doc(hidden)]
pub mod contract {
    #![allow(missing_docs)]

    use chrono::{Duration, TimeZone, Utc};

    use super::{Profile, ProfileStore, Stored};
    use crate::browser::Consent;
    use crate::idempotency::{Claim, ClaimRequest, Holder, IdempotencyStore, Mode};
    use crate::pinterest::normalize;

    /// Records and profiles share a table in both adapters: each deletion touches only its kind.
    pub async fn records_and_profiles_are_kept_apart<S: IdempotencyStore, P: ProfileStore>(
        store: &S,
        profiles: &P,
    ) {
        let now = Utc::now();
        let shop = "apart.myshopify.com";
        let request = ClaimRequest {
            key: crate::idempotency::IdempotencyKey::order(shop, 5)
                .unwrap_or_else(|_| unreachable!()),
            event_id: "5".into(),
            holder: Holder::new(),
            lock_until: now + Duration::seconds(60),
            mode: Mode::Live,
            resend: None,
            topic: "orders/create".into(),
            legacy: None,
        };
        let key = request.key.clone();
        let claim = store.claim(&request, now).await;
        assert!(matches!(claim, Ok(Claim::Acquired { .. })));
        let expires = (now + Duration::days(1)).timestamp();
        assert!(
            profiles
                .put_profile(shop, 5, &Profile::default(), expires, now)
                .await
                .is_ok()
        );
        assert_eq!(store.delete_shop(shop).await.ok(), Some(1), "records only");
        assert!(first(profiles, shop, 5, now).await.is_some());
        assert!(store.claim(&request, now).await.is_ok());
        assert_eq!(
            profiles.delete_shop_profiles(shop).await.ok(),
            Some(1),
            "profiles only"
        );
        assert!(matches!(store.get(&key).await, Ok(Some(_))));
    }

    /// The first profile of an order wins over one with another checkout token, until it expires.
    pub async fn a_forged_profile_posted_first_changes_nothing_for_the_shoppers_own<
        S: ProfileStore,
    >(
        store: &S,
    ) {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let shop = "first.myshopify.com";
        let with = |click: &str, token: &str| Profile {
            click_id: Some(click.into()),
            checkout_token_sha256: Some(normalize::sha256_hex(token)),
            ..Profile::default()
        };
        let expires = (now + Duration::days(30)).timestamp();
        let put =
            |p: Profile, at| async move { store.put_profile(shop, 7, &p, expires, at).await.ok() };
        assert_eq!(
            put(with("forged", "guessed"), now).await,
            Some(Stored::Recorded)
        );
        assert_eq!(
            put(with("genuine", "t1"), now).await,
            Some(Stored::Recorded),
            "the shopper's own record is kept beside a forged one"
        );
        assert_eq!(
            put(with("reload", "t1"), now).await,
            Some(Stored::KeptEarlier),
            "a reload keeps the first"
        );
        let read = store.get_profiles(shop, 7, now).await.unwrap_or_default();
        assert_eq!(read.len(), 2);
        let mine = super::for_order(&read, Some("t1")).and_then(|p| p.click_id.clone());
        assert_eq!(mine.as_deref(), Some("genuine"));
        assert!(super::for_order(&read, Some("other")).is_none());
        assert!(super::for_order(&read, None).is_none());
        for n in 0..super::MAX_PROFILES_PER_ORDER {
            put(with("flood", &format!("f{n}")), now).await;
        }
        assert_eq!(
            put(with("one too many", "late"), now).await,
            Some(Stored::KeptEarlier),
            "a flood of tokens for one order is bounded"
        );
        let later = now + Duration::days(31);
        assert!(
            store
                .get_profiles(shop, 7, later)
                .await
                .is_ok_and(|p| p.is_empty())
        );
    }

    /// The first profile of an order, if any can be read.
    async fn first<P: ProfileStore>(
        store: &P,
        shop: &str,
        order_id: u64,
        now: chrono::DateTime<Utc>,
    ) -> Option<Profile> {
        store
            .get_profiles(shop, order_id, now)
            .await
            .ok()
            .and_then(|p| p.into_iter().next())
    }

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
        assert_eq!(
            store
                .put_profile(shop, 1, &profile, expires, now)
                .await
                .ok(),
            Some(Stored::Recorded)
        );
        assert!(
            store
                .put_profile(shop, 2, &profile, expires, now)
                .await
                .is_ok()
        );
        assert!(
            store
                .put_profile("other.myshopify.com", 1, &profile, expires, now)
                .await
                .is_ok()
        );
        assert_eq!(first(store, shop, 1, now).await, Some(profile.clone()));
        assert_eq!(first(store, shop, 3, now).await, None);
        let after = now + Duration::days(31);
        assert_eq!(
            first(store, shop, 1, after).await,
            None,
            "expired profiles read as absent"
        );
        assert!(store.delete_profiles(shop, &[1]).await.is_ok());
        assert_eq!(first(store, shop, 1, now).await, None);
        assert_eq!(store.delete_shop_profiles(shop).await.ok(), Some(1));
        assert_eq!(first(store, shop, 2, now).await, None);
        assert!(
            store
                .get_profiles("other.myshopify.com", 1, now)
                .await
                .ok()
                .and_then(|p| p.into_iter().next())
                .is_some()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::Consent;
    use crate::pinterest::{ActionSource, UserData};

    fn order(country: &str, ip: Option<&str>) -> Event {
        Event {
            event_name: "checkout".into(),
            action_source: ActionSource::Web,
            event_time: 1_764_403_200,
            event_id: "450789469".into(),
            event_source_url: None,
            opt_out: None,
            user_data: UserData {
                em: vec![normalize::sha256_hex("bob@example.com")],
                country: vec![normalize::sha256_hex(country)],
                client_ip_address: ip.map(str::to_owned),
                ..UserData::default()
            },
            custom_data: Some(CustomData {
                value: Some("10.00".into()),
                currency: Some("USD".into()),
                ..CustomData::default()
            }),
            language: None,
        }
    }

    /// The order's checkout token, as the pixel saw it.
    const TOKEN: &str = "bd5a8aa1";

    fn profile(marketing: Option<bool>, sale_of_data: Option<bool>) -> Profile {
        Profile {
            checkout_token_sha256: Some(normalize::sha256_hex(TOKEN)),
            click_id: Some("dj0yJnU9".into()),
            client_ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            consent: Consent {
                marketing,
                sale_of_data,
                analytics: None,
            },
            ..Profile::default()
        }
    }

    #[test]
    fn fills_only_the_identifiers_the_webhook_lacks() {
        let mut event = order("us", Some("198.51.100.1"));
        let applied = apply(
            &mut event,
            Some(TOKEN),
            &profile(Some(true), Some(true)),
            ConsentPolicy::OptOut,
        );
        assert_eq!(applied, Applied::Send { filled: 2 });
        let u = &event.user_data;
        assert_eq!(u.click_id.as_deref(), Some("dj0yJnU9"));
        assert_eq!(
            u.client_ip_address.as_deref(),
            Some("198.51.100.1"),
            "the webhook wins"
        );
        assert_eq!(u.client_user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(event.opt_out, None);
        assert_eq!(event.custom_data.and_then(|c| c.opt_out_type), None);
    }

    #[test]
    fn refused_marketing_opts_the_order_out_or_skips_it() {
        let refused = Profile {
            consent: Consent {
                marketing: Some(false),
                ..Consent::default()
            },
            checkout_token_sha256: Some(normalize::sha256_hex(TOKEN)),
            ..Profile::default()
        };
        let mut event = order("us", None);
        assert_eq!(
            apply(&mut event, Some(TOKEN), &refused, ConsentPolicy::OptOut),
            Applied::Send { filled: 0 }
        );
        assert_eq!(event.opt_out, Some(true));
        let mut event = order("us", None);
        assert_eq!(
            apply(&mut event, Some(TOKEN), &refused, ConsentPolicy::Skip),
            Applied::Skip
        );
    }

    #[test]
    fn refused_marketing_never_adds_identifiers_even_if_stored() {
        let mut event = order("us", None);
        apply(
            &mut event,
            Some(TOKEN),
            &profile(Some(false), None),
            ConsentPolicy::OptOut,
        );
        assert_eq!(event.user_data.click_id, None);
        assert_eq!(event.user_data.client_ip_address, None);
    }

    #[test]
    fn refused_sale_of_data_marks_us_buyers_ldp_once() {
        let mut event = order("us", None);
        apply(
            &mut event,
            Some(TOKEN),
            &profile(Some(true), Some(false)),
            ConsentPolicy::OptOut,
        );
        apply(
            &mut event,
            Some(TOKEN),
            &profile(Some(true), Some(false)),
            ConsentPolicy::OptOut,
        );
        assert_eq!(
            event.custom_data.and_then(|c| c.opt_out_type).as_deref(),
            Some("LDP")
        );
        let mut event = order("fr", None);
        apply(
            &mut event,
            Some(TOKEN),
            &profile(Some(true), Some(false)),
            ConsentPolicy::OptOut,
        );
        assert_eq!(event.custom_data.and_then(|c| c.opt_out_type), None);
    }

    #[test]
    fn a_profile_applies_only_with_the_orders_checkout_token() {
        let recorded = Profile {
            checkout_token_sha256: Some(normalize::sha256_hex("bd5a8aa1")),
            ..profile(Some(true), None)
        };
        let mut event = order("us", None);
        assert_eq!(
            apply(
                &mut event,
                Some("bd5a8aa1"),
                &recorded,
                ConsentPolicy::OptOut
            ),
            Applied::Send { filled: 3 }
        );
        let mut event = order("us", None);
        assert_eq!(
            apply(&mut event, None, &recorded, ConsentPolicy::Skip),
            Applied::TokenMismatch,
            "an order without a checkout token had no storefront checkout"
        );
        for forged in [
            Profile {
                checkout_token_sha256: None,
                ..profile(Some(false), None)
            },
            Profile {
                checkout_token_sha256: Some(normalize::sha256_hex("guess")),
                ..profile(Some(false), None)
            },
        ] {
            let mut event = order("us", None);
            let before = event.clone();
            assert_eq!(
                apply(&mut event, Some("bd5a8aa1"), &forged, ConsentPolicy::Skip),
                Applied::TokenMismatch
            );
            assert_eq!(event, before);
        }
    }

    #[test]
    fn unknown_consent_sends_the_order_normally() {
        let mut event = order("us", None);
        let applied = apply(
            &mut event,
            Some(TOKEN),
            &profile(None, None),
            ConsentPolicy::Skip,
        );
        assert_eq!(applied, Applied::Send { filled: 3 });
        assert_eq!(event.opt_out, None);
        assert_eq!(event.custom_data.and_then(|c| c.opt_out_type), None);
    }
}
