//! Where a store's [`Grant`] is kept: the [`GrantStore`] port, the one refresher at a time
//! ([`refresh_with_lease`]), and [`ApiToken`], the current access token as readers hold it.
//!
//! **One writer.** A refresh spends the refresh token it sends (Pinterest rotates it), so two
//! refreshers working from the same grant would leave one of them holding a dead token, and if
//! that one wrote last, the store would lose the sign-in. So a refresher first takes the store's
//! lease (a conditional write with an expiry), then reads the grant, refreshes and writes it under
//! the lease: whoever comes second either finds the lease taken ([`RefreshOutcome::Busy`]) or,
//! once it is free, reads the grant the first one wrote. A holder that died leaves the lease to
//! expire after [`LEASE_TTL`].

use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{Due, Grant, OAuthError, TokenEndpoint, needs_refresh, refresh_token_days_left};

/// How long a lease lasts: a refresh takes seconds, so this only matters when a holder died.
pub const LEASE_TTL: chrono::Duration = chrono::Duration::minutes(2);

/// A held lease on a store's grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it (random per attempt).
    pub holder: String,
    /// When it lapses.
    pub until: DateTime<Utc>,
}

/// Why the grant store failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantStoreError {
    /// Another refresher took the lease: this one must not write.
    #[error(
        "another refresher took over the Pinterest sign-in of {shop}; nothing was written, the next check reads its result"
    )]
    LeaseLost {
        /// The store.
        shop: String,
    },
    /// The stored grant cannot be read.
    #[error(
        "the stored Pinterest sign-in of {shop} is damaged ({message}); sign in again with `pinrelay pinterest login --shop {shop}`"
    )]
    Corrupt {
        /// The store.
        shop: String,
        /// What is wrong (never a value).
        message: String,
    },
    /// The database, table or secret failed.
    #[error("the Pinterest sign-in store failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The grants of a relay's stores, with a lease so that one refresher writes at a time.
pub trait GrantStore: Send + Sync + 'static {
    /// The current grant of `shop`; `None` when it has not signed in.
    fn get(
        &self,
        shop: &str,
    ) -> impl Future<Output = Result<Option<Grant>, GrantStoreError>> + Send;

    /// Takes `shop`'s lease for `holder` until `now + ttl`, when no one holds it or it lapsed
    /// (a conditional write); `None` when another holder has it.
    fn try_lease(
        &self,
        shop: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> impl Future<Output = Result<Option<Lease>, GrantStoreError>> + Send;

    /// Writes `grant` as `shop`'s, only while `lease` is still held
    /// ([`GrantStoreError::LeaseLost`] otherwise).
    fn put(
        &self,
        shop: &str,
        lease: &Lease,
        grant: &Grant,
    ) -> impl Future<Output = Result<(), GrantStoreError>> + Send;

    /// Gives up `lease` (a no-op when another holder took it).
    fn release(
        &self,
        shop: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<(), GrantStoreError>> + Send;
}

/// What one refresh attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Renewed: the new tokens are stored.
    Refreshed {
        /// When the new access token expires.
        access_token_expires_at: DateTime<Utc>,
        /// Days left on the new refresh token.
        refresh_token_days_left: i64,
    },
    /// Neither token is close to expiring.
    NotDue {
        /// Days left on the refresh token.
        refresh_token_days_left: i64,
    },
    /// Another refresher holds the lease; it renews the grant.
    Busy,
    /// The store has not signed in to Pinterest.
    NotSignedIn,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The refresh token expired or was refused: only signing in again helps.
    #[error(
        "the Pinterest sign-in of {shop} has expired or was revoked; sign in again with `pinrelay pinterest login --shop {shop}`"
    )]
    SignInAgain {
        /// The store.
        shop: String,
        /// Pinterest's refusal, when it answered one.
        #[source]
        source: Option<OAuthError>,
    },
    /// Pinterest failed otherwise (app credentials, rate limit, outage).
    #[error("renewing the Pinterest sign-in of {shop} failed: {source}")]
    Pinterest {
        /// The store.
        shop: String,
        /// What Pinterest answered.
        #[source]
        source: OAuthError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] GrantStoreError),
}

/// A random holder id (16 bytes, hex) naming `who` takes a lease.
#[must_use]
pub fn holder_id(who: &str) -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0_u8; 16];
    // SystemRandom fails only without an OS random source; a fixed id then still names the holder.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    format!("{who}-{}", hex::encode(bytes))
}

/// Renews `shop`'s grant when it is due (or always, with `force`) under the store's lease: the
/// only way a refresh token is spent.
///
/// # Errors
/// [`RefreshError::SignInAgain`] when the refresh token expired or Pinterest refused it; other
/// Pinterest failures; the store's. The lease is given up in every case.
pub async fn refresh_with_lease<S: GrantStore, E: TokenEndpoint>(
    store: &S,
    endpoint: &E,
    shop: &str,
    now: DateTime<Utc>,
    force: bool,
) -> Result<RefreshOutcome, RefreshError> {
    let holder = holder_id("refresh");
    let Some(lease) = store.try_lease(shop, &holder, now, LEASE_TTL).await? else {
        return Ok(RefreshOutcome::Busy);
    };
    let result = refresh_holding(store, endpoint, shop, &lease, now, force).await;
    let released = store.release(shop, &lease).await;
    let outcome = result?;
    released?;
    Ok(outcome)
}

/// The refresh itself, `lease` held: the grant is read only now, so it is the latest one.
async fn refresh_holding<S: GrantStore, E: TokenEndpoint>(
    store: &S,
    endpoint: &E,
    shop: &str,
    lease: &Lease,
    now: DateTime<Utc>,
    force: bool,
) -> Result<RefreshOutcome, RefreshError> {
    let Some(grant) = store.get(shop).await? else {
        return Ok(RefreshOutcome::NotSignedIn);
    };
    match needs_refresh(&grant, now) {
        Due::SignInAgain => {
            return Err(RefreshError::SignInAgain {
                shop: shop.to_owned(),
                source: None,
            });
        }
        Due::NotYet if !force => {
            return Ok(RefreshOutcome::NotDue {
                refresh_token_days_left: refresh_token_days_left(&grant, now),
            });
        }
        _ => {}
    }
    let tokens = endpoint
        .refresh(&grant.app, &grant.refresh_token)
        .await
        .map_err(|e| match e {
            e @ OAuthError::GrantRefused { .. } => RefreshError::SignInAgain {
                shop: shop.to_owned(),
                source: Some(e),
            },
            source => RefreshError::Pinterest {
                shop: shop.to_owned(),
                source,
            },
        })?;
    let next = grant.renewed(tokens, now);
    store.put(shop, lease, &next).await?;
    tracing::info!(
        shop,
        refresh_token_expires_at = %next.refresh_token_expires_at,
        access_token_expires_at = %next.access_token_expires_at,
        "renewed the Pinterest sign-in"
    );
    Ok(RefreshOutcome::Refreshed {
        access_token_expires_at: next.access_token_expires_at,
        refresh_token_days_left: refresh_token_days_left(&next, now),
    })
}

/// The scheduled refresher's pass (serve's hourly task, the stack's hourly watch): renews each of
/// `shops`' grants that is due, under its lease. A store that has not signed in, or whose grant is
/// not due, costs one read and no write.
pub async fn refresh_due<S: GrantStore, E: TokenEndpoint>(
    store: &S,
    endpoint: &E,
    shops: &[String],
    now: DateTime<Utc>,
) -> Vec<(String, Result<RefreshOutcome, RefreshError>)> {
    let mut outcomes = Vec::with_capacity(shops.len());
    for shop in shops {
        let outcome = match store.get(shop).await {
            Err(e) => Err(RefreshError::Store(e)),
            Ok(None) => Ok(RefreshOutcome::NotSignedIn),
            Ok(Some(grant)) if needs_refresh(&grant, now) == Due::NotYet => {
                Ok(RefreshOutcome::NotDue {
                    refresh_token_days_left: refresh_token_days_left(&grant, now),
                })
            }
            Ok(Some(_)) => refresh_with_lease(store, endpoint, shop, now, false).await,
        };
        outcomes.push((shop.clone(), outcome));
    }
    outcomes
}

/// Logs one store's refresh outcome: renewed (info), a failure with its fix (error), else debug.
pub fn log_refresh(shop: &str, outcome: &Result<RefreshOutcome, RefreshError>) {
    match outcome {
        Ok(RefreshOutcome::Refreshed {
            refresh_token_days_left,
            ..
        }) => tracing::info!(
            outcome = "pinterest_sign_in_renewed",
            shop,
            refresh_token_days_left,
            "renewed the store's Pinterest sign-in"
        ),
        Ok(other) => tracing::debug!(shop, outcome = ?other, "Pinterest sign-in checked"),
        Err(e) => tracing::error!(
            outcome = "pinterest_sign_in_failed",
            shop,
            error.message = %e,
            error.cause_chain = ?e,
            "cannot renew the store's Pinterest sign-in"
        ),
    }
}

/// Stores a new sign-in (from `pinrelay pinterest login`) under the lease, waiting up to
/// `attempts` × 1 s for a refresher that holds it.
///
/// # Errors
/// The lease stayed taken, or the store failed.
pub async fn save_signed_in<S: GrantStore>(
    store: &S,
    shop: &str,
    grant: &Grant,
    attempts: u32,
) -> Result<(), GrantStoreError> {
    let holder = holder_id("login");
    for attempt in 0..attempts.max(1) {
        if let Some(lease) = store
            .try_lease(shop, &holder, Utc::now(), LEASE_TTL)
            .await?
        {
            let put = store.put(shop, &lease, grant).await;
            let released = store.release(shop, &lease).await;
            put?;
            return released;
        }
        if attempt + 1 < attempts {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Err(GrantStoreError::LeaseLost {
        shop: shop.to_owned(),
    })
}

/// The current access token of a store's grant, as the functions that call Pinterest's API hold
/// it: read once, read again after a 401 ([`ApiToken::reread`]); they never write it.
pub struct ApiToken<S> {
    store: S,
    shop: String,
    current: Mutex<Option<SecretString>>,
}

impl<S: GrantStore> ApiToken<S> {
    /// `shop`'s token in `store`, not read yet.
    pub fn new(store: S, shop: impl Into<String>) -> Self {
        Self {
            store,
            shop: shop.into(),
            current: Mutex::new(None),
        }
    }

    /// The token: the one read before, else the store's; `None` when the store has not signed
    /// in.
    ///
    /// # Errors
    /// The store failed.
    pub async fn get(&self) -> Result<Option<SecretString>, GrantStoreError> {
        let cached = self.current.lock().ok().and_then(|c| c.clone());
        match cached {
            Some(token) => Ok(Some(token)),
            None => self.reread().await,
        }
    }

    /// Reads the token again (after Pinterest answered 401: the refresher renewed it).
    ///
    /// # Errors
    /// The store failed.
    pub async fn reread(&self) -> Result<Option<SecretString>, GrantStoreError> {
        let token = self.store.get(&self.shop).await?.map(|g| g.access_token);
        if let Ok(mut current) = self.current.lock() {
            current.clone_from(&token);
        }
        Ok(token)
    }
}

/// The contract every [`GrantStore`] keeps, run against each adapter (SQLite here, AWS in
/// `tests/`).
#[allow(clippy::missing_panics_doc)]
pub mod contract {
    use std::collections::HashMap;
    use std::sync::Arc;

    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::pinterest::oauth::{AppCredentials, TokenResponse};

    /// A token endpoint that rotates refresh tokens like Pinterest's: each refresh token works
    /// once, and a reused one is refused (the loser of a race would break the grant).
    #[derive(Default)]
    pub struct RotatingEndpoint {
        state: std::sync::Mutex<(u64, HashMap<String, bool>)>,
    }

    impl RotatingEndpoint {
        /// An endpoint that accepts `refresh_token` once.
        pub fn issuing(refresh_token: &str) -> Arc<Self> {
            let endpoint = Self::default();
            if let Ok(mut state) = endpoint.state.lock() {
                state.1.insert(refresh_token.to_owned(), true);
            }
            Arc::new(endpoint)
        }

        /// Whether `refresh_token` would be accepted now.
        pub fn accepts(&self, refresh_token: &str) -> bool {
            self.state
                .lock()
                .map(|s| s.1.get(refresh_token).copied().unwrap_or(false))
                .unwrap_or(false)
        }

        /// Refreshes spent so far.
        pub fn refreshes(&self) -> u64 {
            self.state.lock().map(|s| s.0).unwrap_or(0)
        }
    }

    impl TokenEndpoint for Arc<RotatingEndpoint> {
        async fn refresh(
            &self,
            _app: &AppCredentials,
            refresh_token: &SecretString,
        ) -> Result<TokenResponse, OAuthError> {
            // A slow endpoint, so racing refreshers overlap.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut state = self
                .state
                .lock()
                .map_err(|_| OAuthError::UnexpectedResponse("poisoned".into()))?;
            if state.1.get(refresh_token.expose_secret()) != Some(&true) {
                return Err(OAuthError::GrantRefused {
                    message: "invalid refresh token".into(),
                });
            }
            state
                .1
                .insert(refresh_token.expose_secret().to_owned(), false);
            state.0 += 1;
            let next = format!("refresh-{}", state.0);
            state.1.insert(next.clone(), true);
            Ok(TokenResponse {
                access_token: SecretString::from(format!("access-{}", state.0)),
                expires_in: 30 * 86_400,
                scope: Some("ads:read,ads:write,catalogs:read".into()),
                refresh_token: Some(SecretString::from(next)),
                refresh_token_expires_in: Some(60 * 86_400),
                refresh_token_expires_at: None,
            })
        }
    }

    /// A grant issued at `now` whose access token lasts `access_days` and refresh token
    /// `refresh_days`.
    pub fn grant_at(now: DateTime<Utc>, access_days: i64, refresh_days: i64) -> Grant {
        Grant {
            app: AppCredentials {
                app_id: "1234".into(),
                app_secret: SecretString::from("app-secret-value"),
            },
            access_token: SecretString::from("access-token-value"),
            access_token_issued_at: now,
            access_token_expires_at: now + chrono::Duration::days(access_days),
            refresh_token: SecretString::from("refresh-token-value"),
            refresh_token_expires_at: now + chrono::Duration::days(refresh_days),
            scopes: vec!["ads:read".into()],
            ad_account_id: "549755885175".into(),
        }
    }

    /// A due grant whose refresh token `endpoint` accepts once.
    pub fn due_grant(now: DateTime<Utc>) -> Grant {
        Grant {
            app: AppCredentials {
                app_id: "1234".into(),
                app_secret: SecretString::from("app-secret"),
            },
            access_token: SecretString::from("access-0"),
            access_token_issued_at: now - chrono::Duration::days(29),
            access_token_expires_at: now + chrono::Duration::days(1),
            refresh_token: SecretString::from("refresh-0"),
            refresh_token_expires_at: now + chrono::Duration::days(31),
            scopes: vec!["ads:read".into()],
            ad_account_id: "549755885175".into(),
        }
    }

    /// Leases are exclusive until released or lapsed; only the holder writes.
    ///
    /// # Panics
    /// When the store breaks the contract.
    pub async fn leases_are_exclusive<S: GrantStore>(store: &S, shop: &str) {
        let now = Utc::now();
        let grant = due_grant(now);
        assert!(store.get(shop).await.unwrap().is_none());
        let a = store.try_lease(shop, "a", now, LEASE_TTL).await.unwrap();
        let a = a.expect("a free lease is taken");
        assert!(
            store
                .try_lease(shop, "b", now, LEASE_TTL)
                .await
                .unwrap()
                .is_none(),
            "a held lease is not taken twice"
        );
        store.put(shop, &a, &grant).await.unwrap();
        // b takes the lapsed lease; a may no longer write.
        let later = now + LEASE_TTL + chrono::Duration::seconds(1);
        let b = store.try_lease(shop, "b", later, LEASE_TTL).await.unwrap();
        let b = b.expect("a lapsed lease is taken");
        assert!(matches!(
            store.put(shop, &a, &grant).await,
            Err(GrantStoreError::LeaseLost { .. })
        ));
        store.release(shop, &a).await.unwrap();
        assert!(
            store
                .try_lease(shop, "c", later, LEASE_TTL)
                .await
                .unwrap()
                .is_none(),
            "a's release does not free b's lease"
        );
        store.release(shop, &b).await.unwrap();
        assert!(
            store
                .try_lease(shop, "c", later, LEASE_TTL)
                .await
                .unwrap()
                .is_some()
        );
        let read = store.get(shop).await.unwrap().unwrap();
        assert_eq!(read.refresh_token.expose_secret(), "refresh-0");
    }

    /// Two refreshers race on a due grant: one refreshes, the other does not spend the old
    /// refresh token, and the stored refresh token is the one the endpoint accepts.
    ///
    /// # Panics
    /// When the store breaks the contract.
    pub async fn two_refreshers_racing_one_wins_the_token_survives<S: GrantStore>(
        store: &S,
        endpoint: &Arc<RotatingEndpoint>,
        shop: &str,
    ) {
        let now = Utc::now();
        let (a, b) = tokio::join!(
            refresh_with_lease(store, endpoint, shop, now, false),
            refresh_with_lease(store, endpoint, shop, now, false),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let refreshed = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Refreshed { .. }))
            .count();
        assert_eq!(refreshed, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, RefreshOutcome::Busy | RefreshOutcome::NotDue { .. })),
            "{outcomes:?}"
        );
        assert_eq!(endpoint.refreshes(), 1);
        let stored = store.get(shop).await.unwrap().unwrap();
        assert!(
            endpoint.accepts(stored.refresh_token.expose_secret()),
            "the stored refresh token is the live one"
        );
        assert_eq!(stored.access_token.expose_secret(), "access-1");
        // Forced refreshes one after the other each spend the latest token.
        for _ in 0..2 {
            let outcome = refresh_with_lease(store, endpoint, shop, Utc::now(), true)
                .await
                .unwrap();
            assert!(matches!(outcome, RefreshOutcome::Refreshed { .. }));
        }
        let stored = store.get(shop).await.unwrap().unwrap();
        assert!(endpoint.accepts(stored.refresh_token.expose_secret()));
        assert_eq!(endpoint.refreshes(), 3);
    }
}
