//! Faults on purpose, for fire drills: function processes that die mid-batch, and a DynamoDB
//! that throttles. Both are seeded, so a failing drill can be run again the same way.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A small deterministic generator (an LCG): drills must be repeatable from their seed.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Kills a function's process during a share of its invocations.
///
/// The kill comes after a random delay: when it lands before the handler answers, the batch is
/// cut off mid-way (some writes done, some not); when the handler was quicker, its answer is
/// thrown away as if the process died just before the response reached Lambda (every write
/// done, the batch still counts as failed). Both are what a consumer must survive: the
/// mapping retries the whole batch.
#[derive(Debug, Clone)]
pub struct CrashInjector {
    pub percent: u64,
    /// The delay is uniform in `0..=window`.
    pub window: Duration,
    dice: Dice,
    pub crashes: u64,
}

impl CrashInjector {
    pub fn new(percent: u64, window: Duration, seed: u64) -> CrashInjector {
        CrashInjector {
            percent,
            window,
            dice: Dice::new(seed),
            crashes: 0,
        }
    }

    /// When to kill the next invocation, if it is one of the unlucky ones.
    pub fn next_crash(&mut self) -> Option<Duration> {
        if !self.dice.chance(self.percent) {
            return None;
        }
        self.crashes += 1;
        let window_ms = self.window.as_millis() as u64;
        Some(Duration::from_millis(self.dice.below(window_ms + 1)))
    }
}

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
    dice: Mutex<Dice>,
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
            dice: Mutex::new(Dice::new(seed)),
            forwarded: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            trace_ids: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let server = crate::http_server::serve(listener, shared, relay);
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

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn relay(
    state: Arc<ProxyState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read the whole request first, so the client's connection stays usable either way.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, e.to_string())),
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
    if is_dynamodb && state.dice.lock().expect("dice lock").chance(state.percent) {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        let mut response = plain(
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
        let stream = TcpStream::connect(&state.upstream)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let response = sender
            .send_request(Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>(Response::from_parts(parts, Full::new(body)))
    };
    state.forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(forwarded
        .await
        .unwrap_or_else(|e| plain(StatusCode::BAD_GATEWAY, format!("proxy: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_crashes_the_same_invocations() {
        let pattern = |seed| {
            let mut injector = CrashInjector::new(20, Duration::from_millis(50), seed);
            (0..200).map(|_| injector.next_crash()).collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        let crashes = pattern(7).iter().filter(|c| c.is_some()).count();
        assert!((20..=60).contains(&crashes), "about 20% of 200: {crashes}");
        assert!(
            pattern(7)
                .iter()
                .flatten()
                .all(|d| *d <= Duration::from_millis(50))
        );
    }
}
