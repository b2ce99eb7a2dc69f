//! The local HTTP API's start-up and its request path: route, preflight, authorizer, payload,
//! the function, and API Gateway's limits (10 MB request bodies, a 30 s integration timeout).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::authorizer::{Authorizer, Refusal};
use super::cors::{decorate, preflight};
use super::payload::{from_payload_v2, payload_v2};
use super::routes::{RouteEntry, find};
use crate::guard::Guard;
use crate::lambda::http::respond;
use crate::lambda::{Invoke, LocalFunction};
use crate::stack::StackInfo;
use crate::template::model::{Cors, EventSource, HttpApiProperties};

/// API Gateway's limits for HTTP APIs.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HttpApiError {
    #[error("the template has no AWS::Serverless::HttpApi with routes")]
    NoApi,
    #[error("starting the API's function {binary}")]
    Function {
        binary: String,
        #[source]
        source: crate::lambda::FunctionError,
    },
    #[error("serving the HTTP API on 127.0.0.1:{port}; pick another port with --api-port")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

struct State {
    api_id: String,
    routes: Vec<RouteEntry>,
    functions: Vec<Mutex<Box<dyn Invoke>>>,
    cors: Option<Cors>,
    authorizer: Authorizer,
}

/// A running local HTTP API; stops when dropped.
pub struct HttpApiServer {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for HttpApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The binaries of the functions an HTTP API invokes.
pub fn api_binaries(stack: &StackInfo) -> Vec<String> {
    let mut binaries: Vec<String> = stack
        .resources
        .values()
        .filter_map(crate::stack::LocalResource::function)
        .filter(|f| {
            f.events
                .values()
                .any(|e| matches!(e, EventSource::HttpApi(_)))
        })
        .map(|f| f.binary.clone())
        .collect();
    binaries.dedup();
    binaries
}

impl HttpApiServer {
    /// Serves every `HttpApi` route of the stack on 127.0.0.1:`port` (0: any free port),
    /// each function's binary from `binary_dir` logging to `log_dir`. The functions presign S3
    /// URLs for `s3_endpoint`: the caller's [`PresignedGate`], which must outlive the server
    /// for those URLs to work.
    ///
    /// [`PresignedGate`]: crate::stack::presigned::PresignedGate
    pub async fn start(
        stack: &StackInfo,
        binary_dir: &std::path::Path,
        log_dir: &std::path::Path,
        port: u16,
        s3_endpoint: &str,
    ) -> Result<HttpApiServer, HttpApiError> {
        Self::start_with(stack, binary_dir, log_dir, port, s3_endpoint, &[]).await
    }

    /// [`HttpApiServer::start`], with `environment` added to the functions' (the local
    /// WebSocket API's URL: `LIVE_URL`).
    pub async fn start_with(
        stack: &StackInfo,
        binary_dir: &std::path::Path,
        log_dir: &std::path::Path,
        port: u16,
        s3_endpoint: &str,
        environment: &[(String, String)],
    ) -> Result<HttpApiServer, HttpApiError> {
        let mut functions = Vec::new();
        for binary in api_binaries(stack) {
            let log = crate::lambda::LogSink::File(log_dir.join(format!("{binary}.log")));
            let failed = |source| HttpApiError::Function {
                binary: binary.clone(),
                source,
            };
            let mut spec =
                crate::lambda::spec_for(stack, &binary, binary_dir, log).map_err(failed)?;
            // Presigned URLs name the endpoint they were signed for.
            spec.environment
                .push(("AWS_ENDPOINT_URL_S3".to_owned(), s3_endpoint.to_owned()));
            spec.environment.extend(environment.iter().cloned());
            let function = LocalFunction::start(spec)
                .await
                .map_err(|e| failed(crate::lambda::FunctionError::Start(e)))?;
            functions.push((binary, function));
        }
        Self::serve(stack, functions, port).await
    }

    /// Serves the routes with functions the caller started.
    async fn serve(
        stack: &StackInfo,
        functions: Vec<(String, LocalFunction)>,
        port: u16,
    ) -> Result<HttpApiServer, HttpApiError> {
        let (api_id, api) = stack
            .resources
            .values()
            .find_map(|r| Some((r.name.clone(), r.http_api()?.clone())))
            .ok_or(HttpApiError::NoApi)?;
        let HttpApiProperties {
            auth,
            cors_configuration,
        } = api;
        let default_jwt = auth.as_ref().and_then(|a| {
            let name = a.default_authorizer.as_ref()?;
            Some(a.authorizers.get(name)?.clone())
        });
        let mut routes = Vec::new();
        let mut started: Vec<Mutex<Box<dyn Invoke>>> = Vec::new();
        for (binary, function) in functions {
            let Some((_, resource)) = stack.function_by_binary(&binary) else {
                continue;
            };
            let index = started.len();
            started.push(Mutex::new(Box::new(function)));
            for event in resource.function().iter().flat_map(|f| f.events.values()) {
                let EventSource::HttpApi(route) = event else {
                    continue;
                };
                let opted_out = route
                    .auth
                    .as_ref()
                    .and_then(|a| a.get("Authorizer"))
                    .and_then(Value::as_str)
                    == Some("NONE");
                routes.push(RouteEntry {
                    method: route.method.to_ascii_uppercase(),
                    path: route.path.clone(),
                    function: index,
                    jwt: if opted_out { None } else { default_jwt.clone() },
                });
            }
        }
        if routes.is_empty() {
            return Err(HttpApiError::NoApi);
        }
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| HttpApiError::Bind { port, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| HttpApiError::Bind { port, source })?
            .port();
        let state = Arc::new(State {
            api_id,
            routes,
            functions: started,
            cors: cors_configuration,
            authorizer: Authorizer::new(&stack.endpoint_url),
        });
        // Browsers only from the origins the API's CORS allows (the local site's).
        let guard = match &state.cors {
            Some(cors) => Guard::Origins(cors.allow_origins.clone()),
            None => Guard::Programs,
        };
        let server = crate::lambda::http::serve(listener, guard, state, handle);
        Ok(HttpApiServer {
            url: format!("http://127.0.0.1:{bound}"),
            server,
        })
    }
}

pub(super) fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = respond(status, json!({ "message": text }).to_string());
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a valid header"),
    );
    response
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = answer(&state, request, origin.as_deref()).await;
    if let (Some(cors), Some(origin)) = (&state.cors, origin.as_deref()) {
        decorate(cors, origin, &mut response);
    }
    Ok(response)
}

async fn answer(
    state: &State,
    request: Request<Incoming>,
    origin: Option<&str>,
) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if method == "OPTIONS"
        && let (Some(cors), Some(origin)) = (&state.cors, origin)
        && request
            .headers()
            .contains_key("access-control-request-method")
    {
        return preflight(cors, origin);
    }
    let Some((route, parameters)) = find(&state.routes, &method, &path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let claims = match &route.jwt {
        None => None,
        Some(jwt) => {
            let token = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned());
            match token {
                Some(token) if !token.is_empty() => {
                    match state.authorizer.verify(jwt, &token).await {
                        Ok(claims) => Some(claims),
                        Err(refusal) => {
                            let reason = crate::logging::chain(&refusal);
                            tracing::info!(%reason, route = %route.path, "JWT refused");
                            return match refusal {
                                Refusal::Scope { .. } => {
                                    message(StatusCode::FORBIDDEN, "Forbidden")
                                }
                                _ => message(StatusCode::UNAUTHORIZED, "Unauthorized"),
                            };
                        }
                    }
                }
                _ => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        }
    };
    let route_key = format!("{} {}", route.method, route.path);
    let function = route.function;
    let (parts, body) = request.into_parts();
    let Ok(body) = http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let event = payload_v2(
        &state.api_id,
        &parts,
        &route_key,
        &parameters,
        claims,
        &body,
    );
    let mut target = state.functions[function].lock().await;
    let invoked = tokio::time::timeout(
        INTEGRATION_TIMEOUT,
        target.invoke(serde_json::to_vec(&event).expect("events serialize")),
    )
    .await;
    match invoked {
        Err(_) => {
            // The function keeps running on AWS; here its process is reset for the next call.
            target.reset().await;
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, route = %route_key, "the API function failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Ok(Ok(answer)) => from_payload_v2(&answer),
    }
}
