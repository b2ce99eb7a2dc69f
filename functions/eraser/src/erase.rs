//! One batch in shard order: each `ImageDeleted` erased, every other record skipped. The keys
//! an event names are checked against the image before anything is deleted: the stream is
//! open to producers outside this repository, and only the API's tombstone may order files
//! deleted, only the image's own.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::{
    BatchContext, BatchFunction, BatchReport, Classify, Deadline, ErrorClass, Outcome,
    StreamRecord, process_kinesis,
};
use snapglow::contracts::{ContractError, Decoded, Envelope, ImageDeletedV1, SocialEvent};
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;

use crate::store::{AwsErasure, Bucket, Erasure, FilesError, Recorded};

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A key outside the image's own: the event was not made by the API.
    #[error(
        "ImageDeleted of image {image_id} names {key:?}, which is not one of its files (uploads/{{owner_id}}/{{image_id}}, renditions/{{image_id}}/…); nothing was deleted"
    )]
    ForeignKey { image_id: String, key: String },
    /// The image is live: the deletion did not come from its owner through the API.
    #[error(
        "ImageDeleted of image {image_id}, whose item is {status}, not deleted; nothing was deleted (only DELETE /images/{{id}} writes the tombstone that orders an erasure)"
    )]
    NotDeleted { image_id: String, status: String },
}

impl Classify for EraseError {
    fn class(&self) -> ErrorClass {
        match self {
            EraseError::Contract(_) | EraseError::ForeignKey { .. } => ErrorClass::Permanent,
            EraseError::NotDeleted { .. } => ErrorClass::Permanent,
            EraseError::Table(error) => error.class(),
            EraseError::Files(FilesError::Unavailable { .. }) => ErrorClass::Transient,
            EraseError::Files(FilesError::Refused { .. }) => ErrorClass::Fatal,
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            EraseError::Contract(error) => error.reason_code(),
            EraseError::Table(error) => error.reason_code(),
            EraseError::Files(FilesError::Unavailable { .. }) => "s3_unavailable",
            EraseError::Files(FilesError::Refused { .. }) => "s3_refused",
            EraseError::ForeignKey { .. } => "foreign_key",
            EraseError::NotDeleted { .. } => "image_not_deleted",
        }
    }
}

/// The files to delete, by bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub uploads: Vec<String>,
    pub renditions: Vec<String>,
}

/// The files an `ImageDeleted` names, if every one is the image's own.
pub fn files_of(deleted: &ImageDeletedV1) -> Result<Files, EraseError> {
    let foreign = |key: &str| EraseError::ForeignKey {
        image_id: deleted.image_id.clone(),
        key: key.to_owned(),
    };
    let original = format!("uploads/{}/{}", deleted.owner_id, deleted.image_id);
    if deleted.upload_key != original {
        return Err(foreign(&deleted.upload_key));
    }
    let prefix = format!("renditions/{}/", deleted.image_id);
    if let Some(key) =
        (deleted.rendition_keys.iter()).find(|key| !key.starts_with(&prefix) || key.contains(".."))
    {
        return Err(foreign(key));
    }
    Ok(Files {
        uploads: vec![original],
        renditions: deleted.rendition_keys.clone(),
    })
}

/// The function: S3 and the images table unless a test hands it another [`Erasure`].
pub struct Eraser<S = AwsErasure> {
    pub store: S,
}

impl<S: Erasure> Eraser<S> {
    /// One record: an `ImageDeleted` erased, anything else skipped.
    pub async fn erase(
        &self,
        record: &StreamRecord,
        deadline: &Deadline,
    ) -> Result<Outcome, EraseError> {
        let envelope = match Envelope::decode(&record.data)? {
            Decoded::Known(envelope) => envelope,
            Decoded::UnknownType {
                type_name, version, ..
            } => {
                return Ok(Outcome::Skipped(format!(
                    "unknown event type {type_name} v{version}"
                )));
            }
        };
        let SocialEvent::ImageDeleted(deleted) = &envelope.event else {
            return Ok(Outcome::Skipped(format!(
                "{} is not a deletion",
                envelope.event.type_name()
            )));
        };
        let files = files_of(deleted)?;
        if let Recorded::Live(status) = self.store.recorded(&deleted.image_id).await? {
            return Err(EraseError::NotDeleted {
                image_id: deleted.image_id.clone(),
                status,
            });
        }
        self.store
            .delete_objects(Bucket::Uploads, &files.uploads)
            .await?;
        // Every rendition under the image's own prefix, named by the event or not.
        let mut renditions = files.renditions;
        for key in self.store.renditions_of(&deleted.image_id).await? {
            if !renditions.contains(&key) {
                renditions.push(key);
            }
        }
        self.store
            .delete_objects(Bucket::Renditions, &renditions)
            .await?;
        let likes = self
            .store
            .delete_like_items(&deleted.image_id, deadline)
            .await?;
        tracing::info!(
            image_id = %deleted.image_id,
            objects = files.uploads.len() + renditions.len(),
            likes,
            "image erased"
        );
        Ok(Outcome::Done)
    }
}

impl<S: Erasure> BatchFunction<KinesisEvent> for Eraser<S> {
    type Response = KinesisEventResponse;

    async fn handle_batch<Q: Quarantine>(
        &self,
        event: KinesisEvent,
        ctx: &BatchContext<'_, Q>,
    ) -> (KinesisEventResponse, BatchReport) {
        let deadline = ctx.deadline;
        process_kinesis(event, ctx, |record| async move {
            self.erase(&record, &deadline).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryErasure;
    use serde_json::json;
    use snapglow::contracts::Timestamp;
    use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
    use std::time::Duration;
    use uuid::Uuid;

    fn deleted(image: &str, upload_key: &str, renditions: &[&str]) -> Envelope {
        Envelope {
            event_id: Uuid::new_v4(),
            occurred_at: Timestamp::now(),
            correlation_id: "req-1".into(),
            producer: "api".into(),
            event: SocialEvent::ImageDeleted(ImageDeletedV1 {
                image_id: image.into(),
                owner_id: "alice".into(),
                upload_key: upload_key.into(),
                rendition_keys: renditions.iter().map(|k| k.to_string()).collect(),
            }),
        }
    }

    fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        let deadline = Deadline::after(Duration::from_secs(30));
        BatchContext::new("eraser", deadline, Duration::from_millis(10), quarantine)
    }

    /// alice's deleted "beach" with its files and two likes, her live "forest", bob's "dunes".
    fn stored() -> MemoryErasure {
        let store = MemoryErasure::default();
        for (bucket, key) in [
            (Bucket::Uploads, "uploads/alice/beach"),
            (Bucket::Renditions, "renditions/beach/v1/thumb.jpg"),
            (Bucket::Renditions, "renditions/beach/v1/large.jpg"),
            // rendered for an upload whose item was then refused: no event names it
            (Bucket::Renditions, "renditions/beach/v0/orphan.jpg"),
            (Bucket::Uploads, "uploads/alice/forest"),
            (Bucket::Uploads, "uploads/bob/dunes"),
        ] {
            store.objects.lock().unwrap().insert((bucket, key.into()));
        }
        let mut images = store.images.lock().unwrap();
        images.insert("beach".into(), "deleted".into());
        images.insert("forest".into(), "published".into());
        drop(images);
        for user in ["bob", "carol"] {
            store
                .likes
                .lock()
                .unwrap()
                .insert(("beach".into(), user.into()));
        }
        store
            .likes
            .lock()
            .unwrap()
            .insert(("forest".into(), "bob".into()));
        store
    }

    fn objects(store: &MemoryErasure) -> Vec<String> {
        let objects = store.objects.lock().unwrap();
        objects.iter().map(|(_, key)| key.clone()).collect()
    }

    #[tokio::test]
    async fn a_deletion_erases_the_images_files_and_likes_and_nothing_else() {
        // Prepare
        let eraser = Eraser { store: stored() };
        let quarantine = MemoryQuarantine::default();
        let beach = deleted(
            "beach",
            "uploads/alice/beach",
            &[
                "renditions/beach/v1/thumb.jpg",
                "renditions/beach/v1/large.jpg",
            ],
        );

        // Act: the deletion, delivered twice (a retry), and a like on the stream
        let like = Envelope {
            event: SocialEvent::like("forest", "carol", true, Some(1)),
            ..beach.clone()
        };
        let batch = [beach.clone(), like, beach];
        let (response, report) = eraser
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Assess
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.skipped), (2, 1));
        assert_eq!(
            objects(&eraser.store),
            ["uploads/alice/forest", "uploads/bob/dunes"]
        );
        let likes = eraser.store.likes.lock().unwrap().clone();
        assert_eq!(
            likes.into_iter().collect::<Vec<_>>(),
            [("forest".to_owned(), "bob".to_owned())]
        );
        assert!(quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_deletion_the_api_did_not_write_deletes_nothing_and_is_quarantined() {
        // Prepare: one names another user's upload, one a live image, one a path out
        let eraser = Eraser { store: stored() };
        let quarantine = MemoryQuarantine::default();
        let batch = [
            deleted("beach", "uploads/bob/dunes", &[]),
            deleted("forest", "uploads/alice/forest", &[]),
            deleted(
                "beach",
                "uploads/alice/beach",
                &["renditions/beach/../dunes.jpg"],
            ),
        ];

        // Act
        let (response, report) = eraser
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Assess: the batch goes on, nothing is deleted, each is quarantined with its reason
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!(report.quarantined, 3);
        assert_eq!(objects(&eraser.store).len(), 6);
        let reasons: Vec<String> = quarantine
            .entries()
            .iter()
            .map(|e| e.reason.clone())
            .collect();
        assert_eq!(reasons, ["foreign_key", "image_not_deleted", "foreign_key"]);
    }

    #[tokio::test]
    async fn a_delete_s3_half_refuses_is_redelivered_and_finished_by_the_retry() {
        // Prepare: DeleteObjects answers 200 with an InternalError for the renditions once
        let eraser = Eraser { store: stored() };
        *eraser.store.failing.lock().unwrap() = Some((Bucket::Renditions, "InternalError"));
        let quarantine = MemoryQuarantine::default();
        let beach = deleted(
            "beach",
            "uploads/alice/beach",
            &["renditions/beach/v1/thumb.jpg"],
        );

        // Act
        let (first, _) = eraser
            .handle_batch(
                kinesis_event_of(std::slice::from_ref(&beach)),
                &context(&quarantine),
            )
            .await;
        let (again, _) = eraser
            .handle_batch(kinesis_event_of(&[beach]), &context(&quarantine))
            .await;

        // Assess: the first delivery asks to come back; the second finishes the erasure
        assert_eq!(
            serde_json::to_value(&first).unwrap()["batchItemFailures"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert!(!objects(&eraser.store).contains(&"renditions/beach/v1/thumb.jpg".to_owned()));
        assert!(quarantine.entries().is_empty());
    }
}
