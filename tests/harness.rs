//! The integration tests' stage: a fresh emulator per test (its own process on a free loopback
//! port, stopped when the test ends, so tests share no state), the stack created from
//! template.yaml, and the real function binaries under the local Runtime API.

use serde_json::Value;
use snapglow_local::lambda::{FunctionSpec, LocalFunction, LogSink, spec_for};
use snapglow_local::stack::fresh::FreshStack;
use snapglow_local::stack::project::{binary_dir, build_binaries, project_root};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FUNCTIONS: [&str; 6] = [
    "resize",
    "like-counter",
    "notifier",
    "relay",
    "eraser",
    "api",
];

/// A [`FreshStack`] (the library's one fixture for a fresh local stack: emulator, clients,
/// stack) with what the tests do to it.
pub struct TestStack {
    fresh: FreshStack,
}

impl std::ops::Deref for TestStack {
    type Target = FreshStack;
    fn deref(&self) -> &FreshStack {
        &self.fresh
    }
}

/// Builds the function binaries once per test process (cargo's lock serializes processes).
fn ensure_binaries(root: &std::path::Path) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        build_binaries(root, &FUNCTIONS, false).expect("the function binaries build");
        *built = true;
    }
    binary_dir(root, false)
}

impl TestStack {
    /// A new emulator with every resource of template.yaml, stack name `snapglow` (the names
    /// the sample events in events/ use).
    pub async fn start() -> TestStack {
        let fresh = FreshStack::start().await.unwrap_or_else(|e| {
            panic!(
                "a fresh local stack starts: {}",
                snapglow_local::logging::chain(&e)
            )
        });
        TestStack { fresh }
    }

    /// The same, from a variant of template.yaml (a mutation a test must catch).
    pub async fn start_from(template: &snapglow_local::template::Template) -> TestStack {
        let fresh = FreshStack::start_from(template).await.unwrap_or_else(|e| {
            panic!(
                "a fresh local stack starts: {}",
                snapglow_local::logging::chain(&e)
            )
        });
        TestStack { fresh }
    }

    /// Where the debug function binaries are (built on first use).
    pub fn binaries(&self) -> PathBuf {
        ensure_binaries(&self.root)
    }

    /// Where a function started by [`Self::function`] logs (kept only if the test fails).
    pub fn function_log(&self, binary: &str) -> PathBuf {
        self.state_dir("functions").join(format!("{binary}.log"))
    }

    /// How the function would run; change it (environment, timeout) before [`Self::run`].
    pub fn spec(&self, binary: &str) -> FunctionSpec {
        let dir = ensure_binaries(&self.root);
        spec_for(
            &self.stack,
            binary,
            &dir,
            LogSink::File(self.function_log(binary)),
        )
        .expect("the function is in the template")
    }

    pub async fn run(&self, spec: FunctionSpec) -> LocalFunction {
        LocalFunction::start(spec)
            .await
            .expect("the runtime API starts")
    }

    pub async fn function(&self, binary: &str) -> LocalFunction {
        self.run(self.spec(binary)).await
    }

    /// Issues an upload as `POST /uploads` does (a pending image of `owner`); returns its key.
    pub async fn issue(&self, owner: &str, image_id: &str) -> String {
        let key = format!("uploads/{owner}/{image_id}");
        let image = api::store::NewImage {
            image_id: image_id.to_owned(),
            owner_id: owner.to_owned(),
            content_type: "image/jpeg".into(),
            content_length: 1,
            upload_key: key.clone(),
            correlation_id: format!("issue-{image_id}"),
            created_at_ms: snapglow::contracts::Timestamp::now().millis(),
            expires_at_s: 0,
        };
        api::store::create_pending(&self.clients.dynamodb, self.name("ImagesTable"), &image)
            .await
            .unwrap_or_else(|e| panic!("issuing {key}: {e:?}"));
        key
    }

    /// Issues an upload of `owner` and puts `bytes` at its key, as the client then does.
    pub async fn issue_and_upload(&self, owner: &str, image_id: &str, bytes: Vec<u8>) -> String {
        let key = self.issue(owner, image_id).await;
        self.upload(&key, bytes).await;
        key
    }

    /// The event an image's latest change recorded (what the relay puts on the stream).
    pub async fn recorded_event(&self, image_id: &str) -> Option<Value> {
        let item = (self.clients.image_item(self.name("ImagesTable"), image_id))
            .await
            .expect("the images table answers");
        let text = item.get("event")?.as_s().ok()?;
        Some(serde_json::from_str(text).expect("a recorded event is JSON"))
    }

    /// Puts an object in the uploads bucket, as a client would.
    pub async fn upload(&self, key: &str, bytes: Vec<u8>) {
        self.clients
            .s3
            .put_object()
            .bucket(self.name("UploadsBucket"))
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {key}: {e:?}"));
    }

    pub fn name(&self, logical_id: &str) -> &str {
        self.stack.name_of(logical_id)
    }

    pub fn url(&self, logical_id: &str) -> &str {
        self.stack.url_of(logical_id)
    }

    pub fn arn(&self, logical_id: &str) -> &str {
        self.stack.arn_of(logical_id)
    }

    /// Waits until at least `count` messages are on a queue (visible or in flight).
    pub async fn wait_for_messages(&self, logical_id: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let held = snapglow_local::stack::queues::held(&self.clients, self.url(logical_id))
                .await
                .expect("queue attributes");
            if held >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {held} of {count} messages reached {logical_id} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for and receives (hiding them for 60 s) at least `count` messages from a queue.
    pub async fn receive(
        &self,
        logical_id: &str,
        count: usize,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while messages.len() < count {
            assert!(
                Instant::now() < deadline,
                "only {} of {count} messages arrived on {logical_id} within 20 s",
                messages.len()
            );
            let output = self
                .clients
                .sqs
                .receive_message()
                .queue_url(self.url(logical_id))
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive works");
            messages.extend(output.messages.unwrap_or_default());
        }
        messages
    }

    /// Every record on the stream so far, each with its shard id, in shard order.
    pub async fn stream_records(&self) -> Vec<(String, aws_sdk_kinesis::types::Record)> {
        let stream = self.name("ImageSocialEvents");
        let shards = self
            .clients
            .kinesis
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .expect("list shards")
            .shards
            .unwrap_or_default();
        let mut all = Vec::new();
        for shard in shards {
            let iterator = self
                .clients
                .kinesis
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("iterator")
                .shard_iterator;
            // GetRecords answers at most 10,000 records: page until a page comes back empty.
            let mut iterator = iterator;
            while let Some(current) = iterator.take() {
                let page = self
                    .clients
                    .kinesis
                    .get_records()
                    .shard_iterator(current)
                    .limit(10_000)
                    .send()
                    .await
                    .expect("records");
                if page.records.is_empty() {
                    break;
                }
                iterator = page.next_shard_iterator;
                all.extend(
                    page.records
                        .into_iter()
                        .map(|r| (shard.shard_id().to_owned(), r)),
                );
            }
        }
        all
    }

    /// The decoded JSON of every stream record.
    pub async fn stream_events(&self) -> Vec<Value> {
        self.stream_records()
            .await
            .iter()
            .map(|(_, r)| {
                serde_json::from_slice(r.data().as_ref()).expect("stream records are JSON")
            })
            .collect()
    }

    /// The quarantine's entries, without consuming them.
    pub async fn quarantined(&self) -> Vec<Value> {
        snapglow_local::stack::queues::peek(&self.clients, self.url("QuarantineQueue"))
            .await
            .expect("quarantine lists")
            .iter()
            .map(|b| serde_json::from_str(b).expect("entries are JSON"))
            .collect()
    }
}

/// A sample event from events/, as bytes.
pub fn fixture(relative: &str) -> Vec<u8> {
    std::fs::read(project_root().join("events").join(relative))
        .unwrap_or_else(|e| panic!("events/{relative}: {e}"))
}

/// Invokes and parses the JSON response, failing the test on a function error.
pub async fn invoke_json(function: &mut LocalFunction, payload: &impl serde::Serialize) -> Value {
    let response = function
        .invoke(serde_json::to_vec(payload).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{} failed: {e}", function.name()));
    serde_json::from_slice(&response).expect("the response is JSON")
}

/// Asserts that each partial batch response names nothing to redeliver.
pub fn assert_finished(responses: &[Value]) {
    for response in responses {
        assert_eq!(batch_failures(response), Vec::<String>::new(), "{response}");
    }
}

/// The itemIdentifiers of a partial batch response.
pub fn batch_failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures is a list")
        .iter()
        .map(|f| {
            f["itemIdentifier"]
                .as_str()
                .expect("identifier is a string")
                .to_owned()
        })
        .collect()
}

/// A photo-like JPEG, `width` x `height` (the demo's generator).
pub fn sample_jpeg(width: u32, height: u32) -> Vec<u8> {
    snapglow_local::scenarios::photos::generated_jpeg(width, height, 0)
}

impl TestStack {
    /// A fault proxy in front of this stack's emulator, and `binary` pointed at it for each
    /// service named by its endpoint `variables` (`AWS_ENDPOINT_URL_DYNAMODB`, `_S3`, …).
    pub async fn through_proxy(
        &self,
        binary: &str,
        variables: &[&str],
    ) -> (snapglow_local::faults::FaultProxy, LocalFunction) {
        let proxy = snapglow_local::faults::FaultProxy::start(&self.stack.endpoint_url)
            .await
            .expect("the fault proxy starts");
        let mut spec = self.spec(binary);
        for variable in variables {
            spec.environment.push(((*variable).into(), proxy.url()));
        }
        let function = self.run(spec).await;
        (proxy, function)
    }

    /// This stack's DynamoDB client pointed at `endpoint` (a fault proxy in front of it).
    pub fn dynamodb_at(&self, endpoint: &str) -> aws_sdk_dynamodb::Client {
        let config = (self.clients.dynamodb.config().to_builder())
            .endpoint_url(endpoint)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// The keys under `prefix` in a bucket (by logical id).
    pub async fn keys_under(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listed = (self.clients.s3.list_objects_v2())
            .bucket(self.name(bucket))
            .prefix(prefix)
            .send()
            .await
            .expect("the bucket lists");
        (listed.contents().iter())
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// The sort keys of one partition of a table (by logical id), read strongly consistent.
    pub async fn sort_keys(&self, table: &str, pk: &str) -> Vec<String> {
        let items = (self.clients.dynamodb.query())
            .table_name(self.name(table))
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("the table answers");
        (items.items().iter())
            .filter_map(|item| item.get("sk")?.as_s().ok().cloned())
            .collect()
    }

    /// The inbox side of the notifications table, as the API reads it.
    pub fn inbox_reader(&self) -> notifier::table::InboxReader {
        let dynamodb = self.clients.dynamodb.clone();
        notifier::table::InboxReader::new(dynamodb, self.name("NotificationsTable"))
    }

    /// The like counts, as readers see them.
    pub fn like_counts(&self) -> like_counter::table::LikeCounts {
        let dynamodb = self.clients.dynamodb.clone();
        like_counter::table::LikeCounts::new(dynamodb, self.name("LikesTable"))
    }

    /// The API's store over this stack's tables through `dynamodb` (S3 direct).
    pub fn api_store(&self, dynamodb: aws_sdk_dynamodb::Client) -> api::store::AwsStore {
        api::store::AwsStore {
            images_table: self.name("ImagesTable").to_owned(),
            requests: api::store::RequestCounter::new(dynamodb.clone(), self.name("ImagesTable")),
            likes: like_counter::table::LikeCounts::new(dynamodb.clone(), self.name("LikesTable")),
            notifications: notifier::table::InboxReader::new(
                dynamodb.clone(),
                self.name("NotificationsTable"),
            ),
            dynamodb,
            s3: self.clients.s3.clone(),
            connections_table: self
                .stack
                .resources
                .get("ConnectionsTable")
                .map(|t| t.name.clone()),
            pool: (self.stack.resources.get("UserPool")).map(|pool| api::store::UserPool {
                client: self.clients.cognito.clone(),
                id: pool.name.clone(),
            }),
            uploads_bucket: self.name("UploadsBucket").to_owned(),
            renditions_bucket: self.name("RenditionsBucket").to_owned(),
            upload_url_ttl: Duration::from_secs(300),
            rendition_url_ttl: Duration::from_secs(300),
        }
    }

    /// The SQS event resize's mapping would deliver for the next `count` messages of the uploads
    /// queue (the bucket's s3:TestEvent comes first after a fresh stack).
    pub async fn uploads_event(&self, count: usize) -> aws_lambda_events::event::sqs::SqsEvent {
        let messages = self.receive("ImageUploadsQueue", count).await;
        snapglow_local::triggers::sqs::sqs_event(self.arn("ImageUploadsQueue"), &messages)
    }

    /// Delivers every shard of the event stream to `function` once; returns the responses.
    pub async fn deliver(&self, function: &mut LocalFunction) -> Vec<Value> {
        let mut responses = Vec::new();
        for (shard, records) in self.shards().await {
            responses.push(invoke_json(function, &self.kinesis_batch(&shard, &records)).await);
        }
        responses
    }

    /// Puts events on the stream one by one, in order, as the relay puts them: the envelope's
    /// JSON under its image id (the consumers' tests need no outbox in front).
    pub async fn publish(&self, envelopes: &[snapglow::contracts::Envelope]) {
        for envelope in envelopes {
            self.put_raw(envelope.partition_key(), &envelope.to_json())
                .await;
        }
    }

    /// Puts `data` on the event stream as it is: a foreign producer's bug (poison).
    pub async fn put_raw(&self, partition_key: &str, data: &[u8]) {
        self.clients
            .kinesis
            .put_record()
            .stream_name(self.name("ImageSocialEvents"))
            .partition_key(partition_key)
            .data(data.to_vec().into())
            .send()
            .await
            .expect("the stream takes the record");
    }

    /// The stream's records grouped by shard, in shard order.
    pub async fn shards(&self) -> Vec<(String, Vec<aws_sdk_kinesis::types::Record>)> {
        let mut by_shard: std::collections::BTreeMap<String, Vec<aws_sdk_kinesis::types::Record>> =
            Default::default();
        for (shard, record) in self.stream_records().await {
            by_shard.entry(shard).or_default().push(record);
        }
        by_shard.into_iter().collect()
    }

    /// The Kinesis event a mapping would deliver for these records of one shard.
    pub fn kinesis_batch(&self, shard: &str, records: &[aws_sdk_kinesis::types::Record]) -> Value {
        snapglow_local::triggers::kinesis::kinesis_event(
            self.arn("ImageSocialEvents"),
            shard,
            "arn:aws:iam::123456789012:role/test",
            records,
        )
    }
}
