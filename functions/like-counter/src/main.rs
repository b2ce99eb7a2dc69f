use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use like_counter::Config;
use like_counter::counter::LikeCounter;
use like_counter::table::LikesTable;
use snapglow::batch::Deadline;
use snapglow::quarantine::SqsQuarantine;

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapglow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(30),
    ))
    .await;
    let counter = LikeCounter {
        function: snapglow::config::function_name("like-counter"),
        table: LikesTable::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table,
            config.dedup_retention,
        ),
        quarantine: SqsQuarantine::from_env(&sdk)?,
    };
    let counter = &counter;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let (response, report) = counter
                .handle_batch(
                    event.payload,
                    Deadline::from_epoch_millis(event.context.deadline),
                )
                .await;
            // A refused permission fails the invocation: the Errors alarm says so at once,
            // and the batch is retried whole (every write in it is idempotent).
            match report.fatal {
                Some(fatal) => Err(Error::from(fatal)),
                None => Ok(response),
            }
        },
    ))
    .await
}
