//! The local stack end to end: resources from template.yaml in a real emulator, the real
//! function binaries under the local Runtime API, talking AWS wire protocols.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use snapglow_local::stack::deploy;
use snapglow_local::template::Template;
use snapglow_local::triggers::kinesis::kinesis_event;
use snapglow_local::triggers::sqs::sqs_event;
use snapglow_tests::{
    FUNCTIONS, TestStack, batch_failures as failures, fixture, invoke_json, sample_jpeg,
};
use std::collections::BTreeSet;

#[tokio::test]
async fn up_creates_exactly_the_resources_of_the_template_and_is_idempotent() {
    // GIVEN a stack created from template.yaml
    let stage = TestStack::start().await;
    // As the fresh stack was deployed: for the local site's default origin.
    let template = snapglow_local::stack::LocalPorts::default()
        .template(&stage.root)
        .unwrap();
    let declared = |kind: &str| -> BTreeSet<String> {
        template
            .of_kind(kind)
            .map(|r| stage.name(&r.logical_id).to_owned())
            .collect()
    };
    // WHEN the emulator is asked what exists
    let c = &stage.clients;
    let buckets: BTreeSet<String> =
        c.s3.list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .filter_map(|b| b.name.clone())
            .collect();
    let tables: BTreeSet<String> = c
        .dynamodb
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
        .iter()
        .cloned()
        .collect();
    let streams: BTreeSet<String> = c
        .kinesis
        .list_streams()
        .send()
        .await
        .unwrap()
        .stream_names()
        .iter()
        .cloned()
        .collect();
    let queues: BTreeSet<String> = c
        .sqs
        .list_queues()
        .send()
        .await
        .unwrap()
        .queue_urls()
        .iter()
        .map(|u| u.rsplit('/').next().unwrap().to_owned())
        .collect();
    // THEN it is exactly what the template declares
    assert_eq!(buckets, declared("AWS::S3::Bucket"));
    assert_eq!(tables, declared("AWS::DynamoDB::Table"));
    assert_eq!(streams, declared("AWS::Kinesis::Stream"));
    assert_eq!(queues, declared("AWS::SQS::Queue"));
    // AND a second `up` changes nothing
    let again = deploy(&template, "snapglow", &stage.emulator.endpoint_url())
        .await
        .unwrap();
    assert_eq!(without_keys(again), without_keys(stage.stack.clone()));
    // AND function environments point at local names
    let resize = stage
        .stack
        .resource("ResizeFunction")
        .unwrap()
        .function()
        .unwrap();
    assert_eq!(
        resize.environment["RENDITIONS_BUCKET"],
        stage.name("RenditionsBucket")
    );
    assert_eq!(
        resize.environment["QUARANTINE_QUEUE_URL"],
        stage.url("QuarantineQueue")
    );
    assert_eq!(resize.timeout_seconds, 60);
}

#[tokio::test]
async fn every_sample_event_is_handled_by_its_functions_without_failures() {
    let stage = TestStack::start().await;
    let cases: [(&str, &[&str]); 2] = [
        ("sqs", &["resize"]),
        ("kinesis", &["like-counter", "notifier", "eraser"]),
    ];
    for (folder, functions) in cases {
        for function in functions {
            let mut running = stage.function(function).await;
            for entry in std::fs::read_dir(stage.root.join("events").join(folder)).unwrap() {
                let path = entry.unwrap().path();
                let event: Value = serde_json::from_slice(&fixture(&format!(
                    "{folder}/{}",
                    path.file_name().unwrap().to_string_lossy()
                )))
                .unwrap();
                let response = invoke_json(&mut running, &event).await;
                assert_eq!(
                    failures(&response),
                    Vec::<String>::new(),
                    "{function} with {}",
                    path.display()
                );
            }
        }
    }
    // The malformed samples were acknowledged because they are in the quarantine.
    let quarantined = stage.quarantined().await;
    let by: BTreeSet<(String, String)> = quarantined
        .iter()
        .map(|q| {
            (
                q["function"].as_str().unwrap().to_owned(),
                q["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("snapglow-ResizeFunction", "not_an_s3_notification"),
        ("snapglow-LikeCounterFunction", "malformed_envelope"),
        ("snapglow-NotifierFunction", "malformed_envelope"),
        ("snapglow-EraserFunction", "malformed_envelope"),
    ]
    .into_iter()
    .map(|(f, r)| (f.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(by, expected);
    assert_eq!(quarantined.len(), 4);
}

#[tokio::test]
async fn a_batch_reports_exactly_its_transiently_failed_records() {
    // GIVEN a real upload, whose S3 notification arrives on the queue
    let stage = TestStack::start().await;
    stage
        .issue_and_upload("alice", "beach", sample_jpeg(640, 480))
        .await;
    let notifications: Vec<_> = stage.receive("ImageUploadsQueue", 2).await; // the s3:TestEvent and the upload
    // AND a message that is not an S3 notification at all
    stage
        .clients
        .sqs
        .send_message()
        .queue_url(stage.url("ImageUploadsQueue"))
        .message_body("garbage")
        .send()
        .await
        .unwrap();
    let mut messages = notifications;
    messages.extend(stage.receive("ImageUploadsQueue", 1).await);
    let upload_id = messages
        .iter()
        .find(|m| m.body().unwrap().contains("beach"))
        .unwrap()
        .message_id()
        .unwrap()
        .to_owned();
    let event = sqs_event(stage.arn("ImageUploadsQueue"), &messages);
    // AND S3 answering every rendition write with 503 SlowDown (more than the SDK's attempts)
    use snapglow_local::faults::{Fault, FaultProxy, Service, Shape};
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    proxy.inject(Fault::share(
        Service::S3,
        Some("PutObject"),
        100,
        Shape::Error {
            status: 503,
            code: "SlowDown",
            message: "Please reduce your request rate.",
        },
    ));
    let mut spec = stage.spec("resize");
    spec.environment
        .push(("AWS_ENDPOINT_URL_S3".into(), proxy.url()));
    let mut resize = stage.run(spec).await;
    // WHEN the batch is invoked
    let response = invoke_json(&mut resize, &event).await;
    // THEN only the upload is reported (transient: S3 slows down, then recovers); the test
    // event is skipped and the garbage is quarantined and acknowledged
    assert_eq!(failures(&response), vec![upload_id]);
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["raw_text"], "garbage");
    assert_eq!(quarantined[0]["source"]["kind"], "sqs");
}

#[tokio::test]
async fn an_upload_becomes_renditions_and_an_image_published_event() {
    // GIVEN a 1600x1200 photo uploaded under an issued key with a space, a plus and unicode
    let stage = TestStack::start().await;
    let key = stage
        .issue_and_upload("béa", "my photo+1", sample_jpeg(1600, 1200))
        .await;
    let key = key.as_str();
    let messages = stage.receive("ImageUploadsQueue", 2).await;
    let mut resize = stage.function("resize").await;
    // WHEN resize handles the real notification, twice (a redelivery)
    let event = sqs_event(stage.arn("ImageUploadsQueue"), &messages);
    assert_eq!(
        failures(&invoke_json(&mut resize, &event).await),
        Vec::<String>::new()
    );
    let first: Vec<Vec<u8>> = read_renditions(&stage, "my photo+1").await;
    assert_eq!(
        failures(&invoke_json(&mut resize, &event).await),
        Vec::<String>::new()
    );
    // THEN the renditions exist, fit their long edge, are never upscaled, and are identical
    // after the redelivery
    let again = read_renditions(&stage, "my photo+1").await;
    assert_eq!(first, again, "a redelivery must write the same bytes");
    let sizes: Vec<(u32, u32)> = first
        .iter()
        .map(|b| {
            image::load_from_memory(b)
                .map(|i| (i.width(), i.height()))
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, vec![(1600, 1200), (1024, 768), (320, 240)]);
    // AND the image recorded its ImagePublished event once: the redelivery found it finished
    // (the relay puts the recorded bytes on the stream, whatever resize does again)
    let recorded = stage
        .recorded_event("my photo+1")
        .await
        .expect("an event is recorded");
    let events = [recorded];
    assert!(
        stage.stream_events().await.is_empty(),
        "resize never writes the stream itself"
    );
    let data = &events[0]["data"];
    assert_eq!(events[0]["type"], "ImagePublished");
    assert_eq!(events[0]["correlation_id"], "issue-my photo+1");
    assert_eq!(
        (
            data["owner_id"].as_str(),
            data["image_id"].as_str(),
            data["source_key"].as_str()
        ),
        (Some("béa"), Some("my photo+1"), Some(key))
    );
    // ... its renditions are stored under the version (the ETag) of the upload they were
    // made from
    let thumb_key = resize::resizer::rendition_key(
        "my photo+1",
        data["source_etag"].as_str().unwrap(),
        "thumb",
        "jpg",
    );
    assert!(
        thumb_key.starts_with("renditions/my photo+1/"),
        "{thumb_key}"
    );
    assert_eq!(
        data["renditions"][2],
        json!({ "name": "thumb", "key": thumb_key, "width": 320, "height": 240, "bytes": first[2].len(), "content_type": "image/jpeg" })
    );
}

#[tokio::test]
async fn an_upload_overwritten_before_resize_ran_is_published_from_its_newer_version_only() {
    // Prepare: an issued upload, put twice (a client retrying with another file) before resize
    // ran: both notifications wait on the queue (after S3's test event)
    let stage = TestStack::start().await;
    let key = stage
        .issue_and_upload("ann", "twice", sample_jpeg(800, 600))
        .await;
    stage.upload(&key, sample_jpeg(640, 480)).await;
    let newer_etag = stage
        .clients
        .s3
        .head_object()
        .bucket(stage.name("UploadsBucket"))
        .key(&key)
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let messages = stage.receive("ImageUploadsQueue", 3).await;
    let mut resize = stage.function("resize").await;

    // Act: resize gets the notifications, in whatever order SQS hands them out
    let event = sqs_event(stage.arn("ImageUploadsQueue"), &messages);
    let response = invoke_json(&mut resize, &event).await;

    // Assess: nothing redelivered; the event names the newer version and lists its pixels,
    // stored under that version only
    assert_eq!(failures(&response), Vec::<String>::new());
    let recorded = stage.recorded_event("twice").await.expect("an event");
    assert_eq!(recorded["type"], "ImagePublished");
    assert_eq!(recorded["data"]["source_etag"], newer_etag.as_str());
    assert_eq!(
        (
            recorded["data"]["width"].as_u64(),
            recorded["data"]["height"].as_u64()
        ),
        (Some(640), Some(480))
    );
    let stored = read_renditions(&stage, "twice").await;
    let large = image::load_from_memory(&stored[0]).unwrap();
    assert_eq!((large.width(), large.height()), (640, 480));
    assert_eq!(
        recorded["data"]["renditions"][0]["key"],
        resize::resizer::rendition_key("twice", &newer_etag, "large", "jpg").as_str()
    );
}

/// The renditions stored for an image (large, medium, thumb), whatever version they are of;
/// there must be exactly those three.
async fn read_renditions(stage: &TestStack, image_id: &str) -> Vec<Vec<u8>> {
    let listed = stage
        .clients
        .s3
        .list_objects_v2()
        .bucket(stage.name("RenditionsBucket"))
        .prefix(format!("renditions/{image_id}/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let mut all = Vec::new();
    for name in ["large", "medium", "thumb"] {
        let key = keys
            .iter()
            .find(|k| k.ends_with(&format!("/{name}.jpg")))
            .unwrap_or_else(|| panic!("no {name} rendition in {keys:?}"));
        let object = stage
            .clients
            .s3
            .get_object()
            .bucket(stage.name("RenditionsBucket"))
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(object.content_type(), Some("image/jpeg"));
        assert_eq!(
            object.cache_control(),
            Some("public, max-age=31536000, immutable")
        );
        all.push(object.body.collect().await.unwrap().into_bytes().to_vec());
    }
    all
}

#[tokio::test]
async fn likes_and_notifications_take_effect_once_however_often_a_batch_is_redelivered() {
    // GIVEN the stream holds a publication and likes (with a producer duplicate)
    let stage = TestStack::start().await;
    for sample in ["kinesis/image-published.json", "kinesis/image-liked.json"] {
        let event: Value = serde_json::from_slice(&fixture(sample)).unwrap();
        for record in event["Records"].as_array().unwrap() {
            use base64::Engine;
            let data = base64::engine::general_purpose::STANDARD
                .decode(record["kinesis"]["data"].as_str().unwrap())
                .unwrap();
            let key = record["kinesis"]["partitionKey"].as_str().unwrap();
            stage
                .clients
                .kinesis
                .put_record()
                .stream_name(stage.name("ImageSocialEvents"))
                .partition_key(key)
                .data(data.into())
                .send()
                .await
                .unwrap();
        }
    }
    let records = stage.stream_records().await;
    let shard = &records[0].0;
    assert!(
        records.iter().all(|(s, _)| s == shard),
        "one image, one shard"
    );
    let batch = kinesis_event(
        stage.arn("ImageSocialEvents"),
        shard,
        "arn:aws:iam::123456789012:role/test",
        &records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
    );
    let mut counter = stage.function("like-counter").await;
    let mut notifier = stage.function("notifier").await;
    // WHEN both consumers get the batch three times
    for _ in 0..3 {
        assert_eq!(
            failures(&invoke_json(&mut counter, &batch).await),
            Vec::<String>::new()
        );
        assert_eq!(
            failures(&invoke_json(&mut notifier, &batch).await),
            Vec::<String>::new()
        );
    }
    // THEN the image has two likes (bob twice is one like, carol once)
    let table = stage.like_counts();
    assert_eq!(table.count("sunset over the bay").await.unwrap(), 2);
    // AND alice's inbox has one "live" notification and one coalesced likes notification
    let inbox = stage.inbox_reader();
    let notifications = inbox.inbox("alice").await.unwrap();
    let summary: Vec<(String, Vec<String>, String)> = notifications
        .iter()
        .map(|n| {
            (
                serde_json::to_value(n.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                n.actors.clone(),
                n.text.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "likes".to_owned(),
                vec!["carol".to_owned(), "bob".to_owned()],
                "carol and bob liked your photo".to_owned()
            ),
            (
                "published".to_owned(),
                vec![],
                "Your photo is live".to_owned()
            ),
        ]
    );
    assert!(notifications.iter().all(|n| n.unread));
    // AND the processes started once each: a redelivery is not a cold start
    assert_eq!((counter.cold_starts, notifier.cold_starts), (1, 1));
}

#[tokio::test]
async fn every_function_binary_starts_under_the_runtime_api() {
    let stage = TestStack::start().await;
    for function in FUNCTIONS {
        let mut running = stage.function(function).await;
        if function == "api" {
            // An HTTP API request for an image that does not exist: a problem, not a crash.
            let request: Value = serde_json::from_slice(&fixture("http/get-image.json")).unwrap();
            let response = invoke_json(&mut running, &request).await;
            assert_eq!(response["statusCode"], 404, "{response}");
            assert_eq!(response["headers"]["x-correlation-id"], "web-7f3a");
            continue;
        }
        let response = invoke_json(&mut running, &json!({ "Records": [] })).await;
        assert_eq!(response, json!({ "batchItemFailures": [] }), "{function}");
    }
}

#[tokio::test]
async fn a_taken_port_is_refused_with_what_to_do() {
    // GIVEN a port some other program listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // WHEN the emulator is started on it
    let error = snapglow_local::stack::emulator::Emulator::start(
        &snapglow_local::stack::project::project_root(),
        port,
        false,
    )
    .err()
    .expect("the port is taken");
    // THEN the error names the port and the way out
    let message = error.to_string();
    assert!(
        message.contains(&port.to_string()) && message.contains("--port"),
        "{message}"
    );
}

/// A stack with a scratch folder and a function log written, as a test leaves them; the
/// folders and the emulator's log.
async fn stack_with_files() -> (TestStack, Vec<std::path::PathBuf>) {
    let stage = TestStack::start().await;
    let scratch = stage.state_dir("files-test");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("notifier.log"), "a log line\n").unwrap();
    let function_log = stage.function_log("notifier");
    std::fs::create_dir_all(function_log.parent().unwrap()).unwrap();
    std::fs::write(&function_log, "a log line\n").unwrap();
    let emulator_log = stage
        .root
        .join(".local")
        .join("logs")
        .join(format!("emulator-{}.log", stage.emulator.port));
    assert!(
        emulator_log.is_file(),
        "the emulator logs to {emulator_log:?}"
    );
    let functions = function_log.parent().unwrap().to_owned();
    (stage, vec![scratch, functions, emulator_log])
}

#[tokio::test]
async fn a_stack_takes_its_files_with_it_unless_its_test_failed() {
    // Prepare: one stack whose test ends well, one whose test panics, each with its files
    let (passed, passed_files) = stack_with_files().await;
    let failed_files = std::thread::spawn(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (stage, files) = runtime.block_on(stack_with_files());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _stage = stage;
            panic!("an assertion of the test failed");
        }));
        assert!(result.is_err());
        files
    })
    .join()
    .unwrap();

    // Act
    drop(passed);

    // Assess: nothing of the passed run is left under .local/; the failed run's logs stay
    for path in &passed_files {
        assert!(!path.exists(), "{path:?} is left behind");
    }
    for path in &failed_files {
        assert!(path.exists(), "{path:?} of the failed test is gone");
        let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
    }
}

#[test]
fn an_invalid_template_is_refused_with_what_is_wrong() {
    let error = Template::parse("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          X: !GetAtt Nowhere.Arn\n").unwrap_err();
    assert!(
        error.to_string().contains("Fn refers to Nowhere"),
        "{error}"
    );
    let error = Template::parse("Resources: [unclosed").unwrap_err();
    assert!(error.to_string().contains("not valid YAML"), "{error}");
}

#[tokio::test]
async fn the_liveness_check_costs_one_small_request_however_much_the_stack_holds() {
    // Prepare: a populated stack, 30,000 items in a table (moto's full-state dump of this
    // takes far longer than any liveness timeout)
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let stage = TestStack::start().await;
    let table = stage.name("LikesTable").to_owned();
    let mut writes = Vec::new();
    for chunk in 0..1200 {
        let requests: Vec<WriteRequest> = (0..25)
            .map(|i| {
                let item = [
                    ("pk", format!("image#{chunk}")),
                    ("sk", format!("user#{i:04}")),
                    ("padding", "x".repeat(200)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
                .collect();
                let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let dynamodb = stage.clients.dynamodb.clone();
        let table = table.clone();
        writes.push(async move {
            let output = dynamodb
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .expect("batch write");
            assert!(output.unprocessed_items().is_none_or(|u| u.is_empty()));
        });
    }
    use futures_util::StreamExt;
    futures_util::stream::iter(writes)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let scanned = stage
        .clients
        .dynamodb
        .scan()
        .table_name(&table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert!(
        scanned.count() >= 1000,
        "the table holds items: {}",
        scanned.count()
    );

    // Act
    let started = std::time::Instant::now();
    let up = snapglow_local::stack::emulator::is_up(stage.emulator.port);
    let took = started.elapsed();

    // Assess
    assert!(up, "the populated emulator answers as running");
    assert!(
        took < std::time::Duration::from_secs(1),
        "liveness took {took:?}"
    );
}

/// A stack without its IAM keys: every deploy issues new ones (the old ones stop working).
fn without_keys(mut stack: snapglow_local::stack::StackInfo) -> snapglow_local::stack::StackInfo {
    use snapglow_local::stack::iam::AccessKey;
    stack.admin = AccessKey::unchecked();
    use snapglow_local::stack::ResourceKind;
    for resource in stack.resources.values_mut() {
        match &mut resource.kind {
            ResourceKind::Role { access_key } => *access_key = AccessKey::unchecked(),
            ResourceKind::Function(function) => function.access_key = None,
            _ => {}
        }
    }
    stack
}

#[tokio::test]
async fn a_canceled_transaction_writes_nothing_and_leaves_no_stream_record() {
    // Prepare: the images table (its stream feeds the relay: a phantom change would be a
    // phantom event), and a transaction whose second write's condition fails
    let stage = TestStack::start().await;
    let table = stage.name("ImagesTable").to_owned();
    let put = |pk: &str, condition: Option<&str>| {
        let mut put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S("IMAGE".into()));
        if let Some(condition) = condition {
            put = put.condition_expression(condition);
        }
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put.build().unwrap())
            .build()
    };

    // Act: the canceled transaction, then one that commits
    let canceled = stage
        .clients
        .dynamodb
        .transact_write_items()
        .transact_items(put("IMAGE#canceled", None))
        .transact_items(put("IMAGE#missing", Some("attribute_exists(pk)")))
        .send()
        .await;
    stage
        .clients
        .dynamodb
        .transact_write_items()
        .transact_items(put("IMAGE#committed", None))
        .send()
        .await
        .unwrap();

    // Assess: canceled for the condition, as DynamoDB answers
    let error = canceled.expect_err("the condition fails");
    let reasons: Vec<Option<String>> = match error.as_service_error() {
        Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => {
            c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
        }
        other => panic!("expected a canceled transaction: {other:?}"),
    };
    assert_eq!(
        reasons,
        [
            Some("None".to_owned()),
            Some("ConditionalCheckFailed".to_owned())
        ]
    );
    // ... its first write is not in the table, and not on the table's stream either
    let get = |pk: &'static str| {
        let (client, table) = (stage.clients.dynamodb.clone(), table.clone());
        async move {
            client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk.into()))
                .key("sk", AttributeValue::S("IMAGE".into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
        }
    };
    assert_eq!(get("IMAGE#canceled").await, None);
    assert!(get("IMAGE#committed").await.is_some());
    let stream_arn = stage
        .clients
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .and_then(|t| t.latest_stream_arn)
        .unwrap();
    let changes = snapglow_local::triggers::dynamodb::fetch(
        &stage.clients,
        &stream_arn,
        &Default::default(),
        true,
        1000,
    )
    .await
    .unwrap();
    let keys: Vec<String> = changes
        .iter()
        .flat_map(|(_, batch)| batch)
        .map(|change| change.record["dynamodb"]["Keys"]["pk"]["S"].to_string())
        .collect();
    assert_eq!(keys, ["\"IMAGE#committed\""]);
}

#[tokio::test]
async fn the_emulator_refuses_what_dynamodb_refuses_and_moto_alone_lets_through() {
    // Prepare: the likes table (pk, sk)
    let stage = TestStack::start().await;
    let table = stage.name("LikesTable").to_owned();
    let db = &stage.clients.dynamodb;
    let key = |sk: String| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S("IMAGE#x".into())),
            ("sk".to_owned(), AttributeValue::S(sk)),
        ])
    };
    let code = |error: &dyn aws_sdk_dynamodb::error::ProvideErrorMetadata| {
        (
            error.code().unwrap_or_default().to_owned(),
            error.message().unwrap_or_default().to_owned(),
        )
    };

    // Act: four requests DynamoDB refuses
    let writes: Vec<aws_sdk_dynamodb::types::WriteRequest> = (0..26)
        .map(|i| {
            aws_sdk_dynamodb::types::WriteRequest::builder()
                .put_request(
                    aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(key(format!("LIKE#u{i}"))))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    let batch_write = db
        .batch_write_item()
        .request_items(&table, writes)
        .send()
        .await
        .expect_err("26 writes");
    let long_key = db
        .batch_get_item()
        .request_items(
            &table,
            aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .keys(key(format!("LIKE#{}", "x".repeat(2048))))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect_err("a sort key over 1024 bytes");
    let unused = db
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(
                    aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&table)
                        .set_item(Some(key("LIKE#u".into())))
                        .condition_expression("attribute_not_exists(pk)")
                        .expression_attribute_values(":unused", AttributeValue::N("1".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("a value no expression uses");
    let forged_start = db
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("IMAGE#x".into()))
        .exclusive_start_key("pk", AttributeValue::S("IMAGE#x".into()))
        .send()
        .await
        .expect_err("a start key without the sort key");

    // Assess: each is a ValidationException naming the limit, as DynamoDB answers
    for (error, says) in [
        (
            code(batch_write.as_service_error().unwrap()),
            "less than or equal to 25",
        ),
        (code(long_key.as_service_error().unwrap()), "1024 bytes"),
        (
            code(unused.as_service_error().unwrap()),
            "unused in expressions",
        ),
        (
            code(forged_start.as_service_error().unwrap()),
            "starting key is invalid",
        ),
    ] {
        assert_eq!(error.0, "ValidationException", "{error:?}");
        assert!(error.1.contains(says), "{error:?}");
    }
}

#[tokio::test]
async fn a_sign_up_is_confirmed_only_by_the_newest_code_the_mailbox_received() {
    // Prepare: dana signs up through the pool's web client, then asks for a new code
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    let stage = TestStack::start().await;
    let (_, client_id) = snapglow_local::stack::users::pool_and_client(&stage.stack).unwrap();
    let cognito = &stage.clients.cognito;
    let attribute = |name: &str, value: &str| {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .unwrap()
    };
    cognito
        .sign_up()
        .client_id(&client_id)
        .username("dana")
        .password("Dana-photos-2026")
        .user_attributes(attribute("email", "dana@example.com"))
        .user_attributes(attribute("name", "Dana Reyes"))
        .send()
        .await
        .expect("the sign-up is accepted");
    cognito
        .resend_confirmation_code()
        .client_id(&client_id)
        .username("dana")
        .send()
        .await
        .expect("a new code is sent");
    let port = snapglow_local::stack::port_of(&stage.stack.endpoint_url).unwrap();
    let mailbox = snapglow_local::stack::emulator::mailbox(&stage.root, port);
    let mail: Vec<Value> = std::fs::read_to_string(&mailbox)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|m: &Value| m["username"] == "dana")
        .collect();
    let codes: Vec<&str> = mail.iter().filter_map(|m| m["code"].as_str()).collect();
    let confirm = |code: &str| {
        cognito
            .confirm_sign_up()
            .client_id(&client_id)
            .username("dana")
            .confirmation_code(code)
            .send()
    };

    // Act
    let wrong = if codes[1] == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mismatch = confirm(wrong).await.unwrap_err();
    // The superseded code (unless both draws were equal, one time in a million)
    let superseded = match codes[0] != codes[1] {
        true => Some(confirm(codes[0]).await.unwrap_err()),
        false => None,
    };
    let newest = confirm(codes[1]).await;

    // Assess: two messages to her email; a wrong code and the superseded one refused as
    // Cognito refuses them; the newest confirms
    assert_eq!(mail.len(), 2);
    assert!(mail.iter().all(|m| m["to"] == "dana@example.com"));
    for refused in std::iter::once(&mismatch).chain(superseded.as_ref()) {
        assert!(
            (refused.as_service_error()).is_some_and(|e| e.is_code_mismatch_exception()),
            "{refused:?}"
        );
    }
    newest.expect("the newest code confirms the sign-up");
}
