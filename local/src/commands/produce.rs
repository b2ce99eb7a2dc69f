//! `cargo local token | like | unlike`: acting as a user, through the HTTP API.

use anyhow::{Context, Result, bail};

use super::stack::running_stack;
use snapglow_local::scenarios::client::ApiClient;
use snapglow_local::stack::clients::LocalClients;
use snapglow_local::stack::users;

pub async fn token(username: &str) -> Result<()> {
    let stack = running_stack()?;
    let clients = LocalClients::admin(&stack).await;
    // Only the token on stdout: `TOKEN=$(cargo local token alice)`.
    println!("{}", users::token(&clients, &stack, username).await?);
    Ok(())
}

pub async fn like(image_id: &str, user: &str, liked: bool) -> Result<()> {
    let stack = running_stack()?;
    let api_url = stack
        .api_url
        .clone()
        .context("the local stack records no HTTP API; run `cargo local up` again")?;
    let clients = LocalClients::admin(&stack).await;
    let mut api = ApiClient::new(&api_url, &clients, &stack);
    let answer = api
        .like(user, image_id, liked)
        .await
        .with_context(|| format!("calling {api_url}; is `cargo local run` serving the API?"))?;
    if answer.status != 200 {
        bail!("the API answered {}: {}", answer.status, answer.body);
    }
    println!("{}", answer.body);
    Ok(())
}
