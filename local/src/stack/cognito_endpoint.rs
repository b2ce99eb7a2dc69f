//! Cognito's public endpoint as a browser reaches it. A web client calls the user pool's JSON
//! API (`InitiateAuth`, refresh) from its own origin; cognito-idp answers CORS preflights for
//! any origin, and moto's server does not answer them for that API. This loopback front
//! answers them (POST, the requested headers) for the local site's origin only (a local stack
//! is its developer's: see [`crate::guard`]) and forwards the calls to the emulator without
//! the browser's headers; the emulator still decides what an unsigned call may do (only the
//! public operations).

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::guard::Guard;
use crate::lambda::http::{read_whole, respond, send};

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
    /// Forwards to the emulator at `endpoint_url`, for pages of `site_origin` only.
    pub async fn start(endpoint_url: &str, site_origin: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let upstream = Arc::new(
            endpoint_url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
        );
        let guard = Guard::Origins(vec![site_origin.to_owned()]);
        let server = crate::lambda::http::serve(listener, guard, upstream, pass);
        Ok(CognitoEndpoint {
            url: format!("http://127.0.0.1:{port}/"),
            server,
        })
    }
}

async fn pass(
    upstream: Arc<String>,
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
    let mut answer = match send(&upstream, Request::from_parts(parts, Full::new(body))).await {
        Ok(answer) => answer,
        Err(e) => {
            return Ok(respond(
                StatusCode::BAD_GATEWAY,
                format!("cognito endpoint: {}", crate::logging::chain(&e)),
            ));
        }
    };
    let headers = answer.headers_mut();
    headers.insert("access-control-allow-origin", origin);
    headers.insert("vary", hyper::header::HeaderValue::from_static("Origin"));
    Ok(answer)
}
