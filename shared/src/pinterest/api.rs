//! The [`ConversionsApi`] port: send a batch of events, learn each event's fate.
//!
//! Adapters: [`super::PinterestHttp`] (the real API) and [`super::DryRun`] (prints bodies).

use std::future::Future;
use std::time::Duration;

use super::event::Event;

/// What Pinterest said about one event of a request, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStatus {
    /// Accepted; `warning` carries Pinterest's non-critical remarks, if any.
    Processed {
        /// Pinterest's `warning_message`, when not empty.
        warning: Option<String>,
    },
    /// Rejected for this event's data: sending it again will not help.
    Failed {
        /// Pinterest's `error_message`.
        error_message: String,
    },
}

/// Why a request as a whole did not get per-event statuses.
#[derive(Debug, thiserror::Error)]
pub enum ConversionsApiError {
    /// 429: Pinterest's rate limit; retry after the delay, if one was given.
    #[error("Pinterest rate-limited the request (HTTP 429); it will be retried with backoff")]
    RateLimited {
        /// `Retry-After`, when Pinterest sent one.
        retry_after: Option<Duration>,
    },
    /// 5xx: Pinterest is unavailable.
    #[error("Pinterest answered HTTP {status}; the events will be retried with backoff")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// The connection could not be made: nothing was sent.
    #[error("could not reach Pinterest ({0}); the events will be retried with backoff")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request was sent but no answer came (timed out, connection lost): Pinterest may have
    /// the events, so they are in doubt.
    #[error(
        "Pinterest did not answer a request it may have received ({0}); its events are in doubt and are not resent on their own"
    )]
    NoAnswer(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 401/403/404: the access token is missing, revoked, or lacks a role on the ad account, or the
    /// ad account id is wrong.
    #[error(
        "Pinterest refused the access token (HTTP {status}: {message}); generate a conversion access token in Ads Manager for ad account PINTEREST_AD_ACCOUNT_ID and update PINTEREST_ACCESS_TOKEN or its secret; events are kept and retried"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Pinterest's error message.
        message: String,
    },
    /// 400 (or 404): the request as a whole is invalid; some event in it is to blame, or the ad
    /// account id is wrong.
    #[error("Pinterest rejected the request (HTTP {status}: {message})")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Pinterest's error message.
        message: String,
    },
    /// A 200/422 whose body does not list one status per event.
    #[error("Pinterest's response could not be read as per-event statuses: {0}")]
    UnexpectedResponse(String),
}

impl ConversionsApiError {
    /// True when the same events should be sent again later (they are kept and backed off);
    /// false when sending them again cannot succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Unavailable { .. }
            | Self::Transport(_)
            | Self::Unauthorized { .. } => true,
            // The request may have been applied: see `is_in_doubt`.
            Self::NoAnswer(_) | Self::UnexpectedResponse(_) => false,
            Self::Rejected { .. } => false,
        }
    }

    /// True when Pinterest may have recorded the events without the relay knowing: no answer came
    /// to a request that was sent, or the answer cannot be read. Resending could count them twice
    /// (Pinterest documents no deduplication between two Conversions API events).
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, Self::NoAnswer(_) | Self::UnexpectedResponse(_))
    }

    /// True for token problems, which need a human and raise the auth-failure alarm.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// A short stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Transport(_) => "transport",
            Self::NoAnswer(_) => "no_answer",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Rejected { .. } => "rejected",
            Self::UnexpectedResponse(_) => "unexpected_response",
        }
    }
}

/// Sends conversion events to Pinterest.
pub trait ConversionsApi: Send + Sync + 'static {
    /// Sends 1 to 1000 events in one request.
    ///
    /// # Errors
    /// On success the result MUST hold exactly one [`EventStatus`] per event, in order (a 200 and a
    /// 422 both succeed here: their per-event statuses are the answer). Any other outcome MUST be a
    /// [`ConversionsApiError`] whose [`ConversionsApiError::is_retryable`] tells whether sending the
    /// same events again can succeed.
    fn send(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Result<Vec<EventStatus>, ConversionsApiError>> + Send;
}
