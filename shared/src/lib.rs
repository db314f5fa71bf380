//! pinrelay: Shopify webhooks in, SHA-256-hashed Pinterest Conversions API events out, exactly once.
//!
//! # Layout
//!
//! - [`audiences`]: customer-list audiences: the consent rule, the record hash, the ADD/REMOVE
//!   planner (pure), the [`audiences::AudienceStore`] ledger and its SQLite and DynamoDB adapters,
//!   the sync driver.
//! - [`browser`]: first-party events from the storefront pixel: wire format, profiles (pure).
//! - [`shopify`]: webhook HMAC verification, header metadata, typed payloads (pure); the Admin API
//!   client [`shopify::AdminApi`] (a transport, one module per query: shop, orders, one order's
//!   payload, webhook subscriptions, access scopes, recent line items; static or minted tokens).
//! - [`pinterest`]: the CAPI request model, normalization and hashing (pure), the
//!   [`pinterest::ConversionsApi`] port and its HTTP and dry-run adapters; [`pinterest::quality`],
//!   the Event Quality Score beside the relay's own match-key counts; [`pinterest::catalog`], the
//!   catalog's item ids; [`pinterest::oauth`], a store's sign-in to Pinterest (the token endpoint,
//!   the [`pinterest::oauth::Grant`], when to renew it) and its one refresher at a time (the
//!   [`pinterest::oauth::GrantStore`] port with a lease; SQLite and Secrets Manager adapters).
//! - [`mapping`]: `translate(metadata, body, options, now)`, a Shopify webhook to a
//!   [`mapping::Conversion`] (the event and the order behind it), a stated skip, or a compliance
//!   request; [`mapping::require_identity`], checked once after enrichment (pure).
//! - [`queue`]: the [`queue::Envelope`] that travels from ingest to dispatch, its wire encoding, the
//!   [`queue::Queue`] and [`queue::Inbox`] ports, and their SQS and SQLite adapters.
//! - [`idempotency`]: one record per event, keyed by what it is about: the exactly-once lock, what
//!   became of the event (sent with its match keys, skipped, dead-lettered, in doubt, pending) and
//!   so the merchant's ledger; the [`idempotency::IdempotencyStore`] port and its DynamoDB and
//!   SQLite adapters.
//! - [`profile`]: the [`profile::ProfileStore`] port for shopper profiles from the pixel, its
//!   DynamoDB and SQLite adapters, and [`profile::apply`] (pure).
//! - [`reconcile`]: the shop's orders beside their records: each order sent, skipped, dead-lettered,
//!   pending or missing, per day, as a table, JSON or HTML (pure).
//! - [`registry`]: the stores one relay serves, each with its secrets, ad account and rules, and
//!   the cached [`registry::Directory`] ingest and dispatch ask which store a shop is.
//! - [`watch`]: the hourly watch: webhook subscriptions still point at the relay, recent orders all
//!   reached it ([`watch::watch`] over the Admin API and the records), and the metrics it emits.
//! - [`dynamodb`]: the DynamoDB table the AWS adapters share (feature `dynamodb`).
//! - [`sqlite`]: the relay database the embedded adapters share: worker thread, group commit,
//!   schema and its version (feature `sqlite`).
//! - [`ingest`]: [`ingest::Ingest`], route, verify, enqueue; shared by the Lambda and `pinrelay serve`.
//! - [`dispatch`]: [`dispatch::Dispatcher`], prepare, comply, record, claim, enrich, send, settle;
//!   shared likewise.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines and the metric names of both functions.
//! - [`config`]: environment configuration: one loader per process kind.
//! - [`aws`], [`secrets`]: SDK configuration with timeouts and retry budgets; secrets at start-up.
//! - [`telemetry`]: `tracing` initialization shared by the functions and the CLI.
//! - [`tls`]: the system CA certificates, loaded once for both HTTPS clients.
#![warn(missing_docs)]

pub mod audiences;
#[cfg(feature = "aws-sdk")]
pub mod aws;
pub mod browser;
pub mod config;
pub mod dispatch;
pub mod doctor;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(test)]
mod fixtures;
pub mod idempotency;
pub mod ingest;

pub mod mapping;
pub mod metrics;
pub mod pinterest;
pub mod profile;
pub mod queue;
pub mod reconcile;
pub mod registry;
pub mod retry;
#[cfg(feature = "secretsmanager")]
pub mod secrets;
pub mod shopify;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod telemetry;
pub mod tls;
pub mod watch;
