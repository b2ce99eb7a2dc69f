//! Reading a queue (the quarantine, a DLQ, the on-failure destination) without consuming it.

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName};
use std::collections::HashMap;

use super::clients::{AwsError, AwsResult, LocalClients};

/// A message's body, as SQS holds it.
pub type MessageBody = String;

/// Every message body on the queue, oldest first. Messages are received (hidden) until the
/// queue answers empty, then made visible again at once: nothing is deleted.
pub async fn peek(clients: &LocalClients, queue_url: &str) -> Result<Vec<MessageBody>, AwsError> {
    Ok(peek_messages(clients, queue_url)
        .await?
        .into_iter()
        .map(|m| m.body)
        .collect())
}

/// A message seen on a queue.
#[derive(Debug, Clone)]
pub struct Peeked {
    pub message_id: String,
    pub body: MessageBody,
}

/// [`peek`], with each message's id.
pub async fn peek_messages(
    clients: &LocalClients,
    queue_url: &str,
) -> Result<Vec<Peeked>, AwsError> {
    let mut seen = receive_all(clients, queue_url).await?;
    release(clients, queue_url, seen.values().map(|m| m.1.as_str())).await?;
    let mut messages: Vec<_> = seen.drain().collect();
    messages.sort_by_key(|(_, (sent, _, _))| *sent);
    Ok(messages
        .into_iter()
        .map(|(message_id, (_, _, body))| Peeked { message_id, body })
        .collect())
}

/// Receives one message by id and keeps it hidden: its body and receipt handle, for a caller
/// that deletes it once done. Every other message is made visible again.
pub async fn take(
    clients: &LocalClients,
    queue_url: &str,
    message_id: &str,
) -> Result<Option<(MessageBody, String)>, AwsError> {
    let mut seen = receive_all(clients, queue_url).await?;
    let wanted = seen.remove(message_id);
    release(clients, queue_url, seen.values().map(|m| m.1.as_str())).await?;
    Ok(wanted.map(|(_, handle, body)| (body, handle)))
}

/// By message id: (sent at, receipt handle, body) of every message, received until the queue
/// answers empty (hidden for 60 s).
async fn receive_all(
    clients: &LocalClients,
    queue_url: &str,
) -> Result<HashMap<String, (u64, String, String)>, AwsError> {
    let mut seen = HashMap::new();
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
            return Ok(seen);
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
}

/// Makes received messages visible again at once.
async fn release(
    clients: &LocalClients,
    queue_url: &str,
    handles: impl Iterator<Item = &str>,
) -> Result<(), AwsError> {
    let handles: Vec<&str> = handles.collect();
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*handle)
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
    Ok(())
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
