//! The deploy's preflight, offline: what CloudFormation would refuse, or would accept and leave
//! data behind, found before `sam deploy` (`make deploy` runs this file first, `make test` on
//! every change):
//!
//! - every samconfig.toml environment's `parameter_overrides` against template.yaml's
//!   `Parameters` and `Rules`, checked the way CloudFormation checks a change set's parameters;
//! - stack names against the bucket names they become part of;
//! - template.yaml against the last release's (the commit in deploy/last-release): no update
//!   that replaces or drops what holds data, and none that CloudFormation fails halfway;
//! - the stack policy, the import template (deploy/retained.yaml) and the runbook's import list
//!   against the resources the template retains;
//! - the delete path against the one bucket a stack delete removes.
//!
//! What only AWS can tell is listed in docs/RUNBOOK.md, "What the preflight cannot see".

use regex_lite::Regex;
use serde_json::Value;
use snapglow_local::stack::project::project_root;
use snapglow_local::template::{Template, document, scalar_text};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn read(relative: &str) -> String {
    let path = project_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parsed(text: &str) -> Value {
    document(text).unwrap_or_else(|e| panic!("{e}"))
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    template
        .get("Resources")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

fn kind(resource: &Value) -> &str {
    resource.get("Type").and_then(Value::as_str).unwrap_or("")
}

// ------------------------------------------------------------------ samconfig.toml

/// samconfig.toml as SAM CLI reads it: `[env.command.parameters]` tables of scalar keys. Only
/// the TOML this file uses is read (strings, booleans, numbers); anything else is an error that
/// names the line, so that the preflight never silently checks less than SAM reads.
type Tables = BTreeMap<String, BTreeMap<String, String>>;

/// A samconfig.toml line the preflight does not read.
#[derive(Debug, thiserror::Error)]
#[error("samconfig.toml line {line}: {problem}: {text}")]
struct SamconfigError {
    line: usize,
    text: String,
    problem: TomlError,
}

/// What of TOML the preflight does not read, where SAM would read it unchecked.
#[derive(Debug, thiserror::Error)]
enum TomlError {
    #[error("expected `key = value`")]
    NotKeyValue,
    #[error(
        "this preflight reads strings, booleans and numbers, not `{0}` (SAM would read it, unchecked)"
    )]
    Unsupported(String),
    #[error("unsupported escape \\{0:?}")]
    Escape(Option<char>),
    #[error("unexpected `{0}` after the string")]
    AfterString(String),
    #[error("unterminated string")]
    Unterminated,
}

fn parse_samconfig(text: &str) -> Result<Tables, SamconfigError> {
    let mut tables = Tables::new();
    let mut current = String::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_owned();
            tables.entry(current.clone()).or_default();
            continue;
        }
        let at = |problem| SamconfigError {
            line: number + 1,
            text: raw.to_owned(),
            problem,
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| at(TomlError::NotKeyValue))?;
        let value = toml_scalar(value.trim()).map_err(at)?;
        tables
            .entry(current.clone())
            .or_default()
            .insert(key.trim().to_owned(), value);
    }
    Ok(tables)
}

fn toml_scalar(text: &str) -> Result<String, TomlError> {
    let Some(quoted) = text.strip_prefix('"') else {
        let bare = text.split('#').next().unwrap_or("").trim();
        return if bare == "true" || bare == "false" || bare.parse::<f64>().is_ok() {
            Ok(bare.to_owned())
        } else {
            Err(TomlError::Unsupported(bare.to_owned()))
        };
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => return Err(TomlError::Escape(other)),
            },
            '"' => {
                let tail = chars.as_str().trim();
                return if tail.is_empty() || tail.starts_with('#') {
                    Ok(out)
                } else {
                    Err(TomlError::AfterString(tail.to_owned()))
                };
            }
            c => out.push(c),
        }
    }
    Err(TomlError::Unterminated)
}

/// One `sam deploy --config-env <name>`. SAM reads only that environment's tables (they do not
/// inherit from `default`), the command's own table before `global`.
struct Environment {
    name: String,
    stack_name: Option<String>,
    overrides: Option<String>,
}

fn environments(tables: &Tables) -> Vec<Environment> {
    let names: BTreeSet<&str> = tables
        .keys()
        .filter_map(|t| t.split_once('.').map(|(env, _)| env))
        .collect();
    names
        .into_iter()
        .filter(|env| tables.contains_key(&format!("{env}.deploy.parameters")))
        .map(|env| {
            let key = |name: &str| {
                ["deploy", "global"].iter().find_map(|command| {
                    tables
                        .get(&format!("{env}.{command}.parameters"))
                        .and_then(|t| t.get(name))
                        .cloned()
                })
            };
            Environment {
                name: env.to_owned(),
                stack_name: key("stack_name"),
                overrides: key("parameter_overrides"),
            }
        })
        .collect()
}

/// SAM CLI's `parameter_overrides`: `Key=Value` pairs separated by spaces, a value optionally
/// in double or single quotes (which may then hold spaces).
/// A `parameter_overrides` SAM CLI would not read as this preflight does.
#[derive(Debug, thiserror::Error)]
enum OverridesError {
    #[error("`{0}` is not Key=Value")]
    NotKeyValue(String),
    #[error("{key}: unterminated {quote}")]
    Unterminated { key: String, quote: char },
    #[error("{0} is set twice")]
    SetTwice(String),
}

/// A samconfig environment's parameter overrides, by name.
type Overrides = BTreeMap<String, String>;

fn parse_overrides(text: &str) -> Result<Overrides, OverridesError> {
    let mut pairs = BTreeMap::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .filter(|(key, _)| !key.contains(char::is_whitespace))
            .ok_or_else(|| OverridesError::NotKeyValue(rest.to_owned()))?;
        let (value, after) = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &after[1..];
                let end = body
                    .find(quote)
                    .ok_or_else(|| OverridesError::Unterminated {
                        key: key.to_owned(),
                        quote,
                    })?;
                (&body[..end], &body[end + 1..])
            }
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if pairs.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(OverridesError::SetTwice(key.to_owned()));
        }
        rest = after.trim_start();
    }
    Ok(pairs)
}

// ------------------------------------------------------------------ parameters, as CloudFormation checks them

fn number(value: Option<&Value>) -> Option<f64> {
    value.and_then(|v| scalar_text(v).trim().parse().ok())
}

/// What CloudFormation says about one parameter value (its words, from the change set's
/// validation error), or nothing when it accepts it.
fn value_problems(name: &str, spec: &Value, value: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ty = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
    let items: Vec<&str> = match ty {
        "Number" | "String" => vec![value],
        "CommaDelimitedList" | "List<Number>" => value.split(',').map(str::trim).collect(),
        other => {
            return vec![format!(
                "type {other} is not checked by this preflight: add it to value_problems in tests/deploy_preflight.rs"
            )];
        }
    };
    for item in &items {
        if ty == "Number" || ty == "List<Number>" {
            let Ok(n) = item.trim().parse::<f64>() else {
                found.push(format!("Parameter '{name}' must be a number"));
                continue;
            };
            if let Some(min) = number(spec.get("MinValue")).filter(|min| n < *min) {
                found.push(format!(
                    "Parameter '{name}' must be a number not less than {min}"
                ));
            }
            if let Some(max) = number(spec.get("MaxValue")).filter(|max| n > *max) {
                found.push(format!(
                    "Parameter '{name}' must be a number not greater than {max}"
                ));
            }
        }
        if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_array) {
            let allowed: Vec<String> = allowed.iter().map(scalar_text).collect();
            if !allowed.iter().any(|a| a == item) {
                found.push(format!(
                    "Parameter '{name}' must be one of AllowedValues ({})",
                    allowed.join(", ")
                ));
            }
        }
    }
    if ty == "String" {
        let chars = value.chars().count() as f64;
        if let Some(min) = number(spec.get("MinLength")).filter(|min| chars < *min) {
            found.push(format!(
                "Parameter '{name}' must contain at least {min} characters"
            ));
        }
        if let Some(max) = number(spec.get("MaxLength")).filter(|max| chars > *max) {
            found.push(format!(
                "Parameter '{name}' must contain at most {max} characters"
            ));
        }
        if let Some(pattern) = spec.get("AllowedPattern").map(scalar_text) {
            // CloudFormation matches the whole value.
            let whole = Regex::new(&format!("^(?:{pattern})$"))
                .unwrap_or_else(|e| panic!("{name}: AllowedPattern {pattern:?}: {e}"));
            if !whole.is_match(value) {
                found.push(match spec.get("ConstraintDescription").map(scalar_text) {
                    Some(why) => format!("Parameter '{name}' failed to satisfy constraint: {why}"),
                    None => format!("Parameter '{name}' must match pattern {pattern}"),
                });
            }
        }
    }
    found
}

/// A rule's condition or assertion, evaluated over the parameter values (CloudFormation's rule
/// functions; one it does not know is an error, never a pass).
/// A rule the preflight cannot evaluate: it says so rather than pass it.
#[derive(Debug, thiserror::Error)]
enum RuleError {
    #[error("Ref {0}: no such parameter")]
    NoSuchParameter(Value),
    #[error("{0} is not a condition")]
    NotCondition(Value),
    #[error("{function} takes {takes}")]
    Arguments {
        function: &'static str,
        takes: &'static str,
    },
    #[error(
        "rule function {0} is not evaluated by this preflight: add it to rule_value in tests/deploy_preflight.rs"
    )]
    Unknown(String),
    #[error("{0} is not a rule expression")]
    NotExpression(Value),
}

fn rule_value(expression: &Value, values: &BTreeMap<String, String>) -> Result<Value, RuleError> {
    let truth = |v: &Value| -> Result<bool, RuleError> {
        rule_value(v, values)?
            .as_bool()
            .ok_or_else(|| RuleError::NotCondition(v.clone()))
    };
    Ok(match expression {
        Value::String(_) | Value::Bool(_) | Value::Number(_) => expression.clone(),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| rule_value(i, values))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) if map.len() == 1 => {
            let (function, args) = map.iter().next().expect("one entry");
            let list = || args.as_array().cloned().unwrap_or_default();
            match function.as_str() {
                "Ref" => Value::String(
                    values
                        .get(&scalar_text(args))
                        .cloned()
                        .ok_or_else(|| RuleError::NoSuchParameter(args.clone()))?,
                ),
                "Fn::Equals" => {
                    let sides = list();
                    let [a, b] = sides.as_slice() else {
                        return Err(RuleError::Arguments {
                            function: "Fn::Equals",
                            takes: "two values",
                        });
                    };
                    Value::Bool(
                        scalar_text(&rule_value(a, values)?)
                            == scalar_text(&rule_value(b, values)?),
                    )
                }
                "Fn::Not" => Value::Bool(!truth(list().first().unwrap_or(&Value::Null))?),
                "Fn::And" => Value::Bool(
                    list()
                        .iter()
                        .map(truth)
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .all(|b| b),
                ),
                "Fn::Or" => Value::Bool(
                    list()
                        .iter()
                        .map(truth)
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .any(|b| b),
                ),
                "Fn::Contains" => {
                    let args = list();
                    let [within, item] = args.as_slice() else {
                        return Err(RuleError::Arguments {
                            function: "Fn::Contains",
                            takes: "a list and a value",
                        });
                    };
                    let item = scalar_text(&rule_value(item, values)?);
                    let within = rule_value(within, values)?;
                    Value::Bool(
                        within
                            .as_array()
                            .is_some_and(|l| l.iter().any(|v| scalar_text(v) == item)),
                    )
                }
                other => return Err(RuleError::Unknown(other.to_owned())),
            }
        }
        other => return Err(RuleError::NotExpression(other.clone())),
    })
}

/// Everything CloudFormation would refuse about a deploy of `template` with these overrides,
/// before it creates or changes anything. Empty when it would accept them.
fn parameter_refusals(
    env: &str,
    template: &Value,
    given: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut found = Vec::new();
    let declared = template
        .get("Parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for key in given.keys().filter(|k| !declared.contains_key(*k)) {
        found.push(format!(
            "[{env}] parameter_overrides sets {key}, which template.yaml does not declare: CloudFormation refuses the change set (Parameters: [{key}] do not exist in the template); remove it from samconfig.toml or declare it"
        ));
    }
    let mut values = BTreeMap::new();
    for (name, spec) in &declared {
        let (value, source) = match (given.get(name), spec.get("Default")) {
            (Some(value), _) => (value.clone(), "samconfig.toml"),
            (None, Some(default)) => (scalar_text(default), "the template's Default"),
            (None, None) => {
                found.push(format!(
                    "[{env}] {name} has no Default and parameter_overrides does not set it: CloudFormation refuses the change set (Parameters: [{name}] must have values); add {name}=\"...\" to samconfig.toml"
                ));
                continue;
            }
        };
        for problem in value_problems(name, spec, &value) {
            found.push(format!(
                "[{env}] {name}=\"{value}\" (from {source}): {problem}, so CloudFormation refuses the change set; fix the value in {source}"
            ));
        }
        values.insert(name.clone(), value);
    }
    let rules = template
        .get("Rules")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (rule, body) in rules {
        let applies = match body.get("RuleCondition") {
            None => Ok(true),
            Some(condition) => rule_value(condition, &values).map(|v| v.as_bool().unwrap_or(false)),
        };
        match applies {
            Err(e) => found.push(format!("[{env}] rule {rule}: {e}")),
            Ok(false) => {}
            Ok(true) => {
                for assertion in body
                    .get("Assertions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let why = assertion
                        .get("AssertDescription")
                        .map(scalar_text)
                        .unwrap_or_default();
                    match rule_value(&assertion["Assert"], &values) {
                        Ok(Value::Bool(true)) => {}
                        Ok(_) => found.push(format!(
                            "[{env}] rule {rule} fails: {why} CloudFormation refuses the change set; fix samconfig.toml's parameter_overrides"
                        )),
                        Err(e) => found.push(format!("[{env}] rule {rule}: {e}")),
                    }
                }
            }
        }
    }
    found
}

/// Every refusal for every deploy environment of a samconfig.toml.
fn samconfig_refusals(samconfig: &str, template: &Value) -> Vec<String> {
    let tables = match parse_samconfig(samconfig) {
        Ok(tables) => tables,
        Err(e) => return vec![e.to_string()],
    };
    let mut found = Vec::new();
    for env in environments(&tables) {
        let given = match env.overrides.as_deref().map(parse_overrides) {
            None => BTreeMap::new(),
            Some(Ok(given)) => given,
            Some(Err(e)) => {
                found.push(format!("[{}] parameter_overrides: {e}", env.name));
                continue;
            }
        };
        found.extend(parameter_refusals(&env.name, template, &given));
    }
    found
}

// ------------------------------------------------------------------ stack names

const ACCOUNT_ID_DIGITS: usize = 12;
const BUCKET_NAME_MAX: usize = 63;

/// The longest stack name every bucket of the template allows: its name is
/// `${AWS::StackName}-<purpose>-${AWS::AccountId}`, an account id is 12 digits, and S3 allows
/// 63 characters. Panics on a placeholder it cannot size, so that the limit is never a guess.
fn stack_name_limit(template: &Value) -> (usize, String) {
    let mut tightest = (usize::MAX, String::new());
    for (id, resource) in resources(template) {
        if kind(resource) != "AWS::S3::Bucket" {
            continue;
        }
        let Some(name) = resource
            .pointer("/Properties/BucketName/Fn::Sub")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let fixed = name
            .replace("${AWS::StackName}", "")
            .replace("${AWS::AccountId}", &"0".repeat(ACCOUNT_ID_DIGITS));
        assert!(
            !fixed.contains("${"),
            "{id}: BucketName {name:?} has a placeholder stack_name_limit cannot size; teach it"
        );
        let limit = BUCKET_NAME_MAX.saturating_sub(fixed.len());
        if limit < tightest.0 {
            tightest = (limit, format!("{id}: {name}"));
        }
    }
    tightest
}

/// Why CloudFormation would accept the stack name and S3 then refuse the first bucket, mid-create.
fn stack_name_problems(name: &str, (limit, longest): &(usize, String)) -> Vec<String> {
    let mut found = Vec::new();
    if !Regex::new("^[a-z][a-z0-9-]*$")
        .expect("regex")
        .is_match(name)
    {
        found.push(format!(
            "stack name {name:?}: it must start with a lowercase letter and hold only lowercase letters, digits and hyphens: it is part of every bucket name, where S3 allows no uppercase letter (and CloudFormation wants a letter first)"
        ));
    }
    if name.len() > *limit {
        found.push(format!(
            "stack name {name:?} has {} characters: at most {limit}, so that the longest bucket name ({longest}, a 12-digit account id) fits S3's {BUCKET_NAME_MAX}",
            name.len()
        ));
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            found.push(format!(
                "stack name {name:?}: S3 refuses bucket names starting with {prefix}"
            ));
        }
    }
    found
}

fn samconfig_stack_name_problems(samconfig: &str, template: &Value) -> Vec<String> {
    let limit = stack_name_limit(template);
    let tables = parse_samconfig(samconfig).unwrap_or_else(|e| panic!("{e}"));
    let mut found = Vec::new();
    for env in environments(&tables) {
        match env.stack_name {
            None => found.push(format!(
                "[{}] samconfig.toml names no stack_name: `make deploy` reads it there",
                env.name
            )),
            Some(name) => found.extend(
                stack_name_problems(&name, &limit)
                    .into_iter()
                    .map(|p| format!("[{}] {p}; fix stack_name in samconfig.toml", env.name)),
            ),
        }
    }
    found
}

// ------------------------------------------------------------------ updates over the last release

/// The resources a stack delete or a replacement keeps, by logical id, with their type.
fn retained(template: &Value) -> BTreeMap<String, String> {
    resources(template)
        .iter()
        .filter(|(_, r)| {
            let policy = |name: &str| r.get(name).and_then(Value::as_str).unwrap_or("Delete");
            matches!(policy("DeletionPolicy"), "Retain" | "RetainExceptOnCreate")
                || policy("UpdateReplacePolicy") == "Retain"
        })
        .map(|(id, r)| (id.clone(), kind(r).to_owned()))
        .collect()
}

const POOL_PATH: &str = "safe path: keep the setting; or a migration over several releases: a second pool under a new logical id beside this one, users moved to it (a user migration trigger), every item keyed by an old `sub` re-keyed to the new one, the authorizer switched, then the old pool retired";
const TABLE_PATH: &str = "safe path: a migration: a new table under a new logical id and name in one release, filled from this one (export or scan) while both are written, readers switched, this one removed in a later release";
const NAME_PATH: &str = "safe path: keep the name; to move the data, a migration to a new resource under a new logical id over two releases";

/// Properties that cannot change in place (CloudFormation's "Update requires: Replacement", or
/// fixed by the service at creation), with what a change does to the data and the safe path.
const IMMUTABLE: &[(&str, &str, &str, &str)] = &[
    (
        "AWS::Cognito::UserPool",
        "AliasAttributes",
        "sign-in attributes are fixed when a pool is created: CloudFormation replaces the pool, a new issuer where every user signs up again with a new `sub`, orphaning every image, like and inbox keyed by the old one (Retain keeps only the old, unused pool)",
        POOL_PATH,
    ),
    (
        "AWS::Cognito::UserPool",
        "UsernameAttributes",
        "sign-in attributes are fixed when a pool is created: CloudFormation replaces the pool, a new issuer where every user signs up again with a new `sub`, orphaning every image, like and inbox keyed by the old one (Retain keeps only the old, unused pool)",
        POOL_PATH,
    ),
    (
        "AWS::Cognito::UserPool",
        "UsernameConfiguration",
        "username case sensitivity is fixed when a pool is created: CloudFormation replaces the pool, and every user gets a new `sub`, orphaning their images, likes and inboxes",
        POOL_PATH,
    ),
    (
        "AWS::DynamoDB::Table",
        "KeySchema",
        "a table's key schema is fixed at creation: CloudFormation must replace the table, which it refuses for a named table (the update fails)",
        TABLE_PATH,
    ),
    (
        "AWS::DynamoDB::Table",
        "LocalSecondaryIndexes",
        "local secondary indexes exist only from a table's creation: CloudFormation must replace the table, which it refuses for a named table (the update fails)",
        TABLE_PATH,
    ),
    (
        "AWS::DynamoDB::Table",
        "TableName",
        "a new name is a new, empty table: the old one leaves the stack with every item (UpdateReplacePolicy: Retain) and nothing reads it",
        NAME_PATH,
    ),
    (
        "AWS::S3::Bucket",
        "BucketName",
        "a new name is a new, empty bucket: the old one leaves the stack with every object and nothing reads it",
        NAME_PATH,
    ),
    (
        "AWS::SQS::Queue",
        "QueueName",
        "a new name is a new, empty queue: the old one leaves the stack (or is deleted) with the messages it held",
        NAME_PATH,
    ),
    (
        "AWS::SQS::Queue",
        "FifoQueue",
        "a queue's type is fixed at creation: CloudFormation must replace it, which it refuses for a named queue",
        NAME_PATH,
    ),
    (
        "AWS::Kinesis::Stream",
        "Name",
        "a new name is a new, empty stream: the records not yet read and every consumer's position go with the old one",
        NAME_PATH,
    ),
];

fn by_name<'a>(list: Option<&'a Value>, key: &str) -> BTreeMap<String, &'a Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| (item.get(key).map(scalar_text).unwrap_or_default(), item))
        .collect()
}

/// Everything about deploying `new` over a stack made from `old` that CloudFormation would
/// refuse, or accept while replacing or dropping what holds data. Empty when the update is safe.
fn update_refusals(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let new_resources = resources(new);
    let new_retained = retained(new);
    for (id, kind_was) in retained(old) {
        match new_resources.get(&id) {
            None => found.push(format!(
                "{id} ({kind_was}) is retained and no longer in template.yaml (removed, or its logical id renamed): CloudFormation drops it from the stack and keeps it, data and all, outside it where nothing reads it, and a renamed copy is a new, empty resource whose fixed name collides with the kept one (\"already exists\"); the stack policy refuses this update (Update:Delete). Safe path: keep the logical id; to retire it, two releases: first stop every reader and writer, then remove it and export or delete its data by hand"
            )),
            Some(now) if kind(now) != kind_was => found.push(format!(
                "{id}: its Type changes from {kind_was} to {}: CloudFormation replaces it, and the retained original leaves the stack with its data. {TABLE_PATH}",
                kind(now)
            )),
            Some(_) if !new_retained.contains_key(&id) => found.push(format!(
                "{id} ({kind_was}) is no longer retained (DeletionPolicy/UpdateReplacePolicy): a stack delete or a replacement would delete its data. Safe path: keep DeletionPolicy: RetainExceptOnCreate and UpdateReplacePolicy: Retain"
            )),
            Some(_) => {}
        }
    }
    for (id, was) in resources(old) {
        let Some(now) = new_resources.get(id).filter(|now| kind(now) == kind(was)) else {
            continue;
        };
        let property = |r: &Value, name: &str| r.pointer(&format!("/Properties/{name}")).cloned();
        for (resource_kind, name, effect, path) in IMMUTABLE {
            if kind(was) == *resource_kind && property(was, name) != property(now, name) {
                found.push(format!(
                    "{id}.{name} changes ({} -> {}): {effect}. {path}",
                    property(was, name).unwrap_or(Value::Null),
                    property(now, name).unwrap_or(Value::Null)
                ));
            }
        }
        match kind(was) {
            "AWS::Cognito::UserPool" => found.extend(schema_refusals(id, was, now)),
            "AWS::DynamoDB::Table" => found.extend(index_refusals(id, was, now)),
            _ => {}
        }
    }
    found
}

/// A pool's attributes: existing ones cannot change or go, new ones cannot be required.
fn schema_refusals(id: &str, was: &Value, now: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let old = by_name(was.pointer("/Properties/Schema"), "Name");
    let new = by_name(now.pointer("/Properties/Schema"), "Name");
    for (name, attribute) in &old {
        match new.get(name) {
            None => found.push(format!(
                "{id}.Schema[{name}] is removed: Cognito never removes an attribute from a pool, so the update fails. Safe path: keep it in the template and stop using it"
            )),
            Some(now) if now != attribute => found.push(format!(
                "{id}.Schema[{name}] changes ({attribute} -> {now}): an existing attribute is fixed at the pool's creation, so the update fails (or, for Required, would need a new pool). Safe path: a new custom attribute under a new name"
            )),
            Some(_) => {}
        }
    }
    for (name, attribute) in new.iter().filter(|(name, _)| !old.contains_key(*name)) {
        if attribute.get("Required").map(scalar_text).as_deref() == Some("true") {
            found.push(format!(
                "{id}.Schema[{name}] is added as required: required attributes are fixed at the pool's creation, so the update fails. Safe path: add it with Required: false and require it in the sign-up flow (the web client and the API)"
            ));
        }
    }
    found
}

/// A table's global secondary indexes: DynamoDB creates or deletes one per UpdateTable, and
/// cannot change an index's keys or projection in place.
fn index_refusals(id: &str, was: &Value, now: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let old = by_name(
        was.pointer("/Properties/GlobalSecondaryIndexes"),
        "IndexName",
    );
    let new = by_name(
        now.pointer("/Properties/GlobalSecondaryIndexes"),
        "IndexName",
    );
    let shape = |index: &Value| {
        (
            index.get("KeySchema").cloned(),
            index.get("Projection").cloned(),
        )
    };
    let mut added_or_removed: Vec<String> = Vec::new();
    for (name, index) in &old {
        match new.get(name) {
            None => added_or_removed.push(format!("{name} deleted")),
            Some(now) if shape(now) != shape(index) => found.push(format!(
                "{id}.GlobalSecondaryIndexes[{name}]: its KeySchema or Projection changes: an index cannot change in place (only its throughput can), so the update fails. Safe path: a new index name: create it in one release, switch the queries, delete the old one in the next"
            )),
            Some(_) => {}
        }
    }
    added_or_removed.extend(
        new.keys()
            .filter(|name| !old.contains_key(*name))
            .map(|name| format!("{name} created")),
    );
    if added_or_removed.len() > 1 {
        found.push(format!(
            "{id}: {} global secondary indexes created or deleted in one update ({}): DynamoDB accepts one per update, so CloudFormation fails the update. Safe path: one index per release, the next once the first is ACTIVE",
            added_or_removed.len(),
            added_or_removed.join(", ")
        ));
    }
    found
}

/// template.yaml as released: the commit deploy/last-release names.
fn last_release() -> (String, String) {
    let sha = read("deploy/last-release").trim().to_owned();
    assert!(
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "deploy/last-release must hold the full 40-character sha of the released commit, holds {sha:?}"
    );
    let shown = Command::new("git")
        .args(["show", &format!("{sha}:template.yaml")])
        .current_dir(project_root())
        .output()
        .expect("git runs");
    assert!(
        shown.status.success(),
        "deploy/last-release names {sha}, whose template.yaml this clone cannot read ({}). Fetch it (`git fetch --unshallow`, or `git fetch origin {sha}`) and run again; a CI checkout needs `fetch-depth: 0`",
        String::from_utf8_lossy(&shown.stderr).trim()
    );
    (
        sha,
        String::from_utf8(shown.stdout).expect("template.yaml is UTF-8"),
    )
}

// ------------------------------------------------------------------ the stack policy, the import, the delete

/// A stack policy that does not deny replacing and removing every retained resource, or that
/// allows no update at all.
fn stack_policy_problems(policy: &Value, template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let statements = policy
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items.iter().map(scalar_text).collect(),
            Some(one) => vec![scalar_text(one)],
            None => Vec::new(),
        }
    };
    let covers = |effect: &str, action: &str, resource: &str| {
        statements.iter().any(|s| {
            s.get("Effect").map(scalar_text).as_deref() == Some(effect)
                && list(s.get("Action"))
                    .iter()
                    .any(|a| a == action || a == "Update:*")
                && list(s.get("Resource"))
                    .iter()
                    .any(|r| r == resource || r == "*")
        })
    };
    if !covers("Allow", "Update:Modify", "*") {
        found.push(
            "deploy/stack-policy.json allows no update to the other resources: a stack policy denies everything it does not allow, so every deploy would fail; keep its Allow Update:* on *".to_owned(),
        );
    }
    for (id, kind) in retained(template) {
        for action in ["Update:Replace", "Update:Delete"] {
            if !covers("Deny", action, &format!("LogicalResourceId/{id}")) {
                found.push(format!(
                    "deploy/stack-policy.json does not deny {action} on {id} ({kind}), which holds data: add LogicalResourceId/{id} to its Deny statement"
                ));
            }
        }
    }
    found
}

/// What the uploads bucket in the import template leaves out: properties naming resources that
/// are created only by the full deploy after the import.
const LEFT_OUT_OF_IMPORT: &[(&str, &str)] = &[
    ("UploadsBucket", "CorsConfiguration"),
    ("UploadsBucket", "NotificationConfiguration"),
];

/// The import template must hold exactly the retained resources, as template.yaml declares
/// them, and name nothing else (CloudFormation refuses an import template that does).
fn import_template_problems(import_text: &str, template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Err(e) = Template::parse(import_text) {
        found.push(format!("deploy/retained.yaml: {e}"));
    }
    let import = match document(import_text) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("deploy/retained.yaml: {e}")],
    };
    let wanted = retained(template);
    let held: BTreeSet<&String> = resources(&import).keys().collect();
    for id in wanted.keys().filter(|id| !held.contains(id)) {
        found.push(format!(
            "deploy/retained.yaml lacks {id}, which template.yaml retains: an import without it leaves it outside the new stack and the full deploy fails on \"already exists\"; copy it from template.yaml"
        ));
    }
    for id in held.iter().filter(|id| !wanted.contains_key(id.as_str())) {
        found.push(format!(
            "deploy/retained.yaml holds {id}, which template.yaml does not retain: an import can only adopt resources that exist; remove it"
        ));
    }
    for (id, original) in resources(template)
        .iter()
        .filter(|(id, _)| wanted.contains_key(*id))
    {
        let Some(copy) = resources(&import).get(id) else {
            continue;
        };
        for attribute in ["Type", "DeletionPolicy", "UpdateReplacePolicy", "Condition"] {
            if original.get(attribute) != copy.get(attribute) {
                found.push(format!(
                    "deploy/retained.yaml {id}.{attribute} differs from template.yaml's: copy it"
                ));
            }
        }
        let mut expected = original.get("Properties").cloned().unwrap_or(Value::Null);
        for (_, property) in LEFT_OUT_OF_IMPORT.iter().filter(|(r, _)| r == id) {
            if let Some(props) = expected.as_object_mut() {
                props.remove(*property);
            }
        }
        if copy.get("Properties").cloned().unwrap_or(Value::Null) != expected {
            found.push(format!(
                "deploy/retained.yaml {id}.Properties differ from template.yaml's (apart from what names resources outside the import): copy them, or CloudFormation imports one thing and the next deploy changes it"
            ));
        }
    }
    found
}

/// The runbook's import list (`"LogicalResourceId": "X"` in its resources-to-import JSON).
fn runbook_import_problems(runbook: &str, template: &Value) -> Vec<String> {
    let listed: BTreeSet<String> = Regex::new(r#""LogicalResourceId": "([A-Za-z0-9]+)""#)
        .expect("regex")
        .captures_iter(runbook)
        .map(|c| c[1].to_owned())
        .collect();
    let wanted: BTreeSet<String> = retained(template).into_keys().collect();
    let mut found: Vec<String> = wanted
        .difference(&listed)
        .map(|id| format!("docs/RUNBOOK.md's resources to import lack {id}, which template.yaml retains: add its line"))
        .collect();
    found.extend(listed.difference(&wanted).map(|id| {
        format!(
            "docs/RUNBOOK.md imports {id}, which template.yaml does not retain: remove its line"
        )
    }));
    if !runbook.contains("file://deploy/retained.yaml") {
        found.push(
            "docs/RUNBOOK.md's import must use deploy/retained.yaml (the tested template)"
                .to_owned(),
        );
    }
    found
}

/// One Makefile target: its rule line and recipe, up to the next blank line.
fn recipe(makefile: &str, target: &str) -> String {
    let rule = format!("\n{target}:");
    makefile
        .find(&rule)
        .map(|at| &makefile[at + 1..])
        .map(|from| from.split("\n\n").next().unwrap_or(""))
        .unwrap_or("")
        .to_owned()
}

/// Every bucket a stack delete removes (not retained) must be emptied by `make delete-stack`
/// first, and unversioned (`aws s3 rm` leaves older versions, and CloudFormation deletes only
/// an empty bucket).
fn delete_path_problems(makefile: &str, template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let kept = retained(template);
    let delete = recipe(makefile, "delete-stack");
    let outputs = template
        .get("Outputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (id, bucket) in resources(template) {
        if kind(bucket) != "AWS::S3::Bucket" || kept.contains_key(id) {
            continue;
        }
        if bucket
            .pointer("/Properties/VersioningConfiguration")
            .is_some()
        {
            found.push(format!(
                "{id} is versioned: `aws s3 rm` in make delete-stack leaves its older versions and the stack delete fails; keep it unversioned or delete every version there"
            ));
        }
        let output = outputs
            .iter()
            .find(|(_, o)| o.get("Value") == Some(&serde_json::json!({ "Ref": id })))
            .map(|(name, _)| name.clone());
        let emptied = output.as_ref().is_some_and(|name| {
            let rm = delete.find("aws s3 rm");
            let gone = delete.find("aws cloudformation delete-stack");
            delete.contains(&format!("OutputKey=='{name}'"))
                && matches!((rm, gone), (Some(rm), Some(gone)) if rm < gone)
        });
        if !emptied {
            found.push(format!(
                "{id} is deleted with the stack, but make delete-stack does not empty it first (from an output naming it) before `aws cloudformation delete-stack`: the delete fails once it holds anything. Empty it there, or retain it with its reason"
            ));
        }
    }
    found
}

/// Every log group an HTTP API delivers its access log to must be under /aws/vendedlogs/:
/// otherwise API Gateway adds it to the account's one CloudWatch Logs resource policy, capped
/// at 5,120 characters, and once that is full creating the stage fails.
fn access_log_problems(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (id, api) in resources(template) {
        if !matches!(
            kind(api),
            "AWS::Serverless::HttpApi" | "AWS::ApiGatewayV2::Stage"
        ) {
            continue;
        }
        let destination = api
            .pointer("/Properties/AccessLogSettings/DestinationArn/Fn::GetAtt/0")
            .and_then(Value::as_str);
        let Some(group) = destination else {
            continue;
        };
        let name = resources(template)
            .get(group)
            .and_then(|g| g.pointer("/Properties/LogGroupName"))
            .map(|n| {
                n.get("Fn::Sub")
                    .map(scalar_text)
                    .unwrap_or_else(|| scalar_text(n))
            })
            .unwrap_or_default();
        if !name.starts_with("/aws/vendedlogs/") {
            found.push(format!(
                "{id} logs to {group} ({name:?}), not under /aws/vendedlogs/: API Gateway adds it to the account's 5,120-character CloudWatch Logs resource policy, and the stage fails to create once that is full; name it /aws/vendedlogs/..."
            ));
        }
    }
    found
}

// ------------------------------------------------------------------ the repository as it is

/// Fails with one refusal per line.
fn assert_none(found: &[String], what: &str) {
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
}

#[test]
fn every_samconfig_environment_passes_cloudformations_parameter_checks() {
    // Prepare
    let template = parsed(&read("template.yaml"));
    let samconfig = read("samconfig.toml");
    let envs = environments(&parse_samconfig(&samconfig).expect("samconfig.toml parses"));

    // Act
    let found = samconfig_refusals(&samconfig, &template);

    // Assess: both environments are read (an unread one would pass unchecked), and pass
    let names: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["default", "prod"]);
    assert!(
        envs.iter().all(|e| e.overrides.is_some()),
        "every environment sets parameter_overrides"
    );
    assert_none(
        &found,
        "samconfig.toml against template.yaml's Parameters and Rules",
    );
}

#[test]
fn every_stack_name_fits_the_bucket_names_it_becomes_part_of() {
    // Prepare
    let template = parsed(&read("template.yaml"));
    let makefile = read("Makefile");

    // Act
    let (limit, longest) = stack_name_limit(&template);
    let found = samconfig_stack_name_problems(&read("samconfig.toml"), &template);
    let make_limit: usize = Regex::new(r"STACK_NAME_MAX := (\d+)")
        .expect("regex")
        .captures(&makefile)
        .map(|c| c[1].parse().expect("a number"))
        .expect("the Makefile sets STACK_NAME_MAX");

    // Assess: "-renditions-" (or "-quarantine-") and 12 digits leave 39 of 63; `make deploy`
    // checks the same figure before anything is created
    assert_eq!(limit, 39, "{longest}");
    assert_eq!(
        make_limit, limit,
        "the Makefile's STACK_NAME_MAX must be the template's limit ({longest})"
    );
    assert!(
        recipe(&makefile, "deploy").starts_with("deploy: stack-name"),
        "make deploy checks the stack name first"
    );
    assert_none(&found, "samconfig.toml's stack names");
}

#[test]
fn this_template_updates_the_last_release_without_replacing_or_dropping_data() {
    // Prepare
    let (sha, released) = last_release();

    // Act
    let found = update_refusals(&parsed(&released), &parsed(&read("template.yaml")));

    // Assess
    assert!(
        found.is_empty(),
        "deploying template.yaml over the release {sha} (deploy/last-release):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_stack_policy_denies_replacing_or_removing_every_retained_resource() {
    // Prepare
    let template = parsed(&read("template.yaml"));
    let policy: Value = serde_json::from_str(&read("deploy/stack-policy.json")).expect("JSON");

    // Act
    let found = stack_policy_problems(&policy, &template);

    // Assess: the ten resources that hold data, and nothing else is blocked
    assert_eq!(retained(&template).len(), 10, "{:?}", retained(&template));
    assert_none(&found, "deploy/stack-policy.json");
    assert!(
        recipe(&read("Makefile"), "deploy").contains("stack-policy"),
        "make deploy sets the stack policy"
    );
}

#[test]
fn the_import_recovery_adopts_every_retained_resource_and_names_nothing_else() {
    // Prepare
    let template = parsed(&read("template.yaml"));

    // Act
    let mut found = import_template_problems(&read("deploy/retained.yaml"), &template);
    found.extend(runbook_import_problems(&read("docs/RUNBOOK.md"), &template));

    // Assess
    assert_none(&found, "the import recovery");
}

#[test]
fn deleting_the_stack_empties_the_one_bucket_it_deletes() {
    // Prepare
    let template = parsed(&read("template.yaml"));

    // Act
    let found = delete_path_problems(&read("Makefile"), &template);

    // Assess
    assert_none(&found, "the delete path");
}

#[test]
fn the_access_log_needs_no_room_in_the_accounts_log_resource_policy() {
    // Prepare
    let text = read("template.yaml");
    let old_name = text.replacen("\"/aws/vendedlogs/apigateway/", "\"/aws/apigateway/", 1);

    // Act
    let found = access_log_problems(&parsed(&text));
    let old_found = access_log_problems(&parsed(&old_name));

    // Assess: today's name passes, the name the last release had is refused
    assert_none(&found, "access logs");
    assert_ne!(
        old_name, text,
        "template.yaml names its access log under /aws/vendedlogs/apigateway/"
    );
    assert!(
        old_found
            .iter()
            .any(|f| f.contains("HttpApi logs to HttpApiAccessLogs")),
        "{old_found:?}"
    );
}

// ------------------------------------------------------------------ the checks catch what they must

fn assert_caught(found: &[String], expected: &[&str], case: &str) {
    for part in expected {
        assert!(
            found.iter().any(|f| f.contains(part)),
            "{case}: expected a refusal containing {part:?}, got {found:#?}"
        );
    }
}

#[test]
fn parameters_cloudformation_would_refuse_are_refused_with_its_reason() {
    let template = parsed(&read("template.yaml"));
    let samconfig = read("samconfig.toml");
    // Each case changes the first (default) environment's overrides.
    let cases: [(&str, &str, &str, &[&str]); 7] = [
        (
            "the retention issue 29 found",
            "DedupRetentionHours=\\\"360\\\"",
            "DedupRetentionHours=\\\"192\\\"",
            &[
                "[default] DedupRetentionHours=\"192\"",
                "must be a number not less than 337",
            ],
        ),
        (
            "a stage outside AllowedValues",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"qa\\\"",
            &[
                "[default] Stage=\"qa\"",
                "must be one of AllowedValues (dev, staging, prod)",
            ],
        ),
        (
            "an origin with a trailing slash",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"dev\\\" AllowedOrigin=\\\"https://app.example.com/\\\"",
            &[
                "AllowedOrigin",
                "failed to satisfy constraint: empty, or one origin",
            ],
        ),
        (
            "a parameter the template does not declare",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"dev\\\" Shards=\\\"4\\\"",
            &["sets Shards, which template.yaml does not declare"],
        ),
        (
            "a number that is not one",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"dev\\\" UploadsPerHour=\\\"many\\\"",
            &["Parameter 'UploadsPerHour' must be a number"],
        ),
        (
            "an issuer without its audience (the template's Rules)",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"dev\\\" JwtIssuer=\\\"https://issuer.example.com\\\"",
            &["rule ExternalIssuerNeedsAudience fails: JwtAudience (the client id) is required"],
        ),
        (
            "a value set twice",
            "Stage=\\\"dev\\\"",
            "Stage=\\\"prod\\\" Stage=\\\"dev\\\"",
            &["[default] parameter_overrides: Stage is set twice"],
        ),
    ];
    for (case, good, bad, expected) in cases {
        // Prepare
        assert!(
            samconfig.contains(good),
            "{case}: samconfig.toml no longer contains {good:?}; update this test"
        );
        let broken = samconfig.replacen(good, bad, 1);

        // Act
        let found = samconfig_refusals(&broken, &template);

        // Assess
        assert_caught(&found, expected, case);
    }

    // A parameter without a Default that samconfig does not set
    let no_default = read("template.yaml").replacen(
        "  UploadsPerHour:\n    Type: Number\n    Default: 100\n",
        "  UploadsPerHour:\n    Type: Number\n",
        1,
    );
    let found = samconfig_refusals(&samconfig, &parsed(&no_default));
    assert_caught(
        &found,
        &["[prod] UploadsPerHour has no Default", "must have values"],
        "no default",
    );
}

#[test]
fn an_uppercase_or_overlong_stack_name_is_refused_with_the_rule_and_the_limit() {
    let template = parsed(&read("template.yaml"));
    let samconfig = read("samconfig.toml");
    let cases: [(&str, &[&str]); 4] = [
        (
            "Snapglow",
            &["[default] stack name \"Snapglow\"", "lowercase letter"],
        ),
        (
            "snapglow-photo-sharing-platform-dev-eu-west",
            &["has 43 characters: at most 39", "fits S3's 63"],
        ),
        ("xn--snapglow", &["starting with xn--"]),
        (
            "snap_glow",
            &["hold only lowercase letters, digits and hyphens"],
        ),
    ];
    for (name, expected) in cases {
        // Prepare
        let broken = samconfig.replacen(
            "stack_name = \"snapglow\"",
            &format!("stack_name = \"{name}\""),
            1,
        );

        // Act
        let found = samconfig_stack_name_problems(&broken, &template);

        // Assess
        assert_caught(&found, expected, name);
    }
    // The longest name that fits passes
    assert_eq!(
        stack_name_problems(&"a".repeat(39), &stack_name_limit(&template)),
        Vec::<String>::new()
    );
}

#[test]
fn updates_that_would_orphan_data_or_fail_are_refused_with_the_property_and_the_safe_path() {
    let text = read("template.yaml");
    let old = parsed(&text);
    let two_indexes = "      GlobalSecondaryIndexes:\n        - IndexName: by-tag\n          KeySchema:\n            - { AttributeName: tag, KeyType: HASH }\n          Projection: { ProjectionType: KEYS_ONLY }\n        - IndexName: by-place\n          KeySchema:\n            - { AttributeName: place, KeyType: HASH }\n          Projection: { ProjectionType: KEYS_ONLY }\n        - IndexName: by-owner\n";
    let cases: [(&str, &str, String, &[&str]); 8] = [
        (
            "a pool alias added",
            "      UsernameConfiguration:\n        CaseSensitive: false\n",
            "      UsernameConfiguration:\n        CaseSensitive: false\n      AliasAttributes: [email]\n".to_owned(),
            &["UserPool.AliasAttributes changes", "new `sub`", "safe path: keep the setting; or a migration"],
        ),
        (
            "two GSIs added",
            "      GlobalSecondaryIndexes:\n        - IndexName: by-owner\n",
            two_indexes.to_owned(),
            &["ImagesTable: 2 global secondary indexes created or deleted in one update (by-place created, by-tag created)", "one index per release"],
        ),
        (
            "a retained table renamed (its logical id)",
            "  LikesTable:\n    Type: AWS::DynamoDB::Table\n",
            "  LikeCountsTable:\n    Type: AWS::DynamoDB::Table\n".to_owned(),
            &["LikesTable (AWS::DynamoDB::Table) is retained and no longer in template.yaml", "Safe path: keep the logical id"],
        ),
        (
            "a table's name changed",
            "TableName: !Sub \"${AWS::StackName}-likes\"",
            "TableName: !Sub \"${AWS::StackName}-like-counts\"".to_owned(),
            &["LikesTable.TableName changes", "new, empty table", "safe path: keep the name"],
        ),
        (
            "a table's key changed",
            "      KeySchema:\n        - { AttributeName: pk, KeyType: HASH }\n        - { AttributeName: sk, KeyType: RANGE }\n      TimeToLiveSpecification:",
            "      KeySchema:\n        - { AttributeName: pk, KeyType: HASH }\n      TimeToLiveSpecification:".to_owned(),
            &["LikesTable.KeySchema changes", "refuses for a named table", "safe path: a migration"],
        ),
        (
            "a required attribute added",
            "        - { Name: email, AttributeDataType: String, Required: true, Mutable: true }\n",
            "        - { Name: email, AttributeDataType: String, Required: true, Mutable: true }\n        - { Name: preferred_username, AttributeDataType: String, Required: true, Mutable: true }\n".to_owned(),
            &["UserPool.Schema[preferred_username] is added as required", "Required: false"],
        ),
        (
            "an index changed under its name",
            "            - { AttributeName: created_at, KeyType: RANGE }\n          Projection: { ProjectionType: ALL }",
            "            - { AttributeName: created_at, KeyType: RANGE }\n          Projection: { ProjectionType: KEYS_ONLY }".to_owned(),
            &["ImagesTable.GlobalSecondaryIndexes[by-owner]", "a new index name"],
        ),
        (
            "a retained bucket no longer retained",
            "  QuarantineBucket:\n    Type: AWS::S3::Bucket\n    DeletionPolicy: RetainExceptOnCreate\n    UpdateReplacePolicy: Retain\n",
            "  QuarantineBucket:\n    Type: AWS::S3::Bucket\n".to_owned(),
            &["QuarantineBucket (AWS::S3::Bucket) is no longer retained"],
        ),
    ];
    for (case, good, bad, expected) in cases {
        // Prepare: the working tree's template as released, and one change on top
        assert!(
            text.contains(good),
            "{case}: template.yaml no longer contains {good:?}; update this test"
        );
        let new = parsed(&text.replacen(good, &bad, 1));

        // Act
        let found = update_refusals(&old, &new);

        // Assess
        assert_caught(&found, expected, case);
    }
}

#[test]
fn updates_that_keep_the_data_pass() {
    let text = read("template.yaml");
    let old = parsed(&text);
    let cases = [
        (
            "one GSI added",
            "      GlobalSecondaryIndexes:\n        - IndexName: by-owner\n",
            "      GlobalSecondaryIndexes:\n        - IndexName: by-tag\n          KeySchema:\n            - { AttributeName: tag, KeyType: HASH }\n          Projection: { ProjectionType: KEYS_ONLY }\n        - IndexName: by-owner\n",
        ),
        (
            "an optional attribute added",
            "        - { Name: email, AttributeDataType: String, Required: true, Mutable: true }\n",
            "        - { Name: email, AttributeDataType: String, Required: true, Mutable: true }\n        - { Name: name, AttributeDataType: String, Required: false, Mutable: true }\n",
        ),
        (
            "MFA turned on (an in-place update)",
            "MfaConfiguration: \"OFF\"",
            "MfaConfiguration: \"OPTIONAL\"",
        ),
    ];
    for (case, good, bad) in cases {
        // Prepare
        assert!(
            text.contains(good),
            "{case}: template.yaml no longer contains {good:?}; update this test"
        );
        let new = parsed(&text.replacen(good, bad, 1));

        // Act
        let found = update_refusals(&old, &new);

        // Assess
        assert_eq!(found, Vec::<String>::new(), "{case}");
    }
}

#[test]
fn a_stack_policy_or_an_import_that_misses_a_retained_resource_is_named() {
    // Prepare
    let template = parsed(&read("template.yaml"));
    let policy = read("deploy/stack-policy.json");
    let import = read("deploy/retained.yaml");
    let runbook = read("docs/RUNBOOK.md");
    let pool_line = "        \"LogicalResourceId/UserPool\"\n";
    assert!(policy.contains(pool_line));
    let quarantine_line = Regex::new(
        r#"(?m)^ \{"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "QuarantineBucket".*\n"#,
    )
    .expect("regex");
    assert!(
        quarantine_line.is_match(&runbook),
        "the runbook imports QuarantineBucket"
    );

    // Act
    let without_pool: Value = serde_json::from_str(&policy.replacen(pool_line, "", 1).replacen(
        "\"LogicalResourceId/ImagesTable\",",
        "\"LogicalResourceId/ImagesTable\"",
        1,
    ))
    .expect("JSON");
    let policy_found = stack_policy_problems(&without_pool, &template);
    let deny_only: Value =
        serde_json::json!({ "Statement": [without_pool["Statement"][1].clone()] });
    let deny_found = stack_policy_problems(&deny_only, &template);
    let with_cors = import.replacen(
        "      # No CorsConfiguration",
        "      CorsConfiguration:\n        CorsRules:\n          - AllowedOrigins: [!Sub \"https://${WebDistribution.DomainName}\"]\n            AllowedMethods: [PUT]\n      # No CorsConfiguration",
        1,
    );
    let import_found = import_template_problems(&with_cors, &template);
    let runbook_found = runbook_import_problems(&quarantine_line.replace(&runbook, ""), &template);

    // Assess
    assert_caught(
        &policy_found,
        &[
            "does not deny Update:Replace on UserPool",
            "does not deny Update:Delete on UserPool",
        ],
        "policy",
    );
    assert_caught(
        &deny_found,
        &["allows no update to the other resources"],
        "deny only",
    );
    assert_caught(
        &import_found,
        &[
            "UploadsBucket refers to WebDistribution",
            "UploadsBucket.Properties differ",
        ],
        "import",
    );
    assert_caught(&runbook_found, &["lack QuarantineBucket"], "runbook");
}

#[test]
fn a_bucket_the_delete_cannot_empty_is_named() {
    // Prepare
    let text = read("template.yaml");
    let makefile = read("Makefile");
    let versioned = text.replacen(
        "      BucketName: !Sub \"${AWS::StackName}-web-${AWS::AccountId}\"\n",
        "      BucketName: !Sub \"${AWS::StackName}-web-${AWS::AccountId}\"\n      VersioningConfiguration: { Status: Enabled }\n",
        1,
    );
    let not_emptied = makefile.replacen("aws s3 rm", "echo", 1);

    // Act
    let versioned_found = delete_path_problems(&makefile, &parsed(&versioned));
    let not_emptied_found = delete_path_problems(&not_emptied, &parsed(&text));

    // Assess
    assert_caught(&versioned_found, &["WebBucket is versioned"], "versioned");
    assert_caught(
        &not_emptied_found,
        &["WebBucket is deleted with the stack, but make delete-stack does not empty it"],
        "not emptied",
    );
}

#[test]
fn samconfig_and_overrides_are_read_as_sam_reads_them() {
    // Prepare
    let text = "version = 0.1\n[default.global.parameters]\nstack_name = \"s\" # a comment\n[default.deploy.parameters]\nparameter_overrides = \"A=1 B=\\\"two words\\\" C='x=y'\"\n[prod.deploy.parameters]\ncapabilities = [\"CAPABILITY_IAM\"]\n";

    // Act
    let tables = parse_samconfig(text);
    let default = parse_samconfig(&text.replace(
        "[prod.deploy.parameters]\ncapabilities = [\"CAPABILITY_IAM\"]\n",
        "",
    ))
    .expect("parses");
    let envs = environments(&default);
    let overrides = parse_overrides(envs[0].overrides.as_deref().unwrap_or("")).expect("parses");

    // Assess: an array is refused (it would go unchecked), quoted values keep their spaces
    assert!(
        tables.unwrap_err().to_string().contains("line 7"),
        "an array is named by its line"
    );
    assert_eq!(envs[0].stack_name.as_deref(), Some("s"));
    assert_eq!(
        overrides,
        BTreeMap::from([
            ("A".into(), "1".into()),
            ("B".into(), "two words".into()),
            ("C".into(), "x=y".into())
        ])
    );
    assert!(
        parse_overrides("A=1 B")
            .unwrap_err()
            .to_string()
            .contains("`B` is not Key=Value")
    );
}
