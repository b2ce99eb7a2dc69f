//! Event source mappings, run locally with AWS's semantics (EVENT_SEMANTICS.md §1 and §2):
//! what turns a queue or a stream into invocations of a function.
//!
//! - SQS: receive up to `BatchSize`, invoke, then delete exactly the messages the response
//!   acknowledges. A function error, timeout, crash or an invalid partial response deletes
//!   nothing: the messages reappear after the queue's visibility timeout, and the queue's own
//!   redrive policy moves them to the DLQ after `maxReceiveCount` receives.
//! - Kinesis: every shard in order, one batch at a time, a checkpoint per shard; a partial
//!   response resumes at the lowest reported sequence number; errors are retried up to
//!   `MaximumRetryAttempts`, bisected when `BisectBatchOnFunctionError`, records older than
//!   `MaximumRecordAgeInSeconds` are given up on, and what is given up on is described on the
//!   on-failure destination (pointers, not records, as AWS sends).

use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::checkpoints::CheckpointStore;
use crate::clients::LocalClients;
use crate::events::{kinesis_event, sqs_event};
use crate::runtime_api::{InvokeError, LocalFunction};
use crate::stack::StackInfo;

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    /// Records read from the source (each once per poll).
    pub records: usize,
    /// Records handed to the function, counting every retry and bisected half.
    pub delivered: usize,
    pub invocations: usize,
    /// Invocations that failed or reported items (the batch, or part of it, comes back).
    pub failed_invocations: usize,
    /// How far behind the mapping is: for Kinesis the age of a batch's newest record when it
    /// was handed over (AWS's IteratorAge), for SQS the oldest message's age; the maximum
    /// over the polls added up.
    pub max_iterator_age_ms: u64,
    pub acknowledged: usize,
    /// Records reported or left for redelivery.
    pub failed: usize,
    pub given_up: usize,
}

impl std::ops::AddAssign for PollStats {
    fn add_assign(&mut self, other: PollStats) {
        self.records += other.records;
        self.delivered += other.delivered;
        self.invocations += other.invocations;
        self.failed_invocations += other.failed_invocations;
        self.max_iterator_age_ms = self.max_iterator_age_ms.max(other.max_iterator_age_ms);
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        self.given_up += other.given_up;
    }
}

/// How a batch ended, from the function's answer. Anything but a well-formed partial batch
/// response fails the whole batch (§1.5, §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    Success,
    /// The itemIdentifiers the response listed.
    Partial(Vec<String>),
    Failed(String),
}

/// Reads a function's answer exactly as Lambda does: `null`, `{}`, an empty or null list are
/// success; each failure needs a non-empty string `itemIdentifier` naming a record of the
/// batch; anything else (invalid JSON, a wrong key, an unknown id) fails the whole batch.
pub fn read_response(outcome: &Result<Vec<u8>, InvokeError>, batch_ids: &[String]) -> BatchResult {
    let body = match outcome {
        Ok(body) => body,
        Err(error) => return BatchResult::Failed(error.to_string()),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return BatchResult::Success;
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return BatchResult::Failed(format!("the response is not JSON ({e})")),
    };
    let failures = match &value {
        Value::Null => return BatchResult::Success,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchResult::Success,
            Some(Value::Array(list)) => list,
            Some(other) => {
                return BatchResult::Failed(format!("batchItemFailures is not a list: {other}"));
            }
        },
        other => return BatchResult::Failed(format!("the response is not an object: {other}")),
    };
    let mut ids = Vec::new();
    for failure in failures {
        match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch_ids.contains(id) => {
                ids.push(id.clone())
            }
            other => {
                return BatchResult::Failed(format!(
                    "invalid itemIdentifier {other:?}: it must name a record of the batch"
                ));
            }
        }
    }
    if ids.is_empty() {
        BatchResult::Success
    } else {
        BatchResult::Partial(ids)
    }
}

/// An SQS → function mapping.
pub struct SqsMapping {
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub function: LocalFunction,
    /// Per acknowledged message: sent to the queue → acknowledged, in ms (end-to-end latency).
    pub latencies_ms: Vec<u64>,
}

impl SqsMapping {
    /// Receives one batch (if any), invokes, deletes what was acknowledged.
    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, String> {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "{}: receive failed: {}",
                    self.name,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollStats::default());
        }
        let ids: Vec<String> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default().to_owned())
            .collect();
        // The oldest message's age when handed over (SQS's ApproximateAgeOfOldestMessage).
        let handed_over_ms = chrono::Utc::now().timestamp_millis();
        let oldest_age_ms = messages
            .iter()
            .filter_map(sent_ms)
            .map(|sent| (handed_over_ms - sent).max(0) as u64)
            .max()
            .unwrap_or(0);
        let event = sqs_event(&self.queue_arn, &messages);
        let outcome = self
            .function
            .invoke(serde_json::to_vec(&event).expect("event serializes"))
            .await;
        let result = read_response(&outcome, &ids);
        let keep: Vec<String> = match &result {
            BatchResult::Success => Vec::new(),
            BatchResult::Partial(failed) => failed.clone(),
            BatchResult::Failed(reason) => {
                tracing::warn!(mapping = %self.name, %reason, "batch failed; its messages reappear after the visibility timeout");
                ids.clone()
            }
        };
        let answered_ms = chrono::Utc::now().timestamp_millis();
        let mut stats = PollStats {
            records: messages.len(),
            delivered: messages.len(),
            max_iterator_age_ms: oldest_age_ms,
            invocations: 1,
            failed_invocations: usize::from(result != BatchResult::Success),
            ..Default::default()
        };
        for message in &messages {
            let id = message.message_id().unwrap_or_default();
            if keep.iter().any(|k| k == id) {
                stats.failed += 1;
                continue;
            }
            clients
                .sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "{}: delete failed: {}",
                        self.name,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            stats.acknowledged += 1;
            if let Some(sent) = sent_ms(message) {
                self.latencies_ms.push((answered_ms - sent).max(0) as u64);
            }
        }
        Ok(stats)
    }
}

fn sent_ms(message: &aws_sdk_sqs::types::Message) -> Option<i64> {
    message
        .attributes()?
        .get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()
}

fn arrival_ms(record: &Record) -> Option<i64> {
    record
        .approximate_arrival_timestamp()
        .and_then(|t| t.to_millis().ok())
}

/// Kinesis mapping settings from the template's event.
#[derive(Debug, Clone)]
pub struct KinesisSettings {
    pub batch_size: i32,
    pub trim_horizon: bool,
    pub maximum_retry_attempts: i64,
    pub maximum_record_age: Option<Duration>,
    pub bisect: bool,
    pub on_failure_queue_url: Option<String>,
}

impl KinesisSettings {
    pub fn from_event(properties: &Value, stack: &StackInfo) -> KinesisSettings {
        let int = |key: &str| {
            properties.get(key).and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
        };
        let destination = properties
            .pointer("/DestinationConfig/OnFailure/Destination")
            .and_then(Value::as_str);
        KinesisSettings {
            batch_size: int("BatchSize").unwrap_or(100) as i32,
            trim_horizon: properties.get("StartingPosition").and_then(Value::as_str)
                != Some("LATEST"),
            maximum_retry_attempts: int("MaximumRetryAttempts").unwrap_or(-1),
            maximum_record_age: int("MaximumRecordAgeInSeconds")
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64)),
            bisect: properties
                .get("BisectBatchOnFunctionError")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            on_failure_queue_url: destination.and_then(|arn| {
                stack
                    .resources
                    .values()
                    .find(|r| r.arn.as_deref() == Some(arn))
                    .and_then(|r| r.url.clone())
            }),
        }
    }
}

/// A Kinesis → function mapping with its own position in every shard.
pub struct KinesisMapping {
    pub name: String,
    pub stream_name: String,
    pub stream_arn: String,
    pub function_arn: String,
    pub settings: KinesisSettings,
    pub function: LocalFunction,
    /// The last sequence number processed (or given up on) per shard.
    pub checkpoints: BTreeMap<String, String>,
    /// Where the checkpoints are kept between runs.
    pub store: CheckpointStore,
    /// Per processed record: put on the stream → processed, in ms (end-to-end latency).
    pub latencies_ms: Vec<u64>,
}

/// Kinesis sequence numbers are decimal strings of any length: compare them as numbers.
pub fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl KinesisMapping {
    /// Moves a shard's position and saves it, so a restart continues from here.
    fn checkpoint(&mut self, shard_id: &str, sequence_number: &str) -> Result<(), String> {
        self.checkpoints
            .insert(shard_id.to_owned(), sequence_number.to_owned());
        self.store
            .save(&self.stream_arn, &self.checkpoints)
            .map_err(|e| format!("{}: saving the checkpoint: {e}", self.name))
    }

    fn record_latencies(&mut self, processed: &[Record]) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.latencies_ms.extend(
            processed
                .iter()
                .filter_map(arrival_ms)
                .map(|arrived| (now_ms - arrived).max(0) as u64),
        );
    }

    /// Polls every shard once; returns what was done.
    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, String> {
        let shards = clients
            .kinesis
            .list_shards()
            .stream_name(&self.stream_name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "{}: list shards: {}",
                    self.name,
                    aws_sdk_kinesis::error::DisplayErrorContext(e)
                )
            })?
            .shards
            .unwrap_or_default();
        let mut stats = PollStats::default();
        for shard in shards {
            let shard_id = shard.shard_id().to_owned();
            let mut request = clients
                .kinesis
                .get_shard_iterator()
                .stream_name(&self.stream_name)
                .shard_id(&shard_id);
            request = match self.checkpoints.get(&shard_id) {
                Some(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(sequence),
                None if self.settings.trim_horizon => {
                    request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                None => request.shard_iterator_type(ShardIteratorType::Latest),
            };
            let iterator = request
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "{}: iterator: {}",
                        self.name,
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    )
                })?
                .shard_iterator;
            let records = clients
                .kinesis
                .get_records()
                .set_shard_iterator(iterator)
                .limit(self.settings.batch_size.clamp(1, 10_000))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "{}: get records: {}",
                        self.name,
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    )
                })?
                .records;
            if records.is_empty() {
                continue;
            }
            stats += self.deliver(clients, &shard_id, records).await?;
        }
        Ok(stats)
    }

    /// Delivers one batch of a shard until it is processed or given up on; moves the checkpoint.
    async fn deliver(
        &mut self,
        clients: &LocalClients,
        shard_id: &str,
        records: Vec<Record>,
    ) -> Result<PollStats, String> {
        let mut stats = PollStats {
            records: records.len(),
            ..Default::default()
        };
        // (batch, attempts already made on it)
        let mut pending: Vec<(Vec<Record>, i64)> = vec![(records, 0)];
        while let Some((mut batch, attempts)) = pending.pop() {
            if let Some(max_age) = self.settings.maximum_record_age {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let expired = batch
                    .iter()
                    .take_while(|r| {
                        r.approximate_arrival_timestamp()
                            .and_then(|t| t.to_millis().ok())
                            .is_some_and(|t| now_ms - t > max_age.as_millis() as i64)
                    })
                    .count();
                if expired > 0 {
                    let old: Vec<Record> = batch.drain(..expired).collect();
                    self.give_up(clients, shard_id, &old, "RecordAgeExceeded", attempts, None)
                        .await?;
                    stats.given_up += old.len();
                    if batch.is_empty() {
                        continue;
                    }
                }
            }
            let ids: Vec<String> = batch
                .iter()
                .map(|r| r.sequence_number().to_owned())
                .collect();
            let event = kinesis_event(
                &self.stream_arn,
                shard_id,
                &format!("{}-role", self.function_arn),
                &batch,
            );
            let newest_ms = batch.last().and_then(arrival_ms);
            if let Some(newest_ms) = newest_ms {
                let age = chrono::Utc::now().timestamp_millis() - newest_ms;
                stats.max_iterator_age_ms = stats.max_iterator_age_ms.max(age.max(0) as u64);
            }
            let outcome = self
                .function
                .invoke(serde_json::to_vec(&event).expect("event serializes"))
                .await;
            stats.invocations += 1;
            stats.delivered += batch.len();
            let function_error = outcome.as_ref().err().map(ToString::to_string);
            let result = read_response(&outcome, &ids);
            stats.failed_invocations += usize::from(result != BatchResult::Success);
            match result {
                BatchResult::Success => {
                    stats.acknowledged += batch.len();
                    self.record_latencies(&batch);
                    self.checkpoint(shard_id, ids.last().expect("non-empty batch"))?;
                }
                BatchResult::Partial(failed) => {
                    // Only the lowest reported sequence number counts: resume there.
                    let lowest = failed
                        .iter()
                        .min_by(|a, b| sequence_cmp(a, b))
                        .expect("non-empty")
                        .clone();
                    let at = ids
                        .iter()
                        .position(|id| *id == lowest)
                        .expect("validated against the batch");
                    stats.acknowledged += at;
                    self.record_latencies(&batch[..at]);
                    if at > 0 {
                        self.checkpoint(shard_id, &ids[at - 1])?;
                    }
                    let rest: Vec<Record> = batch.split_off(at);
                    self.retry_or_give_up(
                        clients,
                        shard_id,
                        rest,
                        attempts + 1,
                        None,
                        &mut pending,
                        &mut stats,
                    )
                    .await?;
                }
                BatchResult::Failed(reason) => {
                    tracing::warn!(mapping = %self.name, shard = shard_id, %reason, records = batch.len(), "batch failed");
                    if self.settings.bisect && batch.len() > 1 {
                        // Splitting does not count toward the retry quota; the first half goes first.
                        let second = batch.split_off(batch.len() / 2);
                        pending.push((second, attempts));
                        pending.push((batch, attempts));
                    } else {
                        self.retry_or_give_up(
                            clients,
                            shard_id,
                            batch,
                            attempts + 1,
                            function_error,
                            &mut pending,
                            &mut stats,
                        )
                        .await?;
                    }
                }
            }
        }
        stats.failed = stats.records - stats.acknowledged - stats.given_up;
        Ok(stats)
    }

    #[allow(clippy::too_many_arguments)]
    async fn retry_or_give_up(
        &mut self,
        clients: &LocalClients,
        shard_id: &str,
        batch: Vec<Record>,
        attempts: i64,
        error: Option<String>,
        pending: &mut Vec<(Vec<Record>, i64)>,
        stats: &mut PollStats,
    ) -> Result<(), String> {
        let limit = self.settings.maximum_retry_attempts;
        if limit >= 0 && attempts > limit {
            self.give_up(
                clients,
                shard_id,
                &batch,
                "RetryAttemptsExhausted",
                attempts,
                error,
            )
            .await?;
            stats.given_up += batch.len();
        } else {
            pending.push((batch, attempts));
        }
        Ok(())
    }

    /// Moves past records the mapping gives up on, describing them on the on-failure destination.
    async fn give_up(
        &mut self,
        clients: &LocalClients,
        shard_id: &str,
        batch: &[Record],
        condition: &str,
        attempts: i64,
        error: Option<String>,
    ) -> Result<(), String> {
        let (first, last) = (
            batch.first().expect("non-empty"),
            batch.last().expect("non-empty"),
        );
        let arrival = |r: &Record| {
            r.approximate_arrival_timestamp()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        };
        let mut record = json!({
            "requestContext": { "requestId": uuid::Uuid::new_v4().to_string(), "functionArn": self.function_arn, "condition": condition, "approximateInvokeCount": attempts },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.sequence_number(),
                "endSequenceNumber": last.sequence_number(),
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": batch.len(),
                "streamArn": self.stream_arn,
            }
        });
        if condition != "RecordAgeExceeded" {
            record["responseContext"] = json!({ "statusCode": 200, "executedVersion": "$LATEST", "functionError": error.map(|_| "Unhandled") });
        }
        tracing::warn!(mapping = %self.name, shard = shard_id, condition, records = batch.len(), "giving up on records");
        if let Some(url) = &self.settings.on_failure_queue_url {
            clients
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(record.to_string())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "{}: on-failure destination: {}",
                        self.name,
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
        }
        self.checkpoint(shard_id, last.sequence_number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["1".into(), "2".into(), "10".into()]
    }

    #[test]
    fn success_shapes_are_what_aws_accepts() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
        ] {
            assert_eq!(
                read_response(&Ok(body.as_bytes().to_vec()), &ids()),
                BatchResult::Success,
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_valid_partial_response_names_records_of_the_batch() {
        let body =
            br#"{"batchItemFailures":[{"itemIdentifier":"10"},{"itemIdentifier":"2"}]}"#.to_vec();
        assert_eq!(
            read_response(&Ok(body), &ids()),
            BatchResult::Partial(vec!["10".into(), "2".into()])
        );
    }

    #[test]
    fn anything_else_fails_the_whole_batch() {
        for body in [
            "not json",
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":123}]}"#,
            r#"{"batchItemFailures":[{"foo":"1"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#,
            r#""text""#,
        ] {
            assert!(
                matches!(
                    read_response(&Ok(body.as_bytes().to_vec()), &ids()),
                    BatchResult::Failed(_)
                ),
                "{body:?}"
            );
        }
        let error = Err(InvokeError::Timeout { seconds: 3.0 });
        assert!(matches!(
            read_response(&error, &ids()),
            BatchResult::Failed(_)
        ));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(sequence_cmp("10", "9"), std::cmp::Ordering::Greater);
        assert_eq!(
            sequence_cmp(
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692538361571095921575989136588899"
            ),
            std::cmp::Ordering::Less
        );
    }
}
