//! `pinrelay pinterest`: sign a store in to Pinterest (`login`, the OAuth authorization-code flow
//! with a loopback redirect) and renew its sign-in once (`refresh`, under the store's lease).
//!
//! The app secret is read like every secret: `PINTEREST_APP_SECRET`, a hidden prompt, or standard
//! input (a line after the app id's when `PINTEREST_APP_ID` is unset), never a flag. The tokens
//! are never printed; they go to the relay's grant store (the data dir's relay.db, mode 0600, or
//! the stack's secret `{StackName}/shops/{domain}/pinterest-oauth`).

use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::Utc;
use pinrelay::aws::{self, Budget};
use pinrelay::config::{self, keys};
use pinrelay::dynamodb::Table;
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::sqlite::SqliteGrantStore;
use pinrelay::pinterest::oauth::{
    self, AdAccount, AppCredentials, Grant, OAuthClient, RefreshOutcome, refresh_token_days_left,
};
use pinrelay::shopify::admin::shop_domain;
use secrecy::SecretString;
use tokio::sync::oneshot;

use crate::stack::Stack;

/// Arguments of `pinrelay pinterest`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Sign a store in to Pinterest (OAuth in the browser), pick its ad account, store the grant.
    Login(LoginArgs),
    /// Renew a store's Pinterest sign-in now (under its lease; the refresher does this on its own).
    Refresh(RefreshArgs),
}

/// Where the grant is kept: a stack or serve's data directory.
#[derive(clap::Args, Clone)]
#[command(group(clap::ArgGroup::new("relay").required(true).args(["stack", "data_dir"])))]
pub struct Relay {
    /// A deployed stack: the grant goes to its secret `{StackName}/shops/{domain}/pinterest-oauth`.
    #[arg(long)]
    pub stack: Option<String>,
    /// `pinrelay serve`'s data directory: the grant goes to its relay.db (mode 0600).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `pinrelay pinterest login`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    shop: String,
    #[command(flatten)]
    relay: Relay,
    /// The loopback port of the redirect URI `http://localhost:PORT/`, registered in advance in
    /// the Pinterest app (0 picks a free one, for tests).
    #[arg(long, default_value_t = 8085)]
    port: u16,
    /// The ad account the store's audiences use (else picked from the list).
    #[arg(long)]
    ad_account: Option<String>,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
    /// Pinterest's authorize page (tests).
    #[arg(long, hide = true, env = "PINTEREST_OAUTH_URL", default_value = oauth::AUTHORIZE_URL)]
    pinterest_oauth_url: String,
    /// Where the APIs are (tests point them at fakes).
    #[command(flatten)]
    endpoints: crate::input::Endpoints,
}

/// Arguments of `pinrelay pinterest refresh`.
#[derive(clap::Args)]
pub struct RefreshArgs {
    /// The shop: `name` or `name.myshopify.com`.
    #[arg(long)]
    shop: String,
    #[command(flatten)]
    relay: Relay,
    /// Where the APIs are (tests point them at fakes).
    #[command(flatten)]
    endpoints: crate::input::Endpoints,
}

/// The grant store of a relay.
pub enum Grants {
    /// serve's relay.db.
    Local(SqliteGrantStore),
    /// A stack's secrets and table.
    Aws(AwsGrantStore),
}

impl Grants {
    /// The store of `relay`: its data dir (created if need be) or its stack's outputs.
    ///
    /// # Errors
    /// The database cannot be opened, or the stack read.
    pub async fn open(relay: &Relay) -> anyhow::Result<Self> {
        if let Some(dir) = &relay.data_dir {
            let db = pinrelay::sqlite::SqliteDatabase::open_in(dir)
                .with_context(|| format!("cannot open {}", dir.display()))?;
            return Ok(Self::Local(SqliteGrantStore::new(db)));
        }
        let name = relay
            .stack
            .as_deref()
            .context("give --stack NAME or --data-dir DIR")?;
        let sdk = aws::load(Budget::CLI).await;
        let stack = Stack::describe(&sdk, name).await?;
        Self::of_stack(&sdk, &stack, name).map(Self::Aws)
    }

    /// The grant store of a described stack.
    ///
    /// # Errors
    /// The stack lacks the outputs (an older template).
    pub fn of_stack(
        sdk: &aws_config::SdkConfig,
        stack: &Stack,
        name: &str,
    ) -> anyhow::Result<AwsGrantStore> {
        let output = |key: &str| {
            stack.output(key).with_context(|| {
                format!("stack {name} has no {key} output: deploy this version of pinrelay's template (sam deploy or cdk deploy) to add it")
            })
        };
        Ok(AwsGrantStore::new(
            Table::new(
                aws_sdk_dynamodb::Client::new(sdk),
                output("IdempotencyTableName")?,
            ),
            aws_sdk_secretsmanager::Client::new(sdk),
            output("ShopSecretsPrefix")?,
        ))
    }

    async fn save(&self, shop: &str, grant: &Grant) -> anyhow::Result<()> {
        match self {
            Self::Local(store) => oauth::save_signed_in(store, shop, grant, 10).await?,
            Self::Aws(store) => oauth::save_signed_in(store, shop, grant, 10).await?,
        }
        Ok(())
    }

    async fn refresh(
        &self,
        client: &OAuthClient,
        shop: &str,
        force: bool,
    ) -> Result<RefreshOutcome, oauth::RefreshError> {
        match self {
            Self::Local(store) => {
                oauth::refresh_with_lease(store, client, shop, Utc::now(), force).await
            }
            Self::Aws(store) => {
                oauth::refresh_with_lease(store, client, shop, Utc::now(), force).await
            }
        }
    }
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Login(args) => login(args).await,
        Command::Refresh(args) => refresh(args).await,
    }
}

fn domain(shop: &str) -> anyhow::Result<String> {
    shop_domain(shop).with_context(|| {
        format!("--shop {shop:?} is not a shop name or a name.myshopify.com domain")
    })
}

/// The Pinterest app's id and secret: variables, else prompts, else standard input's lines.
fn app_credentials() -> anyhow::Result<AppCredentials> {
    let interactive = std::io::stdin().is_terminal();
    let mut lines = std::io::stdin().lock().lines();
    let mut next_line = |what: &str| -> anyhow::Result<String> {
        lines
            .next()
            .transpose()?
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .with_context(|| format!("no {what} on standard input"))
    };
    let app_id = match config::var(keys::PINTEREST_APP_ID) {
        Some(id) => id,
        None if interactive => {
            let term = console::Term::stderr();
            term.write_str("Pinterest app id (developers.pinterest.com, My apps): ")?;
            term.read_line()?.trim().to_owned()
        }
        None => next_line("Pinterest app id (or set PINTEREST_APP_ID)")?,
    };
    anyhow::ensure!(
        !app_id.is_empty() && app_id.chars().all(|c| c.is_ascii_alphanumeric()),
        "the Pinterest app id {app_id:?} is not an app id (developers.pinterest.com, My apps, the app's id)"
    );
    let secret = match config::var(keys::PINTEREST_APP_SECRET) {
        Some(secret) => secret,
        None if interactive => crate::input::prompt_hidden("Pinterest app secret (hidden): ")?
            .trim()
            .to_owned(),
        None => next_line("Pinterest app secret (or set PINTEREST_APP_SECRET)")?,
    };
    anyhow::ensure!(!secret.is_empty(), "the Pinterest app secret is empty");
    Ok(AppCredentials {
        app_id,
        app_secret: SecretString::from(secret),
    })
}

/// A random `state` (32 bytes, hex).
fn random_state() -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0_u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no random source for the sign-in's state"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What the redirect brought back.
type Callback = Result<String, String>;

/// The loopback listener's state: the expected `state`, and where the first answer goes.
struct Loopback {
    state: String,
    reply: Mutex<Option<oneshot::Sender<Callback>>>,
}

async fn callback(
    State(loopback): State<Arc<Loopback>>,
    Query(query): Query<HashMap<String, String>>,
) -> (axum::http::StatusCode, Html<&'static str>) {
    use axum::http::StatusCode;
    let outcome: Callback = match (query.get("code"), query.get("state"), query.get("error")) {
        (_, _, Some(error)) => Err(format!(
            "Pinterest answered {error:?}{}; nothing was stored",
            query
                .get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
        (Some(_), Some(state), None) if *state != loopback.state => Err(
            "the browser came back with a state this sign-in did not send (another sign-in, or a forged link); nothing was stored: run `pinrelay pinterest login` again".to_owned(),
        ),
        (Some(code), Some(_), None) => Ok(code.clone()),
        // Not Pinterest's redirect (someone opened the address by hand): keep waiting.
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Html("<!doctype html><title>pinrelay</title><p>This address waits for Pinterest's redirect: open the sign-in address the terminal printed.</p>"),
            );
        }
    };
    let page = match &outcome {
        Ok(_) => (
            StatusCode::OK,
            Html(
                "<!doctype html><title>pinrelay</title><p>Signed in to Pinterest. You can close this tab and return to the terminal.</p>",
            ),
        ),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            Html(
                "<!doctype html><title>pinrelay</title><p>The sign-in was refused; see the terminal.</p>",
            ),
        ),
    };
    if let Some(reply) = loopback.reply.lock().ok().and_then(|mut r| r.take()) {
        let _ = reply.send(outcome);
    }
    page
}

/// `pinrelay pinterest login`.
async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let shop = domain(&args.shop)?;
    let grants = Grants::open(&args.relay).await?;
    let app = app_credentials()?;
    let client = OAuthClient::new(&args.endpoints.pinterest_api_url, Duration::from_secs(30))?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for the redirect; free the port or pick another with --port (and register its redirect URI in the Pinterest app)",
                args.port
            )
        })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://localhost:{port}/");
    let state = random_state()?;
    let (reply, answer) = oneshot::channel();
    let loopback = Arc::new(Loopback {
        state: state.clone(),
        reply: Mutex::new(Some(reply)),
    });
    let app_router = axum::Router::new()
        .route("/", axum::routing::get(callback))
        .with_state(loopback);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app_router).await;
    });

    let url = oauth::authorize_url(
        &args.pinterest_oauth_url,
        &app.app_id,
        &redirect_uri,
        &state,
    )
    .context("the authorize page's address is not a URL")?;
    eprintln!(
        "The Pinterest app must list this redirect URI (developers.pinterest.com, My apps, the app, Configure): {redirect_uri}"
    );
    eprintln!(
        "Open this address in a browser, sign in as the ad account's owner or admin, and allow access:"
    );
    eprintln!("{url}");
    eprintln!(
        "Waiting for the browser (up to {} s)...",
        args.timeout_seconds
    );

    let came_back = tokio::time::timeout(Duration::from_secs(args.timeout_seconds), answer).await;
    server.abort();
    let code = match came_back {
        Err(_) => anyhow::bail!(
            "the browser did not come back within {} s; nothing was stored (is {redirect_uri} registered in the Pinterest app?)",
            args.timeout_seconds
        ),
        Ok(Err(_)) => anyhow::bail!("the loopback listener stopped; nothing was stored"),
        Ok(Ok(Err(message))) => anyhow::bail!(message),
        Ok(Ok(Ok(code))) => code,
    };

    let tokens = client
        .exchange_code(&app, &code, &redirect_uri)
        .await
        .context("exchanging the code")?;
    let accounts = client
        .ad_accounts(&tokens.access_token)
        .await
        .context("listing the ad accounts")?;
    let ad_account = pick_ad_account(&accounts, args.ad_account.as_deref())?;
    let now = Utc::now();
    let grant = Grant::from_code_exchange(app, tokens, ad_account.clone(), now)?;
    grants.save(&shop, &grant).await?;
    println!(
        "signed in {shop} to Pinterest: ad account {ad_account}, scopes {}; the refresh token lasts {} days and is renewed by the refresher ({}).",
        grant.scopes.join(","),
        refresh_token_days_left(&grant, now),
        match grants {
            Grants::Local(_) => "pinrelay serve, hourly",
            Grants::Aws(_) => "the stack's hourly watch",
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The ad account: `--ad-account` (which the user must reach), the only one, or the merchant's
/// pick on a terminal.
fn pick_ad_account(accounts: &[AdAccount], given: Option<&str>) -> anyhow::Result<String> {
    let listing = || {
        accounts
            .iter()
            .map(|a| format!("{} ({})", a.id, a.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(id) = given {
        anyhow::ensure!(
            accounts.iter().any(|a| a.id == id),
            "the signed-in Pinterest user cannot reach ad account {id}; it reaches: {}",
            listing()
        );
        return Ok(id.to_owned());
    }
    match accounts {
        [] => anyhow::bail!(
            "the signed-in Pinterest user reaches no ad account; sign in as the ad account's owner or admin"
        ),
        [only] => Ok(only.id.clone()),
        _ if std::io::stdin().is_terminal() => {
            for (i, a) in accounts.iter().enumerate() {
                eprintln!("  {}. {} ({})", i + 1, a.id, a.name);
            }
            let term = console::Term::stderr();
            term.write_str("The store's ad account (number): ")?;
            let pick: usize = term
                .read_line()?
                .trim()
                .parse()
                .context("not a number from the list")?;
            accounts
                .get(pick.wrapping_sub(1))
                .map(|a| a.id.clone())
                .context("not a number from the list")
        }
        _ => anyhow::bail!(
            "the signed-in Pinterest user reaches several ad accounts; pick one with --ad-account: {}",
            listing()
        ),
    }
}

/// `pinrelay pinterest refresh`.
async fn refresh(args: RefreshArgs) -> anyhow::Result<ExitCode> {
    let shop = domain(&args.shop)?;
    let grants = Grants::open(&args.relay).await?;
    let client = OAuthClient::new(&args.endpoints.pinterest_api_url, Duration::from_secs(30))?;
    match grants.refresh(&client, &shop, true).await? {
        RefreshOutcome::Refreshed {
            access_token_expires_at,
            refresh_token_days_left,
        } => {
            println!(
                "renewed the Pinterest sign-in of {shop}: access token until {access_token_expires_at}, refresh token {refresh_token_days_left} days"
            );
            Ok(ExitCode::SUCCESS)
        }
        RefreshOutcome::NotDue { .. } => Ok(ExitCode::SUCCESS),
        RefreshOutcome::Busy => {
            println!(
                "another refresher is renewing the Pinterest sign-in of {shop} right now; nothing to do"
            );
            Ok(ExitCode::SUCCESS)
        }
        RefreshOutcome::NotSignedIn => {
            eprintln!(
                "error: {shop} has not signed in to Pinterest; run `pinrelay pinterest login --shop {shop}`"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
