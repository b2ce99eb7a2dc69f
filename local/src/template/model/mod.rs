//! The resource kinds and properties the local stack acts on, as typed structs. A property
//! holds what CloudFormation would hand the resource after its intrinsics are resolved, and
//! SAM's and the services' defaults live here, next to the field, once.
//!
//! CloudFormation accepts a number or a boolean written as a string (`BatchSize: "10"`,
//! `Enabled: "true"`): every numeric and boolean field goes through [`lenient`], so that no
//! property is stricter or looser than another.
//!
//! One file per service; this one holds what they share: [`Properties`], the lenient
//! scalars and SAM's default values.

mod cognito;
mod dynamodb;
mod events;
mod http_api;
mod kinesis;
mod lambda;
mod s3;
mod sqs;

pub use cognito::*;
pub use dynamodb::*;
pub use events::*;
pub use http_api::*;
pub use kinesis::*;
pub use lambda::*;
pub use s3::*;
pub use sqs::*;

use serde_json::Value;

use super::intrinsics::scalar_text;

/// A resource's resolved properties, by kind. Kinds the local stack does not create (roles,
/// policies, alarms, log groups…) are `Other`: listed with a name and an ARN, nothing more.
#[derive(Debug, Clone)]
pub enum Properties {
    Queue(QueueProperties),
    Stream(StreamProperties),
    Table(TableProperties),
    Bucket(BucketProperties),
    Function(FunctionProperties),
    UserPool(UserPoolProperties),
    UserPoolClient(UserPoolClientProperties),
    HttpApi(HttpApiProperties),
    Role(RoleProperties),
    Other,
}

impl Properties {
    /// The typed view of `kind`'s resolved properties; `binary` is the function's
    /// `Metadata.BuildProperties.Binary`.
    pub fn parse(
        kind: &str,
        logical_id: &str,
        resolved: Value,
        metadata: &Value,
    ) -> Result<Properties, super::TemplateError> {
        let typed = |error: serde_json::Error| super::TemplateError::Property {
            logical_id: logical_id.to_owned(),
            kind: kind.to_owned(),
            source: error,
        };
        Ok(match kind {
            "AWS::SQS::Queue" => {
                Properties::Queue(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::Kinesis::Stream" => {
                Properties::Stream(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::DynamoDB::Table" => {
                Properties::Table(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::S3::Bucket" => {
                Properties::Bucket(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::Cognito::UserPool" => {
                Properties::UserPool(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::Cognito::UserPoolClient" => {
                Properties::UserPoolClient(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::Serverless::HttpApi" => {
                Properties::HttpApi(serde_json::from_value(resolved).map_err(typed)?)
            }
            "AWS::IAM::Role" => Properties::Role(serde_json::from_value(resolved).map_err(typed)?),
            "AWS::Serverless::Function" => {
                let mut function: FunctionProperties =
                    serde_json::from_value(resolved).map_err(typed)?;
                function.binary = metadata
                    .pointer("/BuildProperties/Binary")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        super::TemplateError::Invalid(format!(
                            "{logical_id} has no Metadata.BuildProperties.Binary naming its cargo binary; add the binary's name (its folder under functions/)"
                        ))
                    })?;
                Properties::Function(function)
            }
            _ => Properties::Other,
        })
    }

    /// Whether the local stack creates (or, for functions, runs) this kind.
    pub fn emulated(kind: &str) -> bool {
        matches!(
            kind,
            "AWS::SQS::Queue"
                | "AWS::Kinesis::Stream"
                | "AWS::DynamoDB::Table"
                | "AWS::S3::Bucket"
                | "AWS::Serverless::Function"
                | "AWS::Cognito::UserPool"
                | "AWS::Cognito::UserPoolClient"
                | "AWS::Serverless::HttpApi"
                | "AWS::IAM::Role"
        )
    }
}

pub(super) fn one() -> u64 {
    1
}

pub(super) fn three() -> u64 {
    3
}

pub(super) fn ten() -> u64 {
    10
}

pub(super) fn one_hundred() -> u64 {
    100
}

pub(super) fn one_twenty_eight() -> u64 {
    128
}

pub(super) fn provisioned() -> String {
    "PROVISIONED".into()
}

pub(super) fn all() -> String {
    "ALL".into()
}

pub(super) fn text() -> String {
    "Text".into()
}

pub(super) fn info() -> String {
    "INFO".into()
}

pub(super) fn authorization_header() -> String {
    "$request.header.Authorization".into()
}

/// CloudFormation's scalars: a number or boolean may arrive as a JSON string.
pub(super) mod lenient {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;
    use std::collections::BTreeMap;

    use super::scalar_text;

    fn parse_number<E: Error>(value: &Value) -> Result<i64, E> {
        scalar_text(value)
            .parse::<i64>()
            .map_err(|_| E::custom(format!("expected a whole number, found {value}")))
    }

    pub fn required_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = parse_number(&Value::deserialize(d)?)?;
        u64::try_from(n)
            .map_err(|_| D::Error::custom(format!("expected a number of 0 or more, found {n}")))
    }

    /// A stack file writes an absent value as `null`: read it back as absent.
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            value => required_number(value).map(Some).map_err(D::Error::custom),
        }
    }

    /// A limit where `-1` means "none".
    pub fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let value = Value::deserialize(d)?;
        if value.is_null() {
            return Ok(None);
        }
        match parse_number(&value)? {
            -1 => Ok(None),
            n => u64::try_from(n).map(Some).map_err(|_| {
                D::Error::custom(format!(
                    "expected -1 (no limit) or a number of 0 or more, found {n}"
                ))
            }),
        }
    }

    pub fn required_boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(D::Error::custom(format!(
                "expected true or false, found {other}"
            ))),
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            value => required_boolean(value).map(Some).map_err(D::Error::custom),
        }
    }

    /// Environment variables: every value becomes its text, as Lambda stores them.
    pub fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<super::Variables, D::Error> {
        let map = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (k, scalar_text(&v))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_booleans_may_be_written_as_strings_everywhere() {
        // Prepare: the same Kinesis event, once with numbers, once with strings
        let typed = json!({ "Stream": "arn:s", "StartingPosition": "TRIM_HORIZON", "BatchSize": 50, "MaximumRetryAttempts": 5, "BisectBatchOnFunctionError": true });
        let texts = json!({ "Stream": "arn:s", "StartingPosition": "TRIM_HORIZON", "BatchSize": "50", "MaximumRetryAttempts": "5", "BisectBatchOnFunctionError": "true" });

        // Act
        let a: KinesisEvent = serde_json::from_value(typed).unwrap();
        let b: KinesisEvent = serde_json::from_value(texts).unwrap();

        // Assess
        assert_eq!(a, b);
        assert_eq!((a.batch_size, a.maximum_retry_attempts), (50, Some(5)));
    }

    #[test]
    fn an_event_written_to_the_stack_file_reads_back_the_same() {
        let event: EventSource = serde_json::from_value(
            json!({ "Type": "DynamoDB", "Properties": { "Stream": "arn:s", "StartingPosition": "TRIM_HORIZON", "MaximumRecordAgeInSeconds": -1 } }),
        )
        .unwrap();
        let again: EventSource =
            serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn lambdas_defaults_apply_where_the_template_is_silent() {
        let kinesis: KinesisEvent =
            serde_json::from_value(json!({ "Stream": "arn:s", "StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": -1 })).unwrap();
        assert_eq!(kinesis.batch_size, 100);
        assert_eq!(
            kinesis.maximum_retry_attempts, None,
            "-1 and absent both mean: no limit"
        );
        assert_eq!(kinesis.maximum_record_age_in_seconds, None);
        assert!(!kinesis.starts_at_trim_horizon());
        let sqs: SqsEvent = serde_json::from_value(json!({ "Queue": "arn:q" })).unwrap();
        assert_eq!(sqs.batch_size, 10);
        assert!(!sqs.reports_item_failures());
        let function: FunctionProperties = serde_json::from_value(json!({})).unwrap();
        assert_eq!((function.timeout, function.memory_size), (3, 128));
        assert_eq!(function.logging_config.log_format, "Text");
    }

    #[test]
    fn a_malformed_property_names_the_resource() {
        let error = Properties::parse(
            "AWS::Kinesis::Stream",
            "Events",
            json!({ "ShardCount": "two" }),
            &Value::Null,
        )
        .unwrap_err();
        let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            text.contains("Events (AWS::Kinesis::Stream)") && text.contains("two"),
            "{text}"
        );
    }

    #[test]
    fn event_kinds_not_run_locally_are_kept_as_unsupported() {
        let event: EventSource = serde_json::from_value(
            json!({ "Type": "Schedule", "Properties": { "Schedule": "rate(1 minute)" } }),
        )
        .unwrap();
        assert_eq!(event, EventSource::Unsupported("Schedule".into()));
    }
}
