//! A client of the local HTTP API, acting as signed-in users: what the demo, the CLI and the
//! tests do instead of writing to the stream (an app has no other way in).

use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::ScenarioError;
use crate::lambda::http::call;
use crate::stack::StackInfo;
use crate::stack::clients::LocalClients;
use crate::stack::users;

pub struct ApiClient {
    pub base: String,
    clients: LocalClients,
    stack: StackInfo,
    tokens: BTreeMap<String, String>,
}

/// An API answer: its status and JSON body (`null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl ApiClient {
    pub fn new(base: &str, clients: &LocalClients, stack: &StackInfo) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            clients: clients.clone(),
            stack: stack.clone(),
            tokens: BTreeMap::new(),
        }
    }

    /// `username`'s bearer token (the user is created on first use).
    pub async fn token(&mut self, username: &str) -> Result<String, ScenarioError> {
        if let Some(token) = self.tokens.get(username) {
            return Ok(token.clone());
        }
        let token = users::token(&self.clients, &self.stack, username)
            .await
            .map_err(|e| {
                ScenarioError::Failed(format!(
                    "signing in {username}: {}",
                    crate::logging::chain(&e)
                ))
            })?;
        self.tokens.insert(username.to_owned(), token.clone());
        // As the web client does after signing in: its profile, which the first read seeds
        // with the name given at sign-up.
        let url = format!("{}/me/profile", self.base);
        let bearer = format!("Bearer {token}");
        let (status, _, body) = call("GET", &url, &[("authorization", bearer.as_str())], vec![])
            .await
            .map_err(|e| {
                ScenarioError::Failed(format!("GET {url}: {}", crate::logging::chain(&e)))
            })?;
        if status != 200 {
            return Err(ScenarioError::Failed(format!(
                "GET /me/profile of {username} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(token)
    }

    /// The user id the platform knows `username` by: the token's `sub`.
    pub async fn user_id(&mut self, username: &str) -> Result<String, ScenarioError> {
        let token = self.token(username).await?;
        sub_of(&token)
            .ok_or_else(|| ScenarioError::Failed(format!("the token of {username} has no sub")))
    }

    pub async fn request(
        &mut self,
        username: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, ScenarioError> {
        let token = self.token(username).await?;
        let url = format!("{}{path}", self.base);
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("authorization", bearer.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, _, body) = call(method, &url, &headers, bytes).await.map_err(|e| {
            ScenarioError::Failed(format!("{method} {url}: {}", crate::logging::chain(&e)))
        })?;
        Ok(Answer {
            status,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        })
    }

    /// Asks for an upload and sends the file to the presigned URL; returns the image id.
    pub async fn upload(
        &mut self,
        username: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ScenarioError> {
        let issued = self
            .request(
                username,
                "POST",
                "/uploads",
                Some(json!({ "content_type": content_type, "content_length": bytes.len() })),
            )
            .await?;
        if issued.status != 201 {
            return Err(ScenarioError::Failed(format!(
                "POST /uploads answered {}: {}",
                issued.status, issued.body
            )));
        }
        let upload = &issued.body["upload"];
        let url = upload["url"].as_str().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = upload["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Content-Length is the body's own: the signature holds the declared one.
        let (status, _, body) = call("PUT", &url, &headers, bytes).await.map_err(|e| {
            ScenarioError::Failed(format!(
                "PUT to the upload URL: {}",
                crate::logging::chain(&e)
            ))
        })?;
        if status != 200 {
            return Err(ScenarioError::Failed(format!(
                "the upload URL answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(issued.body["image_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Likes (or unlikes) as `username`; returns the status (200 when the state is as asked).
    pub async fn like(
        &mut self,
        username: &str,
        image_id: &str,
        liked: bool,
    ) -> Result<Answer, ScenarioError> {
        let method = if liked { "PUT" } else { "DELETE" };
        self.request(username, method, &format!("/images/{image_id}/like"), None)
            .await
    }
}

/// The `sub` claim of a token (read, not verified: the token is our own, from the pool).
pub fn sub_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}
