//! The pure core of like counting: from a batch of like facts and the stored state of each
//! (image, user), the writes that make the stored state equal the latest fact, and how they
//! are packed into transactions. No I/O here.
//!
//! The invariant that makes counts exact: an image's count changes in the same transaction as
//! the (image, user) state that justifies the change, and a state write is conditional on the
//! state it was planned from. So count(image) always equals the number of users whose latest
//! state is "liked", whatever is redelivered, duplicated, reordered or replayed.

use snapglow::dedup::EventVersion;
use std::collections::{BTreeMap, HashMap};

/// DynamoDB allows at most 100 actions in one TransactWriteItems.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LikeKey {
    pub image_id: String,
    pub user_id: String,
}

/// One ImageLiked (`liked`) or ImageLikeUndone (`!liked`) event, with its batch position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeFact {
    pub key: LikeKey,
    pub liked: bool,
    pub version: EventVersion,
    /// Index of the record in the batch.
    pub record: usize,
}

/// The stored state of one (image, user): the latest fact applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikeState {
    pub liked: bool,
    pub version: EventVersion,
}

/// The latest fact per key in a batch, with every record it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub fact: LikeFact,
    /// All batch records of this key: they are finished when this key is.
    pub records: Vec<usize>,
}

/// Folds a batch to the latest fact per key: a like followed by an unlike in one batch is
/// one write, and duplicates inside the batch cost nothing.
pub fn latest_per_key(facts: Vec<LikeFact>) -> BTreeMap<LikeKey, Latest> {
    let mut latest: BTreeMap<LikeKey, Latest> = BTreeMap::new();
    for fact in facts {
        match latest.get_mut(&fact.key) {
            Some(entry) => {
                entry.records.push(fact.record);
                if fact.version > entry.fact.version {
                    entry.fact = fact;
                }
            }
            None => {
                latest.insert(
                    fact.key.clone(),
                    Latest {
                        records: vec![fact.record],
                        fact,
                    },
                );
            }
        }
    }
    latest
}

/// One conditional state write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub key: LikeKey,
    /// The state the write was planned from: the write only applies if it is still stored
    /// (`None`: only if nothing is stored yet).
    pub expected: Option<EventVersion>,
    pub new: LikeState,
    /// +1, 0 or -1 to the image's count.
    pub delta: i64,
}

/// The writes that bring the stored state up to the batch's latest facts. Keys whose stored
/// state is as new or newer need no write at all: duplicates, stale redeliveries and replays.
pub fn plan(
    latest: &BTreeMap<LikeKey, Latest>,
    stored: &HashMap<LikeKey, LikeState>,
) -> Vec<StateWrite> {
    latest
        .iter()
        .filter_map(|(key, entry)| {
            let current = stored.get(key);
            if current.is_some_and(|state| state.version >= entry.fact.version) {
                return None;
            }
            let was_liked = current.is_some_and(|state| state.liked);
            Some(StateWrite {
                key: key.clone(),
                expected: current.map(|state| state.version),
                new: LikeState {
                    liked: entry.fact.liked,
                    version: entry.fact.version,
                },
                delta: i64::from(entry.fact.liked) - i64::from(was_liked),
            })
        })
        .collect()
}

/// One TransactWriteItems: state writes plus one count update per image with a net change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    pub writes: Vec<StateWrite>,
    pub count_deltas: BTreeMap<String, i64>,
}

impl Transaction {
    pub fn actions(&self) -> usize {
        self.writes.len() + self.count_deltas.len()
    }
}

/// Packs writes into as few transactions as the rules allow: at most 100 actions each, no two
/// actions on one item, and every count update together with the state writes it sums.
pub fn pack(writes: Vec<StateWrite>) -> Vec<Transaction> {
    let mut by_image: BTreeMap<String, Vec<StateWrite>> = BTreeMap::new();
    for write in writes {
        by_image
            .entry(write.key.image_id.clone())
            .or_default()
            .push(write);
    }
    // Chunks of one image that fit one transaction with their count update.
    let mut chunks: Vec<Transaction> = Vec::new();
    for (image_id, writes) in by_image {
        for part in writes.chunks(MAX_TRANSACTION_ACTIONS - 1) {
            let delta: i64 = part.iter().map(|w| w.delta).sum();
            let mut chunk = Transaction {
                writes: part.to_vec(),
                count_deltas: BTreeMap::new(),
            };
            if delta != 0 {
                chunk.count_deltas.insert(image_id.clone(), delta);
            }
            chunks.push(chunk);
        }
    }
    // First-fit decreasing: big chunks first, each into the first transaction it fits.
    chunks.sort_by_key(|chunk| std::cmp::Reverse(chunk.actions()));
    let mut transactions: Vec<Transaction> = Vec::new();
    for chunk in chunks {
        let image_already_in = |t: &Transaction| {
            chunk
                .count_deltas
                .keys()
                .any(|image| t.count_deltas.contains_key(image))
        };
        match transactions.iter_mut().find(|t| {
            t.actions() + chunk.actions() <= MAX_TRANSACTION_ACTIONS && !image_already_in(t)
        }) {
            Some(transaction) => {
                transaction.writes.extend(chunk.writes);
                transaction.count_deltas.extend(chunk.count_deltas);
            }
            None => transactions.push(chunk),
        }
    }
    transactions
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn fact(image: &str, user: &str, liked: bool, at_ms: i64, id: u128, record: usize) -> LikeFact {
        LikeFact {
            key: key(image, user),
            liked,
            version: EventVersion {
                revision: None,
                at_ms,
                event_id: Uuid::from_u128(id),
            },
            record,
        }
    }

    fn key(image: &str, user: &str) -> LikeKey {
        LikeKey {
            image_id: image.into(),
            user_id: user.into(),
        }
    }

    #[test]
    fn the_latest_fact_wins_whatever_the_delivery_order() {
        // GIVEN an unlike that happened after the like, delivered first, and a duplicate
        let facts = vec![
            fact("i", "u", false, 20, 2, 0),
            fact("i", "u", true, 10, 1, 1),
            fact("i", "u", true, 10, 1, 2),
        ];
        // WHEN folded
        let latest = latest_per_key(facts);
        // THEN the unlike stands for all three records
        let entry = &latest[&key("i", "u")];
        assert!(!entry.fact.liked);
        assert_eq!(entry.records, vec![0, 1, 2]);
    }

    #[test]
    fn only_newer_facts_are_written_and_the_count_moves_with_the_liked_flag() {
        let latest = latest_per_key(vec![
            fact("i", "new-liker", true, 10, 1, 0),
            fact("i", "stale", true, 10, 2, 1),
            fact("i", "unliker", false, 30, 3, 2),
            fact("i", "relike", true, 40, 4, 3),
        ]);
        let stored = HashMap::from([
            (
                key("i", "stale"),
                LikeState {
                    liked: true,
                    version: EventVersion {
                        revision: None,
                        at_ms: 50,
                        event_id: Uuid::from_u128(9),
                    },
                },
            ),
            (
                key("i", "unliker"),
                LikeState {
                    liked: true,
                    version: EventVersion {
                        revision: None,
                        at_ms: 20,
                        event_id: Uuid::from_u128(8),
                    },
                },
            ),
            (
                key("i", "relike"),
                LikeState {
                    liked: true,
                    version: EventVersion {
                        revision: None,
                        at_ms: 20,
                        event_id: Uuid::from_u128(7),
                    },
                },
            ),
        ]);
        let writes = plan(&latest, &stored);
        let summary: Vec<(&str, bool, Option<i64>, i64)> = writes
            .iter()
            .map(|w| {
                (
                    w.key.user_id.as_str(),
                    w.new.liked,
                    w.expected.map(|v| v.at_ms),
                    w.delta,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("new-liker", true, None, 1),
                ("relike", true, Some(20), 0),
                ("unliker", false, Some(20), -1)
            ]
        );
    }

    #[test]
    fn an_unlike_without_a_like_records_state_but_never_goes_negative() {
        let latest = latest_per_key(vec![fact("i", "u", false, 10, 1, 0)]);
        let writes = plan(&latest, &HashMap::new());
        assert_eq!(writes[0].delta, 0);
        assert!(!writes[0].new.liked);
    }

    #[test]
    fn a_replay_plans_no_write() {
        let latest = latest_per_key(vec![fact("i", "u", true, 10, 1, 0)]);
        let stored = HashMap::from([(
            key("i", "u"),
            LikeState {
                liked: true,
                version: EventVersion {
                    revision: None,
                    at_ms: 10,
                    event_id: Uuid::from_u128(1),
                },
            },
        )]);
        assert!(plan(&latest, &stored).is_empty());
    }

    #[test]
    fn transactions_hold_at_most_100_actions_and_keep_counts_with_their_states() {
        // GIVEN 150 new likers of one hot image and 30 images with one new liker each
        let mut facts: Vec<LikeFact> = (0..150)
            .map(|u| fact("hot", &format!("u{u}"), true, 1, u as u128, u))
            .collect();
        facts.extend(
            (0..30).map(|i| fact(&format!("img{i}"), "u", true, 1, 1000 + i as u128, 150 + i)),
        );
        let writes = plan(&latest_per_key(facts), &HashMap::new());
        // WHEN packed
        let transactions = pack(writes);
        // THEN every transaction is within the limit, and the count deltas add up per image
        assert!(
            transactions
                .iter()
                .all(|t| t.actions() <= MAX_TRANSACTION_ACTIONS)
        );
        let hot_total: i64 = transactions
            .iter()
            .filter_map(|t| t.count_deltas.get("hot"))
            .sum();
        assert_eq!(hot_total, 150);
        for t in &transactions {
            for (image, delta) in &t.count_deltas {
                let states: i64 = t
                    .writes
                    .iter()
                    .filter(|w| &w.key.image_id == image)
                    .map(|w| w.delta)
                    .sum();
                assert_eq!(
                    *delta, states,
                    "count of {image} must move with its own state writes"
                );
            }
        }
        // 150 + 30 states + 32 count updates = 212 actions: 3 transactions is the minimum.
        assert_eq!(transactions.len(), 3);
    }
}
