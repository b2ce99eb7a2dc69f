// The runtime loop nests the whole resize pipeline's future (decode, render, encode, put, the
// conditional write) inside the batch runner's: its layout takes more than the default 128 levels.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use resize::registry::ImagesTable;
use resize::resizer::Resizer;
use resize::scan::{Classifier, Local, Moderator, Rekognition};
use resize::storage::S3Objects;
use resize::{Backend, Config};
use snapglow::quarantine::SqsQuarantine;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    snapglow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(60),
    ))
    .await;
    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(snapglow::aws::uses_endpoint_override(&sdk))
        .build();
    let resizer = Resizer {
        objects: S3Objects::new(aws_sdk_s3::Client::from_conf(s3)),
        registry: ImagesTable {
            client: aws_sdk_dynamodb::Client::new(&sdk),
            table: config.images_table.clone(),
        },
        renditions_bucket: config.renditions_bucket.clone(),
        specs: config.specs.clone(),
        limits: config.limits,
        moderator: Moderator {
            classifier: match &config.backend {
                Backend::Rekognition => Classifier::Rekognition(Rekognition {
                    client: aws_sdk_rekognition::Client::new(&sdk),
                    min_confidence: config.policy.min_confidence,
                }),
                Backend::Local(path) => Classifier::Local(Local::new(path)),
            },
            policy: config.policy.clone(),
            attempts: config.scan_attempts,
        },
    };
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("resize");
    snapglow::batch::run::<_, SqsEvent, _>(&resizer, &function, config.record_budget, &quarantine)
        .await
}
