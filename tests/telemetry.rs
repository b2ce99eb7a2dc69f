//! What operators get from a real invocation: one Embedded Metric Format line per batch in the
//! function's log, and the invocation's X-Ray trace header on every AWS request it makes (what
//! X-Ray and Lambda's recursive-loop detection follow).

use serde_json::Value;
use snapglow_local::faults::ThrottlingProxy;
use snapglow_local::lambda::LogSink;
use snapglow_tests::{TestStack, fixture, invoke_json};

#[tokio::test]
async fn a_batch_leaves_metrics_in_its_log_and_its_trace_header_on_dynamodb_requests() {
    // GIVEN the notifier, its DynamoDB traffic passing through a recording proxy, its log in a file
    let stage = TestStack::start().await;
    let proxy = ThrottlingProxy::start(&stage.stack.endpoint_url, 0, 1)
        .await
        .expect("the proxy starts");
    let log = stage.state_dir("telemetry").join("notifier.log");
    let _ = std::fs::remove_file(&log);
    let mut spec = stage.spec("notifier");
    spec.log = LogSink::File(log.clone());
    spec.environment
        .push(("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.url()));
    let mut notifier = stage.run(spec).await;

    // WHEN it handles the sample ImagePublished batch, then the same batch again
    let event: Value = serde_json::from_slice(&fixture("kinesis/image-published.json")).unwrap();
    invoke_json(&mut notifier, &event).await;
    let first_trace = notifier
        .last_trace_id()
        .expect("the runtime API sent a trace id");
    invoke_json(&mut notifier, &event).await;

    // THEN each batch printed one EMF document naming its metrics, the second counting a duplicate
    let text = std::fs::read_to_string(&log).expect("the function logged");
    let documents: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(documents.len(), 2, "one EMF line per batch:\n{text}");
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "snapglow");
        assert_eq!(directive["Dimensions"], serde_json::json!([["function"]]));
        assert_eq!(document["function"], notifier.name());
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(!document[name].is_null(), "{name} declared without a value");
        }
        assert!(
            document["EndToEndLatency"]
                .as_array()
                .is_some_and(|v| v.len() == 1)
        );
    }
    assert_eq!(documents[0]["RecordsProcessed"], 1);
    assert_eq!(documents[1]["RecordsProcessed"], 0);
    assert_eq!(
        documents[1]["DuplicatesSuppressed"], 1,
        "a redelivery is counted as suppressed"
    );

    // AND the first invocation's DynamoDB requests carried its trace root
    let root = first_trace.split(';').next().unwrap().to_owned();
    let traces = proxy.trace_ids();
    assert!(
        traces.iter().any(|t| t.contains(&root)),
        "no DynamoDB request carried {root}: {traces:?} ({} requests forwarded)",
        proxy.forwarded()
    );
}

#[tokio::test]
async fn the_api_and_the_relay_leave_metrics_in_their_logs() {
    // GIVEN the API and the relay, each logging to its own file
    let stage = TestStack::start().await;
    let mut logs = Vec::new();
    let mut functions = Vec::new();
    for name in ["api", "relay"] {
        let log = stage.state_dir("telemetry").join(format!("{name}.log"));
        let _ = std::fs::remove_file(&log);
        let mut spec = stage.spec(name);
        spec.log = LogSink::File(log.clone());
        logs.push(log);
        functions.push(stage.run(spec).await);
    }

    // WHEN the API answers a request for an image that does not exist, and the relay publishes
    // the sample change
    let request: Value = serde_json::from_slice(&fixture("http/get-image.json")).unwrap();
    invoke_json(&mut functions[0], &request).await;
    let change: Value = serde_json::from_slice(&fixture("dynamodb/like-recorded.json")).unwrap();
    invoke_json(&mut functions[1], &change).await;

    // THEN each printed an EMF document: the API its latency and a 4xx, the relay one published
    let documents = |log: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    };
    let api = documents(&logs[0]);
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(
        (
            api[0]["Responses4xx"].as_f64(),
            api[0]["Responses5xx"].as_f64()
        ),
        (Some(1.0), Some(0.0))
    );
    assert!(api[0]["Latency"].as_f64().is_some());
    let relay = documents(&logs[1]);
    assert_eq!(relay.len(), 1, "{relay:?}");
    assert_eq!(relay[0]["RecordsProcessed"], 1);
}
