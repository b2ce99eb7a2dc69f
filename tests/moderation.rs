//! The content scan between rendering and publication, through the local stack with the real
//! resize binary: resize asks Rekognition (the emulator answers DetectModerationLabels with
//! open_nsfw, as moto cannot) or runs open_nsfw itself. Benign photos are published with
//! their scores, and both paths give the same scores; a policy that flags benign photos holds
//! them for their owner, out of the feed; a scan that fails is retried and, on the queue's
//! last delivery, holds the upload rather than losing or parking it.

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use snapglow_local::faults::{Fault, Service, Shape};
use snapglow_local::lambda::LocalFunction;
use snapglow_local::scenarios::photos::generated_jpeg;
use snapglow_local::stack::project::project_root;
use snapglow_local::triggers::sqs::sqs_event;
use snapglow_tests::{TestStack, batch_failures, invoke_json, sample_jpeg};
use std::collections::HashMap;
use std::path::PathBuf;

/// The model `make model` fetches; both classifiers need it.
fn model() -> PathBuf {
    let path = project_root().join(moderation::open_nsfw::LOCAL_PATH);
    assert!(
        path.is_file(),
        "{} is missing: `make model` fetches it (make test does)",
        path.display()
    );
    path
}

/// The uploads' notifications (after the bucket's test event), one SQS event each.
async fn notifications(stage: &TestStack, uploads: usize) -> Vec<(String, SqsEvent)> {
    let messages = stage.receive("ImageUploadsQueue", uploads + 1).await;
    (messages.iter())
        .filter(|m| m.body().is_some_and(|b| b.contains("ObjectCreated")))
        .map(|m| {
            let body = m.body().unwrap_or_default().to_owned();
            (
                body,
                sqs_event(stage.arn("ImageUploadsQueue"), std::slice::from_ref(m)),
            )
        })
        .collect()
}

/// `event` as Lambda delivers it the `delivery`-th time.
fn delivered(event: &SqsEvent, delivery: u32) -> SqsEvent {
    let mut event = event.clone();
    for record in &mut event.records {
        (record.attributes).insert("ApproximateReceiveCount".into(), delivery.to_string());
    }
    event
}

async fn image_item(stage: &TestStack, image_id: &str) -> HashMap<String, AttributeValue> {
    let item = (stage
        .clients
        .image_item(stage.name("ImagesTable"), image_id))
    .await
    .expect("the images table answers");
    assert!(
        !item.is_empty(),
        "image {image_id} is not in the images table"
    );
    item
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    (item.get(name))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The scan recorded on an image: its model, and its `Explicit` confidence.
fn scan_of(item: &HashMap<String, AttributeValue>) -> (String, f64) {
    let scan: Value = serde_json::from_str(&text(item, "moderation")).expect("a recorded scan");
    let explicit = (scan["labels"].as_array().expect("labels").iter())
        .find(|l| l["name"] == "Explicit")
        .and_then(|l| l["confidence"].as_f64())
        .expect("an Explicit label");
    (
        scan["model"].as_str().unwrap_or_default().to_owned(),
        explicit,
    )
}

async fn resize_with(stage: &TestStack, settings: &[(&str, String)]) -> LocalFunction {
    let mut spec = stage.spec("resize");
    for (name, value) in settings {
        // Over the template's own value.
        spec.environment.retain(|(set, _)| set != name);
        spec.environment.push(((*name).into(), value.clone()));
    }
    stage.run(spec).await
}

#[tokio::test]
async fn benign_photos_are_published_with_their_scores_and_rekognition_and_the_local_classifier_agree()
 {
    // Prepare: two photos, each uploaded twice; one resize asks Rekognition (the emulator),
    // the other runs open_nsfw itself. Every label is recorded (confidence 0 and up), and
    // only violence would hold (never found here): the scores are what is compared.
    let stage = TestStack::start().await;
    let policy = [
        ("MODERATION_MIN_CONFIDENCE", "0".to_owned()),
        ("MODERATION_HOLD_LABELS", "Violence".to_owned()),
    ];
    let mut rekognition = resize_with(&stage, &policy).await;
    let local_settings = [
        &policy[..],
        &[
            ("MODERATION_BACKEND", "local".to_owned()),
            ("MODERATION_MODEL_PATH", model().display().to_string()),
        ],
    ]
    .concat();
    let mut local = resize_with(&stage, &local_settings).await;
    let photos = [sample_jpeg(1600, 1067), generated_jpeg(1200, 1600, 3)];
    for (i, photo) in photos.iter().enumerate() {
        for via in ["rekognition", "local"] {
            (stage.issue_and_upload(via, &format!("{via}-{i}"), photo.clone())).await;
        }
    }

    // Act
    for (body, event) in notifications(&stage, 4).await {
        // S3 URL-encodes the key in its notification.
        let function = if body.contains("uploads%2Flocal%2F") {
            &mut local
        } else {
            &mut rekognition
        };
        let answer = invoke_json(function, &delivered(&event, 1)).await;
        assert_eq!(batch_failures(&answer), Vec::<String>::new(), "{body}");
    }

    // Assess: published, each with its scan recorded; the same score by either path
    for i in 0..photos.len() {
        let by_rekognition = image_item(&stage, &format!("rekognition-{i}")).await;
        let by_local = image_item(&stage, &format!("local-{i}")).await;
        for item in [&by_rekognition, &by_local] {
            assert_eq!(text(item, "status"), "published");
        }
        let (model, score) = scan_of(&by_rekognition);
        let (local_model, local_score) = scan_of(&by_local);
        assert_eq!(
            (model.as_str(), local_model.as_str()),
            ("rekognition:open_nsfw:1", "open_nsfw:1")
        );
        assert!(
            (score - local_score).abs() < 0.01,
            "photo {i}: {score} by the emulator, {local_score} locally"
        );
        assert!(score < 10.0, "photo {i} scored {score}");
        println!("photo {i}: Explicit {score:.3} % by either path");
    }
}

#[tokio::test]
async fn a_policy_that_flags_a_benign_photo_holds_it_for_its_owner_out_of_the_feed() {
    // Prepare: any confidence of `Explicit` holds (no explicit image is needed to test it)
    let stage = TestStack::start().await;
    let mut resize = resize_with(
        &stage,
        &[
            ("MODERATION_MIN_CONFIDENCE", "0".to_owned()),
            ("MODERATION_HOLD_LABELS", "Explicit".to_owned()),
        ],
    )
    .await;
    stage
        .issue_and_upload("alice", "held-beach", sample_jpeg(1600, 1067))
        .await;

    // Act
    let (_, event) = notifications(&stage, 1).await.remove(0);
    let answer = invoke_json(&mut resize, &delivered(&event, 1)).await;

    // Assess: held with the label that held it; its renditions kept for the review; not in
    // the feed (no by-publication keys); its event an ImageHeld for the owner
    assert_eq!(batch_failures(&answer), Vec::<String>::new());
    let item = image_item(&stage, "held-beach").await;
    assert_eq!(text(&item, "status"), "held");
    assert_eq!(text(&item, "reason"), "moderation");
    assert!(text(&item, "message").contains("Explicit"), "{item:?}");
    assert!(text(&item, "renditions").contains("medium"));
    assert!(!item.contains_key("feed") && !item.contains_key("published_at"));
    let event = stage.recorded_event("held-beach").await.unwrap();
    assert_eq!(event["type"], "ImageHeld");
    assert_eq!(event["data"]["owner_id"], "alice");
    // Of the labels that hold at the same confidence, the most specific names it.
    assert_eq!(event["data"]["label"], "Explicit Nudity");
}

#[tokio::test]
async fn a_scan_that_fails_is_redelivered_and_the_last_delivery_holds_the_upload() {
    // Prepare: Rekognition throttles every DetectModerationLabels (through a fault proxy)
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_REKOGNITION"])
        .await;
    proxy.inject(Fault::new(
        Service::Rekognition,
        "DetectModerationLabels",
        u64::MAX,
        Shape::Error {
            status: 400,
            code: "ThrottlingException",
            message: "Rate exceeded",
        },
    ));
    stage
        .issue_and_upload("bob", "throttled-dunes", sample_jpeg(800, 600))
        .await;
    let (_, event) = notifications(&stage, 1).await.remove(0);

    // Act: deliveries 1 to 4 (the queue redelivers), then its last (maxReceiveCount 5)
    let mut redelivered = Vec::new();
    for delivery in 1..=4 {
        let answer = invoke_json(&mut resize, &delivered(&event, delivery)).await;
        redelivered.push(batch_failures(&answer).len());
    }
    let pending = text(&image_item(&stage, "throttled-dunes").await, "status");
    let last = invoke_json(&mut resize, &delivered(&event, 5)).await;

    // Assess: redelivered while the scan failed, never published unscanned, then held
    assert_eq!(redelivered, [1, 1, 1, 1]);
    assert_eq!(pending, "pending");
    assert_eq!(batch_failures(&last), Vec::<String>::new());
    let item = image_item(&stage, "throttled-dunes").await;
    assert_eq!(
        (
            text(&item, "status").as_str(),
            text(&item, "reason").as_str()
        ),
        ("held", "scan_failed")
    );
    assert!(proxy.seen("DetectModerationLabels") >= 5);
}
