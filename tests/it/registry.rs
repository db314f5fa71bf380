//! The stack's shop registry on moto: [`AwsRegistry`] keeps each store's entry in the relay's
//! table (with an index item, so listing never scans) and its secrets in one Secrets Manager secret
//! per store, read again only when the entry changes; `pinrelay shops --stack` drives it from the
//! stack's outputs.

use std::collections::BTreeMap;
use std::process::Output;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use pinrelay::dynamodb::Table;
use pinrelay::registry::aws::{AwsRegistry, MAX_STORES};
use pinrelay::registry::{Registry, RegistryError, Shop, ShopEntry, ShopSecrets};

use crate::helpers::{TestEnv, pinrelay_on_moto};

const PREFIX: &str = "pinrelay-test/shops/";

/// A registry over the test table, as a function or the CLI builds it.
pub fn registry(env: &TestEnv, prefix: &str) -> AwsRegistry {
    AwsRegistry::new(
        Table::new(env.dynamodb.clone(), &env.table),
        env.secrets.clone(),
        prefix,
    )
}

/// A store with one webhook secret and a conversion token.
pub fn shop(domain: &str, ad_account: &str, secret: &str, token: &str) -> Shop {
    Shop {
        entry: ShopEntry {
            domain: domain.to_owned(),
            shop_id: None,
            ad_account_id: ad_account.to_owned(),
            settings: BTreeMap::new(),
            enabled: true,
            updated_at: Utc::now(),
        },
        secrets: ShopSecrets {
            webhook_secrets: vec![secret.to_owned()],
            pinterest_access_token: Some(token.to_owned()),
            ..ShopSecrets::default()
        },
    }
}

/// The secret's value by name, or `None` when Secrets Manager has no such secret.
async fn secret_value(env: &TestEnv, name: &str) -> Option<String> {
    match env.secrets.get_secret_value().secret_id(name).send().await {
        Ok(out) => out.secret_string,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSecretValue {name}: {e:?}"),
    }
}

#[tokio::test]
async fn aws_registry_keeps_entries_in_the_table_and_one_secret_per_store() {
    let env = TestEnv::start().await;
    let writer = registry(&env, PREFIX);
    let a = shop("alpha.myshopify.com", "111", "alpha-secret", "alpha-token");
    let b = shop("beta.myshopify.com", "222", "beta-secret", "beta-token");
    writer.register(&a).await.unwrap();
    writer.register(&b).await.unwrap();

    // A function's registry: its own cache, as after a cold start.
    let reader = registry(&env, PREFIX);
    let got = reader.get("alpha.myshopify.com").await.unwrap().unwrap();
    assert_eq!(got.secrets, a.secrets);
    assert_eq!(got.entry.ad_account_id, "111");
    assert!(reader.get("nobody.myshopify.com").await.unwrap().is_none());
    let listed: Vec<String> = reader
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.domain)
        .collect();
    assert_eq!(listed, ["alpha.myshopify.com", "beta.myshopify.com"]);

    // One secret per store, named by the prefix, holding the secrets as JSON.
    let stored = secret_value(&env, &format!("{PREFIX}alpha.myshopify.com"))
        .await
        .unwrap();
    let stored: ShopSecrets = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored, a.secrets);
    // The entry item holds no secret and never expires; the index lists the domains.
    let item = env
        .dynamodb
        .get_item()
        .table_name(&env.table)
        .key("id", AttributeValue::S("shop#alpha.myshopify.com".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!format!("{item:?}").contains("alpha-secret"));
    assert!(!item.contains_key("expires_at"));
    let index = env
        .dynamodb
        .get_item()
        .table_name(&env.table)
        .key("id", AttributeValue::S("shops".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut domains = index["domains"].as_ss().unwrap().clone();
    domains.sort();
    assert_eq!(domains, ["alpha.myshopify.com", "beta.myshopify.com"]);

    // The secret is read once per version of the entry, however often the entry is.
    for _ in 0..5 {
        reader.get("alpha.myshopify.com").await.unwrap().unwrap();
    }
    assert_eq!(reader.secret_reads(), 1, "one GetSecretValue for five gets");

    // A rotated secret (`shops update --secrets`) is seen at the next get, read once.
    let mut rotated = a.clone();
    rotated.secrets.webhook_secrets = vec!["alpha-new".into(), "alpha-secret".into()];
    writer.register(&rotated).await.unwrap();
    for _ in 0..3 {
        let got = reader.get("alpha.myshopify.com").await.unwrap().unwrap();
        assert_eq!(got.secrets.webhook_secrets, ["alpha-new", "alpha-secret"]);
        assert!(got.entry.updated_at > a.entry.updated_at);
    }
    assert_eq!(reader.secret_reads(), 2);

    // Removal deletes the entry, its index line and its secret (no recovery window).
    assert!(writer.remove("alpha.myshopify.com").await.unwrap());
    assert!(reader.get("alpha.myshopify.com").await.unwrap().is_none());
    assert!(
        secret_value(&env, &format!("{PREFIX}alpha.myshopify.com"))
            .await
            .is_none()
    );
    let listed = reader.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].domain, "beta.myshopify.com");
    assert!(!writer.remove("alpha.myshopify.com").await.unwrap());
    // Added again under the same name at once: the name was freed.
    writer.register(&a).await.unwrap();
    assert!(reader.get("alpha.myshopify.com").await.unwrap().is_some());

    // Invalid stores are refused before anything is written.
    let bad = shop("acme.com", "1", "s", "t");
    assert!(matches!(
        writer.register(&bad).await,
        Err(RegistryError::InvalidDomain(_))
    ));
}

#[tokio::test]
async fn the_index_of_stores_refuses_a_store_past_what_one_item_holds() {
    let env = TestEnv::start().await;
    // A stack at the limit: the index item alone, written as the registry writes it.
    let domains: Vec<String> = (0..MAX_STORES)
        .map(|i| format!("store-{i:05}.myshopify.com"))
        .collect();
    env.dynamodb
        .put_item()
        .table_name(&env.table)
        .item("id", AttributeValue::S("shops".into()))
        .item("domains", AttributeValue::Ss(domains))
        .send()
        .await
        .unwrap();
    let registry = registry(&env, PREFIX);
    let e = registry
        .register(&shop("one-more.myshopify.com", "1", "s", "t"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("5000 stores"), "{e}");
    assert!(e.contains("remove a store or deploy another stack"), "{e}");
    assert!(
        secret_value(&env, &format!("{PREFIX}one-more.myshopify.com"))
            .await
            .is_none(),
        "nothing was written"
    );
}

/// A stack on moto with the outputs `pinrelay shops --stack` reads.
async fn registry_stack(env: &TestEnv, name: &str, prefix: &str) {
    let template = serde_json::json!({
        "Resources": {
            "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        },
        "Outputs": {
            "IdempotencyTableName": {"Value": env.table},
            "ShopSecretsPrefix": {"Value": prefix},
        },
    });
    env.create_stack(name, &template, &[]).await;
}

/// `pinrelay shops ARGS --stack NAME` on moto, `stdin` as its standard input.
fn shops(env: &TestEnv, stack: &str, args: &[&str], stdin: &str) -> Output {
    let mut command = pinrelay_on_moto(&env.endpoint);
    command.arg("shops").args(args).args(["--stack", stack]);
    crate::helpers::run_with_stdin(command, stdin)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn shops_with_stack_adds_lists_shows_and_removes_stores_of_a_stack() {
    let env = TestEnv::start().await;
    let stack = "pinrelay-shops";
    let prefix = format!("{stack}/shops/");
    registry_stack(&env, stack, &prefix).await;

    let add = shops(
        &env,
        stack,
        &[
            "add",
            "alpha",
            "--ad-account",
            "549755885175",
            "--set",
            "CONTENT_ID=sku",
        ],
        "shpss_alpha_secret\npina_alpha_token\n\n\n",
    );
    assert!(add.status.success(), "{}", text(&add));
    assert!(text(&add).contains("added    alpha.myshopify.com"));
    assert!(!text(&add).contains("shpss_alpha_secret"));

    // What the functions read: the entry, and the secret under the stack's prefix.
    let got = registry(&env, &prefix)
        .get("alpha.myshopify.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.entry.ad_account_id, "549755885175");
    assert_eq!(got.entry.settings["CONTENT_ID"], "sku");
    assert_eq!(got.secrets.webhook_secrets, ["shpss_alpha_secret"]);
    assert_eq!(
        got.secrets.pinterest_access_token.as_deref(),
        Some("pina_alpha_token")
    );
    assert!(
        secret_value(&env, &format!("{prefix}alpha.myshopify.com"))
            .await
            .is_some()
    );

    let list = shops(&env, stack, &["list"], "");
    assert!(list.status.success(), "{}", text(&list));
    assert!(
        text(&list).contains("alpha.myshopify.com  549755885175  enabled"),
        "{}",
        text(&list)
    );

    let show = shops(&env, stack, &["show", "alpha"], "");
    assert!(show.status.success(), "{}", text(&show));
    assert!(text(&show).contains("1 webhook secret(s), conversion token set"));
    assert!(!text(&show).contains("shpss_alpha_secret"));
    assert!(!text(&show).contains("pina_alpha_token"));

    let again = shops(&env, stack, &["add", "alpha", "--ad-account", "1"], "x\n");
    assert!(!again.status.success());
    assert!(text(&again).contains("registered already"));

    let remove = shops(&env, stack, &["remove", "alpha"], "");
    assert!(remove.status.success(), "{}", text(&remove));
    assert!(
        secret_value(&env, &format!("{prefix}alpha.myshopify.com"))
            .await
            .is_none()
    );
    let list = shops(&env, stack, &["list"], "");
    assert!(
        text(&list).contains("no store registered"),
        "{}",
        text(&list)
    );

    // --data-dir and --stack name two registries: refused together.
    let both = shops(&env, stack, &["list", "--data-dir", "/tmp/x"], "");
    assert!(!both.status.success());
    assert!(
        text(&both).contains("cannot be used with"),
        "{}",
        text(&both)
    );

    // A stack without the output: the message says to deploy this version.
    registry_stack_without_prefix(&env, "pinrelay-old").await;
    let old = shops(&env, "pinrelay-old", &["list"], "");
    assert!(!old.status.success());
    assert!(
        text(&old).contains("has no ShopSecretsPrefix output"),
        "{}",
        text(&old)
    );
}

async fn registry_stack_without_prefix(env: &TestEnv, name: &str) {
    let template = serde_json::json!({
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
        "Outputs": {"IdempotencyTableName": {"Value": env.table}},
    });
    env.create_stack(name, &template, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_a_stacks_registered_store_with_its_own_secrets() {
    use crate::fake_pinterest::{ACCESS_TOKEN, FakePinterest};
    let env = TestEnv::start().await;
    let pinterest = FakePinterest::start().await;
    let shopify = crate::fake_shopify::FakeShopify::start().await;
    registry_stack(&env, "pinrelay-doctor-stores", PREFIX).await;
    let registry = registry(&env, PREFIX);
    let mut store = shop("zeta.myshopify.com", "2002", "zeta-secret", ACCESS_TOKEN);
    store.secrets.shopify_admin_token = Some(crate::fake_shopify::ADMIN_TOKEN.to_owned());
    registry.register(&store).await.unwrap();
    let (endpoint, admin, api) = (
        env.endpoint.clone(),
        shopify.base_url(),
        pinterest.base_url(),
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut command = pinrelay_on_moto(&endpoint);
        command
            .args(["doctor", "--shop", "zeta", "--json"])
            .args(["--stack", "pinrelay-doctor-stores"])
            .args(["--admin-url-base", &admin])
            .env("PINTEREST_API_URL", &api);
        for var in crate::helpers::SECRET_VARIABLES {
            command.env_remove(var);
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    let findings: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let status = |check: &str| {
        findings
            .iter()
            .find(|f| f["check"] == check)
            .map(|f| f["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    for check in [
        "secrets",
        "shopify_admin_token",
        "pinterest_conversion_token",
    ] {
        assert_eq!(status(check), "ok", "{check}: {findings:?}");
    }
    // The probe went to the store's ad account; no secret was printed.
    assert!(
        pinterest
            .requests()
            .iter()
            .any(|r| r.ad_account_id == "2002" && r.status == 200)
    );
    let all = text(&out);
    for secret in [
        "zeta-secret",
        ACCESS_TOKEN,
        crate::fake_shopify::ADMIN_TOKEN,
    ] {
        assert!(!all.contains(secret), "printed {secret}");
    }
}

#[tokio::test]
async fn aws_registry_disables_a_store_without_touching_its_secret() {
    let env = TestEnv::start().await;
    let writer = registry(&env, PREFIX);
    let a = shop("alpha.myshopify.com", "111", "alpha-secret", "alpha-token");
    writer.register(&a).await.unwrap();
    let reader = registry(&env, PREFIX);
    reader.get("alpha.myshopify.com").await.unwrap().unwrap();
    let before = secret_value(&env, &format!("{PREFIX}alpha.myshopify.com")).await;

    // What dispatch does on `app/uninstalled`.
    assert!(
        writer
            .set_enabled("alpha.myshopify.com", false)
            .await
            .unwrap()
    );
    assert!(
        !writer
            .set_enabled("nobody.myshopify.com", false)
            .await
            .unwrap()
    );
    let got = reader.get("alpha.myshopify.com").await.unwrap().unwrap();
    assert!(!got.entry.enabled);
    assert_eq!(
        got.secrets, a.secrets,
        "its secrets are kept for a reinstall"
    );
    assert_eq!(
        secret_value(&env, &format!("{PREFIX}alpha.myshopify.com")).await,
        before
    );
    assert!(
        writer
            .set_enabled("alpha.myshopify.com", true)
            .await
            .unwrap()
    );
    assert!(
        reader
            .get("alpha.myshopify.com")
            .await
            .unwrap()
            .unwrap()
            .entry
            .enabled
    );
    // Removed meanwhile (`shop/redact`): nothing to disable, and no entry written back.
    writer.remove("alpha.myshopify.com").await.unwrap();
    assert!(
        !writer
            .set_enabled("alpha.myshopify.com", false)
            .await
            .unwrap()
    );
    assert!(reader.get("alpha.myshopify.com").await.unwrap().is_none());
}
