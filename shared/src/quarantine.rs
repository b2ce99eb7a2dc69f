//! The quarantine: one SQS queue, shared by every function, holding each record that can never
//! be processed (a stream record that is not the JSON envelope described in docs/EVENTS.md, an
//! SQS message that is not an S3 notification), with its raw bytes, so that nothing is lost
//! when it is acknowledged. A record whose entry would not fit an SQS message is stored whole in
//! the quarantine bucket, and its entry points at it (a claim check). `cargo local quarantine`
//! lists the entries and redrives one; the runbook says how on AWS.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::future::Future;

use crate::contracts::{Timestamp, sniff_correlation_id};

/// Where a record came from: enough to find it again on its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordSource {
    Sqs {
        queue_arn: String,
        message_id: String,
    },
    Kinesis {
        stream_arn: String,
        shard_id: String,
        sequence_number: String,
        /// What a redrive puts the record back under, so it lands on the shard (and in the
        /// order) of its image's other events. Absent from entries written before it was kept.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        partition_key: String,
    },
    /// A change record of a DynamoDB table's stream (the relay's outbox).
    DynamoDbStream {
        stream_arn: String,
        sequence_number: String,
    },
}

impl RecordSource {
    /// A short id for log lines.
    pub fn id(&self) -> String {
        match self {
            RecordSource::Sqs { message_id, .. } => format!("sqs:{message_id}"),
            RecordSource::Kinesis {
                shard_id,
                sequence_number,
                ..
            } => format!("{shard_id}:{sequence_number}"),
            RecordSource::DynamoDbStream {
                sequence_number, ..
            } => format!("ddb:{sequence_number}"),
        }
    }
}

/// One quarantined record: the message body on the quarantine queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub function: String,
    /// snake_case code, e.g. `malformed_envelope`.
    pub reason: String,
    /// The error, for people.
    pub detail: String,
    pub source: RecordSource,
    pub correlation_id: Option<String>,
    /// The record's bytes: as text when they are UTF-8 ...
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw_text: Option<String>,
    /// ... otherwise base64.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw_base64: Option<String>,
    /// True when the raw bytes here were cut to fit an SQS message: the whole record is in
    /// `raw_object` (or, from a function without a quarantine bucket, only on its source, for
    /// the source's retention).
    #[serde(default)]
    pub raw_truncated: bool,
    /// Where the whole record is stored when it did not fit the message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw_object: Option<ClaimCheck>,
    pub quarantined_at: Timestamp,
}

/// A record stored whole in the quarantine bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCheck {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
}

/// SQS takes 256 KiB per message; leave room for the entry's other fields and for base64.
const MAX_RAW_BYTES: usize = 160 * 1024;
/// SQS's largest message body, in bytes: what the entry's JSON must fit, escapes included.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Whether SQS accepts the text in a message body: #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to
/// #xFFFD and #x10000 to #x10FFFF. JSON passes U+FFFE and U+FFFF unescaped, and SQS refuses
/// them on every attempt.
fn sqs_accepts(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    })
}

/// `text` with what SQS refuses replaced by U+FFFD (for the fields made for people).
fn for_sqs(text: &str) -> String {
    if sqs_accepts(text) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if sqs_accepts(c.encode_utf8(&mut [0; 4])) {
                c
            } else {
                '\u{FFFD}'
            }
        })
        .collect()
}

impl QuarantineEntry {
    /// An entry that SQS always accepts: the raw bytes are text only when SQS can carry that
    /// text, base64 otherwise, and cut (saying so) until the entry's JSON fits a message.
    pub fn new(
        function: &str,
        reason: &str,
        detail: String,
        source: RecordSource,
        raw: &[u8],
    ) -> Self {
        let mut keep = raw.len().min(MAX_RAW_BYTES);
        loop {
            let entry = Self::keeping(function, reason, &detail, &source, raw, keep);
            // Escaping can grow text up to 6x (a control character becomes \u00XX).
            if keep == 0 || entry.encoded_len() <= MAX_MESSAGE_BYTES {
                return entry;
            }
            keep = keep * 3 / 4;
        }
    }

    fn keeping(
        function: &str,
        reason: &str,
        detail: &str,
        source: &RecordSource,
        raw: &[u8],
        keep: usize,
    ) -> Self {
        let kept = &raw[..keep];
        let (raw_text, raw_base64) = match std::str::from_utf8(kept) {
            Ok(text) if sqs_accepts(text) => (Some(text.to_owned()), None),
            _ => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(kept)),
            ),
        };
        Self {
            function: function.to_owned(),
            reason: reason.to_owned(),
            detail: for_sqs(detail),
            source: source.clone(),
            correlation_id: sniff_correlation_id(raw).map(|c| for_sqs(&c)),
            raw_text,
            raw_base64,
            raw_truncated: keep < raw.len(),
            raw_object: None,
            quarantined_at: Timestamp::now(),
        }
    }

    /// The size of the message body this entry becomes.
    pub fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |body| body.len())
    }

    /// Where its claim check goes: one key per record and function, so a quarantine write
    /// retried after a crash overwrites its own object.
    pub fn claim_check_key(&self) -> String {
        let id: String = self
            .source
            .id()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "quarantine/{}/{}/{id}",
            self.function,
            &self.quarantined_at.to_string()[..10]
        )
    }

    /// The raw bytes as recorded in the entry (a prefix when `raw_truncated`).
    pub fn raw_bytes(&self) -> Vec<u8> {
        match (&self.raw_text, &self.raw_base64) {
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "could not write to the quarantine queue {queue_url}: {detail}; check QUARANTINE_QUEUE_URL and the function's sqs:SendMessage permission"
)]
pub struct QuarantineError {
    pub queue_url: String,
    pub detail: String,
    /// The quarantine cannot be written at all (the queue or bucket does not exist, or the
    /// function may not write it): no retry helps until an operator acts, so the invocation
    /// fails and the Errors alarm fires, while the record stays on its source.
    pub fatal: bool,
}

/// Whether an SQS or S3 error says the quarantine itself is missing or refused to this
/// function, rather than busy. The SQS SDK reads its codes from the `x-amzn-query-error`
/// header in their query-era form (`AWS.SimpleQueueService.NonExistentQueue`,
/// `KMS.DisabledException`, …; `QueueDoesNotExist` is the JSON shape's name), `AccessDenied`
/// or a KMS refusal of the queue's key; S3 answers `NoSuchBucket` or `AccessDenied`, and both
/// a 403.
pub fn is_unwritable(code: Option<&str>, status: Option<u16>) -> bool {
    status == Some(403)
        || matches!(
            code,
            Some(
                "QueueDoesNotExist"
                    | "AWS.SimpleQueueService.NonExistentQueue"
                    | "AccessDenied"
                    | "AccessDeniedException"
                    | "KMS.AccessDeniedException"
                    | "KMS.DisabledException"
                    | "KMS.NotFoundException"
                    | "KMS.InvalidStateException"
                    | "KMS.InvalidKeyUsageException"
                    | "KMS.OptInRequired"
                    | "NoSuchBucket"
                    | "InvalidAccessKeyId"
                    | "UnrecognizedClientException"
            )
        )
}

/// [`is_unwritable`] of an SDK error.
fn unwritable<E: aws_sdk_sqs::error::ProvideErrorMetadata, R>(
    error: &aws_sdk_sqs::error::SdkError<E, R>,
    status: impl Fn(&R) -> u16,
) -> bool {
    is_unwritable(
        error.as_service_error().and_then(|e| e.code()),
        error.raw_response().map(status),
    )
}

/// Where permanently failing records go.
pub trait Quarantine {
    /// Writes the entry of a record whose bytes are `raw`: whole in the entry when they fit,
    /// otherwise stored whole beside it (a claim check) where the quarantine has a bucket.
    fn put(
        &self,
        entry: &QuarantineEntry,
        raw: &[u8],
    ) -> impl Future<Output = Result<(), QuarantineError>>;
}

/// The quarantine queue of template.yaml, and its bucket for claim checks.
#[derive(Clone)]
pub struct SqsQuarantine {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    claim_checks: Option<(aws_sdk_s3::Client, String)>,
}

impl SqsQuarantine {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            claim_checks: None,
        }
    }

    /// Stores records too large for their entry in `bucket` (template.yaml's QuarantineBucket).
    pub fn with_claim_checks(mut self, s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        self.claim_checks = Some((s3, bucket.into()));
        self
    }

    /// The quarantine the environment names: `QUARANTINE_QUEUE_URL`, and `QUARANTINE_BUCKET`
    /// for claim checks (without it, an entry too large keeps a prefix and says so).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, crate::config::ConfigError> {
        let quarantine = Self::new(
            aws_sdk_sqs::Client::new(sdk),
            crate::config::required("QUARANTINE_QUEUE_URL")?,
        );
        Ok(match std::env::var("QUARANTINE_BUCKET") {
            Ok(bucket) if !bucket.is_empty() => {
                quarantine.with_claim_checks(aws_sdk_s3::Client::new(sdk), bucket)
            }
            _ => quarantine,
        })
    }
}

impl Quarantine for SqsQuarantine {
    async fn put(&self, entry: &QuarantineEntry, raw: &[u8]) -> Result<(), QuarantineError> {
        let mut entry = entry.clone();
        if let (true, Some((s3, bucket))) = (entry.raw_truncated, &self.claim_checks) {
            let key = entry.claim_check_key();
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .content_type("application/octet-stream")
                .body(aws_sdk_s3::primitives::ByteStream::from(raw.to_vec()))
                .send()
                .await
                .map_err(|e| QuarantineError {
                    queue_url: format!("s3://{bucket}/{key}"),
                    fatal: unwritable(&e, |r| r.status().as_u16()),
                    detail: format!(
                        "{}; check QUARANTINE_BUCKET and the function's s3:PutObject permission",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ),
                })?;
            entry.raw_object = Some(ClaimCheck {
                bucket: bucket.clone(),
                key,
                bytes: raw.len() as u64,
            });
        }
        let body = serde_json::to_string(&entry).map_err(|e| self.error(e, false))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                let fatal = unwritable(&e, |r| r.status().as_u16());
                self.error(aws_sdk_sqs::error::DisplayErrorContext(e), fatal)
            })?;
        Ok(())
    }
}

impl SqsQuarantine {
    fn error(&self, detail: impl std::fmt::Display, fatal: bool) -> QuarantineError {
        QuarantineError {
            queue_url: self.queue_url.clone(),
            detail: detail.to_string(),
            fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_refused_quarantine_is_unwritable_and_throttling_is_not() {
        for code in [
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "AccessDenied",
            "KMS.DisabledException",
            "KMS.AccessDeniedException",
            "NoSuchBucket",
        ] {
            assert!(is_unwritable(Some(code), Some(400)), "{code}");
        }
        assert!(is_unwritable(Some("anything"), Some(403)));
        for code in ["RequestThrottled", "KMS.ThrottlingException", "SlowDown"] {
            assert!(!is_unwritable(Some(code), Some(400)), "{code}");
        }
    }

    fn source() -> RecordSource {
        RecordSource::Kinesis {
            stream_arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            shard_id: "shardId-000000000000".into(),
            sequence_number: "42".into(),
            partition_key: "beach".into(),
        }
    }

    #[test]
    fn text_is_kept_as_text_and_binary_as_base64() {
        let text = QuarantineEntry::new(
            "like-counter",
            "malformed_envelope",
            "x".into(),
            source(),
            br#"{"correlation_id":"c-1"}"#,
        );
        assert_eq!(
            text.raw_text.as_deref(),
            Some(r#"{"correlation_id":"c-1"}"#)
        );
        assert_eq!(text.correlation_id.as_deref(), Some("c-1"));
        let binary = QuarantineEntry::new(
            "like-counter",
            "malformed_envelope",
            "x".into(),
            source(),
            &[0xff, 0x00, 0xfe],
        );
        assert_eq!(binary.raw_base64.as_deref(), Some("/wD+"));
        assert_eq!(binary.raw_bytes(), vec![0xff, 0x00, 0xfe]);
    }

    #[test]
    fn oversized_records_are_truncated_and_say_so() {
        let entry = QuarantineEntry::new(
            "notifier",
            "malformed_envelope",
            "x".into(),
            source(),
            &vec![b'a'; MAX_RAW_BYTES + 1],
        );
        assert!(entry.raw_truncated);
        assert_eq!(entry.raw_text.unwrap().len(), MAX_RAW_BYTES);
    }

    #[test]
    fn every_entry_is_one_sqs_accepts_whatever_the_record_holds() {
        // Prepare: 200 KB of quotes (each escaped to two bytes), 150 KB of control characters
        // (SQS refuses them), and a record with U+FFFF, which JSON leaves unescaped
        let quotes = vec![b'"'; 200 * 1024];
        let controls = vec![0x01u8; 150 * 1024];
        let nonchar = "{\"x\":\"\u{FFFF}\"}".as_bytes().to_vec();

        // Act
        let entries: Vec<QuarantineEntry> = [&quotes, &controls, &nonchar]
            .into_iter()
            .map(|raw| {
                QuarantineEntry::new(
                    "notifier",
                    "malformed_envelope",
                    "bad \u{FFFF}".into(),
                    source(),
                    raw,
                )
            })
            .collect();

        // Assess: each fits an SQS message and holds only what SQS takes; the bytes kept are
        // a prefix of the record's, and a cut says so
        for (entry, raw) in entries.iter().zip([&quotes, &controls, &nonchar]) {
            let body = serde_json::to_string(entry).unwrap();
            assert!(body.len() <= MAX_MESSAGE_BYTES, "{} bytes", body.len());
            assert!(sqs_accepts(&body), "a character SQS refuses");
            let kept = entry.raw_bytes();
            assert!(raw.starts_with(&kept));
            assert_eq!(entry.raw_truncated, kept.len() < raw.len());
        }
        // Quotes stay text and are cut until their escaped JSON fits; control characters
        // SQS refuses travel whole as base64, as does U+FFFF.
        assert!(entries[0].raw_truncated && entries[0].raw_text.is_some());
        assert_eq!(entries[1].raw_bytes(), controls, "carried whole, as base64");
        assert_eq!(entries[2].raw_bytes(), nonchar, "carried whole, as base64");
        assert!(entries[2].raw_text.is_none());
        assert!(entries[2].detail.contains('\u{FFFD}'));
    }

    #[test]
    fn the_source_is_tagged_by_kind() {
        let json = serde_json::to_value(source()).unwrap();
        assert_eq!(json["kind"], "kinesis");
        assert_eq!(json["sequence_number"], "42");
    }
}
