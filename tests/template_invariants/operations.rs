//! Operations: queues encrypted, failed records kept, state that outlives the stack, and the
//! alarms the runbook relies on, which reach someone.

use serde_json::{Value, json};
use snapglow_local::template::{Template, scalar_text};

use crate::support::Change::{Edit, Remove, Set};
use crate::support::{Stage, Yaml, alarms, alarms_on, int, reads};
use crate::{Invariant, mistake};

pub const INVARIANTS: &[Invariant] = &[
    // ---- queues and state
    Invariant {
        name: "queues are encrypted",
        check: queues_are_encrypted,
        mistakes: &[mistake(
            "the uploads queue in the clear",
            &[Remove(
                "Resources.ImageUploadsQueue.Properties.SqsManagedSseEnabled",
            )],
            "ImageUploadsQueue: queues must be encrypted",
        )],
    },
    Invariant {
        name: "failed records are kept 14 days",
        check: failed_records_kept,
        mistakes: &[mistake(
            "a DLQ that keeps 4 days",
            &[Set(
                "Resources.ImageUploadsDLQ.Properties.MessageRetentionPeriod",
                "345600",
            )],
            "ImageUploadsDLQ: MessageRetentionPeriod must be 14 days",
        )],
    },
    Invariant {
        name: "tables can be restored to a point in time",
        check: tables_recover,
        mistakes: &[mistake(
            "no point-in-time recovery",
            &[Set(
                "Resources.LikesTable.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
                "false",
            )],
            "LikesTable: point-in-time recovery must be on",
        )],
    },
    Invariant {
        name: "state outlives the stack",
        check: state_is_retained,
        mistakes: &[
            mistake(
                "a table deleted with the stack",
                &[Set("Resources.LikesTable.DeletionPolicy", "Delete")],
                "LikesTable: DeletionPolicy must be RetainExceptOnCreate",
            ),
            mistake(
                "a bucket a failed first deploy leaves behind",
                &[Set("Resources.UploadsBucket.DeletionPolicy", "Retain")],
                "UploadsBucket: DeletionPolicy must be RetainExceptOnCreate",
            ),
            mistake(
                "a queue a replacement deletes",
                &[Remove("Resources.QuarantineQueue.UpdateReplacePolicy")],
                "QuarantineQueue: UpdateReplacePolicy must be Retain",
            ),
        ],
    },
    Invariant {
        name: "tables refuse deletion in prod",
        check: tables_protected_in_prod,
        mistakes: &[
            mistake(
                "protection off in prod too",
                &[Set(
                    "Resources.LikesTable.Properties.DeletionProtectionEnabled.1",
                    "false",
                )],
                "deletion protection must be on in prod",
            ),
            mistake(
                "no protection setting",
                &[Remove(
                    "Resources.LikesTable.Properties.DeletionProtectionEnabled",
                )],
                "LikesTable: deletion protection must be on in prod",
            ),
        ],
    },
    // ---- alarms that reach someone
    Invariant {
        name: "alarms reach on-call through a key CloudWatch may use",
        check: alarm_topic_reachable,
        mistakes: &[mistake(
            "the AWS managed SNS key",
            &[Set(
                "Resources.AlarmTopic.Properties.KmsMasterKeyId",
                "alias/aws/sns",
            )],
            "AlarmTopic: encrypted with",
        )],
    },
    Invariant {
        name: "every function pages on errors and throttles",
        check: functions_page_on_errors_and_throttles,
        mistakes: &[
            mistake(
                "no throttles alarm for notifier",
                &[Remove("Resources.NotifierThrottles")],
                "NotifierFunction: a Throttles alarm is required",
            ),
            mistake(
                "no errors alarm for the api",
                &[Remove("Resources.ApiErrors")],
                "ApiFunction: a Errors alarm is required",
            ),
        ],
    },
    Invariant {
        name: "stream readers page on lag",
        check: stream_readers_page_on_lag,
        mistakes: &[
            mistake(
                "like-counter's warning on another metric",
                &[Set(
                    "Resources.LikeCounterIteratorAgeWarning.Properties.MetricName",
                    "Invocations",
                )],
                "LikeCounterFunction: IteratorAge (consumer lag) alarms",
            ),
            mistake(
                "the relay's warning on notifier",
                &[Set(
                    "Resources.RelayIteratorAgeWarning.Properties.Dimensions.0.Value",
                    "!Ref NotifierFunction",
                )],
                "RelayFunction: IteratorAge (consumer lag) alarms",
            ),
        ],
    },
    Invariant {
        name: "lag pages at 1,000 and 10,000 records",
        check: lag_levels,
        mistakes: &[mistake(
            "a warning at 60 s",
            &[Set(
                "Resources.LikeCounterIteratorAgeWarning.Properties.Threshold",
                "60000",
            )],
            "IteratorAge levels must be 20000 and 200000",
        )],
    },
    Invariant {
        name: "records a mapping gives up on cannot vanish unnoticed",
        check: destination_failures_page,
        mistakes: &[
            mistake(
                "the relay's alarm on another metric",
                &[Set(
                    "Resources.RelayDestinationDeliveryFailures.Properties.MetricName",
                    "Invocations",
                )],
                "RelayFunction: a DestinationDeliveryFailures alarm is required",
            ),
            mistake(
                "like-counter's alarm on notifier",
                &[Set(
                    "Resources.LikeCounterDestinationDeliveryFailures.Properties.Dimensions.0.Value",
                    "!Ref NotifierFunction",
                )],
                "LikeCounterFunction: a DestinationDeliveryFailures alarm is required",
            ),
        ],
    },
    Invariant {
        name: "the DLQ and the stream-failures queue page when not empty",
        check: failure_queues_page,
        mistakes: &[
            mistake(
                "no DLQ alarm",
                &[Remove("Resources.UploadsDeadLetters")],
                "ImageUploadsDLQ: a not-empty alarm is required",
            ),
            mistake(
                "no stream-failures alarm",
                &[Remove("Resources.StreamRecordsGivenUp")],
                "StreamFailuresQueue: a not-empty alarm is required",
            ),
        ],
    },
    Invariant {
        name: "resize pages before it times out",
        check: resize_pages_before_its_timeout,
        mistakes: &[mistake(
            "the alarm at the timeout itself",
            &[Set(
                "Resources.ResizeNearTimeout.Properties.Threshold",
                "60000",
            )],
            "ResizeFunction: a Duration alarm at most 80%",
        )],
    },
    Invariant {
        name: "every table's throttling pages",
        check: tables_page_on_throttling,
        mistakes: &[mistake(
            "the notifications alarm reading the likes table",
            &[Set(
                "Resources.NotificationsTableThrottled.Properties.Metrics.Id=reads.MetricStat.Metric.Dimensions.0.Value",
                "!Ref LikesTable",
            )],
            "NotificationsTable: a throttling alarm",
        )],
    },
    Invariant {
        name: "the stream's write throttling pages",
        check: stream_pages_on_write_throttling,
        mistakes: &[mistake(
            "the alarm on incoming records",
            &[Set(
                "Resources.StreamWritesThrottled.Properties.MetricName",
                "IncomingRecords",
            )],
            "a write throttling alarm",
        )],
    },
    Invariant {
        name: "the HTTP API pages on 5xx, latency and throttling",
        check: api_pages,
        mistakes: &[
            mistake(
                "the error rate of 4xx",
                &[Set(
                    "Resources.ApiServerErrorRate.Properties.Metrics.Id=errors.MetricStat.Metric.MetricName",
                    "4xx",
                )],
                "an API 5xx rate alarm",
            ),
            mistake(
                "latency of the integration only",
                &[Set(
                    "Resources.ApiLatencyP99.Properties.MetricName",
                    "IntegrationLatency",
                )],
                "an API latency alarm",
            ),
            mistake(
                "throttling on a metric nothing writes",
                &[Set(
                    "Resources.ApiThrottled.Properties.MetricName",
                    "Throttled",
                )],
                "an API throttling alarm",
            ),
        ],
    },
    Invariant {
        name: "API Gateway's throttling is counted from the access log",
        check: api_throttling_counted,
        mistakes: &[mistake(
            "the filter writing another metric",
            &[Set(
                "Resources.ApiGatewayThrottledFilter.Properties.MetricTransformations.0.MetricName",
                "Throttled",
            )],
            "HttpApi: the ApiGatewayThrottled metric filter on the access log is required",
        )],
    },
    Invariant {
        name: "the dashboard shows every batch function's outcomes",
        check: dashboard_shows_outcomes,
        mistakes: &[mistake(
            "the relay's graph showing the api",
            &[Edit(
                "Resources.Dashboard.Properties.DashboardBody",
                "[ \"snapglow\", \"RecordsProcessed\", \"function\", \"${RelayFunction}\", { \"label\": \"relay\" } ]",
                "[ \"snapglow\", \"RecordsProcessed\", \"function\", \"${ApiFunction}\", { \"label\": \"api\" } ]",
            )],
            "RelayFunction: the dashboard's outcome graphs must show it",
        )],
    },
];

/// The queues that hold the only copy of failed records.
const FAILURE_QUEUES: [&str; 3] = ["ImageUploadsDLQ", "StreamFailuresQueue", "QuarantineQueue"];

fn queues_are_encrypted(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::SQS::Queue")
        .filter(|q| {
            q.properties.get("SqsManagedSseEnabled") != Some(&Value::Bool(true))
                && q.properties.get("KmsMasterKeyId").is_none()
        })
        .map(|q| format!("{}: queues must be encrypted", q.logical_id))
        .collect()
}

fn failed_records_kept(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for id in FAILURE_QUEUES {
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
    found
}

fn tables_recover(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::DynamoDB::Table")
        .filter(|t| {
            t.properties
                .pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled")
                != Some(&Value::Bool(true))
        })
        .map(|t| format!("{}: point-in-time recovery must be on", t.logical_id))
        .collect()
}

/// Every bucket, table and user pool, and the queues holding the only copy of failed records,
/// are kept by a stack delete or a replacement. Not the site's bucket: its content is the
/// repository's; nor live push's connections table: its items live two hours at most
/// (tickets, open connections), and a deleted stack's connections go with it.
/// RetainExceptOnCreate: kept like Retain, except by the rollback of the
/// operation that created it (so a failed first deploy leaves nothing its retry trips on).
fn state_is_retained(template: &Template, raw: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let stateful = template
        .resources
        .values()
        .filter(|r| !matches!(r.logical_id.as_str(), "WebBucket" | "ConnectionsTable"))
        .filter(|r| {
            matches!(
                r.kind.as_str(),
                "AWS::S3::Bucket" | "AWS::DynamoDB::Table" | "AWS::Cognito::UserPool"
            ) || FAILURE_QUEUES.contains(&r.logical_id.as_str())
        });
    for resource in stateful {
        let id = &resource.logical_id;
        for (policy, required) in [
            ("DeletionPolicy", "RetainExceptOnCreate"),
            ("UpdateReplacePolicy", "Retain"),
        ] {
            let value = raw
                .get("Resources")
                .and_then(|r| r.get(id.as_str()))
                .and_then(|r| r.get(policy))
                .and_then(Yaml::as_str);
            if value != Some(required) {
                found.push(format!("{id}: {policy} must be {required}, is {value:?}"));
            }
        }
    }
    found
}

fn tables_protected_in_prod(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for table in template.of_kind("AWS::DynamoDB::Table") {
        let in_prod = table
            .properties
            .get("DeletionProtectionEnabled")
            .and_then(|v| {
                template
                    .resolver(&Stage("prod"))
                    .resolve(v, &table.logical_id)
                    .ok()
                    .flatten()
            })
            .map(|v| scalar_text(&v));
        if in_prod.as_deref() != Some("true") {
            found.push(format!(
                "{}: deletion protection must be on in prod (DeletionProtectionEnabled)",
                table.logical_id
            ));
        }
    }
    found
}

/// CloudWatch can publish to an encrypted topic only through a customer managed key whose
/// policy lets cloudwatch.amazonaws.com use it.
fn alarm_topic_reachable(template: &Template, _: &Yaml) -> Vec<String> {
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
        return vec![format!(
            "AlarmTopic: encrypted with {topic_key}: CloudWatch cannot publish through an AWS managed key; use a key of this template whose policy allows cloudwatch.amazonaws.com"
        )];
    }
    Vec::new()
}

/// `{"Ref": "<function>"}`, as an alarm's dimension names a function.
fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

fn functions_page_on_errors_and_throttles(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            if alarms_on(template, metric, &reference(&function.logical_id)) == 0 {
                found.push(format!(
                    "{}: a {metric} alarm is required",
                    function.logical_id
                ));
            }
        }
    }
    found
}

fn stream_readers_page_on_lag(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::Serverless::Function")
        .map(|f| f.logical_id.as_str())
        .filter(|id| reads(template, id, "Kinesis") || reads(template, id, "DynamoDB"))
        .filter(|id| alarms_on(template, "IteratorAge", &reference(id)) < 2)
        .map(|id| format!("{id}: IteratorAge (consumer lag) alarms at a warning and a critical level are required"))
        .collect()
}

/// The lag levels are 1,000 and 10,000 records at the stated 50 records/s per shard.
fn lag_levels(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let reference = reference(&function.logical_id).to_string();
        for alarm in alarms(template).into_iter().filter(|a| {
            a.get("MetricName").and_then(Value::as_str) == Some("IteratorAge")
                && a.get("Dimensions")
                    .is_some_and(|d| d.to_string().contains(&reference))
        }) {
            let threshold = int(alarm.get("Threshold"));
            if !matches!(threshold, Some(20_000) | Some(200_000)) {
                found.push(format!(
                    "{}: IteratorAge levels must be 20000 and 200000 ms (1,000 and 10,000 records at 50/s), found {threshold:?}",
                    function.logical_id
                ));
            }
        }
    }
    found
}

/// A batch a mapping gives up on is recoverable only if the on-failure destination got its
/// pointer: a failed delivery loses it silently.
fn destination_failures_page(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::Serverless::Function")
        .filter(|f| {
            f.properties
                .get("Events")
                .is_some_and(|events| events.to_string().contains("\"OnFailure\""))
        })
        .filter(|f| {
            alarms_on(
                template,
                "DestinationDeliveryFailures",
                &reference(&f.logical_id),
            ) == 0
        })
        .map(|f| {
            format!(
                "{}: a DestinationDeliveryFailures alarm is required",
                f.logical_id
            )
        })
        .collect()
}

fn failure_queues_page(template: &Template, _: &Yaml) -> Vec<String> {
    ["ImageUploadsDLQ", "StreamFailuresQueue"]
        .into_iter()
        .filter(|queue| {
            let name = json!({ "Fn::GetAtt": [queue, "QueueName"] });
            alarms_on(template, "ApproximateNumberOfMessagesVisible", &name) == 0
        })
        .map(|queue| format!("{queue}: a not-empty alarm is required"))
        .collect()
}

/// The Duration alarm must fire before a render times out.
fn resize_pages_before_its_timeout(template: &Template, _: &Yaml) -> Vec<String> {
    let resize_timeout_ms = template
        .resources
        .get("ResizeFunction")
        .and_then(|r| int(r.properties.get("Timeout")))
        .unwrap_or(0)
        * 1000;
    let near_timeout = alarms(template).into_iter().find(|a| {
        a.get("MetricName").and_then(Value::as_str) == Some("Duration")
            && a.to_string().contains("\"Ref\":\"ResizeFunction\"")
    });
    match near_timeout.and_then(|a| int(a.get("Threshold"))) {
        Some(t) if t <= resize_timeout_ms * 8 / 10 && t > 0 => Vec::new(),
        other => vec![format!(
            "ResizeFunction: a Duration alarm at most 80% of its timeout ({resize_timeout_ms} ms) is required, found {other:?}"
        )],
    }
}

/// Reads and writes of every table: each metric with its own dimensions, top-level or one of a
/// metric-math alarm's.
fn tables_page_on_throttling(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for table in template.of_kind("AWS::DynamoDB::Table") {
        let reference = reference(&table.logical_id).to_string();
        let watched = |metric: &str| {
            alarms(template).into_iter().any(|a| {
                let mut stats = vec![a.clone()];
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
    found
}

fn stream_pages_on_write_throttling(template: &Template, _: &Yaml) -> Vec<String> {
    let stream = reference("ImageSocialEvents");
    if alarms_on(template, "WriteProvisionedThroughputExceeded", &stream) == 0 {
        return vec!["ImageSocialEvents: a write throttling alarm (WriteProvisionedThroughputExceeded) is required".to_owned()];
    }
    Vec::new()
}

/// The API's alarms may use metric math, so the metric is looked for anywhere in the alarm.
fn api_pages(template: &Template, _: &Yaml) -> Vec<String> {
    let api = reference("HttpApi").to_string();
    let mut found = Vec::new();
    for (metric, what) in [
        ("5xx", "an API 5xx rate alarm"),
        ("Latency", "an API latency alarm"),
        ("ApiGatewayThrottled", "an API throttling alarm"),
    ] {
        let named = format!("\"MetricName\":\"{metric}\"");
        if !alarms(template).iter().any(|a| {
            let text = a.to_string();
            text.contains(&named) && text.contains(&api)
        }) {
            found.push(format!("HttpApi: {what} (on {metric}) is required"));
        }
    }
    found
}

fn api_throttling_counted(template: &Template, _: &Yaml) -> Vec<String> {
    if !template.of_kind("AWS::Logs::MetricFilter").any(|f| {
        f.properties
            .to_string()
            .contains("\"MetricName\":\"ApiGatewayThrottled\"")
    }) {
        return vec![
            "HttpApi: the ApiGatewayThrottled metric filter on the access log is required"
                .to_owned(),
        ];
    }
    Vec::new()
}

/// The outcome graphs show every function that processes batches.
fn dashboard_shows_outcomes(template: &Template, _: &Yaml) -> Vec<String> {
    let dashboard = template
        .of_kind("AWS::CloudWatch::Dashboard")
        .map(|d| d.properties.to_string())
        .collect::<String>();
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let id = &function.logical_id;
        let batches = ["SQS", "Kinesis", "DynamoDB"]
            .into_iter()
            .any(|kind| reads(template, id, kind));
        let shown = format!(
            "[ \\\"snapglow\\\", \\\"RecordsProcessed\\\", \\\"function\\\", \\\"${{{id}}}\\\""
        );
        if batches && !dashboard.contains(&shown) {
            found.push(format!(
                "{id}: the dashboard's outcome graphs must show it (RecordsProcessed)"
            ));
        }
    }
    found
}
