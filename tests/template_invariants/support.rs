//! Reading the template for the checks, and breaking it for the mistakes they must catch.

use serde_json::Value;
use snapglow_local::template::{Lookup, Template, scalar_text};

/// The template as YAML, CloudFormation's short tags (`!Ref`, `!Sub`, `!GetAtt`) kept as tags.
pub type Yaml = serde_yaml_ng::Value;

// ------------------------------------------------------------------ reading

pub fn int(value: Option<&Value>) -> Option<i64> {
    value.map(scalar_text).and_then(|t| t.parse().ok())
}

/// A resource's properties, or null when it is missing.
pub fn properties(template: &Template, id: &str) -> Value {
    template
        .resources
        .get(id)
        .map(|r| r.properties.clone())
        .unwrap_or(Value::Null)
}

/// A function's setting, or the Globals' when it has none.
pub fn setting(template: &Template, props: &Value, key: &str) -> Value {
    props
        .get(key)
        .or_else(|| template.globals_function.get(key))
        .cloned()
        .unwrap_or(Value::Null)
}

/// One value or a list of them, as a list.
pub fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    }
}

/// One event of a function: `kind` is its Type, `props` its Properties.
pub struct Event {
    pub function: String,
    pub name: String,
    pub kind: String,
    pub props: Value,
}

impl Event {
    pub fn id(&self) -> String {
        format!("{}.{}", self.function, self.name)
    }
}

/// Every event of every function.
pub fn events(template: &Template) -> Vec<Event> {
    template
        .of_kind("AWS::Serverless::Function")
        .flat_map(|function| {
            function
                .properties
                .get("Events")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, event)| Event {
                    function: function.logical_id.clone(),
                    name: name.clone(),
                    kind: scalar_text(&event["Type"]),
                    props: event["Properties"].clone(),
                })
        })
        .collect()
}

/// Whether a function has an event of this Type.
pub fn reads(template: &Template, function: &str, kind: &str) -> bool {
    events(template)
        .iter()
        .any(|e| e.function == function && e.kind == kind)
}

/// One statement of a role's inline policies.
pub struct Statement {
    pub role: String,
    pub actions: Vec<String>,
    pub resources: Vec<Value>,
}

pub fn statements(template: &Template) -> Vec<Statement> {
    let mut found = Vec::new();
    for role in template.of_kind("AWS::IAM::Role") {
        for policy in as_list(role.properties.get("Policies")) {
            for statement in as_list(policy.pointer("/PolicyDocument/Statement")) {
                found.push(Statement {
                    role: role.logical_id.clone(),
                    actions: as_list(statement.get("Action"))
                        .iter()
                        .map(scalar_text)
                        .collect(),
                    resources: as_list(statement.get("Resource")),
                });
            }
        }
    }
    found
}

/// The properties of every CloudWatch alarm.
pub fn alarms(template: &Template) -> Vec<&Value> {
    template
        .of_kind("AWS::CloudWatch::Alarm")
        .map(|a| &a.properties)
        .collect()
}

/// How many alarms watch `metric` with `dimension` among their dimensions.
pub fn alarms_on(template: &Template, metric: &str, dimension: &Value) -> usize {
    alarms(template)
        .iter()
        .filter(|a| {
            a.get("MetricName").and_then(Value::as_str) == Some(metric)
                && serde_json::to_string(a.get("Dimensions").unwrap_or(&Value::Null))
                    .is_ok_and(|d| d.contains(&dimension.to_string()))
        })
        .count()
}

/// The parameters of a deploy to one stage (only `Stage` matters to the conditions checked).
pub struct Stage(pub &'static str);

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

// ------------------------------------------------------------------ breaking

/// One change to the parsed template.
///
/// A path is keys joined by dots: `Resources.ResizeFunction.Properties.Timeout`. In a list, a
/// step is an index (`0`) or picks the item with a key of that value (`Sid=ReadUploads`). Tags
/// are stepped through: `DeletionProtectionEnabled.1` is the `true` of `!If [IsProd, true, false]`.
/// Values are YAML (`"!Ref UploadsBucket"`). A path the template no longer has fails the test,
/// naming it: update the mistake.
#[derive(Debug)]
pub enum Change {
    /// Replaces the value at a path.
    Set(&'static str, &'static str),
    /// Adds a path that does not exist yet.
    Add(&'static str, &'static str),
    Remove(&'static str),
    /// Gives a path's key another name, keeping its value.
    Rename(&'static str, &'static str),
    /// Replaces text once in the text value at a path.
    Edit(&'static str, &'static str, &'static str),
}

impl Change {
    pub fn apply(&self, doc: &mut Yaml) {
        match *self {
            Change::Set(path, yaml) => set(doc, path, yaml),
            Change::Add(path, yaml) => add(doc, path, yaml),
            Change::Remove(path) => remove(doc, path),
            Change::Rename(path, to) => rename(doc, path, to),
            Change::Edit(path, from, to) => edit(doc, path, from, to),
        }
    }
}

fn untag(value: &mut Yaml) -> &mut Yaml {
    match value {
        Yaml::Tagged(tagged) => untag(&mut tagged.value),
        other => other,
    }
}

fn step<'a>(here: &'a mut Yaml, step: &str) -> Option<&'a mut Yaml> {
    match untag(here) {
        Yaml::Mapping(map) => map.get_mut(step),
        Yaml::Sequence(items) => match step.split_once('=') {
            Some((key, value)) => items
                .iter_mut()
                .find(|item| item.get(key).and_then(Yaml::as_str) == Some(value)),
            None => items.get_mut(step.parse::<usize>().ok()?),
        },
        _ => None,
    }
}

/// The value at `path`.
fn at<'a>(doc: &'a mut Yaml, path: &str) -> &'a mut Yaml {
    let mut here = doc;
    for key in path.split('.') {
        here = step(here, key).unwrap_or_else(|| {
            panic!("template.yaml has no {path} (no {key:?}); update this mistake")
        });
    }
    here
}

fn snippet(yaml: &str) -> Yaml {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml:?} is not YAML: {e}"))
}

/// The mapping that holds `path`'s last key, and that key.
fn parent<'a>(doc: &'a mut Yaml, path: &'a str) -> (&'a mut serde_yaml_ng::Mapping, &'a str) {
    let (above, key) = path.rsplit_once('.').unwrap_or(("", path));
    let holder = if above.is_empty() {
        doc
    } else {
        at(doc, above)
    };
    match untag(holder) {
        Yaml::Mapping(map) => (map, key),
        _ => panic!("template.yaml: {above} is not a mapping; update this mistake"),
    }
}

/// Replaces the value at `path` with `yaml`.
fn set(doc: &mut Yaml, path: &str, yaml: &str) {
    *at(doc, path) = snippet(yaml);
}

/// Adds `path`, which must not exist yet, with the value `yaml`.
fn add(doc: &mut Yaml, path: &str, yaml: &str) {
    let (map, key) = parent(doc, path);
    assert!(
        !map.contains_key(key),
        "template.yaml already has {path}; update this mistake"
    );
    map.insert(Yaml::String(key.to_owned()), snippet(yaml));
}

/// Removes `path`.
fn remove(doc: &mut Yaml, path: &str) {
    let (map, key) = parent(doc, path);
    assert!(
        map.shift_remove(key).is_some(),
        "template.yaml has no {path}; update this mistake"
    );
}

/// Gives `path`'s key another name, keeping its value.
fn rename(doc: &mut Yaml, path: &str, to: &str) {
    let (map, key) = parent(doc, path);
    let value = map
        .shift_remove(key)
        .unwrap_or_else(|| panic!("template.yaml has no {path}; update this mistake"));
    map.insert(Yaml::String(to.to_owned()), value);
}

/// Replaces `from` with `to` once in the text value at `path`.
fn edit(doc: &mut Yaml, path: &str, from: &str, to: &str) {
    let Yaml::String(text) = untag(at(doc, path)) else {
        panic!("template.yaml: {path} is not text; update this mistake")
    };
    assert!(
        text.contains(from),
        "template.yaml: {path} no longer holds {from:?}; update this mistake"
    );
    *text = text.replacen(from, to, 1);
}
