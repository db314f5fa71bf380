//! Configuration from the environment, read once at start-up through named keys.
//!
//! One loader per process kind: [`ingest_settings`] (the ingest Lambda), [`dispatch_settings`]
//! (the dispatch Lambda) and [`serve_settings`] (`pinrelay serve`, both halves in one process). Each
//! variable is read by one function here, with one default and one error message, whoever reads it.
//! Loading fails with a message naming the variable, so a misconfigured function fails its first
//! (cold-start) invocation loudly instead of mishandling webhooks.

use std::collections::HashSet;
use std::time::Duration;

use secrecy::SecretString;

use crate::dispatch::DispatchConfig;
use crate::ingest::IngestConfig;
use crate::mapping::{CheckoutEventId, CheckoutOn, ContentIdSource, Options, ValueSource};
use crate::pinterest::http::DEFAULT_BASE_URL;
use crate::pinterest::normalize;
use crate::profile::ConsentPolicy;
use crate::queue::{MAX_DELAY, MAX_ENQUEUE_BYTES};
use crate::shopify::admin::AdminCredentials;
use crate::shopify::{WebhookSecrets, admin};
use crate::watch::WatchConfig;

/// Environment variable names.
pub mod keys {
    /// SQS queue URL ingest sends to.
    pub const QUEUE_URL: &str = "QUEUE_URL";
    /// Comma-separated Shopify app client secrets (local use).
    pub const SHOPIFY_WEBHOOK_SECRETS: &str = "SHOPIFY_WEBHOOK_SECRETS";
    /// Secrets Manager ARN of the client secret(s): a JSON array or a plain string.
    pub const SHOPIFY_WEBHOOK_SECRET_ARN: &str = "SHOPIFY_WEBHOOK_SECRET_ARN";
    /// Optional comma-separated allow-list of shop domains.
    pub const SHOPIFY_SHOP_DOMAINS: &str = "SHOPIFY_SHOP_DOMAINS";
    /// Seconds order webhooks wait in the queue before dispatch (default 0).
    pub const ORDER_DELAY_SECONDS: &str = "ORDER_DELAY_SECONDS";
    /// DynamoDB table of idempotency records (and, on a stack, the registered stores' entries).
    pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
    /// The name prefix of the registered stores' secrets (`{StackName}/shops/`); set, the
    /// functions serve the stores registered with `pinrelay shops --stack`.
    pub const SHOP_SECRETS_PREFIX: &str = "SHOP_SECRETS_PREFIX";
    /// SQS dead-letter queue URL.
    pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
    /// Pinterest API base URL (default `https://api.pinterest.com`).
    pub const PINTEREST_API_URL: &str = "PINTEREST_API_URL";
    /// Pinterest ad account id.
    pub const PINTEREST_AD_ACCOUNT_ID: &str = "PINTEREST_AD_ACCOUNT_ID";
    /// Pinterest conversion access token (local use).
    pub const PINTEREST_ACCESS_TOKEN: &str = "PINTEREST_ACCESS_TOKEN";
    /// A Pinterest API token with `ads:read` (and `catalogs:read`): what `reconcile` reads Event
    /// Quality with. Never the conversion token, which carries no API scopes.
    pub const PINTEREST_API_TOKEN: &str = "PINTEREST_API_TOKEN";
    /// The Pinterest app's id, for `pinrelay pinterest login` (sign in to Pinterest).
    pub const PINTEREST_APP_ID: &str = "PINTEREST_APP_ID";
    /// The Pinterest app's secret, for `pinrelay pinterest login` (never a flag).
    pub const PINTEREST_APP_SECRET: &str = "PINTEREST_APP_SECRET";
    /// Secrets Manager ARN of the Pinterest token.
    pub const PINTEREST_ACCESS_TOKEN_SECRET_ARN: &str = "PINTEREST_ACCESS_TOKEN_SECRET_ARN";
    /// `true` adds `?test=true` to every Pinterest request.
    pub const PINTEREST_TEST_MODE: &str = "PINTEREST_TEST_MODE";
    /// Checkout `event_id` template (default `{order_id}`).
    pub const EVENT_ID_TEMPLATE: &str = "EVENT_ID_TEMPLATE";
    /// `event_source_url` (default `https://{shop}/`).
    pub const STORE_URL: &str = "STORE_URL";
    /// `true` sends orders marked `test`.
    pub const INCLUDE_TEST_ORDERS: &str = "INCLUDE_TEST_ORDERS";
    /// `true` sends POS orders as offline events.
    pub const SEND_POS_ORDERS: &str = "SEND_POS_ORDERS";
    /// `true`: resend in-doubt events instead of dead-lettering them.
    pub const RESEND_IN_DOUBT: &str = "RESEND_IN_DOUBT";
    /// Comma-separated order `source_name`s sent as storefront checkouts (default `web`).
    pub const ORDER_SOURCES: &str = "ORDER_SOURCES";
    /// `subtotal` (default) or `total`.
    pub const VALUE_SOURCE: &str = "VALUE_SOURCE";
    /// `variant` (default), `sku` or `product`.
    pub const CONTENT_ID: &str = "CONTENT_ID";
    /// `order_id` (default) or `shopify_event`: the checkout's `event_id`.
    pub const CHECKOUT_EVENT_ID: &str = "CHECKOUT_EVENT_ID";
    /// The bearer token of `pinrelay serve`'s reconcile page (else one is made at start).
    pub const PINRELAY_REPORT_TOKEN: &str = "PINRELAY_REPORT_TOKEN";
    /// The `Host`s `pinrelay serve`'s reconcile page answers to.
    pub const PINRELAY_ALLOWED_HOSTS: &str = "PINRELAY_ALLOWED_HOSTS";
    /// The catalog feed's country, the `{country}` of a `CONTENT_ID` template.
    pub const CATALOG_COUNTRY: &str = "CATALOG_COUNTRY";
    /// `created` (default) or `paid`: when a purchase counts.
    pub const CHECKOUT_ON: &str = "CHECKOUT_ON";
    /// Comma-separated `financial_status`es that count as paid under `CHECKOUT_ON=paid`.
    pub const PAID_STATUSES: &str = "PAID_STATUSES";
    /// Receives before the queue dead-letters a message (default 5, as in the template).
    pub const MAX_RECEIVE_COUNT: &str = "MAX_RECEIVE_COUNT";
    /// `opt_out` (default) or `skip`: orders whose shopper refused marketing consent.
    pub const ORDER_CONSENT_POLICY: &str = "ORDER_CONSENT_POLICY";
    /// ISO 3166-1 alpha-2 country of phones written without `+` and without an address country.
    pub const DEFAULT_COUNTRY: &str = "DEFAULT_COUNTRY";
    /// The shop the watch checks (else the first of `SHOPIFY_SHOP_DOMAINS`).
    pub const SHOP_DOMAIN: &str = "SHOP_DOMAIN";
    /// The relay's webhook URL, which the watched subscriptions must deliver to.
    pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
    /// A Shopify Admin API access token (local use).
    pub const SHOPIFY_ADMIN_TOKEN: &str = "SHOPIFY_ADMIN_TOKEN";
    /// A Dev Dashboard app's client id, to mint Admin API tokens (local use, with
    /// `SHOPIFY_CLIENT_SECRET`, instead of `SHOPIFY_ADMIN_TOKEN`).
    pub const SHOPIFY_CLIENT_ID: &str = "SHOPIFY_CLIENT_ID";
    /// That app's client secret (local use).
    pub const SHOPIFY_CLIENT_SECRET: &str = "SHOPIFY_CLIENT_SECRET";
    /// Secrets Manager ARN of the Admin API credentials: a token, or JSON
    /// `{"client_id": "...", "client_secret": "..."}`.
    pub const SHOPIFY_ADMIN_TOKEN_SECRET_ARN: &str = "SHOPIFY_ADMIN_TOKEN_SECRET_ARN";
    /// Admin API base URL instead of `https://{shop}` (tests).
    pub const SHOPIFY_ADMIN_API_URL: &str = "SHOPIFY_ADMIN_API_URL";
    /// Admin API version, `YYYY-MM` (default [`crate::shopify::admin::DEFAULT_API_VERSION`]).
    pub const SHOPIFY_API_VERSION: &str = "SHOPIFY_API_VERSION";
    /// Hours of orders the watch checks (default 6).
    pub const WATCH_LOOKBACK_HOURS: &str = "WATCH_LOOKBACK_HOURS";
    /// Comma-separated topics whose subscriptions the watch checks.
    pub const WATCH_TOPICS: &str = "WATCH_TOPICS";
    /// The customer lists the audience job keeps: `customers`, `customers,purchasers`, or empty
    /// (none: the default). A per-store setting.
    pub const AUDIENCE_LISTS: &str = "AUDIENCE_LISTS";
    /// Hours between the audience job's syncs of a store (default 24).
    pub const AUDIENCE_SYNC_HOURS: &str = "AUDIENCE_SYNC_HOURS";
    /// The most records one customer-list request carries (default 10,000).
    pub const AUDIENCE_BATCH_SIZE: &str = "AUDIENCE_BATCH_SIZE";
}

/// Default of `ORDER_DELAY_SECONDS`: time for the pixel's checkout to be recorded before the order.
pub const DEFAULT_ORDER_DELAY_SECONDS: u64 = 60;

/// Why the environment cannot configure this process.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error(transparent)]
    Missing(#[from] MissingVar),
    /// A variable is set to a value that cannot be used.
    #[error(transparent)]
    Invalid(#[from] InvalidVar),
    /// The watch has no shop to check.
    #[error(
        "neither SHOP_DOMAIN nor SHOPIFY_SHOP_DOMAINS is set: set the stack's ShopDomains to the store's name.myshopify.com, so the watch knows which shop to check"
    )]
    NoShop,
    /// Two variables that go together are not both set.
    #[error(
        "{set} is set but {unset} is not: set both to send to Pinterest, or neither for a dry run"
    )]
    Incomplete {
        /// The one that is set.
        set: &'static str,
        /// The one that is not.
        unset: &'static str,
    },
    /// One of `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET` is set without the other.
    #[error(
        "{set} is set but {unset} is not: set both to the Dev Dashboard app's client id and secret (the app, Settings, Credentials), or set SHOPIFY_ADMIN_TOKEN instead"
    )]
    IncompleteClientCredentials {
        /// The one that is set.
        set: &'static str,
        /// The one that is not.
        unset: &'static str,
    },
}

/// A variable is set to a value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{key}={value:?} is invalid: {expected}")]
pub struct InvalidVar {
    /// The variable.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

/// A variable that must be set is not.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not set")]
pub struct MissingVar(pub &'static str);

/// Reads a variable; empty counts as unset.
pub fn var(key: &'static str) -> Option<String> {
    std::env::var(key)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Reads a variable that must be set.
///
/// # Errors
/// [`MissingVar`].
pub fn required(key: &'static str) -> Result<String, MissingVar> {
    var(key).ok_or(MissingVar(key))
}

/// Reads a boolean (`true`/`false`/`1`/`0`/`yes`/`no`), default false.
///
/// # Errors
/// [`InvalidVar`].
pub fn flag(key: &'static str) -> Result<bool, InvalidVar> {
    flag_in(&|k| var(k), key)
}

/// [`flag`] over any source of settings.
fn flag_in(
    get: &dyn Fn(&'static str) -> Option<String>,
    key: &'static str,
) -> Result<bool, InvalidVar> {
    match get(key).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(InvalidVar {
                key,
                value: v,
                expected: "true or false",
            }),
        },
    }
}

/// The one parser of durations in settings and flags. A bare whole number counts in `bare_unit`,
/// the unit the setting's name gives (`ORDER_DELAY_SECONDS=60`, `WATCH_LOOKBACK_HOURS=6`); any
/// other value is read by [`humantime::parse_duration`]: numbers with units, such as `90s`, `15m`,
/// `36h`, `7d` or `1h 30m`. With `bare_unit` `None` a unit is required (`replay --max-age`).
pub fn parse_duration(value: &str, bare_unit: Option<Duration>) -> Option<Duration> {
    let value = value.trim();
    if let Some(unit) = bare_unit
        && !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
    {
        return value.parse::<u32>().ok().and_then(|n| unit.checked_mul(n));
    }
    humantime::parse_duration(value).ok()
}

/// Reads a duration in whole seconds ([`parse_duration`], a bare number counting seconds), with a
/// default in seconds.
///
/// # Errors
/// [`InvalidVar`].
pub fn seconds(key: &'static str, default: u64) -> Result<Duration, InvalidVar> {
    match var(key) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => parse_duration(&v, Some(Duration::from_secs(1)))
            .filter(|d| d.subsec_nanos() == 0)
            .ok_or(InvalidVar {
                key,
                value: v,
                expected: "a whole number of seconds, or a duration in whole seconds such as 90s or 15m",
            }),
    }
}

/// Reads `SHOPIFY_SHOP_DOMAINS` into a lowercase set; `None` when unset (every shop allowed).
pub fn allowed_shops() -> Option<HashSet<String>> {
    var(keys::SHOPIFY_SHOP_DOMAINS).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Reads `ORDER_CONSENT_POLICY`, default [`ConsentPolicy::OptOut`].
///
/// # Errors
/// [`InvalidVar`].
pub fn order_consent_policy() -> Result<ConsentPolicy, InvalidVar> {
    match var(keys::ORDER_CONSENT_POLICY) {
        None => Ok(ConsentPolicy::default()),
        Some(v) => consent_policy_from(&v),
    }
}

/// Parses an `ORDER_CONSENT_POLICY` value.
///
/// # Errors
/// [`InvalidVar`].
pub fn consent_policy_from(value: &str) -> Result<ConsentPolicy, InvalidVar> {
    ConsentPolicy::parse(value).ok_or_else(|| InvalidVar {
        key: keys::ORDER_CONSENT_POLICY,
        value: value.to_owned(),
        expected: "opt_out or skip",
    })
}

/// Reads the mapping [`Options`].
///
/// # Errors
/// [`InvalidVar`] naming the variable.
pub fn mapping_options() -> Result<Options, InvalidVar> {
    mapping_options_from(&|k| var(k))
}

/// [`mapping_options`] from another source of the same settings: a registered store's own
/// settings over the relay's variables.
///
/// # Errors
/// [`InvalidVar`] naming the setting.
pub fn mapping_options_from(
    get: &dyn Fn(&'static str) -> Option<String>,
) -> Result<Options, InvalidVar> {
    let defaults = Options::default();
    let value_source = value_source_in(get)?;
    let catalog_country = match get(keys::CATALOG_COUNTRY) {
        None => None,
        Some(v) if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(v.to_ascii_uppercase())
        }
        Some(v) => {
            return Err(InvalidVar {
                key: keys::CATALOG_COUNTRY,
                value: v,
                expected: "the catalog feed's ISO 3166-1 alpha-2 country, such as US",
            });
        }
    };
    let content_id = match get(keys::CONTENT_ID) {
        None => ContentIdSource::Variant,
        Some(v) => ContentIdSource::parse(&v, catalog_country.as_deref()).map_err(|expected| {
            InvalidVar {
                key: keys::CONTENT_ID,
                value: v,
                expected,
            }
        })?,
    };
    let event_id_template = get(keys::EVENT_ID_TEMPLATE).unwrap_or(defaults.event_id_template);
    if !event_id_template.contains("{order_id}") && !event_id_template.contains("{order_name}") {
        return Err(InvalidVar {
            key: keys::EVENT_ID_TEMPLATE,
            value: event_id_template,
            expected: "a template containing {order_id} or {order_name}",
        });
    }
    let default_country = match get(keys::DEFAULT_COUNTRY) {
        None => None,
        Some(v) if normalize::is_phone_country(&v) => Some(v.to_ascii_uppercase()),
        Some(v) => {
            return Err(InvalidVar {
                key: keys::DEFAULT_COUNTRY,
                value: v,
                expected: "an ISO 3166-1 alpha-2 country code such as US or GB (the shop's country), or unset",
            });
        }
    };
    let checkout_event_id = match get(keys::CHECKOUT_EVENT_ID).as_deref() {
        None | Some("order_id") => CheckoutEventId::OrderId,
        Some("shopify_event") => CheckoutEventId::ShopifyEvent,
        Some(other) => {
            return Err(InvalidVar {
                key: keys::CHECKOUT_EVENT_ID,
                value: other.into(),
                expected: "order_id (this relay's pixel fires the Tag) or shopify_event (beside Pinterest's own Shopify app)",
            });
        }
    };
    let (checkout_on, paid_statuses) = checkout_rules(get)?;
    Ok(Options {
        event_id_template,
        store_url: get(keys::STORE_URL),
        checkout_event_id,
        checkout_on,
        paid_statuses,
        include_test_orders: flag_in(get, keys::INCLUDE_TEST_ORDERS)?,
        send_pos_orders: flag_in(get, keys::SEND_POS_ORDERS)?,
        order_sources: order_sources_in(get),
        value_source,
        content_id,
        catalog_country,
        default_country,
    })
}

/// Reads what the conversion rules of an order need ([`crate::mapping::order_rule`]) and the
/// value the relay sends: `INCLUDE_TEST_ORDERS`, `SEND_POS_ORDERS`, `ORDER_SOURCES`,
/// `CHECKOUT_ON`, `PAID_STATUSES` and `VALUE_SOURCE`. The watch and reconcile judge the orders the
/// relay never saw with them.
///
/// # Errors
/// [`InvalidVar`] naming the variable.
pub fn order_rules() -> Result<Options, InvalidVar> {
    order_rules_from(&|k| var(k))
}

/// [`order_rules`] from another source of the same settings: `serve`'s recorded settings, or a
/// stack's parameters mapped to the variables they set.
///
/// # Errors
/// [`InvalidVar`] naming the variable.
pub fn order_rules_from(
    get: &dyn Fn(&'static str) -> Option<String>,
) -> Result<Options, InvalidVar> {
    let (checkout_on, paid_statuses) = checkout_rules(get)?;
    Ok(Options {
        include_test_orders: flag_in(get, keys::INCLUDE_TEST_ORDERS)?,
        send_pos_orders: flag_in(get, keys::SEND_POS_ORDERS)?,
        order_sources: order_sources_in(get),
        value_source: value_source_in(get)?,
        checkout_on,
        paid_statuses,
        ..Options::default()
    })
}

/// The settings [`order_rules`] reads, as `(variable, value)`, for `serve` to record them.
pub fn order_rule_settings(rules: &Options) -> Vec<(&'static str, String)> {
    vec![
        (
            keys::INCLUDE_TEST_ORDERS,
            rules.include_test_orders.to_string(),
        ),
        (keys::SEND_POS_ORDERS, rules.send_pos_orders.to_string()),
        (keys::ORDER_SOURCES, rules.order_sources.join(",")),
        (keys::VALUE_SOURCE, rules.value_source.as_str().to_owned()),
        (keys::CHECKOUT_ON, rules.checkout_on.as_str().to_owned()),
        (keys::PAID_STATUSES, rules.paid_statuses.join(",")),
    ]
}

/// Reads `CHECKOUT_ON` and `PAID_STATUSES`.
fn checkout_rules(
    get: &dyn Fn(&'static str) -> Option<String>,
) -> Result<(CheckoutOn, Vec<String>), InvalidVar> {
    let checkout_on = match get(keys::CHECKOUT_ON).as_deref() {
        None | Some("created") => CheckoutOn::Created,
        Some("paid") => CheckoutOn::Paid,
        Some(other) => {
            return Err(InvalidVar {
                key: keys::CHECKOUT_ON,
                value: other.into(),
                expected: "created (when the order is placed) or paid (once payment is secured)",
            });
        }
    };
    const KNOWN_STATUSES: &[&str] = &[
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
    ];
    let paid_statuses = match get(keys::PAID_STATUSES) {
        None => Options::default().paid_statuses,
        Some(v) => {
            let statuses: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if statuses.is_empty()
                || statuses
                    .iter()
                    .any(|s| !KNOWN_STATUSES.contains(&s.as_str()))
            {
                return Err(InvalidVar {
                    key: keys::PAID_STATUSES,
                    value: v,
                    expected: "a comma-separated list of pending, authorized, partially_paid, paid, partially_refunded, refunded (voided is never a purchase)",
                });
            }
            statuses
        }
    };
    Ok((checkout_on, paid_statuses))
}

/// Reads `ORDER_SOURCES` into lowercase source names; default the online store (`web`).
pub fn order_sources() -> Vec<String> {
    order_sources_in(&|k| var(k))
}

/// [`order_sources`] over any source of settings.
fn order_sources_in(get: &dyn Fn(&'static str) -> Option<String>) -> Vec<String> {
    match get(keys::ORDER_SOURCES) {
        None => vec![crate::mapping::ONLINE_STORE.to_owned()],
        Some(v) => v
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

/// Reads `ORDER_DELAY_SECONDS`, default [`DEFAULT_ORDER_DELAY_SECONDS`], at most SQS's 900.
///
/// # Errors
/// [`InvalidVar`].
pub fn order_delay() -> Result<Duration, InvalidVar> {
    let delay = seconds(keys::ORDER_DELAY_SECONDS, DEFAULT_ORDER_DELAY_SECONDS)?;
    if delay > MAX_DELAY {
        return Err(InvalidVar {
            key: keys::ORDER_DELAY_SECONDS,
            value: delay.as_secs().to_string(),
            expected: "at most 900 seconds (SQS delays messages by at most 15 minutes)",
        });
    }
    Ok(delay)
}

/// Reads `MAX_RECEIVE_COUNT`, default 5 (the template's `maxReceiveCount`).
///
/// # Errors
/// [`InvalidVar`].
pub fn max_receive_count() -> Result<u32, InvalidVar> {
    match var(keys::MAX_RECEIVE_COUNT) {
        None => Ok(DispatchConfig::default().max_receive_count),
        Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or(InvalidVar {
            key: keys::MAX_RECEIVE_COUNT,
            value: v,
            expected: "the queue's maxReceiveCount, a whole number of at least 1",
        }),
    }
}

/// Reads what both halves of ingest need except the secrets, which the caller loads (from
/// `SHOPIFY_WEBHOOK_SECRETS` or Secrets Manager).
///
/// # Errors
/// [`InvalidVar`].
pub fn ingest_config(secrets: WebhookSecrets) -> Result<IngestConfig, InvalidVar> {
    Ok(IngestConfig::single(
        &secrets,
        allowed_shops(),
        MAX_ENQUEUE_BYTES,
        order_delay()?,
    ))
}

/// Reads the dispatcher's settings: mapping options, `MAX_RECEIVE_COUNT`, `ORDER_CONSENT_POLICY`.
///
/// # Errors
/// [`InvalidVar`].
pub fn dispatch_config() -> Result<DispatchConfig, InvalidVar> {
    Ok(DispatchConfig {
        options: mapping_options()?,
        max_receive_count: max_receive_count()?,
        order_consent_policy: order_consent_policy()?,
        resend_in_doubt: flag(keys::RESEND_IN_DOUBT)?,
        ..DispatchConfig::default()
    })
}

/// Where and how to reach Pinterest, except the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinterestSettings {
    /// `PINTEREST_API_URL`, default [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// `PINTEREST_AD_ACCOUNT_ID`.
    pub ad_account_id: String,
    /// `PINTEREST_TEST_MODE`.
    pub test_mode: bool,
}

/// Reads `PINTEREST_API_URL` and `PINTEREST_TEST_MODE` for this ad account.
fn pinterest_settings(ad_account_id: String) -> Result<PinterestSettings, InvalidVar> {
    Ok(PinterestSettings {
        base_url: var(keys::PINTEREST_API_URL).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
        ad_account_id,
        test_mode: flag(keys::PINTEREST_TEST_MODE)?,
    })
}

/// Where a stack's registered stores are: entries in its table, secrets under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `IDEMPOTENCY_TABLE`.
    pub table: String,
    /// `SHOP_SECRETS_PREFIX`.
    pub secrets_prefix: String,
}

/// Reads `SHOP_SECRETS_PREFIX` and `IDEMPOTENCY_TABLE`: `None` without a prefix (a stack before
/// the registry: the default store alone).
///
/// # Errors
/// [`ConfigError::Missing`] when the prefix is set without the table.
pub fn registry_settings() -> Result<Option<RegistrySettings>, ConfigError> {
    let Some(secrets_prefix) = var(keys::SHOP_SECRETS_PREFIX) else {
        return Ok(None);
    };
    Ok(Some(RegistrySettings {
        table: required(keys::IDEMPOTENCY_TABLE)?,
        secrets_prefix,
    }))
}

/// The ingest Lambda's settings (the webhook secrets are loaded at start-up, see
/// [`crate::secrets`]).
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// `QUEUE_URL`.
    pub queue_url: String,
    /// `SHOP_SECRETS_PREFIX` and `IDEMPOTENCY_TABLE`: the registered stores.
    pub registry: Option<RegistrySettings>,
    /// `SHOPIFY_SHOP_DOMAINS`.
    pub allowed_shops: Option<HashSet<String>>,
    /// `ORDER_DELAY_SECONDS`.
    pub order_delay: Duration,
}

/// Reads the ingest Lambda's settings.
///
/// # Errors
/// [`ConfigError`] naming the variable.
pub fn ingest_settings() -> Result<IngestSettings, ConfigError> {
    Ok(IngestSettings {
        queue_url: required(keys::QUEUE_URL)?,
        registry: registry_settings()?,
        allowed_shops: allowed_shops(),
        order_delay: order_delay()?,
    })
}

impl IngestSettings {
    /// The endpoint's settings with these secrets.
    pub fn config(&self, secrets: &WebhookSecrets) -> IngestConfig {
        IngestConfig::single(
            secrets,
            self.allowed_shops.clone(),
            MAX_ENQUEUE_BYTES,
            self.order_delay,
        )
    }

    /// The endpoint's settings over a directory of stores (the registered ones and the default).
    pub fn config_with(
        &self,
        shops: std::sync::Arc<dyn crate::registry::Directory>,
    ) -> IngestConfig {
        IngestConfig {
            shops,
            max_message_bytes: MAX_ENQUEUE_BYTES,
            order_delay: self.order_delay,
        }
    }
}

/// The dispatch Lambda's settings (the Pinterest token is loaded at start-up, see
/// [`crate::secrets`]).
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// `IDEMPOTENCY_TABLE`: idempotency records and shopper profiles.
    pub table: String,
    /// `QUEUE_URL`: the source queue, for visibility changes.
    pub queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL`.
    pub dead_letter_queue_url: String,
    /// `SHOP_SECRETS_PREFIX`: the registered stores (entries in `table`).
    pub registry: Option<RegistrySettings>,
    /// Pinterest's URL, ad account and test mode.
    pub pinterest: PinterestSettings,
    /// The dispatcher's settings.
    pub dispatch: DispatchConfig,
}

/// Reads the dispatch Lambda's settings.
///
/// # Errors
/// [`ConfigError`] naming the variable.
pub fn dispatch_settings() -> Result<DispatchSettings, ConfigError> {
    Ok(DispatchSettings {
        table: required(keys::IDEMPOTENCY_TABLE)?,
        queue_url: required(keys::QUEUE_URL)?,
        dead_letter_queue_url: required(keys::DEAD_LETTER_QUEUE_URL)?,
        registry: registry_settings()?,
        pinterest: pinterest_settings(required(keys::PINTEREST_AD_ACCOUNT_ID)?)?,
        dispatch: dispatch_config()?,
    })
}

/// `pinrelay serve`'s settings: ingest and dispatch in one process, secrets from the environment.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The endpoint's settings (`SHOPIFY_WEBHOOK_SECRETS` included).
    pub ingest: IngestConfig,
    /// `SHOPIFY_WEBHOOK_SECRETS`: the default store's secrets (empty: registered stores only).
    pub webhook_secrets: WebhookSecrets,
    /// The dispatcher's settings.
    pub dispatch: DispatchConfig,
    /// Pinterest and the token when both `PINTEREST_ACCESS_TOKEN` and `PINTEREST_AD_ACCOUNT_ID`
    /// are set; `None` (a dry run) when neither is.
    pub pinterest: Option<(PinterestSettings, SecretString)>,
}

/// Reads `VALUE_SOURCE`, default [`ValueSource::Subtotal`].
///
/// # Errors
/// [`InvalidVar`].
pub fn value_source() -> Result<ValueSource, InvalidVar> {
    value_source_in(&|k| var(k))
}

/// [`value_source`] over any source of settings.
fn value_source_in(
    get: &dyn Fn(&'static str) -> Option<String>,
) -> Result<ValueSource, InvalidVar> {
    match get(keys::VALUE_SOURCE).as_deref() {
        None | Some("subtotal") => Ok(ValueSource::Subtotal),
        Some("total") => Ok(ValueSource::Total),
        Some(other) => Err(InvalidVar {
            key: keys::VALUE_SOURCE,
            value: other.into(),
            expected: "subtotal or total",
        }),
    }
}

/// The watch Lambda's settings (the Admin API token is loaded at start-up, see
/// [`crate::secrets`]).
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// `IDEMPOTENCY_TABLE`: the outcome ledger.
    pub table: String,
    /// `SHOPIFY_API_VERSION`.
    pub api_version: String,
    /// `SHOPIFY_ADMIN_API_URL`: `None` is `https://{shop}`.
    pub admin_api_url: Option<String>,
    /// `SHOP_SECRETS_PREFIX` and `IDEMPOTENCY_TABLE`: the registered stores, watched too.
    pub registry: Option<RegistrySettings>,
    /// What to watch: `SHOP_DOMAIN` (else the first of `SHOPIFY_SHOP_DOMAINS`), `WEBHOOK_URL`,
    /// `WATCH_TOPICS`, `WATCH_LOOKBACK_HOURS`, `VALUE_SOURCE`.
    pub watch: WatchConfig,
}

/// Reads the watch Lambda's settings.
///
/// # Errors
/// [`ConfigError`] naming the variable.
pub fn watch_settings() -> Result<WatchSettings, ConfigError> {
    let shop = watched_shop().ok_or(ConfigError::NoShop)?;
    let mut watch = WatchConfig::new(shop, required(keys::WEBHOOK_URL)?);
    if var(keys::CHECKOUT_ON).as_deref() == Some("paid") {
        watch.topics = crate::mapping::webhook_topics(CheckoutOn::Paid)
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
    }
    if let Some(topics) = var(keys::WATCH_TOPICS) {
        watch.topics = topics
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
    }
    if let Some(hours) = var(keys::WATCH_LOOKBACK_HOURS) {
        const HOUR: Duration = Duration::from_secs(3600);
        watch.lookback = parse_duration(&hours, Some(HOUR))
            .filter(|d| (HOUR..=HOUR * 168).contains(d))
            .ok_or(InvalidVar {
                key: keys::WATCH_LOOKBACK_HOURS,
                value: hours,
                expected: "a whole number of hours from 1 to 168, or a duration from 1h to 7d such as 36h",
            })?;
    }
    watch.rules = order_rules()?;
    Ok(WatchSettings {
        table: required(keys::IDEMPOTENCY_TABLE)?,
        api_version: admin_api_version()?,
        admin_api_url: var(keys::SHOPIFY_ADMIN_API_URL),
        registry: registry_settings()?,
        watch,
    })
}

/// Reads `pinrelay serve`'s settings.
///
/// # Errors
/// [`ConfigError`] naming the variable; [`ConfigError::Incomplete`] when only one of the Pinterest
/// token and ad account is set.
pub fn serve_settings() -> Result<ServeSettings, ConfigError> {
    // Optional: a relay of registered stores only has no default store.
    let secrets = var(keys::SHOPIFY_WEBHOOK_SECRETS)
        .map(|s| WebhookSecrets::from_comma_separated(&s))
        .unwrap_or_else(|| WebhookSecrets::new([]));
    let pinterest = match (
        var(keys::PINTEREST_ACCESS_TOKEN),
        var(keys::PINTEREST_AD_ACCOUNT_ID),
    ) {
        (Some(token), Some(account)) => Some((pinterest_settings(account)?, token.into())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::Incomplete {
                set: keys::PINTEREST_ACCESS_TOKEN,
                unset: keys::PINTEREST_AD_ACCOUNT_ID,
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Incomplete {
                set: keys::PINTEREST_AD_ACCOUNT_ID,
                unset: keys::PINTEREST_ACCESS_TOKEN,
            });
        }
    };
    Ok(ServeSettings {
        ingest: ingest_config(secrets.clone())?,
        webhook_secrets: secrets,
        dispatch: dispatch_config()?,
        pinterest,
    })
}

/// `SHOP_DOMAIN`, else the first of `SHOPIFY_SHOP_DOMAINS`: the shop the watch and `serve`'s
/// reconcile page look at, and the default store of the audience job.
pub fn watched_shop() -> Option<String> {
    var(keys::SHOP_DOMAIN).or_else(|| {
        var(keys::SHOPIFY_SHOP_DOMAINS)?
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .find(|s| !s.is_empty())
    })
}

/// `SHOPIFY_API_VERSION`, default [`admin::DEFAULT_API_VERSION`].
fn admin_api_version() -> Result<String, InvalidVar> {
    let api_version =
        var(keys::SHOPIFY_API_VERSION).unwrap_or_else(|| admin::DEFAULT_API_VERSION.to_owned());
    if !admin::is_api_version(&api_version) {
        return Err(InvalidVar {
            key: keys::SHOPIFY_API_VERSION,
            value: api_version,
            expected: "an Admin API version such as 2026-07",
        });
    }
    Ok(api_version)
}

/// The Admin API credentials in the environment: `SHOPIFY_ADMIN_TOKEN`, else
/// `SHOPIFY_CLIENT_ID` with `SHOPIFY_CLIENT_SECRET`; `None` when none is set.
///
/// # Errors
/// [`ConfigError::IncompleteClientCredentials`] when only one of the client id and secret is set.
pub fn admin_credentials() -> Result<Option<AdminCredentials>, ConfigError> {
    if let Some(token) = var(keys::SHOPIFY_ADMIN_TOKEN) {
        return Ok(Some(AdminCredentials::Token(SecretString::from(token))));
    }
    match (
        var(keys::SHOPIFY_CLIENT_ID),
        var(keys::SHOPIFY_CLIENT_SECRET),
    ) {
        (None, None) => Ok(None),
        (Some(client_id), Some(secret)) => Ok(Some(AdminCredentials::ClientCredentials {
            client_id: client_id.trim().to_owned(),
            client_secret: SecretString::from(secret.trim().to_owned()),
        })),
        (Some(_), None) => Err(ConfigError::IncompleteClientCredentials {
            set: keys::SHOPIFY_CLIENT_ID,
            unset: keys::SHOPIFY_CLIENT_SECRET,
        }),
        (None, Some(_)) => Err(ConfigError::IncompleteClientCredentials {
            set: keys::SHOPIFY_CLIENT_SECRET,
            unset: keys::SHOPIFY_CLIENT_ID,
        }),
    }
}

/// `pinrelay serve`'s reconcile page (`GET /reconcile`): the shop's Admin API.
#[derive(Debug, Clone)]
pub struct ServeReportSettings {
    /// The shop (`SHOP_DOMAIN`, else the first of `SHOPIFY_SHOP_DOMAINS`).
    pub shop: String,
    /// `SHOPIFY_ADMIN_TOKEN`, or `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`.
    pub credentials: AdminCredentials,
    /// `SHOPIFY_API_VERSION`.
    pub api_version: String,
    /// `SHOPIFY_ADMIN_API_URL` (tests).
    pub admin_api_url: Option<String>,
    /// The relay's conversion rules and `VALUE_SOURCE` (serve's own settings).
    pub rules: Options,
    /// `PINRELAY_REPORT_TOKEN`: the bearer token the page asks for; `None`: serve makes one.
    pub token_for_report: Option<SecretString>,
    /// `PINRELAY_ALLOWED_HOSTS`: the `Host`s the page answers to (default `localhost,127.0.0.1`).
    pub allowed_hosts: Vec<String>,
}

/// The reconcile page's settings: `None` unless Admin API credentials are set
/// ([`admin_credentials`]).
///
/// # Errors
/// [`ConfigError::NoShop`] when credentials are set but no shop is named;
/// [`ConfigError::IncompleteClientCredentials`]; [`InvalidVar`].
pub fn serve_report_settings() -> Result<Option<ServeReportSettings>, ConfigError> {
    let Some(credentials) = admin_credentials()? else {
        return Ok(None);
    };
    Ok(Some(ServeReportSettings {
        shop: watched_shop().ok_or(ConfigError::NoShop)?,
        credentials,
        api_version: admin_api_version()?,
        admin_api_url: var(keys::SHOPIFY_ADMIN_API_URL),
        rules: order_rules()?,
        token_for_report: var(keys::PINRELAY_REPORT_TOKEN)
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from),
        allowed_hosts: var(keys::PINRELAY_ALLOWED_HOSTS)
            .unwrap_or_else(|| "localhost,127.0.0.1".to_owned())
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_bare_number_counts_in_the_settings_unit() {
        assert_eq!(parse_duration("60", Some(SECOND)), Some(SECOND * 60));
        assert_eq!(parse_duration(" 6 ", Some(HOUR)), Some(HOUR * 6));
        assert_eq!(parse_duration("0", Some(SECOND)), Some(Duration::ZERO));
        assert_eq!(parse_duration("7", None), None, "a flag without a unit");
    }

    #[test]
    fn other_values_are_humantime_durations() {
        for unit in [None, Some(SECOND), Some(HOUR)] {
            assert_eq!(parse_duration("90s", unit), Some(SECOND * 90));
            assert_eq!(parse_duration("15m", unit), Some(SECOND * 900));
            assert_eq!(parse_duration("36h", unit), Some(HOUR * 36));
            assert_eq!(parse_duration("7d", unit), Some(HOUR * 168));
            assert_eq!(parse_duration("1h 30m", unit), Some(SECOND * 5400));
            assert_eq!(parse_duration("", unit), None);
            assert_eq!(parse_duration("-5", unit), None);
            assert_eq!(parse_duration("soon", unit), None);
            assert_eq!(parse_duration("7w7", unit), None);
        }
    }
}

#[cfg(test)]
mod rules_tests {
    use super::*;

    #[test]
    fn recorded_rules_read_back_as_they_were() {
        let rules = Options {
            include_test_orders: true,
            order_sources: vec!["web".into(), "shopify_draft_order".into()],
            value_source: ValueSource::Total,
            checkout_on: CheckoutOn::Paid,
            paid_statuses: vec!["paid".into()],
            ..Options::default()
        };
        let recorded: std::collections::HashMap<&str, String> =
            order_rule_settings(&rules).into_iter().collect();
        let back = order_rules_from(&|k| recorded.get(k).cloned()).unwrap();
        assert_eq!(back.include_test_orders, rules.include_test_orders);
        assert_eq!(back.order_sources, rules.order_sources);
        assert_eq!(back.value_source, rules.value_source);
        assert_eq!(back.checkout_on, rules.checkout_on);
        assert_eq!(back.paid_statuses, rules.paid_statuses);
        assert!(order_rules_from(&|k| (k == keys::CHECKOUT_ON).then(|| "later".into())).is_err());
    }
}
