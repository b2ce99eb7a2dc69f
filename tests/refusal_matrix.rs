//! docs/FAILURES.md's refusal rows at the wire, call by call: each call of the API's store and
//! of the notifier's table meets, once, each refusal DynamoDB documents for it (a missing
//! table, a refused grant, an invalid request), answered by the fault proxy in DynamoDB's own
//! JSON, and sorts it as its row says: a missing table is transient (the work comes back), a
//! refused grant is denied (the invocation fails, or the API answers 500), an invalid request is
//! rejected (the record is quarantined, or the API answers 500). A call is made directly, so
//! that its fault reaches it and no other.

use snapglow::batch::Deadline;
use snapglow::dedup::EventVersion;
use snapglow::table::TableError;
use snapglow_local::faults::{Fault, FaultProxy, Service, Shape};
use snapglow_tests::TestStack;
use std::time::Duration;

const T0: i64 = 1_795_000_000_000;

/// DynamoDB's three refusals a call cannot retry, and how each must be sorted.
const REFUSALS: [(&str, Sort); 3] = [
    ("ResourceNotFoundException", Sort::Transient),
    ("AccessDeniedException", Sort::Denied),
    ("ValidationException", Sort::Rejected),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Transient,
    Denied,
    Rejected,
}

fn sort(error: &TableError) -> Option<Sort> {
    match error {
        TableError::Transient { .. } => Some(Sort::Transient),
        TableError::Denied { .. } => Some(Sort::Denied),
        TableError::Rejected { .. } => Some(Sort::Rejected),
        _ => None,
    }
}

fn refusal(code: &'static str) -> Shape {
    Shape::Error {
        status: 400,
        code,
        message: "refused by the fault layer",
    }
}

/// Each API store call, by the DynamoDB operation it sends.
const API_CALLS: [(&str, &str); 22] = [
    ("create_pending", "PutItem"),
    ("take_upload_quota", "TransactWriteItems"),
    ("take_request", "UpdateItem"),
    ("image", "GetItem"),
    ("like_state", "GetItem"),
    ("write_like", "UpdateItem"),
    ("count", "GetItem"),
    ("newest_first", "Query"),
    ("inbox_page", "Query"),
    ("mark_read", "UpdateItem"),
    ("delete_image", "UpdateItem"),
    ("likes_given", "Query"),
    ("retire_like", "UpdateItem"),
    ("erased", "GetItem"),
    ("mark_erased", "UpdateItem"),
    ("settle_mark", "UpdateItem"),
    ("profile", "GetItem"),
    ("put_profile", "PutItem"),
    ("erase_profile", "UpdateItem"),
    ("display_names", "BatchGetItem"),
    ("likers", "Query"),
    ("issue_ticket", "PutItem"),
];

/// Makes the API store call `call` once; its error, if it failed.
async fn api_call(store: &api::store::AwsStore, call: &str, n: usize) -> Option<TableError> {
    use api::store::{Images, Inbox, Likes, Profiles};
    let table_error = |e: api::store::StoreError| match e {
        api::store::StoreError::Table(error) => error,
        other => panic!("{call}: not a table error: {other:?}"),
    };
    let id = format!("img-{n}");
    let deadline = Deadline::after(Duration::from_secs(5));
    let result = match call {
        "create_pending" => (store.create_image(&api::store::NewImage {
            image_id: id.clone(),
            owner_id: "alice".into(),
            content_type: "image/jpeg".into(),
            content_length: 1,
            upload_key: format!("uploads/alice/{id}"),
            correlation_id: "refusals".into(),
            created_at_ms: T0,
            expires_at_s: 0,
        }))
        .await
        .map(drop),
        "take_upload_quota" => {
            let quota = api::store::UploadQuota {
                hour_start_ms: 0,
                uploads_per_hour: 100,
                day_start_ms: 0,
                bytes_per_day: 1000,
            };
            (store
                .take_upload_quota("alice", &quota, &id, 10, &deadline)
                .await)
                .map(drop)
        }
        "take_request" => store.requests.take("alice", 0, 100).await.map(drop),
        "image" => store.image(&id).await.map(drop),
        "like_state" => store.like_state(&id, "bob").await.map(drop),
        "write_like" => (store.write_like(&api::store::LikeChange {
            image_id: id.clone(),
            user_id: "bob".into(),
            previous: None,
            next: api::store::LikeState {
                liked: true,
                revision: 1,
                occurred_at_ms: T0,
            },
            event_id: "e".into(),
            event_json: "{}".into(),
        }))
        .await
        .map(drop),
        "count" => return store.likes.count(&id).await.err(),
        "likes_given" => store.likes_given("alice", 10).await.map(drop),
        "retire_like" => (store.retire_like(&id, "bob", 1, None, T0 / 1000))
            .await
            .map(drop),
        "erased" => {
            use api::store::Accounts;
            store.erased("alice").await.map(drop)
        }
        "mark_erased" => {
            use api::store::Accounts;
            store.mark_erased("alice", T0).await.map(drop)
        }
        "settle_mark" => {
            use api::store::Accounts;
            store.settle_mark("alice", T0 / 1000).await
        }
        "delete_image" => (store.delete_image(&api::store::ImageDeletion {
            image_id: id.clone(),
            was: api::store::Status::Published,
            deleted_at_ms: T0,
            expires_at_s: T0 / 1000,
            event_id: "e".into(),
            event_json: "{}".into(),
        }))
        .await
        .map(drop),
        "newest_first" => store.feed(10, None).await.map(drop),
        "profile" => store.profile("alice").await.map(drop),
        "put_profile" => {
            let profile = api::store::Profile {
                display_name: "Alice".into(),
                updated_at_ms: T0,
            };
            store.put_profile("alice", &profile, false).await.map(drop)
        }
        "erase_profile" => store.erase_profile("alice", T0 / 1000).await,
        "display_names" => store.display_names(&["alice".into()]).await.map(drop),
        "likers" => store.likers(&id, 10, None).await.map(drop),
        "issue_ticket" => {
            use api::store::Tickets;
            store
                .issue_ticket(&format!("TICKET#{n}"), "alice", T0 / 1000)
                .await
        }
        "inbox_page" => store.inbox("alice", 10, None).await.map(drop),
        "mark_read" => {
            // an unread notification, so that the batch read finds it and the write is sent
            let table = store.notifications.table_name();
            (store.dynamodb.put_item().table_name(table))
                .item(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("USER#alice".into()),
                )
                .item("sk", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
                .item(
                    "unread",
                    aws_sdk_dynamodb::types::AttributeValue::Bool(true),
                )
                .send()
                .await
                .unwrap();
            (store.mark_read("alice", &[id], &deadline).await).map(drop)
        }
        other => unreachable!("{other}"),
    };
    result.err().map(table_error)
}

#[tokio::test]
async fn each_api_call_sorts_each_refusal_as_its_row_says() {
    // Prepare: the API's store, every DynamoDB call through the proxy
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let store = stage.api_store(stage.dynamodb_at(&proxy.url()));
    let mut n = 0;
    for (call, operation) in API_CALLS {
        for (code, expected) in REFUSALS {
            n += 1;
            proxy.inject(Fault::new(Service::DynamoDb, operation, 1, refusal(code)));

            // Act
            let error = api_call(&store, call, n).await;

            // Assess
            let sorted = error.as_ref().and_then(sort);
            assert_eq!(sorted, Some(expected), "{call} ← {code}: {error:?}");
        }
    }
    assert_eq!(proxy.injected().values().sum::<u64>(), 66);
}

/// Each live push connections call, by the DynamoDB operation it sends (`close` and `forget`
/// end with `delete_user_item`, called here on its own).
const LIVE_CALLS: [(&str, &str); 6] = [
    ("take_ticket", "DeleteItem"),
    ("open", "TransactWriteItems"),
    ("close", "DeleteItem"),
    ("of_user", "Query"),
    ("forget", "DeleteItem"),
    ("delete_user_item", "DeleteItem"),
];

#[tokio::test]
async fn each_live_call_sorts_each_refusal_as_its_row_says() {
    // Prepare: the connections table, every call through the proxy
    use live::connections::{AwsConnections, Connections};
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let connections = AwsConnections {
        dynamodb: stage.dynamodb_at(&proxy.url()),
        table: stage.name("ConnectionsTable").to_owned(),
    };
    let mut n = 0;
    for (call, operation) in LIVE_CALLS {
        for (code, expected) in REFUSALS {
            n += 1;
            let id = format!("c{n}=");
            proxy.inject(Fault::new(Service::DynamoDb, operation, 1, refusal(code)));

            // Act
            let error = match call {
                "take_ticket" => connections
                    .take_ticket(&"a".repeat(64), T0 / 1000)
                    .await
                    .err(),
                "open" => connections.open("alice", &id, T0, T0 / 1000).await.err(),
                "close" => connections.close(&id).await.err(),
                "of_user" => connections.of_user("alice", T0 / 1000).await.err(),
                "forget" => connections.forget("alice", &id).await.err(),
                "delete_user_item" => connections.delete_user_item("alice", &id).await.err(),
                other => unreachable!("{other}"),
            };

            // Assess
            let sorted = error.as_ref().and_then(sort);
            assert_eq!(sorted, Some(expected), "{call} ← {code}: {error:?}");
        }
    }
    assert_eq!(proxy.injected().values().sum::<u64>(), 18);
}

/// Each notifier table call, by the DynamoDB operation it sends.
const NOTIFIER_CALLS: [(&str, &str); 7] = [
    ("owner_of", "GetItem"),
    ("kept_likes", "Query"),
    ("release_early", "DeleteItem"),
    ("release_held", "UpdateItem"),
    ("hold_early", "TransactWriteItems"),
    ("notify_image", "TransactWriteItems"),
    ("erase_image", "UpdateItem"),
];

/// The notifier's table of the stack, every call through `proxy`.
fn notifications_through(
    stage: &TestStack,
    proxy: &FaultProxy,
) -> notifier::table::NotificationsTable {
    notifier::table::NotificationsTable::new(
        stage.dynamodb_at(&proxy.url()),
        stage.name("NotificationsTable"),
        Duration::from_secs(86_400),
        Duration::from_secs(3600),
    )
}

/// Makes the notifier table call `call` once; its error, if it failed.
async fn notifier_call(
    table: &notifier::table::NotificationsTable,
    call: &str,
    n: usize,
) -> Option<TableError> {
    use notifier::inbox::{Kind, LikeWindow, Liker};
    use notifier::table::{EarlyLike, ImageNotice, NotificationStore};
    let image = format!("img-{n}");
    let deadline = Deadline::after(Duration::from_secs(5));
    let liker = Liker {
        user_id: "bob".into(),
        liked: true,
        version: EventVersion::at(T0, uuid::Uuid::from_u128(n as u128)),
    };
    match call {
        "owner_of" => table.owner_of(&image).await.err(),
        "kept_likes" => table.early_likes(&image).await.err(),
        "release_early" => table.release_early(&image, &liker, &deadline).await.err(),
        "release_held" => table.release_held(&image, &deadline).await.err(),
        "erase_image" => table.erase_image(&image, "alice", &deadline).await.err(),
        "hold_early" => {
            let early = EarlyLike {
                window: LikeWindow { start_ms: T0 },
                liker,
            };
            table.hold_early(&image, &early, &deadline).await.err()
        }
        "notify_image" => {
            let notice = ImageNotice {
                event_id: uuid::Uuid::from_u128(n as u128),
                kind: Kind::Published,
                owner_id: "alice",
                image_id: &image,
                created_ms: T0,
                reason: None,
            };
            table.notify_image(&notice, &deadline).await.err()
        }
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn each_notifier_call_sorts_each_refusal_as_its_row_says() {
    // Prepare: the notifier's table, every DynamoDB call through the proxy
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let table = notifications_through(&stage, &proxy);
    let mut n = 0;
    for (call, operation) in NOTIFIER_CALLS {
        for (code, expected) in REFUSALS {
            n += 1;
            proxy.inject(Fault::new(Service::DynamoDb, operation, 1, refusal(code)));

            // Act
            let error = notifier_call(&table, call, n).await;

            // Assess
            let sorted = error.as_ref().and_then(sort);
            assert_eq!(sorted, Some(expected), "{call} ← {code}: {error:?}");
        }
    }
    assert_eq!(proxy.injected().values().sum::<u64>(), 21);
}

#[tokio::test]
async fn each_notifier_call_rides_out_throttling_and_a_server_error() {
    // Prepare: the notifier's table through the proxy, every table state empty (so each call
    // succeeds once DynamoDB answers)
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let table = notifications_through(&stage, &proxy);
    let busy = [
        Shape::Error {
            status: 400,
            code: "ThrottlingException",
            message: "Throughput exceeds the current capacity of your table or index.",
        },
        Shape::Error {
            status: 500,
            code: "InternalServerError",
            message: "Internal server error",
        },
    ];
    let mut n = 100;
    for (call, operation) in NOTIFIER_CALLS {
        for shape in busy.clone() {
            n += 1;
            proxy.inject(Fault::new(Service::DynamoDb, operation, 1, shape.clone()));

            // Act
            let error = notifier_call(&table, call, n).await;

            // Assess: the SDK's retry (or the call's own) absorbed it
            assert!(error.is_none(), "{call} ← {shape:?}: {error:?}");
        }
    }
    // ... and clearing a mark whose owner item lacks its owner (it cannot: the mark lives on an
    // owner item a notice wrote) finds nothing to clear
    proxy.inject(Fault::new(
        Service::DynamoDb,
        "UpdateItem",
        1,
        refusal("ConditionalCheckFailedException"),
    ));
    assert!(notifier_call(&table, "release_held", 200).await.is_none());
    assert_eq!(proxy.injected().values().sum::<u64>(), 15);
}

/// Each call of an erasure (like-counter's and the eraser's), by the operation it sends first;
/// the calls after it are reached by letting the ones before succeed.
const ERASURE_CALLS: [(&str, &str); 6] = [
    ("erase_image", "PutItem"),
    ("delete_all", "Query"),
    ("delete_batch", "BatchWriteItem"),
    ("recorded", "GetItem"),
    ("delete_like_items", "Query"),
    ("delete_each", "DeleteItem"),
];

/// Makes the erasure call `call` once, on an image with one like state to delete; its error.
async fn erasure_call(
    stage: &TestStack,
    proxy: &FaultProxy,
    call: &str,
    n: usize,
) -> Option<TableError> {
    use eraser::store::Erasure;
    use like_counter::table::LikeStore;
    let image = format!("img-{n}");
    let deadline = Deadline::after(Duration::from_secs(5));
    let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    for table in ["LikesTable", "ImagesTable"] {
        (stage
            .clients
            .dynamodb
            .put_item()
            .table_name(stage.name(table)))
        .item("pk", s(format!("IMAGE#{image}")))
        .item("sk", s("LIKE#bob".into()))
        .send()
        .await
        .unwrap();
    }
    let counter = like_counter::table::LikesTable::new(
        stage.dynamodb_at(&proxy.url()),
        stage.name("LikesTable"),
        Duration::from_secs(3600),
    );
    let erasure = eraser::store::AwsErasure {
        dynamodb: stage.dynamodb_at(&proxy.url()),
        s3: stage.clients.s3.clone(),
        images_table: stage.name("ImagesTable").to_owned(),
        uploads_bucket: stage.name("UploadsBucket").to_owned(),
        renditions_bucket: stage.name("RenditionsBucket").to_owned(),
    };
    match call {
        "erase_image" | "delete_all" | "delete_batch" => {
            counter.erase_image(&image, &deadline).await.err()
        }
        "recorded" => erasure.recorded(&image).await.err(),
        "delete_like_items" | "delete_each" => {
            erasure.delete_like_items(&image, &deadline).await.err()
        }
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn each_erasure_call_sorts_each_refusal_as_its_row_says() {
    // Prepare: like-counter's table and the eraser's images table, every call through the proxy
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let mut n = 0;
    for (call, operation) in ERASURE_CALLS {
        for (code, expected) in REFUSALS {
            n += 1;
            proxy.inject(Fault::new(Service::DynamoDb, operation, 1, refusal(code)));

            // Act
            let error = erasure_call(&stage, &proxy, call, n).await;

            // Assess
            let sorted = error.as_ref().and_then(sort);
            assert_eq!(sorted, Some(expected), "{call} ← {code}: {error:?}");
        }
    }
    assert_eq!(proxy.injected().values().sum::<u64>(), 18);
}

#[tokio::test]
async fn the_erasers_deletes_sort_each_refusal_s3_documents() {
    // Prepare: the eraser's storage, S3 through the proxy
    use eraser::store::{Bucket, Erasure, FilesError};
    let stage = TestStack::start().await;
    let proxy = FaultProxy::start(&stage.stack.endpoint_url).await.unwrap();
    let s3 = (stage.clients.s3.config().to_builder())
        .endpoint_url(proxy.url())
        .build();
    let erasure = eraser::store::AwsErasure {
        dynamodb: stage.clients.dynamodb.clone(),
        s3: aws_sdk_s3::Client::from_conf(s3),
        images_table: stage.name("ImagesTable").to_owned(),
        uploads_bucket: stage.name("UploadsBucket").to_owned(),
        renditions_bucket: stage.name("RenditionsBucket").to_owned(),
    };
    let keys = ["uploads/alice/gone".to_owned()];
    let cases = [
        (
            Shape::Error {
                status: 403,
                code: "AccessDenied",
                message: "Access Denied",
            },
            "refused",
        ),
        (
            Shape::Error {
                status: 404,
                code: "NoSuchBucket",
                message: "The specified bucket does not exist",
            },
            "refused",
        ),
        (Shape::DeleteErrors("AccessDenied"), "refused"),
        (Shape::DeleteErrors("SlowDown"), "unavailable"),
        (
            Shape::Error {
                status: 503,
                code: "SlowDown",
                message: "Please reduce your request rate.",
            },
            "done",
        ),
    ];

    // Act
    let mut sorted = Vec::new();
    for (shape, _) in cases.clone() {
        proxy.inject(Fault::new(Service::S3, "DeleteObjects", 1, shape));
        sorted.push(match erasure.delete_objects(Bucket::Uploads, &keys).await {
            Ok(()) => "done",
            Err(FilesError::Refused { .. }) => "refused",
            Err(FilesError::Unavailable { .. }) => "unavailable",
        });
    }

    // ... and the listing of an image's renditions meets the same refusals
    let mut listed = Vec::new();
    for shape in [
        Shape::Error {
            status: 403,
            code: "AccessDenied",
            message: "Access Denied",
        },
        Shape::Error {
            status: 503,
            code: "SlowDown",
            message: "Please reduce your request rate.",
        },
    ] {
        proxy.inject(Fault::new(Service::S3, "ListObjectsV2", 1, shape));
        listed.push(match erasure.renditions_of("gone").await {
            Ok(keys) if keys.is_empty() => "done",
            Ok(_) => "listed",
            Err(FilesError::Refused { .. }) => "refused",
            Err(FilesError::Unavailable { .. }) => "unavailable",
        });
    }

    // Assess: a refused grant or a missing bucket (whole or per key) fails the invocation, a
    // per-key failure comes back, a whole-request slow-down is the SDK's to retry; a key that
    // does not exist is no error
    let expected: Vec<&str> = cases.iter().map(|(_, sort)| *sort).collect();
    assert_eq!(sorted, expected);
    assert_eq!(listed, ["refused", "done"]);
    assert_eq!(proxy.injected().values().sum::<u64>(), 7);
}
