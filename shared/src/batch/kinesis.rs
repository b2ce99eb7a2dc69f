use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use std::future::Future;

use super::record::{Settled, settle};
use super::{BatchContext, BatchReport, Classify, Outcome};
use crate::quarantine::{Quarantine, RecordSource};

/// One Kinesis record as a handler sees it, data already base64-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// A decimal string; compare as a big integer, never as text.
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub shard_id: String,
    pub stream_arn: String,
    /// When Kinesis received the record (epoch milliseconds).
    pub arrived_at_ms: i64,
}

impl StreamRecord {
    /// The records of an event, in shard order.
    pub fn from_event(event: KinesisEvent) -> Vec<StreamRecord> {
        event
            .records
            .into_iter()
            .map(|record| {
                // eventID is "<shardId>:<sequenceNumber>".
                let shard_id = record
                    .event_id
                    .as_deref()
                    .and_then(|id| id.split_once(':'))
                    .map(|(shard, _)| shard.to_owned())
                    .unwrap_or_default();
                StreamRecord {
                    sequence_number: record.kinesis.sequence_number,
                    partition_key: record.kinesis.partition_key,
                    data: record.kinesis.data.0,
                    shard_id,
                    stream_arn: record.event_source_arn.unwrap_or_default(),
                    arrived_at_ms: record
                        .kinesis
                        .approximate_arrival_timestamp
                        .timestamp_millis(),
                }
            })
            .collect()
    }

    pub fn source(&self) -> RecordSource {
        RecordSource::Kinesis {
            stream_arn: self.stream_arn.clone(),
            shard_id: self.shard_id.clone(),
            sequence_number: self.sequence_number.clone(),
            partition_key: self.partition_key.clone(),
        }
    }
}

/// The response that makes Lambda checkpoint just before `first_failed` and retry from it.
///
/// Only the lowest reported sequence number counts: Lambda retries everything from it on, so
/// reporting more than the first failure wastes nothing but says nothing either.
pub fn first_failure_response(first_failed: Option<&StreamRecord>) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(record) = first_failed {
        response.add_failure(record.sequence_number.clone());
    }
    response
}

/// Runs one record's handler with every guard (deadline, panic, classification, quarantine)
/// and counts its outcome; true once the record is finished, false when it must be
/// redelivered. For consumers that handle some records one by one and group the others.
pub async fn settle_record<Q, Fut, E>(
    ctx: &BatchContext<'_, Q>,
    record: &StreamRecord,
    handler: Fut,
    report: &mut BatchReport,
) -> bool
where
    Q: Quarantine,
    Fut: Future<Output = Result<Outcome, E>>,
    E: Classify,
{
    let occurred_at_ms =
        crate::contracts::occurred_at_ms(&record.data).unwrap_or(record.arrived_at_ms);
    let settled = settle(
        ctx,
        &record.source(),
        &record.data,
        Some(occurred_at_ms),
        handler,
        report,
    )
    .await;
    matches!(settled, Settled::Acknowledged)
}

/// Processes the records in shard order and stops at the first one that must be redelivered.
pub async fn process_kinesis<Q, F, Fut, E>(
    event: KinesisEvent,
    ctx: &BatchContext<'_, Q>,
    mut handler: F,
) -> (KinesisEventResponse, BatchReport)
where
    Q: Quarantine,
    F: FnMut(StreamRecord) -> Fut,
    Fut: Future<Output = Result<Outcome, E>>,
    E: Classify,
{
    let records = StreamRecord::from_event(event);
    let mut report = BatchReport::default();
    let mut first_failed = None;
    for (index, record) in records.iter().enumerate() {
        if ctx.deadline.remaining() < ctx.record_budget {
            report.not_started += records.len() - index;
            first_failed = Some(record);
            break;
        }
        if !settle_record(ctx, record, handler(record.clone()), &mut report).await {
            report.not_started += records.len() - index - 1;
            first_failed = Some(record);
            break;
        }
    }
    report.log(ctx.function, "kinesis");
    (first_failure_response(first_failed), report)
}
