//! Abuse and cost: what keeps one account from hurting the others or the bill, and a stolen
//! token or a foreign page from doing much. Each is a line of the template that a tidy-up could
//! drop without any linter noticing.

use serde_json::Value;
use snapglow_local::template::{Template, scalar_text};

use resize::storage::REJECTED_TAG;

use crate::support::Change::{Edit, Remove, Set};
use crate::support::{Yaml, as_list, properties, statements};
use crate::{Invariant, mistake};

pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "only access tokens are a grant: the JWT authorizer requires a scope",
        check: a_scope_is_required,
        mistakes: &[mistake(
            "ID tokens accepted",
            &[Remove(
                "Resources.HttpApi.Properties.Auth.Authorizers.JwtAuthorizer.AuthorizationScopes",
            )],
            "JwtAuthorizer must require a scope only access tokens carry",
        )],
    },
    Invariant {
        name: "the web client signs in by SRP only, and both clients' tokens can be revoked",
        check: srp_only_and_revocable,
        mistakes: &[
            mistake(
                "the password flow on the web client",
                &[Set(
                    "Resources.UserPoolClient.Properties.ExplicitAuthFlows",
                    "[ALLOW_USER_PASSWORD_AUTH, ALLOW_USER_SRP_AUTH, ALLOW_REFRESH_TOKEN_AUTH]",
                )],
                "UserPoolClient: the web client must allow SRP and refresh only",
            ),
            mistake(
                "refresh tokens that outlive sign-out",
                &[Set(
                    "Resources.CliClient.Properties.EnableTokenRevocation",
                    "false",
                )],
                "CliClient: EnableTokenRevocation must be true",
            ),
        ],
    },
    Invariant {
        name: "the API function's concurrency is reserved, and each user's requests are limited",
        check: api_bounded,
        mistakes: &[
            mistake(
                "no reservation",
                &[Remove(
                    "Resources.ApiFunction.Properties.ReservedConcurrentExecutions",
                )],
                "ApiFunction: ReservedConcurrentExecutions must come from ApiReservedConcurrency",
            ),
            mistake(
                "no per-user limit",
                &[Remove(
                    "Resources.ApiFunction.Properties.Environment.Variables.REQUESTS_PER_MINUTE",
                )],
                "ApiFunction: REQUESTS_PER_MINUTE must be !Ref RequestsPerMinute",
            ),
        ],
    },
    Invariant {
        name: "no upload is stored for ever unless it was published",
        check: uploads_expire,
        mistakes: &[
            mistake(
                "no lifecycle",
                &[Remove(
                    "Resources.UploadsBucket.Properties.LifecycleConfiguration",
                )],
                "UploadsBucket: no rule expires what resize tags snapglow-fate=rejected",
            ),
            mistake(
                "a tag resize never sets",
                &[Set(
                    "Resources.UploadsBucket.Properties.LifecycleConfiguration.Rules.Id=ExpireRejectedUploads.TagFilters",
                    "[{ Key: snapglow-fate, Value: refused }]",
                )],
                "UploadsBucket: no rule expires what resize tags snapglow-fate=rejected",
            ),
            mistake(
                "parts kept for ever",
                &[Remove(
                    "Resources.UploadsBucket.Properties.LifecycleConfiguration.Rules.Id=AbortIncompleteMultipartUploads.AbortIncompleteMultipartUpload",
                )],
                "UploadsBucket: no rule aborts incomplete multipart uploads",
            ),
        ],
    },
    Invariant {
        name: "only the eraser deletes photo files (resize its own renditions), only on deletions",
        check: erasure_scoped,
        mistakes: &[
            mistake(
                "the whole uploads bucket deletable",
                &[Set(
                    "Resources.EraserRole.Properties.Policies.0.PolicyDocument.Statement.Sid=DeleteImageFiles.Resource",
                    "[!Sub 'arn:${AWS::Partition}:s3:::${UploadsBucket}/*']",
                )],
                "EraserRole: s3:DeleteObject on a resource outside uploads/* and renditions/*",
            ),
            mistake(
                "resize may delete originals",
                &[Set(
                    "Resources.ResizeRole.Properties.Policies.0.PolicyDocument.Statement.Sid=ReadUploads.Action",
                    "[s3:GetObject, s3:DeleteObject]",
                )],
                "ResizeRole may delete originals: only EraserRole may",
            ),
            mistake(
                "every record invokes it",
                &[Remove(
                    "Resources.EraserFunction.Properties.Events.SocialEvents.Properties.FilterCriteria",
                )],
                "EraserFunction: its mapping must pass only ImageDeleted records",
            ),
        ],
    },
    Invariant {
        name: "the site's pages run only the site's own code",
        check: strict_content_security_policy,
        mistakes: &[
            mistake(
                "inline scripts allowed",
                &[Edit(
                    "Resources.WebSecurityHeaders.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy",
                    "script-src 'self'",
                    "script-src 'self' 'unsafe-inline'",
                )],
                "WebSecurityHeaders: the Content-Security-Policy must be default-src 'none' with scripts of the site only",
            ),
            mistake(
                "no policy",
                &[Remove(
                    "Resources.WebSecurityHeaders.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy",
                )],
                "WebSecurityHeaders: the Content-Security-Policy must be default-src 'none' with scripts of the site only",
            ),
        ],
    },
];

/// The text of a value, `Fn::Sub`'s template included.
fn text(value: &Value) -> String {
    match value.get("Fn::Sub") {
        Some(Value::String(sub)) => sub.clone(),
        _ => scalar_text(value),
    }
}

fn a_scope_is_required(template: &Template, _: &Yaml) -> Vec<String> {
    let scopes = properties(template, "HttpApi")
        .pointer("/Auth/Authorizers/JwtAuthorizer/AuthorizationScopes")
        .cloned();
    if as_list(scopes.as_ref()).is_empty() {
        return vec!["HttpApi: JwtAuthorizer must require a scope only access tokens carry".into()];
    }
    Vec::new()
}

fn srp_only_and_revocable(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let flows = |id: &str| -> Vec<String> {
        as_list(properties(template, id).get("ExplicitAuthFlows"))
            .iter()
            .map(scalar_text)
            .collect()
    };
    let mut web = flows("UserPoolClient");
    web.sort();
    if web != ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"] {
        found.push(format!(
            "UserPoolClient: the web client must allow SRP and refresh only, not {web:?}"
        ));
    }
    for client in ["UserPoolClient", "CliClient"] {
        let revocable = properties(template, client)
            .get("EnableTokenRevocation")
            .map(scalar_text);
        if revocable.as_deref() != Some("true") {
            found.push(format!("{client}: EnableTokenRevocation must be true"));
        }
    }
    found
}

fn api_bounded(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let api = properties(template, "ApiFunction");
    let reserved = api
        .get("ReservedConcurrentExecutions")
        .map(Value::to_string);
    if !reserved.is_some_and(|r| r.contains("\"ApiReservedConcurrency\"")) {
        found.push(
            "ApiFunction: ReservedConcurrentExecutions must come from ApiReservedConcurrency"
                .into(),
        );
    }
    let limit = api.pointer("/Environment/Variables/REQUESTS_PER_MINUTE");
    if limit.and_then(|l| l.get("Ref")).and_then(Value::as_str) != Some("RequestsPerMinute") {
        found.push("ApiFunction: REQUESTS_PER_MINUTE must be !Ref RequestsPerMinute".into());
    }
    found
}

fn uploads_expire(template: &Template, _: &Yaml) -> Vec<String> {
    let rules =
        as_list(properties(template, "UploadsBucket").pointer("/LifecycleConfiguration/Rules"));
    let enabled = |rule: &&Value| rule.get("Status").map(scalar_text).as_deref() == Some("Enabled");
    let mut found = Vec::new();
    let expires_rejected = rules.iter().filter(enabled).any(|rule| {
        rule.get("ExpirationInDays").is_some()
            && as_list(rule.get("TagFilters")).iter().any(|tag| {
                tag.get("Key").map(scalar_text).as_deref() == Some(REJECTED_TAG.0)
                    && tag.get("Value").map(scalar_text).as_deref() == Some(REJECTED_TAG.1)
            })
    });
    if !expires_rejected {
        found.push("UploadsBucket: no rule expires what resize tags snapglow-fate=rejected".into());
    }
    let aborts = (rules.iter().filter(enabled)).any(|rule| {
        rule.pointer("/AbortIncompleteMultipartUpload/DaysAfterInitiation")
            .is_some()
    });
    if !aborts {
        found.push("UploadsBucket: no rule aborts incomplete multipart uploads".into());
    }
    found
}

fn strict_content_security_policy(template: &Template, _: &Yaml) -> Vec<String> {
    let policy = properties(template, "WebSecurityHeaders")
        .pointer("/ResponseHeadersPolicyConfig/SecurityHeadersConfig/ContentSecurityPolicy/ContentSecurityPolicy")
        .map(text)
        .unwrap_or_default();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    if !directives.contains(&"default-src 'none'") || !directives.contains(&"script-src 'self'") {
        return vec![
            "WebSecurityHeaders: the Content-Security-Policy must be default-src 'none' with scripts of the site only"
                .into(),
        ];
    }
    Vec::new()
}

fn erasure_scoped(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    let deletes = |action: &str| action == "s3:*" || action.starts_with("s3:Delete");
    for statement in statements(template) {
        if !statement.actions.iter().any(|a| deletes(a)) {
            continue;
        }
        let arns: Vec<String> = statement.resources.iter().map(text).collect();
        if statement.role == "ResizeRole" {
            // The renditions it wrote itself, for an image taken back while it rendered.
            if let Some(arn) = arns.iter().find(|arn| !arn.ends_with("/renditions/*")) {
                found.push(format!(
                    "ResizeRole may delete originals: only EraserRole may ({arn})"
                ));
            }
            continue;
        }
        if statement.role != "EraserRole" {
            found.push(format!(
                "{} may delete photo files: only EraserRole may",
                statement.role
            ));
            continue;
        }
        for resource in &statement.resources {
            let arn = text(resource);
            if !(arn.ends_with("}/uploads/*") || arn.ends_with("}/renditions/*")) {
                found.push(format!(
                    "EraserRole: s3:DeleteObject on a resource outside uploads/* and renditions/*: {arn}"
                ));
            }
        }
    }
    let patterns: Vec<String> = as_list(
        properties(template, "EraserFunction")
            .pointer("/Events/SocialEvents/Properties/FilterCriteria/Filters"),
    )
    .iter()
    .filter_map(|f| f.get("Pattern").map(scalar_text))
    .collect();
    let only_deletions = !patterns.is_empty()
        && patterns.iter().all(|p| {
            serde_json::from_str::<Value>(p)
                .ok()
                .and_then(|p| p.pointer("/data/type").cloned())
                == Some(serde_json::json!(["ImageDeleted"]))
        });
    if !only_deletions {
        found.push("EraserFunction: its mapping must pass only ImageDeleted records".into());
    }
    found
}
