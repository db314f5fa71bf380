//! Where each shop's events go: its Pinterest client (ad account, token, test mode) and its
//! settings (rules, mapping, consent policy). The dispatcher runs a batch shop by shop, so one
//! Pinterest request never mixes stores and a store whose token is refused delays no other.
//!
//! - Any [`ConversionsApi`] is itself [`Routes`]: every shop on that client with the dispatcher's
//!   settings (the single-store relay).
//! - [`StoreRoutes`] asks a [`Directory`] which store a shop is and builds (once per version of the
//!   store) its client with a factory the function or `serve` provides.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;

use super::model::DispatchConfig;
use crate::config;
use crate::idempotency::Mode;
use crate::pinterest::{ConversionsApi, PinterestHttp, PinterestHttpConfig};
use crate::registry::{Directory, Lookup, Shop};

/// A store's client: borrowed from the routes, or shared from their cache.
pub enum ApiRef<'a, A> {
    /// The routes' own client.
    Borrowed(&'a A),
    /// A client built for the store.
    Shared(Arc<A>),
}

impl<A> Deref for ApiRef<'_, A> {
    type Target = A;
    fn deref(&self) -> &A {
        match self {
            Self::Borrowed(a) => a,
            Self::Shared(a) => a,
        }
    }
}

/// The way of one shop's events.
pub enum Route<'a, A> {
    /// Its client and its settings.
    To {
        /// The Pinterest client (its ad account and token).
        api: ApiRef<'a, A>,
        /// The dispatcher's settings with the store's own.
        config: Box<Cow<'a, DispatchConfig>>,
    },
    /// A shop the relay does not (or no longer) serves: its messages are dead-lettered, so they
    /// can be replayed once the store is registered again.
    NotServed,
    /// The store is known but cannot be sent for now (registry unreadable, a client that cannot be
    /// built): its messages are retried.
    Unavailable(String),
}

/// Which way each shop's events take.
pub trait Routes: Send + Sync + 'static {
    /// The Pinterest client type.
    type Api: ConversionsApi;

    /// The route of `shop`'s events; `base` is the dispatcher's settings.
    fn route<'a>(
        &'a self,
        shop: &'a str,
        base: &'a DispatchConfig,
    ) -> BoxFuture<'a, Route<'a, Self::Api>>;

    /// Forgets a registered store, its entry and secrets (`shop/redact`); false when there was
    /// none (the default store's shops live in the relay's variables).
    fn forget_store<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        let _ = shop;
        Box::pin(async { Ok(false) })
    }

    /// Disables a registered store (`app/uninstalled`): its events are no longer sent (they are
    /// dead-lettered `shop_not_served`, replayable once it is enabled again); false when there
    /// was none.
    fn disable_store<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        let _ = shop;
        Box::pin(async { Ok(false) })
    }
}

impl<A: ConversionsApi> Routes for A {
    type Api = A;

    fn route<'a>(&'a self, _: &'a str, base: &'a DispatchConfig) -> BoxFuture<'a, Route<'a, A>> {
        Box::pin(async move {
            Route::To {
                api: ApiRef::Borrowed(self),
                config: Box::new(Cow::Borrowed(base)),
            }
        })
    }
}

/// Builds a registered store's client from its entry and secrets; the error says what is missing.
pub type ClientFactory<A> = Box<dyn Fn(&Shop) -> Result<A, String> + Send + Sync>;

/// The factory of the dispatch Lambda: a store's [`PinterestHttp`] client on its ad account with its
/// conversion token, in test mode when its setting (else `PINTEREST_TEST_MODE`) says so. A store
/// without a conversion token cannot be built: its events wait (and are retried) until one is set.
pub fn http_factory(
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> ClientFactory<PinterestHttp> {
    Box::new(move |shop: &Shop| {
        let domain = &shop.entry.domain;
        let token = shop.secrets.pinterest_access_token.as_ref().ok_or_else(|| {
            format!(
                "{domain} has no Pinterest conversion access token: set it with `pinrelay shops update {domain} --secrets`"
            )
        })?;
        let test_mode = shop
            .setting(config::keys::PINTEREST_TEST_MODE, &|k| config::var(k))
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        PinterestHttp::new(PinterestHttpConfig {
            base_url: base_url.clone(),
            ad_account_id: shop.entry.ad_account_id.clone(),
            access_token: SecretString::from(token.clone()),
            test_mode,
            connect_timeout,
            request_timeout,
        })
        .map_err(|e| format!("cannot build the Pinterest client of {domain}: {e}"))
    })
}

/// A store's client and the version of its entry it was built from.
type Built<A> = (DateTime<Utc>, Arc<A>);

/// The routes of a relay with a registry: registered stores on clients built for them, the default
/// store (the relay's own variables) on `default`.
pub struct StoreRoutes<D, A> {
    directory: Arc<D>,
    default: A,
    build: ClientFactory<A>,
    built: Mutex<HashMap<String, Built<A>>>,
}

impl<D: Directory + 'static, A: ConversionsApi> StoreRoutes<D, A> {
    /// The routes over `directory`; `default` carries the default store's events, `build` makes
    /// a registered store's client.
    pub fn new(directory: Arc<D>, default: A, build: ClientFactory<A>) -> Self {
        Self {
            directory,
            default,
            build,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The store's client, built once per version of its entry.
    fn client(&self, shop: &Shop) -> Result<Arc<A>, String> {
        let key = shop.entry.domain.clone();
        let version = shop.entry.updated_at;
        if let Ok(built) = self.built.lock()
            && let Some((at, api)) = built.get(&key)
            && *at == version
        {
            return Ok(Arc::clone(api));
        }
        let api = Arc::new((self.build)(shop)?);
        if let Ok(mut built) = self.built.lock() {
            built.insert(key, (version, Arc::clone(&api)));
        }
        Ok(api)
    }
}

/// The dispatcher's settings with a store's own: its rules and mapping, its consent policy and
/// its test mode.
///
/// # Errors
/// A store setting that does not parse.
pub fn store_config(base: &DispatchConfig, shop: &Shop) -> Result<DispatchConfig, String> {
    let fallback = |k: &'static str| config::var(k);
    let options = shop.options(&fallback).map_err(|e| e.to_string())?;
    let consent = match shop.setting(config::keys::ORDER_CONSENT_POLICY, &fallback) {
        Some(v) => config::consent_policy_from(&v).map_err(|e| e.to_string())?,
        None => base.order_consent_policy,
    };
    let test = shop
        .setting(config::keys::PINTEREST_TEST_MODE, &fallback)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    // Without a conversion token a store can only be dry-run: its sends are test sends.
    let dry = shop.secrets.pinterest_access_token.is_none();
    Ok(DispatchConfig {
        options,
        order_consent_policy: consent,
        mode: if test || dry { Mode::Test } else { Mode::Live },
        ..base.clone()
    })
}

impl<D: Directory + 'static, A: ConversionsApi> Routes for StoreRoutes<D, A> {
    type Api = A;

    fn route<'a>(&'a self, shop: &'a str, base: &'a DispatchConfig) -> BoxFuture<'a, Route<'a, A>> {
        Box::pin(async move {
            match self.directory.lookup(shop).await {
                // The default store: the relay's own client and settings.
                Lookup::Known(store) if store.entry.domain.is_empty() => Route::To {
                    api: ApiRef::Borrowed(&self.default),
                    config: Box::new(Cow::Borrowed(base)),
                },
                Lookup::Known(store) => {
                    let built = self
                        .client(&store)
                        .and_then(|api| Ok((api, store_config(base, &store)?)));
                    match built {
                        Ok((api, config)) => Route::To {
                            api: ApiRef::Shared(api),
                            config: Box::new(Cow::Owned(config)),
                        },
                        Err(e) => Route::Unavailable(format!("store {shop}: {e}")),
                    }
                }
                Lookup::Unknown => Route::NotServed,
                Lookup::Unavailable => {
                    Route::Unavailable("the shop registry is unavailable".to_owned())
                }
            }
        })
    }

    fn forget_store<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            if let Ok(mut built) = self.built.lock() {
                built.remove(shop);
            }
            self.directory.forget(shop).await.map_err(|e| e.to_string())
        })
    }

    fn disable_store<'a>(&'a self, shop: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            if let Ok(mut built) = self.built.lock() {
                built.remove(shop);
            }
            self.directory
                .disable(shop)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
