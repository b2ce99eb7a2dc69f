//! The likes table in memory, for tests of whole batches without DynamoDB. It keeps what the
//! counter's exactness rests on: a transaction applies all or nothing, a state write only over
//! the state it was planned from, counts are added to, and a transaction DynamoDB would refuse
//! (over 100 actions, two actions on one item) is refused, and an erased image's count takes
//! no more deltas.
//!
//! A test plays a concurrent writer (a zombie invocation, another consumer of the same shard)
//! with [`MemoryLikes::race_next_read`]: its transaction commits right after the counter's
//! next read, so the counter's own write finds the state changed under it.

use snapglow::batch::Deadline;
use snapglow::table::TableError;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::{Applied, LikeStore, Read, Spend};
use crate::ledger::{LikeKey, LikeState, MAX_TRANSACTION_ACTIONS, Transaction};

const TABLE: &str = "memory-likes";

#[derive(Default)]
pub struct MemoryLikes {
    inner: Mutex<Inner>,
    spend: Spend,
}

#[derive(Default)]
struct Inner {
    states: HashMap<LikeKey, LikeState>,
    counts: BTreeMap<String, i64>,
    /// Images whose count is a tombstone.
    erased: BTreeSet<String>,
    /// Transactions of a concurrent writer, each committed right after one read.
    racers: VecDeque<Transaction>,
    /// Keys whose writes DynamoDB refuses (a value over a limit): a transaction holding one
    /// fails whole, as DynamoDB's does.
    refused: BTreeSet<LikeKey>,
    /// Keys whose stored item cannot be read: a read naming one fails whole.
    corrupt: BTreeSet<LikeKey>,
}

impl Inner {
    fn commit(&mut self, transaction: &Transaction) -> Result<Applied, TableError> {
        if transaction.actions() > MAX_TRANSACTION_ACTIONS {
            return Err(TableError::rejected(
                TABLE,
                format!(
                    "ValidationException: {} actions, over the {MAX_TRANSACTION_ACTIONS} a transaction takes",
                    transaction.actions()
                ),
            ));
        }
        if let Some(write) = transaction
            .writes
            .iter()
            .find(|w| self.refused.contains(&w.key))
        {
            return Err(TableError::rejected(
                TABLE,
                format!(
                    "ValidationException: a value of item LIKE#{} is over a limit",
                    write.key.user_id
                ),
            ));
        }
        let keys: BTreeSet<&LikeKey> = transaction.writes.iter().map(|w| &w.key).collect();
        if keys.len() != transaction.writes.len() {
            return Err(TableError::rejected(
                TABLE,
                "ValidationException: transaction request cannot include multiple operations on one item",
            ));
        }
        let unchanged = transaction
            .writes
            .iter()
            .all(|w| self.states.get(&w.key).map(|s| s.version) == w.expected);
        // The count's condition: no tombstone.
        let erased = (transaction.count_deltas.keys()).any(|image| self.erased.contains(image));
        if !unchanged || erased {
            return Ok(Applied::StateChanged);
        }
        for write in &transaction.writes {
            self.states.insert(write.key.clone(), write.new);
        }
        for (image_id, delta) in &transaction.count_deltas {
            *self.counts.entry(image_id.clone()).or_default() += delta;
        }
        Ok(Applied::Committed)
    }
}

impl MemoryLikes {
    /// Commits `transaction` as a concurrent writer right after the next read of the states.
    pub fn race_next_read(&self, transaction: Transaction) {
        self.lock().racers.push_back(transaction);
    }

    /// Makes DynamoDB refuse every transaction that writes `key`.
    pub fn refuse_writes_of(&self, key: LikeKey) {
        self.lock().refused.insert(key);
    }

    /// Makes the stored item of `key` unreadable: every read naming it fails.
    pub fn corrupt(&self, key: LikeKey) {
        self.lock().corrupt.insert(key);
    }

    /// The like count of an image (0 when nobody ever liked it).
    pub fn count(&self, image_id: &str) -> i64 {
        self.lock().counts.get(image_id).copied().unwrap_or(0)
    }

    pub fn is_erased(&self, image_id: &str) -> bool {
        self.lock().erased.contains(image_id)
    }

    pub fn state(&self, key: &LikeKey) -> Option<LikeState> {
        self.lock().states.get(key).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("likes table lock")
    }
}

impl LikeStore for MemoryLikes {
    async fn read_states(
        &self,
        keys: &[LikeKey],
        _deadline: &Deadline,
    ) -> Result<Read, TableError> {
        let mut inner = self.lock();
        self.spend.requests.fetch_add(
            keys.len().div_ceil(snapglow::table::MAX_BATCH_GET_KEYS) as u64,
            Ordering::Relaxed,
        );
        if let Some(key) = keys.iter().find(|k| inner.corrupt.contains(k)) {
            return Err(TableError::corrupt_item(
                TABLE,
                format!("no liked flag in LIKE#{}", key.user_id),
            ));
        }
        let read = Read {
            states: keys
                .iter()
                .filter_map(|k| inner.states.get(k).map(|s| (k.clone(), *s)))
                .collect(),
            erased: keys
                .iter()
                .filter(|k| inner.erased.contains(&k.image_id))
                .map(|k| k.image_id.clone())
                .collect(),
        };
        if let Some(racer) = inner.racers.pop_front() {
            let applied = inner.commit(&racer);
            assert!(
                matches!(applied, Ok(Applied::Committed)),
                "the racing writer's own transaction must commit, or the test races nothing: {applied:?}"
            );
        }
        Ok(read)
    }

    async fn erase_image(&self, image_id: &str, _deadline: &Deadline) -> Result<usize, TableError> {
        let mut inner = self.lock();
        self.spend.requests.fetch_add(2, Ordering::Relaxed);
        inner.erased.insert(image_id.to_owned());
        inner.counts.remove(image_id);
        let before = inner.states.len();
        inner.states.retain(|key, _| key.image_id != image_id);
        Ok(before - inner.states.len())
    }

    async fn apply(
        &self,
        transaction: &Transaction,
        _deadline: &Deadline,
    ) -> Result<Applied, TableError> {
        self.spend.requests.fetch_add(1, Ordering::Relaxed);
        self.spend
            .write_units
            .fetch_add(2 * transaction.actions() as u64, Ordering::Relaxed);
        self.lock().commit(transaction)
    }

    fn spend(&self) -> &Spend {
        &self.spend
    }
}
