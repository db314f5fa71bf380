//! Sign in to Pinterest: `pinrelay pinterest login --data-dir` end to end against the fake
//! Pinterest (the test plays the browser), `pinrelay pinterest refresh`, and the stack's grant
//! store on moto (the grant in Secrets Manager, the lease in the table) with two refreshers racing.

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use pinrelay::dynamodb::Table;
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::sqlite::SqliteGrantStore;
use pinrelay::pinterest::oauth::store::contract;
use pinrelay::pinterest::oauth::{
    AppCredentials, Grant, GrantStore, OAuthClient, RefreshOutcome, refresh_with_lease,
    save_signed_in,
};
use pinrelay::sqlite::SqliteDatabase;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::fake_pinterest::{AD_ACCOUNT_ID, APP_ID, APP_SECRET, FakePinterest};
use crate::helpers::{SECRET_VARIABLES, TestEnv};
use crate::subscribe::pinrelay_bin;

const SHOP: &str = "oauth-test.myshopify.com";

/// A running `pinrelay pinterest login` and the authorize URL it printed.
struct Login {
    child: tokio::process::Child,
    url: url::Url,
    stderr: Vec<String>,
}

/// Starts `pinrelay pinterest login` on `dir` against `fake`, the app secret on standard input,
/// and reads its output up to the authorize URL.
async fn start_login(fake: &FakePinterest, dir: &std::path::Path, extra: &[&str]) -> Login {
    let mut command = tokio::process::Command::new(pinrelay_bin());
    for variable in SECRET_VARIABLES {
        command.env_remove(variable);
    }
    command
        .args(["pinterest", "login", "--shop", SHOP, "--data-dir"])
        .arg(dir)
        .args(["--port", "0", "--timeout-seconds", "60"])
        .args(extra)
        .env("PINTEREST_API_URL", fake.base_url())
        .env("PINTEREST_OAUTH_URL", format!("{}/oauth/", fake.base_url()))
        .env("PINTEREST_APP_ID", APP_ID)
        .env_remove("PINTEREST_APP_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{APP_SECRET}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push(line.clone());
            if line.starts_with("http") && line.contains("/oauth/") {
                return url::Url::parse(line.trim()).unwrap();
            }
        }
        panic!("login ended without printing the authorize URL: {stderr:?}");
    })
    .await
    .expect("login printed the authorize URL");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Login { child, url, stderr }
}

/// The query parameter `name` of `url`.
fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn grant_in(dir: &std::path::Path) -> Option<Grant> {
    let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir).unwrap());
    store.get(SHOP).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_a_grant_that_refresh_renews_and_rotates() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let login = start_login(&fake, dir.path(), &[]).await;
    assert_eq!(param(&login.url, "client_id"), APP_ID);
    assert_eq!(
        param(&login.url, "scope"),
        "ads:read,ads:write,catalogs:read"
    );
    assert!(
        login.stderr.iter().any(|l| l.contains("redirect URI")),
        "{:?}",
        login.stderr
    );
    // The browser: Pinterest's page redirects to the loopback listener with code and state.
    pinrelay::pinterest::http::install_crypto_provider();
    let page = reqwest::get(login.url.clone()).await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let output = login.child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(AD_ACCOUNT_ID), "{stdout}");

    let grant = grant_in(dir.path()).await.expect("the grant is stored");
    assert_eq!(grant.ad_account_id, AD_ACCOUNT_ID);
    assert_eq!(grant.app.app_id, APP_ID);
    assert_eq!(grant.app.app_secret.expose_secret(), APP_SECRET);
    assert!(fake.refresh_token_live(grant.refresh_token.expose_secret()));
    assert_eq!(grant.scopes, ["ads:read", "ads:write", "catalogs:read"]);
    assert_eq!(
        (grant.refresh_token_expires_at - Utc::now()).num_days(),
        59,
        "60 days, counted down"
    );
    for secret in [
        grant.access_token.expose_secret(),
        grant.refresh_token.expose_secret(),
    ] {
        assert!(!stdout.contains(secret), "no token is printed");
    }

    // `pinrelay pinterest refresh` renews it under the lease, and stores the rotated token.
    let output = tokio::process::Command::new(pinrelay_bin())
        .args(["pinterest", "refresh", "--shop", SHOP, "--data-dir"])
        .arg(dir.path())
        .env("PINTEREST_API_URL", fake.base_url())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let renewed = grant_in(dir.path()).await.unwrap();
    assert!(!fake.refresh_token_live(grant.refresh_token.expose_secret()));
    assert!(fake.refresh_token_live(renewed.refresh_token.expose_secret()));
    assert_ne!(
        renewed.access_token.expose_secret(),
        grant.access_token.expose_secret()
    );
    assert_eq!(renewed.ad_account_id, AD_ACCOUNT_ID);
    assert_eq!(fake.refreshes(), 1);

    // doctor shows the days left, and reads Event Quality with the signed-in token when
    // PINTEREST_API_TOKEN is unset (the ad account is the sign-in's).
    let mut doctor = tokio::process::Command::new(pinrelay_bin());
    for variable in SECRET_VARIABLES {
        doctor.env_remove(variable);
    }
    let output = doctor
        .args(["doctor", "--json", "--shop", SHOP, "--data-dir"])
        .arg(dir.path())
        .env("PINTEREST_API_URL", fake.base_url())
        .env_remove("PINTEREST_AD_ACCOUNT_ID")
        .env_remove("WEBHOOK_URL")
        .output()
        .await
        .unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let finding = |check: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .cloned()
            .unwrap_or_else(|| panic!("no {check} in {findings}"))
    };
    let sign_in = finding("pinterest_sign_in");
    assert_eq!(sign_in["status"], "ok", "{sign_in}");
    assert!(
        sign_in["detail"].as_str().unwrap().contains("59 days"),
        "{sign_in}"
    );
    let quality = finding("event_quality");
    assert_eq!(quality["status"], "ok", "{quality}");
    assert!(
        fake.quality_requests()
            .iter()
            .all(|r| r.ad_account_id == AD_ACCOUNT_ID)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_a_wrong_state_and_stores_nothing() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let login = start_login(&fake, dir.path(), &[]).await;
    let redirect_uri = param(&login.url, "redirect_uri");
    let code = fake.issue_code(&redirect_uri);
    let forged = format!("{redirect_uri}?code={code}&state=forged");
    pinrelay::pinterest::http::install_crypto_provider();
    let page = reqwest::get(forged).await.unwrap();
    assert_eq!(page.status(), 400);
    let output = login.child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    assert!(grant_in(dir.path()).await.is_none());
    assert!(
        fake.token_requests().is_empty(),
        "the code was never exchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_asks_for_an_ad_account_the_user_reaches() {
    let fake = FakePinterest::start().await;
    fake.set_ad_accounts(&[(AD_ACCOUNT_ID, "Main"), ("549755885176", "Second")]);
    let dir = tempfile::tempdir().unwrap();
    let login = start_login(&fake, dir.path(), &["--ad-account", "549755885176"]).await;
    pinrelay::pinterest::http::install_crypto_provider();
    let page = reqwest::get(login.url.clone()).await.unwrap();
    assert_eq!(page.status(), 200);
    let output = login.child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    let grant = grant_in(dir.path()).await.unwrap();
    assert_eq!(grant.ad_account_id, "549755885176");
}

/// A due grant whose refresh token `fake` issued.
fn due_grant(fake: &FakePinterest) -> Grant {
    let now = Utc::now();
    Grant {
        app: AppCredentials {
            app_id: APP_ID.to_owned(),
            app_secret: SecretString::from(APP_SECRET),
        },
        access_token: SecretString::from("old-access"),
        access_token_issued_at: now - chrono::Duration::days(29),
        access_token_expires_at: now + chrono::Duration::days(1),
        refresh_token: SecretString::from(fake.issue_refresh_token()),
        refresh_token_expires_at: now + chrono::Duration::days(31),
        scopes: vec!["ads:read".to_owned()],
        ad_account_id: AD_ACCOUNT_ID.to_owned(),
    }
}

fn aws_store(env: &TestEnv, stack: &str) -> AwsGrantStore {
    AwsGrantStore::new(
        Table::new(env.dynamodb.clone(), &env.table),
        env.secrets.clone(),
        format!("{stack}/shops/"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_two_refreshers_racing_one_wins_the_token_survives() {
    let env = TestEnv::start().await;
    let fake = FakePinterest::start().await;
    let store = aws_store(&env, "pinrelay-oauth");
    contract::leases_are_exclusive(&store, "lease.myshopify.com").await;

    let grant = due_grant(&fake);
    save_signed_in(&store, SHOP, &grant, 1).await.unwrap();
    let name = store.secret_name(SHOP);
    assert_eq!(name, format!("pinrelay-oauth/shops/{SHOP}/pinterest-oauth"));
    let client = OAuthClient::new(&fake.base_url(), Duration::from_secs(10)).unwrap();
    let now = Utc::now();
    let (a, b) = tokio::join!(
        refresh_with_lease(&store, &client, SHOP, now, false),
        refresh_with_lease(&store, &client, SHOP, now, false),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Refreshed { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(fake.refreshes(), 1, "the old refresh token was spent once");
    assert!(!fake.refresh_token_live(grant.refresh_token.expose_secret()));
    let stored = store.get(SHOP).await.unwrap().unwrap();
    assert!(
        fake.refresh_token_live(stored.refresh_token.expose_secret()),
        "the stored refresh token is the live one"
    );
    // And it keeps working: a forced refresh spends the stored token and stores the next.
    let again = refresh_with_lease(&store, &client, SHOP, Utc::now(), true)
        .await
        .unwrap();
    assert!(matches!(again, RefreshOutcome::Refreshed { .. }));
    let next = store.get(SHOP).await.unwrap().unwrap();
    assert!(fake.refresh_token_live(next.refresh_token.expose_secret()));
    assert_eq!(fake.refreshes(), 2);

    // The library's own contract, on moto too (a slow rotating endpoint, so the two overlap).
    let other = "race.myshopify.com";
    save_signed_in(&store, other, &contract::due_grant(Utc::now()), 1)
        .await
        .unwrap();
    let endpoint = contract::RotatingEndpoint::issuing("refresh-0");
    contract::two_refreshers_racing_one_wins_the_token_survives(&store, &endpoint, other).await;

    // `pinrelay shops remove` takes the store's sign-in with it (no secret left at $0.40 a month).
    use pinrelay::registry::Registry as _;
    let registry = crate::registry::registry(&env, "pinrelay-oauth/shops/");
    registry
        .register(&crate::registry::shop(SHOP, AD_ACCOUNT_ID, "hush", "conv"))
        .await
        .unwrap();
    assert!(registry.remove(SHOP).await.unwrap());
    assert!(store.get(SHOP).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_renews_a_due_sign_in_and_stores_the_rotated_refresh_token() {
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    let grant = due_grant(&fake);
    {
        let store = SqliteGrantStore::new(SqliteDatabase::open_in(&data_dir).unwrap());
        save_signed_in(&store, SHOP, &grant, 1).await.unwrap();
    }
    let relay =
        crate::relay::Relay::start(&data_dir, dir.path().join("serve.log"), "hush", &fake, &[]);
    // serve checks the sign-ins as it starts (then hourly).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.refreshes() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not renew the due sign-in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let stored = grant_in(&data_dir).await.unwrap();
        if stored.refresh_token.expose_secret() != grant.refresh_token.expose_secret() {
            break stored;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal was not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(relay);
    assert!(!fake.refresh_token_live(grant.refresh_token.expose_secret()));
    assert!(fake.refresh_token_live(renewed.refresh_token.expose_secret()));
    assert_eq!(fake.refreshes(), 1, "renewed once, not on every check");
    assert!((renewed.refresh_token_expires_at - Utc::now()).num_days() >= 59);
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_wrong_app_secret_and_a_spent_refresh_token() {
    use pinrelay::pinterest::oauth::{OAuthError, TokenEndpoint as _};
    let fake = FakePinterest::start().await;
    let client = OAuthClient::new(&fake.base_url(), Duration::from_secs(10)).unwrap();
    let token = SecretString::from(fake.issue_refresh_token());
    let wrong = AppCredentials {
        app_id: APP_ID.to_owned(),
        app_secret: SecretString::from("not-the-secret"),
    };
    let e = client.refresh(&wrong, &token).await.unwrap_err();
    assert!(matches!(e, OAuthError::AppCredentials { .. }), "{e}");
    assert!(e.to_string().contains("PINTEREST_APP_SECRET"), "{e}");
    assert!(fake.refresh_token_live(token.expose_secret()), "not spent");

    let app = AppCredentials {
        app_id: APP_ID.to_owned(),
        app_secret: SecretString::from(APP_SECRET),
    };
    let tokens = client.refresh(&app, &token).await.unwrap();
    assert!(tokens.refresh_token.is_some(), "rotated");
    assert!(tokens.refresh_token_expires_at(Utc::now()).is_some());
    let e = client.refresh(&app, &token).await.unwrap_err();
    assert!(matches!(e, OAuthError::GrantRefused { .. }), "{e}");
    assert!(e.to_string().contains("pinrelay pinterest login"), "{e}");
}

#[tokio::test]
async fn a_refresh_refused_by_pinterest_says_to_sign_in_again_and_keeps_the_grant() {
    use pinrelay::pinterest::oauth::RefreshError;
    let fake = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteGrantStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
    let mut grant = due_grant(&fake);
    grant.refresh_token = SecretString::from("revoked-refresh-token");
    save_signed_in(&store, SHOP, &grant, 1).await.unwrap();
    let client = OAuthClient::new(&fake.base_url(), Duration::from_secs(10)).unwrap();
    let e = refresh_with_lease(&store, &client, SHOP, Utc::now(), false)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::SignInAgain { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("pinrelay pinterest login --shop {SHOP}")),
        "{e}"
    );
    // Nothing was overwritten, and the lease was given up: the next attempt may run.
    let kept = store.get(SHOP).await.unwrap().unwrap();
    assert_eq!(kept.refresh_token.expose_secret(), "revoked-refresh-token");
    assert!(
        store
            .try_lease(SHOP, "next", Utc::now(), chrono::Duration::minutes(1))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_stack_doctor_warns_of_an_expiring_sign_in_and_refresh_renews_it() {
    let env = TestEnv::start().await;
    let fake = FakePinterest::start().await;
    let stack = "pinrelay-oauth-stack";
    let prefix = format!("{stack}/shops/");
    let template = serde_json::json!({
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
        "Outputs": {
            "IdempotencyTableName": {"Value": env.table},
            "ShopSecretsPrefix": {"Value": prefix},
        },
    });
    env.create_stack(stack, &template, &[]).await;
    let store = aws_store(&env, stack);
    let mut grant = due_grant(&fake);
    grant.refresh_token_expires_at = Utc::now() + chrono::Duration::days(5);
    save_signed_in(&store, SHOP, &grant, 1).await.unwrap();

    let run = |args: &'static [&'static str]| {
        let (endpoint, api) = (env.endpoint.clone(), fake.base_url());
        tokio::task::spawn_blocking(move || {
            let mut command = crate::helpers::pinrelay_on_moto(&endpoint);
            command
                .args(args)
                .args(["--shop", SHOP, "--stack", stack])
                .env("PINTEREST_API_URL", &api);
            for var in SECRET_VARIABLES {
                command.env_remove(var);
            }
            command.output().unwrap()
        })
    };
    let out = run(&["doctor", "--json"]).await.unwrap();
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let sign_in = findings
        .iter()
        .find(|f| f["check"] == "pinterest_sign_in")
        .unwrap();
    assert_eq!(sign_in["status"], "fail", "{sign_in}");
    assert_eq!(
        sign_in["fix"],
        format!("pinrelay pinterest login --shop {SHOP} --stack {stack}")
    );

    let out = run(&["pinterest", "refresh"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let renewed = store.get(SHOP).await.unwrap().unwrap();
    assert!(fake.refresh_token_live(renewed.refresh_token.expose_secret()));
    assert!(!fake.refresh_token_live(grant.refresh_token.expose_secret()));
    assert!((renewed.refresh_token_expires_at - Utc::now()).num_days() >= 59);
}
