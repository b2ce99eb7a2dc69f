//! Whole batches over the in-memory table.

use super::*;
use crate::table::memory::MemoryNotifications;
use serde_json::json;
use snapglow::batch::Deadline;
use snapglow::contracts::{Envelope, ImagePublishedV2, SocialEvent, Timestamp};
use snapglow::testing::{MemoryQuarantine, kinesis_event_of};
use std::time::Duration;
use uuid::Uuid;

const MINUTE: i64 = 60_000;
const WINDOW: i64 = 15 * MINUTE;
/// The first instant of a window.
const START: i64 = (1_795_000_000_000 / WINDOW + 1) * WINDOW;

fn envelope(id: u128, at_ms: i64, event: SocialEvent) -> Envelope {
    Envelope {
        event_id: Uuid::from_u128(id),
        occurred_at: Timestamp::from_millis(at_ms),
        correlation_id: format!("req-{id}"),
        producer: "test".into(),
        event,
    }
}

fn liked(user: &str, id: u128, at_ms: i64) -> Envelope {
    envelope(id, at_ms, SocialEvent::like("beach", user, true, None))
}

fn undone(user: &str, id: u128, at_ms: i64) -> Envelope {
    envelope(id, at_ms, SocialEvent::like("beach", user, false, None))
}

/// alice's photo; bob and carol like it late in one window, dan on the first instant of
/// the next, and bob takes his like back early in that next window.
fn likes_across_a_boundary() -> Vec<Envelope> {
    let published = ImagePublishedV2 {
        image_id: "beach".into(),
        owner_id: "alice".into(),
        source_key: "uploads/alice/beach.jpg".into(),
        source_etag: "e".into(),
        width: 10,
        height: 10,
        renditions: vec![],
        placeholder: None,
        taken_at: None,
        camera_make: None,
        camera_model: None,
        lens: None,
    };
    vec![
        envelope(1, START, SocialEvent::ImagePublished(published)),
        liked("bob", 2, START + WINDOW - 2 * MINUTE),
        liked("carol", 3, START + WINDOW - MINUTE),
        liked("dan", 4, START + WINDOW),
        undone("bob", 5, START + WINDOW + MINUTE),
    ]
}

/// (id, text, actors, unread) of each notification, as the inbox lists them.
fn inbox(table: &MemoryNotifications, user: &str) -> Vec<(String, String, Vec<String>, bool)> {
    table
        .inbox(user)
        .into_iter()
        .map(|n| (n.id, n.text, n.actors, n.unread))
        .collect()
}

/// The texts of a user's inbox, newest first.
fn texts(table: &MemoryNotifications, user: &str) -> Vec<String> {
    table.inbox(user).into_iter().map(|n| n.text).collect()
}

fn expected_inbox() -> Vec<(String, String, Vec<String>, bool)> {
    let entry = |id: String, text: &str, actors: &[&str]| {
        let actors = actors.iter().map(|a| a.to_string()).collect();
        (id, text.to_owned(), actors, true)
    };
    vec![
        entry(
            format!("likes-beach-{}", START + WINDOW),
            "dan liked your photo",
            &["dan"],
        ),
        entry(
            format!("likes-beach-{START}"),
            "carol liked your photo",
            &["carol"],
        ),
        entry("published-beach".into(), "Your photo is live", &[]),
    ]
}

fn context(quarantine: &MemoryQuarantine) -> BatchContext<'_, MemoryQuarantine> {
    BatchContext::new(
        "notifier",
        Deadline::after(Duration::from_secs(30)),
        Duration::from_millis(10),
        quarantine,
    )
}

#[tokio::test]
async fn likes_across_a_window_boundary_land_in_their_windows_and_an_unlike_reaches_back() {
    // Prepare
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();

    // Act
    let (response, report) = notifier
        .handle_batch(
            kinesis_event_of(&likes_across_a_boundary()),
            &context(&quarantine),
        )
        .await;

    // Assess: every record is finished and applied
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
    assert_eq!((report.done, report.failed), (5, 0));
    // ... bob and carol share the window they liked in, dan (on the boundary) opens the
    // next one, and bob's unlike in that next window took his unread like out of the first
    assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
    assert!(quarantine.entries().is_empty());
}

#[tokio::test]
async fn a_replay_of_a_batch_across_a_window_boundary_changes_no_notification() {
    // Prepare: the batch, delivered once
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();
    let batch = likes_across_a_boundary();
    notifier
        .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
        .await;

    // Act: delivered again (a retry after a timeout, or a replay of the stream)
    let (response, report) = notifier
        .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
        .await;

    // Assess: every record is a duplicate and the inbox is what the first delivery left
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
    assert_eq!((report.done, report.duplicates), (0, 5));
    assert_eq!(inbox(&notifier.table, "alice"), expected_inbox());
}

#[tokio::test]
async fn likes_that_come_before_their_image_is_published_are_told_once_it_is() {
    // Prepare: bob and carol like alice's photo, and carol takes hers back, all before the
    // photo's ImagePublished reaches this consumer
    let [published, bob, carol, carol_undo, ..] = [
        likes_across_a_boundary()[0].clone(),
        liked("bob", 2, START + MINUTE),
        liked("carol", 3, START + 2 * MINUTE),
        undone("carol", 4, START + 3 * MINUTE),
        liked("dan", 5, START + 4 * MINUTE),
    ];
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();
    let early = [bob, carol, carol_undo];
    let (_, report) = notifier
        .handle_batch(kinesis_event_of(&early), &context(&quarantine))
        .await;
    assert_eq!(report.skipped, 3, "kept, waiting for the owner");
    assert!(notifier.table.inbox("alice").is_empty());

    // Act: the publication arrives, and then the whole stream is replayed
    let (response, _) = notifier
        .handle_batch(
            kinesis_event_of(std::slice::from_ref(&published)),
            &context(&quarantine),
        )
        .await;
    let everything = [early.to_vec(), vec![published]].concat();
    let (_, replay) = notifier
        .handle_batch(kinesis_event_of(&everything), &context(&quarantine))
        .await;

    // Assess: alice hears of bob's like (carol's was taken back), once
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
    assert_eq!(
        texts(&notifier.table, "alice"),
        ["bob liked your photo", "Your photo is live"]
    );
    assert_eq!((replay.done, replay.duplicates), (0, 4));
    // ... and nothing is left waiting, nor marked as waiting
    assert!(
        notifier
            .table
            .early_likes("beach")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!notifier.table.held("beach"));
}

#[tokio::test]
async fn a_notice_written_before_a_crash_still_delivers_the_likes_kept_for_its_image() {
    // Prepare: bob likes alice's photo before its publication reaches this consumer; then
    // a delivery of the publication writes its notice and dies before the kept like is
    // delivered (the notice alone, as that delivery left it)
    let published = likes_across_a_boundary()[0].clone();
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();
    notifier
        .handle_batch(
            kinesis_event_of(&[liked("bob", 2, START + MINUTE)]),
            &context(&quarantine),
        )
        .await;
    let notice = notice_of(&published).expect("an image event");
    let first = notifier
        .table
        .notify_image(&notice, &Deadline::after(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(
        (first.written, first.held),
        (Written::Applied, true),
        "the notice finds the mark"
    );

    // Act: the publication is delivered again
    let (_, report) = notifier
        .handle_batch(
            kinesis_event_of(std::slice::from_ref(&published)),
            &context(&quarantine),
        )
        .await;

    // Assess: a duplicate notice, but the mark sends the redelivery to the kept like
    assert_eq!(report.duplicates, 1);
    assert_eq!(
        texts(&notifier.table, "alice"),
        ["bob liked your photo", "Your photo is live"]
    );
    assert!(!notifier.table.held("beach"));
}

#[tokio::test]
async fn an_image_that_never_held_a_like_is_not_marked_and_a_later_like_is_told_at_once() {
    // Prepare
    let batch = likes_across_a_boundary();
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();

    // Act: the publication, then a like of it in a later batch
    notifier
        .handle_batch(kinesis_event_of(&batch[..1]), &context(&quarantine))
        .await;
    let (_, report) = notifier
        .handle_batch(kinesis_event_of(&batch[1..2]), &context(&quarantine))
        .await;

    // Assess
    assert!(!notifier.table.held("beach"));
    assert_eq!((report.done, report.skipped), (1, 0));
    assert_eq!(notifier.table.inbox("alice").len(), 2);
}

fn deleted(id: u128, at_ms: i64) -> Envelope {
    let data = snapglow::contracts::ImageDeletedV1 {
        image_id: "beach".into(),
        owner_id: "alice".into(),
        upload_key: "uploads/alice/beach".into(),
        rendition_keys: vec![],
    };
    envelope(id, at_ms, SocialEvent::ImageDeleted(data))
}

#[tokio::test]
async fn a_deleted_photo_leaves_its_owners_inbox_and_a_replay_tells_nobody_again() {
    // Prepare: alice's photo, published and liked; a notification of another photo of hers
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();
    let other = ImagePublishedV2 {
        image_id: "forest".into(),
        owner_id: "alice".into(),
        source_key: "uploads/alice/forest".into(),
        source_etag: "e".into(),
        width: 10,
        height: 10,
        renditions: vec![],
        placeholder: None,
        taken_at: None,
        camera_make: None,
        camera_model: None,
        lens: None,
    };
    let mut first = likes_across_a_boundary();
    first.push(envelope(9, START, SocialEvent::ImagePublished(other)));
    notifier
        .handle_batch(kinesis_event_of(&first), &context(&quarantine))
        .await;
    assert_eq!(texts(&notifier.table, "alice").len(), 4);

    // Act: alice deletes the photo while erin likes it; then the whole stream is replayed
    let erased = [
        deleted(20, START + 2 * WINDOW),
        liked("erin", 21, START + 2 * WINDOW),
    ];
    let (response, report) = notifier
        .handle_batch(kinesis_event_of(&erased), &context(&quarantine))
        .await;
    let replay: Vec<Envelope> = first.iter().chain(&erased).cloned().collect();
    let (replayed, _) = notifier
        .handle_batch(kinesis_event_of(&replay), &context(&quarantine))
        .await;

    // Assess: both batches are finished; only the other photo's notice is left
    for response in [response, replayed] {
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({ "batchItemFailures": [] })
        );
    }
    assert_eq!((report.done, report.skipped), (1, 1));
    let left: Vec<String> = (notifier.table.inbox("alice").into_iter())
        .map(|n| n.image_id)
        .collect();
    assert_eq!(left, ["forest"]);
    assert!(quarantine.entries().is_empty());
}

#[tokio::test]
async fn a_likes_notification_is_as_recent_as_its_latest_like_not_its_window() {
    // Prepare: alice's photo, liked by bob and then carol in one window
    let notifier = Notifier::new(MemoryNotifications::default(), WINDOW);
    let quarantine = MemoryQuarantine::default();
    let batch = [
        likes_across_a_boundary()[0].clone(),
        liked("bob", 2, START + MINUTE),
        liked("carol", 3, START + 5 * MINUTE),
    ];

    // Act
    notifier
        .handle_batch(kinesis_event_of(&batch), &context(&quarantine))
        .await;

    // Assess: the window opened at START; the notification's time is carol's like
    let likes = (notifier.table.inbox("alice").into_iter())
        .find(|n| n.kind == crate::inbox::Kind::Likes)
        .expect("a likes notification");
    assert_eq!(likes.created_at, Timestamp::from_millis(START).to_string());
    assert_eq!(
        likes.updated_at,
        Timestamp::from_millis(START + 5 * MINUTE).to_string()
    );
}
