use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use relay::Config;
use relay::relay::{KinesisSink, Relay};
use snapglow::quarantine::SqsQuarantine;
use std::time::{Duration, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapglow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(30),
    ))
    .await;
    let relay = Relay {
        function: snapglow::config::function_name("relay"),
        sink: KinesisSink {
            client: aws_sdk_kinesis::Client::new(&sdk),
            stream_name: config.stream_name,
        },
        quarantine: SqsQuarantine::from_env(&sdk)?,
    };
    let relay = &relay;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let (response, report) = relay.handle_batch(event.payload, deadline).await;
        // An unwritable stream or quarantine fails the invocation, so that the Errors alarm
        // fires; the mapping retries the batch from its start.
        match report.fatal {
            Some(fatal) => Err(Error::from(fatal)),
            None => Ok(response),
        }
    }))
    .await
}
