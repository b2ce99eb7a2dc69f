//! A throttling layer in front of DynamoDB or Kinesis: an HTTP proxy that answers a share of
//! one service's requests the way that service does when it throttles.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;

use crate::lambda::http::{read_whole, respond, send};

/// The service a proxy throttles, by the `X-Amz-Target` of its JSON protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Point a function at the proxy with `AWS_ENDPOINT_URL_DYNAMODB`.
    DynamoDb,
    /// Point a function at the proxy with `AWS_ENDPOINT_URL_KINESIS`.
    Kinesis,
}

impl Throttled {
    fn target_prefix(self) -> &'static str {
        match self {
            Throttled::DynamoDb => "DynamoDB_",
            Throttled::Kinesis => "Kinesis_",
        }
    }
    fn answer(self) -> (&'static str, &'static str) {
        match self {
            Throttled::DynamoDb => (
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "application/x-amz-json-1.0",
            ),
            Throttled::Kinesis => (
                "ProvisionedThroughputExceededException",
                "application/x-amz-json-1.1",
            ),
        }
    }
}

/// An HTTP proxy in front of the emulator that answers a share of one service's requests with
/// `ProvisionedThroughputExceededException` (HTTP 400, as DynamoDB and Kinesis do) and forwards
/// the rest, noting the trace header each carried.
pub struct ThrottlingProxy {
    port: u16,
    state: Arc<ProxyState>,
    server: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    service: Throttled,
    percent: AtomicU64,
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
    /// A proxy throttling DynamoDB; `upstream`: the emulator's `host:port`.
    pub async fn start(upstream: &str, percent: u64, seed: u64) -> std::io::Result<Self> {
        Self::start_for(Throttled::DynamoDb, upstream, percent, seed).await
    }

    pub async fn start_for(
        service: Throttled,
        upstream: &str,
        percent: u64,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            service,
            percent: AtomicU64::new(percent),
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

    /// Changes the share of requests refused from now on (0: the service recovers).
    pub fn set_percent(&self, percent: u64) {
        self.state.percent.store(percent, Ordering::Relaxed);
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
    let (parts, body) = match read_whole(request).await {
        Ok(read) => read,
        Err(answer) => return Ok(answer),
    };
    let is_throttled_service = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(state.service.target_prefix()));
    if is_throttled_service && let Some(trace) = parts.headers.get("x-amzn-trace-id") {
        state
            .trace_ids
            .lock()
            .expect("trace lock")
            .push(trace.to_str().unwrap_or_default().to_owned());
    }
    let percent = state.percent.load(Ordering::Relaxed);
    if is_throttled_service && state.random.lock().expect("random lock").u64(..100) < percent {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        let (kind, content_type) = state.service.answer();
        let mut response = respond(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "__type": kind,
                "message": "Rate exceeded (fire drill)"
            })
            .to_string(),
        );
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static(content_type),
        );
        return Ok(response);
    }
    let forwarded = send(&state.upstream, Request::from_parts(parts, Full::new(body)));
    state.forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(forwarded.await.unwrap_or_else(|e| {
        respond(
            StatusCode::BAD_GATEWAY,
            format!("proxy: {}", crate::logging::chain(&e)),
        )
    }))
}
