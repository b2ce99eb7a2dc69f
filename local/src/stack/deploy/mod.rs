//! Creating the template's resources in the emulator, in dependency order, from their typed
//! properties. Idempotent: what exists is kept, so a second `up` changes nothing.

use std::collections::BTreeMap;

use super::clients::{ACCOUNT_ID, AwsError, LocalClients, REGION};
use super::iam::{self, AccessKey, IamError};
use super::{FunctionInfo, LocalResource, ResourceKind, StackError, StackInfo};
use crate::template::model::FunctionProperties;
use crate::template::{Lookup, Properties, Template, scalar_text};

mod cognito;
mod dynamodb;
mod kinesis;
mod s3;
mod sqs;

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
        Some(r.url().unwrap_or(&r.name).to_owned())
    }
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String> {
        let r = self.resources.get(logical_id)?;
        let name = &r.name;
        match attribute {
            "Arn" => Some(r.arn.clone()),
            "StreamArn" => r.stream_arn().map(str::to_owned),
            "QueueName" | "Name" => Some(name.clone()),
            "QueueUrl" => r.url().map(str::to_owned),
            // Names of what the local stack does not serve (CloudFront, a bucket's website
            // endpoint): recognisable placeholders, so that references resolve.
            "RegionalDomainName" if matches!(r.kind, ResourceKind::Bucket { .. }) => {
                Some(format!("{name}.s3.{REGION}.amazonaws.com"))
            }
            "Id" => Some(name.clone()),
            "DomainName" => Some(format!("{}.local.invalid", name.to_lowercase())),
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
        if let ResourceKind::Function(function) = &mut created.kind {
            function.access_key = (function.role.as_deref())
                .and_then(|arn| resources.values().find(|r| r.arn == arn))
                .and_then(|role| role.access_key().cloned());
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

/// An ARN of the local account: `arn:aws:{service}:{region}:{account}:{resource}`, where S3
/// names neither region nor account, IAM no region, API Gateway no account.
fn arn(service: &str, resource: &str) -> String {
    let (region, account) = match service {
        "s3" => ("", ""),
        "iam" => ("", ACCOUNT_ID),
        "apigateway" => (REGION, ""),
        _ => (REGION, ACCOUNT_ID),
    };
    format!("arn:aws:{service}:{region}:{account}:{resource}")
}

/// One resource, created in the emulator (or found there, by name) when it is one the
/// emulator holds. A name the template does not give is `{stack}-{logical id}`, as
/// CloudFormation's generated names start.
async fn create(
    clients: &LocalClients,
    endpoint_url: &str,
    stack_name: &str,
    id: &str,
    kind: &str,
    properties: Properties,
) -> Result<LocalResource, CreateError> {
    let generated = format!("{stack_name}-{id}");
    let named = |given: &Option<String>| given.clone().unwrap_or_else(|| generated.clone());
    let resource =
        |arn: String, name: String, kind: ResourceKind| LocalResource { name, arn, kind };
    Ok(match properties {
        Properties::Queue(props) => {
            let name = named(&props.queue_name);
            let url = sqs::create_queue(clients, &name, &props).await?;
            resource(arn("sqs", &name), name, ResourceKind::Queue { url })
        }
        Properties::Stream(props) => {
            let name = named(&props.name);
            kinesis::create_stream(clients, &name, &props).await?;
            resource(
                arn("kinesis", &format!("stream/{name}")),
                name,
                ResourceKind::Stream,
            )
        }
        Properties::Table(props) => {
            let name = named(&props.table_name);
            let stream_arn = dynamodb::create_table(clients, &name, &props).await?;
            let arn = arn("dynamodb", &format!("table/{name}"));
            resource(arn, name, ResourceKind::Table { stream_arn })
        }
        Properties::Bucket(props) => {
            // Bucket names are lowercase.
            let name = props
                .bucket_name
                .clone()
                .unwrap_or_else(|| generated.to_lowercase());
            s3::create_bucket(clients, &name, &props).await?;
            let cors_rules = props.cors_configuration.cors_rules.clone();
            resource(arn("s3", &name), name, ResourceKind::Bucket { cors_rules })
        }
        Properties::UserPool(props) => {
            let pool_id = cognito::create_user_pool(clients, &named(&props.user_pool_name)).await?;
            // Ref of a user pool is its id: what the issuer URL and the client name.
            let arn = arn("cognito-idp", &format!("userpool/{pool_id}"));
            resource(arn, pool_id, ResourceKind::UserPool)
        }
        Properties::UserPoolClient(props) => {
            let name = named(&props.client_name);
            let client_id = cognito::create_user_pool_client(clients, &name, &props).await?;
            let pool = &props.user_pool_id;
            let arn = arn(
                "cognito-idp",
                &format!("userpool/{pool}/client/{client_id}"),
            );
            resource(arn, client_id, ResourceKind::UserPoolClient)
        }
        Properties::HttpApi(props) => {
            // Served by `cargo local run`, not by the emulator.
            let arn = arn("apigateway", &format!("/apis/{generated}"));
            resource(arn, generated, ResourceKind::HttpApi(props))
        }
        Properties::Function(props) => {
            let name = named(&props.function_name);
            let arn = arn("lambda", &format!("function:{name}"));
            resource(arn, name, ResourceKind::Function(function_info(props)))
        }
        Properties::Role(props) => {
            let policies: Vec<(String, serde_json::Value)> = (props.policies.iter())
                .map(|p| (p.policy_name.clone(), iam::local_policy(&p.policy_document)))
                .collect();
            let access_key = iam::user_with_policies(endpoint_url, &generated, &policies).await?;
            let arn = arn("iam", &format!("role/{generated}"));
            resource(arn, generated, ResourceKind::Role { access_key })
        }
        Properties::Other => {
            // A recognisable placeholder: `arn:aws:<service>:<region>:<account>:local/<name>`.
            let service = kind.split("::").nth(1).unwrap_or("unknown").to_lowercase();
            let arn = arn(&service, &format!("local/{generated}"));
            let type_name = kind.to_owned();
            resource(arn, generated, ResourceKind::Other { type_name })
        }
    })
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
