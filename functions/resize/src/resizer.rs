//! One SQS message, end to end: the uploads it announces become renditions in S3 and an
//! ImagePublished (or ImageRejected) event on the stream.
//!
//! Redelivery is harmless: the same upload yields the same rendition keys and bytes, and the
//! same event id (derived from bucket, key and ETag), which consumers deduplicate on.

use snapglow::batch::{Classify, ErrorClass, Outcome, QueueMessage};
use snapglow::contracts::{
    Envelope, ImagePublishedV1, ImageRejectedV1, RenditionV1, SocialEvent, Timestamp,
};
use snapglow::stream::{PublishError, StreamPublisher};
use std::time::Instant;
use uuid::Uuid;

use crate::render::{Limits, RenderError, Rendered, RenditionSpec, render};
use crate::storage::{Objects, StorageError};
use crate::upload::{NotANotification, Notification, ObjectCreated, parse, upload_key};

#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    #[error(transparent)]
    NotANotification(#[from] NotANotification),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("rendering {key} did not finish: {detail}")]
    RenderTask { key: String, detail: String },
}

impl Classify for ResizeError {
    fn class(&self) -> ErrorClass {
        match self {
            ResizeError::NotANotification(_) => ErrorClass::Permanent,
            ResizeError::Storage(_) | ResizeError::Publish(_) | ResizeError::RenderTask { .. } => {
                ErrorClass::Transient
            }
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            ResizeError::NotANotification(_) => "not_an_s3_notification",
            ResizeError::Storage(_) => "s3_unavailable",
            ResizeError::Publish(_) => "stream_unavailable",
            ResizeError::RenderTask { .. } => "render_task_failed",
        }
    }
}

/// Namespace of the deterministic event ids resize publishes.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5a4c_9e1e_3b7d_4f0a_9d2c_6e8f_1a2b_3c4d);

pub fn event_id(object: &ObjectCreated, kind: &str) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{kind}:{}/{}@{}", object.bucket, object.key, object.etag).as_bytes(),
    )
}

pub struct Resizer {
    pub objects: Objects,
    pub publisher: StreamPublisher,
    pub renditions_bucket: String,
    pub specs: Vec<RenditionSpec>,
    pub limits: Limits,
}

impl Resizer {
    pub async fn handle_message(&self, message: QueueMessage) -> Result<Outcome, ResizeError> {
        let objects = match parse(&message.body)? {
            Notification::Test => return Ok(Outcome::Skipped("s3:TestEvent".into())),
            Notification::Created(objects) => objects,
        };
        let mut skipped = Vec::new();
        for object in &objects {
            if let Outcome::Skipped(reason) = self.handle_object(object).await? {
                skipped.push(reason);
            }
        }
        Ok(if skipped.len() == objects.len() {
            Outcome::Skipped(skipped.join("; "))
        } else {
            Outcome::Done
        })
    }

    async fn handle_object(&self, object: &ObjectCreated) -> Result<Outcome, ResizeError> {
        let started = Instant::now();
        let upload = match upload_key(&object.key) {
            Ok(upload) => upload,
            Err(reason) => return Ok(Outcome::Skipped(reason)),
        };
        let rejected_early = object
            .size
            .filter(|size| *size > self.limits.max_bytes)
            .map(|bytes| RenderError::TooLarge {
                bytes,
                limit: self.limits.max_bytes,
            });
        let (result, bytes_in, correlation_id) = match rejected_early {
            Some(error) => (
                Err(error),
                object.size.unwrap_or(0),
                event_id(object, "upload").to_string(),
            ),
            None => {
                let source = match self.objects.get(&object.bucket, &object.key).await {
                    Ok(source) => source,
                    Err(StorageError::Missing { .. }) => {
                        return Ok(Outcome::Skipped(format!(
                            "{} was deleted before it was processed",
                            object.key
                        )));
                    }
                    Err(error) => return Err(error.into()),
                };
                let correlation_id = source
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| event_id(object, "upload").to_string());
                let bytes_in = source.bytes.len() as u64;
                let (specs, limits) = (self.specs.clone(), self.limits);
                // CPU-bound: off the async threads, so the runtime keeps answering.
                let rendered =
                    tokio::task::spawn_blocking(move || render(&source.bytes, &specs, limits))
                        .await
                        .map_err(|e| ResizeError::RenderTask {
                            key: object.key.clone(),
                            detail: e.to_string(),
                        })?;
                (rendered, bytes_in, correlation_id)
            }
        };
        let (outcome, bytes_out, event) = match result {
            Ok(rendered) => {
                let bytes_out = rendered
                    .renditions
                    .iter()
                    .map(|r| r.bytes.len() as u64)
                    .sum::<u64>();
                let published = self
                    .store(object, &upload.image_id, &upload.owner_id, rendered)
                    .await?;
                (
                    "published",
                    bytes_out,
                    SocialEvent::ImagePublished(published),
                )
            }
            Err(error) => (
                "rejected",
                0,
                SocialEvent::ImageRejected(ImageRejectedV1 {
                    image_id: upload.image_id.clone(),
                    owner_id: upload.owner_id.clone(),
                    source_key: object.key.clone(),
                    reason: error.reason_code().to_owned(),
                    // Decoder messages may span lines; owners read this in one line.
                    message: error
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                }),
            ),
        };
        let envelope = Envelope {
            event_id: event_id(object, outcome),
            occurred_at: Timestamp::now(),
            correlation_id: correlation_id.clone(),
            producer: "resize".into(),
            event,
        };
        self.publisher.publish(&envelope).await?;
        tracing::info!(image_id = %upload.image_id, key = %object.key, outcome, ms = started.elapsed().as_millis() as u64, bytes_in, bytes_out, correlation_id = %correlation_id, event_id = %envelope.event_id, "upload processed");
        Ok(Outcome::Done)
    }

    /// Writes every rendition, then returns the event data that announces them.
    async fn store(
        &self,
        object: &ObjectCreated,
        image_id: &str,
        owner_id: &str,
        rendered: Rendered,
    ) -> Result<ImagePublishedV1, ResizeError> {
        let mut listed = Vec::with_capacity(rendered.renditions.len());
        let mut writes = Vec::with_capacity(rendered.renditions.len());
        for rendition in rendered.renditions {
            let key = format!(
                "renditions/{image_id}/{}.{}",
                rendition.name, rendition.extension
            );
            listed.push(RenditionV1 {
                name: rendition.name,
                key: key.clone(),
                width: rendition.width,
                height: rendition.height,
                bytes: rendition.bytes.len() as u64,
                content_type: rendition.content_type.to_owned(),
            });
            writes.push(async move {
                self.objects
                    .put(
                        &self.renditions_bucket,
                        &key,
                        rendition.bytes,
                        rendition.content_type,
                    )
                    .await
            });
        }
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(ImagePublishedV1 {
            image_id: image_id.to_owned(),
            owner_id: owner_id.to_owned(),
            source_key: object.key.clone(),
            source_etag: object.etag.clone(),
            width: rendered.width,
            height: rendered.height,
            renditions: listed,
        })
    }
}
