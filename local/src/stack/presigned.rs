//! S3's check of presigned URLs, in front of the emulator. With IAM enforced, moto fails every
//! request that carries its signature in the query (it reads only the `Authorization` header)
//! and, without enforcement, it accepts any URL at all. S3 itself checks that the URL has not
//! expired and that its signature matches, then authorizes the request as its signer: this
//! gate does the same and forwards the request to the emulator signed in the header with the
//! signer's key, so the signer's policy decides (the API's role may sign PUTs under uploads/
//! only). Every other request passes unchanged.
//!
//! The API function points its S3 client here (`AWS_ENDPOINT_URL_S3`), so the URLs it signs
//! name this gate, as on AWS they name S3. Browsers PUT to those URLs from another origin: the
//! gate also answers as S3 does with the bucket's CORS rules (moto's server would allow any
//! origin), so a web client that works here works against S3.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

use super::iam::{AccessKey, SigningError, sign_headers, sigv4};
use crate::guard::Guard;
use crate::lambda::http::{read_whole, respond, send};
use crate::template::model::CorsRule;

/// A running gate; stops when dropped.
pub struct PresignedGate {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PresignedGate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Gate {
    /// The emulator's `host:port`.
    upstream: String,
    /// Secret keys by access key id: every signer the stack knows.
    keys: BTreeMap<String, AccessKey>,
    /// Each bucket's CORS rules.
    cors: BTreeMap<String, Vec<CorsRule>>,
}

impl PresignedGate {
    /// The gate in front of a stack's buckets: it knows every signer of the stack (each
    /// function's key and the admin's) and each bucket's CORS rules. Start it before the HTTP
    /// API whose functions presign URLs for it, and keep it as long as that API.
    pub async fn for_stack(stack: &super::StackInfo) -> std::io::Result<Self> {
        let mut signers: Vec<&AccessKey> = (stack.resources.values())
            .filter_map(|r| r.function().map(|f| f.key(stack)))
            .collect();
        signers.push(&stack.admin);
        let cors = (stack.resources.values())
            .filter_map(|r| match &r.kind {
                super::ResourceKind::Bucket { cors_rules } => {
                    Some((r.name.clone(), cors_rules.clone()))
                }
                _ => None,
            })
            .collect();
        Self::start(&stack.endpoint_url, &signers, cors).await
    }

    pub async fn start(
        endpoint_url: &str,
        keys: &[&AccessKey],
        cors: BTreeMap<String, Vec<CorsRule>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let gate = Arc::new(Gate {
            upstream: endpoint_url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
            keys: keys
                .iter()
                .map(|k| (k.access_key_id.clone(), (*k).clone()))
                .collect(),
            cors,
        });
        // Browsers come only from the origins the buckets' CORS rules name (the local site).
        let origins = (gate.cors.values().flatten())
            .flat_map(|rule| rule.allowed_origins.iter().cloned())
            .collect();
        let server = crate::lambda::http::serve(listener, Guard::Origins(origins), gate, pass);
        Ok(PresignedGate {
            url: format!("http://127.0.0.1:{port}"),
            server,
        })
    }
}

/// The query parameters of a SigV4 presigned URL.
const AUTH_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

async fn pass(
    gate: Arc<Gate>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = match read_whole(request).await {
        Ok(read) => read,
        Err(answer) => return Ok(answer),
    };
    let bucket = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let rules = gate.cors.get(&bucket).cloned().unwrap_or_default();
    let origin = parts
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if parts.method == hyper::Method::OPTIONS {
        return Ok(preflight(&rules, origin.as_deref(), &parts.headers));
    }
    let method = parts.method.as_str().to_owned();
    let mut answer = forward(&gate, parts, body).await;
    // S3's CORS headers on the actual request, from the bucket's rules only.
    let headers = answer.headers_mut();
    let moto_cors: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in moto_cors {
        headers.remove(name);
    }
    if let Some(origin) = origin
        && let Some(rule) = rules.iter().find(|r| r.allows(&origin, &method, &[]))
        && let Ok(value) = hyper::header::HeaderValue::from_str(&origin)
    {
        headers.insert("access-control-allow-origin", value);
        headers.insert("vary", hyper::header::HeaderValue::from_static("Origin"));
        if let Ok(exposed) = hyper::header::HeaderValue::from_str(&rule.expose_headers.join(", "))
            && !rule.expose_headers.is_empty()
        {
            headers.insert("access-control-expose-headers", exposed);
        }
    }
    Ok(answer)
}

/// S3's answer to a CORS preflight: the first rule matching origin, method and headers.
fn preflight(
    rules: &[CorsRule],
    origin: Option<&str>,
    headers: &hyper::HeaderMap,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let method = header("access-control-request-method");
    let requested = header("access-control-request-headers");
    let asked: Vec<&str> = requested.split(',').map(str::trim).collect();
    let allowed = origin.and_then(|o| {
        rules
            .iter()
            .find(|r| r.allows(o, &method, &asked))
            .map(|r| (o, r))
    });
    let Some((origin, rule)) = allowed else {
        return Refusal::Cors.answer();
    };
    let mut response = respond(StatusCode::OK, "");
    let out = response.headers_mut();
    for (name, value) in [
        ("access-control-allow-origin", origin.to_owned()),
        ("access-control-allow-methods", method),
        ("access-control-allow-headers", requested),
        (
            "access-control-max-age",
            rule.max_age.unwrap_or(0).to_string(),
        ),
        (
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".to_owned(),
        ),
    ] {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    response
}

/// The request on to the emulator: a presigned one checked and signed as its signer.
async fn forward(
    gate: &Gate,
    mut parts: hyper::http::request::Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if param(&params, "X-Amz-Signature").is_some() {
        let host = parts
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let presigned = Presigned::read(&params, &header, SystemTime::now());
        let key = match presigned.and_then(|p| {
            let key = gate.keys.get(&p.access_key_id).ok_or(Refusal::UnknownKey)?;
            p.verify(parts.method.as_str(), &host, parts.uri.path(), &params, key)?;
            Ok(key)
        }) {
            Ok(key) => key,
            Err(refusal) => return refusal.answer(),
        };
        // Forward as the signer: the same request, signed in the header with its key.
        let rest: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| !AUTH_PARAMS.contains(&k.as_str()))
            .cloned()
            .collect();
        let path_and_query = if rest.is_empty() {
            parts.uri.path().to_owned()
        } else {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(rest.iter());
            format!("{}?{}", parts.uri.path(), q.finish())
        };
        let url = format!("http://{host}{path_and_query}");
        let signed = match sign_s3(parts.method.as_str(), &url, &host, key) {
            Ok(signed) => signed,
            Err(e) => {
                return respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("presigned gate: {}", crate::logging::chain(&e)),
                );
            }
        };
        parts.uri = match path_and_query.parse() {
            Ok(uri) => uri,
            Err(e) => return respond(StatusCode::BAD_REQUEST, e.to_string()),
        };
        for (name, value) in signed {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(&value),
            ) {
                parts.headers.insert(name, value);
            }
        }
    }
    crate::guard::strip_browser_headers(&mut parts.headers);
    let forwarded = send(&gate.upstream, Request::from_parts(parts, Full::new(body))).await;
    forwarded.unwrap_or_else(|e| {
        respond(
            StatusCode::BAD_GATEWAY,
            format!("presigned gate: {}", crate::logging::chain(&e)),
        )
    })
}

/// What S3 answers a presigned URL it refuses.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Malformed(&'static str),
    UnknownKey,
    Expired,
    SignatureDoesNotMatch,
    Cors,
}

impl Refusal {
    fn answer(&self) -> Response<Full<Bytes>> {
        let (status, code, message) = match self {
            Refusal::Malformed(what) => (
                StatusCode::BAD_REQUEST,
                "AuthorizationQueryParametersError",
                *what,
            ),
            Refusal::UnknownKey => (
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            Refusal::Expired => (StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"),
            Refusal::Cors => (
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            ),
            Refusal::SignatureDoesNotMatch => (
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
        };
        let mut response = respond(
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
            ),
        );
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/xml"),
        );
        response
    }
}

/// A presigned URL's signing facts, read from its query.
#[derive(Debug)]
struct Presigned {
    access_key_id: String,
    signed_at: SystemTime,
    expires_in: Duration,
    /// The signed headers, with the request's values.
    headers: Vec<(String, String)>,
    signature: String,
}

/// One query parameter's value.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Presigned {
    fn read(
        params: &[(String, String)],
        header: &dyn Fn(&str) -> Option<String>,
        now: SystemTime,
    ) -> Result<Presigned, Refusal> {
        let param = |name: &str| param(params, name);
        if param("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(Refusal::Malformed(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
            ));
        }
        let credential = param("X-Amz-Credential").ok_or(Refusal::Malformed(
            "Query-string authentication requires the X-Amz-Credential parameter",
        ))?;
        let access_key_id = credential.split('/').next().unwrap_or_default().to_owned();
        let signed_at = param("X-Amz-Date")
            .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
            .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.and_utc().timestamp() as u64))
            .ok_or(Refusal::Malformed(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            ))?;
        let expires_in = param("X-Amz-Expires")
            .and_then(|e| e.parse::<u64>().ok())
            .filter(|e| (1..=604_800).contains(e))
            .map(Duration::from_secs)
            .ok_or(Refusal::Malformed(
                "X-Amz-Expires must be a number of seconds from 1 to 604800 (seven days)",
            ))?;
        if now > signed_at + expires_in {
            return Err(Refusal::Expired);
        }
        let headers = param("X-Amz-SignedHeaders")
            .unwrap_or("host")
            .split(';')
            .map(|name| (name.to_owned(), header(name).unwrap_or_default()))
            .collect();
        Ok(Presigned {
            access_key_id,
            signed_at,
            expires_in,
            headers,
            signature: param("X-Amz-Signature").unwrap_or_default().to_owned(),
        })
    }

    /// Signs the request again as S3 would and compares.
    fn verify(
        &self,
        method: &str,
        host: &str,
        path: &str,
        params: &[(String, String)],
        key: &AccessKey,
    ) -> Result<(), Refusal> {
        use aws_sigv4::http_request::SignableBody;
        let rest: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| !AUTH_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut url = format!("http://{host}{path}");
        if !rest.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(rest);
            url = format!("{url}?{}", q.finish());
        }
        let mut settings = presigning(self.expires_in);
        // Sign exactly the headers the URL names, whatever the default exclusions.
        settings.excluded_headers = Some(Vec::new());
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let instructions = sigv4(
            key,
            "s3",
            self.signed_at,
            settings,
            (method, &url, &headers, SignableBody::UnsignedPayload),
        )
        .map_err(|_| Refusal::SignatureDoesNotMatch)?;
        let expected = instructions
            .params()
            .iter()
            .find(|(k, _)| *k == "X-Amz-Signature")
            .map(|(_, v)| v.to_string());
        if expected.as_deref() == Some(self.signature.as_str()) {
            Ok(())
        } else {
            Err(Refusal::SignatureDoesNotMatch)
        }
    }
}

/// How S3 presigns: the signature in the query, the path encoded once and not normalized.
fn presigning(expires_in: Duration) -> aws_sigv4::http_request::SigningSettings {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignatureLocation, SigningSettings, UriPathNormalizationMode,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// The headers that sign an S3 request with `key`, body unsigned (as S3 allows over TLS).
fn sign_s3(
    method: &str,
    url: &str,
    host: &str,
    key: &AccessKey,
) -> Result<Vec<(String, String)>, SigningError> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SigningSettings,
        UriPathNormalizationMode,
    };
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    sign_headers(
        key,
        "s3",
        settings,
        (
            method,
            url,
            &[("host", host)],
            SignableBody::UnsignedPayload,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read_at(params: &[(String, String)], now: SystemTime) -> Result<Presigned, Refusal> {
        let header = |name: &str| (name == "host").then(|| "127.0.0.1:9".to_owned());
        Presigned::read(params, &header, now)
    }

    #[test]
    fn a_url_past_its_expiry_is_refused_before_its_signature_is_checked() {
        // Prepare: signed 2026-12-01 10:00:00 for 300 s.
        let params = query(&[
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            (
                "X-Amz-Credential",
                "AKIAEXAMPLE/20261201/us-east-1/s3/aws4_request",
            ),
            ("X-Amz-Date", "20261201T100000Z"),
            ("X-Amz-Expires", "300"),
            ("X-Amz-SignedHeaders", "host"),
            ("X-Amz-Signature", "00"),
        ]);
        let signed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_119_200);

        // Act
        let within = read_at(&params, signed + Duration::from_secs(299));
        let past = read_at(&params, signed + Duration::from_secs(301));

        // Assess
        let within = within.expect("a URL within its 300 s is read");
        assert_eq!(within.access_key_id, "AKIAEXAMPLE");
        assert_eq!(
            within.headers,
            [("host".to_owned(), "127.0.0.1:9".to_owned())]
        );
        assert_eq!(past.unwrap_err(), Refusal::Expired);
    }

    #[test]
    fn a_url_signed_with_the_key_verifies_and_a_changed_one_does_not() {
        // Prepare: a URL signed as the SDK signs one (query signature, unsigned payload).
        let key = AccessKey {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
        };
        let now = SystemTime::now();
        let signed_at = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            );
        let presigned = Presigned {
            access_key_id: key.access_key_id.clone(),
            signed_at,
            expires_in: Duration::from_secs(300),
            headers: vec![("host".into(), "127.0.0.1:9".into())],
            signature: String::new(),
        };
        let path = "/bucket/uploads/user/image";
        let mut good = presigned_signature(&presigned, path, &key);

        // Act
        let verified = Presigned {
            signature: std::mem::take(&mut good),
            ..presigned
        };

        // Assess
        assert_eq!(
            verified.verify(
                "PUT",
                "127.0.0.1:9",
                path,
                &query(&[("x-id", "PutObject")]),
                &key
            ),
            Ok(())
        );
        assert_eq!(
            verified.verify(
                "PUT",
                "127.0.0.1:9",
                "/bucket/renditions/x",
                &query(&[("x-id", "PutObject")]),
                &key
            ),
            Err(Refusal::SignatureDoesNotMatch)
        );
        let other = AccessKey {
            secret_access_key: "other".into(),
            ..key.clone()
        };
        assert_eq!(
            verified.verify(
                "PUT",
                "127.0.0.1:9",
                path,
                &query(&[("x-id", "PutObject")]),
                &other
            ),
            Err(Refusal::SignatureDoesNotMatch)
        );
    }

    /// The signature aws-sigv4 gives the URL (the SDK's own presigning path).
    fn presigned_signature(p: &Presigned, path: &str, key: &AccessKey) -> String {
        use aws_sigv4::http_request::SignableBody;
        let settings = presigning(p.expires_in);
        let url = format!("http://127.0.0.1:9{path}?x-id=PutObject");
        let instructions = sigv4(
            key,
            "s3",
            p.signed_at,
            settings,
            (
                "PUT",
                &url,
                &[("host", "127.0.0.1:9")],
                SignableBody::UnsignedPayload,
            ),
        )
        .unwrap();
        instructions
            .params()
            .iter()
            .find(|(k, _)| *k == "X-Amz-Signature")
            .map(|(_, v)| v.to_string())
            .unwrap()
    }
}
