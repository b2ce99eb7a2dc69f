//! The notifications table adapter: the only code here that talks to DynamoDB.
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
//!   the owner is known.
//! - `EVENT#{event_id}`, `RECEIPT`: an image event already turned into a notification.
//! - `IMAGE#{image_id}`, `EARLY#{event_id}`: a like or unlike that arrived while the image's
//!   owner was unknown (`user_id`, `liked`, `at`, `id`, `window`), kept until its
//!   ImagePublished / ImageRejected names the owner, then delivered and deleted. Keeping one
//!   sets `held` on the owner item in the same transaction, so an image event looks for kept
//!   likes only when there are some: the notice's write is what tells it.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem, Update};
use snapglow::batch::Deadline;
use snapglow::dedup::{EventVersion, expires_at};
use snapglow::retry::{is_transient, pause};
pub use snapglow::table::Applied;
use snapglow::table::{TableError, is_capacity_code};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::inbox::{
    Kind, LikeWindow, Liker, Notification, UserId, image_pk, likes_text, notification_id,
    notification_sk, standing_likers, user_pk,
};
use crate::likes::{LikerKey, LikerState, NotificationKey, StateWrite, StoredLikes, Transaction};

/// The owner named by an image's owner item.
pub(crate) fn owner_in(item: &std::collections::HashMap<String, AttributeValue>) -> Option<String> {
    item.get("owner_id")?.as_s().ok().cloned()
}

#[cfg(test)]
pub mod memory;

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
    fn owner_of(&self, image_id: &str) -> impl Future<Output = Result<Option<UserId>, TableError>>;

    /// The owners of `image_ids` as learnt from their ImagePublished / ImageRejected (images
    /// with none are absent), in one read per 100 images.
    fn owners_of(
        &self,
        image_ids: &[String],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<HashMap<String, UserId>, TableError>>;

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
    ) -> impl Future<Output = Result<Held, TableError>>;

    /// The likes kept for an image, strongly consistent (one written just before the owner
    /// was must be seen).
    fn early_likes(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Vec<EarlyLike>, TableError>>;

    /// Deletes a kept like once it is delivered.
    fn release_early(
        &self,
        image_id: &str,
        liker: &Liker,
    ) -> impl Future<Output = Result<(), TableError>>;

    /// Clears the image's `held` mark once every kept like is delivered and deleted. No like
    /// can be kept after that: the owner is known, so a later like is delivered at once.
    fn release_held(&self, image_id: &str) -> impl Future<Output = Result<(), TableError>>;
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

fn early_sk(liker: &Liker) -> String {
    format!("EARLY#{}", liker.version.event_id)
}

fn early_item(image_id: &str, early: &EarlyLike, retention: Duration) -> Item {
    let mut item = key(image_pk(image_id), &early_sk(&early.liker));
    item.insert("user_id".into(), s(&early.liker.user_id));
    item.insert("liker".into(), liker_state(&early.liker));
    item.insert("window".into(), n(early.window.start_ms));
    item.insert("expires_at".into(), n(expires_at(retention)));
    item
}

fn read_early(item: &Item) -> Option<EarlyLike> {
    let user_id = item.get("user_id")?.as_s().ok()?;
    Some(EarlyLike {
        window: LikeWindow {
            start_ms: item.get("window")?.as_n().ok()?.parse().ok()?,
        },
        liker: read_liker(user_id, item.get("liker")?)?,
    })
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

/// [`notice_cancel`] of the notice whose three actions start at `first` in a canceled
/// transaction's reasons (one per action, in order).
/// Without reasons at all (documented as optional) nothing can be told of any notice: busy.
fn notice_cancel_at(reasons: &[CancellationReason], first: usize) -> NoticeCancel {
    if reasons.is_empty() {
        return NoticeCancel::Busy;
    }
    let code = |at: usize| reasons.get(first + at).and_then(|r| r.code());
    notice_cancel([code(0), code(1), code(2)])
}

/// How a failed notice transaction reads for the notice whose actions start at `first`:
/// whole-request throttling, 5xx and timeouts (after the SDK's own attempts) are busy too.
fn notice_failure(
    error: &SdkError<TransactWriteItemsError, HttpResponse>,
    first: usize,
) -> NoticeCancel {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
            notice_cancel_at(canceled.cancellation_reasons(), first)
        }
        _ if is_transient(error) => NoticeCancel::Busy,
        _ => NoticeCancel::Failed,
    }
}

type Item = HashMap<String, AttributeValue>;

/// Sends of a notice transaction DynamoDB answers busy (throttling, conflict), within the
/// deadline, before the notice is left to redelivery: as many as `snapglow::table::transact`.
const BUSY_SENDS: u32 = 6;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The key of an image's owner item (`IMAGE#{image_id}`, `OWNER`).
fn owner_key(image_id: &str) -> Item {
    key(image_pk(image_id), "OWNER")
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

/// The two items an image notice puts, in one transaction with the owner item's `owner_id`
/// (set, as owners never change, keeping any `held` mark).
struct ImageItems {
    /// `EVENT#{event_id}`: written only if new, so the whole notice is written once.
    receipt: Item,
    /// Written only if new.
    notification: Item,
}

impl ImageNotice<'_> {
    fn items(&self, inbox_retention: Duration, receipt_retention: Duration) -> ImageItems {
        let id = notification_id(self.kind, self.image_id, None);
        let mut receipt = key(format!("EVENT#{}", self.event_id), "RECEIPT");
        receipt.insert("expires_at".into(), n(expires_at(receipt_retention)));
        let mut notification = key(
            user_pk(self.owner_id),
            &notification_sk(self.created_ms, &id),
        );
        notification.insert("id".into(), s(&id));
        notification.insert("kind".into(), s(self.kind.as_str()));
        notification.insert("image_id".into(), s(self.image_id));
        notification.insert("unread".into(), AttributeValue::Bool(true));
        notification.insert("created_at".into(), n(self.created_ms));
        notification.insert("updated_at".into(), n(self.created_ms));
        notification.insert("expires_at".into(), n(expires_at(inbox_retention)));
        if let Some((reason, message)) = self.reason {
            notification.insert("reason".into(), s(reason));
            notification.insert("message".into(), s(message));
        }
        ImageItems {
            receipt,
            notification,
        }
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

pub struct NotificationsTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    inbox_retention: Duration,
    receipt_retention: Duration,
    /// DynamoDB requests made by the event path (not the inbox read), for logs and benchmarks.
    pub requests: AtomicU64,
    /// Write request units billed for them, counting 1 KB items (a likes notification with
    /// many likers is larger: 1 unit per started KB).
    pub write_units: AtomicU64,
}

fn is_condition_failure<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

impl NotificationsTable {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        inbox_retention: Duration,
        receipt_retention: Duration,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            inbox_retention,
            receipt_retention,
            requests: AtomicU64::new(0),
            write_units: AtomicU64::new(0),
        }
    }

    fn spend(&self, write_units: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.write_units.fetch_add(write_units, Ordering::Relaxed);
    }

    fn error<E>(&self, error: SdkError<E, HttpResponse>) -> TableError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        TableError::from_sdk(&self.table, error)
    }

    /// A notice's three actions: the owner set, on condition that no likes are kept for the
    /// image unless that is known (`held`); the receipt and the notification put only if new.
    fn notice_actions(&self, notice: &ImageNotice<'_>, held: bool) -> [TransactWriteItem; 3] {
        let items = notice.items(self.inbox_retention, self.receipt_retention);
        let mut owner = Update::builder()
            .table_name(&self.table)
            .set_key(Some(owner_key(notice.image_id)))
            .update_expression("SET owner_id = :owner")
            .expression_attribute_values(":owner", s(notice.owner_id));
        if !held {
            owner = owner.condition_expression("attribute_not_exists(held)");
        }
        let put = |item: Item| {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)");
            TransactWriteItem::builder()
                .put(put.build().expect("table and item are set"))
                .build()
        };
        [
            TransactWriteItem::builder()
                .update(owner.build().expect("table, key and expression are set"))
                .build(),
            put(items.receipt),
            put(items.notification),
        ]
    }

    /// One transaction of `group`'s notices. Answers those it settles in `answers` and returns
    /// the ones to send again: canceled only because another notice of the transaction was
    /// already written, because likes are kept for their own image (then `held` says so and
    /// the owner is set without the condition), or because DynamoDB was busy (throttling or a
    /// conflict: then `busy` is true, and the caller pauses first). A refused notice is left
    /// unanswered, for `notify_image` to write (and classify) alone.
    async fn notify_group(
        &self,
        notices: &[ImageNotice<'_>],
        group: Vec<usize>,
        held: &mut [bool],
        answers: &mut [Option<Noticed>],
    ) -> (Vec<usize>, bool) {
        let actions: Vec<TransactWriteItem> = group
            .iter()
            .flat_map(|&index| self.notice_actions(&notices[index], held[index]))
            .collect();
        self.spend(6 * group.len() as u64); // three items per notice, 2 units each
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        let error = match result {
            Ok(_) => {
                for &index in &group {
                    answers[index] = Some(Noticed {
                        written: Written::Applied,
                        held: held[index],
                    });
                }
                return (Vec::new(), false);
            }
            Err(error) => error,
        };
        let mut again = Vec::new();
        let mut busy = false;
        for (position, &index) in group.iter().enumerate() {
            match notice_failure(&error, position * 3) {
                NoticeCancel::Duplicate { held: marked } => {
                    answers[index] = Some(Noticed {
                        written: Written::Unchanged,
                        held: marked || held[index],
                    });
                }
                NoticeCancel::Held => {
                    held[index] = true;
                    again.push(index);
                }
                NoticeCancel::Busy => {
                    busy = true;
                    again.push(index);
                }
                NoticeCancel::ByOthers => again.push(index),
                NoticeCancel::Failed => {}
            }
        }
        (again, busy)
    }

    /// A user's inbox, most recent activity first. Expired entries (TTL deletion lags by up to two days) and
    /// likes notifications whose every like was undone are left out.
    pub async fn inbox(&self, user_id: &str) -> Result<Vec<Notification>, TableError> {
        let mut notifications = Vec::new();
        let mut start = None;
        loop {
            // DynamoDB's own page size (1 MB) bounds each query.
            let (page, next) = self.inbox_page(user_id, i32::MAX, start).await?;
            notifications.extend(page);
            start = next;
            if start.is_none() {
                return Ok(notifications);
            }
        }
    }
}

/// One page of an inbox and where the next one starts (DynamoDB's LastEvaluatedKey).
pub type InboxPage = (Vec<Notification>, Option<Item>);

impl NotificationsTable {
    /// Up to `limit` items of a user's inbox, most recent activity first, from `start` (a
    /// previous page's end). A page may hold fewer notifications than `limit`: expired
    /// items and likes notifications whose every like was undone are left out after reading.
    pub async fn inbox_page(
        &self,
        user_id: &str,
        limit: i32,
        start: Option<Item>,
    ) -> Result<InboxPage, TableError> {
        let now_s = expires_at(Duration::ZERO);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("by-activity")
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(user_pk(user_id)))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let notifications = output
            .items()
            .iter()
            .filter_map(|item| read_notification(item, now_s))
            .collect();
        Ok((notifications, output.last_evaluated_key))
    }

    /// Marks one notification of `user_id` read; false when there is no such notification.
    /// Only `unread` changes: the notifier owns everything else in the item.
    pub async fn mark_read(&self, user_id: &str, key: &str) -> Result<bool, TableError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user_id)))
            .key("sk", s(key))
            .update_expression("SET unread = :read")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":read", AttributeValue::Bool(false))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn liker_pk(key: &LikerKey) -> String {
    format!("LIKER#{}#{}", key.image_id, key.user_id)
}

/// The (pk, sk) of a likes notification.
fn likes_key(key: &NotificationKey) -> (String, String) {
    let window = LikeWindow {
        start_ms: key.window_start_ms,
    };
    let id = notification_id(Kind::Likes, &key.image_id, Some(window));
    (
        user_pk(&key.owner_id),
        notification_sk(window.start_ms, &id),
    )
}

fn read_liker_state(item: &Item) -> Option<LikerState> {
    let number = |name: &str| item.get(name)?.as_n().ok()?.parse::<i64>().ok();
    Some(LikerState {
        liked: *item.get("liked")?.as_bool().ok()?,
        version: EventVersion {
            revision: None,
            at_ms: number("at")?,
            event_id: item.get("id")?.as_s().ok()?.parse().ok()?,
        },
        counted_in: number("counted_in"),
    })
}

fn read_stored_likes(item: &Item) -> StoredLikes {
    StoredLikes {
        likes: item
            .get("likes")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        recent: item
            .get("recent")
            .and_then(|v| v.as_l().ok())
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_s().ok().cloned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The state item a write puts.
fn liker_item(write: &StateWrite, liked_retention: Duration, unliked_retention: Duration) -> Item {
    let mut item = key(liker_pk(&write.key), "STATE");
    item.insert("liked".into(), AttributeValue::Bool(write.new.liked));
    item.insert("at".into(), n(write.new.version.at_ms));
    item.insert("id".into(), s(write.new.version.event_id.to_string()));
    if let Some(window) = write.new.counted_in {
        item.insert("counted_in".into(), n(window));
    }
    // A standing like is kept as long as the notification that counted it (its unlike must
    // find it); an unliked state as long as any redelivery or redrive of older facts can come.
    let retention = if write.new.liked {
        liked_retention
    } else {
        unliked_retention
    };
    item.insert("expires_at".into(), n(expires_at(retention)));
    item
}

impl NotificationsTable {
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        deadline: &Deadline,
    ) -> Result<Vec<Item>, TableError> {
        snapglow::table::batch_get(&self.client, &self.table, keys, None, deadline, || {
            self.spend(0)
        })
        .await
    }

    fn action_items(&self, transaction: &Transaction) -> Vec<TransactWriteItem> {
        let mut actions = Vec::with_capacity(transaction.actions());
        for write in &transaction.writes {
            let item = liker_item(
                write,
                self.inbox_retention.max(self.receipt_retention),
                self.receipt_retention,
            );
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
            put = match write.expected {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(version) => put
                    .condition_expression("#at = :at AND #id = :id")
                    .expression_attribute_names("#at", "at")
                    .expression_attribute_names("#id", "id")
                    .expression_attribute_values(":at", n(version.at_ms))
                    .expression_attribute_values(":id", s(version.event_id.to_string())),
            };
            actions.push(
                TransactWriteItem::builder()
                    .put(put.build().expect("table and item are set"))
                    .build(),
            );
        }
        for (notification, change) in &transaction.notifications {
            let (pk, sk) = likes_key(notification);
            let window = LikeWindow {
                start_ms: notification.window_start_ms,
            };
            let mut set = vec![
                "id = :nid",
                "kind = :kind",
                "image_id = :image",
                "created_at = if_not_exists(created_at, :created)",
                "expires_at = :expires",
                "unread = if_not_exists(unread, :unread)",
            ];
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .expression_attribute_values(":delta", n(change.delta))
                .expression_attribute_values(
                    ":nid",
                    s(notification_id(
                        Kind::Likes,
                        &notification.image_id,
                        Some(window),
                    )),
                )
                .expression_attribute_values(":kind", s(Kind::Likes.as_str()))
                .expression_attribute_values(":image", s(&notification.image_id))
                .expression_attribute_values(":created", n(window.start_ms))
                .expression_attribute_values(":expires", n(expires_at(self.inbox_retention)))
                .expression_attribute_values(":unread", AttributeValue::Bool(true));
            if let Some(recent) = &change.recent {
                set.push("recent = :recent");
                update = update.expression_attribute_values(
                    ":recent",
                    AttributeValue::L(recent.iter().map(s).collect()),
                );
            }
            if let Some(at) = change.newest_like_ms {
                // A new like makes the notification unread and moves it up the inbox.
                set.retain(|a| !a.starts_with("unread"));
                set.push("unread = :unread");
                set.push("updated_at = :updated");
                update = update.expression_attribute_values(":updated", n(at));
            }
            let update = update
                .update_expression(format!("SET {} ADD likes :delta", set.join(", ")))
                .build()
                .expect("table, key and expression are set");
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        actions
    }
}

impl NotificationStore for NotificationsTable {
    fn spend(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.write_units.load(Ordering::Relaxed),
        )
    }

    async fn notify_image(
        &self,
        notice: &ImageNotice<'_>,
        deadline: &Deadline,
    ) -> Result<Noticed, TableError> {
        // The second send, if any, knows the mark: its owner update has no condition.
        let mut held = false;
        let mut busy_sends = 0;
        loop {
            self.spend(6); // three items in a transaction: 2 units each
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.notice_actions(notice, held).into()))
                .send()
                .await;
            let error = match result {
                Ok(_) => {
                    return Ok(Noticed {
                        written: Written::Applied,
                        held,
                    });
                }
                Err(error) => error,
            };
            match notice_failure(&error, 0) {
                NoticeCancel::Duplicate { held: marked } => {
                    return Ok(Noticed {
                        written: Written::Unchanged,
                        held: marked || held,
                    });
                }
                NoticeCancel::Held if !held => held = true,
                NoticeCancel::Busy => {
                    busy_sends += 1;
                    if busy_sends >= BUSY_SENDS || !pause(deadline, busy_sends).await {
                        return Err(TableError::transient(&self.table, error));
                    }
                }
                _ => return Err(self.error(error)),
            }
        }
    }

    async fn notify_images(
        &self,
        notices: &[ImageNotice<'_>],
        deadline: &Deadline,
    ) -> Vec<Option<Noticed>> {
        let mut answers: Vec<Option<Noticed>> = vec![None; notices.len()];
        let mut held = vec![false; notices.len()];
        let keys: Vec<(&str, uuid::Uuid)> =
            notices.iter().map(|n| (n.image_id, n.event_id)).collect();
        for group in notice_groups(&keys) {
            // Notices canceled only because another of their transaction was a duplicate, or
            // because their image holds likes, are sent again: a duplicate is then gone, a mark
            // known. Three sends cover both in one group. A busy table is sent to again after
            // a growing pause, as `transact` does. What is left goes alone.
            let mut pending = group;
            let (mut sends, mut busy_sends) = (0, 0);
            while !pending.is_empty() && sends < 3 && deadline.remaining() >= Duration::from_secs(2)
            {
                let busy;
                (pending, busy) = self
                    .notify_group(notices, pending, &mut held, &mut answers)
                    .await;
                if busy {
                    busy_sends += 1;
                    if busy_sends >= BUSY_SENDS || !pause(deadline, busy_sends).await {
                        break;
                    }
                } else {
                    sends += 1;
                }
            }
        }
        answers
    }

    async fn owner_of(&self, image_id: &str) -> Result<Option<UserId>, TableError> {
        self.spend(0);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(owner_key(image_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(output.item.and_then(|item| owner_in(&item)))
    }

    async fn owners_of(
        &self,
        image_ids: &[String],
        deadline: &Deadline,
    ) -> Result<HashMap<String, UserId>, TableError> {
        let keys: Vec<Item> = image_ids.iter().map(|image| owner_key(image)).collect();
        let mut owners = HashMap::new();
        for item in self.batch_get(keys, deadline).await? {
            if let (Some(pk), Some(owner)) = (text(&item, "pk"), owner_in(&item))
                && let Some(image) = pk.strip_prefix("IMAGE#")
            {
                owners.insert(image.to_owned(), owner);
            }
        }
        Ok(owners)
    }

    async fn read(
        &self,
        likers: &[LikerKey],
        notifications: &[NotificationKey],
        deadline: &Deadline,
    ) -> Result<Stored, TableError> {
        let by_liker: HashMap<String, &LikerKey> =
            likers.iter().map(|k| (liker_pk(k), k)).collect();
        let by_notification: HashMap<(String, String), &NotificationKey> = notifications
            .iter()
            .map(|k| {
                let (pk, sk) = likes_key(k);
                ((pk, sk), k)
            })
            .collect();
        let keys = likers
            .iter()
            .map(|k| key(liker_pk(k), "STATE"))
            .chain(notifications.iter().map(|k| {
                let (pk, sk) = likes_key(k);
                key(pk, &sk)
            }))
            .collect();
        let mut stored = Stored::default();
        for item in self.batch_get(keys, deadline).await? {
            let (Some(pk), Some(sk)) = (text(&item, "pk"), text(&item, "sk")) else {
                continue;
            };
            if let Some(liker) = by_liker.get(&pk).filter(|_| sk == "STATE") {
                let state = read_liker_state(&item).ok_or_else(|| {
                    TableError::corrupt_item(&self.table, format!("a liker state {item:?}"))
                })?;
                stored.likers.insert((*liker).clone(), state);
            } else if let Some(notification) = by_notification.get(&(pk, sk)) {
                stored
                    .notifications
                    .insert((*notification).clone(), read_stored_likes(&item));
            }
        }
        Ok(stored)
    }

    async fn apply(
        &self,
        transaction: &Transaction,
        deadline: &Deadline,
    ) -> Result<Applied, TableError> {
        let actions = self.action_items(transaction);
        let units = 2 * actions.len() as u64;
        snapglow::table::transact(&self.client, &self.table, &actions, deadline, || {
            self.spend(units)
        })
        .await
    }

    async fn hold_early(&self, image_id: &str, early: &EarlyLike) -> Result<Held, TableError> {
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(owner_key(image_id)))
            .update_expression("SET held = :held")
            .condition_expression("attribute_not_exists(owner_id)")
            .expression_attribute_values(":held", AttributeValue::Bool(true))
            .build()
            .expect("table, key and expression are set");
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(early_item(image_id, early, self.inbox_retention)))
            .build()
            .expect("table and item are set");
        self.spend(4); // two items in a transaction: 2 units each
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Held::Kept),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled))
                    if canceled
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(Held::OwnerKnown)
                }
                _ => Err(self.error(error)),
            },
        }
    }

    async fn early_likes(&self, image_id: &str) -> Result<Vec<EarlyLike>, TableError> {
        let mut early = Vec::new();
        let mut start = None;
        loop {
            self.spend(0);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :early)")
                .expression_attribute_values(":pk", s(image_pk(image_id)))
                .expression_attribute_values(":early", s("EARLY#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            for item in output.items() {
                early.push(read_early(item).ok_or_else(|| {
                    TableError::corrupt_item(&self.table, format!("an early like {item:?}"))
                })?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(early);
            }
        }
    }

    async fn release_early(&self, image_id: &str, liker: &Liker) -> Result<(), TableError> {
        self.spend(1);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(image_pk(image_id), &early_sk(liker))))
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn release_held(&self, image_id: &str) -> Result<(), TableError> {
        self.spend(1);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(owner_key(image_id)))
            .update_expression("REMOVE held")
            // An update creates a missing item: only an owner item is touched.
            .condition_expression("attribute_exists(owner_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// One liker's latest fact, as stored in the `liker:{user}` attribute.
fn liker_state(liker: &Liker) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("liked".to_owned(), AttributeValue::Bool(liker.liked)),
        ("at".to_owned(), n(liker.version.at_ms)),
        ("id".to_owned(), s(liker.version.event_id.to_string())),
    ]))
}

fn read_liker(user_id: &str, state: &AttributeValue) -> Option<Liker> {
    let state = state.as_m().ok()?;
    Some(Liker {
        user_id: user_id.to_owned(),
        liked: *state.get("liked")?.as_bool().ok()?,
        version: EventVersion {
            revision: None,
            at_ms: state.get("at")?.as_n().ok()?.parse().ok()?,
            event_id: state.get("id")?.as_s().ok()?.parse().ok()?,
        },
    })
}

fn read_notification(item: &Item, now_s: i64) -> Option<Notification> {
    let text_of = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    if number("expires_at").is_some_and(|t| t <= now_s) {
        return None;
    }
    let kind = Kind::parse(&text_of("kind")?)?;
    let image_id = text_of("image_id")?;
    let created_ms = number("created_at").unwrap_or(0);
    let (actors, likes, text) = match kind {
        Kind::Published => (Vec::new(), None, "Your photo is live".to_owned()),
        Kind::Rejected => (
            Vec::new(),
            None,
            format!(
                "Your upload was rejected: {}",
                text_of("message")
                    .or_else(|| text_of("reason"))
                    .unwrap_or_default()
            ),
        ),
        Kind::Likes if item.contains_key("likes") => {
            let stored = read_stored_likes(item);
            if stored.likes <= 0 {
                return None;
            }
            let text = likes_text(&stored.recent, stored.likes);
            (stored.recent, Some(stored.likes), text)
        }
        Kind::Likes => {
            // Written before counts, with one `liker:{user}` attribute per liker (they expire
            // with the inbox's retention).
            let likers = item
                .iter()
                .filter_map(|(name, value)| read_liker(name.strip_prefix("liker:")?, value))
                .collect();
            let actors = standing_likers(likers);
            if actors.is_empty() {
                return None;
            }
            let count = actors.len() as i64;
            (actors.clone(), Some(count), likes_text(&actors, count))
        }
    };
    Some(Notification {
        id: text_of("id")?,
        key: text_of("sk")?,
        kind,
        image_id,
        actors,
        likes,
        text,
        unread: item
            .get("unread")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        created_at: snapglow::contracts::Timestamp::from_millis(created_ms).to_string(),
    })
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
