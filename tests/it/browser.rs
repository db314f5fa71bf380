//! The storefront pixel in a real browser, end to end: `infra/shopify/custom-pixel.js` runs in
//! headless Chromium (`tests/browser/pixel.mjs`, driven through `playwright-core`) and relays to a
//! real `pinrelay serve`, which sends to the fake Pinterest.
//!
//! - consented: every Tag call's `event_id` is the relayed one; the browser events reach Pinterest
//!   with those ids, the click id, and the browser's IP and user agent; the browser checkout is never
//!   sent, and the verified `orders/create` webhook of the same order becomes the single server-side
//!   `checkout`, with the Tag checkout's `event_id` and the browser's click id, IP and user agent;
//!   browser events carry only the page's origin and path as `event_source_url`;
//! - marketing refused: no Tag call, no cookie, and only the checkout's consent-only record reaches
//!   the relay (no IP, user agent or click id kept); the order then goes with `opt_out: true`
//!   (`ORDER_CONSENT_POLICY=opt_out`) or not at all (`skip`);
//! - sale of data refused: browser events and the (US) order carry `opt_out_type: LDP`;
//! - no pixel: the order is sent from the webhook alone;
//! - consent given later: the events before it are dropped, the events after it flow, and the
//!   order is enriched from the checkout made after consent;
//! - every event type and malformed pixel input: the relay answers every request 202.
//!
//! Needs Chromium and `tests/browser/node_modules/playwright-core`
//! (`scripts/install-browser-test-deps.sh`); without them the tests fail, unless
//! `PINRELAY_SKIP_BROWSER_TESTS=1`, when they print why and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::fake_pinterest::FakePinterest;
use crate::relay::Relay;

const SECRET: &str = "browser-test-secret";
/// The pixel's default shop (`init.data.shop.myshopifyDomain` in the harness).
const SHOP: &str = "example.myshopify.com";
/// The order of the pixel's `checkout_completed` and of the fixture.
const ORDER_ID: u64 = 450_789_469;
const ORDER_FIXTURE: &str = "shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json";
/// The pixel's default `epik` (landing URL parameter).
const EPIK: &str = "testclick123";
/// How long the relay holds an order webhook before dispatch (`ORDER_DELAY_SECONDS`).
const ORDER_DELAY: Duration = Duration::from_secs(2);
/// Generous for a loaded 2-core CI machine; the polls return as soon as the condition holds.
const WAIT: Duration = Duration::from_secs(30);

/// One Chromium at a time: on a 2-core machine parallel browsers only slow each other down.
pub(crate) static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `true` when Chromium, Node and playwright-core are there. When one is missing the test fails
/// with how to install them, unless `PINRELAY_SKIP_BROWSER_TESTS=1` (then it says why it skips).
pub(crate) fn browser_available() -> bool {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("Chromium ({})", chromium.display()));
    }
    if !playwright.is_file() {
        missing.push(format!("playwright-core ({})", playwright.display()));
    }
    if !node {
        missing.push("node (Node.js 20 or newer) on PATH".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if std::env::var("PINRELAY_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping the browser test (PINRELAY_SKIP_BROWSER_TESTS=1): missing {missing}");
        return false;
    }
    panic!(
        "the browser test needs {missing}: run scripts/install-browser-test-deps.sh \
         (or set PINRELAY_SKIP_BROWSER_TESTS=1 to skip it)"
    );
}

pub(crate) fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// A relay allowing [`SHOP`] that holds orders [`ORDER_DELAY`], in a temporary directory.
fn start_relay(fake: &FakePinterest) -> (tempfile::TempDir, Relay) {
    start_relay_with(fake, &[])
}

/// [`start_relay`] with more settings.
fn start_relay_with(fake: &FakePinterest, env: &[(&str, &str)]) -> (tempfile::TempDir, Relay) {
    let dir = tempfile::tempdir().unwrap();
    let delay = ORDER_DELAY.as_secs().to_string();
    let mut settings = vec![
        ("SHOPIFY_SHOP_DOMAINS", SHOP),
        ("ORDER_DELAY_SECONDS", delay.as_str()),
    ];
    settings.extend_from_slice(env);
    let relay = Relay::start(
        &dir.path().join("data"),
        dir.path().join("serve.log"),
        SECRET,
        fake,
        &settings,
    );
    (dir, relay)
}

/// Waits until the relay's queue is empty, with no dead letter.
async fn drained(relay: &Relay) {
    let health = relay.drained(WAIT).await;
    assert_eq!(health["dead_letters"], 0, "{health}\n{}", relay.log_tail());
}

/// What `pixel.mjs` printed (see its header for the fields).
struct PixelRun {
    tag_calls: Vec<Value>,
    relay_posts: Vec<u64>,
    relay_bodies: Vec<Value>,
    published: Vec<Value>,
}

impl PixelRun {
    /// `(Tag event name, event_id)` of every `pintrk('track', ...)`, in call order.
    fn tracks(&self) -> Vec<(String, String)> {
        self.tag_calls
            .iter()
            .filter(|c| c[0] == "track")
            .map(|c| (str_of(&c[1]), str_of(&c[2]["event_id"])))
            .collect()
    }

    /// `(relay event name, event_id)` of every relayed body, sorted.
    fn relayed(&self) -> Vec<(String, String)> {
        let mut relayed: Vec<_> = self
            .relay_bodies
            .iter()
            .map(|b| (str_of(&b["event"]), str_of(&b["event_id"])))
            .collect();
        relayed.sort();
        relayed
    }

    /// The Tag calls as relay events, sorted, to compare with [`PixelRun::relayed`].
    fn tracks_as_relayed(&self) -> Vec<(String, String)> {
        let mut tracks: Vec<_> = self
            .tracks()
            .into_iter()
            .map(|(name, id)| (pinterest_name(&name).to_owned(), id))
            .collect();
        tracks.sort();
        tracks
    }

    /// The id the harness gave the published Shopify event `name` (the first such).
    fn published_id(&self, name: &str) -> String {
        let event = self.published.iter().find(|p| p["name"] == name);
        str_of(&event.unwrap_or_else(|| panic!("{name} was not published"))["id"])
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The Pinterest (and relay) event name of a Tag event name.
fn pinterest_name(tag: &str) -> &str {
    match tag {
        "pagevisit" => "page_visit",
        "viewcategory" => "view_category",
        "addtocart" => "add_to_cart",
        other => other,
    }
}

/// Runs `pixel.mjs --check` for `scenario` against the relay; fails on a non-zero exit.
async fn run_pixel(relay: &Relay, scenario: &str) -> PixelRun {
    let _one_browser = BROWSER.lock().await;
    let dir = browser_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("pixel.mjs"))
        .args(["--relay", &relay.base, "--scenario", scenario])
        .args(["--timeout-ms", "60000", "--check"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("pixel.mjs --scenario {scenario} ran for over 90 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pixel.mjs --scenario {scenario} failed ({}):\n{stderr}\n{stdout}\nrelay log:\n{}",
        output.status,
        relay.log_tail()
    );
    let line = stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("pixel.mjs printed no JSON line ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(result["scenario"], scenario);
    let list = |key: &str| result[key].as_array().cloned().unwrap_or_default();
    PixelRun {
        tag_calls: list("tag_calls"),
        relay_posts: list("relay_posts")
            .iter()
            .map(|s| s.as_u64().unwrap())
            .collect(),
        relay_bodies: list("relay_bodies"),
        published: list("published"),
    }
}

/// Polls the fake until `condition` holds on its accepted events, or fails after [`WAIT`].
async fn until_accepted(
    fake: &FakePinterest,
    relay: &Relay,
    what: &str,
    condition: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let accepted = fake.accepted_events();
        if condition(&accepted) {
            return accepted;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; Pinterest got {accepted:#?}\nschema errors: {:?}\nrelay log:\n{}",
            fake.schema_errors(),
            relay.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(event_name, event_id)` of events, sorted.
fn names_and_ids(events: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<_> = events
        .iter()
        .map(|e| (str_of(&e["event_name"]), str_of(&e["event_id"])))
        .collect();
    out.sort();
    out
}

/// The order fixture as the `orders/create` webhook of [`ORDER_ID`], created now.
///
/// The fixture's `browser_ip` (and `client_details.browser_ip`) is `0.0.0.0`, which translate
/// drops, and its `user_agent` is null, so the webhook alone gives Pinterest no IP, user agent or
/// click id (its landing site has no `epik`). They are cleared explicitly all the same: enrichment
/// only fills what the order lacks, and this test must see the browser's values come through, not
/// pass or fail on a detail of the fixture.
fn order_webhook() -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&crate::helpers::fixture(ORDER_FIXTURE)).unwrap();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    order["id"] = ORDER_ID.into();
    order["created_at"] = now.clone().into();
    order["processed_at"] = now.into();
    order["browser_ip"] = Value::Null;
    order["client_details"]["browser_ip"] = Value::Null;
    order["client_details"]["user_agent"] = Value::Null;
    assert!(
        !str_of(&order["landing_site"]).contains("epik"),
        "the fixture's landing site carries a click id"
    );
    serde_json::to_vec(&order).unwrap()
}

async fn post_order(relay: &Relay, body: &[u8]) -> u16 {
    let url = relay.webhook_url();
    crate::relay::post_webhook(
        &url,
        "orders/create",
        SHOP,
        SECRET,
        "browser-test-order",
        body,
    )
    .await
}

/// Posts a browser event body to the relay's browser endpoint, as the pixel does; the status.
async fn post_browser(relay: &Relay, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/events/browser", relay.base))
        .header("Content-Type", "text/plain")
        .header("User-Agent", "pinrelay-test-agent")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts the order webhook and waits for its single `checkout` at Pinterest, which must not come
/// before [`ORDER_DELAY`].
async fn order_checkout(fake: &FakePinterest, relay: &Relay) -> Value {
    let posted = Instant::now();
    assert_eq!(post_order(relay, &order_webhook()).await, 200);
    until_accepted(fake, relay, "the order's checkout", |a| {
        a.iter().any(|e| e["event_name"] == "checkout")
    })
    .await;
    assert!(
        posted.elapsed() >= ORDER_DELAY,
        "the order was dispatched after {:?}, before ORDER_DELAY_SECONDS",
        posted.elapsed()
    );
    drained(relay).await;
    let accepted = fake.accepted_events();
    let checkouts: Vec<&Value> = accepted
        .iter()
        .filter(|e| e["event_name"] == "checkout")
        .collect();
    assert_eq!(checkouts.len(), 1, "{accepted:#?}");
    assert!(
        fake.schema_errors().is_empty(),
        "{:?}",
        fake.schema_errors()
    );
    checkouts[0].clone()
}

/// The pixel's consent-only record: a checkout with exactly the order id, the checkout token, the
/// checkout event's Shopify id, the consent flags and the pixel's settings.
fn assert_consent_only(body: &Value, marketing: bool) {
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "consent",
            "event",
            "event_id",
            "order",
            "settings",
            "shop",
            "timestamp",
            "v"
        ],
        "{body}"
    );
    assert_eq!(body["event"], "checkout");
    assert_eq!(body["event_id"], ORDER_ID.to_string());
    let mut order = body["order"].clone();
    assert!(
        order["shopify_event_id"].is_string(),
        "the checkout event's id: {body}"
    );
    order.as_object_mut().unwrap().remove("shopify_event_id");
    assert_eq!(
        order,
        serde_json::json!({"order_id": ORDER_ID.to_string(),
                           "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c"})
    );
    assert_eq!(body["consent"]["marketing"], marketing, "{body}");
}

/// Every relay request answered 202, and the relay's own count agrees: none refused.
async fn assert_all_accepted(relay: &Relay, run: &PixelRun) {
    assert!(
        run.relay_posts.iter().all(|s| *s == 202),
        "relay answered {:?}",
        run.relay_posts
    );
    assert_eq!(run.relay_posts.len(), run.relay_bodies.len());
    let metrics = relay.metrics().await;
    let rejected: Vec<_> = metrics
        .keys()
        .filter(|k| k.starts_with("WebhooksRejected"))
        .collect();
    assert!(rejected.is_empty(), "the relay refused some: {metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consented_shoppers_events_and_order_reach_pinterest_with_the_tags_ids_and_click_id() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);
    let run = run_pixel(&relay, "consented").await;
    assert_all_accepted(&relay, &run).await;

    // Every Tag call was relayed with the same event_id.
    let tracks = run.tracks();
    let tag_names: Vec<&str> = tracks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(tag_names, ["pagevisit", "addtocart", "search", "checkout"]);
    assert_eq!(run.tracks_as_relayed(), run.relayed());
    let tag_checkout_id = tracks[3].1.clone();
    assert_eq!(tag_checkout_id, ORDER_ID.to_string());

    // The three browser events reach Pinterest with the Tag's ids, the click id, and what the relay
    // saw of the browser: its IP address and its user agent.
    let browser_events: Vec<(String, String)> = run
        .relayed()
        .into_iter()
        .filter(|(name, _)| name != "checkout")
        .collect();
    let accepted =
        until_accepted(&fake, &relay, "the three browser events", |a| a.len() >= 3).await;
    assert_eq!(names_and_ids(&accepted), browser_events);
    let user_agent = str_of(&accepted[0]["user_data"]["client_user_agent"]);
    assert!(
        user_agent.contains("HeadlessChrome/"),
        "user agent {user_agent:?}"
    );
    for event in &accepted {
        let user = &event["user_data"];
        assert_eq!(user["click_id"], EPIK, "{event}");
        assert_eq!(user["client_ip_address"], "127.0.0.1", "{event}");
        assert_eq!(user["client_user_agent"], user_agent.as_str(), "{event}");
        assert_eq!(event["action_source"], "web", "{event}");
        // Origin and path only: the landing page's `?epik=...&utm_...` stays in the browser.
        let url = str_of(&event["event_source_url"]);
        assert!(
            url.starts_with("https://shop.example/") && !url.contains(['?', '#']),
            "{event}"
        );
    }
    let landing = accepted
        .iter()
        .find(|e| e["event_name"] == "page_visit")
        .unwrap();
    assert_eq!(
        landing["event_source_url"],
        "https://shop.example/products/ipod-nano"
    );
    // The browser checkout has been dispatched (recorded as the order's profile) and not sent.
    drained(&relay).await;
    assert_eq!(
        fake.accepted_event_ids().len(),
        3,
        "{:#?}",
        fake.accepted_events()
    );

    // The verified order webhook becomes the one server-side checkout, held ORDER_DELAY first.
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(fake.accepted_events().len(), 4);
    assert_eq!(checkout["event_id"], tag_checkout_id.as_str());
    let user = &checkout["user_data"];
    assert_eq!(
        user["click_id"], EPIK,
        "the order's checkout lacks the browser's click id: {checkout:#}"
    );
    assert_eq!(user["client_ip_address"], "127.0.0.1", "{checkout:#}");
    assert_eq!(
        user["client_user_agent"],
        user_agent.as_str(),
        "{checkout:#}"
    );
    assert_eq!(checkout.get("opt_out"), None, "{checkout:#}");
    assert_eq!(
        checkout["custom_data"].get("opt_out_type"),
        None,
        "{checkout:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_consent_relays_only_the_consent_and_the_order_goes_opted_out_or_not_at_all() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);
    let run = run_pixel(&relay, "no_consent").await;
    assert!(run.tag_calls.is_empty(), "{:?}", run.tag_calls);
    assert_eq!(run.published.len(), 4, "the scenario published its events");
    assert_all_accepted(&relay, &run).await;
    assert_eq!(run.relay_bodies.len(), 1, "{:?}", run.relay_bodies);
    let record = run.relay_bodies[0].clone();
    assert_consent_only(&record, false);

    // The record becomes the order's profile; nothing reaches Pinterest from the browser.
    drained(&relay).await;
    let metrics = relay.metrics().await;
    assert_eq!(metrics.get("ProfilesRecorded"), Some(&1.0), "{metrics:?}");
    assert!(
        fake.accepted_events().is_empty(),
        "{:#?}",
        fake.accepted_events()
    );

    // ORDER_CONSENT_POLICY=opt_out (the default): the order is sent, opted out, not enriched.
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(checkout["opt_out"], true, "{checkout:#}");
    assert_eq!(checkout["event_id"], ORDER_ID.to_string());
    let user = &checkout["user_data"];
    for field in ["click_id", "client_ip_address", "client_user_agent"] {
        assert_eq!(user.get(field), None, "{field} in {checkout:#}");
    }
    assert!(
        user["em"].as_array().is_some_and(|em| !em.is_empty()),
        "{checkout:#}"
    );

    // ORDER_CONSENT_POLICY=skip: the same record, and the order is not sent at all.
    let skip_fake = FakePinterest::start().await;
    let (_skip_dir, skip_relay) = start_relay_with(&skip_fake, &[("ORDER_CONSENT_POLICY", "skip")]);
    assert_eq!(post_browser(&skip_relay, &record).await, 202);
    drained(&skip_relay).await;
    assert_eq!(post_order(&skip_relay, &order_webhook()).await, 200);
    let deadline = Instant::now() + WAIT;
    let skipped = loop {
        let metrics = skip_relay.metrics().await;
        if metrics.get("EventsSkipped{Reason=consent}") == Some(&1.0) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "the order was not skipped for consent: {metrics:?}\n{}",
            skip_relay.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drained(&skip_relay).await;
    assert!(
        skip_fake.requests().is_empty(),
        "Pinterest got {:#?} ({skipped:?})",
        skip_fake.accepted_events()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sale_of_data_marks_the_browser_events_and_the_us_order_ldp() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);
    let run = run_pixel(&relay, "no_sale_of_data").await;
    assert_all_accepted(&relay, &run).await;
    assert_eq!(run.tracks_as_relayed(), run.relayed());
    let accepted =
        until_accepted(&fake, &relay, "the three browser events", |a| a.len() >= 3).await;
    drained(&relay).await;
    for event in &accepted {
        assert_eq!(event["custom_data"]["opt_out_type"], "LDP", "{event}");
        assert_eq!(event["user_data"]["click_id"], EPIK, "{event}");
    }
    // The order's buyer is in the US (Kentucky): enriched as with consent, and LDP.
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(
        checkout["custom_data"]["opt_out_type"], "LDP",
        "{checkout:#}"
    );
    assert_eq!(checkout["user_data"]["click_id"], EPIK, "{checkout:#}");
    assert_eq!(checkout.get("opt_out"), None, "{checkout:#}");
}

/// Needs no browser: the relay alone, as for a shop without the pixel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pixel_the_order_is_sent_from_the_webhook_alone() {
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(checkout["event_id"], ORDER_ID.to_string());
    assert_eq!(checkout.get("opt_out"), None, "{checkout:#}");
    assert_eq!(
        checkout["custom_data"].get("opt_out_type"),
        None,
        "{checkout:#}"
    );
    let user = &checkout["user_data"];
    for field in ["click_id", "client_ip_address", "client_user_agent"] {
        assert_eq!(user.get(field), None, "{field} in {checkout:#}");
    }
    assert!(
        user["em"].as_array().is_some_and(|em| !em.is_empty()),
        "{checkout:#}"
    );
    let metrics = relay.metrics().await;
    assert_eq!(metrics.get("ProfilesRecorded"), None, "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_given_later_drops_the_earlier_events_and_lets_the_later_ones_flow() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);
    let run = run_pixel(&relay, "consent_later").await;
    assert_all_accepted(&relay, &run).await;
    let dropped = run.published_id("page_viewed");
    let added = run.published_id("product_added_to_cart");

    let tracks = run.tracks();
    assert_eq!(
        tracks,
        [
            ("addtocart".to_owned(), added.clone()),
            ("checkout".to_owned(), ORDER_ID.to_string())
        ]
    );
    assert_eq!(run.tracks_as_relayed(), run.relayed());

    until_accepted(&fake, &relay, "the add_to_cart", |a| !a.is_empty()).await;
    drained(&relay).await;
    let accepted = fake.accepted_events();
    assert_eq!(
        names_and_ids(&accepted),
        [("add_to_cart".to_owned(), added)]
    );
    assert_eq!(accepted[0]["user_data"]["client_ip_address"], "127.0.0.1");
    assert!(
        fake.accepted_event_ids().iter().all(|id| *id != dropped),
        "the event before consent reached Pinterest"
    );

    // The checkout after consent was relayed in full: the order is enriched with the browser's IP
    // and user agent (no click id: the landing page that had it came before consent).
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(checkout.get("opt_out"), None, "{checkout:#}");
    let user = &checkout["user_data"];
    assert_eq!(user["client_ip_address"], "127.0.0.1", "{checkout:#}");
    assert!(
        str_of(&user["client_user_agent"]).contains("HeadlessChrome/"),
        "{checkout:#}"
    );
    assert_eq!(user.get("click_id"), None, "{checkout:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_and_malformed_pixel_input_is_accepted_by_the_relay() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay(&fake);

    let all = run_pixel(&relay, "all_events").await;
    assert_all_accepted(&relay, &all).await;
    assert_eq!(all.tracks_as_relayed(), all.relayed());
    let expected: Vec<(String, String)> = all
        .relayed()
        .into_iter()
        .filter(|(name, _)| name != "checkout")
        .collect();
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "add_to_cart",
            "page_visit",
            "page_visit",
            "search",
            "view_category"
        ]
    );
    until_accepted(&fake, &relay, "every browser event type", |a| {
        a.len() >= expected.len()
    })
    .await;
    drained(&relay).await;
    assert_eq!(names_and_ids(&fake.accepted_events()), expected);

    // Whatever the pixel makes of malformed Shopify events still fits the relay's wire format.
    let malformed = run_pixel(&relay, "malformed").await;
    assert_all_accepted(&relay, &malformed).await;
    assert_eq!(malformed.tracks_as_relayed(), malformed.relayed());
    drained(&relay).await;
    let metrics = relay.metrics().await;
    let posts = all.relay_posts.len() + malformed.relay_posts.len();
    assert_eq!(
        metrics.get("BrowserEventsEnqueued"),
        Some(&(posts as f64)),
        "{metrics:?}"
    );
    assert!(
        fake.schema_errors().is_empty(),
        "{:?}",
        fake.schema_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_pinterests_app_the_pixel_fires_no_tag_and_the_order_takes_the_shopify_event_id() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay_with(&fake, &[("CHECKOUT_EVENT_ID", "shopify_event")]);
    let run = run_pixel(&relay, "app_tag").await;
    assert_all_accepted(&relay, &run).await;
    assert!(
        run.tag_calls.is_empty(),
        "no Tag at all: {:?}",
        run.tag_calls
    );
    let shopify_id = run.published_id("checkout_completed");
    let record = run
        .relay_bodies
        .iter()
        .find(|b| b["event"] == "checkout")
        .unwrap();
    assert_eq!(record["order"]["shopify_event_id"], shopify_id.as_str());
    // The pixel's settings agree with the relay's: nothing counted as drift.
    assert!(
        str_of(&record["settings"]).contains("checkout_event_id=shopify_event"),
        "{record}"
    );
    until_accepted(&fake, &relay, "the three browser events", |a| a.len() >= 3).await;
    drained(&relay).await;
    // The order's checkout carries the id the app's Tag used, once.
    let checkout = order_checkout(&fake, &relay).await;
    assert_eq!(checkout["event_id"], shopify_id.as_str(), "{checkout:#}");
    assert_eq!(checkout["custom_data"]["order_id"], ORDER_ID.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_checkout_on_paid_the_pixel_fires_every_tag_event_but_the_checkout() {
    if !browser_available() {
        return;
    }
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay_with(&fake, &[("CHECKOUT_ON", "paid")]);
    let run = run_pixel(&relay, "paid").await;
    assert_all_accepted(&relay, &run).await;
    let names: Vec<String> = run.tracks().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["pagevisit", "addtocart", "search"]);
    assert!(run.relay_bodies.iter().any(|b| b["event"] == "checkout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_id_template_names_products_alike_in_the_pixel_and_on_the_server() {
    if !browser_available() {
        return;
    }
    let template = "shopify_{country}_{product_id}_{variant_id}";
    let fake = FakePinterest::start().await;
    let (_dir, relay) = start_relay_with(
        &fake,
        &[("CONTENT_ID", template), ("CATALOG_COUNTRY", "US")],
    );
    let run = run_pixel(&relay, "catalog").await;
    assert_all_accepted(&relay, &run).await;
    until_accepted(&fake, &relay, "the three browser events", |a| a.len() >= 3).await;
    drained(&relay).await;
    let checkout = order_checkout(&fake, &relay).await;
    let ids = checkout["custom_data"]["content_ids"].as_array().unwrap();
    assert!(!ids.is_empty(), "{checkout:#}");
    for id in ids {
        let id = str_of(id);
        assert!(id.starts_with("shopify_US_"), "{id}");
        assert_eq!(id.split('_').count(), 4, "{id}");
    }
}
