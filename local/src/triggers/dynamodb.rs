//! A DynamoDB table's stream as a stream source: its shards' change records, shaped as
//! Lambda's DynamoDB event carries them (`dynamodb.NewImage` in DynamoDB's JSON, times in
//! epoch seconds).

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::stream::Fetched;
use crate::stack::clients::{AwsError, AwsResult, LocalClients, REGION};

/// An attribute in DynamoDB's JSON (`{"S": "..."}`), as stream events carry it.
pub fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(items) => json!({ "SS": items }),
        AttributeValue::Ns(items) => json!({ "NS": items }),
        AttributeValue::Bs(items) => json!({ "BS": items.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        _ => Value::Null,
    }
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn record_json(
    stream_arn: &str,
    record: &aws_sdk_dynamodbstreams::types::Record,
) -> Option<(String, Option<i64>, Value)> {
    let change = record.dynamodb()?;
    let sequence = change.sequence_number()?.to_owned();
    let created_ms = change
        .approximate_creation_date_time()
        .and_then(|t| t.to_millis().ok());
    let mut dynamodb = Map::new();
    if let Some(ms) = created_ms {
        // Whole seconds, as Lambda's DynamoDB events carry them.
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(ms / 1000));
    }
    for (name, item) in [
        ("Keys", change.keys()),
        ("NewImage", change.new_image()),
        ("OldImage", change.old_image()),
    ] {
        if let Some(item) = item {
            dynamodb.insert(name.into(), item_json(item));
        }
    }
    dynamodb.insert("SequenceNumber".into(), json!(sequence));
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes().unwrap_or(0)));
    if let Some(view) = change.stream_view_type() {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let value = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    Some((sequence, created_ms, value))
}

/// One batch per shard (possibly empty), after each shard's checkpoint.
pub async fn fetch(
    clients: &LocalClients,
    stream_arn: &str,
    checkpoints: &BTreeMap<String, String>,
    from_start: bool,
    limit: i32,
) -> Result<Vec<(String, Vec<Fetched>)>, AwsError> {
    let described = clients
        .dynamodb_streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .aws(|| format!("DescribeStream {stream_arn}"))?;
    let shards = described
        .stream_description
        .map(|d| d.shards.unwrap_or_default())
        .unwrap_or_default();
    let mut batches = Vec::with_capacity(shards.len());
    for shard in shards {
        let Some(shard_id) = shard.shard_id else {
            continue;
        };
        let mut request = clients
            .dynamodb_streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(&shard_id);
        request = match checkpoints.get(&shard_id) {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None if from_start => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            None => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let iterator = request
            .send()
            .await
            .aws(|| format!("GetShardIterator of {shard_id}"))?
            .shard_iterator;
        let records = clients
            .dynamodb_streams
            .get_records()
            .set_shard_iterator(iterator)
            .limit(limit.min(1000))
            .send()
            .await
            .aws(|| format!("GetRecords of {shard_id}"))?
            .records
            .unwrap_or_default();
        let fetched = records
            .iter()
            .filter_map(|r| record_json(stream_arn, r))
            .map(|(sequence, arrival_ms, record)| Fetched {
                sequence,
                arrival_ms,
                record,
            })
            .collect();
        batches.push((shard_id, fetched));
    }
    Ok(batches)
}
