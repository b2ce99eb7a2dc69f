//! CloudFormation's intrinsic functions, resolved in one place: `Ref`, `Fn::GetAtt`, `Fn::Sub`
//! (with or without a variable map), `Fn::Join`, `Fn::Select`, `Fn::If`, and the condition
//! functions `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`. `Ref: AWS::NoValue`
//! removes the property that holds it, as CloudFormation does. Anything else is named in an
//! error instead of being passed through as a JSON object a resource would misread.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::TemplateError;

/// Answers what the stack knows: parameters, pseudo parameters, and `Ref`/`GetAtt` of resources
/// created so far.
pub trait Lookup {
    fn parameter(&self, name: &str) -> Option<String>;
    fn pseudo(&self, name: &str) -> Option<String>;
    fn reference(&self, logical_id: &str) -> Option<String>;
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String>;
}

/// The intrinsics this module resolves; the error for any other names this list.
const SUPPORTED: &str = "Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition";

/// Resolves intrinsics against a [`Lookup`] and the template's `Conditions`.
pub struct Resolver<'a> {
    pub lookup: &'a dyn Lookup,
    pub conditions: &'a BTreeMap<String, Value>,
}

impl Resolver<'_> {
    /// `value` with every intrinsic replaced by plain JSON; `None` where it is `AWS::NoValue`.
    pub fn resolve(&self, value: &Value, context: &str) -> Result<Option<Value>, TemplateError> {
        match value {
            Value::Object(map) if map.len() == 1 && is_intrinsic(map) => {
                let (key, inner) = map.iter().next().expect("one entry");
                self.intrinsic(key, inner, context)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    if let Some(resolved) = self.resolve(item, context)? {
                        out.insert(key.clone(), resolved);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.resolve(item, context)?);
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Whether the named condition of the template holds.
    pub fn condition(&self, name: &str, context: &str) -> Result<bool, TemplateError> {
        let body = self.conditions.get(name).ok_or_else(|| {
            TemplateError::Invalid(format!("{context}: no condition {name:?} in Conditions"))
        })?;
        self.truth(body, context)
    }

    fn truth(&self, value: &Value, context: &str) -> Result<bool, TemplateError> {
        match self.resolve(value, context)? {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(unresolvable(
                context,
                format!("a condition that is not true or false: {other:?}"),
            )),
        }
    }

    fn intrinsic(
        &self,
        key: &str,
        inner: &Value,
        context: &str,
    ) -> Result<Option<Value>, TemplateError> {
        let text = |s: String| Ok(Some(Value::String(s)));
        match key {
            "Ref" => {
                let name = inner
                    .as_str()
                    .ok_or_else(|| unresolvable(context, format!("Ref {inner}")))?;
                if name == "AWS::NoValue" {
                    return Ok(None);
                }
                text(
                    self.name(name)
                        .ok_or_else(|| unresolvable(context, format!("Ref {name}")))?,
                )
            }
            "Fn::GetAtt" => {
                let parts: Vec<String> = match inner {
                    Value::String(dotted) => dotted.splitn(2, '.').map(str::to_owned).collect(),
                    Value::Array(items) => items.iter().map(scalar_text).collect(),
                    _ => Vec::new(),
                };
                match parts.as_slice() {
                    [resource, attribute] => {
                        text(self.lookup.attribute(resource, attribute).ok_or_else(|| {
                            unresolvable(context, format!("GetAtt {resource}.{attribute}"))
                        })?)
                    }
                    _ => Err(unresolvable(context, format!("GetAtt {inner}"))),
                }
            }
            "Fn::Sub" => {
                let (template, variables) = match inner {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(parts) if parts.len() == 2 && parts[0].is_string() => {
                        (parts[0].as_str().expect("checked"), Some(&parts[1]))
                    }
                    _ => return Err(unresolvable(context, format!("Sub {inner}"))),
                };
                let mut out = template.to_owned();
                for name in sub_names(template) {
                    let given = match variables.and_then(|v| v.get(&name)) {
                        Some(v) => self.resolve(v, context)?.map(|v| scalar_text(&v)),
                        None => None,
                    };
                    let replacement = given
                        .or_else(|| match name.split_once('.') {
                            Some((resource, attribute)) if !name.starts_with("AWS::") => {
                                self.lookup.attribute(resource, attribute)
                            }
                            _ => self.name(&name),
                        })
                        .ok_or_else(|| unresolvable(context, format!("${{{name}}} in Sub")))?;
                    out = out.replace(&format!("${{{name}}}"), &replacement);
                }
                text(out.replace("${!", "${"))
            }
            "Fn::Join" => {
                let [separator, items] =
                    pair(inner).ok_or_else(|| unresolvable(context, format!("Join {inner}")))?;
                let items = self
                    .resolve(items, context)?
                    .unwrap_or(Value::Array(Vec::new()));
                let strings: Vec<String> = items
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(scalar_text)
                    .collect();
                text(strings.join(separator.as_str().unwrap_or("")))
            }
            "Fn::Select" => {
                let [index, items] =
                    pair(inner).ok_or_else(|| unresolvable(context, format!("Select {inner}")))?;
                let index = self
                    .resolve(index, context)?
                    .map(|i| scalar_text(&i))
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| unresolvable(context, format!("Select {inner}")))?;
                let items = self.resolve(items, context)?;
                let item = items.as_ref().and_then(|items| items.get(index)).cloned();
                item.map(Some)
                    .ok_or_else(|| unresolvable(context, format!("Select {inner}")))
            }
            "Fn::If" => {
                let parts = inner
                    .as_array()
                    .filter(|p| p.len() == 3)
                    .ok_or_else(|| unresolvable(context, format!("If {inner}")))?;
                let name = parts[0]
                    .as_str()
                    .ok_or_else(|| unresolvable(context, format!("If {inner}")))?;
                let chosen = if self.condition(name, context)? {
                    &parts[1]
                } else {
                    &parts[2]
                };
                self.resolve(chosen, context)
            }
            "Fn::Equals" => {
                let [a, b] =
                    pair(inner).ok_or_else(|| unresolvable(context, format!("Equals {inner}")))?;
                let a = self.resolve(a, context)?.map(|v| scalar_text(&v));
                let b = self.resolve(b, context)?.map(|v| scalar_text(&v));
                Ok(Some(Value::Bool(a == b)))
            }
            "Fn::Not" | "Fn::And" | "Fn::Or" => {
                let operands = inner
                    .as_array()
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| unresolvable(context, format!("{key} {inner}")))?;
                let mut values = Vec::with_capacity(operands.len());
                for operand in operands {
                    values.push(self.truth(operand, context)?);
                }
                Ok(Some(Value::Bool(match key {
                    "Fn::Not" => !values[0],
                    "Fn::And" => values.iter().all(|v| *v),
                    _ => values.iter().any(|v| *v),
                })))
            }
            "Condition" => {
                let name = inner
                    .as_str()
                    .ok_or_else(|| unresolvable(context, format!("Condition {inner}")))?;
                Ok(Some(Value::Bool(self.condition(name, context)?)))
            }
            other => Err(TemplateError::UnknownIntrinsic {
                context: context.to_owned(),
                name: other.to_owned(),
                supported: SUPPORTED,
            }),
        }
    }

    /// What `Ref name` (or `${name}` in a Sub) means: a pseudo parameter, a parameter or a resource.
    fn name(&self, name: &str) -> Option<String> {
        if name.starts_with("AWS::") {
            self.lookup.pseudo(name)
        } else {
            self.lookup
                .parameter(name)
                .or_else(|| self.lookup.reference(name))
        }
    }
}

fn is_intrinsic(map: &Map<String, Value>) -> bool {
    map.keys()
        .next()
        .is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
}

fn pair(value: &Value) -> Option<[&Value; 2]> {
    match value.as_array()?.as_slice() {
        [a, b] => Some([a, b]),
        _ => None,
    }
}

fn unresolvable(context: &str, what: String) -> TemplateError {
    TemplateError::Unresolvable {
        context: context.to_owned(),
        what,
    }
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
                ("Fn::GetAtt", Value::String(dotted)) => {
                    found.extend(dotted.split('.').next().map(str::to_owned))
                }
                ("Fn::Sub", Value::String(text)) => found.extend(sub_targets(text, None)),
                ("Fn::Sub", Value::Array(parts)) if parts.len() == 2 => {
                    let text = parts[0].as_str().unwrap_or_default();
                    found.extend(sub_targets(text, parts[1].as_object()));
                    collect_references(&parts[1], found);
                }
                _ => collect_references(inner, found),
            }
        }
        Value::Object(map) => map.values().for_each(|v| collect_references(v, found)),
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// The logical ids named by `${...}` in a Sub string, less the ones its variable map defines.
fn sub_targets(text: &str, variables: Option<&Map<String, Value>>) -> Vec<String> {
    sub_names(text)
        .into_iter()
        .filter(|n| variables.is_none_or(|v| !v.contains_key(n)))
        .map(|n| n.split('.').next().unwrap_or("").to_owned())
        .collect()
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

/// A scalar as CloudFormation would put it in a string.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
