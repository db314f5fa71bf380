//! Metrics: CloudWatch Embedded Metric Format (EMF) lines on stdout for the Lambdas, in-memory
//! counters for `pinrelay serve`. Metric names of both functions live here, once.
//!
//! CloudWatch bills every stored metric (name + dimension values) monthly, so the EMF sink stores
//! only the few in [`PUBLISHED`], the ones an alarm watches. Every other count is recorded in
//! memory for `serve`, rides along as a plain field of an EMF line that has a published metric
//! (queryable with Logs Insights, not stored as a metric), or is left to the function's log line
//! for the same webhook or event, which carries its outcome and reason.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "pinrelay";

/// Metric names (the alarms and dashboard in `template.yaml` refer to these strings).
pub mod names {
    /// Webhook requests that reached ingest.
    pub const WEBHOOKS_RECEIVED: &str = "WebhooksReceived";
    /// Webhook requests answered non-2xx (dimension `Reason`).
    pub const WEBHOOKS_REJECTED: &str = "WebhooksRejected";
    /// Webhooks stored in the queue.
    pub const WEBHOOKS_ENQUEUED: &str = "WebhooksEnqueued";
    /// Browser events from the storefront pixel stored in the queue.
    pub const BROWSER_EVENTS_ENQUEUED: &str = "BrowserEventsEnqueued";
    /// Time to store a webhook in the queue, milliseconds.
    pub const ENQUEUE_LATENCY: &str = "EnqueueLatency";
    /// Events included in a Pinterest request.
    pub const EVENTS_SENT: &str = "EventsSent";
    /// Events Pinterest reported as processed.
    pub const EVENTS_PROCESSED: &str = "EventsProcessed";
    /// Events Pinterest reported as failed (dead-lettered).
    pub const EVENTS_FAILED: &str = "EventsFailed";
    /// Events already sent before (idempotency hit).
    pub const EVENTS_DEDUPLICATED: &str = "EventsDeduplicated";
    /// Webhooks that send nothing (dimension `Reason`).
    pub const EVENTS_SKIPPED: &str = "EventsSkipped";
    /// Messages handed back to the queue for a later attempt.
    pub const EVENTS_RETRIED: &str = "EventsRetried";
    /// Messages moved to the dead-letter queue (dimension `Reason`).
    pub const EVENTS_DEAD_LETTERED: &str = "EventsDeadLettered";
    /// Events sent more than an hour after they happened (Pinterest counts them as offline).
    pub const EVENTS_LATE: &str = "EventsLate";
    /// Deliveries of an event in doubt, held (nothing sent; its dead letter waits for a human).
    pub const EVENTS_HELD_IN_DOUBT: &str = "EventsHeldInDoubt";
    /// Events never sent that grew too old for Pinterest (over 7 days): skipped, and alarmed.
    pub const EVENTS_EXPIRED: &str = "EventsExpired";
    /// Compliance webhooks handled.
    pub const COMPLIANCE_HANDLED: &str = "ComplianceHandled";
    /// Pinterest refused the access token (401/403): a human must act.
    pub const PINTEREST_AUTH_FAILURES: &str = "PinterestAuthFailures";
    /// Pinterest request latency, milliseconds.
    pub const PINTEREST_LATENCY: &str = "PinterestLatency";
    /// Sent events with a hashed email.
    pub const MATCH_EMAIL: &str = "MatchEmail";
    /// Sent events with a hashed phone.
    pub const MATCH_PHONE: &str = "MatchPhone";
    /// Sent events with a Pinterest click id.
    pub const MATCH_CLICK_ID: &str = "MatchClickId";
    /// Sent events with both IP address and user agent.
    pub const MATCH_IP_UA: &str = "MatchIpUserAgent";
    /// Sent events with a hashed external id.
    pub const MATCH_EXTERNAL_ID: &str = "MatchExternalId";
    /// Browser checkouts recorded as shopper profiles.
    pub const PROFILES_RECORDED: &str = "ProfilesRecorded";
    /// Order checkouts that gained a click id, IP or user agent from a profile.
    pub const ORDERS_ENRICHED: &str = "OrdersEnriched";
    /// `CHECKOUT_EVENT_ID=shopify_event`: order checkouts sent with the order id for want of a
    /// matching pixel record.
    pub const EVENT_ID_FALLBACKS: &str = "CheckoutEventIdFallbacks";
    /// Browser events whose pixel reported settings other than the relay's.
    pub const PIXEL_SETTINGS_DRIFT: &str = "PixelSettingsDrift";
    /// Watched webhook topics without a subscription to the relay (the watch, hourly).
    pub const WEBHOOK_SUBSCRIPTIONS_MISSING: &str = "WebhookSubscriptionsMissing";
    /// Recent orders the relay has no trace of (the watch).
    pub const ORDERS_MISSING: &str = "OrdersMissing";
    /// Recent orders the watch checked against the ledger.
    pub const ORDERS_CHECKED: &str = "OrdersChecked";
    /// (sent + skipped by rule) / orders checked, in percent (the watch).
    pub const RECONCILE_ACCURACY: &str = "ReconcileAccuracy";
    /// 1 for a watched store that dispatch paused within the lookback (its Pinterest token
    /// refused, or rate-limited), else 0: the `Sum` counts paused stores (the watch).
    pub const STORES_PAUSED: &str = "StoresPaused";
    /// Stores whose customer-list sync failed in the audience job's run (every 15 minutes): the
    /// `Maximum` is alarmed.
    pub const AUDIENCE_SYNC_FAILURES: &str = "AudienceSyncFailures";
}

/// The metrics the EMF sink stores in CloudWatch, as (name, `Reason` dimension value): `None`
/// is the metric with the `Function` dimension alone. Thirteen metrics, $3.90 a month; each is watched
/// by an alarm in `template.yaml` or, for the watch's `OrdersChecked` and `ReconcileAccuracy`
/// (one value an hour), drawn on the dashboard beside the alarmed `OrdersMissing`
/// (`tests/it/template.rs` checks that alarms and dashboard use only these).
pub const PUBLISHED: &[(&str, Option<&str>)] = &[
    (names::WEBHOOKS_REJECTED, Some("bad_signature")),
    (names::WEBHOOKS_REJECTED, Some("queue_unavailable")),
    (names::EVENTS_SENT, None),
    (names::EVENTS_FAILED, None),
    (names::PINTEREST_AUTH_FAILURES, None),
    (names::EVENTS_EXPIRED, None),
    (names::EVENTS_DEAD_LETTERED, Some("in_doubt")),
    (names::WEBHOOK_SUBSCRIPTIONS_MISSING, None),
    (names::ORDERS_MISSING, None),
    (names::ORDERS_CHECKED, None),
    (names::RECONCILE_ACCURACY, None),
    (names::STORES_PAUSED, None),
    (names::AUDIENCE_SYNC_FAILURES, None),
];

/// Whether the EMF sink stores `name` under this `Reason` as a CloudWatch metric.
pub fn is_published(name: &str, reason: Option<&str>) -> bool {
    PUBLISHED.iter().any(|(n, r)| *n == name && *r == reason)
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// A percentage, 0 to 100.
    Percent,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

#[derive(Clone)]
enum Sink {
    Emf(Arc<Mutex<Box<dyn Write + Send>>>),
    Memory(Arc<Mutex<BTreeMap<String, f64>>>),
}

/// The variable in which the Lambda runtime gives a function its own name. The functions read it
/// (`config::var`) and pass it to [`function_dimension`]; this module reads no environment.
pub const LAMBDA_FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The `Function` dimension of a Lambda's metrics: its own name (`lambda_name`, the value of
/// [`LAMBDA_FUNCTION_NAME_VAR`], set by the Lambda runtime and unique per stack, so two stacks in
/// one account and region never share alarm metrics), else `fallback`.
pub fn function_dimension(lambda_name: Option<String>, fallback: &str) -> String {
    lambda_name.unwrap_or_else(|| fallback.to_owned())
}

/// Records metrics for one function (its Lambda name, or `serve`).
#[derive(Clone)]
pub struct Metrics {
    function: Arc<str>,
    sink: Sink,
}

impl Metrics {
    /// EMF lines on stdout, where the Lambda runtime ships them to CloudWatch Logs.
    pub fn emf(function: &str) -> Self {
        Self::emf_to(function, Box::new(std::io::stdout()))
    }

    /// EMF lines to any writer (tests).
    pub fn emf_to(function: &str, writer: Box<dyn Write + Send>) -> Self {
        Self {
            function: function.into(),
            sink: Sink::Emf(Arc::new(Mutex::new(writer))),
        }
    }

    /// Totals kept in memory (`pinrelay serve`, tests); read them with [`Metrics::snapshot`].
    pub fn in_memory(function: &str) -> Self {
        Self {
            function: function.into(),
            sink: Sink::Memory(Arc::default()),
        }
    }

    /// Records values under an optional `Reason` dimension. Zero counts are left out. An EMF sink
    /// writes a line only when a value is [`PUBLISHED`]; the other values ride along on it as
    /// plain fields.
    pub fn record(&self, reason: Option<&str>, values: &[(&'static str, f64, Unit)]) {
        let values: Vec<_> = values
            .iter()
            .filter(|(_, v, unit)| *v != 0.0 || *unit != Unit::Count)
            .copied()
            .collect();
        self.write(reason, &values);
    }

    /// Records readings without a dimension, zero counts included: a periodic check (the watch)
    /// reports 0 as a value, so its graphs and alarms see the check ran.
    pub fn gauges(&self, values: &[(&'static str, f64, Unit)]) {
        self.write(None, values);
    }

    fn write(&self, reason: Option<&str>, values: &[(&'static str, f64, Unit)]) {
        if values.is_empty() {
            return;
        }
        match &self.sink {
            Sink::Emf(writer) => {
                let published: Vec<_> = values
                    .iter()
                    .filter(|(name, _, _)| is_published(name, reason))
                    .collect();
                if published.is_empty() {
                    return;
                }
                let mut dimensions = vec!["Function"];
                let mut doc = Map::new();
                doc.insert("Function".into(), json!(&*self.function));
                if let Some(reason) = reason {
                    dimensions.push("Reason");
                    doc.insert("Reason".into(), json!(reason));
                }
                let defs: Vec<Value> = published
                    .iter()
                    .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect();
                for (name, value, _) in values {
                    doc.insert((*name).into(), json!(value));
                }
                doc.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": Utc::now().timestamp_millis(),
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [dimensions],
                            "Metrics": defs,
                        }]
                    }),
                );
                if let Ok(mut w) = writer.lock() {
                    // Metrics are best effort: a closed stdout must not fail a webhook.
                    let _ = writeln!(w, "{}", Value::Object(doc));
                }
            }
            Sink::Memory(totals) => {
                if let Ok(mut totals) = totals.lock() {
                    for (name, value, _) in values {
                        let key = match reason {
                            Some(r) => format!("{name}{{Reason={r}}}"),
                            None => (*name).to_owned(),
                        };
                        *totals.entry(key).or_default() += value;
                    }
                }
            }
        }
    }

    /// Records a single count.
    pub fn count(&self, name: &'static str, reason: Option<&str>, n: u64) {
        self.record(reason, &[(name, n as f64, Unit::Count)]);
    }

    /// In-memory totals (`Name` or `Name{Reason=r}`); empty for EMF sinks.
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        match &self.sink {
            Sink::Memory(totals) => totals.lock().map(|t| t.clone()).unwrap_or_default(),
            Sink::Emf(_) => BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_valid_emf_with_reason_dimension() {
        let buf = Buf::default();
        let m = Metrics::emf_to("ingest", Box::new(buf.clone()));
        m.count(names::WEBHOOKS_REJECTED, Some("bad_signature"), 1);
        let line = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let doc: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(doc["WebhooksRejected"], 1.0);
        assert_eq!(doc["Reason"], "bad_signature");
        assert_eq!(doc["Function"], "ingest");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "pinrelay");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Function", "Reason"])
        );
    }

    #[test]
    fn emf_stores_only_published_metrics_and_carries_the_rest_as_fields() {
        let buf = Buf::default();
        let m = Metrics::emf_to("dispatch", Box::new(buf.clone()));
        m.count(names::WEBHOOKS_RECEIVED, None, 1);
        m.count(names::EVENTS_SKIPPED, Some("test_order"), 2);
        m.record(
            None,
            &[
                (names::EVENTS_SENT, 3.0, Unit::Count),
                (names::EVENTS_DEDUPLICATED, 1.0, Unit::Count),
            ],
        );
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "unpublished-only records write nothing: {text}"
        );
        let doc: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(doc["EventsSent"], 3.0);
        assert_eq!(doc["EventsDeduplicated"], 1.0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "EventsSent", "Unit": "Count"}])
        );
    }

    #[test]
    fn a_reason_is_published_only_where_listed() {
        assert!(is_published(
            names::WEBHOOKS_REJECTED,
            Some("bad_signature")
        ));
        assert!(!is_published(names::WEBHOOKS_REJECTED, Some("not_found")));
        assert!(!is_published(names::WEBHOOKS_REJECTED, None));
        assert!(is_published(names::EVENTS_SENT, None));
    }

    #[test]
    fn the_function_dimension_is_the_lambda_name_else_the_fallback() {
        assert_eq!(
            function_dimension(Some("stack-IngestFunction-AbC".into()), "ingest"),
            "stack-IngestFunction-AbC"
        );
        assert_eq!(function_dimension(None, "ingest"), "ingest");
    }

    #[test]
    fn memory_sink_sums_by_name_and_reason() {
        let m = Metrics::in_memory("serve");
        m.count(names::EVENTS_SKIPPED, Some("test_order"), 2);
        m.count(names::EVENTS_SKIPPED, Some("test_order"), 1);
        m.count(names::EVENTS_SENT, None, 0);
        let s = m.snapshot();
        assert_eq!(s["EventsSkipped{Reason=test_order}"], 3.0);
        assert!(!s.contains_key("EventsSent"));
    }
}
