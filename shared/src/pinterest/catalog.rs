//! Which item ids a Pinterest catalog holds: `POST /v5/catalogs/items` (operation `items/post` of
//! the OpenAPI 5.23, scope `catalogs:read`), read with [`PinterestHttp::catalog_items`]. Doctor's
//! `catalog_ids` check looks up a few recent line items under each `CONTENT_ID` scheme with it.
//!
//! The request is `CatalogsItemsRequest` with the retail filter (`CatalogsRetailItemsPostFilter`):
//! `country`, `language` and `filters: {catalog_type: "RETAIL", item_ids}`; `ad_account_id` goes in
//! the query, so the ad account's owner is the "operation user account" (the token's user needs
//! the Owner, Admin or Catalogs Manager role on it). The answer, `CatalogsItems`, lists an item
//! record for each id found and may list an error record (with `errors`) for an id that is not;
//! only records without errors count as found. Parsing ignores the attributes and pins.
//!
//! This module is not part of delivery and never retries.

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::http::PinterestHttp;

/// The most item ids one request carries. The 5.23 spec allows 1,000; the catalog probe needs
/// far fewer, and Pinterest's guide for this endpoint speaks of 100.
pub const MAX_ITEM_IDS: usize = 100;

/// `catalog_type`: the relay only knows retail catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CatalogType {
    /// `RETAIL`: products.
    Retail,
}

/// The body of `POST /v5/catalogs/items` (`CatalogsItemsRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogItemsRequest {
    /// The items' country, ISO 3166-1 alpha-2 (`US`).
    pub country: String,
    /// The items' language, ISO 639-1 uppercase (`EN`) or a catalog locale (`en-US`).
    pub language: String,
    /// Which items.
    pub filters: RetailItemsFilter,
}

/// `filters` of a retail lookup (`CatalogsRetailItemsPostFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetailItemsFilter {
    /// Always [`CatalogType::Retail`].
    pub catalog_type: CatalogType,
    /// The item ids looked up: 1 to [`MAX_ITEM_IDS`].
    pub item_ids: Vec<String>,
}

/// The 200 answer (`CatalogsItems`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogItems {
    /// One record per id Pinterest answers for.
    #[serde(default)]
    pub items: Vec<CatalogItem>,
}

/// One record of [`CatalogItems`]: an item, or an error about an id.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CatalogItem {
    /// The item id in the merchant's namespace (absent from some error records).
    #[serde(default)]
    pub item_id: Option<String>,
    /// Present on an error record (`CatalogsRetailItemErrorResponse`).
    #[serde(default)]
    pub errors: Option<Vec<ItemError>>,
}

impl CatalogItem {
    /// The item's id when this record is an item the catalog holds (not an error record).
    pub fn found_id(&self) -> Option<&str> {
        match &self.errors {
            Some(errors) if !errors.is_empty() => None,
            _ => self.item_id.as_deref(),
        }
    }
}

/// One `ItemValidationEvent` of an error record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemError {
    /// Pinterest's code.
    #[serde(default)]
    pub code: Option<i64>,
    /// What is wrong.
    #[serde(default)]
    pub message: Option<String>,
}

/// Why [`PinterestHttp::catalog_items`] found nothing.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 401 or 403: the token, its scope or its user's role on the ad account.
    #[error(
        "Pinterest refused to read the catalog of ad account {ad_account_id} (HTTP {status}: {message}): the token needs the catalogs:read scope, and its user the Owner, Admin or Catalogs Manager role on that ad account"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The configured ad account id.
        ad_account_id: String,
        /// Pinterest's error message.
        message: String,
    },
    /// 404.
    #[error(
        "Pinterest found no ad account {ad_account_id} or no catalog for it (HTTP 404: {message}); check PINTEREST_AD_ACCOUNT_ID"
    )]
    NotFound {
        /// The configured ad account id.
        ad_account_id: String,
        /// Pinterest's error message.
        message: String,
    },
    /// 429.
    #[error("Pinterest rate-limited the catalog lookup (HTTP 429); try again in a few minutes")]
    RateLimited,
    /// 5xx.
    #[error("Pinterest is unavailable (HTTP {status}); try again later")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// 400 or any other status.
    #[error("Pinterest rejected the catalog lookup (HTTP {status}: {message})")]
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
    /// A 200 whose body is not a list of items.
    #[error("Pinterest's answer to the catalog lookup could not be read")]
    UnexpectedResponse(#[source] serde_json::Error),
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
}

impl PinterestHttp {
    /// The ids of `item_ids` that the configured ad account's retail catalog holds for `country`
    /// and `language`, in Pinterest's order, each once. Sends one request per [`MAX_ITEM_IDS`]
    /// ids; no request for none.
    ///
    /// # Errors
    /// A [`CatalogError`] per failure kind; the token MUST carry `catalogs:read`.
    pub async fn catalog_items(
        &self,
        country: &str,
        language: &str,
        item_ids: &[String],
    ) -> Result<Vec<String>, CatalogError> {
        let mut found: Vec<String> = Vec::new();
        for chunk in item_ids.chunks(MAX_ITEM_IDS) {
            let request = CatalogItemsRequest {
                country: country.to_owned(),
                language: language.to_owned(),
                filters: RetailItemsFilter {
                    catalog_type: CatalogType::Retail,
                    item_ids: chunk.to_vec(),
                },
            };
            for item in self.post_catalog_items(&request).await?.items {
                if let Some(id) = item.found_id()
                    && !found.iter().any(|f| f == id)
                {
                    found.push(id.to_owned());
                }
            }
        }
        Ok(found)
    }

    /// One `POST /v5/catalogs/items?ad_account_id=…`.
    async fn post_catalog_items(
        &self,
        request: &CatalogItemsRequest,
    ) -> Result<CatalogItems, CatalogError> {
        let base_url = self.config.base_url.trim_end_matches('/');
        let transport = |source| CatalogError::Transport {
            base_url: base_url.to_owned(),
            source,
        };
        let response = self
            .client
            .post(format!("{base_url}/v5/catalogs/items"))
            .bearer_auth(self.config.access_token.expose_secret())
            .query(&[("ad_account_id", self.config.ad_account_id.as_str())])
            .json(request)
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
            200 => serde_json::from_slice(&body).map_err(CatalogError::UnexpectedResponse),
            401 | 403 => Err(CatalogError::Unauthorized {
                status,
                ad_account_id: ad_account_id(),
                message: message(),
            }),
            404 => Err(CatalogError::NotFound {
                ad_account_id: ad_account_id(),
                message: message(),
            }),
            429 => Err(CatalogError::RateLimited),
            500..=599 => Err(CatalogError::Unavailable { status }),
            _ => Err(CatalogError::Rejected {
                status,
                message: message(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_retail_filter_of_the_spec() {
        let request = CatalogItemsRequest {
            country: "US".into(),
            language: "EN".into(),
            filters: RetailItemsFilter {
                catalog_type: CatalogType::Retail,
                item_ids: vec!["39072856".into()],
            },
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({
                "country": "US",
                "language": "EN",
                "filters": {"catalog_type": "RETAIL", "item_ids": ["39072856"]},
            })
        );
    }

    #[test]
    fn items_count_as_found_and_error_records_do_not() {
        let answer: CatalogItems = serde_json::from_value(serde_json::json!({"items": [
            {"catalog_type": "RETAIL", "item_id": "39072856",
             "attributes": {"title": "iPod Nano"}, "pins": null},
            {"catalog_type": "RETAIL", "item_id": "IPOD2008GREEN",
             "errors": [{"attribute": "item_id", "code": 1, "message": "Item not found"}]},
            {"catalog_type": "RETAIL", "errors": []},
        ]}))
        .unwrap();
        let found: Vec<Option<&str>> = answer.items.iter().map(CatalogItem::found_id).collect();
        assert_eq!(found, [Some("39072856"), None, None]);
        let empty: CatalogItems = serde_json::from_str("{}").unwrap();
        assert!(empty.items.is_empty());
    }
}
