//! What every function tells operators.
//!
//! - Logs: JSON lines when Lambda's log format is JSON (template.yaml sets it), level from
//!   `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`; the runtime's span adds the request id and the X-Ray
//!   trace id to every line, and the batch line says whether this was a cold start.
//! - Metrics: one CloudWatch Embedded Metric Format (EMF) line per batch, on stdout, in the
//!   namespace `METRICS_NAMESPACE` (default `snapglow`) with the dimension `function`.
//!   CloudWatch turns these log lines into metrics: no PutMetricData call, no extra latency.
//! - Tracing: the runtime sets `_X_AMZN_TRACE_ID` for each invocation and the AWS SDK sends
//!   it on every request, which is what X-Ray and Lambda's recursive-loop detection follow.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch::BatchReport;

pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

static WARM: AtomicBool = AtomicBool::new(false);

/// True for the first batch of this execution environment only.
pub fn cold_start() -> bool {
    !WARM.swap(true, Ordering::Relaxed)
}

/// EMF allows at most 100 values per metric in one line.
const MAX_VALUES: usize = 100;

/// The batch's metrics as EMF lines (more than one when a latency list exceeds 100 values).
pub fn batch_metric_lines(
    namespace: &str,
    function: &str,
    report: &BatchReport,
    timestamp_ms: i64,
) -> Vec<String> {
    let counts = [
        ("RecordsProcessed", report.done),
        ("RecordsSkipped", report.skipped),
        ("DuplicatesSuppressed", report.duplicates),
        ("RecordsQuarantined", report.quarantined),
        ("RecordsFailed", report.failed + report.not_started),
    ];
    let end_to_end: Vec<&[u64]> = report.end_to_end_ms.chunks(MAX_VALUES).collect();
    let record_ms: Vec<&[u64]> = report.record_ms.chunks(MAX_VALUES).collect();
    let lines = end_to_end.len().max(record_ms.len()).max(1);
    (0..lines)
        .map(|line| {
            let mut definitions = Vec::new();
            let mut document = serde_json::Map::new();
            document.insert("function".into(), json!(function));
            if line == 0 {
                for (name, value) in counts {
                    definitions.push(json!({ "Name": name, "Unit": "Count" }));
                    document.insert(name.into(), json!(value));
                }
            }
            for (name, chunks) in [
                ("EndToEndLatency", &end_to_end),
                ("RecordDuration", &record_ms),
            ] {
                if let Some(values) = chunks.get(line) {
                    definitions.push(json!({ "Name": name, "Unit": "Milliseconds" }));
                    document.insert(name.into(), json!(values));
                }
            }
            document.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["function"]],
                        "Metrics": definitions,
                    }]
                }),
            );
            Value::Object(document).to_string()
        })
        .collect()
}

/// Prints the batch's EMF lines to stdout, where Lambda's log capture picks them up. Outside
/// a Lambda environment (no `AWS_LAMBDA_FUNCTION_NAME`: a benchmark or a test calling the
/// handler code directly) nothing reads them, so nothing is printed.
pub fn emit_batch_metrics(function: &str, report: &BatchReport) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return;
    }
    let namespace = std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "snapglow".into());
    let now_ms = crate::contracts::Timestamp::now().millis();
    for line in batch_metric_lines(&namespace, function, report, now_ms) {
        println!("{line}");
    }
}

/// An error and its causes on one line, `outer: cause: root cause`, for log lines (which print
/// an error alone, never its sources). A cause whose text the outer message already ends with
/// (SDK errors repeat theirs) is printed once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let next = inner.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = inner.source();
    }
    text
}

/// One request's metrics as an EMF line: `values` are (name, unit, value) under the
/// `function` dimension. Printed inside Lambda only, as [`emit_batch_metrics`].
pub fn emit_metrics(function: &str, values: &[(&str, &str, f64)]) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return;
    }
    let namespace = std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "snapglow".into());
    println!(
        "{}",
        metric_line(
            &namespace,
            function,
            values,
            crate::contracts::Timestamp::now().millis()
        )
    );
}

pub fn metric_line(
    namespace: &str,
    function: &str,
    values: &[(&str, &str, f64)],
    timestamp_ms: i64,
) -> String {
    let mut document = serde_json::Map::new();
    document.insert("function".into(), json!(function));
    let mut definitions = Vec::new();
    for (name, unit, value) in values {
        definitions.push(json!({ "Name": name, "Unit": unit }));
        document.insert((*name).into(), json!(value));
    }
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{ "Namespace": namespace, "Dimensions": [["function"]], "Metrics": definitions }]
        }),
    );
    Value::Object(document).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_line_names_its_metrics_under_the_function_dimension() {
        let line: serde_json::Value = serde_json::from_str(&super::metric_line(
            "snapglow",
            "api",
            &[
                ("Latency", "Milliseconds", 12.0),
                ("Errors5xx", "Count", 0.0),
            ],
            1,
        ))
        .unwrap();
        assert_eq!(line["Latency"], 12.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "Errors5xx"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "function"
        );
    }

    use super::*;

    fn report(latencies: usize) -> BatchReport {
        BatchReport {
            done: 7,
            skipped: 1,
            duplicates: 2,
            quarantined: 1,
            failed: 1,
            not_started: 2,
            end_to_end_ms: (0..latencies as u64).collect(),
            record_ms: vec![3, 4],
            requests: 0,
            fatal: None,
        }
    }

    #[test]
    fn a_batch_is_one_emf_document_cloudwatch_accepts() {
        // GIVEN a settled batch
        let lines = batch_metric_lines(
            "snapglow",
            "snapglow-like-counter",
            &report(3),
            1_700_000_000_000,
        );
        // THEN one line whose every declared metric has a value at the top level
        assert_eq!(lines.len(), 1);
        let document: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], "snapglow");
        assert_eq!(directive["Dimensions"], json!([["function"]]));
        assert_eq!(document["function"], "snapglow-like-counter");
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            declared,
            [
                "RecordsProcessed",
                "RecordsSkipped",
                "DuplicatesSuppressed",
                "RecordsQuarantined",
                "RecordsFailed",
                "EndToEndLatency",
                "RecordDuration"
            ]
        );
        for name in declared {
            assert!(!document[name].is_null(), "{name} has no value");
        }
        assert_eq!(document["RecordsFailed"], 3, "failed + not started");
        assert_eq!(document["DuplicatesSuppressed"], 2);
        assert_eq!(document["EndToEndLatency"], json!([0, 1, 2]));
        assert_eq!(directive["Metrics"][5]["Unit"], "Milliseconds");
    }

    #[test]
    fn more_than_100_values_are_split_and_counts_are_not_repeated() {
        let lines = batch_metric_lines("ns", "f", &report(250), 0);
        assert_eq!(lines.len(), 3);
        let documents: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let sizes: Vec<usize> = documents
            .iter()
            .map(|d| d["EndToEndLatency"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(
            documents[1]["RecordsProcessed"].is_null(),
            "counts only once per batch"
        );
        assert!(documents[2]["RecordDuration"].is_null());
    }

    #[test]
    fn only_the_first_batch_of_an_environment_is_a_cold_start() {
        let first = cold_start();
        assert!(!cold_start());
        // (Another test of this process may have been first; what matters is that it flips.)
        let _ = first;
    }
}
