//! What the template says of its WebSocket API: raw `AWS::ApiGatewayV2` resources (SAM has
//! none), read here into the stage, the functions behind each route, and the authorizer.

use serde_json::Value;
use std::collections::BTreeMap;

use crate::template::Template;

/// The WebSocket API as the local server needs it: function logical ids, not ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketShape {
    pub stage: String,
    /// Route key (`$connect`, `$disconnect`, `$default`, custom) → the function behind it.
    pub routes: BTreeMap<String, String>,
    /// The REQUEST authorizer on `$connect`: its function and the query parameters it needs
    /// (`route.request.querystring.{name}`).
    pub authorizer: Option<(String, Vec<String>)>,
}

/// The logical id named in an intrinsic: `!Ref X`, or the first `${X}` / `${X.Attr}` of a
/// `!Sub` that is a resource of the template (not `AWS::…`).
fn referenced(value: &Value, template: &Template) -> Option<String> {
    if let Some(name) = value.get("Ref").and_then(Value::as_str) {
        return Some(name.to_owned());
    }
    let text = match value.get("Fn::Sub") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.first()?.as_str()?.to_owned(),
        _ => value.as_str()?.to_owned(),
    };
    text.split("${").skip(1).find_map(|rest| {
        let name = rest.split('}').next()?.split('.').next()?;
        template
            .resources
            .contains_key(name)
            .then(|| name.to_owned())
    })
}

impl WebSocketShape {
    /// The template's one WebSocket API (`ProtocolType: WEBSOCKET`), if it has one.
    pub fn of(template: &Template) -> Option<WebSocketShape> {
        let api = template.of_kind("AWS::ApiGatewayV2::Api").find(|r| {
            r.properties.get("ProtocolType").and_then(Value::as_str) == Some("WEBSOCKET")
        })?;
        let of_api = |kind: &'static str| {
            template.of_kind(kind).filter(|r| {
                r.properties
                    .get("ApiId")
                    .and_then(|v| referenced(v, template))
                    .as_deref()
                    == Some(api.logical_id.as_str())
            })
        };
        let function_of = |resource: &str, uri_property: &str| {
            let uri = template
                .resources
                .get(resource)?
                .properties
                .get(uri_property)?;
            referenced(uri, template)
        };
        let stage = of_api("AWS::ApiGatewayV2::Stage")
            .find_map(|s| s.properties.get("StageName")?.as_str().map(str::to_owned))?;
        let mut routes = BTreeMap::new();
        let mut authorizer = None;
        for route in of_api("AWS::ApiGatewayV2::Route") {
            let Some(key) = route.properties.get("RouteKey").and_then(Value::as_str) else {
                continue;
            };
            let integration = route
                .properties
                .get("Target")
                .and_then(|t| referenced(t, template));
            if let Some(function) = integration.and_then(|i| function_of(&i, "IntegrationUri")) {
                routes.insert(key.to_owned(), function);
            }
            let authorizer_id = route
                .properties
                .get("AuthorizerId")
                .and_then(|a| referenced(a, template));
            if let Some(id) = authorizer_id
                && let Some(function) = function_of(&id, "AuthorizerUri")
            {
                let sources = (template.resources.get(&id))
                    .and_then(|a| a.properties.get("IdentitySource"))
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .filter_map(|v| v.as_str()?.strip_prefix("route.request.querystring."))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                authorizer = Some((function, sources));
            }
        }
        Some(WebSocketShape {
            stage,
            routes,
            authorizer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_websocket_api_is_read_into_its_stage_routes_and_authorizer() {
        let root = crate::stack::project::project_root();
        let template = Template::load(&crate::stack::project::template_path(&root)).unwrap();

        let shape = WebSocketShape::of(&template).expect("template.yaml has a WebSocket API");

        assert_eq!(shape.stage, "live");
        assert_eq!(
            shape.routes.keys().map(String::as_str).collect::<Vec<_>>(),
            ["$connect", "$default", "$disconnect"]
        );
        assert!(
            shape.routes.values().all(|f| f == "LiveFunction"),
            "{shape:?}"
        );
        assert_eq!(
            shape.authorizer,
            Some(("LiveFunction".to_owned(), vec!["ticket".to_owned()]))
        );
    }
}
