//! The exact JSON answered to the event source mapping, for every way a record can end.
//! The quarantine here is in memory: these are tests of the pure batch logic.

use super::*;
use crate::testing::{MemoryQuarantine, kinesis_event, sqs_event};
use serde_json::json;
use std::cell::RefCell;

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("bad input")]
    Bad,
    #[error("throttled")]
    Throttled,
}

impl Classify for TestError {
    fn class(&self) -> ErrorClass {
        match self {
            TestError::Bad => ErrorClass::Permanent,
            TestError::Throttled => ErrorClass::Transient,
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            TestError::Bad => "bad_input",
            TestError::Throttled => "throttled",
        }
    }
}

/// Each body says what the handler does with it: ok, skip, bad, throttle or panic.
async fn behave(body: &str) -> Result<Outcome, TestError> {
    match body {
        "ok" => Ok(Outcome::Done),
        "skip" => Ok(Outcome::Skipped("not for us".into())),
        "bad" => Err(TestError::Bad),
        "throttle" => Err(TestError::Throttled),
        "panic" => panic!("bug in handler"),
        other => unreachable!("unknown test body {other}"),
    }
}

fn ctx(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
    BatchContext::new(
        "test-fn",
        Deadline::after(std::time::Duration::from_secs(30)),
        std::time::Duration::from_millis(10),
        quarantine,
    )
}

async fn run_sqs(
    queue: &str,
    bodies: &[&str],
    quarantine: &MemoryQuarantine,
) -> (serde_json::Value, BatchReport, Vec<String>) {
    let seen = RefCell::new(Vec::new());
    let (response, report) = process_sqs(sqs_event(queue, bodies), &ctx(quarantine), |message| {
        seen.borrow_mut().push(message.message_id.clone());
        async move { behave(&message.body).await }
    })
    .await;
    (
        serde_json::to_value(response).unwrap(),
        report,
        seen.into_inner(),
    )
}

async fn run_kinesis(
    bodies: &[&str],
    quarantine: &MemoryQuarantine,
) -> (serde_json::Value, BatchReport, Vec<String>) {
    let seen = RefCell::new(Vec::new());
    let (response, report) = process_kinesis(kinesis_event(bodies), &ctx(quarantine), |record| {
        seen.borrow_mut().push(record.sequence_number.clone());
        async move { behave(std::str::from_utf8(&record.data).unwrap()).await }
    })
    .await;
    (
        serde_json::to_value(response).unwrap(),
        report,
        seen.into_inner(),
    )
}

#[tokio::test]
async fn sqs_success_answers_an_empty_failure_list() {
    let quarantine = MemoryQuarantine::default();
    let (json, report, _) = run_sqs("q", &["ok", "skip"], &quarantine).await;
    assert_eq!(json, json!({ "batchItemFailures": [] }));
    assert_eq!((report.done, report.skipped), (1, 1));
}

#[tokio::test]
async fn sqs_reports_transient_failures_and_panics_and_quarantines_bad_input() {
    // GIVEN a batch mixing every outcome
    let quarantine = MemoryQuarantine::default();
    // WHEN it is processed
    let (json, report, seen) =
        run_sqs("q", &["ok", "throttle", "bad", "panic", "ok"], &quarantine).await;
    // THEN only the transient failure and the panic are redelivered; the rest go on
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }, { "itemIdentifier": "m4" }] })
    );
    assert_eq!(seen, ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        report,
        BatchReport {
            done: 2,
            skipped: 0,
            duplicates: 0,
            quarantined: 1,
            failed: 2,
            not_started: 0,
            end_to_end_ms: report.end_to_end_ms.clone(),
            record_ms: report.record_ms.clone(),
            requests: 0,
            fatal: None,
        }
    );
    // AND every started record was timed
    assert_eq!(report.record_ms.len(), 5);
    // AND the bad record is in the quarantine with its raw body and where it came from
    let entries = quarantine.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].reason, "bad_input");
    assert_eq!(entries[0].raw_text.as_deref(), Some("bad"));
    assert_eq!(
        entries[0].source,
        crate::quarantine::RecordSource::Sqs {
            queue_arn: "arn:aws:sqs:us-east-1:123456789012:q".into(),
            message_id: "m3".into()
        }
    );
}

#[tokio::test]
async fn a_record_whose_quarantine_write_fails_is_redelivered_not_lost() {
    let quarantine = MemoryQuarantine::busy();
    let (json, report, _) = run_sqs("q", &["bad"], &quarantine).await;
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }] })
    );
    assert_eq!((report.failed, report.fatal), (1, None));
}

#[tokio::test]
async fn a_missing_quarantine_fails_the_invocation_and_gives_nothing_up() {
    // Prepare: a quarantine that does not exist (or that the function may not write)
    let quarantine = MemoryQuarantine::broken();
    // Act
    let (json, report, _) = run_sqs("q", &["ok", "bad", "ok"], &quarantine).await;
    // Assess: the poison stays on its source, the good records are done, and the invocation
    // fails so that the Errors alarm fires
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }] })
    );
    assert_eq!((report.done, report.failed), (2, 1));
    let fatal = report.fatal.expect("a missing quarantine is fatal");
    assert!(fatal.contains("QUARANTINE_QUEUE_URL"), "{fatal}");
}

#[tokio::test]
async fn a_failed_message_without_an_id_fails_the_whole_batch_so_nothing_is_deleted() {
    // Prepare: two messages, the failing one without its messageId
    let quarantine = MemoryQuarantine::default();
    let mut event = sqs_event("q", &["ok", "throttle"]);
    event.records[1].message_id = None;

    // Act
    let (response, report) = process_sqs(event, &ctx(&quarantine), |m| async move {
        behave(&m.body).await
    })
    .await;

    // Assess: the batch is fatal (the invocation fails and every message comes back), since
    // an item failure cannot name the message
    assert!(
        report
            .fatal
            .as_deref()
            .is_some_and(|f| f.contains("no messageId")),
        "{report:?}"
    );
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn fifo_stops_at_the_first_failure_and_reports_everything_after_it() {
    let quarantine = MemoryQuarantine::default();
    let (json, report, seen) =
        run_sqs("q.fifo", &["ok", "throttle", "ok", "ok"], &quarantine).await;
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }, { "itemIdentifier": "m3" }, { "itemIdentifier": "m4" }] })
    );
    assert_eq!(seen, ["m1", "m2"]);
    assert_eq!(report.not_started, 2);
}

#[tokio::test]
async fn records_that_cannot_finish_before_the_deadline_are_reported_unstarted() {
    let quarantine = MemoryQuarantine::default();
    let tight = BatchContext::new(
        "test-fn",
        Deadline::after(std::time::Duration::from_millis(50)),
        std::time::Duration::from_secs(5),
        &quarantine,
    );
    let mut calls = 0;
    let (response, report) = process_sqs(sqs_event("q", &["ok", "ok"]), &tight, |_| {
        calls += 1;
        async { Ok::<_, TestError>(Outcome::Done) }
    })
    .await;
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }, { "itemIdentifier": "m2" }] })
    );
    assert_eq!((calls, report.not_started), (0, 2));
}

#[tokio::test]
async fn a_handler_that_overruns_the_deadline_is_cut_off_and_reported() {
    let quarantine = MemoryQuarantine::default();
    let tight = BatchContext::new(
        "test-fn",
        Deadline::after(std::time::Duration::from_millis(400)),
        std::time::Duration::from_millis(1),
        &quarantine,
    );
    let (response, report) = process_sqs(sqs_event("q", &["slow"]), &tight, |_| async {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok::<_, TestError>(Outcome::Done)
    })
    .await;
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }] })
    );
    assert_eq!(report.failed, 1);
}

#[tokio::test]
async fn kinesis_success_answers_an_empty_failure_list() {
    let quarantine = MemoryQuarantine::default();
    let (json, _, seen) = run_kinesis(&["ok", "skip", "ok"], &quarantine).await;
    assert_eq!(json, json!({ "batchItemFailures": [] }));
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn kinesis_reports_only_the_first_failure_and_stops_there() {
    let quarantine = MemoryQuarantine::default();
    let (json, report, seen) =
        run_kinesis(&["ok", "bad", "throttle", "ok", "throttle"], &quarantine).await;
    // The poison record (101) is quarantined and passed; the shard resumes at 102.
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "102" }] })
    );
    assert_eq!(seen, ["100", "101", "102"]);
    assert_eq!(
        report,
        BatchReport {
            done: 1,
            skipped: 0,
            duplicates: 0,
            quarantined: 1,
            failed: 1,
            not_started: 2,
            end_to_end_ms: report.end_to_end_ms.clone(),
            record_ms: report.record_ms.clone(),
            requests: 0,
            fatal: None,
        }
    );
    assert_eq!(
        report.record_ms.len(),
        3,
        "the three started records are timed"
    );
    let entries = quarantine.entries();
    assert_eq!(entries[0].source.id(), "shardId-000000000000:101");
}

#[tokio::test]
async fn a_kinesis_panic_never_checkpoints_past_its_record() {
    let quarantine = MemoryQuarantine::default();
    let (json, _, seen) = run_kinesis(&["panic", "ok"], &quarantine).await;
    assert_eq!(
        json,
        json!({ "batchItemFailures": [{ "itemIdentifier": "100" }] })
    );
    assert_eq!(seen, ["100"]);
}
