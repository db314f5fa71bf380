//! The audience job as the stack runs it (the watch function invoked with `{"job":
//! "audiences"}` every 15 minutes): [`job::run_stores`] on moto, with the DynamoDB ledger, the
//! shop registry and the Pinterest sign-ins of [`AwsGrantStore`], against the fake Admin API and
//! the fake Pinterest. Which stores keep lists, when each is due, what a store without a token
//! gets told, and that a run cut off by its deadline leaves the next run free to resume.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pinrelay::audiences::dynamodb::DynamoDbAudienceStore;
use pinrelay::audiences::job::{
    self, DefaultStore, Endpoints, Fallback, JobError, JobSettings, MissingCredential, Run,
};
use pinrelay::audiences::{AudienceStore as _, Customer, CustomerSource, ListKind};
use pinrelay::config::keys;
use pinrelay::dynamodb::Table;
use pinrelay::pinterest::oauth::aws::AwsGrantStore;
use pinrelay::pinterest::oauth::{AppCredentials, Grant, save_signed_in};
use pinrelay::registry::Registry as _;
use pinrelay::registry::aws::AwsRegistry;
use pinrelay::shopify::admin::{AdminApi, AdminCredentials, AdminError};
use secrecy::SecretString;
use serde_json::json;

use crate::audiences::{hashes, store_customers};
use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::fake_shopify::{ADMIN_TOKEN, FakeShopify};
use crate::helpers::TestEnv;
use crate::registry::shop;

const PREFIX: &str = "pinrelay-audiences/shops/";
const DEFAULT: &str = "legacy.myshopify.com";

struct Stack {
    env: TestEnv,
    shopify: FakeShopify,
    pinterest: FakePinterest,
    registry: AwsRegistry,
    grants: AwsGrantStore,
    ledger: DynamoDbAudienceStore,
    endpoints: Endpoints,
}

impl Stack {
    /// The default store keeps `customers` (the stack's `AudienceLists`) and signed in to
    /// Pinterest; `alpha` keeps both lists with its own API token; `beta` keeps none; `gamma`
    /// inherits `customers` but has no Pinterest token.
    async fn start() -> Self {
        let env = TestEnv::start().await;
        let shopify = FakeShopify::start().await;
        let pinterest = FakePinterest::start().await;
        shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(10)));
        let client = crate::idempotency::serialized_dynamodb(&env).await;
        let table = Table::new(client, &env.table);
        let registry = AwsRegistry::new(table.clone(), env.secrets.clone(), PREFIX);
        let grants = AwsGrantStore::new(table.clone(), env.secrets.clone(), PREFIX);
        // Domain, its own settings, its registered Pinterest API token.
        type Store<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
        let stores: [Store; 3] = [
            (
                "alpha.myshopify.com",
                &[(keys::AUDIENCE_LISTS, "customers,purchasers")],
                Some(ACCESS_TOKEN),
            ),
            (
                "beta.myshopify.com",
                &[(keys::AUDIENCE_LISTS, "none")],
                None,
            ),
            ("gamma.myshopify.com", &[], None),
        ];
        for (domain, settings, api_token) in stores {
            let mut s = shop(domain, AD_ACCOUNT_ID, "secret", "conversion-token");
            s.entry.settings = settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>();
            s.secrets.shopify_admin_token = Some(ADMIN_TOKEN.to_owned());
            s.secrets.pinterest_api_token = api_token.map(str::to_owned);
            registry.register(&s).await.unwrap();
        }
        let now = Utc::now();
        let grant = Grant {
            app: AppCredentials {
                app_id: "1234".into(),
                app_secret: SecretString::from("app-secret"),
            },
            access_token: SecretString::from(ACCESS_TOKEN),
            access_token_issued_at: now,
            access_token_expires_at: now + chrono::Duration::days(30),
            refresh_token: SecretString::from("refresh"),
            refresh_token_expires_at: now + chrono::Duration::days(60),
            scopes: vec!["ads:read".into(), "ads:write".into()],
            ad_account_id: AD_ACCOUNT_ID.to_owned(),
        };
        save_signed_in(&grants, DEFAULT, &grant, 1).await.unwrap();
        Self {
            endpoints: Endpoints {
                api_version: "2026-07".to_owned(),
                admin_api_url: Some(shopify.base_url()),
                pinterest_api_url: pinterest.base_url(),
            },
            env,
            shopify,
            pinterest,
            registry,
            grants,
            ledger: DynamoDbAudienceStore::new(table),
        }
    }

    async fn run(
        &self,
        now: DateTime<Utc>,
        deadline: tokio::time::Instant,
    ) -> BTreeMap<String, Result<Run, JobError>> {
        let var = |key: &'static str| (key == keys::AUDIENCE_LISTS).then(|| "customers".to_owned());
        let default = DefaultStore {
            shop: DEFAULT.to_owned(),
            fallback: Fallback {
                ad_account_id: None,
                api_token: None,
                admin: Some(AdminCredentials::Token(ADMIN_TOKEN.to_owned().into())),
            },
        };
        job::run_stores(
            &self.registry,
            &self.grants,
            &self.ledger,
            Some(default),
            &var,
            &self.endpoints,
            &settings(),
            now,
            deadline,
        )
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    fn list(&self, shop: &str, kind: ListKind) -> std::collections::BTreeSet<String> {
        let lists = self.pinterest.customer_lists();
        let named: Vec<_> = lists
            .iter()
            .filter(|l| l.name == kind.list_name(shop))
            .collect();
        assert_eq!(named.len(), 1, "one {kind} list of {shop}");
        named[0].records.clone()
    }

    fn writes(&self) -> usize {
        self.pinterest
            .list_requests()
            .iter()
            .filter(|r| r.method != "GET" && r.status == 200)
            .count()
    }
}

fn settings() -> JobSettings {
    JobSettings {
        every: chrono::Duration::hours(24),
        batch_size: 50,
        holder: "job-test".to_owned(),
    }
}

fn later() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(120)
}

#[tokio::test]
async fn each_store_that_keeps_lists_is_synced_once_a_day_and_a_store_without_a_token_is_told_how()
{
    let s = Stack::start().await;
    let now = Utc::now();
    let first = s.run(now, later()).await;

    assert_eq!(
        first.keys().map(String::as_str).collect::<Vec<_>>(),
        ["alpha.myshopify.com", "gamma.myshopify.com", DEFAULT],
        "beta keeps no list"
    );
    let Ok(Run::Synced(lists)) = &first[DEFAULT] else {
        panic!(
            "the default store is synced with its sign-in: {:?}",
            first[DEFAULT]
        );
    };
    assert_eq!((lists.len(), lists[0].added), (1, 170));
    let Ok(Run::Synced(lists)) = &first["alpha.myshopify.com"] else {
        panic!("alpha is synced: {:?}", first["alpha.myshopify.com"]);
    };
    assert_eq!(
        lists.iter().map(|l| (l.kind, l.added)).collect::<Vec<_>>(),
        [(ListKind::Customers, 170), (ListKind::Purchasers, 85)]
    );
    match &first["gamma.myshopify.com"] {
        Err(JobError::Missing(MissingCredential::PinterestToken { shop })) => {
            assert_eq!(shop, "gamma.myshopify.com");
            let message = first["gamma.myshopify.com"]
                .as_ref()
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("pinrelay pinterest login --shop gamma.myshopify.com"),
                "{message}"
            );
        }
        other => panic!("gamma has no token: {other:?}"),
    }
    assert_eq!(s.list(DEFAULT, ListKind::Customers), hashes(1..=170));
    assert_eq!(
        s.list("alpha.myshopify.com", ListKind::Customers),
        hashes(1..=170)
    );
    assert_eq!(
        s.list("alpha.myshopify.com", ListKind::Purchasers),
        hashes((1..=170).filter(|i| i % 2 == 1))
    );
    assert_eq!(s.pinterest.customer_lists().len(), 3);

    // An hour later nothing is due: no request reaches Pinterest.
    let writes = s.writes();
    let second = s.run(now + chrono::Duration::hours(1), later()).await;
    // Due a day after the last sync (kept to the millisecond).
    assert!(
        matches!(second[DEFAULT], Ok(Run::NotDue { next, pending: None })
            if (next - now - chrono::Duration::hours(24)).num_milliseconds().abs() <= 1),
        "{:?}",
        second[DEFAULT]
    );
    assert!(matches!(
        second["alpha.myshopify.com"],
        Ok(Run::NotDue { .. })
    ));
    assert_eq!(s.writes(), writes);

    // Between syncs a consent webhook (customers_email_marketing_consent/update) queued a
    // re-check of customer 7, who unsubscribed: the next run sends that removal alone, reading
    // only that customer.
    s.shopify.update_customer(7, |c| {
        c.marketing_state = "UNSUBSCRIBED".into();
        c.updated_at = now + chrono::Duration::minutes(90);
    });
    s.ledger
        .queue_recheck(DEFAULT, 7, now + chrono::Duration::minutes(90))
        .await
        .unwrap();
    let light = s.run(now + chrono::Duration::hours(2), later()).await;
    match &light[DEFAULT] {
        Ok(Run::NotDue {
            pending: Some(lists),
            ..
        }) => assert_eq!((lists[0].added, lists[0].removed), (0, 1)),
        other => panic!("the light pass runs: {other:?}"),
    }
    assert!(matches!(
        light["alpha.myshopify.com"],
        Ok(Run::NotDue { pending: None, .. })
    ));
    assert_eq!(s.writes(), writes + 1, "one REMOVE");
    assert_eq!(
        s.list(DEFAULT, ListKind::Customers),
        hashes((1..=170).filter(|&i| i != 7))
    );
    assert!(s.ledger.rechecks(DEFAULT).await.unwrap().is_empty());

    // A day later the unsubscription of customer 3 reaches both stores' lists (and alpha, which
    // shares the fake store's customers but got no webhook, sees customer 7's too).
    s.shopify.update_customer(3, |c| {
        c.marketing_state = "UNSUBSCRIBED".into();
        c.updated_at = now + chrono::Duration::hours(2);
    });
    let third = s.run(now + chrono::Duration::hours(25), later()).await;
    for (shop, removed) in [(DEFAULT, 1), ("alpha.myshopify.com", 2)] {
        let Ok(Run::Synced(lists)) = &third[shop] else {
            panic!("{shop} is due again: {:?}", third[shop]);
        };
        assert_eq!((lists[0].added, lists[0].removed), (0, removed), "{shop}");
    }
    assert_eq!(
        s.list(DEFAULT, ListKind::Customers),
        hashes((1..=170).filter(|&i| i != 3 && i != 7))
    );

    // A run whose time is up starts no store: each continues in the next run.
    let late = s
        .run(
            now + chrono::Duration::hours(50),
            tokio::time::Instant::now(),
        )
        .await;
    assert!(matches!(late[DEFAULT], Ok(Run::OutOfTime)));
    assert!(matches!(late["alpha.myshopify.com"], Ok(Run::OutOfTime)));
}

/// A customer source that takes longer than the job's deadline.
struct Slow<'a>(&'a AdminApi);

impl CustomerSource for Slow<'_> {
    async fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        _deadline: Option<tokio::time::Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Customer>, AdminError> {
        // Deaf to the deadline: the job's own timeout has to cut it.
        tokio::time::sleep(Duration::from_secs(10)).await;
        CustomerSource::customers(self.0, since, now, None, progress).await
    }

    async fn customers_by_id(
        &self,
        ids: &[pinrelay::audiences::CustomerId],
    ) -> Result<Vec<Customer>, AdminError> {
        CustomerSource::customers_by_id(self.0, ids).await
    }
}

#[tokio::test]
async fn a_sync_cut_off_by_the_deadline_gives_its_lease_back_and_the_next_run_completes_it() {
    let s = Stack::start().await;
    let admin = AdminApi::new(
        DEFAULT,
        AdminCredentials::Token(ADMIN_TOKEN.to_owned().into()),
        "2026-07",
        Some(&s.shopify.base_url()),
    )
    .unwrap();
    let credentials = job::Credentials {
        ad_account_id: AD_ACCOUNT_ID.to_owned(),
        token: SecretString::from(ACCESS_TOKEN),
        admin: AdminCredentials::Token(ADMIN_TOKEN.to_owned().into()),
        from_sign_in: false,
    };
    let (_, api) = s.endpoints.clients(DEFAULT, credentials).unwrap();
    let kinds = [ListKind::Customers];
    let now = Utc::now();

    // `pinrelay audiences sync` runs by hand and holds the list: the job waits its turn, which
    // is no failure (AudienceSyncFailures does not count it).
    let ttl = Duration::from_secs(900);
    s.ledger
        .acquire(DEFAULT, ListKind::Customers, "a-terminal", now, ttl)
        .await
        .unwrap();
    let busy = job::run_store(
        DEFAULT,
        &kinds,
        &admin,
        &api,
        &s.ledger,
        &settings(),
        now,
        later(),
    )
    .await
    .unwrap();
    assert!(
        matches!(&busy, Run::Busy { holder, .. } if holder == "a-terminal"),
        "{busy:?}"
    );
    s.ledger
        .release(DEFAULT, ListKind::Customers, "a-terminal")
        .await
        .unwrap();

    let cut = job::run_store(
        DEFAULT,
        &kinds,
        &Slow(&admin),
        &api,
        &s.ledger,
        &settings(),
        now,
        tokio::time::Instant::now() + Duration::from_millis(1500),
    )
    .await
    .unwrap();
    assert!(matches!(cut, Run::OutOfTime), "{cut:?}");
    assert!(s.pinterest.customer_lists().is_empty());
    let state = s.ledger.state(DEFAULT, ListKind::Customers).await.unwrap();
    assert_eq!(state.last_sync, None, "still due");

    // The next run (another holder: the next invocation) is not kept out by a lease.
    let next = JobSettings {
        holder: "next-invocation".to_owned(),
        ..settings()
    };
    let done = job::run_store(
        DEFAULT,
        &kinds,
        &admin,
        &api,
        &s.ledger,
        &next,
        now + chrono::Duration::minutes(15),
        later(),
    )
    .await
    .unwrap();
    let Run::Synced(lists) = done else {
        panic!("the next run completes: {done:?}");
    };
    assert_eq!(lists[0].added, 170);
    assert_eq!(s.list(DEFAULT, ListKind::Customers), hashes(1..=170));
}

#[tokio::test]
async fn serve_runs_the_job_at_start_for_a_store_that_keeps_a_list() {
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(3)));
    let dir = tempfile::tempdir().unwrap();
    let admin_url = shopify.base_url();
    let relay = crate::relay::Relay::start(
        &dir.path().join("relay"),
        dir.path().join("serve.log"),
        "job-secret",
        &pinterest,
        &[
            ("AUDIENCE_LISTS", "customers"),
            ("SHOP_DOMAIN", crate::fake_shopify::SHOP_DOMAIN),
            ("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SHOPIFY_ADMIN_API_URL", &admin_url),
            ("PINTEREST_API_TOKEN", ACCESS_TOKEN),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pinterest
        .customer_lists()
        .first()
        .is_none_or(|l| l.records.len() < 170)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not sync the list:\n{}",
            relay.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pinterest.customer_lists()[0].records, hashes(1..=170));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !relay.log_tail().contains("audiences_synced") {
        assert!(std::time::Instant::now() < deadline, "{}", relay.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_lambda_runs_the_audience_job_when_its_schedule_invokes_it() {
    let s = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", s.env.endpoint.clone()),
        ("AWS_REGION", crate::helpers::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("SHOPIFY_SHOP_DOMAINS", DEFAULT.to_owned()),
        (
            "WEBHOOK_URL",
            "https://relay.example/webhooks/shopify".to_owned(),
        ),
        ("IDEMPOTENCY_TABLE", s.env.table.clone()),
        ("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("SHOPIFY_ADMIN_API_URL", s.shopify.base_url()),
        ("SHOPIFY_API_VERSION", "2026-07".to_owned()),
        ("SHOP_SECRETS_PREFIX", PREFIX.to_owned()),
        ("PINTEREST_API_URL", s.pinterest.base_url()),
        ("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID.to_owned()),
        ("AUDIENCE_LISTS", "customers".to_owned()),
        ("AUDIENCE_SYNC_HOURS", "24".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut watch = crate::runtime_api::Function::start(
        "watch",
        "pinrelay-WatchFunction-emulated",
        &env,
        dir.path().join("watch.log"),
    )
    .await;

    // The AudienceSchedule's event: the default store (signed in) and alpha are synced, gamma
    // (no token) is reported with its fix; the invocation itself succeeds.
    let answer = watch
        .invoke(json!({"job": "audiences"}), Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", watch.log()));
    assert_eq!(answer[DEFAULT][0]["list"], "customers", "{answer}");
    assert_eq!(answer[DEFAULT][0]["added"], 170, "{answer}");
    assert_eq!(answer["alpha.myshopify.com"][1]["list"], "purchasers");
    assert_eq!(answer["alpha.myshopify.com"][1]["added"], 85);
    let gamma = answer["gamma.myshopify.com"]["error"].as_str().unwrap();
    assert!(gamma.contains("pinrelay pinterest login"), "{gamma}");
    assert!(answer.get("beta.myshopify.com").is_none(), "{answer}");
    assert_eq!(s.list(DEFAULT, ListKind::Customers), hashes(1..=170));
    // One failed store in the EMF metric the alarm watches; the failure's line names the store.
    let log = watch.log();
    let emf = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("AudienceSyncFailures").is_some())
        .unwrap_or_else(|| panic!("no AudienceSyncFailures metric:\n{log}"));
    assert_eq!(emf["AudienceSyncFailures"].as_f64(), Some(1.0));
    assert!(log.contains("audiences_failed") && log.contains("gamma.myshopify.com"));
    assert!(!log.contains("@example.com"), "no email in the log");

    // The next run, minutes later: nothing is due and nothing is sent.
    let writes = s.writes();
    let answer = watch
        .invoke(json!({"job": "audiences"}), Duration::from_secs(120))
        .await
        .unwrap();
    assert!(answer[DEFAULT]["next"].is_string(), "{answer}");
    assert_eq!(s.writes(), writes);
}

#[tokio::test]
async fn a_sign_in_renewed_during_a_run_is_read_again_after_pinterests_401() {
    use pinrelay::pinterest::audiences::{CustomerListsApi as _, PinterestAudiences};
    use pinrelay::pinterest::oauth::ApiToken;
    use pinrelay::pinterest::oauth::sqlite::SqliteGrantStore;

    let pinterest = FakePinterest::start().await;
    let dir = tempfile::tempdir().unwrap();
    let grants =
        SqliteGrantStore::new(pinrelay::sqlite::SqliteDatabase::open_in(dir.path()).unwrap());
    let grant = |token: &str| {
        let now = Utc::now();
        Grant {
            app: AppCredentials {
                app_id: "1234".into(),
                app_secret: SecretString::from("app-secret"),
            },
            access_token: SecretString::from(token.to_owned()),
            access_token_issued_at: now,
            access_token_expires_at: now + chrono::Duration::days(30),
            refresh_token: SecretString::from("refresh"),
            refresh_token_expires_at: now + chrono::Duration::days(60),
            scopes: vec!["ads:write".into()],
            ad_account_id: AD_ACCOUNT_ID.to_owned(),
        }
    };
    pinterest.accept_token("access-before-renewal");
    save_signed_in(&grants, DEFAULT, &grant("access-before-renewal"), 1)
        .await
        .unwrap();
    let api = PinterestAudiences::with_tokens(
        &pinterest.base_url(),
        AD_ACCOUNT_ID,
        job::ListsToken::SignIn(ApiToken::new(grants.clone(), DEFAULT)),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(api.find_list("none yet").await.unwrap(), None);

    // The refresher renews the sign-in and Pinterest stops taking the old token: the next
    // request is answered 401, the token read again, and the request goes through.
    save_signed_in(&grants, DEFAULT, &grant(ACCESS_TOKEN), 1)
        .await
        .unwrap();
    pinterest.refuse_token("access-before-renewal");
    assert_eq!(api.find_list("none yet").await.unwrap(), None);
    let statuses: Vec<u16> = pinterest.list_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200]);

    // A token given once has nothing newer to read: the 401 stands.
    let given = PinterestAudiences::with_token(
        &pinterest.base_url(),
        AD_ACCOUNT_ID,
        SecretString::from("access-before-renewal"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(given.find_list("none yet").await.is_err());
}
