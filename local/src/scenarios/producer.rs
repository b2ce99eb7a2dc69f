//! The one producer of contract events for everything that is not a function: the CLI, the
//! demo, the fire drills, the tests and the benchmarks build their events here. They reach the
//! stream as the functions' do (through the images table's outbox and the relay), or straight
//! from a test that stands in for the relay. A retry puts the same envelope again: the same
//! bytes, `event_id` and `occurred_at`.

use snapglow::contracts::{Envelope, ImageDeletedV1, ImagePublishedV2, SocialEvent, Timestamp};
use uuid::Uuid;

/// One like or unlike, ready to put (and to put again, as a retrying producer would).
pub fn like_event(
    image_id: &str,
    user_id: &str,
    liked: bool,
    event_id: Option<Uuid>,
    occurred_at: Timestamp,
) -> Envelope {
    let event_id = event_id.unwrap_or_else(Uuid::new_v4);
    Envelope {
        event_id,
        occurred_at,
        correlation_id: format!("like-{event_id}"),
        producer: "likes-api".into(),
        event: SocialEvent::like(image_id, user_id, liked, None),
    }
}

/// An image published by `owner_id` (no renditions: enough for the stream's consumers).
pub fn published_event(image_id: &str, owner_id: &str, occurred_at: Timestamp) -> Envelope {
    Envelope {
        event_id: Uuid::new_v4(),
        occurred_at,
        correlation_id: format!("published-{image_id}"),
        producer: "resize".into(),
        event: SocialEvent::ImagePublished(ImagePublishedV2 {
            image_id: image_id.to_owned(),
            owner_id: owner_id.to_owned(),
            source_key: format!("uploads/{owner_id}/{image_id}.jpg"),
            source_etag: "generated".into(),
            width: 4000,
            height: 3000,
            renditions: Vec::new(),
            placeholder: None,
            taken_at: None,
            camera_make: None,
            camera_model: None,
            lens: None,
        }),
    }
}

/// An owner's deletion of their image, as `DELETE /images/{id}` records it: the original at
/// its issued key, and `rendition_keys`.
pub fn deleted_event(
    image_id: &str,
    owner_id: &str,
    rendition_keys: &[&str],
    occurred_at: Timestamp,
) -> Envelope {
    Envelope {
        event_id: Uuid::new_v4(),
        occurred_at,
        correlation_id: format!("deleted-{image_id}"),
        producer: "api".into(),
        event: SocialEvent::ImageDeleted(ImageDeletedV1 {
            image_id: image_id.to_owned(),
            owner_id: owner_id.to_owned(),
            upload_key: format!("uploads/{owner_id}/{image_id}"),
            rendition_keys: rendition_keys.iter().map(|k| (*k).to_owned()).collect(),
        }),
    }
}
