//! The pure core of the likes notifications: which likes a batch brings to which owner's
//! notification, exactly once, in items that stay small however many people like a photo.
//!
//! Each (image, liker) has a state item: the liker's latest fact and, while the like stands,
//! the window whose notification counted it. A likes notification holds a count and the few
//! most recent likers' names, never one attribute per liker: DynamoDB bills every update on the
//! item's whole size, and an item stops at 400 KB.
//!
//! - a like newer than the stored fact, over no standing like, counts once in the notification
//!   of its window (and makes it unread);
//! - an unlike newer than the stored fact takes a standing like out of the notification that
//!   counted it (without making it unread);
//! - anything else (a duplicate, a stale redelivery, a replay, a like over a like) changes the
//!   stored fact at most.
//!
//! Every state write applies only over the state it was planned from, in one transaction with
//! the count changes it implies: a redelivery, a zombie invocation or an SDK retry never counts
//! twice.

use snapglow::dedup::EventVersion;
use std::collections::{BTreeMap, HashMap};

use crate::inbox::LikeWindow;

/// DynamoDB's limit of actions in one transaction.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// Names a likes notification keeps: the text names the latest and counts the rest.
pub const RECENT_NAMES: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LikerKey {
    pub image_id: String,
    pub user_id: String,
}

/// One like or unlike, from a stream record (`record`, its index in the batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeFact {
    pub key: LikerKey,
    pub liked: bool,
    pub version: EventVersion,
    pub record: usize,
}

/// The latest fact per key in a batch, and every record it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub liked: bool,
    pub version: EventVersion,
    pub records: Vec<usize>,
}

pub fn latest_per_key(facts: Vec<LikeFact>) -> BTreeMap<LikerKey, Latest> {
    let mut latest: BTreeMap<LikerKey, Latest> = BTreeMap::new();
    for fact in facts {
        let entry = latest.entry(fact.key).or_insert_with(|| Latest {
            liked: fact.liked,
            version: fact.version,
            records: Vec::new(),
        });
        entry.records.push(fact.record);
        if fact.version > entry.version {
            entry.liked = fact.liked;
            entry.version = fact.version;
        }
    }
    latest
}

/// What is stored of one liker of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikerState {
    pub liked: bool,
    pub version: EventVersion,
    /// The window whose notification counted this like, while it stands.
    pub counted_in: Option<i64>,
}

/// One owner's likes notification of one image and window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NotificationKey {
    pub owner_id: String,
    pub image_id: String,
    pub window_start_ms: i64,
}

/// What a likes notification holds that planning needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLikes {
    pub likes: i64,
    /// Most recent first, at most [`RECENT_NAMES`].
    pub recent: Vec<String>,
}

/// A liker's state written over the state it was planned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub key: LikerKey,
    pub expected: Option<EventVersion>,
    pub new: LikerState,
    /// The notification whose count this write changes, by +1 or -1.
    pub counts: Option<(NotificationKey, i64)>,
}

/// One notification's change in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationChange {
    pub delta: i64,
    /// Set when this transaction writes the notification's names: the newest like of the
    /// batch for it is here, or a named liker took a like back.
    pub recent: Option<Vec<String>>,
    /// The newest like in this change: the notification becomes unread and moves up the inbox.
    pub newest_like_ms: Option<i64>,
}

/// One TransactWriteItems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    pub writes: Vec<StateWrite>,
    pub notifications: BTreeMap<NotificationKey, NotificationChange>,
}

impl Transaction {
    pub fn actions(&self) -> usize {
        self.writes.len() + self.notifications.len()
    }
}

/// The state writes that bring the stored states up to the batch's facts, with the count each
/// changes. `owners` names each image's owner; a key whose image has none, and an owner's own
/// likes, are not planned (the caller decides).
pub fn plan(
    latest: &BTreeMap<LikerKey, Latest>,
    owners: &HashMap<String, String>,
    stored: &HashMap<LikerKey, LikerState>,
    window_ms: i64,
) -> Vec<StateWrite> {
    let mut writes = Vec::new();
    for (key, fact) in latest {
        let Some(owner_id) = owners.get(&key.image_id) else {
            continue;
        };
        let current = stored.get(key);
        if current.is_some_and(|state| state.version >= fact.version) {
            continue;
        }
        let standing = current.and_then(|state| state.counted_in.filter(|_| state.liked));
        let notification = |window_start_ms| NotificationKey {
            owner_id: owner_id.clone(),
            image_id: key.image_id.clone(),
            window_start_ms,
        };
        let (counted_in, counts) = match (fact.liked, standing) {
            (true, Some(window)) => (Some(window), None),
            (true, None) => {
                let window = LikeWindow::of(fact.version.at_ms, window_ms).start_ms;
                (Some(window), Some((notification(window), 1)))
            }
            (false, Some(window)) => (None, Some((notification(window), -1))),
            (false, None) => (None, None),
        };
        writes.push(StateWrite {
            key: key.clone(),
            expected: current.map(|state| state.version),
            new: LikerState {
                liked: fact.liked,
                version: fact.version,
                counted_in,
            },
            counts,
        });
    }
    writes
}

/// The notifications a set of writes changes.
pub fn notifications_of(writes: &[StateWrite]) -> Vec<NotificationKey> {
    let mut keys: Vec<NotificationKey> = writes
        .iter()
        .filter_map(|w| w.counts.as_ref().map(|(key, _)| key.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Packs writes into transactions of at most 100 actions, each notification with the state
/// writes that change its count. A notification with more writes than fit one transaction is
/// changed by several (its count is added to, never overwritten); only the one holding its
/// newest like writes its names. `stored` holds the notifications as read.
pub fn pack(
    writes: Vec<StateWrite>,
    stored: &HashMap<NotificationKey, StoredLikes>,
) -> Vec<Transaction> {
    let mut by_notification: BTreeMap<Option<NotificationKey>, Vec<StateWrite>> = BTreeMap::new();
    for write in writes {
        let key = write.counts.as_ref().map(|(key, _)| key.clone());
        by_notification.entry(key).or_default().push(write);
    }
    let mut chunks: Vec<Transaction> = Vec::new();
    for (key, mut writes) in by_notification {
        let Some(key) = key else {
            for part in writes.chunks(MAX_TRANSACTION_ACTIONS) {
                chunks.push(Transaction {
                    writes: part.to_vec(),
                    notifications: BTreeMap::new(),
                });
            }
            continue;
        };
        let recent = recent_names(stored.get(&key), &writes);
        let renamed = stored.get(&key).map(|s| &s.recent) != Some(&recent);
        // Newest like first, so the first chunk holds it and writes the names.
        writes.sort_by_key(|w| std::cmp::Reverse((w.new.liked, w.new.version)));
        for (i, part) in writes.chunks(MAX_TRANSACTION_ACTIONS - 1).enumerate() {
            let change = NotificationChange {
                delta: part
                    .iter()
                    .filter_map(|w| w.counts.as_ref())
                    .map(|c| c.1)
                    .sum(),
                recent: (i == 0 && renamed).then(|| recent.clone()),
                newest_like_ms: part
                    .iter()
                    .filter(|w| w.new.liked && w.counts.is_some())
                    .map(|w| w.new.version.at_ms)
                    .max(),
            };
            chunks.push(Transaction {
                writes: part.to_vec(),
                notifications: BTreeMap::from([(key.clone(), change)]),
            });
        }
    }
    // First-fit decreasing, as few transactions as fit; never one notification twice in one.
    chunks.sort_by_key(|chunk| std::cmp::Reverse(chunk.actions()));
    let mut transactions: Vec<Transaction> = Vec::new();
    for chunk in chunks {
        let fits = |t: &Transaction| {
            t.actions() + chunk.actions() <= MAX_TRANSACTION_ACTIONS
                && !chunk
                    .notifications
                    .keys()
                    .any(|k| t.notifications.contains_key(k))
        };
        match transactions.iter_mut().find(|t| fits(t)) {
            Some(transaction) => {
                transaction.writes.extend(chunk.writes);
                transaction.notifications.extend(chunk.notifications);
            }
            None => transactions.push(chunk),
        }
    }
    transactions
}

/// The names a notification shows after `writes`: the new likers, most recent first, then the
/// names it had, without those who took their like back; at most [`RECENT_NAMES`].
fn recent_names(stored: Option<&StoredLikes>, writes: &[StateWrite]) -> Vec<String> {
    let mut new: Vec<&StateWrite> = writes
        .iter()
        .filter(|w| w.counts.as_ref().is_some_and(|c| c.1 > 0))
        .collect();
    new.sort_by_key(|w| std::cmp::Reverse(w.new.version));
    let gone: Vec<&str> = writes
        .iter()
        .filter(|w| !w.new.liked)
        .map(|w| w.key.user_id.as_str())
        .collect();
    let mut names: Vec<String> = new.iter().map(|w| w.key.user_id.clone()).collect();
    for name in stored.map(|s| s.recent.as_slice()).unwrap_or_default() {
        if !names.contains(name) && !gone.contains(&name.as_str()) {
            names.push(name.clone());
        }
    }
    names.truncate(RECENT_NAMES);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const WINDOW: i64 = 900_000;

    fn key(user: &str) -> LikerKey {
        LikerKey {
            image_id: "beach".into(),
            user_id: user.into(),
        }
    }

    fn fact(user: &str, liked: bool, at_ms: i64, record: usize) -> LikeFact {
        LikeFact {
            key: key(user),
            liked,
            version: EventVersion::at(at_ms, Uuid::from_u128(record as u128 + 1)),
            record,
        }
    }

    fn owners() -> HashMap<String, String> {
        HashMap::from([("beach".to_owned(), "alice".to_owned())])
    }

    #[test]
    fn a_like_counts_once_and_its_unlike_takes_it_out_of_the_window_that_counted_it() {
        // Prepare: bob liked in the first window; carol likes and bob takes his back later
        let bob_like = fact("bob", true, WINDOW + 10, 0);
        let stored = HashMap::from([(
            key("bob"),
            LikerState {
                liked: true,
                version: bob_like.version,
                counted_in: Some(WINDOW),
            },
        )]);
        let batch = vec![
            bob_like.clone(), // a redelivery
            fact("carol", true, 2 * WINDOW + 5, 1),
            fact("bob", false, 2 * WINDOW + 6, 2),
        ];

        // Act
        let writes = plan(&latest_per_key(batch), &owners(), &stored, WINDOW);

        // Assess: carol counts in her window, bob's unlike reaches back into his
        let counts: Vec<(&str, i64, i64)> = writes
            .iter()
            .filter_map(|w| {
                let (n, d) = w.counts.as_ref()?;
                Some((w.key.user_id.as_str(), n.window_start_ms, *d))
            })
            .collect();
        assert_eq!(counts, [("bob", WINDOW, -1), ("carol", 2 * WINDOW, 1)]);
    }

    #[test]
    fn a_burst_on_one_photo_packs_into_full_transactions_and_keeps_three_names() {
        // Prepare: 250 new likers of one photo in one window
        let batch: Vec<LikeFact> = (0..250)
            .map(|i| fact(&format!("u{i:03}"), true, WINDOW + i as i64, i))
            .collect();
        let writes = plan(&latest_per_key(batch), &owners(), &HashMap::new(), WINDOW);

        // Act
        let transactions = pack(writes, &HashMap::new());

        // Assess: 3 transactions of at most 100 actions; the counts add up to 250, and only
        // the transaction holding the newest like writes the names: the three latest
        assert_eq!(transactions.len(), 3);
        assert!(transactions.iter().all(|t| t.actions() <= 100));
        let changes: Vec<&NotificationChange> = transactions
            .iter()
            .flat_map(|t| t.notifications.values())
            .collect();
        assert_eq!(changes.iter().map(|c| c.delta).sum::<i64>(), 250);
        let named: Vec<&Vec<String>> = changes.iter().filter_map(|c| c.recent.as_ref()).collect();
        assert_eq!(
            named,
            [&vec!["u249".to_owned(), "u248".into(), "u247".into()]]
        );
    }
}
