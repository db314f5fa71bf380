//! `pinrelay doctor`: checks a `pinrelay serve` setup end to end from its variables, one line per
//! check (`ok`, `fail` with its fix, or `skip`); exits 1 when a check fails.

use std::process::ExitCode;
use std::time::Duration;

use pinrelay::config::{self, keys};
use pinrelay::doctor::{self, Secret};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::shopify::admin::{AdminApi, DEFAULT_API_VERSION, RetryPolicy, shop_domain};
use secrecy::SecretString;

/// Arguments of `pinrelay doctor`. Tokens and secrets come from serve's variables, never flags.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// Print `[{"check", "status", "detail", "fix"}]` instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Base URL of the Admin API instead of https://{shop} (tests).
    #[arg(long, hide = true)]
    pub admin_url_base: Option<String>,
    /// Base URL of the Pinterest API (tests).
    #[arg(
        long,
        hide = true,
        env = "PINTEREST_API_URL",
        default_value = "https://api.pinterest.com"
    )]
    pub pinterest_api_url: String,
}

/// Doctor's own waits: a check answers within seconds or fails, it does not wait out an outage.
const CHECK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 2,
    min_wait: Duration::from_millis(250),
    max_wait: Duration::from_secs(2),
    attempt_timeout: Duration::from_secs(10),
};

/// Runs the checks and prints them.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(shop) = shop_domain(&args.shop) else {
        eprintln!(
            "error: --shop {:?} is not a shop name or a name.myshopify.com domain",
            args.shop
        );
        return Ok(ExitCode::from(2));
    };
    let rules = config::mapping_options()?;
    let api_version =
        config::var(keys::SHOPIFY_API_VERSION).unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    let ad_account = config::var(keys::PINTEREST_AD_ACCOUNT_ID);
    let conversion_token = config::var(keys::PINTEREST_ACCESS_TOKEN);

    let mut findings = vec![doctor::secrets(&[
        Secret {
            name: keys::SHOPIFY_WEBHOOK_SECRETS,
            value: config::var(keys::SHOPIFY_WEBHOOK_SECRETS),
            source: "the Shopify app's client secret (Dev Dashboard or Partner Dashboard, app, Settings)",
        },
        Secret {
            name: keys::PINTEREST_ACCESS_TOKEN,
            value: conversion_token.clone(),
            source: "the conversion access token (Ads Manager, Conversions, Conversion access token)",
        },
        Secret {
            name: keys::PINTEREST_AD_ACCOUNT_ID,
            value: ad_account.clone(),
            source: "the Pinterest ad account id (Ads Manager, the number in the URL)",
        },
    ])];

    let admin = match config::var(keys::SHOPIFY_ADMIN_TOKEN) {
        Some(token) => Some(
            AdminApi::new(
                &shop,
                SecretString::from(token),
                &api_version,
                args.admin_url_base.as_deref(),
            )?
            .with_retry_policy(CHECK_RETRY),
        ),
        None => None,
    };
    let admin_finding = doctor::shopify_admin_token(admin.as_ref()).await;
    let admin_works = admin_finding.status == doctor::Status::Ok;
    findings.push(admin_finding);
    let webhook_url = config::var(keys::WEBHOOK_URL);
    findings.push(
        doctor::webhook_subscriptions(
            admin.as_ref().filter(|_| admin_works),
            rules.checkout_on,
            &shop,
            webhook_url.as_deref(),
        )
        .await,
    );

    let pinterest = |token: Option<String>, test_mode: bool| -> anyhow::Result<_> {
        let (Some(token), Some(account)) = (token, ad_account.clone()) else {
            return Ok(None);
        };
        Ok(Some(PinterestHttp::new(PinterestHttpConfig {
            base_url: args.pinterest_api_url.trim_end_matches('/').to_owned(),
            ad_account_id: account,
            access_token: SecretString::from(token),
            test_mode,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        })?))
    };
    let account = ad_account.clone().unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let conversions = pinterest(conversion_token, true)?;
    findings.push(doctor::pinterest_conversion_token(conversions.as_ref(), &account, now).await);
    let api = pinterest(config::var(keys::PINTEREST_API_TOKEN), false)?;
    findings.push(doctor::event_quality(api.as_ref()).await);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", doctor::render(&findings));
    }
    Ok(if doctor::passed(&findings) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
