//! One SQS message, end to end: the uploads it announces become renditions in S3, the content
//! scan judges them ([`crate::scan`]), and their images turn published, held for review or
//! rejected with an ImagePublished, ImageHeld or ImageRejected event, in one conditional write
//! to the images table; the relay puts the event on the stream.
//!
//! A scan that fails for now (throttling, a fault) redelivers the upload, which renders it
//! again (the same keys and bytes) and asks again; on the queue's last delivery it holds the
//! image for review instead of parking it in the DLQ. A finished image is never scanned again.
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
    Envelope, ImageHeldV1, ImagePublishedV2, ImageRejectedV1, RenditionV1, SocialEvent, Timestamp,
};
use snapglow::quarantine::Quarantine;
use std::time::Instant;
use uuid::Uuid;

use crate::registry::{FinishOutcome, Finished, ImagesTable, Registry, RegistryError};
use crate::render::{Limits, RenderError, Rendered, RenditionSpec, render_until};
use crate::scan::{Classifier, Moderator, ScanError, Scanner, Stored};
use crate::storage::{Fetched, ObjectStore, S3Objects, StorageError};
use crate::upload::{NotANotification, Notification, ObjectCreated, UploadKey, parse, upload_key};
use moderation::{Decision, Scan};
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
    #[error(transparent)]
    Scan(#[from] ScanError),
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
            ResizeError::Scan(ScanError::Misconfigured { .. }) => ErrorClass::Fatal,
            ResizeError::Storage(_)
            | ResizeError::Registry(_)
            | ResizeError::RenderTask { .. }
            | ResizeError::Scan(_) => ErrorClass::Transient,
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            ResizeError::NotANotification(_) => "not_an_s3_notification",
            ResizeError::Storage(_) => "s3_unavailable",
            ResizeError::Registry(_) => "images_table_unavailable",
            ResizeError::RenderTask { .. } => "render_task_failed",
            ResizeError::Scan(_) => "scan_failed",
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
pub struct Resizer<S = S3Objects, R = ImagesTable, C = Classifier> {
    pub objects: S,
    pub registry: R,
    pub renditions_bucket: String,
    pub specs: Vec<RenditionSpec>,
    pub limits: Limits,
    pub moderator: Moderator<C>,
}

impl<S: ObjectStore, R: Registry, C: Scanner> BatchFunction<SqsEvent> for Resizer<S, R, C> {
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

impl<S: ObjectStore, R: Registry, C: Scanner> Resizer<S, R, C> {
    pub async fn handle_message(&self, message: QueueMessage) -> Result<Outcome, ResizeError> {
        let objects = match parse(&message.body)? {
            Notification::Test => return Ok(Outcome::Skipped("s3:TestEvent".into())),
            Notification::Created(objects) => objects,
        };
        let mut skipped = Vec::new();
        for object in &objects {
            if let Outcome::Skipped(reason) =
                self.handle_object(object, message.receive_count).await?
            {
                skipped.push(reason);
            }
        }
        Ok(if skipped.len() == objects.len() {
            Outcome::Skipped(skipped.join("; "))
        } else {
            Outcome::Done
        })
    }

    /// `delivery`: the message's receive count (1 on the first).
    async fn handle_object(
        &self,
        object: &ObjectCreated,
        delivery: u32,
    ) -> Result<Outcome, ResizeError> {
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
        let job = Job {
            object,
            upload: &upload,
            correlation_id: &correlation_id,
            started,
            delivery,
        };
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
                                &job,
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
        self.finish(&job, result, bytes_in).await
    }

    /// Stores the renditions (or not, for a rejection), scans them, and finishes the image with
    /// its event.
    async fn finish(
        &self,
        job: &Job<'_>,
        result: Result<Rendered, RenderError>,
        bytes_in: u64,
    ) -> Result<Outcome, ResizeError> {
        let Job {
            object,
            upload,
            correlation_id,
            started,
            delivery,
        } = *job;
        let (outcome, bytes_out, event, kept) = match result {
            Ok(rendered) => {
                let bytes_out = rendered
                    .renditions
                    .iter()
                    .map(|r| r.bytes.len() as u64)
                    .sum::<u64>();
                let (published, scanned) = self
                    .store(object, &upload.image_id, &upload.owner_id, rendered)
                    .await?;
                let (outcome, event, scan) = match self.judge(&scanned, delivery).await? {
                    Judged::Publish(scan) => (
                        "published",
                        SocialEvent::ImagePublished(published.clone()),
                        Some(scan),
                    ),
                    Judged::Hold(held, scan) => (
                        "held",
                        SocialEvent::ImageHeld(ImageHeldV1 {
                            image_id: upload.image_id.clone(),
                            owner_id: upload.owner_id.clone(),
                            source_key: object.key.clone(),
                            ..held
                        }),
                        scan,
                    ),
                };
                (outcome, bytes_out, event, Some((published, scan)))
            }
            Err(error) => {
                self.expire_original(object).await?;
                (
                    "rejected",
                    0,
                    rejection(object, upload, error.reason_code(), &error.to_string()),
                    None,
                )
            }
        };
        let written: Vec<String> = (kept.iter())
            .flat_map(|(published, _)| &published.renditions)
            .map(|r| r.key.clone())
            .collect();
        let rendered = kept.as_ref().map(|(published, _)| published);
        let scan = kept.as_ref().and_then(|(_, scan)| scan.as_ref());
        let mut envelope = self.record(job, outcome, event, rendered, scan).await?;
        if let Recorded::Refused(refused) = envelope {
            // HAZARD: DynamoDB refuses the published item for good (over 400 KB): retrying
            // would park the upload in the DLQ and leave the image pending for ever. The
            // owner is told instead, with a rejection small enough to store.
            let message = format!(
                "the photo was processed, but its record is larger than the images table accepts ({refused})"
            );
            self.expire_original(object).await?;
            let event = rejection(object, upload, "unstorable", &message);
            envelope = self.record(job, "rejected", event, None, None).await?;
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
            SocialEvent::ImageHeld(_) => "held",
            _ => "rejected",
        };
        let scanned_by = scan.map(|s| s.model.as_str()).unwrap_or("-");
        tracing::info!(image_id = %upload.image_id, key = %object.key, outcome, scanned_by, ms = started.elapsed().as_millis() as u64, bytes_in, bytes_out, correlation_id = %correlation_id, event_id = %envelope.event_id, "upload processed");
        Ok(Outcome::Done)
    }

    /// Leaves a rejected upload's original to the bucket's lifecycle rule, which expires it.
    /// Before the rejection is recorded: once it is, a redelivery finds the image finished and
    /// would never come back here.
    async fn expire_original(&self, object: &ObjectCreated) -> Result<(), ResizeError> {
        (self.objects.tag_rejected(&object.bucket, &object.key).await).map_err(ResizeError::from)
    }

    /// Finishes the image with `event` (`outcome`: published, held or rejected) in the one
    /// write resize may make; a published or held image keeps its renditions and details
    /// (`rendered`) and what the scan said.
    async fn record(
        &self,
        job: &Job<'_>,
        outcome: &str,
        event: SocialEvent,
        rendered: Option<&ImagePublishedV2>,
        scan: Option<&Scan>,
    ) -> Result<Recorded, ResizeError> {
        let Job {
            object,
            upload,
            correlation_id,
            ..
        } = *job;
        let envelope = Envelope {
            event_id: event_id(object, outcome),
            occurred_at: Timestamp::now(),
            correlation_id: correlation_id.to_owned(),
            producer: "resize".into(),
            event,
        };
        let (status, reason) = match &envelope.event {
            SocialEvent::ImagePublished(_) => ("published", None),
            SocialEvent::ImageHeld(held) => {
                ("held", Some((held.reason.clone(), held.message.clone())))
            }
            SocialEvent::ImageRejected(rejected) => (
                "rejected",
                Some((rejected.reason.clone(), rejected.message.clone())),
            ),
            _ => unreachable!("resize only announces publications, holds and rejections"),
        };
        let rendered = rendered.filter(|_| status != "rejected");
        let finished = Finished {
            status,
            event_id: envelope.event_id.to_string(),
            event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
            renditions_json: rendered.map(|published| {
                serde_json::to_string(&published.renditions).expect("renditions serialize")
            }),
            reason,
            details: rendered.map(details_of).unwrap_or_default(),
            moderation: scan.map(|scan| serde_json::to_string(scan).expect("a scan serializes")),
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

    /// The scan of the stored rendition, judged: publish, or hold (with why). A scan that
    /// cannot run on this image, or still fails on the queue's last delivery, holds it: an
    /// unscanned photo is never published, and an upload is never parked in the DLQ for it.
    async fn judge(&self, rendition: &Stored, delivery: u32) -> Result<Judged, ResizeError> {
        let moderator = &self.moderator;
        let scanning = Instant::now();
        let scanned = moderator.classifier.scan(rendition).await;
        let scan_ms = scanning.elapsed().as_secs_f64() * 1000.0;
        let failed = scanned.is_err();
        let judged = match scanned {
            Ok(scan) => Ok(match moderator.policy.decide(&scan) {
                Decision::Publish => Judged::Publish(scan),
                Decision::Hold { label } => Judged::Hold(
                    held(
                        "moderation",
                        &format!(
                            "It is waiting for a review before others can see it: the content check found {} ({:.0} % confidence).",
                            label.name, label.confidence
                        ),
                        Some((label.name.clone(), label.confidence)),
                    ),
                    Some(scan),
                ),
            }),
            Err(error) if error.refused() || delivery >= moderator.attempts => {
                tracing::warn!(key = %rendition.key, delivery, %error, "held for review: the scan failed");
                Ok(Judged::Hold(
                    held(
                        "scan_failed",
                        "It is waiting for a review before others can see it: the content check could not run on it.",
                        None,
                    ),
                    None,
                ))
            }
            Err(error) => Err(error),
        };
        let count = |yes: bool| f64::from(u8::from(yes));
        snapglow::telemetry::emit_metrics(
            &snapglow::config::function_name("resize"),
            &[
                ("ScanMilliseconds", "Milliseconds", scan_ms),
                ("ScanFailures", "Count", count(failed)),
                (
                    "ImagesHeld",
                    "Count",
                    count(matches!(judged, Ok(Judged::Hold(..)))),
                ),
            ],
        );
        Ok(judged?)
    }

    /// Writes every rendition, then returns the event data that announces them and the one the
    /// scan reads ([`SCANNED_EDGE`]).
    async fn store(
        &self,
        object: &ObjectCreated,
        image_id: &str,
        owner_id: &str,
        rendered: Rendered,
    ) -> Result<(ImagePublishedV2, Stored), ResizeError> {
        let mut listed = Vec::with_capacity(rendered.renditions.len());
        let mut writes = Vec::with_capacity(rendered.renditions.len());
        let scanned = (rendered.renditions.iter().enumerate())
            .min_by_key(|(_, r)| r.width.max(r.height).abs_diff(SCANNED_EDGE))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let mut scan = None;
        for (i, rendition) in rendered.renditions.into_iter().enumerate() {
            let key = rendition_key(image_id, &object.etag, &rendition.name, rendition.extension);
            if i == scanned {
                scan = Some(Stored {
                    bucket: self.renditions_bucket.clone(),
                    key: key.clone(),
                    bytes: Arc::new(rendition.bytes.clone()),
                });
            }
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
        let scan = scan.ok_or_else(|| ResizeError::RenderTask {
            key: object.key.clone(),
            detail: "the render made no rendition".into(),
        })?;
        let published = ImagePublishedV2 {
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
        };
        Ok((published, scan))
    }
}

/// The scan reads the rendition whose long edge is nearest this: enough for either classifier
/// (open_nsfw looks at 224 px; Rekognition at what it is given), small to read.
const SCANNED_EDGE: u32 = 1024;

/// One upload being finished: what it is, and which delivery of its message this is.
#[derive(Clone, Copy)]
struct Job<'a> {
    object: &'a ObjectCreated,
    upload: &'a UploadKey,
    correlation_id: &'a str,
    started: Instant,
    delivery: u32,
}

/// What the scan decided.
enum Judged {
    Publish(Scan),
    /// The hold's reason and message (ids filled in by the caller), and the scan when one ran.
    Hold(ImageHeldV1, Option<Scan>),
}

fn held(reason: &str, message: &str, label: Option<(String, f32)>) -> ImageHeldV1 {
    let (label, confidence) = match label {
        Some((name, confidence)) => (Some(name), Some(confidence.clamp(0.0, 100.0) as u8)),
        None => (None, None),
    };
    ImageHeldV1 {
        image_id: String::new(),
        owner_id: String::new(),
        source_key: String::new(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        label,
        confidence,
    }
}

/// What the images table keeps of a rendered upload beside its renditions, by attribute name.
fn details_of(published: &ImagePublishedV2) -> Vec<(&'static str, String)> {
    [
        ("placeholder", &published.placeholder),
        ("taken_at", &published.taken_at),
        ("camera_make", &published.camera_make),
        ("camera_model", &published.camera_model),
        ("lens", &published.lens),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value.clone()?)))
    .collect()
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
    use crate::scan::MemoryScanner;
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
            moderator: moderator(),
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
            moderator: moderator(),
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
    ) -> Resizer<MemoryObjects, MemoryRegistry, MemoryScanner> {
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
            moderator: moderator(),
        }
    }

    /// A scan that finds nothing until told, under the template's default policy.
    fn moderator() -> Moderator<MemoryScanner> {
        Moderator {
            classifier: MemoryScanner::default(),
            policy: moderation::Policy::parse("Explicit,Violence", "80").unwrap(),
            attempts: 5,
        }
    }

    fn label(name: &str, parent: &str, confidence: f32) -> moderation::Label {
        moderation::Label {
            name: name.into(),
            parent: parent.into(),
            confidence,
        }
    }

    /// The SQS event of `bodies` as its `delivery`-th receive.
    fn delivered(bodies: &[String], delivery: u32) -> SqsEvent {
        let mut event = sqs_event(QUEUE, bodies);
        for record in &mut event.records {
            (record.attributes).insert("ApproximateReceiveCount".into(), delivery.to_string());
        }
        event
    }

    #[tokio::test]
    async fn a_photo_the_scan_flags_is_held_for_its_owner_and_the_others_are_published_with_their_scores()
     {
        // Prepare: two uploads; the scan finds explicit content in alice's beach, and
        // alcohol (which the policy lets through) in bob's dunes
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        objects.upload(UPLOADS, "uploads/bob/dunes", bytes.clone(), None);
        let resizer = resizer_of(objects, &[("beach", "alice"), ("dunes", "bob")]);
        (resizer.moderator.classifier.labels.lock().unwrap()).extend([
            (
                "beach".to_owned(),
                vec![
                    label("Explicit", "", 96.5),
                    label("Explicit Nudity", "Explicit", 95.0),
                ],
            ),
            ("dunes".to_owned(), vec![label("Alcohol", "", 99.0)]),
        ]);
        let quarantine = MemoryQuarantine::default();
        let bodies = [
            notification("uploads/alice/beach", &bytes),
            notification("uploads/bob/dunes", &bytes),
        ];

        // Act
        let (response, _) = resizer
            .handle_batch(delivered(&bodies, 1), &context(&quarantine))
            .await;

        // Assess: nothing redelivered; beach held with the label that held it, its
        // renditions kept for the review and out of the feed; dunes published; both scans kept
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        let beach = resizer.registry.finished("beach").unwrap();
        assert_eq!(beach.status, "held");
        assert_eq!(beach.reason.as_ref().unwrap().0, "moderation");
        assert!(
            beach
                .reason
                .as_ref()
                .unwrap()
                .1
                .contains("Explicit (96 % confidence)")
        );
        assert!(beach.renditions_json.is_some());
        assert!(
            beach
                .moderation
                .as_ref()
                .unwrap()
                .contains("Explicit Nudity")
        );
        let SocialEvent::ImageHeld(why) = event_of(&resizer.registry, "beach").event else {
            panic!("beach is not held by its event")
        };
        assert_eq!(
            (why.label.as_deref(), why.confidence, why.owner_id.as_str()),
            (Some("Explicit"), Some(96), "alice")
        );
        let dunes = resizer.registry.finished("dunes").unwrap();
        assert_eq!(dunes.status, "published");
        assert!(dunes.moderation.as_ref().unwrap().contains("Alcohol"));
        assert!(matches!(
            event_of(&resizer.registry, "dunes").event,
            SocialEvent::ImagePublished(_)
        ));
    }

    #[tokio::test]
    async fn a_scan_that_fails_for_now_redelivers_the_upload_and_the_last_delivery_holds_it() {
        // Prepare: Rekognition throttles every scan
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let resizer = resizer_of(objects, &[("beach", "alice")]);
        *resizer.moderator.classifier.failing.lock().unwrap() = Some(ScanError::Unavailable {
            classifier: "Rekognition",
            key: "k".into(),
            detail: "ThrottlingException".into(),
        });
        let quarantine = MemoryQuarantine::default();
        let body = [notification("uploads/alice/beach", &bytes)];

        // Act: deliveries 1 to 4, then the queue's last (5)
        let mut answers = Vec::new();
        for delivery in 1..=4 {
            let (response, _) = resizer
                .handle_batch(delivered(&body, delivery), &context(&quarantine))
                .await;
            answers.push(serde_json::to_value(&response).unwrap());
        }
        let pending_after_four = resizer.registry.finished("beach").is_none();
        let (last, _) = resizer
            .handle_batch(delivered(&body, 5), &context(&quarantine))
            .await;

        // Assess: redelivered four times, never published unscanned; then held, not parked
        for answer in &answers {
            assert_eq!(
                answer,
                &json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }] })
            );
        }
        assert!(pending_after_four);
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        let beach = resizer.registry.finished("beach").unwrap();
        assert_eq!(
            (beach.status, beach.reason.unwrap().0.as_str()),
            ("held", "scan_failed")
        );
        assert!(beach.moderation.is_none());
        assert_eq!(
            (resizer.moderator.classifier.scans).load(std::sync::atomic::Ordering::SeqCst),
            5
        );
        assert!(quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_scan_refused_for_the_image_holds_it_at_once_and_one_the_function_cannot_run_fails_the_invocation()
     {
        // Prepare: Rekognition refuses beach's rendition (its format); dunes' scan cannot run
        // at all (the role is refused)
        let bytes = photo(ImageFormat::Jpeg);
        let body = |key: &str| [notification(key, &bytes)];
        let objects = MemoryObjects::default();
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let refused = resizer_of(objects, &[("beach", "alice")]);
        *refused.moderator.classifier.failing.lock().unwrap() = Some(ScanError::Refused {
            classifier: "Rekognition",
            key: "k".into(),
            detail: "InvalidImageFormatException".into(),
        });
        let objects = MemoryObjects::default();
        objects.upload(UPLOADS, "uploads/bob/dunes", bytes.clone(), None);
        let denied = resizer_of(objects, &[("dunes", "bob")]);
        *denied.moderator.classifier.failing.lock().unwrap() = Some(ScanError::Misconfigured {
            classifier: "Rekognition",
            key: "k".into(),
            detail: "AccessDeniedException".into(),
        });
        let quarantine = MemoryQuarantine::default();

        // Act
        let (at_once, _) = refused
            .handle_batch(
                delivered(&body("uploads/alice/beach"), 1),
                &context(&quarantine),
            )
            .await;
        let (first, first_report) = denied
            .handle_batch(
                delivered(&body("uploads/bob/dunes"), 1),
                &context(&quarantine),
            )
            .await;
        let (last, _) = denied
            .handle_batch(
                delivered(&body("uploads/bob/dunes"), 5),
                &context(&quarantine),
            )
            .await;

        // Assess: beach held at its first delivery; dunes fails the invocation (the Errors
        // alarm) and is redelivered, then held on the queue's last delivery
        assert_eq!(
            serde_json::to_value(&at_once).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!(refused.registry.finished("beach").unwrap().status, "held");
        assert_eq!(
            serde_json::to_value(&first).unwrap(),
            json!({ "batchItemFailures": [{ "itemIdentifier": "m1" }] })
        );
        assert!(first_report.fatal.is_some());
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!(
            denied.registry.finished("dunes").unwrap().reason.unwrap().0,
            "scan_failed"
        );
        assert!(quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_finished_image_is_never_scanned_again() {
        let objects = MemoryObjects::default();
        let bytes = photo(ImageFormat::Jpeg);
        objects.upload(UPLOADS, "uploads/alice/beach", bytes.clone(), None);
        let resizer = resizer_of(objects, &[("beach", "alice")]);
        let quarantine = MemoryQuarantine::default();
        let body = [notification("uploads/alice/beach", &bytes)];
        for delivery in 1..=2 {
            resizer
                .handle_batch(delivered(&body, delivery), &context(&quarantine))
                .await;
        }
        assert_eq!(
            resizer.registry.finished("beach").unwrap().status,
            "published"
        );
        assert_eq!(
            (resizer.moderator.classifier.scans).load(std::sync::atomic::Ordering::SeqCst),
            1
        );
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
