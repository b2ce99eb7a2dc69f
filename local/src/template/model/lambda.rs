//! `AWS::Serverless::Function` (Globals merged in) and the `AWS::IAM::Role` it assumes.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::*;

/// An `AWS::Serverless::Function` with `Globals.Function` merged in.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionProperties {
    /// From the resource's Metadata, not its properties.
    #[serde(skip)]
    pub binary: String,
    pub function_name: Option<String>,
    /// The execution role's ARN (`Role: !GetAtt SomeRole.Arn`).
    pub role: Option<String>,
    /// SAM's default: 3 seconds.
    #[serde(
        default = "super::three",
        deserialize_with = "super::lenient::required_number"
    )]
    pub timeout: u64,
    /// SAM's default: 128 MB.
    #[serde(
        default = "super::one_twenty_eight",
        deserialize_with = "super::lenient::required_number"
    )]
    pub memory_size: u64,
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub logging_config: LoggingConfig,
    #[serde(default)]
    pub events: BTreeMap<String, EventSource>,
}

/// An execution role: its inline policies, intrinsics resolved. The local stack gives the
/// functions that assume it an IAM user holding the same policies (stack/iam.rs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleProperties {
    #[serde(default)]
    pub policies: Vec<InlinePolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    pub policy_name: String,
    pub policy_document: Value,
}

/// Environment variables by name, every value as its text (as Lambda stores them).
pub type Variables = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    #[serde(default, deserialize_with = "super::lenient::text_map")]
    pub variables: Variables,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    /// Lambda's default log format is Text; the application level applies to JSON only.
    #[serde(default = "super::text")]
    pub log_format: String,
    #[serde(default = "super::info")]
    pub application_log_level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            log_format: text(),
            application_log_level: info(),
        }
    }
}
