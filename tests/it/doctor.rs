//! `pinrelay doctor` against the fake Admin API and the fake Pinterest (which validates the probe
//! event and the catalog lookup against Pinterest's schema): a good serve setup passes every check
//! that can run (exit 0), and each broken part fails its own check, with its fix, and exits 1.

use std::process::Command;

use serde_json::Value;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::fake_shopify::{
    ADMIN_TOKEN, CLIENT_ID, CLIENT_SECRET, FakeOrder, FakeShopify, SHOP_DOMAIN,
};
use crate::relay::Relay;
use crate::subscribe::pinrelay_bin;

const WEBHOOK_URL: &str = "https://relay.example.com/webhooks/shopify";

/// What a good setup's app was granted: the rules' scopes and the catalog probe's.
const GOOD_SCOPES: [&str; 3] = ["read_orders", "read_customers", "read_products"];

/// The webhook secret of the serve-mode relay.
const WEBHOOK_SECRET: &str = "hush-its-a-secret";

/// A good stack's secrets: its outputs and the values they hold.
const GOOD_SECRETS: [(&str, &str); 3] = [
    ("ShopifyWebhookSecret", WEBHOOK_SECRET),
    ("PinterestAccessTokenSecret", ACCESS_TOKEN),
    ("ShopifyAdminTokenSecret", ADMIN_TOKEN),
];

/// What to break in an otherwise good setup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Break {
    Nothing,
    PinterestToken,
    AdminToken,
    Subscriptions,
    WebhookSecret,
    /// A webhook signed with another secret reached the relay.
    BadSignature,
    /// The shop's latest order never reached the relay.
    MissingOrder,
    /// The app was never granted read_customers.
    MissingScope,
    /// The catalog names its items by SKU; the relay sends variant ids.
    CatalogBySku,
    /// `AUDIENCE_LISTS` keeps a customer list, but nothing can write it (no API token, no
    /// sign-in).
    AudienceListsWithoutToken,
}

struct Run {
    code: i32,
    findings: Vec<Value>,
}

impl Run {
    fn status(&self, check: &str) -> &str {
        self.finding(check)["status"].as_str().unwrap_or_default()
    }

    fn finding(&self, check: &str) -> &Value {
        self.findings
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no {check} in {:?}", self.findings))
    }
}

/// The REST order fixture as order `id`, placed an hour ago.
fn order_body(id: u64) -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&crate::helpers::fixture(
        "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json",
    ))
    .unwrap();
    let placed = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    order["id"] = id.into();
    order["name"] = format!("#{id}").into();
    order["created_at"] = placed.clone().into();
    order["processed_at"] = placed.into();
    serde_json::to_vec(&order).unwrap()
}

/// Seeds the fake catalog (`US`, `EN`, the lookup's defaults) with the line items of `order` (a
/// REST order): their variant ids, or their SKUs.
fn seed_catalog(pinterest: &FakePinterest, order: &Value, by_sku: bool) {
    let ids: Vec<String> = order["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match by_sku {
            true => item["sku"].as_str().unwrap().to_owned(),
            false => item["variant_id"].as_u64().unwrap().to_string(),
        })
        .collect();
    assert!(!ids.is_empty());
    pinterest.add_catalog_items("US", "EN", ids);
}

/// Posts `body` as `orders/create` from the test shop, signed with `secret`; the status.
async fn post_order(url: &str, body: &[u8], secret: &str) -> u16 {
    let id = format!("doctor-{}", body.len());
    crate::relay::post_webhook(url, "orders/create", SHOP_DOMAIN, secret, &id, body).await
}

/// `doctor` on a running `pinrelay serve` (its variables and `--data-dir`) that received the
/// shop's latest order, with one part broken.
async fn doctor(broken: Break, api_token: bool) -> Run {
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    let relay = Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        WEBHOOK_SECRET,
        &pinterest,
        &[("SHOPIFY_SHOP_DOMAINS", SHOP_DOMAIN)],
    );
    let webhook_url = relay.webhook_url();
    if broken != Break::Subscriptions {
        for topic in ["orders/create", "customers/create"] {
            shopify.add_subscription(topic, &webhook_url);
        }
    }
    let order = order_body(1001);
    assert_eq!(post_order(&webhook_url, &order, WEBHOOK_SECRET).await, 200);
    let listed: Value = serde_json::from_slice(&order).unwrap();
    seed_catalog(&pinterest, &listed, broken == Break::CatalogBySku);
    shopify.add_orders([FakeOrder::from_payload(listed)]);
    if broken == Break::MissingScope {
        shopify.set_access_scopes(&["read_orders", "read_products"]);
    } else {
        shopify.set_access_scopes(&GOOD_SCOPES);
    }
    match broken {
        Break::BadSignature => {
            assert_eq!(
                post_order(&webhook_url, &order_body(1002), "an-old-secret").await,
                401
            );
            // The log line a stack's doctor counts (ingest writes the same line on Lambda).
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
            assert!(log.contains(r#""outcome":"bad_signature""#), "{log}");
        }
        Break::MissingOrder => {
            let placed = (chrono::Utc::now() - chrono::Duration::minutes(40)).to_rfc3339();
            shopify.add_orders([FakeOrder::new(1003, &placed)]);
        }
        _ => {}
    }
    relay.drained(std::time::Duration::from_secs(10)).await;
    let admin_base = shopify.base_url();
    let pinterest_base = pinterest.base_url();
    let run = tokio::task::spawn_blocking(move || {
        let pick = |bad: Break, good: &str, wrong: &str| {
            if broken == bad { wrong } else { good }.to_owned()
        };
        let mut command = Command::new(pinrelay_bin());
        command
            .args(["doctor", "--shop", SHOP_DOMAIN, "--json", "--data-dir"])
            .arg(&data_dir)
            .args(["--admin-url-base", &admin_base])
            .env("PINTEREST_API_URL", &pinterest_base)
            .env(
                "SHOPIFY_WEBHOOK_SECRETS",
                pick(Break::WebhookSecret, WEBHOOK_SECRET, "your-client-secret"),
            )
            .env(
                "PINTEREST_ACCESS_TOKEN",
                pick(Break::PinterestToken, ACCESS_TOKEN, "pina_revoked"),
            )
            .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
            .env(
                "SHOPIFY_ADMIN_TOKEN",
                pick(Break::AdminToken, ADMIN_TOKEN, "shpat_revoked"),
            )
            .env("WEBHOOK_URL", &webhook_url)
            .env("ORDER_DELAY_SECONDS", "0")
            .env_remove("CHECKOUT_ON")
            .env_remove("CONTENT_ID")
            .env_remove("CATALOG_COUNTRY")
            .env_remove("SHOPIFY_API_VERSION");
        if api_token && broken != Break::AudienceListsWithoutToken {
            command.env("PINTEREST_API_TOKEN", ACCESS_TOKEN);
        } else {
            command.env_remove("PINTEREST_API_TOKEN");
        }
        if broken == Break::AudienceListsWithoutToken {
            command.env("AUDIENCE_LISTS", "customers");
        } else {
            command.env_remove("AUDIENCE_LISTS");
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    drop(relay);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let findings: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&run.stderr)));
    // The probe and the catalog lookup are valid for Pinterest's schema.
    assert!(
        pinterest.schema_errors().is_empty(),
        "{:?}",
        pinterest.schema_errors()
    );
    // The catalog is the ad account's: its id goes with every lookup.
    assert!(
        pinterest
            .catalog_requests()
            .iter()
            .all(|r| r.ad_account_id.as_deref() == Some(AD_ACCOUNT_ID))
    );
    Run {
        code: run.status.code().unwrap_or(-1),
        findings,
    }
}

#[tokio::test]
async fn a_good_setup_passes_every_check_that_can_run() {
    let run = doctor(Break::Nothing, true).await;
    assert_eq!(run.code, 0, "{:?}", run.findings);
    for check in [
        "secrets",
        "shopify_admin_token",
        "shopify_scopes",
        "webhook_subscriptions",
        "pinterest_conversion_token",
        "event_quality",
        "catalog_ids",
        "webhook_secret",
        "storefront_endpoint",
    ] {
        assert_eq!(run.status(check), "ok", "{:?}", run.finding(check));
    }
    assert!(run.findings.iter().all(|f| f.get("fix").is_none()));
    // No browser event has reached this relay yet, and serve has no alarms: skipped, not failed.
    assert_eq!(run.status("pixel_settings"), "skip");
    assert_eq!(run.status("alarm_subscription"), "skip");
    let reached = run.finding("webhook_secret")["detail"].as_str().unwrap();
    assert!(
        reached.contains("#1001 reached the relay") || reached.contains("#1001, reached"),
        "{reached}"
    );
    // The order's three variants, all in the catalog under the default CONTENT_ID.
    let catalog = run.finding("catalog_ids")["detail"].as_str().unwrap();
    assert!(
        catalog.starts_with("CONTENT_ID=variant finds 3 of 3 recent line items"),
        "{catalog}"
    );
}

#[tokio::test]
async fn without_an_api_token_event_quality_is_skipped_not_failed() {
    let run = doctor(Break::Nothing, false).await;
    assert_eq!(run.code, 0, "{:?}", run.findings);
    assert_eq!(run.status("event_quality"), "skip");
    assert!(
        run.finding("event_quality")["detail"]
            .as_str()
            .unwrap()
            .contains("PINTEREST_API_TOKEN")
    );
    assert_eq!(run.status("catalog_ids"), "skip");
    assert!(
        run.finding("catalog_ids")["detail"]
            .as_str()
            .unwrap()
            .contains("catalogs:read")
    );
    assert_eq!(run.status("shopify_scopes"), "ok");
}

#[tokio::test]
async fn each_broken_part_fails_its_own_check_with_its_fix() {
    for (broken, check, fix) in [
        (
            Break::PinterestToken,
            "pinterest_conversion_token",
            "PINTEREST_ACCESS_TOKEN",
        ),
        (
            Break::AdminToken,
            "shopify_admin_token",
            "SHOPIFY_ADMIN_TOKEN",
        ),
        (
            Break::Subscriptions,
            "webhook_subscriptions",
            "pinrelay subscribe --shop acme.myshopify.com --address http://127.0.0.1:",
        ),
        (Break::WebhookSecret, "secrets", "SHOPIFY_WEBHOOK_SECRETS"),
        (
            Break::BadSignature,
            "webhook_secret",
            "client secret (Dev Dashboard, the app, Settings) in SHOPIFY_WEBHOOK_SECRETS",
        ),
        (Break::MissingOrder, "webhook_secret", "pinrelay reconcile"),
        (
            Break::MissingScope,
            "shopify_scopes",
            "add read_customers to the app's scopes (Dev Dashboard: the app, Versions",
        ),
        (
            Break::CatalogBySku,
            "catalog_ids",
            "set CONTENT_ID=sku (stack parameter ContentId)",
        ),
        (
            Break::AudienceListsWithoutToken,
            "customer_lists",
            "pinrelay pinterest login --shop acme.myshopify.com --data-dir",
        ),
    ] {
        // With the API token, so catalog_ids runs too and must pass but for its own break.
        let run = doctor(broken, true).await;
        assert_eq!(run.code, 1, "{broken:?}: {:?}", run.findings);
        assert_eq!(run.status(check), "fail", "{broken:?}: {:?}", run.findings);
        let found_fix = run.finding(check)["fix"].as_str().unwrap_or_default();
        assert!(found_fix.contains(fix), "{broken:?}: {found_fix}");
        // Only the broken part fails: a bad Admin token skips the subscriptions it cannot read.
        let failed: Vec<&str> = run
            .findings
            .iter()
            .filter(|f| f["status"] == "fail")
            .map(|f| f["check"].as_str().unwrap())
            .collect();
        assert_eq!(failed, [check], "{broken:?}");
        // No secret's value is ever printed.
        let all = serde_json::to_string(&run.findings).unwrap();
        for secret in [
            "hush-its-a-secret",
            ACCESS_TOKEN,
            ADMIN_TOKEN,
            "shpat_revoked",
            "pina_revoked",
        ] {
            assert!(!all.contains(secret), "{broken:?} printed {secret}");
        }
    }
}

/// A stack on moto with pinrelay's outputs and parameters, and its three secrets, each filled
/// unless named in `unfilled` (`""`: never given a value; else that placeholder).
async fn moto_stack(
    env: &crate::helpers::TestEnv,
    name: &str,
    webhook_url: &str,
    unfilled: &[(&str, &str)],
) {
    let mut outputs = serde_json::Map::new();
    outputs.insert(
        "WebhookUrl".into(),
        serde_json::json!({"Value": webhook_url}),
    );
    for (output, value) in GOOD_SECRETS {
        let secret = env
            .secrets
            .create_secret()
            .name(format!("{name}-{output}"))
            .send()
            .await
            .unwrap();
        let arn = secret.arn().unwrap().to_owned();
        let value = unfilled
            .iter()
            .find(|(which, _)| *which == output)
            .map_or(value, |(_, placeholder)| placeholder);
        if !value.is_empty() {
            env.secrets
                .put_secret_value()
                .secret_id(&arn)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
        outputs.insert(output.into(), serde_json::json!({"Value": arn}));
    }
    // The resources doctor reads besides the outputs, under template.yaml's logical ids.
    let template = serde_json::json!({
        "Parameters": {
            "PinterestAdAccountId": {"Type": "String"},
            "CheckoutOn": {"Type": "String"},
            "ContentId": {"Type": "String", "Default": "variant"},
            "CatalogCountry": {"Type": "String", "Default": ""},
        },
        "Resources": {
            "IngestLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": format!("/aws/lambda/{name}-ingest")},
            },
            "DispatchLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": format!("/aws/lambda/{name}-dispatch")},
            },
            "AlarmTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "Subscription": [{"Protocol": "email", "Endpoint": "ops@example.com"}],
                },
            },
        },
        "Outputs": outputs,
    });
    let parameters = [
        ("PinterestAdAccountId", AD_ACCOUNT_ID),
        ("CheckoutOn", "created"),
    ];
    env.create_stack(name, &template, &parameters).await;
}

/// A relay answering at the stack's `WebhookUrl` (serve runs the ingest code the Lambda runs), so
/// the storefront endpoint can be probed on loopback.
fn stack_relay(dir: &std::path::Path, pinterest: &FakePinterest) -> Relay {
    Relay::start(
        &dir.join("relay"),
        dir.join("serve.log"),
        WEBHOOK_SECRET,
        pinterest,
        &[("SHOPIFY_SHOP_DOMAINS", SHOP_DOMAIN)],
    )
}

/// What the stack's own telemetry recorded in the last day.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Telemetry {
    Quiet,
    /// Two webhooks refused for their signature, and one pixel with other settings.
    Refusals,
}

/// Writes `lines` to a new stream of log group `group`, as the Lambda runtime would.
async fn put_log_lines(env: &crate::helpers::TestEnv, group: &str, lines: &[String]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.sdk_config);
    let stream = "2026/12/05/[$LATEST]0123456789abcdef";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream);
    for line in lines {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(line)
                .build()
                .unwrap(),
        );
    }
    put.send().await.unwrap();
}

/// `doctor --stack` with nothing but AWS credentials in the environment (and
/// `PINTEREST_API_TOKEN` when `api_token`), on a shop whose latest order's variants are in the
/// catalog.
async fn doctor_stack(
    unfilled: Option<(&str, &str)>,
    subscribed: bool,
    telemetry: Telemetry,
    api_token: bool,
) -> Run {
    pinrelay::pinterest::http::install_crypto_provider();
    let env = crate::helpers::TestEnv::start().await;
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relay = stack_relay(dir.path(), &pinterest);
    if subscribed {
        for topic in ["orders/create", "customers/create"] {
            shopify.add_subscription(topic, WEBHOOK_URL);
        }
    }
    moto_stack(&env, "pinrelay-doctor", WEBHOOK_URL, unfilled.as_slice()).await;
    let order: Value = serde_json::from_slice(&order_body(1001)).unwrap();
    seed_catalog(&pinterest, &order, false);
    shopify.add_orders([FakeOrder::from_payload(order)]);
    shopify.set_access_scopes(&GOOD_SCOPES);
    if telemetry == Telemetry::Refusals {
        // What ingest and dispatch write when that happens: two refusals (each also counted on
        // an EMF line, which must not count twice) and a pixel with other settings.
        let refusal = format!(
            r#"{{"timestamp":"{}","level":"WARN","message":"webhook refused","topic":"orders/create","shop":"{SHOP_DOMAIN}","outcome":"bad_signature","latency_ms":1}}"#,
            chrono::Utc::now().to_rfc3339()
        );
        let emf = r#"{"Function":"pinrelay-doctor-ingest","Reason":"bad_signature","WebhooksRejected":1.0,"_aws":{}}"#;
        let drift = format!(
            r#"{{"level":"WARN","message":"{}","settings":"[\"checkout_on\"]"}}"#,
            pinrelay::dispatch::PIXEL_DRIFT_MESSAGE
        );
        for (function, lines) in [
            ("ingest", vec![refusal.clone(), emf.to_owned(), refusal]),
            ("dispatch", vec![drift]),
        ] {
            put_log_lines(
                &env,
                &format!("/aws/lambda/pinrelay-doctor-{function}"),
                &lines,
            )
            .await;
        }
    }
    let endpoint = env.endpoint.clone();
    let admin_base = shopify.base_url();
    let pinterest_base = pinterest.base_url();
    let relay_base = relay.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut command = crate::helpers::pinrelay_on_moto(&endpoint);
        command
            .args([
                "doctor",
                "--shop",
                SHOP_DOMAIN,
                "--stack",
                "pinrelay-doctor",
                "--json",
            ])
            .args(["--admin-url-base", &admin_base])
            .args(["--relay-url-base", &relay_base])
            .env("PINTEREST_API_URL", &pinterest_base);
        for var in [
            "SHOPIFY_WEBHOOK_SECRETS",
            "PINTEREST_ACCESS_TOKEN",
            "PINTEREST_AD_ACCOUNT_ID",
            "SHOPIFY_ADMIN_TOKEN",
            "SHOPIFY_CLIENT_ID",
            "SHOPIFY_CLIENT_SECRET",
            "PINTEREST_API_TOKEN",
            "WEBHOOK_URL",
            "CHECKOUT_ON",
            "CONTENT_ID",
            "CATALOG_COUNTRY",
            "SHOPIFY_API_VERSION",
        ] {
            command.env_remove(var);
        }
        if api_token {
            command.env("PINTEREST_API_TOKEN", ACCESS_TOKEN);
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(pinterest.schema_errors().is_empty());
    drop(relay);
    Run {
        code: out.status.code().unwrap_or(-1),
        findings,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_stack_passes_from_its_outputs_parameters_and_secrets_alone() {
    let run = doctor_stack(None, true, Telemetry::Quiet, true).await;
    assert_eq!(run.code, 0, "{:?}", run.findings);
    for check in [
        "secrets",
        "shopify_admin_token",
        "shopify_scopes",
        "webhook_subscriptions",
        "pinterest_conversion_token",
        "event_quality",
        "catalog_ids",
        "webhook_secret",
        "storefront_endpoint",
        "pixel_settings",
        "alarm_subscription",
    ] {
        assert_eq!(run.status(check), "ok", "{:?}", run.finding(check));
    }
    assert!(
        run.finding("alarm_subscription")["detail"]
            .as_str()
            .unwrap()
            .contains("ops@example.com")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_that_refused_webhooks_or_saw_an_old_pixel_fails_those_checks() {
    let run = doctor_stack(None, true, Telemetry::Refusals, false).await;
    assert_eq!(run.code, 1, "{:?}", run.findings);
    assert_eq!(run.status("webhook_secret"), "fail", "{:?}", run.findings);
    assert!(
        run.finding("webhook_secret")["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 webhook(s) refused")
    );
    assert!(
        run.finding("webhook_secret")["fix"]
            .as_str()
            .unwrap()
            .contains("the stack's ShopifyWebhookSecret")
    );
    assert_eq!(run.status("pixel_settings"), "fail");
    assert!(
        run.finding("pixel_settings")["fix"]
            .as_str()
            .unwrap()
            .contains("--stack pinrelay-doctor")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_with_an_unfilled_secret_or_no_subscription_fails_that_check() {
    // The Admin token secret the stack created and nobody filled: secrets fails, the Admin checks
    // skip (nothing to check with), nothing else fails.
    let run = doctor_stack(
        Some(("ShopifyAdminTokenSecret", "")),
        true,
        Telemetry::Quiet,
        false,
    )
    .await;
    assert_eq!(run.code, 1, "{:?}", run.findings);
    assert_eq!(run.status("secrets"), "fail");
    let fix = run.finding("secrets")["fix"].as_str().unwrap();
    assert!(
        fix.contains("aws secretsmanager put-secret-value --secret-id arn:aws:secretsmanager:")
            && fix.contains("file:///dev/stdin"),
        "{fix}"
    );
    assert_eq!(run.status("shopify_admin_token"), "skip");
    assert_eq!(run.status("webhook_subscriptions"), "skip");
    assert_eq!(run.status("pinterest_conversion_token"), "ok");

    // A placeholder left in the conversion token's secret.
    let run = doctor_stack(
        Some(("PinterestAccessTokenSecret", "your-conversion-token")),
        true,
        Telemetry::Quiet,
        false,
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(run.status("secrets"), "fail");
    assert_eq!(run.status("pinterest_conversion_token"), "skip");

    let run = doctor_stack(None, false, Telemetry::Quiet, false).await;
    assert_eq!(run.code, 1);
    assert_eq!(run.status("webhook_subscriptions"), "fail");
    assert!(
        run.finding("webhook_subscriptions")["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("--address {WEBHOOK_URL}"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pixel_from_a_stack_points_at_its_browser_endpoint_with_its_settings() {
    let env = crate::helpers::TestEnv::start().await;
    moto_stack(&env, "pinrelay-pixel", WEBHOOK_URL, &[]).await;
    let endpoint = env.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::pinrelay_on_moto(&endpoint)
            .args(["pixel", "--shop", "acme", "--tag-id", "2612345678901"])
            .args(["--stack", "pinrelay-pixel"])
            .env("CHECKOUT_ON", "paid") // the stack's parameter decides, not this shell
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let pixel = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "var PINTEREST_TAG_ID = \"2612345678901\";",
        "var RELAY_URL = \"https://relay.example.com/events/browser\";",
        "var SHOP_DOMAIN = \"acme.myshopify.com\";",
        "var CHECKOUT_ON = \"created\";",
    ] {
        assert!(pixel.lines().any(|l| l == line), "missing {line}");
    }
}

/// What one `pinrelay connect` run left behind.
struct Connected {
    out: std::process::Output,
    env: crate::helpers::TestEnv,
    shopify: FakeShopify,
    _dir: tempfile::TempDir,
    pixel_path: std::path::PathBuf,
}

impl Connected {
    async fn secret(&self, output: &str) -> Option<String> {
        self.env
            .secrets
            .get_secret_value()
            .secret_id(format!("pinrelay-connect-{output}"))
            .send()
            .await
            .unwrap()
            .secret_string()
            .map(str::to_owned)
    }
}

/// `pinrelay connect` on a stack whose secrets are unfilled, given `stdin` and the `vars`.
async fn connect(stdin: String, vars: Vec<(&'static str, &'static str)>) -> Connected {
    pinrelay::pinterest::http::install_crypto_provider();
    let env = crate::helpers::TestEnv::start().await;
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    let unfilled = [
        ("ShopifyWebhookSecret", ""),
        ("PinterestAccessTokenSecret", ""),
        ("ShopifyAdminTokenSecret", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    let relay = stack_relay(dir.path(), &pinterest);
    moto_stack(&env, "pinrelay-connect", WEBHOOK_URL, &unfilled).await;
    let pixel_path = dir.path().join("pixel.js");
    let (endpoint, admin, api, out_path, relay_base) = (
        env.endpoint.clone(),
        shopify.base_url(),
        pinterest.base_url(),
        pixel_path.clone(),
        relay.base.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut command = crate::helpers::pinrelay_on_moto(&endpoint);
        command
            .args(["connect", "--stack", "pinrelay-connect", "--shop", "acme"])
            .args(["--tag-id", "2612345678901", "--pixel-out"])
            .arg(&out_path)
            .args(["--admin-url-base", &admin])
            .args(["--relay-url-base", &relay_base])
            .env("PINTEREST_API_URL", &api)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for var in [
            "SHOPIFY_WEBHOOK_SECRETS",
            "PINTEREST_ACCESS_TOKEN",
            "SHOPIFY_ADMIN_TOKEN",
            "SHOPIFY_CLIENT_ID",
            "SHOPIFY_CLIENT_SECRET",
            "PINTEREST_API_TOKEN",
            "CHECKOUT_ON",
            "SHOPIFY_API_VERSION",
        ] {
            command.env_remove(var);
        }
        command.envs(vars);
        let mut child = command.spawn().unwrap();
        write!(child.stdin.take().unwrap(), "{stdin}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(pinterest.schema_errors().is_empty());
    Connected {
        out,
        env,
        shopify,
        _dir: dir,
        pixel_path,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_fills_the_secrets_from_stdin_subscribes_writes_the_pixel_and_passes_doctor() {
    // The three secrets, one a line, in the order connect asks for them.
    let run = connect(
        format!("hush-its-a-secret\n{ACCESS_TOKEN}\n{ADMIN_TOKEN}\n"),
        Vec::new(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(0), "{stdout}\n{stderr}");

    // The secrets hold what was typed.
    for (output, expected) in GOOD_SECRETS {
        assert_eq!(
            run.secret(output).await.as_deref(),
            Some(expected),
            "{output}"
        );
    }
    // The webhooks are subscribed at the stack's URL.
    let mut topics: Vec<String> = run
        .shopify
        .subscriptions()
        .into_iter()
        .filter(|s| s.uri == WEBHOOK_URL)
        .map(|s| s.topic)
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        ["APP_UNINSTALLED", "CUSTOMERS_CREATE", "ORDERS_CREATE"]
    );
    // The pixel has nothing left to edit.
    let pixel = std::fs::read_to_string(&run.pixel_path).unwrap();
    assert!(pixel.contains("var RELAY_URL = \"https://relay.example.com/events/browser\";"));
    assert!(!pixel.contains("YOUR_PINTEREST_TAG_ID"));
    // It ends with doctor, every check that can run passing; no secret is echoed.
    assert!(
        stdout.contains("ok    pinterest_conversion_token"),
        "{stdout}"
    );
    for secret in ["hush-its-a-secret", ACCESS_TOKEN, ADMIN_TOKEN] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    assert!(
        run.shopify.mints().is_empty(),
        "a static token is never minted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_stores_a_dev_dashboard_apps_client_credentials_and_mints_tokens_from_them() {
    let run = connect(
        format!("hush-its-a-secret\n{ACCESS_TOKEN}\n"),
        vec![
            ("SHOPIFY_CLIENT_ID", CLIENT_ID),
            ("SHOPIFY_CLIENT_SECRET", CLIENT_SECRET),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(0), "{stdout}\n{stderr}");

    // The stack's secret holds the JSON form, which the watch and doctor read.
    let stored: Value =
        serde_json::from_str(&run.secret("ShopifyAdminTokenSecret").await.unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    );
    // subscribe and doctor (separate clients) each minted a token and used only minted ones.
    let mints = run.shopify.mints();
    assert_eq!(mints.len(), 2, "{mints:?}");
    assert_eq!(run.shopify.subscriptions().len(), 3);
    assert!(run.shopify.requests().iter().all(|r| {
        r.status == 200
            && mints
                .iter()
                .any(|m| r.token.as_deref() == Some(m.token.as_str()))
    }));
    assert!(stdout.contains("ok    shopify_admin_token"), "{stdout}");
    for secret in [CLIENT_SECRET, mints[0].token.as_str()] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_with_client_credentials_passes_and_a_wrong_secret_names_the_fix() {
    let good =
        serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).to_string();
    let run = doctor_stack(
        Some(("ShopifyAdminTokenSecret", &good)),
        true,
        Telemetry::Quiet,
        false,
    )
    .await;
    assert_eq!(run.code, 0, "{:?}", run.findings);
    assert_eq!(run.status("shopify_admin_token"), "ok");
    assert_eq!(run.status("webhook_subscriptions"), "ok");

    let wrong =
        serde_json::json!({"client_id": CLIENT_ID, "client_secret": "shpss_wrong"}).to_string();
    let run = doctor_stack(
        Some(("ShopifyAdminTokenSecret", &wrong)),
        true,
        Telemetry::Quiet,
        false,
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(run.status("shopify_admin_token"), "fail");
    let finding = run.finding("shopify_admin_token");
    assert!(
        finding["detail"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{finding}"
    );
    let fix = finding["fix"].as_str().unwrap();
    assert!(
        fix.contains("client id and secret") && fix.contains("ShopifyAdminTokenSecret"),
        "{fix}"
    );
    assert!(
        !serde_json::to_string(&run.findings)
            .unwrap()
            .contains("shpss_wrong")
    );
}
