//! The local stack: every resource of template.yaml created in the emulator, and
//! `.local/stack.json`, which names each logical id's local physical name, URL and ARN.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::clients::{ACCOUNT_ID, LocalClients, REGION};
use crate::template::{Lookup, Resource, Template, TemplateError, resolve, scalar_text};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("creating {logical_id} ({kind}) in the emulator failed: {detail}")]
    Create {
        logical_id: String,
        kind: String,
        detail: String,
    },
    #[error("{path}: {detail}; run `cargo local up` first")]
    StackFile { path: String, detail: String },
}

/// `.local/stack.json`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackInfo {
    pub stack_name: String,
    pub endpoint_url: String,
    pub region: String,
    pub account_id: String,
    /// The detached emulator `cargo local up` started, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_pid: Option<u32>,
    pub resources: BTreeMap<String, LocalResource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocalResource {
    #[serde(rename = "type")]
    pub kind: String,
    /// False for what the emulator does not need (IAM, policies, alarms): listed, not created.
    pub emulated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionInfo>,
}

/// What the local Runtime API needs to run a function as Lambda would.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionInfo {
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    pub log_format: String,
    pub log_level: String,
    /// `Environment.Variables`, Globals merged in, intrinsics resolved to local names.
    pub environment: BTreeMap<String, String>,
    /// `Events`, resolved (queue and stream ARNs are local ones).
    pub events: BTreeMap<String, Value>,
}

impl StackInfo {
    pub fn load(path: &Path) -> Result<StackInfo, StackError> {
        let error = |detail: String| StackError::StackFile {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(e.to_string()))
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            path,
            serde_json::to_string_pretty(self).expect("stack info serializes") + "\n",
        )
    }

    pub fn resource(&self, logical_id: &str) -> Option<&LocalResource> {
        self.resources.get(logical_id)
    }

    /// A resource's name (bucket, stream, table, queue name), panicking with a clear message.
    pub fn name_of(&self, logical_id: &str) -> &str {
        self.resource(logical_id)
            .and_then(|r| r.name.as_deref())
            .unwrap_or_else(|| panic!("{logical_id} has no name in the local stack"))
    }

    pub fn url_of(&self, logical_id: &str) -> &str {
        self.resource(logical_id)
            .and_then(|r| r.url.as_deref())
            .unwrap_or_else(|| panic!("{logical_id} has no URL in the local stack"))
    }

    /// The logical id of the function whose cargo binary (folder under `functions/`) is `binary`.
    pub fn function_by_binary(&self, binary: &str) -> Option<(&str, &LocalResource)> {
        self.resources
            .iter()
            .find(|(_, r)| r.function.as_ref().is_some_and(|f| f.binary == binary))
            .map(|(id, r)| (id.as_str(), r))
    }
}

struct Resolving<'a> {
    stack_name: &'a str,
    parameters: &'a BTreeMap<String, Value>,
    resources: &'a BTreeMap<String, LocalResource>,
}

impl Lookup for Resolving<'_> {
    fn parameter(&self, name: &str) -> Option<String> {
        self.parameters.get(name).map(scalar_text)
    }
    fn pseudo(&self, name: &str) -> Option<String> {
        match name {
            "AWS::StackName" => Some(self.stack_name.to_owned()),
            "AWS::Region" => Some(REGION.to_owned()),
            "AWS::AccountId" => Some(ACCOUNT_ID.to_owned()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            _ => None,
        }
    }
    fn reference(&self, logical_id: &str) -> Option<String> {
        let r = self.resources.get(logical_id)?;
        // Ref of a queue is its URL; of everything else, its name.
        if r.kind == "AWS::SQS::Queue" {
            r.url.clone()
        } else {
            r.name.clone()
        }
    }
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String> {
        let r = self.resources.get(logical_id)?;
        match attribute {
            "Arn" => r.arn.clone(),
            "QueueName" | "Name" => r.name.clone(),
            "QueueUrl" => r.url.clone(),
            _ => None,
        }
    }
}

/// The resource types the local stack creates (or, for functions, runs); the others are
/// recorded with a name and an ARN so that references to them resolve.
const EMULATED: [&str; 5] = [
    "AWS::SQS::Queue",
    "AWS::Kinesis::Stream",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::Serverless::Function",
];

/// Creates (or finds) every emulated resource of the template in the emulator at `endpoint_url`.
/// Idempotent: what exists is kept, so a second `up` changes nothing.
pub async fn deploy(
    template: &Template,
    stack_name: &str,
    endpoint_url: &str,
) -> Result<StackInfo, StackError> {
    let clients = LocalClients::new(endpoint_url).await;
    let mut resources: BTreeMap<String, LocalResource> = BTreeMap::new();
    for logical_id in template.creation_order()? {
        let resource = &template.resources[&logical_id];
        let properties = {
            let lookup = Resolving {
                stack_name,
                parameters: &template.parameters,
                resources: &resources,
            };
            if EMULATED.contains(&resource.kind.as_str()) {
                resolve(&merged_properties(template, resource), &lookup, &logical_id)?
            } else {
                // Roles, policies, log groups, alarms, dashboards: nothing here reads their
                // properties, so their intrinsics (conditions included) are left alone.
                Value::Null
            }
        };
        let created = create(&clients, stack_name, resource, &properties)
            .await
            .map_err(|detail| StackError::Create {
                logical_id: logical_id.clone(),
                kind: resource.kind.clone(),
                detail,
            })?;
        resources.insert(logical_id, created);
    }
    Ok(StackInfo {
        stack_name: stack_name.to_owned(),
        endpoint_url: endpoint_url.to_owned(),
        region: REGION.to_owned(),
        account_id: ACCOUNT_ID.to_owned(),
        emulator_pid: None,
        resources,
    })
}

/// A function's properties with `Globals.Function` underneath (environment variables merged).
fn merged_properties(template: &Template, resource: &Resource) -> Value {
    if resource.kind != "AWS::Serverless::Function" {
        return resource.properties.clone();
    }
    // SAM merges maps (Environment.Variables, LoggingConfig, ...) key by key, the function's
    // own value winning; lists and scalars are replaced.
    fn merge(into: &mut Value, own: &Value) {
        match (into, own) {
            (Value::Object(base), Value::Object(overrides)) => {
                for (key, value) in overrides {
                    match base.get_mut(key) {
                        Some(existing) if existing.is_object() && value.is_object() => {
                            merge(existing, value)
                        }
                        _ => {
                            base.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            (into, own) => *into = own.clone(),
        }
    }
    let mut merged = template.globals_function.clone();
    if !merged.is_object() {
        merged = Value::Object(Default::default());
    }
    merge(&mut merged, &resource.properties);
    // Metadata carries the binary name.
    merged["__Metadata"] = resource.metadata.clone();
    merged
}

fn text(properties: &Value, key: &str) -> Option<String> {
    properties
        .get(key)
        .map(scalar_text)
        .filter(|s| !s.is_empty())
}

fn number(properties: &Value, key: &str, default: u64) -> u64 {
    properties
        .get(key)
        .map(scalar_text)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn default_name(stack_name: &str, logical_id: &str) -> String {
    format!("{stack_name}-{logical_id}")
}

async fn create(
    clients: &LocalClients,
    stack_name: &str,
    resource: &Resource,
    props: &Value,
) -> Result<LocalResource, String> {
    let id = &resource.logical_id;
    let mut local = LocalResource {
        kind: resource.kind.clone(),
        emulated: true,
        name: None,
        url: None,
        arn: None,
        function: None,
    };
    match resource.kind.as_str() {
        "AWS::SQS::Queue" => {
            let name = text(props, "QueueName").unwrap_or_else(|| default_name(stack_name, id));
            let url = create_queue(clients, &name, props).await?;
            local.arn = Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"));
            local.name = Some(name);
            local.url = Some(url);
        }
        "AWS::Kinesis::Stream" => {
            let name = text(props, "Name").unwrap_or_else(|| default_name(stack_name, id));
            create_stream(clients, &name, props).await?;
            local.arn = Some(format!(
                "arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"
            ));
            local.name = Some(name);
        }
        "AWS::DynamoDB::Table" => {
            let name = text(props, "TableName").unwrap_or_else(|| default_name(stack_name, id));
            create_table(clients, &name, props).await?;
            local.arn = Some(format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
            ));
            local.name = Some(name);
        }
        "AWS::S3::Bucket" => {
            let name = text(props, "BucketName")
                .unwrap_or_else(|| default_name(stack_name, id).to_lowercase());
            create_bucket(clients, &name, props).await?;
            local.arn = Some(format!("arn:aws:s3:::{name}"));
            local.name = Some(name);
        }
        "AWS::Serverless::Function" => {
            let name = text(props, "FunctionName").unwrap_or_else(|| default_name(stack_name, id));
            local.arn = Some(format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            ));
            local.name = Some(name);
            local.emulated = false;
            local.function = Some(function_info(id, props)?);
        }
        kind => {
            let name = default_name(stack_name, id);
            // A recognisable placeholder: `arn:aws:<service>:<region>:<account>:local/<name>`.
            let service = kind.split("::").nth(1).unwrap_or("unknown").to_lowercase();
            local.arn = Some(format!(
                "arn:aws:{service}:{REGION}:{ACCOUNT_ID}:local/{name}"
            ));
            local.name = Some(name);
            local.emulated = false;
        }
    }
    Ok(local)
}

fn function_info(id: &str, props: &Value) -> Result<FunctionInfo, String> {
    let binary = props
        .pointer("/__Metadata/BuildProperties/Binary")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!("{id} has no Metadata.BuildProperties.Binary naming its cargo binary")
        })?
        .to_owned();
    let environment = props
        .pointer("/Environment/Variables")
        .and_then(Value::as_object)
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect()
        })
        .unwrap_or_default();
    let events = props
        .get("Events")
        .and_then(Value::as_object)
        .map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(FunctionInfo {
        binary,
        timeout_seconds: number(props, "Timeout", 3),
        memory_mb: number(props, "MemorySize", 128),
        log_format: props
            .pointer("/LoggingConfig/LogFormat")
            .map(scalar_text)
            .unwrap_or_else(|| "Text".into()),
        log_level: props
            .pointer("/LoggingConfig/ApplicationLogLevel")
            .map(scalar_text)
            .unwrap_or_else(|| "INFO".into()),
        environment,
        events,
    })
}

fn sdk_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: aws_sdk_sqs::error::SdkError<E, R>,
) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(error).to_string()
}

async fn create_queue(clients: &LocalClients, name: &str, props: &Value) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut request = clients.sqs.create_queue().queue_name(name);
    for key in [
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
    ] {
        if let Some(value) = props.get(key) {
            request = request.attributes(QueueAttributeName::from(key), scalar_text(value));
        }
    }
    if let Some(redrive) = props.get("RedrivePolicy") {
        request = request.attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    }
    let output = request.send().await.map_err(sdk_error)?;
    output
        .queue_url
        .ok_or_else(|| "CreateQueue returned no QueueUrl".to_owned())
}

async fn create_stream(clients: &LocalClients, name: &str, props: &Value) -> Result<(), String> {
    let shards = number(props, "ShardCount", 1) as i32;
    match clients
        .kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error(e)),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = clients
            .kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(sdk_error)?;
        let active = summary
            .stream_description_summary
            .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("stream {name} did not become ACTIVE within 30s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_table(clients: &LocalClients, name: &str, props: &Value) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let key_schema = |value: Option<&Value>| -> Result<Vec<KeySchemaElement>, String> {
        value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(scalar_text(&k["AttributeName"]))
                    .key_type(KeyType::from(scalar_text(&k["KeyType"]).as_str()))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(
            text(props, "BillingMode")
                .unwrap_or_else(|| "PROVISIONED".into())
                .as_str(),
        ))
        .set_key_schema(Some(key_schema(props.get("KeySchema"))?));
    for definition in props
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let built = AttributeDefinition::builder()
            .attribute_name(scalar_text(&definition["AttributeName"]))
            .attribute_type(ScalarAttributeType::from(
                scalar_text(&definition["AttributeType"]).as_str(),
            ))
            .build()
            .map_err(|e| e.to_string())?;
        request = request.attribute_definitions(built);
    }
    for index in props
        .get("LocalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let projection = aws_sdk_dynamodb::types::Projection::builder()
            .projection_type(aws_sdk_dynamodb::types::ProjectionType::from(
                index
                    .pointer("/Projection/ProjectionType")
                    .map(scalar_text)
                    .unwrap_or_else(|| "ALL".into())
                    .as_str(),
            ))
            .build();
        let built = aws_sdk_dynamodb::types::LocalSecondaryIndex::builder()
            .index_name(scalar_text(&index["IndexName"]))
            .set_key_schema(Some(key_schema(index.get("KeySchema"))?))
            .projection(projection)
            .build()
            .map_err(|e| e.to_string())?;
        request = request.local_secondary_indexes(built);
    }
    if text(props, "BillingMode").as_deref() != Some("PAY_PER_REQUEST") {
        request = request.provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(5)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(sdk_error(e)),
    }
    if let Some(ttl) = props
        .get("TimeToLiveSpecification")
        .filter(|t| scalar_text(&t["Enabled"]) == "true")
    {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(scalar_text(&ttl["AttributeName"]))
            .enabled(true)
            .build()
            .map_err(|e| e.to_string())?;
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(sdk_error)?;
    }
    Ok(())
}

async fn create_bucket(clients: &LocalClients, name: &str, props: &Value) -> Result<(), String> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    match clients.s3.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(sdk_error(e)),
    }
    let Some(configs) = props
        .pointer("/NotificationConfiguration/QueueConfigurations")
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    // Writing the configuration makes S3 send another s3:TestEvent: only on first creation.
    // (moto answers an empty configuration with a root element the SDK cannot parse: that
    // error means "none configured yet".)
    let configured = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(name)
        .send()
        .await;
    if configured.is_ok_and(|c| !c.queue_configurations().is_empty()) {
        return Ok(());
    }
    {
        let mut notification = NotificationConfiguration::builder();
        for config in configs {
            let rules: Vec<FilterRule> = config
                .pointer("/Filter/S3Key/Rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|rule| {
                    FilterRule::builder()
                        .name(FilterRuleName::from(
                            scalar_text(&rule["Name"]).to_lowercase().as_str(),
                        ))
                        .value(scalar_text(&rule["Value"]))
                        .build()
                })
                .collect();
            let mut queue = QueueConfiguration::builder()
                .queue_arn(scalar_text(&config["Queue"]))
                .events(Event::from(scalar_text(&config["Event"]).as_str()));
            if !rules.is_empty() {
                queue = queue.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            notification =
                notification.queue_configurations(queue.build().map_err(|e| e.to_string())?);
        }
        clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(name)
            .notification_configuration(notification.build())
            .send()
            .await
            .map_err(sdk_error)?;
    }
    Ok(())
}
