//! Failures as AWS documents them, at the wire: each test points a real function binary (or the
//! API's store) at a fault proxy that answers chosen requests in the exact shape AWS does, and
//! checks that nothing is lost, parked or counted twice. docs/FAILURES.md lists every (call,
//! error shape) pair and the test here that injects it.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use snapglow::contracts::{Envelope, Timestamp};
use snapglow_local::faults::{Fault, FaultProxy, Reasons, Service, Shape};
use snapglow_local::lambda::InvokeError;
use snapglow_local::scenarios::producer::{like_event, published_event};
use snapglow_tests::{TestStack, assert_finished, batch_failures, invoke_json, sample_jpeg};
use std::time::{Duration, Instant};

const T0: i64 = 1_795_000_000_000;

fn published(image: &str, owner: &str, at_ms: i64) -> Envelope {
    published_event(image, owner, Timestamp::from_millis(at_ms))
}

fn liked(image: &str, user: &str, at_ms: i64) -> Envelope {
    like_event(image, user, true, None, Timestamp::from_millis(at_ms))
}

/// SQS's answer for a queue that does not exist, in its JSON protocol.
const NO_SUCH_QUEUE: Shape = Shape::Error {
    status: 400,
    code: "AWS.SimpleQueueService.NonExistentQueue",
    message: "The specified queue does not exist.",
};

async fn inbox_texts(stage: &TestStack, user: &str) -> Vec<String> {
    stage
        .inbox_reader()
        .inbox(user)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.text)
        .collect()
}

#[tokio::test]
async fn a_notice_canceled_for_throttling_or_without_reasons_is_retried_and_its_likes_are_told() {
    // Prepare: the notifier's transactions are canceled twice with ThrottlingError on every
    // action (an on-demand table scaling) and once without CancellationReasons
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        2,
        Shape::throttled_transaction(),
    ));
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Shape::Canceled(Reasons::Absent),
    ));
    stage
        .publish(&[
            published("beach", "alice", T0),
            liked("beach", "bob", T0 + 1),
        ])
        .await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: nothing reported, nothing quarantined, the owner known and the like told
    assert_finished(&responses);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
    assert_eq!(
        inbox_texts(&stage, "alice").await,
        ["bob liked your photo", "Your photo is live"]
    );
    let injected = proxy.injected();
    assert_eq!(injected.get("canceled [ThrottlingError…]"), Some(&2));
    assert_eq!(injected.get("canceled without reasons"), Some(&1));
}

#[tokio::test]
async fn likes_whose_transaction_is_canceled_for_conflicts_or_without_reasons_count_once() {
    // Prepare: like-counter's transactions meet a conflict on their second action, then a
    // cancellation without reasons
    let stage = TestStack::start().await;
    let (proxy, mut counter) = stage
        .through_proxy("like-counter", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Shape::Canceled(Reasons::At(1, "TransactionConflict")),
    ));
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Shape::Canceled(Reasons::Absent),
    ));
    let likes: Vec<Envelope> = ["u1", "u2", "u3"]
        .iter()
        .enumerate()
        .map(|(i, user)| liked("sunset", user, T0 + i as i64))
        .collect();
    stage.publish(&likes).await;

    // Act: delivered, then redelivered
    let first = stage.deliver(&mut counter).await;
    stage.deliver(&mut counter).await;

    // Assess
    assert_finished(&first);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
    let count = stage.like_counts().count("sunset").await.unwrap();
    assert_eq!(count, 3);
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn the_feed_reads_keys_dynamodb_leaves_unprocessed_after_a_pause() {
    use api::store::Likes;
    // Prepare: four published images with like counts, two liked by bob; the API's store
    // reads through a proxy that leaves half of each batch unprocessed, five times (more than
    // an immediate re-ask survives: DynamoDB needs the pause to scale)
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "BatchGetItem",
        5,
        Shape::UnprocessedKeys,
    ));
    let put = |table: &str, pk: String, sk: &str, extra: (&str, AttributeValue)| {
        stage
            .clients
            .dynamodb
            .put_item()
            .table_name(stage.name(table))
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk.into()))
            .item(extra.0, extra.1)
            .send()
    };
    let images: Vec<String> = (0..4).map(|i| format!("img{i}")).collect();
    for (i, image) in images.iter().enumerate() {
        let likes = AttributeValue::N((10 + i).to_string());
        put(
            "LikesTable",
            format!("IMAGE#{image}"),
            "COUNT",
            ("likes", likes),
        )
        .await
        .unwrap();
        if i % 2 == 0 {
            let liked = AttributeValue::Bool(true);
            put(
                "ImagesTable",
                format!("IMAGE#{image}"),
                "LIKE#bob",
                ("liked", liked),
            )
            .await
            .unwrap();
        }
    }
    let store = stage.api_store(stage.dynamodb_at(&proxy.url()));

    // Act
    let likes = store
        .likes_of(&images, "bob")
        .await
        .expect("the read completes");

    // Assess: every count and like state, though DynamoDB answered half of them later
    for (i, image) in images.iter().enumerate() {
        assert_eq!(likes[image], (10 + i as i64, i % 2 == 0), "{image}");
    }
    assert_eq!(proxy.injected().get("UnprocessedKeys"), Some(&5));
    assert_eq!(
        proxy.seen("BatchGetItem"),
        6,
        "five partial answers, then the rest"
    );
}

#[tokio::test]
async fn an_upload_whose_record_dynamodb_refuses_is_rejected_and_its_owner_told() {
    // Prepare: an issued upload; DynamoDB refuses resize's finishing write as too large
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "UpdateItem",
        1,
        Shape::Error {
            status: 400,
            code: "ValidationException",
            message: "Item size to update has exceeded the maximum allowed size",
        },
    ));
    stage
        .issue_and_upload("alice", "huge", sample_jpeg(64, 48))
        .await;
    let event = stage.uploads_event(2).await;

    // Act
    let response = invoke_json(&mut resize, &event).await;

    // Assess: acknowledged (not parked for the DLQ), the image rejected with the reason the
    // owner is told, and its event recorded for the relay
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    let event = stage
        .recorded_event("huge")
        .await
        .expect("an event is recorded");
    assert_eq!(event["type"], "ImageRejected");
    assert_eq!(event["data"]["reason"], "unstorable");
    assert_eq!(proxy.injected().values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_hung_dynamodb_request_is_timed_out_and_retried_within_the_invocation() {
    // Prepare: the notifier's first notice write never gets an answer in time
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Shape::Hang(Duration::from_secs(25)),
    ));
    stage.publish(&[published("beach", "alice", T0)]).await;

    // Act
    let started = Instant::now();
    let responses = stage.deliver(&mut notifier).await;
    let took = started.elapsed();

    // Assess: the attempt timed out (2.5 s for a 30 s function), the SDK sent it again (with
    // the same idempotency token), and the notice was written in this invocation
    assert_finished(&responses);
    assert_eq!(inbox_texts(&stage, "alice").await, ["Your photo is live"]);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(proxy.seen("TransactWriteItems") >= 2);
}

#[tokio::test]
async fn a_missing_quarantine_queue_fails_the_invocation_and_the_poison_stays_on_the_shard() {
    // Prepare: a poison record; SQS answers that the quarantine queue does not exist
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_SQS"])
        .await;
    proxy.inject(Fault::share(
        Service::Sqs,
        Some("SendMessage"),
        100,
        NO_SUCH_QUEUE,
    ));
    stage.put_raw("beach", b"{\"type\":\"ImageLiked\"").await;
    let (shard, records) = stage.shards().await.into_iter().next().unwrap();

    // Act
    let answer = notifier
        .invoke(serde_json::to_vec(&stage.kinesis_batch(&shard, &records)).unwrap())
        .await;

    // Assess: the invocation failed (the Errors alarm fires), nothing was acknowledged
    let Err(InvokeError::Function { message, .. }) = answer else {
        panic!("the invocation must fail: {answer:?}");
    };
    assert!(message.contains("QUARANTINE_QUEUE_URL"), "{message}");
    assert_eq!(proxy.injected().values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_disabled_kms_key_on_the_stream_fails_the_relay_invocation() {
    // Prepare: a like recorded in the images table; the stream answers KMSDisabledException
    let stage = TestStack::start().await;
    let (proxy, mut relay) = stage
        .through_proxy("relay", &["AWS_ENDPOINT_URL_KINESIS"])
        .await;
    proxy.inject(Fault::new(
        Service::Kinesis,
        "PutRecords",
        1,
        Shape::Error {
            status: 400,
            code: "KMSDisabledException",
            message: "The request was rejected because the specified KMS key is disabled.",
        },
    ));
    proxy.inject(Fault::new(
        Service::Kinesis,
        "PutRecords",
        1,
        Shape::FailedRecords("ProvisionedThroughputExceededException"),
    ));
    let event = snapglow_tests::fixture("dynamodb/like-recorded.json");

    // Act: the delivery, then the mapping's retry
    let first = relay.invoke(event.clone()).await;
    let retry = relay.invoke(event).await.expect("the retry is answered");

    // Assess: the first failed loudly; the retry put the refused entries again alone, after
    // a pause, and finished
    let Err(InvokeError::Function { message, .. }) = first else {
        panic!("the invocation must fail: {first:?}");
    };
    assert!(message.contains("KMSDisabledException"), "{message}");
    let retried: Value = serde_json::from_slice(&retry).unwrap();
    assert_eq!(batch_failures(&retried), Vec::<String>::new());
    assert_eq!(proxy.seen("PutRecords"), 3);
    assert!(!stage.stream_events().await.is_empty());
}

#[tokio::test]
async fn a_dynamodb_outage_longer_than_any_retry_count_loses_no_like() {
    use snapglow_local::faults::ThrottlingProxy;
    use snapglow_local::triggers::pipeline::{run_rounds, run_until_idle};
    use snapglow_local::triggers::{MappingOptions, mappings};
    // Prepare: like-counter's mapping as deployed, its DynamoDB refusing every request
    let stage = TestStack::start().await;
    let proxy = ThrottlingProxy::start(&stage.stack.endpoint_url, 100, 1)
        .await
        .unwrap();
    let options = MappingOptions {
        environment: vec![("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.url())],
        only_streams: true,
        ..Default::default()
    };
    let log_dir = stage.state_dir("failure-shapes-outage");
    let mut pipeline = mappings(&stage.stack, &stage.binaries(), &log_dir, &options)
        .await
        .unwrap();
    pipeline.retain(|m| m.name().starts_with("LikeCounterFunction"));
    let users = ["u1", "u2", "u3", "u4"];
    let likes: Vec<Envelope> = users
        .iter()
        .enumerate()
        .map(|(i, user)| liked("dunes", user, T0 + i as i64))
        .collect();
    stage.publish(&likes).await;

    // Act: the outage lasts more deliveries than the old limit (5 retries) allowed, then ends
    let during = run_rounds(&mut pipeline, 7).await.unwrap();
    proxy.set_percent(0);
    let after = run_until_idle(&mut pipeline, Duration::from_secs(120))
        .await
        .unwrap();

    // Assess: every delivery during the outage failed, none was given up, and each like
    // counted once when DynamoDB came back
    assert!(during.failed_invocations >= 7, "{during:?}");
    assert_eq!((during.given_up, after.given_up), (0, 0));
    let count = stage.like_counts().count("dunes").await.unwrap();
    assert_eq!(count, users.len() as i64);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_missing_quarantine_queue_fails_resize_and_the_message_comes_back() {
    // Prepare: a message that is no S3 notification; SQS answers that the quarantine queue
    // does not exist
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_SQS"])
        .await;
    proxy.inject(Fault::new(Service::Sqs, "SendMessage", 1, NO_SUCH_QUEUE));
    let event = snapglow_tests::fixture("sqs/not-an-s3-notification.json");

    // Act
    let answer = resize.invoke(event).await;

    // Assess: the invocation failed (ResizeErrors fires), so the message is not acknowledged
    let Err(InvokeError::Function { message, .. }) = answer else {
        panic!("the invocation must fail: {answer:?}");
    };
    assert!(message.contains("QUARANTINE_QUEUE_URL"), "{message}");
    assert_eq!(proxy.injected().values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_bucket_that_refuses_resize_fails_the_invocation_at_once() {
    // Prepare: an issued upload; S3 answers resize's read with 403 AccessDenied (a role that
    // lost its grant, a bucket policy)
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_S3"])
        .await;
    proxy.inject(Fault::new(
        Service::S3,
        "GetObject",
        1,
        Shape::Error {
            status: 403,
            code: "AccessDenied",
            message: "Access Denied",
        },
    ));
    stage
        .issue_and_upload("alice", "locked", sample_jpeg(64, 48))
        .await;
    let event = serde_json::to_vec(&stage.uploads_event(2).await).unwrap();

    // Act
    let answer = resize.invoke(event).await;

    // Assess: the invocation failed (ResizeErrors fires now, not when the upload reaches the
    // DLQ five receives later), naming what to check; the upload stays pending
    let Err(InvokeError::Function { message, .. }) = answer else {
        panic!("the invocation must fail: {answer:?}");
    };
    assert!(message.contains("RENDITIONS_BUCKET"), "{message}");
    assert_eq!(stage.recorded_event("locked").await, None);
    assert_eq!(proxy.injected().values().sum::<u64>(), 1);
}

/// DynamoDB's answer to a single-item write while a transaction holds the item; the SDK does
/// not retry it.
const CONFLICT: Shape = Shape::Error {
    status: 400,
    code: "TransactionConflictException",
    message: "Transaction is ongoing for the item",
};

#[tokio::test]
async fn a_notification_a_transaction_holds_is_marked_read_once_it_is_free() {
    // Prepare: alice's unread notification; the first two marks find a likes transaction of
    // the notifier holding it
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    proxy.inject(Fault::new(Service::DynamoDb, "UpdateItem", 2, CONFLICT));
    let key = "N#1795000000000#published-beach";
    let table = stage.name("NotificationsTable");
    (stage.clients.dynamodb.put_item())
        .table_name(table)
        .item("pk", AttributeValue::S("USER#alice".into()))
        .item("sk", AttributeValue::S(key.into()))
        .item("unread", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    let config = (stage.clients.dynamodb.config().to_builder())
        .endpoint_url(proxy.url())
        .build();
    let reader =
        notifier::table::InboxReader::new(aws_sdk_dynamodb::Client::from_conf(config), table);

    // Act
    let deadline = snapglow::batch::Deadline::after(Duration::from_secs(5));
    let marked = reader
        .mark_read("alice", &[key.to_owned()], &deadline)
        .await;

    // Assess: marked after the two conflicts, in this one call
    assert_eq!(marked.unwrap(), 1);
    let item = (stage.clients.dynamodb.get_item())
        .table_name(table)
        .key("pk", AttributeValue::S("USER#alice".into()))
        .key("sk", AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["unread"], AttributeValue::Bool(false));
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn kept_likes_whose_items_a_transaction_holds_are_released_in_the_same_delivery() {
    // Prepare: bob's like arrives before its image is published, and is kept
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    stage.publish(&[liked("dunes", "bob", T0)]).await;
    assert_finished(&stage.deliver(&mut notifier).await);
    // ... then the image is published, and the deletes of the kept like and the clearing of
    // the owner item's mark each meet a transaction holding their item, twice
    proxy.inject(Fault::new(Service::DynamoDb, "DeleteItem", 2, CONFLICT));
    proxy.inject(Fault::new(Service::DynamoDb, "UpdateItem", 2, CONFLICT));
    stage.publish(&[published("dunes", "alice", T0 + 1)]).await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: the image event finished in this delivery, the like is told, nothing is kept
    assert_finished(&responses);
    let mut texts = inbox_texts(&stage, "alice").await;
    texts.sort();
    assert_eq!(texts, ["Your photo is live", "bob liked your photo"]);
    let reader = stage.inbox_reader();
    assert_eq!(reader.kept_likes("dunes").await.unwrap(), vec![]);
    assert_eq!(proxy.seen("DeleteItem"), 3);
    assert_eq!(proxy.injected().values().sum::<u64>(), 4);
}

#[tokio::test]
async fn a_dynamodb_that_never_answers_leaves_the_notifier_time_to_report_its_record() {
    // Prepare: every transaction of the notifier hangs past each attempt's timeout
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::share(
        Service::DynamoDb,
        Some("TransactWriteItems"),
        100,
        Shape::Hang(Duration::from_secs(120)),
    ));
    stage.publish(&[published("beach", "alice", T0)]).await;
    let (shard, records) = stage.shards().await.into_iter().next().unwrap();
    let batch = serde_json::to_vec(&stage.kinesis_batch(&shard, &records)).unwrap();

    // Act
    let started = Instant::now();
    let answer = notifier.invoke(batch).await;
    let took = started.elapsed();

    // Assess: the function answered before its 30 s timeout instead of being killed, and named
    // the record for redelivery; it stopped sending while one more call could still end in time
    let answer = answer.expect("the notifier answers instead of being killed at its timeout");
    let response: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(batch_failures(&response).len(), 1, "{response}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(proxy.seen("TransactWriteItems") >= 3);
}

#[tokio::test]
async fn a_like_dynamodb_will_never_keep_is_quarantined_and_the_shard_moves_on() {
    // Prepare: a like of an image whose owner is not known yet; DynamoDB cancels the
    // transaction that would keep it with a ValidationError on the kept item
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        Shape::Canceled(Reasons::At(1, "ValidationError")),
    ));
    stage.publish(&[liked("dunes", "bob", T0)]).await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: nothing comes back to the shard; the like is in the quarantine with
    // DynamoDB's reason, and nothing is kept for the image
    assert_finished(&responses);
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0]["reason"], "rejected_by_dynamodb");
    let reader = stage.inbox_reader();
    assert_eq!(reader.kept_likes("dunes").await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_like_kept_while_a_transaction_holds_its_image_is_kept_in_the_same_delivery() {
    // Prepare: a like of an image whose owner is not known yet; the transaction that keeps it
    // is canceled twice for a conflict on the image's owner item
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        2,
        Shape::Canceled(Reasons::At(0, "TransactionConflict")),
    ));
    stage.publish(&[liked("dunes", "bob", T0)]).await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: kept after a pause, in this delivery; nothing quarantined
    assert_finished(&responses);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
    let reader = stage.inbox_reader();
    assert_eq!(reader.kept_likes("dunes").await.unwrap().len(), 1);
    assert_eq!(proxy.seen("TransactWriteItems"), 3);
}

#[tokio::test]
async fn writes_to_an_inbox_at_dynamodbs_size_limit_are_quarantined_with_their_own_reason() {
    // Prepare: alice's inbox has reached the 10 GB an item collection of a table with a local
    // secondary index may hold: DynamoDB cancels the notice (its notification is the third
    // action) alone and in its group, and the like's transaction
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let full = |at| Shape::Canceled(Reasons::At(at, "ItemCollectionSizeLimitExceeded"));
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        2,
        full(2),
    ));
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "TransactWriteItems",
        1,
        full(0),
    ));
    stage
        .publish(&[
            published("beach", "alice", T0),
            liked("beach", "bob", T0 + 1),
        ])
        .await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: the shard moves on; both records are set aside under the reason that tells the
    // operator what to do (trim the inbox, then redrive), not as bad data
    assert_finished(&responses);
    let quarantined = stage.quarantined().await;
    let reasons: Vec<&Value> = quarantined.iter().map(|q| &q["reason"]).collect();
    assert_eq!(
        reasons,
        ["item_collection_full", "item_collection_full"],
        "{quarantined:?}"
    );
    assert_eq!(proxy.injected().values().sum::<u64>(), 3);
}
