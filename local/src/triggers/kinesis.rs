//! Kinesis as a stream source: its shards' records, and the Kinesis event Lambda builds.

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use serde_json::Value;
use std::collections::BTreeMap;

use super::stream::Fetched;
use crate::stack::clients::{AwsError, AwsResult, LocalClients, REGION};

fn arrival_ms(record: &Record) -> Option<i64> {
    record
        .approximate_arrival_timestamp()
        .and_then(|t| t.to_millis().ok())
}

/// One batch per shard (possibly empty), after each shard's checkpoint.
pub async fn fetch(
    clients: &LocalClients,
    stream_name: &str,
    stream_arn: &str,
    role_arn: &str,
    checkpoints: &BTreeMap<String, String>,
    from_start: bool,
    limit: i32,
) -> Result<Vec<(String, Vec<Fetched>)>, AwsError> {
    let shards = clients
        .kinesis
        .list_shards()
        .stream_name(stream_name)
        .send()
        .await
        .aws(|| format!("ListShards of {stream_name}"))?
        .shards
        .unwrap_or_default();
    let mut batches = Vec::with_capacity(shards.len());
    for shard in shards {
        let shard_id = shard.shard_id().to_owned();
        let mut request = clients
            .kinesis
            .get_shard_iterator()
            .stream_name(stream_name)
            .shard_id(&shard_id);
        request = match checkpoints.get(&shard_id) {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            None if from_start => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            None => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let iterator = request
            .send()
            .await
            .aws(|| format!("GetShardIterator of {shard_id}"))?
            .shard_iterator;
        let records = clients
            .kinesis
            .get_records()
            .set_shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .aws(|| format!("GetRecords of {shard_id}"))?
            .records;
        let event = kinesis_event(stream_arn, &shard_id, role_arn, &records);
        let fetched = records
            .iter()
            .zip(event["Records"].as_array().cloned().unwrap_or_default())
            .map(|(r, record)| Fetched {
                sequence: r.sequence_number().to_owned(),
                arrival_ms: arrival_ms(r),
                record,
            })
            .collect();
        batches.push((shard_id, fetched));
    }
    Ok(batches)
}

/// One record of a shard, as a Kinesis event carries it.
pub struct ShardRecord<'a> {
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
    pub data: &'a [u8],
    pub arrival_ms: i64,
}

/// The Kinesis event for records read from one shard, as Lambda delivers it (`role_arn`: the
/// mapping's `invokeIdentityArn`).
pub fn kinesis_event(
    stream_arn: &str,
    shard_id: &str,
    role_arn: &str,
    records: &[Record],
) -> Value {
    let records = records.iter().map(|r| ShardRecord {
        partition_key: r.partition_key().unwrap_or_default(),
        sequence_number: r.sequence_number(),
        data: r.data().as_ref(),
        arrival_ms: arrival_ms(r).unwrap_or(0),
    });
    let event = event_of(stream_arn, shard_id, role_arn, records);
    let mut value = serde_json::to_value(&event).expect("a Kinesis event serializes");
    // aws_lambda_events writes the arrival time as a string ("1795000000.123"); Lambda sends
    // a number with millisecond precision. Send what Lambda sends.
    for record in value["Records"].as_array_mut().into_iter().flatten() {
        let stamp = &mut record["kinesis"]["approximateArrivalTimestamp"];
        if let Some(number) = stamp
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            *stamp = number;
        }
        // Lambda names the encryption only for encrypted records; a plain one has no field.
        if let Some(kinesis) = record["kinesis"].as_object_mut() {
            kinesis.remove("encryptionType");
        }
    }
    value
}

/// The typed event of one shard's records (what a handler receives).
pub fn event_of<'a>(
    stream_arn: &str,
    shard_id: &str,
    role_arn: &str,
    records: impl IntoIterator<Item = ShardRecord<'a>>,
) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    event.records = records
        .into_iter()
        .map(|r| {
            let mut record = KinesisEventRecord::default();
            record.kinesis.partition_key = r.partition_key.to_owned();
            record.kinesis.sequence_number = r.sequence_number.to_owned();
            *record.kinesis.data = r.data.to_vec();
            record.kinesis.kinesis_schema_version = Some("1.0".into());
            record.kinesis.approximate_arrival_timestamp = SecondTimestamp(
                chrono::DateTime::from_timestamp_millis(r.arrival_ms).unwrap_or_default(),
            );
            record.aws_region = Some(REGION.to_owned());
            record.event_id = Some(format!("{shard_id}:{}", r.sequence_number));
            record.event_name = Some("aws:kinesis:record".into());
            record.event_source = Some("aws:kinesis".into());
            record.event_source_arn = Some(stream_arn.to_owned());
            record.event_version = Some("1.0".into());
            record.invoke_identity_arn = Some(role_arn.to_owned());
            record
        })
        .collect();
    event
}

/// A Kinesis record as Lambda's event filtering sees it: the `kinesis` object's fields at the
/// top (`partitionKey`, `sequenceNumber`, ...) and `data` decoded, as JSON when it is JSON.
/// Data that is not JSON stays its base64 text, which no pattern on `data`'s fields matches:
/// AWS drops such records from a mapping filtering on the data, and so does this.
pub fn filter_view(record: &Value) -> Value {
    use base64::Engine;
    let mut view = record.get("kinesis").cloned().unwrap_or(Value::Null);
    let decoded = (view.get("data").and_then(Value::as_str))
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    if let (Some(decoded), Some(fields)) = (decoded, view.as_object_mut()) {
        fields.insert("data".into(), decoded);
    }
    view
}

#[cfg(test)]
mod filter_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pattern_on_the_data_sees_it_decoded_and_a_record_that_is_not_json_matches_nothing() {
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let record =
            |data: &[u8]| json!({ "kinesis": { "partitionKey": "beach", "data": encode(data) } });
        let pattern = json!({ "data": { "type": ["ImageDeleted"] } });
        let matches =
            |data: &[u8]| super::super::filter::matches(&pattern, &filter_view(&record(data)));

        assert!(matches(br#"{"type":"ImageDeleted","data":{}}"#));
        assert!(!matches(br#"{"type":"ImageLiked","data":{}}"#));
        assert!(!matches(b"not json"));
    }
}
