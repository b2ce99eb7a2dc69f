//! Listing cursors: DynamoDB's `LastEvaluatedKey`, opaque to clients, and checked on the way
//! back in because a client can forge one.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};

/// The key attributes of the tables and indexes the API lists (template.yaml's
/// `AttributeDefinitions` of ImagesTable and NotificationsTable).
const CURSOR_ATTRIBUTES: [&str; 7] = [
    "pk",
    "sk",
    "owner_id",
    "created_at",
    "feed",
    "published_at",
    "updated_at",
];
/// DynamoDB's largest sort key value (a partition key may have 2048 bytes; no key of ours
/// comes near either).
const MAX_SORT_KEY_BYTES: usize = 1024;

/// Where a page of a listing ends: DynamoDB's LastEvaluatedKey, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<String, CursorValue>);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CursorValue {
    S(String),
    N(String),
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).expect("a cursor serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything this API did not hand out.
    ///
    /// HAZARD: a cursor becomes DynamoDB's `ExclusiveStartKey`. One it could never have
    /// answered (another attribute, a key longer than a key can be) is refused by DynamoDB as
    /// a `ValidationException`: a 500 for the client's mistake. So a cursor holds only the key
    /// attributes of the tables and indexes listed, each within DynamoDB's key sizes; one
    /// whose attributes do not fit the listing is refused by the caller (see
    /// [`super::StoreError::is_start_key_refusal`]).
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let cursor: BTreeMap<String, CursorValue> = serde_json::from_slice(&bytes).ok()?;
        let fits = cursor.len() <= 4
            && cursor.iter().all(|(name, value)| {
                CURSOR_ATTRIBUTES.contains(&name.as_str())
                    && match value {
                        CursorValue::S(s) => (1..=MAX_SORT_KEY_BYTES).contains(&s.len()),
                        CursorValue::N(n) => n.len() <= 40 && n.parse::<f64>().is_ok(),
                    }
            });
        fits.then_some(Cursor(cursor))
    }

    pub(super) fn from_item(item: HashMap<String, AttributeValue>) -> Option<Cursor> {
        item.into_iter()
            .map(|(k, v)| match v {
                AttributeValue::S(s) => Some((k, CursorValue::S(s))),
                AttributeValue::N(n) => Some((k, CursorValue::N(n))),
                _ => None,
            })
            .collect::<Option<_>>()
            .map(Cursor)
    }

    pub(super) fn into_item(self) -> HashMap<String, AttributeValue> {
        self.0
            .into_iter()
            .map(|(k, v)| match v {
                CursorValue::S(s) => (k, AttributeValue::S(s)),
                CursorValue::N(n) => (k, AttributeValue::N(n)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let cursor = Cursor(BTreeMap::from([
            ("pk".to_owned(), CursorValue::S("IMAGE#a".into())),
            ("created_at".to_owned(), CursorValue::N("17".into())),
        ]));
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not a cursor"), None);
        let forged = |json: &str| {
            Cursor::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
        };
        assert_eq!(forged(r#"{"pk":{"S":"USER#a"},"extra":{"S":"x"}}"#), None);
        assert_eq!(
            forged(&format!(r#"{{"pk":{{"S":"{}"}}}}"#, "x".repeat(2000))),
            None
        );
        assert_eq!(forged(r#"{"created_at":{"N":"soon"}}"#), None);
        assert!(forged(r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"}}"#).is_some());
        assert_eq!(
            Cursor::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[1]")),
            None
        );
    }
}
