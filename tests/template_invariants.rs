//! template.yaml's promises that cfn-lint and `sam validate --lint` do not check (they accept
//! `StartingPosition: OLDEST` or `MaximumRetryAttempts: 99999` inside SAM events), so that a
//! change that would silently lose or block records fails here instead.

use serde_json::Value;
use snapglow_local::stack::project::{project_root, template_path};
use snapglow_local::template::{Template, scalar_text};

fn load_text() -> String {
    std::fs::read_to_string(template_path(&project_root())).expect("template.yaml is readable")
}

fn int(value: Option<&Value>) -> Option<i64> {
    value.map(scalar_text).and_then(|t| t.parse().ok())
}

/// Every broken invariant, in words. Empty for a good template.
fn violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let raw: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("YAML");
    if raw.get("Transform").and_then(|t| t.as_str()) != Some("AWS::Serverless-2016-10-31") {
        found.push("Transform must be AWS::Serverless-2016-10-31".to_owned());
    }
    let template = match Template::parse(text) {
        Ok(template) => template,
        Err(e) => return vec![e.to_string()],
    };
    let globals = &template.globals_function;
    let setting = |props: &Value, key: &str| {
        props
            .get(key)
            .or_else(|| globals.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let names: Vec<(&str, &str)> = template
        .resources
        .values()
        .map(|r| (r.logical_id.as_str(), r.kind.as_str()))
        .collect();
    for (id, kind) in [
        ("UploadsBucket", "AWS::S3::Bucket"),
        ("RenditionsBucket", "AWS::S3::Bucket"),
        ("ImageUploadsQueue", "AWS::SQS::Queue"),
        ("ImageUploadsDLQ", "AWS::SQS::Queue"),
        ("QuarantineQueue", "AWS::SQS::Queue"),
        ("StreamFailuresQueue", "AWS::SQS::Queue"),
        ("ImageSocialEvents", "AWS::Kinesis::Stream"),
        ("LikesTable", "AWS::DynamoDB::Table"),
        ("NotificationsTable", "AWS::DynamoDB::Table"),
        ("ResizeFunction", "AWS::Serverless::Function"),
        ("LikeCounterFunction", "AWS::Serverless::Function"),
        ("NotifierFunction", "AWS::Serverless::Function"),
    ] {
        if !names.contains(&(id, kind)) {
            found.push(format!("{id} ({kind}) is missing"));
        }
    }
    let resource = |id: &str| {
        template
            .resources
            .get(id)
            .map(|r| r.properties.clone())
            .unwrap_or(Value::Null)
    };

    // Uploads trigger resize through the queue, and only under uploads/.
    let uploads = resource("UploadsBucket");
    let notification = uploads
        .pointer("/NotificationConfiguration/QueueConfigurations/0")
        .cloned()
        .unwrap_or(Value::Null);
    if notification.get("Queue")
        != Some(&serde_json::json!({ "Fn::GetAtt": ["ImageUploadsQueue", "Arn"] }))
        || scalar_text(&notification["Event"]) != "s3:ObjectCreated:*"
    {
        found.push("UploadsBucket must notify ImageUploadsQueue of s3:ObjectCreated:*".to_owned());
    }
    if notification
        .pointer("/Filter/S3Key/Rules/0/Value")
        .map(scalar_text)
        .as_deref()
        != Some("uploads/")
    {
        found.push("the upload notification must be filtered on the uploads/ prefix".to_owned());
    }

    // The queue: redrive to the DLQ, and a visibility timeout of at least 6x resize's timeout.
    let queue = resource("ImageUploadsQueue");
    let resize = resource("ResizeFunction");
    let resize_timeout = int(Some(&setting(&resize, "Timeout"))).unwrap_or(3);
    if int(queue.get("VisibilityTimeout")).unwrap_or(30) < 6 * resize_timeout {
        found.push(format!(
            "ImageUploadsQueue VisibilityTimeout must be >= 6 x resize Timeout ({resize_timeout} s)"
        ));
    }
    if queue.pointer("/RedrivePolicy/deadLetterTargetArn")
        != Some(&serde_json::json!({ "Fn::GetAtt": ["ImageUploadsDLQ", "Arn"] }))
    {
        found.push("ImageUploadsQueue must redrive to ImageUploadsDLQ".to_owned());
    }
    if int(queue.pointer("/RedrivePolicy/maxReceiveCount")).unwrap_or(0) < 5 {
        found.push("maxReceiveCount must be >= 5 (throttles use up receives)".to_owned());
    }
    for id in ["ImageUploadsDLQ", "QuarantineQueue", "StreamFailuresQueue"] {
        if int(resource(id).get("MessageRetentionPeriod")) != Some(1_209_600) {
            found.push(format!("{id} must keep messages 14 days"));
        }
    }

    // Tables expire dedup records, and only after the stream can no longer redeliver them.
    for id in ["LikesTable", "NotificationsTable"] {
        if scalar_text(
            &resource(id)
                .pointer("/TimeToLiveSpecification/Enabled")
                .cloned()
                .unwrap_or(Value::Null),
        ) != "true"
        {
            found.push(format!("{id} must have TTL enabled"));
        }
    }
    let retention_hours =
        int(resource("ImageSocialEvents").get("RetentionPeriodHours")).unwrap_or(24);
    let dedup_hours = template
        .parameters
        .get("DedupRetentionHours")
        .and_then(|v| int(Some(v)))
        .unwrap_or(0);
    if dedup_hours <= retention_hours {
        found.push(format!("DedupRetentionHours ({dedup_hours}) must exceed the stream's retention ({retention_hours} h)"));
    }

    // Functions and their triggers.
    for function in template.of_kind("AWS::Serverless::Function") {
        let id = &function.logical_id;
        let props = &function.properties;
        if scalar_text(&setting(props, "Runtime")) != "provided.al2023" {
            found.push(format!("{id}: Runtime must be provided.al2023"));
        }
        if setting(props, "Architectures") != serde_json::json!(["arm64"]) {
            found.push(format!("{id}: Architectures must be [arm64]"));
        }
        if function
            .metadata
            .get("BuildMethod")
            .map(scalar_text)
            .as_deref()
            != Some("rust-cargolambda")
        {
            found.push(format!(
                "{id}: Metadata.BuildMethod must be rust-cargolambda"
            ));
        }
        let binary = function
            .metadata
            .pointer("/BuildProperties/Binary")
            .map(scalar_text)
            .unwrap_or_default();
        if !project_root()
            .join("functions")
            .join(&binary)
            .join("Cargo.toml")
            .is_file()
        {
            found.push(format!(
                "{id}: Metadata.BuildProperties.Binary {binary:?} is not a crate under functions/"
            ));
        }
        for (name, event) in props
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let kind = scalar_text(&event["Type"]);
            let e = &event["Properties"];
            if (kind == "SQS" || kind == "Kinesis")
                && e.get("FunctionResponseTypes")
                    != Some(&serde_json::json!(["ReportBatchItemFailures"]))
            {
                found.push(format!("{id}.{name}: FunctionResponseTypes must be [ReportBatchItemFailures], or failed records are deleted/checkpointed"));
            }
            if kind == "Kinesis" {
                if scalar_text(&e["StartingPosition"]) != "TRIM_HORIZON" {
                    found.push(format!(
                        "{id}.{name}: StartingPosition must be TRIM_HORIZON"
                    ));
                }
                if e.get("BisectBatchOnFunctionError") != Some(&Value::Bool(true)) {
                    found.push(format!(
                        "{id}.{name}: BisectBatchOnFunctionError must be true"
                    ));
                }
                match int(e.get("MaximumRetryAttempts")) {
                    Some(n) if (0..=10_000).contains(&n) => {}
                    other => found.push(format!("{id}.{name}: MaximumRetryAttempts must be 0..=10000 (not infinite), is {other:?}")),
                }
                match int(e.get("MaximumRecordAgeInSeconds")) {
                    Some(n) if (60..=604_800).contains(&n) => {}
                    other => found.push(format!(
                        "{id}.{name}: MaximumRecordAgeInSeconds must be 60..=604800, is {other:?}"
                    )),
                }
                if e.pointer("/DestinationConfig/OnFailure/Destination")
                    .is_none()
                {
                    found.push(format!(
                        "{id}.{name}: an on-failure destination is required"
                    ));
                }
            }
            if kind == "SQS" {
                let window = int(e.get("MaximumBatchingWindowInSeconds")).unwrap_or(0);
                let batch = int(e.get("BatchSize")).unwrap_or(10);
                if batch > 10 && window < 1 {
                    found.push(format!(
                        "{id}.{name}: BatchSize > 10 needs MaximumBatchingWindowInSeconds >= 1"
                    ));
                }
            }
        }
    }
    found.extend(least_privilege_violations(&template));
    found.extend(operations_violations(&template));
    // resize writes renditions elsewhere than the bucket that triggers it.
    if resize.pointer("/Environment/Variables/RENDITIONS_BUCKET")
        != Some(&serde_json::json!({ "Ref": "RenditionsBucket" }))
    {
        found.push(
            "resize must write to RenditionsBucket, never the uploads bucket (recursive trigger)"
                .to_owned(),
        );
    }
    found
}

/// Each function runs with its own role, and each role names exact actions on exact resources.
fn least_privilege_violations(template: &Template) -> Vec<String> {
    let mut found = Vec::new();
    let as_list = |v: Option<&Value>| match v {
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    };
    for r in template.resources.values() {
        if r.kind == "AWS::Serverless::Function" {
            if r.properties.get("Role").is_none() {
                found.push(format!(
                    "{}: needs its own Role (SAM's event sources attach managed policies on \"*\")",
                    r.logical_id
                ));
            }
            if r.properties.get("Policies").is_some() {
                found.push(format!(
                    "{}: Policies widen the role; put them on its Role",
                    r.logical_id
                ));
            }
        }
        if r.kind != "AWS::IAM::Role" {
            continue;
        }
        for policy in as_list(r.properties.get("Policies")) {
            for statement in as_list(policy.pointer("/PolicyDocument/Statement")) {
                let actions: Vec<String> = as_list(statement.get("Action"))
                    .iter()
                    .map(scalar_text)
                    .collect();
                let resources = as_list(statement.get("Resource"));
                if actions.iter().any(|a| a.contains('*')) {
                    found.push(format!("{}: wildcard action in {actions:?}", r.logical_id));
                }
                // X-Ray accepts no resource but "*".
                let star = resources.iter().any(|res| res.as_str() == Some("*"));
                if star && !actions.iter().all(|a| a.starts_with("xray:")) {
                    found.push(format!("{}: Resource \"*\" for {actions:?}", r.logical_id));
                }
            }
        }
    }
    for bucket in template.of_kind("AWS::S3::Bucket") {
        let denies_plain_http = template.of_kind("AWS::S3::BucketPolicy").any(|policy| {
            policy.properties.get("Bucket")
                == Some(&serde_json::json!({ "Ref": bucket.logical_id }))
                && as_list(policy.properties.pointer("/PolicyDocument/Statement"))
                    .iter()
                    .any(|statement| {
                        statement.get("Effect").and_then(Value::as_str) == Some("Deny")
                            && statement
                                .pointer("/Condition/Bool/aws:SecureTransport")
                                .map(scalar_text)
                                .as_deref()
                                == Some("false")
                    })
        });
        if !denies_plain_http {
            found.push(format!(
                "{}: needs a bucket policy denying non-TLS requests",
                bucket.logical_id
            ));
        }
    }
    found
}

/// Encryption, retention and the alarms the runbook relies on.
fn operations_violations(template: &Template) -> Vec<String> {
    let mut found = Vec::new();
    for queue in template.of_kind("AWS::SQS::Queue") {
        let p = &queue.properties;
        if p.get("SqsManagedSseEnabled") != Some(&Value::Bool(true))
            && p.get("KmsMasterKeyId").is_none()
        {
            found.push(format!("{}: queues must be encrypted", queue.logical_id));
        }
    }
    for id in ["ImageUploadsDLQ", "StreamFailuresQueue", "QuarantineQueue"] {
        let retention = template
            .resources
            .get(id)
            .and_then(|r| int(r.properties.get("MessageRetentionPeriod")));
        if retention != Some(1_209_600) {
            found.push(format!(
                "{id}: MessageRetentionPeriod must be 14 days (1209600), is {retention:?}"
            ));
        }
    }
    for table in template.of_kind("AWS::DynamoDB::Table") {
        if table
            .properties
            .pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled")
            != Some(&Value::Bool(true))
        {
            found.push(format!(
                "{}: point-in-time recovery must be on",
                table.logical_id
            ));
        }
    }
    let alarms: Vec<&Value> = template
        .of_kind("AWS::CloudWatch::Alarm")
        .map(|a| &a.properties)
        .collect();
    let alarms_on = |metric: &str, dimension: &Value| {
        alarms
            .iter()
            .filter(|a| {
                a.get("MetricName").and_then(Value::as_str) == Some(metric)
                    && serde_json::to_string(a.get("Dimensions").unwrap_or(&Value::Null))
                        .is_ok_and(|d| d.contains(&dimension.to_string()))
            })
            .count()
    };
    let alarmed = |metric: &str, dimension: &Value| {
        alarms.iter().any(|a| {
            a.get("MetricName").and_then(Value::as_str) == Some(metric)
                && serde_json::to_string(a.get("Dimensions").unwrap_or(&Value::Null))
                    .is_ok_and(|d| d.contains(&dimension.to_string()))
        })
    };
    for function in template.of_kind("AWS::Serverless::Function") {
        let reads_stream = function
            .properties
            .get("Events")
            .and_then(Value::as_object)
            .is_some_and(|events| {
                events
                    .values()
                    .any(|e| e.get("Type").and_then(Value::as_str) == Some("Kinesis"))
            });
        let reference = serde_json::json!({ "Ref": function.logical_id });
        if reads_stream && alarms_on("IteratorAge", &reference) < 2 {
            found.push(format!(
                "{}: IteratorAge (consumer lag) alarms at a warning and a critical level are required",
                function.logical_id
            ));
        }
        for metric in ["Errors", "Throttles"] {
            if !alarmed(metric, &reference) {
                found.push(format!(
                    "{}: a {metric} alarm is required",
                    function.logical_id
                ));
            }
        }
    }
    for queue in ["ImageUploadsDLQ", "StreamFailuresQueue"] {
        let name = serde_json::json!({ "Fn::GetAtt": [queue, "QueueName"] });
        if !alarmed("ApproximateNumberOfMessagesVisible", &name) {
            found.push(format!("{queue}: a not-empty alarm is required"));
        }
    }
    found
}

#[test]
fn the_template_keeps_every_delivery_promise() {
    assert_eq!(violations(&load_text()), Vec::<String>::new());
}

#[test]
fn the_checks_catch_the_mistakes_linters_let_through() {
    let text = load_text();
    let cases = [
        (
            "StartingPosition: TRIM_HORIZON",
            "StartingPosition: LATEST",
            "StartingPosition must be TRIM_HORIZON",
        ),
        (
            "MaximumRetryAttempts: 5",
            "MaximumRetryAttempts: -1",
            "MaximumRetryAttempts must be 0..=10000",
        ),
        (
            "FunctionResponseTypes: [ReportBatchItemFailures]",
            "FunctionResponseTypes: []",
            "FunctionResponseTypes must be [ReportBatchItemFailures]",
        ),
        (
            "VisibilityTimeout: 360",
            "VisibilityTimeout: 60",
            "VisibilityTimeout must be >= 6 x resize Timeout",
        ),
        (
            "maxReceiveCount: 5",
            "maxReceiveCount: 1",
            "maxReceiveCount must be >= 5",
        ),
        (
            "Value: uploads/",
            "Value: photos/",
            "filtered on the uploads/ prefix",
        ),
        (
            "RENDITIONS_BUCKET: !Ref RenditionsBucket",
            "RENDITIONS_BUCKET: !Ref UploadsBucket",
            "recursive trigger",
        ),
        (
            "Default: 192",
            "Default: 24",
            "must exceed the stream's retention",
        ),
        (
            "BisectBatchOnFunctionError: true",
            "BisectBatchOnFunctionError: false",
            "BisectBatchOnFunctionError must be true",
        ),
        (
            "Resource: !GetAtt LikesTable.Arn",
            "Resource: \"*\"",
            "Resource \"*\"",
        ),
        (
            "Action: [dynamodb:BatchGetItem, dynamodb:PutItem, dynamodb:UpdateItem]",
            "Action: \"dynamodb:*\"",
            "wildcard action",
        ),
        (
            "Role: !GetAtt NotifierRole.Arn",
            "Policies: [AmazonDynamoDBFullAccess]",
            "needs its own Role",
        ),
        (
            "PointInTimeRecoveryEnabled: true",
            "PointInTimeRecoveryEnabled: false",
            "point-in-time recovery must be on",
        ),
        (
            "MessageRetentionPeriod: 1209600",
            "MessageRetentionPeriod: 345600",
            "must be 14 days",
        ),
        (
            "Bool: { aws:SecureTransport: \"false\" }",
            "Bool: { aws:SecureTransport: \"true\" }",
            "denying non-TLS",
        ),
        (
            "MetricName: IteratorAge",
            "MetricName: Invocations",
            "IteratorAge (consumer lag) alarms",
        ),
    ];
    for (good, bad, expected) in cases {
        // GIVEN the template with one mistake
        assert!(
            text.contains(good),
            "template no longer contains {good:?}; update this test"
        );
        let broken = text.replacen(good, bad, 1);
        // THEN the checks name it
        let found = violations(&broken);
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{bad:?} was not caught: {found:?}"
        );
    }
}
