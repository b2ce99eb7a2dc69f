//! JSON Schemas of the contract, generated from the Rust types. The committed copies in
//! `events/schemas/` are what other teams code against; `tests/contract_schemas.rs` fails when
//! they drift from the code or when a new version breaks an old reader.

use super::{
    ImageDeletedV1, ImageHeldV1, ImageLikeUndoneV2, ImageLikedV2, ImagePublishedV2,
    ImageRejectedV1, Timestamp,
};
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Value, json};
use uuid::Uuid;

// Only for generating the schema: the envelope around one type's `data`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Record<D> {
    /// Unique per fact (a UUID). A producer that retries sends the same id again.
    event_id: Uuid,
    /// The event type; a consumer skips types it does not know.
    #[serde(rename = "type")]
    type_name: String,
    /// The version of `data`'s shape; newer versions only add optional fields.
    version: u32,
    /// When the fact happened: RFC 3339, UTC, milliseconds.
    occurred_at: Timestamp,
    /// Started at the origin (the upload or the like request), carried into every derived event.
    correlation_id: String,
    /// Who wrote the record, e.g. `resize`, `api`.
    producer: String,
    data: D,
}

/// `events/schemas/<Type>.v<N>.json`
pub fn schema_file_name(type_name: &str, version: u32) -> String {
    format!("{type_name}.v{version}.json")
}

/// (file name, schema) of the current version of every type.
pub fn current_schemas() -> Vec<(String, Value)> {
    vec![
        record_schema::<ImagePublishedV2>("ImagePublished", 2),
        record_schema::<ImageRejectedV1>("ImageRejected", 1),
        record_schema::<ImageHeldV1>("ImageHeld", 1),
        record_schema::<ImageLikedV2>("ImageLiked", 2),
        record_schema::<ImageLikeUndoneV2>("ImageLikeUndone", 2),
        record_schema::<ImageDeletedV1>("ImageDeleted", 1),
    ]
}

fn record_schema<D: JsonSchema>(type_name: &str, version: u32) -> (String, Value) {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Record<D>>().to_value();
    schema["title"] = json!(format!("{type_name} v{version}"));
    schema["description"] = json!(format!(
        "One {type_name} record of the image-social-events stream; docs/EVENTS.md describes the envelope and the versioning rules. Readers accept fields they do not know."
    ));
    schema["properties"]["type"] = json!({ "const": type_name });
    schema["properties"]["version"] = json!({ "const": version });
    (schema_file_name(type_name, version), schema)
}

/// What in `new` would break a reader written for `old`: a removed property, a changed type,
/// or a property that became required. Empty when `new` only adds optional properties.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    compare(old, old, new, new, "", &mut found);
    found
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(pointer) => root
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or(node),
        None => node,
    }
}

fn compare(
    old_root: &Value,
    old: &Value,
    new_root: &Value,
    new: &Value,
    path: &str,
    found: &mut Vec<String>,
) {
    let (old, new) = (resolve(old_root, old), resolve(new_root, new));
    let shown = if path.is_empty() { "(root)" } else { path };
    if old.get("type") != new.get("type") {
        found.push(format!(
            "{shown}: type changed from {} to {}",
            show(old.get("type")),
            show(new.get("type"))
        ));
    }
    // The version constant is meant to change between versions; any other constant is a value
    // that old readers match on.
    if path != "version" && old.get("const") != new.get("const") {
        found.push(format!(
            "{shown}: constant changed from {} to {}",
            show(old.get("const")),
            show(new.get("const"))
        ));
    }
    let required = |schema: &Value| -> Vec<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let old_required = required(old);
    for name in required(new) {
        if !old_required.contains(&name) {
            found.push(format!("{}: became required", join(path, &name)));
        }
    }
    if let Some(old_props) = old.get("properties").and_then(Value::as_object) {
        let new_props = new.get("properties").and_then(Value::as_object);
        for (name, old_prop) in old_props {
            match new_props.and_then(|props| props.get(name)) {
                Some(new_prop) => compare(
                    old_root,
                    old_prop,
                    new_root,
                    new_prop,
                    &join(path, name),
                    found,
                ),
                None => found.push(format!("{}: removed", join(path, name))),
            }
        }
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(
            old_root,
            old_items,
            new_root,
            new_items,
            &format!("{path}[]"),
            found,
        );
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "none".to_owned(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn liked() -> Value {
        current_schemas()
            .into_iter()
            .find(|(name, _)| name == "ImageLiked.v2.json")
            .unwrap()
            .1
    }

    #[test]
    fn a_schema_pins_type_and_version_and_requires_every_v1_field() {
        let schema = liked();
        assert_eq!(schema["properties"]["type"]["const"], "ImageLiked");
        assert_eq!(schema["properties"]["version"]["const"], 2);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in [
            "event_id",
            "type",
            "version",
            "occurred_at",
            "correlation_id",
            "producer",
            "data",
        ] {
            assert!(
                required.contains(&field),
                "{field} missing from {required:?}"
            );
        }
        assert_ne!(
            schema.get("additionalProperties"),
            Some(&json!(false)),
            "readers must accept extra fields"
        );
    }

    #[test]
    fn adding_an_optional_field_is_compatible() {
        let old = liked();
        let mut new = old.clone();
        new["$defs"]["ImageLikedV2"]["properties"]["reaction"] =
            json!({ "type": ["string", "null"] });
        new["properties"]["version"] = json!({ "const": 2 });
        assert_eq!(breaking_changes(&old, &new), Vec::<String>::new());
    }

    #[test]
    fn removing_retyping_or_requiring_a_field_is_breaking() {
        let old = liked();
        let mut removed = old.clone();
        removed["$defs"]["ImageLikedV2"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("user_id");
        assert_eq!(
            breaking_changes(&old, &removed),
            vec!["data.user_id: removed"]
        );

        let mut retyped = old.clone();
        retyped["$defs"]["ImageLikedV2"]["properties"]["user_id"] = json!({ "type": "integer" });
        assert_eq!(
            breaking_changes(&old, &retyped),
            vec![r#"data.user_id: type changed from "string" to "integer""#]
        );

        let mut required = old.clone();
        required["$defs"]["ImageLikedV2"]["properties"]["reaction"] = json!({ "type": "string" });
        required["$defs"]["ImageLikedV2"]["required"]
            .as_array_mut()
            .unwrap()
            .push(json!("reaction"));
        assert_eq!(
            breaking_changes(&old, &required),
            vec!["data.reaction: became required"]
        );
    }
}
