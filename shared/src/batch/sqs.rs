use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::future::Future;

use super::record::{Settled, settle};
use super::{BatchContext, BatchReport, Classify, Outcome};
use crate::quarantine::{Quarantine, RecordSource};

/// One SQS message as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    pub queue_arn: String,
    /// `SentTimestamp`: when the message entered the queue (epoch ms).
    pub sent_at_ms: Option<i64>,
}

/// Processes the messages one after another and answers with the messageIds to redeliver.
///
/// Standard queues are unordered, so a failure does not stop the batch. On a FIFO queue
/// (`.fifo`) the first failure stops it and every message after it is reported too:
/// messages not listed are deleted, and a later message of the failed group would overtake it.
pub async fn process_sqs<Q, F, Fut, E>(
    event: SqsEvent,
    ctx: &BatchContext<'_, Q>,
    mut handler: F,
) -> (SqsBatchResponse, BatchReport)
where
    Q: Quarantine,
    F: FnMut(QueueMessage) -> Fut,
    Fut: Future<Output = Result<Outcome, E>>,
    E: Classify,
{
    let mut response = SqsBatchResponse::default();
    let mut report = BatchReport::default();
    let mut stop = false;
    for record in event.records {
        let queue_arn = record.event_source_arn.clone().unwrap_or_default();
        let message = QueueMessage {
            message_id: record.message_id.clone().unwrap_or_default(),
            body: record.body.clone().unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            queue_arn: queue_arn.clone(),
            sent_at_ms: record
                .attributes
                .get("SentTimestamp")
                .and_then(|t| t.parse().ok()),
        };
        let fifo = queue_arn.ends_with(".fifo");
        let failed = if stop || ctx.deadline.remaining() < ctx.record_budget {
            report.not_started += 1;
            stop = true;
            true
        } else {
            let source = RecordSource::Sqs {
                queue_arn: queue_arn.clone(),
                message_id: message.message_id.clone(),
            };
            let raw = message.body.clone().into_bytes();
            matches!(
                settle(
                    ctx,
                    &source,
                    &raw,
                    message.sent_at_ms,
                    handler(message.clone()),
                    &mut report
                )
                .await,
                Settled::Failed
            )
        };
        if failed {
            if message.message_id.is_empty() {
                // Answering with item failures would delete every message not named.
                report.fatal = Some(format!(
                    "a failed message in queue {queue_arn} has no messageId, so it cannot be reported alone; failing the whole batch so that nothing is deleted"
                ));
                report.log(ctx.function, "sqs");
                return (response, report);
            }
            response.add_failure(message.message_id);
            stop |= fifo;
        }
    }
    report.log(ctx.function, "sqs");
    (response, report)
}
