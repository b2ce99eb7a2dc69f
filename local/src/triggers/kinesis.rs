//! Kinesis → function, as Lambda's poller does it: every shard in order, one batch at a time,
//! a checkpoint per shard; a partial response resumes at the lowest reported sequence
//! number; errors are retried up to `MaximumRetryAttempts`, bisected when
//! `BisectBatchOnFunctionError`, records older than `MaximumRecordAgeInSeconds` are given up
//! on, and what is given up on is described on the on-failure destination (pointers to the
//! records, not the records, as AWS sends).

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::checkpoints::CheckpointStore;
use super::{BatchResult, PollStats, TriggerError, read_response};
use crate::lambda::Invoke;
use crate::stack::clients::{AwsError, AwsResult, LocalClients, REGION};
use crate::template::model::KinesisEvent as KinesisSettings;

fn arrival_ms(record: &Record) -> Option<i64> {
    record
        .approximate_arrival_timestamp()
        .and_then(|t| t.to_millis().ok())
}

/// A Kinesis → function mapping with its own position in every shard.
pub struct KinesisMapping {
    pub name: String,
    pub stream_name: String,
    pub stream_arn: String,
    pub function_arn: String,
    pub settings: KinesisSettings,
    /// The on-failure destination's queue, if the template names one.
    pub on_failure_queue_url: Option<String>,
    pub function: Box<dyn Invoke>,
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
    fn checkpoint(&mut self, shard_id: &str, sequence_number: &str) -> Result<(), TriggerError> {
        self.checkpoints
            .insert(shard_id.to_owned(), sequence_number.to_owned());
        self.store
            .save(&self.stream_arn, &self.checkpoints)
            .map_err(|source| TriggerError::Checkpoint {
                mapping: self.name.clone(),
                path: self.store.describe(),
                source,
            })
    }

    fn aws_error(&self, source: AwsError) -> TriggerError {
        TriggerError::Aws {
            mapping: self.name.clone(),
            source,
        }
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
    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, TriggerError> {
        let shards = clients
            .kinesis
            .list_shards()
            .stream_name(&self.stream_name)
            .send()
            .await
            .aws(|| format!("ListShards of {}", self.stream_name))
            .map_err(|source| self.aws_error(source))?
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
                None if self.settings.starts_at_trim_horizon() => {
                    request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                None => request.shard_iterator_type(ShardIteratorType::Latest),
            };
            let iterator = request
                .send()
                .await
                .aws(|| format!("GetShardIterator of {shard_id}"))
                .map_err(|source| self.aws_error(source))?
                .shard_iterator;
            let records = clients
                .kinesis
                .get_records()
                .set_shard_iterator(iterator)
                .limit(self.settings.batch_size.clamp(1, 10_000) as i32)
                .send()
                .await
                .aws(|| format!("GetRecords of {shard_id}"))
                .map_err(|source| self.aws_error(source))?
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
    ) -> Result<PollStats, TriggerError> {
        let mut stats = PollStats {
            records: records.len(),
            ..Default::default()
        };
        // (batch, attempts already made on it)
        let mut pending: Vec<(Vec<Record>, i64)> = vec![(records, 0)];
        while let Some((mut batch, attempts)) = pending.pop() {
            if let Some(max_age) = self
                .settings
                .maximum_record_age_in_seconds
                .map(std::time::Duration::from_secs)
            {
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
            let result = read_response(&outcome, &ids, self.settings.reports_item_failures());
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
                    if self.settings.bisect_batch_on_function_error == Some(true) && batch.len() > 1
                    {
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
    ) -> Result<(), TriggerError> {
        let exhausted = self
            .settings
            .maximum_retry_attempts
            .is_some_and(|limit| attempts > limit as i64);
        if exhausted {
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
    ) -> Result<(), TriggerError> {
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
        if let Some(url) = &self.on_failure_queue_url {
            clients
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(record.to_string())
                .send()
                .await
                .aws(|| format!("SendMessage to the on-failure destination {url}"))
                .map_err(|source| self.aws_error(source))?;
        }
        self.checkpoint(shard_id, last.sequence_number())
    }
}

/// One record of a shard, as a Kinesis event carries it.
pub struct ShardRecord<'a> {
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
    pub data: &'a [u8],
    pub arrival_ms: i64,
}

/// The Kinesis event for records read from one shard, as Lambda delivers it.
pub fn kinesis_event(
    stream_arn: &str,
    shard_id: &str,
    role_arn: &str,
    records: &[Record],
) -> Value {
    let records = records.iter().map(|r| ShardRecord {
        partition_key: r.partition_key().unwrap_or_default(),
        sequence_number: r.sequence_number(),
        data: r.data().as_ref(),
        arrival_ms: arrival_ms(r).unwrap_or(0),
    });
    let event = event_of(stream_arn, shard_id, role_arn, records);
    let mut value = serde_json::to_value(&event).expect("a Kinesis event serializes");
    // aws_lambda_events writes the arrival time as a string ("1795000000.123"); Lambda sends
    // a number with millisecond precision. Send what Lambda sends.
    for record in value["Records"].as_array_mut().into_iter().flatten() {
        let stamp = &mut record["kinesis"]["approximateArrivalTimestamp"];
        if let Some(number) = stamp
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            *stamp = number;
        }
        // Lambda names the encryption only for encrypted records; a plain one has no field.
        if let Some(kinesis) = record["kinesis"].as_object_mut() {
            kinesis.remove("encryptionType");
        }
    }
    value
}

/// The typed event of one shard's records (what a handler receives).
pub fn event_of<'a>(
    stream_arn: &str,
    shard_id: &str,
    role_arn: &str,
    records: impl IntoIterator<Item = ShardRecord<'a>>,
) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    event.records = records
        .into_iter()
        .map(|r| {
            let mut record = KinesisEventRecord::default();
            record.kinesis.partition_key = r.partition_key.to_owned();
            record.kinesis.sequence_number = r.sequence_number.to_owned();
            *record.kinesis.data = r.data.to_vec();
            record.kinesis.kinesis_schema_version = Some("1.0".into());
            record.kinesis.approximate_arrival_timestamp = SecondTimestamp(
                chrono::DateTime::from_timestamp_millis(r.arrival_ms).unwrap_or_default(),
            );
            record.aws_region = Some(REGION.to_owned());
            record.event_id = Some(format!("{shard_id}:{}", r.sequence_number));
            record.event_name = Some("aws:kinesis:record".into());
            record.event_source = Some("aws:kinesis".into());
            record.event_source_arn = Some(stream_arn.to_owned());
            record.event_version = Some("1.0".into());
            record.invoke_identity_arn = Some(role_arn.to_owned());
            record
        })
        .collect();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

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
