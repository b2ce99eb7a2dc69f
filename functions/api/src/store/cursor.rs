//! Listing cursors: DynamoDB's `LastEvaluatedKey`, opaque to clients, and checked on the way
//! back in against the listing they are for, because a client can forge one.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};

/// DynamoDB's largest sort key value (a partition key may have 2048 bytes; no key of ours
/// comes near either).
const MAX_SORT_KEY_BYTES: usize = 1024;
/// The longest cursor a client may send back: four key attributes well within their sizes.
const MAX_CURSOR_CHARS: usize = 1024;

/// Where a page of a listing ends: DynamoDB's LastEvaluatedKey, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub BTreeMap<String, CursorValue>);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CursorValue {
    S(String),
    N(String),
}

/// The listing a cursor is for: an index partition read newest first, or a partition of the
/// table itself. Its `LastEvaluatedKey` holds exactly the table's key (`pk`, `sk`) and, for
/// an index, the index's key: its partition, which is the caller's own (or the one feed), and
/// a numeric sort key (template.yaml's indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    partition: (&'static str, String),
    /// The index's numeric sort key; `None` for the table's own partition.
    sort: Option<&'static str>,
    /// What every sort key of the listing starts with (the table's own partition only).
    sk_prefix: &'static str,
}

impl Listing {
    /// The feed: the images table's `by-publication` index.
    pub fn feed() -> Listing {
        Listing {
            partition: ("feed", super::FEED.to_owned()),
            sort: Some("published_at"),
            sk_prefix: "",
        }
    }
    /// A user's images: the images table's `by-owner` index.
    pub fn images_of(user_id: &str) -> Listing {
        Listing {
            partition: ("owner_id", user_id.to_owned()),
            sort: Some("created_at"),
            sk_prefix: "",
        }
    }
    /// A user's inbox: the notifications table's `by-activity` index (its partition key is
    /// the table's own `pk`).
    pub fn inbox_of(user_id: &str) -> Listing {
        Listing {
            partition: ("pk", notifier::inbox::user_pk(user_id)),
            sort: Some("updated_at"),
            sk_prefix: "",
        }
    }
    /// Who likes an image: its like items in the images table, in key order.
    pub fn likers_of(image_id: &str) -> Listing {
        Listing {
            partition: ("pk", snapglow::table::image_pk(image_id)),
            sort: None,
            sk_prefix: "LIKE#",
        }
    }

    /// Whether `cursor` is a start key of this listing: exactly its key attributes, the
    /// listing's own partition, keys within DynamoDB's sizes and a whole-number sort key.
    fn admits(&self, cursor: &BTreeMap<String, CursorValue>) -> bool {
        let mut names = vec!["pk", "sk", self.partition.0];
        names.extend(self.sort);
        names.sort_unstable();
        names.dedup();
        let key = |s: &str| (1..=MAX_SORT_KEY_BYTES).contains(&s.len());
        cursor.len() == names.len()
            && cursor.iter().all(|(name, value)| match value {
                CursorValue::S(s) if name == self.partition.0 => *s == self.partition.1,
                CursorValue::S(s) if name == "sk" => key(s) && s.starts_with(self.sk_prefix),
                CursorValue::S(s) => name == "pk" && key(s),
                // Digits only: `+5`, `-0` or `007` parse as numbers in Rust, but none is a
                // number DynamoDB hands out.
                CursorValue::N(n) => {
                    Some(name.as_str()) == self.sort
                        && (1..=19).contains(&n.len())
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && (n == "0" || !n.starts_with('0'))
                }
            })
    }
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).expect("a cursor serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// `None` for anything this API did not hand out for `listing`.
    ///
    /// HAZARD: a cursor becomes DynamoDB's `ExclusiveStartKey`. One it could never have
    /// answered (another attribute or partition, a key longer than a key can be) is refused
    /// by DynamoDB as a `ValidationException`: a 500 for the client's mistake, and another
    /// user's partition would be a read of their listing. So a cursor must be exactly a start
    /// key of the listing it is sent to (see [`Listing`]).
    pub fn decode(text: &str, listing: &Listing) -> Option<Cursor> {
        if text.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let cursor: BTreeMap<String, CursorValue> = serde_json::from_slice(&bytes).ok()?;
        listing.admits(&cursor).then_some(Cursor(cursor))
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

    fn forged(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn a_cursor_round_trips_in_its_own_listing_only() {
        // Prepare: a page end of alice's images
        let cursor = Cursor(BTreeMap::from([
            ("pk".to_owned(), CursorValue::S("IMAGE#a".into())),
            ("sk".to_owned(), CursorValue::S("IMAGE".into())),
            ("owner_id".to_owned(), CursorValue::S("alice".into())),
            ("created_at".to_owned(), CursorValue::N("17".into())),
        ]));

        // Act
        let text = cursor.encode();

        // Assess: back in alice's listing; not in bob's, the feed's or an inbox
        assert_eq!(
            Cursor::decode(&text, &Listing::images_of("alice")),
            Some(cursor)
        );
        assert_eq!(Cursor::decode(&text, &Listing::images_of("bob")), None);
        assert_eq!(Cursor::decode(&text, &Listing::feed()), None);
        assert_eq!(Cursor::decode(&text, &Listing::inbox_of("alice")), None);
    }

    #[test]
    fn a_forged_cursor_is_refused_before_it_reaches_dynamodb() {
        let feed = Listing::feed();
        let inbox = Listing::inbox_of("alice");
        assert!(
            Cursor::decode(
                &forged(r#"{"pk":{"S":"USER#alice"},"sk":{"S":"N#1#x"},"updated_at":{"N":"5"}}"#),
                &inbox
            )
            .is_some()
        );
        let refused = [
            "not a cursor".to_owned(),
            forged("[1]"),
            // a missing key attribute, an extra one
            forged(r#"{"pk":{"S":"IMAGE#a"},"feed":{"S":"published"},"published_at":{"N":"1"}}"#),
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"1"},"x":{"S":"y"}}"#,
            ),
            // another partition, a sort key that is no number, a key too long
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"other"},"published_at":{"N":"1"}}"#,
            ),
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"soon"}}"#,
            ),
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"1.5"}}"#,
            ),
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"+5"}}"#,
            ),
            forged(
                r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"007"}}"#,
            ),
            forged(&format!(
                r#"{{"pk":{{"S":"{}"}},"sk":{{"S":"IMAGE"}},"feed":{{"S":"published"}},"published_at":{{"N":"1"}}}}"#,
                "x".repeat(1100)
            )),
            // a number where a string belongs
            forged(
                r#"{"pk":{"N":"1"},"sk":{"S":"IMAGE"},"feed":{"S":"published"},"published_at":{"N":"1"}}"#,
            ),
            "A".repeat(MAX_CURSOR_CHARS + 1),
        ];
        for text in refused {
            assert_eq!(Cursor::decode(&text, &feed), None, "{text}");
        }
        // bob's inbox cursor in alice's inbox
        assert_eq!(
            Cursor::decode(
                &forged(r#"{"pk":{"S":"USER#bob"},"sk":{"S":"N#1#x"},"updated_at":{"N":"5"}}"#),
                &inbox
            ),
            None
        );
    }

    #[test]
    fn a_likers_cursor_stays_on_its_image_and_its_like_items() {
        // Prepare: where a page of image a's likers ended
        let likers = Listing::likers_of("a");
        let cursor = Cursor(BTreeMap::from([
            ("pk".to_owned(), CursorValue::S("IMAGE#a".into())),
            ("sk".to_owned(), CursorValue::S("LIKE#bob".into())),
        ]));

        // Act
        let text = cursor.encode();

        // Assess: back on image a; not on image b, nor onto the image item or with extra keys
        assert_eq!(Cursor::decode(&text, &likers), Some(cursor));
        assert_eq!(Cursor::decode(&text, &Listing::likers_of("b")), None);
        for forged_key in [
            r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"IMAGE"}}"#,
            r#"{"pk":{"S":"IMAGE#a"},"sk":{"S":"LIKE#bob"},"created_at":{"N":"1"}}"#,
            r#"{"pk":{"S":"IMAGE#a"}}"#,
        ] {
            assert_eq!(
                Cursor::decode(&forged(forged_key), &likers),
                None,
                "{forged_key}"
            );
        }
    }
}
