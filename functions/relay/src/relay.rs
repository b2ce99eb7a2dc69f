//! One batch of the images table's stream, end to end: decide per change, put what must be
//! published with `PutRecords` in the order of the table's stream, and answer with the first
//! change that is not finished (Lambda resumes the shard there).
//!
//! Requests per batch: one PutRecords per 500 events (Kinesis's per-call limit), none for a
//! batch of skips. A retry re-puts the same bytes: the event ids make it a duplicate that
//! consumers absorb.
//!
//! Hazard: when one record of a PutRecords call fails and a later one succeeds, the later one
//! lands first and is put again on the retry. Consumers order one (image, user)'s facts by
//! their revision and `occurred_at`, never by arrival, so the outcome is the same.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use snapglow::quarantine::{Quarantine, QuarantineEntry, RecordSource};
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::outbox::{Change, classify};

/// Kinesis's PutRecords limits: 500 records and 5 MiB (data plus partition keys) per call.
const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 5 * 1024 * 1024;

/// One record for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "PutRecords to stream {stream} failed: {detail}; the batch is retried from its first unpublished change"
)]
pub struct SinkError {
    pub stream: String,
    pub detail: String,
}

/// Kinesis's code for a record it did not put (e.g. `ProvisionedThroughputExceededException`).
pub type ErrorCode = String;

/// Where the relay puts events: the Kinesis stream, or an in-memory twin in tests.
pub trait StreamSink {
    /// Puts the records in one call; per record, `None` when it landed, else its error code.
    fn put_records(
        &self,
        records: &[OutRecord],
    ) -> impl Future<Output = Result<Vec<Option<ErrorCode>>, SinkError>>;
}

/// The Kinesis stream `image-social-events`.
pub struct KinesisSink {
    pub client: aws_sdk_kinesis::Client,
    pub stream_name: String,
}

impl StreamSink for KinesisSink {
    async fn put_records(
        &self,
        records: &[OutRecord],
    ) -> Result<Vec<Option<ErrorCode>>, SinkError> {
        use aws_sdk_kinesis::primitives::Blob;
        use aws_sdk_kinesis::types::PutRecordsRequestEntry;
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&r.partition_key)
                    .data(Blob::new(r.data.clone()))
                    .build()
                    .expect("partition key and data are set")
            })
            .collect();
        let output = self
            .client
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| SinkError {
                stream: self.stream_name.clone(),
                detail: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(output
            .records()
            .iter()
            .map(|r| r.error_code().map(str::to_owned))
            .collect())
    }
}

/// What one batch did, for the log line and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RelayReport {
    pub published: usize,
    pub skipped: usize,
    pub quarantined: usize,
    pub put_calls: usize,
    /// The sequence number the response names, if the batch is not finished.
    pub resume_at: Option<String>,
}

pub struct Relay<S, Q> {
    pub function: String,
    pub sink: S,
    pub quarantine: Q,
}

impl<S: StreamSink, Q: Quarantine> Relay<S, Q> {
    /// `deadline`: the invocation's; the relay stops putting with a margin left and answers.
    pub async fn handle_batch(
        &self,
        event: Event,
        deadline: SystemTime,
    ) -> (DynamoDbEventResponse, RelayReport) {
        let mut report = RelayReport::default();
        let mut pending: Vec<(usize, OutRecord)> = Vec::new();
        let sequence = |i: usize| {
            event.records[i]
                .change
                .sequence_number
                .clone()
                .unwrap_or_default()
        };
        let mut failed_at: Option<usize> = None;
        'records: for (index, record) in event.records.iter().enumerate() {
            match classify(record) {
                Change::Skip(reason) => {
                    tracing::debug!(reason, sequence = %sequence(index), "nothing to publish");
                    report.skipped += 1;
                }
                Change::Publish {
                    partition_key,
                    data,
                } => {
                    let size: usize = pending
                        .iter()
                        .map(|(_, r)| r.data.len() + r.partition_key.len())
                        .sum();
                    let full = pending.len() == MAX_RECORDS
                        || size + data.len() + partition_key.len() > MAX_BYTES;
                    if full && let Some(at) = self.flush(&mut pending, &mut report, deadline).await
                    {
                        failed_at = Some(at);
                        break 'records;
                    }
                    pending.push((
                        index,
                        OutRecord {
                            partition_key,
                            data,
                        },
                    ));
                }
                Change::Poison { reason, detail } => {
                    // Keep the stream's order: what came before is published first.
                    if let Some(at) = self.flush(&mut pending, &mut report, deadline).await {
                        failed_at = Some(at);
                        break 'records;
                    }
                    let source = RecordSource::DynamoDbStream {
                        stream_arn: record.event_source_arn.clone().unwrap_or_default(),
                        sequence_number: sequence(index),
                    };
                    let raw = serde_json::to_vec(&record.change.new_image).unwrap_or_default();
                    let entry = QuarantineEntry::new(&self.function, reason, detail, source, &raw);
                    match self.quarantine.put(&entry, &raw).await {
                        Ok(()) => report.quarantined += 1,
                        Err(error) => {
                            tracing::warn!(%error, "could not quarantine an outbox event; the change is retried");
                            failed_at = Some(index);
                            break 'records;
                        }
                    }
                }
            }
        }
        if failed_at.is_none() {
            failed_at = self.flush(&mut pending, &mut report, deadline).await;
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(index) = failed_at {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence(index));
            response.batch_item_failures.push(failure);
            report.resume_at = Some(sequence(index));
        }
        // One EMF line per batch, like the consumers': published as processed, the changes
        // from the resume point on as failed (they come back).
        let unfinished = failed_at.map_or(0, |i| event.records.len() - i);
        snapglow::telemetry::emit_batch_metrics(
            &self.function,
            &snapglow::batch::BatchReport {
                done: report.published,
                skipped: report.skipped,
                quarantined: report.quarantined,
                failed: unfinished,
                ..Default::default()
            },
        );
        tracing::info!(
            published = report.published,
            skipped = report.skipped,
            quarantined = report.quarantined,
            put_calls = report.put_calls,
            resume_at = report.resume_at.as_deref().unwrap_or(""),
            "relayed a batch"
        );
        (response, report)
    }

    /// Puts what is pending; returns the index of the first change that did not land.
    async fn flush(
        &self,
        pending: &mut Vec<(usize, OutRecord)>,
        report: &mut RelayReport,
        deadline: SystemTime,
    ) -> Option<usize> {
        let first = pending.first()?.0;
        // A call cut off by the timeout fails the whole batch; stop early instead.
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if left < Duration::from_secs(2) {
            pending.clear();
            return Some(first);
        }
        let (indexes, records): (Vec<usize>, Vec<OutRecord>) = pending.drain(..).unzip();
        report.put_calls += 1;
        let outcome = self.sink.put_records(&records).await;
        match outcome {
            Err(error) => {
                tracing::warn!(%error, records = records.len(), "PutRecords failed");
                Some(first)
            }
            Ok(codes) => {
                let failed = codes
                    .iter()
                    .position(Option::is_some)
                    .or((codes.len() < indexes.len()).then_some(codes.len()));
                match failed {
                    None => {
                        report.published += indexes.len();
                        None
                    }
                    Some(position) => {
                        report.published += codes.iter().filter(|c| c.is_none()).count();
                        tracing::warn!(
                            code = codes.get(position).cloned().flatten().unwrap_or_default(),
                            failed = codes.iter().filter(|c| c.is_some()).count(),
                            "some records were not put; the batch resumes at the first of them"
                        );
                        Some(indexes[position])
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::tests::{change, item, like_json};
    use snapglow::testing::MemoryQuarantine;
    use std::sync::Mutex;

    /// The stream: records land unless their position is listed as refused.
    #[derive(Default)]
    struct MemorySink {
        landed: Mutex<Vec<OutRecord>>,
        refuse_positions: Mutex<Vec<usize>>,
        calls: Mutex<usize>,
    }

    impl StreamSink for MemorySink {
        async fn put_records(
            &self,
            records: &[OutRecord],
        ) -> Result<Vec<Option<ErrorCode>>, SinkError> {
            *self.calls.lock().unwrap() += 1;
            let refused = std::mem::take(&mut *self.refuse_positions.lock().unwrap());
            Ok(records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if refused.contains(&i) {
                        Some("ProvisionedThroughputExceededException".to_owned())
                    } else {
                        self.landed.lock().unwrap().push(r.clone());
                        None
                    }
                })
                .collect())
        }
    }

    fn batch(changes: Vec<aws_lambda_events::event::dynamodb::EventRecord>) -> Event {
        let mut event = Event::default();
        event.records = changes
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c.change.sequence_number = Some(format!("{}", 100 + i));
                c
            })
            .collect();
        event
    }

    fn like_change(image: &str, id: u128) -> aws_lambda_events::event::dynamodb::EventRecord {
        let json = like_json(image, id);
        change(
            "MODIFY",
            item(&[]),
            item(&[
                ("image_id", image),
                ("event", &json),
                ("event_id", &id.to_string()),
            ]),
        )
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_throttled_record_makes_the_batch_resume_there_and_nothing_is_lost() {
        // Prepare: four changes, the stream refuses the third on the first call
        let relay = Relay {
            function: "relay".into(),
            sink: MemorySink::default(),
            quarantine: MemoryQuarantine::default(),
        };
        *relay.sink.refuse_positions.lock().unwrap() = vec![2];
        let changes = || batch((1..=4).map(|i| like_change("sunset", i)).collect());

        // Act: the first delivery, then Lambda's retry from the reported record
        let (first, report) = relay.handle_batch(changes(), later()).await;
        let mut retry = changes();
        retry.records.drain(..2);
        let (second, _) = relay.handle_batch(retry, later()).await;

        // Assess: the response named the refused change; after the retry every event is on the
        // stream, the fourth twice (it landed on the first call and again on the retry)
        assert_eq!(first.batch_item_failures.len(), 1);
        assert_eq!(
            first.batch_item_failures[0].item_identifier.as_deref(),
            Some("102")
        );
        assert_eq!(
            (report.published, report.resume_at.as_deref()),
            (3, Some("102"))
        );
        assert!(second.batch_item_failures.is_empty());
        let landed = relay.sink.landed.lock().unwrap();
        for id in 1..=4u128 {
            let expected = like_json("sunset", id).into_bytes();
            assert!(
                landed.iter().any(|r| r.data == expected),
                "event {id} is on the stream"
            );
        }
        assert_eq!(landed.len(), 5);
    }

    #[tokio::test]
    async fn a_poison_change_is_quarantined_in_order_and_the_rest_is_published_in_one_call() {
        // Prepare
        let relay = Relay {
            function: "relay".into(),
            sink: MemorySink::default(),
            quarantine: MemoryQuarantine::default(),
        };
        let poison = change(
            "INSERT",
            item(&[]),
            item(&[("image_id", "sunset"), ("event", "{"), ("event_id", "x")]),
        );
        let event = batch(vec![
            like_change("sunset", 1),
            poison,
            like_change("beach", 2),
            like_change("beach", 3),
        ]);

        // Act
        let (response, report) = relay.handle_batch(event, later()).await;

        // Assess
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            (report.published, report.quarantined, report.put_calls),
            (3, 1, 2)
        );
        assert_eq!(relay.quarantine.entries().len(), 1);
        assert_eq!(relay.quarantine.entries()[0].reason, "malformed_envelope");
    }

    #[tokio::test]
    async fn with_no_time_left_nothing_is_put_and_the_whole_batch_comes_back() {
        let relay = Relay {
            function: "relay".into(),
            sink: MemorySink::default(),
            quarantine: MemoryQuarantine::default(),
        };
        let (response, report) = relay
            .handle_batch(batch(vec![like_change("sunset", 1)]), SystemTime::now())
            .await;
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("100")
        );
        assert_eq!(report.put_calls, 0);
    }
}
