//! A Lambda Runtime API emulator for the functions' real binaries: a local axum server speaking
//! the Runtime API (`/2018-06-01/runtime/invocation/next`, `…/{id}/response`, `…/{id}/error`,
//! `/runtime/init/error`), started with the binary and the variables Lambda sets. Each
//! [`Function::invoke`] hands the binary one event, with a deadline, and returns its answer.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    events: Mutex<VecDeque<(String, Value, u64)>>,
    answers: Mutex<HashMap<String, Result<Value, String>>>,
    init_error: Mutex<Option<String>>,
    event_ready: Notify,
    answered: Notify,
}

/// A function binary running against the emulator; killed when dropped.
pub struct Function {
    shared: Arc<Shared>,
    child: Child,
    log: PathBuf,
    next_id: u64,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary `package` of the workspace, built (debug) next to this test executable.
pub fn function_bin(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if let Some(bin) = built.get(package) {
        return bin.clone();
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.ancestors().nth(2).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p {package} failed");
    let bin = profile_dir.join(package);
    assert!(bin.exists(), "{} was not built", bin.display());
    built.insert(package.to_owned(), bin.clone());
    bin
}

impl Function {
    /// Starts `package`'s binary as function `name` with `env` (plus what Lambda sets), its
    /// output in `log`.
    pub async fn start(package: &str, name: &str, env: &[(&str, String)], log: PathBuf) -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let bin = function_bin(package);
        let child = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/06/[$LATEST]emulator")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("_HANDLER", "bootstrap")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        Self {
            shared,
            child,
            log,
            next_id: 0,
        }
    }

    /// What the function wrote (its log lines and EMF metrics).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One invocation with `event`, `timeout` before its deadline: the function's answer, or its
    /// error.
    pub async fn invoke(&mut self, event: Value, timeout: Duration) -> Result<Value, String> {
        self.next_id += 1;
        let id = format!("request-{}", self.next_id);
        let deadline = chrono::Utc::now() + timeout;
        self.shared.events.lock().unwrap().push_back((
            id.clone(),
            event,
            u64::try_from(deadline.timestamp_millis()).unwrap(),
        ));
        self.shared.event_ready.notify_waiters();
        let wait = async {
            loop {
                let answered = self.shared.answered.notified();
                if let Some(answer) = self.shared.answers.lock().unwrap().remove(&id) {
                    return answer;
                }
                if let Some(e) = self.shared.init_error.lock().unwrap().clone() {
                    return Err(format!("init error: {e}"));
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("the function exited with {status}"));
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), answered).await;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {timeout:?}:\n{}", self.log())),
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> (HeaderMap, String) {
    loop {
        let ready = shared.event_ready.notified();
        if let Some((id, event, deadline)) = shared.events.lock().unwrap().pop_front() {
            let mut headers = HeaderMap::new();
            let mut put = |k: &'static str, v: String| {
                headers.insert(k, HeaderValue::from_str(&v).unwrap());
            };
            put("lambda-runtime-aws-request-id", id);
            put("lambda-runtime-deadline-ms", deadline.to_string());
            put(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:emulated".to_owned(),
            );
            put(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793".to_owned(),
            );
            return (headers, event.to_string());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), ready).await;
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.answers.lock().unwrap().insert(id, Ok(value));
    shared.answered.notify_waiters();
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) {
    let text = String::from_utf8_lossy(&body).into_owned();
    shared.answers.lock().unwrap().insert(id, Err(text));
    shared.answered.notify_waiters();
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) {
    *shared.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    shared.answered.notify_waiters();
}
