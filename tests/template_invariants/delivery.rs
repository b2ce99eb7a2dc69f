//! Delivery: every upload reaches resize and every event its readers, none is given up or
//! skipped, and none counts twice.

use serde_json::{Value, json};
use snapglow_local::template::{Template, scalar_text};

use crate::support::Change::{Add, Remove, Rename, Set};
use crate::support::{Event, Yaml, events, int, properties, setting};
use crate::{Invariant, mistake};

pub const INVARIANTS: &[Invariant] = &[
    // ---- uploads -> resize
    Invariant {
        name: "uploads notify the uploads queue",
        check: uploads_notify_the_queue,
        mistakes: &[mistake(
            "notified of deletions instead",
            &[Set(
                "Resources.UploadsBucket.Properties.NotificationConfiguration.QueueConfigurations.0.Event",
                "s3:ObjectRemoved:*",
            )],
            "UploadsBucket must notify ImageUploadsQueue of s3:ObjectCreated:*",
        )],
    },
    Invariant {
        name: "only uploads/ triggers resize",
        check: only_uploads_trigger_resize,
        mistakes: &[mistake(
            "another prefix",
            &[Set(
                "Resources.UploadsBucket.Properties.NotificationConfiguration.QueueConfigurations.0.Filter.S3Key.Rules.0.Value",
                "photos/",
            )],
            "filtered on the uploads/ prefix",
        )],
    },
    Invariant {
        name: "an upload stays hidden while resize may still run",
        check: visibility_outlasts_resize,
        mistakes: &[mistake(
            "a visibility timeout of 60 s",
            &[Set(
                "Resources.ImageUploadsQueue.Properties.VisibilityTimeout",
                "60",
            )],
            "VisibilityTimeout must be >= 6 x resize Timeout",
        )],
    },
    Invariant {
        name: "the uploads queue redrives to its DLQ",
        check: uploads_redrive_to_the_dlq,
        mistakes: &[mistake(
            "redriven to the quarantine",
            &[Set(
                "Resources.ImageUploadsQueue.Properties.RedrivePolicy.deadLetterTargetArn",
                "!GetAtt QuarantineQueue.Arn",
            )],
            "ImageUploadsQueue must redrive to ImageUploadsDLQ",
        )],
    },
    Invariant {
        name: "throttles cannot spend an upload's receives",
        check: receives_outlast_throttles,
        mistakes: &[mistake(
            "one receive",
            &[Set(
                "Resources.ImageUploadsQueue.Properties.RedrivePolicy.maxReceiveCount",
                "1",
            )],
            "maxReceiveCount must be >= 5",
        )],
    },
    Invariant {
        name: "large SQS batches wait to fill",
        check: large_batches_wait,
        mistakes: &[mistake(
            "11 uploads a batch, no window",
            &[Set(
                "Resources.ResizeFunction.Properties.Events.Uploads.Properties.BatchSize",
                "11",
            )],
            "ResizeFunction.Uploads: BatchSize > 10 needs MaximumBatchingWindowInSeconds >= 1",
        )],
    },
    Invariant {
        name: "resize takes one upload per invocation",
        check: resize_takes_one_upload,
        mistakes: &[mistake(
            "10 uploads a batch",
            &[Set(
                "Resources.ResizeFunction.Properties.Events.Uploads.Properties.BatchSize",
                "10",
            )],
            "one upload's crash never spends another's receives",
        )],
    },
    Invariant {
        name: "resize never writes where uploads trigger it",
        check: renditions_elsewhere,
        mistakes: &[mistake(
            "renditions into the uploads bucket",
            &[Set(
                "Resources.ResizeFunction.Properties.Environment.Variables.RENDITIONS_BUCKET",
                "!Ref UploadsBucket",
            )],
            "recursive trigger",
        )],
    },
    Invariant {
        name: "resize does not write the stream",
        check: resize_leaves_the_stream_to_the_relay,
        mistakes: &[mistake(
            "resize given the stream",
            &[Add(
                "Resources.ResizeFunction.Properties.Environment.Variables.STREAM_NAME",
                "!Ref ImageSocialEvents",
            )],
            "resize must not write the stream (STREAM_NAME)",
        )],
    },
    // ---- every batch and stream mapping
    Invariant {
        name: "batch mappings report item failures",
        check: batches_report_item_failures,
        mistakes: &[
            mistake(
                "resize's mapping without them",
                &[Set(
                    "Resources.ResizeFunction.Properties.Events.Uploads.Properties.FunctionResponseTypes",
                    "[]",
                )],
                "ResizeFunction.Uploads: FunctionResponseTypes must be [ReportBatchItemFailures]",
            ),
            mistake(
                "the relay's mapping without them",
                &[Set(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.FunctionResponseTypes",
                    "[]",
                )],
                "RelayFunction.Outbox: FunctionResponseTypes must be",
            ),
        ],
    },
    Invariant {
        name: "stream mappings start at TRIM_HORIZON",
        check: streams_start_at_trim_horizon,
        mistakes: &[
            mistake(
                "like-counter starts at LATEST",
                &[Set(
                    "Resources.LikeCounterFunction.Properties.Events.SocialEvents.Properties.StartingPosition",
                    "LATEST",
                )],
                "LikeCounterFunction.SocialEvents: StartingPosition must be TRIM_HORIZON",
            ),
            mistake(
                "the relay starts at LATEST",
                &[Set(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.StartingPosition",
                    "LATEST",
                )],
                "RelayFunction.Outbox: StartingPosition must be TRIM_HORIZON",
            ),
        ],
    },
    Invariant {
        name: "stream mappings bisect a failing batch",
        check: streams_bisect,
        mistakes: &[
            mistake(
                "like-counter does not bisect",
                &[Set(
                    "Resources.LikeCounterFunction.Properties.Events.SocialEvents.Properties.BisectBatchOnFunctionError",
                    "false",
                )],
                "BisectBatchOnFunctionError must be true",
            ),
            mistake(
                "the relay does not bisect",
                &[Set(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.BisectBatchOnFunctionError",
                    "false",
                )],
                "RelayFunction.Outbox: BisectBatchOnFunctionError must be true",
            ),
        ],
    },
    Invariant {
        name: "Kinesis readers never give a record up",
        check: kinesis_readers_never_give_up,
        mistakes: &[
            mistake(
                "5 retries",
                &[Set(
                    "Resources.LikeCounterFunction.Properties.Events.SocialEvents.Properties.MaximumRetryAttempts",
                    "5",
                )],
                "MaximumRetryAttempts must be -1",
            ),
            mistake(
                "an hour's age limit",
                &[Set(
                    "Resources.LikeCounterFunction.Properties.Events.SocialEvents.Properties.MaximumRecordAgeInSeconds",
                    "3600",
                )],
                "MaximumRecordAgeInSeconds must be -1",
            ),
        ],
    },
    Invariant {
        name: "the relay never gives a change up",
        check: relay_never_gives_up,
        mistakes: &[
            mistake(
                "10,000 retries",
                &[Set(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.MaximumRetryAttempts",
                    "10000",
                )],
                "must never give up before the stream's retention",
            ),
            mistake(
                "an hour's age limit",
                &[Set(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.MaximumRecordAgeInSeconds",
                    "3600",
                )],
                "must never give up on a change for its age",
            ),
        ],
    },
    Invariant {
        name: "stream mappings describe what they give up on",
        check: streams_have_a_destination,
        mistakes: &[
            mistake(
                "the relay without a destination",
                &[Rename(
                    "Resources.RelayFunction.Properties.Events.Outbox.Properties.DestinationConfig",
                    "UnusedConfig",
                )],
                "RelayFunction.Outbox: an on-failure destination is required",
            ),
            mistake(
                "notifier without a destination",
                &[Remove(
                    "Resources.NotifierFunction.Properties.Events.SocialEvents.Properties.DestinationConfig",
                )],
                "NotifierFunction.SocialEvents: an on-failure destination is required",
            ),
        ],
    },
    // ---- the outbox
    Invariant {
        name: "only changes carrying an event invoke the relay",
        check: relay_reads_only_events,
        mistakes: &[mistake(
            "no filter",
            &[Rename(
                "Resources.RelayFunction.Properties.Events.Outbox.Properties.FilterCriteria",
                "UnusedCriteria",
            )],
            "a filter on dynamodb.NewImage.event is required",
        )],
    },
    Invariant {
        name: "the relay sees a change's old image",
        check: relay_sees_old_images,
        mistakes: &[mistake(
            "new images only",
            &[Set(
                "Resources.ImagesTable.Properties.StreamSpecification.StreamViewType",
                "NEW_IMAGE",
            )],
            "NEW_AND_OLD_IMAGES",
        )],
    },
    // ---- dedup records
    Invariant {
        name: "tables expire their dedup records",
        check: tables_expire_records,
        mistakes: &[mistake(
            "no TTL on the images table",
            &[Set(
                "Resources.ImagesTable.Properties.TimeToLiveSpecification.Enabled",
                "false",
            )],
            "ImagesTable must have TTL enabled",
        )],
    },
    Invariant {
        name: "dedup records outlive every redelivery",
        check: dedup_outlives_redelivery,
        mistakes: &[mistake(
            "200 hours",
            &[
                Set("Parameters.DedupRetentionHours.Default", "200"),
                Set("Parameters.DedupRetentionHours.MinValue", "25"),
            ],
            "must exceed the stream's retention",
        )],
    },
];

fn uploads_notify_the_queue(template: &Template, _: &Yaml) -> Vec<String> {
    let notification = properties(template, "UploadsBucket")
        .pointer("/NotificationConfiguration/QueueConfigurations/0")
        .cloned()
        .unwrap_or(Value::Null);
    if notification.get("Queue") != Some(&json!({ "Fn::GetAtt": ["ImageUploadsQueue", "Arn"] }))
        || scalar_text(&notification["Event"]) != "s3:ObjectCreated:*"
    {
        return vec![
            "UploadsBucket must notify ImageUploadsQueue of s3:ObjectCreated:*".to_owned(),
        ];
    }
    Vec::new()
}

fn only_uploads_trigger_resize(template: &Template, _: &Yaml) -> Vec<String> {
    let prefix = properties(template, "UploadsBucket")
        .pointer("/NotificationConfiguration/QueueConfigurations/0/Filter/S3Key/Rules/0/Value")
        .map(scalar_text);
    if prefix.as_deref() != Some("uploads/") {
        return vec!["the upload notification must be filtered on the uploads/ prefix".to_owned()];
    }
    Vec::new()
}

fn visibility_outlasts_resize(template: &Template, _: &Yaml) -> Vec<String> {
    let resize = properties(template, "ResizeFunction");
    let resize_timeout = int(Some(&setting(template, &resize, "Timeout"))).unwrap_or(3);
    let queue = properties(template, "ImageUploadsQueue");
    if int(queue.get("VisibilityTimeout")).unwrap_or(30) < 6 * resize_timeout {
        return vec![format!(
            "ImageUploadsQueue VisibilityTimeout must be >= 6 x resize Timeout ({resize_timeout} s)"
        )];
    }
    Vec::new()
}

fn uploads_redrive_to_the_dlq(template: &Template, _: &Yaml) -> Vec<String> {
    if properties(template, "ImageUploadsQueue").pointer("/RedrivePolicy/deadLetterTargetArn")
        != Some(&json!({ "Fn::GetAtt": ["ImageUploadsDLQ", "Arn"] }))
    {
        return vec!["ImageUploadsQueue must redrive to ImageUploadsDLQ".to_owned()];
    }
    Vec::new()
}

fn receives_outlast_throttles(template: &Template, _: &Yaml) -> Vec<String> {
    let queue = properties(template, "ImageUploadsQueue");
    if int(queue.pointer("/RedrivePolicy/maxReceiveCount")).unwrap_or(0) < 5 {
        return vec!["maxReceiveCount must be >= 5 (throttles use up receives)".to_owned()];
    }
    Vec::new()
}

fn sqs(template: &Template) -> Vec<Event> {
    events(template)
        .into_iter()
        .filter(|e| e.kind == "SQS")
        .collect()
}

fn large_batches_wait(template: &Template, _: &Yaml) -> Vec<String> {
    sqs(template)
        .iter()
        .filter(|e| {
            let window = int(e.props.get("MaximumBatchingWindowInSeconds")).unwrap_or(0);
            let batch = int(e.props.get("BatchSize")).unwrap_or(10);
            batch > 10 && window < 1
        })
        .map(|e| {
            format!(
                "{}: BatchSize > 10 needs MaximumBatchingWindowInSeconds >= 1",
                e.id()
            )
        })
        .collect()
}

/// A crash or a timeout fails a whole batch and spends a receive of each of its messages: an
/// upload must never share one with a hostile file.
fn resize_takes_one_upload(template: &Template, _: &Yaml) -> Vec<String> {
    sqs(template)
        .iter()
        .filter(|e| e.function == "ResizeFunction" && int(e.props.get("BatchSize")).unwrap_or(10) != 1)
        .map(|e| {
            format!(
                "{}: resize takes BatchSize 1, so one upload's crash never spends another's receives",
                e.id()
            )
        })
        .collect()
}

fn renditions_elsewhere(template: &Template, _: &Yaml) -> Vec<String> {
    if properties(template, "ResizeFunction").pointer("/Environment/Variables/RENDITIONS_BUCKET")
        != Some(&json!({ "Ref": "RenditionsBucket" }))
    {
        return vec![
            "resize must write to RenditionsBucket, never the uploads bucket (recursive trigger)"
                .to_owned(),
        ];
    }
    Vec::new()
}

fn resize_leaves_the_stream_to_the_relay(template: &Template, _: &Yaml) -> Vec<String> {
    if properties(template, "ResizeFunction")
        .pointer("/Environment/Variables/STREAM_NAME")
        .is_some()
    {
        return vec![
            "resize must not write the stream (STREAM_NAME): the relay is its one writer"
                .to_owned(),
        ];
    }
    Vec::new()
}

fn batches_report_item_failures(template: &Template, _: &Yaml) -> Vec<String> {
    events(template)
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "SQS" | "Kinesis" | "DynamoDB"))
        .filter(|e| e.props.get("FunctionResponseTypes") != Some(&json!(["ReportBatchItemFailures"])))
        .map(|e| {
            format!(
                "{}: FunctionResponseTypes must be [ReportBatchItemFailures], or failed records are deleted/checkpointed",
                e.id()
            )
        })
        .collect()
}

/// The Kinesis consumers' mappings and the relay's on the images table's stream (the outbox).
fn streams(template: &Template) -> Vec<Event> {
    events(template)
        .into_iter()
        .filter(|e| e.kind == "Kinesis" || e.kind == "DynamoDB")
        .collect()
}

fn streams_start_at_trim_horizon(template: &Template, _: &Yaml) -> Vec<String> {
    streams(template)
        .iter()
        .filter(|e| scalar_text(&e.props["StartingPosition"]) != "TRIM_HORIZON")
        .map(|e| format!("{}: StartingPosition must be TRIM_HORIZON", e.id()))
        .collect()
}

fn streams_bisect(template: &Template, _: &Yaml) -> Vec<String> {
    streams(template)
        .iter()
        .filter(|e| e.props.get("BisectBatchOnFunctionError") != Some(&Value::Bool(true)))
        .map(|e| format!("{}: BisectBatchOnFunctionError must be true", e.id()))
        .collect()
}

/// Poison is quarantined in code: a limit here only ever gives up healthy records (as
/// pointers that expire with the stream).
fn kinesis_readers_never_give_up(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for e in streams(template).iter().filter(|e| e.kind == "Kinesis") {
        let id = e.id();
        match int(e.props.get("MaximumRetryAttempts")) {
            Some(-1) => {}
            other => found.push(format!("{id}: MaximumRetryAttempts must be -1 (a limit gives up healthy records; poison is quarantined in code), is {other:?}")),
        }
        match int(e.props.get("MaximumRecordAgeInSeconds")) {
            Some(-1) => {}
            other => found.push(format!(
                "{id}: MaximumRecordAgeInSeconds must be -1 (an age limit gives up healthy records during an outage), is {other:?}"
            )),
        }
    }
    found
}

/// The images table's stream (the outbox): unlike the Kinesis consumers, its reader must never
/// give up on a change, for a change it skips reaches no consumer.
/// Whether `e` reads the images table's stream: the outbox, which only the relay reads.
fn reads_the_outbox(e: &Event) -> bool {
    e.kind == "DynamoDB"
        && e.props
            .get("Stream")
            .is_some_and(|s| s.to_string().contains("ImagesTable"))
}

fn relay_never_gives_up(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for e in streams(template).iter().filter(|e| reads_the_outbox(e)) {
        let id = e.id();
        match int(e.props.get("MaximumRetryAttempts")) {
            None | Some(-1) => {}
            other => found.push(format!("{id}: MaximumRetryAttempts must be -1 (a count is spent in minutes by fast partial failures; must never give up before the stream's retention), is {other:?}")),
        }
        match int(e.props.get("MaximumRecordAgeInSeconds")) {
            None | Some(-1) => {}
            other => found.push(format!("{id}: MaximumRecordAgeInSeconds must be -1 (must never give up on a change for its age), is {other:?}")),
        }
    }
    found
}

fn streams_have_a_destination(template: &Template, _: &Yaml) -> Vec<String> {
    streams(template)
        .iter()
        .filter(|e| {
            e.props
                .pointer("/DestinationConfig/OnFailure/Destination")
                .is_none()
        })
        .map(|e| format!("{}: an on-failure destination is required", e.id()))
        .collect()
}

fn relay_reads_only_events(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for e in streams(template).iter().filter(|e| reads_the_outbox(e)) {
        let filters = e
            .props
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
            found.push(format!("{}: a filter on dynamodb.NewImage.event is required (only changes carrying an event may invoke it)", e.id()));
        }
    }
    found
}

fn relay_sees_old_images(template: &Template, _: &Yaml) -> Vec<String> {
    let view = properties(template, "ImagesTable")
        .pointer("/StreamSpecification/StreamViewType")
        .map(scalar_text);
    if view.as_deref() != Some("NEW_AND_OLD_IMAGES") {
        return vec!["ImagesTable: StreamViewType must be NEW_AND_OLD_IMAGES (the relay compares event_id with the old image)".to_owned()];
    }
    Vec::new()
}

fn tables_expire_records(template: &Template, _: &Yaml) -> Vec<String> {
    ["LikesTable", "NotificationsTable", "ImagesTable"]
        .into_iter()
        .filter(|id| {
            properties(template, id)
                .pointer("/TimeToLiveSpecification/Enabled")
                .map(scalar_text)
                .as_deref()
                != Some("true")
        })
        .map(|id| format!("{id} must have TTL enabled"))
        .collect()
}

/// Tables expire dedup records, and only after the stream and the quarantine can no longer
/// deliver them again.
fn dedup_outlives_redelivery(template: &Template, _: &Yaml) -> Vec<String> {
    let retention_hours =
        int(properties(template, "ImageSocialEvents").get("RetentionPeriodHours")).unwrap_or(24);
    let dedup_hours = template
        .parameters
        .get("DedupRetentionHours")
        .and_then(|v| int(Some(v)))
        .unwrap_or(0);
    let quarantine_hours =
        int(properties(template, "QuarantineQueue").get("MessageRetentionPeriod")).unwrap_or(0)
            / 3600;
    if dedup_hours <= retention_hours.max(quarantine_hours) {
        return vec![format!(
            "DedupRetentionHours ({dedup_hours}) must exceed the stream's retention ({retention_hours} h) and the quarantine's ({quarantine_hours} h), or a redriven record counts again"
        )];
    }
    Vec::new()
}
