//! The eraser function: the Lambda runtime around [`eraser::Eraser`].
// The S3 client's futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use aws_lambda_events::event::kinesis::KinesisEvent;
use eraser::store::AwsErasure;
use eraser::{Config, Eraser};
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
    let eraser = Eraser {
        store: AwsErasure {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(snapglow::aws::uses_endpoint_override(&sdk))
                    .build(),
            ),
            images_table: config.images_table,
            uploads_bucket: config.uploads_bucket,
            renditions_bucket: config.renditions_bucket,
        },
    };
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("eraser");
    snapglow::batch::run::<_, KinesisEvent, _>(
        &eraser,
        &function,
        config.record_budget,
        &quarantine,
    )
    .await
}
