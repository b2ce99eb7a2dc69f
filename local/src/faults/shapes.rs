//! The vocabulary of the fault layer: which requests a fault answers ([`Service`], an
//! operation, how many or what share) and how ([`Shape`]), in the terms of AWS's API references.

use std::time::Duration;

/// The services a fault can target, told apart by their protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// JSON 1.0, `X-Amz-Target: DynamoDB_20120810.<Operation>`.
    DynamoDb,
    /// JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Operation>`.
    Kinesis,
    /// JSON 1.0, `X-Amz-Target: AmazonSQS.<Operation>`.
    Sqs,
    /// JSON 1.1, `X-Amz-Target: RekognitionService.<Operation>`.
    Rekognition,
    /// REST-XML: the operation is read from the method and the object's subresource (GET:
    /// GetObject, PUT: PutObject, PUT `?tagging`: PutObjectTagging, POST `?delete`:
    /// DeleteObjects).
    S3,
}

impl Service {
    /// The service and operation of a request.
    pub(super) fn of(
        method: &hyper::Method,
        query: Option<&str>,
        target: Option<&str>,
    ) -> (Service, String) {
        let Some(target) = target else {
            let subresource = |name: &str| {
                query.is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(name)))
            };
            let operation = match method.as_str() {
                "PUT" if subresource("tagging") => "PutObjectTagging",
                "POST" if subresource("delete") => "DeleteObjects",
                "GET" if subresource("list-type") => "ListObjectsV2",
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
        } else if prefix == "RekognitionService" {
            Service::Rekognition
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
    /// BatchWriteItem: forwarded, then every other request (the first, third, …: so a lone
    /// one too) is answered as `UnprocessedItems`, as DynamoDB does while it throttles part of
    /// a batch. The requests named did take effect here: the shape is for idempotent writes
    /// (deletes), whose re-send it makes the caller send.
    UnprocessedItems,
    /// S3 DeleteObjects: nothing forwarded; HTTP 200 with an `<Error>` of this code for every
    /// key asked, as S3 answers a multi-object delete whose deletes failed.
    DeleteErrors(&'static str),
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
    pub(super) fn label(&self) -> String {
        match self {
            Shape::Error { status, code, .. } => format!("{status} {code}"),
            Shape::Canceled(Reasons::Each(code)) => format!("canceled [{code}…]"),
            Shape::Canceled(Reasons::At(at, code)) => format!("canceled [{at}: {code}]"),
            Shape::Canceled(Reasons::Absent) => "canceled without reasons".into(),
            Shape::UnprocessedKeys => "UnprocessedKeys".into(),
            Shape::UnprocessedItems => "UnprocessedItems".into(),
            Shape::DeleteErrors(code) => format!("DeleteObjects errors ({code})"),
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
