//! template.yaml, read the way CloudFormation reads it: short-form intrinsics (`!Ref`,
//! `!GetAtt`, `!Sub`) are turned into their long form ([`Template::parse`]), resolved against
//! the local stack ([`intrinsics`]), and the resources the stack acts on are read into typed
//! properties with their defaults ([`model`]). The local stack has no second list of
//! resources: what the template declares is what exists.

pub mod intrinsics;
pub mod model;

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use intrinsics::{Lookup, Resolver, references, scalar_text};
pub use model::Properties;

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
    #[error("{context}: cannot resolve {what}")]
    Unresolvable { context: String, what: String },
    #[error(
        "{context}: the intrinsic function {name} is not supported by the local stack (it supports {supported}); rewrite it with those or add it to local/src/template/intrinsics.rs"
    )]
    UnknownIntrinsic {
        context: String,
        name: String,
        supported: &'static str,
    },
    #[error(
        "{logical_id} ({kind}) has a property the local stack cannot read; fix it in template.yaml"
    )]
    Property {
        logical_id: String,
        kind: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A resource's name in the template.
pub type LogicalId = String;

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
    pub depends_on: Vec<String>,
    /// The name of the condition that decides whether the resource exists.
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    /// Each parameter's default value.
    pub parameters: BTreeMap<String, Value>,
    pub conditions: BTreeMap<String, Value>,
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
        let root = document(text)?;
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
                    condition: body
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
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
        let conditions = root
            .get("Conditions")
            .and_then(Value::as_object)
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let template = Template {
            parameters,
            conditions,
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

    /// Whether `resource` exists under the template's conditions and these parameters.
    pub fn includes(
        &self,
        resource: &Resource,
        lookup: &dyn Lookup,
    ) -> Result<bool, TemplateError> {
        match &resource.condition {
            None => Ok(true),
            Some(name) => self.resolver(lookup).condition(name, &resource.logical_id),
        }
    }

    pub fn resolver<'a>(&'a self, lookup: &'a dyn Lookup) -> Resolver<'a> {
        Resolver {
            lookup,
            conditions: &self.conditions,
        }
    }

    /// A resource's properties as CloudFormation would hand them over: `Globals.Function`
    /// merged into a function's, every intrinsic resolved, read into the kind's typed
    /// properties with its defaults. Kinds the local stack does not act on are not resolved
    /// (their intrinsics may name what does not exist locally).
    pub fn properties(
        &self,
        resource: &Resource,
        lookup: &dyn Lookup,
    ) -> Result<Properties, TemplateError> {
        if !Properties::emulated(&resource.kind) {
            return Ok(Properties::Other);
        }
        let merged = self.merged_properties(resource);
        let resolved = self
            .resolver(lookup)
            .resolve(&merged, &resource.logical_id)?
            .unwrap_or_else(|| json!({}));
        Properties::parse(
            &resource.kind,
            &resource.logical_id,
            resolved,
            &resource.metadata,
        )
    }

    /// A function's properties with `Globals.Function` underneath. SAM merges maps
    /// (Environment.Variables, LoggingConfig, ...) key by key, the function's own value
    /// winning; lists and scalars are replaced.
    fn merged_properties(&self, resource: &Resource) -> Value {
        if resource.kind != "AWS::Serverless::Function" {
            return resource.properties.clone();
        }
        fn merge(into: &mut Value, own: &Value) {
            match (into, own) {
                (Value::Object(base), Value::Object(overrides)) => {
                    for (key, value) in overrides {
                        match base.get_mut(key) {
                            Some(existing) if existing.is_object() && value.is_object() => {
                                merge(existing, value)
                            }
                            _ => {
                                base.insert(key.clone(), value.clone());
                            }
                        }
                    }
                }
                (into, own) => *into = own.clone(),
            }
        }
        let mut merged = match &self.globals_function {
            Value::Object(_) => self.globals_function.clone(),
            _ => json!({}),
        };
        merge(&mut merged, &resource.properties);
        merged
    }

    /// Every Ref/GetAtt/Sub must name a parameter, a pseudo parameter or a resource.
    fn check_references(&self) -> Result<(), TemplateError> {
        for resource in self.resources.values() {
            if let Some(condition) = resource
                .condition
                .as_ref()
                .filter(|c| !self.conditions.contains_key(*c))
            {
                return Err(TemplateError::Invalid(format!(
                    "{} has Condition {condition}, which is not in Conditions",
                    resource.logical_id
                )));
            }
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
    pub fn creation_order(&self) -> Result<Vec<LogicalId>, TemplateError> {
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
        // A function also depends on what Globals.Function refers to (merged in at deploy).
        let globals = match resource.kind.as_str() {
            "AWS::Serverless::Function" => references(&self.globals_function),
            _ => Vec::new(),
        };
        for target in references(&resource.properties)
            .into_iter()
            .chain(globals)
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

/// The whole template as JSON with long-form intrinsics (`!Ref X` is `{"Ref": "X"}`), every
/// section and every resource attribute (`DeletionPolicy`, `UpdateReplacePolicy`, `Condition`)
/// included, nothing resolved: what a comparison of two versions of a template reads.
pub fn document(text: &str) -> Result<Value, TemplateError> {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| TemplateError::Yaml {
            path: "template".into(),
            detail: e.to_string(),
        })?;
    to_json(yaml)
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
            let long = if name == "Ref" || name == "Condition" {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            json!({ long: inner })
        }
    })
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
          MAPPED: !Sub ["${AWS::StackName}/${Name}-${Size}", { Name: x }]
Parameters:
  Size: { Type: Number, Default: 7 }
"#;

    #[test]
    fn short_form_intrinsics_resolve_like_cloudformation() {
        let template = Template::parse(TEXT).unwrap();
        let resolver = template.resolver(&Fixed);
        let env = resolver
            .resolve(
                &template.resources["Fn"].properties["Environment"]["Variables"],
                "Fn",
            )
            .unwrap();
        assert_eq!(
            env,
            Some(
                json!({ "URL": "http://q", "ARN": "arn:q", "BOTH": "http://q,arn:q", "LITERAL": "${NotAName}", "MAPPED": "demo/x-7" })
            )
        );
        let name = resolver
            .resolve(
                &template.resources["Queue"].properties["QueueName"],
                "Queue",
            )
            .unwrap();
        assert_eq!(name, Some(json!("demo-q-7")));
    }

    const CONDITIONAL: &str = r#"
Parameters:
  Stage: { Type: String, Default: dev }
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition NotProd, !Equals [dev, !Ref Stage]]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: t
      KeySchema: [{ AttributeName: pk, KeyType: HASH }]
      DeletionProtectionEnabled: !If [IsProd, true, false]
      BillingMode: !If [Both, PAY_PER_REQUEST, !Ref AWS::NoValue]
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
"#;

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

    #[test]
    fn conditions_choose_values_and_resources_per_stage() {
        // Prepare
        let template = Template::parse(CONDITIONAL).unwrap();
        let table = &template.resources["Table"];
        for (stage, protected, billing, prod_only) in [
            ("dev", false, Some("PAY_PER_REQUEST"), false),
            ("prod", true, None, true),
        ] {
            // Act
            let resolved = template
                .resolver(&Stage(stage))
                .resolve(&table.properties, "Table")
                .unwrap()
                .unwrap();
            let includes = template
                .includes(&template.resources["ProdOnly"], &Stage(stage))
                .unwrap();

            // Assess: AWS::NoValue removes the property, so CloudFormation's default applies
            assert_eq!(
                resolved["DeletionProtectionEnabled"],
                json!(protected),
                "{stage}"
            );
            assert_eq!(
                resolved.get("BillingMode").and_then(Value::as_str),
                billing,
                "{stage}"
            );
            assert_eq!(includes, prod_only, "{stage}");
            let Properties::Table(typed) = template.properties(table, &Stage(stage)).unwrap()
            else {
                panic!("a table");
            };
            assert_eq!(typed.billing_mode, billing.unwrap_or("PROVISIONED"));
        }
    }

    #[test]
    fn an_unknown_intrinsic_is_named_with_what_is_supported() {
        let text = TEXT.replace("URL: !Ref Queue", "URL: !FindInMap [M, a, b]");
        let template = Template::parse(&text).unwrap();
        let error = template
            .resolver(&Fixed)
            .resolve(&template.resources["Fn"].properties, "Fn")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Fn: the intrinsic function Fn::FindInMap is not supported")
                && error.contains("Fn::If"),
            "{error}"
        );
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
