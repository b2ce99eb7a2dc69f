//! One SQS message, end to end: the uploads it announces become renditions in S3, and their
//! images turn published (or rejected) with an ImagePublished (or ImageRejected) event, in
//! one conditional write to the images table; the relay puts the event on the stream.
//!
//! Only uploads the API issued are processed: the image must be pending, for the key's owner,
//! at that very key. Anything else in the bucket is skipped with a reason, never published.
//!
//! Redelivery is harmless: the same upload yields the same rendition keys and bytes, and the
//! same event id (derived from bucket, key and ETag); once the image is finished, a redelivered
//! notification finds it so and changes nothing.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use snapglow::batch::{
    BatchContext, BatchFunction, BatchReport, Classify, ErrorClass, Outcome, QueueMessage,
    process_sqs,
};
use snapglow::contracts::{
    Envelope, ImagePublishedV2, ImageRejectedV1, RenditionV1, SocialEvent, Timestamp,
};
use snapglow::quarantine::Quarantine;
use std::time::Instant;
use uuid::Uuid;

use crate::registry::{FinishOutcome, Finished, ImagesTable, Registry, RegistryError};
use crate::render::{Limits, RenderError, Rendered, RenditionSpec, render_until};
use crate::storage::{Fetched, ObjectStore, S3Objects, StorageError};
use crate::upload::{NotANotification, Notification, ObjectCreated, UploadKey, parse, upload_key};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    #[error(transparent)]
    NotANotification(#[from] NotANotification),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("rendering {key} did not finish: {detail}")]
    RenderTask { key: String, detail: String },
    /// Even the rejection of an image could not be stored: the message is quarantined, the
    /// image stays pending, and the detail names what DynamoDB refused.
    #[error(
        "image {image_id} can be neither published nor rejected: DynamoDB refuses its item ({detail}); fix the write in resize's registry, then redrive the quarantined message"
    )]
    Unstorable { image_id: String, detail: String },
}

impl Classify for ResizeError {
    fn class(&self) -> ErrorClass {
        match self {
            ResizeError::NotANotification(_) | ResizeError::Unstorable { .. } => {
                ErrorClass::Permanent
            }
            // A missing or refused bucket or table: the invocation fails at once, so that the
            // Errors alarm fires now, not when the uploads reach the DLQ half an hour later.
            ResizeError::Storage(StorageError::Refused { .. }) => ErrorClass::Fatal,
            ResizeError::Registry(error) if error.refused => ErrorClass::Fatal,
            ResizeError::Storage(_) | ResizeError::Registry(_) | ResizeError::RenderTask { .. } => {
                ErrorClass::Transient
            }
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            ResizeError::NotANotification(_) => "not_an_s3_notification",
            ResizeError::Storage(_) => "s3_unavailable",
            ResizeError::Registry(_) => "images_table_unavailable",
            ResizeError::RenderTask { .. } => "render_task_failed",
            ResizeError::Unstorable { .. } => "unstorable",
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

/// Where a rendition of one version of an upload is stored. The version (the upload's ETag)
/// is in the key, so a slower render of an overwritten version can never replace the pixels
/// of the version that was published, and what is under a key never changes.
pub fn rendition_key(image_id: &str, etag: &str, name: &str, extension: &str) -> String {
    let version: String = etag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("renditions/{image_id}/{version}/{name}.{extension}")
}

/// Sets its flag when dropped: a render running on a blocking thread watches the flag.
#[derive(Default)]
struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The function: S3 and the images table unless a test hands it other stores.
pub struct Resizer<S = S3Objects, R = ImagesTable> {
    pub objects: S,
    pub registry: R,
    pub renditions_bucket: String,
    pub specs: Vec<RenditionSpec>,
    pub limits: Limits,
}

impl<S: ObjectStore, R: Registry> BatchFunction<SqsEvent> for Resizer<S, R> {
    type Response = SqsBatchResponse;

    /// One SQS batch: every message is handled, and those to redeliver are answered.
    async fn handle_batch<Q: Quarantine>(
        &self,
        event: SqsEvent,
        ctx: &BatchContext<'_, Q>,
    ) -> (SqsBatchResponse, BatchReport) {
        process_sqs(event, ctx, |message| self.handle_message(message)).await
    }
}

impl<S: ObjectStore, R: Registry> Resizer<S, R> {
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
            Err(reason) => return Ok(Outcome::Skipped(reason.to_string())),
        };
        let issued = match self.registry.issued(&upload.image_id).await? {
            Some(issued)
                if issued.owner_id == upload.owner_id && issued.upload_key == object.key =>
            {
                issued
            }
            _ => {
                // No image will ever own it (its pending image expired while the queue was
                // backed up, or the key names another's image): left to the lifecycle rule,
                // as a rejected upload is, or it would be stored for good.
                tracing::warn!(key = %object.key, "skipped an upload the API did not issue");
                self.expire_original(object).await?;
                return Ok(Outcome::Skipped(format!(
                    "not_issued: {} was not issued by the API to {}",
                    object.key, upload.owner_id
                )));
            }
        };
        if issued.status == "deleted" {
            // Its owner took the image back, and the eraser deleted its original; this is an
            // upload put again with its URL after that (If-None-Match passes once the key is
            // free). Nothing will ever own it: left to the lifecycle rule, as a rejection is.
            self.expire_original(object).await?;
            return Ok(Outcome::Skipped(format!(
                "deleted: image {} was taken back by its owner",
                upload.image_id
            )));
        }
        if issued.status != "pending" {
            return Ok(Outcome::Skipped(format!(
                "already_finished: image {} is {}",
                upload.image_id, issued.status
            )));
        }
        // Stamped at the origin (the upload request) and carried into the event.
        let correlation_id = issued.correlation_id.clone();
        let rejected_early = object
            .size
            .filter(|size| *size > self.limits.max_bytes)
            .map(|bytes| RenderError::TooLarge {
                bytes,
                limit: self.limits.max_bytes,
            });
        let (result, bytes_in) = match rejected_early {
            Some(error) => (Err(error), object.size.unwrap_or(0)),
            None => {
                let fetched = self
                    .objects
                    .get(
                        &object.bucket,
                        &object.key,
                        &object.etag,
                        self.limits.max_bytes,
                    )
                    .await;
                let source = match fetched {
                    Ok(Fetched::Upload(source)) => source,
                    Ok(Fetched::TooLarge { bytes }) => {
                        return self
                            .finish(
                                object,
                                &upload,
                                &correlation_id,
                                started,
                                Err(RenderError::TooLarge {
                                    bytes,
                                    limit: self.limits.max_bytes,
                                }),
                                bytes,
                            )
                            .await;
                    }
                    Err(StorageError::Missing { .. }) => {
                        return Ok(Outcome::Skipped(format!(
                            "{} was deleted before it was processed",
                            object.key
                        )));
                    }
                    Err(StorageError::Replaced { .. }) => {
                        return Ok(Outcome::Skipped(format!(
                            "stale: {} was overwritten after this notification (ETag {}); the newer upload's own notification is rendered",
                            object.key, object.etag
                        )));
                    }
                    Err(error) => return Err(error.into()),
                };
                let bytes_in = source.bytes.len() as u64;
                let (specs, limits) = (self.specs.clone(), self.limits);
                // HAZARD: a blocking task outlives the future that awaits it. When this
                // message's time is up (the batch's deadline drops the future), the guard
                // stops the render at its next stage instead of leaving it to burn the next
                // invocation's CPU.
                let stop = StopOnDrop::default();
                let flag = stop.flag();
                // CPU-bound: off the async threads, so the runtime keeps answering.
                let rendered = tokio::task::spawn_blocking(move || {
                    render_until(&source.bytes, &specs, limits, &flag)
                })
                .await
                .map_err(|e| ResizeError::RenderTask {
                    key: object.key.clone(),
                    detail: e.to_string(),
                })?
                .ok_or_else(|| ResizeError::RenderTask {
                    key: object.key.clone(),
                    detail: "stopped at the invocation's deadline".into(),
                })?;
                drop(stop);
                (rendered, bytes_in)
            }
        };
        self.finish(object, &upload, &correlation_id, started, result, bytes_in)
            .await
    }

    /// Stores the renditions (or not, for a rejection) and finishes the image with its event.
    async fn finish(
        &self,
        object: &ObjectCreated,
        upload: &UploadKey,
        correlation_id: &str,
        started: Instant,
        result: Result<Rendered, RenderError>,
        bytes_in: u64,
    ) -> Result<Outcome, ResizeError> {
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
            Err(error) => {
                self.expire_original(object).await?;
                (
                    "rejected",
                    0,
                    rejection(object, upload, error.reason_code(), &error.to_string()),
                )
            }
        };
        let written: Vec<String> = match &event {
            SocialEvent::ImagePublished(published) => (published.renditions.iter())
                .map(|r| r.key.clone())
                .collect(),
            _ => Vec::new(),
        };
        let mut envelope = self
            .record(object, upload, correlation_id, outcome, event)
            .await?;
        if let Recorded::Refused(refused) = envelope {
            // HAZARD: DynamoDB refuses the published item for good (over 400 KB): retrying
            // would park the upload in the DLQ and leave the image pending for ever. The
            // owner is told instead, with a rejection small enough to store.
            let message = format!(
                "the photo was processed, but its record is larger than the images table accepts ({refused})"
            );
            self.expire_original(object).await?;
            let event = rejection(object, upload, "unstorable", &message);
            envelope = self
                .record(object, upload, correlation_id, "rejected", event)
                .await?;
        }
        let envelope = match envelope {
            Recorded::Finished(envelope) => envelope,
            Recorded::ByAnother => {
                // HAZARD: its owner may have taken the image back while it was rendered (an
                // account's erasure takes back pending uploads): the eraser, which ran before
                // these renditions were written, did not see them. Nothing else would delete
                // them: this processing does, and leaves the original to expire.
                let taken_back = (self.registry.issued(&upload.image_id).await?)
                    .is_none_or(|issued| issued.status == "deleted");
                if taken_back {
                    for key in &written {
                        self.objects.delete(&self.renditions_bucket, key).await?;
                    }
                    self.expire_original(object).await?;
                    return Ok(Outcome::Skipped(format!(
                        "deleted: image {} was taken back while it was rendered",
                        upload.image_id
                    )));
                }
                return Ok(Outcome::Skipped(format!(
                    "already_finished: image {} was finished by another processing",
                    upload.image_id
                )));
            }
            Recorded::Refused(detail) => {
                return Err(ResizeError::Unstorable {
                    image_id: upload.image_id.clone(),
                    detail,
                });
            }
        };
        let outcome = match envelope.event {
            SocialEvent::ImagePublished(_) => "published",
            _ => "rejected",
        };
        tracing::info!(image_id = %upload.image_id, key = %object.key, outcome, ms = started.elapsed().as_millis() as u64, bytes_in, bytes_out, correlation_id = %correlation_id, event_id = %envelope.event_id, "upload processed");
        Ok(Outcome::Done)
    }

    /// Leaves a rejected upload's original to the bucket's lifecycle rule, which expires it.
    /// Before the rejection is recorded: once it is, a redelivery finds the image finished and
    /// would never come back here.
    async fn expire_original(&self, object: &ObjectCreated) -> Result<(), ResizeError> {
        (self.objects.tag_rejected(&object.bucket, &object.key).await).map_err(ResizeError::from)
    }

    /// Finishes the image with `event` (`outcome`: published or rejected) in the one write
    /// resize may make.
    async fn record(
        &self,
        object: &ObjectCreated,
        upload: &UploadKey,
        correlation_id: &str,
        outcome: &str,
        event: SocialEvent,
    ) -> Result<Recorded, ResizeError> {
        let envelope = Envelope {
            event_id: event_id(object, outcome),
            occurred_at: Timestamp::now(),
            correlation_id: correlation_id.to_owned(),
            producer: "resize".into(),
            event,
        };
        let finished = match &envelope.event {
            SocialEvent::ImagePublished(published) => Finished {
                status: "published",
                event_id: envelope.event_id.to_string(),
                event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
                renditions_json: Some(
                    serde_json::to_string(&published.renditions).expect("renditions serialize"),
                ),
                reason: None,
                details: [
                    ("placeholder", &published.placeholder),
                    ("taken_at", &published.taken_at),
                    ("camera_make", &published.camera_make),
                    ("camera_model", &published.camera_model),
                    ("lens", &published.lens),
                ]
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.clone()?)))
                .collect(),
            },
            SocialEvent::ImageRejected(rejected) => Finished {
                status: "rejected",
                event_id: envelope.event_id.to_string(),
                event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
                renditions_json: None,
                reason: Some((rejected.reason.clone(), rejected.message.clone())),
                details: Vec::new(),
            },
            _ => unreachable!("resize only announces publications and rejections"),
        };
        Ok(
            match self
                .registry
                .finish(&upload.image_id, &upload.owner_id, &object.key, &finished)
                .await?
            {
                FinishOutcome::Applied | FinishOutcome::AlreadyRecorded => {
                    Recorded::Finished(envelope)
                }
                FinishOutcome::NotPending => Recorded::ByAnother,
                FinishOutcome::Refused(detail) => Recorded::Refused(detail),
            },
        )
    }

    /// Writes every rendition, then returns the event data that announces them.
    async fn store(
        &self,
        object: &ObjectCreated,
        image_id: &str,
        owner_id: &str,
        rendered: Rendered,
    ) -> Result<ImagePublishedV2, ResizeError> {
        let mut listed = Vec::with_capacity(rendered.renditions.len());
        let mut writes = Vec::with_capacity(rendered.renditions.len());
        for rendition in rendered.renditions {
            let key = rendition_key(image_id, &object.etag, &rendition.name, rendition.extension);
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
        Ok(ImagePublishedV2 {
            image_id: image_id.to_owned(),
            owner_id: owner_id.to_owned(),
            source_key: object.key.clone(),
            source_etag: object.etag.clone(),
            width: rendered.width,
            height: rendered.height,
            renditions: listed,
            placeholder: rendered.placeholder,
            taken_at: rendered.details.taken_at,
            camera_make: rendered.details.camera_make,
            camera_model: rendered.details.camera_model,
            lens: rendered.details.lens,
        })
    }
}

/// What finishing an image with its event did.
// One per upload, never stored in bulk: not worth a box.
#[allow(clippy::large_enum_variant)]
enum Recorded {
    /// The image is finished with this event (now, or by an earlier delivery of it).
    Finished(Envelope),
    /// Another processing finished the image.
    ByAnother,
    /// DynamoDB refuses the item for good: what it said.
    Refused(String),
}

/// An ImageRejected of `upload` with `reason` and its message for people, on one line (decoder
/// messages may span lines).
fn rejection(
    object: &ObjectCreated,
    upload: &UploadKey,
    reason: &str,
    message: &str,
) -> SocialEvent {
    SocialEvent::ImageRejected(ImageRejectedV1 {
        image_id: upload.image_id.clone(),
        owner_id: upload.owner_id.clone(),
        source_key: object.key.clone(),
        reason: reason.to_owned(),
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MemoryRegistry;
    use crate::render::parse_specs;
    use crate::storage::memory::MemoryObjects;
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    use serde_json::json;
    use snapglow::batch::Deadline;
    use snapglow::quarantine::RecordSource;
    use snapglow::testing::{MemoryQuarantine, sqs_event};
    use std::io::Cursor;
    use std::time::Duration;

    const UPLOADS: &str = "uploads";
    const RENDITIONS: &str = "renditions";
    const QUEUE: &str = "upload-notifications";

    fn photo(format: ImageFormat) -> Vec<u8> {
        let pixels = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(pixels)
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    fn created(key: &str) -> ObjectCreated {
        ObjectCreated {
            bucket: UPLOADS.into(),
            key: key.into(),
            size: None,
            etag: format!("etag-{key}"),
            event_name: "ObjectCreated:Put".into(),
        }
    }

    /// The SQS body S3 sends when `key` is uploaded.
    fn notification(key: &str, bytes: &[u8]) -> String {
        let object = created(key);
        json!({ "Records": [{
            "eventName": object.event_name,
            "s3": {
                "bucket": { "name": object.bucket },
                "object": { "key": key, "size": bytes.len(), "eTag": format!("\"{}\"", object.etag) }
            }
        }]})
        .to_string()
    }

    /// A batch with 30 s left and a second per upload.
    fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        BatchContext::new(
            "resize",
            Deadline::after(Duration::from_secs(30)),
            Duration::from_secs(1),
            quarantine,
        )
    }

    fn event_of(registry: &MemoryRegistry, image_id: &str) -> Envelope {
        let finished = registry
            .finished(image_id)
            .unwrap_or_else(|| panic!("{image_id} is finished"));
        match Envelope::decode(finished.event_json.as_bytes()).unwrap() {
            snapglow::contracts::Decoded::Known(envelope) => envelope,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn one_unreadable_upload_is_redelivered_alone_and_the_others_are_published_or_rejected() {
        // Prepare: four issued uploads, one S3 cannot read right now, one cut off half way,
        // and an upload nobody issued: mallory's object under alice's image id
        let (beach, dunes, forest) = (
            photo(ImageFormat::Jpeg),
            photo(ImageFormat::Png),
            photo(ImageFormat::Png),
        );
        let cut_off = beach[..beach.len() / 2].to_vec();
        let registry = MemoryRegistry::default();
        for (image, owner) in [
            ("beach", "alice"),
            ("dunes", "bob"),
            ("torn", "carol"),
            ("forest", "dan"),
        ] {
            registry.issue(image, owner, &format!("req-{image}"));
        }
        let objects = MemoryObjects::default();
        objects.upload(UPLOADS, "uploads/alice/beach", beach.clone(), None);
        objects.upload(UPLOADS, "uploads/bob/dunes", dunes.clone(), None);
        objects.fail_reads_of(UPLOADS, "uploads/bob/dunes");
        objects.upload(UPLOADS, "uploads/carol/torn", cut_off.clone(), None);
        objects.upload(UPLOADS, "uploads/dan/forest", forest.clone(), None);
        objects.upload(UPLOADS, "uploads/mallory/beach", forest.clone(), None);
        // ... announced one per message, then a message that is no S3 notification at all
        let bodies = [
            notification("uploads/alice/beach", &beach),
            notification("uploads/bob/dunes", &dunes),
            notification("uploads/carol/torn", &cut_off),
            notification("uploads/dan/forest", &forest),
            "hello".to_owned(),
            notification("uploads/mallory/beach", &forest),
        ];
        let resizer = Resizer {
            objects,
            registry,
            renditions_bucket: RENDITIONS.into(),
            specs: parse_specs("medium:32,thumb:16").unwrap(),
            limits: Limits::default(),
        };
        let quarantine = MemoryQuarantine::default();
        let ctx = context(&quarantine);

        // Act
        let (response, report) = resizer.handle_batch(sqs_event(QUEUE, &bodies), &ctx).await;

        // Assess: only the unreadable upload is redelivered
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [{ "itemIdentifier": "m2" }] })
        );
        assert_eq!(
            (
                report.done,
                report.failed,
                report.quarantined,
                report.skipped
            ),
            (3, 1, 1, 1)
        );
        // ... each finished image carries its event under its deterministic id, with the
        // correlation id of the request that issued the upload
        let registry = &resizer.registry;
        let (published, rejected, forest_event) = (
            event_of(registry, "beach"),
            event_of(registry, "torn"),
            event_of(registry, "forest"),
        );
        assert_eq!(
            published.event_id,
            event_id(&created("uploads/alice/beach"), "published")
        );
        assert_eq!(published.correlation_id, "req-beach");
        assert_eq!(forest_event.event.type_name(), "ImagePublished");
        let SocialEvent::ImageRejected(why) = &rejected.event else {
            panic!("expected a rejection: {rejected:?}");
        };
        assert_eq!(why.reason, "corrupt");
        assert_eq!(
            registry.finished("torn").unwrap().reason.unwrap().0,
            "corrupt"
        );
        // ... alice's image was not touched by mallory's object, and bob's is still pending
        assert_eq!(registry.finished("dunes"), None);
        // ... only the rejected upload's original and the object nobody issued are tagged for
        // the bucket's lifecycle rule to expire; the published ones are kept
        let tagged: Vec<String> = (resizer.objects.keys(UPLOADS).into_iter())
            .filter(|key| {
                !resizer
                    .objects
                    .object(UPLOADS, key)
                    .unwrap()
                    .tags
                    .is_empty()
            })
            .collect();
        assert_eq!(tagged, ["uploads/carol/torn", "uploads/mallory/beach"]);
        let tags = resizer
            .objects
            .object(UPLOADS, "uploads/carol/torn")
            .unwrap()
            .tags;
        assert_eq!(tags["snapglow-fate"], "rejected");
        // ... the published photos' renditions are stored, as their events list them; nothing
        // of the unreadable, the rejected or the unissued upload
        assert_eq!(
            resizer.objects.keys(RENDITIONS),
            [
                "renditions/beach/etag-uploadsalicebeach/medium.jpg",
                "renditions/beach/etag-uploadsalicebeach/thumb.jpg",
                "renditions/forest/etag-uploadsdanforest/medium.jpg",
                "renditions/forest/etag-uploadsdanforest/thumb.jpg",
            ]
        );
        let SocialEvent::ImagePublished(announced) = &published.event else {
            panic!("expected a publication: {published:?}");
        };
        let listed: Vec<(&str, u32, u32)> = announced
            .renditions
            .iter()
            .map(|r| (r.key.as_str(), r.width, r.height))
            .collect();
        assert_eq!(
            listed,
            [
                ("renditions/beach/etag-uploadsalicebeach/medium.jpg", 32, 24),
                ("renditions/beach/etag-uploadsalicebeach/thumb.jpg", 16, 12)
            ]
        );
        // ... and the message that is no notification is quarantined with its body
        let entries = quarantine.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].reason, "not_an_s3_notification");
        assert_eq!(entries[0].raw_text.as_deref(), Some("hello"));
        assert_eq!(
            entries[0].source,
            RecordSource::Sqs {
                queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:{QUEUE}"),
                message_id: "m5".into()
            }
        );
    }

    #[tokio::test]
    async fn a_redelivered_notification_of_a_finished_image_changes_nothing() {
        let registry = MemoryRegistry::default();
        registry.issue("beach", "alice", "req");
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let resizer = Resizer {
            objects,
            registry,
            renditions_bucket: RENDITIONS.into(),
            specs: parse_specs("thumb:16").unwrap(),
            limits: Limits::default(),
        };
        let quarantine = MemoryQuarantine::default();
        let ctx = context(&quarantine);
        let body = [notification("uploads/alice/beach", &bytes)];
        let (_, first) = resizer.handle_batch(sqs_event(QUEUE, &body), &ctx).await;
        let recorded = resizer.registry.finished("beach");
        let (_, again) = resizer.handle_batch(sqs_event(QUEUE, &body), &ctx).await;
        assert_eq!((first.done, again.done, again.skipped), (1, 0, 1));
        assert_eq!(
            resizer.registry.finished("beach"),
            recorded,
            "the recorded event is the first one, byte for byte"
        );
    }

    #[tokio::test]
    async fn an_upload_put_again_after_its_photo_was_deleted_is_left_to_expire_not_rendered() {
        // Prepare: alice's photo, published, then taken back; her URL puts the original again
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let resizer = resizer_of(objects, &[("beach", "alice")]);
        resizer.registry.delete("beach");
        let quarantine = MemoryQuarantine::default();

        // Act
        let body = [notification("uploads/alice/beach", &bytes)];
        let (_, report) = resizer
            .handle_batch(sqs_event(QUEUE, &body), &context(&quarantine))
            .await;

        // Assess: skipped, nothing rendered, the object tagged for the lifecycle rule
        assert_eq!((report.done, report.skipped), (0, 1));
        assert!(resizer.objects.keys(RENDITIONS).is_empty());
        let tags = (resizer
            .objects
            .object(UPLOADS, "uploads/alice/beach")
            .unwrap())
        .tags;
        assert_eq!(tags["snapglow-fate"], "rejected");
    }

    #[tokio::test]
    async fn renditions_of_an_upload_taken_back_while_rendered_are_deleted_by_their_renderer() {
        // Prepare: alice's pending upload, which her account's erasure takes back while
        // resize renders it
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let resizer = resizer_of(objects, &[("beach", "alice")]);
        (resizer.registry.taken_back_while_rendered.lock().unwrap()).insert("beach".into());
        let quarantine = MemoryQuarantine::default();

        // Act
        let body = [notification("uploads/alice/beach", &bytes)];
        let (_, report) = resizer
            .handle_batch(sqs_event(QUEUE, &body), &context(&quarantine))
            .await;

        // Assess: nothing published, no rendition left, the original left to expire
        assert_eq!((report.done, report.skipped), (0, 1));
        assert_eq!(resizer.registry.finished("beach"), None);
        assert!(resizer.objects.keys(RENDITIONS).is_empty());
        let tags = (resizer
            .objects
            .object(UPLOADS, "uploads/alice/beach")
            .unwrap())
        .tags;
        assert_eq!(tags["snapglow-fate"], "rejected");
    }

    /// A resizer over `objects` for images issued as (image, owner).
    fn resizer_of(
        objects: MemoryObjects,
        issued: &[(&str, &str)],
    ) -> Resizer<MemoryObjects, MemoryRegistry> {
        let registry = MemoryRegistry::default();
        for (image, owner) in issued {
            registry.issue(image, owner, &format!("req-{image}"));
        }
        Resizer {
            objects,
            registry,
            renditions_bucket: RENDITIONS.into(),
            specs: parse_specs("thumb:16").unwrap(),
            limits: Limits::default(),
        }
    }

    #[tokio::test]
    async fn an_upload_overwritten_after_its_notification_is_published_from_the_newer_version_only()
    {
        // Prepare: alice uploads, then puts a second photo over it before resize ran; both
        // notifications are in the queue, the first naming the first version's ETag
        let objects = MemoryObjects::default();
        let (first, second) = (photo(ImageFormat::Jpeg), photo(ImageFormat::Png));
        objects.upload(UPLOADS, "uploads/alice/beach", first.clone(), None);
        let first_notice = notification("uploads/alice/beach", &first);
        objects.overwrite(UPLOADS, "uploads/alice/beach", second.clone());
        let second_notice = notification("uploads/alice/beach", &second)
            .replace("etag-uploads/alice/beach", "etag-uploads/alice/beach-next");
        let resizer = resizer_of(objects, &[("beach", "alice")]);
        let quarantine = MemoryQuarantine::default();
        let ctx = context(&quarantine);

        // Act
        let (response, report) = resizer
            .handle_batch(sqs_event(QUEUE, &[first_notice, second_notice]), &ctx)
            .await;

        // Assess: the first notification is stale and skipped, the second publishes
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.skipped, report.done), (1, 1));
        let published = event_of(&resizer.registry, "beach");
        let SocialEvent::ImagePublished(announced) = &published.event else {
            panic!("expected a publication: {published:?}");
        };
        // ... the event names the version whose pixels it lists, under that version's keys
        assert_eq!(announced.source_etag, "etag-uploads/alice/beach-next");
        assert_eq!(
            resizer.objects.keys(RENDITIONS),
            ["renditions/beach/etag-uploadsalicebeach-next/thumb.jpg"]
        );
    }

    #[tokio::test]
    async fn an_object_larger_than_its_notification_said_is_rejected_without_being_decoded() {
        // Prepare: a notification that says nothing of the size, over an object past the limit
        let objects = MemoryObjects::default();
        let big = photo(ImageFormat::Png);
        objects.upload(UPLOADS, "uploads/alice/beach", big.clone(), None);
        let mut resizer = resizer_of(objects, &[("beach", "alice")]);
        resizer.limits.max_bytes = big.len() as u64 - 1;
        let body = notification("uploads/alice/beach", &big)
            .replace(&format!(",\"size\":{}", big.len()), "");
        assert!(!body.contains("size"), "{body}");
        let quarantine = MemoryQuarantine::default();
        let ctx = context(&quarantine);

        // Act
        let (_, report) = resizer.handle_batch(sqs_event(QUEUE, &[body]), &ctx).await;

        // Assess: rejected as too large, on the size S3 reported
        assert_eq!(report.done, 1);
        let rejected = event_of(&resizer.registry, "beach");
        let SocialEvent::ImageRejected(why) = &rejected.event else {
            panic!("expected a rejection: {rejected:?}");
        };
        assert_eq!(why.reason, "too_large");
        assert!(resizer.objects.keys(RENDITIONS).is_empty());
    }

    #[test]
    fn a_render_whose_guard_is_dropped_stops_before_its_next_stage() {
        // Prepare: a render's guard, as the message handler holds it
        let guard = StopOnDrop::default();
        let flag = guard.flag();
        let bytes = photo(ImageFormat::Jpeg);
        let specs = parse_specs("medium:32,thumb:16").unwrap();
        assert!(render_until(&bytes, &specs, Limits::default(), &flag).is_some());

        // Act: the handler's future is dropped (its deadline passed)
        drop(guard);

        // Assess: the render stops instead of running on
        assert!(render_until(&bytes, &specs, Limits::default(), &flag).is_none());
    }
}
