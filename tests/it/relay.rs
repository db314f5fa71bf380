//! A real `pinrelay serve` process for the end-to-end tests (`serve.rs`, `browser.rs`): started on
//! a free loopback port against the fake Pinterest, with every setting it would otherwise read
//! from the developer's shell cleared first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::subscribe::pinrelay_bin;

/// Settings the relay reads; cleared so the shell cannot change a test's outcome.
const CLEARED_ENV: [&str; 24] = [
    "DEFAULT_COUNTRY",
    "ORDER_SOURCES",
    "SHOPIFY_SHOP_DOMAINS",
    "ORDER_DELAY_SECONDS",
    "ORDER_CONSENT_POLICY",
    "EVENT_ID_TEMPLATE",
    "STORE_URL",
    "INCLUDE_TEST_ORDERS",
    "SEND_POS_ORDERS",
    "RESEND_IN_DOUBT",
    "SHOPIFY_ADMIN_TOKEN",
    "SHOPIFY_CLIENT_ID",
    "SHOPIFY_CLIENT_SECRET",
    "SHOPIFY_ADMIN_API_URL",
    "SHOP_DOMAIN",
    "VALUE_SOURCE",
    "CONTENT_ID",
    "MAX_RECEIVE_COUNT",
    "PINTEREST_TEST_MODE",
    "PINRELAY_RETRY_BASE_MS",
    "PINRELAY_VISIBILITY_TIMEOUT_MS",
    // No test uploads customer lists unless it says so.
    "AUDIENCE_LISTS",
    "AUDIENCE_SYNC_HOURS",
    "PINTEREST_API_TOKEN",
];

/// A running `pinrelay serve`; dropping it kills the process.
pub struct Relay {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Relay {
    /// Starts the relay on `data_dir`, signing secret `secret`, sending to `fake`, logging to `log`.
    /// Orders go at once (`ORDER_DELAY_SECONDS=0`) unless `env` says otherwise; `env` is applied
    /// last.
    pub fn start(
        data_dir: &Path,
        log: PathBuf,
        secret: &str,
        fake: &FakePinterest,
        env: &[(&str, &str)],
    ) -> Relay {
        // The tests' own HTTP clients (health, webhooks) use the library's rustls provider.
        pinrelay::pinterest::http::install_crypto_provider();
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(pinrelay_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--dispatch-interval-ms", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for key in CLEARED_ENV {
            command.env_remove(key);
        }
        command
            .env("SHOPIFY_WEBHOOK_SECRETS", secret)
            .env("PINTEREST_ACCESS_TOKEN", ACCESS_TOKEN)
            .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
            .env("PINTEREST_API_URL", fake.base_url())
            .env("ORDER_DELAY_SECONDS", "0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pinrelay serve exited with {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "pinrelay serve did not listen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Relay { child, base, log }
    }

    /// The webhook endpoint.
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/shopify", self.base)
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/healthz", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> BTreeMap<String, f64> {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until nothing is pending: every message sent, skipped, deduplicated, recorded or
    /// dead-lettered. Returns the last health answer.
    pub async fn drained(&self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let health = self.health().await;
            if health["pending"] == 0 {
                return health;
            }
            assert!(
                Instant::now() < deadline,
                "queue not drained within {within:?}: {health}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last 30 lines of the relay's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Posts `body` to `url` as Shopify would: a `topic` webhook from `shop`, signed with `secret`,
/// with the delivery id `webhook_id`. The status.
pub async fn post_webhook(
    url: &str,
    topic: &str,
    shop: &str,
    secret: &str,
    webhook_id: &str,
    body: &[u8],
) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", shop)
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header(
            "X-Shopify-Hmac-Sha256",
            pinrelay::shopify::sign(secret.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
