//! A function's `Events`: SQS, Kinesis, DynamoDB streams and HTTP API routes, with their
//! SAM defaults and the event source mapping's failure handling.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A function's `Events` entry: what invokes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "Type", content = "Properties")]
pub enum EventSource {
    #[serde(rename = "SQS")]
    Sqs(SqsEvent),
    Kinesis(KinesisEvent),
    /// A DynamoDB table's stream: the same poller semantics as Kinesis, plus event filtering.
    DynamoDB(DynamoDbEvent),
    HttpApi(HttpApiEvent),
    /// Kinds the local stack does not run (schedules, S3 events straight to a function…).
    Unsupported(String),
}

impl<'de> Deserialize<'de> for EventSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Tagged {
            #[serde(rename = "Type")]
            kind: String,
            #[serde(default)]
            properties: Value,
        }
        let tagged = Tagged::deserialize(d)?;
        let context =
            |e: serde_json::Error| D::Error::custom(format!("{} event: {e}", tagged.kind));
        Ok(match tagged.kind.as_str() {
            "SQS" => EventSource::Sqs(
                serde_json::from_value(tagged.properties.clone()).map_err(context)?,
            ),
            "Kinesis" => EventSource::Kinesis(
                serde_json::from_value(tagged.properties.clone()).map_err(context)?,
            ),
            "DynamoDB" => EventSource::DynamoDB(
                serde_json::from_value(tagged.properties.clone()).map_err(context)?,
            ),
            "HttpApi" => EventSource::HttpApi(
                serde_json::from_value(tagged.properties.clone()).map_err(context)?,
            ),
            _ => EventSource::Unsupported(tagged.kind),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqsEvent {
    /// The queue's ARN.
    pub queue: String,
    /// Lambda's default for SQS: 10.
    #[serde(
        default = "super::ten",
        deserialize_with = "super::lenient::required_number"
    )]
    pub batch_size: u64,
    /// Without `ReportBatchItemFailures`, Lambda ignores a partial batch response: the whole
    /// batch succeeds, its failed messages included, and they are deleted.
    #[serde(default)]
    pub function_response_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KinesisEvent {
    /// The stream's ARN.
    pub stream: String,
    /// TRIM_HORIZON, LATEST or AT_TIMESTAMP (required by SAM).
    pub starting_position: String,
    /// Lambda's default for Kinesis: 100.
    #[serde(
        default = "super::one_hundred",
        deserialize_with = "super::lenient::required_number"
    )]
    pub batch_size: u64,
    /// `-1` (Lambda's default) retries until the record expires: `None` here.
    #[serde(default, deserialize_with = "super::lenient::limit")]
    pub maximum_retry_attempts: Option<u64>,
    /// `-1` (Lambda's default) never gives a record up for its age: `None` here.
    #[serde(default, deserialize_with = "super::lenient::limit")]
    pub maximum_record_age_in_seconds: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub bisect_batch_on_function_error: Option<bool>,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    #[serde(default)]
    pub destination_config: Option<DestinationConfig>,
    /// Lambda's event filtering: records no pattern matches are dropped before any invocation.
    #[serde(default)]
    pub filter_criteria: Option<FilterCriteria>,
}

impl KinesisEvent {
    /// The filter patterns, parsed (none: every record).
    pub fn filter_patterns(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        (self.filter_criteria.iter())
            .flat_map(|c| &c.filters)
            .map(|f| serde_json::from_str(&f.pattern))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DynamoDbEvent {
    /// The poller's settings, the same as Kinesis's (`Stream` is the table's stream ARN), and
    /// its filter criteria.
    #[serde(flatten)]
    pub poll: KinesisEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteria {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    /// A JSON event pattern, as text.
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpApiEvent {
    /// `Ref` of the HttpApi resource.
    #[serde(default)]
    pub api_id: Option<String>,
    pub path: String,
    pub method: String,
    /// Per route: `{"Authorizer": "NONE"}` opts out of the default authorizer.
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfig {
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OnFailure {
    /// The destination's ARN (an SQS queue or SNS topic).
    pub destination: String,
}

impl SqsEvent {
    pub fn reports_item_failures(&self) -> bool {
        reports_item_failures(&self.function_response_types)
    }
}

impl KinesisEvent {
    pub fn reports_item_failures(&self) -> bool {
        reports_item_failures(&self.function_response_types)
    }
    pub fn starts_at_trim_horizon(&self) -> bool {
        self.starting_position != "LATEST"
    }
    pub fn on_failure_arn(&self) -> Option<&str> {
        self.destination_config
            .as_ref()
            .map(|d| d.on_failure.destination.as_str())
    }
}

fn reports_item_failures(types: &[String]) -> bool {
    types.iter().any(|t| t == "ReportBatchItemFailures")
}
