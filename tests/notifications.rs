//! notifier's rules, each through the real stream, the real binary and the real table.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use snapglow::batch::BatchFunction;
use snapglow::contracts::{
    Envelope, ImageHeldV1, ImagePublishedV2, ImageRejectedV1, SocialEvent, Timestamp,
};
use snapglow_tests::{TestStack, invoke_json};
use std::time::Duration;
use uuid::Uuid;

const T0: i64 = 1_795_000_000_000; // aligned to nothing in particular
const MINUTE: i64 = 60_000;

fn envelope(at_ms: i64, event: SocialEvent) -> Envelope {
    Envelope {
        event_id: Uuid::new_v4(),
        occurred_at: Timestamp::from_millis(at_ms),
        correlation_id: "test".into(),
        producer: "test".into(),
        event,
    }
}

fn published(image: &str, owner: &str, at_ms: i64) -> Envelope {
    envelope(
        at_ms,
        SocialEvent::ImagePublished(ImagePublishedV2 {
            image_id: image.into(),
            owner_id: owner.into(),
            source_key: format!("uploads/{owner}/{image}.jpg"),
            source_etag: "e".into(),
            width: 10,
            height: 10,
            renditions: vec![],
            placeholder: None,
            taken_at: None,
            camera_make: None,
            camera_model: None,
            lens: None,
        }),
    )
}

fn liked(image: &str, user: &str, at_ms: i64) -> Envelope {
    envelope(at_ms, SocialEvent::like(image, user, true, None))
}

fn undone(image: &str, user: &str, at_ms: i64) -> Envelope {
    envelope(at_ms, SocialEvent::like(image, user, false, None))
}

/// Delivers the whole stream to the notifier (optionally several times), one batch per shard.
async fn deliver_all(stage: &TestStack, function: &mut snapglow_local::lambda::LocalFunction) {
    for (shard, records) in stage.shards().await {
        let response = invoke_json(function, &stage.kinesis_batch(&shard, &records)).await;
        assert_eq!(response["batchItemFailures"], Value::Array(vec![]));
    }
}

async fn inbox(stage: &TestStack, user: &str) -> Vec<(String, String, Vec<String>)> {
    let table = stage.inbox_reader();
    table
        .inbox(user)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.image_id, n.text, n.actors))
        .collect()
}

fn texts(items: &[(String, String, Vec<String>)]) -> Vec<&str> {
    items.iter().map(|(_, text, _)| text.as_str()).collect()
}

#[tokio::test]
async fn owners_hear_once_that_photos_are_live_rejected_or_held_however_often_the_stream_replays() {
    let stage = TestStack::start().await;
    let mut notifier = stage.function("notifier").await;
    let live = published("beach", "alice", T0);
    let rejected = envelope(
        T0 + 1,
        SocialEvent::ImageRejected(ImageRejectedV1 {
            image_id: "bomb".into(),
            owner_id: "alice".into(),
            source_key: "uploads/alice/bomb.png".into(),
            reason: "decompression_bomb".into(),
            message: "too many pixels".into(),
        }),
    );
    let held = envelope(
        T0 + 2,
        SocialEvent::ImageHeld(ImageHeldV1 {
            image_id: "dunes".into(),
            owner_id: "alice".into(),
            source_key: "uploads/alice/dunes".into(),
            reason: "moderation".into(),
            message: "the content check found Explicit".into(),
            label: Some("Explicit".into()),
            confidence: Some(91),
        }),
    );
    // GIVEN the three events, the publication put twice by a retrying producer
    stage
        .publish(&[live.clone(), rejected, held.clone(), live, held])
        .await;
    // WHEN the stream is delivered three times (redelivery and two full replays)
    for _ in 0..3 {
        deliver_all(&stage, &mut notifier).await;
    }
    // THEN alice has exactly three notifications
    let items = inbox(&stage, "alice").await;
    assert_eq!(
        texts(&items),
        vec![
            "Your photo is held for review; only you can see it until then",
            "Your upload was rejected: too many pixels",
            "Your photo is live"
        ]
    );
}

#[tokio::test]
async fn a_batch_of_image_events_is_written_in_few_transactions_and_each_is_told_once() {
    // Prepare: 70 photos of 7 owners published, 5 of the events put twice by a retrying
    // producer; the notifier's handler in this process, on the emulator's table, so its
    // requests can be counted
    let stage = TestStack::start().await;
    let mut events: Vec<Envelope> = (0..70)
        .map(|i| published(&format!("photo{i:02}"), &format!("owner{}", i % 7), T0 + i))
        .collect();
    events.extend(events[..5].to_vec());
    stage.publish(&events).await;
    let table = notifier::table::NotificationsTable::new(
        stage.clients.dynamodb.clone(),
        stage.name("NotificationsTable"),
        Duration::from_secs(86_400),
        Duration::from_secs(3600),
    );
    let handler = notifier::Notifier::new(table, 15 * MINUTE);
    let quarantine = snapglow::quarantine::SqsQuarantine::new(
        stage.clients.sqs.clone(),
        stage.url("QuarantineQueue"),
    );
    let deliver = || async {
        for (shard, records) in stage.shards().await {
            let event = serde_json::from_value(stage.kinesis_batch(&shard, &records)).unwrap();
            let ctx = snapglow::batch::BatchContext::new(
                "notifier",
                snapglow::batch::Deadline::after(Duration::from_secs(60)),
                Duration::from_secs(5),
                &quarantine,
            );
            let (response, report) = handler.handle_batch(event, &ctx).await;
            assert!(response.batch_item_failures.is_empty(), "{report:?}");
        }
    };

    // Act: the stream delivered, then delivered again (a redelivery)
    deliver().await;
    let first = handler
        .table
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    deliver().await;
    let both = handler
        .table
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);

    // Assess: every owner heard once of each of their ten photos
    for owner in 0..7 {
        let items = inbox(&stage, &format!("owner{owner}")).await;
        assert_eq!(
            texts(&items),
            vec!["Your photo is live"; 10],
            "owner{owner}"
        );
    }
    // ... for one transaction per up to 33 notices (one more when a duplicate cancels one),
    // and no query: no like came early, so no owner item carries the mark. Each event alone
    // took a transaction and a query (150 requests); grouped but querying, 85.
    let records = events.len();
    assert!(
        first <= 8,
        "the first delivery took {first} requests for {records} image events"
    );
    assert!(
        both - first <= 8,
        "the redelivery took {} requests for {records} image events",
        both - first
    );
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn likes_within_a_window_coalesce_and_owners_do_not_hear_their_own() {
    let stage = TestStack::start().await;
    let mut notifier = stage.function("notifier").await;
    let window = 15 * MINUTE;
    let start = (T0 / window + 1) * window; // the start of a window
    stage
        .publish(&[
            published("beach", "alice", start),
            liked("beach", "bob", start + MINUTE),
            liked("beach", "alice", start + 2 * MINUTE), // her own
            liked("beach", "carol", start + 3 * MINUTE),
            liked("beach", "bob", start + 4 * MINUTE), // again: still one like
            liked("beach", "dan", start + 5 * MINUTE),
            liked("beach", "erin", start + 6 * MINUTE),
            liked("beach", "fay", start + window + MINUTE), // the next window
        ])
        .await;
    deliver_all(&stage, &mut notifier).await;
    deliver_all(&stage, &mut notifier).await;
    let items = inbox(&stage, "alice").await;
    assert_eq!(
        texts(&items),
        vec![
            "fay liked your photo",
            "erin and 3 others liked your photo",
            "Your photo is live"
        ]
    );
    assert_eq!(
        items[1].2,
        vec!["erin", "dan", "bob"],
        "the three latest, most recent first, bob once"
    );
}

#[tokio::test]
async fn an_undone_like_that_was_not_seen_is_taken_out_and_a_lone_one_leaves_no_notification() {
    let stage = TestStack::start().await;
    let mut notifier = stage.function("notifier").await;
    let window = 15 * MINUTE;
    let start = (T0 / window + 1) * window;
    stage
        .publish(&[
            published("beach", "alice", start),
            published("dunes", "alice", start + 1),
            liked("beach", "bob", start + MINUTE),
            liked("beach", "carol", start + 2 * MINUTE),
            undone("beach", "bob", start + 3 * MINUTE),
            liked("dunes", "dan", start + window - 1),
            liked("dunes", "eve", start + window), // the next window has a notification too
            undone("dunes", "dan", start + window + 1), // in the next window: still found
        ])
        .await;
    let expected = vec![
        "eve liked your photo",
        "carol liked your photo",
        "Your photo is live",
        "Your photo is live",
    ];
    deliver_all(&stage, &mut notifier).await;
    assert_eq!(texts(&inbox(&stage, "alice").await), expected);
    // A replay of the whole stream finds every write done and changes nothing.
    deliver_all(&stage, &mut notifier).await;
    assert_eq!(texts(&inbox(&stage, "alice").await), expected);
}

#[tokio::test]
async fn a_like_that_comes_before_its_image_is_published_is_told_once_the_owner_is_known() {
    let stage = TestStack::start().await;
    let mut notifier = stage.function("notifier").await;
    // GIVEN a like of an image whose publication has not reached this consumer, then a
    // known image and a like of it
    stage
        .publish(&[
            liked("early", "bob", T0),
            published("beach", "alice", T0 + 1),
            liked("beach", "bob", T0 + 2),
        ])
        .await;
    deliver_all(&stage, &mut notifier).await;
    assert_eq!(
        texts(&inbox(&stage, "alice").await),
        vec!["bob liked your photo", "Your photo is live"],
        "the shard is not blocked by the early like"
    );
    assert_eq!(inbox(&stage, "carol").await, vec![]);
    // WHEN the early image's publication comes, and the stream is then replayed
    stage.publish(&[published("early", "carol", T0 + 3)]).await;
    deliver_all(&stage, &mut notifier).await;
    deliver_all(&stage, &mut notifier).await;
    // THEN its owner hears of the like that came first, once
    assert_eq!(
        inbox(&stage, "carol").await,
        vec![
            ("early".to_owned(), "Your photo is live".to_owned(), vec![]),
            (
                "early".to_owned(),
                "bob liked your photo".to_owned(),
                vec!["bob".to_owned()]
            ),
        ],
        "newest activity first: the like happened before the publication"
    );
}

#[tokio::test]
async fn a_poison_record_is_quarantined_and_the_records_after_it_are_processed() {
    let stage = TestStack::start().await;
    let mut notifier = stage.function("notifier").await;
    stage.publish(&[published("beach", "alice", T0)]).await;
    stage.put_raw("beach", b"{\"type\":\"ImageLiked\"").await;
    stage.publish(&[liked("beach", "bob", T0 + 2)]).await;
    deliver_all(&stage, &mut notifier).await;
    assert_eq!(
        texts(&inbox(&stage, "alice").await),
        vec!["bob liked your photo", "Your photo is live"]
    );
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["reason"], "malformed_envelope");
    assert_eq!(quarantined[0]["raw_text"], "{\"type\":\"ImageLiked\"");
}

/// The stored size of an item, as DynamoDB counts it (names plus values), approximately.
fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value_bytes(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len() / 2 + 1,
            AttributeValue::Bool(_) => 1,
            AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
            AttributeValue::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value_bytes(v))
                    .sum::<usize>()
            }
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

#[tokio::test]
async fn a_burst_of_10000_likes_on_one_photo_is_one_small_notification_counted_exactly() {
    // Prepare: alice's photo, then 10,000 likes of it within one window, 2 of them taken back
    // and 50 delivered twice by a retrying producer
    let stage = TestStack::start().await;
    let window = 15 * MINUTE;
    let start = (T0 / window + 1) * window;
    let mut events = vec![published("viral", "alice", start)];
    events.extend((0..10_000).map(|i| liked("viral", &format!("fan{i:05}"), start + 1 + i)));
    events.extend(events[1..51].to_vec());
    events.push(undone("viral", "fan00007", start + 20_000));
    events.push(undone("viral", "fan09999", start + 20_001));
    for chunk in events.chunks(500) {
        let entries = chunk
            .iter()
            .map(|e| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key("viral")
                    .data(aws_sdk_kinesis::primitives::Blob::new(e.to_json()))
                    .build()
                    .unwrap()
            })
            .collect();
        let output = stage
            .clients
            .kinesis
            .put_records()
            .stream_name(stage.name("ImageSocialEvents"))
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(output.failed_record_count(), Some(0));
    }
    let mut notifier = stage.function("notifier").await;
    let shards = stage.shards().await;
    let (shard, records) = shards.iter().find(|(_, r)| !r.is_empty()).unwrap();
    assert_eq!(records.len(), 10_053, "one photo: one shard");

    // Act: delivered as the mapping does, 100 records per invocation
    let started = std::time::Instant::now();
    for batch in records.chunks(100) {
        let response = invoke_json(&mut notifier, &stage.kinesis_batch(shard, batch)).await;
        assert_eq!(response["batchItemFailures"], Value::Array(vec![]));
    }
    let elapsed = started.elapsed();

    // Assess: one notification, counted exactly (10,000 fans, 2 took theirs back), naming the
    // latest standing likers; nothing quarantined
    let items = inbox(&stage, "alice").await;
    assert_eq!(
        texts(&items),
        vec![
            "fan09998 and 9997 others liked your photo",
            "Your photo is live"
        ]
    );
    assert_eq!(items[0].2, ["fan09998", "fan09997", "fan09996"]);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
    // ... in an item that stays small: what every further like is billed on
    let stored = stage
        .clients
        .dynamodb
        .query()
        .table_name(stage.name("NotificationsTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("USER#alice".into()))
        .send()
        .await
        .unwrap();
    let likes_item = stored
        .items()
        .iter()
        .find(|i| {
            i.get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                == Some("likes")
        })
        .expect("the likes notification");
    let bytes = item_bytes(likes_item);
    assert!(bytes < 1024, "the notification item is {bytes} bytes");
    // ... for few requests: the notifier's own count, from its log
    let snapglow_local::lambda::function::LogSink::File(log) = stage.spec("notifier").log else {
        panic!("the test functions log to a file");
    };
    let log = std::fs::read_to_string(log).unwrap();
    let requests: u64 = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "notifier batch spend")
        .filter_map(|line| line["fields"]["dynamodb_requests"].as_u64())
        .sum();
    let per_event = requests as f64 / 10_053.0;
    assert!(
        per_event <= 0.05,
        "{requests} requests: {per_event:.3} per event"
    );
    eprintln!(
        "10,053 records in {:.1} s ({:.0} records/s on the emulator); {requests} DynamoDB requests ({per_event:.3} per event); notification item {bytes} bytes",
        elapsed.as_secs_f64(),
        10_053.0 / elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn a_late_like_of_a_deleted_photo_notifies_nobody_whichever_environment_handled_the_deletion()
{
    // Prepare: two warm notifier environments; the first learns that alice owns the photo and
    // tells her of bob's like; the second handles its deletion
    let stage = TestStack::start().await;
    let mut first = stage.function("notifier").await;
    let mut second = stage.function("notifier").await;
    stage
        .publish(&[
            published("beach", "alice", T0),
            liked("beach", "bob", T0 + 1),
        ])
        .await;
    deliver_all(&stage, &mut first).await;
    assert_eq!(inbox(&stage, "alice").await.len(), 2);
    let deleted = snapglow_local::scenarios::producer::deleted_event(
        "beach",
        "alice",
        &[],
        Timestamp::from_millis(T0 + 2),
    );
    stage.publish(&[deleted]).await;
    deliver_all(&stage, &mut second).await;
    assert_eq!(inbox(&stage, "alice").await, vec![]);

    // Act: a like made before the deletion, relayed late, reaches the first environment alone
    stage.publish(&[liked("beach", "carol", T0 + 1)]).await;
    let (shard, records) = (stage.shards().await.into_iter())
        .find(|(_, records)| !records.is_empty())
        .expect("the photo's shard");
    let late = stage.kinesis_batch(&shard, &records[records.len() - 1..]);
    let response = invoke_json(&mut first, &late).await;

    // Assess: finished, and nothing is told: the first environment read the owner's tombstone
    assert_eq!(response["batchItemFailures"], Value::Array(vec![]));
    assert_eq!(inbox(&stage, "alice").await, vec![]);
}
