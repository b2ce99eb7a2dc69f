//! notifier's rules, each through the real stream, the real binary and the real table.

use serde_json::Value;
use snapglow::contracts::{Envelope, ImagePublishedV1, ImageRejectedV1, SocialEvent, Timestamp};
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
        SocialEvent::ImagePublished(ImagePublishedV1 {
            image_id: image.into(),
            owner_id: owner.into(),
            source_key: format!("uploads/{owner}/{image}.jpg"),
            source_etag: "e".into(),
            width: 10,
            height: 10,
            renditions: vec![],
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
    let table = notifier::table::NotificationsTable::new(
        stage.clients.dynamodb.clone(),
        stage.name("NotificationsTable"),
        Duration::from_secs(86_400),
        Duration::from_secs(3600),
    );
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
async fn owners_hear_once_that_photos_are_live_or_rejected_however_often_the_stream_replays() {
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
    // GIVEN both events, the publication put twice by a retrying producer
    stage.publish(&[live.clone(), rejected, live]).await;
    // WHEN the stream is delivered three times (redelivery and two full replays)
    for _ in 0..3 {
        deliver_all(&stage, &mut notifier).await;
    }
    // THEN alice has exactly two notifications
    let items = inbox(&stage, "alice").await;
    assert_eq!(
        texts(&items),
        vec![
            "Your upload was rejected: too many pixels",
            "Your photo is live"
        ]
    );
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
        vec!["erin", "dan", "bob", "carol"],
        "most recent first, bob once"
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
    stage
        .clients
        .kinesis
        .put_record()
        .stream_name(stage.name("ImageSocialEvents"))
        .partition_key("beach")
        .data(b"{\"type\":\"ImageLiked\"".to_vec().into())
        .send()
        .await
        .unwrap();
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
