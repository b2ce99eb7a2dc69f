use aws_lambda_events::event::dynamodb::Event;
use relay::Config;
use relay::Relay;
use relay::publish::KinesisSink;
use snapglow::quarantine::SqsQuarantine;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snapglow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        Duration::from_secs(30),
    ))
    .await;
    let relay = Relay {
        sink: KinesisSink {
            client: aws_sdk_kinesis::Client::new(&sdk),
            stream_name: config.stream_name,
        },
    };
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("relay");
    // The batch is one ordered unit of work: no per-record budget.
    snapglow::batch::run::<_, Event, _>(&relay, &function, Duration::ZERO, &quarantine).await
}
