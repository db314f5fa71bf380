//! AWS SDK configuration: one [`SdkConfig`] per function, loaded once at cold start, with explicit
//! timeouts and retry budgets ([`Budget`]).
//!
//! Every client shares one HTTPS client: rustls on ring, the same crypto provider as the Pinterest
//! client, so a bundle links a single TLS stack (the SDK's default would add aws-lc-rs).
//!
//! [`load`] reads only what Lambda puts in a function's environment: the region (`AWS_REGION`,
//! else `AWS_DEFAULT_REGION`), the credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) and `AWS_ENDPOINT_URL` (so the same binary runs against moto). It skips
//! `aws-config`'s default chain (profiles, SSO, web identity through STS, container and instance
//! metadata): on Lambda the environment is where the credentials are, and the chain's code was a
//! large part of each bundle and of its start-up. The CLI, which runs on laptops, keeps the full
//! chain (`aws_config::load_defaults`).

use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::region::ProvideRegion as _;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// How long an SDK call may take and how often it is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Time to open a connection.
    pub connect: Duration,
    /// Time for one attempt (request sent, response read).
    pub attempt: Duration,
    /// Time for the whole operation, retries and backoff included.
    pub operation: Duration,
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// First retry backoff (jittered, doubling).
    pub initial_backoff: Duration,
    /// Longest retry backoff.
    pub max_backoff: Duration,
}

impl Budget {
    /// Ingest: Shopify allows 1 s to connect and 5 s to answer, so one `SendMessage` may take at
    /// most 2 s in total, and [`crate::ingest::ENQUEUE_TIMEOUT`] (2.5 s) stays the outer bound.
    pub const INGEST: Budget = Budget {
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(1),
        operation: Duration::from_secs(2),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };

    /// Dispatch: batches run for seconds anyway; retry a little harder before giving a message
    /// back to the queue.
    pub const DISPATCH: Budget = Budget {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(3),
        operation: Duration::from_secs(10),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };

    /// Cold start (Secrets Manager): a failure here fails the init, so allow more time.
    pub const STARTUP: Budget = Budget {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(3),
        operation: Duration::from_secs(8),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };

    /// Operator commands (`pinrelay replay`): nobody waits on them but a person, so be patient.
    pub const CLI: Budget = Budget {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(10),
        operation: Duration::from_secs(30),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
    };

    /// The SDK timeout configuration.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    /// The SDK retry configuration (standard mode).
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }
}

/// The endpoint override for every client (moto in tests, a VPC endpoint in production).
const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// Loads the SDK configuration from a Lambda function's environment, with `budget` applied.
/// Credentials are read from the environment when the first request is signed; a function
/// without them fails that request with the SDK's "no credentials" error.
pub async fn load(budget: Budget) -> SdkConfig {
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(crate::tls::roots_pem());
    let mut https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => https = https.tls_context(context),
        // The SDK then loads the system roots itself, as it would by default.
        Err(e) => {
            tracing::warn!(error.message = %e, "cannot share the CA certificates with the AWS SDK")
        }
    }
    let https = https.build_https();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .timeout_config(budget.timeout_config())
        .retry_config(budget.retry_config());
    config.set_region(EnvironmentVariableRegionProvider::new().region().await);
    config.set_endpoint_url(
        std::env::var(ENDPOINT_URL)
            .ok()
            .filter(|url| !url.trim().is_empty()),
    );
    config.build()
}

/// The same configuration (region, credentials, endpoint) with another budget.
pub fn with_budget(config: &SdkConfig, budget: Budget) -> SdkConfig {
    config
        .to_builder()
        .timeout_config(budget.timeout_config())
        .retry_config(budget.retry_config())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_budget_fits_inside_the_enqueue_timeout_and_shopifys_five_seconds() {
        let b = Budget::INGEST;
        assert!(b.operation < crate::ingest::ENQUEUE_TIMEOUT);
        assert!(b.attempt * b.max_attempts + b.max_backoff <= b.operation + b.attempt);
        assert!(b.connect < Duration::from_secs(1));
    }

    #[test]
    fn with_budget_replaces_timeouts_and_retries() {
        let base = SdkConfig::builder()
            .timeout_config(Budget::DISPATCH.timeout_config())
            .build();
        let c = with_budget(&base, Budget::INGEST);
        let t = c.timeout_config().unwrap();
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(t.connect_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(c.retry_config().unwrap().max_attempts(), 2);
    }
}
