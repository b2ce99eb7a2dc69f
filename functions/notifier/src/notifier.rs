//! One stream record at a time: what each event means for an owner's inbox.
//!
//! DynamoDB requests per event: ImagePublished / ImageRejected 1 (a 3-item transaction);
//! plus 1 query for likes that arrived before it (each then delivered, and deleted: 1 write).
//! ImageLiked 1 update, plus 1 read of the image's owner when this process has not seen the
//! image yet; ImageLikeUndone 1 update (2 when the like sits in the previous window). A like
//! whose owner is unknown yet: the read, then 1 transaction of 2 items that keeps it.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::{
    BatchContext, BatchReport, Classify, ErrorClass, Outcome, StreamRecord, process_kinesis,
};
use snapglow::contracts::{ContractError, Decoded, Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::inbox::{Kind, LikeWindow, Liker, UserId};
use crate::table::{
    EarlyLike, Held, ImageNotice, NotificationStore, NotificationsTable, UndoPlace, Written,
};

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
            NotifyError::Contract(_) => ErrorClass::Permanent,
            // A malformed stored item is the table's fault, not the record's: quarantining
            // the record would lose a valid event, so it waits until the item is fixed.
            NotifyError::Table(TableError::CorruptItem { .. }) => ErrorClass::Transient,
            // A refused value or an item grown too large: this record's alone. A refused
            // permission fails the invocation and quarantines nothing.
            NotifyError::Table(error) => error.class(),
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            NotifyError::Contract(error) => error.reason_code(),
            NotifyError::Table(error) => error.reason_code(),
        }
    }
}

/// Owners never change, so a process keeps what it learnt; bounded so a long-lived
/// environment does not grow without limit.
const OWNER_CACHE_LIMIT: usize = 100_000;

/// The function: DynamoDB's [`NotificationsTable`] unless a test hands it another
/// [`NotificationStore`].
pub struct Notifier<T = NotificationsTable> {
    pub table: T,
    pub like_window_ms: i64,
    owners: Mutex<HashMap<String, String>>,
}

impl<T: NotificationStore> Notifier<T> {
    pub fn new(table: T, like_window_ms: i64) -> Self {
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

    async fn owner_of(&self, image_id: &str) -> Result<Option<UserId>, TableError> {
        if let Some(owner) = self.owners.lock().expect("owner cache lock").get(image_id) {
            return Ok(Some(owner.clone()));
        }
        let owner = self.table.owner_of(image_id).await?;
        if let Some(owner) = &owner {
            self.remember_owner(image_id, owner);
        }
        Ok(owner)
    }

    /// One Kinesis batch, record by record in shard order, stopping at the first record that
    /// must be redelivered.
    pub async fn handle_batch<Q: Quarantine>(
        &self,
        event: KinesisEvent,
        ctx: &BatchContext<'_, Q>,
    ) -> (KinesisEventResponse, BatchReport) {
        process_kinesis(event, ctx, |record| self.handle_record(record)).await
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
                let written = self.table.notify_image(&notice).await?;
                self.deliver_early(&data.image_id, &data.owner_id).await?;
                written
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
                let written = self.table.notify_image(&notice).await?;
                // Likes of a rejected upload (a racing client) are told too: the owner learns
                // someone saw it, and nothing is left waiting.
                self.deliver_early(&data.image_id, &data.owner_id).await?;
                written
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
        let liker = Liker {
            user_id: user_id.to_owned(),
            liked,
            version: EventVersion::of(envelope),
        };
        let window = LikeWindow::of(envelope.occurred_at.millis(), self.like_window_ms);
        let owner_id = match self.owner_of(image_id).await? {
            Some(owner_id) => owner_id,
            // The like came before its image's publication (another shard, a late or
            // quarantined ImagePublished, a consumer that started after it): kept, and
            // delivered when the owner is known.
            None => match self
                .table
                .hold_early(
                    image_id,
                    &EarlyLike {
                        window,
                        liker: liker.clone(),
                    },
                )
                .await?
            {
                Held::Kept => {
                    return Ok(Outcome::Skipped(format!(
                        "owner of image {image_id} not known yet; the like is kept until its ImagePublished or ImageRejected"
                    )));
                }
                Held::OwnerKnown => {
                    let Some(owner_id) = self.table.owner_of(image_id).await? else {
                        return Err(TableError::transient(
                            "notifications",
                            format!("the owner of {image_id} was written and is gone"),
                        )
                        .into());
                    };
                    self.remember_owner(image_id, &owner_id);
                    owner_id
                }
            },
        };
        Ok(
            match self.place(&owner_id, image_id, window, &liker).await? {
                Written::Applied => Outcome::Done,
                Written::Unchanged if owner_id == user_id => {
                    Outcome::Skipped("owners are not told about their own likes".to_owned())
                }
                Written::Unchanged => Outcome::Duplicate(format!(
                    "event {} changes nothing (duplicate, stale, or the like was already seen)",
                    envelope.event_id
                )),
            },
        )
    }

    /// Writes one liker's fact into the owner's likes notification of its window.
    async fn place(
        &self,
        owner_id: &str,
        image_id: &str,
        window: LikeWindow,
        liker: &Liker,
    ) -> Result<Written, TableError> {
        if owner_id == liker.user_id {
            return Ok(Written::Unchanged);
        }
        let mut written = self
            .table
            .record_liker(owner_id, image_id, window, liker, UndoPlace::OwnWindow)
            .await?;
        if !liker.liked {
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
                    owner_id,
                    image_id,
                    previous,
                    liker,
                    UndoPlace::PreviousWindow,
                )
                .await?;
            if before == Written::Applied {
                written = Written::Applied;
            }
        }
        Ok(written)
    }

    /// Delivers the likes kept while the image's owner was unknown, oldest first, and deletes
    /// each once delivered. Run on every delivery of the image event (a crash between a
    /// delivery and its delete is made good by the redelivery, whose writes change nothing).
    async fn deliver_early(&self, image_id: &str, owner_id: &str) -> Result<(), TableError> {
        let mut early = self.table.early_likes(image_id).await?;
        early.sort_by_key(|e| e.liker.version);
        for kept in early {
            self.place(owner_id, image_id, kept.window, &kept.liker)
                .await?;
            self.table.release_early(image_id, &kept.liker).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::memory::MemoryNotifications;
    use serde_json::json;
    use snapglow::batch::Deadline;
    use snapglow::contracts::{ImagePublishedV1, Timestamp};
    use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
    use std::time::Duration;
    use uuid::Uuid;

    const MINUTE: i64 = 60_000;
    const WINDOW: i64 = 15 * MINUTE;
    /// The first instant of a window.
    const START: i64 = (1_795_000_000_000 / WINDOW + 1) * WINDOW;

    fn envelope(id: u128, at_ms: i64, event: SocialEvent) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(id),
            occurred_at: Timestamp::from_millis(at_ms),
            correlation_id: format!("req-{id}"),
            producer: "test".into(),
            event,
        }
    }

    fn liked(user: &str, id: u128, at_ms: i64) -> Envelope {
        envelope(id, at_ms, SocialEvent::like("beach", user, true, None))
    }

    fn undone(user: &str, id: u128, at_ms: i64) -> Envelope {
        envelope(id, at_ms, SocialEvent::like("beach", user, false, None))
    }

    /// alice's photo; bob and carol like it late in one window, dan on the first instant of
    /// the next, and bob takes his like back early in that next window.
    fn likes_across_a_boundary() -> Vec<Envelope> {
        let published = ImagePublishedV1 {
            image_id: "beach".into(),
            owner_id: "alice".into(),
            source_key: "uploads/alice/beach.jpg".into(),
            source_etag: "e".into(),
            width: 10,
            height: 10,
            renditions: vec![],
        };
        vec![
            envelope(1, START, SocialEvent::ImagePublished(published)),
            liked("bob", 2, START + WINDOW - 2 * MINUTE),
            liked("carol", 3, START + WINDOW - MINUTE),
            liked("dan", 4, START + WINDOW),
            undone("bob", 5, START + WINDOW + MINUTE),
        ]
    }

    /// (id, text, actors, unread) of each notification, as the inbox lists them.
    fn inbox(table: &MemoryNotifications, user: &str) -> Vec<(String, String, Vec<String>, bool)> {
        table
            .inbox(user)
            .into_iter()
            .map(|n| (n.id, n.text, n.actors, n.unread))
            .collect()
    }

    fn expected_inbox() -> Vec<(String, String, Vec<String>, bool)> {
        let entry = |id: String, text: &str, actors: &[&str]| {
            let actors = actors.iter().map(|a| a.to_string()).collect();
            (id, text.to_owned(), actors, true)
        };
        vec![
            entry(
                format!("likes-beach-{}", START + WINDOW),
                "dan liked your photo",
                &["dan"],
            ),
            entry(
                format!("likes-beach-{START}"),
                "carol liked your photo",
                &["carol"],
            ),
            entry("published-beach".into(), "Your photo is live", &[]),
        ]
    }

    fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        BatchContext::new(
            "notifier",
            Deadline::after(Duration::from_secs(30)),
            Duration::from_millis(10),
            quarantine,
        )
    }

    #[tokio::test]
    async fn likes_across_a_window_boundary_land_in_their_windows_and_an_unlike_reaches_back() {
        // Prepare
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();

        // Act
        let (response, report) = notifier
            .handle_batch(
                kinesis_event_of(&likes_across_a_boundary()),
                &context(&quarantine),
            )
            .await;

        // Assess: every record is finished and applied
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.failed), (5, 0));
        // ... bob and carol share the window they liked in, dan (on the boundary) opens the
        // next one, and bob's unlike in that next window took his unread like out of the first
        assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
        assert!(quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_replay_of_a_batch_across_a_window_boundary_changes_no_notification() {
        // Prepare: the batch, delivered once
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();
        let batch = likes_across_a_boundary();
        notifier
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Act: delivered again (a retry after a timeout, or a replay of the stream)
        let (response, report) = notifier
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Assess: every record is a duplicate and the inbox is what the first delivery left
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.duplicates), (0, 5));
        assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
    }

    #[tokio::test]
    async fn likes_that_come_before_their_image_is_published_are_told_once_it_is() {
        // Prepare: bob and carol like alice's photo, and carol takes hers back, all before the
        // photo's ImagePublished reaches this consumer
        let [published, bob, carol, carol_undo, ..] = [
            likes_across_a_boundary()[0].clone(),
            liked("bob", 2, START + MINUTE),
            liked("carol", 3, START + 2 * MINUTE),
            undone("carol", 4, START + 3 * MINUTE),
            liked("dan", 5, START + 4 * MINUTE),
        ];
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();
        let early = [bob, carol, carol_undo];
        let (_, report) = notifier
            .handle_batch(kinesis_event_of(&early), &context(&quarantine))
            .await;
        assert_eq!(report.skipped, 3, "kept, waiting for the owner");
        assert!(notifier.table.inbox("alice").is_empty());

        // Act: the publication arrives, and then the whole stream is replayed
        let (response, _) = notifier
            .handle_batch(
                kinesis_event_of(std::slice::from_ref(&published)),
                &context(&quarantine),
            )
            .await;
        let everything = [early.to_vec(), vec![published]].concat();
        let (_, replay) = notifier
            .handle_batch(kinesis_event_of(&everything), &context(&quarantine))
            .await;

        // Assess: alice hears of bob's like (carol's was taken back), once
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        let texts: Vec<String> = notifier
            .table
            .inbox("alice")
            .into_iter()
            .map(|n| n.text)
            .collect();
        assert_eq!(texts, ["bob liked your photo", "Your photo is live"]);
        assert_eq!((replay.done, replay.duplicates), (0, 4));
        // ... and nothing is left waiting
        assert!(
            notifier
                .table
                .early_likes("beach")
                .await
                .unwrap()
                .is_empty()
        );
    }
}
