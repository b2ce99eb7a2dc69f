//! `DELETE /images/{id}`: the owner takes an image back. The image item becomes a tombstone
//! and carries its `ImageDeleted` event in the same conditional write (the outbox, as for
//! likes); the consumers erase the rest from the stream: like-counter the count and the
//! likers' states, notifier the photo's notifications, eraser the files and the like items.

use snapglow::contracts::{Envelope, ImageDeletedV1, SocialEvent, Timestamp};
use std::time::Duration;

use super::Api;
use crate::error::HandlerError;
use crate::http::{ApiRequest, ApiResponse};
use crate::problem::Problem;
use crate::store::{ImageDeletion, ImageRecord, Status, Store};

/// How long the tombstone answers a repeated DELETE with 204 (then TTL removes it, and the
/// id is unknown: 404). Nothing else reads it: each consumer keeps its own.
pub const TOMBSTONE_KEPT: Duration = Duration::from_secs(86_400);

/// Attempts when the image's status changes under the request (resize finishing it, a
/// concurrent DELETE).
const DELETE_ATTEMPTS: usize = 3;

/// What a DELETE does with the image as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not the caller's, or no such image: 404, as for any image they cannot see.
    Unknown,
    /// Deleted already: 204 again, and no second event.
    AlreadyDeleted,
    /// resize has not finished it: its renditions could land after the erasure.
    StillPending,
    /// Delete it, over this status.
    Delete(Status),
}

pub fn verdict(image: Option<&ImageRecord>, caller: &str) -> Verdict {
    match image {
        Some(image) if image.owner_id == caller => match image.status {
            Status::Deleted => Verdict::AlreadyDeleted,
            Status::Pending => Verdict::StillPending,
            status @ (Status::Published | Status::Rejected | Status::Held) => {
                Verdict::Delete(status)
            }
        },
        _ => Verdict::Unknown,
    }
}

/// What taking an image back came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenBack {
    /// Its tombstone and `ImageDeleted` were written now.
    Deleted,
    AlreadyDeleted,
    Unknown,
    StillPending,
}

impl<S: Store> Api<S> {
    pub(super) async fn delete_image(
        &self,
        sub: &str,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, HandlerError> {
        match self.take_back(sub, id, request, false).await? {
            TakenBack::Deleted | TakenBack::AlreadyDeleted => Ok(ApiResponse::no_content()),
            TakenBack::Unknown => Err(Problem::not_found(format!("no image {id}")).into()),
            TakenBack::StillPending => Err(Problem::still_pending(format!(
                "image {id} is still being processed; delete it once it is published or rejected"
            ))
            .into()),
        }
    }

    /// Makes `sub`'s image `id` a tombstone with its `ImageDeleted`, deciding on the image as
    /// stored now (read strongly consistent) and writing only over the status decided on.
    /// `with_pending`: a pending upload is taken back too (an account's erasure; its upload's
    /// renditions, were resize rendering it at this very moment, are the stated hazard).
    pub(super) async fn take_back(
        &self,
        sub: &str,
        id: &str,
        request: &ApiRequest,
        with_pending: bool,
    ) -> Result<TakenBack, HandlerError> {
        for _ in 0..DELETE_ATTEMPTS {
            let image = self.store.image(id).await?;
            let was = match verdict(image.as_ref(), sub) {
                Verdict::Unknown => return Ok(TakenBack::Unknown),
                Verdict::AlreadyDeleted => return Ok(TakenBack::AlreadyDeleted),
                Verdict::StillPending if !with_pending => return Ok(TakenBack::StillPending),
                Verdict::StillPending => Status::Pending,
                Verdict::Delete(was) => was,
            };
            let image = image.expect("a verdict to delete has an image");
            let now = Timestamp::now();
            let envelope = Envelope {
                event_id: uuid::Uuid::new_v4(),
                occurred_at: now,
                correlation_id: request.correlation_id.clone(),
                producer: "api".into(),
                event: SocialEvent::ImageDeleted(ImageDeletedV1 {
                    image_id: id.to_owned(),
                    owner_id: image.owner_id.clone(),
                    upload_key: image.upload_key.clone(),
                    rendition_keys: image.renditions.iter().map(|r| r.key.clone()).collect(),
                }),
            };
            let deletion = ImageDeletion {
                image_id: id.to_owned(),
                was,
                deleted_at_ms: now.millis(),
                expires_at_s: now.millis() / 1000 + TOMBSTONE_KEPT.as_secs() as i64,
                event_id: envelope.event_id.to_string(),
                event_json: String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
            };
            if self.store.delete_image(&deletion).await? {
                return Ok(TakenBack::Deleted);
            }
            // The status changed since it was read: decide again on what is there now.
        }
        Err(Problem::busy("the image changed under concurrent requests; retry").into())
    }
}
