//! Loopback HTTP/1: the server under the local Runtime API, the fault proxy and the local
//! HTTP API, and the one client the local stack uses (`send`, `call`).

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::guard::Guard;

/// Serves `route` on `listener`, one task per connection, until the returned task is aborted.
/// A request `guard` refuses is answered 403 without reaching `route`.
pub fn serve<S, F, Fut>(
    listener: TcpListener,
    guard: Guard,
    state: Arc<S>,
    route: F,
) -> JoinHandle<()>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (state, guard) = (state.clone(), guard.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let refused = guard.refusal(request.headers());
                    let state = state.clone();
                    async move {
                        match refused {
                            Some(refusal) => Ok(refusal),
                            None => route(state, request).await,
                        }
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A response with a status and a body.
/// A request read whole (proxies forward it whole), or the 400 to answer when its body
/// cannot be read: the client's connection stays usable either way.
pub async fn read_whole(
    request: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), Response<Full<Bytes>>> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    match body.collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) => Err(respond(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

pub fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// How a loopback HTTP call failed (connecting, the exchange, or the URL).
#[derive(Debug, thiserror::Error)]
#[error("HTTP to {target} failed")]
pub struct HttpError {
    pub target: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Sends `request` to `host:port` over one HTTP/1 connection; the whole body is read.
pub async fn send(
    address: &str,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, HttpError> {
    use http_body_util::BodyExt;
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| HttpError {
        target: address.to_owned(),
        source,
    };
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| fail(e.into()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.into()))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(e.into()))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| fail(e.into()))?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// One call to an `http://host:port/path?query` URL; returns the status, headers and body.
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, hyper::HeaderMap, Vec<u8>), HttpError> {
    let bad_url = || HttpError {
        target: url.to_owned(),
        source: "only http://host:port/... URLs are supported".into(),
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad_url)?;
    let (address, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    // A `host` among `headers` replaces the URL's (a request as a rebound DNS name sends it).
    let host = (headers.iter())
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or(address, |(_, value)| *value);
    let mut builder = Request::builder()
        .method(method)
        .uri(&path)
        .header("host", host);
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| HttpError {
            target: url.to_owned(),
            source: e.into(),
        })?;
    let response = send(address, request).await?;
    let (parts, body) = response.into_parts();
    use http_body_util::BodyExt;
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    Ok((parts.status.as_u16(), parts.headers, body))
}
