//! Creating the template's resources in the emulator, in dependency order, from their typed
//! properties. Idempotent: what exists is kept, so a second `up` changes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::clients::{ACCOUNT_ID, AwsError, AwsResult, LocalClients, REGION};
use super::iam::{self, AccessKey, IamError};
use super::{FunctionInfo, LocalResource, StackError, StackInfo};
use crate::template::model::{
    BucketProperties, FunctionProperties, QueueProperties, StreamProperties, TableProperties,
};
use crate::template::{Lookup, Properties, Template, scalar_text};

/// What `Ref` and `GetAtt` mean in the local stack, from the resources created so far.
struct Resolving<'a> {
    stack_name: &'a str,
    parameters: &'a BTreeMap<String, serde_json::Value>,
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
            "StreamArn" => r.stream_arn.clone(),
            "QueueName" | "Name" => r.name.clone(),
            "QueueUrl" => r.url.clone(),
            // Names of what the local stack does not serve (CloudFront, a bucket's website
            // endpoint): recognisable placeholders, so that references resolve.
            "RegionalDomainName" if r.kind == "AWS::S3::Bucket" => r
                .name
                .as_ref()
                .map(|n| format!("{n}.s3.{REGION}.amazonaws.com")),
            "DomainName" | "Id" => r.name.as_ref().map(|n| match attribute {
                "Id" => n.clone(),
                _ => format!("{}.local.invalid", n.to_lowercase()),
            }),
            _ => None,
        }
    }
}

/// Creates (or finds) every emulated resource of the template in the emulator at
/// `endpoint_url`; resources whose `Condition` is false are left out, as CloudFormation does.
/// Each role becomes an IAM user holding its policies, and IAM is enforced from then on
/// (stack/iam.rs): the returned stack names the admin key the tooling uses.
pub async fn deploy(
    template: &Template,
    stack_name: &str,
    endpoint_url: &str,
) -> Result<StackInfo, StackError> {
    let enforcement = |source: IamError| StackError::Iam { source };
    iam::enforce(endpoint_url, false)
        .await
        .map_err(enforcement)?;
    let clients = LocalClients::new(endpoint_url, &AccessKey::unchecked()).await;
    let mut resources: BTreeMap<String, LocalResource> = BTreeMap::new();
    for logical_id in template.creation_order()? {
        let resource = &template.resources[&logical_id];
        let properties = {
            let lookup = Resolving {
                stack_name,
                parameters: &template.parameters,
                resources: &resources,
            };
            if !template.includes(resource, &lookup)? {
                continue;
            }
            template.properties(resource, &lookup)?
        };
        let mut created = create(
            &clients,
            endpoint_url,
            stack_name,
            &logical_id,
            &resource.kind,
            properties,
        )
        .await
        .map_err(|source| StackError::Create {
            logical_id: logical_id.clone(),
            kind: resource.kind.clone(),
            source,
        })?;
        // A function runs with its role's user (a role is created before the functions that
        // name it: `Role: !GetAtt` is a dependency).
        if let Some(function) = created.function.as_mut() {
            function.access_key = function
                .role
                .as_deref()
                .and_then(|arn| resources.values().find(|r| r.arn.as_deref() == Some(arn)))
                .and_then(|role| role.access_key.clone());
        }
        resources.insert(logical_id, created);
    }
    let admin = iam::user_with_policies(
        endpoint_url,
        &format!("{stack_name}-admin"),
        &[("admin".to_owned(), iam::admin_policy())],
    )
    .await
    .map_err(enforcement)?;
    iam::enforce(endpoint_url, true)
        .await
        .map_err(enforcement)?;
    Ok(StackInfo {
        admin,
        stack_name: stack_name.to_owned(),
        endpoint_url: endpoint_url.to_owned(),
        region: REGION.to_owned(),
        account_id: ACCOUNT_ID.to_owned(),
        emulator_pid: None,
        api_url: None,
        site_url: None,
        resources,
    })
}

/// An ARN, as a resource answers `GetAtt Arn`.
type Arn = String;

/// How creating one resource failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error("{0}")]
    Invalid(String),
}

fn default_name(stack_name: &str, logical_id: &str) -> String {
    format!("{stack_name}-{logical_id}")
}

async fn create(
    clients: &LocalClients,
    endpoint_url: &str,
    stack_name: &str,
    id: &str,
    kind: &str,
    properties: Properties,
) -> Result<LocalResource, CreateError> {
    let mut local = LocalResource {
        kind: kind.to_owned(),
        emulated: true,
        name: None,
        url: None,
        arn: None,
        function: None,
        stream_arn: None,
        http_api: None,
        access_key: None,
        cors_rules: Vec::new(),
    };
    match properties {
        Properties::Queue(props) => {
            let name = props
                .queue_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            local.url = Some(create_queue(clients, &name, &props).await?);
            local.arn = Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"));
            local.name = Some(name);
        }
        Properties::Stream(props) => {
            let name = props
                .name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            create_stream(clients, &name, &props).await?;
            local.arn = Some(format!(
                "arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"
            ));
            local.name = Some(name);
        }
        Properties::Table(props) => {
            let name = props
                .table_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            local.stream_arn = create_table(clients, &name, &props).await?;
            local.arn = Some(format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
            ));
            local.name = Some(name);
        }
        Properties::Bucket(props) => {
            let name = props
                .bucket_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id).to_lowercase());
            create_bucket(clients, &name, &props).await?;
            local.cors_rules = props.cors_configuration.cors_rules.clone();
            local.arn = Some(format!("arn:aws:s3:::{name}"));
            local.name = Some(name);
        }
        Properties::UserPool(props) => {
            let name = props
                .user_pool_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            let pool_id = create_user_pool(clients, &name).await?;
            local.arn = Some(format!(
                "arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{pool_id}"
            ));
            // Ref of a user pool is its id: what the issuer URL and the client name.
            local.name = Some(pool_id);
        }
        Properties::UserPoolClient(props) => {
            let name = props
                .client_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            let client_id = create_user_pool_client(clients, &name, &props).await?;
            local.arn = Some(format!(
                "arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{}/client/{client_id}",
                props.user_pool_id
            ));
            local.name = Some(client_id);
        }
        Properties::HttpApi(props) => {
            // Served by `cargo local run`, not by the emulator.
            let name = default_name(stack_name, id);
            local.arn = Some(format!("arn:aws:apigateway:{REGION}::/apis/{name}"));
            local.name = Some(name);
            local.http_api = Some(props);
            local.emulated = false;
        }
        Properties::Function(props) => {
            let name = props
                .function_name
                .clone()
                .unwrap_or_else(|| default_name(stack_name, id));
            local.arn = Some(format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            ));
            local.name = Some(name);
            local.emulated = false;
            local.function = Some(function_info(props));
        }
        Properties::Role(props) => {
            let name = default_name(stack_name, id);
            let policies: Vec<(String, serde_json::Value)> = props
                .policies
                .iter()
                .map(|p| (p.policy_name.clone(), iam::local_policy(&p.policy_document)))
                .collect();
            local.access_key = Some(iam::user_with_policies(endpoint_url, &name, &policies).await?);
            local.arn = Some(format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"));
            local.name = Some(name);
        }
        Properties::Other => {
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

fn function_info(props: FunctionProperties) -> FunctionInfo {
    FunctionInfo {
        binary: props.binary,
        timeout_seconds: props.timeout,
        memory_mb: props.memory_size,
        log_format: props.logging_config.log_format,
        log_level: props.logging_config.application_log_level,
        environment: props.environment.variables,
        events: props.events,
        role: props.role,
        access_key: None,
    }
}

async fn create_queue(
    clients: &LocalClients,
    name: &str,
    props: &QueueProperties,
) -> Result<String, CreateError> {
    use aws_sdk_sqs::types::QueueAttributeName as Attribute;
    let mut request = clients.sqs.create_queue().queue_name(name);
    let numbers = [
        (Attribute::VisibilityTimeout, props.visibility_timeout),
        (
            Attribute::MessageRetentionPeriod,
            props.message_retention_period,
        ),
        (Attribute::DelaySeconds, props.delay_seconds),
        (Attribute::MaximumMessageSize, props.maximum_message_size),
        (
            Attribute::ReceiveMessageWaitTimeSeconds,
            props.receive_message_wait_time_seconds,
        ),
    ];
    for (attribute, value) in numbers {
        if let Some(value) = value {
            request = request.attributes(attribute, value.to_string());
        }
    }
    let flags = [
        (Attribute::FifoQueue, props.fifo_queue),
        (
            Attribute::ContentBasedDeduplication,
            props.content_based_deduplication,
        ),
    ];
    for (attribute, value) in flags {
        if let Some(value) = value {
            request = request.attributes(attribute, value.to_string());
        }
    }
    if let Some(redrive) = &props.redrive_policy {
        let policy = serde_json::to_string(redrive).expect("a redrive policy serializes");
        request = request.attributes(Attribute::RedrivePolicy, policy);
    }
    let output = request.send().await.aws(|| format!("CreateQueue {name}"))?;
    output
        .queue_url
        .ok_or_else(|| CreateError::Invalid(format!("CreateQueue {name} returned no QueueUrl")))
}

async fn create_stream(
    clients: &LocalClients,
    name: &str,
    props: &StreamProperties,
) -> Result<(), CreateError> {
    let created = clients
        .kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(i32::try_from(props.shard_count).unwrap_or(i32::MAX))
        .send()
        .await;
    match created {
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Err(AwsError::new(format!("CreateStream {name}"), e).into());
        }
        _ => {}
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = clients
            .kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .aws(|| format!("DescribeStreamSummary {name}"))?;
        let active = summary
            .stream_description_summary
            .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CreateError::Invalid(format!(
                "stream {name} did not become ACTIVE within 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_table(
    clients: &LocalClients,
    name: &str,
    props: &TableProperties,
) -> Result<Option<Arn>, CreateError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput,
        ScalarAttributeType, TimeToLiveSpecification,
    };
    let invalid =
        |e: aws_sdk_dynamodb::error::BuildError| CreateError::Invalid(format!("table {name}: {e}"));
    let key_schema = |elements: &[crate::template::model::KeyElement]| -> Result<Vec<KeySchemaElement>, CreateError> {
        elements
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build()
                    .map_err(invalid)
            })
            .collect()
    };
    let projection = |p: &crate::template::model::Projection| {
        Projection::builder()
            .projection_type(ProjectionType::from(p.projection_type.as_str()))
            .build()
    };
    let on_demand = props.billing_mode == "PAY_PER_REQUEST";
    // Local capacity is not metered: any provisioned figure will do.
    let throughput = ProvisionedThroughput::builder()
        .read_capacity_units(5)
        .write_capacity_units(5)
        .build()
        .map_err(invalid)?;
    let mut request = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(props.billing_mode.as_str()))
        .set_key_schema(Some(key_schema(&props.key_schema)?));
    for definition in &props.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&definition.attribute_name)
                .attribute_type(ScalarAttributeType::from(
                    definition.attribute_type.as_str(),
                ))
                .build()
                .map_err(invalid)?,
        );
    }
    for index in &props.local_secondary_indexes {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(projection(&index.projection))
                .build()
                .map_err(invalid)?,
        );
    }
    for index in &props.global_secondary_indexes {
        let mut built = GlobalSecondaryIndex::builder()
            .index_name(&index.index_name)
            .set_key_schema(Some(key_schema(&index.key_schema)?))
            .projection(projection(&index.projection));
        if !on_demand {
            built = built.provisioned_throughput(throughput.clone());
        }
        request = request.global_secondary_indexes(built.build().map_err(invalid)?);
    }
    if !on_demand {
        request = request.provisioned_throughput(throughput);
    }
    if let Some(stream) = &props.stream_specification {
        request = request.stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::from(
                    stream.stream_view_type.as_str(),
                ))
                .build()
                .map_err(invalid)?,
        );
    }
    let existed = match request.send().await {
        Ok(_) => false,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            true
        }
        Err(e) => return Err(AwsError::new(format!("CreateTable {name}"), e).into()),
    };
    let stream_arn = if props.stream_specification.is_some() {
        clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .aws(|| format!("DescribeTable {name}"))?
            .table
            .and_then(|t| t.latest_stream_arn)
    } else {
        None
    };
    if existed {
        return Ok(stream_arn);
    }
    if let Some(ttl) = props
        .time_to_live_specification
        .as_ref()
        .filter(|t| t.enabled)
    {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(&ttl.attribute_name)
            .enabled(true)
            .build()
            .map_err(invalid)?;
        clients
            .dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .aws(|| format!("UpdateTimeToLive {name}"))?;
    }
    Ok(stream_arn)
}

/// Creates (or finds, by name) a user pool; returns its id.
async fn create_user_pool(clients: &LocalClients, name: &str) -> Result<String, CreateError> {
    let listed = clients
        .cognito
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .aws(|| "ListUserPools".to_owned())?;
    if let Some(id) = listed
        .user_pools()
        .iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.id())
    {
        return Ok(id.to_owned());
    }
    // The local pool takes any password: the template's policy is AWS's to enforce.
    let created = clients
        .cognito
        .create_user_pool()
        .pool_name(name)
        .send()
        .await
        .aws(|| format!("CreateUserPool {name}"))?;
    created
        .user_pool
        .and_then(|p| p.id)
        .ok_or_else(|| CreateError::Invalid(format!("CreateUserPool {name} returned no id")))
}

/// Creates (or finds, by name) a pool's app client; returns its id.
async fn create_user_pool_client(
    clients: &LocalClients,
    name: &str,
    props: &crate::template::model::UserPoolClientProperties,
) -> Result<String, CreateError> {
    use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType;
    let pool = &props.user_pool_id;
    let listed = clients
        .cognito
        .list_user_pool_clients()
        .user_pool_id(pool)
        .max_results(60)
        .send()
        .await
        .aws(|| format!("ListUserPoolClients of {pool}"))?;
    if let Some(id) = listed
        .user_pool_clients()
        .iter()
        .find(|c| c.client_name() == Some(name))
        .and_then(|c| c.client_id())
    {
        return Ok(id.to_owned());
    }
    let created = clients
        .cognito
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name(name)
        .generate_secret(props.generate_secret.unwrap_or(false))
        .set_explicit_auth_flows(Some(
            props
                .explicit_auth_flows
                .iter()
                .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
                .collect(),
        ))
        .send()
        .await
        .aws(|| format!("CreateUserPoolClient {name}"))?;
    created
        .user_pool_client
        .and_then(|c| c.client_id)
        .ok_or_else(|| CreateError::Invalid(format!("CreateUserPoolClient {name} returned no id")))
}

async fn create_bucket(
    clients: &LocalClients,
    name: &str,
    props: &BucketProperties,
) -> Result<(), CreateError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    match clients.s3.create_bucket().bucket(name).send().await {
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            return Err(AwsError::new(format!("CreateBucket {name}"), e).into());
        }
        _ => {}
    }
    let configs = &props.notification_configuration.queue_configurations;
    if configs.is_empty() {
        return Ok(());
    }
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
    let mut notification = NotificationConfiguration::builder();
    for config in configs {
        let rules: Vec<FilterRule> = config
            .filter
            .iter()
            .flat_map(|f| &f.s3_key.rules)
            .map(|rule| {
                FilterRule::builder()
                    .name(FilterRuleName::from(rule.name.to_lowercase().as_str()))
                    .value(&rule.value)
                    .build()
            })
            .collect();
        let mut queue = QueueConfiguration::builder()
            .queue_arn(&config.queue)
            .events(Event::from(config.event.as_str()));
        if !rules.is_empty() {
            queue = queue.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        let queue = queue
            .build()
            .map_err(|e| CreateError::Invalid(format!("bucket {name}: {e}")))?;
        notification = notification.queue_configurations(queue);
    }
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(name)
        .notification_configuration(notification.build())
        .send()
        .await
        .aws(|| format!("PutBucketNotificationConfiguration {name}"))?;
    Ok(())
}
