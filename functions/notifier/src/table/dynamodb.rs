//! The notifications table on DynamoDB, as the notifier writes it: image notices in
//! transactions with their receipts, liker states and likes notifications in conditional
//! transactions, likes kept for images whose owner is not known yet.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem, Update};
use snapglow::batch::Deadline;
use snapglow::dedup::expires_at;
use snapglow::retry::{Attempt, is_transient, pause, with_backoff};
use snapglow::table::{
    Cancellation, Deletes, Item, Selection, TableError, delete_all, image_pk, n, s, write_item,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::items::*;
use super::reader::kept_likes;
use super::{
    Applied, EarlyLike, Held, ImageNotice, NoticeCancel, Noticed, NotificationStore, Owner, Stored,
    Written, notice_cancel, notice_groups,
};
use crate::inbox::{Kind, LikeWindow, Liker, notification_id, user_pk};
use crate::likes::{LikerKey, NotificationKey, Transaction};

/// Sends of a notice transaction DynamoDB answers busy (throttling, conflict), within the
/// deadline, before the notice is left to redelivery: as many as `snapglow::table::transact`.
const BUSY_SENDS: u32 = 6;

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
                _ => return Err(TableError::of_transaction(&self.table, error)),
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
            // No send starts unless one whole call fits before the deadline.
            let margin = snapglow::aws::call_margin();
            while !pending.is_empty() && sends < 3 && deadline.remaining() >= margin {
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

    async fn owner_of(&self, image_id: &str) -> Result<Option<Owner>, TableError> {
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
    ) -> Result<HashMap<String, Owner>, TableError> {
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

    async fn hold_early(
        &self,
        image_id: &str,
        early: &EarlyLike,
        deadline: &Deadline,
    ) -> Result<Held, TableError> {
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
        let table = self.table.as_str();
        // Throttling and conflicts (whole-request or as reasons, or no reasons) are sent again
        // after a pause; a reason DynamoDB will never accept is this like's own refusal.
        with_backoff(deadline, BUSY_SENDS, |_| {
            self.spend(4); // two items in a transaction: 2 units each
            let request = (self.client.transact_write_items())
                .transact_items(TransactWriteItem::builder().update(mark.clone()).build())
                .transact_items(TransactWriteItem::builder().put(put.clone()).build());
            async move {
                let error = match request.send().await {
                    Ok(_) => return Ok(Held::Kept),
                    Err(error) => error,
                };
                match Cancellation::of_error(&error) {
                    // Only the owner mark has a condition: the owner became known.
                    Some(Cancellation::ConditionFailed) => Ok(Held::OwnerKnown),
                    Some(c) if c.is_retryable() => {
                        Err(Attempt::Retry(TableError::transient(table, error)))
                    }
                    Some(_) => Err(Attempt::GiveUp(TableError::of_transaction(table, error))),
                    None => Err(TableError::classify(table, error)),
                }
            }
        })
        .await
    }

    async fn early_likes(&self, image_id: &str) -> Result<Vec<EarlyLike>, TableError> {
        kept_likes(&self.client, &self.table, image_id, || self.spend(0)).await
    }

    async fn release_early(
        &self,
        image_id: &str,
        liker: &Liker,
        deadline: &Deadline,
    ) -> Result<(), TableError> {
        write_item(&self.table, deadline, || {
            self.spend(1);
            (self.client.delete_item())
                .table_name(&self.table)
                .set_key(Some(key(image_pk(image_id), &early_sk(liker))))
                .send()
        })
        .await?;
        Ok(())
    }

    /// One UpdateItem (the tombstone), then a Query and BatchWriteItems for the kept likes
    /// and for the owner's inbox (read whole, filtered to this image: the inbox's items expire
    /// with `INBOX_RETENTION_DAYS`, which bounds it).
    async fn erase_image(
        &self,
        image_id: &str,
        owner_id: &str,
        deadline: &Deadline,
    ) -> Result<usize, TableError> {
        let retention = self.inbox_retention.max(self.receipt_retention);
        let now = snapglow::contracts::Timestamp::now().millis();
        write_item(&self.table, deadline, || {
            self.spend(1);
            (self.client.update_item())
                .table_name(&self.table)
                .set_key(Some(owner_key(image_id)))
                .update_expression(
                    "SET owner_id = :owner, erased_at = :now, expires_at = :expires REMOVE held",
                )
                .expression_attribute_values(":owner", s(owner_id))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":expires", n(expires_at(retention)))
                .send()
        })
        .await?;
        let kept = Selection {
            table: &self.table,
            pk: image_pk(image_id),
            sk_prefix: Some("EARLY#"),
            only: None,
        };
        delete_all(&self.client, &kept, Deletes::Batched, deadline, || {
            self.spend(0)
        })
        .await?;
        let inbox = Selection {
            table: &self.table,
            pk: user_pk(owner_id),
            sk_prefix: Some("N#"),
            only: Some(("image_id", image_id)),
        };
        delete_all(&self.client, &inbox, Deletes::Batched, deadline, || {
            self.spend(0)
        })
        .await
    }

    async fn release_held(&self, image_id: &str, deadline: &Deadline) -> Result<(), TableError> {
        // The condition failing means there is no owner item: nothing to clear.
        write_item(&self.table, deadline, || {
            self.spend(1);
            (self.client.update_item())
                .table_name(&self.table)
                .set_key(Some(owner_key(image_id)))
                .update_expression("REMOVE held")
                // An update creates a missing item: only an owner item is touched.
                .condition_expression("attribute_exists(owner_id)")
                .send()
        })
        .await?;
        Ok(())
    }
}
