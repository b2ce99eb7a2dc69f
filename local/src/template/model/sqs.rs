//! `AWS::SQS::Queue`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueProperties {
    pub queue_name: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub visibility_timeout: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub message_retention_period: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub delay_seconds: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub maximum_message_size: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub receive_message_wait_time_seconds: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub fifo_queue: Option<bool>,
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub content_based_deduplication: Option<bool>,
    pub redrive_policy: Option<RedrivePolicy>,
}

/// SQS's own spelling: camelCase, unlike every other property.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    #[serde(deserialize_with = "super::lenient::required_number")]
    pub max_receive_count: u64,
}
