use api::Config;
use api::handlers::Api;
use api::http::{ApiRequest, correlation_id};
use api::store::{AwsStore, RequestCounter};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, service_fn};

/// lambda_http's request (payload format 2.0) in the handler's plain terms.
fn plain(request: Request) -> ApiRequest {
    let (claims, request_id) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => (
            context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| jwt.claims.clone())
                .unwrap_or_default(),
            context.request_id.clone().unwrap_or_default(),
        ),
        _ => (Default::default(), String::new()),
    };
    let sub = claims.get("sub").cloned();
    let username = claims.get("username").cloned();
    let token_use = claims.get("token_use").cloned();
    let header = request
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok());
    let correlation_id = correlation_id(header, &request_id);
    let deadline_ms = request
        .lambda_context_ref()
        .and_then(|context| i64::try_from(context.deadline).ok());
    let query = request
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    ApiRequest {
        method: request.method().as_str().to_owned(),
        path: request.raw_http_path().to_owned(),
        query,
        sub,
        username,
        token_use,
        correlation_id,
        body: request.body().to_vec(),
        deadline_ms,
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    snapglow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = snapglow::aws::load_sdk_config(snapglow::aws::CallTimeouts::within(
        // template.yaml's Timeout for this function
        std::time::Duration::from_secs(10),
    ))
    .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let api = Api {
        store: AwsStore {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(snapglow::aws::uses_endpoint_override(&sdk))
                    .build(),
            ),
            images_table: config.images_table.clone(),
            requests: RequestCounter::new(dynamodb.clone(), &config.images_table),
            likes: like_counter::table::LikeCounts::new(dynamodb.clone(), &config.likes_table),
            notifications: notifier::table::InboxReader::new(
                dynamodb.clone(),
                &config.notifications_table,
            ),
            connections_table: config.connections_table.clone(),
            pool: config.user_pool_id.clone().map(|id| api::store::UserPool {
                client: aws_sdk_cognitoidentityprovider::Client::new(&sdk),
                id,
            }),
            dynamodb,
            uploads_bucket: config.uploads_bucket.clone(),
            renditions_bucket: config.renditions_bucket.clone(),
            upload_url_ttl: config.upload_url_ttl,
            rendition_url_ttl: config.rendition_url_ttl,
        },
        limits: config.limits,
        upload_url_ttl_seconds: config.upload_url_ttl.as_secs(),
        live_url: config.live_url.clone(),
    };
    let api = &api;
    let function = snapglow::config::function_name("api");
    let function = function.as_str();
    lambda_http::run(service_fn(move |request: Request| async move {
        let started = std::time::Instant::now();
        let response = api.handle(plain(request)).await;
        let class = |hundred: u16| f64::from(u8::from(response.status / 100 == hundred));
        snapglow::telemetry::emit_metrics(
            function,
            &[
                (
                    "Latency",
                    "Milliseconds",
                    started.elapsed().as_secs_f64() * 1000.0,
                ),
                ("Responses4xx", "Count", class(4)),
                ("Responses5xx", "Count", class(5)),
            ],
        );
        let mut builder = Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name, value);
        }
        Ok::<_, Error>(builder.body(Body::from(response.body))?)
    }))
    .await
}
