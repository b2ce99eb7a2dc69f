//! `AWS::Serverless::HttpApi`: its JWT authorizers and CORS.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    #[serde(default = "super::authorization_header")]
    pub identity_source: String,
    pub jwt_configuration: JwtConfiguration,
    /// Scopes every route of this authorizer requires: the token's `scope` (or `scp`) claim
    /// must hold at least one, or API Gateway answers 403.
    #[serde(default)]
    pub authorization_scopes: Vec<String>,
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
    #[serde(default, deserialize_with = "super::lenient::number")]
    pub max_age: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub allow_credentials: Option<bool>,
}
