//! Shopify's side of the relay: webhook signatures, delivery headers and payload types.
//!
//! Everything here is pure: no I/O, no clock, no environment.

pub mod metadata;
pub mod payload;
pub mod verify;

pub use metadata::{MetadataError, Topic, WebhookMetadata};
pub use verify::{VerifyError, WebhookSecrets, sign, verify};
