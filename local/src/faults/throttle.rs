//! A throttling layer in front of DynamoDB: an HTTP proxy that answers a share of requests
//! the way DynamoDB does when it throttles.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};

use crate::lambda::http::respond;

/// An HTTP proxy in front of the emulator that answers a share of DynamoDB requests with
/// `ProvisionedThroughputExceededException` (HTTP 400, as DynamoDB does) and forwards the rest,
/// noting the trace header each carried. Point a function at it with `AWS_ENDPOINT_URL_DYNAMODB`.
pub struct ThrottlingProxy {
    port: u16,
    state: Arc<ProxyState>,
    server: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    percent: u64,
    random: Mutex<fastrand::Rng>,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    /// The `X-Amzn-Trace-Id` headers of the DynamoDB requests seen.
    trace_ids: Mutex<Vec<String>>,
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ThrottlingProxy {
    /// `upstream`: the emulator's `host:port`.
    pub async fn start(upstream: &str, percent: u64, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            percent,
            random: Mutex::new(fastrand::Rng::with_seed(seed)),
            forwarded: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            trace_ids: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let server = crate::lambda::http::serve(listener, shared, relay);
        Ok(ThrottlingProxy {
            port,
            state,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::Relaxed)
    }

    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::Relaxed)
    }

    /// The trace headers the DynamoDB requests carried, in order.
    pub fn trace_ids(&self) -> Vec<String> {
        self.state.trace_ids.lock().expect("trace lock").clone()
    }
}

async fn relay(
    state: Arc<ProxyState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read the whole request first, so the client's connection stays usable either way.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(respond(StatusCode::BAD_REQUEST, e.to_string())),
    };
    let is_dynamodb = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("DynamoDB_"));
    if is_dynamodb && let Some(trace) = parts.headers.get("x-amzn-trace-id") {
        state
            .trace_ids
            .lock()
            .expect("trace lock")
            .push(trace.to_str().unwrap_or_default().to_owned());
    }
    if is_dynamodb && state.random.lock().expect("random lock").u64(..100) < state.percent {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        let mut response = respond(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded (fire drill)"
            })
            .to_string(),
        );
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        return Ok(response);
    }
    let forwarded = async {
        let stream = TcpStream::connect(&state.upstream).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let response = sender
            .send_request(Request::from_parts(parts, Full::new(body)))
            .await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Response::from_parts(
            parts,
            Full::new(body),
        ))
    };
    state.forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(forwarded
        .await
        .unwrap_or_else(|e| respond(StatusCode::BAD_GATEWAY, format!("proxy: {e}"))))
}
