//! A fault layer that speaks AWS's wire formats: an HTTP proxy in front of the emulator that
//! answers chosen requests (by service, operation, and how many) the way AWS documents its
//! failures, and forwards everything else. A function is pointed at it with
//! `AWS_ENDPOINT_URL_DYNAMODB`, `_KINESIS`, `_SQS` or `_S3`.
//!
//! HAZARD: requests are forwarded byte for byte. The emulator checks SigV4 signatures, so a
//! shape that needs a changed *request* cannot be made here; every shape below either answers
//! without forwarding or rewrites only the *response* of a forwarded request.

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

use super::answers::{
    Body, canceled, cut_off, delete_errors, error, failed_records, leave_items_unprocessed,
    leave_unprocessed, whole,
};
use super::shapes::{Fault, Service, Shape};
use crate::lambda::http::{read_whole, respond, send};

/// An HTTP proxy in front of the emulator that answers the requests its faults choose.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: String,
    faults: Mutex<Vec<Fault>>,
    random: Mutex<fastrand::Rng>,
    /// Requests answered per shape label.
    injected: Mutex<BTreeMap<String, u64>>,
    /// Requests seen per operation.
    seen: Mutex<BTreeMap<String, u64>>,
    /// Requests passed on to the emulator.
    forwarded: std::sync::atomic::AtomicU64,
    /// The `X-Amzn-Trace-Id` headers of the requests seen, in order.
    trace_ids: Mutex<Vec<String>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of `upstream` (the emulator's URL or `host:port`), with no fault yet.
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        Self::start_seeded(upstream, 1).await
    }

    /// [`FaultProxy::start`], drawing the shares of [`Fault::share`] from `seed`.
    pub async fn start_seeded(upstream: &str, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            faults: Mutex::new(Vec::new()),
            random: Mutex::new(fastrand::Rng::with_seed(seed)),
            injected: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeMap::new()),
            forwarded: std::sync::atomic::AtomicU64::new(0),
            trace_ids: Mutex::new(Vec::new()),
        });
        let server = serve(listener, state.clone());
        Ok(FaultProxy {
            port,
            state,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a fault; faults are tried in the order added, and the first that matches answers.
    pub fn inject(&self, fault: Fault) -> &Self {
        self.state.faults.lock().expect("faults lock").push(fault);
        self
    }

    /// Requests answered with a fault, per shape (e.g. `400 KMSDisabledException`).
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.injected.lock().expect("injected lock").clone()
    }

    /// Changes the share of the fault added `index`-th (0: the service recovers).
    pub fn set_percent(&self, index: usize, percent: u64) {
        if let Some(fault) = self
            .state
            .faults
            .lock()
            .expect("faults lock")
            .get_mut(index)
        {
            fault.percent = percent;
        }
    }

    /// Requests seen for an operation, answered or forwarded.
    pub fn seen(&self, operation: &str) -> u64 {
        let seen = self.state.seen.lock().expect("seen lock");
        seen.get(operation).copied().unwrap_or(0)
    }

    /// Requests seen, answered or forwarded, by operation.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// Requests passed on to the emulator.
    pub fn forwarded(&self) -> u64 {
        self.state
            .forwarded
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The trace headers the requests carried, in order.
    pub fn trace_ids(&self) -> Vec<String> {
        self.state.trace_ids.lock().expect("trace lock").clone()
    }
}

/// Takes one use of the first fault matching the request, if any.
fn take_fault(state: &State, service: Service, operation: &str) -> Option<Shape> {
    let mut faults = state.faults.lock().expect("faults lock");
    let mut random = state.random.lock().expect("random lock");
    let fault = faults.iter_mut().find(|f| {
        f.times > 0
            && f.service == service
            && f.operation.is_none_or(|o| o == operation)
            && (f.percent >= 100 || random.u64(..100) < f.percent)
    })?;
    fault.times -= 1;
    let shape = fault.shape.clone();
    *state
        .injected
        .lock()
        .expect("injected lock")
        .entry(shape.label())
        .or_default() += 1;
    Some(shape)
}

/// Serves each connection until it closes, or until a [`Shape::Reset`] drops it.
fn serve(listener: TcpListener, state: Arc<State>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // A zero linger makes the close an RST, sent at once: dropping the connection
            // resets it, as a peer gone mid-request does. (Only a positive linger blocks.)
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            let state = state.clone();
            tokio::spawn(async move {
                let reset = Arc::new(tokio::sync::Notify::new());
                let signal = reset.clone();
                let service = hyper::service::service_fn(move |request| {
                    answer(state.clone(), request, signal.clone())
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = reset.notified() => {}
                }
            });
        }
    })
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
    reset: Arc<tokio::sync::Notify>,
) -> Result<Response<Body>, Infallible> {
    // Only this machine's programs (the functions and tests it stands in front of).
    if let Some(refusal) = crate::guard::Guard::Programs.refusal(request.headers()) {
        return Ok(whole(refusal));
    }
    let (parts, body) = match read_whole(request).await {
        Ok(read) => read,
        Err(answer) => return Ok(whole(answer)),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (service, operation) = Service::of(&parts.method, parts.uri.query(), target);
    if let Some(trace) = parts.headers.get("x-amzn-trace-id") {
        state
            .trace_ids
            .lock()
            .expect("trace lock")
            .push(trace.to_str().unwrap_or_default().to_owned());
    }
    *state
        .seen
        .lock()
        .expect("seen lock")
        .entry(operation.clone())
        .or_default() += 1;
    let shape = take_fault(&state, service, &operation);
    let request_json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    match shape {
        Some(Shape::Error {
            status,
            code,
            message,
        }) => return Ok(whole(error(service, status, code, message))),
        Some(Shape::Canceled(reasons)) => return Ok(whole(canceled(&request_json(), &reasons))),
        Some(Shape::FailedRecords(code)) => {
            return Ok(whole(failed_records(&request_json(), code)));
        }
        Some(Shape::DeleteErrors(code)) => return Ok(whole(delete_errors(&body, code))),
        Some(Shape::Hang(duration)) => tokio::time::sleep(duration).await,
        Some(Shape::Reset) => {
            reset.notify_one();
            std::future::pending::<()>().await;
        }
        Some(
            Shape::UnprocessedKeys
            | Shape::UnprocessedItems
            | Shape::Lost(_)
            | Shape::Landed { .. }
            | Shape::CutOff,
        )
        | None => {}
    }
    let asked = request_json();
    let forwarded = send(&state.upstream, Request::from_parts(parts, Full::new(body))).await;
    state
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let response = match forwarded {
        Ok(response) => response,
        Err(e) => {
            return Ok(whole(respond(
                StatusCode::BAD_GATEWAY,
                format!("fault proxy: {}", crate::logging::chain(&e)),
            )));
        }
    };
    if shape == Some(Shape::UnprocessedKeys) && response.status() == StatusCode::OK {
        return Ok(whole(leave_unprocessed(&asked, response).await));
    }
    if shape == Some(Shape::UnprocessedItems) && response.status() == StatusCode::OK {
        return Ok(whole(leave_items_unprocessed(&asked)));
    }
    match shape {
        Some(Shape::Lost(duration)) => tokio::time::sleep(duration).await,
        Some(Shape::Landed {
            status,
            code,
            message,
        }) => return Ok(whole(error(service, status, code, message))),
        Some(Shape::CutOff) => return Ok(cut_off(response)),
        _ => {}
    }
    Ok(whole(response))
}
