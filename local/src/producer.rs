//! The likes producer: puts ImageLiked / ImageLikeUndone on the stream exactly as a real
//! producer (the likes API) would, through the same publisher resize uses.

use snapglow::contracts::{Envelope, ImageLikeUndoneV1, ImageLikedV1, SocialEvent, Timestamp};
use uuid::Uuid;

/// One like or unlike, ready to put (and to put again, as a retrying producer would).
pub fn like_event(
    image_id: &str,
    user_id: &str,
    liked: bool,
    event_id: Option<Uuid>,
    occurred_at: Timestamp,
) -> Envelope {
    let (image_id, user_id) = (image_id.to_owned(), user_id.to_owned());
    let event = if liked {
        SocialEvent::ImageLiked(ImageLikedV1 { image_id, user_id })
    } else {
        SocialEvent::ImageLikeUndone(ImageLikeUndoneV1 { image_id, user_id })
    };
    let event_id = event_id.unwrap_or_else(Uuid::new_v4);
    Envelope {
        event_id,
        occurred_at,
        correlation_id: format!("like-{event_id}"),
        producer: "likes-api".into(),
        event,
    }
}
