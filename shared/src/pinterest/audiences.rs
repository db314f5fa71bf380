//! Customer lists and their audiences (OpenAPI 5.23 `customer_lists/create`, `/update`, `/get`,
//! `/list` and `audiences/create`, scopes `ads:read` and `ads:write`): the [`CustomerListsApi`] port the
//! audience sync ([`crate::audiences::sync()`]) talks to, and its HTTP adapter
//! [`PinterestAudiences`] over [`PinterestHttp`]'s client.
//!
//! `records` is one comma-separated string of SHA-256 hex digests, never an array. A 429 is
//! retried after `Retry-After` (or a doubling wait) a bounded number of times; a `PATCH` is also
//! retried on 5xx or a lost answer, since adding or removing the same records twice changes
//! nothing, but a `POST` that creates is not (it could create a second list). The token comes from
//! an [`ApiTokenSource`], so the OAuth sign-in can supply it later. Records are never logged.

use std::future::Future;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::http::PinterestHttp;
use crate::audiences::Operation;
use crate::retry::{Failure, exponential, retry};

/// Where the API token (an OAuth token with `ads:write`) comes from. The conversion token of
/// Ads Manager cannot call customer lists.
pub trait ApiTokenSource: Send + Sync {
    /// The current access token.
    ///
    /// # Errors
    /// MUST return an error a merchant can act on (sign in again, set `PINTEREST_API_TOKEN`).
    fn access_token(
        &self,
    ) -> impl Future<Output = Result<SecretString, Box<dyn std::error::Error + Send + Sync>>> + Send;

    /// The token read again after Pinterest answered 401 (a sign-in's refresher may have renewed
    /// it since); `None` when there is nothing newer to read, as for a token given once.
    fn reread(&self) -> impl Future<Output = Option<SecretString>> + Send {
        async { None }
    }
}

/// A store's Pinterest sign-in: its current access token, read again after a 401.
impl<S: crate::pinterest::oauth::GrantStore> ApiTokenSource
    for crate::pinterest::oauth::ApiToken<S>
{
    async fn access_token(&self) -> Result<SecretString, Box<dyn std::error::Error + Send + Sync>> {
        match self.get().await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(
                "the store is not signed in to Pinterest: run `pinrelay pinterest login`".into(),
            ),
            Err(e) => Err(Box::new(e)),
        }
    }

    async fn reread(&self) -> Option<SecretString> {
        crate::pinterest::oauth::ApiToken::reread(self)
            .await
            .ok()
            .flatten()
    }
}

/// A token given once: `PINTEREST_API_TOKEN`, or a registered store's `pinterest_api_token`.
#[derive(Clone)]
pub struct StaticToken(pub SecretString);

impl ApiTokenSource for StaticToken {
    async fn access_token(&self) -> Result<SecretString, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.clone())
    }
}

/// A customer list as Pinterest describes it (`CustomerList`); counters are ignored, since they
/// count uploads, not matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CustomerListInfo {
    /// The list id.
    pub id: String,
    /// `PROCESSING`, `READY`, `TOO_SMALL` (fewer than 100 matched users) or `UPLOADING`.
    #[serde(default)]
    pub status: Option<String>,
}

/// One page of `GET …/customer_lists` (`Paginated` of `CustomerList`).
#[derive(Debug, Deserialize)]
struct ListPage {
    #[serde(default)]
    items: Vec<NamedList>,
    #[serde(default)]
    bookmark: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedList {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// Lists per page of [`CustomerListsApi::find_list`]: the most the spec allows.
const LIST_PAGE_SIZE: u32 = 250;

/// Pages [`CustomerListsApi::find_list`] reads at most (an ad account with more lists than
/// that is not searched further).
const LIST_PAGES: usize = 40;

/// An audience as Pinterest describes it (`Audience`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AudienceInfo {
    /// The audience id: what a campaign targets or excludes.
    pub id: String,
    /// `READY`, `INITIALIZING` or `TOO_SMALL`.
    #[serde(default)]
    pub status: Option<String>,
}

/// Why a customer-list call failed.
#[derive(Debug, thiserror::Error)]
pub enum AudienceApiError {
    /// No token could be had.
    #[error("no Pinterest API token for customer lists; set PINTEREST_API_TOKEN or sign in")]
    Token(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 401 or 403.
    #[error(
        "Pinterest refused the customer-list call on ad account {ad_account_id} (HTTP {status}: {message}): the token needs the ads:write scope and its user the audience access level on that ad account"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The ad account.
        ad_account_id: String,
        /// Pinterest's message.
        message: String,
    },
    /// 404.
    #[error(
        "Pinterest found no such ad account or customer list (HTTP 404: {message}); check the ad account id, or whether the list was deleted in Ads Manager"
    )]
    NotFound {
        /// Pinterest's message.
        message: String,
    },
    /// 429 after every retry.
    #[error(
        "Pinterest kept rate-limiting the customer-list calls (HTTP 429, {attempts} attempts); run the sync again later"
    )]
    RateLimited {
        /// How many attempts were made.
        attempts: u32,
    },
    /// 5xx.
    #[error("Pinterest is unavailable (HTTP {status}); run the sync again later, it resumes")]
    Unavailable {
        /// The status.
        status: u16,
    },
    /// 400 or any other status.
    #[error("Pinterest rejected the customer-list call (HTTP {status}: {message})")]
    Rejected {
        /// The status.
        status: u16,
        /// Pinterest's message.
        message: String,
    },
    /// No answer.
    #[error("could not reach Pinterest at {base_url}; check the network and PINTEREST_API_URL")]
    Transport {
        /// Where the request went.
        base_url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx whose body could not be read.
    #[error("Pinterest's answer to the customer-list call could not be read")]
    UnexpectedResponse(#[source] serde_json::Error),
}

/// The customer-list calls of one ad account.
pub trait CustomerListsApi: Send + Sync {
    /// `POST …/customer_lists`: creates an `EMAIL` list named `name` holding `records`.
    ///
    /// # Errors
    /// MUST NOT retry anything but a 429: a retried creation could make a second list.
    fn create_list(
        &self,
        name: &str,
        records: &str,
    ) -> impl Future<Output = Result<CustomerListInfo, AudienceApiError>> + Send;

    /// `PATCH …/customer_lists/{list_id}`: `ADD` or `REMOVE` the records.
    ///
    /// # Errors
    /// An [`AudienceApiError`]; `Ok` only once Pinterest accepted the request.
    fn update_list(
        &self,
        list_id: &str,
        operation: Operation,
        records: &str,
    ) -> impl Future<Output = Result<(), AudienceApiError>> + Send;

    /// `GET …/customer_lists` (every page): the first list named `name`, if any. The sync asks
    /// before creating one, so a creation whose answer was lost is found rather than repeated.
    ///
    /// # Errors
    /// An [`AudienceApiError`].
    fn find_list(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<CustomerListInfo>, AudienceApiError>> + Send;

    /// `GET …/customer_lists/{list_id}`: the list and its status.
    ///
    /// # Errors
    /// An [`AudienceApiError`].
    fn get_list(
        &self,
        list_id: &str,
    ) -> impl Future<Output = Result<CustomerListInfo, AudienceApiError>> + Send;

    /// `POST …/audiences`: a `CUSTOMER_LIST` audience named `name` over `list_id`.
    ///
    /// # Errors
    /// As [`CustomerListsApi::create_list`].
    fn create_audience(
        &self,
        name: &str,
        list_id: &str,
    ) -> impl Future<Output = Result<AudienceInfo, AudienceApiError>> + Send;
}

/// The body of `POST …/customer_lists`.
#[derive(Debug, Serialize)]
struct CreateList<'a> {
    name: &'a str,
    records: &'a str,
    list_type: &'static str,
}

/// The body of `PATCH …/customer_lists/{id}`.
#[derive(Debug, Serialize)]
struct UpdateList<'a> {
    operation_type: Operation,
    records: &'a str,
}

/// The body of `POST …/audiences`.
#[derive(Debug, Serialize)]
struct CreateAudience<'a> {
    audience_type: &'static str,
    name: &'a str,
    rule: Rule<'a>,
}

#[derive(Debug, Serialize)]
struct Rule<'a> {
    customer_list_id: &'a str,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: Option<String>,
}

/// How [`PinterestAudiences`] retries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts per request, at least 1.
    pub max_attempts: u32,
    /// The first wait without `Retry-After`, doubled each time.
    pub first: Duration,
    /// The longest wait, `Retry-After` included.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

/// The [`CustomerListsApi`] over HTTP: [`PinterestHttp`]'s client, base URL and ad account, with
/// its own token.
#[derive(Clone)]
pub struct PinterestAudiences<T> {
    http: PinterestHttp,
    tokens: T,
    backoff: Backoff,
}

impl PinterestAudiences<StaticToken> {
    /// The customer lists of `ad_account_id` at Pinterest's `base_url`, called with `token` (a
    /// sign-in's or `PINTEREST_API_TOKEN`), each request allowed `request_timeout`.
    ///
    /// # Errors
    /// The HTTPS client cannot be built.
    pub fn with_token(
        base_url: &str,
        ad_account_id: &str,
        token: SecretString,
        request_timeout: std::time::Duration,
    ) -> Result<Self, reqwest::Error> {
        Self::with_tokens(base_url, ad_account_id, StaticToken(token), request_timeout)
    }
}

impl<T: ApiTokenSource> PinterestAudiences<T> {
    /// [`PinterestAudiences::with_token`] with the tokens of `tokens` (a sign-in read again
    /// after a 401).
    ///
    /// # Errors
    /// The HTTPS client cannot be built.
    pub fn with_tokens(
        base_url: &str,
        ad_account_id: &str,
        tokens: T,
        request_timeout: std::time::Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = PinterestHttp::new(crate::pinterest::PinterestHttpConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            ad_account_id: ad_account_id.to_owned(),
            access_token: String::new().into(),
            test_mode: false,
            connect_timeout: std::time::Duration::from_secs(5).min(request_timeout),
            request_timeout,
        })?;
        Ok(Self::new(http, tokens))
    }

    /// Calls through `http`'s client (its conversion token is not used) with `tokens`' token.
    pub fn new(http: PinterestHttp, tokens: T) -> Self {
        Self {
            http,
            tokens,
            backoff: Backoff::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/v5/ad_accounts/{}/{path}",
            self.http.config.base_url.trim_end_matches('/'),
            self.http.config.ad_account_id
        )
    }

    /// Sends one request, retrying 429s (and, when `idempotent`, 5xx and lost answers), and
    /// parses a 2xx body as `R`. A 401 is tried once more with the token read again, when it
    /// changed (a 401 means Pinterest did not act on the request, so even a creation may go
    /// again).
    async fn call<R: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        method: reqwest::Method,
        url: String,
        body: Option<serde_json::Value>,
        idempotent: bool,
    ) -> Result<R, AudienceApiError> {
        let token = self
            .tokens
            .access_token()
            .await
            .map_err(AudienceApiError::Token)?;
        let first = self
            .call_with(
                &token,
                what,
                method.clone(),
                url.clone(),
                body.clone(),
                idempotent,
            )
            .await;
        match first {
            Err(AudienceApiError::Unauthorized { status: 401, .. }) => {
                match self.tokens.reread().await {
                    Some(renewed) if renewed.expose_secret() != token.expose_secret() => {
                        self.call_with(&renewed, what, method, url, body, idempotent)
                            .await
                    }
                    _ => first,
                }
            }
            other => other,
        }
    }

    /// [`Self::call`] with `token`.
    async fn call_with<R: for<'de> Deserialize<'de>>(
        &self,
        token: &SecretString,
        what: &str,
        method: reqwest::Method,
        url: String,
        body: Option<serde_json::Value>,
        idempotent: bool,
    ) -> Result<R, AudienceApiError> {
        let backoff = self.backoff;
        let attempts = backoff.max_attempts.max(1);
        let base_url = self.http.config.base_url.clone();
        retry(what, attempts, |n| {
            let mut request = self
                .http
                .client
                .request(method.clone(), &url)
                .bearer_auth(token.expose_secret());
            if let Some(body) = &body {
                request = request.json(body);
            }
            let base_url = base_url.clone();
            async move {
                let wait = exponential(backoff.first, n, backoff.max);
                let transport = |source| AudienceApiError::Transport {
                    base_url: base_url.clone(),
                    source,
                };
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) if idempotent || e.is_connect() => {
                        return Err(Failure::Retry {
                            wait,
                            error: transport(e),
                        });
                    }
                    Err(e) => return Err(Failure::Fatal(transport(e))),
                };
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(backoff.max.as_secs_f64())));
                let body = match response.bytes().await {
                    Ok(body) => body,
                    // The request was received: only an idempotent one may go again.
                    Err(e) if idempotent => {
                        return Err(Failure::Retry {
                            wait,
                            error: transport(e),
                        });
                    }
                    Err(e) => return Err(Failure::Fatal(transport(e))),
                };
                let message = || {
                    serde_json::from_slice::<ApiError>(&body)
                        .ok()
                        .and_then(|e| e.message)
                        .unwrap_or_else(|| {
                            String::from_utf8_lossy(&body).chars().take(300).collect()
                        })
                };
                match status {
                    200..=299 => serde_json::from_slice(&body)
                        .map_err(|e| Failure::Fatal(AudienceApiError::UnexpectedResponse(e))),
                    401 | 403 => Err(Failure::Fatal(AudienceApiError::Unauthorized {
                        status,
                        ad_account_id: self.http.config.ad_account_id.clone(),
                        message: message(),
                    })),
                    404 => Err(Failure::Fatal(AudienceApiError::NotFound {
                        message: message(),
                    })),
                    429 => Err(Failure::Retry {
                        wait: retry_after.unwrap_or(wait),
                        error: AudienceApiError::RateLimited { attempts },
                    }),
                    500..=599 if idempotent => Err(Failure::Retry {
                        wait,
                        error: AudienceApiError::Unavailable { status },
                    }),
                    500..=599 => Err(Failure::Fatal(AudienceApiError::Unavailable { status })),
                    _ => Err(Failure::Fatal(AudienceApiError::Rejected {
                        status,
                        message: message(),
                    })),
                }
            }
        })
        .await
    }
}

fn to_value<B: Serialize>(body: &B) -> Option<serde_json::Value> {
    // These bodies are strings and enums only; serializing them cannot fail.
    serde_json::to_value(body).ok()
}

/// Any JSON: a 2xx whose body the caller does not need.
#[derive(Deserialize)]
struct Ignored {}

impl<T: ApiTokenSource> CustomerListsApi for PinterestAudiences<T> {
    async fn create_list(
        &self,
        name: &str,
        records: &str,
    ) -> Result<CustomerListInfo, AudienceApiError> {
        let body = CreateList {
            name,
            records,
            list_type: "EMAIL",
        };
        self.call(
            "customer list creation",
            reqwest::Method::POST,
            self.url("customer_lists"),
            to_value(&body),
            false,
        )
        .await
    }

    async fn update_list(
        &self,
        list_id: &str,
        operation: Operation,
        records: &str,
    ) -> Result<(), AudienceApiError> {
        let body = UpdateList {
            operation_type: operation,
            records,
        };
        let _: Ignored = self
            .call(
                "customer list update",
                reqwest::Method::PATCH,
                self.url(&format!("customer_lists/{list_id}")),
                to_value(&body),
                true,
            )
            .await?;
        Ok(())
    }

    async fn find_list(&self, name: &str) -> Result<Option<CustomerListInfo>, AudienceApiError> {
        let mut bookmark: Option<String> = None;
        for _ in 0..LIST_PAGES {
            let mut url = format!("{}?page_size={LIST_PAGE_SIZE}", self.url("customer_lists"));
            if let Some(b) = &bookmark {
                url.push_str("&bookmark=");
                url.push_str(
                    &url::form_urlencoded::byte_serialize(b.as_bytes()).collect::<String>(),
                );
            }
            let page: ListPage = self
                .call(
                    "customer list lookup",
                    reqwest::Method::GET,
                    url,
                    None,
                    true,
                )
                .await?;
            if let Some(list) = page
                .items
                .into_iter()
                .find(|l| l.name.as_deref() == Some(name))
            {
                return Ok(Some(CustomerListInfo {
                    id: list.id,
                    status: list.status,
                }));
            }
            match page.bookmark.filter(|b| !b.is_empty()) {
                Some(next) => bookmark = Some(next),
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn get_list(&self, list_id: &str) -> Result<CustomerListInfo, AudienceApiError> {
        self.call(
            "customer list status",
            reqwest::Method::GET,
            self.url(&format!("customer_lists/{list_id}")),
            None,
            true,
        )
        .await
    }

    async fn create_audience(
        &self,
        name: &str,
        list_id: &str,
    ) -> Result<AudienceInfo, AudienceApiError> {
        let body = CreateAudience {
            audience_type: "CUSTOMER_LIST",
            name,
            rule: Rule {
                customer_list_id: list_id,
            },
        };
        self.call(
            "audience creation",
            reqwest::Method::POST,
            self.url("audiences"),
            to_value(&body),
            false,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_shapes_of_the_spec() {
        let create = CreateList {
            name: "pinrelay – acme – customers",
            records: "aa,bb",
            list_type: "EMAIL",
        };
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            serde_json::json!({"name": "pinrelay – acme – customers", "records": "aa,bb", "list_type": "EMAIL"})
        );
        let update = UpdateList {
            operation_type: Operation::Remove,
            records: "aa",
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({"operation_type": "REMOVE", "records": "aa"})
        );
        let audience = CreateAudience {
            audience_type: "CUSTOMER_LIST",
            name: "n",
            rule: Rule {
                customer_list_id: "643",
            },
        };
        assert_eq!(
            serde_json::to_value(&audience).unwrap(),
            serde_json::json!({"audience_type": "CUSTOMER_LIST", "name": "n", "rule": {"customer_list_id": "643"}})
        );
    }

    #[test]
    fn a_list_answer_keeps_its_id_and_status() {
        let list: CustomerListInfo = serde_json::from_value(serde_json::json!({
            "ad_account_id": "549756359984", "id": "643", "name": "x", "num_batches": 2,
            "status": "TOO_SMALL", "type": "customerlist"
        }))
        .unwrap();
        assert_eq!(list.id, "643");
        assert_eq!(list.status.as_deref(), Some("TOO_SMALL"));
    }
}
