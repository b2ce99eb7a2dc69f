use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use resize::Config;
use resize::registry::ImagesTable;
use resize::resizer::Resizer;
use resize::storage::S3Objects;
use snapglow::batch::{BatchContext, Deadline};
use snapglow::quarantine::SqsQuarantine;

#[tokio::main]
async fn main() -> Result<(), Error> {
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
    };
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("resize");
    let (resizer, quarantine, function, budget) = (
        &resizer,
        &quarantine,
        function.as_str(),
        config.record_budget,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let ctx = BatchContext::new(
            function,
            Deadline::from_epoch_millis(event.context.deadline),
            budget,
            quarantine,
        );
        let (response, report) = resizer.handle_batch(event.payload, &ctx).await?;
        // A missing or refused quarantine fails the invocation, so that the Errors alarm
        // fires; the messages come back (and are never acknowledged unquarantined).
        match report.fatal {
            Some(fatal) => Err(Error::from(fatal)),
            None => Ok(response),
        }
    }))
    .await
}
