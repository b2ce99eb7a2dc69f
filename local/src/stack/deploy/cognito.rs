//! A user pool and its app client, found by name when they exist.

use super::CreateError;
use crate::stack::clients::{AwsResult, LocalClients};

/// Creates (or finds, by name) a user pool; returns its id.
pub(super) async fn create_user_pool(
    clients: &LocalClients,
    name: &str,
) -> Result<String, CreateError> {
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
pub(super) async fn create_user_pool_client(
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
