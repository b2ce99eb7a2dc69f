//! template.yaml, read the way CloudFormation reads it: short-form intrinsics (`!Ref`,
//! `!GetAtt`, `!Sub`) are turned into their long form, then resolved against the local stack.
//! The local stack has no second list of resources: what the template declares is what exists.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {detail}; run `sam validate --lint` for a precise location")]
    Yaml { path: String, detail: String },
    #[error("template is invalid: {0}")]
    Invalid(String),
    #[error(
        "{context}: cannot resolve {what}; only Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select are supported locally"
    )]
    Unresolvable { context: String, what: String },
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Value>,
    pub globals_function: Value,
    pub resources: BTreeMap<String, Resource>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            TemplateError::Yaml { detail, .. } => TemplateError::Yaml {
                path: path.display().to_string(),
                detail,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| TemplateError::Yaml {
                path: "template".into(),
                detail: e.to_string(),
            })?;
        let root = to_json(yaml)?;
        let resources_json = root
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or_else(|| TemplateError::Invalid("no Resources section".into()))?;
        let mut resources = BTreeMap::new();
        for (logical_id, body) in resources_json {
            let kind = body.get("Type").and_then(Value::as_str).ok_or_else(|| {
                TemplateError::Invalid(format!("resource {logical_id} has no Type"))
            })?;
            let depends_on = match body.get("DependsOn") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) => many
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            resources.insert(
                logical_id.clone(),
                Resource {
                    logical_id: logical_id.clone(),
                    kind: kind.to_owned(),
                    properties: body.get("Properties").cloned().unwrap_or_else(|| json!({})),
                    metadata: body.get("Metadata").cloned().unwrap_or_else(|| json!({})),
                    depends_on,
                },
            );
        }
        let parameters = root
            .get("Parameters")
            .and_then(Value::as_object)
            .map(|params| {
                params
                    .iter()
                    .map(|(name, p)| {
                        (
                            name.clone(),
                            p.get("Default").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let globals_function = root
            .pointer("/Globals/Function")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let template = Template {
            parameters,
            globals_function,
            resources,
        };
        template.check_references()?;
        Ok(template)
    }

    /// Resources of one type, by logical id.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.values().filter(move |r| r.kind == kind)
    }

    /// Every Ref/GetAtt/Sub must name a parameter, a pseudo parameter or a resource.
    fn check_references(&self) -> Result<(), TemplateError> {
        for resource in self.resources.values() {
            for target in references(&resource.properties)
                .into_iter()
                .chain(resource.depends_on.iter().cloned())
            {
                if !target.starts_with("AWS::")
                    && !self.resources.contains_key(&target)
                    && !self.parameters.contains_key(&target)
                {
                    return Err(TemplateError::Invalid(format!(
                        "{} refers to {target}, which is neither a resource nor a parameter",
                        resource.logical_id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Logical ids in an order where everything a resource refers to comes before it.
    pub fn creation_order(&self) -> Result<Vec<String>, TemplateError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        let mut visiting = BTreeSet::new();
        for id in self.resources.keys() {
            self.visit(id, &mut done, &mut visiting, &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        id: &str,
        done: &mut BTreeSet<String>,
        visiting: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), TemplateError> {
        if done.contains(id) {
            return Ok(());
        }
        if !visiting.insert(id.to_owned()) {
            return Err(TemplateError::Invalid(format!(
                "circular dependency through {id}"
            )));
        }
        let resource = &self.resources[id];
        for target in references(&resource.properties)
            .into_iter()
            .chain(resource.depends_on.iter().cloned())
        {
            if self.resources.contains_key(&target) {
                self.visit(&target, done, visiting, order)?;
            }
        }
        visiting.remove(id);
        done.insert(id.to_owned());
        order.push(id.to_owned());
        Ok(())
    }
}

/// YAML (with CloudFormation's short-form tags) to JSON with long-form intrinsics.
fn to_json(yaml: serde_yaml_ng::Value) -> Result<Value, TemplateError> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let inner = match (name, inner) {
                // `!GetAtt A.B` is `Fn::GetAtt: [A, B]`
                ("GetAtt", Value::String(dotted)) => {
                    let (resource, attribute) = dotted.split_once('.').ok_or_else(|| {
                        TemplateError::Invalid(format!("!GetAtt {dotted} needs Resource.Attribute"))
                    })?;
                    json!([resource, attribute])
                }
                (_, inner) => inner,
            };
            let long = if name == "Ref" {
                "Ref".to_owned()
            } else {
                format!("Fn::{name}")
            };
            json!({ long: inner })
        }
    })
}

/// The logical ids a value refers to (Ref, GetAtt, and `${Name}` inside Sub).
pub fn references(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next().expect("one entry");
            match (key.as_str(), inner) {
                ("Ref", Value::String(target)) => found.push(target.clone()),
                ("Fn::GetAtt", Value::Array(parts)) => {
                    found.extend(parts.first().and_then(Value::as_str).map(str::to_owned))
                }
                ("Fn::Sub", Value::String(text)) => found.extend(
                    sub_names(text)
                        .into_iter()
                        .map(|n| n.split('.').next().unwrap_or("").to_owned()),
                ),
                _ => collect_references(inner, found),
            }
        }
        Value::Object(map) => map.values().for_each(|v| collect_references(v, found)),
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// The `${...}` names in a Sub string (`${!Literal}` is an escaped literal).
fn sub_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            names.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    names
}

/// Answers Ref and GetAtt for the local stack.
pub trait Lookup {
    fn parameter(&self, name: &str) -> Option<String>;
    fn pseudo(&self, name: &str) -> Option<String>;
    fn reference(&self, logical_id: &str) -> Option<String>;
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String>;
}

/// Resolves every intrinsic in `value` to a plain JSON value.
pub fn resolve(value: &Value, lookup: &dyn Lookup, context: &str) -> Result<Value, TemplateError> {
    let unresolvable = |what: String| TemplateError::Unresolvable {
        context: context.to_owned(),
        what,
    };
    match value {
        Value::Object(map)
            if map.len() == 1
                && map
                    .keys()
                    .next()
                    .is_some_and(|k| k == "Ref" || k.starts_with("Fn::")) =>
        {
            let (key, inner) = map.iter().next().expect("one entry");
            match key.as_str() {
                "Ref" => {
                    let name = inner
                        .as_str()
                        .ok_or_else(|| unresolvable(format!("Ref {inner}")))?;
                    let found = if name.starts_with("AWS::") {
                        lookup.pseudo(name)
                    } else {
                        lookup.parameter(name).or_else(|| lookup.reference(name))
                    };
                    found
                        .map(Value::String)
                        .ok_or_else(|| unresolvable(format!("Ref {name}")))
                }
                "Fn::GetAtt" => {
                    let parts: Vec<&str> = inner
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    match parts.as_slice() {
                        [resource, attribute] => lookup
                            .attribute(resource, attribute)
                            .map(Value::String)
                            .ok_or_else(|| unresolvable(format!("GetAtt {resource}.{attribute}"))),
                        _ => Err(unresolvable(format!("GetAtt {inner}"))),
                    }
                }
                "Fn::Sub" => {
                    let text = inner
                        .as_str()
                        .ok_or_else(|| unresolvable("Fn::Sub with a variable map".into()))?;
                    let mut out = text.to_owned();
                    for name in sub_names(text) {
                        let replacement = if name.starts_with("AWS::") {
                            lookup.pseudo(&name)
                        } else if let Some((resource, attribute)) = name.split_once('.') {
                            lookup.attribute(resource, attribute)
                        } else {
                            lookup.parameter(&name).or_else(|| lookup.reference(&name))
                        };
                        let replacement = replacement
                            .ok_or_else(|| unresolvable(format!("${{{name}}} in Sub")))?;
                        out = out.replace(&format!("${{{name}}}"), &replacement);
                    }
                    Ok(Value::String(out.replace("${!", "${")))
                }
                "Fn::Join" => {
                    let parts = inner
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| unresolvable(format!("Join {inner}")))?;
                    let separator = parts[0].as_str().unwrap_or("");
                    let items = resolve(&parts[1], lookup, context)?;
                    let strings: Vec<String> = items
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(scalar_text)
                        .collect();
                    Ok(Value::String(strings.join(separator)))
                }
                "Fn::Select" => {
                    let parts = inner
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| unresolvable(format!("Select {inner}")))?;
                    let index = scalar_text(&parts[0])
                        .parse::<usize>()
                        .map_err(|_| unresolvable(format!("Select {inner}")))?;
                    let items = resolve(&parts[1], lookup, context)?;
                    items
                        .get(index)
                        .cloned()
                        .ok_or_else(|| unresolvable(format!("Select {inner}")))
                }
                other => Err(unresolvable(other.to_owned())),
            }
        }
        Value::Object(map) => Ok(Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, lookup, context)?)))
                .collect::<Result<_, TemplateError>>()?,
        )),
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|v| resolve(v, lookup, context))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// A scalar as CloudFormation would put it in a string.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Lookup for Fixed {
        fn parameter(&self, name: &str) -> Option<String> {
            (name == "Size").then(|| "7".to_owned())
        }
        fn pseudo(&self, name: &str) -> Option<String> {
            (name == "AWS::StackName").then(|| "demo".to_owned())
        }
        fn reference(&self, id: &str) -> Option<String> {
            (id == "Queue").then(|| "http://q".to_owned())
        }
        fn attribute(&self, id: &str, attribute: &str) -> Option<String> {
            (id == "Queue" && attribute == "Arn").then(|| "arn:q".to_owned())
        }
    }

    const TEXT: &str = r#"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-q-${Size}"
  Fn:
    Type: AWS::Serverless::Function
    DependsOn: Queue
    Properties:
      Environment:
        Variables:
          URL: !Ref Queue
          ARN: !GetAtt Queue.Arn
          BOTH: !Join [",", [!Ref Queue, !Sub "${Queue.Arn}"]]
          LITERAL: !Sub "${!NotAName}"
Parameters:
  Size: { Type: Number, Default: 7 }
"#;

    #[test]
    fn short_form_intrinsics_resolve_like_cloudformation() {
        let template = Template::parse(TEXT).unwrap();
        let env = resolve(
            &template.resources["Fn"].properties["Environment"]["Variables"],
            &Fixed,
            "Fn",
        )
        .unwrap();
        assert_eq!(
            env,
            json!({ "URL": "http://q", "ARN": "arn:q", "BOTH": "http://q,arn:q", "LITERAL": "${NotAName}" })
        );
        let name = resolve(
            &template.resources["Queue"].properties["QueueName"],
            &Fixed,
            "Queue",
        )
        .unwrap();
        assert_eq!(name, json!("demo-q-7"));
    }

    #[test]
    fn dependencies_come_first() {
        let template = Template::parse(TEXT).unwrap();
        assert_eq!(template.creation_order().unwrap(), ["Queue", "Fn"]);
    }

    #[test]
    fn a_dangling_reference_is_a_clear_error() {
        let broken = TEXT.replace("URL: !Ref Queue", "URL: !Ref Nowhere");
        let error = Template::parse(&broken).unwrap_err().to_string();
        assert!(error.contains("Fn refers to Nowhere"), "{error}");
    }
}
