//! Every item of the notifications table, in one place: its keys, the attributes a write puts
//! and how a read turns them back into plain types. The DynamoDB writer, the inbox reader and
//! the in-memory twin all build and read items here, so the twin stores what DynamoDB would.

use aws_sdk_dynamodb::types::AttributeValue;
use snapglow::dedup::{EventVersion, expires_at};
use snapglow::table::{Item, image_pk, n, s};
use std::collections::HashMap;
use std::time::Duration;

use super::{EarlyLike, ImageNotice, Owner};
use crate::inbox::{
    Kind, LikeWindow, Liker, Notification, likes_text, notification_id, notification_sk,
    standing_likers, user_pk,
};
use crate::likes::{LikerKey, LikerState, NotificationKey, StateWrite, StoredLikes};

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The key of an image's owner item (`IMAGE#{image_id}`, `OWNER`).
pub(super) fn owner_key(image_id: &str) -> Item {
    key(image_pk(image_id), "OWNER")
}

/// The owner named by an image's owner item.
pub(super) fn owner_in(item: &Item) -> Option<Owner> {
    if item.contains_key("erased_at") {
        return Some(Owner::Erased);
    }
    item.get("owner_id")?.as_s().ok().cloned().map(Owner::Of)
}

pub(super) fn early_sk(liker: &Liker) -> String {
    format!("EARLY#{}", liker.version.event_id)
}

pub(super) fn early_item(image_id: &str, early: &EarlyLike, retention: Duration) -> Item {
    let mut item = key(image_pk(image_id), &early_sk(&early.liker));
    item.insert("user_id".into(), s(&early.liker.user_id));
    item.insert("liker".into(), liker_state(&early.liker));
    item.insert("window".into(), n(early.window.start_ms));
    item.insert("expires_at".into(), n(expires_at(retention)));
    item
}

pub(super) fn read_early(item: &Item) -> Option<EarlyLike> {
    let user_id = item.get("user_id")?.as_s().ok()?;
    Some(EarlyLike {
        window: LikeWindow {
            start_ms: item.get("window")?.as_n().ok()?.parse().ok()?,
        },
        liker: read_liker(user_id, item.get("liker")?)?,
    })
}

/// The two items an image notice puts, in one transaction with the owner item's `owner_id`
/// (set, as owners never change, keeping any `held` mark).
pub(super) struct ImageItems {
    /// `EVENT#{event_id}`: written only if new, so the whole notice is written once.
    pub(super) receipt: Item,
    /// Written only if new.
    pub(super) notification: Item,
}

impl ImageNotice<'_> {
    pub(super) fn items(
        &self,
        inbox_retention: Duration,
        receipt_retention: Duration,
    ) -> ImageItems {
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

pub(super) fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

pub(super) fn liker_pk(key: &LikerKey) -> String {
    format!("LIKER#{}#{}", key.image_id, key.user_id)
}

/// The (pk, sk) of a likes notification.
pub(super) fn likes_key(key: &NotificationKey) -> (String, String) {
    let window = LikeWindow {
        start_ms: key.window_start_ms,
    };
    let id = notification_id(Kind::Likes, &key.image_id, Some(window));
    (
        user_pk(&key.owner_id),
        notification_sk(window.start_ms, &id),
    )
}

pub(super) fn read_liker_state(item: &Item) -> Option<LikerState> {
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

pub(super) fn read_stored_likes(item: &Item) -> StoredLikes {
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
pub(super) fn liker_item(
    write: &StateWrite,
    liked_retention: Duration,
    unliked_retention: Duration,
) -> Item {
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

/// One liker's latest fact, as stored in the `liker:{user}` attribute.
pub(super) fn liker_state(liker: &Liker) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("liked".to_owned(), AttributeValue::Bool(liker.liked)),
        ("at".to_owned(), n(liker.version.at_ms)),
        ("id".to_owned(), s(liker.version.event_id.to_string())),
    ]))
}

pub(super) fn read_liker(user_id: &str, state: &AttributeValue) -> Option<Liker> {
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

/// The notification an inbox item holds, as the inbox shows it; `None` for an expired one, one
/// whose likes were all taken back, or an item that is no notification.
pub fn read_notification(item: &Item, now_s: i64) -> Option<Notification> {
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
        Kind::Held => (
            Vec::new(),
            None,
            "Your photo is held for review; only you can see it until then".to_owned(),
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
        updated_at: snapglow::contracts::Timestamp::from_millis(
            number("updated_at").unwrap_or(created_ms).max(created_ms),
        )
        .to_string(),
    })
}
