//! Lambda's event filtering, for the patterns a template uses: a pattern is a JSON object
//! whose leaves are lists of matchers; a record matches when every key of the pattern
//! matches. Matchers: a literal (string, number, boolean, null), `{"exists": bool}`,
//! `{"prefix": "..."}`, `{"anything-but": [...]}`. An unknown matcher matches nothing, so a
//! pattern this emulation cannot read drops records instead of letting them all through.

use serde_json::Value;

/// Whether `record` matches `pattern`.
pub fn matches(pattern: &Value, record: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, expected)| {
        let actual = record.get(key);
        match expected {
            Value::Object(_) => actual.is_some_and(|a| matches(expected, a)),
            Value::Array(matchers) => matchers.iter().any(|m| matcher(m, actual)),
            _ => false,
        }
    })
}

fn matcher(matcher: &Value, actual: Option<&Value>) -> bool {
    match matcher {
        Value::Object(rule) => match rule.iter().next() {
            Some((name, arg)) if name == "exists" => arg.as_bool() == Some(actual.is_some()),
            Some((name, arg)) if name == "prefix" => {
                matches!((arg, actual), (Value::String(p), Some(Value::String(a))) if a.starts_with(p.as_str()))
            }
            Some((name, arg)) if name == "anything-but" => {
                let excluded: Vec<&Value> = match arg {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                actual.is_some_and(|a| !excluded.contains(&a))
            }
            _ => false,
        },
        literal => actual == Some(literal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_relays_pattern_lets_through_only_items_with_an_event() {
        let pattern: Value = serde_json::from_str(
            r#"{"dynamodb": {"NewImage": {"event": {"S": [{"exists": true}]}}}}"#,
        )
        .unwrap();
        let with = json!({ "eventName": "MODIFY", "dynamodb": { "NewImage": { "event": { "S": "{}" } } } });
        let without = json!({ "eventName": "INSERT", "dynamodb": { "NewImage": { "image_id": { "S": "a" } } } });
        let removed = json!({ "eventName": "REMOVE", "dynamodb": { "OldImage": { "event": { "S": "{}" } } } });
        assert!(matches(&pattern, &with));
        assert!(!matches(&pattern, &without));
        assert!(!matches(&pattern, &removed));
    }

    #[test]
    fn literals_prefixes_and_anything_but() {
        let record =
            json!({ "eventName": "INSERT", "dynamodb": { "Keys": { "pk": { "S": "IMAGE#1" } } } });
        assert!(matches(
            &json!({ "eventName": ["INSERT", "MODIFY"] }),
            &record
        ));
        assert!(!matches(&json!({ "eventName": ["REMOVE"] }), &record));
        assert!(matches(
            &json!({ "dynamodb": { "Keys": { "pk": { "S": [{ "prefix": "IMAGE#" }] } } } }),
            &record
        ));
        assert!(matches(
            &json!({ "eventName": [{ "anything-but": ["REMOVE"] }] }),
            &record
        ));
        assert!(
            !matches(&json!({ "eventName": [{ "numeric": [">", 1] }] }), &record),
            "unknown matchers match nothing"
        );
    }
}
