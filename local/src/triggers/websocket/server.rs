//! The local WebSocket API's start-up, its handshake, its connections and its management API.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::shape::WebSocketShape;
use crate::guard::Guard;
use crate::lambda::{Invoke, LocalFunction};
use crate::stack::StackInfo;
use crate::template::Template;

/// API Gateway's largest WebSocket message and frame.
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Its integration timeout for WebSocket routes.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// The limits API Gateway closes connections at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub idle: Duration,
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(600),
            lifetime: Duration::from_secs(2 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("the template has no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET and a stage")]
    NoApi,
    #[error("the WebSocket API's function {0} is not a function of the local stack")]
    NoFunction(String),
    #[error("starting the WebSocket API's function {binary}")]
    Function {
        binary: String,
        #[source]
        source: crate::lambda::FunctionError,
    },
    #[error("serving the WebSocket API on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// One open connection.
struct Connection {
    outgoing: mpsc::UnboundedSender<Message>,
    connected_at_ms: i64,
    last_active_ms: std::sync::Mutex<i64>,
    user_agent: String,
}

struct State {
    api_id: String,
    stage: String,
    account_id: String,
    region: String,
    /// Route key → index into `functions`.
    routes: BTreeMap<String, usize>,
    authorizer: Option<(usize, Vec<String>)>,
    functions: Vec<Mutex<Box<dyn Invoke>>>,
    connections: std::sync::Mutex<HashMap<String, Arc<Connection>>>,
    limits: Limits,
    guard: Guard,
}

/// A running local WebSocket API; stops when dropped.
pub struct LiveServer {
    /// What clients connect to: `ws://127.0.0.1:{port}/{stage}`.
    pub url: String,
    /// The management endpoint (`LIVE_MANAGEMENT_URL`): `http://127.0.0.1:{port}/{stage}`.
    pub management_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_ms() -> i64 {
    snapglow::contracts::Timestamp::now().millis()
}

impl LiveServer {
    /// Serves the template's WebSocket API on 127.0.0.1:`port` (0: any free port), its
    /// functions' binaries from `binary_dir` logging to `log_dir`; browsers are admitted from
    /// `guard`'s origins.
    pub async fn start(
        stack: &StackInfo,
        template: &Template,
        binary_dir: &std::path::Path,
        log_dir: &std::path::Path,
        port: u16,
        limits: Limits,
        guard: Guard,
    ) -> Result<LiveServer, LiveError> {
        let shape = WebSocketShape::of(template).ok_or(LiveError::NoApi)?;
        let mut functions: Vec<Mutex<Box<dyn Invoke>>> = Vec::new();
        let mut started: BTreeMap<String, usize> = BTreeMap::new();
        let mut index_of = async |logical: &str| -> Result<usize, LiveError> {
            if let Some(index) = started.get(logical) {
                return Ok(*index);
            }
            let binary = (stack.resources.get(logical))
                .and_then(|r| r.function())
                .map(|f| f.binary.clone())
                .ok_or_else(|| LiveError::NoFunction(logical.to_owned()))?;
            let log = crate::lambda::LogSink::File(log_dir.join(format!("{binary}.log")));
            let failed = |source| LiveError::Function {
                binary: binary.clone(),
                source,
            };
            let spec = crate::lambda::spec_for(stack, &binary, binary_dir, log).map_err(failed)?;
            let function = LocalFunction::start(spec)
                .await
                .map_err(|e| failed(crate::lambda::FunctionError::Start(e)))?;
            functions.push(Mutex::new(Box::new(function)));
            started.insert(logical.to_owned(), functions.len() - 1);
            Ok(functions.len() - 1)
        };
        let mut routes = BTreeMap::new();
        for (key, logical) in &shape.routes {
            routes.insert(key.clone(), index_of(logical).await?);
        }
        let authorizer = match &shape.authorizer {
            Some((logical, sources)) => Some((index_of(logical).await?, sources.clone())),
            None => None,
        };
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| LiveError::Bind { port, source })?;
        let bound = (listener.local_addr())
            .map_err(|source| LiveError::Bind { port, source })?
            .port();
        let api_id = (template.of_kind("AWS::ApiGatewayV2::Api").next())
            .and_then(|api| stack.resources.get(&api.logical_id))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| "local".to_owned());
        let state = Arc::new(State {
            api_id,
            stage: shape.stage.clone(),
            account_id: stack.account_id.clone(),
            region: stack.region.clone(),
            routes,
            authorizer,
            functions,
            connections: std::sync::Mutex::new(HashMap::new()),
            limits,
            guard,
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(LiveServer {
            url: format!("ws://127.0.0.1:{bound}/{}", shape.stage),
            management_url: format!("http://127.0.0.1:{bound}/{}", shape.stage),
            server,
        })
    }
}

impl LiveServer {
    /// What the HTTP API's function needs of this server: `LIVE_URL`, the URL its tickets name.
    pub fn api_environment(&self) -> Vec<(String, String)> {
        vec![("LIVE_URL".to_owned(), self.url.clone())]
    }

    /// `options` with what the pusher needs: the management endpoint it posts to, and
    /// `gate_url`, the presigned gate its thumbnails are signed for (as the API's are).
    pub fn mapping_options(
        &self,
        gate_url: &str,
        mut options: crate::triggers::MappingOptions,
    ) -> crate::triggers::MappingOptions {
        let management = (
            "LIVE_MANAGEMENT_URL".to_owned(),
            self.management_url.clone(),
        );
        options.environment.push(management);
        let presigning = ("AWS_ENDPOINT_URL_S3".to_owned(), gate_url.to_owned());
        options
            .environment_of
            .push(("pusher".to_owned(), presigning.0, presigning.1));
        options
    }
}

fn respond(status: StatusCode, error_type: Option<&str>, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "message": message }).to_string(),
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    if let Some(kind) = error_type {
        headers.insert("x-amzn-errortype", kind.parse().expect("a header"));
    }
    response
}

async fn answer(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(refusal) = state.guard.refusal(request.headers()) {
        return refusal;
    }
    let path = request.uri().path().to_owned();
    let stage = format!("/{}", state.stage);
    if path == stage || path == format!("{stage}/") {
        return handshake(state, request).await;
    }
    match path.strip_prefix(&format!("{stage}/@connections/")) {
        Some(id) => {
            let id: String = form_urlencoded::parse(format!("id={id}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            management(&state, request, &id).await
        }
        None => respond(StatusCode::FORBIDDEN, None, "Forbidden"),
    }
}

/// The request context API Gateway puts in every event of a connection.
fn context(
    state: &State,
    connection_id: &str,
    route: &str,
    event_type: &str,
    user_agent: &str,
) -> Value {
    json!({
        "routeKey": route,
        "eventType": event_type,
        "messageDirection": "IN",
        "stage": state.stage,
        "apiId": state.api_id,
        "domainName": "127.0.0.1",
        "connectionId": connection_id,
        "requestId": uuid::Uuid::new_v4().to_string(),
        "requestTimeEpoch": now_ms(),
        "identity": { "sourceIp": "127.0.0.1", "userAgent": user_agent },
    })
}

/// Invokes function `index` with `event`: its answer as JSON, or `None` when it failed (API
/// Gateway answers 500 then) or timed out (the execution environment is reset).
async fn invoke(state: &State, index: usize, event: &Value) -> Option<Value> {
    let mut function = state.functions[index].lock().await;
    let bytes = serde_json::to_vec(event).expect("events serialize");
    match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(bytes)).await {
        Ok(Ok(answer)) => Some(serde_json::from_slice(&answer).unwrap_or(Value::Null)),
        Ok(Err(error)) => {
            tracing::warn!(%error, "a WebSocket API function failed");
            None
        }
        Err(_) => {
            function.reset().await;
            None
        }
    }
}

async fn handshake(state: Arc<State>, mut request: Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        (request.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let upgrade = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = header("sec-websocket-key").filter(|_| upgrade) else {
        return respond(
            StatusCode::BAD_REQUEST,
            None,
            "Expected a WebSocket handshake",
        );
    };
    let user_agent = header("user-agent").unwrap_or_default();
    let query: HashMap<String, String> = (request.uri().query())
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let headers: Map<String, Value> = (request.headers().iter())
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_owned(),
                Value::String(v.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let mut id = [0u8; 12];
    id.iter_mut().for_each(|b| *b = fastrand::u8(..));
    // API Gateway's ids are base64 with `=`: clients must URL-encode them.
    let connection_id = base64::engine::general_purpose::STANDARD.encode(&id[..10]);
    let mut authorizer_context = Value::Null;
    if let Some((function, sources)) = &state.authorizer {
        if sources.iter().any(|s| !query.contains_key(s)) {
            return respond(StatusCode::UNAUTHORIZED, None, "Unauthorized");
        }
        let event = json!({
            "type": "REQUEST",
            "methodArn": format!(
                "arn:aws:execute-api:{}:{}:{}/{}/$connect",
                state.region, state.account_id, state.api_id, state.stage
            ),
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": context(&state, &connection_id, "$connect", "CONNECT", &user_agent),
        });
        let Some(policy) = invoke(&state, *function, &event).await else {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "Internal server error",
            );
        };
        let allowed = (policy.pointer("/policyDocument/Statement"))
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty() && s.iter().all(|st| st["Effect"] == "Allow"));
        if !allowed {
            return respond(StatusCode::FORBIDDEN, None, "Forbidden");
        }
        let mut context = policy["context"].as_object().cloned().unwrap_or_default();
        context.insert("principalId".into(), policy["principalId"].clone());
        authorizer_context = Value::Object(context);
    }
    if let Some(function) = state.routes.get("$connect") {
        let mut request_context =
            context(&state, &connection_id, "$connect", "CONNECT", &user_agent);
        request_context["authorizer"] = authorizer_context.clone();
        let event = json!({
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": request_context,
            "isBase64Encoded": false,
        });
        let status = invoke(&state, *function, &event)
            .await
            .map(|answer| answer["statusCode"].as_u64().unwrap_or(200) as u16);
        match status {
            Some(200..=299) => {}
            Some(code) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return respond(code, None, "Forbidden");
            }
            None => {
                return respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Internal server error",
                );
            }
        }
    }
    let upgraded = hyper::upgrade::on(&mut request);
    let (state2, id2) = (state.clone(), connection_id.clone());
    tokio::spawn(async move {
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        run(state2, id2, socket, authorizer_context, user_agent).await;
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("upgrade", "websocket".parse().expect("a header"));
    headers.insert("connection", "Upgrade".parse().expect("a header"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    headers.insert("sec-websocket-accept", accept.parse().expect("a header"));
    response
}

/// One connection's life: the client's messages to their routes, the management API's to the
/// client, until either side closes or a limit does; then `$disconnect`.
async fn run(
    state: Arc<State>,
    id: String,
    mut socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    authorizer: Value,
    user_agent: String,
) {
    let (outgoing, mut queued) = mpsc::unbounded_channel();
    let connected = now_ms();
    let connection = Arc::new(Connection {
        outgoing,
        connected_at_ms: connected,
        last_active_ms: std::sync::Mutex::new(connected),
        user_agent: user_agent.clone(),
    });
    (state.connections.lock().unwrap()).insert(id.clone(), connection.clone());
    let ends = tokio::time::Instant::now() + state.limits.lifetime;
    let mut idle_until = tokio::time::Instant::now() + state.limits.idle;
    let (code, reason) = loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    idle_until = tokio::time::Instant::now() + state.limits.idle;
                    *connection.last_active_ms.lock().unwrap() = now_ms();
                    message(&state, &id, &authorizer, &user_agent, text.as_str()).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    idle_until = tokio::time::Instant::now() + state.limits.idle;
                    *connection.last_active_ms.lock().unwrap() = now_ms();
                    message(&state, &id, &authorizer, &user_agent, &String::from_utf8_lossy(&bytes)).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    break (frame.as_ref().map_or(1005, |f| u16::from(f.code)), "client closed");
                }
                Some(Ok(_)) => {}
                Some(Err(WsError::Capacity(_))) => {
                    let _ = socket.send(close(CloseCode::Size, "Message too big")).await;
                    break (1009, "message too big");
                }
                Some(Err(_)) | None => break (1006, "connection lost"),
            },
            queued = queued.recv() => match queued {
                Some(Message::Close(frame)) => {
                    let _ = socket.send(Message::Close(frame)).await;
                    break (1000, "closed through @connections");
                }
                Some(message) => {
                    if socket.send(message).await.is_err() {
                        break (1006, "connection lost");
                    }
                }
                None => break (1006, "connection lost"),
            },
            _ = tokio::time::sleep_until(idle_until) => {
                let _ = socket.send(close(CloseCode::Away, "Going away")).await;
                break (1001, "idle timeout");
            }
            _ = tokio::time::sleep_until(ends) => {
                let _ = socket.send(close(CloseCode::Away, "Going away")).await;
                break (1001, "connection lifetime");
            }
        }
    };
    (state.connections.lock().unwrap()).remove(&id);
    if let Some(function) = state.routes.get("$disconnect") {
        let mut request_context = context(&state, &id, "$disconnect", "DISCONNECT", &user_agent);
        request_context["authorizer"] = authorizer;
        request_context["disconnectStatusCode"] = json!(code);
        request_context["disconnectReason"] = json!(reason);
        let event = json!({ "requestContext": request_context, "isBase64Encoded": false });
        invoke(&state, *function, &event).await;
    }
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// A client's message to its route: `$request.body.action` when it names one, else
/// `$default`.
async fn message(state: &State, id: &str, authorizer: &Value, user_agent: &str, body: &str) {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action")?.as_str().map(str::to_owned));
    let route = action
        .filter(|a| state.routes.contains_key(a))
        .unwrap_or_else(|| "$default".to_owned());
    let Some(function) = state.routes.get(&route) else {
        return;
    };
    let mut request_context = context(state, id, &route, "MESSAGE", user_agent);
    request_context["authorizer"] = authorizer.clone();
    let event =
        json!({ "requestContext": request_context, "body": body, "isBase64Encoded": false });
    invoke(state, *function, &event).await;
}

/// `@connections/{id}`: API Gateway's management API for one connection.
async fn management(state: &State, request: Request<Incoming>, id: &str) -> Response<Full<Bytes>> {
    let signed = (request.headers().get("authorization"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    if !signed {
        return respond(
            StatusCode::FORBIDDEN,
            Some("ForbiddenException"),
            "Forbidden",
        );
    }
    let method = request.method().clone();
    let connection = state.connections.lock().unwrap().get(id).cloned();
    let Some(connection) = connection else {
        return respond(
            StatusCode::GONE,
            Some("GoneException"),
            &format!("connection {id} is gone"),
        );
    };
    match method.as_str() {
        "POST" => {
            let body = http_body_util::Limited::new(request.into_body(), MAX_MESSAGE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes());
            let Ok(body) = body else {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some("PayloadTooLargeException"),
                    "Payload too large",
                );
            };
            let message = match String::from_utf8(body.to_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(bytes) => Message::Binary(bytes.into_bytes().into()),
            };
            if connection.outgoing.send(message).is_err() {
                return respond(
                    StatusCode::GONE,
                    Some("GoneException"),
                    &format!("connection {id} is gone"),
                );
            }
            let mut ok = Response::new(Full::new(Bytes::new()));
            *ok.status_mut() = StatusCode::OK;
            ok
        }
        "GET" => {
            let at = |ms: i64| snapglow::contracts::Timestamp::from_millis(ms).to_string();
            let body = json!({
                "connectedAt": at(connection.connected_at_ms),
                "lastActiveAt": at(*connection.last_active_ms.lock().unwrap()),
                "identity": { "sourceIp": "127.0.0.1", "userAgent": connection.user_agent },
            });
            let mut ok = Response::new(Full::new(Bytes::from(body.to_string())));
            ok.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("a header"),
            );
            ok
        }
        "DELETE" => {
            let _ = connection.outgoing.send(close(CloseCode::Normal, "closed"));
            let mut done = Response::new(Full::new(Bytes::new()));
            *done.status_mut() = StatusCode::NO_CONTENT;
            done
        }
        _ => respond(
            StatusCode::FORBIDDEN,
            Some("ForbiddenException"),
            "Forbidden",
        ),
    }
}
