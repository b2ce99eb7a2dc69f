//! Fire drills at a small size: the stream's consumers crash mid-batch, are stopped while a
//! backlog builds, meet a throttling DynamoDB and poison records, and finally replay the whole
//! stream; after each, every like count and every owner's inbox must equal the ground truth.
//! The same drills run larger in `make bench` (bench/results/fire-drills.md).

use snapglow_local::scenarios::drills::{DrillReport, DrillStage};
use snapglow_tests::TestStack;

fn show(report: &DrillReport) {
    eprintln!(
        "{}\n{}",
        DrillReport::MARKDOWN_HEADER,
        report.markdown_row()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_consumers_survive_crashes_throttling_poison_and_replay() {
    // GIVEN the stack of template.yaml and both stream consumers' real binaries
    let test = TestStack::start().await;
    let mut stage = DrillStage::new(
        test.stack.clone(),
        &test.binaries(),
        &test.state_dir("drills"),
    )
    .await
    .expect("the drill stage starts");

    // WHEN consumers die in a third of their invocations (a small run has few batches), the runner stops after one round while half of
    // the events are still to come, and a new runner starts from the saved checkpoints
    let crash = stage
        .crash_and_catch_up(12, 240, 33)
        .await
        .expect("the drill runs");
    show(&crash);
    // THEN every count and notification is exact, and the backlog was delivered
    assert!(crash.verdict.holds(), "{:#?}", crash.verdict);
    assert!(crash.crashes > 0, "the drill must actually crash something");
    assert!(
        crash.duplicates_absorbed > 0,
        "crashes and relay retries cause redeliveries"
    );
    assert_eq!(crash.given_up, 0);

    // WHEN DynamoDB throttles 10% of requests (each throttle costs the
    // SDK's backoff, up to a second), 10% of invocations crash, and two poison
    // records sit mid-shard
    let throttled = stage
        .throttling_and_poison(8, 200, 10, 10)
        .await
        .expect("the drill runs");
    show(&throttled);
    // THEN nothing is lost or doubled, and each consumer quarantined each poison record
    assert!(throttled.verdict.holds(), "{:#?}", throttled.verdict);
    assert!(throttled.throttled_requests > 0);
    assert!(
        throttled.quarantined >= 2 * 2,
        "both consumers quarantine both poison records"
    );
    assert_eq!(throttled.given_up, 0, "the shard is never given up on");

    // WHEN every failure shape AWS documents for DynamoDB and Kinesis answers 10% of the
    // requests it fits (canceled transactions with and without reasons, UnprocessedKeys,
    // ThrottlingException, 500s, hangs past the attempt timeout, per-record PutRecords
    // failures, KMS throttling), 10% of invocations crash, and two poison records sit mid-shard
    let wire = stage
        .wire_faults_and_crashes(8, 200, 10, 10)
        .await
        .expect("the drill runs");
    show(&wire);
    // THEN nothing is lost, doubled or left kept, and only the poison is quarantined
    assert!(wire.verdict.holds(), "{:#?}", wire.verdict);
    assert!(
        wire.injected.len() >= 3,
        "several shapes must actually be injected: {:?}",
        wire.injected
    );
    assert!(
        wire.quarantined >= 2 * 2,
        "each consumer quarantines each poison record"
    );
    assert_eq!(
        wire.quarantined_reasons.keys().collect::<Vec<_>>(),
        ["malformed_envelope"],
        "the quarantine holds only the planted poison"
    );
    assert_eq!(wire.given_up, 0);

    // WHEN the stream's readers are down for longer than the stream keeps records (shortened
    // to 3 s), then the outbox is replayed
    let (outage, during) = stage
        .outage_past_retention(4, 60, std::time::Duration::from_secs(3))
        .await
        .expect("the drill runs");
    show(&outage);
    // THEN the missed records expired unread and the counts were wrong, as on AWS; after the
    // replay every count and notification is exact again, and nothing is kept early
    assert!(outage.expired > 0, "{outage:?}");
    assert!(
        !during.holds(),
        "the outage must cost something: {during:?}"
    );
    assert!(outage.verdict.holds(), "{:#?}", outage.verdict);

    // WHEN both mappings replay the stream from TRIM_HORIZON
    let replay = stage.replay().await.expect("the drill runs");
    show(&replay);
    // THEN every record is delivered again and nothing changes
    assert!(replay.verdict.holds(), "{:#?}", replay.verdict);
    assert!(replay.deliveries >= 2 * (stage.truth.distinct_events + stage.truth.poison_sent));
    assert_eq!(replay.failed_invocations, 0);
}
