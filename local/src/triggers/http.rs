//! The template's HTTP API on loopback, answered the way API Gateway's HTTP APIs do: routes
//! from the functions' `HttpApi` events, the JWT authorizer's checks (the token's signature
//! against the issuer's keys, `iss`, `exp`, `nbf`, and `aud` or `client_id` against the
//! audience; `401` otherwise), CORS preflights answered before authorization, payload format
//! 2.0 events to the real binary through the Runtime API, and API Gateway's limits (10 MB
//! request bodies, a 30 s integration timeout).
//!
//! Locally the Cognito issuer's keys come from the emulator
//! (`{endpoint}/{pool_id}/.well-known/jwks.json`); the issuer in the tokens is AWS's URL.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::lambda::http::{call, respond};
use crate::lambda::{Invoke, LocalFunction};
use crate::stack::StackInfo;
use crate::stack::clients::ACCOUNT_ID;
use crate::template::model::{Cors, EventSource, HttpApiProperties, JwtConfiguration};

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

/// One route: `PUT /images/{id}/like` → the function that serves it.
struct RouteEntry {
    method: String,
    path: String,
    function: usize,
    /// The JWT authorizer's settings, `None` for `Authorizer: NONE`.
    jwt: Option<JwtConfiguration>,
}

struct State {
    api_id: String,
    routes: Vec<RouteEntry>,
    functions: Vec<Mutex<Box<dyn Invoke>>>,
    cors: Option<Cors>,
    /// Where the emulator serves a Cognito pool's keys.
    endpoint_url: String,
    keys: Mutex<BTreeMap<String, jsonwebtoken::jwk::JwkSet>>,
}

/// A running local HTTP API; stops when dropped.
pub struct HttpApiServer {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
    /// Where the URLs the API signs point (S3's presigned-URL check): lives as long as the API.
    presigned: Option<crate::stack::presigned::PresignedGate>,
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
        .filter_map(|r| r.function.as_ref())
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
    /// each function's binary from `binary_dir` logging to `log_dir`.
    pub async fn start(
        stack: &StackInfo,
        binary_dir: &std::path::Path,
        log_dir: &std::path::Path,
        port: u16,
    ) -> Result<HttpApiServer, HttpApiError> {
        let mut signers: Vec<&crate::stack::iam::AccessKey> = stack
            .resources
            .values()
            .filter_map(|r| r.function.as_ref().map(|f| f.key(stack)))
            .collect();
        signers.push(&stack.admin);
        let cors = stack
            .resources
            .values()
            .filter(|r| r.kind == "AWS::S3::Bucket")
            .filter_map(|r| Some((r.name.clone()?, r.cors_rules.clone())))
            .collect();
        let gate =
            crate::stack::presigned::PresignedGate::start(&stack.endpoint_url, &signers, cors)
                .await
                .map_err(|source| HttpApiError::Bind { port: 0, source })?;
        let mut functions = Vec::new();
        for binary in api_binaries(stack) {
            let log = crate::lambda::LogSink::File(log_dir.join(format!("{binary}.log")));
            let failed = |source| HttpApiError::Function {
                binary: binary.clone(),
                source,
            };
            let mut spec =
                crate::lambda::spec_for(stack, &binary, binary_dir, log).map_err(failed)?;
            // Presigned URLs name the endpoint they were signed for: the gate.
            spec.environment
                .push(("AWS_ENDPOINT_URL_S3".to_owned(), gate.url.clone()));
            let function = LocalFunction::start(spec)
                .await
                .map_err(|e| failed(crate::lambda::FunctionError::Start(e)))?;
            functions.push((binary, function));
        }
        let mut server = Self::serve(stack, functions, port).await?;
        server.presigned = Some(gate);
        Ok(server)
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
            .find_map(|r| Some((r.name.clone()?, r.http_api.clone()?)))
            .ok_or(HttpApiError::NoApi)?;
        let HttpApiProperties {
            auth,
            cors_configuration,
        } = api;
        let default_jwt = auth.as_ref().and_then(|a| {
            let name = a.default_authorizer.as_ref()?;
            Some(a.authorizers.get(name)?.jwt_configuration.clone())
        });
        let mut routes = Vec::new();
        let mut started: Vec<Mutex<Box<dyn Invoke>>> = Vec::new();
        for (binary, function) in functions {
            let Some((_, resource)) = stack.function_by_binary(&binary) else {
                continue;
            };
            let index = started.len();
            started.push(Mutex::new(Box::new(function)));
            for event in resource.function.iter().flat_map(|f| f.events.values()) {
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
            endpoint_url: stack.endpoint_url.clone(),
            keys: Mutex::new(BTreeMap::new()),
        });
        let server = crate::lambda::http::serve(listener, state, handle);
        Ok(HttpApiServer {
            url: format!("http://127.0.0.1:{bound}"),
            server,
            presigned: None,
        })
    }
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = respond(status, json!({ "message": text }).to_string());
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a valid header"),
    );
    response
}

/// The route matching `method` and `path`, with its path parameters.
fn find<'a>(
    routes: &'a [RouteEntry],
    method: &str,
    path: &str,
) -> Option<(&'a RouteEntry, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    routes.iter().find_map(|route| {
        if route.method != method && route.method != "ANY" {
            return None;
        }
        let pattern: Vec<&str> = route.path.trim_matches('/').split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (p, s) in pattern.iter().zip(&segments) {
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !s.is_empty() => {
                    parameters.insert(name.to_owned(), (*s).to_owned());
                }
                Some(_) => return None,
                None if p == s => {}
                None => return None,
            }
        }
        Some((route, parameters))
    })
}

fn allowed_origin<'a>(cors: &Cors, origin: &'a str) -> Option<&'a str> {
    cors.allow_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// API Gateway answers a CORS preflight itself, before any authorizer runs.
fn preflight(cors: &Cors, origin: &str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::NO_CONTENT, Bytes::new());
    if let Some(origin) = allowed_origin(cors, origin) {
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        };
        set("access-control-allow-origin", origin.to_owned());
        set("access-control-allow-methods", cors.allow_methods.join(","));
        set("access-control-allow-headers", cors.allow_headers.join(","));
        if let Some(age) = cors.max_age {
            set("access-control-max-age", age.to_string());
        }
        if cors.allow_credentials == Some(true) {
            set("access-control-allow-credentials", "true".into());
        }
    }
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
    if let (Some(cors), Some(origin)) = (&state.cors, origin.as_deref())
        && let Some(origin) = allowed_origin(cors, origin)
        && !response
            .headers()
            .contains_key("access-control-allow-origin")
    {
        let headers = response.headers_mut();
        if let Ok(value) = origin.parse() {
            headers.insert("access-control-allow-origin", value);
        }
        if let Ok(value) = cors.expose_headers.join(",").parse() {
            headers.insert("access-control-expose-headers", value);
        }
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
                Some(token) if !token.is_empty() => match verify(state, jwt, &token).await {
                    Ok(claims) => Some(claims),
                    Err(refusal) => {
                        let reason = crate::logging::chain(&refusal);
                        tracing::info!(%reason, route = %route.path, "JWT refused");
                        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
                    }
                },
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
    let event = payload_v2(state, &parts, &route_key, &parameters, claims, &body);
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

/// What API Gateway hands the function (payload format 2.0).
fn payload_v2(
    state: &State,
    parts: &hyper::http::request::Parts,
    route_key: &str,
    parameters: &BTreeMap<String, String>,
    claims: Option<Map<String, Value>>,
    body: &[u8],
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = value.to_str().unwrap_or_default();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode(k))
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&decode(v));
            })
            .or_insert_with(|| decode(v));
    }
    let now = chrono::Utc::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (text, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(body), true)
        }
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": state.api_id,
            "domainName": headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into()),
            "domainPrefix": "127",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !parameters.is_empty() {
        event["pathParameters"] = json!(parameters);
    }
    if !body.is_empty() {
        event["body"] = json!(text);
    }
    if let Some(claims) = claims {
        // API Gateway passes every claim as a string.
        let claims: Map<String, Value> = claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(text))
            })
            .collect();
        event["requestContext"]["authorizer"] =
            json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    event
}

/// Query strings are form-encoded like S3's notification keys: `+` is a space, then
/// percent escapes. Undecodable text is passed on as it came.
fn decode(text: &str) -> String {
    resize::upload::decode_key(text).unwrap_or_else(|| text.to_owned())
}

/// The function's answer as API Gateway reads a payload 2.0 response: an object with a
/// `statusCode` is a response; anything else is a 200 JSON body.
fn from_payload_v2(answer: &[u8]) -> Response<Full<Bytes>> {
    let value: Value = match serde_json::from_slice(answer) {
        Ok(value) => value,
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        let mut response = respond(StatusCode::OK, value.to_string());
        response.headers_mut().insert(
            "content-type",
            "application/json".parse().expect("a valid header"),
        );
        return response;
    };
    let body = match value.get("body") {
        Some(Value::String(text))
            if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
        {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default()
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        _ => Vec::new(),
    };
    let mut response = respond(
        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    );
    for (name, value) in value
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let (Ok(name), Some(Ok(value))) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(str::parse::<hyper::header::HeaderValue>),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Why the JWT authorizer refused a token (API Gateway answers every one with 401; the reason
/// is logged).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("not a JWT")]
    NotJwt(#[source] jsonwebtoken::errors::Error),
    #[error("the token names no key (kid)")]
    NoKeyId,
    #[error("the issuer has no key {0:?}")]
    UnknownKey(String),
    #[error("the issuer's key {kid:?} is unusable")]
    BadKey {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("audience {found:?} is not one of {wanted:?}")]
    Audience {
        found: Vec<String>,
        wanted: Vec<String>,
    },
    #[error("only Cognito issuers can be checked locally, not {0}")]
    ForeignIssuer(String),
    #[error("fetching the issuer's keys from {url}")]
    Keys {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The JWT authorizer's checks; returns the token's claims.
async fn verify(
    state: &State,
    jwt: &JwtConfiguration,
    token: &str,
) -> Result<Map<String, Value>, Refusal> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let header = decode_header(token).map_err(Refusal::NotJwt)?;
    let kid = header.kid.ok_or(Refusal::NoKeyId)?;
    let keys = keys_of(state, &jwt.issuer).await?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| Refusal::UnknownKey(kid.clone()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|source| Refusal::BadKey {
        kid: kid.clone(),
        source,
    })?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[jwt.issuer.as_str()]);
    validation.validate_nbf = true;
    // `aud` (ID tokens) or `client_id` (Cognito access tokens), checked below as API Gateway does.
    validation.validate_aud = false;
    validation.leeway = 0;
    let data = decode::<Map<String, Value>>(token, &key, &validation).map_err(Refusal::Invalid)?;
    let claims = data.claims;
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => claims
            .get("client_id")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    if !audiences
        .iter()
        .any(|a| jwt.audience.iter().any(|wanted| wanted == a))
    {
        return Err(Refusal::Audience {
            found: audiences.iter().map(|a| (*a).to_owned()).collect(),
            wanted: jwt.audience.clone(),
        });
    }
    Ok(claims)
}

/// The issuer's signing keys, fetched once. A Cognito issuer's keys come from the emulator.
async fn keys_of(state: &State, issuer: &str) -> Result<jsonwebtoken::jwk::JwkSet, Refusal> {
    let mut cache = state.keys.lock().await;
    if let Some(keys) = cache.get(issuer) {
        return Ok(keys.clone());
    }
    let pool = issuer
        .strip_prefix("https://cognito-idp.")
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, pool)| pool.to_owned())
        .ok_or_else(|| Refusal::ForeignIssuer(issuer.to_owned()))?;
    let url = format!("{}/{pool}/.well-known/jwks.json", state.endpoint_url);
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| Refusal::Keys {
        url: url.clone(),
        source,
    };
    let (status, _, body) = call("GET", &url, &[], Vec::new())
        .await
        .map_err(|e| failed(e.into()))?;
    if status != 200 {
        return Err(failed(format!("the emulator answered {status}").into()));
    }
    let keys: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&body).map_err(|e| failed(e.into()))?;
    cache.insert(issuer.to_owned(), keys.clone());
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteEntry {
        RouteEntry {
            method: method.into(),
            path: path.into(),
            function: 0,
            jwt: None,
        }
    }

    #[test]
    fn routes_match_on_method_and_path_with_their_parameters() {
        let routes = [
            route("PUT", "/images/{id}/like"),
            route("GET", "/images/{id}"),
            route("POST", "/uploads"),
        ];
        let (found, parameters) = find(&routes, "PUT", "/images/abc/like").unwrap();
        assert_eq!(
            (found.path.as_str(), parameters["id"].as_str()),
            ("/images/{id}/like", "abc")
        );
        assert!(find(&routes, "DELETE", "/images/abc/like").is_none());
        assert!(find(&routes, "GET", "/images//like").is_none());
        assert!(find(&routes, "POST", "/uploads").is_some());
    }

    #[test]
    fn a_preflight_names_only_an_allowed_origin() {
        let cors = Cors {
            allow_origins: vec!["http://127.0.0.1:3000".into()],
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec!["authorization".into()],
            max_age: Some(600),
            ..Default::default()
        };
        let allowed = preflight(&cors, "http://127.0.0.1:3000");
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "http://127.0.0.1:3000"
        );
        assert_eq!(allowed.headers()["access-control-max-age"], "600");
        let other = preflight(&cors, "http://evil.example");
        assert!(!other.headers().contains_key("access-control-allow-origin"));
    }

    #[test]
    fn a_payload_v2_answer_without_a_status_code_is_a_200_json_body() {
        let plain = from_payload_v2(br#"{"hello":"world"}"#);
        assert_eq!(plain.status(), 200);
        let full = from_payload_v2(
            br#"{"statusCode":201,"headers":{"location":"/images/a"},"body":"{}"}"#,
        );
        assert_eq!(
            (
                full.status().as_u16(),
                full.headers()["location"].to_str().unwrap()
            ),
            (201, "/images/a")
        );
    }
}
