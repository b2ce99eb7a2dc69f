//! One Kinesis batch, end to end: decode and screen every record, fold the like facts, read
//! the stored states once, write the changes in as few transactions as allowed, and answer
//! with the first record that is not finished.
//!
//! DynamoDB requests per batch: one BatchGetItem per 100 distinct (image, user) pairs, plus
//! one TransactWriteItems per 100 actions. A replay or a batch of duplicates costs the read
//! only. Records after an unfinished one may be applied already: their redelivery is a no-op.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::{
    BatchContext, BatchReport, Deadline, Screened, StreamRecord, first_failure_response, screen,
};
use snapglow::contracts::{Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ledger::{Latest, LikeFact, LikeKey, latest_per_key, pack, plan};
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
    pub async fn handle_batch(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> KinesisEventResponse {
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
        for (key, state) in &latest {
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
        first_failure_response(first)
    }

    /// Brings the stored state up to `latest`.
    async fn apply(&self, latest: &BTreeMap<LikeKey, Latest>, deadline: &Deadline) -> Settled {
        let mut pending: Vec<LikeKey> = latest.keys().cloned().collect();
        let mut failed = Vec::new();
        let mut already_applied = BTreeSet::new();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let stored = match self.table.read_states(&pending, deadline).await {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(function = %self.function, %error, keys = pending.len(), "could not read like states; the batch resumes at its first affected record");
                    failed.append(&mut pending);
                    break;
                }
            };
            let wanted: BTreeMap<LikeKey, Latest> = pending
                .iter()
                .map(|k| (k.clone(), latest[k].clone()))
                .collect();
            let writes = plan(&wanted, &stored);
            if round == 0 {
                // Nothing to write: the stored state is already this event's or a newer one's.
                let written: BTreeSet<&LikeKey> = writes.iter().map(|w| &w.key).collect();
                already_applied.extend(pending.iter().filter(|k| !written.contains(k)).cloned());
            }
            let transactions = pack(writes);
            let results = futures_util::future::join_all(
                transactions.iter().map(|t| self.table.apply(t, deadline)),
            )
            .await;
            pending = Vec::new();
            for (transaction, result) in transactions.iter().zip(results) {
                let keys = transaction.writes.iter().map(|w| w.key.clone());
                match result {
                    Ok(Applied::Committed) => {}
                    Ok(Applied::StateChanged) => pending.extend(keys),
                    Err(error) => {
                        tracing::warn!(function = %self.function, %error, actions = transaction.actions(), "like transaction failed; its records are redelivered");
                        failed.extend(keys);
                    }
                }
            }
        }
        if !pending.is_empty() {
            tracing::warn!(function = %self.function, keys = pending.len(), "like states kept changing during {MAX_ROUNDS} rounds (a concurrent writer?); redelivering");
        }
        failed.extend(pending);
        Settled {
            failed,
            already_applied,
        }
    }
}

/// What [`LikeCounter::apply`] achieved.
struct Settled {
    /// Keys that could not be brought up to date: their records are redelivered.
    failed: Vec<LikeKey>,
    /// Keys whose stored state needed no change (duplicates, replays, stale events).
    already_applied: BTreeSet<LikeKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{LikeState, StateWrite, Transaction};
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
        let response = counter
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
}
