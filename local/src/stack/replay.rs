//! Replaying the outbox: every event the images table holds from a moment on, put on the
//! stream again, unchanged, under its image id: `cargo local replay-outbox --since <time>`.
//! It recovers what a reader missed for longer than the stream keeps records (the runbook's
//! "Replaying the outbox" does the same on AWS with the CLI).
//!
//! HAZARD: an item keeps only its latest event, not its history, which is enough: consumers
//! keep the newest fact per (image, user) and deduplicate on `event_id`, so a replay ends in
//! the same counts and notifications. But only within `DedupRetentionHours` of `since`: older
//! image events' receipts have expired, and their owners would be told again.

use aws_sdk_dynamodb::types::AttributeValue;
use relay::publish::{KinesisSink, MAX_RECORDS, OutRecord, SinkError, StreamSink};
use snapglow::contracts::{Timestamp, occurred_at_ms};
use std::collections::HashMap;

use super::clients::{AwsError, AwsResult, LocalClients};

/// Calls of one batch's unput entries before the replay stops and says so.
const PUT_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Put(#[from] SinkError),
    #[error(
        "stream {stream} kept refusing {left} of the replayed events after {PUT_ATTEMPTS} calls (per-record throttling); run the replay again: what landed is absorbed as duplicates"
    )]
    Refused { stream: String, left: usize },
}

/// What a replay put back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Events put on the stream, image events first.
    pub events: usize,
    pub image_events: usize,
    /// Scan pages read and PutRecords calls made.
    pub scan_requests: usize,
    pub put_calls: usize,
}

/// One stored event: its record for the stream (its bytes under its image id), and whether
/// it is an image's own event.
struct Stored {
    record: OutRecord,
    image_event: bool,
    occurred_ms: i64,
}

/// Reads every item of `images_table` carrying an `event` from `since` on and puts the events
/// on `stream`, image events (which tell the notifier each image's owner) before likes, each
/// group oldest first, under the image id as the partition key.
pub async fn replay_outbox(
    clients: &LocalClients,
    images_table: &str,
    stream: &str,
    since: Timestamp,
) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed::default();
    let mut stored = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = clients
            .dynamodb
            .scan()
            .table_name(images_table)
            .filter_expression("attribute_exists(#e)")
            .expression_attribute_names("#e", "event")
            .projection_expression("#e")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .aws(|| format!("Scan of {images_table}"))?;
        replayed.scan_requests += 1;
        for item in page.items() {
            let Some(raw) = item.get("event").and_then(|v| v.as_s().ok()) else {
                continue;
            };
            let Ok(fields) = serde_json::from_str::<serde_json::Value>(raw) else {
                continue;
            };
            let occurred_ms = occurred_at_ms(raw.as_bytes()).unwrap_or(0);
            if occurred_ms < since.millis() {
                continue;
            }
            let kind = fields["type"].as_str().unwrap_or_default();
            stored.push(Stored {
                record: OutRecord {
                    partition_key: fields["data"]["image_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    data: raw.as_bytes().to_vec(),
                },
                image_event: matches!(kind, "ImagePublished" | "ImageRejected"),
                occurred_ms,
            });
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    stored.sort_by_key(|s| (!s.image_event, s.occurred_ms));
    replayed.image_events = stored.iter().filter(|s| s.image_event).count();
    let sink = KinesisSink {
        client: clients.kinesis.clone(),
        stream_name: stream.to_owned(),
    };
    for batch in stored.chunks(MAX_RECORDS) {
        put_all(&sink, batch, &mut replayed).await?;
    }
    replayed.events = stored.len();
    Ok(replayed)
}

/// Puts `batch` with the relay's own PutRecords call, then again only the entries a call left
/// unput, after a growing pause.
async fn put_all(
    sink: &KinesisSink,
    batch: &[Stored],
    replayed: &mut Replayed,
) -> Result<(), ReplayError> {
    let mut todo: Vec<OutRecord> = batch.iter().map(|s| s.record.clone()).collect();
    for attempt in 0..PUT_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(5))).await;
        }
        let codes = sink.put_records(&todo).await?;
        replayed.put_calls += 1;
        todo = todo
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !matches!(codes.get(*i), Some(None)))
            .map(|(_, record)| record)
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
    }
    Err(ReplayError::Refused {
        stream: sink.stream_name.clone(),
        left: todo.len(),
    })
}
