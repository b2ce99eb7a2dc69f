//! One stream record at a time: what each event means for an owner's inbox.
//!
//! DynamoDB requests per event: ImagePublished / ImageRejected 1 (a 3-item transaction);
//! ImageLiked 1 update, plus 1 read of the image's owner when this process has not seen the
//! image yet; ImageLikeUndone 1 update (2 when the like sits in the previous window).

use snapglow::batch::{Classify, ErrorClass, Outcome, StreamRecord};
use snapglow::contracts::{ContractError, Decoded, Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::inbox::{Kind, LikeWindow, Liker};
use crate::table::{ImageNotice, NotificationsTable, TableError, UndoPlace, Written};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        match self {
            NotifyError::Contract(_) | NotifyError::Table(TableError::Rejected { .. }) => {
                ErrorClass::Permanent
            }
            NotifyError::Table(TableError::Transient { .. }) => ErrorClass::Transient,
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            NotifyError::Contract(error) => error.reason_code(),
            NotifyError::Table(TableError::Rejected { .. }) => "rejected_by_dynamodb",
            NotifyError::Table(TableError::Transient { .. }) => "dynamodb_unavailable",
        }
    }
}

/// Owners never change, so a process keeps what it learnt; bounded so a long-lived
/// environment does not grow without limit.
const OWNER_CACHE_LIMIT: usize = 100_000;

pub struct Notifier {
    pub table: NotificationsTable,
    pub like_window_ms: i64,
    owners: Mutex<HashMap<String, String>>,
}

impl Notifier {
    pub fn new(table: NotificationsTable, like_window_ms: i64) -> Self {
        Self {
            table,
            like_window_ms,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn remember_owner(&self, image_id: &str, owner_id: &str) {
        let mut owners = self.owners.lock().expect("owner cache lock");
        if owners.len() >= OWNER_CACHE_LIMIT {
            owners.clear();
        }
        owners.insert(image_id.to_owned(), owner_id.to_owned());
    }

    async fn owner_of(&self, image_id: &str) -> Result<Option<String>, TableError> {
        if let Some(owner) = self.owners.lock().expect("owner cache lock").get(image_id) {
            return Ok(Some(owner.clone()));
        }
        let owner = self.table.owner_of(image_id).await?;
        if let Some(owner) = &owner {
            self.remember_owner(image_id, owner);
        }
        Ok(owner)
    }

    pub async fn handle_record(&self, record: StreamRecord) -> Result<Outcome, NotifyError> {
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
        let written = match &envelope.event {
            SocialEvent::ImagePublished(data) => {
                self.remember_owner(&data.image_id, &data.owner_id);
                let notice = ImageNotice {
                    event_id: envelope.event_id,
                    kind: Kind::Published,
                    owner_id: &data.owner_id,
                    image_id: &data.image_id,
                    created_ms: envelope.occurred_at.millis(),
                    reason: None,
                };
                self.table.notify_image(&notice).await?
            }
            SocialEvent::ImageRejected(data) => {
                self.remember_owner(&data.image_id, &data.owner_id);
                let notice = ImageNotice {
                    event_id: envelope.event_id,
                    kind: Kind::Rejected,
                    owner_id: &data.owner_id,
                    image_id: &data.image_id,
                    created_ms: envelope.occurred_at.millis(),
                    reason: Some((&data.reason, &data.message)),
                };
                self.table.notify_image(&notice).await?
            }
            SocialEvent::ImageLiked(data) => {
                return self
                    .record_liker(&envelope, &data.image_id, &data.user_id, true)
                    .await;
            }
            SocialEvent::ImageLikeUndone(data) => {
                return self
                    .record_liker(&envelope, &data.image_id, &data.user_id, false)
                    .await;
            }
        };
        Ok(match written {
            Written::Applied => Outcome::Done,
            Written::Unchanged => {
                Outcome::Duplicate(format!("event {} was already notified", envelope.event_id))
            }
        })
    }

    async fn record_liker(
        &self,
        envelope: &Envelope,
        image_id: &str,
        user_id: &str,
        liked: bool,
    ) -> Result<Outcome, NotifyError> {
        // The stream may start after an image's publication (or it was published before this
        // consumer existed): with no owner there is nobody to tell. Skipped, counted, logged.
        let Some(owner_id) = self.owner_of(image_id).await? else {
            return Ok(Outcome::Skipped(format!(
                "owner of image {image_id} unknown (its ImagePublished was never seen); nobody to notify"
            )));
        };
        if owner_id == user_id {
            return Ok(Outcome::Skipped(
                "owners are not told about their own likes".to_owned(),
            ));
        }
        let liker = Liker {
            user_id: user_id.to_owned(),
            liked,
            version: EventVersion::of(envelope),
        };
        let window = LikeWindow::of(envelope.occurred_at.millis(), self.like_window_ms);
        let mut written = self
            .table
            .record_liker(&owner_id, image_id, window, &liker, UndoPlace::OwnWindow)
            .await?;
        if !liked {
            // The like may sit in the window before (a like at 10:59, its undo at 11:01).
            // Both windows are always written, whatever the first write did: deciding on its
            // outcome would make a replay (which finds this window already written) reach the
            // previous window when the first delivery did not, and change the inbox.
            let previous = LikeWindow {
                start_ms: window.start_ms - self.like_window_ms,
            };
            let before = self
                .table
                .record_liker(
                    &owner_id,
                    image_id,
                    previous,
                    &liker,
                    UndoPlace::PreviousWindow,
                )
                .await?;
            if before == Written::Applied {
                written = Written::Applied;
            }
        }
        Ok(match written {
            Written::Applied => Outcome::Done,
            Written::Unchanged => Outcome::Duplicate(format!(
                "event {} changes nothing (duplicate, stale, or the like was already seen)",
                envelope.event_id
            )),
        })
    }
}
