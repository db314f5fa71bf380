//! `pinrelay subscribe` against a local fake of Shopify's GraphQL Admin API: the exact queries and
//! variables sent, idempotence, pagination, `userErrors` and the compliance-topic refusal. Runs
//! the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

const TOKEN: &str = "shpat_test_token";
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

/// One recorded GraphQL request.
#[derive(Debug, Clone)]
struct Call {
    version: String,
    token: Option<String>,
    query: String,
    variables: Value,
}

#[derive(Default)]
struct Shop {
    /// (id, topic enum, address)
    subscriptions: Vec<(String, String, String)>,
    calls: Vec<Call>,
    /// Topics whose creation answers userErrors.
    reject: Vec<String>,
    /// Answer 401 to everything.
    refuse_token: bool,
}

/// Page size of the fake, small so that pagination is exercised.
const PAGE: usize = 2;

async fn graphql(
    State(shop): State<Arc<Mutex<Shop>>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut shop = shop.lock().unwrap();
    let call = Call {
        version,
        token: headers
            .get("x-shopify-access-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        query: body["query"].as_str().unwrap_or_default().to_owned(),
        variables: body["variables"].clone(),
    };
    shop.calls.push(call.clone());
    if shop.refuse_token || call.token.as_deref() != Some(TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": "[API] Invalid API key or access token"})),
        );
    }
    if call.query.starts_with("query") {
        let legacy = call.query.contains("callbackUrl");
        let start: usize = call.variables["after"]
            .as_str()
            .map_or(0, |c| c.parse().unwrap());
        let nodes: Vec<Value> = shop
            .subscriptions
            .iter()
            .skip(start)
            .take(PAGE)
            .map(|(id, topic, address)| {
                if legacy {
                    json!({"id": id, "topic": topic, "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": address}})
                } else {
                    json!({"id": id, "topic": topic, "uri": address})
                }
            })
            .collect();
        let end = start + nodes.len();
        let has_next = end < shop.subscriptions.len();
        return (
            StatusCode::OK,
            Json(json!({"data": {"webhookSubscriptions": {
                "nodes": nodes,
                "pageInfo": {"hasNextPage": has_next, "endCursor": has_next.then(|| end.to_string())}
            }}})),
        );
    }
    let topic = call.variables["topic"].as_str().unwrap().to_owned();
    if shop.reject.contains(&topic) {
        return (
            StatusCode::OK,
            Json(json!({"data": {"webhookSubscriptionCreate": {
                "webhookSubscription": null,
                "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]
            }}})),
        );
    }
    let sub = &call.variables["webhookSubscription"];
    let address = sub["uri"]
        .as_str()
        .or(sub["callbackUrl"].as_str())
        .unwrap()
        .to_owned();
    let id = format!(
        "gid://shopify/WebhookSubscription/{}",
        100 + shop.subscriptions.len()
    );
    shop.subscriptions
        .push((id.clone(), topic.clone(), address));
    (
        StatusCode::OK,
        Json(json!({"data": {"webhookSubscriptionCreate": {
            "webhookSubscription": {"id": id, "topic": topic},
            "userErrors": []
        }}})),
    )
}

/// A fake Admin API on 127.0.0.1; returns its base URL and state.
async fn fake_shopify(shop: Shop) -> (String, Arc<Mutex<Shop>>) {
    let state = Arc::new(Mutex::new(shop));
    let app = axum::Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

async fn subscribe(base: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "subscribe".to_owned(),
        "--shop".to_owned(),
        "acme".to_owned(),
        "--admin-token".to_owned(),
        TOKEN.to_owned(),
        "--address".to_owned(),
        ADDRESS.to_owned(),
        "--admin-url-base".to_owned(),
        base.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let bin = pinrelay_bin();
    tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(&args)
            .env_remove("SHOPIFY_ADMIN_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mutations(shop: &Arc<Mutex<Shop>>) -> Vec<Value> {
    shop.lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.query.starts_with("mutation"))
        .map(|c| {
            assert_eq!(c.query, CREATE_MUTATION);
            c.variables.clone()
        })
        .collect()
}

fn existing(subs: &[(&str, &str)]) -> Vec<(String, String, String)> {
    subs.iter()
        .enumerate()
        .map(|(i, (topic, address))| {
            (
                format!("gid://shopify/WebhookSubscription/{}", i + 1),
                (*topic).to_owned(),
                (*address).to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn creates_only_the_missing_subscriptions_then_changes_nothing() {
    let (base, shop) = fake_shopify(Shop {
        subscriptions: existing(&[
            ("PRODUCTS_UPDATE", "https://elsewhere.example/hook"),
            ("ORDERS_PAID", "https://elsewhere.example/hook"),
            // Shopify strips trailing slashes; an existing one with a slash still matches.
            ("ORDERS_CREATE", &format!("{ADDRESS}/")),
        ]),
        ..Shop::default()
    })
    .await;

    let first = subscribe(&base, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    let out = stdout(&first);
    assert!(
        out.contains("orders/create") && out.contains("already present"),
        "{out}"
    );
    assert!(
        out.contains("created 2, already present 1, failed 0"),
        "{out}"
    );
    assert_eq!(
        mutations(&shop),
        [
            json!({"topic": "ORDERS_PAID", "webhookSubscription": {"uri": ADDRESS}}),
            json!({"topic": "CUSTOMERS_CREATE", "webhookSubscription": {"uri": ADDRESS}}),
        ]
    );
    {
        let shop = shop.lock().unwrap();
        let lists: Vec<&Call> = shop
            .calls
            .iter()
            .filter(|c| c.query.starts_with("query"))
            .collect();
        // Three existing subscriptions at two per page: two pages, the second after cursor "2".
        assert_eq!(lists.len(), 2);
        assert!(lists.iter().all(|c| c.query == LIST_QUERY));
        assert_eq!(lists[0].variables, json!({"after": null}));
        assert_eq!(lists[1].variables, json!({"after": "2"}));
        assert!(shop.calls.iter().all(|c| c.version == "2026-07"));
        assert!(shop.calls.iter().all(|c| c.token.as_deref() == Some(TOKEN)));
    }

    shop.lock().unwrap().calls.clear();
    let second = subscribe(&base, &[]).await;
    assert_eq!(second.status.code(), Some(0));
    assert!(
        mutations(&shop).is_empty(),
        "the second run created something"
    );
    assert!(
        stdout(&second).contains("created 0, already present 3, failed 0"),
        "{}",
        stdout(&second)
    );
}

#[tokio::test]
async fn reports_user_errors_and_exits_non_zero() {
    let (base, shop) = fake_shopify(Shop {
        reject: vec!["ORDERS_PAID".to_owned()],
        ..Shop::default()
    })
    .await;
    let out = subscribe(&base, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("failed           webhookSubscription.callbackUrl: Address for this topic has already been taken"),
        "{text}"
    );
    assert!(
        text.contains("created 2, already present 0, failed 1"),
        "{text}"
    );
    // The other topics were still created.
    assert_eq!(mutations(&shop).len(), 3);
    assert_eq!(shop.lock().unwrap().subscriptions.len(), 2);
}

#[tokio::test]
async fn dry_run_lists_and_creates_nothing() {
    let (base, shop) = fake_shopify(Shop {
        subscriptions: existing(&[("ORDERS_CREATE", ADDRESS)]),
        ..Shop::default()
    })
    .await;
    let out = subscribe(&base, &["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(mutations(&shop).is_empty());
    let text = stdout(&out);
    assert!(
        text.contains("would create 2, already present 1, failed 0"),
        "{text}"
    );
}

#[tokio::test]
async fn compliance_topics_are_not_subscribed_but_pointed_to_the_app_configuration() {
    let (base, shop) = fake_shopify(Shop::default()).await;
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
    let (base, shop) = fake_shopify(Shop {
        subscriptions: existing(&[("ORDERS_CREATE", ADDRESS)]),
        ..Shop::default()
    })
    .await;
    let out = subscribe(&base, &["--api-version", "2025-07"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let shop_state = shop.lock().unwrap();
    let list = &shop_state.calls[0];
    assert_eq!(list.query, LIST_QUERY_LEGACY);
    assert_eq!(list.version, "2025-07");
    drop(shop_state);
    assert_eq!(
        mutations(&shop),
        [
            json!({"topic": "ORDERS_PAID", "webhookSubscription": {"callbackUrl": ADDRESS, "format": "JSON"}}),
            json!({"topic": "CUSTOMERS_CREATE", "webhookSubscription": {"callbackUrl": ADDRESS, "format": "JSON"}}),
        ]
    );
}

#[tokio::test]
async fn a_refused_token_fails_with_an_actionable_message() {
    let (base, shop) = fake_shopify(Shop {
        refuse_token: true,
        ..Shop::default()
    })
    .await;
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
    let (base, shop) = fake_shopify(Shop::default()).await;
    let bin = pinrelay_bin();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["subscribe", "--shop", "acme", "--admin-token", TOKEN])
            .args(["--address", "http://relay.example/webhooks/shopify"])
            .args(["--admin-url-base", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(shop.lock().unwrap().calls.is_empty());
}
