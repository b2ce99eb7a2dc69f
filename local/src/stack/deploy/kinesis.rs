//! A stream, waited on until it is ACTIVE.

use std::time::{Duration, Instant};

use super::CreateError;
use crate::stack::clients::{AwsError, AwsResult, LocalClients};
use crate::template::model::StreamProperties;

pub(super) async fn create_stream(
    clients: &LocalClients,
    name: &str,
    props: &StreamProperties,
) -> Result<(), CreateError> {
    let created = clients
        .kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(i32::try_from(props.shard_count).unwrap_or(i32::MAX))
        .send()
        .await;
    match created {
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Err(AwsError::new(format!("CreateStream {name}"), e).into());
        }
        _ => {}
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = clients
            .kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .aws(|| format!("DescribeStreamSummary {name}"))?;
        let active = summary
            .stream_description_summary
            .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CreateError::Invalid(format!(
                "stream {name} did not become ACTIVE within 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
