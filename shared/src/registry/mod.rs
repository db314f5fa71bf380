//! The shop registry: every store one relay serves, each with its own webhook secret(s), Pinterest
//! ad account and token, Admin credentials and conversion rules.
//!
//! - A [`Shop`] is its [`ShopEntry`] (what may be shown: domain, Shopify's numeric id, ad account,
//!   settings, enabled) and its [`ShopSecrets`] (never shown, never logged). `serve` keeps both in
//!   its database ([`sqlite`]); a stack keeps entries in its table and secrets in Secrets Manager
//!   (`aws`, one secret per store, read again only when its entry changes).
//! - The relay's own variables (`SHOPIFY_WEBHOOK_SECRETS`, `PINTEREST_*`, the rule variables and the
//!   `SHOPIFY_SHOP_DOMAINS` allow-list) are the **default store**: a stack or serve set up before
//!   the registry keeps working unchanged, and a registered store's settings fall back to them.
//! - [`Directory`] answers "which store is this shop?" for ingest and dispatch: registered stores
//!   first, then the default store. It caches each answer for [`CACHE_TTL`] (so a store added or
//!   changed takes effect within a minute, secret rotation included), caches unknown shops too (an
//!   unsigned flood costs no reads), and on a read error answers from the last good copy.

#[cfg(all(feature = "dynamodb", feature = "secretsmanager"))]
pub mod aws;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{self, InvalidVar, keys};
use crate::mapping::Options;
use crate::shopify::WebhookSecrets;
use crate::shopify::admin::AdminCredentials;

/// How long an answer of the registry is used before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Unknown shops remembered at most (an unsigned flood under random shop names cannot grow the
/// cache without bound; past this, the remembered unknowns are forgotten at once).
const MAX_UNKNOWN: usize = 10_000;

/// The settings a store may set for itself; any other falls back to the relay's variable.
pub const STORE_SETTINGS: [&str; 15] = [
    keys::ORDER_SOURCES,
    keys::CHECKOUT_ON,
    keys::PAID_STATUSES,
    keys::CHECKOUT_EVENT_ID,
    keys::CONTENT_ID,
    keys::CATALOG_COUNTRY,
    keys::VALUE_SOURCE,
    keys::DEFAULT_COUNTRY,
    keys::ORDER_CONSENT_POLICY,
    keys::PINTEREST_TEST_MODE,
    keys::EVENT_ID_TEMPLATE,
    keys::STORE_URL,
    keys::INCLUDE_TEST_ORDERS,
    keys::SEND_POS_ORDERS,
    keys::AUDIENCE_LISTS,
];

/// What the registry says of a store that may be shown: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopEntry {
    /// The `*.myshopify.com` domain: the key, and what `X-Shopify-Shop-Domain` carries.
    pub domain: String,
    /// Shopify's numeric shop id, when known: an order's `order_status_url` carries it, which
    /// ties a signed order to its store where stores share one app secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<u64>,
    /// The Pinterest ad account its events go to.
    pub ad_account_id: String,
    /// Its own values of [`STORE_SETTINGS`].
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// False once the app is uninstalled (`app/uninstalled`) or the store is paused: its webhooks
    /// are refused like an unknown shop's.
    pub enabled: bool,
    /// When it was added or last changed.
    pub updated_at: DateTime<Utc>,
}

impl ShopEntry {
    /// A setting of this store: its own value, else `fallback`'s (the relay's variable).
    pub fn setting(
        &self,
        key: &'static str,
        fallback: &dyn Fn(&'static str) -> Option<String>,
    ) -> Option<String> {
        self.settings
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| fallback(key))
    }
}

/// A store's secrets. `Debug` shows which are set, never a value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopSecrets {
    /// The Shopify app's client secret(s) its webhooks are signed with: current first, then the
    /// previous one during a rotation.
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
    /// The Pinterest conversion access token for its ad account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinterest_access_token: Option<String>,
    /// A Pinterest API token with `ads:read` (Event Quality, the catalog probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinterest_api_token: Option<String>,
    /// A static Admin API access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify_admin_token: Option<String>,
    /// A Dev Dashboard app's client id, to mint Admin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify_client_id: Option<String>,
    /// That app's client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify_client_secret: Option<String>,
}

impl std::fmt::Debug for ShopSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopSecrets")
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field(
                "pinterest_access_token",
                &self.pinterest_access_token.is_some(),
            )
            .field("pinterest_api_token", &self.pinterest_api_token.is_some())
            .field("shopify_admin_token", &self.shopify_admin_token.is_some())
            .field("shopify_client_id", &self.shopify_client_id.is_some())
            .finish_non_exhaustive()
    }
}

impl ShopSecrets {
    /// Its Admin credentials: its token, else its client id and secret; `None` without either.
    pub fn admin_credentials(&self) -> Option<AdminCredentials> {
        match (
            &self.shopify_admin_token,
            &self.shopify_client_id,
            &self.shopify_client_secret,
        ) {
            (Some(token), _, _) => Some(AdminCredentials::Token(token.clone().into())),
            (None, Some(id), Some(secret)) => Some(AdminCredentials::ClientCredentials {
                client_id: id.clone(),
                client_secret: secret.clone().into(),
            }),
            _ => None,
        }
    }
}

/// A store: what may be shown, and its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    /// The entry.
    pub entry: ShopEntry,
    /// The secrets.
    pub secrets: ShopSecrets,
}

impl Shop {
    /// The secrets its webhooks may be signed with.
    pub fn signing_secrets(&self) -> WebhookSecrets {
        WebhookSecrets::new(
            self.secrets
                .webhook_secrets
                .iter()
                .map(|s| SecretString::from(s.clone())),
        )
    }

    /// A setting of this store: its own value, else `fallback`'s (the relay's variable).
    pub fn setting(
        &self,
        key: &'static str,
        fallback: &dyn Fn(&'static str) -> Option<String>,
    ) -> Option<String> {
        self.entry.setting(key, fallback)
    }

    /// Its conversion rules and mapping options: its own settings over `fallback`'s.
    ///
    /// # Errors
    /// [`InvalidVar`] naming the setting.
    pub fn options(
        &self,
        fallback: &dyn Fn(&'static str) -> Option<String>,
    ) -> Result<Options, InvalidVar> {
        config::mapping_options_from(&|k| self.setting(k, fallback))
    }
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The storage failed (database, table or Secrets Manager).
    #[error("the shop registry could not be read or written: {0}")]
    Storage(String),
    /// A stored entry does not parse.
    #[error(
        "the registry entry of {domain} is damaged ({message}); run `pinrelay shops update {domain}` to rewrite it"
    )]
    Corrupt {
        /// The store.
        domain: String,
        /// What is wrong.
        message: String,
    },
    /// A setting that stores cannot set.
    #[error("{0} is not a per-store setting; per-store settings are {list}", list = STORE_SETTINGS.join(", "))]
    UnknownSetting(String),
    /// A setting's value is invalid.
    #[error(transparent)]
    InvalidSetting(#[from] InvalidVar),
    /// Not a `*.myshopify.com` domain.
    #[error("{0:?} is not a shop: give its name or its name.myshopify.com domain")]
    InvalidDomain(String),
}

/// Where stores are kept: `serve`'s database or a stack's table and secrets.
pub trait Registry: Send + Sync + 'static {
    /// The store of `domain`, with its secrets; `None` when not registered.
    fn get(&self, domain: &str)
    -> impl Future<Output = Result<Option<Shop>, RegistryError>> + Send;

    /// Every registered store's entry (no secrets), by domain.
    fn list(&self) -> impl Future<Output = Result<Vec<ShopEntry>, RegistryError>> + Send;

    /// Adds or replaces a store, entry and secrets together.
    fn register(&self, shop: &Shop) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Removes a store, its secrets and its Pinterest sign-in; false when it was not registered.
    fn remove(&self, domain: &str) -> impl Future<Output = Result<bool, RegistryError>> + Send;

    /// Enables or disables a store, its secrets untouched (`app/uninstalled`,
    /// `pinrelay shops update --disable`); false when it was not registered.
    fn set_enabled(
        &self,
        domain: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<bool, RegistryError>> + Send;
}

/// Checks a new or changed store before it is written: a shop domain, an ad account, only
/// [`STORE_SETTINGS`], each valid.
///
/// # Errors
/// [`RegistryError`] saying what to change.
pub fn validate(shop: &Shop) -> Result<(), RegistryError> {
    if !crate::shopify::metadata::is_shop_domain(&shop.entry.domain) {
        return Err(RegistryError::InvalidDomain(shop.entry.domain.clone()));
    }
    if let Some(key) = shop
        .entry
        .settings
        .keys()
        .find(|k| !STORE_SETTINGS.contains(&k.as_str()))
    {
        return Err(RegistryError::UnknownSetting(key.clone()));
    }
    shop.options(&|_| None)?;
    if let Some(v) = shop.entry.settings.get(keys::ORDER_CONSENT_POLICY) {
        config::consent_policy_from(v)?;
    }
    Ok(())
}

/// How ingest and dispatch see a shop.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A store the relay serves: registered, or the default store.
    Known(Arc<Shop>),
    /// Neither registered (or disabled) nor the default store's.
    Unknown,
    /// The registry cannot be read and there is no earlier answer for this shop.
    Unavailable,
}

/// Which store a shop is, for ingest and dispatch; object-safe so the functions can hold any
/// registry.
pub trait Directory: Send + Sync {
    /// The store of `domain`.
    fn lookup<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup>;

    /// True when `domain` is a store named explicitly (registered, or in the default store's
    /// allow-list): the storefront endpoint serves only those.
    fn listed<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, bool>;

    /// Removes a registered store, entry and secrets (`shop/redact`), and forgets the cached
    /// answer; false when it was not registered.
    fn forget<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, RegistryError>>;

    /// Disables a registered store (`app/uninstalled`) and forgets the cached answer; false when
    /// it was not registered.
    fn disable<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, RegistryError>>;
}

/// The relay's own variables as a store: every shop of `domains` (any shop when `None`, the
/// single-store relay without an allow-list), with its webhook secrets.
#[derive(Debug, Clone)]
pub struct DefaultStore {
    /// Its webhook secrets (its domain and settings are empty: the relay's own apply).
    pub shop: Arc<Shop>,
    /// `SHOPIFY_SHOP_DOMAINS`.
    pub domains: Option<HashSet<String>>,
}

impl DefaultStore {
    /// The default store: `secrets` for the shops of `domains` (`SHOPIFY_SHOP_DOMAINS`; any shop
    /// when `None`). Its settings are the relay's variables, which ingest and dispatch hold
    /// already, so it carries none. `None` without a secret (a relay of registered stores only).
    pub fn new(secrets: &WebhookSecrets, domains: Option<HashSet<String>>) -> Option<Self> {
        if secrets.exposed().all(|s| s.trim().is_empty()) {
            return None;
        }
        Some(Self::with_secrets(
            secrets.exposed().map(str::to_owned).collect(),
            domains,
        ))
    }

    /// The default store as dispatch sees it: every shop that is not registered (ingest verified
    /// it already), with the relay's own client and settings.
    pub fn any_shop() -> Self {
        Self::with_secrets(Vec::new(), None)
    }

    fn with_secrets(webhook_secrets: Vec<String>, domains: Option<HashSet<String>>) -> Self {
        Self {
            shop: Arc::new(Shop {
                entry: ShopEntry {
                    domain: String::new(),
                    shop_id: None,
                    ad_account_id: String::new(),
                    settings: BTreeMap::new(),
                    enabled: true,
                    updated_at: DateTime::<Utc>::UNIX_EPOCH,
                },
                secrets: ShopSecrets {
                    webhook_secrets,
                    ..ShopSecrets::default()
                },
            }),
            domains,
        }
    }

    fn serves(&self, domain: &str) -> bool {
        self.domains.as_ref().is_none_or(|d| d.contains(domain))
    }
}

#[derive(Clone)]
struct Cached {
    read_at: Instant,
    shop: Option<Arc<Shop>>,
}

/// A [`Registry`] behind a cache, with the default store behind it: the [`Directory`] ingest
/// and dispatch use.
pub struct CachedDirectory<R> {
    registry: Option<R>,
    default: Option<DefaultStore>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl<R: Registry> CachedDirectory<R> {
    /// The directory over `registry` (none: the default store alone) and `default`.
    pub fn new(registry: Option<R>, default: Option<DefaultStore>) -> Self {
        Self {
            registry,
            default,
            ttl: CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The same with another cache lifetime (tests).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The registry behind the cache.
    pub fn registry(&self) -> Option<&R> {
        self.registry.as_ref()
    }

    /// The registered store of `domain` (enabled or not) through the cache; `Err` when it cannot
    /// be read and nothing earlier is cached.
    async fn registered(&self, domain: &str) -> Result<Option<Arc<Shop>>, ()> {
        let Some(registry) = &self.registry else {
            return Ok(None);
        };
        let earlier = self.cache.lock().ok().and_then(|c| c.get(domain).cloned());
        if let Some(c) = &earlier
            && c.read_at.elapsed() < self.ttl
        {
            return Ok(c.shop.clone());
        }
        match registry.get(domain).await {
            Ok(shop) => {
                let shop = shop.map(Arc::new);
                if let Ok(mut cache) = self.cache.lock() {
                    if shop.is_none() && cache.len() >= MAX_UNKNOWN {
                        cache.retain(|_, c| c.shop.is_some());
                    }
                    cache.insert(
                        domain.to_owned(),
                        Cached {
                            read_at: Instant::now(),
                            shop: shop.clone(),
                        },
                    );
                }
                Ok(shop)
            }
            Err(e) => {
                tracing::error!(shop = domain, error.message = %e, stale = earlier.is_some(), "the shop registry cannot be read; using the last good answer");
                earlier.map(|c| c.shop).ok_or(())
            }
        }
    }
}

impl<R: Registry> Directory for CachedDirectory<R> {
    fn lookup<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(async move {
            match self.registered(domain).await {
                Ok(Some(shop)) if shop.entry.enabled => Lookup::Known(shop),
                // A disabled store is not served, even if the default store's list names it.
                Ok(Some(_)) => Lookup::Unknown,
                Ok(None) => match &self.default {
                    Some(default) if default.serves(domain) => {
                        Lookup::Known(Arc::clone(&default.shop))
                    }
                    _ => Lookup::Unknown,
                },
                Err(()) => Lookup::Unavailable,
            }
        })
    }

    fn forget<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, RegistryError>> {
        Box::pin(async move {
            let Some(registry) = &self.registry else {
                return Ok(false);
            };
            let removed = registry.remove(domain).await?;
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(domain);
            }
            Ok(removed)
        })
    }

    fn disable<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<bool, RegistryError>> {
        Box::pin(async move {
            let Some(registry) = &self.registry else {
                return Ok(false);
            };
            let disabled = registry.set_enabled(domain, false).await?;
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(domain);
            }
            Ok(disabled)
        })
    }

    fn listed<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match self.registered(domain).await {
                Ok(Some(shop)) => shop.entry.enabled,
                Ok(None) => self
                    .default
                    .as_ref()
                    .and_then(|d| d.domains.as_ref())
                    .is_some_and(|d| d.contains(domain)),
                Err(()) => false,
            }
        })
    }
}

/// No registry: the type of a [`CachedDirectory`] that serves the default store alone.
pub struct NoRegistry;

impl Registry for NoRegistry {
    async fn get(&self, _: &str) -> Result<Option<Shop>, RegistryError> {
        Ok(None)
    }
    async fn list(&self) -> Result<Vec<ShopEntry>, RegistryError> {
        Ok(Vec::new())
    }
    async fn register(&self, _: &Shop) -> Result<(), RegistryError> {
        Err(RegistryError::Storage("this relay has no registry".into()))
    }
    async fn remove(&self, _: &str) -> Result<bool, RegistryError> {
        Ok(false)
    }
    async fn set_enabled(&self, _: &str, _: bool) -> Result<bool, RegistryError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// A registry in memory that counts reads and can fail.
    #[derive(Default)]
    struct Memory {
        shops: Mutex<HashMap<String, Shop>>,
        reads: AtomicUsize,
        failing: AtomicBool,
    }

    impl Registry for Arc<Memory> {
        async fn get(&self, domain: &str) -> Result<Option<Shop>, RegistryError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(RegistryError::Storage("down".into()));
            }
            Ok(self.shops.lock().unwrap().get(domain).cloned())
        }
        async fn list(&self) -> Result<Vec<ShopEntry>, RegistryError> {
            Ok(self
                .shops
                .lock()
                .unwrap()
                .values()
                .map(|s| s.entry.clone())
                .collect())
        }
        async fn register(&self, shop: &Shop) -> Result<(), RegistryError> {
            self.shops
                .lock()
                .unwrap()
                .insert(shop.entry.domain.clone(), shop.clone());
            Ok(())
        }
        async fn remove(&self, domain: &str) -> Result<bool, RegistryError> {
            Ok(self.shops.lock().unwrap().remove(domain).is_some())
        }
        async fn set_enabled(&self, domain: &str, enabled: bool) -> Result<bool, RegistryError> {
            let mut shops = self.shops.lock().unwrap();
            Ok(shops
                .get_mut(domain)
                .map(|s| s.entry.enabled = enabled)
                .is_some())
        }
    }

    pub(crate) fn shop(domain: &str, secret: &str) -> Shop {
        Shop {
            entry: ShopEntry {
                domain: domain.to_owned(),
                shop_id: Some(548_380_009),
                ad_account_id: "549755885175".to_owned(),
                settings: BTreeMap::new(),
                enabled: true,
                updated_at: Utc::now(),
            },
            secrets: ShopSecrets {
                webhook_secrets: vec![secret.to_owned()],
                pinterest_access_token: Some("pina_token".to_owned()),
                ..ShopSecrets::default()
            },
        }
    }

    fn default_store(domains: Option<&[&str]>) -> DefaultStore {
        DefaultStore {
            shop: Arc::new(shop("", "default-secret")),
            domains: domains.map(|d| d.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[tokio::test]
    async fn registered_stores_come_first_then_the_default_stores_list() {
        let memory = Arc::new(Memory::default());
        memory
            .register(&shop("a.myshopify.com", "a"))
            .await
            .unwrap();
        let dir = CachedDirectory::new(
            Some(Arc::clone(&memory)),
            Some(default_store(Some(&["legacy.myshopify.com"]))),
        );
        let secret = |l: Lookup| match l {
            Lookup::Known(s) => s.secrets.webhook_secrets[0].clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(secret(dir.lookup("a.myshopify.com").await), "a");
        assert_eq!(
            secret(dir.lookup("legacy.myshopify.com").await),
            "default-secret"
        );
        assert!(matches!(
            dir.lookup("other.myshopify.com").await,
            Lookup::Unknown
        ));
        assert!(dir.listed("a.myshopify.com").await);
        assert!(dir.listed("legacy.myshopify.com").await);
        assert!(!dir.listed("other.myshopify.com").await);
    }

    #[tokio::test]
    async fn answers_are_cached_unknown_ones_too_and_a_read_error_uses_the_last_good_one() {
        let memory = Arc::new(Memory::default());
        memory
            .register(&shop("a.myshopify.com", "a"))
            .await
            .unwrap();
        let dir = CachedDirectory::new(Some(Arc::clone(&memory)), None);
        for _ in 0..5 {
            dir.lookup("a.myshopify.com").await;
            dir.lookup("nobody.myshopify.com").await;
        }
        assert_eq!(memory.reads.load(Ordering::SeqCst), 2);

        let dir = dir.with_ttl(Duration::ZERO);
        memory.failing.store(true, Ordering::SeqCst);
        assert!(matches!(
            dir.lookup("a.myshopify.com").await,
            Lookup::Known(_)
        ));
        assert!(matches!(
            dir.lookup("never-seen.myshopify.com").await,
            Lookup::Unavailable
        ));
    }

    #[tokio::test]
    async fn a_change_takes_effect_once_the_cached_answer_expires() {
        let memory = Arc::new(Memory::default());
        let dir = CachedDirectory::new(Some(Arc::clone(&memory)), None)
            .with_ttl(Duration::from_millis(50));
        assert!(matches!(
            dir.lookup("b.myshopify.com").await,
            Lookup::Unknown
        ));
        memory
            .register(&shop("b.myshopify.com", "b"))
            .await
            .unwrap();
        assert!(matches!(
            dir.lookup("b.myshopify.com").await,
            Lookup::Unknown
        ));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(
            dir.lookup("b.myshopify.com").await,
            Lookup::Known(_)
        ));
        // Disabled (app uninstalled): refused, even when the default store's list names it.
        let mut disabled = shop("b.myshopify.com", "b");
        disabled.entry.enabled = false;
        memory.register(&disabled).await.unwrap();
        let dir = CachedDirectory::new(
            Some(Arc::clone(&memory)),
            Some(default_store(Some(&["b.myshopify.com"]))),
        );
        assert!(matches!(
            dir.lookup("b.myshopify.com").await,
            Lookup::Unknown
        ));
    }

    #[test]
    fn validation_names_the_setting_to_change_and_debug_shows_no_secret() {
        let mut s = shop("a.myshopify.com", "hush");
        assert!(validate(&s).is_ok());
        s.entry
            .settings
            .insert("QUEUE_URL".to_owned(), "x".to_owned());
        assert!(matches!(
            validate(&s),
            Err(RegistryError::UnknownSetting(k)) if k == "QUEUE_URL"
        ));
        s.entry.settings.clear();
        s.entry
            .settings
            .insert(keys::CHECKOUT_ON.to_owned(), "sometimes".to_owned());
        assert!(matches!(
            validate(&s),
            Err(RegistryError::InvalidSetting(_))
        ));
        s.entry.domain = "acme.com".to_owned();
        assert!(matches!(validate(&s), Err(RegistryError::InvalidDomain(_))));
        assert!(!format!("{s:?}").contains("hush"));
        assert!(!format!("{s:?}").contains("pina_token"));
    }

    #[test]
    fn a_stores_setting_wins_over_the_relays_variable() {
        let mut s = shop("a.myshopify.com", "x");
        s.entry
            .settings
            .insert(keys::CONTENT_ID.to_owned(), "product".to_owned());
        let fallback = |k: &'static str| match k {
            keys::CONTENT_ID => Some("sku".to_owned()),
            keys::VALUE_SOURCE => Some("total".to_owned()),
            _ => None,
        };
        let options = s.options(&fallback).unwrap();
        assert_eq!(options.content_id, crate::mapping::ContentIdSource::Product);
        assert_eq!(options.value_source, crate::mapping::ValueSource::Total);
    }
}
