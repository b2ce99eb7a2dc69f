//! `PostToConnection` on the WebSocket API's management endpoint, and how its answers read
//! (from its API reference): `GoneException` (410) is a connection that is closed or was never
//! established; `LimitExceededException` (429) and 5xx are retried by the SDK and then dropped;
//! `PayloadTooLargeException` (413) cannot happen below 128 KB (`push::MAX_MESSAGE_BYTES`);
//! `ForbiddenException` (403) is a role without `execute-api:ManageConnections`.

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::push::{PostError, Posted, Poster};

pub struct AwsPoster {
    pub client: aws_sdk_apigatewaymanagement::Client,
}

impl Poster for AwsPoster {
    /// One PostToConnection (one message billed per 32 KB).
    async fn post(&self, connection_id: &str, data: Vec<u8>) -> Result<Posted, PostError> {
        let sent = (self.client.post_to_connection())
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Posted::Delivered),
            Err(SdkError::ServiceError(e)) if e.err().is_gone_exception() => Ok(Posted::Gone),
            Err(error) => Err(PostError {
                connection: connection_id.to_owned(),
                source: Box::new(error),
            }),
        }
    }
}
