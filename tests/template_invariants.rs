//! template.yaml's promises that cfn-lint and `sam validate --lint` do not check (they accept
//! `StartingPosition: OLDEST` or `MaximumRetryAttempts: 99999` inside SAM events), so that a
//! change that would silently lose or block records fails here instead.

use serde_json::Value;
use snapglow_local::stack::project::{project_root, template_path};
use snapglow_local::template::{Lookup, Template, scalar_text};

fn load_text() -> String {
    std::fs::read_to_string(template_path(&project_root())).expect("template.yaml is readable")
}

fn int(value: Option<&Value>) -> Option<i64> {
    value.map(scalar_text).and_then(|t| t.parse().ok())
}

/// The parameters of a deploy to one stage (only `Stage` matters to the conditions checked here).
struct Stage(&'static str);

impl Lookup for Stage {
    fn parameter(&self, name: &str) -> Option<String> {
        (name == "Stage").then(|| self.0.to_owned())
    }
    fn pseudo(&self, _: &str) -> Option<String> {
        None
    }
    fn reference(&self, _: &str) -> Option<String> {
        None
    }
    fn attribute(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// The eight routes of the API, all behind the JWT authorizer.
const ROUTES: [&str; 8] = [
    "POST /uploads",
    "GET /feed",
    "GET /images/{id}",
    "PUT /images/{id}/like",
    "DELETE /images/{id}/like",
    "GET /me/images",
    "GET /me/notifications",
    "POST /me/notifications/read",
];

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
        ("ImagesTable", "AWS::DynamoDB::Table"),
        ("UserPool", "AWS::Cognito::UserPool"),
        ("UserPoolClient", "AWS::Cognito::UserPoolClient"),
        ("HttpApi", "AWS::Serverless::HttpApi"),
        ("ResizeFunction", "AWS::Serverless::Function"),
        ("LikeCounterFunction", "AWS::Serverless::Function"),
        ("NotifierFunction", "AWS::Serverless::Function"),
        ("ApiFunction", "AWS::Serverless::Function"),
        ("RelayFunction", "AWS::Serverless::Function"),
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
    for id in ["LikesTable", "NotificationsTable", "ImagesTable"] {
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
    let quarantine_hours =
        int(resource("QuarantineQueue").get("MessageRetentionPeriod")).unwrap_or(0) / 3600;
    if dedup_hours <= retention_hours.max(quarantine_hours) {
        found.push(format!("DedupRetentionHours ({dedup_hours}) must exceed the stream's retention ({retention_hours} h) and the quarantine's ({quarantine_hours} h), or a redriven record counts again"));
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
            if (kind == "SQS" || kind == "Kinesis" || kind == "DynamoDB")
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
                // Poison is quarantined in code: a limit here only ever gives up healthy
                // records (as pointers that expire with the stream).
                match int(e.get("MaximumRetryAttempts")) {
                    Some(-1) => {}
                    other => found.push(format!("{id}.{name}: MaximumRetryAttempts must be -1 (a limit gives up healthy records; poison is quarantined in code), is {other:?}")),
                }
                match int(e.get("MaximumRecordAgeInSeconds")) {
                    Some(-1) => {}
                    other => found.push(format!(
                        "{id}.{name}: MaximumRecordAgeInSeconds must be -1 (an age limit gives up healthy records during an outage), is {other:?}"
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
            // The images table's stream (the outbox): unlike the Kinesis consumers, its reader
            // must never give up on a change, for a change it skips reaches no consumer.
            if kind == "DynamoDB" {
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
                    None | Some(-1) => {}
                    other => found.push(format!("{id}.{name}: MaximumRetryAttempts must be -1 (a count is spent in minutes by fast partial failures; must never give up before the stream's retention), is {other:?}")),
                }
                match int(e.get("MaximumRecordAgeInSeconds")) {
                    None | Some(-1) => {}
                    other => found.push(format!("{id}.{name}: MaximumRecordAgeInSeconds must be -1 (must never give up on a change for its age), is {other:?}")),
                }
                if e.pointer("/DestinationConfig/OnFailure/Destination")
                    .is_none()
                {
                    found.push(format!(
                        "{id}.{name}: an on-failure destination is required"
                    ));
                }
                let filters = e
                    .pointer("/FilterCriteria/Filters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let on_event = !filters.is_empty()
                    && filters.iter().all(|filter| {
                        serde_json::from_str::<Value>(&scalar_text(&filter["Pattern"]))
                            .is_ok_and(|p| p.pointer("/dynamodb/NewImage/event").is_some())
                    });
                if !on_event {
                    found.push(format!("{id}.{name}: a filter on dynamodb.NewImage.event is required (only changes carrying an event may invoke it)"));
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
                // A crash or a timeout fails a whole batch and spends a receive of each of
                // its messages: an upload must never share one with a hostile file.
                if id == "ResizeFunction" && batch != 1 {
                    found.push(format!(
                        "{id}.{name}: resize takes BatchSize 1, so one upload's crash never spends another's receives"
                    ));
                }
            }
        }
    }
    found.extend(least_privilege_violations(&template));
    found.extend(operations_violations(&template));
    found.extend(front_door_violations(&template, &raw));
    // resize writes renditions elsewhere than the bucket that triggers it.
    if resize.pointer("/Environment/Variables/RENDITIONS_BUCKET")
        != Some(&serde_json::json!({ "Ref": "RenditionsBucket" }))
    {
        found.push(
            "resize must write to RenditionsBucket, never the uploads bucket (recursive trigger)"
                .to_owned(),
        );
    }
    if resize
        .pointer("/Environment/Variables/STREAM_NAME")
        .is_some()
    {
        found.push(
            "resize must not write the stream (STREAM_NAME): the relay is its one writer"
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
                // The relay is the stream's one writer: the API and resize store each event in
                // the images table (the outbox), in the same write as its fact.
                for action in &actions {
                    let kinesis = action.starts_with("kinesis:");
                    let writes = action == "kinesis:PutRecord" || action == "kinesis:PutRecords";
                    if writes && r.logical_id != "RelayRole" {
                        found.push(format!(
                            "{}: {action}: the relay is the only writer of the stream",
                            r.logical_id
                        ));
                    }
                    if kinesis && r.logical_id == "ResizeRole" {
                        found.push(format!(
                            "ResizeRole: {action}: resize has no Kinesis action (the relay publishes its events)"
                        ));
                    }
                    if kinesis && r.logical_id == "RelayRole" && action != "kinesis:PutRecords" {
                        found.push(format!(
                            "RelayRole: {action}: the relay needs kinesis:PutRecords and nothing else on Kinesis"
                        ));
                    }
                }
            }
        }
    }
    // Without s3:ListBucket, S3 answers a missing key with 403, not 404: resize's "upload
    // deleted" branch would never run on AWS and the message would go to the DLQ.
    let resize_lists_uploads = template.resources.get("ResizeRole").is_some_and(|role| {
        as_list(
            role.properties
                .pointer("/Policies/0/PolicyDocument/Statement"),
        )
        .iter()
        .any(|s| {
            as_list(s.get("Action"))
                .iter()
                .any(|a| a.as_str() == Some("s3:ListBucket"))
                && s.get("Resource")
                    .is_some_and(|r| r.to_string().contains("-uploads-"))
        })
    });
    if !resize_lists_uploads {
        found.push("ResizeRole: s3:ListBucket on the uploads bucket is required (a missing upload must be 404, not 403)".to_owned());
    }
    // A role of its own per function: a shared role holds the union of both functions' grants.
    let mut owners: Vec<(String, String)> = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let role = function
            .properties
            .pointer("/Role/Fn::GetAtt/0")
            .map(scalar_text)
            .filter(|role| {
                template
                    .resources
                    .get(role)
                    .is_some_and(|r| r.kind == "AWS::IAM::Role")
            });
        let Some(role) = role else {
            found.push(format!(
                "{}: Role must be !GetAtt <an AWS::IAM::Role of this template>.Arn",
                function.logical_id
            ));
            continue;
        };
        if let Some((_, other)) = owners.iter().find(|(r, _)| *r == role) {
            found.push(format!(
                "{} shares its role {role} with {other}: each function needs its own",
                function.logical_id
            ));
        }
        owners.push((role, function.logical_id.clone()));
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
        let reads = |kind: &str| {
            function
                .properties
                .get("Events")
                .and_then(Value::as_object)
                .is_some_and(|events| {
                    events
                        .values()
                        .any(|e| e.get("Type").and_then(Value::as_str) == Some(kind))
                })
        };
        let reads_stream = reads("Kinesis") || reads("DynamoDB");
        let reference = serde_json::json!({ "Ref": function.logical_id });
        // A batch a mapping gives up on is recoverable only if the on-failure destination got
        // its pointer: a failed delivery loses it silently.
        let has_destination = function
            .properties
            .get("Events")
            .is_some_and(|events| events.to_string().contains("\"OnFailure\""));
        if has_destination && !alarmed("DestinationDeliveryFailures", &reference) {
            found.push(format!(
                "{}: a DestinationDeliveryFailures alarm is required",
                function.logical_id
            ));
        }
        if reads_stream && alarms_on("IteratorAge", &reference) < 2 {
            found.push(format!(
                "{}: IteratorAge (consumer lag) alarms at a warning and a critical level are required",
                function.logical_id
            ));
        }
        // The lag levels are 1,000 and 10,000 records at the stated 50 records/s per shard.
        for alarm in alarms.iter().filter(|a| {
            a.get("MetricName").and_then(Value::as_str) == Some("IteratorAge")
                && a.get("Dimensions")
                    .is_some_and(|d| d.to_string().contains(&reference.to_string()))
        }) {
            let threshold = int(alarm.get("Threshold"));
            if !matches!(threshold, Some(20_000) | Some(200_000)) {
                found.push(format!(
                    "{}: IteratorAge levels must be 20000 and 200000 ms (1,000 and 10,000 records at 50/s), found {threshold:?}",
                    function.logical_id
                ));
            }
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
    // resize near its timeout: the Duration alarm must fire before a render times out.
    let resize_timeout_ms = template
        .resources
        .get("ResizeFunction")
        .and_then(|r| int(r.properties.get("Timeout")))
        .unwrap_or(0)
        * 1000;
    let near_timeout = alarms.iter().find(|a| {
        a.get("MetricName").and_then(Value::as_str) == Some("Duration")
            && a.to_string().contains("\"Ref\":\"ResizeFunction\"")
    });
    match near_timeout.and_then(|a| int(a.get("Threshold"))) {
        Some(t) if t <= resize_timeout_ms * 8 / 10 && t > 0 => {}
        other => found.push(format!(
            "ResizeFunction: a Duration alarm at most 80% of its timeout ({resize_timeout_ms} ms) is required, found {other:?}"
        )),
    }
    // Throttling of every table (reads and writes) and of the stream's writes.
    for table in template.of_kind("AWS::DynamoDB::Table") {
        let reference = serde_json::json!({ "Ref": table.logical_id }).to_string();
        // Each metric with its own dimensions: top-level, or one of a metric-math alarm's.
        let watched = |metric: &str| {
            alarms.iter().any(|a| {
                let mut stats = vec![(*a).clone()];
                if let Some(Value::Array(math)) = a.get("Metrics") {
                    stats.extend(
                        math.iter()
                            .filter_map(|m| m.pointer("/MetricStat/Metric").cloned()),
                    );
                }
                stats.iter().any(|m| {
                    m.get("MetricName").and_then(Value::as_str) == Some(metric)
                        && m.get("Dimensions")
                            .is_some_and(|d| d.to_string().contains(&reference))
                })
            })
        };
        if !watched("ReadThrottleEvents") || !watched("WriteThrottleEvents") {
            found.push(format!(
                "{}: a throttling alarm on ReadThrottleEvents and WriteThrottleEvents is required",
                table.logical_id
            ));
        }
    }
    let stream = serde_json::json!({ "Ref": "ImageSocialEvents" });
    if !alarmed("WriteProvisionedThroughputExceeded", &stream) {
        found.push("ImageSocialEvents: a write throttling alarm (WriteProvisionedThroughputExceeded) is required".to_owned());
    }
    // The dashboard's outcome graphs show every function that processes batches.
    let dashboard = template
        .of_kind("AWS::CloudWatch::Dashboard")
        .map(|d| d.properties.to_string())
        .collect::<String>();
    for function in template.of_kind("AWS::Serverless::Function") {
        let batches = function.properties.get("Events").is_some_and(|events| {
            events.as_object().is_some_and(|events| {
                events.values().any(|e| {
                    matches!(
                        e.get("Type").and_then(Value::as_str),
                        Some("SQS" | "Kinesis" | "DynamoDB")
                    )
                })
            })
        });
        let shown = format!(
            "[ \\\"snapglow\\\", \\\"RecordsProcessed\\\", \\\"function\\\", \\\"${{{}}}\\\"",
            function.logical_id
        );
        if batches && !dashboard.contains(&shown) {
            found.push(format!(
                "{}: the dashboard's outcome graphs must show it (RecordsProcessed)",
                function.logical_id
            ));
        }
    }
    // Alarms reach someone: CloudWatch can publish to an encrypted topic only through a
    // customer managed key whose policy lets cloudwatch.amazonaws.com use it.
    let topic_key = template
        .resources
        .get("AlarmTopic")
        .and_then(|t| t.properties.get("KmsMasterKeyId"))
        .cloned()
        .unwrap_or(Value::Null);
    let key_id = topic_key
        .get("Ref")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key_lets_cloudwatch = template.resources.get(key_id).is_some_and(|k| {
        k.kind == "AWS::KMS::Key"
            && k.properties
                .get("KeyPolicy")
                .is_some_and(|p| p.to_string().contains("cloudwatch.amazonaws.com"))
    });
    if !topic_key.is_null() && !key_lets_cloudwatch {
        found.push(format!(
            "AlarmTopic: encrypted with {topic_key}: CloudWatch cannot publish through an AWS managed key; use a key of this template whose policy allows cloudwatch.amazonaws.com"
        ));
    }
    for queue in ["ImageUploadsDLQ", "StreamFailuresQueue"] {
        let name = serde_json::json!({ "Fn::GetAtt": [queue, "QueueName"] });
        if !alarmed("ApproximateNumberOfMessagesVisible", &name) {
            found.push(format!("{queue}: a not-empty alarm is required"));
        }
    }
    // The API's alarms may use metric math, so the metric is looked for anywhere in the alarm.
    let api = serde_json::json!({ "Ref": "HttpApi" }).to_string();
    for (metric, what) in [
        ("5xx", "an API 5xx rate alarm"),
        ("Latency", "an API latency alarm"),
        ("ApiGatewayThrottled", "an API throttling alarm"),
    ] {
        let named = format!("\"MetricName\":\"{metric}\"");
        if !alarms.iter().any(|a| {
            let text = a.to_string();
            text.contains(&named) && text.contains(&api)
        }) {
            found.push(format!("HttpApi: {what} (on {metric}) is required"));
        }
    }
    if !template.of_kind("AWS::Logs::MetricFilter").any(|f| {
        f.properties
            .to_string()
            .contains("\"MetricName\":\"ApiGatewayThrottled\"")
    }) {
        found.push(
            "HttpApi: the ApiGatewayThrottled metric filter on the access log is required"
                .to_owned(),
        );
    }
    found
}

/// The front door: every route behind the JWT authorizer, one CORS origin, the images table's
/// stream and its state kept.
fn front_door_violations(template: &Template, raw: &serde_yaml_ng::Value) -> Vec<String> {
    let mut found = Vec::new();
    let properties = |id: &str| {
        template
            .resources
            .get(id)
            .map(|r| r.properties.clone())
            .unwrap_or(Value::Null)
    };
    let api = properties("HttpApi");
    if api
        .pointer("/Auth/DefaultAuthorizer")
        .map(scalar_text)
        .as_deref()
        != Some("JwtAuthorizer")
    {
        found.push("HttpApi: Auth.DefaultAuthorizer must be JwtAuthorizer".to_owned());
    }
    let jwt = api
        .pointer("/Auth/Authorizers/JwtAuthorizer")
        .cloned()
        .unwrap_or(Value::Null);
    if jwt.get("IdentitySource").map(scalar_text).as_deref()
        != Some("$request.header.Authorization")
        || jwt.pointer("/JwtConfiguration/issuer").is_none()
        || jwt
            .pointer("/JwtConfiguration/audience")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        found.push(
            "HttpApi: JwtAuthorizer needs the Authorization header, an issuer and an audience"
                .to_owned(),
        );
    }

    // Exactly the eight routes, on ApiFunction only, none opting out of the authorizer.
    let mut routes: Vec<String> = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let id = &function.logical_id;
        for (name, event) in function
            .properties
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let e = &event["Properties"];
            match (
                scalar_text(&event["Type"]) == "HttpApi",
                id == "ApiFunction",
            ) {
                (true, true) => {}
                (true, false) => {
                    found.push(format!("{id}.{name}: only ApiFunction serves HTTP routes"));
                    continue;
                }
                (false, true) => {
                    found.push(format!(
                        "{id}.{name}: ApiFunction is invoked by its HTTP routes only"
                    ));
                    continue;
                }
                (false, false) => continue,
            }
            if e.pointer("/Auth/Authorizer")
                .map(scalar_text)
                .is_some_and(|a| a != "JwtAuthorizer")
            {
                found.push(format!(
                    "{id}.{name}: opts out of the JWT authorizer (Auth.Authorizer)"
                ));
            }
            if e.get("ApiId") != Some(&serde_json::json!({ "Ref": "HttpApi" })) {
                found.push(format!("{id}.{name}: ApiId must be !Ref HttpApi"));
            }
            if scalar_text(&e["PayloadFormatVersion"]) != "2.0" {
                found.push(format!("{id}.{name}: PayloadFormatVersion must be \"2.0\""));
            }
            routes.push(format!(
                "{} {}",
                scalar_text(&e["Method"]).to_uppercase(),
                scalar_text(&e["Path"])
            ));
        }
    }
    routes.sort();
    let mut wanted: Vec<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    wanted.sort();
    if routes != wanted {
        found.push(format!(
            "ApiFunction must serve exactly the eight routes {wanted:?}, serves {routes:?}"
        ));
    }
    let timeout = int(properties("ApiFunction").get("Timeout"))
        .or_else(|| int(template.globals_function.get("Timeout")))
        .unwrap_or(3);
    if timeout >= 30 {
        found.push(format!(
            "ApiFunction: Timeout ({timeout} s) must be under 30 s, where the HTTP API cuts integrations"
        ));
    }

    // Browsers may call the API, and PUT uploads, from the web client's origin only.
    // The site's origin: the template's own distribution, or the AllowedOrigin given.
    let origin = serde_json::json!([{ "Fn::If": [
        "ServeOwnSite",
        { "Fn::Sub": "https://${WebDistribution.DomainName}" },
        { "Ref": "AllowedOrigin" }
    ] }]);
    if api.pointer("/CorsConfiguration/AllowOrigins") != Some(&origin) {
        found.push(
            "HttpApi: CORS AllowOrigins must be the site's origin (ServeOwnSite ? the distribution : AllowedOrigin), never \"*\"".to_owned(),
        );
    }
    if api.pointer("/CorsConfiguration/AllowCredentials") == Some(&Value::Bool(true)) {
        found.push(
            "HttpApi: CORS AllowCredentials must be false (tokens travel in a header)".to_owned(),
        );
    }
    for rule in properties("UploadsBucket")
        .pointer("/CorsConfiguration/CorsRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if rule.get("AllowedOrigins") != Some(&origin) {
            found.push("UploadsBucket: CORS AllowedOrigins must be the site's origin".to_owned());
        }
    }
    let default_origin = template
        .parameters
        .get("AllowedOrigin")
        .map(scalar_text)
        .unwrap_or_default();
    // Empty: the template's own site. Anything else must be one origin, never "*".
    if default_origin.contains('*') || default_origin.ends_with('/') {
        found.push(format!(
            "the AllowedOrigin parameter's default must be empty (the template's own site) or one origin, is {default_origin:?}"
        ));
    }

    // The images table: the stream the relay needs, and state that no deploy may delete.
    let table = properties("ImagesTable");
    if table
        .pointer("/StreamSpecification/StreamViewType")
        .map(scalar_text)
        .as_deref()
        != Some("NEW_AND_OLD_IMAGES")
    {
        found.push("ImagesTable: StreamViewType must be NEW_AND_OLD_IMAGES (the relay compares event_id with the old image)".to_owned());
    }
    // State outlives the stack: every bucket, table and user pool, and the queues holding the
    // only copy of failed records. Not the site's bucket: its content is the repository's.
    let stateful: Vec<String> = template
        .resources
        .values()
        .filter(|r| r.logical_id != "WebBucket")
        .filter(|r| {
            matches!(
                r.kind.as_str(),
                "AWS::S3::Bucket" | "AWS::DynamoDB::Table" | "AWS::Cognito::UserPool"
            ) || ["ImageUploadsDLQ", "StreamFailuresQueue", "QuarantineQueue"]
                .contains(&r.logical_id.as_str())
        })
        .map(|r| r.logical_id.clone())
        .collect();
    // DeletionPolicy RetainExceptOnCreate: kept like Retain, except by the rollback of the
    // operation that created it (so a failed first deploy leaves nothing its retry trips on).
    for id in &stateful {
        for (policy, required) in [
            ("DeletionPolicy", "RetainExceptOnCreate"),
            ("UpdateReplacePolicy", "Retain"),
        ] {
            let value = raw
                .get("Resources")
                .and_then(|r| r.get(id.as_str()))
                .and_then(|r| r.get(policy))
                .and_then(serde_yaml_ng::Value::as_str);
            if value != Some(required) {
                found.push(format!("{id}: {policy} must be {required}, is {value:?}"));
            }
        }
    }
    for table in template.of_kind("AWS::DynamoDB::Table") {
        let protected_in = |stage: &'static str| {
            table
                .properties
                .get("DeletionProtectionEnabled")
                .and_then(|v| {
                    template
                        .resolver(&Stage(stage))
                        .resolve(v, &table.logical_id)
                        .ok()
                        .flatten()
                })
                .map(|v| scalar_text(&v))
        };
        if protected_in("prod").as_deref() != Some("true") {
            found.push(format!(
                "{}: deletion protection must be on in prod (DeletionProtectionEnabled)",
                table.logical_id
            ));
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
            "MaximumRetryAttempts: -1",
            "MaximumRetryAttempts: 5",
            "MaximumRetryAttempts must be -1",
        ),
        (
            "MaximumRecordAgeInSeconds: -1",
            "MaximumRecordAgeInSeconds: 3600",
            "MaximumRecordAgeInSeconds must be -1",
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
            "BatchSize: 1\n",
            "BatchSize: 10\n",
            "one upload's crash never spends another's receives",
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
            "Default: 360\n    MinValue: 337",
            "Default: 200\n    MinValue: 25",
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
        // The front door and the relay.
        (
            "StreamViewType: NEW_AND_OLD_IMAGES",
            "StreamViewType: NEW_IMAGE",
            "NEW_AND_OLD_IMAGES",
        ),
        (
            "FilterCriteria:",
            "UnusedCriteria:",
            "a filter on dynamodb.NewImage.event is required",
        ),
        (
            "FunctionResponseTypes: [ReportBatchItemFailures]\n            BisectBatchOnFunctionError: true\n            # Unlike the consumers",
            "FunctionResponseTypes: []\n            BisectBatchOnFunctionError: true\n            # Unlike the consumers",
            "RelayFunction.Outbox: FunctionResponseTypes must be",
        ),
        (
            "BisectBatchOnFunctionError: true\n            # Unlike the consumers",
            "BisectBatchOnFunctionError: false\n            # Unlike the consumers",
            "RelayFunction.Outbox: BisectBatchOnFunctionError must be true",
        ),
        (
            "Past 24 h:\n            # the runbook's \"Replaying the outbox\".\n            MaximumRetryAttempts: -1",
            "Past 24 h:\n            # the runbook's \"Replaying the outbox\".\n            MaximumRetryAttempts: 10000",
            "must never give up before the stream's retention",
        ),
        (
            "outbox\".\n            MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: -1",
            "outbox\".\n            MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: 3600",
            "must never give up on a change for its age",
        ),
        (
            "outbox\".\n            MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: -1\n            DestinationConfig:",
            "outbox\".\n            MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: -1\n            UnusedConfig:",
            "RelayFunction.Outbox: an on-failure destination is required",
        ),
        (
            "Type: AWS::DynamoDB::Table\n    DeletionPolicy: RetainExceptOnCreate",
            "Type: AWS::DynamoDB::Table\n    DeletionPolicy: Delete",
            "LikesTable: DeletionPolicy must be RetainExceptOnCreate",
        ),
        (
            "DeletionProtectionEnabled: !If [IsProd, true, false]",
            "DeletionProtectionEnabled: !If [IsProd, false, false]",
            "deletion protection must be on in prod",
        ),
        (
            "DefaultAuthorizer: JwtAuthorizer",
            "DefaultAuthorizer: AWS_IAM",
            "DefaultAuthorizer must be JwtAuthorizer",
        ),
        (
            "Path: /uploads\n",
            "Path: /uploads\n            Auth:\n              Authorizer: NONE\n",
            "opts out of the JWT authorizer",
        ),
        (
            "Path: /me/notifications/read",
            "Path: /admin/users",
            "exactly the eight routes",
        ),
        ("Timeout: 10\n", "Timeout: 30\n", "must be under 30 s"),
        (
            "AllowOrigins: [!If [ServeOwnSite, !Sub \"https://${WebDistribution.DomainName}\", !Ref AllowedOrigin]]",
            "AllowOrigins: [\"*\"]",
            "CORS AllowOrigins must be the site's origin",
        ),
        (
            "    Default: \"\"\n    # One exact origin",
            "    Default: \"*\"\n    # One exact origin",
            "AllowedOrigin parameter's default must be empty",
        ),
        (
            "Sid: ReadUploads\n                Effect: Allow\n                Action: s3:GetObject",
            "Sid: ReadUploads\n                Effect: Allow\n                Action: [s3:GetObject, kinesis:PutRecords]",
            "ResizeRole: kinesis:PutRecords: resize has no Kinesis action",
        ),
        (
            "Role: !GetAtt RelayRole.Arn",
            "Role: !GetAtt ApiRole.Arn",
            "RelayFunction shares its role ApiRole with ApiFunction",
        ),
        (
            "Value: !Ref RelayFunction }",
            "Value: !Ref NotifierFunction }",
            "RelayFunction: IteratorAge (consumer lag) alarms",
        ),
        (
            "MetricName: DestinationDeliveryFailures\n      Dimensions:\n        - { Name: FunctionName, Value: !Ref RelayFunction }",
            "MetricName: Invocations\n      Dimensions:\n        - { Name: FunctionName, Value: !Ref RelayFunction }",
            "RelayFunction: a DestinationDeliveryFailures alarm is required",
        ),
        (
            "MetricName: 5xx",
            "MetricName: 4xx",
            "an API 5xx rate alarm",
        ),
        // What AWS does that the emulator does not (issue: alarms that reach someone, grants
        // that match the calls, data that survives a stack delete).
        (
            "KmsMasterKeyId: !Ref AlarmTopicKey",
            "KmsMasterKeyId: alias/aws/sns",
            "AlarmTopic: encrypted with",
        ),
        (
            "Action: s3:ListBucket",
            "Action: s3:GetBucketLocation",
            "ResizeRole: s3:ListBucket",
        ),
        (
            "  UploadsBucket:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: RetainExceptOnCreate",
            "  UploadsBucket:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: Retain",
            "UploadsBucket: DeletionPolicy must be RetainExceptOnCreate",
        ),
        (
            "  QuarantineQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: RetainExceptOnCreate\n    UpdateReplacePolicy: Retain",
            "  QuarantineQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: RetainExceptOnCreate",
            "QuarantineQueue: UpdateReplacePolicy must be Retain",
        ),
        (
            "      DeletionProtectionEnabled: !If [IsProd, true, false]\n\n  NotificationsTable:",
            "\n  NotificationsTable:",
            "LikesTable: deletion protection must be on in prod",
        ),
        (
            "        - { Name: FunctionName, Value: !Ref LikeCounterFunction }\n      Statistic: Sum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: 0\n      ComparisonOperator: GreaterThanThreshold\n      TreatMissingData: notBreaching\n      AlarmActions: [!Ref AlarmTopic]\n      OKActions: [!Ref AlarmTopic]\n\n  # ---- notifier ----",
            "        - { Name: FunctionName, Value: !Ref NotifierFunction }\n      Statistic: Sum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: 0\n      ComparisonOperator: GreaterThanThreshold\n      TreatMissingData: notBreaching\n      AlarmActions: [!Ref AlarmTopic]\n      OKActions: [!Ref AlarmTopic]\n\n  # ---- notifier ----",
            "LikeCounterFunction: a DestinationDeliveryFailures alarm is required",
        ),
        (
            "Threshold: 48000",
            "Threshold: 60000",
            "ResizeFunction: a Duration alarm at most 80%",
        ),
        (
            "                - { Name: TableName, Value: !Ref NotificationsTable }\n            Period: 60\n            Stat: Sum\n        - Id: writes",
            "                - { Name: TableName, Value: !Ref LikesTable }\n            Period: 60\n            Stat: Sum\n        - Id: writes",
            "NotificationsTable: a throttling alarm",
        ),
        (
            "MetricName: WriteProvisionedThroughputExceeded",
            "MetricName: IncomingRecords",
            "a write throttling alarm",
        ),
        (
            "Threshold: 20000\n",
            "Threshold: 60000\n",
            "IteratorAge levels must be 20000 and 200000",
        ),
        (
            "[ \"snapglow\", \"RecordsProcessed\", \"function\", \"${RelayFunction}\", { \"label\": \"relay\" } ]",
            "[ \"snapglow\", \"RecordsProcessed\", \"function\", \"${ApiFunction}\", { \"label\": \"api\" } ]",
            "RelayFunction: the dashboard's outcome graphs must show it",
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
