//! Least privilege: each function runs with its own role, and each role names exact actions on
//! exact resources; the relay alone writes the stream; no bucket answers plain HTTP.

use serde_json::{Value, json};
use snapglow_local::template::{Template, scalar_text};

use crate::support::Change::{Add, Remove, Set};
use crate::support::{Yaml, as_list, statements};
use crate::{Invariant, mistake};

pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "each function has a role, and no SAM policies",
        check: functions_have_roles,
        mistakes: &[
            mistake(
                "a managed policy instead of notifier's role",
                &[
                    Remove("Resources.NotifierFunction.Properties.Role"),
                    Add(
                        "Resources.NotifierFunction.Properties.Policies",
                        "[AmazonDynamoDBFullAccess]",
                    ),
                ],
                "NotifierFunction: needs its own Role",
            ),
            mistake(
                "a managed policy beside the api's role",
                &[Add(
                    "Resources.ApiFunction.Properties.Policies",
                    "[AWSLambdaBasicExecutionRole]",
                )],
                "ApiFunction: Policies widen the role",
            ),
        ],
    },
    Invariant {
        name: "each function's role is a role of this template",
        check: roles_of_this_template,
        mistakes: &[mistake(
            "a role made elsewhere",
            &[Set(
                "Resources.ResizeFunction.Properties.Role",
                "arn:aws:iam::123456789012:role/shared",
            )],
            "ResizeFunction: Role must be !GetAtt <an AWS::IAM::Role of this template>.Arn",
        )],
    },
    Invariant {
        name: "no two functions share a role",
        check: no_shared_roles,
        mistakes: &[mistake(
            "the relay on the api's role",
            &[Set(
                "Resources.RelayFunction.Properties.Role",
                "!GetAtt ApiRole.Arn",
            )],
            "RelayFunction shares its role ApiRole with ApiFunction",
        )],
    },
    Invariant {
        name: "roles grant no wildcard action",
        check: no_wildcard_actions,
        mistakes: &[mistake(
            "dynamodb:* for like-counter",
            &[Set(
                "Resources.LikeCounterRole.Properties.Policies.0.PolicyDocument.Statement.Sid=LikesTable.Action",
                "\"dynamodb:*\"",
            )],
            "wildcard action",
        )],
    },
    Invariant {
        name: "roles grant on exact resources",
        check: no_star_resources,
        mistakes: &[mistake(
            "like-counter's table grant on \"*\"",
            &[Set(
                "Resources.LikeCounterRole.Properties.Policies.0.PolicyDocument.Statement.Sid=LikesTable.Resource",
                "\"*\"",
            )],
            "Resource \"*\"",
        )],
    },
    Invariant {
        name: "the relay is the stream's one writer",
        check: relay_writes_the_stream_alone,
        mistakes: &[mistake(
            "the api puts records",
            &[Set(
                "Resources.ApiRole.Properties.Policies.0.PolicyDocument.Statement.Sid=SignUploadUrls.Action",
                "[s3:PutObject, kinesis:PutRecord]",
            )],
            "ApiRole: kinesis:PutRecord: the relay is the only writer of the stream",
        )],
    },
    Invariant {
        name: "resize has no Kinesis action",
        check: resize_has_no_kinesis_action,
        mistakes: &[mistake(
            "resize puts records",
            &[Set(
                "Resources.ResizeRole.Properties.Policies.0.PolicyDocument.Statement.Sid=ReadUploads.Action",
                "[s3:GetObject, kinesis:PutRecords]",
            )],
            "ResizeRole: kinesis:PutRecords: resize has no Kinesis action",
        )],
    },
    Invariant {
        name: "the relay's one Kinesis action is PutRecords",
        check: relay_only_puts_records,
        mistakes: &[mistake(
            "the relay may delete the stream",
            &[Set(
                "Resources.RelayRole.Properties.Policies.0.PolicyDocument.Statement.Sid=PublishEvents.Action",
                "[kinesis:PutRecords, kinesis:DeleteStream]",
            )],
            "RelayRole: kinesis:DeleteStream: the relay needs kinesis:PutRecords and nothing else on Kinesis",
        )],
    },
    Invariant {
        name: "resize can tell a missing upload",
        check: resize_lists_uploads,
        mistakes: &[mistake(
            "no s3:ListBucket",
            &[Set(
                "Resources.ResizeRole.Properties.Policies.0.PolicyDocument.Statement.Sid=TellMissingUploads.Action",
                "s3:GetBucketLocation",
            )],
            "ResizeRole: s3:ListBucket",
        )],
    },
    Invariant {
        name: "buckets refuse plain HTTP",
        check: buckets_refuse_plain_http,
        mistakes: &[mistake(
            "the uploads bucket's denial turned around",
            &[Set(
                "Resources.UploadsBucketPolicy.Properties.PolicyDocument.Statement.Sid=DenyInsecureTransport.Condition.Bool.aws:SecureTransport",
                "\"true\"",
            )],
            "UploadsBucket: needs a bucket policy denying non-TLS",
        )],
    },
];

fn functions_have_roles(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let id = &function.logical_id;
        if function.properties.get("Role").is_none() {
            found.push(format!(
                "{id}: needs its own Role (SAM's event sources attach managed policies on \"*\")"
            ));
        }
        if function.properties.get("Policies").is_some() {
            found.push(format!(
                "{id}: Policies widen the role; put them on its Role"
            ));
        }
    }
    found
}

/// Each function with the role its `Role: !GetAtt <role>.Arn` names, if that is a role of the
/// template.
fn roles(template: &Template) -> Vec<(String, Option<String>)> {
    template
        .of_kind("AWS::Serverless::Function")
        .map(|function| {
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
            (function.logical_id.clone(), role)
        })
        .collect()
}

fn roles_of_this_template(template: &Template, _: &Yaml) -> Vec<String> {
    roles(template)
        .into_iter()
        .filter(|(_, role)| role.is_none())
        .map(|(id, _)| {
            format!("{id}: Role must be !GetAtt <an AWS::IAM::Role of this template>.Arn")
        })
        .collect()
}

/// A shared role holds the union of both functions' grants.
fn no_shared_roles(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let mut owners: Vec<(String, String)> = Vec::new();
    for (function, role) in roles(template) {
        let Some(role) = role else { continue };
        if let Some((_, other)) = owners.iter().find(|(r, _)| *r == role) {
            found.push(format!(
                "{function} shares its role {role} with {other}: each function needs its own"
            ));
        }
        owners.push((role, function));
    }
    found
}

fn no_wildcard_actions(template: &Template, _: &Yaml) -> Vec<String> {
    statements(template)
        .iter()
        .filter(|s| s.actions.iter().any(|a| a.contains('*')))
        .map(|s| format!("{}: wildcard action in {:?}", s.role, s.actions))
        .collect()
}

/// Actions whose service accepts no resource but "*" (the Service Authorization Reference):
/// X-Ray's, and Rekognition's image analysis of a caller's own S3 object or bytes.
const ONLY_ON_STAR: [&str; 3] = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "rekognition:DetectModerationLabels",
];

fn no_star_resources(template: &Template, _: &Yaml) -> Vec<String> {
    statements(template)
        .iter()
        .filter(|s| s.resources.iter().any(|r| r.as_str() == Some("*")))
        .filter(|s| !s.actions.iter().all(|a| ONLY_ON_STAR.contains(&a.as_str())))
        .map(|s| format!("{}: Resource \"*\" for {:?}", s.role, s.actions))
        .collect()
}

/// Every (role, action) granted on Kinesis.
fn kinesis_actions(template: &Template) -> Vec<(String, String)> {
    statements(template)
        .into_iter()
        .flat_map(|s| {
            let role = s.role;
            s.actions
                .into_iter()
                .filter(|a| a.starts_with("kinesis:"))
                .map(move |a| (role.clone(), a))
        })
        .collect()
}

/// The API and resize store each event in the images table (the outbox), in the same write as
/// its fact; the relay publishes it.
fn relay_writes_the_stream_alone(template: &Template, _: &Yaml) -> Vec<String> {
    kinesis_actions(template)
        .into_iter()
        .filter(|(role, action)| {
            (action == "kinesis:PutRecord" || action == "kinesis:PutRecords") && role != "RelayRole"
        })
        .map(|(role, action)| {
            format!("{role}: {action}: the relay is the only writer of the stream")
        })
        .collect()
}

fn resize_has_no_kinesis_action(template: &Template, _: &Yaml) -> Vec<String> {
    kinesis_actions(template)
        .into_iter()
        .filter(|(role, _)| role == "ResizeRole")
        .map(|(_, action)| {
            format!("ResizeRole: {action}: resize has no Kinesis action (the relay publishes its events)")
        })
        .collect()
}

fn relay_only_puts_records(template: &Template, _: &Yaml) -> Vec<String> {
    kinesis_actions(template)
        .into_iter()
        .filter(|(role, action)| role == "RelayRole" && action != "kinesis:PutRecords")
        .map(|(_, action)| {
            format!("RelayRole: {action}: the relay needs kinesis:PutRecords and nothing else on Kinesis")
        })
        .collect()
}

/// Without s3:ListBucket, S3 answers a missing key with 403, not 404: resize's "upload deleted"
/// branch would never run on AWS and the message would go to the DLQ.
fn resize_lists_uploads(template: &Template, _: &Yaml) -> Vec<String> {
    let lists = statements(template).iter().any(|s| {
        s.role == "ResizeRole"
            && s.actions.iter().any(|a| a == "s3:ListBucket")
            && s.resources
                .iter()
                .any(|r| r.to_string().contains("-uploads-"))
    });
    if !lists {
        return vec!["ResizeRole: s3:ListBucket on the uploads bucket is required (a missing upload must be 404, not 403)".to_owned()];
    }
    Vec::new()
}

fn buckets_refuse_plain_http(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for bucket in template.of_kind("AWS::S3::Bucket") {
        let denies_plain_http = template.of_kind("AWS::S3::BucketPolicy").any(|policy| {
            policy.properties.get("Bucket") == Some(&json!({ "Ref": bucket.logical_id }))
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
