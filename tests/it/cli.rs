//! `pinrelay translate` and `pinrelay sign`, run as the real binary: exit codes 0/2/3, bodies valid
//! against Pinterest's JSON Schema, and signatures that the relay's verifier accepts.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use pinrelay::shopify::WebhookSecrets;
use pinrelay::shopify::verify::verify_signature;
use serde_json::Value;

use crate::helpers::{fixture, fixture_path};
use crate::subscribe::pinrelay_bin;

const REST_ORDER: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";
const SAMPLE_ORDER: &str = "shopify/webhooks/orders-create.shopify-dev-sample-2026-07.json";
const SAMPLE_CUSTOMER: &str = "shopify/webhooks/customers-create.shopify-dev-sample-2026-07.json";
const SAMPLE_CHECKOUT: &str = "shopify/webhooks/checkouts-create.shopify-dev-sample-2026-07.json";
const SHOP_REDACT: &str = "shopify/webhooks/shop-redact.shopify-dev-sample-2026-07.json";
const NOW: &str = "2026-11-29T08:00:00Z";

/// The environment variables that change the mapping; removed so the tests see the defaults.
const MAPPING_VARS: [&str; 8] = [
    "DEFAULT_COUNTRY",
    "ORDER_SOURCES",
    "EVENT_ID_TEMPLATE",
    "STORE_URL",
    "INCLUDE_TEST_ORDERS",
    "SEND_POS_ORDERS",
    "VALUE_SOURCE",
    "CONTENT_ID",
];

fn pinrelay(args: &[&str], stdin: Option<&[u8]>) -> Output {
    pinrelay_env(args, stdin, &[])
}

/// [`pinrelay`] with variables set, such as a secret that must not be a flag.
fn pinrelay_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(pinrelay_bin());
    command.args(args);
    for var in MAPPING_VARS {
        command.env_remove(var);
    }
    command.env_remove("SHOPIFY_WEBHOOK_SECRETS");
    command.envs(env.iter().copied());
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        // A command that refuses its arguments exits before reading: a broken pipe is its answer.
        if let Err(e) = child.stdin.take().unwrap().write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn assert_schema_valid(body: &Value) {
    let schema: Value =
        serde_json::from_slice(&fixture("pinterest/conversion-events.request.schema.json"))
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema errors {errors:?} in {body:#}");
}

/// A one-line `error:` message and exit code 2, never a panic or a backtrace.
fn assert_invalid(o: &Output) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn translate_prints_a_schema_valid_body_for_the_rest_order() {
    let file = fixture_path(REST_ORDER);
    let o = pinrelay(
        &[
            "translate",
            "--topic",
            "orders/create",
            "--shop",
            "snowdevil.myshopify.com",
            "--now",
            NOW,
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let body: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_schema_valid(&body);
    let event = &body["data"][0];
    assert_eq!(event["event_name"], "checkout");
    assert_eq!(event["event_id"], "450789469");
    assert_eq!(event["event_time"], 1_199_980_800);
    assert_eq!(
        event["event_source_url"],
        "https://snowdevil.myshopify.com/"
    );
    assert_eq!(event["custom_data"]["value"], "195.67");
    assert_eq!(
        event["user_data"]["em"][0],
        "caa7822525c07341082aa1fdde58f99cc7e8e1395ffb28e6fe6fe1776f9dd75e"
    );
    assert!(!stdout(&o).contains("imasecretipod"));
}

#[test]
fn translate_reads_standard_input_and_applies_flags() {
    let o = pinrelay(
        &[
            "translate",
            "--topic",
            "ORDERS_PAID",
            "--compact",
            "--event-id-template",
            "checkout-{order_id}",
            "--store-url",
            "https://www.snowdevil.ca/",
        ],
        Some(&fixture(REST_ORDER)),
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o).trim_end().lines().count(),
        1,
        "--compact is one line"
    );
    let body: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_schema_valid(&body);
    assert_eq!(body["data"][0]["event_id"], "checkout-450789469");
    assert_eq!(
        body["data"][0]["event_source_url"],
        "https://www.snowdevil.ca/"
    );
}

/// A fixture with some top-level fields replaced.
fn fixture_with(name: &str, fields: Value) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn translate_maps_an_account_registration_to_a_signup() {
    let registration = fixture_with(SAMPLE_CUSTOMER, serde_json::json!({"state": "enabled"}));
    let o = pinrelay(
        &["translate", "--topic", "customers/create"],
        Some(&registration),
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let body: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_schema_valid(&body);
    assert_eq!(body["data"][0]["event_id"], "signup-706405506930370084");
}

#[test]
fn translate_skips_what_is_not_a_storefront_conversion_with_its_reason() {
    let cases = [
        // Shopify's own sample is a guest buyer's customer record (state disabled).
        (
            "customers/create",
            fixture(SAMPLE_CUSTOMER),
            "[not_a_signup]",
        ),
        (
            "orders/create",
            fixture_with(
                REST_ORDER,
                serde_json::json!({"source_name": "shopify_draft_order"}),
            ),
            "[draft_order]",
        ),
        (
            "orders/create",
            fixture_with(
                REST_ORDER,
                serde_json::json!({"source_name": "subscription_contract", "checkout_token": null}),
            ),
            "[subscription_renewal]",
        ),
        (
            "orders/create",
            fixture_with(REST_ORDER, serde_json::json!({"source_name": "2329312"})),
            "[sales_channel]",
        ),
    ];
    for (topic, body, label) in cases {
        let o = pinrelay(&["translate", "--topic", topic, "--now", NOW], Some(&body));
        assert_eq!(o.status.code(), Some(3), "{label}: {}", stderr(&o));
        assert!(stderr(&o).contains(label), "{label}: {}", stderr(&o));
    }
    let storefront = pinrelay(
        &["translate", "--topic", "orders/create", "--now", NOW],
        Some(&fixture(REST_ORDER)),
    );
    assert_eq!(storefront.status.code(), Some(0), "{}", stderr(&storefront));
}

#[test]
fn translate_exits_3_with_the_reason_when_the_webhook_is_skipped() {
    let cases = [
        (vec!["--topic", "orders/create"], SAMPLE_ORDER, "test order"),
        (
            vec!["--topic", "orders/create", "--include-test-orders"],
            SAMPLE_ORDER,
            "cancelled",
        ),
        (
            vec!["--topic", "checkouts/create"],
            SAMPLE_CHECKOUT,
            "not turned into",
        ),
        (vec!["--topic", "shop/redact"], SHOP_REDACT, "compliance"),
    ];
    for (flags, body, reason) in cases {
        let mut args = vec!["translate"];
        args.extend(flags);
        // Shopify's compliance samples say "{shop}.myshopify.com"; it sends the real domain.
        let body = String::from_utf8(fixture(body))
            .unwrap()
            .replace("{shop}.myshopify.com", "example.myshopify.com");
        let o = pinrelay(&args, Some(body.as_bytes()));
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
        assert!(stderr(&o).starts_with("skipped: "), "{}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn translate_exits_2_on_invalid_input() {
    for body in [
        &b""[..],
        b"{",
        b"[1, 2]",
        b"\xff\xfe",
        br#"{"id": "twelve"}"#,
    ] {
        assert_invalid(&pinrelay(
            &["translate", "--topic", "orders/create"],
            Some(body),
        ));
    }
    assert_invalid(&pinrelay(
        &[
            "translate",
            "--topic",
            "orders/create",
            "/no/such/order.json",
        ],
        None,
    ));
    assert_invalid(&pinrelay(
        &[
            "translate",
            "--topic",
            "orders/create",
            "--event-id-template",
            "{order}",
        ],
        Some(&fixture(REST_ORDER)),
    ));
}

#[test]
fn translate_exits_2_on_invalid_options() {
    let mut command = Command::new(pinrelay_bin());
    let o = command
        .args(["translate", "--topic", "orders/create"])
        .env("VALUE_SOURCE", "gross")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_invalid(&o);
    assert!(stderr(&o).contains("VALUE_SOURCE"));
    for bad in ["USA", "XX", "United States"] {
        let o = Command::new(pinrelay_bin())
            .args(["translate", "--topic", "orders/create"])
            .env("DEFAULT_COUNTRY", bad)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_invalid(&o);
        assert!(
            stderr(&o).contains("DEFAULT_COUNTRY") && stderr(&o).contains("alpha-2"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    let o = pinrelay(
        &[
            "translate",
            "--topic",
            "orders/create",
            "--now",
            "yesterday",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sign_prints_the_official_shopify_vector() {
    let o = pinrelay_env(
        &["sign"],
        Some(br#"{"foo": "bar"}"#),
        &[("SHOPIFY_WEBHOOK_SECRETS", "test_secret_key")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=\n");
}

#[test]
fn sign_of_a_file_is_accepted_by_the_verifier() {
    let file = fixture_path(REST_ORDER);
    // The current secret: the first of a rotation's list.
    let o = pinrelay_env(
        &["sign", file.to_str().unwrap()],
        None,
        &[("SHOPIFY_WEBHOOK_SECRETS", "s3cr3t,old-secret")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let secrets = WebhookSecrets::from_comma_separated("s3cr3t");
    assert_eq!(
        verify_signature(stdout(&o).trim_end(), &fixture(REST_ORDER), &secrets),
        Ok(0)
    );
}

#[test]
fn sign_exits_2_on_a_missing_file_or_an_empty_secret() {
    let secret = [("SHOPIFY_WEBHOOK_SECRETS", "s")];
    assert_invalid(&pinrelay_env(&["sign", "/no/such/body"], None, &secret));
    let unset = pinrelay(&["sign"], Some(b"{}"));
    assert_invalid(&unset);
    assert!(stderr(&unset).contains("SHOPIFY_WEBHOOK_SECRETS"));
    // A secret is never a flag.
    let flag = pinrelay_env(&["sign", "--secret", "s"], Some(b"{}"), &secret);
    assert_eq!(flag.status.code(), Some(2));
    assert!(stderr(&flag).contains("unexpected argument '--secret'"));
}
