//! `AWS::Cognito::UserPool` and `AWS::Cognito::UserPoolClient`.

use serde::Deserialize;

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
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPoolClientProperties {
    pub user_pool_id: String,
    pub client_name: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::boolean")]
    pub generate_secret: Option<bool>,
    #[serde(default)]
    pub explicit_auth_flows: Vec<String>,
}
