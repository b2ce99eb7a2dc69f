//! docs/FAILURES.md's transport rows at the wire: each call meets, once, a request that hangs
//! past its attempt timeout, a connection reset before the answer, and (for writes) an answer
//! lost after the write landed, made by the fault proxy; and each ends as the row says, within
//! the one request or invocation. The shapes a row names are injected before the call that
//! meets them, in the order the call sends its requests (a fault cannot target a caller).

use api::store::Likes;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use snapglow::contracts::{Envelope, Timestamp};
use snapglow_local::faults::{Fault, FaultProxy, Service, Shape};
use snapglow_local::scenarios::producer::{like_event, published_event};
use snapglow_tests::{TestStack, assert_finished, batch_failures, invoke_json, sample_jpeg};
use std::time::Duration;

const T0: i64 = 1_795_000_000_000;

fn liked(image: &str, user: &str, at_ms: i64) -> Envelope {
    like_event(image, user, true, None, Timestamp::from_millis(at_ms))
}

/// DynamoDB's answer while another transaction is being applied to the same request's items
/// (or a transaction with the same token is still in progress).
const IN_PROGRESS: Shape = Shape::Error {
    status: 400,
    code: "TransactionInProgressException",
    message: "Transaction is in progress",
};

/// `times` faults of `shape` on DynamoDB's `operation`.
fn dynamodb(operation: &'static str, times: u64, shape: Shape) -> Fault {
    Fault::new(Service::DynamoDb, operation, times, shape)
}

/// The API over its AWS store, every DynamoDB call through `proxy`, with the SDK timeouts and
/// retries the API's main sets (a 10 s function: 1 s per attempt, 2.5 s per call).
fn api_through(stage: &TestStack, proxy: &FaultProxy) -> api::handlers::Api<api::store::AwsStore> {
    let timeouts = snapglow::aws::CallTimeouts::within(Duration::from_secs(10));
    let config = (stage.clients.dynamodb.config().to_builder())
        .endpoint_url(proxy.url())
        .timeout_config(timeouts.timeout_config())
        .retry_config(timeouts.retry_config())
        .build();
    let mut store = stage.api_store(aws_sdk_dynamodb::Client::from_conf(config));
    // The request counter's write comes first in every request: past the proxy, so that each
    // fault below meets the call it is meant for (the counter's own faults: refusal_matrix).
    store.requests =
        api::store::RequestCounter::new(stage.clients.dynamodb.clone(), stage.name("ImagesTable"));
    api::handlers::Api {
        store,
        limits: api::handlers::Limits {
            requests_per_minute: 10_000,
            max_upload_bytes: 1000,
            uploads_per_hour: 100,
            upload_bytes_per_day: 1 << 30,
        },
        upload_url_ttl_seconds: 300,
        live_url: Some("wss://live.example/prod".into()),
    }
}

/// What `user`'s upload quotas hold: uploads issued this hour, bytes issued today.
async fn quota_of(stage: &TestStack, user: &str) -> (Option<u64>, Option<u64>) {
    let quota = (stage.clients.dynamodb.query())
        .table_name(stage.name("ImagesTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("QUOTA#{user}")))
        .send()
        .await
        .unwrap();
    let stored = |prefix: &str, name: &str| {
        (quota.items().iter())
            .find(|item| item["sk"].as_s().unwrap().starts_with(prefix))
            .and_then(|item| item.get(name)?.as_n().ok()?.parse().ok())
    };
    (stored("HOUR#", "issued"), stored("DAY#", "issued_bytes"))
}

/// A request of `user` to the API, answered with its status and JSON body.
async fn call(
    api: &api::handlers::Api<api::store::AwsStore>,
    method: &str,
    path: &str,
    user: &str,
    body: Value,
) -> (u16, Value) {
    let response = api
        .handle(api::http::ApiRequest {
            method: method.into(),
            path: path.into(),
            sub: Some(user.into()),
            correlation_id: format!("matrix-{method}-{}", path.len()),
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
            ..Default::default()
        })
        .await;
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

/// A published image of `owner`, as resize records one.
async fn published_image(stage: &TestStack, image: &str, owner: &str) {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    (stage.clients.dynamodb.put_item())
        .table_name(stage.name("ImagesTable"))
        .item("pk", s(&format!("IMAGE#{image}")))
        .item("sk", s("IMAGE"))
        .item("image_id", s(image))
        .item("owner_id", s(owner))
        .item("status", s("published"))
        .item("feed", s("published"))
        .item("published_at", AttributeValue::N(T0.to_string()))
        .item("created_at", AttributeValue::N(T0.to_string()))
        .item("renditions", s("[]"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn each_api_call_survives_a_hang_a_reset_and_a_lost_answer() {
    // Prepare: a published photo of alice, the API's every DynamoDB call through the proxy
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let api = api_through(&stage, &proxy);
    published_image(&stage, "sunset", "alice").await;
    let hang = || Shape::Hang(Duration::from_millis(1500));
    let lost = || Shape::Lost(Duration::from_millis(1500));
    let upload = json!({ "content_type": "image/jpeg", "content_length": 10 });

    // Act and assess, call by call: the upload quotas' TransactWriteItems and the image's
    // PutItem (take_upload_quota, create_pending) hang, reset, and lose their answers once each
    let landed = || Shape::Landed {
        status: 500,
        code: "InternalServerError",
        message: "Internal server error",
    };
    let throttled = || refusal(400, "ThrottlingException");
    for shape in [hang(), Shape::Reset, lost(), landed(), throttled()] {
        proxy.inject(dynamodb("TransactWriteItems", 1, shape.clone()));
        proxy.inject(dynamodb("PutItem", 1, shape.clone()));
        let (status, body) = call(&api, "POST", "/uploads", "bob", upload.clone()).await;
        assert_eq!(status, 201, "{shape:?}: {body}");
    }
    // ... and both lose their answers while the reads that tell a copy from a collision
    // (GetItem, after the copy fails its condition) hang, then are reset
    proxy.inject(dynamodb("TransactWriteItems", 1, lost()));
    proxy.inject(dynamodb("GetItem", 1, hang()));
    proxy.inject(dynamodb("PutItem", 1, lost()));
    proxy.inject(dynamodb("GetItem", 1, Shape::Reset));
    let (status, body) = call(&api, "POST", "/uploads", "bob", upload.clone()).await;
    assert_eq!(status, 201, "{body} {:?}", proxy.injected());
    // ... six uploads issued, six slots taken and six uploads' bytes: a copy sent after a lost
    // or failed answer counted nothing twice, in the hour or the day
    assert_eq!(quota_of(&stage, "bob").await, (Some(6), Some(60)));
    // ... a like: its image read hangs (image: GetItem) and its write's answer is lost
    // (write_like: UpdateItem); the copy the SDK sends fails its condition, and the handler
    // reads the state again and finds its own like
    proxy.inject(dynamodb("GetItem", 1, hang()));
    proxy.inject(dynamodb("UpdateItem", 1, lost()));
    let (status, body) = call(&api, "PUT", "/images/sunset/like", "bob", Value::Null).await;
    assert_eq!(
        (status, &body["liked"], &body["revision"]),
        (200, &json!(true), &json!(1)),
        "{body}"
    );
    // ... the like state's read is reset, then throttled (like_state: GetItem)
    for shape in [Shape::Reset, throttled()] {
        proxy.inject(dynamodb("GetItem", 1, shape));
        let state = api.store.like_state("sunset", "bob").await.unwrap();
        assert_eq!(state.map(|s| (s.liked, s.revision)), Some((true, 1)));
    }
    // ... an unlike's write hangs, and a like again is reset (one fault per call: the API's
    // 2.5 s per call leaves room for one more attempt, not always two)
    proxy.inject(dynamodb("UpdateItem", 1, hang()));
    let (status, body) = call(&api, "DELETE", "/images/sunset/like", "bob", Value::Null).await;
    assert_eq!((status, &body["revision"]), (200, &json!(2)), "{body}");
    proxy.inject(dynamodb("UpdateItem", 1, Shape::Reset));
    let (status, body) = call(&api, "PUT", "/images/sunset/like", "bob", Value::Null).await;
    assert_eq!((status, &body["revision"]), (200, &json!(3)), "{body}");
    // ... an unlike whose image read is throttled and whose write lands but is answered 500
    proxy.inject(dynamodb("GetItem", 1, throttled()));
    proxy.inject(dynamodb("UpdateItem", 1, landed()));
    let (status, body) = call(&api, "DELETE", "/images/sunset/like", "bob", Value::Null).await;
    assert_eq!(
        (status, &body["liked"], &body["revision"]),
        (200, &json!(false), &json!(4)),
        "{body}"
    );
    // ... the count's read hangs, is reset, then cut off in the middle of its answer
    // (LikeCounts::count: GetItem)
    for shape in [hang(), Shape::Reset, Shape::CutOff, throttled()] {
        proxy.inject(dynamodb("GetItem", 1, shape));
        assert!(api.store.likes.count("sunset").await.is_ok());
    }
    // ... the listings' queries (newest_first, inbox_page: Query)
    for path in ["/feed", "/me/images", "/me/notifications"] {
        for shape in [hang(), Shape::Reset, throttled()] {
            proxy.inject(dynamodb("Query", 1, shape));
            let (status, body) = call(&api, "GET", path, "alice", Value::Null).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    // ... marking read: the batch read that finds which named notifications are unread hangs,
    // is reset and is throttled (mark_read: BatchGetItem); a notification that is not there
    // costs that read and no write
    let read = |sk: &str| json!({ "ids": [sk] });
    let mark = |sk: &str| call(&api, "POST", "/me/notifications/read", "alice", read(sk));
    for shape in [hang(), Shape::Reset, throttled()] {
        proxy.inject(dynamodb("BatchGetItem", 1, shape));
        let (status, body) = mark("N#1795000000000#published-none").await;
        assert_eq!((status, &body["marked"]), (200, &json!(0)), "{body}");
    }
    let unread = |sk: &'static str| {
        (stage.clients.dynamodb.put_item())
            .table_name(stage.name("NotificationsTable"))
            .item("pk", AttributeValue::S("USER#alice".into()))
            .item("sk", AttributeValue::S(sk.into()))
            .item("unread", AttributeValue::Bool(true))
            .send()
    };
    // ... and unread ones: marked through a hang of the write (mark_read: UpdateItem); not
    // counted when the notification expires between the read and its write (its condition
    // fails); 500, as any fault of the table, when the inbox is at DynamoDB's size limit (it
    // cannot be: the update does not grow the item)
    for (sk, shape, answer) in [
        ("N#1795000000000#published-sunset", hang(), (200, json!(1))),
        (
            "N#1795000000001#published-gone",
            refusal(400, "ConditionalCheckFailedException"),
            (200, json!(0)),
        ),
        (
            "N#1795000000002#published-dunes",
            refusal(400, "ItemCollectionSizeLimitExceededException"),
            (500, Value::Null),
        ),
    ] {
        unread(sk).await.unwrap();
        proxy.inject(dynamodb("UpdateItem", 1, shape));
        let (status, body) = mark(sk).await;
        assert_eq!((status, body["marked"].clone()), answer, "{sk}: {body}");
    }
    let injected: u64 = proxy.injected().values().sum();
    assert_eq!(injected, 10 + 4 + 2 + 2 + 2 + 2 + 4 + 9 + 3 + 1 + 1 + 1);
}

#[tokio::test]
async fn the_notifiers_single_calls_survive_a_hang_a_reset_and_a_transaction_in_progress() {
    // Prepare: a like of an image whose owner is not known yet; the transaction keeping it
    // meets a reset and a transaction in progress
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let hang = || Shape::Hang(Duration::from_secs(3));
    proxy.inject(dynamodb("TransactWriteItems", 1, Shape::Reset));
    proxy.inject(dynamodb("TransactWriteItems", 1, IN_PROGRESS));
    stage.publish(&[liked("dunes", "bob", T0)]).await;
    assert_finished(&stage.deliver(&mut notifier).await);
    // ... then its image is published: the notice's transaction meets a reset and a
    // transaction in progress, the query for the kept likes hangs, the delete of the kept like
    // is reset, and clearing the owner item's mark hangs
    proxy.inject(dynamodb("TransactWriteItems", 1, Shape::Reset));
    proxy.inject(dynamodb("TransactWriteItems", 1, IN_PROGRESS));
    proxy.inject(dynamodb("Query", 1, hang()));
    proxy.inject(dynamodb("DeleteItem", 1, Shape::Reset));
    proxy.inject(dynamodb("UpdateItem", 1, hang()));
    stage
        .publish(&[published_event(
            "dunes",
            "alice",
            Timestamp::from_millis(T0 + 1),
        )])
        .await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: everything in this one delivery; alice is told both, nothing is left kept
    assert_finished(&responses);
    let reader = stage.inbox_reader();
    let mut texts: Vec<String> = (reader.inbox("alice").await.unwrap().into_iter())
        .map(|n| n.text)
        .collect();
    texts.sort();
    assert_eq!(texts, ["Your photo is live", "bob liked your photo"]);
    assert_eq!(reader.kept_likes("dunes").await.unwrap(), vec![]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 7);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn like_counts_stay_exact_through_resets_and_transactions_in_progress() {
    // Prepare: three likes; like-counter's read of the states is reset, its transaction meets
    // a reset and a transaction in progress
    let stage = TestStack::start().await;
    let (proxy, mut counter) = stage
        .through_proxy("like-counter", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(dynamodb("BatchGetItem", 1, Shape::Reset));
    proxy.inject(dynamodb("TransactWriteItems", 1, Shape::Reset));
    proxy.inject(dynamodb("TransactWriteItems", 1, IN_PROGRESS));
    // ... and its next send lands, but is answered 500 (the re-send carries the same token)
    proxy.inject(dynamodb(
        "TransactWriteItems",
        1,
        Shape::Landed {
            status: 500,
            code: "InternalServerError",
            message: "Internal server error",
        },
    ));
    let likes: Vec<Envelope> = ["bob", "carol", "dan"]
        .iter()
        .enumerate()
        .map(|(i, user)| liked("sunset", user, T0 + i as i64))
        .collect();
    stage.publish(&likes).await;

    // Act
    let responses = stage.deliver(&mut counter).await;

    // Assess: finished in one delivery, the count exact
    assert_finished(&responses);
    let counts = stage.like_counts();
    assert_eq!(counts.count("sunset").await.unwrap(), 3);
    assert_eq!(proxy.injected().values().sum::<u64>(), 4);
}

#[tokio::test]
async fn the_relay_puts_every_event_through_each_failure_of_a_put() {
    // Prepare: a recorded like; the stream resets the first put, hangs the second, answers
    // the third with a 500, the fourth with KMS throttling, and refuses the fifth's entry
    let stage = TestStack::start().await;
    let (proxy, mut relay) = stage
        .through_proxy("relay", &["AWS_ENDPOINT_URL_KINESIS"])
        .await;
    let put = |shape| Fault::new(Service::Kinesis, "PutRecords", 1, shape);
    let error = |status, code, message| Shape::Error {
        status,
        code,
        message,
    };
    proxy.inject(put(Shape::Reset));
    proxy.inject(put(Shape::Hang(Duration::from_secs(3))));
    proxy.inject(put(error(
        500,
        "InternalFailure",
        "Internal service failure",
    )));
    proxy.inject(put(error(400, "KMSThrottlingException", "Rate exceeded")));
    proxy.inject(put(Shape::FailedRecords("InternalFailure")));
    proxy.inject(put(Shape::Landed {
        status: 500,
        code: "InternalFailure",
        message: "Internal service failure",
    }));
    let event = snapglow_tests::fixture("dynamodb/like-recorded.json");

    // Act
    let response: Value = serde_json::from_slice(&relay.invoke(event).await.unwrap()).unwrap();

    // Assess: the change finished in this invocation, its event on the stream
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    assert_eq!(proxy.injected().values().sum::<u64>(), 6);
    assert!(proxy.seen("PutRecords") >= 7);
    assert!(!stage.stream_events().await.is_empty());
}

#[tokio::test]
async fn resize_publishes_through_each_failure_of_its_reads_and_writes() {
    // Prepare: an issued upload; S3 hangs and resets resize's read of it, answers its first
    // rendition put with 503 SlowDown and resets the next; DynamoDB hangs the check that the
    // upload was issued and loses the answer of the finishing write
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy(
            "resize",
            &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"],
        )
        .await;
    let s3 = |operation, shape| Fault::new(Service::S3, operation, 1, shape);
    let hang = || Shape::Hang(Duration::from_secs(4));
    proxy.inject(s3("GetObject", hang()));
    proxy.inject(s3("GetObject", Shape::Reset));
    proxy.inject(s3(
        "PutObject",
        Shape::Error {
            status: 503,
            code: "SlowDown",
            message: "Please reduce your request rate.",
        },
    ));
    proxy.inject(s3("PutObject", Shape::Reset));
    proxy.inject(dynamodb("GetItem", 1, hang()));
    proxy.inject(dynamodb(
        "UpdateItem",
        1,
        Shape::Lost(Duration::from_secs(4)),
    ));
    stage
        .issue_and_upload("alice", "dunes", sample_jpeg(640, 480))
        .await;
    let event = stage.uploads_event(2).await;

    // Act
    let response = invoke_json(&mut resize, &event).await;

    // Assess: published in this invocation, its event recorded once
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    let recorded = stage
        .recorded_event("dunes")
        .await
        .expect("an event is recorded");
    assert_eq!(recorded["type"], "ImagePublished", "{recorded}");
    assert_eq!(proxy.injected().values().sum::<u64>(), 6);
}

#[tokio::test]
async fn a_poison_record_is_quarantined_through_a_reset_and_a_hang_of_the_queue() {
    // Prepare: an undecodable record; the quarantine queue resets the first send and hangs
    // the second
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_SQS"])
        .await;
    let send = |shape| Fault::new(Service::Sqs, "SendMessage", 1, shape);
    proxy.inject(send(Shape::Reset));
    proxy.inject(send(Shape::Hang(Duration::from_secs(3))));
    stage.put_raw("beach", b"{\"type\":\"ImageLiked\"").await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: set aside in this delivery, the shard moves on
    assert_finished(&responses);
    // (a hung send reaches the queue after the SDK's copy of it: the entry may be there twice,
    // both the same record, and a redrive of either is absorbed as a duplicate)
    let quarantined = stage.quarantined().await;
    assert!(!quarantined.is_empty());
    assert!(
        quarantined
            .iter()
            .all(|q| q["source"] == quarantined[0]["source"]),
        "{quarantined:?}"
    );
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

/// DynamoDB's or S3's error answer.
fn refusal(status: u16, code: &'static str) -> Shape {
    Shape::Error {
        status,
        code,
        message: "refused by the fault layer",
    }
}

#[tokio::test]
async fn a_notice_its_group_cannot_write_is_written_alone_through_each_busy_answer() {
    // Prepare: four image events; each group send is refused as a whole (ValidationException),
    // so each notice is written alone, and those sends meet a transaction in progress, a hang,
    // a cancellation without reasons; the last notice is refused alone too
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let invalid = || refusal(400, "ValidationException");
    for alone in [
        IN_PROGRESS,
        Shape::Hang(Duration::from_secs(3)),
        Shape::Canceled(snapglow_local::faults::Reasons::Absent),
        invalid(),
    ] {
        proxy.inject(dynamodb("TransactWriteItems", 1, invalid()));
        proxy.inject(dynamodb("TransactWriteItems", 1, alone));
        let image = format!("beach-{}", proxy.injected().len());
        stage
            .publish(&[published_event(&image, "alice", Timestamp::from_millis(T0))])
            .await;
        let (shard, record) = (stage.stream_records().await.into_iter())
            .find(|(_, r)| String::from_utf8_lossy(r.data().as_ref()).contains(&image))
            .expect("the event is on the stream");

        // Act: the new record alone, as its shard's next batch
        let batch = stage.kinesis_batch(&shard, &[record]);
        let response = invoke_json(&mut notifier, &batch).await;

        // Assess: each is finished: written, or (refused alone) quarantined
        assert_eq!(batch_failures(&response), Vec::<String>::new());
    }
    let reader = stage.inbox_reader();
    assert_eq!(reader.inbox("alice").await.unwrap().len(), 3);
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0]["reason"], "rejected_by_dynamodb");
    assert_eq!(proxy.injected().values().sum::<u64>(), 8);
}

#[tokio::test]
async fn a_notice_the_table_refuses_to_the_function_comes_back_or_fails_the_invocation() {
    // Prepare: an image event; the table is missing for the group and alone, then the
    // function's grant is refused for both
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(dynamodb(
        "TransactWriteItems",
        2,
        refusal(400, "ResourceNotFoundException"),
    ));
    proxy.inject(dynamodb(
        "TransactWriteItems",
        2,
        refusal(400, "AccessDeniedException"),
    ));
    stage
        .publish(&[published_event(
            "beach",
            "alice",
            Timestamp::from_millis(T0),
        )])
        .await;
    let (shard, records) = stage.shards().await.into_iter().next().unwrap();
    let batch = serde_json::to_vec(&stage.kinesis_batch(&shard, &records)).unwrap();

    // Act
    let missing = notifier.invoke(batch.clone()).await;
    let denied = notifier.invoke(batch.clone()).await;
    let healthy = notifier.invoke(batch).await;

    // Assess: a missing table sends the record back; a refused grant fails the invocation
    // (the Errors alarm); once healthy, the notice is written
    let missing: Value = serde_json::from_slice(&missing.unwrap()).unwrap();
    assert_eq!(batch_failures(&missing).len(), 1);
    assert!(denied.is_err(), "{denied:?}");
    let healthy: Value = serde_json::from_slice(&healthy.unwrap()).unwrap();
    assert_eq!(batch_failures(&healthy), Vec::<String>::new());
    assert_eq!(proxy.injected().values().sum::<u64>(), 4);
}

#[tokio::test]
async fn a_hung_keep_and_hung_reads_and_writes_of_like_counter_finish_in_one_delivery() {
    // Prepare: a like of an unknown owner's image (the notifier keeps it: its transaction
    // hangs once), and like-counter's read and transaction each hang once
    let stage = TestStack::start().await;
    let (notifier_proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let (counter_proxy, mut counter) = stage
        .through_proxy("like-counter", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let hang = || Shape::Hang(Duration::from_secs(3));
    notifier_proxy.inject(dynamodb("TransactWriteItems", 1, hang()));
    counter_proxy.inject(dynamodb("BatchGetItem", 1, hang()));
    counter_proxy.inject(dynamodb("TransactWriteItems", 1, hang()));
    stage.publish(&[liked("dunes", "bob", T0)]).await;

    // Act
    let kept = stage.deliver(&mut notifier).await;
    let counted = stage.deliver(&mut counter).await;

    // Assess
    for response in kept.iter().chain(&counted) {
        assert_eq!(batch_failures(response), Vec::<String>::new());
    }
    let reader = stage.inbox_reader();
    assert_eq!(reader.kept_likes("dunes").await.unwrap().len(), 1);
    let counts = stage.like_counts();
    assert_eq!(counts.count("dunes").await.unwrap(), 1);
    assert_eq!(notifier_proxy.injected().values().sum::<u64>(), 1);
    assert_eq!(counter_proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn a_stream_the_relay_may_not_write_fails_its_invocation_and_a_refused_entry_is_put_again() {
    // Prepare: a recorded like; the stream refuses the relay's KMS key, then its grant, then
    // answers one put with InvalidArgumentException
    let stage = TestStack::start().await;
    let (proxy, mut relay) = stage
        .through_proxy("relay", &["AWS_ENDPOINT_URL_KINESIS"])
        .await;
    let put = |shape| Fault::new(Service::Kinesis, "PutRecords", 1, shape);
    proxy.inject(put(refusal(400, "KMSAccessDeniedException")));
    proxy.inject(put(refusal(400, "AccessDeniedException")));
    proxy.inject(put(refusal(400, "InvalidArgumentException")));
    let event = snapglow_tests::fixture("dynamodb/like-recorded.json");

    // Act
    let kms = relay.invoke(event.clone()).await;
    let grant = relay.invoke(event.clone()).await;
    let invalid = relay.invoke(event).await;

    // Assess: the two refusals fail their invocations at once (one put each); the invalid
    // answer is put again and the change finishes
    assert!(kms.is_err(), "{kms:?}");
    assert!(grant.is_err(), "{grant:?}");
    let invalid: Value = serde_json::from_slice(&invalid.unwrap()).unwrap();
    assert_eq!(batch_failures(&invalid), Vec::<String>::new());
    assert_eq!(proxy.seen("PutRecords"), 4);
}

#[tokio::test]
async fn resize_fails_its_invocation_on_each_refusal_and_skips_a_vanished_upload() {
    // Prepare: an issued upload and its notification
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy(
            "resize",
            &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"],
        )
        .await;
    stage
        .issue_and_upload("alice", "dunes", sample_jpeg(320, 240))
        .await;
    let event = serde_json::to_vec(&stage.uploads_event(2).await).unwrap();
    let refusals = [
        (
            Service::DynamoDb,
            "GetItem",
            refusal(400, "ResourceNotFoundException"),
        ),
        (
            Service::DynamoDb,
            "GetItem",
            refusal(400, "AccessDeniedException"),
        ),
        (Service::S3, "GetObject", refusal(404, "NoSuchBucket")),
        (Service::S3, "PutObject", refusal(403, "AccessDenied")),
        (
            Service::DynamoDb,
            "UpdateItem",
            refusal(400, "ResourceNotFoundException"),
        ),
        (
            Service::DynamoDb,
            "UpdateItem",
            refusal(400, "AccessDeniedException"),
        ),
    ];

    // Act and assess: each refusal fails the invocation at once (the message comes back)
    for (service, operation, shape) in refusals {
        proxy.inject(Fault::new(service, operation, 1, shape.clone()));
        let answer = resize.invoke(event.clone()).await;
        assert!(answer.is_err(), "{operation} {shape:?}: {answer:?}");
    }
    // ... an issued check DynamoDB refuses as invalid (it cannot: a key of at most 1,024 bytes
    // fits) sends the message back, without failing the invocation
    proxy.inject(dynamodb("GetItem", 1, refusal(400, "ValidationException")));
    let back: Value = serde_json::from_slice(&resize.invoke(event.clone()).await.unwrap()).unwrap();
    assert_eq!(batch_failures(&back).len(), 1, "{back}");
    // ... a 500 on the issued check is retried, and the upload is published
    proxy.inject(dynamodb("GetItem", 1, refusal(500, "InternalServerError")));
    let response: Value = serde_json::from_slice(&resize.invoke(event).await.unwrap()).unwrap();
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    let recorded = stage
        .recorded_event("dunes")
        .await
        .expect("an event is recorded");
    assert_eq!(recorded["type"], "ImagePublished");
    // ... and an upload whose object is gone before resize reads it is skipped
    let key = stage
        .issue_and_upload("alice", "gone", sample_jpeg(32, 24))
        .await;
    let event = stage.uploads_event(1).await;
    (stage.clients.s3.delete_object())
        .bucket(stage.name("UploadsBucket"))
        .key(&key)
        .send()
        .await
        .unwrap();
    let response = invoke_json(&mut resize, &event).await;
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    assert_eq!(stage.recorded_event("gone").await, None);
    assert_eq!(proxy.injected().values().sum::<u64>(), 8);
}

#[tokio::test]
async fn a_poison_record_too_large_for_a_message_is_quarantined_through_a_reset_of_its_claim_check()
{
    // Prepare: an undecodable record of 300 KiB (larger than an SQS message: its bytes go to
    // the quarantine bucket); S3 resets the first put of them
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_S3"])
        .await;
    proxy.inject(Fault::new(Service::S3, "PutObject", 1, Shape::Reset));
    proxy.inject(Fault::new(
        Service::S3,
        "PutObject",
        1,
        Shape::Hang(Duration::from_secs(3)),
    ));
    stage.put_raw("beach", &vec![b'x'; 300 * 1024]).await;

    // Act
    let responses = stage.deliver(&mut notifier).await;

    // Assess: set aside in this delivery, its bytes whole in the bucket
    assert_finished(&responses);
    let quarantined = stage.quarantined().await;
    assert!(!quarantined.is_empty(), "nothing quarantined");
    let claim = &quarantined[0]["raw_object"];
    assert!(claim.is_object(), "{}", quarantined[0]);
    let object = (stage.clients.s3.get_object())
        .bucket(claim["bucket"].as_str().unwrap())
        .key(claim["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_length(), Some(300 * 1024));
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn a_like_whose_owner_becomes_known_while_it_is_being_kept_is_told_at_once() {
    // Prepare: a like of an image whose owner is not known yet; the transaction that would keep
    // it hangs, and the read of the owner after it hangs too
    let stage = TestStack::start().await;
    let (proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    proxy.inject(dynamodb(
        "TransactWriteItems",
        1,
        Shape::Hang(Duration::from_secs(4)),
    ));
    proxy.inject(dynamodb("GetItem", 1, Shape::Hang(Duration::from_secs(3))));
    stage.publish(&[liked("dunes", "bob", T0)]).await;
    // ... while that transaction hangs, the image's owner becomes known (its ImagePublished,
    // handled by another invocation, writes the owner item)
    let owner_known = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while proxy.seen("TransactWriteItems") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no transaction was sent"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (stage.clients.dynamodb.put_item())
            .table_name(stage.name("NotificationsTable"))
            .item("pk", AttributeValue::S("IMAGE#dunes".into()))
            .item("sk", AttributeValue::S("OWNER".into()))
            .item("owner_id", AttributeValue::S("alice".into()))
            .send()
            .await
            .unwrap();
    };

    // Act: the SDK sends the transaction again, and its condition finds the owner
    let (responses, ()) = tokio::join!(stage.deliver(&mut notifier), owner_known);

    // Assess: the like is told to alice now, nothing is kept for the image
    assert_finished(&responses);
    let reader = stage.inbox_reader();
    let texts: Vec<String> = (reader.inbox("alice").await.unwrap().into_iter())
        .map(|n| n.text)
        .collect();
    assert_eq!(texts, ["bob liked your photo"]);
    assert_eq!(reader.kept_likes("dunes").await.unwrap(), vec![]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn an_upload_whose_read_is_cut_off_mid_body_is_read_again_not_rendered_from_half() {
    // Prepare: an issued upload; S3's answer to resize's read stops halfway through the body
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_S3"])
        .await;
    proxy.inject(Fault::new(Service::S3, "GetObject", 1, Shape::CutOff));
    stage
        .issue_and_upload("alice", "dunes", sample_jpeg(640, 480))
        .await;
    let event = stage.uploads_event(2).await;

    // Act
    let response = invoke_json(&mut resize, &event).await;

    // Assess: the SDK read the object again (the half it got is never rendered, nor taken
    // for an undecodable upload), and the upload is published in this invocation
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    let recorded = stage
        .recorded_event("dunes")
        .await
        .expect("an event is recorded");
    assert_eq!(recorded["type"], "ImagePublished", "{recorded}");
    assert_eq!(proxy.seen("GetObject"), 2);
    assert_eq!(proxy.injected().values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_rejected_uploads_tag_rides_out_a_slowdown_and_a_reset_and_a_refused_tag_fails_the_invocation()
 {
    // Prepare: an issued upload that is no image
    let stage = TestStack::start().await;
    let (proxy, mut resize) = stage
        .through_proxy("resize", &["AWS_ENDPOINT_URL_S3"])
        .await;
    let key = stage
        .issue_and_upload("alice", "junk", b"not an image at all".to_vec())
        .await;
    let event = serde_json::to_vec(&stage.uploads_event(2).await).unwrap();

    // Act: the tag is refused once (a role without s3:PutObjectTagging); then S3 slows down
    // and resets the connection once each
    proxy.inject(Fault::new(
        Service::S3,
        "PutObjectTagging",
        1,
        refusal(403, "AccessDenied"),
    ));
    let refused = resize.invoke(event.clone()).await;
    proxy.inject(Fault::new(
        Service::S3,
        "PutObjectTagging",
        1,
        refusal(503, "SlowDown"),
    ));
    proxy.inject(Fault::new(Service::S3, "PutObjectTagging", 1, Shape::Reset));
    let response: Value = serde_json::from_slice(&resize.invoke(event).await.unwrap()).unwrap();

    // Assess: the refusal failed the invocation before the rejection was recorded (the
    // message comes back); then the upload is rejected, its original tagged for the bucket's
    // lifecycle rule to expire
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(batch_failures(&response), Vec::<String>::new());
    let recorded = stage.recorded_event("junk").await.expect("an event");
    assert_eq!(recorded["type"], "ImageRejected");
    let tags = (stage.clients.s3.get_object_tagging())
        .bucket(stage.name("UploadsBucket"))
        .key(&key)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = (tags.tag_set().iter())
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(tags, [("snapglow-fate", "rejected")]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 3);
}

#[tokio::test]
async fn the_request_counter_rides_out_a_hang_a_reset_and_throttling_and_a_lost_answer_counts_once_more()
 {
    // Prepare: the API's request counter, its writes through the proxy with the API's timeouts
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let timeouts = snapglow::aws::CallTimeouts::within(Duration::from_secs(10));
    let config = (stage.clients.dynamodb.config().to_builder())
        .endpoint_url(proxy.url())
        .timeout_config(timeouts.timeout_config())
        .retry_config(timeouts.retry_config())
        .build();
    let table = stage.name("ImagesTable");
    let counter =
        api::store::RequestCounter::new(aws_sdk_dynamodb::Client::from_conf(config), table);
    let minute = 1_795_000_020_000;

    // Act: four of alice's requests, each meeting one fault; two of bob's under a limit of one
    let mut counted = Vec::new();
    for shape in [
        Shape::Hang(Duration::from_millis(1500)),
        Shape::Reset,
        refusal(400, "ThrottlingException"),
        Shape::Lost(Duration::from_millis(1500)),
    ] {
        proxy.inject(Fault::new(Service::DynamoDb, "UpdateItem", 1, shape));
        counted.push(counter.take("alice", minute, 100).await.unwrap());
    }
    let bobs = [
        counter.take("bob", minute, 1).await.unwrap(),
        counter.take("bob", minute, 1).await.unwrap(),
    ];

    // Assess: every request served; the copy the SDK sent after the lost answer counted once
    // more (the hazard the counter accepts); bob's second request refused
    assert_eq!(counted, [true; 4]);
    let stored = (stage.clients.dynamodb.get_item())
        .table_name(table)
        .key("pk", AttributeValue::S("RATE#alice".into()))
        .key("sk", AttributeValue::S(format!("MINUTE#{minute}")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(stored["requests"], AttributeValue::N("5".into()));
    assert_eq!(bobs, [true, false]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 4);
}

#[tokio::test]
async fn two_uploads_of_one_user_at_once_both_count_through_a_conflict() {
    // Prepare: the upload quotas' transaction meets another transaction of the same user on
    // its items once (TransactionConflict), then a partition scaling (ThrottlingError)
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let api = api_through(&stage, &proxy);
    let upload = json!({ "content_type": "image/jpeg", "content_length": 10 });
    for code in ["TransactionConflict", "ThrottlingError"] {
        proxy.inject(dynamodb(
            "TransactWriteItems",
            1,
            Shape::Canceled(snapglow_local::faults::Reasons::Each(code)),
        ));
    }

    // Act
    let (first, body) = call(&api, "POST", "/uploads", "carol", upload.clone()).await;
    let (second, _) = call(&api, "POST", "/uploads", "carol", upload).await;

    // Assess: both issued, each counted once in the hour and in the day
    assert_eq!((first, second), (201, 201), "{body}");
    assert_eq!(quota_of(&stage, "carol").await, (Some(2), Some(20)));
    assert_eq!(proxy.injected().values().sum::<u64>(), 2);
}

#[tokio::test]
async fn a_deletion_rides_out_a_reset_throttling_and_a_lost_answer_and_records_one_event() {
    // Prepare: three of alice's published photos; each deletion's write meets one fault
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let api = api_through(&stage, &proxy);
    let shapes = [
        Shape::Reset,
        refusal(400, "ThrottlingException"),
        Shape::Lost(Duration::from_millis(1500)),
    ];
    let images = ["reset", "throttled", "lost"];
    for image in images {
        published_image(&stage, image, "alice").await;
    }

    // Act: each deleted once, with its fault, then again
    let mut answers = Vec::new();
    for (image, shape) in images.iter().zip(shapes) {
        proxy.inject(dynamodb("UpdateItem", 1, shape));
        let path = format!("/images/{image}");
        answers.push(call(&api, "DELETE", &path, "alice", Value::Null).await.0);
        answers.push(call(&api, "DELETE", &path, "alice", Value::Null).await.0);
    }

    // Assess: every deletion answered 204 and recorded one ImageDeleted: the copy the SDK sent
    // after the lost answer found the tombstone and wrote nothing
    assert_eq!(answers, [204; 6]);
    for image in images {
        let recorded = stage.recorded_event(image).await.expect("an event");
        assert_eq!(recorded["type"], "ImageDeleted", "{image}");
        let (status, _) = call(
            &api,
            "GET",
            &format!("/images/{image}"),
            "alice",
            Value::Null,
        )
        .await;
        assert_eq!(status, 404, "{image}");
    }
    assert_eq!(proxy.injected().values().sum::<u64>(), 3);
}

/// `image` of `owner` deleted as the API records it: the tombstone, with likes of `likers` in
/// the images table and its original and one rendition in the buckets; the rendition's key.
async fn deleted_image(stage: &TestStack, image: &str, owner: &str, likers: &[&str]) -> String {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    stage
        .issue_and_upload(owner, image, b"original".to_vec())
        .await;
    let rendition = format!("renditions/{image}/v1/thumb.jpg");
    (stage.clients.s3.put_object())
        .bucket(stage.name("RenditionsBucket"))
        .key(&rendition)
        .body(b"thumb".to_vec().into())
        .send()
        .await
        .unwrap();
    (stage.clients.dynamodb.update_item())
        .table_name(stage.name("ImagesTable"))
        .key("pk", s(&format!("IMAGE#{image}")))
        .key("sk", s("IMAGE"))
        .update_expression("SET #status = :deleted")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":deleted", s("deleted"))
        .send()
        .await
        .unwrap();
    for liker in likers {
        (stage.clients.dynamodb.put_item())
            .table_name(stage.name("ImagesTable"))
            .item("pk", s(&format!("IMAGE#{image}")))
            .item("sk", s(&format!("LIKE#{liker}")))
            .item("liked", AttributeValue::Bool(true))
            .send()
            .await
            .unwrap();
    }
    rendition
}

#[tokio::test]
async fn the_eraser_deletes_through_a_slowdown_half_refused_deletes_and_a_reset_and_a_refusal_fails_it()
 {
    // Prepare: alice's deleted photo, liked by 30 users
    let stage = TestStack::start().await;
    let (proxy, mut eraser) = stage
        .through_proxy(
            "eraser",
            &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"],
        )
        .await;
    let likers: Vec<String> = (0..30).map(|i| format!("user-{i:02}")).collect();
    let likers: Vec<&str> = likers.iter().map(String::as_str).collect();
    let rendition = deleted_image(&stage, "beach", "alice", &likers).await;
    let deletion = snapglow_local::scenarios::producer::deleted_event(
        "beach",
        "alice",
        &[&rendition],
        Timestamp::from_millis(T0),
    );
    stage.publish(&[deletion]).await;

    // Act: S3 refuses the eraser once (a role without s3:DeleteObject) ...
    proxy.inject(Fault::new(
        Service::S3,
        "DeleteObjects",
        1,
        refusal(403, "AccessDenied"),
    ));
    let (shard, records) = (stage.shards().await.into_iter())
        .find(|(_, records)| !records.is_empty())
        .expect("the deletion is on the stream");
    let batch = serde_json::to_vec(&stage.kinesis_batch(&shard, &records)).unwrap();
    let refused = eraser.invoke(batch).await;
    // ... then answers 200 naming every delete failed (InternalError)
    proxy.inject(Fault::new(
        Service::S3,
        "DeleteObjects",
        1,
        Shape::DeleteErrors("InternalError"),
    ));
    let half = stage.deliver(&mut eraser).await;
    // ... then slows down and resets once each; the tombstone's read is reset and answered
    // 500; the like items' query is throttled, and their deletes meet a reset, throttling and
    // a transaction in progress
    proxy.inject(Fault::new(
        Service::S3,
        "DeleteObjects",
        1,
        refusal(503, "SlowDown"),
    ));
    proxy.inject(Fault::new(Service::S3, "DeleteObjects", 1, Shape::Reset));
    proxy.inject(dynamodb("GetItem", 1, Shape::Reset));
    proxy.inject(dynamodb("GetItem", 1, refusal(500, "InternalServerError")));
    proxy.inject(dynamodb(
        "Query",
        1,
        refusal(400, "ProvisionedThroughputExceededException"),
    ));
    proxy.inject(dynamodb("DeleteItem", 1, Shape::Reset));
    proxy.inject(dynamodb(
        "DeleteItem",
        1,
        refusal(400, "ProvisionedThroughputExceededException"),
    ));
    proxy.inject(dynamodb("DeleteItem", 1, IN_PROGRESS));
    let done = stage.deliver(&mut eraser).await;

    // Assess: the refusal failed the invocation; the half-refused delete asked for the record
    // again; the redelivery erased everything, through every other fault
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        half.iter()
            .map(batch_failures)
            .map(|f| f.len())
            .sum::<usize>(),
        1
    );
    assert_finished(&done);
    assert_eq!(
        stage.keys_under("UploadsBucket", "uploads/alice/").await,
        Vec::<String>::new()
    );
    assert_eq!(
        stage
            .keys_under("RenditionsBucket", "renditions/beach/")
            .await,
        Vec::<String>::new()
    );
    assert_eq!(
        stage.sort_keys("ImagesTable", "IMAGE#beach").await,
        ["IMAGE"]
    );
    assert_eq!(proxy.injected().values().sum::<u64>(), 10);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn the_consumers_erase_a_deleted_image_through_resets_throttling_and_unprocessed_deletes() {
    // Prepare: alice's photo, published and liked by 30 users, counted and told
    let stage = TestStack::start().await;
    let (counter_proxy, mut counter) = stage
        .through_proxy("like-counter", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let (notifier_proxy, mut notifier) = stage
        .through_proxy("notifier", &["AWS_ENDPOINT_URL_DYNAMODB"])
        .await;
    let mut events = vec![published_event(
        "beach",
        "alice",
        Timestamp::from_millis(T0),
    )];
    for i in 0..30 {
        events.push(liked("beach", &format!("user-{i:02}"), T0 + 1 + i));
    }
    stage.publish(&events).await;
    assert_finished(&stage.deliver(&mut counter).await);
    assert_finished(&stage.deliver(&mut notifier).await);
    assert_eq!(stage.like_counts().count("beach").await.unwrap(), 30);

    // Act: alice deletes it while one more user likes it; like-counter's tombstone write is
    // reset and throttled, its query throttled, a BatchWriteItem leaves deletes unprocessed
    // and the next is throttled whole;
    // notifier's tombstone hangs, its query is reset, a BatchWriteItem leaves deletes
    // unprocessed and the next is reset
    stage
        .publish(&[
            snapglow_local::scenarios::producer::deleted_event(
                "beach",
                "alice",
                &[],
                Timestamp::from_millis(T0 + 100),
            ),
            liked("beach", "late", T0 + 50),
        ])
        .await;
    counter_proxy.inject(dynamodb("PutItem", 1, Shape::Reset));
    counter_proxy.inject(dynamodb("PutItem", 1, refusal(400, "ThrottlingException")));
    counter_proxy.inject(dynamodb("Query", 1, refusal(400, "ThrottlingException")));
    counter_proxy.inject(dynamodb("BatchWriteItem", 1, Shape::UnprocessedItems));
    counter_proxy.inject(dynamodb(
        "BatchWriteItem",
        1,
        refusal(400, "ProvisionedThroughputExceededException"),
    ));
    notifier_proxy.inject(dynamodb(
        "UpdateItem",
        1,
        Shape::Hang(Duration::from_secs(3)),
    ));
    notifier_proxy.inject(dynamodb("Query", 1, Shape::Reset));
    notifier_proxy.inject(dynamodb("BatchWriteItem", 1, Shape::UnprocessedItems));
    notifier_proxy.inject(dynamodb("BatchWriteItem", 1, Shape::Reset));
    let counted = stage.deliver(&mut counter).await;
    let told = stage.deliver(&mut notifier).await;

    // Assess: each finished in one delivery (the whole stream again: a replay of it too);
    // the count is a tombstone, no liker's state is left, alice's inbox holds nothing of it
    assert_finished(&counted);
    assert_finished(&told);
    assert_eq!(stage.like_counts().count("beach").await.unwrap(), 0);
    assert_eq!(
        stage.sort_keys("LikesTable", "IMAGE#beach").await,
        ["COUNT"]
    );
    let inbox = stage.inbox_reader().inbox("alice").await.unwrap();
    assert_eq!(inbox.len(), 0, "{inbox:?}");
    assert_eq!(counter_proxy.injected().values().sum::<u64>(), 5);
    assert_eq!(notifier_proxy.injected().values().sum::<u64>(), 4);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}
