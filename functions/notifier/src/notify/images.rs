//! The image path: an ImagePublished or ImageRejected becomes its owner's notice (once per
//! event id), and the likes kept while the image's owner was unknown are delivered.

use snapglow::batch::grouped::KeyOutcomes;
use snapglow::batch::{Deadline, Outcome};
use snapglow::contracts::{Envelope, ImageDeletedV1, SocialEvent};
use snapglow::table::TableError;
use std::collections::HashMap;

use super::{Notifier, NotifyError};
use crate::inbox::Kind;
use crate::likes::{LikeFact, LikerKey, latest_per_key};
use crate::table::{ImageNotice, Noticed, NotificationStore, Written};

impl<T: NotificationStore> Notifier<T> {
    /// An image event's notice, written already by the batch's grouped write (`prewritten`)
    /// or here, then its kept likes delivered.
    pub(super) async fn notify_image(
        &self,
        envelope: &Envelope,
        prewritten: Option<Noticed>,
        deadline: &Deadline,
    ) -> Result<Outcome, NotifyError> {
        let Some(notice) = notice_of(envelope) else {
            return Ok(Outcome::Skipped(format!(
                "{} is not an image event",
                envelope.event.type_name()
            )));
        };
        let (image_id, owner_id) = (notice.image_id, notice.owner_id);
        let noticed = match prewritten {
            Some(noticed) => noticed,
            None => self.table.notify_image(&notice, deadline).await?,
        };
        // Likes of a rejected upload (a racing client) are told too: the owner learns someone
        // saw it, and nothing is left waiting.
        if noticed.held {
            self.deliver_early(image_id, owner_id, deadline).await?;
        }
        Ok(match noticed.written {
            Written::Applied => Outcome::Done,
            Written::Unchanged => {
                Outcome::Duplicate(format!("event {} was already notified", envelope.event_id))
            }
        })
    }

    /// A deleted image: nothing of it stays in its owner's inbox, and its later likes (a
    /// redelivery, a replay) notify nobody.
    pub(super) async fn erase_image(
        &self,
        deleted: &ImageDeletedV1,
        deadline: &Deadline,
    ) -> Result<Outcome, NotifyError> {
        let notifications = self
            .table
            .erase_image(&deleted.image_id, &deleted.owner_id, deadline)
            .await?;
        tracing::info!(image_id = %deleted.image_id, notifications, "image erased from its owner's inbox");
        Ok(Outcome::Done)
    }

    /// Delivers the likes kept while the image's owner was unknown, with the batch path,
    /// deletes each once delivered, then clears the image's mark. Run on every delivery of an
    /// image event that finds the mark: a crash before the mark is cleared leaves it, so the
    /// redelivery delivers again, and those writes change nothing.
    async fn deliver_early(
        &self,
        image_id: &str,
        owner_id: &str,
        deadline: &Deadline,
    ) -> Result<(), TableError> {
        let early = self.table.early_likes(image_id).await?;
        if early.is_empty() {
            return self.table.release_held(image_id, deadline).await;
        }
        let facts = early
            .iter()
            .filter(|kept| kept.liker.user_id != owner_id)
            .map(|kept| LikeFact {
                key: LikerKey {
                    image_id: image_id.to_owned(),
                    user_id: kept.liker.user_id.clone(),
                },
                liked: kept.liker.liked,
                version: kept.liker.version,
                record: 0,
            })
            .collect();
        let latest = latest_per_key(facts);
        let owners = HashMap::from([(image_id.to_owned(), owner_id.to_owned())]);
        let settled = self
            .apply_likes(&latest, &owners, deadline, KeyOutcomes::default())
            .await;
        if let Some(key) = settled.failed.first() {
            return Err(TableError::transient(
                "notifications",
                format!(
                    "the like of {} kept for image {image_id} could not be delivered yet",
                    key.user_id
                ),
            ));
        }
        let mut all_delivered = true;
        for kept in &early {
            let key = LikerKey {
                image_id: image_id.to_owned(),
                user_id: kept.liker.user_id.clone(),
            };
            if let Some(error) = settled.refused.get(&key) {
                tracing::warn!(image_id, user_id = %key.user_id, %error, "DynamoDB refuses a kept like; it stays kept");
                all_delivered = false;
                continue;
            }
            self.table
                .release_early(image_id, &kept.liker, deadline)
                .await?;
        }
        if all_delivered {
            self.table.release_held(image_id, deadline).await?;
        }
        Ok(())
    }
}

/// The notice an ImagePublished, ImageRejected or ImageHeld tells its owner; `None` for other
/// events.
pub(super) fn notice_of(envelope: &Envelope) -> Option<ImageNotice<'_>> {
    let (kind, image_id, owner_id, reason) = match &envelope.event {
        SocialEvent::ImagePublished(data) => {
            (Kind::Published, &data.image_id, &data.owner_id, None)
        }
        SocialEvent::ImageRejected(data) => (
            Kind::Rejected,
            &data.image_id,
            &data.owner_id,
            Some((data.reason.as_str(), data.message.as_str())),
        ),
        SocialEvent::ImageHeld(data) => (
            Kind::Held,
            &data.image_id,
            &data.owner_id,
            Some((data.reason.as_str(), data.message.as_str())),
        ),
        _ => return None,
    };
    Some(ImageNotice {
        event_id: envelope.event_id,
        kind,
        owner_id,
        image_id,
        created_ms: envelope.occurred_at.millis(),
        reason,
    })
}
