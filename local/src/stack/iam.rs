//! IAM in the local stack: every function runs with credentials that hold only its role's
//! policies, so a call the role does not grant is refused here as it would be on AWS.
//!
//! moto enforces IAM once told to (`POST /moto-api/reset-auth`), with three differences from
//! AWS that shape this module:
//! - its `AssumeRole` trust check fails on service principals, so each role becomes an IAM
//!   *user* holding the role's inline policies (`{stack}-{RoleLogicalId}`);
//! - outside S3 it evaluates every request against the resource `*`, so a statement scoped to
//!   a table, queue or stream ARN would never match: locally those statements name `*` and only
//!   their actions are checked (S3 statements keep their ARNs, and moto checks those);
//! - it authorizes `TransactWriteItems` / `TransactGetItems` as actions of their own, where AWS
//!   authorizes each item of a transaction by its action (`PutItem`, `UpdateItem`,
//!   `DeleteItem`, `ConditionCheckItem`, `GetItem`): a role granting one of those is given
//!   the transaction action locally.
//!
//! - it evaluates a statement's `Condition` without the request's condition values, and reads
//!   every condition it cannot verify as a refusal: locally a statement's `Condition` is
//!   dropped, and only its actions and resources are checked (on AWS the condition narrows
//!   them further, e.g. `s3:prefix` on a listing).
//!
//! Deploying switches enforcement off (moto needs no credentials to create resources), creates
//! the users, then switches it on for every request that follows: the CLI and the tests use the
//! stack's admin user, each function and its mappings the user of its role.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::SystemTime;

use super::clients::REGION;
use crate::lambda::http::{HttpError, call};

/// An IAM user's access key in the emulator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl AccessKey {
    /// What deploy uses while enforcement is off: moto accepts any key then.
    pub fn unchecked() -> AccessKey {
        AccessKey {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("IAM {action} in the emulator")]
    Http {
        action: String,
        #[source]
        source: HttpError,
    },
    #[error("IAM {action} in the emulator answered {status}: {body}")]
    Refused {
        action: String,
        status: u16,
        body: String,
    },
    #[error("signing IAM {action}")]
    Signing {
        action: String,
        #[source]
        source: SigningError,
    },
    #[error("switching IAM enforcement {0} in the emulator failed; is moto at that endpoint?")]
    Enforcement(&'static str),
}

/// Switches moto's IAM enforcement on (every request from now on is authenticated and
/// authorized) or off (any credentials pass).
pub async fn enforce(endpoint_url: &str, on: bool) -> Result<(), IamError> {
    let word = if on { "on" } else { "off" };
    // moto counts requests from this call; "0" checks the very next one, "inf" none.
    let count = if on { "0" } else { "inf" };
    let url = format!("{}/moto-api/reset-auth", endpoint_url.trim_end_matches('/'));
    match call("POST", &url, &[], count.as_bytes().to_vec()).await {
        Ok((200, _, _)) => Ok(()),
        _ => Err(IamError::Enforcement(word)),
    }
}

/// Creates (or renews) the IAM user `name` with exactly these inline policies and one fresh
/// access key; an earlier key of the user is deleted. Enforcement must be off.
pub async fn user_with_policies(
    endpoint_url: &str,
    name: &str,
    policies: &[(String, Value)],
) -> Result<AccessKey, IamError> {
    let iam = Iam { endpoint_url };
    match iam.call("CreateUser", &[("UserName", name)]).await {
        Ok(_) => {}
        Err(IamError::Refused { body, .. }) if body.contains("EntityAlreadyExists") => {
            let listed = iam.call("ListUserPolicies", &[("UserName", name)]).await?;
            for policy in elements(&listed, "member") {
                iam.call(
                    "DeleteUserPolicy",
                    &[("UserName", name), ("PolicyName", policy)],
                )
                .await?;
            }
            let keys = iam.call("ListAccessKeys", &[("UserName", name)]).await?;
            for key in elements(&keys, "AccessKeyId") {
                iam.call(
                    "DeleteAccessKey",
                    &[("UserName", name), ("AccessKeyId", key)],
                )
                .await?;
            }
        }
        Err(e) => return Err(e),
    }
    for (policy_name, document) in policies {
        iam.call(
            "PutUserPolicy",
            &[
                ("UserName", name),
                ("PolicyName", policy_name),
                ("PolicyDocument", &document.to_string()),
            ],
        )
        .await?;
    }
    let created = iam.call("CreateAccessKey", &[("UserName", name)]).await?;
    let field = |tag: &str| {
        elements(&created, tag)
            .next()
            .map(str::to_owned)
            .ok_or_else(|| IamError::Refused {
                action: "CreateAccessKey".into(),
                status: 200,
                body: format!("no {tag} in {created}"),
            })
    };
    Ok(AccessKey {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
    })
}

/// The policy that lets the stack's tooling do anything (deploy, produce, inspect).
pub fn admin_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }]
    })
}

/// A role's policy as the emulator can check it (see the module's comment): statements that
/// are not all S3 name the resource `*`; item actions bring their transaction action along; a
/// statement's `Condition` is dropped.
pub fn local_policy(document: &Value) -> Value {
    let mut local = document.clone();
    let statements = match local.get_mut("Statement") {
        Some(Value::Array(all)) => all.iter_mut().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    for statement in statements {
        if let Some(fields) = statement.as_object_mut() {
            fields.remove("Condition");
        }
        let mut actions = match statement.get("Action") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => continue,
        };
        if !actions.iter().all(|a| a.starts_with("s3:")) {
            statement["Resource"] = json!("*");
        }
        let grants = |wanted: &[&str]| actions.iter().any(|a| wanted.contains(&a.as_str()));
        let mut extra = Vec::new();
        if grants(&[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ]) {
            extra.push("dynamodb:TransactWriteItems".to_owned());
        }
        if grants(&["dynamodb:GetItem"]) {
            extra.push("dynamodb:TransactGetItems".to_owned());
        }
        if !extra.is_empty() {
            actions.extend(extra);
            statement["Action"] = json!(actions);
        }
    }
    local
}

/// IAM's Query API, signed as AWS expects (moto routes by the signature's service).
struct Iam<'a> {
    endpoint_url: &'a str,
}

impl Iam<'_> {
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, IamError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", "2010-05-08");
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = form.finish().into_bytes();
        let url = format!("{}/", self.endpoint_url.trim_end_matches('/'));
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = sign_headers(
            &AccessKey::unchecked(),
            "iam",
            aws_sigv4::http_request::SigningSettings::default(),
            (
                "POST",
                &url,
                &[("host", &host), ("content-type", content_type)],
                aws_sigv4::http_request::SignableBody::Bytes(&body),
            ),
        )
        .map_err(|source| IamError::Signing {
            action: action.to_owned(),
            source,
        })?;
        let mut all: Vec<(&str, &str)> = vec![("content-type", content_type)];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (status, _, answer) =
            call("POST", &url, &all, body)
                .await
                .map_err(|source| IamError::Http {
                    action: action.to_owned(),
                    source,
                })?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if status != 200 {
            return Err(IamError::Refused {
                action: action.to_owned(),
                status,
                body: answer,
            });
        }
        Ok(answer)
    }
}

/// Why a request could not be signed (settings or a request `aws-sigv4` refuses): a bug in
/// what the local stack builds, never a refusal by the emulator.
#[derive(Debug, thiserror::Error)]
#[error("signing a request to {service} with SigV4")]
pub struct SigningError {
    service: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The headers that sign one request with `key` now (SigV4 in the headers).
pub fn sign_headers(
    key: &AccessKey,
    service: &str,
    settings: aws_sigv4::http_request::SigningSettings,
    signable: Signable<'_>,
) -> Result<Vec<(String, String)>, SigningError> {
    let signed = sigv4(key, service, SystemTime::now(), settings, signable)?;
    Ok(signed
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// A request to sign: method, URL, the headers to sign, the body (or how it is signed).
pub type Signable<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    aws_sigv4::http_request::SignableBody<'a>,
);

/// SigV4 of one request with `key` at `time`: the headers, or with
/// `SignatureLocation::QueryParams` the query parameters, that carry the signature. The one
/// place the local stack signs (IAM's Query API, S3 requests the presigned-URL gate forwards)
/// and checks a signature (presigned URLs).
pub fn sigv4(
    key: &AccessKey,
    service: &str,
    time: SystemTime,
    settings: aws_sigv4::http_request::SigningSettings,
    (method, url, headers, body): Signable<'_>,
) -> Result<aws_sigv4::http_request::SigningInstructions, SigningError> {
    use aws_sigv4::http_request::{SignableRequest, sign};
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| SigningError {
        service: service.to_owned(),
        source,
    };
    let identity = aws_credential_types::Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "snapglow-local",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(e.into()))?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), body)
        .map_err(|e| failed(e.into()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| failed(e.into()))?
        .into_parts();
    Ok(instructions)
}

/// The texts of every `<tag>…</tag>` in an XML answer (IAM's answers are flat enough).
fn elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + use<'a> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.match_indices(&open)
        .map(|(at, _)| &xml[at + open.len()..])
        .filter_map(move |rest| rest.find(&close).map(|end| &rest[..end]))
        .collect::<Vec<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_statements_become_star_except_s3_and_item_actions_bring_their_transaction() {
        // Prepare
        let role = json!({ "Version": "2012-10-17", "Statement": [
            { "Effect": "Allow", "Action": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
              "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/likes" },
            { "Effect": "Allow", "Action": "dynamodb:GetItem",
              "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/images" },
            { "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/uploads/*" },
            { "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": ["arn:a", "arn:b"] }
        ]});

        // Act
        let local = local_policy(&role);

        // Assess
        let s = &local["Statement"];
        assert_eq!(s[0]["Resource"], "*");
        assert_eq!(
            s[0]["Action"],
            json!([
                "dynamodb:BatchGetItem",
                "dynamodb:PutItem",
                "dynamodb:TransactWriteItems"
            ])
        );
        assert_eq!(
            s[1]["Action"],
            json!(["dynamodb:GetItem", "dynamodb:TransactGetItems"])
        );
        assert_eq!(s[2]["Resource"], "arn:aws:s3:::b/uploads/*");
        assert_eq!(s[2]["Action"], "s3:GetObject");
        assert_eq!(s[3]["Resource"], "*");
    }

    #[test]
    fn xml_elements_are_read_in_order() {
        let xml = "<a><member>one</member><member>two</member><AccessKeyId>K</AccessKeyId></a>";
        assert_eq!(elements(xml, "member").collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(elements(xml, "AccessKeyId").next(), Some("K"));
        assert_eq!(elements(xml, "missing").next(), None);
    }
}
