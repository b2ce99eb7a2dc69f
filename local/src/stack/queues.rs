//! Reading a queue (the quarantine, a DLQ, the on-failure destination) without consuming it.

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName};
use std::collections::BTreeMap;

use super::clients::{AwsError, AwsResult, LocalClients};

/// A message's body, as SQS holds it.
pub type MessageBody = String;

/// Every message body on the queue, oldest first. Messages are received (hidden) until the
/// queue answers empty, then made visible again at once: nothing is deleted.
pub async fn peek(clients: &LocalClients, queue_url: &str) -> Result<Vec<MessageBody>, AwsError> {
    let mut seen: BTreeMap<String, (u64, String, String)> = BTreeMap::new();
    loop {
        let output = clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .aws(|| format!("ReceiveMessage from {queue_url}"))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let sent = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let id = message.message_id.unwrap_or_default();
            seen.insert(
                id,
                (
                    sent,
                    message.receipt_handle.unwrap_or_default(),
                    message.body.unwrap_or_default(),
                ),
            );
        }
    }
    let handles: Vec<_> = seen
        .iter()
        .map(|(id, (_, handle, _))| (id.clone(), handle.clone()))
        .collect();
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (_, handle))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and handle set")
            })
            .collect();
        clients
            .sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .aws(|| format!("ChangeMessageVisibilityBatch on {queue_url}"))?;
    }
    let mut bodies: Vec<_> = seen.into_values().collect();
    bodies.sort_by_key(|(sent, _, _)| *sent);
    Ok(bodies.into_iter().map(|(_, _, body)| body).collect())
}

/// Messages on a queue, visible or received and not yet deleted (SQS's approximate counts).
pub async fn held(clients: &LocalClients, queue_url: &str) -> Result<usize, AwsError> {
    use aws_sdk_sqs::types::QueueAttributeName as Attribute;
    let wanted = [
        Attribute::ApproximateNumberOfMessages,
        Attribute::ApproximateNumberOfMessagesNotVisible,
    ];
    let output = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .set_attribute_names(Some(wanted.to_vec()))
        .send()
        .await
        .aws(|| format!("GetQueueAttributes of {queue_url}"))?;
    Ok(wanted
        .iter()
        .filter_map(|a| output.attributes()?.get(a)?.parse::<usize>().ok())
        .sum())
}
