//! `pinrelay doctor`: checks a setup end to end, a deployed stack's (`--stack`: its outputs,
//! parameters and secrets) or `pinrelay serve`'s (its variables), one line per check (`ok`, `fail`
//! with its fix, or `skip`); exits 1 when a check fails.

use std::process::ExitCode;
use std::time::Duration;

use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::doctor::{self, Secret, is_placeholder};
use pinrelay::mapping::CheckoutOn;
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::shopify::admin::{
    AdminApi, AdminCredentials, DEFAULT_API_VERSION, RetryPolicy, shop_domain,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::stack::Stack;

/// Arguments of `pinrelay doctor`. Tokens and secrets come from the stack or serve's variables,
/// never flags.
#[derive(clap::Args)]
pub struct Args {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    pub shop: String,
    /// A deployed stack: its outputs, parameters and secrets; without it, serve's variables.
    #[arg(long)]
    pub stack: Option<String>,
    /// Print `[{"check", "status", "detail", "fix"}]` instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Where the Shopify and Pinterest APIs are (tests point them at fakes).
    #[command(flatten)]
    pub endpoints: crate::input::Endpoints,
}

/// Doctor's own waits: a check answers within seconds or fails, it does not wait out an outage.
const CHECK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 2,
    min_wait: Duration::from_millis(250),
    max_wait: Duration::from_secs(2),
    attempt_timeout: Duration::from_secs(10),
};

/// A token and where it lives (named in skips and fixes).
struct Token {
    /// The token, when filled with something other than a placeholder.
    value: Option<SecretString>,
    /// `PINTEREST_ACCESS_TOKEN`, or the stack's secret.
    home: String,
}

/// The Admin API credentials and where they live (named in skips and fixes).
struct Admin {
    /// A token or a client id and secret, when filled with something other than a placeholder.
    value: Option<AdminCredentials>,
    /// `SHOPIFY_ADMIN_TOKEN` (or the client id and secret variables), or the stack's secret.
    home: String,
}

impl Admin {
    fn new(value: Option<AdminCredentials>, home: impl Into<String>) -> Self {
        let filled = |c: &AdminCredentials| match c {
            AdminCredentials::Token(token) => !is_placeholder(token.expose_secret()),
            AdminCredentials::ClientCredentials {
                client_id,
                client_secret,
            } => !is_placeholder(client_id) && !is_placeholder(client_secret.expose_secret()),
        };
        Self {
            value: value.filter(filled),
            home: home.into(),
        }
    }
}

impl Token {
    fn new(value: Option<SecretString>, home: impl Into<String>) -> Self {
        Self {
            value: value.filter(|v| !is_placeholder(v.expose_secret())),
            home: home.into(),
        }
    }
}

/// What the checks need, from a stack or from serve's variables.
struct Setup {
    secrets: Vec<Secret>,
    admin: Admin,
    conversion_token: Token,
    ad_account: Option<String>,
    checkout_on: CheckoutOn,
    webhook_url: Option<String>,
    api_version: String,
}

/// Runs the checks and prints them.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(shop) = shop_domain(&args.shop) else {
        eprintln!(
            "error: --shop {:?} is not a shop name or a name.myshopify.com domain",
            args.shop
        );
        return Ok(ExitCode::from(2));
    };
    let setup = match &args.stack {
        Some(name) => from_stack(name).await?,
        None => from_env()?,
    };

    let mut findings = vec![doctor::secrets(&setup.secrets)];
    let admin = match &setup.admin.value {
        Some(credentials) => Some(
            AdminApi::new(
                &shop,
                credentials.clone(),
                &setup.api_version,
                args.endpoints.admin_url_base.as_deref(),
            )?
            .with_retry_policy(CHECK_RETRY),
        ),
        None => None,
    };
    let admin_finding = doctor::shopify_admin_token(admin.as_ref(), &setup.admin.home).await;
    let admin_works = admin_finding.status == doctor::Status::Ok;
    findings.push(admin_finding);
    findings.push(
        doctor::webhook_subscriptions(
            admin.as_ref().filter(|_| admin_works),
            setup.checkout_on,
            &shop,
            setup.webhook_url.as_deref(),
        )
        .await,
    );

    let pinterest = |token: Option<SecretString>, test_mode: bool| -> anyhow::Result<_> {
        let (Some(token), Some(account)) = (token, setup.ad_account.clone()) else {
            return Ok(None);
        };
        Ok(Some(PinterestHttp::new(PinterestHttpConfig {
            base_url: args
                .endpoints
                .pinterest_api_url
                .trim_end_matches('/')
                .to_owned(),
            ad_account_id: account,
            access_token: token,
            test_mode,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        })?))
    };
    let account = setup.ad_account.clone().unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let conversions = pinterest(setup.conversion_token.value.clone(), true)?;
    findings.push(
        doctor::pinterest_conversion_token(
            conversions.as_ref(),
            &account,
            &setup.conversion_token.home,
            now,
        )
        .await,
    );
    let api_token = config::var(keys::PINTEREST_API_TOKEN).map(SecretString::from);
    let api = pinterest(api_token, false)?;
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

/// `pinrelay serve`'s setup: its variables.
fn from_env() -> anyhow::Result<Setup> {
    let var = |key: &'static str, fix: &str| Secret {
        name: key.to_owned(),
        value: config::var(key),
        fix: format!("set {key} to {fix}"),
    };
    Ok(Setup {
        secrets: vec![
            var(
                keys::SHOPIFY_WEBHOOK_SECRETS,
                "the Shopify app's client secret (Dev Dashboard or Partner Dashboard, app, Settings)",
            ),
            var(
                keys::PINTEREST_ACCESS_TOKEN,
                "the conversion access token (Ads Manager, Conversions, Conversion access token)",
            ),
            var(
                keys::PINTEREST_AD_ACCOUNT_ID,
                "the Pinterest ad account id (Ads Manager, the number in the URL)",
            ),
        ],
        admin: Admin::new(
            config::admin_credentials()?,
            format!(
                "{} (or {} and {})",
                keys::SHOPIFY_ADMIN_TOKEN,
                keys::SHOPIFY_CLIENT_ID,
                keys::SHOPIFY_CLIENT_SECRET
            ),
        ),
        conversion_token: Token::new(
            config::var(keys::PINTEREST_ACCESS_TOKEN).map(SecretString::from),
            keys::PINTEREST_ACCESS_TOKEN,
        ),
        ad_account: config::var(keys::PINTEREST_AD_ACCOUNT_ID),
        checkout_on: config::mapping_options()?.checkout_on,
        webhook_url: config::var(keys::WEBHOOK_URL),
        api_version: config::var(keys::SHOPIFY_API_VERSION)
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
    })
}

/// A deployed stack's setup: its outputs, its parameters and the values of its secrets.
async fn from_stack(name: &str) -> anyhow::Result<Setup> {
    let sdk = aws::load(Budget::CLI).await;
    let stack = Stack::describe(&sdk, name).await?;
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&sdk);
    let mut secrets = Vec::new();
    let mut values = Vec::new();
    for (output, what) in [
        ("ShopifyWebhookSecret", "the Shopify app's client secret"),
        (
            "PinterestAccessTokenSecret",
            "the Pinterest conversion access token",
        ),
        (
            "ShopifyAdminTokenSecret",
            r#"an Admin API access token with read_orders, or a Dev Dashboard app's {"client_id": "...", "client_secret": "..."}"#,
        ),
    ] {
        let arn = stack.output(output);
        let value = match &arn {
            Some(arn) => secret_value(&secrets_manager, arn).await?,
            None => None,
        };
        secrets.push(Secret {
            name: output.to_owned(),
            value: value.clone(),
            fix: format!(
                "aws secretsmanager put-secret-value --secret-id {} --secret-string file:///dev/stdin (paste {what}, then Ctrl-D)",
                arn.as_deref().unwrap_or(output)
            ),
        });
        values.push(value);
    }
    let token = |value: &Option<String>, key| {
        value
            .as_deref()
            .and_then(|v| pinrelay::secrets::parse_pinterest_token(v, key).ok())
    };
    let rules = stack.variables(&crate::stack::RULE_VARIABLES);
    let get = |key: &'static str| rules.get(key).cloned();
    Ok(Setup {
        admin: Admin::new(
            values[2].as_deref().and_then(|v| {
                pinrelay::secrets::parse_admin_credentials(v, keys::SHOPIFY_ADMIN_TOKEN_SECRET_ARN)
                    .ok()
            }),
            "the stack's ShopifyAdminTokenSecret",
        ),
        conversion_token: Token::new(
            token(&values[1], keys::PINTEREST_ACCESS_TOKEN_SECRET_ARN),
            "the stack's PinterestAccessTokenSecret",
        ),
        secrets,
        ad_account: stack.parameter("PinterestAdAccountId"),
        checkout_on: config::order_rules_from(&get)?.checkout_on,
        webhook_url: stack.output("WebhookUrl"),
        api_version: config::var(keys::SHOPIFY_API_VERSION)
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
    })
}

/// A secret's current value; `None` when it has none yet (the stack creates its secrets empty).
///
/// # Errors
/// The secret cannot be read (permissions, region).
pub async fn secret_value(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> anyhow::Result<Option<String>> {
    match client.get_secret_value().secret_id(arn).send().await {
        Ok(out) => Ok(out.secret_string().map(str::to_owned)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read secret {arn} (check the credentials allow secretsmanager:GetSecretValue): {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        )),
    }
}
