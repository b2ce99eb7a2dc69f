use aws_lambda_events::event::kinesis::KinesisEvent;
use like_counter::Config;
use like_counter::counter::LikeCounter;
use like_counter::table::LikesTable;
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
    let counter = LikeCounter {
        table: LikesTable::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table,
            config.dedup_retention,
        ),
    };
    let quarantine = SqsQuarantine::from_env(&sdk)?;
    let function = snapglow::config::function_name("like-counter");
    // The whole batch is one unit of work: no per-record budget.
    snapglow::batch::run::<_, KinesisEvent, _>(&counter, &function, Duration::ZERO, &quarantine)
        .await
}
