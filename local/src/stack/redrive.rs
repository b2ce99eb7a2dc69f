//! Putting a quarantined record back where it came from, once what made it fail is fixed:
//! `cargo local quarantine redrive <id>`. The consumers deduplicate every event, so a record
//! redriven twice, or one that was in fact applied, changes nothing, but only while they
//! remember it: for `DedupRetentionHours` after it happened.
//!
//! HAZARD: past that, a redriven like can count again, or come back after its undo was
//! forgotten. The clock that matters is the event's own `occurred_at`, which no re-quarantine
//! restarts (an entry's `quarantined_at` restarts with every quarantine), so a redrive older
//! than the retention is refused with the safe alternative.

use snapglow::contracts::{Timestamp, occurred_at_ms};
use snapglow::quarantine::{QuarantineEntry, RecordSource};

use super::clients::{AwsError, AwsResult, LocalClients};
use super::queues::take;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(
        "no message {0} on the quarantine queue (`cargo local quarantine` lists the ids; a message another reader holds is back within 60 s)"
    )]
    NotFound(String),
    #[error("quarantine message {id} is not a quarantine entry: {detail}")]
    NotAnEntry { id: String, detail: String },
    #[error(
        "quarantine message {id} kept only the first {kept} bytes of its record and no claim check: the whole record is only on its source ({source_id}); nothing was redriven"
    )]
    NotWhole {
        id: String,
        kept: usize,
        source_id: String,
    },
    #[error(
        "quarantine message {id} holds an event from {age_hours} h ago, beyond the consumers' DedupRetentionHours ({retention_hours} h): they may have forgotten it, or a later undo of it, so a redrive could count it twice; nothing was redriven. Replay the image's likes from the images table instead (the runbook's \"Replaying the outbox\"), which carries each like's latest state"
    )]
    TooOld {
        id: String,
        age_hours: u64,
        retention_hours: u64,
    },
    #[error(
        "quarantine message {id} came from the outbox table's stream, which only DynamoDB writes: touch the image's item instead (the runbook's outbox replay); nothing was redriven"
    )]
    TableStream { id: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where a record went back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    pub to: String,
    pub bytes: usize,
}

/// Puts the record of quarantine message `message_id` back on its source (the stream, under
/// its partition key, or the queue), then deletes the message. Nothing is deleted unless the
/// record is back. A stream record older than `dedup_retention` is refused (see the module).
pub async fn redrive(
    clients: &LocalClients,
    quarantine_url: &str,
    message_id: &str,
    dedup_retention: std::time::Duration,
) -> Result<Redriven, RedriveError> {
    let (body, receipt) = take(clients, quarantine_url, message_id)
        .await?
        .ok_or_else(|| RedriveError::NotFound(message_id.to_owned()))?;
    let entry: QuarantineEntry =
        serde_json::from_str(&body).map_err(|e| RedriveError::NotAnEntry {
            id: message_id.to_owned(),
            detail: e.to_string(),
        })?;
    let raw = whole_record(clients, message_id, &entry).await?;
    if let RecordSource::Kinesis { .. } = entry.source {
        check_age(message_id, &entry, &raw, dedup_retention, Timestamp::now())?;
    }
    let to = match &entry.source {
        RecordSource::Kinesis {
            stream_arn,
            partition_key,
            ..
        } => {
            let stream = stream_arn.rsplit('/').next().unwrap_or(stream_arn);
            // Entries written before the partition key was kept: the image id is the key.
            let key = if partition_key.is_empty() {
                image_id_of(&raw).unwrap_or_else(|| "redriven".to_owned())
            } else {
                partition_key.clone()
            };
            clients
                .kinesis
                .put_record()
                .stream_name(stream)
                .partition_key(&key)
                .data(aws_sdk_kinesis::primitives::Blob::new(raw.clone()))
                .send()
                .await
                .aws(|| format!("PutRecord to stream {stream}"))?;
            format!("stream {stream} (partition key {key})")
        }
        RecordSource::Sqs { queue_arn, .. } => {
            let name = queue_arn.rsplit(':').next().unwrap_or(queue_arn);
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .aws(|| format!("GetQueueUrl of {name}"))?
                .queue_url
                .unwrap_or_default();
            clients
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(String::from_utf8_lossy(&raw))
                .send()
                .await
                .aws(|| format!("SendMessage to {name}"))?;
            format!("queue {name}")
        }
        RecordSource::DynamoDbStream { .. } => {
            return Err(RedriveError::TableStream {
                id: message_id.to_owned(),
            });
        }
    };
    clients
        .sqs
        .delete_message()
        .queue_url(quarantine_url)
        .receipt_handle(receipt)
        .send()
        .await
        .aws(|| format!("DeleteMessage {message_id} from the quarantine"))?;
    Ok(Redriven {
        to,
        bytes: raw.len(),
    })
}

/// The record's whole bytes: from its claim check when it has one, else from the entry.
async fn whole_record(
    clients: &LocalClients,
    message_id: &str,
    entry: &QuarantineEntry,
) -> Result<Vec<u8>, RedriveError> {
    if let Some(claim) = &entry.raw_object {
        let object = clients
            .s3
            .get_object()
            .bucket(&claim.bucket)
            .key(&claim.key)
            .send()
            .await
            .aws(|| format!("GetObject s3://{}/{}", claim.bucket, claim.key))?;
        let bytes = object
            .body
            .collect()
            .await
            .aws(|| format!("reading s3://{}/{}", claim.bucket, claim.key))?;
        return Ok(bytes.into_bytes().to_vec());
    }
    let raw = entry.raw_bytes();
    if entry.raw_truncated {
        return Err(RedriveError::NotWhole {
            id: message_id.to_owned(),
            kept: raw.len(),
            source_id: entry.source.id(),
        });
    }
    Ok(raw)
}

fn image_id_of(raw: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(raw).ok()?;
    value["data"]["image_id"].as_str().map(str::to_owned)
}

/// Refuses a record whose event happened longer ago than the consumers remember events: its
/// `occurred_at`, or, for a record too broken to carry one, when it was quarantined.
pub fn check_age(
    message_id: &str,
    entry: &QuarantineEntry,
    raw: &[u8],
    dedup_retention: std::time::Duration,
    now: Timestamp,
) -> Result<(), RedriveError> {
    let since_ms = occurred_at_ms(raw).unwrap_or(entry.quarantined_at.millis());
    let age_ms = u64::try_from(now.millis() - since_ms).unwrap_or(0);
    if u128::from(age_ms) < dedup_retention.as_millis() {
        return Ok(());
    }
    Err(RedriveError::TooOld {
        id: message_id.to_owned(),
        age_hours: age_ms / 3_600_000,
        retention_hours: dedup_retention.as_secs() / 3600,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn entry_of(raw: &[u8], quarantined_at_ms: i64) -> QuarantineEntry {
        let mut entry = QuarantineEntry::new(
            "like-counter",
            "corrupt_like_state",
            "test".into(),
            RecordSource::Kinesis {
                stream_arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
                shard_id: "shardId-000000000000".into(),
                sequence_number: "1".into(),
                partition_key: "beach".into(),
            },
            raw,
        );
        entry.quarantined_at = Timestamp::from_millis(quarantined_at_ms);
        entry
    }

    #[test]
    fn a_redrive_is_refused_once_the_event_is_older_than_the_consumers_remember() {
        // Prepare: a like that happened 400 h ago, quarantined again 1 h ago (which restarted
        // the entry's own clock), and a retention of 360 h
        let now = Timestamp::from_millis(1_800_000_000_000);
        let occurred = now.millis() - 400 * HOUR_MS;
        let raw = format!(
            r#"{{"type":"ImageLiked","occurred_at":"{}"}}"#,
            Timestamp::from_millis(occurred)
        );
        let retention = std::time::Duration::from_secs(360 * 3600);
        let requarantined = entry_of(raw.as_bytes(), now.millis() - HOUR_MS);

        // Act
        let refused = check_age("m1", &requarantined, raw.as_bytes(), retention, now);

        // Assess: refused on the event's age, with the safe path
        let Err(error) = refused else {
            panic!("a 400 h old event must not be redriven");
        };
        let message = error.to_string();
        assert!(message.contains("400 h ago"), "{message}");
        assert!(message.contains("Replaying the outbox"), "{message}");
        // AND a recent event passes, as does an unreadable record quarantined recently
        let recent = format!(
            r#"{{"occurred_at":"{}"}}"#,
            Timestamp::from_millis(now.millis() - 10 * HOUR_MS)
        );
        assert!(check_age("m2", &requarantined, recent.as_bytes(), retention, now).is_ok());
        let broken = entry_of(b"{", now.millis() - HOUR_MS);
        assert!(check_age("m3", &broken, b"{", retention, now).is_ok());
        let old_broken = entry_of(b"{", now.millis() - 500 * HOUR_MS);
        assert!(check_age("m4", &old_broken, b"{", retention, now).is_err());
    }
}
