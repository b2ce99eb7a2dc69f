//! A fault layer that speaks AWS's wire formats: an HTTP proxy in front of the emulator that
//! answers chosen requests (by service, operation, and how many) the way AWS documents its
//! failures, and forwards everything else. A function is pointed at it with
//! `AWS_ENDPOINT_URL_DYNAMODB`, `_KINESIS`, `_SQS` or `_S3`.
//!
//! HAZARD: requests are forwarded byte for byte. The emulator checks SigV4 signatures, so a
//! shape that needs a changed *request* cannot be made here; every shape below either answers
//! without forwarding or rewrites only the *response* of a forwarded request.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

use crate::lambda::http::{read_whole, respond, send};

/// The services a fault can target, told apart by their protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// JSON 1.0, `X-Amz-Target: DynamoDB_20120810.<Operation>`.
    DynamoDb,
    /// JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Operation>`.
    Kinesis,
    /// JSON 1.0, `X-Amz-Target: AmazonSQS.<Operation>`.
    Sqs,
    /// REST-XML: the operation is read from the method (GET: GetObject, PUT: PutObject).
    S3,
}

impl Service {
    /// The service and operation of a request.
    fn of(method: &hyper::Method, target: Option<&str>) -> (Service, String) {
        let Some(target) = target else {
            let operation = match method.as_str() {
                "GET" => "GetObject",
                "PUT" => "PutObject",
                "HEAD" => "HeadObject",
                "DELETE" => "DeleteObject",
                other => other,
            };
            return (Service::S3, operation.to_owned());
        };
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        let service = if prefix.starts_with("DynamoDB_") {
            Service::DynamoDb
        } else if prefix.starts_with("Kinesis_") {
            Service::Kinesis
        } else {
            Service::Sqs
        };
        (service, operation.to_owned())
    }
}

/// Which reasons a canceled TransactWriteItems lists: one per action, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasons {
    /// Every action has this code.
    Each(&'static str),
    /// The action at this position has the code; every other `None`.
    At(usize, &'static str),
    /// No `CancellationReasons` at all (the API reference documents it as optional).
    Absent,
}

/// How a chosen request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// An error answer of the service's protocol: JSON with `__type` (and, for SQS, the
    /// `x-amzn-query-error` header its SDK reads the code from), or S3's XML `<Error>`.
    Error {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
    /// `TransactionCanceledException` (400), its reasons as chosen.
    Canceled(Reasons),
    /// BatchGetItem: forwarded, then every other item read (the first, third, …: so a lone
    /// item too) is answered as `UnprocessedKeys` instead (with the request's ConsistentRead and ProjectionExpression), as DynamoDB does
    /// while it throttles part of a batch.
    UnprocessedKeys,
    /// PutRecords: nothing forwarded; every entry answered with this per-record `ErrorCode`
    /// and `FailedRecordCount` set (HTTP 200), as Kinesis does when a shard is over its limit.
    FailedRecords(&'static str),
    /// No answer for this long (a hung connection); then forwarded.
    Hang(Duration),
    /// Forwarded at once, and its answer held back this long: the request took effect, but
    /// the caller (its attempt timed out) does not know it and sends it again. The ambiguous
    /// commit behind every 5xx or timeout after a write landed.
    Lost(Duration),
    /// The connection closed without an answer, with a TCP reset (a load balancer or a peer
    /// gone mid-request). Nothing is forwarded.
    Reset,
    /// Forwarded, and the request took effect, but answered with this error instead of its
    /// result: a 5xx after the commit.
    Landed {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
    /// Forwarded; its status and headers pass on (the full `Content-Length`), then half of the
    /// body, then a reset: a connection lost in the middle of a body.
    CutOff,
}

impl Shape {
    /// A short label for the injected counts.
    fn label(&self) -> String {
        match self {
            Shape::Error { status, code, .. } => format!("{status} {code}"),
            Shape::Canceled(Reasons::Each(code)) => format!("canceled [{code}…]"),
            Shape::Canceled(Reasons::At(at, code)) => format!("canceled [{at}: {code}]"),
            Shape::Canceled(Reasons::Absent) => "canceled without reasons".into(),
            Shape::UnprocessedKeys => "UnprocessedKeys".into(),
            Shape::FailedRecords(code) => format!("FailedRecordCount ({code})"),
            Shape::Hang(d) => format!("hang {} ms", d.as_millis()),
            Shape::Lost(d) => format!("answer lost for {} ms", d.as_millis()),
            Shape::Reset => "connection reset".into(),
            Shape::Landed { status, code, .. } => format!("landed, then {status} {code}"),
            Shape::CutOff => "cut off mid-body".into(),
        }
    }

    /// DynamoDB's documented throttling of a transaction's item on an on-demand table.
    pub fn throttled_transaction() -> Shape {
        Shape::Canceled(Reasons::Each("ThrottlingError"))
    }
}

/// One fault: the requests it answers, how many, and how.
#[derive(Debug, Clone)]
pub struct Fault {
    pub service: Service,
    /// The operation (`TransactWriteItems`, `PutRecords`, `SendMessage`, `GetObject`); `None`
    /// for every operation of the service.
    pub operation: Option<&'static str>,
    /// How many matching requests it answers at most; then it is spent.
    pub times: u64,
    /// The share of matching requests it answers, in percent (drawn from the proxy's seeded
    /// generator); 100: every one.
    pub percent: u64,
    pub shape: Shape,
}

impl Fault {
    /// The first `times` requests of `operation`.
    pub fn new(service: Service, operation: &'static str, times: u64, shape: Shape) -> Self {
        Fault {
            service,
            operation: Some(operation),
            times,
            percent: 100,
            shape,
        }
    }

    /// A seeded `percent` of the requests of `operation` (`None`: every operation), for as
    /// long as the proxy runs.
    pub fn share(
        service: Service,
        operation: Option<&'static str>,
        percent: u64,
        shape: Shape,
    ) -> Self {
        Fault {
            service,
            operation,
            times: u64::MAX,
            percent,
            shape,
        }
    }
}

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

/// An answer's body: whole, or cut off by an error (hyper then aborts the connection).
type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    use http_body_util::BodyExt;
    response.map(|body| body.map_err(|never| match never {}).boxed())
}

/// `response` with half its body, then an I/O error.
fn cut_off(response: Response<Full<Bytes>>) -> Response<Body> {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    let bytes = futures_util::FutureExt::now_or_never(body.collect())
        .and_then(Result::ok)
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let frames = futures_util::stream::iter([
        Ok(hyper::body::Frame::data(half)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault layer: cut off mid-body",
        )),
    ]);
    Response::from_parts(parts, http_body_util::StreamBody::new(frames).boxed())
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
    reset: Arc<tokio::sync::Notify>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = match read_whole(request).await {
        Ok(read) => read,
        Err(answer) => return Ok(whole(answer)),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (service, operation) = Service::of(&parts.method, target);
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
        Some(Shape::Hang(duration)) => tokio::time::sleep(duration).await,
        Some(Shape::Reset) => {
            reset.notify_one();
            std::future::pending::<()>().await;
        }
        Some(Shape::UnprocessedKeys | Shape::Lost(_) | Shape::Landed { .. } | Shape::CutOff)
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

/// An error answer in the service's own protocol.
fn error(service: Service, status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let (body, content_type) = match service {
        Service::DynamoDb => (
            json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message })
                .to_string(),
            "application/x-amz-json-1.0",
        ),
        Service::Kinesis => (
            json!({ "__type": code, "message": message }).to_string(),
            "application/x-amz-json-1.1",
        ),
        Service::Sqs => (
            json!({ "__type": format!("com.amazonaws.sqs#{}", sqs_shape(code)), "message": message })
                .to_string(),
            "application/x-amz-json-1.0",
        ),
        Service::S3 => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULT</RequestId><HostId>fault-proxy</HostId></Error>"
            ),
            "application/xml",
        ),
    };
    let mut response = respond(status, body);
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    if service == Service::Sqs {
        // SQS's JSON protocol keeps its query-era codes in this header, and the SDK reads the
        // code from it (e.g. `AWS.SimpleQueueService.NonExistentQueue;Sender`).
        let side = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(value) = hyper::header::HeaderValue::from_str(&format!("{code};{side}")) {
            headers.insert("x-amzn-query-error", value);
        }
    }
    response
}

/// The JSON shape name of an SQS error whose query code is `code`.
fn sqs_shape(code: &str) -> &str {
    match code {
        "AWS.SimpleQueueService.NonExistentQueue" => "QueueDoesNotExist",
        other => other,
    }
}

/// DynamoDB's `TransactionCanceledException` for the transaction `request`.
fn canceled(request: &Value, reasons: &Reasons) -> Response<Full<Bytes>> {
    let actions = request["TransactItems"].as_array().map_or(0, Vec::len);
    let codes: Vec<&str> = (0..actions)
        .map(|i| match reasons {
            Reasons::Each(code) => code,
            Reasons::At(at, code) if *at == i => code,
            _ => "None",
        })
        .collect();
    let mut body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    });
    if *reasons != Reasons::Absent {
        body["CancellationReasons"] = codes
            .iter()
            .map(|code| match *code {
                "None" => json!({ "Code": "None" }),
                "ThrottlingError" => json!({ "Code": code, "Message": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly." }),
                "TransactionConflict" => json!({ "Code": code, "Message": "Transaction is ongoing for the item." }),
                _ => json!({ "Code": code, "Message": code }),
            })
            .collect();
    }
    let mut response = respond(StatusCode::BAD_REQUEST, body.to_string());
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// Kinesis's PutRecords answer with every entry refused per record.
fn failed_records(request: &Value, code: &str) -> Response<Full<Bytes>> {
    let entries = request["Records"].as_array().map_or(0, Vec::len);
    let records: Vec<Value> = (0..entries)
        .map(|_| json!({ "ErrorCode": code, "ErrorMessage": format!("{code} (fault layer)") }))
        .collect();
    let mut response = respond(
        StatusCode::OK,
        json!({ "FailedRecordCount": entries, "Records": records }).to_string(),
    );
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

/// A BatchGetItem answer with every other item read moved to `UnprocessedKeys`, each under the
/// key it was asked by, with its table's read options.
async fn leave_unprocessed(
    asked: &Value,
    response: Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Full::new(bytes));
    };
    let mut unprocessed = serde_json::Map::new();
    if let Some(responses) = answer["Responses"].as_object_mut() {
        for (table, items) in responses.iter_mut() {
            let Some(list) = items.as_array_mut() else {
                continue;
            };
            let asked_table = &asked["RequestItems"][table];
            let keys = asked_table["Keys"].as_array().cloned().unwrap_or_default();
            let (mut kept, mut left) = (Vec::new(), Vec::new());
            for (i, item) in list.drain(..).enumerate() {
                if i % 2 == 1 {
                    kept.push(item)
                } else {
                    left.push(item)
                }
            }
            *list = kept;
            let left_keys: Vec<Value> = left
                .iter()
                .filter_map(|item| {
                    keys.iter()
                        .find(|key| {
                            key.as_object().is_some_and(|k| {
                                k.iter().all(|(name, v)| item.get(name) == Some(v))
                            })
                        })
                        .cloned()
                })
                .collect();
            if left_keys.is_empty() {
                continue;
            }
            let mut entry = asked_table.clone();
            entry["Keys"] = Value::Array(left_keys);
            unprocessed.insert(table.clone(), entry);
        }
    }
    answer["UnprocessedKeys"] = Value::Object(unprocessed);
    let mut parts = parts;
    parts.headers.remove("content-length");
    parts.headers.remove("x-amz-crc32");
    Response::from_parts(parts, Full::new(Bytes::from(answer.to_string())))
}
