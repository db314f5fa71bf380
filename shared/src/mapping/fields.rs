//! Field helpers shared by the mappings: normalized-and-hashed identifiers, locations, times,
//! URLs and the Pinterest click id.

use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use url::Url;

use super::Options;
use crate::pinterest::UserData;
use crate::pinterest::normalize;
use crate::shopify::WebhookMetadata;
use crate::shopify::payload::Address;

/// Unix seconds, never after `now` (Pinterest rejects or misreads events from the future).
pub(super) fn event_time(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    at.timestamp().min(now.timestamp())
}

pub(super) fn source_url(metadata: &WebhookMetadata, options: &Options) -> Option<String> {
    match options.store_url.as_deref().and_then(non_blank) {
        Some(url) => Some(url),
        None => {
            let shop = metadata.shop_domain.trim();
            (!shop.is_empty()).then(|| format!("https://{shop}/"))
        }
    }
}

/// The primary language subtag of a locale or `Accept-Language` value (`fr-CA` → `fr`).
pub(super) fn language(tag: &str) -> Option<String> {
    let primary = tag.trim().split([',', ';', '-', '_']).next()?.trim();
    (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

/// A literal IP address, in canonical form; `0.0.0.0` and `::` (placeholders) are dropped.
pub(super) fn ip_address(raw: &str) -> Option<String> {
    let ip: IpAddr = raw.trim().parse().ok()?;
    (!ip.is_unspecified()).then(|| ip.to_string())
}

pub(super) static RELATIVE_BASE: LazyLock<Option<Url>> =
    LazyLock::new(|| Url::parse("https://shop.invalid/").ok());

/// The `epik` query parameter (any case, as Pinterest's pixel reads it) of `landing_site`, which is
/// an absolute URL or a path with its query string.
pub(super) fn epik_from_landing_site(landing_site: &str) -> Option<String> {
    let landing_site = landing_site.trim();
    let url = match Url::parse(landing_site) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            RELATIVE_BASE.as_ref()?.join(landing_site).ok()?
        }
        Err(_) => return None,
    };
    url.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("epik"))
        .and_then(|(_, v)| non_blank(&v))
}

pub(super) fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The first candidate that normalizes to something.
pub(super) fn first_of<const N: usize>(
    candidates: [Option<&str>; N],
    normalize: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    candidates.into_iter().flatten().find_map(normalize)
}

/// The first phone that normalizes, each read with the country of its own address, or
/// `default_country` (`DEFAULT_COUNTRY`) when there is none; never a country guessed from digits.
pub(super) fn first_phone<const N: usize>(
    candidates: [(Option<&str>, Option<&str>); N],
    default_country: Option<&str>,
) -> Option<String> {
    candidates
        .into_iter()
        .find_map(|(phone, country)| normalize::phone(phone?, country.or(default_country)))
}

pub(super) fn hashed(normalized: Option<String>) -> Vec<String> {
    normalized
        .and_then(|n| normalize::hash(&n))
        .into_iter()
        .collect()
}

pub(super) fn country_of(a: Option<&Address>) -> Option<&str> {
    a.and_then(|a| a.country_code.as_deref())
}

pub(super) fn has_location(a: &Address) -> bool {
    [&a.city, &a.province_code, &a.zip, &a.country_code]
        .into_iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.trim().is_empty()))
}

pub(super) fn add_location(user_data: &mut UserData, a: &Address) {
    let country = a.country_code.as_deref();
    user_data.ct = hashed(a.city.as_deref().and_then(normalize::city));
    user_data.st = hashed(a.province_code.as_deref().and_then(normalize::state));
    user_data.zp = hashed(a.zip.as_deref().and_then(|z| normalize::zip(z, country)));
    user_data.country = hashed(country.and_then(normalize::country));
}
