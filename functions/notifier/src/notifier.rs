//! One Kinesis batch: image events record by record in shard order, then every like fact of
//! the batch at once, grouped like like-counter's: read the stored states once, plan, write the
//! changes in as few transactions as allowed, and answer with the first unfinished record.
//!
//! DynamoDB requests: the batch's ImagePublished / ImageRejected notices in one transaction per
//! 33 (three items each; one more when a duplicate cancels one, or an image holding likes).
//! Only an image whose notice found the `held` mark (likes that came before it) costs one
//! query for them, a delivery with the batch path, a delete each and one update clearing the
//! mark. Likes:
//! per batch, one BatchGetItem per 100 keys (liker states and the notifications they change),
//! one more when an unlike reaches a notification not read yet, and one TransactWriteItems per
//! 100 actions; plus, for images this process has not seen, one read of their owners per 100
//! images. A like whose owner is unknown yet: one transaction of 2 items that keeps it.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::grouped::{KeyOutcomes, TransactionShape, read_halving, write_halving};
use snapglow::batch::{
    BatchContext, BatchReport, Classify, Deadline, ErrorClass, Outcome, Screened, StreamRecord,
    first_failure_response, screen, settle_record,
};
use snapglow::contracts::{ContractError, Envelope, SocialEvent};
use snapglow::dedup::EventVersion;
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::inbox::{Kind, LikeWindow, Liker, UserId};
use crate::likes::{
    Latest, LikeFact, LikerKey, NotificationKey, Transaction, latest_per_key, notifications_of,
    pack, plan,
};
use crate::table::{
    EarlyLike, Held, ImageNotice, Noticed, NotificationStore, NotificationsTable, Stored, Written,
};

/// Read-plan-write rounds before giving up on keys whose state keeps changing under us.
const MAX_ROUNDS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        match self {
            NotifyError::Contract(_) => ErrorClass::Permanent,
            // A malformed stored item is the table's fault, not the record's: quarantining
            // the record would lose a valid event, so it waits until the item is fixed.
            NotifyError::Table(TableError::CorruptItem { .. }) => ErrorClass::Transient,
            // A refused value or an item grown too large: this record's alone. A refused
            // permission fails the invocation and quarantines nothing.
            NotifyError::Table(error) => error.class(),
        }
    }
    fn reason_code(&self) -> &'static str {
        match self {
            NotifyError::Contract(error) => error.reason_code(),
            NotifyError::Table(error) => error.reason_code(),
        }
    }
}

/// Owners never change, so a process keeps what it learnt; bounded so a long-lived
/// environment does not grow without limit.
const OWNER_CACHE_LIMIT: usize = 100_000;

/// The function: DynamoDB's [`NotificationsTable`] unless a test hands it another
/// [`NotificationStore`].
pub struct Notifier<T = NotificationsTable> {
    pub table: T,
    pub like_window_ms: i64,
    owners: Mutex<HashMap<String, String>>,
}

impl<T: NotificationStore> Notifier<T> {
    pub fn new(table: T, like_window_ms: i64) -> Self {
        Self {
            table,
            like_window_ms,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn remember_owner(&self, image_id: &str, owner_id: &str) {
        let mut owners = self.owners.lock().expect("owner cache lock");
        if owners.len() >= OWNER_CACHE_LIMIT {
            owners.clear();
        }
        owners.insert(image_id.to_owned(), owner_id.to_owned());
    }

    /// The known owners of `images`: from this process's memory, the rest in one read per 100.
    async fn owners_of(
        &self,
        images: &BTreeSet<String>,
        deadline: &Deadline,
    ) -> Result<HashMap<String, UserId>, TableError> {
        let mut owners = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.owners.lock().expect("owner cache lock");
            for image in images {
                match cache.get(image) {
                    Some(owner) => {
                        owners.insert(image.clone(), owner.clone());
                    }
                    None => unknown.push(image.clone()),
                }
            }
        }
        if !unknown.is_empty() {
            for (image, owner) in self.table.owners_of(&unknown, deadline).await? {
                self.remember_owner(&image, &owner);
                owners.insert(image, owner);
            }
        }
        Ok(owners)
    }

    /// One Kinesis batch; see the module docs. A [`BatchReport::fatal`] error means the function
    /// cannot work (a refused permission): the caller fails the invocation.
    pub async fn handle_batch<Q: Quarantine>(
        &self,
        event: KinesisEvent,
        ctx: &BatchContext<'_, Q>,
    ) -> (KinesisEventResponse, BatchReport) {
        let (requests_before, units_before) = self.table.spend();
        let records = StreamRecord::from_event(event);
        let mut report = BatchReport::default();
        let mut unfinished = BTreeSet::new();
        let mut facts = Vec::new();
        let mut images = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let envelope = match screen(ctx, record, &mut report, |_| true).await {
                Screened::Event(envelope) => envelope,
                Screened::Acknowledged => continue,
                Screened::Failed => {
                    unfinished.insert(index);
                    continue;
                }
            };
            match like_fact(&envelope, index) {
                Some(fact) => facts.push(fact),
                None => images.push((index, envelope)),
            }
        }
        // The image notices of the whole batch first, in as few transactions as allowed; then
        // each image event in shard order, through the record guard, with its notice's answer.
        let notices: Vec<ImageNotice<'_>> = images
            .iter()
            .filter_map(|(_, envelope)| notice_of(envelope))
            .collect();
        let mut written: HashMap<uuid::Uuid, Noticed> = HashMap::new();
        if !notices.is_empty() {
            let answers = self.table.notify_images(&notices, &ctx.deadline).await;
            for (notice, answer) in notices.iter().zip(answers) {
                if let Some(answer) = answer {
                    // A producer duplicate in the batch shares its event id: the first is
                    // Applied, the copy Unchanged; either way it is written.
                    written.entry(notice.event_id).or_insert(answer);
                }
            }
        }
        for (index, envelope) in &images {
            if ctx.deadline.remaining() < ctx.record_budget {
                report.not_started += 1;
                unfinished.insert(*index);
                continue;
            }
            // A copy of an event in the same batch finds it written by the first.
            let prewritten = written.get_mut(&envelope.event_id).map(|answer| {
                let first = *answer;
                answer.written = Written::Unchanged;
                first
            });
            let handled = self.notify_image(envelope, prewritten, &ctx.deadline);
            if !settle_record(ctx, &records[*index], handled, &mut report).await {
                unfinished.insert(*index);
            }
        }
        self.notify_likes(ctx, &records, facts, &mut report, &mut unfinished)
            .await;
        let (requests, units) = self.table.spend();
        tracing::info!(
            function = ctx.function,
            records = records.len(),
            dynamodb_requests = requests - requests_before,
            write_units = units - units_before,
            "notifier batch spend"
        );
        report.log(ctx.function, "kinesis");
        let first = unfinished.first().map(|&index| &records[index]);
        (first_failure_response(first), report)
    }

    /// The likes of a batch, grouped; see the module docs.
    async fn notify_likes<Q: Quarantine>(
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
                match self.hold_early(&key, &fact).await {
                    Ok(None) => {
                        tracing::info!(function = ctx.function, image_id = %key.image_id, outcome = "skipped", "owner not known yet; the like is kept until its ImagePublished or ImageRejected");
                        report.skipped += fact.records.len();
                        continue;
                    }
                    Ok(Some(owner)) => {
                        owners.insert(key.image_id.clone(), owner);
                    }
                    Err(error) => {
                        outcomes.fail([key.clone()], &error);
                        planned.insert(key, fact);
                        continue;
                    }
                }
            }
            if owners.get(&key.image_id) == Some(&key.user_id) {
                // Owners are not told about their own likes.
                report.skipped += fact.records.len();
                continue;
            }
            planned.insert(key, fact);
        }
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
    ) -> Result<Option<UserId>, TableError> {
        let early = EarlyLike {
            window: LikeWindow::of(fact.version.at_ms, self.like_window_ms),
            liker: Liker {
                user_id: key.user_id.clone(),
                liked: fact.liked,
                version: fact.version,
            },
        };
        match self.table.hold_early(&key.image_id, &early).await? {
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
                self.remember_owner(&key.image_id, &owner);
                Ok(Some(owner))
            }
        }
    }

    /// An image event's notice, written already by the batch's grouped write (`prewritten`)
    /// or here, then its kept likes delivered.
    async fn notify_image(
        &self,
        envelope: &Envelope,
        prewritten: Option<Noticed>,
        deadline: &Deadline,
    ) -> Result<Outcome, NotifyError> {
        let Some(notice) = notice_of(envelope) else {
            return Ok(Outcome::Skipped(format!(
                "{} is not an image event",
                envelope.event.type_name()
            )));
        };
        let (image_id, owner_id) = (notice.image_id, notice.owner_id);
        self.remember_owner(image_id, owner_id);
        let noticed = match prewritten {
            Some(noticed) => noticed,
            None => self.table.notify_image(&notice, deadline).await?,
        };
        // Likes of a rejected upload (a racing client) are told too: the owner learns someone
        // saw it, and nothing is left waiting.
        if noticed.held {
            self.deliver_early(image_id, owner_id, deadline).await?;
        }
        Ok(match noticed.written {
            Written::Applied => Outcome::Done,
            Written::Unchanged => {
                Outcome::Duplicate(format!("event {} was already notified", envelope.event_id))
            }
        })
    }

    /// Delivers the likes kept while the image's owner was unknown, with the batch path,
    /// deletes each once delivered, then clears the image's mark. Run on every delivery of an
    /// image event that finds the mark: a crash before the mark is cleared leaves it, so the
    /// redelivery delivers again, and those writes change nothing.
    async fn deliver_early(
        &self,
        image_id: &str,
        owner_id: &str,
        deadline: &Deadline,
    ) -> Result<(), TableError> {
        let early = self.table.early_likes(image_id).await?;
        if early.is_empty() {
            return self.table.release_held(image_id).await;
        }
        let facts = early
            .iter()
            .filter(|kept| kept.liker.user_id != owner_id)
            .map(|kept| LikeFact {
                key: LikerKey {
                    image_id: image_id.to_owned(),
                    user_id: kept.liker.user_id.clone(),
                },
                liked: kept.liker.liked,
                version: kept.liker.version,
                record: 0,
            })
            .collect();
        let latest = latest_per_key(facts);
        let owners = HashMap::from([(image_id.to_owned(), owner_id.to_owned())]);
        let settled = self
            .apply_likes(&latest, &owners, deadline, KeyOutcomes::default())
            .await;
        if let Some(key) = settled.failed.first() {
            return Err(TableError::transient(
                "notifications",
                format!(
                    "the like of {} kept for image {image_id} could not be delivered yet",
                    key.user_id
                ),
            ));
        }
        let mut all_delivered = true;
        for kept in &early {
            let key = LikerKey {
                image_id: image_id.to_owned(),
                user_id: kept.liker.user_id.clone(),
            };
            if let Some(error) = settled.refused.get(&key) {
                tracing::warn!(image_id, user_id = %key.user_id, %error, "DynamoDB refuses a kept like; it stays kept");
                all_delivered = false;
                continue;
            }
            self.table.release_early(image_id, &kept.liker).await?;
        }
        if all_delivered {
            self.table.release_held(image_id).await?;
        }
        Ok(())
    }

    /// Brings the stored liker states and the notifications' counts up to `latest`.
    async fn apply_likes(
        &self,
        latest: &BTreeMap<LikerKey, Latest>,
        owners: &HashMap<String, UserId>,
        deadline: &Deadline,
        mut settled: KeyOutcomes<LikerKey>,
    ) -> KeyOutcomes<LikerKey> {
        let mut pending: Vec<LikerKey> = latest
            .keys()
            .filter(|key| !settled.failed.contains(key))
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
/// The notice an ImagePublished or ImageRejected tells its owner; `None` for other events.
fn notice_of(envelope: &Envelope) -> Option<ImageNotice<'_>> {
    let (kind, image_id, owner_id, reason) = match &envelope.event {
        SocialEvent::ImagePublished(data) => {
            (Kind::Published, &data.image_id, &data.owner_id, None)
        }
        SocialEvent::ImageRejected(data) => (
            Kind::Rejected,
            &data.image_id,
            &data.owner_id,
            Some((data.reason.as_str(), data.message.as_str())),
        ),
        _ => return None,
    };
    Some(ImageNotice {
        event_id: envelope.event_id,
        kind,
        owner_id,
        image_id,
        created_ms: envelope.occurred_at.millis(),
        reason,
    })
}

fn like_fact(envelope: &Envelope, record: usize) -> Option<LikeFact> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::memory::MemoryNotifications;
    use serde_json::json;
    use snapglow::batch::Deadline;
    use snapglow::contracts::{ImagePublishedV1, Timestamp};
    use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
    use std::time::Duration;
    use uuid::Uuid;

    const MINUTE: i64 = 60_000;
    const WINDOW: i64 = 15 * MINUTE;
    /// The first instant of a window.
    const START: i64 = (1_795_000_000_000 / WINDOW + 1) * WINDOW;

    fn envelope(id: u128, at_ms: i64, event: SocialEvent) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(id),
            occurred_at: Timestamp::from_millis(at_ms),
            correlation_id: format!("req-{id}"),
            producer: "test".into(),
            event,
        }
    }

    fn liked(user: &str, id: u128, at_ms: i64) -> Envelope {
        envelope(id, at_ms, SocialEvent::like("beach", user, true, None))
    }

    fn undone(user: &str, id: u128, at_ms: i64) -> Envelope {
        envelope(id, at_ms, SocialEvent::like("beach", user, false, None))
    }

    /// alice's photo; bob and carol like it late in one window, dan on the first instant of
    /// the next, and bob takes his like back early in that next window.
    fn likes_across_a_boundary() -> Vec<Envelope> {
        let published = ImagePublishedV1 {
            image_id: "beach".into(),
            owner_id: "alice".into(),
            source_key: "uploads/alice/beach.jpg".into(),
            source_etag: "e".into(),
            width: 10,
            height: 10,
            renditions: vec![],
        };
        vec![
            envelope(1, START, SocialEvent::ImagePublished(published)),
            liked("bob", 2, START + WINDOW - 2 * MINUTE),
            liked("carol", 3, START + WINDOW - MINUTE),
            liked("dan", 4, START + WINDOW),
            undone("bob", 5, START + WINDOW + MINUTE),
        ]
    }

    /// (id, text, actors, unread) of each notification, as the inbox lists them.
    fn inbox(table: &MemoryNotifications, user: &str) -> Vec<(String, String, Vec<String>, bool)> {
        table
            .inbox(user)
            .into_iter()
            .map(|n| (n.id, n.text, n.actors, n.unread))
            .collect()
    }

    /// The texts of a user's inbox, newest first.
    fn texts(table: &MemoryNotifications, user: &str) -> Vec<String> {
        table.inbox(user).into_iter().map(|n| n.text).collect()
    }

    fn expected_inbox() -> Vec<(String, String, Vec<String>, bool)> {
        let entry = |id: String, text: &str, actors: &[&str]| {
            let actors = actors.iter().map(|a| a.to_string()).collect();
            (id, text.to_owned(), actors, true)
        };
        vec![
            entry(
                format!("likes-beach-{}", START + WINDOW),
                "dan liked your photo",
                &["dan"],
            ),
            entry(
                format!("likes-beach-{START}"),
                "carol liked your photo",
                &["carol"],
            ),
            entry("published-beach".into(), "Your photo is live", &[]),
        ]
    }

    fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
        BatchContext::new(
            "notifier",
            Deadline::after(Duration::from_secs(30)),
            Duration::from_millis(10),
            quarantine,
        )
    }

    #[tokio::test]
    async fn likes_across_a_window_boundary_land_in_their_windows_and_an_unlike_reaches_back() {
        // Prepare
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();

        // Act
        let (response, report) = notifier
            .handle_batch(
                kinesis_event_of(&likes_across_a_boundary()),
                &context(&quarantine),
            )
            .await;

        // Assess: every record is finished and applied
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.failed), (5, 0));
        // ... bob and carol share the window they liked in, dan (on the boundary) opens the
        // next one, and bob's unlike in that next window took his unread like out of the first
        assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
        assert!(quarantine.entries().is_empty());
    }

    #[tokio::test]
    async fn a_replay_of_a_batch_across_a_window_boundary_changes_no_notification() {
        // Prepare: the batch, delivered once
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();
        let batch = likes_across_a_boundary();
        notifier
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Act: delivered again (a retry after a timeout, or a replay of the stream)
        let (response, report) = notifier
            .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
            .await;

        // Assess: every record is a duplicate and the inbox is what the first delivery left
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!((report.done, report.duplicates), (0, 5));
        assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
    }

    #[tokio::test]
    async fn likes_that_come_before_their_image_is_published_are_told_once_it_is() {
        // Prepare: bob and carol like alice's photo, and carol takes hers back, all before the
        // photo's ImagePublished reaches this consumer
        let [published, bob, carol, carol_undo, ..] = [
            likes_across_a_boundary()[0].clone(),
            liked("bob", 2, START + MINUTE),
            liked("carol", 3, START + 2 * MINUTE),
            undone("carol", 4, START + 3 * MINUTE),
            liked("dan", 5, START + 4 * MINUTE),
        ];
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();
        let early = [bob, carol, carol_undo];
        let (_, report) = notifier
            .handle_batch(kinesis_event_of(&early), &context(&quarantine))
            .await;
        assert_eq!(report.skipped, 3, "kept, waiting for the owner");
        assert!(notifier.table.inbox("alice").is_empty());

        // Act: the publication arrives, and then the whole stream is replayed
        let (response, _) = notifier
            .handle_batch(
                kinesis_event_of(std::slice::from_ref(&published)),
                &context(&quarantine),
            )
            .await;
        let everything = [early.to_vec(), vec![published]].concat();
        let (_, replay) = notifier
            .handle_batch(kinesis_event_of(&everything), &context(&quarantine))
            .await;

        // Assess: alice hears of bob's like (carol's was taken back), once
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
        assert_eq!(
            texts(&notifier.table, "alice"),
            ["bob liked your photo", "Your photo is live"]
        );
        assert_eq!((replay.done, replay.duplicates), (0, 4));
        // ... and nothing is left waiting, nor marked as waiting
        assert!(
            notifier
                .table
                .early_likes("beach")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!notifier.table.held("beach"));
    }

    #[tokio::test]
    async fn a_notice_written_before_a_crash_still_delivers_the_likes_kept_for_its_image() {
        // Prepare: bob likes alice's photo before its publication reaches this consumer; then
        // a delivery of the publication writes its notice and dies before the kept like is
        // delivered (the notice alone, as that delivery left it)
        let published = likes_across_a_boundary()[0].clone();
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();
        notifier
            .handle_batch(
                kinesis_event_of(&[liked("bob", 2, START + MINUTE)]),
                &context(&quarantine),
            )
            .await;
        let notice = notice_of(&published).expect("an image event");
        let first = notifier
            .table
            .notify_image(&notice, &Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(
            (first.written, first.held),
            (Written::Applied, true),
            "the notice finds the mark"
        );

        // Act: the publication is delivered again
        let (_, report) = notifier
            .handle_batch(
                kinesis_event_of(std::slice::from_ref(&published)),
                &context(&quarantine),
            )
            .await;

        // Assess: a duplicate notice, but the mark sends the redelivery to the kept like
        assert_eq!(report.duplicates, 1);
        assert_eq!(
            texts(&notifier.table, "alice"),
            ["bob liked your photo", "Your photo is live"]
        );
        assert!(!notifier.table.held("beach"));
    }

    #[tokio::test]
    async fn an_image_that_never_held_a_like_is_not_marked_and_a_later_like_is_told_at_once() {
        // Prepare
        let batch = likes_across_a_boundary();
        let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
        let quarantine = MemoryQuarantine::default();

        // Act: the publication, then a like of it in a later batch
        notifier
            .handle_batch(kinesis_event_of(&batch[..1]), &context(&quarantine))
            .await;
        let (_, report) = notifier
            .handle_batch(kinesis_event_of(&batch[1..2]), &context(&quarantine))
            .await;

        // Assess
        assert!(!notifier.table.held("beach"));
        assert_eq!((report.done, report.skipped), (1, 0));
        assert_eq!(notifier.table.inbox("alice").len(), 2);
    }
}
