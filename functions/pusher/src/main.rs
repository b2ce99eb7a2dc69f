//! The `pusher` function: the notifications table's stream to each user's open WebSocket
//! connections (template.yaml's PusherFunction).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use live::connections::AwsConnections;
use live::poster::AwsPoster;

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapglow::telemetry::init();
    let config = live::Config::from_env()?;
    let api_config = api::Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(30),
    ))
    .await;
    let management = config
        .management_url
        .ok_or("LIVE_MANAGEMENT_URL is not set: the pusher needs the WebSocket API's stage URL")?;
    let poster = AwsPoster {
        client: aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
                .endpoint_url(management)
                .build(),
        ),
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let connections = AwsConnections {
        dynamodb: dynamodb.clone(),
        table: config.connections_table,
    };
    // The API's own views: what a push says is what GET /me/notifications shows.
    let composer = api::handlers::Api {
        store: api::store::AwsStore {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(snapglow::aws::uses_endpoint_override(&sdk))
                    .build(),
            ),
            images_table: api_config.images_table.clone(),
            requests: api::store::RequestCounter::new(dynamodb.clone(), &api_config.images_table),
            likes: like_counter::table::LikeCounts::new(dynamodb.clone(), &api_config.likes_table),
            notifications: notifier::table::InboxReader::new(
                dynamodb.clone(),
                &api_config.notifications_table,
            ),
            connections_table: None,
            pool: None,
            dynamodb,
            uploads_bucket: api_config.uploads_bucket.clone(),
            renditions_bucket: api_config.renditions_bucket.clone(),
            upload_url_ttl: api_config.upload_url_ttl,
            rendition_url_ttl: api_config.rendition_url_ttl,
        },
        limits: api_config.limits,
        upload_url_ttl_seconds: api_config.upload_url_ttl.as_secs(),
        live_url: None,
    };
    let (composer, connections, poster) = (&composer, &connections, &poster);
    let function = snapglow::config::function_name("pusher");
    let function = function.as_str();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let now_s = snapglow::contracts::Timestamp::now().millis() / 1000;
        let records = &event.payload.records;
        let report = live::push::push(composer, connections, poster, records, now_s).await;
        snapglow::telemetry::emit_metrics(
            function,
            &[
                ("RecordsProcessed", "Count", records.len() as f64),
                ("PushesDelivered", "Count", report.delivered as f64),
                ("PushesDropped", "Count", report.failed as f64),
                ("ConnectionsGone", "Count", report.gone as f64),
            ],
        );
        tracing::info!(?report, "pushed");
        let mut response = DynamoDbEventResponse::default();
        if let Some(from) = report.retry_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(from);
            response.batch_item_failures.push(failure);
        }
        Ok::<_, Error>(response)
    }))
    .await
}
