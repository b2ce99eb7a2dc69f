use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use notifier::Config;
use notifier::Notifier;
use notifier::table::NotificationsTable;
use snapglow::batch::{BatchContext, Deadline};
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
    let function = snapglow::config::function_name("notifier");
    let table = NotificationsTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table,
        config.inbox_retention,
        config.dedup_retention,
    );
    let notifier = Notifier::new(table, config.like_window.as_millis() as i64);
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let (notifier, quarantine, function, budget) = (
        &notifier,
        &quarantine,
        function.as_str(),
        config.record_budget,
    );
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let ctx = BatchContext::new(
                function,
                Deadline::from_epoch_millis(event.context.deadline),
                budget,
                quarantine,
            );
            let (response, report) = notifier.handle_batch(event.payload, &ctx).await;
            // A refused permission fails the invocation, so that the Errors alarm fires.
            match report.fatal {
                Some(fatal) => Err(Error::from(fatal)),
                None => Ok(response),
            }
        },
    ))
    .await
}
