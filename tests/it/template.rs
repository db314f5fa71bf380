//! Checks `template.yaml` against the code: the wiring a reviewer would miss.
//!
//! - every environment variable a function's code reads is set on that function (derived by
//!   scanning the function's sources, so a new variable in code without the template fails here);
//! - the secrets travel as ARNs only, and each function's role can read exactly the resources its
//!   variables name;
//! - the SQS event source reports batch item failures, the queue hides a message for at least six
//!   times the dispatch timeout, and the redrive to the dead-letter queue comes after
//!   `MAX_RECEIVE_COUNT` and after a paused store's 7 days of retries;
//! - no policy statement grants `*` resources, except the listed, justified ones;
//! - every alarm and dashboard metric in the `pinrelay` namespace is one the code publishes
//!   ([`pinrelay::metrics::PUBLISHED`]: name and `Reason`), and the detail left to the logs is
//!   on the dashboard as Logs Insights queries;
//! - X-Ray is off unless `XRayTracing` is true, and logs are JSON with system logs at WARN;
//! - the watch runs on a schedule allowed to invoke exactly it, its alarms watch its metrics, and
//!   every alarm has a row in the README's runbook.
//!
//! It does not deploy anything or replace `cfn-lint` (which `make template-lint` runs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// Statements allowed a `*` resource: (role, Sid, actions). X-Ray's trace-writing actions have no
/// resource-level permissions, so AWS requires `*` for them; they exist only with tracing on.
const STAR_RESOURCE_ALLOWED: &[(&str, &str, &[&str])] = &[
    (
        "IngestRole",
        "XRay",
        &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    ),
    (
        "DispatchRole",
        "XRay",
        &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    ),
    (
        "WatchRole",
        "XRay",
        &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    ),
];

/// Variables that carry a secret itself, for local runs; on AWS the template sets their `_ARN`
/// counterpart instead, and must never set these.
const LOCAL_ONLY_SECRETS: &[(&str, &str)] = &[
    ("SHOPIFY_WEBHOOK_SECRETS", "SHOPIFY_WEBHOOK_SECRET_ARN"),
    (
        "PINTEREST_ACCESS_TOKEN",
        "PINTEREST_ACCESS_TOKEN_SECRET_ARN",
    ),
    ("SHOPIFY_ADMIN_TOKEN", "SHOPIFY_ADMIN_TOKEN_SECRET_ARN"),
    ("SHOPIFY_CLIENT_ID", "SHOPIFY_ADMIN_TOKEN_SECRET_ARN"),
    ("SHOPIFY_CLIENT_SECRET", "SHOPIFY_ADMIN_TOKEN_SECRET_ARN"),
];

/// Variables the code reads that the stack leaves unset on purpose: (variable, why).
const UNSET_ON_AWS: &[(&str, &str)] = &[
    (
        "SHOP_DOMAIN",
        "the watch falls back to the first of SHOPIFY_SHOP_DOMAINS, which the stack sets",
    ),
    (
        "SHOPIFY_ADMIN_API_URL",
        "only tests point the Admin API client elsewhere than https://{shop}",
    ),
];

/// The functions: logical id in the template and source folder.
const FUNCTIONS: &[(&str, &str)] = &[
    ("IngestFunction", "functions/ingest"),
    ("DispatchFunction", "functions/dispatch"),
    ("WatchFunction", "functions/watch"),
];

/// The watch's alarms: (logical id, the metric it watches).
const WATCH_ALARMS: &[(&str, &str)] = &[
    (
        "WebhookSubscriptionsMissingAlarm",
        pinrelay::metrics::names::WEBHOOK_SUBSCRIPTIONS_MISSING,
    ),
    (
        "MissingOrdersAlarm",
        pinrelay::metrics::names::ORDERS_MISSING,
    ),
    ("WatchErrorsAlarm", "Errors"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn resources(t: &Value) -> &serde_yaml::Mapping {
    t["Resources"].as_mapping().unwrap()
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["Resources"]
        .get(id)
        .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
}

/// An intrinsic function in short (`!Ref X`) or long (`{Ref: X}`) form: its name without `Fn::`
/// and its argument.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::"))
                .then(|| (k.trim_start_matches("Fn::").to_owned(), arg))
        }
        _ => None,
    }
}

/// The logical ids a value refers to through `Ref` or `GetAtt`, looking into both branches of `If`.
fn referred(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some((name, arg)) = intrinsic(v) {
        match name.as_str() {
            "Ref" => {
                out.insert(arg.as_str().unwrap().to_owned());
            }
            "GetAtt" => {
                let id = match arg {
                    Value::String(s) => s.split('.').next().unwrap().to_owned(),
                    Value::Sequence(s) => s[0].as_str().unwrap().to_owned(),
                    other => panic!("unexpected GetAtt argument {other:?}"),
                };
                out.insert(id);
            }
            "If" => {
                let branches = arg.as_sequence().unwrap();
                out.extend(referred(&branches[1]));
                out.extend(referred(&branches[2]));
            }
            _ => {}
        }
    }
    out
}

/// The single resource a value refers to.
fn referred_one(v: &Value) -> String {
    let ids = referred(v);
    assert_eq!(ids.len(), 1, "expected one reference in {v:?}");
    ids.into_iter().next().unwrap()
}

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    }
}

fn number(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

/// A function property, falling back to `Globals.Function`.
fn function_property<'a>(t: &'a Value, id: &str, key: &str) -> Option<&'a Value> {
    resource(t, id)["Properties"]
        .get(key)
        .or_else(|| t["Globals"]["Function"].get(key))
}

/// A function's environment: `Globals.Function` variables overlaid with its own.
fn environment(t: &Value, id: &str) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    for source in [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &resource(t, id)["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(m) = source.as_mapping() {
            for (k, v) in m {
                vars.insert(k.as_str().unwrap().to_owned(), v.clone());
            }
        }
    }
    vars
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `pub const NAME: &str = "value";` lines of a Rust source, as NAME -> value.
fn string_consts(source: &str) -> BTreeMap<String, String> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let value = rest.strip_suffix("\";")?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The environment keys of `pinrelay::config::keys`, as const name -> variable name.
fn config_keys() -> BTreeMap<String, String> {
    let source = std::fs::read_to_string(root().join("shared/src/config.rs")).unwrap();
    let keys = string_consts(&source);
    assert_eq!(
        keys.get("QUEUE_URL").map(String::as_str),
        Some(pinrelay::config::keys::QUEUE_URL),
        "could not read the keys module of shared/src/config.rs"
    );
    keys
}

/// Keys (const names) mentioned as `keys::NAME` in a piece of source.
fn keys_mentioned(source: &str, keys: &BTreeMap<String, String>) -> BTreeSet<String> {
    keys.keys()
        .filter(|name| {
            source
                .match_indices(&format!("keys::{name}"))
                .any(|(i, m)| {
                    !source[i + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
        })
        .cloned()
        .collect()
}

/// Shared-library functions that read environment keys themselves (like
/// `config::mapping_options`), as fn name -> the keys (const names) their bodies mention.
fn key_reading_fns(keys: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    for file in rust_files(&root().join("shared/src")) {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let source = without_tests(std::fs::read_to_string(&file).unwrap());
        let starts: Vec<usize> = source.match_indices("fn ").map(|(i, _)| i).collect();
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(source.len());
            let body = &source[start..end];
            let Some(name) = body[3..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .filter(|s| !s.is_empty())
            else {
                continue;
            };
            bodies.entry(name.to_owned()).or_default().push_str(body);
        }
    }
    // Keys a function mentions, then (to a fixed point) the keys of the functions it calls.
    let mut out: BTreeMap<String, BTreeSet<String>> = bodies
        .iter()
        .map(|(name, body)| (name.clone(), keys_mentioned(body, keys)))
        .collect();
    loop {
        let mut changed = false;
        for (name, body) in &bodies {
            let called: BTreeSet<String> = out
                .iter()
                .filter(|(f, read)| *f != name && !read.is_empty() && calls(body, f))
                .flat_map(|(_, read)| read.iter().cloned())
                .collect();
            let entry = out.entry(name.clone()).or_default();
            let before = entry.len();
            entry.extend(called);
            changed |= entry.len() != before;
        }
        if !changed {
            break;
        }
    }
    out.retain(|_, read| !read.is_empty());
    out
}

/// A source file without its `#[cfg(test)]` module (last in every file; test-only files such as
/// `tests.rs` are skipped whole): tests are not what a function runs, and their helpers' names
/// (`run`, `put`) would match the library's.
fn without_tests(mut source: String) -> String {
    if let Some(at) = source.find("#[cfg(test)]\nmod tests") {
        source.truncate(at);
    }
    source
}

/// True when `source` calls `f` (not a longer name ending in it, not its definition).
fn calls(source: &str, f: &str) -> bool {
    source.match_indices(&format!("{f}(")).any(|(i, _)| {
        i > 0
            && !source[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && !source[..i].ends_with("fn ")
    })
}

/// The environment variables a function's code reads: `keys::NAME` uses and literals equal to a
/// key in its own sources, plus the keys read inside shared functions it calls.
fn variables_read(dir: &str) -> BTreeSet<String> {
    let keys = config_keys();
    let readers = key_reading_fns(&keys);
    let mut names = BTreeSet::new();
    let files = rust_files(&root().join(dir));
    assert!(!files.is_empty(), "no sources in {dir}");
    for file in files {
        let source = without_tests(std::fs::read_to_string(&file).unwrap());
        names.extend(keys_mentioned(&source, &keys));
        for (name, value) in &keys {
            if source.contains(&format!("\"{value}\"")) {
                names.insert(name.clone());
            }
        }
        for (f, read) in &readers {
            if calls(&source, f) {
                names.extend(read.iter().cloned());
            }
        }
    }
    names.into_iter().map(|n| keys[&n].clone()).collect()
}

/// Every policy statement of every IAM role or policy, with the owning logical id.
fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        let id = id.as_str().unwrap().to_owned();
        let props = &r["Properties"];
        let docs: Vec<&Value> = match r["Type"].as_str().unwrap() {
            "AWS::IAM::Role" => props["Policies"]
                .as_sequence()
                .map(|p| p.iter().map(|p| &p["PolicyDocument"]).collect())
                .unwrap_or_default(),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => vec![&props["PolicyDocument"]],
            _ => continue,
        };
        for doc in docs {
            for s in as_list(&doc["Statement"]) {
                // `!If [Condition, statement, !Ref AWS::NoValue]`: the statement when it applies.
                match intrinsic(s) {
                    Some((name, arg)) if name == "If" => {
                        let branches = arg.as_sequence().unwrap();
                        for b in &branches[1..] {
                            if intrinsic(b).is_none() {
                                out.push((id.clone(), b.clone()));
                            }
                        }
                    }
                    _ => out.push((id.clone(), s.clone())),
                }
            }
        }
    }
    out
}

fn actions(statement: &Value) -> BTreeSet<String> {
    as_list(&statement["Action"])
        .into_iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The role a function runs as.
fn role_of(t: &Value, function: &str) -> String {
    let role = resource(t, function)["Properties"]
        .get("Role")
        .unwrap_or_else(|| panic!("{function} has no explicit Role"));
    referred_one(role)
}

/// Metric names of `pinrelay::metrics::names`, read from its source.
fn metric_names() -> BTreeSet<String> {
    let source = std::fs::read_to_string(root().join("shared/src/metrics.rs")).unwrap();
    let start = source.find("pub mod names").unwrap();
    let end = start + source[start..].find("\n}").unwrap();
    let names: BTreeSet<String> = string_consts(&source[start..end]).into_values().collect();
    assert!(names.contains(pinrelay::metrics::names::PINTEREST_AUTH_FAILURES));
    assert!(names.contains(pinrelay::metrics::names::EVENTS_FAILED));
    names
}

/// The template functions whose metrics carry their own name as the `Function` dimension
/// (`Metrics::emf(&metrics::function_dimension(..))` in their sources).
fn functions_emitting_their_name() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (logical_id, dir) in FUNCTIONS {
        for file in rust_files(&root().join(dir)) {
            let source = std::fs::read_to_string(file).unwrap();
            if source.contains("Metrics::emf(&metrics::function_dimension(") {
                out.insert((*logical_id).to_owned());
            }
        }
    }
    out
}

/// Every string literal in the shared library (to check `Reason` dimension values).
fn shared_literals() -> String {
    rust_files(&root().join("shared/src"))
        .into_iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_variable_a_function_reads_is_set_by_the_template() {
    let t = template();
    for (function, dir) in FUNCTIONS {
        let read = variables_read(dir);
        let env = environment(&t, function);
        let sentinel = match *function {
            "WatchFunction" => pinrelay::config::keys::WEBHOOK_URL,
            _ => pinrelay::config::keys::QUEUE_URL,
        };
        assert!(
            read.contains(sentinel),
            "{dir} reads no {sentinel}; is the source scan broken? read: {read:?}"
        );
        for var in &read {
            if UNSET_ON_AWS.iter().any(|(v, _)| v == var) {
                assert!(
                    !env.contains_key(var),
                    "{function} sets {var}, which UNSET_ON_AWS says the stack leaves unset"
                );
                continue;
            }
            if let Some((_, arn)) = LOCAL_ONLY_SECRETS.iter().find(|(v, _)| v == var) {
                assert!(
                    env.contains_key(*arn),
                    "{function} reads {var} locally; on AWS the template must set {arn}"
                );
                continue;
            }
            assert!(
                env.contains_key(var),
                "{dir} reads {var} but template.yaml does not set it on {function}"
            );
        }
    }
}

#[test]
fn secrets_travel_only_as_arns() {
    let t = template();
    for (function, _) in FUNCTIONS {
        let env = environment(&t, function);
        for (secret, _) in LOCAL_ONLY_SECRETS {
            assert!(
                !env.contains_key(*secret),
                "{function} must not carry {secret} in its environment; set the _ARN variable"
            );
        }
        for (name, value) in env.iter().filter(|(k, _)| k.ends_with("_SECRET_ARN")) {
            for id in referred(value) {
                let kind = t["Resources"]
                    .get(&id)
                    .map(|r| r["Type"].as_str().unwrap().to_owned())
                    .unwrap_or_else(|| {
                        format!(
                            "parameter {}",
                            t["Parameters"][&id]["Type"].as_str().unwrap()
                        )
                    });
                assert!(
                    kind == "AWS::SecretsManager::Secret" || kind == "parameter String",
                    "{function} {name} refers to {id} ({kind}), not a secret ARN"
                );
            }
        }
    }
}

#[test]
fn each_role_can_reach_exactly_what_its_function_is_configured_with() {
    let t = template();
    let all = statements(&t);
    for (function, _) in FUNCTIONS {
        let role = role_of(&t, function);
        let mine: Vec<&Value> = all
            .iter()
            .filter(|(owner, _)| *owner == role)
            .map(|(_, s)| s)
            .collect();
        let granted_on = |id: &str, action: &str| {
            mine.iter().any(|s| {
                actions(s).contains(action)
                    && as_list(&s["Resource"])
                        .iter()
                        .any(|r| referred(r).contains(id))
            })
        };
        for (name, value) in environment(&t, function) {
            let ids = referred(&value);
            for id in &ids {
                let Some(r) = t["Resources"].get(id) else {
                    continue;
                };
                let needed = match r["Type"].as_str().unwrap() {
                    "AWS::SQS::Queue" => "sqs:SendMessage",
                    // The watch only reads the ledger.
                    "AWS::DynamoDB::Table" if *function == "WatchFunction" => {
                        "dynamodb:BatchGetItem"
                    }
                    // Ingest only reads the registered stores' entries.
                    "AWS::DynamoDB::Table" if *function == "IngestFunction" => "dynamodb:GetItem",
                    "AWS::DynamoDB::Table" => "dynamodb:PutItem",
                    "AWS::SecretsManager::Secret" => "secretsmanager:GetSecretValue",
                    _ => continue,
                };
                // Dispatch's QUEUE_URL is the queue it consumes; it only changes visibility there.
                let needed = if *function == "DispatchFunction" && name == "QUEUE_URL" {
                    "sqs:ChangeMessageVisibility"
                } else {
                    needed
                };
                assert!(
                    granted_on(id, needed),
                    "{role} lacks {needed} on {id}, which {function} uses through {name}"
                );
            }
            if name.ends_with("_SECRET_ARN") {
                let stmt = mine
                    .iter()
                    .find(|s| actions(s).contains("secretsmanager:GetSecretValue"))
                    .unwrap_or_else(|| panic!("{role} cannot read {name}"));
                assert_eq!(
                    stmt["Resource"], value,
                    "{role} must read exactly the secret {function} is given in {name}"
                );
            }
        }
        assert!(
            resource(&t, function)["Properties"]
                .get("Policies")
                .is_none(),
            "{function}: SAM Policies would add managed policies with '*' resources; extend {role}"
        );
    }
}

/// DynamoDB operations the SDK offers that the relay could call, as SDK method -> IAM action.
const DYNAMODB_OPERATIONS: &[(&str, &str)] = &[
    ("get_item", "dynamodb:GetItem"),
    ("put_item", "dynamodb:PutItem"),
    ("update_item", "dynamodb:UpdateItem"),
    ("delete_item", "dynamodb:DeleteItem"),
    ("query", "dynamodb:Query"),
    ("scan", "dynamodb:Scan"),
    ("batch_get_item", "dynamodb:BatchGetItem"),
    ("batch_write_item", "dynamodb:BatchWriteItem"),
    ("transact_get_items", "dynamodb:GetItem"),
    ("transact_write_items", "dynamodb:PutItem"),
];

#[test]
fn dispatch_may_call_exactly_the_dynamodb_operations_its_adapters_use() {
    let mut used = BTreeSet::new();
    for file in rust_files(&root().join("shared/src")) {
        let source = std::fs::read_to_string(&file).unwrap();
        if !source.contains("aws_sdk_dynamodb") {
            continue;
        }
        for (method, action) in DYNAMODB_OPERATIONS {
            if source.contains(&format!(".{method}()")) {
                used.insert((*action).to_owned());
            }
        }
    }
    assert!(
        used.contains("dynamodb:PutItem"),
        "no DynamoDB adapter found"
    );
    let t = template();
    let granted_to = |function: &str| -> BTreeSet<String> {
        let role = role_of(&t, function);
        statements(&t)
            .iter()
            .filter(|(owner, _)| *owner == role)
            .flat_map(|(_, s)| actions(s))
            .filter(|a| a.starts_with("dynamodb:"))
            .collect()
    };
    // Dispatch writes and deletes; ledger lookups (`BatchGetItem`) are the watch's (and the CLI's).
    let dispatch = granted_to("DispatchFunction");
    let watch = granted_to("WatchFunction");
    assert_eq!(
        dispatch.union(&watch).cloned().collect::<BTreeSet<_>>(),
        used,
        "the functions' DynamoDB actions differ from the operations the code calls"
    );
    assert_eq!(
        watch,
        BTreeSet::from([
            "dynamodb:GetItem".to_owned(),
            "dynamodb:BatchGetItem".to_owned(),
            "dynamodb:UpdateItem".to_owned(),
            "dynamodb:PutItem".to_owned(),
            "dynamodb:DeleteItem".to_owned(),
        ]),
        "the watch reads, takes the Pinterest sign-ins' refresh lease and keeps the audience ledger"
    );
    // Its one write is the lease, on the pinterest-oauth#{domain} items alone.
    let role = role_of(&t, "WatchFunction");
    let lease = statements(&t)
        .into_iter()
        .filter(|(owner, _)| *owner == role)
        .map(|(_, s)| s)
        .find(|s| actions(s).contains("dynamodb:UpdateItem"))
        .unwrap();
    assert_eq!(
        lease["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0].as_str(),
        Some("pinterest-oauth#*")
    );
    assert_eq!(
        granted_to("IngestFunction"),
        BTreeSet::from(["dynamodb:GetItem".to_owned()]),
        "ingest only reads the registered stores' entries"
    );
}

#[test]
fn the_queue_event_source_reports_batch_item_failures() {
    let t = template();
    let events = resource(&t, "DispatchFunction")["Properties"]["Events"]
        .as_mapping()
        .unwrap();
    let sqs: Vec<&Value> = events
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .collect();
    assert_eq!(sqs.len(), 1, "dispatch needs exactly one SQS event source");
    let props = &sqs[0]["Properties"];
    let types: Vec<&str> = as_list(&props["FunctionResponseTypes"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types, ["ReportBatchItemFailures"]);
    assert!(
        props["ScalingConfig"].get("MaximumConcurrency").is_some(),
        "the event source must bound dispatch's concurrency"
    );
    let env = environment(&t, "DispatchFunction");
    assert_eq!(
        referred_one(&props["Queue"]),
        referred_one(&env["QUEUE_URL"]),
        "dispatch consumes a different queue than its QUEUE_URL"
    );
    assert_eq!(
        referred_one(&props["Queue"]),
        referred_one(&environment(&t, "IngestFunction")["QUEUE_URL"]),
        "dispatch consumes a different queue than ingest sends to"
    );
}

#[test]
fn the_queue_hides_messages_for_six_dispatch_timeouts_and_the_batching_window() {
    let t = template();
    let timeout = number(function_property(&t, "DispatchFunction", "Timeout").unwrap());
    let queue = referred_one(&environment(&t, "DispatchFunction")["QUEUE_URL"]);
    let visibility = number(&resource(&t, &queue)["Properties"]["VisibilityTimeout"]);
    let window = number(&t["Parameters"]["DispatchBatchingWindowSeconds"]["MaxValue"]);
    assert!(
        visibility >= 6 * timeout + window,
        "{queue} VisibilityTimeout {visibility} s is under 6 x the dispatch timeout of {timeout} s + the largest batching window, {window} s"
    );
    let ingest_timeout = number(function_property(&t, "IngestFunction", "Timeout").unwrap());
    assert!(
        ingest_timeout <= 10,
        "ingest must answer Shopify within 5 s; a long timeout only hides hangs"
    );
}

#[test]
fn the_queue_redrives_to_the_dead_letter_queue_after_max_receive_count() {
    let t = template();
    let env = environment(&t, "DispatchFunction");
    let queue = referred_one(&env["QUEUE_URL"]);
    let dlq = referred_one(&env["DEAD_LETTER_QUEUE_URL"]);
    let redrive = &resource(&t, &queue)["Properties"]["RedrivePolicy"];
    assert_eq!(referred_one(&redrive["deadLetterTargetArn"]), dlq);
    let max = number(&redrive["maxReceiveCount"]);
    assert_eq!(max, u64::from(pinrelay::dispatch::QUEUE_MAX_RECEIVES));
    let dispatch_max = number(&env[pinrelay::config::keys::MAX_RECEIVE_COUNT]);
    assert_eq!(dispatch_max, 5, "dispatch dead-letters after 5 receives");
    assert_eq!(
        u64::from(pinrelay::dispatch::DispatchConfig::default().max_receive_count),
        dispatch_max
    );
    assert!(
        dispatch_max < max,
        "MAX_RECEIVE_COUNT must be below the redrive count, or the queue dead-letters silently first"
    );
    // A paused store's messages come back for Pinterest's 7 days within the queue's count: the
    // schedule of a refused token (15 min doubling to 12 h) and of a rate limit (1 min).
    let config = pinrelay::dispatch::DispatchConfig::default();
    for (from, deliveries) in [(config.retry_max, 20), (config.retry_base, 24)] {
        let (mut waited, mut receives) = (std::time::Duration::ZERO, 1u32);
        let event_time = 1_700_000_000;
        while waited < config.max_event_age {
            let now =
                chrono::DateTime::from_timestamp(event_time + waited.as_secs() as i64, 0).unwrap();
            waited += config.pause(receives, from, std::time::Duration::ZERO, event_time, now);
            receives += 1;
        }
        // The README's figures: deliveries until the one that skips the event `expired`.
        assert_eq!(
            receives, deliveries,
            "deliveries to cover 7 days from {from:?}"
        );
        assert!(
            u64::from(receives) + u64::from(config.max_receive_count) < max,
            "{receives} receives to cover 7 days"
        );
    }
    let retention = number(&resource(&t, &dlq)["Properties"]["MessageRetentionPeriod"]);
    assert_eq!(retention, 14 * 24 * 3600, "dead letters are kept 14 days");
    let source_retention = number(&resource(&t, &queue)["Properties"]["MessageRetentionPeriod"]);
    assert!(
        retention > source_retention,
        "a redriven message keeps its age; the DLQ must keep messages longer than the source queue"
    );
}

#[test]
fn no_policy_statement_grants_every_resource_except_the_listed_ones() {
    let t = template();
    let all = statements(&t);
    assert!(!all.is_empty());
    let mut allowed_seen = 0;
    for (owner, s) in &all {
        let star = as_list(&s["Resource"])
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r == "*"));
        assert!(
            s.get("NotResource").is_none() && s.get("NotAction").is_none(),
            "{owner}: NotResource/NotAction grant more than they seem"
        );
        for action in actions(s) {
            assert!(!action.contains('*'), "{owner}: wildcard action {action}");
        }
        if !star {
            continue;
        }
        let sid = s["Sid"].as_str().unwrap_or_default();
        let (_, _, permitted) = STAR_RESOURCE_ALLOWED
            .iter()
            .find(|(o, id, _)| o == owner && *id == sid)
            .unwrap_or_else(|| panic!("{owner} statement {sid:?} grants Resource '*'"));
        let permitted: BTreeSet<String> = permitted.iter().map(|a| (*a).to_owned()).collect();
        assert!(
            actions(s).is_subset(&permitted),
            "{owner} {sid}: only {permitted:?} may use Resource '*'"
        );
        allowed_seen += 1;
    }
    assert_eq!(
        allowed_seen,
        STAR_RESOURCE_ALLOWED.len(),
        "an allowed '*' statement is gone; remove it from STAR_RESOURCE_ALLOWED"
    );
}

#[test]
fn every_alarm_watches_a_metric_the_code_emits() {
    let t = template();
    let names = metric_names();
    let functions = functions_emitting_their_name();
    assert_eq!(
        functions,
        BTreeSet::from([
            "DispatchFunction".to_owned(),
            "IngestFunction".to_owned(),
            "WatchFunction".to_owned()
        ]),
        "each function's metrics must carry its own name (unique per stack) as `Function`"
    );
    let literals = shared_literals();
    let mut pinrelay_alarms = 0;
    for (id, r) in resources(&t) {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &r["Properties"];
        let mut metrics = vec![props.clone()];
        if let Some(list) = props["Metrics"].as_sequence() {
            metrics.extend(
                list.iter()
                    .filter_map(|m| m.get("MetricStat"))
                    .map(|s| s["Metric"].clone()),
            );
        }
        for m in metrics {
            if m["Namespace"].as_str() != Some(pinrelay::metrics::NAMESPACE) {
                continue;
            }
            pinrelay_alarms += 1;
            let name = m["MetricName"].as_str().unwrap();
            assert!(
                names.contains(name),
                "{id:?} watches {name}, which no code emits"
            );
            let mut reason = None;
            for d in as_list(&m["Dimensions"]) {
                let key = d["Name"].as_str().unwrap();
                match key {
                    "Function" => {
                        // `!Ref XFunction`: the function's name, unique to this stack.
                        let referred = referred_one(&d["Value"]);
                        assert!(functions.contains(&referred), "{id:?}: Function={referred}");
                    }
                    "Reason" => {
                        let value = d["Value"].as_str().unwrap();
                        assert!(
                            literals.contains(&format!("\"{value}\"")),
                            "{id:?}: no code emits Reason={value}"
                        );
                        reason = Some(value.to_owned());
                    }
                    other => panic!("{id:?}: the code emits no dimension {other}"),
                }
            }
            assert!(
                pinrelay::metrics::is_published(name, reason.as_deref()),
                "{id:?} watches {name} (Reason {reason:?}), which the EMF sink does not publish"
            );
        }
    }
    assert!(pinrelay_alarms >= 3, "the EMF alarms are missing");
    for required in [
        pinrelay::metrics::names::PINTEREST_AUTH_FAILURES,
        pinrelay::metrics::names::EVENTS_FAILED,
    ] {
        let text = serde_yaml::to_string(&t["Resources"]).unwrap();
        assert!(text.contains(required), "no alarm on {required}");
    }
}

#[test]
fn every_dashboard_metric_is_one_the_code_emits() {
    let t = template();
    let names = metric_names();
    let body = &resource(&t, "Dashboard")["Properties"]["DashboardBody"];
    let (tag, arg) = intrinsic(body).expect("DashboardBody is a !Sub");
    assert_eq!(tag, "Sub");
    let mut text = arg.as_str().unwrap().to_owned();
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').unwrap();
        text.replace_range(start..=end, "PLACEHOLDER");
    }
    let json: serde_json::Value =
        serde_json::from_str(&text).expect("the dashboard body is valid JSON");
    let mut seen = BTreeSet::new();
    let mut queries = Vec::new();
    for widget in json["widgets"].as_array().unwrap() {
        if widget["type"] == "log" {
            let query = widget["properties"]["query"].as_str().unwrap();
            assert!(query.starts_with("SOURCE 'PLACEHOLDER'"), "{query}");
            queries.push(query.to_owned());
            continue;
        }
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if row[0] == pinrelay::metrics::NAMESPACE {
                let name = row[1].as_str().unwrap().to_owned();
                // `${IngestFunction}` or `${DispatchFunction}`: this stack's function, never a
                // fixed name another stack in the account would share.
                assert_eq!(row[2], "Function", "{row:?}");
                assert_eq!(row[3], "PLACEHOLDER", "{row:?}");
                let reason = (row.get(4).and_then(|v| v.as_str()) == Some("Reason"))
                    .then(|| row[5].as_str().unwrap());
                assert!(
                    pinrelay::metrics::is_published(&name, reason),
                    "the dashboard shows {name} (Reason {reason:?}), which is not published"
                );
                seen.insert(name);
            }
            assert!(
                row[0].get("expression").is_none(),
                "metric math or SEARCH over pinrelay metrics: only published metrics exist"
            );
        }
    }
    let unknown: Vec<_> = seen.difference(&names).collect();
    assert!(
        unknown.is_empty(),
        "dashboard metrics no code emits: {unknown:?}"
    );
    for (name, _) in pinrelay::metrics::PUBLISHED {
        assert!(seen.contains(*name), "the dashboard lacks {name}");
    }
    // The detail that is not a metric lives in the logs: outcomes and reasons in the log lines,
    // match quality on the dispatch EMF line.
    for wanted in [
        "outcome",
        pinrelay::metrics::names::MATCH_EMAIL,
        pinrelay::metrics::names::MATCH_CLICK_ID,
    ] {
        assert!(
            queries.iter().any(|q| q.contains(wanted)),
            "no dashboard query reads {wanted}"
        );
    }
}

#[test]
fn tracing_is_off_by_default_and_logs_are_json_with_quiet_system_logs() {
    let t = template();
    assert_eq!(
        t["Parameters"]["XRayTracing"]["Default"].as_str(),
        Some("false")
    );
    let tracing = &t["Globals"]["Function"]["Tracing"];
    let (tag, arg) = intrinsic(tracing).expect("Tracing is an !If on TracingOn");
    assert_eq!(tag, "If");
    assert_eq!(arg[0].as_str(), Some("TracingOn"));
    assert_eq!(arg[2].as_str(), Some("PassThrough"));
    assert_eq!(
        t["Parameters"]["ApplicationLogLevel"]["Default"].as_str(),
        Some("INFO")
    );
    for (function, _) in FUNCTIONS {
        let logging = &resource(&t, function)["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{function}");
        assert_eq!(
            logging["SystemLogLevel"].as_str(),
            Some("WARN"),
            "{function}"
        );
        assert_eq!(
            referred_one(&logging["ApplicationLogLevel"]),
            "ApplicationLogLevel"
        );
        assert_eq!(
            referred_one(&environment(&t, function)["RUST_LOG"]),
            "ApplicationLogLevel",
            "{function}: the code's own filter follows the Lambda log level"
        );
    }
    // The X-Ray statements exist only under TracingOn.
    let text = serde_yaml::to_string(&t["Resources"]).unwrap();
    assert_eq!(text.matches("xray:PutTraceSegments").count(), 3);
    for role in ["IngestRole", "DispatchRole", "WatchRole"] {
        let doc = &resource(&t, role)["Properties"]["Policies"][0]["PolicyDocument"];
        let guarded = as_list(&doc["Statement"]).into_iter().any(|s| {
            intrinsic(s).is_some_and(|(n, arg)| {
                n == "If"
                    && arg[0].as_str() == Some("TracingOn")
                    && arg[1]["Sid"].as_str() == Some("XRay")
            })
        });
        assert!(
            guarded,
            "{role}: the XRay statement must be under TracingOn"
        );
    }
}

#[test]
fn the_webhook_url_output_ends_with_the_ingest_route() {
    let t = template();
    let value = &t["Outputs"]["WebhookUrl"]["Value"];
    let (tag, arg) = intrinsic(value).unwrap();
    assert_eq!(tag, "Sub");
    let text = arg.as_str().unwrap();
    assert!(text.starts_with("${IngestFunctionUrl.FunctionUrl}"));
    // FunctionUrl ends with '/'.
    assert!(
        format!(
            "/{}",
            text.trim_start_matches("${IngestFunctionUrl.FunctionUrl}")
        ) == pinrelay::ingest::WEBHOOK_PATH,
        "WebhookUrl must end with {}",
        pinrelay::ingest::WEBHOOK_PATH
    );
    let url = &resource(&t, "IngestFunction")["Properties"]["FunctionUrlConfig"];
    assert_eq!(url["AuthType"].as_str(), Some("NONE"));
}

#[test]
fn the_functions_are_built_by_cargo_lambda_from_the_workspace() {
    let t = template();
    for (function, dir) in FUNCTIONS {
        let r = resource(&t, function);
        assert_eq!(
            r["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{function} builds binary {binary}, which {dir}/Cargo.toml does not define"
        );
        assert_eq!(
            function_property(&t, function, "Runtime").and_then(Value::as_str),
            Some("provided.al2023")
        );
        assert_eq!(
            function_property(&t, function, "Handler").and_then(Value::as_str),
            Some("bootstrap")
        );
        assert_eq!(
            function_property(&t, function, "CodeUri").and_then(Value::as_str),
            Some(".")
        );
    }
    assert_eq!(
        t["Parameters"]["Architecture"]["Default"].as_str(),
        Some("arm64")
    );
}

#[test]
fn ingest_can_reserve_concurrency_so_a_flood_cannot_starve_dispatch() {
    let t = template();
    let reserved = function_property(&t, "IngestFunction", "ReservedConcurrentExecutions")
        .expect("IngestFunction has ReservedConcurrentExecutions");
    let text = serde_yaml::to_string(reserved).unwrap();
    assert!(text.contains("IngestReservedConcurrency"), "{text}");
    assert!(t["Parameters"]["IngestReservedConcurrency"].is_mapping());
}

#[test]
fn the_watch_runs_on_a_schedule_that_may_invoke_exactly_it() {
    let t = template();
    let schedules = resources(&t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Scheduler::Schedule"))
        .map(|(name, r)| (name.as_str().unwrap_or_default().to_owned(), r))
        .collect::<BTreeMap<_, _>>();
    assert_eq!(
        schedules.keys().map(String::as_str).collect::<Vec<_>>(),
        ["AudienceSchedule", "WatchInvocationSchedule"],
        "the watch's schedule and the audience job's"
    );
    // The audience job: every 15 minutes, the watch function with {"job": "audiences"}, under
    // the same role.
    let audience = &schedules["AudienceSchedule"]["Properties"];
    assert_eq!(
        audience["ScheduleExpression"].as_str(),
        Some("rate(15 minutes)")
    );
    assert_eq!(referred_one(&audience["Target"]["Arn"]), "WatchFunction");
    let input: serde_json::Value =
        serde_json::from_str(audience["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({"job": "audiences"}));
    let props = &schedules["WatchInvocationSchedule"]["Properties"];
    assert_eq!(
        referred_one(&audience["Target"]["RoleArn"]),
        referred_one(&props["Target"]["RoleArn"])
    );
    assert_eq!(referred_one(&props["ScheduleExpression"]), "WatchSchedule");
    assert_eq!(
        t["Parameters"]["WatchSchedule"]["Default"].as_str(),
        Some("rate(1 hour)")
    );
    assert_eq!(referred_one(&props["Target"]["Arn"]), "WatchFunction");
    let role = referred_one(&props["Target"]["RoleArn"]);
    let granted: Vec<(BTreeSet<String>, String)> = statements(&t)
        .into_iter()
        .filter(|(owner, _)| *owner == role)
        .map(|(_, s)| (actions(&s), referred_one(&s["Resource"])))
        .collect();
    assert_eq!(
        granted,
        [(
            BTreeSet::from(["lambda:InvokeFunction".to_owned()]),
            "WatchFunction".to_owned()
        )],
        "{role} may invoke the watch function and nothing else"
    );
    let principal = &resource(&t, &role)["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(
        principal["Principal"]["Service"].as_str(),
        Some("scheduler.amazonaws.com")
    );
    let env = environment(&t, "WatchFunction");
    let url = serde_yaml::to_string(&env[pinrelay::config::keys::WEBHOOK_URL]).unwrap();
    assert!(
        url.contains("${IngestFunctionUrl.FunctionUrl}webhooks/shopify"),
        "the watch compares subscriptions with the stack's own webhook URL: {url}"
    );
    // `!If [CheckoutOnPaid, <paid topics>, <created topics>]`: the topics `pinrelay subscribe`
    // creates for the stack's CheckoutOn.
    let topics = serde_yaml::to_string(&env[pinrelay::config::keys::WATCH_TOPICS]).unwrap();
    for checkout_on in [
        pinrelay::mapping::CheckoutOn::Paid,
        pinrelay::mapping::CheckoutOn::Created,
    ] {
        let wanted = pinrelay::mapping::webhook_topics(checkout_on).join(",");
        assert!(
            topics.contains(&wanted),
            "the watch checks the topics pinrelay subscribe creates: {topics}"
        );
    }
    assert!(topics.contains("CheckoutOnPaid"), "{topics}");
}

#[test]
fn the_watch_alarms_watch_its_metrics_and_say_what_to_do() {
    let t = template();
    for (id, metric) in WATCH_ALARMS {
        let props = &resource(&t, id)["Properties"];
        assert_eq!(props["MetricName"].as_str(), Some(*metric), "{id}");
        let dimension = &as_list(&props["Dimensions"])[0]["Value"];
        assert_eq!(referred_one(dimension), "WatchFunction", "{id}");
        let description = serde_yaml::to_string(&props["AlarmDescription"]).unwrap();
        assert!(
            description.contains("pinrelay ") || description.contains("ShopifyAdminTokenSecret"),
            "{id}'s description must name the command or setting that fixes it: {description}"
        );
    }
    let missing = &resource(&t, "MissingOrdersAlarm")["Properties"];
    assert_eq!(
        (
            number(&missing["EvaluationPeriods"]),
            number(&missing["DatapointsToAlarm"])
        ),
        (2, 2),
        "missing orders page only when two hourly runs in a row see them"
    );
    let subs = &resource(&t, "WebhookSubscriptionsMissingAlarm")["Properties"];
    let text = serde_yaml::to_string(&subs["AlarmDescription"]).unwrap();
    assert!(
        text.contains("pinrelay subscribe") && text.contains("--backfill"),
        "{text}"
    );
}

#[test]
fn every_alarm_has_a_runbook_row_in_the_readme() {
    let t = template();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut alarms = 0;
    for (id, r) in resources(&t) {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        alarms += 1;
        let id = id.as_str().unwrap();
        assert!(
            readme.lines().any(|l| l.starts_with(&format!("| `{id}`"))),
            "README's alarm runbook has no row for {id}"
        );
        assert!(
            r["Properties"]["AlarmDescription"] != Value::Null,
            "{id} has no AlarmDescription"
        );
    }
    assert!(alarms >= 14, "the alarms are missing: {alarms}");
    for (id, _) in WATCH_ALARMS {
        assert!(t["Resources"].get(id).is_some(), "no {id}");
    }
}
