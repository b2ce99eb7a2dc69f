//! The resource kinds and properties the local stack acts on, as typed structs. A property
//! holds what CloudFormation would hand the resource after its intrinsics are resolved, and
//! SAM's and the services' defaults live here, next to the field, once.
//!
//! CloudFormation accepts a number or a boolean written as a string (`BatchSize: "10"`,
//! `Enabled: "true"`): every numeric and boolean field goes through [`lenient`], so that no
//! property is stricter or looser than another.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueProperties {
    pub queue_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub visibility_timeout: Option<u64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub message_retention_period: Option<u64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub delay_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub maximum_message_size: Option<u64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub receive_message_wait_time_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub fifo_queue: Option<bool>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub content_based_deduplication: Option<bool>,
    pub redrive_policy: Option<RedrivePolicy>,
}

/// SQS's own spelling: camelCase, unlike every other property.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    #[serde(deserialize_with = "lenient::required_number")]
    pub max_receive_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamProperties {
    pub name: Option<String>,
    /// Kinesis's default for a provisioned stream is one shard.
    #[serde(default = "one", deserialize_with = "lenient::required_number")]
    pub shard_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableProperties {
    pub table_name: Option<String>,
    /// CloudFormation's default is PROVISIONED.
    #[serde(default = "provisioned")]
    pub billing_mode: String,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub attribute_definitions: Vec<AttributeDefinition>,
    #[serde(default)]
    pub local_secondary_indexes: Vec<SecondaryIndex>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<SecondaryIndex>,
    pub time_to_live_specification: Option<TimeToLive>,
    pub stream_specification: Option<StreamSpecification>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES.
    pub stream_view_type: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPoolProperties {
    pub user_pool_name: Option<String>,
    #[serde(default)]
    pub schema: Vec<SchemaAttribute>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchemaAttribute {
    pub name: String,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPoolClientProperties {
    pub user_pool_id: String,
    pub client_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub generate_secret: Option<bool>,
    #[serde(default)]
    pub explicit_auth_flows: Vec<String>,
}

/// An `AWS::Serverless::HttpApi`: what the local API server needs to answer as API Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpApiProperties {
    #[serde(default)]
    pub auth: Option<HttpApiAuth>,
    #[serde(default)]
    pub cors_configuration: Option<Cors>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpApiAuth {
    pub default_authorizer: Option<String>,
    #[serde(default)]
    pub authorizers: BTreeMap<String, JwtAuthorizer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JwtAuthorizer {
    #[serde(default = "authorization_header")]
    pub identity_source: String,
    pub jwt_configuration: JwtConfiguration,
}

/// SAM spells these two in lower case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtConfiguration {
    pub issuer: String,
    #[serde(default)]
    pub audience: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub max_age: Option<u64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub allow_credentials: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecondaryIndex {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub projection: Projection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    #[serde(default = "all")]
    pub projection_type: String,
}

impl Default for Projection {
    fn default() -> Self {
        Projection {
            projection_type: all(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    pub attribute_name: String,
    #[serde(deserialize_with = "lenient::required_boolean")]
    pub enabled: bool,
}

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
    #[serde(default, deserialize_with = "lenient::number")]
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
    #[serde(default = "three", deserialize_with = "lenient::required_number")]
    pub timeout: u64,
    /// SAM's default: 128 MB.
    #[serde(
        default = "one_twenty_eight",
        deserialize_with = "lenient::required_number"
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
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub variables: Variables,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    /// Lambda's default log format is Text; the application level applies to JSON only.
    #[serde(default = "text")]
    pub log_format: String,
    #[serde(default = "info")]
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
    #[serde(default = "ten", deserialize_with = "lenient::required_number")]
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
    #[serde(default = "one_hundred", deserialize_with = "lenient::required_number")]
    pub batch_size: u64,
    /// `-1` (Lambda's default) retries until the record expires: `None` here.
    #[serde(default, deserialize_with = "lenient::limit")]
    pub maximum_retry_attempts: Option<u64>,
    /// `-1` (Lambda's default) never gives a record up for its age: `None` here.
    #[serde(default, deserialize_with = "lenient::limit")]
    pub maximum_record_age_in_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub bisect_batch_on_function_error: Option<bool>,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    #[serde(default)]
    pub destination_config: Option<DestinationConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DynamoDbEvent {
    /// The poller's settings, the same as Kinesis's (`Stream` is the table's stream ARN).
    #[serde(flatten)]
    pub poll: KinesisEvent,
    #[serde(default)]
    pub filter_criteria: Option<FilterCriteria>,
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

fn authorization_header() -> String {
    "$request.header.Authorization".into()
}

fn one() -> u64 {
    1
}
fn three() -> u64 {
    3
}
fn ten() -> u64 {
    10
}
fn one_hundred() -> u64 {
    100
}
fn one_twenty_eight() -> u64 {
    128
}
fn provisioned() -> String {
    "PROVISIONED".into()
}
fn all() -> String {
    "ALL".into()
}
fn text() -> String {
    "Text".into()
}
fn info() -> String {
    "INFO".into()
}

/// CloudFormation's scalars: a number or boolean may arrive as a JSON string.
mod lenient {
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
