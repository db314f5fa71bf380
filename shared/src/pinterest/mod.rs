//! Pinterest's side of the relay: the Conversions API request model, normalization and hashing of
//! user data, the [`ConversionsApi`] port, and its adapters; [`quality`], Pinterest's Event
//! Quality Score beside the relay's own match-key counts; [`catalog`], which item ids the ad
//! account's catalog holds; [`oauth`], the store's sign-in to Pinterest and its renewal; and
//! [`audiences`], customer lists and their audiences.

pub mod api;
pub mod audiences;
pub mod catalog;
pub mod dry_run;
pub mod event;
pub mod http;
pub mod match_keys;
pub mod normalize;
pub mod oauth;
pub mod quality;

pub use api::{ConversionsApi, ConversionsApiError, EventStatus};
pub use catalog::CatalogError;
pub use dry_run::DryRun;
pub use event::{ActionSource, Content, CustomData, Event, EventBatch, UserData};
pub use http::{PinterestHttp, PinterestHttpConfig};
pub use match_keys::{MatchKeyCounts, MatchKeys};
pub use quality::{
    Component, ComponentRow, ComponentScore, IngestionSource, Issue, Lookback, OverallStatus,
    QualityError, QualityScore, relay_percent,
};
