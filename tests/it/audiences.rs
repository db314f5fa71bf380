//! Customer-list audiences (issue 24) against the fake Admin API and the fake Pinterest: the
//! library's sync driver with the SQLite ledger, and `pinrelay audiences sync` end to end.
//! No moto: the ledger is the relay database of a temporary data directory.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pinrelay::audiences::sqlite::SqliteAudienceStore;
use pinrelay::audiences::{
    AudienceStore as _, Customer, CustomerId, CustomerSource, ListKind, ListSummary,
    MarketingState, Mode, Settings, SyncError, record_hash, sync, sync_pending,
};
use pinrelay::pinterest::audiences::{Backoff, PinterestAudiences, StaticToken};
use pinrelay::pinterest::{PinterestHttp, PinterestHttpConfig};
use pinrelay::shopify::admin::{AdminApi, AdminCredentials, AdminError, BulkPolling};
use pinrelay::sqlite::SqliteDatabase;

use crate::fake_pinterest::{ACCESS_TOKEN, AD_ACCOUNT_ID, FakePinterest};
use crate::fake_shopify::{ADMIN_TOKEN, FakeCustomer, FakeShopify, SHOP_DOMAIN};
use crate::subscribe::pinrelay_bin;

/// The batch size of these tests: small, so 170 records take several requests.
const BATCH: usize = 50;

/// Short waits between a bulk export's status polls.
const BULK_POLLING: BulkPolling = BulkPolling {
    first: Duration::from_millis(5),
    max: Duration::from_millis(20),
};

/// 250 customers: 1–170 subscribed (odd ids have ordered), 171–190 subscribed but opted out of
/// data sale, 191–210 pending, 211–230 unsubscribed, 231–240 not subscribed, 241–250 redacted.
pub(crate) fn store_customers(t0: DateTime<Utc>) -> Vec<FakeCustomer> {
    (1..=250u64)
        .map(|id| {
            let mut c = FakeCustomer::subscribed(id, t0 + chrono::Duration::seconds(id as i64));
            c.number_of_orders = id % 2;
            match id {
                1..=170 => {}
                171..=190 => c.data_sale_opt_out = true,
                191..=210 => c.marketing_state = "PENDING".into(),
                211..=230 => c.marketing_state = "UNSUBSCRIBED".into(),
                231..=240 => c.marketing_state = "NOT_SUBSCRIBED".into(),
                _ => c.marketing_state = "REDACTED".into(),
            }
            c
        })
        .collect()
}

fn hash(id: u64) -> String {
    record_hash(&format!("customer{id}@example.com")).unwrap()
}

pub(crate) fn hashes(ids: impl IntoIterator<Item = u64>) -> BTreeSet<String> {
    ids.into_iter().map(hash).collect()
}

struct Fixture {
    shopify: FakeShopify,
    pinterest: FakePinterest,
    _dir: tempfile::TempDir,
    ledger: SqliteAudienceStore,
    admin: AdminApi,
    api: PinterestAudiences<StaticToken>,
    t0: DateTime<Utc>,
}

impl Fixture {
    async fn start() -> Self {
        let shopify = FakeShopify::start().await;
        let pinterest = FakePinterest::start().await;
        let t0 = Utc::now() - chrono::Duration::days(10);
        shopify.add_customers(store_customers(t0));
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteAudienceStore::new(SqliteDatabase::open_in(dir.path()).unwrap());
        let admin = AdminApi::new(
            SHOP_DOMAIN,
            AdminCredentials::Token(ADMIN_TOKEN.to_owned().into()),
            "2026-07",
            Some(&shopify.base_url()),
        )
        .unwrap()
        .with_bulk_polling(BULK_POLLING);
        // Full reads are bulk exports that answer RUNNING twice before they complete.
        shopify.set_bulk_polls(2);
        let http = PinterestHttp::new(PinterestHttpConfig {
            base_url: pinterest.base_url(),
            ad_account_id: AD_ACCOUNT_ID.to_owned(),
            access_token: "not-the-conversion-token".to_owned().into(),
            test_mode: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        })
        .unwrap();
        let api = PinterestAudiences::new(http, StaticToken(ACCESS_TOKEN.to_owned().into()))
            .with_backoff(Backoff {
                max_attempts: 3,
                first: Duration::from_millis(1),
                max: Duration::from_millis(5),
            });
        Self {
            shopify,
            pinterest,
            _dir: dir,
            ledger,
            admin,
            api,
            t0,
        }
    }

    fn settings(&self, kinds: &[ListKind]) -> Settings {
        Settings {
            kinds: kinds.to_vec(),
            batch_size: BATCH,
            ..Settings::default()
        }
    }

    async fn sync_at(
        &self,
        now: DateTime<Utc>,
        mode: Mode,
        kinds: &[ListKind],
    ) -> Result<Vec<ListSummary>, SyncError> {
        self.sync_with(now, mode, &self.settings(kinds)).await
    }

    async fn sync_with(
        &self,
        now: DateTime<Utc>,
        mode: Mode,
        settings: &Settings,
    ) -> Result<Vec<ListSummary>, SyncError> {
        sync(
            SHOP_DOMAIN,
            &self.admin,
            &self.api,
            &self.ledger,
            settings,
            mode,
            now,
            &mut |_| {},
        )
        .await
    }

    /// The light pass on the customers list.
    async fn sync_pending(&self, now: DateTime<Utc>) -> ListSummary {
        sync_pending(
            SHOP_DOMAIN,
            &self.admin,
            &self.api,
            &self.ledger,
            &self.settings(&[ListKind::Customers]),
            Mode::Live,
            now,
            &mut |_| {},
        )
        .await
        .unwrap()
        .remove(0)
    }

    async fn sync(&self, now: DateTime<Utc>) -> ListSummary {
        let mut summaries = self
            .sync_at(now, Mode::Live, &[ListKind::Customers])
            .await
            .unwrap();
        summaries.remove(0)
    }

    fn only_list(&self) -> BTreeSet<String> {
        let lists = self.pinterest.customer_lists();
        assert_eq!(lists.len(), 1, "one list per store and kind");
        lists[0].records.clone()
    }

    /// The list writes (creations and updates) accepted since the last clear.
    fn writes(&self) -> Vec<(String, usize)> {
        self.pinterest
            .list_requests()
            .into_iter()
            .filter(|r| {
                r.method != "GET" && r.path.starts_with("customer_lists") && r.status == 200
            })
            .map(|r| (r.operation.unwrap_or_default(), r.records))
            .collect()
    }

    fn change(&self, id: u64, at: DateTime<Utc>, f: impl FnOnce(&mut FakeCustomer)) {
        assert!(self.shopify.update_customer(id, |c| {
            f(c);
            c.updated_at = at;
        }));
    }
}

#[tokio::test]
async fn a_first_sync_uploads_exactly_the_consenting_customers_and_a_second_sends_nothing() {
    let f = Fixture::start().await;
    let now = Utc::now();

    let first = f.sync(now).await;

    assert_eq!(f.only_list(), hashes(1..=170));
    assert_eq!((first.added, first.removed, first.requests), (170, 0, 4));
    assert_eq!(
        f.shopify.bulk_runs(),
        1,
        "the first (full) read is a bulk export"
    );
    assert!(f.shopify.customer_queries().is_empty(), "no paged read");
    let writes = f.writes();
    assert_eq!(
        writes,
        [
            ("CREATE".to_owned(), 50),
            ("ADD".to_owned(), 50),
            ("ADD".to_owned(), 50),
            ("ADD".to_owned(), 20)
        ]
    );
    let audiences = f.pinterest.audiences();
    assert_eq!(audiences.len(), 1);
    assert_eq!(Some(&audiences[0].customer_list_id), first.list_id.as_ref());
    assert_eq!(first.audience_id.as_ref(), Some(&audiences[0].id));
    assert_eq!(first.status.as_deref(), Some("READY"));
    assert_eq!(
        f.pinterest.customer_lists()[0].name,
        format!("pinrelay – {SHOP_DOMAIN} – customers")
    );

    f.pinterest.clear_list_requests();
    let second = f.sync(now + chrono::Duration::hours(24)).await;

    assert!(f.writes().is_empty(), "the second run sends nothing");
    assert_eq!((second.added, second.removed), (0, 0));
    assert_eq!(second.unchanged, 170);
    assert_eq!(
        f.pinterest.audiences().len(),
        1,
        "the audience is created once"
    );
    assert_eq!(f.shopify.bulk_runs(), 1, "an incremental read is no export");
    let last_query = f.shopify.customer_queries().pop().unwrap();
    assert!(
        last_query["query"]
            .as_str()
            .unwrap()
            .starts_with("updated_at:>='"),
        "the second run reads what changed: {last_query}"
    );
}

#[tokio::test]
async fn unsubscriptions_and_redactions_are_removed_exactly() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    let later = now + chrono::Duration::hours(1);
    for id in 1..=5 {
        f.change(id, later, |c| c.marketing_state = "UNSUBSCRIBED".into());
    }
    for id in [6, 7] {
        // customers/redact: the relay's handler removes them; Shopify no longer lists them.
        let removals = f.ledger.remove_customer(SHOP_DOMAIN, id).await.unwrap();
        assert_eq!(removals.len(), 1);
        assert_eq!(removals[0].hash, hash(id));
        assert!(f.shopify.delete_customer(id));
    }
    f.pinterest.clear_list_requests();

    let run = f.sync(later + chrono::Duration::minutes(1)).await;

    assert_eq!((run.added, run.removed), (0, 7));
    assert_eq!(f.writes(), [("REMOVE".to_owned(), 7)]);
    assert_eq!(f.only_list(), hashes(8..=170));
    assert!(
        f.ledger
            .pending_removals(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_deletion_no_webhook_reported_is_removed_by_the_weekly_full_comparison() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    assert!(f.shopify.delete_customer(3));

    let daily = f.sync(now + chrono::Duration::days(1)).await;
    assert_eq!(daily.removed, 0, "an incremental run cannot see a deletion");

    let weekly = f.sync(now + chrono::Duration::days(7)).await;
    assert_eq!((weekly.added, weekly.removed), (0, 1));
    assert_eq!(f.only_list(), hashes((1..=170).filter(|&i| i != 3)));
}

#[tokio::test]
async fn an_email_change_removes_the_old_hash_and_adds_the_new() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    f.change(10, now + chrono::Duration::minutes(5), |c| {
        c.email = Some("  New.Address@Example.com ".into());
    });

    let run = f.sync(now + chrono::Duration::minutes(10)).await;

    assert_eq!((run.added, run.removed), (1, 1));
    let list = f.only_list();
    assert!(!list.contains(&hash(10)));
    assert!(list.contains(&record_hash("new.address@example.com").unwrap()));
    assert_eq!(list.len(), 170);
}

#[tokio::test]
async fn a_run_stopped_half_way_resumes_to_the_same_membership_and_loses_no_removal() {
    let f = Fixture::start().await;
    let now = Utc::now();

    f.pinterest.fail_list_writes_after(2);
    let stopped = f
        .sync_at(now, Mode::Live, &[ListKind::Customers])
        .await
        .unwrap_err();
    assert!(
        matches!(stopped, SyncError::Pinterest { requests: 2, .. }),
        "{stopped:?}"
    );
    assert_eq!(
        f.ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .len(),
        100
    );
    f.pinterest.heal_lists();
    let resumed = f.sync(now + chrono::Duration::minutes(1)).await;
    assert_eq!(
        resumed.added, 70,
        "only what was not accepted is sent again"
    );
    assert_eq!(f.only_list(), hashes(1..=170));

    // 60 unsubscribe: two REMOVE requests; the run stops after the first.
    let later = now + chrono::Duration::hours(1);
    for id in 1..=60 {
        f.change(id, later, |c| c.marketing_state = "UNSUBSCRIBED".into());
    }
    f.pinterest.fail_list_writes_after(1);
    assert!(
        f.sync_at(
            later + chrono::Duration::minutes(1),
            Mode::Live,
            &[ListKind::Customers]
        )
        .await
        .is_err()
    );
    f.pinterest.heal_lists();
    let resumed = f.sync(later + chrono::Duration::minutes(2)).await;
    assert_eq!(resumed.removed, 10);
    assert_eq!(f.only_list(), hashes(61..=170));
    assert_eq!(f.pinterest.customer_lists().len(), 1);
    assert_eq!(f.pinterest.audiences().len(), 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let f = Fixture::start().await;
    f.pinterest.rate_limit_lists(2);

    let run = f.sync(Utc::now()).await;

    assert_eq!(run.added, 170);
    assert_eq!(f.only_list(), hashes(1..=170));
    let limited = f
        .pinterest
        .list_requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(limited, 2);
}

#[tokio::test]
async fn a_dry_run_plans_and_changes_nothing() {
    let f = Fixture::start().await;

    let summaries = f
        .sync_at(
            Utc::now(),
            Mode::DryRun,
            &[ListKind::Customers, ListKind::Purchasers],
        )
        .await
        .unwrap();

    assert_eq!((summaries[0].added, summaries[0].requests), (170, 4));
    assert_eq!(summaries[1].added, 85);
    assert!(f.pinterest.list_requests().is_empty());
    for kind in ListKind::ALL {
        assert!(
            f.ledger
                .members(SHOP_DOMAIN, kind)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            f.ledger.state(SHOP_DOMAIN, kind).await.unwrap(),
            Default::default()
        );
    }
}

#[tokio::test]
async fn the_purchasers_list_holds_the_consenting_customers_who_ordered() {
    let f = Fixture::start().await;

    let summaries = f
        .sync_at(
            Utc::now(),
            Mode::Live,
            &[ListKind::Customers, ListKind::Purchasers],
        )
        .await
        .unwrap();

    assert_eq!(summaries.len(), 2);
    let lists = f.pinterest.customer_lists();
    assert_eq!(lists.len(), 2);
    let purchasers = lists
        .iter()
        .find(|l| l.name.ends_with("purchasers"))
        .unwrap();
    assert_eq!(purchasers.records, hashes((1..=170).filter(|i| i % 2 == 1)));
    assert_eq!(f.pinterest.audiences().len(), 2);
    let _ = f.t0;
}

/// Runs `pinrelay audiences sync` against the fakes; returns (exit code, stdout, stderr).
fn cli(
    dir: &Path,
    shopify: &FakeShopify,
    pinterest: &FakePinterest,
    extra: &[&str],
) -> (i32, String, String) {
    let out = Command::new(pinrelay_bin())
        .args(["audiences", "sync", "--shop", SHOP_DOMAIN, "--data-dir"])
        .arg(dir)
        .args([
            "--admin-url-base",
            &shopify.base_url(),
            "--batch-size",
            "50",
        ])
        .args(extra)
        .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PINTEREST_API_TOKEN", ACCESS_TOKEN)
        .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
        .env("PINTEREST_API_URL", pinterest.base_url())
        .env_remove("SHOPIFY_CLIENT_ID")
        .env_remove("AUDIENCE_BATCH_SIZE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_dry_runs_then_syncs_then_has_nothing_to_send() {
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(3)));
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(dir.path(), &shopify, &pinterest, &[]);
    assert_eq!(code, 1, "no relay database in the directory: {err}");
    assert!(err.contains("there is no relay database"), "{err}");
    drop(SqliteDatabase::open_in(dir.path()).unwrap());

    let (code, out, err) = cli(dir.path(), &shopify, &pinterest, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("would add 170, remove 0, 0 unchanged, in 4 request(s)"),
        "{out}"
    );
    assert!(pinterest.list_requests().is_empty());

    let (code, out, err) = cli(dir.path(), &shopify, &pinterest, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("customers list (list "), "{out}");
    assert!(
        out.contains("170 added, 0 removed, 0 unchanged, in 4 request(s)"),
        "{out}"
    );
    assert!(out.contains("status READY"), "{out}");
    assert!(!out.contains("@example.com") && !err.contains("@example.com"));
    assert_eq!(pinterest.customer_lists()[0].records, hashes(1..=170));

    let (code, out, err) = cli(dir.path(), &shopify, &pinterest, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0 added, 0 removed, 170 unchanged, in 0 request(s)"),
        "{out}"
    );
    assert_eq!(pinterest.customer_lists().len(), 1);
    assert_eq!(pinterest.audiences().len(), 1);

    // The reconcile report shows the list: what the relay uploaded beside Pinterest's status.
    let out = Command::new(pinrelay_bin())
        .args(["reconcile", "--shop", SHOP_DOMAIN, "--json", "--data-dir"])
        .arg(dir.path())
        .args(["--admin-url-base", &shopify.base_url()])
        .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PINTEREST_API_TOKEN", ACCESS_TOKEN)
        .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
        .env("PINTEREST_API_URL", pinterest.base_url())
        .env_remove("SHOPIFY_CLIENT_ID")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lists = report["customer_lists"].as_array().expect("customer_lists");
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(lists[0]["list"], "customers");
    assert_eq!(lists[0]["members"], 170);
    assert_eq!(lists[0]["pending_removals"], 0);
    assert_eq!(lists[0]["status"], "READY");
    assert_eq!(
        lists[0]["list_id"].as_str(),
        Some(pinterest.customer_lists()[0].id.as_str())
    );
}

#[tokio::test]
async fn a_list_held_by_another_writer_is_left_alone() {
    let f = Fixture::start().await;
    let now = Utc::now();
    let lease = f
        .ledger
        .acquire(
            SHOP_DOMAIN,
            ListKind::Customers,
            "other-run",
            now,
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(lease, pinrelay::audiences::Lease::Acquired);

    let err = f
        .sync_at(now, Mode::Live, &[ListKind::Customers])
        .await
        .unwrap_err();

    assert!(
        matches!(&err, SyncError::Busy { holder, .. } if holder == "other-run"),
        "{err:?}"
    );
    assert!(f.pinterest.list_requests().is_empty());
    assert!(f.shopify.customer_queries().is_empty(), "not even read");
}

#[tokio::test]
async fn a_rate_limit_that_lasts_ends_the_run_with_a_typed_error_and_it_resumes() {
    let f = Fixture::start().await;
    f.pinterest.rate_limit_lists(3);

    let err = f
        .sync_at(Utc::now(), Mode::Live, &[ListKind::Customers])
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            SyncError::Pinterest {
                requests: 0,
                source: pinrelay::pinterest::audiences::AudienceApiError::RateLimited {
                    attempts: 3
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(f.pinterest.customer_lists().is_empty());
    let run = f.sync(Utc::now()).await;
    assert_eq!(run.added, 170);
    assert_eq!(f.only_list(), hashes(1..=170));
}

#[tokio::test]
async fn dynamodb_ledger_passes_the_audience_store_contract() {
    let env = crate::helpers::TestEnv::start().await;
    let client = crate::idempotency::serialized_dynamodb(&env).await;
    let store = pinrelay::audiences::dynamodb::DynamoDbAudienceStore::new(
        pinrelay::dynamodb::Table::new(client, &env.table),
    );
    pinrelay::audiences::contract::run_all(&store).await;
}

#[tokio::test]
async fn a_sync_on_the_dynamodb_ledger_resumes_like_on_sqlite() {
    let env = crate::helpers::TestEnv::start().await;
    let client = crate::idempotency::serialized_dynamodb(&env).await;
    let ledger = pinrelay::audiences::dynamodb::DynamoDbAudienceStore::new(
        pinrelay::dynamodb::Table::new(client, &env.table),
    );
    let f = Fixture::start().await;
    let settings = f.settings(&[ListKind::Customers]);
    let now = Utc::now();
    let (fx, store, settings) = (&f, &ledger, &settings);
    let run = move |now| async move {
        sync(
            SHOP_DOMAIN,
            &fx.admin,
            &fx.api,
            store,
            settings,
            Mode::Live,
            now,
            &mut |_| {},
        )
        .await
    };

    f.pinterest.fail_list_writes_after(2);
    assert!(run(now).await.is_err());
    f.pinterest.heal_lists();
    assert_eq!(
        run(now + chrono::Duration::minutes(1)).await.unwrap()[0].added,
        70
    );
    assert_eq!(f.only_list(), hashes(1..=170));
    f.change(4, now + chrono::Duration::minutes(2), |c| {
        c.data_sale_opt_out = true
    });
    let removals = ledger.remove_customer(SHOP_DOMAIN, 9).await.unwrap();
    assert_eq!(removals.len(), 1);
    assert!(f.shopify.delete_customer(9));
    let third = run(now + chrono::Duration::minutes(3)).await.unwrap();
    assert_eq!((third[0].added, third[0].removed), (0, 2));
    assert_eq!(
        f.only_list(),
        hashes((1..=170).filter(|&i| i != 4 && i != 9))
    );
    assert_eq!(
        ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .len(),
        168
    );
}

#[tokio::test]
async fn a_removed_customer_still_in_the_read_is_not_added_back_by_the_run_that_removes_them() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    // customers/delete arrived, but this run's read (a full comparison) still lists them.
    f.ledger.remove_customer(SHOP_DOMAIN, 11).await.unwrap();
    f.pinterest.clear_list_requests();

    let run = f.sync(now + chrono::Duration::days(8)).await;

    assert_eq!((run.added, run.removed), (0, 1));
    assert_eq!(f.writes(), [("REMOVE".to_owned(), 1)]);
    assert!(!f.only_list().contains(&hash(11)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_keeps_its_record_in_a_stacks_table() {
    let env = crate::helpers::TestEnv::start().await;
    let stack = "pinrelay-audiences";
    let template = serde_json::json!({
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {}}},
        "Outputs": {
            "IdempotencyTableName": {"Value": env.table},
            "ShopSecretsPrefix": {"Value": format!("{stack}/shops/")},
        },
    });
    env.create_stack(stack, &template, &[]).await;
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(3)));
    let run = || {
        crate::helpers::pinrelay_on_moto(&env.endpoint)
            .args(["audiences", "sync", "--shop", SHOP_DOMAIN, "--stack", stack])
            .args([
                "--admin-url-base",
                &shopify.base_url(),
                "--batch-size",
                "50",
            ])
            .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PINTEREST_API_TOKEN", ACCESS_TOKEN)
            .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
            .env("PINTEREST_API_URL", pinterest.base_url())
            .env_remove("SHOPIFY_CLIENT_ID")
            .env_remove("AUDIENCE_BATCH_SIZE")
            .output()
            .unwrap()
    };

    let first = run();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("170 added, 0 removed"), "{out}");
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(
        out.contains("0 added, 0 removed, 170 unchanged, in 0 request(s)"),
        "{out}"
    );

    let ledger = pinrelay::audiences::dynamodb::DynamoDbAudienceStore::new(
        pinrelay::dynamodb::Table::new(aws_sdk_dynamodb::Client::new(&env.sdk_config), &env.table),
    );
    let members = ledger
        .members(SHOP_DOMAIN, ListKind::Customers)
        .await
        .unwrap();
    assert_eq!(
        members.values().cloned().collect::<BTreeSet<_>>(),
        hashes(1..=170)
    );
    assert_eq!(pinterest.customer_lists().len(), 1);
}

#[tokio::test]
async fn a_list_created_before_the_record_knew_it_is_used_not_created_again() {
    let f = Fixture::start().await;
    // A run created the list, then stopped before its id was recorded.
    for i in 0..3 {
        f.pinterest
            .add_customer_list(&format!("someone else's list {i}"));
    }
    let id = f
        .pinterest
        .add_customer_list(&format!("pinrelay – {SHOP_DOMAIN} – customers"));

    let run = f.sync(Utc::now()).await;

    assert_eq!(run.list_id.as_deref(), Some(id.as_str()));
    assert_eq!(run.added, 170);
    let lists = f.pinterest.customer_lists();
    assert_eq!(lists.len(), 4, "no second list");
    assert_eq!(lists[3].records, hashes(1..=170));
    assert!(f.writes().iter().all(|(op, _)| op == "ADD"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_uses_the_stores_pinterest_sign_in_when_no_token_is_set() {
    use pinrelay::pinterest::oauth::{self, sqlite::SqliteGrantStore};
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    pinterest.accept_token("signed-in-access-token");
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(3)));
    let dir = tempfile::tempdir().unwrap();
    // `pinrelay pinterest login` stored this grant: its token and its ad account.
    let db = SqliteDatabase::open_in(dir.path()).unwrap();
    let mut grant = oauth::store::contract::grant_at(Utc::now(), 30, 60);
    grant.access_token = "signed-in-access-token".to_owned().into();
    grant.ad_account_id = AD_ACCOUNT_ID.to_owned();
    oauth::save_signed_in(&SqliteGrantStore::new(db.clone()), SHOP_DOMAIN, &grant, 10)
        .await
        .unwrap();
    drop(db);

    let out = Command::new(pinrelay_bin())
        .args(["audiences", "sync", "--shop", SHOP_DOMAIN, "--data-dir"])
        .arg(dir.path())
        .args(["--admin-url-base", &shopify.base_url()])
        .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PINTEREST_API_URL", pinterest.base_url())
        .env_remove("PINTEREST_API_TOKEN")
        .env_remove("PINTEREST_AD_ACCOUNT_ID")
        .env_remove("SHOPIFY_CLIENT_ID")
        .env_remove("AUDIENCE_BATCH_SIZE")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("170 added"), "{stdout}");
    assert_eq!(pinterest.customer_lists()[0].records, hashes(1..=170));
    assert!(
        !stdout.contains("signed-in-access-token") && !stderr.contains("signed-in-access-token")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redact_and_delete_webhooks_take_the_customer_off_the_list_at_the_next_sync() {
    let shopify = FakeShopify::start().await;
    let pinterest = FakePinterest::start().await;
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(3)));
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    let relay = crate::relay::Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        "redact-secret",
        &pinterest,
        &[],
    );
    let (code, out, err) = cli(&data_dir, &shopify, &pinterest, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("170 added"), "{out}");

    // Shopify's customers/redact for customer 5 (still subscribed in the store's data).
    let body = serde_json::json!({
        "shop_id": 954_889,
        "shop_domain": SHOP_DOMAIN,
        "customer": {"id": 5, "email": "c5@example.com", "phone": null},
        "orders_to_redact": [],
    })
    .to_string()
    .into_bytes();
    let status = crate::relay::post_webhook(
        &relay.webhook_url(),
        "customers/redact",
        SHOP_DOMAIN,
        "redact-secret",
        "wh-redact-5",
        &body,
    )
    .await;
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(15)).await;

    // And customers/delete for customer 6 (Shopify's body: the id).
    let body = serde_json::json!({"id": 6, "phone": null, "addresses": []})
        .to_string()
        .into_bytes();
    let status = crate::relay::post_webhook(
        &relay.webhook_url(),
        "customers/delete",
        SHOP_DOMAIN,
        "redact-secret",
        "wh-delete-6",
        &body,
    )
    .await;
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(15)).await;

    // The next sync sends both removals, whatever the store's data still says.
    let (code, out, err) = cli(&data_dir, &shopify, &pinterest, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 added, 2 removed"), "{out}");
    let mut expected = hashes(1..=170);
    expected.remove(&hash(5));
    expected.remove(&hash(6));
    assert_eq!(pinterest.customer_lists()[0].records, expected);

    // doctor reports the list and its status on Pinterest.
    let out = Command::new(pinrelay_bin())
        .args(["doctor", "--shop", SHOP_DOMAIN, "--json", "--data-dir"])
        .arg(&data_dir)
        .args(["--admin-url-base", &shopify.base_url()])
        .env("SHOPIFY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PINTEREST_API_TOKEN", ACCESS_TOKEN)
        .env("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT_ID)
        .env("PINTEREST_API_URL", pinterest.base_url())
        .output()
        .unwrap();
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let lists = findings
        .iter()
        .find(|f| f["check"] == "customer_lists")
        .unwrap();
    assert_eq!(lists["status"], "ok", "{lists}");
    let detail = lists["detail"].as_str().unwrap();
    assert!(
        detail.contains("customers list") && detail.contains("READY"),
        "{detail}"
    );
    drop(relay);
}

/// Posts a consent webhook (`customers_email_marketing_consent/update`) to serve and waits until
/// the relay handled it.
async fn post_consent(relay: &crate::relay::Relay, webhook_id: &str, body: serde_json::Value) {
    let status = crate::relay::post_webhook(
        &relay.webhook_url(),
        "customers_email_marketing_consent/update",
        SHOP_DOMAIN,
        "consent-secret",
        webhook_id,
        &body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    relay.drained(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consent_withdrawal_through_serve_is_removed_by_the_light_pass() {
    let f = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    let relay = crate::relay::Relay::start(
        &data_dir,
        dir.path().join("serve.log"),
        "consent-secret",
        &f.pinterest,
        &[],
    );
    // The ledger serve's dispatch writes: the relay database of its data directory.
    let ledger = SqliteAudienceStore::new(SqliteDatabase::open_in(&data_dir).unwrap());
    let settings = f.settings(&[ListKind::Customers]);
    let now = Utc::now();
    let first = sync(
        SHOP_DOMAIN,
        &f.admin,
        &f.api,
        &ledger,
        &settings,
        Mode::Live,
        now,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(first[0].added, 170);

    // Customer 12 unsubscribes; Shopify sends the consent webhook (keys unconfirmed: the relay
    // reads only the id, and the consent again from the Admin API).
    f.change(12, now + chrono::Duration::minutes(1), |c| {
        c.marketing_state = "UNSUBSCRIBED".into()
    });
    post_consent(
        &relay,
        "wh-consent-12",
        serde_json::json!({
            "customer_id": 12,
            "email_address": "customer12@example.com",
            "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": null},
        }),
    )
    .await;
    // A body naming no customer is dead-lettered with its reason, quoting nothing of it.
    post_consent(
        &relay,
        "wh-consent-nobody",
        serde_json::json!({"email_address": "someone@example.com"}),
    )
    .await;
    let queue = pinrelay::queue::sqlite::SqliteQueue::open_in(&data_dir).unwrap();
    let letters = queue.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].reason.starts_with("no_customer_id: ")
            && !letters[0].reason.contains("someone@"),
        "{}",
        letters[0].reason
    );
    let queued = ledger.rechecks(SHOP_DOMAIN).await.unwrap();
    assert_eq!(
        queued.iter().map(|r| r.customer_id).collect::<Vec<_>>(),
        [12]
    );

    // The light pass, minutes later: exactly that hash leaves the list, and the store is not read.
    f.shopify.clear_requests();
    f.pinterest.clear_list_requests();
    let pass = sync_pending(
        SHOP_DOMAIN,
        &f.admin,
        &f.api,
        &ledger,
        &settings,
        Mode::Live,
        now + chrono::Duration::minutes(15),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!((pass[0].added, pass[0].removed), (0, 1));
    assert_eq!(f.writes(), [("REMOVE".to_owned(), 1)]);
    let mut expected = hashes(1..=170);
    expected.remove(&hash(12));
    assert_eq!(f.only_list(), expected);
    assert!(
        f.shopify.customer_queries().is_empty(),
        "no read of the whole store"
    );
    assert_eq!(f.shopify.customer_node_queries(), [vec![12]]);
    assert!(ledger.rechecks(SHOP_DOMAIN).await.unwrap().is_empty());
    assert!(
        !ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .contains_key(&12)
    );

    // The next pass has nothing to do, and asks nothing.
    f.shopify.clear_requests();
    f.pinterest.clear_list_requests();
    let idle = sync_pending(
        SHOP_DOMAIN,
        &f.admin,
        &f.api,
        &ledger,
        &settings,
        Mode::Live,
        now + chrono::Duration::minutes(30),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (idle[0].added, idle[0].removed, idle[0].requests),
        (0, 0, 0)
    );
    assert!(f.shopify.requests().is_empty());
    assert!(f.writes().is_empty());
    drop(relay);
}

#[tokio::test]
async fn the_light_pass_adds_a_customer_who_subscribes_and_removes_one_deleted_since() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    f.change(215, now + chrono::Duration::minutes(1), |c| {
        c.marketing_state = "SUBSCRIBED".into()
    });
    assert!(f.shopify.delete_customer(30));
    for id in [215, 30, 240] {
        f.ledger
            .queue_recheck(SHOP_DOMAIN, id, now + chrono::Duration::minutes(1))
            .await
            .unwrap();
    }
    f.pinterest.clear_list_requests();
    f.shopify.clear_requests();

    let pass = f.sync_pending(now + chrono::Duration::minutes(5)).await;

    assert_eq!((pass.added, pass.removed), (1, 1));
    assert_eq!(
        f.writes(),
        [("REMOVE".to_owned(), 1), ("ADD".to_owned(), 1)]
    );
    let expected: BTreeSet<String> = hashes((1..=170).filter(|&i| i != 30).chain([215]));
    assert_eq!(f.only_list(), expected);
    assert!(f.shopify.customer_queries().is_empty());
    assert_eq!(f.shopify.customer_node_queries(), [vec![30, 215, 240]]);
    assert!(f.ledger.rechecks(SHOP_DOMAIN).await.unwrap().is_empty());
}

/// The store as read at the start of a run that meets a consent webhook: `customers` answers
/// customer `id` still subscribed, and the webhook queues its re-check while the read is under way.
struct StaleRead<'a> {
    admin: &'a AdminApi,
    ledger: &'a SqliteAudienceStore,
    id: CustomerId,
    webhook_at: Option<DateTime<Utc>>,
}

impl CustomerSource for StaleRead<'_> {
    async fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        deadline: Option<tokio::time::Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<Customer>, AdminError> {
        let mut read =
            CustomerSource::customers(self.admin, since, now, deadline, progress).await?;
        read.retain(|c| c.id != self.id);
        read.push(Customer::new(
            self.id,
            Some(&format!("customer{}@example.com", self.id)),
            MarketingState::Subscribed,
            false,
            0,
            Utc::now() - chrono::Duration::days(1),
        ));
        if let Some(at) = self.webhook_at {
            self.ledger
                .queue_recheck(SHOP_DOMAIN, self.id, at)
                .await
                .unwrap();
        }
        Ok(read)
    }

    async fn customers_by_id(&self, ids: &[CustomerId]) -> Result<Vec<Customer>, AdminError> {
        self.admin.customers_by_id(ids).await
    }
}

/// A full sync at `at` whose store read still shows customer `id` subscribed; with `webhook_at`,
/// their consent webhook queues a re-check while the read is under way.
async fn stale_full_sync(
    f: &Fixture,
    id: CustomerId,
    webhook_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> ListSummary {
    let source = StaleRead {
        admin: &f.admin,
        ledger: &f.ledger,
        id,
        webhook_at,
    };
    let settings = Settings {
        force_full: true,
        ..f.settings(&[ListKind::Customers])
    };
    sync(
        SHOP_DOMAIN,
        &source,
        &f.api,
        &f.ledger,
        &settings,
        Mode::Live,
        at,
        &mut |_| {},
    )
    .await
    .unwrap()
    .remove(0)
}

#[tokio::test]
async fn newer_consent_wins_over_a_sync_reading_an_older_snapshot() {
    let f = Fixture::start().await;
    let now = Utc::now();
    f.sync(now).await;
    // Customer 20 unsubscribes; the light pass removes them.
    f.change(20, now + chrono::Duration::minutes(1), |c| {
        c.marketing_state = "UNSUBSCRIBED".into()
    });
    f.ledger
        .queue_recheck(SHOP_DOMAIN, 20, now + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        f.sync_pending(now + chrono::Duration::minutes(2))
            .await
            .removed,
        1
    );
    // A full sync whose store read still shows them subscribed, and meanwhile their consent
    // webhook queues another re-check: the run does not add them back.
    f.pinterest.clear_list_requests();
    let summary = stale_full_sync(
        &f,
        20,
        Some(now + chrono::Duration::minutes(3)),
        now + chrono::Duration::minutes(3),
    )
    .await;
    assert_eq!((summary.added, summary.removed), (0, 0));
    assert!(f.writes().is_empty(), "{:?}", f.writes());
    assert!(!f.only_list().contains(&hash(20)));
    assert_eq!(
        f.ledger.rechecks(SHOP_DOMAIN).await.unwrap().len(),
        1,
        "the re-check queued during the run is left for the next"
    );

    // A re-check queued before a run wins over its stale read too: read by id, they are
    // unsubscribed. The run clears it.
    let summary = stale_full_sync(&f, 20, None, now + chrono::Duration::minutes(4)).await;
    assert_eq!((summary.added, summary.removed), (0, 0));
    assert!(!f.only_list().contains(&hash(20)));
    assert!(f.ledger.rechecks(SHOP_DOMAIN).await.unwrap().is_empty());

    // Without a re-check, the same stale read would add them back: the guard is what stops it.
    let summary = stale_full_sync(&f, 20, None, now + chrono::Duration::minutes(5)).await;
    assert_eq!(summary.added, 1);
}

#[tokio::test]
async fn a_full_read_is_a_bulk_export_downloaded_without_the_admin_token() {
    let f = Fixture::start().await;

    let run = f.sync(Utc::now()).await;

    assert_eq!(run.added, 170);
    assert_eq!(f.only_list(), hashes(1..=170));
    assert_eq!(f.shopify.bulk_runs(), 1);
    let ops = f.shopify.bulk_operations();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].status, "COMPLETED");
    assert_eq!(ops[0].objects, 250);
    assert_eq!(ops[0].query, pinrelay::shopify::admin::BULK_CUSTOMERS_QUERY);
    let downloads = f.shopify.bulk_downloads();
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].file, "1.jsonl");
    assert_eq!(
        downloads[0].authorization, None,
        "no Authorization to the file's host"
    );
    assert_eq!(
        downloads[0].access_token, None,
        "no Admin token to the file's host"
    );
    assert!(f.shopify.customer_queries().is_empty(), "no paged read");
}

#[tokio::test]
async fn an_export_not_ready_by_the_deadline_stops_the_run_and_the_next_continues_it() {
    let f = Fixture::start().await;
    f.shopify.set_bulk_polls(1_000_000);
    let now = Utc::now();
    let settings = |deadline| Settings {
        read_deadline: deadline,
        ..f.settings(&[ListKind::Customers])
    };
    let soon = || Some(tokio::time::Instant::now() + Duration::from_millis(40));

    let stopped = f
        .sync_with(now, Mode::Live, &settings(soon()))
        .await
        .unwrap_err();

    let SyncError::ReadContinues { operation, source } = &stopped else {
        panic!("{stopped:?}");
    };
    assert_eq!(operation, "gid://shopify/BulkOperation/1");
    assert!(
        matches!(source, AdminError::BulkOperationRunning { .. }),
        "{source:?}"
    );
    assert!(
        stopped.to_string().contains("next run continues"),
        "{stopped}"
    );
    assert!(f.pinterest.list_requests().is_empty(), "nothing sent");
    assert!(
        f.ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.ledger
            .state(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .last_full,
        None
    );

    // Still running at the next run's deadline: the same export, not a second one.
    let again = f
        .sync_with(
            now + chrono::Duration::minutes(15),
            Mode::Live,
            &settings(soon()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&again, SyncError::ReadContinues { operation, .. } if operation == "gid://shopify/BulkOperation/1"),
        "{again:?}"
    );
    assert_eq!(f.shopify.bulk_runs(), 1);

    // It completed between runs: the next run reads it.
    f.shopify.finish_bulk_operations();
    let run = f
        .sync_with(
            now + chrono::Duration::minutes(30),
            Mode::Live,
            &settings(soon()),
        )
        .await
        .unwrap()
        .remove(0);

    assert_eq!(f.shopify.bulk_runs(), 1, "no second bulkOperationRunQuery");
    assert_eq!(f.shopify.bulk_downloads().len(), 1);
    assert_eq!(run.added, 170);
    assert_eq!(f.only_list(), hashes(1..=170));
}

#[tokio::test]
async fn a_failed_export_stops_the_run_with_what_to_do_and_changes_nothing() {
    let f = Fixture::start().await;
    f.shopify.fail_next_bulk_operation("ACCESS_DENIED");
    let now = Utc::now();

    let err = f
        .sync_at(now, Mode::Live, &[ListKind::Customers])
        .await
        .unwrap_err();

    let SyncError::Shopify(source) = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(source, AdminError::BulkOperationFailed { status: "FAILED", error_code: Some(code), .. } if code == "ACCESS_DENIED"),
        "{source:?}"
    );
    let message = source.to_string();
    assert!(
        message.contains("read_customers") && message.contains("protected customer data"),
        "{message}"
    );
    assert!(f.pinterest.list_requests().is_empty(), "nothing sent");
    assert!(f.shopify.bulk_downloads().is_empty());
    assert!(
        f.ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.ledger
            .state(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap(),
        Default::default()
    );

    // Once access is granted, the next run starts a new export (a failed one is not continued).
    let run = f.sync(now + chrono::Duration::minutes(5)).await;
    assert_eq!(f.shopify.bulk_runs(), 2);
    assert_eq!(run.added, 170);
    assert_eq!(f.only_list(), hashes(1..=170));
}

#[tokio::test]
async fn a_store_without_customers_exports_no_file_and_reads_none() {
    let shopify = FakeShopify::start().await;
    let admin = AdminApi::new(
        SHOP_DOMAIN,
        AdminCredentials::Token(ADMIN_TOKEN.to_owned().into()),
        "2026-07",
        Some(&shopify.base_url()),
    )
    .unwrap()
    .with_bulk_polling(BULK_POLLING);

    let customers = admin
        .customers_bulk(Utc::now(), None, &mut |_| {})
        .await
        .unwrap();

    assert!(customers.is_empty());
    assert_eq!(shopify.bulk_operations()[0].status, "COMPLETED");
    assert!(
        shopify.bulk_downloads().is_empty(),
        "url: null, nothing to download"
    );
}

#[tokio::test]
async fn an_api_version_before_bulk_operations_reads_page_by_page() {
    use pinrelay::audiences::CustomerSource;
    let shopify = FakeShopify::start().await;
    shopify.add_customers(store_customers(Utc::now() - chrono::Duration::days(1)));
    let admin = AdminApi::new(
        SHOP_DOMAIN,
        AdminCredentials::Token(ADMIN_TOKEN.to_owned().into()),
        "2025-10",
        Some(&shopify.base_url()),
    )
    .unwrap();

    let customers = CustomerSource::customers(&admin, None, Utc::now(), None, &mut |_| {})
        .await
        .unwrap();

    assert_eq!(customers.len(), 250);
    assert_eq!(shopify.bulk_runs(), 0);
    assert_eq!(shopify.customer_queries().len(), 1);
}

/// A customer source during whose read another writer takes the list over (the first run's
/// lease lapsed: it stalled past its time-to-live).
struct TakenOverDuringRead<'a> {
    admin: &'a AdminApi,
    ledger: &'a SqliteAudienceStore,
}

impl pinrelay::audiences::CustomerSource for TakenOverDuringRead<'_> {
    async fn customers(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        deadline: Option<tokio::time::Instant>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> Result<Vec<pinrelay::audiences::Customer>, AdminError> {
        let read = pinrelay::audiences::CustomerSource::customers(
            self.admin, since, now, deadline, progress,
        )
        .await;
        let later = now + chrono::Duration::hours(1);
        let taken = self
            .ledger
            .acquire(
                SHOP_DOMAIN,
                ListKind::Customers,
                "the-next-writer",
                later,
                Duration::from_secs(900),
            )
            .await
            .unwrap();
        assert_eq!(taken, pinrelay::audiences::Lease::Acquired);
        read
    }

    async fn customers_by_id(
        &self,
        ids: &[pinrelay::audiences::CustomerId],
    ) -> Result<Vec<pinrelay::audiences::Customer>, AdminError> {
        self.admin.customers_by_id(ids).await
    }
}

#[tokio::test]
async fn a_run_that_lost_its_lease_stops_before_its_first_request() {
    let f = Fixture::start().await;
    let source = TakenOverDuringRead {
        admin: &f.admin,
        ledger: &f.ledger,
    };
    let result = sync(
        SHOP_DOMAIN,
        &source,
        &f.api,
        &f.ledger,
        &f.settings(&[ListKind::Customers]),
        Mode::Live,
        Utc::now(),
        &mut |_| {},
    )
    .await;
    match result {
        Err(SyncError::Busy { holder, .. }) => assert_eq!(holder, "the-next-writer"),
        other => panic!("the run stops: {other:?}"),
    }
    assert!(f.writes().is_empty(), "nothing was sent");
    assert!(
        f.ledger
            .members(SHOP_DOMAIN, ListKind::Customers)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_full_dynamodb_removals_item_refuses_the_next_removal_and_keeps_the_member() {
    use pinrelay::audiences::dynamodb::{DynamoDbAudienceStore, MAX_PENDING_REMOVALS};
    use pinrelay::audiences::{Batch, Operation};

    let env = crate::helpers::TestEnv::start().await;
    let client = crate::idempotency::serialized_dynamodb(&env).await;
    let ledger =
        DynamoDbAudienceStore::new(pinrelay::dynamodb::Table::new(client.clone(), &env.table));
    let shop = "full.myshopify.com";
    let member = Batch {
        operation: Operation::Add,
        entries: vec![(9, hash(9))],
    };
    ledger
        .record(shop, ListKind::Customers, &member)
        .await
        .unwrap();
    // The removals item already holds the most it keeps (about 285 KB: DynamoDB, and the limits
    // layer in front of moto, would refuse one much larger).
    let pending: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = (0
        ..MAX_PENDING_REMOVALS)
        .map(|i| {
            (
                format!("customers#{}#{}", 1_000_000 + i, hash(i as u64)),
                aws_sdk_dynamodb::types::AttributeValue::S(String::new()),
            )
        })
        .collect();
    client
        .put_item()
        .table_name(&env.table)
        .item(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("audience#{shop}#removals")),
        )
        .item("r", aws_sdk_dynamodb::types::AttributeValue::M(pending))
        .item("v", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();

    let refused = ledger.remove_customer(shop, 9).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            pinrelay::audiences::LedgerError::Full { most, what: "pending removals", .. }
                if *most == MAX_PENDING_REMOVALS
        ),
        "{refused}"
    );
    // Nothing is lost: the customer is still a member, so the retried webhook (or the next full
    // comparison) removes them once the queue is sent.
    let members = ledger.members(shop, ListKind::Customers).await.unwrap();
    assert_eq!(members.get(&9), Some(&hash(9)));
    assert_eq!(
        ledger
            .pending_removals(shop, ListKind::Customers)
            .await
            .unwrap()
            .len(),
        MAX_PENDING_REMOVALS
    );
}
