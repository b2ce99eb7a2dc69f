//! AWS SDK clients pointed at the emulator, the same crates the functions use.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;

use super::StackInfo;
use super::iam::AccessKey;

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT_ID: &str = "123456789012";

#[derive(Clone)]
pub struct LocalClients {
    pub config: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub dynamodb_streams: aws_sdk_dynamodbstreams::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
}

impl LocalClients {
    /// Clients calling with `key` (IAM is enforced once a stack is deployed: stack/iam.rs).
    pub async fn new(endpoint_url: &str, key: &AccessKey) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint_url)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                &key.access_key_id,
                &key.secret_access_key,
                None,
                None,
                "snapglow-local",
            ))
            .load()
            .await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&config),
            kinesis: aws_sdk_kinesis::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            dynamodb_streams: aws_sdk_dynamodbstreams::Client::new(&config),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&config),
            config,
        }
    }

    /// The stack's admin clients: what the CLI, the tests and the benchmarks use.
    pub async fn admin(stack: &StackInfo) -> Self {
        LocalClients::new(&stack.endpoint_url, &stack.admin).await
    }

    /// An image's item in the images table `table`, read consistently (empty when there is
    /// none): what the demo and the tests read an image's status, scan and event from.
    pub async fn image_item(
        &self,
        table: &str,
        image_id: &str,
    ) -> Result<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, AwsError>
    {
        use aws_sdk_dynamodb::types::AttributeValue;
        let found = (self.dynamodb.get_item())
            .table_name(table)
            .key("pk", AttributeValue::S(format!("IMAGE#{image_id}")))
            .key("sk", AttributeValue::S("IMAGE".into()))
            .consistent_read(true)
            .send()
            .await
            .aws(|| format!("GetItem of image {image_id} in {table}"))?;
        Ok(found.item.unwrap_or_default())
    }
}

/// The environment a process needs to reach the emulator as if it were AWS, calling with `key`.
pub fn aws_environment(endpoint_url: &str, key: &AccessKey) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint_url),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", &key.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &key.secret_access_key),
        // Credentials come from the environment: never probe EC2 instance metadata.
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An AWS call against the local stack that failed; the SDK's error is its cause (print
/// the chain, e.g. anyhow's `{:#}` or [`crate::logging::chain`], to see the service's message).
#[derive(Debug, thiserror::Error)]
#[error("{action} failed")]
pub struct AwsError {
    pub action: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl AwsError {
    pub fn new(action: String, error: impl std::error::Error + Send + Sync + 'static) -> AwsError {
        AwsError {
            action,
            source: Box::new(error),
        }
    }
}

/// `.aws(|| "what was being done")` on any SDK result.
pub trait AwsResult<T> {
    fn aws(self, action: impl FnOnce() -> String) -> Result<T, AwsError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> AwsResult<T> for Result<T, E> {
    fn aws(self, action: impl FnOnce() -> String) -> Result<T, AwsError> {
        self.map_err(|error| AwsError::new(action(), error))
    }
}
