//! Users of the template's Cognito pool in the emulator: created on first use, signed in
//! with the app client's USER_PASSWORD_AUTH flow, as the CLI, the demo and the tests need.

use super::StackInfo;
use super::clients::{AwsError, AwsResult, LocalClients};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the local stack has no {0}; run `cargo local up` with a template that declares one")]
    Missing(&'static str),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("signing in {0} returned no access token")]
    NoToken(String),
}

/// Every local user's password: local pools hold demo users only.
fn password(username: &str) -> String {
    format!("Local-{username}-Passw0rd!")
}

/// The names the demo's likers (`user00` to `user19`) gave at sign-up.
const LIKER_NAMES: [&str; 20] = [
    "Ana Lima",
    "Ben Carter",
    "Chloé Martin",
    "Dev Patel",
    "Eun-ji Park",
    "Farah Haddad",
    "Gabriel Silva",
    "Hana Sato",
    "Ivan Petrov",
    "Jade Wilson",
    "Kofi Mensah",
    "Lena Fischer",
    "Mateo Rossi",
    "Nia Johnson",
    "Omar Aziz",
    "Priya Nair",
    "Quinn Murphy",
    "Rosa García",
    "Sami Virtanen",
    "Tom Becker",
];

/// The names the demo users gave at sign-up (the pool's standard `name` attribute), which the
/// API seeds their profiles with; other local users (the tests' dave, fan7…) give none.
pub fn signup_name(username: &str) -> Option<&'static str> {
    match username {
        "alice" => Some("Alice Moreau"),
        "bob" => Some("Bob Okafor"),
        "carol" => Some("Carol Nguyen"),
        liker => {
            let n: usize = liker.strip_prefix("user")?.parse().ok()?;
            LIKER_NAMES.get(n).copied()
        }
    }
}

/// Creates `username` in the local pool unless it exists; returns its password.
pub async fn ensure(
    clients: &LocalClients,
    stack: &StackInfo,
    username: &str,
) -> Result<String, UserError> {
    let (pool, _) = pool_and_client(stack)?;
    let cognito = &clients.cognito;
    let exists = cognito
        .admin_get_user()
        .user_pool_id(&pool)
        .username(username)
        .send()
        .await
        .is_ok();
    if !exists {
        use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
        let email = AttributeType::builder()
            .name("email")
            .value(format!("{username}@example.test"))
            .build()
            .expect("name is set");
        let mut attributes = vec![email];
        attributes.extend(signup_name(username).map(|name| {
            AttributeType::builder()
                .name("name")
                .value(name)
                .build()
                .expect("name is set")
        }));
        cognito
            .admin_create_user()
            .user_pool_id(&pool)
            .username(username)
            .set_user_attributes(Some(attributes))
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .aws(|| format!("AdminCreateUser {username}"))?;
        cognito
            .admin_set_user_password()
            .user_pool_id(&pool)
            .username(username)
            .password(password(username))
            .permanent(true)
            .send()
            .await
            .aws(|| format!("AdminSetUserPassword {username}"))?;
    }
    Ok(password(username))
}

/// The pool's and the web client's ids (template.yaml's `UserPool` and `UserPoolClient`: SRP
/// sign-in only).
pub fn pool_and_client(stack: &StackInfo) -> Result<(String, String), UserError> {
    Ok((
        physical(stack, "UserPool", "user pool")?,
        physical(stack, "UserPoolClient", "web client")?,
    ))
}

/// The command line's client id (template.yaml's `CliClient`: the password flow, which the
/// local tools and tests sign in with).
pub fn cli_client(stack: &StackInfo) -> Result<String, UserError> {
    physical(stack, "CliClient", "command line's client")
}

fn physical(stack: &StackInfo, logical_id: &str, what: &'static str) -> Result<String, UserError> {
    (stack.resources.get(logical_id))
        .map(|r| r.name.clone())
        .ok_or(UserError::Missing(what))
}

/// An access token of `username`, creating the user on first use. Its `sub` is the user's id
/// everywhere in the platform.
pub async fn token(
    clients: &LocalClients,
    stack: &StackInfo,
    username: &str,
) -> Result<String, UserError> {
    let client = cli_client(stack)?;
    let password = ensure(clients, stack, username).await?;
    let cognito = &clients.cognito;
    let signed_in = cognito
        .initiate_auth()
        .client_id(&client)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .aws(|| format!("InitiateAuth {username}"))?;
    signed_in
        .authentication_result
        .and_then(|r| r.access_token)
        .ok_or_else(|| UserError::NoToken(username.to_owned()))
}
