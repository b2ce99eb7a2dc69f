//! Putting events on `image-social-events`: the one producer path, used by resize and by the
//! local likes producer (`cargo local like`), so every producer writes the same JSON.

use crate::contracts::Envelope;
use aws_sdk_kinesis::primitives::Blob;
use std::future::Future;

#[derive(Debug, thiserror::Error)]
#[error(
    "could not put {event_type} event {event_id} on stream {stream}: {detail}; Kinesis throttling and 5xx are retried by redelivery, a missing stream means STREAM_NAME is wrong"
)]
pub struct PublishError {
    pub stream: String,
    pub event_type: &'static str,
    pub event_id: uuid::Uuid,
    pub detail: String,
}

/// Where a producer puts its events. [`StreamPublisher`] is the Kinesis stream.
pub trait EventPublisher {
    /// Puts one event; returns where it landed (the sequence number).
    fn publish(&self, envelope: &Envelope) -> impl Future<Output = Result<String, PublishError>>;
}

/// The `image-social-events` Kinesis stream.
#[derive(Clone)]
pub struct StreamPublisher {
    client: aws_sdk_kinesis::Client,
    stream_name: String,
}

impl StreamPublisher {
    pub fn new(client: aws_sdk_kinesis::Client, stream_name: impl Into<String>) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
        }
    }

    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    /// Puts one event with the image id as partition key; returns its sequence number.
    ///
    /// A retry after an ambiguous failure may put the record twice (Kinesis has no idempotent
    /// put): that is why the event id, not the sequence number, is what consumers deduplicate on.
    pub async fn publish(&self, envelope: &Envelope) -> Result<String, PublishError> {
        let output = self
            .client
            .put_record()
            .stream_name(&self.stream_name)
            .partition_key(envelope.partition_key())
            .data(Blob::new(envelope.to_json()))
            .send()
            .await
            .map_err(|e| PublishError {
                stream: self.stream_name.clone(),
                event_type: envelope.event.type_name(),
                event_id: envelope.event_id,
                detail: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(output.sequence_number)
    }
}

impl EventPublisher for StreamPublisher {
    fn publish(&self, envelope: &Envelope) -> impl Future<Output = Result<String, PublishError>> {
        // The inherent method (callers without the trait in scope use it directly).
        StreamPublisher::publish(self, envelope)
    }
}
