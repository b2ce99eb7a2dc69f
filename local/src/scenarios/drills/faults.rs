//! The faults a drill injects.

use std::time::Duration;

use crate::faults::{Fault, Reasons, Service, Shape};

/// Faults to inject while a pipeline runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Share of invocations whose process is killed mid-batch (or just after it).
    pub crash_percent: u64,
    /// Share of DynamoDB requests answered with a throttling error.
    pub throttle_percent: u64,
    /// Share of DynamoDB and Kinesis requests answered, per shape, with each failure shape AWS
    /// documents for them ([`wire_faults`]).
    pub wire_percent: u64,
    /// How long the streams keep records (`None`: 24 h, as deployed).
    pub stream_retention: Option<Duration>,
    pub seed: u64,
}

/// Every failure shape the drills inject at the wire, each for `percent` of the requests it
/// can answer: DynamoDB's for the relay and both consumers, Kinesis's for the relay's puts.
/// HAZARD: a hang outlasts the SDK's attempt timeout (2.5 s for a 30 s function), so the
/// request is sent again while the first is still on its way: the ambiguous commit that
/// transactions' tokens and conditions must absorb.
pub fn wire_faults(percent: u64) -> Vec<Fault> {
    let dynamodb = |operation, shape| Fault::share(Service::DynamoDb, operation, percent, shape);
    let kinesis = |shape| Fault::share(Service::Kinesis, Some("PutRecords"), percent, shape);
    let error = |status, code, message| Shape::Error {
        status,
        code,
        message,
    };
    vec![
        dynamodb(Some("TransactWriteItems"), Shape::throttled_transaction()),
        dynamodb(
            Some("TransactWriteItems"),
            Shape::Canceled(Reasons::At(0, "TransactionConflict")),
        ),
        dynamodb(Some("TransactWriteItems"), Shape::Canceled(Reasons::Absent)),
        dynamodb(Some("BatchGetItem"), Shape::UnprocessedKeys),
        dynamodb(
            None,
            error(
                400,
                "ThrottlingException",
                "Throughput exceeds the current capacity of your table or index.",
            ),
        ),
        dynamodb(
            None,
            error(500, "InternalServerError", "Internal server error"),
        ),
        Fault::share(
            Service::DynamoDb,
            None,
            percent.div_ceil(5),
            Shape::Hang(Duration::from_secs(3)),
        ),
        dynamodb(None, Shape::Reset),
        // The ambiguous commits: a write that lands and whose answer is lost past the attempt
        // timeout, or answered 500.
        Fault::share(
            Service::DynamoDb,
            Some("TransactWriteItems"),
            percent.div_ceil(5),
            Shape::Lost(Duration::from_secs(3)),
        ),
        dynamodb(
            None,
            Shape::Landed {
                status: 500,
                code: "InternalServerError",
                message: "Internal server error",
            },
        ),
        kinesis(Shape::Reset),
        kinesis(Shape::Landed {
            status: 500,
            code: "InternalFailure",
            message: "Internal service failure",
        }),
        kinesis(Shape::FailedRecords(
            "ProvisionedThroughputExceededException",
        )),
        kinesis(Shape::FailedRecords("InternalFailure")),
        kinesis(error(
            400,
            "KMSThrottlingException",
            "Rate exceeded for KMS key",
        )),
        kinesis(error(500, "InternalFailure", "Internal service failure")),
    ]
}
