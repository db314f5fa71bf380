//! [`DynamoDbProfileStore`]: shopper profiles in the relay's DynamoDB table, beside the
//! idempotency records (see [`crate::dynamodb`]).
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `order#{shop}#{order_id}` |
//! | `profile` | S | the [`Profile`] as JSON |
//! | `checkout_token_sha256` | S | the profile's checkout token hash, when it has one |
//! | `expires_at` | N | Unix seconds; the table's TTL attribute |
//!
//! DynamoDB deletes expired items lazily, so reads compare `expires_at` themselves.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{ProfileError, ProfileStore, Stored, profile_key, shop_profile_prefix};
use crate::browser::Profile;
use crate::dynamodb::{EXPIRES_AT, ID, Table, TableError, live_string};

const PROFILE: &str = "profile";
/// The profile's checkout token hash, on its own for the first-write-wins condition.
const TOKEN: &str = "checkout_token_sha256";

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
        let mut put = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .item(ID, AttributeValue::S(id))
            .item(PROFILE, AttributeValue::S(json))
            .item(EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()));
        // The first live profile wins unless the new one has its checkout token.
        put = match &profile.checkout_token_sha256 {
            Some(token) => put
                .item(TOKEN, AttributeValue::S(token.clone()))
                .expression_attribute_values(":token", AttributeValue::S(token.clone()))
                .condition_expression(
                    "attribute_not_exists(#id) OR #expires_at <= :now OR #token = :token",
                ),
            None => put.condition_expression(
                "attribute_not_exists(#id) OR #expires_at <= :now OR attribute_not_exists(#token)",
            ),
        };
        match put.send().await {
            Ok(_) => Ok(Stored::Recorded),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(Stored::KeptEarlier)
            }
            Err(e) => Err(self.table.error("PutItem", e).into()),
        }
    }

    async fn get_profile(
        &self,
        shop: &str,
        order_id: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, ProfileError> {
        let id = profile_key(shop, order_id);
        match self.table.get(&id).await? {
            Some(item) => parse(&id, &item, now),
            None => Ok(None),
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

/// Reads a stored profile item; an expired one reads as `None` (TTL deletes lazily).
fn parse(
    id: &str,
    item: &HashMap<String, AttributeValue>,
    now: DateTime<Utc>,
) -> Result<Option<Profile>, ProfileError> {
    let json = live_string(item, PROFILE, now).map_err(|why| ProfileError::Corrupt {
        key: id.to_owned(),
        why,
    })?;
    json.map(|json| super::decode(id, json)).transpose()
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
        assert_eq!(live.and_then(|p| p.click_id).as_deref(), Some("c"));
        assert_eq!(parse("k", &item("100", Some("{}")), now).unwrap(), None);
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
