//! `pinrelay doctor`: a setup checked end to end, one [`Finding`] per check, each `ok`, `fail` (with
//! the one action that fixes it) or `skip` (the check cannot run here: no token for it, nothing to
//! compare with). The checks call the real services through the relay's own clients; deciding
//! what a finding says is pure and lives in the small constructors below.

use serde::Serialize;

use crate::mapping::{CheckoutOn, ContentIdSource, ItemIds};
use crate::pinterest::normalize::sha256_hex;
use crate::pinterest::quality::Component;
use crate::pinterest::{
    ActionSource, CatalogError, ConversionsApi, ConversionsApiError, Event, EventStatus,
    IngestionSource, Lookback, PinterestHttp, UserData,
};
use crate::shopify::admin::access_scopes::CATALOG_PROBE_SCOPE;
use crate::shopify::admin::{
    AdminApi, AdminError, RecentOrder, RequiredScope, missing_scopes, required_scopes,
};
use crate::watch::missing_topics;

/// What a check looks at; its id is the `check` of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Every secret the relay needs is set, and none is a placeholder.
    Secrets,
    /// The Shopify Admin API token is accepted.
    ShopifyAdminToken,
    /// The app's granted access scopes cover what the relay reads for its rules.
    ShopifyScopes,
    /// The topics the conversion rules need have subscriptions delivering to the relay.
    WebhookSubscriptions,
    /// Pinterest accepts one `test=true` event with the conversion token for the ad account.
    PinterestConversionToken,
    /// Pinterest's Event Quality can be read with the API token.
    EventQuality,
    /// The ad account's catalog holds recent line items under the relay's `CONTENT_ID` scheme.
    CatalogIds,
    /// No webhook was refused for a bad signature lately, and the latest order reached the relay.
    WebhookSecret,
    /// The storefront endpoint answers a pixel's POST (`Origin: null`) for the shop.
    StorefrontEndpoint,
    /// The pasted pixel's settings are the relay's.
    PixelSettings,
    /// Someone receives the stack's alarms.
    AlarmSubscription,
    /// The store's sign-in to Pinterest has days left before its refresh token expires.
    PinterestSignIn,
    /// The customer lists `pinrelay audiences sync` keeps, and their status on Pinterest.
    CustomerLists,
}

impl CheckId {
    /// The id as printed and in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Secrets => "secrets",
            Self::ShopifyAdminToken => "shopify_admin_token",
            Self::ShopifyScopes => "shopify_scopes",
            Self::WebhookSubscriptions => "webhook_subscriptions",
            Self::PinterestConversionToken => "pinterest_conversion_token",
            Self::EventQuality => "event_quality",
            Self::CatalogIds => "catalog_ids",
            Self::WebhookSecret => "webhook_secret",
            Self::StorefrontEndpoint => "storefront_endpoint",
            Self::PixelSettings => "pixel_settings",
            Self::AlarmSubscription => "alarm_subscription",
            Self::PinterestSignIn => "pinterest_sign_in",
            Self::CustomerLists => "customer_lists",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The check passed.
    Ok,
    /// The check failed; its [`Finding::fix`] says what to do.
    Fail,
    /// The check cannot run here; not a failure.
    Skip,
}

impl Status {
    /// `ok`, `fail` or `skip`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// One check's result: `{"check", "status", "detail", "fix"}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: CheckId,
    /// Its outcome.
    pub status: Status,
    /// What it found, in a sentence.
    pub detail: String,
    /// For a failure, the one action that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn ok(check: CheckId, detail: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check that cannot run here.
    pub fn skip(check: CheckId, detail: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failed check and its fix.
    pub fn fail(check: CheckId, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// True when no check failed (skips are not failures).
#[must_use]
pub fn passed(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.status != Status::Fail)
}

/// `pinterest_sign_in`: days left before the store's refresh token expires (pure). Skipped when
/// the store has not signed in; failed under [`SIGN_IN_WARN_DAYS`] days, with the command that
/// signs in again (`relay` is `--data-dir DIR` or `--stack NAME`).
///
/// [`SIGN_IN_WARN_DAYS`]: crate::pinterest::oauth::SIGN_IN_WARN_DAYS
#[must_use]
pub fn pinterest_sign_in(
    grant: Option<&crate::pinterest::oauth::Grant>,
    shop: &str,
    relay: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Finding {
    use crate::pinterest::oauth::{SIGN_IN_WARN_DAYS, refresh_token_days_left};
    let id = CheckId::PinterestSignIn;
    let login = format!("pinrelay pinterest login --shop {shop} {relay}");
    let Some(grant) = grant else {
        return Finding::skip(
            id,
            format!(
                "not signed in to Pinterest (optional: `{}` gives audiences and the API token)",
                login.trim_end()
            ),
        );
    };
    let days = refresh_token_days_left(grant, now);
    let until = grant.refresh_token_expires_at.format("%Y-%m-%d");
    if days < SIGN_IN_WARN_DAYS {
        let detail = if grant.refresh_token_expires_at <= now {
            format!("the Pinterest sign-in expired on {until}; the relay can no longer renew it")
        } else {
            format!(
                "the Pinterest sign-in expires in {days} days ({until}) and was not renewed: is the refresher running (serve, or the stack's watch)?"
            )
        };
        return Finding::fail(id, detail, login.trim_end().to_owned());
    }
    Finding::ok(
        id,
        format!(
            "signed in (ad account {}); the refresh token has {days} days left ({until}), renewed by the refresher",
            grant.ad_account_id
        ),
    )
}

/// `customer_lists`: each list the relay keeps for `shop` (kind, what it recorded, Pinterest's
/// status when it could be read), or why Pinterest or the record could not be read. `skip` when
/// the shop has no list; `relay` is how commands name this relay (`--stack NAME`, `--data-dir DIR`).
#[must_use]
pub fn customer_lists(
    lists: &[(
        crate::audiences::ListKind,
        crate::audiences::ListState,
        Option<String>,
    )],
    read: Result<(), String>,
    shop: &str,
    relay: &str,
) -> Finding {
    let id = CheckId::CustomerLists;
    let sync = format!("pinrelay audiences sync --shop {shop} {relay}");
    if let Err(e) = read {
        return Finding::fail(
            id,
            format!("the customer lists could not be read: {e}"),
            "check PINTEREST_API_TOKEN (ads:read) or sign in again with `pinrelay pinterest login`, then run doctor again".to_owned(),
        );
    }
    if lists.is_empty() {
        return Finding::skip(
            id,
            format!("no customer list yet (optional: `{}`)", sync.trim_end()),
        );
    }
    let day = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d").to_string())
    };
    let described: Vec<String> = lists
        .iter()
        .map(|(kind, state, status)| {
            let status = match status.as_deref() {
                Some("TOO_SMALL") => {
                    "TOO_SMALL (fewer than 100 matched Pinterest users: not targetable yet)"
                        .to_owned()
                }
                Some(s) => s.to_owned(),
                None => "status not read (no API token or sign-in)".to_owned(),
            };
            format!(
                "{kind} list {} {status}, audience {}, last sync {}, last full comparison {}",
                state.list_id.as_deref().unwrap_or("-"),
                state.audience_id.as_deref().unwrap_or("not created"),
                day(state.last_sync.or(state.watermark)),
                day(state.last_full),
            )
        })
        .collect();
    Finding::ok(id, described.join("; "))
}

/// The findings as aligned lines: status, id, detail, and `fix:` under each failure.
#[must_use]
pub fn render(findings: &[Finding]) -> String {
    let width = findings
        .iter()
        .map(|f| f.check.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            f.status.as_str(),
            f.check.as_str(),
            f.detail
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("{:<4}  {:<width$}  fix: {fix}\n", "", ""));
        }
    }
    out
}

/// True for a value left as a placeholder: `...`, `<token>`, `changeme`, `your-…`, `TODO`, `xxx`,
/// `shpat_...`.
#[must_use]
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.is_empty()
        || v.contains("...")
        || v.contains('…')
        || (v.starts_with('<') && v.ends_with('>'))
        || v.starts_with("your-")
        || v.starts_with("your_")
        || [
            "changeme",
            "change-me",
            "todo",
            "placeholder",
            "secret",
            "token",
        ]
        .contains(&v.as_str())
        || v.chars().all(|c| c == 'x')
}

/// One secret the relay needs: where it lives, its value if set, and how to fill it.
#[derive(Clone)]
pub struct Secret {
    /// The variable (or the stack's secret) that holds it.
    pub name: String,
    /// Its value, when set.
    pub value: Option<String>,
    /// The action that fills it.
    pub fix: String,
}

/// `secrets`: fails naming every secret unset or left a placeholder (never its value).
#[must_use]
pub fn secrets(secrets: &[Secret]) -> Finding {
    let unfilled: Vec<&Secret> = secrets
        .iter()
        .filter(|s| s.value.as_deref().is_none_or(is_placeholder))
        .collect();
    if unfilled.is_empty() {
        let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
        return Finding::ok(CheckId::Secrets, format!("set: {}", names.join(", ")));
    }
    let names: Vec<&str> = unfilled.iter().map(|s| s.name.as_str()).collect();
    let fixes: Vec<&str> = unfilled.iter().map(|s| s.fix.as_str()).collect();
    Finding::fail(
        CheckId::Secrets,
        format!("unset or a placeholder: {}", names.join(", ")),
        fixes.join("; "),
    )
}

/// `shopify_admin_token`: the token (kept, or minted from the client credentials kept, in `home`)
/// reads the shop; the error says why it does not.
pub async fn shopify_admin_token(admin: Option<&AdminApi>, home: &str) -> Finding {
    let id = CheckId::ShopifyAdminToken;
    let Some(admin) = admin else {
        return Finding::skip(
            id,
            format!("{home} is not filled: the watch and reconcile cannot read orders"),
        );
    };
    match admin.shop().await {
        Ok(shop) => Finding::ok(
            id,
            format!(
                "reads {} ({}, {})",
                shop.myshopify_domain, shop.iana_timezone, shop.currency_code
            ),
        ),
        Err(e @ (AdminError::InvalidToken | AdminError::MissingScope)) => Finding::fail(
            id,
            e.to_string(),
            format!(
                "put a current Admin API access token of the app, with read_orders and read_customers, in {home}"
            ),
        ),
        Err(
            e @ (AdminError::InvalidClient { .. }
            | AdminError::ShopNotPermitted
            | AdminError::GrantRefused { .. }),
        ) => Finding::fail(
            id,
            e.to_string(),
            format!(
                "put the Dev Dashboard app's current client id and secret (the app, Settings, Credentials) in {home}, or an Admin API access token"
            ),
        ),
        Err(e) => Finding::fail(
            id,
            e.to_string(),
            "check the shop domain and that Shopify is reachable from here, then run doctor again",
        ),
    }
}

/// `shopify_scopes`: the app's granted scopes (`granted`, read with [`AdminApi::access_scopes`];
/// `None` when the Admin token did not pass) cover [`required_scopes`] under `checkout_on`. A
/// failure names each missing scope and what needs it.
#[must_use]
pub fn shopify_scopes(
    granted: Option<&Result<Vec<String>, AdminError>>,
    checkout_on: CheckoutOn,
) -> Finding {
    let id = CheckId::ShopifyScopes;
    let granted = match granted {
        None => return Finding::skip(id, "needs a working Shopify Admin API token"),
        Some(Err(e)) => {
            return Finding::skip(id, format!("the app's access scopes cannot be read: {e}"));
        }
        Some(Ok(granted)) => granted,
    };
    let missing = missing_scopes(granted, &required_scopes(checkout_on));
    if missing.is_empty() {
        let needed: Vec<&str> = required_scopes(checkout_on)
            .iter()
            .map(|s| s.handle)
            .collect();
        let probe = if has_catalog_probe_scope(granted) {
            String::new()
        } else {
            format!(
                "; {CATALOG_PROBE_SCOPE}, which catalog_ids reads the line items with, is not granted"
            )
        };
        return Finding::ok(
            id,
            format!(
                "granted: {} ({} needed){probe}",
                granted.join(", "),
                needed.join(", ")
            ),
        );
    }
    let detail: Vec<String> = missing
        .iter()
        .map(|s| format!("{} ({})", s.handle, s.needed_for.join("; ")))
        .collect();
    let handles: Vec<&str> = missing.iter().map(|s| s.handle).collect();
    Finding::fail(
        id,
        format!("the app lacks {}", detail.join(", ")),
        format!(
            "add {} to the app's scopes (Dev Dashboard: the app, Versions, Create a version, Access: Scopes) and release that version, then approve the new scopes in the shop's admin (Apps, the app) or reinstall the app",
            handles.join(", ")
        ),
    )
}

/// Whether `granted` lets the catalog probe read line items' products and variants.
fn has_catalog_probe_scope(granted: &[String]) -> bool {
    let probe = RequiredScope {
        handle: CATALOG_PROBE_SCOPE,
        needed_for: Vec::new(),
    };
    missing_scopes(granted, std::slice::from_ref(&probe)).is_empty()
}

/// `webhook_subscriptions`: every topic the rules need has a subscription delivering to
/// `webhook_url`. Skipped when the Admin API cannot be read or the relay's URL is unknown.
pub async fn webhook_subscriptions(
    admin: Option<&AdminApi>,
    checkout_on: CheckoutOn,
    shop: &str,
    webhook_url: Option<&str>,
) -> Finding {
    let id = CheckId::WebhookSubscriptions;
    let Some(admin) = admin else {
        return Finding::skip(id, "needs a working Shopify Admin API token");
    };
    let Some(url) = webhook_url else {
        return Finding::skip(
            id,
            "WEBHOOK_URL is unset: set it to the relay's public URL ending in /webhooks/shopify",
        );
    };
    let topics: Vec<String> = crate::mapping::webhook_topics(checkout_on)
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    match admin.webhook_subscriptions().await {
        Ok(subscriptions) => {
            let missing = missing_topics(&subscriptions, &topics, url);
            if missing.is_empty() {
                Finding::ok(id, format!("{} deliver to {url}", topics.join(", ")))
            } else {
                Finding::fail(
                    id,
                    format!(
                        "no subscription delivering to {url} for {}",
                        missing.join(", ")
                    ),
                    format!("pinrelay subscribe --shop {shop} --address {url}"),
                )
            }
        }
        Err(e) => Finding::fail(
            id,
            e.to_string(),
            "give the app's Admin token read access to webhooks, then run doctor again",
        ),
    }
}

/// The one event the conversion-token check sends with `test=true`: validated, never recorded.
#[must_use]
pub fn probe_event(now_unix: i64) -> Event {
    Event {
        event_name: "checkout".to_owned(),
        action_source: ActionSource::Web,
        event_time: now_unix,
        event_id: format!("pinrelay-doctor-{now_unix}"),
        event_source_url: None,
        opt_out: None,
        user_data: UserData {
            em: vec![sha256_hex("doctor@pinrelay.invalid")],
            ..UserData::default()
        },
        custom_data: None,
        language: None,
    }
}

/// `pinterest_conversion_token`: `api` (built with `test_mode`, its token kept in `home`) accepts
/// [`probe_event`].
pub async fn pinterest_conversion_token(
    api: Option<&PinterestHttp>,
    ad_account_id: &str,
    home: &str,
    now_unix: i64,
) -> Finding {
    let id = CheckId::PinterestConversionToken;
    let Some(api) = api else {
        return Finding::skip(
            id,
            format!("{home} or the ad account is not set (see secrets)"),
        );
    };
    match api.send(&[probe_event(now_unix)]).await {
        Ok(statuses) => match statuses.first() {
            Some(EventStatus::Processed { .. }) => Finding::ok(
                id,
                format!(
                    "a test event for ad account {ad_account_id} was accepted (validated, not recorded)"
                ),
            ),
            Some(EventStatus::Failed { error_message }) => Finding::fail(
                id,
                format!("Pinterest refused the test event: {error_message}"),
                "check PINTEREST_AD_ACCOUNT_ID is the ad account the conversion token was made for",
            ),
            None => Finding::fail(
                id,
                "Pinterest answered without a status for the test event",
                "run doctor again; if it persists, Pinterest's API is misbehaving",
            ),
        },
        Err(e @ ConversionsApiError::Unauthorized { .. }) => Finding::fail(
            id,
            e.to_string(),
            format!(
                "generate a conversion access token in Ads Manager (Conversions, Conversion access token) for ad account {ad_account_id} and put it in {home}"
            ),
        ),
        Err(e) => Finding::fail(
            id,
            e.to_string(),
            "check that api.pinterest.com is reachable from here, then run doctor again",
        ),
    }
}

/// `event_quality`: Pinterest's Event Quality of `checkout` events can be read with the API token.
pub async fn event_quality(api: Option<&PinterestHttp>) -> Finding {
    let id = CheckId::EventQuality;
    let Some(api) = api else {
        return Finding::skip(
            id,
            "PINTEREST_API_TOKEN is unset: set a Pinterest API token with ads:read to see Event Quality",
        );
    };
    match api
        .event_quality(Lookback::OneDay, IngestionSource::ConversionsApi)
        .await
    {
        Ok(scores) => {
            let overlap = scores.iter().find_map(|s| {
                s.component(&Component::ExternalEventId, "checkout")
                    .and_then(|c| c.overlap)
            });
            Finding::ok(
                id,
                match overlap {
                    Some(overlap) => format!(
                        "readable; checkout external_event_id overlap {overlap:.1}% (Tag and API events Pinterest deduplicated, last day)"
                    ),
                    None => format!(
                        "readable ({} scores for the last day; no checkout overlap reported yet)",
                        scores.len()
                    ),
                },
            )
        }
        Err(e) => Finding::fail(
            id,
            e.to_string(),
            "put a Pinterest API token with ads:read for the ad account in PINTEREST_API_TOKEN",
        ),
    }
}

/// Recent orders the catalog probe reads (findings: a few recent line items are enough).
pub const CATALOG_PROBE_ORDERS: u32 = 10;

/// The most distinct line items it looks up: under four schemes, one request of at most
/// [`crate::pinterest::catalog::MAX_ITEM_IDS`] ids.
pub const CATALOG_PROBE_ITEMS: usize = 25;

/// The lookup's country when `CATALOG_COUNTRY` is unset (the request needs one).
pub const CATALOG_PROBE_COUNTRY: &str = "US";

/// The lookup's language. The relay has no language setting, so a catalog whose items are in
/// another language only may find nothing (a stated limit: the check then skips).
pub const CATALOG_PROBE_LANGUAGE: &str = "EN";

/// The schemes the probe tries: `variant`, `product`, `sku`, and `configured` when it is a
/// template (a template is the merchant's own, so only theirs is tried).
#[must_use]
pub fn catalog_schemes(configured: &ContentIdSource) -> Vec<ContentIdSource> {
    let mut schemes = vec![
        ContentIdSource::Variant,
        ContentIdSource::Product,
        ContentIdSource::Sku,
    ];
    if let ContentIdSource::Template(_) = configured {
        schemes.push(configured.clone());
    }
    schemes
}

/// The distinct line items of `orders` (newest first) that have any id, at most
/// [`CATALOG_PROBE_ITEMS`].
#[must_use]
pub fn probe_items(orders: &[RecentOrder]) -> Vec<ItemIds<'_>> {
    let mut items: Vec<ItemIds<'_>> = Vec::new();
    for line in orders.iter().flat_map(|o| &o.line_items) {
        let item = ItemIds {
            variant_id: line.variant_id(),
            product_id: line.product_id(),
            sku: line.sku.as_deref().filter(|s| !s.trim().is_empty()),
        };
        let has_id = item.variant_id.is_some() || item.product_id.is_some() || item.sku.is_some();
        if has_id && !items.contains(&item) {
            items.push(item);
            if items.len() == CATALOG_PROBE_ITEMS {
                break;
            }
        }
    }
    items
}

/// One scheme's ids for the probe's items: what the relay would send under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeIds {
    /// The scheme.
    pub scheme: ContentIdSource,
    /// The distinct ids of the items under it (an item without one is left out).
    pub ids: Vec<String>,
}

/// Each of `schemes`' ids of `items`; `country` is `CATALOG_COUNTRY`, a template's `{country}`.
#[must_use]
pub fn scheme_ids(
    items: &[ItemIds<'_>],
    schemes: &[ContentIdSource],
    country: Option<&str>,
) -> Vec<SchemeIds> {
    schemes
        .iter()
        .map(|scheme| {
            let mut ids: Vec<String> = Vec::new();
            for id in items.iter().filter_map(|i| scheme.item_id(*i, country)) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            SchemeIds {
                scheme: scheme.clone(),
                ids,
            }
        })
        .collect()
}

/// One scheme's result in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeHits {
    /// The scheme.
    pub scheme: ContentIdSource,
    /// Ids looked up under it.
    pub looked_up: usize,
    /// Of those, the ids the catalog holds.
    pub found: usize,
}

/// Each scheme's count of ids among `found` (the catalog's answer).
#[must_use]
pub fn scheme_hits(schemes: &[SchemeIds], found: &[String]) -> Vec<SchemeHits> {
    schemes
        .iter()
        .map(|s| SchemeHits {
            scheme: s.scheme.clone(),
            looked_up: s.ids.len(),
            found: s.ids.iter().filter(|id| found.contains(id)).count(),
        })
        .collect()
}

/// The `catalog_ids` verdict for `items` line items looked up (`lookup`: the country and language
/// named, for the detail): ok when `configured` has hits; fail naming the scheme with the most
/// hits (the first of equals) when only others do; skip when none does.
#[must_use]
pub fn catalog_verdict(
    configured: &ContentIdSource,
    items: usize,
    hits: &[SchemeHits],
    lookup: &str,
) -> Finding {
    let id = CheckId::CatalogIds;
    let name = configured.setting();
    let mine = hits.iter().find(|h| &h.scheme == configured);
    let others: Vec<String> = hits
        .iter()
        .filter(|h| &h.scheme != configured && h.found > 0)
        .map(|h| format!("{} finds {}", h.scheme.setting(), h.found))
        .collect();
    if let Some(mine) = mine.filter(|m| m.found > 0) {
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        };
        return Finding::ok(
            id,
            format!(
                "CONTENT_ID={name} finds {} of {} recent line items in the catalog{also}",
                mine.found, mine.looked_up
            ),
        );
    }
    let best =
        hits.iter()
            .filter(|h| h.found > 0)
            .fold(None::<&SchemeHits>, |best, h| match best {
                Some(b) if b.found >= h.found => Some(b),
                _ => Some(h),
            });
    match best {
        Some(best) => Finding::fail(
            id,
            format!(
                "CONTENT_ID={name} finds none of {items} recent line items in the catalog; {}",
                others.join(", ")
            ),
            format!(
                "set CONTENT_ID={} (stack parameter ContentId)",
                best.scheme.setting()
            ),
        ),
        None => Finding::skip(
            id,
            format!(
                "none of {items} items found in the catalog under any scheme: check the catalog is synced for this ad account (looked up as {lookup})"
            ),
        ),
    }
}

/// `catalog_ids`: which `CONTENT_ID` scheme the ad account's catalog uses, from the line items of
/// the [`CATALOG_PROBE_ORDERS`] newest orders looked up with `POST /v5/catalogs/items`. `api`
/// holds `PINTEREST_API_TOKEN`; `admin` is `None` unless the Admin token passed, and `granted` its
/// scopes when read (without `read_products` the line items' products cannot be read).
pub async fn catalog_ids(
    api: Option<&PinterestHttp>,
    admin: Option<&AdminApi>,
    granted: Option<&[String]>,
    configured: &ContentIdSource,
    catalog_country: Option<&str>,
) -> Finding {
    let id = CheckId::CatalogIds;
    let Some(api) = api else {
        return Finding::skip(
            id,
            "PINTEREST_API_TOKEN is unset: set a Pinterest API token with catalogs:read to check which CONTENT_ID the catalog uses",
        );
    };
    let Some(admin) = admin else {
        return Finding::skip(id, "needs a working Shopify Admin API token");
    };
    if granted.is_some_and(|g| !has_catalog_probe_scope(g)) {
        return Finding::skip(
            id,
            format!(
                "the app lacks {CATALOG_PROBE_SCOPE}, which reading the recent orders' products and variants needs; add it to the app's scopes to run this check"
            ),
        );
    }
    let orders = match admin.recent_line_items(CATALOG_PROBE_ORDERS).await {
        Ok(orders) => orders,
        Err(e) => return Finding::skip(id, format!("the recent orders cannot be read: {e}")),
    };
    let items = probe_items(&orders);
    if items.is_empty() {
        return Finding::skip(id, "no recent order with a product to look up");
    }
    let schemes = scheme_ids(&items, &catalog_schemes(configured), catalog_country);
    let mut all: Vec<String> = Vec::new();
    for candidate in schemes.iter().flat_map(|s| &s.ids) {
        if !all.contains(candidate) {
            all.push(candidate.clone());
        }
    }
    let country = catalog_country.unwrap_or(CATALOG_PROBE_COUNTRY);
    let lookup = format!("country {country}, language {CATALOG_PROBE_LANGUAGE}");
    match api
        .catalog_items(country, CATALOG_PROBE_LANGUAGE, &all)
        .await
    {
        Ok(found) => catalog_verdict(
            configured,
            items.len(),
            &scheme_hits(&schemes, &found),
            &lookup,
        ),
        Err(e @ CatalogError::Unauthorized { .. }) => Finding::fail(
            id,
            e.to_string(),
            "put a Pinterest API token with catalogs:read in PINTEREST_API_TOKEN",
        ),
        Err(e) => Finding::skip(id, format!("the catalog cannot be read: {e}")),
    }
}

/// What the relay's records say of the shop's latest order (for `webhook_secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestOrder {
    /// The order list or the records could not be read here.
    Unknown,
    /// The shop has no order yet.
    None,
    /// The latest order is younger than the relay's delay: it may still be on its way.
    TooRecent {
        /// Its name (`#1001`).
        name: String,
    },
    /// The relay has a record of it.
    Reached {
        /// Its name.
        name: String,
    },
    /// Old enough to have arrived, and the relay has no record of it.
    Missing {
        /// Its name.
        name: String,
        /// Minutes since it was placed.
        minutes_ago: i64,
    },
}

/// `webhook_secret`: `bad_signatures`, the webhooks refused for their HMAC and over what period
/// (`None`: not readable here), and whether the latest order reached the relay. The secret lives
/// in `home`.
#[must_use]
pub fn webhook_secret(
    bad_signatures: Option<(u64, &str)>,
    latest: &LatestOrder,
    home: &str,
) -> Finding {
    let id = CheckId::WebhookSecret;
    let fix_secret = format!(
        "put the Shopify app's client secret (Dev Dashboard, the app, Settings) in {home}; a webhook Shopify signs with another app's secret is refused"
    );
    if let Some((n @ 1.., period)) = bad_signatures {
        return Finding::fail(
            id,
            format!("{n} webhook(s) refused for a bad HMAC signature {period}"),
            fix_secret,
        );
    }
    let refused = match bad_signatures {
        Some((_, period)) => format!("no webhook refused for its signature {period}"),
        None => "refusals not readable here".to_owned(),
    };
    match latest {
        LatestOrder::Missing { name, minutes_ago } => Finding::fail(
            id,
            format!(
                "the latest order, {name}, placed {minutes_ago} min ago, never reached the relay ({refused})"
            ),
            format!(
                "check webhook_subscriptions above; if they are ok, {fix_secret}; then `pinrelay reconcile` lists what is missing"
            ),
        ),
        LatestOrder::Reached { name } => Finding::ok(
            id,
            format!("the latest order, {name}, reached the relay; {refused}"),
        ),
        LatestOrder::TooRecent { name } if bad_signatures.is_some() => Finding::ok(
            id,
            format!("{refused}; the latest order, {name}, is still within the relay's delay"),
        ),
        LatestOrder::None if bad_signatures.is_some() => Finding::ok(
            id,
            format!("{refused}; the shop has no order yet to follow"),
        ),
        LatestOrder::Unknown if bad_signatures.is_some() => Finding::ok(id, refused),
        _ => Finding::skip(
            id,
            "needs an order placed since the setup, or the relay's refusal counts (a running serve, or the stack's metrics)",
        ),
    }
}

/// `storefront_endpoint`: the browser endpoint at `url` answers a custom pixel's POST
/// (`Origin: null`, a probe event for `shop` that is checked but never queued) with 202 and CORS.
pub async fn storefront_endpoint(
    client: &reqwest::Client,
    url: Option<&str>,
    shop: &str,
) -> Finding {
    let id = CheckId::StorefrontEndpoint;
    let Some(url) = url else {
        return Finding::skip(
            id,
            "the relay's public URL is unknown (WEBHOOK_URL for serve, the stack's WebhookUrl)",
        );
    };
    let body = serde_json::json!({
        "v": 1,
        "shop": shop,
        "event": "page_visit",
        "event_id": format!("pinrelay-doctor-{}", chrono::Utc::now().timestamp()),
        "timestamp": chrono::Utc::now(),
        "consent": {"marketing": false},
        "probe": true,
    });
    let answer = client
        .post(url)
        .header(reqwest::header::ORIGIN, "null")
        .json(&body)
        .send()
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            return Finding::fail(
                id,
                format!("{url} did not answer: {}", error_chain(&e)),
                "check the relay is deployed and reachable from the internet at that URL",
            );
        }
    };
    let status = response.status();
    let cors = response
        .headers()
        .get(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "*" || v == "null");
    match status.as_u16() {
        202 if cors => Finding::ok(id, format!("{url} accepts the pixel's events for {shop}")),
        202 => Finding::fail(
            id,
            format!(
                "{url} answered without Access-Control-Allow-Origin: browsers will drop the pixel's events"
            ),
            "a proxy in front of the relay strips CORS headers: let them through",
        ),
        403 => Finding::fail(
            id,
            format!("{url} refuses events for {shop} (403)"),
            format!("add {shop} to SHOPIFY_SHOP_DOMAINS (the stack's ShopDomains)"),
        ),
        code => Finding::fail(
            id,
            format!("{url} answered {code} to a pixel-style event"),
            "make the relay's URL the pinrelay endpoint (…/events/browser) and run doctor again",
        ),
    }
}

/// An error and its causes, joined: reqwest's own message alone says only "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// What the relay saw of the pixel's settings (for `pixel_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelSeen {
    /// Browser events received, when countable here.
    pub events: Option<u64>,
    /// Events whose settings differed from the relay's.
    pub drifted: u64,
}

/// `pixel_settings`: no browser event carried settings other than the relay's. `seen` is `None`
/// where it cannot be read; `fix` prints the pixel again.
#[must_use]
pub fn pixel_settings(seen: Option<PixelSeen>, fix: &str) -> Finding {
    let id = CheckId::PixelSettings;
    match seen {
        None => Finding::skip(id, "the relay's counts are not readable here"),
        Some(PixelSeen {
            drifted: n @ 1.., ..
        }) => Finding::fail(
            id,
            format!(
                "{n} browser event(s) carried settings other than the relay's: the pasted pixel is out of date"
            ),
            format!("paste the pixel again: {fix}"),
        ),
        Some(PixelSeen {
            events: Some(0), ..
        }) => Finding::skip(
            id,
            "no browser event yet: paste the pixel and open the store",
        ),
        Some(PixelSeen {
            events: Some(n), ..
        }) => Finding::ok(
            id,
            format!("{n} browser event(s), all with the relay's settings"),
        ),
        Some(PixelSeen { events: None, .. }) => Finding::ok(
            id,
            "no browser event in the last 24 hours carried settings other than the relay's",
        ),
    }
}

/// One subscription of the alarm topic: its endpoint and whether it is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSubscriber {
    /// Email address or other endpoint.
    pub endpoint: String,
    /// False while `PendingConfirmation`.
    pub confirmed: bool,
}

/// `alarm_subscription`: the alarm topic (`None`: not a stack) has a confirmed subscription.
#[must_use]
pub fn alarm_subscription(topic: Option<(&str, &[AlarmSubscriber])>) -> Finding {
    let id = CheckId::AlarmSubscription;
    let Some((arn, subscribers)) = topic else {
        return Finding::skip(id, "no alarm topic here (alarms are the stack's)");
    };
    let confirmed: Vec<&str> = subscribers
        .iter()
        .filter(|s| s.confirmed)
        .map(|s| s.endpoint.as_str())
        .collect();
    if !confirmed.is_empty() {
        return Finding::ok(id, format!("alarms go to {}", confirmed.join(", ")));
    }
    if let Some(pending) = subscribers.first() {
        return Finding::fail(
            id,
            format!("the subscription of {} is not confirmed", pending.endpoint),
            format!(
                "open the email from AWS Notifications sent to {} and click \"Confirm subscription\"",
                pending.endpoint
            ),
        );
    }
    Finding::fail(
        id,
        "nobody receives the stack's alarms",
        format!(
            "deploy with AlarmEmail=you@example.com, or: aws sns subscribe --topic-arn {arn} --protocol email --notification-endpoint you@example.com"
        ),
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn oauth_sign_in_shows_days_left_and_fails_under_a_week() {
        let now: chrono::DateTime<chrono::Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let shop = "a.myshopify.com";
        let skipped = pinterest_sign_in(None, shop, "--data-dir d", now);
        assert_eq!(skipped.status, Status::Skip);
        let grant = crate::pinterest::oauth::store::contract::grant_at(now, 30, 45);
        let ok = pinterest_sign_in(Some(&grant), shop, "--data-dir d", now);
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.detail.contains("45 days"), "{}", ok.detail);
        let grant = crate::pinterest::oauth::store::contract::grant_at(now, 30, 6);
        let failed = pinterest_sign_in(Some(&grant), shop, "--stack s", now);
        assert_eq!(failed.status, Status::Fail);
        assert_eq!(
            failed.fix.as_deref(),
            Some("pinrelay pinterest login --shop a.myshopify.com --stack s")
        );
    }
    use super::*;

    #[test]
    fn customer_lists_are_skipped_until_synced_and_report_their_status() {
        use crate::audiences::{ListKind, ListState};
        let none = customer_lists(&[], Ok(()), "acme.myshopify.com", "--data-dir d");
        assert_eq!(none.status, Status::Skip);
        assert!(
            none.detail
                .contains("pinrelay audiences sync --shop acme.myshopify.com --data-dir d")
        );
        let state = ListState {
            list_id: Some("42".into()),
            audience_id: Some("7".into()),
            ..ListState::default()
        };
        let small = customer_lists(
            &[(ListKind::Customers, state.clone(), Some("TOO_SMALL".into()))],
            Ok(()),
            "acme.myshopify.com",
            "",
        );
        assert_eq!(small.status, Status::Ok);
        assert!(
            small.detail.contains("list 42 TOO_SMALL") && small.detail.contains("audience 7"),
            "{}",
            small.detail
        );
        let refused = customer_lists(&[], Err("HTTP 401".into()), "acme.myshopify.com", "");
        assert_eq!(refused.status, Status::Fail);
        assert!(
            refused
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("PINTEREST_API_TOKEN"))
        );
    }

    fn secret(name: &str, value: Option<&str>) -> Secret {
        Secret {
            name: name.to_owned(),
            value: value.map(str::to_owned),
            fix: format!("set {name}"),
        }
    }

    #[test]
    fn placeholders_are_recognised_and_real_values_are_not() {
        for v in [
            "",
            " ",
            "...",
            "shpat_...",
            "<token>",
            "your-client-secret",
            "CHANGEME",
            "xxxx",
            "TODO",
        ] {
            assert!(is_placeholder(v), "{v:?}");
        }
        for v in ["shpat_0123456789abcdef", "pina_ABC123", "hush"] {
            assert!(!is_placeholder(v), "{v:?}");
        }
    }

    #[test]
    fn secrets_fail_naming_each_unfilled_one_and_never_a_value() {
        let f = secrets(&[
            secret("A", Some("real-value-1")),
            secret("B", None),
            secret("C", Some("your-token")),
        ]);
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.detail, "unset or a placeholder: B, C");
        assert_eq!(f.fix.as_deref(), Some("set B; set C"));
        assert!(!format!("{f:?}").contains("real-value-1"));
        assert_eq!(secrets(&[secret("A", Some("v1"))]).status, Status::Ok);
    }

    #[test]
    fn skips_do_not_fail_the_run_and_failures_print_their_fix() {
        let findings = [
            Finding::ok(CheckId::Secrets, "set"),
            Finding::skip(CheckId::EventQuality, "no token"),
        ];
        assert!(passed(&findings));
        let failed = [Finding::fail(CheckId::ShopifyAdminToken, "401", "renew it")];
        assert!(!passed(&failed));
        assert_eq!(
            render(&failed),
            "fail  shopify_admin_token  401\n                           fix: renew it\n"
        );
        let json = serde_json::to_value(&findings).unwrap();
        assert_eq!(json[0]["check"], "secrets");
        assert_eq!(json[1]["status"], "skip");
        assert!(json[0].get("fix").is_none());
    }

    #[test]
    fn webhook_secret_fails_on_refusals_or_a_missing_order_and_skips_with_nothing_to_go_on() {
        let f = webhook_secret(Some((3, "today")), &LatestOrder::Unknown, "S");
        assert_eq!(f.status, Status::Fail);
        assert!(f.fix.unwrap().contains("in S"));
        let missing = LatestOrder::Missing {
            name: "#1001".into(),
            minutes_ago: 42,
        };
        let f = webhook_secret(Some((0, "today")), &missing, "S");
        assert_eq!(f.status, Status::Fail);
        assert!(f.detail.contains("#1001"), "{}", f.detail);
        let reached = LatestOrder::Reached {
            name: "#1002".into(),
        };
        assert_eq!(webhook_secret(None, &reached, "S").status, Status::Ok);
        assert_eq!(
            webhook_secret(Some((0, "today")), &LatestOrder::None, "S").status,
            Status::Ok
        );
        assert_eq!(
            webhook_secret(None, &LatestOrder::Unknown, "S").status,
            Status::Skip
        );
        assert_eq!(
            webhook_secret(None, &LatestOrder::None, "S").status,
            Status::Skip
        );
        let recent = LatestOrder::TooRecent { name: "#3".into() };
        assert_eq!(webhook_secret(None, &recent, "S").status, Status::Skip);
    }

    fn granted(handles: &[&str]) -> Result<Vec<String>, AdminError> {
        Ok(handles.iter().map(|h| (*h).to_owned()).collect())
    }

    #[test]
    fn shopify_scopes_fail_naming_each_missing_scope_and_what_needs_it() {
        let f = shopify_scopes(Some(&granted(&["read_products"])), CheckoutOn::Paid);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.detail.starts_with("the app lacks read_orders (the orders/create webhook; the orders/paid webhook; reconcile"),
            "{}",
            f.detail
        );
        assert!(
            f.detail
                .contains("read_customers (the customers/create webhook)"),
            "{}",
            f.detail
        );
        let fix = f.fix.unwrap();
        assert!(
            fix.starts_with("add read_orders, read_customers to the app's scopes (Dev Dashboard"),
            "{fix}"
        );
        assert!(fix.contains("reinstall"), "{fix}");
    }

    #[test]
    fn shopify_scopes_pass_on_write_scopes_and_skip_without_a_working_token() {
        let f = shopify_scopes(
            Some(&granted(&["write_orders", "read_customers"])),
            CheckoutOn::Created,
        );
        assert_eq!(f.status, Status::Ok);
        assert!(f.detail.contains(
            "read_products, which catalog_ids reads the line items with, is not granted"
        ));
        let f = shopify_scopes(
            Some(&granted(&[
                "read_orders",
                "read_customers",
                "read_products",
            ])),
            CheckoutOn::Created,
        );
        assert_eq!(f.status, Status::Ok);
        assert!(!f.detail.contains("not granted"), "{}", f.detail);
        assert_eq!(
            shopify_scopes(None, CheckoutOn::Created).status,
            Status::Skip
        );
        let unreadable = Err(AdminError::GraphQl(vec!["boom".into()]));
        assert_eq!(
            shopify_scopes(Some(&unreadable), CheckoutOn::Created).status,
            Status::Skip
        );
    }

    fn order(items: serde_json::Value) -> RecentOrder {
        serde_json::from_value(serde_json::json!({
            "id": "gid://shopify/Order/1",
            "name": "#1",
            "createdAt": "2026-12-01T10:00:00Z",
            "lineItems": {"nodes": items},
        }))
        .unwrap()
    }

    fn line(product: u64, variant: u64, sku: &str) -> serde_json::Value {
        serde_json::json!({
            "sku": sku,
            "product": {"id": format!("gid://shopify/Product/{product}")},
            "variant": {"id": format!("gid://shopify/ProductVariant/{variant}"), "sku": sku},
        })
    }

    #[test]
    fn probe_items_are_distinct_lines_with_an_id_under_each_scheme() {
        let orders = [
            order(serde_json::json!([
                line(7, 71, "MUG-RED"),
                {"sku": null, "product": null, "variant": null},
                line(8, 81, " "),
            ])),
            order(serde_json::json!([line(7, 71, "MUG-RED")])),
        ];
        let items = probe_items(&orders);
        assert_eq!(items.len(), 2);
        let template =
            ContentIdSource::Template("shopify_{country}_{product_id}_{variant_id}".into());
        let schemes = catalog_schemes(&template);
        let ids = scheme_ids(&items, &schemes, Some("US"));
        let by = |i: usize| ids[i].ids.clone();
        assert_eq!(ids[0].scheme, ContentIdSource::Variant);
        assert_eq!(by(0), ["71", "81"]);
        assert_eq!(by(1), ["7", "8"]);
        // A blank SKU falls back to the variant id, as the relay sends it.
        assert_eq!(by(2), ["MUG-RED", "81"]);
        assert_eq!(by(3), ["shopify_US_7_71", "shopify_US_8_81"]);
        assert_eq!(catalog_schemes(&ContentIdSource::Sku).len(), 3);
    }

    fn hits(found: &[(ContentIdSource, usize)]) -> Vec<SchemeHits> {
        found
            .iter()
            .map(|(scheme, found)| SchemeHits {
                scheme: scheme.clone(),
                looked_up: 4,
                found: *found,
            })
            .collect()
    }

    #[test]
    fn the_configured_scheme_wins_when_it_has_hits() {
        let all = hits(&[
            (ContentIdSource::Variant, 3),
            (ContentIdSource::Product, 1),
            (ContentIdSource::Sku, 0),
        ]);
        let f = catalog_verdict(&ContentIdSource::Variant, 4, &all, "US/EN");
        assert_eq!(f.status, Status::Ok);
        assert_eq!(
            f.detail,
            "CONTENT_ID=variant finds 3 of 4 recent line items in the catalog (product finds 1)"
        );
        // Fewer hits than another scheme is still ok: the relay's ids are in the catalog.
        assert_eq!(
            catalog_verdict(&ContentIdSource::Product, 4, &all, "US/EN").status,
            Status::Ok
        );
    }

    #[test]
    fn another_scheme_with_hits_fails_with_the_setting_that_has_most() {
        let all = hits(&[
            (ContentIdSource::Variant, 0),
            (ContentIdSource::Product, 2),
            (ContentIdSource::Sku, 4),
        ]);
        let f = catalog_verdict(&ContentIdSource::Variant, 4, &all, "US/EN");
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.detail,
            "CONTENT_ID=variant finds none of 4 recent line items in the catalog; product finds 2, sku finds 4"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("set CONTENT_ID=sku (stack parameter ContentId)")
        );
        // Equal hits: the first scheme tried (variant before product before sku).
        let tied = hits(&[
            (ContentIdSource::Variant, 2),
            (ContentIdSource::Product, 2),
            (ContentIdSource::Sku, 0),
        ]);
        let template = ContentIdSource::Template("x-{sku}".into());
        let f = catalog_verdict(&template, 4, &tied, "US/EN");
        assert_eq!(
            f.fix.as_deref(),
            Some("set CONTENT_ID=variant (stack parameter ContentId)")
        );
    }

    #[test]
    fn no_scheme_with_hits_is_a_skip_not_a_failure() {
        let none = hits(&[
            (ContentIdSource::Variant, 0),
            (ContentIdSource::Product, 0),
            (ContentIdSource::Sku, 0),
        ]);
        let f = catalog_verdict(
            &ContentIdSource::Variant,
            4,
            &none,
            "country US, language EN",
        );
        assert_eq!(f.status, Status::Skip);
        assert!(
            f.detail.starts_with("none of 4 items found in the catalog under any scheme: check the catalog is synced for this ad account"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn pixel_settings_fail_on_drift_and_skip_without_events() {
        let seen = |events, drifted| Some(PixelSeen { events, drifted });
        assert_eq!(pixel_settings(seen(Some(9), 2), "p").status, Status::Fail);
        assert_eq!(pixel_settings(seen(Some(0), 0), "p").status, Status::Skip);
        assert_eq!(pixel_settings(seen(Some(9), 0), "p").status, Status::Ok);
        assert_eq!(pixel_settings(seen(None, 0), "p").status, Status::Ok);
        assert_eq!(pixel_settings(None, "p").status, Status::Skip);
    }

    #[test]
    fn alarms_need_a_confirmed_subscriber() {
        let sub = |confirmed| AlarmSubscriber {
            endpoint: "ops@example.com".into(),
            confirmed,
        };
        assert_eq!(alarm_subscription(None).status, Status::Skip);
        assert_eq!(alarm_subscription(Some(("arn", &[]))).status, Status::Fail);
        let pending = alarm_subscription(Some(("arn", &[sub(false)])));
        assert_eq!(pending.status, Status::Fail);
        assert!(pending.fix.unwrap().contains("Confirm"));
        let ok = alarm_subscription(Some(("arn", &[sub(false), sub(true)])));
        assert_eq!(ok.status, Status::Ok);
    }
}
