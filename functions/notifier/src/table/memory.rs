//! The notifications table in memory, for tests of whole batches without DynamoDB. Items are
//! the real adapter's (built by its item builders, read back by its readers); each write checks
//! the condition its DynamoDB expression states, and writes nothing when it fails:
//! - an image notice is one transaction: a receipt or a notification already there cancels it;
//!   the owner item's `held` mark is reported and kept, as the real one reads and keeps it;
//! - a likes transaction applies all or nothing: each liker state only over the state it was
//!   planned from, counts added to; over 100 actions, or two on one item, it is refused.
//!
//! The inbox is the `by-activity` index: items with an `updated_at`, latest first.

use snapglow::dedup::expires_at;
use snapglow::table::TableError;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::items::{
    early_item, early_sk, key, liker_item, liker_pk, likes_key, read_early, read_liker_state,
    read_notification, read_stored_likes,
};
use super::{
    Applied, EarlyLike, Held, ImageNotice, Noticed, NotificationStore, Owner, Stored, Written,
};
use crate::inbox::{Kind, LikeWindow, Liker, Notification, notification_id, user_pk};
use crate::likes::{LikerKey, MAX_TRANSACTION_ACTIONS, NotificationKey, Transaction};
use aws_sdk_dynamodb::types::AttributeValue;
use snapglow::batch::Deadline;
use snapglow::table::{Item, image_pk, n, s};
use std::collections::{BTreeSet, HashMap};

pub struct MemoryNotifications {
    /// By (pk, sk).
    items: Mutex<BTreeMap<(String, String), Item>>,
    inbox_retention: Duration,
    receipt_retention: Duration,
}

impl Default for MemoryNotifications {
    fn default() -> Self {
        Self {
            items: Mutex::default(),
            inbox_retention: Duration::from_secs(86_400 * 30),
            receipt_retention: Duration::from_secs(3600 * 192),
        }
    }
}

const TABLE: &str = "memory-notifications";

fn item_key(item: &Item) -> (String, String) {
    let text = |name: &str| item[name].as_s().expect("keys are strings").clone();
    (text("pk"), text("sk"))
}

/// `SET name = if_not_exists(name, value)`
fn set_if_absent(item: &mut Item, name: &str, value: AttributeValue) {
    item.entry(name.to_owned()).or_insert(value);
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl MemoryNotifications {
    /// A user's inbox, as [`super::NotificationsTable::inbox`] reads it.
    pub fn inbox(&self, user_id: &str) -> Vec<Notification> {
        let items = self.lock();
        let mut listed: Vec<(i64, &String, &Item)> = items
            .iter()
            .filter(|((pk, _), _)| *pk == user_pk(user_id))
            .filter_map(|((_, sk), item)| Some((number(item, "updated_at")?, sk, item)))
            .collect();
        listed.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
        let now_s = expires_at(Duration::ZERO);
        listed
            .into_iter()
            .filter_map(|(_, _, item)| read_notification(item, now_s))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Item>> {
        self.items.lock().expect("notifications table lock")
    }

    /// Whether the image's owner item carries the `held` mark.
    pub fn held(&self, image_id: &str) -> bool {
        is_held(&self.lock(), image_id)
    }
}

fn owner_key(image_id: &str) -> (String, String) {
    item_key(&super::items::owner_key(image_id))
}

fn is_held(items: &BTreeMap<(String, String), Item>, image_id: &str) -> bool {
    items
        .get(&owner_key(image_id))
        .is_some_and(|item| item.contains_key("held"))
}

impl NotificationStore for MemoryNotifications {
    async fn notify_image(
        &self,
        notice: &ImageNotice<'_>,
        _deadline: &Deadline,
    ) -> Result<Noticed, TableError> {
        let new = notice.items(self.inbox_retention, self.receipt_retention);
        let mut items = self.lock();
        let held = is_held(&items, notice.image_id);
        if items.contains_key(&item_key(&new.receipt))
            || items.contains_key(&item_key(&new.notification))
        {
            return Ok(Noticed {
                written: Written::Unchanged,
                held,
            });
        }
        // `SET owner_id`: the rest of the owner item (a mark) stays.
        items
            .entry(owner_key(notice.image_id))
            .or_insert_with(|| super::items::owner_key(notice.image_id))
            .insert("owner_id".into(), s(notice.owner_id));
        for item in [new.receipt, new.notification] {
            items.insert(item_key(&item), item);
        }
        Ok(Noticed {
            written: Written::Applied,
            held,
        })
    }

    async fn owner_of(&self, image_id: &str) -> Result<Option<Owner>, TableError> {
        Ok(self
            .lock()
            .get(&owner_key(image_id))
            .and_then(super::items::owner_in))
    }

    async fn owners_of(
        &self,
        image_ids: &[String],
        _deadline: &Deadline,
    ) -> Result<HashMap<String, Owner>, TableError> {
        let items = self.lock();
        Ok(image_ids
            .iter()
            .filter_map(|image| {
                let item = items.get(&owner_key(image))?;
                Some((image.clone(), super::items::owner_in(item)?))
            })
            .collect())
    }

    async fn read(
        &self,
        likers: &[LikerKey],
        notifications: &[NotificationKey],
        _deadline: &Deadline,
    ) -> Result<Stored, TableError> {
        let items = self.lock();
        let mut stored = Stored::default();
        for liker in likers {
            if let Some(item) = items.get(&(liker_pk(liker), "STATE".to_owned())) {
                let state = read_liker_state(item)
                    .ok_or_else(|| TableError::corrupt_item(TABLE, format!("{item:?}")))?;
                stored.likers.insert(liker.clone(), state);
            }
        }
        for notification in notifications {
            if let Some(item) = items.get(&likes_key(notification)) {
                stored
                    .notifications
                    .insert(notification.clone(), read_stored_likes(item));
            }
        }
        Ok(stored)
    }

    async fn apply(
        &self,
        transaction: &Transaction,
        _deadline: &Deadline,
    ) -> Result<Applied, TableError> {
        let mut items = self.lock();
        if transaction.actions() > MAX_TRANSACTION_ACTIONS {
            return Err(TableError::rejected(
                TABLE,
                "ValidationException: over 100 actions in one transaction",
            ));
        }
        let keys: BTreeSet<String> = transaction
            .writes
            .iter()
            .map(|w| liker_pk(&w.key))
            .collect();
        if keys.len() != transaction.writes.len() {
            return Err(TableError::rejected(
                TABLE,
                "ValidationException: two operations on one item",
            ));
        }
        let unchanged = transaction.writes.iter().all(|w| {
            let stored = items
                .get(&(liker_pk(&w.key), "STATE".to_owned()))
                .and_then(read_liker_state)
                .map(|state| state.version);
            stored == w.expected
        });
        if !unchanged {
            return Ok(Applied::StateChanged);
        }
        for write in &transaction.writes {
            let item = liker_item(
                write,
                self.inbox_retention.max(self.receipt_retention),
                self.receipt_retention,
            );
            items.insert(item_key(&item), item);
        }
        for (notification, change) in &transaction.notifications {
            let (pk, sk) = likes_key(notification);
            let window = LikeWindow {
                start_ms: notification.window_start_ms,
            };
            let item = items
                .entry((pk.clone(), sk.clone()))
                .or_insert_with(|| key(pk, &sk));
            let likes = number(item, "likes").unwrap_or(0) + change.delta;
            item.insert("likes".into(), n(likes));
            item.insert(
                "id".into(),
                s(notification_id(
                    Kind::Likes,
                    &notification.image_id,
                    Some(window),
                )),
            );
            item.insert("kind".into(), s(Kind::Likes.as_str()));
            item.insert("image_id".into(), s(&notification.image_id));
            set_if_absent(item, "created_at", n(window.start_ms));
            item.insert("expires_at".into(), n(expires_at(self.inbox_retention)));
            set_if_absent(item, "unread", AttributeValue::Bool(true));
            if let Some(recent) = &change.recent {
                item.insert(
                    "recent".into(),
                    AttributeValue::L(recent.iter().map(s).collect()),
                );
            }
            if let Some(at) = change.newest_like_ms {
                item.insert("unread".into(), AttributeValue::Bool(true));
                item.insert("updated_at".into(), n(at));
            }
        }
        Ok(Applied::Committed)
    }

    async fn hold_early(
        &self,
        image_id: &str,
        early: &EarlyLike,
        _: &Deadline,
    ) -> Result<Held, TableError> {
        let mut items = self.lock();
        let owner = items
            .entry(owner_key(image_id))
            .or_insert_with(|| super::items::owner_key(image_id));
        if owner.contains_key("owner_id") {
            return Ok(Held::OwnerKnown);
        }
        owner.insert("held".into(), AttributeValue::Bool(true));
        let item = early_item(image_id, early, self.inbox_retention);
        items.insert(item_key(&item), item);
        Ok(Held::Kept)
    }

    async fn early_likes(&self, image_id: &str) -> Result<Vec<EarlyLike>, TableError> {
        let pk = image_pk(image_id);
        Ok(self
            .lock()
            .iter()
            .filter(|((p, sk), _)| *p == pk && sk.starts_with("EARLY#"))
            .map(|(_, item)| read_early(item).expect("an early like written by the adapter"))
            .collect())
    }

    async fn release_early(
        &self,
        image_id: &str,
        liker: &Liker,
        _: &Deadline,
    ) -> Result<(), TableError> {
        self.lock().remove(&(image_pk(image_id), early_sk(liker)));
        Ok(())
    }

    async fn erase_image(
        &self,
        image_id: &str,
        owner_id: &str,
        _: &Deadline,
    ) -> Result<usize, TableError> {
        let mut items = self.lock();
        let owner = items
            .entry(owner_key(image_id))
            .or_insert_with(|| super::items::owner_key(image_id));
        owner.insert("owner_id".into(), s(owner_id));
        owner.insert("erased_at".into(), n(1));
        owner.remove("held");
        let (image, inbox) = (image_pk(image_id), user_pk(owner_id));
        items.retain(|(pk, sk), _| !(*pk == image && sk.starts_with("EARLY#")));
        let before = items.len();
        items.retain(|(pk, sk), item| {
            !(*pk == inbox
                && sk.starts_with("N#")
                && item.get("image_id").and_then(|v| v.as_s().ok()) == Some(&image_id.to_owned()))
        });
        Ok(before - items.len())
    }

    async fn release_held(&self, image_id: &str, _: &Deadline) -> Result<(), TableError> {
        if let Some(owner) = self
            .lock()
            .get_mut(&owner_key(image_id))
            .filter(|item| item.contains_key("owner_id"))
        {
            owner.remove("held");
        }
        Ok(())
    }
}
