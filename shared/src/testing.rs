//! Test doubles for the AWS edge every function shares (the quarantine) and Lambda
//! events shaped the way the event source mappings send them. Only in test builds: this crate's
//! own tests, and the functions' through the `testing` feature of their dev-dependency.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine;
use serde_json::json;
use std::sync::Mutex;

use crate::contracts::Envelope;
use crate::quarantine::{Quarantine, QuarantineEntry, QuarantineError};

/// The ARN every [`kinesis_event`] record comes from.
pub const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/image-social-events";
/// The shard every [`kinesis_event`] record comes from.
pub const SHARD_ID: &str = "shardId-000000000000";

/// The quarantine queue, in memory.
#[derive(Default)]
pub struct MemoryQuarantine {
    entries: Mutex<Vec<QuarantineEntry>>,
    broken: bool,
    /// Whether a broken quarantine is missing or refused (fatal) rather than busy.
    missing: bool,
}

impl MemoryQuarantine {
    /// A quarantine every write to fails, as when the queue is missing or the function may not
    /// send to it.
    pub fn broken() -> Self {
        Self {
            broken: true,
            missing: true,
            ..Self::default()
        }
    }

    /// A quarantine every write to fails for a while (throttling, 5xx): not fatal.
    pub fn busy() -> Self {
        Self {
            broken: true,
            ..Self::default()
        }
    }

    pub fn entries(&self) -> Vec<QuarantineEntry> {
        self.entries.lock().expect("quarantine lock").clone()
    }
}

impl Quarantine for MemoryQuarantine {
    async fn put(&self, entry: &QuarantineEntry, raw: &[u8]) -> Result<(), QuarantineError> {
        let mut entry = entry.clone();
        if entry.raw_truncated {
            entry.raw_object = Some(crate::quarantine::ClaimCheck {
                bucket: "memory".into(),
                key: entry.claim_check_key(),
                bytes: raw.len() as u64,
            });
        }
        if self.broken {
            return Err(QuarantineError {
                queue_url: "memory://quarantine".into(),
                detail: "the test broke this queue".into(),
                fatal: self.missing,
            });
        }
        self.entries.lock().expect("quarantine lock").push(entry);
        Ok(())
    }
}

/// A Kinesis batch of one shard holding `records` in order, with sequence numbers 100, 101, ...
pub fn kinesis_event<R: AsRef<[u8]>>(records: &[R]) -> KinesisEvent {
    let records: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let sequence = (100 + i).to_string();
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0", "partitionKey": "test", "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1764296460.123
                },
                "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("{SHARD_ID}:{sequence}"),
                "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
                "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a well-formed Kinesis event")
}

/// A Kinesis batch of these events, encoded as producers put them on the stream.
pub fn kinesis_event_of(envelopes: &[Envelope]) -> KinesisEvent {
    let encoded: Vec<Vec<u8>> = envelopes.iter().map(Envelope::to_json).collect();
    kinesis_event(&encoded)
}

/// An SQS batch from queue `queue` (`.fifo` for a FIFO queue), message ids m1, m2, ...
pub fn sqs_event<B: AsRef<str>>(queue: &str, bodies: &[B]) -> SqsEvent {
    let records: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("m{}", i + 1), "receiptHandle": "rh", "body": body.as_ref(),
                "attributes": {"ApproximateReceiveCount": "2"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a well-formed SQS event")
}
