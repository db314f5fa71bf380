//! Test harness: [`TestEnv`] starts a private moto on a free 127.0.0.1 port, builds AWS SDK
//! clients pointed at it (dummy credentials, set on the SDK config, not in the process environment),
//! and creates a uniquely named queue, dead-letter queue and DynamoDB table. Dropping it kills moto.
//!
//! moto runs behind `scripts/moto_limits.py`, a layer that refuses what real SQS and DynamoDB
//! refuse and moto alone accepts (11 message attributes, a message over its queue's size, batches
//! over 10 entries or 1 MiB, items over 400 KB, 26-request batch writes, 101-key batch gets...),
//! with AWS's error codes, and that can throttle batches on demand ([`TestEnv::pressure`]). It
//! runs with `target/pyenv/bin/python` (`make tools`), else `python3` on `PATH`; `MOTO_PYTHON`
//! names another interpreter, and `MOTO_SERVER=moto_server` runs plain moto instead of the layer.
//!
//! Set `TEST_LOG=1` to see `tracing` output and moto's request log (and the layer's refusals) on
//! stderr.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::config::{Credentials, Region};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

/// The region every test resource lives in.
pub const REGION: &str = "us-east-1";

/// How long moto may take to start answering.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto (behind the limits layer) with clients and fresh resources.
pub struct TestEnv {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// SDK configuration: endpoint = moto, region [`REGION`], static dummy credentials.
    pub sdk_config: SdkConfig,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Secrets Manager client.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The main queue.
    pub queue_url: String,
    /// The dead-letter queue (no redrive policy links them; dispatch dead-letters explicitly).
    pub dlq_url: String,
    /// The idempotency table: partition key `id` (string), on-demand.
    pub table: String,
    moto: Child,
}

impl TestEnv {
    /// Starts moto behind the limits layer and creates the queue, dead-letter queue and table.
    pub async fn start() -> TestEnv {
        init_test_log();
        let port = free_port();
        let (program, mut args) = moto_command();
        args.extend([
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ]);
        let logging = std::env::var_os("TEST_LOG").is_some();
        let output = || {
            if logging {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let mut moto = Command::new(&program)
            .args(&args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program:?} {args:?} (run `make tools` to install moto): {e}")
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until_listening(&mut moto, port);

        let sdk_config = sdk_config(&endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk_config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config);

        let suffix = unique_suffix();
        let dlq_url = create_queue(&sqs, &format!("pinrelay-dlq-{suffix}")).await;
        let queue_url = create_queue(&sqs, &format!("pinrelay-{suffix}")).await;
        let table = format!("pinrelay-idempotency-{suffix}");
        dynamodb
            .create_table()
            .table_name(&table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .expect("create DynamoDB table in moto");

        TestEnv {
            endpoint,
            sdk_config,
            sqs,
            dynamodb,
            secrets,
            queue_url,
            dlq_url,
            table,
            moto,
        }
    }

    /// Puts DynamoDB under pressure: from now on each `BatchWriteItem` leaves
    /// `floor(n * unprocessed_fraction)` of its n requests unapplied and returns them in
    /// `UnprocessedItems`, and each `BatchGetItem` leaves as many of its keys unread, returned in
    /// `UnprocessedKeys` (never all of a call's: a caller that retries always progresses). Which
    /// ones is seeded, so a run repeats; `0.0` ends the pressure. Needs the limits layer.
    pub async fn pressure(&self, unprocessed_fraction: f64) {
        pinrelay::pinterest::http::install_crypto_provider();
        let response = reqwest::Client::new()
            .post(format!("{}/_limits/pressure", self.endpoint))
            .json(&serde_json::json!({"unprocessed_fraction": unprocessed_fraction, "seed": 1}))
            .send()
            .await
            .expect("reach the limits layer");
        assert!(
            response.status().is_success(),
            "the limits layer refused pressure {unprocessed_fraction} ({}); is MOTO_SERVER set?",
            response.status()
        );
    }

    /// Receives every currently visible message of `queue_url` (all message attributes and
    /// `ApproximateReceiveCount`), until a receive comes back empty. Received messages become
    /// invisible for the queue's visibility timeout, as in SQS.
    pub async fn receive_all(&self, queue_url: &str) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .expect("receive from moto");
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = self.moto.kill();
        let _ = self.moto.wait();
    }
}

/// Reads `tests/fixtures/<path>`.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = fixture_path(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("read fixture {}: {e}", full.display()))
}

/// The absolute path of `tests/fixtures/<path>`.
pub fn fixture_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// SDK configuration for `endpoint` with region [`REGION`] and static dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A local port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The program and leading arguments that start moto: `MOTO_SERVER` (plain moto, as before the
/// layer) if set, else `scripts/moto_limits.py` run by `MOTO_PYTHON`, the `make tools` virtualenv's
/// python, or `python3`.
fn moto_command() -> (String, Vec<String>) {
    if let Ok(program) = std::env::var("MOTO_SERVER") {
        return (program, Vec::new());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf();
    let script = root.join("scripts").join("moto_limits.py");
    let venv = root.join("target").join("pyenv").join("bin").join("python");
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".to_owned()
        }
    });
    (python, vec![script.display().to_string()])
}

/// Installs a stderr `tracing` subscriber when `TEST_LOG` is set (once per process).
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        pinrelay::telemetry::init(pinrelay::telemetry::Output::Stderr);
    }
}

fn wait_until_listening(moto: &mut Child, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = moto.try_wait() {
            panic!("moto exited before listening on {addr}: {status} (set TEST_LOG=1)");
        }
        if Instant::now() > deadline {
            let _ = moto.kill();
            panic!("moto did not listen on {addr} within {STARTUP_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create SQS queue in moto")
        .queue_url
        .expect("moto returns a queue URL")
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn harness_starts_moto_with_fresh_resources_and_stops_it_on_drop() {
    let env = TestEnv::start().await;
    assert!(env.queue_url.contains("pinrelay-"));
    assert_ne!(env.queue_url, env.dlq_url);
    env.sqs
        .send_message()
        .queue_url(&env.queue_url)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    let got = env.receive_all(&env.queue_url).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.as_deref(), Some("hello"));
    let count = got[0]
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
    assert_eq!(count.map(String::as_str), Some("1"));
    let tables = env.dynamodb.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&env.table));
    assert!(!fixture("README.md").is_empty());
    let port: u16 = env.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    drop(env);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "moto still listening after drop"
    );
}

/// The `pinrelay` binary with AWS pointed at moto (`endpoint`): region, dummy credentials, no
/// profile or instance metadata.
pub fn pinrelay_on_moto(endpoint: &str) -> Command {
    let mut command = Command::new(crate::subscribe::pinrelay_bin());
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    command
}

impl TestEnv {
    /// Creates CloudFormation stack `name` on moto from `template` (JSON) with `parameters`.
    pub async fn create_stack(
        &self,
        name: &str,
        template: &serde_json::Value,
        parameters: &[(&str, &str)],
    ) {
        pinrelay::pinterest::http::install_crypto_provider();
        let template = template.to_string();
        let mut form = vec![
            ("Action".to_owned(), "CreateStack".to_owned()),
            ("Version".to_owned(), "2010-05-15".to_owned()),
            ("StackName".to_owned(), name.to_owned()),
            ("TemplateBody".to_owned(), template),
        ];
        for (i, (key, value)) in parameters.iter().enumerate() {
            let n = i + 1;
            form.push((
                format!("Parameters.member.{n}.ParameterKey"),
                (*key).to_owned(),
            ));
            form.push((
                format!("Parameters.member.{n}.ParameterValue"),
                (*value).to_owned(),
            ));
        }
        let response = reqwest::Client::new()
            .post(&self.endpoint)
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=testing/20261201/{REGION}/cloudformation/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "{status}: {}",
            response.text().await.unwrap()
        );
    }
}

/// The variables `pinrelay shops` and `connect` read secrets from: cleared, so the test's own
/// standard input decides, whatever the developer's shell holds.
pub const SECRET_VARIABLES: [&str; 6] = [
    "SHOPIFY_WEBHOOK_SECRETS",
    "PINTEREST_ACCESS_TOKEN",
    "PINTEREST_API_TOKEN",
    "SHOPIFY_ADMIN_TOKEN",
    "SHOPIFY_CLIENT_ID",
    "SHOPIFY_CLIENT_SECRET",
];

/// Runs `command` without [`SECRET_VARIABLES`], `stdin` on its standard input; its output.
pub fn run_with_stdin(mut command: Command, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    for variable in SECRET_VARIABLES {
        command.env_remove(variable);
    }
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
