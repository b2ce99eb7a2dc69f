//! The notifications table: what the notifier needs of it ([`NotificationStore`]) and the
//! plain types it speaks. Its homes:
//! - `items.rs`: every item's keys and attributes, written and read back in one place;
//! - `dynamodb.rs`: the writer the notifier runs on ([`NotificationsTable`]);
//! - `reader.rs`: the inbox read side the API uses ([`InboxReader`]);
//! - `memory.rs`: the in-memory twin, built on the same items.
//!
//! Items (pk, sk):
//! - `USER#{user_id}`, `N#{created_ms}#{id}`: one notification in a user's inbox
//!   (`kind`, `image_id`, `unread`, `created_at`, `updated_at` (the `by-activity` index),
//!   `expires_at`; for likes `likes`, the count, and `recent`, the latest likers' names: a few
//!   hundred bytes however many like the photo).
//! - `LIKER#{image_id}#{user_id}`, `STATE`: one liker's latest fact about an image (`liked`,
//!   `at`, `id`) and, while the like stands, the window that counted it (`counted_in`). Spread
//!   over partitions by liker, so a burst on one photo is no hot key.
//! - `IMAGE#{image_id}`, `OWNER`: the notifier's own view of who owns an image, learnt from
//!   ImagePublished / ImageRejected (it never reads another function's table): `owner_id`; and
//!   `held` while likes are kept for it (below). The item can exist with `held` alone, before
//!   the owner is known. Once the image is deleted, a tombstone: `erased_at`, and `expires_at`
//!   past every redelivery and replay; its likes notify nobody.
//! - `EVENT#{event_id}`, `RECEIPT`: an image event already turned into a notification.
//! - `IMAGE#{image_id}`, `EARLY#{event_id}`: a like or unlike that arrived while the image's
//!   owner was unknown (`user_id`, `liked`, `at`, `id`, `window`), kept until its
//!   ImagePublished / ImageRejected names the owner, then delivered and deleted. Keeping one
//!   sets `held` on the owner item in the same transaction, so an image event looks for kept
//!   likes only when there are some: the notice's write is what tells it.

mod dynamodb;
mod items;
#[cfg(test)]
pub mod memory;
mod reader;

pub use dynamodb::NotificationsTable;
pub use items::read_notification;
pub use reader::{InboxPage, InboxReader};
pub use snapglow::table::Applied;

use snapglow::batch::Deadline;
use snapglow::table::{TableError, is_capacity_code};
use std::collections::HashMap;
use std::future::Future;

use crate::inbox::{Kind, LikeWindow, Liker, UserId};
use crate::likes::{LikerKey, LikerState, NotificationKey, StoredLikes, Transaction};

/// The inbox writes as the notifier makes them. [`NotificationsTable`] is DynamoDB; tests use
/// the in-memory twin in `memory`, which keeps the same conditions.
pub trait NotificationStore {
    /// "Your photo is live" / "your upload was rejected", once per event id, together with the
    /// owner view, all or nothing: a receipt keyed on the event id makes a redelivery, a
    /// producer duplicate or a replay write nothing.
    /// The answer says whether likes are kept for the image (see [`Noticed::held`]).
    /// Throttling and conflicts (whole-request or as cancellation reasons) are retried with
    /// backoff within `deadline`, then answered as transient: never as a refusal, since the
    /// owner item would then never be set and every later like of the image held for good.
    fn notify_image(
        &self,
        notice: &ImageNotice<'_>,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Noticed, TableError>>;

    /// [`Self::notify_image`] for the image events of a batch at once: the answer of each
    /// notice, in order. `None` is a notice this call could not settle (an error, or too
    /// little time left): write it alone with `notify_image`, which classifies its error.
    /// DynamoDB writes them in as few transactions as it allows; the in-memory twin one by
    /// one.
    fn notify_images(
        &self,
        notices: &[ImageNotice<'_>],
        deadline: &Deadline,
    ) -> impl Future<Output = Vec<Option<Noticed>>> {
        async move {
            let mut answers = Vec::with_capacity(notices.len());
            for notice in notices {
                answers.push(self.notify_image(notice, deadline).await.ok());
            }
            answers
        }
    }

    /// Who owns an image, as learnt from its ImagePublished / ImageRejected.
    fn owner_of(&self, image_id: &str) -> impl Future<Output = Result<Option<Owner>, TableError>>;

    /// The owners of `image_ids` as learnt from their ImagePublished / ImageRejected (images
    /// with none are absent), in one read per 100 images.
    fn owners_of(
        &self,
        image_ids: &[String],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<HashMap<String, Owner>, TableError>>;

    /// Erases what the table keeps of a deleted image: its owner item becomes a tombstone
    /// (later likes notify nobody), then the likes kept for it and every notification of it in
    /// the owner's inbox are deleted. Answers how many notifications were deleted. Idempotent:
    /// a run cut short is finished by the next.
    fn erase_image(
        &self,
        image_id: &str,
        owner_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<usize, TableError>>;

    /// The stored liker states and likes notifications named, read strongly consistent (what
    /// the previous batch wrote must be seen), in one read per 100 keys. Absent keys have none.
    fn read(
        &self,
        likers: &[LikerKey],
        notifications: &[NotificationKey],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Stored, TableError>>;

    /// Commits one transaction, all or nothing: each state write only over the state it was
    /// planned from, each notification's count added to. When a state changed since it was
    /// read, nothing is written and the answer is [`Applied::StateChanged`].
    fn apply(
        &self,
        transaction: &Transaction,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Applied, TableError>>;

    /// DynamoDB requests and write units spent so far (for the per-batch log line).
    fn spend(&self) -> (u64, u64) {
        (0, 0)
    }

    /// Keeps a like whose image has no known owner, only while it still has none (checked in
    /// the same transaction as the write, so a publication landing meanwhile is never missed),
    /// and marks the image as holding likes.
    fn hold_early(
        &self,
        image_id: &str,
        early: &EarlyLike,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Held, TableError>>;

    /// The likes kept for an image, strongly consistent (one written just before the owner
    /// was must be seen).
    fn early_likes(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Vec<EarlyLike>, TableError>>;

    /// Deletes a kept like once it is delivered. Throttling and a transaction holding the
    /// item are retried within `deadline`, as [`snapglow::table::write_item`] does.
    fn release_early(
        &self,
        image_id: &str,
        liker: &Liker,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<(), TableError>>;

    /// Clears the image's `held` mark once every kept like is delivered and deleted. No like
    /// can be kept after that: the owner is known, so a later like is delivered at once.
    /// Retried within `deadline` like [`NotificationStore::release_early`].
    fn release_held(
        &self,
        image_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<(), TableError>>;
}

/// What the notifier knows of an image's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Of(UserId),
    /// The image was deleted: its likes notify nobody.
    Erased,
}

/// A like or unlike kept while its image's owner was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyLike {
    pub window: LikeWindow,
    pub liker: Liker,
}

/// What became of a like kept for an unknown owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Kept,
    /// The owner became known meanwhile: nothing was kept, the like is delivered now.
    OwnerKnown,
}

/// What [`NotificationStore::read`] found.
#[derive(Debug, Default)]
pub struct Stored {
    pub likers: HashMap<LikerKey, LikerState>,
    pub notifications: HashMap<NotificationKey, StoredLikes>,
}

/// Whether a write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Applied,
    /// Already applied (a duplicate or a replay), stale, or nothing to change.
    Unchanged,
}

/// What writing an image notice found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noticed {
    pub written: Written,
    /// The owner item carries the `held` mark: likes came before the owner was known and are
    /// kept under the image (or their delivery was cut short). Deliver them, then clear the
    /// mark. Without it none are kept, and none can be from now on.
    pub held: bool,
}

/// An image outcome to tell its owner about.
pub struct ImageNotice<'a> {
    pub event_id: uuid::Uuid,
    pub kind: Kind,
    pub owner_id: &'a str,
    pub image_id: &'a str,
    pub created_ms: i64,
    /// For rejections: the reason code and message.
    pub reason: Option<(&'a str, &'a str)>,
}

/// How a canceled notice transaction's reasons read, for one notice's three actions in the
/// order [`NotificationsTable::notice_actions`] writes them: owner, receipt, notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeCancel {
    /// The receipt or the notification is there: written before. `held`: the owner item's
    /// mark was there too.
    Duplicate { held: bool },
    /// Only the owner item's condition failed: likes are kept. Write it again without it.
    Held,
    /// Nothing of this notice failed: another action canceled the transaction.
    ByOthers,
    /// DynamoDB was scaling or another transaction held an item (throttling or conflict
    /// reasons, or no reasons at all): the same notice succeeds after a pause.
    Busy,
    /// An action DynamoDB will never accept: this notice's own error.
    Failed,
}

/// Reads the cancellation codes of one notice's three actions (`None` and DynamoDB's "None"
/// alike mean the action had no error).
///
/// The owner action comes first so that the mark is seen even if DynamoDB reported only the
/// first failing condition of a transaction (it documents a code per action; the order is the
/// belt to those braces): a duplicate whose mark went unseen would skip likes still kept.
pub fn notice_cancel(codes: [Option<&str>; 3]) -> NoticeCancel {
    let failed = codes.map(|code| code.filter(|c| *c != "None"));
    let others = || {
        failed
            .iter()
            .flatten()
            .filter(|code| **code != "ConditionalCheckFailed")
    };
    if others().any(|code| !is_capacity_code(code)) {
        return NoticeCancel::Failed;
    }
    if others().next().is_some() {
        return NoticeCancel::Busy;
    }
    let [owner, receipt, notification] = failed.map(|code| code.is_some());
    if receipt || notification {
        NoticeCancel::Duplicate { held: owner }
    } else if owner {
        NoticeCancel::Held
    } else {
        NoticeCancel::ByOthers
    }
}

/// A TransactWriteItems takes at most 100 actions: 33 notices of three items each.
pub const NOTICES_PER_TRANSACTION: usize = 33;

/// Groups notices (by image id and event id, in batch order) into transactions: at most
/// [`NOTICES_PER_TRANSACTION`] each, and no two of one image or one event in the same one
/// (DynamoDB refuses a transaction naming an item twice: they would share the owner item, the
/// notification or the receipt). A later notice of an image already taken goes to a later
/// transaction, so each image's notices keep their batch order.
pub fn notice_groups(notices: &[(&str, uuid::Uuid)]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut keys: Vec<std::collections::HashSet<(&str, uuid::Uuid)>> = Vec::new();
    let mut last_of_image: HashMap<&str, usize> = HashMap::new();
    let mut last_of_event: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (index, &(image, event)) in notices.iter().enumerate() {
        // After every group already holding this image or this event.
        let earliest = [
            last_of_image.get(image).map(|g| g + 1),
            last_of_event.get(&event).map(|g| g + 1),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        let group = (earliest..groups.len())
            .find(|&g| groups[g].len() < NOTICES_PER_TRANSACTION)
            .unwrap_or_else(|| {
                groups.push(Vec::new());
                keys.push(std::collections::HashSet::new());
                groups.len() - 1
            });
        groups[group].push(index);
        keys[group].insert((image, event));
        last_of_image.insert(image, group);
        last_of_event.insert(event, group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn ids(n: u128) -> Vec<Uuid> {
        (0..n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_canceled_notice_reads_as_a_duplicate_a_mark_a_bystander_busy_or_its_own_failure() {
        let ccf = Some("ConditionalCheckFailed");
        let none = Some("None");
        // (owner, receipt, notification) -> reading
        let cases = [
            ([none, ccf, none], NoticeCancel::Duplicate { held: false }),
            ([ccf, ccf, ccf], NoticeCancel::Duplicate { held: true }),
            ([None, None, ccf], NoticeCancel::Duplicate { held: false }),
            ([ccf, none, none], NoticeCancel::Held),
            ([none, none, none], NoticeCancel::ByOthers),
            ([None, None, None], NoticeCancel::ByOthers),
            (
                [none, Some("TransactionConflict"), none],
                NoticeCancel::Busy,
            ),
            ([ccf, Some("ThrottlingError"), ccf], NoticeCancel::Busy),
            (
                [none, Some("ProvisionedThroughputExceeded"), none],
                NoticeCancel::Busy,
            ),
            (
                [none, Some("ValidationError"), Some("ThrottlingError")],
                NoticeCancel::Failed,
            ),
        ];
        for (codes, reading) in cases {
            assert_eq!(notice_cancel(codes), reading, "{codes:?}");
        }
    }

    #[test]
    fn seventy_notices_of_distinct_images_take_three_transactions_of_at_most_33() {
        // Prepare
        let images: Vec<String> = (0..70).map(|i| format!("img{i}")).collect();
        let events = ids(70);
        let notices: Vec<(&str, Uuid)> = images
            .iter()
            .zip(&events)
            .map(|(image, event)| (image.as_str(), *event))
            .collect();
        // Act
        let groups = notice_groups(&notices);
        // Assess
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, [33, 33, 4]);
        let mut all: Vec<usize> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, (0..70).collect::<Vec<_>>());
    }

    #[test]
    fn notices_sharing_an_image_or_an_event_go_to_later_transactions_in_batch_order() {
        // Prepare: a producer duplicate of event 0, a second event of image "a", and others
        let events = ids(4);
        let notices = [
            ("a", events[0]),
            ("b", events[1]),
            ("a", events[0]), // the same event again
            ("a", events[2]), // another event of image a
            ("c", events[3]),
        ];
        // Act
        let groups = notice_groups(&notices);
        // Assess: no transaction names an image or an event twice, and each image's notices
        // keep their order across transactions
        assert_eq!(groups, vec![vec![0, 1, 4], vec![2], vec![3]]);
        for group in &groups {
            let images: std::collections::HashSet<&str> =
                group.iter().map(|&i| notices[i].0).collect();
            assert_eq!(images.len(), group.len());
        }
    }
}
