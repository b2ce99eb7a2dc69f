//! The roles' grants against what the functions call, both ways. A call its role lacks fails
//! by running: the local stack enforces IAM (each function and its mappings call with a user
//! holding only its role's policies), and presigned URLs are checked as S3 checks them, then
//! authorized as their signer. A grant nothing calls fails by reading: every granted action
//! is called by Lambda for a feature the function uses, or by the function's code.

use serde_json::{Value, json};
use snapglow_local::lambda::http::call;
use snapglow_local::scenarios::client::ApiClient;
use snapglow_local::scenarios::producer::like_event;
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::template::Template;
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::{run_rounds, run_until_idle};
use snapglow_local::triggers::{MappingOptions, mappings};
use snapglow_tests::TestStack;
use std::path::Path;
use std::time::Duration;

/// LikeCounterRole's table grant as template.yaml writes it: the tests' mutations start here.
const LIKE_COUNTER_GRANT: &str = "Action: [dynamodb:BatchGetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:Query, dynamodb:BatchWriteItem]";

/// template.yaml's text, still holding [`LIKE_COUNTER_GRANT`].
fn template_text() -> String {
    let root = snapglow_local::stack::project::project_root();
    let text =
        std::fs::read_to_string(snapglow_local::stack::project::template_path(&root)).unwrap();
    assert!(
        text.contains(LIKE_COUNTER_GRANT),
        "LikeCounterRole's grant moved; update LIKE_COUNTER_GRANT"
    );
    text
}

/// Actions Lambda itself calls with a function's execution role, by the feature that needs
/// them (Lambda developer guide: execution role permissions for each event source, for an
/// on-failure destination, for logging and for active tracing).
fn called_by_lambda(function: &Value, globals: &Value) -> Vec<&'static str> {
    let mut actions = vec!["logs:CreateLogStream", "logs:PutLogEvents"];
    let tracing = function.get("Tracing").or_else(|| globals.get("Tracing"));
    if tracing.and_then(Value::as_str) == Some("Active") {
        actions.extend(["xray:PutTraceSegments", "xray:PutTelemetryRecords"]);
    }
    for event in function
        .get("Events")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|events| events.values())
    {
        match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => actions.extend([
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ]),
            Some("Kinesis") => actions.extend([
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
                "kinesis:ListShards",
            ]),
            Some("DynamoDB") => actions.extend([
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ]),
            _ => {}
        }
        if event
            .pointer("/Properties/DestinationConfig/OnFailure/Type")
            .and_then(Value::as_str)
            == Some("SQS")
        {
            actions.push("sqs:SendMessage");
        }
    }
    actions
}

/// The SDK calls in the code that use `action`. A transaction's items are authorized by their
/// own actions; S3 checks ListBucket only to tell a missing key (404) from a refused one (403),
/// and DeleteObject on each key of a DeleteObjects.
fn calls_of(action: &str) -> Vec<String> {
    let (_, operation) = action.split_once(':').unwrap_or(("", action));
    let mut snake = String::new();
    for (i, c) in operation.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    let mut calls = vec![format!(".{snake}(")];
    match action {
        "dynamodb:PutItem" => calls.push("Put::builder()".into()),
        "dynamodb:UpdateItem" => calls.push("Update::builder()".into()),
        "dynamodb:DeleteItem" => calls.push("Delete::builder()".into()),
        "dynamodb:ConditionCheckItem" => calls.push("ConditionCheck::builder()".into()),
        "dynamodb:GetItem" => calls.push("Get::builder()".into()),
        "s3:ListBucket" => calls.extend([".get_object(".into(), ".list_objects_v2(".into()]),
        // A multi-object delete is authorized key by key as DeleteObject.
        "s3:DeleteObject" => calls.push(".delete_objects(".into()),
        // The WebSocket management API's three calls share one action.
        "execute-api:ManageConnections" => calls.extend([
            ".post_to_connection(".into(),
            ".get_connection(".into(),
            ".delete_connection(".into(),
        ]),
        _ => {}
    }
    calls
}

/// The Rust sources of a folder, concatenated (tests included: a grant only a test uses is
/// still caught, as tests call the in-memory twins, not the SDK).
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text += &sources(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            text += &std::fs::read_to_string(&path).unwrap_or_default();
        }
    }
    text
}

/// Function crates whose calls a binary makes through another crate: the pusher runs `live`'s
/// poster and connections and the API's notification views (their presigned URLs). Listed, not
/// read from the manifests: the API links like-counter's and notifier's crates for their
/// readers, and counting all their calls would hide a grant the API never uses.
const USES: &[(&str, &[&str])] = &[("pusher", &["live", "api"])];

/// A function's code: its crate's sources and those of the crates [`USES`] names for it.
fn function_sources(root: &Path, binary: &str) -> String {
    let mut text = sources(&root.join("functions").join(binary).join("src"));
    for (_, used) in USES.iter().filter(|(user, _)| *user == binary) {
        for name in *used {
            text += &sources(&root.join("functions").join(name).join("src"));
        }
    }
    text
}

/// Every granted action that neither Lambda nor the function's code (its crate, the function
/// crates it uses and the shared crate) ever calls, in words. Hazard: shared code counts for
/// every function, so a grant a shared module uses is accepted for a function that does not use
/// that module.
fn unused_grants(template_text: &str, root: &Path) -> Vec<String> {
    let template = Template::parse(template_text).unwrap();
    let shared = sources(&root.join("shared").join("src"));
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let role = function
            .properties
            .pointer("/Role/Fn::GetAtt/0")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let binary = function
            .metadata
            .pointer("/BuildProperties/Binary")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let code = function_sources(root, binary) + &shared;
        let by_lambda = called_by_lambda(&function.properties, &template.globals_function);
        let statements = template.resources[role]
            .properties
            .pointer("/Policies/0/PolicyDocument/Statement")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for statement in statements {
            let actions = match statement.get("Action") {
                Some(Value::Array(many)) => many.clone(),
                Some(one) => vec![one.clone()],
                None => Vec::new(),
            };
            for action in actions.iter().filter_map(Value::as_str) {
                let called = by_lambda.contains(&action)
                    || calls_of(action)
                        .iter()
                        .any(|call| code.contains(call.as_str()));
                if !called {
                    found.push(format!(
                        "{role}: {action} is granted but {} never calls it",
                        function.logical_id
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_granted_action_is_called_by_lambda_or_by_the_code() {
    // Prepare
    let root = snapglow_local::stack::project::project_root();
    let text = template_text();
    let widened = text.replacen(
        LIKE_COUNTER_GRANT,
        "Action: [dynamodb:BatchGetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:Query, dynamodb:BatchWriteItem, dynamodb:Scan]",
        1,
    );
    let old_grant = text.replacen(
        "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]",
        "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueAttributes]",
        1,
    );

    // Act
    let as_is = unused_grants(&text, &root);
    let with_unused = unused_grants(&widened, &root);
    let with_old_grant = unused_grants(&old_grant, &root);

    // Assess
    assert_eq!(as_is, Vec::<String>::new());
    assert_eq!(
        with_unused,
        ["LikeCounterRole: dynamodb:Scan is granted but LikeCounterFunction never calls it"]
    );
    assert_eq!(
        with_old_grant,
        ["ResizeRole: sqs:ChangeMessageVisibility is granted but ResizeFunction never calls it"]
    );
}

/// like-counter's mapping run on one like until idle (or for `rounds` polls: a refused call
/// is retried until the record expires, so it never goes idle); returns the image's count,
/// the failed invocations and the log.
async fn count_one_like(
    stage: &TestStack,
    purpose: &str,
    rounds: Option<usize>,
) -> (i64, usize, String) {
    let log_dir = stage.state_dir(purpose);
    let options = MappingOptions {
        only_streams: true,
        ..Default::default()
    };
    let mut counter: Vec<_> = mappings(&stage.stack, &stage.binaries(), &log_dir, &options)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.name().starts_with("LikeCounterFunction."))
        .collect();
    stage
        .publish(&[like_event(
            "img-granted",
            "bob",
            true,
            None,
            snapglow::contracts::Timestamp::now(),
        )])
        .await;
    let stats = match rounds {
        Some(rounds) => run_rounds(&mut counter, rounds).await.unwrap(),
        None => run_until_idle(&mut counter, Duration::from_secs(120))
            .await
            .unwrap(),
    };
    assert_eq!(stats.given_up, 0, "a healthy record is never given up");
    let table = stage.like_counts();
    let count = table.count("img-granted").await.unwrap();
    let log = std::fs::read_to_string(log_dir.join("like-counter.log")).unwrap_or_default();
    (count, stats.failed_invocations, log)
}

#[tokio::test]
async fn a_call_the_role_does_not_grant_is_refused_as_aws_refuses_it() {
    // Prepare: the template as it is, and a copy whose like-counter role lacks BatchGetItem
    let text = template_text();
    let without = text.replacen(
        LIKE_COUNTER_GRANT,
        "Action: [dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:Query, dynamodb:BatchWriteItem]",
        1,
    );
    let as_is = TestStack::start().await;
    let mutated = TestStack::start_from(&Template::parse(&without).unwrap()).await;

    // Act
    let (counted, failures, _) = count_one_like(&as_is, "grants-as-is", None).await;
    let (refused, refused_failures, log) =
        count_one_like(&mutated, "grants-mutated", Some(3)).await;

    // Assess: the like counts with the grant; without it every attempt is refused by IAM, the
    // like is not counted, and its batch stays on the shard, failing each delivery (retried
    // until the grant is fixed or the record expires, never acknowledged as done)
    assert_eq!((counted, failures), (1, 0));
    assert_eq!(refused, 0);
    assert!(
        refused_failures >= 3,
        "the refused call must fail every invocation: {refused_failures}"
    );
    assert!(
        log.contains("AccessDenied") || log.contains("not authorized"),
        "like-counter's log names the refusal: {log}"
    );
    assert_eq!(
        mutated.quarantined().await,
        Vec::<serde_json::Value>::new(),
        "a refused permission is never the record's fault"
    );
    let pointers =
        snapglow_local::stack::queues::peek(&mutated.clients, mutated.url("StreamFailuresQueue"))
            .await
            .unwrap();
    assert!(pointers.is_empty(), "nothing is given up: {pointers:?}");
}

#[tokio::test]
async fn an_upload_url_is_good_once_for_its_own_key_size_and_signer_only() {
    // Prepare: an upload URL the API signed for alice
    let stage = TestStack::start().await;
    let logs = stage.state_dir("grants-presigned");
    let gate = PresignedGate::for_stack(&stage.stack).await.unwrap();
    let server = HttpApiServer::start(&stage.stack, &stage.binaries(), &logs, 0, &gate.url)
        .await
        .unwrap();
    let mut api = ApiClient::new(&server.url, &stage.clients, &stage.stack);
    let body = b"\xff\xd8\xff not really a jpeg".to_vec();
    let issued = api
        .request(
            "alice",
            "POST",
            "/uploads",
            Some(json!({ "content_type": "image/jpeg", "content_length": body.len() })),
        )
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{}", issued.body);
    let url = issued.body["upload"]["url"].as_str().unwrap().to_owned();
    let bucket = stage.name("UploadsBucket").to_owned();
    let key = url
        .split('?')
        .next()
        .and_then(|path| path.split(&format!("/{bucket}/")).nth(1))
        .unwrap()
        .to_owned();
    assert_eq!(
        issued.body["upload"]["headers"]["if-none-match"], "*",
        "{}",
        issued.body
    );
    const SIGNED: &[(&str, &str)] = &[("content-type", "image/jpeg"), ("if-none-match", "*")];
    let put_with = |url: String, bytes: Vec<u8>, headers: &'static [(&str, &str)]| async move {
        let (status, _, answer) = call("PUT", &url, headers, bytes).await.unwrap();
        (status, String::from_utf8_lossy(&answer).into_owned())
    };
    let put = |url: String, bytes: Vec<u8>| put_with(url, bytes, SIGNED);

    // Act
    let other_key = put(url.replacen("/uploads/", "/uploads/x", 1), body.clone()).await;
    let other_size = put(url.clone(), b"short".to_vec()).await;
    let other_signer = put(
        url.replacen("X-Amz-Credential=", "X-Amz-Credential=AKIANOBODY", 1),
        body.clone(),
    )
    .await;
    let unconditional = put_with(url.clone(), body.clone(), &[("content-type", "image/jpeg")]);
    let unconditional = unconditional.await;
    let as_signed = put(url.clone(), body.clone()).await;
    // (the same length: the length is signed too)
    let other_photo: Vec<u8> = body.iter().map(|b| b ^ 1).collect();
    let again = put(url.clone(), other_photo).await;

    // Assess: S3's answers for each
    assert_eq!(other_key.0, 403);
    assert!(
        other_key.1.contains("SignatureDoesNotMatch"),
        "{}",
        other_key.1
    );
    assert_eq!(other_size.0, 403);
    assert!(
        other_size.1.contains("SignatureDoesNotMatch"),
        "{}",
        other_size.1
    );
    assert_eq!(other_signer.0, 403);
    assert!(
        other_signer.1.contains("InvalidAccessKeyId"),
        "{}",
        other_signer.1
    );
    // ... the condition is part of the signature: without it the URL is refused
    assert_eq!(unconditional.0, 403);
    assert!(
        unconditional.1.contains("SignatureDoesNotMatch"),
        "{}",
        unconditional.1
    );
    assert_eq!(as_signed.0, 200, "{}", as_signed.1);
    // ... and the URL puts its object once: a second PUT cannot replace it
    assert_eq!(again.0, 412, "{}", again.1);
    assert!(again.1.contains("PreconditionFailed"), "{}", again.1);
    let stored = stage
        .clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let stored = stored.body.collect().await.unwrap().into_bytes();
    assert_eq!(stored.as_ref(), body.as_slice(), "the first PUT's bytes");
    drop(server);
}
