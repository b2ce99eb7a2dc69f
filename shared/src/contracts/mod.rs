//! The public event contract of the `image-social-events` stream, described for producers and
//! consumers in docs/EVENTS.md.
//!
//! Every record is one JSON envelope. Producers outside this repository (a mobile backend, a
//! script, the AWS CLI) write this JSON by hand, so field names here are the contract: they
//! change only through a new version that adds optional fields, or a new type name.
//!
//! Consumers read any version of a known type with the newest struct they know: by the
//! compatibility rule (checked by `tests/contract_schemas.rs`) a newer version only adds
//! optional fields, which an older reader ignores.

mod events;
mod schema;
mod timestamp;

pub use events::{
    ImageDeletedV1, ImageHeldV1, ImageLikeUndoneV2, ImageLikedV2, ImagePublishedV2,
    ImageRejectedV1, MAX_ID_BYTES, RenditionV1, valid_id,
};
pub use schema::{breaking_changes, current_schemas, schema_file_name};
pub use timestamp::Timestamp;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The event types this build understands, with the data of their newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocialEvent {
    ImagePublished(ImagePublishedV2),
    ImageRejected(ImageRejectedV1),
    ImageHeld(ImageHeldV1),
    ImageLiked(ImageLikedV2),
    ImageLikeUndone(ImageLikeUndoneV2),
    ImageDeleted(ImageDeletedV1),
}

impl SocialEvent {
    /// The `type` field on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            SocialEvent::ImagePublished(_) => "ImagePublished",
            SocialEvent::ImageRejected(_) => "ImageRejected",
            SocialEvent::ImageHeld(_) => "ImageHeld",
            SocialEvent::ImageLiked(_) => "ImageLiked",
            SocialEvent::ImageLikeUndone(_) => "ImageLikeUndone",
            SocialEvent::ImageDeleted(_) => "ImageDeleted",
        }
    }

    /// The version this build writes for the type.
    pub fn version(&self) -> u32 {
        match self {
            SocialEvent::ImageRejected(_)
            | SocialEvent::ImageHeld(_)
            | SocialEvent::ImageDeleted(_) => 1,
            SocialEvent::ImagePublished(_)
            | SocialEvent::ImageLiked(_)
            | SocialEvent::ImageLikeUndone(_) => 2,
        }
    }

    /// A like (`liked`) or its undoing by `user_id`: the one constructor of like facts.
    pub fn like(image_id: &str, user_id: &str, liked: bool, revision: Option<u64>) -> SocialEvent {
        let (image_id, user_id) = (image_id.to_owned(), user_id.to_owned());
        if liked {
            SocialEvent::ImageLiked(ImageLikedV2 {
                image_id,
                user_id,
                revision,
            })
        } else {
            SocialEvent::ImageLikeUndone(ImageLikeUndoneV2 {
                image_id,
                user_id,
                revision,
            })
        }
    }

    /// The like state's revision at its source, for likes that carry one.
    pub fn revision(&self) -> Option<u64> {
        match self {
            SocialEvent::ImageLiked(d) => d.revision,
            SocialEvent::ImageLikeUndone(d) => d.revision,
            _ => None,
        }
    }

    /// Every type concerns one image; its id is the partition key, so all events of one
    /// image land on one shard, in order (an image's likes after its publication).
    pub fn image_id(&self) -> &str {
        match self {
            SocialEvent::ImagePublished(d) => &d.image_id,
            SocialEvent::ImageRejected(d) => &d.image_id,
            SocialEvent::ImageHeld(d) => &d.image_id,
            SocialEvent::ImageLiked(d) => &d.image_id,
            SocialEvent::ImageLikeUndone(d) => &d.image_id,
            SocialEvent::ImageDeleted(d) => &d.image_id,
        }
    }
}

/// One record of the stream, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Unique per fact. A retrying producer resends the same id: consumers deduplicate on it,
    /// never on the Kinesis sequence number.
    pub event_id: Uuid,
    pub occurred_at: Timestamp,
    pub correlation_id: String,
    pub producer: String,
    pub event: SocialEvent,
}

/// What a consumer gets from the bytes of one record.
// Nearly every record is `Known`: boxing it would allocate once more per record to make the
// rare unknown one smaller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Known(Envelope),
    /// A well-formed envelope of a type this build does not know: skip it (count and log),
    /// never fail on it. New types are how the contract grows.
    UnknownType {
        event_id: Uuid,
        type_name: String,
        version: u32,
    },
}

/// Why a record is not a valid envelope. Always permanent: retrying the same bytes cannot
/// succeed, so the record is quarantined with its raw bytes and acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "record is not a JSON event envelope: {0}; producers must send the JSON envelope described in docs/EVENTS.md"
    )]
    NotAnEnvelope(String),
    #[error(
        "{type_name} v{version} event {event_id} has invalid data: {source}; compare it with events/schemas/{type_name}.v{version}.json"
    )]
    InvalidData {
        event_id: Uuid,
        type_name: String,
        version: u32,
        #[source]
        source: DataError,
    },
}

/// What is wrong with the `data` of an envelope of a known type.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Not the shape of the type's newest version: a field missing or of the wrong type.
    #[error("{0}")]
    Shape(#[from] serde_json::Error),
    /// A field the consumers key on is present but empty.
    #[error("data.{0} is empty")]
    Empty(&'static str),
    /// An id outside the contract's bounds (length or characters, see [`events::valid_id`]).
    #[error(
        "data.{field} is not an id: {length} bytes, at most {max} printable ASCII characters but # and / allowed",
        max = events::MAX_ID_BYTES
    )]
    NotAnId { field: &'static str, length: usize },
}

impl ContractError {
    /// A stable snake_case code for metrics and the quarantine.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ContractError::NotAnEnvelope(_) => "malformed_envelope",
            ContractError::InvalidData { .. } => "invalid_event_data",
        }
    }
}

/// The envelope as it is on the wire, before the `data` is typed.
#[derive(Serialize, Deserialize)]
struct WireEnvelope<D> {
    event_id: Uuid,
    #[serde(rename = "type")]
    type_name: String,
    version: u32,
    occurred_at: Timestamp,
    correlation_id: String,
    producer: String,
    data: D,
}

/// The `occurred_at` of an encoded envelope, without decoding the rest (for latency metrics
/// of records that fail to decode or are skipped, too). `None` when it has none.
pub fn occurred_at_ms(bytes: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct OccurredAt {
        occurred_at: Timestamp,
    }
    serde_json::from_slice::<OccurredAt>(bytes)
        .ok()
        .map(|o| o.occurred_at.millis())
}

impl Envelope {
    /// Decodes one record. Unknown extra fields are ignored at every level.
    pub fn decode(bytes: &[u8]) -> Result<Decoded, ContractError> {
        let wire: WireEnvelope<serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| ContractError::NotAnEnvelope(e.to_string()))?;
        if wire.version == 0 {
            return Err(ContractError::NotAnEnvelope(
                "version must be 1 or greater".into(),
            ));
        }
        let WireEnvelope {
            event_id,
            type_name,
            version,
            occurred_at,
            correlation_id,
            producer,
            data,
        } = wire;
        let invalid = |source: DataError| ContractError::InvalidData {
            event_id,
            type_name: type_name.clone(),
            version,
            source,
        };
        let event = match type_name.as_str() {
            "ImagePublished" => SocialEvent::ImagePublished(parse(data).map_err(invalid)?),
            "ImageRejected" => SocialEvent::ImageRejected(parse(data).map_err(invalid)?),
            "ImageHeld" => SocialEvent::ImageHeld(parse(data).map_err(invalid)?),
            "ImageLiked" => SocialEvent::ImageLiked(parse(data).map_err(invalid)?),
            "ImageLikeUndone" => SocialEvent::ImageLikeUndone(parse(data).map_err(invalid)?),
            "ImageDeleted" => SocialEvent::ImageDeleted(parse(data).map_err(invalid)?),
            _ => {
                return Ok(Decoded::UnknownType {
                    event_id,
                    type_name,
                    version,
                });
            }
        };
        let (other, other_id) = match &event {
            SocialEvent::ImageLiked(ImageLikedV2 { user_id, .. })
            | SocialEvent::ImageLikeUndone(ImageLikeUndoneV2 { user_id, .. }) => {
                ("user_id", user_id)
            }
            SocialEvent::ImagePublished(ImagePublishedV2 { owner_id, .. })
            | SocialEvent::ImageRejected(ImageRejectedV1 { owner_id, .. })
            | SocialEvent::ImageHeld(ImageHeldV1 { owner_id, .. })
            | SocialEvent::ImageDeleted(ImageDeletedV1 { owner_id, .. }) => ("owner_id", owner_id),
        };
        for (field, id) in [("image_id", event.image_id()), (other, other_id.as_str())] {
            if id.is_empty() {
                return Err(invalid(DataError::Empty(field)));
            }
            if !events::valid_id(id) {
                return Err(invalid(DataError::NotAnId {
                    field,
                    length: id.len(),
                }));
            }
        }
        Ok(Decoded::Known(Envelope {
            event_id,
            occurred_at,
            correlation_id,
            producer,
            event,
        }))
    }

    /// The JSON a producer puts on the stream.
    pub fn to_json(&self) -> Vec<u8> {
        fn wire<'a, D: Serialize>(e: &'a Envelope, data: &'a D) -> WireEnvelope<&'a D> {
            WireEnvelope {
                event_id: e.event_id,
                type_name: e.event.type_name().to_owned(),
                version: e.event.version(),
                occurred_at: e.occurred_at,
                correlation_id: e.correlation_id.clone(),
                producer: e.producer.clone(),
                data,
            }
        }
        let bytes = match &self.event {
            SocialEvent::ImagePublished(d) => serde_json::to_vec(&wire(self, d)),
            SocialEvent::ImageRejected(d) => serde_json::to_vec(&wire(self, d)),
            SocialEvent::ImageHeld(d) => serde_json::to_vec(&wire(self, d)),
            SocialEvent::ImageLiked(d) => serde_json::to_vec(&wire(self, d)),
            SocialEvent::ImageLikeUndone(d) => serde_json::to_vec(&wire(self, d)),
            SocialEvent::ImageDeleted(d) => serde_json::to_vec(&wire(self, d)),
        };
        bytes.expect("an envelope of owned strings and numbers always serializes")
    }

    /// The Kinesis partition key: the image id (see [`SocialEvent::image_id`]).
    pub fn partition_key(&self) -> &str {
        self.event.image_id()
    }
}

fn parse<D: serde::de::DeserializeOwned>(data: serde_json::Value) -> Result<D, DataError> {
    Ok(serde_json::from_value(data)?)
}

/// Best effort, for the quarantine: the correlation id of a record that did not decode.
pub fn sniff_correlation_id(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("correlation_id")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn liked_json(extra: &str) -> String {
        format!(
            r#"{{"event_id":"0193f5c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d","type":"ImageLiked","version":1,
            "occurred_at":"2026-11-28T02:21:00.123Z","correlation_id":"req-1","producer":"likes-api",
            "data":{{"image_id":"img-1","user_id":"user-2"{extra}}}}}"#
        )
    }

    #[test]
    fn a_well_formed_like_decodes_and_reencodes_to_the_same_json() {
        let v2 = liked_json(r#","revision":3"#).replace(r#""version":1"#, r#""version":2"#);
        let Decoded::Known(envelope) = Envelope::decode(v2.as_bytes()).unwrap() else {
            panic!("expected a known event");
        };
        assert_eq!(envelope.partition_key(), "img-1");
        assert_eq!(envelope.event.revision(), Some(3));
        let again: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        let original: serde_json::Value = serde_json::from_str(&v2).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn an_id_outside_the_bounds_is_invalid_data_of_that_record() {
        // Prepare: a 129-byte user id, one with the tables' key separator, one at the limit
        let long = liked_json("").replace("user-2", &"u".repeat(129));
        let separator = liked_json("").replace("user-2", "user#2");
        let at_limit = liked_json("").replace("user-2", &"u".repeat(128));

        // Act
        let long = Envelope::decode(long.as_bytes());
        let separator = Envelope::decode(separator.as_bytes());
        let at_limit = Envelope::decode(at_limit.as_bytes());

        // Assess
        let message = |r: Result<Decoded, ContractError>| match r {
            Err(e @ ContractError::InvalidData { .. }) => {
                assert_eq!(e.reason_code(), "invalid_event_data");
                crate::telemetry::error_chain(&e)
            }
            other => panic!("expected invalid data, got {other:?}"),
        };
        assert!(message(long).contains("data.user_id is not an id: 129 bytes"));
        assert!(message(separator).contains("data.user_id is not an id: 6 bytes"));
        assert!(matches!(at_limit, Ok(Decoded::Known(_))));
        assert!(valid_id("0193f5c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d"));
        assert!(valid_id("sunset over the bay"));
        assert!(!valid_id("") && !valid_id("a/b") && !valid_id("é") && !valid_id("a\u{7f}"));
    }

    #[test]
    fn a_v1_like_is_read_without_a_revision_and_written_as_v2_without_one() {
        let Decoded::Known(envelope) = Envelope::decode(liked_json("").as_bytes()).unwrap() else {
            panic!("expected a known event");
        };
        assert_eq!(envelope.event.revision(), None);
        let again: serde_json::Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(again["version"], 2);
        assert!(again["data"].get("revision").is_none(), "{again}");
    }

    #[test]
    fn unknown_extra_fields_are_accepted() {
        let decoded = Envelope::decode(liked_json(r#","device":"ios""#).as_bytes()).unwrap();
        assert!(matches!(decoded, Decoded::Known(_)));
    }

    #[test]
    fn a_newer_version_of_a_known_type_is_read_with_the_newest_struct() {
        let json = liked_json(r#","reaction":"heart""#).replace(r#""version":1"#, r#""version":2"#);
        assert!(matches!(
            Envelope::decode(json.as_bytes()).unwrap(),
            Decoded::Known(_)
        ));
    }

    #[test]
    fn unknown_types_are_reported_not_rejected() {
        let json = liked_json("").replace("ImageLiked", "ImageCommented");
        let decoded = Envelope::decode(json.as_bytes()).unwrap();
        assert!(
            matches!(decoded, Decoded::UnknownType { ref type_name, .. } if type_name == "ImageCommented")
        );
    }

    #[test]
    fn malformed_records_are_classified() {
        let not_json = Envelope::decode(b"{not json").unwrap_err();
        assert_eq!(not_json.reason_code(), "malformed_envelope");
        let missing_user = liked_json("").replace(r#","user_id":"user-2""#, "");
        let err = Envelope::decode(missing_user.as_bytes()).unwrap_err();
        assert_eq!(err.reason_code(), "invalid_event_data");
        assert!(
            err.to_string()
                .contains("events/schemas/ImageLiked.v1.json"),
            "{err}"
        );
        assert!(
            err.to_string().contains("missing field `user_id`"),
            "the decoder's own words are in the message: {err}"
        );
        assert!(
            std::error::Error::source(&err).is_some_and(|cause| cause.is::<DataError>()),
            "the cause is kept"
        );
        let empty_user = liked_json("").replace("user-2", "");
        let err = Envelope::decode(empty_user.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("data.user_id is empty"), "{err}");
    }

    #[test]
    fn the_correlation_id_is_recovered_from_a_record_that_did_not_decode() {
        let broken = r#"{"correlation_id":"req-9","type":"ImageLiked"}"#;
        assert_eq!(
            sniff_correlation_id(broken.as_bytes()).as_deref(),
            Some("req-9")
        );
    }
}
