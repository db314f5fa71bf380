//! Shopify's side of the relay: webhook signatures, delivery headers and payload types, and the
//! Admin API client.
//!
//! Everything here is pure (no I/O, no clock, no environment) except [`admin`], the HTTP client of
//! the Admin API.

pub mod admin;
pub mod metadata;
pub mod payload;
pub mod verify;

pub use admin::{
    AdminApi, AdminError, AdminOrder, RetryPolicy, ShopInfo, SubscriptionCreated,
    WebhookSubscription,
};
pub use metadata::{MetadataError, Topic, WebhookMetadata};
pub use verify::{VerifyError, WebhookSecrets, sign, verify};
