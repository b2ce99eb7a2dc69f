//! The local stack: the emulator, every resource of template.yaml created in it, and
//! `.local/stack.json`, which names each logical id's local physical name, URL and ARN.

pub mod clients;
pub mod cognito_endpoint;
pub mod deploy;
pub mod emulator;
pub mod fresh;
pub mod iam;
pub mod presigned;
pub mod project;
pub mod queues;
pub mod redrive;
pub mod replay;
pub mod users;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::template::TemplateError;
use crate::template::model::EventSource;

pub use deploy::deploy;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("creating {logical_id} ({kind}) in the emulator failed")]
    Create {
        logical_id: String,
        kind: String,
        #[source]
        source: deploy::CreateError,
    },
    #[error("IAM in the emulator")]
    Iam {
        #[source]
        source: iam::IamError,
    },
    #[error("the local stack's file {path} cannot be read; run `cargo local up` first")]
    StackFile {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("writing the local stack's file {path}")]
    Save {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `.local/stack.json`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackInfo {
    pub stack_name: String,
    pub endpoint_url: String,
    pub region: String,
    pub account_id: String,
    /// The key of `{stack}-admin`, allowed everything: what the CLI, tests and benchmarks use
    /// (the emulator enforces IAM once the stack is deployed).
    pub admin: iam::AccessKey,
    /// Where `cargo local run` serves the template's HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Where `cargo local run` serves the web client (the stack's AllowedOrigin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
    /// The detached emulator `cargo local up` started, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_pid: Option<u32>,
    pub resources: BTreeMap<String, LocalResource>,
}

/// One resource of the template in the local stack: its physical name (`Ref` of most
/// resources; a pool's or client's id), its ARN (`GetAtt Arn`), and what its kind adds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocalResource {
    pub name: String,
    pub arn: String,
    #[serde(flatten)]
    pub kind: ResourceKind,
}

/// What each kind of resource adds to its name and ARN.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ResourceKind {
    #[serde(rename = "AWS::SQS::Queue")]
    Queue { url: String },
    #[serde(rename = "AWS::Kinesis::Stream")]
    Stream,
    #[serde(rename = "AWS::DynamoDB::Table")]
    Table {
        /// The table's stream (`GetAtt StreamArn`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_arn: Option<String>,
    },
    #[serde(rename = "AWS::S3::Bucket")]
    Bucket {
        /// S3 answers browsers with these; stack/presigned.rs does here.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cors_rules: Vec<crate::template::model::CorsRule>,
    },
    #[serde(rename = "AWS::Cognito::UserPool")]
    UserPool,
    #[serde(rename = "AWS::Cognito::UserPoolClient")]
    UserPoolClient,
    /// Served by `cargo local run`, not by the emulator: its authorizers and CORS, resolved.
    #[serde(rename = "AWS::Serverless::HttpApi")]
    HttpApi(crate::template::model::HttpApiProperties),
    /// Run by the local Runtime API, not by the emulator.
    #[serde(rename = "AWS::Serverless::Function")]
    Function(FunctionInfo),
    /// An IAM user holding the role's policies (stack/iam.rs).
    #[serde(rename = "AWS::IAM::Role")]
    Role { access_key: iam::AccessKey },
    /// What the emulator does not need (policies, alarms, CloudFront): listed, not created.
    #[serde(untagged)]
    Other {
        #[serde(rename = "type")]
        type_name: String,
    },
}

impl ResourceKind {
    /// The template's type of the resource.
    pub fn type_name(&self) -> &str {
        match self {
            ResourceKind::Queue { .. } => "AWS::SQS::Queue",
            ResourceKind::Stream => "AWS::Kinesis::Stream",
            ResourceKind::Table { .. } => "AWS::DynamoDB::Table",
            ResourceKind::Bucket { .. } => "AWS::S3::Bucket",
            ResourceKind::UserPool => "AWS::Cognito::UserPool",
            ResourceKind::UserPoolClient => "AWS::Cognito::UserPoolClient",
            ResourceKind::HttpApi(_) => "AWS::Serverless::HttpApi",
            ResourceKind::Function(_) => "AWS::Serverless::Function",
            ResourceKind::Role { .. } => "AWS::IAM::Role",
            ResourceKind::Other { type_name } => type_name,
        }
    }
}

impl LocalResource {
    /// Whether the emulator holds it (the HTTP API and the functions run beside it; other
    /// kinds are only listed).
    pub fn emulated(&self) -> bool {
        !matches!(
            self.kind,
            ResourceKind::HttpApi(_) | ResourceKind::Function(_) | ResourceKind::Other { .. }
        )
    }

    pub fn function(&self) -> Option<&FunctionInfo> {
        match &self.kind {
            ResourceKind::Function(function) => Some(function),
            _ => None,
        }
    }

    /// A queue's URL (`Ref` of a queue).
    pub fn url(&self) -> Option<&str> {
        match &self.kind {
            ResourceKind::Queue { url } => Some(url),
            _ => None,
        }
    }

    pub fn stream_arn(&self) -> Option<&str> {
        match &self.kind {
            ResourceKind::Table { stream_arn } => stream_arn.as_deref(),
            _ => None,
        }
    }

    pub fn http_api(&self) -> Option<&crate::template::model::HttpApiProperties> {
        match &self.kind {
            ResourceKind::HttpApi(api) => Some(api),
            _ => None,
        }
    }

    /// A role's IAM user key.
    pub fn access_key(&self) -> Option<&iam::AccessKey> {
        match &self.kind {
            ResourceKind::Role { access_key } => Some(access_key),
            _ => None,
        }
    }
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
    pub environment: crate::template::model::Variables,
    /// `Events`, resolved (queue and stream ARNs are local ones).
    pub events: BTreeMap<String, EventSource>,
    /// The execution role's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role's user key: the function and its mappings call AWS with it. Without a role
    /// (SAM would generate one with managed policies) the function uses the admin key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<iam::AccessKey>,
}

impl FunctionInfo {
    /// The key this function (and its event source mappings) calls AWS with.
    pub fn key<'a>(&'a self, stack: &'a StackInfo) -> &'a iam::AccessKey {
        self.access_key.as_ref().unwrap_or(&stack.admin)
    }
}

impl StackInfo {
    pub fn load(path: &Path) -> Result<StackInfo, StackError> {
        let error = |source: Box<dyn std::error::Error + Send + Sync>| StackError::StackFile {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.into()))?;
        serde_json::from_str(&text).map_err(|e| error(e.into()))
    }

    pub fn save(&self, path: &Path) -> Result<(), StackError> {
        let text = serde_json::to_string_pretty(self).expect("stack info serializes") + "\n";
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text))
            .map_err(|source| StackError::Save {
                path: path.display().to_string(),
                source,
            })
    }

    pub fn resource(&self, logical_id: &str) -> Option<&LocalResource> {
        self.resources.get(logical_id)
    }

    /// A resource's name (bucket, stream, table, queue name), panicking with a clear message.
    pub fn name_of(&self, logical_id: &str) -> &str {
        self.resource(logical_id)
            .map(|r| r.name.as_str())
            .unwrap_or_else(|| panic!("{logical_id} is not in the local stack"))
    }

    pub fn arn_of(&self, logical_id: &str) -> &str {
        self.resource(logical_id)
            .map(|r| r.arn.as_str())
            .unwrap_or_else(|| panic!("{logical_id} is not in the local stack"))
    }

    /// The resource whose ARN is `arn` (event sources and destinations name ARNs).
    pub fn by_arn(&self, arn: &str) -> Option<&LocalResource> {
        self.resources.values().find(|r| r.arn == arn)
    }

    /// Where `cargo local run` serves the HTTP API: the recorded port, else 3001.
    pub fn api_port(&self) -> u16 {
        self.api_url
            .as_deref()
            .and_then(port_of)
            .unwrap_or(LocalPorts::default().api)
    }

    /// Where `cargo local run` serves the web client: the recorded port, else 3000 (the
    /// template's default AllowedOrigin).
    pub fn site_port(&self) -> u16 {
        self.site_url
            .as_deref()
            .and_then(port_of)
            .unwrap_or(LocalPorts::default().site)
    }

    /// The cargo binaries of the template's functions.
    pub fn binaries(&self) -> Vec<String> {
        self.resources
            .values()
            .filter_map(|r| r.function().map(|f| f.binary.clone()))
            .collect()
    }

    /// How long the stream consumers remember an event (their `DEDUP_RETENTION_HOURS`, the
    /// template's `DedupRetentionHours`): the shortest of them, 14 days if none says.
    pub fn dedup_retention(&self) -> std::time::Duration {
        let hours = self
            .resources
            .values()
            .filter_map(LocalResource::function)
            .filter_map(|f| {
                f.environment
                    .get("DEDUP_RETENTION_HOURS")?
                    .parse::<u64>()
                    .ok()
            })
            .min()
            .unwrap_or(14 * 24);
        std::time::Duration::from_secs(hours * 3600)
    }

    pub fn url_of(&self, logical_id: &str) -> &str {
        self.resource(logical_id)
            .and_then(LocalResource::url)
            .unwrap_or_else(|| panic!("{logical_id} has no URL in the local stack"))
    }

    /// The logical id of the function whose cargo binary (folder under `functions/`) is `binary`.
    pub fn function_by_binary(&self, binary: &str) -> Option<(&str, &LocalResource)> {
        self.resources
            .iter()
            .find(|(_, r)| r.function().is_some_and(|f| f.binary == binary))
            .map(|(id, r)| (id.as_str(), r))
    }
}

/// The loopback ports the local front door uses: the HTTP API's and the web client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPorts {
    pub api: u16,
    pub site: u16,
}

impl Default for LocalPorts {
    /// The site on 3000, the template's default AllowedOrigin; the API beside it.
    fn default() -> Self {
        LocalPorts {
            api: 3001,
            site: 3000,
        }
    }
}

impl LocalPorts {
    pub fn new(api: u16, site: u16) -> Self {
        LocalPorts { api, site }
    }

    /// The site's origin: what CORS must allow.
    pub fn site_origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.site)
    }

    /// template.yaml of the checkout at `root` as the local stack deploys it: its web client
    /// is the site on these ports (`AllowedOrigin`), as a deploy for a site elsewhere sets it.
    pub fn template(&self, root: &Path) -> Result<crate::template::Template, TemplateError> {
        let mut template = crate::template::Template::load(&project::template_path(root))?;
        template
            .parameters
            .insert("AllowedOrigin".into(), self.site_origin().into());
        Ok(template)
    }
}

/// The port of an `http://127.0.0.1:PORT` URL.
pub fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_resource_reads_back_from_the_stack_file_as_it_was_written() {
        // Prepare: one resource of each kind, as `.local/stack.json` holds them
        let resource = |kind: ResourceKind| LocalResource {
            name: "snapglow-Thing".into(),
            arn: "arn:aws:svc:us-east-1:123456789012:thing".into(),
            kind,
        };
        let all = [
            ResourceKind::Queue {
                url: "http://127.0.0.1:5000/123456789012/q".into(),
            },
            ResourceKind::Stream,
            ResourceKind::Table {
                stream_arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1".into()),
            },
            ResourceKind::Bucket { cors_rules: vec![] },
            ResourceKind::UserPool,
            ResourceKind::UserPoolClient,
            ResourceKind::Role {
                access_key: iam::AccessKey::unchecked(),
            },
            ResourceKind::Other {
                type_name: "AWS::CloudWatch::Alarm".into(),
            },
        ];
        for kind in all {
            let written = resource(kind);

            // Act
            let text = serde_json::to_string(&written).unwrap();
            let read: LocalResource = serde_json::from_str(&text).unwrap();

            // Assess: the same resource, its template type under "type"
            assert_eq!(read, written, "{text}");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["type"], written.kind.type_name(), "{text}");
        }
    }
}
