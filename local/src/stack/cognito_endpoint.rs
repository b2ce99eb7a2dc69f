//! Cognito's public endpoint as a browser reaches it. A web client calls the user pool's JSON
//! API (`InitiateAuth`, refresh) from its own origin; cognito-idp answers CORS preflights for
//! any origin, and moto's server does not answer them for that API. This loopback front
//! answers them (POST, the requested headers) for the local site's origin only (a local stack
//! is its developer's: see [`crate::guard`]) and forwards the calls to the emulator without
//! the browser's headers; the emulator still decides what an unsigned call may do (only the
//! public operations). Sign-up codes are checked here as AWS checks them
//! ([`super::sign_up_codes`]): moto accepts any.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

use super::sign_up_codes::SignUpCodes;
use crate::guard::Guard;
use crate::lambda::http::{read_whole, respond, send};

/// What the front forwards to, and the sign-up codes it issued.
struct Front {
    upstream: String,
    codes: SignUpCodes,
}

/// A running front; stops when dropped.
pub struct CognitoEndpoint {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CognitoEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CognitoEndpoint {
    /// Forwards to the emulator at `endpoint_url`, for pages of `site_origin` only; sign-up
    /// codes are delivered to `mailbox`.
    pub async fn start(
        endpoint_url: &str,
        site_origin: &str,
        mailbox: &Path,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let front = Arc::new(Front {
            upstream: endpoint_url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            codes: SignUpCodes::new(mailbox),
        });
        let guard = Guard::Origins(vec![site_origin.to_owned()]);
        let server = crate::lambda::http::serve(listener, guard, front, pass);
        Ok(CognitoEndpoint {
            url: format!("http://127.0.0.1:{port}/"),
            server,
        })
    }
}

async fn pass(
    front: Arc<Front>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = match read_whole(request).await {
        Ok(read) => read,
        Err(answer) => return Ok(answer),
    };
    // The guard let only the site's origin (or no browser) through: it is the one to allow.
    let origin = (parts.headers.get("origin").cloned())
        .unwrap_or(hyper::header::HeaderValue::from_static("*"));
    if parts.method == hyper::Method::OPTIONS {
        let requested = parts
            .headers
            .get("access-control-request-headers")
            .cloned()
            .unwrap_or(hyper::header::HeaderValue::from_static("content-type"));
        let mut response = respond(StatusCode::OK, "");
        let headers = response.headers_mut();
        headers.insert("access-control-allow-origin", origin);
        headers.insert(
            "access-control-allow-methods",
            hyper::header::HeaderValue::from_static("POST"),
        );
        headers.insert("access-control-allow-headers", requested);
        headers.insert(
            "access-control-max-age",
            hyper::header::HeaderValue::from_static("86400"),
        );
        return Ok(response);
    }
    crate::guard::strip_browser_headers(&mut parts.headers);
    let target = (parts.headers.get("x-amz-target"))
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| call[name].as_str().unwrap_or_default().to_owned();
    if target == "ConfirmSignUp" {
        let check = front
            .codes
            .check(&field("Username"), &field("ConfirmationCode"));
        if let Some((kind, message)) = check.refusal() {
            return Ok(with_cors(refusal(kind, message), origin));
        }
    }
    let request = Request::from_parts(parts, Full::new(body));
    let answer = match send(&front.upstream, request).await {
        Ok(answer) => answer,
        Err(e) => {
            return Ok(respond(
                StatusCode::BAD_GATEWAY,
                format!("cognito endpoint: {}", crate::logging::chain(&e)),
            ));
        }
    };
    // A code is sent when the pool accepted the sign-up (or the request for a new code), to
    // the email the user gave.
    if answer.status().is_success() && ["SignUp", "ResendConfirmationCode"].contains(&&*target) {
        let username = field("Username");
        let email = (call["UserAttributes"].as_array().into_iter().flatten())
            .find(|a| a["Name"] == "email")
            .and_then(|a| a["Value"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{username}'s email"));
        if let Err(e) = front.codes.issue(&username, &email) {
            return Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "cognito endpoint: the code for {username} could not be written to {}: {e}",
                    front.codes.mailbox().display()
                ),
            ));
        }
    }
    Ok(with_cors(answer, origin))
}

/// An error answer as Cognito's JSON API sends it.
fn refusal(kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    let mut answer = respond(StatusCode::BAD_REQUEST, body);
    let headers = answer.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(kind) = hyper::header::HeaderValue::from_str(kind) {
        headers.insert("x-amzn-errortype", kind);
    }
    answer
}

fn with_cors(
    mut answer: Response<Full<Bytes>>,
    origin: hyper::header::HeaderValue,
) -> Response<Full<Bytes>> {
    let headers = answer.headers_mut();
    headers.insert("access-control-allow-origin", origin);
    headers.insert("vary", hyper::header::HeaderValue::from_static("Origin"));
    answer
}
