//! Many stores on one `pinrelay serve`: stores registered with `pinrelay shops add` (one while the
//! relay runs), each store's webhooks verified with its own secret and its events sent to its own
//! ad account; an unknown shop and a body signed with another store's secret refused; a store
//! whose Pinterest token is refused delays no other store.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::fake_pinterest::{ACCESS_TOKEN, FakePinterest};
use crate::relay::Relay;
use crate::subscribe::pinrelay_bin;

/// How long serve uses a registry answer here (60 s by default).
const REGISTRY_TTL_MS: &str = "300";

/// A store of the test: its domain, its app's client secret, its ad account and Shopify's id.
struct Store {
    domain: &'static str,
    secret: &'static str,
    ad_account: &'static str,
    shop_id: u64,
}

const ALPHA: Store = Store {
    domain: "alpha.myshopify.com",
    secret: "alpha-client-secret",
    ad_account: "1001",
    shop_id: 9_001,
};
const BETA: Store = Store {
    domain: "beta.myshopify.com",
    secret: "beta-client-secret",
    ad_account: "1002",
    shop_id: 9_002,
};
const GAMMA: Store = Store {
    domain: "gamma.myshopify.com",
    secret: "gamma-client-secret",
    ad_account: "1003",
    shop_id: 9_003,
};

/// `pinrelay shops ARGS --data-dir DIR` with `stdin` as its standard input and none of the
/// relay's variables set; panics unless it succeeds.
fn shops(data_dir: &Path, args: &[&str], stdin: &str) {
    let mut command = Command::new(pinrelay_bin());
    command
        .arg("shops")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir);
    let out = crate::helpers::run_with_stdin(command, stdin);
    assert!(
        out.status.success(),
        "shops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pinrelay shops list --json`: the registered stores' entries.
fn listed(data_dir: &Path) -> Vec<Value> {
    let out = Command::new(pinrelay_bin())
        .args(["shops", "list", "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Registers `store` with Pinterest token `token` (its secrets on standard input).
fn add(data_dir: &Path, store: &Store, token: &str) {
    let shop_id = store.shop_id.to_string();
    shops(
        data_dir,
        &[
            "add",
            store.domain,
            "--ad-account",
            store.ad_account,
            "--shop-id",
            &shop_id,
        ],
        &format!("{}\n{token}\n\n\n", store.secret),
    );
}

/// Shopify's sample order as order `id` of `store`: its status URL names the store's shop id.
fn order(store: &Store, id: u64) -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&crate::helpers::fixture(
        "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json",
    ))
    .unwrap();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = id.into();
    order["name"] = format!("#{id}").into();
    order["created_at"] = now.clone().into();
    order["processed_at"] = now.into();
    order["order_status_url"] = format!(
        "https://{}/{}/orders/abc{id}/authenticate?key=k",
        store.domain, store.shop_id
    )
    .into();
    serde_json::to_vec(&order).unwrap()
}

/// Posts `body` as `orders/create` under `shop`'s header, signed with `secret`; the status.
async fn post(relay: &Relay, shop: &str, secret: &str, body: &[u8]) -> u16 {
    let id = format!("wh-{shop}-{}", body.len());
    let url = relay.webhook_url();
    crate::relay::post_webhook(&url, "orders/create", shop, secret, &id, body).await
}

/// The ad account each accepted event id went to.
fn accepted(fake: &FakePinterest) -> Vec<(String, String)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .flat_map(|r| {
            r.event_ids
                .into_iter()
                .map(move |id| (id, r.ad_account_id.clone()))
        })
        .collect()
}

async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A relay of registered stores only (no default store: `SHOPIFY_WEBHOOK_SECRETS` is empty),
/// each of `stores` added with its Pinterest token before it starts; the fake Pinterest, the
/// temporary directory (kept alive), the data directory and the relay.
async fn serving(
    stores: &[(&Store, &str)],
) -> (FakePinterest, tempfile::TempDir, std::path::PathBuf, Relay) {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    for (store, token) in stores {
        add(&data_dir, store, token);
    }
    let relay = Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        "",
        &fake,
        &[("PINRELAY_REGISTRY_TTL_MS", REGISTRY_TTL_MS)],
    );
    (fake, dir, data_dir, relay)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_store_is_verified_with_its_secret_and_sent_to_its_ad_account() {
    let (fake, _dir, data_dir, relay) =
        serving(&[(&ALPHA, ACCESS_TOKEN), (&BETA, ACCESS_TOKEN)]).await;

    assert_eq!(
        post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 101)).await,
        200
    );
    assert_eq!(
        post(&relay, BETA.domain, BETA.secret, &order(&BETA, 201)).await,
        200
    );
    // Not registered yet, whatever the signature.
    let gamma_order = order(&GAMMA, 301);
    assert_eq!(
        post(&relay, GAMMA.domain, GAMMA.secret, &gamma_order).await,
        401
    );
    // Alpha's order, signed with alpha's secret, sent under beta's header.
    let alpha_order = order(&ALPHA, 102);
    assert_eq!(
        post(&relay, BETA.domain, ALPHA.secret, &alpha_order).await,
        401
    );
    // Beta's secret on alpha's order (stores sharing one app secret): its status URL names
    // alpha's shop id, so it cannot become beta's conversion.
    let shared = order(&ALPHA, 103);
    assert_eq!(post(&relay, BETA.domain, BETA.secret, &shared).await, 401);

    // Gamma, added while the relay runs, is served once the relay reads its registry again.
    add(&data_dir, &GAMMA, ACCESS_TOKEN);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        post(&relay, GAMMA.domain, GAMMA.secret, &gamma_order).await,
        200
    );

    until("three events", Duration::from_secs(15), || {
        accepted(&fake).len() >= 3
    })
    .await;
    relay.drained(Duration::from_secs(10)).await;
    let mut sent = accepted(&fake);
    sent.sort();
    assert_eq!(
        sent,
        [
            ("101".to_owned(), "1001".to_owned()),
            ("201".to_owned(), "1002".to_owned()),
            ("301".to_owned(), "1003".to_owned()),
        ]
    );
    // One request never mixes stores.
    assert!(fake.requests().iter().all(|r| r.event_count <= 1));
    let metrics = relay.metrics().await;
    assert_eq!(
        metrics.get("WebhooksRejected{Reason=unknown_shop}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics.get("WebhooksRejected{Reason=bad_signature}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics.get("WebhooksRejected{Reason=shop_mismatch}"),
        Some(&1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_whose_token_is_refused_does_not_hold_up_another() {
    let (fake, _dir, _data_dir, relay) =
        serving(&[(&ALPHA, "pina_revoked"), (&BETA, ACCESS_TOKEN)]).await;
    for id in 1..=3 {
        assert_eq!(
            post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 100 + id)).await,
            200
        );
        assert_eq!(
            post(&relay, BETA.domain, BETA.secret, &order(&BETA, 200 + id)).await,
            200
        );
    }
    until("beta's three events", Duration::from_secs(15), || {
        accepted(&fake).len() >= 3
    })
    .await;
    let sent = accepted(&fake);
    assert!(
        sent.iter()
            .all(|(id, account)| id.starts_with('2') && account == BETA.ad_account),
        "{sent:?}"
    );
    // Alpha's events were tried with alpha's token, refused, and are kept for retry.
    let refused: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 401)
        .collect();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|r| r.ad_account_id == ALPHA.ad_account));
    let health = relay.health().await;
    assert!(health["pending"].as_u64().unwrap_or(0) >= 3, "{health}");
}

/// `pinrelay doctor --shop SHOP --data-dir DIR --json` for a registered store, with none of the
/// default store's variables set: the findings.
fn doctor(data_dir: &Path, shop: &str, shopify: &str, pinterest: &str) -> (i32, Vec<Value>) {
    let mut command = Command::new(pinrelay_bin());
    command
        .args(["doctor", "--shop", shop, "--json", "--data-dir"])
        .arg(data_dir)
        .args(["--admin-url-base", shopify])
        .env("PINTEREST_API_URL", pinterest);
    for var in [
        "SHOPIFY_WEBHOOK_SECRETS",
        "PINTEREST_ACCESS_TOKEN",
        "PINTEREST_AD_ACCOUNT_ID",
        "PINTEREST_API_TOKEN",
        "SHOPIFY_ADMIN_TOKEN",
        "SHOPIFY_CLIENT_ID",
        "SHOPIFY_CLIENT_SECRET",
        "WEBHOOK_URL",
        "CHECKOUT_ON",
        "CONTENT_ID",
    ] {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), findings)
}

fn status<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {findings:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_a_registered_store_with_its_own_secrets_and_ad_account() {
    let pinterest = FakePinterest::start().await;
    let shopify = crate::fake_shopify::FakeShopify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    add(&data_dir, &ALPHA, ACCESS_TOKEN);
    add(&data_dir, &BETA, "pina_revoked");
    let (shopify_url, pinterest_url) = (shopify.base_url(), pinterest.base_url());
    let (code, findings) = tokio::task::spawn_blocking({
        let (data_dir, s, p) = (data_dir.clone(), shopify_url.clone(), pinterest_url.clone());
        move || doctor(&data_dir, ALPHA.domain, &s, &p)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{findings:?}");
    for check in ["secrets", "pinterest_conversion_token"] {
        assert_eq!(status(&findings, check)["status"], "ok", "{findings:?}");
    }
    assert!(
        status(&findings, "secrets")["detail"]
            .as_str()
            .unwrap()
            .contains("alpha.myshopify.com's webhook secret")
    );
    // The probe went to alpha's ad account with alpha's token.
    assert!(
        pinterest
            .requests()
            .iter()
            .any(|r| r.ad_account_id == ALPHA.ad_account && r.status == 200)
    );

    // Beta's refused token fails beta's check, and the fix names the command for beta.
    let (code, findings) = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || doctor(&data_dir, BETA.domain, &shopify_url, &pinterest_url)
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    let check = status(&findings, "pinterest_conversion_token");
    assert_eq!(check["status"], "fail");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("pinrelay shops update beta.myshopify.com --secrets"),
        "{check}"
    );
    let all = serde_json::to_string(&findings).unwrap();
    for secret in [ALPHA.secret, BETA.secret, ACCESS_TOKEN, "pina_revoked"] {
        assert!(!all.contains(secret), "printed {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_registers_a_store_in_serves_data_dir_subscribes_and_passes_doctor() {
    let pinterest = FakePinterest::start().await;
    let shopify = crate::fake_shopify::FakeShopify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    // A relay already serving its default store; connect adds a registered one beside it.
    let relay = Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        "default-client-secret",
        &pinterest,
        &[("PINRELAY_REGISTRY_TTL_MS", REGISTRY_TTL_MS)],
    );
    let webhook_url = "https://relay.example.com/webhooks/shopify";
    let pixel_path = dir.path().join("pixel.js");
    let out = tokio::task::spawn_blocking({
        let (data_dir, admin, api, base, pixel_path) = (
            data_dir.clone(),
            shopify.base_url(),
            pinterest.base_url(),
            relay.base.clone(),
            pixel_path.clone(),
        );
        move || {
            use std::io::Write as _;
            let mut command = Command::new(pinrelay_bin());
            command
                .args(["connect", "--shop", "delta", "--ad-account", "1004"])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--tag-id", "2612345678901", "--pixel-out"])
                .arg(&pixel_path)
                .args(["--admin-url-base", &admin, "--relay-url-base", &base])
                .env("PINTEREST_API_URL", &api)
                .env("WEBHOOK_URL", webhook_url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for var in [
                "SHOPIFY_WEBHOOK_SECRETS",
                "PINTEREST_ACCESS_TOKEN",
                "PINTEREST_AD_ACCOUNT_ID",
                "PINTEREST_API_TOKEN",
                "SHOPIFY_ADMIN_TOKEN",
                "SHOPIFY_CLIENT_ID",
                "SHOPIFY_CLIENT_SECRET",
                "CHECKOUT_ON",
            ] {
                command.env_remove(var);
            }
            let mut child = command.spawn().unwrap();
            // The webhook secret, the conversion token, no API token, the Admin token.
            writeln!(
                child.stdin.take().unwrap(),
                "delta-client-secret\n{ACCESS_TOKEN}\n\n{}",
                crate::fake_shopify::ADMIN_TOKEN
            )
            .unwrap();
            child.wait_with_output().unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("added    delta.myshopify.com"), "{stderr}");
    let mut topics: Vec<String> = shopify
        .subscriptions()
        .into_iter()
        .filter(|s| s.uri == webhook_url)
        .map(|s| s.topic)
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        ["APP_UNINSTALLED", "CUSTOMERS_CREATE", "ORDERS_CREATE"]
    );
    let pixel = std::fs::read_to_string(&pixel_path).unwrap();
    assert!(pixel.contains("var SHOP_DOMAIN = \"delta.myshopify.com\";"));
    assert!(stdout.contains("ok    storefront_endpoint"), "{stdout}");
    assert!(
        stdout.contains("ok    pinterest_conversion_token"),
        "{stdout}"
    );

    // The running relay serves delta with its own secret, without a restart.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let delta = Store {
        domain: "delta.myshopify.com",
        secret: "delta-client-secret",
        ad_account: "1004",
        shop_id: 9_004,
    };
    assert_eq!(
        post(&relay, delta.domain, delta.secret, &order(&delta, 401)).await,
        200
    );
    until("delta's event", Duration::from_secs(15), || {
        accepted(&pinterest)
            .iter()
            .any(|(id, account)| id == "401" && account == "1004")
    })
    .await;
    for secret in ["delta-client-secret", ACCESS_TOKEN] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shop_redact_forgets_a_registered_store_with_its_secrets() {
    let (_fake, _dir, data_dir, relay) =
        serving(&[(&ALPHA, ACCESS_TOKEN), (&BETA, ACCESS_TOKEN)]).await;
    assert_eq!(
        post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 111)).await,
        200
    );
    let redact = serde_json::json!({"shop_id": ALPHA.shop_id, "shop_domain": ALPHA.domain});
    let body = redact.to_string().into_bytes();
    let url = relay.webhook_url();
    let status = crate::relay::post_webhook(
        &url,
        "shop/redact",
        ALPHA.domain,
        ALPHA.secret,
        "wh-redact",
        &body,
    )
    .await;
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(15)).await;

    // Alpha's entry and secrets are gone; beta's stay.
    let listed = listed(&data_dir);
    let domains: Vec<&str> = listed.iter().filter_map(|e| e["domain"].as_str()).collect();
    assert_eq!(domains, [BETA.domain]);
    let out = Command::new(pinrelay_bin())
        .args(["shops", "show", ALPHA.domain, "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Its webhooks are now an unknown shop's.
    assert_eq!(
        post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 112)).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_uninstalled_disables_the_store_and_a_replay_under_another_header_disables_nothing() {
    let (fake, _dir, data_dir, relay) =
        serving(&[(&ALPHA, ACCESS_TOKEN), (&BETA, ACCESS_TOKEN)]).await;
    let url = relay.webhook_url();
    // Shopify's `app/uninstalled` body is the shop: alpha's, signed with alpha's secret.
    let body = serde_json::json!({
        "id": ALPHA.shop_id,
        "name": "Alpha",
        "domain": "alpha.example",
        "myshopify_domain": ALPHA.domain,
    })
    .to_string()
    .into_bytes();
    // The same body under beta's header is refused (alpha's secret is not beta's) and, were the
    // secret shared, the body names alpha: beta stays enabled either way.
    let replayed = crate::relay::post_webhook(
        &url,
        "app/uninstalled",
        BETA.domain,
        ALPHA.secret,
        "wh-u0",
        &body,
    )
    .await;
    assert_eq!(replayed, 401);
    let status = crate::relay::post_webhook(
        &url,
        "app/uninstalled",
        ALPHA.domain,
        ALPHA.secret,
        "wh-u1",
        &body,
    )
    .await;
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(15)).await;

    let listed = listed(&data_dir);
    let enabled: Vec<(&str, bool)> = listed
        .iter()
        .map(|e| {
            (
                e["domain"].as_str().unwrap(),
                e["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(enabled, [(ALPHA.domain, false), (BETA.domain, true)]);
    // Alpha's webhooks are refused like an unknown shop's (once serve's cache expires); beta's flow.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 121)).await,
        401
    );
    assert_eq!(
        post(&relay, BETA.domain, BETA.secret, &order(&BETA, 122)).await,
        200
    );
    relay.drained(Duration::from_secs(15)).await;
    let sent = accepted(&fake);
    assert!(
        sent.iter().all(|(_, account)| account == BETA.ad_account),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");

    // Reinstalled: `shops update --enable` serves it again.
    shops(&data_dir, &["update", ALPHA.domain, "--enable"], "");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        post(&relay, ALPHA.domain, ALPHA.secret, &order(&ALPHA, 123)).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_judges_a_registered_store_with_its_own_admin_token_and_rules() {
    use crate::fake_shopify::{FakeOrder, FakeShopify};
    let shopify = FakeShopify::start().await;
    shopify.set_shop_domain(GAMMA.domain);
    shopify.set_admin_token("shpat_gamma");
    let now = Utc::now();
    let at = |minutes: i64| {
        (now - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let mut test_order = FakeOrder::new(3101, &at(90));
    test_order.test = true;
    shopify.add_orders([test_order, FakeOrder::new(3102, &at(60))]);

    // Gamma counts test orders (its own setting); the relay's variables do not.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    shops(
        &data_dir,
        &[
            "add",
            GAMMA.domain,
            "--ad-account",
            GAMMA.ad_account,
            "--set",
            "INCLUDE_TEST_ORDERS=true",
        ],
        &format!("{}\n{ACCESS_TOKEN}\n\nshpat_gamma\n", GAMMA.secret),
    );
    let mut command = Command::new(pinrelay_bin());
    command
        .args([
            "reconcile",
            "--shop",
            GAMMA.domain,
            "--since",
            "1d",
            "--json",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--admin-url-base", &shopify.base_url()]);
    for var in crate::helpers::SECRET_VARIABLES {
        command.env_remove(var);
    }
    let out = command
        .env_remove("INCLUDE_TEST_ORDERS")
        .env_remove("PINTEREST_AD_ACCOUNT_ID")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let missing: Vec<u64> = report["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "missing")
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    // Under gamma's rules its test order counts: both orders are missing, none skipped.
    assert_eq!(missing, [3101, 3102], "{report}");
    assert!(
        shopify
            .requests()
            .iter()
            .all(|r| r.token.as_deref() == Some("shpat_gamma"))
    );
}

#[test]
fn the_pixel_of_a_registered_store_carries_its_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    shops(
        &data_dir,
        &[
            "add",
            GAMMA.domain,
            "--ad-account",
            GAMMA.ad_account,
            "--set",
            "CHECKOUT_ON=paid",
        ],
        &format!("{}\n{ACCESS_TOKEN}\n\n\n", GAMMA.secret),
    );
    let pixel = |shop: &str| {
        let out = Command::new(pinrelay_bin())
            .args(["pixel", "--shop", shop, "--tag-id", "2612345678901"])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("WEBHOOK_URL", "https://relay.example/webhooks/shopify")
            .env_remove("CHECKOUT_ON")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let gamma = pixel(GAMMA.domain);
    assert!(gamma.contains("var CHECKOUT_ON = \"paid\";"), "{gamma}");
    assert!(gamma.contains("var SHOP_DOMAIN = \"gamma.myshopify.com\";"));
    // A shop that is not registered gets the relay's settings.
    let other = pixel("delta.myshopify.com");
    assert!(other.contains("var CHECKOUT_ON = \"created\";"), "{other}");
}
