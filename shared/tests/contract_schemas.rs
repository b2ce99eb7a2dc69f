//! The committed JSON Schemas in events/schemas/ are the public contract. These tests fail when
//! the Rust types drift from them, and when a newer version of a type would break a reader of
//! an older one. After an intended, compatible change: `SNAPGLOW_BLESS=1 cargo test -p snapglow
//! --test contract_schemas` rewrites the current files; review the diff.

use serde_json::Value;
use snapglow::contracts::{breaking_changes, current_schemas};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/schemas")
}

#[test]
fn committed_schemas_match_the_code() {
    let bless = std::env::var_os("SNAPGLOW_BLESS").is_some();
    for (file, generated) in current_schemas() {
        let path = schema_dir().join(&file);
        let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        if bless {
            // Write then rename: the other test may be reading the folder meanwhile.
            let partial = path.with_extension("json.partial");
            std::fs::write(&partial, &pretty).unwrap();
            std::fs::rename(&partial, &path).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with SNAPGLOW_BLESS=1 to write it",
                path.display()
            )
        });
        let committed: Value = serde_json::from_str(&committed).unwrap();
        assert_eq!(
            committed, generated,
            "{file} drifted from the Rust types; if the change is intended and compatible, run with SNAPGLOW_BLESS=1"
        );
    }
}

#[test]
fn every_version_of_a_type_can_be_read_by_readers_of_the_version_before() {
    // GIVEN every committed schema, grouped by type: ImageLiked.v1.json, ImageLiked.v2.json, ...
    let mut versions: BTreeMap<String, BTreeMap<u32, Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some((type_name, version)) = name
            .strip_suffix(".json")
            .and_then(|stem| stem.split_once(".v"))
        else {
            continue;
        };
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(schema_dir().join(&name)).unwrap())
                .unwrap();
        versions
            .entry(type_name.to_owned())
            .or_default()
            .insert(version.parse().unwrap(), schema);
    }
    assert_eq!(
        versions.len(),
        current_schemas().len(),
        "one schema family per event type: {:?}",
        versions.keys()
    );
    // THEN each version only adds optional fields to the one before
    for (type_name, by_version) in &versions {
        let ordered: Vec<_> = by_version.iter().collect();
        assert_eq!(*ordered[0].0, 1, "{type_name} must start at v1");
        for pair in ordered.windows(2) {
            let ((old_v, old), (new_v, new)) = (pair[0], pair[1]);
            assert_eq!(*new_v, old_v + 1, "{type_name}: versions must not skip");
            let broken = breaking_changes(old, new);
            assert!(
                broken.is_empty(),
                "{type_name} v{new_v} breaks readers of v{old_v}: {broken:?}; breaking changes need a new type name"
            );
        }
    }
}
