//! Typed Shopify payloads: only the fields the relay uses, all optional, ids as `u64`, money as
//! decimal strings. Unknown fields are ignored.
