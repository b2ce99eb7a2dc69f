//! The local event source mappings give up the way AWS does: an upload that keeps failing ends
//! in the queue's DLQ through the queue's own redrive policy, and a stream batch that keeps
//! failing is retried, bisected and then described on the on-failure destination, without
//! blocking the shard.

use serde_json::Value;
use snapglow_local::scenarios::producer::like_event;
use snapglow_local::triggers::pipeline::run_until_idle;
use snapglow_local::triggers::{MappingOptions, mappings};
use snapglow_tests::{TestStack, sample_jpeg};
use std::time::Duration;

async fn messages_on(stage: &TestStack, logical_id: &str) -> Vec<Value> {
    snapglow_local::stack::queues::peek(&stage.clients, stage.url(logical_id))
        .await
        .unwrap()
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect()
}

#[tokio::test]
async fn an_upload_that_keeps_failing_ends_in_the_dlq_after_max_receive_count() {
    // GIVEN resize writing to a bucket that does not exist (a transient failure every time), and
    // the queue's visibility timeout cut to 1 s so that redeliveries come quickly
    let stage = TestStack::start().await;
    stage
        .clients
        .sqs
        .set_queue_attributes()
        .queue_url(stage.url("ImageUploadsQueue"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .unwrap();
    let options = MappingOptions {
        environment: vec![("RENDITIONS_BUCKET".into(), "no-such-bucket".into())],
        ..Default::default()
    };
    let log_dir = stage.state_dir("mappings-dlq");
    let mut mappings = mappings(&stage.stack, &stage.binaries(), &log_dir, &options)
        .await
        .unwrap();
    let key = stage
        .issue_and_upload("ann", "doomed", sample_jpeg(64, 48))
        .await;
    let key = key.as_str();
    // S3 notifies asynchronously: idle before the notification arrives would end the run early
    stage.wait_for_messages("ImageUploadsQueue", 2).await; // the s3:TestEvent and the upload

    // WHEN the mappings run until nothing is left in flight
    let stats = run_until_idle(&mut mappings, Duration::from_secs(120))
        .await
        .unwrap();

    // THEN the upload was received maxReceiveCount (5) times, then moved to the DLQ, not lost.
    // (Each receive failed an invocation, but one receive whose answer an overloaded client
    // lost still counts at SQS, as on AWS: the queue's own count is the one to check.)
    assert!(stats.failed_invocations >= 4, "{stats:?}");
    let received = stage.receive("ImageUploadsDLQ", 1).await;
    let count = received[0]
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned();
    // The DLQ's own receive above counts one more.
    assert_eq!(count.as_deref(), Some("6"), "{received:?}");
    let dead: Vec<Value> = received
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    // (S3 form-urlencodes the key in notifications; the emulator encodes the slashes too.)
    let noted = dead[0]["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .unwrap();
    assert_eq!(resize::upload::decode_key(noted).as_deref(), Some(key));
}

#[tokio::test]
async fn a_stream_batch_that_keeps_failing_is_given_up_on_and_described_on_the_destination() {
    // GIVEN a stack whose notifier mapping gives up after 5 retries (the template retries until
    // records expire; a limit is how AWS reaches the destination, which this test is about),
    // the notifier writing to a table that does not exist, and three records on the stream
    let root = snapglow_local::stack::project::project_root();
    let text = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let limited = text.replace("MaximumRetryAttempts: -1", "MaximumRetryAttempts: 5");
    let template =
        snapglow_local::template::Template::parse(&limited).expect("the template parses");
    let stage = TestStack::start_from(&template).await;
    let options = MappingOptions {
        environment: vec![("NOTIFICATIONS_TABLE".into(), "no-such-table".into())],
        only_streams: true,
        ..Default::default()
    };
    let log_dir = stage.state_dir("mappings-destination");
    let mut mappings = mappings(&stage.stack, &stage.binaries(), &log_dir, &options)
        .await
        .unwrap();
    mappings.retain(|m| m.name().starts_with("NotifierFunction"));
    let events: Vec<_> = ["ann", "bob", "cy"]
        .iter()
        .map(|user| {
            like_event(
                "img",
                user,
                true,
                None,
                snapglow::contracts::Timestamp::now(),
            )
        })
        .collect();
    stage.publish(&events).await;

    // WHEN the mapping runs until it has nothing left to do, logging as `cargo local` does
    let terminal = snapglow_local::logging::Captured::default();
    let logging =
        tracing::subscriber::set_default(snapglow_local::logging::subscriber(terminal.clone()));
    let stats = run_until_idle(&mut mappings, Duration::from_secs(120))
        .await
        .unwrap();
    drop(logging);

    // THEN every record was retried MaximumRetryAttempts (5) times after bisecting, then given
    // up on: the shard moves on, and the destination says which records, as AWS does
    assert_eq!(stats.given_up, 3, "{stats:?}");
    let failures = messages_on(&stage, "StreamFailuresQueue").await;
    let described: u64 = failures
        .iter()
        .map(|f| f["KinesisBatchInfo"]["batchSize"].as_u64().unwrap())
        .sum();
    assert_eq!(described, 3, "{failures:#?}");
    for failure in &failures {
        assert_eq!(
            failure["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(failure["requestContext"]["approximateInvokeCount"], 6);
        let info = &failure["KinesisBatchInfo"];
        assert!(info["shardId"].as_str().unwrap().starts_with("shardId-"));
        assert!(info["startSequenceNumber"].is_string() && info["endSequenceNumber"].is_string());
        assert_eq!(info["streamArn"], stage.arn("ImageSocialEvents"));
    }
    // AND the terminal said so, with the mapping's name, without RUST_LOG being set
    let printed = terminal.text();
    assert!(
        printed.contains("WARN")
            && printed.contains("giving up on records")
            && printed.contains("NotifierFunction"),
        "{printed}"
    );
    // AND nothing stays in flight: a second run finds no work
    let again = run_until_idle(&mut mappings, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(again.records, 0);
}
