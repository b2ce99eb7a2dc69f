//! The answers the fault proxy makes, in each service's own wire format: DynamoDB's and
//! Kinesis's JSON errors, SQS's JSON with its query-error header, S3's XML; canceled
//! transactions with their reasons; PutRecords' per-record failures; unprocessed keys; a body
//! cut off half-way.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::shapes::{Reasons, Service};
use crate::lambda::http::respond;

/// An answer's body: whole, or cut off by an error (hyper then aborts the connection).
pub(super) type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

pub(super) fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    use http_body_util::BodyExt;
    response.map(|body| body.map_err(|never| match never {}).boxed())
}

/// `response` with half its body, then an I/O error.
pub(super) fn cut_off(response: Response<Full<Bytes>>) -> Response<Body> {
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

pub(super) fn error(
    service: Service,
    status: u16,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let (body, content_type) = match service {
        Service::DynamoDb => (
            json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message })
                .to_string(),
            "application/x-amz-json-1.0",
        ),
        Service::Kinesis | Service::Rekognition => (
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
pub(super) fn canceled(request: &Value, reasons: &Reasons) -> Response<Full<Bytes>> {
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
pub(super) fn failed_records(request: &Value, code: &str) -> Response<Full<Bytes>> {
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
pub(super) async fn leave_unprocessed(
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

/// A BatchWriteItem answer with every other request of each table left in `UnprocessedItems`
/// (HTTP 200), as DynamoDB answers while it throttles part of a batch.
pub(super) fn leave_items_unprocessed(asked: &Value) -> Response<Full<Bytes>> {
    let mut unprocessed = serde_json::Map::new();
    if let Some(tables) = asked["RequestItems"].as_object() {
        for (table, requests) in tables {
            let left: Vec<Value> = (requests.as_array().into_iter().flatten())
                .step_by(2)
                .cloned()
                .collect();
            unprocessed.insert(table.clone(), Value::Array(left));
        }
    }
    let mut response = respond(
        StatusCode::OK,
        json!({ "UnprocessedItems": unprocessed }).to_string(),
    );
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// S3's DeleteObjects answer (HTTP 200) with an `<Error>` of `code` for every `<Key>` of the
/// request's `<Delete>` document.
pub(super) fn delete_errors(request: &[u8], code: &str) -> Response<Full<Bytes>> {
    let text = String::from_utf8_lossy(request);
    let errors: String = (text.split("<Key>").skip(1))
        .filter_map(|rest| rest.split("</Key>").next())
        .map(|key| {
            format!(
                "<Error><Key>{key}</Key><Code>{code}</Code><Message>{code} (fault layer)</Message></Error>"
            )
        })
        .collect();
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{errors}</DeleteResult>"#
    );
    let mut response = respond(StatusCode::OK, body);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}
