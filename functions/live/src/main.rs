//! The `live` function: the WebSocket API's REQUEST authorizer and its routes, one binary
//! (template.yaml's LiveFunction), told apart by the event's shape.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use live::connections::AwsConnections;
use live::gateway::{Incoming, handle};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapglow::telemetry::init();
    let config = live::Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(10),
    ))
    .await;
    let store = AwsConnections {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        table: config.connections_table,
    };
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let incoming: Incoming = serde_json::from_value(event.payload).unwrap_or_default();
        Ok::<_, Error>(handle(store, incoming).await?)
    }))
    .await
}
