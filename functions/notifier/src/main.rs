use aws_lambda_events::event::kinesis::KinesisEvent;
use notifier::Config;
use notifier::Notifier;
use notifier::table::NotificationsTable;
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
    let table = NotificationsTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table,
        config.inbox_retention,
        config.dedup_retention,
    );
    let notifier = Notifier::new(table, config.like_window.as_millis() as i64);
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("notifier");
    snapglow::batch::run::<_, KinesisEvent, _>(
        &notifier,
        &function,
        config.record_budget,
        &quarantine,
    )
    .await
}
