//! The Shopify fixtures the library's unit tests share (`tests/fixtures/shopify/`, with their
//! provenance in `tests/fixtures/README.md`).

pub const ORDER_REST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
));
pub const ORDER_SAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/orders-create.shopify-dev-sample-2026-07.json"
));
pub const CHECKOUT_REST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/abandoned-checkout-450789469.rest-2026-07.shopify-app-js.json"
));
pub const CHECKOUT_SAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/checkouts-create.shopify-dev-sample-2026-07.json"
));
pub const CART_SAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/carts-create.shopify-dev-sample-2026-07.json"
));
pub const CUSTOMER_REST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/rest-admin/customer-207119551.rest-2026-07.shopify-app-js.json"
));
pub const CUSTOMER_SAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/customers-create.shopify-dev-sample-2026-07.json"
));
pub const DATA_REQUEST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/customers-data_request.shopify-dev-sample-2026-07.json"
));
pub const CUSTOMERS_REDACT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/customers-redact.shopify-dev-sample-2026-07.json"
));
pub const SHOP_REDACT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/shopify/webhooks/shop-redact.shopify-dev-sample-2026-07.json"
));
