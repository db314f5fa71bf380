//! `pinrelay reconcile` end to end: a real `pinrelay serve` fed a mix of orders, the fake Shopify
//! Admin API listing them plus two the relay never saw (and one too old to recover), the fake
//! Pinterest rejecting one event and answering Event Quality.
//!
//! - `--json` classifies every order: sent, skipped (test, POS, another channel), dead-lettered
//!   (Pinterest rejected it), missing (recoverable or not), and the quality section is there;
//! - `--backfill` sends exactly the two recoverable missing orders, once each, through the relay's
//!   queue, and a second `--backfill` sends nothing more;
//! - afterwards every order is accounted for, and `--html` writes the page;
//! - against a stack (`--stack`, its outputs read from CloudFormation in moto): the DynamoDB ledger
//!   is read, and `--backfill` puts the missing order on the SQS queue as an `orders/create` of
//!   source `backfill`, filed as queued.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::fake_shopify::{ADMIN_TOKEN, FakeOrder, FakeShopify, SHOP_DOMAIN};
use crate::relay::Relay;
use crate::subscribe::pinrelay_bin;

/// The token of serve's reconcile page in these tests.
const REPORT_TOKEN: &str = "report-token-for-tests";
const SECRET: &str = "reconcile-test-secret";
const ORDER_FIXTURE: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";

/// The REST order fixture as order `id`, placed `hours_ago`, from `source`.
fn order(id: u64, hours_ago: i64, source: &str, test: bool) -> Value {
    let mut order: Value = serde_json::from_slice(&crate::helpers::fixture(ORDER_FIXTURE)).unwrap();
    let at = (Utc::now() - chrono::Duration::hours(hours_ago))
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = id.into();
    order["name"] = format!("#{id}").into();
    order["created_at"] = at.clone().into();
    order["processed_at"] = at.into();
    order["source_name"] = source.into();
    order["test"] = test.into();
    order["cancelled_at"] = Value::Null;
    order
}

async fn post(client: &reqwest::Client, relay: &Relay, order: &Value) {
    let body = serde_json::to_vec(order).unwrap();
    let status = client
        .post(relay.webhook_url())
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP_DOMAIN)
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Webhook-Id", format!("wh-{}", order["id"]))
        .header(
            "X-Shopify-Hmac-Sha256",
            pinrelay::shopify::sign(SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

/// Runs `pinrelay reconcile` against the fakes and the data dir; returns (exit code, stdout, stderr).
fn reconcile(
    data_dir: &Path,
    shopify: &FakeShopify,
    pinterest: &FakePinterest,
    extra: &[&str],
) -> (i32, String, String) {
    let out = Command::new(pinrelay_bin())
        .args([
            "reconcile",
            "--shop",
            SHOP_DOMAIN,
            "--since",
            "14d",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(["--admin-url-base", &shopify.base_url()])
        .args(extra)
        .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
        // Event Quality reads with the API token; the conversion token is not it.
        .env("PINTEREST_API_TOKEN", ACCESS_TOKEN)
        .env(
            "PINTEREST_ACCESS_TOKEN",
            "the-conversion-token-is-not-used-here",
        )
        .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
        .env("PINTEREST_API_URL", pinterest.base_url())
        .env_remove("VALUE_SOURCE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn statuses(report: &Value) -> HashMap<u64, (String, String)> {
    report["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let detail = o["reason"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    o["recoverable"]
                        .as_bool()
                        .map(|r| format!("recoverable={r}"))
                })
                .unwrap_or_default();
            (
                o["id"].as_u64().unwrap(),
                (o["status"].as_str().unwrap().to_owned(), detail),
            )
        })
        .collect()
}

fn status(s: &str, d: &str) -> (String, String) {
    (s.to_owned(), d.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_classifies_every_order_and_backfill_sends_the_missing_ones_once() {
    pinrelay::pinterest::http::install_crypto_provider();
    let pinterest = FakePinterest::start().await;
    pinterest.fail_events(["9005"], "invalid currency");
    let shopify = FakeShopify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let admin_url = shopify.base_url();
    let relay = Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        SECRET,
        &pinterest,
        &[
            ("ORDER_SOURCES", "web"),
            // serve's own report page, GET /reconcile.
            ("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SHOPIFY_ADMIN_API_URL", &admin_url),
            ("SHOPIFY_SHOP_DOMAINS", SHOP_DOMAIN),
            ("PINRELAY_REPORT_TOKEN", REPORT_TOKEN),
        ],
    );

    let seen = [
        order(9001, 30, "web", false),     // sent
        order(9002, 29, "web", true),      // test order
        order(9003, 28, "pos", false),     // point of sale
        order(9004, 27, "1234567", false), // another sales channel (an app id)
        order(9005, 26, "web", false),     // Pinterest rejects it
    ];
    let never_seen = [
        order(9006, 5, "web", false),
        order(9007, 3, "web", false),
        order(9008, 24 * 9, "web", false), // older than Pinterest's 7 days
        order(9009, 4, "web", true),       // a test order: not a conversion
        order(9010, 4, "pos", false),      // a POS order: not a conversion
    ];
    shopify.add_orders(
        seen.iter()
            .chain(&never_seen)
            .cloned()
            .map(FakeOrder::from_payload),
    );
    shopify.set_page_size(3);
    let client = reqwest::Client::new();
    for body in &seen {
        post(&client, &relay, body).await;
    }
    relay.drained(Duration::from_secs(30)).await;

    let (code, json, stderr) = reconcile(&data_dir, &shopify, &pinterest, &["--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    let expected = HashMap::from([
        (9001, status("sent", "")),
        (9002, status("skipped", "test_order")),
        (9003, status("skipped", "pos_order")),
        (9004, status("skipped", "sales_channel")),
        (9005, status("dead_lettered", "pinterest_rejected")),
        (9006, status("missing", "recoverable=true")),
        (9007, status("missing", "recoverable=true")),
        (9008, status("missing", "recoverable=false")),
        (9009, status("not_a_conversion", "test_order")),
        (9010, status("not_a_conversion", "pos_order")),
    ]);
    assert_eq!(statuses(&report), expected, "{json}");
    assert_eq!(report["time_zone"], "America/New_York");
    assert_eq!(report["totals"]["orders"], 10);
    assert_eq!(report["totals"]["sent"], 1);
    assert_eq!(report["totals"]["skipped_by_rule"], 3);
    assert_eq!(report["totals"]["missing"], 3);
    assert_eq!(report["totals"]["not_a_conversion"], 2);
    assert_eq!(report["totals"]["accuracy"], 0.6);
    // Per day and in total, the statuses add up to the orders.
    for totals in report["days"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&report["totals"]])
    {
        let sum: u64 = totals["statuses"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(sum, totals["orders"].as_u64().unwrap(), "{totals}");
    }
    let sent = report["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == 9001)
        .unwrap();
    assert_eq!(sent["match_keys"]["email"], true, "{sent}");
    assert!(
        report["quality"]["components"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{json}"
    );
    assert!(
        shopify
            .requests()
            .iter()
            .filter(|r| r.selects("orders("))
            .count()
            >= 3,
        "paged"
    );

    // serve records the rules it runs with; reconcile --data-dir judges orders by them.
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(recorded["ORDER_SOURCES"], "web");
    assert_eq!(recorded["VALUE_SOURCE"], "subtotal");

    // Dry run: lists, sends nothing.
    let (code, out, stderr) = reconcile(
        &data_dir,
        &shopify,
        &pinterest,
        &["--backfill", "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("would backfill #9006") && out.contains("would backfill #9007"),
        "{out}"
    );
    assert!(
        out.contains("not recoverable") && out.contains("#9008"),
        "{out}"
    );
    assert!(
        out.starts_with("dry run: 2 missing order(s)"),
        "the result first: {out}"
    );
    let (code, json, stderr) = reconcile(
        &data_dir,
        &shopify,
        &pinterest,
        &["--backfill", "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let dry: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(dry["would_send"], serde_json::json!([9006, 9007]), "{dry}");
    assert_eq!(
        dry["not_conversions"],
        serde_json::json!([9009, 9010]),
        "{dry}"
    );
    assert!(
        dry["not_recoverable"]
            .as_array()
            .unwrap()
            .contains(&Value::from(9008)),
        "{dry}"
    );
    assert!(dry["not_conversions"].is_array(), "{dry}");

    let before = pinterest.accepted_event_ids();
    let (code, out, stderr) = reconcile(&data_dir, &shopify, &pinterest, &["--backfill"]);
    assert_eq!(code, 0, "{out}\n{stderr}");
    assert!(out.contains("backfilled 2 of 2"), "{out}");
    // A second run before or after dispatch queues nothing Pinterest would see twice.
    let (code, out, stderr) = reconcile(&data_dir, &shopify, &pinterest, &["--backfill"]);
    assert_eq!(code, 0, "{out}\n{stderr}");
    relay.drained(Duration::from_secs(30)).await;
    let accepted = pinterest.accepted_event_ids();
    let new: Vec<&String> = accepted.iter().skip(before.len()).collect();
    let mut new_sorted: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
    new_sorted.sort_unstable();
    assert_eq!(
        new_sorted,
        ["9006", "9007"],
        "exactly the two missing orders, once"
    );

    let html = dir.path().join("report.html");
    let (code, json, stderr) = reconcile(
        &data_dir,
        &shopify,
        &pinterest,
        &["--json", "--html", html.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    let after = statuses(&report);
    assert_eq!(after[&9006].0, "sent");
    assert_eq!(after[&9007].0, "sent");
    assert_eq!(after[&9008], status("missing", "recoverable=false"));
    assert_eq!(report["totals"]["missing"], 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("#9008"),
        "the page lists the order to look at"
    );

    // serve's page is its owner's only: a foreign Host, no token or a wrong one are refused.
    let url = format!("{}/reconcile?since=14d&format=json", relay.base);
    let foreign = client
        .get(&url)
        .header("Host", "relay.example.org")
        .bearer_auth(REPORT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.text().await.unwrap().contains("<form"),
        "a login form"
    );
    let wrong = client.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    // The login form sets an HttpOnly cookie, which opens the page.
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/reconcile/login", relay.base))
        .form(&[("token", REPORT_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let by_cookie = client
        .get(&url)
        .header("Cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    // serve's page says the same, as JSON and as the HTML page.
    let page: Value = client
        .get(format!("{}/reconcile?since=14d&format=json", relay.base))
        .bearer_auth(REPORT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        statuses(&page),
        after,
        "serve's /reconcile equals the CLI's report"
    );
    let html = client
        .get(format!("{}/reconcile?since=14d", relay.base))
        .bearer_auth(REPORT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.text()
            .await
            .unwrap()
            .contains(r#"data-metric="totals.orders""#)
    );
    let bad = client
        .get(format!("{}/reconcile?since=forever", relay.base))
        .bearer_auth(REPORT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // The table says the same in words.
    let (code, table, _) = reconcile(&data_dir, &shopify, &pinterest, &[]);
    assert_eq!(code, 0);
    assert!(table.contains("pinterest_rejected"), "{table}");
    assert!(table.contains("not recoverable"), "{table}");
}

/// Creates a CloudFormation stack in moto whose outputs name the test's table and queues, as a
/// deployed pinrelay stack's do (through the Query API: the tests need no CloudFormation SDK).
async fn moto_stack(env: &crate::helpers::TestEnv, name: &str) {
    let template = serde_json::json!({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "IdempotencyTableName": {"Value": env.table},
            "EventQueueUrl": {"Value": env.queue_url},
            "DeadLetterQueueUrl": {"Value": env.dlq_url},
        }
    });
    env.create_stack(name, &template, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn against_a_stack_reconcile_reads_the_dynamodb_records_and_backfills_through_sqs() {
    use pinrelay::idempotency::{IdempotencyKey, SentFacts, Settled, SkipFacts, contract};
    pinrelay::pinterest::http::install_crypto_provider();
    let env = crate::helpers::TestEnv::start().await;
    moto_stack(&env, "pinrelay-reconcile-test").await;
    let store = pinrelay::idempotency::dynamodb::DynamoDbIdempotencyStore::new(
        pinrelay::dynamodb::Table::new(env.dynamodb.clone(), &env.table),
    );
    let now = Utc::now();
    let key = |id: u64| IdempotencyKey::order(SHOP_DOMAIN, id).unwrap();
    let facts = SentFacts {
        at: Some(now),
        match_keys: pinrelay::pinterest::MatchKeys {
            email: true,
            ..Default::default()
        },
        value: Some("10.00".into()),
        currency: Some("USD".into()),
        ..SentFacts::default()
    };
    contract::write_settled(&store, key(9101), Settled::Sent(facts), now).await;
    let skip = SkipFacts {
        reason: "test_order".into(),
        detail: "a test order".into(),
        by_rule: true,
    };
    contract::write_settled(&store, key(9102), Settled::Skipped(skip), now).await;
    let shopify = FakeShopify::start().await;
    shopify.add_orders(
        [
            order(9101, 6, "web", false),
            order(9102, 5, "web", true),
            order(9103, 4, "web", false),
        ]
        .map(FakeOrder::from_payload),
    );

    let run = |extra: &'static [&'static str]| {
        let endpoint = env.endpoint.clone();
        let admin = shopify.base_url();
        tokio::task::spawn_blocking(move || {
            crate::helpers::pinrelay_on_moto(&endpoint)
                .args(["reconcile", "--shop", SHOP_DOMAIN, "--since", "2d"])
                .args(["--stack", "pinrelay-reconcile-test", "--json"])
                .args(["--admin-url-base", &admin])
                .args(extra)
                .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
                .env_remove("PINTEREST_ACCESS_TOKEN")
                .env_remove("PINTEREST_API_TOKEN")
                .env_remove("VALUE_SOURCE")
                .output()
                .unwrap()
        })
    };
    let out = run(&[]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = statuses(&report);
    assert_eq!(found[&9101], status("sent", ""));
    assert_eq!(found[&9102], status("skipped", "test_order"));
    assert_eq!(found[&9103], status("missing", "recoverable=true"));
    assert!(
        report["quality"].is_null(),
        "no Pinterest token, no quality section"
    );
    let out = run(&["--backfill"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let backfilled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        backfilled["sent"],
        serde_json::json!([9103]),
        "{backfilled}"
    );

    // The missing order is on the relay's queue as an orders/create of source backfill, with the
    // order's REST body; nothing is recorded until dispatch settles it.
    let queued = env.receive_all(&env.queue_url).await;
    assert_eq!(queued.len(), 1);
    let attr = |name: &str| {
        queued[0]
            .message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .map(str::to_owned)
    };
    let relay = attr("relay").unwrap_or_default();
    assert!(relay.contains("source=backfill"), "{relay}");
    assert_eq!(attr("topic").as_deref(), Some("orders/create"));
    let body: Value = serde_json::from_str(queued[0].body().unwrap()).unwrap();
    assert_eq!(body["id"], 9103);
    let out = run(&[]).await.unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        statuses(&report)[&9103],
        status("missing", "recoverable=true"),
        "the record says what happened, not what is hoped: missing until dispatch sends it"
    );
}
