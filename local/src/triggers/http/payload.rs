//! Payload format 2.0 both ways: the event API Gateway hands the function, and how it reads
//! the function's answer.

use http_body_util::Full;
use hyper::Response;
use hyper::StatusCode;
use hyper::body::Bytes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::server::message;
use crate::lambda::http::respond;
use crate::stack::clients::ACCOUNT_ID;

/// What API Gateway hands the function (payload format 2.0).
pub(super) fn payload_v2(
    api_id: &str,
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
            "apiId": api_id,
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
pub(super) fn from_payload_v2(answer: &[u8]) -> Response<Full<Bytes>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
