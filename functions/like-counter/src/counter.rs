//! One Kinesis batch, end to end: decode and screen every record, fold the like facts, read
//! the stored states once, write the changes in as few transactions as allowed, and answer
//! with the first record that is not finished.
//!
//! DynamoDB requests per batch: one BatchGetItem per 100 distinct (image, user) pairs, plus
//! one TransactWriteItems per 100 actions. A replay or a batch of duplicates costs the read
//! only. Records after an unfinished one may be applied already: their redelivery is a no-op.
//! A key DynamoDB refuses on its own data is found by halving the refused request: about
//! 2·log2(n) more requests for a batch of n keys, paid only when it happens.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::{
    BatchContext, BatchReport, Deadline, Screened, StreamRecord, first_failure_response, screen,
    set_aside,
};
use snapglow::contracts::{Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ledger::{
    Latest, LikeFact, LikeKey, LikeState, Transaction, latest_per_key, pack, plan,
};
use crate::table::{Applied, LikeStore, LikesTable};

/// Read-plan-write rounds before giving up on keys whose state keeps changing under us.
const MAX_ROUNDS: usize = 5;

/// The function: DynamoDB's [`LikesTable`] unless a test hands it another [`LikeStore`].
pub struct LikeCounter<Q, T = LikesTable> {
    pub function: String,
    pub table: T,
    pub quarantine: Q,
}

/// A like fact from a decoded event, or `None` for other types.
pub fn like_fact(envelope: &Envelope, record: usize) -> Option<LikeFact> {
    let (image_id, user_id, liked) = match &envelope.event {
        SocialEvent::ImageLiked(d) => (&d.image_id, &d.user_id, true),
        SocialEvent::ImageLikeUndone(d) => (&d.image_id, &d.user_id, false),
        _ => return None,
    };
    Some(LikeFact {
        key: LikeKey {
            image_id: image_id.clone(),
            user_id: user_id.clone(),
        },
        liked,
        version: EventVersion::of(envelope),
        record,
    })
}

impl<Q: Quarantine, T: LikeStore> LikeCounter<Q, T> {
    /// One batch: the response for the event source mapping, and the batch's counts. A
    /// [`BatchReport::fatal`] error means the function cannot work (a refused permission): the
    /// caller fails the invocation so that the `Errors` alarm fires.
    pub async fn handle_batch(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> (KinesisEventResponse, BatchReport) {
        let started = Instant::now();
        let requests_before = self.table.spend().requests.load(Ordering::Relaxed);
        let units_before = self.table.spend().write_units.load(Ordering::Relaxed);
        let records = StreamRecord::from_event(event);
        // The whole batch is one unit of work here, so the per-record budget is not used.
        let ctx = BatchContext::new(&self.function, deadline, Duration::ZERO, &self.quarantine);
        let mut report = BatchReport::default();
        let mut unfinished = BTreeSet::new();
        let mut facts = Vec::new();
        for (index, record) in records.iter().enumerate() {
            match screen(&ctx, record, &mut report, |e| {
                matches!(
                    e,
                    SocialEvent::ImageLiked(_) | SocialEvent::ImageLikeUndone(_)
                )
            })
            .await
            {
                Screened::Event(envelope) => facts.extend(like_fact(&envelope, index)),
                Screened::Acknowledged => {}
                Screened::Failed => {
                    unfinished.insert(index);
                }
            }
        }
        let occurred: BTreeMap<usize, i64> =
            facts.iter().map(|f| (f.record, f.version.at_ms)).collect();
        let latest = latest_per_key(facts);
        let settled = self.apply(&latest, &deadline).await;
        for key in &settled.failed {
            unfinished.extend(latest[key].records.iter().copied());
        }
        // A key DynamoDB refuses on its own (after the rest of the batch was written without
        // it) takes its records to the quarantine, with what DynamoDB said.
        for (key, error) in &settled.refused {
            for &index in &latest[key].records {
                if !set_aside(&ctx, &records[index], error, &mut report).await {
                    unfinished.insert(index);
                }
            }
        }
        for (key, state) in &latest {
            if settled.refused.contains_key(key) {
                continue;
            }
            for record in &state.records {
                if unfinished.contains(record) {
                    report.failed += 1;
                    continue;
                }
                if settled.already_applied.contains(key) {
                    report.duplicates += 1;
                } else {
                    report.done += 1;
                }
                report.observe_end_to_end(occurred[record]);
            }
        }
        report.fatal = settled.fatal;
        let first = unfinished.first().map(|&index| &records[index]);
        tracing::info!(
            function = %self.function,
            cold_start = snapglow::telemetry::cold_start(),
            records = records.len(),
            done = report.done,
            duplicates = report.duplicates,
            skipped = report.skipped,
            quarantined = report.quarantined,
            failed = report.failed,
            distinct_likes = latest.len(),
            dynamodb_requests = self.table.spend().requests.load(Ordering::Relaxed) - requests_before,
            write_units = self.table.spend().write_units.load(Ordering::Relaxed) - units_before,
            ms = started.elapsed().as_millis() as u64,
            resume_at = first.map(|r| r.sequence_number.as_str()).unwrap_or(""),
            "like batch settled"
        );
        snapglow::telemetry::emit_batch_metrics(&self.function, &report);
        (first_failure_response(first), report)
    }

    /// Brings the stored state up to `latest`.
    async fn apply(&self, latest: &BTreeMap<LikeKey, Latest>, deadline: &Deadline) -> Settled {
        let mut settled = Settled::default();
        let mut pending: Vec<LikeKey> = latest.keys().cloned().collect();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let stored = match self.read_isolating(&pending, deadline, &mut settled).await {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(function = %self.function, %error, keys = pending.len(), "could not read like states; the batch resumes at its first affected record");
                    settled.fail(pending, &error);
                    return settled;
                }
            };
            pending.retain(|key| !settled.refused.contains_key(key));
            let wanted: BTreeMap<LikeKey, Latest> = pending
                .iter()
                .map(|k| (k.clone(), latest[k].clone()))
                .collect();
            let writes = plan(&wanted, &stored);
            if round == 0 {
                // Nothing to write: the stored state is already this event's or a newer one's.
                let written: BTreeSet<&LikeKey> = writes.iter().map(|w| &w.key).collect();
                settled
                    .already_applied
                    .extend(pending.iter().filter(|k| !written.contains(k)).cloned());
            }
            pending = self
                .write_isolating(pack(writes), deadline, &mut settled)
                .await;
        }
        if !pending.is_empty() {
            tracing::warn!(function = %self.function, keys = pending.len(), "like states kept changing during {MAX_ROUNDS} rounds (a concurrent writer?); redelivering");
            settled.failed.extend(pending);
        }
        settled
    }

    /// Reads the states of `keys`. When DynamoDB refuses the read for the data of some key
    /// (a key over its size limit, a stored item the counter cannot read), the keys are halved
    /// until the refused ones stand alone: they go to `settled.refused`, the rest are read.
    /// Any other error fails the whole read.
    async fn read_isolating(
        &self,
        keys: &[LikeKey],
        deadline: &Deadline,
        settled: &mut Settled,
    ) -> Result<HashMap<LikeKey, LikeState>, TableError> {
        let mut states = HashMap::new();
        let mut work = vec![keys.to_vec()];
        while let Some(part) = work.pop() {
            match self.table.read_states(&part, deadline).await {
                Ok(read) => states.extend(read),
                Err(error) if error.is_about_data() => match <[LikeKey; 1]>::try_from(part) {
                    Ok([key]) => {
                        tracing::warn!(function = %self.function, image_id = %key.image_id, user_id = %key.user_id, %error, "DynamoDB refuses this like's key on its own; its records are quarantined");
                        settled.refused.insert(key, error);
                    }
                    Err(mut part) => {
                        let second = part.split_off(part.len() / 2);
                        work.extend([part, second]);
                    }
                },
                Err(error) => return Err(error),
            }
        }
        Ok(states)
    }

    /// Commits `transactions` (concurrently; they share no item) and answers the keys whose
    /// state changed under them, to plan again. A transaction DynamoDB refuses for its data
    /// is halved until the refused write stands alone, as in [`Self::read_isolating`].
    async fn write_isolating(
        &self,
        transactions: Vec<Transaction>,
        deadline: &Deadline,
        settled: &mut Settled,
    ) -> Vec<LikeKey> {
        let mut changed = Vec::new();
        let mut work = transactions;
        while !work.is_empty() {
            let (wave, rest) =
                snapglow::table::first_wave(std::mem::take(&mut work), |t: &Transaction| {
                    t.count_deltas.keys().cloned().collect()
                });
            work = rest;
            let results =
                futures_util::future::join_all(wave.iter().map(|t| self.table.apply(t, deadline)))
                    .await;
            let mut refused = Vec::new();
            for (transaction, result) in wave.into_iter().zip(results) {
                let keys = transaction.writes.iter().map(|w| w.key.clone());
                match result {
                    Ok(Applied::Committed) => {}
                    Ok(Applied::StateChanged) => changed.extend(keys),
                    Err(error) if error.is_about_data() => refused.push((transaction, error)),
                    Err(error) => {
                        tracing::warn!(function = %self.function, %error, actions = transaction.actions(), "like transaction failed; its records are redelivered");
                        settled.fail(keys, &error);
                    }
                }
            }
            for (transaction, error) in refused {
                let mut writes = transaction.writes;
                if writes.len() == 1 {
                    let key = writes.remove(0).key;
                    tracing::warn!(function = %self.function, image_id = %key.image_id, user_id = %key.user_id, %error, "DynamoDB refuses this like's write on its own; its records are quarantined");
                    settled.refused.insert(key, error);
                } else {
                    let second = writes.split_off(writes.len() / 2);
                    work.extend(pack(writes));
                    work.extend(pack(second));
                }
            }
        }
        changed
    }
}

/// What [`LikeCounter::apply`] achieved.
#[derive(Default)]
struct Settled {
    /// Keys that could not be brought up to date: their records are redelivered.
    failed: Vec<LikeKey>,
    /// Keys whose stored state needed no change (duplicates, replays, stale events).
    already_applied: BTreeSet<LikeKey>,
    /// Keys DynamoDB refuses on their own, and what it said: their records are quarantined.
    ///
    /// HAZARD: a bug that makes DynamoDB refuse every request (a wrong expression) would
    /// quarantine every record. That is chosen over failing the batch: the quarantine keeps
    /// each record whole for 14 days and says why, while a shard that keeps failing gives its
    /// records up after `MaximumRetryAttempts` with only pointers, which expire with the
    /// stream's 24 hours. The `QuarantineWrites` alarm fires on the first one.
    refused: BTreeMap<LikeKey, TableError>,
    /// A refused permission: the invocation fails so that the `Errors` alarm fires.
    fatal: Option<String>,
}

impl Settled {
    fn fail(&mut self, keys: impl IntoIterator<Item = LikeKey>, error: &TableError) {
        self.failed.extend(keys);
        if matches!(error, TableError::Denied { .. }) {
            self.fatal.get_or_insert_with(|| error.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::StateWrite;
    use crate::table::memory::MemoryLikes;
    use serde_json::json;
    use snapglow::contracts::Timestamp;
    use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
    use uuid::Uuid;

    const T0: i64 = 1_795_000_000_000;

    fn liked(user: &str, id: u128, at_ms: i64) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(id),
            occurred_at: Timestamp::from_millis(at_ms),
            correlation_id: format!("req-{id}"),
            producer: "likes-api".into(),
            event: SocialEvent::like("sunset", user, true, None),
        }
    }

    fn key(user: &str) -> LikeKey {
        LikeKey {
            image_id: "sunset".into(),
            user_id: user.into(),
        }
    }

    /// The state a like leaves, and the first write of it.
    fn first_like(like: &Envelope, user: &str) -> (LikeState, StateWrite) {
        let state = LikeState {
            liked: true,
            version: EventVersion::of(like),
        };
        let write = StateWrite {
            key: key(user),
            expected: None,
            new: state,
            delta: 1,
        };
        (state, write)
    }

    #[tokio::test]
    async fn a_writer_racing_the_batch_makes_it_plan_again_and_every_like_counts_once() {
        // Prepare: three likes of one photo, bob's sent twice by a retrying producer
        let (bob, carol, dan) = (
            liked("bob", 1, T0),
            liked("carol", 2, T0 + 1),
            liked("dan", 3, T0 + 2),
        );
        let batch = [bob.clone(), carol.clone(), bob.clone(), dan.clone()];
        let (bob_state, bob_write) = first_like(&bob, "bob");
        let (carol_state, carol_write) = first_like(&carol, "carol");
        let (dan_state, _) = first_like(&dan, "dan");
        // ... and a zombie invocation of the same batch that commits bob's and carol's likes
        // between the counter's read and its write
        let table = MemoryLikes::default();
        table.race_next_read(Transaction {
            writes: vec![bob_write, carol_write],
            count_deltas: BTreeMap::from([("sunset".to_owned(), 2)]),
        });
        let counter = LikeCounter {
            function: "like-counter".into(),
            table,
            quarantine: MemoryQuarantine::default(),
        };

        // Act
        let (response, _) = counter
            .handle_batch(
                kinesis_event_of(&batch),
                Deadline::after(Duration::from_secs(30)),
            )
            .await;

        // Assess: every record is finished
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        // ... the count is exact: the racer's two likes are not counted again, dan's is counted
        assert_eq!(counter.table.count("sunset"), 3);
        assert_eq!(counter.table.state(&key("bob")), Some(bob_state));
        assert_eq!(counter.table.state(&key("carol")), Some(carol_state));
        assert_eq!(counter.table.state(&key("dan")), Some(dan_state));
        // ... because the counter read again after its transaction was canceled: read, canceled
        // transaction, read, transaction
        assert_eq!(counter.table.spend().requests.load(Ordering::Relaxed), 4);
        assert!(counter.quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_key_dynamodb_refuses_and_an_unreadable_item_are_quarantined_alone_and_the_other_98_count()
     {
        // Prepare: 100 likes of one photo; DynamoDB refuses writes of one liker's state, and
        // another liker's stored item is unreadable
        let batch: Vec<Envelope> = (0..100u128)
            .map(|i| liked(&format!("user-{i}"), i + 1, T0 + i as i64))
            .collect();
        let table = MemoryLikes::default();
        table.refuse_writes_of(key("user-37"));
        table.corrupt(key("user-81"));
        let counter = LikeCounter {
            function: "like-counter".into(),
            table,
            quarantine: MemoryQuarantine::default(),
        };

        // Act
        let (response, report) = counter
            .handle_batch(
                kinesis_event_of(&batch),
                Deadline::after(Duration::from_secs(30)),
            )
            .await;

        // Assess: the batch is finished, nothing redelivered
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.quarantined, report.failed), (98, 2, 0));
        // ... the 98 others count, and the two are in the quarantine with DynamoDB's reason
        assert_eq!(counter.table.count("sunset"), 98);
        let mut reasons: Vec<(String, String)> = counter
            .quarantine
            .entries()
            .iter()
            .map(|e| {
                let user = serde_json::from_slice::<serde_json::Value>(&e.raw_bytes()).unwrap()
                    ["data"]["user_id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (user, e.reason.clone())
            })
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                ("user-37".to_owned(), "rejected_by_dynamodb".to_owned()),
                ("user-81".to_owned(), "corrupt_item".to_owned())
            ]
        );
        // ... at the cost of halving the refused requests: far fewer than one per like
        let requests = counter.table.spend().requests.load(Ordering::Relaxed);
        assert!(requests <= 2 + 4 * 7, "{requests} requests");
    }
}
