//! One Kinesis batch (`mod.rs`): image events record by record in shard order, then every like fact of
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
//!
//! The image path (notices, the likes kept for an image until its owner is known, and the
//! erasure of a deleted image) is in `images.rs`; the likes path in `likes.rs`. Image events
//! go first, so the batch's likes of an image deleted in it find its tombstone. A deletion
//! costs an UpdateItem, and a Query and BatchWriteItems (25 items each) per page of its kept
//! likes and of its owner's inbox.

mod images;
mod likes;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use snapglow::batch::{
    BatchContext, BatchFunction, BatchReport, Classify, Deadline, ErrorClass, Screened,
    StreamRecord, first_failure_response, screen, settle_record,
};
use snapglow::contracts::{ContractError, SocialEvent};
use snapglow::quarantine::Quarantine;
use snapglow::table::TableError;
use std::collections::{BTreeSet, HashMap};

use crate::table::{ImageNotice, Noticed, NotificationStore, NotificationsTable, Owner, Written};
use images::notice_of;
use likes::like_fact;

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

/// The function: DynamoDB's [`NotificationsTable`] unless a test hands it another
/// [`NotificationStore`].
///
/// HAZARD: it keeps no owners between batches. An image's owner item can become a tombstone
/// (the image deleted) in a batch another execution environment handles, and Lambda hands one
/// environment batches of any shard: a remembered owner would let a late like of a deleted
/// photo notify again. Each batch reads its images' owners (one read per 100 images).
pub struct Notifier<T = NotificationsTable> {
    pub table: T,
    pub like_window_ms: i64,
}

impl<T: NotificationStore> Notifier<T> {
    pub fn new(table: T, like_window_ms: i64) -> Self {
        Self {
            table,
            like_window_ms,
        }
    }

    /// The owners of `images` as the table holds them now, in one read per 100.
    async fn owners_of(
        &self,
        images: &BTreeSet<String>,
        deadline: &Deadline,
    ) -> Result<HashMap<String, Owner>, TableError> {
        let images: Vec<String> = images.iter().cloned().collect();
        self.table.owners_of(&images, deadline).await
    }
}

impl<T: NotificationStore> BatchFunction<KinesisEvent> for Notifier<T> {
    type Response = KinesisEventResponse;

    /// One Kinesis batch; see the module docs. A [`BatchReport::fatal`] error means the
    /// function cannot work (a refused permission).
    async fn handle_batch<Q: Quarantine>(
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
            let settled = match &envelope.event {
                SocialEvent::ImageDeleted(deleted) => {
                    let erased = self.erase_image(deleted, &ctx.deadline);
                    settle_record(ctx, &records[*index], erased, &mut report).await
                }
                _ => {
                    let handled = self.notify_image(envelope, prewritten, &ctx.deadline);
                    settle_record(ctx, &records[*index], handled, &mut report).await
                }
            };
            if !settled {
                unfinished.insert(*index);
            }
        }
        self.notify_likes(ctx, &records, facts, &mut report, &mut unfinished)
            .await;
        let (requests, units) = self.table.spend();
        report.requests = (requests - requests_before) as usize;
        tracing::info!(
            function = ctx.function,
            records = records.len(),
            dynamodb_requests = report.requests,
            write_units = units - units_before,
            "notifier batch spend"
        );
        report.log(ctx.function, "kinesis");
        let first = unfinished.first().map(|&index| &records[index]);
        (first_failure_response(first), report)
    }
}

#[cfg(test)]
mod tests;
