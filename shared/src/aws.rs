//! The AWS SDK configuration every function loads once, at init.

use aws_config::{BehaviorVersion, SdkConfig};

/// Credentials, region and endpoint from the environment. Locally `AWS_ENDPOINT_URL` points
/// every client at the emulator; on Lambda it is unset and the SDK uses the real endpoints.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// True when an endpoint override is set (the local stack). S3 then needs path-style
/// addressing: `http://127.0.0.1:PORT/bucket/key`, since `bucket.127.0.0.1` does not resolve.
pub fn uses_endpoint_override(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some()
}
