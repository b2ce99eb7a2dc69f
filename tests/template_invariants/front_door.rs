//! The front door: every route behind the JWT authorizer, on the API function only, within
//! API Gateway's timeout, and browsers admitted from the site's one origin.

use serde_json::{Value, json};
use snapglow_local::template::{Template, scalar_text};

use crate::support::Change::{Add, Remove, Set};
use crate::support::{Event, Yaml, events, int, properties};
use crate::{Invariant, mistake};

/// The fourteen routes of the API, all behind the JWT authorizer.
const ROUTES: [&str; 14] = [
    "POST /uploads",
    "GET /feed",
    "GET /images/{id}",
    "DELETE /images/{id}",
    "PUT /images/{id}/like",
    "DELETE /images/{id}/like",
    "GET /me/images",
    "GET /me/notifications",
    "POST /me/notifications/read",
    "DELETE /me",
    "GET /me/profile",
    "PUT /me/profile",
    "GET /images/{id}/likes",
    "POST /me/live-ticket",
];

pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "every route defaults to the JWT authorizer",
        check: jwt_by_default,
        mistakes: &[mistake(
            "IAM by default",
            &[Set(
                "Resources.HttpApi.Properties.Auth.DefaultAuthorizer",
                "AWS_IAM",
            )],
            "DefaultAuthorizer must be JwtAuthorizer",
        )],
    },
    Invariant {
        name: "the JWT authorizer reads the Authorization header, an issuer and an audience",
        check: jwt_authorizer_complete,
        mistakes: &[
            mistake(
                "no audience",
                &[Remove(
                    "Resources.HttpApi.Properties.Auth.Authorizers.JwtAuthorizer.JwtConfiguration.audience",
                )],
                "JwtAuthorizer needs the Authorization header, an issuer and an audience",
            ),
            mistake(
                "the token from a cookie",
                &[Set(
                    "Resources.HttpApi.Properties.Auth.Authorizers.JwtAuthorizer.IdentitySource",
                    "$request.header.Cookie",
                )],
                "JwtAuthorizer needs the Authorization header, an issuer and an audience",
            ),
        ],
    },
    Invariant {
        name: "only the API function serves HTTP, and only HTTP",
        check: http_on_the_api_only,
        mistakes: &[
            mistake(
                "a route to notifier",
                &[Add(
                    "Resources.NotifierFunction.Properties.Events.Peek",
                    "{ Type: HttpApi, Properties: { ApiId: !Ref HttpApi, Method: GET, Path: /peek, PayloadFormatVersion: \"2.0\" } }",
                )],
                "NotifierFunction.Peek: only ApiFunction serves HTTP routes",
            ),
            mistake(
                "the API reading a queue",
                &[Add(
                    "Resources.ApiFunction.Properties.Events.Jobs",
                    "{ Type: SQS, Properties: { Queue: !GetAtt ImageUploadsQueue.Arn } }",
                )],
                "ApiFunction.Jobs: ApiFunction is invoked by its HTTP routes only",
            ),
        ],
    },
    Invariant {
        name: "no route opts out of the JWT authorizer",
        check: routes_keep_the_authorizer,
        mistakes: &[mistake(
            "an anonymous upload route",
            &[Add(
                "Resources.ApiFunction.Properties.Events.CreateUpload.Properties.Auth",
                "{ Authorizer: NONE }",
            )],
            "ApiFunction.CreateUpload: opts out of the JWT authorizer",
        )],
    },
    Invariant {
        name: "every route is the HTTP API's, with payload 2.0",
        check: routes_on_the_http_api,
        mistakes: &[
            mistake(
                "a route on SAM's implicit API",
                &[Remove(
                    "Resources.ApiFunction.Properties.Events.GetImage.Properties.ApiId",
                )],
                "ApiFunction.GetImage: ApiId must be !Ref HttpApi",
            ),
            mistake(
                "payload 1.0",
                &[Set(
                    "Resources.ApiFunction.Properties.Events.Feed.Properties.PayloadFormatVersion",
                    "\"1.0\"",
                )],
                "ApiFunction.Feed: PayloadFormatVersion must be \"2.0\"",
            ),
        ],
    },
    Invariant {
        name: "the API serves exactly its ten routes",
        check: exactly_the_routes,
        mistakes: &[mistake(
            "an admin route instead of marking read",
            &[Set(
                "Resources.ApiFunction.Properties.Events.ReadNotifications.Properties.Path",
                "/admin/users",
            )],
            "exactly the ten routes",
        )],
    },
    Invariant {
        name: "the API answers before API Gateway cuts it off",
        check: api_within_the_gateway_timeout,
        mistakes: &[mistake(
            "30 s",
            &[Set("Resources.ApiFunction.Properties.Timeout", "30")],
            "ApiFunction: Timeout (30 s) must be under 30 s",
        )],
    },
    Invariant {
        name: "browsers call the API from the site's origin only",
        check: api_cors_origin,
        mistakes: &[mistake(
            "any origin",
            &[Set(
                "Resources.HttpApi.Properties.CorsConfiguration.AllowOrigins",
                "[\"*\"]",
            )],
            "CORS AllowOrigins must be the site's origin",
        )],
    },
    Invariant {
        name: "CORS sends no credentials",
        check: api_cors_without_credentials,
        mistakes: &[mistake(
            "credentials allowed",
            &[Set(
                "Resources.HttpApi.Properties.CorsConfiguration.AllowCredentials",
                "true",
            )],
            "HttpApi: CORS AllowCredentials must be false",
        )],
    },
    Invariant {
        name: "browsers PUT uploads from the site's origin only",
        check: uploads_cors_origin,
        mistakes: &[mistake(
            "uploads from any origin",
            &[Set(
                "Resources.UploadsBucket.Properties.CorsConfiguration.CorsRules.0.AllowedOrigins",
                "[\"*\"]",
            )],
            "UploadsBucket: CORS AllowedOrigins must be the site's origin",
        )],
    },
    Invariant {
        name: "the AllowedOrigin default is the template's own site",
        check: allowed_origin_default,
        mistakes: &[mistake(
            "\"*\" by default",
            &[Set("Parameters.AllowedOrigin.Default", "\"*\"")],
            "AllowedOrigin parameter's default must be empty",
        )],
    },
];

fn jwt_by_default(template: &Template, _: &Yaml) -> Vec<String> {
    let default = properties(template, "HttpApi")
        .pointer("/Auth/DefaultAuthorizer")
        .map(scalar_text);
    if default.as_deref() != Some("JwtAuthorizer") {
        return vec!["HttpApi: Auth.DefaultAuthorizer must be JwtAuthorizer".to_owned()];
    }
    Vec::new()
}

fn jwt_authorizer_complete(template: &Template, _: &Yaml) -> Vec<String> {
    let jwt = properties(template, "HttpApi")
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
        return vec![
            "HttpApi: JwtAuthorizer needs the Authorization header, an issuer and an audience"
                .to_owned(),
        ];
    }
    Vec::new()
}

fn http_on_the_api_only(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for e in events(template) {
        match (e.kind == "HttpApi", e.function == "ApiFunction") {
            (true, false) => found.push(format!("{}: only ApiFunction serves HTTP routes", e.id())),
            (false, true) => found.push(format!(
                "{}: ApiFunction is invoked by its HTTP routes only",
                e.id()
            )),
            _ => {}
        }
    }
    found
}

/// The API function's HTTP routes.
fn routes(template: &Template) -> Vec<Event> {
    events(template)
        .into_iter()
        .filter(|e| e.kind == "HttpApi" && e.function == "ApiFunction")
        .collect()
}

fn routes_keep_the_authorizer(template: &Template, _: &Yaml) -> Vec<String> {
    routes(template)
        .iter()
        .filter(|e| {
            e.props
                .pointer("/Auth/Authorizer")
                .map(scalar_text)
                .is_some_and(|a| a != "JwtAuthorizer")
        })
        .map(|e| {
            format!(
                "{}: opts out of the JWT authorizer (Auth.Authorizer)",
                e.id()
            )
        })
        .collect()
}

fn routes_on_the_http_api(template: &Template, _: &Yaml) -> Vec<String> {
    let mut found = Vec::new();
    for e in routes(template) {
        if e.props.get("ApiId") != Some(&json!({ "Ref": "HttpApi" })) {
            found.push(format!("{}: ApiId must be !Ref HttpApi", e.id()));
        }
        if scalar_text(&e.props["PayloadFormatVersion"]) != "2.0" {
            found.push(format!("{}: PayloadFormatVersion must be \"2.0\"", e.id()));
        }
    }
    found
}

fn exactly_the_routes(template: &Template, _: &Yaml) -> Vec<String> {
    let mut served: Vec<String> = routes(template)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                scalar_text(&e.props["Method"]).to_uppercase(),
                scalar_text(&e.props["Path"])
            )
        })
        .collect();
    served.sort();
    let mut wanted: Vec<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    wanted.sort();
    if served != wanted {
        return vec![format!(
            "ApiFunction must serve exactly the ten routes {wanted:?}, serves {served:?}"
        )];
    }
    Vec::new()
}

fn api_within_the_gateway_timeout(template: &Template, _: &Yaml) -> Vec<String> {
    let timeout = int(properties(template, "ApiFunction").get("Timeout"))
        .or_else(|| int(template.globals_function.get("Timeout")))
        .unwrap_or(3);
    if timeout >= 30 {
        return vec![format!(
            "ApiFunction: Timeout ({timeout} s) must be under 30 s, where the HTTP API cuts integrations"
        )];
    }
    Vec::new()
}

/// The site's origin: the template's own distribution, or the AllowedOrigin given.
fn site_origin() -> Value {
    json!([{ "Fn::If": [
        "ServeOwnSite",
        { "Fn::Sub": "https://${WebDistribution.DomainName}" },
        { "Ref": "AllowedOrigin" }
    ] }])
}

fn api_cors_origin(template: &Template, _: &Yaml) -> Vec<String> {
    if properties(template, "HttpApi").pointer("/CorsConfiguration/AllowOrigins")
        != Some(&site_origin())
    {
        return vec![
            "HttpApi: CORS AllowOrigins must be the site's origin (ServeOwnSite ? the distribution : AllowedOrigin), never \"*\"".to_owned(),
        ];
    }
    Vec::new()
}

/// Tokens travel in a header, never in cookies.
fn api_cors_without_credentials(template: &Template, _: &Yaml) -> Vec<String> {
    if properties(template, "HttpApi").pointer("/CorsConfiguration/AllowCredentials")
        == Some(&Value::Bool(true))
    {
        return vec![
            "HttpApi: CORS AllowCredentials must be false (tokens travel in a header)".to_owned(),
        ];
    }
    Vec::new()
}

fn uploads_cors_origin(template: &Template, _: &Yaml) -> Vec<String> {
    properties(template, "UploadsBucket")
        .pointer("/CorsConfiguration/CorsRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|rule| rule.get("AllowedOrigins") != Some(&site_origin()))
        .map(|_| "UploadsBucket: CORS AllowedOrigins must be the site's origin".to_owned())
        .collect()
}

/// Empty: the template's own site. Anything else must be one origin, never "*".
fn allowed_origin_default(template: &Template, _: &Yaml) -> Vec<String> {
    let default = template
        .parameters
        .get("AllowedOrigin")
        .map(scalar_text)
        .unwrap_or_default();
    if default.contains('*') || default.ends_with('/') {
        return vec![format!(
            "the AllowedOrigin parameter's default must be empty (the template's own site) or one origin, is {default:?}"
        )];
    }
    Vec::new()
}
