//! What one change of the images table means for the stream. An item carries the event of
//! its latest change in `event` (the envelope's JSON, exactly as it must go on the stream)
//! and that event's id in `event_id`; the partition key is the item's `image_id`.

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_dynamo::AttributeValue;
use snapglow::contracts::{Decoded, Envelope};

/// The decision for one change record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Put these bytes on the stream under this partition key.
    Publish {
        partition_key: String,
        data: Vec<u8>,
    },
    /// Nothing to publish, with the reason (a metric dimension).
    Skip(&'static str),
    /// The item's event can never be published: quarantine it (a bug in its writer).
    Poison {
        reason: &'static str,
        detail: String,
    },
}

fn text<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.as_str()),
        _ => None,
    }
}

pub fn classify(record: &EventRecord) -> Change {
    if record.event_name == "REMOVE" {
        return Change::Skip("removed");
    }
    let new = &record.change.new_image;
    let Some(event) = text(new, "event") else {
        // The mapping's filter lets only items with an event through; a change without one
        // still reaches a relay deployed without the filter.
        return Change::Skip("no_event");
    };
    // Another attribute of the item changed (a rendition list, a read flag): its event was
    // published with the change that wrote it.
    if text(new, "event_id").is_some()
        && text(new, "event_id") == text(&record.change.old_image, "event_id")
    {
        return Change::Skip("unchanged");
    }
    let Some(image_id) = text(new, "image_id").filter(|id| !id.is_empty()) else {
        return Change::Poison {
            reason: "no_partition_key",
            detail: "the item has an event but no image_id to use as the partition key".into(),
        };
    };
    match Envelope::decode(event.as_bytes()) {
        Ok(Decoded::Known(envelope)) if envelope.partition_key() != image_id => Change::Poison {
            reason: "partition_key_mismatch",
            detail: format!(
                "the item's image_id {image_id:?} differs from its event's image id {:?}",
                envelope.partition_key()
            ),
        },
        Ok(_) => Change::Publish {
            partition_key: image_id.to_owned(),
            data: event.as_bytes().to_vec(),
        },
        Err(error) => Change::Poison {
            reason: error.reason_code(),
            detail: error.to_string(),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use snapglow::contracts::{SocialEvent, Timestamp};
    use std::collections::HashMap;

    pub fn item(fields: &[(&str, &str)]) -> serde_dynamo::Item {
        let map: HashMap<String, AttributeValue> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect();
        map.into()
    }

    pub fn like_json(image: &str, event_id: u128) -> String {
        let envelope = Envelope {
            event_id: uuid::Uuid::from_u128(event_id),
            occurred_at: Timestamp::from_millis(1_795_000_000_000),
            correlation_id: "req-1".into(),
            producer: "api".into(),
            event: SocialEvent::like(image, "bob", true, Some(1)),
        };
        String::from_utf8(envelope.to_json()).unwrap()
    }

    pub fn change(name: &str, old: serde_dynamo::Item, new: serde_dynamo::Item) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_name = name.into();
        record.change.old_image = old;
        record.change.new_image = new;
        record
    }

    #[test]
    fn a_new_event_is_published_as_stored_and_anything_else_is_skipped_with_its_reason() {
        let event = like_json("sunset", 1);
        let with_event = item(&[
            ("image_id", "sunset"),
            ("event", &event),
            ("event_id", "e1"),
        ]);
        assert_eq!(
            classify(&change("INSERT", item(&[]), with_event.clone())),
            Change::Publish {
                partition_key: "sunset".into(),
                data: event.clone().into_bytes()
            }
        );
        assert_eq!(
            classify(&change("MODIFY", with_event.clone(), with_event.clone())),
            Change::Skip("unchanged")
        );
        assert_eq!(
            classify(&change("REMOVE", with_event.clone(), item(&[]))),
            Change::Skip("removed")
        );
        assert_eq!(
            classify(&change(
                "INSERT",
                item(&[]),
                item(&[("image_id", "sunset")])
            )),
            Change::Skip("no_event")
        );
    }

    #[test]
    fn an_event_that_cannot_be_published_is_poison() {
        let garbled = item(&[
            ("image_id", "sunset"),
            ("event", "{not json"),
            ("event_id", "e1"),
        ]);
        assert!(matches!(
            classify(&change("INSERT", item(&[]), garbled)),
            Change::Poison { .. }
        ));
        let other_image = item(&[
            ("image_id", "beach"),
            ("event", &like_json("sunset", 1)),
            ("event_id", "e1"),
        ]);
        assert!(matches!(
            classify(&change("INSERT", item(&[]), other_image)),
            Change::Poison {
                reason: "partition_key_mismatch",
                ..
            }
        ));
        // A partition key Kinesis would refuse on every retry (over 256 characters) is an id
        // outside the contract: quarantined, not retried until the mapping gives up.
        let long = "i".repeat(300);
        let unpublishable = item(&[
            ("image_id", &long),
            ("event", &like_json(&long, 1)),
            ("event_id", "e1"),
        ]);
        assert!(matches!(
            classify(&change("INSERT", item(&[]), unpublishable)),
            Change::Poison {
                reason: "invalid_event_data",
                ..
            }
        ));
    }
}
