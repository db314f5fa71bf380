//! Pinterest's Event Quality Score (EQS), `GET /v5/ad_accounts/{id}/conversion_eqs`, read with
//! [`PinterestHttp::event_quality`]; [`compare`] puts Pinterest's coverage of each match key beside
//! the relay's own counts ([`MatchKeyCounts`]), with a [`hint`] a merchant can act on.
//!
//! The model follows `EventQualityScore` of Pinterest's OpenAPI 5.23 (operation
//! `conversion_eqs/list`, scope `ads:read`). Parsing is tolerant: unknown fields are ignored, a
//! missing optional field takes its default, and an unknown status or component is kept as text
//! ([`OverallStatus::Unknown`], [`Component::Other`]) rather than failing the whole answer.
//!
//! **Units.** `coverage` and `overlap` are percentages from 0 to 100: the spec calls them
//! "Coverage percentage" and "Overlap percentage". Pinterest publishes no example body, so this is
//! the spec's word, not an observed value; [`relay_percent`] uses the same unit.
//!
//! This module is not part of delivery: nothing in dispatch calls it, and it never retries.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::MatchKeyCounts;
use super::http::PinterestHttp;

/// `lookback_period`: the window the score is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lookback {
    /// `1d`: the last day; reacts quickly to a fix.
    #[serde(rename = "1d")]
    OneDay,
    /// `14d`: the last fourteen days.
    #[serde(rename = "14d")]
    FourteenDays,
}

impl Lookback {
    /// The wire value, `1d` or `14d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneDay => "1d",
            Self::FourteenDays => "14d",
        }
    }
}

/// `ingestion_source`: which channel's events are scored. Pinterest also knows `MMP`,
/// `FILE_UPLOAD` and `NATIVE`; a relay only compares its own channel with the Tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngestionSource {
    /// `CONVERSIONS_API`: the events pinrelay sends.
    ConversionsApi,
    /// `TAG`: the browser Tag's events (the storefront pixel or the merchant's own Tag).
    Tag,
}

impl IngestionSource {
    /// The wire value, `CONVERSIONS_API` or `TAG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversionsApi => "CONVERSIONS_API",
            Self::Tag => "TAG",
        }
    }
}

/// `overall_status` of one score.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum OverallStatus {
    /// `NEEDS_IMPROVEMENT`.
    NeedsImprovement,
    /// `FAIR`.
    Fair,
    /// `GOOD`: the only status [`compare`] does not flag.
    Good,
    /// A value the 5.23 spec does not list, kept as sent (empty when the field was missing).
    Unknown(String),
}

impl OverallStatus {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::NeedsImprovement => "NEEDS_IMPROVEMENT",
            Self::Fair => "FAIR",
            Self::Good => "GOOD",
            Self::Unknown(s) => s,
        }
    }
}

impl Default for OverallStatus {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

impl From<String> for OverallStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "NEEDS_IMPROVEMENT" => Self::NeedsImprovement,
            "FAIR" => Self::Fair,
            "GOOD" => Self::Good,
            _ => Self::Unknown(s),
        }
    }
}

impl From<OverallStatus> for String {
    fn from(s: OverallStatus) -> Self {
        match s {
            OverallStatus::Unknown(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

/// A key of `quality_components`: one match key or piece of event metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Component {
    /// `hashed_email`: `user_data.em`.
    HashedEmail,
    /// `ip_address`: `user_data.client_ip_address`.
    IpAddress,
    /// `user_agent`: `user_data.client_user_agent`.
    UserAgent,
    /// `click_id_epik`: `user_data.click_id`, Pinterest's `epik`.
    ClickIdEpik,
    /// `advertiser_external_id`: `user_data.external_id`.
    AdvertiserExternalId,
    /// `external_event_id`: `event_id`; its `overlap` is the Tag/API deduplication rate.
    ExternalEventId,
    /// `order_id`: `custom_data.order_id`.
    OrderId,
    /// `order_value`: `custom_data.value`.
    OrderValue,
    /// `product_id`: `custom_data.content_ids`.
    ProductId,
    /// `source_url`: `event_source_url`.
    SourceUrl,
    /// `hashed_maid`: `user_data.hashed_maids` (apps only).
    HashedMaid,
    /// A key the 5.23 spec does not list, kept as sent.
    Other(String),
}

impl Component {
    /// Every component the 5.23 spec documents, in its order of importance for matching.
    pub const DOCUMENTED: [Component; 11] = [
        Self::HashedEmail,
        Self::IpAddress,
        Self::UserAgent,
        Self::ClickIdEpik,
        Self::AdvertiserExternalId,
        Self::ExternalEventId,
        Self::OrderId,
        Self::OrderValue,
        Self::ProductId,
        Self::SourceUrl,
        Self::HashedMaid,
    ];

    /// The wire key.
    pub fn as_str(&self) -> &str {
        match self {
            Self::HashedEmail => "hashed_email",
            Self::IpAddress => "ip_address",
            Self::UserAgent => "user_agent",
            Self::ClickIdEpik => "click_id_epik",
            Self::AdvertiserExternalId => "advertiser_external_id",
            Self::ExternalEventId => "external_event_id",
            Self::OrderId => "order_id",
            Self::OrderValue => "order_value",
            Self::ProductId => "product_id",
            Self::SourceUrl => "source_url",
            Self::HashedMaid => "hashed_maid",
            Self::Other(s) => s,
        }
    }
}

impl From<String> for Component {
    fn from(s: String) -> Self {
        Self::DOCUMENTED
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Self::Other(s))
    }
}

impl From<Component> for String {
    fn from(c: Component) -> Self {
        match c {
            Component::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

/// One element of the `conversion_eqs` answer: the score of one source, platform and window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    /// Pinterest's verdict for the whole source; it does not say which component drags it down.
    #[serde(default)]
    pub overall_status: OverallStatus,
    /// As sent (`CONVERSIONS_API`, `TAG`, `MMP`, ...): text, so a source this crate does not model
    /// still parses; [`QualityScore::source`] reads it.
    #[serde(default)]
    pub ingestion_source: String,
    /// As sent: `WEB`, `MOBILE`, `OFFLINE`, `POINT_OF_SALE`, ...
    #[serde(default)]
    pub source_platform: String,
    /// As sent, `1d` or `14d`; [`QualityScore::lookback`] reads it.
    #[serde(default)]
    pub lookback_period: String,
    /// Per component, per event type (Pinterest's event name, e.g. `checkout`), the details.
    #[serde(default)]
    pub quality_components: BTreeMap<Component, BTreeMap<String, ComponentScore>>,
}

impl QualityScore {
    /// The source, when it is one this crate models.
    pub fn source(&self) -> Option<IngestionSource> {
        match self.ingestion_source.as_str() {
            "CONVERSIONS_API" => Some(IngestionSource::ConversionsApi),
            "TAG" => Some(IngestionSource::Tag),
            _ => None,
        }
    }

    /// The window, when it is one this crate models.
    pub fn lookback(&self) -> Option<Lookback> {
        match self.lookback_period.as_str() {
            "1d" => Some(Lookback::OneDay),
            "14d" => Some(Lookback::FourteenDays),
            _ => None,
        }
    }

    /// The details of `component` for `event_type`, whose case is ignored (the spec does not say
    /// whether Pinterest writes `checkout` or `CHECKOUT`).
    pub fn component(&self, component: &Component, event_type: &str) -> Option<&ComponentScore> {
        self.quality_components
            .get(component)?
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(event_type))
            .map(|(_, score)| score)
    }
}

/// `QualityComponentDetails`: one component for one event type. The spec gives no per-component
/// status; `issues` is the only per-component verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScore {
    /// Percentage (0 to 100) of the events of this type that carry the component.
    pub coverage: f64,
    /// Percentage (0 to 100), only for `external_event_id`: the Tag/API deduplication rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<f64>,
    /// Problems Pinterest found, if any.
    #[serde(default)]
    pub issues: Vec<Issue>,
}

/// `QualityComponentIssue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Identifier of the check.
    #[serde(default)]
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Pinterest's explanation.
    #[serde(default)]
    pub reason: String,
}

/// The percentage (0 to 100) of `counts`' events carrying `component`, or `None` when the relay
/// does not count that component (it counts `em`, IP + user agent together, the click id and
/// `external_id`; Pinterest's EQS has no phone component) or counted no event.
pub fn relay_percent(counts: &MatchKeyCounts, component: &Component) -> Option<f64> {
    let with = match component {
        Component::HashedEmail => counts.email,
        Component::IpAddress | Component::UserAgent => counts.ip_ua,
        Component::ClickIdEpik => counts.click_id,
        Component::AdvertiserExternalId => counts.external_id,
        _ => return None,
    };
    (counts.events > 0).then(|| with as f64 * 100.0 / counts.events as f64)
}

/// One line of [`compare`]: a component as Pinterest scored it for each source, and as the relay
/// counted it. Percentages, 0 to 100.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentRow {
    /// The component.
    pub component: Component,
    /// Coverage in the `CONVERSIONS_API` score, when it has this component and event type.
    pub pinterest_api: Option<f64>,
    /// Coverage in the `TAG` score, likewise.
    pub pinterest_tag: Option<f64>,
    /// The relay's own coverage ([`relay_percent`]).
    pub relay: Option<f64>,
    /// `overlap` of the `CONVERSIONS_API` score, else of the `TAG` score: for
    /// `external_event_id`, the share of events Pinterest deduplicated between Tag and API.
    pub overlap: Option<f64>,
    /// See [`compare`].
    pub below_good: bool,
    /// [`hint`], when `below_good`.
    pub hint: Option<&'static str>,
}

/// Puts Pinterest's coverage of `event_type` (case ignored) beside the relay's, one row per
/// component that a score or the relay reports, in [`Component`] order.
///
/// `scores` should be one window's answers (one [`Lookback`]); of each source the first
/// `CONVERSIONS_API` and the first `TAG` score are used, and others (`MMP`, a second platform) are
/// ignored.
///
/// **Below GOOD.** The spec has no per-component status, so a row is `below_good` when, in a
/// source score that reports the component for `event_type`, the source's `overall_status` is not
/// `GOOD` or Pinterest lists issues for the component. With a FAIR or NEEDS_IMPROVEMENT source every
/// component it reports is flagged, because Pinterest does not say which one is to blame; compare
/// the coverages to find it.
pub fn compare(
    scores: &[QualityScore],
    relay: &MatchKeyCounts,
    event_type: &str,
) -> Vec<ComponentRow> {
    let of = |source| scores.iter().find(|s| s.source() == Some(source));
    let api = of(IngestionSource::ConversionsApi);
    let tag = of(IngestionSource::Tag);
    let components: BTreeSet<Component> = [api, tag]
        .into_iter()
        .flatten()
        .flat_map(|s| {
            s.quality_components
                .keys()
                .filter(move |c| s.component(c, event_type).is_some())
        })
        .cloned()
        .chain(
            Component::DOCUMENTED
                .into_iter()
                .filter(|c| relay_percent(relay, c).is_some()),
        )
        .collect();
    components
        .into_iter()
        .map(|component| {
            let api_score = api.and_then(|s| s.component(&component, event_type));
            let tag_score = tag.and_then(|s| s.component(&component, event_type));
            let below_good =
                [(api, api_score), (tag, tag_score)]
                    .into_iter()
                    .any(|(source, score)| match (source, score) {
                        (Some(source), Some(score)) => {
                            source.overall_status != OverallStatus::Good || !score.issues.is_empty()
                        }
                        _ => false,
                    });
            ComponentRow {
                pinterest_api: api_score.map(|s| s.coverage),
                pinterest_tag: tag_score.map(|s| s.coverage),
                relay: relay_percent(relay, &component),
                overlap: api_score
                    .and_then(|s| s.overlap)
                    .or_else(|| tag_score.and_then(|s| s.overlap)),
                below_good,
                hint: below_good.then(|| hint(&component)),
                component,
            }
        })
        .collect()
}

/// What a Shopify merchant can do about a component below GOOD, as pinrelay fills it.
pub fn hint(component: &Component) -> &'static str {
    match component {
        Component::HashedEmail => {
            "Orders without an email: make sure the checkout asks for one (Shopify admin: Settings → Checkout → Customer contact method). pinrelay sends em, SHA-256-hashed, for every order that has an email (the order's, its contact email or the customer's)."
        }
        Component::IpAddress => {
            "Orders without the shopper's IP address: pinrelay takes it from the order's browser_ip or client_details, which orders created by staff, apps or the API lack; install the storefront pixel (README: Storefront pixel) so the checkout's IP reaches the relay with the shopper's marketing consent."
        }
        Component::UserAgent => {
            "Orders without the shopper's user agent: pinrelay takes it from the order's client_details, or from the storefront pixel's profile; install the pixel (README: Storefront pixel) so the checkout's user agent reaches the relay with the shopper's marketing consent."
        }
        Component::ClickIdEpik => {
            "Few events carry Pinterest's click id: install the storefront pixel (README: Storefront pixel) so the epik parameter or the _epik cookie reaches the relay; without it pinrelay finds the click id only in the order's landing_site or an epik note attribute. Shoppers who refuse marketing consent never carry one."
        }
        Component::AdvertiserExternalId => {
            "Events without an external id: pinrelay sends the hashed Shopify customer id as external_id for every order and sign-up that has a customer; orders without one (some created by apps or the API) and browser events go without."
        }
        Component::ExternalEventId => {
            "The Tag and the relay must share event_id to be deduplicated: the storefront pixel sends the numeric order id, the relay's default EVENT_ID_TEMPLATE; in your own Tag code use event_id: '{{ order.id }}', change both together, and turn off the official Pinterest app's Tag, whose ids never match (README: Browser Tag: use the order id as event_id)."
        }
        Component::OrderId => {
            "pinrelay sends custom_data.order_id with every checkout; a gap means checkouts from elsewhere (your own Tag code or another app) lack it: pass order_id: '{{ order.id }}' there too."
        }
        Component::OrderValue => {
            "pinrelay sends value and currency with every checkout (VALUE_SOURCE: subtotal or total) and leaves out an amount that is not a plain decimal; a gap usually means Tag checkouts without value and currency."
        }
        Component::ProductId => {
            "pinrelay sends content_ids from the line items (CONTENT_ID: variant, sku or product), and a line item without that id goes without: pick the id your Pinterest catalog feed uses, and give every product a SKU if you use sku."
        }
        Component::SourceUrl => {
            "pinrelay sets event_source_url of web checkouts to STORE_URL (default https://{shop}/, the myshopify domain): set STORE_URL to your storefront's public address. Offline (point-of-sale) events have no page and never carry one."
        }
        Component::HashedMaid => {
            "Mobile ad ids come only from a mobile app's events: a Shopify web store's orders carry none and pinrelay sends none, so nothing needs doing unless you sell through your own app."
        }
        Component::Other(_) => {
            "A component this version of pinrelay does not know: see Pinterest's Event Quality Score help (https://help.pinterest.com/en/business/article/eqs)."
        }
    }
}

/// Why [`PinterestHttp::event_quality`] returned no scores.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// 401.
    #[error(
        "Pinterest refused the token for the Event Quality Score (HTTP 401: {message}): reading it needs the ads:read scope, which a conversion token made in Ads Manager for the Conversions API does not have; give reconcile a token with ads:read in PINTEREST_API_TOKEN (or, if it has the scope, a current one)"
    )]
    Unauthorized {
        /// Pinterest's error message.
        message: String,
    },
    /// 403.
    #[error(
        "Pinterest denied reading the Event Quality Score of ad account {ad_account_id} (HTTP 403: {message}); the token needs the ads:read scope, and its user a role on that ad account that can read ads"
    )]
    Forbidden {
        /// The configured ad account id.
        ad_account_id: String,
        /// Pinterest's error message.
        message: String,
    },
    /// 404.
    #[error(
        "Pinterest found no ad account {ad_account_id} (HTTP 404: {message}); check PINTEREST_AD_ACCOUNT_ID, the numeric id shown in Ads Manager"
    )]
    NotFound {
        /// The configured ad account id.
        ad_account_id: String,
        /// Pinterest's error message.
        message: String,
    },
    /// 429.
    #[error("Pinterest rate-limited the request (HTTP 429); try again in a few minutes")]
    RateLimited,
    /// 5xx.
    #[error("Pinterest is unavailable (HTTP {status}); try again later")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// 400 or any other status.
    #[error("Pinterest rejected the request (HTTP {status}: {message})")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Pinterest's error message.
        message: String,
    },
    /// No answer: connection refused, DNS, TLS or timeout.
    #[error("could not reach Pinterest at {base_url}; check the network and PINTEREST_API_URL")]
    Transport {
        /// Where the request went.
        base_url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// A 200 whose body is not a list of scores.
    #[error("Pinterest's Event Quality Score answer could not be read")]
    UnexpectedResponse(#[source] serde_json::Error),
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
}

impl PinterestHttp {
    /// The Event Quality Score of the configured ad account for one window and source (all source
    /// platforms; usually one score per platform). Never sends `?test=true`: the score is read-only.
    ///
    /// # Errors
    /// A [`QualityError`] per failure kind; the token MUST carry `ads:read` (a token made only to
    /// send conversions may not).
    pub async fn event_quality(
        &self,
        lookback: Lookback,
        ingestion_source: IngestionSource,
    ) -> Result<Vec<QualityScore>, QualityError> {
        let base_url = self.config.base_url.trim_end_matches('/');
        let url = format!(
            "{base_url}/v5/ad_accounts/{}/conversion_eqs",
            self.config.ad_account_id
        );
        let transport = |source| QualityError::Transport {
            base_url: base_url.to_owned(),
            source,
        };
        let response = self
            .client
            .get(&url)
            .bearer_auth(self.config.access_token.expose_secret())
            .query(&[
                ("lookback_period", lookback.as_str()),
                ("ingestion_source", ingestion_source.as_str()),
            ])
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        let message = || {
            serde_json::from_slice::<ApiError>(&body)
                .ok()
                .and_then(|e| e.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect())
        };
        let ad_account_id = || self.config.ad_account_id.clone();
        match status {
            200 => serde_json::from_slice(&body).map_err(QualityError::UnexpectedResponse),
            401 => Err(QualityError::Unauthorized { message: message() }),
            403 => Err(QualityError::Forbidden {
                ad_account_id: ad_account_id(),
                message: message(),
            }),
            404 => Err(QualityError::NotFound {
                ad_account_id: ad_account_id(),
                message: message(),
            }),
            429 => Err(QualityError::RateLimited),
            500..=599 => Err(QualityError::Unavailable { status }),
            _ => Err(QualityError::Rejected {
                status,
                message: message(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built from the 5.23 schema (Pinterest gives no example), with a field and a component the
    /// spec does not list, to show they are tolerated.
    const BODY: &str = r#"[
      {
        "overall_status": "FAIR",
        "ingestion_source": "CONVERSIONS_API",
        "source_platform": "WEB",
        "lookback_period": "14d",
        "computed_at": "2026-12-01T00:00:00Z",
        "quality_components": {
          "hashed_email": { "checkout": { "coverage": 92.5, "issues": [] } },
          "ip_address": { "checkout": { "coverage": 61.0 } },
          "user_agent": { "checkout": { "coverage": 61.0 } },
          "click_id_epik": {
            "checkout": {
              "coverage": 18.0,
              "issues": [{ "id": "LOW_CLICK_ID_COVERAGE", "name": "Low click ID coverage",
                           "reason": "Fewer than 30% of events include a click ID." }]
            }
          },
          "advertiser_external_id": { "checkout": { "coverage": 88.0 } },
          "external_event_id": { "checkout": { "coverage": 100.0, "overlap": 43.5 } },
          "order_id": { "checkout": { "coverage": 100.0 } },
          "order_value": { "checkout": { "coverage": 100.0 } },
          "product_id": { "checkout": { "coverage": 97.0 } },
          "source_url": { "checkout": { "coverage": 100.0 } },
          "hashed_maid": {},
          "hashed_phone": { "checkout": { "coverage": 40.0 } }
        }
      },
      {
        "overall_status": "GOOD",
        "ingestion_source": "TAG",
        "source_platform": "WEB",
        "lookback_period": "14d",
        "quality_components": {
          "click_id_epik": { "checkout": { "coverage": 81.0 }, "page_visit": { "coverage": 85.0 } },
          "external_event_id": { "CHECKOUT": { "coverage": 100.0, "overlap": 41.0 } },
          "hashed_email": { "checkout": { "coverage": 30.0 } }
        }
      }
    ]"#;

    fn scores() -> Vec<QualityScore> {
        serde_json::from_str(BODY).unwrap()
    }

    #[test]
    fn parses_a_realistic_quality_answer() {
        let scores = scores();
        assert_eq!(scores.len(), 2);
        let api = &scores[0];
        assert_eq!(api.overall_status, OverallStatus::Fair);
        assert_eq!(api.source(), Some(IngestionSource::ConversionsApi));
        assert_eq!(api.lookback(), Some(Lookback::FourteenDays));
        assert_eq!(api.source_platform, "WEB");
        let click = api.component(&Component::ClickIdEpik, "checkout").unwrap();
        assert_eq!(click.coverage, 18.0);
        assert_eq!(click.issues[0].id, "LOW_CLICK_ID_COVERAGE");
        let dedup = api
            .component(&Component::ExternalEventId, "checkout")
            .unwrap();
        assert_eq!(dedup.overlap, Some(43.5));
        assert!(
            api.quality_components
                .contains_key(&Component::Other("hashed_phone".into()))
        );
        assert_eq!(
            scores[1].component(&Component::ExternalEventId, "checkout"),
            Some(&ComponentScore {
                coverage: 100.0,
                overlap: Some(41.0),
                issues: vec![],
            })
        );
    }

    #[test]
    fn tolerates_missing_optional_fields_and_unknown_values() {
        let scores: Vec<QualityScore> = serde_json::from_str(
            r#"[{"overall_status": "EXCELLENT", "ingestion_source": "MMP"}, {}]"#,
        )
        .unwrap();
        assert_eq!(
            scores[0].overall_status,
            OverallStatus::Unknown("EXCELLENT".into())
        );
        assert_eq!(scores[0].source(), None);
        assert!(scores[1].quality_components.is_empty());
        assert_eq!(scores[1].lookback(), None);
    }

    #[test]
    fn round_trips_wire_names() {
        let scores = scores();
        let again: Vec<QualityScore> =
            serde_json::from_value(serde_json::to_value(&scores).unwrap()).unwrap();
        assert_eq!(again, scores);
        assert_eq!(serde_json::to_value(Lookback::OneDay).unwrap(), "1d");
        assert_eq!(
            serde_json::to_value(IngestionSource::ConversionsApi).unwrap(),
            "CONVERSIONS_API"
        );
        for c in Component::DOCUMENTED {
            assert_eq!(Component::from(c.as_str().to_owned()), c);
        }
    }

    #[test]
    fn every_documented_component_has_its_own_hint() {
        let hints: BTreeSet<&str> = Component::DOCUMENTED.iter().map(hint).collect();
        assert_eq!(hints.len(), Component::DOCUMENTED.len());
        assert!(!hints.contains(hint(&Component::Other("x".into()))));
        assert!(hint(&Component::ClickIdEpik).contains("storefront pixel"));
        assert!(hint(&Component::ExternalEventId).contains("event_id"));
    }

    #[test]
    fn compare_puts_pinterest_beside_the_relay_and_flags_a_fair_source() {
        let relay = MatchKeyCounts {
            events: 200,
            email: 190,
            phone: 120,
            ip_ua: 130,
            click_id: 40,
            external_id: 176,
        };
        let rows = compare(&scores(), &relay, "checkout");
        let row = |c: Component| rows.iter().find(|r| r.component == c).unwrap();

        let email = row(Component::HashedEmail);
        assert_eq!(email.pinterest_api, Some(92.5));
        assert_eq!(email.pinterest_tag, Some(30.0));
        assert_eq!(email.relay, Some(95.0));
        assert!(email.below_good);
        assert_eq!(email.hint, Some(hint(&Component::HashedEmail)));

        assert_eq!(row(Component::UserAgent).relay, Some(65.0));
        assert_eq!(row(Component::ClickIdEpik).relay, Some(20.0));
        assert_eq!(row(Component::ClickIdEpik).pinterest_tag, Some(81.0));
        assert_eq!(row(Component::AdvertiserExternalId).relay, Some(88.0));
        assert_eq!(row(Component::ExternalEventId).overlap, Some(43.5));
        assert_eq!(row(Component::OrderId).relay, None);
        // An empty component and the page_visit-only Tag entries give no row.
        assert!(rows.iter().all(|r| r.component != Component::HashedMaid));
        assert!(
            rows.iter()
                .any(|r| r.component == Component::Other("hashed_phone".into()))
        );
    }

    #[test]
    fn compare_flags_only_components_with_issues_when_the_source_is_good() {
        let mut scores = scores();
        scores[0].overall_status = OverallStatus::Good;
        let rows = compare(&scores, &MatchKeyCounts::default(), "checkout");
        let flagged: Vec<&Component> = rows
            .iter()
            .filter(|r| r.below_good)
            .map(|r| &r.component)
            .collect();
        assert_eq!(flagged, [&Component::ClickIdEpik]);
        assert!(rows.iter().all(|r| r.relay.is_none()));
        assert!(
            rows.iter()
                .filter(|r| !r.below_good)
                .all(|r| r.hint.is_none())
        );
    }

    #[test]
    fn compare_without_scores_shows_the_relays_counts_unflagged() {
        let relay = MatchKeyCounts {
            events: 4,
            email: 4,
            ..MatchKeyCounts::default()
        };
        let rows = compare(&[], &relay, "checkout");
        let components: Vec<&Component> = rows.iter().map(|r| &r.component).collect();
        assert_eq!(
            components,
            [
                &Component::HashedEmail,
                &Component::IpAddress,
                &Component::UserAgent,
                &Component::ClickIdEpik,
                &Component::AdvertiserExternalId
            ]
        );
        assert_eq!(rows[0].relay, Some(100.0));
        assert_eq!(rows[1].relay, Some(0.0));
        assert!(rows.iter().all(|r| !r.below_good));
    }
}
