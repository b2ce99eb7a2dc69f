//! The Lambda Runtime API (version 2018-06-01) a function binary talks to: `next` hands out
//! one invocation at a time (held open until there is work, as Lambda does), `response` and
//! `error` answer it, `init/error` reports a failed Init.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::function::{InvokeError, Outcome};
use super::http::respond;

pub(super) struct Pending {
    pub request_id: String,
    pub payload: Vec<u8>,
    pub deadline_ms: u64,
    pub done: oneshot::Sender<Outcome>,
}

/// What the server and the [`super::LocalFunction`] that owns it share.
pub(super) struct Shared {
    pub next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    pub in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    pub function_arn: String,
    /// When the current process first asked for work: the end of its Init phase.
    pub first_poll: Mutex<Option<std::time::Instant>>,
    /// The X-Ray trace header of the latest invocation handed out.
    pub last_trace_id: Mutex<Option<String>>,
}

/// The request's body; a body cut off mid-way reads as empty (the runtime gets its answer
/// refused as unknown or malformed, never a hang).
async fn body_of(request: Request<Incoming>) -> Vec<u8> {
    request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default()
}

pub(super) async fn route(
    state: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match (method.as_str(), segments.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
            state
                .first_poll
                .lock()
                .expect("poll lock")
                .get_or_insert_with(std::time::Instant::now);
            // Held open until there is work, as Lambda does (a 204 would crash a release build).
            let pending = state.next.lock().await.recv().await;
            match pending {
                Some(pending) => {
                    state
                        .in_flight
                        .lock()
                        .expect("in-flight lock")
                        .insert(pending.request_id.clone(), pending.done);
                    let trace = format!(
                        "Root=1-{:08x}-{};Parent={};Sampled=0",
                        pending.deadline_ms / 1000,
                        &uuid::Uuid::new_v4().simple().to_string()[..24],
                        &uuid::Uuid::new_v4().simple().to_string()[..16]
                    );
                    *state.last_trace_id.lock().expect("trace lock") = Some(trace.clone());
                    Response::builder()
                        .header("Lambda-Runtime-Aws-Request-Id", &pending.request_id)
                        .header(
                            "Lambda-Runtime-Deadline-Ms",
                            pending.deadline_ms.to_string(),
                        )
                        .header("Lambda-Runtime-Invoked-Function-Arn", &state.function_arn)
                        .header("Lambda-Runtime-Trace-Id", trace)
                        .header("Content-Type", "application/json")
                        .body(Full::new(Bytes::from(pending.payload)))
                        .expect("valid response")
                }
                None => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "runtime API shutting down",
                ),
            }
        }
        (
            "POST",
            [
                "2018-06-01",
                "runtime",
                "invocation",
                request_id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let request_id = (*request_id).to_owned();
            let kind = *kind;
            let body = body_of(request).await;
            let waiter = state
                .in_flight
                .lock()
                .expect("in-flight lock")
                .remove(&request_id);
            match waiter {
                Some(done) => {
                    let outcome = if kind == "response" {
                        Ok(body)
                    } else {
                        Err(function_error(&body))
                    };
                    let _ = done.send(outcome);
                    respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                None => respond(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorMessage":"unknown or already answered request id","errorType":"InvalidRequestID"}"#,
                ),
            }
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            let body = body_of(request).await;
            tracing::warn!(error = %String::from_utf8_lossy(&body), "function reported an init error");
            respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            format!("no route for {method} {path}"),
        ),
    };
    Ok(response)
}

fn function_error(body: &[u8]) -> InvokeError {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    InvokeError::Function {
        error_type: parsed
            .get("errorType")
            .and_then(|v| v.as_str())
            .unwrap_or("Unhandled")
            .to_owned(),
        message: parsed
            .get("errorMessage")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}
