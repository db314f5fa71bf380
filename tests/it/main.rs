//! Integration tests: real AWS-protocol server (moto), a local fake Pinterest that validates every
//! body against Pinterest's schema, and the real binaries. See `helpers.rs` for `TestEnv`.

mod admin;
mod audience_job;
mod audiences;
mod browser;
mod cli;
mod dispatch;
mod doctor;
mod fake_pinterest;
mod fake_shopify;
mod helpers;
mod idempotency;
mod ingest;
mod lambda_stores;
mod limits;
mod oauth;
mod quality;
mod queue;
mod reconcile;
mod registry;
mod relay;
mod replay;
mod report;
mod runtime_api;
mod serve;
mod stores;
mod subscribe;
mod template;
mod watch;
