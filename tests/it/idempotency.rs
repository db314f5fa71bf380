//! The idempotency store contract ([`pinrelay::idempotency::contract`]) run against
//! [`DynamoDbIdempotencyStore`] on moto.

use pinrelay::idempotency::contract;
use pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore;

use crate::helpers::TestEnv;

#[tokio::test]
async fn dynamodb_store_passes_the_idempotency_contract() {
    let env = TestEnv::start().await;
    let store = DynamoDbIdempotencyStore::new(env.dynamodb.clone(), &env.table);
    contract::run_all(&store).await;
}
