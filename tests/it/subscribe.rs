//! `pinrelay subscribe` against the fake Admin API (`fake_shopify.rs`): the exact queries and
//! variables sent, idempotence, pagination, `userErrors` and the compliance-topic refusal. Runs
//! the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::fake_shopify::{ADMIN_TOKEN as TOKEN, FakeShopify, RecordedRequest};

const ADDRESS: &str = "https://relay.example.lambda-url.us-east-1.on.aws/webhooks/shopify";

const LIST_QUERY: &str = "query pinrelayWebhookSubscriptions($after: String) { webhookSubscriptions(first: 250, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }";
const LIST_QUERY_LEGACY: &str = "query pinrelayWebhookSubscriptions($after: String) { webhookSubscriptions(first: 250, after: $after) { nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } pageInfo { hasNextPage endCursor } } }";
const CREATE_MUTATION: &str = "mutation pinrelayWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { webhookSubscription { id topic } userErrors { field message } } }";

/// The `pinrelay` binary next to this test executable. `cargo test --workspace` builds it (the
/// CLI crate has integration tests); when it is missing or older than the sources (say, after
/// `cargo test -p integration-tests`), it is built here, once per run.
pub fn pinrelay_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/it-<hash>
        let profile_dir = exe.ancestors().nth(2).unwrap().to_path_buf();
        let bin = profile_dir.join(format!("pinrelay{}", std::env::consts::EXE_SUFFIX));
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        if built.is_none_or(|t| t < newest_source()) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "pinrelay-cli",
                    "--bin",
                    "pinrelay",
                ])
                .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "cargo build -p pinrelay-cli failed");
        }
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// The newest modification time of the sources the binary is built from.
fn newest_source() -> std::time::SystemTime {
    fn walk(path: &std::path::Path, newest: &mut std::time::SystemTime) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), newest);
            }
        } else if let Ok(t) = std::fs::metadata(path).and_then(|m| m.modified()) {
            *newest = (*newest).max(t);
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for path in [
        "cli/src",
        "cli/Cargo.toml",
        "shared/src",
        "shared/Cargo.toml",
        "Cargo.lock",
    ] {
        walk(&root.join(path), &mut newest);
    }
    newest
}

/// The fake with these subscriptions, two per page so that pagination is exercised.
async fn fake_shopify(subscriptions: &[(&str, &str)]) -> FakeShopify {
    let fake = FakeShopify::start().await;
    fake.set_page_size(2);
    for (topic, address) in subscriptions {
        fake.add_subscription(topic, address);
    }
    fake
}

async fn subscribe(base: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "subscribe".to_owned(),
        "--shop".to_owned(),
        "acme".to_owned(),
        "--address".to_owned(),
        ADDRESS.to_owned(),
        "--admin-url-base".to_owned(),
        base.to_owned(),
        // The topics of CHECKOUT_ON=paid: orders/paid too (the default leaves it out).
        "--checkout-on".to_owned(),
        "paid".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let bin = pinrelay_bin();
    tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(&args)
            .env("SHOPIFY_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mutations(fake: &FakeShopify) -> Vec<Value> {
    fake.requests()
        .iter()
        .filter(|c| c.query.starts_with("mutation"))
        .map(|c| {
            assert_eq!(c.query, CREATE_MUTATION);
            c.variables.clone()
        })
        .collect()
}

#[tokio::test]
async fn creates_only_the_missing_subscriptions_then_changes_nothing() {
    let shop = fake_shopify(&[
        ("PRODUCTS_UPDATE", "https://elsewhere.example/hook"),
        ("ORDERS_PAID", "https://elsewhere.example/hook"),
        // Shopify strips trailing slashes; an existing one with a slash still matches.
        ("ORDERS_CREATE", &format!("{ADDRESS}/")),
    ])
    .await;
    let base = shop.base_url();

    let first = subscribe(&base, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    let out = stdout(&first);
    assert!(
        out.contains("orders/create") && out.contains("already present"),
        "{out}"
    );
    assert!(
        out.contains("created 3, already present 1, failed 0"),
        "{out}"
    );
    assert_eq!(
        mutations(&shop),
        [
            json!({"topic": "ORDERS_PAID", "webhookSubscription": {"uri": ADDRESS}}),
            json!({"topic": "CUSTOMERS_CREATE", "webhookSubscription": {"uri": ADDRESS}}),
            json!({"topic": "APP_UNINSTALLED", "webhookSubscription": {"uri": ADDRESS}}),
        ]
    );
    {
        let calls = shop.requests();
        let lists: Vec<&RecordedRequest> = calls
            .iter()
            .filter(|c| c.query.starts_with("query"))
            .collect();
        // Three existing subscriptions at two per page: two pages, the second after the cursor of
        // the first.
        assert_eq!(lists.len(), 2);
        assert!(lists.iter().all(|c| c.query == LIST_QUERY));
        assert_eq!(lists[0].variables, json!({"after": null}));
        assert_eq!(lists[1].variables, json!({"after": "cursor:2"}));
        assert!(calls.iter().all(|c| c.version == "2026-07"));
        assert!(calls.iter().all(|c| c.token.as_deref() == Some(TOKEN)));
    }

    shop.clear_requests();
    let second = subscribe(&base, &[]).await;
    assert_eq!(second.status.code(), Some(0));
    assert!(
        mutations(&shop).is_empty(),
        "the second run created something"
    );
    assert!(
        stdout(&second).contains("created 0, already present 4, failed 0"),
        "{}",
        stdout(&second)
    );
}

#[tokio::test]
async fn reports_user_errors_and_exits_non_zero() {
    let shop = fake_shopify(&[]).await;
    shop.reject_topic("ORDERS_PAID");
    let base = shop.base_url();
    let out = subscribe(&base, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("failed           webhookSubscription.callbackUrl: Address for this topic has already been taken"),
        "{text}"
    );
    assert!(
        text.contains("created 3, already present 0, failed 1"),
        "{text}"
    );
    // The other topics were still created.
    assert_eq!(mutations(&shop).len(), 4);
    assert_eq!(shop.subscriptions().len(), 3);
}

#[tokio::test]
async fn dry_run_lists_and_creates_nothing() {
    let shop = fake_shopify(&[("ORDERS_CREATE", ADDRESS)]).await;
    let base = shop.base_url();
    let out = subscribe(&base, &["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(mutations(&shop).is_empty());
    let text = stdout(&out);
    assert!(
        text.contains("would create 3, already present 1, failed 0"),
        "{text}"
    );
}

#[tokio::test]
async fn compliance_topics_are_not_subscribed_but_pointed_to_the_app_configuration() {
    let shop = fake_shopify(&[]).await;
    let base = shop.base_url();
    let out = subscribe(
        &base,
        &["--topics", "orders/create,customers/redact,shop/redact"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        mutations(&shop),
        [json!({"topic": "ORDERS_CREATE", "webhookSubscription": {"uri": ADDRESS}})]
    );
    let text = stdout(&out);
    assert_eq!(text.matches("infra/shopify.app.toml").count(), 2, "{text}");
}

#[tokio::test]
async fn api_versions_before_2025_10_use_callback_url() {
    let shop = fake_shopify(&[("ORDERS_CREATE", ADDRESS)]).await;
    let base = shop.base_url();
    let out = subscribe(&base, &["--api-version", "2025-07"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let list = &shop.requests()[0];
    assert_eq!(list.query, LIST_QUERY_LEGACY);
    assert_eq!(list.version, "2025-07");
    assert_eq!(
        mutations(&shop),
        [
            json!({"topic": "ORDERS_PAID", "webhookSubscription": {"callbackUrl": ADDRESS, "format": "JSON"}}),
            json!({"topic": "CUSTOMERS_CREATE", "webhookSubscription": {"callbackUrl": ADDRESS, "format": "JSON"}}),
            json!({"topic": "APP_UNINSTALLED", "webhookSubscription": {"callbackUrl": ADDRESS, "format": "JSON"}}),
        ]
    );
}

#[tokio::test]
async fn a_refused_token_fails_with_an_actionable_message() {
    let shop = fake_shopify(&[]).await;
    shop.refuse_token();
    let base = shop.base_url();
    let out = subscribe(&base, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the admin token (401)"), "{err}");
    assert!(mutations(&shop).is_empty());
    assert!(
        !err.contains(TOKEN),
        "the token leaked into the error: {err}"
    );
}

#[tokio::test]
async fn refuses_a_plain_http_address() {
    let shop = fake_shopify(&[]).await;
    let base = shop.base_url();
    let bin = pinrelay_bin();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["subscribe", "--shop", "acme"])
            .env("SHOPIFY_ADMIN_TOKEN", TOKEN)
            .args(["--address", "http://relay.example/webhooks/shopify"])
            .args(["--admin-url-base", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(shop.requests().is_empty());
}
