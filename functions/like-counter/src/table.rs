//! The likes table adapter: the only code here that talks to DynamoDB.
//!
//! Items (pk, sk):
//! - `IMAGE#{image_id}`, `LIKE#{user_id}`: the latest like fact of one user for one image
//!   (`liked`, `version_at`, `version_id`). An unliked state expires (`expires_at`) once no
//!   redelivery can be older than it; a liked one never does, since the count rests on it.
//! - `IMAGE#{image_id}`, `COUNT`: `likes`, the number of users whose state is liked. Once the
//!   image is deleted, a tombstone: `likes` 0 and `erased_at`, until `expires_at` (the dedup
//!   retention: no redelivery, replay or redrive can come later). Every count update is
//!   conditioned on there being none, so a like of a deleted image never counts again.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use snapglow::batch::Deadline;
use snapglow::dedup::{EventVersion, expires_at};
pub use snapglow::table::Applied;
use snapglow::table::{
    Deletes, Selection, TableError, batch_get, delete_all, image_pk, n, s, transact,
};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ledger::{LikeKey, LikeState, Transaction};

mod counts;
#[cfg(test)]
pub mod memory;

pub use counts::LikeCounts;

/// The like states and counts as the counter needs them. [`LikesTable`] is DynamoDB; tests use
/// the in-memory twin in `memory`, which keeps the same guarantees.
pub trait LikeStore {
    /// The stored state of each key, read strongly consistent (a state written by the previous
    /// batch must be seen), and which of their images are erased, in the same reads. Keys
    /// with no state are absent from the map.
    fn read_states(
        &self,
        keys: &[LikeKey],
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Read, TableError>>;

    /// Erases what the table keeps of a deleted image: its count becomes a tombstone (no later
    /// transaction can add to it), then every liker's state is deleted. Answers how many states
    /// were deleted. Idempotent: a run cut short is finished by the next.
    fn erase_image(
        &self,
        image_id: &str,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<usize, TableError>>;

    /// Commits one transaction, all or nothing: each state write applies only while its key
    /// still holds the state it was planned from ([`StateWrite::expected`]), and the count
    /// updates are added (never overwritten) in the same commit. When any state changed since
    /// it was read, nothing is written and the answer is [`Applied::StateChanged`].
    ///
    /// [`StateWrite::expected`]: crate::ledger::StateWrite::expected
    fn apply(
        &self,
        transaction: &Transaction,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<Applied, TableError>>;

    /// What the requests so far cost.
    fn spend(&self) -> &Spend;
}

/// What [`LikeStore::read_states`] found.
#[derive(Debug, Default)]
pub struct Read {
    pub states: HashMap<LikeKey, LikeState>,
    /// The images among the keys' whose count is a tombstone: deleted, their facts change
    /// nothing.
    pub erased: BTreeSet<String>,
}

/// DynamoDB requests and write request units spent, for the per-batch log and the benchmark.
#[derive(Debug, Default)]
pub struct Spend {
    pub requests: AtomicU64,
    /// Write request units as billed for items under 1 KB: 2 per item in a transaction.
    pub write_units: AtomicU64,
}

pub struct LikesTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    unliked_retention: Duration,
    pub spend: Spend,
}

impl LikesTable {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        unliked_retention: Duration,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            unliked_retention,
            spend: Spend::default(),
        }
    }

    fn key(key: &LikeKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(image_pk(&key.image_id))),
            ("sk".to_owned(), s(format!("LIKE#{}", key.user_id))),
        ])
    }

    fn parse_state(&self, item: &HashMap<String, AttributeValue>) -> Result<LikeState, TableError> {
        let corrupt =
            |what: &str| TableError::corrupt_item(&self.table, format!("{what} in {item:?}"));
        let liked = *item
            .get("liked")
            .and_then(|v| v.as_bool().ok())
            .ok_or_else(|| corrupt("no liked flag"))?;
        let at_ms = item
            .get("version_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("no version_at"))?;
        let event_id = item
            .get("version_id")
            .and_then(|v| v.as_s().ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("no version_id"))?;
        // Absent on states written before revisions, and for facts that carried none.
        let revision = item
            .get("version_rev")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok());
        Ok(LikeState {
            liked,
            version: EventVersion {
                revision,
                at_ms,
                event_id,
            },
        })
    }

    fn action_items(&self, transaction: &Transaction) -> Vec<TransactWriteItem> {
        let mut actions = Vec::with_capacity(transaction.actions());
        for write in &transaction.writes {
            let mut item = Self::key(&write.key);
            item.insert("liked".into(), AttributeValue::Bool(write.new.liked));
            item.insert("version_at".into(), n(write.new.version.at_ms));
            item.insert(
                "version_id".into(),
                s(write.new.version.event_id.to_string()),
            );
            if let Some(revision) = write.new.version.revision {
                item.insert("version_rev".into(), n(revision));
            }
            if !write.new.liked {
                item.insert("expires_at".into(), n(expires_at(self.unliked_retention)));
            }
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
            put = match write.expected {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(version) => put
                    .condition_expression("version_at = :at AND version_id = :id")
                    .expression_attribute_values(":at", n(version.at_ms))
                    .expression_attribute_values(":id", s(version.event_id.to_string())),
            };
            actions.push(
                TransactWriteItem::builder()
                    .put(put.build().expect("table and item are set"))
                    .build(),
            );
        }
        for (image_id, delta) in &transaction.count_deltas {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(image_pk(image_id)))
                .key("sk", s("COUNT"))
                .update_expression("ADD likes :delta")
                // A deleted image's count stays erased: the transaction is canceled, and the
                // counter reads again, finds the tombstone and writes nothing.
                .condition_expression("attribute_not_exists(erased_at)")
                .expression_attribute_values(":delta", n(delta))
                .build()
                .expect("table, key and expression are set");
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        actions
    }
}

impl LikeStore for LikesTable {
    /// One BatchGetItem per 100 keys: the states, and one count item per image.
    async fn read_states(&self, keys: &[LikeKey], deadline: &Deadline) -> Result<Read, TableError> {
        let by_item: HashMap<(String, String), &LikeKey> = keys
            .iter()
            .map(|k| ((image_pk(&k.image_id), format!("LIKE#{}", k.user_id)), k))
            .collect();
        let images: BTreeSet<&str> = keys.iter().map(|k| k.image_id.as_str()).collect();
        let count_keys = images.iter().map(|image| {
            HashMap::from([
                ("pk".to_owned(), s(image_pk(image))),
                ("sk".to_owned(), s("COUNT")),
            ])
        });
        let mut read = Read::default();
        let items = batch_get(
            &self.client,
            &self.table,
            keys.iter().map(Self::key).chain(count_keys).collect(),
            Some("pk, sk, liked, version_at, version_id, version_rev, erased_at"),
            deadline,
            || {
                self.spend.requests.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await?;
        for item in items {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            if let Some(key) = by_item.get(&(text("pk"), text("sk"))) {
                read.states.insert((*key).clone(), self.parse_state(&item)?);
            } else if text("sk") == "COUNT" && item.contains_key("erased_at") {
                let pk = text("pk");
                read.erased
                    .extend(snapglow::table::image_of_pk(&pk).map(str::to_owned));
            }
        }
        Ok(read)
    }

    /// One PutItem (the tombstone), then a Query per page of states and a BatchWriteItem per
    /// 25 of them (one write unit each).
    async fn erase_image(&self, image_id: &str, deadline: &Deadline) -> Result<usize, TableError> {
        let now = snapglow::contracts::Timestamp::now().millis();
        let tombstone = HashMap::from([
            ("pk".to_owned(), s(image_pk(image_id))),
            ("sk".to_owned(), s("COUNT")),
            ("likes".to_owned(), n(0)),
            ("erased_at".to_owned(), n(now)),
            (
                "expires_at".to_owned(),
                n(expires_at(self.unliked_retention)),
            ),
        ]);
        snapglow::table::write_item(&self.table, deadline, || {
            self.spend.requests.fetch_add(1, Ordering::Relaxed);
            self.spend.write_units.fetch_add(1, Ordering::Relaxed);
            (self.client.put_item())
                .table_name(&self.table)
                .set_item(Some(tombstone.clone()))
                .send()
        })
        .await?;
        let states = Selection {
            table: &self.table,
            pk: image_pk(image_id),
            sk_prefix: Some("LIKE#"),
            only: None,
        };
        delete_all(&self.client, &states, Deletes::Batched, deadline, || {
            self.spend.requests.fetch_add(1, Ordering::Relaxed);
        })
        .await
    }

    /// Retries conflicts and throttling within the deadline.
    async fn apply(
        &self,
        transaction: &Transaction,
        deadline: &Deadline,
    ) -> Result<Applied, TableError> {
        let actions = self.action_items(transaction);
        transact(&self.client, &self.table, &actions, deadline, || {
            self.spend.requests.fetch_add(1, Ordering::Relaxed);
            self.spend
                .write_units
                .fetch_add(2 * actions.len() as u64, Ordering::Relaxed);
        })
        .await
    }

    fn spend(&self) -> &Spend {
        &self.spend
    }
}
