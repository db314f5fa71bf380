//! `pinrelay doctor`: a setup checked end to end, one [`Finding`] per check, each `ok`, `fail` (with
//! the one action that fixes it) or `skip` (the check cannot run here: no token for it, nothing to
//! compare with). The checks call the real services through the relay's own clients; deciding
//! what a finding says is pure and lives in the small constructors below.

use serde::Serialize;

use crate::mapping::CheckoutOn;
use crate::pinterest::normalize::sha256_hex;
use crate::pinterest::{
    ActionSource, ConversionsApi, ConversionsApiError, Event, EventStatus, IngestionSource,
    Lookback, PinterestHttp, UserData,
};
use crate::shopify::admin::{AdminApi, AdminError};
use crate::watch::missing_topics;

/// What a check looks at; its id is the `check` of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Every secret the relay needs is set, and none is a placeholder.
    Secrets,
    /// The Shopify Admin API token is accepted.
    ShopifyAdminToken,
    /// The topics the conversion rules need have subscriptions delivering to the relay.
    WebhookSubscriptions,
    /// Pinterest accepts one `test=true` event with the conversion token for the ad account.
    PinterestConversionToken,
    /// Pinterest's Event Quality can be read with the API token.
    EventQuality,
}

impl CheckId {
    /// The id as printed and in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Secrets => "secrets",
            Self::ShopifyAdminToken => "shopify_admin_token",
            Self::WebhookSubscriptions => "webhook_subscriptions",
            Self::PinterestConversionToken => "pinterest_conversion_token",
            Self::EventQuality => "event_quality",
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
        Ok(scores) => Finding::ok(
            id,
            format!("readable ({} scores for the last day)", scores.len()),
        ),
        Err(e) => Finding::fail(
            id,
            e.to_string(),
            "put a Pinterest API token with ads:read for the ad account in PINTEREST_API_TOKEN",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
