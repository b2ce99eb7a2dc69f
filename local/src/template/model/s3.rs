//! `AWS::S3::Bucket`: CORS rules and notifications to queues.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketProperties {
    pub bucket_name: Option<String>,
    #[serde(default)]
    pub notification_configuration: NotificationConfiguration,
    #[serde(default)]
    pub cors_configuration: BucketCors,
}

/// A bucket's CORS rules: what S3 answers a browser's preflight with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketCors {
    #[serde(default)]
    pub cors_rules: Vec<CorsRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsRule {
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub max_age: Option<u64>,
}

impl CorsRule {
    /// S3's match: the origin and method exactly (or `*`), every requested header allowed
    /// (`*` allows any), case-insensitively.
    pub fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        let any = |list: &[String], value: &str| {
            list.iter()
                .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(value))
        };
        any(&self.allowed_origins, origin)
            && any(&self.allowed_methods, method)
            && headers
                .iter()
                .all(|h| h.is_empty() || any(&self.allowed_headers, h))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationConfiguration {
    #[serde(default)]
    pub queue_configurations: Vec<QueueNotification>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueNotification {
    pub event: String,
    pub queue: String,
    #[serde(default)]
    pub filter: Option<NotificationFilter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationFilter {
    #[serde(rename = "S3Key")]
    pub s3_key: KeyFilter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyFilter {
    pub rules: Vec<FilterRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterRule {
    pub name: String,
    pub value: String,
}
