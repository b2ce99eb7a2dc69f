//! For consumers that group a batch's records by key and write each key's latest state in a
//! few conditional transactions (like-counter, notifier): how each key ended, how its records
//! are settled, and finding a key DynamoDB refuses by halving the refused request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::{BatchContext, BatchReport, StreamRecord, set_aside};
use crate::quarantine::Quarantine;
use crate::table::{Applied, TableError, first_wave};

/// How the keys of a batch ended.
#[derive(Debug)]
pub struct KeyOutcomes<K> {
    /// Keys that could not be brought up to date: their records are redelivered.
    pub failed: Vec<K>,
    /// Keys whose stored state needed no change (duplicates, replays, stale events).
    pub already_applied: BTreeSet<K>,
    /// Keys DynamoDB refuses on their own, and what it said: their records are quarantined.
    ///
    /// HAZARD: a bug that makes DynamoDB refuse every request (a wrong expression) would
    /// quarantine every record. That is chosen over failing the batch: the quarantine keeps
    /// each record whole for 14 days and says why, while a shard that keeps failing gives its
    /// records up after `MaximumRetryAttempts` with only pointers, which expire with the
    /// stream's 24 hours. The `QuarantineWrites` alarm fires on the first one.
    pub refused: BTreeMap<K, TableError>,
    /// A refused permission: the invocation fails so that the `Errors` alarm fires.
    pub fatal: Option<String>,
}

impl<K> Default for KeyOutcomes<K> {
    fn default() -> Self {
        Self {
            failed: Vec::new(),
            already_applied: BTreeSet::new(),
            refused: BTreeMap::new(),
            fatal: None,
        }
    }
}

impl<K: Ord + Clone + Debug> KeyOutcomes<K> {
    /// Marks `keys` failed by `error` (fatal when it is a refused permission).
    pub fn fail(&mut self, keys: impl IntoIterator<Item = K>, error: &TableError) {
        self.failed.extend(keys);
        if matches!(error, TableError::Denied { .. }) {
            self.fatal.get_or_insert_with(|| error.to_string());
        }
    }

    /// Counts and settles the records of every key (`keys`: each key with its records'
    /// indexes in `records`): a failed key's records go to `unfinished`, a refused key's to
    /// the quarantine, the others are done or duplicates.
    pub async fn settle<Q: Quarantine>(
        &self,
        ctx: &BatchContext<'_, Q>,
        records: &[StreamRecord],
        keys: &[(&K, &[usize])],
        occurred_ms: &BTreeMap<usize, i64>,
        report: &mut BatchReport,
        unfinished: &mut BTreeSet<usize>,
    ) {
        let by_key: BTreeMap<&K, &[usize]> = keys.iter().copied().collect();
        for key in &self.failed {
            unfinished.extend(by_key.get(key).copied().unwrap_or_default());
        }
        for (key, error) in &self.refused {
            for &index in by_key.get(key).copied().unwrap_or_default() {
                if !set_aside(ctx, &records[index], error, report).await {
                    unfinished.insert(index);
                }
            }
        }
        for (key, indexes) in keys {
            if self.refused.contains_key(key) {
                continue;
            }
            for index in *indexes {
                if unfinished.contains(index) {
                    report.failed += 1;
                    continue;
                }
                if self.already_applied.contains(key) {
                    report.duplicates += 1;
                } else {
                    report.done += 1;
                }
                if let Some(&at) = occurred_ms.get(index) {
                    report.observe_end_to_end(at);
                }
            }
        }
        if let Some(fatal) = &self.fatal {
            report.fatal.get_or_insert_with(|| fatal.clone());
        }
    }
}

/// Runs `read` over `keys`. When DynamoDB refuses it for the data of some key (a key over its
/// size limit, a stored item the consumer cannot read), the keys are halved until each refused
/// one stands alone: it goes to `outcomes.refused`, every other key is read and `merge`d. Any
/// other error fails the whole read. Costs about 2·log2(n) more reads, only when it happens.
pub async fn read_halving<K: Ord + Clone + Debug, T>(
    keys: &[K],
    read: impl AsyncFn(&[K]) -> Result<T, TableError>,
    mut merge: impl FnMut(T),
    outcomes: &mut KeyOutcomes<K>,
) -> Result<(), TableError> {
    let mut work = vec![keys.to_vec()];
    while let Some(part) = work.pop() {
        match read(&part).await {
            Ok(read) => merge(read),
            Err(error) if error.is_about_data() => match <[K; 1]>::try_from(part) {
                Ok([key]) => {
                    tracing::warn!(?key, %error, "DynamoDB refuses this key on its own; its records are quarantined");
                    outcomes.refused.insert(key, error);
                }
                Err(mut part) => {
                    let second = part.split_off(part.len() / 2);
                    work.extend([part, second]);
                }
            },
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// How [`write_halving`] sees a transaction.
pub struct TransactionShape<T, K, S> {
    /// The keys whose states it writes.
    pub keys: fn(&T) -> Vec<K>,
    /// The items it shares with other transactions (counts, notifications): transactions
    /// sharing one run one after another, never at once.
    pub shared: fn(&T) -> Vec<S>,
}

/// Commits `transactions`, at once where they share no item, and answers the keys whose state
/// changed under them (to read and plan again). A transaction DynamoDB refuses for its data is
/// split by `halve` (into transactions of each half of its writes) until the refused write
/// stands alone, as in [`read_halving`]; any other failure fails its keys.
pub async fn write_halving<T, K: Ord + Clone + Debug, S: Ord>(
    transactions: Vec<T>,
    shape: TransactionShape<T, K, S>,
    halve: impl Fn(T) -> Vec<T>,
    apply: impl AsyncFn(&T) -> Result<Applied, TableError>,
    outcomes: &mut KeyOutcomes<K>,
) -> Vec<K> {
    let mut changed = Vec::new();
    let mut work = transactions;
    while !work.is_empty() {
        let (wave, rest) = first_wave(std::mem::take(&mut work), shape.shared);
        work = rest;
        let results = futures_util::future::join_all(wave.iter().map(|t| apply(t))).await;
        for (transaction, result) in wave.into_iter().zip(results) {
            let keys = (shape.keys)(&transaction);
            match result {
                Ok(Applied::Committed) => {}
                Ok(Applied::StateChanged) => changed.extend(keys),
                Err(error) if error.is_about_data() => match <[K; 1]>::try_from(keys) {
                    Ok([key]) => {
                        tracing::warn!(?key, %error, "DynamoDB refuses this write on its own; its records are quarantined");
                        outcomes.refused.insert(key, error);
                    }
                    Err(_) => work.extend(halve(transaction)),
                },
                Err(error) => {
                    tracing::warn!(%error, keys = keys.len(), "transaction failed; its records are redelivered");
                    outcomes.fail(keys, &error);
                }
            }
        }
    }
    changed
}
