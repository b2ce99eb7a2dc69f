//! One Kinesis batch, end to end: decode and screen every record, erase the images deleted in
//! it, fold the like facts, read the stored states once, write the changes in as few
//! transactions as allowed, and answer with the first record that is not finished.
//!
//! DynamoDB requests per batch: one BatchGetItem per 100 keys (the distinct (image, user)
//! pairs and one count per image), plus one TransactWriteItems per 100 actions. A deletion:
//! one PutItem, and a Query and BatchWriteItems (25 states each) per page of its likers. A replay or a batch of duplicates costs the read
//! only. Records after an unfinished one may be applied already: their redelivery is a no-op.
//! A key DynamoDB refuses on its own data is found by halving the refused request: about
//! 2·log2(n) more requests for a batch of n keys, paid only when it happens.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::grouped::{KeyOutcomes, TransactionShape, read_halving, write_halving};
use snapglow::batch::{
    BatchContext, BatchFunction, BatchReport, Deadline, Outcome, Screened, StreamRecord,
    first_failure_response, screen, settle_record,
};
use snapglow::contracts::{Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::ledger::{Latest, LikeFact, LikeKey, Transaction, latest_per_key, pack, plan};
use crate::table::{LikeStore, LikesTable, Read};

/// Read-plan-write rounds before giving up on keys whose state keeps changing under us.
const MAX_ROUNDS: usize = 5;

/// The function: DynamoDB's [`LikesTable`] unless a test hands it another [`LikeStore`].
pub struct LikeCounter<T = LikesTable> {
    pub table: T,
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

impl<T: LikeStore> BatchFunction<KinesisEvent> for LikeCounter<T> {
    type Response = KinesisEventResponse;

    /// One batch, as one unit of work (the context's per-record budget is not used). A
    /// [`BatchReport::fatal`] error means the function cannot work (a refused permission).
    async fn handle_batch<Q: Quarantine>(
        &self,
        event: KinesisEvent,
        ctx: &BatchContext<'_, Q>,
    ) -> (KinesisEventResponse, BatchReport) {
        let started = Instant::now();
        let requests_before = self.table.spend().requests.load(Ordering::Relaxed);
        let units_before = self.table.spend().write_units.load(Ordering::Relaxed);
        let records = StreamRecord::from_event(event);
        let mut report = BatchReport::default();
        let mut unfinished = BTreeSet::new();
        let mut facts = Vec::new();
        let mut deletions = Vec::new();
        for (index, record) in records.iter().enumerate() {
            match screen(ctx, record, &mut report, |e| {
                matches!(
                    e,
                    SocialEvent::ImageLiked(_)
                        | SocialEvent::ImageLikeUndone(_)
                        | SocialEvent::ImageDeleted(_)
                )
            })
            .await
            {
                Screened::Event(envelope) => match &envelope.event {
                    SocialEvent::ImageDeleted(d) => deletions.push((index, d.image_id.clone())),
                    _ => facts.extend(like_fact(&envelope, index)),
                },
                Screened::Acknowledged => {}
                Screened::Failed => {
                    unfinished.insert(index);
                }
            }
        }
        // Deletions first: the batch's likes of a deleted image then find its tombstone,
        // whatever their order in the shard.
        for (index, image_id) in deletions {
            let erased = async {
                let states = self.table.erase_image(&image_id, &ctx.deadline).await?;
                tracing::info!(function = ctx.function, %image_id, states, "image erased");
                Ok::<_, snapglow::table::TableError>(Outcome::Done)
            };
            if !settle_record(ctx, &records[index], erased, &mut report).await {
                unfinished.insert(index);
            }
        }
        let occurred: BTreeMap<usize, i64> =
            facts.iter().map(|f| (f.record, f.version.at_ms)).collect();
        let latest = latest_per_key(facts);
        let settled = self.apply(&latest, ctx.function, &ctx.deadline).await;
        // A key DynamoDB refuses on its own (after the rest of the batch was written without
        // it) takes its records to the quarantine, with what DynamoDB said.
        let keys: Vec<(&LikeKey, &[usize])> = latest
            .iter()
            .map(|(key, state)| (key, state.records.as_slice()))
            .collect();
        settled
            .settle(
                ctx,
                &records,
                &keys,
                &occurred,
                &mut report,
                &mut unfinished,
            )
            .await;
        let first = unfinished.first().map(|&index| &records[index]);
        report.requests =
            (self.table.spend().requests.load(Ordering::Relaxed) - requests_before) as usize;
        tracing::info!(
            function = ctx.function,
            cold_start = snapglow::telemetry::cold_start(),
            records = records.len(),
            done = report.done,
            duplicates = report.duplicates,
            skipped = report.skipped,
            quarantined = report.quarantined,
            failed = report.failed,
            distinct_likes = latest.len(),
            dynamodb_requests = report.requests,
            write_units = self.table.spend().write_units.load(Ordering::Relaxed) - units_before,
            ms = started.elapsed().as_millis() as u64,
            resume_at = first.map(|r| r.sequence_number.as_str()).unwrap_or(""),
            "like batch settled"
        );
        snapglow::telemetry::emit_batch_metrics(ctx.function, &report);
        (first_failure_response(first), report)
    }
}

impl<T: LikeStore> LikeCounter<T> {
    /// Brings the stored state up to `latest`.
    async fn apply(
        &self,
        latest: &BTreeMap<LikeKey, Latest>,
        function: &str,
        deadline: &Deadline,
    ) -> KeyOutcomes<LikeKey> {
        let mut settled = KeyOutcomes::default();
        let mut pending: Vec<LikeKey> = latest.keys().cloned().collect();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let mut stored = HashMap::new();
            let mut erased = BTreeSet::new();
            let read = read_halving(
                &pending,
                async |keys: &[LikeKey]| self.table.read_states(keys, deadline).await,
                |read: Read| {
                    stored.extend(read.states);
                    erased.extend(read.erased);
                },
                &mut settled,
            )
            .await;
            if let Err(error) = read {
                tracing::warn!(function, %error, keys = pending.len(), "could not read like states; the batch resumes at its first affected record");
                settled.fail(pending, &error);
                return settled;
            }
            pending.retain(|key| !settled.refused.contains_key(key));
            // A like of a deleted image changes nothing: its deletion superseded it.
            let (gone, live): (Vec<LikeKey>, Vec<LikeKey>) = pending
                .into_iter()
                .partition(|k| erased.contains(&k.image_id));
            if !gone.is_empty() {
                tracing::info!(
                    function,
                    keys = gone.len(),
                    "likes of deleted images: nothing to count"
                );
            }
            settled.already_applied.extend(gone);
            pending = live;
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
            pending = write_halving(
                pack(writes),
                TransactionShape {
                    keys: |t: &Transaction| t.writes.iter().map(|w| w.key.clone()).collect(),
                    shared: |t: &Transaction| t.count_deltas.keys().cloned().collect(),
                },
                |t: Transaction| {
                    let mut writes = t.writes;
                    let second = writes.split_off(writes.len() / 2);
                    [pack(writes), pack(second)].concat()
                },
                async |t: &Transaction| self.table.apply(t, deadline).await,
                &mut settled,
            )
            .await;
        }
        if !pending.is_empty() {
            tracing::warn!(
                function,
                keys = pending.len(),
                "like states kept changing during {MAX_ROUNDS} rounds (a concurrent writer?); redelivering"
            );
            settled.failed.extend(pending);
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{LikeState, StateWrite};
    use crate::table::memory::MemoryLikes;
    use serde_json::json;
    use snapglow::contracts::Timestamp;
    use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
    use std::time::Duration;
    use uuid::Uuid;

    const T0: i64 = 1_795_000_000_000;

    fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        let deadline = Deadline::after(Duration::from_secs(30));
        BatchContext::new("like-counter", deadline, Duration::ZERO, quarantine)
    }

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
        let counter = LikeCounter { table };
        let quarantine = MemoryQuarantine::default();

        // Act
        let (response, _) = counter
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
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
        assert!(quarantine.entries().is_empty());
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
        let counter = LikeCounter { table };
        let quarantine = MemoryQuarantine::default();

        // Act
        let (response, report) = counter
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Assess: the batch is finished, nothing redelivered
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.quarantined, report.failed), (98, 2, 0));
        // ... the 98 others count, and the two are in the quarantine with DynamoDB's reason
        assert_eq!(counter.table.count("sunset"), 98);
        let mut reasons: Vec<(String, String)> = quarantine
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

    fn deleted(id: u128, at_ms: i64) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(id),
            occurred_at: Timestamp::from_millis(at_ms),
            correlation_id: format!("req-{id}"),
            producer: "api".into(),
            event: SocialEvent::ImageDeleted(snapglow::contracts::ImageDeletedV1 {
                image_id: "sunset".into(),
                owner_id: "alice".into(),
                upload_key: "uploads/alice/sunset".into(),
                rendition_keys: vec![],
            }),
        }
    }

    #[tokio::test]
    async fn a_deleted_image_loses_its_count_and_states_and_a_replayed_like_never_brings_them_back()
    {
        // Prepare: bob and carol like the photo, then its owner deletes it; dan's like, made
        // before the deletion, arrives in the same batch after it
        let (bob, carol, dan) = (
            liked("bob", 1, T0),
            liked("carol", 2, T0 + 1),
            liked("dan", 3, T0 + 2),
        );
        let counter = LikeCounter {
            table: MemoryLikes::default(),
        };
        let quarantine = MemoryQuarantine::default();
        let first = [bob.clone(), carol.clone()];
        counter
            .handle_batch(kinesis_event_of(&first), &context(&quarantine))
            .await;
        assert_eq!(counter.table.count("sunset"), 2);

        // Act: the deletion with dan's like, then a replay of the whole stream
        let second = [deleted(9, T0 + 10), dan.clone()];
        let (response, report) = counter
            .handle_batch(kinesis_event_of(&second), &context(&quarantine))
            .await;
        let replay = [bob.clone(), carol.clone(), deleted(9, T0 + 10), dan];
        let (replayed, _) = counter
            .handle_batch(kinesis_event_of(&replay), &context(&quarantine))
            .await;

        // Assess: both batches are finished; the count and every state are gone for good
        for response in [response, replayed] {
            assert_eq!(
                serde_json::to_value(&response).unwrap(),
                json!({ "batchItemFailures": [] })
            );
        }
        assert_eq!((report.done, report.duplicates), (1, 1));
        assert_eq!(counter.table.count("sunset"), 0);
        assert!(counter.table.is_erased("sunset"));
        for user in ["bob", "carol", "dan"] {
            assert_eq!(counter.table.state(&key(user)), None, "{user}'s state");
        }
        assert!(quarantine.entries().is_empty());
    }
}
