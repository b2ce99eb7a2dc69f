//! The likes path: every like fact of a batch at once, grouped like like-counter's: read the
//! stored states once, plan, write the changes in as few transactions as allowed. A like whose
//! image's owner is unknown is kept until the image event names the owner (`images.rs`).

use snapglow::batch::grouped::{KeyOutcomes, TransactionShape, read_halving, write_halving};
use snapglow::batch::{BatchContext, BatchReport, Deadline, StreamRecord};
use snapglow::contracts::{Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Notifier;
use crate::inbox::{LikeWindow, Liker, UserId};
use crate::likes::{
    Latest, LikeFact, LikerKey, NotificationKey, Transaction, latest_per_key, notifications_of,
    pack, plan,
};
use crate::table::{EarlyLike, Held, NotificationStore, Owner, Stored};

/// Read-plan-write rounds before giving up on keys whose state keeps changing under us.
const MAX_ROUNDS: usize = 5;

impl<T: NotificationStore> Notifier<T> {
    /// The likes of a batch, grouped; see the module docs.
    pub(super) async fn notify_likes<Q: Quarantine>(
        &self,
        ctx: &BatchContext<'_, Q>,
        records: &[StreamRecord],
        facts: Vec<LikeFact>,
        report: &mut BatchReport,
        unfinished: &mut BTreeSet<usize>,
    ) {
        if facts.is_empty() {
            return;
        }
        let occurred: BTreeMap<usize, i64> =
            facts.iter().map(|f| (f.record, f.version.at_ms)).collect();
        let latest = latest_per_key(facts);
        let images: BTreeSet<String> = latest.keys().map(|k| k.image_id.clone()).collect();
        let mut outcomes = KeyOutcomes::default();
        let mut owners = match self.owners_of(&images, &ctx.deadline).await {
            Ok(owners) => owners,
            Err(error) => {
                tracing::warn!(function = ctx.function, %error, "could not read the images' owners; the likes are redelivered");
                outcomes.fail(latest.keys().cloned(), &error);
                HashMap::new()
            }
        };
        let mut planned = BTreeMap::new();
        for (key, fact) in latest {
            if outcomes.failed.contains(&key) {
                planned.insert(key, fact);
                continue;
            }
            if !owners.contains_key(&key.image_id) {
                // Up to two calls per key (keep it; read the owner), each able to last a whole
                // operation timeout.
                if ctx.deadline.remaining() < 2 * snapglow::aws::call_margin() {
                    let late = TableError::transient(
                        "notifications",
                        "too little time left to keep a like for an unknown owner",
                    );
                    outcomes.fail([key.clone()], &late);
                    planned.insert(key, fact);
                    continue;
                }
                match self.hold_early(&key, &fact, &ctx.deadline).await {
                    Ok(None) => {
                        tracing::info!(function = ctx.function, image_id = %key.image_id, outcome = "skipped", "owner not known yet; the like is kept until its ImagePublished or ImageRejected");
                        report.skipped += fact.records.len();
                        continue;
                    }
                    Ok(Some(owner)) => {
                        owners.insert(key.image_id.clone(), owner);
                    }
                    // DynamoDB will never keep this like (a value or an item it refuses): its
                    // records are quarantined with what it said, as `write_halving` does.
                    Err(error) if error.is_about_data() => {
                        outcomes.refused.insert(key.clone(), error);
                        planned.insert(key, fact);
                        continue;
                    }
                    Err(error) => {
                        outcomes.fail([key.clone()], &error);
                        planned.insert(key, fact);
                        continue;
                    }
                }
            }
            match owners.get(&key.image_id) {
                Some(Owner::Erased) => {
                    tracing::info!(function = ctx.function, image_id = %key.image_id, outcome = "skipped", "a like of a deleted image: nobody to tell");
                    report.skipped += fact.records.len();
                    continue;
                }
                // Owners are not told about their own likes.
                Some(Owner::Of(owner)) if *owner == key.user_id => {
                    report.skipped += fact.records.len();
                    continue;
                }
                _ => {}
            }
            planned.insert(key, fact);
        }
        let owners: HashMap<String, UserId> = owners
            .into_iter()
            .filter_map(|(image, owner)| match owner {
                Owner::Of(user) => Some((image, user)),
                Owner::Erased => None,
            })
            .collect();
        // Keys that already failed are settled with the others but not written.
        let settled = self
            .apply_likes(&planned, &owners, &ctx.deadline, outcomes)
            .await;
        let keys: Vec<(&LikerKey, &[usize])> = planned
            .iter()
            .map(|(key, fact)| (key, fact.records.as_slice()))
            .collect();
        settled
            .settle(ctx, records, &keys, &occurred, report, unfinished)
            .await;
    }

    /// Keeps a like whose image's owner is unknown; the owner when it became known meanwhile.
    async fn hold_early(
        &self,
        key: &LikerKey,
        fact: &Latest,
        deadline: &Deadline,
    ) -> Result<Option<Owner>, TableError> {
        let early = EarlyLike {
            window: LikeWindow::of(fact.version.at_ms, self.like_window_ms),
            liker: Liker {
                user_id: key.user_id.clone(),
                liked: fact.liked,
                version: fact.version,
            },
        };
        match self
            .table
            .hold_early(&key.image_id, &early, deadline)
            .await?
        {
            Held::Kept => Ok(None),
            Held::OwnerKnown => {
                let owner = self.table.owner_of(&key.image_id).await?.ok_or_else(|| {
                    TableError::transient(
                        "notifications",
                        format!(
                            "the owner item of image {} was there and is gone",
                            key.image_id
                        ),
                    )
                })?;
                Ok(Some(owner))
            }
        }
    }

    /// Brings the stored liker states and the notifications' counts up to `latest`.
    pub(super) async fn apply_likes(
        &self,
        latest: &BTreeMap<LikerKey, Latest>,
        owners: &HashMap<String, UserId>,
        deadline: &Deadline,
        mut settled: KeyOutcomes<LikerKey>,
    ) -> KeyOutcomes<LikerKey> {
        let mut pending: Vec<LikerKey> = latest
            .keys()
            .filter(|key| !settled.failed.contains(key) && !settled.refused.contains_key(key))
            .cloned()
            .collect();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            // The notifications new likes land in are read with the states; those an unlike
            // reaches back to are known only once the states are read.
            let like_windows: Vec<NotificationKey> = pending
                .iter()
                .filter(|k| latest[*k].liked)
                .filter_map(|k| {
                    Some(NotificationKey {
                        owner_id: owners.get(&k.image_id)?.clone(),
                        image_id: k.image_id.clone(),
                        window_start_ms: LikeWindow::of(
                            latest[k].version.at_ms,
                            self.like_window_ms,
                        )
                        .start_ms,
                    })
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut stored = Stored::default();
            let read = read_halving(
                &pending,
                async |keys: &[LikerKey]| self.table.read(keys, &like_windows, deadline).await,
                |more: Stored| {
                    stored.likers.extend(more.likers);
                    stored.notifications.extend(more.notifications);
                },
                &mut settled,
            )
            .await;
            if let Err(error) = read {
                tracing::warn!(%error, keys = pending.len(), "could not read liker states; the batch resumes at its first affected record");
                settled.fail(pending, &error);
                return settled;
            }
            pending.retain(|key| !settled.refused.contains_key(key));
            let wanted: BTreeMap<LikerKey, Latest> = pending
                .iter()
                .map(|k| (k.clone(), latest[k].clone()))
                .collect();
            let writes = plan(&wanted, owners, &stored.likers, self.like_window_ms);
            if round == 0 {
                let written: BTreeSet<&LikerKey> = writes.iter().map(|w| &w.key).collect();
                settled
                    .already_applied
                    .extend(pending.iter().filter(|k| !written.contains(k)).cloned());
            }
            let unread: Vec<NotificationKey> = notifications_of(&writes)
                .into_iter()
                .filter(|k| !like_windows.contains(k))
                .collect();
            if !unread.is_empty() {
                match self.table.read(&[], &unread, deadline).await {
                    Ok(more) => stored.notifications.extend(more.notifications),
                    Err(error) => {
                        settled.fail(pending, &error);
                        return settled;
                    }
                }
            }
            let notifications = &stored.notifications;
            pending = write_halving(
                pack(writes, notifications),
                TransactionShape {
                    keys: |t: &Transaction| t.writes.iter().map(|w| w.key.clone()).collect(),
                    shared: |t: &Transaction| t.notifications.keys().cloned().collect(),
                },
                |t: Transaction| {
                    let mut writes = t.writes;
                    let second = writes.split_off(writes.len() / 2);
                    [pack(writes, notifications), pack(second, notifications)].concat()
                },
                async |t: &Transaction| self.table.apply(t, deadline).await,
                &mut settled,
            )
            .await;
        }
        if !pending.is_empty() {
            tracing::warn!(
                keys = pending.len(),
                "liker states kept changing during {MAX_ROUNDS} rounds (a concurrent writer?); redelivering"
            );
            settled.failed.extend(pending);
        }
        settled
    }
}

/// A like fact from a decoded event, or `None` for other types.
pub(super) fn like_fact(envelope: &Envelope, record: usize) -> Option<LikeFact> {
    let (image_id, user_id, liked) = match &envelope.event {
        SocialEvent::ImageLiked(d) => (&d.image_id, &d.user_id, true),
        SocialEvent::ImageLikeUndone(d) => (&d.image_id, &d.user_id, false),
        _ => return None,
    };
    Some(LikeFact {
        key: LikerKey {
            image_id: image_id.clone(),
            user_id: user_id.clone(),
        },
        liked,
        version: EventVersion::of(envelope),
        record,
    })
}
