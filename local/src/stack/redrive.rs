//! Putting a quarantined record back where it came from, once what made it fail is fixed:
//! `cargo local quarantine redrive <id>`. The consumers deduplicate every event, so a record
//! redriven twice, or one that was in fact applied, changes nothing.

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
/// record is back.
pub async fn redrive(
    clients: &LocalClients,
    quarantine_url: &str,
    message_id: &str,
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
