//! `pinrelay doctor` against the fake Admin API and the fake Pinterest (which validates the probe
//! event against Pinterest's schema): a good serve setup passes every check that can run (exit 0),
//! and each broken part fails its own check, with its fix, and exits 1.

use std::process::Command;

use serde_json::Value;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::fake_shopify::{ADMIN_TOKEN, FakeShopify, SHOP_DOMAIN};
use crate::subscribe::pinrelay_bin;

const WEBHOOK_URL: &str = "https://relay.example.com/webhooks/shopify";

/// What to break in an otherwise good setup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Break {
    Nothing,
    PinterestToken,
    AdminToken,
    Subscriptions,
    WebhookSecret,
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

async fn doctor(broken: Break, api_token: bool) -> Run {
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    if broken != Break::Subscriptions {
        for topic in ["orders/create", "customers/create"] {
            shopify.add_subscription(topic, WEBHOOK_URL);
        }
    }
    let admin_base = shopify.base_url();
    let pinterest_base = pinterest.base_url();
    let run = tokio::task::spawn_blocking(move || {
        let pick = |bad: Break, good: &str, wrong: &str| {
            if broken == bad { wrong } else { good }.to_owned()
        };
        let mut command = Command::new(pinrelay_bin());
        command
            .args(["doctor", "--shop", SHOP_DOMAIN, "--json"])
            .args(["--admin-url-base", &admin_base])
            .env("PINTEREST_API_URL", &pinterest_base)
            .env(
                "SHOPIFY_WEBHOOK_SECRETS",
                pick(
                    Break::WebhookSecret,
                    "hush-its-a-secret",
                    "your-client-secret",
                ),
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
            .env("WEBHOOK_URL", WEBHOOK_URL)
            .env_remove("CHECKOUT_ON")
            .env_remove("SHOPIFY_API_VERSION");
        if api_token {
            command.env("PINTEREST_API_TOKEN", ACCESS_TOKEN);
        } else {
            command.env_remove("PINTEREST_API_TOKEN");
        }
        command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let findings: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&run.stderr)));
    // The probe is sent in test mode and is valid for Pinterest's schema.
    assert!(
        pinterest.schema_errors().is_empty(),
        "{:?}",
        pinterest.schema_errors()
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
        "webhook_subscriptions",
        "pinterest_conversion_token",
        "event_quality",
    ] {
        assert_eq!(run.status(check), "ok", "{:?}", run.finding(check));
    }
    assert!(run.findings.iter().all(|f| f.get("fix").is_none()));
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
            "pinrelay subscribe --shop acme.myshopify.com --address https://relay.example.com/webhooks/shopify",
        ),
        (Break::WebhookSecret, "secrets", "SHOPIFY_WEBHOOK_SECRETS"),
    ] {
        let run = doctor(broken, false).await;
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
