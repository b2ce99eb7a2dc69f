//! `AWS::Kinesis::Stream`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamProperties {
    pub name: Option<String>,
    /// Kinesis's default for a provisioned stream is one shard.
    #[serde(
        default = "super::one",
        deserialize_with = "super::lenient::required_number"
    )]
    pub shard_count: u64,
}
