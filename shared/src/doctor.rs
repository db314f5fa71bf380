//! `pinrelay doctor`: a setup checked end to end, one [`Finding`] per check, each `ok`, `fail` (with
//! the one action that fixes it) or `skip` (the check cannot run here: no token for it, nothing to
//! compare with). The checks call the real services through the relay's own clients; deciding
//! what a finding says is pure and lives in the small constructors below.

use serde::Serialize;

use crate::mapping::CheckoutOn;
use crate::pinterest::normalize::sha256_hex;
use crate::pinterest::quality::Component;
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
    /// No webhook was refused for a bad signature lately, and the latest order reached the relay.
    WebhookSecret,
    /// The storefront endpoint answers a pixel's POST (`Origin: null`) for the shop.
    StorefrontEndpoint,
    /// The pasted pixel's settings are the relay's.
    PixelSettings,
    /// Someone receives the stack's alarms.
    AlarmSubscription,
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
            Self::WebhookSecret => "webhook_secret",
            Self::StorefrontEndpoint => "storefront_endpoint",
            Self::PixelSettings => "pixel_settings",
            Self::AlarmSubscription => "alarm_subscription",
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

/// What the relay's records say of the shop's latest order (for `webhook_secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestOrder {
    /// The order list or the records could not be read here.
    Unknown,
    /// The shop has no order in the window looked at.
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
            format!("{refused}; no order in the last 7 days to follow"),
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
