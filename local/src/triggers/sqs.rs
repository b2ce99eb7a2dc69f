//! SQS → function, as Lambda's poller does it: receive up to `BatchSize`, invoke, then delete
//! exactly the messages the response acknowledges. A function error, timeout, crash or an
//! invalid partial response deletes nothing: the messages reappear after the queue's
//! visibility timeout, and the queue's own redrive policy moves them to the DLQ after
//! `maxReceiveCount` receives.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

use super::{BatchResult, PollStats, TriggerError, read_response};
use crate::lambda::Invoke;
use crate::stack::clients::{AwsResult, LocalClients, REGION};
use crate::template::model::SqsEvent as SqsSettings;

/// An SQS → function mapping.
pub struct SqsMapping {
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub settings: SqsSettings,
    pub function: Box<dyn Invoke>,
    /// Per acknowledged message: sent to the queue → acknowledged, in ms (end-to-end latency).
    pub latencies_ms: Vec<u64>,
    /// Calls with the function's key (the execution role's grants).
    pub clients: LocalClients,
}

impl SqsMapping {
    /// Receives one batch (if any), invokes, deletes what was acknowledged.
    pub async fn poll_once(&mut self, clients: &LocalClients) -> Result<PollStats, TriggerError> {
        // One receive returns at most 10 messages; Lambda's poller gathers larger batches
        // over several, which a local poll does not need to reproduce.
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.settings.batch_size.clamp(1, 10) as i32)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .aws(|| format!("ReceiveMessage from {}", self.queue_url))
            .map_err(|source| self.aws_error(source))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollStats::default());
        }
        let ids: Vec<String> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default().to_owned())
            .collect();
        // The oldest message's age when handed over (SQS's ApproximateAgeOfOldestMessage).
        let handed_over_ms = chrono::Utc::now().timestamp_millis();
        let oldest_age_ms = messages
            .iter()
            .filter_map(sent_ms)
            .map(|sent| (handed_over_ms - sent).max(0) as u64)
            .max()
            .unwrap_or(0);
        let event = sqs_event(&self.queue_arn, &messages);
        let outcome = self
            .function
            .invoke(serde_json::to_vec(&event).expect("event serializes"))
            .await;
        let result = read_response(&outcome, &ids, self.settings.reports_item_failures());
        let keep: Vec<String> = match &result {
            BatchResult::Success => Vec::new(),
            BatchResult::Partial(failed) => failed.clone(),
            BatchResult::Failed(reason) => {
                tracing::warn!(mapping = %self.name, %reason, "batch failed; its messages reappear after the visibility timeout");
                ids.clone()
            }
        };
        let answered_ms = chrono::Utc::now().timestamp_millis();
        let mut stats = PollStats {
            records: messages.len(),
            delivered: messages.len(),
            max_iterator_age_ms: oldest_age_ms,
            invocations: 1,
            failed_invocations: usize::from(result != BatchResult::Success),
            ..Default::default()
        };
        for message in &messages {
            let id = message.message_id().unwrap_or_default();
            if keep.iter().any(|k| k == id) {
                stats.failed += 1;
                continue;
            }
            clients
                .sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .aws(|| format!("DeleteMessage from {}", self.queue_url))
                .map_err(|source| self.aws_error(source))?;
            stats.acknowledged += 1;
            if let Some(sent) = sent_ms(message) {
                self.latencies_ms.push((answered_ms - sent).max(0) as u64);
            }
        }
        Ok(stats)
    }

    /// Messages still in the queue: visible, or received and not yet deleted (a failed batch
    /// waits out the queue's visibility timeout before it comes back).
    pub async fn in_flight(&self, clients: &LocalClients) -> Result<usize, TriggerError> {
        crate::stack::queues::held(clients, &self.queue_url)
            .await
            .map_err(|source| self.aws_error(source))
    }

    fn aws_error(&self, source: crate::stack::clients::AwsError) -> TriggerError {
        TriggerError::Aws {
            mapping: self.name.clone(),
            source,
        }
    }
}

fn sent_ms(message: &aws_sdk_sqs::types::Message) -> Option<i64> {
    message
        .attributes()?
        .get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()
}

/// The SQS event for messages received from `queue_arn`, as Lambda delivers it.
pub fn sqs_event(queue_arn: &str, messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = Some(m.body().unwrap_or_default().to_owned());
            record.md5_of_body = Some(m.md5_of_body().unwrap_or_default().to_owned());
            // Every attribute value is a string, numbers and timestamps included.
            record.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some(REGION.to_owned());
            record
        })
        .collect();
    event
}
