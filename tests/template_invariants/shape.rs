//! The template's shape: a SAM template holding every resource the system is made of, and
//! functions built from this repository's crates for the runtime they deploy to.

use serde_json::json;
use snapglow_local::stack::project::project_root;
use snapglow_local::template::{Template, scalar_text};

use crate::support::Change::{Add, Remove, Set};
use crate::support::{Yaml, setting};
use crate::{Invariant, mistake};

pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "a SAM template",
        check: sam_transform,
        mistakes: &[mistake(
            "no Transform",
            &[Remove("Transform")],
            "Transform must be AWS::Serverless-2016-10-31",
        )],
    },
    Invariant {
        name: "every resource of the system exists",
        check: resources_exist,
        mistakes: &[
            mistake(
                "the stream-failures queue as a topic",
                &[Set("Resources.StreamFailuresQueue.Type", "AWS::SNS::Topic")],
                "StreamFailuresQueue (AWS::SQS::Queue) is missing",
            ),
            mistake(
                "the HTTP API as a plain API Gateway API",
                &[Set("Resources.HttpApi.Type", "AWS::ApiGatewayV2::Api")],
                "HttpApi (AWS::Serverless::HttpApi) is missing",
            ),
        ],
    },
    Invariant {
        name: "functions run on provided.al2023",
        check: runtime,
        mistakes: &[mistake(
            "an older runtime for one function",
            &[Add(
                "Resources.NotifierFunction.Properties.Runtime",
                "provided.al2",
            )],
            "NotifierFunction: Runtime must be provided.al2023",
        )],
    },
    Invariant {
        name: "functions run on arm64",
        check: arm64,
        mistakes: &[mistake(
            "x86_64 for every function",
            &[Set("Globals.Function.Architectures", "[x86_64]")],
            "Architectures must be [arm64]",
        )],
    },
    Invariant {
        name: "functions are built by cargo-lambda",
        check: built_by_cargo_lambda,
        mistakes: &[mistake(
            "another build method",
            &[Set(
                "Resources.RelayFunction.Metadata.BuildMethod",
                "makefile",
            )],
            "RelayFunction: Metadata.BuildMethod must be rust-cargolambda",
        )],
    },
    Invariant {
        name: "each function's binary is a crate under functions/",
        check: binary_is_a_crate,
        mistakes: &[mistake(
            "a binary no crate builds",
            &[Set(
                "Resources.ResizeFunction.Metadata.BuildProperties.Binary",
                "resizer",
            )],
            "ResizeFunction: Metadata.BuildProperties.Binary \"resizer\" is not a crate under functions/",
        )],
    },
];

fn sam_transform(_: &Template, raw: &Yaml) -> Vec<String> {
    if raw.get("Transform").and_then(|t| t.as_str()) != Some("AWS::Serverless-2016-10-31") {
        return vec!["Transform must be AWS::Serverless-2016-10-31".to_owned()];
    }
    Vec::new()
}

fn resources_exist(template: &Template, _: &Yaml) -> Vec<String> {
    let names: Vec<(&str, &str)> = template
        .resources
        .values()
        .map(|r| (r.logical_id.as_str(), r.kind.as_str()))
        .collect();
    [
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
    ]
    .into_iter()
    .filter(|wanted| !names.contains(wanted))
    .map(|(id, kind)| format!("{id} ({kind}) is missing"))
    .collect()
}

fn runtime(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::Serverless::Function")
        .filter(|f| scalar_text(&setting(template, &f.properties, "Runtime")) != "provided.al2023")
        .map(|f| format!("{}: Runtime must be provided.al2023", f.logical_id))
        .collect()
}

fn arm64(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::Serverless::Function")
        .filter(|f| setting(template, &f.properties, "Architectures") != json!(["arm64"]))
        .map(|f| format!("{}: Architectures must be [arm64]", f.logical_id))
        .collect()
}

fn built_by_cargo_lambda(template: &Template, _: &Yaml) -> Vec<String> {
    template
        .of_kind("AWS::Serverless::Function")
        .filter(|f| {
            f.metadata.get("BuildMethod").map(scalar_text).as_deref() != Some("rust-cargolambda")
        })
        .map(|f| {
            format!(
                "{}: Metadata.BuildMethod must be rust-cargolambda",
                f.logical_id
            )
        })
        .collect()
}

fn binary_is_a_crate(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for function in template.of_kind("AWS::Serverless::Function") {
        let binary = function
            .metadata
            .pointer("/BuildProperties/Binary")
            .map(scalar_text)
            .unwrap_or_default();
        let manifest = project_root()
            .join("functions")
            .join(&binary)
            .join("Cargo.toml");
        if binary.is_empty() || !manifest.is_file() {
            found.push(format!(
                "{}: Metadata.BuildProperties.Binary {binary:?} is not a crate under functions/",
                function.logical_id
            ));
        }
    }
    found
}
