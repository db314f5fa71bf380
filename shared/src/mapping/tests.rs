//! `translate` against Shopify's published payloads and Pinterest's schema.

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::fixtures::*;
use crate::pinterest::{ActionSource, Content, EventBatch, normalize};

const SCHEMA: &str =
    include_str!("../../../tests/fixtures/pinterest/conversion-events.request.schema.json");

static VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| jsonschema::validator_for(&serde_json::from_str(SCHEMA).unwrap()).unwrap());

const SHOP: &str = "snowdevil.myshopify.com";

fn now() -> DateTime<Utc> {
    "2026-11-29T00:00:00Z".parse().unwrap()
}

fn meta(topic: &str) -> WebhookMetadata {
    WebhookMetadata {
        topic: topic.parse().unwrap(),
        shop_domain: SHOP.to_owned(),
        webhook_id: None,
        event_id: None,
        triggered_at: None,
        api_version: None,
    }
}

/// What the relay decides for a webhook without a shopper profile: translate, then the
/// identity check.
fn run(topic: &str, body: &str, options: &Options) -> Result<Outcome, MappingError> {
    Ok(
        match translate(&meta(topic), body.as_bytes(), options, now())? {
            Outcome::Send(c) => match require_identity(&c.event) {
                Ok(()) => Outcome::Send(c),
                Err(reason) => Outcome::skip(reason),
            },
            other => other,
        },
    )
}

fn event(topic: &str, body: &str, options: &Options) -> Event {
    match run(topic, body, options).unwrap() {
        Outcome::Send(c) => c.event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn skip(topic: &str, body: &str, options: &Options) -> SkipReason {
    match run(topic, body, options).unwrap() {
        Outcome::Skip { reason, .. } => reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

/// The request body of one event, checked against Pinterest's JSON Schema.
fn assert_schema_valid(event: &Event) -> Value {
    let body = serde_json::to_value(EventBatch {
        data: vec![event.clone()],
    })
    .unwrap();
    let errors: Vec<String> = VALIDATOR
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema errors {errors:?} in {body:#}");
    body
}

/// The REST order with `edit` applied to its JSON.
fn rest_order(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(ORDER_REST).unwrap();
    edit(&mut v);
    v.to_string()
}

fn h(normalized: &str) -> Vec<String> {
    vec![normalize::sha256_hex(normalized)]
}

fn defaults() -> Options {
    Options::default()
}

#[test]
fn maps_the_populated_rest_order_to_a_checkout() {
    let e = event("orders/create", ORDER_REST, &defaults());
    assert_eq!(e.event_name, "checkout");
    assert_eq!(e.action_source, ActionSource::Web);
    assert_eq!(e.event_id, "450789469");
    assert_eq!(e.event_time, 1_199_980_800);
    assert_eq!(
        e.event_source_url.as_deref(),
        Some("https://snowdevil.myshopify.com/")
    );
    let u = &e.user_data;
    assert_eq!(u.em, h("bob.norman@mail.example.com"));
    assert_eq!(u.ph, h("557734881234"));
    assert_eq!(u.first_name, h("bob"));
    assert_eq!(u.ln, h("norman"));
    assert_eq!(u.ct, h("louisville"));
    assert_eq!(u.st, h("ky"));
    assert_eq!(u.zp, h("40202"));
    assert_eq!(u.country, h("us"));
    assert_eq!(u.external_id, h("207119551"));
    assert_eq!(u.client_ip_address, None, "0.0.0.0 is a placeholder");
    assert_eq!(u.client_user_agent, None);
    assert_eq!(u.click_id, None);
    let c = e.custom_data.as_ref().unwrap();
    assert_eq!(c.currency.as_deref(), Some("USD"));
    assert_eq!(c.value.as_deref(), Some("195.67"));
    assert_eq!(c.order_id.as_deref(), Some("450789469"));
    assert_eq!(c.num_items, Some(3));
    assert_eq!(c.content_ids, ["39072856", "49148385", "457924702"]);
    assert_eq!(c.contents.len(), 3);
    assert_eq!(
        c.contents[0],
        Content {
            id: "39072856".into(),
            item_price: Some("199.00".into()),
            quantity: Some(1)
        }
    );
    assert_eq!(c.content_name.as_deref(), Some("IPod Nano - 8gb"));
    assert_eq!(c.content_brand, None);
    assert_eq!(e.language, None);
    let body = assert_schema_valid(&e);
    assert!(!body.to_string().contains("imasecretipod"));
    assert!(!body.to_string().contains("bob.norman"));
}

#[test]
fn orders_paid_gives_the_same_event_as_orders_create() {
    assert_eq!(
        event("orders/paid", ORDER_REST, &defaults()),
        event("orders/create", ORDER_REST, &defaults())
    );
}

#[test]
fn skips_the_shopify_dev_sample_as_a_test_order_then_as_cancelled() {
    assert_eq!(
        skip("orders/create", ORDER_SAMPLE, &defaults()),
        SkipReason::TestOrder
    );
    let include = Options {
        include_test_orders: true,
        ..defaults()
    };
    assert_eq!(
        skip("orders/create", ORDER_SAMPLE, &include),
        SkipReason::CancelledOrder
    );
}

#[test]
fn maps_the_shopify_dev_sample_once_included_paid_and_not_cancelled() {
    // Shopify's sample is a cancelled order whose payment was voided.
    let mut v: Value = serde_json::from_str(ORDER_SAMPLE).unwrap();
    v["cancelled_at"] = Value::Null;
    v["financial_status"] = json!("paid");
    let include = Options {
        include_test_orders: true,
        ..defaults()
    };
    let e = event("orders/create", &v.to_string(), &include);
    assert_eq!(e.event_id, "820982911946154508");
    assert_eq!(e.user_data.em, h("jon@example.com"));
    assert_eq!(
        e.user_data.ph,
        Vec::<String>::new(),
        "555 numbers are fictional"
    );
    assert_eq!(e.user_data.external_id, h("115310627314723954"));
    assert_eq!(e.user_data.first_name, h("steve"));
    assert_eq!(e.user_data.ct, h("shippington"));
    assert_eq!(e.language.as_deref(), Some("en"));
    let c = e.custom_data.as_ref().unwrap();
    assert_eq!(c.value.as_deref(), Some("414.95"));
    assert_eq!(c.num_items, Some(5));
    // variant_id is null on every line: the product id stands in; custom lines have neither.
    assert_eq!(c.content_ids, ["788032119674292922"]);
    assert_eq!(c.contents.len(), 3);
    assert_schema_valid(&e);
}

#[test]
fn every_order_and_customer_fixture_gives_a_schema_valid_body() {
    let include = Options {
        include_test_orders: true,
        ..defaults()
    };
    let mut sample: Value = serde_json::from_str(ORDER_SAMPLE).unwrap();
    sample["cancelled_at"] = Value::Null;
    sample["financial_status"] = json!("paid");
    let sample = sample.to_string();
    let cases = [
        ("orders/create", ORDER_REST),
        ("orders/paid", ORDER_REST),
        ("orders/create", sample.as_str()),
        ("orders/paid", sample.as_str()),
        ("customers/create", &registered(CUSTOMER_REST)),
        ("customers/create", &registered(CUSTOMER_SAMPLE)),
    ];
    for (topic, body) in cases {
        for content_id in [
            ContentIdSource::Variant,
            ContentIdSource::Sku,
            ContentIdSource::Product,
            ContentIdSource::Template("shopify_{country}_{product_id}_{variant_id}".into()),
        ] {
            for value_source in [ValueSource::Subtotal, ValueSource::Total] {
                let options = Options {
                    content_id: content_id.clone(),
                    catalog_country: Some("US".into()),
                    value_source,
                    ..include.clone()
                };
                assert_schema_valid(&event(topic, body, &options));
            }
        }
    }
}

#[test]
fn checkouts_are_not_purchases_and_are_skipped() {
    for topic in ["checkouts/create", "checkouts/update"] {
        for body in [CHECKOUT_REST, CHECKOUT_SAMPLE] {
            assert_eq!(
                skip(topic, body, &defaults()),
                SkipReason::UnmappedTopic(topic.to_owned())
            );
        }
    }
}

#[test]
fn skips_carts_order_updates_and_unknown_topics_whatever_their_body() {
    for (topic, body) in [
        ("carts/create", CART_SAMPLE),
        ("orders/updated", ORDER_REST),
        ("refunds/create", "not json at all"),
        ("products/update", ""),
    ] {
        assert_eq!(
            skip(topic, body, &defaults()),
            SkipReason::UnmappedTopic(topic.to_owned())
        );
    }
}

/// A customer fixture as an account registration (`state: enabled`).
fn registered(customer: &str) -> String {
    let mut c: Value = serde_json::from_str(customer).unwrap();
    c["state"] = json!("enabled");
    c.to_string()
}

#[test]
fn a_guest_buyer_imported_or_staff_created_customer_is_not_a_signup() {
    // Shopify's own sample: `state: disabled`, no newsletter tag, as for a guest checkout.
    assert_eq!(
        skip("customers/create", CUSTOMER_SAMPLE, &defaults()),
        SkipReason::NotASignup
    );
    // The REST fixture: disabled, tagged by staff, not subscribed.
    assert_eq!(
        skip("customers/create", CUSTOMER_REST, &defaults()),
        SkipReason::NotASignup
    );
    let sample: Value = serde_json::from_str(CUSTOMER_SAMPLE).unwrap();
    for (state, tags, consent) in [
        ("invited", "", "not_subscribed"),
        ("declined", "", "not_subscribed"),
        // A guest who ticked "email me" at checkout: consent, but no newsletter form.
        ("disabled", "", "subscribed"),
        // An import tagged newsletter by the merchant, without consent.
        ("disabled", "newsletter, import", "not_subscribed"),
        ("disabled", "newsletter", "unsubscribed"),
    ] {
        let mut c = sample.clone();
        c["state"] = json!(state);
        c["tags"] = json!(tags);
        c["email_marketing_consent"] = json!({"state": consent, "opt_in_level": "single_opt_in"});
        assert_eq!(
            skip("customers/create", &c.to_string(), &defaults()),
            SkipReason::NotASignup,
            "{state} {tags:?} {consent}"
        );
    }
}

#[test]
fn an_account_registration_or_a_newsletter_signup_is_a_signup() {
    let sample: Value = serde_json::from_str(CUSTOMER_SAMPLE).unwrap();
    for (state, tags, consent) in [
        ("enabled", "", "not_subscribed"),
        ("ENABLED", "", "subscribed"),
        ("disabled", "newsletter", "subscribed"),
        ("disabled", "Newsletter, vip", "pending"),
    ] {
        let mut c = sample.clone();
        c["state"] = json!(state);
        c["tags"] = json!(tags);
        c["email_marketing_consent"] = json!({"state": consent});
        let e = event("customers/create", &c.to_string(), &defaults());
        assert_eq!(e.event_name, "signup", "{state} {tags:?} {consent}");
    }
    let mut listed = sample.clone();
    listed["tags"] = json!(["newsletter"]);
    listed["email_marketing_consent"] = json!({"state": "subscribed"});
    assert_eq!(
        event("customers/create", &listed.to_string(), &defaults()).event_name,
        "signup",
        "tags as a list"
    );
}

/// The REST order fixture from another source.
fn order_from(source: Option<&str>) -> String {
    rest_order(|o| o["source_name"] = source.map_or(Value::Null, |s| json!(s)))
}

#[test]
fn only_the_online_stores_checkout_is_a_web_checkout_by_default() {
    assert_eq!(
        event("orders/create", &order_from(Some("web")), &defaults()).action_source,
        ActionSource::Web
    );
    assert_eq!(
        event("orders/create", &order_from(None), &defaults()).event_name,
        "checkout",
        "a payload without source_name is taken as the online store"
    );
    for (source, reason) in [
        ("shopify_draft_order", SkipReason::DraftOrder),
        ("subscription_contract", SkipReason::SubscriptionRenewal),
        (
            "subscription_contract_checkout_one",
            SkipReason::SubscriptionRenewal,
        ),
        ("2329312", SkipReason::SalesChannel("2329312".into())),
        ("iphone", SkipReason::SalesChannel("iphone".into())),
        ("Amazon", SkipReason::SalesChannel("amazon".into())),
    ] {
        assert_eq!(
            skip("orders/create", &order_from(Some(source)), &defaults()),
            reason,
            "{source}"
        );
    }
}

#[test]
fn order_sources_lets_a_merchant_send_other_channels() {
    let options = Options {
        order_sources: vec!["web".into(), "shopify_draft_order".into(), "2329312".into()],
        ..defaults()
    };
    for source in ["web", "shopify_draft_order", "2329312"] {
        let e = event("orders/create", &order_from(Some(source)), &options);
        assert_eq!(e.action_source, ActionSource::Web, "{source}");
    }
    assert_eq!(
        skip(
            "orders/create",
            &order_from(Some("subscription_contract")),
            &options
        ),
        SkipReason::SubscriptionRenewal
    );
    // POS keeps its own switch, whatever ORDER_SOURCES says.
    assert_eq!(
        skip("orders/create", &order_from(Some("pos")), &options),
        SkipReason::PosOrder
    );
}

#[test]
fn maps_customers_create_to_a_signup() {
    let e = event(
        "customers/create",
        &registered(CUSTOMER_SAMPLE),
        &defaults(),
    );
    assert_eq!(e.event_name, "signup");
    assert_eq!(e.event_id, "signup-706405506930370084");
    assert_eq!(e.event_time, 1_640_995_200);
    assert_eq!(e.user_data.em, h("bob@biller.com"));
    assert_eq!(e.user_data.first_name, h("bob"));
    assert_eq!(e.user_data.ln, h("biller"));
    assert_eq!(e.user_data.external_id, h("706405506930370084"));
    assert_eq!(e.user_data.zp, h("k2p2l8"));
    assert_eq!(e.user_data.st, h("on"));
    assert_eq!(e.user_data.country, h("ca"));
    assert_eq!(e.user_data.ct, h("ottawa"));
    assert_eq!(e.custom_data, None);
    assert_schema_valid(&e);
    let e = event("customers/create", &registered(CUSTOMER_REST), &defaults());
    assert_eq!(e.event_id, "signup-207119551");
    assert_eq!(e.user_data.ph, h("16136120707"));
}

#[test]
fn signup_without_an_email_is_not_enough_identity() {
    let body = json!({"id": 1, "created_at": "2026-01-01T00:00:00Z", "phone": "+16136120707",
                      "state": "enabled"});
    assert_eq!(
        skip("customers/create", &body.to_string(), &defaults()),
        SkipReason::NotEnoughIdentity
    );
}

#[test]
fn signup_needs_an_id_and_a_creation_time() {
    let no_id =
        json!({"email": "a@b.co", "created_at": "2026-01-01T00:00:00Z", "state": "enabled"});
    let err = run("customers/create", &no_id.to_string(), &defaults()).unwrap_err();
    assert!(matches!(
        err,
        MappingError::MissingField { field: "id", .. }
    ));
    let no_time = json!({"id": 1, "email": "a@b.co", "state": "enabled"});
    let err = run("customers/create", &no_time.to_string(), &defaults()).unwrap_err();
    assert!(matches!(
        err,
        MappingError::MissingField {
            field: "created_at",
            ..
        }
    ));
}

/// A compliance sample as Shopify sends it for [`SHOP`]: the samples say `{shop}.myshopify.com`.
fn for_shop(sample: &str) -> String {
    sample.replace("{shop}.myshopify.com", SHOP)
}

#[test]
fn maps_compliance_topics_to_compliance_requests() {
    assert_eq!(
        run(
            "customers/data_request",
            &for_shop(DATA_REQUEST),
            &defaults()
        )
        .unwrap(),
        Outcome::Compliance(ComplianceRequest::DataRequest {
            shop_domain: SHOP.into(),
            customer_id: Some(191_167),
            orders_requested: vec![299_938, 280_263, 220_458],
        })
    );
    assert_eq!(
        run("customers/redact", &for_shop(CUSTOMERS_REDACT), &defaults()).unwrap(),
        Outcome::Compliance(ComplianceRequest::CustomerRedact {
            shop_domain: SHOP.into(),
            customer_id: Some(191_167),
            orders_to_redact: vec![299_938, 280_263, 220_458],
        })
    );
    assert_eq!(
        run("shop/redact", &for_shop(SHOP_REDACT), &defaults()).unwrap(),
        Outcome::Compliance(ComplianceRequest::ShopRedact {
            shop_domain: SHOP.into()
        })
    );
}

/// Shopify's `app/uninstalled` body: the REST `Shop` resource (fields trimmed to a few).
fn app_uninstalled_body(domain: &str) -> String {
    format!(
        r#"{{"id": 548380009, "name": "Super Toys", "email": "super@supertoys.com", "domain": "supertoys.com", "myshopify_domain": "{domain}", "plan_name": "basic"}}"#
    )
}

#[test]
fn customers_delete_takes_the_customer_off_the_lists() {
    // Shopify's sample body (trimmed): the id and nothing else of use.
    let body = r#"{"id": 706405506930370084, "phone": null, "addresses": [], "tax_exemptions": [], "email_marketing_consent": null, "admin_graphql_api_id": "gid://shopify/Customer/706405506930370084"}"#;
    assert_eq!(
        run("customers/delete", body, &defaults()).unwrap(),
        Outcome::Compliance(ComplianceRequest::CustomerDeleted {
            shop_domain: SHOP.into(),
            customer_id: 706_405_506_930_370_084,
        })
    );
    let err = run("customers/delete", r#"{"phone": null}"#, &defaults()).unwrap_err();
    assert!(
        matches!(err, MappingError::ComplianceMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_consent_change_queues_a_recheck_of_the_customer_it_names() {
    // The payload's keys are unconfirmed: customer_id, else id; a number, a numeric string or a
    // customer's global id.
    for body in [
        r#"{"customer_id": 706405506930370084, "email_address": "a@b.co", "email_marketing_consent": {"state": "unsubscribed"}}"#,
        r#"{"customer_id": "706405506930370084"}"#,
        r#"{"id": "gid://shopify/Customer/706405506930370084"}"#,
        r#"{"customer_id": null, "id": 706405506930370084}"#,
    ] {
        assert_eq!(
            run(
                "customers_email_marketing_consent/update",
                body,
                &defaults()
            )
            .unwrap(),
            Outcome::Compliance(ComplianceRequest::ConsentChanged {
                shop_domain: SHOP.into(),
                customer_id: 706_405_506_930_370_084,
                at: None,
            }),
            "{body}"
        );
    }
    assert_eq!(
        "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE"
            .parse::<Topic>()
            .unwrap(),
        Topic::CustomersEmailMarketingConsentUpdate,
        "the GraphQL enum form too"
    );
    for body in [
        r#"{"email_address": "a@b.co"}"#,
        r#"{"customer_id": "gid://shopify/Order/1"}"#,
    ] {
        let err = run(
            "customers_email_marketing_consent/update",
            body,
            &defaults(),
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                MappingError::NoCustomerId { topic }
                    if *topic == Topic::CustomersEmailMarketingConsentUpdate
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("a@b.co"), "{err}");
    }
}

#[test]
fn app_uninstalled_disables_the_store_it_names_and_only_that_one() {
    assert_eq!(
        run("app/uninstalled", &app_uninstalled_body(SHOP), &defaults()).unwrap(),
        Outcome::Compliance(ComplianceRequest::AppUninstalled {
            shop_domain: SHOP.into()
        })
    );
    assert_eq!(
        "APP_UNINSTALLED"
            .parse::<crate::shopify::metadata::Topic>()
            .unwrap(),
        crate::shopify::metadata::Topic::AppUninstalled
    );
    // A signed uninstall of another store, or an order, replayed under this store's header.
    for body in [
        app_uninstalled_body("other.myshopify.com"),
        ORDER_REST.to_owned(),
        r#"{"myshopify_domain": "SHOP"}"#.replace("SHOP", SHOP),
    ] {
        let err = run("app/uninstalled", &body, &defaults()).unwrap_err();
        assert!(
            matches!(err, MappingError::ComplianceMismatch { .. }),
            "{err}"
        );
    }
}

#[test]
fn a_compliance_body_that_disagrees_with_its_headers_is_not_acted_on() {
    let mismatch = |topic: &str, body: &str| {
        let err = run(topic, body, &defaults()).unwrap_err();
        assert!(
            matches!(err, MappingError::ComplianceMismatch { .. }),
            "{topic} {body}: {err}"
        );
    };
    // A captured signed orders/create body replayed under each compliance topic.
    for topic in ["shop/redact", "customers/redact", "customers/data_request"] {
        mismatch(topic, ORDER_REST);
    }
    // Another shop's request, and requests without the fields their topic requires.
    let other = SHOP_REDACT.replace("{shop}", "other");
    mismatch("shop/redact", &other);
    mismatch("shop/redact", &format!(r#"{{"shop_domain": "{SHOP}"}}"#));
    mismatch(
        "customers/redact",
        &format!(r#"{{"shop_domain": "{SHOP}", "orders_to_redact": [1]}}"#),
    );
    mismatch(
        "customers/data_request",
        &format!(r#"{{"shop_domain": "{SHOP}", "customer": {{"id": 1}}}}"#),
    );
}

#[test]
fn rejects_a_compliance_body_that_is_not_json() {
    let err = run("shop/redact", "{", &defaults()).unwrap_err();
    assert!(matches!(err, MappingError::InvalidPayload { .. }));
}

#[test]
fn rejects_order_bodies_that_are_not_orders() {
    for body in ["", "{", "[]", "42", r#"{"id": "not a number"}"#] {
        let err = run("orders/create", body, &defaults()).unwrap_err();
        assert!(
            matches!(&err, MappingError::InvalidPayload { topic, .. } if topic == "orders/create"),
            "{body:?}: {err}"
        );
    }
}

#[test]
fn an_order_without_an_id_or_a_time_is_an_error() {
    let body = rest_order(|o| o["id"] = Value::Null);
    let err = run("orders/create", &body, &defaults()).unwrap_err();
    assert!(matches!(
        err,
        MappingError::MissingField { field: "id", .. }
    ));
    assert!(err.to_string().contains("orders/create"));
    let body = rest_order(|o| {
        o["created_at"] = Value::Null;
        o["processed_at"] = Value::Null;
    });
    let err = run("orders/create", &body, &defaults()).unwrap_err();
    assert!(matches!(
        err,
        MappingError::MissingField {
            field: "created_at",
            ..
        }
    ));
}

#[test]
fn event_time_falls_back_to_processed_at() {
    let body = rest_order(|o| {
        o["created_at"] = Value::Null;
        o["processed_at"] = json!("2026-11-28T12:00:00Z");
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).event_time,
        1_795_867_200
    );
}

#[test]
fn clamps_an_event_time_in_the_future_to_now() {
    let body = rest_order(|o| o["created_at"] = json!("2030-01-01T00:00:00Z"));
    assert_eq!(
        event("orders/create", &body, &defaults()).event_time,
        now().timestamp()
    );
}

#[test]
fn skips_test_orders_unless_included() {
    let body = rest_order(|o| o["test"] = json!(true));
    assert_eq!(
        skip("orders/create", &body, &defaults()),
        SkipReason::TestOrder
    );
    let include = Options {
        include_test_orders: true,
        ..defaults()
    };
    assert_eq!(
        event("orders/create", &body, &include).event_id,
        "450789469"
    );
}

#[test]
fn skips_cancelled_orders() {
    let body = rest_order(|o| o["cancelled_at"] = json!("2008-01-10T12:00:00-05:00"));
    assert_eq!(
        skip("orders/create", &body, &defaults()),
        SkipReason::CancelledOrder
    );
}

#[test]
fn skips_pos_orders_unless_sent_as_offline() {
    let body = rest_order(|o| o["source_name"] = json!("pos"));
    assert_eq!(
        skip("orders/create", &body, &defaults()),
        SkipReason::PosOrder
    );
    let send = Options {
        send_pos_orders: true,
        ..defaults()
    };
    let e = event("orders/create", &body, &send);
    assert_eq!(e.action_source, ActionSource::Offline);
    assert_eq!(e.event_source_url, None);
    assert_schema_valid(&e);
}

#[test]
fn skips_orders_without_enough_identity() {
    let body = rest_order(|o| {
        o["email"] = Value::Null;
        o["contact_email"] = json!("  ");
        o["customer"]["email"] = Value::Null;
    });
    assert_eq!(
        skip("orders/create", &body, &defaults()),
        SkipReason::NotEnoughIdentity
    );
    // `translate` itself returns the event: a shopper profile may still add IP and UA.
    let Ok(Outcome::Send(c)) =
        translate(&meta("orders/create"), body.as_bytes(), &defaults(), now())
    else {
        panic!("translate returns the unidentified order");
    };
    assert_eq!(
        require_identity(&c.event),
        Err(SkipReason::NotEnoughIdentity)
    );
}

#[test]
fn ip_address_and_user_agent_are_enough_identity() {
    let body = json!({
        "id": 7, "created_at": "2026-11-28T10:00:00Z",
        "browser_ip": "203.0.113.7",
        "client_details": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    });
    let e = event("orders/create", &body.to_string(), &defaults());
    assert!(e.user_data.em.is_empty());
    assert_eq!(
        e.user_data.client_ip_address.as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(
        e.user_data.client_user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_schema_valid(&e);
    let only_ip =
        json!({"id": 7, "created_at": "2026-11-28T10:00:00Z", "browser_ip": "203.0.113.7"});
    assert_eq!(
        skip("orders/create", &only_ip.to_string(), &defaults()),
        SkipReason::NotEnoughIdentity
    );
}

#[test]
fn client_ip_falls_back_to_client_details_and_is_canonical() {
    let body = rest_order(|o| {
        o["browser_ip"] = Value::Null;
        o["client_details"]["browser_ip"] = json!(" 2001:DB8:0:0:0:0:0:1 ");
    });
    let e = event("orders/create", &body, &defaults());
    assert_eq!(
        e.user_data.client_ip_address.as_deref(),
        Some("2001:db8::1")
    );
    let body = rest_order(|o| o["browser_ip"] = json!("not an ip"));
    let e = event("orders/create", &body, &defaults());
    assert_eq!(e.user_data.client_ip_address, None);
}

#[test]
fn email_falls_back_to_contact_email_then_customer_email() {
    let body = rest_order(|o| {
        o["email"] = json!("");
        o["contact_email"] = json!("Contact@Example.com");
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.em,
        h("contact@example.com")
    );
    let body = rest_order(|o| {
        o["email"] = Value::Null;
        o["contact_email"] = Value::Null;
        o["customer"]["email"] = json!("Customer@Example.com");
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.em,
        h("customer@example.com")
    );
}

#[test]
fn phone_falls_back_through_billing_shipping_and_customer() {
    let body = rest_order(|o| o["phone"] = Value::Null);
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("15024592181"),
        "billing phone"
    );
    let body = rest_order(|o| {
        o["phone"] = Value::Null;
        o["billing_address"]["phone"] = Value::Null;
        o["shipping_address"]["phone"] = json!("(613) 555-0188 ");
        o["shipping_address"]["country_code"] = json!("CA");
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("16135550188"),
        "shipping phone with the shipping country"
    );
    let body = rest_order(|o| {
        o["phone"] = Value::Null;
        o["billing_address"]["phone"] = Value::Null;
        o["shipping_address"]["phone"] = Value::Null;
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("16136120707"),
        "customer phone"
    );
}

#[test]
fn a_local_order_phone_gets_the_country_code_of_the_address() {
    let body = rest_order(|o| o["phone"] = json!("(502) 459-2181"));
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("15024592181")
    );
    let body = rest_order(|o| {
        o["phone"] = json!("020 7946 0018");
        o["billing_address"]["country_code"] = json!("GB");
    });
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("442079460018")
    );
}

/// The REST order with only `phone` as a phone, and no address naming a country.
fn order_without_a_country(phone: &str) -> String {
    rest_order(|o| {
        o["phone"] = json!(phone);
        o["billing_address"] = Value::Null;
        o["shipping_address"] = Value::Null;
        o["customer"]["default_address"] = Value::Null;
        o["customer"]["phone"] = Value::Null;
    })
}

fn us_default() -> Options {
    Options {
        default_country: Some("US".to_owned()),
        ..defaults()
    }
}

#[test]
fn a_phone_without_plus_or_country_is_left_out_without_a_default_country() {
    for raw in ["4692223333", "6465550199", "3235551234"] {
        let e = event("orders/create", &order_without_a_country(raw), &defaults());
        assert!(e.user_data.ph.is_empty(), "{raw}: {:?}", e.user_data.ph);
        assert!(
            !e.user_data.em.is_empty(),
            "the order is still sent on its email"
        );
    }
}

#[test]
fn a_phone_without_plus_or_country_takes_the_default_country() {
    // Golden digests, computed outside the crate (`printf %s 14692223333 | sha256sum`).
    for (raw, digest) in [
        (
            "4692223333",
            "a04fcbf6c8f15bad464e2d2838173928464f2086ca420c40cfa424e80a545eb6",
        ),
        (
            "6465550199",
            "0c82ed9de8cef0e789845770db2d4bf31b5a2952e6b7f0e8fdcc973bd73f7fd8",
        ),
        (
            "3235551234",
            "3cb9c1db8556f1e069f9d9d5f910c66623f84a5e8b716b6557d3013d5742ff39",
        ),
    ] {
        let e = event(
            "orders/create",
            &order_without_a_country(raw),
            &us_default(),
        );
        assert_eq!(e.user_data.ph, [digest], "{raw}");
        assert_schema_valid(&e);
    }
    let signup = json!({"id": 1, "created_at": "2026-01-01T00:00:00Z", "state": "enabled",
                        "email": "a@b.co", "phone": "4692223333"});
    let e = event("customers/create", &signup.to_string(), &defaults());
    assert!(e.user_data.ph.is_empty(), "{:?}", e.user_data.ph);
    let e = event("customers/create", &signup.to_string(), &us_default());
    assert_eq!(e.user_data.ph, h("14692223333"));
}

#[test]
fn the_address_country_wins_over_the_default_country_and_00_needs_neither() {
    let body = rest_order(|o| {
        o["phone"] = json!("020 7946 0018");
        o["billing_address"]["country_code"] = json!("GB");
    });
    assert_eq!(
        event("orders/create", &body, &us_default()).user_data.ph,
        h("442079460018")
    );
    let body = order_without_a_country("0044 20 7946 0018");
    assert_eq!(
        event("orders/create", &body, &defaults()).user_data.ph,
        h("442079460018")
    );
    assert_eq!(
        event("orders/create", &body, &us_default()).user_data.ph,
        h("442079460018")
    );
}

#[test]
fn names_fall_back_to_the_customer_and_location_comes_from_one_address() {
    let body = rest_order(|o| {
        o["billing_address"] = Value::Null;
        o["shipping_address"] =
            json!({"first_name": null, "city": "Zürich", "zip": "8001", "country_code": "CH"});
        o["customer"]["default_address"] = Value::Null;
    });
    let u = event("orders/create", &body, &defaults()).user_data;
    assert_eq!(u.first_name, h("bob"));
    assert_eq!(u.ln, h("norman"));
    assert_eq!(u.ct, h("zürich"));
    assert_eq!(u.zp, h("8001"));
    assert_eq!(u.country, h("ch"));
    assert!(u.st.is_empty());
}

#[test]
fn click_id_comes_from_the_landing_site_epik_parameter() {
    for landing in [
        "https://shop.example/products/x?utm_source=pinterest&epik=dj0yJnU9abc",
        "/products/x?epik=dj0yJnU9abc",
        "/?EPIK=dj0yJnU9abc",
        "www.example.com/?epik=dj0yJnU9abc",
        "/?epik=dj0yJnU9%61bc",
    ] {
        let body = rest_order(|o| o["landing_site"] = json!(landing));
        assert_eq!(
            event("orders/create", &body, &defaults())
                .user_data
                .click_id
                .as_deref(),
            Some("dj0yJnU9abc"),
            "{landing:?}"
        );
    }
}

#[test]
fn click_id_falls_back_to_an_epik_note_attribute() {
    for name in ["epik", "_epik", " _EPIK "] {
        let body = rest_order(|o| {
            o["note_attributes"] =
                json!([{"name": "gift", "value": "yes"}, {"name": name, "value": " from-cart "}]);
        });
        assert_eq!(
            event("orders/create", &body, &defaults())
                .user_data
                .click_id
                .as_deref(),
            Some("from-cart"),
            "{name:?}"
        );
    }
    let body = rest_order(|o| {
        o["landing_site"] = json!("/?epik=from-url");
        o["note_attributes"] = json!([{"name": "_epik", "value": "from-cart"}]);
    });
    assert_eq!(
        event("orders/create", &body, &defaults())
            .user_data
            .click_id
            .as_deref(),
        Some("from-url"),
        "the landing URL wins"
    );
    let body = rest_order(|o| o["landing_site"] = json!("/?epik="));
    assert_eq!(
        event("orders/create", &body, &defaults())
            .user_data
            .click_id,
        None
    );
}

#[test]
fn event_source_url_is_the_store_url_never_the_order_status_url() {
    let with_store = Options {
        store_url: Some("https://www.snowdevil.ca/".into()),
        ..defaults()
    };
    let e = event("orders/create", ORDER_REST, &with_store);
    assert_eq!(
        e.event_source_url.as_deref(),
        Some("https://www.snowdevil.ca/")
    );
    let e = event("orders/create", ORDER_REST, &defaults());
    assert_eq!(
        e.event_source_url.as_deref(),
        Some("https://snowdevil.myshopify.com/")
    );
}

#[test]
fn value_is_the_subtotal_by_default_and_the_total_when_configured() {
    let total = Options {
        value_source: ValueSource::Total,
        ..defaults()
    };
    let value = |body: &str, options: &Options| {
        event("orders/create", body, options)
            .custom_data
            .unwrap()
            .value
    };
    assert_eq!(value(ORDER_REST, &defaults()).as_deref(), Some("195.67"));
    assert_eq!(value(ORDER_REST, &total).as_deref(), Some("199.65"));
    let body = rest_order(|o| {
        o["current_subtotal_price"] = Value::Null;
        o["current_total_price"] = Value::Null;
    });
    assert_eq!(value(&body, &defaults()).as_deref(), Some("597.00"));
    assert_eq!(value(&body, &total).as_deref(), Some("598.94"));
    let body = rest_order(|o| {
        o["current_subtotal_price"] = json!("lots");
        o["subtotal_price"] = Value::Null;
    });
    assert_eq!(value(&body, &defaults()), None);
}

#[test]
fn amounts_keep_two_decimals_by_default_without_floating_point() {
    for (raw, want) in [
        ("195.67", "195.67"),
        ("10", "10.00"),
        ("10.5", "10.50"),
        ("0.125", "0.13"),
        ("0.1249", "0.12"),
        ("99.995", "100.00"),
        ("999.999", "1000.00"),
        (".5", "0.50"),
        ("7.", "7.00"),
        ("007.10", "7.10"),
        (" 12.3 ", "12.30"),
        ("0", "0.00"),
        ("12345678901234567890.005", "12345678901234567890.01"),
    ] {
        for currency in [Some("USD"), Some("eur"), None, Some("XYZ")] {
            assert_eq!(
                currency_amount(raw, currency).as_deref(),
                Some(want),
                "{raw:?} {currency:?}"
            );
        }
    }
    for bad in [
        "", ".", "-1.00", "+1", "1e3", "1,000.00", "1.2.3", "NaN", "１.00",
    ] {
        for currency in [Some("USD"), Some("JPY"), Some("KWD")] {
            assert_eq!(currency_amount(bad, currency), None, "{bad:?} {currency:?}");
        }
    }
}

#[test]
fn amounts_keep_the_currencys_own_decimals() {
    for (raw, currency, want) in [
        ("1.2345", "KWD", "1.235"),
        ("1.2344", "KWD", "1.234"),
        ("5", "BHD", "5.000"),
        ("12.5", "OMR", "12.500"),
        ("0.0005", "JOD", "0.001"),
        ("3.14159", "TND", "3.142"),
        ("1000", "IQD", "1000.000"),
        ("2.1", "LYD", "2.100"),
        ("1500", "JPY", "1500"),
        ("1500.00", "JPY", "1500"),
        ("1500.5", "jpy", "1501"),
        ("1499.49", "JPY", "1499"),
        ("0.4", "KRW", "0"),
        (".5", "KRW", "1"),
        ("9999.5", "VND", "10000"),
        ("25000", "CLP", "25000"),
        ("10", "USD", "10.00"),
        ("0.125", "USD", "0.13"),
        ("37.1234", "CLF", "37.1234"),
        ("37.12345", "CLF", "37.1235"),
    ] {
        assert_eq!(
            currency_amount(raw, Some(currency)).as_deref(),
            Some(want),
            "{raw:?} {currency}"
        );
    }
}

#[test]
fn a_yen_order_is_sent_without_decimals_and_a_dinar_order_with_three() {
    let yen = rest_order(|o| {
        o["currency"] = json!("JPY");
        o["current_subtotal_price"] = json!("1500.00");
        o["line_items"][0]["price"] = json!("500.00");
    });
    let e = event("orders/create", &yen, &defaults());
    let c = e.custom_data.as_ref().unwrap();
    assert_eq!(c.value.as_deref(), Some("1500"));
    assert_eq!(c.contents[0].item_price.as_deref(), Some("500"));
    assert_schema_valid(&e);
    let dinar = rest_order(|o| {
        o["currency"] = json!("KWD");
        o["current_subtotal_price"] = json!("1.2345");
        o["line_items"][0]["price"] = json!("0.5");
    });
    let e = event("orders/create", &dinar, &defaults());
    let c = e.custom_data.as_ref().unwrap();
    assert_eq!(c.value.as_deref(), Some("1.235"));
    assert_eq!(c.contents[0].item_price.as_deref(), Some("0.500"));
    assert_schema_valid(&e);
}

#[test]
fn content_ids_follow_the_configured_source() {
    let ids = |source| {
        let options = Options {
            content_id: source,
            ..defaults()
        };
        event("orders/create", ORDER_REST, &options)
            .custom_data
            .unwrap()
            .content_ids
    };
    assert_eq!(
        ids(ContentIdSource::Variant),
        ["39072856", "49148385", "457924702"]
    );
    assert_eq!(
        ids(ContentIdSource::Sku),
        ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]
    );
    assert_eq!(ids(ContentIdSource::Product), ["632910392"]);
}

#[test]
fn sku_falls_back_to_the_variant_and_variant_to_the_product() {
    let body = rest_order(|o| {
        o["line_items"] = json!([
            {"product_id": 1, "variant_id": 2, "sku": "", "price": "5", "quantity": 2},
            {"product_id": 3, "variant_id": null, "sku": null, "price": "1.5", "quantity": 1}
        ]);
    });
    let sku = Options {
        content_id: ContentIdSource::Sku,
        ..defaults()
    };
    let c = event("orders/create", &body, &sku).custom_data.unwrap();
    assert_eq!(c.content_ids, ["2"]);
    let c = event("orders/create", &body, &defaults())
        .custom_data
        .unwrap();
    assert_eq!(c.content_ids, ["2", "3"]);
    assert_eq!(c.contents[1].item_price.as_deref(), Some("1.50"));
    assert_eq!(c.num_items, Some(3));
    assert_eq!(c.content_name, None);
}

#[test]
fn language_is_the_primary_subtag_of_the_locale() {
    let body = rest_order(|o| o["customer_locale"] = json!("fr-CA"));
    assert_eq!(
        event("orders/create", &body, &defaults())
            .language
            .as_deref(),
        Some("fr")
    );
    let body = rest_order(|o| {
        o["customer_locale"] = Value::Null;
        o["client_details"]["accept_language"] = json!("de-DE,de;q=0.9,en;q=0.8");
    });
    assert_eq!(
        event("orders/create", &body, &defaults())
            .language
            .as_deref(),
        Some("de")
    );
}

#[test]
fn event_id_follows_the_template() {
    for (template, want) in [
        ("{order_id}", "450789469"),
        ("checkout-{order_id}", "checkout-450789469"),
        ("{order_name}", "#1001"),
        ("order {order_name}/{order_id}", "order #1001/450789469"),
    ] {
        let options = Options {
            event_id_template: template.into(),
            ..defaults()
        };
        assert_eq!(event("orders/create", ORDER_REST, &options).event_id, want);
    }
}

#[test]
fn checkout_event_id_matches_the_event_translate_sends() {
    for template in ["{order_id}", "checkout-{order_id}", "{order_id}-{order_id}"] {
        let options = Options {
            event_id_template: template.into(),
            ..defaults()
        };
        assert_eq!(
            options.checkout_event_id(450_789_469).as_deref(),
            Some(
                event("orders/create", ORDER_REST, &options)
                    .event_id
                    .as_str()
            ),
            "{template}"
        );
    }
    let by_name = Options {
        event_id_template: "{order_name}".into(),
        ..defaults()
    };
    assert_eq!(by_name.checkout_event_id(450_789_469), None);
}

#[test]
fn rejects_invalid_event_id_templates() {
    for template in ["{order}", "{order_id", "order_id}", "   ", ""] {
        let options = Options {
            event_id_template: template.into(),
            ..defaults()
        };
        let err = run("orders/create", ORDER_REST, &options).unwrap_err();
        assert!(
            matches!(err, MappingError::InvalidTemplate { .. }),
            "{template:?}: {err}"
        );
        assert_eq!(options.checkout_event_id(1), None);
    }
}

#[test]
fn an_order_name_template_needs_the_order_name() {
    let options = Options {
        event_id_template: "{order_name}".into(),
        ..defaults()
    };
    let body = rest_order(|o| o["name"] = Value::Null);
    let err = run("orders/paid", &body, &options).unwrap_err();
    assert!(
        matches!(&err, MappingError::MissingField { topic, field: "name" } if topic == "orders/paid"),
        "{err}"
    );
}

/// Arbitrary JSON, biased towards the keys the mapping reads so deep paths are reached.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "id",
        "name",
        "email",
        "contact_email",
        "phone",
        "created_at",
        "processed_at",
        "cancelled_at",
        "test",
        "source_name",
        "browser_ip",
        "client_details",
        "user_agent",
        "accept_language",
        "landing_site",
        "note_attributes",
        "value",
        "currency",
        "current_subtotal_price",
        "current_total_price",
        "subtotal_price",
        "total_price",
        "customer_locale",
        "billing_address",
        "shipping_address",
        "customer",
        "default_address",
        "line_items",
        "product_id",
        "variant_id",
        "sku",
        "price",
        "quantity",
        "title",
        "vendor",
        "first_name",
        "last_name",
        "city",
        "province_code",
        "zip",
        "country_code",
        "orders_to_redact",
        "orders_requested",
        "shop_domain",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9]{1,25}(\\.[0-9]{0,5})?".prop_map(Value::from),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:00:00[+-]0[0-9]:00".prop_map(Value::from),
        "[+]?[0-9 ()-]{0,16}".prop_map(Value::from),
        "/?[a-z]{0,5}=[a-z]{0,5}&epik=[A-Za-z0-9%+]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(str::to_owned), inner),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arbitrary_options() -> impl Strategy<Value = Options> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0..3u8,
        prop::sample::select(vec!["{order_id}", "{order_name}", "x-{order_id}", "{bad}"]),
    )
        .prop_map(|(test, pos, total, content, template)| Options {
            event_id_template: template.to_owned(),
            store_url: None,
            include_test_orders: test,
            send_pos_orders: pos,
            order_sources: vec![ONLINE_STORE.to_owned()],
            value_source: if total {
                ValueSource::Total
            } else {
                ValueSource::Subtotal
            },
            content_id: match content {
                0 => ContentIdSource::Variant,
                1 => ContentIdSource::Sku,
                _ => ContentIdSource::Product,
            },
            default_country: None,
            ..Options::default()
        })
}

const TOPICS: &[&str] = &[
    "orders/create",
    "orders/paid",
    "orders/updated",
    "checkouts/create",
    "customers/create",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
    "carts/create",
];

proptest! {
    #[test]
    fn translate_never_panics_on_arbitrary_json(
        topic in prop::sample::select(TOPICS),
        body in arbitrary_json(),
        options in arbitrary_options(),
    ) {
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(Outcome::Send(c)) = translate(&meta(topic), &bytes, &options, now()) {
            // Whatever the input, what is sent is what Pinterest's schema accepts.
            let body = serde_json::to_value(EventBatch { data: vec![c.event] }).unwrap();
            prop_assert!(VALIDATOR.is_valid(&body), "{body:#}");
        }
    }

    #[test]
    fn translate_never_panics_on_arbitrary_bytes(
        topic in prop::sample::select(TOPICS),
        body in any::<Vec<u8>>(),
    ) {
        let _ = translate(&meta(topic), &body, &defaults(), now());
    }

    #[test]
    fn translate_never_panics_on_a_mutated_real_order(
        topic in prop::sample::select(TOPICS),
        key in prop::sample::select(vec![
            "email", "phone", "created_at", "landing_site", "note_attributes", "line_items",
            "billing_address", "customer", "current_subtotal_price", "client_details", "id",
        ]),
        value in arbitrary_json(),
    ) {
        let body = rest_order(|o| o[key] = value);
        if let Ok(Outcome::Send(c)) = run(topic, &body, &defaults()) {
            let body = serde_json::to_value(EventBatch { data: vec![c.event] }).unwrap();
            prop_assert!(VALIDATOR.is_valid(&body), "{body:#}");
        }
    }

    #[test]
    fn two_decimal_amounts_agree_with_exact_integer_rounding(cents in 0u64..10_000_000_000, extra in 0u8..10) {
        // cents + extra/10 of a cent, rounded half up, computed in integers.
        let raw = format!("{}.{:02}{}", cents / 100, cents % 100, extra);
        let rounded = cents + u64::from(extra >= 5);
        prop_assert_eq!(
            currency_amount(&raw, Some("USD")),
            Some(format!("{}.{:02}", rounded / 100, rounded % 100))
        );
    }

    #[test]
    fn amounts_always_have_exactly_the_currencys_decimals(
        int in "[0-9]{0,15}",
        frac in proptest::option::of("[0-9]{0,8}"),
        currency in proptest::sample::select(vec![
            None, Some("USD"), Some("EUR"), Some("JPY"), Some("KRW"), Some("ISK"),
            Some("KWD"), Some("BHD"), Some("OMR"), Some("JOD"), Some("TND"), Some("IQD"),
            Some("LYD"), Some("CLF"), Some("ZZZ"),
        ]),
    ) {
        let raw = match &frac {
            Some(f) => format!("{int}.{f}"),
            None => int.clone(),
        };
        let decimals = minor_units(currency);
        match currency_amount(&raw, currency) {
            None => prop_assert!(int.is_empty() && frac.as_deref().is_none_or(str::is_empty)),
            Some(out) => {
                let (units, fraction) = out.split_once('.').unwrap_or((&out, ""));
                prop_assert_eq!(fraction.len(), decimals, "{:?} {:?} -> {:?}", raw, currency, out);
                prop_assert_eq!(out.contains('.'), decimals > 0);
                prop_assert!(!units.is_empty() && units.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(units == "0" || !units.starts_with('0'));
                // Already in the currency's form: formatting again changes nothing.
                prop_assert_eq!(currency_amount(&out, currency), Some(out.clone()));
                // Never rounded away: with no more digits than the currency, the value is kept.
                if frac.as_deref().is_none_or(|f| f.len() <= decimals) {
                    let written: String = format!("{}{:0<width$}", int, frac.as_deref().unwrap_or(""), width = decimals);
                    let kept: String = format!("{units}{fraction}");
                    prop_assert_eq!(written.trim_start_matches('0'), kept.trim_start_matches('0'));
                }
            }
        }
    }
}

#[test]
fn an_invalid_payload_reason_never_quotes_the_body() {
    let bad = br#"{"id": "jane@example.com"}"#;
    let e = serde_json::from_slice::<crate::shopify::payload::Order>(bad).unwrap_err();
    let summary = super::json_error_summary(&e);
    assert!(!summary.contains("jane"), "{summary}");
    assert!(summary.contains("line 1"), "{summary}");
    let missing = serde_json::from_slice::<crate::shopify::payload::Order>(b"{}");
    if let Err(e) = missing {
        assert!(super::json_error_summary(&e).starts_with("missing field `"));
    }
}

#[test]
fn a_voided_order_is_never_sent_under_either_setting() {
    let body = rest_order(|o| o["financial_status"] = json!("voided"));
    for checkout_on in [CheckoutOn::Created, CheckoutOn::Paid] {
        let options = Options {
            checkout_on,
            ..defaults()
        };
        assert_eq!(
            skip("orders/create", &body, &options),
            SkipReason::VoidedOrder
        );
        assert_eq!(
            skip("orders/paid", &body, &options),
            SkipReason::VoidedOrder
        );
    }
}

#[test]
fn under_checkout_on_paid_an_order_counts_once_payment_is_secured() {
    let paid = Options {
        checkout_on: CheckoutOn::Paid,
        ..defaults()
    };
    let pending = rest_order(|o| o["financial_status"] = json!("pending"));
    assert_eq!(
        skip("orders/create", &pending, &paid),
        SkipReason::Unpaid {
            status: "pending".into()
        }
    );
    assert!(
        SkipReason::Unpaid {
            status: "pending".into()
        }
        .is_rule()
    );
    // Created (the default): a pending order counts when it is placed, as the Tag counts it.
    event("orders/create", &pending, &defaults());
    for status in ["paid", "partially_paid", "authorized", "refunded"] {
        let body = rest_order(|o| o["financial_status"] = json!(status));
        let e = event("orders/paid", &body, &paid);
        // The event is the order's, at the order's time, whichever topic brought it.
        assert_eq!(
            e.event_id,
            event("orders/create", &body, &defaults()).event_id
        );
    }
    let strict = Options {
        paid_statuses: vec!["paid".into()],
        ..paid.clone()
    };
    let authorized = rest_order(|o| o["financial_status"] = json!("authorized"));
    assert!(matches!(
        skip("orders/create", &authorized, &strict),
        SkipReason::Unpaid { .. }
    ));
}

#[test]
fn the_order_rule_reads_the_graphql_shape_the_same_way() {
    let paid = Options {
        checkout_on: CheckoutOn::Paid,
        ..defaults()
    };
    let graphql = |status: &'static str, source: &'static str| OrderFacts {
        test: false,
        cancelled: false,
        source_name: Some(source),
        financial_status: Some(status),
    };
    assert_eq!(
        order_rule(&graphql("PAID", "web"), &paid),
        Ok(OrderChannel::Web)
    );
    assert!(matches!(
        order_rule(&graphql("PENDING", "web"), &paid),
        Err(SkipReason::Unpaid { .. })
    ));
    assert_eq!(
        order_rule(&graphql("VOIDED", "web"), &defaults()),
        Err(SkipReason::VoidedOrder)
    );
    assert_eq!(
        order_rule(&graphql("PAID", "pos"), &paid),
        Err(SkipReason::PosOrder)
    );
}

#[test]
fn content_id_templates_name_products_the_way_the_catalog_does() {
    let options = Options {
        content_id: ContentIdSource::parse(
            "shopify_{country}_{product_id}_{variant_id}",
            Some("US"),
        )
        .unwrap(),
        catalog_country: Some("US".into()),
        ..defaults()
    };
    let e = event("orders/create", ORDER_REST, &options);
    let custom = e.custom_data.unwrap();
    assert!(!custom.content_ids.is_empty());
    for (id, content) in custom.content_ids.iter().zip(&custom.contents) {
        assert!(id.starts_with("shopify_US_"), "{id}");
        assert_eq!(id.split('_').count(), 4, "{id}");
        assert_eq!(&content.id, id);
    }
    // The aliases keep their fallbacks; a template needs what it names.
    assert_eq!(
        ContentIdSource::parse("variant", None),
        Ok(ContentIdSource::Variant)
    );
    assert!(ContentIdSource::parse("shopify_{country}_{variant_id}", None).is_err());
    assert!(ContentIdSource::parse("{bogus}", None).is_err());
    assert!(ContentIdSource::parse("nothing", None).is_err());
    assert_eq!(
        render_content_id("{sku}", |_| None),
        Ok(None),
        "a line without the id is left out"
    );
}
