//! Stream → function, as Lambda's poller does it for Kinesis and DynamoDB streams alike:
//! every shard in order, one batch at a time, a checkpoint per shard; a partial response
//! resumes at the lowest reported sequence number; errors are retried up to
//! `MaximumRetryAttempts`, bisected when `BisectBatchOnFunctionError`, records older than
//! `MaximumRecordAgeInSeconds` are given up on, and what is given up on is described on the
//! on-failure destination (pointers to the records, not the records, as AWS sends).
//! Where the records come from and how one looks in the event is the source's
//! ([`super::kinesis`], [`super::dynamodb`]); a mapping's filter criteria drop records
//! before any invocation, as Lambda's event filtering does.

use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::checkpoints::CheckpointStore;
use super::{BatchResult, PollStats, TriggerError, read_response};
use crate::lambda::Invoke;
use crate::stack::clients::{AwsError, AwsResult, LocalClients};
use crate::template::model::KinesisEvent as StreamSettings;

/// One record read from a shard, already shaped as the function's event carries it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub sequence: String,
    /// When it reached the stream (Kinesis' arrival, DynamoDB's creation time), in ms.
    pub arrival_ms: Option<i64>,
    pub record: Value,
}

/// Where a stream mapping reads.
#[derive(Debug, Clone)]
pub enum Source {
    /// With the mapping's filter patterns, matched against the record with its `data`
    /// decoded as JSON, as Lambda does (none: every record).
    Kinesis {
        stream_name: String,
        filters: Vec<Value>,
    },
    /// With the mapping's filter patterns (none: every record).
    DynamoDb { filters: Vec<Value> },
}

/// A stream → function mapping with its own position in every shard.
pub struct StreamMapping {
    pub name: String,
    /// Calls with the function's key (the execution role's grants).
    pub clients: LocalClients,
    pub source: Source,
    pub stream_arn: String,
    pub function_arn: String,
    pub settings: StreamSettings,
    /// The on-failure destination's queue, if the template names one.
    pub on_failure_queue_url: Option<String>,
    pub function: Box<dyn Invoke>,
    /// The last sequence number processed (or given up on) per shard.
    pub checkpoints: BTreeMap<String, String>,
    /// Where the checkpoints are kept between runs.
    pub store: CheckpointStore,
    /// Per shard, a batch waiting for its next attempt: (its first sequence number, attempts
    /// made). A failed batch is retried on the next poll, not at once, as Lambda's poller
    /// backs off between attempts; the shard makes no progress meanwhile.
    pub retrying: BTreeMap<String, (String, i64)>,
    /// Per processed record: put on the stream → processed, in ms (end-to-end latency).
    pub latencies_ms: Vec<u64>,
    /// How long the stream keeps a record: older ones are trimmed before they are read.
    pub retention: std::time::Duration,
}

/// Kinesis sequence numbers are decimal strings of any length: compare them as numbers.
pub fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl StreamMapping {
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

    fn record_latencies(&mut self, processed: &[Fetched]) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.latencies_ms.extend(
            processed
                .iter()
                .filter_map(|r| r.arrival_ms)
                .map(|arrived| (now_ms - arrived).max(0) as u64),
        );
    }

    /// Polls every shard once; returns what was done.
    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, TriggerError> {
        let limit = self.settings.batch_size.clamp(1, 10_000) as i32;
        let from_start = self.settings.starts_at_trim_horizon();
        let batches = match &self.source {
            Source::Kinesis { stream_name, .. } => {
                let role = format!("{}-role", self.function_arn);
                super::kinesis::fetch(
                    clients,
                    stream_name,
                    &self.stream_arn,
                    &role,
                    &self.checkpoints,
                    from_start,
                    limit,
                )
                .await
            }
            Source::DynamoDb { .. } => {
                super::dynamodb::fetch(
                    clients,
                    &self.stream_arn,
                    &self.checkpoints,
                    from_start,
                    limit,
                )
                .await
            }
        }
        .map_err(|source| self.aws_error(source))?;
        let mut stats = PollStats::default();
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (shard_id, records) in batches {
            let Some(last) = records.last().map(|r| r.sequence.clone()) else {
                continue;
            };
            // HAZARD: the emulator keeps records for ever; AWS trims them at the retention
            // period, whatever the mapping's retries. A reader that is down or blocked longer
            // than that never sees them: only the outbox replay brings them back.
            let trimmed = records
                .iter()
                .take_while(|r| {
                    r.arrival_ms
                        .is_some_and(|t| now_ms - t > self.retention.as_millis() as i64)
                })
                .count();
            let records: Vec<Fetched> = if trimmed > 0 {
                stats.expired += trimmed;
                self.retrying.remove(&shard_id);
                let mut records = records;
                let gone: Vec<Fetched> = records.drain(..trimmed).collect();
                if let Some(gone) = gone.last() {
                    self.checkpoint(&shard_id, &gone.sequence)?;
                }
                records
            } else {
                records
            };
            let wanted: Vec<Fetched> = match &self.source {
                Source::DynamoDb { filters } if !filters.is_empty() => records
                    .into_iter()
                    .filter(|r| filters.iter().any(|f| super::filter::matches(f, &r.record)))
                    .collect(),
                Source::Kinesis { filters, .. } if !filters.is_empty() => records
                    .into_iter()
                    .filter(|r| {
                        let view = super::kinesis::filter_view(&r.record);
                        filters.iter().any(|f| super::filter::matches(f, &view))
                    })
                    .collect(),
                _ => records,
            };
            let delivered_to = wanted.last().map(|r| r.sequence.clone());
            if !wanted.is_empty() {
                stats += self.deliver(clients, &shard_id, wanted).await?;
            }
            // Filtered-out records after the last delivered one are consumed, as Lambda's
            // event filtering drops them: move past them once the delivered ones are done.
            if self.checkpoints.get(&shard_id) == delivered_to.as_ref() || delivered_to.is_none() {
                self.checkpoint(&shard_id, &last)?;
            }
        }
        Ok(stats)
    }

    /// Delivers one batch of a shard until it is processed or given up on; moves the checkpoint.
    async fn deliver(
        &mut self,
        clients: &LocalClients,
        shard_id: &str,
        records: Vec<Fetched>,
    ) -> Result<PollStats, TriggerError> {
        let mut stats = PollStats {
            records: records.len(),
            ..Default::default()
        };
        let attempts_made = match (self.retrying.remove(shard_id), records.first()) {
            (Some((sequence, attempts)), Some(first)) if first.sequence == sequence => attempts,
            _ => 0,
        };
        // (batch, attempts already made on it)
        let mut pending: Vec<(Vec<Fetched>, i64)> = vec![(records, attempts_made)];
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
                        r.arrival_ms
                            .is_some_and(|t| now_ms - t > max_age.as_millis() as i64)
                    })
                    .count();
                if expired > 0 {
                    let old: Vec<Fetched> = batch.drain(..expired).collect();
                    self.give_up(clients, shard_id, &old, "RecordAgeExceeded", attempts, None)
                        .await?;
                    stats.given_up += old.len();
                    if batch.is_empty() {
                        continue;
                    }
                }
            }
            let ids: Vec<String> = batch.iter().map(|r| r.sequence.clone()).collect();
            let event = json!({ "Records": batch.iter().map(|r| &r.record).collect::<Vec<_>>() });
            let newest_ms = batch.last().and_then(|r| r.arrival_ms);
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
                    let rest: Vec<Fetched> = batch.split_off(at);
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
        batch: Vec<Fetched>,
        attempts: i64,
        error: Option<String>,
        pending: &mut Vec<(Vec<Fetched>, i64)>,
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
            // Retried on the next poll; what is behind it in the shard waits for it.
            let first = batch.first().expect("non-empty").sequence.clone();
            self.retrying.insert(shard_id.to_owned(), (first, attempts));
            pending.clear();
        }
        Ok(())
    }

    /// Moves past records the mapping gives up on, describing them on the on-failure destination.
    async fn give_up(
        &mut self,
        clients: &LocalClients,
        shard_id: &str,
        batch: &[Fetched],
        condition: &str,
        attempts: i64,
        error: Option<String>,
    ) -> Result<(), TriggerError> {
        let (first, last) = (
            batch.first().expect("non-empty"),
            batch.last().expect("non-empty"),
        );
        let arrival = |r: &Fetched| {
            r.arrival_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        let info_key = match self.source {
            Source::Kinesis { .. } => "KinesisBatchInfo",
            Source::DynamoDb { .. } => "DDBStreamBatchInfo",
        };
        let mut record = json!({
            "requestContext": { "requestId": uuid::Uuid::new_v4().to_string(), "functionArn": self.function_arn, "condition": condition, "approximateInvokeCount": attempts },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            info_key: {
                "shardId": shard_id,
                "startSequenceNumber": first.sequence,
                "endSequenceNumber": last.sequence,
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
        self.checkpoint(shard_id, &last.sequence)
    }
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
