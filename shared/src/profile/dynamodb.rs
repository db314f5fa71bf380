//! [`DynamoDbProfileStore`]: shopper profiles in the relay's DynamoDB table, beside the
//! idempotency records (see [`crate::dynamodb`]).
//!
//! One item per order, one profile per checkout token in it:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `order#{shop}#{order_id}` |
//! | `p_{token hash}` | S | the [`Profile`] recorded with that checkout token (`p_-` without one), as JSON |
//! | `profiles` | N | how many tokens the item holds (at most [`MAX_PROFILES_PER_ORDER`]) |
//! | `expires_at` | N | Unix seconds; the table's TTL attribute |
//!
//! A put is one conditional `UpdateItem` (the token's attribute must not exist yet), so a forged
//! record never displaces the shopper's own. Items of the format before (`profile` and
//! `checkout_token_sha256`) read as one profile. DynamoDB deletes expired items lazily, so reads
//! compare `expires_at` themselves.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{
    MAX_PROFILES_PER_ORDER, ProfileError, ProfileStore, Stored, profile_key, shop_profile_prefix,
};
use crate::browser::Profile;
use crate::dynamodb::{EXPIRES_AT, ID, Table, TableError};

/// Before per-token profiles: the one profile of the order.
const PROFILE: &str = "profile";
/// The profiles of one token start with this, then the token hash.
const PER_TOKEN: &str = "p_";
/// How many tokens the item holds.
const COUNT: &str = "profiles";

impl From<TableError> for ProfileError {
    fn from(e: TableError) -> Self {
        ProfileError::Unavailable(Box::new(e))
    }
}

/// Shopper profiles in a DynamoDB table (partition key `id`, TTL attribute `expires_at`).
#[derive(Debug, Clone)]
pub struct DynamoDbProfileStore {
    table: Table,
}

impl DynamoDbProfileStore {
    /// Profiles in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

impl ProfileStore for DynamoDbProfileStore {
    async fn put_profile(
        &self,
        shop: &str,
        order_id: u64,
        profile: &Profile,
        expires_at: i64,
        now: DateTime<Utc>,
    ) -> Result<Stored, ProfileError> {
        let id = profile_key(shop, order_id);
        let json = super::encode(&id, profile)?;
        let slot = format!(
            "{PER_TOKEN}{}",
            profile.checkout_token_sha256.as_deref().unwrap_or("-")
        );
        let n = |v: i64| AttributeValue::N(v.to_string());
        // An expired item is replaced whole; a live one takes a new token, never a known one.
        let expired = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .item(ID, AttributeValue::S(id.clone()))
            .item(&slot, AttributeValue::S(json.clone()))
            .item(COUNT, n(1))
            .item(EXPIRES_AT, n(expires_at))
            .condition_expression("attribute_exists(#id) AND #expires_at <= :now")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match expired {
            Ok(_) => return Ok(Stored::Recorded),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_)
                ) => {}
            Err(e) => return Err(self.table.error("PutItem", e).into()),
        }
        let update = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key(ID, AttributeValue::S(id))
            .update_expression(
                "SET #slot = :profile, #expires_at = :expires, \
                 #count = if_not_exists(#count, :zero) + :one",
            )
            .condition_expression(
                "attribute_not_exists(#slot) AND (attribute_not_exists(#count) OR #count < :max)",
            )
            .expression_attribute_names("#slot", slot)
            .expression_attribute_names("#count", COUNT)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":profile", AttributeValue::S(json))
            .expression_attribute_values(":expires", n(expires_at))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(i64::from(MAX_PROFILES_PER_ORDER)));
        match update.send().await {
            Ok(_) => Ok(Stored::Recorded),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(Stored::KeptEarlier)
            }
            Err(e) => Err(self.table.error("UpdateItem", e).into()),
        }
    }

    async fn get_profiles(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Profile>, ProfileError> {
        let id = profile_key(shop, order_id);
        match self.table.get(&id).await? {
            Some(item) => parse(&id, &item, now),
            None => Ok(Vec::new()),
        }
    }

    async fn delete_profiles(&self, shop: &str, order_ids: &[u64]) -> Result<(), ProfileError> {
        let ids: Vec<String> = order_ids.iter().map(|id| profile_key(shop, *id)).collect();
        Ok(self.table.delete_ids(&ids).await?)
    }

    async fn delete_shop_profiles(&self, shop: &str) -> Result<u64, ProfileError> {
        Ok(self
            .table
            .delete_prefixes(&[shop_profile_prefix(shop)])
            .await?)
    }
}

/// Reads a stored order item's profiles; an expired item reads as none (TTL deletes lazily).
fn parse(
    id: &str,
    item: &HashMap<String, AttributeValue>,
    now: DateTime<Utc>,
) -> Result<Vec<Profile>, ProfileError> {
    let corrupt = |why: String| ProfileError::Corrupt {
        key: id.to_owned(),
        why,
    };
    let expires_at = match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|_| corrupt("expires_at is not a whole number".to_owned()))?,
        _ => return Err(corrupt("expires_at is missing or not a number".to_owned())),
    };
    if expires_at <= now.timestamp() {
        return Ok(Vec::new());
    }
    let mut profiles = Vec::new();
    for (name, value) in item {
        if name != PROFILE && !name.starts_with(PER_TOKEN) {
            continue;
        }
        let AttributeValue::S(json) = value else {
            return Err(corrupt(format!("{name} is not a string")));
        };
        profiles.push(super::decode(id, json)?);
    }
    if profiles.is_empty() {
        return Err(corrupt("the item holds no profile".to_owned()));
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expires_at: &str, profile: Option<&str>) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            (ID.to_owned(), AttributeValue::S("order#a#1".into())),
            (EXPIRES_AT.to_owned(), AttributeValue::N(expires_at.into())),
        ]);
        if let Some(p) = profile {
            item.insert(PROFILE.to_owned(), AttributeValue::S(p.into()));
        }
        item
    }

    #[test]
    fn reads_live_profiles_and_treats_expired_ones_as_absent() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let live = parse("k", &item("200", Some(r#"{"click_id":"c"}"#)), now).unwrap();
        assert_eq!(live[0].click_id.as_deref(), Some("c"));
        assert!(
            parse("k", &item("100", Some("{}")), now)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn reports_corrupt_items_as_profile_errors() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        for bad in [
            item("soon", Some("{}")),
            item("200", None),
            item("200", Some("[1")),
        ] {
            let e = parse("order#a#1", &bad, now).unwrap_err();
            assert!(matches!(e, ProfileError::Corrupt { .. }));
            assert!(e.to_string().starts_with("the shopper profile"), "{e}");
        }
    }
}
