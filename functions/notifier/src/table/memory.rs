//! The notifications table in memory, for tests of whole batches without DynamoDB. Items are
//! the real adapter's (built by its item builders, read back by its inbox reader); each write
//! checks the condition its DynamoDB expression states, and writes nothing when it fails:
//! - an image notice is one transaction: a receipt or a notification already there cancels it;
//! - a like applies only when newer than the liker's stored fact;
//! - an unlike in its own window only where no notification exists or it is still unread;
//! - an unlike in the window before only over a stored fact of that liker, still unread.
//!
//! The inbox is the `by-activity` index: items with an `updated_at`, latest first.

use snapglow::dedup::expires_at;
use snapglow::table::TableError;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{
    EarlyLike, Held, ImageNotice, Item, NotificationStore, UndoPlace, Written, early_item,
    early_sk, key, liker_state, n, read_early, read_liker, read_notification, s,
};
use crate::inbox::{
    Kind, LikeWindow, Liker, Notification, UserId, image_pk, liker_attribute, notification_id,
    notification_sk, user_pk,
};
use aws_sdk_dynamodb::types::AttributeValue;

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
}

impl NotificationStore for MemoryNotifications {
    async fn notify_image(&self, notice: &ImageNotice<'_>) -> Result<Written, TableError> {
        let new = notice.items(self.inbox_retention, self.receipt_retention);
        let mut items = self.lock();
        if items.contains_key(&item_key(&new.receipt))
            || items.contains_key(&item_key(&new.notification))
        {
            return Ok(Written::Unchanged);
        }
        for item in [new.receipt, new.owner, new.notification] {
            items.insert(item_key(&item), item);
        }
        Ok(Written::Applied)
    }

    async fn owner_of(&self, image_id: &str) -> Result<Option<UserId>, TableError> {
        Ok(self
            .lock()
            .get(&(image_pk(image_id), "OWNER".to_owned()))
            .and_then(super::owner_in))
    }

    async fn record_liker(
        &self,
        owner_id: &str,
        image_id: &str,
        window: LikeWindow,
        liker: &Liker,
        place: UndoPlace,
    ) -> Result<Written, TableError> {
        let id = notification_id(Kind::Likes, image_id, Some(window));
        let (pk, sk) = (user_pk(owner_id), notification_sk(window.start_ms, &id));
        let attribute = liker_attribute(&liker.user_id);
        let mut items = self.lock();
        let existing = items.get(&(pk.clone(), sk.clone()));
        let stored = existing.and_then(|item| item.get(&attribute)).map(|state| {
            read_liker(&liker.user_id, state).expect("a liker written by the adapter")
        });
        let newer = stored.as_ref().is_none_or(|s| s.version < liker.version);
        let unread = existing
            .and_then(|item| item.get("unread")?.as_bool().ok().copied())
            .unwrap_or(false);
        let allowed = match (liker.liked, place) {
            (true, _) => newer,
            (false, UndoPlace::OwnWindow) => (existing.is_none() || unread) && newer,
            (false, UndoPlace::PreviousWindow) => stored.is_some() && unread && newer,
        };
        if !allowed {
            return Ok(Written::Unchanged);
        }
        let at = n(liker.version.at_ms);
        let expires = n(expires_at(self.inbox_retention));
        let item = items
            .entry((pk.clone(), sk.clone()))
            .or_insert_with(|| key(pk, &sk));
        item.insert(attribute, liker_state(liker));
        match (liker.liked, place) {
            (true, _) => {
                set_if_absent(item, "created_at", at.clone());
                item.insert("id".into(), s(&id));
                item.insert("kind".into(), s(Kind::Likes.as_str()));
                item.insert("image_id".into(), s(image_id));
                item.insert("unread".into(), AttributeValue::Bool(true));
                item.insert("updated_at".into(), at);
                item.insert("expires_at".into(), expires);
            }
            (false, UndoPlace::OwnWindow) => {
                // No updated_at: a notification made only of unlikes stays out of the inbox.
                set_if_absent(item, "unread", AttributeValue::Bool(true));
                set_if_absent(item, "created_at", at);
                set_if_absent(item, "expires_at", expires);
                item.insert("kind".into(), s(Kind::Likes.as_str()));
                item.insert("image_id".into(), s(image_id));
            }
            (false, UndoPlace::PreviousWindow) => {}
        }
        Ok(Written::Applied)
    }

    async fn hold_early(&self, image_id: &str, early: &EarlyLike) -> Result<Held, TableError> {
        let mut items = self.lock();
        if items.contains_key(&(image_pk(image_id), "OWNER".to_owned())) {
            return Ok(Held::OwnerKnown);
        }
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

    async fn release_early(&self, image_id: &str, liker: &Liker) -> Result<(), TableError> {
        self.lock().remove(&(image_pk(image_id), early_sk(liker)));
        Ok(())
    }
}
