//! One batch of the images table's stream, end to end: decide per change, put what must be
//! published with `PutRecords` in the order of the table's stream, and answer with the first
//! change that is not finished (Lambda resumes the shard there).
//!
//! Requests per batch: one PutRecords per 500 events (Kinesis's per-call limit), none for a
//! batch of skips, plus one per retry of the entries a call left unput. A retry re-puts the
//! same bytes: the event ids make it a duplicate that consumers absorb.
//!
//! Hazard: when one record of a PutRecords call fails and a later one succeeds, the later one
//! lands first (and, if the failed one is still refused when the invocation gives up, is put
//! again by the mapping's retry). Consumers order one (image, user)'s facts by their revision
//! and `occurred_at`, never by arrival, so the outcome is the same.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use snapglow::batch::{BatchContext, BatchFunction, BatchReport, Deadline};
use snapglow::quarantine::{Quarantine, QuarantineEntry, RecordSource};
use snapglow::retry::pause;
use std::future::Future;

use crate::outbox::{Change, classify};

/// Kinesis's PutRecords limits: 500 records and 5 MiB (data plus partition keys) per call.
pub const MAX_RECORDS: usize = 500;
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
    /// The stream cannot be written until an operator acts (its KMS key is refused, disabled
    /// or gone; the stream is missing; the role lacks the grant): the invocation fails so that
    /// the Errors alarm fires, instead of resuming quietly while the table's stream ages out.
    pub fatal: bool,
}

/// Whether a PutRecords error code says the stream is unwritable rather than busy.
pub fn is_unwritable(code: &str) -> bool {
    matches!(
        code,
        "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSInvalidStateException"
            | "KMSNotFoundException"
            | "KMSOptInRequired"
            | "AccessDeniedException"
            | "ResourceNotFoundException"
    )
}

/// PutRecords calls per flush: the first, then the entries it left unput, after a growing
/// pause, within the invocation's deadline.
const PUT_ATTEMPTS: u32 = 6;

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
            .map_err(|e| {
                use aws_sdk_kinesis::error::ProvideErrorMetadata;
                SinkError {
                    stream: self.stream_name.clone(),
                    fatal: e.code().is_some_and(is_unwritable)
                        || e.raw_response().map(|r| r.status().as_u16()) == Some(403),
                    detail: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
                }
            })?;
        Ok(output
            .records()
            .iter()
            .map(|r| r.error_code().map(str::to_owned))
            .collect())
    }
}

/// The function: the Kinesis stream unless a test hands it another [`StreamSink`].
pub struct Relay<S = KinesisSink> {
    pub sink: S,
}

impl<S: StreamSink> BatchFunction<Event> for Relay<S> {
    type Response = DynamoDbEventResponse;

    /// One batch, in the table stream's order; the relay stops putting with a margin left
    /// before the context's deadline and answers. The report counts published events as
    /// `done` and PutRecords calls as `requests`; a [`BatchReport::fatal`] says the stream
    /// (or the quarantine) cannot be written (see [`SinkError::fatal`]).
    async fn handle_batch<Q: Quarantine>(
        &self,
        event: Event,
        ctx: &BatchContext<'_, Q>,
    ) -> (DynamoDbEventResponse, BatchReport) {
        let deadline = &ctx.deadline;
        let mut report = BatchReport::default();
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
                    let entry = QuarantineEntry::new(ctx.function, reason, detail, source, &raw);
                    match ctx.quarantine.put(&entry, &raw).await {
                        Ok(()) => report.quarantined += 1,
                        Err(error) => {
                            tracing::warn!(%error, "could not quarantine an outbox event; the change is retried");
                            if error.fatal {
                                report.fatal.get_or_insert_with(|| error.to_string());
                            }
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
        }
        // One EMF line per batch, like the consumers': the changes from the resume point on
        // as failed (they come back).
        report.failed = failed_at.map_or(0, |i| event.records.len() - i);
        snapglow::telemetry::emit_batch_metrics(ctx.function, &report);
        tracing::info!(
            function = ctx.function,
            published = report.done,
            skipped = report.skipped,
            quarantined = report.quarantined,
            put_calls = report.requests,
            resume_at = failed_at.map(sequence).unwrap_or_default(),
            "relayed a batch"
        );
        (response, report)
    }
}

impl<S: StreamSink> Relay<S> {
    /// Puts what is pending; returns the index of the first change that did not land.
    ///
    /// Entries PutRecords leaves unput (per-record throttling or InternalFailure, while the
    /// call "succeeds") are put again alone, after a growing pause: re-putting the whole
    /// request would duplicate every entry that landed ("a single record failure does not
    /// stop the processing of subsequent records"). Whatever is still unput when the attempts
    /// or the time run out is reported, and the mapping retries from the first of it.
    async fn flush(
        &self,
        pending: &mut Vec<(usize, OutRecord)>,
        report: &mut BatchReport,
        deadline: &Deadline,
    ) -> Option<usize> {
        let mut todo: Vec<(usize, OutRecord)> = std::mem::take(pending);
        let mut attempt = 0;
        loop {
            let first = todo.first()?.0;
            // A call cut off by the timeout fails the whole batch; stop early instead.
            if deadline.remaining() < snapglow::aws::call_margin() {
                return Some(first);
            }
            let records: Vec<OutRecord> = todo.iter().map(|(_, r)| r.clone()).collect();
            report.requests += 1;
            match self.sink.put_records(&records).await {
                Err(error) if error.fatal => {
                    tracing::error!(%error, records = records.len(), "the stream cannot be written; the invocation fails");
                    report.fatal.get_or_insert_with(|| error.to_string());
                    return Some(first);
                }
                Err(error) => {
                    tracing::warn!(%error, records = records.len(), "PutRecords failed");
                }
                Ok(codes) => {
                    let unput: Vec<(usize, OutRecord)> = todo
                        .drain(..)
                        .enumerate()
                        .filter(|(position, _)| !matches!(codes.get(*position), Some(None)))
                        .map(|(_, entry)| entry)
                        .collect();
                    report.done += records.len() - unput.len();
                    if unput.is_empty() {
                        return None;
                    }
                    tracing::warn!(
                        code = codes.iter().flatten().next().cloned().unwrap_or_default(),
                        unput = unput.len(),
                        "some records were not put; they are put again"
                    );
                    todo = unput;
                }
            }
            attempt += 1;
            if attempt >= PUT_ATTEMPTS || !pause(deadline, attempt).await {
                return todo.first().map(|(index, _)| *index);
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
    use std::time::Duration;

    /// The stream: records land unless their position is listed as refused.
    #[derive(Default)]
    struct MemorySink {
        landed: Mutex<Vec<OutRecord>>,
        /// Per call, in order: the positions the stream refuses in it.
        refusals: Mutex<std::collections::VecDeque<Vec<usize>>>,
        /// Per call, in order: a whole-call error instead.
        errors: Mutex<std::collections::VecDeque<SinkError>>,
        calls: Mutex<usize>,
    }

    impl StreamSink for MemorySink {
        async fn put_records(
            &self,
            records: &[OutRecord],
        ) -> Result<Vec<Option<ErrorCode>>, SinkError> {
            *self.calls.lock().unwrap() += 1;
            if let Some(error) = self.errors.lock().unwrap().pop_front() {
                return Err(error);
            }
            let refused = self
                .refusals
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_default();
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

    /// A relay over the in-memory stream, and its quarantine.
    fn relay() -> (Relay<MemorySink>, MemoryQuarantine) {
        let sink = MemorySink::default();
        (Relay { sink }, MemoryQuarantine::default())
    }

    /// An invocation with `left` before its deadline.
    fn within(left: Duration, quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        BatchContext::new("relay", Deadline::after(left), Duration::ZERO, quarantine)
    }

    fn later(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        within(Duration::from_secs(60), quarantine)
    }

    #[tokio::test]
    async fn a_throttled_record_is_put_again_alone_and_nothing_lands_twice() {
        // Prepare: four changes, the stream refuses the third on the first call
        let (relay, quarantine) = relay();
        relay.sink.refusals.lock().unwrap().push_back(vec![2]);
        let changes = batch((1..=4).map(|i| like_change("sunset", i)).collect());

        // Act
        let (response, report) = relay.handle_batch(changes, &later(&quarantine)).await;

        // Assess: the refused entry went again alone; every event is on the stream once
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.done, report.requests), (4, 2));
        let landed = relay.sink.landed.lock().unwrap();
        let ids: Vec<Vec<u8>> = landed.iter().map(|r| r.data.clone()).collect();
        let expected: Vec<Vec<u8>> = [1, 2, 4, 3]
            .map(|id| like_json("sunset", id).into_bytes())
            .to_vec();
        assert_eq!(ids, expected);
    }

    #[tokio::test]
    async fn a_record_the_stream_keeps_refusing_makes_the_batch_resume_there_and_nothing_is_lost() {
        // Prepare: the stream refuses the third change on every call
        let (relay, quarantine) = relay();
        for _ in 0..PUT_ATTEMPTS {
            relay.sink.refusals.lock().unwrap().push_back(vec![0]);
        }
        relay.sink.refusals.lock().unwrap()[0] = vec![2];
        let changes = || batch((1..=4).map(|i| like_change("sunset", i)).collect());

        // Act: the first delivery, then Lambda's retry from the reported record
        let (first, report) = relay.handle_batch(changes(), &later(&quarantine)).await;
        let mut retry = changes();
        retry.records.drain(..2);
        let (second, _) = relay.handle_batch(retry, &later(&quarantine)).await;

        // Assess: the response named the refused change after its attempts; after the retry
        // every event is on the stream, the fourth twice (it landed on the first call and
        // again on the retry)
        assert_eq!(
            first.batch_item_failures[0].item_identifier.as_deref(),
            Some("102")
        );
        assert_eq!((report.done, report.requests), (3, PUT_ATTEMPTS as usize));
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
    async fn a_refused_kms_key_fails_the_invocation_and_is_not_retried_in_it() {
        // Prepare: the stream's KMS key is disabled
        let (relay, quarantine) = relay();
        relay.sink.errors.lock().unwrap().push_back(SinkError {
            stream: "image-social-events".into(),
            detail: "KMSDisabledException: the key is disabled".into(),
            fatal: is_unwritable("KMSDisabledException"),
        });

        // Act
        let (response, report) = relay
            .handle_batch(batch(vec![like_change("sunset", 1)]), &later(&quarantine))
            .await;

        // Assess: reported from the first change, and fatal, after one call
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("100")
        );
        assert_eq!(report.requests, 1);
        assert!(report.fatal.unwrap().contains("KMSDisabledException"));
    }

    #[tokio::test]
    async fn a_poison_change_is_quarantined_in_order_and_the_rest_is_published_in_one_call() {
        // Prepare
        let (relay, quarantine) = relay();
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
        let (response, report) = relay.handle_batch(event, &later(&quarantine)).await;

        // Assess
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            (report.done, report.quarantined, report.requests),
            (3, 1, 2)
        );
        assert_eq!(quarantine.entries().len(), 1);
        assert_eq!(quarantine.entries()[0].reason, "malformed_envelope");
    }

    #[tokio::test]
    async fn with_no_time_left_nothing_is_put_and_the_whole_batch_comes_back() {
        let (relay, quarantine) = relay();
        let (response, report) = relay
            .handle_batch(
                batch(vec![like_change("sunset", 1)]),
                &within(Duration::ZERO, &quarantine),
            )
            .await;
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("100")
        );
        assert_eq!(report.requests, 0);
    }
}
