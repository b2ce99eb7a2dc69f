//! A queue, with the template's attributes.

use super::CreateError;
use crate::stack::clients::{AwsResult, LocalClients};
use crate::template::model::QueueProperties;

pub(super) async fn create_queue(
    clients: &LocalClients,
    name: &str,
    props: &QueueProperties,
) -> Result<String, CreateError> {
    use aws_sdk_sqs::types::QueueAttributeName as Attribute;
    let mut request = clients.sqs.create_queue().queue_name(name);
    let numbers = [
        (Attribute::VisibilityTimeout, props.visibility_timeout),
        (
            Attribute::MessageRetentionPeriod,
            props.message_retention_period,
        ),
        (Attribute::DelaySeconds, props.delay_seconds),
        (Attribute::MaximumMessageSize, props.maximum_message_size),
        (
            Attribute::ReceiveMessageWaitTimeSeconds,
            props.receive_message_wait_time_seconds,
        ),
    ];
    for (attribute, value) in numbers {
        if let Some(value) = value {
            request = request.attributes(attribute, value.to_string());
        }
    }
    let flags = [
        (Attribute::FifoQueue, props.fifo_queue),
        (
            Attribute::ContentBasedDeduplication,
            props.content_based_deduplication,
        ),
    ];
    for (attribute, value) in flags {
        if let Some(value) = value {
            request = request.attributes(attribute, value.to_string());
        }
    }
    if let Some(redrive) = &props.redrive_policy {
        let policy = serde_json::to_string(redrive).expect("a redrive policy serializes");
        request = request.attributes(Attribute::RedrivePolicy, policy);
    }
    let output = request.send().await.aws(|| format!("CreateQueue {name}"))?;
    output
        .queue_url
        .ok_or_else(|| CreateError::Invalid(format!("CreateQueue {name} returned no QueueUrl")))
}
