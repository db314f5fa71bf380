//! The `shop` query: the shop's name, domain, time zone and currency (doctor's first check, and
//! the time zone reconcile's days are cut in).

use serde::Deserialize;
use serde_json::json;

use super::transport::{AdminApi, AdminError};

/// Reads the shop's name, domain, time zone and currency.
pub const SHOP_QUERY: &str =
    "query pinrelayShop { shop { name myshopifyDomain ianaTimezone currencyCode } }";

/// The shop's settings that matter to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopInfo {
    /// The shop's display name.
    pub name: String,
    /// `name.myshopify.com`.
    pub myshopify_domain: String,
    /// The shop's time zone, as IANA names it (`America/New_York`).
    pub iana_timezone: String,
    /// The shop's currency (ISO 4217).
    pub currency_code: String,
}

/// `data` of [`SHOP_QUERY`].
#[derive(Deserialize)]
struct Data {
    shop: ShopInfo,
}

impl AdminApi {
    /// The shop's name, domain, time zone and currency.
    ///
    /// # Errors
    /// See [`AdminApi::graphql`].
    pub async fn shop(&self) -> Result<ShopInfo, AdminError> {
        let data: Data = self.query(SHOP_QUERY, json!({}), "shop").await?;
        Ok(data.shop)
    }
}
