//! Lambda events built from what the emulator returns, shaped exactly as AWS delivers them
//! (EVENT_SEMANTICS.md §1.8 and §2.7), so a function cannot tell the difference.

use base64::Engine;
use serde_json::{Value, json};

use crate::clients::REGION;

/// The SQS event for messages received from `queue_arn`.
pub fn sqs_event(queue_arn: &str, messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            // Every attribute value is a string, numbers and timestamps included.
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The Kinesis event for records read from one shard.
pub fn kinesis_event(
    stream_arn: &str,
    shard_id: &str,
    role_arn: &str,
    records: &[aws_sdk_kinesis::types::Record],
) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            // Seconds with exactly three decimals, as AWS sends them: aws_lambda_events 1.2
            // rejects a whole event whose fraction has more digits than milliseconds.
            let arrival = r.approximate_arrival_timestamp().map(|t| t.to_millis().unwrap_or(0)).unwrap_or(0);
            let seconds = format!("{}.{:03}", arrival.div_euclid(1000), arrival.rem_euclid(1000));
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key(),
                    "sequenceNumber": r.sequence_number(),
                    "data": base64::engine::general_purpose::STANDARD.encode(r.data().as_ref()),
                    "approximateArrivalTimestamp": serde_json::from_str::<Value>(&seconds).unwrap_or(json!(0)),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{}", r.sequence_number()),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role_arn,
                "awsRegion": REGION,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}
